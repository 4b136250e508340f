/* The HTTP server of `sluice run`: libmicrohttpd without threads of its own.
 * Its epoll fd sits in the sluice loop and MHD_run is called on events and on
 * a loop timer from MHD_get_timeout, so handlers run on the loop thread and
 * read the process state without locks. */
#include "sluice/server.h"
#include "sluice/loop.h"

#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define SECRET_MAX  4096
#define METRICS_MAX (16u << 20)

struct sl_server {
	struct sl_loop *loop;
	struct MHD_Daemon *d;
	int epfd;
	struct sl_loop_timer *timer;
	struct sl_server_opts opts;
	char *secret_file;
	struct sl_server_token_bucket bucket;
	struct sl_server_metric *m_requests;
	struct sl_server_metric *m_webhooks;
	unsigned port;
};

/* Per-request state of a POST /hooks/git while its body arrives. */
struct upload {
	struct sl_buf body;
	bool too_large;
	bool limited;
};

static const char *const known_paths[] = {
    "/healthz", "/readyz", "/health", "/health/ready", "/startup", "/metrics", "/hooks/git",
};

static void count_request(struct sl_server *s, const char *url, unsigned code)
{
	const char *path = "other"; /* bounded label: a scan of random URLs adds no series */
	char c[8];

	for (size_t i = 0; i < SL_ARRAY_SIZE(known_paths); i++)
		if (strcmp(url, known_paths[i]) == 0)
			path = known_paths[i];
	snprintf(c, sizeof(c), "%u", code);
	if (s->m_requests)
		sl_server_metric_add(s->m_requests, (const char *const[]){path, c}, 1);
}

static void count_webhook(struct sl_server *s, const char *result)
{
	if (s->m_webhooks)
		sl_server_metric_add(s->m_webhooks, (const char *const[]){result}, 1);
}

static enum MHD_Result reply(struct sl_server *s, struct MHD_Connection *conn, const char *url, unsigned code,
                             const char *ctype, const char *body, size_t len, const char *retry_after)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (retry_after)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
	r = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	if (url)
		count_request(s, url, code);
	return r;
}

static enum MHD_Result reply_text(struct sl_server *s, struct MHD_Connection *conn, const char *url,
                                  unsigned code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result reply_text(struct sl_server *s, struct MHD_Connection *conn, const char *url,
                                  unsigned code, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return reply(s, conn, url, code, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

static enum MHD_Result probe(struct sl_server *s, struct MHD_Connection *conn, const char *url,
                             sl_server_probe_fn fn, const char *what)
{
	const char *why = NULL;

	if (fn && !fn(s->opts.payload, &why))
		return reply_text(s, conn, url, MHD_HTTP_SERVICE_UNAVAILABLE, "not %s: %s\n", what,
		                  why ? why : "not yet");
	return reply_text(s, conn, url, MHD_HTTP_OK, "ok\n");
}

static enum MHD_Result metrics(struct sl_server *s, struct MHD_Connection *conn, const char *url)
{
	struct sl_buf out;
	enum MHD_Result r;

	if (!s->opts.metrics)
		return reply_text(s, conn, url, MHD_HTTP_NOT_FOUND, "no metrics\n");
	sl_buf_init(&out, METRICS_MAX);
	/* Counted before rendering so a scrape sees its own request. */
	count_request(s, url, MHD_HTTP_OK);
	if (sl_server_metrics_render(s->opts.metrics, &out) < 0) {
		sl_buf_free(&out);
		return reply_text(s, conn, url, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n");
	}
	r = reply(s, conn, NULL, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
	          out.data ? out.data : "", out.len, NULL);
	sl_buf_free(&out);
	return r;
}

static int read_secret(const char *path, struct sl_buf *out, struct sl_error *err)
{
	int r = sl_file_read(path, SECRET_MAX, out, err);
	if (r < 0)
		return r;
	while (out->len > 0 && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r'))
		out->data[--out->len] = 0;
	return 0;
}

static enum MHD_Result webhook_finish(struct sl_server *s, struct MHD_Connection *conn, const char *url,
                                      struct upload *u)
{
	struct sl_buf secret = {0};
	struct sl_error err = {0};
	enum MHD_Result ret;
	int r;

	if (u->too_large) {
		count_webhook(s, "too_large");
		return reply_text(s, conn, url, MHD_HTTP_CONTENT_TOO_LARGE, "body over %zu bytes\n",
		                  u->body.max);
	}
	r = read_secret(s->secret_file, &secret, &err);
	if (r < 0) {
		count_webhook(s, "error");
		sl_buf_free(&secret);
		return reply_text(s, conn, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                  "webhook secret unreadable\n");
	}
	r = sl_server_webhook_verify(
	    secret.data, secret.len,
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Hub-Signature-256"),
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Gitlab-Token"), u->body.data, u->body.len,
	    &err);
	explicit_bzero(secret.data, secret.cap);
	sl_buf_free(&secret);
	if (r == SL_EUNAUTHORIZED) {
		count_webhook(s, "unauthorized");
		return reply_text(s, conn, url, MHD_HTTP_UNAUTHORIZED, "%s\n", err.msg);
	}
	if (r < 0) {
		count_webhook(s, "forbidden");
		return reply_text(s, conn, url, MHD_HTTP_FORBIDDEN, "%s\n", err.msg);
	}
	count_webhook(s, "accepted");
	ret = reply_text(s, conn, url, MHD_HTTP_ACCEPTED, "fetch triggered\n");
	if (s->opts.trigger)
		s->opts.trigger(s->opts.payload);
	return ret;
}

static enum MHD_Result webhook(struct sl_server *s, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *data, size_t *data_size, void **con_cls)
{
	struct upload *u = *con_cls;

	if (!s->secret_file)
		return reply_text(s, conn, url, MHD_HTTP_NOT_FOUND, "no webhook configured\n");
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return reply_text(s, conn, url, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only\n");
	if (!u) {
		const char *cl =
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		size_t max = s->opts.max_body ? s->opts.max_body : (1u << 20);

		u = calloc(1, sizeof(*u));
		if (!u)
			return MHD_NO;
		sl_buf_init(&u->body, max);
		*con_cls = u;
		/* Checked before the body is read: a flood costs no HMAC. */
		if (!sl_server_token_bucket_take(&s->bucket, sl_now_ms())) {
			char ra[24];
			u->limited = true;
			count_webhook(s, "rate_limited");
			snprintf(
			    ra, sizeof(ra), "%llu",
			    (unsigned long long)(sl_server_token_bucket_wait_ms(&s->bucket, sl_now_ms()) +
			                         999) /
			        1000);
			return reply(s, conn, url, MHD_HTTP_TOO_MANY_REQUESTS, "text/plain; charset=utf-8",
			             "rate limited\n", 13, ra);
		}
		if (cl && strtoull(cl, NULL, 10) > max) {
			u->too_large = true;
			return webhook_finish(s, conn, url, u);
		}
		return MHD_YES;
	}
	if (u->limited)
		return MHD_NO;
	if (*data_size) {
		if (!u->too_large && sl_buf_append(&u->body, data, *data_size) < 0)
			u->too_large = true; /* keep draining; answered at the end */
		*data_size = 0;
		return MHD_YES;
	}
	return webhook_finish(s, conn, url, u);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *data, size_t *data_size, void **con_cls)
{
	struct sl_server *s = cls;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	if (strcmp(url, "/hooks/git") == 0)
		return webhook(s, conn, url, method, data, data_size, con_cls);
	if (!get)
		return reply_text(s, conn, url, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
	if (strcmp(url, "/healthz") == 0 || strcmp(url, "/health") == 0)
		return probe(s, conn, url, s->opts.live, "live");
	if (strcmp(url, "/readyz") == 0 || strcmp(url, "/health/ready") == 0)
		return probe(s, conn, url, s->opts.ready, "ready");
	if (strcmp(url, "/startup") == 0)
		return probe(s, conn, url, s->opts.started, "started");
	if (strcmp(url, "/metrics") == 0)
		return metrics(s, conn, url);
	return reply_text(s, conn, url, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode tc)
{
	struct upload *u = *con_cls;

	if (u) {
		sl_buf_free(&u->body);
		free(u);
		*con_cls = NULL;
	}
}

static void rearm(struct sl_server *s)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (MHD_get_timeout(s->d, &t) == MHD_YES)
		sl_loop_timer_arm(s->timer, t);
	else
		sl_loop_timer_disarm(s->timer);
}

static void on_io(struct sl_loop *loop, int fd, uint32_t events, void *payload)
{
	struct sl_server *s = payload;
	MHD_run(s->d);
	rearm(s);
}

static void on_timer(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct sl_server *s = payload;
	MHD_run(s->d);
	rearm(s);
}

int sl_server_new(struct sl_loop *loop, const struct sl_server_opts *opts, struct sl_server **ret,
                  struct sl_error *err)
{
	struct sockaddr_storage ss;
	unsigned sslen = sizeof(ss);
	const union MHD_DaemonInfo *info;
	struct sl_server *s;
	unsigned flags = MHD_USE_EPOLL;
	int r;

	r = sl_server_parse_listen(opts->listen ? opts->listen : ":8888", &ss, &sslen, err);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	s->loop = loop;
	s->opts = *opts;
	s->epfd = -1;
	if (opts->webhook_secret_file) {
		s->secret_file = sl_strdup(opts->webhook_secret_file);
		if (!s->secret_file) {
			r = sl_error_set(err, SL_ENOMEM, "out of memory");
			goto fail;
		}
	}
	s->opts.webhook_secret_file = s->secret_file;
	sl_server_token_bucket_init(&s->bucket, opts->webhook_rate > 0 ? opts->webhook_rate : 1,
	                            opts->webhook_burst > 0 ? opts->webhook_burst : 10, sl_now_ms());
	if (opts->metrics) {
		r = sl_server_metrics_register(
		    opts->metrics, SL_SERVER_METRIC_COUNTER, "sluice_http_requests_total",
		    "HTTP requests served, by path and status code.", "path,code", NULL, 0, &s->m_requests);
		if (r == 0)
			r = sl_server_metrics_register(
			    opts->metrics, SL_SERVER_METRIC_COUNTER, "sluice_webhook_requests_total",
			    "POST /hooks/git requests, by outcome.", "result", NULL, 0, &s->m_webhooks);
		if (r < 0 && r != SL_EEXIST) {
			sl_error_set(err, r, "registering the server's metrics: %s", sl_strerror(r));
			goto fail;
		}
		r = 0;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(opts->timeout_s ? opts->timeout_s : 30),
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)(opts->max_conns ? opts->max_conns : 64),
	    MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
	if (!s->d) {
		r = sl_error_set(err, SL_EIO, "cannot listen on %s: %s",
		                 opts->listen ? opts->listen : ":8888", strerror(errno));
		goto fail;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		r = sl_error_set(err, SL_EINTERNAL, "libmicrohttpd gave no epoll fd");
		goto fail;
	}
	s->epfd = info->epoll_fd;
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	r = sl_loop_timer_new(loop, on_timer, s, &s->timer);
	if (r == 0)
		r = sl_loop_add_fd(loop, s->epfd, EPOLLIN, on_io, s);
	if (r < 0) {
		s->epfd = -1;
		sl_error_set(err, r, "adding the HTTP server to the loop: %s", sl_strerror(r));
		goto fail;
	}
	rearm(s);
	*ret = s;
	return 0;
fail:
	sl_server_free(s);
	return r;
}

unsigned sl_server_port(const struct sl_server *s)
{
	return s->port;
}

void sl_server_free(struct sl_server *s)
{
	if (!s)
		return;
	if (s->epfd >= 0)
		sl_loop_del_fd(s->loop, s->epfd);
	if (s->d)
		MHD_stop_daemon(s->d);
	sl_loop_timer_free(s->timer);
	free(s->secret_file);
	free(s);
}
