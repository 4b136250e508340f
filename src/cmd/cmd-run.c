/* sluice run: the long-running process. A source (--git or --dir, or none)
 * feeds the sync engine on every snapshot and every --interval; the stream
 * controller reconciles streams and reports completed BackfillRequests to
 * the source's write-back; the HTTP server answers probes, /metrics and the
 * Git webhook; with --leader-elect only the holder of the Lease syncs and
 * reconciles. SIGTERM stops taking work, lets writes in flight finish
 * (bounded), releases the Lease and exits 0. */
#include "cmd.h"
#include "config.h"
#include "sluice/arcane.h"
#include "sluice/base.h"
#include "sluice/controller.h"
#include "sluice/kube.h"
#include "sluice/kube-lease.h"
#include "sluice/loop.h"
#include "sluice/manifest.h"
#include "sluice/server.h"
#include "sluice/source.h"
#include "sluice/sync.h"

#include <cjson/cJSON.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* ---- flags ------------------------------------------------------------------- */

struct run_opts {
	const char *kubeconfig, *context, *watch_namespaces;
	const char *log_format, *log_level;
	const char *git, *ref, *path, *git_username, *git_password_file, *git_ssh_key, *git_known_hosts,
	    *git_ca_file, *git_author;
	const char *dir, *source_id, *cache_dir, *inventory_ns;
	const char *interval, *shutdown_timeout, *workers, *git_timeout, *shard;
	const char *listen, *webhook_secret_file;
	const char *le_namespace, *le_name, *le_duration, *le_renew, *le_retry;
	bool git_allow_http, no_sync, no_controller, write_back, prune, allow_empty_prune, leader_elect;

	/* parsed */
	uint64_t interval_ms, git_timeout_ms, shutdown_ms, le_duration_ms, le_renew_ms, le_retry_ms;
	unsigned n_workers;
	char *author_name, *author_email;
	char lease_name[256];
};

#define S(field) SL_CMD_STRING_AT(struct run_opts, field)
#define B(field) SL_CMD_BOOL_AT(struct run_opts, field)

/* Every flag also reads from its SLUICE_* variable; a flag given on the
 * command line wins. */
static const struct sl_cmd_flag flags[] = {
    {"git", 0, "SLUICE_GIT_URL", S(git), "URL", "Git repository to sync (https, ssh, file)"},
    {"ref", 0, "SLUICE_GIT_REF", S(ref), "REF", "branch, tag or commit (default main)"},
    {"path", 0, "SLUICE_GIT_PATH", S(path), "DIR", "subdirectory of the repository holding the manifests"},
    {"git-username", 0, "SLUICE_GIT_USERNAME", S(git_username), "NAME", "HTTPS user"},
    {"git-password-file", 0, "SLUICE_GIT_PASSWORD_FILE", S(git_password_file), "FILE",
     "HTTPS password or token, re-read before every fetch"},
    {"git-ssh-key", 0, "SLUICE_GIT_SSH_KEY", S(git_ssh_key), "FILE", "SSH private key"},
    {"git-known-hosts", 0, "SLUICE_GIT_KNOWN_HOSTS", S(git_known_hosts), "FILE",
     "known_hosts for SSH (host keys are always checked)"},
    {"git-ca-file", 0, "SLUICE_GIT_CA_FILE", S(git_ca_file), "FILE", "CA bundle for HTTPS"},
    {"git-timeout", 0, "SLUICE_GIT_TIMEOUT", S(git_timeout), "DUR",
     "deadline of one clone, fetch or push; a stalled remote is cut then (default 2m)"},
    {"git-allow-http", 0, "SLUICE_GIT_ALLOW_HTTP", B(git_allow_http), NULL, "allow plain http:// remotes"},
    {"git-author", 0, "SLUICE_GIT_AUTHOR", S(git_author), "'N <E>'",
     "author of write-back commits (default sluice <sluice@localhost>)"},
    {"write-back", 0, "SLUICE_WRITE_BACK", B(write_back), NULL,
     "commit completed BackfillRequests back to the repository (--git only)"},
    {"dir", 0, "SLUICE_DIR", S(dir), "DIR", "directory of manifests to sync, watched with inotify"},
    {"interval", 0, "SLUICE_INTERVAL", S(interval), "DUR", "fetch and re-apply interval (default 1m)"},
    {"source-id", 0, "SLUICE_SOURCE_ID", S(source_id), "ID",
     "names the inventory (default \"default\";\nwith --shard, the shard's name)"},
    {"cache-dir", 0, "SLUICE_CACHE_DIR", S(cache_dir), "DIR",
     "where the Git clone lives (default: a temp dir)"},
    {"inventory-namespace", 0, "SLUICE_INVENTORY_NAMESPACE", S(inventory_ns), "NS",
     "namespace of the inventory ConfigMap (default: sluice's own)"},
    {"prune", 0, "SLUICE_PRUNE", B(prune), NULL, "delete objects that left the source"},
    {"allow-empty-prune", 0, "SLUICE_ALLOW_EMPTY_PRUNE", B(allow_empty_prune), NULL,
     "let a prune delete every object"},
    {"no-sync", 0, "SLUICE_NO_SYNC", B(no_sync), NULL, "run the controller alone (as with no source)"},
    {"no-controller", 0, "SLUICE_NO_CONTROLLER", B(no_controller), NULL, "sync only, no stream controller"},
    {"watch-namespace", 0, "SLUICE_WATCH_NAMESPACE", S(watch_namespaces), "NS,...",
     "namespaces the controller watches (default: all)"},
    {"workers", 0, "SLUICE_WORKERS", S(workers), "N", "streams reconciled at once (default 32)"},
    {"shard", 0, "SLUICE_SHARD", S(shard), "NAME",
     "handle only streams labelled sluice.dev/shard=NAME (default: those\nwithout the label)"},
    {"leader-elect", 0, "SLUICE_LEADER_ELECT", B(leader_elect), NULL,
     "only the holder of a Lease syncs and reconciles"},
    {"leader-elect-namespace", 0, "SLUICE_LEADER_ELECT_NAMESPACE", S(le_namespace), "NS",
     "namespace of the Lease (default: $POD_NAMESPACE, else the inventory's)"},
    {"leader-elect-name", 0, "SLUICE_LEADER_ELECT_NAME", S(le_name), "NAME",
     "name of the Lease (default sluice; with --shard,\nsuffixed -NAME)"},
    {"leader-elect-lease-duration", 0, "SLUICE_LEADER_ELECT_LEASE_DURATION", S(le_duration), "DUR",
     "(default 15s)"},
    {"leader-elect-renew-deadline", 0, "SLUICE_LEADER_ELECT_RENEW_DEADLINE", S(le_renew), "DUR",
     "(default 10s)"},
    {"leader-elect-retry-period", 0, "SLUICE_LEADER_ELECT_RETRY_PERIOD", S(le_retry), "DUR", "(default 2s)"},
    {"listen", 0, "SLUICE_LISTEN", S(listen), "ADDR",
     "HTTP endpoints: health, metrics, webhook (default :8888; \"off\": none)"},
    {"webhook-secret-file", 0, "SLUICE_WEBHOOK_SECRET_FILE", S(webhook_secret_file), "FILE",
     "enables POST /hooks/git (GitHub HMAC secret or GitLab token)"},
    {"kubeconfig", 0, "SLUICE_KUBECONFIG", S(kubeconfig), "FILE",
     "kubeconfig (default: in-cluster, $KUBECONFIG, ~/.kube/config)"},
    {"context", 0, "SLUICE_CONTEXT", S(context), "NAME", "kubeconfig context"},
    {"shutdown-timeout", 0, "SLUICE_SHUTDOWN_TIMEOUT", S(shutdown_timeout), "DUR",
     "bound on finishing writes after SIGTERM (default 10s)"},
    {"log-format", 0, "SLUICE_LOG_FORMAT", S(log_format), "FMT", "text or json (default text)"},
    {"log-level", 0, "SLUICE_LOG_LEVEL", S(log_level), "LEVEL", "debug, info, warn, error (default info)"},
    {"help", 'h', NULL, SL_CMD_HELP, 0, NULL, NULL},
    {"help-env", 0, NULL, SL_CMD_HELP_ENV, 0, NULL, NULL},
};

#undef S
#undef B

const struct sl_cmd_spec sl_cmd__run_spec = {
    .name = "run",
    .flags = flags,
    .n_flags = SL_ARRAY_SIZE(flags),
    .usage = "usage: sluice run [--git URL [--ref REF] [--path DIR] | --dir DIR] [OPTIONS]\n\n"
             "Syncs a source to the cluster on every change and every --interval, and runs the\n"
             "stream controller. With neither --git nor --dir: the controller alone.\n\n",
    .footer = "\nEvery flag also reads from the environment variable named above in the help of\n"
              "`sluice run --help-env`, e.g. SLUICE_GIT_URL, SLUICE_LEADER_ELECT=true.\n"
              "SIGTERM/SIGINT: stop taking work, finish writes in flight, release the Lease, exit 0.\n"
              "SIGHUP: log counters. SIGUSR1: log each informer's object count and digest, and the heap.\n",
    .name_width = 30,
    .metavar_width = 9,
    .hint_on_bad_flag = true,
};

static int parse_duration(const char *flag, const char *v, uint64_t def, uint64_t *ret)
{
	if (!v) {
		*ret = def;
		return 0;
	}
	if (sl_duration_parse_ms(v, ret) < 0 || *ret == 0) {
		fprintf(stderr, "sluice run: --%s: expected a duration like 30s or 1m, got '%s'\n", flag, v);
		return SL_EINVALID;
	}
	return 0;
}

/* "Name <email>" */
static int parse_author(struct run_opts *o)
{
	const char *lt, *gt;

	if (!o->git_author)
		return 0;
	lt = strchr(o->git_author, '<');
	gt = lt ? strchr(lt, '>') : NULL;
	if (!lt || !gt || gt[1] || lt == o->git_author || gt == lt + 1) {
		fprintf(stderr, "sluice run: --git-author: expected 'Name <email>'\n");
		return SL_EINVALID;
	}
	size_t n = (size_t)(lt - o->git_author);
	while (n && o->git_author[n - 1] == ' ')
		n--;
	o->author_name = sl_strndup(o->git_author, n);
	o->author_email = sl_strndup(lt + 1, (size_t)(gt - lt - 1));
	return o->author_name && o->author_email ? 0 : SL_ENOMEM;
}

/* Missing and contradicting flags, each with the sentence a user needs: first
 * the source and what only a source of one kind takes. */
static int check_source(const struct run_opts *o)
{
	const char *git_only[][2] = {
	    {"ref", o->ref},
	    {"path", o->path},
	    {"git-username", o->git_username},
	    {"git-password-file", o->git_password_file},
	    {"git-ssh-key", o->git_ssh_key},
	    {"git-known-hosts", o->git_known_hosts},
	    {"git-ca-file", o->git_ca_file},
	    {"git-timeout", o->git_timeout},
	    {"git-author", o->git_author},
	};
	bool source = o->git || o->dir;

	if (o->git && o->dir) {
		fprintf(stderr, "sluice run: --git and --dir contradict each other: give one source\n");
		return SL_EINVALID;
	}
	if (o->no_sync && source) {
		fprintf(stderr, "sluice run: --no-sync contradicts --%s: drop one\n", o->git ? "git" : "dir");
		return SL_EINVALID;
	}
	for (size_t i = 0; i < SL_ARRAY_SIZE(git_only); i++)
		if (git_only[i][1] && !o->git) {
			fprintf(stderr, "sluice run: --%s needs --git\n", git_only[i][0]);
			return SL_EINVALID;
		}
	if (o->write_back && !o->git) {
		fprintf(stderr,
		        "sluice run: --write-back needs --git (a --dir source is never written to)\n");
		return SL_EINVALID;
	}
	return 0;
}

/* Then flags that need another one, or contradict it. */
static int check_combinations(const struct run_opts *o)
{
	bool source = o->git || o->dir;

	if (o->write_back && o->no_controller) {
		fprintf(stderr, "sluice run: --write-back needs the controller (it reports the completions): "
		                "drop --no-controller\n");
		return SL_EINVALID;
	}
	if (o->no_controller && !source) {
		fprintf(stderr, "sluice run: --no-controller without --git or --dir leaves nothing to do\n");
		return SL_EINVALID;
	}
	if (!source && (o->prune || o->allow_empty_prune || o->webhook_secret_file || o->source_id ||
	                o->interval || o->inventory_ns)) {
		fprintf(stderr, "sluice run: --%s needs a source (--git or --dir)\n",
		        o->prune                 ? "prune"
		        : o->allow_empty_prune   ? "allow-empty-prune"
		        : o->webhook_secret_file ? "webhook-secret-file"
		        : o->source_id           ? "source-id"
		        : o->interval            ? "interval"
		                                 : "inventory-namespace");
		return SL_EINVALID;
	}
	if (o->allow_empty_prune && !o->prune) {
		fprintf(stderr, "sluice run: --allow-empty-prune only makes sense with --prune\n");
		return SL_EINVALID;
	}
	if (o->no_controller && (o->watch_namespaces || o->shard)) {
		fprintf(stderr, "sluice run: --%s contradicts --no-controller\n",
		        o->watch_namespaces ? "watch-namespace" : "shard");
		return SL_EINVALID;
	}
	if (!o->leader_elect &&
	    (o->le_namespace || o->le_name || o->le_duration || o->le_renew || o->le_retry)) {
		fprintf(stderr, "sluice run: --leader-elect-* options need --leader-elect\n");
		return SL_EINVALID;
	}
	if (o->webhook_secret_file && o->listen && strcmp(o->listen, "off") == 0) {
		fprintf(stderr, "sluice run: --webhook-secret-file contradicts --listen off\n");
		return SL_EINVALID;
	}
	if (o->git_ssh_key && !o->git_known_hosts) {
		fprintf(stderr,
		        "sluice run: --git-ssh-key needs --git-known-hosts (host keys are always checked)\n");
		return SL_EINVALID;
	}
	if (o->git_username && !o->git_password_file) {
		fprintf(stderr, "sluice run: --git-username needs --git-password-file\n");
		return SL_EINVALID;
	}
	return 0;
}

/* Last the values: formats, numbers, durations and the author. */
static int parse_values(struct run_opts *o)
{
	if (o->log_format && strcmp(o->log_format, "json") != 0 && strcmp(o->log_format, "text") != 0) {
		fprintf(stderr, "sluice run: --log-format: expected json or text\n");
		return SL_EINVALID;
	}
	if (o->workers) {
		char *end;
		unsigned long n = strtoul(o->workers, &end, 10);
		if (*end || n == 0 || n > 4096) {
			fprintf(stderr, "sluice run: --workers: expected 1..4096\n");
			return SL_EINVALID;
		}
		o->n_workers = (unsigned)n;
	}
	if (parse_duration("interval", o->interval, 60000, &o->interval_ms) < 0 ||
	    parse_duration("git-timeout", o->git_timeout, 120000, &o->git_timeout_ms) < 0 ||
	    parse_duration("shutdown-timeout", o->shutdown_timeout, 10000, &o->shutdown_ms) < 0 ||
	    parse_duration("leader-elect-lease-duration", o->le_duration, 15000, &o->le_duration_ms) < 0 ||
	    parse_duration("leader-elect-renew-deadline", o->le_renew, 10000, &o->le_renew_ms) < 0 ||
	    parse_duration("leader-elect-retry-period", o->le_retry, 2000, &o->le_retry_ms) < 0)
		return SL_EINVALID;
	if (o->shard) {
		struct sl_error err = {0};
		if (sl_arcane_shard_check(o->shard, &err) < 0) {
			fprintf(stderr, "sluice run: --shard: %s\n", err.msg);
			return SL_EINVALID;
		}
	}
	/* Each shard competes for a Lease of its own. */
	if (!sl_snprintf_ok(o->lease_name, sizeof(o->lease_name), "%s%s%s",
	                    o->le_name ? o->le_name : "sluice", o->shard ? "-" : "",
	                    o->shard ? o->shard : "")) {
		fprintf(stderr, "sluice run: --leader-elect-name: too long\n");
		return SL_EINVALID;
	}
	if (o->leader_elect && !(o->le_duration_ms > o->le_renew_ms && o->le_renew_ms > o->le_retry_ms)) {
		fprintf(stderr,
		        "sluice run: leader election needs lease duration > renew deadline > retry period\n");
		return SL_EINVALID;
	}
	return parse_author(o);
}

/* Returns 0, 1 after a help text, or a negative code after saying why. */
static int parse_args(int argc, char **argv, struct run_opts *o)
{
	int r = sl_cmd__parse(&sl_cmd__run_spec, argc, argv, o, NULL);

	if (r == 0)
		r = check_source(o);
	if (r == 0)
		r = check_combinations(o);
	if (r == 0)
		r = parse_values(o);
	return r;
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

/* ---- the process --------------------------------------------------------------- */

/* A write-back asked for (key "namespace/name"); kept so that the repeated
 * deliveries of one completion cost one fetch, and so that one that failed
 * for a reason that can pass (the remote refused the push, was away, timed
 * out) is tried again after the next sync: a completion is announced once,
 * and nothing else would write it. */
struct wb_entry {
	char *key;
	char *ns, *name, *file; /* the request and its document file#index */
	unsigned index;
	bool done;
	bool in_flight;
	bool failed;
};

struct run {
	struct run_opts o;
	struct sl_loop *loop;
	struct sl_kube *kube;
	struct sl_controller *ctl;
	struct sl_sync *sync;
	struct sl_source *src;
	struct sl_server *http;
	struct sl_kube_lease *lease;
	struct sl_server_metrics *metrics;
	struct sl_loop_timer *deadline, *resync, *trim;
	char **namespaces;
	char *inv_ns;
	char *lease_ns;

	bool leading;      /* allowed to work: holds the Lease, or no election */
	bool stopping;     /* SIGTERM seen */
	bool ctl_started;  /* informers started */
	bool ctl_stopped;  /* stop done: nothing in flight */
	bool sync_pending; /* a sync was asked for while one ran */
	bool synced_once;  /* a sync finished (whatever its result) */
	bool releasing;
	int exit_code;
	/* why the source's last check failed ("" when it did not): recorded
	 * in the sync status next to the last good revision */
	char source_error[SL_ERRMSG_MAX];

	struct wb_entry *wb;
	size_t n_wb, cap_wb;
	unsigned wb_in_flight;

	struct sl_server_metric *m_leader, *m_leader_changes, *m_api, *m_api_retries, *m_watch_restarts,
	    *m_relists, *m_watch_events, *m_syncs, *m_sync_objects, *m_sync_last, *m_sync_last_ok,
	    *m_sync_revision, *m_sync_duration, *m_reconciles, *m_reconcile_duration, *m_queue,
	    *m_queue_delayed, *m_in_flight, *m_remembered, *m_streams, *m_classes, *m_backfill_start,
	    *m_jobs_created, *m_backfills_completed, *m_checks, *m_snapshots, *m_parsed, *m_writebacks,
	    *m_source_last, *m_ctl_actions;
};

static void maybe_finish(struct run *r);

static const char *source_desc(struct run *r, char *buf, size_t n)
{
	if (r->o.git)
		sl_url_redact(r->o.git, buf, n);
	else
		snprintf(buf, n, "%s", r->o.dir ? r->o.dir : "");
	return buf;
}

/* ---- sync ---- */

static void wb_retry(struct run *r);

static void on_sync_done(struct sl_sync *s, const struct sl_sync_report *rep, void *payload)
{
	struct run *r = payload;
	enum sl_log_level lvl = rep->code == 0 ? SL_LOG_INFO : SL_LOG_WARN;

	for (size_t i = 0; i < rep->n_problems; i++) {
		const struct sl_sync_problem *p = &rep->problems[i];
		if (p->kind || p->name)
			sl_log_obj(SL_LOG_WARN, p->kind ? p->kind : "?", p->ns, p->name ? p->name : "?",
			           "not applied: %s:%d: %s", p->file ? p->file : "", p->line, p->reason);
		else
			sl_warn("not applied: %s:%d: %s", p->file ? p->file : "", p->line, p->reason);
	}
	if (rep->error)
		sl_warn("sync %s: %s", rep->revision ? rep->revision : "", rep->error);
	if (rep->prune_blocked)
		sl_warn("sync %s: prune did not run: %s", rep->revision ? rep->revision : "",
		        rep->prune_blocked);
	sl_log(lvl, "sync %s: %s: applied %zu, unchanged %zu, pruned %zu, failed %zu, %zu write(s), %llu ms",
	       rep->revision ? rep->revision : "", rep->result, rep->applied, rep->unchanged, rep->pruned,
	       rep->failed, rep->writes, (unsigned long long)rep->duration_ms);
	if (r->m_sync_duration)
		sl_server_metric_observe(r->m_sync_duration, (const char *const[]){r->o.source_id},
		                         (double)rep->duration_ms / 1000.0);
	/* the info metric names only the revision of the last good sync */
	if (r->m_sync_revision && rep->code == 0 && rep->revision && *rep->revision) {
		sl_server_metric_clear(r->m_sync_revision);
		sl_server_metric_set(r->m_sync_revision, (const char *const[]){r->o.source_id, rep->revision},
		                     1);
	}
	r->synced_once = true;
	if (r->stopping) {
		maybe_finish(r);
		return;
	}
	wb_retry(r);
	sl_loop_timer_arm(r->resync, r->o.interval_ms);
	if (r->sync_pending) {
		r->sync_pending = false;
		sl_loop_timer_arm(r->resync, 0);
	}
}

static int plan_snapshot(struct run *r, struct sl_source_snapshot *snap, struct sl_sync_plan **ret)
{
	const struct sl_manifest_set *set = sl_source_snapshot_manifests(snap);

	if (!set)
		return SL_EINVALID;
	/* files left out of the snapshot are errors: they keep prune from running */
	return sl_sync_plan_from_manifests(r->o.source_id, sl_source_snapshot_revision(snap), set,
	                                   sl_source_snapshot_problems(snap), ret);
}

/* Syncs the current snapshot now, or after the run in flight. */
static void request_sync(struct run *r)
{
	struct sl_source_snapshot *snap;
	struct sl_sync_plan *plan = NULL;
	int e;

	if (!r->sync || !r->leading || r->stopping)
		return;
	if (sl_sync_running(r->sync)) {
		r->sync_pending = true;
		return;
	}
	snap = sl_source_current(r->src);
	if (!snap)
		return; /* the first snapshot triggers the first sync */
	e = plan_snapshot(r, snap, &plan);
	if (e < 0) {
		sl_err("sync %s: planning: %s", sl_source_snapshot_revision(snap), sl_strerror(e));
		sl_loop_timer_arm(r->resync, r->o.interval_ms);
		return;
	}
	sl_debug("sync %s: %zu object(s)", sl_source_snapshot_revision(snap), plan->n_items);
	e = sl_sync_run(r->sync, plan, r->source_error[0] ? r->source_error : NULL, on_sync_done, r);
	if (e < 0) {
		sl_err("sync %s: %s", sl_source_snapshot_revision(snap), sl_strerror(e));
		sl_loop_timer_arm(r->resync, r->o.interval_ms);
	}
}

static void on_resync(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	request_sync(payload);
}

static void on_source(struct sl_source *src, const struct sl_source_event *ev, void *payload)
{
	struct run *r = payload;
	char desc[1024];

	switch (ev->type) {
	case SL_SOURCE_EVENT_SNAPSHOT:
		sl_info("source %s: revision %s (%zu file(s))", source_desc(r, desc, sizeof(desc)),
		        sl_source_snapshot_revision(ev->snapshot), sl_source_snapshot_files(ev->snapshot));
		r->source_error[0] = '\0';
		request_sync(r);
		break;
	case SL_SOURCE_EVENT_UNCHANGED:
		sl_debug("source %s: unchanged", source_desc(r, desc, sizeof(desc)));
		if (r->source_error[0]) {
			/* the status stops saying the source fails */
			r->source_error[0] = '\0';
			request_sync(r);
		}
		break;
	case SL_SOURCE_EVENT_ERROR: {
		const char *msg = ev->error && ev->error->msg[0] ? ev->error->msg : "source unavailable";
		bool changed = strcmp(r->source_error, msg) != 0;

		sl_warn("source %s: %s", source_desc(r, desc, sizeof(desc)), msg);
		snprintf(r->source_error, sizeof(r->source_error), "%s", msg);
		/* Before any snapshot the failure is recorded in the sync status
		 * (nothing is applied or pruned); later the last good snapshot
		 * stays in force, and the status says why it is not newer. A
		 * failure that repeats itself costs no sync. */
		if (!ev->snapshot && r->sync && r->leading && !r->stopping && !sl_sync_running(r->sync))
			sl_sync_run(r->sync, NULL, msg, on_sync_done, r);
		else if (ev->snapshot && changed)
			request_sync(r);
		break;
	}
	}
}

/* ---- write-back ---- */

static struct wb_entry *wb_get(struct run *r, const char *key, bool create)
{
	for (size_t i = 0; i < r->n_wb; i++)
		if (strcmp(r->wb[i].key, key) == 0)
			return &r->wb[i];
	if (!create)
		return NULL;
	if (SL_GROW(r->wb, r->cap_wb, r->n_wb + 1, 16) < 0)
		return NULL;
	r->wb[r->n_wb] = (struct wb_entry){.key = sl_strdup(key)};
	if (!r->wb[r->n_wb].key)
		return NULL;
	return &r->wb[r->n_wb++];
}

static void wb_entry_free(struct wb_entry *e)
{
	free(e->key);
	free(e->ns);
	free(e->name);
	free(e->file);
}

/* Failures that another attempt cannot mend: the document cannot be
 * edited, or the ref is no branch. */
static bool wb_permanent(int code)
{
	return code == SL_EINVALID || code == SL_ETOOLARGE || code == SL_EUNSUPPORTED;
}

struct wb_call {
	struct run *r;
	char key[320];
	char ns[256];
	char name[256];
};

static void on_written_back(struct sl_source *src, int code, const char *commit, const struct sl_error *err,
                            void *payload)
{
	struct wb_call *c = payload;
	struct run *r = c->r;
	struct wb_entry *e = wb_get(r, c->key, false);

	r->wb_in_flight--;
	if (e)
		e->in_flight = false;
	if (code == 0 && commit && *commit)
		sl_log_obj(SL_LOG_INFO, "BackfillRequest", c->ns, c->name, "completion committed as %s",
		           commit);
	else if (code == 0)
		sl_log_obj(SL_LOG_INFO, "BackfillRequest", c->ns, c->name,
		           "already completed in the repository");
	else if (code == SL_ENOTFOUND)
		sl_log_obj(SL_LOG_WARN, "BackfillRequest", c->ns, c->name,
		           "write-back skipped: the document is gone from the repository");
	else
		sl_log_obj(SL_LOG_ERROR, "BackfillRequest", c->ns, c->name, "write-back failed: %s",
		           err && err->msg[0] ? err->msg : sl_strerror(code));
	if (e && (code == 0 || code == SL_ENOTFOUND))
		e->done = true;
	else if (e && !wb_permanent(code))
		e->failed = true; /* tried again after the next sync */
	free(c);
	if (r->stopping)
		maybe_finish(r);
}

/* The document at file#index of the current snapshot already says
 * completed: true (the repository needs no commit). */
static bool already_completed(struct run *r, const char *file, unsigned index)
{
	struct sl_source_snapshot *snap = sl_source_current(r->src);
	const struct sl_manifest_set *set = snap ? sl_source_snapshot_manifests(snap) : NULL;
	size_t n = set ? sl_manifest_set_doc_count(set) : 0;

	for (size_t i = 0; i < n; i++) {
		const struct sl_manifest_doc *d = sl_manifest_set_doc(set, i);
		if (d->index == index && d->file && strcmp(d->file, file) == 0) {
			const cJSON *spec = cJSON_GetObjectItemCaseSensitive(d->obj, "spec");
			return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "completed"));
		}
	}
	return false;
}

/* Writes e back unless the repository already says completed. */
static void wb_start(struct run *r, struct wb_entry *e)
{
	struct wb_call *call;
	int code;

	e->failed = false;
	if (already_completed(r, e->file, e->index)) {
		e->done = true;
		return;
	}
	call = calloc(1, sizeof(*call));
	if (!call) {
		e->failed = true;
		return;
	}
	call->r = r;
	snprintf(call->key, sizeof(call->key), "%s", e->key);
	snprintf(call->ns, sizeof(call->ns), "%s", e->ns);
	snprintf(call->name, sizeof(call->name), "%s", e->name);
	code = sl_source_write_back(r->src, e->file, e->index, e->name, on_written_back, call);
	if (code < 0) {
		sl_log_obj(SL_LOG_ERROR, "BackfillRequest", e->ns, e->name, "write-back: %s",
		           sl_strerror(code));
		free(call);
		e->failed = !wb_permanent(code);
		return;
	}
	e->in_flight = true;
	r->wb_in_flight++;
	sl_log_obj(SL_LOG_INFO, "BackfillRequest", e->ns, e->name, "completed: writing back %s#%u", e->file,
	           e->index);
}

/* After a sync: the write-backs that failed are tried again (their
 * attempts back off inside the source; the sync interval spaces them). */
static void wb_retry(struct run *r)
{
	if (!r->o.write_back || !r->src || !r->leading || r->stopping)
		return;
	for (size_t i = 0; i < r->n_wb; i++) {
		struct wb_entry *e = &r->wb[i];
		if (!e->failed || e->done || e->in_flight)
			continue;
		sl_log_obj(SL_LOG_INFO, "BackfillRequest", e->ns, e->name, "trying the write-back again");
		wb_start(r, e);
	}
}

static void on_completion(const struct sl_controller_completion *cc, void *payload)
{
	struct run *r = payload;
	char file[1024], key[320];
	const char *hash;
	unsigned long index;
	char *end;
	struct wb_entry *e;

	if (!r->o.write_back || !r->src || !r->leading || r->stopping)
		return;
	if (strcmp(cc->source, r->o.source_id) != 0)
		return; /* applied by another source: not ours to write */
	hash = strrchr(cc->path, '#');
	if (!hash || (size_t)(hash - cc->path) >= sizeof(file) || !hash[1]) {
		sl_log_obj(SL_LOG_WARN, "BackfillRequest", cc->ns, cc->name,
		           "write-back: bad %s annotation '%s'", SL_ARCANE_ANN_PATH, cc->path);
		return;
	}
	index = strtoul(hash + 1, &end, 10);
	if (*end || index > 1000000)
		return;
	memcpy(file, cc->path, (size_t)(hash - cc->path));
	file[hash - cc->path] = 0;
	snprintf(key, sizeof(key), "%s/%s", cc->ns ? cc->ns : "", cc->name ? cc->name : "");
	e = wb_get(r, key, true);
	if (!e || e->done || e->in_flight)
		return;
	/* the document as announced now (it may have moved since a failure) */
	free(e->ns);
	free(e->name);
	free(e->file);
	e->ns = sl_strdup(cc->ns ? cc->ns : "");
	e->name = sl_strdup(cc->name ? cc->name : "");
	e->file = sl_strdup(file);
	e->index = (unsigned)index;
	if (!e->ns || !e->name || !e->file) {
		sl_log_obj(SL_LOG_ERROR, "BackfillRequest", cc->ns, cc->name, "write-back: %s",
		           sl_strerror(SL_ENOMEM));
		return;
	}
	wb_start(r, e);
}

/* ---- leadership ---- */

static void start_work(struct run *r)
{
	struct sl_error err = {0};

	r->leading = true;
	if (r->ctl && !r->ctl_started) {
		if (sl_controller_start(r->ctl, &err) < 0) {
			sl_err("controller: %s", err.msg);
			r->exit_code = 1;
			sl_loop_quit(r->loop, 1);
			return;
		}
		r->ctl_started = true;
	}
	request_sync(r);
}

static void on_lease_started(void *payload)
{
	struct run *r = payload;
	sl_info("leader election: %s is now the leader", sl_kube_lease_get_identity(r->lease));
	start_work(r);
}

/* Another replica may act from now on: stop at once. The process exits (as
 * client-go operators do) and comes back as a standby with fresh state. */
static void on_lease_stopped(void *payload)
{
	struct run *r = payload;

	r->leading = false;
	sl_err("leader election: lost the lease; stopping work and exiting");
	sl_sync_free(r->sync);
	r->sync = NULL;
	if (r->ctl)
		sl_controller_stop(r->ctl, NULL, NULL);
	r->exit_code = 1;
	sl_loop_quit(r->loop, 1);
}

/* ---- probes ---- */

static bool probe_ready(void *payload, const char **why)
{
	struct run *r = payload;

	if (r->stopping)
		*why = "shutting down";
	else if (!r->leading)
		*why = "not the leader";
	else if (r->ctl && !sl_controller_synced(r->ctl))
		*why = "controller caches not synced";
	else if (r->sync && !r->synced_once)
		*why = "first sync not finished";
	else
		return true;
	return false;
}

/* Started: a standby is started once it competes for the Lease; a leader
 * once its caches synced (or, without a controller, once the source gave
 * a snapshot). */
static bool probe_started(void *payload, const char **why)
{
	struct run *r = payload;

	if (r->lease && !r->leading)
		return true;
	if (r->ctl && !sl_controller_synced(r->ctl)) {
		*why = "controller caches not synced";
		return false;
	}
	if (!r->ctl && r->src && !sl_source_current(r->src)) {
		*why = "no snapshot yet";
		return false;
	}
	return true;
}

static void on_webhook(void *payload)
{
	struct run *r = payload;
	if (r->src && !r->stopping) {
		sl_info("webhook: checking the source now");
		sl_source_trigger(r->src);
	}
}

/* ---- metrics ---- */

#define L(...) ((const char *const[]){__VA_ARGS__})

static void collect_leader_and_api(struct run *r)
{
	char code[8];

	/* a shard's series carry its name: each shard has a leader to alert on */
	const char *shard = r->o.shard;
	if (r->lease) {
		struct sl_kube_lease_stats ls;
		sl_kube_lease_stats(r->lease, &ls);
		sl_server_metric_set(r->m_leader, shard ? L(shard) : NULL, ls.leader ? 1 : 0);
		sl_server_metric_set(r->m_leader_changes, shard ? L("acquired", shard) : L("acquired"),
		                     (double)ls.acquired);
		sl_server_metric_set(r->m_leader_changes, shard ? L("lost", shard) : L("lost"),
		                     (double)ls.lost);
	} else {
		sl_server_metric_set(r->m_leader, shard ? L(shard) : NULL, 1);
	}
	if (r->kube) {
		const struct sl_kube_metrics *km = sl_kube_get_metrics(r->kube);
		for (int v = 0; v < SL_KUBE_VERB__MAX; v++)
			for (int s = 0; s < SL_KUBE_STATUS_MAX; s++) {
				if (!km->requests[v][s])
					continue;
				snprintf(code, sizeof(code), "%d", s);
				sl_server_metric_set(r->m_api, L(sl_kube_verb_name(v), s ? code : "none"),
				                     (double)km->requests[v][s]);
			}
		sl_server_metric_set(r->m_api_retries, NULL, (double)km->retries);
		sl_server_metric_set(r->m_watch_restarts, NULL, (double)km->watch_restarts);
		sl_server_metric_set(r->m_relists, NULL, (double)km->relists);
		sl_server_metric_set(r->m_watch_events, NULL, (double)km->watch_events);
	}
}

static void collect_sync(struct run *r)
{
	const char *id = r->o.source_id;

	if (r->sync) {
		const struct sl_sync_metrics *sm = sl_sync_get_metrics(r->sync);
		sl_server_metric_set(r->m_syncs, L(id, "ok"), (double)sm->syncs_ok);
		sl_server_metric_set(r->m_syncs, L(id, "failed"), (double)sm->syncs_failed);
		sl_server_metric_set(r->m_syncs, L(id, "source_error"), (double)sm->syncs_source_error);
		sl_server_metric_set(r->m_sync_objects, L(id, "applied"), (double)sm->objects_applied);
		sl_server_metric_set(r->m_sync_objects, L(id, "unchanged"), (double)sm->objects_unchanged);
		sl_server_metric_set(r->m_sync_objects, L(id, "failed"), (double)sm->objects_failed);
		sl_server_metric_set(r->m_sync_objects, L(id, "pruned"), (double)sm->objects_pruned);
		sl_server_metric_set(r->m_sync_last, L(id), (double)sm->last_sync_end);
		sl_server_metric_set(r->m_sync_last_ok, L(id), (double)sm->last_success_end);
	}
}

static void collect_class(const struct sl_controller_class_metrics *cm, void *payload)
{
	struct run *r = payload;

	for (int p = 0; p < SL_CONTROLLER_PHASE__MAX; p++) {
		const char *phase = sl_controller_phase_name(p);
		/* streams without a status.phase yet */
		sl_server_metric_set(r->m_streams, L(cm->name, phase && *phase ? phase : "None"),
		                     (double)cm->streams_by_phase[p]);
	}
	if (cm->backfill_oldest_start)
		sl_server_metric_set(r->m_backfill_start, L(cm->name), (double)cm->backfill_oldest_start);
}

static void collect_controller(struct run *r)
{
	if (r->ctl) {
		struct sl_controller_metrics cm;
		sl_controller_metrics(r->ctl, &cm);
		for (int i = 0; i < SL_CONTROLLER_RESULT__MAX; i++)
			sl_server_metric_set(r->m_reconciles, L(sl_controller_result_name(i)),
			                     (double)cm.reconciles[i]);
		sl_server_metric_set_histogram(r->m_reconcile_duration, NULL, cm.reconcile_buckets,
		                               SL_ARRAY_SIZE(cm.reconcile_buckets), cm.reconcile_seconds);
		sl_server_metric_set(r->m_ctl_actions, NULL, (double)cm.actions);
		for (int t = 0; t < SL_CONTROLLER_JOB__MAX; t++)
			sl_server_metric_set(r->m_jobs_created, L(sl_controller_job_type_name(t)),
			                     (double)cm.jobs_created[t]);
		sl_server_metric_set(r->m_backfills_completed, NULL, (double)cm.backfills_completed);
		sl_server_metric_set(r->m_queue, NULL, (double)cm.queue_depth);
		sl_server_metric_set(r->m_queue_delayed, NULL, (double)cm.queue_delayed);
		sl_server_metric_set(r->m_in_flight, NULL, (double)cm.in_flight);
		sl_server_metric_set(r->m_remembered, NULL, (double)cm.remembered);
		sl_server_metric_set(r->m_classes, L("ready"), (double)cm.classes_ready);
		sl_server_metric_set(r->m_classes, L("not_ready"), (double)(cm.classes - cm.classes_ready));
		/* rebuilt: a StreamClass that went takes its series along */
		sl_server_metric_clear(r->m_streams);
		sl_server_metric_clear(r->m_backfill_start);
		sl_controller_class_metrics(r->ctl, collect_class, r);
	}
}

static void collect_source(struct run *r)
{
	const char *id = r->o.source_id;

	if (r->src) {
		struct sl_source_stats ss;
		sl_source_stats(r->src, &ss);
		sl_server_metric_set(r->m_checks, L(id, "ok"), (double)(ss.checks - ss.check_failures));
		sl_server_metric_set(r->m_checks, L(id, "failed"), (double)ss.check_failures);
		sl_server_metric_set(r->m_snapshots, L(id), (double)ss.snapshots);
		sl_server_metric_set(r->m_parsed, L(id), (double)ss.files_parsed);
		sl_server_metric_set(r->m_writebacks, L(id, "pushed"), (double)ss.writebacks);
		sl_server_metric_set(r->m_writebacks, L(id, "failed"), (double)ss.writeback_failures);
		sl_server_metric_set(r->m_source_last, L(id), (double)ss.last_success);
	}
}

/* On every scrape: the counters of each part, read where they are kept. */
static void collect(struct sl_server_metrics *m, void *payload)
{
	struct run *r = payload;

	collect_leader_and_api(r);
	collect_sync(r);
	collect_controller(r);
	collect_source(r);
}

/* The metrics of `sluice run`. Names, types and labels are listed in
 * docs/operations.md (tests/integration/run/metrics_test.py keeps the two
 * in step and lints the output with promtool). */
/* Registering a family: each REG is skipped once e holds an error. */
#define REG(type, name, help, labels, ret) \
	if (e == 0)                        \
	e = sl_server_metrics_register(r->metrics, type, name, help, labels, NULL, 0, ret)
#define REG_HISTOGRAM(name, help, labels, buckets, n, ret)                                                  \
	if (e == 0)                                                                                         \
	e = sl_server_metrics_register(r->metrics, SL_SERVER_METRIC_HISTOGRAM, name, help, labels, buckets, \
	                               n, ret)

/* The process, the leader election and the API client. */
static int setup_metrics_process(struct run *r, struct sl_server_metric **info,
                                 struct sl_server_metric **start)
{
	int e = 0;

	REG(SL_SERVER_METRIC_GAUGE, "sluice_build_info", "Version of this sluice (value 1).", "version",
	    info);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_start_time_seconds",
	    "Start time of the process, seconds since the epoch.", NULL, start);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_leader",
	    "1 when this process may work (holds the Lease, or no election), else 0; with --shard, by shard.",
	    r->o.shard ? "shard" : NULL, &r->m_leader);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_leader_changes_total",
	    "Times leadership was acquired or lost (not released), by event; with --shard, by shard.",
	    r->o.shard ? "event,shard" : "event", &r->m_leader_changes);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_api_requests_total",
	    "Kubernetes API requests completed, by verb and HTTP status code (none: no response).",
	    "verb,code", &r->m_api);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_api_retries_total",
	    "Kubernetes API requests retried (429, 5xx, 401 with a new token).", NULL, &r->m_api_retries);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_watch_restarts_total", "Watches reopened.", NULL,
	    &r->m_watch_restarts);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_watch_relists_total", "Full relists after the first list.",
	    NULL, &r->m_relists);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_watch_events_total", "Watch events received.", NULL,
	    &r->m_watch_events);
	return e;
}

/* The source and its syncs (with --git or --dir). */
static int setup_metrics_source(struct run *r)
{
	const double sync_buckets[] = {.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300};
	int e = 0;

	REG(SL_SERVER_METRIC_COUNTER, "sluice_syncs_total",
	    "Syncs finished, by source and result (ok, failed, source_error).", "source,result", &r->m_syncs);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_sync_objects_total",
	    "Objects handled by syncs, by source and outcome (applied, unchanged, pruned, failed).",
	    "source,outcome", &r->m_sync_objects);
	REG_HISTOGRAM("sluice_sync_duration_seconds", "Duration of syncs, by source.", "source", sync_buckets,
	              SL_ARRAY_SIZE(sync_buckets), &r->m_sync_duration);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_sync_last_end_timestamp_seconds",
	    "End of the last sync, whatever its result, seconds since the epoch (0: none yet).", "source",
	    &r->m_sync_last);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_sync_last_success_timestamp_seconds",
	    "End of the last sync with result ok, seconds since the epoch (0: none yet).", "source",
	    &r->m_sync_last_ok);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_sync_revision_info",
	    "Revision of the last sync with result ok, as the label revision (value 1).", "source,revision",
	    &r->m_sync_revision);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_source_checks_total",
	    "Git fetches or directory rescans, by source and result (ok, failed).", "source,result",
	    &r->m_checks);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_source_snapshots_total", "New revisions taken from the source.",
	    "source", &r->m_snapshots);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_source_files_parsed_total",
	    "Manifest files parsed for snapshots (unchanged files are not parsed again).", "source",
	    &r->m_parsed);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_source_last_success_timestamp_seconds",
	    "End of the last good source check, seconds since the epoch (0: none yet).", "source",
	    &r->m_source_last);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_writeback_commits_total",
	    "Write-back commits, by source and result (pushed, failed).", "source,result", &r->m_writebacks);
	return e;
}

/* The stream controller (unless --no-controller). */
static int setup_metrics_controller(struct run *r)
{
	int e = 0;

	REG(SL_SERVER_METRIC_COUNTER, "sluice_reconciles_total",
	    "Stream reconciles, by result (ok, noop, wait, conflict, error).", "result", &r->m_reconciles);
	REG_HISTOGRAM(
	    "sluice_reconcile_duration_seconds",
	    "Duration of stream reconciles, from taking the key off the work queue to the answer of its "
	    "last write.",
	    NULL, sl_controller_reconcile_buckets, SL_CONTROLLER_RECONCILE_BUCKETS, &r->m_reconcile_duration);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_controller_actions_total",
	    "Writes the stream controller attempted.", NULL, &r->m_ctl_actions);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_jobs_created_total",
	    "Jobs the stream controller created, by type (streaming, backfill).", "type", &r->m_jobs_created);
	REG(SL_SERVER_METRIC_COUNTER, "sluice_backfill_requests_completed_total",
	    "BackfillRequests the stream controller marked completed.", NULL, &r->m_backfills_completed);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_workqueue_depth", "Stream keys ready in the work queue.", NULL,
	    &r->m_queue);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_workqueue_delayed", "Stream keys waiting on a timer.", NULL,
	    &r->m_queue_delayed);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_workqueue_in_flight", "Stream keys being reconciled.", NULL,
	    &r->m_in_flight);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_controller_remembered",
	    "Entries the stream controller keeps beside its caches (deleted Jobs, expectations, failed "
	    "writes); they go with their streams.",
	    NULL, &r->m_remembered);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_streams",
	    "Streams in the caches, by StreamClass and status.phase (None: no phase yet).",
	    "stream_class,phase", &r->m_streams);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_stream_classes", "StreamClasses, by state (ready, not_ready).",
	    "state", &r->m_classes);
	REG(SL_SERVER_METRIC_GAUGE, "sluice_backfill_oldest_start_timestamp_seconds",
	    "Start of the longest-running backfill of a StreamClass's streams in phase Backfilling "
	    "(creation of its backfill Job or BackfillRequest), seconds since the epoch; absent when "
	    "none backfills.",
	    "stream_class", &r->m_backfill_start);
	return e;
}

#undef REG_HISTOGRAM
#undef REG

static int setup_metrics(struct run *r)
{
	struct sl_server_metric *info = NULL, *start = NULL;
	int e = sl_server_metrics_new(&r->metrics);

	if (e == 0)
		e = setup_metrics_process(r, &info, &start);
	if (e == 0 && r->src)
		e = setup_metrics_source(r);
	if (e == 0 && !r->o.no_controller)
		e = setup_metrics_controller(r);
	if (e == 0)
		e = sl_server_metric_set(info, L(SLUICE_VERSION), 1);
	if (e == 0)
		e = sl_server_metric_set(start, NULL, (double)sl_wall_s());
	if (e == 0)
		e = sl_server_metrics_add_collector(r->metrics, collect, r);
	return e;
}

#undef L

/* ---- shutdown ---- */

static void on_released(int code, void *payload)
{
	struct run *r = payload;
	if (code == 0)
		sl_info("leader election: lease released");
	else
		sl_warn("leader election: releasing the lease: %s", sl_strerror(code));
	sl_loop_quit(r->loop, 0);
}

/* Quits once nothing is writing: no sync run, no controller write, no
 * write-back push; then gives the Lease back so a standby starts at once. */
static void maybe_finish(struct run *r)
{
	if (!r->stopping || r->releasing)
		return;
	if ((r->sync && sl_sync_running(r->sync)) || (r->ctl_started && !r->ctl_stopped) || r->wb_in_flight)
		return;
	if (r->lease && sl_kube_lease_is_leader(r->lease)) {
		r->releasing = true;
		if (sl_kube_lease_release(r->lease, on_released, r) == 0)
			return;
	}
	sl_loop_quit(r->loop, 0);
}

static void on_ctl_stopped(void *payload)
{
	struct run *r = payload;
	r->ctl_stopped = true;
	maybe_finish(r);
}

/* Every TRIM_INTERVAL_MS the memory malloc holds free goes back to the
 * system. Churn (syncs, watch events, Jobs and requests coming and going)
 * leaves the heap full of holes between the few objects that live on:
 * malloc returns only the top of the heap by itself, so without this RSS
 * creeps up over days while the live heap stays level. malloc_trim(0)
 * releases the whole free pages inside the heap too; it takes about a
 * millisecond on sluice's heap. */
#define TRIM_INTERVAL_MS 30000

static void on_trim(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct run *r = payload;

	(void)malloc_trim(0);
	sl_loop_timer_arm(r->trim, TRIM_INTERVAL_MS);
}

static void on_deadline(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct run *r = payload;
	sl_warn("shutdown: writes still in flight after %llu ms (sync %s, controller %zu, write-back %u); "
	        "exiting",
	        (unsigned long long)r->o.shutdown_ms,
	        r->sync && sl_sync_running(r->sync) ? "running" : "idle",
	        r->ctl ? sl_controller_in_flight(r->ctl) : 0, r->wb_in_flight);
	sl_loop_quit(loop, 0);
}

static void log_counters(struct run *r)
{
	struct sl_buf b;
	sl_buf_init(&b, 1 << 20);
	if (sl_server_metrics_render(r->metrics, &b) == 0) {
		/* one line per series, without the comments */
		for (char *line = strtok(b.data, "\n"); line; line = strtok(NULL, "\n"))
			if (line[0] != '#')
				sl_info("counter %s", line);
	}
	sl_buf_free(&b);
}

static void log_cache(const struct sl_kube_informer *inf, void *payload)
{
	unsigned *n = payload;
	char what[1024], hex[65];
	size_t count;
	int rc = sl_kube_informer_describe(inf, what, sizeof(what));

	if (rc == 0)
		rc = sl_kube_informer_digest(inf, &count, hex);
	if (rc < 0)
		sl_warn("cache: %s", sl_strerror(rc));
	else
		sl_info("cache %s: %zu objects, digest sha256:%s%s", what, count, hex,
		        sl_kube_informer_has_synced(inf) ? "" : " (not synced yet)");
	(*n)++;
}

/* What malloc holds: in use (live allocations) against what it keeps from
 * the system, to tell growth of the heap from fragmentation. */
static void log_heap(void)
{
	struct mallinfo2 mi = mallinfo2();

	sl_info("heap: %zu KiB in use, %zu KiB free in the arena of %zu KiB, %zu KiB mmapped",
	        mi.uordblks / 1024, mi.fordblks / 1024, mi.arena / 1024, mi.hblkhd / 1024);
}

/* One line per informer: what it watches, how many objects its cache holds
 * and their digest, to compare with the server's lists. */
static void log_caches(struct run *r)
{
	unsigned n = 0;
	if (r->ctl)
		sl_controller_foreach_informer(r->ctl, log_cache, &n);
	if (!n)
		sl_info("cache: no informers (%s)",
		        r->ctl ? "the controller is not running" : "--no-controller");
	if (r->ctl) {
		struct sl_controller_metrics cm;
		sl_controller_metrics(r->ctl, &cm);
		sl_info("controller: %zu entries remembered beside the caches", cm.remembered);
	}
	if (r->kube)
		sl_info("events: %zu keys remembered for aggregation",
		        sl_kube_get_metrics(r->kube)->events_remembered);
	log_heap();
}

static void on_signal(struct sl_loop *loop, int signo, void *payload)
{
	struct run *r = payload;

	if (signo == SIGHUP) {
		log_counters(r);
		return;
	}
	if (signo == SIGUSR1) {
		log_caches(r);
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
	sl_loop_timer_arm(r->deadline, r->o.shutdown_ms);
	sl_loop_timer_disarm(r->resync);
	if (r->ctl_started)
		sl_controller_stop(r->ctl, on_ctl_stopped, r);
	maybe_finish(r);
}

/* ---- setup ---- */

/* The namespace sluice runs in: POD_NAMESPACE (the downward API), else the
 * client's (in a cluster the kube module read the service account's
 * namespace file; else the kubeconfig context's). */
static char *own_namespace(const struct sl_kube *kube)
{
	const struct sl_kube_config *cfg = sl_kube_get_config(kube);
	const char *pod_ns = getenv("POD_NAMESPACE");

	if (pod_ns && *pod_ns)
		return sl_strdup(pod_ns);
	return sl_strdup(cfg && cfg->ns && *cfg->ns ? cfg->ns : "default");
}

static int setup_source(struct run *r, struct sl_error *err)
{
	struct sl_source_options so = SL_SOURCE_OPTIONS_INIT;

	so.kind = r->o.git ? SL_SOURCE_GIT : SL_SOURCE_DIR;
	so.id = r->o.source_id;
	so.cache_dir = r->o.cache_dir;
	so.url = r->o.git;
	so.ref = r->o.ref;
	so.path = r->o.path;
	so.interval_ms = r->o.interval_ms;
	so.username = r->o.git_username;
	so.password_file = r->o.git_password_file;
	so.ssh_key_file = r->o.git_ssh_key;
	so.known_hosts_file = r->o.git_known_hosts;
	so.ca_file = r->o.git_ca_file;
	so.timeout_ms = r->o.git_timeout_ms;
	so.allow_http = r->o.git_allow_http;
	so.author_name = r->o.author_name;
	so.author_email = r->o.author_email;
	so.dir = r->o.dir;
	return sl_source_new(r->loop, &so, on_source, r, &r->src, err);
}

/* The loop, its timers and signals, and the client to the cluster. */
static int setup_loop_and_client(struct run *r)
{
	struct sl_kube_config_opts co = {.kubeconfig = r->o.kubeconfig, .context = r->o.context};
	struct sl_kube_config *cfg = NULL;
	struct sl_error err = {0};

	if (split_namespaces(r->o.watch_namespaces, &r->namespaces) < 0 || sl_loop_new(&r->loop) < 0 ||
	    sl_loop_timer_new(r->loop, on_deadline, r, &r->deadline) < 0 ||
	    sl_loop_timer_new(r->loop, on_resync, r, &r->resync) < 0 ||
	    sl_loop_timer_new(r->loop, on_trim, r, &r->trim) < 0 ||
	    sl_loop_on_signals(r->loop, on_signal, r) < 0) {
		sl_err("cannot set up the event loop");
		return -1;
	}
	sl_loop_timer_arm(r->trim, TRIM_INTERVAL_MS);
	if (sl_kube_config_load(&co, &cfg, &err) < 0) {
		sl_err("kubeconfig: %s", err.msg);
		return -1;
	}
	if (sl_kube_new(r->loop, cfg, NULL, &r->kube, &err) < 0) {
		sl_err("kubernetes client: %s", err.msg);
		return -1;
	}
	return 0;
}

/* With a source: the sync engine and the source feeding it. */
static int setup_sync(struct run *r)
{
	struct sl_error err = {0};
	char desc[1024];

	if (!r->o.git && !r->o.dir)
		return 0;
	r->inv_ns = r->o.inventory_ns ? sl_strdup(r->o.inventory_ns) : own_namespace(r->kube);
	struct sl_sync_opts so = {
	    .source_id = r->o.source_id,
	    .inventory_ns = r->inv_ns,
	    .prune = r->o.prune,
	    .allow_empty_prune = r->o.allow_empty_prune,
	};
	if (!r->inv_ns || sl_sync_new(r->loop, r->kube, &so, &r->sync, &err) < 0) {
		sl_err("sync: %s", r->inv_ns ? err.msg : "out of memory");
		return -1;
	}
	if (setup_source(r, &err) < 0) {
		sl_err("source %s: %s", source_desc(r, desc, sizeof(desc)), err.msg);
		return -1;
	}
	return 0;
}

static int setup_controller(struct run *r)
{
	struct sl_controller_opts opts = {
	    .namespaces = (const char *const *)r->namespaces, .shard = r->o.shard, .workers = r->o.n_workers};
	struct sl_error err = {0};

	if (r->o.no_controller)
		return 0;
	if (sl_controller_new(r->loop, r->kube, &opts, &r->ctl, &err) < 0) {
		sl_err("controller: %s", err.msg);
		return -1;
	}
	sl_controller_set_writeback_hook(r->ctl, on_completion, r);
	return 0;
}

static int setup_lease(struct run *r)
{
	struct sl_error err = {0};

	if (!r->o.leader_elect)
		return 0;
	if (r->o.le_namespace)
		r->lease_ns = sl_strdup(r->o.le_namespace);
	else
		r->lease_ns = r->inv_ns ? sl_strdup(r->inv_ns) : own_namespace(r->kube);
	struct sl_kube_lease_opts lo = {
	    .ns = r->lease_ns,
	    .name = r->o.lease_name,
	    .duration_ms = r->o.le_duration_ms,
	    .renew_deadline_ms = r->o.le_renew_ms,
	    .retry_ms = r->o.le_retry_ms,
	    .started = on_lease_started,
	    .stopped = on_lease_stopped,
	    .payload = r,
	};
	if (!r->lease_ns || sl_kube_lease_new(r->loop, r->kube, &lo, &r->lease, &err) < 0) {
		sl_err("leader election: %s", r->lease_ns ? err.msg : "out of memory");
		return -1;
	}
	return 0;
}

/* The metrics, and the HTTP server that answers probes, /metrics and the
 * webhook unless --listen off. */
static int setup_http(struct run *r)
{
	struct sl_error err = {0};

	if (setup_metrics(r) < 0) {
		sl_err("metrics: cannot register");
		return -1;
	}
	if (r->o.listen && strcmp(r->o.listen, "off") == 0)
		return 0;
	struct sl_server_opts ho = {
	    .listen = r->o.listen ? r->o.listen : ":8888",
	    .ready = probe_ready,
	    .started = probe_started,
	    .metrics = r->metrics,
	    .webhook_secret_file = r->o.webhook_secret_file,
	    .trigger = on_webhook,
	    .payload = r,
	};
	if (sl_server_new(r->loop, &ho, &r->http, &err) < 0) {
		sl_err("http: %s", err.msg);
		return -1;
	}
	return 0;
}

static void log_start(struct run *r)
{
	char server[512], desc[1024];
	bool source = r->o.git || r->o.dir;

	sl_url_redact(sl_kube_get_config(r->kube)->server, server, sizeof(server));
	sl_info("sluice run %s: cluster %s; source %s%s; controller %s%s%s%s%s; http %s%s%u; leader election "
	        "%s%s%s",
	        SLUICE_VERSION, server, source ? (r->o.git ? "git " : "dir ") : "none",
	        source ? source_desc(r, desc, sizeof(desc)) : "", r->ctl ? "on" : "off",
	        r->ctl && r->o.watch_namespaces ? ", namespaces " : "",
	        r->ctl && r->o.watch_namespaces ? r->o.watch_namespaces : "", r->ctl ? ", shard " : "",
	        r->ctl ? (r->o.shard ? r->o.shard : "default") : "", r->http ? "port " : "off",
	        r->http ? "" : "", r->http ? sl_server_port(r->http) : 0,
	        r->lease ? sl_kube_lease_get_identity(r->lease) : "off", r->lease ? ", lease " : "",
	        r->lease ? r->o.lease_name : "");
}

/* The source starts on every replica, so a standby has its clone ready;
 * only the leader syncs. */
static int start(struct run *r)
{
	struct sl_error err = {0};
	char desc[1024];

	if (r->src && sl_source_start(r->src, &err) < 0) {
		sl_err("source %s: %s", source_desc(r, desc, sizeof(desc)), err.msg);
		return -1;
	}
	if (r->lease)
		sl_kube_lease_start(r->lease);
	else
		start_work(r);
	return 0;
}

/* Each step logs its own failure. */
static int setup(struct run *r)
{
	/* A shard's source has an inventory of its own: two deployments
	 * never share one by default. */
	if (!r->o.source_id)
		r->o.source_id = r->o.shard ? r->o.shard : "default";
	if (setup_loop_and_client(r) < 0 || setup_sync(r) < 0 || setup_controller(r) < 0 ||
	    setup_lease(r) < 0 || setup_http(r) < 0)
		return -1;
	log_start(r);
	return start(r);
}

static void run_free(struct run *r)
{
	/* The server first: no callback may see half-freed state. */
	sl_server_free(r->http);
	sl_kube_lease_free(r->lease);
	sl_controller_free(r->ctl);
	sl_sync_free(r->sync);
	sl_source_free(r->src);
	sl_loop_timer_free(r->deadline);
	sl_loop_timer_free(r->resync);
	sl_loop_timer_free(r->trim);
	sl_kube_free(r->kube);
	sl_server_metrics_free(r->metrics);
	sl_loop_free(r->loop);
	for (size_t i = 0; r->namespaces && r->namespaces[i]; i++)
		free(r->namespaces[i]);
	free(r->namespaces);
	for (size_t i = 0; i < r->n_wb; i++)
		wb_entry_free(&r->wb[i]);
	free(r->wb);
	free(r->inv_ns);
	free(r->lease_ns);
	free(r->o.author_name);
	free(r->o.author_email);
}

int sl_cmd_run(int argc, char **argv)
{
	struct run r = {0};
	enum sl_log_level level = SL_LOG_INFO;
	int e;

	e = parse_args(argc, argv, &r.o);
	if (e != 0) {
		free(r.o.author_name);
		free(r.o.author_email);
		return e > 0 ? 0 : 2;
	}
	if (r.o.log_level && sl_log_level_parse(r.o.log_level, &level) < 0) {
		fprintf(stderr, "sluice run: --log-level: expected debug, info, warn or error\n");
		return 2;
	}
	sl_log_setup(level,
	             r.o.log_format && strcmp(r.o.log_format, "json") == 0 ? SL_LOG_JSON : SL_LOG_TEXT);
	if (setup(&r) < 0) {
		run_free(&r);
		return 1;
	}
	e = sl_loop_run(r.loop);
	if (r.exit_code == 0 && e != 0)
		r.exit_code = 1;
	sl_info("sluice run: exiting with %d", r.exit_code);
	run_free(&r);
	return r.exit_code;
}
