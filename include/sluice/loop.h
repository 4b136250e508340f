/* loop: the single event-loop thread (epoll), timers on one timerfd, signals
 * through signalfd, deferred calls, and a worker thread whose results come
 * back to the loop through an eventfd. All callbacks run on the loop thread
 * except a worker job's work function. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct sl_loop;
struct sl_loop_timer;
struct sl_loop_worker;

/* ---- loop --------------------------------------------------------------- */

int sl_loop_new(struct sl_loop **ret);
void sl_loop_free(struct sl_loop *loop); /* accepts NULL */

/* Runs until sl_loop_quit(); returns the code given to it. */
int sl_loop_run(struct sl_loop *loop);
/* Runs one iteration, waiting at most timeout_ms (-1: until an event). */
int sl_loop_run_once(struct sl_loop *loop, int timeout_ms);
void sl_loop_quit(struct sl_loop *loop, int code);
bool sl_loop_quitting(struct sl_loop *loop);

/* fd watches. events are EPOLLIN/EPOLLOUT/...; fn gets the ready events. */
typedef void (*sl_io_fn)(struct sl_loop *loop, int fd, uint32_t events, void *payload);
int sl_loop_add_fd(struct sl_loop *loop, int fd, uint32_t events, sl_io_fn fn, void *payload);
int sl_loop_mod_fd(struct sl_loop *loop, int fd, uint32_t events);
int sl_loop_del_fd(struct sl_loop *loop, int fd);

/* Signals: SIGINT, SIGTERM, SIGHUP and SIGUSR1 are blocked and delivered to
 * fn. */
typedef void (*sl_signal_fn)(struct sl_loop *loop, int signo, void *payload);
int sl_loop_on_signals(struct sl_loop *loop, sl_signal_fn fn, void *payload);

/* Calls fn once, on the next iteration. */
typedef void (*sl_defer_fn)(struct sl_loop *loop, void *payload);
int sl_loop_defer(struct sl_loop *loop, sl_defer_fn fn, void *payload);

/* ---- timers (one timerfd, a min-heap: cheap to have thousands) ---------- */

typedef void (*sl_loop_timer_fn)(struct sl_loop *loop, struct sl_loop_timer *t, void *payload);
int sl_loop_timer_new(struct sl_loop *loop, sl_loop_timer_fn fn, void *payload, struct sl_loop_timer **ret);
/* (Re)arms the timer to fire once after ms milliseconds. */
void sl_loop_timer_arm(struct sl_loop_timer *t, uint64_t ms);
/* Arms at an absolute sl_now_ms() deadline. */
void sl_loop_timer_arm_at(struct sl_loop_timer *t, uint64_t deadline_ms);
void sl_loop_timer_disarm(struct sl_loop_timer *t);
bool sl_loop_timer_armed(const struct sl_loop_timer *t);
void sl_loop_timer_free(struct sl_loop_timer *t); /* accepts NULL; disarms */

/* ---- worker thread -------------------------------------------------------- */

/* work runs on the worker thread (it must not touch loop state); done runs on
 * the loop thread afterwards with the same payload. Jobs run in order. */
typedef void (*sl_work_fn)(void *payload);
typedef void (*sl_done_fn)(struct sl_loop *loop, void *payload);
int sl_loop_worker_new(struct sl_loop *loop, struct sl_loop_worker **ret);
int sl_loop_worker_submit(struct sl_loop_worker *w, sl_work_fn work, sl_done_fn done, void *payload);
/* Number of jobs submitted whose done has not run yet. */
unsigned sl_loop_worker_pending(const struct sl_loop_worker *w);
/* Waits for the running job, drops queued ones (their done is not called),
 * joins the thread. Accepts NULL. */
void sl_loop_worker_free(struct sl_loop_worker *w);
