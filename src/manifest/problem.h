/* Problems on documents (problem.c): positioned by field path at the
 * closest line:column known, one per path of a document, counted on it;
 * what the validator (validate.c) and the schema check (schema.c) both
 * report through. Sits on the container (set.c) and positions.c. */
#pragma once

#include "sluice/manifest.h"

/* Where the problems of one validation go. */
struct sl_manifest__reporter {
	struct sl_manifest_set *s;
	/* The problems of the document being checked start here: set to
	 * sl_manifest_set_problem_count() before checking a document. */
	size_t doc_first_problem;
};

/* Records a problem of code SL_EINVALID on document d at field path (the
 * position is that of the path or of its closest ancestor present); errors
 * count on d. A second problem for the same path of the same document is
 * dropped. 0 or SL_ENOMEM. */
int sl_manifest__doc_problem(const struct sl_manifest__reporter *rp, struct sl_manifest_doc *d,
                             enum sl_manifest_severity sev, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
