/* Unit tests of the event loop: timer order, fd events, deferred calls, the
 * worker thread, signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/base.h"
#include "sluice/loop-workqueue.h"
#include "sluice/loop.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static char order[64];

static void on_timer(struct sl_loop *l, struct sl_loop_timer *t, void *p)
{
	strncat(order, p, sizeof(order) - strlen(order) - 1);
	if (strlen(order) == 3)
		sl_loop_quit(l, 7);
}

static void timers_fire_in_order(void **state)
{
	struct sl_loop *l;
	struct sl_loop_timer *a, *b, *c, *d;
	uint64_t start = sl_now_ms();

	order[0] = '\0';
	assert_int_equal(sl_loop_new(&l), 0);
	sl_loop_timer_new(l, on_timer, "a", &a);
	sl_loop_timer_new(l, on_timer, "b", &b);
	sl_loop_timer_new(l, on_timer, "c", &c);
	sl_loop_timer_new(l, on_timer, "d", &d);
	sl_loop_timer_arm(c, 30);
	sl_loop_timer_arm(a, 10);
	sl_loop_timer_arm(b, 20);
	sl_loop_timer_arm(d, 5);
	sl_loop_timer_disarm(d);
	assert_false(sl_loop_timer_armed(d));
	assert_int_equal(sl_loop_run(l), 7);
	assert_string_equal(order, "abc");
	assert_true(sl_now_ms() - start >= 30);
	sl_loop_timer_free(a);
	sl_loop_timer_free(b);
	sl_loop_timer_free(c);
	sl_loop_timer_free(d);
	sl_loop_free(l);
}

static int io_hits;
static void on_read(struct sl_loop *l, int fd, uint32_t ev, void *p)
{
	char c;
	assert_true(ev & EPOLLIN);
	assert_int_equal(read(fd, &c, 1), 1);
	io_hits++;
	sl_loop_del_fd(l, fd);
	sl_loop_quit(l, 0);
}

static void fd_events(void **state)
{
	struct sl_loop *l;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(sl_loop_new(&l), 0);
	assert_int_equal(sl_loop_add_fd(l, p[0], EPOLLIN, on_read, NULL), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(sl_loop_run(l), 0);
	assert_int_equal(io_hits, 1);
	close(p[0]);
	close(p[1]);
	sl_loop_free(l);
}

struct wjob {
	pthread_t worker_tid;
	pthread_t done_tid;
	int value;
};

static void work(void *p)
{
	struct wjob *j = p;
	j->worker_tid = pthread_self();
	usleep(1000);
	j->value *= 2;
}

static int done_count;
static void done(struct sl_loop *l, void *p)
{
	struct wjob *j = p;
	j->done_tid = pthread_self();
	if (++done_count == 3)
		sl_loop_quit(l, 0);
}

static void worker_runs_off_loop(void **state)
{
	struct sl_loop *l;
	struct sl_loop_worker *w;
	struct wjob jobs[3] = {{.value = 1}, {.value = 2}, {.value = 3}};

	assert_int_equal(sl_loop_new(&l), 0);
	assert_int_equal(sl_loop_worker_new(l, &w), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sl_loop_worker_submit(w, work, done, &jobs[i]), 0);
	assert_int_equal(sl_loop_worker_pending(w), 3);
	assert_int_equal(sl_loop_run(l), 0);
	assert_int_equal(sl_loop_worker_pending(w), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(jobs[i].value, 2 * (i + 1));
		assert_false(pthread_equal(jobs[i].worker_tid, pthread_self()));
		assert_true(pthread_equal(jobs[i].done_tid, pthread_self()));
	}
	sl_loop_worker_free(w);
	sl_loop_free(l);
}

static int got_signal;
static void on_signal(struct sl_loop *l, int signo, void *p)
{
	got_signal = signo;
	sl_loop_quit(l, 0);
}

static void on_defer(struct sl_loop *l, void *p)
{
	kill(getpid(), p ? *(int *)p : SIGTERM);
}

static void signals_and_defer(void **state)
{
	struct sl_loop *l;
	assert_int_equal(sl_loop_new(&l), 0);
	assert_int_equal(sl_loop_on_signals(l, on_signal, NULL), 0);
	assert_int_equal(sl_loop_defer(l, on_defer, NULL), 0);
	assert_int_equal(sl_loop_run(l), 0);
	assert_int_equal(got_signal, SIGTERM);
	sl_loop_free(l);
}

/* SIGUSR1 (the caches' digests of `sluice run`) reaches the handler instead
 * of ending the process. */
static void sigusr1_delivered(void **state)
{
	struct sl_loop *l;
	int sig = SIGUSR1;
	got_signal = 0;
	assert_int_equal(sl_loop_new(&l), 0);
	assert_int_equal(sl_loop_on_signals(l, on_signal, NULL), 0);
	assert_int_equal(sl_loop_defer(l, on_defer, &sig), 0);
	assert_int_equal(sl_loop_run(l), 0);
	assert_int_equal(got_signal, SIGUSR1);
	sl_loop_free(l);
}

static void many_timers(void **state)
{
	struct sl_loop *l;
	struct sl_loop_timer *t[2000];
	order[0] = '\0';
	assert_int_equal(sl_loop_new(&l), 0);
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(sl_loop_timer_new(l, on_timer, "", &t[i]), 0);
		sl_loop_timer_arm(t[i], (uint64_t)(i % 7));
	}
	for (int i = 0; i < 2000; i += 2)
		sl_loop_timer_disarm(t[i]);
	for (int i = 0; i < 50; i++)
		sl_loop_run_once(l, 10);
	for (int i = 0; i < 2000; i++) {
		assert_false(sl_loop_timer_armed(t[i]));
		sl_loop_timer_free(t[i]);
	}
	sl_loop_free(l);
}

/* ---- the work queue ---------------------------------------------------------- */

static void wq_dedup_and_processing(void **state)
{
	struct sl_loop *l;
	struct sl_loop_workqueue *wq;
	const char *k;

	assert_int_equal(sl_loop_new(&l), 0);
	assert_int_equal(sl_loop_workqueue_new(l, NULL, NULL, NULL, &wq), 0);
	sl_loop_workqueue_add(wq, "ns/a");
	sl_loop_workqueue_add(wq, "ns/b");
	sl_loop_workqueue_add(wq, "ns/a");
	assert_int_equal(sl_loop_workqueue_len(wq), 2);
	k = sl_loop_workqueue_get(wq);
	assert_string_equal(k, "ns/a");
	/* added while processing: not handed out again until done */
	sl_loop_workqueue_add(wq, "ns/a");
	assert_string_equal(sl_loop_workqueue_get(wq), "ns/b");
	assert_null(sl_loop_workqueue_get(wq));
	assert_int_equal(sl_loop_workqueue_processing(wq), 2);
	sl_loop_workqueue_done(wq, k);
	assert_int_equal(sl_loop_workqueue_len(wq), 1);
	k = sl_loop_workqueue_get(wq);
	assert_string_equal(k, "ns/a");
	sl_loop_workqueue_done(wq, k);
	sl_loop_workqueue_done(wq, "ns/b");
	assert_int_equal(sl_loop_workqueue_len(wq), 0);
	assert_int_equal(sl_loop_workqueue_processing(wq), 0);
	sl_loop_workqueue_free(wq);
	sl_loop_free(l);
}

static void wq_backoff(void **state)
{
	struct sl_loop *l;
	struct sl_loop_workqueue *wq;
	uint64_t want = 5;

	assert_int_equal(sl_loop_new(&l), 0);
	assert_int_equal(sl_loop_workqueue_new(l, NULL, NULL, NULL, &wq), 0);
	for (int i = 0; i < 30; i++) {
		assert_int_equal(sl_loop_workqueue_backoff_ms(wq, "k"), want);
		sl_loop_workqueue_add_rate_limited(wq, "k");
		want = want * 2 > 1000000 ? 1000000 : want * 2;
	}
	assert_int_equal(sl_loop_workqueue_backoff_ms(wq, "k"), 1000000);
	assert_int_equal(sl_loop_workqueue_requeues(wq, "k"), 30);
	sl_loop_workqueue_forget(wq, "k");
	assert_int_equal(sl_loop_workqueue_requeues(wq, "k"), 0);
	assert_int_equal(sl_loop_workqueue_backoff_ms(wq, "k"), 5);
	sl_loop_workqueue_free(wq);
	sl_loop_free(l);
}

static int readies;
static void on_ready(struct sl_loop_workqueue *wq, void *p)
{
	readies++;
}

static void wq_delayed(void **state)
{
	struct sl_loop *l;
	struct sl_loop_workqueue *wq;
	uint64_t start = sl_now_ms();
	const char *k;

	assert_int_equal(sl_loop_new(&l), 0);
	assert_int_equal(sl_loop_workqueue_new(l, NULL, on_ready, NULL, &wq), 0);
	readies = 0;
	/* "late" far enough out that a loaded machine (valgrind, parallel
	 * suites) still sees the two early keys first */
	sl_loop_workqueue_add_after(wq, "late", 1000);
	sl_loop_workqueue_add_after(wq, "soon", 30);
	sl_loop_workqueue_add_after(wq, "soon", 500);   /* the earlier one wins */
	sl_loop_workqueue_add_rate_limited(wq, "fail"); /* 5 ms */
	assert_int_equal(sl_loop_workqueue_delayed(wq), 3);
	assert_null(sl_loop_workqueue_get(wq));
	while (sl_loop_workqueue_len(wq) < 2)
		sl_loop_run_once(l, 1000);
	assert_true(sl_now_ms() - start >= 30);
	assert_true(sl_now_ms() - start < 1000);
	assert_string_equal(sl_loop_workqueue_get(wq), "fail");
	assert_string_equal(sl_loop_workqueue_get(wq), "soon");
	sl_loop_workqueue_done(wq, "soon");
	sl_loop_workqueue_done(wq, "fail");
	while (sl_loop_workqueue_len(wq) < 1)
		sl_loop_run_once(l, 1000);
	assert_true(sl_now_ms() - start >= 1000);
	k = sl_loop_workqueue_get(wq);
	assert_string_equal(k, "late");
	sl_loop_workqueue_done(wq, k);
	sl_loop_run_once(l, 0);
	assert_true(readies >= 2);
	assert_int_equal(sl_loop_workqueue_delayed(wq), 0);
	sl_loop_workqueue_free(wq);
	sl_loop_free(l);
}

/* The loop and the work queue assert their invariants; a build that
 * compiled them out (NDEBUG) would let a broken one corrupt state. */
static void asserts_compiled_in(void **state)
{
#ifdef NDEBUG
	fail_msg("built with NDEBUG: assert() is compiled out");
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(asserts_compiled_in),
	    cmocka_unit_test(timers_fire_in_order),
	    cmocka_unit_test(fd_events),
	    cmocka_unit_test(worker_runs_off_loop),
	    cmocka_unit_test(signals_and_defer),
	    cmocka_unit_test(sigusr1_delivered),
	    cmocka_unit_test(many_timers),
	    cmocka_unit_test(wq_dedup_and_processing),
	    cmocka_unit_test(wq_backoff),
	    cmocka_unit_test(wq_delayed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
