/* The source object: options, scheduling of checks (interval with jitter,
 * exponential backoff on failure), and results delivered on the loop. */
#include "source-internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_INTERVAL_MS 60000
#define DEFAULT_TIMEOUT_MS  120000
#define DEFAULT_DEBOUNCE_MS 200
#define BACKOFF_START_MS    1000

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
	sl_buf_free(&j->problems);
	free(j->file);
	free(j->name);
	free(j);
}

static struct job *job_new(struct sl_source *src, int kind)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->src = src;
	j->kind = kind;
	sl_buf_init(&j->problems, 64 * 1024);
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

static void check_work(void *payload)
{
	struct job *j = payload;
	j->started_ms = sl_now_ms();
	if (j->src->kind == SL_SOURCE_GIT)
		sl_source__git_check(j);
	else
		sl_source__dir_scan(j);
}

static void check_done(struct sl_loop *loop, void *payload)
{
	struct job *j = payload;
	struct sl_source *src = j->src;
	uint64_t next;

	job_unlink(src, j);
	src->running = false;
	src->stats.checks++;
	src->stats.last_check_ms = sl_now_ms() - j->started_ms;
	if (j->code < 0) {
		src->stats.check_failures++;
		src->backoff_ms = src->backoff_ms ? SL_MIN(src->backoff_ms * 2, src->interval_ms)
		                                  : SL_MIN(BACKOFF_START_MS, src->interval_ms);
		next = src->backoff_ms;
		if (!j->err.msg[0])
			sl_error_set(&j->err, j->code, "%s", sl_strerror(j->code));
		emit(src, SL_SOURCE_EVENT_ERROR, &j->err);
	} else {
		src->backoff_ms = 0;
		src->stats.last_success = sl_wall_s();
		next = src->interval_ms + (src->jitter_ms ? sl_rand_between(0, src->jitter_ms) : 0);
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

	if (src->kind == SL_SOURCE_DIR) {
		/* a directory is driven by inotify; a failure (root gone) is
		 * retried with backoff in case no event ever comes */
		if (src->again || src->dirty) {
			src->again = src->dirty = false;
			sl_source__dir_watch_resync(src);
			sl_source__schedule_check(src, src->debounce_ms);
		} else if (src->backoff_ms) {
			sl_source__dir_watch_resync(src);
			sl_source__schedule_check(src, src->backoff_ms);
		}
		return;
	}
	if (src->again) {
		src->again = false;
		next = 0;
	}
	sl_source__schedule_check(src, next);
}

static void submit_check(struct sl_source *src)
{
	struct job *j;

	if (src->running) {
		src->again = true;
		return;
	}
	j = job_new(src, JOB_CHECK);
	if (!j) {
		sl_source__schedule_check(src, BACKOFF_START_MS);
		return;
	}
	if (src->current) {
		snprintf(j->prev_rev, sizeof(j->prev_rev), "%s", sl_source_snapshot_revision(src->current));
		j->prev_snap = sl_source_snapshot_ref(src->current);
	}
	if (sl_loop_worker_submit(src->worker, check_work, check_done, j) < 0) {
		job_unlink(src, j);
		job_free(j);
		sl_source__schedule_check(src, BACKOFF_START_MS);
		return;
	}
	src->running = true;
}

static void on_timer(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct sl_source *src = payload;
	if (src->kind == SL_SOURCE_DIR)
		sl_source__dir_watch_resync(src);
	submit_check(src);
}

void sl_source__schedule_check(struct sl_source *src, uint64_t delay_ms)
{
	sl_loop_timer_arm(src->timer, delay_ms);
}

static int dup_opt(char **dst, const char *s)
{
	if (!s || !*s) {
		*dst = NULL;
		return 0;
	}
	*dst = sl_strdup(s);
	return *dst ? 0 : SL_ENOMEM;
}

bool sl_source__is_sha(const char *s)
{
	if (strlen(s) != 40)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static int validate(const struct sl_source_options *o, struct sl_error *err)
{
	if (o->kind == SL_SOURCE_DIR) {
		if (!o->dir || o->dir[0] != '/')
			return sl_error_set(err, SL_EINVALID,
			                    "directory source: an absolute path is required");
		return 0;
	}
	if (o->kind != SL_SOURCE_GIT)
		return sl_error_set(err, SL_EINVALID, "unknown source kind");
	if (!o->url || !*o->url)
		return sl_error_set(err, SL_EINVALID, "git source: a URL is required");
	if (sl_str_has_prefix(o->url, "http://") && !o->allow_http)
		return sl_error_set(err, SL_EINVALID, "git source: plain http:// is refused; use https://");
	if (!strstr(o->url, "://") && o->url[0] != '/' && !strchr(o->url, ':'))
		return sl_error_set(err, SL_EINVALID, "git source: unrecognised URL form");
	if ((sl_str_has_prefix(o->url, "ssh://") || (!strstr(o->url, "://") && o->url[0] != '/')) &&
	    (!o->known_hosts_file || !*o->known_hosts_file))
		return sl_error_set(
		    err, SL_EINVALID,
		    "git source: an ssh URL needs a known_hosts file (host keys are always checked)");
	if (o->password_file && *o->password_file && (!o->username || !*o->username))
		return sl_error_set(err, SL_EINVALID, "git source: a password file needs a username");
	if (o->path && (o->path[0] == '/' || strstr(o->path, "..")))
		return sl_error_set(err, SL_EINVALID, "git source: --path must be relative, without ..");
	if (o->ref && (!*o->ref || strstr(o->ref, "..") || strpbrk(o->ref, " ~^:?*[\\")))
		return sl_error_set(err, SL_EINVALID, "git source: invalid ref");
	return 0;
}

int sl_source_new(struct sl_loop *loop, const struct sl_source_options *o, sl_source_fn fn, void *payload,
                  struct sl_source **ret, struct sl_error *err)
{
	struct sl_source *src;
	int r;

	r = validate(o, err);
	if (r < 0)
		return r;
	src = calloc(1, sizeof(*src));
	if (!src)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	src->loop = loop;
	src->fn = fn;
	src->payload = payload;
	src->kind = o->kind;
	src->ifd = -1;
	src->parent_wd = -1;
	src->allow_http = o->allow_http;
	src->interval_ms = o->interval_ms ? o->interval_ms : DEFAULT_INTERVAL_MS;
	src->jitter_ms = o->jitter_ms ? o->jitter_ms : src->interval_ms / 10;
	src->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	src->debounce_ms = o->debounce_ms ? o->debounce_ms : DEFAULT_DEBOUNCE_MS;
	src->max_file_size = o->max_file_size ? o->max_file_size : 4u << 20;
	src->max_files = o->max_files ? o->max_files : 100000;
	r = 0;
	r |= dup_opt(&src->id, o->id);
	r |= dup_opt(&src->url, o->url);
	r |= dup_opt(&src->ref, o->ref);
	r |= dup_opt(&src->path, o->path);
	r |= dup_opt(&src->username, o->username);
	r |= dup_opt(&src->password_file, o->password_file);
	r |= dup_opt(&src->ssh_key_file, o->ssh_key_file);
	r |= dup_opt(&src->ssh_passphrase_file, o->ssh_passphrase_file);
	r |= dup_opt(&src->known_hosts_file, o->known_hosts_file);
	r |= dup_opt(&src->ca_file, o->ca_file);
	r |= dup_opt(&src->ca_dir, o->ca_dir);
	r |= dup_opt(&src->author_name, o->author_name ? o->author_name : "sluice");
	r |= dup_opt(&src->author_email, o->author_email ? o->author_email : "sluice@localhost");
	r |= dup_opt(&src->dir, o->dir);
	if (r) {
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	if (src->path) {
		/* "a/b/" and "a/b" are the same subdirectory */
		size_t n = strlen(src->path);
		while (n && src->path[n - 1] == '/')
			src->path[--n] = '\0';
	}
	if (o->cache_dir && *o->cache_dir) {
		src->cache_dir = sl_strdup(o->cache_dir);
		if (!src->cache_dir || sl_source__mkdir_p(src->cache_dir, 0700) < 0) {
			r = sl_error_set(err, SL_EIO, "cache directory %s: %s", o->cache_dir,
			                 strerror(errno));
			goto fail;
		}
	} else {
		const char *tmp = getenv("TMPDIR");
		src->cache_dir = sl_asprintf("%s/sluice-source-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!src->cache_dir || !mkdtemp(src->cache_dir)) {
			r = sl_error_set(err, SL_EIO, "cannot create a cache directory: %s", strerror(errno));
			goto fail;
		}
		src->cache_owned = true;
	}
	src->trees_dir = sl_asprintf("%s/trees", src->cache_dir);
	if (!src->trees_dir) {
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	/* trees left by an earlier process belong to no snapshot */
	sl_source__rm_rf(src->trees_dir);
	if (sl_source__mkdir_p(src->trees_dir, 0700) < 0) {
		r = sl_error_set(err, SL_EIO, "%s: %s", src->trees_dir, strerror(errno));
		goto fail;
	}
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
	if (src->kind == SL_SOURCE_DIR) {
		r = sl_source__dir_watch_start(src, err);
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
	if (src->kind == SL_SOURCE_DIR)
		sl_source__dir_watch_resync(src);
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
	sl_source__git_state_free(src->git);
	sl_source__dir_watch_stop(src);
	sl_loop_timer_free(src->timer);
	sl_source_snapshot_unref(src->current);
	if (src->cache_owned && src->cache_dir)
		sl_source__rm_rf(src->cache_dir);
	free(src->id);
	free(src->url);
	free(src->ref);
	free(src->path);
	free(src->username);
	free(src->password_file);
	free(src->ssh_key_file);
	free(src->ssh_passphrase_file);
	free(src->known_hosts_file);
	free(src->ca_file);
	free(src->ca_dir);
	free(src->author_name);
	free(src->author_email);
	free(src->dir);
	free(src->cache_dir);
	free(src->trees_dir);
	free(src->parent);
	free(src->base);
	free(src);
}

/* ---- write-back ---------------------------------------------------------- */

static void wb_work(void *payload)
{
	struct job *j = payload;
	j->started_ms = sl_now_ms();
	sl_source__git_writeback(j);
}

static void wb_done(struct sl_loop *loop, void *payload)
{
	struct job *j = payload;
	struct sl_source *src = j->src;

	job_unlink(src, j);
	if (j->code == 0 && j->commit[0])
		src->stats.writebacks++;
	else if (j->code < 0 && j->code != SL_ENOTFOUND)
		src->stats.writeback_failures++;
	if (j->wb_done)
		j->wb_done(src, j->code, j->commit, &j->err, j->wb_payload);
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

	if (src->kind != SL_SOURCE_GIT)
		return SL_EUNSUPPORTED;
	if (src->ref && (sl_source__is_sha(src->ref) || sl_str_has_prefix(src->ref, "refs/tags/")))
		return SL_EUNSUPPORTED;
	if (!file || !*file || file[0] == '/' || strstr(file, "..") || !name || !*name)
		return SL_EINVALID;
	j = job_new(src, JOB_WRITEBACK);
	if (!j)
		return SL_ENOMEM;
	j->file = sl_strdup(file);
	j->name = sl_strdup(name);
	j->doc_index = doc_index;
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
