/* Error codes and the caller-supplied error buffer. */
#include "sluice/base.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const names[] = {
    [SL_ENOTFOUND - SL_ENOTFOUND] = "not found",
    [SL_EEXIST - SL_ENOTFOUND] = "already exists",
    [SL_ECONFLICT - SL_ENOTFOUND] = "conflict",
    [SL_EGONE - SL_ENOTFOUND] = "gone",
    [SL_EUNAUTHORIZED - SL_ENOTFOUND] = "unauthorized",
    [SL_EFORBIDDEN - SL_ENOTFOUND] = "forbidden",
    [SL_EINVALID - SL_ENOTFOUND] = "invalid",
    [SL_ETOOMANY - SL_ENOTFOUND] = "too many requests",
    [SL_ETOOLARGE - SL_ENOTFOUND] = "too large",
    [SL_ETIMEOUT - SL_ENOTFOUND] = "timed out",
    [SL_EIO - SL_ENOTFOUND] = "i/o error",
    [SL_ENOMEM - SL_ENOTFOUND] = "out of memory",
    [SL_EUNAVAILABLE - SL_ENOTFOUND] = "unavailable",
    [SL_EUNSUPPORTED - SL_ENOTFOUND] = "not supported",
    [SL_EINTERNAL - SL_ENOTFOUND] = "internal error",
    [SL_ECANCELED - SL_ENOTFOUND] = "canceled",
};

const char *sl_strerror(int code)
{
	if (code == 0)
		return "ok";
	if (code >= SL_ENOTFOUND && code < SL__EMAX && names[code - SL_ENOTFOUND])
		return names[code - SL_ENOTFOUND];
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}

int sl_error_setv(struct sl_error *err, int code, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return code;
}

int sl_error_set(struct sl_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sl_error_setv(err, code, fmt, ap);
	va_end(ap);
	return code;
}

void sl_error_prefix(struct sl_error *err, const char *fmt, ...)
{
	char pre[SL_ERRMSG_MAX], old[SL_ERRMSG_MAX];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* a message longer than SL_ERRMSG_MAX keeps its start, on purpose */
	(void)sl_snprintf_ok(err->msg, sizeof(err->msg), "%s: %s", pre, old);
}

void sl_error_clear(struct sl_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

int sl_error_from_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return SL_ENOTFOUND;
	case EEXIST:
		return SL_EEXIST;
	case EACCES:
	case EPERM:
		return SL_EFORBIDDEN;
	case EXDEV:
	case ELOOP:
		return SL_EINVALID;
	case ENOMEM:
		return SL_ENOMEM;
	default:
		return SL_EIO;
	}
}
