/* Clocks, RFC 3339 timestamps, durations and jitter. */
#include "sluice/base.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t sl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sl_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t sl_wall_s(void)
{
	return (int64_t)time(NULL);
}

/* Seconds of 0000-01-01T00:00:00Z and of 9999-12-31T23:59:59Z: the years
 * RFC 3339's four digits can write. */
#define RFC3339_MIN_S (-62167219200LL)
#define RFC3339_MAX_S 253402300799LL

void sl_time_rfc3339(int64_t epoch_s, char out[static 32])
{
	time_t t = (time_t)SL_MIN(SL_MAX(epoch_s, RFC3339_MIN_S), RFC3339_MAX_S);
	struct tm tm;

	/* four year digits always (strftime's %Y writes year 999 as "999") */
	if (!gmtime_r(&t, &tm)) {
		snprintf(out, 32, "1970-01-01T00:00:00Z");
		return;
	}
	/* the remainders change nothing (t is within the years above); they
	 * show the compiler that the text fits */
	snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
	         (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
	         (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
}

static bool two_digits(const char *p, int *ret)
{
	/* p[1] is only read when p[0] is a digit, so never past a NUL. */
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
		return false;
	*ret = (p[0] - '0') * 10 + (p[1] - '0');
	return true;
}

static bool four_digits(const char *p, int *ret)
{
	int hi, lo;

	if (!two_digits(p, &hi) || !two_digits(p + 2, &lo))
		return false;
	*ret = hi * 100 + lo;
	return true;
}

static int days_in_month(int year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/* Exactly "+HH:MM" or "-HH:MM" at p (RFC 3339 time-numoffset), into seconds
 * east of UTC. Each byte is checked before the next is read. */
static int parse_offset(const char *p, int64_t *ret)
{
	int hh, mm;

	assert(p[0] == '+' || p[0] == '-');
	if (!two_digits(p + 1, &hh) || p[3] != ':' || !two_digits(p + 4, &mm))
		return SL_EINVALID;
	if (hh > 23 || mm > 59)
		return SL_EINVALID;
	*ret = (int64_t)(hh * 3600 + mm * 60) * (p[0] == '+' ? 1 : -1);
	return 0;
}

/* RFC 3339 date-time, as its grammar says: "YYYY-MM-DDTHH:MM:SS", an
 * optional fraction of at least one digit, then "Z" or "+HH:MM"/"-HH:MM"
 * ("T" and "Z" in either case). Every field has its exact digits and its
 * range (the day that of its month, second 60 for a leap second), so
 * neither "24-1-1T1:1:1Z" nor February 31 passes. Each byte is checked
 * before the next is read. */
int sl_time_parse_rfc3339(const char *s, int64_t *ret)
{
	struct tm tm = {0};
	int year, mon, day, hour, min, sec;
	const char *p;
	int64_t off = 0;

	if (!s || !four_digits(s, &year) || s[4] != '-' || !two_digits(s + 5, &mon) || s[7] != '-' ||
	    !two_digits(s + 8, &day) || (s[10] != 'T' && s[10] != 't') || !two_digits(s + 11, &hour) ||
	    s[13] != ':' || !two_digits(s + 14, &min) || s[16] != ':' || !two_digits(s + 17, &sec))
		return SL_EINVALID;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 ||
	    sec > 60)
		return SL_EINVALID;
	p = s + 19;
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return SL_EINVALID;
		for (p++; isdigit((unsigned char)*p); p++)
			;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		int r = parse_offset(p, &off);
		if (r < 0)
			return r;
		p += 6;
	} else
		return SL_EINVALID;
	if (*p)
		return SL_EINVALID;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	*ret = (int64_t)timegm(&tm) - off;
	return 0;
}

int sl_duration_parse_ms(const char *s, uint64_t *ret)
{
	uint64_t total = 0;
	const char *p = s;

	if (!s || !*s)
		return SL_EINVALID;
	if (strcmp(s, "0") == 0) {
		*ret = 0;
		return 0;
	}
	while (*p) {
		char *end;
		double v;
		uint64_t mult;

		if (!isdigit((unsigned char)*p) && *p != '.')
			return SL_EINVALID;
		v = strtod(p, &end);
		if (end == p)
			return SL_EINVALID;
		p = end;
		if (strncmp(p, "ms", 2) == 0) {
			mult = 1;
			p += 2;
		} else if (*p == 's') {
			mult = 1000;
			p++;
		} else if (*p == 'm') {
			mult = 60000;
			p++;
		} else if (*p == 'h') {
			mult = 3600000;
			p++;
		} else
			return SL_EINVALID;
		/* each part, and so the sum (never wrapping), at most 1e15 ms */
		if (v < 0 || v * (double)mult > 1e15 || (uint64_t)(v * (double)mult) > (uint64_t)1e15 - total)
			return SL_EINVALID;
		total += (uint64_t)(v * (double)mult);
	}
	*ret = total;
	return 0;
}

uint64_t sl_rand_between(uint64_t lo, uint64_t hi)
{
	uint64_t r = 0;
	if (hi <= lo)
		return lo;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = sl_now_ms() * 6364136223846793005ull + 1442695040888963407ull;
	return lo + r % (hi - lo + 1);
}
