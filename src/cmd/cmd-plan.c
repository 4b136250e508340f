/* sluice plan: not written yet; its issue replaces this file. */
#include "cmd.h"

#include <stdio.h>

int sl_cmd_plan(int argc, char **argv)
{
	fprintf(stderr, "sluice plan: not available in this build yet\n");
	return 2;
}
