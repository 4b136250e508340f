/* workqueue: the controller's queue of keys ("namespace/name"), on the loop.
 * A key is queued at most once; a key handed out is not handed out again
 * until sl_loop_workqueue_done (added meanwhile, it runs again afterwards); per-key
 * exponential backoff (5 ms doubling to 1000 s) until sl_loop_workqueue_forget;
 * delayed adds on loop timers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/loop.h"

struct sl_loop_workqueue;

struct sl_loop_workqueue_opts {
	uint64_t backoff_min_ms; /* 0: 5 */
	uint64_t backoff_max_ms; /* 0: 1000000 */
};

/* opts may be NULL. ready (may be NULL) is called on the loop, deferred, when
 * keys become available to sl_loop_workqueue_get after the queue was empty. */
int sl_loop_workqueue_new(struct sl_loop *loop, const struct sl_loop_workqueue_opts *opts,
                          void (*ready)(struct sl_loop_workqueue *wq, void *payload), void *payload,
                          struct sl_loop_workqueue **ret);
void sl_loop_workqueue_free(struct sl_loop_workqueue *wq); /* accepts NULL */

/* Queues key (copied) unless it is already queued; a key being processed
 * is marked to run again after sl_loop_workqueue_done. */
int sl_loop_workqueue_add(struct sl_loop_workqueue *wq, const char *key);
/* Adds key after delay_ms (an earlier pending delayed add wins). */
int sl_loop_workqueue_add_after(struct sl_loop_workqueue *wq, const char *key, uint64_t delay_ms);
/* Adds key after its backoff (5 ms, 10 ms, ... 1000 s) and counts a failure. */
int sl_loop_workqueue_add_rate_limited(struct sl_loop_workqueue *wq, const char *key);
/* Clears key's failure count (call after a success). */
void sl_loop_workqueue_forget(struct sl_loop_workqueue *wq, const char *key);
/* Failures counted for key since the last forget. */
unsigned sl_loop_workqueue_requeues(const struct sl_loop_workqueue *wq, const char *key);
/* The backoff the next sl_loop_workqueue_add_rate_limited would use, in ms. */
uint64_t sl_loop_workqueue_backoff_ms(const struct sl_loop_workqueue *wq, const char *key);

/* The next key to process, or NULL when none is ready. The string is owned
 * by the queue and stays valid until sl_loop_workqueue_done(wq, key). */
const char *sl_loop_workqueue_get(struct sl_loop_workqueue *wq);
void sl_loop_workqueue_done(struct sl_loop_workqueue *wq, const char *key);

size_t sl_loop_workqueue_len(const struct sl_loop_workqueue *wq);        /* ready keys */
size_t sl_loop_workqueue_processing(const struct sl_loop_workqueue *wq); /* handed out, not done */
size_t sl_loop_workqueue_delayed(const struct sl_loop_workqueue *wq);    /* waiting on a timer */
