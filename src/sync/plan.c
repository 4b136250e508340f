/* The apply planner: classifies desired objects into dependency stages,
 * decorates them with sluice's label and annotations, and flags documents
 * that cannot be applied (missing kind or name, duplicates). Pure. */
#include "sluice/sync.h"
#include "sluice/base-base64.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

enum sl_sync_stage sl_sync_stage_of(const char *group, const char *kind)
{
	group = group ? group : "";
	kind = kind ? kind : "";
	if (strcmp(group, "apiextensions.k8s.io") == 0 && strcmp(kind, "CustomResourceDefinition") == 0)
		return SL_SYNC_STAGE_CRD;
	if (!*group && strcmp(kind, "Namespace") == 0)
		return SL_SYNC_STAGE_NAMESPACE;
	if (!*group && (strcmp(kind, "Secret") == 0 || strcmp(kind, "ConfigMap") == 0))
		return SL_SYNC_STAGE_CONFIG;
	if (strcmp(group, SL_ARCANE_GROUP) == 0) {
		if (strcmp(kind, "StreamClass") == 0)
			return SL_SYNC_STAGE_CLASS;
		if (strcmp(kind, "StreamingJobTemplate") == 0)
			return SL_SYNC_STAGE_TEMPLATE;
		if (strcmp(kind, "BackfillRequest") == 0)
			return SL_SYNC_STAGE_BACKFILL;
	}
	return SL_SYNC_STAGE_STREAM;
}

int sl_sync_plan_new(const char *source_id, const char *revision, struct sl_sync_plan **ret)
{
	struct sl_sync_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return SL_ENOMEM;
	p->source_id = sl_strdup(source_id ? source_id : "");
	p->revision = sl_strdup(revision ? revision : "");
	if (!p->source_id || !p->revision) {
		sl_sync_plan_free(p);
		return SL_ENOMEM;
	}
	*ret = p;
	return 0;
}

static void problem_free(struct sl_sync_problem *pr)
{
	free(pr->file);
	free(pr->kind);
	free(pr->ns);
	free(pr->name);
	free(pr->reason);
}

void sl_sync_plan_free(struct sl_sync_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_items; i++) {
		cJSON_Delete(p->items[i].obj);
		free(p->items[i].file);
	}
	sl_map_free(&p->strings, NULL);
	for (size_t i = 0; i < p->n_problems; i++)
		problem_free(&p->problems[i]);
	free(p->items);
	free(p->problems);
	free(p->source_id);
	free(p->revision);
	free(p);
}

static int push_problem(struct sl_sync_plan *p, const char *file, int line, int index, int code,
                        const char *kind, const char *ns, const char *name, const char *reason)
{
	if (p->n_problems == p->cap_problems) {
		size_t cap = p->cap_problems ? 2 * p->cap_problems : 8;
		void *np = realloc(p->problems, cap * sizeof(*p->problems));
		if (!np)
			return SL_ENOMEM;
		p->problems = np;
		p->cap_problems = cap;
	}
	struct sl_sync_problem pr = {
	    .file = sl_strdup(file ? file : ""),
	    .line = line,
	    .index = index,
	    .kind = kind ? sl_strdup(kind) : NULL,
	    .ns = ns ? sl_strdup(ns) : NULL,
	    .name = name ? sl_strdup(name) : NULL,
	    .reason = sl_strdup(reason ? reason : ""),
	    .code = code,
	};
	if (!pr.file || !pr.reason || (kind && !pr.kind) || (ns && !pr.ns) || (name && !pr.name)) {
		problem_free(&pr);
		return SL_ENOMEM;
	}
	p->problems[p->n_problems++] = pr;
	return 0;
}

int sl_sync_plan_add_problem(struct sl_sync_plan *p, const char *file, int line, int index, int code,
                             const char *reason)
{
	return push_problem(p, file, line, index, code, NULL, NULL, NULL, reason);
}

static const char *str_at(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Returns the object member key, creating an empty object there if absent;
 * NULL when it exists with another type or on allocation failure. */
static cJSON *obj_member(cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v)
		return cJSON_AddObjectToObject(o, key);
	if (cJSON_IsNull(v)) {
		cJSON *n = cJSON_CreateObject();
		if (!n)
			return NULL;
		cJSON_ReplaceItemInObjectCaseSensitive(o, key, n);
		return n;
	}
	return cJSON_IsObject(v) ? v : NULL;
}

/* The plan's copy of the first n bytes of s, shared by every item that has
 * it; NULL when out of memory. */
static char *intern(struct sl_sync_plan *p, const char *s, size_t n)
{
	char *tmp = sl_strndup(s, n);
	const char *k = tmp ? sl_map_key(&p->strings, tmp) : NULL;

	if (tmp && !k && sl_map_put(&p->strings, tmp, p, NULL) == 0)
		k = sl_map_key(&p->strings, tmp);
	free(tmp);
	return (char *)k;
}

/* Sets key, a string constant that is not copied, to s (taken). The
 * decorations of 10,000 objects share their keys. A member of that name
 * present already is replaced. */
static int set_decoration(cJSON *o, const char *key, cJSON *s)
{
	if (!s)
		return SL_ENOMEM;
	if (cJSON_GetObjectItemCaseSensitive(o, key))
		cJSON_ReplaceItemInObjectCaseSensitive(o, key, s);
	else if (!cJSON_AddItemToObjectCS(o, key, s)) {
		cJSON_Delete(s);
		return SL_ENOMEM;
	}
	return 0;
}

static int set_string(cJSON *o, const char *key, const char *val)
{
	cJSON *s = cJSON_CreateString(val);
	if (!s)
		return SL_ENOMEM;
	cJSON *old = cJSON_GetObjectItemCaseSensitive(o, key);
	if (old)
		cJSON_ReplaceItemInObjectCaseSensitive(o, key, s);
	else if (!cJSON_AddItemToObject(o, key, s)) {
		cJSON_Delete(s);
		return SL_ENOMEM;
	}
	return 0;
}

/* Valid DNS-1123 subdomain-ish name: what the API would accept as a name of
 * most kinds. Catching it here gives the file and line. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      (c >= 'A' && c <= 'Z') || c == '_' || c == ':'))
			return false;
	}
	return true;
}

/* A Secret's stringData is write-only: the API server merges it into data.
 * Planning it as data makes the digest, the live comparison (drift) and the
 * diff see what the server stores. Values of stringData win, as on the
 * server. */
static int fold_string_data(cJSON *obj, const char **why)
{
	cJSON *sd = cJSON_GetObjectItemCaseSensitive(obj, "stringData");
	cJSON *data;

	*why = NULL;
	if (!sd)
		return 0;
	if (!cJSON_IsObject(sd)) {
		*why = "stringData must be a mapping";
		return SL_EINVALID;
	}
	data = cJSON_GetObjectItemCaseSensitive(obj, "data");
	if (!data || cJSON_IsNull(data)) {
		data = cJSON_CreateObject();
		if (!data)
			return SL_ENOMEM;
		if (cJSON_GetObjectItemCaseSensitive(obj, "data"))
			cJSON_ReplaceItemInObjectCaseSensitive(obj, "data", data);
		else if (!cJSON_AddItemToObject(obj, "data", data)) {
			cJSON_Delete(data);
			return SL_ENOMEM;
		}
	}
	if (!cJSON_IsObject(data)) {
		*why = "data must be a mapping";
		return SL_EINVALID;
	}
	for (cJSON *v = sd->child; v; v = v->next) {
		if (!cJSON_IsString(v)) {
			*why = "stringData values must be strings";
			return SL_EINVALID;
		}
		char *enc = sl_base64_encode(v->valuestring, strlen(v->valuestring));
		if (!enc)
			return SL_ENOMEM;
		int r = set_string(data, v->string, enc);
		free(enc);
		if (r < 0)
			return r;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "stringData");
	return 0;
}

#define REASON_MAX 256

/* Why a document of this identity cannot be applied, into reason; false when
 * it can. Catching it here gives the file and line. */
static bool refused(const char *kind, const char *av, const cJSON *meta, const char *name, const char *ns,
                    char reason[static REASON_MAX])
{
	if (!kind || !*kind || !av || !*av)
		snprintf(reason, REASON_MAX, "missing %s", !kind || !*kind ? "kind" : "apiVersion");
	else if (!cJSON_IsObject(meta) || !name || !*name)
		snprintf(reason, REASON_MAX, "missing metadata.name%s",
		         cJSON_GetObjectItemCaseSensitive(meta, "generateName")
		             ? " (generateName is not supported)"
		             : "");
	else if (!name_ok(name) || (ns && *ns && !name_ok(ns)))
		snprintf(reason, REASON_MAX, "invalid %s",
		         name_ok(name) ? "metadata.namespace" : "metadata.name");
	else if (strchr(av, '/') && (av[0] == '/' || strchr(av, '/') != strrchr(av, '/')))
		snprintf(reason, REASON_MAX, "invalid apiVersion");
	else
		return false;
	return true;
}

/* sluice's ownership label and its source, path and revision annotations.
 * SL_EINVALID, with the reason, when labels or annotations are no mappings.
 * All but the path are the same for every object: they point into the plan,
 * which owns the objects. */
static int decorate(const struct sl_sync_plan *p, cJSON *meta, const char *file, int index,
                    char reason[static REASON_MAX])
{
	cJSON *labels = obj_member(meta, "labels"), *ann = obj_member(meta, "annotations");
	char path[1024];

	if (!labels || !ann) {
		snprintf(reason, REASON_MAX, "metadata.labels and metadata.annotations must be mappings");
		return SL_EINVALID;
	}
	snprintf(path, sizeof(path), "%s#%d", file ? file : "", index);
	if (set_decoration(labels, SL_ARCANE_LABEL_MANAGED_BY, cJSON_CreateStringReference("sluice")) < 0 ||
	    set_decoration(ann, SL_ARCANE_ANN_SOURCE, cJSON_CreateStringReference(p->source_id)) < 0 ||
	    set_decoration(ann, SL_ARCANE_ANN_PATH, cJSON_CreateString(path)) < 0 ||
	    set_decoration(ann, SL_ARCANE_ANN_REVISION, cJSON_CreateStringReference(p->revision)) < 0)
		return SL_ENOMEM;
	return 0;
}

/* Appends obj, decorated, as an item; takes obj in every case. */
static int push_item(struct sl_sync_plan *p, cJSON *obj, const char *file, int index, int line)
{
	const char *av = str_at(obj, "apiVersion"), *slash = strchr(av, '/');
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");

	if (SL_GROW(p->items, p->cap_items, p->n_items + 1, 64) < 0) {
		cJSON_Delete(obj);
		return SL_ENOMEM;
	}
	struct sl_sync_item *it = &p->items[p->n_items];
	*it = (struct sl_sync_item){
	    .obj = obj,
	    /* the strings below live in obj, which the plan owns */
	    .api_version = av,
	    .group = intern(p, av, slash ? (size_t)(slash - av) : 0),
	    .version = intern(p, slash ? slash + 1 : av, strlen(slash ? slash + 1 : av)),
	    .kind = str_at(obj, "kind"),
	    .ns = str_at(meta, "namespace"),
	    .name = str_at(meta, "name"),
	    .file = sl_strdup(file ? file : ""),
	    .index = index,
	    .line = line,
	};
	if (it->ns && !*it->ns)
		it->ns = NULL;
	it->stage = sl_sync_stage_of(it->group, it->kind);
	if (!it->group || !it->version || !it->file || sl_sync_digest(obj, it->digest) < 0) {
		free(it->file);
		cJSON_Delete(obj);
		return SL_ENOMEM;
	}
	p->n_items++;
	return 0;
}

int sl_sync_plan_add(struct sl_sync_plan *p, cJSON *obj, const char *file, int index, int line)
{
	char reason[REASON_MAX];
	const char *kind, *av, *name, *ns;
	cJSON *meta;
	int r;

	if (p->finished) {
		cJSON_Delete(obj);
		return SL_EINVALID;
	}
	if (!cJSON_IsObject(obj)) {
		r = push_problem(p, file, line, index, SL_EINVALID, NULL, NULL, NULL,
		                 obj && !cJSON_IsNull(obj) ? "document is not a mapping" : "empty document");
		cJSON_Delete(obj);
		return r;
	}
	kind = str_at(obj, "kind");
	av = str_at(obj, "apiVersion");
	meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	name = str_at(meta, "name");
	ns = str_at(meta, "namespace");
	if (refused(kind, av, meta, name, ns, reason))
		goto refuse;
	if (strcmp(av, "v1") == 0 && strcmp(kind, "Secret") == 0) {
		const char *why;
		/* kind, av, name and ns still point into obj: only data and
		 * stringData change */
		r = fold_string_data(obj, &why);
		if (r == SL_EINVALID) {
			snprintf(reason, sizeof(reason), "%s", why);
			goto refuse;
		}
		if (r < 0) {
			cJSON_Delete(obj);
			return r;
		}
	}
	r = decorate(p, meta, file, index, reason);
	if (r == SL_EINVALID)
		goto refuse;
	if (r < 0) {
		cJSON_Delete(obj);
		return r;
	}
	return push_item(p, obj, file, index, line);

refuse:
	r = push_problem(p, file, line, index, SL_EINVALID, kind, ns, name, reason);
	cJSON_Delete(obj);
	return r;
}

static int cmp_item(const void *a, const void *b)
{
	const struct sl_sync_item *x = a, *y = b;
	if (x->stage != y->stage)
		return x->stage < y->stage ? -1 : 1;
	int c = strcmp(x->file, y->file);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

static bool same_object(const struct sl_sync_item *a, const struct sl_sync_item *b)
{
	return strcmp(a->group, b->group) == 0 && strcmp(a->kind, b->kind) == 0 &&
	       strcmp(a->name, b->name) == 0 && strcmp(a->ns ? a->ns : "", b->ns ? b->ns : "") == 0;
}

static int cmp_identity(const void *a, const void *b)
{
	const struct sl_sync_item *x = *(const struct sl_sync_item *const *)a;
	const struct sl_sync_item *y = *(const struct sl_sync_item *const *)b;
	int c;
	if ((c = strcmp(x->group, y->group)) || (c = strcmp(x->kind, y->kind)) ||
	    (c = strcmp(x->ns ? x->ns : "", y->ns ? y->ns : "")) || (c = strcmp(x->name, y->name)))
		return c;
	return x < y ? -1 : x > y;
}

static void drop_item(struct sl_sync_item *it)
{
	cJSON_Delete(it->obj);
	free(it->file);
	it->obj = NULL;
}

int sl_sync_plan_finish(struct sl_sync_plan *p)
{
	struct sl_sync_item **idx = NULL;
	bool *dup = NULL;
	size_t n = p->n_items, w = 0;
	int r = 0;

	if (p->finished)
		return SL_EINVALID;
	/* source order first (file, index), so "the second one" of a duplicate
	 * is well defined */
	if (n) {
		qsort(p->items, n, sizeof(*p->items), cmp_item);
		idx = malloc(n * sizeof(*idx));
		dup = calloc(n, sizeof(*dup));
		if (!idx || !dup) {
			r = SL_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			idx[i] = &p->items[i];
		qsort(idx, n, sizeof(*idx), cmp_identity);
		/* within equal identities the item pointers ascend, i.e. in
		 * stage/file/index order: keep the first, refuse the rest */
		for (size_t i = 0; i < n;) {
			struct sl_sync_item *first = idx[i];
			size_t j = i + 1;
			for (; j < n && same_object(first, idx[j]); j++) {
				struct sl_sync_item *it = idx[j];
				char reason[512];
				snprintf(reason, sizeof(reason), "duplicate of %s#%d (line %d)", first->file,
				         first->index, first->line);
				r = push_problem(p, it->file, it->line, it->index, SL_EEXIST, it->kind,
				                 it->ns, it->name, reason);
				if (r < 0)
					goto out;
				dup[it - p->items] = true;
			}
			i = j;
		}
		for (size_t i = 0; i < n; i++) {
			if (dup[i]) {
				drop_item(&p->items[i]);
				continue;
			}
			if (w != i)
				p->items[w] = p->items[i];
			w++;
		}
		p->n_items = w;
	}
	for (size_t s = 0, i = 0; s <= SL_SYNC_STAGE_COUNT; s++) {
		while (i < p->n_items && p->items[i].stage < (enum sl_sync_stage)s)
			i++;
		p->stage_start[s] = s == SL_SYNC_STAGE_COUNT ? p->n_items : i;
	}
	p->finished = true;
out:
	free(idx);
	free(dup);
	return r;
}

int sl_sync_item_set_namespace(struct sl_sync_item *it, const char *ns)
{
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(it->obj, "metadata");
	if (!cJSON_IsObject(meta) || !ns || !*ns)
		return SL_EINVALID;
	int r = set_string(meta, "namespace", ns);
	if (r < 0)
		return r;
	it->ns = str_at(meta, "namespace");
	return sl_sync_digest(it->obj, it->digest);
}

int sl_sync_plan_add_item_problem(struct sl_sync_plan *p, const struct sl_sync_item *it, int code,
                                  const char *reason)
{
	return push_problem(p, it->file, it->line, it->index, code, it->kind, it->ns, it->name, reason);
}
