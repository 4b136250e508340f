/* The verbs: a call resolves its resource (discovery), builds the path and
 * query, sends one request (or several pages for a list) and reports one
 * result to the caller's callback. */
#include "internal.h"
#include "sluice/manifest-json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PATH_MAX_LEN 8192

struct call {
	struct sl_kube *k;
	enum sl_kube_verb verb;
	const char *method;
	char *api_version, *kind, *ns, *name, *sub;
	struct sl_kube_resource res;
	char *query; /* "?a=b&c=d" or "" */
	char *body;
	size_t body_len;
	const char *ctype;
	unsigned timeout_ms, limit;
	sl_kube_cb cb;
	void *payload;
	sl_kube_page_cb page;
	/* list */
	cJSON *list;
	char *cont;
	unsigned pages;
	bool restarted;
};

static void call_free(struct call *c)
{
	if (!c)
		return;
	free(c->api_version);
	free(c->kind);
	free(c->ns);
	free(c->name);
	free(c->sub);
	free(c->query);
	free(c->body);
	cJSON_Delete(c->list);
	free(c->cont);
	free(c);
}

static bool dup_ok(char **dst, const char *s)
{
	if (!s)
		return true;
	*dst = sl_strdup(s);
	return *dst != NULL;
}

int sl_kube_ref_from_obj(const cJSON *obj, struct sl_kube_ref *ret)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *av = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");

	if (!cJSON_IsString(av) || !cJSON_IsString(kind) || !cJSON_IsString(name) || !*name->valuestring)
		return SL_EINVALID;
	memset(ret, 0, sizeof(*ret));
	ret->api_version = av->valuestring;
	ret->kind = kind->valuestring;
	ret->name = name->valuestring;
	ret->ns = cJSON_IsString(ns) && *ns->valuestring ? ns->valuestring : NULL;
	return 0;
}

int sl_kube_obj_key(const cJSON *obj, char *out, size_t outsz)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");

	if (!cJSON_IsString(name))
		return SL_EINVALID;
	return sl_kube__key(cJSON_GetStringValue(ns), name->valuestring, out, outsz);
}

int sl_kube__key(const char *ns, const char *name, char *out, size_t outsz)
{
	int n;

	if (ns && *ns)
		n = snprintf(out, outsz, "%s/%s", ns, name);
	else
		n = snprintf(out, outsz, "%s", name);
	return n < 0 || (size_t)n >= outsz ? SL_ETOOLARGE : 0;
}

static void finish_call(struct call *c, struct sl_kube_result *res)
{
	c->cb(res, c->payload);
	call_free(c);
}

static void fail_call(struct call *c, int code, const struct sl_error *err)
{
	struct kube_res kr;
	sl_kube__res_fail(&kr, code, "%s", err && err->msg[0] ? err->msg : sl_strerror(code));
	finish_call(c, &kr.res);
}

static void fail_callf(struct call *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_callf(struct call *c, int code, const char *fmt, ...)
{
	struct sl_error e;
	va_list ap;

	va_start(ap, fmt);
	sl_error_setv(&e, code, fmt, ap);
	va_end(ap);
	fail_call(c, code, &e);
}

static int send_call(struct call *c);

/* The continue token expired: start a fresh, consistent list. */
static void restart_list(struct call *c)
{
	int r;

	c->restarted = true;
	if (c->page)
		c->page(NULL, c->payload);
	free(c->cont);
	c->cont = NULL;
	cJSON_Delete(c->list);
	c->list = NULL;
	c->pages = 0;
	r = send_call(c);
	if (r < 0)
		fail_callf(c, r, "list restart: %s", sl_strerror(r));
}

int sl_kube__list_page_check(const cJSON *page)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(page, "items");

	return cJSON_IsObject(page) && (cJSON_IsArray(items) || cJSON_IsNull(items)) ? 0 : SL_EINVALID;
}

/* Adds a page to the list: the first one becomes it, later ones give their
 * items. */
static int merge_page(cJSON **list, cJSON **page)
{
	cJSON *dst, *items, *it;

	if (!*list) {
		*list = TAKE_PTR(*page);
		if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(*list, "items")))
			return 0;
		/* none, or not an array ("items": null): an empty one in
		 * its place, so that later pages' items land in the list */
		items = cJSON_CreateArray();
		if (!items)
			return SL_ENOMEM;
		if (cJSON_GetObjectItemCaseSensitive(*list, "items")
		        ? !cJSON_ReplaceItemInObjectCaseSensitive(*list, "items", items)
		        : !cJSON_AddItemToObject(*list, "items", items)) {
			cJSON_Delete(items);
			return SL_ENOMEM;
		}
		return 0;
	}
	dst = cJSON_GetObjectItemCaseSensitive(*list, "items");
	items = cJSON_GetObjectItemCaseSensitive(*page, "items");
	while (cJSON_IsArray(items) && (it = items->child))
		cJSON_AddItemToArray(dst, cJSON_DetachItemViaPointer(items, it));
	return 0;
}

int sl_kube__list_page(cJSON **list, cJSON **page, bool pager, cJSON **items, char **next)
{
	const cJSON *cont = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(*page, "metadata"),
	                                                     "continue");

	/* the token is copied first: merging may move the page into the list */
	*items = NULL;
	*next = NULL;
	if (cJSON_IsString(cont) && *cont->valuestring && !(*next = sl_strdup(cont->valuestring)))
		return SL_ENOMEM;
	if (pager)
		*items = cJSON_DetachItemFromObjectCaseSensitive(*page, "items");
	if (merge_page(list, page) < 0) {
		free(*next);
		*next = NULL;
		cJSON_Delete(*items);
		*items = NULL;
		return SL_ENOMEM;
	}
	return 0;
}

void sl_kube__list_finish(cJSON *list)
{
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(list, "metadata");

	/* every one, should the page have had a key twice */
	while (cJSON_GetObjectItemCaseSensitive(meta, "continue"))
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "continue");
	while (cJSON_GetObjectItemCaseSensitive(meta, "remainingItemCount"))
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "remainingItemCount");
}

/* Reports the merged list: the first page's metadata, without continue. */
static void finish_list(struct call *c, struct sl_kube_result *res)
{
	cJSON *page = res->body;

	sl_kube__list_finish(c->list);
	res->body = TAKE_PTR(c->list);
	res->pages = c->pages;
	c->cb(res, c->payload);
	cJSON_Delete(res->body);
	res->body = page;
	call_free(c);
}

/* A page of a paged list arrived: fetch the next one or report the list.
 * With a pager, the page's items go to it instead of into the list, so a
 * big list is never held whole, and only once the next page is asked for:
 * the pager's work overlaps the next round trip. Everything that can fail
 * comes first, while no request of the call is in flight. */
static void on_list_page(struct call *c, struct sl_kube_result *res)
{
	cJSON *items;
	char *next;
	int r;

	if (sl_kube__list_page(&c->list, &res->body, c->page != NULL, &items, &next) < 0) {
		fail_callf(c, SL_ENOMEM, "list: out of memory");
		return;
	}
	c->pages++;
	free(c->cont);
	c->cont = next;
	if (next && (r = send_call(c)) < 0) {
		cJSON_Delete(items);
		fail_callf(c, r, "list next page: %s", sl_strerror(r));
		return;
	}
	if (cJSON_IsArray(items))
		c->page(items, c->payload);
	cJSON_Delete(items);
	if (!next)
		finish_list(c, res);
}

static void on_done(struct req *unused, struct sl_kube_result *res, void *payload)
{
	struct call *c = payload;
	bool list = c->verb == SL_KUBE_VERB_LIST;

	/* a page that is not a list must not read as an empty one (an
	 * informer would report every object it has as deleted) */
	if (list && res->code == 0 && sl_kube__list_page_check(res->body) < 0) {
		fail_callf(c, SL_EINVALID, "list %s: the response is not a list (an object with items)",
		           c->res.plural);
		return;
	}
	if (list && c->limit && res->code == SL_EGONE && c->cont && !c->restarted) {
		restart_list(c);
		return;
	}
	if (list && c->limit && res->code == 0) {
		on_list_page(c, res);
		return;
	}
	if (list && res->code == 0)
		res->pages = 1;
	finish_call(c, res);
}

static int send_call(struct call *c)
{
	struct sl_buf p;
	struct req_spec s = {.verb = c->verb,
	                     .method = c->method,
	                     .body = c->body,
	                     .body_len = c->body_len,
	                     .content_type = c->ctype,
	                     .timeout_ms = c->timeout_ms,
	                     .done = on_done,
	                     .payload = c};
	const char *ns = c->ns;
	int r;

	if (c->res.namespaced && (!ns || !*ns) && c->verb != SL_KUBE_VERB_LIST)
		ns = c->k->cfg->ns; /* as kubectl: the context's namespace */
	sl_buf_init(&p, PATH_MAX_LEN);
	r = sl_kube__path(&c->res, ns, c->verb == SL_KUBE_VERB_CREATE ? NULL : c->name, c->sub, &p);
	if (r == 0 && c->query[0])
		r = sl_buf_puts(&p, c->query);
	if (r == 0 && c->verb == SL_KUBE_VERB_LIST && c->limit) {
		char lim[32];
		snprintf(lim, sizeof(lim), "%u", c->limit);
		r = sl_kube__query(&p, "limit", lim);
		if (r == 0 && c->cont)
			r = sl_kube__query(&p, "continue", c->cont);
	}
	if (r == 0) {
		s.path = p.data;
		r = sl_kube__req_start(c->k, &s, NULL);
	}
	sl_buf_free(&p);
	return r;
}

static void on_discovered(int code, const struct sl_kube_resource *res, const struct sl_error *err,
                          void *payload)
{
	struct call *c = payload;
	int r;

	if (code < 0) {
		fail_call(c, code, err);
		return;
	}
	c->res = *res;
	r = send_call(c);
	if (r < 0) {
		struct sl_error e;
		sl_error_set(&e, r, "%s %s: %s", sl_kube_verb_name(c->verb), c->res.plural, sl_strerror(r));
		fail_call(c, r, &e);
	}
}

static int build_query(struct call *c, const struct sl_kube_call_opts *o)
{
	struct sl_buf q;
	int r = 0;

	sl_buf_init(&q, PATH_MAX_LEN);
	if (o) {
		if (o->field_manager && c->verb != SL_KUBE_VERB_GET && c->verb != SL_KUBE_VERB_LIST &&
		    c->verb != SL_KUBE_VERB_DELETE)
			r = sl_kube__query(&q, "fieldManager", o->field_manager);
		if (r == 0 && o->force && c->verb == SL_KUBE_VERB_APPLY)
			r = sl_kube__query(&q, "force", "true");
		if (r == 0 && o->dry_run && c->verb != SL_KUBE_VERB_GET && c->verb != SL_KUBE_VERB_LIST)
			r = sl_kube__query(&q, "dryRun", "All");
		if (r == 0 && c->verb == SL_KUBE_VERB_LIST && o->label_selector && *o->label_selector)
			r = sl_kube__query(&q, "labelSelector", o->label_selector);
		if (r == 0 && c->verb == SL_KUBE_VERB_LIST && o->field_selector && *o->field_selector)
			r = sl_kube__query(&q, "fieldSelector", o->field_selector);
		if (r == 0 && (c->verb == SL_KUBE_VERB_LIST || c->verb == SL_KUBE_VERB_GET) &&
		    o->resource_version && *o->resource_version)
			r = sl_kube__query(&q, "resourceVersion", o->resource_version);
	}
	if (r == 0) {
		c->query = q.data ? sl_buf_steal(&q) : sl_strdup("");
		r = c->query ? 0 : SL_ENOMEM;
	}
	sl_buf_free(&q);
	return r;
}

/* Common entry: copies everything, resolves the resource, sends. Takes
 * body (malloc'd, may be NULL) in every case. */
static int start(struct sl_kube *k, enum sl_kube_verb verb, const char *method, const struct sl_kube_ref *ref,
                 const struct sl_kube_call_opts *o, char *body, const char *ctype, sl_kube_page_cb page,
                 sl_kube_cb cb, void *payload)
{
	struct call *c;
	int r;

	if (!k || !ref || !cb || !ref->api_version || (!ref->kind && !ref->resource)) {
		free(body);
		return SL_EINVALID;
	}
	if ((verb != SL_KUBE_VERB_LIST && verb != SL_KUBE_VERB_CREATE) && (!ref->name || !*ref->name)) {
		free(body);
		return SL_EINVALID;
	}
	if (k->freeing) {
		free(body);
		return SL_ECANCELED;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		free(body);
		return SL_ENOMEM;
	}
	c->k = k;
	c->verb = verb;
	c->method = method;
	c->body = body;
	c->body_len = body ? strlen(body) : 0;
	c->ctype = ctype;
	c->cb = cb;
	c->payload = payload;
	c->page = page;
	c->timeout_ms = o ? o->timeout_ms : 0;
	c->limit = o && verb == SL_KUBE_VERB_LIST ? o->limit : 0;
	if (!dup_ok(&c->api_version, ref->api_version) || !dup_ok(&c->kind, ref->kind) ||
	    !dup_ok(&c->ns, ref->ns && *ref->ns ? ref->ns : NULL) || !dup_ok(&c->name, ref->name) ||
	    !dup_ok(&c->sub, ref->subresource) || build_query(c, o) < 0) {
		call_free(c);
		return SL_ENOMEM;
	}
	if (ref->resource) {
		r = sl_kube__resource_from_ref(ref, &c->res);
		if (r == 0)
			r = send_call(c);
	} else if (sl_kube_discover_cached(k, ref->api_version, ref->kind, &c->res) == 0)
		r = send_call(c);
	else
		r = sl_kube_discover(k, ref->api_version, ref->kind, on_discovered, c);
	if (r < 0)
		call_free(c);
	return r;
}

/* Request bodies in Go's encoding/json form: integers beyond 2^53 that the
 * parsers kept as text go out exact (cJSON's printer would round them). */
static char *print(const cJSON *obj)
{
	return obj ? sl_manifest_json_go(obj) : NULL;
}

int sl_kube_get(struct sl_kube *k, const struct sl_kube_ref *ref, const struct sl_kube_call_opts *opts,
                sl_kube_cb cb, void *payload)
{
	return start(k, SL_KUBE_VERB_GET, "GET", ref, opts, NULL, NULL, NULL, cb, payload);
}

int sl_kube_list_pages(struct sl_kube *k, const struct sl_kube_ref *ref, const struct sl_kube_call_opts *opts,
                       sl_kube_page_cb page, sl_kube_cb cb, void *payload)
{
	struct sl_kube_call_opts o = {0};

	if (!page)
		return SL_EINVALID;
	if (opts)
		o = *opts;
	if (!o.limit)
		o.limit = 500;
	return start(k, SL_KUBE_VERB_LIST, "GET", ref, &o, NULL, NULL, page, cb, payload);
}

int sl_kube_list(struct sl_kube *k, const struct sl_kube_ref *ref, const struct sl_kube_call_opts *opts,
                 sl_kube_cb cb, void *payload)
{
	return start(k, SL_KUBE_VERB_LIST, "GET", ref, opts, NULL, NULL, NULL, cb, payload);
}

int sl_kube_create(struct sl_kube *k, const struct sl_kube_ref *ref, const cJSON *obj,
                   const struct sl_kube_call_opts *opts, sl_kube_cb cb, void *payload)
{
	struct sl_kube_ref r;
	char *body = print(obj);
	if (!body)
		return SL_ENOMEM;
	if (!ref) {
		/* a create may carry generateName instead of name */
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
		const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
		memset(&r, 0, sizeof(r));
		r.api_version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"));
		r.kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "kind"));
		r.ns = cJSON_IsString(ns) ? ns->valuestring : NULL;
		ref = &r;
	}
	return start(k, SL_KUBE_VERB_CREATE, "POST", ref, opts, body, "application/json", NULL, cb, payload);
}

int sl_kube_update(struct sl_kube *k, const struct sl_kube_ref *ref, const cJSON *obj,
                   const struct sl_kube_call_opts *opts, sl_kube_cb cb, void *payload)
{
	struct sl_kube_ref r;
	char *body;
	if (!ref) {
		if (sl_kube_ref_from_obj(obj, &r) < 0)
			return SL_EINVALID;
		ref = &r;
	}
	body = print(obj);
	if (!body)
		return SL_ENOMEM;
	return start(k, SL_KUBE_VERB_UPDATE, "PUT", ref, opts, body, "application/json", NULL, cb, payload);
}

int sl_kube_delete(struct sl_kube *k, const struct sl_kube_ref *ref, const struct sl_kube_call_opts *opts,
                   sl_kube_cb cb, void *payload)
{
	const char *prop = opts ? opts->propagation : NULL;
	const char *uid =
	    opts && opts->precondition_uid && *opts->precondition_uid ? opts->precondition_uid : NULL;
	cJSON *o = NULL, *pre;
	char *body = NULL;

	if (prop && strcmp(prop, "Foreground") && strcmp(prop, "Background") && strcmp(prop, "Orphan"))
		return SL_EINVALID;
	if (prop || uid) {
		o = cJSON_CreateObject();
		if (!o || !cJSON_AddStringToObject(o, "kind", "DeleteOptions") ||
		    !cJSON_AddStringToObject(o, "apiVersion", "v1") ||
		    (prop && !cJSON_AddStringToObject(o, "propagationPolicy", prop)) ||
		    (uid && (!(pre = cJSON_AddObjectToObject(o, "preconditions")) ||
		             !cJSON_AddStringToObject(pre, "uid", uid)))) {
			cJSON_Delete(o);
			return SL_ENOMEM;
		}
		body = print(o);
		cJSON_Delete(o);
		if (!body)
			return SL_ENOMEM;
	}
	return start(k, SL_KUBE_VERB_DELETE, "DELETE", ref, opts, body, body ? "application/json" : NULL,
	             NULL, cb, payload);
}

int sl_kube_patch(struct sl_kube *k, const struct sl_kube_ref *ref, enum sl_kube_patch_type type,
                  const cJSON *patch, const struct sl_kube_call_opts *opts, sl_kube_cb cb, void *payload)
{
	static const char *const types[] = {
	    [SL_KUBE_PATCH_MERGE] = "application/merge-patch+json",
	    [SL_KUBE_PATCH_JSON] = "application/json-patch+json",
	    [SL_KUBE_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
	};
	char *body;
	if ((unsigned)type >= SL_ARRAY_SIZE(types) || !patch)
		return SL_EINVALID;
	if (type == SL_KUBE_PATCH_JSON ? !cJSON_IsArray(patch) : !cJSON_IsObject(patch))
		return SL_EINVALID;
	body = print(patch);
	if (!body)
		return SL_ENOMEM;
	return start(k, SL_KUBE_VERB_PATCH, "PATCH", ref, opts, body, types[type], NULL, cb, payload);
}

int sl_kube_apply(struct sl_kube *k, const struct sl_kube_ref *ref, const cJSON *obj,
                  const struct sl_kube_call_opts *opts, sl_kube_cb cb, void *payload)
{
	struct sl_kube_ref r;
	char *body;

	if (!opts || !opts->field_manager || !*opts->field_manager || !cJSON_IsObject(obj))
		return SL_EINVALID;
	if (!ref) {
		if (sl_kube_ref_from_obj(obj, &r) < 0)
			return SL_EINVALID;
		ref = &r;
	}
	/* JSON is YAML: the apply body needs no YAML encoder */
	body = print(obj);
	if (!body)
		return SL_ENOMEM;
	return start(k, SL_KUBE_VERB_APPLY, "PATCH", ref, opts, body, "application/apply-patch+yaml", NULL,
	             cb, payload);
}
