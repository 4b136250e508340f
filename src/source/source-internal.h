/* Internal contract between the files of the source module: the source
 * object, snapshots under construction, and the worker-side Git and
 * directory code. Not installed; unit tests include it. */
#pragma once

#include "sluice/base.h"
#include "sluice/loop.h"
#include "sluice/source.h"

struct git_state; /* worker-owned libgit2 state (git.c) */

/* A job handed to the worker. Fields are written by the worker and read by
 * the loop in done, never both at once. */
struct job {
	struct sl_source *src;
	struct job *next, *prev; /* the source's list of jobs whose done has not run */
	int kind;                /* JOB_CHECK, JOB_WRITEBACK */
	int code;
	struct sl_error err;
	struct sl_source_snapshot *snap; /* new snapshot, or NULL when unchanged */
	uint64_t started_ms;
	char prev_rev[80]; /* revision current when the job was submitted */
	/* that snapshot, referenced by the loop at submit and released in done:
	 * the worker only reads its (immutable) tree */
	struct sl_source_snapshot *prev_snap;
	struct sl_buf problems; /* Git: files left out of the snapshot, one per line */
	/* write-back */
	char *file;
	unsigned doc_index;
	char *name;
	sl_writeback_fn wb_done;
	void *wb_payload;
	char commit[41];
};

enum { JOB_CHECK, JOB_WRITEBACK };

struct sl_source {
	struct sl_loop *loop;
	struct sl_loop_worker *worker;
	sl_source_fn fn;
	void *payload;

	/* copied options */
	enum sl_source_kind kind;
	char *id, *url, *ref, *path, *username, *password_file, *ssh_key_file, *ssh_passphrase_file,
	    *known_hosts_file, *ca_file, *ca_dir, *author_name, *author_email, *dir;
	bool allow_http;
	uint64_t interval_ms, jitter_ms, timeout_ms, debounce_ms;
	size_t max_file_size, max_files;

	char *cache_dir;
	bool cache_owned; /* we created it: removed on free */
	char *trees_dir;  /* cache_dir/trees: one directory per snapshot */
	unsigned long seq;

	struct sl_source_snapshot *current;
	struct sl_loop_timer *timer;
	uint64_t backoff_ms;
	bool started, running, again;
	struct job *jobs;
	struct sl_source_stats stats;

	struct git_state *git; /* touched only by worker jobs (and free after join) */

	/* directory watching (loop thread) */
	int ifd;
	int parent_wd;
	void *parent_wds;    /* struct wds of dir.c: the watch descriptors we hold */
	char *parent, *base; /* dirname and basename of dir */
	bool dirty;
};

/* snapshot.c */
int sl_source__snapshot_new(struct sl_source *src, const char *revision, const char *tree_dir,
                            const char *subdir, size_t files, const char *problems,
                            struct sl_source_snapshot **ret, struct sl_error *err);
/* Removes a directory tree (no symlinks followed). */
int sl_source__rm_rf(const char *path);
/* mkdir -p */
int sl_source__mkdir_p(const char *path, int mode);
/* A fresh directory name under src->trees_dir (not created). */
char *sl_source__tree_path_new(struct sl_source *src, const char *tag);

/* git.c. Host, port and user of a Git URL: scheme://[user[:pass]@]host[:port]/path
 * or scp-style [user@]host:path (port 22); host "" for local paths. Pure. */
void sl_source__url_host(const char *url, char *host, size_t hostsz, int *port, char *user, size_t usersz);

/* git.c, on the worker */
void sl_source__git_check(struct job *j);
void sl_source__git_writeback(struct job *j);
void sl_source__git_state_free(struct git_state *g);

/* dir.c */
void sl_source__dir_scan(struct job *j); /* worker */
int sl_source__dir_watch_start(struct sl_source *src, struct sl_error *err);
void sl_source__dir_watch_stop(struct sl_source *src);
void sl_source__dir_watch_resync(struct sl_source *src);

/* source.c */
/* Is s a full commit id (40 lowercase hex digits)? Pure. */
bool sl_source__is_sha(const char *s);
void sl_source__schedule_check(struct sl_source *src, uint64_t delay_ms);
