/* Fuzz target: the pages of a list as the API server sends them (JSON
 * texts; here separated by NUL bytes), read the way the client and the
 * informer read them: each page parsed and checked to be a list, its items
 * handed to the informer's cache (kind and apiVersion added, managedFields
 * dropped, keyed namespace/name), its metadata.continue followed to the
 * next page, the pages merged, and the list's resourceVersion kept to watch
 * from. Nothing may crash or leak; a merged list has every item of every
 * page, once, in one items array (the informer's: none, its pager took
 * them), and no continue token; every cached object sits under its own key.
 * A page with a key twice in it or its metadata is left out of the count:
 * cJSON keeps both and every lookup finds the first, where Go's decoder
 * keeps the last (an API server writes no duplicate keys). */
#include "internal.h"
#include "sluice/manifest-json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAGES 16

struct pager {
	struct sl_map fresh;
	int err;
};

static void on_page(cJSON *items, void *payload)
{
	struct pager *p = payload;

	if (sl_kube__informer_keep(&p->fresh, items, "ConfigMap", "v1", NULL, NULL) < 0)
		p->err = SL_ENOMEM;
	if (items->child)
		abort(); /* everything was taken */
}

static void obj_free(void *v)
{
	cJSON_Delete(v);
}

static void check_cached(const char *key, void *val, void *payload)
{
	const cJSON *obj = val, *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	char k[512];

	if (sl_kube_obj_key(obj, k, sizeof(k)) < 0 || strcmp(k, key) != 0)
		abort();
	if (!cJSON_GetObjectItemCaseSensitive(obj, "kind") || !cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"))
		abort();
	if (cJSON_GetObjectItemCaseSensitive(meta, "managedFields"))
		abort();
}

static bool dup_keys(const cJSON *o)
{
	for (const cJSON *a = cJSON_IsObject(o) ? o->child : NULL; a; a = a->next)
		for (const cJSON *b = a->next; b; b = b->next)
			if (!strcmp(a->string, b->string))
				return true;
	return false;
}

/* One list over the pages; page: the informer's paged list, else a plain
 * list merging the pages' items. */
static void list(const char **texts, const size_t *lens, size_t n, bool paged)
{
	struct pager p = {.err = 0};
	cJSON *merged = NULL;
	char *rv = NULL;
	size_t i, want = 0;
	bool done = false, checks = true;

	sl_map_init(&p.fresh);
	for (i = 0; i < n && !done; i++) {
		cJSON *body = NULL, *items = NULL;
		const cJSON *its;
		char *next = NULL;

		if (sl_manifest_json_parse(texts[i], lens[i], &body, NULL) < 0)
			break; /* the list fails */
		if (sl_kube__list_page_check(body) < 0) {
			cJSON_Delete(body);
			break; /* the list fails: not a list */
		}
		if (dup_keys(body) || dup_keys(cJSON_GetObjectItemCaseSensitive(body, "metadata")))
			checks = false;
		its = cJSON_GetObjectItemCaseSensitive(body, "items");
		want += cJSON_IsArray(its) ? (size_t)cJSON_GetArraySize(its) : 0;
		if (sl_kube__list_page(&merged, &body, paged, &items, &next) < 0)
			abort();
		if (next && !*next)
			abort();
		if (paged) {
			/* the informer's pager keeps the items */
			if (cJSON_IsArray(items))
				on_page(items, &p);
		} else if (items)
			abort();
		cJSON_Delete(items);
		cJSON_Delete(body);
		if (!next) {
			done = true;
			sl_kube__list_finish(merged);
		}
		free(next);
	}
	if (done) {
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(merged, "metadata");
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(merged, "items");
		const char *mrv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"));

		/* the list as its caller gets it (of duplicate keys, every
		 * lookup finds the first) */
		if (!cJSON_IsArray(items) || cJSON_GetObjectItemCaseSensitive(meta, "continue") ||
		    (checks && (size_t)cJSON_GetArraySize(items) != (paged ? 0 : want)))
			abort();
		/* the informer: its cache, and where its watch starts */
		if (sl_kube__informer_rv(merged, &rv) < 0)
			abort();
		if ((mrv && *mrv) ? !rv || strcmp(rv, mrv) : rv != NULL)
			abort();
		if (paged && !p.err && checks)
			sl_map_foreach(&p.fresh, check_cached, NULL);
	}
	free(rv);
	cJSON_Delete(merged);
	sl_map_free(&p.fresh, obj_free);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *texts[MAX_PAGES];
	size_t lens[MAX_PAGES], n = 0;
	const char *p = (const char *)data, *end = p + size;

	while (p <= end && n < MAX_PAGES) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		texts[n] = p;
		lens[n++] = (size_t)((z ? z : end) - p);
		if (!z)
			break;
		p = z + 1;
	}
	list(texts, lens, n, true);
	list(texts, lens, n, false);
	return 0;
}
