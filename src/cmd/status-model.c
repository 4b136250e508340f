/* The model of `sluice status`: from the objects listed from the cluster
 * (inventory ConfigMaps, StreamClasses and their streams, the streams' Jobs,
 * CronJobs and BackfillRequests) to one JSON object with a row per source
 * and per stream. Pure: no I/O, no clock. */
#include "cmd.h"
#include "sluice/arcane.h"
#include "sluice/base-map.h"
#include "sluice/base.h"
#include "sluice/manifest-json.h"
#include "sluice/stream.h"

#include <stdio.h>
#include <string.h>

#define INVENTORY_PREFIX "sluice-inventory-"

#define CHECK_ALLOC(p)                    \
	do {                              \
		if (!(p))                 \
			return SL_ENOMEM; \
	} while (0)

static const char *str0(const char *s)
{
	return s ? s : "";
}

static const cJSON *items_of(const cJSON *observed, const char *key)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(observed, key);

	return cJSON_IsArray(a) ? a : NULL;
}

static bool add_str_or_null(cJSON *o, const char *key, const char *v)
{
	return v ? cJSON_AddStringToObject(o, key, v) != NULL : cJSON_AddNullToObject(o, key) != NULL;
}

static bool add_num(cJSON *o, const char *key, const cJSON *from)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);

	return cJSON_AddNumberToObject(o, key, cJSON_IsNumber(v) ? v->valuedouble : 0) != NULL;
}

static int warn(cJSON *warnings, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int warn(cJSON *warnings, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cJSON_AddItemToArray(warnings, cJSON_CreateString(msg)) ? 0 : SL_ENOMEM;
}

/* ---- sources ------------------------------------------------------------------ */

/* Objects in an inventory ({"v":1,"o":{type:{ns:{name:digest}}}}), or -1
 * when it does not parse. */
static double inventory_count(const char *text)
{
	cJSON *inv = text ? cJSON_Parse(text) : NULL;
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(inv, "o"), *t, *ns;
	double n = cJSON_IsObject(o) ? 0 : -1;

	cJSON_ArrayForEach(t, o)
	{
		cJSON_ArrayForEach(ns, t) n += cJSON_GetArraySize(ns);
	}
	cJSON_Delete(inv);
	return n;
}

/* The stored sync status of an inventory ConfigMap into src. */
static int source_status(cJSON *src, const char *text, const char *where, cJSON *warnings)
{
	static const char *const counts[] = {"applied", "unchanged",    "failed",
	                                     "pruned",  "pruneSkipped", "errorCount"};
	cJSON *st = text ? cJSON_Parse(text) : NULL;
	cJSON *errs = NULL;
	int r = 0;

	if (text && !cJSON_IsObject(st)) {
		r = warn(warnings, "%s: the sync status does not parse", where);
		if (r < 0)
			goto out;
	}
	if (!add_str_or_null(src, "revision", sl_manifest_str(st, "revision")) ||
	    !add_str_or_null(src, "result", sl_manifest_str(st, "result")) ||
	    !add_str_or_null(src, "start", sl_manifest_str(st, "start")) ||
	    !add_str_or_null(src, "end", sl_manifest_str(st, "end"))) {
		r = SL_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < SL_ARRAY_SIZE(counts); i++)
		if (!add_num(src, counts[i], st)) {
			r = SL_ENOMEM;
			goto out;
		}
	if (!add_str_or_null(src, "pruneBlocked", sl_manifest_str(st, "pruneBlocked")) ||
	    !add_str_or_null(src, "sourceError", sl_manifest_str(st, "sourceError"))) {
		r = SL_ENOMEM;
		goto out;
	}
	errs = cJSON_DetachItemFromObjectCaseSensitive(st, "errors");
	if (!cJSON_IsArray(errs)) {
		cJSON_Delete(errs);
		errs = cJSON_CreateArray();
	}
	if (!errs || !cJSON_AddItemToObject(src, "errors", errs)) {
		cJSON_Delete(errs);
		r = SL_ENOMEM;
	}
out:
	cJSON_Delete(st);
	return r;
}

static int add_source(cJSON *sources, const cJSON *cm, cJSON *warnings)
{
	const char *ns = sl_manifest_md_str(cm, "namespace"), *name = sl_manifest_md_str(cm, "name");
	const char *id = sl_manifest_annotation(cm, SL_ARCANE_ANN_SOURCE);
	const cJSON *data = sl_manifest_obj(cm, "data");
	const char *inv = sl_manifest_str(data, "inventory");
	char where[600];
	cJSON *src;
	double n;

	if (!name)
		return 0;
	if (!id)
		id = sl_str_has_prefix(name, INVENTORY_PREFIX) ? name + strlen(INVENTORY_PREFIX) : name;
	snprintf(where, sizeof(where), "ConfigMap %s/%s", ns ? ns : "", name);
	src = cJSON_CreateObject();
	CHECK_ALLOC(src);
	if (!cJSON_AddItemToArray(sources, src)) {
		cJSON_Delete(src);
		return SL_ENOMEM;
	}
	if (!add_str_or_null(src, "namespace", ns) || !add_str_or_null(src, "name", id) ||
	    !add_str_or_null(src, "configMap", name))
		return SL_ENOMEM;
	n = inventory_count(inv);
	if (n < 0 && inv && warn(warnings, "%s: the inventory does not parse", where) < 0)
		return SL_ENOMEM;
	if (!cJSON_AddNumberToObject(src, "objects", n < 0 ? 0 : n))
		return SL_ENOMEM;
	return source_status(src, sl_manifest_str(data, "status"), where, warnings);
}

/* ---- streams ------------------------------------------------------------------ */

/* Uncompleted BackfillRequests of one stream (namespace, class, stream id). */
struct bfr_set {
	const cJSON **v;
	size_t n, cap;
};

static void bfr_set_free(void *p)
{
	struct bfr_set *s = p;

	if (s)
		free(s->v);
	free(s);
}

struct index {
	struct sl_map jobs, cronjobs; /* "ns/name" -> object (borrowed) */
	struct sl_map bfrs;           /* "ns/class/stream" -> struct bfr_set (owned) */
};

static char *key3(const char *a, const char *b, const char *c)
{
	return c ? sl_asprintf("%s/%s/%s", a ? a : "", b ? b : "", c)
	         : sl_asprintf("%s/%s", a ? a : "", b ? b : "");
}

static int index_objects(struct sl_map *m, const cJSON *items)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, items)
	{
		char *k = key3(sl_manifest_md_str(o, "namespace"), sl_manifest_md_str(o, "name"), NULL);
		int r = k ? sl_map_put(m, k, (void *)o, NULL) : SL_ENOMEM;
		free(k);
		if (r < 0)
			return r;
	}
	return 0;
}

static int index_bfrs(struct sl_map *m, const cJSON *items)
{
	const cJSON *b;

	cJSON_ArrayForEach(b, items)
	{
		const cJSON *spec = sl_manifest_obj(b, "spec");
		struct bfr_set *s;
		char *k;

		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "completed")) ||
		    sl_manifest_md_str(b, "deletionTimestamp") || !sl_manifest_str(spec, "streamId"))
			continue;
		k = key3(sl_manifest_md_str(b, "namespace"), sl_manifest_str(spec, "streamClass"),
		         sl_manifest_str(spec, "streamId"));
		CHECK_ALLOC(k);
		s = sl_map_get(m, k);
		if (!s) {
			s = calloc(1, sizeof(*s));
			if (!s || sl_map_put(m, k, s, NULL) < 0) {
				free(s);
				free(k);
				return SL_ENOMEM;
			}
		}
		free(k);
		if (SL_GROW(s->v, s->cap, s->n + 1, 4) < 0)
			return SL_ENOMEM;
		s->v[s->n++] = b;
	}
	return 0;
}

/* A workload belongs to the stream: owned by it, or labelled with its name. */
static bool belongs(const cJSON *w, const char *stream, const char *uid)
{
	const cJSON *refs =
	    cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(w, "metadata"), "ownerReferences");
	const cJSON *ref;

	cJSON_ArrayForEach(ref, refs)
	{
		if (uid && sl_streq(sl_manifest_str(ref, "uid"), uid))
			return true;
	}
	return sl_streq(sl_manifest_label(w, SL_ARCANE_LABEL_ID), stream) ||
	       sl_streq(sl_manifest_label(w, SL_ARCANE_LABEL_STREAM_ID), stream);
}

static const cJSON *workload(const struct sl_map *m, const char *ns, const char *name, const char *stream,
                             const char *uid)
{
	char *k = key3(ns, name, NULL);
	const cJSON *w = k ? sl_map_get(m, k) : NULL;

	free(k);
	return w && belongs(w, stream, uid) ? w : NULL;
}

static bool condition_true(const cJSON *obj, const char *type)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(obj, "status"), "conditions"))
	{
		if (sl_streq(sl_manifest_str(c, "type"), type) &&
		    sl_streq(sl_manifest_str(c, "status"), "True"))
			return true;
	}
	return false;
}

static const char *job_state(const cJSON *job)
{
	if (condition_true(job, "Complete"))
		return "Complete";
	if (condition_true(job, "Failed"))
		return "Failed";
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(job, "spec"), "suspend")))
		return "Suspended";
	return "Active";
}

static const char *cronjob_state(const cJSON *cj)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(cj, "spec"), "suspend"))
	           ? "Suspended"
	           : "Scheduled";
}

struct found {
	const cJSON *job; /* the one to show */
	const char *kind; /* "Job" or "CronJob" */
	const cJSON *backfill_job;
};

/* The workload of a stream: the one its status names when it is there,
 * else a backfill Job, a streaming Job, a CronJob. */
static void find_workload(const struct index *ix, const cJSON *stream, struct found *f)
{
	const char *ns = sl_manifest_md_str(stream, "namespace"), *name = sl_manifest_md_str(stream, "name");
	const char *uid = sl_manifest_md_str(stream, "uid");
	const char *named = sl_manifest_str(sl_manifest_obj(stream, "status"), "jobName");
	char sname[64], bname[64], cname[64];
	const cJSON *s, *b, *c;

	sl_stream_job_name(name, false, sname);
	sl_stream_job_name(name, true, bname);
	sl_stream_cronjob_name(name, cname);
	s = workload(&ix->jobs, ns, sname, name, uid);
	b = workload(&ix->jobs, ns, bname, name, uid);
	c = workload(&ix->cronjobs, ns, cname, name, uid);
	*f = (struct found){.backfill_job = b};
	if (named && b && sl_streq(named, bname))
		*f = (struct found){b, "Job", b};
	else if (named && s && sl_streq(named, sname))
		*f = (struct found){s, "Job", b};
	else if (named && c && sl_streq(named, cname))
		*f = (struct found){c, "CronJob", b};
	else if (b || s)
		*f = (struct found){b ? b : s, "Job", b};
	else if (c)
		*f = (struct found){c, "CronJob", b};
}

static int cmp_created(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	int c = strcmp(str0(sl_manifest_md_str(x, "creationTimestamp")),
	               str0(sl_manifest_md_str(y, "creationTimestamp")));

	return c ? c : strcmp(str0(sl_manifest_md_str(x, "name")), str0(sl_manifest_md_str(y, "name")));
}

/* The BackfillRequest to show: the one a live backfill Job runs (its
 * annotation, else the status while Backfilling), else the oldest pending. */
static const cJSON *shown_bfr(struct bfr_set *s, const cJSON *stream, const struct found *f, bool *running)
{
	const cJSON *status = sl_manifest_obj(stream, "status");
	const char *want = NULL;

	*running = false;
	if (!s || !s->n)
		return NULL;
	qsort(s->v, s->n, sizeof(*s->v), cmp_created);
	if (f->backfill_job && strcmp(job_state(f->backfill_job), "Active") == 0)
		want = sl_manifest_annotation(f->backfill_job, SL_ARCANE_ANN_BACKFILL_REQUEST);
	if (!want && sl_streq(sl_manifest_str(status, "phase"), SL_ARCANE_PHASE_BACKFILLING))
		want = sl_manifest_str(status, "backfillRequest");
	for (size_t i = 0; want && i < s->n; i++)
		if (sl_streq(sl_manifest_md_str(s->v[i], "name"), want)) {
			*running = true;
			return s->v[i];
		}
	return s->v[0];
}

static const cJSON *ready_condition(const cJSON *stream)
{
	const cJSON *c;

	cJSON_ArrayForEach(c,
	                   cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(stream, "status"), "conditions"))
	{
		if (sl_streq(sl_manifest_str(c, "type"), SL_STREAM_CONDITION_READY))
			return c;
	}
	return NULL;
}

static int add_ready(cJSON *row, const cJSON *stream)
{
	const cJSON *c = ready_condition(stream);
	cJSON *r;

	if (!c)
		return cJSON_AddNullToObject(row, "ready") ? 0 : SL_ENOMEM;
	r = cJSON_AddObjectToObject(row, "ready");
	return r && add_str_or_null(r, "status", sl_manifest_str(c, "status")) &&
	               add_str_or_null(r, "reason", sl_manifest_str(c, "reason")) &&
	               add_str_or_null(r, "message", sl_manifest_str(c, "message")) &&
	               add_str_or_null(r, "lastTransitionTime", sl_manifest_str(c, "lastTransitionTime"))
	           ? 0
	           : SL_ENOMEM;
}

static int add_workload(cJSON *row, const struct found *f)
{
	cJSON *j;

	if (!f->job)
		return cJSON_AddNullToObject(row, "job") ? 0 : SL_ENOMEM;
	j = cJSON_AddObjectToObject(row, "job");
	return j && add_str_or_null(j, "kind", f->kind) &&
	               add_str_or_null(j, "name", sl_manifest_md_str(f->job, "name")) &&
	               add_str_or_null(j, "state",
	                               strcmp(f->kind, "Job") == 0 ? job_state(f->job)
	                                                           : cronjob_state(f->job))
	           ? 0
	           : SL_ENOMEM;
}

static int add_backfill(cJSON *row, const struct index *ix, const char *cls, const cJSON *stream,
                        const struct found *f)
{
	char *k = key3(sl_manifest_md_str(stream, "namespace"), cls, sl_manifest_md_str(stream, "name"));
	struct bfr_set *s = k ? sl_map_get(&ix->bfrs, k) : NULL;
	bool running;
	const cJSON *b = shown_bfr(s, stream, f, &running);
	cJSON *o;

	free(k);
	if (!cJSON_AddNumberToObject(row, "pendingBackfills", s ? (double)s->n : 0))
		return SL_ENOMEM;
	if (!b)
		return cJSON_AddNullToObject(row, "backfillRequest") ? 0 : SL_ENOMEM;
	o = cJSON_AddObjectToObject(row, "backfillRequest");
	return o && add_str_or_null(o, "name", sl_manifest_md_str(b, "name")) &&
	               add_str_or_null(o, "state", running ? "Running" : "Pending")
	           ? 0
	           : SL_ENOMEM;
}

static int add_stream(cJSON *streams, const struct index *ix, const cJSON *list, const cJSON *stream)
{
	const char *cls = sl_manifest_str(list, "class");
	struct sl_arcane_layout l;
	struct sl_error err;
	struct found f;
	cJSON *row;
	int r;

	if (!sl_manifest_md_str(stream, "name"))
		return 0;
	row = cJSON_CreateObject();
	CHECK_ALLOC(row);
	if (!cJSON_AddItemToArray(streams, row)) {
		cJSON_Delete(row);
		return SL_ENOMEM;
	}
	sl_arcane_layout_read(stream, &l, &err); /* suspended is read whatever else is wrong */
	find_workload(ix, stream, &f);
	if (!add_str_or_null(row, "namespace", sl_manifest_md_str(stream, "namespace")) ||
	    !add_str_or_null(row, "name", sl_manifest_md_str(stream, "name")) ||
	    !add_str_or_null(row, "kind", sl_manifest_str(list, "kind")) ||
	    !add_str_or_null(row, "apiVersion", sl_manifest_str(list, "apiVersion")) ||
	    !add_str_or_null(row, "streamClass", cls) ||
	    !add_str_or_null(row, "phase", sl_manifest_str(sl_manifest_obj(stream, "status"), "phase")) ||
	    !cJSON_AddBoolToObject(row, "suspended", l.suspended) ||
	    !add_str_or_null(row, "creationTimestamp", sl_manifest_md_str(stream, "creationTimestamp")))
		return SL_ENOMEM;
	if ((r = add_ready(row, stream)) < 0 || (r = add_workload(row, &f)) < 0)
		return r;
	return add_backfill(row, ix, cls, stream, &f);
}

/* ---- sorting ------------------------------------------------------------------ */

static int cmp_rows(const void *a, const void *b, void *keys)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	for (const char *const *k = keys; *k; k++) {
		int c = strcmp(str0(sl_manifest_str(x, *k)), str0(sl_manifest_str(y, *k)));
		if (c)
			return c;
	}
	return 0;
}

/* Sorts the objects of array a by the string fields keys (NULL-ended). */
static int sort_rows(cJSON *a, const char *const *keys)
{
	size_t n = (size_t)cJSON_GetArraySize(a), i = 0;
	cJSON **v = n ? calloc(n, sizeof(*v)) : NULL;

	if (n && !v)
		return SL_ENOMEM;
	while (a->child)
		v[i++] = cJSON_DetachItemViaPointer(a, a->child);
	if (n > 1)
		qsort_r(v, n, sizeof(*v), cmp_rows, (void *)keys);
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(a, v[i]);
	free(v);
	return 0;
}

/* ---- the model ------------------------------------------------------------------ */

static int build(const cJSON *observed, struct index *ix, cJSON *model)
{
	static const char *const source_keys[] = {"namespace", "name", NULL};
	static const char *const stream_keys[] = {"namespace", "kind", "name", NULL};
	cJSON *sources = cJSON_AddArrayToObject(model, "sources");
	cJSON *streams = cJSON_AddArrayToObject(model, "streams");
	cJSON *warnings = cJSON_AddArrayToObject(model, "warnings");
	const cJSON *o, *list;
	int r;

	CHECK_ALLOC(sources && streams && warnings);
	cJSON_ArrayForEach(o, items_of(observed, "warnings"))
	{
		if (cJSON_IsString(o) && warn(warnings, "%s", o->valuestring) < 0)
			return SL_ENOMEM;
	}
	cJSON_ArrayForEach(o, items_of(observed, "configmaps"))
	{
		if ((r = add_source(sources, o, warnings)) < 0)
			return r;
	}
	if ((r = index_objects(&ix->jobs, items_of(observed, "jobs"))) < 0 ||
	    (r = index_objects(&ix->cronjobs, items_of(observed, "cronjobs"))) < 0 ||
	    (r = index_bfrs(&ix->bfrs, items_of(observed, "backfillrequests"))) < 0)
		return r;
	cJSON_ArrayForEach(list, items_of(observed, "streams"))
	{
		cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(list, "items"))
		{
			if ((r = add_stream(streams, ix, list, o)) < 0)
				return r;
		}
	}
	if ((r = sort_rows(sources, source_keys)) < 0)
		return r;
	return sort_rows(streams, stream_keys);
}

int sl_cmd__status_model(const cJSON *observed, cJSON **ret)
{
	struct index ix;
	cJSON *model = cJSON_CreateObject();
	int r;

	sl_map_init(&ix.jobs);
	sl_map_init(&ix.cronjobs);
	sl_map_init_owning(&ix.bfrs, bfr_set_free);
	r = model ? build(observed, &ix, model) : SL_ENOMEM;
	sl_map_free(&ix.jobs, NULL);
	sl_map_free(&ix.cronjobs, NULL);
	sl_map_free(&ix.bfrs, NULL);
	if (r < 0) {
		cJSON_Delete(model);
		return r;
	}
	*ret = model;
	return 0;
}
