/* lease: leader election on a coordination.k8s.io/v1 Lease through the kube
 * client, on the event loop (the algorithm of client-go's leaderelection:
 * optimistic concurrency on the Lease's resourceVersion, expiry judged by the
 * local monotonic clock from when a record was last seen to change, so clock
 * skew between replicas does not matter). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/base.h"

struct sl_kube;
struct sl_loop;
struct sl_kube_lease;
struct cJSON;

struct sl_kube_lease_opts {
	const char *ns;       /* namespace of the Lease (required) */
	const char *name;     /* name of the Lease (required) */
	const char *identity; /* holderIdentity; NULL: sl_kube_lease_identity() */
	/* Defaults 15 s, 10 s and 2 s. duration > renew_deadline > retry. A
	 * leader that could not renew for renew_deadline stops leading (before
	 * another replica may take over after duration). */
	uint64_t duration_ms;
	uint64_t renew_deadline_ms;
	uint64_t retry_ms;
	/* Called on the loop when this process becomes leader and when it stops
	 * being leader (renewal failed past the deadline, or another holder was
	 * seen). After stopped the lease keeps competing; a caller that prefers
	 * to exit does so from the callback. Either may be NULL. */
	void (*started)(void *payload);
	void (*stopped)(void *payload);
	void *payload;
};

/* Copies opts; strings are copied. Nothing happens before sl_kube_lease_start. */
int sl_kube_lease_new(struct sl_loop *loop, struct sl_kube *k, const struct sl_kube_lease_opts *opts,
                      struct sl_kube_lease **ret, struct sl_error *err);
int sl_kube_lease_start(struct sl_kube_lease *l);
bool sl_kube_lease_is_leader(const struct sl_kube_lease *l);
const char *sl_kube_lease_get_identity(const struct sl_kube_lease *l);

/* Gives the lease up so a standby takes over at once: writes holderIdentity
 * "" and leaseDurationSeconds 1 (conditional on the resourceVersion last
 * seen) and stops competing. stopped is not called. done runs on the loop
 * once the write finished (code 0) or failed, or at once (deferred) when
 * this process was not leading (code 0). */
int sl_kube_lease_release(struct sl_kube_lease *l, void (*done)(int code, void *payload), void *payload);

/* Stops timers and frees; a request in flight finishes first (the object
 * is freed from its callback). Accepts NULL. Does not release the Lease. */
void sl_kube_lease_free(struct sl_kube_lease *l);

struct sl_kube_lease_stats {
	bool leader;
	uint64_t acquired;       /* times leadership was gained */
	uint64_t lost;           /* times it was lost (not released) */
	uint64_t renew_failures; /* failed attempts to write the Lease */
};
void sl_kube_lease_stats(const struct sl_kube_lease *l, struct sl_kube_lease_stats *ret);

/* What a write of the Lease says. */
struct sl_kube_lease_write {
	const char *ns, *name; /* of a Lease not read before */
	const char *identity;  /* this process */
	uint64_t duration_ms;
	bool release;    /* give it up: holderIdentity "", duration 1 s */
	const char *now; /* MicroTime for acquireTime and renewTime */
};

/* The Lease body to write: old (the Lease as last read, or NULL) with its
 * spec replaced. Pure. 0 with *ret a new tree (cJSON_Delete), or SL_ENOMEM
 * and *ret untouched: a body is complete or not made at all. */
int sl_kube_lease_body(const struct cJSON *old, const struct sl_kube_lease_write *w, struct cJSON **ret);

/* A holder identity: $POD_NAME, else the host name, followed by "_" and 8
 * random hex digits so two processes on one host differ. */
int sl_kube_lease_identity(char *out, size_t outsz);
