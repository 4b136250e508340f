/* decide(): the stream state machine of design.md, as a pure function from
 * what is observed about one stream to the actions that move it on.
 *
 * How it stays correct across crashes: decide() computes the desired state
 * (which Job should exist, which BackfillRequests are done, the status) from
 * the observation alone and returns the difference, in an order where every
 * write records what a later write would destroy:
 *   complete BackfillRequests, create the initial BackfillRequest, write
 *   status, write the restart memory, delete Jobs, create a Job, delete
 *   BackfillRequests, emit an Event, requeue.
 * (The Event of a status that records a failed write comes right after
 * that status: the writes after it may fail again.)
 * So a crash after any prefix leaves a state from which decide() asks for
 * the rest and nothing twice: a completion is written before the Job that
 * proves it is deleted; a failure is written to status before the failed
 * Job goes; a finished streaming Job is counted in the memory (by its uid)
 * before it goes; a Job is created only when no Job of the stream exists
 * (at most one of the two, and a create of an existing name answers
 * AlreadyExists); the initial BackfillRequest has a name derived from the
 * stream uid. Messages hold no clock reading except absolute times taken from
 * the observation, so a converged stream gives no actions at all.
 *
 * Choices the design leaves open:
 * - The initial BackfillRequest is created on the first decision about a
 *   stream with a backfill template (status.phase unset) that is not
 *   suspended, and its backfill Job in the same decision (built from the
 *   request as created, not waiting to observe it).
 * - A missing template or a Job that cannot be built (bad secret reference,
 *   template setting STREAMCONTEXT__STREAM_ID/KIND) is Failed with reason
 *   TemplateNotFound or InvalidJob; a Job already running is left alone (a
 *   template briefly absent during a sync must not stop a stream), and the
 *   stream is evaluated afresh on every change (not sticky).
 * - A Job failure is sticky: Failed with reason JobFailed until the
 *   configuration-hash of that Job changes or the stream is suspended.
 * - A BackfillRequest of a stream without spec.backfillJobTemplateRef is
 *   ignored (left pending).
 * - A write the controller could not make (observed as write_error) turns
 *   Ready False with reason ReconcileError and the write's error as its
 *   message; the phase is the one the state machine reached. The next
 *   decision without it puts the condition back.
 * - A backfill Job that vanished without a final state seen (no DELETED
 *   event kept, e.g. the controller was down through its whole life) is
 *   treated as deleted by hand: its BackfillRequest is still pending, so it
 *   runs again (at least once; a completion is never invented).
 */
#include "sluice/manifest-json.h"
#include "sluice/stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BACKOFF_BASE_S     10
#define BACKOFF_MAX_S      600
#define LONG_RUN_S         600 /* a run this long resets the restart count */
#define WAIT_FALLBACK_MS   30000
#define MAX_BACKFILLS_SEEN 4096

/* Ready condition reasons. */
#define R_RUNNING        "Running"
#define R_BACKFILLING    "Backfilling"
#define R_SUSPENDED      "Suspended"
#define R_WAIT_DELETION  "WaitingForJobDeletion"
#define R_CONFIG_CHANGED "ConfigurationChanged"
#define R_RESTARTING     "Restarting"
#define R_JOB_FAILED     "JobFailed"
#define R_NO_TEMPLATE    "TemplateNotFound"
#define R_INVALID_JOB    "InvalidJob"
#define R_NAME_TAKEN     "JobNameTaken"
#define R_INVALID_SPEC   "InvalidSpec"
#define R_SCHEDULED      "Scheduled"
#define R_RECONCILE_ERR  "ReconcileError"

/* ---- small JSON readers ---------------------------------------------------- */

static bool deleting(const cJSON *o)
{
	return sl_manifest_md_str(o, "deletionTimestamp") != NULL;
}

static bool owned_by(const cJSON *o, const char *uid)
{
	const cJSON *r;

	cJSON_ArrayForEach(
	    r, cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(o, "metadata"), "ownerReferences"))
	{
		const char *u = sl_manifest_str(r, "uid");
		if (u && strcmp(u, uid) == 0)
			return true;
	}
	return false;
}

static int64_t time_at(const cJSON *o, const char *key, int64_t fallback)
{
	const char *s = sl_manifest_str(o, key);
	int64_t t;

	return s && sl_time_parse_rfc3339(s, &t) == 0 ? t : fallback;
}

/* ---- Jobs --------------------------------------------------------------------- */

enum jstate { J_ACTIVE, J_SUCCEEDED, J_FAILED };

static enum jstate job_state(const cJSON *job, const cJSON **ret_cond)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(job, "status"), "conditions"))
	{
		const char *type = sl_manifest_str(c, "type"), *st = sl_manifest_str(c, "status");
		if (!type || !st || strcmp(st, "True") != 0)
			continue;
		if (strcmp(type, "Complete") == 0 || strcmp(type, "SuccessCriteriaMet") == 0)
			return J_SUCCEEDED;
		if (strcmp(type, "Failed") == 0 || strcmp(type, "FailureTarget") == 0) {
			if (ret_cond)
				*ret_cond = c;
			return J_FAILED;
		}
	}
	return J_ACTIVE;
}

/* The BackfillRequest a backfill Job runs: our annotation, else its env. */
static const char *job_backfill_request(const cJSON *job)
{
	const char *a = sl_manifest_annotation(job, SL_ARCANE_ANN_BACKFILL_REQUEST);
	const cJSON *ctr, *e;

	if (a)
		return a;
	ctr = cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(
	        sl_manifest_obj(sl_manifest_obj(sl_manifest_obj(job, "spec"), "template"), "spec"),
	        "containers"),
	    0);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(ctr, "env"))
	{
		const char *n = sl_manifest_str(e, "name");
		if (n && strcmp(n, SL_ARCANE_ENV_BACKFILL_ID) == 0)
			return sl_manifest_str(e, "value");
	}
	return NULL;
}

/* ---- restart memory ----------------------------------------------------------- */

int sl_stream_memory_get(const cJSON *stream, struct sl_stream_memory *ret)
{
	const char *s = sl_manifest_annotation(stream, SL_ARCANE_ANN_RESTARTS);
	struct sl_stream_memory m = {0};
	char when[40], uid[64];
	unsigned n;

	if (s && sscanf(s, "%u/%39[^/]/%63s", &n, when, uid) == 3 &&
	    sl_time_parse_rfc3339(when, &m.not_before) == 0) {
		m.restarts = n;
		snprintf(m.job_uid, sizeof(m.job_uid), "%s", uid);
	} else {
		m.not_before = 0;
	}
	*ret = m;
	return 0;
}

static int64_t backoff_s(unsigned n)
{
	int64_t d = BACKOFF_BASE_S;

	for (unsigned i = 0; i < n && d < BACKOFF_MAX_S; i++)
		d *= 2;
	return SL_MIN(d, (int64_t)BACKOFF_MAX_S);
}

/* ---- the decision being built ------------------------------------------------- */

enum target { T_NONE, T_STREAMING, T_BACKFILL };

struct plan {
	/* result of the analysis */
	const char *phase, *reason;
	char message[512];
	bool ready;
	const char *job_name; /* status.jobName, NULL to clear */
	char job_name_buf[64];
	const char *hash; /* status.configurationHash, NULL to clear */
	char hash_buf[SL_STREAM_STATUS_HASH_MAX];
	const char *bfr; /* status.backfillRequest, NULL to clear */
	char bfr_buf[SL_STREAM_NAME_MAX + 1];
	uint64_t requeue_ms;
	bool leave_status; /* write nothing (class gone) */
	/* actions, emitted in the fixed order at the end */
	const cJSON *complete[8];
	size_t n_complete;
	cJSON *create_bfr;
	char create_bfr_name[SL_STREAM_NAME_MAX + 1];
	bool memory_set;
	struct sl_stream_memory memory;
	const cJSON *delete_jobs[2];
	size_t n_delete_jobs;
	cJSON *create_job;
	const cJSON *delete_bfrs[MAX_BACKFILLS_SEEN];
	size_t n_delete_bfrs;
	cJSON *apply_cron;         /* the CronJob to create or update */
	const cJSON *suspend_cron; /* the live CronJob to pause */
	const cJSON *delete_cron;  /* the live CronJob to delete */
};

static struct sl_stream_action *push(struct sl_stream_decision *d, enum sl_stream_action_type t)
{
	if (SL_GROW(d->actions, d->cap, d->n_actions + 1, 8) < 0)
		return NULL;
	struct sl_stream_action *a = &d->actions[d->n_actions++];
	memset(a, 0, sizeof(*a));
	a->type = t;
	return a;
}

void sl_stream_decision_free(struct sl_stream_decision *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_actions; i++) {
		cJSON_Delete(d->actions[i].object);
		cJSON_Delete(d->actions[i].status);
		free(d->actions[i].message);
	}
	free(d->actions);
	memset(d, 0, sizeof(*d));
}

const char *sl_stream_action_name(enum sl_stream_action_type t)
{
	switch (t) {
	case SL_STREAM_ACT_CREATE_JOB:
		return "create-job";
	case SL_STREAM_ACT_DELETE_JOB:
		return "delete-job";
	case SL_STREAM_ACT_CREATE_BACKFILL:
		return "create-backfill";
	case SL_STREAM_ACT_COMPLETE_BACKFILL:
		return "complete-backfill";
	case SL_STREAM_ACT_DELETE_BACKFILL:
		return "delete-backfill";
	case SL_STREAM_ACT_APPLY_CRONJOB:
		return "apply-cronjob";
	case SL_STREAM_ACT_PATCH_CRONJOB:
		return "suspend-cronjob";
	case SL_STREAM_ACT_DELETE_CRONJOB:
		return "delete-cronjob";
	case SL_STREAM_ACT_WRITE_STATUS:
		return "write-status";
	case SL_STREAM_ACT_WRITE_MEMORY:
		return "write-memory";
	case SL_STREAM_ACT_EVENT:
		return "event";
	case SL_STREAM_ACT_REQUEUE:
		return "requeue";
	}
	return "unknown";
}

/* ---- BackfillRequests --------------------------------------------------------- */

static bool bfr_completed(const cJSON *b)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(b, "spec"), "completed"));
}

/* Oldest first: creationTimestamp, then name, so the order is total. */
static bool bfr_older(const cJSON *a, const cJSON *b)
{
	int64_t ta = time_at(sl_manifest_obj(a, "metadata"), "creationTimestamp", INT64_MAX);
	int64_t tb = time_at(sl_manifest_obj(b, "metadata"), "creationTimestamp", INT64_MAX);

	if (ta != tb)
		return ta < tb;
	return strcmp(sl_manifest_md_str(a, "name") ? sl_manifest_md_str(a, "name") : "",
	              sl_manifest_md_str(b, "name") ? sl_manifest_md_str(b, "name") : "") < 0;
}

static bool in_list(const cJSON *const *l, size_t n, const cJSON *o)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] == o)
			return true;
	return false;
}

/* The pending BackfillRequest named name (not completed, not completed by
 * this decision, not being deleted), or NULL. */
static const cJSON *pending_named(const struct sl_stream_observed *in, const struct plan *p, const char *name)
{
	for (size_t i = 0; name && i < in->n_backfills; i++) {
		const cJSON *b = in->backfills[i];
		const char *n = sl_manifest_md_str(b, "name");
		if (n && strcmp(n, name) == 0 && !bfr_completed(b) && !deleting(b) &&
		    !in_list(p->complete, p->n_complete, b))
			return b;
	}
	return NULL;
}

static const cJSON *oldest_pending(const struct sl_stream_observed *in, const struct plan *p)
{
	const cJSON *best = NULL;

	for (size_t i = 0; i < in->n_backfills; i++) {
		const cJSON *b = in->backfills[i];
		if (bfr_completed(b) || deleting(b) || in_list(p->complete, p->n_complete, b))
			continue;
		if (!best || bfr_older(b, best))
			best = b;
	}
	return best;
}

/* The initial BackfillRequest carries the stream's shard label: the
 * BackfillRequest informer of that shard selects on it. */
static cJSON *initial_backfill(const cJSON *stream, const cJSON *cls, const char *name)
{
	const char *sname = sl_manifest_md_str(stream, "name"), *ns = sl_manifest_md_str(stream, "namespace");
	const char *shard = sl_arcane_shard_of(stream);
	cJSON *b = cJSON_CreateObject(), *md, *l, *refs, *o, *spec;
	bool ok =
	    b && cJSON_AddStringToObject(b, "apiVersion", SL_ARCANE_API_VERSION) &&
	    cJSON_AddStringToObject(b, "kind", "BackfillRequest") &&
	    (md = cJSON_AddObjectToObject(b, "metadata")) && cJSON_AddStringToObject(md, "name", name) &&
	    cJSON_AddStringToObject(md, "namespace", ns) && (l = cJSON_AddObjectToObject(md, "labels")) &&
	    cJSON_AddStringToObject(l, SL_ARCANE_LABEL_MANAGED_BY, SL_ARCANE_MANAGED_BY) &&
	    (!shard || cJSON_AddStringToObject(l, SL_ARCANE_LABEL_SHARD, shard)) &&
	    (refs = cJSON_AddArrayToObject(md, "ownerReferences")) && (o = cJSON_CreateObject()) &&
	    cJSON_AddItemToArray(refs, o) &&
	    cJSON_AddStringToObject(o, "apiVersion", sl_manifest_str(stream, "apiVersion")) &&
	    cJSON_AddStringToObject(o, "kind", sl_manifest_str(stream, "kind")) &&
	    cJSON_AddStringToObject(o, "name", sname) &&
	    cJSON_AddStringToObject(o, "uid", sl_manifest_md_str(stream, "uid")) &&
	    cJSON_AddTrueToObject(o, "controller") && cJSON_AddTrueToObject(o, "blockOwnerDeletion") &&
	    (spec = cJSON_AddObjectToObject(b, "spec")) &&
	    cJSON_AddStringToObject(spec, "streamClass",
	                            sl_manifest_md_str(cls, "name") ? sl_manifest_md_str(cls, "name") : "") &&
	    cJSON_AddStringToObject(spec, "streamId", sname) && cJSON_AddFalseToObject(spec, "completed");

	if (!ok) {
		cJSON_Delete(b);
		return NULL;
	}
	return b;
}

/* ---- status ------------------------------------------------------------------- */

static bool json_str_eq(const cJSON *v, const char *s)
{
	if (!s)
		return v == NULL || cJSON_IsNull(v);
	return cJSON_IsString(v) && strcmp(v->valuestring, s) == 0;
}

static cJSON *str_or_null(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static int64_t generation(const cJSON *stream)
{
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(stream, "metadata"), "generation");

	return cJSON_IsNumber(g) ? (int64_t)g->valuedouble : 0;
}

static const cJSON *old_condition(const cJSON *status, const char *type)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
	{
		const char *t = sl_manifest_str(c, "type");
		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

/* An optional field compared as the server stores it: a field that is absent
 * from the stored status is taken as pruned by the CRD's schema (every sluice
 * write sets it), so it never differs; a field that is present must match. */
static bool kept_str_eq(const cJSON *o, const char *key, const char *want)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return !v || json_str_eq(v, want);
}

static bool kept_num_eq(const cJSON *o, const char *key, int64_t want)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return !v || (cJSON_IsNumber(v) && (int64_t)v->valuedouble == want);
}

/* Builds {"status": {...}} when what the server would store differs from the
 * observed status, else leaves *ret NULL. Every plugin CRD keeps phase,
 * configurationHash and the conditions' type, status and message, so those
 * always count; the others (the condition's phase, reason,
 * lastTransitionTime and observedGeneration, observedGeneration, jobName,
 * backfillRequest) count where the stored status has them. So a converged
 * stream costs no write whatever its CRD keeps (crds/mockstream.yaml, for
 * one, has no phase in its conditions). Sets *moved when the phase or the
 * condition's reason (or, where reason is pruned, its message) changed:
 * that is worth an Event. */
static int status_diff(const struct sl_stream_observed *in, const struct plan *p, cJSON **ret, bool *moved)
{
	const cJSON *old = sl_manifest_obj(in->stream, "status");
	const cJSON *oc = old_condition(old, SL_STREAM_CONDITION_READY);
	const char *cstatus = p->ready ? "True" : "False";
	int64_t gen = generation(in->stream);
	char ltt[32];
	bool core = oc && json_str_eq(cJSON_GetObjectItemCaseSensitive(oc, "status"), cstatus) &&
	            json_str_eq(cJSON_GetObjectItemCaseSensitive(oc, "message"), p->message) &&
	            json_str_eq(cJSON_GetObjectItemCaseSensitive(old, "phase"), p->phase) &&
	            json_str_eq(cJSON_GetObjectItemCaseSensitive(old, "configurationHash"), p->hash);
	bool extra = kept_str_eq(oc, "phase", p->phase) && kept_str_eq(oc, "reason", p->reason) &&
	             kept_num_eq(oc, "observedGeneration", gen) &&
	             kept_num_eq(old, "observedGeneration", gen) &&
	             kept_str_eq(old, "jobName", p->job_name) && kept_str_eq(old, "backfillRequest", p->bfr);
	const cJSON *oreason = cJSON_GetObjectItemCaseSensitive(oc, "reason");

	*ret = NULL;
	*moved = !json_str_eq(cJSON_GetObjectItemCaseSensitive(old, "phase"), p->phase) ||
	         (oreason ? !json_str_eq(oreason, p->reason)
	                  : !json_str_eq(cJSON_GetObjectItemCaseSensitive(oc, "message"), p->message));
	/* Back from a failed write to the state it had: that state was told
	 * before, and the failure in its Warning. */
	if (json_str_eq(oreason, R_RECONCILE_ERR) &&
	    json_str_eq(cJSON_GetObjectItemCaseSensitive(old, "phase"), p->phase))
		*moved = false;
	if (core && extra)
		return 0;

	/* lastTransitionTime moves only when the condition's status does. */
	if (oc && json_str_eq(cJSON_GetObjectItemCaseSensitive(oc, "status"), cstatus) &&
	    sl_manifest_str(oc, "lastTransitionTime"))
		snprintf(ltt, sizeof(ltt), "%s", sl_manifest_str(oc, "lastTransitionTime"));
	else
		sl_time_rfc3339(in->now, ltt);

	cJSON *root = cJSON_CreateObject(), *st, *conds, *c;
	const cJSON *x;
	bool ok = root && (st = cJSON_AddObjectToObject(root, "status")) &&
	          cJSON_AddStringToObject(st, "phase", p->phase) &&
	          (conds = cJSON_AddArrayToObject(st, "conditions"));
	if (!ok)
		goto fail;
	/* Conditions of other types (someone else's) are kept as they are. */
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(old, "conditions"))
	{
		const char *t = sl_manifest_str(x, "type");
		if (t && strcmp(t, SL_STREAM_CONDITION_READY) == 0)
			continue;
		if (!(c = cJSON_Duplicate(x, true)))
			goto fail;
		cJSON_AddItemToArray(conds, c);
	}
	ok = (c = cJSON_CreateObject()) && cJSON_AddItemToArray(conds, c) &&
	     cJSON_AddStringToObject(c, "type", SL_STREAM_CONDITION_READY) &&
	     cJSON_AddStringToObject(c, "status", cstatus) && cJSON_AddStringToObject(c, "phase", p->phase) &&
	     cJSON_AddStringToObject(c, "reason", p->reason) &&
	     cJSON_AddStringToObject(c, "message", p->message) &&
	     cJSON_AddStringToObject(c, "lastTransitionTime", ltt) &&
	     cJSON_AddNumberToObject(c, "observedGeneration", (double)gen) &&
	     cJSON_AddNumberToObject(st, "observedGeneration", (double)gen);
	if (!ok)
		goto fail;
	cJSON *v1 = str_or_null(p->job_name), *v2 = str_or_null(p->hash), *v3 = str_or_null(p->bfr);
	if (!v1 || !v2 || !v3) {
		cJSON_Delete(v1);
		cJSON_Delete(v2);
		cJSON_Delete(v3);
		goto fail;
	}
	cJSON_AddItemToObject(st, "jobName", v1);
	cJSON_AddItemToObject(st, "configurationHash", v2);
	cJSON_AddItemToObject(st, "backfillRequest", v3);
	*ret = root;
	return 0;
fail:
	cJSON_Delete(root);
	return SL_ENOMEM;
}

static bool warning_reason(const char *r)
{
	return sl_streq(r, R_JOB_FAILED) || sl_streq(r, R_NO_TEMPLATE) || sl_streq(r, R_INVALID_JOB) ||
	       sl_streq(r, R_NAME_TAKEN) || sl_streq(r, R_INVALID_SPEC) || sl_streq(r, R_RECONCILE_ERR);
}

/* ---- the analysis --------------------------------------------------------------- */

static void set_state(struct plan *p, const char *phase, const char *reason, bool ready, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void set_state(struct plan *p, const char *phase, const char *reason, bool ready, const char *fmt, ...)
{
	va_list ap;

	p->phase = phase;
	p->reason = reason;
	p->ready = ready;
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof(p->message), fmt, ap);
	va_end(ap);
}

static void delete_job(struct plan *p, const cJSON *job)
{
	if (!job || deleting(job) || in_list(p->delete_jobs, p->n_delete_jobs, job))
		return;
	p->delete_jobs[p->n_delete_jobs++] = job;
}

/* Counts a finished streaming Job in the restart memory, once per Job uid. */
static void count_finish(const struct sl_stream_observed *in, struct plan *p, const cJSON *job)
{
	const char *uid = sl_manifest_md_str(job, "uid");
	const cJSON *st = sl_manifest_obj(job, "status");
	int64_t end = time_at(st, "completionTime", in->now);
	int64_t start =
	    time_at(st, "startTime", time_at(sl_manifest_obj(job, "metadata"), "creationTimestamp", end));
	unsigned n;

	if (!uid || strcmp(uid, p->memory.job_uid) == 0)
		return;
	n = end - start >= LONG_RUN_S ? 0 : p->memory.restarts;
	p->memory.restarts = SL_MIN(n + 1, 30u);
	p->memory.not_before = end + backoff_s(n);
	snprintf(p->memory.job_uid, sizeof(p->memory.job_uid), "%s", uid);
	p->memory_set = true;
}

/* ---- the observation, read once --------------------------------------------- */

/* What analyse() works from: the observation with the layout read and the
 * Jobs sorted into streaming and backfill (a Job named S that carries
 * arcane/backfilling=true is the Arcane operator's backfill Job). */
struct view {
	const struct sl_stream_observed *in;
	const cJSON *stream, *status;
	const char *name, *uid, *old_phase;
	struct sl_arcane_layout l;
	const cJSON *sjob, *bjob, *own_s, *own_b, *own_c;
	const cJSON *sgone, *bgone;
	char sname[64], bname[64], cname[64];
};

static bool backfill_labelled(const cJSON *job)
{
	return sl_streq(sl_manifest_label(job, SL_ARCANE_LABEL_BACKFILLING), "true");
}

static void view_jobs(struct view *v)
{
	const struct sl_stream_observed *in = v->in;

	v->sjob = in->streaming_job;
	v->bjob = in->backfill_job;
	v->sgone = in->streaming_job_gone;
	v->bgone = in->backfill_job_gone;
	if (!v->bjob && v->sjob && backfill_labelled(v->sjob)) {
		v->bjob = v->sjob;
		v->sjob = NULL;
	}
	if (!v->bgone && v->sgone && backfill_labelled(v->sgone)) {
		v->bgone = v->sgone;
		v->sgone = NULL;
	}
	v->own_s = v->sjob && owned_by(v->sjob, v->uid) ? v->sjob : NULL;
	v->own_b = v->bjob && owned_by(v->bjob, v->uid) ? v->bjob : NULL;
	v->own_c = in->cronjob && owned_by(in->cronjob, v->uid) ? in->cronjob : NULL;
}

/* "<configuration-hash>/<12 hex of template-hash>" of a built Job or CronJob. */
static void status_hash_of_obj(const cJSON *o, char out[static SL_STREAM_STATUS_HASH_MAX])
{
	const char *h = sl_manifest_annotation(o, SL_ARCANE_ANN_CONFIG_HASH),
	           *t = sl_manifest_annotation(o, SL_ARCANE_ANN_TEMPLATE_HASH);

	snprintf(out, SL_STREAM_STATUS_HASH_MAX, "%s/%.12s", h ? h : "", t ? t : "");
}

/* A live workload is what the desired one would be: same configuration-hash,
 * and same template-hash when it has one. Without one it was made by the
 * Arcane operator, which knows no template hash: adopted as it is. */
static bool same_hashes(const cJSON *live, const char *hash, const char *thash)
{
	const char *lt = sl_manifest_annotation(live, SL_ARCANE_ANN_TEMPLATE_HASH);

	return sl_streq(sl_manifest_annotation(live, SL_ARCANE_ANN_CONFIG_HASH), hash) &&
	       (!lt || sl_streq(lt, thash));
}

static bool same_config(const cJSON *live, const cJSON *want)
{
	return same_hashes(live, sl_manifest_annotation(want, SL_ARCANE_ANN_CONFIG_HASH),
	                   sl_manifest_annotation(want, SL_ARCANE_ANN_TEMPLATE_HASH));
}

static void describe_ref(const struct sl_arcane_ref *ref, char *out, size_t n)
{
	snprintf(out, n, "StreamingJobTemplate %s/%s (%s)", ref->ns ? ref->ns : "",
	         ref->name ? ref->name : "", ref->field);
}

static void failed_job(struct plan *p, const char *want, const cJSON *fc)
{
	const char *fr = sl_manifest_str(fc, "reason"), *fm = sl_manifest_str(fc, "message");

	set_state(p, SL_ARCANE_PHASE_FAILED, R_JOB_FAILED, false, "Job %s failed: %s%s%s", want,
	          fr ? fr : "Failed", fm ? ": " : "", fm ? fm : "");
}

/* A CronJob to pause (suspend, backfill, failure): history is kept. */
static void pause_cron(struct plan *p, const cJSON *own_c)
{
	if (own_c && !deleting(own_c) &&
	    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(own_c, "spec"), "suspend")))
		p->suspend_cron = own_c;
}

static void delete_cron(struct plan *p, const cJSON *own_c)
{
	if (own_c && !deleting(own_c))
		p->delete_cron = own_c;
}

/* ---- the stream's workload ---------------------------------------------------- */

/* The Job run_job works towards, and what else bears on it. */
struct want {
	enum target t;
	const cJSON *x;     /* the BackfillRequest to run (T_BACKFILL) */
	const cJSON *tmpl;  /* the template to build from */
	const cJSON *live;  /* the Job of the wanted kind */
	const cJSON *other; /* ours, of the other kind */
	const cJSON *gone;  /* the last state of a deleted Job of the wanted kind */
	const char *name;   /* the Job's name */
	const char *phase;  /* the stream's phase while it runs */
	/* the configuration-hash and template-hash of the wanted Job */
	char hash[SL_STREAM_HASH_MAX], thash[65];
};

static void want_of(const struct view *v, const cJSON *x, struct want *w)
{
	const struct sl_stream_observed *in = v->in;
	bool b = x != NULL;

	w->t = b ? T_BACKFILL : T_STREAMING;
	w->x = x;
	w->tmpl = b ? in->backfill_tmpl : in->tmpl;
	w->live = b ? v->bjob : v->sjob;
	w->other = b ? v->own_s : v->own_b;
	w->gone = b ? v->bgone : v->sgone;
	w->name = w->live ? sl_manifest_md_str(w->live, "name") : b ? v->bname : v->sname;
	w->phase = b ? SL_ARCANE_PHASE_BACKFILLING : SL_ARCANE_PHASE_RUNNING;
}

/* Builds the wanted Job into *ret_job. A template that is missing or does
 * not build is the stream's failure: 0 with *ret_job NULL. */
static int build_want(const struct view *v, struct plan *p, const struct want *w, cJSON **ret_job,
                      struct sl_error *err)
{
	struct sl_error berr = {0};
	int r;

	if (!w->tmpl) {
		char what[SL_STREAM_NAME_MAX + 256];
		describe_ref(w->t == T_BACKFILL ? &v->l.backfill : &v->l.streaming, what, sizeof(what));
		set_state(p, SL_ARCANE_PHASE_FAILED, R_NO_TEMPLATE, false, "%s not found", what);
		p->bfr = NULL;
		return 0;
	}
	struct sl_stream_job_input bin = {v->stream, v->in->stream_class, w->tmpl, w->x, false};
	r = sl_stream_job_build(&bin, ret_job, &berr);
	if (r == SL_ENOMEM)
		return sl_error_set(err, r, "%s", berr.msg);
	if (r < 0) {
		set_state(p, SL_ARCANE_PHASE_FAILED, R_INVALID_JOB, false, "%s", berr.msg);
		p->bfr = NULL;
	}
	return 0;
}

static void running(struct plan *p, const struct want *w)
{
	if (w->t == T_BACKFILL)
		set_state(p, w->phase, R_BACKFILLING, false, "Job %s runs BackfillRequest %s", w->name,
		          p->bfr);
	else
		set_state(p, w->phase, R_RUNNING, true, "Job %s is running", w->name);
}

static void restarting(struct plan *p, const struct want *w)
{
	char when[32];

	sl_time_rfc3339(p->memory.not_before, when);
	set_state(p, w->phase, R_RESTARTING, false, "streaming Job finished; starting it again at %s", when);
}

static void wait_deletion(struct plan *p, const char *job)
{
	set_state(p, SL_ARCANE_PHASE_PENDING, R_WAIT_DELETION, false, "waiting for Job %s to be deleted",
	          job);
}

/* A Job of the wanted name exists: keep it, wait for it, or replace it. */
static void live_job(const struct view *v, struct plan *p, const struct want *w)
{
	const cJSON *live = w->live, *fc = NULL;
	/* A backfill Job the Arcane operator started (no template-hash) is
	 * matched on its request alone, as that operator does. */
	bool stale = w->t == T_BACKFILL ? !sl_streq(job_backfill_request(live), p->bfr) ||
	                                      (sl_manifest_annotation(live, SL_ARCANE_ANN_TEMPLATE_HASH) &&
	                                       !same_hashes(live, w->hash, w->thash))
	                                : !same_hashes(live, w->hash, w->thash);

	if (!owned_by(live, v->uid)) {
		set_state(p, SL_ARCANE_PHASE_PENDING, R_NAME_TAKEN, false,
		          "a Job named %s exists that this stream does not own", w->name);
		p->requeue_ms = WAIT_FALLBACK_MS;
	} else if (deleting(live)) {
		wait_deletion(p, w->name);
		p->requeue_ms = WAIT_FALLBACK_MS;
	} else if (stale) {
		/* Spec or template changed, or it ran another request. */
		delete_job(p, live);
		set_state(p, SL_ARCANE_PHASE_PENDING, R_CONFIG_CHANGED, false, "replacing Job %s", w->name);
		p->requeue_ms = WAIT_FALLBACK_MS;
	} else {
		switch (job_state(live, &fc)) {
		case J_FAILED:
			failed_job(p, w->name, fc);
			p->job_name = NULL;
			delete_job(p, live);
			break;
		case J_SUCCEEDED:
			delete_job(p, live);
			if (w->t == T_STREAMING) {
				count_finish(v->in, p, live);
				restarting(p, w);
				p->requeue_ms = WAIT_FALLBACK_MS;
			} else {
				/* Cannot happen: step 1 completed its request. */
				wait_deletion(p, w->name);
			}
			break;
		case J_ACTIVE:
			running(p, w);
			break;
		}
	}
}

/* No Job of ours exists: what did the last one leave behind? Then a new one
 * starts (taken from *job), unless the restart backoff says wait. */
static void no_job(const struct view *v, struct plan *p, const struct want *w, cJSON **job)
{
	const struct sl_stream_observed *in = v->in;
	const cJSON *fc = NULL;
	const cJSON *g = w->gone && owned_by(w->gone, v->uid) ? w->gone : NULL;
	enum jstate gs = g ? job_state(g, &fc) : J_ACTIVE;
	/* A failure seen only in the DELETED event counts while that Job was
	 * the one running; after a suspend or a failure recorded already, the
	 * stale event means nothing. */
	bool was_running = sl_streq(v->old_phase, SL_ARCANE_PHASE_RUNNING) ||
	                   sl_streq(v->old_phase, SL_ARCANE_PHASE_BACKFILLING) ||
	                   sl_streq(v->old_phase, SL_ARCANE_PHASE_PENDING);

	if (g && gs == J_FAILED && was_running && same_hashes(g, w->hash, w->thash) &&
	    (w->t == T_STREAMING || sl_streq(job_backfill_request(g), p->bfr))) {
		failed_job(p, sl_manifest_md_str(g, "name"), fc);
		p->job_name = NULL;
		return;
	}
	if (g && gs == J_SUCCEEDED && w->t == T_STREAMING)
		count_finish(in, p, g);
	if (w->t == T_STREAMING && in->now < p->memory.not_before) {
		restarting(p, w);
		p->requeue_ms = (uint64_t)(p->memory.not_before - in->now) * 1000;
		return;
	}
	p->create_job = TAKE_PTR(*job);
	running(p, w);
}

/* The live Job of the wanted kind is ours, stays, and already carries the
 * hashes the wanted Job would have (set into w): nothing needs building. A
 * running stream is reconciled on every change of its objects; this keeps
 * that to hashing its spec and template. Anything else (no template-hash,
 * a hash that differs, an error) is left to the full build. */
static bool live_current(const struct view *v, const struct plan *p, struct want *w)
{
	const cJSON *live = w->live;
	struct sl_stream_job_input bin = {v->stream, v->in->stream_class, w->tmpl, w->x, false};
	struct sl_error e = {0};

	if (!live || !w->tmpl || !owned_by(live, v->uid) || deleting(live) ||
	    !sl_manifest_annotation(live, SL_ARCANE_ANN_TEMPLATE_HASH) ||
	    (w->t == T_BACKFILL && !sl_streq(job_backfill_request(live), p->bfr)))
		return false;
	return sl_stream_job_hashes(&bin, w->hash, w->thash, &e) == 0 &&
	       sl_streq(sl_manifest_annotation(live, SL_ARCANE_ANN_CONFIG_HASH), w->hash) &&
	       sl_streq(sl_manifest_annotation(live, SL_ARCANE_ANN_TEMPLATE_HASH), w->thash);
}

/* The Job backend, or a backfill: the Job named want should exist and run. */
static int run_job(const struct view *v, struct plan *p, const cJSON *x, struct sl_error *err)
{
	struct want w;
	cJSON *job = NULL;
	int r;

	want_of(v, x, &w);
	if (w.t == T_BACKFILL) {
		snprintf(p->bfr_buf, sizeof(p->bfr_buf), "%s", sl_manifest_md_str(x, "name"));
		p->bfr = p->bfr_buf;
	}
	if (!live_current(v, p, &w)) {
		r = build_want(v, p, &w, &job, err);
		if (r < 0 || !job)
			return r;
		snprintf(w.hash, sizeof(w.hash), "%s",
		         sl_manifest_annotation(job, SL_ARCANE_ANN_CONFIG_HASH) ?: "");
		snprintf(w.thash, sizeof(w.thash), "%s",
		         sl_manifest_annotation(job, SL_ARCANE_ANN_TEMPLATE_HASH) ?: "");
	}
	snprintf(p->hash_buf, sizeof(p->hash_buf), "%s/%.12s", w.hash, w.thash);
	snprintf(p->job_name_buf, sizeof(p->job_name_buf), "%s", w.name);
	p->hash = p->hash_buf;
	p->job_name = p->job_name_buf;

	/* The other Job of ours goes first: at most one runs at a time. One
	 * that has finished runs no pod, so nothing waits for its removal,
	 * unless it holds the wanted name (the Arcane operator's backfill Job S). */
	delete_job(p, w.other);
	if (w.live) {
		live_job(v, p, &w);
	} else if (w.other && (job_state(w.other, NULL) == J_ACTIVE ||
	                       sl_streq(sl_manifest_md_str(w.other, "name"), w.name))) {
		wait_deletion(p, sl_manifest_md_str(w.other, "name"));
		p->requeue_ms = WAIT_FALLBACK_MS;
	} else {
		no_job(v, p, &w, &job);
	}
	cJSON_Delete(job);
	return 0;
}

static bool cron_suspended(const cJSON *cj)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(cj, "spec"), "suspend"));
}

/* The CronJob backend: the CronJob should exist, be up to date and run. */
static int run_cron(const struct view *v, struct plan *p, struct sl_error *err)
{
	const struct sl_stream_observed *in = v->in;
	const cJSON *live = in->cronjob;
	cJSON *cj = NULL;
	struct sl_error berr = {0};
	int r;

	/* Leftovers of the Job backend (a switch) or of a finished backfill. */
	delete_job(p, v->own_s);
	delete_job(p, v->own_b);
	if (!in->tmpl) {
		char what[SL_STREAM_NAME_MAX + 256];
		describe_ref(&v->l.batch, what, sizeof(what));
		set_state(p, SL_ARCANE_PHASE_FAILED, R_NO_TEMPLATE, false, "%s not found", what);
		return 0;
	}
	struct sl_stream_job_input bin = {v->stream, in->stream_class, in->tmpl, NULL, true};
	r = sl_stream_cronjob_build(&bin, v->l.schedule, false, &cj, &berr);
	if (r == SL_ENOMEM)
		return sl_error_set(err, r, "%s", berr.msg);
	if (r < 0) {
		set_state(p, SL_ARCANE_PHASE_FAILED, R_INVALID_JOB, false, "%s", berr.msg);
		return 0;
	}
	status_hash_of_obj(cj, p->hash_buf);
	snprintf(p->job_name_buf, sizeof(p->job_name_buf), "%s", v->cname);
	p->hash = p->hash_buf;
	p->job_name = p->job_name_buf;
	if (live && !owned_by(live, v->uid)) {
		set_state(p, SL_ARCANE_PHASE_PENDING, R_NAME_TAKEN, false,
		          "a CronJob named %s exists that this stream does not own", v->cname);
		p->requeue_ms = WAIT_FALLBACK_MS;
	} else if (live && deleting(live)) {
		set_state(p, SL_ARCANE_PHASE_PENDING, R_WAIT_DELETION, false,
		          "waiting for CronJob %s to be deleted", v->cname);
		p->requeue_ms = WAIT_FALLBACK_MS;
	} else {
		/* Created, or updated in place: a CronJob update restarts nothing
		 * and keeps its history. */
		if (!live || !same_config(live, cj) ||
		    !sl_manifest_annotation(live, SL_ARCANE_ANN_TEMPLATE_HASH) || cron_suspended(live))
			p->apply_cron = TAKE_PTR(cj);
		set_state(p, SL_ARCANE_PHASE_SCHEDULED, R_SCHEDULED, true,
		          "CronJob %s runs on schedule \"%s\"", v->cname, v->l.schedule);
	}
	cJSON_Delete(cj);
	return 0;
}

/* ---- the analysis --------------------------------------------------------------- */

/* Stream deleted: its Jobs and its own BackfillRequests go; no status. */
static void analyse_deleted(const struct view *v, struct plan *p)
{
	const struct sl_stream_observed *in = v->in;

	delete_job(p, v->own_s);
	delete_job(p, v->own_b);
	delete_cron(p, v->own_c);
	for (size_t i = 0; i < in->n_backfills && p->n_delete_bfrs < MAX_BACKFILLS_SEEN; i++)
		if (owned_by(in->backfills[i], v->uid) && !deleting(in->backfills[i]))
			p->delete_bfrs[p->n_delete_bfrs++] = in->backfills[i];
	p->leave_status = true;
	p->phase = p->reason = "";
}

/* A failure sticks while the configuration that failed is the one the
 * stream would run: its status hash names the workload (or backfill) with
 * spec, request and template. Only phase and configurationHash are read:
 * every plugin CRD keeps them. */
static int sticky_failure(const struct view *v, struct plan *p, bool *ret, struct sl_error *err)
{
	const struct sl_stream_observed *in = v->in;
	const char *fh = sl_manifest_str(v->status, "configurationHash");
	char h[SL_STREAM_STATUS_HASH_MAX];
	int r;

	*ret = false;
	if (!sl_streq(v->old_phase, SL_ARCANE_PHASE_FAILED) || !fh)
		return 0;
	if (in->tmpl) {
		r = sl_stream_status_hash(v->stream, in->tmpl, NULL, h, err);
		if (r < 0)
			return r;
		*ret = strcmp(h, fh) == 0;
	}
	for (size_t i = 0; !*ret && in->backfill_tmpl && v->l.backfill.name && i < in->n_backfills; i++) {
		const cJSON *b = in->backfills[i];
		if (bfr_completed(b) || deleting(b) || in_list(p->complete, p->n_complete, b))
			continue;
		r = sl_stream_status_hash(v->stream, in->backfill_tmpl, b, h, err);
		if (r < 0)
			return r;
		*ret = strcmp(h, fh) == 0;
	}
	if (*ret) {
		const char *msg =
		    sl_manifest_str(old_condition(v->status, SL_STREAM_CONDITION_READY), "message");
		delete_job(p, v->own_s);
		delete_job(p, v->own_b);
		pause_cron(p, v->own_c);
		set_state(p, SL_ARCANE_PHASE_FAILED, R_JOB_FAILED, false, "%s",
		          msg ? msg : "the stream's Job failed");
		snprintf(p->hash_buf, sizeof(p->hash_buf), "%s", fh);
		p->hash = p->hash_buf;
		/* Shown, not decided on: kept where the CRD keeps it. */
		p->bfr = sl_manifest_str(v->status, "backfillRequest");
	}
	return 0;
}

/* Reads the observation into v, once; returns what reading the layout gave
 * (its error in *lerr). */
static int view_read(const struct sl_stream_observed *in, struct view *v, struct sl_error *lerr)
{
	int lr;

	v->in = in;
	v->stream = in->stream;
	v->status = sl_manifest_obj(in->stream, "status");
	v->name = sl_manifest_md_str(in->stream, "name");
	v->uid = sl_manifest_md_str(in->stream, "uid");
	v->old_phase = sl_manifest_str(v->status, "phase");
	sl_stream_job_name(v->name, false, v->sname);
	sl_stream_job_name(v->name, true, v->bname);
	sl_stream_cronjob_name(v->name, v->cname);
	lr = sl_arcane_layout_read(in->stream, &v->l, lerr);
	view_jobs(v);
	return lr;
}

/* Step 1. A backfill Job that succeeded completes its BackfillRequest, be it
 * live, being deleted, or only seen in its DELETED event. */
static void complete_backfill(const struct view *v, struct plan *p)
{
	const cJSON *bseen = v->bjob ? v->own_b : (v->bgone && owned_by(v->bgone, v->uid) ? v->bgone : NULL);

	if (bseen && job_state(bseen, NULL) == J_SUCCEEDED) {
		const cJSON *x = pending_named(v->in, p, job_backfill_request(bseen));
		if (x)
			p->complete[p->n_complete++] = x;
	}
}

/* Step 2. The initial BackfillRequest, once, on the first decision about a
 * stream that is not suspended and runs as a Job with a backfill template
 * (created suspended: no initial backfill, as in Arcane). *created: it is
 * made by this decision. */
static int initial_request(const struct view *v, struct plan *p, bool *created, struct sl_error *err)
{
	const struct sl_stream_observed *in = v->in;
	char iname[SL_STREAM_NAME_MAX + 1];
	bool exists = false;

	*created = false;
	if (v->old_phase || !v->l.backfill.name || v->l.suspended || v->l.backend != SL_ARCANE_BACKEND_JOB)
		return 0;
	sl_stream_initial_backfill_name(v->name, v->uid, iname);
	for (size_t i = 0; i < in->n_backfills && !exists; i++)
		exists = sl_streq(sl_manifest_md_str(in->backfills[i], "name"), iname);
	if (exists)
		return 0;
	p->create_bfr = initial_backfill(in->stream, in->stream_class, iname);
	if (!p->create_bfr)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	snprintf(p->create_bfr_name, sizeof(p->create_bfr_name), "%s", iname);
	*created = true;
	return 0;
}

/* Step 3. What should run: nothing (suspended, or a failure that sticks),
 * the backfill of the oldest pending request, or the stream's backend. */
static int what_runs(const struct view *v, struct plan *p, bool initial_now, struct sl_error *err)
{
	const struct sl_stream_observed *in = v->in;
	const cJSON *x = NULL; /* the BackfillRequest to run */
	bool stuck;
	int r;

	if (v->l.suspended) {
		delete_job(p, v->own_s);
		delete_job(p, v->own_b);
		pause_cron(p, v->own_c);
		set_state(p, SL_ARCANE_PHASE_SUSPENDED, R_SUSPENDED, false, "%s is true",
		          v->l.suspended_field);
		return 0;
	}
	if (v->l.backfill.name) {
		if (v->own_b && !deleting(v->own_b))
			x = pending_named(in, p, job_backfill_request(v->own_b));
		if (!x)
			x = oldest_pending(in, p);
	}
	r = sticky_failure(v, p, &stuck, err);
	if (r < 0 || stuck)
		return r;
	/* The initial BackfillRequest runs in the decision that creates it:
	 * its Job is built from the object as created (what the server keeps:
	 * spec.completed is set, the CRD defaults nothing else), so no Pending
	 * status is written for the next decision to overwrite. */
	if (initial_now && !x)
		x = p->create_bfr;
	if (x) {
		/* A batch stream's CronJob pauses while its backfill runs. */
		pause_cron(p, v->own_c);
		return run_job(v, p, x, err);
	}
	if (v->l.backend == SL_ARCANE_BACKEND_CRON)
		return run_cron(v, p, err);
	/* The Job backend; a CronJob left from the batch backend goes. */
	delete_cron(p, v->own_c);
	return run_job(v, p, NULL, err);
}

static int analyse(const struct sl_stream_observed *in, struct plan *p, struct sl_error *err)
{
	struct view view = {0}, *v = &view;
	struct sl_error lerr = {0};
	bool initial_now;
	int r, lr;

	sl_stream_memory_get(in->stream, &p->memory);
	lr = view_read(in, v, &lerr);
	if (deleting(in->stream)) {
		analyse_deleted(v, p);
		return 0;
	}
	/* A class that is gone leaves its streams and Jobs alone. */
	if (!in->stream_class) {
		p->leave_status = true;
		p->phase = v->old_phase ? v->old_phase : "";
		p->reason = "";
		return 0;
	}
	/* A spec sluice cannot read: reported, and what runs is left alone
	 * (an edit in progress must not stop a stream). */
	if (lr < 0) {
		set_state(p, SL_ARCANE_PHASE_FAILED, R_INVALID_SPEC, false, "%s", lerr.msg);
		return 0;
	}
	complete_backfill(v, p);
	r = initial_request(v, p, &initial_now, err);
	if (r < 0)
		return r;
	r = what_runs(v, p, initial_now, err);
	/* A write that failed is what the stream's condition says until the
	 * writes go through: the state reached is not what the status would
	 * otherwise claim. The phase stays. */
	if (r == 0 && in->write_error && *in->write_error) {
		p->reason = R_RECONCILE_ERR;
		p->ready = false;
		snprintf(p->message, sizeof(p->message), "%s", in->write_error);
	}
	return r;
}

/* ---- emitting --------------------------------------------------------------- */

/* A new action on object name in ns. */
static struct sl_stream_action *push_on(struct sl_stream_decision *d, enum sl_stream_action_type t,
                                        const char *name, const char *ns)
{
	struct sl_stream_action *a = push(d, t);

	if (a) {
		snprintf(a->name, sizeof(a->name), "%s", name);
		snprintf(a->ns, sizeof(a->ns), "%s", ns);
	}
	return a;
}

/* Completions first (each before the Job that proves it goes), then the
 * initial BackfillRequest. */
static int emit_backfills(struct plan *p, struct sl_stream_decision *d, const char *ns)
{
	struct sl_stream_action *a;

	for (size_t i = 0; i < p->n_complete; i++) {
		const cJSON *b = p->complete[i];
		const char *bns = sl_manifest_md_str(b, "namespace");
		if (!(a = push_on(d, SL_STREAM_ACT_COMPLETE_BACKFILL, sl_manifest_md_str(b, "name"),
		                  bns ? bns : ns)))
			return SL_ENOMEM;
		a->ref = b;
		a->object = cJSON_Parse("{\"spec\":{\"completed\":true}}");
		if (!a->object)
			return SL_ENOMEM;
	}
	if (p->create_bfr) {
		if (!(a = push_on(d, SL_STREAM_ACT_CREATE_BACKFILL, p->create_bfr_name, ns)))
			return SL_ENOMEM;
		a->object = TAKE_PTR(p->create_bfr);
	}
	return 0;
}

/* The status, when what the server keeps would change; *moved: the change
 * is worth an Event. */
static int emit_status(const struct sl_stream_observed *in, struct plan *p, struct sl_stream_decision *d,
                       const char *ns, bool *moved)
{
	struct sl_stream_action *a;
	cJSON *st = NULL;

	*moved = false;
	if (p->leave_status)
		return 0;
	if (status_diff(in, p, &st, moved) < 0)
		return SL_ENOMEM;
	if (!st) {
		*moved = false;
		return 0;
	}
	if (!(a = push_on(d, SL_STREAM_ACT_WRITE_STATUS, sl_manifest_md_str(in->stream, "name"), ns))) {
		cJSON_Delete(st);
		return SL_ENOMEM;
	}
	a->status = st;
	return 0;
}

/* The restart memory, before the finished Job it counts goes. */
static int emit_memory(const struct sl_stream_observed *in, struct plan *p, struct sl_stream_decision *d,
                       const char *ns)
{
	struct sl_stream_action *a;
	char when[32], val[160];
	cJSON *md, *an;

	if (!p->memory_set)
		return 0;
	sl_time_rfc3339(p->memory.not_before, when);
	snprintf(val, sizeof(val), "%u/%s/%s", p->memory.restarts, when, p->memory.job_uid);
	if (!(a = push_on(d, SL_STREAM_ACT_WRITE_MEMORY, sl_manifest_md_str(in->stream, "name"), ns)))
		return SL_ENOMEM;
	a->object = cJSON_CreateObject();
	if (!a->object || !(md = cJSON_AddObjectToObject(a->object, "metadata")) ||
	    !(an = cJSON_AddObjectToObject(md, "annotations")) ||
	    !cJSON_AddStringToObject(an, SL_ARCANE_ANN_RESTARTS, val))
		return SL_ENOMEM;
	return 0;
}

/* The workloads: Jobs deleted, the CronJob paused or deleted, then the
 * CronJob applied and the Job created. */
static int emit_workloads(struct plan *p, struct sl_stream_decision *d, const char *ns)
{
	struct sl_stream_action *a;

	for (size_t i = 0; i < p->n_delete_jobs; i++) {
		const cJSON *j = p->delete_jobs[i];
		const char *uid = sl_manifest_md_str(j, "uid");
		if (!(a = push_on(d, SL_STREAM_ACT_DELETE_JOB, sl_manifest_md_str(j, "name"), ns)))
			return SL_ENOMEM;
		snprintf(a->uid, sizeof(a->uid), "%s", uid ? uid : "");
		a->ref = j;
		a->background = job_state(j, NULL) != J_ACTIVE;
	}
	if (p->suspend_cron || p->delete_cron) {
		const cJSON *cj = p->delete_cron ? p->delete_cron : p->suspend_cron;
		const char *uid = sl_manifest_md_str(cj, "uid");
		if (!(a = push_on(d,
		                  p->delete_cron ? SL_STREAM_ACT_DELETE_CRONJOB : SL_STREAM_ACT_PATCH_CRONJOB,
		                  sl_manifest_md_str(cj, "name"), ns)))
			return SL_ENOMEM;
		snprintf(a->uid, sizeof(a->uid), "%s", uid ? uid : "");
		a->ref = cj;
		if (!p->delete_cron && !(a->object = cJSON_Parse("{\"spec\":{\"suspend\":true}}")))
			return SL_ENOMEM;
	}
	if (p->apply_cron) {
		if (!(a = push_on(d, SL_STREAM_ACT_APPLY_CRONJOB, sl_manifest_md_str(p->apply_cron, "name"),
		                  ns)))
			return SL_ENOMEM;
		a->object = TAKE_PTR(p->apply_cron);
	}
	if (p->create_job) {
		if (!(a = push_on(d, SL_STREAM_ACT_CREATE_JOB, sl_manifest_md_str(p->create_job, "name"),
		                  ns)))
			return SL_ENOMEM;
		a->object = TAKE_PTR(p->create_job);
	}
	return 0;
}

/* The stream's own BackfillRequests, when it is deleted. */
static int emit_delete_backfills(struct plan *p, struct sl_stream_decision *d, const char *ns)
{
	struct sl_stream_action *a;

	for (size_t i = 0; i < p->n_delete_bfrs; i++) {
		if (!(a = push_on(d, SL_STREAM_ACT_DELETE_BACKFILL,
		                  sl_manifest_md_str(p->delete_bfrs[i], "name"), ns)))
			return SL_ENOMEM;
		a->ref = p->delete_bfrs[i];
	}
	return 0;
}

/* The Event of a move. */
static int emit_event(const struct sl_stream_observed *in, struct plan *p, struct sl_stream_decision *d,
                      const char *ns)
{
	struct sl_stream_action *a =
	    push_on(d, SL_STREAM_ACT_EVENT, sl_manifest_md_str(in->stream, "name"), ns);

	if (!a)
		return SL_ENOMEM;
	a->ref = in->stream;
	a->event_type = warning_reason(p->reason) ? "Warning" : "Normal";
	a->reason = p->reason;
	a->message = sl_asprintf("%s: %s", p->phase, p->message);
	return a->message ? 0 : SL_ENOMEM;
}

/* Last, what writes nothing: the Event of a move, and the requeue. */
static int emit_notes(const struct sl_stream_observed *in, struct plan *p, struct sl_stream_decision *d,
                      const char *ns, bool moved)
{
	const char *name = sl_manifest_md_str(in->stream, "name");
	struct sl_stream_action *a;

	if (moved && emit_event(in, p, d, ns) < 0)
		return SL_ENOMEM;
	if (p->requeue_ms) {
		if (!(a = push_on(d, SL_STREAM_ACT_REQUEUE, name, ns)))
			return SL_ENOMEM;
		a->requeue_ms = p->requeue_ms;
	}
	return 0;
}

/* The plan as actions, in the order the comment at the top of this file
 * gives. */
static int emit(const struct sl_stream_observed *in, struct plan *p, struct sl_stream_decision *d)
{
	const char *ns = sl_manifest_md_str(in->stream, "namespace");
	bool moved = false;
	int r;

	r = emit_backfills(p, d, ns);
	if (r == 0)
		r = emit_status(in, p, d, ns, &moved);
	/* A failed write is told right after the status that records it: the
	 * writes after it may fail again, and the Event must not wait for them. */
	if (r == 0 && moved && sl_streq(p->reason, R_RECONCILE_ERR)) {
		r = emit_event(in, p, d, ns);
		moved = false;
	}
	if (r == 0)
		r = emit_memory(in, p, d, ns);
	if (r == 0)
		r = emit_workloads(p, d, ns);
	if (r == 0)
		r = emit_delete_backfills(p, d, ns);
	if (r == 0)
		r = emit_notes(in, p, d, ns, moved);
	if (r == 0) {
		d->phase = p->phase;
		d->reason = p->reason;
	}
	return r;
}

int sl_stream_decide(const struct sl_stream_observed *in, struct sl_stream_decision *out,
                     struct sl_error *err)
{
	struct plan *p;
	int r;

	if (!in || !in->stream || !sl_manifest_md_str(in->stream, "name") ||
	    !sl_manifest_md_str(in->stream, "namespace") || !sl_manifest_md_str(in->stream, "uid") ||
	    !sl_manifest_str(in->stream, "kind") || !sl_manifest_str(in->stream, "apiVersion"))
		return sl_error_set(err, SL_EINVALID,
		                    "a stream needs apiVersion, kind, metadata.name, namespace and uid");
	if (strlen(sl_manifest_md_str(in->stream, "namespace")) >= 64)
		return sl_error_set(err, SL_EINVALID, "namespace name too long");
	/* The plan is large (a list of BackfillRequests to delete): heap. */
	p = calloc(1, sizeof(*p));
	if (!p)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	p->message[0] = '\0';
	r = analyse(in, p, err);
	if (r == 0) {
		r = emit(in, p, out);
		if (r < 0)
			sl_error_set(err, r, "out of memory building the decision");
	}
	if (r < 0)
		sl_stream_decision_free(out);
	cJSON_Delete(p->create_bfr);
	cJSON_Delete(p->create_job);
	cJSON_Delete(p->apply_cron);
	free(p);
	return r;
}
