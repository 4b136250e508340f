/* Integration test helpers: kubectl, namespaces, Job status. */
#include "itest.h"
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char kubectl[1024];

const char *it_kubeconfig(void)
{
	const char *k = getenv("SLUICE_TEST_KUBECONFIG");
	return k && *k ? k : getenv("KUBECONFIG");
}

const char *it_kubeconfig_restricted(void)
{
	const char *k = getenv("SLUICE_TEST_KUBECONFIG_RESTRICTED");
	return k && *k ? k : NULL;
}

const char *it_kubectl_path(void)
{
	return kubectl;
}

void it_require_cluster(void)
{
	const char *k = it_kubeconfig();
	const char *env = getenv("SLUICE_KUBECTL");

	if (!k || !*k || access(k, R_OK) != 0) {
		printf("1..0 # SKIP no cluster: set KUBECONFIG or run tests/cluster/up (see README)\n");
		fflush(stdout);
		/* a TAP plan of 0 with SKIP is how meson's TAP parser reports a skip */
		exit(0);
	}
	if (env && *env)
		snprintf(kubectl, sizeof(kubectl), "%s", env);
	else {
		snprintf(kubectl, sizeof(kubectl), "%s/cluster/bin/kubectl", SLUICE_BUILD_ROOT);
		if (access(kubectl, X_OK) != 0)
			snprintf(kubectl, sizeof(kubectl), "kubectl");
	}
}

int it_kubectl(char **out, const char *stdin_data, const char *fmt, ...)
{
	char args[4096], cmd[8192], tmpl[] = "/tmp/it-stdin-XXXXXX";
	va_list ap;
	FILE *p;
	int status, fd = -1;
	size_t cap = 4096, len = 0;
	char *buf;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	if (stdin_data) {
		fd = mkstemp(tmpl);
		if (fd < 0 || write(fd, stdin_data, strlen(stdin_data)) < 0)
			return -1;
		close(fd);
	}
	snprintf(cmd, sizeof(cmd), "'%s' --kubeconfig '%s' %s %s%s", kubectl, it_kubeconfig(), args,
	         stdin_data ? "< " : "", stdin_data ? tmpl : "");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	buf = malloc(cap);
	for (;;) {
		size_t n = fread(buf + len, 1, cap - len - 1, p);
		if (n == 0)
			break;
		len += n;
		if (cap - len < 1024) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	buf[len] = '\0';
	status = pclose(p);
	if (stdin_data)
		unlink(tmpl);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Namespaces made by this test program; whatever is left at exit (a failed
 * assertion skips the test's own cleanup) is deleted then. */
static char created[64][64];
static int ncreated;

static void delete_leftovers(void)
{
	for (int i = 0; i < ncreated; i++)
		if (created[i][0])
			it_kubectl(NULL, NULL, "delete namespace %s --wait=false >/dev/null 2>&1",
			           created[i]);
}

int it_ns_create(const char *prefix, char name[64])
{
	unsigned r = 0;
	int rc;
	if (getrandom(&r, sizeof(r), 0) < 0)
		r = (unsigned)getpid();
	snprintf(name, 64, "%.40s-%06x", prefix, r & 0xffffff);
	rc = it_kubectl(NULL, NULL, "create namespace %s >/dev/null", name);
	if (rc == 0 && ncreated < 64) {
		if (ncreated == 0)
			atexit(delete_leftovers);
		snprintf(created[ncreated++], 64, "%s", name);
	}
	return rc;
}

void it_ns_delete(const char *name)
{
	if (!name || !*name)
		return;
	for (int i = 0; i < ncreated; i++)
		if (strcmp(created[i], name) == 0)
			created[i][0] = '\0';
	it_kubectl(NULL, NULL, "delete namespace %s --wait=true --timeout=60s >/dev/null 2>&1", name);
}

int it_job_finish(const char *ns, const char *name, bool succeeded, const char *reason)
{
	char now[40], patch[2048];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* The API server requires startTime, and for a terminal Job the
	 * interim conditions (SuccessCriteriaMet / FailureTarget) first. */
	if (succeeded)
		snprintf(patch, sizeof(patch),
		         "{\"status\":{\"startTime\":\"%s\",\"completionTime\":\"%s\",\"succeeded\":1,"
		         "\"active\":0,\"conditions\":[{\"type\":\"SuccessCriteriaMet\",\"status\":\"True\","
		         "\"reason\":\"CompletionsReached\",\"lastTransitionTime\":\"%s\"},"
		         "{\"type\":\"Complete\",\"status\":\"True\",\"reason\":\"%s\","
		         "\"lastTransitionTime\":\"%s\"}]}}",
		         now, now, now, reason ? reason : "CompletionsReached", now);
	else
		snprintf(patch, sizeof(patch),
		         "{\"status\":{\"startTime\":\"%s\",\"failed\":1,\"active\":0,\"conditions\":["
		         "{\"type\":\"FailureTarget\",\"status\":\"True\",\"reason\":\"%s\","
		         "\"lastTransitionTime\":\"%s\"},"
		         "{\"type\":\"Failed\",\"status\":\"True\",\"reason\":\"%s\","
		         "\"lastTransitionTime\":\"%s\"}]}}",
		         now, reason ? reason : "BackoffLimitExceeded", now,
		         reason ? reason : "BackoffLimitExceeded", now);
	return it_kubectl(NULL, NULL,
	                  "-n %s patch job %s --subresource=status --type=merge -p '%s' >/dev/null", ns, name,
	                  patch);
}

int it_wait_jsonpath(const char *ns, const char *resource, const char *jsonpath, const char *want,
                     int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		char *out = NULL;
		int r = it_kubectl(&out, NULL, "%s%s get %s -o jsonpath='%s' 2>/dev/null", ns ? "-n " : "",
		                   ns ? ns : "", resource, jsonpath);
		bool ok = r == 0 && out && strcmp(out, want) == 0;
		free(out);
		if (ok)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}
