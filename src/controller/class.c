/* The StreamClass sub-controller: one informer on StreamClasses; per class,
 * discovery of the kind it names, a watch on that kind (its streams), and
 * the class's status (phase and a Ready condition). Stream events go to
 * controller.c through the upcalls of controller-internal.h. */
#include "class.h"
#include "controller-internal.h"
#include "iset.h"
#include "sluice/arcane.h"
#include "sluice/manifest-json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A callback's handle on a class, cleared when the class goes first. */
struct dtoken {
	struct sl_controller__class *kl;
};

enum kstate { K_RESOLVING, K_WATCHING, K_FAILED };

struct sl_controller__class {
	struct sl_controller__classes *cs;
	struct sl_controller__class *next;
	char *name;
	char *group, *version, *kind, *plural; /* spec as last seen */
	char api_version[320];
	enum kstate state;
	struct sl_controller__iset streams;
	struct dtoken *tok;        /* discovery in flight */
	struct dtoken *status_tok; /* status write in flight */
	struct sl_loop_timer *retry, *status_retry;
	uint64_t backoff;
	/* The status we want, and the last one written or seen. */
	char phase[16], reason[64], message[1200];
	char written[1400];
};

struct sl_controller__classes {
	const struct sl_controller__ctx *ctx;
	uint64_t retry_min_ms, retry_max_ms;
	struct sl_kube_informer *inf; /* StreamClasses */
	struct sl_controller__class *list;
	bool stopping;
};

static void class_resolve(struct sl_controller__class *kl);

/* ---- lookups -------------------------------------------------------------------- */

const struct sl_controller__class *sl_controller__class_by_kind(const struct sl_controller__classes *cs,
                                                                const char *kind)
{
	const struct sl_controller__class *found = NULL;

	for (const struct sl_controller__class *kl = cs->list; kl; kl = kl->next)
		if (kl->kind && sl_streq(kl->kind, kind) && (!found || kl->state == K_WATCHING))
			found = kl;
	return found;
}

static struct sl_controller__class *class_by_name(struct sl_controller__classes *cs, const char *name)
{
	for (struct sl_controller__class *kl = cs->list; kl; kl = kl->next)
		if (sl_streq(kl->name, name))
			return kl;
	return NULL;
}

void sl_controller__classes_foreach(const struct sl_controller__classes *cs,
                                    void (*fn)(const struct sl_controller__class *cl, void *payload),
                                    void *payload)
{
	for (const struct sl_controller__class *kl = cs->list; kl; kl = kl->next)
		fn(kl, payload);
}

const char *sl_controller__class_name(const struct sl_controller__class *cl)
{
	return cl->name;
}

const char *sl_controller__class_kind(const struct sl_controller__class *cl)
{
	return cl->kind;
}

const char *sl_controller__class_api_version(const struct sl_controller__class *cl)
{
	return cl->api_version;
}

const char *sl_controller__class_plural(const struct sl_controller__class *cl)
{
	return cl->plural;
}

bool sl_controller__class_watching(const struct sl_controller__class *cl)
{
	return cl->state == K_WATCHING;
}

bool sl_controller__class_ready(const struct sl_controller__class *cl)
{
	return cl->state == K_WATCHING && sl_controller__iset_synced(&cl->streams);
}

const cJSON *sl_controller__class_object(const struct sl_controller__class *cl)
{
	return cl->cs->inf ? sl_kube_informer_get(cl->cs->inf, NULL, cl->name) : NULL;
}

const cJSON *sl_controller__class_stream(const struct sl_controller__class *cl, const char *ns,
                                         const char *name)
{
	return sl_controller__iset_get(&cl->streams, ns, name);
}

void sl_controller__class_foreach_stream(const struct sl_controller__class *cl,
                                         void (*fn)(const cJSON *stream, void *payload), void *payload)
{
	sl_controller__iset_foreach(&cl->streams, fn, payload);
}

/* ---- status ----------------------------------------------------------------------- */

static void class_status_done(struct sl_kube_result *res, void *payload)
{
	struct dtoken *tok = payload;
	struct sl_controller__class *kl = tok->kl;

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

/* The merge patch of the class's status: phase and the Ready condition. */
static cJSON *status_patch(const struct sl_controller__class *kl, bool ready, const char *ltt, int64_t gen)
{
	cJSON *patch = cJSON_CreateObject(), *s, *conds, *cj;
	bool ok = patch && (s = cJSON_AddObjectToObject(patch, "status")) &&
	          cJSON_AddStringToObject(s, "phase", kl->phase) &&
	          (conds = cJSON_AddArrayToObject(s, "conditions")) && (cj = cJSON_CreateObject()) &&
	          cJSON_AddItemToArray(conds, cj) && cJSON_AddStringToObject(cj, "type", "Ready") &&
	          cJSON_AddStringToObject(cj, "status", ready ? "True" : "False") &&
	          cJSON_AddStringToObject(cj, "reason", kl->reason) &&
	          cJSON_AddStringToObject(cj, "message", kl->message) &&
	          cJSON_AddStringToObject(cj, "lastTransitionTime", ltt) &&
	          cJSON_AddNumberToObject(cj, "observedGeneration", (double)gen);

	if (!ok) {
		cJSON_Delete(patch);
		return NULL;
	}
	return patch;
}

/* Writes phase and the Ready condition to the class unless its status says
 * so already. */
static void class_status(struct sl_controller__class *kl)
{
	const struct sl_controller__ctx *ctx = kl->cs->ctx;
	const cJSON *obj = sl_controller__class_object(kl);
	const cJSON *st = sl_manifest_obj(obj, "status"), *cond = NULL, *x;
	const cJSON *gen = cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(obj, "metadata"), "generation");
	bool ready = strcmp(kl->phase, "Ready") == 0;
	char sig[sizeof(kl->written)], now[32];
	int64_t g = cJSON_IsNumber(gen) ? (int64_t)gen->valuedouble : 0;

	/* Every shard watches every class; the class's own shard reports. */
	if (!obj || kl->cs->stopping || !sl_arcane_shard_is(obj, ctx->shard))
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

	cJSON *patch = status_patch(kl, ready, now, g);
	struct dtoken *tok = patch ? calloc(1, sizeof(*tok)) : NULL;
	if (tok) {
		struct sl_kube_ref ref = {.api_version = SL_ARCANE_API_VERSION,
		                          .resource = "streamclasses",
		                          .name = kl->name,
		                          .subresource = "status"};
		struct sl_kube_call_opts o = {.field_manager = ctx->field_manager};
		tok->kl = kl;
		if (kl->status_tok)
			kl->status_tok->kl = NULL;
		if (sl_kube_patch(ctx->k, &ref, SL_KUBE_PATCH_MERGE, patch, &o, class_status_done, tok) ==
		    0) {
			kl->status_tok = tok;
			snprintf(kl->written, sizeof(kl->written), "%s", sig);
			ctx->metrics->actions++;
		} else {
			free(tok);
			sl_loop_timer_arm(kl->status_retry, 2000);
		}
	}
	cJSON_Delete(patch);
}

static void class_set(struct sl_controller__class *kl, const char *phase, const char *reason, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
static void class_set(struct sl_controller__class *kl, const char *phase, const char *reason, const char *fmt,
                      ...)
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

/* ---- the watch on the class's kind ------------------------------------------------ */

static void class_teardown(struct sl_controller__class *kl)
{
	sl_controller__iset_free(&kl->streams);
	kl->state = K_RESOLVING;
	if (kl->tok) {
		kl->tok->kl = NULL;
		kl->tok = NULL;
	}
	sl_loop_timer_disarm(kl->retry);
}

static void class_failed(struct sl_controller__class *kl, const char *reason, const char *msg)
{
	struct sl_controller__classes *cs = kl->cs;

	class_teardown(kl);
	kl->state = K_FAILED;
	class_set(kl, "Failed", reason, "%s", msg);
	kl->backoff = kl->backoff ? SL_MIN(kl->backoff * 2, cs->retry_max_ms) : cs->retry_min_ms;
	sl_loop_timer_arm(kl->retry, sl_rand_between(kl->backoff / 2, kl->backoff));
}

/* Every stream of a class goes into the queue (its class changed). */
static void enqueue_obj(const cJSON *obj, void *payload)
{
	struct sl_controller__class *kl = payload;
	sl_controller__enqueue(kl->cs->ctx->c, kl->kind, sl_manifest_md_str(obj, "namespace"),
	                       sl_manifest_md_str(obj, "name"));
}

static void stream_add(const cJSON *obj, void *payload)
{
	struct sl_controller__class *kl = payload;

	sl_controller__changed(kl->cs->ctx->c, kl->kind, sl_manifest_md_str(obj, "namespace"),
	                       sl_manifest_md_str(obj, "name"), SL_CONTROLLER__STREAM, obj, false);
}

/* After the first list, a stream that already has a status was reconciled
 * by another shard until its label changed. */
static void stream_added(const cJSON *obj, void *payload)
{
	struct sl_controller__class *kl = payload;

	if (sl_controller__iset_synced(&kl->streams) && sl_manifest_obj(obj, "status"))
		sl_controller__stream_arrived(kl->cs->ctx->c, kl->kind, kl->name, obj);
	stream_add(obj, payload);
}

static void stream_update(const cJSON *old, const cJSON *obj, void *payload)
{
	stream_add(obj, payload);
}

static void stream_del(const cJSON *obj, void *payload)
{
	struct sl_controller__class *kl = payload;

	sl_controller__stream_deleted(kl->cs->ctx->c, kl->kind, sl_manifest_md_str(obj, "namespace"),
	                              sl_manifest_md_str(obj, "name"));
}

static void stream_synced(void *payload)
{
	struct sl_controller__class *kl = payload;

	if (!sl_controller__iset_synced(&kl->streams))
		return;
	kl->backoff = 0;
	class_set(kl, "Ready", "Watching", "watching %s (%s)", kl->kind, kl->api_version);
}

static void stream_error(const struct sl_error *err, void *payload)
{
	struct sl_controller__class *kl = payload;
	char msg[SL_ERRMSG_MAX + 64];

	/* The kind went away (its CRD was deleted): back to discovery. */
	if (err->code == SL_ENOTFOUND) {
		/* a message keeps its start when it is too long, on purpose */
		(void)sl_snprintf_ok(msg, sizeof(msg), "%s %s is no longer served: %s", kl->api_version,
		                     kl->kind, err->msg);
		class_failed(kl, "KindNotFound", msg);
		return;
	}
	sl_controller__informer_error(err, payload);
}

/* Why a discovered kind cannot hold streams, or NULL when it can. */
static const char *unusable(const struct sl_controller__class *kl, int code, const struct sl_kube_resource *r,
                            const struct sl_error *err, char *msg, size_t n)
{
	if (code == SL_ENOTFOUND) {
		snprintf(msg, n, "the API server does not serve kind %s in %s", kl->kind, kl->api_version);
		return "KindNotFound";
	}
	if (code < 0) {
		(void)sl_snprintf_ok(msg, n, "discovery of %s %s failed: %s", kl->api_version, kl->kind,
		                     err ? err->msg : sl_strerror(code));
		return "DiscoveryFailed";
	}
	if (kl->plural && strcmp(r->plural, kl->plural) != 0) {
		snprintf(msg, n, "kind %s is served as %s, not as pluralName %s", kl->kind, r->plural,
		         kl->plural);
		return "PluralNameMismatch";
	}
	if (!r->namespaced) {
		snprintf(msg, n, "kind %s is cluster-scoped; streams must be namespaced", kl->kind);
		return "ClusterScopedKind";
	}
	return NULL;
}

static void class_discovered(int code, const struct sl_kube_resource *r, const struct sl_error *err,
                             void *payload)
{
	struct dtoken *tok = payload;
	struct sl_controller__class *kl = tok->kl;
	char msg[SL_ERRMSG_MAX + 256];
	struct sl_error ierr = {0};
	const char *why;

	free(tok);
	if (!kl)
		return;
	kl->tok = NULL;
	if (kl->cs->stopping)
		return;
	why = unusable(kl, code, r, err, msg, sizeof(msg));
	if (why) {
		class_failed(kl, why, msg);
		return;
	}
	/* The API server filters by shard: a shard caches its streams only. */
	struct sl_kube_informer_opts o = {
	    .ref = {.api_version = kl->api_version, .resource = r->plural, .namespaced = true},
	    .label_selector = kl->cs->ctx->shard_selector};
	struct sl_kube_informer_handlers h = {.add = stream_added,
	                                      .update = stream_update,
	                                      .del = stream_del,
	                                      .synced = stream_synced,
	                                      .error = stream_error,
	                                      .transform = sl_controller__trim};
	if (sl_controller__iset_start(&kl->streams, kl->cs->ctx, &o, &h, kl, &ierr) < 0) {
		class_failed(kl, "WatchFailed", ierr.msg);
		return;
	}
	kl->state = K_WATCHING;
}

static void class_resolve(struct sl_controller__class *kl)
{
	struct dtoken *tok;
	int r;

	class_teardown(kl);
	if (kl->cs->stopping)
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
	r = sl_kube_discover(kl->cs->ctx->k, kl->api_version, kl->kind, class_discovered, tok);
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

/* ---- the StreamClass informer ------------------------------------------------------ */

static void class_free(struct sl_controller__class *kl)
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

static struct sl_controller__class *class_new(struct sl_controller__classes *cs, const char *name,
                                              const cJSON *status)
{
	struct sl_controller__class *kl = calloc(1, sizeof(*kl));

	if (!kl || !(kl->name = sl_strdup(name)) ||
	    sl_loop_timer_new(cs->ctx->loop, retry_fire, kl, &kl->retry) < 0 ||
	    sl_loop_timer_new(cs->ctx->loop, status_retry_fire, kl, &kl->status_retry) < 0) {
		class_free(kl);
		return NULL;
	}
	kl->cs = cs;
	kl->next = cs->list;
	cs->list = kl;
	/* Start from what the status says, so a restart writes nothing. */
	snprintf(kl->phase, sizeof(kl->phase), "%s",
	         sl_manifest_str(status, "phase") ? sl_manifest_str(status, "phase") : "");
	return kl;
}

static void class_apply(const cJSON *obj, void *payload)
{
	struct sl_controller__classes *cs = payload;
	const cJSON *spec = sl_manifest_obj(obj, "spec");
	const char *name = sl_manifest_md_str(obj, "name");
	const char *g = sl_manifest_str(spec, "apiGroupRef"), *v = sl_manifest_str(spec, "apiVersion"),
	           *k = sl_manifest_str(spec, "kindRef"), *p = sl_manifest_str(spec, "pluralName");
	struct sl_controller__class *kl;

	if (!name || cs->stopping)
		return;
	kl = class_by_name(cs, name);
	if (kl && sl_streq(kl->group, g) && sl_streq(kl->version, v) && sl_streq(kl->kind, k) &&
	    sl_streq(kl->plural, p)) {
		/* Same kind: the secretRefs may have changed; the status may
		 * have been overwritten. */
		sl_controller__iset_foreach(&kl->streams, enqueue_obj, kl);
		class_status(kl);
		return;
	}
	if (!kl) {
		kl = class_new(cs, name, sl_manifest_obj(obj, "status"));
		if (!kl)
			return;
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
	struct sl_controller__classes *cs = payload;
	const char *name = sl_manifest_md_str(obj, "name");

	/* The watch stops; streams and Jobs stay as they are. */
	for (struct sl_controller__class **p = &cs->list; *p; p = &(*p)->next) {
		if (sl_streq((*p)->name, name)) {
			struct sl_controller__class *kl = *p;
			*p = kl->next;
			sl_log_obj(SL_LOG_INFO, "StreamClass", NULL, name, "deleted: stopped watching %s",
			           kl->kind ? kl->kind : "");
			class_free(kl);
			return;
		}
	}
}

/* ---- lifecycle ------------------------------------------------------------------- */

int sl_controller__classes_new(const struct sl_controller__ctx *ctx, uint64_t retry_min_ms,
                               uint64_t retry_max_ms, struct sl_controller__classes **ret)
{
	struct sl_controller__classes *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return SL_ENOMEM;
	cs->ctx = ctx;
	cs->retry_min_ms = retry_min_ms;
	cs->retry_max_ms = retry_max_ms;
	*ret = cs;
	return 0;
}

int sl_controller__classes_start(struct sl_controller__classes *cs, struct sl_error *err)
{
	struct sl_kube_informer_opts o = {
	    .ref = {.api_version = SL_ARCANE_API_VERSION, .resource = "streamclasses", .namespaced = false}};
	struct sl_kube_informer_handlers h = {
	    .add = class_apply, .update = class_update, .del = class_del, .transform = sl_controller__trim};
	int r;

	cs->stopping = false;
	r = sl_kube_informer_new(cs->ctx->k, &o, &h, cs, &cs->inf, err);
	if (r == 0 && (r = sl_kube_informer_start(cs->inf)) < 0)
		sl_error_set(err, r, "starting the StreamClass informer: %s", sl_strerror(r));
	return r;
}

void sl_controller__classes_stop(struct sl_controller__classes *cs)
{
	cs->stopping = true;
	sl_kube_informer_free(cs->inf);
	cs->inf = NULL;
	for (struct sl_controller__class *kl = cs->list; kl; kl = kl->next) {
		class_teardown(kl);
		sl_loop_timer_disarm(kl->status_retry);
	}
}

void sl_controller__classes_foreach_informer(const struct sl_controller__classes *cs,
                                             void (*fn)(const struct sl_kube_informer *inf, void *payload),
                                             void *payload)
{
	if (cs->inf)
		fn(cs->inf, payload);
	for (const struct sl_controller__class *kl = cs->list; kl; kl = kl->next)
		sl_controller__iset_foreach_informer(&kl->streams, fn, payload);
}

void sl_controller__classes_free(struct sl_controller__classes *cs)
{
	if (!cs)
		return;
	sl_controller__classes_stop(cs);
	while (cs->list) {
		struct sl_controller__class *kl = cs->list;
		cs->list = kl->next;
		class_free(kl);
	}
	free(cs);
}

bool sl_controller__classes_synced(const struct sl_controller__classes *cs)
{
	if (!cs->inf || !sl_kube_informer_has_synced(cs->inf))
		return false;
	for (const struct sl_controller__class *kl = cs->list; kl; kl = kl->next)
		if (kl->state == K_WATCHING && !sl_controller__iset_synced(&kl->streams))
			return false;
	return true;
}
