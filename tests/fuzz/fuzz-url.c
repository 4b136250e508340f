/* Fuzz target: URL redaction must never crash and never keep user info. */
#include "sluice/base.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), out[512];
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	sl_url_redact(s, out, sizeof(out));
	if (strstr(s, "://") && strchr(s, '@') && strlen(s) < sizeof(out)) {
		/* the authority's user info never survives */
		const char *a = strstr(s, "://") + 3;
		size_t alen = strcspn(a, "/?#");
		if (memchr(a, '@', alen) && strstr(out, "://")) {
			const char *o = strstr(out, "://") + 3;
			if (memchr(o, '@', strcspn(o, "/?#")))
				abort();
		}
	}
	free(s);
	return 0;
}
