/* Standalone fuzz driver: feeds every file in the given directories (or the
 * given files) to LLVMFuzzerTestOneInput once, so a corpus runs as a test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int count = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: missing\n", argv[i]);
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			struct dirent **ents;
			int n = scandir(argv[i], &ents, NULL, alphasort);
			for (int k = 0; k < n; k++) {
				char p[4096];
				if (ents[k]->d_name[0] != '.') {
					snprintf(p, sizeof(p), "%s/%s", argv[i], ents[k]->d_name);
					if (run_file(p) < 0) {
						fprintf(stderr, "%s: unreadable\n", p);
						return 1;
					}
					count++;
				}
				free(ents[k]);
			}
			free(ents);
		} else if (run_file(argv[i]) == 0)
			count++;
	}
	printf("ran %d inputs\n", count);
	return count > 0 ? 0 : 1;
}
