/* Log lines on stderr, as text or as one JSON object per line. */
#include "sluice/base.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum sl_log_level min_level = SL_LOG_INFO;
static enum sl_log_format log_format = SL_LOG_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sl_log_setup(enum sl_log_level min, enum sl_log_format fmt)
{
	min_level = min;
	log_format = fmt;
}

int sl_log_level_parse(const char *s, enum sl_log_level *ret)
{
	for (size_t i = 0; i < SL_ARRAY_SIZE(level_names); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*ret = (enum sl_log_level)i;
			return 0;
		}
	if (strcmp(s, "warning") == 0) {
		*ret = SL_LOG_WARN;
		return 0;
	}
	return SL_EINVALID;
}

bool sl_log_enabled(enum sl_log_level level)
{
	return level >= min_level;
}

static void json_str(struct sl_buf *b, const char *s)
{
	sl_buf_puts(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sl_buf_printf(b, "\\%c", c);
		else if (c == '\n')
			sl_buf_puts(b, "\\n");
		else if (c == '\t')
			sl_buf_puts(b, "\\t");
		else if (c < 0x20)
			sl_buf_printf(b, "\\u%04x", c);
		else
			sl_buf_append(b, s, 1);
	}
	sl_buf_puts(b, "\"");
}

static void emit(enum sl_log_level level, const char *kind, const char *ns, const char *name, const char *fmt,
                 va_list ap)
{
	char msg[4096], ts[40];
	bool ok;
	struct timespec now;
	struct tm tm;
	struct sl_buf b;

	if (!sl_log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	ok = sl_snprintf_ok(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	                    now.tv_nsec / 1000000);
	assert(ok); /* the fields are bounded by gmtime_r and tv_nsec */
	(void)ok;
	sl_buf_init(&b, 16384);
	if (log_format == SL_LOG_JSON) {
		sl_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",", ts, level_names[level]);
		if (kind) {
			sl_buf_puts(&b, "\"kind\":");
			json_str(&b, kind);
			sl_buf_puts(&b, ",");
		}
		if (ns) {
			sl_buf_puts(&b, "\"namespace\":");
			json_str(&b, ns);
			sl_buf_puts(&b, ",");
		}
		if (name) {
			sl_buf_puts(&b, "\"name\":");
			json_str(&b, name);
			sl_buf_puts(&b, ",");
		}
		sl_buf_puts(&b, "\"msg\":");
		json_str(&b, msg);
		sl_buf_puts(&b, "}\n");
	} else {
		sl_buf_printf(&b, "%s %-5s ", ts, level_names[level]);
		if (kind)
			sl_buf_printf(&b, "%s %s%s%s: ", kind, ns ? ns : "", ns ? "/" : "", name ? name : "");
		sl_buf_printf(&b, "%s\n", msg);
	}
	if (b.data)
		fwrite(b.data, 1, b.len, stderr);
	sl_buf_free(&b);
}

void sl_log(enum sl_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(level, NULL, NULL, NULL, fmt, ap);
	va_end(ap);
}

void sl_log_obj(enum sl_log_level level, const char *kind, const char *ns, const char *name, const char *fmt,
                ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(level, kind ? kind : "?", ns, name, fmt, ap);
	va_end(ap);
}
