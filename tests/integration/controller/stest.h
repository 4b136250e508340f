/* Helpers for the stream controller's integration tests: a TAP harness, a
 * private stream kind (a copy of crds/mockstream.yaml under a fresh name, so
 * no other StreamClass of the shared cluster claims it), and `sluice run
 * --no-sync` as a child process under the restricted identity. */
#pragma once

#include "itest.h"

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

extern int st_failed;

#define CHECK(cond, ...)                                     \
	do {                                                 \
		if (!(cond)) {                               \
			IT_CHECK_FAILED(#cond, __VA_ARGS__); \
			st_failed++;                         \
			return;                              \
		}                                            \
	} while (0)

void st_plan(int n);
void st_run(int n, const char *name, void (*fn)(void));
int st_exit(void);

/* Applies crds/, makes a kind <Prefix><hex>Stream (plural lowercase + "s")
 * from crds/mockstream.yaml and waits until it is Established. */
int st_make_kind(const char *prefix, char kind[64], char plural[64]);
/* Applies the CRD of a kind made by st_kind_name without waiting. */
int st_apply_kind_crd(const char *kind, const char *plural);
void st_kind_name(const char *prefix, char kind[64], char plural[64]);
void st_delete_kind(const char *plural);

/* Runs kubectl (admin) with the text as stdin: `apply -f -`. */
int st_apply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* kubectl -n ns get what -o jsonpath=path into out (empty string on error). */
void st_get(const char *ns, const char *what, const char *path, char *out, size_t outsz);
/* Waits until jsonpath differs from not (and is not empty) into out. */
bool st_wait_change(const char *ns, const char *what, const char *path, const char * not, char *out,
                    size_t outsz, int timeout_ms);
/* Waits until `get what` fails with NotFound. */
bool st_wait_gone(const char *ns, const char *what, int timeout_ms);

/* The Events about object name in ns with reason: how many there are (-1
 * when kubectl fails), and in *count the sum of their counts. */
int st_events(const char *ns, const char *name, const char *reason, int *count);
/* st_events, polled until *count reaches min_count or timeout_ms passed. */
int st_wait_events(const char *ns, const char *name, const char *reason, int min_count, int timeout_ms,
                   int *count);

/* Starts `sluice run --no-sync --watch-namespace namespaces` with the
 * restricted kubeconfig (admin when none), its log appended to logpath. */
pid_t st_sluice_start(const char *namespaces, const char *logpath);
/* SIGTERM, waits (bounded); returns the exit status (-1 when killed). */
int st_sluice_stop(pid_t pid);
void st_sluice_kill(pid_t pid);
