/* sluice validate PATH...: loads files and directories offline, validates
 * them as one set (so references across paths resolve) and prints every
 * problem as "file:line:column: field: message". */
#include "cmd.h"
#include "sluice/manifest.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: sluice validate [--quiet] PATH...\n\n"
	           "Checks manifests offline: YAML syntax, apiVersion, kind and names, the schemas of\n"
	           "StreamClass, StreamingJobTemplate and BackfillRequest, streams of the kinds the\n"
	           "StreamClasses register, and references between documents. A PATH is a file or a\n"
	           "directory (every *.yaml and *.yml below it, hidden entries skipped); all PATHs form\n"
	           "one set. Prints every problem; exits 1 when there is any error, else 0.\n\n"
	           "  -q, --quiet   print problems only, no summary\n"
	           "  -h, --help    this text\n");
}

int sl_cmd_validate(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sl_manifest_set *s = NULL;
	bool quiet = false;
	size_t docs = 0, skipped = 0;
	int c, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	s = sl_manifest_set_new(NULL);
	if (!s) {
		fprintf(stderr, "sluice validate: out of memory\n");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		struct sl_error err = {0};
		struct stat st;
		int r;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			/* problems name files as "DIR/relative/path" */
			char *prefix = sl_strdup(argv[i]);
			size_t l = prefix ? strlen(prefix) : 0;
			while (l > 1 && prefix[l - 1] == '/')
				prefix[--l] = '\0';
			r = prefix ? sl_manifest_set_add_dir(s, argv[i], strcmp(prefix, ".") ? prefix : NULL,
			                                     &err)
			           : sl_error_set(&err, SL_ENOMEM, "out of memory");
			free(prefix);
		} else {
			r = sl_manifest_set_add_file(s, argv[i], NULL, &err);
			if (r < 0 && r != SL_ENOMEM && r != SL_ETOOLARGE)
				r = 0; /* recorded as a problem of that path */
		}
		if (r < 0) {
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
	for (size_t i = 0; i < sl_manifest_set_problem_count(s); i++) {
		const struct sl_manifest_problem *p = sl_manifest_set_problem(s, i);
		sl_manifest_problem_print(p, stdout);
		if (p->severity == SL_MANIFEST_WARNING && strstr(p->message, "skipped"))
			skipped++;
	}
	docs = sl_manifest_set_doc_count(s);
	if (sl_manifest_set_error_count(s) > 0) {
		if (!quiet)
			printf("%zu error%s in %zu documents of %zu files\n", sl_manifest_set_error_count(s),
			       sl_manifest_set_error_count(s) == 1 ? "" : "s", docs,
			       sl_manifest_set_file_count(s));
		rc = 1;
	} else if (!quiet) {
		printf("%zu document%s in %zu file%s valid", docs, docs == 1 ? "" : "s",
		       sl_manifest_set_file_count(s), sl_manifest_set_file_count(s) == 1 ? "" : "s");
		if (skipped)
			printf(" (%zu skipped)", skipped);
		printf("\n");
	}
out:
	sl_manifest_set_free(s);
	fflush(stdout);
	return rc;
}
