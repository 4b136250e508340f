/* Field paths ("spec.containers[0].image") and the table of where each path
 * of a document is written, so that problems found on the cJSON tree can be
 * told as file:line:column. */
#include "positions.h"

#include <string.h>

struct pos_entry {
	uint32_t off; /* into paths */
	uint32_t line;
	uint32_t col;
};

struct sl_manifest_positions {
	char *paths; /* NUL-separated */
	size_t paths_len, paths_cap;
	struct pos_entry *v;
	size_t n, cap;
};

struct sl_manifest_positions *sl_manifest__positions_new(void)
{
	return calloc(1, sizeof(struct sl_manifest_positions));
}

void sl_manifest__positions_free(struct sl_manifest_positions *p)
{
	if (!p)
		return;
	free(p->paths);
	free(p->v);
	free(p);
}

int sl_manifest__positions_add(struct sl_manifest_positions *p, const char *path, unsigned line, unsigned col)
{
	size_t l = strlen(path) + 1;
	if (p->paths_len + l > UINT32_MAX)
		return SL_ETOOLARGE;
	if (p->paths_len + l > p->paths_cap) {
		size_t nc = SL_MAX(p->paths_cap * 2, p->paths_len + l + 256);
		char *np = realloc(p->paths, nc);
		if (!np)
			return SL_ENOMEM;
		p->paths = np;
		p->paths_cap = nc;
	}
	if (SL_GROW(p->v, p->cap, p->n + 1, 16) < 0)
		return SL_ENOMEM;
	memcpy(p->paths + p->paths_len, path, l);
	p->v[p->n++] = (struct pos_entry){(uint32_t)p->paths_len, line, col};
	p->paths_len += l;
	return 0;
}

void sl_manifest__positions_compact(struct sl_manifest_positions *p)
{
	char *np;
	struct pos_entry *nv;

	if (!p)
		return;
	/* a shrinking realloc that fails leaves the block as it was */
	if (p->paths_len && p->paths_len < p->paths_cap && (np = realloc(p->paths, p->paths_len))) {
		p->paths = np;
		p->paths_cap = p->paths_len;
	}
	if (p->n && p->n < p->cap && (nv = realloc(p->v, p->n * sizeof(*p->v)))) {
		p->v = nv;
		p->cap = p->n;
	}
}

int sl_manifest_doc_position(const struct sl_manifest_doc *d, const char *path, unsigned *line,
                             unsigned *column)
{
	const struct sl_manifest_positions *p = d ? d->positions : NULL;
	if (!p || !path)
		return SL_ENOTFOUND;
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->paths + p->v[i].off, path) == 0) {
			*line = p->v[i].line;
			*column = p->v[i].col;
			return 0;
		}
	return SL_ENOTFOUND;
}

int sl_manifest__path_push_key(struct sl_buf *b, const char *key)
{
	if (strpbrk(key, ".[]") || !*key)
		return sl_buf_printf(b, "[%s]", key);
	if (b->len > 0 && sl_buf_puts(b, ".") < 0)
		return SL_ETOOLARGE;
	return sl_buf_puts(b, key);
}

void sl_manifest__path_cut(struct sl_buf *b, size_t len)
{
	b->len = len;
	if (b->data)
		b->data[len] = '\0';
}
