/* Internal contract between the files of the source module: the backend
 * interface that source.c drives (Git and directory sit behind it), the two
 * calls a backend makes back into its source, and snapshot construction.
 * Not installed; unit tests include it. */
#pragma once

#include "sluice/base.h"
#include "sluice/loop.h"
#include "sluice/manifest.h"
#include "sluice/source.h"

/* Longest revision id with its NUL: 40 hex digits of a commit, or "sha256:"
 * and 64 hex digits of a directory's content. */
#define SL_SOURCE__REV_MAX 80

/* ---- the backend interface ------------------------------------------------ */

/* A manifest file an export took, named by its path relative to the tree
 * and the SHA-256 of its bytes. */
struct sl_source__file {
	char *rel;
	uint8_t sha256[SL_SHA256_LEN];
};

/* One check on the worker: the backend's refresh names the revision, and
 * unless it is the previous one, its export writes that revision's files
 * into a fresh directory that becomes the new snapshot's tree, or (a
 * backend without trees) reads them into the parse cache and lists them. */
struct sl_source__check {
	/* in: the snapshot current when the check was submitted, held by the
	 * source until the check is done; read only */
	const char *prev_rev;  /* "" before the first snapshot */
	const char *prev_root; /* its tree, to hard-link unchanged files from; NULL without one */
	/* in: the source's parse cache, the worker's alone */
	struct sl_manifest_cache *cache;
	/* out */
	char rev[SL_SOURCE__REV_MAX]; /* set by refresh, else by export (a content hash) */
	size_t files;                 /* files the export took */
	struct sl_buf problems;       /* files left out, one per line (bounded: a full list is cut short) */
	/* the files an export without a tree put into the cache */
	struct sl_source__file *list;
	size_t n_list, cap_list;
};

/* Adds rel to chk's list. 0 or SL_ENOMEM. */
int sl_source__check_list(struct sl_source__check *chk, const char *rel, const uint8_t sha256[SL_SHA256_LEN]);

/* One write-back on the worker (see sl_source_write_back). */
struct sl_source__writeback {
	const char *file; /* relative to the snapshot root */
	unsigned doc_index;
	const char *name; /* of the BackfillRequest */
	char commit[41];  /* out: the commit pushed, "" when nothing needed pushing */
};

struct sl_source__backend;

/* What source.c calls. The worker ops run on the source's worker thread one
 * job at a time; the watch ops run on the loop thread; free runs after the
 * worker is joined. A NULL op is one the backend does not have. Failures
 * return a negative SL_E* code with the reason in err. */
struct sl_source__backend_ops {
	/* The export writes the revision's files into a tree (Git). false:
	 * it reads each file once into the parse cache and lists it, and the
	 * snapshot has no tree (dir). */
	bool tree;

	/* Worker. Brings the backend up to date (a fetch) and sets chk->rev.
	 * NULL: the revision is only known from the export. */
	int (*refresh)(struct sl_source__backend *be, struct sl_source__check *chk, struct sl_error *err);
	/* Worker. Writes the files of chk->rev (or of what is there now, then
	 * setting chk->rev) into dir, which exists and is empty (NULL without
	 * a tree: the files are listed in chk instead); sets chk->files, adds
	 * to chk->problems. source.c removes dir on failure. */
	int (*export)(struct sl_source__backend *be, struct sl_source__check *chk, const char *dir,
	              struct sl_error *err);
	/* Worker. Commits and pushes wb; 0 also when nothing needed pushing
	 * (wb->commit ""), SL_ENOTFOUND when the file or document is gone.
	 * NULL: write-back is not supported. */
	int (*write_back)(struct sl_source__backend *be, struct sl_source__writeback *wb,
	                  struct sl_error *err);

	/* Loop. Starts watching for changes and calls sl_source__changed on
	 * one. NULL: the source is polled on its interval instead. */
	int (*watch_start)(struct sl_source__backend *be, struct sl_error *err);
	/* Loop. Brings the watches in line with what is there now; called
	 * before each check is submitted. */
	void (*watch_resync)(struct sl_source__backend *be);
	/* Loop. Stops watching; also when never started. */
	void (*watch_stop)(struct sl_source__backend *be);

	void (*free)(struct sl_source__backend *be);
};

/* The first member of each backend's own state. */
struct sl_source__backend {
	const struct sl_source__backend_ops *ops;
	struct sl_source *src; /* the owner, for the calls below */
	bool can_write_back;   /* write_back exists and the configured ref is a branch */
};

/* Backend constructors: validate the options (SL_EINVALID with the reason)
 * and copy what the backend needs. o has the source's defaults applied
 * (max_file_size, max_files); the caller keeps o. */
typedef int (*sl_source__backend_new_fn)(struct sl_source *src, struct sl_loop *loop,
                                         const struct sl_source_options *o, struct sl_source__backend **ret,
                                         struct sl_error *err);
int sl_source__git_new(struct sl_source *src, struct sl_loop *loop, const struct sl_source_options *o,
                       struct sl_source__backend **ret, struct sl_error *err); /* git.c */
int sl_source__dir_new(struct sl_source *src, struct sl_loop *loop, const struct sl_source_options *o,
                       struct sl_source__backend **ret, struct sl_error *err); /* dir.c */

/* ---- calls a backend makes into its source (source.c) --------------------- */

/* The source's private working area; fixed for the source's life, so any
 * thread may read it. */
const char *sl_source__cache_dir(const struct sl_source *src);
/* Loop thread: something changed; a check follows after the quiet time. */
void sl_source__changed(struct sl_source *src);

/* ---- snapshots (snapshot.c) ----------------------------------------------- */

/* Makes a snapshot of chk's revision and its manifests: loaded from the
 * tree tree_dir that chk's export wrote, or, with tree_dir NULL, from the
 * files it listed; either way through chk's cache (whose limits apply), so
 * only files whose bytes changed are parsed. On success the snapshot owns
 * the tree (the last unref removes it); on failure the caller still does. */
int sl_source__snapshot_new(enum sl_source_kind kind, const struct sl_source__check *chk,
                            const char *tree_dir, struct sl_source_snapshot **ret, struct sl_error *err);
