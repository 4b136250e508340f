/* The epoll loop: fd watches, one timerfd behind a min-heap of timers,
 * signalfd and deferred calls. */
#include "sluice/loop.h"
#include "sluice/base.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct watch {
	int fd;
	sl_io_fn fn;
	void *payload;
	bool dead;
	struct watch *next;
};

struct sl_loop_timer {
	struct sl_loop *loop;
	sl_loop_timer_fn fn;
	void *payload;
	uint64_t deadline;
	size_t heap_idx; /* SIZE_MAX when disarmed */
	uint64_t seq;
};

struct defer {
	sl_defer_fn fn;
	void *payload;
	struct defer *next;
};

struct sl_loop {
	int epfd;
	int tfd;
	int sigfd;
	sl_signal_fn sigfn;
	void *sigpayload;
	struct watch *watches;
	struct sl_loop_timer **heap;
	size_t nheap, capheap;
	uint64_t armed_deadline;
	uint64_t seq;
	struct defer *defer_head, *defer_tail;
	bool quit;
	int quit_code;
	unsigned dispatch_depth;
};

/* Tags distinguishing internal fds in epoll data. */
#define TAG_TIMER  ((void *)1)
#define TAG_SIGNAL ((void *)2)

int sl_loop_new(struct sl_loop **ret)
{
	struct sl_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = {.events = EPOLLIN};

	if (!l)
		return SL_ENOMEM;
	l->sigfd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->epfd < 0 || l->tfd < 0)
		goto fail;
	ev.data.ptr = TAG_TIMER;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev) < 0)
		goto fail;
	*ret = l;
	return 0;
fail:
	sl_loop_free(l);
	return SL_EIO;
}

void sl_loop_free(struct sl_loop *l)
{
	if (!l)
		return;
	for (struct watch *w = l->watches, *n; w; w = n) {
		n = w->next;
		free(w);
	}
	for (struct defer *d = l->defer_head, *n; d; d = n) {
		n = d->next;
		free(d);
	}
	for (size_t i = 0; i < l->nheap; i++)
		l->heap[i]->heap_idx = SIZE_MAX;
	free(l->heap);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	free(l);
}

void sl_loop_quit(struct sl_loop *l, int code)
{
	l->quit = true;
	l->quit_code = code;
}

bool sl_loop_quitting(struct sl_loop *l)
{
	return l->quit;
}

/* ---- fd watches ---------------------------------------------------------- */

static struct watch *find_watch(struct sl_loop *l, int fd)
{
	for (struct watch *w = l->watches; w; w = w->next)
		if (w->fd == fd && !w->dead)
			return w;
	return NULL;
}

int sl_loop_add_fd(struct sl_loop *l, int fd, uint32_t events, sl_io_fn fn, void *payload)
{
	struct watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = {.events = events};

	if (!w)
		return SL_ENOMEM;
	w->fd = fd;
	w->fn = fn;
	w->payload = payload;
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(w);
		return errno == EEXIST ? SL_EEXIST : SL_EIO;
	}
	w->next = l->watches;
	l->watches = w;
	return 0;
}

int sl_loop_mod_fd(struct sl_loop *l, int fd, uint32_t events)
{
	struct watch *w = find_watch(l, fd);
	struct epoll_event ev = {.events = events};

	if (!w)
		return SL_ENOTFOUND;
	ev.data.ptr = w;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? SL_EIO : 0;
}

int sl_loop_del_fd(struct sl_loop *l, int fd)
{
	struct watch *w = find_watch(l, fd);
	if (!w)
		return SL_ENOTFOUND;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* freed after dispatch: an event for it may already be in this batch */
	w->dead = true;
	return 0;
}

static void reap_watches(struct sl_loop *l)
{
	struct watch **pp = &l->watches;
	while (*pp) {
		struct watch *w = *pp;
		if (w->dead) {
			*pp = w->next;
			free(w);
		} else
			pp = &w->next;
	}
}

/* ---- signals ------------------------------------------------------------ */

int sl_loop_on_signals(struct sl_loop *l, sl_signal_fn fn, void *payload)
{
	sigset_t set;
	struct epoll_event ev = {.events = EPOLLIN};

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return SL_EIO;
	if (l->sigfd < 0) {
		l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
		if (l->sigfd < 0)
			return SL_EIO;
		ev.data.ptr = TAG_SIGNAL;
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sigfd, &ev) < 0)
			return SL_EIO;
	}
	l->sigfn = fn;
	l->sigpayload = payload;
	return 0;
}

/* ---- deferred calls ------------------------------------------------------- */

int sl_loop_defer(struct sl_loop *l, sl_defer_fn fn, void *payload)
{
	struct defer *d = calloc(1, sizeof(*d));
	if (!d)
		return SL_ENOMEM;
	d->fn = fn;
	d->payload = payload;
	if (l->defer_tail)
		l->defer_tail->next = d;
	else
		l->defer_head = d;
	l->defer_tail = d;
	return 0;
}

static void run_defers(struct sl_loop *l)
{
	/* only those queued before this point; new ones wait for the next round */
	struct defer *d = l->defer_head;
	l->defer_head = l->defer_tail = NULL;
	while (d) {
		struct defer *n = d->next;
		d->fn(l, d->payload);
		free(d);
		d = n;
	}
}

/* ---- timers ------------------------------------------------------------- */

static bool before(const struct sl_loop_timer *a, const struct sl_loop_timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_swap(struct sl_loop *l, size_t i, size_t j)
{
	struct sl_loop_timer *t = l->heap[i];

	assert(i < l->nheap && j < l->nheap);
	l->heap[i] = l->heap[j];
	l->heap[j] = t;
	l->heap[i]->heap_idx = i;
	l->heap[j]->heap_idx = j;
}

static void sift_up(struct sl_loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!before(l->heap[i], l->heap[p]))
			break;
		heap_swap(l, i, p);
		i = p;
	}
}

static void sift_down(struct sl_loop *l, size_t i)
{
	for (;;) {
		size_t a = 2 * i + 1, b = a + 1, m = i;
		if (a < l->nheap && before(l->heap[a], l->heap[m]))
			m = a;
		if (b < l->nheap && before(l->heap[b], l->heap[m]))
			m = b;
		if (m == i)
			break;
		heap_swap(l, i, m);
		i = m;
	}
}

static void heap_remove(struct sl_loop *l, struct sl_loop_timer *t)
{
	size_t i = t->heap_idx;
	if (i == SIZE_MAX)
		return;
	/* a timer knows its slot: anything else is a timer of another loop or
	 * one freed while armed */
	assert(i < l->nheap && l->heap[i] == t);
	l->nheap--;
	if (i != l->nheap) {
		l->heap[i] = l->heap[l->nheap];
		l->heap[i]->heap_idx = i;
		sift_down(l, i);
		sift_up(l, i);
	}
	t->heap_idx = SIZE_MAX;
}

static void rearm_timerfd(struct sl_loop *l)
{
	struct itimerspec its = {0};
	uint64_t d;

	if (l->nheap == 0) {
		if (l->armed_deadline) {
			timerfd_settime(l->tfd, 0, &its, NULL);
			l->armed_deadline = 0;
		}
		return;
	}
	assert(l->heap[0]->heap_idx == 0);
	d = l->heap[0]->deadline;
	if (d == l->armed_deadline)
		return;
	if (d == 0)
		d = 1;
	its.it_value.tv_sec = (time_t)(d / 1000);
	its.it_value.tv_nsec = (long)(d % 1000) * 1000000L;
	timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	l->armed_deadline = d;
}

int sl_loop_timer_new(struct sl_loop *l, sl_loop_timer_fn fn, void *payload, struct sl_loop_timer **ret)
{
	struct sl_loop_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return SL_ENOMEM;
	t->loop = l;
	t->fn = fn;
	t->payload = payload;
	t->heap_idx = SIZE_MAX;
	*ret = t;
	return 0;
}

void sl_loop_timer_arm_at(struct sl_loop_timer *t, uint64_t deadline)
{
	struct sl_loop *l = t->loop;

	assert(l);
	heap_remove(l, t);
	assert(t->heap_idx == SIZE_MAX);
	if (SL_GROW(l->heap, l->capheap, l->nheap + 1, 64) < 0)
		abort(); /* a timer that silently never fires is worse */
	t->deadline = deadline;
	t->seq = ++l->seq;
	t->heap_idx = l->nheap;
	l->heap[l->nheap++] = t;
	sift_up(l, t->heap_idx);
	assert(t->heap_idx < l->nheap && l->heap[t->heap_idx] == t);
	rearm_timerfd(l);
}

void sl_loop_timer_arm(struct sl_loop_timer *t, uint64_t ms)
{
	sl_loop_timer_arm_at(t, sl_now_ms() + ms);
}

void sl_loop_timer_disarm(struct sl_loop_timer *t)
{
	if (!t)
		return;
	heap_remove(t->loop, t);
	rearm_timerfd(t->loop);
}

bool sl_loop_timer_armed(const struct sl_loop_timer *t)
{
	return t && t->heap_idx != SIZE_MAX;
}

void sl_loop_timer_free(struct sl_loop_timer *t)
{
	if (!t)
		return;
	sl_loop_timer_disarm(t);
	free(t);
}

static void run_timers(struct sl_loop *l)
{
	uint64_t now = sl_now_ms(), exp;

	while (read(l->tfd, &exp, sizeof(exp)) > 0)
		;
	l->armed_deadline = 0;
	/* fire only what is due now; timers re-armed for "now" run next round */
	while (l->nheap && l->heap[0]->deadline <= now && !l->quit) {
		struct sl_loop_timer *t = l->heap[0];
		heap_remove(l, t);
		/* the earliest deadline is at the root */
		assert(!l->nheap || !before(l->heap[0], t));
		t->fn(l, t, t->payload);
	}
	rearm_timerfd(l);
}

/* ---- dispatch ----------------------------------------------------------- */

static void handle_signal(struct sl_loop *l)
{
	struct signalfd_siginfo si;
	while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (l->sigfn)
			l->sigfn(l, (int)si.ssi_signo, l->sigpayload);
}

int sl_loop_run_once(struct sl_loop *l, int timeout_ms)
{
	struct epoll_event evs[64];
	int n;

	if (l->defer_head)
		timeout_ms = 0;
	n = epoll_wait(l->epfd, evs, (int)SL_ARRAY_SIZE(evs), timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return SL_EIO;
	}
	l->dispatch_depth++;
	for (int i = 0; i < n; i++) {
		void *p = evs[i].data.ptr;
		if (p == TAG_TIMER)
			run_timers(l);
		else if (p == TAG_SIGNAL)
			handle_signal(l);
		else {
			struct watch *w = p;
			if (!w->dead)
				w->fn(l, w->fd, evs[i].events, w->payload);
		}
	}
	run_defers(l);
	l->dispatch_depth--;
	if (!l->dispatch_depth)
		reap_watches(l);
	return 0;
}

int sl_loop_run(struct sl_loop *l)
{
	while (!l->quit) {
		int r = sl_loop_run_once(l, -1);
		if (r < 0)
			return r;
	}
	return l->quit_code;
}
