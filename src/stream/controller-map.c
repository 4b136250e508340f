/* The controller's indexes: sluice/base-map.h with values owned by the map. */
#include "controller-internal.h"
#include "sluice/base.h"

#include <string.h>

void cmap_init(struct cmap *m, void (*free_val)(void *))
{
	sl_map_init(&m->m);
	m->free_val = free_val;
}

void cmap_free(struct cmap *m)
{
	sl_map_free(&m->m, m->free_val);
}

void *cmap_get(const struct cmap *m, const char *key)
{
	return sl_map_get(&m->m, key);
}

int cmap_put(struct cmap *m, const char *key, void *val)
{
	void *old;
	int r = sl_map_put(&m->m, key, val, &old);

	if (r == 0 && old && old != val && m->free_val)
		m->free_val(old);
	return r;
}

bool cmap_del(struct cmap *m, const char *key)
{
	void *v;

	if (!sl_map_key(&m->m, key))
		return false;
	v = sl_map_del(&m->m, key);
	if (v && m->free_val)
		m->free_val(v);
	return true;
}

void cmap_foreach(const struct cmap *m, void (*fn)(const char *key, void *val, void *payload), void *payload)
{
	sl_map_foreach(&m->m, fn, payload);
}
