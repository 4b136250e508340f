/* Write-back against real remotes: a bare repository over file:// and git
 * smart HTTP. Only the one scalar changes (checked byte for byte), a missing
 * field is added, a repeated request changes nothing, a gone document is
 * skipped, and a second writer pushing at the same moment loses nothing. */
#include "srctest.h"

static struct sl_loop *loop;
static char fixtures[512];

static const char *BFR = "# Backfill requests of the orders stream\n"
                         "apiVersion: streaming.sneaksanddata.com/v1\n"
                         "kind: ConfigMap\n"
                         "metadata: {name: unrelated}\n"
                         "data: {completed: \"false\"}\n"
                         "---\n"
                         "apiVersion: streaming.sneaksanddata.com/v1\n"
                         "kind: BackfillRequest\n"
                         "metadata:\n"
                         "  name: orders-backfill   # keep this comment\n"
                         "  namespace: streams\n"
                         "spec:\n"
                         "  streamClass: \"mock-stream\"\n"
                         "  streamId: 'orders'\n"
                         "  completed: false # sluice flips this\n"
                         "  payload: {from: \"2024-01-01\"}\n"
                         "---\n"
                         "apiVersion: streaming.sneaksanddata.com/v1\n"
                         "kind: BackfillRequest\n"
                         "metadata: {name: nofield, namespace: streams}\n"
                         "spec:\n"
                         "    streamClass: mock-stream\n"
                         "    streamId: orders\n"
                         "---\n"
                         "apiVersion: streaming.sneaksanddata.com/v1\n"
                         "kind: BackfillRequest\n"
                         "metadata: {name: concurrent, namespace: streams}\n"
                         "spec: {streamClass: mock-stream, streamId: orders, completed: false}\n";

static struct sl_source *mk(const char *url, struct t_rec *rec, const char *cache, const char *ca,
                            const char *pwfile)
{
	struct sl_source_options o = SL_SOURCE_OPTIONS_INIT;
	struct sl_source *src;
	struct sl_error err = {0};
	char cdir[512];

	snprintf(cdir, sizeof(cdir), "%s/%s", t_dir, cache);
	o.url = url;
	o.ref = "main";
	o.path = "streams";
	o.cache_dir = cdir;
	o.interval_ms = 3600 * 1000;
	o.author_name = "Sluice Bot";
	o.author_email = "bot@example.com";
	o.ca_file = ca;
	if (pwfile) {
		o.username = "alice";
		o.password_file = pwfile;
	}
	if (sl_source_new(loop, &o, t_source_fn, rec, &src, &err) < 0)
		T_FAIL("sl_source_new: %s", err.msg);
	if (sl_source_start(src, &err) < 0)
		T_FAIL("sl_source_start: %s", err.msg);
	T_ASSERT(t_wait(loop, &rec->snapshots, 0, 60000), "no first snapshot: %s", rec->last_error.msg);
	return src;
}

static void write_back(struct sl_source *src, struct t_rec *r, const char *file, unsigned idx,
                       const char *name)
{
	unsigned n = r->wb_done;
	int q = sl_source_write_back(src, file, idx, name, t_wb_fn, r);
	T_ASSERT(q == 0, "sl_source_write_back: %d", q);
	T_ASSERT(t_wait(loop, &r->wb_done, n, 120000), "write-back did not finish");
}

/* The file at the head of main must be `before` with `from` replaced by `to`. */
static void expect_file(const char *gitdir, const char *before, const char *from, const char *to)
{
	char *now = t_sh_out("git --git-dir %s show main:streams/bfr.yaml", gitdir);
	const char *at = strstr(before, from);
	char want[8192];
	T_ASSERT(at, "test bug: '%s' not in the original", from);
	snprintf(want, sizeof(want), "%.*s%s%s", (int)(at - before), before, to, at + strlen(from));
	/* t_sh_out drops the final newline */
	want[strlen(want) - 1] = '\0';
	T_ASSERT(!strcmp(now, want), "file after write-back:\n%s\n--- want:\n%s", now, want);
	free(now);
}

static void file_remote(void)
{
	struct t_rec r = {0};
	struct sl_source *src;
	char url[512], *s, *head, before[8192];

	t_sh_ok("git init -q --bare -b main remote.git && git init -q -b main work && cd work && "
	        "git remote add origin ../remote.git && mkdir streams");
	t_write("work/streams/bfr.yaml", BFR);
	t_sh_ok("cd work && git add -A && git commit -qm init && git push -q origin HEAD:main");
	snprintf(url, sizeof(url), "file://%s/remote.git", t_dir);
	src = mk(url, &r, "cache-file", NULL, NULL);

	/* the scalar flips, nothing else in the file moves */
	write_back(src, &r, "bfr.yaml", 1, "orders-backfill");
	T_ASSERT(r.wb_code == 0 && strlen(r.wb_commit) == 40, "code %d: %s", r.wb_code, r.wb_err.msg);
	head = t_sh_out("git --git-dir remote.git rev-parse main");
	T_ASSERT(!strcmp(head, r.wb_commit), "remote head %s, commit %s", head, r.wb_commit);
	free(head);
	expect_file("remote.git", BFR, "  completed: false # sluice flips this",
	            "  completed: true # sluice flips this");
	s = t_sh_out("git --git-dir remote.git diff --numstat main~1 main");
	T_ASSERT(!strcmp(s, "1\t1\tstreams/bfr.yaml"), "numstat %s", s);
	free(s);
	s = t_sh_out("git --git-dir remote.git log -1 --format='%%an <%%ae>|%%s' main");
	T_ASSERT(!strcmp(s, "Sluice Bot <bot@example.com>|Complete BackfillRequest orders-backfill"),
	         "commit: %s", s);
	free(s);
	/* the source fetches its own commit */
	T_ASSERT(t_wait(loop, &r.snapshots, 1, 30000), "no snapshot of the write-back commit");
	T_ASSERT(!strcmp(r.revision, r.wb_commit), "snapshot %s", r.revision);

	/* asked again: already true, no commit */
	write_back(src, &r, "bfr.yaml", 1, "orders-backfill");
	T_ASSERT(r.wb_code == 0 && r.wb_commit[0] == '\0', "code %d commit '%s'", r.wb_code, r.wb_commit);
	head = t_sh_out("git --git-dir remote.git rev-parse main");
	T_ASSERT(!strcmp(head, r.revision), "a commit was made for nothing");
	free(head);

	/* no field: added under spec with the siblings' indentation */
	s = t_sh_out("git --git-dir remote.git show main:streams/bfr.yaml");
	snprintf(before, sizeof(before), "%s\n", s);
	free(s);
	write_back(src, &r, "bfr.yaml", 2, "nofield");
	T_ASSERT(r.wb_code == 0 && r.wb_commit[0], "code %d: %s", r.wb_code, r.wb_err.msg);
	expect_file("remote.git", before, "    streamClass: mock-stream\n    streamId: orders\n---",
	            "    completed: true\n    streamClass: mock-stream\n    streamId: orders\n---");

	/* gone: skipped with a reason */
	write_back(src, &r, "bfr.yaml", 1, "no-such-request");
	T_ASSERT(r.wb_code == SL_ENOTFOUND && strstr(r.wb_err.msg, "no-such-request"), "code %d: %s",
	         r.wb_code, r.wb_err.msg);
	write_back(src, &r, "gone.yaml", 0, "orders-backfill");
	T_ASSERT(r.wb_code == SL_ENOTFOUND, "code %d: %s", r.wb_code, r.wb_err.msg);

	/* a second writer pushing commits while the write-back runs */
	t_sh_ok("git clone -q remote.git other");
	t_sh_ok("(cd other && for i in 1 2 3 4 5 6 7 8 9 10 11 12; do "
	        "echo \"line $i\" >> notes.txt; git add notes.txt; git commit -qm \"other $i\"; "
	        "until git push -q origin HEAD:main 2>/dev/null; do git pull -q --rebase origin main; done; "
	        "done; touch ../other.done) >/dev/null 2>&1 &");
	write_back(src, &r, "bfr.yaml", 3, "concurrent");
	T_ASSERT(r.wb_code == 0 && r.wb_commit[0], "code %d: %s", r.wb_code, r.wb_err.msg);
	for (int i = 0; i < 600 && access("other.done", F_OK) != 0; i++)
		usleep(100000);
	T_ASSERT(access("other.done", F_OK) == 0, "the other writer did not finish");
	s = t_sh_out("git --git-dir remote.git log --format=%%s main | grep -c '^other '");
	T_ASSERT(!strcmp(s, "12"), "the other writer's commits: %s of 12", s);
	free(s);
	T_ASSERT(t_sh(NULL, "git --git-dir remote.git log --format=%%H main | grep -q %s", r.wb_commit) == 0,
	         "the write-back commit was lost");
	s = t_sh_out("git --git-dir remote.git show main:streams/bfr.yaml | tail -1");
	T_ASSERT(!strcmp(s, "spec: {streamClass: mock-stream, streamId: orders, completed: true}"), "%s", s);
	free(s);
	sl_source_free(src);
	t_rec_free(&r);
}

static void http_remote(void)
{
	struct t_rec r = {0};
	struct sl_source *src;
	char url[512], ca[512], pw[512], hook[4096], *s, *comp;
	int port = t_free_port();

	if (access("/usr/sbin/nginx", X_OK) != 0 || access("/usr/sbin/fcgiwrap", X_OK) != 0)
		t_skip("nginx or fcgiwrap not installed");
	t_sh_ok("mkdir srvroot && git clone -q --bare remote.git srvroot/remote.git && "
	        "git --git-dir srvroot/remote.git config receive.denyNonFastForwards true");
	t_sh_ok("%s/fixture-http-start %s/srv %d %s/srvroot alice pw-1", fixtures, t_dir, port, t_dir);
	t_on_cleanup("%s/fixture-http-stop %s/srv", fixtures, t_dir);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/git/remote.git", port);
	snprintf(ca, sizeof(ca), "%s/srv/ca.pem", t_dir);
	snprintf(pw, sizeof(pw), "%s/pw", t_dir);
	t_write(pw, "pw-1\n");
	/* reset the concurrent request so there is something to write */
	t_sh_ok("git clone -q srvroot/remote.git comp && cd comp && "
	        "sed -i 's/streamId: orders, completed: true}/streamId: orders, completed: false}/' "
	        "streams/bfr.yaml && "
	        "git commit -qam reset && git push -q origin HEAD:main");
	src = mk(url, &r, "cache-http", ca, pw);

	/* the second writer strikes between our fetch and our push: the hook
	 * pushes another commit first, so our push's ref update is refused */
	snprintf(hook, sizeof(hook),
	         "#!/bin/sh\n"
	         "[ -e %s/hook.fired ] && exit 0\n"
	         "touch %s/hook.fired\n"
	         "env -i PATH=\"$PATH\" HOME=%s GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=Other "
	         "GIT_AUTHOR_EMAIL=o@example.com GIT_COMMITTER_NAME=Other GIT_COMMITTER_EMAIL=o@example.com "
	         "sh -c 'cd %s/comp && git pull -q --rebase origin main && echo racing >> notes.txt && "
	         "git add notes.txt && git commit -qm \"racing writer\" && git push -q origin HEAD:main' "
	         ">%s/hook.log 2>&1\n"
	         "exit 0\n",
	         t_dir, t_dir, t_dir, t_dir, t_dir);
	t_write("srvroot/remote.git/hooks/pre-receive", hook);
	t_sh_ok("chmod +x srvroot/remote.git/hooks/pre-receive");

	write_back(src, &r, "bfr.yaml", 3, "concurrent");
	T_ASSERT(r.wb_code == 0 && r.wb_commit[0], "code %d: %s", r.wb_code, r.wb_err.msg);
	T_ASSERT(access("hook.fired", F_OK) == 0, "the racing writer never ran");
	s = t_sh_out("git --git-dir srvroot/remote.git log --format=%%s -2 main");
	T_ASSERT(!strcmp(s, "Complete BackfillRequest concurrent\nracing writer"), "history:\n%s", s);
	free(s);
	s = t_sh_out("git --git-dir srvroot/remote.git diff --numstat main~1 main");
	T_ASSERT(!strcmp(s, "1\t1\tstreams/bfr.yaml"), "numstat %s", s);
	free(s);
	comp = t_sh_out("git --git-dir srvroot/remote.git show main:streams/bfr.yaml | tail -1");
	T_ASSERT(!strcmp(comp, "spec: {streamClass: mock-stream, streamId: orders, completed: true}"), "%s",
	         comp);
	free(comp);
	sl_source_free(src);
	t_rec_free(&r);
}

int main(void)
{
	const char *f = getenv("SLUICE_SOURCE_FIXTURES");

	t_setup("writeback");
	snprintf(fixtures, sizeof(fixtures), "%s", f ? f : SLUICE_FIXTURES_DEFAULT);
	if (sl_loop_new(&loop) < 0)
		T_FAIL("loop");
	file_remote();
	http_remote();
	sl_loop_free(loop);
	fprintf(stderr, "ok\n");
	return 0;
}
