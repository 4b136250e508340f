/* The module's one-call entry point above its parts: load a tree with the
 * loader (load.c), then validate it (validate.c). */
#include "sluice/manifest.h"

int sl_manifest_load_dir(const char *root, const struct sl_manifest_limits *limits,
                         struct sl_manifest_set **ret, struct sl_error *err)
{
	struct sl_manifest_set *s = sl_manifest_set_new(limits);
	int r;

	if (!s)
		return sl_error_set(err, SL_ENOMEM, "out of memory");
	r = sl_manifest_set_add_dir(s, root, NULL, err);
	if (r == 0)
		r = sl_manifest_set_validate(s);
	if (r < 0) {
		if (r == SL_ENOMEM)
			sl_error_set(err, r, "out of memory");
		sl_manifest_set_free(s);
		return r;
	}
	*ret = s;
	return 0;
}
