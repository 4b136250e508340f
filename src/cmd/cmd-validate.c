/* sluice validate PATH...: loads files and directories offline, validates
 * them as one set (so references across paths resolve) and prints every
 * problem as "file:line:column: field: message". */
#include "cmd.h"
#include "sluice/manifest.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct validate_opts {
	bool quiet;
};

static const struct sl_cmd_flag flags[] = {
    {"quiet", 'q', NULL, SL_CMD_BOOL_AT(struct validate_opts, quiet), NULL,
     "print problems only, no summary"},
    {"help", 'h', NULL, SL_CMD_HELP, 0, NULL, "this text"},
};

const struct sl_cmd_spec sl_cmd__validate_spec = {
    .name = "validate",
    .flags = flags,
    .n_flags = SL_ARRAY_SIZE(flags),
    .usage = "usage: sluice validate [--quiet] PATH...\n\n"
             "Checks manifests offline: YAML syntax, apiVersion, kind and names, the schemas of\n"
             "StreamClass, StreamingJobTemplate and BackfillRequest, streams of the kinds the\n"
             "StreamClasses register, and references between documents. A PATH is a file or a\n"
             "directory (every *.yaml and *.yml below it, hidden entries skipped); all PATHs form\n"
             "one set. Prints every problem; exits 1 when there is any error, else 0.\n\n",
    .name_width = 13,
    .min_operands = 1,
    .max_operands = -1,
};

/* Adds one PATH to the set: a file, or every manifest below a directory.
 * Problems of the manifests are recorded in the set; returns an error only
 * when the set cannot go on (out of memory, a limit, an unreadable dir). */
static int add_path(struct sl_manifest_set *s, const char *path, struct sl_error *err)
{
	struct stat st;
	int r;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* problems name files as "DIR/relative/path" */
		char *prefix = sl_strdup(path);
		size_t l = prefix ? strlen(prefix) : 0;
		while (l > 1 && prefix[l - 1] == '/')
			prefix[--l] = '\0';
		r = prefix ? sl_manifest_set_add_dir(s, path, strcmp(prefix, ".") ? prefix : NULL, err)
		           : sl_error_set(err, SL_ENOMEM, "out of memory");
		free(prefix);
		return r;
	}
	r = sl_manifest_set_add_file(s, path, NULL, err);
	if (r < 0 && r != SL_ENOMEM && r != SL_ETOOLARGE)
		r = 0; /* recorded as a problem of that path */
	return r;
}

/* Every problem, then (unless quiet) the summary; 1 when there is an error. */
static int report(const struct sl_manifest_set *s, bool quiet)
{
	size_t docs = sl_manifest_set_doc_count(s), files = sl_manifest_set_file_count(s);
	size_t errors = sl_manifest_set_error_count(s), skipped = 0;

	for (size_t i = 0; i < sl_manifest_set_problem_count(s); i++) {
		const struct sl_manifest_problem *p = sl_manifest_set_problem(s, i);
		sl_manifest_problem_print(p, stdout);
		if (p->severity == SL_MANIFEST_WARNING && strstr(p->message, "skipped"))
			skipped++;
	}
	if (quiet)
		return errors > 0;
	if (errors > 0) {
		printf("%zu error%s in %zu documents of %zu files\n", errors, errors == 1 ? "" : "s", docs,
		       files);
		return 1;
	}
	printf("%zu document%s in %zu file%s valid", docs, docs == 1 ? "" : "s", files,
	       files == 1 ? "" : "s");
	if (skipped)
		printf(" (%zu skipped)", skipped);
	printf("\n");
	return 0;
}

int sl_cmd_validate(int argc, char **argv)
{
	struct validate_opts o = {0};
	struct sl_manifest_set *s = NULL;
	int first, r, rc = 0;

	r = sl_cmd__parse(&sl_cmd__validate_spec, argc, argv, &o, &first);
	if (r != 0)
		return r > 0 ? 0 : 2;
	s = sl_manifest_set_new(NULL);
	if (!s) {
		fprintf(stderr, "sluice validate: out of memory\n");
		return 2;
	}
	for (int i = first; i < argc; i++) {
		struct sl_error err = {0};
		if (add_path(s, argv[i], &err) < 0) {
			fprintf(stderr, "sluice validate: %s\n", err.msg);
			rc = 2;
			goto out;
		}
	}
	if (sl_manifest_set_validate(s) < 0) {
		fprintf(stderr, "sluice validate: out of memory\n");
		rc = 2;
		goto out;
	}
	rc = report(s, o.quiet);
out:
	sl_manifest_set_free(s);
	fflush(stdout);
	return rc;
}
