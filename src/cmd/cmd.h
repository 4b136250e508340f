/* The cmd module: the subcommands of the sluice binary, each returning the
 * process exit code, and the flag tables they declare their options in. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

int sl_cmd_version(int argc, char **argv);
int sl_cmd_validate(int argc, char **argv);
int sl_cmd_plan(int argc, char **argv);
int sl_cmd_run(int argc, char **argv);
int sl_cmd_sync(int argc, char **argv);
int sl_cmd_diff(int argc, char **argv);
int sl_cmd_status(int argc, char **argv);
int sl_cmd_completion(int argc, char **argv);

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
	/* What a shell completes for the value: words separated by spaces;
	 * NULL: files when the metavar is FILE, directories when it is DIR,
	 * else nothing. */
	const char *values;
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
	/* What a shell completes for an operand: words separated by spaces;
	 * NULL: files, when the command takes operands. */
	const char *operands;
};

/* The subcommands, in the order `sluice --help` lists them. */
struct sl_cmd_command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;               /* one line for `sluice --help` */
	const struct sl_cmd_spec *spec; /* its flags, for completion; NULL: none */
};
extern const struct sl_cmd_command sl_cmd_commands[];
extern const size_t sl_cmd_n_commands;

/* The specs of the subcommands (defined next to each command). */
extern const struct sl_cmd_spec sl_cmd__run_spec, sl_cmd__sync_spec, sl_cmd__diff_spec, sl_cmd__validate_spec,
    sl_cmd__plan_spec, sl_cmd__status_spec, sl_cmd__completion_spec;

/* A flag is offered by --help and by completion: it has a help text and is
 * not in one of the spec's unlisted groups. */
bool sl_cmd__flag_listed(const struct sl_cmd_spec *spec, const struct sl_cmd_flag *f);

/* Fills opts (may be NULL for a table of help flags only) from the
 * variables, then from argv (argv[0] names the subcommand; getopt_long, so
 * long flags may be abbreviated). Returns 0 and, when ret_optind is not NULL,
 * the index of the first operand; 1 when it printed the help (exit 0);
 * SL_EINVALID or SL_ENOMEM when it printed why it cannot go on (exit 2). */
int sl_cmd__parse(const struct sl_cmd_spec *spec, int argc, char **argv, void *opts, int *ret_optind);
/* The help: usage, the listed flags, footer. */
void sl_cmd__help(const struct sl_cmd_spec *spec, FILE *f);

/* ---- tables (table.c) ------------------------------------------------------
 * Output as `kubectl get` prints it: uppercase headers, every column but the
 * last padded to its widest cell plus three spaces (at least six), cells
 * left-aligned. Control characters in a cell (a message from the cluster)
 * are written as spaces, so no cell can move the cursor or set colours. */

struct sl_buf;

/* SGR colours of a cell; SL_CMD_PLAIN: none. */
enum sl_cmd_colour {
	SL_CMD_PLAIN,
	SL_CMD_RED,
	SL_CMD_GREEN,
	SL_CMD_YELLOW,
	SL_CMD_CYAN,
	SL_CMD_GREY,
};

struct sl_cmd__table {
	size_t n_cols;
	char **cells; /* n_rows * n_cols, owned; row 0 is the header */
	enum sl_cmd_colour *colours;
	size_t n_rows, cap_rows;
};

/* A table with these headers (copied). 0 or SL_ENOMEM. */
int sl_cmd__table_init(struct sl_cmd__table *t, const char *const *headers, size_t n_cols);
/* Adds a row of n_cols cells (copied; NULL is ""); colours may be NULL. */
int sl_cmd__table_add(struct sl_cmd__table *t, const char *const *cells, const enum sl_cmd_colour *colours);
/* Appends the table; headers false leaves the header row out, colour false
 * writes no escape sequence at all. */
int sl_cmd__table_write(const struct sl_cmd__table *t, bool headers, bool colour, struct sl_buf *out);
void sl_cmd__table_free(struct sl_cmd__table *t); /* accepts a zeroed table */

/* A duration as kubectl's AGE column writes it (apimachinery's
 * HumanDuration): "45s", "3m12s", "17m", "5h3m", "2d4h", "400d", "3y12d";
 * "<invalid>" more than a second in the future. */
void sl_cmd__age(int64_t seconds, char out[static 32]);

/* Whether to colour what goes to fd: a terminal, NO_COLOR unset or empty,
 * TERM not "dumb". */
bool sl_cmd__use_colour(int fd);

/* ---- sluice status (status-model.c, status-print.c) ------------------------
 * What the cluster holds, as `sluice status` lists it, reduced to one model
 * (a JSON object) that -o json and -o yaml print as it is and the tables
 * are drawn from. Pure: the listed objects and the time come in. */

/* observed: {"configmaps": [inventory ConfigMaps], "classes": [StreamClasses],
 * "streams": [{"class": NAME, "kind": KIND, "apiVersion": AV, "items": [...]}],
 * "jobs": [...], "cronjobs": [...], "backfillrequests": [...],
 * "warnings": ["..."]}; any key may be missing. The model:
 * {"sources": [...], "streams": [...], "warnings": [...]}, both lists
 * sorted by namespace and name (streams by namespace, kind, name); see
 * docs/operations.md for every field. *ret is a new tree. */
int sl_cmd__status_model(const cJSON *observed, cJSON **ret);

struct sl_cmd__status_view {
	bool wide;           /* -o wide: more columns */
	bool all_namespaces; /* a NAMESPACE column first */
	bool colour;
	bool headers;
};

/* The tables of the model: sources, then streams, a blank line between;
 * a table without rows is left out. now is the wall clock (ages). */
int sl_cmd__status_print(const cJSON *model, const struct sl_cmd__status_view *v, int64_t now,
                         struct sl_buf *out);

/* ---- progress of sync and diff (progress.c) -------------------------------
 * On a terminal, `sluice sync` and `sluice diff` keep one line on stderr
 * up to date (rewritten after \r, cleared at the end) once a run is large
 * (SL_CMD_PROGRESS_MIN_OBJECTS) or slow (SL_CMD_PROGRESS_AFTER_MS); when
 * stderr is no terminal, nothing is written at all. */

#define SL_CMD_PROGRESS_MIN_OBJECTS 100
#define SL_CMD_PROGRESS_AFTER_MS    1000
#define SL_CMD_PROGRESS_EVERY_MS    100

struct sl_loop;
struct sl_loop_timer;
struct sl_sync_progress;

/* The line: "sluice sync: 1200/5000 objects, 900 applied, 280 unchanged,
 * 20 failed, 3.2s" (diff: "would change" for applied; ", N pruned" when
 * any), cut to width columns (0: no limit). */
void sl_cmd__progress_line(const char *cmd, const struct sl_sync_progress *p, uint64_t elapsed_ms,
                           size_t width, char *out, size_t outsz);

struct sl_cmd__progress {
	const char *cmd; /* "sync" or "diff" */
	int fd;          /* -1: off (not a terminal) */
	bool shown;      /* a line is on the screen */
	bool started;    /* the engine reported once */
	uint64_t t0;
	size_t planned, applied, unchanged, failed, pruned;
	struct sl_loop_timer *timer;
};

/* Sets p up for fd (off unless it is a terminal). 0 or SL_ENOMEM. */
int sl_cmd__progress_start(struct sl_cmd__progress *p, struct sl_loop *loop, const char *cmd, int fd);
/* An sl_sync_progress_fn: payload is the struct sl_cmd__progress. */
void sl_cmd__progress_update(const struct sl_sync_progress *sp, void *payload);
/* Removes the line (before anything else is written to the terminal). */
void sl_cmd__progress_clear(struct sl_cmd__progress *p);
/* Clears and stops. Accepts a zeroed struct. */
void sl_cmd__progress_stop(struct sl_cmd__progress *p);

/* ---- completion (cmd-completion.c) ----------------------------------------- */

/* The completion script for shell "bash" or "zsh", made from sl_cmd_commands
 * and their flag tables; SL_EINVALID for another shell. */
int sl_cmd__completion_script(const char *shell, struct sl_buf *out);
