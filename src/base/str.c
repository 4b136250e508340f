/* Small string and allocation helpers. */
#include "sluice/base.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void sl_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

char *sl_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *sl_strndup(const char *s, size_t n)
{
	return s ? strndup(s, n) : NULL;
}

char *sl_asprintf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

bool sl_snprintf_ok(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r >= 0 && (size_t)r < n;
}

bool sl_str_has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

bool sl_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void sl_url_redact(const char *url, char *out, size_t outsz)
{
	const char *scheme, *start, *at, *end;
	size_t n;

	if (!outsz)
		return;
	out[0] = '\0';
	if (!url)
		return;
	scheme = strstr(url, "://");
	if (!scheme) {
		/* scp-style user@host:path keeps the user (no secret in it). */
		snprintf(out, outsz, "%s", url);
		return;
	}
	start = scheme + 3;
	end = start + strcspn(start, "/?#");
	at = memchr(start, '@', (size_t)(end - start));
	if (!at) {
		snprintf(out, outsz, "%s", url);
		return;
	}
	/* keep the last '@' of the authority: the host follows it */
	for (const char *p = at; p < end; p++)
		if (*p == '@')
			at = p;
	n = (size_t)(start - url);
	snprintf(out, outsz, "%.*s%s", (int)n, url, at + 1);
}
