/* Tables as `kubectl get` prints them, kubectl's AGE format, and whether a
 * stream gets colours. Pure but for sl_cmd__use_colour. */
#include "cmd.h"
#include "sluice/base.h"

#include <assert.h>
#include <stdio.h>
#include <unistd.h>

/* kubectl's tabwriter: padding 3, minimum cell width 6 (padding included) */
#define PADDING   3
#define MIN_WIDTH 6

static const char *const sgr[] = {
    [SL_CMD_PLAIN] = "",          [SL_CMD_RED] = "\033[31m",  [SL_CMD_GREEN] = "\033[32m",
    [SL_CMD_YELLOW] = "\033[33m", [SL_CMD_CYAN] = "\033[36m", [SL_CMD_GREY] = "\033[90m",
};

/* A copy of s with every control character (C0, DEL) as a space. */
static char *clean_copy(const char *s)
{
	char *c = sl_strdup(s ? s : "");

	for (char *p = c; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return c;
}

/* Characters on screen: UTF-8 continuation bytes take no column. */
static size_t columns(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static int add_row(struct sl_cmd__table *t, const char *const *cells, const enum sl_cmd_colour *colours)
{
	size_t base = t->n_rows * t->n_cols;
	size_t cap = t->cap_rows;

	if (t->n_rows == cap) {
		size_t ncap = cap ? cap * 2 : 16;
		char **c = realloc(t->cells, ncap * t->n_cols * sizeof(*c));
		if (!c)
			return SL_ENOMEM;
		t->cells = c;
		enum sl_cmd_colour *k = realloc(t->colours, ncap * t->n_cols * sizeof(*k));
		if (!k)
			return SL_ENOMEM;
		t->colours = k;
		t->cap_rows = ncap;
	}
	for (size_t i = 0; i < t->n_cols; i++) {
		t->cells[base + i] = clean_copy(cells[i]);
		t->colours[base + i] = colours ? colours[i] : SL_CMD_PLAIN;
		if (!t->cells[base + i]) {
			for (size_t j = 0; j < i; j++)
				free(t->cells[base + j]);
			return SL_ENOMEM;
		}
	}
	t->n_rows++;
	return 0;
}

int sl_cmd__table_init(struct sl_cmd__table *t, const char *const *headers, size_t n_cols)
{
	*t = (struct sl_cmd__table){.n_cols = n_cols};
	assert(n_cols > 0);
	return add_row(t, headers, NULL);
}

int sl_cmd__table_add(struct sl_cmd__table *t, const char *const *cells, const enum sl_cmd_colour *colours)
{
	return add_row(t, cells, colours);
}

int sl_cmd__table_write(const struct sl_cmd__table *t, bool headers, bool colour, struct sl_buf *out)
{
	size_t *width = calloc(t->n_cols, sizeof(*width));
	int r = 0;

	if (!width)
		return SL_ENOMEM;
	for (size_t row = headers ? 0 : 1; row < t->n_rows; row++)
		for (size_t c = 0; c < t->n_cols; c++)
			width[c] = SL_MAX(width[c], SL_MAX(columns(t->cells[row * t->n_cols + c]) + PADDING,
			                                   (size_t)MIN_WIDTH));
	for (size_t row = headers ? 0 : 1; r == 0 && row < t->n_rows; row++) {
		for (size_t c = 0; r == 0 && c < t->n_cols; c++) {
			const char *cell = t->cells[row * t->n_cols + c];
			enum sl_cmd_colour k = t->colours[row * t->n_cols + c];
			bool last = c + 1 == t->n_cols;
			bool paint = colour && k != SL_CMD_PLAIN && *cell;

			r = sl_buf_printf(out, "%s%s%s%*s", paint ? sgr[k] : "", cell, paint ? "\033[0m" : "",
			                  last ? 0 : (int)(width[c] - columns(cell)), "");
		}
		if (r == 0)
			r = sl_buf_puts(out, "\n");
	}
	free(width);
	return r;
}

void sl_cmd__table_free(struct sl_cmd__table *t)
{
	for (size_t i = 0; t->cells && i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->colours);
	*t = (struct sl_cmd__table){0};
}

/* "<a><ua>" followed by "<b><ub>" unless b is 0 */
static void two_units(char out[static 32], int64_t a, char ua, int64_t b, char ub)
{
	if (b)
		snprintf(out, 32, "%lld%c%lld%c", (long long)a, ua, (long long)b, ub);
	else
		snprintf(out, 32, "%lld%c", (long long)a, ua);
}

void sl_cmd__age(int64_t s, char out[static 32])
{
	int64_t m = s / 60, h = s / 3600, d = h / 24;

	if (s < -1)
		snprintf(out, 32, "<invalid>");
	else if (s < 0)
		snprintf(out, 32, "0s");
	else if (s < 120)
		two_units(out, s, 's', 0, 0);
	else if (m < 10)
		two_units(out, m, 'm', s % 60, 's');
	else if (m < 180)
		two_units(out, m, 'm', 0, 0);
	else if (h < 8)
		two_units(out, h, 'h', m % 60, 'm');
	else if (h < 48)
		two_units(out, h, 'h', 0, 0);
	else if (h < 24 * 8)
		two_units(out, d, 'd', h % 24, 'h');
	else if (h < 24 * 365 * 2)
		two_units(out, d, 'd', 0, 0);
	else if (h < 24 * 365 * 8)
		two_units(out, d / 365, 'y', d % 365, 'd');
	else
		two_units(out, d / 365, 'y', 0, 0);
}

bool sl_cmd__use_colour(int fd)
{
	const char *no = getenv("NO_COLOR"), *term = getenv("TERM");

	return isatty(fd) && !(no && *no) && !(term && strcmp(term, "dumb") == 0);
}
