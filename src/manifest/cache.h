/* The parse cache's side for the loader (cache.c): parsed files looked up
 * by display path and bytes, parsed on a miss. */
#pragma once

#include "sluice/manifest.h"

struct sl_manifest__parsed;

/* The parsed file of name with these bytes: the cache's, or parsed now and
 * kept. *ret is borrowed from the cache (take a reference to keep it past
 * the next call). 0 or SL_ENOMEM. */
int sl_manifest__cache_get(struct sl_manifest_cache *c, const char *name, const void *data, size_t len,
                           struct sl_manifest__parsed **ret);
