/* A chained hash map from strings to pointers, for the controller's indexes. */
#include "controller-internal.h"
#include "sluice/base.h"

#include <string.h>

void cmap_init(struct cmap *m, void (*free_val)(void *))
{
	memset(m, 0, sizeof(*m));
	m->free_val = free_val;
}

void cmap_free(struct cmap *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct cmap_ent *e = m->b[i];
		while (e) {
			struct cmap_ent *next = e->next;
			if (m->free_val)
				m->free_val(e->val);
			free(e->key);
			free(e);
			e = next;
		}
	}
	free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}

static struct cmap_ent **slot(const struct cmap *m, const char *key)
{
	struct cmap_ent **p = &m->b[sl_hash64(key, strlen(key)) & (m->nb - 1)];

	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

void *cmap_get(const struct cmap *m, const char *key)
{
	struct cmap_ent **p;

	if (!m->nb)
		return NULL;
	p = slot(m, key);
	return *p ? (*p)->val : NULL;
}

static int grow(struct cmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct cmap_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return SL_ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		struct cmap_ent *e = m->b[i];
		while (e) {
			struct cmap_ent *next = e->next;
			size_t h = sl_hash64(e->key, strlen(e->key)) & (nb - 1);
			e->next = b[h];
			b[h] = e;
			e = next;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int cmap_put(struct cmap *m, const char *key, void *val)
{
	struct cmap_ent **p, *e;

	if ((m->n + 1 > m->nb * 3 / 4) && grow(m) < 0)
		return SL_ENOMEM;
	p = slot(m, key);
	if (*p) {
		if (m->free_val && (*p)->val != val)
			m->free_val((*p)->val);
		(*p)->val = val;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = sl_strdup(key))) {
		free(e);
		return SL_ENOMEM;
	}
	e->val = val;
	*p = e;
	m->n++;
	return 0;
}

bool cmap_del(struct cmap *m, const char *key)
{
	struct cmap_ent **p, *e;

	if (!m->nb)
		return false;
	p = slot(m, key);
	if (!*p)
		return false;
	e = *p;
	*p = e->next;
	if (m->free_val)
		m->free_val(e->val);
	free(e->key);
	free(e);
	m->n--;
	return true;
}

void cmap_foreach(const struct cmap *m, void (*fn)(const char *key, void *val, void *payload), void *payload)
{
	for (size_t i = 0; i < m->nb; i++)
		for (struct cmap_ent *e = m->b[i]; e; e = e->next)
			fn(e->key, e->val, payload);
}
