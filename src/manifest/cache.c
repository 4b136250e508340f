/* The parse cache: the parsed file (parsed.c) last seen under each display
 * path, so that a load finding the same bytes there again shares it instead
 * of parsing. Sets hold their own references, so dropping an entry never
 * affects a set made from it. */
#include "cache.h"
#include "parsed.h"
#include "set.h"

#include "sluice/base-map.h"

#include <string.h>

struct entry {
	struct sl_manifest__parsed *p;
	uint64_t gen; /* the sweep generation it was last used in */
};

struct sl_manifest_cache {
	struct sl_manifest_limits lim;
	struct sl_map files; /* display path -> struct entry, owned */
	uint64_t gen;
	struct sl_manifest_cache_stats stats;
};

static void entry_free(void *v)
{
	struct entry *e = v;
	sl_manifest__parsed_unref(e->p);
	free(e);
}

struct sl_manifest_cache *sl_manifest_cache_new(const struct sl_manifest_limits *limits)
{
	static const struct sl_manifest_limits def = SL_MANIFEST_LIMITS_INIT;
	struct sl_manifest_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->lim = limits ? *limits : def;
	sl_map_init_owning(&c->files, entry_free);
	return c;
}

void sl_manifest_cache_free(struct sl_manifest_cache *c)
{
	if (!c)
		return;
	sl_map_free(&c->files, NULL);
	free(c);
}

/* The entry of name if it holds bytes of digest sha, marked as used. */
static struct entry *lookup(struct sl_manifest_cache *c, const char *name, const uint8_t sha[SL_SHA256_LEN])
{
	struct entry *e = sl_map_get(&c->files, name);

	if (!e || memcmp(e->p->sha256, sha, SL_SHA256_LEN) != 0)
		return NULL;
	e->gen = c->gen;
	return e;
}

int sl_manifest__cache_get(struct sl_manifest_cache *c, const char *name, const void *data, size_t len,
                           struct sl_manifest__parsed **ret)
{
	struct sl_sha256 h;
	uint8_t sha[SL_SHA256_LEN];
	struct entry *e;
	int r;

	sl_sha256_init(&h);
	sl_sha256_update(&h, data, len);
	sl_sha256_final(&h, sha);
	e = lookup(c, name, sha);
	if (e) {
		c->stats.reused++;
		*ret = e->p;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return SL_ENOMEM;
	r = sl_manifest__parse(data, len, sha, &c->lim, &e->p);
	if (r < 0) {
		free(e);
		return r;
	}
	c->stats.parsed++;
	e->gen = c->gen;
	/* replaces (and frees) the entry of older bytes under that name */
	if (sl_map_put(&c->files, name, e, NULL) < 0) {
		entry_free(e);
		return SL_ENOMEM;
	}
	*ret = e->p;
	return 0;
}

int sl_manifest_cache_put(struct sl_manifest_cache *c, const char *name, const void *data, size_t len,
                          uint8_t sha[SL_SHA256_LEN])
{
	struct sl_manifest__parsed *p;
	int r = sl_manifest__cache_get(c, name, data, len, &p);

	if (r == 0 && sha)
		memcpy(sha, p->sha256, SL_SHA256_LEN);
	return r;
}

int sl_manifest_set_add_cached(struct sl_manifest_set *s, struct sl_manifest_cache *c, const char *name,
                               const uint8_t sha[SL_SHA256_LEN], struct sl_error *err)
{
	struct entry *e = lookup(c, name, sha);

	if (!e)
		return sl_error_set(err, SL_ENOTFOUND, "%s: not in the parse cache", name);
	return sl_manifest__set_add_parsed(s, name, e->p, err);
}

struct sweep {
	const struct sl_manifest_cache *c;
	char **drop;
	size_t n, cap;
	bool nomem;
};

static void sweep_one(const char *key, void *val, void *payload)
{
	struct sweep *w = payload;
	const struct entry *e = val;

	if (e->gen == w->c->gen || w->nomem)
		return;
	if (SL_GROW(w->drop, w->cap, w->n + 1, 16) < 0 || !(w->drop[w->n] = sl_strdup(key))) {
		w->nomem = true; /* what stays is dropped at a later sweep */
		return;
	}
	w->n++;
}

void sl_manifest_cache_sweep(struct sl_manifest_cache *c)
{
	struct sweep w = {.c = c};

	sl_map_foreach(&c->files, sweep_one, &w);
	for (size_t i = 0; i < w.n; i++) {
		sl_map_drop(&c->files, w.drop[i]);
		free(w.drop[i]);
	}
	free(w.drop);
	c->gen++;
}

void sl_manifest_cache_stats(const struct sl_manifest_cache *c, struct sl_manifest_cache_stats *ret)
{
	*ret = c->stats;
	ret->files = c->files.n;
}

const struct sl_manifest_limits *sl_manifest_cache_limits(const struct sl_manifest_cache *c)
{
	return &c->lim;
}
