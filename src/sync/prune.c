/* The prune decision: what left the source, in reverse dependency order, and
 * the safety rules that stop a prune. Pure. */
#include "sluice/sync.h"

#include <cjson/cJSON.h>
#include <string.h>

const char *sl_sync_prune_block_reason(enum sl_sync_prune_block b)
{
	switch (b) {
	case SL_SYNC_PRUNE_ALLOWED:
		return "allowed";
	case SL_SYNC_PRUNE_BLOCKED_SNAPSHOT:
		return "the snapshot has errors";
	case SL_SYNC_PRUNE_BLOCKED_SOURCE:
		return "the source could not be read";
	case SL_SYNC_PRUNE_BLOCKED_EMPTY:
		return "it would delete every object (use --allow-empty-prune)";
	}
	return "?";
}

static int cmp_reverse_stage(const void *a, const void *b)
{
	const struct sl_sync_inv_entry *x = *(const struct sl_sync_inv_entry *const *)a;
	const struct sl_sync_inv_entry *y = *(const struct sl_sync_inv_entry *const *)b;
	enum sl_sync_stage sx = sl_sync_stage_of(x->group, x->kind), sy = sl_sync_stage_of(y->group, y->kind);
	int c;
	if (sx != sy)
		return sx > sy ? -1 : 1;
	if ((c = strcmp(x->group, y->group)) || (c = strcmp(x->kind, y->kind)) || (c = strcmp(x->ns, y->ns)))
		return c;
	return strcmp(x->name, y->name);
}

int sl_sync_prune_plan(const struct sl_sync_inventory *prev, const struct sl_sync_inventory *cur,
                       const struct sl_sync_prune_opts *opts, const struct sl_sync_inv_entry ***ret_list,
                       size_t *ret_n, enum sl_sync_prune_block *ret_block)
{
	const struct sl_sync_inv_entry **list = NULL;
	size_t nprev = sl_sync_inventory_count(prev), n = 0;

	*ret_list = NULL;
	*ret_n = 0;
	if (!opts->source_ok) {
		*ret_block = SL_SYNC_PRUNE_BLOCKED_SOURCE;
		return 0;
	}
	if (opts->snapshot_errors > 0) {
		*ret_block = SL_SYNC_PRUNE_BLOCKED_SNAPSHOT;
		return 0;
	}
	*ret_block = SL_SYNC_PRUNE_ALLOWED;
	if (nprev == 0)
		return 0;
	list = malloc(nprev * sizeof(*list));
	if (!list)
		return SL_ENOMEM;
	for (size_t i = 0; i < nprev; i++) {
		const struct sl_sync_inv_entry *e = sl_sync_inventory_at(prev, i);
		if (!sl_sync_inventory_find(cur, e->group, e->kind, e->ns, e->name))
			list[n++] = e;
	}
	/* "every object": nothing of the previous set would remain, which is
	 * what an emptied or wrongly mounted tree looks like */
	if (n == nprev && !opts->allow_empty) {
		free(list);
		*ret_block = SL_SYNC_PRUNE_BLOCKED_EMPTY;
		return 0;
	}
	if (n == 0) {
		free(list);
		return 0;
	}
	qsort(list, n, sizeof(*list), cmp_reverse_stage);
	*ret_list = list;
	*ret_n = n;
	return 0;
}

bool sl_sync_prune_live_ok(const cJSON *live, const char *source_id, const char **why)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(live, "metadata");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
	const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	const cJSON *mb = cJSON_GetObjectItemCaseSensitive(labels, SL_ARCANE_LABEL_MANAGED_BY);
	const cJSON *pr = cJSON_GetObjectItemCaseSensitive(ann, SL_ARCANE_ANN_PRUNE);
	const cJSON *src = cJSON_GetObjectItemCaseSensitive(ann, SL_ARCANE_ANN_SOURCE);
	const char *dummy;

	why = why ? why : &dummy;
	if (cJSON_IsString(pr) && strcmp(pr->valuestring, "disabled") == 0) {
		*why = "annotated sluice.dev/prune: disabled";
		return false;
	}
	if (!cJSON_IsString(mb) || strcmp(mb->valuestring, "sluice") != 0) {
		*why = "not labelled as managed by sluice";
		return false;
	}
	if (!cJSON_IsString(src) || !source_id || strcmp(src->valuestring, source_id) != 0) {
		*why = "belongs to another source";
		return false;
	}
	*why = NULL;
	return true;
}
