/* Leader election on a coordination.k8s.io/v1 Lease: every retry period the
 * Lease is read, and taken or renewed with an update conditional on its
 * resourceVersion; a 409 means another replica won the round. */
#include "sluice/kube-lease.h"
#include "sluice/kube.h"
#include "sluice/loop.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct sl_kube_lease {
	struct sl_loop *loop;
	struct sl_kube *k;
	char *ns, *name, *identity;
	uint64_t duration_ms, renew_deadline_ms, retry_ms;
	void (*started)(void *payload);
	void (*stopped)(void *payload);
	void *payload;

	struct sl_loop_timer *tick;     /* next attempt */
	struct sl_loop_timer *deadline; /* leader: last renewal + renew deadline */
	bool running;
	bool leader;
	bool in_flight;
	bool dead;      /* freed while a request was in flight */
	bool releasing; /* release asked; done once the write completes */
	void (*release_done)(int code, void *payload);
	void *release_payload;

	cJSON *obj;           /* the Lease as last read or written */
	char observed_rv[64]; /* resourceVersion of obj */
	uint64_t observed_ms; /* when that record was first seen */
	struct sl_kube_lease_stats stats;
};

static void on_tick(struct sl_loop *loop, struct sl_loop_timer *t, void *payload);
static void on_deadline(struct sl_loop *loop, struct sl_loop_timer *t, void *payload);

static const struct sl_kube_ref lease_ref = {
    .api_version = "coordination.k8s.io/v1",
    .kind = "Lease",
    .resource = "leases",
    .namespaced = true,
};

int sl_kube_lease_identity(char *out, size_t outsz)
{
	char host[256] = "";
	const char *pod = getenv("POD_NAME");
	uint8_t rnd[4];
	char hex[9];
	int n;

	if (!pod || !*pod) {
		if (gethostname(host, sizeof(host) - 1) < 0 || !*host)
			snprintf(host, sizeof(host), "sluice");
		pod = host;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return SL_EIO;
	sl_hex(rnd, sizeof(rnd), hex);
	n = snprintf(out, outsz, "%s_%s", pod, hex);
	return n < 0 || (size_t)n >= outsz ? SL_ETOOLARGE : 0;
}

/* MicroTime as the API server writes it: RFC 3339 with microseconds. */
static void micro_time(char out[static 40])
{
	struct timespec ts;
	struct tm tm;
	char base[32];
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	ok = sl_snprintf_ok(out, 40, "%s.%06ldZ", base, ts.tv_nsec / 1000);
	assert(ok); /* 19 + 8 bytes: tv_nsec / 1000 has at most 6 digits */
	(void)ok;
}

int sl_kube_lease_new(struct sl_loop *loop, struct sl_kube *k, const struct sl_kube_lease_opts *opts,
                      struct sl_kube_lease **ret, struct sl_error *err)
{
	struct sl_kube_lease *l;
	char id[300];
	int r;

	if (!opts->ns || !*opts->ns || !opts->name || !*opts->name)
		return sl_error_set(err, SL_EINVALID, "leader election needs a Lease namespace and name");
	l = calloc(1, sizeof(*l));
	if (!l)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	l->loop = loop;
	l->k = k;
	l->duration_ms = opts->duration_ms ? opts->duration_ms : 15000;
	l->renew_deadline_ms = opts->renew_deadline_ms ? opts->renew_deadline_ms : 10000;
	l->retry_ms = opts->retry_ms ? opts->retry_ms : 2000;
	l->started = opts->started;
	l->stopped = opts->stopped;
	l->payload = opts->payload;
	if (!(l->duration_ms > l->renew_deadline_ms && l->renew_deadline_ms > l->retry_ms) ||
	    l->duration_ms < 1000) {
		r = sl_error_set(
		    err, SL_EINVALID,
		    "leader election needs lease duration > renew deadline > retry period (and >= 1s)");
		goto fail;
	}
	if (!opts->identity) {
		r = sl_kube_lease_identity(id, sizeof(id));
		if (r < 0) {
			sl_error_set(err, r, "cannot make a holder identity");
			goto fail;
		}
	}
	l->ns = sl_strdup(opts->ns);
	l->name = sl_strdup(opts->name);
	l->identity = sl_strdup(opts->identity ? opts->identity : id);
	if (!l->ns || !l->name || !l->identity) {
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	r = sl_loop_timer_new(loop, on_tick, l, &l->tick);
	if (r == 0)
		r = sl_loop_timer_new(loop, on_deadline, l, &l->deadline);
	if (r < 0) {
		sl_error_set(err, r, "cannot create timers");
		goto fail;
	}
	*ret = l;
	return 0;
fail:
	sl_kube_lease_free(l);
	return r;
}

static void destroy(struct sl_kube_lease *l)
{
	sl_loop_timer_free(l->tick);
	sl_loop_timer_free(l->deadline);
	cJSON_Delete(l->obj);
	free(l->ns);
	free(l->name);
	free(l->identity);
	free(l);
}

void sl_kube_lease_free(struct sl_kube_lease *l)
{
	if (!l)
		return;
	if (l->in_flight) {
		/* The kube callback runs exactly once, later: it frees. */
		l->dead = true;
		l->running = false;
		sl_loop_timer_disarm(l->tick);
		sl_loop_timer_disarm(l->deadline);
		return;
	}
	destroy(l);
}

bool sl_kube_lease_is_leader(const struct sl_kube_lease *l)
{
	return l && l->leader;
}

const char *sl_kube_lease_get_identity(const struct sl_kube_lease *l)
{
	return l->identity;
}

void sl_kube_lease_stats(const struct sl_kube_lease *l, struct sl_kube_lease_stats *ret)
{
	*ret = l->stats;
	ret->leader = l->leader;
}

static void lose(struct sl_kube_lease *l)
{
	if (!l->leader)
		return;
	l->leader = false;
	l->stats.lost++;
	sl_loop_timer_disarm(l->deadline);
	if (l->stopped)
		l->stopped(l->payload);
}

static void on_deadline(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	/* Not renewed in time: another replica may take the lease once it
	 * expires, so work stops now, whether or not a request is pending. */
	lose(payload);
}

static void schedule(struct sl_kube_lease *l)
{
	if (l->running && !l->dead)
		sl_loop_timer_arm(l->tick, l->retry_ms);
}

static const char *spec_str(const cJSON *obj, const char *key)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, key));
}

static double spec_num(const cJSON *obj, const char *key, double def)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, key);
	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Remembers obj (taken) as the record last seen; a changed resourceVersion
 * restarts the local expiry clock. */
static void observe(struct sl_kube_lease *l, cJSON *obj)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"));

	if (!rv)
		rv = "";
	if (strcmp(rv, l->observed_rv) != 0 || !l->obj) {
		snprintf(l->observed_rv, sizeof(l->observed_rv), "%s", rv);
		l->observed_ms = sl_now_ms();
	}
	cJSON_Delete(l->obj);
	l->obj = obj;
}

static void cjson_deletep(cJSON **p)
{
	cJSON_Delete(*p);
}

int sl_kube_lease_body(const cJSON *old, const struct sl_kube_lease_write *w, cJSON **ret)
{
	_cleanup_(cjson_deletep) cJSON *obj = NULL;
	cJSON *meta, *spec;
	const char *holder = old ? spec_str(old, "holderIdentity") : NULL;
	const char *acq = old ? spec_str(old, "acquireTime") : NULL;
	bool taking = !holder || strcmp(holder, w->identity) != 0;
	double transitions = old ? spec_num(old, "leaseTransitions", 0) : 0;

	assert(w->identity && w->now);
	SL_CHECK_ALLOC(obj = old ? cJSON_Duplicate(old, true) : cJSON_CreateObject());
	if (!old) {
		SL_CHECK_ALLOC(cJSON_AddStringToObject(obj, "apiVersion", "coordination.k8s.io/v1"));
		SL_CHECK_ALLOC(cJSON_AddStringToObject(obj, "kind", "Lease"));
	}
	meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	if (!meta) {
		SL_CHECK_ALLOC(meta = cJSON_AddObjectToObject(obj, "metadata"));
		SL_CHECK_ALLOC(cJSON_AddStringToObject(meta, "name", w->name));
		SL_CHECK_ALLOC(cJSON_AddStringToObject(meta, "namespace", w->ns));
	}
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "spec");
	SL_CHECK_ALLOC(spec = cJSON_AddObjectToObject(obj, "spec"));
	SL_CHECK_ALLOC(cJSON_AddStringToObject(spec, "holderIdentity", w->release ? "" : w->identity));
	SL_CHECK_ALLOC(cJSON_AddNumberToObject(spec, "leaseDurationSeconds",
	                                       w->release ? 1 : (double)((w->duration_ms + 999) / 1000)));
	/* kept while renewing; a new holder (or a release) starts it again */
	SL_CHECK_ALLOC(
	    cJSON_AddStringToObject(spec, "acquireTime", !w->release && !taking && acq ? acq : w->now));
	SL_CHECK_ALLOC(cJSON_AddStringToObject(spec, "renewTime", w->now));
	SL_CHECK_ALLOC(cJSON_AddNumberToObject(
	    spec, "leaseTransitions",
	    transitions + (!w->release && old && taking && holder && *holder ? 1 : 0)));
	*ret = TAKE_PTR(obj);
	return 0;
}

/* The Lease to write now for l (see sl_kube_lease_body), or NULL when out of
 * memory. */
static cJSON *build(struct sl_kube_lease *l, const cJSON *old, bool release)
{
	char now[40];
	struct sl_kube_lease_write w = {
	    .ns = l->ns,
	    .name = l->name,
	    .identity = l->identity,
	    .duration_ms = l->duration_ms,
	    .release = release,
	    .now = now,
	};
	cJSON *obj = NULL;

	micro_time(now);
	return sl_kube_lease_body(old, &w, &obj) < 0 ? NULL : obj;
}

static void finish_release(struct sl_kube_lease *l, int code)
{
	void (*done)(int, void *) = l->release_done;
	l->releasing = false;
	l->release_done = NULL;
	if (done)
		done(code, l->release_payload);
}

static void on_released(struct sl_kube_result *res, void *payload)
{
	struct sl_kube_lease *l = payload;

	l->in_flight = false;
	if (l->dead) {
		destroy(l);
		return;
	}
	finish_release(l, res->code);
}

static int do_release(struct sl_kube_lease *l)
{
	struct sl_kube_ref ref = lease_ref;
	struct sl_kube_call_opts o = {.timeout_ms = (unsigned)l->renew_deadline_ms / 2};
	cJSON *obj = build(l, l->obj, true);
	int r;

	if (!obj)
		return SL_ENOMEM;
	ref.ns = l->ns;
	ref.name = l->name;
	r = sl_kube_update(l->k, &ref, obj, &o, on_released, l);
	cJSON_Delete(obj);
	if (r == 0)
		l->in_flight = true;
	return r;
}

/* A release asked while a request was in flight, done once it returned:
 * gives the Lease back if this process held it. */
static void release_pending(struct sl_kube_lease *l)
{
	bool lead = l->leader;
	int r = 0;

	l->leader = false;
	if (lead)
		r = do_release(l);
	if (!l->in_flight)
		finish_release(l, r);
}

static void on_written(struct sl_kube_result *res, void *payload)
{
	struct sl_kube_lease *l = payload;

	l->in_flight = false;
	if (l->dead) {
		destroy(l);
		return;
	}
	if (res->code == 0 && cJSON_IsObject(res->body)) {
		observe(l, res->body);
		res->body = NULL;
		if (l->releasing) {
			/* Asked to release while this write ran: give it back now. */
			l->leader = true;
		} else {
			sl_loop_timer_arm(l->deadline, l->renew_deadline_ms);
			if (!l->leader) {
				l->leader = true;
				l->stats.acquired++;
				if (l->started)
					l->started(l->payload);
			}
		}
	} else {
		/* A conflict is another replica winning the round; anything else
		 * is retried. The deadline timer ends a leadership we cannot keep. */
		l->stats.renew_failures++;
	}
	if (l->releasing) {
		release_pending(l);
		return;
	}
	schedule(l);
}

static void on_got(struct sl_kube_result *res, void *payload)
{
	struct sl_kube_lease *l = payload;
	struct sl_kube_ref ref = lease_ref;
	struct sl_kube_call_opts o = {.timeout_ms = (unsigned)l->renew_deadline_ms / 2};
	const char *holder;
	cJSON *obj = NULL;
	int r;

	l->in_flight = false;
	if (l->dead) {
		destroy(l);
		return;
	}
	if (l->releasing) {
		if (res->code == 0 && cJSON_IsObject(res->body)) {
			observe(l, res->body);
			res->body = NULL;
		}
		release_pending(l);
		return;
	}
	ref.ns = l->ns;
	if (res->code == SL_ENOTFOUND) {
		obj = build(l, NULL, false);
		r = obj ? sl_kube_create(l->k, &ref, obj, &o, on_written, l) : SL_ENOMEM;
		goto sent;
	}
	if (res->code != 0 || !cJSON_IsObject(res->body)) {
		l->stats.renew_failures++;
		schedule(l);
		return;
	}
	observe(l, res->body);
	res->body = NULL;
	holder = spec_str(l->obj, "holderIdentity");
	if (holder && *holder && strcmp(holder, l->identity) != 0) {
		uint64_t dur = (uint64_t)spec_num(l->obj, "leaseDurationSeconds", 15) * 1000;
		/* Someone else holds it: leading must stop at once. */
		lose(l);
		if (sl_now_ms() - l->observed_ms < dur) {
			schedule(l);
			return;
		}
	}
	ref.name = l->name;
	obj = build(l, l->obj, false);
	r = obj ? sl_kube_update(l->k, &ref, obj, &o, on_written, l) : SL_ENOMEM;
sent:
	cJSON_Delete(obj);
	if (r == 0) {
		l->in_flight = true;
	} else {
		l->stats.renew_failures++;
		schedule(l);
	}
}

static void attempt(struct sl_kube_lease *l)
{
	struct sl_kube_ref ref = lease_ref;
	struct sl_kube_call_opts o = {.timeout_ms = (unsigned)l->renew_deadline_ms / 2};

	if (l->in_flight || !l->running)
		return;
	ref.ns = l->ns;
	ref.name = l->name;
	if (sl_kube_get(l->k, &ref, &o, on_got, l) == 0)
		l->in_flight = true;
	else
		schedule(l);
}

static void on_tick(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	attempt(payload);
}

int sl_kube_lease_start(struct sl_kube_lease *l)
{
	l->running = true;
	attempt(l);
	return 0;
}

static void release_deferred(struct sl_loop *loop, void *payload)
{
	finish_release(payload, 0);
}

int sl_kube_lease_release(struct sl_kube_lease *l, void (*done)(int code, void *payload), void *payload)
{
	int r;

	l->running = false;
	sl_loop_timer_disarm(l->tick);
	sl_loop_timer_disarm(l->deadline);
	l->releasing = true;
	l->release_done = done;
	l->release_payload = payload;
	if (l->in_flight)
		return 0; /* finished from the callback of the request in flight */
	if (!l->leader || !l->obj)
		return sl_loop_defer(l->loop, release_deferred, l);
	l->leader = false;
	r = do_release(l);
	if (r < 0) {
		l->releasing = false;
		l->release_done = NULL;
	}
	return r;
}
