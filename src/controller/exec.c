/* The controller's reconcile and executor: gathers what the caches hold about
 * one stream, calls sl_stream_decide() and performs its actions one after the
 * other (their order is what makes a crash between two of them safe). */
#include "sluice/manifest-json.h"
#include "controller-internal.h"
#include "sluice/stream.h"

#include <stdio.h>
#include <string.h>

#define KEY_MAX 400

struct exec {
	struct sl_controller *c; /* NULL once the controller was freed */
	struct exec *next, *prev;
	char key[KEY_MAX];
	char kind[128], ns[64], name[SL_STREAM_NAME_MAX + 1];
	char api_version[320], plural[128];
	struct sl_stream_decision d;
	size_t i;
	cJSON *involved;
	enum sl_controller_result result;
};

static void done_key(struct sl_controller *c, const char *key, enum sl_controller_result res)
{
	c->metrics.reconciles[res]++;
	if (res == SL_CONTROLLER_OK || res == SL_CONTROLLER_NOOP)
		sl_loop_workqueue_forget(c->wq, key);
	else if (res == SL_CONTROLLER_ERROR || res == SL_CONTROLLER_CONFLICT)
		sl_loop_workqueue_add_rate_limited(c->wq, key);
	sl_loop_workqueue_done(c->wq, key);
	c->in_flight--;
	sl_controller__check_stopped(c);
	sl_controller__pump(c);
}

static void exec_free(struct exec *x)
{
	sl_stream_decision_free(&x->d);
	cJSON_Delete(x->involved);
	free(x);
}

static void exec_finish(struct exec *x)
{
	struct sl_controller *c = x->c;

	if (x->prev)
		x->prev->next = x->next;
	else
		c->execs = x->next;
	if (x->next)
		x->next->prev = x->prev;
	char key[KEY_MAX];
	enum sl_controller_result res = x->result;
	snprintf(key, sizeof(key), "%s", x->key);
	exec_free(x);
	done_key(c, key, res);
}

void sl_controller__exec_orphan_all(struct sl_controller *c)
{
	/* Their callbacks still come (with SL_ECANCELED when the client goes)
	 * and free them. */
	for (struct exec *x = c->execs; x; x = x->next)
		x->c = NULL;
	c->execs = NULL;
}

static void ignore_result(struct sl_kube_result *res, void *payload)
{
}

static void exec_next(struct exec *x);

/* The object an action wrote, for expectations: its id and cached state. */
static const cJSON *action_target(struct exec *x, const struct sl_stream_action *a, char id[static KEY_MAX])
{
	struct sl_controller *c = x->c;
	struct klass *kl;

	switch (a->type) {
	case SL_STREAM_ACT_CREATE_JOB:
	case SL_STREAM_ACT_DELETE_JOB:
		snprintf(id, KEY_MAX, "J/%s/%s", a->ns, a->name);
		return sl_controller__iset_get(c, &c->jobs, a->ns, a->name);
	case SL_STREAM_ACT_APPLY_CRONJOB:
	case SL_STREAM_ACT_PATCH_CRONJOB:
	case SL_STREAM_ACT_DELETE_CRONJOB:
		snprintf(id, KEY_MAX, "C/%s/%s", a->ns, a->name);
		return sl_controller__iset_get(c, &c->cronjobs, a->ns, a->name);
	case SL_STREAM_ACT_CREATE_BACKFILL:
	case SL_STREAM_ACT_COMPLETE_BACKFILL:
	case SL_STREAM_ACT_DELETE_BACKFILL:
		snprintf(id, KEY_MAX, "B/%s/%s", a->ns, a->name);
		return sl_controller__iset_get(c, &c->backfills, a->ns, a->name);
	default:
		snprintf(id, KEY_MAX, "S/%s/%s", a->ns, a->name);
		kl = sl_controller__class_by_kind(c, x->kind);
		return kl ? sl_controller__iset_get(c, &kl->streams, a->ns, a->name) : NULL;
	}
}

static void on_write(struct sl_kube_result *res, void *payload)
{
	struct exec *x = payload;
	struct sl_controller *c = x->c;
	struct sl_stream_action *a;
	int code = res->code;
	bool ok;

	if (!c) {
		exec_free(x);
		return;
	}
	a = &x->d.actions[x->i];
	switch (a->type) {
	case SL_STREAM_ACT_CREATE_JOB:
	case SL_STREAM_ACT_CREATE_BACKFILL:
		/* Already there: done (names are deterministic), never a second. */
		ok = code == 0 || code == SL_EEXIST;
		if (code == SL_EEXIST)
			sl_loop_workqueue_add(c->wq, x->key);
		break;
	case SL_STREAM_ACT_DELETE_JOB:
	case SL_STREAM_ACT_DELETE_BACKFILL:
	case SL_STREAM_ACT_DELETE_CRONJOB:
		ok = code == 0 || code == SL_ENOTFOUND;
		break;
	default:
		ok = code == 0;
		if (code == SL_ENOTFOUND) {
			/* The object is gone: its delete event brings us back. */
			x->result = SL_CONTROLLER_NOOP;
			exec_finish(x);
			return;
		}
		break;
	}
	if (!ok) {
		x->result = code == SL_ECONFLICT ? SL_CONTROLLER_CONFLICT : SL_CONTROLLER_ERROR;
		if (code == SL_ECANCELED) {
			x->result = SL_CONTROLLER_NOOP;
		} else {
			sl_log_obj(SL_LOG_WARN, x->kind, x->ns, x->name, "%s %s: %s",
			           sl_stream_action_name(a->type), a->name, res->err.msg);
			/* One Warning event per streak of failures, not one per retry. */
			if (sl_loop_workqueue_requeues(c->wq, x->key) == 0 && x->involved) {
				char msg[SL_ERRMSG_MAX + 64];
				snprintf(msg, sizeof(msg), "%s %s failed: %s", sl_stream_action_name(a->type),
				         a->name,
				         res->message && *res->message ? res->message : sl_strerror(code));
				sl_kube_event(c->k, x->involved, "Warning", "ReconcileError", msg,
				              ignore_result, NULL);
				c->metrics.events++;
			}
		}
		exec_finish(x);
		return;
	}
	c->metrics.writes_ok++;
	if (code == 0 && res->body) {
		char id[KEY_MAX];
		const cJSON *cached = action_target(x, a, id);
		bool del = a->type == SL_STREAM_ACT_DELETE_JOB || a->type == SL_STREAM_ACT_DELETE_BACKFILL ||
		           a->type == SL_STREAM_ACT_DELETE_CRONJOB;
		/* A deleted object the cache no longer holds is gone already:
		 * its DELETED event came before this response, so there is
		 * nothing left to wait for. */
		if (!del || cached)
			sl_controller__expect(c, x->key, id, cached, res->body);
	}
	x->i++;
	exec_next(x);
}

static void exec_next(struct exec *x)
{
	struct sl_controller *c = x->c;

	while (x->i < x->d.n_actions) {
		struct sl_stream_action *a = &x->d.actions[x->i];
		struct sl_kube_call_opts o = {.field_manager = SL_ARCANE_FIELD_MANAGER_CONTROLLER};
		struct sl_kube_ref jobs = {.api_version = "batch/v1",
		                           .resource = "jobs",
		                           .namespaced = true,
		                           .ns = a->ns,
		                           .name = a->name};
		struct sl_kube_ref cronjobs = {.api_version = "batch/v1",
		                               .resource = "cronjobs",
		                               .namespaced = true,
		                               .ns = a->ns,
		                               .name = a->name};
		struct sl_kube_ref bfrs = {.api_version = SL_ARCANE_API_VERSION,
		                           .resource = "backfillrequests",
		                           .namespaced = true,
		                           .ns = a->ns,
		                           .name = a->name};
		struct sl_kube_ref stream = {.api_version = x->api_version,
		                             .resource = x->plural,
		                             .namespaced = true,
		                             .ns = a->ns,
		                             .name = a->name};
		int r = 0;

		switch (a->type) {
		case SL_STREAM_ACT_CREATE_JOB:
			jobs.name = NULL;
			r = sl_kube_create(c->k, &jobs, a->object, &o, on_write, x);
			break;
		case SL_STREAM_ACT_DELETE_JOB:
			o.propagation = "Foreground";
			/* only the Job decide() saw: one created again meanwhile
			 * (same name) answers 409 and the stream is looked at anew */
			o.precondition_uid = a->uid;
			r = sl_kube_delete(c->k, &jobs, &o, on_write, x);
			break;
		case SL_STREAM_ACT_CREATE_BACKFILL:
			bfrs.name = NULL;
			r = sl_kube_create(c->k, &bfrs, a->object, &o, on_write, x);
			break;
		case SL_STREAM_ACT_COMPLETE_BACKFILL:
			/* A merge patch of spec.completed alone: the rest of the
			 * spec (payload included) stays as it is. */
			r = sl_kube_patch(c->k, &bfrs, SL_KUBE_PATCH_MERGE, a->object, &o, on_write, x);
			sl_log_obj(SL_LOG_INFO, "BackfillRequest", a->ns, a->name, "completed");
			break;
		case SL_STREAM_ACT_APPLY_CRONJOB:
			o.force = true;
			r = sl_kube_apply(c->k, &cronjobs, a->object, &o, on_write, x);
			break;
		case SL_STREAM_ACT_PATCH_CRONJOB:
			r = sl_kube_patch(c->k, &cronjobs, SL_KUBE_PATCH_MERGE, a->object, &o, on_write, x);
			break;
		case SL_STREAM_ACT_DELETE_CRONJOB:
			/* Its runs go with it, in the background: nothing waits. */
			o.propagation = "Background";
			o.precondition_uid = a->uid;
			r = sl_kube_delete(c->k, &cronjobs, &o, on_write, x);
			break;
		case SL_STREAM_ACT_DELETE_BACKFILL:
			r = sl_kube_delete(c->k, &bfrs, &o, on_write, x);
			break;
		case SL_STREAM_ACT_WRITE_STATUS:
			stream.subresource = "status";
			r = sl_kube_patch(c->k, &stream, SL_KUBE_PATCH_MERGE, a->status, &o, on_write, x);
			break;
		case SL_STREAM_ACT_WRITE_MEMORY:
			r = sl_kube_patch(c->k, &stream, SL_KUBE_PATCH_MERGE, a->object, &o, on_write, x);
			break;
		case SL_STREAM_ACT_EVENT:
			/* Best effort: an Event lost costs nothing but the record. */
			sl_log_obj(strcmp(a->event_type, "Warning") == 0 ? SL_LOG_WARN : SL_LOG_INFO, x->kind,
			           x->ns, x->name, "%s: %s", a->reason, a->message ? a->message : "");
			if (x->involved &&
			    sl_kube_event(c->k, x->involved, a->event_type, a->reason,
			                  a->message ? a->message : "", ignore_result, NULL) == 0)
				c->metrics.events++;
			x->i++;
			continue;
		case SL_STREAM_ACT_REQUEUE:
			sl_loop_workqueue_add_after(c->wq, x->key, a->requeue_ms);
			x->i++;
			continue;
		}
		if (r == 0) {
			c->metrics.actions++;
			return;
		}
		sl_log_obj(SL_LOG_WARN, x->kind, x->ns, x->name, "%s %s: %s", sl_stream_action_name(a->type),
		           a->name, sl_strerror(r));
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

static const cJSON *gone_of(struct sl_controller *c, const char *ns, const char *job)
{
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/%s", ns, job);
	return sl_controller__map_get(&c->gone, key);
}

static void forget_stream(struct sl_controller *c, const char *key, const char *ns, const char *name)
{
	char job[64], k[KEY_MAX];

	for (int b = 0; b < 2; b++) {
		sl_stream_job_name(name, b, job);
		snprintf(k, sizeof(k), "%s/%s", ns, job);
		sl_controller__map_del(&c->gone, k);
	}
	sl_controller__map_del(&c->sstate, key);
}

/* A pending BackfillRequest for this stream that names another StreamClass
 * is not run; its owner hears why, once per version of the request. */
static void warn_class_mismatch(struct sl_controller *c, const cJSON *b, const cJSON *stream,
                                const struct klass *kl)
{
	const char *rv = sl_manifest_md_str(b, "resourceVersion"),
	           *want = sl_manifest_str(sl_manifest_obj(b, "spec"), "streamClass");
	char key[KEY_MAX], msg[1024];
	const char *seen;
	char *copy;

	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(b, "spec"), "completed")) || !rv)
		return;
	snprintf(key, sizeof(key), "%s/%s", sl_manifest_md_str(b, "namespace"),
	         sl_manifest_md_str(b, "name"));
	seen = sl_controller__map_get(&c->warned, key);
	if (seen && strcmp(seen, rv) == 0)
		return;
	copy = sl_strdup(rv);
	if (!copy || sl_controller__map_put(&c->warned, key, copy) < 0) {
		free(copy);
		return;
	}
	snprintf(msg, sizeof(msg),
	         "not run: spec.streamClass is \"%s\", but stream %s is a %s of StreamClass \"%s\"",
	         want ? want : "", sl_manifest_md_str(stream, "name"), sl_manifest_str(stream, "kind"),
	         kl->name);
	sl_log_obj(SL_LOG_WARN, "BackfillRequest", sl_manifest_md_str(b, "namespace"),
	           sl_manifest_md_str(b, "name"), "%s", msg);
	if (sl_kube_event(c->k, b, "Warning", "StreamClassMismatch", msg, ignore_result, NULL) == 0)
		c->metrics.events++;
}

static void reconcile(struct sl_controller *c, const char *wkey)
{
	char key[KEY_MAX], kind[128], ns[64], name[SL_STREAM_NAME_MAX + 1];
	const char *s1, *s2;
	struct klass *kl;
	const cJSON *stream;
	struct sstate *st;

	snprintf(key, sizeof(key), "%s", wkey);
	s1 = strchr(key, '/');
	s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	if (!s2 || (size_t)(s1 - key) >= sizeof(kind) || (size_t)(s2 - s1 - 1) >= sizeof(ns) ||
	    strlen(s2 + 1) >= sizeof(name)) {
		done_key(c, key, SL_CONTROLLER_NOOP);
		return;
	}
	snprintf(kind, sizeof(kind), "%.*s", (int)(s1 - key), key);
	snprintf(ns, sizeof(ns), "%.*s", (int)(s2 - s1 - 1), s1 + 1);
	snprintf(name, sizeof(name), "%s", s2 + 1);

	kl = sl_controller__class_by_kind(c, kind);
	if (!kl || kl->state != K_WATCHING) {
		done_key(c, key, SL_CONTROLLER_NOOP);
		return;
	}
	stream = sl_controller__iset_get(c, &kl->streams, ns, name);
	if (!stream) {
		/* Deleted: the garbage collector removes what it owned. */
		forget_stream(c, key, ns, name);
		done_key(c, key, SL_CONTROLLER_NOOP);
		return;
	}
	st = sl_controller__map_get(&c->sstate, key);
	if (st) {
		uint64_t now = sl_now_ms();
		if (now < st->deadline) {
			sl_loop_workqueue_add_after(c->wq, key, st->deadline - now);
			done_key(c, key, SL_CONTROLLER_WAIT);
			return;
		}
		sl_controller__map_del(&c->sstate, key);
	}

	const struct names *bn = sl_controller__bfr_names(c, ns, name);
	const cJSON **bfrs = NULL;
	size_t nb = 0;
	if (bn && bn->n) {
		bfrs = calloc(bn->n, sizeof(*bfrs));
		if (!bfrs) {
			done_key(c, key, SL_CONTROLLER_ERROR);
			return;
		}
		for (size_t i = 0; i < bn->n; i++) {
			const cJSON *b = sl_controller__iset_get(c, &c->backfills, ns, bn->v[i]);
			if (b &&
			    sl_streq(sl_manifest_str(sl_manifest_obj(b, "spec"), "streamClass"), kl->name))
				bfrs[nb++] = b;
			else if (b)
				warn_class_mismatch(c, b, stream, kl);
		}
	}
	char sjob[64], bjob[64], cjob[64];
	struct sl_arcane_layout l;
	struct sl_error lerr;
	sl_stream_job_name(name, false, sjob);
	sl_stream_job_name(name, true, bjob);
	sl_stream_cronjob_name(name, cjob);
	/* A layout error is decide()'s to report; the refs read so far count. */
	sl_arcane_layout_read(stream, &l, &lerr);
	struct sl_stream_observed in = {
	    .stream = stream,
	    .stream_class = c->classes_inf ? sl_kube_informer_get(c->classes_inf, NULL, kl->name) : NULL,
	    .tmpl = sl_controller__template(c, l.backend == SL_ARCANE_BACKEND_CRON ? &l.batch : &l.streaming),
	    .backfill_tmpl = sl_controller__template(c, &l.backfill),
	    .cronjob = sl_controller__iset_get(c, &c->cronjobs, ns, cjob),
	    .backfills = bfrs,
	    .n_backfills = nb,
	    .streaming_job = sl_controller__iset_get(c, &c->jobs, ns, sjob),
	    .backfill_job = sl_controller__iset_get(c, &c->jobs, ns, bjob),
	    .now = sl_wall_s(),
	};
	in.streaming_job_gone = in.streaming_job ? NULL : gone_of(c, ns, sjob);
	in.backfill_job_gone = in.backfill_job ? NULL : gone_of(c, ns, bjob);

	struct exec *x = calloc(1, sizeof(*x));
	struct sl_error err = {0};
	int r = x ? sl_stream_decide(&in, &x->d, &err) : SL_ENOMEM;
	free(bfrs);
	if (r < 0) {
		sl_log_obj(SL_LOG_ERROR, kind, ns, name, "decide: %s", err.msg);
		free(x);
		done_key(c, key, r == SL_ENOMEM ? SL_CONTROLLER_ERROR : SL_CONTROLLER_NOOP);
		return;
	}
	if (!x->d.n_actions) {
		exec_free(x);
		done_key(c, key, SL_CONTROLLER_NOOP);
		return;
	}
	x->c = c;
	x->result = SL_CONTROLLER_OK;
	snprintf(x->key, sizeof(x->key), "%s", key);
	snprintf(x->kind, sizeof(x->kind), "%s", kind);
	snprintf(x->ns, sizeof(x->ns), "%s", ns);
	snprintf(x->name, sizeof(x->name), "%s", name);
	snprintf(x->api_version, sizeof(x->api_version), "%s", kl->api_version);
	snprintf(x->plural, sizeof(x->plural), "%s", kl->plural);
	x->involved = involved_of(stream);
	x->next = c->execs;
	if (c->execs)
		c->execs->prev = x;
	c->execs = x;
	exec_next(x);
}

void sl_controller__pump(struct sl_controller *c)
{
	const char *key;

	if (c->pumping || !sl_controller__shared_synced(c))
		return;
	c->pumping = true;
	while (!c->stopping && c->in_flight < c->opts.workers && (key = sl_loop_workqueue_get(c->wq))) {
		c->in_flight++;
		reconcile(c, key);
	}
	c->pumping = false;
}
