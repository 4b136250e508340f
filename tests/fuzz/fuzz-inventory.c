/* Fuzz target: reading back the inventory ConfigMap, which anyone who may
 * edit ConfigMaps in its namespace can change. The input is taken twice: as
 * the ConfigMap's JSON as the API server returns it, and as the text of its
 * data.inventory and data.status. Reading must never crash or leak; what
 * it accepts has entries that can be found again, and writes out as text
 * that reads back to the same inventory and text. */
#include "sluice/manifest-json.h"
#include "sluice/sync.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inventory(const struct sl_sync_inventory *inv)
{
	struct sl_sync_inventory *again = NULL;
	struct sl_buf a, b;
	size_t n = sl_sync_inventory_count(inv);

	for (size_t i = 0; i < n; i++) {
		const struct sl_sync_inv_entry *e = sl_sync_inventory_at(inv, i);
		if (!e || !e->kind[0] || !e->name[0] || !e->version[0] ||
		    sl_sync_inventory_find(inv, e->group, e->kind, e->ns, e->name) != e)
			abort();
	}
	sl_buf_init(&a, 4 * SL_SYNC_INVENTORY_MAX);
	sl_buf_init(&b, 4 * SL_SYNC_INVENTORY_MAX);
	if (sl_sync_inventory_format(inv, &a) < 0)
		abort();
	if (sl_sync_inventory_parse(a.data, a.len, &again, NULL) < 0 || sl_sync_inventory_count(again) != n)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct sl_sync_inv_entry *e = sl_sync_inventory_at(inv, i);
		const struct sl_sync_inv_entry *f = sl_sync_inventory_find(again, e->group, e->kind, e->ns, e->name);
		if (!f || strcmp(f->version, e->version) || strcmp(f->digest, e->digest))
			abort();
	}
	if (sl_sync_inventory_format(again, &b) < 0 || a.len != b.len || memcmp(a.data, b.data, a.len))
		abort();
	sl_sync_inventory_free(again);
	sl_buf_free(&a);
	sl_buf_free(&b);
}

static void read_cm(const cJSON *cm)
{
	struct sl_sync_inventory *inv = NULL;
	char *outcome = NULL;
	struct sl_error err = {0};
	int r = sl_sync_inventory_read(cm, &inv, &outcome, &err);

	if (r < 0) {
		if (inv || outcome || !err.msg[0])
			abort();
		return;
	}
	if (!inv)
		abort();
	check_inventory(inv);
	sl_sync_inventory_free(inv);
	free(outcome);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *cm = NULL, *d;
	char *text;

	/* the ConfigMap as it comes from the API server */
	if (sl_manifest_json_parse((const char *)data, size, &cm, NULL) == 0)
		read_cm(cm);
	cJSON_Delete(cm);

	/* the input as the inventory and status texts of a ConfigMap */
	if (!(text = malloc(size + 1)))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	cm = cJSON_CreateObject();
	d = cm ? cJSON_AddObjectToObject(cm, "data") : NULL;
	if (d && cJSON_AddStringToObject(d, "inventory", text) && cJSON_AddStringToObject(d, "status", text))
		read_cm(cm);
	cJSON_Delete(cm);
	free(text);
	return 0;
}
