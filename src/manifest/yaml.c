/* YAML to cJSON with libyaml's event API: an intermediate node tree keeps
 * anchors, tags and positions so that aliases are expanded under a bound,
 * merge keys and duplicate keys are handled, and scalars resolve as kubectl
 * (sigs.k8s.io/yaml on go-yaml v2) resolves them. */
#include "json-ints.h"
#include "positions.h"
#include "yaml-load.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define TAG_PREFIX   "tag:yaml.org,2002:"
#define PATH_MAX_LEN 4096

enum ntype { N_SCALAR, N_SEQ, N_MAP, N_ALIAS };

struct node {
	enum ntype t;
	unsigned line, col;
	char *tag; /* explicit tag or NULL */
	char *val; /* scalar value (NUL-terminated, may hold NULs: len) */
	size_t len;
	bool plain;         /* plain style and no explicit tag */
	struct node **kids; /* map: key, value, key, value... */
	size_t n, cap;
	struct node *target; /* alias */
	bool busy;           /* being converted (cycle guard) */
};

struct anchor {
	char *name;
	struct node *node;
};

struct doc_builder {
	struct node **all; /* every node, for freeing */
	size_t n_all, cap_all;
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	struct node *stack[256];
	size_t depth;
	struct node *root;
};

/* ---- building the node tree --------------------------------------------- */

static void builder_reset(struct doc_builder *b)
{
	for (size_t i = 0; i < b->n_all; i++) {
		struct node *n = b->all[i];
		free(n->tag);
		free(n->val);
		free(n->kids);
		free(n);
	}
	for (size_t i = 0; i < b->n_anchors; i++)
		free(b->anchors[i].name);
	free(b->all);
	free(b->anchors);
	*b = (struct doc_builder){0};
}

static struct node *node_new(struct doc_builder *b, enum ntype t, const yaml_mark_t *m)
{
	struct node *n;
	if (SL_GROW(b->all, b->cap_all, b->n_all + 1, 64) < 0)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->t = t;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	b->all[b->n_all++] = n;
	return n;
}

static int node_add_kid(struct node *p, struct node *k)
{
	if (SL_GROW(p->kids, p->cap, p->n + 1, 8) < 0)
		return SL_ENOMEM;
	p->kids[p->n++] = k;
	return 0;
}

static int anchor_set(struct doc_builder *b, const char *name, struct node *n)
{
	/* A redefined anchor replaces the old one for later aliases. */
	for (size_t i = 0; i < b->n_anchors; i++)
		if (strcmp(b->anchors[i].name, name) == 0) {
			b->anchors[i].node = n;
			return 0;
		}
	if (SL_GROW(b->anchors, b->cap_anchors, b->n_anchors + 1, 8) < 0)
		return SL_ENOMEM;
	b->anchors[b->n_anchors].name = sl_strdup(name);
	if (!b->anchors[b->n_anchors].name)
		return SL_ENOMEM;
	b->anchors[b->n_anchors++].node = n;
	return 0;
}

static struct node *anchor_get(struct doc_builder *b, const char *name)
{
	for (size_t i = 0; i < b->n_anchors; i++)
		if (strcmp(b->anchors[i].name, name) == 0)
			return b->anchors[i].node;
	return NULL;
}

/* ---- scalar resolution (go-yaml v2 rules) -------------------------------- */

enum rtype { R_NULL, R_BOOL, R_INT, R_FLOAT, R_STR };

struct resolved {
	enum rtype t;
	bool b;
	double d;
	char text[64]; /* canonical text for ints and floats */
};

static bool in_list(const char *s, const char *const *l)
{
	for (; *l; l++)
		if (strcmp(s, *l) == 0)
			return true;
	return false;
}

static const char *const yes_words[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                        "True", "TRUE", "on",  "On",  "ON",  NULL};
static const char *const no_words[] = {"n",     "N",     "no",  "No",  "NO",  "false",
                                       "False", "FALSE", "off", "Off", "OFF", NULL};
static const char *const null_words[] = {"~", "null", "Null", "NULL", NULL};
static const char *const nan_words[] = {".nan", ".NaN", ".NAN", NULL};
static const char *const inf_words[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
static const char *const ninf_words[] = {"-.inf", "-.Inf", "-.INF", NULL};

/* Go's strconv.ParseInt/ParseUint with base 0 (sign, 0x, 0o, 0b, leading 0
 * octal); underscores were removed before. */
static bool parse_go_int(const char *s, bool *neg, uint64_t *mag)
{
	unsigned base = 10;
	uint64_t v = 0;

	*neg = false;
	if (*s == '+' || *s == '-') {
		*neg = *s == '-';
		s++;
	}
	if (!*s)
		return false;
	if (s[0] == '0' && s[1]) {
		if (s[1] == 'x' || s[1] == 'X')
			base = 16, s += 2;
		else if (s[1] == 'o' || s[1] == 'O')
			base = 8, s += 2;
		else if (s[1] == 'b' || s[1] == 'B')
			base = 2, s += 2;
		else
			base = 8, s += 1;
		if (!*s)
			return false;
	}
	for (; *s; s++) {
		unsigned dgt;
		if (*s >= '0' && *s <= '9')
			dgt = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			dgt = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			dgt = (unsigned)(*s - 'A' + 10);
		else
			return false;
		if (dgt >= base)
			return false;
		if (v > (UINT64_MAX - dgt) / base)
			return false;
		v = v * base + dgt;
	}
	*mag = v;
	return true;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool yaml_style_float(const char *s)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	} else {
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

static void format_float(double v, char out[64])
{
	/* Shortest text that reads back as v, like Go's 'g' with -1. */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, 64, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* Resolves a plain untagged scalar. Returns false for values JSON cannot
 * hold (NaN, infinities), with *why set. */
static bool resolve_plain(const char *in, struct resolved *r, const char **why)
{
	char plain[128];
	size_t j = 0;
	bool neg;
	uint64_t mag;
	char c = in[0];

	memset(r, 0, sizeof(*r));
	r->t = R_STR;
	if (!*in || in_list(in, null_words)) {
		r->t = R_NULL;
		return true;
	}
	if (!(c == '+' || c == '-' || (c >= '0' && c <= '9') || c == '.' || strchr("yYnNtTfFoO~", c)))
		return true;
	if (in_list(in, yes_words) || in_list(in, no_words)) {
		r->t = R_BOOL;
		r->b = in_list(in, yes_words);
		return true;
	}
	if (in_list(in, nan_words) || in_list(in, inf_words) || in_list(in, ninf_words)) {
		*why = "NaN and infinity cannot be represented in JSON";
		return false;
	}
	if (c == '.') {
		char *end;
		double d;
		if (strlen(in) >= sizeof(plain) || !yaml_style_float(in))
			return true;
		errno = 0;
		d = strtod(in, &end);
		if (errno == 0 && *end == '\0' && isfinite(d)) {
			r->t = R_FLOAT;
			r->d = d;
			format_float(d, r->text);
		}
		return true;
	}
	if (!(c == '+' || c == '-' || (c >= '0' && c <= '9')))
		return true;
	for (const char *p = in; *p; p++) {
		if (*p == '_')
			continue;
		if (j + 1 >= sizeof(plain))
			return true; /* too long for any number */
		plain[j++] = *p;
	}
	plain[j] = '\0';
	if (parse_go_int(plain, &neg, &mag)) {
		if (!neg || mag <= (uint64_t)INT64_MAX + 1) {
			r->t = R_INT;
			/* "-0" is int 0 */
			r->d = neg && mag ? -(double)mag : (double)mag;
			if (neg && mag)
				snprintf(r->text, sizeof(r->text), "-%" PRIu64, mag);
			else
				snprintf(r->text, sizeof(r->text), "%" PRIu64, mag);
			return true;
		}
	}
	if (yaml_style_float(plain)) {
		char *end;
		double d;
		errno = 0;
		d = strtod(plain, &end);
		if (errno == 0 && *end == '\0' && isfinite(d)) {
			r->t = R_FLOAT;
			r->d = d;
			format_float(d, r->text);
		}
	}
	return true;
}

/* Resolves a scalar node: plain untagged by the rules above, explicit core
 * tags checked, everything else (quoted, custom tags) a string. */
static bool resolve_node(const struct node *n, struct resolved *r, const char **why)
{
	const char *t = n->tag;

	memset(r, 0, sizeof(*r));
	r->t = R_STR;
	if (n->plain)
		return resolve_plain(n->val, r, why);
	if (!t || !sl_str_has_prefix(t, TAG_PREFIX))
		return true;
	t += strlen(TAG_PREFIX);
	/* kubectl keeps timestamps as the text written */
	if (strcmp(t, "str") == 0 || strcmp(t, "binary") == 0 || strcmp(t, "timestamp") == 0)
		return true;
	if (strcmp(t, "null") == 0 || strcmp(t, "bool") == 0 || strcmp(t, "int") == 0 ||
	    strcmp(t, "float") == 0) {
		if (!resolve_plain(n->val, r, why))
			return false;
		if (strcmp(t, "float") == 0 && r->t == R_INT) {
			r->t = R_FLOAT;
			return true;
		}
		if ((strcmp(t, "null") == 0 && r->t != R_NULL) ||
		    (strcmp(t, "bool") == 0 && r->t != R_BOOL) || (strcmp(t, "int") == 0 && r->t != R_INT) ||
		    (strcmp(t, "float") == 0 && r->t != R_FLOAT)) {
			*why = "the value does not match its explicit tag";
			return false;
		}
	}
	return true;
}

/* ---- conversion to cJSON ------------------------------------------------ */

struct conv {
	const struct sl_manifest_limits *lim;
	struct sl_manifest_positions *pos; /* NULL: not wanted */
	struct sl_buf path;
	size_t nodes, alias_nodes;
	unsigned alias_depth; /* > 0 while inside an alias expansion */
	/* first problem */
	int code;
	unsigned line, col;
	char msg[256];
	char *field;
};

static void conv_fail(struct conv *c, int code, const struct node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conv_fail(struct conv *c, int code, const struct node *n, const char *fmt, ...)
{
	va_list ap;
	if (c->code)
		return;
	c->code = code;
	c->line = n->line;
	c->col = n->col;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	free(c->field);
	c->field = sl_strdup(c->path.data ? c->path.data : "");
}

static const struct node *deref(const struct node *n)
{
	while (n && n->t == N_ALIAS)
		n = n->target;
	return n;
}

static cJSON *convert(struct conv *c, const struct node *n, unsigned depth);

static bool is_merge_key(const struct node *k)
{
	return k->t == N_SCALAR && strcmp(k->val, "<<") == 0 &&
	       (k->plain || (k->tag && strcmp(k->tag, TAG_PREFIX "merge") == 0));
}

/* A float key as sigs.k8s.io/yaml writes it: Go's FormatFloat(f, 'g', -1,
 * 32), i.e. the shortest float32 digits, exponent form when the exponent is
 * below -4 or at least 6 ("1e3" -> "1000", "1e6" -> "1e+06"). */
static char *float_key(double v)
{
	char digits[64];
	int p, exp;

	for (p = 1; p < 9; p++) {
		snprintf(digits, sizeof(digits), "%.*e", p - 1, v);
		if ((float)strtod(digits, NULL) == (float)v)
			break;
	}
	snprintf(digits, sizeof(digits), "%.*e", p - 1, v);
	exp = atoi(strchr(digits, 'e') + 1);
	if (exp < -4 || exp >= 6)
		return sl_strdup(digits);
	return sl_asprintf("%.*f", SL_MAX(p - 1 - exp, 0), v);
}

/* The JSON key of a scalar key node, resolved like a value. */
static char *key_text(struct conv *c, const struct node *k)
{
	struct resolved r;
	const char *why = NULL;
	if (!resolve_node(k, &r, &why)) {
		conv_fail(c, SL_EINVALID, k, "mapping key: %s", why);
		return NULL;
	}
	switch (r.t) {
	case R_NULL:
		/* kubectl refuses a null key too */
		conv_fail(c, SL_EINVALID, k, "a mapping key must not be null");
		return NULL;
	case R_BOOL:
		return sl_strdup(r.b ? "true" : "false");
	case R_INT:
		return sl_strdup(r.text);
	case R_FLOAT:
		return float_key(r.d);
	default:
		if (memchr(k->val, '\0', k->len)) {
			conv_fail(c, SL_EINVALID, k, "mapping key holds a NUL character");
			return NULL;
		}
		return sl_strdup(k->val);
	}
}

struct entry {
	char *key;
	const struct node *knode, *vnode;
	size_t order;     /* position in the mapping, merges expanded */
	size_t out_order; /* where the key first appeared */
	bool explicit_key;
	bool keep;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int r = strcmp(x->key, y->key);
	if (r)
		return r;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int entry_order_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->out_order < y->out_order ? -1 : x->out_order > y->out_order;
}

struct entries {
	struct entry *v;
	size_t n, cap;
};

static int entries_add(struct conv *c, struct entries *e, const struct node *k, const struct node *v,
                       bool explicit_key)
{
	char *key;
	if (k->t != N_SCALAR) {
		conv_fail(c, SL_EINVALID, k, "a mapping key must be a scalar");
		return SL_EINVALID;
	}
	key = key_text(c, k);
	if (!key)
		return c->code ? c->code : SL_ENOMEM;
	if (SL_GROW(e->v, e->cap, e->n + 1, 8) < 0) {
		free(key);
		return SL_ENOMEM;
	}
	e->v[e->n] = (struct entry){key, k, v, e->n, e->n, explicit_key, false};
	e->n++;
	return 0;
}

/* Adds the members of the mapping m (merged in) as non-explicit entries. */
static int merge_from(struct conv *c, struct entries *e, const struct node *m, const struct node *at)
{
	m = deref(m);
	if (!m || m->t != N_MAP) {
		conv_fail(c, SL_EINVALID, at, "a merge key (<<) needs a mapping or a list of mappings");
		return SL_EINVALID;
	}
	for (size_t i = 0; i + 1 < m->n; i += 2) {
		int r;
		const struct node *k = deref(m->kids[i]);
		if (is_merge_key(k)) {
			conv_fail(c, SL_EINVALID, k, "nested merge keys are not supported");
			return SL_EINVALID;
		}
		r = entries_add(c, e, k, m->kids[i + 1], false);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The entries of mapping n as go-yaml v2 (kubectl) has them: in document
 * order with each merge key (<<) expanded in place. */
static int gather_entries(struct conv *c, const struct node *n, struct entries *e)
{
	int r = 0;

	for (size_t i = 0; i + 1 < n->n && r == 0; i += 2) {
		const struct node *k = deref(n->kids[i]), *v;
		if (!k) {
			conv_fail(c, SL_EINVALID, n->kids[i], "bad alias");
			r = SL_EINVALID;
		} else if (!is_merge_key(k)) {
			r = entries_add(c, e, k, n->kids[i + 1], true);
		} else if ((v = deref(n->kids[i + 1])) && v->t == N_SEQ) {
			for (size_t j = v->n; j > 0 && r == 0; j--)
				r = merge_from(c, e, v->kids[j - 1], k);
		} else {
			r = merge_from(c, e, v, k);
		}
	}
	return r;
}

/* Marks the entry that wins for each key: a later entry wins over an
 * earlier one, and within a merge list the first mapping wins (merge_from
 * added the list backwards). Two explicit entries with one key are an error
 * (kubectl would keep the last). Leaves e in document order. */
static int pick_winners(struct conv *c, struct entries *e, size_t base_len)
{
	if (e->n > 1) /* qsort takes no NULL array, even for 0 items */
		qsort(e->v, e->n, sizeof(*e->v), entry_cmp);
	for (size_t i = 0; i < e->n;) {
		size_t j = i, first_explicit = SIZE_MAX;
		while (j < e->n && strcmp(e->v[j].key, e->v[i].key) == 0) {
			if (e->v[j].explicit_key) {
				if (first_explicit != SIZE_MAX) {
					sl_manifest__path_cut(&c->path, base_len);
					sl_manifest__path_push_key(&c->path, e->v[j].key);
					conv_fail(c, SL_EINVALID, e->v[j].knode,
					          "duplicate key \"%s\" (first at line %u)", e->v[j].key,
					          e->v[first_explicit].knode->line);
					return SL_EINVALID;
				}
				first_explicit = j;
			}
			j++;
		}
		e->v[j - 1].keep = true;
		e->v[j - 1].out_order = e->v[i].order;
		i = j;
	}
	if (e->n > 1)
		qsort(e->v, e->n, sizeof(*e->v), entry_order_cmp);
	return 0;
}

/* Keys nearly every manifest has, in every document: added as constants
 * (cJSON does not copy or free them), so that 10,000 documents do not hold
 * 10,000 copies of each. */
static const char *const common_keys[] = {
    "apiVersion", "kind", "metadata", "name", "namespace", "labels", "annotations", "spec", "data",
};

static bool add_member(cJSON *obj, const char *key, cJSON *v)
{
	for (size_t i = 0; i < SL_ARRAY_SIZE(common_keys); i++)
		if (strcmp(key, common_keys[i]) == 0)
			return cJSON_AddItemToObjectCS(obj, common_keys[i], v);
	return cJSON_AddItemToObject(obj, key, v);
}

/* Converts the winning entries into obj, each at its path. */
static int fill_object(struct conv *c, const struct entries *e, unsigned depth, size_t base_len, cJSON *obj)
{
	for (size_t i = 0; i < e->n; i++) {
		cJSON *v;
		if (!e->v[i].keep)
			continue;
		sl_manifest__path_cut(&c->path, base_len);
		if (sl_manifest__path_push_key(&c->path, e->v[i].key) < 0) {
			conv_fail(c, SL_ETOOLARGE, e->v[i].knode, "field path too long");
			return SL_ETOOLARGE;
		}
		if (c->pos && sl_manifest__positions_add(c->pos, c->path.data, e->v[i].knode->line,
		                                         e->v[i].knode->col) < 0)
			return SL_ENOMEM;
		v = convert(c, e->v[i].vnode, depth + 1);
		if (!v)
			return c->code ? c->code : SL_ENOMEM;
		if (!add_member(obj, e->v[i].key, v)) {
			cJSON_Delete(v);
			return SL_ENOMEM;
		}
	}
	return 0;
}

static cJSON *convert_map(struct conv *c, const struct node *n, unsigned depth)
{
	struct entries e = {0};
	cJSON *obj = NULL;
	size_t base_len = c->path.len;
	int r;

	r = gather_entries(c, n, &e);
	if (r == 0)
		r = pick_winners(c, &e, base_len);
	if (r == 0) {
		obj = cJSON_CreateObject();
		r = obj ? fill_object(c, &e, depth, base_len, obj) : SL_ENOMEM;
	}
	sl_manifest__path_cut(&c->path, base_len);
	for (size_t i = 0; i < e.n; i++)
		free(e.v[i].key);
	free(e.v);
	if (r < 0) {
		if (!c->code)
			c->code = r;
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

static cJSON *convert_scalar(struct conv *c, const struct node *n)
{
	struct resolved r;
	const char *why = NULL;
	cJSON *num;

	if (!resolve_node(n, &r, &why)) {
		conv_fail(c, SL_EINVALID, n, "%s", why);
		return NULL;
	}
	switch (r.t) {
	case R_NULL:
		return cJSON_CreateNull();
	case R_BOOL:
		return cJSON_CreateBool(r.b);
	case R_INT:
		num = cJSON_CreateNumber(r.d);
		/* beyond 2^53 the digits, as sl_manifest_json_parse keeps them */
		if (num && sl_manifest__json_keep_int(num, r.text, strlen(r.text)) < 0) {
			cJSON_Delete(num);
			num = NULL;
		}
		return num;
	case R_FLOAT:
		/* kubectl sends -0.0 as -0, which the API server reads as int 0 */
		return cJSON_CreateNumber(r.d == 0 ? 0 : r.d);
	default:
		if (memchr(n->val, '\0', n->len)) {
			conv_fail(c, SL_EINVALID, n, "a string holds a NUL character");
			return NULL;
		}
		return cJSON_CreateString(n->val);
	}
}

/* An alias converts as its target, which must not contain it. */
static cJSON *convert_alias(struct conv *c, const struct node *n, unsigned depth)
{
	struct node *t = n->target;
	cJSON *out;

	if (t->busy) {
		conv_fail(c, SL_EINVALID, n, "an alias refers to a node that contains it");
		return NULL;
	}
	c->nodes--; /* the alias itself is not a node of the result */
	if (c->alias_depth)
		c->alias_nodes--;
	c->alias_depth++;
	out = convert(c, t, depth);
	c->alias_depth--;
	return out;
}

static cJSON *convert_seq(struct conv *c, const struct node *n, unsigned depth)
{
	size_t base_len = c->path.len;
	cJSON *out = cJSON_CreateArray();

	for (size_t i = 0; out && i < n->n; i++) {
		cJSON *v;
		sl_manifest__path_cut(&c->path, base_len);
		if (sl_buf_printf(&c->path, "[%zu]", i) < 0) {
			conv_fail(c, SL_ETOOLARGE, n, "field path too long");
			break;
		}
		if (c->pos &&
		    sl_manifest__positions_add(c->pos, c->path.data, n->kids[i]->line, n->kids[i]->col) < 0) {
			c->code = SL_ENOMEM;
			break;
		}
		v = convert(c, n->kids[i], depth + 1);
		if (!v)
			break;
		cJSON_AddItemToArray(out, v);
	}
	sl_manifest__path_cut(&c->path, base_len);
	if (c->code) {
		cJSON_Delete(out);
		return NULL;
	}
	return out;
}

static cJSON *convert(struct conv *c, const struct node *n, unsigned depth)
{
	cJSON *out = NULL;

	if (c->code)
		return NULL;
	if (depth > c->lim->max_depth) {
		conv_fail(c, SL_ETOOLARGE, n, "nested deeper than %u levels", c->lim->max_depth);
		return NULL;
	}
	if (++c->nodes > c->lim->max_nodes) {
		conv_fail(c, SL_ETOOLARGE, n, "more than %zu nodes in one document", c->lim->max_nodes);
		return NULL;
	}
	if (c->alias_depth && ++c->alias_nodes > c->lim->max_alias_nodes) {
		conv_fail(c, SL_ETOOLARGE, n, "aliases expand to more than %zu nodes, refused",
		          c->lim->max_alias_nodes);
		return NULL;
	}
	switch (n->t) {
	case N_ALIAS:
		return convert_alias(c, n, depth);
	case N_SCALAR:
		out = convert_scalar(c, n);
		break;
	case N_SEQ:
		/* busy: an alias inside may not lead back here */
		((struct node *)n)->busy = true;
		out = convert_seq(c, n, depth);
		((struct node *)n)->busy = false;
		break;
	case N_MAP:
		((struct node *)n)->busy = true;
		out = convert_map(c, n, depth);
		((struct node *)n)->busy = false;
		break;
	}
	if (!out && !c->code)
		c->code = SL_ENOMEM;
	return out;
}

/* ---- the event loop ----------------------------------------------------- */

/* The parse of one buffer: libyaml's parser, the node tree of the current
 * document and where the stream is. */
struct reader {
	yaml_parser_t parser;
	struct doc_builder b;
	const struct sl_manifest_limits *lim;
	bool want_positions;
	const struct sl_manifest__yaml_callbacks *cb;
	unsigned doc_index;
	bool in_doc;
	bool doc_failed; /* a problem was reported: skip to the document's end */
	size_t doc_nodes;
};

/* What an event handler returns, besides 0 (go on) and a negative code:
 * the stream ends here without an error. */
#define STREAM_DONE 1

static int report(const struct sl_manifest__yaml_callbacks *cb, int code, int doc, unsigned line,
                  unsigned col, const char *field, const char *msg)
{
	struct sl_manifest__yaml_problem p = {code, doc, line, col, field ? field : "", msg};
	return cb->problem ? cb->problem(&p, cb->payload) : 0;
}

/* Reports a problem at ev that ends the current document (not the stream). */
static int doc_fail(struct reader *rd, const yaml_event_t *ev, int code, const char *msg)
{
	int r = report(rd->cb, code, (int)rd->doc_index, (unsigned)ev->start_mark.line + 1,
	               (unsigned)ev->start_mark.column + 1, "", msg);
	rd->doc_failed = true;
	return r < 0 ? r : 0;
}

/* A syntax error ends the stream: reported, or SL_ENOMEM. */
static int syntax_error(struct reader *rd)
{
	const yaml_parser_t *p = &rd->parser;
	const yaml_mark_t *m = p->problem ? &p->problem_mark : &p->context_mark;
	char msg[256];

	if (p->error == YAML_MEMORY_ERROR)
		return SL_ENOMEM;
	snprintf(msg, sizeof(msg), "YAML syntax: %s%s%s", p->problem ? p->problem : "error",
	         p->context ? " " : "", p->context ? p->context : "");
	return report(rd->cb, SL_EINVALID, rd->in_doc ? (int)rd->doc_index : -1, (unsigned)m->line + 1,
	              (unsigned)m->column + 1, "", msg);
}

/* Turns the finished node tree into a document for the callback. */
static int finish_doc(struct reader *rd)
{
	const struct node *root = rd->b.root;
	struct conv c = {.lim = rd->lim};
	struct sl_manifest__yaml_doc d = {.index = rd->doc_index};
	cJSON *obj;
	int r = 0;

	if (!root)
		return 0;
	if (root->t == N_SCALAR && root->plain) {
		struct resolved rv;
		const char *why = NULL;
		if (resolve_plain(root->val, &rv, &why) && rv.t == R_NULL)
			return 0; /* an empty document */
	}
	sl_buf_init(&c.path, PATH_MAX_LEN);
	if (sl_buf_puts(&c.path, "") < 0)
		return SL_ENOMEM;
	if (rd->want_positions) {
		c.pos = sl_manifest__positions_new();
		if (!c.pos || sl_manifest__positions_add(c.pos, "", root->line, root->col) < 0) {
			r = SL_ENOMEM;
			goto out;
		}
	}
	obj = convert(&c, root, 0);
	if (!obj) {
		if (c.code == SL_ENOMEM)
			r = SL_ENOMEM;
		else
			r = report(rd->cb, c.code, (int)rd->doc_index, c.line, c.col, c.field, c.msg);
		goto out;
	}
	d.line = root->line;
	d.col = root->col;
	d.obj = obj;
	d.pos = TAKE_PTR(c.pos);
	r = rd->cb->doc(&d, rd->cb->payload);
out:
	sl_manifest__positions_free(c.pos);
	free(c.field);
	sl_buf_free(&c.path);
	return r;
}

static int doc_start(struct reader *rd, const yaml_event_t *ev)
{
	if (rd->doc_index >= rd->lim->max_docs_per_file) {
		int r = report(rd->cb, SL_ETOOLARGE, -1, (unsigned)ev->start_mark.line + 1,
		               (unsigned)ev->start_mark.column + 1, "",
		               "more than the limit of documents per file");
		return r < 0 ? r : STREAM_DONE;
	}
	rd->in_doc = true;
	rd->doc_failed = false;
	rd->doc_nodes = 0;
	builder_reset(&rd->b);
	return 0;
}

static int doc_end(struct reader *rd)
{
	int r = 0;

	if (!rd->doc_failed)
		r = finish_doc(rd);
	builder_reset(&rd->b);
	rd->in_doc = false;
	rd->doc_index++;
	return r < 0 ? r : 0;
}

static const char *event_anchor(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return (const char *)ev->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT:
		return (const char *)ev->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT:
		return (const char *)ev->data.mapping_start.anchor;
	default:
		return NULL;
	}
}

/* Adds node n to the current container (or makes it the root). */
static int attach(struct doc_builder *b, struct node *n)
{
	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	return node_add_kid(b->stack[b->depth - 1], n);
}

/* The node of a scalar event; NULL when out of memory. */
static struct node *scalar_node(struct doc_builder *b, const yaml_event_t *ev)
{
	struct node *n = node_new(b, N_SCALAR, &ev->start_mark);

	if (!n)
		return NULL;
	n->len = ev->data.scalar.length;
	n->val = sl_strndup((const char *)ev->data.scalar.value, n->len);
	/* sl_strndup stops at a NUL; keep the full bytes */
	if (n->val && strlen(n->val) != n->len) {
		free(n->val);
		n->val = malloc(n->len + 1);
		if (n->val) {
			memcpy(n->val, ev->data.scalar.value, n->len);
			n->val[n->len] = '\0';
		}
	}
	if (!n->val)
		return NULL;
	if (ev->data.scalar.tag) {
		n->tag = sl_strdup((const char *)ev->data.scalar.tag);
		if (!n->tag)
			return NULL;
	}
	n->plain = !ev->data.scalar.tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return n;
}

/* Adds the node of an alias, scalar or collection start to the tree, under
 * its anchor if it has one; a collection becomes the current container. */
static int add_node(struct reader *rd, const yaml_event_t *ev)
{
	struct doc_builder *b = &rd->b;
	struct node *n = NULL;
	const char *anchor;

	switch (ev->type) {
	case YAML_ALIAS_EVENT: {
		struct node *t = anchor_get(b, (const char *)ev->data.alias.anchor);
		if (!t) {
			char msg[200];
			snprintf(msg, sizeof(msg), "unknown alias *%.100s",
			         (const char *)ev->data.alias.anchor);
			return doc_fail(rd, ev, SL_EINVALID, msg);
		}
		n = node_new(b, N_ALIAS, &ev->start_mark);
		if (n)
			n->target = t;
		break;
	}
	case YAML_SCALAR_EVENT:
		n = scalar_node(b, ev);
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (b->depth >= SL_MIN(rd->lim->max_depth, SL_ARRAY_SIZE(b->stack))) {
			char msg[100];
			snprintf(msg, sizeof(msg), "nested deeper than %u levels", rd->lim->max_depth);
			return doc_fail(rd, ev, SL_ETOOLARGE, msg);
		}
		n = node_new(b, ev->type == YAML_MAPPING_START_EVENT ? N_MAP : N_SEQ, &ev->start_mark);
		break;
	default:
		break;
	}
	if (!n)
		return SL_ENOMEM;
	anchor = event_anchor(ev);
	if ((anchor && anchor_set(b, anchor, n) < 0) || attach(b, n) < 0)
		return SL_ENOMEM;
	if (n->t == N_SEQ || n->t == N_MAP)
		b->stack[b->depth++] = n;
	return 0;
}

/* One event: 0 to go on, STREAM_DONE or a negative code to stop. */
static int on_event(struct reader *rd, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_STREAM_END_EVENT:
		return STREAM_DONE;
	case YAML_DOCUMENT_START_EVENT:
		return doc_start(rd, ev);
	case YAML_DOCUMENT_END_EVENT:
		return doc_end(rd);
	case YAML_STREAM_START_EVENT:
	case YAML_NO_EVENT:
		return 0;
	default:
		break;
	}
	if (rd->doc_failed)
		return 0;
	if (ev->type == YAML_SEQUENCE_END_EVENT || ev->type == YAML_MAPPING_END_EVENT) {
		if (rd->b.depth > 0)
			rd->b.depth--;
		return 0;
	}
	if (++rd->doc_nodes > rd->lim->max_nodes)
		return doc_fail(rd, ev, SL_ETOOLARGE, "more nodes than the limit");
	return add_node(rd, ev);
}

int sl_manifest__yaml_load(const void *data, size_t len, const struct sl_manifest_limits *lim,
                           bool want_positions, const struct sl_manifest__yaml_callbacks *cb)
{
	struct reader rd = {.lim = lim, .want_positions = want_positions, .cb = cb};
	int r = 0;

	if (!yaml_parser_initialize(&rd.parser))
		return SL_ENOMEM;
	yaml_parser_set_input_string(&rd.parser, data, len);
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&rd.parser, &ev)) {
			r = syntax_error(&rd);
			break;
		}
		r = on_event(&rd, &ev);
		yaml_event_delete(&ev);
		if (r != 0)
			break;
	}
	builder_reset(&rd.b);
	yaml_parser_delete(&rd.parser);
	return r < 0 ? r : 0;
}

/* ---- the public one-buffer parser --------------------------------------- */

struct parse_ctx {
	int (*cb)(unsigned, unsigned, unsigned, cJSON *, void *);
	void *payload;
	struct sl_error *err;
};

static int parse_doc_cb(struct sl_manifest__yaml_doc *d, void *payload)
{
	struct parse_ctx *p = payload;
	sl_manifest__positions_free(d->pos);
	return p->cb(d->index, d->line, d->col, d->obj, p->payload);
}

static int parse_problem_cb(const struct sl_manifest__yaml_problem *y, void *payload)
{
	struct parse_ctx *p = payload;
	return sl_error_set(p->err, y->code, "%u:%u: %s%s%s", y->line, y->col, y->field,
	                    *y->field ? ": " : "", y->msg);
}

int sl_manifest_parse(const void *data, size_t len, const struct sl_manifest_limits *limits,
                      int (*cb)(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload),
                      void *payload, struct sl_error *err)
{
	static const struct sl_manifest_limits def = SL_MANIFEST_LIMITS_INIT;
	struct parse_ctx p = {cb, payload, err};
	struct sl_manifest__yaml_callbacks ycb = {parse_doc_cb, parse_problem_cb, &p};
	const struct sl_manifest_limits *lim = limits ? limits : &def;
	int r;

	if (len > lim->max_file_size)
		return sl_error_set(err, SL_ETOOLARGE, "%zu bytes, over the limit of %zu", len,
		                    lim->max_file_size);
	r = sl_manifest__yaml_load(data, len, lim, false, &ycb);
	if (r == SL_ENOMEM)
		sl_error_set(err, r, "out of memory");
	return r;
}
