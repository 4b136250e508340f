/* Informer sets: one informer per watched namespace (one for all when no
 * namespace is given), for every kind the controller watches; and the
 * transform that keeps cached objects small. Used by class.c and
 * observe.c. */
#pragma once

#include "sluice/kube.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct sl_controller__ctx;

struct sl_controller__iset {
	const struct sl_controller__ctx *ctx; /* its namespaces; set by start */
	size_t n;
	struct sl_kube_informer **inf;
};

/* Starts one informer per namespace of ctx, from base with its namespace
 * set; handlers get payload. On failure the set is left empty. */
int sl_controller__iset_start(struct sl_controller__iset *s, const struct sl_controller__ctx *ctx,
                              const struct sl_kube_informer_opts *base,
                              const struct sl_kube_informer_handlers *h, void *payload, struct sl_error *err);
/* Stops and frees the informers; the set is left empty. */
void sl_controller__iset_free(struct sl_controller__iset *s);
/* The cached object ns/name, or NULL (also for a namespace not watched). */
const cJSON *sl_controller__iset_get(const struct sl_controller__iset *s, const char *ns, const char *name);
void sl_controller__iset_foreach(const struct sl_controller__iset *s,
                                 void (*fn)(const cJSON *obj, void *payload), void *payload);
/* Calls fn for each informer of the set. */
void sl_controller__iset_foreach_informer(const struct sl_controller__iset *s,
                                          void (*fn)(const struct sl_kube_informer *inf, void *payload),
                                          void *payload);
/* True once every informer listed (false for an empty set). */
bool sl_controller__iset_synced(const struct sl_controller__iset *s);

/* The paths (sl_manifest_json_keep) of an object's identity and metadata
 * that the controller reads: apiVersion, kind, metadata but managedFields,
 * finalizers and the like; of an owner, who it is and whether it controls. */
#define SL_CONTROLLER__METADATA                                                              \
	"apiVersion", "kind", "metadata.name", "metadata.namespace", "metadata.uid",         \
	    "metadata.resourceVersion", "metadata.generation", "metadata.creationTimestamp", \
	    "metadata.deletionTimestamp", "metadata.labels", "metadata.annotations",         \
	    "metadata.ownerReferences.kind", "metadata.ownerReferences.name",                \
	    "metadata.ownerReferences.uid", "metadata.ownerReferences.controller"

/* An informer transform: keeps SL_CONTROLLER__METADATA, spec and status
 * (streams, templates, classes, BackfillRequests: their config hash covers
 * the whole spec), and drops the last-applied annotation, which nothing
 * here reads. */
void sl_controller__trim(cJSON *obj, void *payload);
/* The error handler of the controller's informers: a list or watch that
 * failed is retried with backoff and the cache kept as it was; the reason
 * (a namespace the identity may no longer read, an unreachable API server)
 * is logged each time. */
void sl_controller__informer_error(const struct sl_error *err, void *payload);
