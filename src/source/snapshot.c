/* Snapshots: a revision id and a private tree that nothing writes to while a
 * reference exists; the last reference removes the tree. */
#include "source-internal.h"

#include "sluice/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

struct sl_source_snapshot {
	unsigned refs;
	enum sl_source_kind kind;
	char *revision;
	char *tree; /* the directory we own and delete */
	char *root; /* tree or tree/subdir */
	char *problems;
	size_t files;
	int64_t time;
	struct sl_manifest_set *manifests;
};

int sl_source__snapshot_new(struct sl_source *src, const char *revision, const char *tree_dir,
                            const char *subdir, size_t files, const char *problems,
                            struct sl_source_snapshot **ret, struct sl_error *err)
{
	struct sl_manifest_limits lim = SL_MANIFEST_LIMITS_INIT;
	struct sl_source_snapshot *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	s->refs = 1;
	s->kind = src->kind;
	s->revision = sl_strdup(revision);
	s->tree = sl_strdup(tree_dir);
	s->root = subdir && *subdir ? sl_asprintf("%s/%s", tree_dir, subdir) : sl_strdup(tree_dir);
	s->problems = sl_strdup(problems ? problems : "");
	s->files = files;
	s->time = sl_wall_s();
	if (!s->revision || !s->tree || !s->root || !s->problems) {
		/* the caller still owns the tree on failure */
		free(s->tree);
		s->tree = NULL;
		sl_source_snapshot_unref(s);
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	}
	/* parsing happens here, on the worker, so the loop never waits for it */
	lim.max_file_size = src->max_file_size;
	lim.max_files = src->max_files;
	r = sl_manifest_load_dir(s->root, &lim, &s->manifests, err);
	if (r < 0) {
		free(s->tree);
		s->tree = NULL;
		sl_source_snapshot_unref(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct sl_source_snapshot *sl_source_snapshot_ref(struct sl_source_snapshot *s)
{
	if (s)
		s->refs++;
	return s;
}

void sl_source_snapshot_unref(struct sl_source_snapshot *s)
{
	if (!s || --s->refs > 0)
		return;
	if (s->tree)
		sl_source__rm_rf(s->tree);
	free(s->revision);
	free(s->tree);
	free(s->root);
	free(s->problems);
	sl_manifest_set_free(s->manifests);
	free(s);
}

const char *sl_source_snapshot_revision(const struct sl_source_snapshot *s)
{
	return s->revision;
}
const char *sl_source_snapshot_root(const struct sl_source_snapshot *s)
{
	return s->root;
}
enum sl_source_kind sl_source_snapshot_kind(const struct sl_source_snapshot *s)
{
	return s->kind;
}
size_t sl_source_snapshot_files(const struct sl_source_snapshot *s)
{
	return s->files;
}
const char *sl_source_snapshot_problems(const struct sl_source_snapshot *s)
{
	return s->problems;
}
int64_t sl_source_snapshot_time(const struct sl_source_snapshot *s)
{
	return s->time;
}

static int rm_rf_at(int dfd, const char *name, int depth)
{
	struct stat st;
	int r = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		int fd;
		DIR *d;
		struct dirent *de;

		if (depth > 256)
			return -ELOOP;
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			return -errno;
		}
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			int q = rm_rf_at(dirfd(d), de->d_name, depth + 1);
			if (q < 0 && !r)
				r = q;
		}
		closedir(d);
		if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !r)
			r = -errno;
	} else if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
		r = -errno;
	}
	return r;
}

int sl_source__rm_rf(const char *path)
{
	return rm_rf_at(AT_FDCWD, path, 0);
}

int sl_source__mkdir_p(const char *path, int mode)
{
	_cleanup_free_ char *p = sl_strdup(path);
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

char *sl_source__tree_path_new(struct sl_source *src, const char *tag)
{
	/* seq is only advanced by worker jobs, which run one at a time */
	return sl_asprintf("%s/%.12s.%lu", src->trees_dir, tag, ++src->seq);
}

const struct sl_manifest_set *sl_source_snapshot_manifests(const struct sl_source_snapshot *s)
{
	return s->manifests;
}
