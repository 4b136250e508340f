/* The observing side of the controller: informers on StreamingJobTemplates,
 * BackfillRequests, Jobs and CronJobs; the index of BackfillRequests by
 * stream; the last state of deleted Jobs; and, per stream, the observation
 * handed to decide(). Each event names the streams it concerns to
 * controller.c (controller-internal.h). */
#include "observe.h"
#include "class.h"
#include "iset.h"
#include "sluice/arcane.h"
#include "sluice/base-map.h"
#include "sluice/manifest-json.h"

#include <stdio.h>
#include <string.h>

#define KEY_MAX SL_CONTROLLER__KEY_MAX

struct sl_controller__observe {
	const struct sl_controller__ctx *ctx;
	const struct sl_controller__classes *cs;
	struct sl_controller__iset templates, backfills, jobs, cronjobs;
	/* With a write-back hook: the BackfillRequests sync applied, of every
	 * shard (a completion is written back by the process that syncs the
	 * source, whichever shard ran the backfill). */
	struct sl_controller__iset completions;
	struct sl_map bfr_index; /* "ns/streamId" -> struct names */
	struct sl_map gone;      /* "ns/jobname" -> cJSON, last state of a deleted Job */
	struct sl_map warned;    /* "ns/name" of a BackfillRequest -> resourceVersion told about */
	sl_controller_writeback_fn wb_fn;
	void *wb_payload;
};

/* ---- transforms: keep cached objects small ------------------------------------ */

/* decide() reads a Job's metadata, its state (conditions), when it ran and
 * how its pods did; its spec only to find the BackfillRequest of a Job
 * built without our annotation (in the containers' env). The Job
 * controller's own labels (it selects pods with them) are read by nobody
 * here. A Job is the largest cached object per stream: it keeps nothing
 * else. */
static void trim_job(cJSON *obj, void *payload)
{
	static const char *const paths[] = {SL_CONTROLLER__METADATA,
	                                    "spec.template.spec.containers.env",
	                                    "status.conditions.type",
	                                    "status.conditions.status",
	                                    "status.conditions.reason",
	                                    "status.conditions.message",
	                                    "status.active",
	                                    "status.succeeded",
	                                    "status.failed",
	                                    "status.startTime",
	                                    "status.completionTime",
	                                    NULL};
	static const char *const job_controller_labels[] = {"batch.kubernetes.io/controller-uid",
	                                                    "batch.kubernetes.io/job-name", "controller-uid",
	                                                    "job-name"};
	cJSON *labels;

	sl_controller__trim(obj, payload);
	if (sl_manifest_annotation(obj, SL_ARCANE_ANN_BACKFILL_REQUEST) ||
	    !sl_manifest_label(obj, SL_ARCANE_LABEL_BACKFILLING) ||
	    strcmp(sl_manifest_label(obj, SL_ARCANE_LABEL_BACKFILLING), "true") != 0)
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "spec");
	sl_manifest_json_keep(obj, paths);
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
	                                        "generation");
	labels =
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");
	for (size_t i = 0; i < SL_ARRAY_SIZE(job_controller_labels); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(labels, job_controller_labels[i]);
}

/* decide() reads a CronJob's metadata and spec.suspend; a CronJob that is
 * not a stream's (no controlling owner) keeps its metadata only. */
static void trim_cronjob(cJSON *obj, void *payload)
{
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");

	sl_controller__trim(obj, payload);
	cJSON_DeleteItemFromObjectCaseSensitive(spec, "jobTemplate");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
}

/* ---- templates ------------------------------------------------------------------- */

struct tmpl_match {
	struct sl_controller__observe *o;
	const struct sl_controller__class *kl;
	const char *ns, *name;
};

static bool ref_is(const struct sl_arcane_ref *ref, const char *ns, const char *name)
{
	return ref->name && sl_streq(ref->name, name) && sl_streq(ref->ns, ns);
}

static void tmpl_match_stream(const cJSON *stream, void *payload)
{
	struct tmpl_match *m = payload;
	struct sl_arcane_layout l;
	struct sl_error err;

	sl_arcane_layout_read(stream, &l, &err);
	if (ref_is(&l.streaming, m->ns, m->name) || ref_is(&l.backfill, m->ns, m->name) ||
	    ref_is(&l.batch, m->ns, m->name))
		sl_controller__enqueue(m->o->ctx->c, sl_controller__class_kind(m->kl),
		                       sl_manifest_md_str(stream, "namespace"),
		                       sl_manifest_md_str(stream, "name"));
}

static void tmpl_match_class(const struct sl_controller__class *kl, void *payload)
{
	struct tmpl_match *m = payload;

	m->kl = kl;
	sl_controller__class_foreach_stream(kl, tmpl_match_stream, m);
}

/* A template changed: every stream that uses it goes into the queue. A scan
 * of the stream caches; templates change seldom. */
static void tmpl_changed(struct sl_controller__observe *o, const cJSON *obj)
{
	struct tmpl_match m = {
	    .o = o, .ns = sl_manifest_md_str(obj, "namespace"), .name = sl_manifest_md_str(obj, "name")};

	sl_controller__classes_foreach(o->cs, tmpl_match_class, &m);
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

/* The template a layout reference names, from the cache, or NULL. */
static const cJSON *template_of(const struct sl_controller__observe *o, const struct sl_arcane_ref *ref)
{
	return ref->name ? sl_controller__iset_get(&o->templates, ref->ns, ref->name) : NULL;
}

/* ---- BackfillRequests ------------------------------------------------------------ */

/* BackfillRequest names of one stream ("ns/streamId"). */
struct names {
	char **v;
	size_t n, cap;
};

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

static void bfr_index_add(struct sl_controller__observe *o, const cJSON *obj)
{
	char key[KEY_MAX];
	const char *name = sl_manifest_md_str(obj, "name");
	struct names *n;

	bfr_index_key(obj, key);
	n = sl_map_get(&o->bfr_index, key);
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n || sl_map_put(&o->bfr_index, key, n, NULL) < 0) {
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

static void bfr_index_del(struct sl_controller__observe *o, const cJSON *obj)
{
	char key[KEY_MAX];
	const char *name = sl_manifest_md_str(obj, "name");
	struct names *n;

	bfr_index_key(obj, key);
	n = sl_map_get(&o->bfr_index, key);
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
		sl_map_drop(&o->bfr_index, key);
}

struct bfr_match {
	struct sl_controller__observe *o;
	const cJSON *obj;
	const char *sid, *ns, *cls;
	bool gone;
};

static void bfr_match_class(const struct sl_controller__class *kl, void *payload)
{
	struct bfr_match *m = payload;
	const char *kind = sl_controller__class_kind(kl);

	if (!kind || (!sl_streq(sl_controller__class_name(kl), m->cls) &&
	              !sl_controller__class_stream(kl, m->ns, m->sid)))
		return;
	sl_controller__changed(m->o->ctx->c, kind, m->ns, m->sid, SL_CONTROLLER__BACKFILL, m->obj, m->gone);
}

/* A request is matched to its stream by namespace and streamId: the stream
 * of that name under the class it names, and any other class's stream of
 * that name (which does not run it, and says why). */
static void bfr_enqueue(struct sl_controller__observe *o, const cJSON *obj, bool gone)
{
	const cJSON *spec = sl_manifest_obj(obj, "spec");
	struct bfr_match m = {.o = o,
	                      .obj = obj,
	                      .sid = sl_manifest_str(spec, "streamId"),
	                      .ns = sl_manifest_md_str(obj, "namespace"),
	                      .cls = sl_manifest_str(spec, "streamClass"),
	                      .gone = gone};

	if (!m.sid || !m.ns)
		return;
	sl_controller__classes_foreach(o->cs, bfr_match_class, &m);
}

static bool completed(const cJSON *b)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(b, "spec"), "completed"));
}

static void writeback(struct sl_controller__observe *o, const cJSON *old, const cJSON *obj)
{
	const char *path = sl_manifest_annotation(obj, SL_ARCANE_ANN_PATH),
	           *src = sl_manifest_annotation(obj, SL_ARCANE_ANN_SOURCE);

	if (!o->wb_fn || !path || !completed(obj) || (old && completed(old)))
		return;
	struct sl_controller_completion cc = {.source = src ? src : "",
	                                      .path = path,
	                                      .ns = sl_manifest_md_str(obj, "namespace"),
	                                      .name = sl_manifest_md_str(obj, "name")};
	o->ctx->metrics->writebacks++;
	o->wb_fn(&cc, o->wb_payload);
}

static void bfr_add(const cJSON *obj, void *payload)
{
	struct sl_controller__observe *o = payload;

	bfr_index_add(o, obj);
	bfr_enqueue(o, obj, false);
}

static void completion_add(const cJSON *obj, void *payload)
{
	writeback(payload, NULL, obj);
}

static void completion_update(const cJSON *old, const cJSON *obj, void *payload)
{
	writeback(payload, old, obj);
}

/* A completed BackfillRequest is never run nor hashed again (a change back
 * to pending comes as a new version, trimmed afresh): its payload and
 * status are read by nobody. */
static void trim_backfill(cJSON *obj, void *payload)
{
	sl_controller__trim(obj, payload);
	if (completed(obj)) {
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "spec"),
		                                        "payload");
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
	}
}

/* A completion needs the annotations and spec.completed only. */
static void trim_completion(cJSON *obj, void *payload)
{
	const cJSON *spec = sl_manifest_obj(obj, "spec");
	bool done = completed(obj);

	sl_controller__trim(obj, payload);
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
	if (spec) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "spec");
		cJSON *ns = cJSON_AddObjectToObject(obj, "spec");
		if (ns)
			cJSON_AddBoolToObject(ns, "completed", done);
	}
}

static void bfr_update(const cJSON *old, const cJSON *obj, void *payload)
{
	struct sl_controller__observe *o = payload;

	if (!sl_streq(sl_manifest_str(sl_manifest_obj(old, "spec"), "streamId"),
	              sl_manifest_str(sl_manifest_obj(obj, "spec"), "streamId"))) {
		bfr_index_del(o, old);
		bfr_index_add(o, obj);
		bfr_enqueue(o, old, false);
	}
	bfr_enqueue(o, obj, false);
}

static void bfr_del(const cJSON *obj, void *payload)
{
	struct sl_controller__observe *o = payload;
	char key[KEY_MAX];

	snprintf(key, sizeof(key), "%s/%s",
	         sl_manifest_md_str(obj, "namespace") ? sl_manifest_md_str(obj, "namespace") : "",
	         sl_manifest_md_str(obj, "name") ? sl_manifest_md_str(obj, "name") : "");
	sl_map_drop(&o->warned, key);

	bfr_index_del(o, obj);
	bfr_enqueue(o, obj, true);
}

/* ---- Jobs and CronJobs ------------------------------------------------------------ */

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

/* A Job or CronJob names its stream by our labels, or else (the Arcane
 * operator's) by its controlling ownerReference. */
static void obj_enqueue(struct sl_controller__observe *o, const cJSON *obj, bool gone,
                        enum sl_controller__what what)
{
	const char *id = sl_manifest_label(obj, SL_ARCANE_LABEL_ID),
	           *kind = sl_manifest_label(obj, SL_ARCANE_LABEL_KIND);
	const char *ns = sl_manifest_md_str(obj, "namespace");
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
	sl_controller__changed(o->ctx->c, kind, ns, id, what, obj, gone);
}

/* A batch stream's runs are the CronJob's business: they never move the
 * stream, so their events wake nothing. */
static void job_enqueue(struct sl_controller__observe *o, const cJSON *obj, bool gone)
{
	if (!cron_owned(obj))
		obj_enqueue(o, obj, gone, SL_CONTROLLER__JOB);
}

static void cron_add(const cJSON *obj, void *payload)
{
	obj_enqueue(payload, obj, false, SL_CONTROLLER__CRONJOB);
}

static void cron_update(const cJSON *old, const cJSON *obj, void *payload)
{
	obj_enqueue(payload, obj, false, SL_CONTROLLER__CRONJOB);
}

static void cron_del(const cJSON *obj, void *payload)
{
	obj_enqueue(payload, obj, true, SL_CONTROLLER__CRONJOB);
}

static void job_add(const cJSON *obj, void *payload)
{
	struct sl_controller__observe *o = payload;
	char key[KEY_MAX];

	snprintf(key, sizeof(key), "%s/%s", sl_manifest_md_str(obj, "namespace"),
	         sl_manifest_md_str(obj, "name"));
	sl_map_drop(&o->gone, key);
	job_enqueue(o, obj, false);
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
	struct sl_controller__observe *o = payload;
	char key[KEY_MAX];
	cJSON *copy;

	if (cron_owned(obj))
		return;
	copy = cJSON_Duplicate(obj, true);

	/* Kept until a Job of that name appears again: it is how a backfill
	 * Job removed right after succeeding still completes its request. */
	snprintf(key, sizeof(key), "%s/%s", sl_manifest_md_str(obj, "namespace"),
	         sl_manifest_md_str(obj, "name"));
	if (copy && sl_map_put(&o->gone, key, copy, NULL) < 0)
		cJSON_Delete(copy);
	job_enqueue(o, obj, true);
}

static const cJSON *gone_of(const struct sl_controller__observe *o, const char *ns, const char *job)
{
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/%s", ns, job);
	return sl_map_get(&o->gone, key);
}

void sl_controller__observe_forget(struct sl_controller__observe *o, const char *ns, const char *name)
{
	char job[64], k[KEY_MAX];

	for (int b = 0; b < 2; b++) {
		sl_stream_job_name(name, b, job);
		snprintf(k, sizeof(k), "%s/%s", ns, job);
		sl_map_drop(&o->gone, k);
	}
}

size_t sl_controller__observe_remembered(const struct sl_controller__observe *o)
{
	return o->gone.n + o->warned.n;
}

const cJSON *sl_controller__observe_get(const struct sl_controller__observe *o, enum sl_controller__what what,
                                        const char *kind, const char *ns, const char *name)
{
	const struct sl_controller__class *kl;

	switch (what) {
	case SL_CONTROLLER__JOB:
		return sl_controller__iset_get(&o->jobs, ns, name);
	case SL_CONTROLLER__CRONJOB:
		return sl_controller__iset_get(&o->cronjobs, ns, name);
	case SL_CONTROLLER__BACKFILL:
		return sl_controller__iset_get(&o->backfills, ns, name);
	case SL_CONTROLLER__STREAM:
		break;
	}
	kl = sl_controller__class_by_kind(o->cs, kind);
	return kl ? sl_controller__class_stream(kl, ns, name) : NULL;
}

void sl_controller__observe_foreach_backfill(const struct sl_controller__observe *o, const char *ns,
                                             const char *name, void (*fn)(const cJSON *b, void *payload),
                                             void *payload)
{
	char key[KEY_MAX];
	const struct names *bn;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	bn = sl_map_get(&o->bfr_index, key);
	for (size_t i = 0; bn && i < bn->n; i++) {
		const cJSON *b = sl_controller__iset_get(&o->backfills, ns, bn->v[i]);
		if (b)
			fn(b, payload);
	}
}

/* ---- the observation of one stream ------------------------------------------------- */

/* A pending BackfillRequest that names another StreamClass is told about
 * once per version of the request. */
static bool mismatch_news(struct sl_controller__observe *o, const cJSON *b)
{
	const char *rv = sl_manifest_md_str(b, "resourceVersion"), *seen;
	char key[KEY_MAX], *copy;

	if (completed(b) || !rv)
		return false;
	snprintf(key, sizeof(key), "%s/%s", sl_manifest_md_str(b, "namespace"),
	         sl_manifest_md_str(b, "name"));
	seen = sl_map_get(&o->warned, key);
	if (seen && strcmp(seen, rv) == 0)
		return false;
	copy = sl_strdup(rv);
	if (!copy || sl_map_put(&o->warned, key, copy, NULL) < 0) {
		free(copy);
		return false;
	}
	return true;
}

/* The stream's BackfillRequests under its class, and the news about those
 * under another. */
static int observe_backfills(struct sl_controller__observe *o, const struct sl_controller__class *kl,
                             const char *ns, const char *name, struct sl_controller__observation *obs)
{
	char key[KEY_MAX];
	const struct names *bn;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	bn = sl_map_get(&o->bfr_index, key);
	if (!bn || !bn->n)
		return 0;
	obs->backfills = calloc(bn->n, sizeof(*obs->backfills));
	obs->mismatched = calloc(bn->n, sizeof(*obs->mismatched));
	if (!obs->backfills || !obs->mismatched)
		return SL_ENOMEM;
	for (size_t i = 0; i < bn->n; i++) {
		const cJSON *b = sl_controller__iset_get(&o->backfills, ns, bn->v[i]);
		if (b && sl_streq(sl_manifest_str(sl_manifest_obj(b, "spec"), "streamClass"),
		                  sl_controller__class_name(kl)))
			obs->backfills[obs->in.n_backfills++] = b;
		else if (b && mismatch_news(o, b))
			obs->mismatched[obs->n_mismatched++] = b;
	}
	obs->in.backfills = obs->backfills;
	return 0;
}

int sl_controller__observe(struct sl_controller__observe *o, const struct sl_controller__class *cl,
                           const char *ns, const char *name, const cJSON *stream,
                           struct sl_controller__observation *ret)
{
	struct sl_controller__observation obs = {0};
	char sjob[64], bjob[64], cjob[64];
	struct sl_arcane_layout l;
	struct sl_error lerr;

	if (observe_backfills(o, cl, ns, name, &obs) < 0) {
		sl_controller__observation_free(&obs);
		return SL_ENOMEM;
	}
	sl_stream_job_name(name, false, sjob);
	sl_stream_job_name(name, true, bjob);
	sl_stream_cronjob_name(name, cjob);
	/* A layout error is decide()'s to report; the refs read so far count. */
	sl_arcane_layout_read(stream, &l, &lerr);
	obs.in.stream = stream;
	obs.in.stream_class = sl_controller__class_object(cl);
	obs.in.tmpl = template_of(o, l.backend == SL_ARCANE_BACKEND_CRON ? &l.batch : &l.streaming);
	obs.in.backfill_tmpl = template_of(o, &l.backfill);
	obs.in.cronjob = sl_controller__iset_get(&o->cronjobs, ns, cjob);
	obs.in.streaming_job = sl_controller__iset_get(&o->jobs, ns, sjob);
	obs.in.backfill_job = sl_controller__iset_get(&o->jobs, ns, bjob);
	obs.in.streaming_job_gone = obs.in.streaming_job ? NULL : gone_of(o, ns, sjob);
	obs.in.backfill_job_gone = obs.in.backfill_job ? NULL : gone_of(o, ns, bjob);
	obs.in.now = sl_wall_s();
	*ret = obs;
	return 0;
}

void sl_controller__observation_free(struct sl_controller__observation *obs)
{
	free(obs->backfills);
	free(obs->mismatched);
	memset(obs, 0, sizeof(*obs));
}

/* ---- lifecycle ------------------------------------------------------------------- */

int sl_controller__observe_new(const struct sl_controller__ctx *ctx, const struct sl_controller__classes *cs,
                               struct sl_controller__observe **ret)
{
	struct sl_controller__observe *o = calloc(1, sizeof(*o));

	if (!o)
		return SL_ENOMEM;
	o->ctx = ctx;
	o->cs = cs;
	sl_map_init_owning(&o->bfr_index, names_free);
	sl_map_init_owning(&o->gone, gone_free);
	sl_map_init_owning(&o->warned, free);
	*ret = o;
	return 0;
}

static void shared_synced(void *payload)
{
	struct sl_controller__observe *o = payload;
	sl_controller__pump(o->ctx->c);
}

int sl_controller__observe_start(struct sl_controller__observe *o, struct sl_error *err)
{
	struct sl_kube_informer_opts opts = {0};
	char job_selector[SL_ARCANE_SHARD_MAX + 64];
	struct sl_kube_informer_handlers th = {.add = tmpl_add,
	                                       .update = tmpl_update,
	                                       .del = tmpl_del,
	                                       .synced = shared_synced,
	                                       .error = sl_controller__informer_error,
	                                       .transform = sl_controller__trim};
	struct sl_kube_informer_handlers bh = {.add = bfr_add,
	                                       .update = bfr_update,
	                                       .del = bfr_del,
	                                       .synced = shared_synced,
	                                       .error = sl_controller__informer_error,
	                                       .transform = trim_backfill};
	struct sl_kube_informer_handlers cjh = {.add = cron_add,
	                                        .update = cron_update,
	                                        .del = cron_del,
	                                        .synced = shared_synced,
	                                        .error = sl_controller__informer_error,
	                                        .transform = trim_cronjob};
	struct sl_kube_informer_handlers wh = {
	    .add = completion_add, .update = completion_update, .transform = trim_completion};
	struct sl_kube_informer_handlers jh = {.add = job_add,
	                                       .update = job_update,
	                                       .del = job_del,
	                                       .synced = shared_synced,
	                                       .error = sl_controller__informer_error,
	                                       .transform = trim_job};
	int r;

	/* Templates are shared by the shards: every shard reads them all. */
	opts.ref = (struct sl_kube_ref){
	    .api_version = SL_ARCANE_API_VERSION, .resource = "streamingjobtemplates", .namespaced = true};
	r = sl_controller__iset_start(&o->templates, o->ctx, &opts, &th, o, err);
	if (r < 0)
		return r;
	/* The rest is the shard's own, selected by the API server: a
	 * BackfillRequest by its own label, a Job or CronJob by the label the
	 * builder copied from its stream. */
	opts.ref = (struct sl_kube_ref){
	    .api_version = SL_ARCANE_API_VERSION, .resource = "backfillrequests", .namespaced = true};
	opts.label_selector = o->ctx->shard_selector;
	r = sl_controller__iset_start(&o->backfills, o->ctx, &opts, &bh, o, err);
	if (r < 0)
		return r;
	/* Every stream's Job carries arcane/stream-id: sluice's and those the
	 * Arcane operator made (adopted when sluice takes over). */
	if (!sl_snprintf_ok(job_selector, sizeof(job_selector), "%s,%s", SL_ARCANE_LABEL_ID,
	                    o->ctx->shard_selector))
		return sl_error_set(err, SL_ETOOLARGE, "label selector too long");
	opts.ref = (struct sl_kube_ref){.api_version = "batch/v1", .resource = "jobs", .namespaced = true};
	opts.label_selector = job_selector;
	r = sl_controller__iset_start(&o->jobs, o->ctx, &opts, &jh, o, err);
	if (r < 0)
		return r;
	/* The Arcane operator's CronJobs carry no label: the default shard
	 * watches all those without a shard label, kept trimmed to their
	 * metadata and spec.suspend. */
	opts.ref =
	    (struct sl_kube_ref){.api_version = "batch/v1", .resource = "cronjobs", .namespaced = true};
	opts.label_selector = o->ctx->shard_selector;
	r = sl_controller__iset_start(&o->cronjobs, o->ctx, &opts, &cjh, o, err);
	if (r < 0 || !o->wb_fn)
		return r;
	opts.ref = (struct sl_kube_ref){
	    .api_version = SL_ARCANE_API_VERSION, .resource = "backfillrequests", .namespaced = true};
	opts.label_selector = SL_ARCANE_LABEL_MANAGED_BY "=" SL_ARCANE_MANAGED_BY;
	return sl_controller__iset_start(&o->completions, o->ctx, &opts, &wh, o, err);
}

void sl_controller__observe_stop(struct sl_controller__observe *o)
{
	sl_controller__iset_free(&o->templates);
	sl_controller__iset_free(&o->backfills);
	sl_controller__iset_free(&o->jobs);
	sl_controller__iset_free(&o->cronjobs);
	sl_controller__iset_free(&o->completions);
}

void sl_controller__observe_free(struct sl_controller__observe *o)
{
	if (!o)
		return;
	sl_controller__observe_stop(o);
	sl_map_free(&o->bfr_index, NULL);
	sl_map_free(&o->gone, NULL);
	sl_map_free(&o->warned, NULL);
	free(o);
}

bool sl_controller__observe_synced(const struct sl_controller__observe *o)
{
	return sl_controller__iset_synced(&o->templates) && sl_controller__iset_synced(&o->backfills) &&
	       sl_controller__iset_synced(&o->jobs) && sl_controller__iset_synced(&o->cronjobs);
}

void sl_controller__observe_foreach_informer(const struct sl_controller__observe *o,
                                             void (*fn)(const struct sl_kube_informer *inf, void *payload),
                                             void *payload)
{
	sl_controller__iset_foreach_informer(&o->templates, fn, payload);
	sl_controller__iset_foreach_informer(&o->backfills, fn, payload);
	sl_controller__iset_foreach_informer(&o->jobs, fn, payload);
	sl_controller__iset_foreach_informer(&o->cronjobs, fn, payload);
}

void sl_controller__observe_set_writeback(struct sl_controller__observe *o, sl_controller_writeback_fn fn,
                                          void *payload)
{
	o->wb_fn = fn;
	o->wb_payload = payload;
}
