/* Unit tests of the Lease body builder (sl_kube_lease_body): complete
 * bodies, and under allocation failure no body at all rather than one
 * without its holder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sluice/kube-lease.h"
#include "sluice/kube.h"

#include <stdlib.h>
#include <string.h>

/* cJSON allocations left before malloc fails; < 0: never fails. */
static long allocs_left = -1;

static void *failing_malloc(size_t n)
{
	if (allocs_left == 0)
		return NULL;
	if (allocs_left > 0)
		allocs_left--;
	return malloc(n);
}

static void hooks_fail_after(long n)
{
	cJSON_Hooks h = {.malloc_fn = failing_malloc, .free_fn = free};
	allocs_left = n;
	cJSON_InitHooks(&h);
}

static void hooks_reset(void)
{
	allocs_left = -1;
	cJSON_InitHooks(NULL);
}

static const char *spec_str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "spec"), k));
}

static const struct sl_kube_lease_write w_take = {
    .ns = "sluice-system",
    .name = "sluice-leader",
    .identity = "pod-a_0123abcd",
    .duration_ms = 15000,
    .now = "2026-11-29T10:00:00.000000Z",
};

static cJSON *old_lease(void)
{
	cJSON *o = cJSON_Parse("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
	                       "\"metadata\":{\"name\":\"sluice-leader\",\"namespace\":\"sluice-system\","
	                       "\"resourceVersion\":\"42\",\"managedFields\":[{}]},"
	                       "\"spec\":{\"holderIdentity\":\"pod-b_ffff0000\",\"leaseDurationSeconds\":15,"
	                       "\"acquireTime\":\"2026-11-29T09:00:00.000000Z\",\"leaseTransitions\":3}}");
	assert_non_null(o);
	return o;
}

static void body_complete(void **state)
{
	cJSON *old = old_lease(), *b = NULL;
	const cJSON *spec;

	assert_int_equal(sl_kube_lease_body(NULL, &w_take, &b), 0);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "kind")), "Lease");
	assert_string_equal(spec_str(b, "holderIdentity"), "pod-a_0123abcd");
	assert_string_equal(spec_str(b, "renewTime"), w_take.now);
	cJSON_Delete(b);
	/* taken from another holder: one more transition, managedFields dropped */
	assert_int_equal(sl_kube_lease_body(old, &w_take, &b), 0);
	spec = cJSON_GetObjectItemCaseSensitive(b, "spec");
	assert_string_equal(spec_str(b, "holderIdentity"), "pod-a_0123abcd");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(spec, "leaseTransitions")->valueint, 4);
	assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "metadata"),
	                                             "managedFields"));
	cJSON_Delete(b);
	cJSON_Delete(old);
}

/* Every allocation in turn fails: the builder returns SL_ENOMEM and no
 * tree, or a body that has every field (never one without its holder). */
static void body_under_allocation_failure(void **state)
{
	static const char *const fields[] = {"holderIdentity", "acquireTime", "renewTime"};
	struct sl_kube_lease_write rel = w_take;
	const struct sl_kube_lease_write *ws[] = {&w_take, &rel};
	cJSON *old = old_lease();
	unsigned failures = 0;

	rel.release = true;
	for (size_t wi = 0; wi < SL_ARRAY_SIZE(ws); wi++)
		for (int with_old = 0; with_old < 2; with_old++)
			for (long n = 0; n < 200; n++) {
				cJSON *b = (cJSON *)(uintptr_t)1;
				const cJSON *spec;
				int r;

				hooks_fail_after(n);
				r = sl_kube_lease_body(with_old ? old : NULL, ws[wi], &b);
				hooks_reset();
				if (r < 0) {
					assert_int_equal(r, SL_ENOMEM);
					assert_ptr_equal(b, (cJSON *)(uintptr_t)1);
					failures++;
					continue;
				}
				assert_int_equal(r, 0);
				spec = cJSON_GetObjectItemCaseSensitive(b, "spec");
				for (size_t f = 0; f < SL_ARRAY_SIZE(fields); f++)
					assert_non_null(spec_str(b, fields[f]));
				assert_string_equal(spec_str(b, "holderIdentity"),
				                    ws[wi]->release ? "" : "pod-a_0123abcd");
				assert_true(cJSON_IsNumber(
				    cJSON_GetObjectItemCaseSensitive(spec, "leaseDurationSeconds")));
				assert_true(cJSON_IsNumber(
				    cJSON_GetObjectItemCaseSensitive(spec, "leaseTransitions")));
				assert_non_null(cJSON_GetObjectItemCaseSensitive(
				    cJSON_GetObjectItemCaseSensitive(b, "metadata"), "name"));
				assert_non_null(cJSON_GetObjectItemCaseSensitive(b, "apiVersion"));
				cJSON_Delete(b);
			}
	/* the loop did reach the failures it is about */
	assert_true(failures > 20);
	cJSON_Delete(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(body_complete),
	    cmocka_unit_test(body_under_allocation_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
