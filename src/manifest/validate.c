/* Offline validation of a set: object identity (apiVersion, kind, names),
 * CRD schemas (built in from crds/, or CRDs found in the set), the stream
 * contract of StreamClasses, and references between documents. */
#include "crds.h"
#include "positions.h"
#include "problem.h"
#include "schema.h"
#include "set.h"
#include "sluice/arcane.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct schema_ent {
	char *api_version; /* group/version */
	char *kind;
	bool namespaced;
	const cJSON *schema; /* borrowed from a CRD object */
};

struct vctx {
	struct sl_manifest__reporter rep; /* the set, and where problems go */
	struct schema_ent *schemas;
	size_t n_schemas, cap_schemas;
	bool have_templates;
};

/* ---- names -------------------------------------------------------------- */

bool sl_manifest_dns1123_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i + 1 < n))
			return false;
	}
	return true;
}

bool sl_manifest_dns1123_subdomain(const char *s)
{
	size_t n = strlen(s);
	char part[254];
	const char *p = s;
	if (n == 0 || n > 253)
		return false;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l >= sizeof(part))
			return false;
		memcpy(part, p, l);
		part[l] = '\0';
		if (!sl_manifest_dns1123_label(part))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

/* Qualified label or annotation key: [prefix/]name. */
static bool qualified_name(const char *k)
{
	const char *slash = strchr(k, '/');
	const char *name = slash ? slash + 1 : k;
	size_t n = strlen(name);
	if (slash) {
		char prefix[254];
		size_t pl = (size_t)(slash - k);
		if (pl == 0 || pl >= sizeof(prefix))
			return false;
		memcpy(prefix, k, pl);
		prefix[pl] = '\0';
		if (!sl_manifest_dns1123_subdomain(prefix))
			return false;
	}
	if (n == 0 || n > 63 || !isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("-_.", name[i]))
			return false;
	return true;
}

static bool label_value(const char *s)
{
	size_t n = strlen(s);
	if (n == 0)
		return true;
	if (n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

/* Kinds whose names are DNS-1123 labels rather than subdomains. */
static const char *const label_kinds[] = {"Namespace", "Service", NULL};
/* Cluster-scoped kinds a manifest tree commonly holds. */
static const char *const cluster_kinds[] = {"Namespace",
                                            "CustomResourceDefinition",
                                            "ClusterRole",
                                            "ClusterRoleBinding",
                                            "StorageClass",
                                            "PersistentVolume",
                                            "PriorityClass",
                                            "StreamClass",
                                            "IngressClass",
                                            "ValidatingWebhookConfiguration",
                                            "MutatingWebhookConfiguration",
                                            NULL};

/* The fields of ObjectMeta; anything else the API server refuses. */
static const char *const object_meta_fields[] = {"name",
                                                 "generateName",
                                                 "namespace",
                                                 "selfLink",
                                                 "uid",
                                                 "resourceVersion",
                                                 "generation",
                                                 "creationTimestamp",
                                                 "deletionTimestamp",
                                                 "deletionGracePeriodSeconds",
                                                 "labels",
                                                 "annotations",
                                                 "ownerReferences",
                                                 "finalizers",
                                                 "managedFields",
                                                 NULL};

static bool in_list(const char *s, const char *const *l)
{
	for (; *l; l++)
		if (strcmp(s, *l) == 0)
			return true;
	return false;
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}
static const char *get_str(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- schema registry ---------------------------------------------------- */

static int schema_add(struct vctx *v, const char *group, const char *version, const char *kind,
                      bool namespaced, const cJSON *schema)
{
	struct schema_ent *e;
	char *av = sl_asprintf("%s/%s", group, version);
	if (!av)
		return SL_ENOMEM;
	for (size_t i = 0; i < v->n_schemas; i++)
		if (strcmp(v->schemas[i].api_version, av) == 0 && strcmp(v->schemas[i].kind, kind) == 0) {
			/* a CRD in the set replaces the built-in one */
			free(av);
			v->schemas[i].schema = schema;
			v->schemas[i].namespaced = namespaced;
			return 0;
		}
	if (SL_GROW(v->schemas, v->cap_schemas, v->n_schemas + 1, 8) < 0) {
		free(av);
		return SL_ENOMEM;
	}
	e = &v->schemas[v->n_schemas];
	e->api_version = av;
	e->kind = sl_strdup(kind);
	if (!e->kind) {
		free(av);
		return SL_ENOMEM;
	}
	e->namespaced = namespaced;
	e->schema = schema;
	v->n_schemas++;
	return 0;
}

/* Registers the served versions of a CRD object that carry a schema. */
static int schema_add_crd(struct vctx *v, const cJSON *crd)
{
	const cJSON *spec = get(crd, "spec"), *names, *vers, *ver;
	const char *group, *kind, *scope;
	int r;

	if (!cJSON_IsObject(spec))
		return 0;
	names = get(spec, "names");
	group = get_str(spec, "group");
	kind = cJSON_IsObject(names) ? get_str(names, "kind") : NULL;
	scope = get_str(spec, "scope");
	vers = get(spec, "versions");
	if (!group || !kind || !cJSON_IsArray(vers))
		return 0;
	cJSON_ArrayForEach(ver, vers)
	{
		const char *name = get_str(ver, "name");
		const cJSON *sch = get(ver, "schema");
		sch = cJSON_IsObject(sch) ? get(sch, "openAPIV3Schema") : NULL;
		if (!name || !cJSON_IsObject(sch))
			continue;
		r = schema_add(v, group, name, kind, !scope || strcmp(scope, "Cluster") != 0, sch);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The CRDs of crds/ built into the library, parsed once per process and
 * never changed after: every validation shares them. */
static cJSON *builtin[16];
static size_t n_builtin;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static int builtin_cb(unsigned index, unsigned line, unsigned column, cJSON *obj, void *payload)
{
	if (n_builtin == SL_ARRAY_SIZE(builtin)) {
		cJSON_Delete(obj);
		return 0;
	}
	builtin[n_builtin++] = obj;
	return 0;
}

static void builtin_load(void)
{
	static const struct sl_manifest_limits lim = SL_MANIFEST_LIMITS_INIT;
	/* Built from crds/ and tested: a failure would leave a schema out,
	 * which the unit tests of the bad manifests would show. */
	for (size_t i = 0; i < sl_manifest__crds_count; i++)
		sl_manifest_parse(sl_manifest__crds[i].data, sl_manifest__crds[i].len, &lim, builtin_cb, NULL,
		                  NULL);
}

static const struct schema_ent *schema_find(const struct vctx *v, const char *api_version, const char *kind)
{
	for (size_t i = 0; i < v->n_schemas; i++)
		if (strcmp(v->schemas[i].api_version, api_version) == 0 &&
		    strcmp(v->schemas[i].kind, kind) == 0)
			return &v->schemas[i];
	return NULL;
}

/* ---- streams ------------------------------------------------------------ */

static bool is_crd(const struct sl_manifest_doc *d)
{
	return d->kind && d->api_version && strcmp(d->kind, "CustomResourceDefinition") == 0 &&
	       sl_str_has_prefix(d->api_version, "apiextensions.k8s.io/");
}

static bool is_ours(const struct sl_manifest_doc *d, const char *kind)
{
	return d->kind && d->api_version && strcmp(d->kind, kind) == 0 &&
	       strcmp(d->api_version, SL_ARCANE_API_VERSION) == 0;
}

/* Namespaced objects without a namespace land in "default". */
static const char *eff_ns(const char *ns)
{
	return ns && *ns ? ns : "default";
}

struct ns_arg {
	const char *api_version, *ns;
};

static bool ns_match(const struct sl_manifest_doc *d, const void *arg)
{
	const struct ns_arg *a = arg;
	return d->api_version && strcmp(d->api_version, a->api_version) == 0 &&
	       strcmp(eff_ns(d->namespace), eff_ns(a->ns)) == 0;
}

static const struct sl_manifest_doc *find_in_ns(const struct sl_manifest_set *s, const char *api_version,
                                                const char *kind, const char *ns, const char *name)
{
	struct ns_arg a = {api_version, ns};
	return sl_manifest__set_lookup(s, kind, name, ns_match, &a);
}

/* A template reference of the stream's layout must name a template of the
 * tree (when the tree has templates at all). */
static int check_template_ref(struct vctx *v, struct sl_manifest_doc *d, const struct sl_arcane_ref *ref)
{
	char path[160];

	snprintf(path, sizeof(path), "%s.name", ref->field);
	if (!ref->name || !v->have_templates ||
	    find_in_ns(v->rep.s, SL_ARCANE_API_VERSION, "StreamingJobTemplate", ref->ns, ref->name))
		return 0;
	return sl_manifest__doc_problem(
	    &v->rep, d, SL_MANIFEST_ERROR, path,
	    "StreamingJobTemplate \"%s\" not found in namespace \"%s\" of the manifests", ref->name,
	    eff_ns(ref->ns));
}

static int check_stream(struct vctx *v, struct sl_manifest_doc *d, const struct sl_manifest_doc *cls)
{
	const cJSON *spec = get(d->obj, "spec"), *refs, *f;
	struct sl_arcane_layout l;
	struct sl_error lerr = {0};
	int r;

	if (!cJSON_IsObject(spec))
		return sl_manifest__doc_problem(
		    &v->rep, d, SL_MANIFEST_ERROR, "spec",
		    "a stream needs a spec object (registered by StreamClass \"%s\")",
		    cls->name ? cls->name : "");
	/* The layout (v0, v1, v2) says where suspended, the template
	 * references and the backend are. */
	if (sl_arcane_layout_read(d->obj, &l, &lerr) < 0) {
		const char *msg = lerr.msg + (l.error_field[0] ? strlen(l.error_field) + 2 : 0);
		if ((r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR,
		                                  l.error_field[0] ? l.error_field : "spec", "%s", msg)) < 0)
			return r;
	} else if ((r = check_template_ref(v, d, &l.streaming)) < 0 ||
	           (r = check_template_ref(v, d, &l.backfill)) < 0 ||
	           (r = check_template_ref(v, d, &l.batch)) < 0) {
		return r;
	}
	refs = get(get(cls->obj, "spec"), "secretRefs");
	cJSON_ArrayForEach(f, refs)
	{
		const cJSON *val, *sref;
		char path[512];
		if (!cJSON_IsString(f) || !*f->valuestring)
			continue;
		val = get(spec, f->valuestring);
		snprintf(path, sizeof(path), "spec.");
		{
			struct sl_buf pb;
			sl_buf_init(&pb, sizeof(path) - 1);
			if (sl_buf_puts(&pb, "spec") == 0 &&
			    sl_manifest__path_push_key(&pb, f->valuestring) == 0)
				snprintf(path, sizeof(path), "%s", pb.data);
			sl_buf_free(&pb);
		}
		if (cJSON_IsObject(val)) {
			const char *n = get_str(val, "name");
			if (!n || !*n) {
				char np[600];
				snprintf(np, sizeof(np), "%s.name", path);
				if ((r = sl_manifest__doc_problem(
				         &v->rep, d, SL_MANIFEST_ERROR, np,
				         "required: the name of a Secret (a string)")) < 0)
					return r;
			}
			continue;
		}
		if (val && !cJSON_IsNull(val)) {
			if ((r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, path,
			                                  "expected an object with the name of a Secret")) <
			    0)
				return r;
			continue;
		}
		sref = get(spec, "secretRef");
		if (cJSON_IsObject(sref) && get_str(sref, "name") && *get_str(sref, "name"))
			continue;
		if ((r = sl_manifest__doc_problem(
		         &v->rep, d, SL_MANIFEST_ERROR, path,
		         "StreamClass \"%s\" requires this secret reference: an object with the name "
		         "of a Secret, or spec.secretRef.name",
		         cls->name ? cls->name : "")) < 0)
			return r;
	}
	return 0;
}

/* What sluice needs of its own kinds beyond the schemas, which follow
 * arcane-crd and so leave spec (and a class's apiGroupRef) optional. */
static int check_ours(struct vctx *v, struct sl_manifest_doc *d)
{
	const cJSON *spec = get(d->obj, "spec");

	if (!spec || cJSON_IsNull(spec))
		return sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "spec",
		                                "required field is missing");
	if (is_ours(d, "StreamClass") && cJSON_IsObject(spec) &&
	    !(get_str(spec, "apiGroupRef") && *get_str(spec, "apiGroupRef")))
		return sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "spec.apiGroupRef",
		                                "required: the API group of the stream kind (sluice cannot "
		                                "find the kind without it)");
	return 0;
}

static int check_backfill(struct vctx *v, struct sl_manifest_doc *d)
{
	const cJSON *spec = get(d->obj, "spec");
	const char *cls_name = get_str(spec, "streamClass"), *sid = get_str(spec, "streamId");
	const struct sl_manifest_doc *cls;
	const cJSON *cspec;
	const char *g, *ver, *k;
	char av[512];

	if (!cls_name || !sid)
		return 0; /* the schema check has said what is missing */
	cls = sl_manifest_set_find(v->rep.s, SL_ARCANE_GROUP, "StreamClass", NULL, cls_name);
	if (!cls || !is_ours(cls, "StreamClass"))
		return sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "spec.streamClass",
		                                "StreamClass \"%s\" not found in the manifests", cls_name);
	cspec = get(cls->obj, "spec");
	g = get_str(cspec, "apiGroupRef");
	ver = get_str(cspec, "apiVersion");
	k = get_str(cspec, "kindRef");
	if (!g || !ver || !k)
		return 0; /* the class has its own errors */
	snprintf(av, sizeof(av), "%s/%s", g, ver);
	if (!find_in_ns(v->rep.s, av, k, d->namespace, sid))
		return sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "spec.streamId",
		                                "%s \"%s\" not found in namespace \"%s\" of the manifests", k,
		                                sid, eff_ns(d->namespace));
	return 0;
}

/* ---- identity and metadata ---------------------------------------------- */

static bool valid_api_version(const char *av)
{
	const char *slash = strchr(av, '/');
	const char *ver = slash ? slash + 1 : av;
	if (slash) {
		char g[254];
		size_t gl = (size_t)(slash - av);
		if (gl == 0 || gl >= sizeof(g))
			return false;
		memcpy(g, av, gl);
		g[gl] = '\0';
		if (!sl_manifest_dns1123_subdomain(g))
			return false;
	}
	return sl_manifest_dns1123_label(ver) && ver[0] == 'v';
}

static bool valid_kind(const char *k)
{
	if (!isalpha((unsigned char)k[0]))
		return false;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k))
			return false;
	return true;
}

static int check_string_map(struct vctx *v, struct sl_manifest_doc *d, const cJSON *meta, const char *field,
                            bool labels)
{
	const cJSON *m = get(meta, field), *e;
	struct sl_buf p;
	int r = 0;

	if (!m || cJSON_IsNull(m))
		return 0;
	sl_buf_init(&p, 4096);
	if (sl_buf_printf(&p, "metadata.%s", field) < 0) {
		sl_buf_free(&p);
		return SL_ENOMEM;
	}
	if (!cJSON_IsObject(m)) {
		r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, p.data,
		                             "expected an object of strings");
		goto out;
	}
	cJSON_ArrayForEach(e, m)
	{
		size_t base = p.len;
		if (sl_manifest__path_push_key(&p, e->string) < 0)
			continue;
		if (!qualified_name(e->string))
			r = sl_manifest__doc_problem(
			    &v->rep, d, SL_MANIFEST_ERROR, p.data,
			    "invalid key: expected [prefix/]name, name up to 63 characters "
			    "[A-Za-z0-9_.-] beginning and ending with an alphanumeric");
		else if (!cJSON_IsString(e))
			r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, p.data,
			                             "expected a string (quote the value)");
		else if (labels && !label_value(e->valuestring))
			r = sl_manifest__doc_problem(
			    &v->rep, d, SL_MANIFEST_ERROR, p.data,
			    "invalid label value: expected up to 63 characters [A-Za-z0-9_.-], "
			    "beginning and ending with an alphanumeric");
		sl_manifest__path_cut(&p, base);
		if (r < 0)
			break;
	}
out:
	sl_buf_free(&p);
	return r;
}

/* apiVersion and kind: present, strings, well-formed */
static int check_type_meta(struct vctx *v, struct sl_manifest_doc *d)
{
	const cJSON *av = get(d->obj, "apiVersion"), *kind = get(d->obj, "kind");
	int r;

	if (!cJSON_IsString(av) || !*av->valuestring)
		r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "apiVersion",
		                             av ? "expected a string such as \"v1\" or \"group/v1\""
		                                : "required: every object needs apiVersion and kind");
	else if (!valid_api_version(av->valuestring))
		r = sl_manifest__doc_problem(
		    &v->rep, d, SL_MANIFEST_ERROR, "apiVersion",
		    "invalid: expected \"VERSION\" or \"GROUP/VERSION\", e.g. \"apps/v1\"");
	else
		r = 0;
	if (r < 0)
		return r;
	if (!cJSON_IsString(kind) || !*kind->valuestring)
		r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "kind",
		                             kind ? "expected a string such as \"ConfigMap\""
		                                  : "required: every object needs apiVersion and kind");
	else if (!valid_kind(kind->valuestring))
		r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "kind",
		                             "invalid: expected an alphanumeric name");
	return r;
}

/* metadata.name: present, and a name the API server takes for the kind */
static int check_name(struct vctx *v, struct sl_manifest_doc *d, const cJSON *meta)
{
	const cJSON *name = get(meta, "name");

	if (!name || cJSON_IsNull(name))
		return sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "metadata.name",
		                                "required: every object applied by sluice needs a name");
	if (!cJSON_IsString(name))
		return sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "metadata.name",
		                                "expected a string");
	if (d->kind && in_list(d->kind, label_kinds)) {
		if (sl_manifest_dns1123_label(name->valuestring))
			return 0;
		return sl_manifest__doc_problem(
		    &v->rep, d, SL_MANIFEST_ERROR, "metadata.name",
		    "invalid %s name: expected a DNS-1123 label (at most 63 characters "
		    "[a-z0-9-], beginning and ending with [a-z0-9])",
		    d->kind);
	}
	if (!sl_manifest_dns1123_subdomain(name->valuestring))
		return sl_manifest__doc_problem(
		    &v->rep, d, SL_MANIFEST_ERROR, "metadata.name",
		    "invalid name: expected a DNS-1123 subdomain (at most 253 characters [a-z0-9-.], "
		    "each part beginning and ending with [a-z0-9])");
	if (sl_manifest_set_is_stream(v->rep.s, d, NULL) && strlen(name->valuestring) > 63)
		return sl_manifest__doc_problem(
		    &v->rep, d, SL_MANIFEST_ERROR, "metadata.name",
		    "a stream name is a label value of its jobs: expected at most 63 characters");
	return 0;
}

/* metadata.namespace: a DNS-1123 label, and only on namespaced kinds (by
 * the schema when there is one, else by the list of cluster kinds) */
static int check_namespace(struct vctx *v, struct sl_manifest_doc *d, const cJSON *meta,
                           const struct schema_ent *sch)
{
	const cJSON *ns = get(meta, "namespace");
	bool namespaced = sch ? sch->namespaced : !(d->kind && in_list(d->kind, cluster_kinds));
	int r;

	if (!ns || cJSON_IsNull(ns))
		return 0;
	if (!cJSON_IsString(ns))
		return sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "metadata.namespace",
		                                "expected a string");
	if (!sl_manifest_dns1123_label(ns->valuestring))
		return sl_manifest__doc_problem(
		    &v->rep, d, SL_MANIFEST_ERROR, "metadata.namespace",
		    "invalid namespace: expected a DNS-1123 label (at most 63 characters "
		    "[a-z0-9-], beginning and ending with [a-z0-9])");
	if (namespaced)
		return 0;
	/* The API server (and kubectl, and sync) drop it; some plugin charts
	 * set it on their StreamClass. The rest of validation sees the object
	 * as the server stores it. */
	r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_WARNING, "metadata.namespace",
	                             "%s is cluster-scoped: the namespace is ignored", d->kind);
	d->namespace = NULL;
	return r;
}

/* members of metadata that ObjectMeta does not have */
static int check_meta_fields(struct vctx *v, struct sl_manifest_doc *d, const cJSON *meta)
{
	const cJSON *m;
	int r;

	cJSON_ArrayForEach(m, meta)
	{
		char path[600];
		if (in_list(m->string, object_meta_fields))
			continue;
		snprintf(path, sizeof(path), "metadata.%.500s", m->string);
		if ((r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, path, "unknown field")) < 0)
			return r;
	}
	return 0;
}

static int check_identity(struct vctx *v, struct sl_manifest_doc *d, const struct schema_ent *sch)
{
	const cJSON *meta;
	int r = check_type_meta(v, d);

	if (r < 0)
		return r;
	meta = get(d->obj, "metadata");
	if (!cJSON_IsObject(meta))
		return sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "metadata",
		                                meta ? "expected an object"
		                                     : "required: an object with a name");
	if ((r = check_name(v, d, meta)) < 0 || (r = check_namespace(v, d, meta, sch)) < 0 ||
	    (r = check_meta_fields(v, d, meta)) < 0 ||
	    (r = check_string_map(v, d, meta, "labels", true)) < 0 ||
	    (r = check_string_map(v, d, meta, "annotations", false)) < 0)
		return r;
	return 0;
}

/* stringData values must be strings (or null, which the API server takes as
 * ""): a number or boolean there is refused by the server. Values are never
 * repeated in messages. */
static int check_secret_string_data(struct vctx *v, struct sl_manifest_doc *d)
{
	const cJSON *sd = get(d->obj, "stringData"), *e;
	struct sl_buf p;
	int r = 0;

	if (!sd || cJSON_IsNull(sd))
		return 0;
	if (!cJSON_IsObject(sd))
		return sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, "stringData",
		                                "expected an object of strings; value not shown");
	sl_buf_init(&p, 4096);
	cJSON_ArrayForEach(e, sd)
	{
		if (cJSON_IsString(e) || cJSON_IsNull(e))
			continue;
		sl_buf_reset(&p);
		if (sl_buf_puts(&p, "stringData") < 0 || sl_manifest__path_push_key(&p, e->string) < 0)
			continue;
		r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, p.data,
		                             "expected a string (quote the value); value not shown");
		if (r < 0)
			break;
	}
	sl_buf_free(&p);
	return r;
}

/* Secret data must be base64; its values are never repeated in messages. */
static int check_secret(struct vctx *v, struct sl_manifest_doc *d)
{
	const cJSON *data = get(d->obj, "data"), *e;
	struct sl_buf p;
	int r = check_secret_string_data(v, d);

	if (r < 0 || !cJSON_IsObject(data))
		return r;
	sl_buf_init(&p, 4096);
	cJSON_ArrayForEach(e, data)
	{
		bool ok = cJSON_IsString(e);
		size_t n = ok ? strlen(e->valuestring) : 0;
		for (size_t i = 0; ok && i < n; i++) {
			char c = e->valuestring[i];
			ok = isalnum((unsigned char)c) || c == '+' || c == '/' || (c == '=' && i + 2 >= n);
		}
		if (ok && n % 4 != 0)
			ok = false;
		if (ok)
			continue;
		sl_buf_reset(&p);
		if (sl_buf_puts(&p, "data") < 0 || sl_manifest__path_push_key(&p, e->string) < 0)
			continue;
		r = sl_manifest__doc_problem(
		    &v->rep, d, SL_MANIFEST_ERROR, p.data,
		    "expected a base64 string (use stringData for plain text); value not shown");
		if (r < 0)
			break;
	}
	sl_buf_free(&p);
	return r;
}

/* ---- duplicates --------------------------------------------------------- */

struct objkey {
	char *key;
	struct sl_manifest_doc *d;
	size_t order;
};

static int objkey_cmp(const void *a, const void *b)
{
	const struct objkey *x = a, *y = b;
	int r = strcmp(x->key, y->key);
	return r ? r : (x->order < y->order ? -1 : x->order > y->order);
}

static int check_duplicates(struct vctx *v)
{
	size_t n = sl_manifest_set_doc_count(v->rep.s), m = 0;
	struct objkey *keys = calloc(n ? n : 1, sizeof(*keys));
	char g[256];
	int r = 0;

	if (!keys)
		return SL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct sl_manifest_doc *d = sl_manifest__set_doc_mut(v->rep.s, i);
		if (!d->kind || !d->name)
			continue;
		keys[m].key = sl_asprintf("%s\x1f%s\x1f%s\x1f%s", sl_manifest_doc_group(d, g, sizeof(g)),
		                          d->kind, d->namespace ? d->namespace : "", d->name);
		if (!keys[m].key) {
			r = SL_ENOMEM;
			goto out;
		}
		keys[m].d = d;
		keys[m].order = i;
		m++;
	}
	qsort(keys, m, sizeof(*keys), objkey_cmp);
	/* f: the first in load order of the run of equal keys that i is in */
	for (size_t i = 1, f = 0; i < m && r == 0; i++) {
		if (strcmp(keys[i].key, keys[i - 1].key) != 0) {
			f = i;
			continue;
		}
		v->rep.doc_first_problem = sl_manifest_set_problem_count(v->rep.s);
		r = sl_manifest__doc_problem(&v->rep, keys[i].d, SL_MANIFEST_ERROR, "metadata.name",
		                             "%s \"%s\" is defined twice: also at %s:%u:%u", keys[i].d->kind,
		                             keys[i].d->name, keys[f].d->file, keys[f].d->line,
		                             keys[f].d->column);
	}
out:
	for (size_t i = 0; i < m; i++)
		free(keys[i].key);
	free(keys);
	return r;
}

/* ---- the driver --------------------------------------------------------- */

/* The schemas: the built-in CRDs, replaced by CRDs of the same kind in the
 * set. Notes whether the set has templates at all (references to them are
 * checked only then). */
static int schemas_load(struct vctx *v)
{
	const struct sl_manifest_set *s = v->rep.s;
	int r = 0;

	pthread_once(&builtin_once, builtin_load);
	for (size_t i = 0; i < n_builtin && r == 0; i++)
		r = schema_add_crd(v, builtin[i]);
	for (size_t i = 0; i < sl_manifest_set_doc_count(s) && r == 0; i++) {
		const struct sl_manifest_doc *d = sl_manifest_set_doc(s, i);
		if (is_crd(d))
			r = schema_add_crd(v, d->obj);
		if (is_ours(d, "StreamingJobTemplate"))
			v->have_templates = true;
	}
	return r;
}

static void schemas_free(struct vctx *v)
{
	for (size_t i = 0; i < v->n_schemas; i++) {
		free(v->schemas[i].api_version);
		free(v->schemas[i].kind);
	}
	free(v->schemas);
}

/* The members of d against the top level of its kind's schema (path is
 * scratch space): metadata was checked by check_identity; status is not
 * applied from a manifest. */
static int check_schema(struct vctx *v, struct sl_manifest_doc *d, const struct schema_ent *sch,
                        struct sl_buf *path)
{
	const cJSON *props = get(sch->schema, "properties"), *req = get(sch->schema, "required"), *m, *k;
	int r = 0;

	cJSON_ArrayForEach(m, d->obj)
	{
		const cJSON *sub = props ? get(props, m->string) : NULL;
		if (strcmp(m->string, "metadata") == 0 || strcmp(m->string, "status") == 0)
			continue;
		sl_buf_reset(path);
		if (sl_manifest__path_push_key(path, m->string) < 0)
			continue;
		if (sub)
			r = sl_manifest__schema_check(&v->rep, d, sub, m, path, 1);
		else if (strcmp(m->string, "apiVersion") && strcmp(m->string, "kind"))
			r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, path->data,
			                             "unknown field");
		if (r < 0)
			return r;
	}
	cJSON_ArrayForEach(k, req)
	{
		if (cJSON_IsString(k) && !get(d->obj, k->valuestring) &&
		    (r = sl_manifest__doc_problem(&v->rep, d, SL_MANIFEST_ERROR, k->valuestring,
		                                  "required field is missing")) < 0)
			return r;
	}
	return 0;
}

/* Every check of one document, in the order its problems are listed. */
static int check_doc(struct vctx *v, struct sl_manifest_doc *d, struct sl_buf *path)
{
	const struct schema_ent *sch =
	    d->api_version && d->kind ? schema_find(v, d->api_version, d->kind) : NULL;
	const struct sl_manifest_doc *cls = NULL;
	int r;

	v->rep.doc_first_problem = sl_manifest_set_problem_count(v->rep.s);
	r = check_identity(v, d, sch);
	if (r == 0 && sch)
		r = check_schema(v, d, sch, path);
	if (r == 0 && (is_ours(d, "StreamClass") || is_ours(d, "StreamingJobTemplate") ||
	               is_ours(d, "BackfillRequest")))
		r = check_ours(v, d);
	if (r == 0 && sl_manifest_set_is_stream(v->rep.s, d, &cls))
		r = check_stream(v, d, cls);
	if (r == 0 && is_ours(d, "BackfillRequest"))
		r = check_backfill(v, d);
	if (r == 0 && d->kind && d->api_version && strcmp(d->kind, "Secret") == 0 &&
	    strcmp(d->api_version, "v1") == 0)
		r = check_secret(v, d);
	return r;
}

int sl_manifest_set_validate(struct sl_manifest_set *s)
{
	struct vctx v = {.rep = {.s = s}};
	struct sl_buf path;
	int r;

	sl_buf_init(&path, 4096);
	r = schemas_load(&v);
	for (size_t i = 0; i < sl_manifest_set_doc_count(s) && r == 0; i++)
		r = check_doc(&v, sl_manifest__set_doc_mut(s, i), &path);
	if (r == 0)
		r = check_duplicates(&v);
	sl_buf_free(&path);
	schemas_free(&v);
	return r < 0 ? SL_ENOMEM : 0;
}
