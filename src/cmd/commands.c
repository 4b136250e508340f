/* The subcommands of sluice: the one list that `sluice --help`, the
 * dispatch in main and the shell completion scripts read. */
#include "cmd.h"
#include "sluice/base.h"

const struct sl_cmd_command sl_cmd_commands[] = {
    {"run", sl_cmd_run, "sync a source and run the stream controller", &sl_cmd__run_spec},
    {"sync", sl_cmd_sync, "apply a source to the cluster once", &sl_cmd__sync_spec},
    {"diff", sl_cmd_diff, "show what a sync would change (server-side dry run)", &sl_cmd__diff_spec},
    {"status", sl_cmd_status, "show sources and streams as the cluster has them", &sl_cmd__status_spec},
    {"validate", sl_cmd_validate, "check manifests offline", &sl_cmd__validate_spec},
    {"plan", sl_cmd_plan, "print the Jobs the controller would create, offline", &sl_cmd__plan_spec},
    {"completion", sl_cmd_completion, "print a shell completion script (bash, zsh)",
     &sl_cmd__completion_spec},
    {"version", sl_cmd_version, "print versions", NULL},
};

const size_t sl_cmd_n_commands = SL_ARRAY_SIZE(sl_cmd_commands);
