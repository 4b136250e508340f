/* The sync engine: runs a plan against the API server on the event loop.
 * Per stage: resolve kinds (discovery), list the live objects sluice manages
 * (one paged list per kind and namespace; each live object is reduced to its
 * state digest as its page arrives), skip what already agrees, apply the
 * rest with bounded concurrency; CRDs are waited on until Established. Then
 * prune, write inventory and status, record Events, update counters. */
#include "sluice/sync.h"
#include "sluice/base-map.h"
#include "sluice/kube.h"
#include "sluice/loop.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_CONCURRENCY 64
/* where the adaptive limit starts and how low it goes: a few in flight
 * keep even a saturated API server busy */
#define INITIAL_CONCURRENCY    8
#define MIN_CONCURRENCY        4
#define DEFAULT_CRD_TIMEOUT_MS 60000
#define CRD_POLL_MS            250
#define LIST_PAGE              500

enum item_outcome { ITEM_PENDING, ITEM_UNCHANGED, ITEM_APPLIED, ITEM_FAILED };

/* Kept for each of 10,000s of objects: small on purpose. The live object
 * itself is not kept (diff mode aside), only what deciding needs. */
struct item_state {
	struct sl_sync_item *it;
	unsigned kind; /* index into run.kinds when resolved */
	bool resolved;
	bool live_seen;    /* its list showed the live object */
	bool state_known;  /* ... and state holds the live state digest */
	bool live_unknown; /* the list failed: when in doubt, apply */
	bool waiting;      /* a CRD not Established yet */
	enum item_outcome outcome;
	char state[SL_SYNC_DIGEST_HEX + 1];
	cJSON *live; /* diff mode only: the live object (owned); NULL: absent */
	char *diff;  /* diff mode: text for this object */
};

/* An item a list answers for, found by name as the pages arrive. */
struct list_item {
	const char *name;
	size_t idx; /* into run.st */
};

/* One list of live objects (a kind in a namespace) and the items of the
 * plan it answers for. */
struct live_list {
	char *api_version, *kind, *ns;
	bool failed;
	char *error;
	struct list_item *items; /* sorted by name */
	size_t n_items, cap_items;
};

enum phase {
	PH_INVENTORY,
	PH_RESOLVE,
	PH_LIST,
	PH_ANNOUNCE,
	PH_APPLY,
	PH_CRD_WAIT,
	PH_PRUNE,
	PH_WRITE,
	PH_EVENT,
	PH_DONE,
};

struct run;

/* A request of the run in flight; holds what its callback needs. */
struct req {
	struct run *run;
	size_t idx; /* item index, list index or prune index */
	char *a, *b;
	uint64_t sent_us; /* applies: when sent, for the latency */
};

struct run {
	struct sl_sync *s;
	struct sl_sync_plan *plan;
	char *source_error;
	sl_sync_done_fn done;
	void *payload;
	enum phase phase;
	unsigned stage;
	unsigned pending; /* requests in flight in this phase (+1 while issuing) */
	size_t next;      /* next item of the stage to apply */
	struct item_state *st;
	struct sl_sync_limit limit;     /* applies in flight */
	struct sl_kube_resource *kinds; /* resolved kinds of the run */
	size_t n_kinds, cap_kinds;
	struct live_list *lists;
	size_t n_lists, cap_lists;
	struct sl_map list_index; /* list_key -> index + 1 into lists */
	/* prev: every object this source may have created, i.e. the stored
	 * inventory (stored: objects that were applied) plus the stored
	 * pending list and what this run announced (creates that were begun,
	 * maybe never done). cur: what this run claims; confirmed: what it
	 * applied or found unchanged. */
	struct sl_sync_inventory *prev, *cur, *stored, *confirmed;
	bool announced;      /* this run wrote a pending list */
	char *stored_status; /* data.status as read, written back as it was by an announce */
	cJSON *inv_cm;       /* the inventory ConfigMap as last read or written, data left out */
	char *prev_outcome;  /* "outcome" of the stored status */
	/* The stored inventory was read (or there is none yet). Only then may
	 * this run write one: an inventory that could not be read or parsed is
	 * the only record of what a later prune may remove. */
	bool prev_known;
	const struct sl_sync_inv_entry **prune;
	size_t n_prune, prune_next, prune_stage_end;
	enum sl_sync_prune_block prune_block;
	bool prune_ran;
	struct sl_buf pruned_names; /* for the Event */
	size_t applied, unchanged, failed, pruned, prune_skipped, writes;
	char *fatal;
	int fatal_code;
	char *event_msg; /* the SyncFailed message of this run */
	uint64_t t0;
	int64_t start_s;
	uint64_t crd_deadline;
	uint64_t discovery_deadline; /* kinds of CRDs applied in this run may take a moment to be served */
	bool resolve_retry;
	struct sl_loop_timer *timer;
	unsigned reqs; /* requests whose callback has not run */
	bool canceled; /* the engine was freed: wind down as callbacks arrive */
};

struct sl_sync {
	struct sl_loop *loop;
	struct sl_kube *kube;
	char *source_id, *inventory_ns, *default_ns;
	char inv_name[256];
	struct sl_sync_opts opts;
	struct sl_sync_metrics metrics;
	struct run *run;
	/* The SyncFailed message of a run whose Event could not be recorded
	 * (no inventory to hang it on, or the API server did not take it),
	 * with the time of that run: the next run that can records it. */
	char *unsent;
};

static void advance(struct run *r);
static void finish(struct run *r);

/* ---- helpers ----------------------------------------------------------------- */

static bool diff_mode(const struct sl_sync *s)
{
	return s->opts.diff_out != NULL;
}
static bool dry(const struct sl_sync *s)
{
	return s->opts.dry_run || diff_mode(s);
}

/* r->fatal when even its message could not be allocated; never freed. */
static const char fatal_nomem[] = "out of memory";

static void set_fatal(struct run *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_fatal(struct run *r, int code, const char *fmt, ...)
{
	va_list ap;
	char msg[SL_ERRMSG_MAX];
	if (r->fatal)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the failure must stick even when its message cannot be kept */
	r->fatal = sl_strdup(msg);
	r->fatal_code = code < 0 ? code : SL_EINTERNAL;
	if (!r->fatal) {
		r->fatal = (char *)fatal_nomem;
		r->fatal_code = SL_ENOMEM;
	}
}

static void run_free(struct run *r);

static struct req *req_new(struct run *r, size_t idx)
{
	struct req *q = calloc(1, sizeof(*q));
	if (q) {
		q->run = r;
		q->idx = idx;
		r->reqs++;
	}
	return q;
}

/* For a request that was never handed to the client. */
static void req_free(struct req *q)
{
	if (!q)
		return;
	q->run->reqs--;
	free(q->a);
	free(q->b);
	free(q);
}

/* Start of every callback: releases the request and returns its run, or
 * NULL when the run was canceled (freeing it with its last request). */
static struct run *req_done(struct req *q, size_t *idx)
{
	struct run *r = q->run;
	if (idx)
		*idx = q->idx;
	req_free(q);
	if (r->canceled) {
		if (r->reqs == 0)
			run_free(r);
		return NULL;
	}
	return r;
}

/* Called when a request of the current phase completes (and once after
 * issuing, for the +1 guard): moves on when nothing is left. */
static void settle(struct run *r)
{
	if (--r->pending == 0)
		advance(r);
}

static void progress(const struct run *r)
{
	const struct sl_sync_opts *o = &r->s->opts;

	if (o->progress) {
		struct sl_sync_progress p = {
		    .planned = r->plan ? r->plan->n_items : 0,
		    .applied = r->applied,
		    .unchanged = r->unchanged,
		    .failed = r->failed,
		    .pruned = r->pruned,
		};
		o->progress(&p, o->progress_payload);
	}
}

static void item_fail(struct run *r, struct item_state *is, int code, const char *reason)
{
	is->outcome = ITEM_FAILED;
	r->failed++;
	progress(r);
	if (sl_sync_plan_add_item_problem(r->plan, is->it, code, reason) < 0)
		set_fatal(r, SL_ENOMEM, "out of memory");
}

static const char *result_reason(const struct sl_kube_result *res)
{
	if (res->message && *res->message)
		return res->message;
	return res->err.msg[0] ? res->err.msg : sl_strerror(res->code);
}

static size_t stage_begin(const struct run *r)
{
	return r->plan->stage_start[r->stage];
}
static size_t stage_end(const struct run *r)
{
	return r->plan->stage_start[r->stage + 1];
}

/* ---- inventory read ---------------------------------------------------------------- */

/* What the run keeps of the inventory ConfigMap: the identity that Events
 * name, not the inventory text and managedFields it was read with. */
static cJSON *cm_identity(cJSON *cm)
{
	cJSON_DeleteItemFromObjectCaseSensitive(cm, "data");
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(cm, "metadata"),
	                                        "managedFields");
	return cm;
}

/* The stored records into the run: stored is the inventory (taken), prev
 * the inventory plus the pending list of data.pending, whose objects may
 * exist and so are pruned when they left the source; and data.status as
 * it is, for an announce to write back. */
static int read_records(struct run *r, const cJSON *cm, struct sl_sync_inventory *inv, struct sl_error *err)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(cm, "data");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(data, "pending");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(data, "status");
	struct sl_sync_inventory *pending = NULL;
	int rc = 0;

	sl_sync_inventory_free(r->stored);
	r->stored = inv;
	if (cJSON_IsString(text)) {
		rc = sl_sync_inventory_parse(text->valuestring, strlen(text->valuestring), &pending, err);
		if (rc < 0)
			sl_error_prefix(err, "pending list");
	}
	for (size_t i = 0; rc == 0 && i < sl_sync_inventory_count(inv); i++) {
		const struct sl_sync_inv_entry *e = sl_sync_inventory_at(inv, i);
		rc = sl_sync_inventory_put(r->prev, e->group, e->version, e->kind, e->ns, e->name, e->digest);
	}
	for (size_t i = 0; rc == 0 && i < sl_sync_inventory_count(pending); i++) {
		const struct sl_sync_inv_entry *e = sl_sync_inventory_at(pending, i);
		if (!sl_sync_inventory_find(r->prev, e->group, e->kind, e->ns, e->name))
			rc = sl_sync_inventory_put(r->prev, e->group, e->version, e->kind, e->ns, e->name,
			                           NULL);
	}
	if (rc == 0 && cJSON_IsString(status) && !(r->stored_status = sl_strdup(status->valuestring)))
		rc = SL_ENOMEM;
	if (rc == SL_ENOMEM)
		sl_error_set(err, rc, "out of memory");
	sl_sync_inventory_free(pending);
	return rc;
}

static void on_inventory(struct sl_kube_result *res, void *payload)
{
	struct run *r = req_done(payload, NULL);
	struct sl_error err = {0};

	if (!r)
		return;
	if (res->code == SL_ENOTFOUND) {
		/* first sync of this source */
		r->prev_known = true;
	} else if (res->code < 0) {
		set_fatal(r, res->code, "reading inventory %s/%s: %s", r->s->inventory_ns, r->s->inv_name,
		          result_reason(res));
	} else {
		struct sl_sync_inventory *inv = NULL;
		char *outcome = NULL;
		int rc = sl_sync_inventory_read(res->body, &inv, &outcome, &err);
		if (rc == 0)
			rc = read_records(r, res->body, inv, &err);
		if (rc < 0) {
			/* a damaged inventory must turn neither into "prune
			 * nothing" nor into "prune everything" silently */
			set_fatal(r, rc, "inventory %s/%s: %s", r->s->inventory_ns, r->s->inv_name, err.msg);
			free(outcome);
		} else {
			r->prev_known = true;
			r->prev_outcome = outcome;
		}
		r->inv_cm = cm_identity(res->body);
		res->body = NULL;
	}
	settle(r);
}

static void prefetch_lists(struct run *r);

static void start_inventory(struct run *r)
{
	struct sl_kube_ref ref = {.api_version = "v1",
	                          .resource = "configmaps",
	                          .namespaced = true,
	                          .ns = r->s->inventory_ns,
	                          .name = r->s->inv_name};
	struct req *q = req_new(r, 0);

	r->phase = PH_INVENTORY;
	r->pending = 1;
	if (!q) {
		set_fatal(r, SL_ENOMEM, "out of memory");
	} else {
		r->pending++;
		int rc = sl_kube_get(r->s->kube, &ref, NULL, on_inventory, q);
		if (rc < 0) {
			r->pending--;
			req_free(q);
			set_fatal(r, rc, "reading inventory: %s", sl_strerror(rc));
		}
	}
	if (r->plan && !r->fatal)
		prefetch_lists(r);
	settle(r);
}

/* ---- resolve ------------------------------------------------------------------------ */

static bool same_kind(const struct sl_sync_item *a, const char *av, const char *kind)
{
	return strcmp(a->api_version, av) == 0 && strcmp(a->kind, kind) == 0;
}

static const struct sl_kube_resource *item_res(const struct run *r, const struct item_state *is)
{
	assert(is->resolved && is->kind < r->n_kinds);
	return &r->kinds[is->kind];
}

static void apply_resolution(struct run *r, const char *av, const char *kind, int code,
                             const struct sl_kube_resource *res, const char *why)
{
	size_t k = r->n_kinds;

	if (code >= 0 && res) {
		if (SL_GROW(r->kinds, r->cap_kinds, r->n_kinds + 1, 8) < 0) {
			set_fatal(r, SL_ENOMEM, "out of memory");
			return;
		}
		r->kinds[r->n_kinds++] = *res;
	}
	for (size_t i = stage_begin(r); i < stage_end(r); i++) {
		struct item_state *is = &r->st[i];
		if (is->resolved || is->outcome != ITEM_PENDING || !same_kind(is->it, av, kind))
			continue;
		if (code < 0 || !res) {
			item_fail(r, is, code < 0 ? code : SL_EINTERNAL, why ? why : "cannot resolve kind");
			continue;
		}
		is->kind = (unsigned)k;
		is->resolved = true;
		if (res->namespaced && !is->it->ns) {
			if (sl_sync_item_set_namespace(is->it, r->s->default_ns) < 0)
				item_fail(r, is, SL_ENOMEM, "out of memory");
		} else if (!res->namespaced && is->it->ns) {
			/* as kubectl does: a namespace on a cluster-scoped
			 * object is ignored */
			cJSON *meta = cJSON_GetObjectItemCaseSensitive(is->it->obj, "metadata");
			is->it->ns = NULL;
			cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
			if (sl_sync_digest(is->it->obj, is->it->digest) < 0)
				item_fail(r, is, SL_ENOMEM, "out of memory");
		}
	}
}

/* True when a CRD of this plan (not failed) defines the kind: the API server
 * may list it in discovery a little after the CRD is Established. */
static bool crd_defines(const struct run *r, const char *av, const char *kind)
{
	const char *slash = strchr(av, '/');
	size_t glen = slash ? (size_t)(slash - av) : 0;
	for (size_t i = r->plan->stage_start[SL_SYNC_STAGE_CRD];
	     i < r->plan->stage_start[SL_SYNC_STAGE_CRD + 1]; i++) {
		const cJSON *spec = cJSON_GetObjectItemCaseSensitive(r->st[i].it->obj, "spec");
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(spec, "group");
		const cJSON *k =
		    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "names"), "kind");
		if (r->st[i].outcome != ITEM_FAILED && cJSON_IsString(g) && cJSON_IsString(k) &&
		    strlen(g->valuestring) == glen && strncmp(g->valuestring, av, glen) == 0 &&
		    strcmp(k->valuestring, kind) == 0)
			return true;
	}
	return false;
}

static void on_discover(int code, const struct sl_kube_resource *res, const struct sl_error *err,
                        void *payload)
{
	struct req *q = payload;
	char why[SL_ERRMSG_MAX + 128];
	char *av = TAKE_PTR(q->a), *kind = TAKE_PTR(q->b);
	struct run *r = req_done(q, NULL);

	if (r && code == SL_ENOTFOUND && !dry(r->s) && sl_now_ms() < r->discovery_deadline &&
	    crd_defines(r, av, kind)) {
		/* asked again after a pause (see advance) */
		r->resolve_retry = true;
	} else if (r) {
		if (code == SL_ENOTFOUND)
			snprintf(why, sizeof(why), "unknown kind %s %s: the server does not serve it", av,
			         kind);
		else if (code < 0)
			snprintf(why, sizeof(why), "resolving kind %s %s: %s", av, kind,
			         err && err->msg[0] ? err->msg : sl_strerror(code));
		apply_resolution(r, av, kind, code, res, why);
	}
	free(av);
	free(kind);
	if (r)
		settle(r);
}

static void start_resolve(struct run *r)
{
	struct sl_sync *s = r->s;
	r->phase = PH_RESOLVE;
	r->pending = 1;
	for (size_t i = stage_begin(r); i < stage_end(r) && !r->fatal; i++) {
		struct item_state *is = &r->st[i];
		struct sl_kube_resource res;
		bool seen = false;
		if (is->resolved || is->outcome != ITEM_PENDING)
			continue;
		for (size_t j = stage_begin(r); j < i && !seen; j++)
			seen = same_kind(r->st[j].it, is->it->api_version, is->it->kind);
		if (seen)
			continue;
		if (sl_kube_discover_cached(s->kube, is->it->api_version, is->it->kind, &res) == 0) {
			apply_resolution(r, is->it->api_version, is->it->kind, 0, &res, NULL);
			continue;
		}
		struct req *q = req_new(r, i);
		if (!q || !(q->a = sl_strdup(is->it->api_version)) || !(q->b = sl_strdup(is->it->kind))) {
			if (q)
				req_free(q);
			set_fatal(r, SL_ENOMEM, "out of memory");
			break;
		}
		r->pending++;
		int rc = sl_kube_discover(s->kube, q->a, q->b, on_discover, q);
		if (rc < 0) {
			char why[256];
			snprintf(why, sizeof(why), "resolving kind: %s", sl_strerror(rc));
			apply_resolution(r, is->it->api_version, is->it->kind, rc, NULL, why);
			req_free(q);
			r->pending--;
		}
	}
	settle(r);
}

/* ---- list live objects -------------------------------------------------------------- */

static const char *meta_name(const cJSON *o)
{
	const cJSON *n =
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "name");
	return cJSON_IsString(n) ? n->valuestring : "";
}

static int cmp_list_item(const void *a, const void *b)
{
	return strcmp(((const struct list_item *)a)->name, ((const struct list_item *)b)->name);
}

/* Length-prefixed, so no two (apiVersion, kind, namespace) share a key.
 * False when it does not fit: such a list is only found by a scan. */
#define LIST_KEY_MAX 640
static bool list_key(const char *av, const char *kind, const char *ns, char out[static LIST_KEY_MAX])
{
	int n = snprintf(out, LIST_KEY_MAX, "%zu:%s%zu:%s%s", strlen(av), av, strlen(kind), kind, ns);
	return n > 0 && n < LIST_KEY_MAX;
}

/* Called per item (twice): indexed, as 10,000 objects in 1,000 namespaces
 * make 1,000 lists. */
static struct live_list *find_list(struct run *r, const char *av, const char *kind, const char *ns)
{
	char key[LIST_KEY_MAX];

	ns = ns ? ns : "";
	if (list_key(av, kind, ns, key)) {
		uintptr_t i = (uintptr_t)sl_map_get(&r->list_index, key);
		return i ? &r->lists[i - 1] : NULL;
	}
	for (size_t i = 0; i < r->n_lists; i++) {
		struct live_list *l = &r->lists[i];
		if (strcmp(l->api_version, av) == 0 && strcmp(l->kind, kind) == 0 && strcmp(l->ns, ns) == 0)
			return l;
	}
	return NULL;
}

/* Items of a list carry no apiVersion and kind: give them the list's, so
 * they compare like the objects an apply returns. managedFields go: the
 * comparison does not read them, and diff mode keeps the object. */
static int trim_live(cJSON *obj, const struct live_list *l)
{
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
	if (!cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"))
		SL_CHECK_ALLOC(cJSON_AddStringToObject(obj, "apiVersion", l->api_version));
	if (!cJSON_GetObjectItemCaseSensitive(obj, "kind"))
		SL_CHECK_ALLOC(cJSON_AddStringToObject(obj, "kind", l->kind));
	return 0;
}

static struct item_state *list_lookup(struct run *r, const struct live_list *l, const char *name)
{
	size_t lo = 0, hi = l->n_items;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(l->items[mid].name, name);
		if (c == 0)
			return &r->st[l->items[mid].idx];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void record_failed(struct run *r, const struct sl_sync_item *it);

/* What deciding needs of one live object, taken while its page is at hand:
 * the completed latch and the state digest (diff mode also keeps the
 * object). Live objects of no item here (another source's) are skipped. */
static void take_live(struct run *r, struct live_list *l, cJSON *items, cJSON *o)
{
	struct item_state *is = list_lookup(r, l, meta_name(o));
	struct sl_sync_item *it;

	if (!is || is->outcome != ITEM_PENDING)
		return;
	it = is->it;
	if (trim_live(o, l) < 0) {
		set_fatal(r, SL_ENOMEM, "out of memory");
		return;
	}
	if (sl_sync_latch_completed(it->obj, o) && sl_sync_digest(it->obj, it->digest) < 0) {
		item_fail(r, is, SL_ENOMEM, "out of memory");
		record_failed(r, it);
		return;
	}
	is->live_seen = true;
	/* a state that cannot be computed is unknown: applied */
	is->state_known = sl_sync_state_digest_from(it->digest, it->obj, o, is->state) == 0;
	if (diff_mode(r->s)) {
		cJSON_Delete(is->live);
		is->live = cJSON_DetachItemViaPointer(items, o);
	}
}

/* Forgets what a list showed: it starts again (an expired continue token). */
static void forget_live(struct run *r, struct live_list *l)
{
	for (size_t i = 0; i < l->n_items; i++) {
		struct item_state *is = &r->st[l->items[i].idx];
		is->live_seen = is->state_known = false;
		cJSON_Delete(is->live);
		is->live = NULL;
	}
}

static void on_list_page(cJSON *items, void *payload)
{
	struct req *q = payload;
	struct run *r = q->run;
	struct live_list *l;

	if (r->canceled)
		return;
	l = &r->lists[q->idx];
	if (!items) {
		forget_live(r, l);
		return;
	}
	for (cJSON *o = items->child, *next; o; o = next) {
		next = o->next; /* diff mode detaches o */
		take_live(r, l, items, o);
	}
}

static void on_list(struct sl_kube_result *res, void *payload)
{
	size_t idx;
	struct run *r = req_done(payload, &idx);

	if (!r)
		return;
	struct live_list *l = &r->lists[idx];
	if (res->code < 0) {
		l->failed = true;
		if (!(l->error = sl_strdup(result_reason(res))))
			set_fatal(r, SL_ENOMEM, "out of memory");
	}
	settle(r);
}

/* The list of a kind and namespace (NULL or "": cluster-scoped), created
 * (not yet sent) when new; NULL on allocation failure. */
static struct live_list *list_for(struct run *r, const char *av, const char *kind, const char *ns)
{
	struct live_list *l = find_list(r, av, kind, ns);
	char key[LIST_KEY_MAX];

	if (l)
		return l;
	if (SL_GROW(r->lists, r->cap_lists, r->n_lists + 1, 16) < 0)
		return NULL;
	l = &r->lists[r->n_lists];
	memset(l, 0, sizeof(*l));
	r->n_lists++;
	l->api_version = sl_strdup(av);
	l->kind = sl_strdup(kind);
	l->ns = sl_strdup(ns ? ns : "");
	if (!l->api_version || !l->kind || !l->ns)
		return NULL;
	if (list_key(l->api_version, l->kind, l->ns, key) &&
	    sl_map_put(&r->list_index, key, (void *)(uintptr_t)r->n_lists, NULL) < 0)
		return NULL;
	return l;
}

/* Registers item i in the list of its kind and namespace; the caller sorts
 * and sends the lists it created. 0 or SL_ENOMEM. */
static int list_add_item(struct run *r, size_t i, const char *ns)
{
	struct sl_sync_item *it = r->st[i].it;
	struct live_list *l = list_for(r, it->api_version, it->kind, ns);

	if (!l || SL_GROW(l->items, l->cap_items, l->n_items + 1, 8) < 0)
		return SL_ENOMEM;
	l->items[l->n_items++] = (struct list_item){.name = it->name, .idx = i};
	return 0;
}

static void send_list(struct run *r, size_t li, const struct sl_kube_resource *res)
{
	struct live_list *l = &r->lists[li];
	struct req *q = req_new(r, li);
	struct sl_kube_ref ref = {
	    .api_version = l->api_version,
	    .resource = res->plural,
	    .namespaced = res->namespaced,
	    .ns = *l->ns ? l->ns : NULL,
	};
	/* Paged and consistent: a page at a time keeps memory flat however
	 * many objects there are, and current API servers answer every page
	 * from their watch cache (consistent lists from the cache, and its
	 * snapshots for the continue tokens), not from etcd. Consistent also
	 * means a BackfillRequest's "completed" is never read stale (and so
	 * never re-applied false). */
	struct sl_kube_call_opts o = {
	    .label_selector = SL_ARCANE_LABEL_MANAGED_BY "=sluice",
	    .limit = r->s->opts.list_page ? r->s->opts.list_page : LIST_PAGE,
	};

	if (!q) {
		set_fatal(r, SL_ENOMEM, "out of memory");
		return;
	}
	r->pending++;
	int rc = sl_kube_list_pages(r->s->kube, &ref, &o, on_list_page, on_list, q);
	if (rc < 0) {
		l->failed = true;
		if (!(l->error = sl_strdup(sl_strerror(rc))))
			set_fatal(r, SL_ENOMEM, "out of memory");
		req_free(q);
		r->pending--;
	}
}

static void start_list(struct run *r)
{
	size_t first_new = r->n_lists;

	r->phase = PH_LIST;
	r->pending = 1;
	/* every list learns its items before any is sent: pages arrive only
	 * later, on the loop, but sorted names must be ready by then */
	for (size_t i = stage_begin(r); i < stage_end(r) && !r->fatal; i++) {
		struct item_state *is = &r->st[i];
		if (!is->resolved || is->outcome != ITEM_PENDING)
			continue;
		struct live_list *l = find_list(r, is->it->api_version, is->it->kind, is->it->ns);
		if (l && (size_t)(l - r->lists) < first_new) {
			/* listed with the inventory read. An item that list
			 * does not hold (its kind's scope changed since
			 * discovery was cached) knows nothing of its live
			 * object: it is applied. */
			if (list_lookup(r, l, is->it->name) != is)
				is->live_seen = is->state_known = false;
			continue;
		}
		/* what an earlier list showed of it under another namespace
		 * does not count */
		is->live_seen = is->state_known = false;
		if (list_add_item(r, i, is->it->ns) < 0) {
			set_fatal(r, SL_ENOMEM, "out of memory");
			break;
		}
	}
	for (size_t li = first_new; li < r->n_lists && !r->fatal; li++) {
		struct live_list *l = &r->lists[li];
		qsort(l->items, l->n_items, sizeof(*l->items), cmp_list_item);
		send_list(r, li, item_res(r, &r->st[l->items[0].idx]));
	}
	settle(r);
}

/* While the inventory is read: the lists of every stage whose kinds the
 * discovery cache knows, all at once and paged like any other, so that a
 * stage later waits only for its applies, not for a list round trip of its
 * own. Not BackfillRequests: their list is taken just before their applies
 * (their "completed" is read as late as possible). A namespaced item
 * without a namespace gets the default one now, as its resolution would;
 * the items of a cluster-scoped kind that some item gives a namespace are
 * listed in their own stage. A list a stage needs and that is not here
 * is sent in its stage. */
static void prefetch_lists(struct run *r)
{
	size_t end = r->plan->stage_start[SL_SYNC_STAGE_BACKFILL];
	size_t first_new = r->n_lists;
	struct sl_kube_resource res;
	/* cluster-scoped kinds some item gives a namespace (few: a scan) */
	const struct sl_sync_item **skip = NULL;
	size_t n_skip = 0, cap_skip = 0;

	for (size_t i = 0; i < end && !r->fatal; i++) {
		const struct sl_sync_item *it = r->st[i].it;
		bool known = false;

		if (!it->ns || sl_kube_discover_cached(r->s->kube, it->api_version, it->kind, &res) < 0 ||
		    res.namespaced)
			continue;
		for (size_t k = 0; k < n_skip && !known; k++)
			known = same_kind(skip[k], it->api_version, it->kind);
		if (known)
			continue;
		if (SL_GROW(skip, cap_skip, n_skip + 1, 4) < 0)
			set_fatal(r, SL_ENOMEM, "out of memory");
		else
			skip[n_skip++] = it;
	}
	for (size_t i = 0; i < end && !r->fatal; i++) {
		struct sl_sync_item *it = r->st[i].it;
		bool skipped = false;

		if (r->st[i].outcome != ITEM_PENDING ||
		    sl_kube_discover_cached(r->s->kube, it->api_version, it->kind, &res) < 0)
			continue;
		for (size_t k = 0; k < n_skip && !skipped; k++)
			skipped = same_kind(skip[k], it->api_version, it->kind);
		if (skipped)
			continue;
		if (res.namespaced && !it->ns && sl_sync_item_set_namespace(it, r->s->default_ns) < 0) {
			set_fatal(r, SL_ENOMEM, "out of memory");
			break;
		}
		if (list_add_item(r, i, it->ns) < 0)
			set_fatal(r, SL_ENOMEM, "out of memory");
	}
	for (size_t li = first_new; li < r->n_lists && !r->fatal; li++) {
		struct live_list *l = &r->lists[li];
		qsort(l->items, l->n_items, sizeof(*l->items), cmp_list_item);
		/* resolution takes the same cache entry, unless it went */
		if (sl_kube_discover_cached(r->s->kube, l->api_version, l->kind, &res) < 0) {
			l->failed = true;
			if (!(l->error = sl_strdup("kind no longer in the discovery cache")))
				set_fatal(r, SL_ENOMEM, "out of memory");
			continue;
		}
		send_list(r, li, &res);
	}
	free(skip);
}

/* ---- decide and apply ---------------------------------------------------------------- */

static void record(struct run *r, const struct sl_sync_item *it, const char *digest)
{
	if (sl_sync_inventory_put(r->cur, it->group, it->version, it->kind, it->ns, it->name, digest) < 0)
		set_fatal(r, SL_ENOMEM, "out of memory");
}

/* The object is as the source wants it: the inventory may name it. */
static void record_applied(struct run *r, const struct sl_sync_item *it, const char *digest)
{
	record(r, it, digest);
	if (sl_sync_inventory_put(r->confirmed, it->group, it->version, it->kind, it->ns, it->name, NULL) < 0)
		set_fatal(r, SL_ENOMEM, "out of memory");
}

/* A failed object that may be ours stays claimed, without a digest
 * (applied again next time): in the inventory when it was there, else
 * pending (a create that timed out may have happened). A new one that
 * failed before it was announced is not claimed. */
static void record_failed(struct run *r, const struct sl_sync_item *it)
{
	if (sl_sync_inventory_find(r->prev, it->group, it->kind, it->ns, it->name))
		record(r, it, NULL);
}

static void issue_applies(struct run *r);

static void on_apply(struct sl_kube_result *res, void *payload)
{
	size_t idx;
	uint64_t sent_us = ((const struct req *)payload)->sent_us;
	struct run *r = req_done(payload, &idx);

	if (!r)
		return;
	if (res->code == 0)
		sl_sync_limit_sample(&r->limit, sl_now_us() - sent_us);
	struct sl_sync *s = r->s;
	struct item_state *is = &r->st[idx];
	if (res->code < 0) {
		char reason[SL_ERRMSG_MAX + 300];
		bool field = res->field && *res->field && !strstr(result_reason(res), res->field);
		/* No answer: the objects left would fail the same way, one by
		 * one. The run stops and the next one applies them. */
		if (sl_kube_unreachable(res))
			set_fatal(r, res->code, "the API server could not be reached: %s",
			          result_reason(res));
		snprintf(reason, sizeof(reason), "%s%s%s", result_reason(res), field ? " (field " : "",
		         field ? res->field : "");
		if (field)
			strncat(reason, ")", sizeof(reason) - strlen(reason) - 1);
		item_fail(r, is, res->code, reason);
		record_failed(r, is->it);
	} else {
		is->outcome = ITEM_APPLIED;
		if (diff_mode(s)) {
			struct sl_buf b;
			char label[1024];
			snprintf(label, sizeof(label), "%s %s %s%s%s", is->it->api_version, is->it->kind,
			         is->it->ns ? is->it->ns : "", is->it->ns ? "/" : "", is->it->name);
			sl_buf_init(&b, 16u << 20);
			int rc = sl_sync_diff_object(is->it->obj, is->live_unknown ? NULL : is->live,
			                             res->body, label, &b);
			if (rc == 1)
				is->diff = sl_buf_steal(&b);
			else if (rc == 0)
				is->outcome = ITEM_UNCHANGED;
			sl_buf_free(&b);
		}
		if (is->outcome == ITEM_APPLIED) {
			r->applied++;
			r->writes++;
		} else {
			r->unchanged++;
		}
		/* a state that cannot be computed is recorded unknown: applied
		 * again next time */
		bool known =
		    sl_sync_state_digest_from(is->it->digest, is->it->obj, res->body, is->state) == 0;
		if (dry(s))
			record(r, is->it, known ? is->state : NULL);
		else
			record_applied(r, is->it, known ? is->state : NULL);
		progress(r);
	}
	r->pending--;
	issue_applies(r);
}

/* Decides one item: false when it is skipped (unchanged, or failed here). */
static bool needs_apply(struct run *r, struct item_state *is)
{
	struct sl_sync_item *it = is->it;
	struct live_list *l = find_list(r, it->api_version, it->kind, it->ns);
	bool unknown = !l || l->failed;

	is->live_unknown = unknown;
	if (unknown && it->stage == SL_SYNC_STAGE_BACKFILL) {
		/* without the live object the completed latch cannot hold:
		 * do not risk setting completed back to false */
		char reason[SL_ERRMSG_MAX + 64];
		snprintf(reason, sizeof(reason), "cannot read live BackfillRequests: %s",
		         l && l->error ? l->error : "list failed");
		item_fail(r, is, SL_EUNAVAILABLE, reason);
		record_failed(r, it);
		return false;
	}
	/* absent, or when in doubt: apply */
	if (unknown || !is->live_seen || !is->state_known)
		return true;
	const struct sl_sync_inv_entry *e =
	    sl_sync_inventory_find(r->prev, it->group, it->kind, it->ns, it->name);
	if (e && strcmp(e->digest, is->state) == 0) {
		is->outcome = ITEM_UNCHANGED;
		r->unchanged++;
		progress(r);
		record_applied(r, it, is->state);
		return false;
	}
	return true;
}

static void issue_applies(struct run *r)
{
	struct sl_sync *s = r->s;

	while (!r->fatal && r->pending < r->limit.limit && r->next < stage_end(r)) {
		size_t idx = r->next++;
		struct item_state *is = &r->st[idx];
		if (is->outcome != ITEM_PENDING || !is->resolved)
			continue;
		if (!needs_apply(r, is))
			continue;
		struct req *q = req_new(r, idx);
		if (!q) {
			set_fatal(r, SL_ENOMEM, "out of memory");
			break;
		}
		const struct sl_kube_resource *res = item_res(r, is);
		struct sl_kube_ref ref = {
		    .api_version = is->it->api_version,
		    .resource = res->plural,
		    .namespaced = res->namespaced,
		    .ns = is->it->ns,
		    .name = is->it->name,
		};
		struct sl_kube_call_opts o = {
		    .field_manager = SL_ARCANE_FIELD_MANAGER_SYNC,
		    .force = true,
		    .dry_run = dry(s),
		};
		r->pending++;
		q->sent_us = sl_now_us();
		int rc = sl_kube_apply(s->kube, &ref, is->it->obj, &o, on_apply, q);
		if (rc < 0) {
			req_free(q);
			r->pending--;
			item_fail(r, is, rc, sl_strerror(rc));
			record_failed(r, is->it);
		}
	}
	if (r->pending == 0 && (r->next >= stage_end(r) || r->fatal))
		advance(r);
}

static void send_inventory(struct run *r, const char *inv, const char *st, const char *pending);

/* The pending list as it stands: every object that may exist but is not
 * in the stored inventory. */
static int format_pending(struct run *r, struct sl_buf *out)
{
	struct sl_sync_inventory *inv = NULL, *pending = NULL;
	int rc = sl_sync_inventory_split(r->prev, r->stored, NULL, &inv, &pending);

	if (rc == 0)
		rc = sl_sync_inventory_format(pending, out);
	sl_sync_inventory_free(inv);
	sl_sync_inventory_free(pending);
	return rc;
}

/* Objects of this stage that no record names are announced in the pending
 * list before any of them is applied, next to the inventory and status as
 * stored (untouched): a process killed after the apply and before the
 * inventory write leaves no object that a later prune cannot find. True
 * when the write was sent. */
static bool announce(struct run *r)
{
	struct sl_buf inv, pending;
	bool added = false;

	if (dry(r->s))
		return false;
	for (size_t i = stage_begin(r); i < stage_end(r); i++) {
		const struct item_state *is = &r->st[i];
		const struct sl_sync_item *it = is->it;
		if (is->outcome != ITEM_PENDING || !is->resolved ||
		    sl_sync_inventory_find(r->prev, it->group, it->kind, it->ns, it->name))
			continue;
		if (sl_sync_inventory_put(r->prev, it->group, it->version, it->kind, it->ns, it->name, NULL) <
		    0) {
			set_fatal(r, SL_ENOMEM, "out of memory");
			return false;
		}
		added = true;
	}
	if (!added)
		return false;
	sl_buf_init(&inv, SL_SYNC_INVENTORY_MAX);
	sl_buf_init(&pending, SL_SYNC_INVENTORY_MAX);
	/* the stored inventory as it was read (none before the first sync) */
	if ((r->inv_cm && sl_sync_inventory_format(r->stored, &inv) < 0) || format_pending(r, &pending) < 0) {
		set_fatal(r, SL_ETOOLARGE, "pending list over %d bytes: too many objects for one source",
		          SL_SYNC_INVENTORY_MAX);
	} else {
		r->announced = true;
		send_inventory(r, r->inv_cm ? inv.data : NULL, r->stored_status, pending.data);
	}
	sl_buf_free(&inv);
	sl_buf_free(&pending);
	return !r->fatal;
}

static void start_apply(struct run *r)
{
	r->phase = PH_ANNOUNCE;
	r->pending = 1;
	r->next = stage_begin(r);
	if (announce(r)) {
		settle(r); /* applies start when the pending list is written */
		return;
	}
	r->phase = PH_APPLY;
	r->pending = 0;
	issue_applies(r);
}

/* ---- CRDs: wait until Established ---------------------------------------------------------- */

static bool crd_established(const cJSON *crd)
{
	const cJSON *conds =
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(crd, "status"), "conditions");
	for (const cJSON *c = conds ? conds->child : NULL; c; c = c->next) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "status");
		if (cJSON_IsString(t) && strcmp(t->valuestring, "Established") == 0 && cJSON_IsString(st))
			return strcmp(st->valuestring, "True") == 0;
	}
	return false;
}

static void on_crd_get(struct sl_kube_result *res, void *payload)
{
	size_t idx;
	struct run *r = req_done(payload, &idx);
	if (!r)
		return;
	if (res->code == 0 && crd_established(res->body))
		r->st[idx].waiting = false;
	settle(r);
}

static void poll_crds(struct run *r)
{
	struct sl_sync *s = r->s;
	r->pending = 1;
	for (size_t i = stage_begin(r); i < stage_end(r); i++) {
		struct item_state *is = &r->st[i];
		if (!is->waiting)
			continue;
		struct req *q = req_new(r, i);
		if (!q) {
			set_fatal(r, SL_ENOMEM, "out of memory");
			break;
		}
		struct sl_kube_ref ref = {.api_version = is->it->api_version,
		                          .resource = item_res(r, is)->plural,
		                          .name = is->it->name};
		r->pending++;
		if (sl_kube_get(s->kube, &ref, NULL, on_crd_get, q) < 0) {
			req_free(q);
			r->pending--;
		}
	}
	settle(r);
}

static void start_resolve(struct run *r);

static void run_timer(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct run *r = payload;
	if (r->phase == PH_CRD_WAIT)
		poll_crds(r);
	else
		start_resolve(r);
}

/* Arms the run's timer; false (and the run fails) when out of memory. */
static bool arm_timer(struct run *r, uint64_t ms)
{
	if (!r->timer && sl_loop_timer_new(r->s->loop, run_timer, r, &r->timer) < 0) {
		set_fatal(r, SL_ENOMEM, "out of memory");
		return false;
	}
	sl_loop_timer_arm(r->timer, ms);
	return true;
}

static void start_crd_wait(struct run *r)
{
	r->phase = PH_CRD_WAIT;
	r->crd_deadline =
	    sl_now_ms() + (r->s->opts.crd_timeout_ms ? r->s->opts.crd_timeout_ms : DEFAULT_CRD_TIMEOUT_MS);
	/* a dry run created nothing: there is nothing to wait for */
	for (size_t i = stage_begin(r); i < stage_end(r); i++)
		r->st[i].waiting = !dry(r->s) && r->st[i].outcome != ITEM_FAILED;
	poll_crds(r);
}

static void next_stage(struct run *r);

/* After a poll round: on to the next stage, poll again later, or give up. */
static void crd_round_done(struct run *r)
{
	size_t waiting = 0;
	for (size_t i = stage_begin(r); i < stage_end(r); i++)
		waiting += r->st[i].waiting;
	if (waiting && !r->fatal && sl_now_ms() < r->crd_deadline) {
		if (arm_timer(r, CRD_POLL_MS))
			return;
	}
	for (size_t i = stage_begin(r); i < stage_end(r); i++) {
		struct item_state *is = &r->st[i];
		if (is->waiting) {
			/* applied, but its kinds are not served: what uses
			 * them fails on its own, with its own file and line */
			is->waiting = false;
			r->applied -= is->outcome == ITEM_APPLIED;
			item_fail(r, is, SL_ETIMEOUT, "CustomResourceDefinition not Established in time");
		}
	}
	/* kinds the new CRDs define become resolvable */
	sl_kube_discover_invalidate(r->s->kube);
	r->discovery_deadline =
	    sl_now_ms() + (r->s->opts.crd_timeout_ms ? r->s->opts.crd_timeout_ms : DEFAULT_CRD_TIMEOUT_MS);
	next_stage(r);
}

/* ---- prune ------------------------------------------------------------------------------ */

static void start_write(struct run *r);

static void prune_keep(struct run *r, const struct sl_sync_inv_entry *e)
{
	/* still ours: tried again next time */
	if (sl_sync_inventory_put(r->cur, e->group, e->version, e->kind, e->ns, e->name, NULL) < 0)
		set_fatal(r, SL_ENOMEM, "out of memory");
}

static void prune_problem(struct run *r, const struct sl_sync_inv_entry *e, int code, const char *what)
{
	char reason[SL_ERRMSG_MAX + 512];
	snprintf(reason, sizeof(reason), "prune %s %s%s%s: %s", e->kind, e->ns, *e->ns ? "/" : "", e->name,
	         what);
	if (sl_sync_plan_add_problem(r->plan, "", 0, 0, code, reason) < 0)
		set_fatal(r, SL_ENOMEM, "out of memory");
	r->failed++;
	prune_keep(r, e);
}

static void on_prune_delete(struct sl_kube_result *res, void *payload)
{
	size_t idx;
	struct run *r = req_done(payload, &idx);
	if (!r)
		return;
	const struct sl_sync_inv_entry *e = r->prune[idx];
	if (res->code == 0) {
		r->pruned++;
		r->writes++;
		sl_buf_printf(&r->pruned_names, "%s%s %s%s%s", r->pruned_names.len ? ", " : "", e->kind,
		              e->ns, *e->ns ? "/" : "", e->name);
		progress(r);
	} else if (res->code != SL_ENOTFOUND) {
		prune_problem(r, e, res->code, result_reason(res));
	}
	settle(r);
}

static void entry_ref(const struct sl_sync_inv_entry *e, char *av, size_t avsz, struct sl_kube_ref *ref)
{
	snprintf(av, avsz, "%s%s%s", e->group, *e->group ? "/" : "", e->version);
	*ref = (struct sl_kube_ref){.api_version = av, .kind = e->kind, .ns = e->ns, .name = e->name};
}

static void on_prune_get(struct sl_kube_result *res, void *payload)
{
	size_t idx;
	struct run *r = req_done(payload, &idx);
	const char *why;
	char av[400];
	struct sl_kube_ref ref;

	if (!r)
		return;
	const struct sl_sync_inv_entry *e = r->prune[idx];
	if (res->code == SL_ENOTFOUND) {
		/* already gone, or its kind is */
	} else if (res->code < 0) {
		prune_problem(r, e, res->code, result_reason(res));
	} else if (!sl_sync_prune_live_ok(res->body, r->s->source_id, &why)) {
		/* left alone and forgotten: sluice no longer claims it */
		r->prune_skipped++;
	} else {
		struct sl_kube_call_opts o = {.propagation = "Background", .dry_run = dry(r->s)};
		struct req *q = req_new(r, idx);
		entry_ref(e, av, sizeof(av), &ref);
		if (!q) {
			set_fatal(r, SL_ENOMEM, "out of memory");
		} else {
			r->pending++;
			int rc = sl_kube_delete(r->s->kube, &ref, &o, on_prune_delete, q);
			if (rc < 0) {
				r->pending--;
				req_free(q);
				prune_problem(r, e, rc, sl_strerror(rc));
			}
		}
	}
	settle(r);
}

/* One reverse stage at a time: streams go before their templates, CRDs last. */
static void issue_prunes(struct run *r)
{
	if (r->prune_next >= r->n_prune || r->fatal) {
		for (size_t i = r->prune_next; i < r->n_prune; i++)
			prune_keep(r, r->prune[i]);
		r->prune_next = r->n_prune;
		start_write(r);
		return;
	}
	r->phase = PH_PRUNE;
	const struct sl_sync_inv_entry *first = r->prune[r->prune_next];
	enum sl_sync_stage st = sl_sync_stage_of(first->group, first->kind);
	size_t end = r->prune_next;
	while (end < r->n_prune && sl_sync_stage_of(r->prune[end]->group, r->prune[end]->kind) == st)
		end++;
	r->pending = 1;
	for (size_t i = r->prune_next; i < end; i++) {
		const struct sl_sync_inv_entry *e = r->prune[i];
		char av[400];
		struct sl_kube_ref ref;
		struct req *q = req_new(r, i);
		if (!q) {
			set_fatal(r, SL_ENOMEM, "out of memory");
			prune_keep(r, e);
			continue;
		}
		entry_ref(e, av, sizeof(av), &ref);
		r->pending++;
		int rc = sl_kube_get(r->s->kube, &ref, NULL, on_prune_get, q);
		if (rc < 0) {
			req_free(q);
			r->pending--;
			prune_problem(r, e, rc, sl_strerror(rc));
		}
	}
	r->prune_next = end;
	settle(r);
}

static void start_prune(struct run *r)
{
	struct sl_sync *s = r->s;
	struct sl_sync_prune_opts po = {
	    .source_ok = r->plan != NULL,
	    .snapshot_errors = r->plan ? r->plan->n_problems : 0,
	    .allow_empty = s->opts.allow_empty_prune,
	};
	if (s->opts.prune && !r->fatal) {
		if (sl_sync_prune_plan(r->prev, r->cur, &po, &r->prune, &r->n_prune, &r->prune_block) < 0)
			set_fatal(r, SL_ENOMEM, "out of memory");
		else if (r->prune_block == SL_SYNC_PRUNE_ALLOWED)
			r->prune_ran = true;
	}
	/* what left the source but is not pruned now stays in the inventory,
	 * so that a later sync (fixed, or with --prune) still knows it */
	for (size_t i = 0; !r->prune_ran && i < sl_sync_inventory_count(r->prev); i++) {
		const struct sl_sync_inv_entry *e = sl_sync_inventory_at(r->prev, i);
		if (!sl_sync_inventory_find(r->cur, e->group, e->kind, e->ns, e->name) &&
		    sl_sync_inventory_put(r->cur, e->group, e->version, e->kind, e->ns, e->name, e->digest) <
		        0)
			set_fatal(r, SL_ENOMEM, "out of memory");
	}
	r->prune_next = 0;
	issue_prunes(r);
}

/* ---- inventory write and events ------------------------------------------------------------ */

static const char *result_of(const struct run *r)
{
	if (!r->plan)
		return "source-error";
	if (r->fatal || r->failed || r->plan->n_problems)
		return "failed";
	return "ok";
}

/* Which Event a request carries (the req's idx). */
enum { EV_THIS_RUN, EV_PRUNED, EV_UNSENT };

static char *stamped(int64_t when, const char *msg)
{
	char t[32];

	sl_time_rfc3339(when, t);
	return sl_asprintf("at %s: %s", t, msg);
}

static void on_event(struct sl_kube_result *res, void *payload)
{
	size_t which;
	struct run *r = req_done(payload, &which);

	/* an event that could not be recorded does not change the outcome */
	if (!r)
		return;
	if (which == EV_UNSENT && res->code == 0) {
		free(r->s->unsent);
		r->s->unsent = NULL;
	} else if (which == EV_THIS_RUN && res->code < 0 && !r->s->unsent && r->event_msg)
		r->s->unsent = stamped(r->start_s, r->event_msg);
	settle(r);
}

static void send_event(struct run *r, size_t which, const char *type, const char *reason, const char *msg)
{
	if (!r->inv_cm || dry(r->s))
		return;
	struct req *q = req_new(r, which);
	if (!q)
		return;
	r->pending++;
	if (sl_kube_event(r->s->kube, r->inv_cm, type, reason, msg, on_event, q) < 0) {
		r->pending--;
		req_free(q);
	}
}

static void start_events(struct run *r)
{
	char msg[1024];
	const char *res = result_of(r);
	r->phase = PH_EVENT;
	r->pending = 1;
	/* a failure of an earlier run first, recorded late */
	if (r->s->unsent && !dry(r->s))
		send_event(r, EV_UNSENT, "Warning", "SyncFailed", r->s->unsent);
	if (strcmp(res, "ok") != 0) {
		const struct sl_sync_problem *p =
		    r->plan && r->plan->n_problems ? &r->plan->problems[0] : NULL;
		if (!r->plan)
			snprintf(msg, sizeof(msg), "source could not be read: %s",
			         r->source_error ? r->source_error : "unknown error");
		else if (r->fatal)
			snprintf(msg, sizeof(msg), "sync of %s failed: %s", r->plan->revision, r->fatal);
		else
			snprintf(msg, sizeof(msg), "sync of %s: %zu problem(s); first: %s:%d: %s",
			         r->plan->revision, r->plan->n_problems, p ? p->file : "", p ? p->line : 0,
			         p ? p->reason : "");
		r->event_msg = sl_strdup(msg);
		if (!r->inv_cm && !dry(r->s) && !r->s->unsent)
			r->s->unsent = stamped(r->start_s, msg);
		send_event(r, EV_THIS_RUN, "Warning", "SyncFailed", msg);
	}
	if (r->pruned) {
		snprintf(msg, sizeof(msg), "pruned %zu object(s) that left the source: %s", r->pruned,
		         r->pruned_names.data ? r->pruned_names.data : "");
		send_event(r, EV_PRUNED, "Normal", "Pruned", msg);
	}
	settle(r);
}

static void on_write(struct sl_kube_result *res, void *payload)
{
	struct run *r = req_done(payload, NULL);
	if (!r)
		return;
	if (res->code < 0) {
		set_fatal(r, res->code, "writing inventory %s/%s: %s", r->s->inventory_ns, r->s->inv_name,
		          result_reason(res));
	} else {
		r->writes++;
		cJSON_Delete(r->inv_cm);
		r->inv_cm = cm_identity(res->body);
		res->body = NULL;
	}
	settle(r);
}

/* The status of this run, outcome not set. */
static void status_of(const struct run *r, struct sl_sync_status *st)
{
	*st = (struct sl_sync_status){
	    .start_s = r->start_s,
	    .end_s = sl_wall_s(),
	    .result = result_of(r),
	    .applied = r->applied,
	    .unchanged = r->unchanged,
	    .failed = r->failed,
	    .pruned = r->pruned,
	    .prune_skipped = r->prune_skipped,
	    .prune_blocked =
	        r->s->opts.prune && !r->prune_ran ? sl_sync_prune_block_reason(r->prune_block) : NULL,
	    .source_error = r->source_error,
	    .errors = r->plan ? r->plan->problems : NULL,
	    .n_errors = r->plan ? r->plan->n_problems : 0,
	};
	snprintf(st->revision, sizeof(st->revision), "%s", r->plan ? r->plan->revision : "");
	if (r->fatal && !st->n_errors)
		st->prune_blocked = r->fatal;
}

/* What this sync decided, as a digest: the status without times and counts,
 * the inventory and the pending list (NULL: none), so that a resync that
 * changes nothing writes nothing. */
static int outcome_of(const struct sl_sync_status *st, const char *inv, const char *pending,
                      char out[static 65])
{
	struct sl_sync_status sig = *st;
	struct sl_sha256 c;
	uint8_t d[SL_SHA256_LEN];
	struct sl_buf b;
	int r;

	sig.start_s = sig.end_s = 0;
	sig.applied = sig.unchanged = sig.pruned = sig.prune_skipped = 0;
	sl_buf_init(&b, 256 * 1024);
	r = sl_sync_status_format(&sig, &b);
	if (r == 0) {
		/* hashed in parts: the inventory text is not copied */
		sl_sha256_init(&c);
		sl_sha256_update(&c, b.data, b.len);
		sl_sha256_update(&c, inv, strlen(inv));
		if (pending) {
			sl_sha256_update(&c, "\npending ", strlen("\npending "));
			sl_sha256_update(&c, pending, strlen(pending));
		}
		sl_sha256_final(&c, d);
		sl_hex(d, sizeof(d), out);
	}
	sl_buf_free(&b);
	return r;
}

/* Applies the inventory ConfigMap with the texts of inventory, status and
 * pending list (each NULL: left out, so a pending list written before is
 * removed). */
static void send_inventory(struct run *r, const char *inv, const char *st, const char *pending)
{
	struct sl_sync *s = r->s;
	struct sl_kube_call_opts o = {.field_manager = SL_ARCANE_FIELD_MANAGER_SYNC, .force = true};
	struct sl_kube_ref ref = {.api_version = "v1",
	                          .resource = "configmaps",
	                          .namespaced = true,
	                          .ns = s->inventory_ns,
	                          .name = s->inv_name};
	cJSON *cm = sl_sync_inventory_configmap(s->source_id, s->inventory_ns, inv, st, pending);
	struct req *q = cm ? req_new(r, 0) : NULL;

	if (!q) {
		set_fatal(r, SL_ENOMEM, "out of memory");
	} else {
		r->pending++;
		int rc = sl_kube_apply(s->kube, &ref, cm, &o, on_write, q);
		if (rc < 0) {
			r->pending--;
			req_free(q);
			set_fatal(r, rc, "writing inventory: %s", sl_strerror(rc));
		}
	}
	cJSON_Delete(cm);
}

static void start_write(struct run *r)
{
	struct sl_sync_status status;
	struct sl_sync_inventory *applied = NULL, *pending = NULL;
	struct sl_buf inv, pend, st;
	char outcome[65];
	int rc;

	r->phase = PH_WRITE;
	r->pending = 1;
	sl_buf_init(&inv, SL_SYNC_INVENTORY_MAX);
	sl_buf_init(&pend, SL_SYNC_INVENTORY_MAX);
	sl_buf_init(&st, 256 * 1024);
	/* a dry run writes nothing; a sync that could not read the inventory
	 * (the API refused, or it does not parse) must not overwrite it */
	if (dry(r->s) || !r->prev_known)
		goto out;
	/* what is claimed, split into what was applied (the inventory) and
	 * what may exist (pending); a failed run keeps what was stored */
	rc = sl_sync_inventory_split(r->plan && !r->fatal ? r->cur : r->prev, r->stored, r->confirmed,
	                             &applied, &pending);
	if (rc < 0) {
		set_fatal(r, rc, "out of memory");
		goto out;
	}
	rc = sl_sync_inventory_format(applied, &inv);
	if (rc == 0 && sl_sync_inventory_count(pending))
		rc = sl_sync_inventory_format(pending, &pend);
	if (rc < 0) {
		set_fatal(r, rc, "inventory over %d bytes: too many objects for one source",
		          SL_SYNC_INVENTORY_MAX);
		goto out;
	}
	status_of(r, &status);
	if (outcome_of(&status, inv.data ? inv.data : "", pend.data, outcome) < 0) {
		set_fatal(r, SL_ENOMEM, "out of memory");
		goto out;
	}
	if (r->prev_outcome && strcmp(r->prev_outcome, outcome) == 0 && r->inv_cm && !r->pruned &&
	    !r->announced)
		goto out;
	status.outcome = outcome;
	if (sl_sync_status_format(&status, &st) < 0) {
		set_fatal(r, SL_ENOMEM, "out of memory");
		goto out;
	}
	send_inventory(r, inv.data, st.data, pend.data);
out:
	sl_sync_inventory_free(applied);
	sl_sync_inventory_free(pending);
	sl_buf_free(&inv);
	sl_buf_free(&pend);
	sl_buf_free(&st);
	settle(r);
}

/* ---- state machine ------------------------------------------------------------------------- */

static void next_stage(struct run *r)
{
	if (!r->fatal && ++r->stage < SL_SYNC_STAGE_COUNT)
		start_resolve(r);
	else
		start_prune(r);
}

/* The current phase has nothing in flight any more: start the next one. */
static void advance(struct run *r)
{
	switch (r->phase) {
	case PH_INVENTORY:
		if (r->fatal || !r->plan) {
			start_prune(r); /* goes on to record the failure */
			return;
		}
		r->stage = 0;
		start_resolve(r);
		return;
	case PH_RESOLVE:
		if (r->fatal) {
			start_prune(r);
		} else if (r->resolve_retry) {
			r->resolve_retry = false;
			sl_kube_discover_invalidate(r->s->kube);
			if (!arm_timer(r, CRD_POLL_MS))
				start_prune(r);
		} else {
			start_list(r);
		}
		return;
	case PH_LIST:
		if (r->fatal)
			start_prune(r);
		else
			start_apply(r);
		return;
	case PH_ANNOUNCE:
		/* issue_applies moves on to prune when the write failed */
		r->phase = PH_APPLY;
		r->pending = 0;
		issue_applies(r);
		return;
	case PH_APPLY:
		if (!r->fatal && r->stage == SL_SYNC_STAGE_CRD && stage_end(r) > stage_begin(r))
			start_crd_wait(r);
		else
			next_stage(r);
		return;
	case PH_CRD_WAIT:
		crd_round_done(r);
		return;
	case PH_PRUNE:
		issue_prunes(r);
		return;
	case PH_WRITE:
		start_events(r);
		return;
	case PH_EVENT:
		finish(r);
		return;
	case PH_DONE:
		return;
	}
}

static void run_free(struct run *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->st && r->plan && i < r->plan->n_items; i++) {
		free(r->st[i].diff);
		cJSON_Delete(r->st[i].live);
	}
	free(r->st);
	free(r->kinds);
	for (size_t i = 0; i < r->n_lists; i++) {
		free(r->lists[i].api_version);
		free(r->lists[i].kind);
		free(r->lists[i].ns);
		free(r->lists[i].error);
		free(r->lists[i].items);
	}
	free(r->lists);
	sl_map_free(&r->list_index, NULL);
	sl_sync_inventory_free(r->prev);
	sl_sync_inventory_free(r->cur);
	sl_sync_inventory_free(r->stored);
	sl_sync_inventory_free(r->confirmed);
	cJSON_Delete(r->inv_cm);
	free(r->prev_outcome);
	free(r->stored_status);
	free(r->prune);
	sl_buf_free(&r->pruned_names);
	if (r->fatal != fatal_nomem)
		free(r->fatal);
	free(r->event_msg);
	free(r->source_error);
	sl_loop_timer_free(r->timer);
	sl_sync_plan_free(r->plan);
	free(r);
}

static void finish(struct run *r)
{
	struct sl_sync *s = r->s;
	struct sl_sync_metrics *m = &s->metrics;
	const char *result = result_of(r);

	r->phase = PH_DONE;
	if (diff_mode(s))
		for (size_t i = 0; r->plan && i < r->plan->n_items; i++)
			if (r->st[i].diff)
				sl_buf_puts(s->opts.diff_out, r->st[i].diff);
	struct sl_sync_report rep = {
	    .code = r->fatal ? r->fatal_code : (strcmp(result, "ok") == 0 ? 0 : SL_EINVALID),
	    .result = result,
	    .revision = r->plan ? r->plan->revision : "",
	    .applied = r->applied,
	    .unchanged = r->unchanged,
	    .failed = r->failed,
	    .pruned = r->pruned,
	    .prune_skipped = r->prune_skipped,
	    .writes = r->writes,
	    .prune_blocked =
	        s->opts.prune && !r->prune_ran ? sl_sync_prune_block_reason(r->prune_block) : NULL,
	    .problems = r->plan ? r->plan->problems : NULL,
	    .n_problems = r->plan ? r->plan->n_problems : 0,
	    .error = r->fatal ? r->fatal : (!r->plan ? r->source_error : NULL),
	    .duration_ms = sl_now_ms() - r->t0,
	};
	if (!r->plan && rep.code == 0)
		rep.code = SL_EUNAVAILABLE;
	if (!dry(s)) {
		if (!r->plan)
			m->syncs_source_error++;
		else if (rep.code == 0)
			m->syncs_ok++;
		else
			m->syncs_failed++;
		m->objects_applied += r->applied;
		m->objects_unchanged += r->unchanged;
		m->objects_failed += r->failed;
		m->objects_pruned += r->pruned;
		m->last_sync_end = sl_wall_s();
		if (r->plan && rep.code == 0)
			m->last_success_end = m->last_sync_end;
	}
	s->run = NULL;
	sl_sync_done_fn done = r->done;
	void *payload = r->payload;
	/* the callback may free the engine; the run is gone by then */
	done(s, &rep, payload);
	run_free(r);
}

/* ---- public ------------------------------------------------------------------------------------ */

int sl_sync_new(struct sl_loop *loop, struct sl_kube *kube, const struct sl_sync_opts *opts,
                struct sl_sync **ret, struct sl_error *err)
{
	struct sl_sync *s;
	const struct sl_kube_config *cfg = sl_kube_get_config(kube);
	const char *dns = opts->default_ns ? opts->default_ns : (cfg && cfg->ns ? cfg->ns : "default");

	if (!opts->source_id || !opts->inventory_ns || !*opts->inventory_ns)
		return sl_error_set(err, SL_EINVALID, "a source id and an inventory namespace are required");
	s = calloc(1, sizeof(*s));
	if (!s)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	if (sl_sync_inventory_name(opts->source_id, s->inv_name, sizeof(s->inv_name)) < 0) {
		free(s);
		return sl_error_set(
		    err, SL_EINVALID,
		    "source id '%s' must be lowercase letters, digits, '-' and '.' (it names the "
		    "inventory ConfigMap)",
		    opts->source_id);
	}
	s->loop = loop;
	s->kube = kube;
	s->opts = *opts;
	s->source_id = sl_strdup(opts->source_id);
	s->inventory_ns = sl_strdup(opts->inventory_ns);
	s->default_ns = sl_strdup(dns);
	if (!s->source_id || !s->inventory_ns || !s->default_ns) {
		sl_sync_free(s);
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	}
	s->opts.source_id = s->source_id;
	s->opts.inventory_ns = s->inventory_ns;
	s->opts.default_ns = s->default_ns;
	*ret = s;
	return 0;
}

void sl_sync_free(struct sl_sync *s)
{
	if (!s)
		return;
	if (s->run) {
		struct run *r = s->run;
		r->canceled = true;
		sl_loop_timer_free(r->timer);
		r->timer = NULL;
		if (r->reqs == 0)
			run_free(r);
	}
	free(s->source_id);
	free(s->inventory_ns);
	free(s->default_ns);
	free(s->unsent);
	free(s);
}

bool sl_sync_running(const struct sl_sync *s)
{
	return s && s->run;
}

const struct sl_sync_metrics *sl_sync_get_metrics(const struct sl_sync *s)
{
	return &s->metrics;
}

static void deferred_start(struct sl_loop *loop, void *payload)
{
	struct run *r = payload;
	if (--r->reqs == 0 && r->canceled) {
		run_free(r);
		return;
	}
	if (!r->canceled) {
		progress(r);
		start_inventory(r);
	}
}

int sl_sync_run(struct sl_sync *s, struct sl_sync_plan *plan, const char *source_error, sl_sync_done_fn done,
                void *payload)
{
	struct run *r;

	if (s->run) {
		sl_sync_plan_free(plan);
		return SL_EEXIST;
	}
	if (plan && !plan->finished) {
		int rc = sl_sync_plan_finish(plan);
		if (rc < 0) {
			sl_sync_plan_free(plan);
			return rc;
		}
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		sl_sync_plan_free(plan);
		return SL_ENOMEM;
	}
	r->s = s;
	r->plan = plan;
	r->done = done;
	r->payload = payload;
	r->t0 = sl_now_ms();
	r->start_s = sl_wall_s();
	unsigned max = s->opts.concurrency ? s->opts.concurrency : DEFAULT_CONCURRENCY;
	sl_sync_limit_init(&r->limit, INITIAL_CONCURRENCY, SL_MIN(MIN_CONCURRENCY, max), max);
	sl_buf_init(&r->pruned_names, 64 * 1024);
	if (source_error && !(r->source_error = sl_strdup(source_error)))
		goto oom;
	if (sl_sync_inventory_new(&r->cur) < 0 || sl_sync_inventory_new(&r->prev) < 0 ||
	    sl_sync_inventory_new(&r->stored) < 0 || sl_sync_inventory_new(&r->confirmed) < 0)
		goto oom;
	if (plan && plan->n_items) {
		r->st = calloc(plan->n_items, sizeof(*r->st));
		if (!r->st)
			goto oom;
		for (size_t i = 0; i < plan->n_items; i++)
			r->st[i].it = &plan->items[i];
	}
	s->run = r;
	/* started from the loop, so that done never runs inside this call */
	r->reqs++;
	if (sl_loop_defer(s->loop, deferred_start, r) < 0) {
		s->run = NULL;
		goto oom;
	}
	return 0;
oom:
	run_free(r);
	return SL_ENOMEM;
}
