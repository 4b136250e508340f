/* From loaded manifests to a plan: valid documents are planned, every error
 * the loader or the offline validation found becomes a problem of the plan
 * (which keeps prune from running). */
#include "sluice/sync.h"
#include "sluice/manifest.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* Documents with errors are left out; their errors, with file and line,
 * become problems. The objects are copied, or taken when take is set (the
 * same set). */
static int add_manifests(struct sl_sync_plan *p, const struct sl_manifest_set *set,
                         struct sl_manifest_set *take)
{
	size_t np = sl_manifest_set_problem_count(set), nd = sl_manifest_set_doc_count(set);
	int r;

	for (size_t i = 0; i < np; i++) {
		const struct sl_manifest_problem *pr = sl_manifest_set_problem(set, i);
		char reason[SL_ERRMSG_MAX];
		if (pr->severity != SL_MANIFEST_ERROR)
			continue;
		snprintf(reason, sizeof(reason), "%s%s%s", pr->field && *pr->field ? pr->field : "",
		         pr->field && *pr->field ? ": " : "", pr->message ? pr->message : "invalid");
		r = sl_sync_plan_add_problem(p, pr->file, (int)pr->line, pr->doc,
		                             pr->code < 0 ? pr->code : SL_EINVALID, reason);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < nd; i++) {
		const struct sl_manifest_doc *d = sl_manifest_set_doc(set, i);
		if (d->n_errors)
			continue; /* reported above, with its line */
		/* kept before a take clears d's borrowed strings */
		int index = (int)d->index, line = (int)d->line;
		cJSON *obj = take ? sl_manifest_set_take_obj(take, i) : cJSON_Duplicate(d->obj, true);
		if (!obj)
			return SL_ENOMEM;
		r = sl_sync_plan_add(p, obj, d->file, index, line);
		if (r < 0)
			return r;
	}
	return 0;
}

static int plan_from(const char *source_id, const char *revision, const struct sl_manifest_set *set,
                     struct sl_manifest_set *take, const char *snapshot_problems, struct sl_sync_plan **ret)
{
	struct sl_sync_plan *p;
	int r = sl_sync_plan_new(source_id, revision, &p);
	if (r < 0)
		return r;
	r = add_manifests(p, set, take);
	if (r == 0 && snapshot_problems && *snapshot_problems)
		r = sl_sync_plan_add_problem(p, "", 0, 0, SL_EINVALID, snapshot_problems);
	if (r == 0)
		r = sl_sync_plan_finish(p);
	if (r < 0) {
		sl_sync_plan_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

int sl_sync_plan_from_manifests(const char *source_id, const char *revision,
                                const struct sl_manifest_set *set, const char *snapshot_problems,
                                struct sl_sync_plan **ret)
{
	return plan_from(source_id, revision, set, NULL, snapshot_problems, ret);
}

int sl_sync_plan_take_manifests(const char *source_id, const char *revision, struct sl_manifest_set *set,
                                const char *snapshot_problems, struct sl_sync_plan **ret)
{
	return plan_from(source_id, revision, set, set, snapshot_problems, ret);
}
