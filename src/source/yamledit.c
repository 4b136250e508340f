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
	bool completed_seen;
	size_t val_start, val_end;
	char value[16];
};

struct frame {
	bool is_map, expect_key;
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

int sl_source_yaml_complete(const char *text, size_t len, unsigned doc_index, const char *name,
                            struct sl_buf *out, struct sl_error *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct frame st[MAX_DEPTH];
	int depth = 0;
	struct docinfo *docs = NULL, *d = NULL, *pick = NULL;
	size_t ndocs = 0, cap = 0;
	struct pos pos = {text, len, 0, 0};
	bool done = false;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			r = sl_error_set(err, SL_EINVALID, "YAML error at line %zu: %s",
			                 parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
			goto out;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (ndocs >= MAX_DOCS) {
				r = sl_error_set(err, SL_ETOOLARGE, "too many documents");
				break;
			}
			if (SL_GROW(docs, cap, ndocs + 1, 8) < 0) {
				r = sl_error_set(err, SL_ENOMEM, "out of memory");
				break;
			}
			d = &docs[ndocs++];
			memset(d, 0, sizeof(*d));
			depth = 0;
			break;
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT: {
			bool map = ev.type == YAML_MAPPING_START_EVENT;
			if (depth >= MAX_DEPTH) {
				r = sl_error_set(err, SL_ETOOLARGE, "nesting too deep");
				break;
			}
			if (d && depth == 1 && st[0].is_map && !strcmp(st[0].key, "spec")) {
				d->spec_seen = true;
				d->spec_map = map;
				d->spec_flow = map && ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
				d->spec_start = to_byte(&pos, ev.start_mark.index);
			}
			st[depth].is_map = map;
			st[depth].expect_key = true;
			st[depth].key[0] = '\0';
			depth++;
			break;
		}
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (depth > 0)
				depth--;
			if (depth > 0 && st[depth - 1].is_map)
				st[depth - 1].expect_key = true;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
			if (!d || depth == 0)
				break;
			if (st[depth - 1].is_map && st[depth - 1].expect_key) {
				if (ev.type == YAML_SCALAR_EVENT)
					keycpy(st[depth - 1].key, sizeof(st[0].key), &ev);
				else
					st[depth - 1].key[0] = '\0';
				st[depth - 1].expect_key = false;
				if (depth == 2 && !strcmp(st[0].key, "spec") && !d->spec_has_keys) {
					d->spec_has_keys = true;
					d->first_key = to_byte(&pos, ev.start_mark.index);
					d->first_key_col = ev.start_mark.column;
				}
				break;
			}
			if (st[depth - 1].is_map)
				st[depth - 1].expect_key = true;
			if (ev.type != YAML_SCALAR_EVENT)
				break;
			if (depth == 1 && !strcmp(st[0].key, "kind"))
				keycpy(d->kind, sizeof(d->kind), &ev);
			else if (depth == 1 && !strcmp(st[0].key, "spec"))
				d->spec_seen = true; /* a scalar spec: not editable */
			else if (depth == 2 && !strcmp(st[0].key, "metadata") && !strcmp(st[1].key, "name"))
				keycpy(d->name, sizeof(d->name), &ev);
			else if (depth == 2 && !strcmp(st[0].key, "spec") &&
			         !strcmp(st[1].key, "completed")) {
				d->completed_seen = true;
				d->val_start = to_byte(&pos, ev.start_mark.index);
				d->val_end = to_byte(&pos, ev.end_mark.index);
				keycpy(d->value, sizeof(d->value), &ev);
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (r < 0)
			goto out_noev;
	}

	for (size_t i = 0; i < ndocs; i++) {
		if (strcmp(docs[i].kind, "BackfillRequest") || strcmp(docs[i].name, name))
			continue;
		if (i == doc_index) {
			pick = &docs[i];
			break;
		}
		if (!pick)
			pick = &docs[i]; /* the document moved within the file */
	}
	if (!pick) {
		r = sl_error_set(err, SL_ENOTFOUND, "no BackfillRequest %s in the file", name);
		goto out_noev;
	}
	if (pick->completed_seen) {
		if (!strcmp(pick->value, "true") || !strcmp(pick->value, "True") ||
		    !strcmp(pick->value, "TRUE")) {
			r = SL_EEXIST;
			goto out_noev;
		}
		sl_buf_init(out, len + 16);
		if (sl_buf_append(out, text, pick->val_start) < 0 || sl_buf_puts(out, "true") < 0 ||
		    sl_buf_append(out, text + pick->val_end, len - pick->val_end) < 0) {
			sl_buf_free(out);
			r = sl_error_set(err, SL_ENOMEM, "out of memory");
		}
		goto out_noev;
	}
	if (!pick->spec_map) {
		r = sl_error_set(err, SL_EINVALID,
		                 "BackfillRequest %s has no spec mapping to add completed to", name);
		goto out_noev;
	}
	sl_buf_init(out, len + 64);
	if (pick->spec_flow) {
		size_t at = pick->spec_start + 1;
		r = sl_buf_append(out, text, at);
		if (r >= 0)
			r = sl_buf_puts(out, pick->spec_has_keys ? "completed: true, " : "completed: true");
		if (r >= 0)
			r = sl_buf_append(out, text + at, len - at);
	} else {
		/* a new first line of spec, indented like its siblings */
		size_t at =
		    pick->first_key >= pick->first_key_col ? pick->first_key - pick->first_key_col : 0;
		r = sl_buf_append(out, text, at);
		for (size_t i = 0; r >= 0 && i < pick->first_key_col; i++)
			r = sl_buf_puts(out, " ");
		if (r >= 0)
			r = sl_buf_puts(out, "completed: true\n");
		if (r >= 0)
			r = sl_buf_append(out, text + at, len - at);
	}
	if (r < 0) {
		sl_buf_free(out);
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
	}
	goto out_noev;
out:
out_noev:
	free(docs);
	yaml_parser_delete(&parser);
	return r;
}
