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

int sl_open_beneath_walk(int rootfd, const char *relpath, int flags, struct sl_error *err)
{
	int stack[MAX_DEPTH];
	int depth = 0, links = 0, r;
	char path[8192];
	size_t pos = 0;

	if (strlen(relpath) >= sizeof(path))
		return sl_error_set(err, SL_EINVALID, "%s: path too long", relpath);
	snprintf(path, sizeof(path), "%s", relpath);
	stack[0] = dup(rootfd);
	if (stack[0] < 0)
		return sl_error_set(err, SL_EIO, "%s: %s", relpath, strerror(errno));
	for (;;) {
		char comp[NAME_MAX + 1];
		size_t len;
		bool last;
		struct stat st;
		int fd;

		while (path[pos] == '/')
			pos++;
		if (!path[pos]) {
			/* the path named a directory itself */
			r = openat(stack[depth], ".", flags | O_CLOEXEC);
			if (r < 0)
				r = sl_error_set(err, sl_error_from_errno(errno), "%s: %s", relpath,
				                 strerror(errno));
			goto out;
		}
		len = strcspn(path + pos, "/");
		if (len > NAME_MAX) {
			r = sl_error_set(err, SL_EINVALID, "%s: name too long", relpath);
			goto out;
		}
		memcpy(comp, path + pos, len);
		comp[len] = '\0';
		pos += len;
		while (path[pos] == '/')
			pos++;
		last = path[pos] == '\0';
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			if (depth == 0) {
				r = sl_error_set(err, SL_EINVALID, "%s: leaves the source root, refused",
				                 relpath);
				goto out;
			}
			close(stack[depth--]);
			continue;
		}
		if (fstatat(stack[depth], comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = sl_error_set(err, sl_error_from_errno(errno), "%s: %s", relpath, strerror(errno));
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			char target[4096], rest[8192];
			ssize_t n;

			if (++links > MAX_LINKS) {
				r = sl_error_set(err, SL_EINVALID, "%s: too many symbolic links", relpath);
				goto out;
			}
			n = readlinkat(stack[depth], comp, target, sizeof(target) - 1);
			if (n < 0) {
				r = sl_error_set(err, SL_EIO, "%s: %s", relpath, strerror(errno));
				goto out;
			}
			target[n] = '\0';
			if (target[0] == '/') {
				r = sl_error_set(err, SL_EINVALID, "%s: leaves the source root, refused",
				                 relpath);
				goto out;
			}
			snprintf(rest, sizeof(rest), "%s", path + pos);
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", target, rest) >= sizeof(path)) {
				r = sl_error_set(err, SL_EINVALID, "%s: path too long", relpath);
				goto out;
			}
			pos = 0;
			continue;
		}
		if (last) {
			r = openat(stack[depth], comp, flags | O_CLOEXEC | O_NOFOLLOW);
			if (r < 0)
				r = sl_error_set(err, sl_error_from_errno(errno), "%s: %s", relpath,
				                 strerror(errno));
			goto out;
		}
		if (depth + 1 >= MAX_DEPTH) {
			r = sl_error_set(err, SL_EINVALID, "%s: too deep", relpath);
			goto out;
		}
		fd = openat(stack[depth], comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			r = sl_error_set(err, sl_error_from_errno(errno), "%s: %s", relpath, strerror(errno));
			goto out;
		}
		stack[++depth] = fd;
	}
out:
	for (int i = 0; i <= depth; i++)
		close(stack[i]);
	return r;
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
