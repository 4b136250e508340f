/* The cmd module: the subcommands of the sluice binary, each returning the
 * process exit code, and the flag tables they declare their options in. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

int sl_cmd_version(int argc, char **argv);
int sl_cmd_validate(int argc, char **argv);
int sl_cmd_plan(int argc, char **argv);
int sl_cmd_run(int argc, char **argv);
int sl_cmd_sync(int argc, char **argv);
int sl_cmd_diff(int argc, char **argv);

/* ---- flag tables ----------------------------------------------------------
 * A subcommand declares each option once, in a table of struct sl_cmd_flag:
 * sl_cmd__parse fills the command's options struct from the SLUICE_*
 * variables, then from the command line, and renders --help and --help-env
 * from the same table. The table's order is the help's, and the order in
 * which getopt names the candidates of an ambiguous abbreviation. */

enum sl_cmd_arg {
	SL_CMD_STRING,   /* --name VALUE: a const char * into argv or environ (not copied) */
	SL_CMD_BOOL,     /* --name: true; its variable says 1/true/yes or 0/false/no */
	SL_CMD_HELP,     /* --help: the help on stdout, then exit 0 */
	SL_CMD_HELP_ENV, /* --help-env: every variable and its flag on stdout, then exit 0 */
};

struct sl_cmd_flag {
	const char *name; /* long name, without "--" */
	char short_name;  /* 0: none */
	const char *env;  /* variable read when the flag is not given; NULL: none */
	enum sl_cmd_arg arg;
	size_t off;          /* offset of the value in the options struct */
	const char *metavar; /* the value as the help names it ("URL"); NULL for a switch */
	const char *help;    /* NULL: accepted but not listed; "\n" goes on aligned below */
	unsigned group;      /* a bit of sl_cmd_spec.unlisted; 0: always listed */
};

/* The arg and off of an entry: the kind and the field of the options struct. */
#define SL_CMD_STRING_AT(type, field) SL_CMD_STRING, offsetof(type, field)
#define SL_CMD_BOOL_AT(type, field)   SL_CMD_BOOL, offsetof(type, field)

struct sl_cmd_spec {
	const char *name; /* "sync": messages start "sluice sync: " */
	const struct sl_cmd_flag *flags;
	size_t n_flags;
	const char *usage;  /* the help above the flag list */
	const char *footer; /* below it; NULL: none */
	/* Layout of a flag line: two spaces, "-s, --name METAVAR" padded to
	 * name_width, a space, the help. With metavar_width > 0 the metavar
	 * gets a column of its own that wide, after "--name". */
	int name_width, metavar_width;
	unsigned unlisted; /* groups of flags accepted but left out of the help */
	/* A variable that is no boolean reads as false (sync and diff always
	 * did so); otherwise it is an error. */
	bool lenient_bools;
	/* A bad flag prints where the help is, not the whole help. */
	bool hint_on_bad_flag;
	/* Operands after the flags; max -1: any number. A command without
	 * operands names the first stray one, others print the help. */
	int min_operands, max_operands;
};

/* Fills opts (may be NULL for a table of help flags only) from the
 * variables, then from argv (argv[0] names the subcommand; getopt_long, so
 * long flags may be abbreviated). Returns 0 and, when ret_optind is not NULL,
 * the index of the first operand; 1 when it printed the help (exit 0);
 * SL_EINVALID or SL_ENOMEM when it printed why it cannot go on (exit 2). */
int sl_cmd__parse(const struct sl_cmd_spec *spec, int argc, char **argv, void *opts, int *ret_optind);
/* The help: usage, the listed flags, footer. */
void sl_cmd__help(const struct sl_cmd_spec *spec, FILE *f);
