/* The manifest container: the files of a set, their documents (indexed by
 * kind and name, StreamClasses apart) and every problem found on the way.
 * The loader fills it and the validator reads it; it calls neither. */
#include "positions.h"
#include "set.h"

#include <stdio.h>
#include <string.h>

struct sl_manifest_set {
	struct sl_manifest_limits lim;
	struct sl_manifest_doc **docs; /* pointers: documents never move */
	size_t n_docs, cap_docs;
	struct sl_manifest_problem *problems;
	size_t n_problems, cap_problems, n_errors;
	struct sl_manifest_file *files;
	size_t n_files, cap_files;
	size_t total_size;
	/* Index by (kind, name): open addressing, slots hold doc index + 1, so
	 * that lookups stay O(1) for trees of many thousand documents. */
	size_t *slots;
	size_t n_slots, n_indexed;
	size_t *classes; /* StreamClass documents */
	size_t n_classes, cap_classes;
};

static const char *str_at(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static uint64_t kind_name_hash(const char *kind, const char *name)
{
	uint64_t h = sl_hash_keyed(kind, strlen(kind));
	return h ^ (sl_hash_keyed(name, strlen(name)) * 0x9E3779B97F4A7C15ull);
}

static void index_put(size_t *slots, size_t n_slots, const struct sl_manifest_doc *d, size_t value)
{
	size_t i = (size_t)(kind_name_hash(d->kind, d->name) & (n_slots - 1));
	while (slots[i])
		i = (i + 1) & (n_slots - 1);
	slots[i] = value;
}

/* Adds document i to the index (documents without kind or name are not). */
static int index_add(struct sl_manifest_set *s, size_t i)
{
	const struct sl_manifest_doc *d = s->docs[i];
	if (!d->kind || !d->name)
		return 0;
	if ((s->n_indexed + 1) * 2 > s->n_slots) {
		size_t nn = s->n_slots ? s->n_slots * 2 : 256;
		size_t *ns = calloc(nn, sizeof(*ns));
		if (!ns)
			return SL_ENOMEM;
		for (size_t j = 0; j < s->n_slots; j++)
			if (s->slots[j])
				index_put(ns, nn, s->docs[s->slots[j] - 1], s->slots[j]);
		free(s->slots);
		s->slots = ns;
		s->n_slots = nn;
	}
	index_put(s->slots, s->n_slots, d, i + 1);
	s->n_indexed++;
	return 0;
}

const struct sl_manifest_doc *
sl_manifest__set_lookup(const struct sl_manifest_set *s, const char *kind, const char *name,
                        bool (*match)(const struct sl_manifest_doc *d, const void *arg), const void *arg)
{
	size_t i, best = SIZE_MAX;
	if (!s->n_slots || !kind || !name)
		return NULL;
	/* the first match in load order, as a linear search would find */
	for (i = (size_t)(kind_name_hash(kind, name) & (s->n_slots - 1)); s->slots[i];
	     i = (i + 1) & (s->n_slots - 1)) {
		const struct sl_manifest_doc *d = s->docs[s->slots[i] - 1];
		if (strcmp(d->kind, kind) == 0 && strcmp(d->name, name) == 0 && (!match || match(d, arg)) &&
		    s->slots[i] - 1 < best)
			best = s->slots[i] - 1;
	}
	return best == SIZE_MAX ? NULL : s->docs[best];
}

struct sl_manifest_set *sl_manifest_set_new(const struct sl_manifest_limits *limits)
{
	static const struct sl_manifest_limits def = SL_MANIFEST_LIMITS_INIT;
	struct sl_manifest_set *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->lim = limits ? *limits : def;
	return s;
}

void sl_manifest_set_free(struct sl_manifest_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_docs; i++) {
		cJSON_Delete(s->docs[i]->obj);
		sl_manifest__positions_free(s->docs[i]->positions);
		free(s->docs[i]);
	}
	for (size_t i = 0; i < s->n_problems; i++) {
		free((char *)s->problems[i].file);
		free((char *)s->problems[i].field);
		free((char *)s->problems[i].message);
	}
	for (size_t i = 0; i < s->n_files; i++)
		free((char *)s->files[i].path);
	free(s->docs);
	free(s->problems);
	free(s->files);
	free(s->slots);
	free(s->classes);
	free(s);
}

/* ---- problems ----------------------------------------------------------- */

int sl_manifest__set_problem(struct sl_manifest_set *s, enum sl_manifest_severity sev, int code,
                             const char *file, int doc, unsigned line, unsigned col, const char *field,
                             const char *fmt, ...)
{
	struct sl_manifest_problem *p;
	va_list ap;
	char msg[1024];

	if (SL_GROW(s->problems, s->cap_problems, s->n_problems + 1, 16) < 0)
		return SL_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p = &s->problems[s->n_problems];
	*p = (struct sl_manifest_problem){
	    .severity = sev,
	    .code = code,
	    .file = sl_strdup(file ? file : ""),
	    .doc = doc,
	    .line = line,
	    .column = col,
	    .field = sl_strdup(field ? field : ""),
	    .message = sl_strdup(msg),
	};
	if (!p->file || !p->field || !p->message) {
		free((char *)p->file);
		free((char *)p->field);
		free((char *)p->message);
		return SL_ENOMEM;
	}
	s->n_problems++;
	if (sev == SL_MANIFEST_ERROR)
		s->n_errors++;
	return 0;
}

/* ---- accessors ---------------------------------------------------------- */

size_t sl_manifest_set_doc_count(const struct sl_manifest_set *s)
{
	return s->n_docs;
}
const struct sl_manifest_doc *sl_manifest_set_doc(const struct sl_manifest_set *s, size_t i)
{
	return i < s->n_docs ? s->docs[i] : NULL;
}
cJSON *sl_manifest_set_take_obj(struct sl_manifest_set *s, size_t i)
{
	struct sl_manifest_doc *d;

	if (i >= s->n_docs)
		return NULL;
	/* the index and the class list point at documents through their
	 * borrowed strings: both go with the first object taken */
	free(s->slots);
	s->slots = NULL;
	s->n_slots = s->n_indexed = 0;
	s->n_classes = 0;
	d = s->docs[i];
	d->api_version = d->kind = d->name = d->namespace = NULL;
	sl_manifest__positions_free(d->positions);
	d->positions = NULL;
	return TAKE_PTR(d->obj);
}

size_t sl_manifest_set_problem_count(const struct sl_manifest_set *s)
{
	return s->n_problems;
}
const struct sl_manifest_problem *sl_manifest_set_problem(const struct sl_manifest_set *s, size_t i)
{
	return i < s->n_problems ? &s->problems[i] : NULL;
}
size_t sl_manifest_set_error_count(const struct sl_manifest_set *s)
{
	return s->n_errors;
}
size_t sl_manifest_set_file_count(const struct sl_manifest_set *s)
{
	return s->n_files;
}
const struct sl_manifest_file *sl_manifest_set_file(const struct sl_manifest_set *s, size_t i)
{
	return i < s->n_files ? &s->files[i] : NULL;
}

struct sl_manifest_doc *sl_manifest__set_doc_mut(struct sl_manifest_set *s, size_t i)
{
	return s->docs[i];
}

void sl_manifest_set_digest(const struct sl_manifest_set *s, char out[static 65])
{
	struct sl_sha256 c;
	uint8_t d[SL_SHA256_LEN];

	sl_sha256_init(&c);
	for (size_t i = 0; i < s->n_files; i++) {
		sl_sha256_update(&c, s->files[i].path, strlen(s->files[i].path) + 1);
		sl_sha256_update(&c, s->files[i].sha256, SL_SHA256_LEN);
	}
	sl_sha256_final(&c, d);
	sl_hex(d, sizeof(d), out);
}

const char *sl_manifest_doc_group(const struct sl_manifest_doc *d, char *out, size_t n)
{
	const char *av = d->api_version ? d->api_version : "";
	const char *slash = strchr(av, '/');
	size_t l = slash ? (size_t)(slash - av) : 0;
	if (n == 0)
		return out;
	l = SL_MIN(l, n - 1);
	memcpy(out, av, l);
	out[l] = '\0';
	return out;
}

struct find_arg {
	const char *group, *ns;
};

static bool find_match(const struct sl_manifest_doc *d, const void *arg)
{
	const struct find_arg *a = arg;
	char g[256];
	if (a->group && strcmp(sl_manifest_doc_group(d, g, sizeof(g)), a->group) != 0)
		return false;
	return !a->ns || strcmp(d->namespace ? d->namespace : "", a->ns) == 0;
}

const struct sl_manifest_doc *sl_manifest_set_find(const struct sl_manifest_set *s, const char *group,
                                                   const char *kind, const char *ns, const char *name)
{
	struct find_arg a = {group, ns};
	return sl_manifest__set_lookup(s, kind, name, find_match, &a);
}

/* Streams are found through the classes: a class registers one kind. */
bool sl_manifest_set_is_stream(const struct sl_manifest_set *s, const struct sl_manifest_doc *d,
                               const struct sl_manifest_doc **ret_class)
{
	if (!d->kind || !d->api_version)
		return false;
	for (size_t i = 0; i < s->n_classes; i++) {
		const struct sl_manifest_doc *c = s->docs[s->classes[i]];
		const cJSON *spec;
		const char *g, *ver, *k;
		size_t gl;
		spec = cJSON_GetObjectItemCaseSensitive(c->obj, "spec");
		g = str_at(spec, "apiGroupRef");
		ver = str_at(spec, "apiVersion");
		k = str_at(spec, "kindRef");
		if (!g || !ver || !k || strcmp(k, d->kind) != 0)
			continue;
		gl = strlen(g);
		if (strncmp(d->api_version, g, gl) != 0 || d->api_version[gl] != '/' ||
		    strcmp(d->api_version + gl + 1, ver) != 0)
			continue;
		if (ret_class)
			*ret_class = c;
		return true;
	}
	return false;
}

/* ---- filling the set ---------------------------------------------------- */

const struct sl_manifest_limits *sl_manifest__set_limits(const struct sl_manifest_set *s)
{
	return &s->lim;
}

long sl_manifest__set_file_register(struct sl_manifest_set *s, const char *display, const void *data,
                                    size_t len, struct sl_error *err)
{
	struct sl_manifest_file *f;
	struct sl_sha256 c;

	if (s->n_files >= s->lim.max_files)
		return sl_error_set(err, SL_ETOOLARGE, "more than %zu files", s->lim.max_files);
	if (len > s->lim.max_total_size - SL_MIN(s->total_size, s->lim.max_total_size))
		return sl_error_set(err, SL_ETOOLARGE, "more than %zu bytes of manifests in total",
		                    s->lim.max_total_size);
	if (SL_GROW(s->files, s->cap_files, s->n_files + 1, 16) < 0)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	f = &s->files[s->n_files];
	*f = (struct sl_manifest_file){.path = sl_strdup(display), .size = len};
	if (!f->path)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	sl_sha256_init(&c);
	sl_sha256_update(&c, data, len);
	sl_sha256_final(&c, f->sha256);
	s->total_size += len;
	return (long)s->n_files++;
}

int sl_manifest__set_doc_add(struct sl_manifest_set *s, size_t file_index, unsigned index, unsigned line,
                             unsigned col, cJSON *obj, struct sl_manifest_positions *pos)
{
	struct sl_manifest_doc *d = NULL;
	const cJSON *meta;
	int r = 0;

	if (SL_GROW(s->docs, s->cap_docs, s->n_docs + 1, 64) < 0) {
		r = SL_ENOMEM;
		goto out;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		r = SL_ENOMEM;
		goto out;
	}
	d->file = s->files[file_index].path;
	d->index = index;
	d->line = line;
	d->column = col;
	d->obj = TAKE_PTR(obj);
	sl_manifest__positions_compact(pos);
	d->positions = TAKE_PTR(pos);
	d->api_version = str_at(d->obj, "apiVersion");
	d->kind = str_at(d->obj, "kind");
	meta = cJSON_GetObjectItemCaseSensitive(d->obj, "metadata");
	if (cJSON_IsObject(meta)) {
		d->name = str_at(meta, "name");
		d->namespace = str_at(meta, "namespace");
	}
	s->docs[s->n_docs++] = d;
	s->files[file_index].n_docs++;
	if (index_add(s, s->n_docs - 1) < 0) {
		r = SL_ENOMEM;
		goto out;
	}
	if (d->kind && d->api_version && strcmp(d->kind, "StreamClass") == 0 &&
	    strcmp(d->api_version, SL_ARCANE_API_VERSION) == 0) {
		if (SL_GROW(s->classes, s->cap_classes, s->n_classes + 1, 8) < 0) {
			r = SL_ENOMEM;
			goto out;
		}
		s->classes[s->n_classes++] = s->n_docs - 1;
	}
out:
	cJSON_Delete(obj);
	sl_manifest__positions_free(pos);
	return r;
}
