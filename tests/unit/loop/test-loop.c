/* Unit tests of the event loop: timer order, fd events, deferred calls, the
 * worker thread, signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/base.h"
#include "sluice/loop.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static char order[64];

static void on_timer(struct sl_loop *l, struct sl_timer *t, void *p)
{
	strncat(order, p, sizeof(order) - strlen(order) - 1);
	if (strlen(order) == 3)
		sl_loop_quit(l, 7);
}

static void timers_fire_in_order(void **state)
{
	struct sl_loop *l;
	struct sl_timer *a, *b, *c, *d;
	uint64_t start = sl_now_ms();

	order[0] = '\0';
	assert_int_equal(sl_loop_new(&l), 0);
	sl_timer_new(l, on_timer, "a", &a);
	sl_timer_new(l, on_timer, "b", &b);
	sl_timer_new(l, on_timer, "c", &c);
	sl_timer_new(l, on_timer, "d", &d);
	sl_timer_arm(c, 30);
	sl_timer_arm(a, 10);
	sl_timer_arm(b, 20);
	sl_timer_arm(d, 5);
	sl_timer_disarm(d);
	assert_false(sl_timer_armed(d));
	assert_int_equal(sl_loop_run(l), 7);
	assert_string_equal(order, "abc");
	assert_true(sl_now_ms() - start >= 30);
	sl_timer_free(a);
	sl_timer_free(b);
	sl_timer_free(c);
	sl_timer_free(d);
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
	struct sl_worker *w;
	struct wjob jobs[3] = {{.value = 1}, {.value = 2}, {.value = 3}};

	assert_int_equal(sl_loop_new(&l), 0);
	assert_int_equal(sl_worker_new(l, &w), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sl_worker_submit(w, work, done, &jobs[i]), 0);
	assert_int_equal(sl_worker_pending(w), 3);
	assert_int_equal(sl_loop_run(l), 0);
	assert_int_equal(sl_worker_pending(w), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(jobs[i].value, 2 * (i + 1));
		assert_false(pthread_equal(jobs[i].worker_tid, pthread_self()));
		assert_true(pthread_equal(jobs[i].done_tid, pthread_self()));
	}
	sl_worker_free(w);
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
	kill(getpid(), SIGTERM);
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

static void many_timers(void **state)
{
	struct sl_loop *l;
	struct sl_timer *t[2000];
	order[0] = '\0';
	assert_int_equal(sl_loop_new(&l), 0);
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(sl_timer_new(l, on_timer, "", &t[i]), 0);
		sl_timer_arm(t[i], (uint64_t)(i % 7));
	}
	for (int i = 0; i < 2000; i += 2)
		sl_timer_disarm(t[i]);
	for (int i = 0; i < 50; i++)
		sl_loop_run_once(l, 10);
	for (int i = 0; i < 2000; i++) {
		assert_false(sl_timer_armed(t[i]));
		sl_timer_free(t[i]);
	}
	sl_loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(timers_fire_in_order), cmocka_unit_test(fd_events),
	    cmocka_unit_test(worker_runs_off_loop), cmocka_unit_test(signals_and_defer),
	    cmocka_unit_test(many_timers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
