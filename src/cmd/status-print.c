/* The tables of `sluice status`, drawn from its model (status-model.c):
 * one of sources, one of streams, with the columns -o wide and -A add. */
#include "cmd.h"
#include "sluice/arcane.h"
#include "sluice/base.h"
#include "sluice/manifest-json.h"

#include <stdio.h>
#include <string.h>

#define NONE "<none>"

/* When a column is shown. */
enum { ALWAYS = 0, WIDE = 1, ALL_NS = 2 };

struct col {
	const char *header;
	unsigned when;
};

static const struct col source_cols[] = {
    {"NAMESPACE", ALL_NS}, {"SOURCE", ALWAYS},  {"REVISION", ALWAYS}, {"LAST SYNC", ALWAYS},
    {"RESULT", ALWAYS},    {"APPLIED", ALWAYS}, {"PRUNED", ALWAYS},   {"FAILED", ALWAYS},
    {"UNCHANGED", WIDE},   {"OBJECTS", WIDE},   {"DURATION", WIDE},   {"MESSAGE", WIDE},
};
#define SOURCE_COLS SL_ARRAY_SIZE(source_cols)

static const struct col stream_cols[] = {
    {"NAMESPACE", ALL_NS}, {"KIND", ALWAYS},  {"NAME", ALWAYS}, {"CLASS", WIDE},
    {"PHASE", ALWAYS},     {"READY", WIDE},   {"JOB", ALWAYS},  {"JOB STATE", WIDE},
    {"BACKFILL", ALWAYS},  {"PENDING", WIDE}, {"AGE", ALWAYS},  {"MESSAGE", ALWAYS},
};
#define STREAM_COLS SL_ARRAY_SIZE(stream_cols)
#define MAX_COLS    12

/* One row in the full column order; cells point into the model or into
 * buf (a row's own text). */
_Static_assert(SOURCE_COLS <= MAX_COLS && STREAM_COLS <= MAX_COLS, "a row holds every column");

struct row {
	const char *cell[MAX_COLS];
	enum sl_cmd_colour colour[MAX_COLS];
	char buf[9][512];
};

static bool shown(const struct col *c, const struct sl_cmd__status_view *v)
{
	return (!(c->when & WIDE) || v->wide) && (!(c->when & ALL_NS) || v->all_namespaces);
}

/* Adds the shown columns of r (or the headers when r is NULL). */
static int add_row(struct sl_cmd__table *t, const struct col *cols, size_t n, const struct row *r,
                   const struct sl_cmd__status_view *v)
{
	const char *cells[MAX_COLS];
	enum sl_cmd_colour colours[MAX_COLS];
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (shown(&cols[i], v)) {
			cells[k] = r ? r->cell[i] : cols[i].header;
			colours[k++] = r ? r->colour[i] : SL_CMD_PLAIN;
		}
	return r ? sl_cmd__table_add(t, cells, colours) : sl_cmd__table_init(t, cells, k);
}

static const char *str(const cJSON *o, const char *key)
{
	return sl_manifest_str(o, key);
}

static const char *or_none(const char *s)
{
	return s ? s : NONE;
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The age of an RFC 3339 time, or NONE. */
static const char *age_of(const char *t, int64_t now, char out[static 32])
{
	int64_t s;

	if (!t || sl_time_parse_rfc3339(t, &s) < 0)
		return NONE;
	sl_cmd__age(now - s, out);
	return out;
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

/* A Git commit or a directory digest cut to 12 hex digits, as `git log
 * --oneline` would show it; anything else as it is. */
static const char *short_revision(const char *rev, char out[static 512])
{
	const char *hex = rev && sl_str_has_prefix(rev, "sha256:") ? rev + 7 : rev;

	if (!rev)
		return NONE;
	if ((strlen(hex) == 40 || strlen(hex) == 64) && all_hex(hex, strlen(hex))) {
		snprintf(out, 512, "%.*s%.12s", (int)(hex - rev), rev, hex);
		return out;
	}
	return rev;
}

static enum sl_cmd_colour result_colour(const char *result)
{
	if (sl_streq(result, "ok"))
		return SL_CMD_GREEN;
	return result ? SL_CMD_RED : SL_CMD_PLAIN;
}

static enum sl_cmd_colour phase_colour(const char *phase)
{
	static const struct {
		const char *phase;
		enum sl_cmd_colour colour;
	} map[] = {
	    {SL_ARCANE_PHASE_RUNNING, SL_CMD_GREEN},    {SL_ARCANE_PHASE_SCHEDULED, SL_CMD_GREEN},
	    {SL_ARCANE_PHASE_BACKFILLING, SL_CMD_CYAN}, {SL_ARCANE_PHASE_PENDING, SL_CMD_YELLOW},
	    {SL_ARCANE_PHASE_SUSPENDED, SL_CMD_GREY},   {SL_ARCANE_PHASE_FAILED, SL_CMD_RED},
	};

	for (size_t i = 0; phase && i < SL_ARRAY_SIZE(map); i++)
		if (strcmp(map[i].phase, phase) == 0)
			return map[i].colour;
	return SL_CMD_PLAIN;
}

/* The first error of a source, "file:line: reason", else why the source
 * could not be read, else why prune was blocked. */
static const char *source_message(const cJSON *src, char out[static 512])
{
	const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(src, "errors"), 0);

	if (e) {
		snprintf(out, 512, "%s:%d: %s", or_none(str(e, "file")), (int)num(e, "line"),
		         or_none(str(e, "reason")));
		return out;
	}
	if (str(src, "sourceError")) {
		snprintf(out, 512, "source: %s", str(src, "sourceError"));
		return out;
	}
	return str(src, "pruneBlocked") ? str(src, "pruneBlocked") : "";
}

static void source_row(const cJSON *src, int64_t now, bool wide, struct row *r)
{
	int64_t t0, t1;
	size_t i = 0;

	memset(r->colour, 0, sizeof(r->colour));
	r->cell[i++] = str(src, "namespace");
	r->cell[i++] = str(src, "name");
	r->cell[i++] = wide ? or_none(str(src, "revision")) : short_revision(str(src, "revision"), r->buf[0]);
	r->cell[i++] = age_of(str(src, "end"), now, r->buf[1]);
	r->colour[i] = result_colour(str(src, "result"));
	r->cell[i++] = or_none(str(src, "result"));
	snprintf(r->buf[2], sizeof(r->buf[2]), "%.0f", num(src, "applied"));
	r->cell[i++] = r->buf[2];
	snprintf(r->buf[3], sizeof(r->buf[3]), "%.0f", num(src, "pruned"));
	r->cell[i++] = r->buf[3];
	snprintf(r->buf[4], sizeof(r->buf[4]), "%.0f", num(src, "errorCount"));
	r->colour[i] = num(src, "errorCount") > 0 ? SL_CMD_RED : SL_CMD_PLAIN;
	r->cell[i++] = r->buf[4];
	snprintf(r->buf[5], sizeof(r->buf[5]), "%.0f", num(src, "unchanged"));
	r->cell[i++] = r->buf[5];
	snprintf(r->buf[6], sizeof(r->buf[6]), "%.0f", num(src, "objects"));
	r->cell[i++] = r->buf[6];
	if (str(src, "start") && str(src, "end") && sl_time_parse_rfc3339(str(src, "start"), &t0) == 0 &&
	    sl_time_parse_rfc3339(str(src, "end"), &t1) == 0)
		sl_cmd__age(t1 - t0, r->buf[7]);
	else
		snprintf(r->buf[7], sizeof(r->buf[7]), NONE);
	r->cell[i++] = r->buf[7];
	r->cell[i++] = source_message(src, r->buf[8]);
}

static void stream_row(const cJSON *s, int64_t now, struct row *r)
{
	const cJSON *job = sl_manifest_obj(s, "job"), *bfr = sl_manifest_obj(s, "backfillRequest");
	const cJSON *ready = sl_manifest_obj(s, "ready");
	size_t i = 0;

	memset(r->colour, 0, sizeof(r->colour));
	r->cell[i++] = str(s, "namespace");
	r->cell[i++] = str(s, "kind");
	r->cell[i++] = str(s, "name");
	r->cell[i++] = or_none(str(s, "streamClass"));
	r->colour[i] = phase_colour(str(s, "phase"));
	r->cell[i++] = or_none(str(s, "phase"));
	r->cell[i++] = or_none(str(ready, "status"));
	if (job)
		snprintf(r->buf[0], sizeof(r->buf[0]), "%s/%s",
		         sl_streq(str(job, "kind"), "CronJob") ? "cronjob" : "job",
		         or_none(str(job, "name")));
	r->cell[i++] = job ? r->buf[0] : NONE;
	r->cell[i++] = job ? or_none(str(job, "state")) : NONE;
	r->cell[i++] = bfr ? or_none(str(bfr, "name")) : NONE;
	snprintf(r->buf[1], sizeof(r->buf[1]), "%.0f", num(s, "pendingBackfills"));
	r->cell[i++] = r->buf[1];
	r->cell[i++] = age_of(str(s, "creationTimestamp"), now, r->buf[2]);
	r->cell[i++] = ready ? str(ready, "message") : NULL;
}

static int print_table(const cJSON *rows, bool sources, const struct sl_cmd__status_view *v, int64_t now,
                       struct sl_buf *out)
{
	const struct col *cols = sources ? source_cols : stream_cols;
	size_t n = sources ? SOURCE_COLS : STREAM_COLS;
	struct sl_cmd__table t = {0};
	const cJSON *o;
	struct row *r = malloc(sizeof(*r));
	int rc = r ? add_row(&t, cols, n, NULL, v) : SL_ENOMEM;

	cJSON_ArrayForEach(o, rows)
	{
		if (rc < 0)
			break;
		if (sources)
			source_row(o, now, v->wide, r);
		else
			stream_row(o, now, r);
		rc = add_row(&t, cols, n, r, v);
	}
	if (rc == 0)
		rc = sl_cmd__table_write(&t, v->headers, v->colour, out);
	sl_cmd__table_free(&t);
	free(r);
	return rc;
}

int sl_cmd__status_print(const cJSON *model, const struct sl_cmd__status_view *v, int64_t now,
                         struct sl_buf *out)
{
	const cJSON *sources = cJSON_GetObjectItemCaseSensitive(model, "sources");
	const cJSON *streams = cJSON_GetObjectItemCaseSensitive(model, "streams");
	int r = 0;

	if (cJSON_GetArraySize(sources) > 0)
		r = print_table(sources, true, v, now, out);
	if (r == 0 && cJSON_GetArraySize(sources) > 0 && cJSON_GetArraySize(streams) > 0)
		r = sl_buf_puts(out, "\n");
	if (r == 0 && cJSON_GetArraySize(streams) > 0)
		r = print_table(streams, false, v, now, out);
	return r;
}
