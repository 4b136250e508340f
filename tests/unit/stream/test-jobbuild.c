/* Unit tests of the Job builder: one test per rule of the Job contract in
 * design.md, both template shapes (and Arcane's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "json-fixtures.h"
#include "sluice/manifest-json.h"
#include "sluice/stream.h"

#include <stdio.h>
#include <string.h>

/* The env entry named name of a container, or NULL. */
static const cJSON *env(const cJSON *ctr, const char *name)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(ctr, "env"))
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
			return e;
	}
	return NULL;
}

static size_t env_count(const cJSON *ctr, const char *name)
{
	size_t n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(ctr, "env"))
	{
		const cJSON *x = cJSON_GetObjectItemCaseSensitive(e, "name");
		n += cJSON_IsString(x) && strcmp(x->valuestring, name) == 0;
	}
	return n;
}

#define STREAM                                                                          \
	"{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'MockStream',"           \
	"'metadata':{'name':'orders','namespace':'team-a','uid':'0b7c-uid'},"           \
	"'spec':{'zeta':1,'alpha':{'y':2,'x':1},'jobTemplateRef':{'name':'streaming'}," \
	"'connectionStringRef':{'name':'orders-conn'}}}"
#define CLASS                                                                                             \
	"{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'StreamClass','metadata':{'name':'mock'}," \
	"'spec':{'apiGroupRef':'streaming.sneaksanddata.com','apiVersion':'v1','kindRef':'MockStream',"   \
	"'pluralName':'mockstreams','secretRefs':['connectionStringRef']}}"
/* Shape 1: a Job spec in spec. */
#define TMPL_JOBSPEC                                                                            \
	"{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'StreamingJobTemplate',"         \
	"'metadata':{'name':'streaming','namespace':'team-a','labels':{'not':'copied'}},"       \
	"'spec':{'backoffLimit':3,'template':{'metadata':{'labels':{'pod':'label'}},"           \
	"'spec':{'restartPolicy':'Never','initContainers':[{'name':'init','image':'busybox'}]," \
	"'containers':[{'name':'main','image':'img:1','env':[{'name':'KEEP','value':'1'}]},"    \
	"{'name':'side','image':'side:1'}]}}}}"
/* Shape 2: a whole Job in spec. */
#define TMPL_WHOLE                                                                                         \
	"{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'StreamingJobTemplate',"                    \
	"'metadata':{'name':'whole','namespace':'team-a'},"                                                \
	"'spec':{'apiVersion':'batch/v1','kind':'Job','metadata':{'name':'ignored','labels':{'team':'a'}," \
	"'annotations':{'note':'kept'}},'spec':{'backoffLimit':5,'ttlSecondsAfterFinished':60,"            \
	"'template':{'spec':{'restartPolicy':'Never','containers':[{'name':'main','image':'img:2'}]}}}}}"
/* Arcane's shape: spec.template is a whole Job, spec.metadata its metadata. */
#define TMPL_ARCANE                                                                       \
	"{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'StreamingJobTemplate',"   \
	"'metadata':{'name':'arcane','namespace':'team-a'},"                              \
	"'spec':{'metadata':{'labels':{'from':'spec-metadata'},'annotations':{'a':'b'}}," \
	"'template':{'apiVersion':'batch/v1','kind':'job','spec':{'backoffLimit':1,"      \
	"'template':{'spec':{'restartPolicy':'Never','containers':[{'name':'main','image':'img:3'}]}}}}}}"
#define BFR                                                                        \
	"{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'BackfillRequest'," \
	"'metadata':{'name':'orders-bf-1','namespace':'team-a'},"                  \
	"'spec':{'streamClass':'mock','streamId':'orders','completed':false,'payload':{'b':1,'a':2}}}"

struct fx {
	cJSON *stream, *cls, *tmpl, *bfr, *job;
	struct sl_error err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->stream = J(STREAM);
	f->cls = J(CLASS);
	f->tmpl = J(TMPL_JOBSPEC);
	f->bfr = J(BFR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	cJSON_Delete(f->stream);
	cJSON_Delete(f->cls);
	cJSON_Delete(f->tmpl);
	cJSON_Delete(f->bfr);
	cJSON_Delete(f->job);
	free(f);
	return 0;
}

static int build(struct fx *f, bool backfill)
{
	struct sl_stream_job_input in = {f->stream, f->cls, f->tmpl, backfill ? f->bfr : NULL};
	cJSON_Delete(f->job);
	f->job = NULL;
	return sl_stream_job_build(&in, &f->job, &f->err);
}

/* Rule: name S for the streaming Job, namespace N, apiVersion/kind of a Job. */
static void name_streaming(void **state)
{
	struct fx *f = *state;
	assert_int_equal(build(f, false), 0);
	assert_string_equal(str(f->job, "metadata.name"), "orders");
	assert_string_equal(str(f->job, "metadata.namespace"), "team-a");
	assert_string_equal(str(f->job, "apiVersion"), "batch/v1");
	assert_string_equal(str(f->job, "kind"), "Job");
}

/* Rule: S-backfill for a backfill Job. */
static void name_backfill(void **state)
{
	struct fx *f = *state;
	assert_int_equal(build(f, true), 0);
	assert_string_equal(str(f->job, "metadata.name"), "orders-backfill");
}

/* Rule: a name over 63 characters is cut and given a short hash suffix. */
static void name_long(void **state)
{
	char a[64], b[64], c[64];
	const char *n1 = "a-very-long-stream-name-that-goes-on-and-on-beyond-the-label-limit-one";
	const char *n2 = "a-very-long-stream-name-that-goes-on-and-on-beyond-the-label-limit-two";
	sl_stream_job_name(n1, true, a);
	sl_stream_job_name(n2, true, b);
	sl_stream_job_name(n1, true, c);
	assert_int_equal(strlen(a), 63);
	assert_string_not_equal(a, b);
	assert_string_equal(a, c); /* stable */
	assert_memory_equal(a, n1, 54);
	assert_int_equal(a[54], '-');
	/* A name exactly 63 long is kept; 64 is cut. */
	char s63[64], s64[65], out[64];
	memset(s63, 'x', 63), s63[63] = 0;
	memset(s64, 'x', 64), s64[64] = 0;
	sl_stream_job_name(s63, false, out);
	assert_string_equal(out, s63);
	sl_stream_job_name(s64, false, out);
	assert_int_equal(strlen(out), 63);
	assert_string_not_equal(out, s63);
	/* A cut never ends in '-' before the suffix. */
	char dash[80];
	snprintf(dash, sizeof(dash), "%s",
	         "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza-----------x");
	sl_stream_name_fit(dash, 63, out);
	assert_int_equal(strlen(out) <= 63, 1);
	assert_null(strstr(out, "--"));

	/* The builder uses it, and fits the label values too. */
	struct fx *f = *state;
	cJSON_ReplaceItemInObject(at(f->stream, "metadata"), "name", cJSON_CreateString(n1));
	assert_int_equal(build(f, true), 0);
	assert_string_equal(str(f->job, "metadata.name"), a);
	assert_int_equal(strlen(str(f->job, "metadata.labels.streamId")), 63);
	assert_string_equal(str(f->job, "metadata.ownerReferences.0.name"), n1);
}

/* Rule: base is the template's Job; shape 1 (a Job spec in spec). */
static void base_jobspec_shape(void **state)
{
	struct fx *f = *state;
	assert_int_equal(build(f, false), 0);
	assert_int_equal(at(f->job, "spec.backoffLimit")->valueint, 3);
	assert_string_equal(str(f->job, "spec.template.spec.restartPolicy"), "Never");
	assert_string_equal(str(f->job, "spec.template.metadata.labels.pod"), "label");
	assert_string_equal(str(f->job, "spec.template.spec.containers.0.image"), "img:1");
	/* the template object's own labels are not the Job's */
	assert_null(at(f->job, "metadata.labels.not"));
}

/* Rule: base is the template's Job; shape 2 (a whole Job), its metadata
 * labels and annotations kept, its name not. */
static void base_whole_job_shape(void **state)
{
	struct fx *f = *state;
	cJSON_Delete(f->tmpl);
	f->tmpl = J(TMPL_WHOLE);
	assert_int_equal(build(f, false), 0);
	assert_string_equal(str(f->job, "metadata.name"), "orders");
	assert_string_equal(str(f->job, "metadata.labels.team"), "a");
	assert_string_equal(str(f->job, "metadata.annotations.note"), "kept");
	assert_int_equal(at(f->job, "spec.backoffLimit")->valueint, 5);
	assert_int_equal(at(f->job, "spec.ttlSecondsAfterFinished")->valueint, 60);
	assert_string_equal(str(f->job, "spec.template.spec.containers.0.image"), "img:2");
	assert_string_equal(str(f->job, "kind"), "Job");
}

/* Arcane's templates: spec.template is a whole Job, spec.metadata its labels. */
static void base_arcane_shape(void **state)
{
	struct fx *f = *state;
	cJSON_Delete(f->tmpl);
	f->tmpl = J(TMPL_ARCANE);
	assert_int_equal(build(f, false), 0);
	assert_string_equal(str(f->job, "metadata.labels.from"), "spec-metadata");
	assert_string_equal(str(f->job, "metadata.annotations.a"), "b");
	assert_int_equal(at(f->job, "spec.backoffLimit")->valueint, 1);
	assert_string_equal(str(f->job, "spec.template.spec.containers.0.image"), "img:3");
	assert_string_equal(str(f->job, "kind"), "Job");
}

/* A template holding no Job is an error naming the template. */
static void template_without_job(void **state)
{
	struct fx *f = *state;
	cJSON_Delete(f->tmpl);
	f->tmpl = J(
	    "{'kind':'StreamingJobTemplate','metadata':{'name':'x','namespace':'team-a'},'spec':{'foo':1}}");
	assert_int_equal(build(f, false), SL_EINVALID);
	assert_non_null(strstr(f->err.msg, "StreamingJobTemplate team-a/x"));
	cJSON_Delete(f->tmpl);
	f->tmpl = J("{'kind':'StreamingJobTemplate','metadata':{'name':'x'},'spec':{'template':{'spec':{'"
	            "containers':[]}}}}");
	assert_int_equal(build(f, false), SL_EINVALID);
	assert_non_null(strstr(f->err.msg, "containers"));
	assert_null(f->job);
}

/* Rule: the five labels, arcane/backfilling "true"/"false". */
static void labels(void **state)
{
	struct fx *f = *state;
	assert_int_equal(build(f, false), 0);
	assert_string_equal(str(f->job, "metadata.labels.streamId"), "orders");
	assert_string_equal(str(f->job, "metadata.labels.arcane/stream-id"), "orders");
	assert_string_equal(str(f->job, "metadata.labels.arcane/stream-kind"), "MockStream");
	assert_string_equal(str(f->job, "metadata.labels.arcane/backfilling"), "false");
	const cJSON *l = at(f->job, "metadata.labels");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(l, "app.kubernetes.io/managed-by")->valuestring,
	                    "sluice");
	assert_int_equal(build(f, true), 0);
	assert_string_equal(str(f->job, "metadata.labels.arcane/backfilling"), "true");
}

/* The stream's sluice.dev/shard label goes on its Job and CronJob (and the
 * CronJob's job template); a template's own never does. */
static void shard_label(void **state)
{
	struct fx *f = *state;
	cJSON *cj = NULL;

	cJSON_Delete(f->tmpl);
	f->tmpl =
	    J("{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'StreamingJobTemplate',"
	      "'metadata':{'name':'whole','namespace':'team-a'},'spec':{'apiVersion':'batch/v1','kind':'Job',"
	      "'metadata':{'labels':{'sluice.dev/shard':'from-template','team':'a'}},"
	      "'spec':{'template':{'spec':{'restartPolicy':'Never','containers':[{'name':'m','image':'i'}]}}}"
	      "}}");
	assert_int_equal(build(f, false), 0);
	assert_null(cJSON_GetObjectItemCaseSensitive(at(f->job, "metadata.labels"), SL_ARCANE_LABEL_SHARD));
	assert_string_equal(str(f->job, "metadata.labels.team"), "a");

	cJSON *labels =
	    cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(f->stream, "metadata"), "labels");
	cJSON_AddStringToObject(labels, SL_ARCANE_LABEL_SHARD, "b");
	assert_int_equal(build(f, true), 0);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	                        at(f->job, "metadata.labels"), SL_ARCANE_LABEL_SHARD)),
	                    "b");
	struct sl_stream_job_input in = {f->stream, f->cls, f->tmpl, NULL};
	assert_int_equal(sl_stream_cronjob_build(&in, "*/5 * * * *", false, &cj, &f->err), 0);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(at(cj, "metadata.labels"),
	                                                                          SL_ARCANE_LABEL_SHARD)),
	                    "b");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	                        at(cj, "spec.jobTemplate.metadata.labels"), SL_ARCANE_LABEL_SHARD)),
	                    "b");
	cJSON_Delete(cj);
}

/* Rule: configuration-hash is Arcane's: lowercase hex MD5 of the
 * STREAMCONTEXT__SPEC value (key order does not matter, metadata is not part
 * of it); the template is tracked in sluice.dev/template-hash, so editing
 * either changes what the Job carries. */
static void configuration_hash(void **state)
{
	struct fx *f = *state;
	char h1[SL_STREAM_HASH_MAX], h2[SL_STREAM_HASH_MAX], h3[SL_STREAM_HASH_MAX], h4[SL_STREAM_HASH_MAX];
	char t1[65], t2[65], md5[33];
	assert_int_equal(build(f, false), 0);
	assert_int_equal(sl_stream_config_hash(f->stream, NULL, h1, &f->err), 0);
	assert_int_equal(strlen(h1), 32);
	assert_string_equal(str(f->job, "metadata.annotations.configuration-hash"), h1);
	/* md5 of exactly the SPEC env value */
	const cJSON *e;
	const char *spec = NULL;
	cJSON_ArrayForEach(e, at(f->job, "spec.template.spec.containers.0.env"))
	{
		if (strcmp(str(e, "name"), "STREAMCONTEXT__SPEC") == 0)
			spec = str(e, "value");
	}
	assert_non_null(spec);
	sl_md5_hex(spec, strlen(spec), md5);
	assert_string_equal(md5, h1);

	/* same content, other key order: same hash */
	cJSON *s2 = J("{'metadata':{'name':'orders'},'spec':{'zeta':1,'alpha':{'y':2,'x':1},"
	              "'jobTemplateRef':{'name':'streaming'},'connectionStringRef':{'name':'orders-conn'}}}");
	cJSON *s1 = J("{'metadata':{'name':'orders'},'spec':{'connectionStringRef':{'name':'orders-conn'},"
	              "'jobTemplateRef':{'name':'streaming'},'alpha':{'x':1,'y':2},'zeta':1}}");
	assert_int_equal(sl_stream_config_hash(s1, NULL, h1, &f->err), 0);
	assert_int_equal(sl_stream_config_hash(s2, NULL, h2, &f->err), 0);
	assert_string_equal(h1, h2);
	/* stream spec edited */
	cJSON_ReplaceItemInObject(at(s2, "spec"), "zeta", cJSON_CreateNumber(2));
	assert_int_equal(sl_stream_config_hash(s2, NULL, h3, &f->err), 0);
	assert_string_not_equal(h1, h3);
	/* metadata of the stream is not part of it */
	cJSON_AddStringToObject(at(s1, "metadata"), "resourceVersion", "99");
	assert_int_equal(sl_stream_config_hash(s1, NULL, h4, &f->err), 0);
	assert_string_equal(h1, h4);
	/* template spec edited: the template hash moves, the config hash not */
	assert_int_equal(sl_stream_template_hash(f->tmpl, t1, &f->err), 0);
	assert_string_equal(
	    cJSON_GetObjectItem(at(f->job, "metadata.annotations"), "sluice.dev/template-hash")->valuestring,
	    t1);
	cJSON_ReplaceItemInObject(at(f->tmpl, "spec"), "backoffLimit", cJSON_CreateNumber(4));
	assert_int_equal(sl_stream_template_hash(f->tmpl, t2, &f->err), 0);
	assert_string_not_equal(t1, t2);
	cJSON_Delete(s1);
	cJSON_Delete(s2);
}

/* Rule: a backfill Job's configuration-hash has Arcane's form:
 * hex(md5hex(SPEC)) ":" hex(md5hex(OVERRIDE)), 64 + 1 + 64 characters. */
static void configuration_hash_backfill(void **state)
{
	struct fx *f = *state;
	char h[SL_STREAM_HASH_MAX], a[33], want[130];
	assert_int_equal(build(f, true), 0);
	const char *got = str(f->job, "metadata.annotations.configuration-hash");
	assert_int_equal(strlen(got), 129);
	assert_int_equal(got[64], ':');
	char *spec = sl_stream_canonical_json(at(f->stream, "spec"));
	sl_md5_hex(spec, strlen(spec), a);
	sl_hex((const uint8_t *)a, 32, want);
	assert_memory_equal(got, want, 64);
	free(spec);
	assert_int_equal(sl_stream_config_hash(f->stream, f->bfr, h, &f->err), 0);
	assert_string_equal(h, got);
}

/* Rule: STREAMCONTEXT__* env on every container (not initContainers), spec as
 * JSON with sorted keys; the template's own env kept. */
static void env_streaming(void **state)
{
	struct fx *f = *state;
	assert_int_equal(build(f, false), 0);
	const cJSON *c;
	int n = 0;
	cJSON_ArrayForEach(c, at(f->job, "spec.template.spec.containers"))
	{
		n++;
		assert_string_equal(str(env(c, "STREAMCONTEXT__STREAM_ID"), "value"), "orders");
		assert_string_equal(str(env(c, "STREAMCONTEXT__STREAM_KIND"), "value"), "MockStream");
		assert_string_equal(str(env(c, "STREAMCONTEXT__BACKFILL"), "value"), "false");
		assert_string_equal(
		    str(env(c, "STREAMCONTEXT__SPEC"), "value"),
		    "{\"alpha\":{\"x\":1,\"y\":2},\"connectionStringRef\":{\"name\":\"orders-conn\"},"
		    "\"jobTemplateRef\":{\"name\":\"streaming\"},\"zeta\":1}");
		assert_null(env(c, "STREAMCONTEXT__BACKFILL_ID"));
		assert_null(env(c, "STREAMCONTEXT__OVERRIDE"));
	}
	assert_int_equal(n, 2);
	assert_string_equal(str(env(at(f->job, "spec.template.spec.containers.0"), "KEEP"), "value"), "1");
	assert_null(at(f->job, "spec.template.spec.initContainers.0.env"));
}

/* Rule: a backfill adds BACKFILL_ID (request name) and OVERRIDE (its spec). */
static void env_backfill(void **state)
{
	struct fx *f = *state;
	assert_int_equal(build(f, true), 0);
	const cJSON *c = at(f->job, "spec.template.spec.containers.1");
	assert_string_equal(str(env(c, "STREAMCONTEXT__BACKFILL"), "value"), "true");
	assert_string_equal(str(env(c, "STREAMCONTEXT__BACKFILL_ID"), "value"), "orders-bf-1");
	assert_string_equal(str(env(c, "STREAMCONTEXT__OVERRIDE"), "value"),
	                    "{\"completed\":false,\"payload\":{\"a\":2,\"b\":1},\"streamClass\":\"mock\","
	                    "\"streamId\":\"orders\"}");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(at(f->job, "metadata.annotations"),
	                                                     "sluice.dev/backfill-request")
	                        ->valuestring,
	                    "orders-bf-1");
}

/* Rule: SPEC and OVERRIDE are Go's json.Marshal of the specs the API server
 * returned (outputs of tests/gojson/main.go): integers beyond 2^53 exact,
 * Go's float format, HTML characters escaped. */
static void env_go_format(void **state)
{
	static const char spec[] = "{\"jobTemplateRef\":{\"name\":\"streaming\"},"
	                           "\"connectionStringRef\":{\"name\":\"orders-conn\"},"
	                           "\"watermark\":1712345678901234567,\"rate\":1e-7,\"big\":1e21,"
	                           "\"whole\":2.0,\"query\":\"a<b && c>d\"}";
	static const char bspec[] = "{\"streamClass\":\"mock\",\"streamId\":\"orders\",\"completed\":false,"
	                            "\"payload\":{\"from\":9007199254740993,\"ratio\":0.000001}}";
	struct fx *f = *state;
	cJSON *v = NULL;
	const cJSON *c;

	assert_int_equal(sl_manifest_json_parse(spec, strlen(spec), &v, NULL), 0);
	assert_true(cJSON_ReplaceItemInObjectCaseSensitive(f->stream, "spec", v));
	assert_int_equal(sl_manifest_json_parse(bspec, strlen(bspec), &v, NULL), 0);
	assert_true(cJSON_ReplaceItemInObjectCaseSensitive(f->bfr, "spec", v));
	assert_int_equal(build(f, true), 0);
	c = at(f->job, "spec.template.spec.containers.0");
	assert_string_equal(str(env(c, "STREAMCONTEXT__SPEC"), "value"),
	                    "{\"big\":1e+21,\"connectionStringRef\":{\"name\":\"orders-conn\"},"
	                    "\"jobTemplateRef\":{\"name\":\"streaming\"},"
	                    "\"query\":\"a\\u003cb \\u0026\\u0026 c\\u003ed\",\"rate\":1e-7,"
	                    "\"watermark\":1712345678901234567,\"whole\":2}");
	assert_string_equal(str(env(c, "STREAMCONTEXT__OVERRIDE"), "value"),
	                    "{\"completed\":false,\"payload\":{\"from\":9007199254740993,\"ratio\":0.000001},"
	                    "\"streamClass\":\"mock\",\"streamId\":\"orders\"}");
}

/* Rule: a template that already sets STREAM_ID or STREAM_KIND is an error. */
static void env_conflict(void **state)
{
	struct fx *f = *state;
	const char *names[] = {"STREAMCONTEXT__STREAM_ID", "STREAMCONTEXT__STREAM_KIND"};
	for (size_t i = 0; i < 2; i++) {
		cJSON_Delete(f->tmpl);
		f->tmpl = J(TMPL_JOBSPEC);
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", names[i]);
		cJSON_AddStringToObject(e, "value", "mine");
		cJSON_AddItemToArray(at(f->tmpl, "spec.template.spec.containers.0.env"), e);
		assert_int_equal(build(f, false), SL_EINVALID);
		assert_null(f->job);
		assert_non_null(strstr(f->err.msg, names[i]));
		assert_non_null(strstr(f->err.msg, "\"main\""));
	}
}

/* The other STREAMCONTEXT__ variables a template sets are replaced, not
 * doubled. */
static void env_replaced(void **state)
{
	struct fx *f = *state;
	cJSON *e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "name", "STREAMCONTEXT__SPEC");
	cJSON_AddStringToObject(e, "value", "stale");
	cJSON_AddItemToArray(at(f->tmpl, "spec.template.spec.containers.0.env"), e);
	assert_int_equal(build(f, false), 0);
	const cJSON *c = at(f->job, "spec.template.spec.containers.0");
	assert_int_equal(env_count(c, "STREAMCONTEXT__SPEC"), 1);
	assert_string_not_equal(str(env(c, "STREAMCONTEXT__SPEC"), "value"), "stale");
}

/* Rule: spec.F an object with name -> envFrom secretRef on every container. */
static void secret_envfrom(void **state)
{
	struct fx *f = *state;
	assert_int_equal(build(f, false), 0);
	const cJSON *c;
	cJSON_ArrayForEach(c, at(f->job, "spec.template.spec.containers"))
	{
		assert_string_equal(str(c, "envFrom.0.secretRef.name"), "orders-conn");
		assert_null(env(c, "connectionStringRef"));
	}
}

/* Rule: otherwise spec.secretRef.name -> env F from that secret's key F. */
static void secret_key_ref(void **state)
{
	struct fx *f = *state;
	cJSON_DeleteItemFromObject(at(f->stream, "spec"), "connectionStringRef");
	cJSON_AddItemToObject(at(f->stream, "spec"), "secretRef", J("{'name':'shared-secret'}"));
	assert_int_equal(build(f, false), 0);
	const cJSON *c;
	cJSON_ArrayForEach(c, at(f->job, "spec.template.spec.containers"))
	{
		const cJSON *e = env(c, "connectionStringRef");
		assert_non_null(e);
		assert_string_equal(str(e, "valueFrom.secretKeyRef.name"), "shared-secret");
		assert_string_equal(str(e, "valueFrom.secretKeyRef.key"), "connectionStringRef");
		assert_null(at(c, "envFrom"));
		assert_null(at(e, "value"));
	}
}

/* Rule: a missing secret reference is an error. */
static void secret_missing(void **state)
{
	struct fx *f = *state;
	cJSON_DeleteItemFromObject(at(f->stream, "spec"), "connectionStringRef");
	assert_int_equal(build(f, false), SL_EINVALID);
	assert_non_null(strstr(f->err.msg, "spec.connectionStringRef"));
	assert_null(f->job);
	/* a reference without a name is missing too */
	cJSON_AddItemToObject(at(f->stream, "spec"), "connectionStringRef", J("{'key':'x'}"));
	assert_int_equal(build(f, false), SL_EINVALID);
}

/* sl_stream_job_hashes gives the annotations the build gives, without the
 * build, and fails as it does on a missing secret reference. */
static void hashes_without_build(void **state)
{
	struct fx *f = *state;
	char h[SL_STREAM_HASH_MAX], t[65];

	for (int b = 0; b < 2; b++) {
		struct sl_stream_job_input in = {f->stream, f->cls, f->tmpl, b ? f->bfr : NULL};
		assert_int_equal(build(f, b), 0);
		assert_int_equal(sl_stream_job_hashes(&in, h, t, &f->err), 0);
		assert_string_equal(h, str(f->job, "metadata.annotations.configuration-hash"));
		assert_string_equal(
		    t, cJSON_GetObjectItem(at(f->job, "metadata.annotations"), "sluice.dev/template-hash")
		           ->valuestring);
	}
	cJSON_DeleteItemFromObject(at(f->stream, "spec"), "connectionStringRef");
	struct sl_stream_job_input in = {f->stream, f->cls, f->tmpl, NULL};
	assert_int_equal(sl_stream_job_hashes(&in, h, t, &f->err), SL_EINVALID);
	assert_non_null(strstr(f->err.msg, "spec.connectionStringRef"));
	/* the shared secretRef stands in for it, as in the build */
	cJSON_AddItemToObject(at(f->stream, "spec"), "secretRef", J("{'name':'shared'}"));
	assert_int_equal(sl_stream_job_hashes(&in, h, t, &f->err), 0);
	assert_int_equal(build(f, false), 0);
}

/* Rule: ownerReference to the stream, controller: true. */
static void owner_reference(void **state)
{
	struct fx *f = *state;
	assert_int_equal(build(f, false), 0);
	const cJSON *o = at(f->job, "metadata.ownerReferences.0");
	assert_string_equal(str(o, "apiVersion"), "streaming.sneaksanddata.com/v1");
	assert_string_equal(str(o, "kind"), "MockStream");
	assert_string_equal(str(o, "name"), "orders");
	assert_string_equal(str(o, "uid"), "0b7c-uid");
	assert_true(cJSON_IsTrue(at(o, "controller")));
	assert_true(cJSON_IsTrue(at(o, "blockOwnerDeletion")));
	assert_int_equal(cJSON_GetArraySize(at(f->job, "metadata.ownerReferences")), 1);
	/* without a uid there is no owner reference to make */
	cJSON_DeleteItemFromObject(at(f->stream, "metadata"), "uid");
	assert_int_equal(build(f, false), SL_EINVALID);
	assert_non_null(strstr(f->err.msg, "metadata.uid"));
}

/* The builder does not modify its inputs. */
static void inputs_untouched(void **state)
{
	struct fx *f = *state;
	char *a = cJSON_PrintUnformatted(f->tmpl), *b = cJSON_PrintUnformatted(f->stream);
	assert_int_equal(build(f, true), 0);
	char *c = cJSON_PrintUnformatted(f->tmpl), *d = cJSON_PrintUnformatted(f->stream);
	assert_string_equal(a, c);
	assert_string_equal(b, d);
	free(a), free(b), free(c), free(d);
}

static void canonical_json(void **state)
{
	cJSON *v = J("{'b':[{'z':1,'a':null}],'a':'x','C':true}");
	char *s = sl_stream_canonical_json(v);
	assert_string_equal(s, "{\"C\":true,\"a\":\"x\",\"b\":[{\"a\":null,\"z\":1}]}");
	free(s);
	cJSON_Delete(v);
	s = sl_stream_canonical_json(NULL);
	assert_string_equal(s, "null");
	free(s);
}

static void initial_backfill_name(void **state)
{
	char a[SL_STREAM_NAME_MAX + 1], b[SL_STREAM_NAME_MAX + 1], c[SL_STREAM_NAME_MAX + 1];
	sl_stream_initial_backfill_name("orders", "uid-1", a);
	sl_stream_initial_backfill_name("orders", "uid-1", b);
	sl_stream_initial_backfill_name("orders", "uid-2", c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_true(strncmp(a, "orders-initial-backfill-", 24) == 0);
	assert_int_equal(strlen(a), 24 + 8);
	char longname[254];
	memset(longname, 'q', 253), longname[253] = 0;
	sl_stream_initial_backfill_name(longname, "uid-1", a);
	assert_true(strlen(a) <= 253);
	assert_non_null(strstr(a, "-initial-backfill-"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(name_streaming, setup, teardown),
	    cmocka_unit_test_setup_teardown(name_backfill, setup, teardown),
	    cmocka_unit_test_setup_teardown(name_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(base_jobspec_shape, setup, teardown),
	    cmocka_unit_test_setup_teardown(base_whole_job_shape, setup, teardown),
	    cmocka_unit_test_setup_teardown(base_arcane_shape, setup, teardown),
	    cmocka_unit_test_setup_teardown(template_without_job, setup, teardown),
	    cmocka_unit_test_setup_teardown(labels, setup, teardown),
	    cmocka_unit_test_setup_teardown(shard_label, setup, teardown),
	    cmocka_unit_test_setup_teardown(configuration_hash_backfill, setup, teardown),
	    cmocka_unit_test_setup_teardown(configuration_hash, setup, teardown),
	    cmocka_unit_test_setup_teardown(env_streaming, setup, teardown),
	    cmocka_unit_test_setup_teardown(env_backfill, setup, teardown),
	    cmocka_unit_test_setup_teardown(env_go_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(env_conflict, setup, teardown),
	    cmocka_unit_test_setup_teardown(env_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(secret_envfrom, setup, teardown),
	    cmocka_unit_test_setup_teardown(secret_key_ref, setup, teardown),
	    cmocka_unit_test_setup_teardown(secret_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(hashes_without_build, setup, teardown),
	    cmocka_unit_test_setup_teardown(owner_reference, setup, teardown),
	    cmocka_unit_test_setup_teardown(inputs_untouched, setup, teardown),
	    cmocka_unit_test(canonical_json),
	    cmocka_unit_test(initial_backfill_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
