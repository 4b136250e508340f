/* One file parsed: documents and problems that the converter (yaml.c)
 * reports for a buffer, kept together so that sets and the parse cache
 * share them instead of parsing or copying again. */
#include "parsed.h"
#include "positions.h"
#include "yaml-load.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int add_problem(struct sl_manifest__parsed *p, enum sl_manifest_severity sev, int code, int doc,
                       unsigned line, unsigned col, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static int add_problem(struct sl_manifest__parsed *p, enum sl_manifest_severity sev, int code, int doc,
                       unsigned line, unsigned col, const char *field, const char *fmt, ...)
{
	struct sl_manifest__parsed_problem *q;
	char msg[1024];
	va_list ap;

	if (SL_GROW(p->problems, p->cap_problems, p->n_problems + 1, 4) < 0)
		return SL_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	q = &p->problems[p->n_problems];
	*q = (struct sl_manifest__parsed_problem){
	    .severity = sev,
	    .code = code,
	    .doc = doc,
	    .line = line,
	    .col = col,
	    .field = sl_strdup(field ? field : ""),
	    .msg = sl_strdup(msg),
	};
	if (!q->field || !q->msg) {
		free(q->field);
		free(q->msg);
		return SL_ENOMEM;
	}
	p->n_problems++;
	return 0;
}

static int doc_cb(struct sl_manifest__yaml_doc *y, void *payload)
{
	struct sl_manifest__parsed *p = payload;
	bool has_av, has_kind;

	has_av = cJSON_IsObject(y->obj) && cJSON_GetObjectItemCaseSensitive(y->obj, "apiVersion");
	has_kind = cJSON_IsObject(y->obj) && cJSON_GetObjectItemCaseSensitive(y->obj, "kind");
	if (!has_av && !has_kind) {
		cJSON_Delete(y->obj);
		sl_manifest__positions_free(y->pos);
		/* not a Kubernetes object (e.g. a values file): said, not fatal */
		return add_problem(p, SL_MANIFEST_WARNING, SL_EINVALID, (int)y->index, y->line, y->col, "",
		                   "document has no apiVersion and kind: skipped");
	}
	if (SL_GROW(p->docs, p->cap_docs, p->n_docs + 1, 4) < 0) {
		cJSON_Delete(y->obj);
		sl_manifest__positions_free(y->pos);
		return SL_ENOMEM;
	}
	/* kept as long as the file is cached or a set holds it: no slack */
	sl_manifest__positions_compact(y->pos);
	p->docs[p->n_docs++] = (struct sl_manifest__parsed_doc){y->index, y->line, y->col, y->obj, y->pos};
	return 0;
}

static int problem_cb(const struct sl_manifest__yaml_problem *y, void *payload)
{
	return add_problem(payload, SL_MANIFEST_ERROR, y->code, y->doc, y->line, y->col, y->field, "%s",
	                   y->msg);
}

int sl_manifest__parse(const void *data, size_t len, const uint8_t *sha256,
                       const struct sl_manifest_limits *lim, struct sl_manifest__parsed **ret)
{
	struct sl_manifest__parsed *p = calloc(1, sizeof(*p));
	struct sl_manifest__yaml_callbacks cb = {doc_cb, problem_cb, p};
	int r;

	if (!p)
		return SL_ENOMEM;
	atomic_init(&p->refs, 1);
	p->size = len;
	if (sha256) {
		memcpy(p->sha256, sha256, SL_SHA256_LEN);
	} else {
		struct sl_sha256 c;
		sl_sha256_init(&c);
		sl_sha256_update(&c, data, len);
		sl_sha256_final(&c, p->sha256);
	}
	if (len > lim->max_file_size)
		r = add_problem(p, SL_MANIFEST_ERROR, SL_ETOOLARGE, -1, 0, 0, "",
		                "%zu bytes, over the limit of %zu for one file", len, lim->max_file_size);
	else
		r = sl_manifest__yaml_load(data, len, lim, true, &cb);
	if (r < 0) {
		sl_manifest__parsed_unref(p);
		return r;
	}
	*ret = p;
	return 0;
}

struct sl_manifest__parsed *sl_manifest__parsed_ref(struct sl_manifest__parsed *p)
{
	if (p)
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void sl_manifest__parsed_unref(struct sl_manifest__parsed *p)
{
	if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < p->n_docs; i++) {
		cJSON_Delete(p->docs[i].obj);
		sl_manifest__positions_free(p->docs[i].pos);
	}
	for (size_t i = 0; i < p->n_problems; i++) {
		free(p->problems[i].field);
		free(p->problems[i].msg);
	}
	free(p->docs);
	free(p->problems);
	free(p);
}
