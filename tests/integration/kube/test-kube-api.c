/* Every verb against the real API server: a custom resource of our own
 * (kubetest.sluice.dev Widget) and Jobs; server-side apply conflicts and
 * force; the errors a caller acts on (not found, exists, conflict, invalid
 * with its field, forbidden for the restricted identity); 1,000 objects
 * listed in pages of 100; Events, and repeated ones aggregated; a delete
 * with a stale uid precondition. */
#include "ktest.h"

#include <unistd.h>

static struct sl_kube *k;
static char ns[64];

static const char crd[] = "apiVersion: apiextensions.k8s.io/v1\n"
                          "kind: CustomResourceDefinition\n"
                          "metadata: {name: widgets.kubetest.sluice.dev}\n"
                          "spec:\n"
                          "  group: kubetest.sluice.dev\n"
                          "  scope: Namespaced\n"
                          "  names: {plural: widgets, singular: widget, kind: Widget}\n"
                          "  versions:\n"
                          "  - name: v1\n"
                          "    served: true\n"
                          "    storage: true\n"
                          "    subresources: {status: {}}\n"
                          "    schema:\n"
                          "      openAPIV3Schema:\n"
                          "        type: object\n"
                          "        properties:\n"
                          "          spec:\n"
                          "            type: object\n"
                          "            properties:\n"
                          "              size: {type: integer}\n"
                          "              color: {type: string}\n"
                          "          status:\n"
                          "            type: object\n"
                          "            properties:\n"
                          "              phase: {type: string}\n";

static struct sl_kube_ref widget(const char *name)
{
	return (struct sl_kube_ref){
	    .api_version = "kubetest.sluice.dev/v1", .kind = "Widget", .ns = ns, .name = name};
}

static double num(const cJSON *o, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a), b);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void crd_verbs(void)
{
	struct kt_res r = {0};
	struct sl_kube_ref ref = widget("w1");
	struct sl_kube_call_opts fm = {.field_manager = "kt"};
	struct sl_kube_resource res;
	char obj[512], rv[64];
	cJSON *o;

	/* discovery learns the kind that just appeared */
	CHECK(sl_kube_discover_cached(k, "kubetest.sluice.dev/v1", "Widget", &res) == SL_ENOTFOUND,
	      "cache empty");

	snprintf(
	    obj, sizeof(obj),
	    "{\"apiVersion\":\"kubetest.sluice.dev/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w1\","
	    "\"namespace\":\"%s\"},\"spec\":{\"size\":1}}",
	    ns);
	o = kt_json(obj);
	CHECK(sl_kube_create(k, &ref, o, &fm, kt_cb, &r) == 0, "create queued");
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && r.status == 201, "create: %d %ld %s", r.code, r.status, r.err);
	CHECK(kt_str(r.body, "metadata.uid") != NULL, "created object returned");
	kt_res_clear(&r);
	CHECK(sl_kube_discover_cached(k, "kubetest.sluice.dev/v1", "Widget", &res) == 0, "now cached");
	CHECK(!strcmp(res.plural, "widgets") && res.namespaced, "plural %s", res.plural);

	/* create again: already exists */
	sl_kube_create(k, &ref, o, &fm, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_EEXIST && r.status == 409, "exists: %d %ld", r.code, r.status);
	CHECK(!strcmp(r.reason, "AlreadyExists"), "reason %s", r.reason);
	kt_res_clear(&r);

	/* get */
	sl_kube_get(k, &ref, NULL, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && num(r.body, "spec", "size") == 1, "get: %s", r.err);
	snprintf(rv, sizeof(rv), "%s", kt_str(r.body, "metadata.resourceVersion") ?: "");
	kt_res_clear(&r);

	/* update (PUT) with the current resourceVersion, then with a stale one */
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(o, "spec"), "size", cJSON_CreateNumber(2));
	cJSON_AddStringToObject(cJSON_GetObjectItem(o, "metadata"), "resourceVersion", rv);
	sl_kube_update(k, NULL, o, &fm, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && r.status == 200 && num(r.body, "spec", "size") == 2, "update: %s", r.err);
	kt_res_clear(&r);
	sl_kube_update(k, NULL, o, &fm, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_ECONFLICT && r.status == 409, "stale update: %d %ld", r.code, r.status);
	kt_res_clear(&r);
	cJSON_Delete(o);

	/* merge patch and JSON patch */
	o = kt_json("{\"spec\":{\"color\":\"blue\"}}");
	sl_kube_patch(k, &ref, SL_KUBE_PATCH_MERGE, o, &fm, kt_cb, &r);
	cJSON_Delete(o);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && !strcmp(kt_str(r.body, "spec.color") ?: "", "blue"), "merge patch: %s", r.err);
	kt_res_clear(&r);
	o = kt_json("[{\"op\":\"replace\",\"path\":\"/spec/size\",\"value\":3}]");
	sl_kube_patch(k, &ref, SL_KUBE_PATCH_JSON, o, &fm, kt_cb, &r);
	cJSON_Delete(o);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && num(r.body, "spec", "size") == 3, "json patch: %s", r.err);
	kt_res_clear(&r);
	o = kt_json("[{\"op\":\"test\",\"path\":\"/spec/size\",\"value\":99}]");
	sl_kube_patch(k, &ref, SL_KUBE_PATCH_JSON, o, &fm, kt_cb, &r);
	cJSON_Delete(o);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_EINVALID || r.code == SL_ECONFLICT, "failed json patch test op: %d %ld", r.code,
	      r.status);
	kt_res_clear(&r);

	/* server-side apply, then the status subresource */
	snprintf(
	    obj, sizeof(obj),
	    "{\"apiVersion\":\"kubetest.sluice.dev/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w1\","
	    "\"namespace\":\"%s\"},\"spec\":{\"size\":4}}",
	    ns);
	o = kt_json(obj);
	{
		struct sl_kube_call_opts ao = {.field_manager = "kt", .force = true};
		sl_kube_apply(k, NULL, o, &ao, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && num(r.body, "spec", "size") == 4, "apply: %s", r.err);
	kt_res_clear(&r);
	cJSON_Delete(o);
	snprintf(
	    obj, sizeof(obj),
	    "{\"apiVersion\":\"kubetest.sluice.dev/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w1\","
	    "\"namespace\":\"%s\"},\"status\":{\"phase\":\"Ready\"}}",
	    ns);
	o = kt_json(obj);
	{
		struct sl_kube_ref sref = widget("w1");
		struct sl_kube_call_opts ao = {.field_manager = "sluice-controller", .force = true};
		sref.subresource = "status";
		sl_kube_apply(k, &sref, o, &ao, kt_cb, &r);
	}
	cJSON_Delete(o);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && !strcmp(kt_str(r.body, "status.phase") ?: "", "Ready"), "status apply: %s",
	      r.err);
	kt_res_clear(&r);
	sl_kube_get(k, &ref, NULL, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(!strcmp(kt_str(r.body, "status.phase") ?: "", "Ready") && num(r.body, "spec", "size") == 4,
	      "status kept apart from spec");
	kt_res_clear(&r);

	/* dry run: answered, not stored */
	snprintf(
	    obj, sizeof(obj),
	    "{\"apiVersion\":\"kubetest.sluice.dev/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w2\","
	    "\"namespace\":\"%s\"},\"spec\":{\"size\":7}}",
	    ns);
	o = kt_json(obj);
	{
		struct sl_kube_call_opts ao = {.field_manager = "kt", .dry_run = true};
		sl_kube_apply(k, NULL, o, &ao, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && num(r.body, "spec", "size") == 7, "dry-run apply: %s", r.err);
	kt_res_clear(&r);
	{
		struct sl_kube_ref w2 = widget("w2");
		sl_kube_get(k, &w2, NULL, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == SL_ENOTFOUND && r.status == 404, "dry run stored nothing: %d", r.code);
	kt_res_clear(&r);
	cJSON_Delete(o);

	/* invalid: the server's message and the field */
	snprintf(
	    obj, sizeof(obj),
	    "{\"apiVersion\":\"kubetest.sluice.dev/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w3\","
	    "\"namespace\":\"%s\"},\"spec\":{\"size\":\"large\"}}",
	    ns);
	o = kt_json(obj);
	sl_kube_create(k, NULL, o, &fm, kt_cb, &r);
	cJSON_Delete(o);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_EINVALID && r.status == 422, "invalid: %d %ld", r.code, r.status);
	CHECK(strstr(r.field, "spec.size") != NULL, "field '%s'", r.field);
	CHECK(strstr(r.message, "spec.size") != NULL, "message '%s'", r.message);
	printf("# invalid object error: %s\n", r.err);
	kt_res_clear(&r);

	/* list, delete, and the object is gone */
	{
		struct sl_kube_ref all = widget(NULL);
		sl_kube_list(k, &all, NULL, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && cJSON_GetArraySize(cJSON_GetObjectItem(r.body, "items")) == 1, "list: %s",
	      r.err);
	kt_res_clear(&r);
	sl_kube_delete(k, &ref, NULL, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == 0, "delete: %s", r.err);
	kt_res_clear(&r);
	sl_kube_get(k, &ref, NULL, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_ENOTFOUND, "deleted: %d", r.code);
	kt_res_clear(&r);
	sl_kube_delete(k, &ref, NULL, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_ENOTFOUND, "delete twice: %d", r.code);
	kt_res_clear(&r);

	/* a kind that appears later in a group/version already cached: the
	 * discovery cache is refreshed on the unknown kind */
	{
		static const char gizmo[] =
		    "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
		    "metadata: {name: gizmos.kubetest.sluice.dev}\nspec:\n  group: kubetest.sluice.dev\n"
		    "  scope: Cluster\n  names: {plural: gizmos, singular: gizmo, kind: Gizmo}\n  versions:\n"
		    "  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n"
		    "        type: object\n        x-kubernetes-preserve-unknown-fields: true\n";
		struct sl_kube_ref gz = {.api_version = "kubetest.sluice.dev/v1", .kind = "Gizmo"};
		CHECK(it_kubectl(NULL, gizmo, "apply -f -") == 0 &&
		          it_kubectl(NULL, NULL,
		                     "wait --for condition=established --timeout=60s "
		                     "crd/gizmos.kubetest.sluice.dev") == 0,
		      "gizmo CRD");
		sl_kube_list(k, &gz, NULL, kt_cb, &r);
		kt_wait(&r, 30000);
		CHECK(r.code == 0, "kind found after refresh: %s", r.err);
		CHECK(sl_kube_discover_cached(k, "kubetest.sluice.dev/v1", "Gizmo", &res) == 0 &&
		          !res.namespaced && !strcmp(res.plural, "gizmos"),
		      "cluster-scoped gizmos");
		kt_res_clear(&r);
	}

	/* a kind the server does not know */
	{
		struct sl_kube_ref nope = {
		    .api_version = "kubetest.sluice.dev/v1", .kind = "Gadget", .ns = ns, .name = "x"};
		sl_kube_get(k, &nope, NULL, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == SL_ENOTFOUND && strstr(r.err, "Gadget"), "unknown kind: %d %s", r.code, r.err);
	kt_res_clear(&r);
}

static void job_verbs(void)
{
	struct kt_res r = {0};
	struct sl_kube_ref ref = {.api_version = "batch/v1", .kind = "Job", .ns = ns, .name = "j1"};
	struct sl_kube_call_opts fm = {.field_manager = "sluice-controller"};
	char now[32], patch[256];
	cJSON *o;

	o = kt_json("{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"j1\"},\"spec\":{"
	            "\"template\":{\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"c\","
	            "\"image\":\"busybox\",\"command\":[\"true\"]}]}}}}");
	sl_kube_create(k, &ref, o, &fm, kt_cb, &r);
	cJSON_Delete(o);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && r.status == 201, "create job: %s", r.err);
	CHECK(!strcmp(kt_str(r.body, "metadata.namespace") ?: "", ns), "namespace from the ref");
	kt_res_clear(&r);

	o = kt_json("{\"metadata\":{\"labels\":{\"arcane/backfilling\":\"false\"}}}");
	sl_kube_patch(k, &ref, SL_KUBE_PATCH_MERGE, o, &fm, kt_cb, &r);
	cJSON_Delete(o);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && !strcmp(kt_str(r.body, "metadata.labels.arcane/backfilling") ?: "", "false"),
	      "patch job: %s", r.err);
	kt_res_clear(&r);

	/* the status subresource, as the job controller would write it */
	sl_time_rfc3339(sl_wall_s(), now);
	snprintf(patch, sizeof(patch), "{\"status\":{\"startTime\":\"%s\"}}", now);
	o = kt_json(patch);
	ref.subresource = "status";
	sl_kube_patch(k, &ref, SL_KUBE_PATCH_MERGE, o, &fm, kt_cb, &r);
	cJSON_Delete(o);
	ref.subresource = NULL;
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && !strcmp(kt_str(r.body, "status.startTime") ?: "", now), "job status: %s", r.err);
	kt_res_clear(&r);

	{
		struct sl_kube_ref all = {.api_version = "batch/v1", .kind = "Job", .ns = ns};
		struct sl_kube_call_opts lo = {.label_selector = "arcane/backfilling=false"};
		sl_kube_list(k, &all, &lo, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && cJSON_GetArraySize(cJSON_GetObjectItem(r.body, "items")) == 1, "list jobs: %s",
	      r.err);
	kt_res_clear(&r);

	/* foreground deletion: the job lingers until the garbage collector is done */
	{
		struct sl_kube_call_opts d = {.propagation = "Foreground"};
		sl_kube_delete(k, &ref, &d, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == 0, "delete job: %s", r.err);
	{
		/* foreground: the answer is the object, marked for deletion, held by the finalizer */
		const cJSON *fin = cJSON_GetObjectItem(cJSON_GetObjectItem(r.body, "metadata"), "finalizers");
		const cJSON *f;
		bool fg = false;
		cJSON_ArrayForEach(f, fin) fg |=
		    cJSON_IsString(f) && !strcmp(f->valuestring, "foregroundDeletion");
		CHECK(fg && kt_str(r.body, "metadata.deletionTimestamp"), "foreground deletion pending");
	}
	/* finishing it is the garbage collector's work, not the client's: a
	 * GC busy with CRD churn of other tests may take long, so stop here */
	kt_res_clear(&r);
	{
		struct sl_kube_call_opts d = {.propagation = "Sideways"};
		CHECK(sl_kube_delete(k, &ref, &d, kt_cb, &r) == SL_EINVALID, "bad propagation refused");
	}
}

static void apply_conflict_and_force(void)
{
	struct kt_res r = {0};
	struct sl_kube_call_opts a = {.field_manager = "owner-a"}, b = {.field_manager = "owner-b"};
	char obj[512];
	cJSON *o;

	snprintf(obj, sizeof(obj),
	         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"contested\","
	         "\"namespace\":\"%s\"},"
	         "\"data\":{\"color\":\"red\"}}",
	         ns);
	o = kt_json(obj);
	sl_kube_apply(k, NULL, o, &a, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == 0, "apply a: %s", r.err);
	kt_res_clear(&r);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(o, "data"), "color", cJSON_CreateString("blue"));
	sl_kube_apply(k, NULL, o, &b, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_ECONFLICT && r.status == 409, "conflict: %d %ld", r.code, r.status);
	CHECK(strstr(r.message, "owner-a") && strstr(r.message, "color"), "names the owner and field: %s",
	      r.message);
	printf("# conflict error: %s\n", r.err);
	kt_res_clear(&r);
	b.force = true;
	sl_kube_apply(k, NULL, o, &b, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && !strcmp(kt_str(r.body, "data.color") ?: "", "blue"), "force: %s", r.err);
	kt_res_clear(&r);
	cJSON_Delete(o);
}

static void restricted_forbidden(void)
{
	struct kt_res r = {0};
	struct sl_kube *rk;
	struct sl_kube_ref pods = {.api_version = "v1", .kind = "Pod", .ns = ns};

	if (!it_kubeconfig_restricted()) {
		printf("# no restricted kubeconfig (SLUICE_TEST_KUBECONFIG_RESTRICTED): not checked\n");
		kt_failed++;
		return;
	}
	rk = kt_client(it_kubeconfig_restricted());
	sl_kube_list(rk, &pods, NULL, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_EFORBIDDEN && r.status == 403, "forbidden: %d %ld %s", r.code, r.status, r.err);
	CHECK(strstr(r.err, "system:serviceaccount:sluice-system:sluice") && strstr(r.err, "pods") &&
	          strstr(r.err, "forbidden"),
	      "readable: %s", r.err);
	printf("# restricted identity: %s\n", r.err);
	kt_res_clear(&r);
	/* what it may do still works */
	{
		struct sl_kube_ref cms = {.api_version = "v1", .kind = "ConfigMap", .ns = ns};
		sl_kube_list(rk, &cms, NULL, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == 0, "restricted list configmaps: %s", r.err);
	kt_res_clear(&r);
	sl_kube_free(rk);
}

struct bulk {
	int started, done, failed;
	int total;
};

static void bulk_cb(struct sl_kube_result *res, void *payload)
{
	struct bulk *b = payload;
	b->done++;
	if (res->code)
		b->failed++;
}

static bool bulk_done(void *p)
{
	struct bulk *b = p;
	return b->done == b->total;
}

static void paged_list(void)
{
	struct bulk b = {.total = 1000};
	struct kt_res r = {0};
	struct sl_kube_ref cm = {.api_version = "v1", .kind = "ConfigMap", .ns = ns};
	struct sl_kube_call_opts lo = {.limit = 100, .label_selector = "kt=page"};
	uint64_t start = sl_now_ms();
	cJSON *it;
	int n = 0;

	/* 1,000 creates, at most 50 in flight */
	while (b.started < b.total) {
		while (b.started < b.total && sl_kube_inflight(k) < 50) {
			char obj[256];
			cJSON *o;
			snprintf(
			    obj, sizeof(obj),
			    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"p-%04d\","
			    "\"labels\":{\"kt\":\"page\"}},\"data\":{\"i\":\"%d\"}}",
			    b.started, b.started);
			o = kt_json(obj);
			CHECK(sl_kube_create(k, &cm, o, NULL, bulk_cb, &b) == 0, "queued");
			cJSON_Delete(o);
			b.started++;
		}
		sl_loop_run_once(kt_loop, 1000);
	}
	kt_until(bulk_done, &b, 120000);
	CHECK(b.done == 1000 && b.failed == 0, "created %d, failed %d", b.done, b.failed);
	printf("# 1000 creates in %llu ms\n", (unsigned long long)(sl_now_ms() - start));

	sl_kube_list(k, &cm, &lo, kt_cb, &r);
	kt_wait(&r, 60000);
	CHECK(r.code == 0, "paged list: %s", r.err);
	CHECK(r.pages == 10, "pages %u", r.pages);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.body, "items"))
	{
		char want[32];
		snprintf(want, sizeof(want), "p-%04d", n);
		if (strcmp(kt_str(it, "metadata.name") ?: "", want) != 0)
			break;
		n++;
	}
	CHECK(n == 1000, "1000 items in order, got %d", n);
	CHECK(kt_str(r.body, "metadata.resourceVersion") != NULL, "list resourceVersion kept");
	CHECK(kt_str(r.body, "metadata.continue") == NULL, "no continue left");
	kt_res_clear(&r);
	CHECK(sl_kube_get_metrics(k)->requests[SL_KUBE_VERB_CREATE][201] >= 1000, "metrics count creates");
	CHECK(sl_kube_get_metrics(k)->requests[SL_KUBE_VERB_LIST][200] >= 10, "metrics count list pages");
	/* one multiplexed HTTP/2 connection, not one per call */
	CHECK(sl_kube_get_metrics(k)->http2 >= 1000, "HTTP/2: %llu",
	      (unsigned long long)sl_kube_get_metrics(k)->http2);
	CHECK(sl_kube_get_metrics(k)->connects <= 4, "connections opened: %llu",
	      (unsigned long long)sl_kube_get_metrics(k)->connects);
	printf("# connections opened so far: %llu\n", (unsigned long long)sl_kube_get_metrics(k)->connects);
}

static void events(void)
{
	struct kt_res r = {0};
	struct sl_kube_ref cm = {.api_version = "v1", .kind = "ConfigMap", .ns = ns, .name = "contested"};
	struct sl_kube_ref evs = {.api_version = "v1", .kind = "Event", .ns = ns};
	struct sl_kube_call_opts lo = {.field_selector = "involvedObject.name=contested"};
	cJSON *obj;

	sl_kube_get(k, &cm, NULL, kt_cb, &r);
	kt_wait(&r, 30000);
	obj = TAKE_PTR(r.body);
	kt_res_clear(&r);
	CHECK(sl_kube_event(k, obj, "Warning", "SyncFailed", "could not apply: the reason", kt_cb, &r) == 0,
	      "event");
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && r.status == 201, "event created: %s", r.err);
	kt_res_clear(&r);
	cJSON_Delete(obj);
	sl_kube_list(k, &evs, &lo, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && cJSON_GetArraySize(cJSON_GetObjectItem(r.body, "items")) == 1,
	      "event listed: %s", r.err);
	CHECK(!strcmp(kt_str(cJSON_GetArrayItem(cJSON_GetObjectItem(r.body, "items"), 0), "reason") ?: "",
	              "SyncFailed"),
	      "reason kept");
	kt_res_clear(&r);
}

/* Callbacks of recorded Events: how many are awaited, answered, failed. */
struct ev_count {
	int want, done, failed;
};

static void ev_cb(struct sl_kube_result *res, void *payload)
{
	struct ev_count *c = payload;
	c->done++;
	c->failed += res->code != 0;
}

static bool ev_all_done(void *payload)
{
	const struct ev_count *c = payload;
	return c->done >= c->want;
}

/* Records an Event n times in a row (no wait between) and waits for every
 * callback. */
static bool record(struct sl_kube *kc, const cJSON *obj, const char *reason, const char *msg, int n)
{
	struct ev_count c = {.want = n};

	for (int i = 0; i < n; i++)
		if (sl_kube_event(kc, obj, "Warning", reason, msg, ev_cb, &c) < 0)
			return false;
	return kt_until(ev_all_done, &c, 30000) && c.failed == 0;
}

/* The Events about object name with reason: how many, and the sum of their
 * counts. */
static int events_about(const char *name, const char *reason, long *count)
{
	struct kt_res r = {0};
	struct sl_kube_ref evs = {.api_version = "v1", .kind = "Event", .ns = ns};
	char sel[256];
	struct sl_kube_call_opts lo = {.field_selector = sel};
	const cJSON *it;
	int n = 0;

	snprintf(sel, sizeof(sel), "involvedObject.name=%s,reason=%s", name, reason);
	*count = 0;
	sl_kube_list(k, &evs, &lo, kt_cb, &r);
	if (!kt_wait(&r, 30000) || r.code)
		return -1;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.body, "items"))
	{
		n++;
		*count += (long)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "count"));
	}
	kt_res_clear(&r);
	return n;
}

static uint64_t writes(struct sl_kube *kc, enum sl_kube_verb v)
{
	uint64_t n = 0;
	for (int s = 0; s < SL_KUBE_STATUS_MAX; s++)
		n += sl_kube_get_metrics(kc)->requests[v][s];
	return n;
}

/* A repeated Event is one Event with a count, as client-go's recorder
 * makes it: a burst costs a create and one patch; another message is
 * another Event; an Event deleted meanwhile is created again with its
 * count; the cache of keys is bounded, and a repeat past the window starts
 * a new Event. */
static void event_aggregation(void)
{
	cJSON *obj = kt_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
	                     "\"name\":\"agg\",\"uid\":\"agg-uid\"}}");
	struct sl_kube_opts o = {.event_cache = 2, .event_window_s = 1};
	struct sl_kube_config_opts co = {.kubeconfig = it_kubeconfig()};
	struct sl_kube_config *cfg;
	struct sl_error err = {0};
	struct sl_kube *small = NULL;
	uint64_t c0, p0;
	long count;
	int n;

	cJSON_AddStringToObject(cJSON_GetObjectItem(obj, "metadata"), "namespace", ns);
	c0 = writes(k, SL_KUBE_VERB_CREATE);
	p0 = writes(k, SL_KUBE_VERB_PATCH);
	CHECK(record(k, obj, "Burst", "the same thing again", 1), "first");
	CHECK(record(k, obj, "Burst", "the same thing again", 5), "a burst of five");
	n = events_about("agg", "Burst", &count);
	CHECK(n == 1 && count == 6, "one Event with count 6: %d Events, count %ld", n, count);
	CHECK(writes(k, SL_KUBE_VERB_CREATE) - c0 == 1, "one create: %llu",
	      (unsigned long long)(writes(k, SL_KUBE_VERB_CREATE) - c0));
	CHECK(writes(k, SL_KUBE_VERB_PATCH) - p0 == 2, "the burst in two patches: %llu",
	      (unsigned long long)(writes(k, SL_KUBE_VERB_PATCH) - p0));

	CHECK(record(k, obj, "Burst", "something else", 1), "another message");
	n = events_about("agg", "Burst", &count);
	CHECK(n == 2 && count == 7, "another Event: %d Events, count %ld", n, count);

	CHECK(it_kubectl(NULL, NULL,
	                 "-n %s delete events --field-selector involvedObject.name=agg >/dev/null", ns) == 0,
	      "delete the Events");
	CHECK(record(k, obj, "Burst", "the same thing again", 1), "after the delete");
	n = events_about("agg", "Burst", &count);
	CHECK(n == 1 && count == 7, "created again with its count: %d Events, count %ld", n, count);

	/* two keys remembered, one second of window */
	if (sl_kube_config_load(&co, &cfg, &err) < 0 || sl_kube_new(kt_loop, cfg, &o, &small, &err) < 0) {
		CHECK(false, "client: %s", err.msg);
		cJSON_Delete(obj);
		return;
	}
	CHECK(record(small, obj, "A", "a", 1) && record(small, obj, "B", "b", 1) &&
	          record(small, obj, "C", "c", 1) && record(small, obj, "C", "c", 1),
	      "A, B, C, C");
	n = events_about("agg", "C", &count);
	CHECK(n == 1 && count == 2, "C aggregated: %d Events, count %ld", n, count);
	CHECK(record(small, obj, "A", "a", 1), "A again");
	n = events_about("agg", "A", &count);
	CHECK(n == 2 && count == 2, "A forgotten (LRU of 2): %d Events, count %ld", n, count);
	CHECK(sl_kube_get_metrics(small)->events_remembered == 2, "two keys remembered: %zu",
	      sl_kube_get_metrics(small)->events_remembered);
	usleep(2100 * 1000);
	CHECK(record(small, obj, "A", "a", 1), "A past the window");
	n = events_about("agg", "A", &count);
	CHECK(n == 3 && count == 3, "past the window, a new Event: %d Events, count %ld", n, count);
	/* C's key, past the window too, is forgotten: objects deleted long
	 * ago leave nothing behind */
	CHECK(sl_kube_get_metrics(small)->events_remembered == 1, "only A remembered: %zu",
	      sl_kube_get_metrics(small)->events_remembered);
	sl_kube_free(small);
	cJSON_Delete(obj);
}

/* Created, observed, deleted and created again under the same name: a
 * delete that names the uid it observed must not remove the new object. */
static void delete_precondition_uid(void)
{
	struct kt_res r = {0};
	struct sl_kube_ref cm = {.api_version = "v1", .kind = "ConfigMap", .ns = ns, .name = "pre"};
	struct sl_kube_ref job = {.api_version = "batch/v1", .kind = "Job", .ns = ns, .name = "j-pre"};
	struct sl_kube_call_opts fm = {.field_manager = "kt"};
	char uid1[64] = "", uid2[64] = "";
	cJSON *o;

	for (int round = 0; round < 2; round++) {
		o = kt_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"pre\"},"
		            "\"data\":{\"a\":\"b\"}}");
		sl_kube_create(k, &cm, o, &fm, kt_cb, &r);
		cJSON_Delete(o);
		kt_wait(&r, 30000);
		CHECK(r.code == 0 && kt_str(r.body, "metadata.uid"), "create %d: %s", round, r.err);
		snprintf(round ? uid2 : uid1, sizeof(uid1), "%s", kt_str(r.body, "metadata.uid") ?: "");
		kt_res_clear(&r);
		if (round == 0) {
			sl_kube_delete(k, &cm, NULL, kt_cb, &r);
			kt_wait(&r, 30000);
			CHECK(r.code == 0, "plain delete: %s", r.err);
			kt_res_clear(&r);
		}
	}
	CHECK(*uid1 && *uid2 && strcmp(uid1, uid2), "a new uid: %s %s", uid1, uid2);

	{
		struct sl_kube_call_opts d = {.precondition_uid = uid1};
		sl_kube_delete(k, &cm, &d, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == SL_ECONFLICT && r.status == 409, "stale uid refused: %d %ld %s", r.code, r.status,
	      r.err);
	printf("# stale uid: %s\n", r.err);
	kt_res_clear(&r);
	sl_kube_get(k, &cm, NULL, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && !strcmp(kt_str(r.body, "metadata.uid") ?: "", uid2),
	      "the new object is still there");
	kt_res_clear(&r);

	{
		struct sl_kube_call_opts d = {.precondition_uid = uid2};
		sl_kube_delete(k, &cm, &d, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == 0, "current uid deletes: %s", r.err);
	kt_res_clear(&r);
	sl_kube_get(k, &cm, NULL, kt_cb, &r);
	kt_wait(&r, 30000);
	CHECK(r.code == SL_ENOTFOUND, "gone: %d", r.code);
	kt_res_clear(&r);

	/* as the controller deletes a Job: foreground propagation and the uid */
	o = kt_json("{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"j-pre\"},"
	            "\"spec\":{\"template\":{\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{"
	            "\"name\":\"c\",\"image\":\"busybox\",\"command\":[\"true\"]}]}}}}");
	sl_kube_create(k, &job, o, &fm, kt_cb, &r);
	cJSON_Delete(o);
	kt_wait(&r, 30000);
	CHECK(r.code == 0, "create job: %s", r.err);
	snprintf(uid2, sizeof(uid2), "%s", kt_str(r.body, "metadata.uid") ?: "");
	kt_res_clear(&r);
	{
		struct sl_kube_call_opts d = {.propagation = "Foreground", .precondition_uid = uid1};
		sl_kube_delete(k, &job, &d, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == SL_ECONFLICT, "job, stale uid: %d %s", r.code, r.err);
	kt_res_clear(&r);
	{
		struct sl_kube_call_opts d = {.propagation = "Foreground", .precondition_uid = uid2};
		sl_kube_delete(k, &job, &d, kt_cb, &r);
	}
	kt_wait(&r, 30000);
	CHECK(r.code == 0 && kt_str(r.body, "metadata.deletionTimestamp"), "job, its uid: %d %s", r.code,
	      r.err);
	kt_res_clear(&r);
}

int main(void)
{
	char *out = NULL;

	kt_require_cluster();
	if (sl_loop_new(&kt_loop) < 0)
		return 1;
	kt_plan(8);
	if (it_kubectl(&out, crd, "apply -f -") != 0 ||
	    it_kubectl(NULL, NULL,
	               "wait --for condition=established --timeout=60s crd/widgets.kubetest.sluice.dev") !=
	        0) {
		printf("Bail out! cannot install the test CRD\n");
		return 1;
	}
	free(out);
	if (it_ns_create("kt-api", ns) < 0) {
		printf("Bail out! namespace\n");
		return 1;
	}
	k = kt_client(NULL);
	kt_run(1, "every verb on a custom resource", crd_verbs);
	kt_run(2, "every verb on a Job", job_verbs);
	kt_run(3, "server-side apply conflict and force", apply_conflict_and_force);
	kt_run(4, "restricted identity gets 403 with a readable error", restricted_forbidden);
	kt_run(5, "1000 objects listed in pages of 100", paged_list);
	kt_run(6, "events", events);
	kt_run(7, "delete with a uid precondition", delete_precondition_uid);
	kt_run(8, "repeated Events aggregate into one, within a bounded cache and a window",
	       event_aggregation);
	sl_kube_free(k);
	it_ns_delete(ns);
	sl_loop_free(kt_loop);
	return kt_exit();
}
