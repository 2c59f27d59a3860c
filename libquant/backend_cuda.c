/*
 * backend_cuda.c: the CUDA backend (lq_backend) over kernels/ (lq_cuda.h, one device each): one GPU, or
 * every GPU of the machine with "all", a tensor's blocks split between them. Built only when the library
 * is built with CUDA; backend.c registers it. The kernels give the CPU's bytes; this file only places the
 * work and turns the CUDA errors into the context's message, naming the device ("GPU 1 (NVIDIA H100 ...): ").
 * LQ_TEST_FAIL_DEVICE=N makes GPU N's kernel launches fail, for the tests of a GPU lost mid-run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_cuda.h"
#include "lq_internal.h"

/* The devices a context computes on. */
typedef struct gpu_set {
	int n;
	lq_cuda *dev[LQ_MAX_GPUS];
	int fail_device; /* LQ_TEST_FAIL_DEVICE's, or -1 */
} gpu_set;

static gpu_set *gpus_of(const lq_ctx *ctx)
{
	return ctx->backend_self;
}

static void cuda_close(void *self)
{
	gpu_set *g = self;
	if (!g)
		return;
	for (int i = 0; i < g->n; i++)
		lq_cuda_close(g->dev[i]);
	free(g);
}

/* LQ_TEST_FAIL_DEVICE: the CUDA index of a device whose kernel launches are to fail (lq_cuda.h), -1 when
 * unset or empty; -2, with msg, when it is not a device index. */
static int test_fail_device(char *msg, size_t msg_size)
{
	const char *v = getenv("LQ_TEST_FAIL_DEVICE");
	if (!v || !*v)
		return -1;
	char *end;
	long d = strtol(v, &end, 10);
	if (*end || v[0] < '0' || v[0] > '9' || d >= LQ_MAX_GPUS) {
		snprintf(msg, msg_size, "LQ_TEST_FAIL_DEVICE: '%.32s' is not a GPU index (0 to %d)", v, LQ_MAX_GPUS - 1);
		return -2;
	}
	return (int)d;
}

static lq_status cuda_open(int index, bool all, void **self, char *note, size_t note_size, char *msg, size_t msg_size)
{
	int count = lq_cuda_device_count(msg, msg_size);
	if (count == 0)
		return LQ_ERR_DEVICE;
	const int fail_device = test_fail_device(msg, msg_size);
	if (fail_device == -2)
		return LQ_ERR_DEVICE;
	if (index >= count) {
		snprintf(msg, msg_size, "no CUDA device %d (there %s %d)", index, count == 1 ? "is" : "are", count);
		return LQ_ERR_DEVICE;
	}
	gpu_set *g = calloc(1, sizeof *g);
	if (!g) {
		snprintf(msg, msg_size, "out of memory");
		return LQ_ERR_NOMEM;
	}
	g->fail_device = fail_device;
	const lq_cuda_tables tables = {
		.nf4_thresholds = lq_nf4_thresholds,
		.fp4_thresholds = lq_fp4_thresholds_sorted,
		.fp4_code_by_rank = lq_fp4_code_by_rank,
		.code = {[LQ_QTYPE_NF4] = lq_code_table(LQ_QTYPE_NF4), [LQ_QTYPE_FP4] = lq_code_table(LQ_QTYPE_FP4)},
		.dynamic_map = lq_dynamic_map(),
	};
	int first = all ? 0 : index, last = all ? (count < LQ_MAX_GPUS ? count : LQ_MAX_GPUS) : index + 1;
	lq_status st = LQ_OK;
	for (int d = first; d < last; d++) {
		char why[256] = "";
		st = lq_cuda_open(d, &tables, &g->dev[g->n], why, sizeof why);
		if (st != LQ_OK) {
			snprintf(msg, msg_size, "GPU %d: %s", d, why);
			break;
		}
		if (d == fail_device)
			lq_cuda_test_fail_launches(g->dev[g->n]);
		g->n++;
	}
	if (st != LQ_OK) {
		cuda_close(g);
		return st;
	}
	if (g->n == 1)
		snprintf(note, note_size, "cuda:%d (%s)", index, lq_cuda_name(g->dev[0]));
	else
		snprintf(note, note_size, "%d GPUs (%s, ...)", g->n, lq_cuda_name(g->dev[0]));
	*self = g;
	return LQ_OK;
}

/* A device's failure, named: "GPU 1 (NVIDIA H100 80GB HBM3): CUDA error in the quantize kernel: ...", and
 * said to be simulated when LQ_TEST_FAIL_DEVICE named that device. */
static lq_status gpu_fail(lq_ctx *ctx, const lq_cuda *dev, lq_status st, const char *msg)
{
	const bool simulated = gpus_of(ctx)->fail_device == lq_cuda_index(dev);
	return lq_fail(ctx, st, "GPU %d (%s): %s%s", lq_cuda_index(dev), lq_cuda_name(dev), msg,
		       simulated ? " (simulated: LQ_TEST_FAIL_DEVICE)" : "");
}

/* A tensor's blocks split over the GPUs, one host thread each. */
typedef struct gpu_job {
	const gpu_set *g;
	bool dequantize;
	const void *src;
	lq_dtype dtype;
	int64_t n;
	lq_qtype qtype;
	int32_t blocksize;
	int64_t nblocks;
	uint8_t *packed;
	float *absmax;
	const uint8_t *cpacked;
	const float *cabsmax;
	void *out;
	lq_status st[LQ_MAX_GPUS];
	int64_t bad[LQ_MAX_GPUS];
	char msg[LQ_MAX_GPUS][256];
} gpu_job;

static void gpu_item(void *arg, int64_t i)
{
	gpu_job *j = arg;
	int64_t per = (j->nblocks + j->g->n - 1) / j->g->n;
	int64_t b0 = i * per, b1 = b0 + per < j->nblocks ? b0 + per : j->nblocks;
	j->bad[i] = -1;
	if (b0 >= b1) {
		j->st[i] = LQ_OK;
		return;
	}
	if (!j->dequantize)
		j->st[i] = lq_cuda_quantize_blocks(j->g->dev[i], j->src, j->dtype, j->n, j->qtype, j->blocksize, b0, b1,
						   j->packed, j->absmax, &j->bad[i], j->msg[i], sizeof j->msg[i]);
	else
		j->st[i] = lq_cuda_dequantize_blocks(j->g->dev[i], j->cpacked, j->cabsmax, j->n, j->qtype, j->blocksize,
						     b0, b1, j->dtype, j->out, j->msg[i], sizeof j->msg[i]);
}

static lq_status gpu_run(lq_ctx *ctx, gpu_job *j, int64_t *bad_index)
{
	lq_pool_run(ctx->pool, j->g->n, gpu_item, j);
	/* the first failure in block order; a non-finite element: the smallest index */
	for (int i = 0; i < j->g->n; i++)
		if (j->st[i] != LQ_OK) {
			if (bad_index)
				*bad_index = j->bad[i];
			if (j->st[i] == LQ_ERR_NONFINITE)
				return LQ_ERR_NONFINITE;
			return gpu_fail(ctx, j->g->dev[i], j->st[i], j->msg[i]);
		}
	return LQ_OK;
}

static lq_status cuda_quantize(lq_ctx *ctx, const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
			       int32_t blocksize, uint8_t *packed, float *absmax, int64_t *bad_index)
{
	gpu_job j = {.g = gpus_of(ctx), .src = src, .dtype = dtype, .n = n, .qtype = qtype, .blocksize = blocksize,
		     .nblocks = lq_quant_nblocks(n, blocksize), .packed = packed, .absmax = absmax};
	return gpu_run(ctx, &j, bad_index);
}

static lq_status cuda_dequantize(lq_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
				 int32_t blocksize, lq_dtype dtype, void *out)
{
	gpu_job j = {.g = gpus_of(ctx), .dequantize = true, .dtype = dtype, .n = n, .qtype = qtype,
		     .blocksize = blocksize, .nblocks = lq_quant_nblocks(n, blocksize), .cpacked = packed,
		     .cabsmax = absmax, .out = out};
	return gpu_run(ctx, &j, NULL);
}

static lq_status cuda_double_quant_codes(lq_ctx *ctx, const float *absmax, int64_t nblocks, float offset,
					 uint8_t *absmax_q, float *nested_absmax)
{
	char msg[256];
	lq_cuda *dev = gpus_of(ctx)->dev[0];
	lq_status st = lq_cuda_double_quant(dev, absmax, nblocks, offset, absmax_q, nested_absmax, msg, sizeof msg);
	return st == LQ_OK ? LQ_OK : gpu_fail(ctx, dev, st, msg);
}

static bool cuda_merge_suits(const lq_ctx *ctx, const lq_merge_job *job)
{
	(void)ctx;
	if (job->nloras == 0 || job->nloras > 16 || job->replace_of)
		return false;
	for (size_t l = 0; l < job->nloras; l++)
		if (job->loras[l].layout == LQ_LORA_VECTOR || job->loras[l].rank > 1024)
			return false;
	return true;
}

/* One GPU: the rows of a chunk are few enough that splitting them would cost more than it saves. */
static lq_status cuda_merge_rows(lq_ctx *ctx, const lq_merge_job *job, uint64_t key, int64_t nrows, const void *in,
				 lq_dtype in_dtype, const uint8_t *packed, const float *absmax, lq_qtype qtype,
				 int32_t blocksize, void *out, lq_dtype out_dtype, int64_t *bad_index)
{
	*bad_index = -1;
	const float *x[16], *y[16];
	for (size_t l = 0; l < job->nloras; l++) {
		bool transposed = job->loras[l].layout == LQ_LORA_TRANSPOSED;
		x[l] = transposed ? job->bt[l] : job->a[l];
		y[l] = transposed ? job->a[l] : job->b[l];
	}
	lq_cuda_merge m = {.key = key, .rows = job->rows, .cols = job->cols, .row0 = job->row0, .nrows = nrows,
			   .wtype = job->dtype, .in = in, .in_dtype = in_dtype, .packed = packed, .absmax = absmax,
			   .qtype = qtype, .blocksize = blocksize, .nloras = job->nloras, .loras = job->loras, .x = x,
			   .y = y, .magnitude = (const float *const *)job->magnitude,
			   .col_factor = (const float *const *)job->col_factor,
			   .row_plan = job->row_plan ? *job->row_plan : (lq_torch_norm_plan){0},
			   .keep_last_unrounded = job->keep_last_unrounded, .out = out, .out_dtype = out_dtype};
	char msg[256];
	lq_status st = lq_cuda_merge_rows(gpus_of(ctx)->dev[0], &m, bad_index, msg, sizeof msg);
	if (st == LQ_ERR_NONFINITE)
		return st;
	return st == LQ_OK ? LQ_OK : gpu_fail(ctx, gpus_of(ctx)->dev[0], st, msg);
}

static lq_status cuda_error_pieces(lq_ctx *ctx, const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype,
				   int64_t n, int64_t first, lq_error_sums *pieces)
{
	char msg[256];
	lq_status st = lq_cuda_error_pieces(gpus_of(ctx)->dev[0], x, x_dtype, ref, ref_dtype, n, first, pieces, msg,
					    sizeof msg);
	return st == LQ_OK ? LQ_OK : gpu_fail(ctx, gpus_of(ctx)->dev[0], st, msg);
}

static lq_status cuda_svd_truncate(lq_ctx *ctx, const float *m, int64_t rows, int64_t cols, int64_t rank, float *b,
				   float *a, float *s)
{
	char msg[512];
	lq_status st = lq_cuda_svd(gpus_of(ctx)->dev[0], m, rows, cols, rank, b, a, s, msg, sizeof msg);
	return st == LQ_OK ? LQ_OK : gpu_fail(ctx, gpus_of(ctx)->dev[0], st, msg);
}

static lq_status cuda_svd_thin(lq_ctx *ctx, double *m, int64_t rows, int64_t cols, int64_t keep, double *s, double *u,
			       double *vt)
{
	char msg[512];
	lq_status st = lq_cuda_svd_thin(gpus_of(ctx)->dev[0], m, rows, cols, keep, s, u, vt, msg, sizeof msg);
	return st == LQ_OK ? LQ_OK : gpu_fail(ctx, gpus_of(ctx)->dev[0], st, msg);
}

static void *cuda_host_alloc(const lq_ctx *ctx, size_t size)
{
	(void)ctx;
	return lq_cuda_host_alloc(size);
}

static void cuda_host_free(const lq_ctx *ctx, void *p)
{
	(void)ctx;
	lq_cuda_host_free(p);
}

const lq_backend lq_backend_cuda = {
	.name = "cuda",
	.open = cuda_open,
	.close = cuda_close,
	.quantize = cuda_quantize,
	.dequantize = cuda_dequantize,
	.double_quant_codes = cuda_double_quant_codes,
	.merge_suits = cuda_merge_suits,
	.merge_rows = cuda_merge_rows,
	.error_pieces = cuda_error_pieces,
	.svd_truncate = cuda_svd_truncate,
	.svd_thin = cuda_svd_thin,
	.host_alloc = cuda_host_alloc,
	.host_free = cuda_host_free,
};
