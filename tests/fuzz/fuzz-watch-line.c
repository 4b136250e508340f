/* Fuzz target: the watch stream framer and event decoder must never crash,
 * never hand out a line longer than the maximum, and give the same lines
 * however the input is split into chunks. */
#include "sluice/kube-watch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINE 256

struct seen {
	uint64_t hash;
	size_t lines;
};

static int on_line(const char *line, size_t len, void *payload)
{
	struct seen *s = payload;
	struct sl_kube_event ev = {0};

	if (len == 0 || len > MAX_LINE)
		abort();
	s->lines++;
	s->hash = s->hash * 31 + sl_hash_keyed(line, len);
	if (sl_kube_event_parse(line, len, &ev, NULL) == 0) {
		if (!ev.object || !cJSON_IsObject(ev.object))
			abort();
		sl_kube_event_clear(&ev);
	} else if (ev.object)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_kube_lines l;
	struct seen whole = {0}, split = {0};
	int r1, r2 = 0;
	size_t step;

	sl_kube_lines_init(&l, MAX_LINE);
	r1 = sl_kube_lines_feed(&l, (const char *)data, size, on_line, &whole);
	sl_kube_lines_free(&l);

	/* the first byte picks a chunk size for the second pass */
	step = size ? (size_t)data[0] % 17 + 1 : 1;
	sl_kube_lines_init(&l, MAX_LINE);
	for (size_t off = 0; off < size && r2 == 0; off += step)
		r2 = sl_kube_lines_feed(&l, (const char *)data + off, SL_MIN(step, size - off), on_line,
		                        &split);
	sl_kube_lines_free(&l);
	/* without overflow, chunking changes nothing */
	if (r1 == 0 && r2 == 0 && (whole.lines != split.lines || whole.hash != split.hash))
		abort();
	if ((r1 == 0) != (r2 == 0) && r1 != SL_ETOOLARGE && r2 != SL_ETOOLARGE)
		abort();
	return 0;
}
