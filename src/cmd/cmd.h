/* Subcommands of the sluice binary; each returns the process exit code. */
#pragma once

int sl_cmd_version(int argc, char **argv);
int sl_cmd_validate(int argc, char **argv);
int sl_cmd_plan(int argc, char **argv);
int sl_cmd_run(int argc, char **argv);
int sl_cmd_sync(int argc, char **argv);
int sl_cmd_diff(int argc, char **argv);
