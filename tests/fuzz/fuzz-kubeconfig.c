/* Fuzz target: the kubeconfig parser on one buffer. It must never crash or
 * leak, and what it accepts must be usable: an http(s) server without a
 * trailing slash, a namespace, a certificate only with its key, an exec
 * plugin only when allowed and only with a command.
 *
 * A kubeconfig names files (certificate-authority, client-certificate,
 * client-key). The harness wraps sl_file_read (the link has
 * -Wl,--wrap=sl_file_read): it reads only beneath a private temporary
 * directory, which is also the kubeconfig's directory, and refuses every
 * other path, so the fuzzer never makes it read a file it names elsewhere
 * (or block on a FIFO or a device). */
#include "sluice/kube.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __real_sl_file_read(const char *path, size_t max, struct sl_buf *out, struct sl_error *err);
int __wrap_sl_file_read(const char *path, size_t max, struct sl_buf *out, struct sl_error *err);

static char dir[64];
static char files[3][96];

static void remove_dir(void)
{
	for (size_t i = 0; i < 3; i++)
		unlink(files[i]);
	rmdir(dir);
}

static void make_dir(void)
{
	static const char *const names[3] = {"ca.crt", "client.crt", "client.key"};

	snprintf(dir, sizeof(dir), "/tmp/sluice-fuzz-kubeconfig-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	for (size_t i = 0; i < 3; i++) {
		FILE *f;
		snprintf(files[i], sizeof(files[i]), "%s/%s", dir, names[i]);
		if (!(f = fopen(files[i], "w")))
			abort();
		fprintf(f, "-----BEGIN %s-----\nAAAA\n-----END %s-----\n", names[i], names[i]);
		fclose(f);
	}
	atexit(remove_dir);
}

int __wrap_sl_file_read(const char *path, size_t max, struct sl_buf *out, struct sl_error *err)
{
	size_t dl = strlen(dir);

	/* beneath dir, and no ".." that could climb out of it */
	if (strncmp(path, dir, dl) != 0 || path[dl] != '/' || strstr(path, "/..")) {
		sl_buf_init(out, 0);
		return sl_error_set(err, SL_EFORBIDDEN, "outside the fuzzing directory");
	}
	return __real_sl_file_read(path, max, out, err);
}

static void check(const char *text, size_t len, const char *context, bool allow_exec)
{
	struct sl_kube_config *c = NULL;
	struct sl_error err = {0};
	int r = sl_kube_config_parse(text, len, context, dir, allow_exec, &c, &err);

	if (r < 0) {
		if (c || !err.msg[0])
			abort();
		return;
	}
	if (r != 0 || !c || !c->server || !c->ns || !c->context)
		abort();
	if (strncmp(c->server, "https://", 8) != 0 && strncmp(c->server, "http://", 7) != 0)
		abort();
	if (c->server[strlen(c->server) - 1] == '/')
		abort();
	if (!c->cert != !c->key || (c->ca && !c->ca_len && c->ca[0]))
		abort();
	if (c->exec && (!allow_exec || !c->exec->command || !c->exec->args || !c->exec->env ||
	                !c->exec->api_version))
		abort();
	sl_kube_config_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		make_dir();
	check((const char *)data, size, NULL, true);
	check((const char *)data, size, NULL, false);
	check((const char *)data, size, "ctx", true);
	return 0;
}
