/* sluice run: the long-running process. For now the stream controller alone
 * (--no-sync, or neither --git nor --dir); the sync half, leader election
 * and the HTTP endpoints hook into struct run below. */
#include "cmd.h"
#include "sluice/base.h"
#include "sluice/controller.h"
#include "sluice/kube.h"
#include "sluice/loop.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define SHUTDOWN_DEFAULT_MS 10000

struct run_opts {
	const char *kubeconfig, *context, *watch_namespaces;
	const char *log_format, *log_level;
	const char *git, *dir;
	bool no_sync;
	unsigned workers;
	uint64_t shutdown_ms;
};

struct run {
	struct run_opts o;
	struct sl_loop *loop;
	struct sl_kube *kube;
	struct sl_controller *ctl;
	struct sl_timer *deadline;
	char **namespaces;
	bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice run [--no-sync] [OPTIONS]\n\n"
	        "Runs the stream controller (and, later, the sync of a source).\n\n"
	        "  --no-sync                  run the controller alone (also when neither --git nor --dir)\n"
	        "  --kubeconfig FILE          kubeconfig (default: in-cluster, $KUBECONFIG, ~/.kube/config)\n"
	        "  --context NAME             kubeconfig context\n"
	        "  --watch-namespace NS,...   namespaces to watch (default: all)\n"
	        "  --workers N                streams reconciled at once (default 32)\n"
	        "  --shutdown-timeout DUR     bound on finishing writes after SIGTERM (default 10s)\n"
	        "  --log-format json|text     log format (default text)\n"
	        "  --log-level LEVEL          debug, info, warn, error (default info)\n\n"
	        "Every flag also reads from SLUICE_<FLAG> (e.g. SLUICE_WATCH_NAMESPACE).\n"
	        "SIGTERM/SIGINT: stop taking work, finish writes in flight, exit 0. SIGHUP: log counters.\n");
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static bool env_bool(const char *name)
{
	const char *v = env(name);
	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

static int parse_args(int argc, char **argv, struct run_opts *o)
{
	enum {
		O_KUBECONFIG = 256,
		O_CONTEXT,
		O_WATCH_NS,
		O_LOG_FORMAT,
		O_LOG_LEVEL,
		O_NO_SYNC,
		O_GIT,
		O_DIR,
		O_WORKERS,
		O_SHUTDOWN
	};
	static const struct option longopts[] = {
	    {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
	    {"context", required_argument, NULL, O_CONTEXT},
	    {"watch-namespace", required_argument, NULL, O_WATCH_NS},
	    {"log-format", required_argument, NULL, O_LOG_FORMAT},
	    {"log-level", required_argument, NULL, O_LOG_LEVEL},
	    {"no-sync", no_argument, NULL, O_NO_SYNC},
	    {"git", required_argument, NULL, O_GIT},
	    {"dir", required_argument, NULL, O_DIR},
	    {"workers", required_argument, NULL, O_WORKERS},
	    {"shutdown-timeout", required_argument, NULL, O_SHUTDOWN},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *workers = env("SLUICE_WORKERS"), *shutdown = env("SLUICE_SHUTDOWN_TIMEOUT");
	int ch;

	o->kubeconfig = env("SLUICE_KUBECONFIG");
	o->context = env("SLUICE_CONTEXT");
	o->watch_namespaces = env("SLUICE_WATCH_NAMESPACE");
	o->log_format = env("SLUICE_LOG_FORMAT");
	o->log_level = env("SLUICE_LOG_LEVEL");
	o->git = env("SLUICE_GIT_URL");
	o->dir = env("SLUICE_DIR");
	o->no_sync = env_bool("SLUICE_NO_SYNC");
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case O_KUBECONFIG:
			o->kubeconfig = optarg;
			break;
		case O_CONTEXT:
			o->context = optarg;
			break;
		case O_WATCH_NS:
			o->watch_namespaces = optarg;
			break;
		case O_LOG_FORMAT:
			o->log_format = optarg;
			break;
		case O_LOG_LEVEL:
			o->log_level = optarg;
			break;
		case O_NO_SYNC:
			o->no_sync = true;
			break;
		case O_GIT:
			o->git = optarg;
			break;
		case O_DIR:
			o->dir = optarg;
			break;
		case O_WORKERS:
			workers = optarg;
			break;
		case O_SHUTDOWN:
			shutdown = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return SL_EINVALID;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice run: unexpected argument '%s'\n", argv[optind]);
		return SL_EINVALID;
	}
	if (workers) {
		char *end;
		unsigned long n = strtoul(workers, &end, 10);
		if (*end || n == 0 || n > 4096) {
			fprintf(stderr, "sluice run: --workers: expected 1..4096\n");
			return SL_EINVALID;
		}
		o->workers = (unsigned)n;
	}
	o->shutdown_ms = SHUTDOWN_DEFAULT_MS;
	if (shutdown && sl_duration_parse_ms(shutdown, &o->shutdown_ms) < 0) {
		fprintf(stderr, "sluice run: --shutdown-timeout: expected a duration like 10s\n");
		return SL_EINVALID;
	}
	if (o->log_format && strcmp(o->log_format, "json") != 0 && strcmp(o->log_format, "text") != 0) {
		fprintf(stderr, "sluice run: --log-format: expected json or text\n");
		return SL_EINVALID;
	}
	return 0;
}

/* "a,b,c" -> NULL-terminated array (one allocation per string). */
static int split_namespaces(const char *s, char ***ret)
{
	char **v = calloc(1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return SL_ENOMEM;
	while (s && *s) {
		size_t len = strcspn(s, ",");
		if (len) {
			char **nv = realloc(v, (n + 2) * sizeof(*v));
			if (!nv)
				goto oom;
			v = nv;
			if (!(v[n] = sl_strndup(s, len)))
				goto oom;
			v[++n] = NULL;
		}
		s += len + (s[len] == ',');
	}
	*ret = v;
	return 0;
oom:
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return SL_ENOMEM;
}

static void log_counters(struct run *r)
{
	const struct sl_kube_metrics *km = sl_kube_get_metrics(r->kube);
	struct sl_controller_metrics m;
	uint64_t writes = 0, reads = 0;

	sl_controller_metrics(r->ctl, &m);
	for (int v = 0; v < SL_KUBE_VERB__MAX; v++)
		for (int s = 0; s < SL_KUBE_STATUS_MAX; s++) {
			bool w = v == SL_KUBE_VERB_CREATE || v == SL_KUBE_VERB_UPDATE ||
			         v == SL_KUBE_VERB_PATCH || v == SL_KUBE_VERB_APPLY ||
			         v == SL_KUBE_VERB_DELETE;
			*(w ? &writes : &reads) += km->requests[v][s];
		}
	sl_info("counters: streams=%zu running=%zu backfilling=%zu pending=%zu suspended=%zu failed=%zu "
	        "reconciles_ok=%llu noop=%llu wait=%llu conflict=%llu error=%llu queue=%zu delayed=%zu "
	        "in_flight=%zu api_writes=%llu api_reads=%llu events=%llu classes=%zu/%zu",
	        m.streams, m.streams_by_phase[SL_CONTROLLER_PHASE_RUNNING],
	        m.streams_by_phase[SL_CONTROLLER_PHASE_BACKFILLING],
	        m.streams_by_phase[SL_CONTROLLER_PHASE_PENDING],
	        m.streams_by_phase[SL_CONTROLLER_PHASE_SUSPENDED],
	        m.streams_by_phase[SL_CONTROLLER_PHASE_FAILED],
	        (unsigned long long)m.reconciles[SL_CONTROLLER_OK],
	        (unsigned long long)m.reconciles[SL_CONTROLLER_NOOP],
	        (unsigned long long)m.reconciles[SL_CONTROLLER_WAIT],
	        (unsigned long long)m.reconciles[SL_CONTROLLER_CONFLICT],
	        (unsigned long long)m.reconciles[SL_CONTROLLER_ERROR], m.queue_depth, m.queue_delayed,
	        m.in_flight, (unsigned long long)writes, (unsigned long long)reads,
	        (unsigned long long)m.events, m.classes_ready, m.classes);
}

static void stopped(void *payload)
{
	struct run *r = payload;
	sl_info("controller stopped; exiting");
	sl_loop_quit(r->loop, 0);
}

static void deadline_fire(struct sl_loop *loop, struct sl_timer *t, void *payload)
{
	struct run *r = payload;
	sl_warn("shutdown: %zu reconciles still writing after the timeout; exiting",
	        sl_controller_in_flight(r->ctl));
	sl_loop_quit(loop, 0);
}

static void on_signal(struct sl_loop *loop, int signo, void *payload)
{
	struct run *r = payload;

	if (signo == SIGHUP) {
		log_counters(r);
		return;
	}
	if (r->stopping) {
		sl_warn("second signal: exiting now");
		sl_loop_quit(loop, 0);
		return;
	}
	r->stopping = true;
	sl_info("signal %d: stopping; finishing writes in flight (at most %llu ms)", signo,
	        (unsigned long long)r->o.shutdown_ms);
	log_counters(r);
	sl_timer_arm(r->deadline, r->o.shutdown_ms);
	sl_controller_stop(r->ctl, stopped, r);
}

static int run_controller(struct run *r)
{
	struct sl_kube_config_opts co = {.kubeconfig = r->o.kubeconfig, .context = r->o.context};
	struct sl_kube_config *cfg = NULL;
	struct sl_error err = {0};
	int ret;

	if (split_namespaces(r->o.watch_namespaces, &r->namespaces) < 0 || sl_loop_new(&r->loop) < 0) {
		sl_err("out of memory");
		return 1;
	}
	if (sl_kube_config_load(&co, &cfg, &err) < 0) {
		sl_err("kubeconfig: %s", err.msg);
		return 1;
	}
	if (sl_kube_new(r->loop, cfg, NULL, &r->kube, &err) < 0) {
		sl_err("kubernetes client: %s", err.msg);
		return 1;
	}
	struct sl_controller_opts opts = {.namespaces = (const char *const *)r->namespaces,
	                                  .workers = r->o.workers};
	if (sl_controller_new(r->loop, r->kube, &opts, &r->ctl, &err) < 0 ||
	    sl_timer_new(r->loop, deadline_fire, r, &r->deadline) < 0 ||
	    sl_loop_on_signals(r->loop, on_signal, r) < 0 || sl_controller_start(r->ctl, &err) < 0) {
		sl_err("controller: %s", err.msg[0] ? err.msg : "setup failed");
		return 1;
	}
	char server[512];
	sl_url_redact(sl_kube_get_config(r->kube)->server, server, sizeof(server));
	sl_info("sluice run: controller started against %s, watching %s", server,
	        r->o.watch_namespaces ? r->o.watch_namespaces : "all namespaces");
	ret = sl_loop_run(r->loop);
	return ret == 0 ? 0 : 1;
}

static void run_free(struct run *r)
{
	sl_controller_free(r->ctl);
	sl_timer_free(r->deadline);
	sl_kube_free(r->kube);
	sl_loop_free(r->loop);
	for (size_t i = 0; r->namespaces && r->namespaces[i]; i++)
		free(r->namespaces[i]);
	free(r->namespaces);
}

int sl_cmd_run(int argc, char **argv)
{
	struct run r = {0};
	enum sl_log_level level = SL_LOG_INFO;
	int ret;

	if (parse_args(argc, argv, &r.o) < 0)
		return 2;
	if (r.o.log_level && sl_log_level_parse(r.o.log_level, &level) < 0) {
		fprintf(stderr, "sluice run: --log-level: expected debug, info, warn or error\n");
		return 2;
	}
	sl_log_setup(level,
	             r.o.log_format && strcmp(r.o.log_format, "json") == 0 ? SL_LOG_JSON : SL_LOG_TEXT);
	if (!r.o.no_sync && (r.o.git || r.o.dir)) {
		fprintf(stderr,
		        "sluice run: --git/--dir are not available in this build yet; use --no-sync\n");
		return 2;
	}
	ret = run_controller(&r);
	run_free(&r);
	return ret;
}
