/* JSON fixtures shared by the unit tests: literals written with single
 * quotes, and lookups by dotted path. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON from a literal written with single quotes (no escaping in tests);
 * fails the test when it does not parse. The caller frees it. */
static inline cJSON *J(const char *s)
{
	char *t = strdup(s);
	assert_non_null(t);
	for (char *p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	cJSON *v = cJSON_Parse(t);
	if (!v)
		fail_msg("bad test JSON: %s", s);
	free(t);
	return v;
}

/* The value at a dotted path ("spec.template.0.name": numbers index
 * arrays), or NULL. */
static inline cJSON *at(const cJSON *o, const char *path)
{
	char buf[256], *save = NULL;
	const cJSON *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save)) {
		if (cJSON_IsArray(v))
			v = cJSON_GetArrayItem(v, atoi(k));
		else
			v = cJSON_GetObjectItemCaseSensitive(v, k);
	}
	return (cJSON *)v;
}

/* The string at a dotted path, or NULL when absent or not a string. */
static inline const char *str(const cJSON *o, const char *path)
{
	const cJSON *v = at(o, path);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}
