/* The real Arcane plugins' shapes against the real API server: a stream CRD
 * shaped like the SQL Server change-tracking plugin's (spec.execution with
 * layouts v1/v2, streamingBackend.changeCapture or batch) and one like the
 * Synapse Link plugin's (layout v0, template refs without a namespace
 * property), both with the plugins' pruned status schema (phase,
 * configurationHash, conditions[].{type,status,message,phase} and nothing
 * else), and the BackfillRequest CRD with its status.phase enum. `sluice run
 * --no-sync` runs as a child under the restricted identity; the test plays
 * the job controller by writing Job status. */
#include "stest.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T 60000 /* ms: every wait */

static char ns[64], ns2[64], sqlkind[64], sqlplural[64], synkind[64], synplural[64], logpath[256];
static char sqlcls[96], syncls[96];

/* A plugin CRD: spec free beside what the layouts read (as the real plugins
 * keep their own fields), status exactly as the plugins declare it. */
static int plugin_crd(const char *kind, const char *plural, bool v0)
{
	const char *spec_v1 = "                execution:\n"
	                      "                  type: object\n"
	                      "                  required: [layoutVersion, streamingBackend, suspended]\n"
	                      "                  properties:\n"
	                      "                    layoutVersion: {type: string}\n"
	                      "                    suspended: {type: boolean}\n"
	                      "                    backfillJobTemplateRef: &ref\n"
	                      "                      type: object\n"
	                      "                      properties:\n"
	                      "                        apiGroup: {type: string}\n"
	                      "                        kind: {type: string}\n"
	                      "                        name: {type: string}\n"
	                      "                        namespace: {type: string}\n"
	                      "                    streamingBackend:\n"
	                      "                      type: object\n"
	                      "                      properties:\n"
	                      "                        changeCapture:\n"
	                      "                          type: object\n"
	                      "                          properties:\n"
	                      "                            jobTemplateRef: *ref\n"
	                      "                            backfillJobTemplateRef: *ref\n"
	                      "                        batch:\n"
	                      "                          type: object\n"
	                      "                          properties:\n"
	                      "                            schedule: {type: string}\n"
	                      "                            jobTemplateRef: *ref\n"
	                      "                table: {type: string}\n"
	                      "                bigId: {type: integer}\n"
	                      "                note: {type: string}\n"
	                      "                connectionStringRef:\n"
	                      "                  type: object\n"
	                      "                  properties: {name: {type: string}}\n";
	/* Synapse-like: refs have name/kind/apiGroup but no namespace. */
	const char *spec_v0 = "                suspended: {type: boolean}\n"
	                      "                jobTemplateRef: &ref\n"
	                      "                  type: object\n"
	                      "                  properties:\n"
	                      "                    apiGroup: {type: string}\n"
	                      "                    kind: {type: string}\n"
	                      "                    name: {type: string}\n"
	                      "                backfillJobTemplateRef: *ref\n"
	                      "                table: {type: string}\n";
	int r = st_apply("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
	                 "metadata: {name: %s.streaming.sneaksanddata.com}\n"
	                 "spec:\n  group: streaming.sneaksanddata.com\n  scope: Namespaced\n"
	                 "  names: {kind: %s, plural: %s, listKind: %sList, singular: %.*s}\n"
	                 "  versions:\n  - name: v1\n    served: true\n    storage: true\n"
	                 "    subresources: {status: {}}\n"
	                 "    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n"
	                 "          spec:\n            type: object\n            properties:\n%s"
	                 "          status:\n            type: object\n            properties:\n"
	                 "              phase: {type: string}\n"
	                 "              configurationHash: {type: string}\n"
	                 "              conditions:\n                type: array\n                items:\n"
	                 "                  type: object\n                  required: [status, type]\n"
	                 "                  properties:\n"
	                 "                    message: {type: string}\n"
	                 "                    phase: {type: string}\n"
	                 "                    type: {type: string}\n"
	                 "                    status: {type: string, enum: [\"True\", \"False\"]}\n",
	                 plural, kind, plural, kind, (int)strlen(plural) - 1, plural, v0 ? spec_v0 : spec_v1);
	if (r != 0)
		return r;
	return it_kubectl(NULL, NULL,
	                  "wait --for condition=established --timeout=60s crd/%s.streaming.sneaksanddata.com "
	                  ">/dev/null",
	                  plural);
}

static int mktemplate(const char *tns, const char *name, const char *image)
{
	/* A whole batch/v1 Job in spec, as the plugins ship them. */
	return st_apply("apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamingJobTemplate\n"
	                "metadata: {name: %s, namespace: %s}\nspec:\n"
	                "  apiVersion: batch/v1\n  kind: Job\n  metadata:\n    labels: {app: plugin}\n"
	                "  spec:\n    backoffLimit: 0\n    ttlSecondsAfterFinished: 3600\n"
	                "    template:\n      spec:\n        restartPolicy: Never\n"
	                "        containers: [{name: main, image: %s}]\n",
	                name, tns, image);
}

/* A SQL Server-like stream in layout v1 (v2 with backfill2) */
static int sqlstream(const char *sns, const char *name, const char *layout, bool suspended,
                     const char *backend)
{
	return st_apply(
	    "apiVersion: streaming.sneaksanddata.com/v1\nkind: %s\nmetadata: {name: %s, namespace: %s}\n"
	    "spec:\n  table: dbo.orders\n  connectionStringRef: {name: conn}\n"
	    "  execution:\n    layoutVersion: %s\n    suspended: %s\n"
	    "    backfillJobTemplateRef: {apiGroup: streaming.sneaksanddata.com, kind: "
	    "StreamingJobTemplate, name: backfill}\n"
	    "    streamingBackend:\n%s",
	    sqlkind, name, sns, layout, suspended ? "true" : "false", backend);
}

static const char *CC =
    "      changeCapture:\n        jobTemplateRef: {apiGroup: streaming.sneaksanddata.com, "
    "kind: StreamingJobTemplate, name: stream}\n";
static const char *BATCH = "      batch:\n        schedule: '*/5 * * * *'\n"
                           "        jobTemplateRef: {kind: StreamingJobTemplate, name: stream}\n";

/* Sets spec.execution.suspended of stream `what` ("plural/name") in ns. */
static int set_suspended(const char *what, bool v)
{
	return it_kubectl(
	    NULL, NULL,
	    "-n %s patch %s --type merge -p '{\"spec\":{\"execution\":{\"suspended\":%s}}}' >/dev/null", ns,
	    what, v ? "true" : "false");
}

static bool phase_is(const char *sns, const char *plural, const char *stream, const char *phase)
{
	char what[256];
	snprintf(what, sizeof(what), "%s/%s", plural, stream);
	return it_wait_jsonpath(sns, what, "{.status.phase}", phase, T) == 0;
}

static bool exists(const char *sns, const char *what)
{
	char path[64];
	const char *slash = strchr(what, '/');
	snprintf(path, sizeof(path), "%s", slash ? slash + 1 : what);
	return it_wait_jsonpath(sns, what, "{.metadata.name}", path, T) == 0;
}

static bool absent(const char *sns, const char *what)
{
	char v[256];
	st_get(sns, what, "{.metadata.name}", v, sizeof(v));
	return !*v;
}

/* The events of an object: "reason=message" lines. */
static char *events_of(const char *sns, const char *name)
{
	char *ev = NULL;
	it_kubectl(&ev, NULL,
	           "-n %s get events --field-selector involvedObject.name=%s -o "
	           "jsonpath='{range .items[*]}{.type} {.reason}={.message}{\"\\n\"}{end}'",
	           sns, name);
	return ev;
}

/* v1 changeCapture: initial backfill, then the streaming Job; the status is
 * what the plugin CRD keeps, and the stream names its Job as Arcane does. */
static void layout_v1(void)
{
	char v[512], bfr[256], what[320];

	CHECK(sqlstream(ns, "orders", "v1", false, CC) == 0, "create");
	CHECK(phase_is(ns, sqlplural, "orders", "Backfilling"), "Backfilling");
	CHECK(exists(ns, "job/orders-backfill"), "backfill Job");
	st_get(ns, "job/orders-backfill", "{.spec.template.spec.containers[0].image}", v, sizeof(v));
	CHECK(strcmp(v, "backfill:1") == 0, "backfill template's image: %s", v);
	st_get(ns, "bfr", "{.items[0].metadata.name}", bfr, sizeof(bfr));
	CHECK(strncmp(bfr, "orders-initial-backfill-", 24) == 0, "initial request %s", bfr);
	CHECK(it_job_finish(ns, "orders-backfill", true, NULL) == 0, "finish");
	snprintf(what, sizeof(what), "bfr/%s", bfr);
	CHECK(it_wait_jsonpath(ns, what, "{.spec.completed}", "true", T) == 0, "request completed");
	st_get(ns, what, "{.status.phase}", v, sizeof(v));
	CHECK(!*v, "no status.phase outside the CRD's enum written: %s", v);
	CHECK(phase_is(ns, sqlplural, "orders", "Running"), "Running");
	CHECK(exists(ns, "job/orders"), "streaming Job");
	st_get(ns, "job/orders", "{.spec.template.spec.containers[0].image}", v, sizeof(v));
	CHECK(strcmp(v, "stream:1") == 0, "changeCapture template's image: %s", v);
	/* the status as stored: the plugin schema pruned the rest */
	snprintf(what, sizeof(what), "%s/orders", sqlplural);
	st_get(ns, what, "{.status.conditions[0].phase}/{.status.conditions[0].status}", v, sizeof(v));
	CHECK(strcmp(v, "Running/True") == 0, "condition %s", v);
	st_get(ns, what, "{.status.observedGeneration}{.status.conditions[0].reason}", v, sizeof(v));
	CHECK(!*v, "pruned fields absent: %s", v);
	/* hash: md5 of STREAMCONTEXT__SPEC */
	char h[64];
	st_get(ns, "job/orders", "{.metadata.annotations.configuration-hash}", h, sizeof(h));
	st_get(ns, what, "{.status.configurationHash}", v, sizeof(v));
	CHECK(strlen(h) == 32 && strncmp(v, h, 32) == 0 && v[32] == '/', "status hash %s names Job hash %s",
	      v, h);
}

/* v2: the backfill template under changeCapture wins. */
static void layout_v2(void)
{
	char v[256];
	char backend[512];

	snprintf(backend, sizeof(backend), "%s        backfillJobTemplateRef: {name: backfill2}\n", CC);
	CHECK(sqlstream(ns, "v2s", "v2", false, backend) == 0, "create");
	CHECK(phase_is(ns, sqlplural, "v2s", "Backfilling"), "Backfilling");
	CHECK(exists(ns, "job/v2s-backfill"), "backfill Job");
	st_get(ns, "job/v2s-backfill", "{.spec.template.spec.containers[0].image}", v, sizeof(v));
	CHECK(strcmp(v, "backfill:2") == 0, "v2 backfill template: %s", v);
}

/* v0 (Synapse-like): refs without a namespace property resolve in the
 * stream's namespace. */
static void layout_v0(void)
{
	char v[256];

	CHECK(
	    st_apply(
	        "apiVersion: streaming.sneaksanddata.com/v1\nkind: %s\nmetadata: {name: syn, namespace: %s}\n"
	        "spec:\n  suspended: false\n  table: t\n"
	        "  jobTemplateRef: {apiGroup: streaming.sneaksanddata.com, kind: StreamingJobTemplate, name: "
	        "stream}\n"
	        "  backfillJobTemplateRef: {kind: StreamingJobTemplate, name: backfill}\n",
	        synkind, ns) == 0,
	    "create");
	CHECK(phase_is(ns, synplural, "syn", "Backfilling"), "Backfilling");
	CHECK(it_job_finish(ns, "syn-backfill", true, NULL) == 0, "finish");
	CHECK(phase_is(ns, synplural, "syn", "Running"), "Running");
	st_get(ns, "job/syn", "{.metadata.labels.arcane/stream-kind}", v, sizeof(v));
	CHECK(strcmp(v, synkind) == 0, "kind label %s", v);
}

/* An unknown layout and a spec without a backend: Failed, a condition and a
 * Warning Event that say what is wrong; no Job. */
static void layout_errors(void)
{
	char v[512], what[320];

	CHECK(sqlstream(ns, "bad", "v7", false, CC) == 0, "create");
	CHECK(phase_is(ns, sqlplural, "bad", "Failed"), "Failed");
	snprintf(what, sizeof(what), "%s/bad", sqlplural);
	st_get(ns, what, "{.status.conditions[0].message}", v, sizeof(v));
	CHECK(strstr(v, "unknown layout version \"v7\""), "message: %s", v);
	char *ev = events_of(ns, "bad");
	CHECK(ev && strstr(ev, "Warning InvalidSpec="), "events: %s", ev ? ev : "");
	free(ev);
	CHECK(absent(ns, "job/bad") && absent(ns, "job/bad-backfill"), "no Job");
	CHECK(sqlstream(ns, "nobe", "v1", false, "      {}\n") == 0, "create without backend");
	CHECK(phase_is(ns, sqlplural, "nobe", "Failed"), "Failed");
	snprintf(what, sizeof(what), "%s/nobe", sqlplural);
	st_get(ns, what, "{.status.conditions[0].message}", v, sizeof(v));
	CHECK(strstr(v, "no usable backend"), "message: %s", v);
}

/* The CronJob backend: create, suspend, backfill, spec change, switch. */
static void cron(void)
{
	char v[512], uid[128], what[320];

	CHECK(sqlstream(ns, "nightly", "v1", false, BATCH) == 0, "create");
	CHECK(phase_is(ns, sqlplural, "nightly", "Scheduled"), "Scheduled");
	CHECK(exists(ns, "cronjob/nightly"), "CronJob");
	st_get(ns, "cronjob/nightly", "{.spec.schedule}|{.spec.concurrencyPolicy}|{.spec.suspend}", v,
	       sizeof(v));
	CHECK(strcmp(v, "*/5 * * * *|Forbid|false") == 0, "CronJob spec %s", v);
	st_get(ns, "cronjob/nightly",
	       "{.metadata.labels.arcane/stream-id}|{.spec.jobTemplate.metadata.labels.arcane/stream-id}|"
	       "{.metadata.ownerReferences[0].name}",
	       v, sizeof(v));
	CHECK(strcmp(v, "nightly|nightly|nightly") == 0, "labels and owner %s", v);
	st_get(ns, "cronjob/nightly",
	       "{.spec.jobTemplate.spec.template.spec.containers[0].env[?(@.name==\"STREAMCONTEXT__BACKFILL_"
	       "ID\")]."
	       "valueFrom.fieldRef.fieldPath}",
	       v, sizeof(v));
	CHECK(strcmp(v, "metadata.labels['job-name']") == 0, "BACKFILL_ID from %s", v);
	st_get(ns, "bfr", "{.items[?(@.spec.streamId==\"nightly\")].metadata.name}", v, sizeof(v));
	CHECK(!*v, "no initial BackfillRequest: %s", v);
	st_get(ns, "cronjob/nightly", "{.metadata.uid}", uid, sizeof(uid));

	/* suspend: spec.suspend, CronJob kept */
	snprintf(what, sizeof(what), "%s/nightly", sqlplural);
	CHECK(set_suspended(what, true) == 0, "suspend");
	CHECK(phase_is(ns, sqlplural, "nightly", "Suspended"), "Suspended");
	CHECK(it_wait_jsonpath(ns, "cronjob/nightly", "{.spec.suspend}", "true", T) == 0, "spec.suspend");
	CHECK(set_suspended(what, false) == 0, "resume");
	CHECK(phase_is(ns, sqlplural, "nightly", "Scheduled"), "Scheduled again");
	CHECK(it_wait_jsonpath(ns, "cronjob/nightly", "{.spec.suspend}", "false", T) == 0, "resumed");

	/* a BackfillRequest: CronJob paused, backfill Job, completed, resumed */
	CHECK(st_apply("apiVersion: streaming.sneaksanddata.com/v1\nkind: BackfillRequest\n"
	               "metadata: {name: nightly-reload, namespace: %s}\n"
	               "spec: {streamClass: %s, streamId: nightly, payload: {from: '2024-01-01'}}\n",
	               ns, sqlcls) == 0,
	      "request");
	CHECK(phase_is(ns, sqlplural, "nightly", "Backfilling"), "Backfilling");
	CHECK(it_wait_jsonpath(ns, "cronjob/nightly", "{.spec.suspend}", "true", T) == 0, "paused");
	CHECK(exists(ns, "job/nightly-backfill"), "backfill Job");
	CHECK(it_job_finish(ns, "nightly-backfill", true, NULL) == 0, "finish");
	CHECK(it_wait_jsonpath(ns, "bfr/nightly-reload", "{.spec.completed}", "true", T) == 0, "completed");
	st_get(ns, "bfr/nightly-reload", "{.spec.payload.from}|{.status.phase}", v, sizeof(v));
	CHECK(strcmp(v, "2024-01-01|") == 0, "payload kept, no status.phase: %s", v);
	CHECK(phase_is(ns, sqlplural, "nightly", "Scheduled"), "Scheduled after the backfill");
	CHECK(it_wait_jsonpath(ns, "cronjob/nightly", "{.spec.suspend}", "false", T) == 0, "CronJob resumed");

	/* spec change: updated in place */
	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s patch %s --type merge -p "
	                 "'{\"spec\":{\"execution\":{\"streamingBackend\":{\"batch\":{\"schedule\":\"0 3 * * "
	                 "*\"}}}}}' "
	                 ">/dev/null",
	                 ns, what) == 0,
	      "schedule change");
	CHECK(it_wait_jsonpath(ns, "cronjob/nightly", "{.spec.schedule}", "0 3 * * *", T) == 0,
	      "schedule updated");
	st_get(ns, "cronjob/nightly", "{.metadata.uid}", v, sizeof(v));
	CHECK(strcmp(v, uid) == 0, "same CronJob (uid %s, was %s)", v, uid);

	/* switch to changeCapture and back: no Failed on the way */
	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s patch %s --type json -p '[{\"op\":\"replace\",\"path\":\"/spec/execution/"
	                 "streamingBackend\",\"value\":{\"changeCapture\":{\"jobTemplateRef\":{\"name\":"
	                 "\"stream\"}}}}]' "
	                 ">/dev/null",
	                 ns, what) == 0,
	      "to changeCapture");
	CHECK(phase_is(ns, sqlplural, "nightly", "Running"), "Running");
	CHECK(exists(ns, "job/nightly"), "streaming Job");
	CHECK(st_wait_gone(ns, "cronjob/nightly", T), "CronJob removed");
	CHECK(it_kubectl(
	          NULL, NULL,
	          "-n %s patch %s --type json -p '[{\"op\":\"replace\",\"path\":\"/spec/execution/"
	          "streamingBackend\",\"value\":{\"batch\":{\"schedule\":\"*/5 * * * *\",\"jobTemplateRef\":{"
	          "\"name\":\"stream\"}}}}]' >/dev/null",
	          ns, what) == 0,
	      "to batch");
	CHECK(phase_is(ns, sqlplural, "nightly", "Scheduled"), "Scheduled");
	CHECK(exists(ns, "cronjob/nightly"), "CronJob again");
	CHECK(st_wait_gone(ns, "job/nightly", T), "streaming Job removed");
	char *ev = events_of(ns, "nightly");
	CHECK(ev && !strstr(ev, "Failed"), "no Failed on the way: %s", ev ? ev : "");
	free(ev);
}

/* Under the pruned schema a failed Job stays Failed: no new Job, no status
 * write, until the spec changes. */
static void failure_sticks(void)
{
	char rv[64], v[256], what[320];

	CHECK(sqlstream(ns, "flaky", "v1", true, CC) == 0, "create suspended");
	CHECK(phase_is(ns, sqlplural, "flaky", "Suspended"), "Suspended");
	snprintf(what, sizeof(what), "%s/flaky", sqlplural);
	CHECK(set_suspended(what, false) == 0, "resume");
	CHECK(exists(ns, "job/flaky"), "Job");
	CHECK(it_job_finish(ns, "flaky", false, "BackoffLimitExceeded") == 0, "fail it");
	CHECK(phase_is(ns, sqlplural, "flaky", "Failed"), "Failed");
	CHECK(st_wait_gone(ns, "job/flaky", T), "failed Job deleted");
	sleep(2);
	st_get(ns, what, "{.metadata.resourceVersion}", rv, sizeof(rv));
	sleep(8);
	CHECK(absent(ns, "job/flaky"), "no new Job after 10 s");
	st_get(ns, what, "{.metadata.resourceVersion}|{.status.phase}", v, sizeof(v));
	char want[128];
	snprintf(want, sizeof(want), "%s|Failed", rv);
	CHECK(strcmp(v, want) == 0, "no write in 10 s: %s (was %s)", v, want);
	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s patch %s --type merge -p '{\"spec\":{\"table\":\"dbo.orders2\"}}' >/dev/null",
	                 ns, what) == 0,
	      "spec change");
	CHECK(phase_is(ns, sqlplural, "flaky", "Running"), "Running again");
	CHECK(exists(ns, "job/flaky"), "new Job");
}

/* Created suspended: no initial BackfillRequest; resumed, the streaming Job
 * starts directly. */
static void created_suspended(void)
{
	char v[256], what[320];

	CHECK(sqlstream(ns, "quiet", "v1", true, CC) == 0, "create suspended");
	CHECK(phase_is(ns, sqlplural, "quiet", "Suspended"), "Suspended");
	snprintf(what, sizeof(what), "%s/quiet", sqlplural);
	CHECK(set_suspended(what, false) == 0, "resume");
	CHECK(phase_is(ns, sqlplural, "quiet", "Running"), "Running");
	CHECK(exists(ns, "job/quiet"), "streaming Job");
	st_get(ns, "bfr", "{.items[?(@.spec.streamId==\"quiet\")].metadata.name}", v, sizeof(v));
	CHECK(!*v, "no BackfillRequest: %s", v);
	CHECK(absent(ns, "job/quiet-backfill"), "no backfill Job");
}

/* A request naming another StreamClass is not run, and says why. */
static void wrong_class(void)
{
	CHECK(sqlstream(ns, "wc", "v1", true, CC) == 0, "create");
	CHECK(phase_is(ns, sqlplural, "wc", "Suspended"), "Suspended");
	CHECK(st_apply("apiVersion: streaming.sneaksanddata.com/v1\nkind: BackfillRequest\n"
	               "metadata: {name: wc-other, namespace: %s}\nspec: {streamClass: %s, streamId: wc}\n",
	               ns, syncls) == 0,
	      "request");
	char *ev = NULL;
	for (int i = 0; i < 100; i++) {
		free(ev);
		ev = events_of(ns, "wc-other");
		if (ev && strstr(ev, "StreamClassMismatch"))
			break;
		usleep(200 * 1000);
	}
	CHECK(ev && strstr(ev, "Warning StreamClassMismatch=") && strstr(ev, sqlcls), "events: %s",
	      ev ? ev : "");
	free(ev);
	char what[320];
	snprintf(what, sizeof(what), "%s/wc", sqlplural);
	CHECK(set_suspended(what, false) == 0, "resume");
	CHECK(phase_is(ns, sqlplural, "wc", "Running"), "Running (the request is not run)");
	CHECK(absent(ns, "job/wc-backfill"), "no backfill Job");
}

/* md5 of Go's json.Marshal of the spec, computed apart from sluice (python,
 * for specs of plain ASCII strings, where both agree). */
static void arcane_hash(const char *sns, const char *what, char out[64])
{
	char *o = NULL;
	it_kubectl(
	    &o, NULL,
	    "-n %s get %s -o json | python3 -c 'import sys,json,hashlib; "
	    "s=json.dumps(json.load(sys.stdin)[\"spec\"],sort_keys=True,separators=(\",\",\":\"),"
	    "ensure_ascii=False); "
	    "s=s.replace(\"<\",\"\\\\u003c\").replace(\">\",\"\\\\u003e\").replace(\"&\",\"\\\\u0026\"); "
	    "print(hashlib.md5(s.encode()).hexdigest(),end=\"\")'",
	    sns, what);
	snprintf(out, 64, "%s", o ? o : "");
	free(o);
}

/* configuration-hash is the MD5 of Go's encoding/json of the spec as the
 * server returns it: an integer beyond 2^53 stays exact, <>& are escaped. */
static void hash_exact(void)
{
	char h[64], v[4096], what[320];

	CHECK(st_apply(
	          "apiVersion: streaming.sneaksanddata.com/v1\nkind: %s\nmetadata: {name: exact, namespace: "
	          "%s}\n"
	          "spec:\n  bigId: 9007199254740993\n  note: '<a>&b'\n  execution:\n    layoutVersion: v1\n"
	          "    suspended: false\n    streamingBackend:\n%s",
	          sqlkind, ns, CC) == 0,
	      "create");
	CHECK(exists(ns, "job/exact"), "Job");
	snprintf(what, sizeof(what), "%s/exact", sqlplural);
	arcane_hash(ns, what, h);
	st_get(ns, "job/exact", "{.metadata.annotations.configuration-hash}", v, sizeof(v));
	CHECK(strlen(h) == 32 && strcmp(v, h) == 0, "configuration-hash %s, md5 of Go's JSON %s", v, h);
	st_get(ns, "job/exact",
	       "{.spec.template.spec.containers[0].env[?(@.name==\"STREAMCONTEXT__SPEC\")].value}", v,
	       sizeof(v));
	CHECK(strstr(v, "\"bigId\":9007199254740993") && strstr(v, "\\u003ca\\u003e\\u0026b"), "SPEC %s", v);
}

/* A Job as the Arcane operator makes it (no managed-by label, no template
 * hash), owned by the stream. */
static int arcane_job(const char *sns, const char *name, const char *stream, const char *hash, bool backfill,
                      const char *bfr)
{
	char uid[128], what[320];
	snprintf(what, sizeof(what), "%s/%s", sqlplural, stream);
	st_get(sns, what, "{.metadata.uid}", uid, sizeof(uid));
	return st_apply(
	    "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: %s\n  namespace: %s\n"
	    "  labels: {arcane/stream-id: %s, arcane/stream-kind: %s, arcane/backfilling: \"%s\"}\n"
	    "  annotations: {configuration-hash: \"%s\"}\n"
	    "  ownerReferences: [{apiVersion: streaming.sneaksanddata.com/v1, kind: %s, name: %s, uid: %s, "
	    "controller: true}]\n"
	    "spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n"
	    "      containers:\n      - name: main\n        image: arcane:1\n"
	    "        env: [{name: STREAMCONTEXT__BACKFILL, value: \"%s\"}, {name: "
	    "STREAMCONTEXT__BACKFILL_ID, value: \"%s\"}]\n",
	    name, sns, stream, sqlkind, backfill ? "true" : "false", hash, sqlkind, stream, uid,
	    backfill ? "true" : "false", bfr ? bfr : "");
}

static int set_status(const char *sns, const char *stream, const char *phase)
{
	return it_kubectl(
	    NULL, NULL,
	    "-n %s patch %s/%s --subresource=status --type merge -p "
	    "'{\"status\":{\"phase\":\"%s\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"message\":\"set by the Arcane operator\"}]}}' >/dev/null",
	    sns, sqlplural, stream, phase);
}

/* A cluster where the Arcane operator ran: its streaming Job of the current
 * spec is kept (no restart), its running backfill Job named S is the
 * stream's backfill, a Job of another spec is replaced. */
static void adoption(void)
{
	char h[64], uid_a[128], uid_b[128], uid_c[128], v[256];
	pid_t pid;

	/* ns2 is not watched until the second sluice starts. */
	CHECK(mktemplate(ns2, "stream", "stream:1") == 0 && mktemplate(ns2, "backfill", "backfill:1") == 0,
	      "templates");
	CHECK(sqlstream(ns2, "keep", "v1", false, CC) == 0 && sqlstream(ns2, "bf", "v1", false, CC) == 0 &&
	          sqlstream(ns2, "old", "v1", false, CC) == 0,
	      "streams");
	char what[320];
	snprintf(what, sizeof(what), "%s/keep", sqlplural);
	arcane_hash(ns2, what, h);
	CHECK(strlen(h) == 32, "hash %s", h);
	CHECK(arcane_job(ns2, "keep", "keep", h, false, NULL) == 0, "Arcane's streaming Job");
	CHECK(set_status(ns2, "keep", "Running") == 0, "status");
	CHECK(st_apply("apiVersion: streaming.sneaksanddata.com/v1\nkind: BackfillRequest\n"
	               "metadata: {name: bf-initial-backfill-x1, namespace: %s}\nspec: {streamClass: %s, "
	               "streamId: bf}\n",
	               ns2, sqlcls) == 0,
	      "request");
	CHECK(arcane_job(ns2, "bf", "bf", "6162:6364", true, "bf-initial-backfill-x1") == 0,
	      "Arcane's backfill Job");
	CHECK(set_status(ns2, "bf", "Backfilling") == 0, "status");
	CHECK(arcane_job(ns2, "old", "old", "0123456789abcdef0123456789abcdef", false, NULL) == 0,
	      "stale Job");
	CHECK(set_status(ns2, "old", "Running") == 0, "status");
	st_get(ns2, "job/keep", "{.metadata.uid}", uid_a, sizeof(uid_a));
	st_get(ns2, "job/bf", "{.metadata.uid}", uid_b, sizeof(uid_b));
	st_get(ns2, "job/old", "{.metadata.uid}", uid_c, sizeof(uid_c));

	char log2[300];
	snprintf(log2, sizeof(log2), "%s.adopt", logpath);
	pid = st_sluice_start(ns2, log2);
	CHECK(pid > 0, "second sluice");
	/* the stale one is replaced: proof that sluice decided on ns2 */
	for (int i = 0; i < 300; i++) {
		st_get(ns2, "job/old", "{.metadata.uid}", v, sizeof(v));
		if (*v && strcmp(v, uid_c) != 0)
			break;
		usleep(200 * 1000);
	}
	CHECK(*v && strcmp(v, uid_c) != 0, "stale Job replaced (uid %s)", v);
	sleep(3);
	st_get(ns2, "job/keep", "{.metadata.uid}{.metadata.deletionTimestamp}", v, sizeof(v));
	CHECK(strcmp(v, uid_a) == 0, "matching Job kept running: %s (was %s)", v, uid_a);
	snprintf(what, sizeof(what), "%s/keep", sqlplural);
	CHECK(it_wait_jsonpath(ns2, what, "{.status.phase}", "Running", T) == 0, "Running");
	st_get(ns2, "job/bf", "{.metadata.uid}{.metadata.deletionTimestamp}", v, sizeof(v));
	CHECK(strcmp(v, uid_b) == 0, "Arcane's backfill Job kept: %s (was %s)", v, uid_b);
	CHECK(absent(ns2, "job/bf-backfill"), "no second backfill Job");
	st_get(ns2, "bfr", "{.items[*].metadata.name}", v, sizeof(v));
	CHECK(strcmp(v, "bf-initial-backfill-x1") == 0, "no new request: %s", v);
	/* it finishes: the request completes, the streaming Job follows */
	CHECK(it_job_finish(ns2, "bf", true, NULL) == 0, "finish");
	CHECK(it_wait_jsonpath(ns2, "bfr/bf-initial-backfill-x1", "{.spec.completed}", "true", T) == 0,
	      "completed");
	CHECK(it_wait_jsonpath(ns2, "job/bf", "{.metadata.labels.arcane/backfilling}", "false", T) == 0,
	      "streaming Job bf");
	snprintf(what, sizeof(what), "%s/bf", sqlplural);
	CHECK(it_wait_jsonpath(ns2, what, "{.status.phase}", "Running", T) == 0, "Running");
	st_sluice_stop(pid);
}

/* 1,000 converged streams cost no write over 60 s. */
static void converged_zero_writes(void)
{
	enum { N = 1000 };
	char *yaml = NULL, *o = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&yaml, &len);

	CHECK(f, "memstream");
	for (int i = 0; i < N; i++)
		fprintf(f,
		        "---\napiVersion: streaming.sneaksanddata.com/v1\nkind: %s\nmetadata: {name: z%04d, "
		        "namespace: %s}\n"
		        "spec:\n  table: t%d\n  execution:\n    layoutVersion: v1\n    suspended: false\n"
		        "    streamingBackend:\n%s",
		        sqlkind, i, ns, i, CC);
	fclose(f);
	int r = it_kubectl(NULL, yaml, "create -f - >/dev/null");
	free(yaml);
	CHECK(r == 0, "create %d streams", N);
	int running = 0;
	for (int w = 0; w < 240 && running < N; w++) {
		free(o);
		o = NULL;
		it_kubectl(&o, NULL,
		           "-n %s get %s -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}'", ns,
		           sqlplural);
		running = 0;
		for (char *p = o; p && (p = strstr(p, "Running")); p += 7)
			running++;
		if (running < N)
			sleep(1);
	}
	free(o);
	o = NULL;
	CHECK(running >= N, "%d streams Running", running);
	sleep(3);
	char *before = NULL, *after = NULL;
	const char *q =
	    "-n %s get %s,jobs -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.resourceVersion}"
	    "{\"\\n\"}{end}'";
	it_kubectl(&before, NULL, q, ns, sqlplural);
	printf("# %d streams Running; watching 60 s for writes\n", running);
	fflush(stdout);
	sleep(60);
	it_kubectl(&after, NULL, q, ns, sqlplural);
	bool same = before && after && strcmp(before, after) == 0;
	size_t diff = 0;
	if (!same && before && after) {
		for (char *a = before, *b = after; *a && *b; a++, b++)
			if (*a != *b) {
				diff = (size_t)(a - before);
				break;
			}
	}
	CHECK(same, "streams or Jobs written while converged (first difference at byte %zu: %.80s)", diff,
	      after ? after + diff : "");
	free(before);
	free(after);
}

int main(void)
{
	char what[320], v[256];
	pid_t pid;
	int rc;

	it_require_cluster();
	st_plan(13);
	st_kind_name("Sql", sqlkind, sqlplural);
	st_kind_name("Syn", synkind, synplural);
	if (it_kubectl(NULL, NULL, "apply -f '%s/crds/' >/dev/null", SLUICE_SOURCE_ROOT) != 0 ||
	    plugin_crd(sqlkind, sqlplural, false) != 0 || plugin_crd(synkind, synplural, true) != 0 ||
	    it_ns_create("ctl-arcane", ns) != 0 || it_ns_create("ctl-adopt", ns2) != 0) {
		printf("Bail out! setup (CRDs, namespaces)\n");
		return 1;
	}
	snprintf(sqlcls, sizeof(sqlcls), "%s-sql", ns);
	snprintf(syncls, sizeof(syncls), "%s-syn", ns);
	snprintf(logpath, sizeof(logpath), "/tmp/sluice-%s.log", ns);
	printf("# kinds %s %s, namespaces %s %s, sluice log %s\n", sqlkind, synkind, ns, ns2, logpath);
	/* a StreamClass with metadata.namespace, as some plugin charts write it */
	if (st_apply(
	        "apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamClass\nmetadata: {name: %s, "
	        "namespace: "
	        "default}\nspec: {apiGroupRef: streaming.sneaksanddata.com, apiVersion: v1, kindRef: %s, "
	        "pluralName: %s, secretRefs: []}\n",
	        sqlcls, sqlkind, sqlplural) != 0 ||
	    st_apply("apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamClass\nmetadata: {name: %s}\n"
	             "spec: {apiGroupRef: streaming.sneaksanddata.com, apiVersion: v1, kindRef: %s, "
	             "pluralName: %s}\n",
	             syncls, synkind, synplural) != 0 ||
	    mktemplate(ns, "stream", "stream:1") != 0 || mktemplate(ns, "backfill", "backfill:1") != 0 ||
	    mktemplate(ns, "backfill2", "backfill:2") != 0) {
		printf("Bail out! classes and templates\n");
		return 1;
	}
	pid = st_sluice_start(ns, logpath);
	snprintf(what, sizeof(what), "streamclass/%s", sqlcls);
	if (it_wait_jsonpath(NULL, what, "{.status.phase}", "Ready", T) != 0) {
		st_get(NULL, what, "{.status}", v, sizeof(v));
		printf("# class status: %s\n", v);
	}

	st_run(1, "layout v1 (changeCapture): backfill, then streaming, pruned status", layout_v1);
	st_run(2, "layout v2: the backfill template under changeCapture", layout_v2);
	st_run(3, "layout v0 with refs that have no namespace property", layout_v0);
	st_run(4, "unknown layout and no backend: Failed with a reason and a Warning Event", layout_errors);
	st_run(5, "CronJob backend: create, suspend, backfill, spec change, backend switch", cron);
	st_run(6, "a failed Job stays Failed under the pruned status schema", failure_sticks);
	st_run(7, "created suspended: no initial backfill; resume starts the streaming Job",
	       created_suspended);
	st_run(8, "a BackfillRequest of another StreamClass is not run and gets a Warning Event",
	       wrong_class);
	st_run(9, "adoption of the Arcane operator's Jobs", adoption);
	st_run(10, "1,000 converged streams: no write in 60 s", converged_zero_writes);
	st_run(11, "configuration-hash is Arcane's: md5 of Go's JSON (exact int64, <>& escaped)", hash_exact);

	rc = st_sluice_stop(pid);
	st_failed = 0;
	printf("%s 12 - SIGTERM: sluice stops and exits 0\n", rc == 0 ? "ok" : "not ok");
	char *o = NULL;
	it_kubectl(&o, NULL, "get streamclass %s -o jsonpath='{.status.phase}'", sqlcls);
	printf("%s 13 - a StreamClass written with metadata.namespace is served and Ready (%s)\n",
	       o && strcmp(o, "Ready") == 0 ? "ok" : "not ok", o ? o : "");
	bool cls_ok = o && strcmp(o, "Ready") == 0;
	free(o);
	it_kubectl(NULL, NULL, "delete streamclass %s %s --wait=false >/dev/null 2>&1", sqlcls, syncls);
	it_ns_delete(ns);
	it_ns_delete(ns2);
	st_delete_kind(sqlplural);
	st_delete_kind(synplural);
	return st_exit() || rc != 0 || !cls_ok;
}
