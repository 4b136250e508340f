/* The source object: options, scheduling of checks (interval with jitter,
 * exponential backoff on failure, or a watching backend's changes with a
 * quiet time), snapshots made from what the backend exports, and results
 * delivered on the loop. The backend (git.c, dir.c) is reached only
 * through struct sl_source__backend_ops. */
#include "source-internal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_INTERVAL_MS     60000
#define DEFAULT_DEBOUNCE_MIN_MS 15
#define DEFAULT_DEBOUNCE_MAX_MS 200
#define BACKOFF_START_MS        1000
#define PROBLEMS_MAX            (64 * 1024)

/* A job handed to the worker. Fields are written by the worker and read by
 * the loop in done, never both at once. */
struct job {
	struct sl_source *src;
	struct job *next, *prev; /* the source's list of jobs whose done has not run */
	int code;
	struct sl_error err;
	uint64_t started_ms;
	uint64_t parsed; /* check: files parsed */
	/* check: the snapshot current at submit, referenced by the loop then
	 * and released in done (the worker only reads its immutable tree),
	 * and the new one, or NULL when unchanged */
	struct sl_source_snapshot *prev_snap;
	struct sl_source__check chk;
	struct sl_source_snapshot *snap;
	/* write-back: wb's strings are file and name */
	struct sl_source__writeback wb;
	char *file, *name;
	sl_writeback_fn wb_done;
	void *wb_payload;
};

struct sl_source {
	struct sl_loop *loop;
	struct sl_loop_worker *worker;
	sl_source_fn fn;
	void *payload;
	struct sl_source__backend *be; /* its worker ops run only in jobs (and free after join) */

	/* copied options */
	enum sl_source_kind kind;
	char *id;
	uint64_t interval_ms, jitter_ms, debounce_min_ms, debounce_max_ms;
	struct sl_manifest_limits lim;   /* of a snapshot's files */
	struct sl_manifest_cache *cache; /* files parsed for snapshots; worker jobs only */

	char *cache_dir;
	bool cache_owned; /* we created it: removed on free */
	char *trees_dir;  /* cache_dir/trees: one directory per snapshot */
	unsigned long seq;

	struct sl_source_snapshot *current;
	struct sl_loop_timer *timer;
	uint64_t backoff_ms;
	bool started, running, again;
	bool dirty; /* a change came while a check ran */
	/* the burst of changes in progress (sl_now_ms): its first and latest change */
	uint64_t burst_start, burst_last;
	struct job *jobs;
	struct sl_source_stats stats;
};

static void job_unlink(struct sl_source *src, struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		src->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->next = j->prev = NULL;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	sl_source_snapshot_unref(j->snap);
	sl_source_snapshot_unref(j->prev_snap);
	sl_buf_free(&j->chk.problems);
	for (size_t i = 0; i < j->chk.n_list; i++)
		free(j->chk.list[i].rel);
	free(j->chk.list);
	free(j->file);
	free(j->name);
	free(j);
}

static struct job *job_new(struct sl_source *src)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->src = src;
	j->chk.prev_rev = "";
	j->chk.cache = src->cache;
	sl_buf_init(&j->chk.problems, PROBLEMS_MAX);
	j->next = src->jobs;
	if (src->jobs)
		src->jobs->prev = j;
	src->jobs = j;
	return j;
}

static void emit(struct sl_source *src, enum sl_source_event_type type, const struct sl_error *err)
{
	struct sl_source_event ev = {.type = type, .snapshot = src->current, .error = err};
	if (src->fn)
		src->fn(src, &ev, src->payload);
}

/* ---- checks ----------------------------------------------------------------- */

static void schedule(struct sl_source *src, uint64_t delay_ms)
{
	sl_loop_timer_arm(src->timer, delay_ms);
}

/* A watching backend checks on changes, not on the interval. */
static bool watched(const struct sl_source *src)
{
	return src->be->ops->watch_start != NULL;
}

static void resync(struct sl_source *src)
{
	if (src->be->ops->watch_resync)
		src->be->ops->watch_resync(src->be);
}

/* A new empty directory for a snapshot's tree, named after tag. Worker
 * only: seq is advanced by worker jobs, which run one at a time. */
static int tree_new(struct sl_source *src, const char *tag, char **ret, struct sl_error *err)
{
	char *dir = sl_asprintf("%s/%.12s.%lu", src->trees_dir, tag, ++src->seq);

	if (!dir)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	if (mkdir(dir, 0700) < 0) {
		int e = errno;
		free(dir);
		return sl_error_set(err, SL_EIO, "cannot create a snapshot directory: %s", strerror(e));
	}
	*ret = dir;
	return 0;
}

/* One check on the worker: the backend refreshes and exports into a new
 * tree, which becomes a snapshot. *ret stays NULL when the revision is the
 * previous one. */
static int check_run(struct sl_source *src, struct sl_source__check *chk, struct sl_source_snapshot **ret,
                     struct sl_error *err)
{
	struct sl_source__backend *be = src->be;
	_cleanup_free_ char *dir = NULL;
	bool named;
	int r;

	if (be->ops->refresh) {
		r = be->ops->refresh(be, chk, err);
		if (r < 0)
			return r;
	}
	named = chk->rev[0] != '\0';
	if (named && !strcmp(chk->rev, chk->prev_rev))
		return 0;
	if (be->ops->tree) {
		r = tree_new(src, named ? chk->rev : "tree", &dir, err);
		if (r < 0)
			return r;
	}
	r = be->ops->export(be, chk, dir, err);
	if (r < 0) {
		/* where it was writing: a full or read-only cache is the
		 * operator's to fix */
		if (r == SL_EIO && dir)
			sl_error_prefix(err, "snapshot of %s in %s", chk->rev[0] ? chk->rev : "the source",
			                src->trees_dir);
		goto drop;
	}
	assert(chk->rev[0]);
	if (!strcmp(chk->rev, chk->prev_rev)) {
		/* the same content again; the cache holds the files seen */
		sl_manifest_cache_sweep(chk->cache);
		r = 0;
		goto drop;
	}
	r = sl_source__snapshot_new(src->kind, chk, dir, ret, err);
	if (r < 0) {
		/* a commit id tells the reader where to look; a content hash does not */
		if (named)
			sl_error_prefix(err, "revision %s", chk->rev);
		goto drop;
	}
	/* what this snapshot did not take again has left the tree (after a
	 * failure the cache stays as it was, for the next try) */
	sl_manifest_cache_sweep(chk->cache);
	return 0;
drop:
	if (dir)
		(void)sl_file_rm_rf(dir, NULL); /* a leftover goes at the next start */
	return r;
}

static void check_work(void *payload)
{
	struct job *j = payload;
	struct sl_manifest_cache_stats before, after;

	j->started_ms = sl_now_ms();
	sl_manifest_cache_stats(j->chk.cache, &before);
	j->code = check_run(j->src, &j->chk, &j->snap, &j->err);
	sl_manifest_cache_stats(j->chk.cache, &after);
	j->parsed = after.parsed - before.parsed;
}

/* How long until a watching source's next check: the quiet time after the
 * latest change grows with the burst of changes in progress, from
 * debounce_min (one edit) by the time the burst has lasted, up to
 * debounce_max. */
static uint64_t quiet_delay(struct sl_source *src, uint64_t now)
{
	uint64_t q =
	    SL_MIN(src->debounce_min_ms + (src->burst_last - src->burst_start), src->debounce_max_ms);
	uint64_t due = src->burst_last + q;

	src->stats.last_quiet_ms = q;
	return due > now ? due - now : 0;
}

/* When the next check runs after one finished: a polled source on its
 * interval (with jitter) or, after a failure, with backoff; a watching
 * source after the quiet time when a change came meanwhile, at once when a
 * trigger came, else only after a failure (the root gone), with backoff,
 * in case no event comes. */
static void schedule_next(struct sl_source *src, bool failed)
{
	if (watched(src)) {
		if (src->dirty) {
			src->again = src->dirty = false;
			resync(src);
			schedule(src, quiet_delay(src, sl_now_ms()));
		} else if (src->again) {
			src->again = false;
			resync(src);
			schedule(src, 0);
		} else if (src->backoff_ms) {
			resync(src);
			schedule(src, src->backoff_ms);
		}
		return;
	}
	if (src->again) {
		src->again = false;
		schedule(src, 0);
	} else if (failed) {
		schedule(src, src->backoff_ms);
	} else {
		schedule(src, src->interval_ms + (src->jitter_ms ? sl_rand_between(0, src->jitter_ms) : 0));
	}
}

static void check_done(struct sl_loop *loop, void *payload)
{
	struct job *j = payload;
	struct sl_source *src = j->src;
	bool failed = j->code < 0;

	job_unlink(src, j);
	src->running = false;
	src->stats.checks++;
	src->stats.last_check_ms = sl_now_ms() - j->started_ms;
	src->stats.files_parsed += j->parsed;
	if (failed) {
		src->stats.check_failures++;
		src->backoff_ms = src->backoff_ms ? SL_MIN(src->backoff_ms * 2, src->interval_ms)
		                                  : SL_MIN(BACKOFF_START_MS, src->interval_ms);
		if (!j->err.msg[0])
			sl_error_set(&j->err, j->code, "%s", sl_strerror(j->code));
		emit(src, SL_SOURCE_EVENT_ERROR, &j->err);
	} else {
		src->backoff_ms = 0;
		src->stats.last_success = sl_wall_s();
		if (j->snap) {
			sl_source_snapshot_unref(src->current);
			src->current = TAKE_PTR(j->snap);
			src->stats.snapshots++;
			emit(src, SL_SOURCE_EVENT_SNAPSHOT, NULL);
		} else {
			emit(src, SL_SOURCE_EVENT_UNCHANGED, NULL);
		}
	}
	job_free(j);
	schedule_next(src, failed);
}

static void submit_check(struct sl_source *src)
{
	struct job *j;

	if (src->running) {
		src->again = true;
		return;
	}
	j = job_new(src);
	if (!j) {
		schedule(src, BACKOFF_START_MS);
		return;
	}
	if (src->current) {
		j->prev_snap = sl_source_snapshot_ref(src->current);
		j->chk.prev_rev = sl_source_snapshot_revision(j->prev_snap);
		j->chk.prev_root = sl_source_snapshot_root(j->prev_snap);
	}
	if (sl_loop_worker_submit(src->worker, check_work, check_done, j) < 0) {
		job_unlink(src, j);
		job_free(j);
		schedule(src, BACKOFF_START_MS);
		return;
	}
	src->running = true;
}

static void on_timer(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct sl_source *src = payload;
	resync(src);
	submit_check(src);
}

/* ---- calls from the backend ---------------------------------------------------- */

int sl_source__check_list(struct sl_source__check *chk, const char *rel, const uint8_t sha256[SL_SHA256_LEN])
{
	struct sl_source__file *f;

	if (SL_GROW(chk->list, chk->cap_list, chk->n_list + 1, 64) < 0)
		return SL_ENOMEM;
	f = &chk->list[chk->n_list];
	f->rel = sl_strdup(rel);
	if (!f->rel)
		return SL_ENOMEM;
	memcpy(f->sha256, sha256, SL_SHA256_LEN);
	chk->n_list++;
	return 0;
}

const char *sl_source__cache_dir(const struct sl_source *src)
{
	return src->cache_dir;
}

void sl_source__changed(struct sl_source *src)
{
	uint64_t now = sl_now_ms();

	/* a change after a quiet spell as long as the longest quiet time
	 * starts a new burst */
	if (!src->burst_last || now - src->burst_last >= src->debounce_max_ms)
		src->burst_start = now;
	src->burst_last = now;
	if (src->running) {
		src->dirty = true; /* scheduled when the running check is done */
		return;
	}
	/* every change pushes the check back, by a quiet time that grows
	 * while the changes go on */
	schedule(src, quiet_delay(src, now));
}

/* ---- the source -------------------------------------------------------------- */

/* The cache directory (given, or a fresh one under $TMPDIR) and its empty
 * trees directory. */
static int cache_open(struct sl_source *src, const char *cache_dir, struct sl_error *err)
{
	struct sl_error e = {0};
	int r;

	if (cache_dir && *cache_dir) {
		src->cache_dir = sl_strdup(cache_dir);
		if (!src->cache_dir)
			return sl_error_set(err, SL_ENOMEM, "out of memory");
		r = sl_file_mkdir_p(src->cache_dir, 0700, &e);
		if (r < 0)
			return sl_error_set(err, SL_EIO, "cache directory %s", e.msg);
	} else {
		const char *tmp = getenv("TMPDIR");
		src->cache_dir = sl_asprintf("%s/sluice-source-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!src->cache_dir)
			return sl_error_set(err, SL_ENOMEM, "out of memory");
		if (!mkdtemp(src->cache_dir))
			return sl_error_set(err, SL_EIO, "cannot create a cache directory: %s",
			                    strerror(errno));
		src->cache_owned = true;
	}
	src->trees_dir = sl_asprintf("%s/trees", src->cache_dir);
	if (!src->trees_dir)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	/* trees left by an earlier process belong to no snapshot */
	(void)sl_file_rm_rf(src->trees_dir, NULL);
	r = sl_file_mkdir_p(src->trees_dir, 0700, &e);
	if (r < 0)
		return sl_error_set(err, SL_EIO, "%s", e.msg);
	return 0;
}

/* The backend of each kind. */
static const sl_source__backend_new_fn backends[] = {
    [SL_SOURCE_GIT] = sl_source__git_new,
    [SL_SOURCE_DIR] = sl_source__dir_new,
};

int sl_source_new(struct sl_loop *loop, const struct sl_source_options *o, sl_source_fn fn, void *payload,
                  struct sl_source **ret, struct sl_error *err)
{
	struct sl_source_options bo = *o; /* what the backend sees: shared limits resolved */
	struct sl_source *src;
	int r;

	if ((unsigned)o->kind >= SL_ARRAY_SIZE(backends) || !backends[o->kind])
		return sl_error_set(err, SL_EINVALID, "unknown source kind");
	src = calloc(1, sizeof(*src));
	if (!src)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	src->loop = loop;
	src->fn = fn;
	src->payload = payload;
	src->kind = o->kind;
	src->interval_ms = o->interval_ms ? o->interval_ms : DEFAULT_INTERVAL_MS;
	src->jitter_ms = o->jitter_ms ? o->jitter_ms : src->interval_ms / 10;
	src->debounce_max_ms = o->debounce_max_ms ? o->debounce_max_ms : DEFAULT_DEBOUNCE_MAX_MS;
	src->debounce_min_ms =
	    SL_MIN(o->debounce_min_ms ? o->debounce_min_ms : DEFAULT_DEBOUNCE_MIN_MS, src->debounce_max_ms);
	src->lim = (struct sl_manifest_limits)SL_MANIFEST_LIMITS_INIT;
	src->lim.max_file_size = bo.max_file_size = o->max_file_size ? o->max_file_size : 4u << 20;
	src->lim.max_files = bo.max_files = o->max_files ? o->max_files : 100000;
	src->cache = sl_manifest_cache_new(&src->lim);
	if (!src->cache) {
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	/* the backend first: invalid options fail before anything is created */
	r = backends[o->kind](src, loop, &bo, &src->be, err);
	if (r < 0)
		goto fail;
	if (o->id && *o->id && !(src->id = sl_strdup(o->id))) {
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	r = cache_open(src, o->cache_dir, err);
	if (r < 0)
		goto fail;
	r = sl_loop_timer_new(loop, on_timer, src, &src->timer);
	if (r < 0) {
		sl_error_set(err, r, "cannot create a timer");
		goto fail;
	}
	r = sl_loop_worker_new(loop, &src->worker);
	if (r < 0) {
		sl_error_set(err, r, "cannot start the worker thread");
		goto fail;
	}
	*ret = src;
	return 0;
fail:
	sl_source_free(src);
	return r;
}

int sl_source_start(struct sl_source *src, struct sl_error *err)
{
	int r;

	if (src->started)
		return 0;
	if (src->be->ops->watch_start) {
		r = src->be->ops->watch_start(src->be, err);
		if (r < 0)
			return r;
	}
	src->started = true;
	submit_check(src);
	return 0;
}

void sl_source_trigger(struct sl_source *src)
{
	if (!src->started)
		return;
	if (src->running) {
		src->again = true;
		return;
	}
	sl_loop_timer_disarm(src->timer);
	resync(src);
	submit_check(src);
}

struct sl_source_snapshot *sl_source_current(struct sl_source *src)
{
	return src->current;
}

void sl_source_stats(const struct sl_source *src, struct sl_source_stats *ret)
{
	*ret = src->stats;
}

void sl_source_free(struct sl_source *src)
{
	struct job *j;

	if (!src)
		return;
	/* joins the thread: no job runs after this, queued ones are dropped */
	sl_loop_worker_free(src->worker);
	while ((j = src->jobs)) {
		job_unlink(src, j);
		job_free(j);
	}
	if (src->be) {
		if (src->be->ops->watch_stop)
			src->be->ops->watch_stop(src->be);
		src->be->ops->free(src->be);
	}
	sl_loop_timer_free(src->timer);
	sl_source_snapshot_unref(src->current);
	sl_manifest_cache_free(src->cache);
	if (src->cache_owned && src->cache_dir)
		(void)sl_file_rm_rf(src->cache_dir, NULL); /* nobody to tell on the way out */
	free(src->id);
	free(src->cache_dir);
	free(src->trees_dir);
	free(src);
}

/* ---- write-back ---------------------------------------------------------- */

static void wb_work(void *payload)
{
	struct job *j = payload;
	struct sl_source__backend *be = j->src->be;

	j->started_ms = sl_now_ms();
	j->code = be->ops->write_back(be, &j->wb, &j->err);
}

static void wb_done(struct sl_loop *loop, void *payload)
{
	struct job *j = payload;
	struct sl_source *src = j->src;

	job_unlink(src, j);
	if (j->code == 0 && j->wb.commit[0])
		src->stats.writebacks++;
	else if (j->code < 0 && j->code != SL_ENOTFOUND)
		src->stats.writeback_failures++;
	if (j->wb_done)
		j->wb_done(src, j->code, j->wb.commit, &j->err, j->wb_payload);
	job_free(j);
	/* the commit is on the remote now; fetch it so the next snapshot has it */
	if (src->started && !src->running)
		sl_source_trigger(src);
}

int sl_source_write_back(struct sl_source *src, const char *file, unsigned doc_index, const char *name,
                         sl_writeback_fn done, void *payload)
{
	struct job *j;
	int r;

	if (!src->be->ops->write_back || !src->be->can_write_back)
		return SL_EUNSUPPORTED;
	if (!file || !*file || file[0] == '/' || strstr(file, "..") || !name || !*name)
		return SL_EINVALID;
	j = job_new(src);
	if (!j)
		return SL_ENOMEM;
	j->file = sl_strdup(file);
	j->name = sl_strdup(name);
	j->wb.file = j->file;
	j->wb.name = j->name;
	j->wb.doc_index = doc_index;
	j->wb_done = done;
	j->wb_payload = payload;
	if (!j->file || !j->name) {
		r = SL_ENOMEM;
		goto fail;
	}
	r = sl_loop_worker_submit(src->worker, wb_work, wb_done, j);
	if (r < 0)
		goto fail;
	return 0;
fail:
	job_unlink(src, j);
	job_free(j);
	return r;
}
