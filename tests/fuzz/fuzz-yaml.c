/* Fuzz target: the manifest loader and validator on one buffer must never
 * crash, leak or exceed its limits, whatever the bytes. */
#include "sluice/manifest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_cb(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload)
{
	char *s = cJSON_PrintUnformatted(obj);
	(*(size_t *)payload)++;
	free(s);
	cJSON_Delete(obj);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small limits so that bombs are refused quickly. */
	struct sl_manifest_limits lim = SL_MANIFEST_LIMITS_INIT;
	struct sl_manifest_set *s;
	size_t docs = 0;
	char line[256];

	lim.max_alias_nodes = 2000;
	lim.max_nodes = 20000;
	lim.max_depth = 32;
	lim.max_docs_per_file = 64;
	sl_manifest_parse(data, size, &lim, count_cb, &docs, NULL);
	if (docs > lim.max_docs_per_file)
		abort();

	s = sl_manifest_set_new(&lim);
	if (!s)
		return 0;
	if (sl_manifest_set_add_buffer(s, "fuzz.yaml", data, size, NULL) == 0 &&
	    sl_manifest_set_validate(s) == 0) {
		for (size_t i = 0; i < sl_manifest_set_problem_count(s); i++)
			sl_manifest_problem_format(sl_manifest_set_problem(s, i), line, sizeof(line));
		for (size_t i = 0; i < sl_manifest_set_doc_count(s); i++) {
			const struct sl_manifest_doc *d = sl_manifest_set_doc(s, i);
			unsigned l, c;
			if (!d->obj)
				abort();
			sl_manifest_doc_position(d, "spec.jobTemplateRef.name", &l, &c);
		}
	}
	sl_manifest_set_free(s);
	return 0;
}
