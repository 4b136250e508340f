/* Helpers for integration tests against the cluster of tests/cluster/ (or any
 * cluster KUBECONFIG names). Each test gets a fresh namespace and removes it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The TAP diagnostic of a failed check: "# file:line: check failed: cond:
 * message". Each harness's CHECK() prints it, then counts the failure its own
 * way (and may end the test). */
#define IT_CHECK_FAILED(cond_text, ...)                                               \
	do {                                                                          \
		printf("# %s:%d: check failed: %s: ", __FILE__, __LINE__, cond_text); \
		printf(__VA_ARGS__);                                                  \
		printf("\n");                                                         \
		fflush(stdout);                                                       \
	} while (0)

/* Skips the test program ("1..0 # SKIP" on TAP, reported as skipped by meson)
 * when no cluster is configured. Sets up paths; call first. */
void it_require_cluster(void);
/* The admin kubeconfig, and the restricted identity's (NULL when absent). */
const char *it_kubeconfig(void);
const char *it_kubeconfig_restricted(void);
/* Path of kubectl used by the helpers. */
const char *it_kubectl_path(void);

/* Runs kubectl (admin) with the printf-formatted argument string (shell
 * words); stdin_data is fed to it when not NULL. Returns the exit status;
 * stdout goes into *out (malloc'd, may be NULL). */
int it_kubectl(char **out, const char *stdin_data, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Creates a namespace named prefix-<random> into name (64 bytes). */
int it_ns_create(const char *prefix, char name[64]);
/* Deletes it and waits (bounded) until it is gone. */
void it_ns_delete(const char *name);

/* Drives a Job to Complete or Failed by writing its status subresource, as a
 * kubelet and the job controller would. */
int it_job_finish(const char *ns, const char *name, bool succeeded, const char *reason);

/* Polls `kubectl get ... -o jsonpath=...` until its output equals want or
 * timeout_ms passes. Returns 0 when it matched. */
int it_wait_jsonpath(const char *ns, const char *resource, const char *jsonpath, const char *want,
                     int timeout_ms);
