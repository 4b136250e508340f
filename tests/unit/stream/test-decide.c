/* Unit tests of decide(): every transition of design.md "Stream state
 * machine" and the cases of issue 7 part 3, on a small simulated world that
 * applies the actions as the API server would (a Job deleted in the
 * foreground first gets a deletionTimestamp, then goes). Crash safety is
 * checked by applying every prefix of a decision and running on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "json-fixtures.h"
#include "sluice/stream.h"

#include <stdio.h>
#include <string.h>

#define T0 1700000000 /* 2023-11-14T22:13:20Z */

static void set(cJSON *o, const char *key, cJSON *v)
{
	if (cJSON_HasObjectItem(o, key))
		cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
	else
		cJSON_AddItemToObject(o, key, v);
}

static cJSON *ensure(cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return v ? v : cJSON_AddObjectToObject(o, key);
}

/* ---- the world ------------------------------------------------------------ */

#define MAX_BFR 8

struct world {
	cJSON *stream, *cls, *tmpl, *btmpl;
	cJSON *bfr[MAX_BFR];
	size_t n_bfr;
	cJSON *sjob, *bjob, *sgone, *bgone, *cron;
	/* The stream's CRD keeps only what the real plugin CRDs keep in status
	 * (phase, configurationHash, conditions[].type/status/message/phase):
	 * the API server prunes the rest of every status write. */
	bool pruned_schema;
	/* crds/mockstream.yaml: every status field but conditions[].phase. */
	bool mock_schema;
	/* why the API server refused the controller's last write, handed to decide() */
	const char *write_error;
	int64_t now;
	unsigned uids;
	/* counters over the world's life */
	unsigned jobs_created, bfrs_created, completions, status_writes, events, cron_writes;
	char last_event_reason[64], last_event_type[16];
	uint64_t last_requeue;
};

static void world_free(struct world *w)
{
	cJSON_Delete(w->stream);
	cJSON_Delete(w->cls);
	cJSON_Delete(w->tmpl);
	cJSON_Delete(w->btmpl);
	for (size_t i = 0; i < w->n_bfr; i++)
		cJSON_Delete(w->bfr[i]);
	cJSON_Delete(w->sjob);
	cJSON_Delete(w->bjob);
	cJSON_Delete(w->sgone);
	cJSON_Delete(w->bgone);
	cJSON_Delete(w->cron);
	free(w);
}

static cJSON *dup(const cJSON *v)
{
	return v ? cJSON_Duplicate(v, true) : NULL;
}

static struct world *world_clone(const struct world *w)
{
	struct world *c = malloc(sizeof(*c));
	*c = *w;
	c->stream = dup(w->stream);
	c->cls = dup(w->cls);
	c->tmpl = dup(w->tmpl);
	c->btmpl = dup(w->btmpl);
	for (size_t i = 0; i < w->n_bfr; i++)
		c->bfr[i] = dup(w->bfr[i]);
	c->sjob = dup(w->sjob);
	c->bjob = dup(w->bjob);
	c->sgone = dup(w->sgone);
	c->bgone = dup(w->bgone);
	c->cron = dup(w->cron);
	return c;
}

static struct world *world_new(bool backfill, bool suspended)
{
	struct world *w = calloc(1, sizeof(*w));
	w->now = T0;
	w->stream = J("{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'MockStream',"
	              "'metadata':{'name':'s1','namespace':'ns1','uid':'uid-s1','generation':1},"
	              "'spec':{'suspended':false,'jobTemplateRef':{'name':'stream-tmpl'},"
	              "'backfillJobTemplateRef':{'name':'backfill-tmpl'},"
	              "'connectionStringRef':{'name':'conn'},'table':'orders'}}");
	if (!backfill)
		cJSON_DeleteItemFromObject(at(w->stream, "spec"), "backfillJobTemplateRef");
	if (suspended)
		set(at(w->stream, "spec"), "suspended", cJSON_CreateTrue());
	w->cls = J(
	    "{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'StreamClass','metadata':{'name':'mock'},"
	    "'spec':{'apiGroupRef':'streaming.sneaksanddata.com','apiVersion':'v1','kindRef':'MockStream',"
	    "'pluralName':'mockstreams','secretRefs':['connectionStringRef']}}");
	w->tmpl = J("{'kind':'StreamingJobTemplate','metadata':{'name':'stream-tmpl','namespace':'ns1'},"
	            "'spec':{'backoffLimit':3,'template':{'spec':{'restartPolicy':'Never',"
	            "'containers':[{'name':'main','image':'stream:1'}]}}}}");
	w->btmpl = J("{'kind':'StreamingJobTemplate','metadata':{'name':'backfill-tmpl','namespace':'ns1'},"
	             "'spec':{'backoffLimit':0,'template':{'spec':{'restartPolicy':'Never',"
	             "'containers':[{'name':'main','image':'backfill:1'}]}}}}");
	if (!backfill) {
		cJSON_Delete(w->btmpl);
		w->btmpl = NULL;
	}
	return w;
}

static void stamp(struct world *w, cJSON *obj)
{
	char t[32], uid[32];
	cJSON *md = ensure(obj, "metadata");
	sl_time_rfc3339(w->now, t);
	snprintf(uid, sizeof(uid), "uid-%u", ++w->uids);
	set(md, "uid", cJSON_CreateString(uid));
	set(md, "creationTimestamp", cJSON_CreateString(t));
}

/* A BackfillRequest made by a user. */
static cJSON *add_bfr(struct world *w, const char *name)
{
	char buf[512];
	snprintf(buf, sizeof(buf),
	         "{'apiVersion':'streaming.sneaksanddata.com/v1','kind':'BackfillRequest',"
	         "'metadata':{'name':'%s','namespace':'ns1'},"
	         "'spec':{'streamClass':'mock','streamId':'s1','completed':false}}",
	         name);
	cJSON *b = J(buf);
	stamp(w, b);
	w->bfr[w->n_bfr++] = b;
	return b;
}

static cJSON *find_bfr(struct world *w, const char *name)
{
	for (size_t i = 0; i < w->n_bfr; i++)
		if (strcmp(str(w->bfr[i], "metadata.name"), name) == 0)
			return w->bfr[i];
	return NULL;
}

static bool bfr_done(struct world *w, const char *name)
{
	cJSON *b = find_bfr(w, name);
	return b && cJSON_IsTrue(at(b, "spec.completed"));
}

static cJSON **job_slot(struct world *w, const char *name)
{
	if (w->sjob && strcmp(str(w->sjob, "metadata.name"), name) == 0)
		return &w->sjob;
	if (w->bjob && strcmp(str(w->bjob, "metadata.name"), name) == 0)
		return &w->bjob;
	return NULL;
}

/* What the job controller does: a condition on the Job's status. */
static void job_finish(cJSON *job, const char *type, const char *reason, int64_t start, int64_t end)
{
	char a[32], b[32], buf[512];
	sl_time_rfc3339(start, a);
	sl_time_rfc3339(end, b);
	snprintf(buf, sizeof(buf),
	         "{'startTime':'%s','completionTime':'%s','conditions':[{'type':'%s','status':'True',"
	         "'reason':'%s','message':'it ended'}]}",
	         a, b, type, reason);
	set(job, "status", J(buf));
}

/* Deleted Jobs (deletionTimestamp set) go, as the garbage collector would
 * finish a foreground deletion; their last state is kept as the DELETED
 * event's object. */
static void gc(struct world *w)
{
	if (w->sjob && at(w->sjob, "metadata.deletionTimestamp")) {
		cJSON_Delete(w->sgone);
		w->sgone = w->sjob;
		w->sjob = NULL;
	}
	if (w->bjob && at(w->bjob, "metadata.deletionTimestamp")) {
		cJSON_Delete(w->bgone);
		w->bgone = w->bjob;
		w->bjob = NULL;
	}
}

/* A Job removed at once (by hand, or by its TTL), with or without the
 * DELETED event being seen. */
static void job_vanish(struct world *w, cJSON **slot, bool event_seen)
{
	cJSON **gone = slot == &w->sjob ? &w->sgone : &w->bgone;
	cJSON_Delete(*gone);
	*gone = event_seen ? *slot : NULL;
	if (!event_seen)
		cJSON_Delete(*slot);
	*slot = NULL;
}

static void merge_patch(cJSON *target, const cJSON *patch)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, patch)
	{
		if (cJSON_IsNull(c)) {
			cJSON_DeleteItemFromObjectCaseSensitive(target, c->string);
		} else if (cJSON_IsObject(c)) {
			cJSON *t = cJSON_GetObjectItemCaseSensitive(target, c->string);
			if (!cJSON_IsObject(t))
				set(target, c->string, cJSON_CreateObject()), t = at(target, c->string);
			merge_patch(t, c);
		} else {
			set(target, c->string, dup(c));
		}
	}
}

/* What a plugin CRD's structural schema leaves of a status. */
static void prune_status(cJSON *stream)
{
	static const char *const keep[] = {"phase", "configurationHash", "conditions"};
	static const char *const ckeep[] = {"type", "status", "message", "phase"};
	cJSON *st = at(stream, "status"), *c, *x;

	for (c = st ? st->child : NULL; c;) {
		x = c->next;
		bool k = false;
		for (size_t i = 0; i < 3; i++)
			k |= strcmp(c->string, keep[i]) == 0;
		if (!k)
			cJSON_Delete(cJSON_DetachItemViaPointer(st, c));
		c = x;
	}
	cJSON_ArrayForEach(x, at(st, "conditions"))
	{
		for (c = x->child; c;) {
			cJSON *n = c->next;
			bool k = false;
			for (size_t i = 0; i < 4; i++)
				k |= strcmp(c->string, ckeep[i]) == 0;
			if (!k)
				cJSON_Delete(cJSON_DetachItemViaPointer(x, c));
			c = n;
		}
	}
}

static void prune_condition_phase(cJSON *stream)
{
	cJSON *c;

	cJSON_ArrayForEach(c, at(stream, "status.conditions"))
	    cJSON_DeleteItemFromObjectCaseSensitive(c, "phase");
}

static bool finished(const cJSON *job)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, at(job, "status.conditions"))
	{
		const char *t = str(c, "type");
		if (t && (strcmp(t, "Complete") == 0 || strcmp(t, "Failed") == 0) &&
		    strcmp(str(c, "status"), "True") == 0)
			return true;
	}
	return false;
}

static void apply(struct world *w, const struct sl_stream_action *a)
{
	char t[32];
	cJSON **slot;
	sl_time_rfc3339(w->now, t);
	switch (a->type) {
	case SL_STREAM_ACT_CREATE_JOB:
		/* AlreadyExists counts as done: but decide() must never ask */
		if (job_slot(w, a->name))
			fail_msg("create of existing Job %s", a->name);
		if (w->sjob && w->bjob)
			fail_msg("two Jobs");
		/* at most one Job runs: another may exist only once finished */
		if ((w->sjob && !finished(w->sjob)) || (w->bjob && !finished(w->bjob)))
			fail_msg("create of %s while another Job of the stream runs", a->name);
		cJSON *job = dup(a->object);
		stamp(w, job);
		if (strstr(a->name, "-backfill")) {
			w->bjob = job;
			cJSON_Delete(w->bgone), w->bgone = NULL;
		} else {
			w->sjob = job;
			cJSON_Delete(w->sgone), w->sgone = NULL;
		}
		w->jobs_created++;
		break;
	case SL_STREAM_ACT_DELETE_JOB:
		slot = job_slot(w, a->name);
		if (slot && (!a->uid[0] || strcmp(a->uid, str(*slot, "metadata.uid")) == 0) &&
		    !at(*slot, "metadata.deletionTimestamp"))
			set(at(*slot, "metadata"), "deletionTimestamp", cJSON_CreateString(t));
		break;
	case SL_STREAM_ACT_CREATE_BACKFILL:
		if (find_bfr(w, a->name))
			fail_msg("second create of BackfillRequest %s", a->name);
		cJSON *b = dup(a->object);
		stamp(w, b);
		w->bfr[w->n_bfr++] = b;
		w->bfrs_created++;
		break;
	case SL_STREAM_ACT_COMPLETE_BACKFILL: {
		cJSON *x = find_bfr(w, a->name);
		assert_non_null(x);
		if (cJSON_IsTrue(at(x, "spec.completed")))
			fail_msg("BackfillRequest %s completed twice", a->name);
		if (a->status)
			fail_msg("a completion writes the BackfillRequest's status");
		merge_patch(x, a->object);
		w->completions++;
		break;
	}
	case SL_STREAM_ACT_DELETE_BACKFILL:
		for (size_t i = 0; i < w->n_bfr; i++)
			if (strcmp(str(w->bfr[i], "metadata.name"), a->name) == 0) {
				cJSON_Delete(w->bfr[i]);
				w->bfr[i] = w->bfr[--w->n_bfr];
			}
		break;
	case SL_STREAM_ACT_WRITE_STATUS:
		merge_patch(w->stream, a->status);
		if (w->pruned_schema)
			prune_status(w->stream);
		if (w->mock_schema)
			prune_condition_phase(w->stream);
		w->status_writes++;
		break;
	case SL_STREAM_ACT_APPLY_CRONJOB:
		if (w->cron && strcmp(str(w->cron, "metadata.name"), a->name) != 0)
			fail_msg("apply of CronJob %s while %s exists", a->name,
			         str(w->cron, "metadata.name"));
		if (!w->cron) {
			w->cron = dup(a->object);
			stamp(w, w->cron);
		} else {
			cJSON *uid = dup(at(w->cron, "metadata.uid"));
			cJSON_Delete(w->cron);
			w->cron = dup(a->object);
			set(at(w->cron, "metadata"), "uid", uid);
		}
		w->cron_writes++;
		break;
	case SL_STREAM_ACT_PATCH_CRONJOB:
		assert_non_null(w->cron);
		merge_patch(w->cron, a->object);
		w->cron_writes++;
		break;
	case SL_STREAM_ACT_DELETE_CRONJOB:
		if (w->cron && (!a->uid[0] || strcmp(a->uid, str(w->cron, "metadata.uid")) == 0))
			cJSON_Delete(w->cron), w->cron = NULL;
		break;
	case SL_STREAM_ACT_WRITE_MEMORY:
		merge_patch(w->stream, a->object);
		break;
	case SL_STREAM_ACT_EVENT:
		w->events++;
		snprintf(w->last_event_reason, sizeof(w->last_event_reason), "%s", a->reason);
		snprintf(w->last_event_type, sizeof(w->last_event_type), "%s", a->event_type);
		break;
	case SL_STREAM_ACT_REQUEUE:
		w->last_requeue = a->requeue_ms;
		break;
	}
}

static void decide(struct world *w, struct sl_stream_decision *d)
{
	const cJSON *bfrs[MAX_BFR];
	struct sl_error err = {0};
	for (size_t i = 0; i < w->n_bfr; i++)
		bfrs[i] = w->bfr[i];
	struct sl_stream_observed in = {
	    .stream = w->stream,
	    .stream_class = w->cls,
	    .tmpl = w->tmpl,
	    .backfill_tmpl = w->btmpl,
	    .backfills = bfrs,
	    .n_backfills = w->n_bfr,
	    .streaming_job = w->sjob,
	    .backfill_job = w->bjob,
	    .streaming_job_gone = w->sgone,
	    .backfill_job_gone = w->bgone,
	    .cronjob = w->cron,
	    .write_error = w->write_error,
	    .now = w->now,
	};
	*d = (struct sl_stream_decision)SL_STREAM_DECISION_INIT;
	if (sl_stream_decide(&in, d, &err) < 0)
		fail_msg("decide: %s", err.msg);
}

static bool mutates(const struct sl_stream_decision *d)
{
	for (size_t i = 0; i < d->n_actions; i++)
		if (d->actions[i].type != SL_STREAM_ACT_EVENT && d->actions[i].type != SL_STREAM_ACT_REQUEUE)
			return true;
	return false;
}

static size_t count(const struct sl_stream_decision *d, enum sl_stream_action_type t)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n_actions; i++)
		n += d->actions[i].type == t;
	return n;
}

/* One round: decide, apply everything, let deletions finish. */
static void step(struct world *w)
{
	struct sl_stream_decision d;
	decide(w, &d);
	for (size_t i = 0; i < d.n_actions; i++)
		apply(w, &d.actions[i]);
	sl_stream_decision_free(&d);
	gc(w);
}

/* A converged stream: `rounds` decisions, ten minutes apart, ask for nothing. */
static void assert_quiet(struct world *w, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		struct sl_stream_decision d;
		w->now += 600;
		decide(w, &d);
		assert_int_equal(d.n_actions, 0);
		sl_stream_decision_free(&d);
	}
}

/* Rounds until decide() asks for no write; fails on a hot loop. */
static unsigned converge(struct world *w)
{
	for (unsigned i = 0; i < 20; i++) {
		struct sl_stream_decision d;
		decide(w, &d);
		bool m = mutates(&d);
		for (size_t k = 0; k < d.n_actions; k++)
			apply(w, &d.actions[k]);
		sl_stream_decision_free(&d);
		gc(w);
		if (!m)
			return i;
	}
	fail_msg("no convergence after 20 rounds");
	return 0;
}

/* status.configurationHash names the workload: its configuration-hash, "/",
 * and 12 hex digits of its template-hash. */
static void assert_status_hash_of(const struct world *w, const cJSON *job)
{
	const cJSON *an = at(job, "metadata.annotations");
	char want[256];
	snprintf(want, sizeof(want), "%s/%.12s", cJSON_GetObjectItem(an, "configuration-hash")->valuestring,
	         cJSON_GetObjectItem(an, "sluice.dev/template-hash")->valuestring);
	assert_string_equal(str(w->stream, "status.configurationHash"), want);
}

static const char *phase(const struct world *w)
{
	return str(w->stream, "status.phase");
}
static const char *ready_reason(const struct world *w)
{
	return str(w->stream, "status.conditions.0.reason");
}

/* A summary of what a user would check, to compare two runs. */
static void summary(struct world *w, char *out, size_t n)
{
	size_t len = (size_t)snprintf(
	    out, n, "phase=%s sjob=%s/%s bjob=%s/%s/%s bfr=", phase(w) ? phase(w) : "-",
	    w->sjob ? str(w->sjob, "metadata.name") : "-",
	    w->sjob ? str(w->sjob, "metadata.annotations.configuration-hash") : "-",
	    w->bjob ? str(w->bjob, "metadata.name") : "-",
	    w->bjob ? str(w->bjob, "metadata.annotations.configuration-hash") : "-",
	    w->bjob ? cJSON_GetObjectItem(at(w->bjob, "metadata.annotations"), "sluice.dev/backfill-request")
	                  ->valuestring
	            : "-");
	for (size_t i = 0; i < w->n_bfr && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s:%d,", str(w->bfr[i], "metadata.name"),
		                        cJSON_IsTrue(at(w->bfr[i], "spec.completed")));
}

/* Crash safety: for every prefix of the next decision, apply it, "restart"
 * (decide afresh from the state) and run to convergence; the end state must
 * equal the one reached without a crash, and apply() fails on any duplicate
 * Job, BackfillRequest or completion. */
static void check_crash_safety(const struct world *w0)
{
	struct world *ref = world_clone(w0);
	char want[1024], got[1024];
	struct sl_stream_decision d;
	converge(ref);
	summary(ref, want, sizeof(want));

	struct world *probe = world_clone(w0);
	decide(probe, &d);
	for (size_t k = 0; k <= d.n_actions; k++) {
		struct world *c = world_clone(w0);
		for (size_t i = 0; i < k; i++)
			apply(c, &d.actions[i]);
		/* The restarted controller never saw the DELETED events of Jobs
		 * the prefix deleted: only what it had seen before survives in
		 * this simulation (w0's), to not hide a wrong order. */
		gc(c);
		cJSON_Delete(c->sgone);
		cJSON_Delete(c->bgone);
		c->sgone = dup(w0->sgone);
		c->bgone = dup(w0->bgone);
		converge(c);
		summary(c, got, sizeof(got));
		if (strcmp(want, got) != 0)
			fail_msg("crash after %zu of %zu actions: got %s, want %s", k, d.n_actions, got,
			         want);
		assert_true(c->jobs_created <= ref->jobs_created + (ref->sjob || ref->bjob ? 0 : 1));
		world_free(c);
	}
	sl_stream_decision_free(&d);
	world_free(probe);
	world_free(ref);
}

/* ---- transitions of the design ---------------------------------------------- */

/* New stream, not suspended, with a backfill template: initial BackfillRequest
 * (owned by the stream) -> Pending; then the backfill Job -> Backfilling. */
static void new_stream_with_backfill(void **state)
{
	struct world *w = world_new(true, false);
	struct sl_stream_decision d;
	decide(w, &d);
	/* one decision: the request, one status, its Job, one Event */
	assert_int_equal(count(&d, SL_STREAM_ACT_CREATE_BACKFILL), 1);
	assert_int_equal(count(&d, SL_STREAM_ACT_WRITE_STATUS), 1);
	assert_int_equal(count(&d, SL_STREAM_ACT_CREATE_JOB), 1);
	assert_int_equal(count(&d, SL_STREAM_ACT_EVENT), 1);
	const struct sl_stream_action *a = &d.actions[0];
	assert_int_equal(a->type, SL_STREAM_ACT_CREATE_BACKFILL);
	assert_true(strncmp(a->name, "s1-initial-backfill-", 20) == 0);
	assert_string_equal(str(a->object, "spec.streamId"), "s1");
	assert_string_equal(str(a->object, "spec.streamClass"), "mock");
	assert_false(cJSON_IsTrue(at(a->object, "spec.completed")));
	assert_string_equal(str(a->object, "metadata.ownerReferences.0.uid"), "uid-s1");
	assert_true(cJSON_IsTrue(at(a->object, "metadata.ownerReferences.0.controller")));
	assert_string_equal(d.phase, "Backfilling");
	for (size_t i = 0; i < d.n_actions; i++)
		apply(w, &d.actions[i]);
	sl_stream_decision_free(&d);
	assert_string_equal(phase(w), "Backfilling");
	assert_non_null(w->bfr[0]);
	assert_string_equal(str(w->stream, "status.backfillRequest"), str(w->bfr[0], "metadata.name"));
	/* the Job runs the request as the server keeps it: not replaced once
	 * the request is observed */
	assert_int_equal(converge(w), 0);
	assert_int_equal(w->status_writes, 1);
	assert_int_equal(w->events, 1);
	assert_int_equal(w->jobs_created, 1);
	assert_non_null(w->bjob);
	assert_null(w->sjob);
	assert_string_equal(str(w->bjob, "metadata.name"), "s1-backfill");
	assert_string_equal(str(w->stream, "status.jobName"), "s1-backfill");
	assert_status_hash_of(w, w->bjob);
	assert_int_equal(converge(w), 0);
	assert_int_equal(w->bfrs_created, 1);
	world_free(w);
}

/* The label sluice.dev/shard of a stream goes on everything made for it:
 * the initial BackfillRequest and the Jobs (the informers of its shard
 * select on it). */
static void shard_label_follows(void **state)
{
	struct world *w = world_new(true, false);
	struct sl_stream_decision d;
	const cJSON *l;

	set(ensure(ensure(w->stream, "metadata"), "labels"), SL_ARCANE_LABEL_SHARD, cJSON_CreateString("a"));
	decide(w, &d);
	assert_int_equal(d.actions[0].type, SL_STREAM_ACT_CREATE_BACKFILL);
	l = at(d.actions[0].object, "metadata.labels");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l, SL_ARCANE_LABEL_SHARD)),
	                    "a");
	for (size_t i = 0; i < d.n_actions; i++)
		apply(w, &d.actions[i]);
	sl_stream_decision_free(&d);
	step(w);
	assert_non_null(w->bjob);
	l = at(w->bjob, "metadata.labels");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l, SL_ARCANE_LABEL_SHARD)),
	                    "a");
	world_free(w);

	/* unlabelled: the default shard's, nothing added */
	w = world_new(true, false);
	decide(w, &d);
	assert_null(cJSON_GetObjectItemCaseSensitive(at(d.actions[0].object, "metadata.labels"),
	                                             SL_ARCANE_LABEL_SHARD));
	sl_stream_decision_free(&d);
	world_free(w);
}

/* Without a backfill template: streaming Job -> Running, in one decision. */
static void new_stream_without_backfill(void **state)
{
	struct world *w = world_new(false, false);
	step(w);
	assert_string_equal(phase(w), "Running");
	assert_non_null(w->sjob);
	assert_string_equal(str(w->sjob, "metadata.name"), "s1");
	assert_int_equal(w->n_bfr, 0);
	assert_string_equal(str(w->stream, "status.conditions.0.status"), "True");
	assert_int_equal(cJSON_GetObjectItem(at(w->stream, "status"), "observedGeneration")->valueint, 1);
	assert_int_equal(converge(w), 0);
	assert_int_equal(w->jobs_created, 1);
	assert_int_equal(w->status_writes, 1);
	world_free(w);
}

/* New stream created suspended: Suspended, no Job and no initial
 * BackfillRequest (Arcane's documented way to skip the initial backfill);
 * resumed, it starts the streaming Job directly. */
static void new_stream_suspended(void **state)
{
	struct world *w = world_new(true, true);
	converge(w);
	assert_string_equal(phase(w), "Suspended");
	assert_null(w->sjob);
	assert_null(w->bjob);
	assert_int_equal(w->n_bfr, 0);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateFalse());
	step(w);
	assert_string_equal(phase(w), "Running");
	assert_non_null(w->sjob);
	assert_null(w->bjob);
	assert_int_equal(w->n_bfr, 0);
	world_free(w);
}

/* Backfilling and the Job succeeds: request completed, backfill Job deleted
 * (in the background: it has finished), streaming Job -> Running at once. */
static void backfill_succeeds(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	const char *x = str(w->bfr[0], "metadata.name");
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 60);
	w->now += 60;
	struct sl_stream_decision d;
	decide(w, &d);
	assert_int_equal(d.actions[0].type, SL_STREAM_ACT_COMPLETE_BACKFILL);
	assert_string_equal(d.actions[0].name, x);
	assert_true(cJSON_IsTrue(at(d.actions[0].object, "spec.completed")));
	assert_null(d.actions[0].status);
	assert_ptr_equal(d.actions[0].ref, w->bfr[0]);
	assert_int_equal(count(&d, SL_STREAM_ACT_DELETE_JOB), 1);
	/* the finished backfill Job runs no pod: it goes in the background and
	 * the streaming Job starts in the same decision, after the delete */
	size_t del = d.n_actions, cre = d.n_actions;
	for (size_t i = 0; i < d.n_actions; i++) {
		if (d.actions[i].type == SL_STREAM_ACT_DELETE_JOB) {
			del = i;
			assert_true(d.actions[i].background);
		}
		if (d.actions[i].type == SL_STREAM_ACT_CREATE_JOB)
			cre = i;
	}
	assert_true(del < cre && cre < d.n_actions);
	assert_string_equal(d.actions[cre].name, "s1");
	sl_stream_decision_free(&d);
	check_crash_safety(w);
	converge(w);
	assert_true(bfr_done(w, x));
	assert_string_equal(phase(w), "Running");
	assert_null(w->bjob);
	assert_non_null(w->sjob);
	assert_int_equal(w->completions, 1);
	world_free(w);
}

/* Running and a pending BackfillRequest appears: streaming Job deleted,
 * backfill Job -> Backfilling; then back to Running. */
static void backfill_requested_while_running(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 1);
	converge(w);
	assert_string_equal(phase(w), "Running");
	w->now += 100;
	add_bfr(w, "user-bf");
	check_crash_safety(w);
	step(w);
	assert_string_equal(phase(w), "Pending");
	assert_null(w->sjob); /* deleted (gc ran) */
	step(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_string_equal(
	    cJSON_GetObjectItem(at(w->bjob, "metadata.annotations"), "sluice.dev/backfill-request")
	        ->valuestring,
	    "user-bf");
	job_finish(w->bjob, "Complete", "Completed", T0 + 100, T0 + 200);
	converge(w);
	assert_true(bfr_done(w, "user-bf"));
	assert_string_equal(phase(w), "Running");
	world_free(w);
}

/* Suspended set while running: Job deleted -> Suspended; resumed: Running. */
static void suspend_and_resume(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateTrue());
	check_crash_safety(w);
	converge(w);
	assert_string_equal(phase(w), "Suspended");
	assert_null(w->sjob);
	assert_string_equal(w->last_event_reason, "Suspended");
	set(at(w->stream, "spec"), "suspended", cJSON_CreateFalse());
	check_crash_safety(w);
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_non_null(w->sjob);
	assert_int_equal(w->jobs_created, 2);
	world_free(w);
}

/* Job failed: deleted -> Failed with the Job's reason; it stays Failed. */
static void streaming_job_fails(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	job_finish(w->sjob, "Failed", "BackoffLimitExceeded", T0, T0 + 5);
	struct sl_stream_decision d;
	decide(w, &d);
	/* status first, then the delete: a crash between keeps the failure */
	assert_int_equal(d.actions[0].type, SL_STREAM_ACT_WRITE_STATUS);
	assert_int_equal(d.actions[1].type, SL_STREAM_ACT_DELETE_JOB);
	sl_stream_decision_free(&d);
	check_crash_safety(w);
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_string_equal(ready_reason(w), "JobFailed");
	assert_non_null(strstr(str(w->stream, "status.conditions.0.message"), "BackoffLimitExceeded"));
	assert_null(w->sjob);
	assert_string_equal(w->last_event_type, "Warning");
	/* time passes, nothing restarts it */
	w->now += 3600;
	assert_int_equal(converge(w), 0);
	assert_null(w->sjob);
	assert_int_equal(w->jobs_created, 1);
	world_free(w);
}

/* A Failed stream restarts when its spec changes. */
static void failed_restarts_on_spec_change(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	job_finish(w->sjob, "Failed", "BackoffLimitExceeded", T0, T0 + 5);
	converge(w);
	assert_string_equal(phase(w), "Failed");
	set(at(w->stream, "spec"), "table", cJSON_CreateString("orders_v2"));
	set(at(w->stream, "metadata"), "generation", cJSON_CreateNumber(2));
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_non_null(w->sjob);
	assert_int_equal(cJSON_GetObjectItem(at(w->stream, "status"), "observedGeneration")->valueint, 2);
	world_free(w);
}

/* ... or when its template changes ... */
static void failed_restarts_on_template_change(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	job_finish(w->sjob, "Failed", "DeadlineExceeded", T0, T0 + 5);
	converge(w);
	set(at(w->tmpl, "spec.template.spec.containers.0"), "image", cJSON_CreateString("stream:2"));
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_string_equal(str(w->sjob, "spec.template.spec.containers.0.image"), "stream:2");
	world_free(w);
}

/* ... or when it is suspended and resumed. */
static void failed_restarts_on_resume(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	job_finish(w->sjob, "Failed", "BackoffLimitExceeded", T0, T0 + 5);
	converge(w);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateTrue());
	converge(w);
	assert_string_equal(phase(w), "Suspended");
	set(at(w->stream, "spec"), "suspended", cJSON_CreateFalse());
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_non_null(w->sjob);
	world_free(w);
}

/* Spec changed: the Job is replaced, with the new configuration-hash. */
static void spec_change_replaces_job(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	char old[65];
	snprintf(old, sizeof(old), "%s", str(w->sjob, "metadata.annotations.configuration-hash"));
	set(at(w->stream, "spec"), "table", cJSON_CreateString("orders_v2"));
	check_crash_safety(w);
	step(w);
	assert_null(w->sjob);
	assert_string_equal(ready_reason(w), "ConfigurationChanged");
	converge(w);
	assert_non_null(w->sjob);
	assert_string_not_equal(str(w->sjob, "metadata.annotations.configuration-hash"), old);
	assert_status_hash_of(w, w->sjob);
	assert_string_equal(phase(w), "Running");
	world_free(w);
}

/* Template changed: the Job is replaced. */
static void template_change_replaces_job(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	set(at(w->tmpl, "spec"), "backoffLimit", cJSON_CreateNumber(7));
	check_crash_safety(w);
	converge(w);
	assert_int_equal(at(w->sjob, "spec.backoffLimit")->valueint, 7);
	assert_int_equal(w->jobs_created, 2);
	world_free(w);
}

/* A converged stream costs nothing: no action at all, not even a requeue. */
static void converged_no_writes(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 1);
	converge(w);
	unsigned writes = w->status_writes;
	assert_quiet(w, 5);
	assert_int_equal(w->status_writes, writes);
	world_free(w);
}

/* lastTransitionTime moves only when the Ready status changes. */
static void last_transition_time(void **state)
{
	struct world *w = world_new(true, false);
	step(w); /* Pending, Ready False */
	char t1[32];
	snprintf(t1, sizeof(t1), "%s", str(w->stream, "status.conditions.0.lastTransitionTime"));
	w->now += 10;
	step(w); /* Backfilling, still False */
	assert_string_equal(str(w->stream, "status.conditions.0.lastTransitionTime"), t1);
	assert_string_equal(ready_reason(w), "Backfilling");
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 10);
	w->now += 10;
	converge(w); /* Running, True */
	assert_string_not_equal(str(w->stream, "status.conditions.0.lastTransitionTime"), t1);
	assert_string_equal(str(w->stream, "status.conditions.0.status"), "True");
	assert_int_equal(
	    cJSON_GetObjectItem(at(w->stream, "status.conditions.0"), "observedGeneration")->valueint, 1);
	world_free(w);
}

/* Stream deleted: its Jobs and its own BackfillRequests are deleted. */
static void stream_deleted(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	add_bfr(w, "user-owned"); /* not the stream's own */
	set(at(w->stream, "metadata"), "deletionTimestamp", cJSON_CreateString("2023-11-14T23:00:00Z"));
	struct sl_stream_decision d;
	decide(w, &d);
	assert_int_equal(count(&d, SL_STREAM_ACT_DELETE_JOB), 1);
	assert_int_equal(count(&d, SL_STREAM_ACT_DELETE_BACKFILL), 0);
	assert_int_equal(count(&d, SL_STREAM_ACT_WRITE_STATUS), 0);
	sl_stream_decision_free(&d);
	world_free(w);
}

/* ---- the cases of issue 7 part 3 ---------------------------------------- */

/* Suspend during a backfill: Job deleted, the request stays pending. */
static void suspend_during_backfill(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	assert_non_null(w->bjob);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateTrue());
	check_crash_safety(w);
	converge(w);
	assert_string_equal(phase(w), "Suspended");
	assert_null(w->bjob);
	assert_false(bfr_done(w, str(w->bfr[0], "metadata.name")));
	world_free(w);
}

/* Resume with a backfill pending: the backfill runs, then the stream. */
static void resume_with_backfill_pending(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateTrue());
	converge(w);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateFalse());
	check_crash_safety(w);
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_non_null(w->bjob);
	assert_null(w->sjob);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 1);
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_int_equal(w->completions, 1);
	world_free(w);
}

/* A backfill requested while suspended waits; it runs on resume. */
static void backfill_requested_while_suspended(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 1);
	converge(w);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateTrue());
	converge(w);
	add_bfr(w, "while-suspended");
	assert_int_equal(converge(w), 0);
	assert_null(w->bjob);
	assert_null(w->sjob);
	assert_string_equal(phase(w), "Suspended");
	set(at(w->stream, "spec"), "suspended", cJSON_CreateFalse());
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_string_equal(str(w->stream, "status.backfillRequest"), "while-suspended");
	world_free(w);
}

/* A failed backfill Job: Failed with its reason, the request stays pending,
 * nothing runs until the configuration changes; then the backfill reruns. */
static void backfill_job_fails(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	const char *x = str(w->bfr[0], "metadata.name");
	job_finish(w->bjob, "Failed", "BackoffLimitExceeded", T0, T0 + 9);
	check_crash_safety(w);
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_string_equal(ready_reason(w), "JobFailed");
	assert_string_equal(str(w->stream, "status.backfillRequest"), x);
	assert_null(w->bjob);
	assert_null(w->sjob);
	assert_false(bfr_done(w, x));
	w->now += 1000;
	assert_int_equal(converge(w), 0);
	set(at(w->btmpl, "spec"), "backoffLimit", cJSON_CreateNumber(2));
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_non_null(w->bjob);
	world_free(w);
}

/* A missing template: Failed/TemplateNotFound, no Job created; a running Job
 * is left alone; the template appearing heals it. */
static void missing_template(void **state)
{
	struct world *w = world_new(false, false);
	cJSON *t = w->tmpl;
	w->tmpl = NULL;
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_string_equal(ready_reason(w), "TemplateNotFound");
	assert_non_null(strstr(str(w->stream, "status.conditions.0.message"), "ns1/stream-tmpl"));
	assert_string_equal(w->last_event_type, "Warning");
	assert_null(w->sjob);
	w->tmpl = t;
	converge(w);
	assert_string_equal(phase(w), "Running");
	/* gone while running: the Job keeps running */
	w->tmpl = NULL;
	converge(w);
	assert_non_null(w->sjob);
	assert_null(at(w->sjob, "metadata.deletionTimestamp"));
	assert_string_equal(ready_reason(w), "TemplateNotFound");
	w->tmpl = t;
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_int_equal(w->jobs_created, 1);
	world_free(w);
}

/* A missing backfill template fails the backfill the same way. */
static void missing_backfill_template(void **state)
{
	struct world *w = world_new(true, false);
	cJSON_Delete(w->btmpl);
	w->btmpl = NULL;
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_string_equal(ready_reason(w), "TemplateNotFound");
	assert_non_null(strstr(str(w->stream, "status.conditions.0.message"), "backfillJobTemplateRef"));
	assert_null(w->bjob);
	assert_null(w->sjob);
	world_free(w);
}

/* A template that sets STREAMCONTEXT__STREAM_ID: Failed/InvalidJob. */
static void invalid_job(void **state)
{
	struct world *w = world_new(false, false);
	cJSON_AddItemToObject(at(w->tmpl, "spec.template.spec.containers.0"), "env",
	                      J("[{'name':'STREAMCONTEXT__STREAM_ID','value':'x'}]"));
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_string_equal(ready_reason(w), "InvalidJob");
	assert_null(w->sjob);
	/* a missing secret reference too */
	cJSON_DeleteItemFromObject(at(w->tmpl, "spec.template.spec.containers.0"), "env");
	cJSON_DeleteItemFromObject(at(w->stream, "spec"), "connectionStringRef");
	converge(w);
	assert_string_equal(ready_reason(w), "InvalidJob");
	assert_non_null(strstr(str(w->stream, "status.conditions.0.message"), "connectionStringRef"));
	world_free(w);
}

/* A running stream is decided on from the hashes of its spec and template,
 * not a built Job; what the StreamClass asks for is still checked: a secret
 * reference the stream lacks is InvalidJob, and the running Job stays. */
static void running_class_asks_for_secret(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	assert_string_equal(phase(w), "Running");
	cJSON_AddItemToArray(at(w->cls, "spec.secretRefs"), cJSON_CreateString("tokenRef"));
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_string_equal(ready_reason(w), "InvalidJob");
	assert_non_null(strstr(str(w->stream, "status.conditions.0.message"), "tokenRef"));
	assert_non_null(w->sjob);
	/* given the reference (a spec change), a Job that has it replaces it */
	set(at(w->stream, "spec"), "secretRef", J("{'name':'tokens'}"));
	unsigned jobs = w->jobs_created;
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_int_equal(w->jobs_created, jobs + 1);
	world_free(w);
}

/* Template changed during a backfill: the backfill Job is replaced and the
 * same request runs again with the new configuration. */
static void template_change_during_backfill(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	char old[65];
	snprintf(old, sizeof(old), "%s", str(w->bjob, "metadata.annotations.configuration-hash"));
	set(at(w->btmpl, "spec.template.spec.containers.0"), "image", cJSON_CreateString("backfill:2"));
	check_crash_safety(w);
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_string_not_equal(str(w->bjob, "metadata.annotations.configuration-hash"), old);
	assert_string_equal(str(w->bjob, "spec.template.spec.containers.0.image"), "backfill:2");
	assert_false(bfr_done(w, str(w->bfr[0], "metadata.name")));
	world_free(w);
}

/* A second request while one runs: the running one finishes first, then the
 * second runs, then the stream. */
static void second_backfill_while_one_runs(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	char first[256];
	snprintf(first, sizeof(first), "%s", str(w->bfr[0], "metadata.name"));
	w->now += 10;
	add_bfr(w, "aaa-second"); /* sorts before "s1-..." by name, but is newer */
	assert_int_equal(converge(w), 0);
	assert_string_equal(
	    cJSON_GetObjectItem(at(w->bjob, "metadata.annotations"), "sluice.dev/backfill-request")
	        ->valuestring,
	    first);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 20);
	check_crash_safety(w);
	converge(w);
	assert_true(bfr_done(w, first));
	assert_string_equal(phase(w), "Backfilling");
	assert_string_equal(
	    cJSON_GetObjectItem(at(w->bjob, "metadata.annotations"), "sluice.dev/backfill-request")
	        ->valuestring,
	    "aaa-second");
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 30);
	converge(w);
	assert_true(bfr_done(w, "aaa-second"));
	assert_string_equal(phase(w), "Running");
	assert_int_equal(w->completions, 2);
	world_free(w);
}

/* Oldest first among several pending requests. */
static void oldest_backfill_first(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 1);
	converge(w);
	w->now += 5;
	add_bfr(w, "zzz-older");
	w->now += 5;
	add_bfr(w, "aaa-newer");
	converge(w);
	assert_string_equal(str(w->stream, "status.backfillRequest"), "zzz-older");
	world_free(w);
}

/* The stream deleted mid-backfill: its Jobs and its own requests go. */
static void stream_deleted_mid_backfill(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	add_bfr(w, "user-bf");
	set(at(w->stream, "metadata"), "deletionTimestamp", cJSON_CreateString("2023-11-14T23:00:00Z"));
	check_crash_safety(w);
	converge(w);
	assert_null(w->bjob);
	assert_null(w->sjob);
	assert_int_equal(w->n_bfr, 1); /* the user's stays; the initial one is gone */
	assert_string_equal(str(w->bfr[0], "metadata.name"), "user-bf");
	assert_int_equal(w->jobs_created, 1);
	world_free(w);
}

/* A Job deleted by hand while Running comes back. */
static void hand_delete_running(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	job_vanish(w, &w->sjob, true);
	check_crash_safety(w);
	converge(w);
	assert_non_null(w->sjob);
	assert_string_equal(phase(w), "Running");
	assert_int_equal(w->jobs_created, 2);
	/* and also when the DELETED event was missed */
	job_vanish(w, &w->sjob, false);
	converge(w);
	assert_non_null(w->sjob);
	world_free(w);
}

/* A backfill Job deleted by hand while Backfilling: the request is not
 * completed; the backfill runs again. */
static void hand_delete_backfilling(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	job_vanish(w, &w->bjob, true);
	check_crash_safety(w);
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_non_null(w->bjob);
	assert_int_equal(w->completions, 0);
	world_free(w);
}

/* Deleted by hand while Pending (the old Job was being deleted): no harm. */
static void hand_delete_pending(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	set(at(w->stream, "spec"), "table", cJSON_CreateString("v2"));
	struct sl_stream_decision d;
	decide(w, &d);
	for (size_t i = 0; i < d.n_actions; i++)
		apply(w, &d.actions[i]);
	sl_stream_decision_free(&d);
	assert_string_equal(phase(w), "Pending");
	job_vanish(w, &w->sjob, false); /* removed by hand before gc */
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_non_null(w->sjob);
	world_free(w);
}

/* Suspended or Failed: there is no Job to delete; a stray one goes. */
static void hand_delete_suspended_failed(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateTrue());
	converge(w);
	assert_int_equal(converge(w), 0);
	assert_null(w->sjob);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateFalse());
	converge(w);
	job_finish(w->sjob, "Failed", "BackoffLimitExceeded", T0, T0 + 5);
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_int_equal(converge(w), 0);
	world_free(w);
}

/* A streaming Job that finishes is started again, after a backoff that grows
 * while it keeps finishing quickly (no hot loop), and resets after a long run. */
static void streaming_job_keeps_finishing(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	int64_t expect[] = {10, 20, 40, 80, 160, 320, 600, 600};
	for (size_t i = 0; i < SL_ARRAY_SIZE(expect); i++) {
		job_finish(w->sjob, "Complete", "Completed", w->now, w->now + 1);
		w->now += 1;
		if (i == 1)
			check_crash_safety(w);
		converge(w);
		assert_null(w->sjob);
		assert_string_equal(phase(w), "Running");
		assert_string_equal(ready_reason(w), "Restarting");
		assert_int_equal(w->last_requeue, (uint64_t)expect[i] * 1000);
		/* not a second early */
		w->now += expect[i] - 1;
		assert_int_equal(converge(w), 0);
		assert_null(w->sjob);
		w->now += 1;
		converge(w);
		assert_non_null(w->sjob);
		assert_string_equal(ready_reason(w), "Running");
	}
	assert_int_equal(w->jobs_created, 1 + SL_ARRAY_SIZE(expect));
	/* a run of an hour resets the backoff */
	job_finish(w->sjob, "Complete", "Completed", w->now, w->now + 3600);
	w->now += 3600;
	converge(w);
	assert_int_equal(w->last_requeue, 10000);
	world_free(w);
}

/* A streaming Job that finished and was removed by its TTL still counts for
 * the backoff (seen in its DELETED event). */
static void streaming_job_finished_ttl(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	job_finish(w->sjob, "Complete", "Completed", w->now, w->now + 1);
	w->now += 1;
	job_vanish(w, &w->sjob, true);
	check_crash_safety(w);
	converge(w);
	assert_null(w->sjob);
	assert_string_equal(ready_reason(w), "Restarting");
	w->now += 10;
	converge(w);
	assert_non_null(w->sjob);
	world_free(w);
}

/* A backfill Job removed by ttlSecondsAfterFinished right after completing:
 * the completion counts (from the DELETED event's final state). */
static void backfill_job_ttl_after_success(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	const char *x = str(w->bfr[0], "metadata.name");
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 30);
	w->now += 31;
	job_vanish(w, &w->bjob, true);
	check_crash_safety(w);
	converge(w);
	assert_true(bfr_done(w, x));
	assert_string_equal(phase(w), "Running");
	assert_null(w->bjob);
	assert_non_null(w->sjob);
	assert_int_equal(w->jobs_created, 2); /* no rerun of the backfill */
	world_free(w);
}

/* The TTL controller deletes in the foreground: the Job is first seen with a
 * deletionTimestamp and its Complete condition; that counts too. */
static void backfill_job_ttl_foreground(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	const char *x = str(w->bfr[0], "metadata.name");
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 30);
	set(at(w->bjob, "metadata"), "deletionTimestamp", cJSON_CreateString("2023-11-14T22:14:00Z"));
	struct sl_stream_decision d;
	decide(w, &d);
	assert_int_equal(count(&d, SL_STREAM_ACT_COMPLETE_BACKFILL), 1);
	assert_int_equal(count(&d, SL_STREAM_ACT_DELETE_JOB), 0);
	sl_stream_decision_free(&d);
	converge(w);
	assert_true(bfr_done(w, x));
	world_free(w);
}

/* Without the final state (the controller missed the whole life of the
 * Job), a vanished backfill Job is not counted: the request runs again. */
static void backfill_job_vanished_unseen(void **state)
{
	struct world *w = world_new(true, false);
	converge(w);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 30);
	job_vanish(w, &w->bjob, false);
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_non_null(w->bjob);
	assert_int_equal(w->completions, 0);
	world_free(w);
}

/* The initial request's name comes from the uid: a crash after creating it
 * (before status) does not create a second one. */
static void initial_backfill_once(void **state)
{
	struct world *w = world_new(true, false);
	check_crash_safety(w);
	struct sl_stream_decision d;
	decide(w, &d);
	apply(w, &d.actions[0]); /* the create only */
	sl_stream_decision_free(&d);
	converge(w);
	assert_int_equal(w->bfrs_created, 1);
	assert_int_equal(w->n_bfr, 1);
	/* later decisions never make another, even after it completed */
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 1);
	converge(w);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateTrue());
	converge(w);
	set(at(w->stream, "spec"), "suspended", cJSON_CreateFalse());
	converge(w);
	assert_int_equal(w->bfrs_created, 1);
	assert_string_equal(phase(w), "Running");
	world_free(w);
}

/* A Job of the same name that this stream does not own blocks, untouched. */
static void foreign_job_blocks(void **state)
{
	struct world *w = world_new(false, false);
	w->sjob =
	    J("{'apiVersion':'batch/v1','kind':'Job','metadata':{'name':'s1','namespace':'ns1','uid':'x',"
	      "'ownerReferences':[{'uid':'someone-else'}]}}");
	converge(w);
	assert_string_equal(phase(w), "Pending");
	assert_string_equal(ready_reason(w), "JobNameTaken");
	assert_null(at(w->sjob, "metadata.deletionTimestamp"));
	assert_int_equal(w->jobs_created, 0);
	world_free(w);
}

/* The class gone: streams and Jobs are left alone. */
static void class_gone(void **state)
{
	struct world *w = world_new(false, false);
	converge(w);
	cJSON_Delete(w->cls);
	w->cls = NULL;
	struct sl_stream_decision d;
	decide(w, &d);
	assert_int_equal(d.n_actions, 0);
	sl_stream_decision_free(&d);
	world_free(w);
}

/* Requests for a stream without a backfill template are left pending. */
static void backfill_without_template_ignored(void **state)
{
	struct world *w = world_new(false, false);
	add_bfr(w, "orphan");
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_false(bfr_done(w, "orphan"));
	assert_null(w->bjob);
	world_free(w);
}

/* A stream without uid is rejected (a caller bug), with nothing decided. */
static void bad_input(void **state)
{
	struct world *w = world_new(false, false);
	cJSON_DeleteItemFromObject(at(w->stream, "metadata"), "uid");
	const cJSON *none[1];
	struct sl_stream_observed in = {
	    .stream = w->stream, .stream_class = w->cls, .backfills = none, .now = T0};
	struct sl_stream_decision d = SL_STREAM_DECISION_INIT;
	struct sl_error err = {0};
	assert_int_equal(sl_stream_decide(&in, &d, &err), SL_EINVALID);
	assert_int_equal(d.n_actions, 0);
	world_free(w);
}

/* Memory annotation: parsed back; malformed gives zero. */
static void memory_annotation(void **state)
{
	struct sl_stream_memory m;
	cJSON *s = J("{'metadata':{'annotations':{'sluice.dev/restarts':'3/2023-11-14T22:13:30Z/job-uid'}}}");
	sl_stream_memory_get(s, &m);
	assert_int_equal(m.restarts, 3);
	assert_int_equal(m.not_before, T0 + 10);
	assert_string_equal(m.job_uid, "job-uid");
	cJSON_Delete(s);
	s = J("{'metadata':{'annotations':{'sluice.dev/restarts':'garbage'}}}");
	sl_stream_memory_get(s, &m);
	assert_int_equal(m.restarts, 0);
	assert_int_equal(m.not_before, 0);
	cJSON_Delete(s);
}

/* ---- Arcane plugins: layouts, the CronJob backend, pruned status, adoption -- */

/* The stream's spec in layout v1 or v2 (same templates as world_new's). */
static void to_layout(struct world *w, int version, bool batch)
{
	char buf[1024];
	bool suspended = cJSON_IsTrue(at(w->stream, "spec.suspended"));
	const char *bf = version == 1 ? "'backfillJobTemplateRef':{'name':'backfill-tmpl'}," : "";
	const char *ccbf = version == 2 ? ",'backfillJobTemplateRef':{'name':'backfill-tmpl'}" : "";
	snprintf(
	    buf, sizeof(buf), "{'layoutVersion':'v%d','suspended':%s,%s'streamingBackend':{%s}}", version,
	    suspended ? "true" : "false", w->btmpl ? bf : "",
	    batch ? "'batch':{'schedule':'*/5 * * * *','jobTemplateRef':{'name':'stream-tmpl'}}"
	          : (snprintf(buf + 900, 120, "'changeCapture':{'jobTemplateRef':{'name':'stream-tmpl'}%s}",
	                      w->btmpl ? ccbf : ""),
	             buf + 900));
	cJSON *spec = at(w->stream, "spec");
	cJSON_DeleteItemFromObject(spec, "suspended");
	cJSON_DeleteItemFromObject(spec, "jobTemplateRef");
	cJSON_DeleteItemFromObject(spec, "backfillJobTemplateRef");
	set(spec, "execution", J(buf));
}

static void set_suspended(struct world *w, bool v)
{
	cJSON *e = at(w->stream, "spec.execution");
	set(e ? e : at(w->stream, "spec"), "suspended", cJSON_CreateBool(v));
}

/* Layout v1 with changeCapture: the same life as v0 (initial backfill, then
 * the streaming Job); execution.suspended suspends. */
static void layout_v1_change_capture(void **state)
{
	struct world *w = world_new(true, false);
	to_layout(w, 1, false);
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_int_equal(w->bfrs_created, 1);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 5);
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_non_null(w->sjob);
	set_suspended(w, true);
	converge(w);
	assert_string_equal(phase(w), "Suspended");
	assert_null(w->sjob);
	assert_non_null(strstr(str(w->stream, "status.conditions.0.message"), "spec.execution.suspended"));
	world_free(w);
}

/* Layout v2: the backfill reference under changeCapture is the one used. */
static void layout_v2(void **state)
{
	struct world *w = world_new(true, false);
	to_layout(w, 2, false);
	assert_null(at(w->stream, "spec.execution.backfillJobTemplateRef"));
	assert_non_null(
	    at(w->stream, "spec.execution.streamingBackend.changeCapture.backfillJobTemplateRef"));
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_string_equal(str(w->bjob, "spec.template.spec.containers.0.image"), "backfill:1");
	world_free(w);
}

/* An unknown layout version, or no usable backend: Failed with a condition
 * and a Warning Event that say what is wrong; no Job; no retry loop. */
static void layout_errors(void **state)
{
	struct world *w = world_new(false, false);
	to_layout(w, 1, false);
	set(at(w->stream, "spec.execution"), "layoutVersion", cJSON_CreateString("v9"));
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_string_equal(ready_reason(w), "InvalidSpec");
	assert_non_null(
	    strstr(str(w->stream, "status.conditions.0.message"), "unknown layout version \"v9\""));
	assert_string_equal(w->last_event_type, "Warning");
	assert_string_equal(w->last_event_reason, "InvalidSpec");
	assert_null(w->sjob);
	assert_int_equal(converge(w), 0);
	/* v1 without a backend */
	set(at(w->stream, "spec.execution"), "layoutVersion", cJSON_CreateString("v1"));
	set(at(w->stream, "spec.execution"), "streamingBackend", cJSON_CreateObject());
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_non_null(strstr(str(w->stream, "status.conditions.0.message"), "no usable backend"));
	assert_null(w->sjob);
	/* fixed: runs */
	world_free(w);
	w = world_new(false, false);
	to_layout(w, 1, false);
	converge(w);
	assert_string_equal(phase(w), "Running");
	world_free(w);
}

/* The CronJob backend: a CronJob named after the stream, Scheduled, no
 * initial BackfillRequest, Forbid, labels on it and its job template,
 * Arcane's env; converged it costs nothing. */
static void cron_created(void **state)
{
	struct world *w = world_new(true, false);
	to_layout(w, 1, true);
	converge(w);
	assert_string_equal(phase(w), "Scheduled");
	assert_int_equal(w->n_bfr, 0);
	assert_null(w->sjob);
	assert_null(w->bjob);
	assert_non_null(w->cron);
	assert_string_equal(str(w->cron, "kind"), "CronJob");
	assert_string_equal(str(w->cron, "metadata.name"), "s1");
	assert_string_equal(str(w->cron, "spec.schedule"), "*/5 * * * *");
	assert_string_equal(str(w->cron, "spec.concurrencyPolicy"), "Forbid");
	assert_false(cJSON_IsTrue(at(w->cron, "spec.suspend")));
	assert_string_equal(
	    cJSON_GetObjectItem(at(w->cron, "metadata.labels"), "arcane/stream-id")->valuestring, "s1");
	assert_string_equal(
	    cJSON_GetObjectItem(at(w->cron, "spec.jobTemplate.metadata.labels"), "arcane/stream-id")
	        ->valuestring,
	    "s1");
	assert_true(cJSON_IsTrue(at(w->cron, "metadata.ownerReferences.0.controller")));
	const cJSON *e;
	int seen = 0;
	cJSON_ArrayForEach(e, at(w->cron, "spec.jobTemplate.spec.template.spec.containers.0.env"))
	{
		if (strcmp(str(e, "name"), "STREAMCONTEXT__BACKFILL") == 0)
			seen += strcmp(str(e, "value"), "true") == 0;
		if (strcmp(str(e, "name"), "STREAMCONTEXT__BACKFILL_ID") == 0)
			seen += strcmp(str(e, "valueFrom.fieldRef.fieldPath"),
			               "metadata.labels['job-name']") == 0;
	}
	assert_int_equal(seen, 2);
	assert_status_hash_of(w, w->cron);
	unsigned writes = w->cron_writes + w->status_writes;
	assert_quiet(w, 3);
	assert_int_equal(w->cron_writes + w->status_writes, writes);
	world_free(w);
}

/* Suspend sets spec.suspend (the CronJob and its history stay); resume
 * clears it. A spec change updates the CronJob in place (same uid). */
static void cron_suspend_resume_change(void **state)
{
	struct world *w = world_new(false, false);
	to_layout(w, 1, true);
	converge(w);
	const char *uid = str(w->cron, "metadata.uid");
	char uid0[64];
	snprintf(uid0, sizeof(uid0), "%s", uid);
	set_suspended(w, true);
	converge(w);
	assert_string_equal(phase(w), "Suspended");
	assert_non_null(w->cron);
	assert_true(cJSON_IsTrue(at(w->cron, "spec.suspend")));
	set_suspended(w, false);
	converge(w);
	assert_string_equal(phase(w), "Scheduled");
	assert_false(cJSON_IsTrue(at(w->cron, "spec.suspend")));
	set(at(w->stream, "spec.execution.streamingBackend.batch"), "schedule",
	    cJSON_CreateString("0 * * * *"));
	set(at(w->stream, "spec"), "table", cJSON_CreateString("orders2"));
	converge(w);
	assert_string_equal(str(w->cron, "spec.schedule"), "0 * * * *");
	assert_string_equal(str(w->cron, "metadata.uid"), uid0);
	assert_status_hash_of(w, w->cron);
	/* a template edit updates it too */
	set(at(w->tmpl, "spec"), "backoffLimit", cJSON_CreateNumber(7));
	converge(w);
	assert_int_equal(at(w->cron, "spec.jobTemplate.spec.backoffLimit")->valueint, 7);
	assert_string_equal(phase(w), "Scheduled");
	world_free(w);
}

/* A BackfillRequest for a batch stream pauses the CronJob, runs the
 * backfill Job, completes the request and resumes the CronJob. */
static void cron_backfill(void **state)
{
	struct world *w = world_new(true, false);
	to_layout(w, 1, true);
	converge(w);
	add_bfr(w, "reload");
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_true(cJSON_IsTrue(at(w->cron, "spec.suspend")));
	assert_non_null(w->bjob);
	assert_string_equal(str(w->bjob, "metadata.name"), "s1-backfill");
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 5);
	check_crash_safety(w);
	converge(w);
	assert_true(bfr_done(w, "reload"));
	assert_string_equal(phase(w), "Scheduled");
	assert_false(cJSON_IsTrue(at(w->cron, "spec.suspend")));
	assert_null(w->bjob);
	assert_int_equal(w->completions, 1);
	world_free(w);
}

/* Switching changeCapture <-> batch removes the old object and creates the
 * new one, with no Failed on the way. */
static void backend_switch(void **state)
{
	struct world *w = world_new(false, false);
	to_layout(w, 1, false);
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_non_null(w->sjob);
	to_layout(w, 1, true);
	for (int i = 0; i < 6; i++) {
		step(w);
		assert_string_not_equal(phase(w), "Failed");
	}
	assert_string_equal(phase(w), "Scheduled");
	assert_null(w->sjob);
	assert_non_null(w->cron);
	to_layout(w, 1, false);
	for (int i = 0; i < 6; i++) {
		step(w);
		assert_string_not_equal(phase(w), "Failed");
	}
	assert_string_equal(phase(w), "Running");
	assert_null(w->cron);
	assert_non_null(w->sjob);
	world_free(w);
}

/* Under crds/mockstream.yaml's schema (no phase in conditions): one status
 * write on the way to Backfilling, one to Running, none once converged. */
static void mock_schema(void **state)
{
	struct world *w = world_new(true, false);
	w->mock_schema = true;
	assert_int_equal(converge(w), 1);
	assert_string_equal(phase(w), "Backfilling");
	assert_null(at(w->stream, "status.conditions.0.phase"));
	assert_int_equal(w->status_writes, 1);
	assert_quiet(w, 3);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 1);
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_int_equal(w->status_writes, 2);
	assert_int_equal(w->events, 2);
	assert_quiet(w, 5);
	assert_int_equal(w->status_writes, 2);
	world_free(w);
}

/* Under a plugin CRD's status schema (reason, observedGeneration, jobName,
 * backfillRequest pruned): a converged stream costs no writes, and a failed
 * Job stays Failed (no new Job) until the spec changes. */
static void pruned_schema(void **state)
{
	struct world *w = world_new(true, false);
	w->pruned_schema = true;
	converge(w);
	job_finish(w->bjob, "Complete", "Completed", T0, T0 + 1);
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_null(at(w->stream, "status.observedGeneration"));
	assert_null(at(w->stream, "status.conditions.0.reason"));
	assert_string_equal(str(w->stream, "status.conditions.0.phase"), "Running");
	unsigned writes = w->status_writes;
	assert_quiet(w, 5);
	assert_int_equal(w->status_writes, writes);

	job_finish(w->sjob, "Failed", "BackoffLimitExceeded", T0, T0 + 5);
	check_crash_safety(w);
	converge(w);
	assert_string_equal(phase(w), "Failed");
	assert_null(w->sjob);
	unsigned jobs = w->jobs_created;
	w->now += 3600;
	assert_int_equal(converge(w), 0);
	assert_null(w->sjob);
	assert_int_equal(w->jobs_created, jobs);
	/* a failed backfill sticks too */
	add_bfr(w, "again");
	assert_int_equal(converge(w), 0);
	assert_null(w->bjob);
	/* spec change: restarts (the pending request runs first) */
	set(at(w->stream, "spec"), "table", cJSON_CreateString("orders2"));
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	job_finish(w->bjob, "Failed", "BackoffLimitExceeded", T0, T0 + 5);
	converge(w);
	assert_string_equal(phase(w), "Failed");
	jobs = w->jobs_created;
	assert_int_equal(converge(w), 0);
	assert_int_equal(w->jobs_created, jobs);
	/* suspend and resume restarts it */
	set_suspended(w, true);
	converge(w);
	assert_string_equal(phase(w), "Suspended");
	set_suspended(w, false);
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	world_free(w);
}

/* A Job the Arcane operator built for the current spec (no template-hash,
 * no managed-by label) is kept running: no restart, only status. */
static void adopt_arcane_streaming_job(void **state)
{
	struct world *w = world_new(false, false);
	struct sl_error err = {0};
	cJSON *job = NULL;
	struct sl_stream_job_input in = {w->stream, w->cls, w->tmpl, NULL, false};
	assert_int_equal(sl_stream_job_build(&in, &job, &err), 0);
	cJSON_DeleteItemFromObject(at(job, "metadata.annotations"), "sluice.dev/template-hash");
	cJSON_DeleteItemFromObject(at(job, "metadata.labels"), "app.kubernetes.io/managed-by");
	cJSON_DeleteItemFromObject(at(job, "metadata.labels"), "streamId");
	stamp(w, job);
	w->sjob = job;
	set(w->stream, "status", J("{'phase':'Running'}"));
	converge(w);
	assert_string_equal(phase(w), "Running");
	assert_ptr_equal(w->sjob, job);
	assert_null(at(job, "metadata.deletionTimestamp"));
	assert_int_equal(w->jobs_created, 0);
	/* a Job of another spec is replaced */
	set(at(w->stream, "spec"), "table", cJSON_CreateString("orders2"));
	converge(w);
	assert_int_equal(w->jobs_created, 1);
	assert_string_equal(phase(w), "Running");
	world_free(w);
}

/* A running backfill Job the Arcane operator named S (arcane/backfilling
 * "true", BACKFILL_ID env) is the stream's backfill: no second one; its
 * success completes the request and the streaming Job S follows. */
static void adopt_arcane_backfill_job(void **state)
{
	struct world *w = world_new(true, false);
	cJSON *b = add_bfr(w, "s1-initial-backfill-abcde");
	struct sl_error err = {0};
	cJSON *job = NULL;
	struct sl_stream_job_input in = {w->stream, w->cls, w->btmpl, b, false};
	assert_int_equal(sl_stream_job_build(&in, &job, &err), 0);
	set(at(job, "metadata"), "name", cJSON_CreateString("s1"));
	cJSON_DeleteItemFromObject(at(job, "metadata.annotations"), "sluice.dev/template-hash");
	cJSON_DeleteItemFromObject(at(job, "metadata.annotations"), "sluice.dev/backfill-request");
	set(at(job, "metadata.annotations"), "configuration-hash", cJSON_CreateString("0123:4567"));
	stamp(w, job);
	w->sjob = job;
	set(w->stream, "status", J("{'phase':'Backfilling'}"));
	converge(w);
	assert_string_equal(phase(w), "Backfilling");
	assert_ptr_equal(w->sjob, job);
	assert_null(at(job, "metadata.deletionTimestamp"));
	assert_null(w->bjob);
	assert_int_equal(w->jobs_created, 0);
	assert_int_equal(w->bfrs_created, 0);
	job_finish(w->sjob, "Complete", "Completed", T0, T0 + 60);
	converge(w);
	assert_true(bfr_done(w, "s1-initial-backfill-abcde"));
	assert_string_equal(phase(w), "Running");
	assert_non_null(w->sjob);
	assert_string_equal(str(w->sjob, "metadata.labels.arcane/backfilling"), "false");
	assert_int_equal(w->jobs_created, 1);
	world_free(w);
}

/* A write the controller could not make (a webhook refused the backfill
 * Job): the next decision records it in the Ready condition, with a
 * Warning Event right after that status write, and asks for the Job again;
 * the phase stays. Once the writes go through, the condition is put back
 * with one more status write (no Event: that state was told before), and
 * the stream is quiet. Also with a plugin CRD that prunes the condition's
 * reason. */
static void write_error_reported(void **state)
{
	for (int pruned = 0; pruned < 2; pruned++) {
		struct world *w = world_new(true, false);
		struct sl_stream_decision d;
		const char *err = "create-job s1-backfill failed: admission webhook \"v.example.com\" denied "
		                  "the request: not now";

		w->pruned_schema = pruned;
		/* up to the decision that creates the backfill Job */
		for (int i = 0;; i++) {
			assert_true(i < 5);
			decide(w, &d);
			if (count(&d, SL_STREAM_ACT_CREATE_JOB))
				break;
			for (size_t k = 0; k < d.n_actions; k++)
				apply(w, &d.actions[k]);
			sl_stream_decision_free(&d);
		}
		for (size_t i = 0; i < d.n_actions && d.actions[i].type != SL_STREAM_ACT_CREATE_JOB; i++)
			apply(w, &d.actions[i]); /* the create is refused */
		sl_stream_decision_free(&d);
		char was[32];
		snprintf(was, sizeof(was), "%s", phase(w));
		assert_null(w->bjob);
		unsigned events = w->events, writes = w->status_writes;
		char before[256];
		snprintf(before, sizeof(before), "%s", str(w->stream, "status.conditions.0.message"));

		w->write_error = err;
		decide(w, &d);
		size_t st = d.n_actions;
		for (size_t i = 0; i < d.n_actions; i++)
			if (d.actions[i].type == SL_STREAM_ACT_WRITE_STATUS)
				st = i;
		assert_true(st + 1 < d.n_actions);
		assert_string_equal(str(d.actions[st].status, "status.phase"), was);
		assert_string_equal(str(d.actions[st].status, "status.conditions.0.status"), "False");
		assert_string_equal(str(d.actions[st].status, "status.conditions.0.reason"),
		                    "ReconcileError");
		assert_string_equal(str(d.actions[st].status, "status.conditions.0.message"), err);
		assert_int_equal(d.actions[st + 1].type, SL_STREAM_ACT_EVENT);
		assert_string_equal(d.actions[st + 1].event_type, "Warning");
		assert_string_equal(d.actions[st + 1].reason, "ReconcileError");
		assert_non_null(strstr(d.actions[st + 1].message, err));
		assert_int_equal(count(&d, SL_STREAM_ACT_CREATE_JOB), 1);
		assert_int_equal(count(&d, SL_STREAM_ACT_EVENT), 1);
		for (size_t i = 0; i < d.n_actions; i++)
			apply(w, &d.actions[i]);
		sl_stream_decision_free(&d);
		assert_non_null(w->bjob);
		assert_int_equal(w->events, events + 1);
		assert_int_equal(w->status_writes, writes + 1);
		/* the same error again: nothing new to write or tell */
		decide(w, &d);
		assert_int_equal(d.n_actions, 0);
		sl_stream_decision_free(&d);

		/* the writes went through: the condition comes back, once */
		w->write_error = NULL;
		step(w);
		assert_string_equal(phase(w), was);
		assert_string_equal(str(w->stream, "status.conditions.0.message"), before);
		assert_int_equal(w->status_writes, writes + 2);
		/* the state it is back to was told before (a plugin CRD that
		 * prunes the reason cannot tell it was a ReconcileError) */
		assert_int_equal(w->events, events + 1 + pruned);
		assert_quiet(w, 2);
		world_free(w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(new_stream_with_backfill),
	    cmocka_unit_test(new_stream_without_backfill),
	    cmocka_unit_test(new_stream_suspended),
	    cmocka_unit_test(backfill_succeeds),
	    cmocka_unit_test(backfill_requested_while_running),
	    cmocka_unit_test(suspend_and_resume),
	    cmocka_unit_test(streaming_job_fails),
	    cmocka_unit_test(failed_restarts_on_spec_change),
	    cmocka_unit_test(failed_restarts_on_template_change),
	    cmocka_unit_test(failed_restarts_on_resume),
	    cmocka_unit_test(spec_change_replaces_job),
	    cmocka_unit_test(template_change_replaces_job),
	    cmocka_unit_test(converged_no_writes),
	    cmocka_unit_test(last_transition_time),
	    cmocka_unit_test(stream_deleted),
	    cmocka_unit_test(suspend_during_backfill),
	    cmocka_unit_test(resume_with_backfill_pending),
	    cmocka_unit_test(backfill_requested_while_suspended),
	    cmocka_unit_test(backfill_job_fails),
	    cmocka_unit_test(missing_template),
	    cmocka_unit_test(missing_backfill_template),
	    cmocka_unit_test(invalid_job),
	    cmocka_unit_test(template_change_during_backfill),
	    cmocka_unit_test(second_backfill_while_one_runs),
	    cmocka_unit_test(oldest_backfill_first),
	    cmocka_unit_test(stream_deleted_mid_backfill),
	    cmocka_unit_test(hand_delete_running),
	    cmocka_unit_test(hand_delete_backfilling),
	    cmocka_unit_test(hand_delete_pending),
	    cmocka_unit_test(hand_delete_suspended_failed),
	    cmocka_unit_test(streaming_job_keeps_finishing),
	    cmocka_unit_test(streaming_job_finished_ttl),
	    cmocka_unit_test(backfill_job_ttl_after_success),
	    cmocka_unit_test(backfill_job_ttl_foreground),
	    cmocka_unit_test(backfill_job_vanished_unseen),
	    cmocka_unit_test(initial_backfill_once),
	    cmocka_unit_test(shard_label_follows),
	    cmocka_unit_test(foreign_job_blocks),
	    cmocka_unit_test(class_gone),
	    cmocka_unit_test(backfill_without_template_ignored),
	    cmocka_unit_test(bad_input),
	    cmocka_unit_test(memory_annotation),
	    cmocka_unit_test(layout_v1_change_capture),
	    cmocka_unit_test(layout_v2),
	    cmocka_unit_test(layout_errors),
	    cmocka_unit_test(cron_created),
	    cmocka_unit_test(cron_suspend_resume_change),
	    cmocka_unit_test(cron_backfill),
	    cmocka_unit_test(backend_switch),
	    cmocka_unit_test(pruned_schema),
	    cmocka_unit_test(mock_schema),
	    cmocka_unit_test(running_class_asks_for_secret),
	    cmocka_unit_test(adopt_arcane_streaming_job),
	    cmocka_unit_test(adopt_arcane_backfill_job),
	    cmocka_unit_test(write_error_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
