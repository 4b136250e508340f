/* Unit tests of manifest: scalar resolution against kubectl's table, aliases
 * and bombs, merge and duplicate keys, positions, limits, tree loading with
 * hidden files and symlinks, the parse cache, validation (good tree and
 * every bad manifest with its expected message) and the validate command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/manifest-json.h"
#include "sluice/manifest.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *src_root(void)
{
	const char *r = getenv("SLUICE_SOURCE_ROOT");
	return r ? r : ".";
}

/* ---- helpers ------------------------------------------------------------ */

struct docs {
	cJSON *v[16];
	unsigned index[16], line[16];
	size_t n;
};

static int collect(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload)
{
	struct docs *d = payload;
	if (d->n == SL_ARRAY_SIZE(d->v)) {
		cJSON_Delete(obj);
		return 0;
	}
	d->index[d->n] = index;
	d->line[d->n] = line;
	d->v[d->n++] = obj;
	return 0;
}

static void docs_free(struct docs *d)
{
	for (size_t i = 0; i < d->n; i++)
		cJSON_Delete(d->v[i]);
	d->n = 0;
}

static int parse(const char *yaml, const struct sl_manifest_limits *lim, struct docs *d, struct sl_error *e)
{
	memset(d, 0, sizeof(*d));
	sl_error_clear(e);
	return sl_manifest_parse(yaml, strlen(yaml), lim, collect, d, e);
}

static struct sl_manifest_set *load(const char *name, const char *yaml)
{
	struct sl_manifest_set *s = sl_manifest_set_new(NULL);
	assert_non_null(s);
	assert_int_equal(sl_manifest_set_add_buffer(s, name, yaml, strlen(yaml), NULL), 0);
	assert_int_equal(sl_manifest_set_validate(s), 0);
	return s;
}

static bool has_problem(const struct sl_manifest_set *s, const char *substr)
{
	char line[2048];
	for (size_t i = 0; i < sl_manifest_set_problem_count(s); i++) {
		sl_manifest_problem_format(sl_manifest_set_problem(s, i), line, sizeof(line));
		if (strstr(line, substr))
			return true;
	}
	return false;
}

static void dump_problems(const struct sl_manifest_set *s)
{
	for (size_t i = 0; i < sl_manifest_set_problem_count(s); i++)
		sl_manifest_problem_print(sl_manifest_set_problem(s, i), stderr);
}

/* ---- scalars ------------------------------------------------------------ */

/* Every case of tests/data/manifest/scalars.tsv (made with the real kubectl)
 * resolves to the same JSON here. */
static void scalar_table(void **state)
{
	char path[4096], line[4096];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/tests/data/manifest/scalars.tsv", src_root());
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t'), yaml[4200], *want, *o = yaml;
		struct docs d;
		struct sl_error e;
		int r;

		if (line[0] == '#' || !tab)
			continue;
		*tab = '\0';
		want = tab + 1;
		want[strcspn(want, "\n")] = '\0';
		o += sprintf(o, "v: ");
		for (const char *p = line; *p; p++) {
			if (p[0] == '\\' && p[1] == 'n') {
				o += sprintf(o, "\n  ");
				p++;
			} else {
				*o++ = *p;
			}
		}
		strcpy(o, "\n");
		r = parse(yaml, NULL, &d, &e);
		if (strcmp(want, "ERROR") == 0) {
			if (r == 0)
				fail_msg("case [%s]: kubectl refuses it, we accepted it", line);
		} else {
			cJSON *exp = cJSON_Parse(want), *got;
			if (r != 0 || d.n != 1)
				fail_msg("case [%s]: %s", line, e.msg);
			got = cJSON_GetObjectItemCaseSensitive(d.v[0], "v");
			assert_non_null(exp);
			if (cJSON_IsNumber(exp)) {
				/* kubectl prints int64 exactly and wider numbers as
				 * float64, as Go does: the loader keeps the digits of
				 * integers beyond 2^53 and sl_manifest_json_go prints
				 * what kubectl printed. */
				char *g = cJSON_IsNumber(got) ? sl_manifest_json_go(got) : NULL;
				if (!g || strcmp(g, want) != 0)
					fail_msg("case [%s]: want %s, got %s", line, want,
					         g ? g : "not a number");
				free(g);
			} else if (!cJSON_Compare(exp, got, true)) {
				fail_msg("case [%s]: want %s, got %s", line, want,
				         cJSON_PrintUnformatted(got));
			}
			cJSON_Delete(exp);
		}
		docs_free(&d);
		n++;
	}
	fclose(f);
	assert_true(n >= 100);
}

static void keys_resolve_like_values(void **state)
{
	struct docs d;
	struct sl_error e;
	char *s;

	assert_int_equal(
	    parse("yes: a\n0x1F: b\n1e3: c\n\"on\": d\n2001-12-14: e\n1e6: f\n1.5: g\n", NULL, &d, &e), 0);
	s = cJSON_PrintUnformatted(d.v[0]);
	assert_string_equal(s, "{\"true\":\"a\",\"31\":\"b\",\"1000\":\"c\",\"on\":\"d\",\"2001-12-14\":"
	                       "\"e\",\"1e+06\":\"f\",\"1.5\":\"g\"}");
	free(s);
	docs_free(&d);
	/* float keys as kubectl writes them (checked with kubectl) */
	assert_int_equal(parse("0.0001: a\n0.00001: b\n123456789.0: c\n", NULL, &d, &e), 0);
	s = cJSON_PrintUnformatted(d.v[0]);
	assert_string_equal(s, "{\"0.0001\":\"a\",\"1e-05\":\"b\",\"1.2345679e+08\":\"c\"}");
	free(s);
	docs_free(&d);
	assert_int_equal(parse("~: x\n", NULL, &d, &e), SL_EINVALID);
	assert_non_null(strstr(e.msg, "must not be null"));
}

/* ---- aliases ------------------------------------------------------------ */

static void aliases_expand(void **state)
{
	struct docs d;
	struct sl_error e;
	char *s;

	assert_int_equal(parse("a: &x {p: [1, 2]}\nb: *x\nc: &y hello\nd: *y\n", NULL, &d, &e), 0);
	s = cJSON_PrintUnformatted(d.v[0]);
	assert_string_equal(s, "{\"a\":{\"p\":[1,2]},\"b\":{\"p\":[1,2]},\"c\":\"hello\",\"d\":\"hello\"}");
	free(s);
	docs_free(&d);
}

static void alias_bomb_refused(void **state)
{
	/* a billion laughs: 10^9 nodes if expanded */
	static const char bomb[] = "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
	                           "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	                           "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	                           "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	                           "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
	                           "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	                           "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	                           "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
	                           "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	struct sl_manifest_limits lim = SL_MANIFEST_LIMITS_INIT;
	struct docs d;
	struct sl_error e;

	assert_int_equal(parse(bomb, NULL, &d, &e), SL_ETOOLARGE);
	assert_non_null(strstr(e.msg, "aliases expand to more than 10000 nodes"));
	/* a small bound refuses even a modest expansion */
	lim.max_alias_nodes = 5;
	assert_int_equal(parse("a: &a [1, 2, 3]\nb: [*a, *a]\n", &lim, &d, &e), SL_ETOOLARGE);
	lim.max_alias_nodes = 8;
	assert_int_equal(parse("a: &a [1, 2, 3]\nb: [*a, *a]\n", &lim, &d, &e), 0);
	docs_free(&d);
}

static void alias_cycle_and_unknown(void **state)
{
	struct docs d;
	struct sl_error e;

	assert_int_equal(parse("a: &a [1, *a]\n", NULL, &d, &e), SL_EINVALID);
	assert_non_null(strstr(e.msg, "contains it"));
	assert_int_equal(parse("a: *nope\n", NULL, &d, &e), SL_EINVALID);
	assert_non_null(strstr(e.msg, "1:4: unknown alias *nope"));
	/* anchors are per document */
	assert_int_equal(parse("a: &x 1\n---\nb: *x\n", NULL, &d, &e), SL_EINVALID);
	docs_free(&d);
}

static void merge_keys_like_kubectl(void **state)
{
	struct docs d;
	struct sl_error e;
	char *s;

	/* later entries win; within a merge list the first mapping wins
	 * (checked against kubectl: {p: 1, q: 0, r: 2, s: 9}) */
	assert_int_equal(parse("a: &a {p: 1, q: 1}\nb: &b {p: 2, r: 2}\n"
	                       "m:\n  <<: [*a, *b]\n  q: 0\n  s: 0\n  <<: {s: 9}\n",
	                       NULL, &d, &e),
	                 0);
	{
		cJSON *want = cJSON_Parse("{\"p\":1,\"q\":0,\"r\":2,\"s\":9}");
		assert_true(cJSON_Compare(want, cJSON_GetObjectItem(d.v[0], "m"), true));
		cJSON_Delete(want);
	}
	(void)s;
	docs_free(&d);
	assert_int_equal(parse("m: {<<: 5}\n", NULL, &d, &e), SL_EINVALID);
	assert_non_null(strstr(e.msg, "merge key"));
}

static void duplicate_key_is_error(void **state)
{
	struct docs d;
	struct sl_error e;

	assert_int_equal(parse("a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n", NULL, &d, &e), SL_EINVALID);
	assert_string_equal(e.msg, "5:3: b.x: duplicate key \"x\" (first at line 3)");
	/* keys equal after resolution are duplicates too */
	assert_int_equal(parse("yes: 1\ntrue: 2\n", NULL, &d, &e), SL_EINVALID);
	/* a quoted "yes" and a plain yes are different keys */
	assert_int_equal(parse("yes: 1\n\"yes\": 2\n", NULL, &d, &e), 0);
	docs_free(&d);
}

/* ---- documents, positions, limits --------------------------------------- */

static void documents_and_positions(void **state)
{
	static const char y[] = "---\n"
	                        "---\n"
	                        "# comment only\n"
	                        "---\n"
	                        "apiVersion: v1\n"
	                        "kind: ConfigMap\n"
	                        "metadata:\n"
	                        "  name: x\n"
	                        "  annotations: {sluice.dev/path: a}\n"
	                        "data:\n"
	                        "  list:\n"
	                        "    - one\n"
	                        "    - {k: v}\n"
	                        "...\n"
	                        "---\n"
	                        "apiVersion: v1\n"
	                        "kind: Secret\n"
	                        "metadata: {name: s}\n";
	struct sl_manifest_set *s = load("f.yaml", y);
	const struct sl_manifest_doc *d0, *d1;
	unsigned l = 0, c = 0;

	assert_int_equal(sl_manifest_set_doc_count(s), 2);
	d0 = sl_manifest_set_doc(s, 0);
	d1 = sl_manifest_set_doc(s, 1);
	/* indexes count empty documents, as the sluice.dev/path annotation does */
	assert_int_equal(d0->index, 2);
	assert_int_equal(d1->index, 3);
	assert_int_equal(d0->line, 5);
	assert_string_equal(d0->file, "f.yaml");
	assert_string_equal(d0->kind, "ConfigMap");
	assert_string_equal(d0->name, "x");
	assert_null(d0->namespace);
	assert_int_equal(sl_manifest_doc_position(d0, "metadata.name", &l, &c), 0);
	assert_int_equal(l, 8);
	assert_int_equal(c, 3);
	assert_int_equal(sl_manifest_doc_position(d0, "data.list[1].k", &l, &c), 0);
	assert_int_equal(l, 13);
	assert_int_equal(c, 8);
	assert_int_equal(sl_manifest_doc_position(d0, "data.list[0]", &l, &c), 0);
	assert_int_equal(l, 12);
	assert_int_equal(c, 7);
	assert_int_equal(sl_manifest_doc_position(d0, "metadata.annotations[sluice.dev/path]", &l, &c), 0);
	assert_int_equal(l, 9);
	assert_int_equal(c, 17);
	assert_int_equal(sl_manifest_doc_position(d0, "", &l, &c), 0);
	assert_int_equal(l, 5);
	assert_int_equal(sl_manifest_doc_position(d0, "spec.nothing", &l, &c), SL_ENOTFOUND);
	assert_int_equal(sl_manifest_doc_position(d1, "metadata.name", &l, &c), 0);
	assert_int_equal(l, 18);
	assert_int_equal(sl_manifest_set_file_count(s), 1);
	assert_int_equal(sl_manifest_set_file(s, 0)->n_docs, 2);
	sl_manifest_set_free(s);
}

static void limits_enforced(void **state)
{
	struct sl_manifest_limits lim = SL_MANIFEST_LIMITS_INIT;
	struct sl_manifest_set *s;
	struct docs d;
	struct sl_error e;
	char deep[300];

	lim.max_depth = 4;
	assert_int_equal(parse("a: [[[1]]]\n", &lim, &d, &e), 0);
	docs_free(&d);
	assert_int_equal(parse("a: [[[[1]]]]\n", &lim, &d, &e), SL_ETOOLARGE);
	assert_non_null(strstr(e.msg, "nested deeper than 4"));
	lim = (struct sl_manifest_limits)SL_MANIFEST_LIMITS_INIT;
	lim.max_docs_per_file = 2;
	assert_int_equal(parse("a: 1\n---\nb: 2\n---\nc: 3\n", &lim, &d, &e), SL_ETOOLARGE);
	docs_free(&d);
	lim = (struct sl_manifest_limits)SL_MANIFEST_LIMITS_INIT;
	lim.max_file_size = 10;
	assert_int_equal(parse("a: 12345678901\n", &lim, &d, &e), SL_ETOOLARGE);
	/* in a set the file is reported, not fatal */
	s = sl_manifest_set_new(&lim);
	assert_int_equal(sl_manifest_set_add_buffer(s, "big.yaml", "a: 12345678901\n", 15, NULL), 0);
	assert_int_equal(sl_manifest_set_error_count(s), 1);
	assert_true(has_problem(s, "big.yaml: 15 bytes, over the limit of 10"));
	sl_manifest_set_free(s);
	/* nesting deeper than the default limit: refused, and no crash */
	memset(deep, '[', 150);
	memset(deep + 150, ']', 150);
	assert_int_equal(sl_manifest_parse(deep, sizeof(deep), NULL, collect, &d, &e), SL_ETOOLARGE);
}

static void syntax_error_keeps_earlier_documents(void **state)
{
	struct sl_manifest_set *s =
	    load("f.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkey: [unclosed\n");
	assert_int_equal(sl_manifest_set_doc_count(s), 1);
	assert_int_equal(sl_manifest_set_error_count(s), 1);
	assert_true(has_problem(s, "f.yaml:6:1: YAML syntax"));
	sl_manifest_set_free(s);
}

/* ---- trees -------------------------------------------------------------- */

static void write_file(const char *dir, const char *rel, const char *content)
{
	char p[4096];
	FILE *f;
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void sub(const char *dir, const char *rel)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void rm_rf(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

#define CM(n) "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " n "}\n"

static void tree_order_hidden_and_symlinks(void **state)
{
	char root[] = "/tmp/sluice-manifest-XXXXXX", outside[] = "/tmp/sluice-outside-XXXXXX", p[4200];
	struct sl_manifest_set *s;
	struct sl_error e = {0};
	const char *want[] = {"B.yaml",    "a.yaml",           "a/b.yml", "a/c.yaml",
	                      "link.yaml", "z/linkdir/x.yaml", "z/x.yaml"};
	char d1[65], d2[65];

	assert_non_null(mkdtemp(root));
	assert_non_null(mkdtemp(outside));
	write_file(outside, "secret.yaml", CM("outside"));
	sub(root, "a");
	sub(root, "z");
	sub(root, ".git");
	write_file(root, "z/x.yaml", CM("zx"));
	write_file(root, "a.yaml", CM("a"));
	write_file(root, "a/c.yaml", CM("ac"));
	write_file(root, "a/b.yml", CM("ab"));
	write_file(root, "B.yaml", CM("b"));
	write_file(root, "notes.txt", "not: [yaml\n");
	write_file(root, ".hidden.yaml", "not: [yaml\n");
	write_file(root, ".git/config.yaml", "not: [yaml\n");
	write_file(root, "values.yaml", "replicas: 3\n");
	snprintf(p, sizeof(p), "%s/link.yaml", root);
	assert_int_equal(symlink("a/c.yaml", p), 0); /* stays beneath: followed */
	snprintf(p, sizeof(p), "%s/z/linkdir", root);
	assert_int_equal(symlink("..", p), 0); /* a loop back to the root */
	snprintf(p, sizeof(p), "%s/escape.yaml", root);
	assert_int_equal(symlink("../../../../../../../../../../tmp/"
	                         "x.yaml",
	                         p),
	                 0);
	{
		char target[4200];
		snprintf(target, sizeof(target), "%s/secret.yaml", outside);
		snprintf(p, sizeof(p), "%s/escape2.yaml", root);
		assert_int_equal(symlink(target, p), 0); /* absolute, leaves the root */
		snprintf(p, sizeof(p), "%s/outdir", root);
		assert_int_equal(symlink(outside, p), 0);
	}
	s = sl_manifest_set_new(NULL);
	assert_int_equal(sl_manifest_set_add_dir(s, root, NULL, &e), 0);
	assert_int_equal(sl_manifest_set_validate(s), 0);
	/* the loop directory z/linkdir is the root again: refused as a loop;
	 * z/linkdir/x.yaml is not there because linkdir is the root itself */
	(void)want;
	{
		size_t n = sl_manifest_set_file_count(s);
		const char *prev = "";
		for (size_t i = 0; i < n; i++) {
			const char *f = sl_manifest_set_file(s, i)->path;
			assert_true(strcmp(prev, f) < 0); /* byte-wise sorted */
			assert_null(strstr(f, ".git"));
			assert_null(strstr(f, ".hidden"));
			assert_null(strstr(f, "notes"));
			prev = f;
		}
		assert_int_equal(n, 7); /* B a a/b a/c link values z/x */
		assert_string_equal(sl_manifest_set_file(s, 0)->path, "B.yaml");
		assert_string_equal(sl_manifest_set_file(s, 1)->path, "a.yaml");
		assert_string_equal(sl_manifest_set_file(s, 2)->path, "a/b.yml");
		assert_string_equal(sl_manifest_set_file(s, 4)->path, "link.yaml");
		assert_string_equal(sl_manifest_set_file(s, 6)->path, "z/x.yaml");
	}
	assert_true(has_problem(s, "escape2.yaml: symlink leads outside the root, not followed"));
	assert_true(has_problem(s, "outdir: symlink leads outside the root, not followed"));
	assert_true(has_problem(s, "z/linkdir: directory symlink loop, not followed"));
	assert_true(has_problem(s, "values.yaml:1:1: warning: document has no apiVersion and kind: skipped"));
	assert_false(has_problem(s, "outside\""));
	assert_null(sl_manifest_set_find(s, "", "ConfigMap", NULL, "outside"));
	assert_non_null(sl_manifest_set_find(s, "", "ConfigMap", NULL, "ac"));
	/* escape.yaml is a broken link that would leave the root */
	assert_true(has_problem(s, "escape.yaml:"));
	sl_manifest_set_digest(s, d1);
	sl_manifest_set_free(s);

	/* the digest follows content and stays put otherwise */
	s = sl_manifest_set_new(NULL);
	assert_int_equal(sl_manifest_set_add_dir(s, root, "repo", &e), 0);
	assert_string_equal(sl_manifest_set_file(s, 0)->path, "repo/B.yaml");
	sl_manifest_set_free(s);
	s = sl_manifest_set_new(NULL);
	assert_int_equal(sl_manifest_set_add_dir(s, root, NULL, &e), 0);
	sl_manifest_set_digest(s, d2);
	assert_string_equal(d1, d2);
	sl_manifest_set_free(s);
	write_file(root, "a.yaml", CM("a2"));
	s = sl_manifest_set_new(NULL);
	assert_int_equal(sl_manifest_set_add_dir(s, root, NULL, &e), 0);
	sl_manifest_set_digest(s, d2);
	assert_string_not_equal(d1, d2);
	sl_manifest_set_free(s);

	/* set-wide limits fail the call */
	{
		struct sl_manifest_limits lim = SL_MANIFEST_LIMITS_INIT;
		lim.max_files = 3;
		s = sl_manifest_set_new(&lim);
		assert_int_equal(sl_manifest_set_add_dir(s, root, NULL, &e), SL_ETOOLARGE);
		assert_non_null(strstr(e.msg, "more than 3 YAML files"));
		sl_manifest_set_free(s);
		lim = (struct sl_manifest_limits)SL_MANIFEST_LIMITS_INIT;
		lim.max_total_size = 100;
		s = sl_manifest_set_new(&lim);
		assert_int_equal(sl_manifest_set_add_dir(s, root, NULL, &e), SL_ETOOLARGE);
		assert_non_null(strstr(e.msg, "more than 100 bytes of manifests in total"));
		sl_manifest_set_free(s);
	}

	/* a missing root fails the call */
	s = sl_manifest_set_new(NULL);
	assert_int_equal(sl_manifest_set_add_dir(s, "/nonexistent/sluice", NULL, &e), SL_ENOTFOUND);
	sl_manifest_set_free(s);
	rm_rf(root);
	rm_rf(outside);
}

/* ---- the parse cache ---------------------------------------------------- */

/* Every problem of s, formatted, one per line. */
static void problems_text(const struct sl_manifest_set *s, char *out, size_t n)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sl_manifest_set_problem_count(s) && off < n; i++) {
		off += (size_t)sl_manifest_problem_format(sl_manifest_set_problem(s, i), out + off, n - off);
		if (off < n - 1)
			out[off++] = '\n', out[off] = '\0';
	}
}

static struct sl_manifest_set *load_cached(struct sl_manifest_cache *c, const char *root)
{
	struct sl_manifest_set *s = sl_manifest_set_new(NULL);
	struct sl_error e = {0};

	assert_non_null(s);
	assert_int_equal(sl_manifest_set_add_dir_cached(s, c, root, NULL, &e), 0);
	assert_int_equal(sl_manifest_set_validate(s), 0);
	sl_manifest_cache_sweep(c);
	return s;
}

/* A tree loaded through the cache twice: the second load parses only the
 * file that changed, gives what a load without the cache gives (documents,
 * problems, digest), and the first set stays intact after the cache let go
 * of what it shared. */
static void cache_parses_changed_files_only(void **state)
{
	char root[] = "/tmp/sluice-manifest-cache-XXXXXX";
	char want[8192], got[8192], d1[65], d2[65];
	struct sl_manifest_cache *c = sl_manifest_cache_new(NULL);
	struct sl_manifest_cache_stats st;
	struct sl_manifest_set *a, *b, *plain;
	struct sl_error e = {0};
	const struct sl_manifest_doc *d;
	const unsigned n = 50;

	assert_non_null(c);
	assert_non_null(mkdtemp(root));
	sub(root, "sub");
	for (unsigned i = 0; i < n; i++) {
		char rel[64], body[256];
		snprintf(rel, sizeof(rel), "%scm-%02u.yaml", i % 2 ? "sub/" : "", i);
		snprintf(body, sizeof(body),
		         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%u}\ndata: {v: '%u'}\n", i, i);
		write_file(root, rel, body);
	}
	/* problems come back from the cache as parsing found them */
	write_file(root, "broken.yaml", CM("x") "  bad: [\n");
	write_file(root, "values.yaml", "replicas: 3\n---\n" CM("after-values"));

	a = load_cached(c, root);
	sl_manifest_cache_stats(c, &st);
	assert_int_equal(st.parsed, n + 2);
	assert_int_equal(st.reused, 0);
	assert_int_equal(st.files, n + 2);

	/* one file changed, one removed */
	write_file(root, "sub/cm-07.yaml",
	           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-7}\ndata: {v: new}\n");
	{
		char p[4200];
		snprintf(p, sizeof(p), "%s/cm-10.yaml", root);
		assert_int_equal(unlink(p), 0);
	}
	b = load_cached(c, root);
	sl_manifest_cache_stats(c, &st);
	assert_int_equal(st.parsed, n + 2 + 1);
	assert_int_equal(st.reused, n + 2 - 2);
	assert_int_equal(st.files, n + 2 - 1); /* the removed file is swept */

	plain = sl_manifest_set_new(NULL);
	assert_int_equal(sl_manifest_set_add_dir(plain, root, NULL, &e), 0);
	assert_int_equal(sl_manifest_set_validate(plain), 0);
	assert_int_equal(sl_manifest_set_doc_count(b), sl_manifest_set_doc_count(plain));
	for (size_t i = 0; i < sl_manifest_set_doc_count(b); i++) {
		const struct sl_manifest_doc *x = sl_manifest_set_doc(b, i),
		                             *y = sl_manifest_set_doc(plain, i);
		assert_string_equal(x->file, y->file);
		assert_int_equal(x->index, y->index);
		assert_int_equal(x->line, y->line);
		assert_true(cJSON_Compare(x->obj, y->obj, true));
	}
	problems_text(plain, want, sizeof(want));
	problems_text(b, got, sizeof(got));
	assert_string_equal(got, want);
	assert_non_null(strstr(got, "broken.yaml:"));
	assert_non_null(strstr(got, "values.yaml:1:1: warning: document has no apiVersion and kind"));
	sl_manifest_set_digest(b, d1);
	sl_manifest_set_digest(plain, d2);
	assert_string_equal(d1, d2);
	d = sl_manifest_set_find(b, "", "ConfigMap", NULL, "cm-7");
	assert_non_null(d);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(d->obj, "data"), "v")->valuestring,
	                    "new");
	assert_null(sl_manifest_set_find(b, "", "ConfigMap", NULL, "cm-10"));

	/* the first set keeps its documents when the cache and the second set
	 * are gone (they are shared, reference counted) */
	sl_manifest_cache_free(c);
	sl_manifest_set_free(b);
	d = sl_manifest_set_find(a, "", "ConfigMap", NULL, "cm-7");
	assert_non_null(d);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(d->obj, "data"), "v")->valuestring, "7");
	assert_non_null(sl_manifest_set_find(a, "", "ConfigMap", NULL, "cm-10"));
	{
		unsigned line = 0, col = 0;
		assert_int_equal(sl_manifest_doc_position(d, "data.v", &line, &col), 0);
		assert_int_equal(line, 4);
	}
	sl_manifest_set_free(a);
	sl_manifest_set_free(plain);
	rm_rf(root);
}

/* Files put by bytes and added by digest: a digest the cache does not hold
 * under that name is SL_ENOTFOUND and adds nothing; the same bytes under
 * another name are parsed for that name. */
static void cache_put_and_add(void **state)
{
	struct sl_manifest_cache *c = sl_manifest_cache_new(NULL);
	struct sl_manifest_cache_stats st;
	struct sl_manifest_set *s = sl_manifest_set_new(NULL);
	struct sl_error e = {0};
	uint8_t sha[SL_SHA256_LEN], other[SL_SHA256_LEN];
	const char *y = CM("p");

	assert_int_equal(sl_manifest_cache_put(c, "a.yaml", y, strlen(y), sha), 0);
	assert_int_equal(sl_manifest_cache_put(c, "a.yaml", y, strlen(y), other), 0);
	assert_memory_equal(sha, other, SL_SHA256_LEN);
	assert_int_equal(sl_manifest_cache_put(c, "b.yaml", y, strlen(y), NULL), 0);
	sl_manifest_cache_stats(c, &st);
	assert_int_equal(st.parsed, 2);
	assert_int_equal(st.reused, 1);

	assert_int_equal(sl_manifest_set_add_cached(s, c, "a.yaml", sha, &e), 0);
	other[0] ^= 1;
	assert_int_equal(sl_manifest_set_add_cached(s, c, "a.yaml", other, &e), SL_ENOTFOUND);
	assert_int_equal(sl_manifest_set_add_cached(s, c, "c.yaml", sha, &e), SL_ENOTFOUND);
	assert_int_equal(sl_manifest_set_file_count(s), 1);
	assert_int_equal(sl_manifest_set_doc_count(s), 1);
	assert_string_equal(sl_manifest_set_doc(s, 0)->file, "a.yaml");
	assert_memory_equal(sl_manifest_set_file(s, 0)->sha256, sha, SL_SHA256_LEN);

	/* a sweep keeps what was used since the last one: a.yaml, b.yaml; the
	 * next sweep, with nothing used, drops both */
	sl_manifest_cache_sweep(c);
	sl_manifest_cache_stats(c, &st);
	assert_int_equal(st.files, 2);
	sl_manifest_cache_sweep(c);
	sl_manifest_cache_stats(c, &st);
	assert_int_equal(st.files, 0);
	assert_int_equal(sl_manifest_set_add_cached(s, c, "a.yaml", sha, &e), SL_ENOTFOUND);
	assert_string_equal(sl_manifest_set_doc(s, 0)->name, "p");
	sl_manifest_set_free(s);
	sl_manifest_cache_free(c);
}

/* Taking an object out of a set never takes it from a parse cache or from
 * another set that shares its file: those get it copied and keep theirs;
 * a set that alone holds the file moves the object itself. */
static void take_obj_copies_shared_documents(void **state)
{
	struct sl_manifest_cache *c = sl_manifest_cache_new(NULL);
	struct sl_manifest_set *a = sl_manifest_set_new(NULL), *b = sl_manifest_set_new(NULL);
	struct sl_manifest_set *own = sl_manifest_set_new(NULL);
	struct sl_error e = {0};
	uint8_t sha[SL_SHA256_LEN];
	const char *y = CM("p") "---\n" CM("q");
	const cJSON *held;
	cJSON *o, *o2, *o3;
	char *text;

	assert_int_equal(sl_manifest_cache_put(c, "a.yaml", y, strlen(y), sha), 0);
	assert_int_equal(sl_manifest_set_add_cached(a, c, "a.yaml", sha, &e), 0);
	assert_int_equal(sl_manifest_set_add_cached(b, c, "a.yaml", sha, &e), 0);
	assert_ptr_equal(sl_manifest_set_doc(a, 0)->obj, sl_manifest_set_doc(b, 0)->obj);

	/* shared with the cache and b: a copy */
	o = sl_manifest_set_take_obj(a, 0);
	assert_non_null(o);
	assert_ptr_not_equal(o, sl_manifest_set_doc(b, 0)->obj);
	assert_null(sl_manifest_set_doc(a, 0)->obj);
	assert_null(sl_manifest_set_take_obj(a, 0));
	assert_string_equal(sl_manifest_set_doc(b, 0)->name, "p");
	assert_non_null(sl_manifest_set_find(b, "", "ConfigMap", NULL, "p"));
	text = cJSON_PrintUnformatted(o);
	assert_string_equal(text,
	                    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"p\"}}");
	free(text);

	/* b and the cache gone, a alone holds the file: the object moves */
	sl_manifest_set_free(b);
	sl_manifest_cache_free(c);
	held = sl_manifest_set_doc(a, 1)->obj;
	o2 = sl_manifest_set_take_obj(a, 1);
	assert_ptr_equal(o2, held);
	assert_null(sl_manifest_set_doc(a, 1)->positions);
	sl_manifest_set_free(a);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o2, "metadata"), "name")->valuestring,
	                    "q");

	/* a set loaded without a cache moves its objects */
	assert_int_equal(sl_manifest_set_add_buffer(own, "b.yaml", y, strlen(y), &e), 0);
	held = sl_manifest_set_doc(own, 0)->obj;
	o3 = sl_manifest_set_take_obj(own, 0);
	assert_ptr_equal(o3, held);
	sl_manifest_set_free(own);
	cJSON_Delete(o);
	cJSON_Delete(o2);
	cJSON_Delete(o3);
}

/* ---- validation --------------------------------------------------------- */

static void good_tree_is_valid(void **state)
{
	char root[4096];
	struct sl_manifest_set *s = NULL;
	struct sl_error e = {0};
	const struct sl_manifest_doc *orders, *cls = NULL, *bfr;

	snprintf(root, sizeof(root), "%s/tests/data/manifest/good", src_root());
	assert_int_equal(sl_manifest_load_dir(root, NULL, &s, &e), 0);
	if (sl_manifest_set_error_count(s))
		dump_problems(s);
	assert_int_equal(sl_manifest_set_error_count(s), 0);
	assert_int_equal(sl_manifest_set_doc_count(s), 9);
	orders = sl_manifest_set_find(s, SL_ARCANE_GROUP, "MockStream", "demo", "orders");
	assert_non_null(orders);
	assert_string_equal(orders->file, "streams/team-a/orders.yaml");
	assert_true(sl_manifest_set_is_stream(s, orders, &cls));
	assert_string_equal(cls->name, "mock");
	bfr = sl_manifest_set_find(s, NULL, "BackfillRequest", NULL, "orders-2024");
	assert_non_null(bfr);
	assert_false(sl_manifest_set_is_stream(s, bfr, NULL));
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(bfr->obj, "spec"), "completed")));
	/* merge keys in the ConfigMap: explicit REGION after the merge wins */
	{
		const struct sl_manifest_doc *cm =
		    sl_manifest_set_find(s, "", "ConfigMap", "demo", "settings");
		cJSON *data = cJSON_GetObjectItem(cm->obj, "data");
		assert_string_equal(cJSON_GetObjectItem(data, "REGION")->valuestring, "us");
		assert_string_equal(cJSON_GetObjectItem(data, "LOG_LEVEL")->valuestring, "info");
	}
	sl_manifest_set_free(s);
}

/* The tree shaped like a real Arcane user's (tests/data/arcane), checked
 * against the arcane-crd and plugin CRDs of the fixtures: streams of every
 * layout are valid, and the namespace of the Synapse StreamClass is only a
 * warning. */
static void arcane_tree_is_valid(void **state)
{
	static const char *const crds[] = {"arcane-crds.yaml", "plugin-sqlserver-crd.yaml",
	                                   "plugin-synapse-crd.yaml"};
	static const char *const streams[][2] = {
	    {"SynapseStream", "accounts"},
	    {"SqlServerStream", "orders"},
	    {"SqlServerStream", "ledger"},
	    {"SqlServerStream", "customers"},
	};
	char dir[4096], path[4200];
	struct sl_manifest_set *s = sl_manifest_set_new(NULL);
	struct sl_error e = {0};
	const struct sl_manifest_doc *cls = NULL, *d;

	assert_non_null(s);
	snprintf(dir, sizeof(dir), "%s/tests/data/arcane", src_root());
	for (size_t i = 0; i < SL_ARRAY_SIZE(crds); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, crds[i]);
		assert_int_equal(sl_manifest_set_add_file(s, path, crds[i], &e), 0);
	}
	snprintf(path, sizeof(path), "%s/tree", dir);
	assert_int_equal(sl_manifest_set_add_dir(s, path, "tree", &e), 0);
	assert_int_equal(sl_manifest_set_validate(s), 0);
	if (sl_manifest_set_error_count(s))
		dump_problems(s);
	assert_int_equal(sl_manifest_set_error_count(s), 0);
	assert_int_equal(sl_manifest_set_problem_count(s), 1);
	assert_true(has_problem(s, "tree/classes/synapse.yaml:9:3: metadata.namespace: warning: "
	                           "StreamClass is cluster-scoped"));
	for (size_t i = 0; i < SL_ARRAY_SIZE(streams); i++) {
		d = sl_manifest_set_find(s, SL_ARCANE_GROUP, streams[i][0], "arcane", streams[i][1]);
		assert_non_null(d);
		assert_true(sl_manifest_set_is_stream(s, d, &cls));
	}
	assert_string_equal(cls->name, "arcane-stream-sqlserver");
	/* the class that carried a namespace is found without one */
	d = sl_manifest_set_find(s, SL_ARCANE_GROUP, "StreamClass", NULL,
	                         "arcane-stream-synapse-link-synapse");
	assert_non_null(d);
	assert_null(d->namespace);
	sl_manifest_set_free(s);

	/* with the CRDs of the set, a Job spec shaped template is what
	 * arcane-crd refuses: spec holds a whole Job */
	s = sl_manifest_set_new(NULL);
	snprintf(path, sizeof(path), "%s/arcane-crds.yaml", dir);
	assert_int_equal(sl_manifest_set_add_file(s, path, "arcane-crds.yaml", &e), 0);
	{
		static const char tpl[] = "apiVersion: streaming.sneaksanddata.com/v1\n"
		                          "kind: StreamingJobTemplate\n"
		                          "metadata: {name: t, namespace: arcane}\n"
		                          "spec:\n"
		                          "  template: {spec: {containers: []}}\n";
		assert_int_equal(sl_manifest_set_add_buffer(s, "t.yaml", tpl, strlen(tpl), &e), 0);
	}
	assert_int_equal(sl_manifest_set_validate(s), 0);
	assert_true(has_problem(s, "t.yaml:5:3: spec.template: unknown field"));
	sl_manifest_set_free(s);
}

/* Every NN-name.yaml of tests/data/manifest/<sub> yields the line of its
 * .expect file; "!text" lines there must appear in no problem (secret
 * values). bad/ cases have errors; warn/ cases have none. */
static int expect_dir(const char *sub, bool errors)
{
	char dir[4096];
	struct dirent **ents;
	int n, checked = 0;

	snprintf(dir, sizeof(dir), "%s/tests/data/manifest/%s", src_root(), sub);
	n = scandir(dir, &ents, NULL, alphasort);
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		char yaml[4200], expect[4200], line[1024];
		struct sl_manifest_set *s;
		FILE *f;
		bool first = true;

		if (!sl_str_has_suffix(ents[i]->d_name, ".yaml")) {
			free(ents[i]);
			continue;
		}
		assert_true(sl_snprintf_ok(yaml, sizeof(yaml), "%s/%s", dir, ents[i]->d_name));
		assert_true(sl_snprintf_ok(expect, sizeof(expect), "%s/%.*s.expect", dir,
		                           (int)strlen(ents[i]->d_name) - 5, ents[i]->d_name));
		s = sl_manifest_set_new(NULL);
		sl_manifest_set_add_file(s, yaml, ents[i]->d_name, NULL);
		assert_int_equal(sl_manifest_set_validate(s), 0);
		f = fopen(expect, "r");
		if (!f)
			fail_msg("%s: no .expect file", ents[i]->d_name);
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (first) {
				if (!has_problem(s, line)) {
					dump_problems(s);
					fail_msg("%s: expected \"%s\"", ents[i]->d_name, line);
				}
				first = false;
			} else if (line[0] == '!' && has_problem(s, line + 1)) {
				fail_msg("%s: \"%s\" must not be shown", ents[i]->d_name, line + 1);
			}
		}
		fclose(f);
		if (errors != (sl_manifest_set_error_count(s) > 0)) {
			dump_problems(s);
			fail_msg("%s: expected %s", ents[i]->d_name, errors ? "errors" : "no error");
		}
		sl_manifest_set_free(s);
		free(ents[i]);
		checked++;
	}
	free(ents);
	return checked;
}

static void bad_manifests(void **state)
{
	assert_true(expect_dir("bad", true) >= 40);
}

/* Warnings only: the set stays valid. */
static void warn_manifests(void **state)
{
	assert_true(expect_dir("warn", false) >= 1);
}

static void all_errors_reported(void **state)
{
	struct sl_manifest_set *s = load("m.yaml", "apiVersion: streaming.sneaksanddata.com/v1\n"
	                                           "kind: BackfillRequest\n"
	                                           "metadata:\n"
	                                           "  name: Bad_Name\n"
	                                           "  labels: {a: 1}\n"
	                                           "spec:\n"
	                                           "  streamClass: 5\n"
	                                           "  completed: maybe\n"
	                                           "  extra: 1\n");
	const struct sl_manifest_doc *d = sl_manifest_set_doc(s, 0);
	assert_true(has_problem(s, "m.yaml:4:3: metadata.name: invalid name"));
	assert_true(has_problem(s, "m.yaml:5:12: metadata.labels.a: expected a string"));
	assert_true(has_problem(s, "m.yaml:7:3: spec.streamClass: expected string, got integer"));
	assert_true(has_problem(s, "m.yaml:8:3: spec.completed: expected boolean, got string"));
	assert_true(has_problem(s, "m.yaml:9:3: spec.extra: unknown field"));
	assert_true(has_problem(s, "m.yaml:6:1: spec.streamId: required field is missing"));
	assert_int_equal(d->n_errors, 6);
	assert_int_equal(sl_manifest_set_error_count(s), 6);
	sl_manifest_set_free(s);
}

/* Each repeat of an object names the first definition, however many there
 * are; the same name in another namespace is not a repeat. */
static void duplicate_objects_name_the_first(void **state)
{
	struct sl_manifest_set *s = load("m.yaml", "apiVersion: v1\n"
	                                           "kind: ConfigMap\n"
	                                           "metadata: {name: x, namespace: a}\n"
	                                           "---\n"
	                                           "apiVersion: v1\n"
	                                           "kind: ConfigMap\n"
	                                           "metadata: {name: x, namespace: b}\n"
	                                           "---\n"
	                                           "apiVersion: v1\n"
	                                           "kind: ConfigMap\n"
	                                           "metadata: {name: x, namespace: a}\n"
	                                           "---\n"
	                                           "apiVersion: v1\n"
	                                           "kind: ConfigMap\n"
	                                           "metadata: {name: x, namespace: a}\n");
	(void)state;
	assert_int_equal(sl_manifest_set_error_count(s), 2);
	assert_int_equal(sl_manifest_set_doc(s, 0)->n_errors, 0);
	assert_int_equal(sl_manifest_set_doc(s, 1)->n_errors, 0);
	assert_int_equal(sl_manifest_set_doc(s, 2)->n_errors, 1);
	assert_int_equal(sl_manifest_set_doc(s, 3)->n_errors, 1);
	assert_true(has_problem(s, "m.yaml:11:"));
	assert_true(has_problem(s, "m.yaml:15:"));
	for (size_t i = 0; i < sl_manifest_set_problem_count(s); i++) {
		char line[2048];
		sl_manifest_problem_format(sl_manifest_set_problem(s, i), line, sizeof(line));
		assert_non_null(strstr(line, "ConfigMap \"x\" is defined twice: also at m.yaml:1:1"));
	}
	sl_manifest_set_free(s);
}

static void stream_secret_alternatives(void **state)
{
	static const char cls[] = "apiVersion: streaming.sneaksanddata.com/v1\nkind: StreamClass\n"
	                          "metadata: {name: k}\nspec: {apiGroupRef: example.com, apiVersion: v1, "
	                          "kindRef: K, pluralName: ks, secretRefs: [conn, token]}\n---\n";
	char buf[2048];
	struct sl_manifest_set *s;

	/* one field as an object, the other through secretRef */
	snprintf(buf, sizeof(buf),
	         "%sapiVersion: example.com/v1\nkind: K\nmetadata: {name: s}\n"
	         "spec: {jobTemplateRef: {name: t}, conn: {name: c}, secretRef: {name: all}}\n",
	         cls);
	s = load("s.yaml", buf);
	if (sl_manifest_set_error_count(s))
		dump_problems(s);
	assert_int_equal(sl_manifest_set_error_count(s), 0);
	sl_manifest_set_free(s);
	/* neither: both fields reported */
	snprintf(buf, sizeof(buf),
	         "%sapiVersion: example.com/v1\nkind: K\nmetadata: {name: s}\n"
	         "spec: {jobTemplateRef: {name: t}}\n",
	         cls);
	s = load("s.yaml", buf);
	assert_true(has_problem(s, "spec.conn: StreamClass \"k\" requires"));
	assert_true(has_problem(s, "spec.token: StreamClass \"k\" requires"));
	/* no template in the set: the reference is not checked */
	assert_false(has_problem(s, "not found"));
	sl_manifest_set_free(s);
}

static void problem_format(void **state)
{
	struct sl_manifest_problem p = {SL_MANIFEST_ERROR, SL_EINVALID,      "a/b.yaml", 0, 3, 7,
	                                "spec.x",          "expected string"};
	char out[256];
	assert_int_equal(sl_manifest_problem_format(&p, out, sizeof(out)), 37);
	assert_string_equal(out, "a/b.yaml:3:7: spec.x: expected string");
	p.line = 0;
	p.field = "";
	p.severity = SL_MANIFEST_WARNING;
	sl_manifest_problem_format(&p, out, sizeof(out));
	assert_string_equal(out, "a/b.yaml: warning: expected string");
	/* truncation keeps a terminated string and reports the full length */
	assert_int_equal(sl_manifest_problem_format(&p, out, 5), 34);
	assert_string_equal(out, "a/b.");
}

static void dns_names(void **state)
{
	assert_true(sl_manifest_dns1123_label("a-1"));
	assert_false(sl_manifest_dns1123_label("-a"));
	assert_false(sl_manifest_dns1123_label("a."));
	assert_false(sl_manifest_dns1123_label("A"));
	assert_true(sl_manifest_dns1123_subdomain("a.b-c.d"));
	assert_false(sl_manifest_dns1123_subdomain("a..b"));
	assert_false(sl_manifest_dns1123_subdomain(""));
}

/* ---- the command -------------------------------------------------------- */

static int run(const char *args, char *out, size_t n)
{
	char cmd[8192];
	FILE *f;
	size_t got;
	int st;

	snprintf(cmd, sizeof(cmd), "%s validate %s 2>&1", getenv("SLUICE_BIN"), args);
	f = popen(cmd, "r");
	assert_non_null(f);
	got = fread(out, 1, n - 1, f);
	out[got] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void validate_command(void **state)
{
	char args[8192], out[65536];

	if (!getenv("SLUICE_BIN"))
		skip();
	snprintf(args, sizeof(args), "%s/tests/data/manifest/good", src_root());
	assert_int_equal(run(args, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "9 documents in 7 files valid (1 skipped)\n"));
	snprintf(args, sizeof(args),
	         "%s/tests/data/manifest/bad/46-secret-bad-base64.yaml "
	         "%s/tests/data/manifest/bad/55-stringdata-secret-shown-never.yaml",
	         src_root(), src_root());
	assert_int_equal(run(args, out, sizeof(out)), 1);
	assert_non_null(
	    strstr(out, "46-secret-bad-base64.yaml:6:3: data.password: expected a base64 string"));
	assert_non_null(strstr(out, "3 errors in 2 documents of 2 files"));
	assert_null(strstr(out, "hunter2"));
	assert_null(strstr(out, "s3cr3t"));
	assert_int_equal(run("--help", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "usage: sluice validate"));
	assert_int_equal(run("", out, sizeof(out)), 2);
	assert_int_equal(run("/nonexistent/file.yaml", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "/nonexistent/file.yaml: No such file or directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(scalar_table),
	    cmocka_unit_test(keys_resolve_like_values),
	    cmocka_unit_test(aliases_expand),
	    cmocka_unit_test(alias_bomb_refused),
	    cmocka_unit_test(alias_cycle_and_unknown),
	    cmocka_unit_test(merge_keys_like_kubectl),
	    cmocka_unit_test(duplicate_key_is_error),
	    cmocka_unit_test(documents_and_positions),
	    cmocka_unit_test(limits_enforced),
	    cmocka_unit_test(syntax_error_keeps_earlier_documents),
	    cmocka_unit_test(tree_order_hidden_and_symlinks),
	    cmocka_unit_test(good_tree_is_valid),
	    cmocka_unit_test(arcane_tree_is_valid),
	    cmocka_unit_test(bad_manifests),
	    cmocka_unit_test(warn_manifests),
	    cmocka_unit_test(all_errors_reported),
	    cmocka_unit_test(duplicate_objects_name_the_first),
	    cmocka_unit_test(stream_secret_alternatives),
	    cmocka_unit_test(problem_format),
	    cmocka_unit_test(dns_names),
	    cmocka_unit_test(validate_command),
	    cmocka_unit_test(cache_parses_changed_files_only),
	    cmocka_unit_test(cache_put_and_add),
	    cmocka_unit_test(take_obj_copies_shared_documents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
