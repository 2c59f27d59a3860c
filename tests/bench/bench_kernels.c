/*
 * bench_kernels: in-memory throughput of the CPU quantization kernels, per core and on all cores, against
 * a memcpy of the same bytes (the copy bandwidth of this machine), on random bf16 weights.
 *
 *   bench_kernels [MEGABYTES]        (default 512 MB of bf16 input)
 *
 * Prints a Markdown table: GB/s of bf16 input for quantize (NF4, blocksize 64, double quantization) and of
 * bf16 output for dequantize, median of 5 runs after a warm-up, for each CPU path this machine runs
 * (scalar, AVX2, AVX-512); then the LoRA merge of a bf16 weight [1024, 4096] with a rank-64 adapter on one
 * core (lq_merge_rows: the delta, the sum and its rounding), per path; then what measuring a merge's
 * fidelity costs an element on one core (fidelity.c's sums, 16M elements, its float32 result from memory as
 * after a requantization's last chunk), against that merge's own cost an element.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lq_internal.h"

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

/* One core's merge of a bf16 weight [rows, cols] with a rank-r adapter (LQ_LORA_ROWS), per path: the
 * median of 5 runs after a warm-up, as milliseconds and GFLOP/s of the delta (2 r flops an element). */
static double merge_table(const lq_cpu_path *paths, int npaths)
{
	double best = 0;
	const int64_t rows = 1024, cols = 4096;
	const int32_t r = 64;
	float *a = malloc((size_t)(r * cols) * 4), *bm = malloc((size_t)(rows * r) * 4);
	float *w0 = malloc((size_t)(rows * cols) * 4), *w = malloc((size_t)(rows * cols) * 4);
	float *d = malloc((size_t)(cols * LQ_MERGE_GROUP) * 4);
	uint64_t s = 2463534242ull;
	for (int64_t i = 0; i < r * cols; i++)
		s ^= s << 13, s ^= s >> 7, s ^= s << 17, a[i] = (float)(s >> 40) / (float)(1 << 24) - 0.5f;
	for (int64_t i = 0; i < rows * r; i++)
		s ^= s << 13, s ^= s >> 7, s ^= s << 17, bm[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * 0.01f;
	for (int64_t i = 0; i < rows * cols; i++)
		s ^= s << 13, s ^= s >> 7, s ^= s << 17, w0[i] = lq_bf16_to_f32(lq_f32_to_bf16((float)(s >> 40) / (float)(1 << 24)));
	const lq_lora lora = {.layout = LQ_LORA_ROWS, .rank = r, .scaling = 2.0f, .ab_dtype = LQ_DTYPE_F32};
	float *as[1] = {a}, *bs[1] = {bm}, *bts[1] = {NULL};
	printf("| kernels | merge [%lld, %lld] bf16, rank %d, one core (ms) | GFLOP/s |\n", (long long)rows,
	       (long long)cols, (int)r);
	printf("|---|---|---|\n");
	for (int m = 0; m < npaths; m++) {
		const lq_cpu_kernels *k = lq_cpu_kernels_for(paths[m]);
		if (!k)
			continue;
		lq_merge_job job = {.kernels = k, .w = w, .row0 = 0, .rows = rows, .cols = cols, .dtype = LQ_DTYPE_BF16,
				    .loras = &lora, .nloras = 1, .a = as, .b = bs, .bt = bts};
		double t[6];
		for (int run = 0; run < 6; run++) {
			memcpy(w, w0, (size_t)(rows * cols) * 4);
			double t0 = now();
			lq_merge_rows(&job, 0, rows, d);
			t[run] = now() - t0;
		}
		qsort(t + 1, 5, sizeof *t, cmp_double);
		printf("| %s | %.1f | %.1f |\n", k->name, t[3] * 1e3, 2.0 * r * (double)(rows * cols) / t[3] / 1e9);
		if (best == 0 || t[3] < best)
			best = t[3];
	}
	free(a), free(bm), free(w0), free(w), free(d);
	return best / (double)(rows * cols);
}

/* The fidelity sums of n elements on one core, in the two common forms: a float merge (y; W and M bfloat16;
 * Wq the base's codes) and a requantization measured after its last chunk (y; W = Wq and M codes; W16
 * bfloat16). Nanoseconds an element, the median of 5 runs after a warm-up, and against merge_ns (one
 * core's merge an element, the best path). */
static void fidelity_table(double merge_ns)
{
	const int64_t n = (int64_t)16 << 20;
	float *y = malloc((size_t)n * 4), *absmax = malloc((size_t)(n / 64) * 4), *mabsmax = malloc((size_t)(n / 64) * 4);
	uint16_t *w = malloc((size_t)n * 2), *m = malloc((size_t)n * 2);
	uint8_t *wq = malloc((size_t)n / 2), *mq = malloc((size_t)n / 2);
	uint64_t s = 0x9e3779b97f4a7c15ull;
	for (int64_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		const float v = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * 0.05f;
		w[i] = lq_f32_to_bf16(v);
		y[i] = lq_bf16_to_f32(w[i]) + v * 0.01f;
		m[i] = lq_f32_to_bf16(y[i]);
	}
	for (int64_t i = 0; i < n / 2; i++)
		s ^= s << 13, s ^= s >> 7, s ^= s << 17, wq[i] = (uint8_t)(s >> 32), mq[i] = (uint8_t)(s >> 40);
	for (int64_t b = 0; b < n / 64; b++)
		absmax[b] = 0.025f, mabsmax[b] = 0.0251f;
	const lq_fidelity_side W = {.values = w, .dtype = LQ_DTYPE_BF16}, M = {.values = m, .dtype = LQ_DTYPE_BF16},
			       WQ = {.codes = wq, .absmax = absmax, .qtype = LQ_QTYPE_NF4, .blocksize = 64, .dtype = LQ_DTYPE_BF16},
			       MQ = {.codes = mq, .absmax = mabsmax, .qtype = LQ_QTYPE_NF4, .blocksize = 64, .dtype = LQ_DTYPE_BF16};
	const lq_fidelity_range forms[2] = {
		{.w = W, .m = M, .w16 = W, .wq = WQ, .y = y, .delta = true, .match = true, .noise = true},
		{.w = WQ, .m = MQ, .w16 = W, .wq = WQ, .y = y, .delta = true, .match = true, .noise = true}};
	const char *names[2] = {"float merge (y; W, M bf16; Wq codes)", "4-bit merge, at its end (y; Wq, M codes; W16 bf16)"};
	lq_ctx_options o = {.threads = 1};
	lq_ctx *ctx = lq_ctx_create(&o);
	printf("\n| fidelity sums, one core | ns an element | vs the merge an element (%.2f ns) |\n", merge_ns * 1e9);
	printf("|---|---|---|\n");
	for (int f = 0; f < 2 && ctx; f++) {
		double t[6];
		for (int run = 0; run < 6; run++) {
			lq_fidelity_sums sums = {0};
			double t0 = now();
			lq_fidelity_add_here(ctx, &forms[f], n, &sums);
			t[run] = now() - t0;
		}
		qsort(t + 1, 5, sizeof *t, cmp_double);
		printf("| %s | %.2f | %.2fx |\n", names[f], t[3] / (double)n * 1e9, t[3] / (double)n / merge_ns);
	}
	lq_ctx_free(ctx);
	free(y), free(absmax), free(mabsmax), free(w), free(m), free(wq), free(mq);
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
	const lq_cpu_path paths[] = {LQ_CPU_SCALAR, LQ_CPU_AVX2, LQ_CPU_AVX512};
	for (int m = 0; m < 3; m++) {
		if (!lq_cpu_path_supported(paths[m]))
			continue;
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
	printf("\n%lld MB of bf16 input; memcpy counts bytes read and written.\n\n", (long long)mb);
	fidelity_table(merge_table(paths, 3));
	return 0;
}
