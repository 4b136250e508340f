/* sluice plan PATH: loads a tree offline and prints, as YAML, the Job the
 * controller would create first for each stream in it, so a user sees what
 * will run before pushing. Secret values are never read: secrets appear only
 * as references (envFrom / secretKeyRef). */
#include "cmd.h"
#include "sluice/manifest-json.h"
#include "sluice/manifest.h"
#include "sluice/stream.h"

#include <stdio.h>
#include <string.h>

/* A plan has no live object: the ownerReferences name this uid instead. */
#define PLAN_UID          "00000000-0000-0000-0000-000000000000"
#define DEFAULT_NAMESPACE "default"
#define PLAN_OUTPUT_MAX   (64u << 20)

static const struct sl_cmd_flag flags[] = {
    {"help", 'h', NULL, SL_CMD_HELP, 0, NULL, "this text"},
};

const struct sl_cmd_spec sl_cmd__plan_spec = {
    .name = "plan",
    .flags = flags,
    .n_flags = SL_ARRAY_SIZE(flags),
    .usage = "usage: sluice plan PATH\n\n"
             "Loads the manifests below PATH offline and prints, as YAML, the Job the controller\n"
             "would create first for each stream: the backfill Job for a stream with a backfill\n"
             "template (its initial BackfillRequest), else the streaming Job, or the CronJob of a\n"
             "batch stream. Stream layouts v0, v1 and v2 are read. A suspended stream gets a comment. "
             "Secrets appear only as references. Exits 1 when the tree has\n"
             "errors or a Job cannot be built, else 0.\n\n",
    .name_width = 13,
    .min_operands = 1,
    .max_operands = 1,
};

static const char *doc_ns(const struct sl_manifest_doc *d)
{
	return d->namespace && d->namespace[0] ? d->namespace : DEFAULT_NAMESPACE;
}

/* The StreamingJobTemplate a layout reference names; a template without a
 * namespace counts as in the default namespace, as kubectl would apply it.
 * Looked up through the set's index: one stream costs O(1), not a scan of
 * every document. */
static const struct sl_manifest_doc *find_template(const struct sl_manifest_set *s,
                                                   const struct sl_arcane_ref *ref)
{
	const struct sl_manifest_doc *d;

	if (!ref->name)
		return NULL;
	d = sl_manifest_set_find(s, SL_ARCANE_GROUP, "StreamingJobTemplate", ref->ns, ref->name);
	if (!d && strcmp(ref->ns, DEFAULT_NAMESPACE) == 0)
		d = sl_manifest_set_find(s, SL_ARCANE_GROUP, "StreamingJobTemplate", "", ref->name);
	return d && !d->n_errors ? d : NULL;
}

/* Layouts v1 and v2 give no default namespace for a template reference (the
 * Arcane operator would look in namespace ""): sluice uses the stream's, and
 * says so. */
static void note_ns_default(const struct sl_arcane_layout *l, const struct sl_arcane_ref *ref,
                            struct sl_buf *out)
{
	if (l->version > 0 && ref->name && ref->ns_defaulted)
		sl_buf_printf(
		    out,
		    "# %s has no namespace: sluice looks StreamingJobTemplate %s up in the stream's "
		    "namespace %s (the Arcane operator would not find it)\n",
		    ref->field, ref->name, ref->ns);
}

/* Pending BackfillRequests of the tree for this stream, for a note. */
static size_t pending_requests(const struct sl_manifest_set *s, const char *stream, const char *ns,
                               const char *cls)
{
	size_t n = 0;

	for (size_t i = 0; i < sl_manifest_set_doc_count(s); i++) {
		const struct sl_manifest_doc *d = sl_manifest_set_doc(s, i);
		const cJSON *spec = cJSON_GetObjectItemCaseSensitive(d->obj, "spec");
		if (d->n_errors || !d->kind || strcmp(d->kind, "BackfillRequest") != 0 ||
		    strcmp(doc_ns(d), ns) != 0)
			continue;
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "completed")))
			continue;
		const char *sid = sl_manifest_str(spec, "streamId"),
		           *sc = sl_manifest_str(spec, "streamClass");
		n += sid && sc && strcmp(sid, stream) == 0 && strcmp(sc, cls) == 0;
	}
	return n;
}

/* The stream as the controller would see it: the uid is the placeholder,
 * the namespace filled in when unset. NULL when out of memory. */
static cJSON *stream_copy(const struct sl_manifest_doc *d, const char *ns)
{
	cJSON *stream = cJSON_Duplicate(d->obj, true);
	cJSON *md = stream ? cJSON_GetObjectItemCaseSensitive(stream, "metadata") : NULL;

	if (!md)
		goto fail;
	cJSON_DeleteItemFromObjectCaseSensitive(md, "uid");
	if (!cJSON_AddStringToObject(md, "uid", PLAN_UID))
		goto fail;
	if (!d->namespace || !d->namespace[0]) {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");
		if (!cJSON_AddStringToObject(md, "namespace", ns))
			goto fail;
	}
	return stream;
fail:
	cJSON_Delete(stream);
	return NULL;
}

/* The template of the first Job, after notes on defaulted namespaces; NULL,
 * reported on stderr and as a comment, when the tree lacks it. */
static const struct sl_manifest_doc *first_template(const struct sl_manifest_set *s,
                                                    const struct sl_manifest_doc *d,
                                                    const struct sl_arcane_layout *l,
                                                    const struct sl_arcane_ref *ref, struct sl_buf *out)
{
	const struct sl_manifest_doc *tmpl;

	note_ns_default(l, &l->streaming, out);
	note_ns_default(l, &l->backfill, out);
	note_ns_default(l, &l->batch, out);
	tmpl = find_template(s, ref);
	if (!tmpl) {
		fprintf(stderr, "%s: %s %s/%s: StreamingJobTemplate %s/%s (%s) is not in the tree\n", d->file,
		        d->kind, doc_ns(d), d->name, ref->ns, ref->name, ref->field);
		sl_buf_printf(out, "# no Job: StreamingJobTemplate %s/%s (%s) is not in the tree\n", ref->ns,
		              ref->name, ref->field);
	}
	return tmpl;
}

/* The initial BackfillRequest the controller creates for a new stream with
 * a backfill template, named bname. NULL when out of memory. */
static cJSON *initial_backfill(const char *stream, const char *ns, const char *cls_name,
                               char bname[static SL_STREAM_NAME_MAX + 1])
{
	cJSON *bfr = cJSON_CreateObject(), *bmd, *bspec;

	sl_stream_initial_backfill_name(stream, PLAN_UID, bname);
	if (!(bmd = cJSON_AddObjectToObject(bfr, "metadata")) ||
	    !(bspec = cJSON_AddObjectToObject(bfr, "spec")) || !cJSON_AddStringToObject(bmd, "name", bname) ||
	    !cJSON_AddStringToObject(bmd, "namespace", ns) ||
	    !cJSON_AddStringToObject(bspec, "streamClass", cls_name) ||
	    !cJSON_AddStringToObject(bspec, "streamId", stream) ||
	    !cJSON_AddFalseToObject(bspec, "completed")) {
		cJSON_Delete(bfr);
		return NULL;
	}
	return bfr;
}

/* Comments on which Job comes first and what follows it; bname is the
 * initial BackfillRequest's, NULL without one. */
static void note_first_job(const struct sl_manifest_set *s, const struct sl_manifest_doc *d,
                           const struct sl_arcane_layout *l, const char *cls_name, const char *bname,
                           struct sl_buf *out)
{
	if (bname) {
		size_t n = pending_requests(s, d->name, doc_ns(d), cls_name);
		sl_buf_printf(
		    out, "# backfill Job for the initial BackfillRequest %s, which the controller creates\n",
		    bname);
		if (n)
			sl_buf_printf(
			    out,
			    "# %zu pending BackfillRequest%s in the tree for this stream would run next\n", n,
			    n == 1 ? "" : "s");
		sl_buf_printf(out, "# then the streaming Job (from %s)\n", l->streaming.field);
	} else if (l->backend == SL_ARCANE_BACKEND_CRON) {
		sl_buf_printf(out, "# CronJob on schedule \"%s\" (no initial backfill for a batch stream)\n",
		              l->schedule);
	} else {
		sl_buf_printf(out, "# streaming Job\n");
	}
	sl_buf_printf(out, "# ownerReferences[0].uid is a placeholder: a plan has no live stream\n");
}

/* Builds the first Job (a CronJob for a batch stream) and appends it as
 * YAML; 1 when it cannot (reported on stderr and as a comment). */
static int write_job(const struct sl_manifest_doc *d, const struct sl_stream_job_input *in,
                     const struct sl_arcane_layout *l, struct sl_buf *out)
{
	struct sl_error err = {0};
	cJSON *job = NULL;
	int rc = 0;

	if ((l->backend == SL_ARCANE_BACKEND_CRON
	         ? sl_stream_cronjob_build(in, l->schedule, false, &job, &err)
	         : sl_stream_job_build(in, &job, &err)) < 0) {
		fprintf(stderr, "%s: %s %s/%s: %s\n", d->file, d->kind, doc_ns(d), d->name, err.msg);
		sl_buf_printf(out, "# no Job: %s\n", err.msg);
		rc = 1;
	} else if (sl_manifest_yaml_write(job, 0, out) < 0) {
		fprintf(stderr, "sluice plan: output too large\n");
		rc = 1;
	}
	cJSON_Delete(job);
	return rc;
}

/* Plans one stream; appends to out. Returns 0, or 1 when its Job cannot be
 * built (reported on stderr and as a comment). */
static int plan_stream(const struct sl_manifest_set *s, const struct sl_manifest_doc *d,
                       const struct sl_manifest_doc *cls, struct sl_buf *out)
{
	const char *ns = doc_ns(d), *cls_name = cls->name ? cls->name : "";
	cJSON *stream = stream_copy(d, ns), *bfr = NULL;
	const struct sl_manifest_doc *tmpl;
	struct sl_arcane_layout l;
	struct sl_error err = {0};
	char bname[SL_STREAM_NAME_MAX + 1];
	int rc = 1;

	if (!stream) {
		fprintf(stderr, "sluice plan: out of memory\n");
		goto out;
	}
	sl_buf_printf(out, "---\n# %s %s/%s (file %s)\n", d->kind, ns, d->name, d->file);
	if (sl_arcane_layout_read(stream, &l, &err) < 0) {
		fprintf(stderr, "%s: %s %s/%s: %s\n", d->file, d->kind, ns, d->name, err.msg);
		sl_buf_printf(out, "# nothing would run: %s\n", err.msg);
		goto out;
	}
	sl_buf_printf(out, "# layout %s, %s backend\n", sl_arcane_layout_name(l.version),
	              l.backend == SL_ARCANE_BACKEND_CRON ? "CronJob" : "Job");
	if (l.suspended) {
		sl_buf_printf(out,
		              "# suspended: nothing would run until %s is false (created suspended, it gets "
		              "no initial backfill)\n",
		              l.suspended_field);
		rc = 0;
		goto out;
	}
	/* a batch stream runs its CronJob; another, with a backfill template,
	 * first the Job of its initial BackfillRequest */
	bool cron = l.backend == SL_ARCANE_BACKEND_CRON;
	bool backfill = !cron && l.backfill.name != NULL;
	tmpl = first_template(s, d, &l, cron ? &l.batch : backfill ? &l.backfill : &l.streaming, out);
	if (!tmpl)
		goto out;
	if (backfill && !(bfr = initial_backfill(d->name, ns, cls_name, bname))) {
		fprintf(stderr, "sluice plan: out of memory\n");
		goto out;
	}
	note_first_job(s, d, &l, cls_name, bfr ? bname : NULL, out);
	struct sl_stream_job_input in = {stream, cls->obj, tmpl->obj, bfr, false};
	rc = write_job(d, &in, &l, out);
out:
	cJSON_Delete(stream);
	cJSON_Delete(bfr);
	return rc;
}

int sl_cmd_plan(int argc, char **argv)
{
	struct sl_manifest_set *s = NULL;
	struct sl_error err = {0};
	struct sl_buf out;
	size_t streams = 0;
	int path, rc = 0;

	rc = sl_cmd__parse(&sl_cmd__plan_spec, argc, argv, NULL, &path);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (sl_manifest_load_dir(argv[path], NULL, &s, &err) < 0) {
		fprintf(stderr, "sluice plan: %s: %s\n", argv[path], err.msg);
		return 2;
	}
	/* Problems go to stderr; documents with errors are left out of the plan. */
	for (size_t i = 0; i < sl_manifest_set_problem_count(s); i++)
		sl_manifest_problem_print(sl_manifest_set_problem(s, i), stderr);
	if (sl_manifest_set_error_count(s))
		rc = 1;

	sl_buf_init(&out, PLAN_OUTPUT_MAX);
	sl_buf_printf(&out, "# sluice plan %s: the Job the controller would create first for each stream.\n",
	              argv[path]);
	sl_buf_printf(&out, "# Owner uids are the placeholder %s; secrets appear only as references.\n",
	              PLAN_UID);
	for (size_t i = 0; i < sl_manifest_set_doc_count(s); i++) {
		const struct sl_manifest_doc *d = sl_manifest_set_doc(s, i), *cls = NULL;
		if (d->n_errors || !d->name || !sl_manifest_set_is_stream(s, d, &cls) || !cls)
			continue;
		streams++;
		if (plan_stream(s, d, cls, &out))
			rc = 1;
	}
	if (streams == 0)
		sl_buf_printf(&out, "# no streams found\n");
	if (out.data)
		fputs(out.data, stdout);
	if (fflush(stdout) != 0)
		rc = 1;
	sl_buf_free(&out);
	sl_manifest_set_free(s);
	return rc;
}
