/* JSON as the API server's Go code has it: a parse that keeps integer
 * literals beyond 2^53, and Go's encoding/json.Marshal output (Go 1.26
 * encode.go: map keys sorted, HTML-safe string escapes, floatEncoder). */
#include "json-ints.h"
#include "sluice/manifest-json.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define TWO53 9007199254740992.0

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* ---- integer literals ----------------------------------------------------- */

/* The digits of s[0..n) after its sign and leading zeros, when s is '-'?
 * digits; NULL otherwise. */
static const char *int_digits(const char *s, size_t n, size_t *ret_n)
{
	size_t i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i == n)
		return NULL;
	for (size_t j = i; j < n; j++)
		if (!is_digit(s[j]))
			return NULL;
	while (i + 1 < n && s[i] == '0')
		i++;
	*ret_n = n - i;
	return s + i;
}

int sl_manifest__json_keep_int(cJSON *num, const char *s, size_t n)
{
	size_t nd;
	const char *d = int_digits(s, n, &nd);
	bool neg = n > 0 && s[0] == '-';
	char *lit;

	if (!d || nd < 16 || (nd == 16 && memcmp(d, "9007199254740992", 16) <= 0))
		return 0;
	lit = cJSON_malloc(nd + 2);
	if (!lit)
		return SL_ENOMEM;
	lit[0] = '-';
	memcpy(lit + neg, d, nd);
	lit[neg + nd] = '\0';
	cJSON_free(num->valuestring);
	num->valuestring = lit;
	return 0;
}

/* ---- parse ---------------------------------------------------------------- */

/* Walks the text cJSON read alongside the tree: the number tokens of the
 * text, strings skipped, come in the order of the tree's number nodes. The
 * text is only scanned as far as the last number that needs its literal. */
struct walk {
	const char *p, *end; /* text not yet scanned; end: where cJSON stopped */
	size_t tokens;       /* number tokens scanned */
	size_t numbers;      /* number nodes visited */
};

/* Length of the number at s as cJSON reads it: it copies at most 63 bytes
 * of [0-9+-eE.] and lets strtod take what it can (sign, digits, fraction,
 * an exponent only with a digit). *is_int: no fraction and no exponent. */
static size_t number_len(const char *s, size_t avail, bool *is_int)
{
	size_t n = 0, i = 0, j;

	while (n < SL_MIN(avail, (size_t)63) &&
	       (is_digit(s[n]) || s[n] == '+' || s[n] == '-' || s[n] == 'e' || s[n] == 'E' || s[n] == '.'))
		n++;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	while (i < n && is_digit(s[i]))
		i++;
	*is_int = true;
	if (i < n && s[i] == '.') {
		*is_int = false;
		i++;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		j = i + 1;
		if (j < n && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j < n && is_digit(s[j])) {
			*is_int = false;
			for (i = j; i < n && is_digit(s[i]);)
				i++;
		}
	}
	return i;
}

/* The next number token of the text, as *ret and *ret_n; false at the end. */
static bool next_number(struct walk *w, const char **ret, size_t *ret_n, bool *is_int)
{
	const char *p = w->p;

	while (p < w->end) {
		if (*p == '"') {
			for (p++; p < w->end && *p != '"'; p++)
				if (*p == '\\' && p + 1 < w->end)
					p++;
			if (p < w->end)
				p++;
		} else if (*p == '-' || is_digit(*p)) {
			size_t n = number_len(p, (size_t)(w->end - p), is_int);
			*ret = p;
			*ret_n = n;
			w->p = p + SL_MAX(n, (size_t)1);
			w->tokens++;
			return true;
		} else {
			p++;
		}
	}
	w->p = p;
	return false;
}

/* A number that may have been written as an integer cJSON's double does not
 * hold as Go does: beyond 2^53, or -0 (int64 0 in Go). */
static bool needs_text(const cJSON *v)
{
	return fabs(v->valuedouble) >= TWO53 || (v->valuedouble == 0 && signbit(v->valuedouble));
}

static int number_text(struct walk *w, cJSON *v)
{
	const char *s = NULL;
	size_t n = 0;
	bool is_int = false, found = false;

	while (w->tokens <= w->numbers && (found = next_number(w, &s, &n, &is_int)))
		;
	/* cJSON read every number token of this text into a number node */
	assert(found && w->tokens == w->numbers + 1);
	if (!found || !is_int)
		return 0;
	if (v->valuedouble == 0) {
		v->valuedouble = 0; /* "-0": int64 0 in Go */
		return 0;
	}
	return sl_manifest__json_keep_int(v, s, n);
}

static int walk_tree(struct walk *w, cJSON *v)
{
	int r = 0;

	for (; v && r == 0; v = v->next) {
		if (cJSON_IsNumber(v)) {
			if (needs_text(v))
				r = number_text(w, v);
			w->numbers++;
		} else if (v->child) {
			r = walk_tree(w, v->child);
		}
	}
	return r;
}

int sl_manifest_json_parse(const char *text, size_t len, cJSON **ret, struct sl_error *err)
{
	const char *end = NULL;
	cJSON *root;
	struct walk w;

	if (!text || len == 0)
		return sl_error_set(err, SL_EINVALID, "invalid JSON: empty input");
	root = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (!root) {
		if (end && end >= text && end <= text + len)
			return sl_error_set(err, SL_EINVALID, "invalid JSON at byte %zu",
			                    (size_t)(end - text));
		return sl_error_set(err, SL_EINVALID, "invalid JSON");
	}
	w = (struct walk){.p = text, .end = end && end <= text + len ? end : text + len};
	if (walk_tree(&w, root) < 0) {
		cJSON_Delete(root);
		return sl_error_set(err, SL_ENOMEM, "out of memory keeping JSON integers");
	}
	*ret = root;
	return 0;
}

/* ---- Go's json.Marshal ---------------------------------------------------- */

/* A member of an object and its place in the object. */
struct member {
	const char *key;
	const cJSON *v;
	size_t pos;
};

struct gw {
	struct sl_buf out;
	struct member *members; /* a stack: the members of the objects being written */
	size_t n, cap;
};

static int put(struct gw *w, const char *s, size_t n)
{
	return sl_buf_append(&w->out, s, n);
}

static int put_str(struct gw *w, const char *s)
{
	return sl_buf_append(&w->out, s, strlen(s));
}

/* Length of the UTF-8 sequence at s (n bytes left) as Go's
 * utf8.DecodeRune takes it; 0 for an invalid byte (RuneError, size 1). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (b >= 0xc2 && b <= 0xdf)
		len = 2;
	else if (b >= 0xe0 && b <= 0xef)
		len = 3, lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
	else if (b >= 0xf0 && b <= 0xf4)
		len = 4, lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	*cp = b & (0xff >> (len + 1));
	*cp = (*cp << 6) | (s[1] & 0x3f);
	for (size_t i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	return len;
}

static int put_string(struct gw *w, const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t n = strlen((const char *)s), i = 0, start = 0, len;
	char esc[8];
	const char *rep;
	uint32_t cp;
	int r = put_str(w, "\"");

	while (r == 0 && i < n) {
		unsigned char b = s[i];
		rep = NULL;
		len = 1;
		if (b < 0x80) {
			if (b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&') {
				i++;
				continue;
			}
			switch (b) {
			case '"':
				rep = "\\\"";
				break;
			case '\\':
				rep = "\\\\";
				break;
			case '\b':
				rep = "\\b";
				break;
			case '\f':
				rep = "\\f";
				break;
			case '\n':
				rep = "\\n";
				break;
			case '\r':
				rep = "\\r";
				break;
			case '\t':
				rep = "\\t";
				break;
			default:
				snprintf(esc, sizeof(esc), "\\u00%c%c", hex[b >> 4], hex[b & 0xf]);
				rep = esc;
			}
		} else if (!(len = utf8_seq(s + i, n - i, &cp))) {
			/* Go's decoder turns an invalid byte into U+FFFD */
			rep = "\xef\xbf\xbd";
			len = 1;
		} else if (cp == 0x2028 || cp == 0x2029) {
			rep = cp == 0x2028 ? "\\u2028" : "\\u2029";
		} else {
			i += len;
			continue;
		}
		r = put(w, (const char *)s + start, i - start);
		if (r == 0)
			r = put_str(w, rep);
		i += len;
		start = i;
	}
	if (r == 0)
		r = put(w, (const char *)s + start, n - start);
	return r < 0 ? r : put_str(w, "\"");
}

/* The shortest digits that read back as d (finite, > 0), as Go's strconv
 * finds them, into dig (no trailing zeros); the decimal exponent of the
 * first digit in *ret_exp. Returns the number of digits. */
static size_t shortest_digits(double d, char dig[static 24], int *ret_exp)
{
	char e[40], *p;
	size_t n = 0;
	int prec;

	for (prec = 0; prec < 16; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec, d);
		if (strtod(e, NULL) == d)
			break;
	}
	if (prec == 16)
		snprintf(e, sizeof(e), "%.*e", prec, d);
	for (p = e; *p != 'e'; p++)
		if (is_digit(*p))
			dig[n++] = *p;
	while (n > 1 && dig[n - 1] == '0')
		n--;
	dig[n] = '\0';
	*ret_exp = atoi(p + 1);
	return n;
}

/* strconv.FormatFloat(d, 'f' or 'e', -1, 64) as floatEncoder picks it. */
static int put_float(struct gw *w, double d)
{
	char dig[24], out[64], *o = out;
	int exp, i;
	size_t n;

	if (d == 0)
		return put_str(w, signbit(d) ? "-0" : "0");
	if (d < 0)
		*o++ = '-';
	n = shortest_digits(fabs(d), dig, &exp);
	if (fabs(d) < 1e-6 || fabs(d) >= 1e21) {
		*o++ = dig[0];
		if (n > 1) {
			*o++ = '.';
			memcpy(o, dig + 1, n - 1);
			o += n - 1;
		}
		/* Go writes e+21, e-07; encode.go trims the latter to e-7 */
		o += snprintf(o, sizeof(out) - (size_t)(o - out), "e%c%0*d", exp < 0 ? '-' : '+',
		              exp < 0 ? 1 : 2, abs(exp));
	} else if (exp >= 0) {
		/* exp < 21: the digits, zeros up to the point, the rest */
		for (i = 0; i <= exp; i++)
			*o++ = (size_t)i < n ? dig[i] : '0';
		if ((size_t)exp + 1 < n) {
			*o++ = '.';
			memcpy(o, dig + exp + 1, n - (size_t)exp - 1);
			o += n - (size_t)exp - 1;
		}
	} else {
		/* exp >= -6 */
		*o++ = '0';
		*o++ = '.';
		for (i = -1; i > exp; i--)
			*o++ = '0';
		memcpy(o, dig, n);
		o += n;
	}
	return put(w, out, (size_t)(o - out));
}

bool sl_manifest__json_int_text(const cJSON *v, char out[static SL_MANIFEST__INT_TEXT_MAX])
{
	const char *s = cJSON_IsNumber(v) ? v->valuestring : NULL, *d;
	size_t nd;
	bool neg;

	if (!s || !(d = int_digits(s, strlen(s), &nd)) || nd + 2 > SL_MANIFEST__INT_TEXT_MAX)
		return false;
	/* a number changed after parsing (cJSON_SetNumberValue) keeps a stale
	 * valuestring: the double decides */
	if (strtod(s, NULL) != v->valuedouble)
		return false;
	neg = s[0] == '-' && d[0] != '0';
	out[0] = '-';
	memcpy(out + neg, d, nd);
	out[neg + nd] = '\0';
	return true;
}

/* The kept integer text of v when it fits int64 (see above). */
static bool int64_text(const cJSON *v, char out[static SL_MANIFEST__INT_TEXT_MAX])
{
	const char *d;
	size_t nd;

	if (!sl_manifest__json_int_text(v, out))
		return false;
	d = out + (out[0] == '-');
	nd = strlen(d);
	return nd < 19 ||
	       (nd == 19 && strcmp(d, out[0] == '-' ? "9223372036854775808" : "9223372036854775807") <= 0);
}

static int put_number(struct gw *w, const cJSON *v)
{
	double d = v->valuedouble;
	char t[SL_MANIFEST__INT_TEXT_MAX];

	if (v->valuestring && int64_text(v, t))
		return put_str(w, t);
	if (!isfinite(d))
		return put_str(w, "null");
	/* Below 2^53 an integral double has the same digits as an int64. */
	if (d == trunc(d) && fabs(d) < TWO53 && d != 0) {
		snprintf(t, sizeof(t), "%" PRId64, (int64_t)d);
		return put_str(w, t);
	}
	return put_float(w, d);
}

/* The bytes of a string as Go holds it after decoding: each invalid UTF-8
 * byte is U+FFFD. */
struct go_bytes {
	const unsigned char *s;
	unsigned char unit[4];
	size_t ulen, upos;
};

static int go_bytes_next(struct go_bytes *g)
{
	uint32_t cp;
	size_t len;

	if (g->upos < g->ulen)
		return g->unit[g->upos++];
	if (!*g->s)
		return -1;
	if (*g->s < 0x80)
		return *g->s++;
	len = utf8_seq(g->s, strnlen((const char *)g->s, 4), &cp);
	if (len) {
		memcpy(g->unit, g->s, len);
		g->ulen = len;
		g->s += len;
	} else {
		memcpy(g->unit, "\xef\xbf\xbd", 3);
		g->ulen = 3;
		g->s++;
	}
	g->upos = 1;
	return g->unit[0];
}

/* Compares two keys as Go's sort of map keys does: byte-wise, as decoded. */
static int key_cmp(const char *a, const char *b)
{
	struct go_bytes x, y;
	size_t i = 0;
	int cx, cy;

	while (a[i] == b[i] && a[i] && (unsigned char)a[i] < 0x80)
		i++;
	if ((unsigned char)a[i] < 0x80 && (unsigned char)b[i] < 0x80)
		return (unsigned char)a[i] - (unsigned char)b[i];
	/* a[0..i) is ASCII, so i starts a character on both sides */
	x = (struct go_bytes){.s = (const unsigned char *)a + i};
	y = (struct go_bytes){.s = (const unsigned char *)b + i};
	do {
		cx = go_bytes_next(&x);
		cy = go_bytes_next(&y);
	} while (cx == cy && cx >= 0);
	return cx - cy;
}

static int cmp_member(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int c = key_cmp(x->key, y->key);

	/* equal keys in document order: Go keeps the last one */
	return c ? c : x->pos < y->pos ? -1 : 1;
}

static int put_value(struct gw *w, const cJSON *v);

static int put_object(struct gw *w, const cJSON *v)
{
	size_t base = w->n, n = 0, i;
	const cJSON *c;
	bool first = true;
	int r;

	for (c = v->child; c; c = c->next, n++) {
		r = SL_GROW(w->members, w->cap, base + n + 1, 64);
		if (r < 0)
			return r;
		w->members[base + n] = (struct member){c->string ? c->string : "", c, n};
	}
	w->n = base + n;
	if (n > 1)
		qsort(w->members + base, n, sizeof(*w->members), cmp_member);
	r = put_str(w, "{");
	for (i = 0; i < n && r == 0; i++) {
		/* w->members moves when a member's objects grow it: index, not pointer */
		struct member m = w->members[base + i];
		if (i + 1 < n && key_cmp(m.key, w->members[base + i + 1].key) == 0)
			continue;
		if (!first)
			r = put_str(w, ",");
		first = false;
		if (r == 0)
			r = put_string(w, m.key);
		if (r == 0)
			r = put_str(w, ":");
		if (r == 0)
			r = put_value(w, m.v);
	}
	w->n = base;
	return r < 0 ? r : put_str(w, "}");
}

static int put_value(struct gw *w, const cJSON *v)
{
	int r;

	switch (v->type & 0xff) {
	case cJSON_False:
		return put_str(w, "false");
	case cJSON_True:
		return put_str(w, "true");
	case cJSON_Number:
		return put_number(w, v);
	case cJSON_String:
		return put_string(w, v->valuestring);
	case cJSON_Raw:
		return put_str(w, v->valuestring ? v->valuestring : "null");
	case cJSON_Array:
		r = put_str(w, "[");
		for (const cJSON *c = v->child; c && r == 0; c = c->next) {
			if (c != v->child)
				r = put_str(w, ",");
			if (r == 0)
				r = put_value(w, c);
		}
		return r < 0 ? r : put_str(w, "]");
	case cJSON_Object:
		return put_object(w, v);
	default:
		return put_str(w, "null");
	}
}

char *sl_manifest_json_go(const cJSON *v)
{
	struct gw w = {.members = NULL};
	char *s = NULL;

	/* bounded by the tree, which is in memory already */
	sl_buf_init(&w.out, SIZE_MAX / 4);
	if ((v ? put_value(&w, v) : put_str(&w, "null")) == 0)
		s = sl_buf_steal(&w.out);
	sl_buf_free(&w.out);
	free(w.members);
	return s;
}
