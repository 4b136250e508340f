/* Git network operations on the worker: credentials given only to the
 * configured host, host keys checked against known_hosts, TLS verified
 * with the configured CA, a deadline enforced by a watchdog, failures
 * mapped to SL_E* codes with credentials scrubbed, and the fetch of the
 * configured ref. */
#include "git-internal.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SECRET_MAX      4096
#define KNOWN_HOSTS_MAX (1u << 20)

static int op_fail(struct sl_source__git_op *op, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int op_fail(struct sl_source__git_op *op, int code, const char *fmt, ...)
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

int sl_source__url_host(const char *url, char *host, size_t hostsz, int *port, char *user, size_t usersz)
{
	const char *s, *end, *at, *h, *colon;
	size_t n;
	int w;

	assert(hostsz > 0 && (!user || usersz > 0));

	host[0] = '\0';
	if (user)
		user[0] = '\0';
	*port = 0;
	s = strstr(url, "://");
	if (s) {
		if (sl_str_has_prefix(url, "file://"))
			return 0;
		*port = sl_str_has_prefix(url, "https://")  ? 443
		        : sl_str_has_prefix(url, "http://") ? 80
		                                            : 22;
		s += 3;
		end = s + strcspn(s, "/?#");
	} else {
		if (url[0] == '/')
			return 0;
		*port = 22;
		s = url;
		end = strchr(url, ':');
		if (!end)
			return 0;
	}
	at = NULL;
	for (const char *p = s; p < end; p++)
		if (*p == '@')
			at = p;
	h = at ? at + 1 : s;
	if (at && user) {
		size_t un = strcspn(s, ":@");
		w = snprintf(user, usersz, "%.*s", (int)SL_MIN(un, (size_t)(at - s)), s);
		if (w < 0 || (size_t)w >= usersz)
			goto cut;
	}
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb)
			return 0;
		w = snprintf(host, hostsz, "%.*s", (int)(rb - h - 1), h + 1);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		n = (size_t)((colon ? colon : end) - h);
		w = snprintf(host, hostsz, "%.*s", (int)n, h);
	}
	/* A cut host would be compared, and matched, by its prefix. */
	if (w < 0 || (size_t)w >= hostsz)
		goto cut;
	if (colon && s != url)
		*port = atoi(colon + 1);
	return 0;
cut:
	host[0] = '\0';
	if (user)
		user[0] = '\0';
	return SL_EINVALID;
}

bool sl_source__git_is_sha(const char *s)
{
	if (strlen(s) != 40)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* ---- callbacks ------------------------------------------------------------ */

/* Reads a one-line secret (trailing newline removed). */
static int read_secret(const char *path, char *out, size_t outsz, struct sl_source__git_op *op,
                       const char *what)
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
	struct sl_source__git_op *op = payload;
	struct sl_source__git *g = op->g;
	char host[256], user[128];
	int port, r;

	if (sl_now_ms() > op->deadline)
		return op_fail(op, SL_ETIMEOUT, "timed out");
	if (op->host_invalid || sl_source__url_host(url, host, sizeof(host), &port, user, sizeof(user)) < 0)
		return op_fail(op, SL_EINVALID, "host name of %s is too long: refused", url);
	/* credentials go to the configured host only, never to a redirect target */
	if (strcasecmp(host, op->host) != 0)
		return op_fail(op, SL_EFORBIDDEN,
		               "credentials requested by %s, not the configured host %s: refused", host,
		               op->host);
	if (++op->cred_calls > 2)
		return op_fail(op, SL_EUNAUTHORIZED, "authentication refused by %s", op->host);
	if (op->cred_calls > 1 && !(allowed & GIT_CREDENTIAL_USERNAME))
		return op_fail(op, SL_EUNAUTHORIZED, "authentication refused by %s", op->host);

	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && g->password_file) {
		char pw[SECRET_MAX];
		r = read_secret(g->password_file, pw, sizeof(pw), op, "password");
		if (r < 0)
			return r;
		r = git_credential_userpass_plaintext_new(out, g->username, pw);
		explicit_bzero(pw, sizeof(pw));
		return r;
	}
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && g->ssh_key_file) {
		char pp[SECRET_MAX] = "";
		const char *u = username_from_url && *username_from_url ? username_from_url
		                : g->username                           ? g->username
		                                                        : "git";
		if (g->ssh_passphrase_file) {
			r = read_secret(g->ssh_passphrase_file, pp, sizeof(pp), op, "passphrase");
			if (r < 0)
				return r;
		}
		r = git_credential_ssh_key_new(out, u, NULL, g->ssh_key_file, pp[0] ? pp : NULL);
		explicit_bzero(pp, sizeof(pp));
		return r;
	}
	if (allowed & GIT_CREDENTIAL_USERNAME) {
		const char *u = username_from_url && *username_from_url ? username_from_url
		                : g->username                           ? g->username
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
	struct sl_source__git_op *op = payload;
	struct sl_source__git *g = op->g;

	if (sl_now_ms() > op->deadline)
		return op_fail(op, SL_ETIMEOUT, "timed out");
	if (op->host_invalid)
		return op_fail(op, SL_EINVALID, "host name of %s is too long to check: refused", g->url);
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
		git_cert_hostkey *hk = (git_cert_hostkey *)cert;
		const char *type;
		struct sl_buf kh;
		struct sl_error e;
		int r;

		/* libgit2 1.5 does not read known_hosts itself: we are the check */
		if (!(hk->type & GIT_CERT_SSH_RAW) || !(type = raw_type_name(hk->raw_type)))
			return op_fail(op, SL_EFORBIDDEN, "host key of %s: unsupported key type", host);
		if (!g->known_hosts_file)
			return op_fail(op, SL_EFORBIDDEN, "host key of %s cannot be checked: no known_hosts",
			               host);
		r = sl_file_read(g->known_hosts_file, KNOWN_HOSTS_MAX, &kh, &e);
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
	struct sl_source__git_op *op = payload;
	if (sl_now_ms() > op->deadline)
		return op_fail(op, SL_ETIMEOUT, "timed out after %llu ms",
		               (unsigned long long)op->g->timeout_ms);
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
	struct sl_source__git_op *op = payload;
	if (status) {
		op->rejected = true;
		snprintf(op->reject_msg, sizeof(op->reject_msg), "%s: %s", refname, status);
	}
	return 0;
}

/* ---- the watchdog and the CA lock ------------------------------------------- */

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

static void watchdog_start(struct sl_source__git_op *op, uint64_t ms)
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

static void watchdog_stop(struct sl_source__git_op *op)
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

/* The CA locations are process-wide in libgit2 (one mbedTLS/OpenSSL
 * config), and replacing them frees the chain a handshake on another
 * worker may be using. So network operations hold ca_lock for reading
 * while the locations are the ones they want; a source that needs other
 * locations takes it for writing to change them, which waits for the
 * operations in flight. Sources with the same CA run side by side. */
static pthread_rwlock_t ca_lock = PTHREAD_RWLOCK_INITIALIZER;
static char ca_cur_file[PATH_MAX], ca_cur_dir[PATH_MAX];
static bool ca_cur_set;

static void ca_want(const struct sl_source__git *g, const char **file, const char **dir)
{
	/* without a configured bundle, the system's, so an earlier source's
	 * private CA is not trusted by this one */
	if (g->ca_file || g->ca_dir) {
		*file = g->ca_file;
		*dir = g->ca_dir;
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

static void ca_acquire(const struct sl_source__git *g)
{
	const char *file, *dir;

	ca_want(g, &file, &dir);
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

void sl_source__git_op_begin(struct sl_source__git_op *op, struct sl_source__git *g)
{
	ca_acquire(g);
	memset(op, 0, sizeof(*op));
	op->g = g;
	op->deadline = sl_now_ms() + g->timeout_ms;
	op->host_invalid = sl_source__url_host(g->url, op->host, sizeof(op->host), &op->port, NULL, 0) < 0;
	watchdog_start(op, g->timeout_ms);
}

void sl_source__git_op_end(struct sl_source__git_op *op)
{
	watchdog_stop(op);
	ca_release();
}

void sl_source__git_callbacks_init(git_remote_callbacks *cb, struct sl_source__git_op *op)
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

/* insteadOf rewriting is skipped: the URL is the one configured, and
 * libgit2 1.5 leaks its regex match data (about 20 KiB) on every insteadOf
 * lookup, which a fetch each minute would turn into a steady leak. */
int sl_source__git_remote_new(git_remote **ret, git_repository *repo, const char *url)
{
	git_remote_create_options o = GIT_REMOTE_CREATE_OPTIONS_INIT;
	o.repository = repo;
	o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	return git_remote_create_with_opts(ret, url, &o);
}

/* ---- failures ----------------------------------------------------------------- */

#define SCRUB_MARK "..."

int sl_source__scrub(const char *in, const char *needle, const char *with, char *out, size_t outsz)
{
	size_t nl = strlen(needle), wl = strlen(with), o = 0;
	const char *p = in;

	assert(outsz > sizeof(SCRUB_MARK));
	/* One pass forwards: a replacement is never scanned again, so one that
	 * contains needle cannot loop, and nothing is moved in place. */
	while (*p) {
		const char *piece = p;
		size_t pl = 1;

		if (nl && strncmp(p, needle, nl) == 0) {
			piece = with;
			pl = wl;
			p += nl;
		} else
			p++;
		if (o + pl + 1 > outsz)
			goto cut;
		memcpy(out + o, piece, pl);
		o += pl;
	}
	out[o] = '\0';
	return 0;
cut:
	/* What is already out is safe to show: text that was not needle, and
	 * whole or cut replacements; the needle that did not fit is dropped. */
	o = SL_MIN(o, outsz - sizeof(SCRUB_MARK));
	memcpy(out + o, SCRUB_MARK, sizeof(SCRUB_MARK));
	return SL_ETOOLARGE;
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

/* msg with the configured URL replaced by its redacted form, into out. */
static const char *scrubbed(const struct sl_source__git *g, const char *msg, char *out, size_t outsz)
{
	char red[1024];

	if (!g->url)
		return msg;
	sl_url_redact(g->url, red, sizeof(red));
	/* A cut message still reads as one (it ends in "..."), and holds no
	 * part of the URL: the detail is for people, so it is shown cut. */
	(void)sl_source__scrub(msg, g->url, red, out, outsz);
	return out;
}

int sl_source__git_fail(const struct sl_source__git *g, const struct sl_source__git_op *op, int gerr,
                        const char *what, struct sl_error *err)
{
	const git_error *e = git_error_last();
	const char *detail = e && e->message ? e->message : NULL;
	char clean[SL_ERRMSG_MAX];
	int code;

	/* Scrubbed before it is formatted, so the URL is whole when it is
	 * replaced, never cut by the error buffer into a part that hides it. */
	if (op && op->code) {
		code = op->code;
		sl_error_set(err, code, "%s: %s", what, scrubbed(g, op->msg, clean, sizeof(clean)));
	} else if (op && sl_now_ms() >= op->deadline) {
		/* interrupted by the watchdog: say why, not just "EINTR" */
		code = SL_ETIMEOUT;
		sl_error_set(err, code, "%s: timed out after %llu ms (%s)", what,
		             (unsigned long long)g->timeout_ms,
		             detail ? scrubbed(g, detail, clean, sizeof(clean)) : "no reply");
	} else {
		/* by libgit2's return code and error class, never its wording */
		code = map_git_error(gerr, e ? e->klass : 0);
		sl_error_set(err, code, "%s: %s", what,
		             detail ? scrubbed(g, detail, clean, sizeof(clean)) : "unknown error");
	}
	return code;
}

/* ---- fetch ------------------------------------------------------------------ */

static const git_remote_head *head_find(const git_remote_head *const *heads, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(heads[i]->name, name))
			return heads[i];
	return NULL;
}

int sl_source__git_pick_ref(const char *ref, const git_remote_head *const *heads, size_t n,
                            struct sl_source__git_target *t, char *spec, size_t specsz, struct sl_error *err)
{
	const git_remote_head *hit, *peeled = NULL;
	const char *want_ref = ref;
	char want[300], wanttag[300];

	memset(t, 0, sizeof(*t));
	if (ref && sl_source__git_is_sha(ref)) {
		git_oid_fromstr(&t->oid, ref);
		snprintf(spec, specsz, "+refs/heads/*:refs/sluice/heads/*");
		return 0;
	}
	if (!want_ref) {
		/* the remote's default branch */
		const git_remote_head *h = head_find(heads, n, "HEAD");
		want_ref = h && h->symref_target ? h->symref_target : "refs/heads/main";
	}
	if (sl_str_has_prefix(want_ref, "refs/")) {
		snprintf(want, sizeof(want), "%s", want_ref);
		wanttag[0] = '\0';
	} else {
		snprintf(want, sizeof(want), "refs/heads/%s", want_ref);
		snprintf(wanttag, sizeof(wanttag), "refs/tags/%s", want_ref);
	}
	hit = head_find(heads, n, want);
	if (!hit && wanttag[0]) {
		snprintf(want, sizeof(want), "%s", wanttag);
		hit = head_find(heads, n, want);
	}
	if (!hit)
		return sl_error_set(err, SL_ENOTFOUND, "ref %s not found on the remote",
		                    ref ? ref : want_ref);
	if (sl_str_has_prefix(want, "refs/tags/")) {
		/* an annotated tag: the commit is what it points to */
		char pe[310];
		snprintf(pe, sizeof(pe), "%s^{}", want);
		peeled = head_find(heads, n, pe);
	}
	if (sl_str_has_prefix(want, "refs/heads/"))
		snprintf(t->branch, sizeof(t->branch), "%s", want + strlen("refs/heads/"));
	snprintf(t->refname, sizeof(t->refname), "%s", want);
	git_oid_cpy(&t->oid, peeled ? &peeled->oid : &hit->oid);
	snprintf(spec, specsz, "+%s:refs/sluice/fetched-tip", want);
	return 0;
}

/* Downloads what spec names unless the cache has t's commit already. */
static int download(struct sl_source__git_op *op, git_remote *remote, struct sl_source__git_target *t,
                    char *spec, struct sl_error *err)
{
	git_fetch_options fopts = GIT_FETCH_OPTIONS_INIT;
	git_strarray refspecs = {&spec, 1};
	git_odb *odb = NULL;
	int r;

	r = git_repository_odb(&odb, op->g->repo);
	if (r < 0)
		return sl_source__git_fail(op->g, op, r, "cache", err);
	t->have = git_odb_exists(odb, &t->oid);
	if (!t->have) {
		sl_source__git_callbacks_init(&fopts.callbacks, op);
		fopts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
		fopts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
		fopts.update_fetchhead = 0;
		r = git_remote_download(remote, &refspecs, &fopts);
		if (r < 0) {
			r = sl_source__git_fail(op->g, op, r, "fetch", err);
		} else if (!git_odb_exists(odb, &t->oid)) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof(hex), &t->oid);
			r = sl_error_set(err, SL_ENOTFOUND, "commit %s not found on the remote", hex);
		}
	}
	git_odb_free(odb);
	return r < 0 ? r : 0;
}

int sl_source__git_fetch(struct sl_source__git_op *op, struct sl_source__git_target *t, struct sl_error *err)
{
	struct sl_source__git *g = op->g;
	git_remote *remote = NULL;
	git_remote_connect_options copts = GIT_REMOTE_CONNECT_OPTIONS_INIT;
	const git_remote_head **heads;
	size_t nheads;
	git_reference *ref = NULL;
	char spec[700];
	int r;

	memset(t, 0, sizeof(*t));
	r = sl_source__git_remote_new(&remote, g->repo, g->url);
	if (r < 0)
		return sl_source__git_fail(g, op, r, "remote", err);
	sl_source__git_callbacks_init(&copts.callbacks, op);
	copts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	r = git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &copts);
	if (r < 0) {
		r = sl_source__git_fail(g, op, r, "connect", err);
		goto out;
	}
	r = git_remote_ls(&heads, &nheads, remote);
	if (r < 0) {
		r = sl_source__git_fail(g, op, r, "list refs", err);
		goto out;
	}
	r = sl_source__git_pick_ref(g->ref, heads, nheads, t, spec, sizeof(spec), err);
	if (r < 0)
		goto out;
	r = download(op, remote, t, spec, err);
	if (r < 0)
		goto out;
	/* our own ref to what we fetched: the next fetch offers it as a
	 * "have", so the remote sends only what is new (without it every
	 * fetch is a full clone) */
	r = git_reference_create(&ref, g->repo, "refs/sluice/fetched", &t->oid, 1, NULL);
	git_reference_free(ref);
	if (r < 0)
		r = sl_source__git_fail(g, op, r, "reference", err);
out:
	git_remote_disconnect(remote);
	git_remote_free(remote);
	return r < 0 ? r : 0;
}
