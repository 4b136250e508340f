/* Streams that change shards: handing what a stream had over to the shard
 * it moved to, and adopting what a moved-in stream left labelled for
 * another shard (see move.h). */
#include "move.h"
#include "observe.h"
#include "sluice/arcane.h"
#include "sluice/base-map.h"
#include "sluice/manifest-json.h"
#include "sluice/stream.h"

#include <stdio.h>
#include <string.h>

#define KEY_MAX SL_CONTROLLER__KEY_MAX

struct op;

struct sl_controller__move {
	const struct sl_controller__ctx *ctx;
	const struct sl_controller__observe *o;
	struct op *ops;     /* lookups in flight */
	struct sl_map held; /* stream key -> struct claim */
};

/* A lookup or write in flight: of a stream that left (handover), of an
 * object a create found (adoption), or of what a stream that arrived had
 * (claim: claim names its stream's key). */
struct op {
	struct sl_controller__move *m; /* NULL once the seam was freed */
	struct op *next, *prev;
	enum sl_controller__what what; /* STREAM: handover; JOB, BACKFILL: adoption */
	char kind[128], class_name[256], ns[64], name[SL_STREAM_NAME_MAX + 1];
	char uid[128]; /* adoption, claim: the stream's */
	char claim[KEY_MAX];
};

/* A stream that arrived from another shard, held back from decide() until
 * what it had there is relabelled and shows in this shard's caches. */
#define CLAIM_WAIT_MS 10000
struct claim {
	unsigned pending; /* lookups and relabels in flight */
	struct {
		enum sl_controller__what what;
		char name[SL_STREAM_NAME_MAX + 1];
	} wait[8]; /* relabelled, not yet seen in the caches */
	size_t n_wait;
	uint64_t deadline;
	char kind[128], ns[64], name[SL_STREAM_NAME_MAX + 1];
};

static void op_unlink(struct op *op)
{
	struct sl_controller__move *m = op->m;

	if (!m)
		return;
	if (op->prev)
		op->prev->next = op->next;
	else
		m->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
}

static struct op *op_new(struct sl_controller__move *m, enum sl_controller__what what, const char *ns,
                         const char *name)
{
	struct op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->m = m;
	op->what = what;
	snprintf(op->ns, sizeof(op->ns), "%s", ns);
	snprintf(op->name, sizeof(op->name), "%s", name);
	op->next = m->ops;
	if (m->ops)
		m->ops->prev = op;
	m->ops = op;
	return op;
}

static void log_relabel(struct sl_kube_result *res, void *payload)
{
	(void)payload;
	if (res->code != 0 && res->code != SL_ENOTFOUND && res->code != SL_ECANCELED)
		sl_warn("shard label: %s", res->err.msg);
}

/* The controlling ownerReference of obj names uid. */
static bool controlled_by(const cJSON *obj, const char *uid)
{
	const cJSON *r;

	cJSON_ArrayForEach(
	    r, cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(obj, "metadata"), "ownerReferences"))
	{
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller")))
			return sl_streq(sl_manifest_str(r, "uid"), uid);
	}
	return false;
}

static const char *what_name(enum sl_controller__what what)
{
	switch (what) {
	case SL_CONTROLLER__JOB:
		return "Job";
	case SL_CONTROLLER__CRONJOB:
		return "CronJob";
	case SL_CONTROLLER__BACKFILL:
		return "BackfillRequest";
	case SL_CONTROLLER__STREAM:
		break;
	}
	return "stream";
}

/* Sets the shard label of object ns/name of what to shard (NULL: removes
 * it, the default shard's). A merge patch of that one label; cb (NULL: the
 * outcome is logged) gets payload. 0, or a code when nothing was sent. */
static int relabel(struct sl_controller__move *m, enum sl_controller__what what, const char *ns,
                   const char *name, const char *shard, sl_kube_cb cb, void *payload)
{
	int r;

	struct sl_kube_ref ref = {.namespaced = true, .ns = ns, .name = name};
	struct sl_kube_call_opts o = {.field_manager = m->ctx->field_manager};
	cJSON *patch = cJSON_CreateObject(), *md, *labels;

	if (what == SL_CONTROLLER__BACKFILL) {
		ref.api_version = SL_ARCANE_API_VERSION;
		ref.resource = "backfillrequests";
	} else {
		ref.api_version = "batch/v1";
		ref.resource = what == SL_CONTROLLER__CRONJOB ? "cronjobs" : "jobs";
	}
	if (!patch || !(md = cJSON_AddObjectToObject(patch, "metadata")) ||
	    !(labels = cJSON_AddObjectToObject(md, "labels")) ||
	    !(shard ? cJSON_AddStringToObject(labels, SL_ARCANE_LABEL_SHARD, shard)
	            : cJSON_AddNullToObject(labels, SL_ARCANE_LABEL_SHARD))) {
		cJSON_Delete(patch);
		sl_log_obj(SL_LOG_WARN, what_name(what), ns, name, "shard label: out of memory");
		return SL_ENOMEM;
	}
	r = sl_kube_patch(m->ctx->k, &ref, SL_KUBE_PATCH_MERGE, patch, &o, cb ? cb : log_relabel, payload);
	if (r == 0)
		m->ctx->metrics->actions++;
	cJSON_Delete(patch);
	return r;
}

/* ---- handover ------------------------------------------------------------------------ */

struct handover {
	struct sl_controller__move *m;
	const struct op *op;
	const char *uid, *to;
	char done[512];
	size_t n;
};

static void hand_over(struct handover *h, enum sl_controller__what what, const cJSON *obj)
{
	const char *name = sl_manifest_md_str(obj, "name");

	if (!obj || !name)
		return;
	if (relabel(h->m, what, h->op->ns, name, h->to, NULL, NULL) < 0)
		return;
	h->n++;
	(void)sl_snprintf_ok(h->done + strlen(h->done), sizeof(h->done) - strlen(h->done), "%s%s %s",
	                     h->n > 1 ? ", " : "", what_name(what), name);
}

static void hand_over_backfill(const cJSON *b, void *payload)
{
	struct handover *h = payload;

	if (sl_streq(sl_manifest_str(sl_manifest_obj(b, "spec"), "streamClass"), h->op->class_name))
		hand_over(h, SL_CONTROLLER__BACKFILL, b);
}

/* What this shard holds of a stream that now belongs to another shard:
 * its Jobs and CronJob (those it controls) and its BackfillRequests. */
static void hand_over_all(struct sl_controller__move *m, const struct op *op, const cJSON *stream)
{
	struct handover h = {.m = m, .op = op, .uid = sl_manifest_md_str(stream, "uid")};
	char job[64];
	const cJSON *obj;

	h.to = sl_arcane_shard_of(stream);
	for (int b = 0; b < 2; b++) {
		sl_stream_job_name(op->name, b, job);
		obj = sl_controller__observe_get(m->o, SL_CONTROLLER__JOB, op->kind, op->ns, job);
		if (obj && controlled_by(obj, h.uid))
			hand_over(&h, SL_CONTROLLER__JOB, obj);
	}
	sl_stream_cronjob_name(op->name, job);
	obj = sl_controller__observe_get(m->o, SL_CONTROLLER__CRONJOB, op->kind, op->ns, job);
	if (obj && controlled_by(obj, h.uid))
		hand_over(&h, SL_CONTROLLER__CRONJOB, obj);
	sl_controller__observe_foreach_backfill(m->o, op->ns, op->name, hand_over_backfill, &h);
	sl_log_obj(SL_LOG_INFO, op->kind, op->ns, op->name, "moved to the %s%s shard%s%s",
	           h.to ? "" : "default", h.to ? h.to : "", h.n ? ": handing over " : "", h.n ? h.done : "");
}

static void on_stream(struct sl_kube_result *res, void *payload)
{
	struct op *op = payload;
	struct sl_controller__move *m = op->m;

	op_unlink(op);
	if (!m || res->code == SL_ENOTFOUND || res->code == SL_ECANCELED)
		goto out;
	if (res->code < 0) {
		sl_log_obj(SL_LOG_WARN, op->kind, op->ns, op->name, "left this shard; looking it up: %s",
		           res->err.msg);
		goto out;
	}
	/* Still ours (a relist saw it again): nothing moved. */
	if (!sl_arcane_shard_is(res->body, m->ctx->shard))
		hand_over_all(m, op, res->body);
out:
	free(op);
}

void sl_controller__move_left(struct sl_controller__move *m, const char *kind, const char *api_version,
                              const char *plural, const char *class_name, const char *ns, const char *name)
{
	struct sl_kube_ref ref = {
	    .api_version = api_version, .resource = plural, .namespaced = true, .ns = ns, .name = name};
	struct op *op;

	if (!kind || !api_version || !plural || !ns || !name)
		return;
	op = op_new(m, SL_CONTROLLER__STREAM, ns, name);
	if (!op)
		return;
	snprintf(op->kind, sizeof(op->kind), "%s", kind);
	snprintf(op->class_name, sizeof(op->class_name), "%s", class_name ? class_name : "");
	if (sl_kube_get(m->ctx->k, &ref, NULL, on_stream, op) < 0) {
		op_unlink(op);
		free(op);
	}
}

/* ---- adoption ------------------------------------------------------------------------ */

static void on_found(struct sl_kube_result *res, void *payload)
{
	struct op *op = payload;
	struct sl_controller__move *m = op->m;
	const char *from;

	op_unlink(op);
	if (!m || res->code < 0)
		goto out;
	from = sl_arcane_shard_of(res->body);
	if (sl_arcane_shard_is(res->body, m->ctx->shard) || !controlled_by(res->body, op->uid))
		goto out; /* ours already (the cache lags), or not the stream's */
	sl_log_obj(SL_LOG_INFO, what_name(op->what), op->ns, op->name,
	           "taken over from the %s%s shard: its stream belongs to this one", from ? "" : "default",
	           from ? from : "");
	relabel(m, op->what, op->ns, op->name, m->ctx->shard, NULL, NULL);
out:
	free(op);
}

void sl_controller__move_adopt(struct sl_controller__move *m, enum sl_controller__what what, const char *ns,
                               const char *name, const cJSON *involved)
{
	const char *uid = sl_manifest_md_str(involved, "uid");
	struct sl_kube_ref ref = {.namespaced = true, .ns = ns, .name = name};
	struct op *op;

	if (!uid || (what != SL_CONTROLLER__JOB && what != SL_CONTROLLER__BACKFILL))
		return;
	op = op_new(m, what, ns, name);
	if (!op)
		return;
	snprintf(op->uid, sizeof(op->uid), "%s", uid);
	if (what == SL_CONTROLLER__BACKFILL) {
		ref.api_version = SL_ARCANE_API_VERSION;
		ref.resource = "backfillrequests";
	} else {
		ref.api_version = "batch/v1";
		ref.resource = "jobs";
	}
	if (sl_kube_get(m->ctx->k, &ref, NULL, on_found, op) < 0) {
		op_unlink(op);
		free(op);
	}
}

/* ---- claim ------------------------------------------------------------------------------- */

/* One lookup or relabel of a claim answered: when none is left, its stream
 * is queued to look again. */
static void claim_step(struct sl_controller__move *m, const char *key)
{
	struct claim *cl = sl_map_get(&m->held, key);

	if (!cl || !cl->pending || --cl->pending)
		return;
	sl_controller__enqueue(m->ctx->c, cl->kind, cl->ns, cl->name);
}

static void on_claim_relabelled(struct sl_kube_result *res, void *payload)
{
	struct op *op = payload;

	op_unlink(op);
	if (op->m) {
		log_relabel(res, NULL);
		claim_step(op->m, op->claim);
	}
	free(op);
}

/* Object obj of what, found for the stream of claim op: unless it is not
 * the stream's, the stream waits to see it in this shard's caches, and it
 * is taken into this shard unless it is labelled for it already (the shard
 * the stream left may have handed it over). */
static void claim_obj(struct sl_controller__move *m, const struct op *op, enum sl_controller__what what,
                      const cJSON *obj)
{
	struct claim *cl = sl_map_get(&m->held, op->claim);
	const char *name = sl_manifest_md_str(obj, "name"), *from = sl_arcane_shard_of(obj);
	struct op *w;

	if (!cl || !name)
		return;
	if (what == SL_CONTROLLER__BACKFILL
	        ? !sl_streq(sl_manifest_str(sl_manifest_obj(obj, "spec"), "streamClass"), op->class_name)
	        : !controlled_by(obj, op->uid))
		return;
	if (cl->n_wait < SL_ARRAY_SIZE(cl->wait)) {
		cl->wait[cl->n_wait].what = what;
		snprintf(cl->wait[cl->n_wait].name, sizeof(cl->wait[0].name), "%s", name);
		cl->n_wait++;
	}
	if (sl_arcane_shard_is(obj, m->ctx->shard))
		return;
	w = op_new(m, what, op->ns, name);
	if (!w)
		return;
	snprintf(w->claim, sizeof(w->claim), "%s", op->claim);
	if (relabel(m, what, op->ns, name, m->ctx->shard, on_claim_relabelled, w) < 0) {
		op_unlink(w);
		free(w);
		return;
	}
	sl_log_obj(SL_LOG_INFO, what_name(what), op->ns, name,
	           "taken over from the %s%s shard with its stream", from ? "" : "default", from ? from : "");
	cl->pending++;
}

static void on_claim_found(struct sl_kube_result *res, void *payload)
{
	struct op *op = payload;
	struct sl_controller__move *m = op->m;
	const cJSON *item;

	op_unlink(op);
	if (!m)
		goto out;
	if (res->code == 0 && op->what == SL_CONTROLLER__BACKFILL) {
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(res->body, "items"))
		    claim_obj(m, op, SL_CONTROLLER__BACKFILL, item);
	} else if (res->code == 0) {
		claim_obj(m, op, op->what, res->body);
	} else if (res->code != SL_ENOTFOUND && res->code != SL_ECANCELED) {
		sl_log_obj(SL_LOG_WARN, op->kind, op->ns, op->name,
		           "arrived from another shard; looking up: %s", res->err.msg);
	}
	claim_step(m, op->claim);
out:
	free(op);
}

/* Starts one lookup of claim key: a Job or CronJob by name, or (what
 * BACKFILL) the BackfillRequests naming the stream. */
static void claim_lookup(struct sl_controller__move *m, struct claim *cl, const char *key, const char *uid,
                         const char *class_name, enum sl_controller__what what, const char *name)
{
	struct sl_kube_ref ref = {.namespaced = true, .ns = cl->ns, .name = name};
	struct sl_kube_call_opts o = {0};
	char sel[SL_STREAM_NAME_MAX + 32];
	struct op *op = op_new(m, what, cl->ns, cl->name);
	int r;

	if (!op)
		return;
	snprintf(op->kind, sizeof(op->kind), "%s", cl->kind);
	snprintf(op->class_name, sizeof(op->class_name), "%s", class_name ? class_name : "");
	snprintf(op->uid, sizeof(op->uid), "%s", uid);
	snprintf(op->claim, sizeof(op->claim), "%s", key);
	ref.api_version = what == SL_CONTROLLER__BACKFILL ? SL_ARCANE_API_VERSION : "batch/v1";
	ref.resource = what == SL_CONTROLLER__BACKFILL  ? "backfillrequests"
	               : what == SL_CONTROLLER__CRONJOB ? "cronjobs"
	                                                : "jobs";
	if (what == SL_CONTROLLER__BACKFILL) {
		/* spec.streamId is a selectable field of the CRD */
		ref.name = NULL;
		snprintf(sel, sizeof(sel), "spec.streamId=%s", cl->name);
		o.field_selector = sel;
		r = sl_kube_list(m->ctx->k, &ref, &o, on_claim_found, op);
	} else {
		r = sl_kube_get(m->ctx->k, &ref, NULL, on_claim_found, op);
	}
	if (r < 0) {
		op_unlink(op);
		free(op);
		return;
	}
	cl->pending++;
}

void sl_controller__move_claim(struct sl_controller__move *m, const char *key, const char *kind,
                               const char *class_name, const cJSON *stream)
{
	const char *ns = sl_manifest_md_str(stream, "namespace"), *name = sl_manifest_md_str(stream, "name"),
	           *uid = sl_manifest_md_str(stream, "uid");
	struct claim *cl;
	char job[64];

	if (!ns || !name || !uid || !kind || sl_map_get(&m->held, key))
		return;
	cl = calloc(1, sizeof(*cl));
	if (!cl || sl_map_put(&m->held, key, cl, NULL) < 0) {
		free(cl);
		return;
	}
	snprintf(cl->kind, sizeof(cl->kind), "%s", kind);
	snprintf(cl->ns, sizeof(cl->ns), "%s", ns);
	snprintf(cl->name, sizeof(cl->name), "%s", name);
	cl->deadline = sl_now_ms() + CLAIM_WAIT_MS;
	/* one step of its own, so that no answer ends the claim before every
	 * lookup is sent */
	cl->pending = 1;
	for (int b = 0; b < 2; b++) {
		sl_stream_job_name(name, b, job);
		claim_lookup(m, cl, key, uid, class_name, SL_CONTROLLER__JOB, job);
	}
	sl_stream_cronjob_name(name, job);
	claim_lookup(m, cl, key, uid, class_name, SL_CONTROLLER__CRONJOB, job);
	claim_lookup(m, cl, key, uid, class_name, SL_CONTROLLER__BACKFILL, NULL);
	claim_step(m, key);
}

uint64_t sl_controller__move_held_ms(struct sl_controller__move *m, const char *key)
{
	struct claim *cl = sl_map_get(&m->held, key);
	uint64_t now = sl_now_ms();

	if (!cl)
		return 0;
	if (now < cl->deadline) {
		while (!cl->pending && cl->n_wait &&
		       sl_controller__observe_get(m->o, cl->wait[cl->n_wait - 1].what, cl->kind, cl->ns,
		                                  cl->wait[cl->n_wait - 1].name))
			cl->n_wait--;
		if (cl->pending || cl->n_wait)
			return cl->deadline - now;
	}
	sl_map_drop(&m->held, key);
	return 0;
}

void sl_controller__move_forget(struct sl_controller__move *m, const char *key)
{
	sl_map_drop(&m->held, key);
}

size_t sl_controller__move_remembered(const struct sl_controller__move *m)
{
	return m->held.n;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

int sl_controller__move_new(const struct sl_controller__ctx *ctx, const struct sl_controller__observe *o,
                            struct sl_controller__move **ret)
{
	struct sl_controller__move *m = calloc(1, sizeof(*m));

	if (!m)
		return SL_ENOMEM;
	m->ctx = ctx;
	m->o = o;
	sl_map_init_owning(&m->held, free);
	*ret = m;
	return 0;
}

void sl_controller__move_free(struct sl_controller__move *m)
{
	if (!m)
		return;
	/* their callbacks come (SL_ECANCELED when the client goes) and free them */
	for (struct op *op = m->ops; op; op = op->next)
		op->m = NULL;
	sl_map_free(&m->held, NULL);
	free(m);
}
