/* The client: one curl multi handle driven from the epoll loop (socket and
 * timer callbacks, as in curl's ephiperfifo.c), credentials (static, token
 * file, exec plugin), retries, result decoding and metrics. */
#include "config.h"
#include "internal.h"
#include "sluice/base-base64.h"
#include "sluice/loop.h"
#include "sluice/manifest-json.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN_FILE_MAX  (64u << 10)
#define TOKEN_REREAD_MS 60000
#define EXEC_OUT_MAX    (1u << 20)
#define EXEC_TIMEOUT_MS 60000
#define RETRY_MAX_MS    30000

extern char **environ;

enum req_state { REQ_WAIT_AUTH, REQ_RUNNING, REQ_WAIT_RETRY };

struct req {
	struct sl_kube *k;
	struct req *prev, *next; /* k->reqs */
	struct req *pnext;       /* k->pending */
	bool pmarked;
	struct req *wnext; /* k->auth_wait */
	enum req_state state;
	struct req_spec spec;
	char *path, *body;
	CURL *easy;
	struct curl_slist *headers;
	struct sl_buf resp;
	long retry_after_s; /* -1: no header */
	unsigned retries;
	bool auth_retried;
	bool canceled;
	int abort_code;
	struct sl_loop_timer *retry_timer;
	char errbuf[CURL_ERROR_SIZE];
};

static const char *const verb_names[] = {
    [SL_KUBE_VERB_GET] = "get",       [SL_KUBE_VERB_LIST] = "list",     [SL_KUBE_VERB_WATCH] = "watch",
    [SL_KUBE_VERB_CREATE] = "create", [SL_KUBE_VERB_UPDATE] = "update", [SL_KUBE_VERB_PATCH] = "patch",
    [SL_KUBE_VERB_APPLY] = "apply",   [SL_KUBE_VERB_DELETE] = "delete",
};

const char *sl_kube_verb_name(enum sl_kube_verb v)
{
	return (unsigned)v < SL_ARRAY_SIZE(verb_names) ? verb_names[v] : "?";
}

const struct sl_kube_metrics *sl_kube_get_metrics(const struct sl_kube *k)
{
	return &k->metrics;
}
const struct sl_kube_config *sl_kube_get_config(const struct sl_kube *k)
{
	return k->cfg;
}
unsigned sl_kube_inflight(const struct sl_kube *k)
{
	return k->inflight;
}

void sl_kube__res_fail(struct kube_res *kr, int code, const char *fmt, ...)
{
	va_list ap;
	memset(&kr->res, 0, sizeof(kr->res));
	kr->reason[0] = kr->field[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(kr->message, sizeof(kr->message), fmt, ap);
	va_end(ap);
	kr->res.code = code;
	kr->res.message = kr->message;
	kr->res.reason = kr->reason;
	kr->res.field = kr->field;
	sl_error_set(&kr->res.err, code, "%s", kr->message);
}

/* ---- deferred calls owned by the client --------------------------------- */

static void soon_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct sl_kube *k = payload;
	struct soon *s = k->soon_head;
	k->soon_head = k->soon_tail = NULL;
	while (s) {
		struct soon *n = s->next;
		s->fn(s->payload, false);
		free(s);
		s = n;
	}
}

int sl_kube__soon(struct sl_kube *k, void (*fn)(void *payload, bool canceled), void *payload)
{
	struct soon *s = calloc(1, sizeof(*s));
	if (!s)
		return SL_ENOMEM;
	s->fn = fn;
	s->payload = payload;
	if (k->soon_tail)
		k->soon_tail->next = s;
	else
		k->soon_head = s;
	k->soon_tail = s;
	sl_loop_timer_arm(k->soon_timer, 0);
	return 0;
}

/* ---- curl <-> loop ------------------------------------------------------ */

static void finish(struct req *r, CURLcode cc);

static void after_drive(struct sl_kube *k)
{
	struct req *r;
	CURLMsg *msg;
	int left;

	while ((r = k->pending)) {
		k->pending = r->pnext;
		r->pmarked = false;
		r->pnext = NULL;
		if (r->canceled)
			sl_kube__req_cancel(r);
		else if (r->spec.drain)
			r->spec.drain(r, r->spec.payload);
	}
	while ((msg = curl_multi_info_read(k->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		r = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r)
			finish(r, msg->data.result);
	}
}

static void drive(struct sl_kube *k, curl_socket_t fd, int flags)
{
	int running;
	k->depth++;
	curl_multi_socket_action(k->multi, fd, flags, &running);
	k->depth--;
	if (!k->depth)
		after_drive(k);
}

static void io_cb(struct sl_loop *loop, int fd, uint32_t events, void *payload)
{
	int flags = 0;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	drive(payload, fd, flags);
}

static void curl_timer_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	drive(payload, CURL_SOCKET_TIMEOUT, 0);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct sl_kube *k = userp;
	uint32_t ev = 0;

	if (what == CURL_POLL_REMOVE) {
		if (socketp) {
			sl_loop_del_fd(k->loop, s);
			curl_multi_assign(k->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	if (!socketp) {
		int r = sl_loop_add_fd(k->loop, s, ev, io_cb, k);
		if (r == SL_EEXIST)
			r = sl_loop_mod_fd(k->loop, s, ev);
		if (r < 0)
			return -1;
		curl_multi_assign(k->multi, s, (void *)1);
	} else if (sl_loop_mod_fd(k->loop, s, ev) < 0)
		return -1;
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct sl_kube *k = userp;
	if (timeout_ms < 0)
		sl_loop_timer_disarm(k->curl_timer);
	else
		sl_loop_timer_arm(k->curl_timer, (uint64_t)timeout_ms);
	return 0;
}

/* ---- credentials ---------------------------------------------------------- */

static void bearer_set(struct sl_kube *k, char *tok)
{
	if (k->bearer) {
		explicit_bzero(k->bearer, strlen(k->bearer));
		free(k->bearer);
	}
	k->bearer = tok;
}

static int token_file_read(struct sl_kube *k, struct sl_error *err)
{
	struct sl_buf b;
	size_t n;
	char *tok;
	int r = sl_file_read(k->cfg->token_file, TOKEN_FILE_MAX, &b, err);

	if (r < 0)
		return r;
	n = b.data ? strcspn(b.data, "\r\n") : 0;
	tok = sl_strndup(b.data ? b.data : "", n);
	if (b.data)
		explicit_bzero(b.data, b.len);
	sl_buf_free(&b);
	if (!tok)
		return SL_ENOMEM;
	bearer_set(k, tok);
	k->bearer_read_ms = sl_now_ms();
	return 0;
}

struct exec_job {
	struct sl_kube *k;
	char **argv, **envp;
	struct sl_buf out;
	int status;
	char err[256];
};

static void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

static void exec_job_free(struct exec_job *j)
{
	strv_free(j->argv);
	strv_free(j->envp);
	if (j->out.data)
		explicit_bzero(j->out.data, j->out.len);
	sl_buf_free(&j->out);
	free(j);
}

/* Runs on the worker thread: fork, exec the plugin, read its stdout (bounded,
 * with a deadline). No loop state is touched here. */
static void exec_work(void *payload)
{
	struct exec_job *j = payload;
	int pfd[2], devnull, st = 0;
	pid_t pid;
	uint64_t deadline = sl_now_ms() + EXEC_TIMEOUT_MS;
	char buf[4096];

	j->status = -1;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(j->err, sizeof(j->err), "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(j->err, sizeof(j->err), "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return;
	}
	if (pid == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		execvpe(j->argv[0], j->argv, j->envp);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		uint64_t now = sl_now_ms();
		ssize_t n;
		if (now >= deadline) {
			snprintf(j->err, sizeof(j->err), "timed out after %d s", EXEC_TIMEOUT_MS / 1000);
			kill(pid, SIGKILL);
			break;
		}
		int pr = poll(&p, 1, (int)(deadline - now));
		if (pr < 0 && errno != EINTR)
			break;
		/* nothing to read yet: read() would block past the deadline on a
		 * plugin that hangs with its stdout open */
		if (pr <= 0)
			continue;
		n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		if (sl_buf_append(&j->out, buf, (size_t)n) < 0) {
			snprintf(j->err, sizeof(j->err), "output larger than %u bytes", EXEC_OUT_MAX);
			kill(pid, SIGKILL);
			break;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!j->err[0]) {
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			j->status = 0;
		else
			snprintf(j->err, sizeof(j->err), "exited with status %d",
			         WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}

static void req_launch(struct req *r);
static void req_complete(struct req *r, struct kube_res *kr);

static void wake_auth_waiters(struct sl_kube *k, int code, const char *msg)
{
	struct req *w = k->auth_wait;
	k->auth_wait = NULL;
	while (w) {
		struct req *n = w->wnext;
		w->wnext = NULL;
		if (code == 0)
			req_launch(w);
		else {
			struct kube_res kr;
			sl_kube__res_fail(&kr, code, "%s %s: %s", w->spec.method, w->path, msg);
			req_complete(w, &kr);
		}
		w = n;
	}
}

static void exec_done(struct sl_loop *loop, void *payload)
{
	struct exec_job *j = payload;
	struct sl_kube *k = j->k;
	cJSON *root = NULL, *status, *tok, *exp, *cert, *key;
	char msg[512];
	int code = SL_EUNAUTHORIZED;

	k->exec_running = false;
	if (j->status != 0) {
		snprintf(msg, sizeof(msg), "exec plugin %s: %s", k->cfg->exec->command, j->err);
		goto out;
	}
	if (sl_manifest_json_parse(j->out.data ? j->out.data : "", j->out.len, &root, NULL) < 0)
		root = NULL;
	status = cJSON_GetObjectItemCaseSensitive(root, "status");
	tok = cJSON_GetObjectItemCaseSensitive(status, "token");
	exp = cJSON_GetObjectItemCaseSensitive(status, "expirationTimestamp");
	cert = cJSON_GetObjectItemCaseSensitive(status, "clientCertificateData");
	key = cJSON_GetObjectItemCaseSensitive(status, "clientKeyData");
	if (!cJSON_IsObject(status) ||
	    !(cJSON_IsString(tok) || (cJSON_IsString(cert) && cJSON_IsString(key)))) {
		snprintf(msg, sizeof(msg),
		         "exec plugin %s: output is not an ExecCredential with a token or certificate",
		         k->cfg->exec->command);
		goto out;
	}
	k->bearer_expiry = 0;
	if (cJSON_IsString(exp) && sl_time_parse_rfc3339(exp->valuestring, &k->bearer_expiry) < 0) {
		snprintf(msg, sizeof(msg), "exec plugin %s: bad expirationTimestamp", k->cfg->exec->command);
		goto out;
	}
	bearer_set(k, cJSON_IsString(tok) ? sl_strdup(tok->valuestring) : NULL);
	if (cJSON_IsString(cert)) {
		free(k->exec_cert);
		free(k->exec_key);
		k->exec_cert = sl_strdup(cert->valuestring);
		k->exec_key = sl_strdup(key->valuestring);
		k->exec_cert_len = k->exec_cert ? strlen(k->exec_cert) : 0;
		k->exec_key_len = k->exec_key ? strlen(k->exec_key) : 0;
	}
	code = 0;
	msg[0] = '\0';
out:
	if (root) {
		/* the token also lives in the parsed tree: wipe it */
		tok = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "status"),
		                                       "token");
		if (cJSON_IsString(tok))
			explicit_bzero(tok->valuestring, strlen(tok->valuestring));
		cJSON_Delete(root);
	}
	exec_job_free(j);
	wake_auth_waiters(k, code, msg);
}

static char *exec_info(struct sl_kube *k)
{
	cJSON *o = cJSON_CreateObject(), *spec;
	char *s = NULL;

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "apiVersion", k->cfg->exec->api_version);
	cJSON_AddStringToObject(o, "kind", "ExecCredential");
	spec = cJSON_AddObjectToObject(o, "spec");
	if (spec) {
		cJSON_AddBoolToObject(spec, "interactive", false);
		if (k->cfg->exec->provide_cluster_info) {
			cJSON *c = cJSON_AddObjectToObject(spec, "cluster");
			if (c) {
				cJSON_AddStringToObject(c, "server", k->cfg->server);
				if (k->cfg->tls_server_name)
					cJSON_AddStringToObject(c, "tls-server-name",
					                        k->cfg->tls_server_name);
				cJSON_AddBoolToObject(c, "insecure-skip-tls-verify",
				                      k->cfg->insecure_skip_tls_verify);
				if (k->cfg->ca) {
					char *b64 = sl_base64_encode(k->cfg->ca, k->cfg->ca_len);
					if (b64)
						cJSON_AddStringToObject(c, "certificate-authority-data", b64);
					free(b64);
				}
			}
		}
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static int exec_start(struct sl_kube *k)
{
	struct exec_job *j = calloc(1, sizeof(*j));
	const struct sl_kube_exec *x = k->cfg->exec;
	size_t na = 0, ne = 0, nenv = 0, i = 0;
	_cleanup_free_ char *info = NULL;
	int r;

	if (!j)
		return SL_ENOMEM;
	j->k = k;
	sl_buf_init(&j->out, EXEC_OUT_MAX);
	while (x->args && x->args[na])
		na++;
	while (x->env && x->env[ne])
		ne++;
	while (environ && environ[nenv])
		nenv++;
	info = exec_info(k);
	j->argv = calloc(na + 2, sizeof(char *));
	j->envp = calloc(nenv + ne + 2, sizeof(char *));
	if (!info || !j->argv || !j->envp)
		goto nomem;
	if (!(j->argv[0] = sl_strdup(x->command)))
		goto nomem;
	for (size_t a = 0; a < na; a++)
		if (!(j->argv[a + 1] = sl_strdup(x->args[a])))
			goto nomem;
	for (size_t e = 0; e < nenv; e++)
		if (!sl_str_has_prefix(environ[e], "KUBERNETES_EXEC_INFO="))
			if (!(j->envp[i++] = sl_strdup(environ[e])))
				goto nomem;
	for (size_t e = 0; e < ne; e++)
		if (!(j->envp[i++] = sl_strdup(x->env[e])))
			goto nomem;
	if (!(j->envp[i++] = sl_asprintf("KUBERNETES_EXEC_INFO=%s", info)))
		goto nomem;
	if (!k->worker) {
		r = sl_loop_worker_new(k->loop, &k->worker);
		if (r < 0) {
			exec_job_free(j);
			return r;
		}
	}
	r = sl_loop_worker_submit(k->worker, exec_work, exec_done, j);
	if (r < 0) {
		exec_job_free(j);
		return r;
	}
	k->exec_running = true;
	return 0;
nomem:
	exec_job_free(j);
	return SL_ENOMEM;
}

/* 0: credentials ready; 1: r waits for the exec plugin; < 0: failure with
 * detail in err. */
static int auth_prepare(struct sl_kube *k, struct req *r, struct sl_error *err)
{
	const struct sl_kube_config *c = k->cfg;
	int rc;

	if (c->exec) {
		if ((k->bearer || k->exec_cert) && (!k->bearer_expiry || sl_wall_s() < k->bearer_expiry - 10))
			return 0;
		r->wnext = k->auth_wait;
		k->auth_wait = r;
		if (!k->exec_running) {
			rc = exec_start(k);
			if (rc < 0) {
				k->auth_wait = r->wnext;
				r->wnext = NULL;
				return sl_error_set(err, SL_EUNAUTHORIZED, "exec plugin %s: cannot start: %s",
				                    c->exec->command, sl_strerror(rc));
			}
		}
		return 1;
	}
	if (c->token_file && (!k->bearer || sl_now_ms() - k->bearer_read_ms >= TOKEN_REREAD_MS)) {
		rc = token_file_read(k, err);
		if (rc < 0 && !k->bearer) {
			sl_error_prefix(err, "token file");
			return SL_EUNAUTHORIZED;
		}
	}
	return 0;
}

/* After a 401: forget what can be fetched again. True when a retry may help. */
static bool auth_invalidate(struct sl_kube *k)
{
	if (k->cfg->exec) {
		bearer_set(k, NULL);
		k->bearer_expiry = 0;
		return true;
	}
	if (k->cfg->token_file) {
		k->bearer_read_ms = 0;
		bearer_set(k, NULL);
		return true;
	}
	return false;
}

/* ---- requests ------------------------------------------------------------ */

static size_t write_cb(char *p, size_t sz, size_t nmemb, void *userp)
{
	struct req *r = userp;
	size_t n = sz * nmemb;
	long status = 0;

	if (r->canceled)
		return 0;
	r->k->metrics.bytes_received += n;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (r->spec.data && status == 200) {
		int rc = r->spec.data(r, p, n, r->spec.payload);
		if (rc < 0) {
			r->abort_code = rc;
			return 0;
		}
		return r->canceled ? 0 : n;
	}
	if (sl_buf_append(&r->resp, p, n) < 0) {
		r->abort_code = SL_ETOOLARGE;
		return 0;
	}
	return n;
}

static size_t header_cb(char *p, size_t sz, size_t nmemb, void *userp)
{
	struct req *r = userp;
	size_t n = sz * nmemb;
	static const char name[] = "retry-after:";

	if (n > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		char tmp[32];
		size_t l = SL_MIN(n - (sizeof(name) - 1), sizeof(tmp) - 1);
		char *end;
		long v;
		memcpy(tmp, p + sizeof(name) - 1, l);
		tmp[l] = '\0';
		v = strtol(tmp, &end, 10);
		/* an HTTP-date form counts as "retry soon" */
		r->retry_after_s = end != tmp && v >= 0 ? v : 1;
	}
	return n;
}

static void req_unlink(struct req *r)
{
	struct sl_kube *k = r->k;
	if (r->prev)
		r->prev->next = r->next;
	else
		k->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (r->pmarked) {
		struct req **pp = &k->pending;
		while (*pp && *pp != r)
			pp = &(*pp)->pnext;
		if (*pp)
			*pp = r->pnext;
	}
	if (r->state == REQ_WAIT_AUTH) {
		struct req **pp = &k->auth_wait;
		while (*pp && *pp != r)
			pp = &(*pp)->wnext;
		if (*pp)
			*pp = r->wnext;
	}
}

static void easy_drop(struct req *r)
{
	if (r->easy) {
		curl_multi_remove_handle(r->k->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
}

static void req_destroy(struct req *r)
{
	struct sl_kube *k = r->k;
	req_unlink(r);
	easy_drop(r);
	sl_loop_timer_free(r->retry_timer);
	sl_buf_free(&r->resp);
	free(r->path);
	free(r->body);
	if (r->spec.verb != SL_KUBE_VERB_WATCH)
		k->inflight--;
	free(r);
}

void sl_kube__req_mark_pending(struct req *r)
{
	if (r->pmarked)
		return;
	r->pmarked = true;
	r->pnext = r->k->pending;
	r->k->pending = r;
}

void sl_kube__req_cancel(struct req *r)
{
	if (!r)
		return;
	if (r->k->depth) {
		/* inside curl: finish the job once curl has returned */
		r->canceled = true;
		sl_kube__req_mark_pending(r);
		return;
	}
	req_destroy(r);
}

static void req_complete(struct req *r, struct kube_res *kr)
{
	req_done_fn done = r->spec.done;
	void *payload = r->spec.payload;

	/* unlink first so that done may start new requests freely */
	req_destroy(r);
	done(NULL, &kr->res, payload);
	cJSON_Delete(kr->res.body);
	kr->res.body = NULL;
}

static int code_for(long status, const char *reason)
{
	switch (status) {
	case 401:
		return SL_EUNAUTHORIZED;
	case 403:
		return SL_EFORBIDDEN;
	case 404:
		return SL_ENOTFOUND;
	case 409:
		return strcmp(reason, "AlreadyExists") == 0 ? SL_EEXIST : SL_ECONFLICT;
	case 410:
		return SL_EGONE;
	case 400:
	case 415:
	case 422:
		return SL_EINVALID;
	case 405:
		return SL_EUNSUPPORTED;
	case 413:
		return SL_ETOOLARGE;
	case 429:
		return SL_ETOOMANY;
	case 504:
		return SL_ETIMEOUT;
	default:
		return status >= 500 ? SL_EUNAVAILABLE : SL_EINTERNAL;
	}
}

static void copy_str(char *dst, size_t n, const cJSON *v)
{
	snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static void build_result(struct req *r, CURLcode cc, long status, struct kube_res *kr)
{
	const char *verb = sl_kube_verb_name(r->spec.verb);
	int pr = 0;

	memset(kr, 0, sizeof(*kr));
	kr->res.message = kr->message;
	kr->res.reason = kr->reason;
	kr->res.field = kr->field;
	kr->res.http_status = status;
	if (cc != CURLE_OK && (r->abort_code || status == 0 || cc != CURLE_WRITE_ERROR)) {
		int code = r->abort_code                    ? r->abort_code
		           : cc == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEOUT
		                                            : SL_EIO;
		if (r->abort_code == SL_ETOOLARGE)
			snprintf(kr->message, sizeof(kr->message), "%s larger than the limit",
			         r->spec.verb == SL_KUBE_VERB_WATCH ? "watch event" : "response");
		else if (r->abort_code == SL_EINVALID)
			snprintf(kr->message, sizeof(kr->message), "watch stream not understood");
		else
			snprintf(kr->message, sizeof(kr->message), "%s",
			         r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
		kr->res.code = code;
		sl_error_set(&kr->res.err, code, "%s %s: %s", verb, r->path, kr->message);
		return;
	}
	/* big integers keep their digits (for the SPEC of a Job) */
	if (r->resp.len && (pr = sl_manifest_json_parse(r->resp.data, r->resp.len, &kr->res.body, NULL)) < 0)
		kr->res.body = NULL;
	if (status >= 200 && status < 300) {
		if (r->resp.len && !kr->res.body) {
			kr->res.code = pr == SL_ENOMEM ? SL_ENOMEM : SL_EINTERNAL;
			snprintf(kr->message, sizeof(kr->message), "%s",
			         pr == SL_ENOMEM ? "out of memory reading the response"
			                         : "response is not JSON");
			sl_error_set(&kr->res.err, kr->res.code, "%s %s: %ld: %s", verb, r->path, status,
			             kr->message);
		}
		return;
	}
	{
		const cJSON *b = kr->res.body;
		const cJSON *causes = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(b, "details"), "causes");
		copy_str(kr->message, sizeof(kr->message), cJSON_GetObjectItemCaseSensitive(b, "message"));
		copy_str(kr->reason, sizeof(kr->reason), cJSON_GetObjectItemCaseSensitive(b, "reason"));
		copy_str(kr->field, sizeof(kr->field),
		         cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(causes, 0), "field"));
		if (!kr->message[0] && r->resp.len && !b)
			/* not a Status: keep a bounded, printable start of it */
			for (size_t i = 0; i < SL_MIN(r->resp.len, 200u); i++)
				kr->message[i] = (r->resp.data[i] >= 0x20 && r->resp.data[i] < 0x7f)
				                     ? r->resp.data[i]
				                     : ' ';
	}
	kr->res.code = code_for(status, kr->reason);
	sl_error_set(&kr->res.err, kr->res.code, "%s %s: %ld %s%s%s", verb, r->path, status,
	             kr->reason[0] ? kr->reason : sl_strerror(kr->res.code), kr->message[0] ? ": " : "",
	             kr->message);
}

static void retry_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct req *r = payload;
	struct sl_error err = {0};
	int rc;

	r->state = REQ_WAIT_AUTH;
	rc = auth_prepare(r->k, r, &err);
	if (rc == 1)
		return;
	if (rc < 0) {
		struct kube_res kr;
		sl_kube__res_fail(&kr, SL_EUNAUTHORIZED, "%s", err.msg);
		req_complete(r, &kr);
		return;
	}
	req_launch(r);
}

static void finish(struct req *r, CURLcode cc)
{
	struct sl_kube *k = r->k;
	long status = 0;
	struct kube_res kr;

	if (r->canceled) {
		req_destroy(r);
		return;
	}
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	{
		long conns = 0, ver = 0;
		curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns);
		curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &ver);
		k->metrics.connects += (uint64_t)(conns > 0 ? conns : 0);
		if (ver == CURL_HTTP_VERSION_2_0)
			k->metrics.http2++;
	}
	if (status < 0 || status >= SL_KUBE_STATUS_MAX)
		status = 0;
	k->metrics.requests[r->spec.verb][cc == CURLE_OK || r->abort_code || status ? status : 0]++;
	easy_drop(r);
	if (cc == CURLE_OK && status == 401 && !r->auth_retried && !k->freeing && auth_invalidate(k)) {
		r->auth_retried = true;
		k->metrics.retries++;
		sl_buf_reset(&r->resp);
		retry_fire(k->loop, NULL, r);
		return;
	}
	if (cc == CURLE_OK && !r->spec.no_retry && !k->freeing && r->retries < k->opts.max_retries &&
	    (status == 429 || (status >= 500 && r->retry_after_s >= 0))) {
		uint64_t ms = r->retry_after_s >= 0 ? (uint64_t)r->retry_after_s * 1000 : 1000;
		if (!r->retry_timer && sl_loop_timer_new(k->loop, retry_fire, r, &r->retry_timer) < 0)
			goto done;
		r->retries++;
		k->metrics.retries++;
		sl_buf_reset(&r->resp);
		r->state = REQ_WAIT_RETRY;
		sl_loop_timer_arm(r->retry_timer, SL_MIN(ms, (uint64_t)RETRY_MAX_MS));
		return;
	}
done:
	build_result(r, cc, status, &kr);
	req_complete(r, &kr);
}

static void req_launch(struct req *r)
{
	struct sl_kube *k = r->k;
	const struct sl_kube_config *c = k->cfg;
	char url[8192];
	struct curl_slist *h = NULL;
	CURL *e;
	struct kube_res kr;
	unsigned timeout = r->spec.timeout_ms ? r->spec.timeout_ms : k->opts.timeout_ms;

	r->state = REQ_RUNNING;
	r->retry_after_s = -1;
	r->abort_code = 0;
	r->errbuf[0] = '\0';
	snprintf(url, sizeof(url), "%s%s", k->url_base, r->path);
	e = curl_easy_init();
	if (!e)
		goto nomem;
	r->easy = e;
	h = curl_slist_append(NULL, "Accept: application/json");
	if (h && r->spec.content_type) {
		char ct[128];
		snprintf(ct, sizeof(ct), "Content-Type: %s", r->spec.content_type);
		h = curl_slist_append(h, ct);
	}
	if (h && k->bearer && *k->bearer) {
		char *auth = sl_asprintf("Authorization: Bearer %s", k->bearer);
		if (!auth) {
			curl_slist_free_all(h);
			goto nomem;
		}
		h = curl_slist_append(h, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (!h)
		goto nomem;
	r->headers = h;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* wait for a multiplexed HTTP/2 connection instead of opening more */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	if (r->spec.low_speed_s) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)r->spec.low_speed_s);
	}
	if (k->connect_to_list)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, k->connect_to_list);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->insecure_skip_tls_verify ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->insecure_skip_tls_verify ? 0L : 2L);
	if (c->ca) {
		struct curl_blob b = {.data = c->ca, .len = c->ca_len, .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (k->exec_cert && k->exec_key) {
		struct curl_blob cb = {
		    .data = k->exec_cert, .len = k->exec_cert_len, .flags = CURL_BLOB_COPY};
		struct curl_blob kb = {.data = k->exec_key, .len = k->exec_key_len, .flags = CURL_BLOB_COPY};
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
	} else if (c->cert && c->key) {
		struct curl_blob cb = {.data = c->cert, .len = c->cert_len, .flags = CURL_BLOB_NOCOPY};
		struct curl_blob kb = {.data = c->key, .len = c->key_len, .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (c->username && !k->bearer) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, c->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, c->password);
	}
	if (strcmp(r->spec.method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->spec.method);
		if (r->body || strcmp(r->spec.method, "DELETE") != 0) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
			                 (curl_off_t)(r->body ? r->spec.body_len : 0));
		}
	}
	if (curl_multi_add_handle(k->multi, e) != CURLM_OK)
		goto nomem;
	return;
nomem:
	easy_drop(r);
	sl_kube__res_fail(&kr, SL_ENOMEM, "%s %s: cannot start request", r->spec.method, r->path);
	req_complete(r, &kr);
}

int sl_kube__req_start(struct sl_kube *k, const struct req_spec *spec, struct req **ret)
{
	struct req *r;
	struct sl_error err = {0};
	int rc;

	if (k->freeing)
		return SL_ECANCELED;
	r = calloc(1, sizeof(*r));
	if (!r)
		return SL_ENOMEM;
	r->k = k;
	r->spec = *spec;
	r->path = sl_strdup(spec->path);
	if (spec->body) {
		r->body = malloc(spec->body_len + 1);
		if (r->body) {
			memcpy(r->body, spec->body, spec->body_len);
			r->body[spec->body_len] = '\0';
		}
	}
	if (!r->path || (spec->body && !r->body)) {
		free(r->path);
		free(r->body);
		free(r);
		return SL_ENOMEM;
	}
	r->spec.path = r->path;
	r->spec.body = r->body;
	sl_buf_init(&r->resp, k->opts.max_body);
	r->next = k->reqs;
	if (k->reqs)
		k->reqs->prev = r;
	k->reqs = r;
	if (spec->verb != SL_KUBE_VERB_WATCH)
		k->inflight++;
	r->state = REQ_WAIT_AUTH;
	rc = auth_prepare(k, r, &err);
	if (rc < 0) {
		r->state = REQ_RUNNING;
		req_destroy(r);
		return rc;
	}
	if (ret)
		*ret = r;
	if (rc == 0)
		req_launch(r);
	return 0;
}

/* ---- client --------------------------------------------------------------- */

int sl_kube_new(struct sl_loop *loop, struct sl_kube_config *cfg, const struct sl_kube_opts *opts,
                struct sl_kube **ret, struct sl_error *err)
{
	static bool curl_ready;
	struct sl_kube *k;
	int r;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			sl_kube_config_free(cfg);
			return sl_error_set(err, SL_EINTERNAL, "curl_global_init failed");
		}
		curl_ready = true;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		sl_kube_config_free(cfg);
		return SL_ENOMEM;
	}
	k->loop = loop;
	k->cfg = cfg;
	if (opts)
		k->opts = *opts;
	k->opts.user_agent = NULL;
	if (!k->opts.max_body)
		k->opts.max_body = 64u << 20;
	if (!k->opts.max_watch_line)
		k->opts.max_watch_line = 16u << 20;
	if (!k->opts.timeout_ms)
		k->opts.timeout_ms = 30000;
	if (!k->opts.max_retries)
		k->opts.max_retries = 5;
	snprintf(k->user_agent, sizeof(k->user_agent), "%s",
	         opts && opts->user_agent ? opts->user_agent : "sluice/" SLUICE_VERSION);
	sl_map_init(&k->gvs);
	k->url_base = sl_strdup(cfg->server);
	if (!k->url_base) {
		r = SL_ENOMEM;
		goto fail;
	}
	if (cfg->tls_server_name) {
		/* verify against tls-server-name: address the URL to that name and
		 * connect it to the real host and port */
		CURLU *u = curl_url();
		char *host = NULL, *port = NULL, *scheme = NULL;
		if (!u || curl_url_set(u, CURLUPART_URL, cfg->server, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
			r = sl_error_set(err, SL_EINVALID, "server URL cannot be parsed");
		} else {
			free(k->url_base);
			k->url_base = sl_asprintf("%s://%s:%s", scheme, cfg->tls_server_name, port);
			k->connect_to = sl_asprintf("%s:%s:%s:%s", cfg->tls_server_name, port, host, port);
			k->connect_to_list = k->connect_to ? curl_slist_append(NULL, k->connect_to) : NULL;
			r = k->url_base && k->connect_to_list ? 0 : SL_ENOMEM;
		}
		curl_free(host);
		curl_free(port);
		curl_free(scheme);
		curl_url_cleanup(u);
		if (r < 0)
			goto fail;
	}
	if (cfg->token && !(k->bearer = sl_strdup(cfg->token))) {
		r = SL_ENOMEM;
		goto fail;
	}
	r = sl_loop_timer_new(loop, curl_timer_fire, k, &k->curl_timer);
	if (r >= 0)
		r = sl_loop_timer_new(loop, soon_fire, k, &k->soon_timer);
	if (r < 0)
		goto fail;
	k->multi = curl_multi_init();
	if (!k->multi) {
		r = SL_ENOMEM;
		goto fail;
	}
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	/* HTTP/1.1 fallback: a few connections per host, never one per call */
	curl_multi_setopt(k->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
	*ret = k;
	return 0;
fail:
	sl_kube_free(k);
	return r;
}

void sl_kube_free(struct sl_kube *k)
{
	if (!k)
		return;
	k->freeing = true;
	/* every request finishes with SL_ECANCELED; callbacks cannot start new ones */
	while (k->reqs) {
		struct req *r = k->reqs;
		struct kube_res kr;
		if (r->canceled || !r->spec.done) {
			req_destroy(r);
			continue;
		}
		sl_kube__res_fail(&kr, SL_ECANCELED, "%s %s: canceled", r->spec.method, r->path);
		req_complete(r, &kr);
	}
	while (k->soon_head) {
		struct soon *s = k->soon_head;
		k->soon_head = s->next;
		if (!k->soon_head)
			k->soon_tail = NULL;
		s->fn(s->payload, true);
		free(s);
	}
	sl_kube__discovery_free(k);
	sl_loop_worker_free(k->worker);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	sl_loop_timer_free(k->curl_timer);
	sl_loop_timer_free(k->soon_timer);
	bearer_set(k, NULL);
	free(k->exec_cert);
	if (k->exec_key)
		explicit_bzero(k->exec_key, k->exec_key_len);
	free(k->exec_key);
	curl_slist_free_all(k->connect_to_list);
	free(k->connect_to);
	free(k->url_base);
	sl_kube_config_free(k->cfg);
	free(k);
}
