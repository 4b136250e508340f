/* Informer sets: one informer per watched namespace; see iset.h. */
#include "iset.h"
#include "controller-internal.h"
#include "sluice/manifest-json.h"

#include <string.h>

void sl_controller__iset_free(struct sl_controller__iset *s)
{
	for (size_t i = 0; i < s->n; i++)
		sl_kube_informer_free(s->inf[i]);
	free(s->inf);
	memset(s, 0, sizeof(*s));
}

int sl_controller__iset_start(struct sl_controller__iset *s, const struct sl_controller__ctx *ctx,
                              const struct sl_kube_informer_opts *base,
                              const struct sl_kube_informer_handlers *h, void *payload, struct sl_error *err)
{
	size_t n = ctx->n_ns ? ctx->n_ns : 1;
	int r = 0;

	s->ctx = ctx;
	s->inf = calloc(n, sizeof(*s->inf));
	if (!s->inf)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && r == 0; i++) {
		struct sl_kube_informer_opts o = *base;
		o.ref.ns = ctx->n_ns ? ctx->ns[i] : NULL;
		r = sl_kube_informer_new(ctx->k, &o, h, payload, &s->inf[i], err);
		if (r == 0) {
			s->n++;
			r = sl_kube_informer_start(s->inf[i]);
			if (r < 0)
				sl_error_set(err, r, "starting an informer: %s", sl_strerror(r));
		}
	}
	if (r < 0)
		sl_controller__iset_free(s);
	return r;
}

static struct sl_kube_informer *iset_for(const struct sl_controller__iset *s, const char *ns)
{
	if (!s->n)
		return NULL;
	if (!s->ctx->n_ns)
		return s->inf[0];
	for (size_t i = 0; i < s->n; i++)
		if (sl_streq(s->ctx->ns[i], ns))
			return s->inf[i];
	return NULL;
}

const cJSON *sl_controller__iset_get(const struct sl_controller__iset *s, const char *ns, const char *name)
{
	struct sl_kube_informer *inf = iset_for(s, ns);
	return inf ? sl_kube_informer_get(inf, ns, name) : NULL;
}

void sl_controller__iset_foreach(const struct sl_controller__iset *s,
                                 void (*fn)(const cJSON *obj, void *payload), void *payload)
{
	for (size_t i = 0; i < s->n; i++)
		sl_kube_informer_foreach(s->inf[i], fn, payload);
}

void sl_controller__iset_foreach_informer(const struct sl_controller__iset *s,
                                          void (*fn)(const struct sl_kube_informer *inf, void *payload),
                                          void *payload)
{
	for (size_t i = 0; i < s->n; i++)
		fn(s->inf[i], payload);
}

bool sl_controller__iset_synced(const struct sl_controller__iset *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!sl_kube_informer_has_synced(s->inf[i]))
			return false;
	return s->n > 0;
}

void sl_controller__trim(cJSON *obj, void *payload)
{
	static const char *const paths[] = {SL_CONTROLLER__METADATA, "spec", "status", NULL};

	sl_manifest_json_keep(obj, paths);
	cJSON_DeleteItemFromObjectCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
	                                     "annotations"),
	    "kubectl.kubernetes.io/last-applied-configuration");
}

void sl_controller__informer_error(const struct sl_error *err, void *payload)
{
	sl_warn("%s (the cache is kept; retrying)", err->msg);
}
