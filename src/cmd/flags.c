/* The flag tables of the subcommands: SLUICE_* variables, then the command
 * line through getopt_long (so abbreviations and getopt's own messages are
 * the usual ones), and the --help and --help-env texts. */
#include "cmd.h"
#include "sluice/base.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* getopt_long's value for the flag at index i: above every short flag */
#define FLAG_VAL(i) (256 + (int)(i))

static void *field(void *opts, const struct sl_cmd_flag *f)
{
	return (char *)opts + f->off;
}

static int parse_bool(const char *v, bool *ret)
{
	if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
		*ret = true;
	else if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
		*ret = false;
	else
		return SL_EINVALID;
	return 0;
}

/* Before the command line, so that a flag given there wins; an empty
 * variable counts as unset. */
static int read_env(const struct sl_cmd_spec *spec, void *opts)
{
	for (size_t i = 0; i < spec->n_flags; i++) {
		const struct sl_cmd_flag *f = &spec->flags[i];
		const char *v = f->env ? getenv(f->env) : NULL;

		if (!v || !*v)
			continue;
		if (f->arg == SL_CMD_STRING) {
			*(const char **)field(opts, f) = v;
		} else if (f->arg == SL_CMD_BOOL && parse_bool(v, field(opts, f)) < 0) {
			if (!spec->lenient_bools) {
				fprintf(stderr, "sluice %s: %s: expected true or false, got '%s'\n",
				        spec->name, f->env, v);
				return SL_EINVALID;
			}
			*(bool *)field(opts, f) = false;
		}
	}
	return 0;
}

/* getopt_long's tables for spec: *ret_long (n_flags + 1 entries) and
 * *ret_short; the caller frees both. */
static int getopt_tables(const struct sl_cmd_spec *spec, struct option **ret_long, char **ret_short)
{
	struct option *lo = calloc(spec->n_flags + 1, sizeof(*lo));
	char *so = calloc(2 * spec->n_flags + 1, 1);
	size_t n = 0;

	if (!lo || !so) {
		free(lo);
		free(so);
		return SL_ENOMEM;
	}
	for (size_t i = 0; i < spec->n_flags; i++) {
		const struct sl_cmd_flag *f = &spec->flags[i];
		bool value = f->arg == SL_CMD_STRING;

		lo[i] = (struct option){f->name, value ? required_argument : no_argument, NULL, FLAG_VAL(i)};
		if (f->short_name) {
			so[n++] = f->short_name;
			if (value)
				so[n++] = ':';
		}
	}
	*ret_long = lo;
	*ret_short = so;
	return 0;
}

/* The flag getopt_long returned c for; NULL for its '?' (getopt said why). */
static const struct sl_cmd_flag *flag_of(const struct sl_cmd_spec *spec, int c)
{
	if (c >= FLAG_VAL(0) && c < FLAG_VAL(spec->n_flags))
		return &spec->flags[c - FLAG_VAL(0)];
	for (size_t i = 0; i < spec->n_flags; i++)
		if (c != '?' && spec->flags[i].short_name == c)
			return &spec->flags[i];
	return NULL;
}

static void help_env(const struct sl_cmd_spec *spec, FILE *f)
{
	for (size_t i = 0; i < spec->n_flags; i++)
		if (spec->flags[i].env)
			fprintf(f, "  %-36s --%s\n", spec->flags[i].env, spec->flags[i].name);
}

/* Returns 0 to go on, 1 after a help text, SL_EINVALID after a bad flag. */
static int parse_argv(const struct sl_cmd_spec *spec, int argc, char **argv, void *opts,
                      const struct option *lo, const char *so)
{
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		const struct sl_cmd_flag *f = flag_of(spec, c);

		if (!f) {
			if (spec->hint_on_bad_flag)
				fprintf(stderr, "Run 'sluice %s --help' for the options.\n", spec->name);
			else
				sl_cmd__help(spec, stderr);
			return SL_EINVALID;
		}
		switch (f->arg) {
		case SL_CMD_STRING:
			*(const char **)field(opts, f) = optarg;
			break;
		case SL_CMD_BOOL:
			*(bool *)field(opts, f) = true;
			break;
		case SL_CMD_HELP:
			sl_cmd__help(spec, stdout);
			return 1;
		case SL_CMD_HELP_ENV:
			help_env(spec, stdout);
			return 1;
		}
	}
	return 0;
}

static int check_operands(const struct sl_cmd_spec *spec, int argc, char **argv)
{
	int n = argc - optind;

	if (n >= spec->min_operands && (spec->max_operands < 0 || n <= spec->max_operands))
		return 0;
	if (spec->max_operands == 0)
		fprintf(stderr, "sluice %s: unexpected argument '%s'\n", spec->name, argv[optind]);
	else
		sl_cmd__help(spec, stderr);
	return SL_EINVALID;
}

int sl_cmd__parse(const struct sl_cmd_spec *spec, int argc, char **argv, void *opts, int *ret_optind)
{
	struct option *lo = NULL;
	char *so = NULL;
	int r;

	r = read_env(spec, opts);
	if (r < 0)
		return r;
	r = getopt_tables(spec, &lo, &so);
	if (r < 0) {
		fprintf(stderr, "sluice %s: out of memory\n", spec->name);
		return r;
	}
	r = parse_argv(spec, argc, argv, opts, lo, so);
	if (r == 0)
		r = check_operands(spec, argc, argv);
	if (r == 0 && ret_optind)
		*ret_optind = optind;
	free(lo);
	free(so);
	return r;
}

/* "  -s, --name METAVAR" padded to the name column, then the metavar
 * column when the spec has one; returns the column the help starts at. */
static int flag_columns(const struct sl_cmd_spec *spec, const struct sl_cmd_flag *fl, FILE *f)
{
	const char *mv = fl->metavar ? fl->metavar : "";
	bool inline_mv = spec->metavar_width == 0 && fl->metavar;
	int n;

	if (fl->short_name)
		n = fprintf(f, "  -%c, --%s%s%s", fl->short_name, fl->name, inline_mv ? " " : "",
		            inline_mv ? mv : "");
	else
		n = fprintf(f, "  --%s%s%s", fl->name, inline_mv ? " " : "", inline_mv ? mv : "");
	/* as printf's "%-*s ": padded, and one space even when too long */
	n -= 2;
	fprintf(f, "%*s", n < spec->name_width ? spec->name_width - n + 1 : 1, "");
	if (spec->metavar_width > 0)
		fprintf(f, "%-*s ", spec->metavar_width, mv);
	return 2 + spec->name_width + 1 + (spec->metavar_width > 0 ? spec->metavar_width + 1 : 0);
}

bool sl_cmd__flag_listed(const struct sl_cmd_spec *spec, const struct sl_cmd_flag *f)
{
	return f->help && !(f->group & spec->unlisted);
}

void sl_cmd__help(const struct sl_cmd_spec *spec, FILE *f)
{
	fputs(spec->usage, f);
	for (size_t i = 0; i < spec->n_flags; i++) {
		const struct sl_cmd_flag *fl = &spec->flags[i];
		const char *help = fl->help;
		int indent;

		if (!sl_cmd__flag_listed(spec, fl))
			continue;
		indent = flag_columns(spec, fl, f);
		/* lines after the first start under the first */
		for (const char *nl; (nl = strchr(help, '\n')); help = nl + 1)
			fprintf(f, "%.*s\n%*s", (int)(nl - help), help, indent, "");
		fprintf(f, "%s\n", help);
	}
	if (spec->footer)
		fputs(spec->footer, f);
}
