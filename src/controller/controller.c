/* The stream controller: informers on StreamClasses (and per class on the
 * kind it names), StreamingJobTemplates, BackfillRequests and sluice's Jobs
 * feed one work queue keyed "Kind/namespace/name"; a key is reconciled by
 * handing what the caches hold to sl_stream_decide() and performing the
 * actions it returns, in order (controller-exec.c).
 *
 * Our own writes show up in the caches only when their watch events arrive.
 * To not decide twice on the same stale view (a second status write, a
 * second Event), each successful write records an expectation (object and
 * resourceVersion) on its stream; the stream is not reconciled again until
 * the caches caught up or expectation_wait_ms passed. */
#include "sluice/manifest-json.h"
#include "controller-internal.h"
#include "sluice/controller.h"
#include "sluice/stream.h"
#include "sluice/loop-workqueue.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KEY_MAX 400

/* ---- informer sets: one informer per watched namespace ----------------------- */

static void iset_free(struct iset *s)
{
	for (size_t i = 0; i < s->n; i++)
		sl_kube_informer_free(s->inf[i]);
	free(s->inf);
	memset(s, 0, sizeof(*s));
}

static int iset_start(struct sl_controller *c, struct iset *s, const struct sl_kube_informer_opts *base,
                      const struct sl_kube_informer_handlers *h, void *payload, struct sl_error *err)
{
	size_t n = c->n_ns ? c->n_ns : 1;
	int r = 0;

	s->inf = calloc(n, sizeof(*s->inf));
	if (!s->inf)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && r == 0; i++) {
		struct sl_kube_informer_opts o = *base;
		o.ref.ns = c->n_ns ? c->ns[i] : NULL;
		r = sl_kube_informer_new(c->k, &o, h, payload, &s->inf[i], err);
		if (r == 0) {
			s->n++;
			r = sl_kube_informer_start(s->inf[i]);
			if (r < 0)
				sl_error_set(err, r, "starting an informer: %s", sl_strerror(r));
		}
	}
	if (r < 0)
		iset_free(s);
	return r;
}

static struct sl_kube_informer *iset_for(const struct sl_controller *c, const struct iset *s, const char *ns)
{
	if (!s->n)
		return NULL;
	if (!c->n_ns)
		return s->inf[0];
	for (size_t i = 0; i < s->n; i++)
		if (sl_streq(c->ns[i], ns))
			return s->inf[i];
	return NULL;
}

const cJSON *sl_controller__iset_get(const struct sl_controller *c, const struct iset *s, const char *ns,
                                     const char *name)
{
	struct sl_kube_informer *inf = iset_for(c, s, ns);
	return inf ? sl_kube_informer_get(inf, ns, name) : NULL;
}

static void iset_foreach(const struct iset *s, void (*fn)(const cJSON *obj, void *payload), void *payload)
{
	for (size_t i = 0; i < s->n; i++)
		sl_kube_informer_foreach(s->inf[i], fn, payload);
}

static bool iset_synced(const struct iset *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!sl_kube_informer_has_synced(s->inf[i]))
			return false;
	return s->n > 0;
}

/* ---- transforms: keep cached objects small ------------------------------------ */

static void trim_meta(cJSON *obj)
{
	cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(md, "annotations"),
	                                        "kubectl.kubernetes.io/last-applied-configuration");
}

static void trim_obj(cJSON *obj, void *payload)
{
	trim_meta(obj);
}

/* decide() reads a Job's metadata and status; its spec only to find the
 * BackfillRequest of a Job built without our annotation. */
static void trim_job(cJSON *obj, void *payload)
{
	trim_meta(obj);
	if (sl_manifest_annotation(obj, SL_ARCANE_ANN_BACKFILL_REQUEST) ||
	    !sl_manifest_label(obj, SL_ARCANE_LABEL_BACKFILLING) ||
	    strcmp(sl_manifest_label(obj, SL_ARCANE_LABEL_BACKFILLING), "true") != 0)
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "spec");
}

/* decide() reads a CronJob's metadata and spec.suspend; a CronJob that is
 * not a stream's (no controlling owner) keeps its metadata only. */
static void trim_cronjob(cJSON *obj, void *payload)
{
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");

	trim_meta(obj);
	cJSON_DeleteItemFromObjectCaseSensitive(spec, "jobTemplate");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
}

/* ---- keys and expectations --------------------------------------------------- */

static void stream_key(const char *kind, const char *ns, const char *name, char out[static KEY_MAX])
{
	snprintf(out, KEY_MAX, "%s/%s/%s", kind, ns ? ns : "", name);
}

void sl_controller__enqueue(struct sl_controller *c, const char *kind, const char *ns, const char *name)
{
	char key[KEY_MAX];

	if (!kind || !ns || !name)
		return;
	stream_key(kind, ns, name, key);
	sl_loop_workqueue_add(c->wq, key);
}

static void sstate_free(void *p)
{
	free(p);
}

/* An object event for stream key: drops the expectations it satisfies
 * (rv NULL: the object is gone, every expectation on it is met). */
static void exp_observe(struct sl_controller *c, const char *key, const char *id, const cJSON *obj, bool gone)
{
	struct sstate *st = sl_controller__map_get(&c->sstate, key);
	const char *rv = gone ? NULL : sl_manifest_md_str(obj, "resourceVersion");

	if (!st)
		return;
	for (size_t i = 0; i < st->n;) {
		if (strcmp(st->e[i].id, id) == 0 && (!rv || strcmp(st->e[i].rv, rv) == 0))
			st->e[i] = st->e[--st->n];
		else
			i++;
	}
	if (!st->n)
		sl_controller__map_del(&c->sstate, key);
}

void sl_controller__expect(struct sl_controller *c, const char *key, const char *id, const cJSON *cached,
                           const cJSON *body)
{
	const char *rv = sl_manifest_md_str(body, "resourceVersion");
	struct sstate *st;

	/* Already in the cache (the event beat the response), or nothing to
	 * wait for. */
	if (!rv || sl_streq(sl_manifest_md_str(cached, "resourceVersion"), rv))
		return;
	st = sl_controller__map_get(&c->sstate, key);
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st || sl_controller__map_put(&c->sstate, key, st) < 0) {
			free(st);
			return;
		}
	}
	if (st->n == SL_ARRAY_SIZE(st->e))
		return;
	snprintf(st->e[st->n].id, sizeof(st->e[0].id), "%s", id);
	snprintf(st->e[st->n].rv, sizeof(st->e[0].rv), "%s", rv);
	st->n++;
	st->deadline = sl_now_ms() + c->opts.expectation_wait_ms;
}

/* ---- classes -------------------------------------------------------------------- */

static void class_resolve(struct klass *kl);

struct klass *sl_controller__class_by_kind(struct sl_controller *c, const char *kind)
{
	struct klass *found = NULL;

	for (struct klass *kl = c->classes; kl; kl = kl->next)
		if (kl->kind && sl_streq(kl->kind, kind) && (!found || kl->state == K_WATCHING))
			found = kl;
	return found;
}

static struct klass *class_by_name(struct sl_controller *c, const char *name)
{
	for (struct klass *kl = c->classes; kl; kl = kl->next)
		if (sl_streq(kl->name, name))
			return kl;
	return NULL;
}

static void class_status_done(struct sl_kube_result *res, void *payload)
{
	struct dtoken *tok = payload;
	struct klass *kl = tok->kl;

	free(tok);
	if (!kl)
		return;
	kl->status_tok = NULL;
	if (res->code == 0 || res->code == SL_ENOTFOUND)
		return;
	/* Try again later; the cache still shows the old status. */
	kl->written[0] = '\0';
	sl_loop_timer_arm(kl->status_retry, 2000);
}

/* Writes phase and the Ready condition to the class unless its status says
 * so already. */
static void class_status(struct klass *kl)
{
	struct sl_controller *c = kl->c;
	const cJSON *obj = c->classes_inf ? sl_kube_informer_get(c->classes_inf, NULL, kl->name) : NULL;
	const cJSON *st = sl_manifest_obj(obj, "status"), *cond = NULL, *x;
	const cJSON *gen = cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(obj, "metadata"), "generation");
	bool ready = strcmp(kl->phase, "Ready") == 0;
	char sig[sizeof(kl->written)], now[32];
	int64_t g = cJSON_IsNumber(gen) ? (int64_t)gen->valuedouble : 0;

	if (!obj || c->stopping)
		return;
	snprintf(sig, sizeof(sig), "%s|%s|%s|%lld", kl->phase, kl->reason, kl->message, (long long)g);
	if (strcmp(sig, kl->written) == 0)
		return;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(st, "conditions"))
	{
		if (sl_streq(sl_manifest_str(x, "type"), "Ready"))
			cond = x;
	}
	const cJSON *cg = cJSON_GetObjectItemCaseSensitive(cond, "observedGeneration");
	if (sl_streq(sl_manifest_str(st, "phase"), kl->phase) &&
	    sl_streq(sl_manifest_str(cond, "status"), ready ? "True" : "False") &&
	    sl_streq(sl_manifest_str(cond, "reason"), kl->reason) &&
	    sl_streq(sl_manifest_str(cond, "message"), kl->message) && cJSON_IsNumber(cg) &&
	    (int64_t)cg->valuedouble == g) {
		snprintf(kl->written, sizeof(kl->written), "%s", sig);
		return;
	}
	if (cond && sl_streq(sl_manifest_str(cond, "status"), ready ? "True" : "False") &&
	    sl_manifest_str(cond, "lastTransitionTime"))
		snprintf(now, sizeof(now), "%s", sl_manifest_str(cond, "lastTransitionTime"));
	else
		sl_time_rfc3339(sl_wall_s(), now);

	cJSON *patch = cJSON_CreateObject(), *s, *conds, *cj;
	bool ok = patch && (s = cJSON_AddObjectToObject(patch, "status")) &&
	          cJSON_AddStringToObject(s, "phase", kl->phase) &&
	          (conds = cJSON_AddArrayToObject(s, "conditions")) && (cj = cJSON_CreateObject()) &&
	          cJSON_AddItemToArray(conds, cj) && cJSON_AddStringToObject(cj, "type", "Ready") &&
	          cJSON_AddStringToObject(cj, "status", ready ? "True" : "False") &&
	          cJSON_AddStringToObject(cj, "reason", kl->reason) &&
	          cJSON_AddStringToObject(cj, "message", kl->message) &&
	          cJSON_AddStringToObject(cj, "lastTransitionTime", now) &&
	          cJSON_AddNumberToObject(cj, "observedGeneration", (double)g);
	struct dtoken *tok = ok ? calloc(1, sizeof(*tok)) : NULL;
	if (tok) {
		struct sl_kube_ref ref = {.api_version = SL_ARCANE_API_VERSION,
		                          .resource = "streamclasses",
		                          .name = kl->name,
		                          .subresource = "status"};
		struct sl_kube_call_opts o = {.field_manager = SL_ARCANE_FIELD_MANAGER_CONTROLLER};
		tok->kl = kl;
		if (kl->status_tok)
			kl->status_tok->kl = NULL;
		if (sl_kube_patch(c->k, &ref, SL_KUBE_PATCH_MERGE, patch, &o, class_status_done, tok) == 0) {
			kl->status_tok = tok;
			snprintf(kl->written, sizeof(kl->written), "%s", sig);
			c->metrics.actions++;
		} else {
			free(tok);
			sl_loop_timer_arm(kl->status_retry, 2000);
		}
	}
	cJSON_Delete(patch);
}

static void class_set(struct klass *kl, const char *phase, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void class_set(struct klass *kl, const char *phase, const char *reason, const char *fmt, ...)
{
	va_list ap;
	bool changed = strcmp(kl->phase, phase) != 0 || strcmp(kl->reason, reason) != 0;

	snprintf(kl->phase, sizeof(kl->phase), "%s", phase);
	snprintf(kl->reason, sizeof(kl->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(kl->message, sizeof(kl->message), fmt, ap);
	va_end(ap);
	if (changed)
		sl_log_obj(strcmp(phase, "Failed") == 0 ? SL_LOG_WARN : SL_LOG_INFO, "StreamClass", NULL,
		           kl->name, "%s: %s", phase, kl->message);
	class_status(kl);
}

static void status_retry_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	class_status(payload);
}

static void class_teardown(struct klass *kl)
{
	iset_free(&kl->streams);
	kl->state = K_RESOLVING;
	if (kl->tok) {
		kl->tok->kl = NULL;
		kl->tok = NULL;
	}
	sl_loop_timer_disarm(kl->retry);
}

static void class_failed(struct klass *kl, const char *reason, const char *msg)
{
	class_teardown(kl);
	kl->state = K_FAILED;
	class_set(kl, "Failed", reason, "%s", msg);
	kl->backoff = kl->backoff ? SL_MIN(kl->backoff * 2, kl->c->opts.class_retry_max_ms)
	                          : kl->c->opts.class_retry_min_ms;
	sl_loop_timer_arm(kl->retry, sl_rand_between(kl->backoff / 2, kl->backoff));
}

/* Every stream of a class goes into the queue (its class changed). */
static void enqueue_obj(const cJSON *obj, void *payload)
{
	struct klass *kl = payload;
	sl_controller__enqueue(kl->c, kl->kind, sl_manifest_md_str(obj, "namespace"),
	                       sl_manifest_md_str(obj, "name"));
}

static void stream_add(const cJSON *obj, void *payload)
{
	struct klass *kl = payload;
	char key[KEY_MAX], id[KEY_MAX];

	stream_key(kl->kind, sl_manifest_md_str(obj, "namespace"), sl_manifest_md_str(obj, "name"), key);
	snprintf(id, sizeof(id), "S/%s/%s",
	         sl_manifest_md_str(obj, "namespace") ? sl_manifest_md_str(obj, "namespace") : "",
	         sl_manifest_md_str(obj, "name") ? sl_manifest_md_str(obj, "name") : "");
	exp_observe(kl->c, key, id, obj, false);
	sl_loop_workqueue_add(kl->c->wq, key);
}

static void stream_update(const cJSON *old, const cJSON *obj, void *payload)
{
	stream_add(obj, payload);
}

static void stream_del(const cJSON *obj, void *payload)
{
	struct klass *kl = payload;
	char key[KEY_MAX];

	stream_key(kl->kind, sl_manifest_md_str(obj, "namespace"), sl_manifest_md_str(obj, "name"), key);
	sl_controller__map_del(&kl->c->sstate, key);
	sl_loop_workqueue_add(kl->c->wq, key);
}

static void stream_synced(void *payload)
{
	struct klass *kl = payload;

	if (!iset_synced(&kl->streams))
		return;
	kl->backoff = 0;
	class_set(kl, "Ready", "Watching", "watching %s (%s)", kl->kind, kl->api_version);
}

static void stream_error(const struct sl_error *err, void *payload)
{
	struct klass *kl = payload;
	char msg[SL_ERRMSG_MAX + 64];

	/* The kind went away (its CRD was deleted): back to discovery. */
	if (err->code == SL_ENOTFOUND) {
		snprintf(msg, sizeof(msg), "%s %s is no longer served: %s", kl->api_version, kl->kind,
		         err->msg);
		class_failed(kl, "KindNotFound", msg);
	}
}

static void class_discovered(int code, const struct sl_kube_resource *r, const struct sl_error *err,
                             void *payload)
{
	struct dtoken *tok = payload;
	struct klass *kl = tok->kl;
	struct sl_controller *c;
	char msg[SL_ERRMSG_MAX + 256];
	struct sl_error ierr = {0};

	free(tok);
	if (!kl)
		return;
	kl->tok = NULL;
	c = kl->c;
	if (c->stopping)
		return;
	if (code == SL_ENOTFOUND) {
		snprintf(msg, sizeof(msg), "the API server does not serve kind %s in %s", kl->kind,
		         kl->api_version);
		class_failed(kl, "KindNotFound", msg);
		return;
	}
	if (code < 0) {
		snprintf(msg, sizeof(msg), "discovery of %s %s failed: %s", kl->api_version, kl->kind,
		         err ? err->msg : sl_strerror(code));
		class_failed(kl, "DiscoveryFailed", msg);
		return;
	}
	if (kl->plural && strcmp(r->plural, kl->plural) != 0) {
		snprintf(msg, sizeof(msg), "kind %s is served as %s, not as pluralName %s", kl->kind,
		         r->plural, kl->plural);
		class_failed(kl, "PluralNameMismatch", msg);
		return;
	}
	if (!r->namespaced) {
		snprintf(msg, sizeof(msg), "kind %s is cluster-scoped; streams must be namespaced", kl->kind);
		class_failed(kl, "ClusterScopedKind", msg);
		return;
	}
	struct sl_kube_informer_opts o = {
	    .ref = {.api_version = kl->api_version, .resource = r->plural, .namespaced = true}};
	struct sl_kube_informer_handlers h = {.add = stream_add,
	                                      .update = stream_update,
	                                      .del = stream_del,
	                                      .synced = stream_synced,
	                                      .error = stream_error,
	                                      .transform = trim_obj};
	if (iset_start(c, &kl->streams, &o, &h, kl, &ierr) < 0) {
		class_failed(kl, "WatchFailed", ierr.msg);
		return;
	}
	kl->state = K_WATCHING;
}

static void class_resolve(struct klass *kl)
{
	struct sl_controller *c = kl->c;
	struct dtoken *tok;
	int r;

	class_teardown(kl);
	if (c->stopping)
		return;
	/* Pending only for a new or changed class: a restart, or a retry
	 * of a Failed one, writes nothing until the outcome differs. */
	if (!kl->phase[0])
		class_set(kl, "Pending", "Resolving", "looking up %s %s", kl->api_version, kl->kind);
	tok = calloc(1, sizeof(*tok));
	if (!tok)
		return;
	tok->kl = kl;
	kl->tok = tok;
	r = sl_kube_discover(c->k, kl->api_version, kl->kind, class_discovered, tok);
	if (r < 0) {
		kl->tok = NULL;
		free(tok);
		class_failed(kl, "DiscoveryFailed", sl_strerror(r));
	}
}

static void retry_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	class_resolve(payload);
}

static void class_free(struct klass *kl)
{
	if (!kl)
		return;
	class_teardown(kl);
	if (kl->status_tok)
		kl->status_tok->kl = NULL;
	sl_loop_timer_free(kl->retry);
	sl_loop_timer_free(kl->status_retry);
	free(kl->name);
	free(kl->group);
	free(kl->version);
	free(kl->kind);
	free(kl->plural);
	free(kl);
}

static void class_apply(const cJSON *obj, void *payload)
{
	struct sl_controller *c = payload;
	const cJSON *spec = sl_manifest_obj(obj, "spec"), *st = sl_manifest_obj(obj, "status");
	const char *name = sl_manifest_md_str(obj, "name");
	const char *g = sl_manifest_str(spec, "apiGroupRef"), *v = sl_manifest_str(spec, "apiVersion"),
	           *k = sl_manifest_str(spec, "kindRef"), *p = sl_manifest_str(spec, "pluralName");
	struct klass *kl;

	if (!name || c->stopping)
		return;
	kl = class_by_name(c, name);
	if (kl && sl_streq(kl->group, g) && sl_streq(kl->version, v) && sl_streq(kl->kind, k) &&
	    sl_streq(kl->plural, p)) {
		/* Same kind: the secretRefs may have changed; the status may
		 * have been overwritten. */
		iset_foreach(&kl->streams, enqueue_obj, kl);
		class_status(kl);
		return;
	}
	if (!kl) {
		kl = calloc(1, sizeof(*kl));
		if (!kl || !(kl->name = sl_strdup(name)) ||
		    sl_loop_timer_new(c->loop, retry_fire, kl, &kl->retry) < 0 ||
		    sl_loop_timer_new(c->loop, status_retry_fire, kl, &kl->status_retry) < 0) {
			class_free(kl);
			return;
		}
		kl->c = c;
		kl->next = c->classes;
		c->classes = kl;
		/* Start from what the status says, so a restart writes nothing. */
		snprintf(kl->phase, sizeof(kl->phase), "%s",
		         sl_manifest_str(st, "phase") ? sl_manifest_str(st, "phase") : "");
	} else {
		/* Streams of the old kind: requeued under it they find no class. */
		kl->phase[0] = '\0';
	}
	free(kl->group);
	free(kl->version);
	free(kl->kind);
	free(kl->plural);
	kl->group = g ? sl_strdup(g) : NULL;
	kl->version = v ? sl_strdup(v) : NULL;
	kl->kind = k ? sl_strdup(k) : NULL;
	kl->plural = p ? sl_strdup(p) : NULL;
	kl->backoff = 0;
	if (!g || !v || !k || !p) {
		class_failed(kl, "InvalidSpec", "spec needs apiGroupRef, apiVersion, kindRef and pluralName");
		return;
	}
	snprintf(kl->api_version, sizeof(kl->api_version), "%s/%s", g, v);
	class_resolve(kl);
}

static void class_update(const cJSON *old, const cJSON *obj, void *payload)
{
	class_apply(obj, payload);
}

static void class_del(const cJSON *obj, void *payload)
{
	struct sl_controller *c = payload;
	const char *name = sl_manifest_md_str(obj, "name");

	/* The watch stops; streams and Jobs stay as they are. */
	for (struct klass **p = &c->classes; *p; p = &(*p)->next) {
		if (sl_streq((*p)->name, name)) {
			struct klass *kl = *p;
			*p = kl->next;
			sl_log_obj(SL_LOG_INFO, "StreamClass", NULL, name, "deleted: stopped watching %s",
			           kl->kind ? kl->kind : "");
			class_free(kl);
			return;
		}
	}
}

/* ---- templates ------------------------------------------------------------------- */

struct tmpl_match {
	struct klass *kl;
	const char *ns, *name;
};

static bool ref_is(const struct sl_arcane_ref *ref, const char *ns, const char *name)
{
	return ref->name && sl_streq(ref->name, name) && sl_streq(ref->ns, ns);
}

static void tmpl_match_one(const cJSON *stream, void *payload)
{
	struct tmpl_match *m = payload;
	struct sl_arcane_layout l;
	struct sl_error err;

	sl_arcane_layout_read(stream, &l, &err);
	if (ref_is(&l.streaming, m->ns, m->name) || ref_is(&l.backfill, m->ns, m->name) ||
	    ref_is(&l.batch, m->ns, m->name))
		enqueue_obj(stream, m->kl);
}

const cJSON *sl_controller__template(struct sl_controller *c, const struct sl_arcane_ref *ref)
{
	return ref->name ? sl_controller__iset_get(c, &c->templates, ref->ns, ref->name) : NULL;
}

/* A template changed: every stream that uses it goes into the queue. A scan
 * of the stream caches; templates change seldom. */
static void tmpl_changed(struct sl_controller *c, const cJSON *obj)
{
	struct tmpl_match m = {.ns = sl_manifest_md_str(obj, "namespace"),
	                       .name = sl_manifest_md_str(obj, "name")};

	for (struct klass *kl = c->classes; kl; kl = kl->next) {
		m.kl = kl;
		iset_foreach(&kl->streams, tmpl_match_one, &m);
	}
}

static void tmpl_add(const cJSON *obj, void *payload)
{
	tmpl_changed(payload, obj);
}
static void tmpl_del(const cJSON *obj, void *payload)
{
	tmpl_changed(payload, obj);
}

/* Only a spec change matters; cJSON_Compare ignores key order as the
 * canonical JSON did, without copying, sorting and printing both specs. */
static void tmpl_update(const cJSON *old, const cJSON *obj, void *payload)
{
	const cJSON *a = sl_manifest_obj(old, "spec"), *b = sl_manifest_obj(obj, "spec");

	if (a != b && (!a || !b || !cJSON_Compare(a, b, true)))
		tmpl_changed(payload, obj);
}

/* ---- BackfillRequests ------------------------------------------------------------ */

static void names_free(void *p)
{
	struct names *n = p;
	for (size_t i = 0; i < n->n; i++)
		free(n->v[i]);
	free(n->v);
	free(n);
}

static void bfr_index_key(const cJSON *obj, char out[static KEY_MAX])
{
	snprintf(out, KEY_MAX, "%s/%s",
	         sl_manifest_md_str(obj, "namespace") ? sl_manifest_md_str(obj, "namespace") : "",
	         sl_manifest_str(sl_manifest_obj(obj, "spec"), "streamId")
	             ? sl_manifest_str(sl_manifest_obj(obj, "spec"), "streamId")
	             : "");
}

static void bfr_index_add(struct sl_controller *c, const cJSON *obj)
{
	char key[KEY_MAX];
	const char *name = sl_manifest_md_str(obj, "name");
	struct names *n;

	bfr_index_key(obj, key);
	n = sl_controller__map_get(&c->bfr_index, key);
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n || sl_controller__map_put(&c->bfr_index, key, n) < 0) {
			free(n);
			return;
		}
	}
	for (size_t i = 0; i < n->n; i++)
		if (strcmp(n->v[i], name) == 0)
			return;
	if (SL_GROW(n->v, n->cap, n->n + 1, 2) < 0)
		return;
	if ((n->v[n->n] = sl_strdup(name)))
		n->n++;
}

static void bfr_index_del(struct sl_controller *c, const cJSON *obj)
{
	char key[KEY_MAX];
	const char *name = sl_manifest_md_str(obj, "name");
	struct names *n;

	bfr_index_key(obj, key);
	n = sl_controller__map_get(&c->bfr_index, key);
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (strcmp(n->v[i], name) == 0) {
			free(n->v[i]);
			n->v[i] = n->v[--n->n];
			break;
		}
	}
	if (!n->n)
		sl_controller__map_del(&c->bfr_index, key);
}

const struct names *sl_controller__bfr_names(struct sl_controller *c, const char *ns, const char *stream)
{
	char key[KEY_MAX];

	snprintf(key, sizeof(key), "%s/%s", ns, stream);
	return sl_controller__map_get(&c->bfr_index, key);
}

/* A request is matched to its stream by namespace and streamId: the stream
 * of that name under the class it names, and any other class's stream of
 * that name (which does not run it, and says why). */
static void bfr_enqueue(struct sl_controller *c, const cJSON *obj, bool gone)
{
	const cJSON *spec = sl_manifest_obj(obj, "spec");
	const char *sid = sl_manifest_str(spec, "streamId"), *ns = sl_manifest_md_str(obj, "namespace"),
	           *cls = sl_manifest_str(spec, "streamClass");
	char key[KEY_MAX], id[KEY_MAX];

	if (!sid || !ns)
		return;
	snprintf(id, sizeof(id), "B/%s/%s", ns, sl_manifest_md_str(obj, "name"));
	for (struct klass *kl = c->classes; kl; kl = kl->next) {
		if (!kl->kind ||
		    (!sl_streq(kl->name, cls) && !sl_controller__iset_get(c, &kl->streams, ns, sid)))
			continue;
		stream_key(kl->kind, ns, sid, key);
		exp_observe(c, key, id, obj, gone);
		sl_loop_workqueue_add(c->wq, key);
	}
}

static bool completed(const cJSON *b)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(b, "spec"), "completed"));
}

static void writeback(struct sl_controller *c, const cJSON *old, const cJSON *obj)
{
	const char *path = sl_manifest_annotation(obj, SL_ARCANE_ANN_PATH),
	           *src = sl_manifest_annotation(obj, SL_ARCANE_ANN_SOURCE);

	if (!c->wb_fn || !path || !completed(obj) || (old && completed(old)))
		return;
	struct sl_controller_completion cc = {.source = src ? src : "",
	                                      .path = path,
	                                      .ns = sl_manifest_md_str(obj, "namespace"),
	                                      .name = sl_manifest_md_str(obj, "name")};
	c->metrics.writebacks++;
	c->wb_fn(&cc, c->wb_payload);
}

static void bfr_add(const cJSON *obj, void *payload)
{
	struct sl_controller *c = payload;

	bfr_index_add(c, obj);
	bfr_enqueue(c, obj, false);
	writeback(c, NULL, obj);
}

static void bfr_update(const cJSON *old, const cJSON *obj, void *payload)
{
	struct sl_controller *c = payload;

	if (!sl_streq(sl_manifest_str(sl_manifest_obj(old, "spec"), "streamId"),
	              sl_manifest_str(sl_manifest_obj(obj, "spec"), "streamId"))) {
		bfr_index_del(c, old);
		bfr_index_add(c, obj);
		bfr_enqueue(c, old, false);
	}
	bfr_enqueue(c, obj, false);
	writeback(c, old, obj);
}

static void bfr_del(const cJSON *obj, void *payload)
{
	struct sl_controller *c = payload;
	char key[KEY_MAX];

	snprintf(key, sizeof(key), "%s/%s",
	         sl_manifest_md_str(obj, "namespace") ? sl_manifest_md_str(obj, "namespace") : "",
	         sl_manifest_md_str(obj, "name") ? sl_manifest_md_str(obj, "name") : "");
	sl_controller__map_del(&c->warned, key);

	bfr_index_del(c, obj);
	bfr_enqueue(c, obj, true);
}

/* ---- Jobs ------------------------------------------------------------------------- */

/* The CronJob that controls obj, if one does (a batch stream's run). */
static bool cron_owned(const cJSON *obj)
{
	const cJSON *r;

	cJSON_ArrayForEach(
	    r, cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(obj, "metadata"), "ownerReferences"))
	{
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller")) &&
		    sl_streq(sl_manifest_str(r, "kind"), "CronJob"))
			return true;
	}
	return false;
}

static void obj_enqueue(struct sl_controller *c, const cJSON *obj, bool gone, const char *idp)
{
	const char *id = sl_manifest_label(obj, SL_ARCANE_LABEL_ID),
	           *kind = sl_manifest_label(obj, SL_ARCANE_LABEL_KIND);
	const char *ns = sl_manifest_md_str(obj, "namespace");
	char key[KEY_MAX], oid[KEY_MAX];
	const cJSON *r;

	if (!id || !kind) {
		cJSON_ArrayForEach(
		    r, cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(obj, "metadata"), "ownerReferences"))
		{
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller"))) {
				id = sl_manifest_str(r, "name");
				kind = sl_manifest_str(r, "kind");
			}
		}
	}
	if (!id || !kind || !ns)
		return;
	stream_key(kind, ns, id, key);
	snprintf(oid, sizeof(oid), "%s/%s/%s", idp, ns, sl_manifest_md_str(obj, "name"));
	exp_observe(c, key, oid, obj, gone);
	sl_loop_workqueue_add(c->wq, key);
}

/* A batch stream's runs are the CronJob's business: they never move the
 * stream, so their events wake nothing. */
static void job_enqueue(struct sl_controller *c, const cJSON *obj, bool gone)
{
	if (!cron_owned(obj))
		obj_enqueue(c, obj, gone, "J");
}

static void cron_add(const cJSON *obj, void *payload)
{
	obj_enqueue(payload, obj, false, "C");
}

static void cron_update(const cJSON *old, const cJSON *obj, void *payload)
{
	obj_enqueue(payload, obj, false, "C");
}

static void cron_del(const cJSON *obj, void *payload)
{
	obj_enqueue(payload, obj, true, "C");
}

static void job_add(const cJSON *obj, void *payload)
{
	struct sl_controller *c = payload;
	char key[KEY_MAX];

	snprintf(key, sizeof(key), "%s/%s", sl_manifest_md_str(obj, "namespace"),
	         sl_manifest_md_str(obj, "name"));
	sl_controller__map_del(&c->gone, key);
	job_enqueue(c, obj, false);
}

static void job_update(const cJSON *old, const cJSON *obj, void *payload)
{
	job_enqueue(payload, obj, false);
}

static void gone_free(void *p)
{
	cJSON_Delete(p);
}

static void job_del(const cJSON *obj, void *payload)
{
	struct sl_controller *c = payload;
	char key[KEY_MAX];
	cJSON *copy;

	if (cron_owned(obj))
		return;
	copy = cJSON_Duplicate(obj, true);

	/* Kept until a Job of that name appears again: it is how a backfill
	 * Job removed right after succeeding still completes its request. */
	snprintf(key, sizeof(key), "%s/%s", sl_manifest_md_str(obj, "namespace"),
	         sl_manifest_md_str(obj, "name"));
	if (copy && sl_controller__map_put(&c->gone, key, copy) < 0)
		cJSON_Delete(copy);
	job_enqueue(c, obj, true);
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void wq_ready(struct sl_loop_workqueue *wq, void *payload)
{
	sl_controller__pump(payload);
}

/* Keys wait until templates, BackfillRequests and Jobs are listed: deciding
 * on a partial view would report a missing template or create a Job that
 * exists. */
bool sl_controller__shared_synced(const struct sl_controller *c)
{
	return iset_synced(&c->templates) && iset_synced(&c->backfills) && iset_synced(&c->jobs) &&
	       iset_synced(&c->cronjobs);
}

static void shared_synced(void *payload)
{
	sl_controller__pump(payload);
}

int sl_controller_new(struct sl_loop *loop, struct sl_kube *k, const struct sl_controller_opts *opts,
                      struct sl_controller **ret, struct sl_error *err)
{
	struct sl_controller *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	c->loop = loop;
	c->k = k;
	if (opts)
		c->opts = *opts;
	c->opts.namespaces = NULL;
	if (!c->opts.workers)
		c->opts.workers = 32;
	if (!c->opts.class_retry_min_ms)
		c->opts.class_retry_min_ms = 1000;
	if (!c->opts.class_retry_max_ms)
		c->opts.class_retry_max_ms = 30000;
	if (!c->opts.expectation_wait_ms)
		c->opts.expectation_wait_ms = 10000;
	sl_controller__map_init(&c->bfr_index, names_free);
	sl_controller__map_init(&c->gone, gone_free);
	sl_controller__map_init(&c->sstate, sstate_free);
	sl_controller__map_init(&c->warned, free);
	for (size_t i = 0; opts && opts->namespaces && opts->namespaces[i]; i++) {
		if (!*opts->namespaces[i])
			continue;
		char **ns = realloc(c->ns, (c->n_ns + 1) * sizeof(*ns));
		if (!ns || !(ns[c->n_ns] = sl_strdup(opts->namespaces[i]))) {
			if (ns)
				c->ns = ns;
			sl_controller_free(c);
			return sl_error_set(err, SL_ENOMEM, "out of memory");
		}
		c->ns = ns;
		c->n_ns++;
	}
	r = sl_loop_workqueue_new(loop, NULL, wq_ready, c, &c->wq);
	if (r < 0) {
		sl_controller_free(c);
		return sl_error_set(err, r, "creating the work queue: %s", sl_strerror(r));
	}
	*ret = c;
	return 0;
}

int sl_controller_start(struct sl_controller *c, struct sl_error *err)
{
	struct sl_kube_informer_opts o = {
	    .ref = {.api_version = SL_ARCANE_API_VERSION, .resource = "streamclasses", .namespaced = false}};
	struct sl_kube_informer_handlers ch = {
	    .add = class_apply, .update = class_update, .del = class_del, .transform = trim_obj};
	struct sl_kube_informer_handlers th = {.add = tmpl_add,
	                                       .update = tmpl_update,
	                                       .del = tmpl_del,
	                                       .synced = shared_synced,
	                                       .transform = trim_obj};
	struct sl_kube_informer_handlers bh = {.add = bfr_add,
	                                       .update = bfr_update,
	                                       .del = bfr_del,
	                                       .synced = shared_synced,
	                                       .transform = trim_obj};
	struct sl_kube_informer_handlers cjh = {.add = cron_add,
	                                        .update = cron_update,
	                                        .del = cron_del,
	                                        .synced = shared_synced,
	                                        .transform = trim_cronjob};
	struct sl_kube_informer_handlers jh = {.add = job_add,
	                                       .update = job_update,
	                                       .del = job_del,
	                                       .synced = shared_synced,
	                                       .transform = trim_job};
	int r;

	c->stopping = false;
	r = sl_kube_informer_new(c->k, &o, &ch, c, &c->classes_inf, err);
	if (r == 0 && (r = sl_kube_informer_start(c->classes_inf)) < 0)
		sl_error_set(err, r, "starting the StreamClass informer: %s", sl_strerror(r));
	if (r < 0)
		return r;
	o.ref = (struct sl_kube_ref){
	    .api_version = SL_ARCANE_API_VERSION, .resource = "streamingjobtemplates", .namespaced = true};
	r = iset_start(c, &c->templates, &o, &th, c, err);
	if (r < 0)
		return r;
	o.ref = (struct sl_kube_ref){
	    .api_version = SL_ARCANE_API_VERSION, .resource = "backfillrequests", .namespaced = true};
	r = iset_start(c, &c->backfills, &o, &bh, c, err);
	if (r < 0)
		return r;
	/* Every stream's Job carries arcane/stream-id: sluice's and those the
	 * Arcane operator made (adopted when sluice takes over). */
	o.ref = (struct sl_kube_ref){.api_version = "batch/v1", .resource = "jobs", .namespaced = true};
	o.label_selector = SL_ARCANE_LABEL_ID;
	r = iset_start(c, &c->jobs, &o, &jh, c, err);
	if (r < 0)
		return r;
	/* The Arcane operator's CronJobs carry no label: all are watched, and
	 * kept trimmed to their metadata and spec.suspend. */
	o.ref = (struct sl_kube_ref){.api_version = "batch/v1", .resource = "cronjobs", .namespaced = true};
	o.label_selector = NULL;
	return iset_start(c, &c->cronjobs, &o, &cjh, c, err);
}

static void stop_informers(struct sl_controller *c)
{
	sl_kube_informer_free(c->classes_inf);
	c->classes_inf = NULL;
	for (struct klass *kl = c->classes; kl; kl = kl->next) {
		class_teardown(kl);
		sl_loop_timer_disarm(kl->status_retry);
	}
	iset_free(&c->templates);
	iset_free(&c->backfills);
	iset_free(&c->jobs);
	iset_free(&c->cronjobs);
}

void sl_controller_stop(struct sl_controller *c, void (*done)(void *payload), void *payload)
{
	c->stopping = true;
	stop_informers(c);
	c->stop_done = done;
	c->stop_payload = payload;
	sl_controller__check_stopped(c);
}

void sl_controller__check_stopped(struct sl_controller *c)
{
	void (*done)(void *) = c->stop_done;

	if (!c->stopping || c->in_flight || !done)
		return;
	c->stop_done = NULL;
	done(c->stop_payload);
}

size_t sl_controller_in_flight(const struct sl_controller *c)
{
	return c->in_flight;
}

void sl_controller_free(struct sl_controller *c)
{
	if (!c)
		return;
	c->stopping = true;
	stop_informers(c);
	sl_controller__exec_orphan_all(c);
	while (c->classes) {
		struct klass *kl = c->classes;
		c->classes = kl->next;
		class_free(kl);
	}
	sl_loop_workqueue_free(c->wq);
	sl_controller__map_free(&c->bfr_index);
	sl_controller__map_free(&c->gone);
	sl_controller__map_free(&c->sstate);
	sl_controller__map_free(&c->warned);
	for (size_t i = 0; i < c->n_ns; i++)
		free(c->ns[i]);
	free(c->ns);
	free(c);
}

void sl_controller_set_writeback_hook(struct sl_controller *c, sl_controller_writeback_fn fn, void *payload)
{
	c->wb_fn = fn;
	c->wb_payload = payload;
}

bool sl_controller_synced(const struct sl_controller *c)
{
	if (!c->classes_inf || !sl_kube_informer_has_synced(c->classes_inf) || !iset_synced(&c->templates) ||
	    !iset_synced(&c->backfills) || !iset_synced(&c->jobs) || !iset_synced(&c->cronjobs))
		return false;
	for (const struct klass *kl = c->classes; kl; kl = kl->next)
		if (kl->state == K_WATCHING && !iset_synced(&kl->streams))
			return false;
	return true;
}

static void count_phase(const cJSON *obj, void *payload)
{
	struct sl_controller_metrics *m = payload;
	const char *p = sl_manifest_str(sl_manifest_obj(obj, "status"), "phase");
	enum sl_controller_phase i = SL_CONTROLLER_PHASE_NONE;

	for (int j = 1; j < SL_CONTROLLER_PHASE__MAX; j++)
		if (sl_streq(p, sl_controller_phase_name(j)))
			i = j;
	m->streams_by_phase[i]++;
	m->streams++;
}

void sl_controller_metrics(const struct sl_controller *c, struct sl_controller_metrics *ret)
{
	*ret = c->metrics;
	ret->queue_depth = sl_loop_workqueue_len(c->wq);
	ret->queue_delayed = sl_loop_workqueue_delayed(c->wq);
	ret->in_flight = c->in_flight;
	ret->streams = 0;
	memset(ret->streams_by_phase, 0, sizeof(ret->streams_by_phase));
	ret->classes = ret->classes_ready = 0;
	for (const struct klass *kl = c->classes; kl; kl = kl->next) {
		ret->classes++;
		if (kl->state == K_WATCHING && iset_synced(&kl->streams))
			ret->classes_ready++;
		iset_foreach(&kl->streams, count_phase, ret);
	}
}

const char *sl_controller_result_name(enum sl_controller_result r)
{
	static const char *const n[] = {"ok", "noop", "wait", "conflict", "error"};
	return r < SL_CONTROLLER_RESULT__MAX ? n[r] : "unknown";
}

const char *sl_controller_phase_name(enum sl_controller_phase p)
{
	static const char *const n[] = {"",
	                                SL_ARCANE_PHASE_PENDING,
	                                SL_ARCANE_PHASE_BACKFILLING,
	                                SL_ARCANE_PHASE_RUNNING,
	                                SL_ARCANE_PHASE_SUSPENDED,
	                                SL_ARCANE_PHASE_FAILED,
	                                SL_ARCANE_PHASE_SCHEDULED};
	return p < SL_CONTROLLER_PHASE__MAX ? n[p] : "";
}
