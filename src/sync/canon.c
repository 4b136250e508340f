/* Digests of desired objects and of what sluice last saw live, projections
 * of live objects onto desired ones, and the completed latch: the pure pieces
 * behind "no-op cost". A digest hashes the object's JSON as
 * sl_manifest_json_go writes it (keys sorted); what is sync's own is what
 * gets left out first. */
#include "sluice/sync.h"
#include "sluice/manifest-json.h"

#include <cjson/cJSON.h>
#include <string.h>

/* The first SL_SYNC_DIGEST_HEX hex digits of the SHA-256 of prefix (may be
 * NULL) followed by v's JSON. */
static int digest_of(const char *prefix, const cJSON *v, char out[static SL_SYNC_DIGEST_HEX + 1])
{
	char *json = sl_manifest_json_go(v);
	char hex[2 * SL_SHA256_LEN + 1];
	uint8_t d[SL_SHA256_LEN];
	struct sl_sha256 c;

	if (!json)
		return SL_ENOMEM;
	sl_sha256_init(&c);
	if (prefix)
		sl_sha256_update(&c, prefix, strlen(prefix));
	sl_sha256_update(&c, json, strlen(json));
	sl_sha256_final(&c, d);
	free(json);
	sl_hex(d, SL_SHA256_LEN, hex);
	memcpy(out, hex, SL_SYNC_DIGEST_HEX);
	out[SL_SYNC_DIGEST_HEX] = '\0';
	return 0;
}

/* A view of the object o without o[path[0]]...[path[n - 1]]: made of cJSON
 * references, so nothing below o is copied. NULL when out of memory. */
static cJSON *view_without(const cJSON *o, const char *const *path, size_t n)
{
	cJSON *v = cJSON_CreateObject();

	for (const cJSON *m = o->child; v && m; m = m->next) {
		const char *key = m->string ? m->string : "";
		bool on_path = strcmp(key, path[0]) == 0;
		bool ok;

		if (on_path && n == 1)
			continue;
		if (on_path && cJSON_IsObject(m)) {
			cJSON *sub = view_without(m, path + 1, n - 1);
			ok = sub && cJSON_AddItemToObject(v, key, sub);
			if (!ok)
				cJSON_Delete(sub);
		} else {
			/* a reference only reads m */
			ok = cJSON_AddItemReferenceToObject(v, key, (cJSON *)m);
		}
		if (!ok) {
			cJSON_Delete(v);
			v = NULL;
		}
	}
	return v;
}

int sl_sync_digest(const cJSON *desired, char out[static SL_SYNC_DIGEST_HEX + 1])
{
	/* a new commit writes a new revision annotation into every object */
	static const char *const revision[] = {"metadata", "annotations", SL_ARCANE_ANN_REVISION};
	cJSON *view = NULL;
	int r;

	if (cJSON_IsObject(desired) && !(view = view_without(desired, revision, SL_ARRAY_SIZE(revision))))
		return SL_ENOMEM;
	r = digest_of(NULL, view ? view : desired, out);
	cJSON_Delete(view);
	return r;
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

int sl_sync_state_digest_from(const char *desired_digest, const cJSON *desired, const cJSON *live,
                              char out[static SL_SYNC_DIGEST_HEX + 1])
{
	/* the projection leaves the revision annotation out already */
	cJSON *p = sl_sync_project(desired, live);
	int r = p ? digest_of(desired_digest, p, out) : SL_ENOMEM;

	cJSON_Delete(p);
	return r;
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
