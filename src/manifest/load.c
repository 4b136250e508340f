/* The loader: YAML files, single or a directory tree walked beneath its
 * root, parsed by the converter (yaml.c) into documents and problems of a
 * set (set.c). Validation is not its job. */
#include "cache.h"
#include "parsed.h"
#include "set.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WALK_MAX_DEPTH 64

/* ---- adding a buffer ---------------------------------------------------- */

int sl_manifest_set_add_buffer(struct sl_manifest_set *s, const char *name, const void *data, size_t len,
                               struct sl_error *err)
{
	struct sl_manifest__parsed *p = NULL;
	int r;

	r = sl_manifest__parse(data, len, NULL, sl_manifest__set_limits(s), &p);
	if (r < 0)
		return sl_error_set(err, r, "%s: %s", name,
		                    r == SL_ENOMEM ? "out of memory" : sl_strerror(r));
	r = sl_manifest__set_add_parsed(s, name, p, err);
	sl_manifest__parsed_unref(p);
	return r;
}

/* Adds bytes through the cache c when there is one. */
static int add_bytes(struct sl_manifest_set *s, struct sl_manifest_cache *c, const char *name,
                     const void *data, size_t len, struct sl_error *err)
{
	struct sl_manifest__parsed *p;
	int r;

	if (!c)
		return sl_manifest_set_add_buffer(s, name, data, len, err);
	r = sl_manifest__cache_get(c, name, data, len, &p);
	if (r < 0)
		return sl_error_set(err, r, "%s: %s", name,
		                    r == SL_ENOMEM ? "out of memory" : sl_strerror(r));
	return sl_manifest__set_add_parsed(s, name, p, err);
}

/* ---- files and trees ---------------------------------------------------- */

/* A file-read error without the path sl_file_read put in front: the
 * problem line names the file already. */
static const char *read_msg(const struct sl_error *e, const char *path)
{
	size_t l = strlen(path);
	return strncmp(e->msg, path, l) == 0 && e->msg[l] == ':' && e->msg[l + 1] == ' ' ? e->msg + l + 2
	                                                                                 : e->msg;
}

int sl_manifest_set_add_file(struct sl_manifest_set *s, const char *path, const char *display,
                             struct sl_error *err)
{
	struct sl_buf b;
	struct sl_error e = {0};
	int r;

	if (!display)
		display = path;
	r = sl_file_read(path, sl_manifest__set_limits(s)->max_file_size, &b, &e);
	if (r < 0) {
		const char *m = read_msg(&e, path);
		if (sl_manifest__set_problem(s, SL_MANIFEST_ERROR, r, display, -1, 0, 0, "", "%s", m) < 0)
			r = SL_ENOMEM;
		return sl_error_set(err, r, "%s: %s", display, m);
	}
	r = sl_manifest_set_add_buffer(s, display, b.data, b.len, err);
	sl_buf_free(&b);
	return r;
}

struct walk {
	struct sl_manifest_set *s;
	const struct sl_manifest_limits *lim; /* the set's */
	int rootfd;
	char **paths;
	size_t n, cap;
	dev_t stack_dev[WALK_MAX_DEPTH];
	ino_t stack_ino[WALK_MAX_DEPTH];
	unsigned depth;
	const char *prefix;
	struct sl_error *err;
};

static bool yaml_name(const char *n)
{
	return sl_str_has_suffix(n, ".yaml") || sl_str_has_suffix(n, ".yml");
}

static char *display_of(const struct walk *w, const char *rel)
{
	return w->prefix ? sl_asprintf("%s/%s", w->prefix, rel) : sl_strdup(rel);
}

static int walk_problem(struct walk *w, const char *rel, int code, const char *msg)
{
	_cleanup_free_ char *disp = display_of(w, rel);
	if (!disp)
		return SL_ENOMEM;
	return sl_manifest__set_problem(w->s, SL_MANIFEST_ERROR, code, disp, -1, 0, 0, "", "%s", msg);
}

static int walk_add(struct walk *w, const char *rel)
{
	if (w->n >= w->lim->max_files)
		return sl_error_set(w->err, SL_ETOOLARGE, "more than %zu YAML files beneath the root",
		                    w->lim->max_files);
	if (SL_GROW(w->paths, w->cap, w->n + 1, 64) < 0)
		return sl_error_set(w->err, SL_ENOMEM, "out of memory");
	w->paths[w->n] = sl_strdup(rel);
	if (!w->paths[w->n])
		return sl_error_set(w->err, SL_ENOMEM, "out of memory");
	w->n++;
	return 0;
}

static int walk_dir(struct walk *w, const char *rel);

static int walk_entry(struct walk *w, int dfd, const char *rel, const char *name, unsigned char type)
{
	_cleanup_free_ char *child = *rel ? sl_asprintf("%s/%s", rel, name) : sl_strdup(name);
	struct stat st;
	int r = 0;

	if (!child)
		return sl_error_set(w->err, SL_ENOMEM, "out of memory");
	if (type == DT_UNKNOWN) {
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return walk_problem(w, child, SL_EIO, strerror(errno));
		type = S_ISDIR(st.st_mode)   ? DT_DIR
		       : S_ISLNK(st.st_mode) ? DT_LNK
		       : S_ISREG(st.st_mode) ? DT_REG
		                             : DT_UNKNOWN;
	}
	if (type == DT_DIR)
		return walk_dir(w, child);
	if (type == DT_REG)
		return yaml_name(name) ? walk_add(w, child) : 0;
	if (type == DT_LNK) {
		struct sl_error e = {0};
		_cleanup_close_ int fd = sl_open_beneath(w->rootfd, child, O_PATH, &e);
		if (fd < 0) {
			bool is_dir = fstatat(dfd, name, &st, 0) == 0 && S_ISDIR(st.st_mode);
			if (!yaml_name(name) && !is_dir)
				return 0; /* not something we would read */
			if (e.code == SL_EINVALID)
				return walk_problem(w, child, SL_EINVALID,
				                    "symlink leads outside the root, not followed");
			return walk_problem(w, child, e.code, "broken symlink");
		}
		if (fstat(fd, &st) < 0)
			return walk_problem(w, child, SL_EIO, strerror(errno));
		if (S_ISDIR(st.st_mode))
			return walk_dir(w, child);
		if (S_ISREG(st.st_mode) && yaml_name(name))
			return walk_add(w, child);
	}
	return r;
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(struct walk *w, const char *rel)
{
	struct sl_error e = {0};
	struct stat st;
	DIR *dir;
	struct dirent *de;
	int fd, r = 0;
	char **names = NULL;
	size_t n = 0, cap = 0;

	fd = *rel ? sl_open_beneath(w->rootfd, rel, O_RDONLY | O_DIRECTORY, &e)
	          : openat(w->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return *rel ? walk_problem(w, rel, e.code, e.msg)
		            : sl_error_set(w->err, SL_EIO, "cannot open the root");
	if (fstat(fd, &st) < 0) {
		close(fd);
		return walk_problem(w, rel, SL_EIO, strerror(errno));
	}
	for (unsigned i = 0; i < w->depth; i++)
		if (w->stack_dev[i] == st.st_dev && w->stack_ino[i] == st.st_ino) {
			close(fd);
			return walk_problem(w, rel, SL_EINVALID, "directory symlink loop, not followed");
		}
	if (w->depth >= WALK_MAX_DEPTH) {
		close(fd);
		return walk_problem(w, rel, SL_ETOOLARGE, "directories nested too deep");
	}
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return walk_problem(w, rel, SL_EIO, strerror(errno));
	}
	w->stack_dev[w->depth] = st.st_dev;
	w->stack_ino[w->depth] = st.st_ino;
	w->depth++;
	/* Names are gathered first so the directory fd is not held across the
	 * recursion more than needed and types can be checked in one place. */
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue; /* hidden, ".", ".." */
		if (SL_GROW(names, cap, n + 1, 32) < 0) {
			r = sl_error_set(w->err, SL_ENOMEM, "out of memory");
			goto out;
		}
		/* keep the type in the first byte */
		names[n] = malloc(strlen(de->d_name) + 2);
		if (!names[n]) {
			r = sl_error_set(w->err, SL_ENOMEM, "out of memory");
			goto out;
		}
		names[n][0] = (char)de->d_type;
		strcpy(names[n] + 1, de->d_name);
		n++;
	}
	for (size_t i = 0; i < n && r == 0; i++)
		r = walk_entry(w, dirfd(dir), rel, names[i] + 1, (unsigned char)names[i][0]);
out:
	w->depth--;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(dir);
	return r;
}

static int add_dir(struct sl_manifest_set *s, struct sl_manifest_cache *c, const char *root,
                   const char *display_prefix, struct sl_error *err)
{
	struct walk w = {.s = s, .lim = sl_manifest__set_limits(s), .prefix = display_prefix, .err = err};
	int r;

	w.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.rootfd < 0)
		return sl_error_set(err, errno == ENOENT ? SL_ENOTFOUND : SL_EIO, "%s: %s", root,
		                    strerror(errno));
	r = walk_dir(&w, "");
	if (r < 0)
		goto out;
	if (w.n > 1)
		qsort(w.paths, w.n, sizeof(*w.paths), path_cmp);
	for (size_t i = 0; i < w.n && r == 0; i++) {
		struct sl_buf b;
		struct sl_error e = {0};
		_cleanup_free_ char *disp = display_of(&w, w.paths[i]);
		if (!disp) {
			r = sl_error_set(err, SL_ENOMEM, "out of memory");
			break;
		}
		r = sl_file_read_beneath(w.rootfd, w.paths[i], w.lim->max_file_size, &b, &e);
		if (r < 0) {
			const char *m = read_msg(&e, w.paths[i]);
			r = sl_manifest__set_problem(s, SL_MANIFEST_ERROR, r, disp, -1, 0, 0, "", "%s", m);
			if (r < 0)
				sl_error_set(err, r, "out of memory");
			continue;
		}
		r = add_bytes(s, c, disp, b.data, b.len, err);
		sl_buf_free(&b);
	}
out:
	for (size_t i = 0; i < w.n; i++)
		free(w.paths[i]);
	free(w.paths);
	close(w.rootfd);
	return r < 0 ? r : 0;
}

int sl_manifest_set_add_dir(struct sl_manifest_set *s, const char *root, const char *display_prefix,
                            struct sl_error *err)
{
	return add_dir(s, NULL, root, display_prefix, err);
}

int sl_manifest_set_add_dir_cached(struct sl_manifest_set *s, struct sl_manifest_cache *c, const char *root,
                                   const char *display_prefix, struct sl_error *err)
{
	return add_dir(s, c, root, display_prefix, err);
}
