/* The stream spec layouts of the Arcane contract (see sluice/arcane.h): where
 * suspended, the template references and the backend sit in v0, v1 and v2. */
#include "sluice/arcane.h"

#include <stdio.h>
#include <string.h>

static const cJSON *member(const cJSON *o, const char *key)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* Absent and JSON null both mean unset. */
static bool unset(const cJSON *v)
{
	return !v || cJSON_IsNull(v);
}

const char *sl_arcane_layout_name(int version)
{
	switch (version) {
	case 1:
		return "v1";
	case 2:
		return "v2";
	default:
		return "v0";
	}
}

/* Reads the reference at o[key] into ref. Unset is no reference; anything
 * but an object with a string name (and optionally a string namespace) is an
 * error. def_ns is the namespace used when the ref has none. */
static int read_ref(const cJSON *o, const char *key, const char *path, const char *def_ns,
                    struct sl_arcane_ref *ref, struct sl_error *err)
{
	const cJSON *v = member(o, key), *name, *ns;

	memset(ref, 0, sizeof(*ref));
	snprintf(ref->field, sizeof(ref->field), "%s.%s", path, key);
	if (unset(v))
		return 0;
	if (!cJSON_IsObject(v))
		return sl_error_set(err, SL_EINVALID,
		                    "%s: expected an object with the name of a StreamingJobTemplate",
		                    ref->field);
	name = member(v, "name");
	if (!cJSON_IsString(name) || !name->valuestring[0])
		return sl_error_set(err, SL_EINVALID,
		                    "%s.name: required: the name of a StreamingJobTemplate (a string)",
		                    ref->field);
	ns = member(v, "namespace");
	if (!unset(ns) && !cJSON_IsString(ns))
		return sl_error_set(err, SL_EINVALID, "%s.namespace: expected a string", ref->field);
	ref->name = name->valuestring;
	if (cJSON_IsString(ns) && ns->valuestring[0]) {
		ref->ns = ns->valuestring;
	} else {
		ref->ns = def_ns;
		ref->ns_defaulted = true;
	}
	return 0;
}

static int read_bool(const cJSON *o, const char *key, const char *field, bool *ret, struct sl_error *err)
{
	const cJSON *v = member(o, key);

	*ret = false;
	if (unset(v))
		return 0;
	if (!cJSON_IsBool(v))
		return sl_error_set(err, SL_EINVALID, "%s: expected boolean", field);
	*ret = cJSON_IsTrue(v);
	return 0;
}

static int read_v0(const cJSON *spec, const char *ns, struct sl_arcane_layout *l, struct sl_error *err)
{
	int r;

	snprintf(l->suspended_field, sizeof(l->suspended_field), "spec.suspended");
	r = read_bool(spec, "suspended", l->suspended_field, &l->suspended, err);
	if (r < 0)
		return r;
	r = read_ref(spec, "jobTemplateRef", "spec", ns, &l->streaming, err);
	if (r < 0)
		return r;
	/* Arcane takes the backfill template's namespace from jobTemplateRef;
	 * a namespace given on backfillJobTemplateRef itself wins here. */
	const char *bns = l->streaming.name && !l->streaming.ns_defaulted ? l->streaming.ns : ns;
	r = read_ref(spec, "backfillJobTemplateRef", "spec", bns, &l->backfill, err);
	if (r < 0)
		return r;
	if (!l->streaming.name)
		return sl_error_set(err, SL_EINVALID,
		                    "spec.jobTemplateRef: required (layout v0): an object with the name of a "
		                    "StreamingJobTemplate");
	l->backend = SL_ARCANE_BACKEND_JOB;
	return 0;
}

static int read_v12(const cJSON *exec, const char *ns, struct sl_arcane_layout *l, struct sl_error *err)
{
	const cJSON *be = member(exec, "streamingBackend"), *cc, *batch, *sched;
	struct sl_arcane_ref cc_backfill;
	int r;

	snprintf(l->suspended_field, sizeof(l->suspended_field), "spec.execution.suspended");
	r = read_bool(exec, "suspended", l->suspended_field, &l->suspended, err);
	if (r < 0)
		return r;
	r = read_ref(exec, "backfillJobTemplateRef", "spec.execution", ns, &l->backfill, err);
	if (r < 0)
		return r;
	if (!unset(be) && !cJSON_IsObject(be))
		return sl_error_set(err, SL_EINVALID, "spec.execution.streamingBackend: expected an object");
	cc = member(be, "changeCapture");
	batch = member(be, "batch");
	if (!unset(cc) && !cJSON_IsObject(cc))
		return sl_error_set(err, SL_EINVALID,
		                    "spec.execution.streamingBackend.changeCapture: expected an object");
	if (!unset(batch) && !cJSON_IsObject(batch))
		return sl_error_set(err, SL_EINVALID,
		                    "spec.execution.streamingBackend.batch: expected an object");
	if (cJSON_IsObject(cc)) {
		r = read_ref(cc, "jobTemplateRef", "spec.execution.streamingBackend.changeCapture", ns,
		             &l->streaming, err);
		if (r < 0)
			return r;
		/* v2 moved the backfill reference under changeCapture. */
		if (l->version == 2) {
			r = read_ref(cc, "backfillJobTemplateRef",
			             "spec.execution.streamingBackend.changeCapture", ns, &cc_backfill, err);
			if (r < 0)
				return r;
			if (cc_backfill.name)
				l->backfill = cc_backfill;
		}
	}
	if (cJSON_IsObject(batch)) {
		/* batch wins over changeCapture, as in the Arcane operator. */
		r = read_ref(batch, "jobTemplateRef", "spec.execution.streamingBackend.batch", ns, &l->batch,
		             err);
		if (r < 0)
			return r;
		sched = member(batch, "schedule");
		if (!cJSON_IsString(sched) || !sched->valuestring[0])
			return sl_error_set(
			    err, SL_EINVALID,
			    "spec.execution.streamingBackend.batch.schedule: required: a cron "
			    "schedule (a string)");
		if (!l->batch.name)
			return sl_error_set(
			    err, SL_EINVALID,
			    "spec.execution.streamingBackend.batch.jobTemplateRef: required: an "
			    "object with the name of a StreamingJobTemplate");
		l->schedule = sched->valuestring;
		l->backend = SL_ARCANE_BACKEND_CRON;
		return 0;
	}
	if (cJSON_IsObject(cc)) {
		if (!l->streaming.name)
			return sl_error_set(err, SL_EINVALID,
			                    "spec.execution.streamingBackend.changeCapture.jobTemplateRef: "
			                    "required: an object with the name of a StreamingJobTemplate");
		l->backend = SL_ARCANE_BACKEND_JOB;
		return 0;
	}
	return sl_error_set(err, SL_EINVALID,
	                    "spec.execution.streamingBackend: no usable backend: expected changeCapture "
	                    "(a streaming Job) or batch (a CronJob) (layout %s)",
	                    sl_arcane_layout_name(l->version));
}

static int layout_read(const cJSON *stream, struct sl_arcane_layout *ret, struct sl_error *err)
{
	const cJSON *spec = member(stream, "spec"), *exec = member(spec, "execution"), *lv;
	const cJSON *ns_v = member(member(stream, "metadata"), "namespace");
	const char *ns = cJSON_IsString(ns_v) && ns_v->valuestring[0] ? ns_v->valuestring : "default";

	memset(ret, 0, sizeof(*ret));
	if (!cJSON_IsObject(spec))
		return sl_error_set(err, SL_EINVALID, "spec: required: an object");
	if (!unset(exec) && !cJSON_IsObject(exec))
		return sl_error_set(err, SL_EINVALID, "spec.execution: expected an object");
	lv = member(exec, "layoutVersion");
	if (unset(lv) || (cJSON_IsString(lv) && !lv->valuestring[0])) {
		ret->version = 0;
		return read_v0(spec, ns, ret, err);
	}
	if (!cJSON_IsString(lv))
		return sl_error_set(err, SL_EINVALID, "spec.execution.layoutVersion: expected a string");
	if (strcmp(lv->valuestring, "v1") == 0)
		ret->version = 1;
	else if (strcmp(lv->valuestring, "v2") == 0)
		ret->version = 2;
	else
		return sl_error_set(err, SL_EINVALID,
		                    "spec.execution.layoutVersion: unknown layout version \"%.64s\" (known: "
		                    "v1, v2, or absent/empty for v0)",
		                    lv->valuestring);
	return read_v12(exec, ns, ret, err);
}

int sl_arcane_layout_read(const cJSON *stream, struct sl_arcane_layout *ret, struct sl_error *err)
{
	int r = layout_read(stream, ret, err);
	const char *colon;

	if (r < 0 && (colon = strstr(err->msg, ": ")))
		snprintf(ret->error_field, sizeof(ret->error_field), "%.*s", (int)(colon - err->msg),
		         err->msg);
	return r;
}

/* ---- shards ---------------------------------------------------------------- */

static bool dns_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int sl_arcane_shard_check(const char *name, struct sl_error *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0)
		return sl_error_set(err, SL_EINVALID, "a shard name cannot be empty");
	if (n > SL_ARCANE_SHARD_MAX)
		return sl_error_set(err, SL_EINVALID, "shard name \"%.16s...\" is longer than %d characters",
		                    name, SL_ARCANE_SHARD_MAX);
	for (size_t i = 0; i < n; i++)
		if (!dns_alnum(name[i]) && !(name[i] == '-' && i > 0 && i + 1 < n))
			return sl_error_set(err, SL_EINVALID,
			                    "shard name \"%s\": expected lowercase letters, digits and '-', "
			                    "starting and ending with a letter or digit",
			                    name);
	return 0;
}

int sl_arcane_shard_selector(const char *name, char *out, size_t n)
{
	bool ok = name ? sl_snprintf_ok(out, n, "%s=%s", SL_ARCANE_LABEL_SHARD, name)
	               : sl_snprintf_ok(out, n, "!%s", SL_ARCANE_LABEL_SHARD);
	return ok ? 0 : SL_ETOOLARGE;
}

const char *sl_arcane_shard_of(const cJSON *obj)
{
	const cJSON *v = member(member(member(obj, "metadata"), "labels"), SL_ARCANE_LABEL_SHARD);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool sl_arcane_shard_is(const cJSON *obj, const char *name)
{
	const char *s = sl_arcane_shard_of(obj);

	return name ? s && strcmp(s, name) == 0 : s == NULL;
}
