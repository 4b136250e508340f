/* Unit tests of the client's credentials (src/kube/creds.c) without a
 * cluster: static tokens, basic auth, client certificates, token files
 * re-read after a 401, and the exec plugin (a shell script) with its
 * output, errors, expiry and cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "sluice/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test-kube-creds-XXXXXX";
static struct sl_loop *loop;

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* The contents of dir/name ("" when missing), in a static buffer. */
static const char *read_back(const char *name)
{
	static char text[8192];
	char path[512];
	struct sl_buf b;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	text[0] = '\0';
	if (sl_file_read(path, sizeof(text) - 1, &b, NULL) == 0) {
		snprintf(text, sizeof(text), "%s", b.data ? b.data : "");
		sl_buf_free(&b);
	}
	return text;
}

/* A configuration from a kubeconfig whose only user has the given lines. */
static struct sl_kube_config *config(const char *user)
{
	char text[4096];
	struct sl_kube_config *c = NULL;
	struct sl_error err = {0};

	snprintf(text, sizeof(text),
	         "current-context: t\n"
	         "clusters: [{name: c, cluster: {server: 'https://api.example:6443', "
	         "certificate-authority-data: Q0E=}}]\n"
	         "contexts: [{name: t, context: {cluster: c, user: u}}]\n"
	         "users:\n- name: u\n  user:\n%s\n",
	         user);
	assert_int_equal(sl_kube_config_parse(text, strlen(text), NULL, dir, true, &c, &err), 0);
	return c;
}

struct ready {
	bool called;
	int code;
	char msg[512];
};

static void on_ready(int code, const char *msg, void *payload)
{
	struct ready *r = payload;
	r->called = true;
	r->code = code;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

/* Runs the loop until the credentials reported (10 s at most). */
static void wait_ready(struct ready *r)
{
	uint64_t end = sl_now_ms() + 10000;
	while (!r->called && sl_now_ms() < end)
		sl_loop_run_once(loop, 100);
	assert_true(r->called);
}

/* ---- kubeconfig users ------------------------------------------------------- */

static void static_token(void **state)
{
	struct sl_kube_config *cfg = config("    token: s3cr3t\n    username: bob\n    password: pw");
	struct kube_creds *c;
	struct kube_auth a;
	struct sl_error err = {0};

	assert_int_equal(sl_kube__creds_new(loop, cfg, on_ready, NULL, &c), 0);
	assert_int_equal(sl_kube__creds_prepare(c, &err), 0);
	sl_kube__creds_get(c, &a);
	assert_string_equal(a.bearer, "s3cr3t");
	/* a token wins over basic auth */
	assert_null(a.username);
	assert_null(a.cert);
	/* nothing to fetch again: a 401 is final */
	assert_false(sl_kube__creds_unauthorized(c));
	sl_kube__creds_get(c, &a);
	assert_string_equal(a.bearer, "s3cr3t");
	sl_kube__creds_free(c);
	sl_kube_config_free(cfg);
}

static void basic_and_certificate(void **state)
{
	struct sl_kube_config *cfg =
	    config("    username: bob\n    password: pw\n"
	           "    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ");
	struct kube_creds *c;
	struct kube_auth a;
	struct sl_error err = {0};

	assert_int_equal(sl_kube__creds_new(loop, cfg, on_ready, NULL, &c), 0);
	assert_int_equal(sl_kube__creds_prepare(c, &err), 0);
	sl_kube__creds_get(c, &a);
	assert_null(a.bearer);
	assert_string_equal(a.username, "bob");
	assert_string_equal(a.password, "pw");
	assert_int_equal(a.cert_len, 4);
	assert_memory_equal(a.cert, "CERT", 4);
	assert_int_equal(a.key_len, 3);
	assert_memory_equal(a.key, "KEY", 3);
	/* the configuration's blobs live as long as the client */
	assert_true(a.cert_lasting);
	sl_kube__creds_free(c);
	sl_kube_config_free(cfg);
}

/* ---- token files ---------------------------------------------------------------- */

static void token_file_reread(void **state)
{
	struct sl_kube_config *cfg = config("    tokenFile: token");
	struct kube_creds *c;
	struct kube_auth a;
	struct sl_error err = {0};
	char path[512];

	/* not there yet: no request can go out */
	assert_int_equal(sl_kube__creds_new(loop, cfg, on_ready, NULL, &c), 0);
	assert_int_equal(sl_kube__creds_prepare(c, &err), SL_EUNAUTHORIZED);
	assert_non_null(strstr(err.msg, "token file"));
	write_file("token", "tok-1\nignored\n", 0600);
	assert_int_equal(sl_kube__creds_prepare(c, &err), 0);
	sl_kube__creds_get(c, &a);
	assert_string_equal(a.bearer, "tok-1");
	/* rotated on disk: within the minute the token read last stays */
	write_file("token", "tok-2\n", 0600);
	assert_int_equal(sl_kube__creds_prepare(c, &err), 0);
	sl_kube__creds_get(c, &a);
	assert_string_equal(a.bearer, "tok-1");
	/* a 401 makes the next request read the file again */
	assert_true(sl_kube__creds_unauthorized(c));
	sl_kube__creds_get(c, &a);
	assert_null(a.bearer);
	assert_int_equal(sl_kube__creds_prepare(c, &err), 0);
	sl_kube__creds_get(c, &a);
	assert_string_equal(a.bearer, "tok-2");
	/* gone after a 401: refused, without the token in the message */
	snprintf(path, sizeof(path), "%s/token", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(sl_kube__creds_prepare(c, &err), 0);
	assert_true(sl_kube__creds_unauthorized(c));
	assert_int_equal(sl_kube__creds_prepare(c, &err), SL_EUNAUTHORIZED);
	assert_null(strstr(err.msg, "tok-2"));
	sl_kube__creds_free(c);
	sl_kube_config_free(cfg);
}

/* ---- exec plugin ------------------------------------------------------------------ */

/* The plugin counts its runs, records what it was given, and prints
 * DIR/out (or exits with the status in DIR/exit). */
static const char plugin[] = "#!/bin/sh\n"
                             "d=$1\n"
                             "n=$(cat \"$d/count\" 2>/dev/null || echo 0); echo $((n+1)) > \"$d/count\"\n"
                             "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$d/info\"\n"
                             "printf '%s' \"$PLUGIN_ENV\" > \"$d/env\"\n"
                             "[ -f \"$d/exit\" ] && exit \"$(cat \"$d/exit\")\"\n"
                             "[ -f \"$d/sleep\" ] && sleep \"$(cat \"$d/sleep\")\"\n"
                             "cat \"$d/out\"\n";

static struct sl_kube_config *exec_config(void)
{
	char user[1024];

	write_file("plugin.sh", plugin, 0700);
	snprintf(user, sizeof(user),
	         "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
	         "      command: %s/plugin.sh\n      args: ['%s']\n"
	         "      env: [{name: PLUGIN_ENV, value: from-kubeconfig}]\n      provideClusterInfo: true",
	         dir, dir);
	write_file("count", "0\n", 0600);
	return config(user);
}

static void exec_output(const char *token, int64_t expires_in, const char *extra)
{
	char text[2048], exp[64] = "";

	if (expires_in) {
		char when[32];
		sl_time_rfc3339(sl_wall_s() + expires_in, when);
		snprintf(exp, sizeof(exp), ",\"expirationTimestamp\":\"%s\"", when);
	}
	snprintf(text, sizeof(text),
	         "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
	         "\"status\":{\"token\":\"%s\"%s%s}}",
	         token, exp, extra);
	write_file("out", text, 0600);
}

/* Prepares a request: the plugin must run (1), then reports code. */
static void exec_fetch(struct kube_creds *c, struct ready *r, int code)
{
	struct sl_error err = {0};

	memset(r, 0, sizeof(*r));
	assert_int_equal(sl_kube__creds_prepare(c, &err), 1);
	/* a second request meanwhile waits for the same run */
	assert_int_equal(sl_kube__creds_prepare(c, &err), 1);
	wait_ready(r);
	assert_int_equal(r->code, code);
}

static void exec_token_cached_and_refetched(void **state)
{
	struct sl_kube_config *cfg = exec_config();
	struct kube_creds *c;
	struct kube_auth a;
	struct ready r;
	struct sl_error err = {0};
	const char *info;

	assert_int_equal(sl_kube__creds_new(loop, cfg, on_ready, &r, &c), 0);
	exec_output("exec-tok-1", 3600, "");
	exec_fetch(c, &r, 0);
	sl_kube__creds_get(c, &a);
	assert_string_equal(a.bearer, "exec-tok-1");
	assert_null(a.cert);
	assert_string_equal(read_back("count"), "1\n");
	assert_string_equal(read_back("env"), "from-kubeconfig");
	info = read_back("info");
	assert_non_null(strstr(info, "\"kind\":\"ExecCredential\""));
	assert_non_null(strstr(info, "\"interactive\":false"));
	assert_non_null(strstr(info, "\"server\":\"https://api.example:6443\""));
	assert_non_null(strstr(info, "\"certificate-authority-data\":\"Q0E=\""));
	/* valid for an hour: no new run */
	assert_int_equal(sl_kube__creds_prepare(c, &err), 0);
	assert_string_equal(read_back("count"), "1\n");
	/* a 401 fetches again */
	exec_output("exec-tok-2", 3600, "");
	assert_true(sl_kube__creds_unauthorized(c));
	exec_fetch(c, &r, 0);
	sl_kube__creds_get(c, &a);
	assert_string_equal(a.bearer, "exec-tok-2");
	/* a token about to expire is fetched again for the next request */
	exec_output("exec-tok-3", 5, "");
	assert_true(sl_kube__creds_unauthorized(c));
	exec_fetch(c, &r, 0);
	exec_fetch(c, &r, 0);
	assert_string_equal(read_back("count"), "4\n");
	sl_kube__creds_free(c);
	sl_kube_config_free(cfg);
}

static void exec_certificate(void **state)
{
	struct sl_kube_config *cfg = exec_config();
	struct kube_creds *c;
	struct kube_auth a;
	struct ready r;

	write_file("out",
	           "{\"kind\":\"ExecCredential\",\"status\":{\"clientCertificateData\":\"CERT-PEM\","
	           "\"clientKeyData\":\"KEY-PEM\"}}",
	           0600);
	assert_int_equal(sl_kube__creds_new(loop, cfg, on_ready, &r, &c), 0);
	exec_fetch(c, &r, 0);
	sl_kube__creds_get(c, &a);
	assert_null(a.bearer);
	assert_int_equal(a.cert_len, 8);
	assert_memory_equal(a.cert, "CERT-PEM", 8);
	assert_int_equal(a.key_len, 7);
	assert_memory_equal(a.key, "KEY-PEM", 7);
	/* the next run may replace them: the transport copies them */
	assert_false(a.cert_lasting);
	sl_kube__creds_free(c);
	sl_kube_config_free(cfg);
}

static void exec_errors(void **state)
{
	static const struct {
		const char *out, *want;
	} cases[] = {
	    {"not json", "output is not an ExecCredential with a token or certificate"},
	    {"{\"status\":{\"clientCertificateData\":\"only-cert\"}}", "output is not an ExecCredential"},
	    {"{\"status\":{\"token\":\"t0k\",\"expirationTimestamp\":\"tomorrow\"}}",
	     "bad expirationTimestamp"},
	};
	struct sl_kube_config *cfg = exec_config();
	struct kube_creds *c;
	struct kube_auth a;
	struct ready r;
	char path[512];

	assert_int_equal(sl_kube__creds_new(loop, cfg, on_ready, &r, &c), 0);
	for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
		write_file("out", cases[i].out, 0600);
		exec_fetch(c, &r, SL_EUNAUTHORIZED);
		assert_non_null(strstr(r.msg, cases[i].want));
		assert_non_null(strstr(r.msg, "plugin.sh"));
		assert_null(strstr(r.msg, "t0k"));
		sl_kube__creds_get(c, &a);
		assert_null(a.bearer);
	}
	write_file("exit", "3\n", 0600);
	exec_fetch(c, &r, SL_EUNAUTHORIZED);
	assert_non_null(strstr(r.msg, "exited with status 3"));
	snprintf(path, sizeof(path), "%s/exit", dir);
	unlink(path);
	sl_kube__creds_free(c);
	sl_kube_config_free(cfg);
}

/* A plugin that cannot be started says why (the spawn reports it) instead
 * of the exit status 127 of a forked child whose exec failed. */
static void exec_missing_command(void **state)
{
	char user[1024];
	struct sl_kube_config *cfg;
	struct kube_creds *c;
	struct ready r;

	snprintf(user, sizeof(user),
	         "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
	         "      command: %s/no-such-plugin",
	         dir);
	cfg = config(user);
	assert_int_equal(sl_kube__creds_new(loop, cfg, on_ready, &r, &c), 0);
	exec_fetch(c, &r, SL_EUNAUTHORIZED);
	assert_non_null(strstr(r.msg, "no-such-plugin"));
	/* valgrind runs glibc's vfork-style spawn as a plain fork, so the
	 * child's failed exec can only show as its exit status there */
	if (!getenv("SLUICE_UNDER_VALGRIND")) {
		assert_non_null(strstr(r.msg, "cannot run"));
		assert_null(strstr(r.msg, "status 127"));
	}
	sl_kube__creds_free(c);
	sl_kube_config_free(cfg);
}

static void exec_output_limit(void **state)
{
	struct sl_kube_config *cfg = exec_config();
	struct kube_creds *c;
	struct ready r;
	FILE *f;
	char path[512];

	snprintf(path, sizeof(path), "%s/out", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < (2 << 20) / 64; i++)
		fputs("0123456789012345678901234567890123456789012345678901234567890123", f);
	fclose(f);
	assert_int_equal(sl_kube__creds_new(loop, cfg, on_ready, &r, &c), 0);
	exec_fetch(c, &r, SL_EUNAUTHORIZED);
	assert_non_null(strstr(r.msg, "output larger than"));
	sl_kube__creds_free(c);
	sl_kube_config_free(cfg);
}

/* Freed while the plugin runs: waits for it, reports nothing, leaks nothing. */
static void exec_free_while_running(void **state)
{
	struct sl_kube_config *cfg = exec_config();
	struct kube_creds *c;
	struct ready r = {0};
	struct sl_error err = {0};
	char path[512];

	exec_output("late", 3600, "");
	write_file("sleep", "0.3\n", 0600);
	assert_int_equal(sl_kube__creds_new(loop, cfg, on_ready, &r, &c), 0);
	assert_int_equal(sl_kube__creds_prepare(c, &err), 1);
	/* the plugin has started once it counted its run */
	for (int i = 0; i < 1000 && strcmp(read_back("count"), "1\n") != 0; i++)
		usleep(10000);
	assert_string_equal(read_back("count"), "1\n");
	sl_kube__creds_free(c);
	sl_loop_run_once(loop, 0);
	assert_false(r.called);
	snprintf(path, sizeof(path), "%s/sleep", dir);
	unlink(path);
	sl_kube_config_free(cfg);
}

static int setup(void **state)
{
	if (!mkdtemp(dir) || sl_loop_new(&loop) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	sl_loop_free(loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The token never sits in the request's header list, which curl frees
 * without wiping: it goes to curl as CURLOPT_XOAUTH2_BEARER. */
static void headers_carry_no_token(void **state)
{
	struct curl_slist *h = NULL;

	assert_int_equal(sl_kube__req_headers("application/json", &h), 0);
	assert_non_null(h);
	for (struct curl_slist *l = h; l; l = l->next)
		assert_false(sl_str_has_prefix(l->data, "Authorization"));
	curl_slist_free_all(h);
}

/* A Content-Type that does not fit its header is refused, not cut. */
static void header_too_long(void **state)
{
	char ct[200];
	struct curl_slist *h = NULL;

	memset(ct, 'x', sizeof(ct) - 1);
	ct[sizeof(ct) - 1] = '\0';
	assert_int_equal(sl_kube__req_headers(ct, &h), SL_ETOOLARGE);
	assert_null(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(headers_carry_no_token),
	    cmocka_unit_test(header_too_long),
	    cmocka_unit_test(static_token),
	    cmocka_unit_test(basic_and_certificate),
	    cmocka_unit_test(token_file_reread),
	    cmocka_unit_test(exec_token_cached_and_refetched),
	    cmocka_unit_test(exec_certificate),
	    cmocka_unit_test(exec_errors),
	    cmocka_unit_test(exec_missing_command),
	    cmocka_unit_test(exec_output_limit),
	    cmocka_unit_test(exec_free_while_running),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
