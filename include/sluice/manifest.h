/* manifest: YAML manifests to cJSON and back, loading a tree of files, and
 * offline validation. Pure: no network, no clock; only the file system when loading. */
#pragma once

#include "sluice/arcane.h"

#include "sluice/base.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- limits ------------------------------------------------------------- */

/* Every input is bounded. A hit limit is a problem of that file (or, for
 * max_files and max_total_size, a fatal SL_ETOOLARGE of the load). */
struct sl_manifest_limits {
	size_t max_file_size;     /* bytes per file */
	size_t max_docs_per_file; /* YAML documents per file */
	unsigned max_depth;       /* nesting of mappings and sequences */
	size_t max_alias_nodes;   /* nodes produced by alias expansion, per document */
	size_t max_nodes;         /* nodes per document, aliases expanded */
	size_t max_files;         /* YAML files per tree */
	size_t max_total_size;    /* bytes over all files of a set */
};

#define SL_MANIFEST_LIMITS_INIT                                                        \
	{                                                                              \
		.max_file_size = 4u << 20, .max_docs_per_file = 1000, .max_depth = 64, \
		.max_alias_nodes = 10000, .max_nodes = 200000, .max_files = 100000,    \
		.max_total_size = 512u << 20,                                          \
	}

/* ---- problems ----------------------------------------------------------- */

enum sl_manifest_severity {
	SL_MANIFEST_ERROR,   /* the document (or file) is invalid */
	SL_MANIFEST_WARNING, /* worth saying, not fatal (e.g. a skipped document) */
};

/* One problem, located as precisely as known. Strings are owned by the set
 * that holds the problem and live as long as it. */
struct sl_manifest_problem {
	enum sl_manifest_severity severity;
	int code;            /* SL_EINVALID, SL_ETOOLARGE, SL_ENOTFOUND, ... */
	const char *file;    /* display path of the file ("" when none) */
	int doc;             /* document index in the file, -1 when about the file */
	unsigned line;       /* 1-based; 0 when unknown */
	unsigned column;     /* 1-based; 0 when unknown */
	const char *field;   /* field path such as "spec.jobTemplateRef.name", "" when none */
	const char *message; /* what is wrong and what was expected; never a secret value */
};

/* "file:line:column: field: message" (parts that are unknown are left out),
 * with "warning: " before the message for warnings. Writes at most n bytes
 * including the NUL and returns the length it wanted (as snprintf). */
int sl_manifest_problem_format(const struct sl_manifest_problem *p, char *out, size_t n);
/* The same line, followed by a newline, to f. */
void sl_manifest_problem_print(const struct sl_manifest_problem *p, FILE *f);

/* ---- documents ---------------------------------------------------------- */

/* One non-empty YAML document. Everything is owned by the set; pointers stay
 * valid until the set is freed (the set never moves a document). */
struct sl_manifest_doc {
	const char *file; /* display path; for a tree, relative to its root */
	unsigned index;   /* 0-based index of the document among all YAML
	                   * documents of the file (empty ones counted), as used in
	                   * the sluice.dev/path annotation "file#index" */
	unsigned line;    /* where the document's root node starts */
	unsigned column;
	cJSON *obj; /* the document; owned by the set. To keep it past the
	             * set, use cJSON_Duplicate (never detach or free it). */
	/* Borrowed from obj; NULL when absent or not a string. */
	const char *api_version;
	const char *kind;
	const char *name;
	const char *namespace;                   /* metadata.namespace as written; NULL when unset */
	unsigned n_errors;                       /* errors found on this document (0: valid) */
	struct sl_manifest_positions *positions; /* private: field path -> line:column */
};

/* The position of a field of d, given as a path: keys joined by '.', items
 * as "[N]", keys that hold '.', '[' or ']' written as "[key]"; e.g.
 * "spec.jobTemplateRef.name", "spec.template.spec.containers[0].image",
 * "metadata.annotations[sluice.dev/path]". "" is the document root.
 * The position is the key's for a mapping member and the node's otherwise.
 * Returns 0 and sets *line and *column, or SL_ENOTFOUND. */
int sl_manifest_doc_position(const struct sl_manifest_doc *d, const char *path, unsigned *line,
                             unsigned *column);

/* apiVersion's group: "" for the core group ("v1"), else the part before '/'.
 * Writes into out (n bytes) and returns out. */
const char *sl_manifest_doc_group(const struct sl_manifest_doc *d, char *out, size_t n);

/* ---- a set of documents ------------------------------------------------- */

/* A set of documents loaded from files, directories or buffers, with the
 * problems found while loading and validating. Opaque; one owner; not for
 * use from two threads at once. */
struct sl_manifest_set;

/* A new empty set; limits may be NULL for SL_MANIFEST_LIMITS_INIT (copied).
 * Returns NULL when out of memory. */
struct sl_manifest_set *sl_manifest_set_new(const struct sl_manifest_limits *limits);
/* Frees the set, its documents and problems. Accepts NULL. */
void sl_manifest_set_free(struct sl_manifest_set *s);

/* Adds every *.yaml and *.yml file beneath the directory root, in byte-wise
 * sorted order of their relative paths. Hidden files and directories (name
 * starting with '.') are skipped; a symlink is followed only while it stays
 * beneath root, else that path gets an error. Display paths are relative to
 * root, prefixed with display_prefix + "/" when display_prefix is not NULL.
 * Problems with single files or documents go into the set and do not fail
 * the call. Fails (negative code, detail in err) only when root cannot be
 * read, a set-wide limit is hit, or memory runs out. */
int sl_manifest_set_add_dir(struct sl_manifest_set *s, const char *root, const char *display_prefix,
                            struct sl_error *err);
/* Adds one file; display is the path shown in problems (path when NULL).
 * Fails only when the file cannot be read at all (SL_ENOTFOUND, SL_EIO,
 * SL_ETOOLARGE...): then a problem is recorded as well. */
int sl_manifest_set_add_file(struct sl_manifest_set *s, const char *path, const char *display,
                             struct sl_error *err);
/* Adds a file's content from memory (len bytes, need not be NUL-terminated);
 * name is its display path. For tests, fuzzing and sources that already hold
 * the bytes. Fails only when out of memory or over a set-wide limit. */
int sl_manifest_set_add_buffer(struct sl_manifest_set *s, const char *name, const void *data, size_t len,
                               struct sl_error *err);

/* Validates every document of the set (see "Validation" in design.md):
 * apiVersion, kind, metadata.name/namespace; StreamClass,
 * StreamingJobTemplate and BackfillRequest against the schemas of crds/
 * (built into the binary); streams of kinds the set's StreamClasses
 * register; references between documents. Problems are appended to the set
 * and counted on each document (n_errors). Call once, after all adds.
 * Returns 0, or SL_ENOMEM. */
int sl_manifest_set_validate(struct sl_manifest_set *s);

/* Documents in load order (files sorted, documents in file order). */
size_t sl_manifest_set_doc_count(const struct sl_manifest_set *s);
const struct sl_manifest_doc *sl_manifest_set_doc(const struct sl_manifest_set *s, size_t i);
/* Moves document i's object out of the set (the caller owns it; NULL when
 * taken already), for a caller that would otherwise copy every object of a
 * set it is about to free. The document keeps its file, index, line and
 * error count; its obj, its positions and the strings borrowed from obj are
 * gone, and lookups by kind and name find no document any more. */
cJSON *sl_manifest_set_take_obj(struct sl_manifest_set *s, size_t i);

/* Problems in the order found. */
size_t sl_manifest_set_problem_count(const struct sl_manifest_set *s);
const struct sl_manifest_problem *sl_manifest_set_problem(const struct sl_manifest_set *s, size_t i);
/* Problems of severity error (0: the set is clean). */
size_t sl_manifest_set_error_count(const struct sl_manifest_set *s);

/* Files read, in load order, with their SHA-256 (of the raw bytes). */
struct sl_manifest_file {
	const char *path; /* display path */
	size_t size;
	uint8_t sha256[SL_SHA256_LEN];
	unsigned n_docs; /* non-empty documents loaded from it */
};
size_t sl_manifest_set_file_count(const struct sl_manifest_set *s);
const struct sl_manifest_file *sl_manifest_set_file(const struct sl_manifest_set *s, size_t i);
/* Digest over all files (display path and content digest, in load order):
 * equal digests mean the same paths with the same bytes. Lowercase hex. */
void sl_manifest_set_digest(const struct sl_manifest_set *s, char out[static 65]);

/* The first document (in load order) with this apiVersion group (NULL: any;
 * "" core), kind, namespace (NULL: any; "" matches a document without
 * namespace) and name. NULL when none. Indexed: O(1) per call. */
const struct sl_manifest_doc *sl_manifest_set_find(const struct sl_manifest_set *s, const char *group,
                                                   const char *kind, const char *ns, const char *name);

/* Loads a directory into a new set and validates it: the common case.
 * On success *ret owns the set (check its error count); limits may be NULL. */
int sl_manifest_load_dir(const char *root, const struct sl_manifest_limits *limits,
                         struct sl_manifest_set **ret, struct sl_error *err);

/* ---- YAML to cJSON, one buffer ------------------------------------------ */

/* Parses a buffer holding one or more YAML documents, without a set: calls
 * cb for each non-empty document with its index and root position. cb takes
 * ownership of obj; a negative return from cb stops parsing and is returned.
 * Plain scalars resolve as kubectl (sigs.k8s.io/yaml, go-yaml v2) resolves
 * them, checked against kubectl itself (tests/data/manifest/scalars.tsv):
 * null/~, booleans including y/n/yes/no/on/off, ints with 0x/0o/0b/leading-0
 * octal and underscores, floats; timestamps stay the strings written; .inf
 * and .nan are refused as JSON cannot hold them. Quoted scalars, !!str and
 * custom tags stay strings. Merge keys (<<) follow kubectl: a later entry
 * wins. Unlike kubectl, a duplicate key is an error. An integer beyond
 * +-2^53 keeps its decimal digits in its number node's valuestring as
 * sl_manifest_json_parse (manifest-json.h) keeps them; -0 and -0.0 are 0,
 * as the API server reads kubectl's "-0". Returns 0, or a negative code with
 * the first problem in err ("line:col: field: message"). */
int sl_manifest_parse(const void *data, size_t len, const struct sl_manifest_limits *limits,
                      int (*cb)(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload),
                      void *payload, struct sl_error *err);

/* ---- cJSON to YAML ------------------------------------------------------ */

/* Keys sorted byte-wise at every level (for diffs); else in the tree's order. */
#define SL_MANIFEST_YAML_SORT_KEYS 0x1u

/* Appends v as a YAML block document (no "---") to out; flags are
 * SL_MANIFEST_YAML_* bits. Strings a reader would take as another type
 * (true, no, y, null, ~, 1e3, 0x1F, 2024-01-01, "", ...) or that hold
 * characters with a meaning in YAML are double-quoted, with escapes for
 * control characters and line breaks. Reads back with sl_manifest_parse (and
 * kubectl) as the same JSON value; non-finite numbers are written as null.
 * Used by `sluice plan` and `sluice diff`. Returns 0, SL_ETOOLARGE (out's
 * max, or nesting deeper than 256) or SL_ENOMEM; out may then hold a part. */
int sl_manifest_yaml_write(const cJSON *v, unsigned flags, struct sl_buf *out);

/* True when d is a stream: its apiVersion and kind are those a StreamClass
 * in the set registers (spec.apiGroupRef + "/" + spec.apiVersion, kindRef).
 * The class is returned in *ret_class when not NULL. */
bool sl_manifest_set_is_stream(const struct sl_manifest_set *s, const struct sl_manifest_doc *d,
                               const struct sl_manifest_doc **ret_class);

/* DNS-1123 checks as the API server applies them (exported for other
 * modules building names). */
bool sl_manifest_dns1123_label(const char *s);     /* <= 63, [a-z0-9-], alnum ends */
bool sl_manifest_dns1123_subdomain(const char *s); /* <= 253, labels joined by '.' */
