/* Unit tests of the pure parts of the cmd module: kubectl's AGE format, the
 * table writer, the model and tables of `sluice status`, the progress line
 * of sync and diff, and the completion scripts made from the flag tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmd.h"
#include "sluice/base.h"
#include "sluice/sync.h"

#include <stdio.h>
#include <string.h>

static void age(void **state)
{
	static const struct {
		int64_t s;
		const char *want;
	} cases[] = {
	    {-2, "<invalid>"},
	    {-1, "0s"},
	    {0, "0s"},
	    {59, "59s"},
	    {119, "119s"},
	    {120, "2m"},
	    {121, "2m1s"},
	    {599, "9m59s"},
	    {600, "10m"},
	    {3 * 3600 - 1, "179m"},
	    {3 * 3600, "3h"},
	    {3 * 3600 + 30 * 60, "3h30m"},
	    {8 * 3600, "8h"},
	    {48 * 3600 - 1, "47h"},
	    {48 * 3600, "2d"},
	    {49 * 3600, "2d1h"},
	    {8 * 86400, "8d"},
	    {729 * 86400, "729d"},
	    {730 * 86400, "2y"},
	    {731 * 86400, "2y1d"},
	    {8 * 365 * 86400, "8y"},
	};
	char out[32];

	for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
		sl_cmd__age(cases[i].s, out);
		assert_string_equal(out, cases[i].want);
	}
}

static void table(void **state)
{
	static const char *const headers[] = {"NAME", "PHASE", "MESSAGE"};
	static const char *const r1[] = {"a", "Running", "all good"};
	static const char *const r2[] = {"a-much-longer-name", "Failed", "bad\n\033[2Jthing"};
	static const enum sl_cmd_colour c2[] = {SL_CMD_PLAIN, SL_CMD_RED, SL_CMD_PLAIN};
	struct sl_cmd__table t;
	struct sl_buf b;

	sl_buf_init(&b, 1 << 20);
	assert_int_equal(sl_cmd__table_init(&t, headers, 3), 0);
	assert_int_equal(sl_cmd__table_add(&t, r1, NULL), 0);
	assert_int_equal(sl_cmd__table_add(&t, r2, c2), 0);
	assert_int_equal(sl_cmd__table_write(&t, true, false, &b), 0);
	/* three spaces after the widest cell, at least six wide; control
	 * characters of a cell are spaces */
	assert_string_equal(b.data, "NAME                 PHASE     MESSAGE\n"
	                            "a                    Running   all good\n"
	                            "a-much-longer-name   Failed    bad  [2Jthing\n");
	sl_buf_reset(&b);
	assert_int_equal(sl_cmd__table_write(&t, false, true, &b), 0);
	assert_string_equal(b.data, "a                    Running   all good\n"
	                            "a-much-longer-name   \033[31mFailed\033[0m    bad  [2Jthing\n");
	sl_cmd__table_free(&t);
	sl_buf_free(&b);
}

/* What `sluice status` lists, as the API server answers (items only). */
static const char observed_json[] =
    "{\"configmaps\": [{\"metadata\": {\"name\": \"sluice-inventory-prod\", \"namespace\": \"ops\","
    "   \"annotations\": {\"sluice.dev/source\": \"prod\"}},"
    "  \"data\": {\"inventory\": "
    "\"{\\\"v\\\":1,\\\"o\\\":{\\\"/v1/ConfigMap\\\":{\\\"ops\\\":{\\\"a\\\":\\\"x\\\","
    "\\\"b\\\":\\\"y\\\"}}}}\","
    "   \"status\": \"{\\\"revision\\\":\\\"0123456789abcdef0123456789abcdef01234567\\\",\\\"result\\\":"
    "\\\"failed\\\",\\\"start\\\":\\\"2026-01-01T00:00:00Z\\\",\\\"end\\\":\\\"2026-01-01T00:00:07Z\\\","
    "\\\"applied\\\":3,\\\"unchanged\\\":5,\\\"failed\\\":1,\\\"pruned\\\":2,\\\"pruneSkipped\\\":0,"
    "\\\"errorCount\\\":1,\\\"errors\\\":[{\\\"file\\\":\\\"s.yaml\\\",\\\"line\\\":4,\\\"reason\\\":"
    "\\\"denied\\\"}]}\"}},"
    "  {\"metadata\": {\"name\": \"sluice-inventory-empty\", \"namespace\": \"ops\"}, \"data\": {}}],"
    " \"streams\": [{\"class\": \"mock\", \"kind\": \"MockStream\", \"apiVersion\": "
    "\"streaming.sneaksanddata.com/v1\", \"items\": ["
    "  {\"metadata\": {\"name\": \"s2\", \"namespace\": \"ops\", \"uid\": \"u2\", \"creationTimestamp\": "
    "\"2026-01-01T00:00:00Z\"},"
    "   \"spec\": {\"suspended\": false, \"jobTemplateRef\": {\"name\": \"t\"}},"
    "   \"status\": {\"phase\": \"Backfilling\", \"conditions\": [{\"type\": \"Ready\", \"status\": "
    "\"False\","
    "    \"message\": \"Job s2-backfill runs BackfillRequest r2\"}]}},"
    "  {\"metadata\": {\"name\": \"s1\", \"namespace\": \"ops\", \"uid\": \"u1\", \"creationTimestamp\": "
    "\"2025-12-31T23:00:00Z\"},"
    "   \"spec\": {\"suspended\": true, \"jobTemplateRef\": {\"name\": \"t\"}},"
    "   \"status\": {\"phase\": \"Suspended\"}},"
    "  {\"metadata\": {\"name\": \"c1\", \"namespace\": \"ops\", \"uid\": \"u3\"},"
    "   \"spec\": {\"execution\": {\"layoutVersion\": \"v1\", \"suspended\": false, \"streamingBackend\":"
    "    {\"batch\": {\"jobTemplateRef\": {\"name\": \"t\"}, \"schedule\": \"* * * * *\"}}}}}]}],"
    " \"jobs\": [{\"metadata\": {\"name\": \"s2-backfill\", \"namespace\": \"ops\", \"ownerReferences\": "
    "[{\"uid\": \"u2\"}],"
    "   \"annotations\": {\"sluice.dev/backfill-request\": \"r2\"}}},"
    "  {\"metadata\": {\"name\": \"s1\", \"namespace\": \"other\", \"labels\": {\"arcane/stream-id\": "
    "\"s1\"}}}],"
    " \"cronjobs\": [{\"metadata\": {\"name\": \"c1\", \"namespace\": \"ops\", \"labels\": "
    "{\"arcane/stream-id\": "
    "\"c1\"}}, \"spec\": {\"suspend\": true}}],"
    " \"backfillrequests\": ["
    "  {\"metadata\": {\"name\": \"r1\", \"namespace\": \"ops\", \"creationTimestamp\": "
    "\"2026-01-01T00:00:00Z\"},"
    "   \"spec\": {\"streamClass\": \"mock\", \"streamId\": \"s2\"}},"
    "  {\"metadata\": {\"name\": \"r2\", \"namespace\": \"ops\", \"creationTimestamp\": "
    "\"2026-01-01T00:00:01Z\"},"
    "   \"spec\": {\"streamClass\": \"mock\", \"streamId\": \"s2\"}},"
    "  {\"metadata\": {\"name\": \"r0\", \"namespace\": \"ops\"}, \"spec\": {\"streamClass\": \"mock\","
    "   \"streamId\": \"s2\", \"completed\": true}},"
    "  {\"metadata\": {\"name\": \"q1\", \"namespace\": \"ops\", \"creationTimestamp\": "
    "\"2026-01-01T00:00:03Z\"},"
    "   \"spec\": {\"streamClass\": \"mock\", \"streamId\": \"s1\"}},"
    "  {\"metadata\": {\"name\": \"q0\", \"namespace\": \"ops\", \"creationTimestamp\": "
    "\"2026-01-01T00:00:02Z\"},"
    "   \"spec\": {\"streamClass\": \"other\", \"streamId\": \"s1\"}}],"
    " \"warnings\": [\"StreamClass gone: cannot list Gone\"]}";

static cJSON *model_of_fixture(void)
{
	cJSON *obs = cJSON_Parse(observed_json), *model = NULL;

	assert_non_null(obs);
	assert_int_equal(sl_cmd__status_model(obs, &model), 0);
	cJSON_Delete(obs);
	return model;
}

static const char *jstr(const cJSON *o, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		o = cJSON_GetObjectItemCaseSensitive(o, key);
		path = dot + 1;
	}
	o = cJSON_GetObjectItemCaseSensitive(o, path);
	return cJSON_IsString(o) ? o->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static void status_model(void **state)
{
	cJSON *m = model_of_fixture();
	const cJSON *sources = cJSON_GetObjectItemCaseSensitive(m, "sources");
	const cJSON *streams = cJSON_GetObjectItemCaseSensitive(m, "streams");
	const cJSON *s;

	/* sorted by namespace and name: "empty" before "prod" */
	assert_int_equal(cJSON_GetArraySize(sources), 2);
	s = cJSON_GetArrayItem(sources, 0);
	assert_string_equal(jstr(s, "name"), "empty");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(s, "result")));
	s = cJSON_GetArrayItem(sources, 1);
	assert_string_equal(jstr(s, "name"), "prod");
	assert_string_equal(jstr(s, "configMap"), "sluice-inventory-prod");
	assert_string_equal(jstr(s, "result"), "failed");
	assert_int_equal(jnum(s, "objects"), 2);
	assert_int_equal(jnum(s, "applied"), 3);
	assert_int_equal(jnum(s, "pruned"), 2);
	assert_int_equal(jnum(s, "errorCount"), 1);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "errors")), 1);

	/* by namespace, kind, name */
	assert_int_equal(cJSON_GetArraySize(streams), 3);
	s = cJSON_GetArrayItem(streams, 0);
	assert_string_equal(jstr(s, "name"), "c1");
	assert_string_equal(jstr(s, "job.kind"), "CronJob");
	assert_string_equal(jstr(s, "job.state"), "Suspended");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(s, "phase")));
	s = cJSON_GetArrayItem(streams, 1);
	assert_string_equal(jstr(s, "name"), "s1");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "suspended")));
	/* a Job of another namespace is not its Job; a request of another
	 * class is not its request */
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(s, "job")));
	assert_string_equal(jstr(s, "backfillRequest.name"), "q1");
	assert_string_equal(jstr(s, "backfillRequest.state"), "Pending");
	assert_int_equal(jnum(s, "pendingBackfills"), 1);
	s = cJSON_GetArrayItem(streams, 2);
	assert_string_equal(jstr(s, "name"), "s2");
	assert_string_equal(jstr(s, "streamClass"), "mock");
	assert_string_equal(jstr(s, "job.name"), "s2-backfill");
	assert_string_equal(jstr(s, "job.state"), "Active");
	/* the running one, not the oldest; the completed one not counted */
	assert_string_equal(jstr(s, "backfillRequest.name"), "r2");
	assert_string_equal(jstr(s, "backfillRequest.state"), "Running");
	assert_int_equal(jnum(s, "pendingBackfills"), 2);
	assert_string_equal(jstr(s, "ready.message"), "Job s2-backfill runs BackfillRequest r2");

	assert_string_equal(
	    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "warnings"), 0)->valuestring,
	    "StreamClass gone: cannot list Gone");
	cJSON_Delete(m);
}

static void status_print(void **state)
{
	cJSON *m = model_of_fixture();
	struct sl_cmd__status_view v = {.headers = true};
	int64_t now;
	struct sl_buf b;

	assert_int_equal(sl_time_parse_rfc3339("2026-01-01T01:00:00Z", &now), 0);
	sl_buf_init(&b, 1 << 20);
	assert_int_equal(sl_cmd__status_print(m, &v, now, &b), 0);
	assert_string_equal(
	    b.data,
	    "SOURCE   REVISION       LAST SYNC   RESULT   APPLIED   PRUNED   FAILED\n"
	    "empty    <none>         <none>      <none>   0         0        0\n"
	    "prod     0123456789ab   59m         failed   3         2        1\n"
	    "\n"
	    "KIND         NAME   PHASE         JOB               BACKFILL   AGE      MESSAGE\n"
	    "MockStream   c1     <none>        cronjob/c1        <none>     <none>   \n"
	    "MockStream   s1     Suspended     <none>            q1         120m     \n"
	    "MockStream   s2     Backfilling   job/s2-backfill   r2         60m      Job s2-backfill runs "
	    "BackfillRequest r2\n");

	sl_buf_reset(&b);
	v = (struct sl_cmd__status_view){
	    .wide = true, .all_namespaces = true, .colour = true, .headers = true};
	assert_int_equal(sl_cmd__status_print(m, &v, now, &b), 0);
	/* the widths count what shows, not the colours */
	assert_string_equal(
	    b.data,
	    "NAMESPACE   SOURCE   REVISION                                   LAST SYNC   RESULT   "
	    "APPLIED   PRUNED   FAILED   UNCHANGED   OBJECTS   DURATION   MESSAGE\n"
	    "ops         empty    <none>                                     <none>      <none>   "
	    "0         0        0        0           0         <none>     \n"
	    "ops         prod     0123456789abcdef0123456789abcdef01234567   59m         "
	    "\033[31mfailed\033[0m   3         2        \033[31m1\033[0m        5           2  "
	    "       7s         s.yaml:4: denied\n"
	    "\n"
	    "NAMESPACE   KIND         NAME   CLASS   PHASE         READY    JOB               JOB STATE "
	    "  BACKFILL   PENDING   AGE      MESSAGE\n"
	    "ops         MockStream   c1     mock    <none>        <none>   cronjob/c1        Suspended "
	    "  <none>     0         <none>   \n"
	    "ops         MockStream   s1     mock    \033[90mSuspended\033[0m     <none>   <none>      "
	    "      <none>      q1         1         120m     \n"
	    "ops         MockStream   s2     mock    \033[36mBackfilling\033[0m   False    "
	    "job/s2-backfill   Active      r2         2         60m      Job s2-backfill runs "
	    "BackfillRequest r2\n");
	sl_buf_free(&b);
	cJSON_Delete(m);
}

static void progress_line(void **state)
{
	struct sl_sync_progress p = {.planned = 5000, .applied = 900, .unchanged = 280, .failed = 20};
	char out[256];

	sl_cmd__progress_line("sync", &p, 3250, 0, out, sizeof(out));
	assert_string_equal(out,
	                    "sluice sync: 1200/5000 objects, 900 applied, 280 unchanged, 20 failed, 3.2s");
	p.pruned = 3;
	sl_cmd__progress_line("diff", &p, 61000, 0, out, sizeof(out));
	assert_string_equal(
	    out,
	    "sluice diff: 1200/5000 objects, 900 would change, 280 unchanged, 20 failed, 3 pruned, 61.0s");
	sl_cmd__progress_line("sync", &p, 0, 20, out, sizeof(out));
	assert_string_equal(out, "sluice sync: 1200/50");
}

/* flag is a word of the flags="..." line of a bash case arm */
static bool offered_in(const char *arm, const char *flag)
{
	const char *line = strstr(arm, "flags=\""), *end = line ? strchr(line + 7, '"') : NULL;
	size_t n = strlen(flag);

	for (const char *p = line; p && (p = strstr(p, flag)) && p < end; p += n)
		if ((p[-1] == ' ' || p[-1] == '"') && (p[n] == ' ' || p[n] == '"'))
			return true;
	return false;
}

/* Exactly the flags --help lists (and --help) are offered by completion. */
static void completion(void **state)
{
	struct sl_buf bash, zsh;

	sl_buf_init(&bash, 1 << 20);
	sl_buf_init(&zsh, 1 << 20);
	assert_int_equal(sl_cmd__completion_script("bash", &bash), 0);
	assert_int_equal(sl_cmd__completion_script("zsh", &zsh), 0);
	assert_int_equal(sl_cmd__completion_script("fish", &zsh), SL_EINVALID);
	assert_non_null(strstr(bash.data, "complete -F _sluice sluice kubectl-sluice\n"));
	assert_true(sl_str_has_prefix(zsh.data, "#compdef sluice kubectl-sluice\n"));
	for (size_t i = 0; i < sl_cmd_n_commands; i++) {
		const struct sl_cmd_command *c = &sl_cmd_commands[i];
		const char *from, *to;
		char arm[64];
		char *bash_arm;

		snprintf(arm, sizeof(arm), "\n    (%s)\n", c->name);
		assert_non_null(strstr(zsh.data, arm));
		snprintf(arm, sizeof(arm), "\n    %s)\n", c->name);
		from = strstr(bash.data, arm);
		assert_non_null(from);
		to = strstr(from, "\n        ;;");
		assert_non_null(to);
		/* the case arm of this command */
		bash_arm = sl_strndup(from, (size_t)(to - from));
		for (size_t j = 0; c->spec && j < c->spec->n_flags; j++) {
			const struct sl_cmd_flag *f = &c->spec->flags[j];
			char flag[96];

			snprintf(flag, sizeof(flag), "--%s", f->name);
			assert_int_equal(offered_in(bash_arm, flag),
			                 sl_cmd__flag_listed(c->spec, f) || f->arg == SL_CMD_HELP);
		}
		free(bash_arm);
	}
	assert_non_null(
	    strstr(bash.data, "-o|--output) mapfile -t COMPREPLY < <(compgen -W \"wide json yaml\""));
	assert_non_null(strstr(zsh.data,
	                       "'(-o --output)'{-o+,--output=}'[wide, json or yaml (default: tables)]"
	                       ":FORMAT:(wide json yaml)'"));
	sl_buf_free(&bash);
	sl_buf_free(&zsh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(age),          cmocka_unit_test(table),         cmocka_unit_test(status_model),
	    cmocka_unit_test(status_print), cmocka_unit_test(progress_line), cmocka_unit_test(completion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
