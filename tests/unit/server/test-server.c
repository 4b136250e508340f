/* Unit tests of the server module: the Prometheus text format of the
 * registry, the webhook signature check, the token bucket, --listen parsing,
 * and the endpoints served on a real loop and socket (a client thread with
 * libcurl talks to the server running on this thread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/base.h"
#include "sluice/loop.h"
#include "sluice/server.h"

#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- metrics ------------------------------------------------------------- */

static void metrics_text_format(void **state)
{
	struct sl_server_metrics *m;
	struct sl_server_metric *req, *up, *lat, *plain;
	struct sl_buf out;
	const double b[] = {0.1, 0.5, 1};

	assert_int_equal(sl_server_metrics_new(&m), 0);
	assert_int_equal(sl_server_metrics_register(m, SL_SERVER_METRIC_COUNTER, "sluice_api_requests_total",
	                                            "API requests by verb and code.", "verb,code", NULL, 0,
	                                            &req),
	                 0);
	assert_int_equal(sl_server_metrics_register(m, SL_SERVER_METRIC_GAUGE, "sluice_up",
	                                            "1 when up.\nSecond \\ line.", NULL, NULL, 0, &up),
	                 0);
	assert_int_equal(sl_server_metrics_register(m, SL_SERVER_METRIC_HISTOGRAM, "sluice_sync_seconds",
	                                            "Sync duration.", "source", b, 3, &lat),
	                 0);
	assert_int_equal(sl_server_metrics_register(m, SL_SERVER_METRIC_COUNTER, "sluice_plain_total",
	                                            "Never touched.", NULL, NULL, 0, &plain),
	                 0);
	assert_int_equal(sl_server_metric_add(req, (const char *const[]){"get", "200"}, 3), 0);
	assert_int_equal(sl_server_metric_add(req, (const char *const[]){"apply", "409"}, 1), 0);
	assert_int_equal(sl_server_metric_add(req, (const char *const[]){"get", "200"}, 2), 0);
	assert_int_equal(sl_server_metric_add(req, (const char *const[]){"get", "404"}, 1), 0);
	assert_int_equal(sl_server_metric_set(up, NULL, 1), 0);
	assert_int_equal(sl_server_metric_observe(lat, (const char *const[]){"a\"b\\c\nd"}, 0.05), 0);
	assert_int_equal(sl_server_metric_observe(lat, (const char *const[]){"a\"b\\c\nd"}, 0.7), 0);
	assert_int_equal(sl_server_metric_observe(lat, (const char *const[]){"a\"b\\c\nd"}, 3.25), 0);

	sl_buf_init(&out, 1 << 20);
	assert_int_equal(sl_server_metrics_render(m, &out), 0);
	assert_string_equal(out.data, "# HELP sluice_api_requests_total API requests by verb and code.\n"
	                              "# TYPE sluice_api_requests_total counter\n"
	                              "sluice_api_requests_total{verb=\"apply\",code=\"409\"} 1\n"
	                              "sluice_api_requests_total{verb=\"get\",code=\"200\"} 5\n"
	                              "sluice_api_requests_total{verb=\"get\",code=\"404\"} 1\n"
	                              "# HELP sluice_up 1 when up.\\nSecond \\\\ line.\n"
	                              "# TYPE sluice_up gauge\n"
	                              "sluice_up 1\n"
	                              "# HELP sluice_sync_seconds Sync duration.\n"
	                              "# TYPE sluice_sync_seconds histogram\n"
	                              "sluice_sync_seconds_bucket{source=\"a\\\"b\\\\c\\nd\",le=\"0.1\"} 1\n"
	                              "sluice_sync_seconds_bucket{source=\"a\\\"b\\\\c\\nd\",le=\"0.5\"} 1\n"
	                              "sluice_sync_seconds_bucket{source=\"a\\\"b\\\\c\\nd\",le=\"1\"} 2\n"
	                              "sluice_sync_seconds_bucket{source=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 3\n"
	                              "sluice_sync_seconds_sum{source=\"a\\\"b\\\\c\\nd\"} 4\n"
	                              "sluice_sync_seconds_count{source=\"a\\\"b\\\\c\\nd\"} 3\n"
	                              "# HELP sluice_plain_total Never touched.\n"
	                              "# TYPE sluice_plain_total counter\n"
	                              "sluice_plain_total 0\n");
	sl_buf_free(&out);
	sl_server_metrics_free(m);
}

static void metrics_refuses_misuse(void **state)
{
	struct sl_server_metrics *m;
	struct sl_server_metric *c, *g, *h;
	char v[16];

	assert_int_equal(sl_server_metrics_new(&m), 0);
	assert_int_equal(
	    sl_server_metrics_register(m, SL_SERVER_METRIC_COUNTER, "9bad", "", NULL, NULL, 0, NULL),
	    SL_EINVALID);
	assert_int_equal(
	    sl_server_metrics_register(m, SL_SERVER_METRIC_COUNTER, "ok", "", "__reserved", NULL, 0, NULL),
	    SL_EINVALID);
	assert_int_equal(
	    sl_server_metrics_register(m, SL_SERVER_METRIC_COUNTER, "ok", "", "a-b", NULL, 0, NULL),
	    SL_EINVALID);
	assert_int_equal(
	    sl_server_metrics_register(m, SL_SERVER_METRIC_HISTOGRAM, "h", "", "le", NULL, 0, NULL),
	    SL_EINVALID);
	assert_int_equal(sl_server_metrics_register(m, SL_SERVER_METRIC_HISTOGRAM, "h", "", NULL,
	                                            (const double[]){2, 1}, 2, NULL),
	                 SL_EINVALID);
	assert_int_equal(
	    sl_server_metrics_register(m, SL_SERVER_METRIC_COUNTER, "c_total", "", "k", NULL, 0, &c), 0);
	assert_int_equal(
	    sl_server_metrics_register(m, SL_SERVER_METRIC_COUNTER, "c_total", "", NULL, NULL, 0, NULL),
	    SL_EEXIST);
	assert_int_equal(sl_server_metrics_register(m, SL_SERVER_METRIC_GAUGE, "g", "", "phase", NULL, 0, &g),
	                 0);
	assert_int_equal(
	    sl_server_metrics_register(m, SL_SERVER_METRIC_HISTOGRAM, "h", "", NULL, NULL, 0, &h), 0);
	assert_int_equal(sl_server_metric_add(c, (const char *const[]){"x"}, -1), SL_EINVALID);
	assert_int_equal(sl_server_metric_add(c, NULL, 1), SL_EINVALID);
	assert_int_equal(sl_server_metric_observe(c, (const char *const[]){"x"}, 1), SL_EINVALID);
	assert_int_equal(sl_server_metric_add(h, NULL, 1), SL_EINVALID);
	assert_int_equal(sl_server_metric_set(g, (const char *const[]){"Running"}, NAN), SL_EINVALID);
	/* a label fed from outside cannot grow the registry without end */
	for (int i = 0; i < SL_SERVER_METRIC_MAX_CHILDREN; i++) {
		snprintf(v, sizeof(v), "%d", i);
		assert_int_equal(sl_server_metric_add(c, (const char *const[]){v}, 1), 0);
	}
	assert_int_equal(sl_server_metric_add(c, (const char *const[]){"one-more"}, 1), SL_ETOOLARGE);
	assert_int_equal(sl_server_metric_add(c, (const char *const[]){"17"}, 1), 0);
	assert_true(sl_server_metric_get(c, (const char *const[]){"17"}) == 2);
	/* gauges by label are rebuilt by collectors */
	assert_int_equal(sl_server_metric_set(g, (const char *const[]){"Running"}, 3), 0);
	sl_server_metric_clear(g);
	assert_true(isnan(sl_server_metric_get(g, (const char *const[]){"Running"})));
	sl_server_metrics_free(m);
}

struct counters {
	uint64_t syncs;
	struct sl_server_metric *f;
};

static void collect(struct sl_server_metrics *m, void *payload)
{
	struct counters *c = payload;
	sl_server_metric_set(c->f, NULL, (double)c->syncs);
}

static void metrics_collectors_run_on_render(void **state)
{
	struct sl_server_metrics *m;
	struct counters c = {.syncs = 41};
	struct sl_buf out;

	assert_int_equal(sl_server_metrics_new(&m), 0);
	assert_int_equal(sl_server_metrics_register(m, SL_SERVER_METRIC_COUNTER, "sluice_syncs_total",
	                                            "Syncs.", NULL, NULL, 0, &c.f),
	                 0);
	assert_int_equal(sl_server_metrics_add_collector(m, collect, &c), 0);
	c.syncs = 12345678901ULL;
	sl_buf_init(&out, 4096);
	assert_int_equal(sl_server_metrics_render(m, &out), 0);
	assert_non_null(strstr(out.data, "\nsluice_syncs_total 12345678901\n"));
	sl_buf_free(&out);
	sl_server_metrics_free(m);
}

/* A histogram kept by another module is copied whole on each scrape. */
static void metrics_histogram_copied(void **state)
{
	struct sl_server_metrics *m;
	struct sl_server_metric *h, *g;
	struct sl_buf out;
	const double b[] = {0.01, 0.1};
	uint64_t counts[3] = {4, 0, 1};

	assert_int_equal(sl_server_metrics_new(&m), 0);
	assert_int_equal(sl_server_metrics_register(m, SL_SERVER_METRIC_HISTOGRAM,
	                                            "sluice_reconcile_duration_seconds", "Reconciles.", NULL,
	                                            b, 2, &h),
	                 0);
	assert_int_equal(sl_server_metrics_register(m, SL_SERVER_METRIC_GAUGE, "g", "", NULL, NULL, 0, &g),
	                 0);
	assert_int_equal(sl_server_metric_set_histogram(h, NULL, counts, 2, 1), SL_EINVALID);
	assert_int_equal(sl_server_metric_set_histogram(h, NULL, counts, 3, NAN), SL_EINVALID);
	assert_int_equal(sl_server_metric_set_histogram(g, NULL, counts, 3, 1), SL_EINVALID);
	assert_int_equal(sl_server_metric_observe(h, NULL, 5), 0);
	/* a copy replaces what was there */
	assert_int_equal(sl_server_metric_set_histogram(h, NULL, counts, 3, 2.5), 0);
	sl_buf_init(&out, 4096);
	assert_int_equal(sl_server_metrics_render(m, &out), 0);
	assert_non_null(strstr(out.data, "sluice_reconcile_duration_seconds_bucket{le=\"0.01\"} 4\n"
	                                 "sluice_reconcile_duration_seconds_bucket{le=\"0.1\"} 4\n"
	                                 "sluice_reconcile_duration_seconds_bucket{le=\"+Inf\"} 5\n"
	                                 "sluice_reconcile_duration_seconds_sum 2.5\n"
	                                 "sluice_reconcile_duration_seconds_count 5\n"));
	sl_buf_free(&out);
	sl_server_metrics_free(m);
}

/* ---- webhook ------------------------------------------------------------- */

static void hmac_known_vectors(void **state)
{
	char hex[65];

	/* RFC 4231, test case 2 */
	assert_int_equal(sl_server_webhook_hmac_hex("Jefe", 4, "what do ya want for nothing?", 28, hex), 0);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* GitHub's documented example */
	assert_int_equal(
	    sl_server_webhook_hmac_hex("It's a Secret to Everybody", 26, "Hello, World!", 13, hex), 0);
	assert_string_equal(hex, "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

static void webhook_verify_github_and_gitlab(void **state)
{
	const char *secret = "It's a Secret to Everybody";
	const char *good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
	const char *upper = "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17";
	const char *bad = "sha256=857107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
	struct sl_error err = {0};

	assert_int_equal(sl_server_webhook_verify(secret, 26, good, NULL, "Hello, World!", 13, &err), 0);
	assert_int_equal(sl_server_webhook_verify(secret, 26, upper, NULL, "Hello, World!", 13, &err), 0);
	assert_int_equal(sl_server_webhook_verify(secret, 26, bad, NULL, "Hello, World!", 13, &err),
	                 SL_EFORBIDDEN);
	assert_null(strstr(err.msg, "757107"));
	assert_null(strstr(err.msg, secret));
	/* the body is what is signed */
	assert_int_equal(sl_server_webhook_verify(secret, 26, good, NULL, "Hello, World?", 13, &err),
	                 SL_EFORBIDDEN);
	assert_int_equal(sl_server_webhook_verify(secret, 26, "sha1=abc", NULL, "x", 1, &err), SL_EFORBIDDEN);
	assert_int_equal(sl_server_webhook_verify(secret, 26, "sha256=", NULL, "x", 1, &err), SL_EFORBIDDEN);
	/* a wrong GitHub signature is not rescued by a right GitLab token */
	assert_int_equal(sl_server_webhook_verify(secret, 26, bad, secret, "x", 1, &err), SL_EFORBIDDEN);
	/* GitLab */
	assert_int_equal(sl_server_webhook_verify(secret, 26, NULL, secret, "x", 1, &err), 0);
	assert_int_equal(
	    sl_server_webhook_verify(secret, 26, NULL, "It's a Secret to Everybod", "x", 1, &err),
	    SL_EFORBIDDEN);
	assert_int_equal(sl_server_webhook_verify(secret, 26, NULL, "", "x", 1, &err), SL_EFORBIDDEN);
	assert_null(strstr(err.msg, secret));
	/* nothing to check against, or no header */
	assert_int_equal(sl_server_webhook_verify(secret, 26, NULL, NULL, "x", 1, &err), SL_EUNAUTHORIZED);
	assert_int_equal(sl_server_webhook_verify("", 0, NULL, "", "x", 1, &err), SL_EUNAUTHORIZED);
}

static void token_bucket_limits_and_refills(void **state)
{
	struct sl_server_token_bucket tb;

	sl_server_token_bucket_init(&tb, 2, 3, 1000); /* 2/s, burst 3 */
	assert_true(sl_server_token_bucket_take(&tb, 1000));
	assert_true(sl_server_token_bucket_take(&tb, 1000));
	assert_true(sl_server_token_bucket_take(&tb, 1000));
	assert_false(sl_server_token_bucket_take(&tb, 1000));
	assert_int_equal(sl_server_token_bucket_wait_ms(&tb, 1000), 501);
	assert_false(sl_server_token_bucket_take(&tb, 1400));
	assert_true(sl_server_token_bucket_take(&tb, 1500));
	assert_false(sl_server_token_bucket_take(&tb, 1500));
	/* a long pause refills only up to the burst */
	for (int i = 0; i < 3; i++)
		assert_true(sl_server_token_bucket_take(&tb, 100000));
	assert_false(sl_server_token_bucket_take(&tb, 100000));
	/* a clock going backwards adds nothing */
	assert_false(sl_server_token_bucket_take(&tb, 50));
}

static void listen_parse(void **state)
{
	struct sockaddr_storage ss;
	unsigned len;
	struct sl_error err = {0};

	len = sizeof(ss);
	assert_int_equal(sl_server_parse_listen(":8888", &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8888);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));
	len = sizeof(ss);
	assert_int_equal(sl_server_parse_listen("localhost:0", &ss, &len, &err), 0);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	len = sizeof(ss);
	assert_int_equal(sl_server_parse_listen("[::1]:9090", &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	len = sizeof(ss);
	assert_int_equal(sl_server_parse_listen("8888", &ss, &len, &err), SL_EINVALID);
	assert_int_equal(sl_server_parse_listen(":99999", &ss, &len, &err), SL_EINVALID);
	assert_int_equal(sl_server_parse_listen(":", &ss, &len, &err), SL_EINVALID);
	assert_int_equal(sl_server_parse_listen("example.com:80", &ss, &len, &err), SL_EINVALID);
	assert_int_equal(sl_server_parse_listen("::1:80", &ss, &len, &err), SL_EINVALID);
}

/* ---- the server on a loop ---------------------------------------------------- */

struct http_case {
	const char *method, *path, *body, *header;
	long status; /* out */
	char reply[4096];
	size_t reply_len;
};

struct client {
	unsigned port;
	struct http_case *cases;
	size_t n;
	volatile int done;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct http_case *c = ud;
	size_t len = sz * n, room = sizeof(c->reply) - 1 - c->reply_len;
	memcpy(c->reply + c->reply_len, p, SL_MIN(len, room));
	c->reply_len += SL_MIN(len, room);
	c->reply[c->reply_len] = 0;
	return len;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	for (size_t i = 0; i < cl->n; i++) {
		struct http_case *c = &cl->cases[i];
		CURL *h = curl_easy_init();
		struct curl_slist *hdr = NULL;
		char url[256];
		snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", cl->port, c->path);
		curl_easy_setopt(h, CURLOPT_URL, url);
		if (strcmp(c->method, "HEAD") == 0)
			curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		else
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
		if (c->body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
		}
		if (c->header) {
			hdr = curl_slist_append(hdr, c->header);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		}
		CURLcode cr = curl_easy_perform(h);
		if (cr != CURLE_OK)
			fprintf(stderr, "# %s %s: %s\n", c->method, c->path, curl_easy_strerror(cr));
		if (cr == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
		curl_slist_free_all(hdr);
		curl_easy_cleanup(h);
	}
	cl->done = 1;
	return NULL;
}

struct app {
	bool ready;
	int triggers;
};

static bool app_ready(void *payload, const char **why)
{
	struct app *a = payload;
	if (!a->ready)
		*why = "caches not synced";
	return a->ready;
}

static void app_trigger(void *payload)
{
	((struct app *)payload)->triggers++;
}

static void run_cases(struct sl_loop *loop, unsigned port, struct http_case *cases, size_t n)
{
	struct client cl = {.port = port, .cases = cases, .n = n};
	pthread_t t;
	uint64_t end = sl_now_ms() + 20000;

	assert_int_equal(pthread_create(&t, NULL, client_main, &cl), 0);
	while (!cl.done && sl_now_ms() < end)
		sl_loop_run_once(loop, 20);
	pthread_join(t, NULL);
	assert_true(cl.done);
}

static void server_endpoints(void **state)
{
	struct sl_loop *loop;
	struct sl_server_metrics *m;
	struct sl_server *s;
	struct sl_error err = {0};
	struct app app = {0};
	char secret_path[] = "/tmp/sluice-test-secret-XXXXXX";
	int fd = mkstemp(secret_path);
	char sig[128], big[3000];

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "It's a Secret to Everybody\n", 27), 27);
	close(fd);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	snprintf(
	    sig, sizeof(sig),
	    "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");

	assert_int_equal(sl_loop_new(&loop), 0);
	assert_int_equal(sl_server_metrics_new(&m), 0);
	struct sl_server_opts o = {
	    .listen = "127.0.0.1:0",
	    .ready = app_ready,
	    .started = app_ready,
	    .metrics = m,
	    .webhook_secret_file = secret_path,
	    .trigger = app_trigger,
	    .max_body = 2048,
	    .webhook_rate = 0.001,
	    .webhook_burst = 4,
	    .payload = &app,
	};
	assert_int_equal(sl_server_new(loop, &o, &s, &err), 0);
	assert_true(sl_server_port(s) > 0);

	struct http_case first[] = {
	    {"GET", "/healthz"},
	    {"GET", "/health"},
	    {"GET", "/readyz"},
	    {"GET", "/health/ready"},
	    {"GET", "/startup"},
	    {"GET", "/nope"},
	    {"DELETE", "/readyz"},
	    {"GET", "/hooks/git"},
	    {"POST", "/hooks/git", "Hello, World!", sig},                              /* accepted */
	    {"POST", "/hooks/git", "Hello, World?", sig},                              /* forbidden */
	    {"POST", "/hooks/git", "Hello, World!", NULL},                             /* unauthorized */
	    {"POST", "/hooks/git", big, sig},                                          /* too large */
	    {"POST", "/hooks/git", "x", "X-Gitlab-Token: It's a Secret to Everybody"}, /* rate limited */
	    {"GET", "/metrics"},
	};
	run_cases(loop, sl_server_port(s), first, SL_ARRAY_SIZE(first));
	assert_int_equal(first[0].status, 200);
	assert_string_equal(first[0].reply, "ok\n");
	assert_int_equal(first[1].status, 200);
	assert_int_equal(first[2].status, 503);
	assert_string_equal(first[2].reply, "not ready: caches not synced\n");
	assert_int_equal(first[3].status, 503);
	assert_int_equal(first[4].status, 503);
	assert_int_equal(first[5].status, 404);
	assert_int_equal(first[6].status, 405);
	assert_int_equal(first[7].status, 405);
	assert_int_equal(first[8].status, 202);
	assert_int_equal(first[9].status, 403);
	assert_null(strstr(first[9].reply, "Secret"));
	assert_int_equal(first[10].status, 401);
	assert_int_equal(first[11].status, 413);
	assert_int_equal(first[12].status, 429);
	assert_int_equal(app.triggers, 1);
	assert_int_equal(first[13].status, 200);
	assert_non_null(
	    strstr(first[13].reply, "sluice_http_requests_total{path=\"/readyz\",code=\"503\"} 1\n"));
	assert_non_null(
	    strstr(first[13].reply, "sluice_http_requests_total{path=\"other\",code=\"404\"} 1\n"));
	assert_non_null(
	    strstr(first[13].reply, "sluice_http_requests_total{path=\"/metrics\",code=\"200\"} 1\n"));
	assert_non_null(strstr(first[13].reply, "sluice_webhook_requests_total{result=\"accepted\"} 1\n"));
	assert_non_null(strstr(first[13].reply, "sluice_webhook_requests_total{result=\"forbidden\"} 1\n"));
	assert_non_null(
	    strstr(first[13].reply, "sluice_webhook_requests_total{result=\"rate_limited\"} 1\n"));
	assert_non_null(strstr(first[13].reply, "sluice_webhook_requests_total{result=\"too_large\"} 1\n"));

	app.ready = true;
	struct http_case second[] = {{"GET", "/readyz"}, {"HEAD", "/startup"}};
	run_cases(loop, sl_server_port(s), second, SL_ARRAY_SIZE(second));
	assert_int_equal(second[0].status, 200);
	assert_int_equal(second[1].status, 200);

	sl_server_free(s);
	sl_server_metrics_free(m);
	sl_loop_free(loop);
	unlink(secret_path);
}

static void server_refuses_bad_listen(void **state)
{
	struct sl_loop *loop;
	struct sl_server *s = NULL, *s2 = NULL;
	struct sl_error err = {0};
	char addr[64];

	assert_int_equal(sl_loop_new(&loop), 0);
	struct sl_server_opts o = {.listen = "nohost"};
	assert_int_equal(sl_server_new(loop, &o, &s, &err), SL_EINVALID);
	o.listen = "127.0.0.1:0";
	assert_int_equal(sl_server_new(loop, &o, &s, &err), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", sl_server_port(s));
	o.listen = addr;
	assert_int_equal(sl_server_new(loop, &o, &s2, &err), SL_EIO);
	assert_non_null(strstr(err.msg, addr));
	sl_server_free(s);
	sl_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(metrics_text_format),
	    cmocka_unit_test(metrics_refuses_misuse),
	    cmocka_unit_test(metrics_collectors_run_on_render),
	    cmocka_unit_test(metrics_histogram_copied),
	    cmocka_unit_test(hmac_known_vectors),
	    cmocka_unit_test(webhook_verify_github_and_gitlab),
	    cmocka_unit_test(token_bucket_limits_and_refills),
	    cmocka_unit_test(listen_parse),
	    cmocka_unit_test(server_endpoints),
	    cmocka_unit_test(server_refuses_bad_listen),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
