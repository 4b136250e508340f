/* Fuzz target: RFC 3339 timestamps (metadata.creationTimestamp, Event and
 * Lease times, status written by other clients) and Go durations must never
 * crash or read past their text; a timestamp that parses writes back as one
 * that parses to the same second. */
#include "sluice/base.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), out[32];
	int64_t t, t2;
	uint64_t ms;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (sl_time_parse_rfc3339(s, &t) == 0) {
		/* what parsed is a valid instant: formatting it gives a
		 * timestamp that parses back to the same second */
		sl_time_rfc3339(t, out);
		if (sl_time_parse_rfc3339(out, &t2) != 0)
			abort();
		/* within the years four digits can write (an offset moves
		 * 9999-12-31 into year 10000) */
		if (t >= -62167219200LL && t <= 253402300799LL && t2 != t)
			abort();
		/* RFC 3339 has exactly four year digits first */
		if (size < 20 || !strchr("0123456789", s[0]) || s[4] != '-')
			abort();
	}
	if (sl_duration_parse_ms(s, &ms) == 0 && ms > (uint64_t)1e15)
		abort();
	free(s);
	return 0;
}
