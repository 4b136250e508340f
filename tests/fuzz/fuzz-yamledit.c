/* Fuzz target: the write-back edit that marks a BackfillRequest completed in
 * a YAML file of the Git repository. The input is
 *   <document index byte><BackfillRequest name>\n<YAML text>
 * The edit must never crash and, when it changes the text, must give YAML
 * that reads back (as kubectl reads it) as the same documents except for
 * spec.completed, now true, of exactly one of them; a second edit of its
 * output finds nothing left to do. */
#include "sluice/manifest.h"
#include "sluice/source.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DOCS 32

struct docs {
	cJSON *obj[MAX_DOCS];
	unsigned index[MAX_DOCS];
	size_t n;
	bool overflow;
};

static int keep(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload)
{
	struct docs *d = payload;

	if (d->n == MAX_DOCS) {
		d->overflow = true;
		cJSON_Delete(obj);
		return 0;
	}
	d->index[d->n] = index;
	d->obj[d->n++] = obj;
	return 0;
}

static void docs_free(struct docs *d)
{
	for (size_t i = 0; i < d->n; i++)
		cJSON_Delete(d->obj[i]);
}

static const struct sl_manifest_limits *limits(void)
{
	static struct sl_manifest_limits lim = SL_MANIFEST_LIMITS_INIT;
	lim.max_alias_nodes = 2000;
	lim.max_nodes = 20000;
	lim.max_depth = 32;
	return &lim;
}

/* Detaches spec.completed (NULL when absent). */
static cJSON *take_completed(cJSON *doc)
{
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
	return cJSON_IsObject(spec) ? cJSON_DetachItemFromObjectCaseSensitive(spec, "completed") : NULL;
}

/* in and out as kubectl reads them: equal but for one spec.completed that
 * became true. Both must parse; in does when the edit found its document. */
static void compare(const char *in, size_t inlen, const char *out, size_t outlen)
{
	struct docs a = {0}, b = {0};
	size_t changed = 0;

	if (sl_manifest_parse(in, inlen, limits(), keep, &a, NULL) < 0 || a.overflow) {
		docs_free(&a);
		return; /* kubectl would not read it either: nothing to compare */
	}
	if (sl_manifest_parse(out, outlen, limits(), keep, &b, NULL) < 0 || a.n != b.n)
		abort();
	for (size_t i = 0; i < a.n; i++) {
		cJSON *ca = take_completed(a.obj[i]), *cb = take_completed(b.obj[i]);
		if (a.index[i] != b.index[i] || !cJSON_Compare(a.obj[i], b.obj[i], true))
			abort();
		/* (cJSON_Compare is false when either is NULL) */
		if ((ca || cb) && (!ca || !cb || !cJSON_Compare(ca, cb, true))) {
			if (!cJSON_IsTrue(cb))
				abort();
			changed++;
		}
		cJSON_Delete(ca);
		cJSON_Delete(cb);
	}
	if (changed != 1)
		abort();
	docs_free(&a);
	docs_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl, *text;
	char *name;
	unsigned doc;
	size_t len;
	struct sl_buf out, out2;
	struct sl_error err = {0};
	int r;

	if (size < 2 || !(nl = memchr(data + 1, '\n', size - 1)))
		return 0;
	doc = data[0] == 0xff ? ~0u : data[0] % 8;
	name = sl_strndup((const char *)data + 1, (size_t)(nl - (const char *)data - 1));
	if (!name)
		return 0;
	text = nl + 1;
	len = size - (size_t)(text - (const char *)data);

	r = sl_source_yaml_complete(text, len, doc, name, &out, &err);
	if (getenv("FUZZ_DEBUG"))
		fprintf(stderr, "---- result %d: %s\n", r, err.msg);
	if (r != 0 && r != SL_EEXIST && r != SL_ENOTFOUND && r != SL_EINVALID && r != SL_ETOOLARGE)
		abort();
	if (r == 0) {
		if (getenv("FUZZ_DEBUG"))
			fprintf(stderr, "---- edited:\n%.*s----\n", (int)out.len, out.data);
		/* nothing left to do in the edited text */
		if (sl_source_yaml_complete(out.data, out.len, doc, name, &out2, NULL) != SL_EEXIST)
			abort();
		compare(text, len, out.data, out.len);
		sl_buf_free(&out);
	} else if (r != SL_EEXIST && !err.msg[0])
		abort();
	free(name);
	return 0;
}
