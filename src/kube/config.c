/* Connection settings: kubeconfig (YAML, read by the manifest module),
 * in-cluster service account, and the exec plugin description. */
#include "sluice/kube.h"
#include "sluice/base-base64.h"
#include "sluice/manifest.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#define KUBECONFIG_MAX (4u << 20)
#define PEM_MAX        (1u << 20)
#define SA_DIR         "/var/run/secrets/kubernetes.io/serviceaccount"

/* ---- YAML -> cJSON: the manifest module's reader ------------------------ */

/* Keeps the first document (a kubeconfig has one); later ones are dropped. */
static int first_doc(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload)
{
	cJSON **root = payload;

	if (!*root)
		*root = obj;
	else
		cJSON_Delete(obj);
	return 0;
}

/* Scalars resolve as kubectl reads a kubeconfig (sigs.k8s.io/yaml), aliases
 * included, within the manifest reader's limits on size, depth and alias
 * expansion. *ret is NULL for an empty text. */
static int yaml_to_json(const char *text, size_t len, cJSON **ret, struct sl_error *err)
{
	struct sl_manifest_limits lim = SL_MANIFEST_LIMITS_INIT;
	int r;

	*ret = NULL;
	lim.max_file_size = KUBECONFIG_MAX;
	r = sl_manifest_parse(text, len, &lim, first_doc, ret, err);
	if (r < 0) {
		cJSON_Delete(*ret);
		*ret = NULL;
	}
	return r;
}

/* ---- kubeconfig --------------------------------------------------------- */

void sl_kube_config_free(struct sl_kube_config *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->tls_server_name);
	free(c->ns);
	free(c->context);
	free(c->ca);
	free(c->cert);
	if (c->key)
		explicit_bzero(c->key, c->key_len);
	free(c->key);
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->token_file);
	free(c->username);
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	if (c->exec) {
		free(c->exec->command);
		for (char **a = c->exec->args; a && *a; a++)
			free(*a);
		free(c->exec->args);
		for (char **a = c->exec->env; a && *a; a++)
			free(*a);
		free(c->exec->env);
		free(c->exec->api_version);
		free(c->exec);
	}
	free(c);
}

static const char *str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

static bool flag(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsTrue(v) || (cJSON_IsString(v) && !strcmp(v->valuestring, "true"));
}

/* The entry named name in a kubeconfig list (clusters, users, contexts),
 * returning its inner object (cluster, user, context). */
static const cJSON *named(const cJSON *root, const char *list, const char *inner, const char *name)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, list))
	{
		const char *n = str(e, "name");
		if (n && !strcmp(n, name))
			return cJSON_GetObjectItemCaseSensitive(e, inner);
	}
	return NULL;
}

static char *resolve(const char *base_dir, const char *path)
{
	if (path[0] == '/' || !base_dir || !*base_dir)
		return sl_strdup(path);
	return sl_asprintf("%s/%s", base_dir, path);
}

/* Takes PEM from "<field>-data" (base64) or from the file "<field>". */
static int pem(const cJSON *o, const char *field, const char *base_dir, char **ret, size_t *ret_len,
               struct sl_error *err)
{
	char name[128];
	const char *data, *file;
	int r;

	snprintf(name, sizeof(name), "%s-data", field);
	data = str(o, name);
	file = str(o, field);
	*ret = NULL;
	*ret_len = 0;
	if (data) {
		r = sl_base64_decode(data, strlen(data), ret, ret_len);
		if (r < 0)
			return sl_error_set(err, r, "%s is not valid base64", name);
		return 0;
	}
	if (file) {
		_cleanup_free_ char *path = resolve(base_dir, file);
		struct sl_buf b;
		if (!path)
			return SL_ENOMEM;
		r = sl_file_read(path, PEM_MAX, &b, err);
		if (r < 0) {
			sl_error_prefix(err, "%s %s", field, path);
			return r;
		}
		*ret_len = b.len;
		*ret = sl_buf_steal(&b);
		if (!*ret) {
			*ret = sl_strdup("");
			return *ret ? 0 : SL_ENOMEM;
		}
	}
	return 0;
}

static int parse_exec(const cJSON *x, struct sl_kube_exec **ret, struct sl_error *err)
{
	struct sl_kube_exec *e = calloc(1, sizeof(*e));
	const cJSON *a, *args = cJSON_GetObjectItemCaseSensitive(x, "args"),
	                *env = cJSON_GetObjectItemCaseSensitive(x, "env");
	size_t n = 0;

	if (!e)
		return SL_ENOMEM;
	*ret = e; /* freed with the config on failure */
	if (!str(x, "command"))
		return sl_error_set(err, SL_EINVALID, "exec plugin without command");
	e->command = sl_strdup(str(x, "command"));
	e->api_version =
	    sl_strdup(str(x, "apiVersion") ? str(x, "apiVersion") : "client.authentication.k8s.io/v1");
	e->provide_cluster_info = flag(x, "provideClusterInfo");
	e->args = calloc((size_t)cJSON_GetArraySize(args) + 1, sizeof(char *));
	e->env = calloc((size_t)cJSON_GetArraySize(env) + 1, sizeof(char *));
	if (!e->command || !e->api_version || !e->args || !e->env)
		return SL_ENOMEM;
	cJSON_ArrayForEach(a, args)
	{
		if (!cJSON_IsString(a))
			return sl_error_set(err, SL_EINVALID, "exec args must be strings");
		if (!(e->args[n++] = sl_strdup(a->valuestring)))
			return SL_ENOMEM;
	}
	n = 0;
	cJSON_ArrayForEach(a, env)
	{
		const char *name = str(a, "name"), *value = cJSON_IsString(cJSON_GetObjectItem(a, "value"))
		                                                ? cJSON_GetObjectItem(a, "value")->valuestring
		                                                : "";
		if (!name)
			return sl_error_set(err, SL_EINVALID, "exec env entry without name");
		if (!(e->env[n++] = sl_asprintf("%s=%s", name, value)))
			return SL_ENOMEM;
	}
	return 0;
}

/* What a context names, found in the parsed kubeconfig. */
struct picked {
	const char *cname, *clname, *uname;
	const cJSON *ctx, *cluster, *user; /* user NULL: the context names none */
};

static int pick_context(const cJSON *root, const char *context, struct picked *p, struct sl_error *err)
{
	p->cname = context && *context ? context : str(root, "current-context");
	if (!p->cname)
		return sl_error_set(err, SL_EINVALID, "kubeconfig has no current-context and none was given");
	p->ctx = named(root, "contexts", "context", p->cname);
	if (!cJSON_IsObject(p->ctx))
		return sl_error_set(err, SL_ENOTFOUND, "kubeconfig has no context \"%s\"", p->cname);
	return 0;
}

static int pick_cluster(const cJSON *root, struct picked *p, struct sl_error *err)
{
	p->clname = str(p->ctx, "cluster");
	p->cluster = p->clname ? named(root, "clusters", "cluster", p->clname) : NULL;
	if (!cJSON_IsObject(p->cluster) || !str(p->cluster, "server"))
		return sl_error_set(err, SL_EINVALID,
		                    "context \"%s\": cluster \"%s\" not found or without server", p->cname,
		                    p->clname ? p->clname : "");
	return 0;
}

static int pick_user(const cJSON *root, struct picked *p, struct sl_error *err)
{
	p->uname = str(p->ctx, "user");
	if (!p->uname)
		return 0;
	p->user = named(root, "users", "user", p->uname);
	if (!p->user)
		return sl_error_set(err, SL_EINVALID, "context \"%s\": user \"%s\" not found", p->cname,
		                    p->uname);
	return 0;
}

/* The context's own fields: its name and namespace. */
static int read_context(struct sl_kube_config *c, const struct picked *p)
{
	c->ns = sl_strdup(str(p->ctx, "namespace") ? str(p->ctx, "namespace") : "default");
	c->context = sl_strdup(p->cname);
	return c->ns && c->context ? 0 : SL_ENOMEM;
}

/* server, tls-server-name, insecure-skip-tls-verify, certificate-authority. */
static int read_cluster(struct sl_kube_config *c, const struct picked *p, const char *base_dir,
                        struct sl_error *err)
{
	const cJSON *cl = p->cluster;

	c->server = sl_strdup(str(cl, "server"));
	if (!c->server)
		return SL_ENOMEM;
	while (sl_str_has_suffix(c->server, "/"))
		c->server[strlen(c->server) - 1] = '\0';
	if (!sl_str_has_prefix(c->server, "https://") && !sl_str_has_prefix(c->server, "http://"))
		return sl_error_set(err, SL_EINVALID, "cluster \"%s\": server is not an http(s) URL",
		                    p->clname);
	if (str(cl, "tls-server-name") && !(c->tls_server_name = sl_strdup(str(cl, "tls-server-name"))))
		return SL_ENOMEM;
	c->insecure_skip_tls_verify = flag(cl, "insecure-skip-tls-verify");
	return pem(cl, "certificate-authority", base_dir, &c->ca, &c->ca_len, err);
}

static int read_user_cert(struct sl_kube_config *c, const struct picked *p, const char *base_dir,
                          struct sl_error *err)
{
	int r = pem(p->user, "client-certificate", base_dir, &c->cert, &c->cert_len, err);

	if (r == 0)
		r = pem(p->user, "client-key", base_dir, &c->key, &c->key_len, err);
	if (r == 0 && !c->cert != !c->key)
		r = sl_error_set(err, SL_EINVALID,
		                 "user \"%s\": client certificate without key or key without certificate",
		                 p->uname);
	return r;
}

/* token, tokenFile, username and password. */
static int read_user_secrets(struct sl_kube_config *c, const struct picked *p, const char *base_dir)
{
	const cJSON *u = p->user;

	if (str(u, "token") && !(c->token = sl_strdup(str(u, "token"))))
		return SL_ENOMEM;
	if (str(u, "tokenFile") && !(c->token_file = resolve(base_dir, str(u, "tokenFile"))))
		return SL_ENOMEM;
	if (str(u, "username")) {
		c->username = sl_strdup(str(u, "username"));
		c->password = sl_strdup(str(u, "password") ? str(u, "password") : "");
		if (!c->username || !c->password)
			return SL_ENOMEM;
	}
	return 0;
}

/* exec (only when allowed) and auth-provider (refused). */
static int read_user_plugin(struct sl_kube_config *c, const struct picked *p, bool allow_exec,
                            struct sl_error *err)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(p->user, "exec");
	int r;

	if (cJSON_IsObject(x)) {
		if (!allow_exec)
			return sl_error_set(err, SL_EFORBIDDEN,
			                    "user \"%s\" uses an exec plugin, which runs only from a "
			                    "kubeconfig given explicitly (--kubeconfig or KUBECONFIG)",
			                    p->uname);
		r = parse_exec(x, &c->exec, err);
		if (r < 0)
			return r;
	}
	if (cJSON_GetObjectItemCaseSensitive(p->user, "auth-provider"))
		return sl_error_set(err, SL_EUNSUPPORTED,
		                    "user \"%s\": auth-provider is not supported, use exec", p->uname);
	return 0;
}

static int read_user(struct sl_kube_config *c, const struct picked *p, const char *base_dir, bool allow_exec,
                     struct sl_error *err)
{
	int r = read_user_cert(c, p, base_dir, err);

	if (r == 0)
		r = read_user_secrets(c, p, base_dir);
	if (r == 0)
		r = read_user_plugin(c, p, allow_exec, err);
	return r;
}

int sl_kube_config_parse(const char *text, size_t len, const char *context, const char *base_dir,
                         bool allow_exec, struct sl_kube_config **ret, struct sl_error *err)
{
	cJSON *root = NULL;
	struct picked p = {0};
	struct sl_kube_config *c = NULL;
	int r;

	r = yaml_to_json(text, len, &root, err);
	if (r < 0) {
		sl_error_prefix(err, "kubeconfig");
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		r = sl_error_set(err, SL_EINVALID, "kubeconfig is not a mapping");
		goto out;
	}
	r = pick_context(root, context, &p, err);
	if (r == 0)
		r = pick_cluster(root, &p, err);
	if (r == 0)
		r = pick_user(root, &p, err);
	if (r < 0)
		goto out;
	c = calloc(1, sizeof(*c));
	if (!c) {
		r = SL_ENOMEM;
		goto out;
	}
	r = read_context(c, &p);
	if (r == 0)
		r = read_cluster(c, &p, base_dir, err);
	if (r == 0 && p.user)
		r = read_user(c, &p, base_dir, allow_exec, err);
	if (r == 0)
		*ret = TAKE_PTR(c);
out:
	sl_kube_config_free(c);
	cJSON_Delete(root);
	return r;
}

int sl_kube_config_in_cluster(const char *dir, struct sl_kube_config **ret, struct sl_error *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	struct sl_kube_config *c = NULL;
	struct sl_buf b;
	_cleanup_free_ char *path = NULL;
	int r;

	if (!dir)
		dir = SA_DIR;
	if (!host || !*host || !port || !*port)
		return sl_error_set(err, SL_ENOTFOUND,
		                    "KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT not set");
	c = calloc(1, sizeof(*c));
	if (!c)
		return SL_ENOMEM;
	c->in_cluster = true;
	/* an IPv6 address needs brackets in a URL */
	c->server = strchr(host, ':') ? sl_asprintf("https://[%s]:%s", host, port)
	                              : sl_asprintf("https://%s:%s", host, port);
	c->token_file = sl_asprintf("%s/token", dir);
	path = sl_asprintf("%s/ca.crt", dir);
	if (!c->server || !c->token_file || !path) {
		r = SL_ENOMEM;
		goto out;
	}
	r = sl_file_read(path, PEM_MAX, &b, err);
	if (r < 0) {
		sl_error_prefix(err, "service account CA %s", path);
		goto out;
	}
	c->ca_len = b.len;
	c->ca = sl_buf_steal(&b);
	free(path);
	path = sl_asprintf("%s/namespace", dir);
	if (!path) {
		r = SL_ENOMEM;
		goto out;
	}
	if (sl_file_read(path, 256, &b, NULL) == 0) {
		size_t n = strcspn(b.data ? b.data : "", "\r\n");
		c->ns = sl_strndup(b.data ? b.data : "", n);
		sl_buf_free(&b);
	}
	if (!c->ns || !*c->ns) {
		free(c->ns);
		c->ns = sl_strdup("default");
	}
	if (!c->ns) {
		r = SL_ENOMEM;
		goto out;
	}
	if (access(c->token_file, R_OK) != 0) {
		r = sl_error_set(err, SL_ENOTFOUND, "service account token %s: %s", c->token_file,
		                 strerror(errno));
		goto out;
	}
	*ret = TAKE_PTR(c);
	r = 0;
out:
	sl_kube_config_free(c);
	return r;
}

int sl_kube_config_load(const struct sl_kube_config_opts *opts, struct sl_kube_config **ret,
                        struct sl_error *err)
{
	const char *path = opts ? opts->kubeconfig : NULL, *env = getenv("KUBECONFIG"), *home;
	_cleanup_free_ char *p = NULL, *dir = NULL;
	bool allow_exec = true;
	struct sl_buf b;
	int r;

	if (!path || !*path) {
		const char *h = getenv("KUBERNETES_SERVICE_HOST");
		if (h && *h)
			return sl_kube_config_in_cluster(NULL, ret, err);
		if (env && *env) {
			/* the first entry of a colon-separated list; merging is not supported */
			p = sl_strndup(env, strcspn(env, ":"));
		} else {
			home = getenv("HOME");
			if (!home || !*home)
				return sl_error_set(err, SL_ENOTFOUND,
				                    "no kubeconfig: set --kubeconfig or KUBECONFIG");
			p = sl_asprintf("%s/.kube/config", home);
			allow_exec = opts && opts->allow_exec_from_default;
		}
	} else
		p = sl_strdup(path);
	if (!p)
		return SL_ENOMEM;
	r = sl_file_read(p, KUBECONFIG_MAX, &b, err);
	if (r < 0) {
		sl_error_prefix(err, "kubeconfig %s", p);
		return r;
	}
	dir = sl_strdup(p);
	if (!dir) {
		sl_buf_free(&b);
		return SL_ENOMEM;
	}
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	else
		strcpy(dir, ".");
	r = sl_kube_config_parse(b.data ? b.data : "", b.len, opts ? opts->context : NULL, dir, allow_exec,
	                         ret, err);
	if (r < 0)
		sl_error_prefix(err, "%s", p);
	sl_buf_free(&b);
	return r;
}
