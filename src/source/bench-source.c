/* Benchmark driver for bench/source-git and bench/source-dir: times a real
 * source on the event loop and prints "metric<TAB>value<TAB>unit" lines.
 *   bench-source git URL CACHE PUSH_CMD   clone, no-change fetch, push -> snapshot
 *   bench-source dir DIR WRITE_CMD        first scan, write -> snapshot
 * PUSH_CMD / WRITE_CMD (sh -c, with $1 = round) make one change. */
#include "sluice/loop.h"
#include "sluice/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define ROUNDS_MAX 100

static int rounds = 5; /* BENCH_ROUNDS */

static unsigned snapshots, unchanged, errors;

static void on_event(struct sl_source *src, const struct sl_source_event *ev, void *payload)
{
	if (ev->type == SL_SOURCE_EVENT_SNAPSHOT)
		snapshots++;
	else if (ev->type == SL_SOURCE_EVENT_UNCHANGED)
		unchanged++;
	else {
		errors++;
		fprintf(stderr, "source error: %s\n", ev->error->msg);
	}
}

static int wait_for(struct sl_loop *loop, unsigned *counter, unsigned before, uint64_t timeout_ms)
{
	uint64_t end = sl_now_ms() + timeout_ms;
	while (*counter == before && errors == 0) {
		if (sl_now_ms() >= end)
			return -1;
		sl_loop_run_once(loop, 50);
	}
	return *counter > before ? 0 : -1;
}

static int run_cmd(const char *cmd, int round)
{
	char full[8192];
	int st;

	snprintf(full, sizeof(full), "set -- %d; %s", round, cmd);
	st = system(full);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* The 90th percentile (nearest rank) of v, sorted by median() before. */
static uint64_t p90(const uint64_t *v, int n)
{
	int i = (9 * n + 9) / 10 - 1;
	return v[i < 0 ? 0 : i];
}

/* Git: fetches that find nothing new, then pushed commits to snapshots. */
static int bench_git(struct sl_loop *loop, struct sl_source *src, const char *push_cmd)
{
	uint64_t t0, v[ROUNDS_MAX];

	for (int i = 0; i < rounds; i++) {
		unsigned before = unchanged;
		t0 = sl_now_ms();
		sl_source_trigger(src);
		if (wait_for(loop, &unchanged, before, 60000) < 0)
			return -1;
		v[i] = sl_now_ms() - t0;
	}
	printf("no-change fetch (median of %d)\t%llu\tms\n", rounds, (unsigned long long)median(v, rounds));
	for (int i = 0; i < rounds; i++) {
		unsigned before = snapshots;
		if (run_cmd(push_cmd, i) < 0)
			return -1;
		t0 = sl_now_ms();
		/* on demand, as a webhook or `sluice` command triggers it */
		sl_source_trigger(src);
		if (wait_for(loop, &snapshots, before, 60000) < 0)
			return -1;
		v[i] = sl_now_ms() - t0;
	}
	printf("pushed commit to snapshot, on trigger (median of %d)\t%llu\tms\n", rounds,
	       (unsigned long long)median(v, rounds));
	return 0;
}

/* Directory: writes to snapshots, the quiet time included; and each
 * check's own time (scan, parse, validation) and files parsed. */
static int bench_dir(struct sl_loop *loop, struct sl_source *src, const char *write_cmd)
{
	uint64_t t0, v[ROUNDS_MAX], c[ROUNDS_MAX], parsed = 0;
	struct sl_source_stats st;

	for (int i = 0; i < rounds; i++) {
		unsigned before = snapshots;
		uint64_t p0;
		sl_source_stats(src, &st);
		p0 = st.files_parsed;
		t0 = sl_now_ms();
		if (run_cmd(write_cmd, i) < 0)
			return -1;
		if (wait_for(loop, &snapshots, before, 60000) < 0)
			return -1;
		v[i] = sl_now_ms() - t0;
		sl_source_stats(src, &st);
		c[i] = st.last_check_ms;
		parsed = st.files_parsed - p0;
		/* a quiet spell before the next write: single edits, not a burst */
		sl_loop_run_once(loop, 300);
	}
	median(v, rounds);
	median(c, rounds);
	printf("write to snapshot (p50 of %d, quiet time included)\t%llu\tms\n", rounds,
	       (unsigned long long)median(v, rounds));
	printf("write to snapshot (p90 of %d)\t%llu\tms\n", rounds, (unsigned long long)p90(v, rounds));
	printf("check of a 1-file change: scan, parse, validate (p50 of %d)\t%llu\tms\n", rounds,
	       (unsigned long long)median(c, rounds));
	printf("check of a 1-file change (p90 of %d)\t%llu\tms\n", rounds, (unsigned long long)p90(c, rounds));
	printf("files parsed for a 1-file change\t%llu\tfiles\n", (unsigned long long)parsed);
	return 0;
}

int main(int argc, char **argv)
{
	struct sl_source_options o = SL_SOURCE_OPTIONS_INIT;
	struct sl_loop *loop;
	struct sl_source *src;
	struct sl_error err = {0};
	uint64_t t0;
	bool git;

	if (argc != 5 && argc != 4) {
		fprintf(stderr, "usage: %s git URL CACHE PUSH_CMD | dir DIR WRITE_CMD\n", argv[0]);
		return 2;
	}
	git = !strcmp(argv[1], "git");
	if (getenv("BENCH_ROUNDS"))
		rounds = SL_MAX(1, SL_MIN(atoi(getenv("BENCH_ROUNDS")), ROUNDS_MAX));
	if (sl_loop_new(&loop) < 0)
		return 1;
	if (git) {
		o.url = argv[2];
		o.cache_dir = argv[3];
		o.ref = "main";
		o.interval_ms = 3600 * 1000;
	} else {
		o.kind = SL_SOURCE_DIR;
		o.dir = argv[2];
	}
	if (sl_source_new(loop, &o, on_event, NULL, &src, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	t0 = sl_now_ms();
	if (sl_source_start(src, &err) < 0 || wait_for(loop, &snapshots, 0, 600000) < 0) {
		fprintf(stderr, "no first snapshot: %s\n", err.msg);
		return 1;
	}
	printf("%s\t%llu\tms\n", git ? "clone to first snapshot" : "first scan to snapshot",
	       (unsigned long long)(sl_now_ms() - t0));
	printf("files in snapshot\t%zu\tfiles\n", sl_source_snapshot_files(sl_source_current(src)));
	if ((git ? bench_git(loop, src, argv[4]) : bench_dir(loop, src, argv[3])) < 0 || errors)
		return 1;
	sl_source_free(src);
	sl_loop_free(loop);
	return 0;
}
