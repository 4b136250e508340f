/* Git source against a bare repository over file://: first snapshot, no-op
 * fetch, a pushed commit, the old tree staying intact while held, a
 * force-pushed branch, a deleted ref keeping the last good snapshot, a tag,
 * a SHA, and a corrupt cache cloned again. */
#include "srctest.h"

#include "sluice/manifest.h"

#include <dirent.h>
#include <sys/stat.h>

static struct sl_loop *loop;

static struct sl_source *mk(const char *ref, const char *path, struct t_rec *rec, const char *cache)
{
	struct sl_source_options o = SL_SOURCE_OPTIONS_INIT;
	struct sl_source *src;
	struct sl_error err = {0};
	char url[512], cdir[512];

	snprintf(url, sizeof(url), "file://%s/remote.git", t_dir);
	snprintf(cdir, sizeof(cdir), "%s/%s", t_dir, cache);
	o.url = url;
	o.ref = ref;
	o.path = path;
	o.cache_dir = cdir;
	o.interval_ms = 3600 * 1000; /* only triggers drive these tests */
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

/* Entries of dir (relative to t_dir unless absolute) ending in suffix (NULL: all). */
static unsigned count_entries(const char *dir, const char *suffix)
{
	char p[1024];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s%s%s", dir[0] == '/' ? "" : t_dir, dir[0] == '/' ? "" : "/", dir);
	d = opendir(p);
	T_ASSERT(d, "opendir %s", p);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && (!suffix || sl_str_has_suffix(e->d_name, suffix)))
			n++;
	closedir(d);
	return n;
}

static void push_file(const char *rel, const char *content, const char *msg)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/work/%s", t_dir, rel);
	t_write(p, content);
	t_sh_ok("cd work && git add -A && git commit -qm '%s' && git push -q origin HEAD:main", msg);
}

int main(void)
{
	struct t_rec rec = {0}, rtag = {0}, rsha = {0}, rc = {0};
	struct sl_source *src, *stag, *ssha, *sc;
	struct sl_source_snapshot *old;
	char *s, *rev1, *rev2, *rev3, *rev4;
	_cleanup_free_ char *oldroot = NULL;
	struct stat st;
	unsigned n;

	t_setup("git-file");
	if (t_sh(NULL, "git --version >/dev/null") != 0)
		t_skip("git is not installed");
	if (sl_loop_new(&loop) < 0)
		T_FAIL("loop");
	t_sh_ok("git init -q --bare -b main remote.git && git init -q -b main work && "
	        "cd work && git remote add origin ../remote.git && mkdir -p deploy/sub");
	t_write("work/README.md", "not a manifest directory\n");
	t_write("work/deploy/sub/b.yaml", "kind: ConfigMap\nmetadata: {name: b}\n");
	push_file("deploy/a.yaml", "kind: ConfigMap\nmetadata: {name: a}\ndata: {v: '1'}\n", "one");
	rev1 = t_sh_out("git --git-dir remote.git rev-parse main");

	/* first snapshot: the subdirectory of the commit on main */
	src = mk("main", "deploy", &rec, "cache");
	T_ASSERT(t_wait(loop, &rec.snapshots, 0, 30000), "no first snapshot");
	T_ASSERT(!strcmp(rec.revision, rev1), "revision %s, want %s", rec.revision, rev1);
	T_ASSERT(sl_source_snapshot_files(rec.snap) == 2, "files %zu", sl_source_snapshot_files(rec.snap));
	{
		const struct sl_manifest_set *ms = sl_source_snapshot_manifests(rec.snap);
		T_ASSERT(ms && sl_manifest_set_doc_count(ms) == 2, "two documents loaded");
		T_ASSERT(!strcmp(sl_manifest_set_doc(ms, 0)->file, "a.yaml"), "file %s",
		         sl_manifest_set_doc(ms, 0)->file);
	}
	s = file_in(rec.snap, "a.yaml");
	T_ASSERT(s && strstr(s, "v: '1'"), "a.yaml content");
	free(s);
	s = file_in(rec.snap, "sub/b.yaml");
	T_ASSERT(s && strstr(s, "name: b"), "sub/b.yaml content");
	free(s);
	s = file_in(rec.snap, "../README.md");
	T_ASSERT(!s, "only the subdirectory is checked out");
	T_ASSERT(sl_source_current(src) == rec.snap, "current");

	/* a fetch with nothing new: no new snapshot */
	n = rec.unchanged;
	sl_source_trigger(src);
	T_ASSERT(t_wait(loop, &rec.unchanged, n, 30000), "no unchanged event");
	T_ASSERT(rec.snapshots == 1, "snapshots %u", rec.snapshots);

	/* a pushed commit: a new snapshot; the old tree is untouched while held */
	old = sl_source_snapshot_ref(rec.snap);
	oldroot = sl_strdup(sl_source_snapshot_root(old));
	push_file("deploy/a.yaml", "kind: ConfigMap\nmetadata: {name: a}\ndata: {v: '2'}\n", "two");
	rev2 = t_sh_out("git --git-dir remote.git rev-parse main");
	sl_source_trigger(src);
	T_ASSERT(t_wait(loop, &rec.snapshots, 1, 30000), "no second snapshot");
	T_ASSERT(!strcmp(rec.revision, rev2), "revision %s, want %s", rec.revision, rev2);
	s = file_in(rec.snap, "a.yaml");
	T_ASSERT(s && strstr(s, "v: '2'"), "new content");
	free(s);
	s = file_in(old, "a.yaml");
	T_ASSERT(s && strstr(s, "v: '1'"), "the old snapshot's tree changed underneath it");
	free(s);
	T_ASSERT(strcmp(oldroot, sl_source_snapshot_root(rec.snap)) != 0, "trees differ");
	sl_source_snapshot_unref(old);
	T_ASSERT(stat(oldroot, &st) < 0, "the released tree is deleted");

	/* force push: history rewritten, the source follows the new head */
	t_sh_ok("cd work && git reset -q --hard HEAD~1");
	t_write("work/deploy/a.yaml", "kind: ConfigMap\nmetadata: {name: a}\ndata: {v: forced}\n");
	t_sh_ok("cd work && git commit -qam forced && git push -qf origin HEAD:main");
	rev3 = t_sh_out("git --git-dir remote.git rev-parse main");
	T_ASSERT(strcmp(rev3, rev2) != 0, "force push changed the head");
	sl_source_trigger(src);
	T_ASSERT(t_wait(loop, &rec.snapshots, 2, 30000), "no snapshot after a force push");
	T_ASSERT(!strcmp(rec.revision, rev3), "revision %s, want %s", rec.revision, rev3);
	s = file_in(rec.snap, "a.yaml");
	T_ASSERT(s && strstr(s, "v: forced"), "forced content");
	free(s);

	/* the ref deleted: an error naming it, the last good snapshot stays */
	t_sh_ok("git --git-dir remote.git update-ref -d refs/heads/main");
	n = rec.errors;
	sl_source_trigger(src);
	T_ASSERT(t_wait(loop, &rec.errors, n, 30000), "no error for a deleted ref");
	T_ASSERT(rec.last_error.code == SL_ENOTFOUND, "code %d", rec.last_error.code);
	T_ASSERT(strstr(rec.last_error.msg, "main"), "message names the ref: %s", rec.last_error.msg);
	T_ASSERT(sl_source_current(src) && !strcmp(sl_source_snapshot_revision(sl_source_current(src)), rev3),
	         "last good snapshot kept");
	t_sh_ok("git --git-dir remote.git update-ref refs/heads/main %s", rev3);

	/* a tag (annotated) and a full SHA */
	t_sh_ok("cd work && git tag -a v1 -m v1 %s && git push -q origin v1", rev1);
	stag = mk("v1", "deploy", &rtag, "cache-tag");
	ssha = mk(rev1, NULL, &rsha, "cache-sha");
	T_ASSERT(t_wait(loop, &rtag.snapshots, 0, 30000), "no tag snapshot");
	T_ASSERT(t_wait(loop, &rsha.snapshots, 0, 30000), "no sha snapshot");
	T_ASSERT(!strcmp(rtag.revision, rev1), "tag peeled to its commit: %s", rtag.revision);
	T_ASSERT(!strcmp(rsha.revision, rev1), "sha: %s", rsha.revision);
	s = file_in(rsha.snap, "deploy/a.yaml");
	T_ASSERT(s && strstr(s, "v: '1'"), "sha content");
	free(s);
	sl_source_free(stag);
	sl_source_free(ssha);

	/* files over the size limit are left out; a manifest left out is reported */
	{
		struct t_rec rbig = {0};
		struct sl_source *sbig;
		t_sh_ok("cd work && head -c 5000000 /dev/zero | tr '\\0' 'x' > image.bin && "
		        "(printf 'kind: ConfigMap\\nmetadata: {name: big}\\ndata: {x: '; "
		        "head -c 5000000 /dev/zero | tr '\\0' 'y'; printf '}\\n') > big.yaml && "
		        "git add -A && git commit -qm big && git push -q origin HEAD:main");
		sbig = mk("main", NULL, &rbig, "cache-big");
		T_ASSERT(t_wait(loop, &rbig.snapshots, 0, 60000), "no snapshot with big files");
		T_ASSERT(strstr(sl_source_snapshot_problems(rbig.snap), "big.yaml: 5000") != NULL,
		         "problems: '%s'", sl_source_snapshot_problems(rbig.snap));
		T_ASSERT(!strstr(sl_source_snapshot_problems(rbig.snap), "image.bin"),
		         "a non-manifest reported");
		s = file_in(rbig.snap, "big.yaml");
		T_ASSERT(!s, "an oversized file was written");
		s = file_in(rbig.snap, "deploy/a.yaml");
		T_ASSERT(s != NULL, "the rest is there");
		free(s);
		sl_source_free(sbig);
		t_rec_free(&rbig);
		free(rev3);
		rev3 = t_sh_out("git --git-dir remote.git rev-parse main");
	}

	/* a corrupt cache is cloned again */
	sl_source_free(src);
	t_rec_free(&rec);
	t_sh_ok("echo garbage > cache/repo.git/HEAD && rm -rf cache/repo.git/objects && "
	        "echo '[core' > cache/repo.git/config");
	sc = mk("main", "deploy", &rc, "cache");
	T_ASSERT(t_wait(loop, &rc.snapshots, 0, 30000), "no snapshot from a corrupt cache");
	T_ASSERT(!strcmp(rc.revision, rev3), "revision after reclone %s", rc.revision);
	/* damage the pack under a running source: the next fetch recovers */
	push_file("deploy/c.yaml", "kind: ConfigMap\nmetadata: {name: c}\n", "four");
	rev4 = t_sh_out("git --git-dir remote.git rev-parse main");
	t_sh_ok("for f in cache/repo.git/objects/pack/*.pack; do printf 'PACKjunk' > \"$f\"; done; "
	        "find cache/repo.git/objects -type f ! -path '*/pack/*' -exec sh -c 'printf x > \"$1\"' _ {} "
	        "\\;");
	sl_source_trigger(sc);
	t_wait(loop, &rc.snapshots, 1, 30000);
	if (strcmp(rc.revision, rev4) != 0) {
		/* the first attempt may fail; the retry after backoff must succeed */
		T_ASSERT(rc.errors > 0, "neither a snapshot nor an error");
		sl_source_trigger(sc);
		T_ASSERT(t_wait(loop, &rc.snapshots, 1, 30000), "no recovery from a damaged pack: %s",
		         rc.last_error.msg);
	}
	T_ASSERT(!strcmp(rc.revision, rev4), "revision %s, want %s", rc.revision, rev4);
	sl_source_free(sc);
	t_rec_free(&rc);

	/* a busy branch: every fetch brings a pack; the cache packs them into
	 * one now and then, so files and open descriptors stay bounded */
	{
		struct t_rec rp = {0};
		struct sl_source *sp = mk("main", "deploy", &rp, "cache-packs");
		unsigned fds0, fds, packs;
		char *rev;

		T_ASSERT(t_wait(loop, &rp.snapshots, 0, 30000), "no first snapshot");
		fds0 = count_entries("/proc/self/fd", NULL);
		for (int i = 0; i < 40; i++) {
			char content[128];
			snprintf(content, sizeof(content), "kind: ConfigMap\nmetadata: {name: p}\ndata: {v: '%d'}\n",
			         i);
			push_file("deploy/p.yaml", content, "busy");
			sl_source_trigger(sp);
			T_ASSERT(t_wait(loop, &rp.snapshots, (unsigned)i + 1, 30000), "no snapshot %d", i);
		}
		rev = t_sh_out("git --git-dir remote.git rev-parse main");
		T_ASSERT(!strcmp(rp.revision, rev), "revision %s, want %s", rp.revision, rev);
		s = file_in(rp.snap, "p.yaml");
		T_ASSERT(s && strstr(s, "v: '39'"), "the last commit's content");
		free(s);
		packs = count_entries("cache-packs/repo.git/objects/pack", ".pack");
		fds = count_entries("/proc/self/fd", NULL);
		fprintf(stderr, "# 40 fetches: %u packs in the cache, open fds %u -> %u\n", packs, fds0, fds);
		T_ASSERT(packs >= 1 && packs <= 24, "%u packs after 40 fetches", packs);
		T_ASSERT(fds <= fds0 + 2, "open fds grew from %u to %u", fds0, fds);
		T_ASSERT(t_sh(NULL, "git --git-dir cache-packs/repo.git fsck --connectivity-only "
		                    "refs/sluice/fetched >/dev/null 2>&1") == 0,
		         "the cache is whole after packing");
		free(rev);
		sl_source_free(sp);
		t_rec_free(&rp);
	}

	/* an unreachable remote: an error, no snapshot */
	{
		struct sl_source_options o = SL_SOURCE_OPTIONS_INIT;
		struct sl_source *bad;
		struct sl_error err = {0};
		struct t_rec rb = {0};
		o.url = "file:///nonexistent/sluice/remote.git";
		o.interval_ms = 4000;
		o.jitter_ms = 1;
		if (sl_source_new(loop, &o, t_source_fn, &rb, &bad, &err) < 0 ||
		    sl_source_start(bad, &err) < 0)
			T_FAIL("bad source: %s", err.msg);
		T_ASSERT(t_wait(loop, &rb.errors, 0, 30000), "no error for a missing remote");
		T_ASSERT(rb.snapshots == 0 && !sl_source_current(bad), "no snapshot");
		/* retries back off exponentially (1 s, 2 s, 4 s) up to the interval (4 s) */
		T_ASSERT(t_wait(loop, &rb.errors, 4, 20000), "only %u attempts", rb.errors);
		{
			uint64_t g1 = rb.error_ms[1] - rb.error_ms[0], g2 = rb.error_ms[2] - rb.error_ms[1],
			         g3 = rb.error_ms[3] - rb.error_ms[2], g4 = rb.error_ms[4] - rb.error_ms[3];
			fprintf(stderr, "# backoff: %llu %llu %llu %llu ms\n", (unsigned long long)g1,
			        (unsigned long long)g2, (unsigned long long)g3, (unsigned long long)g4);
			T_ASSERT(g1 >= 950 && g1 < 1900, "first retry after %llu ms", (unsigned long long)g1);
			T_ASSERT(g2 >= 1950 && g2 < 3500, "second retry after %llu ms",
			         (unsigned long long)g2);
			T_ASSERT(g3 >= 3950 && g3 < 5500, "third retry after %llu ms",
			         (unsigned long long)g3);
			T_ASSERT(g4 >= 3950 && g4 < 5500, "capped at the interval: %llu ms",
			         (unsigned long long)g4);
		}
		sl_source_free(bad);
	}

	t_rec_free(&rtag);
	t_rec_free(&rsha);
	free(rev1);
	free(rev2);
	free(rev3);
	free(rev4);
	sl_loop_free(loop);
	fprintf(stderr, "ok\n");
	return 0;
}
