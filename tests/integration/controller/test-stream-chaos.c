/* Crash safety: 50 streams with an initial backfill while `sluice run` is
 * killed with SIGKILL at random moments and started again; the test finishes
 * every backfill Job it sees. In the end: exactly one Job per stream (the
 * streaming one), exactly one BackfillRequest per stream, every one of them
 * completed (no completion lost, none made twice). */
#include "stest.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define N 50

static char ns[64], kind[64], plural[64], logpath[256];

static unsigned rnd(unsigned lo, unsigned hi)
{
	unsigned r = 0;
	if (getrandom(&r, sizeof(r), 0) < 0)
		r = (unsigned)rand();
	return lo + r % (hi - lo + 1);
}

/* Finishes (succeeds) every backfill Job that has not finished yet. */
static int finish_backfills(void)
{
	char *out = NULL, *save = NULL;
	int n = 0;

	it_kubectl(&out, NULL,
	           "-n %s get jobs -l arcane/backfilling=true -o jsonpath='{range .items[*]}{.metadata.name}"
	           "{\" \"}{.status.completionTime}{\"\\n\"}{end}' 2>/dev/null",
	           ns);
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], when[64];
		if (sscanf(line, "%127s %63s", name, when) == 1 && it_job_finish(ns, name, true, NULL) == 0)
			n++;
	}
	free(out);
	return n;
}

static int count_lines(const char *cmd_fmt, const char *want)
{
	char *out = NULL, *save = NULL;
	int n = 0;
	it_kubectl(&out, NULL, cmd_fmt, ns);
	for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (!want || strcmp(l, want) == 0)
			n++;
	free(out);
	return n;
}

static void chaos(void)
{
	char *yaml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&yaml, &len);
	pid_t pid;
	int kills = 0, finished = 0;
	time_t end;

	for (int i = 0; i < N; i++)
		fprintf(f,
		        "---\napiVersion: streaming.sneaksanddata.com/v1\nkind: %s\nmetadata: {name: s%02d, "
		        "namespace: %s}\n"
		        "spec: {source: 'generator://%d', jobTemplateRef: {name: stream}, "
		        "backfillJobTemplateRef: {name: "
		        "backfill}}\n",
		        kind, i, ns, i);
	fclose(f);
	pid = st_sluice_start(ns, logpath);
	CHECK(it_kubectl(NULL, yaml, "apply -f - >/dev/null") == 0, "create %d streams", N);
	free(yaml);

	/* 40 s of kills at random moments, finishing backfills in between. */
	end = time(NULL) + 40;
	while (time(NULL) < end) {
		usleep(rnd(100, 2500) * 1000);
		st_sluice_kill(pid);
		kills++;
		finished += finish_backfills();
		pid = st_sluice_start(ns, logpath);
	}
	printf("# %d SIGKILLs, %d backfill Jobs finished meanwhile\n", kills, finished);

	/* Then let it converge. */
	bool all = false;
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
	         "-n %%s get %s -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}'", plural);
	for (int w = 0; w < 180 && !all; w++) {
		finished += finish_backfills();
		all = count_lines(cmd, "Running") == N;
		if (!all)
			sleep(1);
	}
	st_sluice_stop(pid);
	(void)all;
}

static void check_end(void)
{
	char cmd[512];
	int n;

	snprintf(cmd, sizeof(cmd),
	         "-n %%s get %s -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}'", plural);
	n = count_lines(cmd, "Running");
	CHECK(n == N, "%d of %d streams Running", n, N);
	n = count_lines("-n %s get jobs -o jsonpath='{range .items[*]}{.metadata.name}{\"\\n\"}{end}'", NULL);
	CHECK(n == N, "%d Jobs for %d streams", n, N);
	n = count_lines("-n %s get jobs -l arcane/backfilling=false -o jsonpath='{range "
	                ".items[*]}{.metadata.ownerReferences[0].name}{\"=\"}{.metadata.name}{\"\\n\"}{end}'",
	                NULL);
	CHECK(n == N, "%d streaming Jobs", n);
	for (int i = 0; i < N; i++) {
		char want[16], c2[256];
		snprintf(want, sizeof(want), "s%02d=s%02d", i, i);
		n = count_lines(
		    "-n %s get jobs -o jsonpath='{range .items[*]}{.metadata.ownerReferences[0].name}"
		    "{\"=\"}{.metadata.name}{\"\\n\"}{end}'",
		    want);
		CHECK(n == 1, "stream s%02d has %d Jobs", i, n);
		snprintf(want, sizeof(want), "s%02d", i);
		snprintf(c2, sizeof(c2), "%s", want);
		n = count_lines("-n %s get bfr -o jsonpath='{range .items[*]}{.spec.streamId}{\"\\n\"}{end}'",
		                c2);
		CHECK(n == 1, "stream s%02d has %d BackfillRequests", i, n);
	}
	n = count_lines("-n %s get bfr -o jsonpath='{range .items[*]}{.spec.completed}{\"\\n\"}{end}'",
	                "true");
	CHECK(n == N, "%d of %d BackfillRequests completed", n, N);
	n = count_lines("-n %s get bfr -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}'",
	                "Completed");
	CHECK(n == 0, "%d BackfillRequests with a status.phase outside the CRD's enum", n);
}

int main(void)
{
	it_require_cluster();
	st_plan(2);
	if (st_make_kind("Chaos", kind, plural) != 0 || it_ns_create("ctl-chaos", ns) != 0) {
		printf("Bail out! setup\n");
		return 1;
	}
	snprintf(logpath, sizeof(logpath), "/tmp/sluice-%s.log", ns);
	printf("# kind %s, namespace %s, sluice log %s\n", kind, ns, logpath);
	if (st_apply("apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamClass\nmetadata: {name: %s}\n"
	             "spec: {apiGroupRef: streaming.sneaksanddata.com, apiVersion: v1, kindRef: %s, "
	             "pluralName: %s}\n",
	             ns, kind, plural) != 0 ||
	    st_apply(
	        "apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamingJobTemplate\nmetadata: {name: "
	        "stream, "
	        "namespace: %s}\nspec: {template: {spec: {restartPolicy: Never, containers: [{name: m, "
	        "image: "
	        "busybox}]}}}\n---\napiVersion: streaming.sneaksanddata.com/v1\nkind: StreamingJobTemplate\n"
	        "metadata: {name: backfill, namespace: %s}\nspec: {template: {spec: {restartPolicy: Never, "
	        "containers: [{name: m, image: busybox}]}}}\n",
	        ns, ns) != 0) {
		printf("Bail out! class and templates\n");
		return 1;
	}
	st_run(1, "50 streams, sluice killed with SIGKILL at random moments and restarted", chaos);
	st_run(2, "exactly one Job and one completed BackfillRequest per stream", check_end);
	it_kubectl(NULL, NULL, "delete streamclass %s --wait=false >/dev/null 2>&1", ns);
	it_ns_delete(ns);
	st_delete_kind(plural);
	return st_exit();
}
