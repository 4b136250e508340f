/* Shared internals of src/kube: the client, its requests, its credentials
 * and discovery. */
#pragma once

#include "sluice/base-map.h"
#include "sluice/kube-watch.h"
#include "sluice/kube.h"

#include <curl/curl.h>

struct req;

/* Internal completion: res is built by the client; body ownership as in the
 * public result. Runs on the loop, never inside a curl callback. */
typedef void (*req_done_fn)(struct req *r, struct sl_kube_result *res, void *payload);
/* Streaming data of a 200 response (watches). Runs inside curl's write
 * callback: it must not call back into the client; it queues work and
 * marks the request with sl_kube__req_mark_pending(). Returns 0 or a negative code
 * that aborts the transfer (its result then has that code). */
typedef int (*req_data_fn)(struct req *r, const char *p, size_t n, void *payload);
/* Called after curl returned, for requests marked pending. */
typedef void (*req_drain_fn)(struct req *r, void *payload);

struct req_spec {
	enum sl_kube_verb verb;
	const char *method; /* GET, POST, PUT, PATCH, DELETE */
	const char *path;   /* "/api/v1/..." with query string */
	const char *body;   /* copied; NULL for none */
	size_t body_len;
	const char *content_type;
	unsigned timeout_ms;  /* 0: client default; watches give theirs */
	unsigned low_speed_s; /* >0: abort when no byte arrives for this long */
	bool no_retry;        /* watches restart themselves */
	req_done_fn done;
	req_data_fn data;
	req_drain_fn drain;
	void *payload;
};

/* Starts a request. 0: done will run exactly once (maybe SL_ECANCELED).
 * The returned handle is valid until done runs. */
int sl_kube__req_start(struct sl_kube *k, const struct req_spec *spec, struct req **ret);
/* Aborts a request: done is not called. Safe from inside data/drain. */
void sl_kube__req_cancel(struct req *r);
void sl_kube__req_mark_pending(struct req *r);

/* ---- credentials (creds.c) ----------------------------------------------
 * What a request must carry, kept apart from the transport: client.c asks
 * for the credentials to use now and reports a 401; creds.c reads token
 * files, runs the exec plugin and knows nothing of HTTP. */
struct kube_creds;

/* What to send on a request now. Pointers stay valid until the next call
 * into the credentials, except cert and key when cert_lasting: those live
 * as long as the client's configuration. */
struct kube_auth {
	const char *bearer;     /* "Authorization: Bearer" token, or NULL */
	const char *cert, *key; /* client certificate and key (PEM), or NULL */
	size_t cert_len, key_len;
	bool cert_lasting;
	const char *username, *password; /* basic auth, or NULL */
};

/* Runs on the loop when a fetch that sl_kube__creds_prepare() started has
 * ended: code 0, or a negative code with msg (never a secret). */
typedef void (*kube_creds_ready_fn)(int code, const char *msg, void *payload);

/* cfg is borrowed and must outlive the credentials; ready may run after any
 * sl_kube__creds_prepare() that returned 1, never from inside a call. */
int sl_kube__creds_new(struct sl_loop *loop, const struct sl_kube_config *cfg, kube_creds_ready_fn ready,
                       void *payload, struct kube_creds **ret);
/* Waits for a running exec plugin (bounded by its deadline); ready does not
 * run. Accepts NULL. */
void sl_kube__creds_free(struct kube_creds *c);
/* Before a request: 0 when the credentials are ready (a token file is
 * re-read once a minute); 1 when the exec plugin must run first (ready
 * follows); SL_EUNAUTHORIZED with detail in err when none can be had. */
int sl_kube__creds_prepare(struct kube_creds *c, struct sl_error *err);
void sl_kube__creds_get(const struct kube_creds *c, struct kube_auth *ret);
/* After a 401: forgets what can be fetched again (exec token, token file).
 * True when a retry may help. */
bool sl_kube__creds_unauthorized(struct kube_creds *c);

/* ---- the client (client.c) ------------------------------------------------ */

struct sl_kube {
	struct sl_loop *loop;
	struct sl_kube_config *cfg;
	CURLM *multi;
	struct sl_loop_timer *curl_timer;
	struct sl_kube_opts opts;
	char user_agent[128];
	char *url_base;   /* scheme://host:port used in URLs */
	char *connect_to; /* CURLOPT_CONNECT_TO entry for tls-server-name */
	struct curl_slist *connect_to_list;

	struct kube_creds *creds;
	struct req *auth_wait; /* requests waiting for the credentials */

	struct req *reqs;    /* every live request */
	struct req *pending; /* requests with queued stream data */
	unsigned inflight;
	unsigned running;    /* requests handed to curl */
	uint64_t last_rx_ms; /* a byte last came from the server (or waiting began) */
	struct req *probe;   /* the health probe in flight */
	uint64_t probe_started_ms;
	struct sl_loop_timer *health_timer;
	/* a transfer failed without an answer, and none was answered since */
	bool unreachable;
	struct sl_kube_informer *informers; /* every informer of this client */
	struct sl_kube_metrics metrics;
	bool freeing;
	unsigned depth; /* nesting of curl driving, to avoid recursion */

	struct kube_events *events; /* the Event recorder (events.c) */

	/* discovery: "group/version" -> struct gv */
	struct sl_map gvs;
	struct sl_loop_timer *soon_timer;
	struct soon *soon_head, *soon_tail;
};

/* ---- the Event recorder (events.c) ------------------------------------------ */

struct kube_events;
/* max: keys remembered (0: 4096); window_s: a repeat this long after the
 * last one creates a new Event (0: 600). */
int sl_kube__events_new(struct sl_kube *k, size_t max, unsigned window_s, struct kube_events **ret);
/* After every request of the client has completed. Accepts NULL. */
void sl_kube__events_free(struct kube_events *es);

/* Runs fn(payload, canceled) on the next loop round (canceled true when the
 * client is freed first). */
struct soon {
	void (*fn)(void *payload, bool canceled);
	void *payload;
	struct soon *next;
};
int sl_kube__soon(struct sl_kube *k, void (*fn)(void *payload, bool canceled), void *payload);
/* The server answered again after transfers failed without an answer:
 * informers waiting out their backoff retry now instead of up to 30 s
 * later (informer.c). */
void sl_kube__informers_wake(struct sl_kube *k);

/* The headers of a request (Accept, Content-Type): never a credential, as
 * curl frees the list without wiping it. */
int sl_kube__req_headers(const char *content_type, struct curl_slist **ret);

/* Builds "/api/v1/namespaces/ns/pods/name/status" style paths. */
int sl_kube__path(const struct sl_kube_resource *r, const char *ns, const char *name, const char *sub,
                  struct sl_buf *out);
/* Appends "&k=v" (or "?k=v" first) with v URL-escaped. */
int sl_kube__query(struct sl_buf *b, const char *k, const char *v);
void sl_kube__discovery_free(struct sl_kube *k);
/* The cache key of an object: "ns/name", or "name" when cluster-scoped. */
int sl_kube__key(const char *ns, const char *name, char *out, size_t outsz);
/* The resource a ref names outright (ref->resource set): no discovery.
 * SL_ETOOLARGE when a name does not fit struct sl_kube_resource. */
int sl_kube__resource_from_ref(const struct sl_kube_ref *ref, struct sl_kube_resource *ret);

/* ---- list pages (verbs.c, informer.c; pure) ------------------------------- */

/* Is a 200 answer to a list a list page: an object whose items is an array
 * (or null, as Go writes an empty slice)? SL_EINVALID when not. */
int sl_kube__list_page_check(const cJSON *page);
/* One page of a paged list: its continue token copied into *next (NULL on
 * the last page), its items array detached into *items when pager (else
 * NULL and the items stay in the page), and the page merged into *list: the
 * first one (*list NULL) becomes the list, taken from *page, with an items
 * array whatever it had; later pages give it their items. SL_ENOMEM leaves
 * *next and *items NULL. */
int sl_kube__list_page(cJSON **list, cJSON **page, bool pager, cJSON **items, char **next);
/* The merged list as reported: without continue and remainingItemCount. */
void sl_kube__list_finish(cJSON *list);
/* The informer's keeping of a page: every object of items (detached from
 * it), given kind and api_version when it has none, trimmed by transform
 * (NULL: metadata.managedFields dropped), into fresh under its key; one
 * without a usable key is dropped. Returns 0, or SL_ENOMEM when an object
 * could not be kept (the list must be read again). */
int sl_kube__informer_keep(struct sl_map *fresh, cJSON *items, const char *kind, const char *api_version,
                           void (*transform)(cJSON *obj, void *payload), void *payload);
/* Copies obj's metadata.resourceVersion into *rv (freeing the old one) when
 * it has a non-empty one; SL_ENOMEM keeps the old one. */
int sl_kube__informer_rv(const cJSON *obj, char **rv);

/* A result with room for its strings (the public struct points into it). */
struct kube_res {
	struct sl_kube_result res;
	char message[768];
	char reason[64];
	char field[256];
};
/* Fills kr for a failure that never reached the server. */
void sl_kube__res_fail(struct kube_res *kr, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
