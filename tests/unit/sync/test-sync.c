/* Unit tests of the pure sync core: planner, digests and projections, the
 * completed latch, inventory, prune decision, status and diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/manifest.h"
#include "sluice/sync.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static cJSON *J(const char *s)
{
	cJSON *o = cJSON_Parse(s);
	assert_non_null(o);
	return o;
}

static const char *ann(const cJSON *obj, const char *key)
{
	const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "annotations");
	const cJSON *v = cJSON_GetObjectItem(a, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void stages(void **state)
{
	assert_int_equal(sl_sync_stage_of("apiextensions.k8s.io", "CustomResourceDefinition"),
	                 SL_SYNC_STAGE_CRD);
	assert_int_equal(sl_sync_stage_of("", "Namespace"), SL_SYNC_STAGE_NAMESPACE);
	assert_int_equal(sl_sync_stage_of(SL_ARCANE_GROUP, "StreamClass"), SL_SYNC_STAGE_CLASS);
	assert_int_equal(sl_sync_stage_of("", "Secret"), SL_SYNC_STAGE_CONFIG);
	assert_int_equal(sl_sync_stage_of("", "ConfigMap"), SL_SYNC_STAGE_CONFIG);
	assert_int_equal(sl_sync_stage_of(SL_ARCANE_GROUP, "StreamingJobTemplate"), SL_SYNC_STAGE_TEMPLATE);
	assert_int_equal(sl_sync_stage_of(SL_ARCANE_GROUP, "BackfillRequest"), SL_SYNC_STAGE_BACKFILL);
	assert_int_equal(sl_sync_stage_of("streaming.example.com", "MockStream"), SL_SYNC_STAGE_STREAM);
	assert_int_equal(sl_sync_stage_of("apps", "Deployment"), SL_SYNC_STAGE_STREAM);
	/* a ConfigMap kind in another group is not the core one */
	assert_int_equal(sl_sync_stage_of("example.com", "ConfigMap"), SL_SYNC_STAGE_STREAM);
}

static void plan_orders_and_decorates(void **state)
{
	struct sl_sync_plan *p;
	assert_int_equal(sl_sync_plan_new("repo", "abc123", &p), 0);
	/* added in reverse dependency order on purpose */
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"streaming.sneaksanddata.com/v1\",\"kind\":"
	                       "\"BackfillRequest\",\"metadata\":{\"name\":\"b\",\"namespace\":\"n\"}}"),
	                     "z.yaml", 0, 1),
	    0);
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"streaming.example.com/v1\",\"kind\":\"MockStream\","
	                       "\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"}}"),
	                     "a.yaml", 1, 5),
	    0);
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	                       "\"c\",\"namespace\":\"n\",\"labels\":{\"x\":\"y\"},\"annotations\":null}}"),
	                     "a.yaml", 0, 1),
	    0);
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"streaming.sneaksanddata.com/v1\",\"kind\":"
	                       "\"StreamingJobTemplate\",\"metadata\":{\"name\":\"t\",\"namespace\":\"n\"}}"),
	                     "t.yaml", 0, 1),
	    0);
	assert_int_equal(sl_sync_plan_add(p,
	                                  J("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{"
	                                    "\"name\":\"n\"}}"),
	                                  "ns.yaml", 0, 1),
	                 0);
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":"
	                       "\"CustomResourceDefinition\",\"metadata\":{\"name\":\"x.example.com\"}}"),
	                     "crd.yaml", 0, 1),
	    0);
	assert_int_equal(sl_sync_plan_add(p,
	                                  J("{\"apiVersion\":\"streaming.sneaksanddata.com/v1\",\"kind\":"
	                                    "\"StreamClass\",\"metadata\":{\"name\":\"mock\"}}"),
	                                  "sc.yaml", 0, 1),
	                 0);
	assert_int_equal(sl_sync_plan_finish(p), 0);
	assert_int_equal(p->n_items, 7);
	assert_int_equal(p->n_problems, 0);
	const char *want[] = {"CustomResourceDefinition", "Namespace",  "StreamClass",    "ConfigMap",
	                      "StreamingJobTemplate",     "MockStream", "BackfillRequest"};
	for (size_t i = 0; i < 7; i++) {
		assert_string_equal(p->items[i].kind, want[i]);
		assert_int_equal(p->stage_start[p->items[i].stage] <= i, 1);
		assert_int_equal(i < p->stage_start[p->items[i].stage + 1], 1);
	}
	const struct sl_sync_item *cm = &p->items[3];
	assert_string_equal(cm->group, "");
	assert_string_equal(cm->version, "v1");
	assert_string_equal(cm->ns, "n");
	assert_string_equal(ann(cm->obj, SL_ARCANE_ANN_SOURCE), "repo");
	assert_string_equal(ann(cm->obj, SL_ARCANE_ANN_PATH), "a.yaml#0");
	assert_string_equal(ann(cm->obj, SL_ARCANE_ANN_REVISION), "abc123");
	const cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(cm->obj, "metadata"), "labels");
	assert_string_equal(cJSON_GetObjectItem(labels, SL_ARCANE_LABEL_MANAGED_BY)->valuestring, "sluice");
	assert_string_equal(cJSON_GetObjectItem(labels, "x")->valuestring, "y");
	assert_null(p->items[0].ns); /* cluster-scoped */
	assert_int_equal(p->stage_start[SL_SYNC_STAGE_COUNT], 7);
	assert_int_equal(sl_sync_plan_add(p, J("{}"), "late.yaml", 0, 1), SL_EINVALID);
	sl_sync_plan_free(p);
}

static void plan_empty(void **state)
{
	struct sl_sync_plan *p;
	assert_int_equal(sl_sync_plan_new("repo", "r0", &p), 0);
	assert_int_equal(sl_sync_plan_finish(p), 0);
	assert_int_equal(p->n_items, 0);
	for (int s = 0; s <= SL_SYNC_STAGE_COUNT; s++)
		assert_int_equal(p->stage_start[s], 0);
	sl_sync_plan_free(p);
}

static void plan_secret_string_data(void **state)
{
	struct sl_sync_plan *p;
	assert_int_equal(sl_sync_plan_new("repo", "r0", &p), 0);
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\","
	                       "\"namespace\":\"n\"},\"data\":{\"a\":\"eA==\",\"c\":\"eg==\"},"
	                       "\"stringData\":{\"b\":\"hello\",\"a\":\"y\"}}"),
	                     "s.yaml", 0, 1),
	    0);
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"t\","
	                       "\"namespace\":\"n\"},\"stringData\":{\"k\":1}}"),
	                     "s.yaml", 1, 9),
	    0);
	assert_int_equal(sl_sync_plan_finish(p), 0);
	assert_int_equal(p->n_items, 1);
	const cJSON *data = cJSON_GetObjectItem(p->items[0].obj, "data");
	assert_null(cJSON_GetObjectItem(p->items[0].obj, "stringData"));
	assert_string_equal(cJSON_GetObjectItem(data, "a")->valuestring, "eQ==");
	assert_string_equal(cJSON_GetObjectItem(data, "b")->valuestring, "aGVsbG8=");
	assert_string_equal(cJSON_GetObjectItem(data, "c")->valuestring, "eg==");
	assert_int_equal(p->n_problems, 1);
	assert_string_equal(p->problems[0].reason, "stringData values must be strings");
	assert_int_equal(p->problems[0].line, 9);
	sl_sync_plan_free(p);
}

static void plan_problems(void **state)
{
	struct sl_sync_plan *p;
	assert_int_equal(sl_sync_plan_new("repo", "r1", &p), 0);
	assert_int_equal(
	    sl_sync_plan_add(p, J("{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}"), "f.yaml", 0, 3),
	    0);
	assert_int_equal(sl_sync_plan_add(p,
	                                  J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{}}"),
	                                  "f.yaml", 1, 9),
	                 0);
	assert_int_equal(sl_sync_plan_add(p, J("[1,2]"), "g.yaml", 0, 1), 0);
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	                       "\"Bad Name\"}}"),
	                     "g.yaml", 1, 4),
	    0);
	/* duplicates: the first in source order wins */
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	                       "\"d\",\"namespace\":\"x\"}}"),
	                     "h2.yaml", 0, 1),
	    0);
	assert_int_equal(
	    sl_sync_plan_add(p,
	                     J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	                       "\"d\",\"namespace\":\"x\"}}"),
	                     "h1.yaml", 2, 7),
	    0);
	assert_int_equal(sl_sync_plan_add_problem(p, "broken.yaml", 12, 0, SL_EINVALID, "bad YAML"), 0);
	assert_int_equal(sl_sync_plan_finish(p), 0);
	assert_int_equal(p->n_items, 1);
	assert_string_equal(p->items[0].file, "h1.yaml");
	assert_int_equal(p->n_problems, 6);
	assert_string_equal(p->problems[0].file, "f.yaml");
	assert_int_equal(p->problems[0].line, 3);
	assert_string_equal(p->problems[0].reason, "missing apiVersion");
	assert_string_equal(p->problems[1].reason, "missing metadata.name");
	assert_int_equal(p->problems[1].line, 9);
	assert_string_equal(p->problems[2].reason, "document is not a mapping");
	assert_string_equal(p->problems[3].reason, "invalid metadata.name");
	assert_string_equal(p->problems[4].file, "broken.yaml");
	assert_string_equal(p->problems[5].file, "h2.yaml");
	assert_int_equal(p->problems[5].code, SL_EEXIST);
	assert_non_null(strstr(p->problems[5].reason, "duplicate of h1.yaml#2"));
	sl_sync_plan_free(p);
}

/* The state digest as the engine computes it, from the item's digest. */
static void state_digest(const cJSON *desired, const cJSON *live, char out[static SL_SYNC_DIGEST_HEX + 1])
{
	char d[SL_SYNC_DIGEST_HEX + 1];

	assert_int_equal(sl_sync_digest(desired, d), 0);
	assert_int_equal(sl_sync_state_digest_from(d, desired, live, out), 0);
}

/* The first SL_SYNC_DIGEST_HEX hex digits of the SHA-256 of text. */
static void sha_prefix(const char *text, char out[static SL_SYNC_DIGEST_HEX + 1])
{
	char hex[65];

	sl_sha256_hex(text, strlen(text), hex);
	memcpy(out, hex, SL_SYNC_DIGEST_HEX);
	out[SL_SYNC_DIGEST_HEX] = '\0';
}

/* What the inventory stores: a change here makes every object apply once
 * more after an upgrade. */
static void digest_definition(void **state)
{
	char got[SL_SYNC_DIGEST_HEX + 1], st[SL_SYNC_DIGEST_HEX + 1], want[SL_SYNC_DIGEST_HEX + 1];
	char state_want[128];
	cJSON *x = J("{\"kind\":\"K\",\"metadata\":{\"name\":\"n\",\"annotations\":{\"sluice.dev/revision\":"
	             "\"1\",\"a\":\"<b>\"}},\"data\":{\"k\":\"v\",\"n\":1,\"f\":0.5}}");
	cJSON *live =
	    J("{\"kind\":\"K\",\"metadata\":{\"name\":\"n\",\"uid\":\"u\"},\"data\":{\"k\":\"w\"}}");

	/* the desired object's Go JSON without the revision annotation */
	assert_int_equal(sl_sync_digest(x, got), 0);
	sha_prefix("{\"data\":{\"f\":0.5,\"k\":\"v\",\"n\":1},\"kind\":\"K\",\"metadata\":{\"annotations\":{"
	           "\"a\":\"\\u003cb\\u003e\"},\"name\":\"n\"}}",
	           want);
	assert_string_equal(got, want);
	/* the desired digest, then the projection's Go JSON */
	snprintf(state_want, sizeof(state_want),
	         "%s{\"data\":{\"k\":\"w\"},\"kind\":\"K\",\"metadata\":{\"name\":\"n\"}}", got);
	sha_prefix(state_want, want);
	assert_int_equal(sl_sync_state_digest_from(got, x, live, st), 0);
	assert_string_equal(st, want);
	cJSON_Delete(x);
	cJSON_Delete(live);
}

static void digest_rules(void **state)
{
	char a[SL_SYNC_DIGEST_HEX + 1], b[SL_SYNC_DIGEST_HEX + 1];
	cJSON *x =
	    J("{\"kind\":\"K\",\"metadata\":{\"name\":\"n\",\"annotations\":{\"sluice.dev/revision\":\"1\","
	      "\"a\":\"b\"}},\"data\":{\"k\":\"v\",\"n\":1}}");
	cJSON *y = J("{\"data\":{\"n\":1,\"k\":\"v\"},\"metadata\":{\"annotations\":{\"a\":\"b\","
	             "\"sluice.dev/revision\":\"2\"},\"name\":\"n\"},\"kind\":\"K\"}");
	assert_int_equal(sl_sync_digest(x, a), 0);
	assert_int_equal(sl_sync_digest(y, b), 0);
	assert_int_equal(strlen(a), SL_SYNC_DIGEST_HEX);
	/* key order and the revision annotation do not matter */
	assert_string_equal(a, b);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(y, "data"), "k", cJSON_CreateString("w"));
	assert_int_equal(sl_sync_digest(y, b), 0);
	assert_string_not_equal(a, b);
	/* a revision key elsewhere than metadata.annotations does count */
	cJSON *z1 = J("{\"data\":{\"sluice.dev/revision\":\"1\"}}");
	cJSON *z2 = J("{\"data\":{\"sluice.dev/revision\":\"2\"}}");
	assert_int_equal(sl_sync_digest(z1, a), 0);
	assert_int_equal(sl_sync_digest(z2, b), 0);
	assert_string_not_equal(a, b);
	/* the path annotation counts: a renamed file is re-applied */
	cJSON *p1 = J("{\"metadata\":{\"annotations\":{\"sluice.dev/path\":\"a.yaml#0\"}}}");
	cJSON *p2 = J("{\"metadata\":{\"annotations\":{\"sluice.dev/path\":\"b.yaml#0\"}}}");
	assert_int_equal(sl_sync_digest(p1, a), 0);
	assert_int_equal(sl_sync_digest(p2, b), 0);
	assert_string_not_equal(a, b);
	cJSON_Delete(x);
	cJSON_Delete(y);
	cJSON_Delete(z1);
	cJSON_Delete(z2);
	cJSON_Delete(p1);
	cJSON_Delete(p2);
}

static void projection_and_state(void **state)
{
	char s1[SL_SYNC_DIGEST_HEX + 1], s2[SL_SYNC_DIGEST_HEX + 1];
	cJSON *desired =
	    J("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"annotations\":"
	      "{\"sluice.dev/revision\":\"r2\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
	      "\"resources\":{\"limits\":{\"cpu\":\"1000m\"}}}]}}");
	/* what the server stored after the apply: normalised, defaulted, with
	 * fields of other managers and the revision of the previous apply */
	cJSON *live = J("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"uid\":\"u\","
	                "\"resourceVersion\":\"7\",\"annotations\":{\"sluice.dev/revision\":\"r1\",\"other\":"
	                "\"x\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"imagePullPolicy\":\"Always\","
	                "\"resources\":{\"limits\":{\"cpu\":\"1\"}}}],\"restartPolicy\":\"Always\"},"
	                "\"status\":{\"phase\":\"Pending\"}}");
	cJSON *proj = sl_sync_project(desired, live);
	char *ps = cJSON_PrintUnformatted(proj);
	assert_string_equal(ps,
	                    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
	                    "\"annotations\":{}},\"spec\":{\"containers\":[{\"name\":\"c\",\"resources\":{"
	                    "\"limits\":{\"cpu\":\"1\"}}}]}}");
	free(ps);
	cJSON_Delete(proj);

	/* recorded after apply, recomputed on resync: equal though the server
	 * normalised 1000m to 1 */
	state_digest(desired, live, s1);
	cJSON *live2 = cJSON_Duplicate(live, true);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(live2, "status"), "phase",
	                          cJSON_CreateString("Running"));
	state_digest(desired, live2, s2);
	assert_string_equal(s1, s2); /* a status change is not drift */

	/* kubectl edit of a managed field is drift */
	cJSON *lim = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(
	        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(live2, "spec"), "containers"), 0),
	        "resources"),
	    "limits");
	cJSON_ReplaceItemInObject(lim, "cpu", cJSON_CreateString("2"));
	state_digest(desired, live2, s2);
	assert_string_not_equal(s1, s2);

	/* a managed field removed by hand is drift; an object gone is too */
	cJSON *live3 = cJSON_Duplicate(live, true);
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(live3, "metadata"), "name");
	state_digest(desired, live3, s2);
	assert_string_not_equal(s1, s2);
	state_digest(desired, NULL, s2);
	assert_string_not_equal(s1, s2);

	/* an element added to a managed list by hand shows */
	cJSON *live4 = cJSON_Duplicate(live, true);
	cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(live4, "spec"), "containers"),
	                     J("{\"name\":\"extra\"}"));
	state_digest(desired, live4, s2);
	assert_string_not_equal(s1, s2);

	/* a new desired value changes it even when live is the same */
	cJSON *d2 = cJSON_Duplicate(desired, true);
	cJSON_AddStringToObject(cJSON_GetObjectItem(d2, "metadata"), "namespace", "x");
	state_digest(d2, live, s2);
	assert_string_not_equal(s1, s2);

	cJSON_Delete(desired);
	cJSON_Delete(d2);
	cJSON_Delete(live);
	cJSON_Delete(live2);
	cJSON_Delete(live3);
	cJSON_Delete(live4);
}

static void completed_latch(void **state)
{
	cJSON *d = J("{\"apiVersion\":\"streaming.sneaksanddata.com/v1\",\"kind\":\"BackfillRequest\","
	             "\"metadata\":{\"name\":\"b\"},\"spec\":{\"completed\":false,\"streamId\":\"s\"}}");
	cJSON *live_open = J("{\"spec\":{\"completed\":false}}");
	cJSON *live_done = J("{\"spec\":{\"completed\":true}}");
	assert_false(sl_sync_latch_completed(d, live_open));
	assert_false(sl_sync_latch_completed(d, NULL));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "completed")));
	assert_true(sl_sync_latch_completed(d, live_done));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "completed")));
	assert_false(sl_sync_latch_completed(d, live_done)); /* already true */
	/* field absent in the source: set as well */
	cJSON *d2 = J("{\"apiVersion\":\"streaming.sneaksanddata.com/v1\",\"kind\":\"BackfillRequest\","
	              "\"metadata\":{\"name\":\"b\"},\"spec\":{\"streamId\":\"s\"}}");
	assert_true(sl_sync_latch_completed(d2, live_done));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(d2, "spec"), "completed")));
	/* other kinds are left alone */
	cJSON *d3 = J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"spec\":{\"completed\":false}}");
	assert_false(sl_sync_latch_completed(d3, live_done));
	cJSON_Delete(d);
	cJSON_Delete(d2);
	cJSON_Delete(d3);
	cJSON_Delete(live_open);
	cJSON_Delete(live_done);
}

static void inventory_roundtrip(void **state)
{
	struct sl_sync_inventory *inv, *back;
	struct sl_buf b;
	struct sl_error err = {0};

	assert_int_equal(sl_sync_inventory_new(&inv), 0);
	assert_int_equal(sl_sync_inventory_put(inv, "", "v1", "ConfigMap", "ns1", "a", "d1"), 0);
	assert_int_equal(sl_sync_inventory_put(inv, "", "v1", "ConfigMap", "ns1", "b", "d2"), 0);
	assert_int_equal(sl_sync_inventory_put(inv, "", "v1", "Namespace", NULL, "ns1", NULL), 0);
	assert_int_equal(
	    sl_sync_inventory_put(inv, "streaming.example.com", "v1", "MockStream", "ns2", "s\"q", "d3"), 0);
	assert_int_equal(sl_sync_inventory_put(inv, "", "v1", "ConfigMap", "ns1", "a", "d9"),
	                 0); /* replace */
	assert_int_equal(sl_sync_inventory_count(inv), 4);
	assert_string_equal(sl_sync_inventory_find(inv, "", "ConfigMap", "ns1", "a")->digest, "d9");
	assert_null(sl_sync_inventory_find(inv, "", "ConfigMap", "ns2", "a"));
	assert_non_null(sl_sync_inventory_find(inv, NULL, "Namespace", "", "ns1"));
	sl_buf_init(&b, SL_SYNC_INVENTORY_MAX);
	assert_int_equal(sl_sync_inventory_format(inv, &b), 0);
	assert_string_equal(
	    b.data, "{\"v\":1,\"o\":{\"/v1/ConfigMap\":{\"ns1\":{\"a\":\"d9\",\"b\":\"d2\"}},"
	            "\"/v1/Namespace\":{\"\":{\"ns1\":\"\"}},\"streaming.example.com/v1/MockStream\":{"
	            "\"ns2\":{\"s\\\"q\":\"d3\"}}}}");
	assert_int_equal(sl_sync_inventory_parse(b.data, b.len, &back, &err), 0);
	assert_int_equal(sl_sync_inventory_count(back), 4);
	assert_string_equal(
	    sl_sync_inventory_find(back, "streaming.example.com", "MockStream", "ns2", "s\"q")->digest, "d3");
	sl_sync_inventory_free(back);
	sl_buf_free(&b);
	sl_sync_inventory_free(inv);

	/* empty */
	assert_int_equal(sl_sync_inventory_new(&inv), 0);
	sl_buf_init(&b, 100);
	assert_int_equal(sl_sync_inventory_format(inv, &b), 0);
	assert_string_equal(b.data, "{\"v\":1,\"o\":{}}");
	assert_int_equal(sl_sync_inventory_parse(b.data, b.len, &back, &err), 0);
	assert_int_equal(sl_sync_inventory_count(back), 0);
	sl_sync_inventory_free(back);
	sl_buf_free(&b);
	sl_sync_inventory_free(inv);

	assert_int_equal(sl_sync_inventory_parse("{\"v\":2}", 7, &back, &err), SL_EINVALID);
	assert_int_equal(sl_sync_inventory_parse("nope", 4, &back, &err), SL_EINVALID);
	assert_int_equal(sl_sync_inventory_parse("{\"v\":1,\"o\":{\"a/b\":{}}}", 22, &back, &err),
	                 SL_EINVALID);
	assert_int_equal(sl_sync_inventory_parse("{\"v\":1,\"o\":{\"a//b\":{}}}", 23, &back, &err),
	                 SL_EINVALID);
	assert_int_equal(sl_sync_inventory_parse("{\"v\":1,\"o\":{\"x\":{}}}", 20, &back, &err), SL_EINVALID);
	assert_int_equal(sl_sync_inventory_parse("{\"v\":1,\"o\":{\"a/b\":{}}}", 22, &back, &err),
	                 SL_EINVALID);
	assert_int_equal(sl_sync_inventory_parse("{\"v\":1,\"o\":{\"a//b\":{}}}", 23, &back, &err),
	                 SL_EINVALID);
}

/* The ConfigMap read back: its inventory and the outcome of its status; a
 * damaged inventory is an error, a missing one is empty. */
static void inventory_read(void **state)
{
	struct sl_sync_inventory *inv = NULL;
	char *outcome = NULL;
	struct sl_error err = {0};
	cJSON *cm;

	cm = sl_sync_inventory_configmap("repo", "sluice", "{\"v\":1,\"o\":{\"/v1/ConfigMap\":{\"ns\":{\"a\":\"d1\"}}}}",
	                                 "{\"result\":\"ok\",\"outcome\":\"abc\"}");
	assert_non_null(cm);
	assert_int_equal(sl_sync_inventory_read(cm, &inv, &outcome, &err), 0);
	assert_int_equal(sl_sync_inventory_count(inv), 1);
	assert_string_equal(sl_sync_inventory_find(inv, "", "ConfigMap", "ns", "a")->digest, "d1");
	assert_string_equal(outcome, "abc");
	sl_sync_inventory_free(inv);
	free(outcome);
	cJSON_Delete(cm);

	/* without inventory and status (a status that is not JSON has no outcome) */
	cm = cJSON_Parse("{\"data\":{\"status\":\"{oops\"}}");
	assert_int_equal(sl_sync_inventory_read(cm, &inv, &outcome, &err), 0);
	assert_non_null(inv);
	assert_int_equal(sl_sync_inventory_count(inv), 0);
	assert_null(outcome);
	sl_sync_inventory_free(inv);
	cJSON_Delete(cm);

	cm = sl_sync_inventory_configmap("repo", "sluice", "{\"v\":1,\"o\":{\"x\":{}}}", NULL);
	inv = NULL;
	assert_int_equal(sl_sync_inventory_read(cm, &inv, &outcome, &err), SL_EINVALID);
	assert_null(inv);
	assert_non_null(strstr(err.msg, "type key"));
	cJSON_Delete(cm);
}

/* The text is persisted and hashed into the status's outcome: types go by
 * group, kind, then version (not by their key), as sluice always wrote them. */
static void inventory_order(void **state)
{
	struct sl_sync_inventory *inv;
	struct sl_buf b;

	assert_int_equal(sl_sync_inventory_new(&inv), 0);
	assert_int_equal(sl_sync_inventory_put(inv, "batch", "v1", "Job", "n", "j", "d1"), 0);
	assert_int_equal(sl_sync_inventory_put(inv, "batch", "v1beta1", "CronJob", "n", "c", "d2"), 0);
	assert_int_equal(sl_sync_inventory_put(inv, "a.b", "v1", "K", "", "x", ""), 0);
	assert_int_equal(sl_sync_inventory_put(inv, "a", "v1", "K", "m", "y", "d3"), 0);
	assert_int_equal(sl_sync_inventory_put(inv, "a", "v1", "K", "", "z", "d4"), 0);
	sl_buf_init(&b, SL_SYNC_INVENTORY_MAX);
	assert_int_equal(sl_sync_inventory_format(inv, &b), 0);
	assert_string_equal(b.data,
	                    "{\"v\":1,\"o\":{\"a/v1/K\":{\"\":{\"z\":\"d4\"},\"m\":{\"y\":\"d3\"}},"
	                    "\"a.b/v1/K\":{\"\":{\"x\":\"\"}},\"batch/v1beta1/CronJob\":{\"n\":{\"c\":"
	                    "\"d2\"}},\"batch/v1/Job\":{\"n\":{\"j\":\"d1\"}}}}");
	sl_buf_free(&b);
	sl_sync_inventory_free(inv);
}

/* The inventory text is written straight into the buffer; its bytes must be
 * those cJSON printed from a tree (they are hashed into the outcome): the
 * same tree built here, with names that need escaping. */
static void inventory_format_as_cjson(void **state)
{
	static const char *const names[] = {"plain", "q\"uote",  "back\\slash",   "tab\there",   "ctl\x01x",
	                                    "nl\nx", "del\x7fx", "utf8-\xc3\xa9", "cr\rff\fbs\b"};
	struct sl_sync_inventory *inv;
	struct sl_buf b;
	cJSON *root = cJSON_CreateObject(), *objs, *type, *ns;
	char *want;

	assert_int_equal(sl_sync_inventory_new(&inv), 0);
	assert_non_null(cJSON_AddNumberToObject(root, "v", 1));
	assert_non_null(objs = cJSON_AddObjectToObject(root, "o"));
	/* group "" sorts first */
	assert_int_equal(sl_sync_inventory_put(inv, "", "v1", "ConfigMap", "", "c", ""), 0);
	assert_non_null(type = cJSON_AddObjectToObject(objs, "/v1/ConfigMap"));
	assert_non_null(ns = cJSON_AddObjectToObject(type, ""));
	assert_non_null(cJSON_AddStringToObject(ns, "c", ""));
	assert_non_null(type = cJSON_AddObjectToObject(objs, "g.example/v1/Kind\"x"));
	assert_non_null(ns = cJSON_AddObjectToObject(type, "n\ts"));
	/* the inventory sorts names; the tree gets them in that order */
	const char *sorted[SL_ARRAY_SIZE(names)];
	memcpy(sorted, names, sizeof(names));
	for (size_t i = 0; i < SL_ARRAY_SIZE(sorted); i++)
		for (size_t j = i + 1; j < SL_ARRAY_SIZE(sorted); j++)
			if (strcmp(sorted[j], sorted[i]) < 0) {
				const char *t = sorted[i];
				sorted[i] = sorted[j];
				sorted[j] = t;
			}
	for (size_t i = 0; i < SL_ARRAY_SIZE(names); i++) {
		assert_int_equal(
		    sl_sync_inventory_put(inv, "g.example", "v1", "Kind\"x", "n\ts", names[i], "d"), 0);
		assert_non_null(cJSON_AddStringToObject(ns, sorted[i], "d"));
	}
	want = cJSON_PrintUnformatted(root);
	assert_non_null(want);
	sl_buf_init(&b, SL_SYNC_INVENTORY_MAX);
	assert_int_equal(sl_sync_inventory_format(inv, &b), 0);
	assert_string_equal(b.data, want);
	free(want);
	sl_buf_free(&b);
	cJSON_Delete(root);
	sl_sync_inventory_free(inv);
}

/* A plan that takes the set's objects is the plan that copies them; the
 * set gives each object once and finds no document by name afterwards. */
static void plan_takes_manifests(void **state)
{
	static const char yaml[] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: ns1\n"
	                           "  labels:\n    tier: gold\ndata:\n  k: v\n---\n"
	                           "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns1\n---\n"
	                           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad name\n";
	struct sl_manifest_set *copy_set = sl_manifest_set_new(NULL), *take_set = sl_manifest_set_new(NULL);
	struct sl_sync_plan *copied, *taken;
	struct sl_error err = {0};

	assert_non_null(copy_set);
	assert_non_null(take_set);
	assert_int_equal(sl_manifest_set_add_buffer(copy_set, "f.yaml", yaml, strlen(yaml), &err), 0);
	assert_int_equal(sl_manifest_set_add_buffer(take_set, "f.yaml", yaml, strlen(yaml), &err), 0);
	assert_int_equal(sl_manifest_set_validate(copy_set), 0);
	assert_int_equal(sl_manifest_set_validate(take_set), 0);
	assert_int_equal(sl_sync_plan_from_manifests("repo", "r1", copy_set, NULL, &copied), 0);
	assert_int_equal(sl_sync_plan_take_manifests("repo", "r1", take_set, NULL, &taken), 0);
	assert_int_equal(taken->n_items, 2);
	assert_int_equal(taken->n_items, copied->n_items);
	assert_int_equal(taken->n_problems, copied->n_problems);
	assert_true(taken->n_problems >= 1);
	for (size_t i = 0; i < taken->n_items; i++) {
		char *a = cJSON_PrintUnformatted(copied->items[i].obj);
		char *b = cJSON_PrintUnformatted(taken->items[i].obj);
		assert_string_equal(a, b);
		assert_string_equal(copied->items[i].digest, taken->items[i].digest);
		assert_string_equal(copied->items[i].file, taken->items[i].file);
		assert_int_equal(copied->items[i].line, taken->items[i].line);
		free(a);
		free(b);
	}
	/* the copy left its set whole; the take emptied its own */
	assert_non_null(sl_manifest_set_find(copy_set, "", "ConfigMap", "ns1", "a"));
	assert_null(sl_manifest_set_find(take_set, "", "ConfigMap", "ns1", "a"));
	assert_null(sl_manifest_set_doc(take_set, 0)->obj);
	assert_null(sl_manifest_set_take_obj(take_set, 0));
	assert_null(sl_manifest_set_take_obj(take_set, 99));
	sl_manifest_set_free(take_set);
	sl_manifest_set_free(copy_set);
	/* the objects outlive the set they came from */
	assert_string_equal(ann(taken->items[1].obj, "sluice.dev/revision"), "r1");
	sl_sync_plan_free(copied);
	sl_sync_plan_free(taken);
}

/* A server that answers in the same time however many requests it holds
 * (latency is the network's): the limit grows to its maximum. */
static void limit_grows_while_latency_holds(void **state)
{
	struct sl_sync_limit l;
	unsigned answers = 0;

	sl_sync_limit_init(&l, 8, 4, 64);
	assert_int_equal(l.limit, 8);
	while (l.limit < 64 && answers < 2000) {
		sl_sync_limit_sample(&l, 30000);
		answers++;
	}
	assert_int_equal(l.limit, 64);
	print_message("# reached 64 after %u answers\n", answers);
	assert_true(answers < 600);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(sl_sync_limit_sample(&l, 30000), 64);
}

/* A saturated server serves one request a millisecond: every request more
 * in flight only waits. The limit settles low and stays within bounds. */
static void limit_shrinks_when_requests_queue(void **state)
{
	struct sl_sync_limit l;
	unsigned highest = 0;

	sl_sync_limit_init(&l, 8, 4, 64);
	for (int i = 0; i < 5000; i++) {
		unsigned lim = sl_sync_limit_sample(&l, (uint64_t)l.limit * 1000);
		assert_true(lim >= 4 && lim <= 64);
		if (i > 1000 && lim > highest)
			highest = lim;
	}
	print_message("# settled at most at %u\n", highest);
	assert_true(highest <= 16);
	/* from the top, after a light moment set the lowest latency */
	sl_sync_limit_init(&l, 64, 4, 64);
	for (int i = 0; i < 64; i++)
		sl_sync_limit_sample(&l, 4000);
	for (int i = 0; i < 5000; i++)
		sl_sync_limit_sample(&l, (uint64_t)l.limit * 1000);
	assert_true(l.limit <= 16);
}

static void limit_bounds(void **state)
{
	struct sl_sync_limit l;

	sl_sync_limit_init(&l, 8, 4, 2); /* --concurrency 2: a maximum below the minimum */
	assert_int_equal(l.limit, 4);
	assert_int_equal(l.max, 4);
	sl_sync_limit_init(&l, 8, 0, 64);
	assert_int_equal(l.min, 1);
	sl_sync_limit_init(&l, 1, 4, 64);
	assert_int_equal(l.limit, 4);
	for (int i = 0; i < 1000; i++)
		sl_sync_limit_sample(&l, 0); /* no latency at all: no division by zero */
	assert_int_equal(l.limit, 64);
}

static void inventory_fits_10000(void **state)
{
	struct sl_sync_inventory *inv, *back;
	struct sl_buf b;
	char name[64], digest[SL_SYNC_DIGEST_HEX + 1];
	struct sl_error err = {0};

	assert_int_equal(sl_sync_inventory_new(&inv), 0);
	for (int i = 0; i < 10000; i++) {
		/* 40-character names, longer than typical */
		snprintf(name, sizeof(name), "stream-configuration-%019d", i);
		char hex[65];
		sl_sha256_hex(name, strlen(name), hex);
		snprintf(digest, sizeof(digest), "%.*s", SL_SYNC_DIGEST_HEX, hex);
		assert_int_equal(
		    sl_sync_inventory_put(inv, "", "v1", "ConfigMap", "bench-namespace", name, digest), 0);
	}
	sl_buf_init(&b, SL_SYNC_INVENTORY_MAX);
	assert_int_equal(sl_sync_inventory_format(inv, &b), 0);
	print_message("# 10000 entries: %zu bytes\n", b.len);
	assert_true(b.len < 800 * 1024);
	assert_int_equal(sl_sync_inventory_parse(b.data, b.len, &back, &err), 0);
	assert_int_equal(sl_sync_inventory_count(back), 10000);
	sl_sync_inventory_free(back);
	sl_buf_free(&b);
	sl_sync_inventory_free(inv);
}

static void configmap_and_name(void **state)
{
	char name[300];
	assert_int_equal(sl_sync_inventory_name("repo-1", name, sizeof(name)), 0);
	assert_string_equal(name, "sluice-inventory-repo-1");
	assert_int_equal(sl_sync_inventory_name("Repo", name, sizeof(name)), SL_EINVALID);
	assert_int_equal(sl_sync_inventory_name("-x", name, sizeof(name)), SL_EINVALID);
	assert_int_equal(sl_sync_inventory_name("", name, sizeof(name)), SL_EINVALID);
	cJSON *cm = sl_sync_inventory_configmap("repo-1", "sluice-system", "{}", "{\"revision\":\"r\"}");
	assert_non_null(cm);
	char *s = cJSON_PrintUnformatted(cm);
	assert_string_equal(s,
	                    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	                    "\"sluice-inventory-repo-1\",\"namespace\":\"sluice-system\",\"labels\":{"
	                    "\"app.kubernetes.io/managed-by\":\"sluice\",\"sluice.dev/inventory\":\"true\"},"
	                    "\"annotations\":{\"sluice.dev/source\":\"repo-1\"}},\"data\":{\"inventory\":"
	                    "\"{}\",\"status\":\"{\\\"revision\\\":\\\"r\\\"}\"}}");
	free(s);
	cJSON_Delete(cm);
}

static void status_bounded(void **state)
{
	struct sl_sync_problem errs[60];
	char longreason[2000];
	struct sl_buf b;
	memset(longreason, 'x', sizeof(longreason) - 1);
	longreason[sizeof(longreason) - 1] = '\0';
	for (int i = 0; i < 60; i++)
		errs[i] = (struct sl_sync_problem){
		    .file = "f.yaml", .line = i + 1, .kind = "ConfigMap", .name = "c", .reason = longreason};
	struct sl_sync_status st = {.start_s = 1764000000,
	                            .end_s = 1764000002,
	                            .result = "failed",
	                            .applied = 3,
	                            .failed = 60,
	                            .errors = errs,
	                            .n_errors = 60,
	                            .prune_blocked = "the snapshot has errors"};
	snprintf(st.revision, sizeof(st.revision), "abc");
	sl_buf_init(&b, 1 << 20);
	assert_int_equal(sl_sync_status_format(&st, &b), 0);
	cJSON *o = J(b.data);
	assert_string_equal(cJSON_GetObjectItem(o, "revision")->valuestring, "abc");
	assert_string_equal(cJSON_GetObjectItem(o, "start")->valuestring, "2025-11-24T16:00:00Z");
	assert_int_equal(cJSON_GetObjectItem(o, "errorCount")->valueint, 60);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "errors")), SL_SYNC_STATUS_MAX_ERRORS);
	const cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "errors"), 0);
	assert_int_equal(strlen(cJSON_GetObjectItem(e0, "reason")->valuestring), SL_SYNC_STATUS_MAX_REASON);
	assert_int_equal(cJSON_GetObjectItem(e0, "line")->valueint, 1);
	assert_string_equal(cJSON_GetObjectItem(o, "pruneBlocked")->valuestring, "the snapshot has errors");
	cJSON_Delete(o);
	sl_buf_free(&b);
}

static struct sl_sync_inventory *inv_of(const char *const *keys)
{
	/* "group/kind/ns/name" */
	struct sl_sync_inventory *inv;
	assert_int_equal(sl_sync_inventory_new(&inv), 0);
	for (; *keys; keys++) {
		char g[64], k[64], ns[64], n[64];
		assert_int_equal(sscanf(*keys, "%63[^|]|%63[^|]|%63[^|]|%63s", g, k, ns, n), 4);
		assert_int_equal(sl_sync_inventory_put(inv, strcmp(g, "-") ? g : "", "v1", k,
		                                       strcmp(ns, "-") ? ns : "", n, "d"),
		                 0);
	}
	return inv;
}

static void prune_decision(void **state)
{
	static const char *const prev_keys[] = {
	    "apiextensions.k8s.io|CustomResourceDefinition|-|x.example.com",
	    "-|Namespace|-|n",
	    "-|ConfigMap|n|c",
	    "streaming.sneaksanddata.com|BackfillRequest|n|b",
	    "streaming.sneaksanddata.com|StreamingJobTemplate|n|t",
	    "example.com|MockStream|n|s",
	    "-|ConfigMap|n|keep",
	    NULL,
	};
	static const char *const cur_keys[] = {"-|ConfigMap|n|keep", NULL};
	static const char *const none[] = {NULL};
	struct sl_sync_inventory *prev = inv_of(prev_keys), *cur = inv_of(cur_keys), *empty = inv_of(none);
	const struct sl_sync_inv_entry **list;
	size_t n;
	enum sl_sync_prune_block why;
	struct sl_sync_prune_opts ok = {.source_ok = true};

	assert_int_equal(sl_sync_prune_plan(prev, cur, &ok, &list, &n, &why), 0);
	assert_int_equal(why, SL_SYNC_PRUNE_ALLOWED);
	assert_int_equal(n, 6);
	/* reverse dependency order */
	const char *want[] = {"BackfillRequest", "MockStream", "StreamingJobTemplate",
	                      "ConfigMap",       "Namespace",  "CustomResourceDefinition"};
	for (size_t i = 0; i < n; i++)
		assert_string_equal(list[i]->kind, want[i]);
	assert_string_equal(list[3]->name, "c");
	free(list);

	/* broken file in the snapshot */
	struct sl_sync_prune_opts broken = {.source_ok = true, .snapshot_errors = 1};
	assert_int_equal(sl_sync_prune_plan(prev, cur, &broken, &list, &n, &why), 0);
	assert_int_equal(why, SL_SYNC_PRUNE_BLOCKED_SNAPSHOT);
	assert_int_equal(n, 0);
	assert_null(list);

	/* unreadable source */
	struct sl_sync_prune_opts unreadable = {.source_ok = false, .allow_empty = true};
	assert_int_equal(sl_sync_prune_plan(prev, cur, &unreadable, &list, &n, &why), 0);
	assert_int_equal(why, SL_SYNC_PRUNE_BLOCKED_SOURCE);
	assert_int_equal(n, 0);

	/* emptied tree */
	assert_int_equal(sl_sync_prune_plan(prev, empty, &ok, &list, &n, &why), 0);
	assert_int_equal(why, SL_SYNC_PRUNE_BLOCKED_EMPTY);
	assert_int_equal(n, 0);
	struct sl_sync_prune_opts allow = {.source_ok = true, .allow_empty = true};
	assert_int_equal(sl_sync_prune_plan(prev, empty, &allow, &list, &n, &why), 0);
	assert_int_equal(why, SL_SYNC_PRUNE_ALLOWED);
	assert_int_equal(n, 7);
	free(list);

	/* nothing left the source; first sync (no previous inventory) */
	assert_int_equal(sl_sync_prune_plan(prev, prev, &ok, &list, &n, &why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(why, SL_SYNC_PRUNE_ALLOWED);
	assert_int_equal(sl_sync_prune_plan(empty, cur, &ok, &list, &n, &why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sl_sync_prune_plan(NULL, cur, &ok, &list, &n, &why), 0);
	assert_int_equal(n, 0);

	sl_sync_inventory_free(prev);
	sl_sync_inventory_free(cur);
	sl_sync_inventory_free(empty);
}

static void prune_live_checks(void **state)
{
	const char *why;
	cJSON *ok = J("{\"metadata\":{\"labels\":{\"app.kubernetes.io/managed-by\":\"sluice\"},"
	              "\"annotations\":{\"sluice.dev/source\":\"repo\"}}}");
	cJSON *disabled =
	    J("{\"metadata\":{\"labels\":{\"app.kubernetes.io/managed-by\":\"sluice\"},"
	      "\"annotations\":{\"sluice.dev/source\":\"repo\",\"sluice.dev/prune\":\"disabled\"}}}");
	cJSON *foreign = J("{\"metadata\":{\"labels\":{\"app.kubernetes.io/managed-by\":\"helm\"},"
	                   "\"annotations\":{\"sluice.dev/source\":\"repo\"}}}");
	assert_true(sl_sync_prune_live_ok(ok, "repo", &why));
	assert_false(sl_sync_prune_live_ok(ok, "other", &why));
	assert_string_equal(why, "belongs to another source");
	assert_false(sl_sync_prune_live_ok(disabled, "repo", &why));
	assert_string_equal(why, "annotated sluice.dev/prune: disabled");
	assert_false(sl_sync_prune_live_ok(foreign, "repo", NULL));
	cJSON_Delete(ok);
	cJSON_Delete(disabled);
	cJSON_Delete(foreign);
}

static void diff_objects(void **state)
{
	struct sl_buf b;
	cJSON *desired =
	    J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"},"
	      "\"data\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":\"4\",\"e\":\"5\",\"f\":\"6\","
	      "\"g\":\"7\",\"h\":\"8\",\"i\":\"9\",\"j\":\"10\",\"k\":\"11\",\"l\":\"12\","
	      "\"m\":\"13\",\"n\":\"14\",\"o\":\"15\",\"p\":\"16\"}}");
	cJSON *live = cJSON_Duplicate(desired, true);
	cJSON_AddStringToObject(cJSON_GetObjectItem(live, "metadata"), "uid", "zzz");
	sl_buf_init(&b, 1 << 20);
	/* equal in the managed fields: no diff */
	assert_int_equal(sl_sync_diff_object(desired, live, NULL, "v1/ConfigMap c", &b), 0);
	assert_int_equal(b.len, 0);
	/* two changes far apart: two hunks, as diff -u prints them */
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(live, "data"), "b", cJSON_CreateString("two"));
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(live, "data"), "p");
	assert_int_equal(sl_sync_diff_object(desired, live, NULL, "v1/ConfigMap c", &b), 1);
	assert_string_equal(b.data, "--- v1/ConfigMap c (live)\n"
	                            "+++ v1/ConfigMap c (desired)\n"
	                            "@@ -1,7 +1,7 @@\n"
	                            " apiVersion: v1\n"
	                            " data:\n"
	                            "   a: \"1\"\n"
	                            "-  b: two\n"
	                            "+  b: \"2\"\n"
	                            "   c: \"3\"\n"
	                            "   d: \"4\"\n"
	                            "   e: \"5\"\n"
	                            "@@ -15,6 +15,7 @@\n"
	                            "   m: \"13\"\n"
	                            "   \"n\": \"14\"\n" /* YAML 1.1: n is a boolean */
	                            "   o: \"15\"\n"
	                            "+  p: \"16\"\n"
	                            " kind: ConfigMap\n"
	                            " metadata:\n"
	                            "   name: c\n");
	/* close changes share one hunk */
	sl_buf_reset(&b);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(live, "data"), "h", cJSON_CreateString("eight"));
	cJSON_AddStringToObject(cJSON_GetObjectItem(live, "data"), "p", "16");
	assert_int_equal(sl_sync_diff_object(desired, live, NULL, "v1/ConfigMap c", &b), 1);
	assert_non_null(strstr(b.data, "@@ -1,13 +1,13 @@\n"));
	assert_null(strstr(strstr(b.data, "@@ -1,13"), "\n@@"));
	sl_buf_reset(&b);
	/* a new object */
	assert_int_equal(sl_sync_diff_object(desired, NULL, NULL, "v1/ConfigMap c", &b), 1);
	assert_non_null(
	    strstr(b.data, "--- /dev/null\n+++ v1/ConfigMap c (desired, new)\n@@ -0,0 +1,21 @@\n"));
	sl_buf_reset(&b);
	cJSON_Delete(desired);
	cJSON_Delete(live);

	/* Secret values never show */
	desired = J("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"},"
	            "\"data\":{\"same\":\"c2VjcmV0MQ==\",\"changed\":\"bmV3c2VjcmV0\"}}");
	live = J("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"},"
	         "\"data\":{\"same\":\"c2VjcmV0MQ==\",\"changed\":\"b2xkc2VjcmV0\"}}");
	assert_int_equal(sl_sync_diff_object(desired, live, NULL, "v1/Secret s", &b), 1);
	assert_null(strstr(b.data, "c2VjcmV0MQ"));
	assert_null(strstr(b.data, "bmV3c2VjcmV0"));
	assert_null(strstr(b.data, "b2xkc2VjcmV0"));
	assert_non_null(strstr(b.data, "-  changed: (masked, before)\n+  changed: (masked, after)\n"));
	assert_non_null(strstr(b.data, "   same: (masked)\n"));
	sl_buf_free(&b);
	cJSON_Delete(desired);
	cJSON_Delete(live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(stages),
	    cmocka_unit_test(plan_orders_and_decorates),
	    cmocka_unit_test(plan_empty),
	    cmocka_unit_test(plan_secret_string_data),
	    cmocka_unit_test(plan_problems),
	    cmocka_unit_test(digest_definition),
	    cmocka_unit_test(digest_rules),
	    cmocka_unit_test(projection_and_state),
	    cmocka_unit_test(completed_latch),
	    cmocka_unit_test(inventory_roundtrip),
	    cmocka_unit_test(inventory_read),
	    cmocka_unit_test(inventory_order),
	    cmocka_unit_test(inventory_format_as_cjson),
	    cmocka_unit_test(plan_takes_manifests),
	    cmocka_unit_test(limit_grows_while_latency_holds),
	    cmocka_unit_test(limit_shrinks_when_requests_queue),
	    cmocka_unit_test(limit_bounds),
	    cmocka_unit_test(inventory_fits_10000),
	    cmocka_unit_test(configmap_and_name),
	    cmocka_unit_test(status_bounded),
	    cmocka_unit_test(prune_decision),
	    cmocka_unit_test(prune_live_checks),
	    cmocka_unit_test(diff_objects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
