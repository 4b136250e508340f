/* Integers beyond 2^53 kept as their digits in a cJSON number (json.c), for
 * the YAML converter (yaml.c) and the YAML writer (yaml-write.c). */
#pragma once

#include "sluice/manifest.h"

/* When s[0..n) is an integer ('-'? digits) beyond 2^53, keeps its digits in
 * num->valuestring (see sl_manifest_json_parse). 0 or SL_ENOMEM. */
int sl_manifest__json_keep_int(cJSON *num, const char *s, size_t n);

/* The integer text kept in number v's valuestring, without leading zeros,
 * into out; false when v keeps none, or one that is not v's value
 * (valuedouble changed since). */
#define SL_MANIFEST__INT_TEXT_MAX 72
bool sl_manifest__json_int_text(const cJSON *v, char out[static SL_MANIFEST__INT_TEXT_MAX]);
