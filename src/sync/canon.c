/* Canonical digests of JSON trees, projections of live objects onto desired
 * ones, and the completed latch: the pure pieces behind "no-op cost". */
#include "sluice/sync.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static int cmp_child(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* Length-prefixed strings and type tags make the encoding unambiguous without
 * escaping. */
static void hash_str(struct sl_sha256 *c, const char *s)
{
	uint64_t n = s ? strlen(s) : 0;
	sl_sha256_update(c, &n, sizeof(n));
	if (n)
		sl_sha256_update(c, s, n);
}

/* in_meta: v is the top-level "metadata"; in_ann: v is its "annotations",
 * where the revision annotation is skipped. */
static void hash_node(struct sl_sha256 *c, const cJSON *v, int depth, bool in_meta, bool in_ann)
{
	if (cJSON_IsObject(v)) {
		size_t n = 0, i = 0;
		for (const cJSON *ch = v->child; ch; ch = ch->next)
			n++;
		const cJSON **kids = n ? malloc(n * sizeof(*kids)) : NULL;
		sl_sha256_update(c, "{", 1);
		if (n && !kids) {
			/* out of memory: fall back to source order; a spurious
			 * digest change only costs one extra apply */
			for (const cJSON *ch = v->child; ch; ch = ch->next) {
				hash_str(c, ch->string);
				hash_node(c, ch, depth + 1, false, false);
			}
			sl_sha256_update(c, "}", 1);
			return;
		}
		for (const cJSON *ch = v->child; ch; ch = ch->next)
			kids[i++] = ch;
		if (n)
			qsort(kids, n, sizeof(*kids), cmp_child);
		for (i = 0; i < n; i++) {
			const cJSON *ch = kids[i];
			if (in_ann && ch->string && strcmp(ch->string, SL_ARCANE_ANN_REVISION) == 0)
				continue;
			bool meta = depth == 0 && ch->string && strcmp(ch->string, "metadata") == 0;
			bool ann = in_meta && ch->string && strcmp(ch->string, "annotations") == 0;
			hash_str(c, ch->string);
			hash_node(c, ch, depth + 1, meta, ann);
		}
		free(kids);
		sl_sha256_update(c, "}", 1);
	} else if (cJSON_IsArray(v)) {
		sl_sha256_update(c, "[", 1);
		for (const cJSON *ch = v->child; ch; ch = ch->next)
			hash_node(c, ch, depth + 1, false, false);
		sl_sha256_update(c, "]", 1);
	} else if (cJSON_IsString(v)) {
		sl_sha256_update(c, "s", 1);
		hash_str(c, v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		char num[64];
		snprintf(num, sizeof(num), "%.17g", v->valuedouble);
		sl_sha256_update(c, "n", 1);
		hash_str(c, num);
	} else if (cJSON_IsTrue(v)) {
		sl_sha256_update(c, "t", 1);
	} else if (cJSON_IsFalse(v)) {
		sl_sha256_update(c, "f", 1);
	} else if (cJSON_IsNull(v)) {
		sl_sha256_update(c, "z", 1);
	} else {
		sl_sha256_update(c, "?", 1);
	}
}

static void finish_hex(struct sl_sha256 *c, char out[static SL_SYNC_DIGEST_HEX + 1])
{
	uint8_t d[SL_SHA256_LEN];
	char hex[2 * SL_SHA256_LEN + 1];
	sl_sha256_final(c, d);
	sl_hex(d, SL_SHA256_LEN, hex);
	memcpy(out, hex, SL_SYNC_DIGEST_HEX);
	out[SL_SYNC_DIGEST_HEX] = '\0';
}

void sl_sync_digest(const cJSON *desired, char out[static SL_SYNC_DIGEST_HEX + 1])
{
	struct sl_sha256 c;
	sl_sha256_init(&c);
	hash_node(&c, desired, 0, false, false);
	finish_hex(&c, out);
}

static cJSON *project(const cJSON *d, const cJSON *l, int depth, bool in_meta, bool in_ann);

static cJSON *project_object(const cJSON *d, const cJSON *l, int depth, bool in_meta, bool in_ann)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	for (const cJSON *ch = d->child; ch; ch = ch->next) {
		if (!ch->string)
			continue;
		if (in_ann && strcmp(ch->string, SL_ARCANE_ANN_REVISION) == 0)
			continue;
		const cJSON *lv = cJSON_GetObjectItemCaseSensitive(l, ch->string);
		if (!lv)
			continue; /* absent live: absent in the projection */
		bool meta = depth == 0 && strcmp(ch->string, "metadata") == 0;
		bool ann = in_meta && strcmp(ch->string, "annotations") == 0;
		cJSON *pv = project(ch, lv, depth + 1, meta, ann);
		if (!pv || !cJSON_AddItemToObject(o, ch->string, pv)) {
			cJSON_Delete(pv);
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}

static cJSON *project(const cJSON *d, const cJSON *l, int depth, bool in_meta, bool in_ann)
{
	if (cJSON_IsObject(d) && cJSON_IsObject(l))
		return project_object(d, l, depth, in_meta, in_ann);
	if (cJSON_IsArray(d) && cJSON_IsArray(l)) {
		cJSON *a = cJSON_CreateArray();
		const cJSON *de = d->child, *le = l->child;
		if (!a)
			return NULL;
		for (; le; le = le->next) {
			cJSON *pv = de ? project(de, le, depth + 1, false, false) : cJSON_Duplicate(le, true);
			if (!pv || !cJSON_AddItemToArray(a, pv)) {
				cJSON_Delete(pv);
				cJSON_Delete(a);
				return NULL;
			}
			if (de)
				de = de->next;
		}
		return a;
	}
	/* scalars, or a type that differs: the live value as it is */
	return cJSON_Duplicate(l, true);
}

cJSON *sl_sync_project(const cJSON *desired, const cJSON *live)
{
	if (!live || !cJSON_IsObject(desired))
		return cJSON_CreateObject();
	return project(desired, live, 0, false, false);
}

void sl_sync_state_digest_from(const char *desired_digest, const cJSON *desired, const cJSON *live,
                               char out[static SL_SYNC_DIGEST_HEX + 1])
{
	struct sl_sha256 c;
	cJSON *p = sl_sync_project(desired, live);

	sl_sha256_init(&c);
	sl_sha256_update(&c, desired_digest, SL_SYNC_DIGEST_HEX);
	if (p)
		hash_node(&c, p, 0, false, false);
	else
		sl_sha256_update(&c, "!", 1); /* no memory: a digest that matches nothing stored */
	finish_hex(&c, out);
	if (!p) {
		/* make it differ from anything recorded */
		out[0] = 'x';
	}
	cJSON_Delete(p);
}

static bool is_backfill(const cJSON *obj)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
	const cJSON *av = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
	return cJSON_IsString(kind) && strcmp(kind->valuestring, "BackfillRequest") == 0 &&
	       cJSON_IsString(av) && sl_str_has_prefix(av->valuestring, SL_ARCANE_GROUP "/");
}

bool sl_sync_latch_completed(cJSON *desired, const cJSON *live)
{
	if (!desired || !live || !is_backfill(desired))
		return false;
	const cJSON *lspec = cJSON_GetObjectItemCaseSensitive(live, "spec");
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(lspec, "completed")))
		return false;
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(desired, "spec");
	if (!spec) {
		spec = cJSON_AddObjectToObject(desired, "spec");
		if (!spec)
			return false;
	}
	if (!cJSON_IsObject(spec))
		return false;
	cJSON *c = cJSON_GetObjectItemCaseSensitive(spec, "completed");
	if (cJSON_IsTrue(c))
		return false;
	cJSON *t = cJSON_CreateTrue();
	if (!t)
		return false;
	if (c)
		cJSON_ReplaceItemInObjectCaseSensitive(spec, "completed", t);
	else
		cJSON_AddItemToObject(spec, "completed", t);
	return true;
}
