/* Fuzz target: the known_hosts check of SSH remotes. The input is
 *   <port selector byte><host>\n<key type>\n<raw key bytes>\n<known_hosts text>
 * The check must never crash, answer only its documented codes, and, for a
 * plain host name, accept the key once a line (plain or hashed) names it and
 * refuse it once a @revoked line does, whatever the text before says. */
#include "sluice/base-base64.h"
#include "sluice/source.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next \n-terminated field of [*p, end) as a string, or NULL. */
static char *field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	char *s;

	if (!nl)
		return NULL;
	s = sl_strndup((const char *)*p, (size_t)(nl - *p));
	*p = nl + 1;
	return s;
}

static bool plain(const char *s, const char *extra)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' ||
		      strchr(extra, *s)))
			return false;
	return true;
}

static int check(const char *text, size_t len, const char *line, const char *host, int port,
                 const char *type, const uint8_t *key, size_t keylen)
{
	struct sl_error err = {0};
	size_t ll = strlen(line);
	char *t = malloc(len + ll + 2);
	int r;

	if (!t)
		abort();
	memcpy(t, text, len);
	t[len] = '\n';
	memcpy(t + len + 1, line, ll);
	t[len + 1 + ll] = '\n';
	r = sl_source_known_hosts_check(t, len + ll + 2, host, port, type, key, keylen, &err);
	free(t);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int ports[] = {0, 22, 2222, 65535};
	const uint8_t *p = data + 1, *end = data + size;
	char *host = NULL, *type = NULL, *key = NULL, *b64 = NULL, *line = NULL, hostport[300];
	struct sl_error err = {0};
	int port, r, r2;

	if (size < 1)
		return 0;
	port = ports[data[0] % 4];
	if (!(host = field(&p, end)) || !(type = field(&p, end)) || !(key = field(&p, end)))
		goto out;
	r = sl_source_known_hosts_check((const char *)p, (size_t)(end - p), host, port, type,
	                                (const uint8_t *)key, strlen(key), &err);
	if (r != 0 && r != SL_ENOTFOUND && r != SL_EFORBIDDEN && r != SL_EINVALID)
		abort();
	if (r != 0 && !err.msg[0])
		abort();
	/* what follows needs a host that is its own pattern and a key type
	 * and key that are fields of a line */
	if (!plain(host, "") || strlen(host) > 253 || !plain(type, "@") || !*key || strlen(key) > 1024)
		goto out;
	if (port && port != 22)
		snprintf(hostport, sizeof(hostport), "[%s]:%d", host, port);
	else
		snprintf(hostport, sizeof(hostport), "%s", host);
	if (!(b64 = sl_base64_encode(key, strlen(key))))
		goto out;

	/* a line naming host and key: accepted, unless the text revokes it */
	line = sl_asprintf("%s %s %s", hostport, type, b64);
	r2 = check((const char *)p, (size_t)(end - p), line, host, port, type, (const uint8_t *)key,
	           strlen(key));
	if (r2 != 0 && !(r2 == SL_EFORBIDDEN && r == SL_EFORBIDDEN))
		abort();
	free(line);

	/* the same line with the name hashed (ssh-keygen -H) */
	{
		uint8_t salt[20], mac[EVP_MAX_MD_SIZE];
		unsigned maclen = 0;
		char *s64, *h64;
		for (size_t i = 0; i < sizeof(salt); i++)
			salt[i] = (uint8_t)(size + i * 7);
		if (!HMAC(EVP_sha1(), salt, sizeof(salt), (const uint8_t *)hostport, strlen(hostport), mac,
		          &maclen))
			abort();
		s64 = sl_base64_encode(salt, sizeof(salt));
		h64 = sl_base64_encode(mac, maclen);
		line = s64 && h64 ? sl_asprintf("|1|%s|%s %s %s", s64, h64, type, b64) : NULL;
		free(s64);
		free(h64);
		if (!line)
			goto out;
		r2 = check((const char *)p, (size_t)(end - p), line, host, port, type,
		           (const uint8_t *)key, strlen(key));
		if (r2 != 0 && !(r2 == SL_EFORBIDDEN && r == SL_EFORBIDDEN))
			abort();
		free(line);
	}

	/* revoked: refused whatever else the text says */
	line = sl_asprintf("@revoked %s %s %s", hostport, type, b64);
	r2 = check((const char *)p, (size_t)(end - p), line, host, port, type, (const uint8_t *)key,
	           strlen(key));
	if (r2 != SL_EFORBIDDEN)
		abort();
out:
	free(line);
	free(b64);
	free(host);
	free(type);
	free(key);
	return 0;
}
