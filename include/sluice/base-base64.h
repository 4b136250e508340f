/* base64 (RFC 4648, standard alphabet) decoding and encoding, for
 * kubeconfig "-data" fields and Secret values. */
#pragma once

#include <stddef.h>

/* Decodes s (whitespace ignored, padding optional) into a malloc'd buffer
 * (NUL-terminated for convenience; *ret_len excludes it). SL_EINVALID on a
 * character outside the alphabet. */
int sl_base64_decode(const char *s, size_t len, char **ret, size_t *ret_len);
/* Encodes n bytes into a malloc'd NUL-terminated string, or NULL. */
char *sl_base64_encode(const void *p, size_t n);
