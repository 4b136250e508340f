/* A worker thread for blocking calls (libgit2): jobs go in through a locked
 * queue, finished jobs come back through a second queue and an eventfd that
 * the loop watches. */
#include "sluice/loop.h"
#include "sluice/base.h"

#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct job {
	sl_work_fn work;
	sl_done_fn done;
	void *payload;
	struct job *next;
};

struct queue {
	struct job *head, *tail;
};

struct sl_loop_worker {
	struct sl_loop *loop;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct queue todo, finished;
	int efd;
	bool stop;
	unsigned pending;
};

static void push(struct queue *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *pop(struct queue *q)
{
	struct job *j = q->head;
	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
	}
	return j;
}

static void *thread_main(void *arg)
{
	struct sl_loop_worker *w = arg;
	sigset_t all;

	/* signals belong to the loop thread's signalfd */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct job *j;
		uint64_t one = 1;

		while (!w->stop && !w->todo.head)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop)
			break;
		j = pop(&w->todo);
		pthread_mutex_unlock(&w->mu);
		j->work(j->payload);
		pthread_mutex_lock(&w->mu);
		push(&w->finished, j);
		if (write(w->efd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow in practice; nothing to do */
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void on_event(struct sl_loop *loop, int fd, uint32_t events, void *payload)
{
	struct sl_loop_worker *w = payload;
	uint64_t v;
	struct queue done;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&w->mu);
	done = w->finished;
	w->finished.head = w->finished.tail = NULL;
	pthread_mutex_unlock(&w->mu);
	for (struct job *j = pop(&done); j; j = pop(&done)) {
		w->pending--;
		if (j->done)
			j->done(loop, j->payload);
		free(j);
	}
}

int sl_loop_worker_new(struct sl_loop *loop, struct sl_loop_worker **ret)
{
	struct sl_loop_worker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return SL_ENOMEM;
	w->loop = loop;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		r = SL_EIO;
		goto fail;
	}
	r = sl_loop_add_fd(loop, w->efd, EPOLLIN, on_event, w);
	if (r < 0)
		goto fail;
	if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
		sl_loop_del_fd(loop, w->efd);
		r = SL_EIO;
		goto fail;
	}
	*ret = w;
	return 0;
fail:
	if (w->efd >= 0)
		close(w->efd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
	return r;
}

int sl_loop_worker_submit(struct sl_loop_worker *w, sl_work_fn work, sl_done_fn done, void *payload)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return SL_ENOMEM;
	j->work = work;
	j->done = done;
	j->payload = payload;
	pthread_mutex_lock(&w->mu);
	push(&w->todo, j);
	w->pending++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

unsigned sl_loop_worker_pending(const struct sl_loop_worker *w)
{
	return w->pending;
}

void sl_loop_worker_free(struct sl_loop_worker *w)
{
	struct job *j;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	sl_loop_del_fd(w->loop, w->efd);
	close(w->efd);
	while ((j = pop(&w->todo)))
		free(j);
	while ((j = pop(&w->finished)))
		free(j);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
