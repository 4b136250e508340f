/* manifest JSON: JSON text as the Kubernetes API server's Go code reads and
 * writes it. Parsing keeps the integers a double cannot hold; output is byte
 * for byte Go's encoding/json.Marshal of the object apimachinery decodes. */
#pragma once

#include "sluice/base.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses len bytes of text (need not be NUL-terminated) as
 * cJSON_ParseWithLength does (text after the first value is ignored), then
 * keeps, for every number written as an integer ('-'? digits, no '.', no
 * exponent) whose magnitude is above 2^53, its decimal digits (no leading
 * zeros) in the number node's valuestring, allocated with cJSON_malloc:
 * cJSON_Delete frees it and cJSON_Duplicate copies it. Other numbers
 * allocate nothing. An integer written "-0" is stored as +0, as Go decodes
 * it to int64 0. On success *ret owns the tree (free with cJSON_Delete).
 * Errors: SL_EINVALID "invalid JSON at byte N" (cJSON reports running out of
 * memory as a parse failure, so that shows as SL_EINVALID too), SL_ENOMEM. */
int sl_manifest_json_parse(const char *text, size_t len, cJSON **ret, struct sl_error *err);

/* v as Go's json.Marshal writes the value k8s.io/apimachinery decodes from
 * v's JSON text (numbers that fit int64 as int64, others as float64; objects
 * as map[string]interface{}): compact; object keys sorted byte-wise, of
 * duplicate keys the last one wins; strings with Go's escapes (HTML
 * characters <, > and & as \u003c..., U+2028 and U+2029, control
 * characters), invalid UTF-8 bytes as U+FFFD (as Go decodes them); numbers
 * as int64 when valuestring holds an integer (see above) that fits int64
 * and matches valuedouble, else as float64 (strconv.FormatFloat's shortest
 * digits, exponent form below 1e-6 and from 1e21; -0 written "-0").
 * Non-finite numbers (which JSON cannot hold) are written as null, a cJSON
 * raw node as its text. v NULL gives "null". Returns a malloc'ed string
 * (caller frees), NULL when out of memory. */
char *sl_manifest_json_go(const cJSON *v);

/* Makes v's object keys and its short string values point into a
 * process-wide table of shared strings instead of allocations of their own
 * (cJSON_StringIsConst and cJSON_IsReference on those nodes): for trees kept
 * long, such as informer caches, whose keys repeat in every object. The
 * tree stays a normal tree for reading, cJSON_Delete and cJSON_Duplicate (a
 * duplicate owns its value strings again); a shared node's string must not
 * be changed in place (cJSON_SetValuestring refuses it). The table is
 * bounded; what does not fit stays the tree's own. Thread-safe. */
void sl_manifest_json_share(cJSON *v);
/* How many strings the table holds. */
size_t sl_manifest_json_shared_count(void);
/* A copy of tree v (an object or value of its own, such as a member
 * detached from its parent: no siblings; a key it kept is dropped) in one
 * allocation: its nodes, then the strings v owns; strings of the
 * shared table stay shared. The root is marked cJSON_IsReference, so
 * cJSON_Delete of the root frees it all at once; a node under it must never
 * be deleted, detached or changed, the tree is for reading (and
 * cJSON_Duplicate, whose copy is a normal tree). NULL when v is not such a
 * tree or memory ran out. For trees kept long: a cached object of 30 to 60
 * nodes costs a third less. */
cJSON *sl_manifest_json_pack(const cJSON *v);
/* Keeps in v only the members that paths (NULL-terminated) name, with
 * everything under them, and deletes the rest. A path is dotted
 * ("metadata.name", at most 255 bytes); through an array it applies to each
 * item ("status.conditions.type" keeps the type of every condition). A
 * member a path only passes through keeps what the deeper paths name. For
 * caches that hold only what their readers read. */
void sl_manifest_json_keep(cJSON *v, const char *const *paths);

/* ---- readers of observed objects -------------------------------------------
 * Small lookups that every reader of API objects makes; all accept NULL. */

/* o[key] when it is an object, else NULL. */
static inline const cJSON *sl_manifest_obj(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsObject(v) ? v : NULL;
}

/* o[key] when it is a non-empty string, else NULL: "" means unset. */
static inline const char *sl_manifest_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* o.metadata[key] as sl_manifest_str reads it. */
static inline const char *sl_manifest_md_str(const cJSON *o, const char *key)
{
	return sl_manifest_str(sl_manifest_obj(o, "metadata"), key);
}

/* o.metadata.annotations[key] as sl_manifest_str reads it. */
static inline const char *sl_manifest_annotation(const cJSON *o, const char *key)
{
	return sl_manifest_str(sl_manifest_obj(sl_manifest_obj(o, "metadata"), "annotations"), key);
}

/* o.metadata.labels[key] as sl_manifest_str reads it. */
static inline const char *sl_manifest_label(const cJSON *o, const char *key)
{
	return sl_manifest_str(sl_manifest_obj(sl_manifest_obj(o, "metadata"), "labels"), key);
}
