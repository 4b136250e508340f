/* The Git backend: a bare clone in the cache directory, driven through
 * libgit2 on the source's worker only. Its ops are a refresh (a fetch that
 * asks the remote for the one ref it needs; a damaged clone is cloned
 * again), an export of a revision (git-export.c) and write-back commits
 * pushed to the branch (git-writeback.c); the network side is
 * git-remote.c. */
#include "git-internal.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 120000
/* Every fetch that brings something adds a pack to the cache; past this many
 * they are packed into one (see compact), so a source that follows a busy
 * branch for months keeps a bounded number of files, open descriptors and
 * pack lookups. */
#define PACKS_MAX 24
/* libgit2 keeps pack files open; at most this many at once. */
#define OPEN_PACKS_MAX 64

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void shutdown_libgit2(void)
{
	git_libgit2_shutdown();
}

static void init_libgit2(void)
{
	/* once per process; released at exit so leak checkers see only ours */
	if (git_libgit2_init() > 0) {
		atexit(shutdown_libgit2);
		git_libgit2_opts(GIT_OPT_SET_MWINDOW_FILE_LIMIT, (size_t)OPEN_PACKS_MAX);
	}
}

/* The backend's own state around the interface's part. */
static struct sl_source__git *git_of(struct sl_source__backend *be)
{
	_Static_assert(offsetof(struct sl_source__git, base) == 0, "base comes first");
	return (struct sl_source__git *)be;
}

/* Opens the bare clone, or creates it; a clone that cannot be opened, or
 * any clone when fresh, is removed and created again. */
static int repo_open(struct sl_source__git *g, bool fresh, struct sl_error *err)
{
	int r;

	if (!g->repo_path) {
		g->repo_path = sl_asprintf("%s/repo.git", sl_source__cache_dir(g->base.src));
		if (!g->repo_path)
			return sl_error_set(err, SL_ENOMEM, "out of memory");
	}
	if (fresh) {
		git_repository_free(g->repo);
		g->repo = NULL;
		(void)sl_file_rm_rf(g->repo_path, NULL); /* the init below says what is wrong */
		g->damaged = false;
	}
	if (g->repo)
		return 0;
	r = git_repository_open_bare(&g->repo, g->repo_path);
	if (r < 0) {
		g->repo = NULL;
		(void)sl_file_rm_rf(g->repo_path, NULL);
		r = git_repository_init(&g->repo, g->repo_path, 1);
		if (r < 0) {
			g->repo = NULL;
			return sl_source__git_fail(g, NULL, r, "cannot create the cache repository", err);
		}
	}
	return 0;
}

/* Closes the clone between operations: libgit2 holds a descriptor per pack
 * it has read while a repository is open, and a source waits far longer
 * than it works. Opening a bare clone again costs well under a millisecond. */
static void repo_close(struct sl_source__git *g)
{
	git_repository_free(g->repo);
	g->repo = NULL;
}

/* Did the last libgit2 failure come from a damaged clone? */
static bool corrupt_class(void)
{
	const git_error *e = git_error_last();
	if (!e)
		return false;
	switch (e->klass) {
	case GIT_ERROR_ODB:
	case GIT_ERROR_ZLIB:
	case GIT_ERROR_OBJECT:
	case GIT_ERROR_REPOSITORY:
	case GIT_ERROR_INDEXER:
	case GIT_ERROR_REFERENCE:
		return true;
	default:
		return false;
	}
}

/* The packs in the cache: their count, and whether name (a pack's hash) is one. */
static int count_packs(const char *pack_dir)
{
	DIR *d = opendir(pack_dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (sl_str_has_prefix(e->d_name, "pack-") && sl_str_has_suffix(e->d_name, ".pack"))
			n++;
	closedir(d);
	return n;
}

/* Removes every pack file (.pack, .idx, .rev, .keep, ...) but keep's. */
static void remove_packs_but(const char *pack_dir, const char *keep)
{
	DIR *d = opendir(pack_dir);
	struct dirent *e;
	char p[4096];

	if (!d)
		return;
	while ((e = readdir(d))) {
		const char *dot = strrchr(e->d_name, '.');
		if (!sl_str_has_prefix(e->d_name, "pack-") || !dot)
			continue;
		if ((size_t)(dot - e->d_name) == strlen("pack-") + strlen(keep) &&
		    !strncmp(e->d_name + strlen("pack-"), keep, strlen(keep)))
			continue;
		if (sl_snprintf_ok(p, sizeof(p), "%s/%s", pack_dir, e->d_name))
			(void)unlink(p);
	}
	closedir(d);
}

static int push_ref(const char *name, void *payload)
{
	git_revwalk *walk = payload;
	/* a ref that cannot be walked (not a commit) keeps nothing */
	(void)git_revwalk_push_ref(walk, name);
	return 0;
}

/* Packs everything the cache's refs reach into one pack and removes the
 * others, once there are more than PACKS_MAX: what only a rewritten history
 * reached goes with them. The repository is reopened around the removal, so
 * libgit2 holds no descriptor of a removed pack. Best effort: on failure the
 * packs stay as they are and the next fetch tries again. */
static void compact(struct sl_source__git *g)
{
	_cleanup_free_ char *pack_dir = sl_asprintf("%s/objects/pack", g->repo_path);
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	char name[GIT_OID_HEXSZ + 1];
	struct sl_error err = {0};
	int n, r;

	if (!pack_dir || (n = count_packs(pack_dir)) <= PACKS_MAX)
		return;
	r = git_packbuilder_new(&pb, g->repo);
	if (r == 0)
		r = git_revwalk_new(&walk, g->repo);
	if (r == 0)
		r = git_reference_foreach_name(g->repo, push_ref, walk);
	if (r == 0)
		r = git_packbuilder_insert_walk(pb, walk);
	if (r == 0)
		r = git_packbuilder_write(pb, NULL, 0, NULL, NULL);
	if (r == 0)
		snprintf(name, sizeof(name), "%s", git_packbuilder_name(pb));
	git_revwalk_free(walk);
	git_packbuilder_free(pb);
	if (r < 0) {
		const git_error *e = git_error_last();
		sl_warn("git source: could not pack the cache's %d packs into one: %s", n, e ? e->message : "");
		return;
	}
	git_repository_free(g->repo);
	g->repo = NULL;
	remove_packs_but(pack_dir, name);
	if (repo_open(g, false, &err) < 0)
		sl_warn("git source: reopening the cache after packing: %s", err.msg);
	else
		sl_debug("git source: %d packs packed into one (%s)", n, name);
}

static int fetch_once(struct sl_source__git *g, struct sl_source__git_target *t, struct sl_error *err)
{
	struct sl_source__git_op op;
	int r;

	sl_source__git_op_begin(&op, g);
	r = sl_source__git_fetch(&op, t, err);
	sl_source__git_op_end(&op);
	return r;
}

static int git_refresh(struct sl_source__backend *be, struct sl_source__check *chk, struct sl_error *err)
{
	struct sl_source__git *g = git_of(be);
	struct sl_source__git_target t;
	int r;

	pthread_once(&init_once, init_libgit2);
	git_error_clear();
	r = repo_open(g, g->damaged, err);
	if (r < 0)
		return r;
	r = fetch_once(g, &t, err);
	if (r < 0 && corrupt_class()) {
		/* a damaged cache is cloned again */
		sl_error_clear(err);
		r = repo_open(g, true, err);
		if (r < 0)
			return r;
		r = fetch_once(g, &t, err);
	}
	if (r < 0) {
		repo_close(g);
		return r;
	}
	git_oid_tostr(chk->rev, sizeof(chk->rev), &t.oid);
	if (!t.have)
		compact(g);
	repo_close(g);
	return 0;
}

static int git_export(struct sl_source__backend *be, struct sl_source__check *chk, const char *dir,
                      struct sl_error *err)
{
	struct sl_source__git *g = git_of(be);
	int r;

	pthread_once(&init_once, init_libgit2);
	git_error_clear();
	r = repo_open(g, false, err);
	if (r < 0)
		return r;
	r = sl_source__git_export(g, chk, dir, err);
	if (r < 0 && corrupt_class())
		g->damaged = true;
	repo_close(g);
	return r;
}

static int git_write_back(struct sl_source__backend *be, struct sl_source__writeback *wb,
                          struct sl_error *err)
{
	struct sl_source__git *g = git_of(be);
	int r;

	pthread_once(&init_once, init_libgit2);
	git_error_clear();
	r = repo_open(g, false, err);
	if (r < 0)
		return r;
	r = sl_source__git_writeback(g, wb, err);
	repo_close(g);
	return r;
}

static void git_free(struct sl_source__backend *be)
{
	struct sl_source__git *g = git_of(be);

	git_repository_free(g->repo);
	free(g->repo_path);
	free(g->url);
	free(g->ref);
	free(g->path);
	free(g->username);
	free(g->password_file);
	free(g->ssh_key_file);
	free(g->ssh_passphrase_file);
	free(g->known_hosts_file);
	free(g->ca_file);
	free(g->ca_dir);
	free(g->author_name);
	free(g->author_email);
	free(g);
}

static const struct sl_source__backend_ops git_ops = {
    .name = "git",
    .refresh = git_refresh,
    .export = git_export,
    .write_back = git_write_back,
    .free = git_free,
};

/* ---- creation ------------------------------------------------------------------- */

static int validate(const struct sl_source_options *o, struct sl_error *err)
{
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

/* Copies an optional string: NULL and "" are both unset (NULL). */
static int dup_opt(char **dst, const char *s)
{
	if (!s || !*s) {
		*dst = NULL;
		return 0;
	}
	*dst = sl_strdup(s);
	return *dst ? 0 : SL_ENOMEM;
}

int sl_source__git_new(struct sl_source *src, struct sl_loop *loop, const struct sl_source_options *o,
                       struct sl_source__backend **ret, struct sl_error *err)
{
	struct sl_source__git *g;
	int r;

	r = validate(o, err);
	if (r < 0)
		return r;
	g = calloc(1, sizeof(*g));
	if (!g)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	g->base.ops = &git_ops;
	g->base.src = src;
	g->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	g->max_file_size = o->max_file_size;
	g->max_files = o->max_files;
	r = 0;
	r |= dup_opt(&g->url, o->url);
	r |= dup_opt(&g->ref, o->ref);
	r |= dup_opt(&g->path, o->path);
	r |= dup_opt(&g->username, o->username);
	r |= dup_opt(&g->password_file, o->password_file);
	r |= dup_opt(&g->ssh_key_file, o->ssh_key_file);
	r |= dup_opt(&g->ssh_passphrase_file, o->ssh_passphrase_file);
	r |= dup_opt(&g->known_hosts_file, o->known_hosts_file);
	r |= dup_opt(&g->ca_file, o->ca_file);
	r |= dup_opt(&g->ca_dir, o->ca_dir);
	r |= dup_opt(&g->author_name, o->author_name ? o->author_name : "sluice");
	r |= dup_opt(&g->author_email, o->author_email ? o->author_email : "sluice@localhost");
	if (r) {
		git_free(&g->base);
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	}
	if (g->path) {
		/* "a/b/" and "a/b" are the same subdirectory */
		size_t n = strlen(g->path);
		while (n && g->path[n - 1] == '/')
			g->path[--n] = '\0';
	}
	/* a commit or a tag cannot be moved by a push */
	g->base.can_write_back =
	    !g->ref || !(sl_source__git_is_sha(g->ref) || sl_str_has_prefix(g->ref, "refs/tags/"));
	*ret = &g->base;
	return 0;
}
