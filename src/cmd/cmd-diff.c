/* sluice diff: a server-side dry run of a sync that prints, for each object
 * that would change, a unified diff of the fields sluice manages. Shares its
 * flags and flow with sluice sync (cmd-sync.c). */
#include "cmd.h"

#include <stdbool.h>

int sl_cmd_sync_main(int argc, char **argv, bool diff);

int sl_cmd_diff(int argc, char **argv)
{
	return sl_cmd_sync_main(argc, argv, true);
}
