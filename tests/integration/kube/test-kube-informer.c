/* Informers against the real API server: a watch that sees create, update
 * and delete in order; label selectors; the field-keeping hook; a cache
 * equal to the server's list. */
#include "ktest.h"

#include <unistd.h>

static struct sl_kube *k;
static char ns[64];

struct rec {
	char log[64][80];
	int n;
	bool synced;
};

static void rec_add(struct rec *r, const char *what, const cJSON *o)
{
	if (r->n < 64)
		snprintf(r->log[r->n++], sizeof(r->log[0]), "%s:%s", what, kt_str(o, "metadata.name") ?: "?");
}
static void on_add(const cJSON *o, void *p)
{
	rec_add(p, "add", o);
}
static void on_update(const cJSON *old, const cJSON *o, void *p)
{
	rec_add(p, "update", o);
}
static void on_del(const cJSON *o, void *p)
{
	rec_add(p, "del", o);
}
static void on_synced(void *p)
{
	((struct rec *)p)->synced = true;
}
static bool is_synced(void *p)
{
	return ((struct rec *)p)->synced;
}

struct want {
	struct rec *r;
	int n;
};
static bool has_n(void *p)
{
	struct want *w = p;
	return w->r->n >= w->n;
}

static void keep_small(cJSON *o, void *p)
{
	/* the user says which fields to keep: only metadata.name/namespace/resourceVersion and data.keep */
	cJSON *meta = cJSON_GetObjectItem(o, "metadata"), *data = cJSON_GetObjectItem(o, "data");
	cJSON *m2 = cJSON_CreateObject();
	static const char *const keep[] = {"name", "namespace", "resourceVersion"};
	for (size_t i = 0; i < 3; i++) {
		cJSON *v = cJSON_DetachItemFromObject(meta, keep[i]);
		if (v)
			cJSON_AddItemToObject(m2, keep[i], v);
	}
	cJSON *kv = cJSON_DetachItemFromObject(data, "keep");
	while (o->child)
		cJSON_Delete(cJSON_DetachItemViaPointer(o, o->child));
	cJSON_AddItemToObject(o, "metadata", m2);
	if (kv) {
		cJSON *d = cJSON_AddObjectToObject(o, "data");
		cJSON_AddItemToObject(d, "keep", kv);
	}
}

static void watch_order(void)
{
	struct rec rec = {0};
	struct sl_kube_informer *inf;
	struct sl_kube_informer_opts o = {.ref = {.api_version = "v1", .kind = "ConfigMap", .ns = ns},
	                                  .label_selector = "kt=watch"};
	struct sl_kube_informer_handlers h = {
	    .add = on_add, .update = on_update, .del = on_del, .synced = on_synced};
	struct sl_error err = {0};
	struct want w = {&rec, 0};
	const cJSON *c;

	CHECK(it_kubectl(NULL, NULL, "-n %s create configmap pre --from-literal=a=1", ns) == 0, "kubectl");
	CHECK(it_kubectl(NULL, NULL, "-n %s label configmap pre kt=watch", ns) == 0, "kubectl");
	CHECK(it_kubectl(NULL, NULL, "-n %s create configmap other --from-literal=a=1", ns) == 0, "kubectl");
	CHECK(sl_kube_informer_new(k, &o, &h, &rec, &inf, &err) == 0, "new: %s", err.msg);
	CHECK(sl_kube_informer_start(inf) == 0, "start");
	CHECK(kt_until(is_synced, &rec, 30000), "synced");
	CHECK(sl_kube_informer_has_synced(inf), "has_synced");
	CHECK(rec.n == 1 && !strcmp(rec.log[0], "add:pre"), "initial list: %d %s", rec.n, rec.log[0]);
	CHECK(sl_kube_informer_count(inf) == 1, "selector keeps 'other' out");

	CHECK(
	    it_kubectl(
	        NULL,
	        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w, labels: {kt: watch}}\ndata: {v: '1'}\n",
	        "-n %s apply -f -", ns) == 0,
	    "create");
	CHECK(it_kubectl(NULL, NULL, "-n %s patch configmap w --type merge -p '{\"data\":{\"v\":\"2\"}}'",
	                 ns) == 0,
	      "update");
	CHECK(it_kubectl(NULL, NULL, "-n %s delete configmap w", ns) == 0, "delete");
	w.n = 4;
	CHECK(kt_until(has_n, &w, 30000), "events arrived: %d", rec.n);
	CHECK(!strcmp(rec.log[1], "add:w") && !strcmp(rec.log[2], "update:w") && !strcmp(rec.log[3], "del:w"),
	      "in order: %s %s %s", rec.log[1], rec.log[2], rec.log[3]);
	CHECK(sl_kube_informer_get(inf, ns, "w") == NULL, "w gone from cache");
	c = sl_kube_informer_get(inf, ns, "pre");
	CHECK(c && !cJSON_GetObjectItem(cJSON_GetObjectItem(c, "metadata"), "managedFields"),
	      "managedFields dropped by default");
	CHECK(sl_kube_informer_resource_version(inf)[0], "resourceVersion known");
	sl_kube_informer_free(inf);
}

static void keep_fields(void)
{
	struct rec rec = {0};
	struct sl_kube_informer *inf;
	struct sl_kube_informer_opts o = {
	    .ref = {.api_version = "v1", .resource = "configmaps", .namespaced = true, .ns = ns},
	    .label_selector = "kt=keep",
	    .page_size = 2};
	struct sl_kube_informer_handlers h = {.add = on_add, .synced = on_synced, .transform = keep_small};
	struct sl_error err = {0};
	const cJSON *c;

	for (int i = 0; i < 5; i++)
		CHECK(it_kubectl(
		          NULL, NULL,
		          "-n %s create configmap keep-%d --from-literal=keep=yes --from-literal=big=%0500d",
		          ns, i, 0) == 0,
		      "kubectl");
	CHECK(it_kubectl(NULL, NULL, "-n %s label configmap keep-0 keep-1 keep-2 keep-3 keep-4 kt=keep",
	                 ns) == 0,
	      "label");
	CHECK(sl_kube_informer_new(k, &o, &h, &rec, &inf, &err) == 0, "new: %s", err.msg);
	sl_kube_informer_start(inf);
	CHECK(kt_until(is_synced, &rec, 30000), "synced");
	CHECK(sl_kube_informer_count(inf) == 5, "5 cached (listed in pages of 2): %zu",
	      sl_kube_informer_count(inf));
	CHECK(rec.n == 5, "5 adds: %d", rec.n);
	c = sl_kube_informer_get(inf, ns, "keep-3");
	CHECK(c && !strcmp(kt_str(c, "data.keep") ?: "", "yes"), "kept field");
	CHECK(c && !kt_str(c, "data.big") && !cJSON_GetObjectItem(cJSON_GetObjectItem(c, "metadata"), "uid"),
	      "dropped fields");
	sl_kube_informer_free(inf);
}

static void free_inside_handler_cb(const cJSON *o, void *p)
{
	struct sl_kube_informer **inf = p;
	sl_kube_informer_free(*inf);
	*inf = NULL;
}
static bool gone(void *p)
{
	return *(struct sl_kube_informer **)p == NULL;
}

static void free_from_handler(void)
{
	struct sl_kube_informer *inf;
	struct sl_kube_informer_opts o = {.ref = {.api_version = "v1", .kind = "ConfigMap", .ns = ns}};
	struct sl_kube_informer_handlers h = {.add = free_inside_handler_cb};
	struct sl_error err = {0};

	CHECK(sl_kube_informer_new(k, &o, &h, &inf, &inf, &err) == 0, "new");
	sl_kube_informer_start(inf);
	CHECK(kt_until(gone, &inf, 30000), "freed itself from its add handler");
	/* the loop goes on without touching it */
	for (int i = 0; i < 5; i++)
		sl_loop_run_once(kt_loop, 50);
}

int main(void)
{
	kt_require_cluster();
	if (sl_loop_new(&kt_loop) < 0)
		return 1;
	kt_plan(3);
	if (it_ns_create("kt-inf", ns) < 0) {
		printf("Bail out! namespace\n");
		return 1;
	}
	k = kt_client(NULL);
	kt_run(1, "watch sees create, update, delete in order", watch_order);
	kt_run(2, "field-keeping hook and paged initial list", keep_fields);
	kt_run(3, "an informer freed from its own handler", free_from_handler);
	sl_kube_free(k);
	it_ns_delete(ns);
	sl_loop_free(kt_loop);
	return kt_exit();
}
