/* The client's credentials: what a kubeconfig user names (client certificate,
 * static token, token file, basic auth), the exec credential plugin and the
 * in-cluster service-account token (a token file the kubelet rotates). The
 * transport asks what to send now and reports a 401; nothing here speaks HTTP. */
#include "internal.h"
#include "sluice/base-base64.h"
#include "sluice/loop.h"
#include "sluice/manifest-json.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN_FILE_MAX  (64u << 10)
#define TOKEN_REREAD_MS 60000
#define EXEC_OUT_MAX    (1u << 20)
#define EXEC_TIMEOUT_MS 60000
/* an exec token this close to its expiry is fetched again before use */
#define EXEC_EXPIRY_SLACK_S 10

extern char **environ;

struct exec_job;

struct kube_creds {
	struct sl_loop *loop;
	const struct sl_kube_config *cfg; /* the client's: outlives the credentials */
	kube_creds_ready_fn ready;
	void *payload;

	char *bearer;                  /* current bearer token or NULL */
	uint64_t bearer_read_ms;       /* token file: when it was read */
	int64_t bearer_expiry;         /* exec: wall-clock expiry, 0 none */
	struct sl_loop_worker *worker; /* runs the exec plugin; made on first use */
	struct exec_job *job;          /* the plugin run under way, or NULL */
	char *exec_cert, *exec_key;    /* exec: client certificate and key (PEM) */
	size_t exec_cert_len, exec_key_len;
};

static void bearer_set(struct kube_creds *c, char *tok)
{
	if (c->bearer) {
		explicit_bzero(c->bearer, strlen(c->bearer));
		free(c->bearer);
	}
	c->bearer = tok;
}

/* ---- token file (kubeconfig tokenFile, in-cluster service account) ------- */

static int token_file_read(struct kube_creds *c, struct sl_error *err)
{
	struct sl_buf b;
	size_t n;
	char *tok;
	int r = sl_file_read(c->cfg->token_file, TOKEN_FILE_MAX, &b, err);

	if (r < 0)
		return r;
	n = b.data ? strcspn(b.data, "\r\n") : 0;
	tok = sl_strndup(b.data ? b.data : "", n);
	if (b.data)
		explicit_bzero(b.data, b.len);
	sl_buf_free(&b);
	if (!tok)
		return SL_ENOMEM;
	bearer_set(c, tok);
	c->bearer_read_ms = sl_now_ms();
	return 0;
}

static int token_file_prepare(struct kube_creds *c, struct sl_error *err)
{
	int r;

	if (c->bearer && sl_now_ms() - c->bearer_read_ms < TOKEN_REREAD_MS)
		return 0;
	r = token_file_read(c, err);
	/* a file that cannot be read now leaves the token read before in use */
	if (r < 0 && !c->bearer) {
		sl_error_prefix(err, "token file");
		return SL_EUNAUTHORIZED;
	}
	return 0;
}

/* ---- exec credential plugin ---------------------------------------------- */

struct exec_job {
	struct kube_creds *creds;
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
	if (!j)
		return;
	strv_free(j->argv);
	strv_free(j->envp);
	if (j->out.data)
		explicit_bzero(j->out.data, j->out.len);
	sl_buf_free(&j->out);
	free(j);
}

/* Starts the plugin with its stdin on /dev/null and its stdout on outfd.
 * posix_spawnp, not fork: this process has threads, and nothing may run in
 * a forked child of a threaded process but async-signal-safe calls. Returns
 * 0 or an errno (the plugin was not started). */
static int exec_spawn(struct exec_job *j, int outfd, pid_t *ret)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	int e;

	e = posix_spawn_file_actions_init(&fa);
	if (e)
		return e;
	e = posix_spawnattr_init(&attr);
	if (e) {
		posix_spawn_file_actions_destroy(&fa);
		return e;
	}
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	if (!(e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) &&
	    !(e = posix_spawn_file_actions_adddup2(&fa, outfd, 1)) &&
	    !(e = posix_spawnattr_setsigmask(&attr, &none)) &&
	    !(e = posix_spawnattr_setsigdefault(&attr, &dfl)) &&
	    !(e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)))
		e = posix_spawnp(ret, j->argv[0], &fa, &attr, j->argv, j->envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return e;
}

/* Runs on the worker thread: spawn the plugin, read its stdout (bounded,
 * with a deadline). No loop state is touched here. */
static void exec_work(void *payload)
{
	struct exec_job *j = payload;
	int pfd[2], st = 0, e;
	pid_t pid;
	uint64_t deadline = sl_now_ms() + EXEC_TIMEOUT_MS;
	char buf[4096];

	j->status = -1;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(j->err, sizeof(j->err), "pipe: %s", strerror(errno));
		return;
	}
	e = exec_spawn(j, pfd[1], &pid);
	if (e) {
		snprintf(j->err, sizeof(j->err), "cannot run: %s", strerror(e));
		close(pfd[0]);
		close(pfd[1]);
		return;
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

/* Takes the certificate and key an ExecCredential carried. */
static int exec_cert_set(struct kube_creds *c, const char *cert, const char *key)
{
	char *nc = sl_strdup(cert), *nk = sl_strdup(key);

	if (!nc || !nk) {
		free(nc);
		free(nk);
		return SL_ENOMEM;
	}
	free(c->exec_cert);
	if (c->exec_key)
		explicit_bzero(c->exec_key, c->exec_key_len);
	free(c->exec_key);
	c->exec_cert = nc;
	c->exec_key = nk;
	c->exec_cert_len = strlen(nc);
	c->exec_key_len = strlen(nk);
	return 0;
}

/* Makes the ExecCredential a plugin printed current. 0, or a code with msg
 * set (never the token). */
static int exec_install(struct kube_creds *c, const char *out, size_t len, char *msg, size_t msgsz)
{
	const char *cmd = c->cfg->exec->command;
	cJSON *root = NULL, *status, *tok, *exp, *cert, *key;
	char *ntok = NULL;
	int r = SL_EUNAUTHORIZED;

	if (sl_manifest_json_parse(out, len, &root, NULL) < 0)
		root = NULL;
	status = cJSON_GetObjectItemCaseSensitive(root, "status");
	tok = cJSON_GetObjectItemCaseSensitive(status, "token");
	exp = cJSON_GetObjectItemCaseSensitive(status, "expirationTimestamp");
	cert = cJSON_GetObjectItemCaseSensitive(status, "clientCertificateData");
	key = cJSON_GetObjectItemCaseSensitive(status, "clientKeyData");
	if (!cJSON_IsObject(status) ||
	    !(cJSON_IsString(tok) || (cJSON_IsString(cert) && cJSON_IsString(key)))) {
		snprintf(msg, msgsz,
		         "exec plugin %s: output is not an ExecCredential with a token or certificate", cmd);
		goto out;
	}
	c->bearer_expiry = 0;
	if (cJSON_IsString(exp) && sl_time_parse_rfc3339(exp->valuestring, &c->bearer_expiry) < 0) {
		snprintf(msg, msgsz, "exec plugin %s: bad expirationTimestamp", cmd);
		goto out;
	}
	if ((cJSON_IsString(tok) && !(ntok = sl_strdup(tok->valuestring))) ||
	    (cJSON_IsString(cert) && exec_cert_set(c, cert->valuestring, key->valuestring) < 0)) {
		r = SL_ENOMEM;
		snprintf(msg, msgsz, "exec plugin %s: out of memory", cmd);
		goto out;
	}
	bearer_set(c, TAKE_PTR(ntok));
	r = 0;
out:
	if (ntok) {
		explicit_bzero(ntok, strlen(ntok));
		free(ntok);
	}
	/* the token also lives in the parsed tree: wipe it */
	if (cJSON_IsString(tok))
		explicit_bzero(tok->valuestring, strlen(tok->valuestring));
	cJSON_Delete(root);
	return r;
}

static void exec_done(struct sl_loop *loop, void *payload)
{
	struct exec_job *j = payload;
	struct kube_creds *c = j->creds;
	char msg[512] = "";
	int code = SL_EUNAUTHORIZED;

	c->job = NULL;
	if (j->status != 0)
		snprintf(msg, sizeof(msg), "exec plugin %s: %s", c->cfg->exec->command, j->err);
	else
		code = exec_install(c, j->out.data ? j->out.data : "", j->out.len, msg, sizeof(msg));
	exec_job_free(j);
	c->ready(code, msg, c->payload);
}

/* spec.cluster of KUBERNETES_EXEC_INFO (provideClusterInfo). */
static int exec_info_cluster(const struct sl_kube_config *cfg, cJSON *spec)
{
	cJSON *cl = cJSON_AddObjectToObject(spec, "cluster");
	_cleanup_free_ char *ca = NULL;

	if (!cl || !cJSON_AddStringToObject(cl, "server", cfg->server))
		return SL_ENOMEM;
	if (cfg->tls_server_name && !cJSON_AddStringToObject(cl, "tls-server-name", cfg->tls_server_name))
		return SL_ENOMEM;
	if (!cJSON_AddBoolToObject(cl, "insecure-skip-tls-verify", cfg->insecure_skip_tls_verify))
		return SL_ENOMEM;
	if (cfg->ca) {
		ca = sl_base64_encode(cfg->ca, cfg->ca_len);
		if (!ca || !cJSON_AddStringToObject(cl, "certificate-authority-data", ca))
			return SL_ENOMEM;
	}
	return 0;
}

/* The ExecCredential handed to the plugin in KUBERNETES_EXEC_INFO, or NULL
 * when out of memory. */
static char *exec_info(const struct sl_kube_config *cfg)
{
	cJSON *o = cJSON_CreateObject(), *spec;
	char *s = NULL;

	if (!o || !cJSON_AddStringToObject(o, "apiVersion", cfg->exec->api_version) ||
	    !cJSON_AddStringToObject(o, "kind", "ExecCredential") ||
	    !(spec = cJSON_AddObjectToObject(o, "spec")) ||
	    !cJSON_AddBoolToObject(spec, "interactive", false))
		goto out;
	if (cfg->exec->provide_cluster_info && exec_info_cluster(cfg, spec) < 0)
		goto out;
	s = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	return s;
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* argv and envp of the plugin: our environment without a stale
 * KUBERNETES_EXEC_INFO, then the kubeconfig's env, then the exec info. */
static int exec_job_fill(struct exec_job *j, const struct sl_kube_config *cfg)
{
	const struct sl_kube_exec *x = cfg->exec;
	size_t na = strv_len(x->args), ne = strv_len(x->env), nenv = strv_len(environ), i = 0;
	_cleanup_free_ char *info = exec_info(cfg);

	j->argv = calloc(na + 2, sizeof(char *));
	j->envp = calloc(nenv + ne + 2, sizeof(char *));
	if (!info || !j->argv || !j->envp)
		return SL_ENOMEM;
	if (!(j->argv[0] = sl_strdup(x->command)))
		return SL_ENOMEM;
	for (size_t a = 0; a < na; a++)
		if (!(j->argv[a + 1] = sl_strdup(x->args[a])))
			return SL_ENOMEM;
	for (size_t e = 0; e < nenv; e++)
		if (!sl_str_has_prefix(environ[e], "KUBERNETES_EXEC_INFO="))
			if (!(j->envp[i++] = sl_strdup(environ[e])))
				return SL_ENOMEM;
	for (size_t e = 0; e < ne; e++)
		if (!(j->envp[i++] = sl_strdup(x->env[e])))
			return SL_ENOMEM;
	if (!(j->envp[i++] = sl_asprintf("KUBERNETES_EXEC_INFO=%s", info)))
		return SL_ENOMEM;
	return 0;
}

static int exec_start(struct kube_creds *c)
{
	struct exec_job *j = calloc(1, sizeof(*j));
	int r;

	if (!j)
		return SL_ENOMEM;
	j->creds = c;
	sl_buf_init(&j->out, EXEC_OUT_MAX);
	r = exec_job_fill(j, c->cfg);
	if (r >= 0 && !c->worker)
		r = sl_loop_worker_new(c->loop, &c->worker);
	if (r >= 0)
		r = sl_loop_worker_submit(c->worker, exec_work, exec_done, j);
	if (r < 0) {
		exec_job_free(j);
		return r;
	}
	c->job = j;
	return 0;
}

static int exec_prepare(struct kube_creds *c, struct sl_error *err)
{
	int r;

	if ((c->bearer || c->exec_cert) &&
	    (!c->bearer_expiry || sl_wall_s() < c->bearer_expiry - EXEC_EXPIRY_SLACK_S))
		return 0;
	/* one run serves every request waiting meanwhile */
	if (!c->job) {
		r = exec_start(c);
		if (r < 0)
			return sl_error_set(err, SL_EUNAUTHORIZED, "exec plugin %s: cannot start: %s",
			                    c->cfg->exec->command, sl_strerror(r));
	}
	return 1;
}

/* ---- the interface ------------------------------------------------------- */

int sl_kube__creds_new(struct sl_loop *loop, const struct sl_kube_config *cfg, kube_creds_ready_fn ready,
                       void *payload, struct kube_creds **ret)
{
	struct kube_creds *c = calloc(1, sizeof(*c));

	if (!c)
		return SL_ENOMEM;
	c->loop = loop;
	c->cfg = cfg;
	c->ready = ready;
	c->payload = payload;
	if (cfg->token && !(c->bearer = sl_strdup(cfg->token))) {
		free(c);
		return SL_ENOMEM;
	}
	*ret = c;
	return 0;
}

void sl_kube__creds_free(struct kube_creds *c)
{
	if (!c)
		return;
	/* joins the worker (a plugin still running is bounded by its deadline);
	 * the done of a job it drops never runs, so its job is freed here */
	sl_loop_worker_free(c->worker);
	exec_job_free(c->job);
	bearer_set(c, NULL);
	free(c->exec_cert);
	if (c->exec_key)
		explicit_bzero(c->exec_key, c->exec_key_len);
	free(c->exec_key);
	free(c);
}

int sl_kube__creds_prepare(struct kube_creds *c, struct sl_error *err)
{
	if (c->cfg->exec)
		return exec_prepare(c, err);
	if (c->cfg->token_file)
		return token_file_prepare(c, err);
	return 0;
}

void sl_kube__creds_get(const struct kube_creds *c, struct kube_auth *ret)
{
	const struct sl_kube_config *cfg = c->cfg;

	memset(ret, 0, sizeof(*ret));
	ret->bearer = c->bearer && *c->bearer ? c->bearer : NULL;
	if (c->exec_cert && c->exec_key) {
		ret->cert = c->exec_cert;
		ret->cert_len = c->exec_cert_len;
		ret->key = c->exec_key;
		ret->key_len = c->exec_key_len;
	} else if (cfg->cert && cfg->key) {
		ret->cert = cfg->cert;
		ret->cert_len = cfg->cert_len;
		ret->key = cfg->key;
		ret->key_len = cfg->key_len;
		ret->cert_lasting = true;
	}
	/* basic auth only while no token is held at all (an empty one included) */
	if (cfg->username && !c->bearer) {
		ret->username = cfg->username;
		ret->password = cfg->password;
	}
}

bool sl_kube__creds_unauthorized(struct kube_creds *c)
{
	if (c->cfg->exec) {
		bearer_set(c, NULL);
		c->bearer_expiry = 0;
		return true;
	}
	if (c->cfg->token_file) {
		c->bearer_read_ms = 0;
		bearer_set(c, NULL);
		return true;
	}
	return false;
}
