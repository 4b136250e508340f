/* Fuzz target: the Git webhook check. The input is an HTTP request's header
 * lines ("Name: value", up to the first empty line) and then its body. The
 * check must never crash, and must accept exactly a request whose
 * X-Hub-Signature-256 is the HMAC-SHA256 of the body (hex in either case),
 * or, without that header, whose X-Gitlab-Token is the secret; a correct
 * signature of any body passes and one of a changed body does not. */
#include "sluice/server.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "It's a Secret to Everybody";

/* The first header of that name (case-insensitive, as libmicrohttpd looks it
 * up), its value without surrounding blanks; NULL when absent. */
static char *header(const char *h, size_t n, const char *name)
{
	const char *p = h, *end = h + n;
	size_t nl = strlen(name);

	while (p < end) {
		const char *le = memchr(p, '\n', (size_t)(end - p));
		const char *e = le ? le : end, *colon = memchr(p, ':', (size_t)(e - p));
		if (colon && (size_t)(colon - p) == nl && strncasecmp(p, name, nl) == 0) {
			const char *v = colon + 1, *ve = e;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
				ve--;
			/* a header value cannot hold a NUL */
			return memchr(v, 0, (size_t)(ve - v)) ? NULL : sl_strndup(v, (size_t)(ve - v));
		}
		p = le ? le + 1 : end;
	}
	return NULL;
}

static void hmac_hex(const void *body, size_t len, char out[65])
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned ml = 0;
	static const uint8_t empty;

	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), len ? body : &empty, len, mac, &ml) || ml != 32)
		abort();
	sl_hex(mac, ml, out);
}

static int expected(const char *sig, const char *token, const void *body, size_t len)
{
	char want[65];

	if (sig) {
		if (strlen(sig) != 71 || strncmp(sig, "sha256=", 7) != 0)
			return SL_EFORBIDDEN;
		hmac_hex(body, len, want);
		for (size_t i = 0; i < 64; i++)
			if (want[i] != ((sig[7 + i] >= 'A' && sig[7 + i] <= 'F') ? sig[7 + i] + 32 : sig[7 + i]))
				return SL_EFORBIDDEN;
		return 0;
	}
	if (token)
		return strcmp(token, secret) == 0 ? 0 : SL_EFORBIDDEN;
	return SL_EUNAUTHORIZED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data, *body;
	size_t hlen = size, blen = 0;
	char *sig, *token, good[72];
	struct sl_error err = {0};
	int r;

	/* headers end at the first empty line ("\n\n" or "\r\n\r\n") */
	for (size_t i = 0; i < size; i++)
		if (d[i] == '\n' && (i + 1 < size && (d[i + 1] == '\n' || (d[i + 1] == '\r' && i + 2 < size &&
		                                                             d[i + 2] == '\n')))) {
			hlen = i;
			break;
		}
	body = d + hlen;
	if (hlen < size) {
		body += d[hlen + 1] == '\r' ? 3 : 2;
		blen = size - (size_t)(body - d);
	}
	sig = header(d, hlen, "X-Hub-Signature-256");
	token = header(d, hlen, "X-Gitlab-Token");

	r = sl_server_webhook_verify(secret, strlen(secret), sig, token, body, blen, &err);
	if (r != expected(sig, token, body, blen) || (r < 0 && !err.msg[0]))
		abort();
	/* no secret: nothing passes */
	if (sl_server_webhook_verify(secret, 0, sig, token, body, blen, NULL) != SL_EUNAUTHORIZED ||
	    sl_server_webhook_verify(NULL, 0, sig, token, body, blen, NULL) != SL_EUNAUTHORIZED)
		abort();
	/* the signature GitHub would send for this body, in both cases */
	memcpy(good, "sha256=", 7);
	hmac_hex(body, blen, good + 7);
	if (sl_server_webhook_verify(secret, strlen(secret), good, token, body, blen, NULL) != 0)
		abort();
	for (size_t i = 7; i < 71; i++)
		good[i] = (char)toupper((unsigned char)good[i]);
	if (sl_server_webhook_verify(secret, strlen(secret), good, NULL, body, blen, NULL) != 0)
		abort();
	/* ... and not for a body one byte shorter */
	if (blen && sl_server_webhook_verify(secret, strlen(secret), good, token, body, blen - 1, NULL) == 0)
		abort();
	free(sig);
	free(token);
	return 0;
}
