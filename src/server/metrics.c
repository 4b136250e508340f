/* A small Prometheus registry: counter, gauge and histogram families with
 * labels, filled directly or by collectors that copy counters other modules
 * keep, rendered in the text exposition format 0.0.4. */
#include "sluice/server.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct child {
	char **values;    /* one per label */
	double value;     /* counter, gauge */
	uint64_t *counts; /* histogram: per bucket (not cumulative), +Inf last */
	double sum;
	uint64_t count;
};

struct sl_server_metric {
	enum sl_server_metric_type type;
	char *name;
	char *help;
	char *labels[SL_SERVER_METRIC_MAX_LABELS];
	size_t n_labels;
	double buckets[SL_SERVER_METRIC_MAX_BUCKETS];
	size_t n_buckets;
	struct child *children; /* sorted by label values */
	size_t n_children, cap_children;
};

struct collector {
	sl_server_metrics_collect_fn fn;
	void *payload;
};

struct sl_server_metrics {
	struct sl_server_metric **families;
	size_t n_families, cap_families;
	struct collector *collectors;
	size_t n_collectors, cap_collectors;
};

static const double default_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

static bool valid_name(const char *s, bool label)
{
	if (!s || !*s)
		return false;
	if (label && s[0] == '_' && s[1] == '_')
		return false; /* reserved for Prometheus itself */
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
		if (!alpha && !(p != s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static void child_clear(struct child *c, size_t n_labels)
{
	for (size_t i = 0; c->values && i < n_labels; i++)
		free(c->values[i]);
	free(c->values);
	free(c->counts);
}

static void family_free(struct sl_server_metric *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_children; i++)
		child_clear(&f->children[i], f->n_labels);
	free(f->children);
	for (size_t i = 0; i < f->n_labels; i++)
		free(f->labels[i]);
	free(f->name);
	free(f->help);
	free(f);
}

int sl_server_metrics_new(struct sl_server_metrics **ret)
{
	struct sl_server_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return SL_ENOMEM;
	*ret = m;
	return 0;
}

void sl_server_metrics_free(struct sl_server_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_families; i++)
		family_free(m->families[i]);
	free(m->families);
	free(m->collectors);
	free(m);
}

/* Compares a child's label values with values; the children are kept sorted. */
static int child_cmp(const struct sl_server_metric *f, const struct child *c, const char *const *values)
{
	for (size_t i = 0; i < f->n_labels; i++) {
		int r = strcmp(c->values[i], values[i]);
		if (r)
			return r;
	}
	return 0;
}

/* Finds the child with these values; *pos gets its index or where it goes. */
static struct child *child_find(const struct sl_server_metric *f, const char *const *values, size_t *pos)
{
	size_t lo = 0, hi = f->n_children;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = child_cmp(f, &f->children[mid], values);
		if (r == 0) {
			if (pos)
				*pos = mid;
			return &f->children[mid];
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos)
		*pos = lo;
	return NULL;
}

static int child_get(struct sl_server_metric *f, const char *const *values, struct child **ret)
{
	static const char *const none[1] = {NULL};
	size_t pos;
	struct child c = {0};
	int r;

	if (f->n_labels == 0)
		values = none;
	else if (!values)
		return SL_EINVALID;
	for (size_t i = 0; i < f->n_labels; i++)
		if (!values[i])
			return SL_EINVALID;
	*ret = child_find(f, values, &pos);
	if (*ret)
		return 0;
	if (f->n_children >= SL_SERVER_METRIC_MAX_CHILDREN)
		return SL_ETOOLARGE;
	r = SL_GROW(f->children, f->cap_children, f->n_children + 1, 8);
	if (r < 0)
		return r;
	if (f->n_labels) {
		c.values = calloc(f->n_labels, sizeof(char *));
		if (!c.values)
			return SL_ENOMEM;
		for (size_t i = 0; i < f->n_labels; i++) {
			c.values[i] = sl_strdup(values[i]);
			if (!c.values[i]) {
				child_clear(&c, f->n_labels);
				return SL_ENOMEM;
			}
		}
	}
	if (f->type == SL_SERVER_METRIC_HISTOGRAM) {
		c.counts = calloc(f->n_buckets + 1, sizeof(uint64_t));
		if (!c.counts) {
			child_clear(&c, f->n_labels);
			return SL_ENOMEM;
		}
	}
	memmove(&f->children[pos + 1], &f->children[pos], (f->n_children - pos) * sizeof(*f->children));
	f->children[pos] = c;
	f->n_children++;
	*ret = &f->children[pos];
	return 0;
}

int sl_server_metrics_register(struct sl_server_metrics *m, enum sl_server_metric_type type, const char *name,
                               const char *help, const char *labels, const double *buckets, size_t n_buckets,
                               struct sl_server_metric **ret)
{
	struct sl_server_metric *f = NULL;
	struct child *c;
	int r;

	if (!valid_name(name, false) || type > SL_SERVER_METRIC_HISTOGRAM)
		return SL_EINVALID;
	for (size_t i = 0; i < m->n_families; i++)
		if (strcmp(m->families[i]->name, name) == 0)
			return SL_EEXIST;
	if (type == SL_SERVER_METRIC_HISTOGRAM && !buckets) {
		buckets = default_buckets;
		n_buckets = SL_ARRAY_SIZE(default_buckets);
	}
	if (type != SL_SERVER_METRIC_HISTOGRAM)
		n_buckets = 0;
	if (n_buckets > SL_SERVER_METRIC_MAX_BUCKETS)
		return SL_ETOOLARGE;
	for (size_t i = 0; i < n_buckets; i++)
		if (!isfinite(buckets[i]) || (i && buckets[i] <= buckets[i - 1]))
			return SL_EINVALID;

	f = calloc(1, sizeof(*f));
	if (!f)
		return SL_ENOMEM;
	f->type = type;
	f->name = sl_strdup(name);
	f->help = sl_strdup(help ? help : "");
	if (!f->name || !f->help) {
		r = SL_ENOMEM;
		goto fail;
	}
	if (labels && *labels) {
		const char *p = labels;
		while (*p) {
			size_t n = strcspn(p, ",");
			if (f->n_labels == SL_SERVER_METRIC_MAX_LABELS) {
				r = SL_ETOOLARGE;
				goto fail;
			}
			f->labels[f->n_labels] = sl_strndup(p, n);
			if (!f->labels[f->n_labels]) {
				r = SL_ENOMEM;
				goto fail;
			}
			f->n_labels++;
			if (!valid_name(f->labels[f->n_labels - 1], true) ||
			    (type == SL_SERVER_METRIC_HISTOGRAM &&
			     strcmp(f->labels[f->n_labels - 1], "le") == 0)) {
				r = SL_EINVALID;
				goto fail;
			}
			p += n;
			if (*p == ',')
				p++;
		}
	}
	if (n_buckets)
		memcpy(f->buckets, buckets, n_buckets * sizeof(double));
	f->n_buckets = n_buckets;
	/* An unlabelled family has its one child from the start, so it shows 0. */
	if (f->n_labels == 0) {
		r = child_get(f, NULL, &c);
		if (r < 0)
			goto fail;
	}
	r = SL_GROW(m->families, m->cap_families, m->n_families + 1, 8);
	if (r < 0)
		goto fail;
	m->families[m->n_families++] = f;
	if (ret)
		*ret = f;
	return 0;
fail:
	family_free(f);
	return r;
}

int sl_server_metric_add(struct sl_server_metric *f, const char *const *values, double v)
{
	struct child *c;
	int r;

	if (!f || f->type == SL_SERVER_METRIC_HISTOGRAM || isnan(v) ||
	    (f->type == SL_SERVER_METRIC_COUNTER && v < 0))
		return SL_EINVALID;
	r = child_get(f, values, &c);
	if (r < 0)
		return r;
	c->value += v;
	return 0;
}

int sl_server_metric_set(struct sl_server_metric *f, const char *const *values, double v)
{
	struct child *c;
	int r;

	if (!f || f->type == SL_SERVER_METRIC_HISTOGRAM || isnan(v))
		return SL_EINVALID;
	r = child_get(f, values, &c);
	if (r < 0)
		return r;
	c->value = v;
	return 0;
}

int sl_server_metric_observe(struct sl_server_metric *f, const char *const *values, double v)
{
	struct child *c;
	size_t i;
	int r;

	if (!f || f->type != SL_SERVER_METRIC_HISTOGRAM || isnan(v))
		return SL_EINVALID;
	r = child_get(f, values, &c);
	if (r < 0)
		return r;
	for (i = 0; i < f->n_buckets && v > f->buckets[i]; i++)
		;
	c->counts[i]++;
	c->sum += v;
	c->count++;
	return 0;
}

int sl_server_metric_set_histogram(struct sl_server_metric *f, const char *const *values,
                                   const uint64_t *counts, size_t n, double sum)
{
	struct child *c;
	uint64_t total = 0;
	int r;

	if (!f || f->type != SL_SERVER_METRIC_HISTOGRAM || !counts || n != f->n_buckets + 1 || isnan(sum))
		return SL_EINVALID;
	r = child_get(f, values, &c);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		total += counts[i];
	memcpy(c->counts, counts, n * sizeof(*counts));
	c->sum = sum;
	c->count = total;
	return 0;
}

void sl_server_metric_clear(struct sl_server_metric *f)
{
	if (!f || f->type != SL_SERVER_METRIC_GAUGE || f->n_labels == 0)
		return;
	for (size_t i = 0; i < f->n_children; i++)
		child_clear(&f->children[i], f->n_labels);
	f->n_children = 0;
}

double sl_server_metric_get(const struct sl_server_metric *f, const char *const *values)
{
	static const char *const none[1] = {NULL};
	const struct child *c;

	if (!f || f->type == SL_SERVER_METRIC_HISTOGRAM)
		return NAN;
	if (f->n_labels == 0)
		values = none;
	else if (!values)
		return NAN;
	c = child_find(f, values, NULL);
	return c ? c->value : NAN;
}

int sl_server_metrics_add_collector(struct sl_server_metrics *m, sl_server_metrics_collect_fn fn,
                                    void *payload)
{
	int r = SL_GROW(m->collectors, m->cap_collectors, m->n_collectors + 1, 8);
	if (r < 0)
		return r;
	m->collectors[m->n_collectors++] = (struct collector){fn, payload};
	return 0;
}

/* The shortest decimal that reads back as v, as Prometheus clients print. */
static int put_value(struct sl_buf *out, double v)
{
	char tmp[40];

	if (isnan(v))
		return sl_buf_puts(out, "NaN");
	if (isinf(v))
		return sl_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return sl_buf_printf(out, "%.0f", v);
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	return sl_buf_puts(out, tmp);
}

/* Label values escape backslash, double quote and newline; HELP text only
 * backslash and newline. */
static int put_escaped(struct sl_buf *out, const char *s, bool quote)
{
	int r = 0;
	for (const char *p = s; *p && r == 0; p++) {
		if (*p == '\\')
			r = sl_buf_puts(out, "\\\\");
		else if (*p == '\n')
			r = sl_buf_puts(out, "\\n");
		else if (*p == '"' && quote)
			r = sl_buf_puts(out, "\\\"");
		else
			r = sl_buf_append(out, p, 1);
	}
	return r;
}

/* name{l1="v1",...,extra="x"} — extra (the "le" label) may be NULL. */
static int put_series(struct sl_buf *out, const struct sl_server_metric *f, const struct child *c,
                      const char *suffix, const char *extra_name, const char *extra_value)
{
	int r = sl_buf_printf(out, "%s%s", f->name, suffix);
	bool any = f->n_labels > 0 || extra_name;

	if (r == 0 && any)
		r = sl_buf_puts(out, "{");
	for (size_t i = 0; r == 0 && i < f->n_labels; i++) {
		r = sl_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		if (r == 0)
			r = put_escaped(out, c->values[i], true);
		if (r == 0)
			r = sl_buf_puts(out, "\"");
	}
	if (r == 0 && extra_name)
		r = sl_buf_printf(out, "%s%s=\"%s\"", f->n_labels ? "," : "", extra_name, extra_value);
	if (r == 0 && any)
		r = sl_buf_puts(out, "}");
	return r ? r : sl_buf_puts(out, " ");
}

static int render_family(const struct sl_server_metric *f, struct sl_buf *out)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	int r;

	r = sl_buf_printf(out, "# HELP %s ", f->name);
	if (r == 0)
		r = put_escaped(out, f->help, false);
	if (r == 0)
		r = sl_buf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
	for (size_t i = 0; r == 0 && i < f->n_children; i++) {
		const struct child *c = &f->children[i];
		if (f->type != SL_SERVER_METRIC_HISTOGRAM) {
			r = put_series(out, f, c, "", NULL, NULL);
			if (r == 0)
				r = put_value(out, c->value);
			if (r == 0)
				r = sl_buf_puts(out, "\n");
			continue;
		}
		uint64_t cum = 0;
		for (size_t b = 0; r == 0 && b <= f->n_buckets; b++) {
			char le[40] = "+Inf";
			struct sl_buf tmp;
			cum += c->counts[b];
			if (b < f->n_buckets) {
				sl_buf_init(&tmp, sizeof(le));
				r = put_value(&tmp, f->buckets[b]);
				if (r == 0)
					snprintf(le, sizeof(le), "%s", tmp.data);
				sl_buf_free(&tmp);
			}
			if (r == 0)
				r = put_series(out, f, c, "_bucket", "le", le);
			if (r == 0)
				r = sl_buf_printf(out, "%llu\n", (unsigned long long)cum);
		}
		if (r == 0)
			r = put_series(out, f, c, "_sum", NULL, NULL);
		if (r == 0)
			r = put_value(out, c->sum);
		if (r == 0)
			r = sl_buf_puts(out, "\n");
		if (r == 0)
			r = put_series(out, f, c, "_count", NULL, NULL);
		if (r == 0)
			r = sl_buf_printf(out, "%llu\n", (unsigned long long)c->count);
	}
	return r;
}

int sl_server_metrics_render(struct sl_server_metrics *m, struct sl_buf *out)
{
	int r = 0;

	for (size_t i = 0; i < m->n_collectors; i++)
		m->collectors[i].fn(m, m->collectors[i].payload);
	for (size_t i = 0; r == 0 && i < m->n_families; i++)
		r = render_family(m->families[i], out);
	return r;
}
