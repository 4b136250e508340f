/* Snapshots: a revision id and a private tree that nothing writes to while a
 * reference exists; the last reference removes the tree. */
#include "source-internal.h"

struct sl_source_snapshot {
	unsigned refs;
	enum sl_source_kind kind;
	char *revision;
	char *tree; /* the directory we own and delete: the root manifests load from */
	char *problems;
	size_t files;
	int64_t time;
	struct sl_manifest_set *manifests;
};

int sl_source__snapshot_new(enum sl_source_kind kind, const char *revision, const char *tree_dir,
                            size_t files, const char *problems, const struct sl_manifest_limits *lim,
                            struct sl_source_snapshot **ret, struct sl_error *err)
{
	struct sl_source_snapshot *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	s->refs = 1;
	s->kind = kind;
	s->revision = sl_strdup(revision);
	s->tree = sl_strdup(tree_dir);
	s->problems = sl_strdup(problems ? problems : "");
	s->files = files;
	s->time = sl_wall_s();
	if (!s->revision || !s->tree || !s->problems) {
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	/* parsing happens here, on the worker, so the loop never waits for it */
	r = sl_manifest_load_dir(s->tree, lim, &s->manifests, err);
	if (r < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	/* the caller still owns the tree on failure */
	free(s->tree);
	s->tree = NULL;
	sl_source_snapshot_unref(s);
	return r;
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
		(void)sl_file_rm_rf(s->tree, NULL); /* nobody to tell; a leftover goes at the next start */
	free(s->revision);
	free(s->tree);
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
	return s->tree;
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

const struct sl_manifest_set *sl_source_snapshot_manifests(const struct sl_source_snapshot *s)
{
	return s->manifests;
}
