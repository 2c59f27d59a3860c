/*
 * bench_kernels: in-memory throughput of the CPU quantization kernels, per core and on all cores, against
 * a memcpy of the same bytes (the copy bandwidth of this machine), on random bf16 weights.
 *
 *   bench_kernels [MEGABYTES]        (default 512 MB of bf16 input)
 *
 * Prints a Markdown table: GB/s of bf16 input for quantize (NF4, blocksize 64, double quantization) and of
 * bf16 output for dequantize, median of 5 runs after a warm-up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libquant.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef struct bench {
	uint16_t *x;
	int64_t n;
	uint8_t *packed;
	float *absmax;
	uint8_t *absq;
	float *nested;
	uint16_t *out;
} bench;

/* Median seconds of 5 runs of op after one warm-up. */
static double median_time(lq_ctx *ctx, bench *b, int op)
{
	double t[6];
	for (int r = 0; r < 6; r++) {
		double t0 = now();
		float off;
		int64_t nb = lq_quant_nblocks(b->n, 64);
		switch (op) {
		case 0:
			memcpy(b->out, b->x, (size_t)b->n * 2);
			break;
		case 1:
			lq_quantize_blocks(ctx, b->x, LQ_DTYPE_BF16, b->n, LQ_QTYPE_NF4, 64, b->packed, b->absmax, NULL);
			lq_double_quant(ctx, b->absmax, nb, b->absq, b->nested, &off);
			break;
		default:
			lq_dequantize_blocks(ctx, b->packed, b->absmax, b->n, LQ_QTYPE_NF4, 64, LQ_DTYPE_BF16, b->out);
			break;
		}
		t[r] = now() - t0;
	}
	qsort(t + 1, 5, sizeof *t, cmp_double);
	return t[3];
}

int main(int argc, char **argv)
{
	int64_t mb = argc > 1 ? atoll(argv[1]) : 512;
	bench b;
	b.n = mb * 1000000 / 2;
	b.x = malloc((size_t)b.n * 2);
	b.out = malloc((size_t)b.n * 2);
	b.packed = malloc((size_t)b.n / 2 + 1);
	b.absmax = malloc((size_t)(b.n / 64 + 1) * 4);
	b.absq = malloc((size_t)(b.n / 64 + 1));
	b.nested = malloc((size_t)(b.n / 64 / 256 + 2) * 4);
	uint64_t s = 88172645463325252ull;
	for (int64_t i = 0; i < b.n; i++) {
		float v = 0;
		for (int k = 0; k < 4; k++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			v += (float)(s >> 40) / (float)(1 << 24);
		}
		b.x[i] = lq_f32_to_bf16((v - 2.0f) * 0.035f);
	}
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	printf("| kernels | threads | quantize NF4+DQ (GB/s bf16 in) | per core | dequantize (GB/s bf16 out) | memcpy (GB/s) |\n");
	printf("|---|---|---|---|---|---|\n");
	const lq_cpu_path paths[] = {LQ_CPU_SCALAR, LQ_CPU_BEST};
	for (int m = 0; m < 2; m++) {
		int threads[] = {1, (int)cores};
		for (int k = 0; k < (cores > 1 ? 2 : 1); k++) {
			lq_ctx_options o = {.threads = threads[k], .cpu = paths[m]};
			lq_ctx *ctx = lq_ctx_create(&o);
			double gb = (double)b.n * 2 / 1e9;
			double tq = median_time(ctx, &b, 1), td = median_time(ctx, &b, 2), tc = median_time(ctx, &b, 0);
			printf("| %s | %d | %.2f | %.2f | %.2f | %.2f |\n", lq_ctx_backend_name(ctx), threads[k], gb / tq,
			       gb / tq / threads[k], gb / td, 2 * gb / tc);
			lq_ctx_free(ctx);
		}
	}
	printf("\n%lld MB of bf16 input; memcpy counts bytes read and written.\n", (long long)mb);
	return 0;
}
