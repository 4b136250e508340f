/* Tests of `sluice plan` on examples/repo and on broken trees (the real
 * binary); its output is read back by the manifest loader. (The YAML
 * writer's own tests are in tests/unit/manifest/test-yaml-write.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/manifest.h"
#include "sluice/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
	int status;
	struct sl_buf out, errs;
};

/* Runs `sluice plan dir`, capturing stdout and stderr. */
static void run_plan(const char *dir, struct run *r)
{
	const char *bin = getenv("SLUICE_BIN");
	char tmpo[] = "/tmp/plan-out-XXXXXX", tmpe[] = "/tmp/plan-err-XXXXXX", cmd[4096];
	int fo = mkstemp(tmpo), fe = mkstemp(tmpe);
	struct sl_error err = {0};

	assert_non_null(bin);
	assert_true(fo >= 0 && fe >= 0);
	close(fo);
	close(fe);
	snprintf(cmd, sizeof(cmd), "'%s' plan '%s' >%s 2>%s", bin, dir, tmpo, tmpe);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	r->status = WEXITSTATUS(st);
	assert_int_equal(sl_file_read(tmpo, 1 << 24, &r->out, &err), 0);
	assert_int_equal(sl_file_read(tmpe, 1 << 24, &r->errs, &err), 0);
	unlink(tmpo);
	unlink(tmpe);
}

static void run_free(struct run *r)
{
	sl_buf_free(&r->out);
	sl_buf_free(&r->errs);
}

struct docs {
	cJSON *d[16];
	size_t n;
};

static int collect(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload)
{
	struct docs *ds = payload;
	if (ds->n == 16) {
		cJSON_Delete(obj);
		return SL_ETOOLARGE;
	}
	ds->d[ds->n++] = obj;
	return 0;
}

static void docs_free(struct docs *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		cJSON_Delete(ds->d[i]);
	ds->n = 0;
}

static const char *md_name(const cJSON *o)
{
	const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "name");
	return cJSON_IsString(v) ? v->valuestring : "";
}

/* examples/repo: two Jobs (clicks streaming, orders backfill), a comment for
 * the suspended inventory stream, output that reads back as YAML. */
static void plan_examples(void **state)
{
	char dir[1024];
	struct run r = {0};
	struct docs ds = {0};
	struct sl_error err = {0};

	snprintf(dir, sizeof(dir), "%s/examples/repo", getenv("SLUICE_SOURCE_ROOT"));
	run_plan(dir, &r);
	if (r.status != 0)
		fail_msg("plan exited %d: %s", r.status, r.errs.data ? r.errs.data : "");
	assert_int_equal(sl_manifest_parse(r.out.data, r.out.len, NULL, collect, &ds, &err), 0);
	assert_int_equal(ds.n, 2);
	assert_string_equal(md_name(ds.d[0]), "clicks");
	assert_string_equal(md_name(ds.d[1]), "orders-backfill");
	for (size_t i = 0; i < ds.n; i++) {
		assert_string_equal(cJSON_GetObjectItem(ds.d[i], "kind")->valuestring, "Job");
		const cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(ds.d[i], "metadata"), "labels");
		/* "true"/"false" stayed strings through the YAML */
		assert_true(cJSON_IsString(cJSON_GetObjectItem(labels, "arcane/backfilling")));
	}
	assert_non_null(strstr(r.out.data, "streams-demo/inventory"));
	assert_non_null(strstr(r.out.data, "# suspended: nothing would run"));
	assert_non_null(strstr(r.out.data, "placeholder"));
	/* secrets only as references */
	assert_non_null(strstr(r.out.data, "secretKeyRef:"));
	assert_non_null(strstr(r.out.data, "envFrom:"));
	docs_free(&ds);
	run_free(&r);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char *const CLASS_YAML =
    "apiVersion: streaming.sneaksanddata.com/v1\n"
    "kind: StreamClass\n"
    "metadata: {name: mocks}\n"
    "spec: {apiGroupRef: streaming.sneaksanddata.com, apiVersion: v1,\n"
    "  kindRef: MockStream, pluralName: mockstreams, secretRefs: [connectionStringRef]}\n";
static const char *const TMPL_YAML = "apiVersion: streaming.sneaksanddata.com/v1\n"
                                     "kind: StreamingJobTemplate\n"
                                     "metadata: {name: t, namespace: ns}\n"
                                     "spec:\n"
                                     "  template:\n"
                                     "    spec:\n"
                                     "      restartPolicy: Never\n"
                                     "      containers:\n"
                                     "        - name: main\n"
                                     "          image: img\n"
                                     "          env: [{name: STREAMCONTEXT__STREAM_KIND, value: x}]\n";

/* A Job that cannot be built: exit 1, the reason on stderr and in a comment. */
static void plan_build_error(void **state)
{
	char dir[] = "/tmp/plan-tree-XXXXXX";
	struct run r = {0};

	assert_non_null(mkdtemp(dir));
	write_file(dir, "class.yaml", CLASS_YAML);
	write_file(dir, "tmpl.yaml", TMPL_YAML);
	write_file(dir, "s.yaml",
	           "apiVersion: streaming.sneaksanddata.com/v1\nkind: MockStream\n"
	           "metadata: {name: s, namespace: ns}\n"
	           "spec: {jobTemplateRef: {name: t}, connectionStringRef: {name: c}}\n");
	run_plan(dir, &r);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.errs.data, "STREAMCONTEXT__STREAM_KIND"));
	assert_non_null(strstr(r.errs.data, "s.yaml"));
	assert_non_null(strstr(r.out.data, "# no Job:"));
	run_free(&r);
	char cmd[1100];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(plan_examples),
	    cmocka_unit_test(plan_build_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
