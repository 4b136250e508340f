/* Write-back's edit: set spec.completed of one BackfillRequest document to
 * true, changing only those bytes. libyaml's event marks give the exact
 * position of the scalar, so comments, quoting and layout stay as they are. */
#include "source-internal.h"

#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64
#define MAX_DOCS  100000

struct docinfo {
	char kind[64];
	char name[254];
	bool spec_seen, spec_map, spec_flow, spec_has_keys;
	size_t spec_start;    /* byte of the spec mapping's start ('{' for flow) */
	size_t first_key;     /* byte of spec's first key */
	size_t first_key_col; /* its column */
	bool completed_key;  /* spec has a key "completed", whatever its value */
	bool completed_seen; /* ... with a scalar value */
	bool merge;          /* the document or its spec has a merge key "<<" */
	bool complex_key;    /* spec has a collection as a key */
	bool val_block; /* a block scalar ("|" or ">") */
	size_t val_start, val_end;
	char value[16];
};

struct frame {
	bool is_map, expect_key;
	bool as_key; /* this collection is a key of its parent mapping ("? [a]") */
	char key[64];
};

/* libyaml marks count characters, not bytes: walk the UTF-8 text. */
struct pos {
	const char *text;
	size_t len, ci, bi; /* last converted character and byte index */
};

static size_t to_byte(struct pos *p, size_t ci)
{
	if (ci < p->ci) {
		p->ci = 0;
		p->bi = 0;
	}
	while (p->ci < ci && p->bi < p->len) {
		p->bi++;
		while (p->bi < p->len && ((unsigned char)p->text[p->bi] & 0xC0) == 0x80)
			p->bi++;
		p->ci++;
	}
	return p->bi;
}

static void keycpy(char *dst, size_t n, const yaml_event_t *ev)
{
	size_t l = SL_MIN(ev->data.scalar.length, n - 1);
	memcpy(dst, ev->data.scalar.value, l);
	dst[l] = '\0';
}

/* What libyaml's events say about each document of the stream. */
struct scanner {
	struct pos pos;
	struct frame st[MAX_DEPTH];
	int depth;
	struct docinfo *docs, *d; /* d: the document being read */
	size_t ndocs, cap;
};

static int on_document(struct scanner *sc, struct sl_error *err)
{
	if (sc->ndocs >= MAX_DOCS)
		return sl_error_set(err, SL_ETOOLARGE, "too many documents");
	if (SL_GROW(sc->docs, sc->cap, sc->ndocs + 1, 8) < 0)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	sc->d = &sc->docs[sc->ndocs++];
	memset(sc->d, 0, sizeof(*sc->d));
	sc->depth = 0;
	return 0;
}

static int on_collection_start(struct scanner *sc, const yaml_event_t *ev, struct sl_error *err)
{
	bool map = ev->type == YAML_MAPPING_START_EVENT;
	struct frame *f, *parent = sc->depth > 0 ? &sc->st[sc->depth - 1] : NULL;
	bool as_key = parent && parent->is_map && parent->expect_key;

	if (sc->depth >= MAX_DEPTH)
		return sl_error_set(err, SL_ETOOLARGE, "nesting too deep");
	if (as_key) {
		/* a key that is no name; its value follows the collection */
		parent->key[0] = '\0';
		if (sc->d && sc->depth == 2 && !strcmp(sc->st[0].key, "spec"))
			sc->d->complex_key = true;
	} else if (sc->d && sc->depth == 1 && sc->st[0].is_map && !strcmp(sc->st[0].key, "spec")) {
		struct docinfo *d = sc->d;
		d->spec_seen = true;
		d->spec_map = map;
		d->spec_flow = map && ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
		d->spec_start = to_byte(&sc->pos, ev->start_mark.index);
	}
	f = &sc->st[sc->depth++];
	f->is_map = map;
	f->expect_key = true;
	f->as_key = as_key;
	f->key[0] = '\0';
	return 0;
}

static void on_collection_end(struct scanner *sc)
{
	bool was_key;

	if (sc->depth == 0)
		return;
	was_key = sc->st[--sc->depth].as_key;
	/* after a key its value, after a value the next key */
	if (sc->depth > 0 && sc->st[sc->depth - 1].is_map)
		sc->st[sc->depth - 1].expect_key = !was_key;
}

/* A scalar or alias: a key of a mapping, or a value the edit needs (kind,
 * metadata.name, spec.completed). */
static void on_scalar(struct scanner *sc, const yaml_event_t *ev)
{
	struct docinfo *d = sc->d;
	struct frame *top, *st = sc->st;
	int depth = sc->depth;

	if (!d || depth == 0)
		return;
	top = &st[depth - 1];
	if (top->is_map && top->expect_key) {
		if (ev->type == YAML_SCALAR_EVENT)
			keycpy(top->key, sizeof(top->key), ev);
		else
			top->key[0] = '\0';
		top->expect_key = false;
		if (depth == 2 && !strcmp(st[0].key, "spec") && !d->spec_has_keys) {
			d->spec_has_keys = true;
			d->first_key = to_byte(&sc->pos, ev->start_mark.index);
			d->first_key_col = ev->start_mark.column;
		}
		if (depth == 2 && !strcmp(st[0].key, "spec") && !strcmp(top->key, "completed"))
			d->completed_key = true;
		/* a merge key can override what the edit writes */
		if ((depth == 1 || (depth == 2 && !strcmp(st[0].key, "spec"))) && !strcmp(top->key, "<<"))
			d->merge = true;
		return;
	}
	if (top->is_map)
		top->expect_key = true;
	if (ev->type != YAML_SCALAR_EVENT)
		return;
	if (depth == 1 && !strcmp(st[0].key, "kind")) {
		keycpy(d->kind, sizeof(d->kind), ev);
	} else if (depth == 1 && !strcmp(st[0].key, "spec")) {
		d->spec_seen = true; /* a scalar spec: not editable */
	} else if (depth == 2 && !strcmp(st[0].key, "metadata") && !strcmp(st[1].key, "name")) {
		keycpy(d->name, sizeof(d->name), ev);
	} else if (depth == 2 && !strcmp(st[0].key, "spec") && !strcmp(st[1].key, "completed")) {
		d->completed_seen = true;
		d->val_start = to_byte(&sc->pos, ev->start_mark.index);
		d->val_end = to_byte(&sc->pos, ev->end_mark.index);
		d->val_block = ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
		               ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
		keycpy(d->value, sizeof(d->value), ev);
	}
}

static int on_event(struct scanner *sc, const yaml_event_t *ev, struct sl_error *err)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		return on_document(sc, err);
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT:
		return on_collection_start(sc, ev, err);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		on_collection_end(sc);
		return 0;
	case YAML_SCALAR_EVENT:
	case YAML_ALIAS_EVENT:
		on_scalar(sc, ev);
		return 0;
	default:
		return 0;
	}
}

/* Reads the whole stream into sc->docs (the caller frees it). */
static int scan(const char *text, size_t len, struct scanner *sc, struct sl_error *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && r >= 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			r = sl_error_set(err, SL_EINVALID, "YAML error at line %zu: %s",
			                 parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		/* marks count characters; the edit maps them to UTF-8 bytes */
		if (ev.type == YAML_STREAM_START_EVENT && ev.data.stream_start.encoding != YAML_UTF8_ENCODING)
			r = sl_error_set(err, SL_EINVALID, "YAML not in UTF-8 is not editable");
		if (r >= 0)
			r = on_event(sc, &ev, err);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return r;
}

/* The BackfillRequest `name`: the one at doc_index, else the first one
 * elsewhere in the file (the document moved); NULL when none. */
static const struct docinfo *pick(const struct scanner *sc, unsigned doc_index, const char *name)
{
	const struct docinfo *found = NULL;

	for (size_t i = 0; i < sc->ndocs; i++) {
		const struct docinfo *d = &sc->docs[i];
		if (strcmp(d->kind, "BackfillRequest") || strcmp(d->name, name))
			continue;
		if (i == doc_index)
			return d;
		if (!found)
			found = d;
	}
	return found;
}

/* The text with the bytes of spec.completed's value replaced by "true". A
 * block scalar's end is where the next line's content starts (libyaml
 * consumes its trailing line breaks and the next indentation): the
 * replacement ends after its last content, so those stay. */
static int replace_value(const char *text, size_t len, const struct docinfo *d, struct sl_buf *out)
{
	size_t end = d->val_end;

	while (d->val_block && end > d->val_start + 1 &&
	       (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' ' || text[end - 1] == '\t'))
		end--;
	/* an empty value ("completed:" then nothing) has its place right
	 * after the colon: "true" needs a blank before it there */
	bool blank = d->val_start == end && d->val_start > 0 && text[d->val_start - 1] != ' ' &&
	             text[d->val_start - 1] != '\t';

	sl_buf_init(out, len + 16);
	if (sl_buf_append(out, text, d->val_start) < 0 || sl_buf_puts(out, blank ? " true" : "true") < 0 ||
	    sl_buf_append(out, text + end, len - end) < 0)
		return SL_ENOMEM;
	return 0;
}

/* The text with "completed: true" as the first key of spec: inside the
 * braces of a flow mapping, else as a new first line indented like its
 * siblings. */
static int insert_completed(const char *text, size_t len, const struct docinfo *d, struct sl_buf *out)
{
	size_t at;
	int r;

	sl_buf_init(out, len + 64);
	if (d->spec_flow) {
		at = d->spec_start + 1;
		r = sl_buf_append(out, text, at);
		if (r >= 0)
			r = sl_buf_puts(out, d->spec_has_keys ? "completed: true, " : "completed: true");
	} else {
		at = d->first_key - d->first_key_col;
		r = sl_buf_append(out, text, at);
		for (size_t i = 0; r >= 0 && i < d->first_key_col; i++)
			r = sl_buf_puts(out, " ");
		if (r >= 0)
			r = sl_buf_puts(out, "completed: true\n");
	}
	if (r >= 0)
		r = sl_buf_append(out, text + at, len - at);
	return r;
}

/* Only blanks before spec's first key on its line ("? key" and the like
 * would need another indentation). */
static bool first_key_starts_line(const char *text, const struct docinfo *d)
{
	if (d->first_key < d->first_key_col)
		return false;
	for (size_t i = d->first_key - d->first_key_col; i < d->first_key; i++)
		if (text[i] != ' ')
			return false;
	return true;
}

static bool is_true(const char *v)
{
	return !strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE");
}

int sl_source_yaml_complete(const char *text, size_t len, unsigned doc_index, const char *name,
                            struct sl_buf *out, struct sl_error *err)
{
	struct scanner sc = {.pos = {text, len, 0, 0}};
	const struct docinfo *d;
	int r;

	r = scan(text, len, &sc, err);
	if (r < 0)
		goto out;
	d = pick(&sc, doc_index, name);
	if (!d) {
		r = sl_error_set(err, SL_ENOTFOUND, "no BackfillRequest %s in the file", name);
		goto out;
	}
	if (d->merge) {
		r = sl_error_set(err, SL_EINVALID,
		                 "BackfillRequest %s: a merge key (<<) could override spec.completed, not editable",
		                 name);
		goto out;
	}
	if (d->completed_seen && is_true(d->value)) {
		r = SL_EEXIST;
		goto out;
	}
	if (!d->completed_seen && !d->spec_map) {
		r = sl_error_set(err, SL_EINVALID,
		                 "BackfillRequest %s has no spec mapping to add completed to", name);
		goto out;
	}
	if (!d->completed_seen && d->complex_key) {
		r = sl_error_set(err, SL_EINVALID,
		                 "BackfillRequest %s: spec has a collection as a key, not editable", name);
		goto out;
	}
	if (d->completed_key && !d->completed_seen) {
		r = sl_error_set(err, SL_EINVALID,
		                 "BackfillRequest %s: spec.completed is an alias or a collection, not editable",
		                 name);
		goto out;
	}
	if (!d->completed_seen && !d->spec_flow && d->spec_has_keys && !first_key_starts_line(text, d)) {
		r = sl_error_set(err, SL_EINVALID,
		                 "BackfillRequest %s: the first key of spec does not start its line, not editable",
		                 name);
		goto out;
	}
	r = d->completed_seen ? replace_value(text, len, d, out) : insert_completed(text, len, d, out);
	if (r < 0) {
		sl_buf_free(out);
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
	}
out:
	free(sc.docs);
	return r;
}
