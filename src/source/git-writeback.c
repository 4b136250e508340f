/* The Git backend's write-back: on the head of the branch, the one scalar
 * of a BackfillRequest edited (sl_source_yaml_complete), committed and
 * pushed; a push that another writer beat is fetched and redone. */
#include "git-internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define ATTEMPTS 6

/* One attempt's edit: the head it starts from, the file in it, the new
 * content and the commit made of it. */
struct edit {
	git_commit *head;
	git_tree *tree;        /* head's */
	git_tree_entry *entry; /* the file in tree */
	char *path;            /* the file's path in the repository */
	struct sl_buf text;
	git_oid commit;
};

static void edit_free(struct edit *ed)
{
	sl_buf_free(&ed->text);
	free(ed->path);
	git_tree_entry_free(ed->entry);
	git_tree_free(ed->tree);
	git_commit_free(ed->head);
}

/* The repository path of a local remote (file:// or a plain path), else NULL. */
static const char *local_path(const char *url)
{
	if (sl_str_has_prefix(url, "file://"))
		return url + strlen("file://");
	if (url[0] == '/')
		return url;
	return NULL;
}

/* Moves refs/heads/<branch> of a local remote from expect to oid, only if
 * it still is expect (git_reference_create_matching takes git's lock). */
static int local_cas(const struct sl_source__git *g, const char *path, const char *branch, const git_oid *oid,
                     const git_oid *expect, struct sl_error *err)
{
	git_repository *rr = NULL;
	git_reference *ref = NULL;
	char name[400];
	int r;

	r = git_repository_open_bare(&rr, path);
	if (r < 0)
		return sl_source__git_fail(g, NULL, r, "open remote", err);
	snprintf(name, sizeof(name), "refs/heads/%s", branch);
	r = git_reference_create_matching(&ref, rr, name, oid, 1, expect, "sluice write-back");
	if (r == GIT_EMODIFIED || r == GIT_ELOCKED)
		r = sl_error_set(err, SL_ECONFLICT, "push rejected: %s moved meanwhile", name);
	else if (r < 0)
		r = sl_source__git_fail(g, NULL, r, "update remote branch", err);
	git_reference_free(ref);
	if (git_reference_lookup(&ref, rr, "refs/sluice/incoming") == 0) {
		git_reference_delete(ref);
		git_reference_free(ref);
	}
	git_repository_free(rr);
	return r < 0 ? r : 0;
}

/* Finds the file on the head t and edits it into ed->text. SL_EEXIST: the
 * document says completed already; SL_ENOTFOUND: the file or document is
 * gone. */
static int edit_file(struct sl_source__git *g, const struct sl_source__git_target *t,
                     const struct sl_source__writeback *wb, struct edit *ed, struct sl_error *err)
{
	git_blob *blob = NULL;
	int r;

	ed->path = g->path ? sl_asprintf("%s/%s", g->path, wb->file) : sl_strdup(wb->file);
	if (!ed->path)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	r = git_commit_lookup(&ed->head, g->repo, &t->oid);
	if (r >= 0)
		r = git_commit_tree(&ed->tree, ed->head);
	if (r < 0)
		return sl_source__git_fail(g, NULL, r, "head", err);
	r = git_tree_entry_bypath(&ed->entry, ed->tree, ed->path);
	if (r < 0 || git_tree_entry_type(ed->entry) != GIT_OBJECT_BLOB)
		return sl_error_set(err, SL_ENOTFOUND, "%s: no longer in branch %s, skipped", ed->path,
		                    t->branch);
	r = git_blob_lookup(&blob, g->repo, git_tree_entry_id(ed->entry));
	if (r < 0)
		return sl_source__git_fail(g, NULL, r, "blob", err);
	if ((size_t)git_blob_rawsize(blob) > g->max_file_size) {
		r = sl_error_set(err, SL_ETOOLARGE, "%s: over the size limit", ed->path);
	} else {
		r = sl_source_yaml_complete(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob),
		                            wb->doc_index, wb->name, &ed->text, err);
		if (r == SL_ENOTFOUND)
			sl_error_prefix(err, "%s: skipped", ed->path);
		else if (r < 0 && r != SL_EEXIST)
			sl_error_prefix(err, "%s", ed->path);
	}
	git_blob_free(blob);
	return r;
}

/* Commits ed->text on ed->head as ed->commit, and points our own ref
 * refs/sluice/writeback at it for the push. */
static int commit_edit(struct sl_source__git *g, const struct sl_source__writeback *wb, struct edit *ed,
                       struct sl_error *err)
{
	git_repository *repo = g->repo;
	git_oid blob_oid, tree_oid;
	git_tree_update upd;
	git_tree *newtree = NULL;
	git_signature *sig = NULL;
	git_reference *ref = NULL;
	_cleanup_free_ char *msg = NULL;
	int r;

	r = git_blob_create_from_buffer(&blob_oid, repo, ed->text.data, ed->text.len);
	if (r < 0)
		return sl_source__git_fail(g, NULL, r, "blob", err);
	memset(&upd, 0, sizeof(upd));
	upd.action = GIT_TREE_UPDATE_UPSERT;
	git_oid_cpy(&upd.id, &blob_oid);
	upd.filemode = git_tree_entry_filemode(ed->entry);
	upd.path = ed->path;
	r = git_tree_create_updated(&tree_oid, repo, ed->tree, 1, &upd);
	if (r >= 0)
		r = git_tree_lookup(&newtree, repo, &tree_oid);
	if (r < 0)
		return sl_source__git_fail(g, NULL, r, "tree", err);
	r = git_signature_now(&sig, g->author_name, g->author_email);
	if (r < 0) {
		r = sl_source__git_fail(g, NULL, r, "author", err);
		goto out;
	}
	msg =
	    sl_asprintf("Complete BackfillRequest %s\n\nsluice marked BackfillRequest %s (%s) as completed: "
	                "its backfill job succeeded.\n",
	                wb->name, wb->name, ed->path);
	if (!msg) {
		r = sl_error_set(err, SL_ENOMEM, "out of memory");
		goto out;
	}
	r = git_commit_create(&ed->commit, repo, NULL, sig, sig, "UTF-8", msg, newtree, 1,
	                      (const git_commit **)&ed->head);
	if (r < 0) {
		r = sl_source__git_fail(g, NULL, r, "commit", err);
		goto out;
	}
	r = git_reference_create(&ref, repo, "refs/sluice/writeback", &ed->commit, 1, NULL);
	if (r < 0)
		r = sl_source__git_fail(g, NULL, r, "reference", err);
out:
	git_reference_free(ref);
	git_signature_free(sig);
	git_tree_free(newtree);
	return r < 0 ? r : 0;
}

/* Pushes ed->commit to the branch of t. SL_ECONFLICT: the branch moved
 * since t was fetched. */
static int push(struct sl_source__git_op *op, const struct sl_source__git_target *t, const struct edit *ed,
                struct sl_error *err)
{
	struct sl_source__git *g = op->g;
	const char *local = local_path(g->url);
	git_push_options popts = GIT_PUSH_OPTIONS_INIT;
	git_remote *remote = NULL;
	char spec[400];
	char *specs[1] = {spec};
	git_strarray refspecs = {specs, 1};
	int r;

	r = sl_source__git_remote_new(&remote, g->repo, g->url);
	if (r < 0)
		return sl_source__git_fail(g, op, r, "remote", err);
	/* libgit2's local transport moves the remote ref without checking
	 * its old value, which would drop a commit pushed meanwhile; so for
	 * a local remote the objects go to a side ref and the branch is
	 * moved by a compare-and-swap under git's ref lock. */
	if (local)
		snprintf(spec, sizeof(spec), "+refs/sluice/writeback:refs/sluice/incoming");
	else
		snprintf(spec, sizeof(spec), "refs/sluice/writeback:refs/heads/%s", t->branch);
	sl_source__git_callbacks_init(&popts.callbacks, op);
	popts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	op->rejected = false;
	op->cred_calls = 0; /* a new connection asks for credentials again */
	r = git_remote_push(remote, &refspecs, &popts);
	if (r == GIT_ENONFASTFORWARD || (r >= 0 && op->rejected)) {
		r = sl_error_set(err, SL_ECONFLICT, "push rejected: %s",
		                 op->rejected ? op->reject_msg : "not a fast-forward");
	} else if (r < 0) {
		/* libgit2 returns GIT_ENONFASTFORWARD (handled above) for a stale
		 * ref, "not present locally" included; the rest map by class. */
		r = sl_source__git_fail(g, op, r, "push", err);
	} else if (local) {
		r = local_cas(g, local, t->branch, &ed->commit, &t->oid, err);
	}
	git_remote_free(remote);
	return r < 0 ? r : 0;
}

/* One attempt: fetch the head of the branch, edit the file on it, commit,
 * push. Returns 0 (pushed, or nothing to do), SL_ECONFLICT to retry, or a
 * code. */
static int writeback_once(struct sl_source__git_op *op, struct sl_source__writeback *wb, struct sl_error *err)
{
	struct sl_source__git_target t;
	struct edit ed = {0};
	int r;

	r = sl_source__git_fetch(op, &t, err);
	if (r < 0)
		return r;
	if (!t.branch[0])
		return sl_error_set(err, SL_EUNSUPPORTED, "write-back needs a branch; %s is not one",
		                    t.refname);
	r = edit_file(op->g, &t, wb, &ed, err);
	if (r == SL_EEXIST) {
		/* already completed on the head: nothing to commit */
		sl_error_clear(err);
		r = 0;
		goto out;
	}
	if (r >= 0)
		r = commit_edit(op->g, wb, &ed, err);
	if (r >= 0)
		r = push(op, &t, &ed, err);
	if (r >= 0)
		git_oid_tostr(wb->commit, sizeof(wb->commit), &ed.commit);
out:
	edit_free(&ed);
	return r;
}

int sl_source__git_writeback(struct sl_source__git *g, struct sl_source__writeback *wb, struct sl_error *err)
{
	struct sl_source__git_op op;
	uint64_t delay = 100;
	int r = SL_EINTERNAL;

	for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
		sl_error_clear(err);
		sl_source__git_op_begin(&op, g);
		r = writeback_once(&op, wb, err);
		sl_source__git_op_end(&op);
		if (r != SL_ECONFLICT && r != SL_EUNAVAILABLE)
			break;
		if (attempt + 1 < ATTEMPTS) {
			/* another writer moved the branch: back off, fetch, redo */
			uint64_t ms = delay + sl_rand_between(0, delay);
			struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
			nanosleep(&ts, NULL);
			delay *= 2;
		}
	}
	if (r < 0 && !err->msg[0])
		sl_error_set(err, r, "write-back failed");
	return r;
}
