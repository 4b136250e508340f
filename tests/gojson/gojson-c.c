/* The C side of the gojson comparison: reads one JSON document per line from
 * stdin and prints sl_manifest_json_go of sl_manifest_json_parse of it, one
 * line each ("ERROR <message>" for a line that does not parse). */
#include "sluice/manifest-json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		struct sl_error err = {0};
		cJSON *v = NULL;
		char *out;

		if (n > 0 && line[n - 1] == '\n')
			n--;
		if (sl_manifest_json_parse(line, (size_t)n, &v, &err) < 0) {
			printf("ERROR %s\n", err.msg);
			continue;
		}
		out = sl_manifest_json_go(v);
		cJSON_Delete(v);
		if (!out) {
			fprintf(stderr, "gojson-c: out of memory\n");
			rc = 1;
			break;
		}
		printf("%s\n", out);
		free(out);
	}
	free(line);
	return rc;
}
