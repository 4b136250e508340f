/* Helpers of the stream controller integration tests (see stest.h). */
#include "stest.h"
#include "config.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

int st_failed;
static int total_failed;

void st_plan(int n)
{
	printf("1..%d\n", n);
	fflush(stdout);
}

void st_run(int n, const char *name, void (*fn)(void))
{
	time_t t0 = time(NULL);
	st_failed = 0;
	printf("# %s\n", name);
	fflush(stdout);
	fn();
	printf("%s %d - %s (%lds)\n", st_failed ? "not ok" : "ok", n, name, (long)(time(NULL) - t0));
	fflush(stdout);
	total_failed += st_failed != 0;
}

int st_exit(void)
{
	return total_failed ? 1 : 0;
}

void st_kind_name(const char *prefix, char kind[64], char plural[64])
{
	unsigned r = 0;
	if (getrandom(&r, sizeof(r), 0) < 0)
		r = (unsigned)getpid();
	snprintf(kind, 64, "%s%06xStream", prefix, r & 0xffffff);
	for (size_t i = 0; kind[i]; i++)
		plural[i] = (char)(kind[i] >= 'A' && kind[i] <= 'Z' ? kind[i] - 'A' + 'a' : kind[i]);
	plural[strlen(kind)] = '\0';
	strcat(plural, "s");
}

int st_apply_kind_crd(const char *kind, const char *plural)
{
	char *crd = NULL;
	int r;
	/* the example plugin's CRD under our own names */
	r = it_kubectl(NULL, NULL,
	               "apply -f '%s/crds/' >/dev/null && sed -e 's/mockstreams\\.streaming/%s.streaming/' "
	               "-e 's/kind: MockStream/kind: %s/' -e 's/listKind: MockStreamList/listKind: %sList/' "
	               "-e 's/plural: mockstreams/plural: %s/' -e 's/singular: mockstream/singular: %.*s/' "
	               "-e 's/shortNames: \\[ms\\]/shortNames: []/' '%s/crds/mockstream.yaml' | '%s' "
	               "--kubeconfig '%s' apply -f - >/dev/null",
	               SLUICE_SOURCE_ROOT, plural, kind, kind, plural, (int)strlen(plural) - 1, plural,
	               SLUICE_SOURCE_ROOT, it_kubectl_path(), it_kubeconfig());
	free(crd);
	return r;
}

int st_make_kind(const char *prefix, char kind[64], char plural[64])
{
	st_kind_name(prefix, kind, plural);
	if (st_apply_kind_crd(kind, plural) != 0)
		return -1;
	return it_kubectl(NULL, NULL,
	                  "wait --for condition=established --timeout=60s crd/%s.streaming.sneaksanddata.com "
	                  ">/dev/null",
	                  plural);
}

void st_delete_kind(const char *plural)
{
	it_kubectl(NULL, NULL, "delete crd %s.streaming.sneaksanddata.com --wait=false >/dev/null 2>&1",
	           plural);
}

int st_apply(const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -1;
	r = it_kubectl(NULL, text, "apply -f - >/dev/null");
	free(text);
	return r;
}

void st_get(const char *ns, const char *what, const char *path, char *out, size_t outsz)
{
	char *o = NULL;
	int r = it_kubectl(&o, NULL, "%s%s get %s -o jsonpath='%s' 2>/dev/null", ns ? "-n " : "",
	                   ns ? ns : "", what, path);
	snprintf(out, outsz, "%s", r == 0 && o ? o : "");
	free(o);
}

bool st_wait_change(const char *ns, const char *what, const char *path, const char * not, char *out,
                    size_t outsz, int timeout_ms)
{
	for (int w = 0; w <= timeout_ms; w += 200) {
		st_get(ns, what, path, out, outsz);
		if (*out && strcmp(out, not ) != 0)
			return true;
		usleep(200 * 1000);
	}
	return false;
}

bool st_wait_gone(const char *ns, const char *what, int timeout_ms)
{
	for (int w = 0; w <= timeout_ms; w += 200) {
		char *o = NULL;
		it_kubectl(&o, NULL, "-n %s get %s 2>&1", ns, what);
		bool gone = o && strstr(o, "NotFound");
		free(o);
		if (gone)
			return true;
		usleep(200 * 1000);
	}
	return false;
}

int st_events(const char *ns, const char *name, const char *reason, int *count)
{
	char *out = NULL, *line, *save = NULL;
	int n = 0;

	*count = 0;
	if (it_kubectl(&out, NULL,
	               "-n %s get events --field-selector involvedObject.name=%s,reason=%s -o "
	               "jsonpath='{range .items[*]}{.count}{\"\\n\"}{end}'",
	               ns, name, reason) != 0) {
		free(out);
		return -1;
	}
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		n++;
		*count += atoi(line) > 0 ? atoi(line) : 1;
	}
	free(out);
	return n;
}

int st_wait_events(const char *ns, const char *name, const char *reason, int min_count, int timeout_ms,
                   int *count)
{
	int n = -1;

	for (int w = 0; w <= timeout_ms; w += 200) {
		n = st_events(ns, name, reason, count);
		if (n >= 0 && *count >= min_count)
			break;
		usleep(200 * 1000);
	}
	return n;
}

pid_t st_sluice_start(const char *namespaces, const char *logpath)
{
	const char *bin = getenv("SLUICE_BIN");
	const char *kc = it_kubeconfig_restricted() ? it_kubeconfig_restricted() : it_kubeconfig();
	pid_t pid;

	if (!bin)
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(bin, "sluice", "run", "--no-sync", "--kubeconfig", kc, "--watch-namespace", namespaces,
		      "--log-level", "debug", "--listen", "off", (char *)NULL);
		_exit(127);
	}
	return pid;
}

int st_sluice_stop(pid_t pid)
{
	int status;

	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	for (int i = 0; i < 300; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		usleep(100 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

void st_sluice_kill(pid_t pid)
{
	int status;
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}
