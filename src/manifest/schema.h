/* The OpenAPI v3 structural schema check of CRDs (schema.c), used by the
 * validator (validate.c); reports through problem.c. */
#pragma once

#include "problem.h"

/* Checks value (at path, which it extends and restores) against schema;
 * problems go to document d through rp. Returns 0 or SL_ENOMEM. */
int sl_manifest__schema_check(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d,
                              const cJSON *schema, const cJSON *value, struct sl_buf *path, unsigned depth);
