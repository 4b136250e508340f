/* Integration test of compatibility with Arcane against the real API server:
 * crds/ and the arcane-crd v0.0.9 CRDs of tests/data/arcane replace each other
 * in both directions (server-side and client-side apply) with their objects
 * intact; the plugin CRD fixtures and the user tree are accepted; and what
 * those schemas do (pruning, defaults, refusals) is as the fixtures' README
 * and arcane-facts.md say. Everything runs in an API group of its own, with
 * the kinds renamed (ItStreamClass, ...) and no short names, so that neither
 * the suites using crds/ nor kubectl's name resolution in them are disturbed;
 * tests/unit/manifest/crd_compat.py checks the real names offline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARCANE_GROUP "streaming.sneaksanddata.com"

static char ns[64];
static char group[128]; /* <ns>.sluice.dev: one per run */

static const char *root(void)
{
	const char *r = getenv("SLUICE_SOURCE_ROOT");
	return r ? r : ".";
}

/* resources as the test names them (see xform) */
#define SC  "itstreamclasses"
#define SJT "itstreamingjobtemplates"
#define BFR "itbackfillrequests"
static const char *const kinds[] = {SC, SJT, BFR};
static const char *const plugins[] = {"sql-server-streams", "synapse-streams"};
static const char *const ours_files[] = {"crds/streamclass.yaml", "crds/streamingjobtemplate.yaml",
                                         "crds/backfillrequest.yaml"};
static const char *const tree_files[] = {
    "classes/sqlserver.yaml",        "classes/synapse.yaml",
    "templates/sqlserver.yaml",      "templates/synapse.yaml",
    "streams/synapse/accounts.yaml", "streams/sqlserver/orders.yaml",
    "streams/sqlserver/ledger.yaml", "streams/sqlserver/customers.yaml",
    "backfills/orders-2026.yaml",
};

/* s with every from replaced by to (malloc'd; s is freed). */
static char *replace_all(char *s, const char *from, const char *to)
{
	size_t n = 0, fl = strlen(from), tl = strlen(to);
	char *out, *o;
	for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
		n++;
	out = malloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1);
	assert_non_null(out);
	o = out;
	for (const char *p = s, *q; *p; p = q + fl) {
		q = strstr(p, from);
		if (!q) {
			strcpy(o, p);
			o += strlen(p);
			break;
		}
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, tl);
		o += tl;
		if (!q[fl])
			break;
	}
	*o = '\0';
	free(s);
	return out;
}

/* The test's view of Arcane YAML (s is consumed): our group instead of
 * Arcane's, the kinds renamed, no short names, the fixtures' namespace
 * "arcane" replaced by the test's. */
static char *xform(char *s)
{
	static const char *const names[][2] = {
	    {"StreamClass", "ItStreamClass"},
	    {"streamclass", "itstreamclass"},
	    {"StreamingJobTemplate", "ItStreamingJobTemplate"},
	    {"streamingjobtemplate", "itstreamingjobtemplate"},
	    {"BackfillRequest", "ItBackfillRequest"},
	    {"backfillrequest", "itbackfillrequest"},
	};
	char nsline[128];
	s = replace_all(s, ARCANE_GROUP, group);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		s = replace_all(s, names[i][0], names[i][1]);
	snprintf(nsline, sizeof(nsline), "namespace: %s\n", ns);
	s = replace_all(s, "namespace: arcane\n", nsline);
	/* short names are in flow style on one line in all these files */
	for (char *p = strstr(s, "shortNames: ["); p; p = strstr(p + 1, "shortNames: [")) {
		char *e = strchr(p, ']');
		assert_non_null(e);
		memset(p + strlen("shortNames: ["), ' ', (size_t)(e - p) - strlen("shortNames: ["));
	}
	return s;
}

/* The files under dir (relative to the source root), joined as one YAML
 * stream and transformed. */
static char *load(const char *dir, const char *const *files, size_t n)
{
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		size_t got;
		FILE *f;
		snprintf(path, sizeof(path), "%s/%s%s%s", root(), dir, *dir ? "/" : "", files[i]);
		f = fopen(path, "r");
		if (!f)
			fail_msg("cannot read %s", path);
		memcpy(out + len, "---\n", 4);
		len += 4;
		do {
			if (cap - len < 4096) {
				cap *= 2;
				out = realloc(out, cap);
				assert_non_null(out);
			}
			got = fread(out + len, 1, cap - len - 1, f);
			len += got;
		} while (got > 0);
		fclose(f);
	}
	out[len] = '\0';
	return xform(out);
}

/* Test YAML written with the real names, transformed. */
static char *doc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *doc(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	return xform(s);
}

static char *ours(void)
{
	return load("", ours_files, sizeof(ours_files) / sizeof(ours_files[0]));
}

static char *theirs(void)
{
	static const char *const f[] = {"arcane-crds.yaml"};
	return load("tests/data/arcane", f, 1);
}

/* kubectl with stderr kept in the output; fails the test with it unless the
 * exit status is what want_ok says. */
static char *kc(bool want_ok, const char *stdin_data, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static char *kc(bool want_ok, const char *stdin_data, const char *fmt, ...)
{
	char args[4096], *out = NULL;
	va_list ap;
	int rc;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	rc = it_kubectl(&out, stdin_data, "%s 2>&1", args);
	if ((rc == 0) != want_ok)
		fail_msg("kubectl %s: exit %d (wanted %s): %s", args, rc, want_ok ? "success" : "failure",
		         out ? out : "");
	return out;
}

/* Applies yaml (consumed) server-side; returns the output. */
static char *apply(bool want_ok, char *yaml, const char *flags)
{
	char *out = kc(want_ok, yaml, "apply --server-side %s -f -", flags);
	free(yaml);
	return out;
}

static void expect_output(const char *want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expect_output(const char *want, const char *fmt, ...)
{
	char args[4096], *out = NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	/* stdout only: "No resources found" goes to stderr */
	if (it_kubectl(&out, NULL, "%s", args) != 0 || strcmp(out ? out : "", want) != 0)
		fail_msg("kubectl %s: got \"%s\", wanted \"%s\"", args, out ? out : "", want);
	free(out);
}

static void crds_established(const char *const *plurals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char res[256];
		snprintf(res, sizeof(res), "crd/%s.%s", plurals[i], group);
		if (it_wait_jsonpath(NULL, res, "{.status.conditions[?(@.type==\"Established\")].status}",
		                     "True", 60000) != 0)
			fail_msg("%s not Established", res);
		expect_output("[\"v1\"]", "get %s -o jsonpath='{.status.storedVersions}'", res);
	}
}

static void crds_delete(void)
{
	char *out = NULL;
	it_kubectl(&out, NULL, "delete crd --ignore-not-found --wait=true %s.%s %s.%s %s.%s %s.%s %s.%s 2>&1",
	           SC, group, SJT, group, BFR, group, plugins[0], group, plugins[1], group);
	free(out);
}

/* Installs one set of the three CRDs, ours (crds/) or theirs (arcane-crd),
 * server-side (each with its own field manager, forcing conflicts as a
 * second installer would) or client-side. */
static void install(bool arcane, bool server_side)
{
	char *yaml = arcane ? theirs() : ours();
	if (server_side)
		free(apply(true, yaml,
		           arcane ? "--force-conflicts --field-manager=arcane-crd"
		                  : "--force-conflicts --field-manager=sluice-crds"));
	else {
		free(kc(true, yaml, "apply -f -"));
		free(yaml);
	}
	crds_established(kinds, 3);
	/* which one is in place: arcane-crd has no Age column */
	expect_output(arcane ? "MemoryLimit CpuLimit Image" : "MemoryLimit CpuLimit Image Age",
	              "get crd %s.%s -o jsonpath='{.spec.versions[0].additionalPrinterColumns[*].name}'", SJT,
	              group);
}

static int setup(void **state)
{
	if (it_ns_create("it-arcane", ns) != 0)
		return -1;
	snprintf(group, sizeof(group), "%s.sluice.dev", ns);
	return 0;
}

static int teardown(void **state)
{
	it_ns_delete(ns);
	crds_delete();
	return 0;
}

/* Objects that both schemas accept, created before a swap and checked after
 * it: a class, a whole-Job template and a request with a payload. */
static void objects_create(void)
{
	free(apply(
	    true,
	    doc("apiVersion: %s/v1\nkind: StreamClass\nmetadata: {name: %s-c}\n"
	        "spec: {apiGroupRef: %s, apiVersion: v1, kindRef: SqlServerStream, "
	        "pluralName: sql-server-streams, secretRefs: [streamConfigurationSecretRef]}\n"
	        "---\n"
	        "apiVersion: %s/v1\nkind: StreamingJobTemplate\nmetadata: {name: whole, namespace: %s}\n"
	        "spec:\n  apiVersion: batch/v1\n  kind: Job\n  spec:\n    backoffLimit: 1\n"
	        "    template:\n      spec:\n        restartPolicy: Never\n"
	        "        containers: [{name: main, image: busybox}]\n"
	        "---\n"
	        "apiVersion: %s/v1\nkind: BackfillRequest\nmetadata: {name: b1, namespace: %s}\n"
	        "spec: {streamClass: %s-c, streamId: s1, payload: {from: \"2024\"}}\n",
	        ARCANE_GROUP, ns, ARCANE_GROUP, ARCANE_GROUP, ns, ARCANE_GROUP, ns, ns),
	    "--field-manager=objects"));
}

static void objects_intact(void)
{
	char name[256];
	expect_output("SqlServerStream", "get %s.%s %s-c -o jsonpath='{.spec.kindRef}'", SC, group, ns);
	expect_output("busybox",
	              "get %s.%s whole -n %s -o jsonpath='{.spec.spec.template.spec.containers[0].image}'",
	              SJT, group, ns);
	expect_output("2024 false", "get %s.%s b1 -n %s -o jsonpath='{.spec.payload.from} {.spec.completed}'",
	              BFR, group, ns);
	/* the selectable fields of both */
	snprintf(name, sizeof(name), "itbackfillrequest.%s/b1\n", group);
	expect_output(name, "get %s.%s -n %s --field-selector spec.streamId=s1,spec.completed=false -o name",
	              BFR, group, ns);
	expect_output("", "get %s.%s -n %s --field-selector spec.streamId=other -o name", BFR, group, ns);
	/* the Completed column of both: type string prints the boolean */
	{
		char *out = kc(true, NULL, "get %s.%s b1 -n %s", BFR, group, ns);
		if (!strstr(out, "COMPLETED") || !strstr(out, "false"))
			fail_msg("no Completed column: %s", out);
		free(out);
	}
}

static void swap(bool server_side)
{
	crds_delete();
	/* ours first, then theirs over it, then ours again */
	install(false, server_side);
	objects_create();
	install(true, server_side);
	objects_intact();
	install(false, server_side);
	objects_intact();
	/* and on a cluster that had arcane-crd first */
	crds_delete();
	install(true, server_side);
	objects_create();
	install(false, server_side);
	objects_intact();
	install(true, server_side);
	objects_intact();
}

static void swap_server_side(void **state)
{
	swap(true);
}

static void swap_client_side(void **state)
{
	swap(false);
}

static char *labelled_template(void)
{
	return doc(
	    "apiVersion: %s/v1\nkind: StreamingJobTemplate\nmetadata: {name: labelled, namespace: %s}\n"
	    "spec:\n  apiVersion: batch/v1\n  kind: Job\n  metadata: {labels: {a: b}}\n  spec:\n"
	    "    template:\n      metadata: {labels: {c: d}}\n      spec:\n"
	    "        restartPolicy: Never\n        containers: [{name: main, image: busybox}]\n",
	    ARCANE_GROUP, ns);
}

static char *jobspec_template(void)
{
	return doc("apiVersion: %s/v1\nkind: StreamingJobTemplate\nmetadata: {name: jobspec, namespace: %s}\n"
	           "spec:\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n"
	           "      containers: [{name: main, image: busybox}]\n",
	           ARCANE_GROUP, ns);
}

/* arcane-crd's template schema is a whole Job and keeps no unknown field:
 * the labels of spec.metadata and of the pod template are pruned, and a
 * template in the Job spec shape cannot be server-side applied at all (the
 * sync applies server-side). crds/ keeps both. */
static void arcane_template_schema(void **state)
{
	char *out;

	install(true, true);
	free(apply(true, labelled_template(), ""));
	expect_output(
	    "{}|{}", "get %s.%s labelled -n %s -o jsonpath='{.spec.metadata}|{.spec.spec.template.metadata}'",
	    SJT, group, ns);
	out = apply(false, jobspec_template(), "--validate=false");
	if (!strstr(out, "field not declared in schema"))
		fail_msg("refused, but not for the schema: %s", out);
	free(out);

	install(false, true);
	free(apply(true, jobspec_template(), ""));
	expect_output("2", "get %s.%s jobspec -n %s -o jsonpath='{.spec.backoffLimit}'", SJT, group, ns);
	free(apply(true, labelled_template(), ""));
	expect_output("b d",
	              "get %s.%s labelled -n %s "
	              "-o jsonpath='{.spec.metadata.labels.a} {.spec.spec.template.metadata.labels.c}'",
	              SJT, group, ns);
}

/* The plugin CRDs and the user tree of tests/data/arcane, on crds/. */
static void plugins_and_tree(void **state)
{
	static const char *const plugin_files[] = {"plugin-sqlserver-crd.yaml", "plugin-synapse-crd.yaml"};
	char *out;

	install(false, true);
	free(apply(true, load("tests/data/arcane", plugin_files, 2), ""));
	crds_established(plugins, 2);
	free(apply(true,
	           load("tests/data/arcane/tree", tree_files, sizeof(tree_files) / sizeof(tree_files[0])),
	           ""));

	/* the namespace of the cluster-scoped class was dropped */
	expect_output("|SynapseStream",
	              "get %s.%s arcane-stream-synapse-link-synapse -o "
	              "jsonpath='{.metadata.namespace}|{.spec.kindRef}'",
	              SC, group);
	expect_output("v1 30 2 * * *",
	              "get sql-server-streams.%s ledger -n %s -o jsonpath='{.spec.execution.layoutVersion} "
	              "{.spec.execution.streamingBackend.batch.schedule}'",
	              group, ns);
	expect_output(
	    "v2 sqlserver-large-job",
	    "get sql-server-streams.%s customers -n %s -o jsonpath='{.spec.execution.layoutVersion} "
	    "{.spec.execution.streamingBackend.changeCapture.backfillJobTemplateRef.name}'",
	    group, ns);
	expect_output("false large-job",
	              "get synapse-streams.%s accounts -n %s "
	              "-o jsonpath='{.spec.suspended} {.spec.backfillJobTemplateRef.name}'",
	              group, ns);
	expect_output(
	    "false 2026-01-01T00:00:00Z",
	    "get %s.%s orders-2026 -n %s -o jsonpath='{.spec.completed} {.spec.payload.backfillStartDate}'",
	    BFR, group, ns);
	/* the whole-Job templates keep their Job under crds/ */
	expect_output(
	    "1", "get %s.%s sqlserver-standard-job -n %s -o jsonpath='{.spec.spec.ttlSecondsAfterFinished}'",
	    SJT, group, ns);

	/* the plugin status keeps phase, configurationHash and the conditions'
	 * type, status, message and phase: the rest is pruned */
	free(kc(true, NULL,
	        "patch sql-server-streams.%s orders -n %s --subresource=status --type=merge -p "
	        "'{\"status\":{\"phase\":\"Running\",\"configurationHash\":\"abc\",\"observedGeneration\":3,"
	        "\"jobName\":\"orders\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
	        "\"reason\":\"JobRunning\",\"message\":\"m\",\"phase\":\"Running\","
	        "\"lastTransitionTime\":\"2026-01-01T00:00:00Z\",\"observedGeneration\":3}]}}'",
	        group, ns));
	expect_output("{\"conditions\":[{\"message\":\"m\",\"phase\":\"Running\",\"status\":\"True\","
	              "\"type\":\"Ready\"}],\"configurationHash\":\"abc\",\"phase\":\"Running\"}",
	              "get sql-server-streams.%s orders -n %s -o jsonpath='{.status}'", group, ns);
	/* and a condition's status is True or False, never Unknown */
	out = kc(false, NULL,
	         "patch synapse-streams.%s accounts -n %s --subresource=status --type=merge "
	         "-p '{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"Unknown\"}]}}'",
	         group, ns);
	if (!strstr(out, "Unsupported value"))
		fail_msg("refused, but not for the enum: %s", out);
	free(out);

	/* the chart's default of spec.execution: layout v1, suspended */
	free(apply(
	    true,
	    doc("apiVersion: %s/v1\nkind: SqlServerStream\nmetadata: {name: bare, namespace: %s}\nspec: {}\n",
	        ARCANE_GROUP, ns),
	    ""));
	expect_output("v1 true standard-job-template",
	              "get sql-server-streams.%s bare -n %s -o jsonpath='{.spec.execution.layoutVersion} "
	              "{.spec.execution.suspended} {.spec.execution.backfillJobTemplateRef.name}'",
	              group, ns);
	/* v0 references of the Synapse CRD have no namespace: defaults fill
	 * them in, and a namespace cannot be server-side applied */
	free(apply(true,
	           doc("apiVersion: %s/v1\nkind: SynapseStream\nmetadata: {name: bare, namespace: %s}\n"
	               "spec: {suspended: true}\n",
	               ARCANE_GROUP, ns),
	           ""));
	expect_output("standard-job large-job",
	              "get synapse-streams.%s bare -n %s "
	              "-o jsonpath='{.spec.jobTemplateRef.name} {.spec.backfillJobTemplateRef.name}'",
	              group, ns);
	out = apply(false,
	            doc("apiVersion: %s/v1\nkind: SynapseStream\nmetadata: {name: elsewhere, namespace: %s}\n"
	                "spec: {suspended: true, jobTemplateRef: {name: standard-job, namespace: other}}\n",
	                ARCANE_GROUP, ns),
	            "");
	if (!strstr(out, "jobTemplateRef.namespace"))
		fail_msg("refused, but not for the namespace: %s", out);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(swap_server_side),
	    cmocka_unit_test(swap_client_side),
	    cmocka_unit_test(arcane_template_schema),
	    cmocka_unit_test(plugins_and_tree),
	};
	it_require_cluster();
	return cmocka_run_group_tests(tests, setup, teardown);
}
