/* sluice sync: not written yet; its issue replaces this file. */
#include "cmd.h"

#include <stdio.h>

int sl_cmd_sync(int argc, char **argv)
{
	fprintf(stderr, "sluice sync: not available in this build yet\n");
	return 2;
}
