/* cJSON -> YAML block style: `sluice plan` prints Jobs with it and `sluice
 * diff` renders both sides of a diff. Output reads back (with any YAML 1.1 or
 * 1.2 reader, kubectl's and sl_manifest_parse included) as the same value. */
#include "json-ints.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libyaml refuses implicit keys longer than 1024 characters: longer keys
 * are written as explicit "? key" entries. */
#define IMPLICIT_KEY_MAX 1000
#define MAX_DEPTH        256

/* Scalars a reader resolves to something else than a string: null, YAML 1.1
 * booleans (y/n/yes/no/on/off included), .inf/.nan, the merge key "<<" and
 * the 1.1 value key "=". Compared ignoring case: over-quoting is harmless. */
static bool is_reserved_word(const char *s)
{
	static const char *const words[] = {
	    "null", "~", "true", "false", "yes",   "no",   "on", "off",
	    "y",    "n", ".inf", "-.inf", "+.inf", ".nan", "<<", "=",
	};
	for (size_t i = 0; i < SL_ARRAY_SIZE(words); i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	return false;
}

/* U+0085, U+2028 and U+2029 are line breaks to a YAML 1.1 reader, U+FEFF a
 * byte order mark: never plain, and escaped inside quotes. Returns the escape
 * for the sequence at p, or NULL. */
static const char *unicode_escape(const unsigned char *p)
{
	if (p[0] == 0xc2 && p[1] == 0x85)
		return "\\N";
	if (p[0] == 0xe2 && p[1] == 0x80 && p[2] == 0xa8)
		return "\\L";
	if (p[0] == 0xe2 && p[1] == 0x80 && p[2] == 0xa9)
		return "\\P";
	if (p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		return "\\uFEFF";
	return NULL;
}

/* True when s must be double-quoted: a reader would take it as another type
 * (anything starting like a number or a timestamp is quoted), or it holds
 * characters with a meaning in YAML, control characters or line breaks. */
static bool needs_quotes(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || is_reserved_word(s))
		return true;
	if (strchr("0123456789+-.", s[0]))
		return true;
	if (strchr("?:,[]{}#&*!|>'\"%@` ", s[0]) || s[n - 1] == ' ' || s[n - 1] == ':')
		return true;
	if (strstr(s, ": ") || strstr(s, " #"))
		return true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || unicode_escape(p))
			return true;
	return false;
}

static int put_string(struct sl_buf *b, const char *s)
{
	int r;

	if (!needs_quotes(s))
		return sl_buf_puts(b, s);
	r = sl_buf_puts(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; r >= 0 && *p; p++) {
		const char *u = unicode_escape(p);
		if (u) {
			r = sl_buf_puts(b, u);
			p += (p[0] == 0xc2) ? 1 : 2;
			continue;
		}
		switch (*p) {
		case '"':
			r = sl_buf_puts(b, "\\\"");
			break;
		case '\\':
			r = sl_buf_puts(b, "\\\\");
			break;
		case '\n':
			r = sl_buf_puts(b, "\\n");
			break;
		case '\t':
			r = sl_buf_puts(b, "\\t");
			break;
		case '\r':
			r = sl_buf_puts(b, "\\r");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				r = sl_buf_printf(b, "\\x%02x", *p);
			else
				r = sl_buf_append(b, p, 1);
		}
	}
	return r < 0 ? r : sl_buf_puts(b, "\"");
}

static int put_scalar(struct sl_buf *b, const cJSON *v)
{
	if (cJSON_IsString(v))
		return put_string(b, v->valuestring);
	if (cJSON_IsTrue(v))
		return sl_buf_puts(b, "true");
	if (cJSON_IsFalse(v))
		return sl_buf_puts(b, "false");
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		char lit[SL_MANIFEST__INT_TEXT_MAX];
		if (v->valuestring && sl_manifest__json_int_text(v, lit))
			return sl_buf_puts(b, lit); /* an integer beyond 2^53, exactly */
		if (!isfinite(d))
			return sl_buf_puts(b, "null");
		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			return sl_buf_printf(b, "%.0f", d);
		return sl_buf_printf(b, "%.17g", d);
	}
	if (cJSON_IsObject(v))
		return sl_buf_puts(b, "{}");
	if (cJSON_IsArray(v))
		return sl_buf_puts(b, "[]");
	return sl_buf_puts(b, "null");
}

static bool is_block(const cJSON *v)
{
	return (cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child;
}

static int pad(struct sl_buf *b, int n)
{
	for (int i = 0; i < n; i++)
		if (sl_buf_puts(b, " ") < 0)
			return SL_ETOOLARGE;
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* The value after a key or "- ": a scalar on the same line, a block on the
 * next lines at indent (or, for a sequence item, inline). */
static int emit_value(struct sl_buf *b, const cJSON *c, int indent, bool item, unsigned flags,
                      unsigned depth);

/* One mapping member at indent (the indentation already written). */
static int emit_member(struct sl_buf *b, const cJSON *c, int indent, unsigned flags, unsigned depth)
{
	const char *key = c->string ? c->string : "";
	size_t start = b->len;
	int r;

	if ((r = put_string(b, key)) < 0)
		return r;
	if (b->len - start > IMPLICIT_KEY_MAX) {
		/* explicit key: "? key" then ":" on its own line */
		b->len = start;
		b->data[start] = '\0';
		if ((r = sl_buf_puts(b, "? ")) < 0 || (r = put_string(b, key)) < 0 ||
		    (r = sl_buf_puts(b, "\n")) < 0 || (r = pad(b, indent)) < 0)
			return r;
	}
	if ((r = sl_buf_puts(b, ":")) < 0)
		return r;
	return emit_value(b, c, indent + 2, false, flags, depth + 1);
}

/* Writes the members or items of a non-empty container, one per line at
 * indent; the first line's indentation is left out when inline_first (the
 * caller already wrote "- "). */
static int emit_block(struct sl_buf *b, const cJSON *v, int indent, bool inline_first, unsigned flags,
                      unsigned depth)
{
	const cJSON **kids = NULL;
	size_t n = 0, i = 0;
	int r = 0;

	if (depth > MAX_DEPTH)
		return SL_ETOOLARGE;
	for (const cJSON *c = v->child; c; c = c->next)
		n++;
	kids = malloc(n * sizeof(*kids));
	if (!kids)
		return SL_ENOMEM;
	for (const cJSON *c = v->child; c; c = c->next)
		kids[i++] = c;
	if (cJSON_IsObject(v) && (flags & SL_MANIFEST_YAML_SORT_KEYS))
		qsort(kids, n, sizeof(*kids), cmp_key);
	for (i = 0; i < n && r >= 0; i++) {
		if (!(i == 0 && inline_first) && (r = pad(b, indent)) < 0)
			break;
		if (cJSON_IsObject(v)) {
			r = emit_member(b, kids[i], indent, flags, depth);
		} else {
			r = sl_buf_puts(b, "-");
			if (r >= 0)
				r = emit_value(b, kids[i], indent + 2, true, flags, depth + 1);
		}
	}
	free(kids);
	return r < 0 ? r : 0;
}

static int emit_value(struct sl_buf *b, const cJSON *c, int indent, bool item, unsigned flags, unsigned depth)
{
	int r;

	if (!is_block(c)) {
		if ((r = sl_buf_puts(b, " ")) < 0 || (r = put_scalar(b, c)) < 0)
			return r;
		return sl_buf_puts(b, "\n");
	}
	if ((r = sl_buf_puts(b, item ? " " : "\n")) < 0)
		return r;
	return emit_block(b, c, indent, item, flags, depth);
}

int sl_manifest_yaml_write(const cJSON *v, unsigned flags, struct sl_buf *out)
{
	int r;

	if (is_block(v))
		return emit_block(out, v, 0, false, flags, 0);
	r = put_scalar(out, v);
	return r < 0 ? r : sl_buf_puts(out, "\n");
}
