/* A small TAP harness and synchronous wrappers for the kube integration
 * tests: each call runs the loop until its callback ran (bounded). */
#pragma once

#include "itest.h"
#include "sluice/kube.h"
#include "sluice/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int kt_failed; /* failures in the current test */
extern struct sl_loop *kt_loop;

#define CHECK(cond, ...)                                     \
	do {                                                 \
		if (!(cond)) {                               \
			IT_CHECK_FAILED(#cond, __VA_ARGS__); \
			kt_failed++;                         \
		}                                            \
	} while (0)

/* it_require_cluster(), reporting a skip the TAP way (a plan of 0 and exit
 * 0: meson's TAP parser counts exit 77 as an error, not a skip). */
void kt_require_cluster(void);

/* Runs fn as TAP test number n. */
void kt_run(int n, const char *name, void (*fn)(void));
void kt_plan(int n);
int kt_exit(void);

/* The outcome of one call. */
struct kt_res {
	bool done;
	int code;
	long status;
	cJSON *body; /* taken from the result; freed by kt_res_clear */
	char message[1024];
	char reason[64];
	char field[256];
	char err[1024];
	unsigned pages;
};
void kt_cb(struct sl_kube_result *res, void *payload);
/* Runs the loop until r->done or timeout_ms; false on timeout. */
bool kt_wait(struct kt_res *r, int timeout_ms);
/* Runs the loop until cond(payload) or timeout_ms. */
bool kt_until(bool (*cond)(void *payload), void *payload, int timeout_ms);
void kt_res_clear(struct kt_res *r);

/* A client from a kubeconfig path (NULL: the admin one). */
struct sl_kube *kt_client(const char *kubeconfig);
cJSON *kt_json(const char *text);                     /* parses or aborts */
const char *kt_str(const cJSON *o, const char *path); /* "metadata.name" style; NULL if missing */
