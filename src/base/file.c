/* Files: reads with size limits, reads confined beneath a root directory,
 * atomic writes, and creating and removing directory trees. */
#include "sluice/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int read_fd(int fd, const char *what, size_t max, struct sl_buf *out, struct sl_error *err)
{
	char chunk[65536];
	size_t used = 0; /* bytes of chunk ever filled */
	int r;

	sl_buf_init(out, max);
	if (sl_buf_append(out, "", 0) < 0)
		return sl_error_set(err, SL_ENOMEM, "%s: out of memory", what);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = sl_error_set(err, SL_EIO, "%s: %s", what, strerror(errno));
			goto fail;
		}
		if (n == 0) {
			r = 0;
			goto out;
		}
		used = SL_MAX(used, (size_t)n);
		r = sl_buf_append(out, chunk, (size_t)n);
		if (r == SL_ETOOLARGE) {
			sl_error_set(err, r, "%s: larger than the limit of %zu bytes", what, max);
			goto fail;
		}
		if (r < 0) {
			sl_error_set(err, r, "%s: out of memory", what);
			goto fail;
		}
	}
fail:
	sl_buf_free(out);
out:
	/* the files read include tokens and passwords: no copy left on the stack */
	explicit_bzero(chunk, used);
	return r;
}

int sl_file_read(const char *path, size_t max, struct sl_buf *out, struct sl_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sl_error_set(err, sl_error_from_errno(errno), "%s: %s", path, strerror(errno));
	return read_fd(fd, path, max, out, err);
}

/* Resolves relpath beneath rootfd one component at a time, for kernels (and
 * valgrind) without openat2: symlinks are read and spliced in, ".." may not
 * climb above the root, absolute symlinks are refused like RESOLVE_BENEATH. */
#define MAX_DEPTH 256
#define MAX_LINKS 40

/* The state of a walk beneath a root: the directories opened so far (the
 * root first), and the path still to resolve from pos. */
struct walk {
	int stack[MAX_DEPTH];
	int depth, links;
	char path[8192];
	size_t pos;
	const char *relpath;
};

/* Cuts the next component of w->path into comp; "" at the end of the path.
 * *last: nothing follows it. */
static int next_component(struct walk *w, char comp[static NAME_MAX + 1], bool *last, struct sl_error *err)
{
	size_t len;

	while (w->path[w->pos] == '/')
		w->pos++;
	len = strcspn(w->path + w->pos, "/");
	if (len > NAME_MAX)
		return sl_error_set(err, SL_EINVALID, "%s: name too long", w->relpath);
	memcpy(comp, w->path + w->pos, len);
	comp[len] = '\0';
	w->pos += len;
	while (w->path[w->pos] == '/')
		w->pos++;
	*last = w->path[w->pos] == '\0';
	return 0;
}

/* Replaces the symbolic link comp by its target in front of the rest of the
 * path: a relative target is resolved by the same walk, so it cannot leave
 * the root either; an absolute one is refused. */
static int follow_link(struct walk *w, const char *comp, struct sl_error *err)
{
	char target[4096], rest[8192];
	ssize_t n;

	if (++w->links > MAX_LINKS)
		return sl_error_set(err, SL_EINVALID, "%s: too many symbolic links", w->relpath);
	n = readlinkat(w->stack[w->depth], comp, target, sizeof(target) - 1);
	if (n < 0)
		return sl_error_set(err, SL_EIO, "%s: %s", w->relpath, strerror(errno));
	target[n] = '\0';
	if (target[0] == '/')
		return sl_error_set(err, SL_EINVALID, "%s: leaves the source root, refused", w->relpath);
	snprintf(rest, sizeof(rest), "%s", w->path + w->pos);
	if ((size_t)snprintf(w->path, sizeof(w->path), "%s/%s", target, rest) >= sizeof(w->path))
		return sl_error_set(err, SL_EINVALID, "%s: path too long", w->relpath);
	w->pos = 0;
	return 0;
}

static int errno_fail(const struct walk *w, struct sl_error *err)
{
	return sl_error_set(err, sl_error_from_errno(errno), "%s: %s", w->relpath, strerror(errno));
}

/* One step of the walk: 0 to go on; 1 when done, with the open fd of what
 * the path names in *ret_fd; or a negative code. */
static int walk_step(struct walk *w, int flags, int *ret_fd, struct sl_error *err)
{
	char comp[NAME_MAX + 1];
	struct stat st;
	bool last = false;
	int r, fd;

	r = next_component(w, comp, &last, err);
	if (r < 0)
		return r;
	if (!comp[0] || (last && strcmp(comp, ".") != 0 && strcmp(comp, "..") != 0)) {
		if (comp[0] && fstatat(w->stack[w->depth], comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			return follow_link(w, comp, err);
		/* the path named a directory itself, or its last component */
		fd = openat(w->stack[w->depth], comp[0] ? comp : ".",
		            flags | O_CLOEXEC | (comp[0] ? O_NOFOLLOW : 0));
		if (fd < 0)
			return errno_fail(w, err);
		*ret_fd = fd;
		return 1;
	}
	if (strcmp(comp, ".") == 0)
		return 0;
	if (strcmp(comp, "..") == 0) {
		if (w->depth == 0)
			return sl_error_set(err, SL_EINVALID, "%s: leaves the source root, refused",
			                    w->relpath);
		close(w->stack[w->depth--]);
		return 0;
	}
	if (fstatat(w->stack[w->depth], comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno_fail(w, err);
	if (S_ISLNK(st.st_mode))
		return follow_link(w, comp, err);
	if (w->depth + 1 >= MAX_DEPTH)
		return sl_error_set(err, SL_EINVALID, "%s: too deep", w->relpath);
	fd = openat(w->stack[w->depth], comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno_fail(w, err);
	w->stack[++w->depth] = fd;
	return 0;
}

int sl_open_beneath_walk(int rootfd, const char *relpath, int flags, struct sl_error *err)
{
	struct walk w = {.relpath = relpath};
	int r, fd = -1;

	if (strlen(relpath) >= sizeof(w.path))
		return sl_error_set(err, SL_EINVALID, "%s: path too long", relpath);
	snprintf(w.path, sizeof(w.path), "%s", relpath);
	w.stack[0] = dup(rootfd);
	if (w.stack[0] < 0)
		return sl_error_set(err, SL_EIO, "%s: %s", relpath, strerror(errno));
	do
		r = walk_step(&w, flags, &fd, err);
	while (r == 0);
	for (int i = 0; i <= w.depth; i++)
		close(w.stack[i]);
	return r < 0 ? r : fd;
}

int sl_open_beneath(int rootfd, const char *relpath, int flags, struct sl_error *err)
{
	static int no_openat2;
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	if (!relpath || !*relpath || relpath[0] == '/')
		return sl_error_set(err, SL_EINVALID, "%s: path must be relative to the source root",
		                    relpath ? relpath : "(null)");
	if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
		fd = (int)syscall(SYS_openat2, rootfd, relpath, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS) {
			int e = errno;
			if (e == EXDEV)
				return sl_error_set(err, SL_EINVALID, "%s: leaves the source root, refused",
				                    relpath);
			return sl_error_set(err, sl_error_from_errno(e), "%s: %s", relpath, strerror(e));
		}
		/* old kernel or valgrind: walk by hand from now on */
		__atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
	}
	return sl_open_beneath_walk(rootfd, relpath, flags, err);
}

int sl_file_read_beneath(int rootfd, const char *relpath, size_t max, struct sl_buf *out,
                         struct sl_error *err)
{
	struct stat st;
	/* O_NONBLOCK: opening a FIFO put in the tree waits for no writer; it
	 * is refused below like any file that is not regular */
	_cleanup_close_ int fd = sl_open_beneath(rootfd, relpath, O_RDONLY | O_NONBLOCK, err);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return sl_error_set(err, SL_EIO, "%s: %s", relpath, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return sl_error_set(err, SL_EINVALID, "%s: not a regular file", relpath);
	if ((uint64_t)st.st_size > max)
		return sl_error_set(err, SL_ETOOLARGE, "%s: %lld bytes, over the limit of %zu", relpath,
		                    (long long)st.st_size, max);
	return read_fd(fd, relpath, max, out, err);
}

int sl_file_write_atomic(const char *path, const void *data, size_t n, int mode, struct sl_error *err)
{
	_cleanup_free_ char *tmp = sl_asprintf("%s.tmp.%d", path, (int)getpid());
	_cleanup_close_ int fd = -1;
	const char *p = data;

	if (!tmp)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return sl_error_set(err, sl_error_from_errno(errno), "%s: %s", tmp, strerror(errno));
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			unlink(tmp);
			return sl_error_set(err, SL_EIO, "%s: %s", tmp, strerror(e));
		}
		p += w;
		n -= (size_t)w;
	}
	if (fsync(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return sl_error_set(err, SL_EIO, "%s: %s", path, strerror(e));
	}
	return 0;
}

/* Removing a tree: the first failure is reported, the rest is still removed. */
struct rm {
	const char *path;
	int code;
	struct sl_error *err;
};

static void rm_fail(struct rm *rm, const char *name, int e)
{
	if (rm->code)
		return;
	rm->code = sl_error_from_errno(e);
	if (name == rm->path)
		sl_error_set(rm->err, rm->code, "cannot remove %s: %s", name, strerror(e));
	else
		sl_error_set(rm->err, rm->code, "cannot remove %s in %s: %s", name, rm->path, strerror(e));
}

static void rm_rf_at(struct rm *rm, int dfd, const char *name, int depth)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			rm_fail(rm, name, errno);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			rm_fail(rm, name, errno);
		return;
	}
	/* bounds the recursion: no tree we make is this deep */
	if (depth > MAX_DEPTH) {
		rm_fail(rm, name, ELOOP);
		return;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rm_fail(rm, name, errno);
		return;
	}
	d = fdopendir(fd);
	if (!d) {
		rm_fail(rm, name, errno);
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rm_rf_at(rm, dirfd(d), de->d_name, depth + 1);
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rm_fail(rm, name, errno);
}

int sl_file_rm_rf(const char *path, struct sl_error *err)
{
	struct rm rm = {.path = path, .err = err};

	rm_rf_at(&rm, AT_FDCWD, path, 0);
	return rm.code;
}

int sl_file_mkdir_p(const char *path, int mode, struct sl_error *err)
{
	_cleanup_free_ char *p = NULL;
	struct stat st;

	if (!path || !*path)
		return sl_error_set(err, SL_EINVALID, "mkdir: empty path");
	p = sl_strdup(path);
	if (!p)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	/* each parent in turn, then the path itself; what exists is kept */
	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c && c != '/')
			continue;
		*s = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
			int e = errno;
			return sl_error_set(err, sl_error_from_errno(e), "%s: %s", p, strerror(e));
		}
		*s = c;
		if (!c)
			break;
	}
	/* EEXIST is said of anything in the way: only a directory will do */
	if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
		return sl_error_set(err, SL_EEXIST, "%s: exists and is not a directory", p);
	return 0;
}
