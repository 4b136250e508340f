/* Benchmark driver for bench/kube-create, kube-watch, stream-converge and
 * completion-wave:
 *   kube-bench create NS COUNT CONCURRENCY   creates ConfigMaps through the client
 *   kube-bench watch NS COUNT [trim]          lists and watches them with an informer
 *                                             (trim: keeping only identity and labels)
 *   kube-bench stream-writes NS APIVERSION KIND PLURAL COUNT CONCURRENCY JOBFILE
 *                                             the writes the stream controller makes for
 *                                             COUNT new streams s00000...: a status merge
 *                                             patch, a Job (JOBFILE, renamed) and an Event
 *                                             each; the raw baseline of bench/stream-converge
 *   kube-bench wave-writes NS APIVERSION KIND PLURAL COUNT CONCURRENCY JOBFILE FINISHCONC
 *                                             a backfill completion wave as an ideal
 *                                             controller makes it: COUNT Jobs written
 *                                             complete (FINISHCONC at a time) and, for each
 *                                             stream s00000... whose Job is, the writes the
 *                                             stream controller makes then, one after the
 *                                             other, CONCURRENCY streams at a time: its
 *                                             BackfillRequest completed (merge patch), a
 *                                             status merge patch, the finished Job deleted,
 *                                             a Job (JOBFILE, renamed) created and an
 *                                             Event; what it completes and deletes is made
 *                                             first (not timed); the raw baseline of
 *                                             bench/completion-wave. The stream writes go
 *                                             as $KUBE_BENCH_WRITER_KUBECONFIG when set
 *   kube-bench job-finish NS CONCURRENCY NAMESFILE
 *                                             writes the Jobs named in NAMESFILE (one a
 *                                             line) complete, as a Job controller would
 * Prints "metric<TAB>value<TAB>unit" lines. Uses $KUBECONFIG. */
#include "sluice/kube.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static struct sl_loop *loop;
static int done, failed;
static char first_err[1024];

static void created(struct sl_kube_result *res, void *payload)
{
	done++;
	if (res->code && !failed++)
		snprintf(first_err, sizeof(first_err), "%s", res->err.msg);
}

/* CPU seconds (user and system) this process used so far. */
static double cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* This thread's scheduling so far: the seconds it waited on a run queue
 * for a CPU, and how many times it got one (schedstat's third field). */
static double runq_wait_s(unsigned long long *ret_slices)
{
	FILE *f = fopen("/proc/thread-self/schedstat", "r");
	unsigned long long run, wait = 0, slices = 0;

	if (f) {
		if (fscanf(f, "%llu %llu %llu", &run, &wait, &slices) != 3)
			wait = slices = 0;
		fclose(f);
	}
	*ret_slices = slices;
	return (double)wait / 1e9;
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

/* kubeconfig NULL: $KUBECONFIG */
static struct sl_kube *client_of(const char *kubeconfig)
{
	struct sl_kube_config_opts o = {.kubeconfig = kubeconfig ? kubeconfig : getenv("KUBECONFIG")};
	/* told apart from sluice in an audit log */
	struct sl_kube_opts ko = {.user_agent = "kube-bench"};
	struct sl_kube_config *cfg;
	struct sl_kube *k;
	struct sl_error err = {0};
	if (sl_kube_config_load(&o, &cfg, &err) < 0 || sl_kube_new(loop, cfg, &ko, &k, &err) < 0) {
		fprintf(stderr, "kube-bench: %s\n", err.msg);
		exit(1);
	}
	return k;
}

static struct sl_kube *client(void)
{
	return client_of(NULL);
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

/* The status a Job controller writes for a Job whose one pod succeeded. */
static cJSON *complete_status(void)
{
	char now[32], body[1024];

	sl_time_rfc3339((int64_t)time(NULL), now);
	snprintf(body, sizeof(body),
	         "{\"status\":{\"startTime\":\"%s\",\"completionTime\":\"%s\",\"succeeded\":1,"
	         "\"active\":0,\"conditions\":[{\"type\":\"SuccessCriteriaMet\",\"status\":\"True\","
	         "\"reason\":\"CompletionsReached\",\"lastTransitionTime\":\"%s\"},{\"type\":"
	         "\"Complete\",\"status\":\"True\",\"reason\":\"CompletionsReached\","
	         "\"lastTransitionTime\":\"%s\"}]}}",
	         now, now, now, now);
	return cJSON_Parse(body);
}

#define WAVE_WRITES 5

static void made_job(struct sl_kube_result *res, void *payload)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(res->body, "metadata");
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "uid"));

	if (uid)
		snprintf(payload, 64, "%s", uid);
	created(res, NULL);
}

/* Runs fill(i, ...) for i in 0..total-1, conc at a time; 0 when all went
 * through. */
static int run_writes(struct sl_kube *k, int total, unsigned conc,
                      int (*fill)(struct sl_kube *k, int i, void *ctx), void *ctx)
{
	int started = 0;

	done = failed = 0;
	while (done < total) {
		while (started < total && sl_kube_inflight(k) < conc) {
			if (fill(k, started, ctx) < 0) {
				fprintf(stderr, "kube-bench: cannot queue a write\n");
				return -1;
			}
			started++;
		}
		sl_loop_run_once(loop, 1000);
	}
	if (failed)
		fprintf(stderr, "kube-bench: %d writes failed, first: %s\n", failed, first_err);
	return failed;
}

struct wave {
	struct sl_kube *k, *wk; /* wk: the controller's writes */
	const char *ns, *api_version, *kind, *plural;
	const cJSON *tmpl;
	cJSON *complete;
	char (*uids)[64];
	int *ready; /* streams whose Job is complete, in that order */
	int n_ready, next_ready, finishing, chains, chains_done;
	struct chain {
		struct wave *wv;
		int i, step;
	} * ch;
};

static int wave_setup(struct sl_kube *k, int w, void *ctx)
{
	struct wave *wv = ctx;
	int i = w / 2, r;
	char name[64], body[512];
	cJSON *o;

	if (w % 2 == 0) {
		struct sl_kube_ref ref = {.api_version = "streaming.sneaksanddata.com/v1",
		                          .resource = "backfillrequests",
		                          .namespaced = true,
		                          .ns = wv->ns};
		snprintf(body, sizeof(body),
		         "{\"apiVersion\":\"streaming.sneaksanddata.com/v1\",\"kind\":"
		         "\"BackfillRequest\",\"metadata\":{\"name\":\"s%05d-raw\"},\"spec\":{"
		         "\"streamClass\":\"%s\",\"streamId\":\"s%05d-raw\",\"completed\":false}}",
		         i, wv->ns, i);
		o = cJSON_Parse(body);
		r = o ? sl_kube_create(k, &ref, o, NULL, created, NULL) : -1;
	} else {
		struct sl_kube_ref ref = {
		    .api_version = "batch/v1", .resource = "jobs", .namespaced = true, .ns = wv->ns};
		snprintf(name, sizeof(name), "s%05d-rawb", i);
		o = job_for(wv->tmpl, name, wv->ns);
		r = o ? sl_kube_create(k, &ref, o, NULL, made_job, wv->uids[i]) : -1;
	}
	cJSON_Delete(o);
	return r;
}

static int wave_step(struct chain *c);

/* One write of a stream's chain answered: the next one, or the chain ends. */
static void chain_next(struct sl_kube_result *res, void *payload)
{
	struct chain *c = payload;

	if (res->code && !failed++)
		snprintf(first_err, sizeof(first_err), "%s", res->err.msg);
	if (++c->step < WAVE_WRITES && wave_step(c) == 0)
		return;
	c->wv->chains--;
	c->wv->chains_done++;
}

/* The write step of stream c->i: what the controller does, in its order. */
static int wave_step(struct chain *c)
{
	struct wave *wv = c->wv;
	struct sl_kube *k = wv->wk;
	struct sl_kube_call_opts co = {.field_manager = "kube-bench"};
	struct sl_kube_ref ref = {.namespaced = true, .ns = wv->ns};
	char name[64], jname[80], uid[64];
	cJSON *o = NULL, *md;
	int r;

	snprintf(name, sizeof(name), "s%05d", c->i);
	switch (c->step) {
	case 0:
		ref.api_version = "streaming.sneaksanddata.com/v1";
		ref.resource = "backfillrequests";
		snprintf(jname, sizeof(jname), "%s-raw", name);
		ref.name = jname;
		o = cJSON_Parse("{\"spec\":{\"completed\":true}}");
		r = o ? sl_kube_patch(k, &ref, SL_KUBE_PATCH_MERGE, o, &co, chain_next, c) : -1;
		break;
	case 1:
		ref.api_version = wv->api_version;
		ref.resource = wv->plural;
		ref.name = name;
		ref.subresource = "status";
		snprintf(jname, sizeof(jname), "%s-raw", name);
		o = status_for(jname);
		r = o ? sl_kube_patch(k, &ref, SL_KUBE_PATCH_MERGE, o, &co, chain_next, c) : -1;
		break;
	case 2:
		/* finished: nothing runs, so in the background, as the controller does */
		ref.api_version = "batch/v1";
		ref.resource = "jobs";
		snprintf(jname, sizeof(jname), "%s-rawb", name);
		ref.name = jname;
		co.propagation = "Background";
		co.precondition_uid = wv->uids[c->i];
		r = sl_kube_delete(k, &ref, &co, chain_next, c);
		break;
	case 3:
		ref.api_version = "batch/v1";
		ref.resource = "jobs";
		snprintf(jname, sizeof(jname), "%s-raw", name);
		o = job_for(wv->tmpl, jname, wv->ns);
		r = o ? sl_kube_create(k, &ref, o, &co, chain_next, c) : -1;
		break;
	default:
		snprintf(uid, sizeof(uid), "raw-uid-%05d", c->i);
		o = cJSON_CreateObject();
		md = cJSON_AddObjectToObject(o, "metadata");
		cJSON_AddStringToObject(o, "apiVersion", wv->api_version);
		cJSON_AddStringToObject(o, "kind", wv->kind);
		cJSON_AddStringToObject(md, "name", name);
		cJSON_AddStringToObject(md, "namespace", wv->ns);
		cJSON_AddStringToObject(md, "uid", uid);
		r = sl_kube_event(k, o, "Normal", "Running", "Running: raw write", chain_next, c);
		break;
	}
	cJSON_Delete(o);
	if (r < 0)
		fprintf(stderr, "kube-bench: cannot queue a write\n");
	return r;
}

struct fin {
	struct wave *wv;
	int i;
};

static void finished(struct sl_kube_result *res, void *payload)
{
	struct fin *f = payload;

	if (res->code && !failed++)
		snprintf(first_err, sizeof(first_err), "%s", res->err.msg);
	f->wv->finishing--;
	f->wv->ready[f->wv->n_ready++] = f->i;
}

/* The wave as an ideal controller makes it: every Job written complete
 * (fconc at a time, as bench/completion-wave does), and each stream whose
 * completion was answered goes through its writes one after the other,
 * conc streams at a time (the controller's workers). */
static int wave_run(struct wave *wv, int count, unsigned fconc, unsigned conc)
{
	struct sl_kube_ref st = {.api_version = "batch/v1",
	                         .resource = "jobs",
	                         .namespaced = true,
	                         .ns = wv->ns,
	                         .subresource = "status"};
	struct fin *fins = calloc((size_t)count, sizeof(*fins));
	int started = 0;
	char jname[64];

	wv->ready = calloc((size_t)count, sizeof(*wv->ready));
	wv->ch = calloc((size_t)count, sizeof(*wv->ch));
	if (!fins || !wv->ready || !wv->ch)
		return -1;
	failed = 0;
	while (wv->chains_done < count) {
		while (started < count && (unsigned)wv->finishing < fconc) {
			fins[started] = (struct fin){wv, started};
			snprintf(jname, sizeof(jname), "s%05d-rawb", started);
			st.name = jname;
			if (sl_kube_patch(wv->k, &st, SL_KUBE_PATCH_MERGE, wv->complete, NULL, finished,
			                  &fins[started]) < 0)
				return -1;
			wv->finishing++;
			started++;
		}
		while (wv->next_ready < wv->n_ready && (unsigned)wv->chains < conc) {
			struct chain *c = &wv->ch[wv->next_ready];
			*c = (struct chain){wv, wv->ready[wv->next_ready++], 0};
			wv->chains++;
			if (wave_step(c) < 0)
				return -1;
		}
		sl_loop_run_once(loop, 1000);
	}
	free(fins);
	return 0;
}

static int wave_writes(char **argv)
{
	int count = atoi(argv[6]);
	unsigned conc = (unsigned)atoi(argv[7]), fconc = (unsigned)atoi(argv[9]);
	struct wave wv = {.ns = argv[2], .api_version = argv[3], .kind = argv[4], .plural = argv[5]};
	struct sl_buf file = {0};
	struct sl_error err = {0};
	cJSON *tmpl;
	uint64_t start, ms;
	double cpu0, wait0;
	unsigned long long slices0, slices1;

	wv.k = client();
	/* the controller's identity, as its requests cost the API server
	 * (authentication and authorization) */
	wv.wk =
	    getenv("KUBE_BENCH_WRITER_KUBECONFIG") ? client_of(getenv("KUBE_BENCH_WRITER_KUBECONFIG")) : wv.k;
	if (count <= 0 || sl_file_read(argv[8], 16 << 20, &file, &err) < 0 ||
	    !(tmpl = cJSON_Parse(file.data))) {
		fprintf(stderr, "kube-bench: %s: %s\n", argv[8], err.msg[0] ? err.msg : "not JSON");
		return 1;
	}
	sl_buf_free(&file);
	wv.tmpl = tmpl;
	wv.complete = complete_status();
	wv.uids = calloc((size_t)count, sizeof(*wv.uids));
	if (!wv.uids || !wv.complete || run_writes(wv.k, 2 * count, 64, wave_setup, &wv))
		return 1;
	start = sl_now_ms();
	cpu0 = cpu_s();
	wait0 = runq_wait_s(&slices0);
	if (wave_run(&wv, count, fconc, conc) < 0) {
		fprintf(stderr, "kube-bench: cannot queue a write\n");
		return 1;
	}
	ms = sl_now_ms() - start;
	if (failed)
		fprintf(stderr, "kube-bench: %d writes failed, first: %s\n", failed, first_err);
	printf("raw_writes\t%d\twrites\n", WAVE_WRITES * count);
	printf("raw_finish_writes\t%d\twrites\n", count);
	printf("raw_writes_seconds\t%.2f\ts\n", ms / 1000.0);
	printf("raw_writes_per_s\t%.0f\twrites/s\n",
	       (WAVE_WRITES + 1) * count * 1000.0 / (double)(ms ? ms : 1));
	printf("raw_writes_concurrency\t%u\trequests\n", conc);
	printf("raw_writes_cpu_seconds\t%.1f\ts\n", cpu_s() - cpu0);
	printf("raw_writes_cpu_wait_seconds\t%.1f\ts\n", runq_wait_s(&slices1) - wait0);
	printf("raw_writes_timeslices\t%llu\ttimes\n", slices1 - slices0);
	printf("raw_writes_failed\t%d\twrites\n", failed);
	cJSON_Delete(tmpl);
	cJSON_Delete(wv.complete);
	free(wv.uids);
	free(wv.ready);
	free(wv.ch);
	if (wv.wk != wv.k)
		sl_kube_free(wv.wk);
	sl_kube_free(wv.k);
	return failed ? 1 : 0;
}

static int job_finish(char **argv)
{
	const char *ns = argv[2];
	unsigned conc = (unsigned)atoi(argv[3]);
	struct sl_kube *k = client();
	struct sl_kube_ref st = {.api_version = "batch/v1",
	                         .resource = "jobs",
	                         .namespaced = true,
	                         .ns = ns,
	                         .subresource = "status"};
	cJSON *patch = complete_status();
	char line[256];
	FILE *f = fopen(argv[4], "r");
	uint64_t start;
	int started = 0;

	if (!f || !patch) {
		fprintf(stderr, "kube-bench: %s: cannot read\n", argv[4]);
		return 1;
	}
	start = sl_now_ms();
	for (;;) {
		bool more = true;
		while (more && sl_kube_inflight(k) < conc) {
			more = fgets(line, sizeof(line), f) != NULL;
			line[strcspn(line, "\r\n")] = '\0';
			if (!more || !line[0])
				continue;
			st.name = line;
			if (sl_kube_patch(k, &st, SL_KUBE_PATCH_MERGE, patch, NULL, created, NULL) < 0) {
				fprintf(stderr, "kube-bench: cannot queue a write\n");
				return 1;
			}
			started++;
		}
		if (!more && done >= started)
			break;
		sl_loop_run_once(loop, 1000);
	}
	fclose(f);
	cJSON_Delete(patch);
	if (failed)
		fprintf(stderr, "kube-bench: %d writes failed, first: %s\n", failed, first_err);
	printf("finish_jobs\t%d\tJobs\n", started);
	printf("finish_seconds\t%.2f\ts\n", (sl_now_ms() - start) / 1000.0);
	printf("finish_failed\t%d\twrites\n", failed);
	sl_kube_free(k);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	int r;
	if (argc < 4 || sl_loop_new(&loop) < 0) {
		fprintf(
		    stderr,
		    "usage: kube-bench create NS COUNT CONCURRENCY | watch NS COUNT [trim] |\n"
		    "       stream-writes NS APIVERSION KIND PLURAL COUNT CONCURRENCY JOBFILE |\n"
		    "       wave-writes NS APIVERSION KIND PLURAL COUNT CONCURRENCY JOBFILE FINISHCONC |\n"
		    "       job-finish NS CONCURRENCY NAMESFILE\n");
		return 2;
	}
	if (!strcmp(argv[1], "create") && argc == 5)
		r = create(argv[2], atoi(argv[3]), (unsigned)atoi(argv[4]));
	else if (!strcmp(argv[1], "stream-writes") && argc == 9)
		r = stream_writes(argv);
	else if (!strcmp(argv[1], "wave-writes") && argc == 10)
		r = wave_writes(argv);
	else if (!strcmp(argv[1], "job-finish") && argc == 5)
		r = job_finish(argv);
	else if (!strcmp(argv[1], "watch"))
		r = watch(argv[2], atoi(argv[3]), argc > 4 && !strcmp(argv[4], "trim"));
	else
		r = 2;
	sl_loop_free(loop);
	return r;
}
