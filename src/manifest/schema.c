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

static int restore(struct sl_buf *p, size_t len)
{
	p->len = len;
	if (p->data)
		p->data[len] = '\0';
	return 0;
}

int sl_manifest__schema_check(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d,
                              const cJSON *schema, const cJSON *value, struct sl_buf *path, unsigned depth)
{
	const cJSON *type, *en, *props, *addl, *req, *items, *num;
	bool preserve, int_or_string;
	const char *at = path->data ? path->data : "";
	size_t base = path->len;
	int r = 0;

	if (!cJSON_IsObject(schema) || depth > SCHEMA_MAX_DEPTH)
		return 0;
	/* Null in a non-nullable field is pruned by the API server, as if absent. */
	if (cJSON_IsNull(value))
		return 0;
	type = cJSON_GetObjectItemCaseSensitive(schema, "type");
	preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
	int_or_string = flag(schema, "x-kubernetes-int-or-string");
	if (int_or_string) {
		if (!cJSON_IsString(value) && strcmp(json_type(value), "integer") != 0)
			return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
			                                "expected an integer or a string, got %s",
			                                json_type(value));
	} else if (cJSON_IsString(type) && !type_ok(type->valuestring, value)) {
		return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at, "expected %s, got %s",
		                                type->valuestring, json_type(value));
	}
	en = cJSON_GetObjectItemCaseSensitive(schema, "enum");
	if (cJSON_IsArray(en) && !enum_has(en, value)) {
		char list[512];
		enum_list(en, list, sizeof(list));
		/* the value itself is not echoed: it could be a secret */
		return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at, "expected one of %s", list);
	}
	if (cJSON_IsString(value)) {
		size_t l = utf8_len(value->valuestring);
		const cJSON *pat = cJSON_GetObjectItemCaseSensitive(schema, "pattern");
		if ((num = cJSON_GetObjectItemCaseSensitive(schema, "minLength")) && cJSON_IsNumber(num) &&
		    (double)l < num->valuedouble)
			return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
			                                "expected at least %g characters, got %zu",
			                                num->valuedouble, l);
		if ((num = cJSON_GetObjectItemCaseSensitive(schema, "maxLength")) && cJSON_IsNumber(num) &&
		    (double)l > num->valuedouble)
			return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
			                                "expected at most %g characters, got %zu",
			                                num->valuedouble, l);
		if (cJSON_IsString(pat)) {
			regex_t re;
			if (regcomp(&re, pat->valuestring, REG_EXTENDED | REG_NOSUB) == 0) {
				bool ok = regexec(&re, value->valuestring, 0, NULL, 0) == 0;
				regfree(&re);
				if (!ok)
					return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
					                                "expected to match %s",
					                                pat->valuestring);
			}
		}
	}
	if (cJSON_IsNumber(value)) {
		bool excl_min = flag(schema, "exclusiveMinimum"), excl_max = flag(schema, "exclusiveMaximum");
		if ((num = cJSON_GetObjectItemCaseSensitive(schema, "minimum")) && cJSON_IsNumber(num) &&
		    (value->valuedouble < num->valuedouble ||
		     (excl_min && value->valuedouble == num->valuedouble)))
			return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
			                                "expected a value %s %g",
			                                excl_min ? ">" : ">=", num->valuedouble);
		if ((num = cJSON_GetObjectItemCaseSensitive(schema, "maximum")) && cJSON_IsNumber(num) &&
		    (value->valuedouble > num->valuedouble ||
		     (excl_max && value->valuedouble == num->valuedouble)))
			return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
			                                "expected a value %s %g",
			                                excl_max ? "<" : "<=", num->valuedouble);
	}
	if (cJSON_IsArray(value)) {
		int n = cJSON_GetArraySize(value), i = 0;
		const cJSON *it;
		if ((num = cJSON_GetObjectItemCaseSensitive(schema, "minItems")) && cJSON_IsNumber(num) &&
		    n < num->valuedouble)
			return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
			                                "expected at least %g items, got %d",
			                                num->valuedouble, n);
		if ((num = cJSON_GetObjectItemCaseSensitive(schema, "maxItems")) && cJSON_IsNumber(num) &&
		    n > num->valuedouble)
			return sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, at,
			                                "expected at most %g items, got %d", num->valuedouble,
			                                n);
		items = cJSON_GetObjectItemCaseSensitive(schema, "items");
		cJSON_ArrayForEach(it, value)
		{
			if (items) {
				if (sl_buf_printf(path, "[%d]", i) < 0)
					break;
				r = sl_manifest__schema_check(rp, d, items, it, path, depth + 1);
				restore(path, base);
				if (r < 0)
					return r;
			}
			i++;
		}
	}
	if (cJSON_IsObject(value)) {
		const cJSON *m;
		props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
		addl = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
		req = cJSON_GetObjectItemCaseSensitive(schema, "required");
		if (cJSON_IsArray(req)) {
			const cJSON *k;
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
				restore(path, base);
				if (r < 0)
					return r;
			}
		}
		cJSON_ArrayForEach(m, value)
		{
			const cJSON *sub =
			    cJSON_IsObject(props) ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
			if (sl_manifest__path_push_key(path, m->string) < 0) {
				restore(path, base);
				continue;
			}
			if (sub)
				r = sl_manifest__schema_check(rp, d, sub, m, path, depth + 1);
			else if (cJSON_IsObject(addl))
				r = sl_manifest__schema_check(rp, d, addl, m, path, depth + 1);
			else if (!preserve && (cJSON_IsFalse(addl) || cJSON_IsObject(props)))
				/* The API server rejects unknown fields (kubectl's default
				 * strict field validation); a typo is caught here first. */
				r = sl_manifest__doc_problem(rp, d, SL_MANIFEST_ERROR, path->data,
				                             "unknown field");
			restore(path, base);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
