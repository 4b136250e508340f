/* Unit tests of base: buffers with limits, errors, hashing, time, files and
 * directory trees, URLs, the string map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/base-map.h"
#include "sluice/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void buf_limit(void **state)
{
	struct sl_buf b;
	sl_buf_init(&b, 8);
	assert_int_equal(sl_buf_puts(&b, "abcd"), 0);
	assert_int_equal(sl_buf_puts(&b, "efgh"), 0);
	assert_int_equal(sl_buf_puts(&b, "i"), SL_ETOOLARGE);
	assert_string_equal(b.data, "abcdefgh");
	sl_buf_consume(&b, 3);
	assert_string_equal(b.data, "defgh");
	assert_int_equal(sl_buf_printf(&b, "%d", 123), 0);
	assert_string_equal(b.data, "defgh123");
	assert_int_equal(sl_buf_printf(&b, "%d", 4), SL_ETOOLARGE);
	sl_buf_free(&b);
}

static void grow_arrays(void **state)
{
	int *v = NULL;
	size_t cap = 0;
	assert_int_equal(SL_GROW(v, cap, 1, 4), 0);
	assert_int_equal(cap, 4);
	assert_int_equal(SL_GROW(v, cap, 4, 4), 0);
	assert_int_equal(cap, 4);
	assert_int_equal(SL_GROW(v, cap, 9, 4), 0);
	assert_int_equal(cap, 16);
	for (int i = 0; i < 16; i++)
		v[i] = i;
	/* an impossible size fails and leaves the array as it was */
	assert_int_equal(SL_GROW(v, cap, SIZE_MAX / 2, 4), SL_ENOMEM);
	assert_int_equal(cap, 16);
	assert_int_equal(v[15], 15);
	free(v);
}

static void error_buffer(void **state)
{
	struct sl_error e = {0};
	assert_int_equal(sl_error_set(&e, SL_ENOTFOUND, "thing %s", "x"), SL_ENOTFOUND);
	assert_string_equal(e.msg, "thing x");
	sl_error_prefix(&e, "file %d", 3);
	assert_string_equal(e.msg, "file 3: thing x");
	assert_string_equal(sl_strerror(SL_ECONFLICT), "conflict");
	assert_int_equal(sl_error_set(NULL, SL_EIO, "ignored"), SL_EIO);
}

static void sha256_vectors(void **state)
{
	char hex[65];
	sl_sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sl_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sl_sha256_hex(m, strlen(m), hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_true(sl_memeq_ct("abc", "abc", 3));
	assert_false(sl_memeq_ct("abc", "abd", 3));
}

/* RFC 1321's test suite, plus lengths around the 56- and 64-byte padding edges. */
static void md5_vectors(void **state)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
	    {"", "d41d8cd98f00b204e9800998ecf8427e"},
	    {"a", "0cc175b9c0f1b6a831c399e269772661"},
	    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
	    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
	    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
	    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	     "d174ab98d277d9f5a5611c2c9f419d9f"},
	    {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
	     "57edf4a22be3c955ac49da2e2107b67a"},
	};
	char hex[33];
	for (size_t i = 0; i < SL_ARRAY_SIZE(v); i++) {
		sl_md5_hex(v[i].in, strlen(v[i].in), hex);
		assert_string_equal(hex, v[i].hex);
	}
	/* fed in pieces: the same digest */
	struct sl_md5 c;
	uint8_t d[SL_MD5_LEN];
	const char *in = v[6].in;
	sl_md5_init(&c);
	for (size_t i = 0, n = strlen(in); i < n; i += 7)
		sl_md5_update(&c, in + i, SL_MIN((size_t)7, n - i));
	sl_md5_final(&c, d);
	sl_hex(d, sizeof(d), hex);
	assert_string_equal(hex, v[6].hex);
}

static void durations_and_time(void **state)
{
	uint64_t ms;
	int64_t t;
	char out[32];
	assert_int_equal(sl_duration_parse_ms("1m", &ms), 0);
	assert_int_equal(ms, 60000);
	assert_int_equal(sl_duration_parse_ms("1h30m", &ms), 0);
	assert_int_equal(ms, 5400000);
	assert_int_equal(sl_duration_parse_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(sl_duration_parse_ms("1.5s", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(sl_duration_parse_ms("10", &ms), SL_EINVALID);
	assert_int_equal(sl_duration_parse_ms("-1s", &ms), SL_EINVALID);
	/* 1e15 ms at most, in each part and in the sum */
	assert_int_equal(sl_duration_parse_ms("277777777h", &ms), 0);
	assert_int_equal(ms, 999999997200000ull);
	assert_int_equal(sl_duration_parse_ms("277777771h21h", &ms), SL_EINVALID);
	assert_int_equal(sl_time_parse_rfc3339("2026-11-25T11:23:26Z", &t), 0);
	sl_time_rfc3339(t, out);
	assert_string_equal(out, "2026-11-25T11:23:26Z");
	assert_int_equal(sl_time_parse_rfc3339("2026-11-25T12:23:26.5+01:00", &t), 0);
	sl_time_rfc3339(t, out);
	assert_string_equal(out, "2026-11-25T11:23:26Z");
	assert_int_equal(sl_time_parse_rfc3339("yesterday", &t), SL_EINVALID);
	for (int i = 0; i < 100; i++) {
		uint64_t v = sl_rand_between(5, 10);
		assert_true(v >= 5 && v <= 10);
	}
}

/* Offsets are exactly +HH:MM, -HH:MM or Z; anything shorter must be refused
 * without reading past the end of the string. */
static void rfc3339_offsets(void **state)
{
	/* Room after the NUL, so a parser that skips past it reads zeros. */
	char buf[64] = {0};
	char *heap;
	int64_t t;
	static const char *const bad[] = {
	    "2026-11-25T11:23:26+5:30",  "2026-11-25T11:23:26+",       "2026-11-25T11:23:26-",
	    "2026-11-25T11:23:26+05",    "2026-11-25T11:23:26+05:3",   "2026-11-25T11:23:26+0530",
	    "2026-11-25T11:23:26+ 5:30", "2026-11-25T11:23:26+-5:30",  "2026-11-25T11:23:26+24:00",
	    "2026-11-25T11:23:26+05:60", "2026-11-25T11:23:26+05:30x", "2026-11-25T11:23:26Zx",
	    "2026-11-25T11:23:26",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(buf, bad[i], strlen(bad[i]) + 1);
		assert_int_equal(sl_time_parse_rfc3339(buf, &t), SL_EINVALID);
		/* On the heap too, so ASan sees a read past the end. */
		heap = strdup(bad[i]);
		assert_non_null(heap);
		assert_int_equal(sl_time_parse_rfc3339(heap, &t), SL_EINVALID);
		free(heap);
	}
	assert_int_equal(sl_time_parse_rfc3339("2026-11-25T16:53:26+05:30", &t), 0);
	assert_int_equal(t, 1795605806);
	assert_int_equal(sl_time_parse_rfc3339("2026-11-25T06:23:26-05:00", &t), 0);
	assert_int_equal(t, 1795605806);
	assert_int_equal(sl_time_parse_rfc3339("2026-11-25T11:23:26z", &t), 0);
	assert_int_equal(t, 1795605806);
}

/* The date and time fields have exactly their digits and their ranges. */
static void rfc3339_strict(void **state)
{
	static const char *const bad[] = {
	    "26-11-25T11:23:26Z",   " 2026-11-25T11:23:26Z", "2026-1-25T11:23:26Z",  "2026-11-25T1:23:26Z",
	    "2026-11-25 11:23:26Z", "2026-13-25T11:23:26Z",  "2026-00-25T11:23:26Z", "2026-02-29T11:23:26Z",
	    "2026-04-31T11:23:26Z", "2026-11-25T24:00:00Z",  "2026-11-25T11:60:26Z", "2026-11-25T11:23:61Z",
	    "2026-11-25T11:23:26.Z", "+2026-11-25T11:23:26Z",
	};
	char out[32];
	int64_t t;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sl_time_parse_rfc3339(bad[i], &t), SL_EINVALID);
	assert_int_equal(sl_time_parse_rfc3339("2028-02-29t00:00:00Z", &t), 0);
	sl_time_rfc3339(t, out);
	assert_string_equal(out, "2028-02-29T00:00:00Z");
	/* a leap second is the next second */
	assert_int_equal(sl_time_parse_rfc3339("2016-12-31T23:59:60Z", &t), 0);
	sl_time_rfc3339(t, out);
	assert_string_equal(out, "2017-01-01T00:00:00Z");
	/* four year digits, also before year 1000 */
	assert_int_equal(sl_time_parse_rfc3339("0999-12-31T23:59:59Z", &t), 0);
	sl_time_rfc3339(t, out);
	assert_string_equal(out, "0999-12-31T23:59:59Z");
	sl_time_rfc3339(INT64_MAX, out);
	assert_string_equal(out, "9999-12-31T23:59:59Z");
	sl_time_rfc3339(INT64_MIN, out);
	assert_string_equal(out, "0000-01-01T00:00:00Z");
}

static void snprintf_checked(void **state)
{
	char buf[8];

	assert_true(sl_snprintf_ok(buf, sizeof(buf), "%s-%d", "ab", 1234));
	assert_string_equal(buf, "ab-1234");
	/* one byte more than fits: refused, and what is there is still a string */
	assert_false(sl_snprintf_ok(buf, sizeof(buf), "%s-%d", "ab", 12345));
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
	assert_false(sl_snprintf_ok(buf, 0, "x"));
	assert_true(sl_snprintf_ok(buf, 1, "%s", ""));
	assert_string_equal(buf, "");
}

static void url_redaction(void **state)
{
	char out[256];
	sl_url_redact("https://user:s3cret@example.com/repo.git", out, sizeof(out));
	assert_string_equal(out, "https://example.com/repo.git");
	sl_url_redact("https://tok@en@example.com/a@b", out, sizeof(out));
	assert_string_equal(out, "https://example.com/a@b");
	sl_url_redact("ssh://git@host:22/x", out, sizeof(out));
	assert_string_equal(out, "ssh://host:22/x");
	sl_url_redact("file:///tmp/x", out, sizeof(out));
	assert_string_equal(out, "file:///tmp/x");
	assert_null(strstr(out, "s3cret"));
}

static void read_beneath(void **state)
{
	char dir[] = "/tmp/sl-base-XXXXXX";
	char path[512];
	struct sl_buf b;
	struct sl_error e = {0};
	int rootfd;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/in.yaml", dir);
	f = fopen(path, "w");
	fputs("a: 1\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/escape.yaml", dir);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	snprintf(path, sizeof(path), "%s/inner.yaml", dir);
	assert_int_equal(symlink("in.yaml", path), 0);
	rootfd = open(dir, O_DIRECTORY | O_RDONLY);
	assert_true(rootfd >= 0);

	assert_int_equal(sl_file_read_beneath(rootfd, "in.yaml", 100, &b, &e), 0);
	assert_string_equal(b.data, "a: 1\n");
	sl_buf_free(&b);
	assert_int_equal(sl_file_read_beneath(rootfd, "inner.yaml", 100, &b, &e), 0);
	sl_buf_free(&b);
	assert_int_equal(sl_file_read_beneath(rootfd, "escape.yaml", 100, &b, &e), SL_EINVALID);
	assert_non_null(strstr(e.msg, "leaves the source root"));
	assert_int_equal(sl_file_read_beneath(rootfd, "../etc/passwd", 100, &b, &e), SL_EINVALID);
	assert_int_equal(sl_file_read_beneath(rootfd, "/etc/passwd", 100, &b, &e), SL_EINVALID);
	assert_int_equal(sl_file_read_beneath(rootfd, "in.yaml", 3, &b, &e), SL_ETOOLARGE);
	assert_int_equal(sl_file_read_beneath(rootfd, "missing.yaml", 100, &b, &e), SL_ENOTFOUND);
	/* a FIFO (a file swapped for one after the directory was listed) is
	 * refused at once, not waited on for a writer */
	snprintf(path, sizeof(path), "%s/fifo.yaml", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(sl_file_read_beneath(rootfd, "fifo.yaml", 100, &b, &e), SL_EINVALID);
	assert_non_null(strstr(e.msg, "not a regular file"));
	{
		int ffd = sl_open_beneath_walk(rootfd, "fifo.yaml", O_RDONLY | O_NONBLOCK, &e);
		assert_true(ffd >= 0);
		close(ffd);
	}

	/* the component walk used without openat2 follows the same rules */
	snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/sub/up.yaml", dir);
	assert_int_equal(symlink("../in.yaml", path), 0);
	snprintf(path, sizeof(path), "%s/sub/out.yaml", dir);
	assert_int_equal(symlink("../../etc/passwd", path), 0);
	int fd = sl_open_beneath_walk(rootfd, "sub/up.yaml", O_RDONLY, &e);
	assert_true(fd >= 0);
	close(fd);
	fd = sl_open_beneath_walk(rootfd, "sub/../in.yaml", O_RDONLY, &e);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sl_open_beneath_walk(rootfd, "inner.yaml", O_RDONLY, &e) >= 0, 1);
	assert_int_equal(sl_open_beneath_walk(rootfd, "sub/out.yaml", O_RDONLY, &e), SL_EINVALID);
	assert_int_equal(sl_open_beneath_walk(rootfd, "escape.yaml", O_RDONLY, &e), SL_EINVALID);
	assert_int_equal(sl_open_beneath_walk(rootfd, "../x", O_RDONLY, &e), SL_EINVALID);
	assert_int_equal(sl_open_beneath_walk(rootfd, "nope/x", O_RDONLY, &e), SL_ENOTFOUND);
	assert_int_equal(sl_open_beneath(rootfd, "sub/out.yaml", O_RDONLY, &e), SL_EINVALID);
	close(rootfd);

	snprintf(path, sizeof(path), "%s/w.txt", dir);
	assert_int_equal(sl_file_write_atomic(path, "hello", 5, 0600, &e), 0);
	assert_int_equal(sl_file_read(path, 100, &b, &e), 0);
	assert_string_equal(b.data, "hello");
	sl_buf_free(&b);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

/* Counts the values an owning map frees, so a leak or a double free shows. */
static int freed;

static void count_free(void *p)
{
	freed++;
	free(p);
}

/* The 64 SipHash-2-4 vectors of the reference implementation (vectors.h,
 * vectors_sip64 read as little-endian words): key 00..0f, message 00..len-1. */
static const uint64_t sip24_vectors[64] = {
    0x726fdb47dd0e0e31ull, 0x74f839c593dc67fdull, 0x0d6c8009d9a94f5aull, 0x85676696d7fb7e2dull,
    0xcf2794e0277187b7ull, 0x18765564cd99a68dull, 0xcbc9466e58fee3ceull, 0xab0200f58b01d137ull,
    0x93f5f5799a932462ull, 0x9e0082df0ba9e4b0ull, 0x7a5dbbc594ddb9f3ull, 0xf4b32f46226bada7ull,
    0x751e8fbc860ee5fbull, 0x14ea5627c0843d90ull, 0xf723ca908e7af2eeull, 0xa129ca6149be45e5ull,
    0x3f2acc7f57c29bdbull, 0x699ae9f52cbe4794ull, 0x4bc1b3f0968dd39cull, 0xbb6dc91da77961bdull,
    0xbed65cf21aa2ee98ull, 0xd0f2cbb02e3b67c7ull, 0x93536795e3a33e88ull, 0xa80c038ccd5ccec8ull,
    0xb8ad50c6f649af94ull, 0xbce192de8a85b8eaull, 0x17d835b85bbb15f3ull, 0x2f2e6163076bcfadull,
    0xde4daaaca71dc9a5ull, 0xa6a2506687956571ull, 0xad87a3535c49ef28ull, 0x32d892fad841c342ull,
    0x7127512f72f27cceull, 0xa7f32346f95978e3ull, 0x12e0b01abb051238ull, 0x15e034d40fa197aeull,
    0x314dffbe0815a3b4ull, 0x027990f029623981ull, 0xcadcd4e59ef40c4dull, 0x9abfd8766a33735cull,
    0x0e3ea96b5304a7d0ull, 0xad0c42d6fc585992ull, 0x187306c89bc215a9ull, 0xd4a60abcf3792b95ull,
    0xf935451de4f21df2ull, 0xa9538f0419755787ull, 0xdb9acddff56ca510ull, 0xd06c98cd5c0975ebull,
    0xe612a3cb9ecba951ull, 0xc766e62cfcadaf96ull, 0xee64435a9752fe72ull, 0xa192d576b245165aull,
    0x0a8787bf8ecb74b2ull, 0x81b3e73d20b49b6full, 0x7fa8220ba3b2eceaull, 0x245731c13ca42499ull,
    0xb78dbfaf3a8d83bdull, 0xea1ad565322a1a0bull, 0x60e61c23a3795013ull, 0x6606d7e446282b93ull,
    0x6ca4ecb15c5f91e1ull, 0x9f626da15c9625f3ull, 0xe51b38608ef25f57ull, 0x958a324ceb064572ull,
};

static void siphash_vectors(void **state)
{
	uint8_t key[16], msg[64];
	(void)state;
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (size_t len = 0; len < 64; len++)
		assert_int_equal(sl_siphash24(key, msg, len), sip24_vectors[len]);
	/* The process key is fixed for the life of the process. */
	assert_int_equal(sl_hash_keyed("default/app", 11), sl_hash_keyed("default/app", 11));
	assert_int_not_equal(sl_hash_keyed("default/app", 11), sl_hash_keyed("default/apq", 11));
}

/* Enough keys to grow the table several times: every one is found, replaced
 * and removed through the keyed bucket hash. */
static void map_many(void **state)
{
	struct sl_map m;
	char key[32];
	(void)state;
	sl_map_init(&m);
	for (uintptr_t i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "ns-%lu/name", (unsigned long)i);
		assert_int_equal(sl_map_put(&m, key, (void *)(i + 1), NULL), 0);
	}
	assert_int_equal(m.n, 5000);
	for (uintptr_t i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "ns-%lu/name", (unsigned long)i);
		assert_ptr_equal(sl_map_get(&m, key), (void *)(i + 1));
	}
	for (uintptr_t i = 0; i < 5000; i += 2) {
		snprintf(key, sizeof(key), "ns-%lu/name", (unsigned long)i);
		assert_ptr_equal(sl_map_del(&m, key), (void *)(i + 1));
	}
	assert_int_equal(m.n, 2500);
	for (uintptr_t i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "ns-%lu/name", (unsigned long)i);
		assert_ptr_equal(sl_map_get(&m, key), i % 2 ? (void *)(i + 1) : NULL);
	}
	assert_null(sl_map_get(&m, "ns-5000/name"));
	sl_map_free(&m, NULL);
}

static void map_owning(void **state)
{
	struct sl_map m;
	void *old = NULL;
	char key[16], *v;

	freed = 0;
	sl_map_init_owning(&m, count_free);
	/* many keys: the table grows under them */
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_non_null(v = sl_strdup(key));
		assert_int_equal(sl_map_put(&m, key, v, NULL), 0);
	}
	assert_int_equal(m.n, 200);
	assert_string_equal(sl_map_get(&m, "k150"), "k150");

	/* replaced without old: the map frees the previous value */
	assert_int_equal(sl_map_put(&m, "k1", sl_strdup("one"), NULL), 0);
	assert_int_equal(freed, 1);
	assert_string_equal(sl_map_get(&m, "k1"), "one");
	/* the same value again is not freed */
	assert_int_equal(sl_map_put(&m, "k1", sl_map_get(&m, "k1"), NULL), 0);
	assert_int_equal(freed, 1);
	/* replaced with old: the previous value is the caller's */
	assert_int_equal(sl_map_put(&m, "k2", sl_strdup("two"), &old), 0);
	assert_int_equal(freed, 1);
	assert_string_equal(old, "k2");
	free(old);

	/* drop frees and says whether the key was there */
	assert_true(sl_map_drop(&m, "k3"));
	assert_int_equal(freed, 2);
	assert_false(sl_map_drop(&m, "k3"));
	assert_null(sl_map_get(&m, "k3"));
	/* del hands the value back */
	assert_non_null(v = sl_map_del(&m, "k4"));
	assert_int_equal(freed, 2);
	free(v);
	assert_int_equal(m.n, 198);

	/* free releases the rest and keeps the map usable and owning */
	sl_map_free(&m, NULL);
	assert_int_equal(freed, 200);
	assert_int_equal(m.n, 0);
	assert_null(sl_map_get(&m, "k5"));
	assert_int_equal(sl_map_put(&m, "again", sl_strdup("x"), NULL), 0);
	assert_true(sl_map_drop(&m, "again"));
	assert_int_equal(freed, 201);
	sl_map_free(&m, NULL);
}

static void map_borrowing(void **state)
{
	struct sl_map m;
	static char a[] = "a", b[] = "b";
	void *old = NULL;

	sl_map_init(&m);
	assert_null(sl_map_get(&m, "x"));
	assert_false(sl_map_drop(&m, "x"));
	assert_int_equal(sl_map_put(&m, "x", a, NULL), 0);
	assert_int_equal(sl_map_put(&m, "x", b, &old), 0);
	assert_ptr_equal(old, a);
	assert_string_equal(sl_map_key(&m, "x"), "x");
	/* values are the caller's: drop and free leave them alone */
	assert_true(sl_map_drop(&m, "x"));
	assert_int_equal(sl_map_put(&m, "y", a, NULL), 0);
	sl_map_free(&m, NULL);
	assert_string_equal(a, "a");
	assert_string_equal(b, "b");
}

static void file_trees(void **state)
{
	char dir[] = "/tmp/sl-base-XXXXXX";
	char path[512], outside[512];
	struct sl_error e = {0};
	struct stat st;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	/* mkdir -p: parents made, an existing directory is fine, a trailing
	 * slash is the same directory */
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(sl_file_mkdir_p(path, 0700, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(sl_file_mkdir_p(path, 0700, &e), 0);
	snprintf(path, sizeof(path), "%s/a/b/c/", dir);
	assert_int_equal(sl_file_mkdir_p(path, 0700, &e), 0);
	assert_int_equal(sl_file_mkdir_p("", 0700, &e), SL_EINVALID);
	/* a file in the way: the code says what went wrong, err names where */
	snprintf(path, sizeof(path), "%s/a/file", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/a/file/sub", dir);
	assert_int_equal(sl_file_mkdir_p(path, 0700, &e), SL_ENOTFOUND);
	assert_non_null(strstr(e.msg, path));
	snprintf(path, sizeof(path), "%s/a/file", dir);
	assert_int_equal(sl_file_mkdir_p(path, 0700, &e), SL_EEXIST);

	/* rm -rf removes the tree and the links in it, not what they point to */
	snprintf(outside, sizeof(outside), "%s/keep", dir);
	assert_int_equal(mkdir(outside, 0700), 0);
	snprintf(path, sizeof(path), "%s/keep/x", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/a/b/link", dir);
	assert_int_equal(symlink(outside, path), 0);
	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(sl_file_rm_rf(path, &e), 0);
	assert_int_equal(lstat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/keep/x", dir);
	assert_int_equal(stat(path, &st), 0);
	/* a missing path is already removed; a plain file is removed too */
	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(sl_file_rm_rf(path, &e), 0);
	snprintf(path, sizeof(path), "%s/keep/x", dir);
	assert_int_equal(sl_file_rm_rf(path, NULL), 0);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(sl_file_rm_rf(dir, &e), 0);
	assert_int_equal(lstat(dir, &st), -1);

	assert_int_equal(sl_error_from_errno(ENOENT), SL_ENOTFOUND);
	assert_int_equal(sl_error_from_errno(EEXIST), SL_EEXIST);
	assert_int_equal(sl_error_from_errno(EACCES), SL_EFORBIDDEN);
	assert_int_equal(sl_error_from_errno(ENOMEM), SL_ENOMEM);
	assert_int_equal(sl_error_from_errno(EIO), SL_EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(buf_limit),          cmocka_unit_test(grow_arrays),
	    cmocka_unit_test(error_buffer),       cmocka_unit_test(sha256_vectors),
	    cmocka_unit_test(durations_and_time), cmocka_unit_test(rfc3339_offsets), cmocka_unit_test(rfc3339_strict),
	    cmocka_unit_test(url_redaction),      cmocka_unit_test(read_beneath),
	    cmocka_unit_test(map_owning),         cmocka_unit_test(map_borrowing),
	    cmocka_unit_test(map_many),           cmocka_unit_test(siphash_vectors),
	    cmocka_unit_test(snprintf_checked),   cmocka_unit_test(md5_vectors),
	    cmocka_unit_test(file_trees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
