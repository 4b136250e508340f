/* The StreamClass sub-controller (class.c): watches StreamClasses; for each,
 * looks up the kind it names, watches that kind (the streams) and writes the
 * class's status. Everything else reads classes through this header. */
#pragma once

#include "sluice/base.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_controller__ctx;
struct sl_kube_informer;
struct sl_controller__classes; /* every StreamClass, and the watch on them */
struct sl_controller__class;   /* one StreamClass */

/* retry_*_ms: how often a class whose kind is not served is looked up
 * again (exponential backoff between the two). */
int sl_controller__classes_new(const struct sl_controller__ctx *ctx, uint64_t retry_min_ms,
                               uint64_t retry_max_ms, struct sl_controller__classes **ret);
/* Starts the StreamClass informer; each class it lists starts its own. */
int sl_controller__classes_start(struct sl_controller__classes *cs, struct sl_error *err);
/* Stops every informer and discovery; the classes stay, status unwritten. */
void sl_controller__classes_stop(struct sl_controller__classes *cs);
void sl_controller__classes_free(struct sl_controller__classes *cs); /* accepts NULL */
/* The StreamClass informer and the stream informer of every class that
 * watches its kind have listed. */
bool sl_controller__classes_synced(const struct sl_controller__classes *cs);
void sl_controller__classes_foreach(const struct sl_controller__classes *cs,
                                    void (*fn)(const struct sl_controller__class *cl, void *payload),
                                    void *payload);
/* Calls fn for the StreamClass informer and each stream informer. */
void sl_controller__classes_foreach_informer(const struct sl_controller__classes *cs,
                                             void (*fn)(const struct sl_kube_informer *inf, void *payload),
                                             void *payload);

/* The class whose kindRef is kind, preferring one that watches it; NULL
 * when none names it. Valid until the loop runs again. */
const struct sl_controller__class *sl_controller__class_by_kind(const struct sl_controller__classes *cs,
                                                                const char *kind);
const char *sl_controller__class_name(const struct sl_controller__class *cl);
const char *sl_controller__class_kind(const struct sl_controller__class *cl); /* NULL: spec lacks it */
/* "group/version" and the plural of the kind, as the resource is served. */
const char *sl_controller__class_api_version(const struct sl_controller__class *cl);
const char *sl_controller__class_plural(const struct sl_controller__class *cl);
/* The class watches its kind (its streams can be read). */
bool sl_controller__class_watching(const struct sl_controller__class *cl);
/* Watching, and its streams have been listed (the metric classes_ready). */
bool sl_controller__class_ready(const struct sl_controller__class *cl);
/* The StreamClass as cached, or NULL. */
const cJSON *sl_controller__class_object(const struct sl_controller__class *cl);
/* The cached stream ns/name of the class's kind, or NULL. */
const cJSON *sl_controller__class_stream(const struct sl_controller__class *cl, const char *ns,
                                         const char *name);
void sl_controller__class_foreach_stream(const struct sl_controller__class *cl,
                                         void (*fn)(const cJSON *stream, void *payload), void *payload);
