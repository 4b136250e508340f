/* String-keyed chained hash map; see sluice/base-map.h. */
#include "sluice/base-map.h"
#include "sluice/base.h"

#include <string.h>

void sl_map_init(struct sl_map *m)
{
	sl_map_init_owning(m, NULL);
}

void sl_map_init_owning(struct sl_map *m, void (*free_val)(void *))
{
	m->b = NULL;
	m->nb = m->n = 0;
	m->free_val = free_val;
}

void sl_map_free(struct sl_map *m, void (*free_val)(void *))
{
	void (*fn)(void *) = free_val ? free_val : m->free_val;

	for (size_t i = 0; i < m->nb; i++)
		for (struct sl_map_ent *e = m->b[i], *n; e; e = n) {
			n = e->next;
			if (fn)
				fn(e->val);
			free(e->key);
			free(e);
		}
	free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}

static struct sl_map_ent **slot(const struct sl_map *m, const char *key)
{
	size_t i = sl_hash_keyed(key, strlen(key)) & (m->nb - 1);
	struct sl_map_ent **pp = &m->b[i];
	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

void *sl_map_get(const struct sl_map *m, const char *key)
{
	struct sl_map_ent *e;
	if (!m->nb)
		return NULL;
	e = *slot(m, key);
	return e ? e->val : NULL;
}

const char *sl_map_key(const struct sl_map *m, const char *key)
{
	struct sl_map_ent *e;
	if (!m->nb)
		return NULL;
	e = *slot(m, key);
	return e ? e->key : NULL;
}

static int grow(struct sl_map *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct sl_map_ent **b = calloc(nb, sizeof(*b));
	if (!b)
		return SL_ENOMEM;
	for (size_t i = 0; i < m->nb; i++)
		for (struct sl_map_ent *e = m->b[i], *n; e; e = n) {
			size_t j = sl_hash_keyed(e->key, strlen(e->key)) & (nb - 1);
			n = e->next;
			e->next = b[j];
			b[j] = e;
		}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int sl_map_put(struct sl_map *m, const char *key, void *val, void **old)
{
	struct sl_map_ent **pp, *e;

	if (old)
		*old = NULL;
	if ((m->n + 1 > m->nb) && grow(m) < 0)
		return SL_ENOMEM;
	pp = slot(m, key);
	if (*pp) {
		void *prev = (*pp)->val;
		(*pp)->val = val;
		if (old)
			*old = prev;
		else if (m->free_val && prev && prev != val)
			m->free_val(prev);
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = sl_strdup(key))) {
		free(e);
		return SL_ENOMEM;
	}
	e->val = val;
	*pp = e;
	m->n++;
	return 0;
}

/* Unlinks key's entry; *ret_val gets its value. False when key is absent. */
static bool unlink_key(struct sl_map *m, const char *key, void **ret_val)
{
	struct sl_map_ent **pp, *e;

	if (!m->nb)
		return false;
	pp = slot(m, key);
	e = *pp;
	if (!e)
		return false;
	*pp = e->next;
	*ret_val = e->val;
	free(e->key);
	free(e);
	m->n--;
	return true;
}

void *sl_map_del(struct sl_map *m, const char *key)
{
	void *v;

	return unlink_key(m, key, &v) ? v : NULL;
}

bool sl_map_drop(struct sl_map *m, const char *key)
{
	void *v;

	if (!unlink_key(m, key, &v))
		return false;
	if (m->free_val && v)
		m->free_val(v);
	return true;
}

void sl_map_foreach(const struct sl_map *m, void (*fn)(const char *key, void *val, void *payload),
                    void *payload)
{
	for (size_t i = 0; i < m->nb; i++)
		for (struct sl_map_ent *e = m->b[i]; e; e = e->next)
			fn(e->key, e->val, payload);
}
