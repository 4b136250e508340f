/* Small readers of observed objects shared by the stream module's files
 * (one copy, not one per file). */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <string.h>

/* o[key] when it is an object, else NULL (o may be NULL). */
static inline const cJSON *obj_at(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsObject(v) ? v : NULL;
}

/* o[key] when it is a non-empty string, else NULL: "" means unset. */
static inline const char *str_at(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* o.metadata[key] as str_at reads it. */
static inline const char *md_str(const cJSON *o, const char *key)
{
	return str_at(obj_at(o, "metadata"), key);
}

/* o.metadata.annotations[key] as str_at reads it. */
static inline const char *annotation(const cJSON *o, const char *key)
{
	return str_at(obj_at(obj_at(o, "metadata"), "annotations"), key);
}

/* NULL and "" are the same: both mean unset. */
static inline bool streq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}
