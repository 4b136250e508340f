/* Unit tests of the manifest module's JSON (manifest-json.h): Go's
 * json.Marshal output, checked against outputs of tests/gojson/main.go (Go
 * 1.26), integer literals kept by the parse and the YAML loader. */
#include "../stream/json-fixtures.h"
#include "sluice/manifest-json.h"
#include "sluice/manifest.h"

#include <malloc.h>
#include <math.h>

/* JSON in, what Go prints for it out. Single quotes stand for double
 * quotes (no input holds a quote character); bytes beyond ASCII in octal. */
static const struct {
	const char *in, *want;
} go_cases[] = {
    {"{'b':1,'a':2}", "{'a':2,'b':1}"},
    {"{'z':{'y':[3,{'d':1,'c':2}],'x':null},'a':true,'m':{'b':{'d':[],'c':{}},'a':'x'}}",
     "{'a':true,'m':{'a':'x','b':{'c':{},'d':[]}},'z':{'x':null,'y':[3,{'c':2,'d':1}]}}"},
    {"{'B':1,'a':2,'_':3,'1':4,'':5,'A':6,'aa':7,'a0':8}",
     "{'':5,'1':4,'A':6,'B':1,'_':3,'a':2,'a0':8,'aa':7}"},
    {"'<script>alert(\\'x&y\\')</script>'",
     "'\\u003cscript\\u003ealert(\\'x\\u0026y\\')\\u003c/script\\u003e'"},
    {"{'key<>&':'v<>&'}", "{'key\\u003c\\u003e\\u0026':'v\\u003c\\u003e\\u0026'}"},
    {"'\\u2028 and \\u2029'", "'\\u2028 and \\u2029'"},
    {"'raw \342\200\250 and \342\200\251'", "'raw \\u2028 and \\u2029'"},
    {"'\\u0001\\u0002\\u001f\\u0007\\u000b\\u001b'", "'\\u0001\\u0002\\u001f\\u0007\\u000b\\u001b'"},
    {"'\\b\\f\\n\\r\\t'", "'\\b\\f\\n\\r\\t'"},
    {"'quote \\' backslash \\\\ slash \\/ end'", "'quote \\' backslash \\\\ slash / end'"},
    {"'h\303\251llo w\303\266rld \344\270\255\346\226\207'",
     "'h\303\251llo w\303\266rld \344\270\255\346\226\207'"},
    {"'\\u00e9\\u4e2d\\u00ff'", "'\303\251\344\270\255\303\277'"},
    {"'emoji \360\237\230\200 \360\237\232\200'", "'emoji \360\237\230\200 \360\237\232\200'"},
    {"'pair \\ud83d\\ude00'", "'pair \360\237\230\200'"},
    {"'bad \377\376 utf8 \303( \355\240\200 \364\220\200\200 \342\202'",
     "'bad \357\277\275\357\277\275 utf8 \357\277\275( \357\277\275\357\277\275\357\277\275 "
     "\357\277\275\357\277\275\357\277\275\357\277\275 \357\277\275\357\277\275'"},
    {"'del \177 and \\u007f'", "'del \177 and \177'"},
    {"9007199254740993", "9007199254740993"},
    {"-9007199254740993", "-9007199254740993"},
    {"9007199254740992", "9007199254740992"},
    {"-9223372036854775808", "-9223372036854775808"},
    {"9223372036854775807", "9223372036854775807"},
    {"9223372036854775808", "9223372036854776000"},
    {"-9223372036854775809", "-9223372036854776000"},
    {"18446744073709551616", "18446744073709552000"},
    {"123456789012345678901234567890", "1.2345678901234568e+29"},
    {"0.1", "0.1"},
    {"1.5", "1.5"},
    {"1e21", "1e+21"},
    {"1e20", "100000000000000000000"},
    {"1e-6", "0.000001"},
    {"1e-7", "1e-7"},
    {"123456789.123", "123456789.123"},
    {"-0.0", "-0"},
    {"-0", "0"},
    {"1.0", "1"},
    {"5e-324", "5e-324"},
    {"1.7976931348623157e308", "1.7976931348623157e+308"},
    {"0", "0"},
    {"-1", "-1"},
    {"1E2", "100"},
    {"2.5e-5", "0.000025"},
    {"0.30000000000000004", "0.30000000000000004"},
    {"100000000000000000000000", "1e+23"},
    {"1.5e300", "1.5e+300"},
    {"-1.25e-10", "-1.25e-10"},
    {"9223372036854775807.0", "9223372036854776000"},
    {"[[1,[2,[3,[]]]],[],[[]]]", "[[1,[2,[3,[]]]],[],[[]]]"},
    {"{}", "{}"},
    {"[]", "[]"},
    {"[true,false,null,'',0]", "[true,false,null,'',0]"},
    {"{'':'empty key','a\\'b':'c\\\\d'}", "{'':'empty key','a\\'b':'c\\\\d'}"},
    {"{'a':1,'a':2}", "{'a':2}"},
    {"{'\303\251':1,'z':2,'\\u00e9a':3,'e':4}", "{'e':4,'z':2,'\303\251':1,'\303\251a':3}"},
    {" { 'spaced' : [ 1 , 2 ] , 't' : 'x' } ", "{'spaced':[1,2],'t':'x'}"},
    {"{'big':[9007199254740993,1,18446744073709551615,-0,0.5],'s':'12345678901234567890'}",
     "{'big':[9007199254740993,1,18446744073709552000,0,0.5],'s':'12345678901234567890'}"},
};

/* s with ' turned into " (caller frees). */
static char *dq(const char *s)
{
	char *t = strdup(s);

	assert_non_null(t);
	for (char *p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	return t;
}

static cJSON *parse_ok(const char *text)
{
	struct sl_error err = {0};
	cJSON *v = NULL;

	if (sl_manifest_json_parse(text, strlen(text), &v, &err) != 0)
		fail_msg("parse [%s]: %s", text, err.msg);
	return v;
}

static void go_table(void **state)
{
	(void)state;
	assert_true(SL_ARRAY_SIZE(go_cases) >= 40);
	for (size_t i = 0; i < SL_ARRAY_SIZE(go_cases); i++) {
		char *in = dq(go_cases[i].in), *want = dq(go_cases[i].want), *got;
		cJSON *v = parse_ok(in);

		got = sl_manifest_json_go(v);
		assert_non_null(got);
		if (strcmp(got, want) != 0)
			fail_msg("case %zu [%s]: want %s, got %s", i, in, want, got);
		free(got);
		cJSON_Delete(v);
		free(in);
		free(want);
	}
}

static void keeps_literals(void **state)
{
	cJSON *v = parse_ok("{\"a\":9007199254740993,\"b\":[-9223372036854775808,12345678901234567890123],"
	                    "\"c\":1,\"d\":0.5,\"e\":1e300,\"f\":\"9007199254740993\",\"g\":9007199254740992,"
	                    "\"h\":-0,\"i\":-0.0,\"j\":9007199254740993.0,\"k\":1e16}");
	cJSON *copy;
	char *s;

	(void)state;
	assert_string_equal(at(v, "a")->valuestring, "9007199254740993");
	assert_string_equal(at(v, "b.0")->valuestring, "-9223372036854775808");
	assert_string_equal(at(v, "b.1")->valuestring, "12345678901234567890123");
	/* nothing kept (nor allocated) for numbers a double holds, for
	 * non-integers, or for 2^53 itself */
	assert_null(at(v, "c")->valuestring);
	assert_null(at(v, "d")->valuestring);
	assert_null(at(v, "e")->valuestring);
	assert_null(at(v, "g")->valuestring);
	assert_null(at(v, "j")->valuestring);
	assert_null(at(v, "k")->valuestring);
	assert_string_equal(str(v, "f"), "9007199254740993");
	/* "-0" is Go's int64 0, "-0.0" its float64 -0 */
	assert_false(signbit(at(v, "h")->valuedouble));
	assert_true(signbit(at(v, "i")->valuedouble));

	/* cJSON_Duplicate copies the literal, cJSON_Delete frees it */
	copy = cJSON_Duplicate(v, true);
	assert_non_null(copy);
	cJSON_Delete(v);
	assert_string_equal(at(copy, "a")->valuestring, "9007199254740993");
	s = sl_manifest_json_go(copy);
	assert_string_equal(
	    s, "{\"a\":9007199254740993,\"b\":[-9223372036854775808,1.2345678901234568e+22],"
	       "\"c\":1,\"d\":0.5,\"e\":1e+300,\"f\":\"9007199254740993\",\"g\":9007199254740992,"
	       "\"h\":0,\"i\":-0,\"j\":9007199254740992,\"k\":10000000000000000}");
	free(s);

	/* a number changed after parsing is written as it is now */
	cJSON_SetNumberValue(at(copy, "a"), 5);
	s = sl_manifest_json_go(at(copy, "a"));
	assert_string_equal(s, "5");
	free(s);
	cJSON_Delete(copy);
}

static void parse_errors(void **state)
{
	static const char *const bad[] = {"", "{", "[1,]", "{\"a\" 1}", "nul", "\"open", "-", "[1 2]"};
	struct sl_error err;
	cJSON *v;

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
		v = NULL;
		sl_error_clear(&err);
		assert_int_equal(sl_manifest_json_parse(bad[i], strlen(bad[i]), &v, &err), SL_EINVALID);
		assert_null(v);
		assert_non_null(strstr(err.msg, "invalid JSON"));
	}
	assert_int_equal(sl_manifest_json_parse("[1,]", 4, &v, &err), SL_EINVALID);
	assert_string_equal(err.msg, "invalid JSON at byte 3");
	assert_int_equal(sl_manifest_json_parse(NULL, 0, &v, NULL), SL_EINVALID);

	/* only len bytes are read: no NUL needed, none looked for */
	v = NULL;
	assert_int_equal(sl_manifest_json_parse("[9007199254740993]xyz", 18, &v, &err), 0);
	assert_string_equal(at(v, "0")->valuestring, "9007199254740993");
	cJSON_Delete(v);
	assert_int_equal(sl_manifest_json_parse("[9007199254740993]", 17, &v, &err), SL_EINVALID);
	/* as cJSON_ParseWithLength: text after the value is not read, numbers
	 * in it included */
	v = parse_ok("9007199254740993 9007199254740995");
	assert_string_equal(v->valuestring, "9007199254740993");
	cJSON_Delete(v);
	/* numbers inside strings and keys are not taken for the tree's */
	v = parse_ok("{\"1\\\"2\":\"3,\\\\\",\"x\":[\"4\",9007199254740995,\"-5\"],\"7\":-9007199254740997}");
	assert_string_equal(at(v, "x.1")->valuestring, "9007199254740995");
	assert_string_equal(at(v, "7")->valuestring, "-9007199254740997");
	cJSON_Delete(v);
}

static void built_trees(void **state)
{
	cJSON *v = cJSON_CreateObject();
	char *s;

	(void)state;
	assert_non_null(v);
	assert_non_null(cJSON_AddNumberToObject(v, "inf", INFINITY));
	assert_non_null(cJSON_AddNumberToObject(v, "nan", NAN));
	assert_non_null(cJSON_AddNumberToObject(v, "big", 9007199254740993.0));
	assert_non_null(cJSON_AddRawToObject(v, "raw", "[1, 2]"));
	s = sl_manifest_json_go(v);
	/* a tree built by code has no literal: 2^53+1 was a double already */
	assert_string_equal(s, "{\"big\":9007199254740992,\"inf\":null,\"nan\":null,\"raw\":[1, 2]}");
	free(s);
	cJSON_Delete(v);
	s = sl_manifest_json_go(NULL);
	assert_string_equal(s, "null");
	free(s);
}

/* Nested as deep as cJSON parses (1000 levels), a kept literal at the bottom. */
static void deep_nesting(void **state)
{
	struct sl_buf in;
	cJSON *v;
	char *got;

	(void)state;
	sl_buf_init(&in, 1 << 20);
	for (int i = 0; i < 490; i++)
		assert_int_equal(sl_buf_puts(&in, "[{\"k\":"), 0);
	assert_int_equal(sl_buf_puts(&in, "9007199254740993"), 0);
	for (int i = 0; i < 490; i++)
		assert_int_equal(sl_buf_puts(&in, "}]"), 0);
	v = parse_ok(in.data);
	got = sl_manifest_json_go(v);
	assert_string_equal(got, in.data);
	free(got);
	cJSON_Delete(v);
	sl_buf_free(&in);
}

static int collect(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload)
{
	cJSON **ret = payload;

	(void)index, (void)line, (void)column;
	if (*ret) {
		cJSON_Delete(obj);
		return SL_EINVALID;
	}
	*ret = obj;
	return 0;
}

static void yaml_literals(void **state)
{
	static const char yaml[] = "a: 9007199254740993\n"
	                           "b: 0x20000000000001\n"
	                           "c: -9223372036854775808\n"
	                           "d: 18446744073709551615\n"
	                           "e: 9_007_199_254_740_995\n"
	                           "f: -0\n"
	                           "g: -0.0\n"
	                           "h: 9007199254740993.0\n"
	                           "i: !!float 9007199254740993\n"
	                           "j: '9007199254740993'\n"
	                           "k: 1000\n"
	                           "l: 1e21\n";
	struct sl_error err = {0};
	struct sl_buf b;
	cJSON *v = NULL, *back = NULL;
	char *s, *s2;

	(void)state;
	assert_int_equal(sl_manifest_parse(yaml, strlen(yaml), NULL, collect, &v, &err), 0);
	assert_string_equal(at(v, "b")->valuestring, "9007199254740993");
	assert_null(at(v, "k")->valuestring);
	s = sl_manifest_json_go(v);
	assert_string_equal(s, "{\"a\":9007199254740993,\"b\":9007199254740993,\"c\":-9223372036854775808,"
	                       "\"d\":18446744073709552000,\"e\":9007199254740995,\"f\":0,\"g\":0,"
	                       "\"h\":9007199254740992,\"i\":9007199254740992,\"j\":\"9007199254740993\","
	                       "\"k\":1000,\"l\":1e+21}");
	free(s);

	/* the YAML writer writes the digits, which read back the same */
	sl_buf_init(&b, 1 << 16);
	assert_int_equal(sl_manifest_yaml_write(v, SL_MANIFEST_YAML_SORT_KEYS, &b), 0);
	assert_non_null(strstr(b.data, "a: 9007199254740993\n"));
	assert_int_equal(sl_manifest_parse(b.data, b.len, NULL, collect, &back, &err), 0);
	s = sl_manifest_json_go(back);
	s2 = sl_manifest_json_go(v);
	assert_string_equal(s, s2);
	free(s);
	free(s2);
	sl_buf_free(&b);
	cJSON_Delete(back);
	cJSON_Delete(v);
}

/* Shared strings: two cached objects share their keys and repeated values,
 * read, print, duplicate and free as before; unique values stay their own. */
static void shared_strings(void **state)
{
	static const char job[] =
	    "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"%s\","
	    "\"namespace\":\"streams\",\"uid\":\"%s\",\"resourceVersion\":\"%d\",\"labels\":{"
	    "\"arcane/backfilling\":\"false\"}},\"status\":{\"active\":1,\"conditions\":[{\"type\":"
	    "\"Complete\",\"status\":\"True\",\"lastTransitionTime\":\"2026-01-01T00:00:0%dZ\"}]}}";
	char text[2][1024], *before[2], *after;
	cJSON *o[2], *dup;
	size_t n0 = sl_manifest_json_shared_count();
	struct sl_error err = {0};
	(void)state;

	for (int i = 0; i < 2; i++) {
		snprintf(text[i], sizeof(text[i]), job, i ? "b" : "a", i ? "uid-b" : "uid-a", 100 + i, i);
		assert_int_equal(sl_manifest_json_parse(text[i], strlen(text[i]), &o[i], &err), 0);
		before[i] = sl_manifest_json_go(o[i]);
		sl_manifest_json_share(o[i]);
		after = sl_manifest_json_go(o[i]);
		assert_string_equal(before[i], after); /* the same object, read back */
		free(after);
	}
	assert_true(sl_manifest_json_shared_count() > n0);
	/* keys and a repeated value: one string for both trees */
	assert_ptr_equal(cJSON_GetObjectItem(o[0], "metadata")->string,
	                 cJSON_GetObjectItem(o[1], "metadata")->string);
	assert_ptr_equal(sl_manifest_md_str(o[0], "namespace"), sl_manifest_md_str(o[1], "namespace"));
	assert_ptr_equal(sl_manifest_label(o[0], "arcane/backfilling"), sl_manifest_label(o[1], "arcane/backfilling"));
	/* unique values stay the tree's own */
	assert_ptr_not_equal(sl_manifest_md_str(o[0], "uid"), sl_manifest_md_str(o[1], "uid"));
	assert_string_equal(sl_manifest_md_str(o[1], "uid"), "uid-b");
	assert_true(!(cJSON_GetObjectItem(cJSON_GetObjectItem(o[0], "metadata"), "uid")->type & cJSON_IsReference));
	/* a duplicate owns its values again: it may be changed, the cache not */
	dup = cJSON_Duplicate(o[0], 1);
	assert_non_null(dup);
	assert_non_null(cJSON_SetValuestring(cJSON_GetObjectItem(cJSON_GetObjectItem(dup, "metadata"), "namespace"),
	                                     "elsewhere"));
	assert_string_equal(sl_manifest_md_str(o[0], "namespace"), "streams");
	assert_null(cJSON_SetValuestring(cJSON_GetObjectItem(cJSON_GetObjectItem(o[0], "metadata"), "namespace"),
	                                 "elsewhere"));
	/* a member deleted from a shared tree, and the trees freed: no double free, no leak */
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItem(o[1], "metadata"), "labels");
	cJSON_Delete(dup);
	for (int i = 0; i < 2; i++) {
		cJSON_Delete(o[i]);
		free(before[i]);
	}
	sl_manifest_json_share(NULL);
}

/* Address p lies inside the allocation that starts at block. */
static bool inside(const void *block, const void *p)
{
	const char *b = block, *q = p;

	return q >= b && q < b + malloc_usable_size((void *)block);
}

static void check_packed(const cJSON *c, const cJSON *root)
{
	for (; c; c = c->next) {
		assert_true(inside(root, c));
		if (c->string && !(c->type & cJSON_StringIsConst))
			assert_true(inside(root, c->string));
		if (c->valuestring && !(c->type & cJSON_IsReference))
			assert_true(inside(root, c->valuestring));
		check_packed(c->child, root);
	}
}

/* A packed tree reads, prints and compares as the tree it was made from,
 * lies in one allocation, duplicates into a normal tree that outlives it,
 * and is freed by cJSON_Delete (ASan and valgrind see no leak, no double
 * free). */
static void packed_trees(void **state)
{
	static const char text[] =
	    "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"s00001\","
	    "\"namespace\":\"streams\",\"uid\":\"0b1c2d3e-aaaa-bbbb-cccc-0123456789ab\","
	    "\"annotations\":{\"a-key-that-is-much-too-long-to-be-shared-by-the-table-of-strings-0123\":"
	    "\"v\"},\"ownerReferences\":[{\"controller\":true,\"blockOwnerDeletion\":false,"
	    "\"name\":\"s00001\"}]},\"spec\":{\"parallelism\":1.5,\"selector\":null,\"tags\":[],"
	    "\"empty\":{},\"big\":12345678901234567890}}";
	struct sl_error err = {0};
	cJSON *shared, *plain, *p1, *p2, *dup;
	char *want, *got;
	const cJSON *own;
	(void)state;

	assert_int_equal(sl_manifest_json_parse(text, strlen(text), &shared, &err), 0);
	assert_int_equal(sl_manifest_json_parse(text, strlen(text), &plain, &err), 0);
	want = sl_manifest_json_go(plain);
	sl_manifest_json_share(shared);
	p1 = sl_manifest_json_pack(shared);
	p2 = sl_manifest_json_pack(plain); /* strings all its own */
	assert_non_null(p1);
	assert_non_null(p2);
	cJSON_Delete(shared);
	cJSON_Delete(plain);
	for (int i = 0; i < 2; i++) {
		const cJSON *p = i ? p2 : p1;
		got = sl_manifest_json_go(p);
		assert_string_equal(got, want);
		free(got);
		check_packed(p->child, p);
		assert_string_equal(sl_manifest_md_str(p, "uid"), "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab");
		assert_int_equal(cJSON_GetArraySize(
		                     cJSON_GetObjectItem(sl_manifest_obj(p, "metadata"), "ownerReferences")),
		                 1);
	}
	assert_true(cJSON_Compare(p1, p2, true));
	/* a duplicate is a normal tree: changed, and kept after the packed one goes */
	dup = cJSON_Duplicate(p2, 1);
	assert_non_null(dup);
	cJSON_Delete(p2);
	assert_non_null(
	    cJSON_SetValuestring(cJSON_GetObjectItem(cJSON_GetObjectItem(dup, "metadata"), "name"), "x"));
	own = cJSON_GetObjectItem(sl_manifest_obj(dup, "metadata"), "annotations")->child;
	assert_string_equal(own->string,
	                    "a-key-that-is-much-too-long-to-be-shared-by-the-table-of-strings-0123");
	cJSON_DeleteItemFromObjectCaseSensitive(dup, "spec");
	cJSON_Delete(dup);
	cJSON_Delete(p1);
	/* only a tree of its own is packed: a member once detached (as a watch
	 * event's object is), without the key it kept */
	assert_int_equal(sl_manifest_json_parse(text, strlen(text), &plain, &err), 0);
	assert_null(sl_manifest_json_pack(cJSON_GetObjectItem(plain, "metadata")));
	assert_null(sl_manifest_json_pack(NULL));
	shared = cJSON_DetachItemFromObjectCaseSensitive(plain, "metadata");
	assert_non_null(shared->string);
	p1 = sl_manifest_json_pack(shared);
	assert_non_null(p1);
	assert_null(p1->string);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p1, "name")), "s00001");
	check_packed(p1->child, p1);
	cJSON_Delete(p1);
	cJSON_Delete(shared);
	cJSON_Delete(plain);
	free(want);
}

/* Keeping by paths: what they name stays whole, what they pass through
 * keeps only what deeper paths name, arrays apply paths to each item,
 * everything else goes. */
static void kept_paths(void **state)
{
	static const char text[] =
	    "{'apiVersion':'batch/v1','kind':'Job','metadata':{'name':'j','namespace':'n','generation':3,"
	    "'managedFields':[{'manager':'m'}],'labels':{'job-name':'j','a.b/c':'d'}},"
	    "'spec':{'template':{'spec':{'containers':[{'name':'c','image':'i','env':[{'name':'E',"
	    "'value':'1'}]},{'name':'d'}]}},'suspend':false},"
	    "'status':{'ready':0,'active':1,'conditions':[{'type':'Failed','status':'True',"
	    "'lastProbeTime':'t','message':'m'}],'uncountedTerminatedPods':{}},'extra':[1,2]}";
	static const char want[] =
	    "{'apiVersion':'batch/v1','kind':'Job','metadata':{'labels':{'a.b/c':'d','job-name':'j'},"
	    "'name':'j','namespace':'n'},'spec':{'template':{'spec':{'containers':[{'env':[{'name':'E',"
	    "'value':'1'}]},{}]}}},'status':{'active':1,'conditions':[{'message':'m','status':'True',"
	    "'type':'Failed'}]}}";
	static const char *const paths[] = {"apiVersion",
	                                    "kind",
	                                    "metadata.name",
	                                    "metadata.namespace",
	                                    "metadata.labels",
	                                    "metadata.deletionTimestamp",
	                                    "spec.template.spec.containers.env",
	                                    "status.active",
	                                    "status.conditions.type",
	                                    "status.conditions.status",
	                                    "status.conditions.message",
	                                    NULL};
	char in[sizeof(text)], out[sizeof(want)], *got;
	struct sl_error err = {0};
	cJSON *v;
	(void)state;

	for (size_t i = 0; i < sizeof(text); i++)
		in[i] = text[i] == '\'' ? '"' : text[i];
	for (size_t i = 0; i < sizeof(want); i++)
		out[i] = want[i] == '\'' ? '"' : want[i];
	assert_int_equal(sl_manifest_json_parse(in, strlen(in), &v, &err), 0);
	sl_manifest_json_keep(v, paths);
	got = sl_manifest_json_go(v);
	assert_string_equal(got, out);
	free(got);
	/* nothing named: nothing kept; no tree: nothing done */
	sl_manifest_json_keep(v, (const char *const[]){NULL});
	assert_null(v->child);
	sl_manifest_json_keep(NULL, paths);
	cJSON_Delete(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(go_table),       cmocka_unit_test(keeps_literals),
	    cmocka_unit_test(parse_errors),   cmocka_unit_test(built_trees),
	    cmocka_unit_test(deep_nesting),   cmocka_unit_test(yaml_literals),
	    cmocka_unit_test(shared_strings), cmocka_unit_test(packed_trees),
	    cmocka_unit_test(kept_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
