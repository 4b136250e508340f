/* sync: applies a snapshot of manifests to the cluster as the source of truth.
 * The pure core (planning, digests, inventory, prune decision, diff) takes its
 * inputs as arguments and is tested without a cluster; the engine at the end
 * of this header performs the I/O through kube.h on the event loop.
 *
 * Decisions worth knowing:
 * - sluice.dev/revision is left out of every comparison: an object the new
 *   revision does not change is not written, so its annotation keeps the
 *   revision that last changed it (not the latest one).
 * - The inventory ConfigMap sluice-inventory-<source id> lives in the
 *   namespace the caller names (sluice sync: --inventory-namespace, else the
 *   namespace sluice runs in, else the kubeconfig context's, else default).
 * - What left the source but was not pruned (prune off or blocked) stays in
 *   the inventory, so a later allowed prune still finds it; an object whose
 *   prune is refused on the live object (sluice.dev/prune: disabled, another
 *   source, no sluice label) is dropped from it and never touched again. */
#pragma once

#include "sluice/arcane.h"
#include "sluice/base-map.h"
#include "sluice/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* 96 bits as hex: change detection only (the source is trusted to describe the
 * cluster anyway), and short enough that 10,000 inventory entries fit a
 * ConfigMap's 1 MiB. */
#define SL_SYNC_DIGEST_HEX 24

/* Apply order. Prune runs the same stages backwards. */
enum sl_sync_stage {
	SL_SYNC_STAGE_CRD,       /* CustomResourceDefinitions, waited on until Established */
	SL_SYNC_STAGE_NAMESPACE, /* Namespaces */
	SL_SYNC_STAGE_CLASS,     /* StreamClass (cluster-scoped classes) */
	SL_SYNC_STAGE_CONFIG,    /* Secrets and ConfigMaps */
	SL_SYNC_STAGE_TEMPLATE,  /* StreamingJobTemplates */
	SL_SYNC_STAGE_STREAM,    /* everything else: streams and plain resources */
	SL_SYNC_STAGE_BACKFILL,  /* BackfillRequests */
	SL_SYNC_STAGE_COUNT
};

/* The stage of an object of this API group ("" for core) and kind. */
enum sl_sync_stage sl_sync_stage_of(const char *group, const char *kind);

/* ---- digests and projections (pure) -------------------------------------- */

/* Digests are SHA-256 of the JSON sl_manifest_json_go writes (keys sorted),
 * cut to SL_SYNC_DIGEST_HEX hex digits + NUL in out. The inventory stores
 * them: a change to what goes into one makes every object apply once more
 * after an upgrade. Each returns 0 or SL_ENOMEM. */

/* Digest of the desired object without the sluice.dev/revision annotation: a
 * new commit that leaves an object alone does not change its digest, so it
 * costs no write. */
int sl_sync_digest(const struct cJSON *desired, char out[static SL_SYNC_DIGEST_HEX + 1]);

/* The live object cut down to the fields the desired object sets (what sluice
 * manages), revision annotation left out. A field the live object lacks is
 * absent; arrays are cut element by element; extra live elements are kept so
 * that an array grown by hand shows. Returns a new tree (caller frees with
 * cJSON_Delete) or NULL on allocation failure. live may be NULL (-> {}). */
struct cJSON *sl_sync_project(const struct cJSON *desired, const struct cJSON *live);

/* Digest of what sluice last saw after applying: desired_digest (desired's
 * sl_sync_digest, which the item holds already) combined with the projection
 * of the live object onto desired. Recorded in the inventory after an apply
 * (live = the server's answer) and recomputed on a resync from the listed
 * live object: equal means neither the source nor the managed live fields
 * changed, whatever normalisation the server applies (e.g. "1000m" stored as
 * "1"), so a converged tree costs no write, and a `kubectl edit` of a managed
 * field changes the projection and is undone. */
int sl_sync_state_digest_from(const char *desired_digest, const struct cJSON *desired,
                              const struct cJSON *live, char out[static SL_SYNC_DIGEST_HEX + 1]);

/* The completed latch: when desired is a BackfillRequest and live has
 * spec.completed true, sets spec.completed true in desired. Returns true when
 * desired changed. */
bool sl_sync_latch_completed(struct cJSON *desired, const struct cJSON *live);

/* ---- planner (pure) --------------------------------------------------------- */

/* One desired object of a plan. Strings point into the plan; obj is owned by
 * the plan and already decorated (label and annotations). */
struct sl_sync_item {
	struct cJSON *obj;
	const char *api_version; /* "v1", "apps/v1" */
	char *group;             /* "" for the core group */
	char *version;
	const char *kind;
	const char *ns; /* NULL until known for cluster-scoped or defaulted objects */
	const char *name;
	char *file;
	int index; /* document index in the file, from 0 */
	int line;  /* line of the document start, from 1 */
	enum sl_sync_stage stage;
	char digest[SL_SYNC_DIGEST_HEX + 1];
};

/* A document the planner refused (missing kind or name, duplicate, ...). */
struct sl_sync_problem {
	char *file;
	int line;
	int index;
	char *kind; /* may be NULL */
	char *ns;   /* may be NULL */
	char *name; /* may be NULL */
	char *reason;
	int code; /* SL_E* */
};

struct sl_sync_plan {
	struct sl_sync_item *items; /* sorted by stage, then source order */
	size_t n_items;
	size_t stage_start[SL_SYNC_STAGE_COUNT + 1]; /* items of stage s: [start[s], start[s+1]) */
	struct sl_sync_problem *problems;
	size_t n_problems;
	char *source_id;
	char *revision;
	/* internal */
	size_t cap_items, cap_problems;
	bool finished;
	struct sl_map strings; /* items' groups and versions, each stored once */
};

int sl_sync_plan_new(const char *source_id, const char *revision, struct sl_sync_plan **ret);
void sl_sync_plan_free(struct sl_sync_plan *p); /* accepts NULL */
/* Adds one document; takes ownership of obj in every case. A document that
 * cannot be planned becomes a problem (not an error of the call); the call
 * fails only on allocation failure or after sl_sync_plan_finish. */
int sl_sync_plan_add(struct sl_sync_plan *p, struct cJSON *obj, const char *file, int index, int line);
/* Records a problem found before planning (a YAML error, an unreadable file). */
int sl_sync_plan_add_problem(struct sl_sync_plan *p, const char *file, int line, int index, int code,
                             const char *reason);
/* Records a problem about a planned object (a refused apply): file, line,
 * kind, namespace and name are taken from it. */
int sl_sync_plan_add_item_problem(struct sl_sync_plan *p, const struct sl_sync_item *it, int code,
                                  const char *reason);
/* The apply plan of a loaded set, finished: every document without errors is
 * planned, and every error of the set (file, line, reason) becomes a problem,
 * so a broken file blocks prune. snapshot_problems (may be NULL or "") are
 * problems of the snapshot itself, e.g. files the source left out
 * (sl_source_snapshot_problems); they count as errors too. */
struct sl_manifest_set;
int sl_sync_plan_from_manifests(const char *source_id, const char *revision,
                                const struct sl_manifest_set *set, const char *snapshot_problems,
                                struct sl_sync_plan **ret);
/* The same, moving the documents' objects out of set instead of copying
 * them (sl_manifest_set_take_obj), so that a large tree is never held
 * twice; set is then good only for sl_manifest_set_free. */
int sl_sync_plan_take_manifests(const char *source_id, const char *revision, struct sl_manifest_set *set,
                                const char *snapshot_problems, struct sl_sync_plan **ret);
/* Sorts into stages and flags duplicates. Call once, after the last add. */
int sl_sync_plan_finish(struct sl_sync_plan *p);
/* Sets the namespace of a namespaced object that had none and refreshes its
 * digest (the engine knows the scope only after discovery). */
int sl_sync_item_set_namespace(struct sl_sync_item *it, const char *ns);

/* ---- inventory (pure) ------------------------------------------------------- */

/* What one sync applied from a source: enough to find and delete an object
 * later, and the state digest to skip unchanged objects. */
struct sl_sync_inv_entry {
	char *group;   /* "" for core */
	char *version; /* the version it was applied with (not part of its identity) */
	char *kind;
	char *ns; /* "" for cluster-scoped */
	char *name;
	char digest[SL_SYNC_DIGEST_HEX + 1]; /* sl_sync_state_digest, "" when unknown */
};

struct sl_sync_inventory;

int sl_sync_inventory_new(struct sl_sync_inventory **ret);
void sl_sync_inventory_free(struct sl_sync_inventory *inv); /* accepts NULL */
size_t sl_sync_inventory_count(const struct sl_sync_inventory *inv);
const struct sl_sync_inv_entry *sl_sync_inventory_at(const struct sl_sync_inventory *inv, size_t i);
/* Adds or replaces (same group, kind, ns, name). ns NULL means "". digest may be NULL. */
int sl_sync_inventory_put(struct sl_sync_inventory *inv, const char *group, const char *version,
                          const char *kind, const char *ns, const char *name, const char *digest);
const struct sl_sync_inv_entry *sl_sync_inventory_find(const struct sl_sync_inventory *inv, const char *group,
                                                       const char *kind, const char *ns, const char *name);
/* Compact JSON: {"v":1,"o":{"<group>/<version>/<kind>":{"<ns>":{"<name>":"<digest>"}}}}.
 * About 60 bytes per object with 30-character names. */
int sl_sync_inventory_format(const struct sl_sync_inventory *inv, struct sl_buf *out);
int sl_sync_inventory_parse(const char *json, size_t len, struct sl_sync_inventory **ret,
                            struct sl_error *err);

/* ConfigMap data limit (1 MiB) minus room for keys and metadata. */
#define SL_SYNC_INVENTORY_MAX (1000 * 1024)
/* Per-object errors kept in the status; the count is always exact. */
#define SL_SYNC_STATUS_MAX_ERRORS 50
#define SL_SYNC_STATUS_MAX_REASON 400

/* The outcome of one sync, stored next to the inventory. */
struct sl_sync_status {
	char revision[128];
	int64_t start_s, end_s;
	const char *result; /* "ok", "failed", "source-error" */
	size_t applied, unchanged, failed, pruned, prune_skipped;
	const char *prune_blocked; /* NULL or why prune did not run */
	/* digest of what the sync decided (inventory, revision, result,
	 * errors): a resync with the same outcome skips the write */
	const char *outcome;
	const struct sl_sync_problem *errors;
	size_t n_errors;
};

/* Status as compact JSON; at most SL_SYNC_STATUS_MAX_ERRORS errors, reasons
 * cut to SL_SYNC_STATUS_MAX_REASON bytes. */
int sl_sync_status_format(const struct sl_sync_status *st, struct sl_buf *out);

/* The ConfigMap "sluice-inventory-<source id>" holding inventory and status
 * (data keys "inventory" and "status"), labelled as managed by sluice.
 * status_json may be NULL. Returns a new tree. */
struct cJSON *sl_sync_inventory_configmap(const char *source_id, const char *ns, const char *inventory_json,
                                          const char *status_json);
/* Reads back a ConfigMap as the API server returned it: the inventory of
 * data.inventory into *inv (empty when the ConfigMap has none) and the
 * outcome of data.status into *outcome (NULL when none; the caller frees
 * both). A damaged inventory is an error (SL_EINVALID with the reason in
 * err), never an empty one; a status that cannot be read only has no
 * outcome. */
int sl_sync_inventory_read(const struct cJSON *cm, struct sl_sync_inventory **inv, char **outcome,
                           struct sl_error *err);
/* Name of that ConfigMap into out; SL_EINVALID when the source id does not
 * make a valid object name. */
int sl_sync_inventory_name(const char *source_id, char *out, size_t outsz);

/* ---- prune decision (pure) ---------------------------------------------------- */

enum sl_sync_prune_block {
	SL_SYNC_PRUNE_ALLOWED,
	SL_SYNC_PRUNE_BLOCKED_SNAPSHOT, /* the snapshot had errors */
	SL_SYNC_PRUNE_BLOCKED_SOURCE,   /* the source could not be read */
	SL_SYNC_PRUNE_BLOCKED_EMPTY,    /* it would delete every object */
};
const char *sl_sync_prune_block_reason(enum sl_sync_prune_block b);

struct sl_sync_prune_opts {
	bool source_ok;
	size_t snapshot_errors;
	bool allow_empty;
};

/* Entries of prev absent from cur, in reverse dependency order (streams and
 * BackfillRequests before templates, before ConfigMaps, ..., CRDs last).
 * *ret_list holds pointers into prev (caller frees the array only). When
 * pruning is blocked, *ret_block says why and the list is empty. Anything not
 * in prev (e.g. controller-created Jobs) can never be in the list. */
int sl_sync_prune_plan(const struct sl_sync_inventory *prev, const struct sl_sync_inventory *cur,
                       const struct sl_sync_prune_opts *opts, const struct sl_sync_inv_entry ***ret_list,
                       size_t *ret_n, enum sl_sync_prune_block *ret_block);

/* Checks the live object right before deleting it: false when it is annotated
 * sluice.dev/prune: disabled, is not labelled as managed by sluice, or belongs
 * to another source (sluice.dev/source differs). why gets a short reason. */
bool sl_sync_prune_live_ok(const struct cJSON *live, const char *source_id, const char **why);

/* ---- diff (pure) ------------------------------------------------------------ */

/* A unified diff (---/+++ headers, @@ hunks, 3 lines of context) between the
 * live and the desired state of one object, both cut to the fields sluice
 * manages (see sl_sync_project) and rendered as YAML. Secret data and
 * stringData values are masked. live NULL means the object would be created.
 * Appends nothing and returns 0 when they agree; returns 1 when it wrote a
 * diff, or a negative code. */
int sl_sync_diff_object(const struct cJSON *desired, const struct cJSON *live, const struct cJSON *after,
                        const char *label, struct sl_buf *out);

/* ---- apply concurrency (pure) ------------------------------------------------ */

/* How many applies a stage keeps in flight, adapted to the API server as its
 * answers arrive, by TCP Vegas's rule on latency: while the latency of a
 * window of answers stays near the lowest seen, the server has room and the
 * limit grows; once latency grows with the limit, more requests only queue
 * in the server (and on a starved machine make it slower) and the limit
 * shrinks. A window is as many answers as the limit. */
struct sl_sync_limit {
	unsigned limit, min, max;
	uint64_t min_rtt_us; /* lowest window average seen; 0: none yet */
	uint64_t sum_rtt_us; /* of the current window */
	unsigned n;          /* answers in the current window */
};

/* Starts at initial, kept within [min, max] (min >= 1). */
void sl_sync_limit_init(struct sl_sync_limit *l, unsigned initial, unsigned min, unsigned max);
/* One answer took rtt_us: returns the limit from now on. */
unsigned sl_sync_limit_sample(struct sl_sync_limit *l, uint64_t rtt_us);

/* ---- the engine (I/O through kube.h, on the loop thread) ------------------ */

struct sl_kube;
struct sl_loop;

/* How far a run is, for a progress display: the objects of the plan, and
 * how many of them were decided so far (diff mode: applied = would change). */
struct sl_sync_progress {
	size_t planned;
	size_t applied, unchanged, failed;
	size_t pruned;
};
typedef void (*sl_sync_progress_fn)(const struct sl_sync_progress *p, void *payload);

struct sl_sync_opts {
	const char *source_id;    /* required: [a-z0-9.-], names the inventory */
	const char *inventory_ns; /* required: namespace of the inventory ConfigMap */
	bool prune;               /* delete what left the source */
	bool allow_empty_prune;   /* let a prune delete every object */
	bool dry_run;             /* server-side dry run: no write at all */
	/* Diff mode (implies dry_run): every object that would change gets a
	 * unified diff appended to diff_out, in plan order. */
	struct sl_buf *diff_out;
	/* Applies in flight within a stage: at most this many (0: 64), fewer
	 * while the API server's latency shows it saturated (sl_sync_limit). */
	unsigned concurrency;
	unsigned list_page;      /* live objects per list request; 0: 500 */
	unsigned crd_timeout_ms; /* wait for Established; 0: 60 s */
	/* Namespace for namespaced objects that name none; NULL: the client's
	 * configured namespace. */
	const char *default_ns;
	/* Called on the loop when a run starts and whenever an object is
	 * decided or pruned; NULL: none. */
	sl_sync_progress_fn progress;
	void *progress_payload;
};

/* Counters for /metrics; plain fields read on the loop thread. */
struct sl_sync_metrics {
	uint64_t syncs_ok, syncs_failed, syncs_source_error;
	uint64_t objects_applied;   /* applies that succeeded (dry runs not counted) */
	uint64_t objects_unchanged; /* skipped: desired and live already agreed */
	uint64_t objects_failed;
	uint64_t objects_pruned;
	int64_t last_sync_end;    /* wall clock, 0: never */
	int64_t last_success_end; /* of the last sync with result "ok"; 0: never */
};

/* Outcome of one run; valid during the done callback only. */
struct sl_sync_report {
	int code; /* 0: every document applied; SL_EINVALID: some did not; other: the sync could not run */
	const char *result; /* "ok", "failed", "source-error" */
	const char *revision;
	size_t applied, unchanged, failed, pruned, prune_skipped;
	size_t writes;             /* requests that changed (or, dry run, would change) the cluster */
	const char *prune_blocked; /* NULL when prune ran or was not asked for */
	const struct sl_sync_problem *problems; /* documents not applied, with file, line and reason */
	size_t n_problems;
	const char *error; /* when code is not 0 or SL_EINVALID: why the sync could not run */
	uint64_t duration_ms;
};

struct sl_sync;
typedef void (*sl_sync_done_fn)(struct sl_sync *s, const struct sl_sync_report *rep, void *payload);

/* Creates an engine on a kube client (borrowed; must outlive the engine).
 * Strings in opts are copied (diff_out is borrowed). */
int sl_sync_new(struct sl_loop *loop, struct sl_kube *kube, const struct sl_sync_opts *opts,
                struct sl_sync **ret, struct sl_error *err);
/* Cancels a run in flight (its done is not called) and frees. Accepts NULL. */
void sl_sync_free(struct sl_sync *s);

/* Applies a finished plan (taken, also on failure) in stages, prunes when
 * asked and allowed, writes the inventory and status, and records an Event
 * on the inventory ConfigMap for a failed sync and for a prune.
 * No-op cost: an object is applied only when its state digest (desired
 * object without the revision annotation + its live managed fields, see
 * sl_sync_state_digest) differs from the inventory's, so a resync of an
 * unchanged, converged tree sends no apply; the inventory ConfigMap is
 * written only when the outcome (inventory, revision, result, errors)
 * changed, so such a resync makes no write at all. Call it on every interval
 * to undo drift. plan NULL
 * means the source could not be read: nothing is applied or pruned and the
 * failure is recorded (source_error says why). done runs once, later, on
 * the loop. SL_EEXIST while a run is in flight. */
int sl_sync_run(struct sl_sync *s, struct sl_sync_plan *plan, const char *source_error, sl_sync_done_fn done,
                void *payload);
bool sl_sync_running(const struct sl_sync *s);
const struct sl_sync_metrics *sl_sync_get_metrics(const struct sl_sync *s);
