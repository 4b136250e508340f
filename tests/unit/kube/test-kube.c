/* Unit tests of src/kube without a cluster: kubeconfig parsing, in-cluster
 * settings, watch-line framing and event decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/kube-watch.h"
#include "sluice/kube.h"
#include "sluice/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char kubeconfig[] = "apiVersion: v1\n"
                                 "kind: Config\n"
                                 "current-context: dev\n"
                                 "clusters:\n"
                                 "- name: c1\n"
                                 "  cluster:\n"
                                 "    server: https://10.1.2.3:6443/\n"
                                 "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
                                 "    tls-server-name: api.internal\n"
                                 "- name: c2\n"
                                 "  cluster:\n"
                                 "    server: \"https://[fd00::1]:443\"\n"
                                 "    insecure-skip-tls-verify: true\n"
                                 "users:\n"
                                 "- name: u1\n"
                                 "  user:\n"
                                 "    token: s3cr3t # a comment\n"
                                 "- name: u2\n"
                                 "  user:\n"
                                 "    tokenFile: tok/file\n"
                                 "    username: bob\n"
                                 "    password: 'pw'\n"
                                 "- name: u3\n"
                                 "  user:\n"
                                 "    exec:\n"
                                 "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                                 "      command: /bin/plugin\n"
                                 "      args: [get-token, --x]\n"
                                 "      env:\n"
                                 "      - {name: A, value: b}\n"
                                 "      provideClusterInfo: true\n"
                                 "contexts:\n"
                                 "- name: dev\n"
                                 "  context: {cluster: c1, user: u1, namespace: team-a}\n"
                                 "- name: other\n"
                                 "  context:\n"
                                 "    cluster: c2\n"
                                 "    user: u2\n"
                                 "- name: plug\n"
                                 "  context: {cluster: c1, user: u3}\n"
                                 "- name: broken\n"
                                 "  context: {cluster: nope, user: u1}\n";

static void kubeconfig_current_context(void **state)
{
	struct sl_kube_config *c = NULL;
	struct sl_error err = {0};

	assert_int_equal(
	    sl_kube_config_parse(kubeconfig, strlen(kubeconfig), NULL, "/etc/k", false, &c, &err), 0);
	assert_string_equal(c->server, "https://10.1.2.3:6443");
	assert_string_equal(c->ns, "team-a");
	assert_string_equal(c->context, "dev");
	assert_string_equal(c->tls_server_name, "api.internal");
	assert_string_equal(c->token, "s3cr3t");
	assert_false(c->insecure_skip_tls_verify);
	assert_int_equal(c->ca_len, strlen("-----BEGIN CERTIFICATE-----\n"));
	assert_memory_equal(c->ca, "-----BEGIN CERTIFICATE-----\n", c->ca_len);
	assert_null(c->exec);
	sl_kube_config_free(c);
}

static void kubeconfig_other_context(void **state)
{
	struct sl_kube_config *c = NULL;
	struct sl_error err = {0};

	assert_int_equal(
	    sl_kube_config_parse(kubeconfig, strlen(kubeconfig), "other", "/etc/k", false, &c, &err), 0);
	assert_string_equal(c->server, "https://[fd00::1]:443");
	assert_true(c->insecure_skip_tls_verify);
	assert_string_equal(c->ns, "default");
	assert_string_equal(c->token_file, "/etc/k/tok/file");
	assert_string_equal(c->username, "bob");
	assert_string_equal(c->password, "pw");
	assert_null(c->token);
	assert_null(c->ca);
	sl_kube_config_free(c);
}

static void kubeconfig_exec_needs_permission(void **state)
{
	struct sl_kube_config *c = NULL;
	struct sl_error err = {0};

	assert_int_equal(sl_kube_config_parse(kubeconfig, strlen(kubeconfig), "plug", "/", false, &c, &err),
	                 SL_EFORBIDDEN);
	assert_non_null(strstr(err.msg, "exec"));
	assert_int_equal(sl_kube_config_parse(kubeconfig, strlen(kubeconfig), "plug", "/", true, &c, &err),
	                 0);
	assert_string_equal(c->exec->command, "/bin/plugin");
	assert_string_equal(c->exec->args[0], "get-token");
	assert_string_equal(c->exec->args[1], "--x");
	assert_null(c->exec->args[2]);
	assert_string_equal(c->exec->env[0], "A=b");
	assert_null(c->exec->env[1]);
	assert_string_equal(c->exec->api_version, "client.authentication.k8s.io/v1beta1");
	assert_true(c->exec->provide_cluster_info);
	sl_kube_config_free(c);
}

static void kubeconfig_errors(void **state)
{
	struct sl_kube_config *c = NULL;
	struct sl_error err = {0};
	static const char bad_yaml[] = "clusters: [\n";
	/* aliases expand as kubectl expands them, within a limit */
	static const char alias[] =
	    "current-context: x\nclusters: [{name: c, cluster: {server: https://a}}]\n"
	    "users: [{name: u, user: &creds {token: t0k}}, {name: u2, user: *creds}]\n"
	    "contexts: [{name: x, context: {cluster: c, user: u2}}]\n";
	static const char bomb[] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	                           "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	                           "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	                           "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	                           "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
	static const char bad_b64[] =
	    "current-context: x\nclusters: [{name: c, cluster: {server: https://a, "
	    "certificate-authority-data: '!!!'}}]\ncontexts: [{name: x, context: {cluster: c}}]\n";
	static const char cert_no_key[] =
	    "current-context: x\nclusters: [{name: c, cluster: {server: https://a}}]\n"
	    "users: [{name: u, user: {client-certificate-data: QQ==}}]\n"
	    "contexts: [{name: x, context: {cluster: c, user: u}}]\n";

	assert_int_equal(sl_kube_config_parse(kubeconfig, strlen(kubeconfig), "nope", NULL, false, &c, &err),
	                 SL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "nope"));
	assert_int_equal(
	    sl_kube_config_parse(kubeconfig, strlen(kubeconfig), "broken", NULL, false, &c, &err),
	    SL_EINVALID);
	assert_int_equal(sl_kube_config_parse(bad_yaml, strlen(bad_yaml), NULL, NULL, false, &c, &err),
	                 SL_EINVALID);
	assert_non_null(strstr(err.msg, "2:1:")); /* line:column */
	assert_int_equal(sl_kube_config_parse(alias, strlen(alias), NULL, NULL, false, &c, &err), 0);
	assert_string_equal(c->token, "t0k");
	sl_kube_config_free(c);
	c = NULL;
	assert_true(sl_kube_config_parse(bomb, strlen(bomb), NULL, NULL, false, &c, &err) < 0);
	assert_null(c);
	assert_int_equal(sl_kube_config_parse(bad_b64, strlen(bad_b64), NULL, NULL, false, &c, &err),
	                 SL_EINVALID);
	assert_int_equal(sl_kube_config_parse(cert_no_key, strlen(cert_no_key), NULL, NULL, false, &c, &err),
	                 SL_EINVALID);
	assert_int_equal(sl_kube_config_parse("", 0, NULL, NULL, false, &c, &err), SL_EINVALID);
	/* the secret never shows up in an error */
	assert_null(strstr(err.msg, "s3cr3t"));
}

static void kubeconfig_files_are_read(void **state)
{
	char dir[] = "/tmp/test-kube-XXXXXX", path[256], text[1024];
	struct sl_kube_config *c = NULL;
	struct sl_error err = {0};
	struct sl_kube_config_opts o = {0};
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	f = fopen(path, "w");
	fputs("CA-PEM\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/config", dir);
	snprintf(text, sizeof(text),
	         "current-context: x\nclusters: [{name: c, cluster: {server: https://a:1, "
	         "certificate-authority: ca.pem}}]\n"
	         "users: [{name: u, user: {exec: {command: p}}}]\n"
	         "contexts: [{name: x, context: {cluster: c, user: u}}]\n");
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	o.kubeconfig = path;
	unsetenv("KUBERNETES_SERVICE_HOST");
	/* an explicit kubeconfig may run its exec plugin */
	assert_int_equal(sl_kube_config_load(&o, &c, &err), 0);
	assert_int_equal(c->ca_len, 7);
	assert_memory_equal(c->ca, "CA-PEM\n", 7);
	assert_non_null(c->exec);
	sl_kube_config_free(c);
	/* ~/.kube/config was not pointed at: no exec */
	unsetenv("KUBECONFIG");
	snprintf(path, sizeof(path), "%s/.kube", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/.kube/ca.pem", dir);
	f = fopen(path, "w");
	fputs("CA-PEM\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/.kube/config", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	setenv("HOME", dir, 1);
	o.kubeconfig = NULL;
	assert_int_equal(sl_kube_config_load(&o, &c, &err), SL_EFORBIDDEN);
	o.allow_exec_from_default = true;
	assert_int_equal(sl_kube_config_load(&o, &c, &err), 0);
	assert_non_null(c->exec);
	sl_kube_config_free(c);
	snprintf(text, sizeof(text), "rm -rf '%s'", dir);
	assert_int_equal(system(text), 0);
}

static void in_cluster_config(void **state)
{
	char dir[] = "/tmp/test-kube-sa-XXXXXX", path[256];
	struct sl_kube_config *c = NULL;
	struct sl_error err = {0};
	FILE *f;

	assert_non_null(mkdtemp(dir));
	static const char *const files[][2] = {
	    {"token", "tok\n"}, {"ca.crt", "CA\n"}, {"namespace", "ns1\n"}};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i][0]);
		f = fopen(path, "w");
		fputs(files[i][1], f);
		fclose(f);
	}
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(sl_kube_config_in_cluster(dir, &c, &err), SL_ENOTFOUND);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::10", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(sl_kube_config_in_cluster(dir, &c, &err), 0);
	assert_string_equal(c->server, "https://[fd00::10]:443");
	assert_string_equal(c->ns, "ns1");
	assert_true(c->in_cluster);
	snprintf(path, sizeof(path), "%s/token", dir);
	assert_string_equal(c->token_file, path);
	assert_int_equal(c->ca_len, 3);
	sl_kube_config_free(c);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	assert_int_equal(sl_kube_config_in_cluster(dir, &c, &err), 0);
	assert_string_equal(c->server, "https://10.0.0.1:443");
	sl_kube_config_free(c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

/* ---- watch lines ------------------------------------------------------------ */

static char got[16][64];
static int ngot;

static int collect(const char *line, size_t len, void *payload)
{
	if (ngot < 16)
		snprintf(got[ngot++], sizeof(got[0]), "%.*s", (int)len, line);
	return 0;
}

static void lines_framing(void **state)
{
	struct sl_kube_lines l;
	static const char stream[] = "one\ntwo\r\n\nthree-is-longer\nfour";

	/* every split of the stream yields the same lines */
	for (size_t cut = 0; cut <= sizeof(stream) - 1; cut++) {
		ngot = 0;
		sl_kube_lines_init(&l, 64);
		assert_int_equal(sl_kube_lines_feed(&l, stream, cut, collect, NULL), 0);
		assert_int_equal(
		    sl_kube_lines_feed(&l, stream + cut, sizeof(stream) - 1 - cut, collect, NULL), 0);
		assert_int_equal(ngot, 3);
		assert_string_equal(got[0], "one");
		assert_string_equal(got[1], "two");
		assert_string_equal(got[2], "three-is-longer");
		/* "four" waits for its newline */
		assert_int_equal(sl_kube_lines_feed(&l, "\n", 1, collect, NULL), 0);
		assert_int_equal(ngot, 4);
		assert_string_equal(got[3], "four");
		sl_kube_lines_free(&l);
	}
	/* byte by byte */
	ngot = 0;
	sl_kube_lines_init(&l, 64);
	for (size_t i = 0; i < sizeof(stream) - 1; i++)
		assert_int_equal(sl_kube_lines_feed(&l, stream + i, 1, collect, NULL), 0);
	assert_int_equal(ngot, 3);
	sl_kube_lines_free(&l);
}

static void lines_limit(void **state)
{
	struct sl_kube_lines l;
	char big[100];

	memset(big, 'x', sizeof(big));
	ngot = 0;
	sl_kube_lines_init(&l, 16);
	assert_int_equal(sl_kube_lines_feed(&l, "0123456789abcdef\n", 17, collect, NULL),
	                 0); /* exactly max */
	assert_int_equal(ngot, 1);
	/* too long inside one chunk */
	assert_int_equal(sl_kube_lines_feed(&l, big, 20, collect, NULL), SL_ETOOLARGE);
	assert_true(l.overflow);
	assert_int_equal(sl_kube_lines_feed(&l, "ok\n", 3, collect, NULL), SL_ETOOLARGE);
	sl_kube_lines_reset(&l);
	assert_int_equal(sl_kube_lines_feed(&l, "ok\n", 3, collect, NULL), 0);
	assert_int_equal(ngot, 2);
	/* too long across chunks */
	for (int i = 0; i < 3; i++) {
		int r = sl_kube_lines_feed(&l, big, 8, collect, NULL);
		if (i < 2)
			assert_int_equal(r, 0);
		else
			assert_int_equal(r, SL_ETOOLARGE);
	}
	/* a complete long line in one chunk */
	sl_kube_lines_reset(&l);
	big[40] = '\n';
	assert_int_equal(sl_kube_lines_feed(&l, big, 41, collect, NULL), SL_ETOOLARGE);
	assert_int_equal(ngot, 2);
	sl_kube_lines_free(&l);
}

static void event_parse(void **state)
{
	struct sl_kube_event ev = {0};
	struct sl_error err = {0};
	static const char added[] = "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{"
	                            "\"name\":\"a\",\"resourceVersion\":\"5\"}}}";
	static const char gone[] =
	    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}";
	static const char bookmark[] =
	    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}";

	assert_int_equal(sl_kube_event_parse(added, strlen(added), &ev, &err), 0);
	assert_int_equal(ev.type, SL_KUBE_EVENT_ADDED);
	assert_string_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(ev.object, "metadata"), "name")->valuestring, "a");
	sl_kube_event_clear(&ev);
	assert_int_equal(sl_kube_event_parse(gone, strlen(gone), &ev, &err), 0);
	assert_int_equal(ev.type, SL_KUBE_EVENT_ERROR);
	assert_int_equal(ev.code, 410);
	sl_kube_event_clear(&ev);
	assert_int_equal(sl_kube_event_parse(bookmark, strlen(bookmark), &ev, &err), 0);
	assert_int_equal(ev.type, SL_KUBE_EVENT_BOOKMARK);
	sl_kube_event_clear(&ev);

	static const char *const bad[] = {
	    "",
	    "null",
	    "[]",
	    "{\"type\":\"ADDED\"}",
	    "{\"type\":\"SOMETHING\",\"object\":{}}",
	    "{\"type\":\"ADDED\",\"object\":[]}",
	    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{}}}",
	    "{\"type\":\"BOOKMARK\",\"object\":{}}",
	    "{\"type\":1,\"object\":{}}",
	    "{\"type\":\"ADDED\",\"object\":{",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sl_kube_event_parse(bad[i], strlen(bad[i]), &ev, &err), SL_EINVALID);
		assert_null(ev.object);
	}
	/* a line need not be NUL-terminated: only len bytes are read */
	assert_int_equal(sl_kube_event_parse(added, strlen(added) - 1, &ev, &err), SL_EINVALID);
}

struct got {
	bool called;
	int code;
};

static void got_cb(struct sl_kube_result *res, void *payload)
{
	struct got *g = payload;
	g->called = true;
	g->code = res->code;
}

/* A request whose URL does not fit is refused (SL_ETOOLARGE), never sent
 * cut short. The path alone fits its own limit; with the server in front
 * it does not. The server refuses connections, so a request that went out
 * would fail with SL_EIO. */
static void url_too_long(void **state)
{
	static const char text[] = "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
	                           "users: [{name: u, user: {token: t}}]\n"
	                           "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
	                           "current-context: x\n";
	static char name[8151];
	struct sl_kube_ref ref = {
	    .api_version = "v1", .resource = "configmaps", .namespaced = true, .ns = "default", .name = name};
	struct sl_kube_config *cfg = NULL;
	struct sl_error err = {0};
	struct sl_loop *loop;
	struct sl_kube *k;
	struct got g = {0};
	uint64_t end;
	int r;

	memset(name, 'a', sizeof(name) - 1);
	assert_int_equal(sl_kube_config_parse(text, strlen(text), NULL, "/", false, &cfg, &err), 0);
	assert_int_equal(sl_loop_new(&loop), 0);
	assert_int_equal(sl_kube_new(loop, cfg, NULL, &k, &err), 0);
	r = sl_kube_get(k, &ref, NULL, got_cb, &g);
	if (r == 0) {
		end = sl_now_ms() + 10000;
		while (!g.called && sl_now_ms() < end)
			sl_loop_run_once(loop, 100);
		assert_true(g.called);
		r = g.code;
	}
	assert_int_equal(r, SL_ETOOLARGE);
	sl_kube_free(k);
	sl_loop_free(loop);
}

/* Unreachable: no answer at all (a connection refused, a timeout); not an
 * answer of the server, nor a request cut short here. */
static void unreachable(void **state)
{
	struct sl_kube_result r = {.code = SL_EIO};

	assert_true(sl_kube_unreachable(&r));
	r.code = SL_ETIMEOUT;
	assert_true(sl_kube_unreachable(&r));
	r.http_status = 504; /* the server's own timeout: it answered */
	assert_false(sl_kube_unreachable(&r));
	r = (struct sl_kube_result){.code = SL_EFORBIDDEN, .http_status = 403};
	assert_false(sl_kube_unreachable(&r));
	r = (struct sl_kube_result){.code = SL_ETOOLARGE};
	assert_false(sl_kube_unreachable(&r));
	r = (struct sl_kube_result){.code = SL_ECANCELED};
	assert_false(sl_kube_unreachable(&r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(url_too_long),
	    cmocka_unit_test(kubeconfig_current_context),
	    cmocka_unit_test(kubeconfig_other_context),
	    cmocka_unit_test(kubeconfig_exec_needs_permission),
	    cmocka_unit_test(kubeconfig_errors),
	    cmocka_unit_test(kubeconfig_files_are_read),
	    cmocka_unit_test(in_cluster_config),
	    cmocka_unit_test(lines_framing),
	    cmocka_unit_test(lines_limit),
	    cmocka_unit_test(event_parse),
	    cmocka_unit_test(unreachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
