/* kube: the Kubernetes API client. Configuration (kubeconfig, exec plugins,
 * in-cluster), every verb, server-side apply, discovery, watches and
 * informers, all asynchronous on the event loop of sluice/loop.h through one
 * libcurl multi handle. Everything here runs on the loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sluice/base.h"
#include "sluice/loop.h"

struct sl_kube;
struct sl_kube_informer;

/* ---- configuration ------------------------------------------------------ */

/* Resolved connection settings. Read-only for users; the client owns it once
 * handed to sl_kube_new(). Byte blobs are PEM, not NUL-counted (len given). */
struct sl_kube_exec {
	char *command;
	char **args;       /* NULL-terminated */
	char **env;        /* NULL-terminated "NAME=value" pairs added to the environment */
	char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
	bool provide_cluster_info;
};

struct sl_kube_config {
	char *server;                  /* https://host:port, no trailing slash */
	char *tls_server_name;         /* SNI/verification name override, or NULL */
	char *ns;                      /* default namespace; "default" when unset */
	char *context;                 /* context name used, NULL in-cluster */
	bool insecure_skip_tls_verify; /* only when the kubeconfig says so */
	char *ca;                      /* CA bundle (PEM), or NULL: system store */
	size_t ca_len;
	char *cert, *key; /* client certificate and key (PEM), or NULL */
	size_t cert_len, key_len;
	char *token;               /* static bearer token, or NULL */
	char *token_file;          /* bearer token file: re-read every minute and on 401 */
	char *username, *password; /* basic auth, or NULL */
	struct sl_kube_exec *exec; /* exec credential plugin, or NULL */
	bool in_cluster;
};

struct sl_kube_config_opts {
	/* Kubeconfig path (--kubeconfig). NULL: in-cluster when
	 * KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG (first entry),
	 * else ~/.kube/config. */
	const char *kubeconfig;
	const char *context; /* NULL: current-context */
	/* Exec plugins run only from a kubeconfig the user pointed at
	 * (opts.kubeconfig or $KUBECONFIG); set this to also allow them from
	 * ~/.kube/config. */
	bool allow_exec_from_default;
};

/* Loads the configuration described above into *ret (free with
 * sl_kube_config_free). Relative file names in a kubeconfig are taken
 * relative to its directory; files are read now (token files again later). */
int sl_kube_config_load(const struct sl_kube_config_opts *opts, struct sl_kube_config **ret,
                        struct sl_error *err);
/* Parses kubeconfig text (YAML or JSON). base_dir resolves relative paths;
 * allow_exec false makes a user with an exec plugin an error. */
int sl_kube_config_parse(const char *text, size_t len, const char *context, const char *base_dir,
                         bool allow_exec, struct sl_kube_config **ret, struct sl_error *err);
/* In-cluster settings from KUBERNETES_SERVICE_HOST/PORT and the service
 * account files under dir (NULL: /var/run/secrets/kubernetes.io/serviceaccount). */
int sl_kube_config_in_cluster(const char *dir, struct sl_kube_config **ret, struct sl_error *err);
void sl_kube_config_free(struct sl_kube_config *cfg); /* accepts NULL */

/* ---- client ------------------------------------------------------------- */

struct sl_kube_opts {
	size_t max_body;        /* response body limit; 0: 64 MiB */
	size_t max_watch_line;  /* one watch event limit; 0: 16 MiB */
	unsigned timeout_ms;    /* per request (not watches); 0: 30 s */
	unsigned max_retries;   /* 429, 5xx with Retry-After, a broken connection (see client.c); 0: 5 */
	const char *user_agent; /* NULL: "sluice/<version>" */
	/* sl_kube_event: Events remembered to aggregate repeats (0: 4096), and
	 * how long after the last repeat one still counts (0: 600 s). */
	size_t event_cache;
	unsigned event_window_s;
	/* The health check of the connection, as HTTP/2 PING would do (client-go
	 * does it with PINGs): when requests or watches wait and no byte came
	 * for read_idle_ms, a GET /version probes the server; no answer within
	 * probe_timeout_ms and the connections are given up: everything running
	 * on them fails (watches restart) and the next request connects anew.
	 * A server that keeps a connection open and says nothing (hung, or a
	 * middlebox that lost the flow) is so noticed in under a minute instead
	 * of never. 0: 30 s and 15 s. */
	unsigned read_idle_ms;
	unsigned probe_timeout_ms;
};

/* Creates a client on loop. Takes cfg (also on failure). opts may be NULL. */
int sl_kube_new(struct sl_loop *loop, struct sl_kube_config *cfg, const struct sl_kube_opts *opts,
                struct sl_kube **ret, struct sl_error *err);
/* Cancels everything in flight (callbacks run with SL_ECANCELED, informers
 * must be freed before) and frees the client. Not from inside one of the
 * client's callbacks. Accepts NULL. */
void sl_kube_free(struct sl_kube *k);
const struct sl_kube_config *sl_kube_get_config(const struct sl_kube *k);
/* Requests started and not yet completed (watches not counted). */
unsigned sl_kube_inflight(const struct sl_kube *k);

/* ---- results ------------------------------------------------------------ */

/* Passed to every completion callback; valid only during the callback.
 * code: 0, or SL_ENOTFOUND (404), SL_EEXIST (409 AlreadyExists),
 * SL_ECONFLICT (409 Conflict, apply conflicts included), SL_EGONE (410),
 * SL_EUNAUTHORIZED (401), SL_EFORBIDDEN (403), SL_EINVALID (400/422),
 * SL_ETOOMANY (429 after retries), SL_EUNAVAILABLE (5xx), SL_ETIMEOUT,
 * SL_ETOOLARGE (body over the limit), SL_EIO (transport), SL_ECANCELED. */
struct sl_kube_result {
	int code;
	long http_status; /* 0 when no response was received */
	/* The decoded response (object, list or Status), or NULL. Owned by the
	 * result: a callback that keeps it sets res->body = NULL; otherwise it
	 * is freed when the callback returns. */
	cJSON *body;
	const char *message; /* server's Status message or transport error; "" if none; no secrets */
	const char *reason;  /* Status reason (e.g. "AlreadyExists"), "" if none */
	const char *field;   /* SL_EINVALID: first details.causes[].field, "" if none */
	unsigned pages;      /* sl_kube_list: number of pages fetched */
	struct sl_error err; /* code and a one-line description: verb, path, status, message */
};

typedef void (*sl_kube_cb)(struct sl_kube_result *res, void *payload);

/* True when res is a request the API server never answered: no connection,
 * or no response within the timeout (not a request refused, cancelled or
 * cut short here). What follows it would fail the same way until the server
 * is back. */
bool sl_kube_unreachable(const struct sl_kube_result *res);

/* ---- addressing --------------------------------------------------------- */

/* What a call addresses. Strings are borrowed for the duration of the call
 * that takes the ref. Give either kind (resolved through discovery, which
 * is refreshed when the kind is unknown) or resource (the plural; then
 * namespaced says the scope). ns NULL or "" addresses a cluster-scoped object,
 * or every namespace for list/watch. */
struct sl_kube_ref {
	const char *api_version; /* "v1", "batch/v1", "group/version" */
	const char *kind;
	const char *resource;
	bool namespaced; /* only read when resource is given */
	const char *ns;
	const char *name;
	const char *subresource; /* "status" or NULL */
};

/* Fills ref from an object's apiVersion, kind, metadata.namespace and name
 * (pointers into obj). SL_EINVALID when apiVersion, kind or name is missing. */
int sl_kube_ref_from_obj(const cJSON *obj, struct sl_kube_ref *ret);

/* ---- discovery ---------------------------------------------------------- */

struct sl_kube_resource {
	char group[256];
	char version[64];
	char kind[128];
	char plural[128];
	bool namespaced;
};

typedef void (*sl_kube_discover_cb)(int code, const struct sl_kube_resource *r, const struct sl_error *err,
                                    void *payload);
/* Resolves apiVersion + kind. Answers from the cache when it can; an unknown
 * kind refetches its group/version (CRDs appear while sluice runs). cb gets
 * SL_ENOTFOUND when the server does not know the kind. */
int sl_kube_discover(struct sl_kube *k, const char *api_version, const char *kind, sl_kube_discover_cb cb,
                     void *payload);
/* Cache only, no I/O: 0 and *ret, or SL_ENOTFOUND. */
int sl_kube_discover_cached(struct sl_kube *k, const char *api_version, const char *kind,
                            struct sl_kube_resource *ret);
/* Drops the discovery cache. */
void sl_kube_discover_invalidate(struct sl_kube *k);

/* ---- verbs -------------------------------------------------------------- */

struct sl_kube_call_opts {
	const char *field_manager; /* apply (required), create, update, patch */
	bool force;                /* apply: take over conflicting fields */
	bool dry_run;              /* dryRun=All */
	const char *propagation;   /* delete: "Foreground", "Background", "Orphan" or NULL */
	/* delete: DeleteOptions.preconditions.uid, NULL or "" for none; the
	 * call fails with SL_ECONFLICT when the object now has another uid
	 * (it was deleted and created again since it was observed) */
	const char *precondition_uid;
	const char *label_selector;   /* list */
	const char *field_selector;   /* list */
	unsigned limit;               /* list: page size (0: one unpaged request) */
	const char *resource_version; /* get/list */
	unsigned timeout_ms;          /* 0: the client's default */
};

/* Every verb returns 0 when the request was queued: cb then runs exactly once,
 * later, on the loop (never from inside the call). A negative code means
 * nothing was queued and cb will not run. Objects passed in are borrowed
 * (serialised before the call returns). opts may be NULL. */
int sl_kube_get(struct sl_kube *k, const struct sl_kube_ref *ref, const struct sl_kube_call_opts *opts,
                sl_kube_cb cb, void *payload);
/* Lists all pages (opts->limit per page) into one List in res->body: its
 * items, and the metadata (resourceVersion) of the first page. When a
 * continue token expires (410) the list starts again from the beginning,
 * once. */
int sl_kube_list(struct sl_kube *k, const struct sl_kube_ref *ref, const struct sl_kube_call_opts *opts,
                 sl_kube_cb cb, void *payload);
/* A list that is never held whole: every page's items array goes to page as
 * it arrives (page may detach the items it keeps; the rest is freed after
 * it returns). items NULL: a continue token expired and the list starts
 * again from the beginning, so drop what was kept. cb then runs once, with
 * the list's metadata and no items, or with the error. opts->limit is the
 * page size (0: 500). */
typedef void (*sl_kube_page_cb)(cJSON *items, void *payload);
int sl_kube_list_pages(struct sl_kube *k, const struct sl_kube_ref *ref, const struct sl_kube_call_opts *opts,
                       sl_kube_page_cb page, sl_kube_cb cb, void *payload);
int sl_kube_create(struct sl_kube *k, const struct sl_kube_ref *ref, const cJSON *obj,
                   const struct sl_kube_call_opts *opts, sl_kube_cb cb, void *payload);
/* PUT: replaces the object (metadata.resourceVersion makes it conditional). */
int sl_kube_update(struct sl_kube *k, const struct sl_kube_ref *ref, const cJSON *obj,
                   const struct sl_kube_call_opts *opts, sl_kube_cb cb, void *payload);
int sl_kube_delete(struct sl_kube *k, const struct sl_kube_ref *ref, const struct sl_kube_call_opts *opts,
                   sl_kube_cb cb, void *payload);

enum sl_kube_patch_type {
	SL_KUBE_PATCH_MERGE,     /* application/merge-patch+json */
	SL_KUBE_PATCH_JSON,      /* application/json-patch+json (patch is an array) */
	SL_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in kinds) */
};
int sl_kube_patch(struct sl_kube *k, const struct sl_kube_ref *ref, enum sl_kube_patch_type type,
                  const cJSON *patch, const struct sl_kube_call_opts *opts, sl_kube_cb cb, void *payload);
/* Server-side apply (application/apply-patch+yaml; the JSON body is YAML).
 * ref may be NULL: it is then taken from obj. opts->field_manager is
 * required. res->code is SL_ECONFLICT on a field conflict without force. */
int sl_kube_apply(struct sl_kube *k, const struct sl_kube_ref *ref, const cJSON *obj,
                  const struct sl_kube_call_opts *opts, sl_kube_cb cb, void *payload);

/* Records a core/v1 Event about an object (involved: apiVersion, kind,
 * namespace, name, uid read from it). type "Normal" or "Warning"; message
 * is cut to 1 KiB. The event is created in the object's namespace (or
 * "default" for cluster-scoped ones) by reporting component "sluice".
 * As client-go's recorder does, a repeat (same object, type, reason and
 * message) within opts.event_window_s of the last one raises the count and
 * lastTimestamp of the Event already written (a merge patch; created again
 * when it expired) instead of creating another; the last opts.event_cache
 * keys are remembered (none past the window). Repeats while a write of the
 * same Event is in flight go out together in one write after it. cb runs
 * once, with the result of
 * the write that carried this occurrence (shared with the other repeats it
 * carried: a callback must not take res->body). */
int sl_kube_event(struct sl_kube *k, const cJSON *involved, const char *type, const char *reason,
                  const char *message, sl_kube_cb cb, void *payload);

/* ---- informers ----------------------------------------------------------- */

/* Handlers run on the loop. Objects are borrowed: valid only during the call,
 * and read-only (a cached object is packed into one allocation, see
 * sl_manifest_json_pack: copy it with cJSON_Duplicate to change it).
 * del gets the last state the cache held (also for deletes noticed on a
 * relist). synced runs once, after the first full list went into the cache.
 * error reports a failed list/watch that will be retried (may be NULL). */
struct sl_kube_informer_handlers {
	void (*add)(const cJSON *obj, void *payload);
	void (*update)(const cJSON *old_obj, const cJSON *new_obj, void *payload);
	void (*del)(const cJSON *obj, void *payload);
	void (*synced)(void *payload);
	void (*error)(const struct sl_error *err, void *payload);
	/* Called on each received object before it is cached, to trim it in
	 * place (drop managedFields, unused spec...). May be NULL: then
	 * metadata.managedFields is dropped. */
	void (*transform)(cJSON *obj, void *payload);
};

struct sl_kube_informer_opts {
	struct sl_kube_ref ref; /* api_version + kind or resource; ns restricts to one namespace */
	const char *label_selector;
	const char *field_selector;
	unsigned page_size;                      /* list limit; 0: 500 */
	unsigned idle_timeout_ms;                /* no byte for this long restarts the watch; 0: 120 s */
	unsigned watch_min_s, watch_max_s;       /* randomised watch timeout; 0: 300..600 */
	unsigned backoff_min_ms, backoff_max_ms; /* jittered reconnect backoff; 0: 800..30000 */
};

/* Creates an informer (copies opts); it starts listing on
 * sl_kube_informer_start. */
int sl_kube_informer_new(struct sl_kube *k, const struct sl_kube_informer_opts *opts,
                         const struct sl_kube_informer_handlers *h, void *payload,
                         struct sl_kube_informer **ret, struct sl_error *err);
int sl_kube_informer_start(struct sl_kube_informer *inf);
/* Stops watching and frees the cache. Safe from inside its own handlers
 * (freed after the handler returns). Accepts NULL. */
void sl_kube_informer_free(struct sl_kube_informer *inf);
bool sl_kube_informer_has_synced(const struct sl_kube_informer *inf);
/* A cached object (borrowed; valid until the loop runs again), or NULL. ns
 * NULL or "" for cluster-scoped objects. */
const cJSON *sl_kube_informer_get(const struct sl_kube_informer *inf, const char *ns, const char *name);
size_t sl_kube_informer_count(const struct sl_kube_informer *inf);
/* Calls fn for every cached object (do not modify the informer inside). */
void sl_kube_informer_foreach(const struct sl_kube_informer *inf, void (*fn)(const cJSON *obj, void *payload),
                              void *payload);
/* The resourceVersion the informer is at ("" before the first list). */
const char *sl_kube_informer_resource_version(const struct sl_kube_informer *inf);
/* What the informer watches, for people: "<plural>[.<group>]/<version>
 * ns=<namespace or all>", then " selector=<label selector>" and
 * " fields=<field selector>" when set ("jobs.batch/v1 ns=a
 * selector=arcane/stream-id"). SL_ETOOLARGE when it does not fit. */
int sl_kube_informer_describe(const struct sl_kube_informer *inf, char *out, size_t outsz);
/* The cache's object count and digest: the lowercase hex SHA-256 of the
 * lines "<namespace>/<name> <resourceVersion>\n" of every cached object,
 * sorted bytewise (namespace empty for cluster-scoped objects). The same
 * digest over a list from the server says whether the cache holds exactly
 * what the server does. SL_ENOMEM. */
int sl_kube_informer_digest(const struct sl_kube_informer *inf, size_t *ret_count, char ret_hex[static 65]);

/* The cache key of an object: "namespace/name", or "name" when cluster-scoped. */
int sl_kube_obj_key(const cJSON *obj, char *out, size_t outsz);

/* ---- metrics ------------------------------------------------------------ */

enum sl_kube_verb {
	SL_KUBE_VERB_GET,
	SL_KUBE_VERB_LIST,
	SL_KUBE_VERB_WATCH,
	SL_KUBE_VERB_CREATE,
	SL_KUBE_VERB_UPDATE,
	SL_KUBE_VERB_PATCH,
	SL_KUBE_VERB_APPLY,
	SL_KUBE_VERB_DELETE,
	SL_KUBE_VERB__MAX
};

#define SL_KUBE_STATUS_MAX 600
/* Plain counters the server module reads (loop thread). */
struct sl_kube_metrics {
	/* requests completed, by verb and HTTP status (index 0: no response) */
	uint64_t requests[SL_KUBE_VERB__MAX][SL_KUBE_STATUS_MAX];
	uint64_t retries;        /* 429/5xx retried, 401 retried after a new token */
	uint64_t watch_restarts; /* watches reopened (timeout, idle, error) */
	uint64_t relists;        /* full relists after the first list (410, errors) */
	uint64_t watch_events;   /* events received */
	uint64_t bytes_received;
	uint64_t connects; /* new connections opened (reuse keeps this low) */
	uint64_t http2;    /* responses received over HTTP/2 */
	uint64_t probes;   /* health probes sent after read_idle_ms of silence */
	uint64_t dropped;  /* times the connections were given up (probe unanswered) */
	/* Event keys held for aggregation (sl_kube_event) */
	size_t events_remembered;
};
const struct sl_kube_metrics *sl_kube_get_metrics(const struct sl_kube *k);
/* Lowercase name of a verb ("get", "list", ...). */
const char *sl_kube_verb_name(enum sl_kube_verb v);
