/* The YAML -> cJSON converter of one buffer (yaml.c), as the loader
 * (load.c) drives it: documents and problems come back through callbacks,
 * so the converter knows nothing of sets. */
#pragma once

#include "sluice/manifest.h"

/* A problem found while parsing one buffer. */
struct sl_manifest__yaml_problem {
	int code;
	int doc; /* -1: about the stream */
	unsigned line, col;
	const char *field;
	const char *msg;
};

/* A parsed non-empty document; the callee takes obj and pos. */
struct sl_manifest__yaml_doc {
	unsigned index, line, col;
	cJSON *obj;
	struct sl_manifest_positions *pos; /* NULL unless positions were wanted */
};

struct sl_manifest__yaml_callbacks {
	int (*doc)(struct sl_manifest__yaml_doc *d, void *payload);               /* < 0 stops */
	int (*problem)(const struct sl_manifest__yaml_problem *p, void *payload); /* < 0 stops */
	void *payload;
};

/* Parses every document of data; problems of single documents are reported
 * and parsing goes on with the next one; a syntax error ends the stream.
 * Returns 0, SL_ENOMEM, or the negative value a callback returned. */
int sl_manifest__yaml_load(const void *data, size_t len, const struct sl_manifest_limits *lim,
                           bool want_positions, const struct sl_manifest__yaml_callbacks *cb);
