/* The inventory: the set of objects a source applied, with their state
 * digests, stored compactly in a ConfigMap next to the sync status. Pure. */
#include "sluice/sync.h"
#include "sluice/base-map.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

struct sl_sync_inventory {
	struct sl_sync_inv_entry *e;
	size_t n, cap;
	size_t *slots; /* open addressing: index + 1, 0 = empty */
	size_t nslots;
	/* Groups, versions, kinds and namespaces, each stored once: 10,000
	 * entries share a handful of them. */
	struct sl_map strings;
};

int sl_sync_inventory_new(struct sl_sync_inventory **ret)
{
	struct sl_sync_inventory *inv = calloc(1, sizeof(*inv));
	if (!inv)
		return SL_ENOMEM;
	sl_map_init(&inv->strings);
	*ret = inv;
	return 0;
}

void sl_sync_inventory_free(struct sl_sync_inventory *inv)
{
	if (!inv)
		return;
	for (size_t i = 0; i < inv->n; i++)
		free(inv->e[i].name);
	sl_map_free(&inv->strings, NULL);
	free(inv->e);
	free(inv->slots);
	free(inv);
}

/* The inventory's copy of s (shared by every entry that has it), or NULL
 * when out of memory. */
static char *intern(struct sl_sync_inventory *inv, const char *s)
{
	const char *k = sl_map_key(&inv->strings, s);
	if (!k && sl_map_put(&inv->strings, s, inv, NULL) == 0)
		k = sl_map_key(&inv->strings, s);
	return (char *)k;
}

size_t sl_sync_inventory_count(const struct sl_sync_inventory *inv)
{
	return inv ? inv->n : 0;
}

const struct sl_sync_inv_entry *sl_sync_inventory_at(const struct sl_sync_inventory *inv, size_t i)
{
	return inv && i < inv->n ? &inv->e[i] : NULL;
}

static uint64_t key_hash(const char *g, const char *k, const char *ns, const char *name)
{
	const char *parts[4] = {g, k, ns, name};
	uint64_t h = 1469598103934665603ULL;
	for (int i = 0; i < 4; i++) {
		h ^= sl_hash_keyed(parts[i], strlen(parts[i])) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	}
	return h;
}

static bool entry_is(const struct sl_sync_inv_entry *e, const char *g, const char *k, const char *ns,
                     const char *name)
{
	return strcmp(e->name, name) == 0 && strcmp(e->kind, k) == 0 && strcmp(e->ns, ns) == 0 &&
	       strcmp(e->group, g) == 0;
}

static size_t *find_slot(const struct sl_sync_inventory *inv, const char *g, const char *k, const char *ns,
                         const char *name)
{
	if (!inv->nslots)
		return NULL;
	size_t mask = inv->nslots - 1, i = key_hash(g, k, ns, name) & mask;
	for (;;) {
		size_t *s = &inv->slots[i];
		if (*s == 0 || entry_is(&inv->e[*s - 1], g, k, ns, name))
			return s;
		i = (i + 1) & mask;
	}
}

static int rehash(struct sl_sync_inventory *inv, size_t nslots)
{
	size_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return SL_ENOMEM;
	free(inv->slots);
	inv->slots = slots;
	inv->nslots = nslots;
	for (size_t j = 0; j < inv->n; j++) {
		const struct sl_sync_inv_entry *e = &inv->e[j];
		size_t *s = find_slot(inv, e->group, e->kind, e->ns, e->name);
		*s = j + 1;
	}
	return 0;
}

const struct sl_sync_inv_entry *sl_sync_inventory_find(const struct sl_sync_inventory *inv, const char *group,
                                                       const char *kind, const char *ns, const char *name)
{
	if (!inv)
		return NULL;
	size_t *s = find_slot(inv, group ? group : "", kind, ns ? ns : "", name);
	return s && *s ? &inv->e[*s - 1] : NULL;
}

static void set_digest(struct sl_sync_inv_entry *e, const char *digest)
{
	snprintf(e->digest, sizeof(e->digest), "%s", digest ? digest : "");
}

int sl_sync_inventory_put(struct sl_sync_inventory *inv, const char *group, const char *version,
                          const char *kind, const char *ns, const char *name, const char *digest)
{
	group = group ? group : "";
	ns = ns ? ns : "";
	if (!kind || !name || !version || !*version || strchr(version, '/') || strchr(group, '/') ||
	    strchr(kind, '/'))
		return SL_EINVALID;
	size_t *s = find_slot(inv, group, kind, ns, name);
	if (s && *s) {
		struct sl_sync_inv_entry *e = &inv->e[*s - 1];
		if (strcmp(e->version, version) != 0) {
			char *v = intern(inv, version);
			if (!v)
				return SL_ENOMEM;
			e->version = v;
		}
		set_digest(e, digest);
		return 0;
	}
	if ((inv->n + 1) * 2 > inv->nslots) {
		int r = rehash(inv, inv->nslots ? inv->nslots * 2 : 64);
		if (r < 0)
			return r;
	}
	if (SL_GROW(inv->e, inv->cap, inv->n + 1, 64) < 0)
		return SL_ENOMEM;
	struct sl_sync_inv_entry e = {
	    .group = intern(inv, group),
	    .version = intern(inv, version),
	    .kind = intern(inv, kind),
	    .ns = intern(inv, ns),
	    .name = sl_strdup(name),
	};
	if (!e.group || !e.version || !e.kind || !e.ns || !e.name) {
		free(e.name);
		return SL_ENOMEM;
	}
	set_digest(&e, digest);
	inv->e[inv->n++] = e;
	s = find_slot(inv, group, kind, ns, name);
	*s = inv->n;
	return 0;
}

/* ---- format / parse ---------------------------------------------------------- */

static int cmp_entry(const void *a, const void *b)
{
	const struct sl_sync_inv_entry *x = *(const struct sl_sync_inv_entry *const *)a;
	const struct sl_sync_inv_entry *y = *(const struct sl_sync_inv_entry *const *)b;
	int c;
	if ((c = strcmp(x->group, y->group)) || (c = strcmp(x->kind, y->kind)) ||
	    (c = strcmp(x->version, y->version)) || (c = strcmp(x->ns, y->ns)))
		return c;
	return strcmp(x->name, y->name);
}

/* The entries sorted by type (group, kind, version), namespace and name, so
 * that each type and each namespace is one nested object. NULL when out of
 * memory; the caller frees the array. */
static const struct sl_sync_inv_entry **sorted_entries(const struct sl_sync_inventory *inv)
{
	const struct sl_sync_inv_entry **v = malloc(inv->n * sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < inv->n; i++)
		v[i] = &inv->e[i];
	qsort(v, inv->n, sizeof(*v), cmp_entry);
	return v;
}

static int put_char(struct sl_buf *out, char c)
{
	return sl_buf_append(out, &c, 1);
}

/* s as a JSON string, escaped as cJSON escapes it: the text is hashed
 * into the status's outcome, so its bytes stay as they always were. */
static int put_json_string(struct sl_buf *out, const char *s)
{
	int r = put_char(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; r == 0 && *p; p++) {
		switch (*p) {
		case '"':
			r = sl_buf_puts(out, "\\\"");
			break;
		case '\\':
			r = sl_buf_puts(out, "\\\\");
			break;
		case '\b':
			r = sl_buf_puts(out, "\\b");
			break;
		case '\f':
			r = sl_buf_puts(out, "\\f");
			break;
		case '\n':
			r = sl_buf_puts(out, "\\n");
			break;
		case '\r':
			r = sl_buf_puts(out, "\\r");
			break;
		case '\t':
			r = sl_buf_puts(out, "\\t");
			break;
		default:
			r = *p < 32 ? sl_buf_printf(out, "\\u%04x", *p) : put_char(out, (char)*p);
		}
	}
	return r == 0 ? put_char(out, '"') : r;
}

/* {"v":1,"o":{"<group>/<version>/<kind>":{"<ns>":{"<name>":"<digest>"}}}}
 * as cJSON_PrintUnformatted would print it, written straight into out
 * (no tree of 10,000 nodes on the way). */
int sl_sync_inventory_format(const struct sl_sync_inventory *inv, struct sl_buf *out)
{
	size_t n = sl_sync_inventory_count(inv);
	const struct sl_sync_inv_entry **v = n ? sorted_entries(inv) : NULL;
	const struct sl_sync_inv_entry *prev = NULL;
	int r;

	if (n && !v)
		return SL_ENOMEM;
	r = sl_buf_puts(out, "{\"v\":1,\"o\":{");
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct sl_sync_inv_entry *e = v[i];
		bool new_type = !prev || strcmp(prev->group, e->group) || strcmp(prev->kind, e->kind) ||
		                strcmp(prev->version, e->version);
		bool new_ns = new_type || strcmp(prev->ns, e->ns);

		if (prev)
			r = sl_buf_puts(out, new_type ? "}}," : new_ns ? "}," : ",");
		if (r == 0 && new_type) {
			char *key = sl_asprintf("%s/%s/%s", e->group, e->version, e->kind);
			r = key ? put_json_string(out, key) : SL_ENOMEM;
			free(key);
			if (r == 0)
				r = sl_buf_puts(out, ":{");
		}
		if (r == 0 && new_ns && (r = put_json_string(out, e->ns)) == 0)
			r = sl_buf_puts(out, ":{");
		if (r == 0 && (r = put_json_string(out, e->name)) == 0 && (r = put_char(out, ':')) == 0)
			r = put_json_string(out, e->digest);
		prev = e;
	}
	if (r == 0)
		r = sl_buf_puts(out, prev ? "}}}}" : "}}");
	free(v);
	return r;
}

int sl_sync_inventory_parse(const char *json, size_t len, struct sl_sync_inventory **ret,
                            struct sl_error *err)
{
	struct sl_sync_inventory *inv = NULL;
	cJSON *root = NULL;
	int r;

	if (len > SL_SYNC_INVENTORY_MAX * 2)
		return sl_error_set(err, SL_ETOOLARGE, "inventory of %zu bytes is too large", len);
	root = cJSON_ParseWithLength(json, len);
	if (!cJSON_IsObject(root)) {
		r = sl_error_set(err, SL_EINVALID, "inventory is not a JSON object");
		goto out;
	}
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "v");
	const cJSON *objs = cJSON_GetObjectItemCaseSensitive(root, "o");
	if (!cJSON_IsNumber(ver) || ver->valueint != 1 || !cJSON_IsObject(objs)) {
		r = sl_error_set(err, SL_EINVALID, "inventory has an unknown format");
		goto out;
	}
	r = sl_sync_inventory_new(&inv);
	if (r < 0)
		goto out;
	for (const cJSON *t = objs->child; t; t = t->next) {
		const char *first = t->string ? strchr(t->string, '/') : NULL;
		const char *slash = t->string ? strrchr(t->string, '/') : NULL;
		if (!slash || !slash[1] || first == slash || slash == first + 1 || !cJSON_IsObject(t)) {
			r = sl_error_set(err, SL_EINVALID, "inventory has a bad type key");
			goto out;
		}
		char *group = sl_strndup(t->string, (size_t)(first - t->string));
		char *version = sl_strndup(first + 1, (size_t)(slash - first - 1));
		if (!group || !version) {
			free(group);
			free(version);
			r = SL_ENOMEM;
			goto out;
		}
		for (const cJSON *ns = t->child; r == 0 && ns; ns = ns->next) {
			if (!cJSON_IsObject(ns)) {
				r = sl_error_set(err, SL_EINVALID, "inventory has a bad namespace entry");
				break;
			}
			for (const cJSON *o = ns->child; r == 0 && o; o = o->next) {
				if (!cJSON_IsString(o) || !o->string || !*o->string) {
					r = sl_error_set(err, SL_EINVALID,
					                 "inventory has a bad object entry");
					break;
				}
				r = sl_sync_inventory_put(inv, group, version, slash + 1, ns->string,
				                          o->string, o->valuestring);
			}
		}
		free(group);
		free(version);
		if (r < 0) {
			if (r == SL_EINVALID)
				sl_error_set(err, r, "inventory has a bad entry");
			goto out;
		}
	}
	*ret = TAKE_PTR(inv);
out:
	cJSON_Delete(root);
	sl_sync_inventory_free(inv);
	return r;
}

/* ---- status ------------------------------------------------------------------ */

static cJSON *add_str(cJSON *o, const char *k, const char *v)
{
	return cJSON_AddStringToObject(o, k, v ? v : "");
}

int sl_sync_status_format(const struct sl_sync_status *st, struct sl_buf *out)
{
	char t0[32], t1[32];
	cJSON *o = cJSON_CreateObject(), *errs;
	char *s = NULL;
	int r = SL_ENOMEM;

	if (!o)
		return SL_ENOMEM;
	sl_time_rfc3339(st->start_s, t0);
	sl_time_rfc3339(st->end_s, t1);
	if (!add_str(o, "revision", st->revision) || !add_str(o, "result", st->result) ||
	    !add_str(o, "start", t0) || !add_str(o, "end", t1) ||
	    !cJSON_AddNumberToObject(o, "applied", (double)st->applied) ||
	    !cJSON_AddNumberToObject(o, "unchanged", (double)st->unchanged) ||
	    !cJSON_AddNumberToObject(o, "failed", (double)st->failed) ||
	    !cJSON_AddNumberToObject(o, "pruned", (double)st->pruned) ||
	    !cJSON_AddNumberToObject(o, "pruneSkipped", (double)st->prune_skipped) ||
	    !cJSON_AddNumberToObject(o, "errorCount", (double)st->n_errors))
		goto out;
	if (st->prune_blocked && !add_str(o, "pruneBlocked", st->prune_blocked))
		goto out;
	if (st->outcome && !add_str(o, "outcome", st->outcome))
		goto out;
	errs = cJSON_AddArrayToObject(o, "errors");
	if (!errs)
		goto out;
	for (size_t i = 0; i < st->n_errors && i < SL_SYNC_STATUS_MAX_ERRORS; i++) {
		const struct sl_sync_problem *p = &st->errors[i];
		char reason[SL_SYNC_STATUS_MAX_REASON + 1];
		cJSON *e = cJSON_CreateObject();
		if (!e || !cJSON_AddItemToArray(errs, e)) {
			cJSON_Delete(e);
			goto out;
		}
		snprintf(reason, sizeof(reason), "%s", p->reason ? p->reason : "");
		if (!add_str(e, "file", p->file) || !cJSON_AddNumberToObject(e, "line", p->line) ||
		    (p->kind && !add_str(e, "kind", p->kind)) || (p->ns && !add_str(e, "namespace", p->ns)) ||
		    (p->name && !add_str(e, "name", p->name)) || !add_str(e, "reason", reason))
			goto out;
	}
	s = cJSON_PrintUnformatted(o);
	if (!s)
		goto out;
	r = sl_buf_puts(out, s);
out:
	free(s);
	cJSON_Delete(o);
	return r;
}

int sl_sync_inventory_read(const cJSON *cm, struct sl_sync_inventory **inv, char **outcome,
                           struct sl_error *err)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(cm, "data");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(data, "inventory");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(data, "status");
	struct sl_sync_inventory *v = NULL;
	char *oc = NULL;
	int r;

	if (cJSON_IsString(text))
		r = sl_sync_inventory_parse(text->valuestring, strlen(text->valuestring), &v, err);
	else
		r = sl_sync_inventory_new(&v);
	if (r < 0)
		return r;
	if (cJSON_IsString(status)) {
		cJSON *st = cJSON_Parse(status->valuestring);
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(st, "outcome");
		if (cJSON_IsString(o) && !(oc = sl_strdup(o->valuestring)))
			r = sl_error_set(err, SL_ENOMEM, "out of memory");
		cJSON_Delete(st);
	}
	if (r < 0) {
		sl_sync_inventory_free(v);
		return r;
	}
	*inv = v;
	*outcome = oc;
	return 0;
}

int sl_sync_inventory_name(const char *source_id, char *out, size_t outsz)
{
	size_t n = source_id ? strlen(source_id) : 0;
	if (n == 0 || n > 253 - strlen("sluice-inventory-"))
		return SL_EINVALID;
	for (size_t i = 0; i < n; i++) {
		char c = source_id[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i + 1 < n) && !(c == '.' && i > 0 && i + 1 < n))
			return SL_EINVALID;
	}
	if ((size_t)snprintf(out, outsz, "sluice-inventory-%s", source_id) >= outsz)
		return SL_ETOOLARGE;
	return 0;
}

cJSON *sl_sync_inventory_configmap(const char *source_id, const char *ns, const char *inventory_json,
                                   const char *status_json)
{
	char name[256];
	cJSON *cm = NULL, *meta, *labels, *ann, *data;

	if (sl_sync_inventory_name(source_id, name, sizeof(name)) < 0)
		return NULL;
	cm = cJSON_CreateObject();
	if (!cm || !add_str(cm, "apiVersion", "v1") || !add_str(cm, "kind", "ConfigMap") ||
	    !(meta = cJSON_AddObjectToObject(cm, "metadata")) || !add_str(meta, "name", name) ||
	    !add_str(meta, "namespace", ns) || !(labels = cJSON_AddObjectToObject(meta, "labels")) ||
	    !add_str(labels, SL_ARCANE_LABEL_MANAGED_BY, "sluice") ||
	    !add_str(labels, "sluice.dev/inventory", "true") ||
	    !(ann = cJSON_AddObjectToObject(meta, "annotations")) ||
	    !add_str(ann, SL_ARCANE_ANN_SOURCE, source_id) || !(data = cJSON_AddObjectToObject(cm, "data")) ||
	    !add_str(data, "inventory", inventory_json) ||
	    (status_json && !add_str(data, "status", status_json))) {
		cJSON_Delete(cm);
		return NULL;
	}
	return cm;
}
