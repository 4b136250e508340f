/* Git sources over real network transports on loopback: smart HTTP (git
 * http-backend, fcgiwrap, nginx) with TLS from our own CA and basic auth,
 * and sshd with a generated host key. Covers: CA bundle required, password
 * file rotation, a wrong password, no credentials in messages, redirects
 * to another host refused, the deadline, the remote going away mid-fetch,
 * SSH keys, and a known_hosts mismatch refused. */
#include "srctest.h"

#include <git2.h>
#include <sys/stat.h>

static struct sl_loop *loop;
static char fixtures[512];
static int http_port;

static struct sl_source *mk(struct sl_source_options *o, struct t_rec *rec, const char *cache)
{
	struct sl_source *src;
	struct sl_error err = {0};
	char cdir[512];

	snprintf(cdir, sizeof(cdir), "%s/%s", t_dir, cache);
	o->cache_dir = cdir;
	if (!o->interval_ms)
		o->interval_ms = 3600 * 1000;
	if (sl_source_new(loop, o, t_source_fn, rec, &src, &err) < 0)
		T_FAIL("sl_source_new: %s", err.msg);
	if (sl_source_start(src, &err) < 0)
		T_FAIL("sl_source_start: %s", err.msg);
	return src;
}

static void push_file(const char *rel, const char *content, const char *msg)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/work/%s", t_dir, rel);
	t_write(p, content);
	t_sh_ok("cd work && git add -A && git commit -qm '%s' && git push -q origin HEAD:main", msg);
}

static void expect_error(struct sl_source *src, struct t_rec *r, const char *what)
{
	unsigned e = r->errors;
	if (src)
		sl_source_trigger(src);
	T_ASSERT(t_wait(loop, &r->errors, e, 60000), "no error for %s", what);
}

static void http_tests(void)
{
	struct sl_source_options o = SL_SOURCE_OPTIONS_INIT;
	struct t_rec r = {0}, rn = {0}, rr = {0}, rt = {0}, rs = {0};
	struct sl_source *src, *noca, *redir, *slow;
	char url[512], ca[512], pw[512], *rev;

	http_port = t_free_port();
	t_sh_ok("%s/fixture-http-start %s/srv %d %s/srvroot alice s3cret-one", fixtures, t_dir, http_port,
	        t_dir);
	t_on_cleanup("%s/fixture-http-stop %s/srv", fixtures, t_dir);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/git/remote.git", http_port);
	snprintf(ca, sizeof(ca), "%s/srv/ca.pem", t_dir);
	snprintf(pw, sizeof(pw), "%s/password", t_dir);
	t_write(pw, "s3cret-one\n");

	o.url = url;
	o.ref = "main";
	o.username = "alice";
	o.password_file = pw;
	o.ca_file = ca;
	src = mk(&o, &r, "cache-http");
	T_ASSERT(t_wait(loop, &r.snapshots, 0, 60000), "no snapshot over https: %s", r.last_error.msg);
	rev = t_sh_out("git --git-dir srvroot/remote.git rev-parse main");
	T_ASSERT(!strcmp(r.revision, rev), "revision %s want %s", r.revision, rev);
	free(rev);

	/* the password is rotated on the server: refused until the file follows */
	t_sh_ok("%s/fixture-http-passwd %s/srv alice s3cret-two", fixtures, t_dir);
	push_file("a.yaml", "kind: ConfigMap\nmetadata: {name: a}\ndata: {v: '2'}\n", "two");
	expect_error(src, &r, "a wrong password");
	T_ASSERT(r.last_error.code == SL_EUNAUTHORIZED, "code %d: %s", r.last_error.code, r.last_error.msg);
	T_ASSERT(!strstr(r.last_error.msg, "s3cret"), "a password in the message: %s", r.last_error.msg);
	T_ASSERT(r.snapshots == 1 && sl_source_current(src) == r.snap, "last good snapshot kept");
	t_write(pw, "s3cret-two\n");
	sl_source_trigger(src);
	T_ASSERT(t_wait(loop, &r.snapshots, 1, 60000), "rotation without restart: %s", r.last_error.msg);
	rev = t_sh_out("git --git-dir srvroot/remote.git rev-parse main");
	T_ASSERT(!strcmp(r.revision, rev), "revision after rotation");
	free(rev);

	/* without our CA the server is not trusted */
	o.ca_file = NULL;
	noca = mk(&o, &rn, "cache-noca");
	expect_error(NULL, &rn, "an untrusted certificate");
	T_ASSERT(rn.snapshots == 0, "snapshot from an untrusted server");
	T_ASSERT(strstr(rn.last_error.msg, "certificate") || strstr(rn.last_error.msg, "trusted"),
	         "reason: %s", rn.last_error.msg);
	sl_source_free(noca);
	/* the CA location is process-wide in libgit2: set it back */
	o.ca_file = ca;

	/* a redirect to another host name: not followed, no credentials there */
	{
		char rurl[512];
		snprintf(rurl, sizeof(rurl), "https://127.0.0.1:%d/redirect/remote.git", http_port);
		o.url = rurl;
		redir = mk(&o, &rr, "cache-redir");
		expect_error(NULL, &rr, "an off-site redirect");
		T_ASSERT(rr.snapshots == 0, "followed a redirect to another host");
		T_ASSERT(t_sh(NULL,
		              "grep -q 'GET /git/' srv/access.log && ! grep 'localhost' srv/access.log | "
		              "grep -q 'info/refs'") == 0 ||
		             t_sh(NULL, "! grep -q 'localhost' srv/access.log") == 0,
		         "a request reached the redirect target");
		sl_source_free(redir);
		o.url = url;
	}

	/* credentials embedded in a URL never appear in an error */
	{
		char curl[512];
		struct t_rec rc = {0};
		struct sl_source *cs;
		struct sl_source_options oc = o;
		snprintf(curl, sizeof(curl), "https://alice:s3cret-two@127.0.0.1:%d/git/missing.git",
		         http_port);
		oc.url = curl;
		oc.username = NULL;
		oc.password_file = NULL;
		cs = mk(&oc, &rc, "cache-cred");
		expect_error(NULL, &rc, "a missing repository");
		T_ASSERT(!strstr(rc.last_error.msg, "s3cret"), "credentials leaked: %s", rc.last_error.msg);
		sl_source_free(cs);
	}

	/* a large repository behind the throttled path: the deadline cuts it */
	t_sh_ok("git init -q --bare -b main srvroot/big.git && mkdir -p bigwork && cd bigwork && git init -q "
	        "-b main && "
	        "head -c 3000000 /dev/urandom > blob.bin && git add . && git commit -qm big && "
	        "git push -q ../srvroot/big.git HEAD:main");
	{
		char surl[512];
		snprintf(surl, sizeof(surl), "https://127.0.0.1:%d/slow/big.git", http_port);
		o.url = surl;
		o.timeout_ms = 2000;
		slow = mk(&o, &rt, "cache-slow");
		expect_error(NULL, &rt, "a transfer over its deadline");
		T_ASSERT(rt.last_error.code == SL_ETIMEOUT, "code %d: %s", rt.last_error.code,
		         rt.last_error.msg);
		sl_source_free(slow);

		/* the server going away in the middle of a transfer */
		o.timeout_ms = 0;
		slow = mk(&o, &rs, "cache-slow2");
		t_run_for(loop, 1500);
		T_ASSERT(rs.snapshots == 0 && rs.errors == 0, "the transfer should still be running");
		t_sh_ok("%s/fixture-http-stop %s/srv", fixtures, t_dir);
		T_ASSERT(t_wait(loop, &rs.errors, 0, 60000), "no error when the server went away");
		T_ASSERT(rs.snapshots == 0, "snapshot from a cut transfer");
		fprintf(stderr, "# mid-fetch: %s\n", rs.last_error.msg);
		sl_source_free(slow);
		o.url = url;
	}
	/* the server is back: the source recovers on its next check */
	t_sh_ok("%s/fixture-http-start %s/srv %d %s/srvroot alice s3cret-two", fixtures, t_dir, http_port,
	        t_dir);
	push_file("a.yaml", "kind: ConfigMap\nmetadata: {name: a}\ndata: {v: '3'}\n", "three");
	sl_source_trigger(src);
	T_ASSERT(t_wait(loop, &r.snapshots, 2, 60000), "no recovery after the server returned: %s",
	         r.last_error.msg);
	sl_source_free(src);
	t_rec_free(&r);
}

static void ssh_tests(void)
{
	struct sl_source_options o = SL_SOURCE_OPTIONS_INIT;
	struct t_rec r = {0}, rw = {0}, ru = {0};
	struct sl_source *src, *bad;
	char url[512], key[512], kh[512], khw[512], khe[512], *rev;
	int port;

	if (!(git_libgit2_features() & GIT_FEATURE_SSH)) {
		fprintf(stderr, "# libgit2 without SSH: ssh tests skipped\n");
		return;
	}
	if (access("/usr/sbin/sshd", X_OK) != 0)
		t_skip("sshd not installed");
	port = t_free_port();
	t_sh_ok("%s/fixture-ssh-start %s/sshd %d", fixtures, t_dir, port);
	t_on_cleanup("%s/fixture-ssh-stop %s/sshd", fixtures, t_dir);
	snprintf(url, sizeof(url), "ssh://%s@127.0.0.1:%d%s/srvroot/remote.git", "root", port, t_dir);
	snprintf(key, sizeof(key), "%s/sshd/id_ed25519", t_dir);
	snprintf(kh, sizeof(kh), "%s/sshd/known_hosts", t_dir);
	snprintf(khw, sizeof(khw), "%s/sshd/known_hosts.wrong", t_dir);
	snprintf(khe, sizeof(khe), "%s/known_hosts.empty", t_dir);
	t_write(khe, "# nothing\n");

	o.url = url;
	o.ssh_key_file = key;
	o.known_hosts_file = kh;
	src = mk(&o, &r, "cache-ssh");
	T_ASSERT(t_wait(loop, &r.snapshots, 0, 60000), "no snapshot over ssh: %s", r.last_error.msg);
	rev = t_sh_out("git --git-dir srvroot/remote.git rev-parse main");
	T_ASSERT(!strcmp(r.revision, rev), "revision %s want %s", r.revision, rev);
	free(rev);
	sl_source_free(src);
	t_rec_free(&r);

	/* a changed host key: refused before any authentication */
	o.known_hosts_file = khw;
	bad = mk(&o, &rw, "cache-ssh-wrong");
	expect_error(NULL, &rw, "a known_hosts mismatch");
	T_ASSERT(rw.snapshots == 0, "connected despite a wrong host key");
	T_ASSERT(rw.last_error.code == SL_EFORBIDDEN && strstr(rw.last_error.msg, "does not match"),
	         "reason: %s", rw.last_error.msg);
	sl_source_free(bad);
	T_ASSERT(t_sh(NULL, "! grep -q 'Accepted publickey.*' sshd/sshd.log || "
	                    "[ $(grep -c 'Accepted publickey' sshd/sshd.log) -eq 1 ]") == 0,
	         "the client authenticated to a host with a wrong key");

	/* an unknown host: refused too */
	o.known_hosts_file = khe;
	bad = mk(&o, &ru, "cache-ssh-unknown");
	expect_error(NULL, &ru, "an unknown host");
	T_ASSERT(ru.snapshots == 0 && strstr(ru.last_error.msg, "not in known_hosts"), "reason: %s",
	         ru.last_error.msg);
	sl_source_free(bad);
}

/* A server that accepts connections and never says a word: only the
 * watchdog can end a fetch from it. */
static void stalled_tests(void)
{
	struct sl_source_options o = SL_SOURCE_OPTIONS_INIT;
	struct t_rec r1 = {0};
	struct sl_source *s1;
	char url1[256];
	int port = t_free_port();
	uint64_t t0;

	t_write("stall.py", "import socket, sys, time\n"
	                    "s = socket.socket()\n"
	                    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	                    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
	                    "s.listen(16)\n"
	                    "held = []\n"
	                    "while True:\n"
	                    "    held.append(s.accept())\n");
	/* wait until it listens: a loaded machine may take seconds to start python */
	t_sh_ok("python3 stall.py %d & echo $! > stall.pid; python3 -c 'import socket, sys, time\n"
	        "for _ in range(300):\n"
	        "    try: socket.create_connection((\"127.0.0.1\", int(sys.argv[1])), 1).close(); break\n"
	        "    except OSError: time.sleep(0.1)' %d",
	        port, port);
	t_on_cleanup("kill $(cat %s/stall.pid) 2>/dev/null", t_dir);

	snprintf(url1, sizeof(url1), "https://127.0.0.1:%d/git/remote.git", port);
	o.url = url1;
	o.timeout_ms = 1500;
	t0 = sl_now_ms();
	s1 = mk(&o, &r1, "cache-stall-https");
	expect_error(NULL, &r1, "a stalled https server");
	T_ASSERT(r1.last_error.code == SL_ETIMEOUT, "code %d: %s", r1.last_error.code, r1.last_error.msg);
	T_ASSERT(sl_now_ms() - t0 < 10000, "took %llu ms", (unsigned long long)(sl_now_ms() - t0));
	sl_source_free(s1);

	/* not over ssh: libssh2 retries its blocking banner read on EINTR, so
	 * a silent ssh server holds the worker until TCP gives up (known gap) */
}

int main(void)
{
	const char *f = getenv("SLUICE_SOURCE_FIXTURES");

	t_setup("git-remote");
	snprintf(fixtures, sizeof(fixtures), "%s", f ? f : SLUICE_FIXTURES_DEFAULT);
	if (access("/usr/sbin/nginx", X_OK) != 0 || access("/usr/sbin/fcgiwrap", X_OK) != 0 ||
	    access("/usr/lib/git-core/git-http-backend", X_OK) != 0)
		t_skip("nginx, fcgiwrap or git http-backend not installed");
	if (sl_loop_new(&loop) < 0)
		T_FAIL("loop");
	t_sh_ok("git init -q --bare -b main srvroot/remote.git && git init -q -b main work && "
	        "cd work && git remote add origin ../srvroot/remote.git");
	push_file("a.yaml", "kind: ConfigMap\nmetadata: {name: a}\ndata: {v: '1'}\n", "one");
	http_tests();
	ssh_tests();
	stalled_tests();
	sl_loop_free(loop);
	fprintf(stderr, "ok\n");
	return 0;
}
