/* sluice validate: not written yet; its issue replaces this file. */
#include "cmd.h"

#include <stdio.h>

int sl_cmd_validate(int argc, char **argv)
{
	fprintf(stderr, "sluice validate: not available in this build yet\n");
	return 2;
}
