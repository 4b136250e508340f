/* A string-keyed hash map (chained, grows by doubling): the informer cache,
 * the work queue and discovery of src/kube, the controller's indexes. Keys
 * are copied. Values are the caller's, or the map's own when it was made
 * with sl_map_init_owning. Not thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct sl_map_ent {
	char *key;
	void *val;
	struct sl_map_ent *next;
};

struct sl_map {
	struct sl_map_ent **b;
	size_t nb, n;
	void (*free_val)(void *); /* NULL: the values are the caller's */
};

/* A map whose values stay the caller's. */
void sl_map_init(struct sl_map *m);
/* A map that owns its values: free_val is called on a value that
 * sl_map_put replaces (when old is NULL), that sl_map_drop removes, and on
 * every value left at sl_map_free. */
void sl_map_init_owning(struct sl_map *m, void (*free_val)(void *));
/* Frees the entries; free_val (may be NULL) is called on every value, or
 * when NULL the map's own destructor if it owns its values. The map is left
 * empty and usable (an owning map keeps its destructor). */
void sl_map_free(struct sl_map *m, void (*free_val)(void *));
void *sl_map_get(const struct sl_map *m, const char *key);
/* Sets key to val. *old gets the previous value (or NULL), which is then
 * the caller's; with old NULL, an owning map frees it (unless it is val).
 * 0 or SL_ENOMEM (val not taken). */
int sl_map_put(struct sl_map *m, const char *key, void *val, void **old);
/* Removes key and returns its value (the caller's now, also from an owning
 * map), or NULL. */
void *sl_map_del(struct sl_map *m, const char *key);
/* Removes key, freeing its value in an owning map; true when it was there. */
bool sl_map_drop(struct sl_map *m, const char *key);
/* Iteration: fn may not change the map. */
void sl_map_foreach(const struct sl_map *m, void (*fn)(const char *key, void *val, void *payload),
                    void *payload);
/* Stored copy of key (valid while the entry lives), or NULL. */
const char *sl_map_key(const struct sl_map *m, const char *key);
