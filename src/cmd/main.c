/* sluice: GitOps reconciler and stream operator. Dispatches subcommands. */
#include "cmd.h"
#include "sluice/base.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
    {"run", sl_cmd_run, "sync a source and run the stream controller"},
    {"sync", sl_cmd_sync, "apply a source to the cluster once"},
    {"diff", sl_cmd_diff, "show what a sync would change (server-side dry run)"},
    {"validate", sl_cmd_validate, "check manifests offline"},
    {"plan", sl_cmd_plan, "print the Jobs the controller would create, offline"},
    {"version", sl_cmd_version, "print versions"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sluice COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < SL_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'sluice COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
	const char *lvl = getenv("SLUICE_LOG_LEVEL");
	const char *fmt = getenv("SLUICE_LOG_FORMAT");
	enum sl_log_level level = SL_LOG_INFO;

	if (lvl)
		sl_log_level_parse(lvl, &level);
	sl_log_setup(level, (fmt && strcmp(fmt, "json") == 0) ? SL_LOG_JSON : SL_LOG_TEXT);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return sl_cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < SL_ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "sluice: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
