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

void sl_time_rfc3339(int64_t epoch_s, char out[static 32])
{
	time_t t = (time_t)epoch_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool two_digits(const char *p, int *ret)
{
	/* p[1] is only read when p[0] is a digit, so never past a NUL. */
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
		return false;
	*ret = (p[0] - '0') * 10 + (p[1] - '0');
	return true;
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

int sl_time_parse_rfc3339(const char *s, int64_t *ret)
{
	struct tm tm = {0};
	const char *p;
	int64_t off = 0;

	if (!s)
		return SL_EINVALID;
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return SL_EINVALID;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
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
		if (v < 0 || v * (double)mult > 1e15)
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
