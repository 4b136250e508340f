/* Integration test of crds/ against the real API server: they apply and get
 * Established, kubectl explain shows their fields, short names and printer
 * columns work, wrong types are rejected by the server, both template shapes
 * are accepted, and what sluice validate refuses the server refuses too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ns[64];

static const char *root(void)
{
	const char *r = getenv("SLUICE_SOURCE_ROOT");
	return r ? r : ".";
}

static const char *const crds[] = {
    "streamclasses.streaming.sneaksanddata.com",
    "streamingjobtemplates.streaming.sneaksanddata.com",
    "backfillrequests.streaming.sneaksanddata.com",
    "mockstreams.streaming.sneaksanddata.com",
};

static int setup(void **state)
{
	char *out = NULL;
	int rc = it_kubectl(&out, NULL, "apply --server-side --force-conflicts -f '%s/crds' 2>&1", root());
	if (rc != 0)
		fprintf(stderr, "apply crds: %s\n", out ? out : "");
	free(out);
	if (rc != 0)
		return -1;
	for (size_t i = 0; i < sizeof(crds) / sizeof(crds[0]); i++) {
		char res[256];
		snprintf(res, sizeof(res), "crd/%s", crds[i]);
		if (it_wait_jsonpath(NULL, res, "{.status.conditions[?(@.type==\"Established\")].status}",
		                     "True", 60000) != 0) {
			fprintf(stderr, "%s not Established\n", crds[i]);
			return -1;
		}
	}
	return it_ns_create("it-manifest", ns);
}

static int teardown(void **state)
{
	/* the CRDs stay: other suites and the demo use them */
	it_ns_delete(ns);
	return 0;
}

/* kubectl apply of yaml into the test namespace; output (stdout+stderr) in *out. */
static int apply(const char *yaml, char **out)
{
	return it_kubectl(out, yaml, "apply --server-side -n %s -f - 2>&1", ns);
}

/* kubectl explain reads the OpenAPI document, which the API server publishes
 * a little after a CRD is Established (longer while other suites add CRDs):
 * retry for a while, then return the last output. */
static int explain(const char *what, const char *want, char **out)
{
	int rc = -1;
	for (int i = 0; i < 120; i++) {
		free(*out);
		*out = NULL;
		rc = it_kubectl(out, NULL, "explain %s 2>&1", what);
		if (rc == 0 && *out && strstr(*out, want))
			return 0;
		usleep(250 * 1000);
	}
	fprintf(stderr, "kubectl explain %s: %s\n", what, *out ? *out : "(no output)");
	return rc ? rc : -1;
}

static void established_and_explained(void **state)
{
	char *out = NULL;
	assert_int_equal(explain("backfillrequest.spec", "Name of the StreamClass of the stream.", &out), 0);
	assert_non_null(strstr(out, "streamClass"));
	assert_non_null(strstr(out, "streamId"));
	assert_non_null(strstr(out, "completed"));
	free(out);
	out = NULL;
	assert_int_equal(explain("streamclass.spec.secretRefs", "envFrom", &out), 0);
	free(out);
	out = NULL;
	assert_int_equal(explain("mockstream.spec.jobTemplateRef", "StreamingJobTemplate", &out), 0);
	free(out);
	assert_int_equal(it_kubectl(&out, NULL,
	                            "get crd %s -o jsonpath='{.spec.scope} {.spec.names.shortNames}'",
	                            crds[0]),
	                 0);
	assert_string_equal(out, "Cluster [\"sc\"]");
	free(out);
}

static const char stream_objs[] =
    "apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamingJobTemplate\nmetadata: {name: tpl}\n"
    "spec:\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n"
    "      containers: [{name: main, image: busybox}]\n"
    "---\n"
    "apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamingJobTemplate\nmetadata: {name: whole}\n"
    "spec:\n  apiVersion: batch/v1\n  kind: Job\n  metadata: {labels: {a: b}}\n  spec:\n    template:\n"
    "      spec:\n        restartPolicy: Never\n        containers: [{name: main, image: busybox}]\n"
    "---\n"
    "apiVersion: streaming.sneaksanddata.com/v1\nkind: MockStream\nmetadata: {name: s1}\n"
    "spec: {jobTemplateRef: {name: tpl}, connectionStringRef: {name: c}, rowsPerSecond: 5}\n"
    "---\n"
    "apiVersion: streaming.sneaksanddata.com/v1\nkind: BackfillRequest\nmetadata: {name: b1}\n"
    "spec: {streamClass: it-mock, streamId: s1, payload: {from: \"2024\"}}\n";

static void valid_objects_accepted(void **state)
{
	char *out = NULL;
	int rc = apply(stream_objs, &out);
	if (rc != 0)
		fail_msg("apply: %s", out);
	free(out);
	/* defaults from the schema */
	assert_int_equal(it_kubectl(&out, NULL, "get bfr b1 -n %s -o jsonpath='{.spec.completed}'", ns), 0);
	assert_string_equal(out, "false");
	free(out);
	/* whole-Job template keeps its fields (preserve-unknown-fields) */
	assert_int_equal(
	    it_kubectl(&out, NULL, "get sjt whole -n %s -o jsonpath='{.spec.metadata.labels.a}'", ns), 0);
	assert_string_equal(out, "b");
	free(out);
	/* printer columns */
	assert_int_equal(it_kubectl(&out, NULL, "get bfr -n %s 2>&1", ns), 0);
	assert_non_null(strstr(out, "STREAM"));
	assert_non_null(strstr(out, "CLASS"));
	assert_non_null(strstr(out, "COMPLETED"));
	assert_non_null(strstr(out, "PHASE"));
	assert_non_null(strstr(out, "AGE"));
	assert_non_null(strstr(out, "it-mock"));
	free(out);
	assert_int_equal(it_kubectl(&out, NULL, "get ms -n %s 2>&1", ns), 0);
	assert_non_null(strstr(out, "PHASE"));
	assert_non_null(strstr(out, "s1"));
	free(out);
}

static void expect_rejected(const char *yaml, const char *what1, const char *what2)
{
	char *out = NULL;
	int rc = apply(yaml, &out);
	if (rc == 0)
		fail_msg("accepted, expected a rejection mentioning %s", what1);
	if (!strstr(out, what1) || (what2 && !strstr(out, what2)))
		fail_msg("rejected, but not for %s/%s: %s", what1, what2 ? what2 : "", out);
	free(out);
}

static void wrong_types_rejected(void **state)
{
	expect_rejected(
	    "apiVersion: streaming.sneaksanddata.com/v1\nkind: BackfillRequest\nmetadata: {name: b2}\n"
	    "spec: {streamClass: x, streamId: y, completed: yes-string}\n",
	    "spec.completed", "boolean");
	expect_rejected(
	    "apiVersion: streaming.sneaksanddata.com/v1\nkind: BackfillRequest\nmetadata: {name: b3}\n"
	    "spec: {streamClass: x}\n",
	    "spec.streamId", "Required");
	expect_rejected(
	    "apiVersion: streaming.sneaksanddata.com/v1\nkind: BackfillRequest\nmetadata: {name: b4}\n"
	    "spec: {streamClass: x, streamId: y, payload: text}\n",
	    "spec.payload", "object");
	expect_rejected("apiVersion: streaming.sneaksanddata.com/v1\nkind: MockStream\nmetadata: {name: s2}\n"
	                "spec: {jobTemplateRef: {name: t}, rowsPerSecond: fast}\n",
	                "spec.rowsPerSecond", "got string");
	expect_rejected("apiVersion: streaming.sneaksanddata.com/v1\nkind: MockStream\nmetadata: {name: s3}\n"
	                "spec: {rowsPerSecond: 1}\n",
	                "spec.jobTemplateRef", "Required");
	expect_rejected(
	    "apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamingJobTemplate\nmetadata: {name: t2}\n"
	    "spec: [1, 2]\n",
	    "spec", "object");
	/* StreamClass is cluster-scoped: a per-test name, deleted below */
	expect_rejected(
	    "apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamClass\nmetadata: {name: it-bad}\n"
	    "spec: {apiGroupRef: g, apiVersion: v1, pluralName: xs}\n",
	    "spec.kindRef", "Required");
}

/* sluice validate and the server agree on bad manifests the schemas cover. */
static void validate_agrees_with_server(void **state)
{
	static const char *const files[] = {
	    "25-class-secretrefs-string",   "27-class-empty-plural",       "30-template-backofflimit-string",
	    "32-backfill-missing-streamid", "47-mockstream-negative-rate", "29-template-spec-list",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *out = NULL;
		int rc = it_kubectl(
		    &out, NULL,
		    "apply --server-side --dry-run=server -n %s -f '%s/tests/data/manifest/bad/%s.yaml' 2>&1",
		    ns, root(), files[i]);
		if (rc == 0)
			fail_msg("%s: the server accepted what sluice validate refuses: %s", files[i], out);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(established_and_explained),
	    cmocka_unit_test(valid_objects_accepted),
	    cmocka_unit_test(wrong_types_rejected),
	    cmocka_unit_test(validate_agrees_with_server),
	};
	it_require_cluster();
	return cmocka_run_group_tests(tests, setup, teardown);
}
