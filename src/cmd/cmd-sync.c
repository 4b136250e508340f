/* sluice sync --once and sluice diff: take one snapshot of a Git repository
 * or a directory and apply it (or dry-run it and print the diff) with the
 * sync engine. Every flag can also come from a SLUICE_* environment variable. */
#include "cmd.h"
#include "sluice/base.h"
#include "sluice/kube.h"
#include "sluice/loop.h"
#include "sluice/manifest.h"
#include "sluice/source.h"
#include "sluice/sync.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct flags {
	const char *git, *ref, *path, *dir;
	const char *git_username, *git_password_file, *git_ssh_key, *git_known_hosts, *git_ca_file;
	const char *kubeconfig, *context, *source_id, *inventory_ns, *cache_dir;
	const char *concurrency, *timeout, *list_page;
	bool once, dry_run, prune, allow_empty_prune, allow_http;

	/* from concurrency, timeout and list_page */
	unsigned n_concurrency, n_list_page;
	uint64_t timeout_ms;
};

struct ctx {
	const char *cmd;
	bool diff;
	struct flags f;
	struct sl_loop *loop;
	struct sl_kube *kube;
	struct sl_sync *sync;
	struct sl_source *source;
	struct sl_loop_timer *deadline;
	struct sl_buf diff_out;
	struct sl_cmd__progress progress;
	int exit_code;
};

#define S(field) SL_CMD_STRING_AT(struct flags, field)
#define B(field) SL_CMD_BOOL_AT(struct flags, field)

/* Flags of sync alone: diff accepts them but they change nothing there. */
#define APPLY_FLAGS 1u

/* The help lists them in this order; flags without help are accepted but not
 * listed. */
static const struct sl_cmd_flag flags[] = {
    {"git", 0, "SLUICE_GIT_URL", S(git), "URL", "Git repository (env SLUICE_GIT_URL)"},
    {"ref", 0, "SLUICE_GIT_REF", S(ref), "REF", "branch, tag or commit (SLUICE_GIT_REF; default main)"},
    {"path", 0, "SLUICE_GIT_PATH", S(path), "DIR", "subdirectory holding the manifests (SLUICE_GIT_PATH)"},
    {"git-username", 0, "SLUICE_GIT_USERNAME", S(git_username), "NAME", "HTTPS user (SLUICE_GIT_USERNAME)"},
    {"git-password-file", 0, "SLUICE_GIT_PASSWORD_FILE", S(git_password_file), "FILE",
     "HTTPS password or token (SLUICE_GIT_PASSWORD_FILE)"},
    {"git-ssh-key", 0, "SLUICE_GIT_SSH_KEY", S(git_ssh_key), "FILE", "SSH private key (SLUICE_GIT_SSH_KEY)"},
    {"git-known-hosts", 0, "SLUICE_GIT_KNOWN_HOSTS", S(git_known_hosts), "FILE",
     "known_hosts for SSH (SLUICE_GIT_KNOWN_HOSTS)"},
    {"git-ca-file", 0, "SLUICE_GIT_CA_FILE", S(git_ca_file), "FILE",
     "CA bundle for HTTPS (SLUICE_GIT_CA_FILE)"},
    {"git-allow-http", 0, "SLUICE_GIT_ALLOW_HTTP", B(allow_http), NULL, NULL},
    {"dir", 0, "SLUICE_DIR", S(dir), "DIR", "a directory of manifests (SLUICE_DIR)"},
    {"source-id", 0, "SLUICE_SOURCE_ID", S(source_id), "ID",
     "names the inventory (SLUICE_SOURCE_ID; default \"default\")"},
    {"inventory-namespace", 0, "SLUICE_INVENTORY_NAMESPACE", S(inventory_ns), "NS",
     "namespace of the inventory ConfigMap\n"
     "(SLUICE_INVENTORY_NAMESPACE; default: the namespace sluice\n"
     "runs in, else the kubeconfig context's, else \"default\")"},
    {"kubeconfig", 0, "SLUICE_KUBECONFIG", S(kubeconfig), "FILE", "(SLUICE_KUBECONFIG, KUBECONFIG)"},
    {"context", 0, "SLUICE_CONTEXT", S(context), "NAME", "(SLUICE_CONTEXT)"},
    {"cache-dir", 0, "SLUICE_CACHE_DIR", S(cache_dir), "DIR", NULL},
    {"concurrency", 0, "SLUICE_CONCURRENCY", S(concurrency), "N",
     "at most N applies in flight per stage, fewer while\nthe API server is saturated (SLUICE_CONCURRENCY; "
     "64)"},
    /* live objects per list request (tests make it small to see many pages) */
    {"list-page", 0, "SLUICE_LIST_PAGE", S(list_page), "N", NULL},
    {"timeout", 0, "SLUICE_TIMEOUT", S(timeout), "DURATION", "give up after this long (SLUICE_TIMEOUT; 10m)"},
    {"once", 0, "SLUICE_ONCE", B(once), NULL, "apply once and exit (SLUICE_ONCE; required)", APPLY_FLAGS},
    {"dry-run", 0, "SLUICE_DRY_RUN", B(dry_run), NULL, "server-side dry run, no writes (SLUICE_DRY_RUN)",
     APPLY_FLAGS},
    {"prune", 0, "SLUICE_PRUNE", B(prune), NULL, "delete objects that left the source (SLUICE_PRUNE)",
     APPLY_FLAGS},
    {"allow-empty-prune", 0, "SLUICE_ALLOW_EMPTY_PRUNE", B(allow_empty_prune), NULL,
     "let a prune delete every object (SLUICE_ALLOW_EMPTY_PRUNE)", APPLY_FLAGS},
    {"help", 'h', NULL, SL_CMD_HELP, 0, NULL, NULL},
};

#undef S
#undef B

const struct sl_cmd_spec sl_cmd__sync_spec = {
    .name = "sync",
    .flags = flags,
    .n_flags = SL_ARRAY_SIZE(flags),
    .usage = "usage: sluice sync --once (--git URL [--ref REF] [--path DIR] | --dir DIR) [OPTIONS]\n\n"
             "Applies one snapshot with server-side apply (field manager \"sluice\"), in\n"
             "dependency order, skips objects whose live state already matches, records the\n"
             "inventory and status in the ConfigMap sluice-inventory-<source id>, and with\n"
             "--prune deletes what left the source. Exits 0 only when every document applied.\n\n",
    .name_width = 26,
    .lenient_bools = true,
};

const struct sl_cmd_spec sl_cmd__diff_spec = {
    .name = "diff",
    .flags = flags,
    .n_flags = SL_ARRAY_SIZE(flags),
    .usage = "usage: sluice diff (--git URL [--ref REF] [--path DIR] | --dir DIR) [OPTIONS]\n\n"
             "Shows what a sync would change: every object is applied as a server-side dry run\n"
             "and, for each object that would change, a unified diff of the live object against\n"
             "the result is printed, cut to the fields sluice manages; Secret values are masked.\n"
             "Exits 0 when nothing would change, 1 when something would, 2 on errors.\n\n",
    .name_width = 26,
    .unlisted = APPLY_FLAGS,
    .lenient_bools = true,
};

static const char *env_str(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* Returns 0, 1 after the help, or SL_EINVALID after saying why. */
static int parse_flags(const struct sl_cmd_spec *spec, int argc, char **argv, struct flags *f)
{
	const char *cmd = spec->name;
	int r = sl_cmd__parse(spec, argc, argv, f, NULL);

	if (r != 0)
		return r;
	f->timeout_ms = 10 * 60 * 1000;
	if (f->concurrency) {
		char *end;
		unsigned long v = strtoul(f->concurrency, &end, 10);
		if (*end || v == 0 || v > 1024) {
			fprintf(stderr, "sluice %s: --concurrency wants 1..1024\n", cmd);
			return SL_EINVALID;
		}
		f->n_concurrency = (unsigned)v;
	}
	if (f->list_page) {
		char *end;
		unsigned long v = strtoul(f->list_page, &end, 10);
		if (*end || v == 0 || v > 10000) {
			fprintf(stderr, "sluice %s: --list-page wants 1..10000\n", cmd);
			return SL_EINVALID;
		}
		f->n_list_page = (unsigned)v;
	}
	if (f->timeout && sl_duration_parse_ms(f->timeout, &f->timeout_ms) < 0) {
		fprintf(stderr, "sluice %s: --timeout: not a duration: %s\n", cmd, f->timeout);
		return SL_EINVALID;
	}
	if (!!f->git == !!f->dir) {
		fprintf(stderr, "sluice %s: give exactly one of --git URL and --dir DIR\n", cmd);
		return SL_EINVALID;
	}
	if (!f->source_id)
		f->source_id = "default";
	return 0;
}

/* --inventory-namespace, else the namespace sluice runs in: POD_NAMESPACE
 * (the downward API), else the client's (in a cluster the kube module read
 * the service account's namespace file; else the kubeconfig context's). */
static char *inventory_namespace(const struct flags *f, const struct sl_kube *kube)
{
	const struct sl_kube_config *cfg = sl_kube_get_config(kube);

	if (f->inventory_ns)
		return sl_strdup(f->inventory_ns);
	if (env_str("POD_NAMESPACE"))
		return sl_strdup(env_str("POD_NAMESPACE"));
	return sl_strdup(cfg && cfg->ns && *cfg->ns ? cfg->ns : "default");
}

static void print_problem(const char *cmd, const struct sl_sync_problem *p)
{
	char where[512] = "";
	if (p->file && *p->file)
		snprintf(where, sizeof(where), "%s:%d: ", p->file, p->line);
	if (p->kind)
		fprintf(stderr, "sluice %s: %s%s %s%s%s: %s\n", cmd, where, p->kind, p->ns ? p->ns : "",
		        p->ns ? "/" : "", p->name ? p->name : "", p->reason);
	else
		fprintf(stderr, "sluice %s: %s%s\n", cmd, where, p->reason);
}

static void on_done(struct sl_sync *s, const struct sl_sync_report *rep, void *payload)
{
	struct ctx *c = payload;

	sl_cmd__progress_stop(&c->progress);
	for (size_t i = 0; i < rep->n_problems; i++)
		print_problem(c->cmd, &rep->problems[i]);
	if (rep->error)
		fprintf(stderr, "sluice %s: %s\n", c->cmd, rep->error);
	if (rep->prune_blocked)
		fprintf(stderr, "sluice %s: prune did not run: %s\n", c->cmd, rep->prune_blocked);
	if (c->diff && rep->code != 0 && rep->code != SL_EINVALID) {
		/* the run stopped (source unreadable, API refused or unreachable):
		 * there is no result to claim, the error above is the answer */
		sl_err("diff%s%s: no result%s%s", *rep->revision ? " " : "", rep->revision,
		       rep->error ? "" : ": ", rep->error ? "" : sl_strerror(rep->code));
		c->exit_code = 2;
	} else if (c->diff) {
		fwrite(c->diff_out.data ? c->diff_out.data : "", 1, c->diff_out.len, stdout);
		fflush(stdout);
		if (rep->code == 0)
			sl_info("diff %s: %zu object(s) would change, %zu unchanged (%llu ms)", rep->revision,
			        rep->applied, rep->unchanged, (unsigned long long)rep->duration_ms);
		else
			sl_err("diff %s: incomplete: %zu object(s) could not be checked; of the others %zu "
			       "would change, %zu unchanged (%llu ms)",
			       rep->revision, rep->n_problems, rep->applied, rep->unchanged,
			       (unsigned long long)rep->duration_ms);
		c->exit_code = rep->code != 0 ? 2 : rep->applied ? 1 : 0;
	} else {
		sl_info(
		    "sync %s%s: %s: applied %zu, unchanged %zu, pruned %zu, problems %zu, prune skipped %zu, "
		    "%zu write(s), %llu ms",
		    rep->revision, c->f.dry_run ? " (dry run)" : "", rep->result, rep->applied,
		    rep->unchanged, rep->pruned, rep->n_problems, rep->prune_skipped, rep->writes,
		    (unsigned long long)rep->duration_ms);
		c->exit_code = rep->code == 0 ? 0 : 1;
	}
	sl_loop_quit(c->loop, 0);
}

static int run_plan(struct ctx *c, struct sl_sync_plan *plan, const char *source_error)
{
	int r = sl_sync_run(c->sync, plan, source_error, on_done, c);
	if (r < 0) {
		fprintf(stderr, "sluice %s: %s\n", c->cmd, sl_strerror(r));
		sl_loop_quit(c->loop, 0);
	}
	return r;
}

static void on_source(struct sl_source *src, const struct sl_source_event *ev, void *payload)
{
	struct ctx *c = payload;
	struct sl_sync_plan *plan = NULL;
	char redacted[1024];

	if (sl_sync_running(c->sync) || c->exit_code >= 0)
		return; /* --once: the first answer counts */
	if (ev->type == SL_SOURCE_EVENT_ERROR || !ev->snapshot) {
		sl_url_redact(c->f.git, redacted, sizeof(redacted));
		sl_err("source %s: %s", redacted, ev->error ? ev->error->msg : "no snapshot");
		run_plan(c, NULL, ev->error ? ev->error->msg : "no snapshot");
		return;
	}
	/* the source loaded and validated the tree with the snapshot */
	const struct sl_manifest_set *set = sl_source_snapshot_manifests(ev->snapshot);
	if (!set) {
		run_plan(c, NULL, "the snapshot holds no manifests");
		return;
	}
	/* files the snapshot left out count as errors: they keep prune from running */
	int r = sl_sync_plan_from_manifests(c->f.source_id, sl_source_snapshot_revision(ev->snapshot), set,
	                                    sl_source_snapshot_problems(ev->snapshot), &plan);
	if (r < 0) {
		fprintf(stderr, "sluice %s: planning: %s\n", c->cmd, sl_strerror(r));
		c->exit_code = 2;
		sl_loop_quit(c->loop, 0);
		return;
	}
	run_plan(c, plan, NULL);
}

static int start_dir(struct ctx *c)
{
	struct sl_manifest_set *set = NULL;
	struct sl_sync_plan *plan = NULL;
	struct sl_error err = {0};
	char digest[65], rev[80];

	int r = sl_manifest_load_dir(c->f.dir, NULL, &set, &err);
	if (r < 0) {
		/* the source could not be read: recorded, nothing pruned */
		sl_err("reading %s: %s", c->f.dir, err.msg);
		return run_plan(c, NULL, err.msg);
	}
	sl_manifest_set_digest(set, digest);
	snprintf(rev, sizeof(rev), "sha256:%s", digest);
	/* the set is freed right after: its objects move into the plan */
	r = sl_sync_plan_take_manifests(c->f.source_id, rev, set, NULL, &plan);
	sl_manifest_set_free(set);
	if (r < 0) {
		fprintf(stderr, "sluice %s: planning: %s\n", c->cmd, sl_strerror(r));
		return r;
	}
	return run_plan(c, plan, NULL);
}

static int start_git(struct ctx *c)
{
	struct sl_source_options o = SL_SOURCE_OPTIONS_INIT;
	struct sl_error err = {0};

	o.kind = SL_SOURCE_GIT;
	o.id = c->f.source_id;
	o.url = c->f.git;
	o.ref = c->f.ref;
	o.path = c->f.path;
	o.username = c->f.git_username;
	o.password_file = c->f.git_password_file;
	o.ssh_key_file = c->f.git_ssh_key;
	o.known_hosts_file = c->f.git_known_hosts;
	o.ca_file = c->f.git_ca_file;
	o.allow_http = c->f.allow_http;
	o.cache_dir = c->f.cache_dir;
	if (sl_source_new(c->loop, &o, on_source, c, &c->source, &err) < 0 ||
	    sl_source_start(c->source, &err) < 0) {
		fprintf(stderr, "sluice %s: %s\n", c->cmd, err.msg);
		return SL_EINVALID;
	}
	return 0;
}

static void on_deadline(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	struct ctx *c = payload;
	sl_cmd__progress_stop(&c->progress);
	fprintf(stderr, "sluice %s: timed out\n", c->cmd);
	c->exit_code = 2;
	sl_loop_quit(loop, 0);
}

static void on_signal(struct sl_loop *loop, int signo, void *payload)
{
	struct ctx *c = payload;
	sl_cmd__progress_stop(&c->progress);
	c->exit_code = 2;
	sl_loop_quit(loop, 0);
}

/* sync and diff: one flow, diff being a dry run that prints diffs */
static int sync_main(const struct sl_cmd_spec *spec, int argc, char **argv)
{
	bool diff = spec == &sl_cmd__diff_spec;
	struct ctx c = {.cmd = spec->name, .diff = diff, .exit_code = -1};
	struct sl_kube_config *cfg = NULL;
	struct sl_error err = {0};
	char *inv_ns = NULL;
	int r;

	r = parse_flags(spec, argc, argv, &c.f);
	if (r != 0)
		return r > 0 ? 0 : 2;
	if (!diff && !c.f.once) {
		fprintf(stderr, "sluice sync: only --once is supported (use 'sluice run' to keep syncing)\n");
		return 2;
	}
	sl_buf_init(&c.diff_out, 256u << 20);
	struct sl_kube_config_opts ko = {.kubeconfig = c.f.kubeconfig, .context = c.f.context};
	if (sl_loop_new(&c.loop) < 0 || sl_loop_on_signals(c.loop, on_signal, &c) < 0 ||
	    sl_cmd__progress_start(&c.progress, c.loop, c.cmd, STDERR_FILENO) < 0) {
		fprintf(stderr, "sluice %s: cannot set up the event loop\n", c.cmd);
		c.exit_code = 2;
		goto out;
	}
	if (sl_kube_config_load(&ko, &cfg, &err) < 0 ||
	    sl_kube_new(c.loop, TAKE_PTR(cfg), NULL, &c.kube, &err) < 0) {
		fprintf(stderr, "sluice %s: %s\n", c.cmd, err.msg);
		c.exit_code = 2;
		goto out;
	}
	inv_ns = inventory_namespace(&c.f, c.kube);
	struct sl_sync_opts so = {
	    .source_id = c.f.source_id,
	    .inventory_ns = inv_ns,
	    .prune = c.f.prune && !diff,
	    .allow_empty_prune = c.f.allow_empty_prune,
	    .dry_run = c.f.dry_run || diff,
	    .diff_out = diff ? &c.diff_out : NULL,
	    .concurrency = c.f.n_concurrency,
	    .list_page = c.f.n_list_page,
	    .progress = sl_cmd__progress_update,
	    .progress_payload = &c.progress,
	};
	if (!inv_ns || sl_sync_new(c.loop, c.kube, &so, &c.sync, &err) < 0) {
		fprintf(stderr, "sluice %s: %s\n", c.cmd, inv_ns ? err.msg : "out of memory");
		c.exit_code = 2;
		goto out;
	}
	if (sl_loop_timer_new(c.loop, on_deadline, &c, &c.deadline) == 0)
		sl_loop_timer_arm(c.deadline, c.f.timeout_ms);
	r = c.f.dir ? start_dir(&c) : start_git(&c);
	if (r < 0) {
		c.exit_code = 2;
		goto out;
	}
	sl_loop_run(c.loop);
	if (c.exit_code < 0)
		c.exit_code = 2;
out:
	sl_cmd__progress_stop(&c.progress);
	sl_sync_free(c.sync);
	sl_source_free(c.source);
	sl_loop_timer_free(c.deadline);
	sl_kube_free(c.kube);
	sl_kube_config_free(cfg);
	sl_loop_free(c.loop);
	sl_buf_free(&c.diff_out);
	free(inv_ns);
	return c.exit_code;
}

int sl_cmd_sync(int argc, char **argv)
{
	return sync_main(&sl_cmd__sync_spec, argc, argv);
}

int sl_cmd_diff(int argc, char **argv)
{
	return sync_main(&sl_cmd__diff_spec, argc, argv);
}
