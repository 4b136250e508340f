/* known_hosts checking for SSH remotes. libgit2 1.5 hands us the server's
 * raw host key and leaves the decision to us, so this is the whole check:
 * OpenSSH's file format, plain and hashed host names, [host]:port. */
#include "source-internal.h"
#include "sluice/base-base64.h"

#include <assert.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
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
 * [host]:port, with * and ? wildcards, or hashed |1|salt|hash. The match
 * goes back only to the last * (it is the one that can take more), so it
 * takes at most pattern times name steps however many * there are. */
static bool wildmatch(const char *p, size_t pn, const char *s)
{
	size_t pi = 0, star = SIZE_MAX;
	const char *mark = NULL;

	while (*s) {
		if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = s;
		} else if (pi < pn && (p[pi] == '?' || tolower((unsigned char)p[pi]) == tolower((unsigned char)*s))) {
			pi++;
			s++;
		} else if (star != SIZE_MAX) {
			/* let the last * take one more character */
			pi = star + 1;
			s = ++mark;
		} else
			return false;
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
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

/* The fields of one known_hosts line that matter: host patterns, key type,
 * key (base64), and whether it is marked @revoked. */
struct line {
	const char *f[3];
	size_t fl[3];
	bool revoked;
};

/* Splits the line [p, le) into its fields; false for a line that says
 * nothing about host keys (blank, comment, @cert-authority: certificates
 * are not used here, too few fields). */
static bool parse_line(const char *p, const char *le, struct line *l)
{
	const char *f[4];
	size_t fl[4];
	int nf = 0, first = 0;

	while (p < le && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= le || *p == '#')
		return false;
	/* up to 4 whitespace separated fields: a marker may come first */
	for (const char *q = p; q < le && nf < 4;) {
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
	l->revoked = false;
	if (nf >= 1 && f[0][0] == '@') {
		if (fl[0] != 8 || memcmp(f[0], "@revoked", 8) != 0)
			return false;
		l->revoked = true;
		first = 1;
	}
	if (nf - first < 3)
		return false;
	for (int i = 0; i < 3; i++) {
		l->f[i] = f[first + i];
		l->fl[i] = fl[first + i];
	}
	return true;
}

/* Does a comma list of host patterns name hostport? A "!" pattern that
 * matches wins over every other. */
static bool hosts_match(const char *h, size_t n, const char *hostport)
{
	const char *he = h + n;
	bool positive = false, negated = false;

	while (h < he) {
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
	return positive && !negated;
}

/* Is the base64 key of a line the key offered? */
static bool same_key(const char *b64, size_t n, const uint8_t *key, size_t keylen)
{
	uint8_t blob[16384];
	long bl = b64_decode(b64, n, blob, sizeof(blob));

	return bl >= 0 && (size_t)bl == keylen && memcmp(blob, key, keylen) == 0;
}

int sl_source_known_hosts_check(const char *text, size_t len, const char *host, int port, const char *keytype,
                                const uint8_t *key, size_t keylen, struct sl_error *err)
{
	/* Room for any DNS name (253 bytes) with brackets and a port. */
	char hostport[300];
	const char *p = text, *end = text + len;
	bool host_known = false, match = false, revoked = false;
	int n;

	assert(host && keytype);
	/* OpenSSH writes the default port as the bare name, others as [h]:p */
	if (port && port != 22)
		n = snprintf(hostport, sizeof(hostport), "[%s]:%d", host, port);
	else
		n = snprintf(hostport, sizeof(hostport), "%s", host);
	/* A cut name would be matched by its prefix: refuse it instead. */
	if (n < 0 || (size_t)n >= sizeof(hostport))
		return sl_error_set(err, SL_EINVALID,
		                    "host name of %zu bytes is too long to check against known_hosts",
		                    strlen(host));

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line = p, *le = eol ? eol : end;
		struct line l;
		bool same;

		p = eol ? eol + 1 : end;
		if (!parse_line(line, le, &l) || !hosts_match(l.f[0], l.fl[0], hostport))
			continue;
		if (l.fl[1] != strlen(keytype) || memcmp(l.f[1], keytype, l.fl[1]) != 0) {
			/* the host has a key of another type: known, just not by this one */
			if (!l.revoked)
				host_known = true;
			continue;
		}
		same = same_key(l.f[2], l.fl[2], key, keylen);
		if (l.revoked) {
			if (same)
				revoked = true;
			continue;
		}
		host_known = true;
		if (same)
			match = true;
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
