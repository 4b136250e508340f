/* Watch stream framing and event decoding: pure, no I/O, so the unit tests
 * and the fuzzer drive exactly the code the informer runs. */
#include "sluice/kube-watch.h"
#include "sluice/manifest-json.h"

#include <string.h>

void sl_kube_lines_init(struct sl_kube_lines *l, size_t max)
{
	sl_buf_init(&l->buf, max);
	l->overflow = false;
}

void sl_kube_lines_free(struct sl_kube_lines *l)
{
	sl_buf_free(&l->buf);
	l->overflow = false;
}

void sl_kube_lines_reset(struct sl_kube_lines *l)
{
	sl_buf_reset(&l->buf);
	l->overflow = false;
}

static int emit(const char *line, size_t len, int (*fn)(const char *, size_t, void *), void *payload)
{
	if (len && line[len - 1] == '\r')
		len--;
	if (!len)
		return 0;
	return fn(line, len, payload);
}

int sl_kube_lines_feed(struct sl_kube_lines *l, const char *p, size_t n,
                       int (*fn)(const char *line, size_t len, void *payload), void *payload)
{
	const char *end = p + n;
	int r;

	if (l->overflow)
		return SL_ETOOLARGE;
	/* finish the partial line carried over from the previous chunk */
	if (l->buf.len) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (sl_buf_append(&l->buf, p, take) < 0) {
			l->overflow = true;
			return SL_ETOOLARGE;
		}
		if (!nl)
			return 0;
		p = nl + 1;
		r = emit(l->buf.data, l->buf.len, fn, payload);
		sl_buf_reset(&l->buf);
		if (r)
			return r;
	}
	/* whole lines inside this chunk are handed out in place, not copied */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len;
		if (!nl)
			break;
		len = (size_t)(nl - p);
		if (len > l->buf.max) {
			l->overflow = true;
			return SL_ETOOLARGE;
		}
		r = emit(p, len, fn, payload);
		if (r)
			return r;
		p = nl + 1;
	}
	if (p < end && sl_buf_append(&l->buf, p, (size_t)(end - p)) < 0) {
		l->overflow = true;
		return SL_ETOOLARGE;
	}
	return 0;
}

static const char *const type_names[] = {
    [SL_KUBE_EVENT_ADDED] = "ADDED",     [SL_KUBE_EVENT_MODIFIED] = "MODIFIED",
    [SL_KUBE_EVENT_DELETED] = "DELETED", [SL_KUBE_EVENT_BOOKMARK] = "BOOKMARK",
    [SL_KUBE_EVENT_ERROR] = "ERROR",
};

const char *sl_kube_event_type_name(enum sl_kube_event_type t)
{
	return (unsigned)t < SL_ARRAY_SIZE(type_names) ? type_names[t] : "?";
}

void sl_kube_event_clear(struct sl_kube_event *ev)
{
	cJSON_Delete(ev->object);
	ev->object = NULL;
	ev->code = 0;
}

int sl_kube_event_parse(const char *line, size_t len, struct sl_kube_event *ret, struct sl_error *err)
{
	cJSON *root = NULL, *type, *obj, *meta, *name, *code;
	int r;
	size_t i;

	/* big integers of the object keep their digits (for the SPEC of a Job) */
	r = sl_manifest_json_parse(line, len, &root, err);
	if (r == SL_ENOMEM)
		goto out;
	r = SL_EINVALID;
	if (!root || !cJSON_IsObject(root)) {
		sl_error_set(err, SL_EINVALID, "watch event is not a JSON object");
		goto out;
	}
	type = cJSON_GetObjectItemCaseSensitive(root, "type");
	obj = cJSON_GetObjectItemCaseSensitive(root, "object");
	if (!cJSON_IsString(type) || !cJSON_IsObject(obj)) {
		sl_error_set(err, SL_EINVALID, "watch event without type or object");
		goto out;
	}
	for (i = 0; i < SL_ARRAY_SIZE(type_names); i++)
		if (strcmp(type->valuestring, type_names[i]) == 0)
			break;
	if (i == SL_ARRAY_SIZE(type_names)) {
		sl_error_set(err, SL_EINVALID, "unknown watch event type");
		goto out;
	}
	ret->type = (enum sl_kube_event_type)i;
	ret->code = 0;
	if (ret->type == SL_KUBE_EVENT_ERROR) {
		code = cJSON_GetObjectItemCaseSensitive(obj, "code");
		ret->code = cJSON_IsNumber(code) ? (long)code->valuedouble : 0;
	} else {
		meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
		name = cJSON_GetObjectItemCaseSensitive(meta, "name");
		if (ret->type != SL_KUBE_EVENT_BOOKMARK && (!cJSON_IsString(name) || !*name->valuestring)) {
			sl_error_set(err, SL_EINVALID, "watch event object without metadata.name");
			goto out;
		}
		if (ret->type == SL_KUBE_EVENT_BOOKMARK &&
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"))) {
			sl_error_set(err, SL_EINVALID, "bookmark without resourceVersion");
			goto out;
		}
	}
	ret->object = cJSON_DetachItemViaPointer(root, obj);
	r = 0;
out:
	cJSON_Delete(root);
	return r;
}
