/* A string-keyed hash map (chained, grows by doubling) for the informer
 * cache, the work queue and discovery. Keys are copied; values are the
 * caller's. Internal to src/kube. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct map_ent {
	char *key;
	void *val;
	struct map_ent *next;
};

struct map {
	struct map_ent **b;
	size_t nb, n;
};

void map_init(struct map *m);
/* Frees the map; free_val (may be NULL) is called on every value. */
void map_free(struct map *m, void (*free_val)(void *));
void *map_get(const struct map *m, const char *key);
/* Sets key to val; *old gets the previous value (or NULL). */
int map_put(struct map *m, const char *key, void *val, void **old);
/* Removes key and returns its value, or NULL. */
void *map_del(struct map *m, const char *key);
/* Iteration: fn may not change the map. */
void map_foreach(const struct map *m, void (*fn)(const char *key, void *val, void *payload), void *payload);
/* Stored copy of key (valid while the entry lives), or NULL. */
const char *map_key(const struct map *m, const char *key);
