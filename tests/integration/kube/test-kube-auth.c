/* Credentials and TLS against the real API server: token file rotation, an
 * exec credential plugin (a shell script), client certificates, CA
 * verification and tls-server-name. Tokens never appear in errors. */
#include "ktest.h"

#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/kt-auth-XXXXXX";
static char server[256], pki[512], admin_token[256];

static void write_file(const char *path, const char *text, int mode)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

/* Writes DIR/name with the test cluster and the given user lines. */
static const char *kubeconfig(const char *name, const char *cluster_extra, const char *user)
{
	static char path[512];
	char text[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(text, sizeof(text),
	         "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
	         "clusters:\n- name: c\n  cluster:\n    server: %s\n%s\n"
	         "users:\n- name: u\n  user:\n%s\n"
	         "contexts:\n- name: t\n  context: {cluster: c, user: u}\n",
	         server, cluster_extra, user);
	write_file(path, text, 0600);
	return path;
}

static int get_default_ns(struct sl_kube *k, struct kt_res *r)
{
	struct sl_kube_ref ref = {.api_version = "v1", .resource = "namespaces", .name = "default"};
	kt_res_clear(r);
	sl_kube_get(k, &ref, NULL, kt_cb, r);
	kt_wait(r, 30000);
	return r->code;
}

static void token_file_rotation(void)
{
	char tok[512], cadir[600], user[700];
	struct kt_res r = {0};
	struct sl_kube *k;
	uint64_t retries;

	snprintf(tok, sizeof(tok), "%s/token", dir);
	snprintf(cadir, sizeof(cadir), "    certificate-authority: %s/ca.crt", pki);
	snprintf(user, sizeof(user), "    tokenFile: %s", tok);
	write_file(tok, "not-a-valid-token-123\n", 0600);
	k = kt_client(kubeconfig("kc-tokenfile", cadir, user));
	CHECK(get_default_ns(k, &r) == SL_EUNAUTHORIZED && r.status == 401, "bad token: %d %ld", r.code,
	      r.status);
	CHECK(!strstr(r.err, "not-a-valid-token"), "token not in the error: %s", r.err);
	printf("# unauthorized: %s\n", r.err);
	/* rotated: the next request is refused once, re-reads the file, and passes */
	snprintf(user, sizeof(user), "%s\n", admin_token);
	write_file(tok, user, 0600);
	retries = sl_kube_get_metrics(k)->retries;
	CHECK(get_default_ns(k, &r) == 0, "rotated token used: %s", r.err);
	CHECK(sl_kube_get_metrics(k)->retries > retries, "after a 401 and a re-read");
	/* within the minute the token read last stays in use */
	write_file(tok, "another-bad-token\n", 0600);
	CHECK(get_default_ns(k, &r) == 0, "cached token: %s", r.err);
	kt_res_clear(&r);
	sl_kube_free(k);
}

static void exec_plugin(void)
{
	char script[512], text[2048], cadir[600], user[1200], count[512], info[512], expiry[32];
	struct kt_res r = {0};
	struct sl_kube *k;
	char *s;
	struct sl_buf b;

	snprintf(script, sizeof(script), "%s/plugin.sh", dir);
	snprintf(count, sizeof(count), "%s/plugin.count", dir);
	snprintf(info, sizeof(info), "%s/plugin.info", dir);
	sl_time_rfc3339(sl_wall_s() + 3600, expiry);
	/* the first run hands out a token the server refuses, later ones the
	 * admin token: the client must fetch again on 401 */
	CHECK(sl_snprintf_ok(
	          text, sizeof(text),
	          "#!/bin/sh\n"
	          "n=$(cat '%s' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '%s'\n"
	          "printf '%%s' \"$KUBERNETES_EXEC_INFO\" > '%s'\n"
	          "[ \"$PLUGIN_MODE\" = test ] || exit 3\n"
	          "tok=%s; [ $n -eq 1 ] && tok=stale-token\n"
	          "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
	          "\"status\":{\"token\":\"%%s\",\"expirationTimestamp\":\"%s\"}}' \"$tok\"\n",
	          count, count, info, admin_token, expiry),
	      "plugin script fits");
	write_file(script, text, 0700);
	snprintf(cadir, sizeof(cadir), "    certificate-authority: %s/ca.crt", pki);
	snprintf(user, sizeof(user),
	         "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: %s\n"
	         "      env: [{name: PLUGIN_MODE, value: test}]\n      provideClusterInfo: true",
	         script);
	k = kt_client(kubeconfig("kc-exec", cadir, user));
	CHECK(get_default_ns(k, &r) == 0, "exec token: %s", r.err);
	for (int i = 0; i < 3; i++)
		CHECK(get_default_ns(k, &r) == 0, "cached exec token: %s", r.err);
	CHECK(sl_file_read(count, 64, &b, NULL) == 0 && atoi(b.data) == 2,
	      "plugin ran twice (stale, then fresh): %s", b.data);
	sl_buf_free(&b);
	CHECK(sl_file_read(info, 65536, &b, NULL) == 0, "exec info written");
	s = b.data ? b.data : "";
	CHECK(strstr(s, "\"kind\":\"ExecCredential\"") && strstr(s, "\"interactive\":false") &&
	          strstr(s, server),
	      "KUBERNETES_EXEC_INFO with cluster info: %s", s);
	sl_buf_free(&b);
	kt_res_clear(&r);
	sl_kube_free(k);

	/* a token about to expire is fetched again for every request */
	snprintf(text, sizeof(text),
	         "#!/bin/sh\nn=$(cat '%s'); echo $((n+1)) > '%s'\n"
	         "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
	         "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%%s\"}}' "
	         "\"$(date -u -d @$(($(date +%%s)+5)) +%%Y-%%m-%%dT%%H:%%M:%%SZ)\"\n",
	         count, count, admin_token);
	write_file(script, text, 0700);
	write_file(count, "0\n", 0600);
	k = kt_client(kubeconfig("kc-exec-short", cadir, user));
	CHECK(get_default_ns(k, &r) == 0 && get_default_ns(k, &r) == 0, "short-lived token: %s", r.err);
	CHECK(sl_file_read(count, 64, &b, NULL) == 0 && atoi(b.data) == 2, "fetched for each request: %s",
	      b.data);
	sl_buf_free(&b);
	kt_res_clear(&r);
	sl_kube_free(k);

	/* a failing plugin: a readable error, no hang */
	write_file(script, "#!/bin/sh\nexit 3\n", 0700);
	snprintf(user, sizeof(user),
	         "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: %s", script);
	k = kt_client(kubeconfig("kc-exec-bad", cadir, user));
	CHECK(get_default_ns(k, &r) == SL_EUNAUTHORIZED && strstr(r.err, "exited with status 3"),
	      "failing plugin: %s", r.err);
	kt_res_clear(&r);
	sl_kube_free(k);
}

static void client_certificate(void)
{
	char cadir[600], user[1200];
	struct kt_res r = {0};
	struct sl_kube *k;

	snprintf(cadir, sizeof(cadir), "    certificate-authority: %s/ca.crt", pki);
	snprintf(user, sizeof(user), "    client-certificate: %s/admin.crt\n    client-key: %s/admin.key",
	         pki, pki);
	k = kt_client(kubeconfig("kc-cert", cadir, user));
	CHECK(get_default_ns(k, &r) == 0, "client certificate: %s", r.err);
	kt_res_clear(&r);
	sl_kube_free(k);
}

static void in_cluster(void)
{
	char sa[600], path[700], cmd[1400], port[16];
	const char *colon = strrchr(server, ':');
	struct sl_kube_config *cfg = NULL;
	struct sl_kube *k;
	struct sl_error err = {0};
	struct kt_res r = {0};

	/* a service-account directory as the kubelet mounts it */
	snprintf(sa, sizeof(sa), "%s/sa", dir);
	mkdir(sa, 0700);
	snprintf(path, sizeof(path), "%s/token", sa);
	write_file(path, admin_token, 0600);
	snprintf(cmd, sizeof(cmd), "cp '%s/ca.crt' '%s/ca.crt'", pki, sa);
	CHECK(system(cmd) == 0, "ca");
	snprintf(path, sizeof(path), "%s/namespace", sa);
	write_file(path, "kube-system\n", 0600);
	snprintf(port, sizeof(port), "%s", colon ? colon + 1 : "443");
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	CHECK(sl_kube_config_in_cluster(sa, &cfg, &err) == 0, "in-cluster config: %s", err.msg);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	if (!cfg)
		return;
	CHECK(!strcmp(cfg->ns, "kube-system"), "namespace file read");
	CHECK(sl_kube_new(kt_loop, cfg, NULL, &k, &err) == 0, "client: %s", err.msg);
	CHECK(get_default_ns(k, &r) == 0, "service-account token and CA used: %s", r.err);
	kt_res_clear(&r);
	sl_kube_free(k);
}

static void tls_verification(void)
{
	char cadir[700], user[400], cmd[1024];
	struct kt_res r = {0};
	struct sl_kube *k;
	char port[16] = "";
	const char *colon = strrchr(server, ':');

	snprintf(port, sizeof(port), "%s", colon ? colon + 1 : "443");
	snprintf(user, sizeof(user), "    token: %s", admin_token);
	/* another CA: refused */
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other -keyout '%s/o.key' -out "
	         "'%s/o.crt' "
	         ">/dev/null 2>&1",
	         dir, dir);
	CHECK(system(cmd) == 0, "openssl");
	snprintf(cadir, sizeof(cadir), "    certificate-authority: %s/o.crt", dir);
	k = kt_client(kubeconfig("kc-wrongca", cadir, user));
	CHECK(get_default_ns(k, &r) == SL_EIO && r.status == 0, "wrong CA refused: %d %s", r.code, r.err);
	CHECK(!strstr(r.err, admin_token), "no token in error");
	printf("# wrong CA: %s\n", r.err);
	kt_res_clear(&r);
	sl_kube_free(k);
	/* tls-server-name: a name in the certificate passes, another fails */
	snprintf(cadir, sizeof(cadir),
	         "    certificate-authority: %s/ca.crt\n    tls-server-name: kubernetes.default", pki);
	k = kt_client(kubeconfig("kc-sni", cadir, user));
	CHECK(get_default_ns(k, &r) == 0, "tls-server-name in SAN: %s", r.err);
	kt_res_clear(&r);
	sl_kube_free(k);
	snprintf(cadir, sizeof(cadir),
	         "    certificate-authority: %s/ca.crt\n    tls-server-name: evil.example", pki);
	k = kt_client(kubeconfig("kc-sni-bad", cadir, user));
	CHECK(get_default_ns(k, &r) == SL_EIO, "tls-server-name not in SAN refused: %d %s", r.code, r.err);
	kt_res_clear(&r);
	sl_kube_free(k);
	/* insecure-skip-tls-verify only because the kubeconfig says so */
	k = kt_client(kubeconfig("kc-insecure", "    insecure-skip-tls-verify: true", user));
	CHECK(get_default_ns(k, &r) == 0, "insecure when asked: %s", r.err);
	kt_res_clear(&r);
	sl_kube_free(k);
}

int main(void)
{
	struct sl_buf b;
	char *kc, *p;
	const char *t;

	kt_require_cluster();
	if (sl_loop_new(&kt_loop) < 0 || !mkdtemp(dir))
		return 1;
	/* the admin kubeconfig of tests/cluster/up: token, server, pki beside it */
	if (sl_file_read(it_kubeconfig(), 65536, &b, NULL) < 0 || !(t = strstr(b.data, "token: ")) ||
	    !strstr(b.data, "server: ")) {
		printf("1..0 # SKIP needs a tests/cluster kubeconfig with a token\n");
		return 0;
	}
	snprintf(admin_token, sizeof(admin_token), "%.*s", (int)strcspn(t + 7, "\r\n \""), t + 7);
	t = strstr(b.data, "server: ");
	snprintf(server, sizeof(server), "%.*s", (int)strcspn(t + 8, "\r\n \""), t + 8);
	sl_buf_free(&b);
	kc = strdup(it_kubeconfig());
	p = dirname(kc);
	snprintf(pki, sizeof(pki), "%s/pki", p);
	free(kc);
	if (access(pki, R_OK) != 0) {
		printf("1..0 # SKIP needs the pki directory of tests/cluster/up\n");
		return 0;
	}
	kt_plan(5);
	kt_run(1, "token file rotation", token_file_rotation);
	kt_run(2, "exec credential plugin", exec_plugin);
	kt_run(3, "client certificate", client_certificate);
	kt_run(4, "TLS verification and tls-server-name", tls_verification);
	kt_run(5, "in-cluster configuration", in_cluster);
	snprintf(pki, sizeof(pki), "rm -rf '%s'", dir);
	if (system(pki) != 0)
		printf("# could not remove %s\n", dir);
	sl_loop_free(kt_loop);
	return kt_exit();
}
