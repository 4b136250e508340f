/* SHA-256 (FIPS 180-4) for content digests, SipHash-2-4 under a per-process
 * random key for tables, and a constant-time compare. Plain C so base stays
 * free of other libraries. */
#include "sluice/base.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void block(struct sl_sha256 *c, const uint8_t *p)
{
	uint32_t w[64], a, b, cc, d, e, f, g, h;

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
		       (uint32_t)p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
	e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = h + S1 + ch + K[i] + w[i];
		uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
		uint32_t maj = (a & b) ^ (a & cc) ^ (b & cc);
		uint32_t t2 = S0 + maj;
		h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
	}
	c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
	c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

/* ---- the framing MD5 and SHA-256 share ---------------------------------------
 * Input in 64-byte blocks; at the end 0x80, zeros up to 56 bytes and the
 * length in bits (little-endian for MD5, big-endian for SHA-256). */

typedef void (*block_fn)(void *ctx, const uint8_t *p);

static void frame_feed(void *ctx, block_fn blk, uint8_t buf[64], size_t *fill, uint64_t *total,
                       const void *data, size_t n)
{
	const uint8_t *p = data;

	*total += n;
	while (n > 0) {
		size_t k = SL_MIN(n, 64 - *fill);
		memcpy(buf + *fill, p, k);
		*fill += k;
		p += k;
		n -= k;
		if (*fill == 64) {
			blk(ctx, buf);
			*fill = 0;
		}
	}
}

static void frame_finish(void *ctx, block_fn blk, uint8_t buf[64], size_t *fill, uint64_t total,
                         bool big_endian)
{
	uint64_t bits = total * 8, ignored = 0;
	uint8_t pad[64 + 8] = {0x80};
	size_t npad = (*fill < 56 ? 56 : 120) - *fill;

	for (int i = 0; i < 8; i++)
		pad[npad + i] = (uint8_t)(bits >> (big_endian ? 56 - 8 * i : 8 * i));
	frame_feed(ctx, blk, buf, fill, &ignored, pad, npad + 8);
}

static void sha256_block(void *c, const uint8_t *p)
{
	block(c, p);
}

void sl_sha256_init(struct sl_sha256 *c)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(c->h, iv, sizeof(iv));
	c->n = 0;
	c->fill = 0;
}

void sl_sha256_update(struct sl_sha256 *c, const void *data, size_t n)
{
	frame_feed(c, sha256_block, c->buf, &c->fill, &c->n, data, n);
}

void sl_sha256_final(struct sl_sha256 *c, uint8_t out[SL_SHA256_LEN])
{
	frame_finish(c, sha256_block, c->buf, &c->fill, c->n, true);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
}

void sl_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void sl_sha256_hex(const void *p, size_t n, char out[static 65])
{
	struct sl_sha256 c;
	uint8_t d[SL_SHA256_LEN];
	sl_sha256_init(&c);
	sl_sha256_update(&c, p, n);
	sl_sha256_final(&c, d);
	sl_hex(d, sizeof(d), out);
}

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load64_le(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL64(v[1], 13);
	v[1] ^= v[0];
	v[0] = ROTL64(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL64(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = ROTL64(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = ROTL64(v[1], 17);
	v[1] ^= v[2];
	v[2] = ROTL64(v[2], 32);
}

/* SipHash-2-4 (Aumasson and Bernstein, 2012): two rounds per 8-byte word,
 * four to finalise, the length in the top byte of the last word. */
uint64_t sl_siphash24(const uint8_t key[static 16], const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t k0 = load64_le(key), k1 = load64_le(key + 8);
	uint64_t v[4] = {
	    0x736f6d6570736575ull ^ k0,
	    0x646f72616e646f6dull ^ k1,
	    0x6c7967656e657261ull ^ k0,
	    0x7465646279746573ull ^ k1,
	};
	uint64_t m, last = (uint64_t)n << 56;
	size_t whole = n - n % 8;

	assert(p || n == 0);
	for (size_t i = 0; i < whole; i += 8) {
		m = load64_le(p + i);
		v[3] ^= m;
		sipround(v);
		sipround(v);
		v[0] ^= m;
	}
	for (size_t i = 0; i < n % 8; i++)
		last |= (uint64_t)p[whole + i] << (8 * i);
	v[3] ^= last;
	sipround(v);
	sipround(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (int i = 0; i < 4; i++)
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint8_t process_key[16];
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static void process_key_init(void)
{
	size_t got = 0;

	/* Blocks only until the kernel's pool is first initialised. */
	while (got < sizeof(process_key)) {
		ssize_t r = getrandom(process_key + got, sizeof(process_key) - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got < sizeof(process_key)) {
		/* No getrandom (a kernel before 3.17, a seccomp filter): still
		 * unknown to a remote user, if weaker than a random key. */
		struct timespec ts;
		uint64_t seed[2];
		clock_gettime(CLOCK_REALTIME, &ts);
		seed[0] = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		seed[1] = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&ts ^ sl_now_us();
		memcpy(process_key, seed, sizeof(process_key));
	}
}

uint64_t sl_hash_keyed(const void *data, size_t n)
{
	int r = pthread_once(&process_key_once, process_key_init);
	assert(r == 0);
	(void)r;
	return sl_siphash24(process_key, data, n);
}

bool sl_memeq_ct(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;
	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* ---- MD5 (RFC 1321) ---------------------------------------------------------
 * Not for security: Arcane's configuration-hash is the MD5 of a stream's spec,
 * and sluice computes the same value so that Jobs carry over between the two. */

static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};
static const uint8_t md5_r[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                  5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_block(struct sl_md5 *c, const uint8_t *p)
{
	uint32_t w[16], a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[i * 4] | (uint32_t)p[i * 4 + 1] << 8 | (uint32_t)p[i * 4 + 2] << 16 |
		       (uint32_t)p[i * 4 + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f;
		int g;
		if (i < 16) {
			f = (b & cc) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & cc);
			g = (5 * i + 1) % 16;
		} else if (i < 48) {
			f = b ^ cc ^ d;
			g = (3 * i + 5) % 16;
		} else {
			f = cc ^ (b | ~d);
			g = (7 * i) % 16;
		}
		uint32_t t = d;
		d = cc;
		cc = b;
		uint32_t x = a + f + md5_k[i] + w[g];
		b = b + ((x << md5_r[i]) | (x >> (32 - md5_r[i])));
		a = t;
	}
	c->h[0] += a;
	c->h[1] += b;
	c->h[2] += cc;
	c->h[3] += d;
}

void sl_md5_init(struct sl_md5 *c)
{
	c->h[0] = 0x67452301;
	c->h[1] = 0xefcdab89;
	c->h[2] = 0x98badcfe;
	c->h[3] = 0x10325476;
	c->n = 0;
	c->fill = 0;
}

static void md5_block_cb(void *c, const uint8_t *p)
{
	md5_block(c, p);
}

void sl_md5_update(struct sl_md5 *c, const void *data, size_t n)
{
	frame_feed(c, md5_block_cb, c->buf, &c->fill, &c->n, data, n);
}

void sl_md5_final(struct sl_md5 *c, uint8_t out[SL_MD5_LEN])
{
	frame_finish(c, md5_block_cb, c->buf, &c->fill, c->n, false);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			out[i * 4 + j] = (uint8_t)(c->h[i] >> (8 * j));
}

void sl_md5_hex(const void *p, size_t n, char out[static 33])
{
	struct sl_md5 c;
	uint8_t d[SL_MD5_LEN];

	sl_md5_init(&c);
	sl_md5_update(&c, p, n);
	sl_md5_final(&c, d);
	sl_hex(d, sizeof(d), out);
}
