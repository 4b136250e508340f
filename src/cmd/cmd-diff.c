/* sluice diff: not written yet; its issue replaces this file. */
#include "cmd.h"

#include <stdio.h>

int sl_cmd_diff(int argc, char **argv)
{
	fprintf(stderr, "sluice diff: not available in this build yet\n");
	return 2;
}
