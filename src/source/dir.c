/* The directory backend: inotify on the root and every subdirectory (new
 * ones included) and on the root's parent, for the root itself being
 * swapped, removed or created; a change is reported to the source, whose
 * quiet time makes a burst one snapshot. The export is a full scan on the
 * worker that reads each manifest file beneath the root once: its bytes
 * are hashed into the revision and handed to the parse cache, which parses
 * only bytes it has not seen under that path. Nothing is written: the
 * snapshot's manifests are made from the cache, so they are exactly the
 * bytes the revision names, even while the directory changes. */
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

/* A directory entry: its name and readdir's type (DT_UNKNOWN when the file
 * system does not say). */
struct entry {
	unsigned char type;
	char name[];
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp((*(struct entry *const *)a)->name, (*(struct entry *const *)b)->name);
}

static void free_list(struct entry **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The type of entry e of directory dfd, following a symlink: from readdir
 * when it is a plain file or directory, else from stat. -1 when it cannot
 * be told (errno set). */
static int entry_mode(int dfd, const struct entry *e)
{
	struct stat st;

	if (e->type == DT_REG)
		return S_IFREG;
	if (e->type == DT_DIR)
		return S_IFDIR;
	if (fstatat(dfd, e->name, &st, 0) < 0)
		return -1;
	return (int)(st.st_mode & S_IFMT);
}

/* A libc failure e on what, as an SL_E* code with the reason in err. */
static int fail_errno(struct sl_error *err, const char *what, int e)
{
	return sl_error_set(err, sl_error_from_errno(e), "%s: %s", what, strerror(e));
}

/* A directory's non-hidden entries, sorted by name (free each and the
 * array). what names the directory in err. */
static int list_dir(int dfd, const char *what, struct entry ***ret, size_t *ret_n, struct sl_error *err)
{
	int fd = dup(dfd);
	DIR *d;
	struct dirent *de;
	struct entry **v = NULL;
	size_t n = 0, cap = 0;

	if (fd < 0)
		return fail_errno(err, what, errno);
	d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return fail_errno(err, what, e);
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		if (hidden(de->d_name))
			continue;
		size_t l = strlen(de->d_name);
		if (SL_GROW(v, cap, n + 1, 16) < 0)
			goto nomem;
		v[n] = malloc(sizeof(**v) + l + 1);
		if (!v[n])
			goto nomem;
		v[n]->type = de->d_type;
		memcpy(v[n]->name, de->d_name, l + 1);
		n++;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_entry);
	*ret = v;
	*ret_n = n;
	return 0;
nomem:
	closedir(d);
	free_list(v, n);
	return fail_errno(err, what, ENOMEM);
}

/* A set of inotify watch descriptors. */
struct wds {
	int *v;
	size_t n, cap;
};

/* The directory backend. dir and the limits are fixed at creation and read
 * by the worker's export; the rest is the loop thread's. */
struct dir_backend {
	struct sl_source__backend base;
	struct sl_loop *loop;
	char *dir;
	size_t max_file_size, max_files;

	int ifd;                  /* inotify, -1 when not watching */
	int parent_wd;            /* the watch on parent, -1 when none */
	char *parent, *base_name; /* dirname and basename of dir */
	struct wds wds;           /* the watch descriptors held */
};

/* The backend's own state around the interface's part. */
static struct dir_backend *dir_of(struct sl_source__backend *be)
{
	_Static_assert(offsetof(struct dir_backend, base) == 0, "base comes first");
	return (struct dir_backend *)be;
}

/* ---- the scan (worker) ---------------------------------------------------- */

struct scan {
	const struct dir_backend *d;
	struct sl_source__check *chk;
	int rootfd;
	struct sl_sha256 h;
	size_t files;
	struct sl_buf *problems;
	struct sl_error *err;
};

/* One line of the problem list. A list that is full is cut short, not an
 * error: its size is bounded, the number of bad files is not. */
static void problem(struct scan *s, const char *msg)
{
	(void)sl_buf_printf(s->problems, "%s\n", msg);
}

/* Reads one manifest file beneath the root, adds it to the content hash
 * and the parse cache, and lists it. A file that cannot be read (it leaves
 * the root, it is over the limit) is reported and skipped. */
static int take_file(struct scan *s, const char *rel)
{
	struct sl_source__check *chk = s->chk;
	uint8_t sha[SL_SHA256_LEN];
	struct sl_buf b;
	struct sl_error fe;
	uint64_t l;
	int r;

	if (++s->files > s->d->max_files)
		return sl_error_set(s->err, SL_ETOOLARGE, "more than %zu files", s->d->max_files);
	r = sl_file_read_beneath(s->rootfd, rel, s->d->max_file_size, &b, &fe);
	if (r < 0) {
		s->files--;
		problem(s, fe.msg);
		return 0;
	}
	l = b.len;
	sl_sha256_update(&s->h, rel, strlen(rel) + 1);
	sl_sha256_update(&s->h, &l, sizeof(l));
	sl_sha256_update(&s->h, b.data, b.len);
	r = sl_manifest_cache_put(chk->cache, rel, b.data, b.len, sha);
	sl_buf_free(&b);
	if (r == 0)
		r = sl_source__check_list(chk, rel, sha);
	return r < 0 ? sl_error_set(s->err, r, "%s: out of memory", rel) : 0;
}

static int walk(struct scan *s, const char *rel, int depth)
{
	_cleanup_close_ int dfd = -1;
	struct entry **names = NULL;
	size_t n = 0;
	int r = 0;

	if (depth > MAX_DEPTH) {
		problem(s, "directory nesting too deep (a symlink loop?), not followed");
		return 0;
	}
	if (!*rel) {
		dfd = dup(s->rootfd);
		if (dfd < 0)
			return sl_error_set(s->err, SL_EIO, "root: %s", strerror(errno));
	} else {
		struct sl_error oe;
		dfd = sl_open_beneath(s->rootfd, rel, O_RDONLY | O_DIRECTORY, &oe);
		if (dfd < 0) {
			/* a directory leaving the root: reported, skipped */
			problem(s, oe.msg);
			return 0;
		}
	}
	r = list_dir(dfd, *rel ? rel : ".", &names, &n, s->err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		const char *name = names[i]->name;
		_cleanup_free_ char *child = NULL;
		int mode;

		if (names[i]->type == DT_REG && !manifest_name(name))
			continue; /* not read: nothing to look at */
		child = *rel ? sl_asprintf("%s/%s", rel, name) : sl_strdup(name);
		if (!child) {
			r = sl_error_set(s->err, SL_ENOMEM, "out of memory");
			break;
		}
		mode = entry_mode(dfd, names[i]);
		if (mode < 0) {
			(void)sl_buf_printf(s->problems, "%s: %s\n", child, strerror(errno));
			continue;
		}
		if (mode == S_IFDIR)
			r = walk(s, child, depth + 1);
		else if (mode == S_IFREG && manifest_name(name))
			r = take_file(s, child);
	}
	free_list(names, n);
	return r;
}

/* The export op (no tree: dir is NULL): reads the manifest files beneath
 * the root into the parse cache, lists them, and names the revision by the
 * content: relative paths, sizes and bytes of every file, and the problems
 * (a file left out changes the revision). */
static int dir_export(struct sl_source__backend *be, struct sl_source__check *chk, const char *dir,
                      struct sl_error *err)
{
	struct dir_backend *d = dir_of(be);
	struct scan s = {.d = d, .chk = chk, .rootfd = -1, .problems = &chk->problems, .err = err};
	uint8_t dig[SL_SHA256_LEN];
	char hex[2 * SL_SHA256_LEN + 1];
	int r;

	s.rootfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.rootfd < 0) {
		r = fail_errno(err, d->dir, errno);
		goto out;
	}
	sl_sha256_init(&s.h);
	r = walk(&s, "", 0);
	if (r < 0)
		goto out;
	if (chk->problems.len)
		sl_sha256_update(&s.h, chk->problems.data, chk->problems.len);
	sl_sha256_final(&s.h, dig);
	sl_hex(dig, sizeof(dig), hex);
	snprintf(chk->rev, sizeof(chk->rev), "sha256:%s", hex);
	chk->files = s.files;
out:
	if (s.rootfd >= 0)
		close(s.rootfd);
	return r;
}

/* ---- watching (loop thread) --------------------------------------------------- */

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

/* A file behind a symlink (ConfigMap keys point into ..data): watch the
 * directory it lives in too. */
static void watch_link_target(struct dir_backend *d, struct wds *w, const char *path)
{
	char real[PATH_MAX];
	char *slash;
	int wd;

	if (!realpath(path, real))
		return;
	slash = strrchr(real, '/');
	if (!slash || slash == real)
		return;
	*slash = '\0';
	wd = inotify_add_watch(d->ifd, real, WATCH_MASK);
	if (wd >= 0)
		wds_add(w, wd);
}

static void watch_tree(struct dir_backend *d, struct wds *w, int dfd, const char *path, int depth)
{
	struct entry **names = NULL;
	size_t n = 0;
	int wd;

	if (depth > MAX_DEPTH)
		return;
	wd = inotify_add_watch(d->ifd, path, WATCH_MASK);
	if (wd >= 0)
		wds_add(w, wd);
	/* a directory that cannot be listed is watched itself; the scan
	 * reports what is wrong with it */
	if (list_dir(dfd, path, &names, &n, NULL) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct entry *e = names[i];
		struct stat lst;
		int mode;

		if (e->type == DT_REG)
			continue; /* a plain file: its directory's watch covers it */
		mode = entry_mode(dfd, e);
		if (mode < 0)
			continue;
		_cleanup_free_ char *child = sl_asprintf("%s/%s", path, e->name);
		if (!child)
			continue;
		if (mode == S_IFDIR) {
			_cleanup_close_ int cfd = openat(dfd, e->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (cfd >= 0)
				watch_tree(d, w, cfd, child, depth + 1);
		} else if (e->type != DT_UNKNOWN ? e->type == DT_LNK
		                                 : fstatat(dfd, e->name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
		                                       S_ISLNK(lst.st_mode)) {
			watch_link_target(d, w, child);
		}
	}
	free_list(names, n);
}

static void dir_watch_resync(struct sl_source__backend *be)
{
	struct dir_backend *d = dir_of(be);
	struct wds nw = {0};
	_cleanup_close_ int fd = -1;

	if (d->ifd < 0)
		return;
	if (d->parent_wd < 0)
		d->parent_wd = inotify_add_watch(d->ifd, d->parent, PARENT_MASK);
	fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		watch_tree(d, &nw, fd, d->dir, 0);
	wds_sort(&nw);
	/* drop watches of directories no longer part of the tree (an old
	 * worktree that was swapped out but not yet deleted) */
	for (size_t i = 0; i < d->wds.n; i++) {
		bool keep = d->wds.v[i] == d->parent_wd ||
		            (nw.n && bsearch(&d->wds.v[i], nw.v, nw.n, sizeof(*nw.v), cmp_int));
		if (!keep)
			inotify_rm_watch(d->ifd, d->wds.v[i]);
	}
	free(d->wds.v);
	d->wds = nw;
}

static void on_inotify(struct sl_loop *loop, int fd, uint32_t events, void *payload)
{
	struct dir_backend *d = payload;
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
				if (ev->wd == d->parent_wd)
					d->parent_wd = -1; /* the parent went: re-added on resync */
				continue;
			}
			if (ev->wd == d->parent_wd) {
				if (ev->len && !strcmp(ev->name, d->base_name))
					changed = true;
				continue;
			}
			changed = true;
		}
	}
	if (changed)
		sl_source__changed(d->base.src);
}

static int dir_watch_start(struct sl_source__backend *be, struct sl_error *err)
{
	struct dir_backend *d = dir_of(be);
	int r;

	d->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->ifd < 0)
		return sl_error_set(err, SL_EIO, "inotify: %s", strerror(errno));
	r = sl_loop_add_fd(d->loop, d->ifd, EPOLLIN, on_inotify, d);
	if (r < 0)
		return sl_error_set(err, r, "cannot watch the inotify fd");
	dir_watch_resync(be);
	return 0;
}

static void dir_watch_stop(struct sl_source__backend *be)
{
	struct dir_backend *d = dir_of(be);

	if (d->ifd >= 0) {
		sl_loop_del_fd(d->loop, d->ifd);
		close(d->ifd);
		d->ifd = -1;
	}
	free(d->wds.v);
	d->wds = (struct wds){0};
	d->parent_wd = -1;
}

/* ---- the backend ------------------------------------------------------------------ */

static void dir_free(struct sl_source__backend *be)
{
	struct dir_backend *d = dir_of(be);

	free(d->dir);
	free(d->parent);
	free(d->base_name);
	free(d);
}

static const struct sl_source__backend_ops dir_ops = {
    .tree = false,
    .export = dir_export,
    .watch_start = dir_watch_start,
    .watch_resync = dir_watch_resync,
    .watch_stop = dir_watch_stop,
    .free = dir_free,
};

int sl_source__dir_new(struct sl_source *src, struct sl_loop *loop, const struct sl_source_options *o,
                       struct sl_source__backend **ret, struct sl_error *err)
{
	_cleanup_free_ char *a = NULL, *b = NULL;
	struct dir_backend *d;

	if (!o->dir || o->dir[0] != '/')
		return sl_error_set(err, SL_EINVALID, "directory source: an absolute path is required");
	d = calloc(1, sizeof(*d));
	if (!d)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	d->base.ops = &dir_ops;
	d->base.src = src;
	d->loop = loop;
	d->max_file_size = o->max_file_size;
	d->max_files = o->max_files;
	d->ifd = -1;
	d->parent_wd = -1;
	d->dir = sl_strdup(o->dir);
	a = sl_strdup(o->dir);
	b = sl_strdup(o->dir);
	if (!d->dir || !a || !b)
		goto nomem;
	/* "/x/y/" names y */
	for (size_t n = strlen(a); n > 1 && a[n - 1] == '/'; n--)
		a[n - 1] = b[n - 1] = '\0';
	d->parent = sl_strdup(dirname(a));
	d->base_name = sl_strdup(basename(b));
	if (!d->parent || !d->base_name)
		goto nomem;
	*ret = &d->base;
	return 0;
nomem:
	dir_free(&d->base);
	return sl_error_set(err, SL_ENOMEM, "out of memory");
}
