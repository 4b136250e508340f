/* The controller's work queue: deduplicated keys, never one key twice at
 * once, per-key exponential backoff and delayed adds on loop timers. */
#include "sluice/loop-workqueue.h"
#include "sluice/base.h"
#include "sluice/base-map.h"

#include <assert.h>
#include <string.h>

struct wq_ent {
	struct sl_loop_workqueue *wq;
	char *key;
	bool queued;     /* in the ready list */
	bool processing; /* handed out, done() not called yet */
	bool dirty;      /* added while processing: queue again on done() */
	unsigned failures;
	struct sl_loop_timer *timer; /* delayed add, or NULL */
	uint64_t due;                /* its deadline when armed */
	struct wq_ent *next;         /* ready list */
};

struct sl_loop_workqueue {
	struct sl_loop *loop;
	uint64_t min_ms, max_ms;
	struct sl_map ents;
	struct wq_ent *head, *tail;
	size_t nready, nprocessing, ndelayed;
	struct sl_loop_timer *notify; /* fires ready() on the next round */
	void (*ready)(struct sl_loop_workqueue *wq, void *payload);
	void *payload;
};

static void notify_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct sl_loop_workqueue *wq = payload;
	if (wq->ready && wq->nready)
		wq->ready(wq, wq->payload);
}

int sl_loop_workqueue_new(struct sl_loop *loop, const struct sl_loop_workqueue_opts *opts,
                          void (*ready)(struct sl_loop_workqueue *wq, void *payload), void *payload,
                          struct sl_loop_workqueue **ret)
{
	struct sl_loop_workqueue *wq = calloc(1, sizeof(*wq));
	int r;

	if (!wq)
		return SL_ENOMEM;
	wq->loop = loop;
	wq->min_ms = opts && opts->backoff_min_ms ? opts->backoff_min_ms : 5;
	wq->max_ms = opts && opts->backoff_max_ms ? opts->backoff_max_ms : 1000 * 1000;
	wq->ready = ready;
	wq->payload = payload;
	sl_map_init(&wq->ents);
	r = sl_loop_timer_new(loop, notify_fire, wq, &wq->notify);
	if (r < 0) {
		free(wq);
		return r;
	}
	*ret = wq;
	return 0;
}

static void ent_free(void *p)
{
	struct wq_ent *e = p;
	if (!e)
		return;
	sl_loop_timer_free(e->timer);
	free(e->key);
	free(e);
}

void sl_loop_workqueue_free(struct sl_loop_workqueue *wq)
{
	if (!wq)
		return;
	sl_map_free(&wq->ents, ent_free);
	sl_loop_timer_free(wq->notify);
	free(wq);
}

static struct wq_ent *ent_get(struct sl_loop_workqueue *wq, const char *key, bool create)
{
	struct wq_ent *e = sl_map_get(&wq->ents, key);
	if (e || !create)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = sl_strdup(key)) || sl_map_put(&wq->ents, key, e, NULL) < 0) {
		if (e)
			free(e->key);
		free(e);
		return NULL;
	}
	e->wq = wq;
	return e;
}

/* An entry with nothing left to remember goes away, so memory follows the
 * number of live keys, not the number ever seen. */
static void ent_gc(struct sl_loop_workqueue *wq, struct wq_ent *e)
{
	if (e->queued || e->processing || e->failures || (e->timer && sl_loop_timer_armed(e->timer)))
		return;
	assert(!e->dirty && sl_map_get(&wq->ents, e->key) == e);
	sl_map_del(&wq->ents, e->key);
	ent_free(e);
}

static void push_ready(struct sl_loop_workqueue *wq, struct wq_ent *e)
{
	/* in the ready list once at most, and never while handed out */
	assert(!e->queued && !e->processing && !e->dirty);
	e->queued = true;
	e->next = NULL;
	if (wq->tail)
		wq->tail->next = e;
	else
		wq->head = e;
	wq->tail = e;
	if (wq->nready++ == 0 && wq->ready)
		sl_loop_timer_arm(wq->notify, 0);
}

int sl_loop_workqueue_add(struct sl_loop_workqueue *wq, const char *key)
{
	struct wq_ent *e = ent_get(wq, key, true);
	if (!e)
		return SL_ENOMEM;
	if (e->queued) {
		assert(!e->processing);
		return 0;
	}
	if (e->processing) {
		e->dirty = true;
		return 0;
	}
	push_ready(wq, e);
	return 0;
}

static void delayed_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct wq_ent *e = payload;
	struct sl_loop_workqueue *wq = e->wq;

	assert(wq->ndelayed > 0);
	wq->ndelayed--;
	if (e->queued)
		return;
	if (e->processing) {
		e->dirty = true;
		return;
	}
	push_ready(wq, e);
}

int sl_loop_workqueue_add_after(struct sl_loop_workqueue *wq, const char *key, uint64_t delay_ms)
{
	struct wq_ent *e;
	uint64_t due;
	int r;

	if (delay_ms == 0)
		return sl_loop_workqueue_add(wq, key);
	e = ent_get(wq, key, true);
	if (!e)
		return SL_ENOMEM;
	due = sl_now_ms() + delay_ms;
	if (!e->timer) {
		r = sl_loop_timer_new(wq->loop, delayed_fire, e, &e->timer);
		if (r < 0) {
			ent_gc(wq, e);
			return r;
		}
	}
	if (sl_loop_timer_armed(e->timer)) {
		if (e->due <= due)
			return 0;
	} else
		wq->ndelayed++;
	e->due = due;
	sl_loop_timer_arm_at(e->timer, due);
	return 0;
}

static uint64_t backoff(const struct sl_loop_workqueue *wq, unsigned failures)
{
	uint64_t d = wq->min_ms;
	for (unsigned i = 0; i < failures && d < wq->max_ms; i++)
		d *= 2;
	return SL_MIN(d, wq->max_ms);
}

uint64_t sl_loop_workqueue_backoff_ms(const struct sl_loop_workqueue *wq, const char *key)
{
	const struct wq_ent *e = sl_map_get(&wq->ents, key);
	return backoff(wq, e ? e->failures : 0);
}

int sl_loop_workqueue_add_rate_limited(struct sl_loop_workqueue *wq, const char *key)
{
	struct wq_ent *e = ent_get(wq, key, true);
	uint64_t d;

	if (!e)
		return SL_ENOMEM;
	d = backoff(wq, e->failures);
	if (e->failures < 64)
		e->failures++;
	return sl_loop_workqueue_add_after(wq, key, d);
}

void sl_loop_workqueue_forget(struct sl_loop_workqueue *wq, const char *key)
{
	struct wq_ent *e = sl_map_get(&wq->ents, key);
	if (!e)
		return;
	e->failures = 0;
	ent_gc(wq, e);
}

unsigned sl_loop_workqueue_requeues(const struct sl_loop_workqueue *wq, const char *key)
{
	const struct wq_ent *e = sl_map_get(&wq->ents, key);
	return e ? e->failures : 0;
}

const char *sl_loop_workqueue_get(struct sl_loop_workqueue *wq)
{
	struct wq_ent *e = wq->head;
	if (!e)
		return NULL;
	assert(e->queued && !e->processing && wq->nready > 0);
	wq->head = e->next;
	if (!wq->head)
		wq->tail = NULL;
	wq->nready--;
	e->next = NULL;
	e->queued = false;
	e->processing = true;
	wq->nprocessing++;
	return e->key;
}

void sl_loop_workqueue_done(struct sl_loop_workqueue *wq, const char *key)
{
	struct wq_ent *e = sl_map_get(&wq->ents, key);
	if (!e || !e->processing)
		return;
	assert(!e->queued && wq->nprocessing > 0);
	e->processing = false;
	wq->nprocessing--;
	if (e->dirty) {
		e->dirty = false;
		push_ready(wq, e);
		return;
	}
	ent_gc(wq, e);
}

size_t sl_loop_workqueue_len(const struct sl_loop_workqueue *wq)
{
	return wq->nready;
}
size_t sl_loop_workqueue_processing(const struct sl_loop_workqueue *wq)
{
	return wq->nprocessing;
}
size_t sl_loop_workqueue_delayed(const struct sl_loop_workqueue *wq)
{
	return wq->ndelayed;
}
