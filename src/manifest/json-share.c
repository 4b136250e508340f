/* Shared strings for long-lived JSON trees (sl_manifest_json_share): the
 * informer caches hold tens of thousands of objects whose keys ("metadata",
 * "name", "lastTransitionTime") and many values ("True", a namespace, a
 * kind) repeat in every one. Each node's key and string value is a malloc
 * of its own; sharing them saves about a third of a cached object.
 *
 * The table is process-wide and never shrinks: a string once shared lives
 * until exit. It is bounded (SHARE_MAX strings of at most SHARE_LEN_MAX
 * bytes, in arena blocks), so strings past the bound simply stay the tree's
 * own. Unique values (uids, timestamps) would only fill it, so a value is
 * shared only when it is short and not under such a key: see worth_sharing.
 *
 * A shared tree can then be packed (sl_manifest_json_pack): its nodes and
 * the strings it still owns copied into one allocation, without the
 * allocator's header and rounding on each. */
#include "sluice/manifest-json.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARE_SLOTS 32768 /* a power of two */
#define SHARE_MAX (SHARE_SLOTS / 2)
#define SHARE_LEN_MAX 63
#define ARENA_BLOCK 65536

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char **slots; /* SHARE_SLOTS entries, NULL: free */
static size_t used;
static char *arena;
static size_t arena_left;
static void *blocks; /* the arena blocks, each starting with the previous one's address */

/* The shared copy of s (len bytes), or NULL when the table is full, s is
 * too long, or memory ran out. Called with lock held. */
static const char *share_locked(const char *s, size_t len)
{
	size_t i;
	char *copy;

	if (len > SHARE_LEN_MAX)
		return NULL;
	if (!slots) {
		slots = calloc(SHARE_SLOTS, sizeof(*slots));
		if (!slots)
			return NULL;
	}
	i = (size_t)sl_hash_keyed(s, len) & (SHARE_SLOTS - 1);
	for (;;) {
		const char *e = slots[i];
		if (!e)
			break;
		if (strncmp(e, s, len) == 0 && e[len] == '\0')
			return e;
		i = (i + 1) & (SHARE_SLOTS - 1);
	}
	if (used >= SHARE_MAX)
		return NULL;
	if (arena_left < len + 1) {
		/* the old block's tail is given up: at most SHARE_LEN_MAX bytes */
		void **block = malloc(ARENA_BLOCK);
		if (!block) {
			arena_left = 0;
			return NULL;
		}
		/* chained, so leak checkers see every block as reachable */
		block[0] = blocks;
		blocks = block;
		arena = (char *)(block + 1);
		arena_left = ARENA_BLOCK - sizeof(void *);
	}
	copy = arena;
	memcpy(copy, s, len);
	copy[len] = '\0';
	arena += len + 1;
	arena_left -= len + 1;
	slots[i] = copy;
	used++;
	return copy;
}

/* A value worth sharing: short, and not under a key whose values are unique
 * to one object (they would only fill the table). Names are unique too but
 * share their key with kinds' and containers' names; they fill at most the
 * table's bound, and the values that repeat come first. */
static bool worth_sharing(const char *key, const char *s)
{
	static const char *const unique[] = {
	    "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "lastTransitionTime",
	    "lastUpdateTime", "lastProbeTime", "startTime", "completionTime", "time", "message",
	    "configuration-hash", "sluice.dev/template-hash", "generateName", "continue",
	};

	if (strlen(s) > 48)
		return false;
	if (key)
		for (size_t i = 0; i < sizeof(unique) / sizeof(unique[0]); i++)
			if (strcmp(key, unique[i]) == 0)
				return false;
	return true;
}

static void share_tree(cJSON *v, unsigned depth)
{
	for (cJSON *c = v; c; c = c->next) {
		if (c->string && !(c->type & cJSON_StringIsConst)) {
			const char *k = share_locked(c->string, strlen(c->string));
			if (k) {
				cJSON_free(c->string);
				c->string = (char *)k;
				c->type |= cJSON_StringIsConst;
			}
		}
		if (cJSON_IsString(c) && c->valuestring && !(c->type & cJSON_IsReference) &&
		    worth_sharing(c->string, c->valuestring)) {
			const char *s = share_locked(c->valuestring, strlen(c->valuestring));
			if (s) {
				cJSON_free(c->valuestring);
				c->valuestring = (char *)s;
				c->type |= cJSON_IsReference;
			}
		}
		/* objects nest a few levels; a hostile depth is left unshared */
		if (c->child && depth < 64 && (cJSON_IsObject(c) || cJSON_IsArray(c)))
			share_tree(c->child, depth + 1);
	}
}

void sl_manifest_json_share(cJSON *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&lock);
	if (v->child)
		share_tree(v->child, 0);
	pthread_mutex_unlock(&lock);
}

size_t sl_manifest_json_shared_count(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = used;
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- packing ------------------------------------------------------------------ */

/* A string of node c that the tree owns (not one of the shared table). */
static bool owns_key(const cJSON *c)
{
	return c->string && !(c->type & cJSON_StringIsConst);
}

static bool owns_value(const cJSON *c)
{
	return c->valuestring && !(c->type & cJSON_IsReference);
}

/* Counts the nodes under and after v and the bytes of the strings they own. */
static void measure(const cJSON *v, size_t *nodes, size_t *bytes)
{
	for (const cJSON *c = v; c; c = c->next) {
		(*nodes)++;
		if (owns_key(c))
			*bytes += strlen(c->string) + 1;
		if (owns_value(c))
			*bytes += strlen(c->valuestring) + 1;
		if (c->child)
			measure(c->child, nodes, bytes);
	}
}

struct packer {
	cJSON *node; /* the next free node */
	char *str;   /* the next free string byte */
};

static char *pack_str(struct packer *p, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = p->str;

	memcpy(d, s, n);
	p->str += n;
	return d;
}

/* Copies the siblings from v on into p, linked under parent; returns the
 * first copy. */
static cJSON *pack_list(struct packer *p, const cJSON *v)
{
	cJSON *first = NULL, *prev = NULL;

	for (const cJSON *c = v; c; c = c->next) {
		cJSON *n = p->node++;

		*n = *c;
		n->next = NULL;
		n->prev = prev;
		/* a packed node's own strings lie in the block: never
		 * const, so that cJSON_Duplicate copies them */
		if (owns_key(c))
			n->string = pack_str(p, c->string);
		if (owns_value(c))
			n->valuestring = pack_str(p, c->valuestring);
		n->child = c->child ? pack_list(p, c->child) : NULL;
		if (prev)
			prev->next = n;
		else
			first = n;
		prev = n;
	}
	/* cJSON keeps the last sibling in the first one's prev */
	if (first)
		first->prev = prev;
	return first;
}

cJSON *sl_manifest_json_pack(const cJSON *v)
{
	size_t nodes = 1, bytes = 0;
	struct packer p;
	cJSON *root;

	if (!v || v->next || v->prev)
		return NULL;
	if (v->child)
		measure(v->child, &nodes, &bytes);
	if (owns_value(v))
		bytes += strlen(v->valuestring) + 1;
	root = cJSON_malloc(nodes * sizeof(cJSON) + bytes);
	if (!root)
		return NULL;
	p.node = root + 1;
	p.str = (char *)(root + nodes);
	*root = *v;
	/* the key a detached member kept names nothing any more */
	root->string = NULL;
	root->type &= ~cJSON_StringIsConst;
	if (owns_value(v))
		root->valuestring = pack_str(&p, v->valuestring);
	root->child = v->child ? pack_list(&p, v->child) : NULL;
	/* cJSON_Delete frees a reference node alone, without what it points
	 * to: the whole block, which starts with it */
	root->type |= cJSON_IsReference;
	assert(p.node == root + nodes && p.str == (char *)(root + nodes) + bytes);
	return root;
}

/* ---- keeping what is read ---------------------------------------------------- */

/* How path (dotted) relates to member name of the node at prefix (plen
 * bytes): 1 it names the member, 2 something under it, 0 neither. */
static int path_match(const char *path, const char *prefix, size_t plen, const char *name)
{
	size_t nlen = strlen(name);

	if (plen) {
		if (strncmp(path, prefix, plen) != 0 || path[plen] != '.')
			return 0;
		path += plen + 1;
	}
	if (strncmp(path, name, nlen) != 0)
		return 0;
	return path[nlen] == '\0' ? 1 : path[nlen] == '.' ? 2 : 0;
}

/* Keeps under node (at dotted prefix, plen bytes of pmax) what paths name;
 * an array's items are each kept as the array would be. */
static void keep_under(cJSON *node, char *prefix, size_t plen, size_t pmax, const char *const *paths)
{
	cJSON *c, *next;

	if (cJSON_IsArray(node)) {
		cJSON_ArrayForEach(c, node)
		{
			keep_under(c, prefix, plen, pmax, paths);
		}
		return;
	}
	if (!cJSON_IsObject(node))
		return;
	for (c = node->child; c; c = next) {
		int m = 0;

		next = c->next;
		for (size_t i = 0; c->string && paths[i] && m != 1; i++) {
			int x = path_match(paths[i], prefix, plen, c->string);
			m = x > m ? x : m;
		}
		/* a path that passes through is shorter than pmax: prefix fits */
		if (m == 2 && plen + 1 + strlen(c->string) < pmax) {
			int n = snprintf(prefix + plen, pmax - plen, plen ? ".%s" : "%s", c->string);
			keep_under(c, prefix, plen + (size_t)n, pmax, paths);
			prefix[plen] = '\0';
		} else if (m != 1) {
			cJSON_Delete(cJSON_DetachItemViaPointer(node, c));
		}
	}
}

void sl_manifest_json_keep(cJSON *v, const char *const *paths)
{
	char prefix[256] = "";

	if (v)
		keep_under(v, prefix, 0, sizeof(prefix), paths);
}
