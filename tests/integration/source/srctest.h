/* Helpers shared by the source integration tests: shell commands, a
 * recorder of source events, and running the loop until something holds. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/base.h"
#include "sluice/loop.h"
#include "sluice/source.h"

#define T_FAIL(...)                                                  \
	do {                                                         \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                        \
		fprintf(stderr, "\n");                               \
		t_failed = true;                                     \
		t_cleanup();                                         \
		exit(1);                                             \
	} while (0)
#define T_ASSERT(c, fmt, ...)                                  \
	do {                                                   \
		if (!(c))                                      \
			T_FAIL("%s: " fmt, #c, ##__VA_ARGS__); \
	} while (0)

extern bool t_failed;
extern char t_dir[]; /* the test's temporary directory */

/* Registered cleanup (kills fixture processes, removes t_dir); also run at exit. */
void t_cleanup(void);
void t_setup(const char *name);
/* Adds a command run (with sh -c) at cleanup, e.g. a fixture's stop script. */
void t_on_cleanup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command (cwd t_dir); returns its exit status. Output to stderr
 * unless out is given (malloc'd stdout, trailing newline removed). */
int t_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void t_sh_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *t_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void t_write(const char *path, const char *content);
char *t_read(const char *path);
/* A free TCP port on 127.0.0.1. */
int t_free_port(void);
/* Exits 77 (skipped) with a reason. */
void t_skip(const char *why) __attribute__((noreturn));

struct t_rec {
	unsigned snapshots, unchanged, errors;
	struct sl_error last_error;
	uint64_t error_ms[16]; /* sl_now_ms() of the first errors */
	char revision[80];
	struct sl_source_snapshot *snap; /* current, referenced */
	unsigned wb_done;
	int wb_code;
	char wb_commit[41];
	struct sl_error wb_err;
};

void t_source_fn(struct sl_source *src, const struct sl_source_event *ev, void *payload);
void t_wb_fn(struct sl_source *src, int code, const char *commit, const struct sl_error *err, void *payload);
/* Runs the loop until *counter > before or timeout_ms; returns true when it moved. */
bool t_wait(struct sl_loop *loop, const unsigned *counter, unsigned before, int timeout_ms);
/* Runs the loop for ms. */
void t_run_for(struct sl_loop *loop, int ms);
void t_rec_free(struct t_rec *r);
