/* The pure pieces of the HTTP server: the webhook signature check, the token
 * bucket that rate-limits it, and --listen parsing. */
#include "sluice/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int sl_server_webhook_hmac_hex(const void *key, size_t key_len, const void *body, size_t body_len,
                               char out[static 65])
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;
	static const uint8_t empty;

	if (key_len > INT32_MAX)
		return SL_EINVALID;
	if (!HMAC(EVP_sha256(), key, (int)key_len, body_len ? body : &empty, body_len, mac, &mac_len) ||
	    mac_len != SL_SHA256_LEN)
		return SL_EINTERNAL;
	sl_hex(mac, mac_len, out);
	return 0;
}

int sl_server_webhook_verify(const char *secret, size_t secret_len, const char *github_sig,
                             const char *gitlab_token, const void *body, size_t body_len,
                             struct sl_error *err)
{
	char want[65], got[65];
	int r;

	if (!secret || secret_len == 0)
		return sl_error_set(err, SL_EUNAUTHORIZED, "no webhook secret configured");
	if (github_sig) {
		size_t n = strlen(github_sig);
		if (n != 7 + 64 || strncmp(github_sig, "sha256=", 7) != 0)
			return sl_error_set(err, SL_EFORBIDDEN, "X-Hub-Signature-256 is not sha256=<64 hex>");
		for (size_t i = 0; i < 64; i++) {
			char c = github_sig[7 + i];
			got[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
		}
		got[64] = 0;
		r = sl_server_webhook_hmac_hex(secret, secret_len, body, body_len, want);
		if (r < 0)
			return sl_error_set(err, r, "HMAC-SHA256 failed");
		if (!sl_memeq_ct(want, got, 64))
			return sl_error_set(err, SL_EFORBIDDEN,
			                    "X-Hub-Signature-256 does not match the body");
		return 0;
	}
	if (gitlab_token) {
		/* Digests of both sides have equal length, so neither the
		 * comparison nor its length check reveals the secret's length. */
		uint8_t a[SL_SHA256_LEN], b[SL_SHA256_LEN];
		struct sl_sha256 c;
		sl_sha256_init(&c);
		sl_sha256_update(&c, secret, secret_len);
		sl_sha256_final(&c, a);
		sl_sha256_init(&c);
		sl_sha256_update(&c, gitlab_token, strlen(gitlab_token));
		sl_sha256_final(&c, b);
		if (!sl_memeq_ct(a, b, sizeof(a)))
			return sl_error_set(err, SL_EFORBIDDEN, "X-Gitlab-Token does not match");
		return 0;
	}
	return sl_error_set(err, SL_EUNAUTHORIZED, "neither X-Hub-Signature-256 nor X-Gitlab-Token given");
}

void sl_server_token_bucket_init(struct sl_server_token_bucket *tb, double rate, double burst,
                                 uint64_t now_ms)
{
	tb->rate = rate > 0 ? rate : 1;
	tb->burst = burst >= 1 ? burst : 1;
	tb->tokens = tb->burst;
	tb->last_ms = now_ms;
}

static void refill(struct sl_server_token_bucket *tb, uint64_t now_ms)
{
	if (now_ms > tb->last_ms) {
		tb->tokens += (double)(now_ms - tb->last_ms) * tb->rate / 1000.0;
		if (tb->tokens > tb->burst)
			tb->tokens = tb->burst;
		tb->last_ms = now_ms;
	}
}

bool sl_server_token_bucket_take(struct sl_server_token_bucket *tb, uint64_t now_ms)
{
	refill(tb, now_ms);
	if (tb->tokens < 1)
		return false;
	tb->tokens -= 1;
	return true;
}

uint64_t sl_server_token_bucket_wait_ms(const struct sl_server_token_bucket *tb, uint64_t now_ms)
{
	struct sl_server_token_bucket t = *tb;
	refill(&t, now_ms);
	if (t.tokens >= 1)
		return 0;
	return (uint64_t)((1 - t.tokens) * 1000.0 / t.rate) + 1;
}

int sl_server_parse_listen(const char *s, void *ss, unsigned *sslen, struct sl_error *err)
{
	char host[256] = "";
	const char *port;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char *end;
	long pn;
	int r;

	if (!s || !*s)
		return sl_error_set(err, SL_EINVALID, "empty listen address");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
			return sl_error_set(err, SL_EINVALID, "listen address %s: expected [IPv6]:PORT", s);
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = 0;
		port = close + 2;
		hints.ai_family = AF_INET6;
		hints.ai_flags |= AI_NUMERICHOST;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host) || memchr(s, ':', (size_t)(colon - s)))
			return sl_error_set(err, SL_EINVALID, "listen address %s: expected [HOST]:PORT", s);
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
		port = colon + 1;
		hints.ai_family = AF_INET;
		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		hints.ai_flags |= AI_NUMERICHOST;
	}
	pn = strtol(port, &end, 10);
	if (!*port || *end || pn < 0 || pn > 65535)
		return sl_error_set(err, SL_EINVALID, "listen address %s: bad port", s);
	r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (r != 0 || !res)
		return sl_error_set(err, SL_EINVALID, "listen address %s: %s", s, gai_strerror(r));
	if (res->ai_addrlen > *sslen) {
		freeaddrinfo(res);
		return sl_error_set(err, SL_EINTERNAL, "listen address %s: address too long", s);
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = (unsigned)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}
