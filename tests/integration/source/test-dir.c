/* Directory sources with real inotify: the ConfigMap volume swap (..data
 * renamed over), the git-sync swap (a link renamed over to a new worktree),
 * a burst of ten writes giving one snapshot, new subdirectories, equal
 * content giving an equal id, the root vanishing and coming back, a
 * symlink leaving the root refused; the quiet time (a single write waits
 * the shortest, files written over a while give one snapshot or a few);
 * and a change to one file of 1,000 parsing that file alone. */
#include "srctest.h"

#include "sluice/manifest.h"

#define QUIET_MIN_MS 15
#define QUIET_MAX_MS 200

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
	o.debounce_min_ms = QUIET_MIN_MS;
	o.debounce_max_ms = QUIET_MAX_MS;
	if (sl_source_new(loop, &o, t_source_fn, rec, &src, &err) < 0)
		T_FAIL("sl_source_new: %s", err.msg);
	if (sl_source_start(src, &err) < 0)
		T_FAIL("sl_source_start: %s", err.msg);
	return src;
}

/* The first document of file rel in snapshot s, as compact JSON (free it),
 * or NULL when the snapshot has no document from that file. */
static char *file_in(struct sl_source_snapshot *s, const char *rel)
{
	const struct sl_manifest_set *ms = sl_source_snapshot_manifests(s);

	for (size_t i = 0; i < sl_manifest_set_doc_count(ms); i++)
		if (!strcmp(sl_manifest_set_doc(ms, i)->file, rel))
			return cJSON_PrintUnformatted(sl_manifest_set_doc(ms, i)->obj);
	return NULL;
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
	T_ASSERT(s && strstr(s, "\"v\":\"2\""), "swapped content");
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
	T_ASSERT(s && strstr(s, "\"rev\":\"aaa\""), "first worktree");
	free(s);
	t_sh_ok("cd gs && mkdir -p .worktrees/bbb/streams && "
	        "printf 'kind: ConfigMap\\nmetadata: {name: s}\\ndata: {rev: bbb}\\n' > "
	        ".worktrees/bbb/streams/s.yaml && "
	        "ln -s .worktrees/bbb repo.tmp && mv -T repo.tmp repo");
	expect_one(&r, 1, "a git-sync swap");
	s = file_in(r.snap, "streams/s.yaml");
	T_ASSERT(s && strstr(s, "\"rev\":\"bbb\""), "second worktree");
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
	t_sh_ok("printf 'kind: ConfigMap\\nmetadata: {name: d}\\ndata: {x: edited}\\n' > "
	        "plain/new/deeper/d.yaml");
	expect_one(&r, 3, "an edit in the new subdirectory");
	s = file_in(r.snap, "new/deeper/d.yaml");
	T_ASSERT(s && strstr(s, "\"x\":\"edited\""), "edited content");
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
	T_ASSERT(!s, "the file outside the root was read");
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
	T_ASSERT(s && strstr(s, "\"i\":\"11999\""), "final content: %s", s ? s : "(none)");
	free(s);
	sl_source_free(src);
	t_rec_free(&r);
}

/* Runs the loop until the file path (relative to t_dir) exists. */
static void run_until_file(const char *path, int timeout_ms)
{
	char p[512];
	uint64_t end = sl_now_ms() + (uint64_t)timeout_ms;

	snprintf(p, sizeof(p), "%s/%s", t_dir, path);
	while (access(p, F_OK) != 0) {
		T_ASSERT(sl_now_ms() < end, "%s did not appear", path);
		t_run_for(loop, 10);
	}
}

static void quiet_time(void)
{
	struct t_rec r = {0};
	struct sl_source *src;
	struct sl_source_stats st;
	const unsigned n = 40;
	unsigned before;

	t_sh_ok("mkdir -p quiet && printf 'kind: ConfigMap\\nmetadata: {name: q}\\n' > quiet/q.yaml");
	src = mk("quiet", &r);
	expect_one(&r, 0, "start");

	/* one write after a quiet spell: one snapshot, after the shortest
	 * quiet time (its events are all read at once: the shell is done
	 * before the loop runs again) */
	t_sh_ok("printf 'kind: ConfigMap\\nmetadata: {name: q}\\ndata: {v: x1}\\n' > quiet/q.yaml");
	expect_one(&r, 1, "a single write");
	sl_source_stats(src, &st);
	T_ASSERT(st.last_quiet_ms == QUIET_MIN_MS, "a single write waited for %llu ms of quiet, want %d",
	         (unsigned long long)st.last_quiet_ms, QUIET_MIN_MS);

	/* files written one by one, 30 ms apart (more than the shortest
	 * quiet time), while the loop runs (a writer in the background, each
	 * file written aside and renamed in): the quiet time grows with the
	 * burst, which gives a few snapshots (a fixed 15 ms would give one per
	 * file), the last one with every file */
	before = r.snapshots;
	t_sh_ok("python3 -c \"\n"
	        "import os, time\n"
	        "t0 = p = time.time(); gap = 0\n"
	        "for i in range(%u):\n"
	        "    open('quiet/.tmp', 'w').write('kind: ConfigMap\\nmetadata: {name: b%%d}\\n' %% i)\n"
	        "    os.rename('quiet/.tmp', 'quiet/b%%02d.yaml' %% i)\n"
	        "    n = time.time(); gap = max(gap, n - p); p = n\n"
	        "    time.sleep(0.03)\n"
	        "open('quiet-done', 'w').write('%%.0f ms, longest gap %%.0f ms' %% ((p - t0) * 1000, gap * "
	        "1000))\n"
	        "\" >/dev/null 2>&1 &",
	        n);
	run_until_file("quiet-done", 60000);
	t_run_for(loop, 1000);
	{
		char done[512];
		_cleanup_free_ char *how = NULL;
		snprintf(done, sizeof(done), "%s/quiet-done", t_dir);
		how = t_read(done);
		fprintf(stderr, "# %u files written over %s: %u snapshot(s)\n", n, how ? how : "?",
		        r.snapshots - before);
	}
	T_ASSERT(r.snapshots > before && r.snapshots - before <= n / 5,
	         "%u snapshots for %u files written 30 ms apart, want 1 to %u", r.snapshots - before, n,
	         n / 5);
	T_ASSERT(sl_source_snapshot_files(r.snap) == n + 1, "files %zu, want %u",
	         sl_source_snapshot_files(r.snap), n + 1);
	sl_source_free(src);
	t_rec_free(&r);
}

static void parse_once(void)
{
	struct t_rec r = {0};
	struct sl_source *src;
	struct sl_source_snapshot *old;
	struct sl_source_stats st;
	const struct sl_manifest_set *ms;
	const struct sl_manifest_doc *d;
	const unsigned n = 1000;

	t_sh_ok("python3 -c \"\n"
	        "import os\n"
	        "for i in range(%u):\n"
	        "    os.makedirs('big/d%%d' %% (i %% 10), exist_ok=True)\n"
	        "    open('big/d%%d/cm-%%04d.yaml' %% (i %% 10, i), 'w').write("
	        "'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: cm-%%d, namespace: big}\\n"
	        "data: {i: \\'%%d\\'}\\n' %% (i, i))\n"
	        "\"",
	        n);
	src = mk("big", &r);
	/* the first scan parses 1,000 files: slow under sanitizers */
	T_ASSERT(t_wait(loop, &r.snapshots, 0, 120000), "no snapshot of 1,000 files");
	expect_one(&r, 0, "start");
	sl_source_stats(src, &st);
	T_ASSERT(st.files_parsed == n, "files parsed for the first snapshot: %llu, want %u",
	         (unsigned long long)st.files_parsed, n);
	T_ASSERT(sl_manifest_set_doc_count(sl_source_snapshot_manifests(r.snap)) == n, "documents");

	/* one file changed: one file parsed; the other documents are the
	 * previous snapshot's, shared */
	old = sl_source_snapshot_ref(r.snap);
	t_sh_ok("printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: cm-7, namespace: big}\\n"
	        "data: {i: changed}\\n' > big/d7/cm-0007.yaml");
	expect_one(&r, 1, "one file of 1,000 changed");
	sl_source_stats(src, &st);
	T_ASSERT(st.files_parsed == n + 1, "files parsed after one changed: %llu, want %u",
	         (unsigned long long)st.files_parsed - n, 1);
	ms = sl_source_snapshot_manifests(r.snap);
	T_ASSERT(sl_manifest_set_doc_count(ms) == n && sl_manifest_set_error_count(ms) == 0, "documents");
	d = sl_manifest_set_find(ms, "", "ConfigMap", "big", "cm-7");
	T_ASSERT(d && !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(d->obj, "data"), "i")->valuestring,
	                      "changed"),
	         "the changed document");
	d = sl_manifest_set_find(ms, "", "ConfigMap", "big", "cm-8");
	T_ASSERT(d &&
	             !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(d->obj, "data"), "i")->valuestring, "8"),
	         "an unchanged document");
	T_ASSERT(
	    d->obj ==
	        sl_manifest_set_find(sl_source_snapshot_manifests(old), "", "ConfigMap", "big", "cm-8")->obj,
	    "an unchanged document was parsed again");
	d = sl_manifest_set_find(sl_source_snapshot_manifests(old), "", "ConfigMap", "big", "cm-7");
	T_ASSERT(!strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(d->obj, "data"), "i")->valuestring, "7"),
	         "the previous snapshot changed");
	T_ASSERT(!sl_source_snapshot_root(r.snap), "a directory snapshot has no tree: nothing is copied");
	sl_source_snapshot_unref(old);

	/* a file removed and another renamed: nothing parsed for the first,
	 * the second is new under its new path */
	t_sh_ok("rm big/d1/cm-0001.yaml && mv big/d2/cm-0002.yaml big/d2/moved.yaml");
	expect_one(&r, 2, "a file removed and one renamed");
	sl_source_stats(src, &st);
	T_ASSERT(st.files_parsed == n + 2, "files parsed after a removal and a rename: %llu more, want 2",
	         (unsigned long long)st.files_parsed - n);
	T_ASSERT(sl_manifest_set_doc_count(sl_source_snapshot_manifests(r.snap)) == n - 1, "documents");
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
	quiet_time();
	parse_once();
	sl_loop_free(loop);
	fprintf(stderr, "ok\n");
	return 0;
}
