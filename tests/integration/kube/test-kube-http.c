/* The client under conditions a healthy cluster does not produce on demand,
 * against a loopback HTTP server speaking the API's wire format
 * (fake-apiserver.py): 429 and 503 with Retry-After retried as told, 503
 * without it reported at once, a body over the limit, a request timeout, a
 * watch line over the limit (stream dropped, relisted, no crash), a 410
 * ERROR event inside a watch (relist), connections closed before the answer
 * (a read retried, a create not) and a server gone silent (probed, given up
 * long before the request's own timeout). */
#include "ktest.h"
#include "config.h"

#include <signal.h>
#include <unistd.h>

static struct sl_kube *k;
static char dir[] = "/tmp/kt-http-XXXXXX";
static int port;
static pid_t server;

static int get(const char *name, unsigned timeout_ms, struct kt_res *r)
{
	struct sl_kube_ref ref = {
	    .api_version = "v1", .resource = "configmaps", .namespaced = true, .ns = "t", .name = name};
	struct sl_kube_call_opts o = {.timeout_ms = timeout_ms};
	kt_res_clear(r);
	sl_kube_get(k, &ref, &o, kt_cb, r);
	kt_wait(r, 30000);
	return r->code;
}

static void retries(void)
{
	struct kt_res r = {0};
	uint64_t t0 = sl_now_ms(), retried = sl_kube_get_metrics(k)->retries;

	CHECK(get("retry", 0, &r) == 0, "429 then 200: %s", r.err);
	CHECK(sl_now_ms() - t0 >= 900, "waited as Retry-After said: %llu ms",
	      (unsigned long long)(sl_now_ms() - t0));
	CHECK(sl_kube_get_metrics(k)->retries == retried + 1, "one retry");
	CHECK(sl_kube_get_metrics(k)->requests[SL_KUBE_VERB_GET][429] == 1, "429 counted");
	t0 = sl_now_ms();
	CHECK(get("unavailable", 0, &r) == SL_EUNAVAILABLE && r.status == 503, "503: %d", r.code);
	CHECK(!strcmp(r.message, "down") && sl_now_ms() - t0 < 900, "at once, with the server's message: %s",
	      r.message);
	CHECK(get("unavailable-retry", 0, &r) == 0, "503 with Retry-After retried: %s", r.err);
	CHECK(get("missing", 0, &r) == SL_ENOTFOUND, "404");
	kt_res_clear(&r);
}

static void limits(void)
{
	struct kt_res r = {0};
	uint64_t t0;

	CHECK(get("big", 0, &r) == SL_ETOOLARGE, "body over the limit: %d %s", r.code, r.err);
	printf("# %s\n", r.err);
	t0 = sl_now_ms();
	CHECK(get("slow", 500, &r) == SL_ETIMEOUT, "timeout: %d %s", r.code, r.err);
	CHECK(sl_now_ms() - t0 < 2500, "gave up in time: %llu ms", (unsigned long long)(sl_now_ms() - t0));
	kt_res_clear(&r);
}

struct stats {
	int lists, watches, hangup, hangup_post, version;
};

static void server_stats(struct stats *s);

static void hangups(void)
{
	struct kt_res r = {0};
	struct sl_kube_ref ref = {
	    .api_version = "v1", .resource = "configmaps", .namespaced = true, .ns = "t"};
	struct sl_kube_call_opts o = {.field_manager = "t"};
	cJSON *body = kt_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"}}");
	struct stats s;
	uint64_t retries;

	CHECK(get("hangup", 0, &r) == 0, "a GET whose connection closed twice without an answer: %d %s",
	      r.code, r.err);
	kt_res_clear(&r);
	retries = sl_kube_get_metrics(k)->retries;
	sl_kube_create(k, &ref, body, &o, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_EIO && r.status == 0, "a create whose connection closed fails: %d %s", r.code,
	      r.err);
	server_stats(&s);
	CHECK(s.hangup == 3, "the GET was sent three times: %d", s.hangup);
	/* curl itself sends a request again once when a reused connection
	 * turns out closed; sluice does not repeat a create */
	CHECK(sl_kube_get_metrics(k)->retries == retries, "the create was not retried by sluice");
	CHECK(s.hangup_post <= 2, "the create was sent at most twice: %d", s.hangup_post);
	kt_res_clear(&r);
	cJSON_Delete(body);
}

/* With read_idle_ms and probe_timeout_ms of 1 s (main): a request whose
 * server says nothing is given up after about 2 s, not its own 20 s. */
static void silent(void)
{
	struct kt_res r = {0};
	uint64_t t0 = sl_now_ms(), probes = sl_kube_get_metrics(k)->probes;
	uint64_t dropped = sl_kube_get_metrics(k)->dropped;

	CHECK(get("silent", 20000, &r) == SL_ETIMEOUT, "silent server: %d %s", r.code, r.err);
	printf("# %s (%llu ms)\n", r.err, (unsigned long long)(sl_now_ms() - t0));
	CHECK(sl_now_ms() - t0 < 6000, "given up in %llu ms", (unsigned long long)(sl_now_ms() - t0));
	CHECK(strstr(r.err, "given up"), "says why: %s", r.err);
	CHECK(sl_kube_get_metrics(k)->probes > probes, "probed");
	CHECK(sl_kube_get_metrics(k)->dropped == dropped + 1, "connections given up once");
	kt_res_clear(&r);
}

static void server_stats(struct stats *s)
{
	char cmd[256], buf[256] = "";
	FILE *p;
	snprintf(cmd, sizeof(cmd), "curl -sf http://127.0.0.1:%d/stats", port);
	p = popen(cmd, "r");
	if (p) {
		if (!fgets(buf, sizeof(buf), p))
			buf[0] = '\0';
		pclose(p);
	}
	cJSON *j = cJSON_Parse(buf);
	s->lists = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "lists"));
	s->watches = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "watches"));
	s->hangup = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "hangup"));
	s->hangup_post = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "hangup_post"));
	s->version = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "version"));
	cJSON_Delete(j);
}

static int adds, dels, errors;
static void on_add(const cJSON *o, void *p)
{
	adds++;
}
static void on_del(const cJSON *o, void *p)
{
	dels++;
}
static void on_error(const struct sl_error *e, void *p)
{
	errors++;
	printf("# informer: %s\n", e->msg);
}

static bool third_watch(void *p)
{
	struct stats s;
	static uint64_t last;
	if (sl_now_ms() - last < 300)
		return false;
	last = sl_now_ms();
	server_stats(&s);
	return s.watches >= 3;
}

static void watch_limits(void)
{
	struct sl_kube_informer *inf;
	struct sl_kube_informer_opts o = {
	    .ref = {.api_version = "v1", .resource = "configmaps", .namespaced = true, .ns = "t"},
	    .backoff_min_ms = 100,
	    .backoff_max_ms = 200};
	struct sl_kube_informer_handlers h = {.add = on_add, .del = on_del, .error = on_error};
	struct sl_error err = {0};
	struct stats s;
	uint64_t relists = sl_kube_get_metrics(k)->relists;

	CHECK(sl_kube_informer_new(k, &o, &h, NULL, &inf, &err) == 0, "new");
	sl_kube_informer_start(inf);
	CHECK(kt_until(third_watch, NULL, 20000), "watched three times");
	server_stats(&s);
	/* list (a), watch: b added, then a line too long -> dropped, relist (b);
	 * watch: ERROR 410 -> relist (b); watch again */
	CHECK(s.lists == 3, "lists %d", s.lists);
	CHECK(sl_kube_get_metrics(k)->relists - relists == 2, "two relists");
	CHECK(sl_kube_informer_count(inf) == 1 && sl_kube_informer_get(inf, "t", "b"), "cache holds b only");
	CHECK(!sl_kube_informer_get(inf, "t", "huge"), "the over-long object never got in");
	CHECK(adds == 2 && dels == 1, "add a, add b, delete a (noticed on relist): %d %d", adds, dels);
	CHECK(errors >= 2, "errors reported: %d", errors);
	sl_kube_informer_free(inf);
}

int main(void)
{
	char cmd[1024], portfile[128], kc[256], text[1024];
	const char *root = getenv("SLUICE_SOURCE_ROOT") ? getenv("SLUICE_SOURCE_ROOT") : SLUICE_SOURCE_ROOT;
	struct sl_kube_config *cfg;
	struct sl_kube_opts ko = {
	    .max_body = 1 << 20, .max_watch_line = 1024, .read_idle_ms = 1000, .probe_timeout_ms = 1000};
	struct sl_error err = {0};
	FILE *f;

	if (!mkdtemp(dir) || sl_loop_new(&kt_loop) < 0)
		return 1;
	snprintf(portfile, sizeof(portfile), "%s/port", dir);
	server = fork();
	if (server == 0) {
		snprintf(cmd, sizeof(cmd), "%s/tests/integration/kube/fake-apiserver.py", root);
		execlp("python3", "python3", cmd, portfile, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && access(portfile, R_OK) != 0; i++)
		usleep(100000);
	f = fopen(portfile, "r");
	if (!f || fscanf(f, "%d", &port) != 1) {
		printf("Bail out! fake API server did not start\n");
		kill(server, SIGTERM);
		return 1;
	}
	fclose(f);
	snprintf(text, sizeof(text),
	         "current-context: x\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
	         "users: [{name: u, user: {token: t0k3n}}]\ncontexts: [{name: x, context: {cluster: c, user: "
	         "u}}]\n",
	         port);
	snprintf(kc, sizeof(kc), "%s/kubeconfig", dir);
	f = fopen(kc, "w");
	fputs(text, f);
	fclose(f);
	if (sl_kube_config_parse(text, strlen(text), NULL, dir, false, &cfg, &err) < 0 ||
	    sl_kube_new(kt_loop, cfg, &ko, &k, &err) < 0) {
		printf("Bail out! %s\n", err.msg);
		kill(server, SIGTERM);
		return 1;
	}
	kt_plan(5);
	kt_run(1, "429 and 503 with Retry-After are retried as told", retries);
	kt_run(2, "body limit and request timeout", limits);
	kt_run(3, "watch line over the limit and 410 ERROR event: relist, no crash", watch_limits);
	kt_run(4, "connection closed before the answer: a read retried, a create not", hangups);
	kt_run(5, "a silent server is probed and given up", silent);
	sl_kube_free(k);
	sl_loop_free(kt_loop);
	kill(server, SIGTERM);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return kt_exit();
}
