/* server: the process-level HTTP endpoints of `sluice run` (health, readiness,
 * Prometheus metrics, the Git webhook), served by libmicrohttpd on the sluice
 * event loop: handlers run on the loop thread and read state without locks.
 * Also the pure pieces they use: a metrics registry with its text format, the
 * webhook signature check and a token bucket. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/base.h"

struct sl_loop;
struct sl_server;
struct sl_server_metrics;
struct sl_server_metric;

/* ---- metrics registry (pure) ------------------------------------------------ */

enum sl_server_metric_type {
	SL_SERVER_METRIC_COUNTER,
	SL_SERVER_METRIC_GAUGE,
	SL_SERVER_METRIC_HISTOGRAM,
};

#define SL_SERVER_METRIC_MAX_LABELS  8
#define SL_SERVER_METRIC_MAX_BUCKETS 32
/* Children (distinct label value sets) of one family; more are refused
 * (SL_ETOOLARGE), so a label fed from outside cannot grow memory without end. */
#define SL_SERVER_METRIC_MAX_CHILDREN 4096

int sl_server_metrics_new(struct sl_server_metrics **ret);
void sl_server_metrics_free(struct sl_server_metrics *m); /* accepts NULL; frees every family */

/* Registers a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]* and be new
 * (SL_EEXIST otherwise); labels is a comma-separated list of label names
 * ("verb,code") or NULL; buckets (histograms only; NULL: the Prometheus
 * defaults .005 ... 10) are upper bounds in increasing order, +Inf is added.
 * *ret is owned by the registry. */
int sl_server_metrics_register(struct sl_server_metrics *m, enum sl_server_metric_type type, const char *name,
                               const char *help, const char *labels, const double *buckets, size_t n_buckets,
                               struct sl_server_metric **ret);

/* values holds one string per label of the family (NULL when it has none).
 * Counters: add (v >= 0). Gauges: add or set. Counters may also be set: a
 * collector copying a counter another module keeps sets it (a module that
 * was recreated starts again from 0, which Prometheus reads as a counter
 * reset). Histograms: observe. SL_EINVALID when the call does not fit the
 * type or v is NaN. */
int sl_server_metric_add(struct sl_server_metric *f, const char *const *values, double v);
int sl_server_metric_set(struct sl_server_metric *f, const char *const *values, double v);
int sl_server_metric_observe(struct sl_server_metric *f, const char *const *values, double v);
/* Sets a histogram child to a copy of one kept elsewhere (a collector
 * copying another module's): counts holds n = buckets + 1 per-bucket counts
 * (not cumulative, +Inf last) for the family's buckets, sum their sum.
 * SL_EINVALID when f is not a histogram, n does not match or sum is NaN. */
int sl_server_metric_set_histogram(struct sl_server_metric *f, const char *const *values,
                                   const uint64_t *counts, size_t n, double sum);
/* Drops every child of a gauge family (a collector that rebuilds a gauge by
 * label, e.g. streams by phase, clears it first so vanished labels go). */
void sl_server_metric_clear(struct sl_server_metric *f);
/* The current value of a counter or gauge child, or NAN when absent. */
double sl_server_metric_get(const struct sl_server_metric *f, const char *const *values);

/* Collectors run before each rendering, on the thread that renders (the loop
 * thread for the server); they copy counters other modules keep in plain
 * structs into the registry. */
typedef void (*sl_server_metrics_collect_fn)(struct sl_server_metrics *m, void *payload);
int sl_server_metrics_add_collector(struct sl_server_metrics *m, sl_server_metrics_collect_fn fn,
                                    void *payload);

/* Runs the collectors and appends the registry in the Prometheus text
 * exposition format 0.0.4 (families in registration order, children in
 * label order) to out. */
int sl_server_metrics_render(struct sl_server_metrics *m, struct sl_buf *out);

/* ---- webhook check (pure) -------------------------------------------------------- */

/* Checks a webhook request against the shared secret: GitHub's
 * X-Hub-Signature-256 ("sha256=<hex HMAC-SHA256 of the body>") or GitLab's
 * X-Gitlab-Token (the secret itself); either header may be NULL. Comparisons
 * are constant-time. Returns 0 when one header matches, SL_EUNAUTHORIZED
 * when neither header is present or the secret is empty, SL_EFORBIDDEN when
 * a header is present and wrong. err never contains the secret or the
 * signature. */
int sl_server_webhook_verify(const char *secret, size_t secret_len, const char *github_sig,
                             const char *gitlab_token, const void *body, size_t body_len,
                             struct sl_error *err);
/* HMAC-SHA256 of body with key, lowercase hex into out (65 bytes). */
int sl_server_webhook_hmac_hex(const void *key, size_t key_len, const void *body, size_t body_len,
                               char out[static 65]);

/* ---- token bucket (pure) --------------------------------------------------------- */

/* rate tokens per second, at most burst stored; starts full. Time is passed
 * in (sl_now_ms() in production) so tests need no clock. */
struct sl_server_token_bucket {
	double rate;
	double burst;
	double tokens;
	uint64_t last_ms;
};
void sl_server_token_bucket_init(struct sl_server_token_bucket *tb, double rate, double burst,
                                 uint64_t now_ms);
/* Takes one token: true when there was one. */
bool sl_server_token_bucket_take(struct sl_server_token_bucket *tb, uint64_t now_ms);
/* Milliseconds until a token is available (0: now). */
uint64_t sl_server_token_bucket_wait_ms(const struct sl_server_token_bucket *tb, uint64_t now_ms);

/* ---- listen address (pure) ----------------------------------------------------- */

/* Parses a --listen value: ":8888" (every IPv4 address), "HOST:PORT" with an
 * IPv4 literal or "localhost", "[IPv6]:PORT". Port 0 picks a free one. Fills
 * a struct sockaddr_storage (ss, sslen in/out). */
int sl_server_parse_listen(const char *s, void *ss, unsigned *sslen, struct sl_error *err);

/* ---- the server ------------------------------------------------------------------ */

/* Probe callbacks return true when the answer is "yes"; *why (may be left
 * NULL) names what is missing, for the 503 body. NULL callbacks mean "yes". */
typedef bool (*sl_server_probe_fn)(void *payload, const char **why);

struct sl_server_opts {
	const char *listen; /* NULL: ":8888" */
	/* /readyz, /health/ready: caches synced and, with leader election,
	 * leading. /startup: caches synced once. /healthz, /health: the loop
	 * answers and live() agrees. */
	sl_server_probe_fn live;
	sl_server_probe_fn ready;
	sl_server_probe_fn started;
	/* Borrowed; rendered on GET /metrics. NULL: /metrics answers 404. */
	struct sl_server_metrics *metrics;
	/* POST /hooks/git: the secret is read from this file (at most 4 KiB,
	 * trailing newline dropped) on every request, so a rotated secret needs
	 * no restart. NULL: the endpoint answers 404. */
	const char *webhook_secret_file;
	/* Called on the loop for each accepted webhook (the source's fetch-now). */
	void (*trigger)(void *payload);
	size_t max_body;      /* webhook body limit; 0: 1 MiB */
	double webhook_rate;  /* requests per second; 0: 1 */
	double webhook_burst; /* 0: 10 */
	unsigned timeout_s;   /* idle connection timeout; 0: 30 */
	unsigned max_conns;   /* 0: 64 */
	void *payload;        /* passed to every callback */
};

/* Binds and starts serving on loop. Counters of the server itself
 * (requests by path and code, webhook outcomes) go to opts->metrics. */
int sl_server_new(struct sl_loop *loop, const struct sl_server_opts *opts, struct sl_server **ret,
                  struct sl_error *err);
/* The bound port (useful with port 0). */
unsigned sl_server_port(const struct sl_server *s);
/* Stops accepting, closes connections, frees. Accepts NULL. */
void sl_server_free(struct sl_server *s);
