/* source: where manifests come from. A Git repository (libgit2, every call on
 * the source's own worker thread) or a directory watched with inotify yields
 * snapshots: a revision id plus an immutable directory tree holding exactly
 * the files of that revision. Git sources can also write a completed
 * BackfillRequest back as a commit (write-back). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/base.h"

struct sl_loop;
struct sl_source;
struct sl_source_snapshot;
struct sl_manifest_set;

enum sl_source_kind {
	SL_SOURCE_GIT,
	SL_SOURCE_DIR,
};

/* Options of a source. Strings are copied by sl_source_new; the caller keeps
 * ownership of what it passes. Start from SL_SOURCE_OPTIONS_INIT. */
struct sl_source_options {
	enum sl_source_kind kind;
	/* Short name used in error messages (e.g. the --source-id); may be NULL. */
	const char *id;
	/* Private working area: the Git clone and the snapshot trees live here.
	 * NULL: a fresh directory under $TMPDIR (or /tmp), removed by free. A
	 * given directory is created when missing and reused across restarts
	 * (a corrupt clone in it is cloned again). */
	const char *cache_dir;
	/* Files larger than this are left out of a snapshot (reported in
	 * sl_source_snapshot_problems); 0: 4 MiB. Also bounds the file edited by
	 * write-back. */
	size_t max_file_size;
	/* A directory snapshot holding more files fails; 0: 100000. */
	size_t max_files;

	/* ---- Git ---- */
	/* https://, http:// (refused unless allow_http), ssh://, scp-style
	 * user@host:path, file:// (and a plain absolute path, read as file://).
	 * Credentials are only given to this URL's host: redirects to another
	 * host are not followed, and the credential callback checks the host. */
	const char *url;
	/* Branch name, tag name (refs/tags/X or a plain name that is a tag) or a
	 * full 40-hex commit SHA; NULL: the branch "main", else the remote HEAD. */
	const char *ref;
	/* Subdirectory of the repository that holds the manifests; NULL: the root. */
	const char *path;
	/* Fetch interval (default 60 s) and the jitter added to it (default 10 %
	 * of the interval). Failures retry with exponential backoff, starting at
	 * 1 s and capped at the interval. */
	uint64_t interval_ms;
	uint64_t jitter_ms;
	/* Deadline of one clone/fetch/push (default 120 s): past it the
	 * operation fails with SL_ETIMEOUT. libgit2 1.5.1 has no socket timeout
	 * (GIT_OPT_SET_SERVER_TIMEOUT came in 1.7), so the deadline is checked
	 * in libgit2's callbacks, and a per-thread timer signal (SIGRTMIN+3,
	 * whose handler this module installs) interrupts a system call the
	 * worker is blocked in, which ends stalled HTTPS transfers. Known gap: a
	 * silent SSH server at the banner stage is not cut (libssh2 retries
	 * that read on EINTR); the kernel's TCP timeouts end it.
	 * Shallow fetches do not exist in libgit2 1.5 (depth came in 1.7):
	 * the first fetch gets the ref's whole history, later ones only what
	 * is new. */
	uint64_t timeout_ms;
	/* HTTPS basic auth: the password or token is read from password_file
	 * before every network operation, so a rotated file needs no restart. */
	const char *username;
	const char *password_file;
	/* SSH: private key file, optional file holding its passphrase, and the
	 * known_hosts file that every host key is checked against (required for
	 * ssh URLs: there is no "accept unknown" mode). The check is ours
	 * (sl_source_known_hosts_check), never libgit2's fallback to
	 * ~/.ssh/known_hosts. The user comes from the URL, else "git". */
	const char *ssh_key_file;
	const char *ssh_passphrase_file;
	const char *known_hosts_file;
	/* HTTPS: a CA bundle file and/or directory (else the system store). The
	 * setting is process-wide in libgit2: sources with different CAs in one
	 * process take turns (a lock), sources with the same CA run together. */
	const char *ca_file;
	const char *ca_dir;
	bool allow_http;
	/* Write-back commit author; NULL: "sluice" <sluice@localhost>. */
	const char *author_name;
	const char *author_email;

	/* ---- Directory ---- */
	/* The watched root. It may itself be a symlink that is swapped (git-sync
	 * --link) and may vanish and come back. */
	const char *dir;
	/* Quiet time after the last change before a snapshot is taken (default
	 * 200 ms), so a burst of edits gives one snapshot. */
	uint64_t debounce_ms;
};

#define SL_SOURCE_OPTIONS_INIT        \
	{                             \
		.kind = SL_SOURCE_GIT \
	}

/* ---- snapshots ------------------------------------------------------------ */

/* A snapshot is reference counted and immutable. Its tree is a private copy
 * that nothing writes to while a reference exists; the last unref deletes it. */
struct sl_source_snapshot *sl_source_snapshot_ref(struct sl_source_snapshot *s);
void sl_source_snapshot_unref(struct sl_source_snapshot *s); /* accepts NULL */

/* Commit SHA (40 hex) for Git; for a directory "sha256:<hex>" of the content
 * (relative paths and bytes of every file): equal content, equal id. */
const char *sl_source_snapshot_revision(const struct sl_source_snapshot *s);
/* Absolute path of the tree to load manifests from (Git: the checkout with
 * the configured subdirectory applied). Valid while the snapshot is held. */
const char *sl_source_snapshot_root(const struct sl_source_snapshot *s);
/* The source's kind and id (may be NULL). */
enum sl_source_kind sl_source_snapshot_kind(const struct sl_source_snapshot *s);
/* Number of files in the tree (Git: every file of the (sub)tree; directory:
 * the *.yaml and *.yml files copied, hidden entries excluded). */
size_t sl_source_snapshot_files(const struct sl_source_snapshot *s);
/* Problems met while taking the snapshot that did not stop it (a file over
 * the size limit, a symlink leaving the root), one per line; "" when none.
 * Such files are absent from the tree, so a consumer must treat a snapshot
 * with problems as one with errors (no prune). */
const char *sl_source_snapshot_problems(const struct sl_source_snapshot *s);
/* Wall-clock time the snapshot was taken. */
int64_t sl_source_snapshot_time(const struct sl_source_snapshot *s);
/* The manifests loaded from the tree (sl_manifest_load_dir on the root:
 * documents with file, index and line relative to the root, and the load
 * and validation problems). Owned by the snapshot, valid while it is held;
 * read-only. */
const struct sl_manifest_set *sl_source_snapshot_manifests(const struct sl_source_snapshot *s);

/* ---- sources ---------------------------------------------------------------- */

enum sl_source_event_type {
	SL_SOURCE_EVENT_SNAPSHOT,  /* a new revision became current */
	SL_SOURCE_EVENT_UNCHANGED, /* a check (fetch, rescan) found nothing new */
	SL_SOURCE_EVENT_ERROR,     /* a check failed; the current snapshot stays */
};

struct sl_source_event {
	enum sl_source_event_type type;
	/* The current snapshot (NULL before the first success). Borrowed: take
	 * sl_source_snapshot_ref() to keep it past the callback. */
	struct sl_source_snapshot *snapshot;
	/* For ERROR: code and message, with no credentials in it. */
	const struct sl_error *error;
};

/* Called on the loop thread. The source must not be freed from inside it. */
typedef void (*sl_source_fn)(struct sl_source *src, const struct sl_source_event *ev, void *payload);

/* Creates a source; nothing happens until sl_source_start(). Validates the
 * options (SL_EINVALID with a reason in err). */
int sl_source_new(struct sl_loop *loop, const struct sl_source_options *opts, sl_source_fn fn, void *payload,
                  struct sl_source **ret, struct sl_error *err);
/* Git: clone or open the cache, then fetch on the interval. Directory: start
 * watching and take the first snapshot. */
int sl_source_start(struct sl_source *src, struct sl_error *err);
/* Checks now (a webhook, a command): Git fetches, a directory rescans. A
 * check already running absorbs the request. */
void sl_source_trigger(struct sl_source *src);
/* The current snapshot, borrowed (NULL before the first success). */
struct sl_source_snapshot *sl_source_current(struct sl_source *src);
/* Stops, waits for the worker's running job, frees. Snapshots handed out
 * stay valid until unreferenced. Write-backs still queued are dropped
 * without their callback (one running finishes, its callback not called
 * either). Accepts NULL. */
void sl_source_free(struct sl_source *src);

/* Counters for /metrics. */
struct sl_source_stats {
	uint64_t checks; /* fetches or rescans attempted */
	uint64_t check_failures;
	uint64_t snapshots;  /* new revisions taken */
	uint64_t writebacks; /* write-back commits pushed */
	uint64_t writeback_failures;
	uint64_t last_check_ms; /* duration of the last check */
	int64_t last_success;   /* wall clock of the last good check, 0: never */
};
void sl_source_stats(const struct sl_source *src, struct sl_source_stats *ret);

/* ---- write-back (Git sources) ---------------------------------------------- */

/* Result of a write-back. code is 0 when a commit was pushed (commit holds
 * its SHA) or the document already said completed: true (commit "");
 * SL_ENOTFOUND when the file or document is gone (skipped: nothing pushed);
 * another code on failure. err has the reason. */
typedef void (*sl_writeback_fn)(struct sl_source *src, int code, const char *commit,
                                const struct sl_error *err, void *payload);

/* Marks the BackfillRequest `name` completed in the repository: the document
 * at doc_index (0-based) of file (relative to the snapshot root, i.e. to the
 * configured subdirectory) gets `spec.completed: true`, only those bytes
 * changing. The document is found by index, or, when that document is no
 * longer a BackfillRequest of that name, by searching the file. Runs on the
 * worker: fetch, edit on the head of the branch, commit, push; a rejected
 * push is fetched and re-applied with backoff (up to 6 attempts). Needs a
 * branch ref (SL_EUNSUPPORTED for a tag or a SHA, or a directory source). */
int sl_source_write_back(struct sl_source *src, const char *file, unsigned doc_index, const char *name,
                         sl_writeback_fn done, void *payload);

/* ---- pure helpers (exported for tests and tools) ------------------------------- */

/* In-place edit of a YAML stream: in the document at doc_index (or, when that
 * is not a BackfillRequest named `name`, the one that is), sets
 * spec.completed to true. Only the bytes of that scalar change; a document
 * without the field gets "completed: true" as the first key of spec, with
 * the indentation of its siblings. *out (initialised by the call, owned by
 * the caller) gets the new text. Returns 0 when changed, SL_EEXIST when it
 * was already true (out unset), SL_ENOTFOUND when no such document,
 * SL_EINVALID when the YAML or the document's shape is not editable: text
 * not in UTF-8, a merge key (<<) in the document or its spec, a
 * spec.completed that is an alias or a collection, a spec whose first key
 * does not start its line ("? key") or that has a collection as a key. */
int sl_source_yaml_complete(const char *text, size_t len, unsigned doc_index, const char *name,
                            struct sl_buf *out, struct sl_error *err);

/* Checks an SSH host key against known_hosts text (OpenSSH format: plain
 * and hashed |1|salt|hash host names, [host]:port, comma lists, negation
 * "!host", @revoked; @cert-authority lines are ignored). keytype is the
 * key's name ("ssh-ed25519", "ecdsa-sha2-nistp256", ...), key its raw blob.
 * Returns 0 when a line of that host and key type has that key,
 * SL_ENOTFOUND when the host is unknown, SL_EFORBIDDEN when the host is
 * known with other keys (a changed key) or the key is revoked, SL_EINVALID
 * when host (with its [..]:port) is longer than 299 bytes. */
int sl_source_known_hosts_check(const char *text, size_t len, const char *host, int port, const char *keytype,
                                const uint8_t *key, size_t keylen, struct sl_error *err);
