/* cJSON -> YAML block style, for `sluice plan`. Output reads back (with any
 * YAML 1.1 or 1.2 reader, kubectl's included) as the same JSON value. */
#include "sluice/stream.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool is_plain_word(const char *s, const char *const *words)
{
	for (size_t i = 0; words[i]; i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

/* True when s must be double-quoted: a reader would take it as null, a
 * boolean (YAML 1.1 included: yes/no/on/off/y/n), a number or a timestamp,
 * or it holds characters with a meaning in YAML. Over-quoting is harmless,
 * so anything starting like a number is quoted. */
static bool needs_quotes(const char *s)
{
	static const char *const words[] = {
	    "null", "Null", "NULL", "~",    "true", "True",  "TRUE",  "false", "False", "FALSE", "yes", "Yes",
	    "YES",  "no",   "No",   "NO",   "on",   "On",    "ON",    "off",   "Off",   "OFF",   "y",   "Y",
	    "n",    "N",    ".inf", ".Inf", ".INF", "-.inf", "+.inf", ".nan",  ".NaN",  ".NAN",  "<<",  NULL,
	};
	size_t n = strlen(s);

	if (n == 0 || is_plain_word(s, words))
		return true;
	if (strchr("0123456789+-.", s[0]) &&
	    !(s[0] == '-' && n > 1 && s[1] != ' ' && !strchr("0123456789.", s[1])))
		return true;
	if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) || s[n - 1] == ' ' || s[n - 1] == ':')
		return true;
	if (strstr(s, ": ") || strstr(s, " #"))
		return true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
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

/* Writes the members or items of a non-empty container, one per line at
 * indent; the first line's indentation is left out when inline_first (the
 * caller already wrote "- "). */
static int emit_block(struct sl_buf *b, const cJSON *v, int indent, bool inline_first, unsigned depth)
{
	const cJSON *c;
	bool first = true;
	int r = 0;

	if (depth > 256)
		return SL_ETOOLARGE;
	for (c = v->child; c && r >= 0; c = c->next, first = false) {
		if (!(first && inline_first))
			r = pad(b, indent);
		if (r < 0)
			break;
		if (cJSON_IsObject(v)) {
			if ((r = put_string(b, c->string ? c->string : "")) < 0)
				break;
			if (is_block(c)) {
				r = sl_buf_puts(b, ":\n");
				if (r >= 0)
					r = emit_block(b, c, indent + 2, false, depth + 1);
			} else {
				r = sl_buf_puts(b, ": ");
				if (r >= 0)
					r = put_scalar(b, c);
				if (r >= 0)
					r = sl_buf_puts(b, "\n");
			}
		} else {
			r = sl_buf_puts(b, "- ");
			if (r < 0)
				break;
			if (is_block(c)) {
				r = emit_block(b, c, indent + 2, true, depth + 1);
			} else {
				r = put_scalar(b, c);
				if (r >= 0)
					r = sl_buf_puts(b, "\n");
			}
		}
	}
	return r < 0 ? r : 0;
}

int sl_stream_yaml_write(const cJSON *v, struct sl_buf *out)
{
	int r;

	if (is_block(v))
		return emit_block(out, v, 0, false, 0);
	r = put_scalar(out, v);
	return r < 0 ? r : sl_buf_puts(out, "\n");
}
