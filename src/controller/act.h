/* The acting side of the controller (act.c): performs a decision's actions
 * one after the other, and keeps the expectations of its own writes (a
 * stream is not decided on again until the caches show them, or
 * expectation_wait_ms passed). */
#pragma once

#include "controller-internal.h"
#include "sluice/stream.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_controller__observe;
struct sl_controller__move;
struct sl_controller__act;
struct sl_loop_workqueue;

/* o (borrowed) is read for the cached state of what a write touched; a
 * create that finds its object outside this shard's caches is handed to mv
 * (borrowed); keys are requeued on wq (borrowed). */
int sl_controller__act_new(const struct sl_controller__ctx *ctx, const struct sl_controller__observe *o,
                           struct sl_controller__move *mv, struct sl_loop_workqueue *wq,
                           uint64_t expectation_wait_ms, struct sl_controller__act **ret);
/* Writes in flight are detached (their callbacks free them, reporting
 * nothing). Accepts NULL. */
void sl_controller__act_free(struct sl_controller__act *a);

/* ---- expectations ------------------------------------------------------------- */

/* How long stream key still waits for its own writes to show (0: it does
 * not; expectations past their time are dropped). */
uint64_t sl_controller__act_wait_ms(struct sl_controller__act *a, const char *key);
/* Object obj of what, of stream key, was seen (gone: deleted): the
 * expectations it meets are dropped. */
void sl_controller__act_seen(struct sl_controller__act *a, const char *key, enum sl_controller__what what,
                             const cJSON *obj, bool gone);
/* Stream key is gone: every expectation of it, and its failed write, are
 * dropped. */
void sl_controller__act_forget(struct sl_controller__act *a, const char *key);
/* How many streams have expectations or a failed write kept. */
size_t sl_controller__act_remembered(const struct sl_controller__act *a);

/* ---- failed writes ------------------------------------------------------------ */

/* Why the last write for stream key failed ("<action> <object> failed:
 * <reason>"), or NULL; owned by a, valid until the next decision of key. */
const char *sl_controller__act_error(const struct sl_controller__act *a, const char *key);
/* Drops it (a decision of key went through); true when there was one. */
bool sl_controller__act_clear_error(struct sl_controller__act *a, const char *key);

/* ---- the executor ----------------------------------------------------------- */

/* The stream a decision is about. Strings are copied. */
struct sl_controller__target {
	const char *key; /* its work-queue key */
	const char *kind, *ns, *name;
	const char *api_version, *plural; /* of its kind, as served */
	const cJSON *stream;              /* as observed, for Events about it */
	uint64_t started_us;              /* when its reconcile began, handed back to done */
};

/* Performs the actions of d (taken: d is left empty) for t, in order; then
 * sl_controller__done(key, result, started_us), possibly before this returns. 0, or
 * SL_ENOMEM with d untouched and nothing done. */
int sl_controller__act_run(struct sl_controller__act *a, const struct sl_controller__target *t,
                           struct sl_stream_decision *d);
/* Tells the owner of BackfillRequest b (a log line and a Warning Event)
 * that stream, of StreamClass class_name, does not run it. */
void sl_controller__act_warn_mismatch(struct sl_controller__act *a, const cJSON *b, const cJSON *stream,
                                      const char *class_name);
