/* stream: the Job builder and the decide() state machine of a stream.
 * Everything here is pure: no I/O, no clock, no globals. The controller
 * (src/controller) observes the cluster, calls sl_stream_decide() and
 * performs the actions it returns. */
#pragma once

#include "sluice/arcane.h"
#include "sluice/base.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The names of the resource contract are in sluice/arcane.h. */

/* The one condition type decide() maintains on a stream: True only while the
 * Job the stream should run exists, is active and is up to date. Its reason
 * says why not otherwise (see decide.c for the list). */
#define SL_STREAM_CONDITION_READY "Ready"

/* Kubernetes names: a DNS-1123 label is at most 63 bytes, a subdomain 253. */
#define SL_STREAM_NAME_MAX 253

/* ---- small helpers -------------------------------------------------------- */

/* name, cut to fit max bytes: when longer, the first max-9 bytes (trailing
 * '-' and '.' removed) + "-" + 8 hex digits of SHA-256(name). out must hold
 * max+1 bytes; max >= 16. Used for Job names and label values (max 63). */
void sl_stream_name_fit(const char *name, size_t max, char *out);

/* The Job name for stream `stream`: the name itself, or name + "-backfill",
 * fitted to 63 bytes. out holds 64 bytes. */
void sl_stream_job_name(const char *stream, bool backfill, char out[static 64]);

/* The CronJob name of a batch stream: the name, fitted to 52 bytes (the
 * CronJob controller appends 11 to name its Jobs). out holds 64 bytes. */
void sl_stream_cronjob_name(const char *stream, char out[static 64]);

/* The name of the initial BackfillRequest of a stream:
 * "<stream>-initial-backfill-<8 hex of SHA-256(uid)>", fitted to 253 bytes.
 * Deterministic from the uid: a retry after a crash names the same object,
 * so its create answers AlreadyExists instead of making a second one. */
void sl_stream_initial_backfill_name(const char *stream, const char *uid,
                                     char out[static SL_STREAM_NAME_MAX + 1]);

/* JSON of v as the API server's Go code writes the object (Go's
 * encoding/json.Marshal: keys sorted byte-wise at every level, no spaces,
 * Go's string escapes and number format; see sl_manifest_json_go), "null"
 * for NULL: the SPEC a job sees is what Go would print. Returns a malloc'ed
 * string (caller frees) or NULL when out of memory. */
char *sl_stream_canonical_json(const cJSON *v);

/* ---- Job builder ---------------------------------------------------------- */

/* Inputs of the builder. All borrowed; none is modified. */
struct sl_stream_job_input {
	const cJSON *stream;       /* the stream: apiVersion, kind, metadata (name,
	                            * namespace, uid), spec */
	const cJSON *stream_class; /* its StreamClass (spec.secretRefs is read) */
	const cJSON *tmpl;         /* the StreamingJobTemplate to build from: the
	                            * streaming one, or the backfill one when
	                            * backfill is set */
	const cJSON *backfill;     /* the BackfillRequest for a backfill Job, else NULL */
	/* SL_STREAM_JOB_BATCH: the Job template of a CronJob (backfill must be
	 * NULL); otherwise the mode follows from backfill. */
	bool batch;
};

/* What a Job built from the input runs as. */
enum sl_stream_job_mode {
	SL_STREAM_JOB_STREAMING, /* the streaming Job (Job backend) */
	SL_STREAM_JOB_BACKFILL,  /* the backfill Job of in->backfill */
	SL_STREAM_JOB_BATCH,     /* the Job template of the CronJob backend */
};

#define SL_STREAM_HASH_MAX 160 /* configuration-hash, NUL included */

/* The configuration-hash annotation of a Job or CronJob, as the Arcane
 * operator computes it: lowercase hex MD5 of the STREAMCONTEXT__SPEC value
 * (streaming Job, CronJob); for a backfill Job (backfill non-NULL)
 * hex(md5hex(SPEC)) ":" hex(md5hex(OVERRIDE)). */
int sl_stream_config_hash(const cJSON *stream, const cJSON *backfill, char out[static SL_STREAM_HASH_MAX],
                          struct sl_error *err);
/* The sluice.dev/template-hash annotation for a template (65 bytes). */
int sl_stream_template_hash(const cJSON *tmpl, char out[static 65], struct sl_error *err);

/* status.configurationHash as sluice writes it: the workload's
 * configuration-hash, "/", and the first 12 hex digits of its template
 * hash. It identifies spec, request and template at once, so a Failed
 * stream is recognised as "this configuration failed" from what every
 * plugin CRD keeps in status. out holds SL_STREAM_HASH_MAX + 16 bytes. */
#define SL_STREAM_STATUS_HASH_MAX (SL_STREAM_HASH_MAX + 16)
int sl_stream_status_hash(const cJSON *stream, const cJSON *tmpl, const cJSON *backfill,
                          char out[static SL_STREAM_STATUS_HASH_MAX], struct sl_error *err);

/* Builds the Job of design.md "Resource contract" (name, namespace, labels,
 * configuration-hash, STREAMCONTEXT__* env on every container of
 * spec.template.spec.containers - not initContainers -, secrets, the
 * controlling ownerReference). Template shapes accepted: a Job spec in
 * spec (spec.template.spec.containers), Arcane's spec.template holding a
 * whole Job (with labels/annotations in spec.metadata), and a whole Job in
 * spec (spec.apiVersion/kind/metadata/spec).
 * On success *ret_job is a new tree the caller frees with cJSON_Delete.
 * Errors: SL_EINVALID with a message for the stream's status (template
 * without a Job, a container already setting STREAMCONTEXT__STREAM_ID or
 * STREAMCONTEXT__STREAM_KIND, a missing secret reference, a stream without
 * name/namespace/uid/kind/apiVersion); SL_ENOMEM. */
int sl_stream_job_build(const struct sl_stream_job_input *in, cJSON **ret_job, struct sl_error *err);

/* The configuration-hash and template-hash annotations sl_stream_job_build
 * would give the Job of in, without building it (a few microseconds instead
 * of tens). It fails as the build would on the stream's identity and on
 * its secret references (the StreamClass may have changed since a Job was
 * built), but it does not check the template: it is for a caller that
 * compares the result with a Job built before, whose template-hash vouches
 * for a template that built. */
int sl_stream_job_hashes(const struct sl_stream_job_input *in, char hash[static SL_STREAM_HASH_MAX],
                         char thash[static 65], struct sl_error *err);

/* Builds the CronJob of a batch stream: name sl_stream_cronjob_name(S), the
 * stream's labels on it and on its jobTemplate (so `kubectl get jobs -l
 * arcane/stream-id=S` finds its runs), configuration-hash and template-hash
 * annotations, the controlling ownerReference, spec.schedule,
 * concurrencyPolicy Forbid, spec.suspend = suspend, and the Job of
 * sl_stream_job_build with in->batch set (env STREAMCONTEXT__BACKFILL=true,
 * STREAMCONTEXT__BACKFILL_ID from the pod's job-name label, as the Arcane
 * operator sets them). Same errors as sl_stream_job_build. */
int sl_stream_cronjob_build(const struct sl_stream_job_input *in, const char *schedule, bool suspend,
                            cJSON **ret, struct sl_error *err);

/* ---- decide() ------------------------------------------------------------- */

/* What the controller keeps per stream across restarts to pace restarts of a
 * streaming Job that keeps finishing. Stored on the stream as the annotation
 * SL_ARCANE_ANN_RESTARTS = "<count>/<not-before RFC 3339>/<job uid>" and
 * written by the SL_STREAM_ACT_WRITE_MEMORY action; decide() reads it from
 * the stream itself. */
struct sl_stream_memory {
	unsigned restarts;  /* consecutive finishes counted for the backoff */
	int64_t not_before; /* epoch seconds: no new streaming Job before this */
	char job_uid[64];   /* uid of the finished Job these values account for */
};

/* Parses the annotation of stream into *ret; an absent or malformed value
 * gives a zeroed memory (and returns 0: the worst case is a shorter wait). */
int sl_stream_memory_get(const cJSON *stream, struct sl_stream_memory *ret);

/* Everything observed about one stream. All borrowed. */
struct sl_stream_observed {
	const cJSON *stream;       /* required; metadata.deletionTimestamp honoured */
	const cJSON *stream_class; /* NULL: the class is gone (nothing is touched) */
	/* Templates resolved from the stream's layout (sl_arcane_layout_read):
	 * tmpl is the template of its backend (the streaming Job's, or the
	 * CronJob's job template for a batch stream), backfill_tmpl the backfill
	 * Job's; NULL when the object does not exist or no ref is set. */
	const cJSON *tmpl;
	const cJSON *backfill_tmpl;
	/* BackfillRequests of this stream: same namespace, spec.streamId equal
	 * to the stream name and spec.streamClass equal to the class name;
	 * pending and completed, any order. */
	const cJSON *const *backfills;
	size_t n_backfills;
	/* The live Jobs named sl_stream_job_name(S, false) and (S, true), or
	 * NULL. A Job with metadata.deletionTimestamp still counts as existing. */
	const cJSON *streaming_job;
	const cJSON *backfill_job;
	/* The live CronJob named sl_stream_cronjob_name(S), or NULL. */
	const cJSON *cronjob;
	/* The last state of a Job of that name seen in a DELETED watch event
	 * while no Job of that name exists now, or NULL. The controller keeps it
	 * until a Job of that name appears again. It is how a backfill Job that
	 * ttlSecondsAfterFinished removed right after succeeding still completes
	 * its BackfillRequest, and how a streaming Job that finished and was
	 * removed still counts for the backoff. */
	const cJSON *streaming_job_gone;
	const cJSON *backfill_job_gone;
	/* Why the API server refused the last write the controller made for
	 * this stream ("<action> <object> failed: <reason>": a webhook, RBAC,
	 * validation), or NULL. Until the controller's writes go through
	 * again, the Ready condition says so (reason ReconcileError, this
	 * message; the phase stays) and a Warning Event tells it once. */
	const char *write_error;
	int64_t now; /* wall clock, epoch seconds */
};

enum sl_stream_action_type {
	/* Create object (a Job) in ns. AlreadyExists counts as done. */
	SL_STREAM_ACT_CREATE_JOB,
	/* Delete Job name in ns with propagationPolicy Foreground (Background
	 * when `background`) and, when uid is not "", preconditions.uid = uid.
	 * NotFound counts as done. */
	SL_STREAM_ACT_DELETE_JOB,
	/* Create object (the initial BackfillRequest, owned by the stream).
	 * AlreadyExists counts as done (its name is deterministic). */
	SL_STREAM_ACT_CREATE_BACKFILL,
	/* Complete BackfillRequest name in ns: JSON merge patch `object`
	 * ({"spec":{"completed":true}}) on the resource; the rest of its spec
	 * (payload included) stays, and its status is not written (the CRD's
	 * status.phase enum has no value for "completed").
	 * ref is the observed BackfillRequest (for the write-back hook: it came
	 * from a source when it has the sluice.dev/path annotation). */
	SL_STREAM_ACT_COMPLETE_BACKFILL,
	/* Delete BackfillRequest name in ns (the stream's own, on deletion). */
	SL_STREAM_ACT_DELETE_BACKFILL,
	/* Server-side apply `object` (the stream's CronJob), force. */
	SL_STREAM_ACT_APPLY_CRONJOB,
	/* JSON merge patch `object` ({"spec":{"suspend":B}}) on CronJob name. */
	SL_STREAM_ACT_PATCH_CRONJOB,
	/* Delete CronJob name in ns (background propagation, uid precondition
	 * as for a Job). NotFound counts as done. */
	SL_STREAM_ACT_DELETE_CRONJOB,
	/* JSON merge patch `status` ({"status":{...}}) on the stream's status
	 * subresource. Fields decide() does not own are absent; fields it owns
	 * but clears are JSON null, so a merge patch removes them. */
	SL_STREAM_ACT_WRITE_STATUS,
	/* JSON merge patch `object` ({"metadata":{"annotations":{...}}}) on the
	 * stream: the restart memory. */
	SL_STREAM_ACT_WRITE_MEMORY,
	/* Emit an Event about the stream: event_type "Normal" or "Warning",
	 * reason, message. Best effort. */
	SL_STREAM_ACT_EVENT,
	/* Call decide() again for this stream after requeue_ms, even when
	 * nothing is observed to change (a backoff, a fallback while waiting). */
	SL_STREAM_ACT_REQUEUE,
};

struct sl_stream_action {
	enum sl_stream_action_type type;
	char name[SL_STREAM_NAME_MAX + 1]; /* target object name ("" when n/a) */
	char ns[64];                       /* target namespace */
	char uid[64];                      /* DELETE_JOB precondition, "" when none */
	cJSON *object;                     /* owned by the decision (see types) */
	cJSON *status;                     /* owned by the decision (see types) */
	const cJSON *ref;                  /* borrowed from the observation */
	/* DELETE_JOB: the Job has finished (no pod of it runs), so it goes
	 * with background propagation and nothing waits for its removal. */
	bool background;
	const char *event_type; /* static string */
	const char *reason;     /* static string */
	char *message;          /* owned by the decision */
	uint64_t requeue_ms;
};

/* The result of one decide() call: actions to perform in this order (the
 * order is what makes a crash between any two of them safe). */
struct sl_stream_decision {
	struct sl_stream_action *actions;
	size_t n_actions;
	size_t cap;
	/* For logs and tests: the phase and Ready reason decide() settled on
	 * (static strings; "" when the stream is being deleted). */
	const char *phase;
	const char *reason;
};

#define SL_STREAM_DECISION_INIT \
	{                       \
		0               \
	}

/* Frees what the decision owns and zeroes it. Accepts a zeroed decision. */
void sl_stream_decision_free(struct sl_stream_decision *d);

/* The state machine of design.md "Stream state machine". Pure: the same
 * observation gives the same decision, and applying any prefix of the
 * actions and calling it again gives no duplicate Job, BackfillRequest or
 * completion (see the comment at the top of decide.c). A converged stream
 * gives no actions at all. *out must be zeroed (SL_STREAM_DECISION_INIT);
 * on failure it is left empty. Errors: SL_EINVALID (a stream without
 * metadata.name/namespace/uid), SL_ENOMEM. Problems of the stream itself
 * (missing template, bad secret reference) are not errors: they become a
 * Failed status and a Warning event. */
int sl_stream_decide(const struct sl_stream_observed *in, struct sl_stream_decision *out,
                     struct sl_error *err);

/* Short name of an action type, for logs ("create-job", ...). */
const char *sl_stream_action_name(enum sl_stream_action_type t);
