/* Problems: their text (file:line:column: field: message), and problems on
 * a document positioned by field path, as validation reports them. */
#include "problem.h"
#include "set.h"

#include <stdio.h>
#include <string.h>

int sl_manifest__doc_problem(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d,
                             enum sl_manifest_severity sev, const char *path, const char *fmt, ...)
{
	char msg[1024], anc[4096];
	unsigned line = d->line, col = d->column;
	va_list ap;
	int r;

	for (size_t i = rp->doc_first_problem; i < sl_manifest_set_problem_count(rp->s); i++) {
		const struct sl_manifest_problem *p = sl_manifest_set_problem(rp->s, i);
		if (p->doc == (int)d->index && strcmp(p->file, d->file) == 0 && strcmp(p->field, path) == 0)
			return 0;
	}
	/* The closest ancestor that exists gives the position. */
	snprintf(anc, sizeof(anc), "%s", path);
	for (;;) {
		char *cut;
		if (sl_manifest_doc_position(d, anc, &line, &col) == 0)
			break;
		cut = strrchr(anc, '.');
		{
			char *br = strrchr(anc, '[');
			if (br && (!cut || br > cut))
				cut = br;
		}
		if (!cut) {
			if (*anc == '\0' || sl_manifest_doc_position(d, "", &line, &col) == 0)
				break;
			anc[0] = '\0';
			continue;
		}
		*cut = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r = sl_manifest__set_problem(rp->s, sev, SL_EINVALID, d->file, (int)d->index, line, col, path, "%s",
	                             msg);
	if (r == 0 && sev == SL_MANIFEST_ERROR)
		d->n_errors++;
	return r;
}

int sl_manifest_problem_format(const struct sl_manifest_problem *p, char *out, size_t n)
{
	struct sl_buf b;
	int r, len;

	sl_buf_init(&b, 64 * 1024);
	r = sl_buf_puts(&b, "");
	if (r == 0 && p->file && *p->file)
		r = sl_buf_printf(&b, "%s:", p->file);
	if (r == 0 && p->line)
		r = sl_buf_printf(&b, "%u:%u:", p->line, p->column);
	if (r == 0 && b.len)
		r = sl_buf_puts(&b, " ");
	if (r == 0 && p->field && *p->field)
		r = sl_buf_printf(&b, "%s: ", p->field);
	if (r == 0 && p->severity == SL_MANIFEST_WARNING)
		r = sl_buf_puts(&b, "warning: ");
	if (r == 0)
		r = sl_buf_puts(&b, p->message ? p->message : "");
	if (r < 0) {
		sl_buf_free(&b);
		if (n)
			out[0] = '\0';
		return 0;
	}
	len = (int)b.len;
	if (n) {
		size_t c = SL_MIN(b.len, n - 1);
		memcpy(out, b.data, c);
		out[c] = '\0';
	}
	sl_buf_free(&b);
	return len;
}

void sl_manifest_problem_print(const struct sl_manifest_problem *p, FILE *f)
{
	char line[2048];
	int n = sl_manifest_problem_format(p, line, sizeof(line));
	if ((size_t)n >= sizeof(line)) {
		char *big = malloc((size_t)n + 1);
		if (big) {
			sl_manifest_problem_format(p, big, (size_t)n + 1);
			fprintf(f, "%s\n", big);
			free(big);
			return;
		}
	}
	fprintf(f, "%s\n", line);
}
