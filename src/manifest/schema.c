/* A small validator for the OpenAPI v3 structural schemas of CRDs: the
 * subset crds/ uses and the API server enforces on them (type, required,
 * properties, items, enum, additionalProperties, preserve-unknown-fields,
 * int-or-string, nullable, length, range and pattern constraints). */
#include "positions.h"
#include "schema.h"

#include <math.h>
#include <regex.h>
#include <string.h>

#define SCHEMA_MAX_DEPTH 64

static bool flag(const cJSON *schema, const char *k)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, k));
}

static const char *json_type(const cJSON *v)
{
	if (cJSON_IsObject(v))
		return "object";
	if (cJSON_IsArray(v))
		return "array";
	if (cJSON_IsString(v))
		return "string";
	if (cJSON_IsBool(v))
		return "boolean";
	if (cJSON_IsNumber(v))
		return v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9.3e18 ? "integer"
		                                                                                : "number";
	if (cJSON_IsNull(v))
		return "null";
	return "unknown";
}

static bool type_ok(const char *want, const cJSON *v)
{
	const char *got = json_type(v);
	if (strcmp(want, "number") == 0)
		return cJSON_IsNumber(v);
	return strcmp(want, got) == 0;
}

static size_t utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

static bool enum_has(const cJSON *en, const cJSON *v)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, en)
	{
		if (cJSON_Compare(e, v, true))
			return true;
	}
	return false;
}

static void enum_list(const cJSON *en, char *out, size_t n)
{
	const cJSON *e;
	size_t used = 0;
	out[0] = '\0';
	cJSON_ArrayForEach(e, en)
	{
		char *t = cJSON_PrintUnformatted(e);
		if (!t)
			continue;
		used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s%s", used ? ", " : "", t);
		free(t);
		if (used >= n)
			break;
	}
}

/* A value gets at most one problem of its own: once one is reported, the
 * steps below stop (REPORTED) and go to the next value. */
#define REPORTED 1

static int reported(int r)
{
	return r < 0 ? r : REPORTED;
}

static const char *path_at(const struct sl_buf *path)
{
	return path->data ? path->data : "";
}

/* type, or an integer or a string for x-kubernetes-int-or-string */
static int check_type(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d, const cJSON *schema,
                      const cJSON *value, const char *at)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type");

	if (flag(schema, "x-kubernetes-int-or-string")) {
		if (!cJSON_IsString(value) && strcmp(json_type(value), "integer") != 0)
			return reported(sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
			                                         "expected an integer or a string, got %s",
			                                         json_type(value)));
	} else if (cJSON_IsString(type) && !type_ok(type->valuestring, value)) {
		return reported(sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at, "expected %s, got %s",
		                                         type->valuestring, json_type(value)));
	}
	return 0;
}

static int check_enum(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d, const cJSON *schema,
                      const cJSON *value, const char *at)
{
	const cJSON *en = cJSON_GetObjectItemCaseSensitive(schema, "enum");
	char list[512];

	if (!cJSON_IsArray(en) || enum_has(en, value))
		return 0;
	enum_list(en, list, sizeof(list));
	/* the value itself is not echoed: it could be a secret */
	return reported(sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at, "expected one of %s", list));
}

/* minLength, maxLength, pattern */
static int check_string(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d,
                        const cJSON *schema, const cJSON *value, const char *at)
{
	size_t l = utf8_len(value->valuestring);
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(schema, "pattern"), *num;

	if ((num = cJSON_GetObjectItemCaseSensitive(schema, "minLength")) && cJSON_IsNumber(num) &&
	    (double)l < num->valuedouble)
		return reported(sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
		                                         "expected at least %g characters, got %zu",
		                                         num->valuedouble, l));
	if ((num = cJSON_GetObjectItemCaseSensitive(schema, "maxLength")) && cJSON_IsNumber(num) &&
	    (double)l > num->valuedouble)
		return reported(sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
		                                         "expected at most %g characters, got %zu",
		                                         num->valuedouble, l));
	if (cJSON_IsString(pat)) {
		regex_t re;
		if (regcomp(&re, pat->valuestring, REG_EXTENDED | REG_NOSUB) == 0) {
			bool ok = regexec(&re, value->valuestring, 0, NULL, 0) == 0;
			regfree(&re);
			if (!ok)
				return reported(sl_manifest__doc_problem(
				    rp, d, SL_MANIFEST_ERROR, at, "expected to match %s", pat->valuestring));
		}
	}
	return 0;
}

/* minimum, maximum and their exclusive forms */
static int check_number(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d,
                        const cJSON *schema, const cJSON *value, const char *at)
{
	bool excl_min = flag(schema, "exclusiveMinimum"), excl_max = flag(schema, "exclusiveMaximum");
	const cJSON *num;

	if ((num = cJSON_GetObjectItemCaseSensitive(schema, "minimum")) && cJSON_IsNumber(num) &&
	    (value->valuedouble < num->valuedouble || (excl_min && value->valuedouble == num->valuedouble)))
		return reported(sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
		                                         "expected a value %s %g",
		                                         excl_min ? ">" : ">=", num->valuedouble));
	if ((num = cJSON_GetObjectItemCaseSensitive(schema, "maximum")) && cJSON_IsNumber(num) &&
	    (value->valuedouble > num->valuedouble || (excl_max && value->valuedouble == num->valuedouble)))
		return reported(sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
		                                         "expected a value %s %g",
		                                         excl_max ? "<" : "<=", num->valuedouble));
	return 0;
}

/* minItems, maxItems, then every item against items */
static int check_array(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d, const cJSON *schema,
                       const cJSON *value, struct sl_buf *path, unsigned depth)
{
	int n = cJSON_GetArraySize(value), i = 0, r;
	size_t base = path->len;
	const cJSON *num, *items, *it;

	if ((num = cJSON_GetObjectItemCaseSensitive(schema, "minItems")) && cJSON_IsNumber(num) &&
	    n < num->valuedouble)
		return reported(sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, path_at(path),
		                                         "expected at least %g items, got %d",
		                                         num->valuedouble, n));
	if ((num = cJSON_GetObjectItemCaseSensitive(schema, "maxItems")) && cJSON_IsNumber(num) &&
	    n > num->valuedouble)
		return reported(sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, path_at(path),
		                                         "expected at most %g items, got %d",
		                                         num->valuedouble, n));
	items = cJSON_GetObjectItemCaseSensitive(schema, "items");
	cJSON_ArrayForEach(it, value)
	{
		if (items) {
			if (sl_buf_printf(path, "[%d]", i) < 0)
				break;
			r = sl_manifest__schema_check(rp, d, items, it, path, depth + 1);
			sl_manifest__path_cut(path, base);
			if (r < 0)
				return r;
		}
		i++;
	}
	return 0;
}

/* Members listed in required that are absent (or null). */
static int check_required(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d,
                          const cJSON *schema, const cJSON *value, struct sl_buf *path)
{
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required"), *k;
	size_t base = path->len;
	int r = 0;

	if (!cJSON_IsArray(req))
		return 0;
	cJSON_ArrayForEach(k, req)
	{
		const cJSON *have;
		if (!cJSON_IsString(k))
			continue;
		have = cJSON_GetObjectItemCaseSensitive(value, k->valuestring);
		if (have && !cJSON_IsNull(have))
			continue;
		if (sl_manifest__path_push_key(path, k->valuestring) == 0)
			r = sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, path->data,
			                             "required field is missing");
		sl_manifest__path_cut(path, base);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Every member against its property, or additionalProperties, or refused
 * as unknown. */
static int check_members(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d,
                         const cJSON *schema, const cJSON *value, struct sl_buf *path, unsigned depth)
{
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
	const cJSON *addl = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
	bool preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
	size_t base = path->len;
	const cJSON *m;
	int r = 0;

	cJSON_ArrayForEach(m, value)
	{
		const cJSON *sub =
		    cJSON_IsObject(props) ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
		if (sl_manifest__path_push_key(path, m->string) < 0) {
			sl_manifest__path_cut(path, base);
			continue;
		}
		if (sub)
			r = sl_manifest__schema_check(rp, d, sub, m, path, depth + 1);
		else if (cJSON_IsObject(addl))
			r = sl_manifest__schema_check(rp, d, addl, m, path, depth + 1);
		else if (!preserve && (cJSON_IsFalse(addl) || cJSON_IsObject(props)))
			/* The API server rejects unknown fields (kubectl's default
			 * strict field validation); a typo is caught here first. */
			r = sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, path->data, "unknown field");
		sl_manifest__path_cut(path, base);
		if (r < 0)
			return r;
	}
	return 0;
}

int sl_manifest__schema_check(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d,
                              const cJSON *schema, const cJSON *value, struct sl_buf *path, unsigned depth)
{
	int r;

	if (!cJSON_IsObject(schema) || depth > SCHEMA_MAX_DEPTH)
		return 0;
	/* Null in a non-nullable field is pruned by the API server, as if absent. */
	if (cJSON_IsNull(value))
		return 0;
	/* the steps for one value, in order; a problem of its own ends them */
	r = check_type(rp, d, schema, value, path_at(path));
	if (r == 0)
		r = check_enum(rp, d, schema, value, path_at(path));
	if (r == 0 && cJSON_IsString(value))
		r = check_string(rp, d, schema, value, path_at(path));
	if (r == 0 && cJSON_IsNumber(value))
		r = check_number(rp, d, schema, value, path_at(path));
	if (r == 0 && cJSON_IsArray(value))
		r = check_array(rp, d, schema, value, path, depth);
	if (r == 0 && cJSON_IsObject(value))
		r = check_required(rp, d, schema, value, path);
	if (r == 0 && cJSON_IsObject(value))
		r = check_members(rp, d, schema, value, path, depth);
	return r < 0 ? r : 0;
}
