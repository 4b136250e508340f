/* The client's transport: one curl multi handle driven from the epoll loop
 * (socket and timer callbacks, as in curl's ephiperfifo.c), requests,
 * retries, result decoding and metrics. What a request carries to
 * authenticate comes from creds.c. */
#include "config.h"
#include "internal.h"
#include "sluice/loop.h"
#include "sluice/manifest-json.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RETRY_MAX_MS 30000
/* how often the health of the connections is looked at */
#define HEALTH_TICK_MS 5000
/* a URL longer than this is refused (SL_ETOOLARGE), never sent cut short */
#define URL_MAX 8192

enum req_state { REQ_WAIT_AUTH, REQ_RUNNING, REQ_WAIT_RETRY };

struct req {
	struct sl_kube *k;
	struct req *prev, *next; /* k->reqs */
	struct req *pnext;       /* k->pending */
	bool pmarked;
	struct req *wnext; /* k->auth_wait */
	enum req_state state;
	struct req_spec spec;
	char *path, *body;
	CURL *easy;
	struct curl_slist *headers;
	struct sl_buf resp;
	long retry_after_s; /* -1: no header */
	unsigned retries;
	bool auth_retried;
	bool canceled;
	bool drop; /* to be failed: its connection is given up */
	int abort_code;
	struct sl_loop_timer *retry_timer;
	char errbuf[CURL_ERROR_SIZE];
};

static const char *const verb_names[] = {
    [SL_KUBE_VERB_GET] = "get",       [SL_KUBE_VERB_LIST] = "list",     [SL_KUBE_VERB_WATCH] = "watch",
    [SL_KUBE_VERB_CREATE] = "create", [SL_KUBE_VERB_UPDATE] = "update", [SL_KUBE_VERB_PATCH] = "patch",
    [SL_KUBE_VERB_APPLY] = "apply",   [SL_KUBE_VERB_DELETE] = "delete",
};

bool sl_kube_unreachable(const struct sl_kube_result *res)
{
	return !res->http_status && (res->code == SL_EIO || res->code == SL_ETIMEOUT);
}

const char *sl_kube_verb_name(enum sl_kube_verb v)
{
	return (unsigned)v < SL_ARRAY_SIZE(verb_names) ? verb_names[v] : "?";
}

const struct sl_kube_metrics *sl_kube_get_metrics(const struct sl_kube *k)
{
	return &k->metrics;
}
const struct sl_kube_config *sl_kube_get_config(const struct sl_kube *k)
{
	return k->cfg;
}
unsigned sl_kube_inflight(const struct sl_kube *k)
{
	return k->inflight;
}

void sl_kube__res_fail(struct kube_res *kr, int code, const char *fmt, ...)
{
	va_list ap;
	memset(&kr->res, 0, sizeof(kr->res));
	kr->reason[0] = kr->field[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(kr->message, sizeof(kr->message), fmt, ap);
	va_end(ap);
	kr->res.code = code;
	kr->res.message = kr->message;
	kr->res.reason = kr->reason;
	kr->res.field = kr->field;
	sl_error_set(&kr->res.err, code, "%s", kr->message);
}

/* ---- deferred calls owned by the client --------------------------------- */

static void soon_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct sl_kube *k = payload;
	struct soon *s = k->soon_head;
	k->soon_head = k->soon_tail = NULL;
	while (s) {
		struct soon *n = s->next;
		s->fn(s->payload, false);
		free(s);
		s = n;
	}
}

int sl_kube__soon(struct sl_kube *k, void (*fn)(void *payload, bool canceled), void *payload)
{
	struct soon *s = calloc(1, sizeof(*s));
	if (!s)
		return SL_ENOMEM;
	s->fn = fn;
	s->payload = payload;
	if (k->soon_tail)
		k->soon_tail->next = s;
	else
		k->soon_head = s;
	k->soon_tail = s;
	sl_loop_timer_arm(k->soon_timer, 0);
	return 0;
}

/* ---- curl <-> loop ------------------------------------------------------ */

static void finish(struct req *r, CURLcode cc);

static void after_drive(struct sl_kube *k)
{
	struct req *r;
	CURLMsg *msg;
	int left;

	while ((r = k->pending)) {
		k->pending = r->pnext;
		r->pmarked = false;
		r->pnext = NULL;
		if (r->canceled)
			sl_kube__req_cancel(r);
		else if (r->spec.drain)
			r->spec.drain(r, r->spec.payload);
	}
	while ((msg = curl_multi_info_read(k->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		r = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r)
			finish(r, msg->data.result);
	}
}

static void drive(struct sl_kube *k, curl_socket_t fd, int flags)
{
	int running;
	k->depth++;
	curl_multi_socket_action(k->multi, fd, flags, &running);
	k->depth--;
	if (!k->depth)
		after_drive(k);
}

static void io_cb(struct sl_loop *loop, int fd, uint32_t events, void *payload)
{
	int flags = 0;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	drive(payload, fd, flags);
}

static void curl_timer_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	drive(payload, CURL_SOCKET_TIMEOUT, 0);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct sl_kube *k = userp;
	uint32_t ev = 0;

	if (what == CURL_POLL_REMOVE) {
		if (socketp) {
			sl_loop_del_fd(k->loop, s);
			curl_multi_assign(k->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	if (!socketp) {
		int r = sl_loop_add_fd(k->loop, s, ev, io_cb, k);
		if (r == SL_EEXIST)
			r = sl_loop_mod_fd(k->loop, s, ev);
		if (r < 0)
			return -1;
		curl_multi_assign(k->multi, s, (void *)1);
	} else if (sl_loop_mod_fd(k->loop, s, ev) < 0)
		return -1;
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct sl_kube *k = userp;
	if (timeout_ms < 0)
		sl_loop_timer_disarm(k->curl_timer);
	else
		sl_loop_timer_arm(k->curl_timer, (uint64_t)timeout_ms);
	return 0;
}

/* ---- waiting for credentials -------------------------------------------- */

static void req_launch(struct req *r);
static void req_complete(struct req *r, struct kube_res *kr);

/* The credentials' fetch ended: start or fail every request that waited. */
static void wake_auth_waiters(int code, const char *msg, void *payload)
{
	struct sl_kube *k = payload;
	struct req *w = k->auth_wait;
	k->auth_wait = NULL;
	while (w) {
		struct req *n = w->wnext;
		w->wnext = NULL;
		if (code == 0)
			req_launch(w);
		else {
			struct kube_res kr;
			sl_kube__res_fail(&kr, code, "%s %s: %s", w->spec.method, w->path, msg);
			req_complete(w, &kr);
		}
		w = n;
	}
}

/* 0: credentials ready; 1: r waits for them; < 0: failure with detail in err. */
static int auth_prepare(struct sl_kube *k, struct req *r, struct sl_error *err)
{
	int rc = sl_kube__creds_prepare(k->creds, err);

	if (rc == 1) {
		r->wnext = k->auth_wait;
		k->auth_wait = r;
	}
	return rc;
}

/* ---- requests ------------------------------------------------------------ */

static size_t write_cb(char *p, size_t sz, size_t nmemb, void *userp)
{
	struct req *r = userp;
	size_t n = sz * nmemb;
	long status = 0;

	if (r->canceled)
		return 0;
	r->k->last_rx_ms = sl_now_ms();
	r->k->metrics.bytes_received += n;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (r->spec.data && status == 200) {
		int rc = r->spec.data(r, p, n, r->spec.payload);
		if (rc < 0) {
			r->abort_code = rc;
			return 0;
		}
		return r->canceled ? 0 : n;
	}
	if (sl_buf_append(&r->resp, p, n) < 0) {
		r->abort_code = SL_ETOOLARGE;
		return 0;
	}
	return n;
}

static size_t header_cb(char *p, size_t sz, size_t nmemb, void *userp)
{
	struct req *r = userp;
	size_t n = sz * nmemb;
	static const char name[] = "retry-after:";

	r->k->last_rx_ms = sl_now_ms();
	if (n > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		char tmp[32];
		size_t l = SL_MIN(n - (sizeof(name) - 1), sizeof(tmp) - 1);
		char *end;
		long v;
		memcpy(tmp, p + sizeof(name) - 1, l);
		tmp[l] = '\0';
		v = strtol(tmp, &end, 10);
		/* an HTTP-date form counts as "retry soon" */
		r->retry_after_s = end != tmp && v >= 0 ? v : 1;
	}
	return n;
}

static void req_unlink(struct req *r)
{
	struct sl_kube *k = r->k;
	if (r->prev)
		r->prev->next = r->next;
	else
		k->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (r->pmarked) {
		struct req **pp = &k->pending;
		while (*pp && *pp != r)
			pp = &(*pp)->pnext;
		if (*pp)
			*pp = r->pnext;
	}
	if (r->state == REQ_WAIT_AUTH) {
		struct req **pp = &k->auth_wait;
		while (*pp && *pp != r)
			pp = &(*pp)->wnext;
		if (*pp)
			*pp = r->wnext;
	}
}

static void easy_drop(struct req *r)
{
	if (r->easy) {
		assert(r->k->running > 0);
		r->k->running--;
		curl_multi_remove_handle(r->k->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
}

static void req_destroy(struct req *r)
{
	struct sl_kube *k = r->k;
	req_unlink(r);
	easy_drop(r);
	sl_loop_timer_free(r->retry_timer);
	sl_buf_free(&r->resp);
	free(r->path);
	free(r->body);
	if (r->spec.verb != SL_KUBE_VERB_WATCH)
		k->inflight--;
	free(r);
}

void sl_kube__req_mark_pending(struct req *r)
{
	if (r->pmarked)
		return;
	r->pmarked = true;
	r->pnext = r->k->pending;
	r->k->pending = r;
}

void sl_kube__req_cancel(struct req *r)
{
	if (!r)
		return;
	if (r->k->depth) {
		/* inside curl: finish the job once curl has returned */
		r->canceled = true;
		sl_kube__req_mark_pending(r);
		return;
	}
	req_destroy(r);
}

static void req_complete(struct req *r, struct kube_res *kr)
{
	req_done_fn done = r->spec.done;
	void *payload = r->spec.payload;

	/* unlink first so that done may start new requests freely */
	req_destroy(r);
	done(NULL, &kr->res, payload);
	cJSON_Delete(kr->res.body);
	kr->res.body = NULL;
}

static int code_for(long status, const char *reason)
{
	switch (status) {
	case 401:
		return SL_EUNAUTHORIZED;
	case 403:
		return SL_EFORBIDDEN;
	case 404:
		return SL_ENOTFOUND;
	case 409:
		return strcmp(reason, "AlreadyExists") == 0 ? SL_EEXIST : SL_ECONFLICT;
	case 410:
		return SL_EGONE;
	case 400:
	case 415:
	case 422:
		return SL_EINVALID;
	case 405:
		return SL_EUNSUPPORTED;
	case 413:
		return SL_ETOOLARGE;
	case 429:
		return SL_ETOOMANY;
	case 504:
		return SL_ETIMEOUT;
	default:
		return status >= 500 ? SL_EUNAVAILABLE : SL_EINTERNAL;
	}
}

static void copy_str(char *dst, size_t n, const cJSON *v)
{
	snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static void build_result(struct req *r, CURLcode cc, long status, struct kube_res *kr)
{
	const char *verb = sl_kube_verb_name(r->spec.verb);
	int pr = 0;

	memset(kr, 0, sizeof(*kr));
	kr->res.message = kr->message;
	kr->res.reason = kr->reason;
	kr->res.field = kr->field;
	kr->res.http_status = status;
	if (cc != CURLE_OK && (r->abort_code || status == 0 || cc != CURLE_WRITE_ERROR)) {
		int code = r->abort_code                    ? r->abort_code
		           : cc == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEOUT
		                                            : SL_EIO;
		if (r->abort_code == SL_ETOOLARGE)
			snprintf(kr->message, sizeof(kr->message), "%s larger than the limit",
			         r->spec.verb == SL_KUBE_VERB_WATCH ? "watch event" : "response");
		else if (r->abort_code == SL_EINVALID)
			snprintf(kr->message, sizeof(kr->message), "watch stream not understood");
		else
			snprintf(kr->message, sizeof(kr->message), "%s",
			         r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
		kr->res.code = code;
		sl_error_set(&kr->res.err, code, "%s %s: %s", verb, r->path, kr->message);
		return;
	}
	/* big integers keep their digits (for the SPEC of a Job) */
	if (r->resp.len && (pr = sl_manifest_json_parse(r->resp.data, r->resp.len, &kr->res.body, NULL)) < 0)
		kr->res.body = NULL;
	if (status >= 200 && status < 300) {
		if (r->resp.len && !kr->res.body) {
			kr->res.code = pr == SL_ENOMEM ? SL_ENOMEM : SL_EINTERNAL;
			snprintf(kr->message, sizeof(kr->message), "%s",
			         pr == SL_ENOMEM ? "out of memory reading the response"
			                         : "response is not JSON");
			sl_error_set(&kr->res.err, kr->res.code, "%s %s: %ld: %s", verb, r->path, status,
			             kr->message);
		}
		return;
	}
	{
		const cJSON *b = kr->res.body;
		const cJSON *causes = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(b, "details"), "causes");
		copy_str(kr->message, sizeof(kr->message), cJSON_GetObjectItemCaseSensitive(b, "message"));
		copy_str(kr->reason, sizeof(kr->reason), cJSON_GetObjectItemCaseSensitive(b, "reason"));
		copy_str(kr->field, sizeof(kr->field),
		         cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(causes, 0), "field"));
		if (!kr->message[0] && r->resp.len && !b)
			/* not a Status: keep a bounded, printable start of it */
			for (size_t i = 0; i < SL_MIN(r->resp.len, 200u); i++)
				kr->message[i] = (r->resp.data[i] >= 0x20 && r->resp.data[i] < 0x7f)
				                     ? r->resp.data[i]
				                     : ' ';
	}
	kr->res.code = code_for(status, kr->reason);
	sl_error_set(&kr->res.err, kr->res.code, "%s %s: %ld %s%s%s", verb, r->path, status,
	             kr->reason[0] ? kr->reason : sl_strerror(kr->res.code), kr->message[0] ? ": " : "",
	             kr->message);
}

static void retry_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct req *r = payload;
	struct sl_error err = {0};
	int rc;

	r->state = REQ_WAIT_AUTH;
	rc = auth_prepare(r->k, r, &err);
	if (rc == 1)
		return;
	if (rc < 0) {
		struct kube_res kr;
		sl_kube__res_fail(&kr, SL_EUNAUTHORIZED, "%s", err.msg);
		req_complete(r, &kr);
		return;
	}
	req_launch(r);
}

/* A request that may be sent again when its connection broke before the
 * answer came: reads, server-side apply (the same patch gives the same
 * object) and delete (a second one finds nothing, which callers accept). A
 * create, update or patch is left to its caller, which knows whether to
 * repeat it. Streams (watches) restart themselves. */
static bool retry_safe(const struct req *r)
{
	switch (r->spec.verb) {
	case SL_KUBE_VERB_GET:
	case SL_KUBE_VERB_LIST:
	case SL_KUBE_VERB_APPLY:
	case SL_KUBE_VERB_DELETE:
		return !r->spec.data;
	default:
		return false;
	}
}

/* The connection failed under the request (reset, refused, closed, HTTP/2
 * stream error): worth one more try on a new connection. A timeout is
 * not: the request already waited its whole time. */
static bool transport_broke(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static void finish(struct req *r, CURLcode cc)
{
	struct sl_kube *k = r->k;
	long status = 0;
	struct kube_res kr;

	if (r->canceled) {
		req_destroy(r);
		return;
	}
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	{
		long conns = 0, ver = 0;
		curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns);
		curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &ver);
		k->metrics.connects += (uint64_t)(conns > 0 ? conns : 0);
		if (ver == CURL_HTTP_VERSION_2_0)
			k->metrics.http2++;
	}
	if (status < 0 || status >= SL_KUBE_STATUS_MAX)
		status = 0;
	if (status > 0 && k->unreachable && !k->freeing) {
		k->unreachable = false;
		sl_kube__informers_wake(k);
	} else if (status == 0 && cc != CURLE_OK && !r->abort_code)
		k->unreachable = true;
	k->metrics.requests[r->spec.verb][cc == CURLE_OK || r->abort_code || status ? status : 0]++;
	easy_drop(r);
	if (cc == CURLE_OK && status == 401 && !r->auth_retried && !k->freeing &&
	    sl_kube__creds_unauthorized(k->creds)) {
		r->auth_retried = true;
		k->metrics.retries++;
		sl_buf_reset(&r->resp);
		retry_fire(k->loop, NULL, r);
		return;
	}
	if (!r->spec.no_retry && !k->freeing && r->retries < k->opts.max_retries &&
	    ((cc == CURLE_OK && (status == 429 || (status >= 500 && r->retry_after_s >= 0))) ||
	     (transport_broke(cc) && !r->abort_code && retry_safe(r)))) {
		/* a broken connection: 250 ms, doubling, jittered, so many requests
		 * cut at once do not come back in step */
		uint64_t ms = cc != CURLE_OK ? sl_rand_between(200ull << r->retries, 300ull << r->retries)
		              : r->retry_after_s >= 0 ? (uint64_t)r->retry_after_s * 1000
		                                      : 1000;
		if (!r->retry_timer && sl_loop_timer_new(k->loop, retry_fire, r, &r->retry_timer) < 0)
			goto done;
		r->retries++;
		k->metrics.retries++;
		sl_buf_reset(&r->resp);
		r->state = REQ_WAIT_RETRY;
		sl_loop_timer_arm(r->retry_timer, SL_MIN(ms, (uint64_t)RETRY_MAX_MS));
		return;
	}
done:
	build_result(r, cc, status, &kr);
	req_complete(r, &kr);
}

/* Accept and Content-Type. The token is not a header here: curl frees its
 * header list without wiping it, so the token goes in as
 * CURLOPT_XOAUTH2_BEARER (req_set_tls). */
int sl_kube__req_headers(const char *content_type, struct curl_slist **ret)
{
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");

	if (h && content_type) {
		char ct[128];
		if (!sl_snprintf_ok(ct, sizeof(ct), "Content-Type: %s", content_type)) {
			curl_slist_free_all(h);
			return SL_ETOOLARGE;
		}
		h = curl_slist_append(h, ct);
	}
	if (!h)
		return SL_ENOMEM;
	*ret = h;
	return 0;
}

/* How every transfer talks to the API server: callbacks, HTTP/2, limits,
 * timeouts, keepalive. */
static void req_set_transfer(struct req *r, CURL *e, const char *url)
{
	struct sl_kube *k = r->k;
	unsigned timeout = r->spec.timeout_ms ? r->spec.timeout_ms : k->opts.timeout_ms;

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* wait for a multiplexed HTTP/2 connection instead of opening more */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	if (r->spec.low_speed_s) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)r->spec.low_speed_s);
	}
	if (k->connect_to_list)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, k->connect_to_list);
}

/* Server verification, then the client's identity: certificate, bearer
 * token or basic auth. */
static void req_set_tls(struct sl_kube *k, CURL *e, const struct kube_auth *auth)
{
	const struct sl_kube_config *c = k->cfg;

	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->insecure_skip_tls_verify ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->insecure_skip_tls_verify ? 0L : 2L);
	if (c->ca) {
		struct curl_blob b = {.data = c->ca, .len = c->ca_len, .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (auth->cert) {
		/* a certificate the credentials may replace is copied into the transfer */
		unsigned int flags = auth->cert_lasting ? CURL_BLOB_NOCOPY : CURL_BLOB_COPY;
		struct curl_blob cb = {.data = (void *)auth->cert, .len = auth->cert_len, .flags = flags};
		struct curl_blob kb = {.data = (void *)auth->key, .len = auth->key_len, .flags = flags};
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (auth->bearer) {
		/* curl sends "Authorization: Bearer" from its own copy; the only
		 * scheme allowed, so it is sent on the first request */
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, auth->bearer);
	} else if (auth->username) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, auth->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, auth->password);
	}
}

static void req_set_method(struct req *r, CURL *e)
{
	if (strcmp(r->spec.method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		return;
	}
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->spec.method);
	/* a DELETE without options sends no body at all */
	if (r->body || strcmp(r->spec.method, "DELETE") != 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)(r->body ? r->spec.body_len : 0));
	}
}

/* Hands r to curl with the credentials of this moment. */
static void req_launch(struct req *r)
{
	struct sl_kube *k = r->k;
	struct kube_auth auth;
	char url[URL_MAX];
	struct kube_res kr;
	int rc = SL_ENOMEM;

	r->state = REQ_RUNNING;
	r->retry_after_s = -1;
	r->abort_code = 0;
	r->errbuf[0] = '\0';
	/* sl_kube__req_start refused a URL that does not fit */
	if (!sl_snprintf_ok(url, sizeof(url), "%s%s", k->url_base, r->path)) {
		assert(!"URL longer than checked");
		sl_kube__res_fail(&kr, SL_ETOOLARGE, "%s: URL longer than %d bytes", r->spec.method, URL_MAX);
		req_complete(r, &kr);
		return;
	}
	sl_kube__creds_get(k->creds, &auth);
	r->easy = curl_easy_init();
	if (!r->easy || (rc = sl_kube__req_headers(r->spec.content_type, &r->headers)) < 0)
		goto fail;
	req_set_transfer(r, r->easy, url);
	req_set_tls(k, r->easy, &auth);
	req_set_method(r, r->easy);
	if (curl_multi_add_handle(k->multi, r->easy) != CURLM_OK) {
		rc = SL_ENOMEM;
		goto fail;
	}
	/* silence is counted from the moment something waits for the server */
	if (k->running++ == 0)
		k->last_rx_ms = sl_now_ms();
	if (!sl_loop_timer_armed(k->health_timer))
		sl_loop_timer_arm(k->health_timer,
		                  SL_MIN((uint64_t)HEALTH_TICK_MS, k->opts.read_idle_ms / 2));
	return;
fail:
	easy_drop(r);
	sl_kube__res_fail(&kr, rc, "%s %s: cannot start request: %s", r->spec.method, r->path,
	                  sl_strerror(rc));
	req_complete(r, &kr);
}

int sl_kube__req_start(struct sl_kube *k, const struct req_spec *spec, struct req **ret)
{
	struct req *r;
	struct sl_error err = {0};
	int rc;

	if (k->freeing)
		return SL_ECANCELED;
	if (strlen(k->url_base) + strlen(spec->path) >= URL_MAX)
		return SL_ETOOLARGE;
	r = calloc(1, sizeof(*r));
	if (!r)
		return SL_ENOMEM;
	r->k = k;
	r->spec = *spec;
	r->path = sl_strdup(spec->path);
	if (spec->body) {
		r->body = malloc(spec->body_len + 1);
		if (r->body) {
			memcpy(r->body, spec->body, spec->body_len);
			r->body[spec->body_len] = '\0';
		}
	}
	if (!r->path || (spec->body && !r->body)) {
		free(r->path);
		free(r->body);
		free(r);
		return SL_ENOMEM;
	}
	r->spec.path = r->path;
	r->spec.body = r->body;
	sl_buf_init(&r->resp, k->opts.max_body);
	r->next = k->reqs;
	if (k->reqs)
		k->reqs->prev = r;
	k->reqs = r;
	if (spec->verb != SL_KUBE_VERB_WATCH)
		k->inflight++;
	r->state = REQ_WAIT_AUTH;
	rc = auth_prepare(k, r, &err);
	if (rc < 0) {
		r->state = REQ_RUNNING;
		req_destroy(r);
		return rc;
	}
	if (ret)
		*ret = r;
	if (rc == 0)
		req_launch(r);
	return 0;
}

/* ---- the health of the connections ------------------------------------------ */

/* Fails every request curl is running, closing their connections: a
 * multiplexed connection outlives a transfer that timed out on it, so
 * without this the next requests would go to the same silent server. */
static void give_up_connections(void *payload, bool canceled)
{
	struct sl_kube *k = payload;
	struct req *r;

	if (canceled || k->freeing)
		return;
	k->metrics.dropped++;
	k->unreachable = true;
	for (r = k->reqs; r; r = r->next)
		if (r->state == REQ_RUNNING && r->easy && !r->canceled) {
			r->drop = true;
			/* the last transfer to leave a connection closes it */
			curl_easy_setopt(r->easy, CURLOPT_FORBID_REUSE, 1L);
		}
	/* a done callback may start or cancel requests: look again each time */
	for (;;) {
		for (r = k->reqs; r && !r->drop; r = r->next)
			;
		if (!r)
			break;
		r->drop = false;
		snprintf(r->errbuf, sizeof(r->errbuf),
		         "no answer from the server for %u ms: its connection was given up",
		         k->opts.read_idle_ms + k->opts.probe_timeout_ms);
		finish(r, CURLE_OPERATION_TIMEDOUT);
	}
}

static void probe_done(struct req *unused, struct sl_kube_result *res, void *payload)
{
	struct sl_kube *k = payload;

	k->probe = NULL;
	/* any answer, even an error status, shows the server is there */
	if (res->code == SL_ETIMEOUT && res->http_status == 0 && !k->freeing)
		(void)sl_kube__soon(k, give_up_connections, k);
}

static void health_fire(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct sl_kube *k = payload;
	struct req_spec s = {.verb = SL_KUBE_VERB_GET,
	                     .method = "GET",
	                     .path = "/version",
	                     .timeout_ms = k->opts.probe_timeout_ms,
	                     .no_retry = true,
	                     .done = probe_done,
	                     .payload = k};

	if (!k->running || k->freeing)
		return; /* armed again when a request starts */
	if (k->probe && sl_now_ms() - k->probe_started_ms > k->opts.probe_timeout_ms) {
		/* curl's own timeout does not run while a transfer waits for a
		 * connection (all busy, or PIPEWAIT on one that may multiplex) */
		sl_kube__req_cancel(k->probe);
		k->probe = NULL;
		give_up_connections(k, false);
	} else if (!k->probe && sl_now_ms() - k->last_rx_ms >= k->opts.read_idle_ms) {
		struct req *p = NULL;
		if (sl_kube__req_start(k, &s, &p) == 0) {
			k->probe = p;
			k->probe_started_ms = sl_now_ms();
			k->metrics.probes++;
		}
	}
	sl_loop_timer_arm(t, SL_MIN((uint64_t)HEALTH_TICK_MS, k->opts.read_idle_ms / 2));
}

/* ---- client --------------------------------------------------------------- */

/* curl's global state, set up once for the process. */
static int curl_ready(struct sl_error *err)
{
	static bool ready;

	if (!ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return sl_error_set(err, SL_EINTERNAL, "curl_global_init failed");
		ready = true;
	}
	return 0;
}

static void opts_defaults(struct sl_kube *k, const struct sl_kube_opts *opts)
{
	if (opts)
		k->opts = *opts;
	/* borrowed from the caller: kept as a copy in k->user_agent */
	k->opts.user_agent = NULL;
	if (!k->opts.max_body)
		k->opts.max_body = 64u << 20;
	if (!k->opts.max_watch_line)
		k->opts.max_watch_line = 16u << 20;
	if (!k->opts.timeout_ms)
		k->opts.timeout_ms = 30000;
	if (!k->opts.max_retries)
		k->opts.max_retries = 5;
	if (!k->opts.read_idle_ms)
		k->opts.read_idle_ms = 30000;
	if (!k->opts.probe_timeout_ms)
		k->opts.probe_timeout_ms = 15000;
	snprintf(k->user_agent, sizeof(k->user_agent), "%s",
	         opts && opts->user_agent ? opts->user_agent : "sluice/" SLUICE_VERSION);
}

/* tls-server-name: verify against that name by addressing the URL to it and
 * connecting it to the real host and port. */
static int url_via_server_name(struct sl_kube *k, struct sl_error *err)
{
	const struct sl_kube_config *cfg = k->cfg;
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	int r;

	if (!u || curl_url_set(u, CURLUPART_URL, cfg->server, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		r = sl_error_set(err, SL_EINVALID, "server URL cannot be parsed");
	} else {
		free(k->url_base);
		k->url_base = sl_asprintf("%s://%s:%s", scheme, cfg->tls_server_name, port);
		k->connect_to = sl_asprintf("%s:%s:%s:%s", cfg->tls_server_name, port, host, port);
		k->connect_to_list = k->connect_to ? curl_slist_append(NULL, k->connect_to) : NULL;
		r = k->url_base && k->connect_to_list ? 0 : SL_ENOMEM;
	}
	curl_free(host);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
	return r;
}

static int multi_setup(struct sl_kube *k)
{
	int r = sl_loop_timer_new(k->loop, curl_timer_fire, k, &k->curl_timer);

	if (r >= 0)
		r = sl_loop_timer_new(k->loop, soon_fire, k, &k->soon_timer);
	if (r >= 0)
		r = sl_loop_timer_new(k->loop, health_fire, k, &k->health_timer);
	if (r < 0)
		return r;
	k->multi = curl_multi_init();
	if (!k->multi)
		return SL_ENOMEM;
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	/* HTTP/1.1 fallback: a few connections per host, never one per call */
	curl_multi_setopt(k->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
	return 0;
}

int sl_kube_new(struct sl_loop *loop, struct sl_kube_config *cfg, const struct sl_kube_opts *opts,
                struct sl_kube **ret, struct sl_error *err)
{
	struct sl_kube *k;
	int r = curl_ready(err);

	if (r < 0) {
		sl_kube_config_free(cfg);
		return r;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		sl_kube_config_free(cfg);
		return SL_ENOMEM;
	}
	k->loop = loop;
	k->cfg = cfg;
	opts_defaults(k, opts);
	sl_map_init(&k->gvs);
	k->url_base = sl_strdup(cfg->server);
	r = k->url_base ? 0 : SL_ENOMEM;
	if (r == 0 && cfg->tls_server_name)
		r = url_via_server_name(k, err);
	if (r == 0)
		r = sl_kube__creds_new(loop, cfg, wake_auth_waiters, k, &k->creds);
	if (r == 0)
		r = multi_setup(k);
	if (r == 0)
		r = sl_kube__events_new(k, k->opts.event_cache, k->opts.event_window_s, &k->events);
	if (r < 0) {
		sl_kube_free(k);
		return r;
	}
	*ret = k;
	return 0;
}

void sl_kube_free(struct sl_kube *k)
{
	if (!k)
		return;
	k->freeing = true;
	/* every request finishes with SL_ECANCELED; callbacks cannot start new ones */
	while (k->reqs) {
		struct req *r = k->reqs;
		struct kube_res kr;
		if (r->canceled || !r->spec.done) {
			req_destroy(r);
			continue;
		}
		sl_kube__res_fail(&kr, SL_ECANCELED, "%s %s: canceled", r->spec.method, r->path);
		req_complete(r, &kr);
	}
	while (k->soon_head) {
		struct soon *s = k->soon_head;
		k->soon_head = s->next;
		if (!k->soon_head)
			k->soon_tail = NULL;
		s->fn(s->payload, true);
		free(s);
	}
	sl_kube__events_free(k->events);
	sl_kube__discovery_free(k);
	sl_kube__creds_free(k->creds);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	sl_loop_timer_free(k->curl_timer);
	sl_loop_timer_free(k->soon_timer);
	sl_loop_timer_free(k->health_timer);
	curl_slist_free_all(k->connect_to_list);
	free(k->connect_to);
	free(k->url_base);
	sl_kube_config_free(k->cfg);
	free(k);
}
