/* sluice: GitOps reconciler and stream operator. Dispatches subcommands.
 * Installed as kubectl-sluice too: kubectl runs a plugin with the words
 * after its name, so `kubectl sluice status` reaches the same dispatch. */
#include "cmd.h"
#include "sluice/base.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f, const char *prog)
{
	fprintf(f, "usage: %s COMMAND [OPTIONS]\n\ncommands:\n", prog);
	for (size_t i = 0; i < sl_cmd_n_commands; i++)
		fprintf(f, "  %-10s %s\n", sl_cmd_commands[i].name, sl_cmd_commands[i].help);
	fprintf(f, "\nRun '%s COMMAND --help' for the options of a command.\n", prog);
}

/* "kubectl sluice" when run as the kubectl plugin, else "sluice". */
static const char *prog_name(const char *argv0)
{
	const char *base = argv0 ? strrchr(argv0, '/') : NULL;

	base = base ? base + 1 : argv0;
	return base && strcmp(base, "kubectl-sluice") == 0 ? "kubectl sluice" : "sluice";
}

int main(int argc, char **argv)
{
	const char *lvl = getenv("SLUICE_LOG_LEVEL");
	const char *fmt = getenv("SLUICE_LOG_FORMAT");
	const char *prog = prog_name(argv[0]);
	enum sl_log_level level = SL_LOG_INFO;

	/* One malloc arena for every thread: sluice's threads (the loop, the
	 * source's and the HTTP server's) take turns rather than compete, and
	 * with an arena each, memory freed in one stays held by it (bench/soak
	 * starts about 2 MiB lower with one). MALLOC_ARENA_MAX still decides. */
	if (!getenv("MALLOC_ARENA_MAX"))
		(void)mallopt(M_ARENA_MAX, 1);
	/* Fixed thresholds: blocks of 128 KiB and more (list pages, Git
	 * packs, response bodies) get their own mapping and go back to the
	 * system when freed, and free memory past 128 KiB at the heap's top is
	 * returned. By default glibc raises the mmap threshold to the largest
	 * block freed so far (up to 32 MiB), after which big buffers land
	 * in the heap and leave holes that the few long-lived objects pin:
	 * under churn RSS crept up while the live heap stayed level. The
	 * MALLOC_*_ environment variables still decide. */
	if (!getenv("MALLOC_MMAP_THRESHOLD_"))
		(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (!getenv("MALLOC_TRIM_THRESHOLD_"))
		(void)mallopt(M_TRIM_THRESHOLD, 128 * 1024);
	if (lvl)
		sl_log_level_parse(lvl, &level);
	sl_log_setup(level, (fmt && strcmp(fmt, "json") == 0) ? SL_LOG_JSON : SL_LOG_TEXT);
	if (argc < 2) {
		usage(stderr, prog);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout, prog);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return sl_cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sl_cmd_n_commands; i++)
		if (strcmp(argv[1], sl_cmd_commands[i].name) == 0)
			return sl_cmd_commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'\n\n", prog, argv[1]);
	usage(stderr, prog);
	return 2;
}
