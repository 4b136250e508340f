/* Streams that change shards (move.c). A stream moves when its
 * sluice.dev/shard label changes: the shard it leaves stops seeing it, the
 * shard it joins starts. What was made for it (its Jobs, CronJob and
 * BackfillRequests, labelled with the old shard) must follow, or the new
 * shard would not see them. Each side does it, so that one running is
 * enough:
 * - handover: the shard a stream left looks it up; when it still exists
 *   under another shard, its Jobs, CronJob and BackfillRequests in this
 *   shard's caches are relabelled to that shard;
 * - claim: a stream with a status that arrives in a shard's watch after its
 *   first list (it was reconciled elsewhere) is held back from decide()
 *   until its Jobs, CronJob and BackfillRequests, looked up, are relabelled
 *   to this shard and show in its caches (at most 10 s): decided on a
 *   partial view, it would start a second Job;
 * - adoption: a create that finds the object there already (AlreadyExists)
 *   but not in this shard's cache (a stream that moved while this shard
 *   was down) looks it up; when the stream controls it, it is relabelled
 *   to this shard.
 * A relabelled object leaves the old shard's watch and enters the new
 * one's, which queues its stream. */
#pragma once

#include "controller-internal.h"

#include <cjson/cJSON.h>
#include <stdint.h>

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

/* Stream (of kind, StreamClass class_name), queued as key, arrived from
 * another shard: looks up what it had and relabels it to this shard; the
 * stream is queued again once every lookup and relabel answered. */
void sl_controller__move_claim(struct sl_controller__move *m, const char *key, const char *kind,
                               const char *class_name, const cJSON *stream);
/* How long the stream of key is still held back by its claim (0: not, or
 * no longer: what was relabelled shows in the caches, or the wait ran
 * out). */
uint64_t sl_controller__move_held_ms(struct sl_controller__move *m, const char *key);
/* The stream of key is gone: its claim is dropped. */
void sl_controller__move_forget(struct sl_controller__move *m, const char *key);
/* How many streams are held (claims). */
size_t sl_controller__move_remembered(const struct sl_controller__move *m);

/* The create of object ns/name of what (a Job or BackfillRequest) for the
 * stream whose involved object (apiVersion, kind, metadata.uid) is given
 * answered AlreadyExists, and the object is not in this shard's cache:
 * looks it up and takes it into this shard when it is the stream's. */
void sl_controller__move_adopt(struct sl_controller__move *m, enum sl_controller__what what, const char *ns,
                               const char *name, const cJSON *involved);
