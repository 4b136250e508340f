/* Field paths of a document and where each one is written (positions.c):
 * the YAML converter fills the table, the set frees it with its documents,
 * problems are positioned by it. The bottom of the module: it uses no other
 * part of it. */
#pragma once

#include "sluice/manifest.h"

/* struct sl_manifest_positions (declared in manifest.h) is private to
 * positions.c: field path -> line:column of one document. */

/* A new empty table, or NULL when out of memory. */
struct sl_manifest_positions *sl_manifest__positions_new(void);
/* Accepts NULL. */
void sl_manifest__positions_free(struct sl_manifest_positions *p);
/* Records that path starts at line:col. 0, SL_ETOOLARGE or SL_ENOMEM. */
int sl_manifest__positions_add(struct sl_manifest_positions *p, const char *path, unsigned line,
                               unsigned col);

/* Gives back the room the table grew beyond its entries: a set keeps one
 * table per document. Accepts NULL. */
void sl_manifest__positions_compact(struct sl_manifest_positions *p);

/* Appends a path segment for key to b (".key" or "[key]"), in the syntax of
 * sl_manifest_doc_position. 0 or SL_ETOOLARGE (b's max) or SL_ENOMEM. */
int sl_manifest__path_push_key(struct sl_buf *b, const char *key);
/* Cuts the path in b back to its first len bytes (a length it had before). */
void sl_manifest__path_cut(struct sl_buf *b, size_t len);
