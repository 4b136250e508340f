/* The stream controller against the real API server: `sluice run --no-sync`
 * runs as a child under the restricted identity; the test plays kubelet and
 * job controller by writing Job status, and checks what a user would see
 * with kubectl. */
#include "stest.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T 60000 /* ms: every wait */

static char ns[64], kind[64], plural[64], logpath[256];
static const char *cls;
static char clsbuf[64];
static pid_t pid;

static int mkstream(const char *name, const char *extra)
{
	return st_apply(
	    "apiVersion: streaming.sneaksanddata.com/v1\nkind: %s\nmetadata: {name: %s, namespace: %s}\n"
	    "spec:\n  source: generator://numbers\n  jobTemplateRef: {name: stream}\n%s",
	    kind, name, ns, extra ? extra : "");
}

static int mktemplate(const char *name, const char *cmd)
{
	return st_apply(
	    "apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamingJobTemplate\n"
	    "metadata: {name: %s, namespace: %s}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n"
	    "      restartPolicy: Never\n      containers: [{name: main, image: busybox, command: [%s]}]\n",
	    name, ns, cmd);
}

static bool phase_is(const char *stream, const char *phase)
{
	char what[256];
	snprintf(what, sizeof(what), "%s/%s", plural, stream);
	return it_wait_jsonpath(ns, what, "{.status.phase}", phase, T) == 0;
}

static void get_stream(const char *stream, const char *path, char *out, size_t n)
{
	char what[256];
	snprintf(what, sizeof(what), "%s/%s", plural, stream);
	st_get(ns, what, path, out, n);
}

static bool job_exists(const char *job)
{
	char what[128];
	snprintf(what, sizeof(what), "job/%s", job);
	return it_wait_jsonpath(ns, what, "{.metadata.name}", job, T) == 0;
}

static const char *BF = "  backfillJobTemplateRef: {name: backfill}\n";

/* create -> initial BackfillRequest -> Backfilling -> backfill Job succeeds
 * -> request completed, Running -> delete -> Jobs gone. */
static void life(void)
{
	char v[512], bfr[256], what[320];

	CHECK(mkstream("life", BF) == 0, "create stream");
	CHECK(phase_is("life", "Backfilling"), "Backfilling");
	get_stream("life", "{.status.backfillRequest}", bfr, sizeof(bfr));
	CHECK(strncmp(bfr, "life-initial-backfill-", 22) == 0, "initial request named %s", bfr);
	snprintf(what, sizeof(what), "bfr/%s", bfr);
	st_get(ns, what, "{.metadata.ownerReferences[0].name}", v, sizeof(v));
	CHECK(strcmp(v, "life") == 0, "request owned by the stream: %s", v);
	CHECK(job_exists("life-backfill"), "backfill Job");
	st_get(ns, "job/life-backfill", "{.metadata.labels.arcane/backfilling}", v, sizeof(v));
	CHECK(strcmp(v, "true") == 0, "backfilling label %s", v);
	st_get(ns, "job/life", "{.metadata.name}", v, sizeof(v));
	CHECK(!*v, "no streaming Job while backfilling");

	CHECK(it_job_finish(ns, "life-backfill", true, NULL) == 0, "finish");
	CHECK(it_wait_jsonpath(ns, what, "{.spec.completed}", "true", T) == 0, "request completed");
	CHECK(phase_is("life", "Running"), "Running");
	CHECK(job_exists("life"), "streaming Job");
	CHECK(st_wait_gone(ns, "job/life-backfill", T), "backfill Job deleted");
	get_stream("life", "{.status.conditions[?(@.type==\"Ready\")].status}", v, sizeof(v));
	CHECK(strcmp(v, "True") == 0, "Ready=%s", v);
	get_stream("life", "{.status.observedGeneration}", v, sizeof(v));
	CHECK(strcmp(v, "1") == 0, "observedGeneration %s", v);
	get_stream("life", "{.status.jobName}", v, sizeof(v));
	CHECK(strcmp(v, "life") == 0, "jobName %s", v);
	/* one Event per phase change, and none else */
	int n, count;
	n = st_wait_events(ns, "life", "Running", 1, T, &count);
	CHECK(n == 1 && count == 1, "Running: %d Events, count %d", n, count);
	sleep(2);
	n = st_events(ns, "life", "Backfilling", &count);
	CHECK(n == 1 && count == 1, "Backfilling: %d Events, count %d", n, count);
	n = st_events(ns, "life", "Running", &count);
	CHECK(n == 1 && count == 1, "Running: %d Events, count %d", n, count);
	char *ev = NULL;
	it_kubectl(&ev, NULL,
	           "-n %s get events --field-selector involvedObject.name=life -o "
	           "jsonpath='{range .items[*]}{.reason}{\" \"}{end}'",
	           ns);
	CHECK(ev && (!strcmp(ev, "Backfilling Running ") || !strcmp(ev, "Running Backfilling ")),
	      "no other Event: %s", ev ? ev : "");
	free(ev);

	CHECK(it_kubectl(NULL, NULL, "-n %s delete %s life --wait=false >/dev/null", ns, plural) == 0,
	      "delete");
	CHECK(st_wait_gone(ns, "job/life", T), "streaming Job gone with the stream");
	CHECK(st_wait_gone(ns, what, T), "its request gone with it");
}

/* Running stream plus a user's BackfillRequest: backfill, then Running again. */
static void user_backfill(void)
{
	char v[512];

	CHECK(mkstream("ub", BF) == 0, "create");
	CHECK(job_exists("ub-backfill"), "initial backfill");
	CHECK(it_job_finish(ns, "ub-backfill", true, NULL) == 0, "finish");
	CHECK(phase_is("ub", "Running"), "Running");
	CHECK(job_exists("ub"), "streaming Job");
	CHECK(st_apply("apiVersion: streaming.sneaksanddata.com/v1\nkind: BackfillRequest\n"
	               "metadata: {name: ub-user, namespace: %s}\nspec: {streamClass: %s, streamId: ub, "
	               "payload: {from: '2024-01-01'}}\n",
	               ns, cls) == 0,
	      "request");
	CHECK(phase_is("ub", "Backfilling"), "Backfilling");
	CHECK(job_exists("ub-backfill"), "backfill Job again");
	st_get(ns, "job/ub-backfill",
	       "{.spec.template.spec.containers[0].env[?(@.name==\"STREAMCONTEXT__BACKFILL_ID\")].value}", v,
	       sizeof(v));
	CHECK(strcmp(v, "ub-user") == 0, "runs the user's request: %s", v);
	st_get(ns, "job/ub", "{.metadata.name}", v, sizeof(v));
	CHECK(!*v || st_wait_gone(ns, "job/ub", T), "streaming Job stopped");
	CHECK(it_job_finish(ns, "ub-backfill", true, NULL) == 0, "finish");
	CHECK(it_wait_jsonpath(ns, "bfr/ub-user", "{.spec.completed}", "true", T) == 0, "completed");
	CHECK(phase_is("ub", "Running"), "Running again");
	CHECK(job_exists("ub"), "streaming Job again");
}

static void suspend_resume(void)
{
	char uid[128], uid2[128];

	CHECK(mkstream("sr", NULL) == 0, "create");
	CHECK(phase_is("sr", "Running"), "Running");
	CHECK(job_exists("sr"), "Job");
	st_get(ns, "job/sr", "{.metadata.uid}", uid, sizeof(uid));
	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s patch %s sr --type merge -p '{\"spec\":{\"suspended\":true}}' >/dev/null", ns,
	                 plural) == 0,
	      "suspend");
	CHECK(phase_is("sr", "Suspended"), "Suspended");
	CHECK(st_wait_gone(ns, "job/sr", T), "Job deleted");
	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s patch %s sr --type merge -p '{\"spec\":{\"suspended\":false}}' >/dev/null",
	                 ns, plural) == 0,
	      "resume");
	CHECK(phase_is("sr", "Running"), "Running again");
	CHECK(st_wait_change(ns, "job/sr", "{.metadata.uid}", uid, uid2, sizeof(uid2), T), "a new Job");
}

static void spec_change(void)
{
	char h1[128], h2[128], st[128];

	CHECK(mkstream("sc", NULL) == 0, "create");
	CHECK(phase_is("sc", "Running"), "Running");
	CHECK(job_exists("sc"), "Job");
	st_get(ns, "job/sc", "{.metadata.annotations.configuration-hash}", h1, sizeof(h1));
	CHECK(*h1, "hash");
	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s patch %s sc --type merge -p "
	                 "'{\"spec\":{\"source\":\"generator://letters\"}}' >/dev/null",
	                 ns, plural) == 0,
	      "patch");
	CHECK(
	    st_wait_change(ns, "job/sc", "{.metadata.annotations.configuration-hash}", h1, h2, sizeof(h2), T),
	    "Job replaced with a new configuration-hash");
	CHECK(phase_is("sc", "Running"), "Running");
	CHECK(it_wait_jsonpath(
	          ns, "job/sc",
	          "{.spec.template.spec.containers[0].env[?(@.name==\"STREAMCONTEXT__SPEC\")].value}", "",
	          1) != 0,
	      "spec env");
	/* status.configurationHash is "<the Job's configuration-hash>/<12 hex
	 * of its template-hash>" */
	get_stream("sc", "{.status.configurationHash}", st, sizeof(st));
	for (int i = 0; i < 100 && (strncmp(st, h2, strlen(h2)) != 0 || st[strlen(h2)] != '/'); i++) {
		usleep(200 * 1000);
		get_stream("sc", "{.status.configurationHash}", st, sizeof(st));
	}
	CHECK(strncmp(st, h2, strlen(h2)) == 0 && st[strlen(h2)] == '/', "status hash %s names job hash %s",
	      st, h2);
}

static void template_change(void)
{
	char a1[128], b1[128], v[128];

	CHECK(mktemplate("shared", "sleep, \"100\"") == 0, "template");
	CHECK(mkstream("tc-a", NULL) == 0 && mkstream("tc-b", NULL) == 0, "streams");
	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s patch %s tc-a tc-b --type merge -p "
	                 "'{\"spec\":{\"jobTemplateRef\":{\"name\":\"shared\"}}}' >/dev/null",
	                 ns, plural) == 0,
	      "use shared");
	CHECK(job_exists("tc-a") && job_exists("tc-b"), "Jobs");
	/* wait until both run from the shared template */
	CHECK(it_wait_jsonpath(ns, "job/tc-a", "{.spec.template.spec.containers[0].command[1]}", "100", T) ==
	          0,
	      "a");
	CHECK(it_wait_jsonpath(ns, "job/tc-b", "{.spec.template.spec.containers[0].command[1]}", "100", T) ==
	          0,
	      "b");
	st_get(ns, "job/tc-a", "{.metadata.uid}", a1, sizeof(a1));
	st_get(ns, "job/tc-b", "{.metadata.uid}", b1, sizeof(b1));
	CHECK(mktemplate("shared", "sleep, \"200\"") == 0, "change template");
	CHECK(st_wait_change(ns, "job/tc-a", "{.metadata.uid}", a1, v, sizeof(v), T), "a restarted");
	CHECK(st_wait_change(ns, "job/tc-b", "{.metadata.uid}", b1, v, sizeof(v), T), "b restarted");
	CHECK(it_wait_jsonpath(ns, "job/tc-a", "{.spec.template.spec.containers[0].command[1]}", "200", T) ==
	          0,
	      "a runs the new template");
	CHECK(it_wait_jsonpath(ns, "job/tc-b", "{.spec.template.spec.containers[0].command[1]}", "200", T) ==
	          0,
	      "b runs the new template");
}

static void job_deleted(void)
{
	char uid[128], uid2[128];

	CHECK(mkstream("jd", NULL) == 0, "create");
	CHECK(job_exists("jd"), "Job");
	st_get(ns, "job/jd", "{.metadata.uid}", uid, sizeof(uid));
	CHECK(it_kubectl(NULL, NULL, "-n %s delete job jd --wait=false >/dev/null", ns) == 0,
	      "delete by hand");
	CHECK(st_wait_change(ns, "job/jd", "{.metadata.uid}", uid, uid2, sizeof(uid2), T), "back");
	CHECK(phase_is("jd", "Running"), "Running");
}

static void failure(void)
{
	char v[512], uid[128];

	CHECK(mkstream("fl", NULL) == 0, "create");
	CHECK(job_exists("fl"), "Job");
	st_get(ns, "job/fl", "{.metadata.uid}", uid, sizeof(uid));
	CHECK(it_job_finish(ns, "fl", false, "BackoffLimitExceeded") == 0, "fail");
	CHECK(phase_is("fl", "Failed"), "Failed");
	get_stream("fl", "{.status.conditions[?(@.type==\"Ready\")].message}", v, sizeof(v));
	CHECK(strstr(v, "BackoffLimitExceeded"), "reason in the condition: %s", v);
	CHECK(st_wait_gone(ns, "job/fl", T), "failed Job deleted");
	sleep(2);
	st_get(ns, "job/fl", "{.metadata.name}", v, sizeof(v));
	CHECK(!*v, "no restart while the spec is unchanged");
	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s patch %s fl --type merge -p '{\"spec\":{\"target\":\"t2\"}}' >/dev/null", ns,
	                 plural) == 0,
	      "spec change");
	CHECK(phase_is("fl", "Running"), "Running again");
	CHECK(st_wait_change(ns, "job/fl", "{.metadata.uid}", uid, v, sizeof(v), T), "new Job");
	/* failing again: the same Event, counted twice, not a second one */
	CHECK(it_job_finish(ns, "fl", false, "BackoffLimitExceeded") == 0, "fail again");
	CHECK(phase_is("fl", "Failed"), "Failed again");
	int count, n = st_wait_events(ns, "fl", "JobFailed", 2, T, &count);
	CHECK(n == 1 && count == 2, "JobFailed: %d Events, count %d", n, count);
	n = st_wait_events(ns, "fl", "Running", 2, T, &count);
	CHECK(n == 1 && count == 2, "Running: %d Events, count %d", n, count);
}

/* What sluice says it remembers beside its caches (SIGUSR1 logs it): the
 * count of the last such line after the signal, -1 when none came. */
static long remembered(void)
{
	static const char tag[] = "controller: ";
	long n = -1;

	for (int tries = 0; tries < 20 && n < 0; tries++) {
		off_t from = 0;
		FILE *f = fopen(logpath, "r");
		char line[1024];

		if (f) {
			fseeko(f, 0, SEEK_END);
			from = ftello(f);
			fclose(f);
		}
		kill(pid, SIGUSR1);
		usleep(200 * 1000);
		f = fopen(logpath, "r");
		if (!f)
			continue;
		fseeko(f, from, SEEK_SET);
		while (fgets(line, sizeof(line), f)) {
			const char *p = strstr(line, tag);
			if (p && strstr(p, "entries remembered"))
				n = strtol(p + strlen(tag), NULL, 10);
		}
		fclose(f);
	}
	return n;
}

/* Every stream deleted (their Jobs go with them, removed by the garbage
 * collector after the streams): what the controller kept for them goes too,
 * whatever the order the deletions arrive in. */
static void forgotten(void)
{
	long n = -1;

	CHECK(it_kubectl(NULL, NULL, "-n %s delete %s --all --wait=false >/dev/null", ns, plural) == 0,
	      "delete every stream");
	CHECK(it_kubectl(NULL, NULL, "-n %s wait --for=delete jobs --all --timeout=60s >/dev/null 2>&1",
	                 ns) == 0,
	      "their Jobs gone");
	for (int i = 0; i < 50 && (n = remembered()) != 0; i++)
		usleep(200 * 1000);
	CHECK(n == 0, "nothing remembered once the streams and Jobs are gone: %ld entries", n);
}

/* A class created before its CRD is Failed, then Ready once the CRD exists;
 * its streams then run. Deleting the class leaves streams and Jobs alone. */
static void class_before_crd(void)
{
	char k2[64], p2[64], v[256], what[320];

	st_kind_name("Late", k2, p2);
	CHECK(st_apply(
	          "apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamClass\nmetadata: {name: %s-late}\n"
	          "spec: {apiGroupRef: streaming.sneaksanddata.com, apiVersion: v1, kindRef: %s, pluralName: "
	          "%s}\n",
	          ns, k2, p2) == 0,
	      "class");
	snprintf(what, sizeof(what), "streamclass/%s-late", ns);
	CHECK(it_wait_jsonpath(NULL, what, "{.status.phase}", "Failed", T) == 0, "Failed without its CRD");
	st_get(NULL, what, "{.status.conditions[0].reason}", v, sizeof(v));
	CHECK(strcmp(v, "KindNotFound") == 0, "reason %s", v);
	CHECK(st_apply_kind_crd(k2, p2) == 0, "CRD");
	CHECK(it_wait_jsonpath(NULL, what, "{.status.phase}", "Ready", T) == 0,
	      "Ready after the CRD appeared");
	CHECK(st_apply("apiVersion: streaming.sneaksanddata.com/v1\nkind: %s\nmetadata: {name: late, "
	               "namespace: %s}\n"
	               "spec: {jobTemplateRef: {name: stream}}\n",
	               k2, ns) == 0,
	      "stream of the new kind");
	CHECK(job_exists("late"), "its Job");
	CHECK(it_kubectl(NULL, NULL, "delete %s >/dev/null", what) == 0, "delete class");
	sleep(3);
	st_get(ns, "job/late", "{.metadata.name}", v, sizeof(v));
	CHECK(strcmp(v, "late") == 0, "Job left alone after the class went");
	/* Cleanup: the stream, then its Job (the garbage collector may not
	 * resolve an owner whose CRD goes at once), then the CRD. */
	it_kubectl(NULL, NULL, "-n %s delete %s late --timeout=60s >/dev/null 2>&1", ns, p2);
	it_kubectl(NULL, NULL, "-n %s delete job late --ignore-not-found --timeout=60s >/dev/null 2>&1", ns);
	st_delete_kind(p2);
}

int main(void)
{
	char v[256], what[320];
	int rc;

	it_require_cluster();
	st_plan(10);
	if (st_make_kind("Ctl", kind, plural) != 0 || it_ns_create("ctl-life", ns) != 0) {
		printf("Bail out! setup (CRDs, namespace)\n");
		return 1;
	}
	snprintf(clsbuf, sizeof(clsbuf), "%s", ns);
	cls = clsbuf;
	snprintf(logpath, sizeof(logpath), "/tmp/sluice-%s.log", ns);
	printf("# kind %s, namespace %s, sluice log %s, identity %s\n", kind, ns, logpath,
	       it_kubeconfig_restricted() ? "restricted" : "admin");
	if (st_apply("apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamClass\nmetadata: {name: %s}\n"
	             "spec: {apiGroupRef: streaming.sneaksanddata.com, apiVersion: v1, kindRef: %s, "
	             "pluralName: %s}\n",
	             cls, kind, plural) != 0 ||
	    mktemplate("stream", "sleep, \"3600\"") != 0 || mktemplate("backfill", "sleep, \"60\"") != 0) {
		printf("Bail out! class and templates\n");
		return 1;
	}
	pid = st_sluice_start(ns, logpath);
	snprintf(what, sizeof(what), "streamclass/%s", cls);
	if (it_wait_jsonpath(NULL, what, "{.status.phase}", "Ready", T) != 0) {
		st_get(NULL, what, "{.status}", v, sizeof(v));
		printf("# class status: %s\n", v);
	}

	st_run(1, "a stream from create to delete (backfill, running, deleted)", life);
	st_run(2, "a BackfillRequest created by a user on a running stream", user_backfill);
	st_run(3, "suspend and resume", suspend_resume);
	st_run(4, "a spec change restarts the Job with a new configuration-hash", spec_change);
	st_run(5, "a template change restarts the Jobs of every stream using it", template_change);
	st_run(6, "a Job deleted by hand comes back", job_deleted);
	st_run(7,
	       "a failure, then a spec change, running again, and the same failure: one Event counted twice",
	       failure);
	st_run(8, "a StreamClass created before and after its CRD; deleted class leaves Jobs",
	       class_before_crd);
	st_run(9, "what the controller kept for streams goes when they are deleted", forgotten);

	rc = st_sluice_stop(pid);
	st_failed = 0;
	if (rc != 0)
		printf("# sluice exit status %d after SIGTERM (log %s)\n", rc, logpath);
	printf("%s 10 - SIGTERM: sluice stops and exits 0\n", rc == 0 ? "ok" : "not ok");
	it_kubectl(NULL, NULL, "delete streamclass %s --wait=false >/dev/null 2>&1", cls);
	it_ns_delete(ns);
	st_delete_kind(plural);
	return st_exit() || rc != 0;
}
