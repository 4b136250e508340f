/* The manifest container (set.c): files, documents, the (kind, name) index
 * and the problem list of a set. The loader (load.c) fills it, the
 * validator (validate.c, schema.c, through problem.c) reads it and adds
 * problems; set.c itself calls neither. */
#pragma once

#include "sluice/manifest.h"

struct sl_manifest__parsed;

/* The limits the set was made with. */
const struct sl_manifest_limits *sl_manifest__set_limits(const struct sl_manifest_set *s);

/* Registers a file of len bytes whose SHA-256 is sha256 under the display
 * path; fails with SL_ETOOLARGE (detail in err) when it would pass the
 * set's max_files or max_total_size. Returns the file's index or a negative
 * code. */
long sl_manifest__set_file_register(struct sl_manifest_set *s, const char *display, size_t len,
                                    const uint8_t sha256[SL_SHA256_LEN], struct sl_error *err);

/* Adds the parsed file p under the display path: registers it, records its
 * problems and adds its documents, whose objects and positions the set
 * borrows while it holds a reference to p (taken here). Fails as
 * sl_manifest__set_file_register, or with SL_ENOMEM. */
int sl_manifest__set_add_parsed(struct sl_manifest_set *s, const char *display, struct sl_manifest__parsed *p,
                                struct sl_error *err);

/* Records a problem (strings copied); errors count on the set. 0 or
 * SL_ENOMEM. */
int sl_manifest__set_problem(struct sl_manifest_set *s, enum sl_manifest_severity sev, int code,
                             const char *file, int doc, unsigned line, unsigned col, const char *field,
                             const char *fmt, ...) __attribute__((format(printf, 9, 10)));

/* Document i, mutable to the module (validation counts errors on it and
 * drops the namespace of cluster-scoped objects). */
struct sl_manifest_doc *sl_manifest__set_doc_mut(struct sl_manifest_set *s, size_t i);

/* Indexed lookup: the first document in load order with this kind and
 * name for which match (may be NULL) holds. */
const struct sl_manifest_doc *
sl_manifest__set_lookup(const struct sl_manifest_set *s, const char *kind, const char *name,
                        bool (*match)(const struct sl_manifest_doc *d, const void *arg), const void *arg);
