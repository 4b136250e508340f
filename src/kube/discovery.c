/* Discovery: apiVersion + kind -> resource plural and scope, fetched per
 * group/version on demand and fetched again when a kind is not in it
 * (CRDs appear while sluice runs). Paths and query strings. */
#include "internal.h"

#include <string.h>

struct dwait {
	char *kind;
	sl_kube_discover_cb cb;
	void *payload;
	struct dwait *next;
};

struct gv {
	struct sl_kube *k;
	char *group, *version;
	cJSON *resources; /* APIResourceList.resources, or NULL before the first answer */
	bool fetching;
	struct dwait *waiters;
};

static void gv_free(void *p)
{
	struct gv *g = p;
	if (!g)
		return;
	cJSON_Delete(g->resources);
	free(g->group);
	free(g->version);
	free(g);
}

int sl_kube__resource_from_ref(const struct sl_kube_ref *ref, struct sl_kube_resource *ret)
{
	const char *slash = strchr(ref->api_version, '/');

	memset(ret, 0, sizeof(*ret));
	if ((slash && !sl_snprintf_ok(ret->group, sizeof(ret->group), "%.*s", (int)(slash - ref->api_version),
	                              ref->api_version)) ||
	    !sl_snprintf_ok(ret->version, sizeof(ret->version), "%s", slash ? slash + 1 : ref->api_version) ||
	    !sl_snprintf_ok(ret->plural, sizeof(ret->plural), "%s", ref->resource) ||
	    !sl_snprintf_ok(ret->kind, sizeof(ret->kind), "%s", ref->kind ? ref->kind : ""))
		return SL_ETOOLARGE;
	ret->namespaced = ref->namespaced;
	return 0;
}

void sl_kube__discovery_free(struct sl_kube *k)
{
	sl_map_free(&k->gvs, gv_free);
}

void sl_kube_discover_invalidate(struct sl_kube *k)
{
	for (size_t i = 0; i < k->gvs.nb; i++)
		for (struct sl_map_ent *e = k->gvs.b[i]; e; e = e->next) {
			struct gv *g = e->val;
			if (!g->fetching) {
				cJSON_Delete(g->resources);
				g->resources = NULL;
			}
		}
}

static int split_api_version(const char *av, char *group, size_t gsz, char *version, size_t vsz)
{
	const char *slash = strchr(av, '/');
	if (!*av || (slash && (slash == av || !slash[1] || strchr(slash + 1, '/'))))
		return SL_EINVALID;
	if (slash) {
		if ((size_t)(slash - av) >= gsz || strlen(slash + 1) >= vsz)
			return SL_EINVALID;
		memcpy(group, av, (size_t)(slash - av));
		group[slash - av] = '\0';
		snprintf(version, vsz, "%s", slash + 1);
	} else {
		if (strlen(av) >= vsz)
			return SL_EINVALID;
		group[0] = '\0';
		snprintf(version, vsz, "%s", av);
	}
	return 0;
}

static bool lookup(const struct gv *g, const char *kind, struct sl_kube_resource *ret)
{
	const cJSON *r;
	cJSON_ArrayForEach(r, g->resources)
	{
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(r, "kind");
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(r, "name");
		if (!cJSON_IsString(k) || !cJSON_IsString(n) || strchr(n->valuestring, '/'))
			continue; /* subresources ("jobs/status") share the kind */
		if (strcmp(k->valuestring, kind) != 0)
			continue;
		memset(ret, 0, sizeof(*ret));
		/* a name that does not fit is no resource this client can address */
		if (!sl_snprintf_ok(ret->group, sizeof(ret->group), "%s", g->group) ||
		    !sl_snprintf_ok(ret->version, sizeof(ret->version), "%s", g->version) ||
		    !sl_snprintf_ok(ret->kind, sizeof(ret->kind), "%s", kind) ||
		    !sl_snprintf_ok(ret->plural, sizeof(ret->plural), "%s", n->valuestring))
			return false;
		ret->namespaced = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "namespaced"));
		return true;
	}
	return false;
}

int sl_kube_discover_cached(struct sl_kube *k, const char *api_version, const char *kind,
                            struct sl_kube_resource *ret)
{
	char group[256], version[64], key[330];
	struct gv *g;

	if (!api_version || !kind ||
	    split_api_version(api_version, group, sizeof(group), version, sizeof(version)) < 0)
		return SL_EINVALID;
	snprintf(key, sizeof(key), "%s/%s", group, version);
	g = sl_map_get(&k->gvs, key);
	if (!g || !g->resources || !lookup(g, kind, ret))
		return SL_ENOTFOUND;
	return 0;
}

static void fetched(struct req *unused, struct sl_kube_result *res, void *payload)
{
	struct gv *g = payload;
	struct dwait *w = g->waiters;
	struct sl_error err = {0};

	g->fetching = false;
	g->waiters = NULL;
	if (res->code == 0) {
		cJSON *list = cJSON_DetachItemFromObjectCaseSensitive(res->body, "resources");
		if (cJSON_IsArray(list)) {
			cJSON_Delete(g->resources);
			g->resources = list;
		} else
			cJSON_Delete(list);
	}
	while (w) {
		struct dwait *n = w->next;
		struct sl_kube_resource r;
		int code = res->code;
		if (code == 0 && !lookup(g, w->kind, &r))
			code = SL_ENOTFOUND;
		if (code == SL_ENOTFOUND)
			sl_error_set(&err, code, "kind %s is not served by %s%s%s", w->kind, g->group,
			             g->group[0] ? "/" : "", g->version);
		else if (code)
			err = res->err;
		w->cb(code, code ? NULL : &r, code ? &err : NULL, w->payload);
		free(w->kind);
		free(w);
		w = n;
	}
}

struct hit {
	struct sl_kube_resource r;
	sl_kube_discover_cb cb;
	void *payload;
};

static void hit_fire(void *payload, bool canceled)
{
	struct hit *h = payload;
	struct sl_error err = {0};
	if (canceled) {
		sl_error_set(&err, SL_ECANCELED, "canceled");
		h->cb(SL_ECANCELED, NULL, &err, h->payload);
	} else
		h->cb(0, &h->r, NULL, h->payload);
	free(h);
}

int sl_kube_discover(struct sl_kube *k, const char *api_version, const char *kind, sl_kube_discover_cb cb,
                     void *payload)
{
	char group[256], version[64], key[330];
	struct gv *g;
	struct dwait *w;
	int r;

	if (!api_version || !kind || !*kind ||
	    split_api_version(api_version, group, sizeof(group), version, sizeof(version)) < 0)
		return SL_EINVALID;
	if (k->freeing)
		return SL_ECANCELED;
	snprintf(key, sizeof(key), "%s/%s", group, version);
	g = sl_map_get(&k->gvs, key);
	if (g && !g->fetching && g->resources) {
		struct hit *h = calloc(1, sizeof(*h));
		if (!h)
			return SL_ENOMEM;
		if (lookup(g, kind, &h->r)) {
			h->cb = cb;
			h->payload = payload;
			r = sl_kube__soon(k, hit_fire, h);
			if (r < 0)
				free(h);
			return r;
		}
		free(h);
	}
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g || !(g->group = sl_strdup(group)) || !(g->version = sl_strdup(version)) ||
		    sl_map_put(&k->gvs, key, g, NULL) < 0) {
			gv_free(g);
			return SL_ENOMEM;
		}
		g->k = k;
	}
	w = calloc(1, sizeof(*w));
	if (!w || !(w->kind = sl_strdup(kind))) {
		free(w);
		return SL_ENOMEM;
	}
	w->cb = cb;
	w->payload = payload;
	if (!g->fetching) {
		char path[400];
		struct req_spec s = {
		    .verb = SL_KUBE_VERB_GET, .method = "GET", .path = path, .done = fetched, .payload = g};
		bool fit = group[0] ? sl_snprintf_ok(path, sizeof(path), "/apis/%s/%s", group, version)
		                    : sl_snprintf_ok(path, sizeof(path), "/api/%s", version);
		r = fit ? sl_kube__req_start(k, &s, NULL) : SL_ETOOLARGE;
		if (r < 0) {
			free(w->kind);
			free(w);
			return r;
		}
		g->fetching = true;
	}
	w->next = g->waiters;
	g->waiters = w;
	return 0;
}

/* ---- paths ------------------------------------------------------------------ */

static int escape(struct sl_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
		int r = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		                c == '-' || c == '.' || c == '_' || c == '~'
		            ? sl_buf_append(b, s, 1)
		            : sl_buf_append(b, enc, 3);
		if (r < 0)
			return r;
	}
	return 0;
}

int sl_kube__path(const struct sl_kube_resource *r, const char *ns, const char *name, const char *sub,
                  struct sl_buf *out)
{
	int rc = r->group[0] ? sl_buf_printf(out, "/apis/%s/%s", r->group, r->version)
	                     : sl_buf_printf(out, "/api/%s", r->version);
	if (rc == 0 && r->namespaced && ns && *ns) {
		rc = sl_buf_puts(out, "/namespaces/");
		if (rc == 0)
			rc = escape(out, ns);
	}
	if (rc == 0)
		rc = sl_buf_printf(out, "/%s", r->plural);
	if (rc == 0 && name && *name) {
		rc = sl_buf_puts(out, "/");
		if (rc == 0)
			rc = escape(out, name);
	}
	if (rc == 0 && sub && *sub) {
		rc = sl_buf_puts(out, "/");
		if (rc == 0)
			rc = escape(out, sub);
	}
	return rc;
}

int sl_kube__query(struct sl_buf *b, const char *k, const char *v)
{
	int r = sl_buf_printf(b, "%c%s=", b->data && strchr(b->data, '?') ? '&' : '?', k);
	return r < 0 ? r : escape(b, v);
}
