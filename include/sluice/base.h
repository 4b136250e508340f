/* base: errors, cleanup helpers, bounded buffers, logging, time, hashing and
 * safe file access. Uses libc only; every other module builds on it. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- errors ------------------------------------------------------------ */

/* Functions return 0 on success or one of these negative codes. Callers act
 * on the code; the human detail goes into a caller-supplied struct sl_error. */
enum {
	SL_OK = 0,
	SL_ENOTFOUND = -1000, /* object, file or key does not exist */
	SL_EEXIST,            /* already exists */
	SL_ECONFLICT,         /* resourceVersion or apply conflict */
	SL_EGONE,             /* 410: resourceVersion too old, continue expired */
	SL_EUNAUTHORIZED,     /* 401 */
	SL_EFORBIDDEN,        /* 403 */
	SL_EINVALID,          /* invalid input (422, bad YAML, bad flag) */
	SL_ETOOMANY,          /* 429 after retries */
	SL_ETOOLARGE,         /* a limit was hit */
	SL_ETIMEOUT,          /* an operation timed out */
	SL_EIO,               /* I/O or transport failure */
	SL_ENOMEM,            /* allocation failed */
	SL_EUNAVAILABLE,      /* 5xx, server or remote unavailable */
	SL_EUNSUPPORTED,      /* not supported */
	SL_EINTERNAL,         /* a bug or an unexpected answer */
	SL_ECANCELED,         /* stopped before it finished */
	SL__EMAX
};

#define SL_ERRMSG_MAX 1024

/* Detail for a failed call. Always NUL-terminated; msg is "" when unset. */
struct sl_error {
	int code;
	char msg[SL_ERRMSG_MAX];
};

/* Short fixed name of a code, e.g. "not found". Never NULL. */
const char *sl_strerror(int code);

/* Records code and a printf-style message in err (err may be NULL) and
 * returns code, so a caller can write `return sl_error_set(err, ...)`. */
int sl_error_set(struct sl_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int sl_error_setv(struct sl_error *err, int code, const char *fmt, va_list ap);
/* Prefixes the existing message with "prefix: " (err may be NULL). */
void sl_error_prefix(struct sl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_error_clear(struct sl_error *err);
/* The code of a libc failure: ENOENT and ENOTDIR are SL_ENOTFOUND, EEXIST
 * SL_EEXIST, EACCES and EPERM SL_EFORBIDDEN, EXDEV and ELOOP SL_EINVALID,
 * ENOMEM SL_ENOMEM, anything else SL_EIO. e is a positive errno. */
int sl_error_from_errno(int e);

/* ---- cleanup helpers (systemd style) ---------------------------------- */

#define _cleanup_(f) __attribute__((cleanup(f)))
#define TAKE_PTR(p)                      \
	({                               \
		__typeof__(p) _p_ = (p); \
		(p) = NULL;              \
		_p_;                     \
	})
#define SL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SL_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define SL_MAX(a, b)     ((a) > (b) ? (a) : (b))

/* NULL and "" are the same: both mean unset. */
static inline bool sl_streq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static inline void sl_freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(sl_freep)
void sl_closep(int *fd); /* closes *fd when >= 0 */
#define _cleanup_close_ _cleanup_(sl_closep)

/* Returns SL_ENOMEM from the calling function when p is NULL, so checking an
 * allocation (malloc, strdup, cJSON_Add*, cJSON_Create*) takes one line, as
 * libgit2's GIT_ERROR_CHECK_ALLOC. Whatever the function holds must be
 * released by _cleanup_ handlers. */
#define SL_CHECK_ALLOC(p)                 \
	do {                              \
		if (!(p))                 \
			return SL_ENOMEM; \
	} while (0)

/* Allocation helpers returning NULL on failure (callers check). */
char *sl_strdup(const char *s);
char *sl_strndup(const char *s, size_t n);
char *sl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* snprintf that says whether the whole output fit (as systemd's
 * snprintf_ok): false on truncation or an encoding error, when buf holds
 * a cut (still NUL-terminated when n > 0) string the caller must not use. */
bool sl_snprintf_ok(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool sl_str_has_suffix(const char *s, const char *suffix);
bool sl_str_has_prefix(const char *s, const char *prefix);

/* ---- growing arrays ------------------------------------------------------ */

/* Makes room for at least need elements of elem bytes in *p, whose capacity is
 * *cap: the capacity doubles, starting at min. On failure (SL_ENOMEM) *p and
 * *cap are unchanged. */
int sl_grow(void **p, size_t *cap, size_t need, size_t elem, size_t min);
#define SL_GROW(ptr, cap, need, min) sl_grow((void **)&(ptr), &(cap), (need), sizeof(*(ptr)), (min))

/* ---- bounded buffers ---------------------------------------------------- */

/* A growable byte buffer that refuses to grow past max (SL_ETOOLARGE).
 * data is always NUL-terminated when non-NULL. Owner frees with sl_buf_free. */
struct sl_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void sl_buf_init(struct sl_buf *b, size_t max);
void sl_buf_free(struct sl_buf *b);  /* accepts a zeroed buffer */
void sl_buf_reset(struct sl_buf *b); /* len = 0, keeps memory */
int sl_buf_append(struct sl_buf *b, const void *p, size_t n);
int sl_buf_puts(struct sl_buf *b, const char *s);
int sl_buf_printf(struct sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes. */
void sl_buf_consume(struct sl_buf *b, size_t n);
/* Hands the data to the caller (free() it) and resets the buffer. */
char *sl_buf_steal(struct sl_buf *b);

/* ---- logging ------------------------------------------------------------ */

enum sl_log_level { SL_LOG_DEBUG, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR };
enum sl_log_format { SL_LOG_TEXT, SL_LOG_JSON };

void sl_log_setup(enum sl_log_level min, enum sl_log_format fmt);
int sl_log_level_parse(const char *s, enum sl_log_level *ret);
bool sl_log_enabled(enum sl_log_level level);
/* One line on stderr. Only the top of a flow logs; library code returns errors. */
void sl_log(enum sl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line about an object: names its kind, namespace (may be NULL) and name. */
void sl_log_obj(enum sl_log_level level, const char *kind, const char *ns, const char *name, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

#define sl_debug(...) sl_log(SL_LOG_DEBUG, __VA_ARGS__)
#define sl_info(...)  sl_log(SL_LOG_INFO, __VA_ARGS__)
#define sl_warn(...)  sl_log(SL_LOG_WARN, __VA_ARGS__)
#define sl_err(...)   sl_log(SL_LOG_ERROR, __VA_ARGS__)

/* ---- time --------------------------------------------------------------- */

/* Monotonic milliseconds; for intervals and deadlines. */
uint64_t sl_now_ms(void);
/* The same clock in microseconds; for durations reported as metrics. */
uint64_t sl_now_us(void);
/* Wall clock seconds since the epoch. */
int64_t sl_wall_s(void);
/* RFC 3339 UTC, e.g. 2026-11-25T11:23:26Z, into out (>= 21 bytes); a time
 * before year 0 or after year 9999 is written as that year's first or last
 * second. */
void sl_time_rfc3339(int64_t epoch_s, char out[static 32]);
/* Parses RFC 3339 strictly (exact digits and ranges, Z or offset, optional
 * fraction of at least one digit; a leap second counts as the next one). */
int sl_time_parse_rfc3339(const char *s, int64_t *ret);
/* Parses a Go-style duration ("90s", "1m", "1h30m", "250ms") into ms; at
 * most 1e15 ms in all. */
int sl_duration_parse_ms(const char *s, uint64_t *ret);
/* A uniformly random value in [lo, hi]. Not for cryptography. */
uint64_t sl_rand_between(uint64_t lo, uint64_t hi);

/* ---- hashing ------------------------------------------------------------ */

#define SL_SHA256_LEN 32
struct sl_sha256 {
	uint32_t h[8];
	uint64_t n;
	uint8_t buf[64];
	size_t fill;
};
void sl_sha256_init(struct sl_sha256 *c);
void sl_sha256_update(struct sl_sha256 *c, const void *p, size_t n);
void sl_sha256_final(struct sl_sha256 *c, uint8_t out[SL_SHA256_LEN]);
/* Lowercase hex of the digest of p, into out (65 bytes with NUL). */
void sl_sha256_hex(const void *p, size_t n, char out[static 65]);
void sl_hex(const uint8_t *p, size_t n, char *out /* 2n+1 */);
/* MD5, only where a peer's format asks for it (Arcane's configuration-hash):
 * never for anything that must resist an attacker. */
#define SL_MD5_LEN 16
struct sl_md5 {
	uint32_t h[4];
	uint64_t n;
	uint8_t buf[64];
	size_t fill;
};
void sl_md5_init(struct sl_md5 *c);
void sl_md5_update(struct sl_md5 *c, const void *p, size_t n);
void sl_md5_final(struct sl_md5 *c, uint8_t out[SL_MD5_LEN]);
/* Lowercase hex of the MD5 of p, into out (33 bytes with NUL). */
void sl_md5_hex(const void *p, size_t n, char out[static 33]);
/* SipHash-2-4 of p under key (read as two little-endian words, as the
 * reference implementation does). */
uint64_t sl_siphash24(const uint8_t key[static 16], const void *p, size_t n);
/* SipHash-2-4 under a random key drawn once per process (thread-safe): the
 * bucket hash of tables keyed by names users choose, so nobody can pick names
 * that all land in one bucket. Differs between processes: never persist it. */
uint64_t sl_hash_keyed(const void *p, size_t n);
/* Constant-time comparison of equal-length byte strings. */
bool sl_memeq_ct(const void *a, const void *b, size_t n);

/* ---- files -------------------------------------------------------------- */

/* Reads a whole file into out (which the call initialises); SL_ETOOLARGE when
 * it is bigger than max. */
int sl_file_read(const char *path, size_t max, struct sl_buf *out, struct sl_error *err);
/* Opens relpath beneath the directory rootfd and reads it: a path with "..",
 * an absolute path or a symlink that leaves the root is refused (SL_EINVALID). */
int sl_file_read_beneath(int rootfd, const char *relpath, size_t max, struct sl_buf *out,
                         struct sl_error *err);
/* Opens relpath beneath rootfd with the same rules; returns an fd or a code.
 * Uses openat2(RESOLVE_BENEATH), or sl_open_beneath_walk where the kernel (or
 * valgrind) lacks it. */
int sl_open_beneath(int rootfd, const char *relpath, int flags, struct sl_error *err);
/* The same rules, resolved one component at a time without openat2. */
int sl_open_beneath_walk(int rootfd, const char *relpath, int flags, struct sl_error *err);
/* Writes data to path atomically (temporary file + rename). */
int sl_file_write_atomic(const char *path, const void *data, size_t n, int mode, struct sl_error *err);
/* Removes path and, when it is a directory, everything beneath it, like
 * rm -rf: symlinks are removed, never followed; a missing path is not an
 * error. On a failure the rest is still removed and the first failure is
 * returned (err names the entry). */
int sl_file_rm_rf(const char *path, struct sl_error *err);
/* Creates path and its missing parents with mode, like mkdir -p; an
 * existing directory is not an error, anything else there is (SL_EEXIST). */
int sl_file_mkdir_p(const char *path, int mode, struct sl_error *err);

/* ---- URLs --------------------------------------------------------------- */

/* Copies url into out with any user info ("user:pass@") removed, for logs. */
void sl_url_redact(const char *url, char *out, size_t outsz);
