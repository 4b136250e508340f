/* known_hosts checking for SSH remotes. libgit2 1.5 hands us the server's
 * raw host key and leaves the decision to us, so this is the whole check:
 * OpenSSH's file format, plain and hashed host names, [host]:port. */
#include "source-internal.h"
#include "sluice/base-base64.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>

/* Decodes standard base64 into out (outsz bytes). Returns the length, or -1
 * when it is not base64 or does not fit. */
static long b64_decode(const char *s, size_t n, uint8_t *out, size_t outsz)
{
	char *d = NULL;
	size_t dl = 0;
	long r = -1;

	if (sl_base64_decode(s, n, &d, &dl) == 0 && dl <= outsz) {
		memcpy(out, d, dl);
		r = (long)dl;
	}
	free(d);
	return r;
}

/* Does one host pattern (no commas) name host:port? The pattern is plain,
 * [host]:port, with * and ? wildcards, or hashed |1|salt|hash. */
static bool wildmatch(const char *p, size_t pn, const char *s)
{
	if (!pn)
		return !*s;
	if (*p == '*') {
		for (;; s++) {
			if (wildmatch(p + 1, pn - 1, s))
				return true;
			if (!*s)
				return false;
		}
	}
	if (!*s)
		return false;
	if (*p != '?' && tolower((unsigned char)*p) != tolower((unsigned char)*s))
		return false;
	return wildmatch(p + 1, pn - 1, s + 1);
}

static bool pattern_matches(const char *p, size_t pn, const char *hostport)
{
	if (pn > 3 && !memcmp(p, "|1|", 3)) {
		const char *salt = p + 3, *bar = memchr(salt, '|', pn - 3);
		uint8_t s[64], h[64], mac[EVP_MAX_MD_SIZE];
		unsigned maclen = 0;
		long sl, hl;

		if (!bar)
			return false;
		sl = b64_decode(salt, (size_t)(bar - salt), s, sizeof(s));
		hl = b64_decode(bar + 1, (size_t)(p + pn - bar - 1), h, sizeof(h));
		if (sl <= 0 || hl != 20)
			return false;
		if (!HMAC(EVP_sha1(), s, (int)sl, (const uint8_t *)hostport, strlen(hostport), mac, &maclen))
			return false;
		return maclen == 20 && sl_memeq_ct(mac, h, 20);
	}
	return wildmatch(p, pn, hostport);
}

int sl_source_known_hosts_check(const char *text, size_t len, const char *host, int port, const char *keytype,
                                const uint8_t *key, size_t keylen, struct sl_error *err)
{
	char hostport[300];
	const char *p = text, *end = text + len;
	bool host_known = false, match = false, revoked = false;
	uint8_t blob[16384];

	/* OpenSSH writes the default port as the bare name, others as [h]:p */
	if (port && port != 22)
		snprintf(hostport, sizeof(hostport), "[%s]:%d", host, port);
	else
		snprintf(hostport, sizeof(hostport), "%s", host);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line = p, *le = eol ? eol : end;
		const char *f[4];
		size_t fl[4];
		int nf = 0;
		bool is_revoked = false, positive = false, negated = false;

		p = eol ? eol + 1 : end;
		while (line < le && (*line == ' ' || *line == '\t'))
			line++;
		if (line >= le || *line == '#')
			continue;
		/* split into up to 4 whitespace separated fields */
		for (const char *q = line; q < le && nf < 4;) {
			while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
				q++;
			if (q >= le)
				break;
			f[nf] = q;
			while (q < le && *q != ' ' && *q != '\t' && *q != '\r')
				q++;
			fl[nf] = (size_t)(q - f[nf]);
			nf++;
		}
		if (nf >= 1 && f[0][0] == '@') {
			if (fl[0] == 8 && !memcmp(f[0], "@revoked", 8))
				is_revoked = true;
			else
				continue; /* @cert-authority: certificates are not used here */
			memmove(f, f + 1, sizeof(f[0]) * 3);
			memmove(fl, fl + 1, sizeof(fl[0]) * 3);
			nf--;
		}
		if (nf < 3)
			continue;
		/* host patterns: comma list, "!" negates */
		for (const char *h = f[0], *he = f[0] + fl[0]; h < he;) {
			const char *c = memchr(h, ',', (size_t)(he - h));
			const char *pe = c ? c : he;
			bool neg = *h == '!';
			if (pattern_matches(h + neg, (size_t)(pe - h - neg), hostport)) {
				if (neg)
					negated = true;
				else
					positive = true;
			}
			h = c ? c + 1 : he;
		}
		if (!positive || negated)
			continue;
		if (fl[1] != strlen(keytype) || memcmp(f[1], keytype, fl[1]) != 0) {
			if (!is_revoked)
				host_known = true;
			continue;
		}
		{
			long bl = b64_decode(f[2], fl[2], blob, sizeof(blob));
			bool same = bl >= 0 && (size_t)bl == keylen && memcmp(blob, key, keylen) == 0;
			if (is_revoked) {
				if (same)
					revoked = true;
				continue;
			}
			host_known = true;
			if (same)
				match = true;
		}
	}
	if (revoked)
		return sl_error_set(err, SL_EFORBIDDEN,
		                    "host key of %s is marked @revoked in known_hosts: refused", hostport);
	if (match)
		return 0;
	if (host_known)
		return sl_error_set(err, SL_EFORBIDDEN,
		                    "host key of %s does not match known_hosts (%s key changed?): refused",
		                    hostport, keytype);
	return sl_error_set(err, SL_ENOTFOUND, "host %s is not in known_hosts: refused", hostport);
}
