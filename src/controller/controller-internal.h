/* controller internals shared by the controller's files: a string-keyed map
 * that owns its values (sluice/base-map.h plus a destructor). */
#pragma once

#include "sluice/base-map.h"

#include <stdbool.h>
#include <stddef.h>

/* Keys are copied; values are owned by the map when free_val is given. */
struct sl_controller__map {
	struct sl_map m;
	void (*free_val)(void *);
};

void sl_controller__map_init(struct sl_controller__map *m, void (*free_val)(void *));
void sl_controller__map_free(struct sl_controller__map *m);
void *sl_controller__map_get(const struct sl_controller__map *m, const char *key);
/* Inserts or replaces (the old value is freed). 0 or SL_ENOMEM (val not taken). */
int sl_controller__map_put(struct sl_controller__map *m, const char *key, void *val);
/* Removes key (its value freed); true when it was there. */
bool sl_controller__map_del(struct sl_controller__map *m, const char *key);
/* Calls fn for every entry; fn must not change the map. */
void sl_controller__map_foreach(const struct sl_controller__map *m,
                                void (*fn)(const char *key, void *val, void *payload), void *payload);

/* ---- the controller's state (controller.c, controller-exec.c) ---------------- */

#include "sluice/arcane.h"
#include "sluice/controller.h"
#include "sluice/loop-workqueue.h"

#include <cjson/cJSON.h>

/* Informers of one kind, one per watched namespace (one for all when no
 * namespace is given). */
struct iset {
	size_t n;
	struct sl_kube_informer **inf;
};

/* A callback's handle on a class, cleared when the class goes first. */
struct dtoken {
	struct klass *kl;
};

enum kstate { K_RESOLVING, K_WATCHING, K_FAILED };

struct klass {
	struct sl_controller *c;
	struct klass *next;
	char *name;
	char *group, *version, *kind, *plural; /* spec as last seen */
	char api_version[320];
	enum kstate state;
	struct iset streams;
	struct dtoken *tok;        /* discovery in flight */
	struct dtoken *status_tok; /* status write in flight */
	struct sl_loop_timer *retry, *status_retry;
	uint64_t backoff;
	/* The status we want, and the last one written or seen. */
	char phase[16], reason[64], message[1200];
	char written[1400];
};

/* Our writes a stream waits to see in the caches (see controller.c). */
struct sstate {
	struct {
		char id[320]; /* "J/ns/name", "B/ns/name", "S/ns/name" */
		char rv[64];
	} e[8];
	size_t n;
	uint64_t deadline;
};

/* BackfillRequest names of one stream ("ns/streamId"). */
struct names {
	char **v;
	size_t n, cap;
};

struct exec;

struct sl_controller {
	struct sl_loop *loop;
	struct sl_kube *k;
	struct sl_controller_opts opts;
	char **ns;
	size_t n_ns;
	struct sl_loop_workqueue *wq;
	struct sl_kube_informer *classes_inf;
	struct klass *classes;
	struct iset templates, backfills, jobs, cronjobs;
	struct sl_controller__map bfr_index; /* "ns/streamId" -> struct names */
	struct sl_controller__map gone;      /* "ns/jobname" -> cJSON, last state of a deleted Job */
	struct sl_controller__map sstate;    /* stream key -> struct sstate */
	struct sl_controller__map warned; /* "ns/name" of a BackfillRequest -> resourceVersion warned about */
	struct exec *execs;               /* reconciles in flight */
	size_t in_flight;
	bool stopping, pumping;
	void (*stop_done)(void *);
	void *stop_payload;
	sl_controller_writeback_fn wb_fn;
	void *wb_payload;
	struct sl_controller_metrics metrics;
};

const cJSON *sl_controller__iset_get(const struct sl_controller *c, const struct iset *s, const char *ns,
                                     const char *name);
void sl_controller__enqueue(struct sl_controller *c, const char *kind, const char *ns, const char *name);
/* Records that stream key waits for object id at the resourceVersion of
 * body (unless cached already holds it). */
void sl_controller__expect(struct sl_controller *c, const char *key, const char *id, const cJSON *cached,
                           const cJSON *body);
struct klass *sl_controller__class_by_kind(struct sl_controller *c, const char *kind);
/* The template a layout reference names, from the cache, or NULL. */
const cJSON *sl_controller__template(struct sl_controller *c, const struct sl_arcane_ref *ref);
const struct names *sl_controller__bfr_names(struct sl_controller *c, const char *ns, const char *stream);
void sl_controller__check_stopped(struct sl_controller *c);
bool sl_controller__shared_synced(const struct sl_controller *c);

/* controller-exec.c */
void sl_controller__pump(struct sl_controller *c);
/* Detaches reconciles in flight from a controller being freed. */
void sl_controller__exec_orphan_all(struct sl_controller *c);
