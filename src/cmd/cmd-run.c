/* sluice run: not written yet; its issue replaces this file. */
#include "cmd.h"

#include <stdio.h>

int sl_cmd_run(int argc, char **argv)
{
	fprintf(stderr, "sluice run: not available in this build yet\n");
	return 2;
}
