/* A set of manifests: files read (a directory tree, single files or
 * buffers), their documents, and every problem found on the way. */
#include "manifest-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WALK_MAX_DEPTH 64

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

static uint64_t kind_name_hash(const char *kind, const char *name)
{
	uint64_t h = sl_hash64(kind, strlen(kind));
	return h ^ (sl_hash64(name, strlen(name)) * 0x9E3779B97F4A7C15ull);
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

size_t sl_manifest__set_class_count(const struct sl_manifest_set *s)
{
	return s->n_classes;
}
const struct sl_manifest_doc *sl_manifest__set_class(const struct sl_manifest_set *s, size_t i)
{
	return s->docs[s->classes[i]];
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

/* Internal: records a problem (strings copied). Returns 0 or SL_ENOMEM. */
int sl_manifest__set_problem(struct sl_manifest_set *s, enum sl_manifest_severity sev, int code,
                             const char *file, int doc, unsigned line, unsigned col, const char *field,
                             const char *fmt, ...) __attribute__((format(printf, 9, 10)));
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

int sl_manifest_problem_format(const struct sl_manifest_problem *p, char *out, size_t n)
{
	struct sl_buf b;
	int r, len;

	sl_buf_init(&b, 64 * 1024);
	r = sl_buf_puts(&b, "");
	if (r == 0 && p->file && *p->file)
		r = sl_buf_printf(&b, "%s:", p->file);
	if (r == 0 && p->line)
		r = sl_buf_printf(&b, "%u:%u:", p->line, p->column);
	if (r == 0 && b.len)
		r = sl_buf_puts(&b, " ");
	if (r == 0 && p->field && *p->field)
		r = sl_buf_printf(&b, "%s: ", p->field);
	if (r == 0 && p->severity == SL_MANIFEST_WARNING)
		r = sl_buf_puts(&b, "warning: ");
	if (r == 0)
		r = sl_buf_puts(&b, p->message ? p->message : "");
	if (r < 0) {
		sl_buf_free(&b);
		if (n)
			out[0] = '\0';
		return 0;
	}
	len = (int)b.len;
	if (n) {
		size_t c = SL_MIN(b.len, n - 1);
		memcpy(out, b.data, c);
		out[c] = '\0';
	}
	sl_buf_free(&b);
	return len;
}

void sl_manifest_problem_print(const struct sl_manifest_problem *p, FILE *f)
{
	char line[2048];
	int n = sl_manifest_problem_format(p, line, sizeof(line));
	if ((size_t)n >= sizeof(line)) {
		char *big = malloc((size_t)n + 1);
		if (big) {
			sl_manifest_problem_format(p, big, (size_t)n + 1);
			fprintf(f, "%s\n", big);
			free(big);
			return;
		}
	}
	fprintf(f, "%s\n", line);
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

/* Internal, for validation: documents are mutable to their module. */
struct sl_manifest_doc *sl_manifest__set_doc_mut(struct sl_manifest_set *s, size_t i);
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

/* ---- adding a buffer ---------------------------------------------------- */

struct add_ctx {
	struct sl_manifest_set *s;
	struct sl_manifest_file *f; /* index-stable only during one add */
	size_t file_index;
};

static const char *str_at(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int add_doc_cb(struct yaml_doc *y, void *payload)
{
	struct add_ctx *a = payload;
	struct sl_manifest_set *s = a->s;
	const char *file = s->files[a->file_index].path;
	struct sl_manifest_doc *d = NULL;
	const cJSON *meta;
	bool has_av, has_kind;
	int r = 0;

	has_av = cJSON_IsObject(y->obj) && cJSON_GetObjectItemCaseSensitive(y->obj, "apiVersion");
	has_kind = cJSON_IsObject(y->obj) && cJSON_GetObjectItemCaseSensitive(y->obj, "kind");
	if (!has_av && !has_kind) {
		/* Not a Kubernetes object (e.g. a values file): said, not fatal. */
		r = sl_manifest__set_problem(s, SL_MANIFEST_WARNING, SL_EINVALID, file, (int)y->index,
		                             y->line, y->col, "",
		                             "document has no apiVersion and kind: skipped");
		goto out;
	}
	if (SL_GROW(s->docs, s->cap_docs, s->n_docs + 1, 64) < 0) {
		r = SL_ENOMEM;
		goto out;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		r = SL_ENOMEM;
		goto out;
	}
	d->file = file;
	d->index = y->index;
	d->line = y->line;
	d->column = y->col;
	d->obj = TAKE_PTR(y->obj);
	d->positions = TAKE_PTR(y->pos);
	d->api_version = str_at(d->obj, "apiVersion");
	d->kind = str_at(d->obj, "kind");
	meta = cJSON_GetObjectItemCaseSensitive(d->obj, "metadata");
	if (cJSON_IsObject(meta)) {
		d->name = str_at(meta, "name");
		d->namespace = str_at(meta, "namespace");
	}
	s->docs[s->n_docs++] = d;
	s->files[a->file_index].n_docs++;
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
	cJSON_Delete(y->obj);
	sl_manifest__positions_free(y->pos);
	return r;
}

static int add_problem_cb(const struct yaml_problem *y, void *payload)
{
	struct add_ctx *a = payload;
	return sl_manifest__set_problem(a->s, SL_MANIFEST_ERROR, y->code, a->s->files[a->file_index].path,
	                                y->doc, y->line, y->col, y->field, "%s", y->msg);
}

/* Registers a file entry; returns its index or a negative code. */
static long add_file_entry(struct sl_manifest_set *s, const char *display, const void *data, size_t len)
{
	struct sl_manifest_file *f;
	if (SL_GROW(s->files, s->cap_files, s->n_files + 1, 16) < 0)
		return SL_ENOMEM;
	f = &s->files[s->n_files];
	*f = (struct sl_manifest_file){.path = sl_strdup(display), .size = len};
	if (!f->path)
		return SL_ENOMEM;
	{
		struct sl_sha256 c;
		sl_sha256_init(&c);
		sl_sha256_update(&c, data, len);
		sl_sha256_final(&c, f->sha256);
	}
	return (long)s->n_files++;
}

int sl_manifest_set_add_buffer(struct sl_manifest_set *s, const char *name, const void *data, size_t len,
                               struct sl_error *err)
{
	struct add_ctx a = {.s = s};
	struct yaml_callbacks cb = {add_doc_cb, add_problem_cb, &a};
	long idx;
	int r;

	if (s->n_files >= s->lim.max_files)
		return sl_error_set(err, SL_ETOOLARGE, "more than %zu files", s->lim.max_files);
	if (len > s->lim.max_total_size - SL_MIN(s->total_size, s->lim.max_total_size))
		return sl_error_set(err, SL_ETOOLARGE, "more than %zu bytes of manifests in total",
		                    s->lim.max_total_size);
	idx = add_file_entry(s, name, data, len);
	if (idx < 0)
		return sl_error_set(err, (int)idx, "out of memory");
	a.file_index = (size_t)idx;
	s->total_size += len;
	if (len > s->lim.max_file_size) {
		r = sl_manifest__set_problem(s, SL_MANIFEST_ERROR, SL_ETOOLARGE, name, -1, 0, 0, "",
		                             "%zu bytes, over the limit of %zu for one file", len,
		                             s->lim.max_file_size);
		return r < 0 ? sl_error_set(err, r, "out of memory") : 0;
	}
	r = sl_manifest__yaml_load(data, len, &s->lim, true, &cb);
	if (r < 0)
		return sl_error_set(err, r, "%s: %s", name,
		                    r == SL_ENOMEM ? "out of memory" : sl_strerror(r));
	return 0;
}

/* ---- files and trees ---------------------------------------------------- */

/* A file-read error without the path sl_file_read put in front: the
 * problem line names the file already. */
static const char *read_msg(const struct sl_error *e, const char *path)
{
	size_t l = strlen(path);
	return strncmp(e->msg, path, l) == 0 && e->msg[l] == ':' && e->msg[l + 1] == ' ' ? e->msg + l + 2
	                                                                                 : e->msg;
}

int sl_manifest_set_add_file(struct sl_manifest_set *s, const char *path, const char *display,
                             struct sl_error *err)
{
	struct sl_buf b;
	struct sl_error e = {0};
	int r;

	if (!display)
		display = path;
	r = sl_file_read(path, s->lim.max_file_size, &b, &e);
	if (r < 0) {
		const char *m = read_msg(&e, path);
		if (sl_manifest__set_problem(s, SL_MANIFEST_ERROR, r, display, -1, 0, 0, "", "%s", m) < 0)
			r = SL_ENOMEM;
		return sl_error_set(err, r, "%s: %s", display, m);
	}
	r = sl_manifest_set_add_buffer(s, display, b.data, b.len, err);
	sl_buf_free(&b);
	return r;
}

struct walk {
	struct sl_manifest_set *s;
	int rootfd;
	char **paths;
	size_t n, cap;
	dev_t stack_dev[WALK_MAX_DEPTH];
	ino_t stack_ino[WALK_MAX_DEPTH];
	unsigned depth;
	const char *prefix;
	struct sl_error *err;
};

static bool yaml_name(const char *n)
{
	return sl_str_has_suffix(n, ".yaml") || sl_str_has_suffix(n, ".yml");
}

static char *display_of(const struct walk *w, const char *rel)
{
	return w->prefix ? sl_asprintf("%s/%s", w->prefix, rel) : sl_strdup(rel);
}

static int walk_problem(struct walk *w, const char *rel, int code, const char *msg)
{
	_cleanup_free_ char *disp = display_of(w, rel);
	if (!disp)
		return SL_ENOMEM;
	return sl_manifest__set_problem(w->s, SL_MANIFEST_ERROR, code, disp, -1, 0, 0, "", "%s", msg);
}

static int walk_add(struct walk *w, const char *rel)
{
	if (w->n >= w->s->lim.max_files)
		return sl_error_set(w->err, SL_ETOOLARGE, "more than %zu YAML files beneath the root",
		                    w->s->lim.max_files);
	if (SL_GROW(w->paths, w->cap, w->n + 1, 64) < 0)
		return sl_error_set(w->err, SL_ENOMEM, "out of memory");
	w->paths[w->n] = sl_strdup(rel);
	if (!w->paths[w->n])
		return sl_error_set(w->err, SL_ENOMEM, "out of memory");
	w->n++;
	return 0;
}

static int walk_dir(struct walk *w, const char *rel);

static int walk_entry(struct walk *w, int dfd, const char *rel, const char *name, unsigned char type)
{
	_cleanup_free_ char *child = *rel ? sl_asprintf("%s/%s", rel, name) : sl_strdup(name);
	struct stat st;
	int r = 0;

	if (!child)
		return sl_error_set(w->err, SL_ENOMEM, "out of memory");
	if (type == DT_UNKNOWN) {
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return walk_problem(w, child, SL_EIO, strerror(errno));
		type = S_ISDIR(st.st_mode)   ? DT_DIR
		       : S_ISLNK(st.st_mode) ? DT_LNK
		       : S_ISREG(st.st_mode) ? DT_REG
		                             : DT_UNKNOWN;
	}
	if (type == DT_DIR)
		return walk_dir(w, child);
	if (type == DT_REG)
		return yaml_name(name) ? walk_add(w, child) : 0;
	if (type == DT_LNK) {
		struct sl_error e = {0};
		_cleanup_close_ int fd = sl_open_beneath(w->rootfd, child, O_PATH, &e);
		if (fd < 0) {
			bool is_dir = fstatat(dfd, name, &st, 0) == 0 && S_ISDIR(st.st_mode);
			if (!yaml_name(name) && !is_dir)
				return 0; /* not something we would read */
			if (e.code == SL_EINVALID)
				return walk_problem(w, child, SL_EINVALID,
				                    "symlink leads outside the root, not followed");
			return walk_problem(w, child, e.code, "broken symlink");
		}
		if (fstat(fd, &st) < 0)
			return walk_problem(w, child, SL_EIO, strerror(errno));
		if (S_ISDIR(st.st_mode))
			return walk_dir(w, child);
		if (S_ISREG(st.st_mode) && yaml_name(name))
			return walk_add(w, child);
	}
	return r;
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(struct walk *w, const char *rel)
{
	struct sl_error e = {0};
	struct stat st;
	DIR *dir;
	struct dirent *de;
	int fd, r = 0;
	char **names = NULL;
	size_t n = 0, cap = 0;

	fd = *rel ? sl_open_beneath(w->rootfd, rel, O_RDONLY | O_DIRECTORY, &e)
	          : openat(w->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return *rel ? walk_problem(w, rel, e.code, e.msg)
		            : sl_error_set(w->err, SL_EIO, "cannot open the root");
	if (fstat(fd, &st) < 0) {
		close(fd);
		return walk_problem(w, rel, SL_EIO, strerror(errno));
	}
	for (unsigned i = 0; i < w->depth; i++)
		if (w->stack_dev[i] == st.st_dev && w->stack_ino[i] == st.st_ino) {
			close(fd);
			return walk_problem(w, rel, SL_EINVALID, "directory symlink loop, not followed");
		}
	if (w->depth >= WALK_MAX_DEPTH) {
		close(fd);
		return walk_problem(w, rel, SL_ETOOLARGE, "directories nested too deep");
	}
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return walk_problem(w, rel, SL_EIO, strerror(errno));
	}
	w->stack_dev[w->depth] = st.st_dev;
	w->stack_ino[w->depth] = st.st_ino;
	w->depth++;
	/* Names are gathered first so the directory fd is not held across the
	 * recursion more than needed and types can be checked in one place. */
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue; /* hidden, ".", ".." */
		if (SL_GROW(names, cap, n + 1, 32) < 0) {
			r = sl_error_set(w->err, SL_ENOMEM, "out of memory");
			goto out;
		}
		/* keep the type in the first byte */
		names[n] = malloc(strlen(de->d_name) + 2);
		if (!names[n]) {
			r = sl_error_set(w->err, SL_ENOMEM, "out of memory");
			goto out;
		}
		names[n][0] = (char)de->d_type;
		strcpy(names[n] + 1, de->d_name);
		n++;
	}
	for (size_t i = 0; i < n && r == 0; i++)
		r = walk_entry(w, dirfd(dir), rel, names[i] + 1, (unsigned char)names[i][0]);
out:
	w->depth--;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(dir);
	return r;
}

int sl_manifest_set_add_dir(struct sl_manifest_set *s, const char *root, const char *display_prefix,
                            struct sl_error *err)
{
	struct walk w = {.s = s, .prefix = display_prefix, .err = err};
	int r;

	w.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.rootfd < 0)
		return sl_error_set(err, errno == ENOENT ? SL_ENOTFOUND : SL_EIO, "%s: %s", root,
		                    strerror(errno));
	r = walk_dir(&w, "");
	if (r < 0)
		goto out;
	if (w.n > 1)
		qsort(w.paths, w.n, sizeof(*w.paths), path_cmp);
	for (size_t i = 0; i < w.n && r == 0; i++) {
		struct sl_buf b;
		struct sl_error e = {0};
		_cleanup_free_ char *disp = display_of(&w, w.paths[i]);
		if (!disp) {
			r = sl_error_set(err, SL_ENOMEM, "out of memory");
			break;
		}
		r = sl_file_read_beneath(w.rootfd, w.paths[i], s->lim.max_file_size, &b, &e);
		if (r < 0) {
			const char *m = read_msg(&e, w.paths[i]);
			r = sl_manifest__set_problem(s, SL_MANIFEST_ERROR, r, disp, -1, 0, 0, "", "%s", m);
			if (r < 0)
				sl_error_set(err, r, "out of memory");
			continue;
		}
		r = sl_manifest_set_add_buffer(s, disp, b.data, b.len, err);
		sl_buf_free(&b);
	}
out:
	for (size_t i = 0; i < w.n; i++)
		free(w.paths[i]);
	free(w.paths);
	close(w.rootfd);
	return r < 0 ? r : 0;
}

int sl_manifest_load_dir(const char *root, const struct sl_manifest_limits *limits,
                         struct sl_manifest_set **ret, struct sl_error *err)
{
	struct sl_manifest_set *s = sl_manifest_set_new(limits);
	int r;

	if (!s)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	r = sl_manifest_set_add_dir(s, root, NULL, err);
	if (r == 0)
		r = sl_manifest_set_validate(s);
	if (r < 0) {
		if (r == SL_ENOMEM)
			sl_error_set(err, r, "out of memory");
		sl_manifest_set_free(s);
		return r;
	}
	*ret = s;
	return 0;
}
