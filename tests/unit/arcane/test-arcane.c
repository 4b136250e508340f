/* Unit tests of the stream spec layouts (sl_arcane_layout_read): v0, v1, v2,
 * the backend choice, namespace defaults and the errors a user sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/arcane.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *stream(const char *spec)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"s\",\"namespace\":\"team\"},\"spec\":%s}",
	         spec);
	for (char *p = buf; *p; p++)
		if (*p == '\'')
			*p = '"';
	cJSON *v = cJSON_Parse(buf);
	assert_non_null(v);
	return v;
}

static int read_layout(const char *spec, struct sl_arcane_layout *l, struct sl_error *err)
{
	cJSON *s = stream(spec);
	int r = sl_arcane_layout_read(s, l, err);
	/* strings point into the stream: copy what the tests compare */
	static char keep[4][128];
	snprintf(keep[0], 128, "%s", l->streaming.name ? l->streaming.name : "");
	snprintf(keep[1], 128, "%s", l->backfill.name ? l->backfill.name : "");
	snprintf(keep[2], 128, "%s", l->batch.name ? l->batch.name : "");
	snprintf(keep[3], 128, "%s|%s|%s", l->streaming.ns ? l->streaming.ns : "",
	         l->backfill.ns ? l->backfill.ns : "", l->batch.ns ? l->batch.ns : "");
	l->streaming.name = keep[0];
	l->backfill.name = keep[1];
	l->batch.name = keep[2];
	l->schedule = l->schedule ? "set" : NULL;
	l->streaming.ns = keep[3];
	cJSON_Delete(s);
	return r;
}

/* v0: top level; an empty namespace is the stream's; the backfill template's
 * namespace comes from jobTemplateRef (Arcane) unless it names its own. */
static void v0(void **state)
{
	struct sl_arcane_layout l;
	struct sl_error err = {0};
	assert_int_equal(read_layout("{'suspended':true,'jobTemplateRef':{'name':'a','namespace':'tpl'},"
	                             "'backfillJobTemplateRef':{'name':'b'}}",
	                             &l, &err),
	                 0);
	assert_int_equal(l.version, 0);
	assert_true(l.suspended);
	assert_int_equal(l.backend, SL_ARCANE_BACKEND_JOB);
	assert_string_equal(l.streaming.name, "a");
	assert_string_equal(l.backfill.name, "b");
	assert_string_equal(l.streaming.ns, "tpl|tpl|");
	assert_string_equal(l.suspended_field, "spec.suspended");
	/* an execution without layoutVersion, or with "", is still v0 */
	assert_int_equal(
	    read_layout("{'execution':{'layoutVersion':''},'jobTemplateRef':{'name':'a'}}", &l, &err), 0);
	assert_int_equal(l.version, 0);
	assert_string_equal(l.streaming.ns, "team||");
	assert_false(l.suspended);
}

static void v1_change_capture(void **state)
{
	struct sl_arcane_layout l;
	struct sl_error err = {0};
	assert_int_equal(
	    read_layout("{'execution':{'layoutVersion':'v1','suspended':false,"
	                "'backfillJobTemplateRef':{'apiGroup':'g','kind':'StreamingJobTemplate','name':'b'},"
	                "'streamingBackend':{'changeCapture':{'jobTemplateRef':{'name':'a',"
	                "'namespace':'x'}}}}}",
	                &l, &err),
	    0);
	assert_int_equal(l.version, 1);
	assert_int_equal(l.backend, SL_ARCANE_BACKEND_JOB);
	assert_string_equal(l.streaming.name, "a");
	assert_string_equal(l.backfill.name, "b");
	assert_string_equal(l.streaming.ns, "x|team|");
	assert_true(l.backfill.ns_defaulted);
	assert_string_equal(l.suspended_field, "spec.execution.suspended");
}

/* batch wins over changeCapture, as in the Arcane operator */
static void batch_wins(void **state)
{
	struct sl_arcane_layout l;
	struct sl_error err = {0};
	assert_int_equal(
	    read_layout("{'execution':{'layoutVersion':'v1','suspended':true,'streamingBackend':{"
	                "'changeCapture':{'jobTemplateRef':{'name':'a'}},"
	                "'batch':{'schedule':'* * * * *','jobTemplateRef':{'name':'c'}}}}}",
	                &l, &err),
	    0);
	assert_int_equal(l.backend, SL_ARCANE_BACKEND_CRON);
	assert_string_equal(l.batch.name, "c");
	assert_non_null(l.schedule);
	assert_true(l.suspended);
}

/* v2: the backfill reference under changeCapture */
static void v2(void **state)
{
	struct sl_arcane_layout l;
	struct sl_error err = {0};
	assert_int_equal(
	    read_layout("{'execution':{'layoutVersion':'v2','suspended':false,'streamingBackend':{"
	                "'changeCapture':{'jobTemplateRef':{'name':'a'},"
	                "'backfillJobTemplateRef':{'name':'b2'}}}}}",
	                &l, &err),
	    0);
	assert_int_equal(l.version, 2);
	assert_string_equal(l.backfill.name, "b2");
}

static void errors(void **state)
{
	static const struct {
		const char *spec, *field, *msg;
	} cases[] = {
	    {"{'execution':{'layoutVersion':'v3'}}", "spec.execution.layoutVersion",
	     "unknown layout version \"v3\""},
	    {"{'execution':{'layoutVersion':1}}", "spec.execution.layoutVersion", "expected a string"},
	    {"{'execution':{'layoutVersion':'v1','streamingBackend':{}}}", "spec.execution.streamingBackend",
	     "no usable backend"},
	    {"{'execution':{'layoutVersion':'v2'}}", "spec.execution.streamingBackend", "no usable backend"},
	    {"{'execution':{'layoutVersion':'v1','streamingBackend':{'batch':{'jobTemplateRef':{'name':'c'}}}"
	     "}}",
	     "spec.execution.streamingBackend.batch.schedule", "required"},
	    {"{'execution':{'layoutVersion':'v1','streamingBackend':{'changeCapture':{}}}}",
	     "spec.execution.streamingBackend.changeCapture.jobTemplateRef", "required"},
	    {"{'execution':{'layoutVersion':'v1','suspended':'yes','streamingBackend':{'changeCapture':{}}}}",
	     "spec.execution.suspended", "expected boolean"},
	    {"{'suspended':false}", "spec.jobTemplateRef", "required (layout v0)"},
	    {"{'jobTemplateRef':'a'}", "spec.jobTemplateRef", "expected an object"},
	    {"{'jobTemplateRef':{'name':''}}", "spec.jobTemplateRef.name", "required"},
	    {"{'jobTemplateRef':{'name':'a','namespace':3}}", "spec.jobTemplateRef.namespace",
	     "expected a string"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sl_arcane_layout l;
		struct sl_error err = {0};
		assert_int_equal(read_layout(cases[i].spec, &l, &err), SL_EINVALID);
		assert_string_equal(l.error_field, cases[i].field);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
	}
}

/* Shard names are DNS labels; their selectors; the shard of an object. */
static void shards(void **state)
{
	struct sl_error err = {0};
	char sel[96];
	const char *good[] = {"a", "shard-1", "0", "x0-9z"};
	const char *bad[] = {"",
	                     "A",
	                     "-a",
	                     "a-",
	                     "a_b",
	                     "a.b",
	                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(sl_arcane_shard_check(good[i], &err), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sl_arcane_shard_check(bad[i], &err), SL_EINVALID);
	assert_non_null(strstr(err.msg, "longer than 63"));
	assert_int_equal(sl_arcane_shard_selector("a", sel, sizeof(sel)), 0);
	assert_string_equal(sel, "sluice.dev/shard=a");
	assert_int_equal(sl_arcane_shard_selector(NULL, sel, sizeof(sel)), 0);
	assert_string_equal(sel, "!sluice.dev/shard");
	assert_int_equal(sl_arcane_shard_selector("a", sel, 10), SL_ETOOLARGE);

	cJSON *in_a = cJSON_Parse("{\"metadata\":{\"labels\":{\"sluice.dev/shard\":\"a\"}}}");
	cJSON *none = cJSON_Parse("{\"metadata\":{\"labels\":{\"x\":\"y\"}}}");
	assert_string_equal(sl_arcane_shard_of(in_a), "a");
	assert_null(sl_arcane_shard_of(none));
	assert_true(sl_arcane_shard_is(in_a, "a"));
	assert_false(sl_arcane_shard_is(in_a, "b"));
	assert_false(sl_arcane_shard_is(in_a, NULL));
	assert_true(sl_arcane_shard_is(none, NULL));
	assert_false(sl_arcane_shard_is(none, "a"));
	cJSON_Delete(in_a);
	cJSON_Delete(none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(v0),         cmocka_unit_test(v1_change_capture),
	    cmocka_unit_test(batch_wins), cmocka_unit_test(v2),
	    cmocka_unit_test(errors),     cmocka_unit_test(shards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
