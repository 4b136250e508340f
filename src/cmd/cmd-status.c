/* sluice status: what an operator needs at a glance, read from the cluster:
 * every source (its inventory ConfigMap and the last sync's status) and
 * every stream of every StreamClass (phase, Job or CronJob, BackfillRequest,
 * age, the Ready condition's message). All lists go out at once on the
 * event loop; the model and the tables are pure (status-model.c,
 * status-print.c). --watch lists again every --interval and prints when
 * something changed. */
#include "cmd.h"
#include "sluice/arcane.h"
#include "sluice/base-map.h"
#include "sluice/base.h"
#include "sluice/kube.h"
#include "sluice/loop.h"
#include "sluice/manifest-json.h"
#include "sluice/manifest.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LIST_PAGE       500
#define OUTPUT_MAX      (256u << 20)
#define DEFAULT_REFRESH 2000

struct status_opts {
	const char *output, *ns, *interval, *kubeconfig, *context;
	bool all_ns, watch, no_headers;
};

#define S(field) SL_CMD_STRING_AT(struct status_opts, field)
#define B(field) SL_CMD_BOOL_AT(struct status_opts, field)

static const struct sl_cmd_flag flags[] = {
    {"output", 'o', NULL, S(output), "FORMAT", "wide, json or yaml (default: tables)", 0, "wide json yaml"},
    {"namespace", 'n', NULL, S(ns), "NS", "namespace (default: the kubeconfig context's)"},
    {"all-namespaces", 'A', NULL, B(all_ns), NULL, "every namespace"},
    {"watch", 'w', NULL, B(watch), NULL, "look again every --interval, print when something changed"},
    {"interval", 0, NULL, S(interval), "DUR", "how often --watch looks (default 2s)"},
    {"no-headers", 0, NULL, B(no_headers), NULL, "tables without their header lines"},
    {"kubeconfig", 0, "SLUICE_KUBECONFIG", S(kubeconfig), "FILE",
     "kubeconfig (SLUICE_KUBECONFIG; default: in-cluster,\n$KUBECONFIG, ~/.kube/config)"},
    {"context", 0, "SLUICE_CONTEXT", S(context), "NAME", "kubeconfig context (SLUICE_CONTEXT)"},
    {"help", 'h', NULL, SL_CMD_HELP, 0, NULL, "this text"},
};

#undef S
#undef B

const struct sl_cmd_spec sl_cmd__status_spec = {
    .name = "status",
    .flags = flags,
    .n_flags = SL_ARRAY_SIZE(flags),
    .usage = "usage: sluice status [-n NS | -A] [-o wide|json|yaml] [--watch] [OPTIONS]\n\n"
             "Shows what the cluster holds: every source (the inventory ConfigMap\n"
             "sluice-inventory-<source id>: revision, last sync, result, objects applied,\n"
             "pruned and failed) and every stream of every StreamClass (kind, name, phase,\n"
             "its Job or CronJob, its running or oldest pending BackfillRequest, age, the\n"
             "Ready condition's message). Colours only on a terminal, never with NO_COLOR.\n"
             "--watch lists again every --interval (a poll, not an API watch) and prints\n"
             "when something changed; on a terminal the screen is redrawn. As a kubectl\n"
             "plugin: `kubectl sluice status`. Exits 1 when something could not be listed.\n\n",
    .name_width = 24,
    .hint_on_bad_flag = true,
};

enum format { FMT_TABLE, FMT_WIDE, FMT_JSON, FMT_YAML };

struct ctx {
	struct status_opts o;
	enum format fmt;
	uint64_t interval_ms;
	const char *ns; /* NULL: every namespace */
	struct sl_loop *loop;
	struct sl_kube *kube;
	struct sl_loop_timer *timer;
	cJSON *observed; /* the round being listed */
	unsigned pending;
	unsigned failures; /* lists of this round that failed */
	unsigned rounds;
	char *last_key, *last_text;
	int exit_code;
};

/* One list in flight. */
struct req {
	struct ctx *c;
	const char *key; /* where its items go in observed */
	char *cls, *kind, *api_version;
};

static void round_done(struct ctx *c);

/* ---- listing ------------------------------------------------------------------ */

static void req_free(struct req *q)
{
	if (!q)
		return;
	free(q->cls);
	free(q->kind);
	free(q->api_version);
	free(q);
}

static void warn(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct ctx *c, const char *fmt, ...)
{
	char msg[SL_ERRMSG_MAX + 256];
	cJSON *w = cJSON_GetObjectItemCaseSensitive(c->observed, "warnings");
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!cJSON_AddItemToArray(w, cJSON_CreateString(msg)))
		c->failures++; /* out of memory: the exit code still says so */
}

static const char *why(const struct sl_kube_result *res)
{
	return res->message && *res->message ? res->message : sl_strerror(res->code);
}

static void list_streams(struct ctx *c, const cJSON *classes);

/* Moves the items of a list into observed[q->key] (for streams, as one
 * entry naming the class). */
static void take_items(struct ctx *c, struct req *q, struct sl_kube_result *res)
{
	cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(res->body, "items");
	cJSON *to = cJSON_GetObjectItemCaseSensitive(c->observed, q->key);

	if (!cJSON_IsArray(items)) {
		cJSON_Delete(items);
		return;
	}
	if (q->cls) {
		cJSON *entry = cJSON_CreateObject();
		if (!entry || !cJSON_AddStringToObject(entry, "class", q->cls) ||
		    !cJSON_AddStringToObject(entry, "kind", q->kind) ||
		    !cJSON_AddStringToObject(entry, "apiVersion", q->api_version) ||
		    !cJSON_AddItemToObject(entry, "items", items) || !cJSON_AddItemToArray(to, entry)) {
			c->failures++;
			cJSON_Delete(entry);
		}
		return;
	}
	while (items->child)
		cJSON_AddItemToArray(to, cJSON_DetachItemViaPointer(items, items->child));
	cJSON_Delete(items);
}

static void on_list(struct sl_kube_result *res, void *payload)
{
	struct req *q = payload;
	struct ctx *c = q->c;

	c->pending--;
	if (res->code == SL_ECANCELED) {
		req_free(q);
		return;
	}
	if (res->code == 0) {
		take_items(c, q, res);
		if (strcmp(q->key, "classes") == 0)
			list_streams(c, cJSON_GetObjectItemCaseSensitive(c->observed, "classes"));
	} else if (q->cls) {
		warn(c, "StreamClass %s: cannot list %s (%s): %s", q->cls, q->kind, q->api_version, why(res));
		if (res->code != SL_ENOTFOUND)
			c->failures++;
	} else if (res->code != SL_ENOTFOUND) {
		/* a resource that is not served (no Arcane CRDs) is empty */
		warn(c, "cannot list %s: %s", q->key, why(res));
		c->failures++;
	}
	req_free(q);
	if (c->pending == 0)
		round_done(c);
}

static void start_list(struct ctx *c, struct req *q, const struct sl_kube_ref *ref, const char *selector)
{
	struct sl_kube_call_opts o = {.label_selector = selector, .limit = LIST_PAGE};
	int r;

	c->pending++;
	r = sl_kube_list(c->kube, ref, &o, on_list, q);
	if (r < 0) {
		c->pending--;
		warn(c, "cannot list %s: %s", q->key, sl_strerror(r));
		c->failures++;
		req_free(q);
	}
}

static struct req *req_new(struct ctx *c, const char *key)
{
	struct req *q = calloc(1, sizeof(*q));

	if (q) {
		q->c = c;
		q->key = key;
	} else {
		c->failures++;
	}
	return q;
}

/* The streams of every class, one list per kind (two classes naming one
 * kind list it once, under the first). */
static void list_streams(struct ctx *c, const cJSON *classes)
{
	const cJSON *cls;
	struct sl_map seen;

	sl_map_init(&seen);
	cJSON_ArrayForEach(cls, classes)
	{
		const cJSON *spec = sl_manifest_obj(cls, "spec");
		const char *name = sl_manifest_md_str(cls, "name"),
		           *group = sl_manifest_str(spec, "apiGroupRef");
		const char *version = sl_manifest_str(spec, "apiVersion"),
		           *kind = sl_manifest_str(spec, "kindRef");
		char *av = group && version ? sl_asprintf("%s/%s", group, version) : NULL;
		char *key = av && kind ? sl_asprintf("%s/%s", av, kind) : NULL;
		struct req *q = NULL;

		if (!name || !group || !version || !kind) {
			warn(c, "StreamClass %s: spec needs apiGroupRef, apiVersion and kindRef",
			     name ? name : "?");
		} else if (!key ||
		           (!sl_map_get(&seen, key) && sl_map_put(&seen, key, (void *)cls, NULL) < 0)) {
			warn(c, "StreamClass %s: out of memory", name);
			c->failures++;
		} else if (sl_map_get(&seen, key) != cls) {
			/* another class names this kind: its streams are listed once */
		} else if ((q = req_new(c, "streams"))) {
			struct sl_kube_ref ref = {.api_version = av, .kind = kind, .ns = c->ns};
			q->cls = sl_strdup(name);
			q->kind = sl_strdup(kind);
			q->api_version = sl_strdup(av);
			if (!q->cls || !q->kind || !q->api_version) {
				req_free(q);
				c->failures++;
			} else {
				start_list(c, q, &ref, NULL);
			}
		}
		free(av);
		free(key);
	}
	sl_map_free(&seen, NULL);
}

static void start_round(struct ctx *c)
{
	static const char *const keys[] = {"configmaps", "classes",          "streams", "jobs",
	                                   "cronjobs",   "backfillrequests", "warnings"};
	const struct {
		const char *key;
		struct sl_kube_ref ref;
		const char *selector;
	} lists[] = {
	    {"configmaps",
	     {.api_version = "v1", .resource = "configmaps", .namespaced = true, .ns = c->ns},
	     "sluice.dev/inventory=true"},
	    {"classes", {.api_version = SL_ARCANE_API_VERSION, .resource = "streamclasses"}, NULL},
	    {"jobs",
	     {.api_version = "batch/v1", .resource = "jobs", .namespaced = true, .ns = c->ns},
	     SL_ARCANE_LABEL_ID},
	    {"cronjobs",
	     {.api_version = "batch/v1", .resource = "cronjobs", .namespaced = true, .ns = c->ns},
	     SL_ARCANE_LABEL_ID},
	    {"backfillrequests",
	     {.api_version = SL_ARCANE_API_VERSION,
	      .resource = "backfillrequests",
	      .namespaced = true,
	      .ns = c->ns},
	     NULL},
	};

	cJSON_Delete(c->observed);
	c->observed = cJSON_CreateObject();
	c->failures = 0;
	for (size_t i = 0; c->observed && i < SL_ARRAY_SIZE(keys); i++)
		if (!cJSON_AddArrayToObject(c->observed, keys[i])) {
			cJSON_Delete(c->observed);
			c->observed = NULL;
		}
	if (!c->observed) {
		fprintf(stderr, "sluice status: out of memory\n");
		c->exit_code = 2;
		sl_loop_quit(c->loop, 0);
		return;
	}
	/* +1 while issuing: round_done runs once, after the last answer */
	c->pending = 1;
	for (size_t i = 0; i < SL_ARRAY_SIZE(lists); i++) {
		struct req *q = req_new(c, lists[i].key);
		if (q)
			start_list(c, q, &lists[i].ref, lists[i].selector);
	}
	if (--c->pending == 0)
		round_done(c);
}

/* ---- output ------------------------------------------------------------------- */

/* JSON as kubectl -o json lays it out: four spaces a level, one member or
 * element a line, empty containers as {} and []. Scalars and keys are
 * written by cJSON, so their escaping is cJSON's. */
static int json_value(const cJSON *v, int depth, struct sl_buf *out)
{
	bool obj = cJSON_IsObject(v);
	const cJSON *x;
	char *s;
	int r;

	if (!obj && !cJSON_IsArray(v)) {
		s = cJSON_PrintUnformatted(v);
		r = s ? sl_buf_puts(out, s) : SL_ENOMEM;
		free(s);
		return r;
	}
	if (!v->child)
		return sl_buf_puts(out, obj ? "{}" : "[]");
	r = sl_buf_puts(out, obj ? "{\n" : "[\n");
	cJSON_ArrayForEach(x, v)
	{
		if (r == 0)
			r = sl_buf_printf(out, "%*s", 4 * (depth + 1), "");
		if (r == 0 && obj) {
			cJSON *key = cJSON_CreateString(x->string);
			s = key ? cJSON_PrintUnformatted(key) : NULL;
			r = s ? sl_buf_printf(out, "%s: ", s) : SL_ENOMEM;
			free(s);
			cJSON_Delete(key);
		}
		if (r == 0)
			r = json_value(x, depth + 1, out);
		if (r == 0)
			r = sl_buf_puts(out, x->next ? ",\n" : "\n");
	}
	if (r == 0)
		r = sl_buf_printf(out, "%*s%s", 4 * depth, "", obj ? "}" : "]");
	return r;
}

static int json_text(const cJSON *model, struct sl_buf *out)
{
	int r = json_value(model, 0, out);

	return r == 0 ? sl_buf_puts(out, "\n") : r;
}

static int render(struct ctx *c, const cJSON *model, struct sl_buf *out)
{
	struct sl_cmd__status_view v = {
	    .wide = c->fmt == FMT_WIDE,
	    .all_namespaces = !c->ns,
	    .colour = sl_cmd__use_colour(STDOUT_FILENO),
	    .headers = !c->o.no_headers,
	};

	switch (c->fmt) {
	case FMT_JSON:
		return json_text(model, out);
	case FMT_YAML:
		return sl_manifest_yaml_write(model, 0, out);
	default:
		return sl_cmd__status_print(model, &v, sl_wall_s(), out);
	}
}

static bool empty(const cJSON *model)
{
	return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(model, "sources")) == 0 &&
	       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(model, "streams")) == 0;
}

/* Prints the model unless --watch printed the same before: the key is the
 * model (absolute times only), and on a terminal also the text (ages). */
static void emit(struct ctx *c, const cJSON *model, const struct sl_buf *text)
{
	bool table = c->fmt == FMT_TABLE || c->fmt == FMT_WIDE;
	bool tty = table && c->o.watch && isatty(STDOUT_FILENO);
	char *key = sl_manifest_json_go(model);
	bool same_key = key && c->last_key && strcmp(key, c->last_key) == 0;
	bool same_text = c->last_text && strcmp(text->data ? text->data : "", c->last_text) == 0;

	if (c->rounds > 0 && same_key && (!tty || same_text)) {
		free(key);
		return;
	}
	if (tty)
		fputs("\033[H\033[2J", stdout);
	else if (c->rounds > 0)
		fputs(c->fmt == FMT_YAML ? "---\n" : c->fmt == FMT_JSON ? "" : "\n", stdout);
	if (table && empty(model))
		fprintf(tty ? stdout : stderr, "No resources found%s%s%s.\n", c->ns ? " in " : "",
		        c->ns ? c->ns : "", c->ns ? " namespace" : "");
	fwrite(text->data ? text->data : "", 1, text->len, stdout);
	fflush(stdout);
	free(c->last_key);
	free(c->last_text);
	c->last_key = key;
	c->last_text = sl_strdup(text->data ? text->data : "");
}

static void round_done(struct ctx *c)
{
	cJSON *model = NULL;
	struct sl_buf text;
	const cJSON *w;
	int r;

	sl_buf_init(&text, OUTPUT_MAX);
	r = sl_cmd__status_model(c->observed, &model);
	if (r == 0)
		r = render(c, model, &text);
	if (r < 0) {
		fprintf(stderr, "sluice status: %s\n", sl_strerror(r));
		c->exit_code = 2;
		sl_loop_quit(c->loop, 0);
		goto out;
	}
	/* warnings once per change, on stderr: they are not part of a table */
	if (!c->o.watch || !c->last_key || c->failures)
		cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(model, "warnings"))
		{
			fprintf(stderr, "sluice status: %s\n", w->valuestring);
		}
	emit(c, model, &text);
	if (c->failures && !c->o.watch)
		c->exit_code = 1;
	c->rounds++;
	if (c->o.watch)
		sl_loop_timer_arm(c->timer, c->interval_ms);
	else
		sl_loop_quit(c->loop, 0);
out:
	cJSON_Delete(model);
	sl_buf_free(&text);
}

static void on_timer(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	start_round(payload);
}

static void on_signal(struct sl_loop *loop, int signo, void *payload)
{
	sl_loop_quit(loop, 0);
}

/* ---- the command ------------------------------------------------------------ */

static int parse(struct ctx *c, int argc, char **argv)
{
	static const struct {
		const char *name;
		enum format fmt;
	} formats[] = {{"wide", FMT_WIDE}, {"json", FMT_JSON}, {"yaml", FMT_YAML}, {"table", FMT_TABLE}};
	int r = sl_cmd__parse(&sl_cmd__status_spec, argc, argv, &c->o, NULL);
	size_t i;

	if (r != 0)
		return r;
	for (i = 0; c->o.output && i < SL_ARRAY_SIZE(formats); i++)
		if (strcmp(c->o.output, formats[i].name) == 0)
			break;
	if (c->o.output && i == SL_ARRAY_SIZE(formats)) {
		fprintf(stderr, "sluice status: --output: expected wide, json or yaml, got '%s'\n",
		        c->o.output);
		return SL_EINVALID;
	}
	c->fmt = c->o.output ? formats[i].fmt : FMT_TABLE;
	c->interval_ms = DEFAULT_REFRESH;
	if (c->o.interval &&
	    (sl_duration_parse_ms(c->o.interval, &c->interval_ms) < 0 || c->interval_ms == 0)) {
		fprintf(stderr, "sluice status: --interval: expected a duration like 2s, got '%s'\n",
		        c->o.interval);
		return SL_EINVALID;
	}
	if (c->o.interval && !c->o.watch) {
		fprintf(stderr, "sluice status: --interval needs --watch\n");
		return SL_EINVALID;
	}
	return 0;
}

int sl_cmd_status(int argc, char **argv)
{
	struct ctx c = {.exit_code = 0};
	struct sl_kube_config *cfg = NULL;
	struct sl_error err = {0};
	int r;

	r = parse(&c, argc, argv);
	if (r != 0)
		return r > 0 ? 0 : 2;
	struct sl_kube_config_opts ko = {.kubeconfig = c.o.kubeconfig, .context = c.o.context};
	if (sl_loop_new(&c.loop) < 0 || sl_loop_on_signals(c.loop, on_signal, &c) < 0 ||
	    sl_loop_timer_new(c.loop, on_timer, &c, &c.timer) < 0) {
		fprintf(stderr, "sluice status: cannot set up the event loop\n");
		c.exit_code = 2;
		goto out;
	}
	if (sl_kube_config_load(&ko, &cfg, &err) < 0 ||
	    sl_kube_new(c.loop, TAKE_PTR(cfg), NULL, &c.kube, &err) < 0) {
		fprintf(stderr, "sluice status: %s\n", err.msg);
		c.exit_code = 2;
		goto out;
	}
	if (!c.o.all_ns) {
		const struct sl_kube_config *kc = sl_kube_get_config(c.kube);
		c.ns = c.o.ns ? c.o.ns : kc && kc->ns && *kc->ns ? kc->ns : "default";
	}
	start_round(&c);
	sl_loop_run(c.loop);
out:
	sl_loop_timer_free(c.timer);
	sl_kube_free(c.kube); /* lists in flight end as canceled */
	sl_kube_config_free(cfg);
	sl_loop_free(c.loop);
	cJSON_Delete(c.observed);
	free(c.last_key);
	free(c.last_text);
	return c.exit_code;
}
