/* Streams that change shards (move.c). A stream moves when its
 * sluice.dev/shard label changes: the shard it leaves stops seeing it, the
 * shard it joins starts. What was made for it (its Jobs, CronJob and
 * BackfillRequests, labelled with the old shard) must follow, or the new
 * shard would not see them. Two ways, so that one is enough:
 * - handover: the shard a stream left looks it up; when it still exists
 *   under another shard, its Jobs, CronJob and BackfillRequests in this
 *   shard's caches are relabelled to that shard;
 * - adoption: a create that finds the object there already (AlreadyExists)
 *   but not in this shard's cache looks it up; when the stream controls it
 *   (or, for a BackfillRequest, it is the stream's), it is relabelled to
 *   this shard.
 * A relabelled object leaves the old shard's watch and enters the new
 * one's, which queues its stream. */
#pragma once

#include "controller-internal.h"

#include <cjson/cJSON.h>

struct sl_controller__observe;
struct sl_controller__move;

/* o (borrowed) is read for what the shard holds of a stream. */
int sl_controller__move_new(const struct sl_controller__ctx *ctx, const struct sl_controller__observe *o,
                            struct sl_controller__move **ret);
/* Lookups and patches in flight are detached (their callbacks only free).
 * Accepts NULL. */
void sl_controller__move_free(struct sl_controller__move *m);

/* Stream ns/name of kind (served as api_version/plural, of StreamClass
 * class_name) left this shard's caches: deleted, or moved to another shard.
 * Looks it up and hands what this shard holds of it over when it moved. */
void sl_controller__move_left(struct sl_controller__move *m, const char *kind, const char *api_version,
                              const char *plural, const char *class_name, const char *ns, const char *name);

/* The create of object ns/name of what (a Job or BackfillRequest) for the
 * stream whose involved object (apiVersion, kind, metadata.uid) is given
 * answered AlreadyExists, and the object is not in this shard's cache:
 * looks it up and takes it into this shard when it is the stream's. */
void sl_controller__move_adopt(struct sl_controller__move *m, enum sl_controller__what what, const char *ns,
                               const char *name, const cJSON *involved);
