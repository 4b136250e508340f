/* Events, recorded as client-go's recorder does (tools/record, its
 * EventCorrelator): a repeat of an Event already written (same involved
 * object, type, reason and message) within the window raises that Event's
 * count and lastTimestamp with a merge patch instead of creating another.
 * The keys of the last opts.event_cache Events are remembered, least
 * recently used dropped first, and none past the window, so memory stays
 * bounded and falls back when Events stop. Repeats that come
 * while a write of their Event is in flight are folded into one write after
 * it: a burst of the same Event costs two writes, not one per repeat. */
#include "internal.h"
#include "sluice/manifest-json.h"

#include <stdio.h>
#include <string.h>

#define EVENT_CACHE_DEFAULT  4096
#define EVENT_WINDOW_DEFAULT 600 /* s: client-go aggregates over 10 minutes too */
#define MESSAGE_MAX          1024

/* A caller waiting for the write that carries its occurrence. */
struct waiter {
	sl_kube_cb cb;
	void *payload;
	struct waiter *next;
};

struct entry {
	char key[65];                /* hex SHA-256 of the Event's identity */
	struct entry *newer, *older; /* the LRU list */
	struct kube_events *owner;
	char ns[64];      /* where the Event lives */
	char name[254];   /* the Event written, "" until its create answered */
	cJSON *ev;        /* the Event to create, kept while a write is due */
	uint64_t count;   /* what the server holds */
	uint64_t pending; /* occurrences not written yet */
	uint64_t writing; /* the count the write in flight sets */
	char first[32], last[32];
	int64_t last_at; /* wall clock of the latest occurrence */
	bool busy;
	struct waiter *carried, *queued; /* callers of the write in flight, of the next */
};

struct kube_events {
	struct sl_kube *k;
	struct sl_map map; /* key -> entry; the list owns them */
	struct entry *newest, *oldest;
	size_t n, max;
	int64_t window_s;
};

/* ---- the Event object ---------------------------------------------------------- */

/* Adds name: value pairs in order, skipping NULL values; false when out of
 * memory. */
static bool add_strings(cJSON *o, const char *const (*kv)[2], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (kv[i][1] && !cJSON_AddStringToObject(o, kv[i][0], kv[i][1]))
			return false;
	return true;
}

static const char *str_at(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* involvedObject: the object the event is about. */
static bool event_involved(cJSON *ev, const cJSON *involved, const char *ns, const char *name)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(involved, "metadata");
	const char *const kv[][2] = {
	    {"apiVersion", str_at(involved, "apiVersion")},
	    {"kind", str_at(involved, "kind")},
	    {"namespace", ns && *ns ? ns : NULL},
	    {"name", name},
	    {"uid", str_at(meta, "uid")},
	    {"resourceVersion", str_at(meta, "resourceVersion")},
	};
	cJSON *io = cJSON_AddObjectToObject(ev, "involvedObject");

	return io && add_strings(io, kv, SL_ARRAY_SIZE(kv));
}

/* A core/v1 Event created in ev_ns by reporting component "sluice" (count
 * and timestamps are set when it is written), or NULL when out of memory. */
static cJSON *event_new(const cJSON *involved, const char *ev_ns, const char *ns, const char *name,
                        const char *type, const char *reason, const char *message)
{
	char gen[300];
	const char *const head[][2] = {{"apiVersion", "v1"}, {"kind", "Event"}};
	const char *const meta[][2] = {{"generateName", gen}, {"namespace", ev_ns}};
	const char *const what[][2] = {{"type", type}, {"reason", reason}, {"message", message}};
	const char *const tail[][2] = {{"reportingComponent", "sluice"}, {"reportingInstance", "sluice"}};
	cJSON *ev = cJSON_CreateObject(), *m, *src;

	snprintf(gen, sizeof(gen), "%.240s.", name);
	if (!ev || !add_strings(ev, head, SL_ARRAY_SIZE(head)) ||
	    !(m = cJSON_AddObjectToObject(ev, "metadata")) || !add_strings(m, meta, SL_ARRAY_SIZE(meta)) ||
	    !event_involved(ev, involved, ns, name) || !add_strings(ev, what, SL_ARRAY_SIZE(what)) ||
	    !(src = cJSON_AddObjectToObject(ev, "source")) ||
	    !cJSON_AddStringToObject(src, "component", "sluice") ||
	    !add_strings(ev, tail, SL_ARRAY_SIZE(tail))) {
		cJSON_Delete(ev);
		return NULL;
	}
	return ev;
}

/* What makes two Events the same (client-go's getEventKey, less the source
 * host: one process records them): the involved object, type, reason and
 * message. */
static void event_key(const cJSON *involved, const char *ns, const char *name, const char *type,
                      const char *reason, const char *message, char out[static 65])
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(involved, "metadata");
	const char *parts[] = {str_at(involved, "apiVersion"),
	                       str_at(involved, "kind"),
	                       ns,
	                       name,
	                       str_at(meta, "uid"),
	                       type,
	                       reason,
	                       message};
	struct sl_sha256 c;
	uint8_t d[SL_SHA256_LEN];

	sl_sha256_init(&c);
	for (size_t i = 0; i < SL_ARRAY_SIZE(parts); i++)
		/* with its NUL: "ab"+"c" differs from "a"+"bc" */
		sl_sha256_update(&c, parts[i] ? parts[i] : "", parts[i] ? strlen(parts[i]) + 1 : 1);
	sl_sha256_final(&c, d);
	for (size_t i = 0; i < SL_SHA256_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- the cache ---------------------------------------------------------------- */

static void unlink_entry(struct kube_events *es, struct entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		es->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		es->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void push_newest(struct kube_events *es, struct entry *e)
{
	e->older = es->newest;
	e->newer = NULL;
	if (es->newest)
		es->newest->newer = e;
	es->newest = e;
	if (!es->oldest)
		es->oldest = e;
}

static void entry_free(struct kube_events *es, struct entry *e)
{
	unlink_entry(es, e);
	sl_map_del(&es->map, e->key);
	es->k->metrics.events_remembered = --es->n;
	cJSON_Delete(e->ev);
	free(e);
}

/* With room: makes room for one more entry: the least recently used ones
 * with nothing in flight or due go (one in flight stays until its write
 * answers). Those past the window go too, whatever the room (keep, the entry
 * being recorded, stays): a repeat of theirs would be a
 * new Event anyway, and the objects they were about are often gone (their
 * keys never come again). The list is in the order of last_at. */
static void evict(struct kube_events *es, const struct entry *keep, bool room)
{
	int64_t now = sl_wall_s();
	struct entry *e = es->oldest;

	while (e && e != keep && ((room && es->n >= es->max) || now - e->last_at > es->window_s)) {
		struct entry *newer = e->newer;
		if (!e->busy && !e->pending)
			entry_free(es, e);
		e = newer;
	}
}

static struct entry *entry_get(struct kube_events *es, const char *key)
{
	struct entry *e = sl_map_get(&es->map, key);

	if (e) {
		unlink_entry(es, e);
		push_newest(es, e);
		evict(es, e, false);
		return e;
	}
	evict(es, NULL, true);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->owner = es;
	if (sl_map_put(&es->map, e->key, e, NULL) < 0) {
		free(e);
		return NULL;
	}
	push_newest(es, e);
	es->k->metrics.events_remembered = ++es->n;
	return e;
}

/* ---- writing ------------------------------------------------------------------ */

/* Calls every waiter of the list with res; the list is emptied first, so a
 * callback may record Events again. */
static void notify(struct waiter **list, struct sl_kube_result *res)
{
	struct waiter *w = *list;

	*list = NULL;
	while (w) {
		struct waiter *next = w->next;
		w->cb(res, w->payload);
		free(w);
		w = next;
	}
}

static void notify_fail(struct waiter **list, int code)
{
	struct kube_res kr;

	if (!*list)
		return;
	sl_kube__res_fail(&kr, code, "recording an Event: %s", sl_strerror(code));
	notify(list, &kr.res);
}

static void on_written(struct sl_kube_result *res, void *payload);

/* The Event to create: count and timestamps as they are due. */
static int create_body(struct entry *e, uint64_t count)
{
	cJSON *c = cJSON_CreateNumber((double)count);
	cJSON *f = cJSON_CreateString(e->first), *l = cJSON_CreateString(e->last);

	if (!c || !f || !l) {
		cJSON_Delete(c);
		cJSON_Delete(f);
		cJSON_Delete(l);
		return SL_ENOMEM;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(e->ev, "count");
	cJSON_DeleteItemFromObjectCaseSensitive(e->ev, "firstTimestamp");
	cJSON_DeleteItemFromObjectCaseSensitive(e->ev, "lastTimestamp");
	cJSON_AddItemToObject(e->ev, "firstTimestamp", f);
	cJSON_AddItemToObject(e->ev, "lastTimestamp", l);
	cJSON_AddItemToObject(e->ev, "count", c);
	return 0;
}

/* Starts the write of what is pending: a create when the Event is not
 * written yet, else a patch of its count and lastTimestamp. */
static int flush(struct entry *e)
{
	struct sl_kube *k = e->owner->k;
	struct sl_kube_ref ref = {
	    .api_version = "v1", .kind = "Event", .resource = "events", .namespaced = true, .ns = e->ns};
	uint64_t count = e->count + e->pending;
	cJSON *patch = NULL;
	int r;

	if (e->name[0]) {
		char body[128];
		snprintf(body, sizeof(body), "{\"count\":%llu,\"lastTimestamp\":\"%s\"}",
		         (unsigned long long)count, e->last);
		patch = cJSON_Parse(body);
		if (!patch)
			return SL_ENOMEM;
		ref.name = e->name;
	} else if (!e->ev || create_body(e, count) < 0) {
		return SL_ENOMEM;
	}
	e->busy = true;
	e->writing = count;
	e->pending = 0;
	e->carried = TAKE_PTR(e->queued);
	if (patch)
		r = sl_kube_patch(k, &ref, SL_KUBE_PATCH_MERGE, patch, NULL, on_written, e);
	else
		r = sl_kube_create(k, &ref, e->ev, NULL, on_written, e);
	cJSON_Delete(patch);
	if (r < 0) {
		/* nothing went out: back to due */
		e->busy = false;
		e->pending = count - e->count;
		e->queued = TAKE_PTR(e->carried);
	}
	return r;
}

/* After a write: nothing due any more, so the Event body goes (an entry
 * keeps only its key, name, count and times). */
static void settle(struct entry *e)
{
	if (!e->busy && !e->pending) {
		cJSON_Delete(e->ev);
		e->ev = NULL;
	}
}

static void on_written(struct sl_kube_result *res, void *payload)
{
	struct entry *e = payload;
	bool created = !e->name[0];
	int r;

	if (res->code == 0) {
		if (created) {
			const char *n =
			    str_at(cJSON_GetObjectItemCaseSensitive(res->body, "metadata"), "name");
			snprintf(e->name, sizeof(e->name), "%s", n ? n : "");
		}
		e->count = e->writing;
	} else if (res->code == SL_ENOTFOUND && !created && e->ev && !e->owner->k->freeing) {
		/* The Event expired (the API server keeps Events an hour):
		 * it is created again with the count it had, as client-go does;
		 * its callers wait for that write. */
		struct waiter **tail = &e->carried;
		while (*tail)
			tail = &(*tail)->next;
		*tail = TAKE_PTR(e->queued);
		e->queued = TAKE_PTR(e->carried);
		e->name[0] = '\0';
		e->pending += e->writing;
		e->count = 0;
		r = flush(e);
		if (r < 0) {
			notify_fail(&e->queued, r);
			e->pending = 0;
			settle(e);
		}
		return;
	}
	/* Still busy while its callers hear: a repeat they record queues
	 * behind, and no eviction can take the entry. A failed create leaves
	 * nothing to count on: the next write creates the Event again. */
	notify(&e->carried, res);
	e->busy = false;
	if (res->code == SL_ECANCELED || e->owner->k->freeing) {
		notify(&e->queued, res);
		e->pending = 0;
	} else if (e->pending) {
		r = flush(e);
		if (r < 0) {
			notify_fail(&e->queued, r);
			e->pending = 0;
		}
	}
	settle(e);
}

/* ---- the API --------------------------------------------------------------------- */

int sl_kube__events_new(struct sl_kube *k, size_t max, unsigned window_s, struct kube_events **ret)
{
	struct kube_events *es = calloc(1, sizeof(*es));

	if (!es)
		return SL_ENOMEM;
	es->k = k;
	es->max = max ? max : EVENT_CACHE_DEFAULT;
	es->window_s = window_s ? window_s : EVENT_WINDOW_DEFAULT;
	sl_map_init(&es->map);
	*ret = es;
	return 0;
}

void sl_kube__events_free(struct kube_events *es)
{
	if (!es)
		return;
	while (es->newest) {
		struct entry *e = es->newest;
		notify_fail(&e->queued, SL_ECANCELED);
		entry_free(es, e);
	}
	sl_map_free(&es->map, NULL);
	free(es);
}

int sl_kube_event(struct sl_kube *k, const cJSON *involved, const char *type, const char *reason,
                  const char *message, sl_kube_cb cb, void *payload)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(involved, "metadata");
	const char *ns = str_at(meta, "namespace");
	const char *name = str_at(meta, "name");
	const char *ev_ns = ns && *ns ? ns : "default";
	struct kube_events *es = k ? k->events : NULL;
	char msg[MESSAGE_MAX + 1], key[65];
	struct waiter *w;
	struct entry *e;
	int64_t now;
	int r;

	if (!es || !name || !type || !reason || !message || !cb)
		return SL_EINVALID;
	if (k->freeing)
		return SL_ECANCELED;
	if (strlen(ev_ns) >= sizeof(e->ns))
		return SL_EINVALID;
	snprintf(msg, sizeof(msg), "%s", message);
	event_key(involved, ns, name, type, reason, msg, key);
	w = calloc(1, sizeof(*w));
	if (!w)
		return SL_ENOMEM;
	w->cb = cb;
	w->payload = payload;
	e = entry_get(es, key);
	if (!e) {
		free(w);
		return SL_ENOMEM;
	}
	now = sl_wall_s();
	/* Past the window (and nothing in flight): a new Event. */
	if (!e->busy && !e->pending && e->name[0] && now - e->last_at > es->window_s) {
		e->name[0] = '\0';
		e->count = 0;
	}
	if (!e->ev && !(e->ev = event_new(involved, ev_ns, ns, name, type, reason, msg))) {
		free(w);
		settle(e);
		return SL_ENOMEM;
	}
	snprintf(e->ns, sizeof(e->ns), "%s", ev_ns);
	e->last_at = now;
	sl_time_rfc3339(now, e->last);
	if (!e->name[0] && !e->busy && !e->pending)
		snprintf(e->first, sizeof(e->first), "%s", e->last);
	e->pending++;
	w->next = e->queued;
	e->queued = w;
	if (e->busy)
		return 0; /* its write follows the one in flight */
	r = flush(e);
	if (r < 0) {
		/* this occurrence is not recorded: the caller hears it now */
		e->queued = w->next;
		free(w);
		e->pending--;
		settle(e);
	}
	return r;
}
