/* The controller's executor: performs the actions of one decision one after
 * the other (their order is what makes a crash between two of them safe),
 * and records what each write expects the caches to show.
 *
 * Our own writes show up in the caches only when their watch events arrive.
 * To not decide twice on the same stale view (a second status write, a
 * second Event), each successful write records an expectation (object and
 * resourceVersion) on its stream; the stream is not reconciled again until
 * the caches caught up or expectation_wait_ms passed.
 *
 * A write that fails ends its decision. When the API server refused it,
 * why is kept per stream and handed to the next decide() (write_error),
 * which records it in the stream's Ready condition and tells it in a
 * Warning Event (also when the refusal was of a status write: the next one
 * may go through). A decision that goes through clears it and looks at the
 * stream again, so that the condition is put back. */
#include "act.h"
#include "move.h"
#include "observe.h"
#include "sluice/arcane.h"
#include "sluice/base-map.h"
#include "sluice/loop-workqueue.h"
#include "sluice/manifest-json.h"

#include <stdio.h>
#include <string.h>

#define KEY_MAX SL_CONTROLLER__KEY_MAX
/* A create found its object outside the caches: look again after this
 * long, unless its watch event comes first. */
#define ADOPT_WAIT_MS 1000

struct exec;

struct sl_controller__act {
	const struct sl_controller__ctx *ctx;
	const struct sl_controller__observe *o;
	struct sl_controller__move *mv;
	struct sl_loop_workqueue *wq;
	uint64_t wait_ms;
	struct sl_map sstate; /* stream key -> struct sstate */
	struct sl_map errors; /* stream key -> char *, why its last write failed */
	struct exec *execs;   /* decisions being performed */
};

/* ---- expectations ------------------------------------------------------------- */

/* Our writes a stream waits to see in the caches. */
struct sstate {
	struct {
		char id[KEY_MAX]; /* "J/ns/name", "B/ns/name", "S/ns/name" */
		char rv[64];
	} e[8];
	size_t n;
	uint64_t deadline;
};

static void obj_id(enum sl_controller__what what, const char *ns, const char *name, char out[static KEY_MAX])
{
	snprintf(out, KEY_MAX, "%c/%s/%s", (char)what, ns ? ns : "", name ? name : "");
}

void sl_controller__act_seen(struct sl_controller__act *a, const char *key, enum sl_controller__what what,
                             const cJSON *obj, bool gone)
{
	struct sstate *st = sl_map_get(&a->sstate, key);
	/* rv NULL: the object is gone, every expectation on it is met. */
	const char *rv = gone ? NULL : sl_manifest_md_str(obj, "resourceVersion");
	char id[KEY_MAX];

	if (!st)
		return;
	obj_id(what, sl_manifest_md_str(obj, "namespace"), sl_manifest_md_str(obj, "name"), id);
	for (size_t i = 0; i < st->n;) {
		if (strcmp(st->e[i].id, id) == 0 && (!rv || strcmp(st->e[i].rv, rv) == 0))
			st->e[i] = st->e[--st->n];
		else
			i++;
	}
	if (!st->n)
		sl_map_drop(&a->sstate, key);
}

/* Records that stream key waits for object id at the resourceVersion of
 * body (unless cached already holds it). */
static void expect(struct sl_controller__act *a, const char *key, const char *id, const cJSON *cached,
                   const cJSON *body)
{
	const char *rv = sl_manifest_md_str(body, "resourceVersion");
	struct sstate *st;

	/* Already in the cache (the event beat the response), or nothing to
	 * wait for. */
	if (!rv || sl_streq(sl_manifest_md_str(cached, "resourceVersion"), rv))
		return;
	st = sl_map_get(&a->sstate, key);
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st || sl_map_put(&a->sstate, key, st, NULL) < 0) {
			free(st);
			return;
		}
	}
	if (st->n == SL_ARRAY_SIZE(st->e))
		return;
	snprintf(st->e[st->n].id, sizeof(st->e[0].id), "%s", id);
	snprintf(st->e[st->n].rv, sizeof(st->e[0].rv), "%s", rv);
	st->n++;
	st->deadline = sl_now_ms() + a->wait_ms;
}

uint64_t sl_controller__act_wait_ms(struct sl_controller__act *a, const char *key)
{
	struct sstate *st = sl_map_get(&a->sstate, key);
	uint64_t now;

	if (!st)
		return 0;
	now = sl_now_ms();
	if (now < st->deadline)
		return st->deadline - now;
	sl_map_drop(&a->sstate, key);
	return 0;
}

void sl_controller__act_forget(struct sl_controller__act *a, const char *key)
{
	sl_map_drop(&a->sstate, key);
	sl_map_drop(&a->errors, key);
}

size_t sl_controller__act_remembered(const struct sl_controller__act *a)
{
	return a->sstate.n + a->errors.n;
}

/* ---- failed writes --------------------------------------------------------------- */

const char *sl_controller__act_error(const struct sl_controller__act *a, const char *key)
{
	return sl_map_get(&a->errors, key);
}

bool sl_controller__act_clear_error(struct sl_controller__act *a, const char *key)
{
	if (!sl_map_get(&a->errors, key))
		return false;
	sl_map_drop(&a->errors, key);
	return true;
}

static void keep_error(struct sl_controller__act *a, const char *key, const char *msg)
{
	char *m = sl_strdup(msg);

	/* Without it the failure is only in the log and the metrics. */
	if (m && sl_map_put(&a->errors, key, m, NULL) < 0)
		free(m);
}

/* ---- one decision being performed -------------------------------------------------- */

struct exec {
	struct sl_controller__act *a; /* NULL once the controller was freed */
	struct exec *next, *prev;
	char key[KEY_MAX];
	char kind[128], ns[64], name[SL_STREAM_NAME_MAX + 1];
	char api_version[320], plural[128];
	struct sl_stream_decision d;
	size_t i; /* the action being performed */
	cJSON *involved;
	enum sl_controller_result result;
	uint64_t started_us;
};

static void exec_free(struct exec *x)
{
	sl_stream_decision_free(&x->d);
	cJSON_Delete(x->involved);
	free(x);
}

static void exec_finish(struct exec *x)
{
	struct sl_controller__act *a = x->a;
	enum sl_controller_result res = x->result;
	uint64_t started_us = x->started_us;
	char key[KEY_MAX];

	if (x->prev)
		x->prev->next = x->next;
	else
		a->execs = x->next;
	if (x->next)
		x->next->prev = x->prev;
	snprintf(key, sizeof(key), "%s", x->key);
	exec_free(x);
	sl_controller__done(a->ctx->c, key, res, started_us);
}

static void ignore_result(struct sl_kube_result *res, void *payload)
{
}

static void exec_next(struct exec *x);

/* What an action writes, for expectations. */
static enum sl_controller__what target_of(enum sl_stream_action_type t)
{
	switch (t) {
	case SL_STREAM_ACT_CREATE_JOB:
	case SL_STREAM_ACT_DELETE_JOB:
		return SL_CONTROLLER__JOB;
	case SL_STREAM_ACT_APPLY_CRONJOB:
	case SL_STREAM_ACT_PATCH_CRONJOB:
	case SL_STREAM_ACT_DELETE_CRONJOB:
		return SL_CONTROLLER__CRONJOB;
	case SL_STREAM_ACT_CREATE_BACKFILL:
	case SL_STREAM_ACT_COMPLETE_BACKFILL:
	case SL_STREAM_ACT_DELETE_BACKFILL:
		return SL_CONTROLLER__BACKFILL;
	default:
		return SL_CONTROLLER__STREAM;
	}
}

static bool is_create(enum sl_stream_action_type t)
{
	return t == SL_STREAM_ACT_CREATE_JOB || t == SL_STREAM_ACT_CREATE_BACKFILL;
}

static bool is_delete(enum sl_stream_action_type t)
{
	return t == SL_STREAM_ACT_DELETE_JOB || t == SL_STREAM_ACT_DELETE_BACKFILL ||
	       t == SL_STREAM_ACT_DELETE_CRONJOB;
}

/* A successful write: the stream waits until the caches show it. */
static void expect_write(struct exec *x, const struct sl_stream_action *ac, const cJSON *body)
{
	enum sl_controller__what what = target_of(ac->type);
	const cJSON *cached = sl_controller__observe_get(x->a->o, what, x->kind, ac->ns, ac->name);
	char id[KEY_MAX];

	/* A deleted object the cache no longer holds is gone already: its
	 * DELETED event came before this response, so there is nothing left
	 * to wait for. */
	if (is_delete(ac->type) && !cached)
		return;
	obj_id(what, ac->ns, ac->name, id);
	expect(x->a, x->key, id, cached, body);
}

/* A write that failed ends the decision: logged, and, when the API server
 * answered (a webhook, RBAC or validation refused it), kept for the next
 * decision to record on the stream. A write it never answered says
 * nothing about the stream: after an outage every stream would carry it,
 * and recording that would double the writes just when the server comes
 * back; it is in the log and the metrics. A conflict is a race, not a
 * failure: the stream is looked at anew. */
static void write_failed(struct exec *x, const struct sl_stream_action *ac, const struct sl_kube_result *res)
{
	int code = res->code;
	char msg[SL_ERRMSG_MAX + 128];

	if (code == SL_ECANCELED) {
		x->result = SL_CONTROLLER_NOOP;
		return;
	}
	x->result = code == SL_ECONFLICT ? SL_CONTROLLER_CONFLICT : SL_CONTROLLER_ERROR;
	sl_log_obj(SL_LOG_WARN, x->kind, x->ns, x->name, "%s %s: %s", sl_stream_action_name(ac->type),
	           ac->name, res->err.msg);
	if (code == SL_ECONFLICT || sl_kube_unreachable(res))
		return;
	/* a message that does not fit keeps its start */
	(void)sl_snprintf_ok(msg, sizeof(msg), "%s %s failed: %s", sl_stream_action_name(ac->type), ac->name,
	                     res->message && *res->message ? res->message : sl_strerror(code));
	keep_error(x->a, x->key, msg);
}

/* The metrics of a write the server did (not one found done already). */
static void count_write(struct sl_controller_metrics *m, const struct sl_stream_action *ac)
{
	if (ac->type == SL_STREAM_ACT_CREATE_JOB)
		m->jobs_created[sl_streq(sl_manifest_label(ac->object, SL_ARCANE_LABEL_BACKFILLING), "true")
		                    ? SL_CONTROLLER_JOB_BACKFILL
		                    : SL_CONTROLLER_JOB_STREAMING]++;
	else if (ac->type == SL_STREAM_ACT_COMPLETE_BACKFILL)
		m->backfills_completed++;
}

static void on_write(struct sl_kube_result *res, void *payload)
{
	struct exec *x = payload;
	struct sl_controller__act *a = x->a;
	const struct sl_stream_action *ac;
	int code = res->code;
	bool ok;

	if (!a) {
		exec_free(x);
		return;
	}
	ac = &x->d.actions[x->i];
	if (is_create(ac->type)) {
		/* Already there: done (names are deterministic), never a second.
		 * Not in the cache either: the cache lags, or the object is
		 * labelled for another shard (its stream moved here); then it
		 * is taken over, and its watch event queues the stream. */
		ok = code == 0 || code == SL_EEXIST;
		if (code == SL_EEXIST &&
		    !sl_controller__observe_get(a->o, target_of(ac->type), x->kind, ac->ns, ac->name)) {
			sl_controller__move_adopt(a->mv, target_of(ac->type), ac->ns, ac->name, x->involved);
			sl_loop_workqueue_add_after(a->wq, x->key, ADOPT_WAIT_MS);
		} else if (code == SL_EEXIST) {
			sl_loop_workqueue_add(a->wq, x->key);
		}
	} else if (is_delete(ac->type)) {
		ok = code == 0 || code == SL_ENOTFOUND;
	} else if (code == SL_ENOTFOUND) {
		/* The object is gone: its delete event brings us back. */
		x->result = SL_CONTROLLER_NOOP;
		exec_finish(x);
		return;
	} else {
		ok = code == 0;
	}
	if (!ok) {
		write_failed(x, ac, res);
		exec_finish(x);
		return;
	}
	a->ctx->metrics->writes_ok++;
	if (code == 0)
		count_write(a->ctx->metrics, ac);
	if (code == 0 && res->body)
		expect_write(x, ac, res->body);
	x->i++;
	exec_next(x);
}

/* The resource an action writes. */
static struct sl_kube_ref ref_of(const struct exec *x, const struct sl_stream_action *ac)
{
	struct sl_kube_ref ref = {.namespaced = true, .ns = ac->ns, .name = ac->name};

	switch (target_of(ac->type)) {
	case SL_CONTROLLER__JOB:
		ref.api_version = "batch/v1";
		ref.resource = "jobs";
		break;
	case SL_CONTROLLER__CRONJOB:
		ref.api_version = "batch/v1";
		ref.resource = "cronjobs";
		break;
	case SL_CONTROLLER__BACKFILL:
		ref.api_version = SL_ARCANE_API_VERSION;
		ref.resource = "backfillrequests";
		break;
	case SL_CONTROLLER__STREAM:
		ref.api_version = x->api_version;
		ref.resource = x->plural;
		break;
	}
	return ref;
}

/* Starts the write of action ac; on_write goes on from its answer. */
static int start_write(struct exec *x, const struct sl_stream_action *ac)
{
	struct sl_kube *k = x->a->ctx->k;
	struct sl_kube_call_opts o = {.field_manager = x->a->ctx->field_manager};
	struct sl_kube_ref ref = ref_of(x, ac);
	int r;

	switch (ac->type) {
	case SL_STREAM_ACT_CREATE_JOB:
	case SL_STREAM_ACT_CREATE_BACKFILL:
		ref.name = NULL;
		return sl_kube_create(k, &ref, ac->object, &o, on_write, x);
	case SL_STREAM_ACT_DELETE_JOB:
		/* a running Job's pods go before it; a finished one has none */
		o.propagation = ac->background ? "Background" : "Foreground";
		/* only the Job decide() saw: one created again meanwhile
		 * (same name) answers 409 and the stream is looked at anew */
		o.precondition_uid = ac->uid;
		return sl_kube_delete(k, &ref, &o, on_write, x);
	case SL_STREAM_ACT_COMPLETE_BACKFILL:
		/* A merge patch of spec.completed alone: the rest of the
		 * spec (payload included) stays as it is. */
		r = sl_kube_patch(k, &ref, SL_KUBE_PATCH_MERGE, ac->object, &o, on_write, x);
		sl_log_obj(SL_LOG_INFO, "BackfillRequest", ac->ns, ac->name, "completed");
		return r;
	case SL_STREAM_ACT_APPLY_CRONJOB:
		o.force = true;
		return sl_kube_apply(k, &ref, ac->object, &o, on_write, x);
	case SL_STREAM_ACT_DELETE_CRONJOB:
		/* Its runs go with it, in the background: nothing waits. */
		o.propagation = "Background";
		o.precondition_uid = ac->uid;
		return sl_kube_delete(k, &ref, &o, on_write, x);
	case SL_STREAM_ACT_DELETE_BACKFILL:
		return sl_kube_delete(k, &ref, &o, on_write, x);
	case SL_STREAM_ACT_WRITE_STATUS:
		ref.subresource = "status";
		return sl_kube_patch(k, &ref, SL_KUBE_PATCH_MERGE, ac->status, &o, on_write, x);
	case SL_STREAM_ACT_PATCH_CRONJOB:
	case SL_STREAM_ACT_WRITE_MEMORY:
		return sl_kube_patch(k, &ref, SL_KUBE_PATCH_MERGE, ac->object, &o, on_write, x);
	case SL_STREAM_ACT_EVENT:
	case SL_STREAM_ACT_REQUEUE:
		break; /* act_local's: never started as a write */
	}
	return SL_EINVALID;
}

/* Performs an action that writes nothing the decision waits for (an Event,
 * a requeue); false for a write. */
static bool act_local(struct exec *x, const struct sl_stream_action *ac)
{
	struct sl_controller__act *a = x->a;
	const char *msg = ac->message ? ac->message : "";

	switch (ac->type) {
	case SL_STREAM_ACT_EVENT:
		/* Best effort: an Event lost costs nothing but the record. */
		sl_log_obj(strcmp(ac->event_type, "Warning") == 0 ? SL_LOG_WARN : SL_LOG_INFO, x->kind, x->ns,
		           x->name, "%s: %s", ac->reason, msg);
		if (x->involved && sl_kube_event(a->ctx->k, x->involved, ac->event_type, ac->reason, msg,
		                                 ignore_result, NULL) == 0)
			a->ctx->metrics->events++;
		return true;
	case SL_STREAM_ACT_REQUEUE:
		sl_loop_workqueue_add_after(a->wq, x->key, ac->requeue_ms);
		return true;
	default:
		return false;
	}
}

/* Performs actions from x->i on until one waits for its answer; finishes
 * the decision when none is left or a write cannot start. */
static void exec_next(struct exec *x)
{
	while (x->i < x->d.n_actions) {
		const struct sl_stream_action *ac = &x->d.actions[x->i];
		int r;

		if (act_local(x, ac)) {
			x->i++;
			continue;
		}
		r = start_write(x, ac);
		if (r == 0) {
			x->a->ctx->metrics->actions++;
			return;
		}
		sl_log_obj(SL_LOG_WARN, x->kind, x->ns, x->name, "%s %s: %s", sl_stream_action_name(ac->type),
		           ac->name, sl_strerror(r));
		x->result = SL_CONTROLLER_ERROR;
		break;
	}
	exec_finish(x);
}

/* The identity of the stream for Events: copied, the cache moves on. */
static cJSON *involved_of(const cJSON *stream)
{
	cJSON *o = cJSON_CreateObject(), *md;

	if (!o || !cJSON_AddStringToObject(o, "apiVersion", sl_manifest_str(stream, "apiVersion")) ||
	    !cJSON_AddStringToObject(o, "kind", sl_manifest_str(stream, "kind")) ||
	    !(md = cJSON_AddObjectToObject(o, "metadata")) ||
	    !cJSON_AddStringToObject(md, "name", sl_manifest_md_str(stream, "name")) ||
	    !cJSON_AddStringToObject(md, "namespace", sl_manifest_md_str(stream, "namespace")) ||
	    !cJSON_AddStringToObject(md, "uid", sl_manifest_md_str(stream, "uid"))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int sl_controller__act_run(struct sl_controller__act *a, const struct sl_controller__target *t,
                           struct sl_stream_decision *d)
{
	struct exec *x = calloc(1, sizeof(*x));

	if (!x)
		return SL_ENOMEM;
	x->a = a;
	x->result = SL_CONTROLLER_OK;
	x->started_us = t->started_us;
	snprintf(x->key, sizeof(x->key), "%s", t->key);
	snprintf(x->kind, sizeof(x->kind), "%s", t->kind);
	snprintf(x->ns, sizeof(x->ns), "%s", t->ns);
	snprintf(x->name, sizeof(x->name), "%s", t->name);
	snprintf(x->api_version, sizeof(x->api_version), "%s", t->api_version);
	snprintf(x->plural, sizeof(x->plural), "%s", t->plural);
	x->d = *d;
	memset(d, 0, sizeof(*d));
	/* Without it only the Events about the stream are lost. */
	x->involved = involved_of(t->stream);
	x->next = a->execs;
	if (a->execs)
		a->execs->prev = x;
	a->execs = x;
	exec_next(x);
	return 0;
}

void sl_controller__act_warn_mismatch(struct sl_controller__act *a, const cJSON *b, const cJSON *stream,
                                      const char *class_name)
{
	const char *want = sl_manifest_str(sl_manifest_obj(b, "spec"), "streamClass");
	char msg[1024];

	snprintf(msg, sizeof(msg),
	         "not run: spec.streamClass is \"%s\", but stream %s is a %s of StreamClass \"%s\"",
	         want ? want : "", sl_manifest_md_str(stream, "name"), sl_manifest_str(stream, "kind"),
	         class_name);
	sl_log_obj(SL_LOG_WARN, "BackfillRequest", sl_manifest_md_str(b, "namespace"),
	           sl_manifest_md_str(b, "name"), "%s", msg);
	if (sl_kube_event(a->ctx->k, b, "Warning", "StreamClassMismatch", msg, ignore_result, NULL) == 0)
		a->ctx->metrics->events++;
}

/* ---- lifecycle ------------------------------------------------------------------- */

/* The maps own plain allocations. */
static void value_free(void *p)
{
	free(p);
}

int sl_controller__act_new(const struct sl_controller__ctx *ctx, const struct sl_controller__observe *o,
                           struct sl_controller__move *mv, struct sl_loop_workqueue *wq,
                           uint64_t expectation_wait_ms, struct sl_controller__act **ret)
{
	struct sl_controller__act *a = calloc(1, sizeof(*a));

	if (!a)
		return SL_ENOMEM;
	a->ctx = ctx;
	a->o = o;
	a->mv = mv;
	a->wq = wq;
	a->wait_ms = expectation_wait_ms;
	sl_map_init_owning(&a->sstate, value_free);
	sl_map_init_owning(&a->errors, value_free);
	*ret = a;
	return 0;
}

void sl_controller__act_free(struct sl_controller__act *a)
{
	if (!a)
		return;
	/* Their callbacks still come (with SL_ECANCELED when the client goes)
	 * and free them. */
	for (struct exec *x = a->execs; x; x = x->next)
		x->a = NULL;
	sl_map_free(&a->sstate, NULL);
	sl_map_free(&a->errors, NULL);
	free(a);
}
