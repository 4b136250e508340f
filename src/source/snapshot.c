/* Snapshots: a revision id and a private tree that nothing writes to while a
 * reference exists; the last reference removes the tree. */
#include "source-internal.h"

#include <string.h>

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

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct sl_source__file *)a)->rel, ((const struct sl_source__file *)b)->rel);
}

/* The manifests of the files chk listed, from the cache the export put them
 * in, in sorted path order as a tree load has them. */
static int manifests_from_list(const struct sl_source__check *chk, struct sl_manifest_set *set,
                               struct sl_error *err)
{
	_cleanup_free_ struct sl_source__file *v = NULL;
	int r = 0;

	if (!chk->n_list)
		return 0;
	v = malloc(chk->n_list * sizeof(*v));
	if (!v)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	memcpy(v, chk->list, chk->n_list * sizeof(*v));
	qsort(v, chk->n_list, sizeof(*v), cmp_file);
	for (size_t i = 0; i < chk->n_list && r == 0; i++)
		r = sl_manifest_set_add_cached(set, chk->cache, v[i].rel, v[i].sha256, err);
	return r;
}

static int manifests_load(const struct sl_source__check *chk, const char *root, struct sl_manifest_set **ret,
                          struct sl_error *err)
{
	struct sl_manifest_set *set = sl_manifest_set_new(sl_manifest_cache_limits(chk->cache));
	int r;

	if (!set)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	r = root ? sl_manifest_set_add_dir_cached(set, chk->cache, root, NULL, err)
	         : manifests_from_list(chk, set, err);
	if (r == 0 && sl_manifest_set_validate(set) < 0)
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
	if (r < 0) {
		sl_manifest_set_free(set);
		return r;
	}
	*ret = set;
	return 0;
}

int sl_source__snapshot_new(enum sl_source_kind kind, const struct sl_source__check *chk,
                            const char *tree_dir, struct sl_source_snapshot **ret, struct sl_error *err)
{
	struct sl_source_snapshot *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	s->refs = 1;
	s->kind = kind;
	s->revision = sl_strdup(chk->rev);
	s->tree = tree_dir ? sl_strdup(tree_dir) : NULL;
	s->problems = sl_strdup(chk->problems.data ? chk->problems.data : "");
	s->files = chk->files;
	s->time = sl_wall_s();
	if (!s->revision || (tree_dir && !s->tree) || !s->problems) {
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	/* parsing happens here, on the worker, so the loop never waits for it */
	r = manifests_load(chk, s->tree, &s->manifests, err);
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
