/* kube-watch: the pure parts of a watch stream, usable without a network:
 * framing the byte stream into lines with a maximum, and decoding one line
 * into a watch event. Used by the informer, the unit tests and the fuzzer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "sluice/base.h"

/* Splits a byte stream into newline-terminated lines. Only a partial line is
 * copied (into buf, bounded by max); complete lines inside a chunk are
 * handed out in place. */
struct sl_kube_lines {
	struct sl_buf buf;
	bool overflow; /* a line went over max: the stream must be dropped */
};

void sl_kube_lines_init(struct sl_kube_lines *l, size_t max);
void sl_kube_lines_free(struct sl_kube_lines *l);
void sl_kube_lines_reset(struct sl_kube_lines *l);
/* Feeds n bytes; calls fn for every complete line (without its "\n" or
 * "\r\n"; empty lines skipped). The line is not NUL-terminated and is
 * valid only during the call. fn returning non-zero stops and is returned. Returns SL_ETOOLARGE
 * (and sets overflow) when a line is longer than max; nothing more is
 * accepted until sl_kube_lines_reset. */
int sl_kube_lines_feed(struct sl_kube_lines *l, const char *p, size_t n,
                       int (*fn)(const char *line, size_t len, void *payload), void *payload);

enum sl_kube_event_type {
	SL_KUBE_EVENT_ADDED,
	SL_KUBE_EVENT_MODIFIED,
	SL_KUBE_EVENT_DELETED,
	SL_KUBE_EVENT_BOOKMARK,
	SL_KUBE_EVENT_ERROR,
};

struct sl_kube_event {
	enum sl_kube_event_type type;
	cJSON *object; /* owned by the event: free with sl_kube_event_clear or take it */
	long code;     /* ERROR: the Status code (410 means relist), else 0 */
};

/* Decodes one watch line {"type": ..., "object": {...}} with
 * sl_manifest_json_parse (integers beyond 2^53 keep their digits).
 * SL_EINVALID for anything else (unknown type, no object, object not a JSON
 * object, an ADDED/MODIFIED/DELETED object without metadata.name),
 * SL_ENOMEM. */
int sl_kube_event_parse(const char *line, size_t len, struct sl_kube_event *ret, struct sl_error *err);
void sl_kube_event_clear(struct sl_kube_event *ev);
const char *sl_kube_event_type_name(enum sl_kube_event_type t);
