/* The stream controller: wires its seams together and runs the work queue.
 * Informers (class.c, observe.c) name the streams their events concern; the
 * streams wait in one work queue keyed "Kind/namespace/name"; a key is
 * reconciled by observing the stream (observe.c), handing that to
 * sl_stream_decide() and performing the actions it returns (act.c). */
#include "act.h"
#include "class.h"
#include "controller-internal.h"
#include "move.h"
#include "observe.h"
#include "sluice/controller.h"
#include "sluice/loop-workqueue.h"
#include "sluice/manifest-json.h"
#include "sluice/stream.h"

#include <stdio.h>
#include <string.h>

#define KEY_MAX SL_CONTROLLER__KEY_MAX

struct sl_controller {
	struct sl_controller__ctx ctx; /* lent to the seams */
	struct sl_controller_opts opts;
	char **ns;
	size_t n_ns;
	char *shard;
	char shard_selector[SL_ARCANE_SHARD_MAX + 32];
	char field_manager[SL_ARCANE_SHARD_MAX + 32];
	struct sl_loop_workqueue *wq;
	struct sl_controller__classes *classes;
	struct sl_controller__observe *observe;
	struct sl_controller__act *act;
	struct sl_controller__move *move;
	size_t in_flight;
	bool stopping, pumping;
	void (*stop_done)(void *);
	void *stop_payload;
	struct sl_controller_metrics metrics;
};

/* ---- keys and the upcalls of the seams ------------------------------------------ */

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

void sl_controller__changed(struct sl_controller *c, const char *kind, const char *ns, const char *name,
                            enum sl_controller__what what, const cJSON *obj, bool gone)
{
	char key[KEY_MAX];

	stream_key(kind, ns, name, key);
	sl_controller__act_seen(c->act, key, what, obj, gone);
	sl_loop_workqueue_add(c->wq, key);
}

void sl_controller__stream_deleted(struct sl_controller *c, const char *kind, const char *ns,
                                   const char *name)
{
	char key[KEY_MAX];

	const struct sl_controller__class *kl = sl_controller__class_by_kind(c->classes, kind);

	stream_key(kind, ns, name, key);
	sl_controller__act_forget(c->act, key);
	sl_loop_workqueue_add(c->wq, key);
	/* Deleted, or moved to another shard: then what it had goes along. */
	if (kl && !c->stopping)
		sl_controller__move_left(c->move, kind, sl_controller__class_api_version(kl),
		                         sl_controller__class_plural(kl), sl_controller__class_name(kl), ns,
		                         name);
}

void sl_controller__stream_arrived(struct sl_controller *c, const char *kind, const char *class_name,
                                   const cJSON *obj)
{
	char key[KEY_MAX];

	if (c->stopping || !kind)
		return;
	stream_key(kind, sl_manifest_md_str(obj, "namespace"), sl_manifest_md_str(obj, "name"), key);
	sl_controller__move_claim(c->move, key, kind, class_name, obj);
}

static void check_stopped(struct sl_controller *c)
{
	void (*done)(void *) = c->stop_done;

	if (!c->stopping || c->in_flight || !done)
		return;
	c->stop_done = NULL;
	done(c->stop_payload);
}

const double sl_controller_reconcile_buckets[SL_CONTROLLER_RECONCILE_BUCKETS] = {
    .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10};

static void observe_duration(struct sl_controller_metrics *m, uint64_t started_us)
{
	double s = (double)(sl_now_us() - started_us) / 1e6;
	size_t i = 0;

	while (i < SL_CONTROLLER_RECONCILE_BUCKETS && s > sl_controller_reconcile_buckets[i])
		i++;
	m->reconcile_buckets[i]++;
	m->reconcile_seconds += s;
}

void sl_controller__done(struct sl_controller *c, const char *key, enum sl_controller_result res,
                         uint64_t started_us)
{
	c->metrics.reconciles[res]++;
	observe_duration(&c->metrics, started_us);
	if (res == SL_CONTROLLER_OK || res == SL_CONTROLLER_NOOP) {
		sl_loop_workqueue_forget(c->wq, key);
		/* the writes go through again: once more, to put the
		 * condition that told the failure back */
		if (sl_controller__act_clear_error(c->act, key))
			sl_loop_workqueue_add(c->wq, key);
	} else if (res == SL_CONTROLLER_ERROR || res == SL_CONTROLLER_CONFLICT)
		sl_loop_workqueue_add_rate_limited(c->wq, key);
	sl_loop_workqueue_done(c->wq, key);
	c->in_flight--;
	check_stopped(c);
	sl_controller__pump(c);
}

/* ---- reconcile: observe -> decide -> act ------------------------------------------- */

/* A work-queue key taken apart. */
struct skey {
	char key[KEY_MAX], kind[128], ns[64], name[SL_STREAM_NAME_MAX + 1];
};

static bool parse_key(const char *wkey, struct skey *k)
{
	const char *s1, *s2;

	snprintf(k->key, sizeof(k->key), "%s", wkey);
	s1 = strchr(k->key, '/');
	s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	if (!s2 || (size_t)(s1 - k->key) >= sizeof(k->kind) || (size_t)(s2 - s1 - 1) >= sizeof(k->ns) ||
	    strlen(s2 + 1) >= sizeof(k->name))
		return false;
	snprintf(k->kind, sizeof(k->kind), "%.*s", (int)(s1 - k->key), k->key);
	snprintf(k->ns, sizeof(k->ns), "%.*s", (int)(s2 - s1 - 1), s1 + 1);
	snprintf(k->name, sizeof(k->name), "%s", s2 + 1);
	return true;
}

/* Decides on the observation of the stream of k and hands the actions to
 * act.c. True when act.c took them (it reports the result); else *ret is
 * the result. */
static bool decide_and_act(struct sl_controller *c, const struct skey *k,
                           const struct sl_controller__class *kl, const cJSON *stream, uint64_t started_us,
                           enum sl_controller_result *ret)
{
	struct sl_controller__observation obs;
	struct sl_stream_decision d = SL_STREAM_DECISION_INIT;
	struct sl_error err = {0};
	int r;

	*ret = SL_CONTROLLER_ERROR;
	if (sl_controller__observe(c->observe, kl, k->ns, k->name, stream, &obs) < 0)
		return false;
	obs.in.write_error = sl_controller__act_error(c->act, k->key);
	for (size_t i = 0; i < obs.n_mismatched; i++)
		sl_controller__act_warn_mismatch(c->act, obs.mismatched[i], stream,
		                                 sl_controller__class_name(kl));
	r = sl_stream_decide(&obs.in, &d, &err);
	sl_controller__observation_free(&obs);
	if (r < 0) {
		sl_log_obj(SL_LOG_ERROR, k->kind, k->ns, k->name, "decide: %s", err.msg);
		*ret = r == SL_ENOMEM ? SL_CONTROLLER_ERROR : SL_CONTROLLER_NOOP;
		return false;
	}
	if (!d.n_actions) {
		*ret = SL_CONTROLLER_NOOP;
		return false;
	}

	struct sl_controller__target t = {.key = k->key,
	                                  .kind = k->kind,
	                                  .ns = k->ns,
	                                  .name = k->name,
	                                  .api_version = sl_controller__class_api_version(kl),
	                                  .plural = sl_controller__class_plural(kl),
	                                  .stream = stream,
	                                  .started_us = started_us};
	r = sl_controller__act_run(c->act, &t, &d);
	sl_stream_decision_free(&d); /* left empty when taken */
	return r == 0;
}

static void reconcile(struct sl_controller *c, const char *wkey)
{
	const struct sl_controller__class *kl;
	const cJSON *stream;
	enum sl_controller_result res;
	uint64_t wait, t0 = sl_now_us();
	struct skey k;

	if (!parse_key(wkey, &k)) {
		sl_controller__done(c, k.key, SL_CONTROLLER_NOOP, t0);
		return;
	}
	kl = sl_controller__class_by_kind(c->classes, k.kind);
	stream = kl && sl_controller__class_watching(kl) ? sl_controller__class_stream(kl, k.ns, k.name) : NULL;
	if (!stream) {
		/* Deleted, or its class is (no longer) watched: the garbage
		 * collector removes what it owned, and nothing is kept for it
		 * (its Jobs' deletions, seen later, queue it again). A class
		 * watched again lists the stream afresh. */
		sl_controller__observe_forget(c->observe, k.ns, k.name);
		sl_controller__act_forget(c->act, k.key);
		sl_controller__move_forget(c->move, k.key);
		sl_controller__done(c, k.key, SL_CONTROLLER_NOOP, t0);
		return;
	}
	/* Arrived from another shard: not before what it had there is here. */
	wait = sl_controller__move_held_ms(c->move, k.key);
	if (!wait)
		wait = sl_controller__act_wait_ms(c->act, k.key);
	if (wait) {
		sl_loop_workqueue_add_after(c->wq, k.key, wait);
		sl_controller__done(c, k.key, SL_CONTROLLER_WAIT, t0);
		return;
	}
	if (!decide_and_act(c, &k, kl, stream, t0, &res))
		sl_controller__done(c, k.key, res, t0);
}

void sl_controller__pump(struct sl_controller *c)
{
	const char *key;

	if (c->pumping || !sl_controller__observe_synced(c->observe))
		return;
	c->pumping = true;
	while (!c->stopping && c->in_flight < c->opts.workers && (key = sl_loop_workqueue_get(c->wq))) {
		c->in_flight++;
		reconcile(c, key);
	}
	c->pumping = false;
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void wq_ready(struct sl_loop_workqueue *wq, void *payload)
{
	sl_controller__pump(payload);
}

static int copy_namespaces(struct sl_controller *c, const char *const *namespaces)
{
	for (size_t i = 0; namespaces && namespaces[i]; i++) {
		if (!*namespaces[i])
			continue;
		char **ns = realloc(c->ns, (c->n_ns + 1) * sizeof(*ns));
		if (!ns)
			return SL_ENOMEM;
		c->ns = ns;
		if (!(ns[c->n_ns] = sl_strdup(namespaces[i])))
			return SL_ENOMEM;
		c->n_ns++;
	}
	return 0;
}

/* The shard's label selector and field manager. */
static int set_shard(struct sl_controller *c, const char *shard, struct sl_error *err)
{
	int r;

	if (shard) {
		r = sl_arcane_shard_check(shard, err);
		if (r < 0)
			return r;
		c->shard = sl_strdup(shard);
		if (!c->shard)
			return sl_error_set(err, SL_ENOMEM, "out of memory");
	}
	r = sl_arcane_shard_selector(c->shard, c->shard_selector, sizeof(c->shard_selector));
	if (r == 0 && c->shard &&
	    !sl_snprintf_ok(c->field_manager, sizeof(c->field_manager), "%s/%s",
	                    SL_ARCANE_FIELD_MANAGER_CONTROLLER, c->shard))
		r = SL_ETOOLARGE;
	else if (r == 0 && !c->shard)
		snprintf(c->field_manager, sizeof(c->field_manager), "%s",
		         SL_ARCANE_FIELD_MANAGER_CONTROLLER);
	return r < 0 ? sl_error_set(err, r, "shard name too long") : 0;
}

static void set_defaults(struct sl_controller_opts *o)
{
	o->namespaces = NULL;
	o->shard = NULL;
	if (!o->workers)
		o->workers = 32;
	if (!o->class_retry_min_ms)
		o->class_retry_min_ms = 1000;
	if (!o->class_retry_max_ms)
		o->class_retry_max_ms = 30000;
	if (!o->expectation_wait_ms)
		o->expectation_wait_ms = 10000;
}

int sl_controller_new(struct sl_loop *loop, struct sl_kube *k, const struct sl_controller_opts *opts,
                      struct sl_controller **ret, struct sl_error *err)
{
	struct sl_controller *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	if (opts)
		c->opts = *opts;
	set_defaults(&c->opts);
	r = copy_namespaces(c, opts ? opts->namespaces : NULL);
	if (r < 0)
		goto fail;
	r = set_shard(c, opts ? opts->shard : NULL, err);
	if (r < 0) {
		sl_controller_free(c);
		return r;
	}
	c->ctx = (struct sl_controller__ctx){.c = c,
	                                     .loop = loop,
	                                     .k = k,
	                                     .ns = c->ns,
	                                     .n_ns = c->n_ns,
	                                     .shard = c->shard,
	                                     .shard_selector = c->shard_selector,
	                                     .field_manager = c->field_manager,
	                                     .metrics = &c->metrics};
	r = sl_loop_workqueue_new(loop, NULL, wq_ready, c, &c->wq);
	if (r < 0) {
		sl_controller_free(c);
		return sl_error_set(err, r, "creating the work queue: %s", sl_strerror(r));
	}
	r = sl_controller__classes_new(&c->ctx, c->opts.class_retry_min_ms, c->opts.class_retry_max_ms,
	                               &c->classes);
	if (r == 0)
		r = sl_controller__observe_new(&c->ctx, c->classes, &c->observe);
	if (r == 0)
		r = sl_controller__move_new(&c->ctx, c->observe, &c->move);
	if (r == 0)
		r = sl_controller__act_new(&c->ctx, c->observe, c->move, c->wq, c->opts.expectation_wait_ms,
		                           &c->act);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	sl_controller_free(c);
	return sl_error_set(err, r, "out of memory");
}

int sl_controller_start(struct sl_controller *c, struct sl_error *err)
{
	int r;

	c->stopping = false;
	r = sl_controller__classes_start(c->classes, err);
	if (r < 0)
		return r;
	return sl_controller__observe_start(c->observe, err);
}

static void stop_informers(struct sl_controller *c)
{
	if (c->classes)
		sl_controller__classes_stop(c->classes);
	if (c->observe)
		sl_controller__observe_stop(c->observe);
}

void sl_controller_stop(struct sl_controller *c, void (*done)(void *payload), void *payload)
{
	c->stopping = true;
	stop_informers(c);
	c->stop_done = done;
	c->stop_payload = payload;
	check_stopped(c);
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
	sl_controller__act_free(c->act);
	sl_controller__move_free(c->move);
	sl_controller__classes_free(c->classes);
	sl_controller__observe_free(c->observe);
	sl_loop_workqueue_free(c->wq);
	for (size_t i = 0; i < c->n_ns; i++)
		free(c->ns[i]);
	free(c->ns);
	free(c->shard);
	free(c);
}

void sl_controller_set_writeback_hook(struct sl_controller *c, sl_controller_writeback_fn fn, void *payload)
{
	sl_controller__observe_set_writeback(c->observe, fn, payload);
}

bool sl_controller_synced(const struct sl_controller *c)
{
	return sl_controller__classes_synced(c->classes) && sl_controller__observe_synced(c->observe);
}

void sl_controller_foreach_informer(const struct sl_controller *c,
                                    void (*fn)(const struct sl_kube_informer *inf, void *payload),
                                    void *payload)
{
	sl_controller__classes_foreach_informer(c->classes, fn, payload);
	sl_controller__observe_foreach_informer(c->observe, fn, payload);
}

/* ---- metrics ---------------------------------------------------------------------- */

static enum sl_controller_phase phase_of(const cJSON *stream)
{
	const char *p = sl_manifest_str(sl_manifest_obj(stream, "status"), "phase");

	for (int j = 1; j < SL_CONTROLLER_PHASE__MAX; j++)
		if (sl_streq(p, sl_controller_phase_name(j)))
			return j;
	return SL_CONTROLLER_PHASE_NONE;
}

static void count_class(const struct sl_controller__class *kl, void *payload)
{
	struct sl_controller_metrics *m = payload;

	m->classes++;
	if (sl_controller__class_ready(kl))
		m->classes_ready++;
}

void sl_controller_metrics(const struct sl_controller *c, struct sl_controller_metrics *ret)
{
	*ret = c->metrics;
	ret->queue_depth = sl_loop_workqueue_len(c->wq);
	ret->queue_delayed = sl_loop_workqueue_delayed(c->wq);
	ret->in_flight = c->in_flight;
	ret->remembered = sl_controller__observe_remembered(c->observe) +
	                  sl_controller__act_remembered(c->act) + sl_controller__move_remembered(c->move);
	ret->classes = ret->classes_ready = 0;
	sl_controller__classes_foreach(c->classes, count_class, ret);
}

struct class_walk {
	const struct sl_controller *c;
	const struct sl_controller__class *kl;
	struct sl_controller_class_metrics m;
	void (*fn)(const struct sl_controller_class_metrics *m, void *payload);
	void *payload;
};

static int64_t created_at(const cJSON *obj)
{
	int64_t t;

	if (!obj || sl_time_parse_rfc3339(sl_manifest_md_str(obj, "creationTimestamp"), &t) < 0)
		return 0;
	return t;
}

/* When the backfill of a Backfilling stream started: its backfill Job's
 * creation, else (no Job yet, or the Job of an earlier request) that of the
 * BackfillRequest its status names. */
static int64_t backfill_start(const struct class_walk *w, const cJSON *stream)
{
	const char *ns = sl_manifest_md_str(stream, "namespace");
	const char *name = sl_manifest_md_str(stream, "name");
	const char *kind = sl_controller__class_kind(w->kl);
	const char *bfr = sl_manifest_str(sl_manifest_obj(stream, "status"), "backfillRequest");
	const cJSON *j;
	char job[64];
	int64_t t = 0;

	if (!ns || !name)
		return 0;
	sl_stream_job_name(name, true, job);
	j = sl_controller__observe_get(w->c->observe, SL_CONTROLLER__JOB, kind, ns, job);
	if (j && (!bfr || !*bfr || sl_streq(sl_manifest_annotation(j, SL_ARCANE_ANN_BACKFILL_REQUEST), bfr)))
		t = created_at(j);
	if (!t && bfr && *bfr)
		t = created_at(
		    sl_controller__observe_get(w->c->observe, SL_CONTROLLER__BACKFILL, kind, ns, bfr));
	return t;
}

static void walk_stream(const cJSON *stream, void *payload)
{
	struct class_walk *w = payload;
	enum sl_controller_phase p = phase_of(stream);
	int64_t t;

	w->m.streams_by_phase[p]++;
	if (p != SL_CONTROLLER_PHASE_BACKFILLING)
		return;
	t = backfill_start(w, stream);
	if (t && (!w->m.backfill_oldest_start || t < w->m.backfill_oldest_start))
		w->m.backfill_oldest_start = t;
}

static void walk_class(const struct sl_controller__class *kl, void *payload)
{
	struct class_walk *w = payload;

	w->kl = kl;
	w->m = (struct sl_controller_class_metrics){.name = sl_controller__class_name(kl),
	                                            .ready = sl_controller__class_ready(kl)};
	if (!w->m.name)
		return;
	sl_controller__class_foreach_stream(kl, walk_stream, w);
	w->fn(&w->m, w->payload);
}

void sl_controller_class_metrics(const struct sl_controller *c,
                                 void (*fn)(const struct sl_controller_class_metrics *m, void *payload),
                                 void *payload)
{
	struct class_walk w = {.c = c, .fn = fn, .payload = payload};

	sl_controller__classes_foreach(c->classes, walk_class, &w);
}

const char *sl_controller_job_type_name(enum sl_controller_job_type t)
{
	static const char *const n[] = {"streaming", "backfill"};
	return t < SL_CONTROLLER_JOB__MAX ? n[t] : "unknown";
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
