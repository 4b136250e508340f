/* sluice completion bash|zsh: a completion script made from sl_cmd_commands
 * and their flag tables, so that it names exactly the subcommands and flags
 * this binary has. */
#include "cmd.h"
#include "config.h"
#include "sluice/base.h"

#include <stdio.h>
#include <string.h>

#define SCRIPT_MAX (1u << 20)

static const struct sl_cmd_flag flags[] = {
    {"help", 'h', NULL, SL_CMD_HELP, 0, NULL, "this text"},
};

const struct sl_cmd_spec sl_cmd__completion_spec = {
    .name = "completion",
    .flags = flags,
    .n_flags = SL_ARRAY_SIZE(flags),
    .usage = "usage: sluice completion bash|zsh\n\n"
             "Prints a completion script for the shell: subcommands, their flags and the values\n"
             "some flags take. Made from the flag tables of this binary, so it always matches it.\n"
             "  bash:  source <(sluice completion bash)      (or put it in\n"
             "         ~/.local/share/bash-completion/completions/sluice)\n"
             "  zsh:   sluice completion zsh > \"${fpath[1]}/_sluice\"   (then compinit)\n"
             "Both complete `kubectl-sluice` too.\n\n",
    .name_width = 13,
    .min_operands = 1,
    .max_operands = 1,
    .operands = "bash zsh",
};

/* Flags a shell offers: those --help lists, and --help itself. */
static bool offered(const struct sl_cmd_spec *spec, const struct sl_cmd_flag *f)
{
	return sl_cmd__flag_listed(spec, f) || f->arg == SL_CMD_HELP;
}

enum value_kind { V_NONE, V_WORDS, V_FILES, V_DIRS };

static enum value_kind value_kind(const struct sl_cmd_flag *f)
{
	if (f->values)
		return V_WORDS;
	if (f->metavar && strcmp(f->metavar, "FILE") == 0)
		return V_FILES;
	if (f->metavar && strcmp(f->metavar, "DIR") == 0)
		return V_DIRS;
	return V_NONE;
}

static bool takes_value(const struct sl_cmd_flag *f)
{
	return f->arg == SL_CMD_STRING;
}

/* ---- bash -------------------------------------------------------------------- */

static const char bash_head[] =
    "# bash completion for sluice and kubectl-sluice, made by `sluice completion bash`\n"
    "# from the flag tables of sluice " SLUICE_VERSION ".\n"
    "_sluice() {\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
    "    local cmd= flags= operands= i\n"
    "    # --flag=value: bash splits at '=' (COMP_WORDBREAKS)\n"
    "    if [[ $cur == = ]]; then\n"
    "        cur=\n"
    "    elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then\n"
    "        prev=${COMP_WORDS[COMP_CWORD-2]}\n"
    "    fi\n"
    "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
    "        case ${COMP_WORDS[i]} in\n"
    "        -*) ;;\n"
    "        *) cmd=${COMP_WORDS[i]}; break ;;\n"
    "        esac\n"
    "    done\n"
    "    COMPREPLY=()\n"
    "    if [[ -z $cmd ]]; then\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"";

static const char bash_tail[] = "    esac\n"
                                "    if [[ $cur == -* || -z $operands ]]; then\n"
                                "        mapfile -t COMPREPLY < <(compgen -W \"$flags\" -- \"$cur\")\n"
                                "    elif [[ $operands == @files ]]; then\n"
                                "        compopt -o filenames 2>/dev/null\n"
                                "        mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
                                "    else\n"
                                "        mapfile -t COMPREPLY < <(compgen -W \"$operands\" -- \"$cur\")\n"
                                "    fi\n"
                                "    return 0\n"
                                "}\n"
                                "complete -F _sluice sluice kubectl-sluice\n";

/* "-o|--output" for the case patterns */
static int bash_pattern(const struct sl_cmd_flag *f, struct sl_buf *out)
{
	if (f->short_name)
		return sl_buf_printf(out, "-%c|--%s", f->short_name, f->name);
	return sl_buf_printf(out, "--%s", f->name);
}

/* One case arm of value flags of a kind: "pattern|pattern) action ;;". */
static int bash_values(const struct sl_cmd_spec *spec, enum value_kind kind, struct sl_buf *out)
{
	static const char *const action[] = {
	    [V_NONE] = "return 0",
	    [V_FILES] = "compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- \"$cur\"); "
	                "return 0",
	    [V_DIRS] = "compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- \"$cur\"); "
	               "return 0",
	};
	bool any = false;
	int r = 0;

	for (size_t i = 0; r == 0 && i < spec->n_flags; i++) {
		const struct sl_cmd_flag *f = &spec->flags[i];
		if (!takes_value(f) || value_kind(f) != kind)
			continue;
		r = sl_buf_puts(out, any ? "|" : "            ");
		if (r == 0)
			r = bash_pattern(f, out);
		any = true;
	}
	if (r == 0 && any)
		r = sl_buf_printf(out, ") %s ;;\n", action[kind]);
	return r;
}

static int bash_command(const struct sl_cmd_command *c, struct sl_buf *out)
{
	const struct sl_cmd_spec *spec = c->spec;
	int r = sl_buf_printf(out, "    %s)\n        flags=\"", c->name);

	for (size_t i = 0; r == 0 && spec && i < spec->n_flags; i++)
		if (offered(spec, &spec->flags[i]))
			r = sl_buf_printf(out, "%s--%s", i ? " " : "", spec->flags[i].name);
	if (r == 0)
		r = sl_buf_puts(out, "\"\n");
	if (r == 0 && spec && spec->max_operands != 0)
		r = sl_buf_printf(out, "        operands=\"%s\"\n",
		                  spec->operands ? spec->operands : "@files");
	if (r < 0 || !spec)
		return r < 0 ? r : sl_buf_puts(out, "        ;;\n");
	r = sl_buf_puts(out, "        case $prev in\n");
	for (size_t i = 0; r == 0 && i < spec->n_flags; i++) {
		const struct sl_cmd_flag *f = &spec->flags[i];
		if (!takes_value(f) || value_kind(f) != V_WORDS)
			continue;
		r = sl_buf_puts(out, "            ");
		if (r == 0)
			r = bash_pattern(f, out);
		if (r == 0)
			r = sl_buf_printf(
			    out, ") mapfile -t COMPREPLY < <(compgen -W \"%s\" -- \"$cur\"); return 0 ;;\n",
			    f->values);
	}
	if (r == 0)
		r = bash_values(spec, V_FILES, out);
	if (r == 0)
		r = bash_values(spec, V_DIRS, out);
	if (r == 0)
		r = bash_values(spec, V_NONE, out);
	if (r == 0)
		r = sl_buf_puts(out, "        esac\n        ;;\n");
	return r;
}

static int bash_script(struct sl_buf *out)
{
	int r = sl_buf_puts(out, bash_head);

	for (size_t i = 0; r == 0 && i < sl_cmd_n_commands; i++)
		r = sl_buf_printf(out, "%s ", sl_cmd_commands[i].name);
	if (r == 0)
		r = sl_buf_puts(out, "--help --version\" -- \"$cur\")\n"
		                     "        return 0\n"
		                     "    fi\n"
		                     "    case $cmd in\n");
	for (size_t i = 0; r == 0 && i < sl_cmd_n_commands; i++)
		r = bash_command(&sl_cmd_commands[i], out);
	if (r == 0)
		r = sl_buf_puts(out, bash_tail);
	return r;
}

/* ---- zsh ---------------------------------------------------------------------- */

/* The first line of a text inside '...' of an _arguments spec: single
 * quotes closed and reopened, and a backslash before the characters in
 * special (brackets in a description, colons in a message). */
static int zsh_quote(const char *text, const char *special, struct sl_buf *out)
{
	int r = 0;

	for (const char *p = text; r == 0 && *p && *p != '\n'; p++) {
		if (*p == '\'')
			r = sl_buf_puts(out, "'\\''");
		else if (*p == '\\' || strchr(special, *p))
			r = sl_buf_printf(out, "\\%c", *p);
		else
			r = sl_buf_append(out, p, 1);
	}
	return r;
}

static int zsh_desc(const char *help, struct sl_buf *out)
{
	return zsh_quote(help ? help : "show the options", "[]", out);
}

static int zsh_action(const struct sl_cmd_flag *f, struct sl_buf *out)
{
	int r = sl_buf_puts(out, ":");

	if (r == 0)
		r = zsh_quote(f->metavar ? f->metavar : "value", ":", out);
	if (r < 0)
		return r;
	switch (value_kind(f)) {
	case V_WORDS:
		return sl_buf_printf(out, ":(%s)", f->values);
	case V_FILES:
		return sl_buf_puts(out, ":_files");
	case V_DIRS:
		return sl_buf_puts(out, ":_files -/");
	case V_NONE:
		break;
	}
	return sl_buf_puts(out, ": ");
}

/* One _arguments spec: '(-o --output)'{-o+,--output=}'[desc]:FORMAT:(...)' */
static int zsh_flag(const struct sl_cmd_flag *f, struct sl_buf *out)
{
	bool v = takes_value(f);
	int r;

	if (f->short_name)
		r = sl_buf_printf(out, "        '(-%c --%s)'{-%c%s,--%s%s}'[", f->short_name, f->name,
		                  f->short_name, v ? "+" : "", f->name, v ? "=" : "");
	else
		r = sl_buf_printf(out, "        '--%s%s[", f->name, v ? "=" : "");
	if (r == 0)
		r = zsh_desc(f->help, out);
	if (r == 0)
		r = sl_buf_puts(out, "]");
	if (r == 0 && v)
		r = zsh_action(f, out);
	if (r == 0)
		r = sl_buf_puts(out, "' \\\n");
	return r;
}

static int zsh_command(const struct sl_cmd_command *c, struct sl_buf *out)
{
	const struct sl_cmd_spec *spec = c->spec;
	int r;

	if (!spec)
		return sl_buf_printf(out, "    (%s)\n        return 0\n        ;;\n", c->name);
	r = sl_buf_printf(out, "    (%s)\n        _arguments -s -S \\\n", c->name);

	for (size_t i = 0; r == 0 && i < spec->n_flags; i++)
		if (offered(spec, &spec->flags[i]))
			r = zsh_flag(&spec->flags[i], out);
	if (r == 0 && spec->max_operands != 0) {
		const char *rep = spec->max_operands == 1 ? "" : "*";
		if (spec->operands)
			r = sl_buf_printf(out, "        '%s:operand:(%s)' \\\n", rep, spec->operands);
		else
			r = sl_buf_printf(out, "        '%s:path:_files' \\\n", rep);
	}
	if (r == 0)
		r = sl_buf_puts(out, "        && return 0\n        ;;\n");
	return r;
}

static int zsh_script(struct sl_buf *out)
{
	int r = sl_buf_puts(
	    out, "#compdef sluice kubectl-sluice\n"
	         "# zsh completion for sluice and kubectl-sluice, made by `sluice completion zsh`\n"
	         "# from the flag tables of sluice " SLUICE_VERSION ".\n"
	         "_sluice() {\n"
	         "    local -a commands\n"
	         "    commands=(\n");

	for (size_t i = 0; r == 0 && i < sl_cmd_n_commands; i++) {
		r = sl_buf_printf(out, "        '%s:", sl_cmd_commands[i].name);
		if (r == 0)
			r = zsh_quote(sl_cmd_commands[i].help, "", out);
		if (r == 0)
			r = sl_buf_puts(out, "'\n");
	}
	if (r == 0)
		r = sl_buf_puts(out, "    )\n"
		                     "    if (( CURRENT == 2 )); then\n"
		                     "        _describe -t commands 'sluice command' commands\n"
		                     "        return\n"
		                     "    fi\n"
		                     "    local cmd=${words[2]}\n"
		                     "    shift words\n"
		                     "    (( CURRENT-- ))\n"
		                     "    case $cmd in\n");
	for (size_t i = 0; r == 0 && i < sl_cmd_n_commands; i++)
		r = zsh_command(&sl_cmd_commands[i], out);
	if (r == 0)
		r = sl_buf_puts(out, "    esac\n"
		                     "    return 1\n"
		                     "}\n"
		                     "# autoloaded from $fpath: complete now; sourced: register\n"
		                     "if [[ ${funcstack[1]} == _sluice ]]; then\n"
		                     "    _sluice \"$@\"\n"
		                     "else\n"
		                     "    compdef _sluice sluice kubectl-sluice\n"
		                     "fi\n");
	return r;
}

int sl_cmd__completion_script(const char *shell, struct sl_buf *out)
{
	if (strcmp(shell, "bash") == 0)
		return bash_script(out);
	if (strcmp(shell, "zsh") == 0)
		return zsh_script(out);
	return SL_EINVALID;
}

int sl_cmd_completion(int argc, char **argv)
{
	struct sl_buf out;
	int first, r;

	r = sl_cmd__parse(&sl_cmd__completion_spec, argc, argv, NULL, &first);
	if (r != 0)
		return r > 0 ? 0 : 2;
	sl_buf_init(&out, SCRIPT_MAX);
	r = sl_cmd__completion_script(argv[first], &out);
	if (r == SL_EINVALID)
		fprintf(stderr, "sluice completion: unknown shell '%s': bash or zsh\n", argv[first]);
	else if (r < 0)
		fprintf(stderr, "sluice completion: %s\n", sl_strerror(r));
	else
		fwrite(out.data, 1, out.len, stdout);
	sl_buf_free(&out);
	return r == 0 ? 0 : 2;
}
