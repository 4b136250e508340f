/* The controller's indexes: sluice/base-map.h with values owned by the map. */
#include "controller-internal.h"
#include "sluice/base.h"

#include <string.h>

void sl_controller__map_init(struct sl_controller__map *m, void (*free_val)(void *))
{
	sl_map_init(&m->m);
	m->free_val = free_val;
}

void sl_controller__map_free(struct sl_controller__map *m)
{
	sl_map_free(&m->m, m->free_val);
}

void *sl_controller__map_get(const struct sl_controller__map *m, const char *key)
{
	return sl_map_get(&m->m, key);
}

int sl_controller__map_put(struct sl_controller__map *m, const char *key, void *val)
{
	void *old;
	int r = sl_map_put(&m->m, key, val, &old);

	if (r == 0 && old && old != val && m->free_val)
		m->free_val(old);
	return r;
}

bool sl_controller__map_del(struct sl_controller__map *m, const char *key)
{
	void *v;

	if (!sl_map_key(&m->m, key))
		return false;
	v = sl_map_del(&m->m, key);
	if (v && m->free_val)
		m->free_val(v);
	return true;
}

void sl_controller__map_foreach(const struct sl_controller__map *m,
                                void (*fn)(const char *key, void *val, void *payload), void *payload)
{
	sl_map_foreach(&m->m, fn, payload);
}
