/* Git through libgit2, run on the source's worker thread only: a bare clone
 * in the cache directory, fetches that ask the remote for the one ref they
 * need, checkouts of each revision into a fresh directory, and write-back
 * commits pushed to the branch. */
#include "source-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX         4096
#define KNOWN_HOSTS_MAX    (1u << 20)
#define WRITEBACK_ATTEMPTS 6

struct git_state {
	git_repository *repo;
	char *repo_path;
};

/* One network operation: what the callbacks need, and their verdict. */
struct op {
	struct sl_source *src;
	uint64_t deadline;
	int cred_calls;
	int code; /* set by a callback that refused */
	char msg[512];
	char host[256];
	int port;
	/* the watchdog interrupting a stalled system call (see watchdog_start) */
	timer_t timer;
	bool timer_armed;
	/* push */
	bool rejected;
	char reject_msg[256];
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void shutdown_libgit2(void)
{
	git_libgit2_shutdown();
}

static void init_libgit2(void)
{
	/* once per process; released at exit so leak checkers see only ours */
	if (git_libgit2_init() > 0)
		atexit(shutdown_libgit2);
}

static int op_fail(struct op *op, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int op_fail(struct op *op, int code, const char *fmt, ...)
{
	va_list ap;
	if (!op->code) {
		op->code = code;
		va_start(ap, fmt);
		vsnprintf(op->msg, sizeof(op->msg), fmt, ap);
		va_end(ap);
	}
	git_error_set_str(GIT_ERROR_CALLBACK, op->msg);
	return GIT_EUSER;
}

/* Host and port of a Git URL: scheme://[user[:pass]@]host[:port]/path or
 * scp-style [user@]host:path (port 22). host is "" for local paths. */
void sl_source__url_host(const char *url, char *host, size_t hostsz, int *port, char *user, size_t usersz)
{
	const char *s, *end, *at, *h, *colon;
	size_t n;

	host[0] = '\0';
	if (user)
		user[0] = '\0';
	*port = 0;
	s = strstr(url, "://");
	if (s) {
		if (sl_str_has_prefix(url, "file://"))
			return;
		*port = sl_str_has_prefix(url, "https://")  ? 443
		        : sl_str_has_prefix(url, "http://") ? 80
		                                            : 22;
		s += 3;
		end = s + strcspn(s, "/?#");
	} else {
		if (url[0] == '/')
			return;
		*port = 22;
		s = url;
		end = strchr(url, ':');
		if (!end)
			return;
	}
	at = NULL;
	for (const char *p = s; p < end; p++)
		if (*p == '@')
			at = p;
	h = at ? at + 1 : s;
	if (at && user) {
		size_t un = strcspn(s, ":@");
		snprintf(user, usersz, "%.*s", (int)SL_MIN(un, (size_t)(at - s)), s);
	}
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb)
			return;
		snprintf(host, hostsz, "%.*s", (int)(rb - h - 1), h + 1);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		n = (size_t)((colon ? colon : end) - h);
		snprintf(host, hostsz, "%.*s", (int)n, h);
	}
	if (colon && s != url)
		*port = atoi(colon + 1);
}

/* Reads a one-line secret (trailing newline removed). */
static int read_secret(const char *path, char *out, size_t outsz, struct op *op, const char *what)
{
	struct sl_buf b;
	struct sl_error e;
	int r = sl_file_read(path, SECRET_MAX, &b, &e);
	if (r < 0)
		return op_fail(op, r == SL_ENOTFOUND ? SL_EUNAUTHORIZED : r, "%s file: %s", what, e.msg);
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.len--;
	if (b.len >= outsz) {
		explicit_bzero(b.data, b.len);
		sl_buf_free(&b);
		return op_fail(op, SL_ETOOLARGE, "%s file: too long", what);
	}
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	explicit_bzero(b.data, b.len);
	sl_buf_free(&b);
	return 0;
}

static int cred_cb(git_credential **out, const char *url, const char *username_from_url, unsigned int allowed,
                   void *payload)
{
	struct op *op = payload;
	struct sl_source *src = op->src;
	char host[256], user[128];
	int port, r;

	if (sl_now_ms() > op->deadline)
		return op_fail(op, SL_ETIMEOUT, "timed out");
	sl_source__url_host(url, host, sizeof(host), &port, user, sizeof(user));
	/* credentials go to the configured host only, never to a redirect target */
	if (strcasecmp(host, op->host) != 0)
		return op_fail(op, SL_EFORBIDDEN,
		               "credentials requested by %s, not the configured host %s: refused", host,
		               op->host);
	if (++op->cred_calls > 2)
		return op_fail(op, SL_EUNAUTHORIZED, "authentication refused by %s", op->host);
	if (op->cred_calls > 1 && !(allowed & GIT_CREDENTIAL_USERNAME))
		return op_fail(op, SL_EUNAUTHORIZED, "authentication refused by %s", op->host);

	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && src->password_file) {
		char pw[SECRET_MAX];
		r = read_secret(src->password_file, pw, sizeof(pw), op, "password");
		if (r < 0)
			return r;
		r = git_credential_userpass_plaintext_new(out, src->username, pw);
		explicit_bzero(pw, sizeof(pw));
		return r;
	}
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && src->ssh_key_file) {
		char pp[SECRET_MAX] = "";
		const char *u = username_from_url && *username_from_url ? username_from_url
		                : src->username                         ? src->username
		                                                        : "git";
		if (src->ssh_passphrase_file) {
			r = read_secret(src->ssh_passphrase_file, pp, sizeof(pp), op, "passphrase");
			if (r < 0)
				return r;
		}
		r = git_credential_ssh_key_new(out, u, NULL, src->ssh_key_file, pp[0] ? pp : NULL);
		explicit_bzero(pp, sizeof(pp));
		return r;
	}
	if (allowed & GIT_CREDENTIAL_USERNAME) {
		const char *u = username_from_url && *username_from_url ? username_from_url
		                : src->username                         ? src->username
		                                                        : "git";
		return git_credential_username_new(out, u);
	}
	return op_fail(op, SL_EUNAUTHORIZED, "%s asks for credentials that are not configured", op->host);
}

static const char *raw_type_name(git_cert_ssh_raw_type_t t)
{
	switch (t) {
	case GIT_CERT_SSH_RAW_TYPE_RSA:
		return "ssh-rsa";
	case GIT_CERT_SSH_RAW_TYPE_DSS:
		return "ssh-dss";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256:
		return "ecdsa-sha2-nistp256";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384:
		return "ecdsa-sha2-nistp384";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521:
		return "ecdsa-sha2-nistp521";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519:
		return "ssh-ed25519";
	default:
		return NULL;
	}
}

static int cert_cb(git_cert *cert, int valid, const char *host, void *payload)
{
	struct op *op = payload;
	struct sl_source *src = op->src;

	if (sl_now_ms() > op->deadline)
		return op_fail(op, SL_ETIMEOUT, "timed out");
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
		git_cert_hostkey *hk = (git_cert_hostkey *)cert;
		const char *type;
		struct sl_buf kh;
		struct sl_error e;
		int r;

		/* libgit2 1.5 does not read known_hosts itself: we are the check */
		if (!(hk->type & GIT_CERT_SSH_RAW) || !(type = raw_type_name(hk->raw_type)))
			return op_fail(op, SL_EFORBIDDEN, "host key of %s: unsupported key type", host);
		if (!src->known_hosts_file)
			return op_fail(op, SL_EFORBIDDEN, "host key of %s cannot be checked: no known_hosts",
			               host);
		r = sl_file_read(src->known_hosts_file, KNOWN_HOSTS_MAX, &kh, &e);
		if (r < 0)
			return op_fail(op, SL_EFORBIDDEN, "known_hosts: %s", e.msg);
		r = sl_source_known_hosts_check(kh.data, kh.len, op->host, op->port, type,
		                                (const uint8_t *)hk->hostkey, hk->hostkey_len, &e);
		sl_buf_free(&kh);
		if (r < 0)
			return op_fail(op, SL_EFORBIDDEN, "%s", e.msg);
		return 0;
	}
	if (host && strcasecmp(host, op->host) != 0)
		return op_fail(op, SL_EFORBIDDEN, "connected to %s, not the configured host %s: refused",
		               host, op->host);
	if (!valid)
		return op_fail(op, SL_EFORBIDDEN, "TLS certificate of %s is not trusted", host ? host : "?");
	return 0;
}

static int progress_cb(const git_indexer_progress *stats, void *payload)
{
	struct op *op = payload;
	if (sl_now_ms() > op->deadline)
		return op_fail(op, SL_ETIMEOUT, "timed out after %llu ms",
		               (unsigned long long)op->src->timeout_ms);
	return 0;
}

static int sideband_cb(const char *str, int len, void *payload)
{
	return progress_cb(NULL, payload);
}

static int push_progress_cb(unsigned int current, unsigned int total, size_t bytes, void *payload)
{
	return progress_cb(NULL, payload);
}

static int pack_progress_cb(int stage, uint32_t current, uint32_t total, void *payload)
{
	return progress_cb(NULL, payload);
}

static int push_update_cb(const char *refname, const char *status, void *payload)
{
	struct op *op = payload;
	if (status) {
		op->rejected = true;
		snprintf(op->reject_msg, sizeof(op->reject_msg), "%s: %s", refname, status);
	}
	return 0;
}

/* The deadline of an operation is checked in libgit2's callbacks, but a
 * remote that stops sending leaves the worker blocked in recv()/poll(),
 * where no callback runs, and libgit2 1.5 has no socket timeout. So a
 * per-thread POSIX timer sends WATCHDOG_SIG to the worker at the deadline
 * (and every 500 ms after): the handler does nothing and is installed
 * without SA_RESTART, so the blocked call fails with EINTR and libgit2
 * returns an error. The signal is unblocked only while our operation runs. */
#define WATCHDOG_SIG (SIGRTMIN + 3)

static void watchdog_handler(int sig)
{
	(void)sig;
}

static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;
static void watchdog_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watchdog_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: interrupt, do not resume */
	sigaction(WATCHDOG_SIG, &sa, NULL);
}

static void watchdog_start(struct op *op, uint64_t ms)
{
	struct sigevent sev;
	struct itimerspec its;
	sigset_t set;

	pthread_once(&watchdog_once, watchdog_install);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = WATCHDOG_SIG;
	sev._sigev_un._tid = gettid(); /* sigev_notify_thread_id: not in glibc 2.36 headers */
	if (timer_create(CLOCK_MONOTONIC, &sev, &op->timer) < 0)
		return; /* the callbacks' deadline still holds */
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	its.it_interval.tv_nsec = 500 * 1000000L;
	timer_settime(op->timer, 0, &its, NULL);
	op->timer_armed = true;
	sigemptyset(&set);
	sigaddset(&set, WATCHDOG_SIG);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void watchdog_stop(struct op *op)
{
	sigset_t set;
	struct timespec zero = {0, 0};

	if (!op->timer_armed)
		return;
	sigemptyset(&set);
	sigaddset(&set, WATCHDOG_SIG);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	timer_delete(op->timer);
	op->timer_armed = false;
	/* drop a signal that fired after the last interruptible call */
	while (sigtimedwait(&set, NULL, &zero) > 0) {
	}
}

static void op_init(struct op *op, struct sl_source *src)
{
	if (op->timer_armed)
		watchdog_stop(op);
	memset(op, 0, sizeof(*op));
	op->src = src;
	op->deadline = sl_now_ms() + src->timeout_ms;
	sl_source__url_host(src->url, op->host, sizeof(op->host), &op->port, NULL, 0);
	watchdog_start(op, src->timeout_ms);
}

static void callbacks_init(git_remote_callbacks *cb, struct op *op)
{
	git_remote_init_callbacks(cb, GIT_REMOTE_CALLBACKS_VERSION);
	cb->credentials = cred_cb;
	cb->certificate_check = cert_cb;
	cb->transfer_progress = progress_cb;
	cb->sideband_progress = sideband_cb;
	cb->push_transfer_progress = push_progress_cb;
	cb->pack_progress = pack_progress_cb;
	cb->push_update_reference = push_update_cb;
	cb->payload = op;
}

/* An in-memory remote for url. insteadOf rewriting is skipped: the URL is
 * the one configured, and libgit2 1.5 leaks its regex match data (about
 * 20 KiB) on every insteadOf lookup, which a fetch each minute would
 * turn into a steady leak. */
static int remote_new(git_remote **ret, git_repository *repo, const char *url)
{
	git_remote_create_options o = GIT_REMOTE_CREATE_OPTIONS_INIT;
	o.repository = repo;
	o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	return git_remote_create_with_opts(ret, url, &o);
}

/* Replaces every occurrence of needle in s (in place, bounded). */
static void scrub(char *s, size_t sz, const char *needle, const char *with)
{
	size_t nl = strlen(needle), wl = strlen(with);
	char *p;

	if (!nl || !strcmp(needle, with))
		return;
	while ((p = strstr(s, needle))) {
		size_t tail = strlen(p + nl);
		if ((size_t)(p - s) + wl + tail + 1 > sz)
			tail = sz - 1 - (size_t)(p - s) - SL_MIN(wl, sz - 1 - (size_t)(p - s));
		memmove(p + wl, p + nl, tail);
		memcpy(p, with, SL_MIN(wl, sz - 1 - (size_t)(p - s)));
		p[wl + tail] = '\0';
	}
}

static int map_git_error(int gerr, int klass)
{
	switch (gerr) {
	case GIT_ENOTFOUND:
		return SL_ENOTFOUND;
	case GIT_EAUTH:
		return SL_EUNAUTHORIZED;
	case GIT_ECERTIFICATE:
		return SL_EFORBIDDEN;
	case GIT_ENONFASTFORWARD:
		return SL_ECONFLICT;
	case GIT_EINVALIDSPEC:
	case GIT_EINVALID:
		return SL_EINVALID;
	default:
		break;
	}
	switch (klass) {
	case GIT_ERROR_NET:
	case GIT_ERROR_SSH:
	case GIT_ERROR_SSL:
	case GIT_ERROR_HTTP:
		return SL_EUNAVAILABLE;
	case GIT_ERROR_NOMEMORY:
		return SL_ENOMEM;
	default:
		return SL_EIO;
	}
}

/* Records a libgit2 failure in j->err: our callback's verdict when it had
 * one, else libgit2's text copied here on the worker, credentials removed. */
static int fail_git(struct job *j, struct op *op, int gerr, const char *what)
{
	const git_error *e = git_error_last();
	struct sl_source *src = j->src;
	char red[512];
	int code;

	if (op && op->code) {
		code = op->code;
		sl_error_set(&j->err, code, "%s: %s", what, op->msg);
	} else if (op && sl_now_ms() >= op->deadline) {
		/* interrupted by the watchdog: say why, not just "EINTR" */
		code = SL_ETIMEOUT;
		sl_error_set(&j->err, code, "%s: timed out after %llu ms (%s)", what,
		             (unsigned long long)op->src->timeout_ms,
		             e && e->message ? e->message : "no reply");
	} else {
		code = map_git_error(gerr, e ? e->klass : 0);
		sl_error_set(&j->err, code, "%s: %s", what, e && e->message ? e->message : "unknown error");
	}
	if (src->url) {
		sl_url_redact(src->url, red, sizeof(red));
		scrub(j->err.msg, sizeof(j->err.msg), src->url, red);
	}
	j->code = code;
	return code;
}

/* Opens the bare clone, or creates it; a clone that cannot be opened is
 * removed and created again. */
static int repo_open(struct job *j, bool fresh)
{
	struct sl_source *src = j->src;
	struct git_state *g = src->git;
	int r;

	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return j->code = sl_error_set(&j->err, SL_ENOMEM, "out of memory");
		g->repo_path = sl_asprintf("%s/repo.git", src->cache_dir);
		if (!g->repo_path) {
			free(g);
			return j->code = sl_error_set(&j->err, SL_ENOMEM, "out of memory");
		}
		src->git = g;
	}
	if (fresh && g->repo) {
		git_repository_free(g->repo);
		g->repo = NULL;
		sl_source__rm_rf(g->repo_path);
	}
	if (g->repo)
		return 0;
	r = git_repository_open_bare(&g->repo, g->repo_path);
	if (r < 0) {
		g->repo = NULL;
		sl_source__rm_rf(g->repo_path);
		r = git_repository_init(&g->repo, g->repo_path, 1);
		if (r < 0) {
			g->repo = NULL;
			return fail_git(j, NULL, r, "cannot create the cache repository");
		}
	}
	return 0;
}

/* The CA locations are process-wide in libgit2 (one mbedTLS/OpenSSL
 * config), and replacing them frees the chain a handshake on another
 * worker may be using. So network operations hold ca_lock for reading
 * while the locations are the ones they want; a source that needs other
 * locations takes it for writing to change them, which waits for the
 * operations in flight. Sources with the same CA run side by side. */
static pthread_rwlock_t ca_lock = PTHREAD_RWLOCK_INITIALIZER;
static char ca_cur_file[PATH_MAX], ca_cur_dir[PATH_MAX];
static bool ca_cur_set;

static void ca_want(struct sl_source *src, const char **file, const char **dir)
{
	/* without a configured bundle, the system's, so an earlier source's
	 * private CA is not trusted by this one */
	if (src->ca_file || src->ca_dir) {
		*file = src->ca_file;
		*dir = src->ca_dir;
	} else if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
		*file = "/etc/ssl/certs/ca-certificates.crt";
		*dir = NULL;
	} else {
		*file = NULL;
		*dir = "/etc/ssl/certs";
	}
}

static bool ca_is(const char *file, const char *dir)
{
	return ca_cur_set && !strcmp(ca_cur_file, file ? file : "") && !strcmp(ca_cur_dir, dir ? dir : "");
}

static void ca_acquire(struct sl_source *src)
{
	const char *file, *dir;

	ca_want(src, &file, &dir);
	for (;;) {
		pthread_rwlock_rdlock(&ca_lock);
		if (ca_is(file, dir))
			return; /* held for reading until ca_release */
		pthread_rwlock_unlock(&ca_lock);
		pthread_rwlock_wrlock(&ca_lock);
		if (!ca_is(file, dir)) {
			git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, file, dir);
			snprintf(ca_cur_file, sizeof(ca_cur_file), "%s", file ? file : "");
			snprintf(ca_cur_dir, sizeof(ca_cur_dir), "%s", dir ? dir : "");
			ca_cur_set = true;
		}
		pthread_rwlock_unlock(&ca_lock);
	}
}

static void ca_release(void)
{
	pthread_rwlock_unlock(&ca_lock);
}

struct target {
	git_oid oid;       /* the commit (peeled) */
	char refname[300]; /* remote ref it came from; "" for a SHA */
	char branch[300];  /* branch name when the ref is a branch */
	bool have;         /* the commit is in the cache already */
};

static const git_remote_head *head_find(const git_remote_head **heads, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(heads[i]->name, name))
			return heads[i];
	return NULL;
}

/* Connects, lists the remote's refs, picks the configured ref and downloads
 * its commit unless the cache has it. */
static int fetch_target(struct job *j, struct op *op, struct target *t)
{
	struct sl_source *src = j->src;
	git_repository *repo = src->git->repo;
	git_remote *remote = NULL;
	git_remote_connect_options copts = GIT_REMOTE_CONNECT_OPTIONS_INIT;
	git_fetch_options fopts = GIT_FETCH_OPTIONS_INIT;
	const git_remote_head **heads;
	size_t nheads;
	const git_remote_head *hit = NULL, *peeled = NULL;
	char want[300], wanttag[300], spec[700];
	char *specs[2];
	git_strarray refspecs = {specs, 0};
	git_odb *odb = NULL;
	int r;

	memset(t, 0, sizeof(*t));
	r = remote_new(&remote, repo, src->url);
	if (r < 0)
		return fail_git(j, op, r, "remote");
	callbacks_init(&copts.callbacks, op);
	copts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	r = git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &copts);
	if (r < 0) {
		fail_git(j, op, r, "connect");
		goto out;
	}
	r = git_remote_ls(&heads, &nheads, remote);
	if (r < 0) {
		fail_git(j, op, r, "list refs");
		goto out;
	}
	if (src->ref && sl_source__is_sha(src->ref)) {
		git_oid_fromstr(&t->oid, src->ref);
		snprintf(spec, sizeof(spec), "+refs/heads/*:refs/sluice/heads/*");
	} else {
		const char *ref = src->ref;
		if (!ref) {
			/* the remote's default branch */
			const git_remote_head *h = head_find(heads, nheads, "HEAD");
			ref = h && h->symref_target ? h->symref_target : "refs/heads/main";
		}
		if (sl_str_has_prefix(ref, "refs/")) {
			snprintf(want, sizeof(want), "%s", ref);
			wanttag[0] = '\0';
		} else {
			snprintf(want, sizeof(want), "refs/heads/%s", ref);
			snprintf(wanttag, sizeof(wanttag), "refs/tags/%s", ref);
		}
		hit = head_find(heads, nheads, want);
		if (!hit && wanttag[0]) {
			snprintf(want, sizeof(want), "%s", wanttag);
			hit = head_find(heads, nheads, want);
		}
		if (!hit) {
			r = j->code = sl_error_set(&j->err, SL_ENOTFOUND, "ref %s not found on the remote",
			                           src->ref ? src->ref : ref);
			goto out;
		}
		if (sl_str_has_prefix(want, "refs/tags/")) {
			char pe[310];
			snprintf(pe, sizeof(pe), "%s^{}", want);
			peeled = head_find(heads, nheads, pe);
		}
		if (sl_str_has_prefix(want, "refs/heads/"))
			snprintf(t->branch, sizeof(t->branch), "%s", want + strlen("refs/heads/"));
		snprintf(t->refname, sizeof(t->refname), "%s", want);
		git_oid_cpy(&t->oid, peeled ? &peeled->oid : &hit->oid);
		snprintf(spec, sizeof(spec), "+%s:refs/sluice/fetched-tip", want);
	}
	r = git_repository_odb(&odb, repo);
	if (r < 0) {
		fail_git(j, op, r, "cache");
		goto out;
	}
	t->have = git_odb_exists(odb, &t->oid);
	if (!t->have) {
		specs[0] = spec;
		refspecs.count = 1;
		callbacks_init(&fopts.callbacks, op);
		fopts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
		fopts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
		fopts.update_fetchhead = 0;
		r = git_remote_download(remote, &refspecs, &fopts);
		if (r < 0) {
			fail_git(j, op, r, "fetch");
			goto out;
		}
		if (!git_odb_exists(odb, &t->oid)) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof(hex), &t->oid);
			r = j->code =
			    sl_error_set(&j->err, SL_ENOTFOUND, "commit %s not found on the remote", hex);
			goto out;
		}
	}
	/* our own ref to what we fetched: the next fetch offers it as a
	 * "have", so the remote sends only what is new (without it every
	 * fetch is a full clone) */
	{
		git_reference *ref = NULL;
		r = git_reference_create(&ref, repo, "refs/sluice/fetched", &t->oid, 1, NULL);
		git_reference_free(ref);
		if (r < 0) {
			fail_git(j, op, r, "reference");
			goto out;
		}
	}
	r = 0;
out:
	git_odb_free(odb);
	if (remote) {
		git_remote_disconnect(remote);
		git_remote_free(remote);
	}
	return r < 0 ? j->code : 0;
}

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

struct count {
	size_t files;
};

static int count_cb(const char *root, const git_tree_entry *entry, void *payload)
{
	struct count *c = payload;
	if (git_tree_entry_type(entry) == GIT_OBJECT_BLOB)
		c->files++;
	return 0;
}

/* Writes a tree's files beneath dfd. git_checkout_tree does the same with
 * a diff against a baseline and took 10 to 30 s for 10,000 files here.
 * Files whose blob is unchanged since the previous snapshot (old, odfd)
 * are hard links to its copy: snapshot trees are never written after they
 * are made, so sharing inodes is safe, and a commit costs what it changed.
 * Entry names come from the remote: each is checked and created relative
 * to its parent's fd without following links. */
static int export_at(struct job *j, git_repository *repo, git_tree *tree, git_tree *old, int dfd, int odfd,
                     int depth, const char *prefix)
{
	size_t n = git_tree_entrycount(tree);
	int r;

	if (depth > 64)
		return j->code = sl_error_set(&j->err, SL_ETOOLARGE, "tree nesting too deep");
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);
		git_filemode_t mode = git_tree_entry_filemode(e);
		const git_tree_entry *oe = old ? git_tree_entry_byname(old, name) : NULL;
		bool same = oe && git_tree_entry_filemode(oe) == mode &&
		            git_oid_equal(git_tree_entry_id(oe), git_tree_entry_id(e));

		if (oe && git_tree_entry_filemode(oe) != mode &&
		    !(mode == GIT_FILEMODE_TREE && git_tree_entry_filemode(oe) == GIT_FILEMODE_TREE))
			oe = NULL;
		if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/') ||
		    !strcasecmp(name, ".git"))
			return j->code = sl_error_set(&j->err, SL_EINVALID, "tree entry '%s' refused", name);
		if (mode == GIT_FILEMODE_TREE) {
			git_tree *sub = NULL, *osub = NULL;
			int cfd, ocfd = -1;
			if (mkdirat(dfd, name, 0700) < 0)
				return j->code =
				           sl_error_set(&j->err, SL_EIO, "%s: %s", name, strerror(errno));
			cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0)
				return j->code =
				           sl_error_set(&j->err, SL_EIO, "%s: %s", name, strerror(errno));
			r = git_tree_lookup(&sub, repo, git_tree_entry_id(e));
			if (r < 0) {
				close(cfd);
				return fail_git(j, NULL, r, "tree");
			}
			if (oe && odfd >= 0 && git_tree_lookup(&osub, repo, git_tree_entry_id(oe)) == 0)
				ocfd = openat(odfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			{
				char sp[PATH_MAX];
				snprintf(sp, sizeof(sp), "%s%s/", prefix, name);
				r = export_at(j, repo, sub, ocfd >= 0 ? osub : NULL, cfd, ocfd, depth + 1,
				              sp);
			}
			git_tree_free(sub);
			git_tree_free(osub);
			close(cfd);
			if (ocfd >= 0)
				close(ocfd);
			if (r < 0)
				return r;
		} else if (mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE ||
		           mode == GIT_FILEMODE_LINK) {
			git_blob *b = NULL;
			const char *p;
			size_t len;

			if (same && odfd >= 0 && mode != GIT_FILEMODE_LINK &&
			    linkat(odfd, name, dfd, name, 0) == 0)
				continue;
			{
				/* the size before the content: a blob over the limit
				 * is never loaded into memory */
				git_odb *odb = NULL;
				size_t sz = 0;
				git_object_t ty;
				int q = git_repository_odb(&odb, repo);
				if (q == 0)
					q = git_odb_read_header(&sz, &ty, odb, git_tree_entry_id(e));
				git_odb_free(odb);
				if (q == 0 && sz > j->src->max_file_size) {
					/* only a manifest left out is a problem; a large
					 * image or archive beside them is just skipped */
					if (!sl_str_has_suffix(name, ".yaml") &&
					    !sl_str_has_suffix(name, ".yml"))
						continue;
					sl_buf_printf(&j->problems,
					              "%s%s: %zu bytes, over the limit of %zu: left out of "
					              "the snapshot\n",
					              prefix, name, sz, j->src->max_file_size);
					continue;
				}
			}
			r = git_blob_lookup(&b, repo, git_tree_entry_id(e));
			if (r < 0)
				return fail_git(j, NULL, r, "blob");
			p = git_blob_rawcontent(b);
			len = (size_t)git_blob_rawsize(b);
			if (mode == GIT_FILEMODE_LINK) {
				/* kept as a link: the manifest loader refuses one that
				 * leaves the root */
				_cleanup_free_ char *target = sl_strndup(p, len);
				r = target && symlinkat(target, dfd, name) == 0 ? 0 : -1;
			} else {
				/* read-only: trees are shared and never written */
				int fd =
				    openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				           mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0500 : 0400);
				r = fd < 0 ? -1 : 0;
				while (r == 0 && len) {
					ssize_t w = write(fd, p, len);
					if (w < 0 && errno == EINTR)
						continue;
					if (w < 0)
						r = -1;
					else {
						p += w;
						len -= (size_t)w;
					}
				}
				if (fd >= 0)
					close(fd);
			}
			git_blob_free(b);
			if (r < 0)
				return j->code =
				           sl_error_set(&j->err, SL_EIO, "%s: %s", name, strerror(errno));
		}
		/* submodules (commit entries) have no content here */
	}
	return 0;
}

/* The previous snapshot's tree object, for hard-linking unchanged files. */
static git_tree *prev_tree(struct job *j, git_repository *repo)
{
	struct sl_source *src = j->src;
	git_oid oid;
	git_commit *c = NULL;
	git_tree *t = NULL, *sub = NULL;
	git_tree_entry *e = NULL;

	if (!j->prev_snap || git_oid_fromstr(&oid, j->prev_rev) < 0 || git_commit_lookup(&c, repo, &oid) < 0)
		return NULL;
	if (git_commit_tree(&t, c) == 0 && src->path) {
		if (git_tree_entry_bypath(&e, t, src->path) == 0 && git_tree_entry_type(e) == GIT_OBJECT_TREE)
			git_tree_lookup(&sub, repo, git_tree_entry_id(e));
		git_tree_entry_free(e);
		git_tree_free(t);
		t = sub;
	}
	git_commit_free(c);
	return t;
}

static int export_tree(struct job *j, git_repository *repo, git_tree *tree, const char *dir)
{
	git_tree *old = prev_tree(j, repo);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), odfd = -1, r;

	if (dfd < 0) {
		git_tree_free(old);
		return j->code = sl_error_set(&j->err, SL_EIO, "%s: %s", dir, strerror(errno));
	}
	if (old)
		odfd = open(sl_source_snapshot_root(j->prev_snap), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = export_at(j, repo, tree, odfd >= 0 ? old : NULL, dfd, odfd, 0, "");
	git_tree_free(old);
	close(dfd);
	if (odfd >= 0)
		close(odfd);
	return r;
}

void sl_source__git_check(struct job *j)
{
	struct sl_source *src = j->src;
	struct op op = {0};
	struct target t;
	git_commit *commit = NULL;
	git_tree *tree = NULL, *sub = NULL;
	git_tree_entry *entry = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	_cleanup_free_ char *dir = NULL;
	struct count cnt = {0};
	int r;

	pthread_once(&init_once, init_libgit2);
	git_error_clear();
	if (repo_open(j, false) < 0)
		return;
	ca_acquire(src);
	op_init(&op, src);
	r = fetch_target(j, &op, &t);
	watchdog_stop(&op);
	if (r < 0 && corrupt_class()) {
		/* a damaged cache is cloned again */
		sl_error_clear(&j->err);
		j->code = 0;
		if (repo_open(j, true) < 0) {
			ca_release();
			return;
		}
		op_init(&op, src);
		r = fetch_target(j, &op, &t);
		watchdog_stop(&op);
	}
	ca_release();
	if (r < 0)
		return;
	git_oid_tostr(hex, sizeof(hex), &t.oid);
	if (j->prev_rev[0] && !strcmp(hex, j->prev_rev))
		return; /* unchanged */

	r = git_commit_lookup(&commit, src->git->repo, &t.oid);
	if (r < 0) {
		fail_git(j, NULL, r, "commit");
		goto out;
	}
	r = git_commit_tree(&tree, commit);
	if (r < 0) {
		fail_git(j, NULL, r, "tree");
		goto out;
	}
	if (src->path) {
		r = git_tree_entry_bypath(&entry, tree, src->path);
		if (r < 0 || git_tree_entry_type(entry) != GIT_OBJECT_TREE) {
			j->code = sl_error_set(&j->err, SL_ENOTFOUND,
			                       "path %s: not a directory in revision %s", src->path, hex);
			goto out;
		}
		r = git_tree_lookup(&sub, src->git->repo, git_tree_entry_id(entry));
		if (r < 0) {
			fail_git(j, NULL, r, "tree");
			goto out;
		}
	}
	git_tree_walk(sub ? sub : tree, GIT_TREEWALK_PRE, count_cb, &cnt);
	if (cnt.files > src->max_files) {
		j->code =
		    sl_error_set(&j->err, SL_ETOOLARGE, "revision %s has %zu files, over the limit of %zu",
		                 hex, cnt.files, src->max_files);
		goto out;
	}

	dir = sl_source__tree_path_new(src, hex);
	if (!dir || mkdir(dir, 0700) < 0) {
		j->code =
		    sl_error_set(&j->err, SL_EIO, "cannot create a tree directory: %s", strerror(errno));
		goto out;
	}
	r = export_tree(j, src->git->repo, sub ? sub : tree, dir);
	if (r < 0) {
		sl_source__rm_rf(dir);
		goto out;
	}
	r = sl_source__snapshot_new(src, hex, dir, NULL, cnt.files, j->problems.data, &j->snap, &j->err);
	if (r < 0) {
		sl_source__rm_rf(dir);
		sl_error_prefix(&j->err, "revision %s", hex);
		j->code = r;
		goto out;
	}
out:
	git_tree_entry_free(entry);
	git_tree_free(sub);
	git_tree_free(tree);
	git_commit_free(commit);
}

void sl_source__git_state_free(struct git_state *g)
{
	if (!g)
		return;
	git_repository_free(g->repo);
	free(g->repo_path);
	free(g);
}

/* ---- write-back ---------------------------------------------------------- */

/* The repository path of a local remote (file:// or a plain path), else NULL. */
static const char *local_path(const char *url)
{
	if (sl_str_has_prefix(url, "file://"))
		return url + strlen("file://");
	if (url[0] == '/')
		return url;
	return NULL;
}

/* Moves refs/heads/<branch> of a local remote from expect to oid, only if
 * it still is expect (git_reference_create_matching takes git's lock). */
static int local_cas(struct job *j, const char *path, const char *branch, const git_oid *oid,
                     const git_oid *expect)
{
	git_repository *rr = NULL;
	git_reference *ref = NULL;
	char name[400];
	int r;

	r = git_repository_open_bare(&rr, path);
	if (r < 0)
		return fail_git(j, NULL, r, "open remote");
	snprintf(name, sizeof(name), "refs/heads/%s", branch);
	r = git_reference_create_matching(&ref, rr, name, oid, 1, expect, "sluice write-back");
	if (r == GIT_EMODIFIED || r == GIT_ELOCKED)
		r = j->code = sl_error_set(&j->err, SL_ECONFLICT, "push rejected: %s moved meanwhile", name);
	else if (r < 0)
		fail_git(j, NULL, r, "update remote branch");
	git_reference_free(ref);
	if (git_reference_lookup(&ref, rr, "refs/sluice/incoming") == 0) {
		git_reference_delete(ref);
		git_reference_free(ref);
	}
	git_repository_free(rr);
	return r < 0 ? j->code : 0;
}

/* One attempt: edit the file on the head of the branch, commit, push.
 * Returns 0 (pushed, or nothing to do), SL_ECONFLICT to retry, or a code. */
static int writeback_once(struct job *j, struct op *op)
{
	struct sl_source *src = j->src;
	git_repository *repo = src->git->repo;
	struct target t;
	git_commit *head = NULL;
	git_tree *tree = NULL, *newtree = NULL;
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	git_signature *sig = NULL;
	git_remote *remote = NULL;
	git_oid blob_oid, tree_oid, commit_oid;
	git_tree_update upd;
	git_push_options popts = GIT_PUSH_OPTIONS_INIT;
	git_reference *ref = NULL;
	struct sl_buf out = {0};
	_cleanup_free_ char *full = NULL, *msg = NULL;
	char spec[400];
	char *specs[1] = {spec};
	git_strarray refspecs = {specs, 1};
	const char *local;
	int r;

	r = fetch_target(j, op, &t);
	if (r < 0)
		return r;
	if (!t.branch[0]) {
		return j->code = sl_error_set(&j->err, SL_EUNSUPPORTED,
		                              "write-back needs a branch; %s is not one", t.refname);
	}
	full = src->path ? sl_asprintf("%s/%s", src->path, j->file) : sl_strdup(j->file);
	if (!full)
		return j->code = sl_error_set(&j->err, SL_ENOMEM, "out of memory");
	r = git_commit_lookup(&head, repo, &t.oid);
	if (r >= 0)
		r = git_commit_tree(&tree, head);
	if (r < 0) {
		fail_git(j, NULL, r, "head");
		goto out;
	}
	r = git_tree_entry_bypath(&entry, tree, full);
	if (r < 0 || git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
		r = j->code = sl_error_set(&j->err, SL_ENOTFOUND, "%s: no longer in branch %s, skipped", full,
		                           t.branch);
		goto out;
	}
	r = git_blob_lookup(&blob, repo, git_tree_entry_id(entry));
	if (r < 0) {
		fail_git(j, NULL, r, "blob");
		goto out;
	}
	if ((size_t)git_blob_rawsize(blob) > src->max_file_size) {
		r = j->code = sl_error_set(&j->err, SL_ETOOLARGE, "%s: over the size limit", full);
		goto out;
	}
	r = sl_source_yaml_complete(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob), j->doc_index,
	                            j->name, &out, &j->err);
	if (r == SL_EEXIST) {
		/* already completed on the head: nothing to commit */
		sl_error_clear(&j->err);
		r = j->code = 0;
		goto out;
	}
	if (r < 0) {
		if (r == SL_ENOTFOUND)
			sl_error_prefix(&j->err, "%s: skipped", full);
		else
			sl_error_prefix(&j->err, "%s", full);
		j->code = r;
		goto out;
	}
	r = git_blob_create_from_buffer(&blob_oid, repo, out.data, out.len);
	if (r < 0) {
		fail_git(j, NULL, r, "blob");
		goto out;
	}
	memset(&upd, 0, sizeof(upd));
	upd.action = GIT_TREE_UPDATE_UPSERT;
	git_oid_cpy(&upd.id, &blob_oid);
	upd.filemode = git_tree_entry_filemode(entry);
	upd.path = full;
	r = git_tree_create_updated(&tree_oid, repo, tree, 1, &upd);
	if (r >= 0)
		r = git_tree_lookup(&newtree, repo, &tree_oid);
	if (r < 0) {
		fail_git(j, NULL, r, "tree");
		goto out;
	}
	r = git_signature_now(&sig, src->author_name, src->author_email);
	if (r < 0) {
		fail_git(j, NULL, r, "author");
		goto out;
	}
	msg =
	    sl_asprintf("Complete BackfillRequest %s\n\nsluice marked BackfillRequest %s (%s) as completed: "
	                "its backfill job succeeded.\n",
	                j->name, j->name, full);
	if (!msg) {
		r = j->code = sl_error_set(&j->err, SL_ENOMEM, "out of memory");
		goto out;
	}
	r = git_commit_create(&commit_oid, repo, NULL, sig, sig, "UTF-8", msg, newtree, 1,
	                      (const git_commit **)&head);
	if (r < 0) {
		fail_git(j, NULL, r, "commit");
		goto out;
	}
	r = git_reference_create(&ref, repo, "refs/sluice/writeback", &commit_oid, 1, NULL);
	if (r < 0) {
		fail_git(j, NULL, r, "reference");
		goto out;
	}
	r = remote_new(&remote, repo, src->url);
	if (r < 0) {
		fail_git(j, op, r, "remote");
		goto out;
	}
	local = local_path(src->url);
	/* libgit2's local transport moves the remote ref without checking
	 * its old value, which would drop a commit pushed meanwhile; so for
	 * a local remote the objects go to a side ref and the branch is
	 * moved by a compare-and-swap under git's ref lock. */
	if (local)
		snprintf(spec, sizeof(spec), "+refs/sluice/writeback:refs/sluice/incoming");
	else
		snprintf(spec, sizeof(spec), "refs/sluice/writeback:refs/heads/%s", t.branch);
	callbacks_init(&popts.callbacks, op);
	popts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	op->rejected = false;
	op->cred_calls = 0; /* a new connection asks for credentials again */
	r = git_remote_push(remote, &refspecs, &popts);
	if (r == GIT_ENONFASTFORWARD || (r >= 0 && op->rejected)) {
		r = j->code = sl_error_set(&j->err, SL_ECONFLICT, "push rejected: %s",
		                           op->rejected ? op->reject_msg : "not a fast-forward");
		goto out;
	}
	if (r < 0) {
		fail_git(j, op, r, "push");
		/* a remote refusing a stale ref may fail as an error, not a status */
		if (strstr(j->err.msg, "fast-forward") || strstr(j->err.msg, "not present locally"))
			r = j->code = SL_ECONFLICT;
		goto out;
	}
	if (local) {
		r = local_cas(j, local, t.branch, &commit_oid, &t.oid);
		if (r < 0)
			goto out;
	}
	git_oid_tostr(j->commit, sizeof(j->commit), &commit_oid);
	r = 0;
out:
	sl_buf_free(&out);
	git_reference_free(ref);
	git_remote_free(remote);
	git_signature_free(sig);
	git_blob_free(blob);
	git_tree_entry_free(entry);
	git_tree_free(newtree);
	git_tree_free(tree);
	git_commit_free(head);
	return r;
}

void sl_source__git_writeback(struct job *j)
{
	struct sl_source *src = j->src;
	struct op op = {0};
	uint64_t delay = 100;
	int r = SL_EINTERNAL;

	pthread_once(&init_once, init_libgit2);
	git_error_clear();
	if (repo_open(j, false) < 0)
		return;
	for (int attempt = 0; attempt < WRITEBACK_ATTEMPTS; attempt++) {
		sl_error_clear(&j->err);
		j->code = 0;
		ca_acquire(src);
		op_init(&op, src);
		r = writeback_once(j, &op);
		watchdog_stop(&op);
		ca_release();
		if (r != SL_ECONFLICT && r != SL_EUNAVAILABLE)
			break;
		if (attempt + 1 < WRITEBACK_ATTEMPTS) {
			/* another writer moved the branch: back off, fetch, redo */
			uint64_t ms = delay + sl_rand_between(0, delay);
			struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
			nanosleep(&ts, NULL);
			delay *= 2;
		}
	}
	j->code = r;
	if (r < 0 && !j->err.msg[0])
		sl_error_set(&j->err, r, "write-back failed");
}
