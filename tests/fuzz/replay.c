/*
 * replay.c: runs a fuzz target's LLVMFuzzerTestOneInput on every file of the directories (and on the
 * files) given as arguments, without libFuzzer: the corpora are regression tests in `make check`
 * (zstd tests/fuzz/regression_driver.c). A broken invariant aborts inside the target; a path that cannot
 * be read, or no input at all, is a failure.
 *
 *   fuzz_replay DIR|FILE...
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		fprintf(stderr, "fuzz_replay: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			fclose(fp);
			fprintf(stderr, "fuzz_replay: out of memory reading '%s'\n", path);
			return -1;
		}
		n += fread(buf + n, 1, cap - n, fp);
		if (n < cap)
			break;
		cap *= 2;
		uint8_t *p = realloc(buf, cap);
		if (!p)
			free(buf);
		buf = p;
	}
	int err = ferror(fp);
	fclose(fp);
	if (err) {
		fprintf(stderr, "fuzz_replay: cannot read '%s'\n", path);
		free(buf);
		return -1;
	}
	/* an exact-size copy, so that a read past the input is caught by the sanitizers */
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays a directory's regular files in name order; returns how many, or -1. */
static long replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "fuzz_replay: cannot open '%s': %s\n", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			char **p = realloc(names, cap * sizeof *p);
			if (!p)
				break;
			names = p;
		}
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, by_name);
	long count = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(dir) + strlen(names[i]) + 2;
		char *path = malloc(len);
		struct stat sb;
		if (path) {
			snprintf(path, len, "%s/%s", dir, names[i]);
			if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
				if (replay_file(path) != 0)
					count = -1;
				else if (count >= 0)
					count++;
			}
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return count;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fuzz_replay DIR|FILE...\n");
		return 2;
	}
	long total = 0;
	int status = 0;
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		long n;
		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "fuzz_replay: cannot open '%s': %s\n", argv[i], strerror(errno));
			n = -1;
		} else if (S_ISDIR(sb.st_mode)) {
			n = replay_dir(argv[i]);
		} else {
			n = replay_file(argv[i]) == 0 ? 1 : -1;
		}
		if (n < 0)
			status = 1;
		else
			total += n;
	}
	printf("fuzz_replay: %ld inputs replayed\n", total);
	if (total == 0) {
		fprintf(stderr, "fuzz_replay: no input\n");
		status = 1;
	}
	return status;
}
