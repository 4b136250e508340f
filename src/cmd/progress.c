/* The progress line of `sluice sync` and `sluice diff` on a terminal: the
 * sync engine reports counts, a timer redraws the line ten times a second,
 * and it is cleared before anything else is written. */
#include "cmd.h"
#include "sluice/base.h"
#include "sluice/loop.h"
#include "sluice/sync.h"

#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

void sl_cmd__progress_line(const char *cmd, const struct sl_sync_progress *p, uint64_t elapsed_ms,
                           size_t width, char *out, size_t outsz)
{
	size_t done = p->applied + p->unchanged + p->failed;
	bool diff = strcmp(cmd, "diff") == 0;
	int n;

	n = snprintf(out, outsz, "sluice %s: %zu/%zu objects, %zu %s, %zu unchanged, %zu failed", cmd, done,
	             p->planned, p->applied, diff ? "would change" : "applied", p->unchanged, p->failed);
	if (n >= 0 && (size_t)n < outsz && p->pruned)
		n += snprintf(out + n, outsz - (size_t)n, ", %zu pruned", p->pruned);
	if (n >= 0 && (size_t)n < outsz)
		snprintf(out + n, outsz - (size_t)n, ", %llu.%llus", (unsigned long long)(elapsed_ms / 1000),
		         (unsigned long long)(elapsed_ms % 1000 / 100));
	if (width && strlen(out) > width)
		out[width] = '\0';
}

static size_t term_width(int fd)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		return ws.ws_col - 1; /* never the last column: some terminals wrap there */
	return 79;
}

static void draw(struct sl_cmd__progress *p)
{
	struct sl_sync_progress sp = {p->planned, p->applied, p->unchanged, p->failed, p->pruned};
	uint64_t elapsed = sl_now_ms() - p->t0;
	char line[512];

	if (p->fd < 0 || !p->started ||
	    (p->planned < SL_CMD_PROGRESS_MIN_OBJECTS && elapsed < SL_CMD_PROGRESS_AFTER_MS))
		return;
	sl_cmd__progress_line(p->cmd, &sp, elapsed, term_width(p->fd), line, sizeof(line));
	dprintf(p->fd, "\r%s\033[K", line);
	p->shown = true;
}

static void on_tick(struct sl_loop *loop, struct sl_loop_timer *t, void *payload)
{
	draw(payload);
	sl_loop_timer_arm(t, SL_CMD_PROGRESS_EVERY_MS);
}

int sl_cmd__progress_start(struct sl_cmd__progress *p, struct sl_loop *loop, const char *cmd, int fd)
{
	*p = (struct sl_cmd__progress){.cmd = cmd, .fd = -1, .t0 = sl_now_ms()};
	if (!isatty(fd))
		return 0;
	if (sl_loop_timer_new(loop, on_tick, p, &p->timer) < 0)
		return SL_ENOMEM;
	p->fd = fd;
	sl_loop_timer_arm(p->timer, SL_CMD_PROGRESS_EVERY_MS);
	return 0;
}

void sl_cmd__progress_update(const struct sl_sync_progress *sp, void *payload)
{
	struct sl_cmd__progress *p = payload;

	p->started = true;
	p->planned = sp->planned;
	p->applied = sp->applied;
	p->unchanged = sp->unchanged;
	p->failed = sp->failed;
	p->pruned = sp->pruned;
}

void sl_cmd__progress_clear(struct sl_cmd__progress *p)
{
	if (p->shown)
		dprintf(p->fd, "\r\033[K");
	p->shown = false;
}

void sl_cmd__progress_stop(struct sl_cmd__progress *p)
{
	sl_cmd__progress_clear(p);
	sl_loop_timer_free(p->timer);
	p->timer = NULL;
	p->fd = -1;
}
