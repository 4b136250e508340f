/* Benchmark driver for bench/kube-create and bench/kube-watch:
 *   kube-bench create NS COUNT CONCURRENCY   creates ConfigMaps through the client
 *   kube-bench watch NS COUNT [trim]          lists and watches them with an informer
 *                                             (trim: keeping only identity and labels)
 *   kube-bench stream-writes NS APIVERSION KIND PLURAL COUNT CONCURRENCY JOBFILE
 *                                             the writes the stream controller makes for
 *                                             COUNT new streams s00000...: a status merge
 *                                             patch, a Job (JOBFILE, renamed) and an Event
 *                                             each; the raw baseline of bench/stream-converge
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

/* A Job as the controller built it, renamed and stripped of what the
 * server set (and of its owner: the uid would not match). */
static cJSON *job_for(const cJSON *tmpl, const char *name, const char *ns)
{
	static const char *const mdrop[] = {"uid",           "resourceVersion", "creationTimestamp",
	                                    "managedFields", "ownerReferences", "generation",
	                                    "selfLink"};
	cJSON *j = cJSON_Duplicate(tmpl, true), *md;

	if (!j)
		return NULL;
	cJSON_DeleteItemFromObjectCaseSensitive(j, "status");
	md = cJSON_GetObjectItemCaseSensitive(j, "metadata");
	for (size_t i = 0; i < SL_ARRAY_SIZE(mdrop); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(md, mdrop[i]);
	/* the server adds the selector and its labels to a new Job */
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(j, "spec");
	cJSON_DeleteItemFromObjectCaseSensitive(spec, "selector");
	cJSON *tmd =
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "template"), "metadata");
	cJSON *tl = cJSON_GetObjectItemCaseSensitive(tmd, "labels");
	static const char *const ldrop[] = {"controller-uid", "batch.kubernetes.io/controller-uid",
	                                    "job-name", "batch.kubernetes.io/job-name"};
	for (size_t i = 0; i < SL_ARRAY_SIZE(ldrop); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(tl, ldrop[i]);
	cJSON_ReplaceItemInObjectCaseSensitive(md, "name", cJSON_CreateString(name));
	cJSON_ReplaceItemInObjectCaseSensitive(md, "namespace", cJSON_CreateString(ns));
	return j;
}

/* The status the controller writes for a stream that runs its Job. */
static cJSON *status_for(const char *job)
{
	char body[1024];

	snprintf(body, sizeof(body),
	         "{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":"
	         "\"True\",\"phase\":\"Running\",\"reason\":\"Running\",\"message\":\"Job %s is running "
	         "(raw)\",\"lastTransitionTime\":\"2026-01-01T00:00:00Z\",\"observedGeneration\":1}],"
	         "\"observedGeneration\":1,\"jobName\":\"%s\",\"configurationHash\":"
	         "\"0123456789abcdef0123456789abcdef/0123456789ab\",\"backfillRequest\":null}}",
	         job, job);
	return cJSON_Parse(body);
}

static int stream_writes(char **argv)
{
	const char *ns = argv[2], *api_version = argv[3], *kind = argv[4], *plural = argv[5];
	int count = atoi(argv[6]);
	unsigned conc = (unsigned)atoi(argv[7]);
	struct sl_kube *k = client();
	struct sl_buf file = {0};
	struct sl_error err = {0};
	struct sl_kube_ref jobs = {
	    .api_version = "batch/v1", .resource = "jobs", .namespaced = true, .ns = ns};
	struct sl_kube_ref st = {.api_version = api_version,
	                         .resource = plural,
	                         .namespaced = true,
	                         .ns = ns,
	                         .subresource = "status"};
	cJSON *tmpl;
	uint64_t start, ms;
	int started = 0, total = 3 * count;

	if (sl_file_read(argv[8], 16 << 20, &file, &err) < 0 || !(tmpl = cJSON_Parse(file.data))) {
		fprintf(stderr, "kube-bench: %s: %s\n", argv[8], err.msg[0] ? err.msg : "not JSON");
		return 1;
	}
	sl_buf_free(&file);
	start = sl_now_ms();
	while (done < total) {
		while (started < total && sl_kube_inflight(k) < conc) {
			int i = started / 3, r = 0;
			char name[64], jname[80], uid[64];
			cJSON *o = NULL;

			snprintf(name, sizeof(name), "s%05d", i);
			snprintf(jname, sizeof(jname), "%s-raw", name);
			switch (started % 3) {
			case 0:
				st.name = name;
				o = status_for(jname);
				r = o ? sl_kube_patch(k, &st, SL_KUBE_PATCH_MERGE, o, NULL, created, NULL)
				      : -1;
				break;
			case 1:
				o = job_for(tmpl, jname, ns);
				r = o ? sl_kube_create(k, &jobs, o, NULL, created, NULL) : -1;
				break;
			case 2:
				snprintf(uid, sizeof(uid), "raw-uid-%05d", i);
				o = cJSON_CreateObject();
				cJSON *md = cJSON_AddObjectToObject(o, "metadata");
				cJSON_AddStringToObject(o, "apiVersion", api_version);
				cJSON_AddStringToObject(o, "kind", kind);
				cJSON_AddStringToObject(md, "name", name);
				cJSON_AddStringToObject(md, "namespace", ns);
				cJSON_AddStringToObject(md, "uid", uid);
				r = sl_kube_event(k, o, "Normal", "Running", "Running: raw write", created,
				                  NULL);
				break;
			}
			cJSON_Delete(o);
			if (r < 0) {
				fprintf(stderr, "kube-bench: cannot queue a write\n");
				return 1;
			}
			started++;
		}
		sl_loop_run_once(loop, 1000);
	}
	ms = sl_now_ms() - start;
	cJSON_Delete(tmpl);
	if (failed)
		fprintf(stderr, "kube-bench: %d writes failed, first: %s\n", failed, first_err);
	printf("raw_writes\t%d\twrites\n", total);
	printf("raw_writes_seconds\t%.2f\ts\n", ms / 1000.0);
	printf("raw_writes_per_s\t%.0f\twrites/s\n", total * 1000.0 / (double)(ms ? ms : 1));
	printf("raw_writes_concurrency\t%u\trequests\n", conc);
	printf("raw_writes_failed\t%d\twrites\n", failed);
	sl_kube_free(k);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	int r;
	if (argc < 4 || sl_loop_new(&loop) < 0) {
		fprintf(stderr, "usage: kube-bench create NS COUNT CONCURRENCY | watch NS COUNT [trim] |\n"
		                "       stream-writes NS APIVERSION KIND PLURAL COUNT CONCURRENCY JOBFILE\n");
		return 2;
	}
	if (!strcmp(argv[1], "create") && argc == 5)
		r = create(argv[2], atoi(argv[3]), (unsigned)atoi(argv[4]));
	else if (!strcmp(argv[1], "stream-writes") && argc == 9)
		r = stream_writes(argv);
	else if (!strcmp(argv[1], "watch"))
		r = watch(argv[2], atoi(argv[3]), argc > 4 && !strcmp(argv[4], "trim"));
	else
		r = 2;
	sl_loop_free(loop);
	return r;
}
