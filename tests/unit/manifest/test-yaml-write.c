/* Unit tests of the manifest module's YAML writer (used by `sluice plan` and
 * `sluice diff`): quoting of every scalar a reader would take as another type,
 * block layout, sorted keys, and output read back with sl_manifest_parse as
 * the same JSON value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../stream/json-fixtures.h"
#include "sluice/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *yaml(const cJSON *v, unsigned flags)
{
	struct sl_buf b;
	sl_buf_init(&b, 1 << 20);
	assert_int_equal(sl_manifest_yaml_write(v, flags, &b), 0);
	return sl_buf_steal(&b);
}

static int collect(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload)
{
	cJSON **ret = payload;
	(void)index, (void)line, (void)column;
	if (*ret) {
		cJSON_Delete(obj);
		return SL_EINVALID; /* the writer writes one document */
	}
	*ret = obj;
	return 0;
}

/* Writes v, reads it back with sl_manifest_parse and fails unless the result
 * equals v. */
static void assert_round_trip(const cJSON *v, unsigned flags)
{
	struct sl_buf b;
	struct sl_error err = {0};
	cJSON *back = NULL;

	sl_buf_init(&b, 1 << 22);
	assert_int_equal(sl_manifest_yaml_write(v, flags, &b), 0);
	if (sl_manifest_parse(b.data, b.len, NULL, collect, &back, &err) != 0)
		fail_msg("parse: %s\n%s", err.msg, b.data);
	assert_non_null(back);
	if (!cJSON_Compare(v, back, true)) {
		char *a = cJSON_Print(v), *c = cJSON_Print(back);
		fail_msg("round trip differs:\n%s\n---\n%s\n---\n%s", b.data, a, c);
	}
	cJSON_Delete(back);
	sl_buf_free(&b);
}

/* Strings that tempt a reader: YAML 1.1 and 1.2 booleans and nulls, numbers
 * in every base, timestamps, indicators, comments, line breaks. */
static const char *const tricky[] = {
    "true",
    "False",
    "TRUE",
    "yes",
    "Yes",
    "NO",
    "on",
    "Off",
    "y",
    "Y",
    "n",
    "N",
    "null",
    "Null",
    "~",
    "",
    "0",
    "007",
    "0x1F",
    "0o17",
    "0b101",
    "1e3",
    "-1.5",
    ".5",
    "+1",
    "1_000",
    "1:20",
    ".inf",
    "-.Inf",
    ".NaN",
    "2024-01-01",
    "2024-01-01T10:00:00Z",
    "2001-12-14 21:59:43.10 -5",
    "12:30",
    "a: b",
    "a:",
    "a #b",
    "#c",
    "- x",
    "-",
    "---",
    "...",
    "? x",
    "?",
    ":x",
    "*alias",
    "&anchor",
    "!tag",
    "!!str",
    "|",
    ">",
    "%x",
    "@x",
    "`x`",
    "{a}",
    "[a]",
    "x,y",
    "'q'",
    "\"q\"",
    "q\"uote",
    " lead",
    "trail ",
    "tab\there",
    "line\nbreak",
    "two\n\nbreaks\n",
    "cr\r\nlf",
    "bell\a",
    "del\x7f",
    "back\\slash",
    "ünïcode",
    "nel\xc2\x85x",
    "ls\xe2\x80\xa8x",
    "ps\xe2\x80\xa9x",
    "\xef\xbb\xbf"
    "bom",
    "plain text",
    "image:tag",
    "http://x/y?z=1#f",
    "<<",
    "=",
};

static void quoting(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain", "plain"},
	    {"true", "\"true\""},
	    {"no", "\"no\""},
	    {"On", "\"On\""},
	    {"y", "\"y\""},
	    {"n", "\"n\""},
	    {"Y", "\"Y\""},
	    {"off", "\"off\""},
	    {"null", "\"null\""},
	    {"~", "\"~\""},
	    {"", "\"\""},
	    {"123", "\"123\""},
	    {"1e3", "\"1e3\""},
	    {"0x1F", "\"0x1F\""},
	    {"-1", "\"-1\""},
	    {".5", "\".5\""},
	    {".inf", "\".inf\""},
	    {"2024-01-01", "\"2024-01-01\""},
	    {"a: b", "\"a: b\""},
	    {"a:", "\"a:\""},
	    {"a #b", "\"a #b\""},
	    {"#x", "\"#x\""},
	    {"*x", "\"*x\""},
	    {"line\nnext", "\"line\\nnext\""},
	    {"q\"uote", "q\"uote"},
	    {"\"q", "\"\\\"q\""},
	    {"img:1", "img:1"},
	    {"a/b-c", "a/b-c"},
	    {"a#b", "a#b"},
	    {" lead", "\" lead\""},
	    {"trail ", "\"trail \""},
	    {"-x", "\"-x\""},
	    {"{x}", "\"{x}\""},
	    {"back\\slash", "back\\slash"},
	    {"bell\a", "\"bell\\x07\""},
	    {"ls\xe2\x80\xa8x", "\"ls\\Lx\""},
	    {"ünïcode", "ünïcode"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *v = cJSON_CreateString(cases[i].in);
		char *y = yaml(v, 0), want[128];
		snprintf(want, sizeof(want), "%s\n", cases[i].out);
		if (strcmp(y, want) != 0)
			fail_msg("case %zu: %s gave %s, want %s", i, cases[i].in, y, want);
		free(y);
		cJSON_Delete(v);
	}
}

static void structure(void **state)
{
	cJSON *v = J(
	    "{'a':1,'b':[{'c':'x','d':[1,2.5]},[true,null]],'e':{},'f':[],'g':{'h':{'i':false}},'true':'k'}");
	char *y = yaml(v, 0);
	assert_string_equal(y, "a: 1\n"
	                       "b:\n"
	                       "  - c: x\n"
	                       "    d:\n"
	                       "      - 1\n"
	                       "      - 2.5\n"
	                       "  - - true\n"
	                       "    - null\n"
	                       "e: {}\n"
	                       "f: []\n"
	                       "g:\n"
	                       "  h:\n"
	                       "    i: false\n"
	                       "\"true\": k\n");
	free(y);
	cJSON_Delete(v);
}

/* SL_MANIFEST_YAML_SORT_KEYS sorts every level byte-wise (what the diff
 * relies on: the live object's key order is the server's). */
static void sorted_keys(void **state)
{
	cJSON *o = J("{'b':[1,'two',{'x':true,'a':null}],'a':{'s':'yes','t':'a: b','u':'1.5',"
	             "'v':'plain-text','e':{},'l':[]},'n':2.5,'B':'upper'}");
	char *y = yaml(o, SL_MANIFEST_YAML_SORT_KEYS);
	assert_string_equal(y, "B: upper\n"
	                       "a:\n"
	                       "  e: {}\n"
	                       "  l: []\n"
	                       "  s: \"yes\"\n"
	                       "  t: \"a: b\"\n"
	                       "  u: \"1.5\"\n"
	                       "  v: plain-text\n"
	                       "b:\n"
	                       "  - 1\n"
	                       "  - two\n"
	                       "  - a: null\n"
	                       "    x: true\n"
	                       "\"n\": 2.5\n"); /* a YAML 1.1 boolean as a key too */
	free(y);
	assert_round_trip(o, SL_MANIFEST_YAML_SORT_KEYS);
	cJSON_Delete(o);
}

/* Every tricky string, as a sequence item, a key and a value, reads back as
 * the same string; numbers, booleans, null and empty containers keep their
 * types, at every nesting the writer has a layout for. */
static void round_trip(void **state)
{
	cJSON *v = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(v, "strings");
	for (size_t i = 0; i < SL_ARRAY_SIZE(tricky); i++) {
		cJSON_AddItemToArray(arr, cJSON_CreateString(tricky[i]));
		cJSON_AddStringToObject(v, tricky[i], tricky[i]);
	}
	cJSON_AddNumberToObject(v, "int", 42);
	cJSON_AddNumberToObject(v, "neg", -7);
	cJSON_AddNumberToObject(v, "zero", 0);
	cJSON_AddNumberToObject(v, "float", 0.1);
	cJSON_AddNumberToObject(v, "small", -1.25e-9);
	cJSON_AddNumberToObject(v, "big", 9007199254740991.0);
	cJSON_AddNumberToObject(v, "huge", 1e300);
	cJSON_AddTrueToObject(v, "t");
	cJSON_AddFalseToObject(v, "f");
	cJSON_AddNullToObject(v, "nil");
	cJSON_AddItemToObject(v, "emptyobj", cJSON_CreateObject());
	cJSON_AddItemToObject(v, "emptyarr", cJSON_CreateArray());
	cJSON *nested = cJSON_CreateArray();
	cJSON_AddItemToArray(nested, cJSON_CreateArray());
	cJSON_AddItemToArray(cJSON_GetArrayItem(nested, 0), cJSON_CreateString("deep"));
	cJSON_AddItemToArray(nested, J("{'a':{'b':[1,{'c':'no','d':[[],{}]}]},'e':[[['y']]]}"));
	cJSON_AddItemToObject(v, "nested", nested);

	assert_round_trip(v, 0);
	assert_round_trip(v, SL_MANIFEST_YAML_SORT_KEYS);
	cJSON_Delete(v);

	/* top-level scalars and empty containers */
	for (size_t i = 0; i < SL_ARRAY_SIZE(tricky); i++) {
		cJSON *s = cJSON_CreateString(tricky[i]);
		assert_round_trip(s, 0);
		cJSON_Delete(s);
	}
	const char *const tops[] = {"[]", "{}", "[1,'x',[]]", "3.5", "true"};
	for (size_t i = 0; i < SL_ARRAY_SIZE(tops); i++) {
		cJSON *t = J(tops[i]);
		assert_round_trip(t, 0);
		cJSON_Delete(t);
	}
}

/* Keys longer than libyaml's 1024-character limit for implicit keys are
 * written as explicit "? key" entries, with scalar and block values. */
static void long_keys(void **state)
{
	char key[3001];
	cJSON *v = cJSON_CreateObject();

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	cJSON_AddStringToObject(v, key, "scalar");
	key[0] = 'b';
	cJSON_AddItemToObject(v, key, J("{'x':[1,{'y':'n'}]}"));
	key[0] = 'l';
	cJSON_AddItemToObject(v, key, J("[1,2]"));
	cJSON *items = cJSON_AddArrayToObject(v, "items");
	key[0] = 'i';
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, key, "in a sequence");
	cJSON_AddStringToObject(m, "short", "x");
	cJSON_AddItemToArray(items, m);

	char *y = yaml(v, 0);
	assert_true(strncmp(y, "? kkk", 5) == 0);
	free(y);
	assert_round_trip(v, 0);
	assert_round_trip(v, SL_MANIFEST_YAML_SORT_KEYS);
	cJSON_Delete(v);
}

/* The output's maximum is honoured; nesting beyond 256 is refused. */
static void limits(void **state)
{
	cJSON *v = J("{'a':'0123456789','b':[1,2,3]}");
	struct sl_buf b;

	sl_buf_init(&b, 8);
	assert_int_equal(sl_manifest_yaml_write(v, 0, &b), SL_ETOOLARGE);
	sl_buf_free(&b);
	cJSON_Delete(v);

	cJSON *root = cJSON_CreateArray(), *cur = root;
	for (int i = 0; i < 300; i++) {
		cJSON *next = cJSON_CreateArray();
		cJSON_AddItemToArray(cur, next);
		cur = next;
	}
	cJSON_AddItemToArray(cur, cJSON_CreateNumber(1));
	sl_buf_init(&b, 1 << 20);
	assert_int_equal(sl_manifest_yaml_write(root, 0, &b), SL_ETOOLARGE);
	sl_buf_free(&b);
	cJSON_Delete(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(quoting),    cmocka_unit_test(structure), cmocka_unit_test(sorted_keys),
	    cmocka_unit_test(round_trip), cmocka_unit_test(long_keys), cmocka_unit_test(limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
