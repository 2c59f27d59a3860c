/*
 * torch_norm_driver.c: libquant's replay of torch.linalg.norm(V, dim=1) (libquant/torch_norm.h) for every
 * matrix in a file, for torch_norm_check.py.
 *
 * Usage: torch_norm_driver IN OUT SM_COUNT MAX_THREADS_PER_SM
 *
 * IN (little-endian): the 8 bytes "LQTNORM1", a uint64 count, then count records, each an int64 rows,
 * an int64 cols, an int64 layout (1: the norms of the rows, 0: of the columns) and rows * cols float32
 * values (row-major). OUT gets, for each record and each variant flags = 0 .. 7 (LQ_TORCH_NORM_*), the
 * norms as float32 (rows of them, or cols). Exit status 0, or 2 on bad usage or input (with a message
 * on stderr).
 *
 * Build (on any x86-64 Linux machine, from the repository root): make build/torch_norm_driver
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torch_norm.h"

static int fail(const char *what)
{
	fprintf(stderr, "torch_norm_driver: %s\n", what);
	return 2;
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

/* The norms of one matrix under one variant into out. */
static int norms(const float *v, int64_t rows, int64_t cols, int inner, int sm, int thr, unsigned flags, float *out)
{
	lq_torch_norm_plan p;
	float tv[LQ_TORCH_NORM_MAX_THREADS], g[LQ_TORCH_NORM_MAX_THREADS];
	if (lq_torch_norm_plan_make(&p, rows, cols, inner, sm, thr, flags) != 0)
		return -1;
	if (inner) {
		for (int64_t i = 0; i < rows; i++)
			out[i] = lq_torch_norm_row(&p, v + i * cols, (int)((i * cols) % 4), tv, g);
		return 0;
	}
	if (p.inner) { /* a single row or column: each column gathered, a vector of its own */
		float *col = malloc((size_t)rows * sizeof *col);
		if (!col)
			return -1;
		for (int64_t j = 0; j < cols; j++) {
			for (int64_t i = 0; i < rows; i++)
				col[i] = v[i * cols + j];
			out[j] = lq_torch_norm_row(&p, col, 0, tv, g);
		}
		free(col);
		return 0;
	}
	int64_t ns = lq_torch_norm_outer_slots(&p);
	float *slots = calloc((size_t)(ns * cols), sizeof *slots);
	if (!slots)
		return -1;
	for (int64_t i = 0; i < rows; i++) {
		float *s = slots + lq_torch_norm_outer_slot(&p, i) * cols;
		for (int64_t j = 0; j < cols; j++)
			s[j] = lq_tn_reduce(&p, s[j], v[i * cols + j]);
	}
	for (int64_t j = 0; j < cols; j++)
		out[j] = lq_torch_norm_column(&p, slots, cols, j, tv, g);
	free(slots);
	return 0;
}

int main(int argc, char **argv)
{
	int sm, thr;
	if (argc != 5 || !parse_int(argv[3], &sm) || !parse_int(argv[4], &thr))
		return fail("usage: torch_norm_driver IN OUT SM_COUNT MAX_THREADS_PER_SM");
	FILE *f = fopen(argv[1], "rb"), *o = fopen(argv[2], "wb");
	if (!f || !o)
		return fail("cannot open the files");
	char magic[8];
	uint64_t count;
	if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "LQTNORM1", 8) != 0 || fread(&count, 8, 1, f) != 1)
		return fail("not a LQTNORM1 file");
	int status = 0;
	for (uint64_t r = 0; r < count && status == 0; r++) {
		int64_t h[3];
		if (fread(h, 8, 3, f) != 3 || h[0] < 1 || h[1] < 1 || h[0] > (1 << 28) / h[1])
			return fail("bad record");
		size_t n = (size_t)(h[0] * h[1]), nout = (size_t)(h[2] ? h[0] : h[1]);
		float *v = malloc(n * 4), *out = malloc(nout * 4);
		if (!v || !out)
			return fail("out of memory");
		if (fread(v, 4, n, f) != n)
			return fail("truncated record");
		for (unsigned flags = 0; flags < 8 && status == 0; flags++) {
			if (norms(v, h[0], h[1], (int)h[2], sm, thr, flags, out) != 0)
				status = fail("cannot replay a record");
			else if (fwrite(out, 4, nout, o) != nout)
				status = fail("cannot write the output");
		}
		free(v);
		free(out);
	}
	fclose(f);
	if (fclose(o) != 0 && status == 0)
		status = fail("cannot write the output");
	return status;
}
