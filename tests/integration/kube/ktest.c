/* TAP harness and synchronous wrappers for the kube integration tests. */
#include "ktest.h"

#include <unistd.h>

int kt_failed;
struct sl_loop *kt_loop;
static int total_failed;

void kt_plan(int n)
{
	printf("1..%d\n", n);
	fflush(stdout);
}

void kt_run(int n, const char *name, void (*fn)(void))
{
	kt_failed = 0;
	fn();
	printf("%s %d - %s\n", kt_failed ? "not ok" : "ok", n, name);
	fflush(stdout);
	if (kt_failed)
		total_failed++;
}

void kt_require_cluster(void)
{
	const char *k = it_kubeconfig();
	if (!k || !*k || access(k, R_OK) != 0) {
		printf(
		    "1..0 # SKIP no cluster: set SLUICE_TEST_KUBECONFIG or KUBECONFIG (tests/cluster/up)\n");
		fflush(stdout);
		exit(0);
	}
	it_require_cluster();
}

int kt_exit(void)
{
	return total_failed ? 1 : 0;
}

void kt_cb(struct sl_kube_result *res, void *payload)
{
	struct kt_res *r = payload;
	r->done = true;
	r->code = res->code;
	r->status = res->http_status;
	r->body = res->body;
	res->body = NULL;
	r->pages = res->pages;
	snprintf(r->message, sizeof(r->message), "%s", res->message);
	snprintf(r->reason, sizeof(r->reason), "%s", res->reason);
	snprintf(r->field, sizeof(r->field), "%s", res->field);
	snprintf(r->err, sizeof(r->err), "%s", res->err.msg);
}

bool kt_until(bool (*cond)(void *payload), void *payload, int timeout_ms)
{
	uint64_t end = sl_now_ms() + (uint64_t)timeout_ms;
	while (!cond(payload)) {
		uint64_t now = sl_now_ms();
		if (now >= end)
			return false;
		sl_loop_run_once(kt_loop, (int)SL_MIN(end - now, 200u));
	}
	return true;
}

static bool res_done(void *p)
{
	return ((struct kt_res *)p)->done;
}

bool kt_wait(struct kt_res *r, int timeout_ms)
{
	bool ok = kt_until(res_done, r, timeout_ms);
	if (!ok)
		printf("# timed out waiting for a call\n");
	return ok;
}

void kt_res_clear(struct kt_res *r)
{
	cJSON_Delete(r->body);
	memset(r, 0, sizeof(*r));
}

struct sl_kube *kt_client(const char *kubeconfig)
{
	struct sl_kube_config_opts o = {.kubeconfig = kubeconfig ? kubeconfig : it_kubeconfig()};
	struct sl_kube_config *cfg;
	struct sl_kube *k;
	struct sl_error err = {0};

	if (sl_kube_config_load(&o, &cfg, &err) < 0 || sl_kube_new(kt_loop, cfg, NULL, &k, &err) < 0) {
		printf("Bail out! client: %s\n", err.msg);
		exit(1);
	}
	return k;
}

cJSON *kt_json(const char *text)
{
	cJSON *j = cJSON_Parse(text);
	if (!j) {
		printf("Bail out! bad JSON in test: %s\n", text);
		exit(1);
	}
	return j;
}

const char *kt_str(const cJSON *o, const char *path)
{
	char buf[256], *save = NULL, *tok;
	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save))
		o = cJSON_GetObjectItemCaseSensitive(o, tok);
	return cJSON_IsString(o) ? o->valuestring : NULL;
}
