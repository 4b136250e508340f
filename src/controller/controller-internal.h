/* What every file of the controller shares: the context controller.c lends
 * its seams, and the few upcalls into controller.c they may make.
 *
 * The controller is split observe -> decide -> act:
 *   class.c    the StreamClass sub-controller (class.h)
 *   observe.c  the shared informers, their indexes, the observation of a
 *              stream for decide() (observe.h)
 *   act.c      the executor of a decision, and the expectations of its own
 *              writes (act.h)
 *   move.c     streams that change shards: handover and adoption (move.h)
 *   controller.c  lifecycle, the work queue, reconcile, metrics, wiring
 * and iset.c, the informer sets class.c and observe.c keep (iset.h).
 * controller.c calls into the seams; observe.c reads class.c, act.c and
 * move.c read observe.c, act.c hands move.c the creates that found their
 * object outside the caches; nothing else calls sideways. The seams call controller.c only
 * through the upcalls below. This header includes no other internal one. */
#pragma once

#include "sluice/controller.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest work-queue key ("Kind/namespace/name") and object id. */
#define SL_CONTROLLER__KEY_MAX 400

/* Lent by controller.c to every seam at creation; it outlives them. */
struct sl_controller__ctx {
	struct sl_controller *c; /* for the upcalls below, nothing else */
	struct sl_loop *loop;
	struct sl_kube *k;
	char *const *ns; /* watched namespaces; n_ns 0: every namespace */
	size_t n_ns;
	const char *shard;                     /* NULL: the default shard */
	const char *shard_selector;            /* "sluice.dev/shard=S" or "!sluice.dev/shard" */
	const char *field_manager;             /* of every write */
	struct sl_controller_metrics *metrics; /* the counters the seams bump */
};

/* The objects a stream waits to see its own writes on, by the letter that
 * starts their ids ("J/ns/name"). */
enum sl_controller__what {
	SL_CONTROLLER__STREAM = 'S',
	SL_CONTROLLER__JOB = 'J',
	SL_CONTROLLER__CRONJOB = 'C',
	SL_CONTROLLER__BACKFILL = 'B',
};

/* ---- upcalls into controller.c ------------------------------------------------ */

/* Queues stream kind/ns/name (its class or a template changed). NULLs are
 * ignored. (class.c, observe.c) */
void sl_controller__enqueue(struct sl_controller *c, const char *kind, const char *ns, const char *name);
/* Object obj, of what, that belongs to stream kind/ns/name changed (gone:
 * deleted): the expectations it meets are dropped and the stream queued.
 * (class.c, observe.c) */
void sl_controller__changed(struct sl_controller *c, const char *kind, const char *ns, const char *name,
                            enum sl_controller__what what, const cJSON *obj, bool gone);
/* Stream kind/ns/name was deleted: it waits for nothing any more and is
 * queued (its reconcile forgets it). (class.c) */
void sl_controller__stream_deleted(struct sl_controller *c, const char *kind, const char *ns,
                                   const char *name);
/* Stream obj of kind, of StreamClass class_name, appeared after the first
 * list with a status: it comes from another shard (its label changed), and
 * what it had there is claimed before it is decided on. (class.c) */
void sl_controller__stream_arrived(struct sl_controller *c, const char *kind, const char *class_name,
                                   const cJSON *obj);
/* The shared caches may have synced: hand out queued keys. (observe.c) */
void sl_controller__pump(struct sl_controller *c);
/* The reconcile of key, handed to act.c, is over with result res; it began
 * at started_us (sl_now_us()). (act.c) */
void sl_controller__done(struct sl_controller *c, const char *key, enum sl_controller_result res,
                         uint64_t started_us);
