/* Internal contract between the files of the Git backend: its state, one
 * network operation and its callbacks' verdict, and the steps a check and a
 * write-back are made of. Everything here runs on the source's worker,
 * except the pure helpers. Not installed; unit tests include it. */
#pragma once

#include <git2.h>
#include <time.h>

/* meson.build asks for the same: git_remote_connect_ext() and
 * GIT_REMOTE_REDIRECT_NONE first appear in libgit2 1.4. */
#if LIBGIT2_VER_MAJOR < 1 || (LIBGIT2_VER_MAJOR == 1 && LIBGIT2_VER_MINOR < 4)
#error "libgit2 1.4 or newer is required"
#endif

#include "source-internal.h"

/* The Git backend: options copied at creation (read only after), and the
 * bare clone in the cache directory, touched by worker jobs only. */
struct sl_source__git {
	struct sl_source__backend base;
	char *url, *ref, *path, *username, *password_file, *ssh_key_file, *ssh_passphrase_file,
	    *known_hosts_file, *ca_file, *ca_dir, *author_name, *author_email;
	uint64_t timeout_ms;
	size_t max_file_size, max_files;

	git_repository *repo;
	bool damaged; /* an export found the clone damaged: the next refresh clones again */ /* NULL until the first job opens it */
	char *repo_path;
};

/* One network operation: what libgit2's callbacks need, and their verdict. */
struct sl_source__git_op {
	struct sl_source__git *g;
	uint64_t deadline;
	int cred_calls;
	int code; /* set by a callback that refused */
	char msg[512];
	char host[256];
	bool host_invalid; /* the URL's host did not fit: callbacks refuse */
	int port;
	/* the watchdog interrupting a stalled system call (git-remote.c) */
	timer_t timer;
	bool timer_armed;
	/* push */
	bool rejected;
	char reject_msg[256];
};

/* What the configured ref names on the remote. */
struct sl_source__git_target {
	git_oid oid;       /* the commit (peeled) */
	char refname[300]; /* remote ref it came from; "" for a SHA */
	char branch[300];  /* branch name when the ref is a branch */
	bool have;         /* the commit is in the cache already */
};

/* ---- git-remote.c: network operations ----------------------------------------- */

/* Starts an operation: takes the CA lock for g's CA locations, sets the
 * deadline and arms the watchdog. Every begin has an end. */
void sl_source__git_op_begin(struct sl_source__git_op *op, struct sl_source__git *g);
void sl_source__git_op_end(struct sl_source__git_op *op);
/* libgit2's remote callbacks, all answering to op. */
void sl_source__git_callbacks_init(git_remote_callbacks *cb, struct sl_source__git_op *op);
/* An in-memory remote for url (no insteadOf rewriting, no default refspec). */
int sl_source__git_remote_new(git_remote **ret, git_repository *repo, const char *url);
/* Records a libgit2 failure gerr of the step `what` in err: op's callback
 * verdict when it had one (op may be NULL), else libgit2's message, with
 * the URL's credentials removed. The code comes from gerr and libgit2's
 * error class, never from the message. Returns the SL_E* code. */
int sl_source__git_fail(const struct sl_source__git *g, const struct sl_source__git_op *op, int gerr,
                        const char *what, struct sl_error *err);
/* Connects, lists the remote's refs, picks the configured ref and downloads
 * its commit unless the cache has it. */
int sl_source__git_fetch(struct sl_source__git_op *op, struct sl_source__git_target *t, struct sl_error *err);

/* Pure: picks the configured ref (NULL: the remote's HEAD, else "main")
 * among the remote's refs: a full SHA as is, "refs/..." as named, a plain
 * name as a branch, else a tag (peeled). Fills t (without have) and the
 * refspec that downloads it; SL_ENOTFOUND when the remote lacks it. */
int sl_source__git_pick_ref(const char *ref, const git_remote_head *const *heads, size_t n,
                            struct sl_source__git_target *t, char *spec, size_t specsz, struct sl_error *err);
/* Pure: host, port and user of a Git URL: scheme://[user[:pass]@]host[:port]/path
 * or scp-style [user@]host:path (port 22); host "" for local paths.
 * SL_EINVALID (host and user "") when the host or user does not fit. */
int sl_source__url_host(const char *url, char *host, size_t hostsz, int *port, char *user, size_t usersz);
/* Pure: copies in to out (outsz bytes, more than 4) with every occurrence
 * of needle replaced by with. SL_ETOOLARGE when the result does not fit:
 * out then ends in "..." after what fit, and holds no part of a needle. */
int sl_source__scrub(const char *in, const char *needle, const char *with, char *out, size_t outsz);
/* Pure: is s a full commit id (40 lowercase hex digits)? */
bool sl_source__git_is_sha(const char *s);

/* ---- git-export.c: a revision's files into a snapshot tree ---------------------- */

/* The export op's work: writes the files of commit chk->rev (of the
 * configured subdirectory) into dir. */
int sl_source__git_export(struct sl_source__git *g, struct sl_source__check *chk, const char *dir,
                          struct sl_error *err);

/* ---- git-writeback.c ------------------------------------------------------------- */

/* The write_back op's work on an open repository: fetch, edit, commit,
 * push, retried with backoff while another writer moves the branch. */
int sl_source__git_writeback(struct sl_source__git *g, struct sl_source__writeback *wb, struct sl_error *err);
