/* arcane: the resource contract sluice speaks: the Arcane streaming
 * operator's (streaming.sneaksanddata.com/v1: labels, annotations, env,
 * phases, how a stream's spec is laid out in layout versions v0, v1 and v2
 * and which backend runs it) and sluice's own additions (sluice.dev
 * annotations, field managers). One copy, included by validation, sync, the
 * Job builder and the controller. Pure: cJSON in, plain structs out. */
#pragma once

#include "sluice/base.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

#define SL_ARCANE_GROUP       "streaming.sneaksanddata.com"
#define SL_ARCANE_API_VERSION "streaming.sneaksanddata.com/v1"

/* Labels of every workload (Job, CronJob) of a stream. The Arcane operator
 * sets the arcane/ labels; sluice adds streamId and managed-by. */
#define SL_ARCANE_LABEL_STREAM_ID   "streamId"
#define SL_ARCANE_LABEL_ID          "arcane/stream-id"
#define SL_ARCANE_LABEL_KIND        "arcane/stream-kind"
#define SL_ARCANE_LABEL_BACKFILLING "arcane/backfilling"
#define SL_ARCANE_LABEL_MANAGED_BY  "app.kubernetes.io/managed-by"
#define SL_ARCANE_MANAGED_BY        "sluice"

/* Arcane's: md5 of STREAMCONTEXT__SPEC on a workload. */
#define SL_ARCANE_ANN_CONFIG_HASH "configuration-hash"
/* sluice's: the template a workload was built from (SHA-256 hex of the
 * template's spec as canonical JSON), so that a template edit restarts. */
#define SL_ARCANE_ANN_TEMPLATE_HASH "sluice.dev/template-hash"
/* sluice's: which BackfillRequest a backfill Job runs (no env parsing). */
#define SL_ARCANE_ANN_BACKFILL_REQUEST "sluice.dev/backfill-request"
/* sluice's: the restart memory kept on a stream (see sl_stream_memory). */
#define SL_ARCANE_ANN_RESTARTS "sluice.dev/restarts"
/* sluice's, on everything sync applies: the source id, the file path and
 * document index, the revision; and the opt-out from prune. */
#define SL_ARCANE_ANN_SOURCE   "sluice.dev/source"
#define SL_ARCANE_ANN_PATH     "sluice.dev/path"
#define SL_ARCANE_ANN_REVISION "sluice.dev/revision"
#define SL_ARCANE_ANN_PRUNE    "sluice.dev/prune"

/* Field managers: sync applies as one, the controller writes as the other
 * (a shard's controller as "sluice-controller/<shard>"). */
#define SL_ARCANE_FIELD_MANAGER_SYNC       "sluice"
#define SL_ARCANE_FIELD_MANAGER_CONTROLLER "sluice-controller"

/* sluice's: the shard a stream belongs to (as Flux's sharding.fluxcd.io/key).
 * A controller started with --shard NAME handles the streams labelled
 * sluice.dev/shard=NAME, and their Jobs, CronJobs and BackfillRequests
 * labelled alike; the default controller those without the label. The Job
 * builder copies the label from a stream onto what it builds. */
#define SL_ARCANE_LABEL_SHARD "sluice.dev/shard"
/* Longest shard name: a label value, and a suffix of Lease names. */
#define SL_ARCANE_SHARD_MAX 63

/* The env every container of a stream's workload gets. */
#define SL_ARCANE_ENV_STREAM_ID   "STREAMCONTEXT__STREAM_ID"
#define SL_ARCANE_ENV_STREAM_KIND "STREAMCONTEXT__STREAM_KIND"
#define SL_ARCANE_ENV_SPEC        "STREAMCONTEXT__SPEC"
#define SL_ARCANE_ENV_BACKFILL    "STREAMCONTEXT__BACKFILL"
#define SL_ARCANE_ENV_BACKFILL_ID "STREAMCONTEXT__BACKFILL_ID"
#define SL_ARCANE_ENV_OVERRIDE    "STREAMCONTEXT__OVERRIDE"

/* status.phase of a stream. */
#define SL_ARCANE_PHASE_PENDING     "Pending"
#define SL_ARCANE_PHASE_BACKFILLING "Backfilling"
#define SL_ARCANE_PHASE_RUNNING     "Running"
#define SL_ARCANE_PHASE_SUSPENDED   "Suspended"
#define SL_ARCANE_PHASE_FAILED      "Failed"
#define SL_ARCANE_PHASE_SCHEDULED   "Scheduled"

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

/* ---- shards ---------------------------------------------------------------- */

/* A shard name is a DNS label (RFC 1123: lowercase letters, digits and '-',
 * starting and ending with a letter or digit, at most SL_ARCANE_SHARD_MAX):
 * it is a label value, and also a suffix of Lease and field manager names.
 * 0, or SL_EINVALID with the reason in err. */
int sl_arcane_shard_check(const char *name, struct sl_error *err);
/* The label selector of the objects of shard name: "sluice.dev/shard=NAME",
 * or for NULL (the default shard) "!sluice.dev/shard". 0, or SL_ETOOLARGE
 * when it does not fit in n bytes. */
int sl_arcane_shard_selector(const char *name, char *out, size_t n);
/* The shard an object belongs to: its sluice.dev/shard label, or NULL for
 * the default shard (no such label). Borrowed from obj. */
const char *sl_arcane_shard_of(const cJSON *obj);
/* obj belongs to shard name (NULL: the default shard). */
bool sl_arcane_shard_is(const cJSON *obj, const char *name);

/* The layout version name for messages: "v0", "v1", "v2". */
const char *sl_arcane_layout_name(int version);
