/* Private parts of the manifest module shared between its files. */
#pragma once

#include "sluice/manifest.h"

/* Field path -> position table of one document. */
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

void sl_manifest__positions_free(struct sl_manifest_positions *p);
int sl_manifest__positions_add(struct sl_manifest_positions *p, const char *path, unsigned line,
                               unsigned col);

/* A problem found while parsing one buffer. */
struct yaml_problem {
	int code;
	int doc; /* -1: about the stream */
	unsigned line, col;
	const char *field;
	const char *msg;
};

/* A parsed non-empty document; the callee takes obj and pos. */
struct yaml_doc {
	unsigned index, line, col;
	cJSON *obj;
	struct sl_manifest_positions *pos;
};

struct yaml_callbacks {
	int (*doc)(struct yaml_doc *d, void *payload);               /* < 0 stops */
	int (*problem)(const struct yaml_problem *p, void *payload); /* < 0 stops */
	void *payload;
};

/* Parses every document of data; problems of single documents are reported
 * and parsing goes on with the next one; a syntax error ends the stream.
 * Returns 0, SL_ENOMEM, or the negative value a callback returned. */
int sl_manifest__yaml_load(const void *data, size_t len, const struct sl_manifest_limits *lim,
                           bool want_positions, const struct yaml_callbacks *cb);

/* Appends a path segment for key to b (".key" or "[key]"). */
int sl_manifest__path_push_key(struct sl_buf *b, const char *key);

/* Built-in CRDs (generated from crds/ at build time). */
struct crd_blob {
	const char *name;
	const char *data;
	size_t len;
};
extern const struct crd_blob sl_manifest_crds[];
extern const size_t sl_manifest_crds_count;

/* set.c internals used by validation */
int sl_manifest__set_problem(struct sl_manifest_set *s, enum sl_manifest_severity sev, int code,
                             const char *file, int doc, unsigned line, unsigned col, const char *field,
                             const char *fmt, ...) __attribute__((format(printf, 9, 10)));
struct sl_manifest_doc *sl_manifest__set_doc_mut(struct sl_manifest_set *s, size_t i);

/* validate.c: records a problem on document d at field path (the position
 * is that of the path or of its closest ancestor present); errors count on
 * d. A second problem for the same path of the same document is dropped. */
struct vctx;
int sl_manifest__doc_problem(struct vctx *v, struct sl_manifest_doc *d, enum sl_manifest_severity sev,
                             const char *path, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* schema.c: checks value (at path) against an OpenAPI v3 structural schema;
 * problems go to sl_manifest__doc_problem. Returns 0 or SL_ENOMEM. */
int sl_manifest__schema_check(struct vctx *v, struct sl_manifest_doc *d, const cJSON *schema,
                              const cJSON *value, struct sl_buf *path, unsigned depth);

/* set.c: indexed lookups. The first document in load order with this kind
 * and name for which match (may be NULL) holds. */
const struct sl_manifest_doc *
sl_manifest__set_lookup(const struct sl_manifest_set *s, const char *kind, const char *name,
                        bool (*match)(const struct sl_manifest_doc *d, const void *arg), const void *arg);
size_t sl_manifest__set_class_count(const struct sl_manifest_set *s);
const struct sl_manifest_doc *sl_manifest__set_class(const struct sl_manifest_set *s, size_t i);

/* json.c: when s[0..n) is an integer ('-'? digits) beyond 2^53, keeps its
 * digits in num->valuestring (see sl_manifest_json_parse). 0 or SL_ENOMEM. */
int sl_manifest__json_keep_int(cJSON *num, const char *s, size_t n);

/* json.c: the integer text kept in number v's valuestring, without leading
 * zeros, into out; false when v keeps none, or one that is not v's value
 * (valuedouble changed since). */
#define SL_MANIFEST__INT_TEXT_MAX 72
bool sl_manifest__json_int_text(const cJSON *v, char out[static SL_MANIFEST__INT_TEXT_MAX]);
