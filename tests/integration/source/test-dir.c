/* Directory sources with real inotify: the ConfigMap volume swap (..data
 * renamed over), the git-sync swap (a link renamed over to a new worktree),
 * a burst of ten writes giving one snapshot, new subdirectories, equal
 * content giving an equal id, the root vanishing and coming back, and a
 * symlink leaving the root refused. */
#include "srctest.h"

#include "sluice/manifest.h"

static struct sl_loop *loop;

static struct sl_source *mk(const char *dir, struct t_rec *rec)
{
	struct sl_source_options o = SL_SOURCE_OPTIONS_INIT;
	struct sl_source *src;
	struct sl_error err = {0};
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", t_dir, dir);
	o.kind = SL_SOURCE_DIR;
	o.dir = p;
	if (sl_source_new(loop, &o, t_source_fn, rec, &src, &err) < 0)
		T_FAIL("sl_source_new: %s", err.msg);
	if (sl_source_start(src, &err) < 0)
		T_FAIL("sl_source_start: %s", err.msg);
	return src;
}

static char *file_in(struct sl_source_snapshot *s, const char *rel)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", sl_source_snapshot_root(s), rel);
	return t_read(p);
}

/* Waits for exactly one more snapshot, then checks no second one follows. */
static void expect_one(struct t_rec *r, unsigned before, const char *what)
{
	T_ASSERT(t_wait(loop, &r->snapshots, before, 10000), "no snapshot after %s", what);
	t_run_for(loop, 800);
	T_ASSERT(r->snapshots == before + 1, "%u snapshots after %s, want exactly one", r->snapshots - before,
	         what);
}

static void expect_none(struct t_rec *r, unsigned before, const char *what)
{
	t_run_for(loop, 800);
	T_ASSERT(r->snapshots == before, "%u snapshots after %s, want none", r->snapshots - before, what);
}

static void configmap(void)
{
	struct t_rec r = {0};
	struct sl_source *src;
	char *s, rev1[80];

	/* the layout the kubelet writes for a ConfigMap volume */
	t_sh_ok(
	    "mkdir -p cm/..2026_01_01 && cd cm && "
	    "printf 'kind: ConfigMap\\nmetadata: {name: a}\\ndata: {v: \"1\"}\\n' > ..2026_01_01/a.yaml && "
	    "printf 'kind: ConfigMap\\nmetadata: {name: b}\\n' > ..2026_01_01/b.yaml && "
	    "ln -s ..2026_01_01 ..data && ln -s ..data/a.yaml a.yaml && ln -s ..data/b.yaml b.yaml");
	src = mk("cm", &r);
	expect_one(&r, 0, "start");
	T_ASSERT(sl_str_has_prefix(r.revision, "sha256:"), "revision %s", r.revision);
	T_ASSERT(sl_source_snapshot_files(r.snap) == 2, "files %zu", sl_source_snapshot_files(r.snap));
	T_ASSERT(sl_manifest_set_doc_count(sl_source_snapshot_manifests(r.snap)) == 2, "docs");
	snprintf(rev1, sizeof(rev1), "%s", r.revision);

	/* an update: new timestamped dir, ..data_tmp renamed over ..data */
	t_sh_ok(
	    "cd cm && mkdir ..2026_01_02 && "
	    "printf 'kind: ConfigMap\\nmetadata: {name: a}\\ndata: {v: \"2\"}\\n' > ..2026_01_02/a.yaml && "
	    "cp ..2026_01_01/b.yaml ..2026_01_02/ && ln -s ..2026_01_02 ..data_tmp && "
	    "mv -T ..data_tmp ..data && rm -rf ..2026_01_01");
	expect_one(&r, 1, "a ConfigMap swap");
	s = file_in(r.snap, "a.yaml");
	T_ASSERT(s && strstr(s, "v: \"2\""), "swapped content");
	free(s);
	T_ASSERT(strcmp(rev1, r.revision) != 0, "new revision");

	/* a new key: new dir, swap, then the new top-level link */
	t_sh_ok("cd cm && mkdir ..2026_01_03 && cp ..2026_01_02/*.yaml ..2026_01_03/ && "
	        "printf 'kind: ConfigMap\\nmetadata: {name: c}\\n' > ..2026_01_03/c.yaml && "
	        "ln -s ..2026_01_03 ..data_tmp && mv -T ..data_tmp ..data && rm -rf ..2026_01_02 && "
	        "ln -s ..data/c.yaml c.yaml");
	expect_one(&r, 2, "a ConfigMap key added");
	T_ASSERT(sl_source_snapshot_files(r.snap) == 3, "files %zu", sl_source_snapshot_files(r.snap));

	/* the same content swapped in again: no new snapshot */
	t_sh_ok("cd cm && mkdir ..2026_01_04 && cp ..2026_01_03/*.yaml ..2026_01_04/ && "
	        "ln -s ..2026_01_04 ..data_tmp && mv -T ..data_tmp ..data && rm -rf ..2026_01_03");
	expect_none(&r, 3, "a swap to equal content");
	sl_source_free(src);
	t_rec_free(&r);
}

static void gitsync(void)
{
	struct t_rec r = {0};
	struct sl_source *src;
	char *s;

	/* git-sync: root/.worktrees/<sha>, and the link root/repo to one */
	t_sh_ok("mkdir -p gs/.worktrees/aaa/streams && cd gs && "
	        "printf 'kind: ConfigMap\\nmetadata: {name: s}\\ndata: {rev: aaa}\\n' > "
	        ".worktrees/aaa/streams/s.yaml && "
	        "ln -s .worktrees/aaa repo");
	src = mk("gs/repo", &r);
	expect_one(&r, 0, "start");
	s = file_in(r.snap, "streams/s.yaml");
	T_ASSERT(s && strstr(s, "rev: aaa"), "first worktree");
	free(s);
	t_sh_ok("cd gs && mkdir -p .worktrees/bbb/streams && "
	        "printf 'kind: ConfigMap\\nmetadata: {name: s}\\ndata: {rev: bbb}\\n' > "
	        ".worktrees/bbb/streams/s.yaml && "
	        "ln -s .worktrees/bbb repo.tmp && mv -T repo.tmp repo");
	expect_one(&r, 1, "a git-sync swap");
	s = file_in(r.snap, "streams/s.yaml");
	T_ASSERT(s && strstr(s, "rev: bbb"), "second worktree");
	free(s);
	/* git-sync removes the old worktree later: nothing changes */
	t_sh_ok("rm -rf gs/.worktrees/aaa");
	expect_none(&r, 2, "removing the old worktree");
	/* and the new worktree edited in place still counts */
	t_sh_ok("printf 'kind: ConfigMap\\nmetadata: {name: s}\\ndata: {rev: bbb2}\\n' > "
	        "gs/.worktrees/bbb/streams/s.yaml");
	expect_one(&r, 2, "an edit inside the worktree");
	sl_source_free(src);
	t_rec_free(&r);
}

static void plain(void)
{
	struct t_rec r = {0}, r2 = {0};
	struct sl_source *src, *src2;
	char *s;

	t_sh_ok("mkdir -p plain && printf 'kind: ConfigMap\\nmetadata: {name: p}\\n' > plain/p.yaml && "
	        "printf 'not yaml, ignored' > plain/notes.txt");
	src = mk("plain", &r);
	expect_one(&r, 0, "start");
	T_ASSERT(sl_source_snapshot_files(r.snap) == 1, "files %zu", sl_source_snapshot_files(r.snap));

	/* ten files written in a burst: one snapshot */
	t_sh_ok("for i in 0 1 2 3 4 5 6 7 8 9; do "
	        "printf 'kind: ConfigMap\\nmetadata: {name: m%%s}\\n' $i > plain/m$i.yaml; sleep 0.02; done");
	expect_one(&r, 1, "a burst of ten writes");
	T_ASSERT(sl_source_snapshot_files(r.snap) == 11, "files %zu", sl_source_snapshot_files(r.snap));

	/* a new subdirectory, then an edit inside it (its own watch) */
	t_sh_ok("mkdir -p plain/new/deeper && printf 'kind: ConfigMap\\nmetadata: {name: d}\\n' > "
	        "plain/new/deeper/d.yaml");
	expect_one(&r, 2, "a new subdirectory");
	t_sh_ok("printf 'kind: ConfigMap\\nmetadata: {name: d}\\ndata: {x: y}\\n' > plain/new/deeper/d.yaml");
	expect_one(&r, 3, "an edit in the new subdirectory");
	s = file_in(r.snap, "new/deeper/d.yaml");
	T_ASSERT(s && strstr(s, "x: y"), "edited content");
	free(s);

	/* rewriting a file with the same bytes: no new snapshot */
	t_sh_ok("cp plain/p.yaml plain/p.tmp && mv plain/p.tmp plain/p.yaml && touch plain/m1.yaml");
	expect_none(&r, 4, "rewriting equal content");

	/* equal content elsewhere: equal id */
	t_sh_ok("cp -a plain plain-copy");
	src2 = mk("plain-copy", &r2);
	expect_one(&r2, 0, "start of the copy");
	T_ASSERT(!strcmp(r.revision, r2.revision), "equal content, different ids: %s %s", r.revision,
	         r2.revision);
	sl_source_free(src2);
	t_rec_free(&r2);

	/* a symlink leaving the root is refused and reported */
	t_sh_ok("printf 'kind: Secret\\nmetadata: {name: x}\\n' > outside.yaml && ln -s ../outside.yaml "
	        "plain/evil.yaml");
	expect_one(&r, 4, "an escaping symlink");
	T_ASSERT(strstr(sl_source_snapshot_problems(r.snap), "evil.yaml"), "problem reported: '%s'",
	         sl_source_snapshot_problems(r.snap));
	s = file_in(r.snap, "evil.yaml");
	T_ASSERT(!s, "the file outside the root was copied");
	t_sh_ok("rm plain/evil.yaml");
	expect_one(&r, 5, "removing the symlink");

	/* the root vanishes: an error, the last snapshot stays; it comes back */
	unsigned e = r.errors;
	t_sh_ok("mv plain plain-gone");
	T_ASSERT(t_wait(loop, &r.errors, e, 10000), "no error when the root vanished");
	T_ASSERT(r.last_error.code == SL_ENOTFOUND, "code %d", r.last_error.code);
	T_ASSERT(sl_source_current(src) == r.snap, "last snapshot kept");
	T_ASSERT(r.snapshots == 6, "snapshots %u", r.snapshots);
	t_sh_ok("mkdir plain && printf 'kind: ConfigMap\\nmetadata: {name: back}\\n' > plain/back.yaml");
	expect_one(&r, 6, "the root coming back");
	T_ASSERT(sl_source_snapshot_files(r.snap) == 1, "files %zu", sl_source_snapshot_files(r.snap));
	t_sh_ok("printf 'kind: ConfigMap\\nmetadata: {name: back2}\\n' > plain/back.yaml");
	expect_one(&r, 7, "an edit in the returned root");
	/* more events than the inotify queue holds (max_queued_events, 16384
	 * by default) while the loop is not reading: the queue overflows, the
	 * source rescans, and one snapshot has the final content */
	t_sh_ok("python3 -c \"\n"
	        "import os\n"
	        "for i in range(12000):\n"
	        "    p = 'plain/churn-%%d.yaml' %% (i %% 50)\n"
	        "    open(p, 'w').write('kind: ConfigMap\\nmetadata: {name: churn-%%d}\\ndata: {i: "
	        "\\'%%d\\'}\\n' %% (i %% 50, i))\n"
	        "\"");
	expect_one(&r, 8, "an inotify queue overflow");
	T_ASSERT(sl_source_snapshot_files(r.snap) == 51, "files %zu", sl_source_snapshot_files(r.snap));
	s = file_in(r.snap, "churn-49.yaml");
	T_ASSERT(s && strstr(s, "i: '11999'"), "final content: %s", s ? s : "(none)");
	free(s);
	sl_source_free(src);
	t_rec_free(&r);
}

int main(void)
{
	t_setup("dir");
	if (sl_loop_new(&loop) < 0)
		T_FAIL("loop");
	configmap();
	gitsync();
	plain();
	sl_loop_free(loop);
	fprintf(stderr, "ok\n");
	return 0;
}
