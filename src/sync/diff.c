/* Renders objects as YAML (the manifest module's writer, keys sorted) and
 * prints a unified diff of the fields sluice manages, for `sluice diff`.
 * Secret values are masked. Pure. */
#include "sluice/manifest.h"
#include "sluice/sync.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#define DIFF_CONTEXT 3
/* Beyond this many differing lines (after trimming the common head and tail)
 * the LCS table would be too big: print the middle as removed + added. */
#define DIFF_MAX_CELLS (4u * 1000 * 1000)

/* ---- masking ------------------------------------------------------------------ */

static int mask_map(cJSON *before, cJSON *after, const char *key)
{
	cJSON *maps[2] = {cJSON_GetObjectItemCaseSensitive(before, key),
	                  cJSON_GetObjectItemCaseSensitive(after, key)};
	cJSON *orig[2] = {NULL, NULL};
	int r = SL_ENOMEM;

	/* compare against untouched copies: the other side may be masked first */
	for (int side = 0; side < 2; side++)
		if (cJSON_IsObject(maps[side]) && !(orig[side] = cJSON_Duplicate(maps[side], true)))
			goto out;
	for (int side = 0; side < 2; side++) {
		if (!cJSON_IsObject(maps[side]))
			continue;
		for (cJSON *c = maps[side]->child; c; c = c->next) {
			const cJSON *mine = cJSON_GetObjectItemCaseSensitive(orig[side], c->string);
			const cJSON *theirs = cJSON_GetObjectItemCaseSensitive(orig[1 - side], c->string);
			/* equal values mask the same; different ones say so, with
			 * nothing derived from the value */
			bool same = mine && theirs && cJSON_Compare(mine, theirs, true);
			cJSON *s = cJSON_CreateString(same        ? "(masked)"
			                              : side == 0 ? "(masked, before)"
			                                          : "(masked, after)");
			if (!s)
				goto out;
			cJSON_ReplaceItemInObjectCaseSensitive(maps[side], c->string, s);
			c = s;
		}
	}
	r = 0;
out:
	cJSON_Delete(orig[0]);
	cJSON_Delete(orig[1]);
	return r;
}

static bool is_secret(const cJSON *obj)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(obj, "kind");
	const cJSON *av = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
	return cJSON_IsString(k) && strcmp(k->valuestring, "Secret") == 0 && cJSON_IsString(av) &&
	       strcmp(av->valuestring, "v1") == 0;
}

/* ---- unified diff --------------------------------------------------------------- */

struct lines {
	const char **l;
	size_t *len;
	size_t n;
};

static int split_lines(char *s, struct lines *out)
{
	size_t n = 0, cap = 64;
	out->l = malloc(cap * sizeof(*out->l));
	out->len = malloc(cap * sizeof(*out->len));
	if (!out->l || !out->len)
		return SL_ENOMEM;
	while (s && *s) {
		char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		if (n == cap) {
			cap *= 2;
			void *a = realloc(out->l, cap * sizeof(*out->l));
			if (!a)
				return SL_ENOMEM;
			out->l = a;
			a = realloc(out->len, cap * sizeof(*out->len));
			if (!a)
				return SL_ENOMEM;
			out->len = a;
		}
		out->l[n] = s;
		out->len[n] = len;
		n++;
		s = nl ? nl + 1 : s + len;
	}
	out->n = n;
	return 0;
}

static bool line_eq(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
	return a->len[i] == b->len[j] && memcmp(a->l[i], b->l[j], a->len[i]) == 0;
}

/* An edit script: ' ' keep, '-' line of a, '+' line of b. */
struct op {
	char kind;
	size_t idx;
};

static int edit_script(const struct lines *a, const struct lines *b, struct op **ret, size_t *ret_n)
{
	size_t pre = 0, suf = 0, n = 0;
	struct op *ops = malloc((a->n + b->n + 1) * sizeof(*ops));
	if (!ops)
		return SL_ENOMEM;
	while (pre < a->n && pre < b->n && line_eq(a, pre, b, pre))
		pre++;
	while (suf < a->n - pre && suf < b->n - pre && line_eq(a, a->n - 1 - suf, b, b->n - 1 - suf))
		suf++;
	for (size_t i = 0; i < pre; i++)
		ops[n++] = (struct op){' ', i};
	size_t ma = a->n - pre - suf, mb = b->n - pre - suf;
	if (ma && mb && (uint64_t)(ma + 1) * (mb + 1) <= DIFF_MAX_CELLS) {
		/* LCS lengths from the end: t[i][j] for a[i..], b[j..] */
		uint32_t *t = calloc((ma + 1) * (mb + 1), sizeof(*t));
		if (!t) {
			free(ops);
			return SL_ENOMEM;
		}
#define T(i, j) t[(i) * (mb + 1) + (j)]
		for (size_t i = ma; i-- > 0;)
			for (size_t j = mb; j-- > 0;)
				T(i, j) = line_eq(a, pre + i, b, pre + j) ? T(i + 1, j + 1) + 1
				                                          : SL_MAX(T(i + 1, j), T(i, j + 1));
		size_t i = 0, j = 0;
		while (i < ma || j < mb) {
			if (i < ma && j < mb && line_eq(a, pre + i, b, pre + j)) {
				ops[n++] = (struct op){' ', pre + i};
				i++, j++;
			} else if (i < ma && (j == mb || T(i + 1, j) >= T(i, j + 1))) {
				ops[n++] = (struct op){'-', pre + i++};
			} else {
				ops[n++] = (struct op){'+', pre + j++};
			}
		}
#undef T
		free(t);
	} else {
		for (size_t i = 0; i < ma; i++)
			ops[n++] = (struct op){'-', pre + i};
		for (size_t j = 0; j < mb; j++)
			ops[n++] = (struct op){'+', pre + j};
	}
	for (size_t i = 0; i < suf; i++)
		ops[n++] = (struct op){' ', a->n - suf + i};
	*ret = ops;
	*ret_n = n;
	return 0;
}

static int put_line(struct sl_buf *out, char c, const struct lines *ls, size_t i)
{
	int r = sl_buf_append(out, &c, 1);
	if (!r)
		r = sl_buf_append(out, ls->l[i], ls->len[i]);
	return r ? r : sl_buf_puts(out, "\n");
}

static int unified(const struct lines *a, const struct lines *b, const struct op *ops, size_t n,
                   struct sl_buf *out)
{
	/* positions in a and b before each op, to number the hunks */
	size_t *pa = malloc((n + 1) * sizeof(*pa)), *pb = malloc((n + 1) * sizeof(*pb));
	int r = 0;
	if (!pa || !pb) {
		free(pa);
		free(pb);
		return SL_ENOMEM;
	}
	pa[0] = pb[0] = 0;
	for (size_t k = 0; k < n; k++) {
		pa[k + 1] = pa[k] + (ops[k].kind != '+');
		pb[k + 1] = pb[k] + (ops[k].kind != '-');
	}
	size_t k = 0;
	while (r == 0 && k < n) {
		while (k < n && ops[k].kind == ' ')
			k++;
		if (k == n)
			break;
		size_t start = k > DIFF_CONTEXT ? k - DIFF_CONTEXT : 0, end = k;
		/* extend while the next change is within 2*context */
		for (;;) {
			while (end < n && ops[end].kind != ' ')
				end++;
			size_t gap = end;
			while (gap < n && ops[gap].kind == ' ' && gap - end < 2 * DIFF_CONTEXT + 1)
				gap++;
			if (gap < n && ops[gap].kind != ' ' && gap - end <= 2 * DIFF_CONTEXT) {
				end = gap;
				continue;
			}
			end = SL_MIN(n, end + DIFF_CONTEXT);
			break;
		}
		size_t la = pa[end] - pa[start], lb = pb[end] - pb[start];
		r = sl_buf_printf(out, "@@ -%zu,%zu +%zu,%zu @@\n", la ? pa[start] + 1 : pa[start], la,
		                  lb ? pb[start] + 1 : pb[start], lb);
		for (size_t q = start; r == 0 && q < end; q++)
			r = put_line(out, ops[q].kind, ops[q].kind == '+' ? b : a, ops[q].idx);
		k = end;
	}
	free(pa);
	free(pb);
	return r;
}

int sl_sync_diff_object(const cJSON *desired, const cJSON *live, const cJSON *after, const char *label,
                        struct sl_buf *out)
{
	cJSON *before = NULL, *aft = NULL;
	struct sl_buf ba, bb;
	struct lines la = {0}, lb = {0};
	struct op *ops = NULL;
	size_t nops = 0;
	int r;

	sl_buf_init(&ba, 16 * 1024 * 1024);
	sl_buf_init(&bb, 16 * 1024 * 1024);
	before = live ? sl_sync_project(desired, live) : NULL;
	aft = sl_sync_project(desired, after ? after : desired);
	if ((live && !before) || !aft) {
		r = SL_ENOMEM;
		goto out;
	}
	if (before && cJSON_Compare(before, aft, true)) {
		r = 0;
		goto out;
	}
	if (is_secret(desired)) {
		if ((r = mask_map(before, aft, "data")) < 0 || (r = mask_map(before, aft, "stringData")) < 0)
			goto out;
	}
	if (before && (r = sl_manifest_yaml_write(before, SL_MANIFEST_YAML_SORT_KEYS, &ba)) < 0)
		goto out;
	if ((r = sl_manifest_yaml_write(aft, SL_MANIFEST_YAML_SORT_KEYS, &bb)) < 0)
		goto out;
	if ((r = split_lines(ba.data, &la)) < 0 || (r = split_lines(bb.data, &lb)) < 0)
		goto out;
	if ((r = edit_script(&la, &lb, &ops, &nops)) < 0)
		goto out;
	if (live)
		r = sl_buf_printf(out, "--- %s (live)\n+++ %s (desired)\n", label, label);
	else
		r = sl_buf_printf(out, "--- /dev/null\n+++ %s (desired, new)\n", label);
	if (!r)
		r = unified(&la, &lb, ops, nops, out);
	if (!r)
		r = 1;
out:
	free(ops);
	free(la.l);
	free(la.len);
	free(lb.l);
	free(lb.len);
	sl_buf_free(&ba);
	sl_buf_free(&bb);
	cJSON_Delete(before);
	cJSON_Delete(aft);
	return r;
}
