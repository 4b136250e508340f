/* Informers: list, then watch from the list's resourceVersion; a cache keyed
 * namespace/name; relist on 410 (HTTP or ERROR event) with deletes noticed
 * on relist reported as deletes; jittered reconnect backoff. */
#include "internal.h"

#include "sluice/manifest-json.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qev {
	struct sl_kube_event ev;
	struct qev *next;
};

/* A callback's handle on the informer, cleared when the informer goes away
 * first, so a late list or discovery answer finds nothing to touch. */
struct token {
	struct sl_kube_informer *inf;
};

enum inf_state { INF_IDLE, INF_RESOLVING, INF_LISTING, INF_WATCHING, INF_BACKOFF };

struct sl_kube_informer {
	struct sl_kube *k;
	char *api_version, *kind, *ns, *label, *field;
	struct sl_kube_resource res;
	bool resolved;
	unsigned page_size, idle_ms, wmin, wmax;
	uint64_t bmin, bmax, backoff;
	struct sl_kube_informer_handlers h;
	void *payload;

	enum inf_state state;
	bool need_list; /* after backoff: list (true) or watch (false) */
	bool synced;
	bool listed_once;
	char *rv;
	struct sl_map cache; /* key -> cJSON object */
	struct sl_map fresh; /* the list being received, page by page */
	int fresh_err;       /* SL_ENOMEM: an object of it was lost, list again */
	struct token *tok;
	struct req *watch;
	bool watch_got_data;
	struct sl_kube_lines lines;
	struct qev *qhead, *qtail;
	int stream_err;
	struct sl_loop_timer *timer;
	unsigned busy;
	bool dead;
	struct sl_kube_informer *knext, *kprev; /* k->informers */
};

static void begin(struct sl_kube_informer *inf);
static void do_list(struct sl_kube_informer *inf);
static void do_watch(struct sl_kube_informer *inf);

static char *dup_or_null(const char *s)
{
	return s && *s ? sl_strdup(s) : NULL;
}

static void qclear(struct sl_kube_informer *inf)
{
	while (inf->qhead) {
		struct qev *q = inf->qhead;
		inf->qhead = q->next;
		sl_kube_event_clear(&q->ev);
		free(q);
	}
	inf->qtail = NULL;
}

static void obj_free(void *p)
{
	cJSON_Delete(p);
}

static void really_free(struct sl_kube_informer *inf)
{
	if (inf->kprev)
		inf->kprev->knext = inf->knext;
	else if (inf->k->informers == inf)
		inf->k->informers = inf->knext;
	if (inf->knext)
		inf->knext->kprev = inf->kprev;
	qclear(inf);
	sl_kube_lines_free(&inf->lines);
	sl_map_free(&inf->cache, obj_free);
	sl_map_free(&inf->fresh, obj_free);
	sl_loop_timer_free(inf->timer);
	free(inf->api_version);
	free(inf->kind);
	free(inf->ns);
	free(inf->label);
	free(inf->field);
	free(inf->rv);
	free(inf);
}

/* Drops the watch connection and the events it queued but not applied. */
static void stop_watch(struct sl_kube_informer *inf)
{
	if (inf->watch) {
		sl_kube__req_cancel(inf->watch);
		inf->watch = NULL;
	}
	qclear(inf);
}

static void stop_io(struct sl_kube_informer *inf)
{
	if (inf->tok) {
		inf->tok->inf = NULL;
		inf->tok = NULL;
	}
	stop_watch(inf);
	sl_loop_timer_disarm(inf->timer);
}

void sl_kube_informer_free(struct sl_kube_informer *inf)
{
	if (!inf)
		return;
	stop_io(inf);
	if (inf->busy) {
		inf->dead = true; /* freed when the handler returns */
		return;
	}
	really_free(inf);
}

/* Handler calls go through these so that a handler may free the informer:
 * they return false when it did. */
static void enter(struct sl_kube_informer *inf)
{
	inf->busy++;
}
static bool leave(struct sl_kube_informer *inf)
{
	assert(inf->busy > 0);
	if (--inf->busy == 0 && inf->dead) {
		really_free(inf);
		return false;
	}
	return !inf->dead;
}

static void report(struct sl_kube_informer *inf, const struct sl_error *err)
{
	if (inf->h.error) {
		inf->h.error(err, inf->payload);
	}
}

int sl_kube__informer_rv(const cJSON *obj, char **rv)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion"));
	char *n;
	if (!v || !*v)
		return 0;
	SL_CHECK_ALLOC(n = sl_strdup(v));
	free(*rv);
	*rv = n;
	return 0;
}

/* Keeps obj's resourceVersion. SL_ENOMEM leaves the older one: a watch
 * started from it replays events the cache applies again, but a relist's
 * cache must not be watched from before the list (on_list checks). */
static int set_rv(struct sl_kube_informer *inf, const cJSON *obj)
{
	return sl_kube__informer_rv(obj, &inf->rv);
}

static void trim(cJSON *obj, void (*transform)(cJSON *obj, void *payload), void *payload)
{
	if (transform)
		transform(obj, payload);
	else
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
		                                        "managedFields");
	/* what is kept is kept long: its repeated strings are shared */
	sl_manifest_json_share(obj);
}

/* obj trimmed and packed into one allocation for the cache (obj itself
 * when memory ran out: it is cached as it is). Takes obj. */
static cJSON *keep_obj(cJSON *obj, void (*transform)(cJSON *obj, void *payload), void *payload)
{
	cJSON *packed;

	trim(obj, transform, payload);
	packed = sl_manifest_json_pack(obj);
	if (!packed)
		return obj;
	cJSON_Delete(obj);
	return packed;
}

static void backoff_then(struct sl_kube_informer *inf, bool list)
{
	uint64_t d = inf->backoff;
	/* jitter of +-20% so that many informers do not reconnect in step */
	d = sl_rand_between(d * 4 / 5, d * 6 / 5);
	inf->backoff = SL_MIN(inf->backoff * 2, inf->bmax);
	inf->need_list = list;
	inf->state = INF_BACKOFF;
	sl_loop_timer_arm(inf->timer, d);
}

static void timer_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct sl_kube_informer *inf = payload;
	if (!inf->resolved)
		begin(inf);
	else if (inf->need_list || !inf->rv)
		do_list(inf);
	else
		do_watch(inf);
}

/* ---- list ------------------------------------------------------------------ */

struct diff_ctx {
	struct sl_kube_informer *inf;
	struct sl_map *fresh;
	bool alive;
};

static void report_gone(const char *key, void *val, void *payload)
{
	struct diff_ctx *d = payload;
	if (!d->alive || sl_map_get(d->fresh, key))
		return;
	if (d->inf->h.del) {
		enter(d->inf);
		d->inf->h.del(val, d->inf->payload);
		d->alive = leave(d->inf);
	}
}

static bool same_rv(const cJSON *a, const cJSON *b)
{
	const char *x = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(a, "metadata"), "resourceVersion"));
	const char *y = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(b, "metadata"), "resourceVersion"));
	return x && y && strcmp(x, y) == 0;
}

struct add_ctx {
	struct sl_kube_informer *inf;
	struct sl_map *old;
	bool alive;
};

static void report_new(const char *key, void *val, void *payload)
{
	struct add_ctx *a = payload;
	cJSON *old;
	if (!a->alive)
		return;
	old = sl_map_get(a->old, key);
	enter(a->inf);
	if (!old) {
		if (a->inf->h.add)
			a->inf->h.add(val, a->inf->payload);
	} else if (!same_rv(old, val) && a->inf->h.update)
		a->inf->h.update(old, val, a->inf->payload);
	a->alive = leave(a->inf);
}

/* One page of the list: trimmed right away, so a relist of many objects
 * never holds them whole and untrimmed. */
static void on_page(cJSON *items, void *payload)
{
	struct token *tok = payload;
	struct sl_kube_informer *inf = tok->inf;

	if (!inf)
		return;
	/* pages belong to the list under way, the one tok names */
	assert(inf->tok == tok && inf->state == INF_LISTING);
	if (!items) {
		sl_map_free(&inf->fresh, obj_free);
		inf->fresh_err = 0;
		return;
	}
	if (sl_kube__informer_keep(&inf->fresh, items, inf->res.kind, inf->api_version, inf->h.transform,
	                           inf->payload) < 0)
		inf->fresh_err = SL_ENOMEM;
}

int sl_kube__informer_keep(struct sl_map *fresh, cJSON *items, const char *kind, const char *api_version,
                           void (*transform)(cJSON *obj, void *payload), void *payload)
{
	cJSON *it;
	int r = 0;

	while ((it = items->child)) {
		char key[512];
		void *prev = NULL;
		cJSON_DetachItemViaPointer(items, it);
		/* list items carry no apiVersion/kind: give them the informer's */
		if ((!cJSON_GetObjectItemCaseSensitive(it, "kind") && kind[0] &&
		     !cJSON_AddStringToObject(it, "kind", kind)) ||
		    (!cJSON_GetObjectItemCaseSensitive(it, "apiVersion") &&
		     !cJSON_AddStringToObject(it, "apiVersion", api_version))) {
			/* a cache missing an object would report it deleted */
			r = SL_ENOMEM;
			cJSON_Delete(it);
			continue;
		}
		it = keep_obj(it, transform, payload);
		if (sl_kube_obj_key(it, key, sizeof(key)) < 0) {
			cJSON_Delete(it);
			continue;
		}
		if (sl_map_put(fresh, key, it, &prev) < 0) {
			r = SL_ENOMEM;
			cJSON_Delete(it);
			continue;
		}
		cJSON_Delete(prev);
	}
	return r;
}

static void on_list(struct sl_kube_result *res, void *payload)
{
	struct token *tok = payload;
	struct sl_kube_informer *inf = tok->inf;
	struct sl_map old;
	struct diff_ctx d;
	struct add_ctx a;

	assert(!inf || (inf->tok == tok && inf->state == INF_LISTING));
	free(tok);
	if (!inf)
		return;
	inf->tok = NULL;
	if (res->code >= 0 && !inf->fresh_err && set_rv(inf, res->body) < 0)
		inf->fresh_err = SL_ENOMEM;
	if (res->code >= 0 && inf->fresh_err)
		sl_error_set(&res->err, inf->fresh_err, "list: out of memory keeping its objects");
	if (res->code < 0 || inf->fresh_err) {
		sl_map_free(&inf->fresh, obj_free);
		inf->fresh_err = 0;
		enter(inf);
		report(inf, &res->err);
		if (!leave(inf))
			return;
		backoff_then(inf, true);
		return;
	}
	old = inf->cache;
	inf->cache = inf->fresh;
	sl_map_init(&inf->fresh);
	if (inf->listed_once)
		inf->k->metrics.relists++;
	inf->listed_once = true;
	inf->backoff = inf->bmin;
	/* deletes first: objects gone while we were not watching */
	d = (struct diff_ctx){.inf = inf, .fresh = &inf->cache, .alive = true};
	enter(inf);
	sl_map_foreach(&old, report_gone, &d);
	a = (struct add_ctx){.inf = inf, .old = &old, .alive = d.alive};
	if (a.alive)
		sl_map_foreach(&inf->cache, report_new, &a);
	sl_map_free(&old, obj_free);
	if (!leave(inf) || !a.alive)
		return;
	if (!inf->synced) {
		inf->synced = true;
		if (inf->h.synced) {
			enter(inf);
			inf->h.synced(inf->payload);
			if (!leave(inf))
				return;
		}
	}
	do_watch(inf);
}

static void do_list(struct sl_kube_informer *inf)
{
	struct sl_kube_ref ref = {.api_version = inf->api_version,
	                          .kind = inf->res.kind,
	                          .resource = inf->res.plural,
	                          .namespaced = inf->res.namespaced,
	                          .ns = inf->ns};
	struct sl_kube_call_opts o = {
	    .limit = inf->page_size, .label_selector = inf->label, .field_selector = inf->field};
	struct token *tok = calloc(1, sizeof(*tok));
	int r;

	if (!tok) {
		backoff_then(inf, true);
		return;
	}
	tok->inf = inf;
	inf->state = INF_LISTING;
	sl_map_free(&inf->fresh, obj_free);
	inf->fresh_err = 0;
	r = sl_kube_list_pages(inf->k, &ref, &o, on_page, on_list, tok);
	if (r < 0) {
		free(tok);
		backoff_then(inf, true);
		return;
	}
	inf->tok = tok;
}

/* ---- watch ----------------------------------------------------------------- */

static int on_line(const char *line, size_t len, void *payload)
{
	struct sl_kube_informer *inf = payload;
	struct qev *q = calloc(1, sizeof(*q));
	int r;

	if (!q)
		return SL_ENOMEM;
	r = sl_kube_event_parse(line, len, &q->ev, NULL);
	if (r < 0) {
		free(q);
		return r;
	}
	if (inf->qtail)
		inf->qtail->next = q;
	else
		inf->qhead = q;
	inf->qtail = q;
	return 0;
}

/* Inside curl's write callback: frame and decode only; apply in drain. */
static int on_data(struct req *r, const char *p, size_t n, void *payload)
{
	struct sl_kube_informer *inf = payload;
	int rc = sl_kube_lines_feed(&inf->lines, p, n, on_line, inf);
	if (inf->qhead)
		sl_kube__req_mark_pending(r);
	if (rc < 0)
		inf->stream_err = rc;
	return rc;
}

static void restart_watch(struct sl_kube_informer *inf, bool relist)
{
	stop_watch(inf);
	inf->k->metrics.watch_restarts++;
	if (relist)
		do_list(inf);
	else
		do_watch(inf);
}

static void on_drain(struct req *r, void *payload)
{
	struct sl_kube_informer *inf = payload;
	struct qev *q;

	enter(inf);
	while (!inf->dead && (q = inf->qhead)) {
		struct sl_kube_event *ev = &q->ev;
		char key[512];
		inf->qhead = q->next;
		if (!inf->qhead)
			inf->qtail = NULL;
		inf->k->metrics.watch_events++;
		inf->watch_got_data = true;
		switch (ev->type) {
		case SL_KUBE_EVENT_ADDED:
		case SL_KUBE_EVENT_MODIFIED: {
			void *old = NULL;
			cJSON *obj = TAKE_PTR(ev->object);
			(void)set_rv(inf, obj);
			obj = keep_obj(obj, inf->h.transform, inf->payload);
			if (sl_kube_obj_key(obj, key, sizeof(key)) < 0 ||
			    sl_map_put(&inf->cache, key, obj, &old) < 0) {
				cJSON_Delete(obj);
				break;
			}
			/* one tree, one owner: the cache never holds an object twice */
			assert(old != obj);
			if (old && inf->h.update)
				inf->h.update(old, obj, inf->payload);
			else if (!old && inf->h.add)
				inf->h.add(obj, inf->payload);
			cJSON_Delete(old);
			break;
		}
		case SL_KUBE_EVENT_DELETED: {
			cJSON *old;
			(void)set_rv(inf, ev->object);
			if (sl_kube_obj_key(ev->object, key, sizeof(key)) < 0)
				break;
			old = sl_map_del(&inf->cache, key);
			if (inf->h.del) {
				if (old)
					inf->h.del(old, inf->payload);
				else {
					trim(ev->object, inf->h.transform, inf->payload);
					inf->h.del(ev->object, inf->payload);
				}
			}
			cJSON_Delete(old);
			break;
		}
		case SL_KUBE_EVENT_BOOKMARK:
			(void)set_rv(inf, ev->object);
			break;
		case SL_KUBE_EVENT_ERROR: {
			struct sl_error err;
			const char *msg =
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev->object, "message"));
			bool gone = ev->code == 410;
			sl_error_set(&err, gone ? SL_EGONE : SL_EIO, "watch %s: error event %ld: %s",
			             inf->res.plural, ev->code, msg ? msg : "");
			sl_kube_event_clear(ev);
			free(q);
			report(inf, &err);
			if (inf->dead)
				goto out;
			if (gone)
				restart_watch(inf, true);
			else {
				stop_watch(inf);
				backoff_then(inf, false);
			}
			goto out;
		}
		}
		sl_kube_event_clear(ev);
		free(q);
	}
out:
	leave(inf);
}

static void on_watch_done(struct req *unused, struct sl_kube_result *res, void *payload)
{
	struct sl_kube_informer *inf = payload;
	int serr = inf->stream_err;

	inf->watch = NULL;
	inf->stream_err = 0;
	qclear(inf);
	if (res->code == SL_ECANCELED)
		return;
	if (res->code == 0 && !serr) {
		/* the server ended the watch at its timeout: go on from where we are */
		inf->backoff = inf->bmin;
		restart_watch(inf, false);
		return;
	}
	if (res->code == SL_EGONE) {
		restart_watch(inf, true);
		return;
	}
	if (res->code == SL_ETIMEOUT && inf->watch_got_data) {
		/* idle: the connection may be dead; reopen at once */
		restart_watch(inf, false);
		return;
	}
	enter(inf);
	report(inf, &res->err);
	if (!leave(inf))
		return;
	inf->k->metrics.watch_restarts++;
	/* a stream we could not read (too long a line, garbage) is relisted */
	backoff_then(inf, serr != 0);
}

static void do_watch(struct sl_kube_informer *inf)
{
	struct sl_buf p;
	char num[32];
	unsigned ts = (unsigned)sl_rand_between(inf->wmin, inf->wmax);
	struct req_spec s = {.verb = SL_KUBE_VERB_WATCH,
	                     .method = "GET",
	                     .timeout_ms = (ts + 30) * 1000,
	                     .low_speed_s = (inf->idle_ms + 999) / 1000,
	                     .no_retry = true,
	                     .done = on_watch_done,
	                     .data = on_data,
	                     .drain = on_drain,
	                     .payload = inf};
	int r;

	sl_buf_init(&p, 8192);
	snprintf(num, sizeof(num), "%u", ts);
	r = sl_kube__path(&inf->res, inf->ns, NULL, NULL, &p);
	if (r == 0)
		r = sl_kube__query(&p, "watch", "1");
	if (r == 0)
		r = sl_kube__query(&p, "allowWatchBookmarks", "true");
	if (r == 0)
		r = sl_kube__query(&p, "resourceVersion", inf->rv ? inf->rv : "0");
	if (r == 0)
		r = sl_kube__query(&p, "timeoutSeconds", num);
	if (r == 0 && inf->label)
		r = sl_kube__query(&p, "labelSelector", inf->label);
	if (r == 0 && inf->field)
		r = sl_kube__query(&p, "fieldSelector", inf->field);
	sl_kube_lines_reset(&inf->lines);
	inf->watch_got_data = false;
	inf->stream_err = 0;
	if (r == 0) {
		s.path = p.data;
		r = sl_kube__req_start(inf->k, &s, &inf->watch);
	}
	sl_buf_free(&p);
	if (r < 0) {
		inf->watch = NULL;
		backoff_then(inf, false);
		return;
	}
	assert(inf->watch && !inf->tok);
	inf->state = INF_WATCHING;
}

/* ---- setup ------------------------------------------------------------------- */

static void on_resolved(int code, const struct sl_kube_resource *r, const struct sl_error *err, void *payload)
{
	struct token *tok = payload;
	struct sl_kube_informer *inf = tok->inf;

	free(tok);
	if (!inf)
		return;
	inf->tok = NULL;
	if (code < 0) {
		enter(inf);
		report(inf, err);
		if (!leave(inf))
			return;
		backoff_then(inf, true);
		return;
	}
	inf->res = *r;
	inf->resolved = true;
	do_list(inf);
}

static void begin(struct sl_kube_informer *inf)
{
	struct token *tok;
	int r;

	if (inf->resolved) {
		do_list(inf);
		return;
	}
	tok = calloc(1, sizeof(*tok));
	if (!tok) {
		backoff_then(inf, true);
		return;
	}
	tok->inf = inf;
	inf->state = INF_RESOLVING;
	r = sl_kube_discover(inf->k, inf->api_version, inf->kind, on_resolved, tok);
	if (r < 0) {
		free(tok);
		backoff_then(inf, true);
		return;
	}
	inf->tok = tok;
}

int sl_kube_informer_new(struct sl_kube *k, const struct sl_kube_informer_opts *o,
                         const struct sl_kube_informer_handlers *h, void *payload,
                         struct sl_kube_informer **ret, struct sl_error *err)
{
	struct sl_kube_informer *inf;
	const struct sl_kube_ref *ref = &o->ref;
	int r;

	if (!ref->api_version || (!ref->kind && !ref->resource))
		return sl_error_set(err, SL_EINVALID, "informer needs apiVersion and kind or resource");
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return SL_ENOMEM;
	inf->k = k;
	inf->api_version = sl_strdup(ref->api_version);
	inf->kind = dup_or_null(ref->kind);
	inf->ns = dup_or_null(ref->ns);
	inf->label = dup_or_null(o->label_selector);
	inf->field = dup_or_null(o->field_selector);
	if (!inf->api_version || (ref->kind && !inf->kind) || (ref->ns && *ref->ns && !inf->ns) ||
	    (o->label_selector && *o->label_selector && !inf->label) ||
	    (o->field_selector && *o->field_selector && !inf->field)) {
		really_free(inf);
		return SL_ENOMEM;
	}
	if (ref->resource) {
		r = sl_kube__resource_from_ref(ref, &inf->res);
		if (r < 0) {
			really_free(inf);
			return r;
		}
		inf->resolved = true;
	}
	inf->page_size = o->page_size ? o->page_size : 500;
	inf->idle_ms = o->idle_timeout_ms ? o->idle_timeout_ms : 120000;
	inf->wmin = o->watch_min_s ? o->watch_min_s : 300;
	inf->wmax = o->watch_max_s ? o->watch_max_s : 600;
	if (inf->wmax < inf->wmin)
		inf->wmax = inf->wmin;
	inf->bmin = o->backoff_min_ms ? o->backoff_min_ms : 800;
	inf->bmax = o->backoff_max_ms ? o->backoff_max_ms : 30000;
	if (inf->bmax < inf->bmin)
		inf->bmax = inf->bmin;
	inf->backoff = inf->bmin;
	if (h)
		inf->h = *h;
	inf->payload = payload;
	inf->knext = k->informers;
	if (k->informers)
		k->informers->kprev = inf;
	k->informers = inf;
	sl_map_init(&inf->cache);
	sl_map_init(&inf->fresh);
	sl_kube_lines_init(&inf->lines, k->opts.max_watch_line);
	r = sl_loop_timer_new(k->loop, timer_fire, inf, &inf->timer);
	if (r < 0) {
		really_free(inf);
		return r;
	}
	*ret = inf;
	return 0;
}

int sl_kube_informer_start(struct sl_kube_informer *inf)
{
	if (inf->state != INF_IDLE)
		return SL_EINVALID;
	/* through the timer, so handlers never run inside this call */
	inf->state = INF_BACKOFF;
	inf->need_list = true;
	sl_loop_timer_arm(inf->timer, 0);
	return 0;
}

void sl_kube__informers_wake(struct sl_kube *k)
{
	for (struct sl_kube_informer *inf = k->informers; inf; inf = inf->knext)
		if (inf->state == INF_BACKOFF && !inf->dead && inf->backoff > inf->bmin) {
			inf->backoff = inf->bmin;
			/* spread over the shortest backoff, not all at once */
			sl_loop_timer_arm(inf->timer, sl_rand_between(0, inf->bmin));
		}
}

bool sl_kube_informer_has_synced(const struct sl_kube_informer *inf)
{
	return inf->synced;
}
size_t sl_kube_informer_count(const struct sl_kube_informer *inf)
{
	return inf->cache.n;
}
const char *sl_kube_informer_resource_version(const struct sl_kube_informer *inf)
{
	return inf->rv ? inf->rv : "";
}

const cJSON *sl_kube_informer_get(const struct sl_kube_informer *inf, const char *ns, const char *name)
{
	char key[512];
	/* a key too long to build cannot be in the cache either */
	if (!name || sl_kube__key(ns, name, key, sizeof(key)) < 0)
		return NULL;
	return sl_map_get(&inf->cache, key);
}

struct each {
	void (*fn)(const cJSON *obj, void *payload);
	void *payload;
};

static void each_fn(const char *key, void *val, void *payload)
{
	struct each *e = payload;
	e->fn(val, e->payload);
}

void sl_kube_informer_foreach(const struct sl_kube_informer *inf, void (*fn)(const cJSON *obj, void *payload),
                              void *payload)
{
	struct each e = {fn, payload};
	sl_map_foreach(&inf->cache, each_fn, &e);
}

/* ---- inspection ------------------------------------------------------------- */

int sl_kube_informer_describe(const struct sl_kube_informer *inf, char *out, size_t outsz)
{
	const char *what = inf->resolved ? inf->res.plural : inf->kind;
	const char *group = inf->resolved ? inf->res.group : "";
	const char *version = inf->resolved ? inf->res.version : inf->api_version;

	if (!sl_snprintf_ok(out, outsz, "%s%s%s/%s ns=%s%s%s%s%s", what ? what : "?", *group ? "." : "",
	                    group, version, inf->ns ? inf->ns : "all", inf->label ? " selector=" : "",
	                    inf->label ? inf->label : "", inf->field ? " fields=" : "",
	                    inf->field ? inf->field : ""))
		return SL_ETOOLARGE;
	return 0;
}

struct digest_lines {
	char **v;
	size_t n, cap;
	int err;
};

static void digest_line(const cJSON *obj, void *payload)
{
	struct digest_lines *d = payload;
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "namespace"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "name"));
	const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"));
	char *line;

	if (d->err)
		return;
	assert(d->n < d->cap);
	line = sl_asprintf("%s/%s %s\n", ns ? ns : "", name ? name : "", rv ? rv : "");
	if (!line) {
		d->err = SL_ENOMEM;
		return;
	}
	d->v[d->n++] = line;
}

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int sl_kube_informer_digest(const struct sl_kube_informer *inf, size_t *ret_count, char ret_hex[static 65])
{
	struct digest_lines d = {.cap = inf->cache.n};
	struct sl_sha256 c;
	uint8_t sum[SL_SHA256_LEN];

	if (d.cap && !(d.v = calloc(d.cap, sizeof(*d.v))))
		return SL_ENOMEM;
	sl_kube_informer_foreach(inf, digest_line, &d);
	if (!d.err) {
		qsort(d.v, d.n, sizeof(*d.v), cmp_lines);
		sl_sha256_init(&c);
		for (size_t i = 0; i < d.n; i++)
			sl_sha256_update(&c, d.v[i], strlen(d.v[i]));
		sl_sha256_final(&c, sum);
		for (size_t i = 0; i < SL_SHA256_LEN; i++)
			snprintf(ret_hex + 2 * i, 3, "%02x", sum[i]);
		*ret_count = d.n;
	}
	for (size_t i = 0; i < d.n; i++)
		free(d.v[i]);
	free(d.v);
	return d.err;
}
