/*
 * torch_mean_driver.c: prints lq_torch_mean_f32 of every array in a file, for torch_mean_check.py.
 *
 * Usage: torch_mean_driver FILE SM_COUNT MAX_THREADS_PER_SM
 *
 * FILE (little-endian): the 8 bytes "LQTMEAN1", a uint64 count, then count records, each an int64 n >= 1
 * followed by n float32 values. For each record one line goes to stdout: four hexadecimal float32 bit
 * patterns, lq_torch_mean_f32_ex with flags 0 (= lq_torch_mean_f32), 1, 2 and 3, so that a mismatch with
 * the GPU can be traced to one of the older Reduce.cuh variants. Exit status 0, or 2 on bad usage or
 * input (with a message on stderr).
 *
 * Build (on any x86-64 Linux machine, from the repository root):
 *   gcc -std=c11 -O2 -DLQ_BUILDING -Ilibquant tests/gpu/torch_mean_driver.c libquant/torch_mean.c \
 *       -o torch_mean_driver
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torch_mean.h"

static int fail(const char *what)
{
	fprintf(stderr, "torch_mean_driver: %s\n", what);
	return 2;
}

static uint32_t bits_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static int parse_int(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || v < 1 || v > 1000000000L)
		return 0;
	*out = (int)v;
	return 1;
}

int main(int argc, char **argv)
{
	int sm_count, max_threads;
	if (argc != 4 || !parse_int(argv[2], &sm_count) || !parse_int(argv[3], &max_threads))
		return fail("usage: torch_mean_driver FILE SM_COUNT MAX_THREADS_PER_SM");

	FILE *f = fopen(argv[1], "rb");
	if (f == NULL)
		return fail("cannot open the input file");

	char magic[8];
	uint64_t count;
	if (fread(magic, 1, sizeof magic, f) != sizeof magic || memcmp(magic, "LQTMEAN1", 8) != 0 ||
	    fread(&count, sizeof count, 1, f) != 1) {
		fclose(f);
		return fail("not a LQTMEAN1 file");
	}

	float *buf = NULL;
	int64_t cap = 0;
	int status = 0;
	for (uint64_t r = 0; r < count; r++) {
		int64_t n;
		if (fread(&n, sizeof n, 1, f) != 1 || n < 1 || (uint64_t)n > SIZE_MAX / sizeof(float)) {
			status = fail("bad record length");
			break;
		}
		if (n > cap) {
			float *nb = realloc(buf, (size_t)n * sizeof(float));
			if (nb == NULL) {
				status = fail("out of memory");
				break;
			}
			buf = nb;
			cap = n;
		}
		if (fread(buf, sizeof(float), (size_t)n, f) != (size_t)n) {
			status = fail("truncated record");
			break;
		}
		printf("%08" PRIx32, bits_of(lq_torch_mean_f32_ex(buf, n, sm_count, max_threads, 0u)));
		for (unsigned flags = 1; flags < 4; flags++)
			printf(" %08" PRIx32, bits_of(lq_torch_mean_f32_ex(buf, n, sm_count, max_threads, flags)));
		putchar('\n');
	}
	free(buf);
	fclose(f);
	if (status == 0 && fflush(stdout) != 0)
		status = fail("cannot write the output");
	return status;
}
