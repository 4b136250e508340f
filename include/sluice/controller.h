/* controller: the stream operator. Informers on StreamClasses, the stream
 * kinds they name, StreamingJobTemplates, BackfillRequests and sluice's Jobs
 * feed one work queue keyed by stream; each key is reconciled by calling
 * sl_stream_decide() on what the caches hold and performing its actions.
 * Everything here runs on the loop thread. */
#pragma once

#include "sluice/arcane.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/base.h"
#include "sluice/kube.h"
#include "sluice/loop.h"

struct sl_controller;

struct sl_controller_opts {
	/* Namespaces to watch for streams, templates, BackfillRequests and
	 * Jobs; NULL-terminated; NULL or empty: every namespace. Borrowed
	 * during sl_controller_new (copied). */
	const char *const *namespaces;
	/* The shard this controller handles (--shard): streams labelled
	 * sluice.dev/shard=<shard> and their Jobs, CronJobs and
	 * BackfillRequests labelled alike, selected by the API server; it
	 * writes as field manager "sluice-controller/<shard>". NULL: the
	 * default shard, the objects without that label, written as
	 * "sluice-controller". StreamClasses and templates are read whatever
	 * their labels; a StreamClass's status is written by its shard only.
	 * Copied; checked with sl_arcane_shard_check. */
	const char *shard;
	unsigned workers;             /* keys reconciled at once; 0: 32 */
	uint64_t class_retry_min_ms;  /* kind not found: re-check discovery; 0: 1000 */
	uint64_t class_retry_max_ms;  /* 0: 30000 */
	uint64_t expectation_wait_ms; /* wait for our own writes to show in the caches; 0: 10000 */
};

/* A completion of a BackfillRequest that came from a source (it has the
 * annotation sluice.dev/path). Strings are valid during the call only. */
struct sl_controller_completion {
	const char *source; /* annotation sluice.dev/source ("" when absent) */
	const char *path;   /* annotation sluice.dev/path */
	const char *ns;
	const char *name;
};

/* Called on the loop for every BackfillRequest with sluice.dev/path seen
 * completed: when it changes to completed while sluice runs, and once for
 * each already-completed one in the first list after start. So a completion
 * is delivered at least once across crashes and restarts; the receiver
 * (the source's write-back) must be idempotent. Completions of every shard
 * are delivered (the requests sync applied, labelled
 * app.kubernetes.io/managed-by=sluice, watched on their own), since the
 * process that syncs a source need not be the shard that ran its
 * backfills. */
typedef void (*sl_controller_writeback_fn)(const struct sl_controller_completion *c, void *payload);

/* Plain counters for /metrics (loop thread). */
enum sl_controller_result {
	SL_CONTROLLER_OK,       /* reconciled; every action done */
	SL_CONTROLLER_NOOP,     /* reconciled; nothing to do */
	SL_CONTROLLER_WAIT,     /* skipped: waiting for our own writes to show */
	SL_CONTROLLER_CONFLICT, /* a write conflicted: requeued */
	SL_CONTROLLER_ERROR,    /* a write or decide() failed: requeued with backoff */
	SL_CONTROLLER_RESULT__MAX
};

enum sl_controller_phase {
	SL_CONTROLLER_PHASE_NONE, /* no status.phase yet */
	SL_CONTROLLER_PHASE_PENDING,
	SL_CONTROLLER_PHASE_BACKFILLING,
	SL_CONTROLLER_PHASE_RUNNING,
	SL_CONTROLLER_PHASE_SUSPENDED,
	SL_CONTROLLER_PHASE_FAILED,
	SL_CONTROLLER_PHASE_SCHEDULED,
	SL_CONTROLLER_PHASE__MAX
};

/* The Jobs the controller creates. */
enum sl_controller_job_type {
	SL_CONTROLLER_JOB_STREAMING,
	SL_CONTROLLER_JOB_BACKFILL,
	SL_CONTROLLER_JOB__MAX
};

/* Upper bounds, in seconds, of the buckets of the reconcile durations. */
#define SL_CONTROLLER_RECONCILE_BUCKETS 12
extern const double sl_controller_reconcile_buckets[SL_CONTROLLER_RECONCILE_BUCKETS];

struct sl_controller_metrics {
	uint64_t reconciles[SL_CONTROLLER_RESULT__MAX];
	/* Reconcile durations, from taking the key off the queue to the answer
	 * of its last write: counts per bucket of sl_controller_reconcile_buckets
	 * (not cumulative; the last counts those above every bound) and their
	 * sum in seconds. */
	uint64_t reconcile_buckets[SL_CONTROLLER_RECONCILE_BUCKETS + 1];
	double reconcile_seconds;
	uint64_t actions;    /* writes attempted (events and requeues not counted) */
	uint64_t writes_ok;  /* writes that succeeded (AlreadyExists/NotFound included) */
	uint64_t events;     /* Events emitted */
	uint64_t writebacks; /* write-back hook calls */
	/* Jobs created (answered 201; AlreadyExists not counted), and
	 * BackfillRequests this controller marked completed. */
	uint64_t jobs_created[SL_CONTROLLER_JOB__MAX];
	uint64_t backfills_completed;
	size_t queue_depth;   /* ready keys in the work queue */
	size_t queue_delayed; /* keys waiting on a timer */
	size_t in_flight;     /* keys being reconciled */
	/* What is kept beside the caches, by stream or object: the last states
	 * of deleted Jobs, expectations of writes, failed writes, requests told
	 * about, streams held in a handover. Falls back when streams go. */
	size_t remembered;
	size_t classes, classes_ready;
	/* streams by class and phase: sl_controller_class_metrics */
};

/* The streams of one StreamClass, for /metrics. */
struct sl_controller_class_metrics {
	const char *name; /* of the StreamClass; valid during the call */
	bool ready;       /* watching its kind, and its streams listed */
	size_t streams_by_phase[SL_CONTROLLER_PHASE__MAX];
	/* Of the streams in phase Backfilling, the earliest start of the
	 * backfill it runs (wall clock, epoch seconds): the creation of its
	 * backfill Job, or, before that Job exists, of the BackfillRequest its
	 * status names. 0 when none is backfilling (or none has a start yet). */
	int64_t backfill_oldest_start;
};

/* Creates the controller on loop with client k (both borrowed; they must
 * outlive it). opts may be NULL. Nothing is watched until start. */
int sl_controller_new(struct sl_loop *loop, struct sl_kube *k, const struct sl_controller_opts *opts,
                      struct sl_controller **ret, struct sl_error *err);
/* Starts the informers. */
int sl_controller_start(struct sl_controller *c, struct sl_error *err);
/* Stops taking work: the informers stop, no new key is handed out, writes in
 * flight go on. done (may be NULL) is called on the loop once nothing is in
 * flight any more (at once when nothing is). */
void sl_controller_stop(struct sl_controller *c, void (*done)(void *payload), void *payload);
/* Writes still in flight. */
size_t sl_controller_in_flight(const struct sl_controller *c);
void sl_controller_free(struct sl_controller *c); /* accepts NULL */

/* Registers the write-back hook (fn NULL removes it); before start, for
 * the completions to be watched. */
void sl_controller_set_writeback_hook(struct sl_controller *c, sl_controller_writeback_fn fn, void *payload);

/* True once the class informer and every shared informer have synced (for
 * /readyz). */
bool sl_controller_synced(const struct sl_controller *c);

/* Calls fn for every informer the controller runs: the StreamClasses', the
 * streams' of each class, and those of templates, BackfillRequests, Jobs and
 * CronJobs (one per watched namespace), to inspect their caches. */
void sl_controller_foreach_informer(const struct sl_controller *c,
                                    void (*fn)(const struct sl_kube_informer *inf, void *payload),
                                    void *payload);

/* Fills *ret with the current counters (gauges computed now). */
void sl_controller_metrics(const struct sl_controller *c, struct sl_controller_metrics *ret);
/* Calls fn for every StreamClass, in no particular order. */
void sl_controller_class_metrics(const struct sl_controller *c,
                                 void (*fn)(const struct sl_controller_class_metrics *m, void *payload),
                                 void *payload);
const char *sl_controller_result_name(enum sl_controller_result r);
const char *sl_controller_job_type_name(enum sl_controller_job_type t);
const char *sl_controller_phase_name(enum sl_controller_phase p);
