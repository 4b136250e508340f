/* The Job builder: a stream, its StreamClass, a StreamingJobTemplate and an
 * optional BackfillRequest in, the Job of design.md "Resource contract" out. */
#include "sluice/manifest-json.h"
#include "sluice/stream.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------- */

void sl_stream_name_fit(const char *name, size_t max, char *out)
{
	size_t n = strlen(name);
	char hex[65];

	if (n <= max) {
		memcpy(out, name, n + 1);
		return;
	}
	/* Cut, then a hash of the whole name so that two long names sharing a
	 * prefix still differ; a cut must not end in '-' or '.' (DNS rules). */
	sl_sha256_hex(name, n, hex);
	n = max - 9;
	memcpy(out, name, n);
	while (n > 0 && (out[n - 1] == '-' || out[n - 1] == '.'))
		n--;
	out[n] = '-';
	memcpy(out + n + 1, hex, 8);
	out[n + 9] = '\0';
}

void sl_stream_job_name(const char *stream, bool backfill, char out[static 64])
{
	char full[SL_STREAM_NAME_MAX + 16];

	snprintf(full, sizeof(full), "%s%s", stream, backfill ? "-backfill" : "");
	sl_stream_name_fit(full, 63, out);
}

void sl_stream_cronjob_name(const char *stream, char out[static 64])
{
	char full[SL_STREAM_NAME_MAX + 1];

	snprintf(full, sizeof(full), "%s", stream);
	sl_stream_name_fit(full, 52, out);
}

void sl_stream_initial_backfill_name(const char *stream, const char *uid,
                                     char out[static SL_STREAM_NAME_MAX + 1])
{
	char hex[65], full[SL_STREAM_NAME_MAX + 64];
	bool ok;

	sl_sha256_hex(uid, strlen(uid), hex);
	hex[8] = '\0';
	/* Fit the stream part so the suffix survives and stays deterministic. */
	char head[SL_STREAM_NAME_MAX + 1];
	sl_stream_name_fit(stream, SL_STREAM_NAME_MAX - 26, head);
	ok = sl_snprintf_ok(full, sizeof(full), "%s-initial-backfill-%s", head, hex) &&
	     sl_snprintf_ok(out, SL_STREAM_NAME_MAX + 1, "%s", full);
	assert(ok); /* head left room for the 26-byte suffix */
	(void)ok;
}

/* ---- canonical JSON ------------------------------------------------------- */

char *sl_stream_canonical_json(const cJSON *v)
{
	return sl_manifest_json_go(v);
}

/* ---- helpers -------------------------------------------------------------- */

static cJSON *arr_ensure(cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsArray(v))
		return v;
	if (v)
		cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	return cJSON_AddArrayToObject(o, key);
}

static int set_str(cJSON *o, const char *key, const char *val)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	return cJSON_AddStringToObject(o, key, val) ? 0 : SL_ENOMEM;
}

/* Copies the string members of src (labels, annotations) into dst. */
static int merge_strings(cJSON *dst, const cJSON *src)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, src)
	{
		if (cJSON_IsString(c) && c->string && set_str(dst, c->string, c->valuestring) < 0)
			return SL_ENOMEM;
	}
	return 0;
}

/* "Kind ns/name" of an object for messages. */
static void describe(const cJSON *o, const char *fallback_kind, char *out, size_t n)
{
	const cJSON *md = sl_manifest_obj(o, "metadata");
	const char *kind = sl_manifest_str(o, "kind"), *ns = sl_manifest_str(md, "namespace"),
	           *name = sl_manifest_str(md, "name");

	snprintf(out, n, "%s %s%s%s", kind ? kind : fallback_kind, ns ? ns : "", ns ? "/" : "",
	         name ? name : "(unnamed)");
}

/* ---- configuration hash ---------------------------------------------------- */

/* configuration-hash from the SPEC (and OVERRIDE) texts already built: a Job
 * build needs them for the container environment too, so they are made once. */
static void config_hash_of(const char *spec_json, const char *override_json,
                           char out[static SL_STREAM_HASH_MAX])
{
	char a[33], b[33];

	sl_md5_hex(spec_json, strlen(spec_json), a);
	if (!override_json) {
		memcpy(out, a, sizeof(a));
		return;
	}
	/* Arcane: fmt.Sprintf("%x:%x", md5hex(spec), md5hex(override)), the
	 * hex of the two hex strings. */
	sl_md5_hex(override_json, strlen(override_json), b);
	sl_hex((const uint8_t *)a, 32, out);
	out[64] = ':';
	sl_hex((const uint8_t *)b, 32, out + 65);
}

int sl_stream_config_hash(const cJSON *stream, const cJSON *backfill, char out[static SL_STREAM_HASH_MAX],
                          struct sl_error *err)
{
	char *a = sl_stream_canonical_json(cJSON_GetObjectItemCaseSensitive(stream, "spec"));
	char *b =
	    backfill ? sl_stream_canonical_json(cJSON_GetObjectItemCaseSensitive(backfill, "spec")) : NULL;
	int r = 0;

	if (!a || (backfill && !b))
		r = sl_error_set(err, SL_ENOMEM, "out of memory hashing the configuration");
	else
		config_hash_of(a, b, out);
	free(a);
	free(b);
	return r;
}

int sl_stream_template_hash(const cJSON *tmpl, char out[static 65], struct sl_error *err)
{
	char *t = sl_stream_canonical_json(cJSON_GetObjectItemCaseSensitive(tmpl, "spec"));

	if (!t)
		return sl_error_set(err, SL_ENOMEM, "out of memory hashing the template");
	sl_sha256_hex(t, strlen(t), out);
	free(t);
	return 0;
}

static void status_hash_of(const char *config_hash, const char *tmpl_hash,
                           char out[static SL_STREAM_STATUS_HASH_MAX])
{
	snprintf(out, SL_STREAM_STATUS_HASH_MAX, "%s/%.12s", config_hash, tmpl_hash);
}

int sl_stream_status_hash(const cJSON *stream, const cJSON *tmpl, const cJSON *backfill,
                          char out[static SL_STREAM_STATUS_HASH_MAX], struct sl_error *err)
{
	char h[SL_STREAM_HASH_MAX], t[65];
	int r = sl_stream_config_hash(stream, backfill, h, err);

	if (r == 0)
		r = sl_stream_template_hash(tmpl, t, err);
	if (r == 0)
		status_hash_of(h, t, out);
	return r;
}

/* ---- template shapes ------------------------------------------------------- */

/* Finds the Job in a template: *ret_spec gets a new copy of its JobSpec, and
 * the template metadata labels and annotations are merged into labels and
 * annotations. */
static int template_job(const cJSON *tmpl, const char *what, cJSON **ret_spec, cJSON *labels,
                        cJSON *annotations, struct sl_error *err)
{
	const cJSON *ts = sl_manifest_obj(tmpl, "spec"), *t, *spec = NULL;
	const cJSON *meta[2] = {NULL, NULL};

	if (!ts)
		return sl_error_set(err, SL_EINVALID, "%s has no spec", what);
	t = sl_manifest_obj(ts, "template");
	if (sl_manifest_obj(ts, "spec") &&
	    (cJSON_HasObjectItem(ts, "kind") || cJSON_HasObjectItem(ts, "apiVersion"))) {
		/* A whole Job in spec. */
		spec = sl_manifest_obj(ts, "spec");
		meta[0] = sl_manifest_obj(ts, "metadata");
	} else if (t && sl_manifest_obj(t, "spec") &&
	           (cJSON_HasObjectItem(t, "kind") || cJSON_HasObjectItem(t, "apiVersion") ||
	            sl_manifest_obj(sl_manifest_obj(t, "spec"), "template"))) {
		/* Arcane: spec.template is a whole Job, spec.metadata its labels. */
		spec = sl_manifest_obj(t, "spec");
		meta[0] = sl_manifest_obj(t, "metadata");
		meta[1] = sl_manifest_obj(ts, "metadata");
	} else if (t) {
		/* spec is a Job spec; a spec.metadata next to it is taken as the
		 * Job's metadata (a JobSpec has no such field). */
		spec = ts;
		meta[0] = sl_manifest_obj(ts, "metadata");
	}
	if (!spec || !sl_manifest_obj(spec, "template"))
		return sl_error_set(err, SL_EINVALID,
		                    "%s holds no Job: expected spec.template (a Job spec), spec.template "
		                    "as a whole Job, or spec.apiVersion/kind/metadata/spec",
		                    what);
	for (size_t i = 0; i < 2; i++) {
		if (merge_strings(labels, sl_manifest_obj(meta[i], "labels")) < 0 ||
		    merge_strings(annotations, sl_manifest_obj(meta[i], "annotations")) < 0)
			return sl_error_set(err, SL_ENOMEM, "out of memory");
	}
	cJSON *copy = cJSON_Duplicate(spec, true);
	if (!copy)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	cJSON_DeleteItemFromObjectCaseSensitive(copy, "metadata");
	*ret_spec = copy;
	return 0;
}

/* ---- env ------------------------------------------------------------------- */

/* Removes env entries named name (ours replace what a template may set). */
static void env_remove(cJSON *env, const char *name)
{
	cJSON *c = env->child;

	while (c) {
		cJSON *next = c->next;
		const char *n = sl_manifest_str(c, "name");
		if (n && strcmp(n, name) == 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(env, c));
		c = next;
	}
}

static int env_add(cJSON *env, const char *name, const char *value)
{
	cJSON *e;

	env_remove(env, name);
	e = cJSON_CreateObject();
	if (!e || !cJSON_AddStringToObject(e, "name", name) || !cJSON_AddStringToObject(e, "value", value)) {
		cJSON_Delete(e);
		return SL_ENOMEM;
	}
	cJSON_AddItemToArray(env, e);
	return 0;
}

static int env_add_secret_key(cJSON *env, const char *name, const char *secret)
{
	cJSON *e = cJSON_CreateObject(), *ref;

	env_remove(env, name);
	if (!e || !cJSON_AddStringToObject(e, "name", name) ||
	    !(ref = cJSON_AddObjectToObject(e, "valueFrom")) ||
	    !(ref = cJSON_AddObjectToObject(ref, "secretKeyRef")) ||
	    !cJSON_AddStringToObject(ref, "name", secret) || !cJSON_AddStringToObject(ref, "key", name)) {
		cJSON_Delete(e);
		return SL_ENOMEM;
	}
	cJSON_AddItemToArray(env, e);
	return 0;
}

static int envfrom_add(cJSON *envfrom, const char *secret)
{
	cJSON *e = cJSON_CreateObject(), *ref;
	const cJSON *c;

	cJSON_ArrayForEach(c, envfrom)
	{
		const char *n = sl_manifest_str(sl_manifest_obj(c, "secretRef"), "name");
		if (n && strcmp(n, secret) == 0) {
			cJSON_Delete(e);
			return 0;
		}
	}
	if (!e || !(ref = cJSON_AddObjectToObject(e, "secretRef")) ||
	    !cJSON_AddStringToObject(ref, "name", secret)) {
		cJSON_Delete(e);
		return SL_ENOMEM;
	}
	cJSON_AddItemToArray(envfrom, e);
	return 0;
}

/* ---- the builder ------------------------------------------------------------ */

static int env_add_field_ref(cJSON *env, const char *name, const char *path)
{
	cJSON *e = cJSON_CreateObject(), *ref;

	env_remove(env, name);
	if (!e || !cJSON_AddStringToObject(e, "name", name) ||
	    !(ref = cJSON_AddObjectToObject(e, "valueFrom")) ||
	    !(ref = cJSON_AddObjectToObject(ref, "fieldRef")) ||
	    !cJSON_AddStringToObject(ref, "fieldPath", path)) {
		cJSON_Delete(e);
		return SL_ENOMEM;
	}
	cJSON_AddItemToArray(env, e);
	return 0;
}

/* The OVERRIDE of a CronJob's runs: the Arcane operator passes an empty
 * BackfillRequest's spec. */
#define BATCH_OVERRIDE "{\"streamClass\":\"\",\"streamId\":\"\"}"

/* The environment and secrets every container gets. */
struct job_env {
	bool batch;
	const char *stream_id, *kind, *spec_json, *backfill_id, *override_json;
	const cJSON *secret_refs; /* StreamClass spec.secretRefs */
	const cJSON *stream_spec;
};

/* Where the secret of StreamClass secretRefs entry f comes from: the
 * stream's spec.f.name (all its keys, envFrom), else spec.secretRef.name
 * (its key f); SL_EINVALID when the stream names neither. */
static int secret_for(const cJSON *stream_spec, const char *f, const char **direct, const char **shared,
                      struct sl_error *err)
{
	*direct = sl_manifest_str(sl_manifest_obj(stream_spec, f), "name");
	*shared = sl_manifest_str(sl_manifest_obj(stream_spec, "secretRef"), "name");
	if (!*direct && !*shared)
		return sl_error_set(err, SL_EINVALID,
		                    "spec.%s: missing secret reference: the StreamClass asks for it; "
		                    "expected spec.%s.name or spec.secretRef.name",
		                    f, f);
	return 0;
}

static int container_apply(cJSON *ctr, const struct job_env *je, const char *tmpl_what, struct sl_error *err)
{
	const char *cname = sl_manifest_str(ctr, "name");
	cJSON *env = arr_ensure(ctr, "env"), *envfrom;
	const cJSON *c;

	if (!env)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	cJSON_ArrayForEach(c, env)
	{
		const char *n = sl_manifest_str(c, "name");
		if (n &&
		    (strcmp(n, SL_ARCANE_ENV_STREAM_ID) == 0 || strcmp(n, SL_ARCANE_ENV_STREAM_KIND) == 0))
			return sl_error_set(err, SL_EINVALID,
			                    "%s: container \"%s\" already sets %s, which sluice sets for the "
			                    "stream",
			                    tmpl_what, cname ? cname : "", n);
	}
	if (env_add(env, SL_ARCANE_ENV_STREAM_ID, je->stream_id) < 0 ||
	    env_add(env, SL_ARCANE_ENV_STREAM_KIND, je->kind) < 0 ||
	    env_add(env, SL_ARCANE_ENV_SPEC, je->spec_json) < 0 ||
	    env_add(env, SL_ARCANE_ENV_BACKFILL, je->backfill_id || je->batch ? "true" : "false") < 0)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	if (je->backfill_id && (env_add(env, SL_ARCANE_ENV_BACKFILL_ID, je->backfill_id) < 0 ||
	                        env_add(env, SL_ARCANE_ENV_OVERRIDE, je->override_json) < 0))
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	/* A CronJob's run is a backfill named after its own Job. */
	if (je->batch &&
	    (env_add_field_ref(env, SL_ARCANE_ENV_BACKFILL_ID, "metadata.labels['job-name']") < 0 ||
	     env_add(env, SL_ARCANE_ENV_OVERRIDE, BATCH_OVERRIDE) < 0))
		return sl_error_set(err, SL_ENOMEM, "out of memory");

	cJSON_ArrayForEach(c, je->secret_refs)
	{
		const char *f = cJSON_IsString(c) ? c->valuestring : NULL, *direct, *shared;
		if (!f || !*f)
			continue;
		int r = secret_for(je->stream_spec, f, &direct, &shared, err);
		if (r < 0)
			return r;
		if (direct) {
			if (!(envfrom = arr_ensure(ctr, "envFrom")) || envfrom_add(envfrom, direct) < 0)
				return sl_error_set(err, SL_ENOMEM, "out of memory");
		} else if (env_add_secret_key(env, f, shared) < 0) {
			return sl_error_set(err, SL_ENOMEM, "out of memory");
		}
	}
	return 0;
}

/* One Job being built: its inputs read once, and what it owns until it is
 * assembled. */
struct build {
	const struct sl_stream_job_input *in;
	const char *name, *ns, *uid, *kind, *api; /* the stream's */
	const char *bfr_name;                     /* the BackfillRequest's, or NULL */
	char what[SL_STREAM_NAME_MAX + 96];       /* the template, for messages */
	cJSON *spec, *labels, *annotations;       /* owned until assembled */
	char *spec_json, *override_json;          /* owned */
	char hash[SL_STREAM_HASH_MAX], thash[65];
};

/* The input must name the stream fully, and a template. */
static int build_check(struct build *b, struct sl_error *err)
{
	const struct sl_stream_job_input *in = b->in;
	const cJSON *smd = sl_manifest_obj(in->stream, "metadata");

	b->name = sl_manifest_str(smd, "name");
	b->ns = sl_manifest_str(smd, "namespace");
	b->uid = sl_manifest_str(smd, "uid");
	b->kind = sl_manifest_str(in->stream, "kind");
	b->api = sl_manifest_str(in->stream, "apiVersion");
	b->bfr_name =
	    in->backfill ? sl_manifest_str(sl_manifest_obj(in->backfill, "metadata"), "name") : NULL;
	if (!b->name || !b->ns || !b->uid || !b->kind || !b->api)
		return sl_error_set(err, SL_EINVALID, "the stream lacks %s",
		                    !b->name   ? "metadata.name"
		                    : !b->ns   ? "metadata.namespace"
		                    : !b->uid  ? "metadata.uid"
		                    : !b->kind ? "kind"
		                               : "apiVersion");
	if (!in->tmpl)
		return sl_error_set(err, SL_EINVALID, "no StreamingJobTemplate given");
	if (in->batch && in->backfill)
		return sl_error_set(err, SL_EINVALID, "a CronJob's Job runs no BackfillRequest");
	if (in->backfill && !b->bfr_name)
		return sl_error_set(err, SL_EINVALID, "the BackfillRequest lacks metadata.name");
	describe(in->tmpl, "StreamingJobTemplate", b->what, sizeof(b->what));
	return 0;
}

/* The template's Job: its spec, labels and annotations to start from. */
static int build_base(struct build *b, struct sl_error *err)
{
	b->labels = cJSON_CreateObject();
	b->annotations = cJSON_CreateObject();
	if (!b->labels || !b->annotations)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	return template_job(b->in->tmpl, b->what, &b->spec, b->labels, b->annotations, err);
}

/* The containers the environment goes on: at least one. */
static cJSON *containers(const struct build *b, struct sl_error *err)
{
	cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(
	    sl_manifest_obj(sl_manifest_obj(b->spec, "template"), "spec"), "containers");

	if (!cJSON_IsArray(ctrs) || cJSON_GetArraySize(ctrs) == 0) {
		sl_error_set(err, SL_EINVALID, "%s: spec.template.spec.containers of its Job is empty",
		             b->what);
		return NULL;
	}
	return ctrs;
}

/* SPEC and OVERRIDE as the job sees them, and the hashes made from them. */
static int build_hashes(struct build *b, struct sl_error *err)
{
	const struct sl_stream_job_input *in = b->in;

	b->spec_json = sl_stream_canonical_json(cJSON_GetObjectItemCaseSensitive(in->stream, "spec"));
	b->override_json =
	    in->backfill ? sl_stream_canonical_json(cJSON_GetObjectItemCaseSensitive(in->backfill, "spec"))
	                 : NULL;
	if (!b->spec_json || (in->backfill && !b->override_json))
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	config_hash_of(b->spec_json, b->override_json, b->hash);
	return sl_stream_template_hash(in->tmpl, b->thash, err);
}

/* The STREAMCONTEXT__* environment and the secrets, on every container. */
static int build_env(struct build *b, cJSON *ctrs, struct sl_error *err)
{
	const struct sl_stream_job_input *in = b->in;
	struct job_env je = {
	    .batch = in->batch,
	    .stream_id = b->name,
	    .kind = b->kind,
	    .spec_json = b->spec_json,
	    .backfill_id = b->bfr_name,
	    .override_json = b->override_json,
	    .secret_refs =
	        cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(in->stream_class, "spec"), "secretRefs"),
	    .stream_spec = cJSON_GetObjectItemCaseSensitive(in->stream, "spec"),
	};
	cJSON *c;
	int r;

	cJSON_ArrayForEach(c, ctrs)
	{
		if (!cJSON_IsObject(c))
			return sl_error_set(err, SL_EINVALID, "%s: a container is not an object", b->what);
		r = container_apply(c, &je, b->what, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The stream's shard goes on what is built for it, so that the Job and
 * CronJob informers of that shard (selecting on the label) see them; a
 * template's own shard label never moves a Job out of its stream's shard. */
static int build_shard(struct build *b)
{
	const char *shard = sl_arcane_shard_of(b->in->stream);

	if (!shard) {
		cJSON_DeleteItemFromObjectCaseSensitive(b->labels, SL_ARCANE_LABEL_SHARD);
		return 0;
	}
	return set_str(b->labels, SL_ARCANE_LABEL_SHARD, shard);
}

/* Our labels and annotations over the template's. */
static int build_labels(struct build *b, struct sl_error *err)
{
	char label[64];

	/* Label values are at most 63 bytes: a longer stream name is fitted the
	 * same way as the Job name (the ownerReference stays exact). */
	sl_stream_name_fit(b->name, 63, label);
	if (set_str(b->labels, SL_ARCANE_LABEL_STREAM_ID, label) < 0 ||
	    set_str(b->labels, SL_ARCANE_LABEL_ID, label) < 0 ||
	    set_str(b->labels, SL_ARCANE_LABEL_KIND, b->kind) < 0 ||
	    set_str(b->labels, SL_ARCANE_LABEL_BACKFILLING, b->in->backfill ? "true" : "false") < 0 ||
	    set_str(b->labels, SL_ARCANE_LABEL_MANAGED_BY, SL_ARCANE_MANAGED_BY) < 0 || build_shard(b) < 0 ||
	    set_str(b->annotations, SL_ARCANE_ANN_CONFIG_HASH, b->hash) < 0 ||
	    set_str(b->annotations, SL_ARCANE_ANN_TEMPLATE_HASH, b->thash) < 0 ||
	    (b->bfr_name && set_str(b->annotations, SL_ARCANE_ANN_BACKFILL_REQUEST, b->bfr_name) < 0))
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	return 0;
}

/* The Job itself: name, namespace, labels, annotations, the controlling
 * ownerReference and the spec, moved out of b. */
static int build_assemble(struct build *b, cJSON **ret_job, struct sl_error *err)
{
	cJSON *job = cJSON_CreateObject(), *md, *refs, *o = NULL;
	char jname[64];

	sl_stream_job_name(b->name, b->in->backfill != NULL, jname);
	if (!job || !cJSON_AddStringToObject(job, "apiVersion", "batch/v1") ||
	    !cJSON_AddStringToObject(job, "kind", "Job") ||
	    !(md = cJSON_AddObjectToObject(job, "metadata")) || !cJSON_AddStringToObject(md, "name", jname) ||
	    !cJSON_AddStringToObject(md, "namespace", b->ns))
		goto oom;
	cJSON_AddItemToObject(md, "labels", TAKE_PTR(b->labels));
	cJSON_AddItemToObject(md, "annotations", TAKE_PTR(b->annotations));
	refs = cJSON_AddArrayToObject(md, "ownerReferences");
	o = cJSON_CreateObject();
	if (!refs || !o || !cJSON_AddStringToObject(o, "apiVersion", b->api) ||
	    !cJSON_AddStringToObject(o, "kind", b->kind) || !cJSON_AddStringToObject(o, "name", b->name) ||
	    !cJSON_AddStringToObject(o, "uid", b->uid) || !cJSON_AddTrueToObject(o, "controller") ||
	    !cJSON_AddTrueToObject(o, "blockOwnerDeletion"))
		goto oom;
	cJSON_AddItemToArray(refs, o);
	cJSON_AddItemToObject(job, "spec", TAKE_PTR(b->spec));
	*ret_job = job;
	return 0;
oom:
	cJSON_Delete(o);
	cJSON_Delete(job);
	return sl_error_set(err, SL_ENOMEM, "out of memory");
}

int sl_stream_job_build(const struct sl_stream_job_input *in, cJSON **ret_job, struct sl_error *err)
{
	struct build b = {.in = in};
	cJSON *ctrs = NULL;
	int r;

	r = build_check(&b, err);
	if (r == 0)
		r = build_base(&b, err);
	if (r == 0 && !(ctrs = containers(&b, err)))
		r = SL_EINVALID;
	if (r == 0)
		r = build_hashes(&b, err);
	if (r == 0)
		r = build_env(&b, ctrs, err);
	if (r == 0)
		r = build_labels(&b, err);
	if (r == 0)
		r = build_assemble(&b, ret_job, err);
	cJSON_Delete(b.spec);
	cJSON_Delete(b.labels);
	cJSON_Delete(b.annotations);
	free(b.spec_json);
	free(b.override_json);
	return r;
}

int sl_stream_job_hashes(const struct sl_stream_job_input *in, char hash[static SL_STREAM_HASH_MAX],
                         char thash[static 65], struct sl_error *err)
{
	struct build b = {.in = in};
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(in->stream, "spec"), *c;
	const char *direct, *shared;
	int r = build_check(&b, err);

	cJSON_ArrayForEach(
	    c, cJSON_GetObjectItemCaseSensitive(sl_manifest_obj(in->stream_class, "spec"), "secretRefs"))
	{
		if (r == 0 && cJSON_IsString(c) && *c->valuestring)
			r = secret_for(spec, c->valuestring, &direct, &shared, err);
	}
	if (r == 0)
		r = sl_stream_config_hash(in->stream, in->backfill, hash, err);
	if (r == 0)
		r = sl_stream_template_hash(in->tmpl, thash, err);
	return r;
}

int sl_stream_cronjob_build(const struct sl_stream_job_input *in, const char *schedule, bool suspend,
                            cJSON **ret, struct sl_error *err)
{
	struct sl_stream_job_input bin = *in;
	cJSON *job = NULL, *cj = NULL, *md, *jmd, *spec, *jt, *jtmd;
	char cname[64];
	int r;

	if (!schedule || !*schedule)
		return sl_error_set(err, SL_EINVALID, "a CronJob needs a schedule");
	bin.batch = true;
	bin.backfill = NULL;
	r = sl_stream_job_build(&bin, &job, err);
	if (r < 0)
		return r;
	/* The Job's metadata becomes the CronJob's; its labels and annotations
	 * also go on the job template, so the runs carry the stream's labels. */
	md = cJSON_DetachItemFromObjectCaseSensitive(job, "metadata");
	jmd = cJSON_CreateObject();
	sl_stream_cronjob_name(sl_manifest_str(sl_manifest_obj(in->stream, "metadata"), "name"), cname);
	cj = cJSON_CreateObject();
	/* in place: the name stays first in metadata */
	cJSON *nm = cJSON_CreateString(cname);
	if (!nm || !cJSON_ReplaceItemInObjectCaseSensitive(md, "name", nm)) {
		cJSON_Delete(nm);
		cJSON_Delete(md);
		cJSON_Delete(jmd);
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto out;
	}
	if (!md || !jmd || !cj ||
	    !cJSON_AddItemToObject(jmd, "labels",
	                           cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(md, "labels"), true)) ||
	    !cJSON_AddItemToObject(
	        jmd, "annotations",
	        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(md, "annotations"), true))) {
		cJSON_Delete(md);
		cJSON_Delete(jmd);
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto out;
	}
	if (!cJSON_AddStringToObject(cj, "apiVersion", "batch/v1") ||
	    !cJSON_AddStringToObject(cj, "kind", "CronJob")) {
		cJSON_Delete(md);
		cJSON_Delete(jmd);
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto out;
	}
	cJSON_AddItemToObject(cj, "metadata", md);
	spec = cJSON_AddObjectToObject(cj, "spec");
	jt = spec ? cJSON_CreateObject() : NULL;
	if (!spec || !jt || !cJSON_AddStringToObject(spec, "schedule", schedule) ||
	    !cJSON_AddStringToObject(spec, "concurrencyPolicy", "Forbid") ||
	    !cJSON_AddBoolToObject(spec, "suspend", suspend)) {
		cJSON_Delete(jt);
		cJSON_Delete(jmd);
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto out;
	}
	cJSON_AddItemToObject(spec, "jobTemplate", jt);
	jtmd = jmd;
	cJSON_AddItemToObject(jt, "metadata", jtmd);
	cJSON_AddItemToObject(jt, "spec", cJSON_DetachItemFromObjectCaseSensitive(job, "spec"));
	*ret = TAKE_PTR(cj);
	r = 0;
out:
	cJSON_Delete(cj);
	cJSON_Delete(job);
	return r;
}
