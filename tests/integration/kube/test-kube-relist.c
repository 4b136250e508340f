/* Relists on a control plane of its own (tests/cluster/up in a temporary
 * directory): kube-apiserver killed and restarted mid-watch while objects
 * are deleted, created and changed; then the same with etcd's history
 * compacted through its v3 HTTP/JSON gateway. Each ends with the informer's
 * cache equal to the server's list and every delete reported. */
#include "ktest.h"
#include "config.h"

#include <unistd.h>

static char top[] = "/tmp/kt-relist-XXXXXX", dir[64];
static char kc[600], ns[] = "relist";
static const char *src_root;
static struct sl_kube *k;
static struct sl_kube_informer *inf;

#define NAMES 64
static bool deleted[NAMES], added[NAMES];

static int idx(const cJSON *o)
{
	const char *n = kt_str(o, "metadata.name");
	int i = n && !strncmp(n, "cm-", 3) ? atoi(n + 3) : -1;
	return i >= 0 && i < NAMES ? i : -1;
}
static void on_add(const cJSON *o, void *p)
{
	int i = idx(o);
	if (i >= 0) {
		added[i] = true;
		deleted[i] = false;
	}
}
static void on_del(const cJSON *o, void *p)
{
	int i = idx(o);
	if (i >= 0)
		deleted[i] = true;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct lines {
	char *v[NAMES * 2];
	int n;
};

static void collect(const cJSON *o, void *p)
{
	struct lines *l = p;
	if (l->n < NAMES * 2)
		l->v[l->n++] = sl_asprintf("%s=%s", kt_str(o, "metadata.name") ?: "?",
		                           kt_str(o, "metadata.resourceVersion") ?: "?");
}

/* The informer's cache as sorted "name=rv" lines, against kubectl's list. */
static bool cache_equals_server(void *unused)
{
	struct lines l = {0};
	struct sl_buf want;
	char *out = NULL, *p;
	bool eq;
	static uint64_t last;

	/* ask the server at most twice a second */
	if (sl_now_ms() - last < 500)
		return false;
	last = sl_now_ms();
	if (it_kubectl(&out, NULL,
	               "-n %s get configmaps -l kt=r -o jsonpath='{range "
	               ".items[*]}{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}'",
	               ns) != 0) {
		free(out);
		return false;
	}
	sl_kube_informer_foreach(inf, collect, &l);
	qsort(l.v, (size_t)l.n, sizeof(char *), cmp);
	sl_buf_init(&want, 1 << 20);
	for (int i = 0; i < l.n; i++) {
		sl_buf_printf(&want, "%s\n", l.v[i]);
		free(l.v[i]);
	}
	/* kubectl lists sorted by name too */
	p = out ? out : "";
	eq = strcmp(p, want.data ? want.data : "") == 0;
	sl_buf_free(&want);
	free(out);
	return eq;
}

static void run_loop_ms(int ms)
{
	uint64_t end = sl_now_ms() + (uint64_t)ms;
	while (sl_now_ms() < end)
		sl_loop_run_once(kt_loop, 50);
}

static int restart_apiserver(void)
{
	/* kill it, wait until it is gone, start it again with the same flags */
	if (sh("pid=$(cat '%s/apiserver.pid'); kill $pid; for i in $(seq 1 100); do kill -0 $pid 2>/dev/null "
	       "|| "
	       "break; sleep 0.1; done; kill -9 $pid 2>/dev/null; true",
	       dir) != 0)
		return -1;
	return sh(
	    "cd '%s' && { '%s' $(cat apiserver.args) >>logs/apiserver.log 2>&1 & echo $! >apiserver.pid; } "
	    "&& "
	    "for i in $(seq 1 300); do '%s' --kubeconfig '%s' get --raw /readyz >/dev/null 2>&1 && exit 0; "
	    "sleep 0.2; done; exit 1",
	    dir, getenv("KT_APISERVER"), it_kubectl_path(), kc);
}

static void mutate(int del_from, int del_to, int add_from, int add_to, int modify)
{
	char yaml[8192];
	size_t n = 0;
	CHECK(sh("'%s' --kubeconfig '%s' -n %s delete configmap $(seq -f 'cm-%%02g' %d %d) >/dev/null",
	         it_kubectl_path(), kc, ns, del_from, del_to) == 0,
	      "delete");
	for (int i = add_from; i <= add_to; i++)
		n += (size_t)snprintf(
		    yaml + n, sizeof(yaml) - n,
		    "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%02d, labels: {kt: r}}\n", i);
	CHECK(it_kubectl(NULL, yaml, "-n %s apply -f -", ns) == 0, "create");
	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s patch configmap cm-%02d --type merge -p '{\"data\":{\"x\":\"changed\"}}'", ns,
	                 modify) == 0,
	      "modify");
}

static void check_after(int del_from, int del_to, int add_from, int add_to)
{
	CHECK(kt_until(cache_equals_server, NULL, 90000), "cache equals the server's list");
	for (int i = del_from; i <= del_to; i++)
		CHECK(deleted[i], "delete of cm-%02d reported", i);
	for (int i = add_from; i <= add_to; i++)
		CHECK(added[i] && !deleted[i], "add of cm-%02d reported", i);
	printf("# relists %llu, watch restarts %llu\n", (unsigned long long)sl_kube_get_metrics(k)->relists,
	       (unsigned long long)sl_kube_get_metrics(k)->watch_restarts);
}

static void apiserver_restart(void)
{
	uint64_t relists = sl_kube_get_metrics(k)->relists;
	CHECK(restart_apiserver() == 0, "kube-apiserver restarted");
	/* the informer's loop does not run meanwhile: it is disconnected while
	 * objects change, as after a long outage */
	mutate(0, 4, 30, 32, 10);
	check_after(0, 4, 30, 32);
	CHECK(sl_kube_get_metrics(k)->relists > relists, "relisted");
}

static void etcd_compaction(void)
{
	uint64_t relists = sl_kube_get_metrics(k)->relists;
	FILE *f;
	char url[256] = "", path[700];

	snprintf(path, sizeof(path), "%s/etcd-url", dir);
	f = fopen(path, "r");
	if (f) {
		if (!fgets(url, sizeof(url), f))
			url[0] = '\0';
		fclose(f);
	}
	url[strcspn(url, "\r\n")] = '\0';
	CHECK(url[0], "etcd url");
	CHECK(restart_apiserver() == 0, "kube-apiserver restarted");
	mutate(5, 9, 33, 35, 11);
	/* compact etcd at its current revision: the informer's resourceVersion is history now */
	CHECK(sh("rev=$(curl -sf -X POST '%s/v3/kv/range' -d '{\"key\":\"AA==\"}' | "
	         "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"header\"][\"revision\"])') && "
	         "curl -sf -X POST '%s/v3/kv/compaction' -d "
	         "\"{\\\"revision\\\":\\\"$rev\\\",\\\"physical\\\":true}\" "
	         ">/dev/null && echo \"# compacted etcd at revision $rev\"",
	         url, url) == 0,
	      "etcd compaction");
	fflush(stdout);
	check_after(5, 9, 33, 35);
	CHECK(sl_kube_get_metrics(k)->relists > relists, "relisted");
}

int main(void)
{
	char bin[1024], yaml[8192];
	size_t n = 0;
	const char *b = getenv("SLUICE_CLUSTER_BIN");
	struct sl_kube_informer_opts o = {.ref = {.api_version = "v1", .kind = "ConfigMap", .ns = ns},
	                                  .label_selector = "kt=r",
	                                  .page_size = 7,
	                                  .backoff_min_ms = 200,
	                                  .backoff_max_ms = 2000};
	struct sl_kube_informer_handlers h = {.add = on_add, .del = on_del};
	struct sl_error err = {0};
	bool ok = false;

	src_root = getenv("SLUICE_SOURCE_ROOT") ? getenv("SLUICE_SOURCE_ROOT") : SLUICE_SOURCE_ROOT;
	/* the binaries of tests/cluster/build: $SLUICE_CLUSTER_BIN, this build's, or the
	 * default build/ of the source tree (where tests/cluster/up looks) */
	if (b && *b)
		snprintf(yaml, sizeof(yaml), "%s", b);
	else {
		snprintf(yaml, sizeof(yaml), "%s/cluster/bin", SLUICE_BUILD_ROOT);
		if (!sl_snprintf_ok(bin, sizeof(bin), "%s/kube-apiserver", yaml) || access(bin, X_OK) != 0)
			snprintf(yaml, sizeof(yaml), "%s/build/cluster/bin", src_root);
	}
	if (!sl_snprintf_ok(bin, sizeof(bin), "%s/kube-apiserver", yaml) || access(bin, X_OK) != 0) {
		printf("1..0 # SKIP no control plane binaries (%s): run tests/cluster/build\n", bin);
		return 0;
	}
	setenv("SLUICE_CLUSTER_BIN", yaml, 1);
	setenv("KT_APISERVER", bin, 1);
	if (!getenv("SLUICE_KUBECTL")) {
		if (!sl_snprintf_ok(bin, sizeof(bin), "%s/kubectl", yaml)) {
			printf("Bail out! path too long: %s\n", yaml);
			return 1;
		}
		setenv("SLUICE_KUBECTL", bin, 1);
	}
	if (!mkdtemp(top))
		return 1;
	snprintf(dir, sizeof(dir), "%s/c", top);
	kt_plan(2);
	/* whatever happens to this process, its control plane goes with it */
	sh("(while kill -0 %d 2>/dev/null; do sleep 1; done; '%s/tests/cluster/down' '%s'; rm -rf '%s') "
	   ">/dev/null 2>&1 </dev/null &",
	   (int)getpid(), src_root, dir, top);
	if (sh("'%s/tests/cluster/up' '%s' >/dev/null", src_root, dir) != 0) {
		printf("Bail out! tests/cluster/up failed\n");
		sh("'%s/tests/cluster/down' '%s'; rm -rf '%s'", src_root, dir, top);
		return 1;
	}
	snprintf(kc, sizeof(kc), "%s/kubeconfig", dir);
	setenv("SLUICE_TEST_KUBECONFIG", kc, 1);
	kt_require_cluster();
	if (sl_loop_new(&kt_loop) < 0)
		return 1;
	for (int i = 0; i < 30; i++)
		n += (size_t)snprintf(
		    yaml + n, sizeof(yaml) - n,
		    "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%02d, labels: {kt: r}}\n", i);
	if (it_kubectl(NULL, NULL, "create namespace %s", ns) != 0 ||
	    it_kubectl(NULL, yaml, "-n %s apply -f -", ns) != 0) {
		printf("Bail out! setup\n");
		goto out;
	}
	k = kt_client(kc);
	if (sl_kube_informer_new(k, &o, &h, NULL, &inf, &err) < 0 || sl_kube_informer_start(inf) < 0) {
		printf("Bail out! informer: %s\n", err.msg);
		goto out;
	}
	if (!kt_until(cache_equals_server, NULL, 30000)) {
		printf("Bail out! first list\n");
		goto out;
	}
	run_loop_ms(500); /* the watch is open */
	kt_run(1, "relist after kube-apiserver is killed and restarted mid-watch", apiserver_restart);
	run_loop_ms(500);
	kt_run(2, "relist after etcd history is compacted", etcd_compaction);
	ok = true;
out:
	sl_kube_informer_free(inf);
	sl_kube_free(k);
	sl_loop_free(kt_loop);
	sh("'%s/tests/cluster/down' '%s'", src_root, dir);
	sh("rm -rf '%s'", top);
	return ok ? kt_exit() : 1;
}
