/* arcane: the resource contract of the Arcane streaming operator
 * (streaming.sneaksanddata.com/v1) that sluice speaks: how a stream's spec is
 * laid out (layout versions v0, v1 and v2) and which backend runs it.
 * Pure: cJSON in, plain structs out; no I/O. Used by offline validation
 * (manifest), `sluice plan` and the controller's decide(). */
#pragma once

#include "sluice/base.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

#define SL_ARCANE_GROUP       "streaming.sneaksanddata.com"
#define SL_ARCANE_API_VERSION "streaming.sneaksanddata.com/v1"

/* Which workload runs a stream. */
enum sl_arcane_backend {
	SL_ARCANE_BACKEND_NONE, /* the spec names no usable backend */
	SL_ARCANE_BACKEND_JOB,  /* a streaming Job (v0; changeCapture in v1/v2) */
	SL_ARCANE_BACKEND_CRON, /* a CronJob (streamingBackend.batch) */
};

/* A reference to a StreamingJobTemplate as a layout gives it. Strings are
 * borrowed from the stream (or point at its namespace). */
struct sl_arcane_ref {
	const char *name; /* NULL: no reference */
	const char *ns;   /* the namespace sluice looks the template up in */
	/* The reference had no namespace of its own. For v0 the stream's (or,
	 * for the backfill ref, jobTemplateRef's) namespace is the documented
	 * default; for v1/v2 the Arcane operator would look the template up in
	 * namespace "" and fail, so sluice's choice is reported by `sluice plan`. */
	bool ns_defaulted;
	char field[96]; /* the ref's path in the spec, for messages */
};

struct sl_arcane_layout {
	int version; /* 0, 1 or 2 */
	bool suspended;
	char suspended_field[40]; /* "spec.suspended" or "spec.execution.suspended" */
	enum sl_arcane_backend backend;
	struct sl_arcane_ref streaming; /* Job backend template (name NULL for CRON/NONE) */
	struct sl_arcane_ref batch;     /* CronJob backend template */
	const char *schedule;           /* CronJob schedule */
	struct sl_arcane_ref backfill;  /* backfill Job template; name NULL: none */
	/* On error: the path of the field at fault ("spec.execution.layoutVersion"),
	 * and err->msg is "<path>: <reason>". */
	char error_field[128];
};

/* Reads the layout of stream (apiVersion, kind, metadata.namespace, spec)
 * as spec.execution.layoutVersion says: absent or "" = v0, "v1", "v2".
 * Errors, with a message naming the field, that belong on the stream's
 * status: SL_EINVALID for an unknown layout version, a field of the wrong
 * type, or a spec with no usable backend (v1/v2 without changeCapture or
 * batch, a batch without schedule or jobTemplateRef, v0 without
 * spec.jobTemplateRef). *ret is filled as far as it could be read, also on
 * error (version and suspended are valid when the version was). */
int sl_arcane_layout_read(const cJSON *stream, struct sl_arcane_layout *ret, struct sl_error *err);

/* The layout version name for messages: "v0", "v1", "v2". */
const char *sl_arcane_layout_name(int version);
