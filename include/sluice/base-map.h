/* A string-keyed hash map (chained, grows by doubling): the informer cache,
 * the work queue and discovery of src/kube, the controller's indexes. Keys
 * are copied; values are the caller's. Not thread-safe. */
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
};

void sl_map_init(struct sl_map *m);
/* Frees the map; free_val (may be NULL) is called on every value. */
void sl_map_free(struct sl_map *m, void (*free_val)(void *));
void *sl_map_get(const struct sl_map *m, const char *key);
/* Sets key to val; *old gets the previous value (or NULL). */
int sl_map_put(struct sl_map *m, const char *key, void *val, void **old);
/* Removes key and returns its value, or NULL. */
void *sl_map_del(struct sl_map *m, const char *key);
/* Iteration: fn may not change the map. */
void sl_map_foreach(const struct sl_map *m, void (*fn)(const char *key, void *val, void *payload),
                    void *payload);
/* Stored copy of key (valid while the entry lives), or NULL. */
const char *sl_map_key(const struct sl_map *m, const char *key);
