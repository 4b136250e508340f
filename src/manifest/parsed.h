/* One file's bytes parsed (parsed.c): its documents as the converter gave
 * them and the problems parsing found, before any validation. Immutable once
 * made and reference counted, so that the sets holding its documents and a
 * parse cache share one copy, from any thread. Sits on the converter
 * (yaml-load.h). */
#pragma once

#include "sluice/manifest.h"

#include <stdatomic.h>

struct sl_manifest__parsed_doc {
	unsigned index, line, col; /* as in struct sl_manifest_doc */
	cJSON *obj;
	struct sl_manifest_positions *pos;
};

/* A problem of the file, without its display path (added where the file is
 * added to a set). */
struct sl_manifest__parsed_problem {
	enum sl_manifest_severity severity;
	int code;
	int doc; /* -1: about the file */
	unsigned line, col;
	char *field;
	char *msg;
};

struct sl_manifest__parsed {
	atomic_uint refs;
	uint8_t sha256[SL_SHA256_LEN]; /* of the bytes */
	size_t size;                   /* bytes */
	struct sl_manifest__parsed_doc *docs;
	size_t n_docs, cap_docs;
	struct sl_manifest__parsed_problem *problems;
	size_t n_problems, cap_problems;
};

/* Parses len bytes of data under lim: documents that are no Kubernetes
 * object (no apiVersion and no kind) are left out with a warning, a buffer
 * over lim->max_file_size is not parsed (an error of the file). sha256 is
 * the bytes' digest when the caller has it, else NULL. *ret holds one
 * reference. 0 or SL_ENOMEM. */
int sl_manifest__parse(const void *data, size_t len, const uint8_t *sha256,
                       const struct sl_manifest_limits *lim, struct sl_manifest__parsed **ret);
struct sl_manifest__parsed *sl_manifest__parsed_ref(struct sl_manifest__parsed *p);
/* Accepts NULL. Any thread. */
void sl_manifest__parsed_unref(struct sl_manifest__parsed *p);
