/* Helpers shared by the source integration tests. */
#include "srctest.h"

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

bool t_failed;
char t_dir[256];
static char *cleanups[32];
static unsigned ncleanups;
static bool cleaned;

void t_cleanup(void)
{
	if (cleaned)
		return;
	cleaned = true;
	for (unsigned i = ncleanups; i-- > 0;) {
		if (system(cleanups[i]) < 0) {
		}
		free(cleanups[i]);
	}
	if (t_dir[0] && !getenv("SLUICE_TEST_KEEP")) {
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
		if (system(cmd) < 0) {
		}
	} else if (t_dir[0]) {
		fprintf(stderr, "kept %s\n", t_dir);
	}
}

void t_on_cleanup(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s && ncleanups < 32)
		cleanups[ncleanups++] = s;
	else
		free(s);
}

static void on_signal(int sig)
{
	t_cleanup();
	_exit(128 + sig);
}

void t_setup(const char *name)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(t_dir, sizeof(t_dir), "%s/sluice-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (!mkdtemp(t_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(t_cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGALRM, on_signal);
	/* a hung test still cleans up its fixture processes */
	alarm(600);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("HOME", t_dir, 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
	if (chdir(t_dir) < 0)
		exit(1);
	fprintf(stderr, "# %s in %s\n", name, t_dir);
}

static int vsh(char **out, const char *fmt, va_list ap)
{
	char *cmd = NULL;
	FILE *f;
	int st;
	struct sl_buf b;

	if (vasprintf(&cmd, fmt, ap) < 0)
		return -1;
	if (!out) {
		st = system(cmd);
		free(cmd);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	}
	f = popen(cmd, "r");
	free(cmd);
	if (!f)
		return -1;
	sl_buf_init(&b, 64 << 20);
	sl_buf_append(&b, "", 0);
	for (;;) {
		char chunk[4096];
		size_t n = fread(chunk, 1, sizeof(chunk), f);
		if (!n)
			break;
		sl_buf_append(&b, chunk, n);
	}
	st = pclose(f);
	while (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	*out = sl_buf_steal(&b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int t_sh(char **out, const char *fmt, ...)
{
	va_list ap;
	int r;
	va_start(ap, fmt);
	r = vsh(out, fmt, ap);
	va_end(ap);
	return r;
}

void t_sh_ok(const char *fmt, ...)
{
	va_list ap;
	char cmd[4096];
	int r;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = t_sh(NULL, "%s", cmd);
	if (r != 0)
		T_FAIL("command failed (%d): %s", r, cmd);
}

char *t_sh_out(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;
	int r;
	va_start(ap, fmt);
	r = vsh(&out, fmt, ap);
	va_end(ap);
	if (r != 0)
		T_FAIL("command failed (%d): %s", r, fmt);
	return out;
}

void t_write(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(content, f) < 0 || fclose(f) != 0)
		T_FAIL("cannot write %s", path);
}

char *t_read(const char *path)
{
	struct sl_buf b;
	struct sl_error e;
	if (sl_file_read(path, 64 << 20, &b, &e) < 0)
		return NULL;
	return sl_buf_steal(&b);
}

int t_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		T_FAIL("no free port");
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

void t_skip(const char *why)
{
	fprintf(stderr, "SKIP: %s\n", why);
	t_cleanup();
	exit(77);
}

void t_source_fn(struct sl_source *src, const struct sl_source_event *ev, void *payload)
{
	struct t_rec *r = payload;
	switch (ev->type) {
	case SL_SOURCE_EVENT_SNAPSHOT:
		r->snapshots++;
		sl_source_snapshot_unref(r->snap);
		r->snap = sl_source_snapshot_ref(ev->snapshot);
		snprintf(r->revision, sizeof(r->revision), "%s", sl_source_snapshot_revision(ev->snapshot));
		break;
	case SL_SOURCE_EVENT_UNCHANGED:
		r->unchanged++;
		break;
	case SL_SOURCE_EVENT_ERROR:
		if (r->errors < 16)
			r->error_ms[r->errors] = sl_now_ms();
		r->errors++;
		r->last_error = *ev->error;
		fprintf(stderr, "# source error: %s\n", ev->error->msg);
		break;
	}
}

void t_wb_fn(struct sl_source *src, int code, const char *commit, const struct sl_error *err, void *payload)
{
	struct t_rec *r = payload;
	r->wb_done++;
	r->wb_code = code;
	snprintf(r->wb_commit, sizeof(r->wb_commit), "%s", commit ? commit : "");
	r->wb_err = *err;
	if (code < 0)
		fprintf(stderr, "# write-back: %s\n", err->msg);
}

bool t_wait(struct sl_loop *loop, const unsigned *counter, unsigned before, int timeout_ms)
{
	uint64_t end = sl_now_ms() + (uint64_t)timeout_ms;
	while (*counter <= before) {
		uint64_t now = sl_now_ms();
		if (now >= end)
			return false;
		sl_loop_run_once(loop, (int)SL_MIN(end - now, 100));
	}
	return true;
}

void t_run_for(struct sl_loop *loop, int ms)
{
	uint64_t end = sl_now_ms() + (uint64_t)ms;
	for (uint64_t now = sl_now_ms(); now < end; now = sl_now_ms())
		sl_loop_run_once(loop, (int)(end - now));
}

void t_rec_free(struct t_rec *r)
{
	sl_source_snapshot_unref(r->snap);
	r->snap = NULL;
}
