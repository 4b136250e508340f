/* Directory sources: inotify on the root and every subdirectory (new ones
 * included), the root's parent watched for the root itself being swapped,
 * removed or created, and a debounce so that a burst is one snapshot. Each
 * snapshot is a full scan on the worker that copies the manifest files,
 * read beneath the root, into a private tree while hashing them. */
#include "source-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 32
#define WATCH_MASK                                                                                           \
	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | \
	 IN_MOVE_SELF | IN_ATTRIB)
#define PARENT_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB)

static bool hidden(const char *name)
{
	return name[0] == '.';
}

static bool manifest_name(const char *name)
{
	/* what the manifest loader reads (sl_manifest_set_add_dir) */
	return sl_str_has_suffix(name, ".yaml") || sl_str_has_suffix(name, ".yml");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of a directory's non-hidden entries (free each and the array). */
static int list_dir(int dfd, char ***ret, size_t *ret_n)
{
	int fd = dup(dfd);
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		if (hidden(de->d_name))
			continue;
		if (SL_GROW(v, cap, n + 1, 16) < 0)
			goto nomem;
		v[n] = sl_strdup(de->d_name);
		if (!v[n])
			goto nomem;
		n++;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_str);
	*ret = v;
	*ret_n = n;
	return 0;
nomem:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return -ENOMEM;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- the scan (worker) ---------------------------------------------------- */

struct scan {
	struct sl_source *src;
	int rootfd;
	const char *dest;
	int oldfd; /* the previous snapshot's tree, or -1 */
	struct sl_sha256 h;
	size_t files;
	struct sl_buf problems;
	struct sl_error err;
};

/* One line of the problem list. A list that is full is cut short, not an
 * error: its size is bounded, the number of bad files is not. */
static void problem(struct scan *s, const char *msg)
{
	(void)sl_buf_printf(&s->problems, "%s\n", msg);
}

/* Is the previous snapshot's copy of rel the same bytes? Then it can be
 * hard-linked: trees are never written after they are made, and writing a
 * small file costs far more than linking one (10,000 files: ~5 s against
 * ~0.2 s on the test machine's ext4). */
static bool same_as_old(struct scan *s, const char *rel, const struct sl_buf *b)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	char chunk[65536];
	size_t off = 0;

	if (s->oldfd < 0)
		return false;
	fd = openat(s->oldfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != b->len)
		return false;
	while (off < b->len) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n <= 0 || off + (size_t)n > b->len || memcmp(chunk, b->data + off, (size_t)n) != 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

static int write_copy(struct scan *s, const char *rel, const struct sl_buf *b)
{
	_cleanup_free_ char *path = sl_asprintf("%s/%s", s->dest, rel);
	_cleanup_close_ int fd = -1;
	const char *p = b->data;
	size_t n = b->len;
	bool link_old;

	if (!path)
		return SL_ENOMEM;
	link_old = same_as_old(s, rel, b);
	if (link_old && linkat(s->oldfd, rel, AT_FDCWD, path, 0) == 0)
		return 0;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	if (fd < 0 && errno == ENOENT) {
		char *slash = strrchr(path, '/');
		*slash = '\0';
		sl_source__mkdir_p(path, 0700);
		*slash = '/';
		if (link_old && linkat(s->oldfd, rel, AT_FDCWD, path, 0) == 0)
			return 0;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	}
	if (fd < 0)
		return sl_error_set(&s->err, SL_EIO, "snapshot copy of %s: %s", rel, strerror(errno));
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return sl_error_set(&s->err, SL_EIO, "snapshot copy of %s: %s", rel, strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int walk(struct scan *s, const char *rel, int depth)
{
	_cleanup_close_ int dfd = -1;
	char **names = NULL;
	size_t n = 0;
	int r = 0;

	if (depth > MAX_DEPTH) {
		problem(s, "directory nesting too deep (a symlink loop?), not followed");
		return 0;
	}
	dfd = *rel ? sl_open_beneath(s->rootfd, rel, O_RDONLY | O_DIRECTORY, &s->err) : dup(s->rootfd);
	if (dfd < 0) {
		if (!*rel)
			return sl_error_set(&s->err, SL_EIO, "root: %s", strerror(errno));
		problem(s, s->err.msg);
		sl_error_clear(&s->err);
		return 0;
	}
	r = list_dir(dfd, &names, &n);
	if (r < 0)
		return sl_error_set(&s->err, SL_EIO, "%s: %s", *rel ? rel : ".", strerror(-r));
	for (size_t i = 0; i < n && r >= 0; i++) {
		_cleanup_free_ char *child = *rel ? sl_asprintf("%s/%s", rel, names[i]) : sl_strdup(names[i]);
		struct stat st;

		if (!child) {
			r = sl_error_set(&s->err, SL_ENOMEM, "out of memory");
			break;
		}
		if (fstatat(dfd, names[i], &st, 0) < 0) {
			(void)sl_buf_printf(&s->problems, "%s: %s\n", child, strerror(errno));
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			r = walk(s, child, depth + 1);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !manifest_name(names[i]))
			continue;
		if (++s->files > s->src->max_files) {
			r = sl_error_set(&s->err, SL_ETOOLARGE, "more than %zu files", s->src->max_files);
			break;
		}
		struct sl_buf b;
		struct sl_error fe;
		int q = sl_file_read_beneath(s->rootfd, child, s->src->max_file_size, &b, &fe);
		if (q < 0) {
			/* a file leaving the root or over the limit: reported, skipped */
			s->files--;
			problem(s, fe.msg);
			continue;
		}
		uint64_t l = b.len;
		sl_sha256_update(&s->h, child, strlen(child) + 1);
		sl_sha256_update(&s->h, &l, sizeof(l));
		sl_sha256_update(&s->h, b.data, b.len);
		r = write_copy(s, child, &b);
		sl_buf_free(&b);
	}
	free_list(names, n);
	return r;
}

void sl_source__dir_scan(struct job *j)
{
	struct sl_source *src = j->src;
	struct scan s = {.src = src, .rootfd = -1, .oldfd = -1};
	_cleanup_free_ char *dest = NULL;
	uint8_t dig[SL_SHA256_LEN];
	char rev[80], hex[2 * SL_SHA256_LEN + 1];
	int r;

	sl_buf_init(&s.problems, 64 * 1024);
	s.rootfd = open(src->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.rootfd < 0) {
		j->code = sl_error_set(&j->err, errno == ENOENT ? SL_ENOTFOUND : SL_EIO, "%s: %s", src->dir,
		                       strerror(errno));
		goto out;
	}
	dest = sl_source__tree_path_new(src, "dir");
	if (!dest || mkdir(dest, 0700) < 0) {
		j->code =
		    sl_error_set(&j->err, SL_EIO, "cannot create a snapshot directory: %s", strerror(errno));
		goto out;
	}
	s.dest = dest;
	if (j->prev_snap)
		s.oldfd = open(sl_source_snapshot_root(j->prev_snap), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sl_sha256_init(&s.h);
	r = walk(&s, "", 0);
	if (r < 0) {
		j->code = r;
		j->err = s.err;
		sl_source__rm_rf(dest);
		goto out;
	}
	if (s.problems.len)
		sl_sha256_update(&s.h, s.problems.data, s.problems.len);
	sl_sha256_final(&s.h, dig);
	sl_hex(dig, sizeof(dig), hex);
	snprintf(rev, sizeof(rev), "sha256:%s", hex);
	if (!strcmp(rev, j->prev_rev)) {
		sl_source__rm_rf(dest);
		goto out;
	}
	r = sl_source__snapshot_new(src, rev, dest, NULL, s.files, s.problems.data, &j->snap, &j->err);
	if (r < 0) {
		sl_source__rm_rf(dest);
		j->code = r;
	}
out:
	if (s.rootfd >= 0)
		close(s.rootfd);
	if (s.oldfd >= 0)
		close(s.oldfd);
	sl_buf_free(&s.problems);
}

/* ---- watching (loop thread) --------------------------------------------------- */

struct wds {
	int *v;
	size_t n, cap;
};

/* Appends; repeats (a directory reached twice, e.g. through symlinks, has
 * one wd) are dropped by wds_sort, not by a scan per add. */
static void wds_add(struct wds *w, int wd)
{
	if (SL_GROW(w->v, w->cap, w->n + 1, 32) < 0)
		return;
	w->v[w->n++] = wd;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static void wds_sort(struct wds *w)
{
	size_t m = 0;

	if (!w->n)
		return;
	qsort(w->v, w->n, sizeof(*w->v), cmp_int);
	for (size_t i = 0; i < w->n; i++)
		if (!m || w->v[m - 1] != w->v[i])
			w->v[m++] = w->v[i];
	w->n = m;
}

static struct wds *watch_set(struct sl_source *src)
{
	/* the set of watch descriptors held, owned by the source */
	return (struct wds *)src->parent_wds;
}

static void watch_tree(struct sl_source *src, struct wds *w, int dfd, const char *path, int depth)
{
	char **names = NULL;
	size_t n = 0;
	int wd;

	if (depth > MAX_DEPTH)
		return;
	wd = inotify_add_watch(src->ifd, path, WATCH_MASK);
	if (wd >= 0)
		wds_add(w, wd);
	if (list_dir(dfd, &names, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct stat st, lst;
		if (fstatat(dfd, names[i], &st, 0) < 0)
			continue;
		_cleanup_free_ char *child = sl_asprintf("%s/%s", path, names[i]);
		if (!child)
			continue;
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (cfd >= 0)
				watch_tree(src, w, cfd, child, depth + 1);
		} else if (fstatat(dfd, names[i], &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
			/* a file behind a symlink (ConfigMap keys point into ..data):
			 * watch the directory it lives in too */
			char real[PATH_MAX];
			if (realpath(child, real)) {
				char *slash = strrchr(real, '/');
				if (slash && slash != real) {
					*slash = '\0';
					wd = inotify_add_watch(src->ifd, real, WATCH_MASK);
					if (wd >= 0)
						wds_add(w, wd);
				}
			}
		}
	}
	free_list(names, n);
}

void sl_source__dir_watch_resync(struct sl_source *src)
{
	struct wds *old = watch_set(src), nw = {0};
	_cleanup_close_ int fd = -1;

	if (src->ifd < 0)
		return;
	if (src->parent_wd < 0)
		src->parent_wd = inotify_add_watch(src->ifd, src->parent, PARENT_MASK);
	fd = open(src->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		watch_tree(src, &nw, fd, src->dir, 0);
	wds_sort(&nw);
	/* drop watches of directories no longer part of the tree (an old
	 * worktree that was swapped out but not yet deleted) */
	if (old) {
		for (size_t i = 0; i < old->n; i++) {
			bool keep = old->v[i] == src->parent_wd ||
			            (nw.n && bsearch(&old->v[i], nw.v, nw.n, sizeof(*nw.v), cmp_int));
			if (!keep)
				inotify_rm_watch(src->ifd, old->v[i]);
		}
		free(old->v);
		*old = nw;
	} else {
		free(nw.v);
	}
}

static void on_inotify(struct sl_loop *loop, int fd, uint32_t events, void *payload)
{
	struct sl_source *src = payload;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				/* events were lost: everything is rescanned anyway */
				changed = true;
				continue;
			}
			if (ev->mask & IN_IGNORED) {
				if (ev->wd == src->parent_wd)
					src->parent_wd = -1; /* the parent went: re-added on resync */
				continue;
			}
			if (ev->wd == src->parent_wd) {
				if (ev->len && !strcmp(ev->name, src->base))
					changed = true;
				continue;
			}
			changed = true;
		}
	}
	if (!changed)
		return;
	if (src->running)
		src->dirty = true;
	/* quiet period: every event pushes the snapshot back */
	sl_source__schedule_check(src, src->debounce_ms);
}

int sl_source__dir_watch_start(struct sl_source *src, struct sl_error *err)
{
	_cleanup_free_ char *a = sl_strdup(src->dir), *b = sl_strdup(src->dir);
	struct wds *w;
	int r;

	if (!a || !b)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	/* "/x/y/" names y */
	for (size_t n = strlen(a); n > 1 && a[n - 1] == '/'; n--)
		a[n - 1] = b[n - 1] = '\0';
	src->parent = sl_strdup(dirname(a));
	src->base = sl_strdup(basename(b));
	w = calloc(1, sizeof(*w));
	if (!src->parent || !src->base || !w) {
		free(w);
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	}
	src->parent_wds = w;
	src->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (src->ifd < 0)
		return sl_error_set(err, SL_EIO, "inotify: %s", strerror(errno));
	r = sl_loop_add_fd(src->loop, src->ifd, EPOLLIN, on_inotify, src);
	if (r < 0)
		return sl_error_set(err, r, "cannot watch the inotify fd");
	sl_source__dir_watch_resync(src);
	return 0;
}

void sl_source__dir_watch_stop(struct sl_source *src)
{
	struct wds *w = watch_set(src);
	if (src->ifd >= 0) {
		sl_loop_del_fd(src->loop, src->ifd);
		close(src->ifd);
		src->ifd = -1;
	}
	if (w) {
		free(w->v);
		free(w);
		src->parent_wds = NULL;
	}
}
