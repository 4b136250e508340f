/* The observing side of the controller (observe.c): the informers on
 * StreamingJobTemplates, BackfillRequests, Jobs and CronJobs, the indexes
 * kept beside them (BackfillRequests by stream, the last state of deleted
 * Jobs), the write-back hook, and the observation of one stream that
 * decide() is given. Streams and their classes are read from class.h. */
#pragma once

#include "controller-internal.h"
#include "sluice/controller.h"
#include "sluice/stream.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct sl_controller__classes;
struct sl_controller__class;
struct sl_controller__observe;
struct sl_kube_informer;

/* cs (borrowed) is read to match templates and BackfillRequests to
 * streams. */
int sl_controller__observe_new(const struct sl_controller__ctx *ctx, const struct sl_controller__classes *cs,
                               struct sl_controller__observe **ret);
int sl_controller__observe_start(struct sl_controller__observe *o, struct sl_error *err);
void sl_controller__observe_stop(struct sl_controller__observe *o);
void sl_controller__observe_free(struct sl_controller__observe *o); /* accepts NULL */
/* Templates, BackfillRequests, Jobs and CronJobs are listed: only then is a
 * stream decided on (a partial view would report a missing template or
 * create a Job that exists). */
bool sl_controller__observe_synced(const struct sl_controller__observe *o);
/* Calls fn for each informer of templates, BackfillRequests, Jobs and
 * CronJobs. */
void sl_controller__observe_foreach_informer(const struct sl_controller__observe *o,
                                             void (*fn)(const struct sl_kube_informer *inf, void *payload),
                                             void *payload);
void sl_controller__observe_set_writeback(struct sl_controller__observe *o, sl_controller_writeback_fn fn,
                                          void *payload);

/* The cached object of what (a Job, CronJob or BackfillRequest ns/name, or
 * a stream ns/name of kind), or NULL. */
const cJSON *sl_controller__observe_get(const struct sl_controller__observe *o, enum sl_controller__what what,
                                        const char *kind, const char *ns, const char *name);

/* Calls fn for every cached BackfillRequest whose spec.streamId is name in
 * namespace ns (of any StreamClass). */
void sl_controller__observe_foreach_backfill(const struct sl_controller__observe *o, const char *ns,
                                             const char *name, void (*fn)(const cJSON *b, void *payload),
                                             void *payload);

/* What is observed about one stream. Everything it points to is borrowed
 * from the caches: valid until the loop runs again. */
struct sl_controller__observation {
	struct sl_stream_observed in; /* what decide() is given */
	/* Pending BackfillRequests for the stream's name that name another
	 * StreamClass: not run; each is given once per resourceVersion, for the
	 * caller to tell its owner why. */
	const cJSON **mismatched;
	size_t n_mismatched;
	const cJSON **backfills; /* owned storage of in.backfills */
};

/* Gathers the observation of stream ns/name (the cached stream, of class
 * cl) as of now. 0 or SL_ENOMEM; free it with observation_free. */
int sl_controller__observe(struct sl_controller__observe *o, const struct sl_controller__class *cl,
                           const char *ns, const char *name, const cJSON *stream,
                           struct sl_controller__observation *ret);
void sl_controller__observation_free(struct sl_controller__observation *obs);
/* Stream ns/name is gone: what was kept for it (its deleted Jobs) goes. */
void sl_controller__observe_forget(struct sl_controller__observe *o, const char *ns, const char *name);
/* How many deleted Jobs and BackfillRequests told about are kept. */
size_t sl_controller__observe_remembered(const struct sl_controller__observe *o);
