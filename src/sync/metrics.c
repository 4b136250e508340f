/* The sync counters in Prometheus text format, for the /metrics endpoint. */
#include "sluice/sync.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Label values are escaped as the text format asks (\\, \", \n). */
static int put_label_value(struct sl_buf *b, const char *v)
{
	int r = 0;
	for (; r == 0 && *v; v++) {
		if (*v == '\\' || *v == '"')
			r = sl_buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			r = sl_buf_puts(b, "\\n");
		else
			r = sl_buf_append(b, v, 1);
	}
	return r;
}

static int family(struct sl_buf *b, const char *name, const char *type, const char *help)
{
	return sl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int sample(struct sl_buf *b, const char *name, const char *id, const char *extra_label,
                  const char *extra_value, const char *value)
{
	int r = sl_buf_printf(b, "%s{source=\"", name);
	if (!r)
		r = put_label_value(b, id);
	if (!r && extra_label) {
		r = sl_buf_printf(b, "\",%s=\"", extra_label);
		if (!r)
			r = put_label_value(b, extra_value);
	}
	return r ? r : sl_buf_printf(b, "\"} %s\n", value);
}

static int counter(struct sl_buf *b, const char *name, const char *help, const char *id, uint64_t v)
{
	char num[32];
	snprintf(num, sizeof(num), "%" PRIu64, v);
	int r = family(b, name, "counter", help);
	return r ? r : sample(b, name, id, NULL, NULL, num);
}

int sl_sync_metrics_format(const struct sl_sync_metrics *m, const char *source_id, struct sl_buf *out)
{
	char num[64];
	int r;
	const char *id = source_id ? source_id : "";

	r = family(out, "sluice_sync_total", "counter", "Syncs by result.");
	snprintf(num, sizeof(num), "%" PRIu64, m->syncs_ok);
	if (!r)
		r = sample(out, "sluice_sync_total", id, "result", "ok", num);
	snprintf(num, sizeof(num), "%" PRIu64, m->syncs_failed);
	if (!r)
		r = sample(out, "sluice_sync_total", id, "result", "failed", num);
	snprintf(num, sizeof(num), "%" PRIu64, m->syncs_source_error);
	if (!r)
		r = sample(out, "sluice_sync_total", id, "result", "source-error", num);
	if (!r)
		r = counter(out, "sluice_sync_objects_applied_total", "Objects applied (changed or drifted).",
		            id, m->objects_applied);
	if (!r)
		r = counter(out, "sluice_sync_objects_unchanged_total",
		            "Objects skipped: live already as desired.", id, m->objects_unchanged);
	if (!r)
		r = counter(out, "sluice_sync_objects_failed_total", "Objects the server refused.", id,
		            m->objects_failed);
	if (!r)
		r = counter(out, "sluice_sync_objects_pruned_total",
		            "Objects deleted because they left the source.", id, m->objects_pruned);
	if (!r)
		r = counter(out, "sluice_sync_writes_total",
		            "Writes sent: applies, deletes and inventory writes.", id, m->writes);
	if (!r)
		r = family(out, "sluice_sync_duration_seconds", "summary", "Duration of syncs.");
	snprintf(num, sizeof(num), "%.3f", (double)m->duration_ms_sum / 1000.0);
	if (!r)
		r = sample(out, "sluice_sync_duration_seconds_sum", id, NULL, NULL, num);
	snprintf(num, sizeof(num), "%" PRIu64, m->syncs_ok + m->syncs_failed + m->syncs_source_error);
	if (!r)
		r = sample(out, "sluice_sync_duration_seconds_count", id, NULL, NULL, num);
	if (!r)
		r = family(out, "sluice_sync_last_duration_seconds", "gauge", "Duration of the last sync.");
	snprintf(num, sizeof(num), "%.3f", (double)m->last_duration_ms / 1000.0);
	if (!r)
		r = sample(out, "sluice_sync_last_duration_seconds", id, NULL, NULL, num);
	if (!r)
		r = family(out, "sluice_sync_last_timestamp_seconds", "gauge",
		           "End of the last sync (Unix time).");
	snprintf(num, sizeof(num), "%" PRId64, m->last_sync_end);
	if (!r)
		r = sample(out, "sluice_sync_last_timestamp_seconds", id, NULL, NULL, num);
	if (!r)
		r = family(out, "sluice_sync_last_applied_revision_info", "gauge",
		           "Revision of the last sync that applied every document.");
	if (!r && m->last_applied_revision[0])
		r = sample(out, "sluice_sync_last_applied_revision_info", id, "revision",
		           m->last_applied_revision, "1");
	return r;
}
