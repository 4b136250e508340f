/* Benchmark driver for bench/kube-create and bench/kube-watch:
 *   kube-bench create NS COUNT CONCURRENCY   creates ConfigMaps through the client
 *   kube-bench watch NS COUNT [trim]          lists and watches them with an informer
 *                                             (trim: keeping only identity and labels)
 * Prints "metric<TAB>value<TAB>unit" lines. Uses $KUBECONFIG. */
#include "sluice/kube.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sl_loop *loop;
static int done, failed;
static char first_err[1024];

static void created(struct sl_kube_result *res, void *payload)
{
	done++;
	if (res->code && !failed++)
		snprintf(first_err, sizeof(first_err), "%s", res->err.msg);
}

static long rss_kib(void)
{
	/* freed page buffers are given back first: count what the cache keeps */
	malloc_trim(0);
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			v = atol(line + 6);
	if (f)
		fclose(f);
	return v;
}

static struct sl_kube *client(void)
{
	struct sl_kube_config_opts o = {.kubeconfig = getenv("KUBECONFIG")};
	struct sl_kube_config *cfg;
	struct sl_kube *k;
	struct sl_error err = {0};
	if (sl_kube_config_load(&o, &cfg, &err) < 0 || sl_kube_new(loop, cfg, NULL, &k, &err) < 0) {
		fprintf(stderr, "kube-bench: %s\n", err.msg);
		exit(1);
	}
	return k;
}

static int create(const char *ns, int count, unsigned conc)
{
	struct sl_kube *k = client();
	struct sl_kube_ref ref = {
	    .api_version = "v1", .resource = "configmaps", .namespaced = true, .ns = ns};
	uint64_t start = sl_now_ms(), ms;
	int started = 0;

	while (done < count) {
		while (started < count && sl_kube_inflight(k) < conc) {
			char body[256];
			cJSON *o;
			snprintf(body, sizeof(body),
			         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm-%"
			         "05d\","
			         "\"labels\":{\"bench\":\"kube\"}},\"data\":{\"index\":\"%d\",\"payload\":\"%"
			         "064d\"}}",
			         started, started, started);
			o = cJSON_Parse(body);
			if (!o || sl_kube_create(k, &ref, o, NULL, created, NULL) < 0) {
				fprintf(stderr, "kube-bench: cannot queue a create\n");
				return 1;
			}
			cJSON_Delete(o);
			started++;
		}
		sl_loop_run_once(loop, 1000);
	}
	ms = sl_now_ms() - start;
	if (failed)
		fprintf(stderr, "kube-bench: %d creates failed, first: %s\n", failed, first_err);
	printf("client_create_objects_per_s\t%.0f\tobjects/s\n", count * 1000.0 / (double)(ms ? ms : 1));
	printf("client_create_seconds\t%.2f\ts\n", ms / 1000.0);
	printf("client_create_concurrency\t%u\trequests\n", conc);
	printf("client_create_failed\t%d\tobjects\n", failed);
	sl_kube_free(k);
	return failed ? 1 : 0;
}

static void got_it(struct sl_kube_result *res, void *p)
{
	*(int *)p = 1;
}

static bool synced;
static void on_synced(void *p)
{
	synced = true;
}

/* What a controller that needs only identity and labels would keep. */
static void keep_identity(cJSON *o, void *p)
{
	static const char *const drop[] = {"data", "binaryData"};
	static const char *const mdrop[] = {"managedFields", "uid", "creationTimestamp", "annotations"};
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	for (size_t i = 0; i < SL_ARRAY_SIZE(drop); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(o, drop[i]);
	for (size_t i = 0; i < SL_ARRAY_SIZE(mdrop); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(meta, mdrop[i]);
}

static int watch(const char *ns, int count, bool trim)
{
	long before, after;
	struct sl_kube *k;
	struct sl_kube_informer *inf;
	struct sl_kube_informer_opts o = {.ref = {.api_version = "v1", .kind = "ConfigMap", .ns = ns},
	                                  .label_selector = "bench=kube"};
	struct sl_kube_informer_handlers h = {.synced = on_synced, .transform = trim ? keep_identity : NULL};
	const char *tag = trim ? "informer_trimmed" : "informer";
	struct sl_error err = {0};
	uint64_t start;
	size_t n;

	k = client();
	/* a first request warms up TLS and discovery, so the figure below is the cache */
	{
		struct sl_kube_ref ref = {.api_version = "v1", .kind = "Namespace", .name = ns};
		int got = 0;
		sl_kube_get(k, &ref, NULL, got_it, &got);
		while (!got)
			sl_loop_run_once(loop, 1000);
	}
	before = rss_kib();
	start = sl_now_ms();
	if (sl_kube_informer_new(k, &o, &h, NULL, &inf, &err) < 0 || sl_kube_informer_start(inf) < 0) {
		fprintf(stderr, "kube-bench: %s\n", err.msg);
		return 1;
	}
	while (!synced)
		sl_loop_run_once(loop, 1000);
	printf("%s_list_seconds\t%.2f\ts\n", tag, (sl_now_ms() - start) / 1000.0);
	/* let the watch open and settle */
	for (uint64_t end = sl_now_ms() + 2000; sl_now_ms() < end;)
		sl_loop_run_once(loop, 100);
	after = rss_kib();
	n = sl_kube_informer_count(inf);
	printf("%s_cached_objects\t%zu\tobjects\n", tag, n);
	printf("%s_cache_rss\t%ld\tKiB\n", tag, after - before);
	printf("%s_bytes_per_object\t%.0f\tbytes\n", tag, n ? (after - before) * 1024.0 / (double)n : 0);
	printf("%s_process_rss\t%ld\tKiB\n", tag, after);
	sl_kube_informer_free(inf);
	sl_kube_free(k);
	return (int)n == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	int r;
	if (argc < 4 || sl_loop_new(&loop) < 0) {
		fprintf(stderr, "usage: kube-bench create NS COUNT CONCURRENCY | watch NS COUNT\n");
		return 2;
	}
	if (!strcmp(argv[1], "create") && argc == 5)
		r = create(argv[2], atoi(argv[3]), (unsigned)atoi(argv[4]));
	else if (!strcmp(argv[1], "watch"))
		r = watch(argv[2], atoi(argv[3]), argc > 4 && !strcmp(argv[4], "trim"));
	else
		r = 2;
	sl_loop_free(loop);
	return r;
}
