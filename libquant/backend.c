/*
 * backend.c: where the compute goes. The CPU kernels (cpu_kernels.c) are always there; the CUDA backend
 * (kernels/) is registered here and only here, when the library is built with LQ_HAVE_CUDA: the rest of
 * libquant never sees a CUDA type. Every backend gives the same bytes (tests/gpu/test_gpu.c checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"
#include "torch_mean.h"

#ifdef LQ_HAVE_CUDA
#include "lq_cuda.h"
#endif

bool lq_backend_gpu(const lq_ctx *ctx)
{
	return ctx->ngpu > 0;
}

void lq_backend_close(lq_ctx *ctx)
{
#ifdef LQ_HAVE_CUDA
	for (int i = 0; i < ctx->ngpu; i++)
		lq_cuda_close(ctx->gpu[i]);
#endif
	ctx->ngpu = 0;
}

/* "cuda" and "cuda:N": one device; "all": every one. */
static bool parse_device(const char *device, int *index, bool *all)
{
	*index = 0;
	*all = strcmp(device, "all") == 0;
	if (*all || strcmp(device, "cuda") == 0)
		return true;
	if (strncmp(device, "cuda:", 5) != 0 || !device[5])
		return false;
	char *end;
	long v = strtol(device + 5, &end, 10);
	if (*end || v < 0 || v > 1024)
		return false;
	*index = (int)v;
	return true;
}

lq_status lq_ctx_use_device(lq_ctx *ctx, const char *device)
{
	lq_clear_error(ctx);
	if (!device)
		device = "auto";
	bool automatic = strcmp(device, "auto") == 0;
	int index;
	bool all;
	if (strcmp(device, "cpu") == 0) {
		lq_backend_close(ctx);
		snprintf(ctx->device_note, sizeof ctx->device_note, "CPU, as asked");
		return LQ_OK;
	}
	if (!automatic && !parse_device(device, &index, &all))
		return lq_fail(ctx, LQ_ERR_ARG, "unknown device '%s' (cpu, cuda, cuda:N, all or auto)", device);
	if (automatic) {
		index = 0;
		all = false;
	}
#ifdef LQ_HAVE_CUDA
	lq_backend_close(ctx);
	char msg[LQ_ERRBUF] = "";
	int count = lq_cuda_device_count(msg, sizeof msg);
	lq_status st = LQ_OK;
	if (count == 0) {
		st = LQ_ERR_DEVICE;
	} else if (index >= count) {
		snprintf(msg, sizeof msg, "no CUDA device %d (there %s %d)", index, count == 1 ? "is" : "are", count);
		st = LQ_ERR_DEVICE;
	} else {
		const lq_cuda_tables tables = {
			.nf4_thresholds = lq_nf4_thresholds,
			.fp4_thresholds = lq_fp4_thresholds_sorted,
			.fp4_code_by_rank = lq_fp4_code_by_rank,
			.code = {lq_code_table(LQ_QTYPE_NF4), lq_code_table(LQ_QTYPE_FP4)},
			.dynamic_map = lq_dynamic_map(),
		};
		int first = all ? 0 : index, last = all ? (count < LQ_MAX_GPUS ? count : LQ_MAX_GPUS) : index + 1;
		for (int d = first; d < last && st == LQ_OK; d++) {
			st = lq_cuda_open(d, &tables, (lq_cuda **)&ctx->gpu[ctx->ngpu], msg, sizeof msg);
			if (st == LQ_OK)
				ctx->ngpu++;
		}
	}
	if (st != LQ_OK) {
		lq_backend_close(ctx);
		if (automatic) {
			/* "CPU: no GPU (no NVIDIA driver found)", or "CPU: no usable GPU (the CUDA error)" */
			snprintf(ctx->device_note, sizeof ctx->device_note, strncmp(msg, "no GPU", 6) == 0 ? "CPU: %s" :
				 "CPU: no usable GPU (%s)", msg);
			return LQ_OK;
		}
		return lq_fail(ctx, st, "%s", msg);
	}
	if (ctx->ngpu == 1)
		snprintf(ctx->device_note, sizeof ctx->device_note, "cuda:%d (%s)", index, lq_cuda_name(ctx->gpu[0]));
	else
		snprintf(ctx->device_note, sizeof ctx->device_note, "%d GPUs (%s, ...)", ctx->ngpu,
			 lq_cuda_name(ctx->gpu[0]));
	return LQ_OK;
#else
	if (automatic) {
		snprintf(ctx->device_note, sizeof ctx->device_note, "CPU: built without CUDA");
		return LQ_OK;
	}
	return lq_fail(ctx, LQ_ERR_DEVICE, "device '%s': this build has no CUDA support (rebuild with nvcc installed)",
		       device);
#endif
}

const char *lq_ctx_device_note(const lq_ctx *ctx)
{
	return ctx->device_note;
}

const char *lq_ctx_backend_name(const lq_ctx *ctx)
{
	return ctx->ngpu ? ctx->device_note : ctx->cpu->name;
}

void *lq_backend_host_alloc(const lq_ctx *ctx, size_t size)
{
#ifdef LQ_HAVE_CUDA
	if (ctx->ngpu) /* pinned: transfers at full speed */
		return lq_cuda_host_alloc(size);
#endif
	(void)ctx;
	return malloc(size);
}

void lq_backend_host_free(const lq_ctx *ctx, void *p)
{
#ifdef LQ_HAVE_CUDA
	if (ctx->ngpu) {
		lq_cuda_host_free(p);
		return;
	}
#endif
	(void)ctx;
	free(p);
}

#ifdef LQ_HAVE_CUDA
/* A tensor's blocks split over the GPUs, one host thread each. */
typedef struct gpu_job {
	lq_ctx *ctx;
	int op; /* 0 quantize, 1 dequantize */
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
	int64_t per = (j->nblocks + j->ctx->ngpu - 1) / j->ctx->ngpu;
	int64_t b0 = i * per, b1 = b0 + per < j->nblocks ? b0 + per : j->nblocks;
	j->bad[i] = -1;
	if (b0 >= b1) {
		j->st[i] = LQ_OK;
		return;
	}
	if (j->op == 0)
		j->st[i] = lq_cuda_quantize_blocks(j->ctx->gpu[i], j->src, j->dtype, j->n, j->qtype, j->blocksize, b0, b1,
						   j->packed, j->absmax, &j->bad[i], j->msg[i], sizeof j->msg[i]);
	else
		j->st[i] = lq_cuda_dequantize_blocks(j->ctx->gpu[i], j->cpacked, j->cabsmax, j->n, j->qtype, j->blocksize,
						     b0, b1, j->dtype, j->out, j->msg[i], sizeof j->msg[i]);
}

static lq_status gpu_run(gpu_job *j, int64_t *bad_index)
{
	lq_pool_run(j->ctx->pool, j->ctx->ngpu, gpu_item, j);
	/* the first failure in block order; a non-finite element: the smallest index */
	for (int i = 0; i < j->ctx->ngpu; i++)
		if (j->st[i] != LQ_OK) {
			if (bad_index)
				*bad_index = j->bad[i];
			if (j->st[i] == LQ_ERR_NONFINITE)
				return LQ_ERR_NONFINITE;
			return lq_fail(j->ctx, j->st[i], "%s", j->msg[i]);
		}
	return LQ_OK;
}
#endif

lq_status lq_backend_quantize(lq_ctx *ctx, const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
			      int32_t blocksize, uint8_t *packed, float *absmax, int64_t *bad_index)
{
#ifdef LQ_HAVE_CUDA
	gpu_job j = {.ctx = ctx, .op = 0, .src = src, .dtype = dtype, .n = n, .qtype = qtype, .blocksize = blocksize,
		     .nblocks = lq_quant_nblocks(n, blocksize), .packed = packed, .absmax = absmax};
	return gpu_run(&j, bad_index);
#else
	(void)src, (void)dtype, (void)n, (void)qtype, (void)blocksize, (void)packed, (void)absmax, (void)bad_index;
	return lq_fail(ctx, LQ_ERR_DEVICE, "no GPU backend");
#endif
}

lq_status lq_backend_double_quant_codes(lq_ctx *ctx, const float *absmax, int64_t nblocks, float offset,
					uint8_t *absmax_q, float *nested_absmax)
{
#ifdef LQ_HAVE_CUDA
	char msg[256];
	lq_status st = lq_cuda_double_quant(ctx->gpu[0], absmax, nblocks, offset, absmax_q, nested_absmax, msg, sizeof msg);
	return st == LQ_OK ? LQ_OK : lq_fail(ctx, st, "%s", msg);
#else
	(void)absmax, (void)nblocks, (void)offset, (void)absmax_q, (void)nested_absmax;
	return lq_fail(ctx, LQ_ERR_DEVICE, "no GPU backend");
#endif
}

lq_status lq_backend_dequantize(lq_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
				int32_t blocksize, lq_dtype dtype, void *out)
{
#ifdef LQ_HAVE_CUDA
	gpu_job j = {.ctx = ctx, .op = 1, .dtype = dtype, .n = n, .qtype = qtype, .blocksize = blocksize,
		     .nblocks = lq_quant_nblocks(n, blocksize), .cpacked = packed, .cabsmax = absmax, .out = out};
	return gpu_run(&j, NULL);
#else
	(void)packed, (void)absmax, (void)n, (void)qtype, (void)blocksize, (void)dtype, (void)out;
	return lq_fail(ctx, LQ_ERR_DEVICE, "no GPU backend");
#endif
}

bool lq_backend_merge_suits(const lq_ctx *ctx, const lq_merge_job *job)
{
	if (!ctx->ngpu || job->nloras == 0 || job->nloras > 16)
		return false;
	for (size_t l = 0; l < job->nloras; l++)
		if (job->loras[l].layout == LQ_LORA_VECTOR || job->loras[l].rank > 1024)
			return false;
	return true;
}

lq_status lq_backend_merge(lq_ctx *ctx, const lq_merge_job *job, uint64_t key, int64_t nrows, const void *in,
			   lq_dtype in_dtype, const uint8_t *packed, const float *absmax, lq_qtype qtype,
			   int32_t blocksize, void *out, lq_dtype out_dtype, int64_t *bad_index)
{
	*bad_index = -1;
	if (!lq_backend_merge_suits(ctx, job))
		return LQ_ERR_UNSUPPORTED;
	if (packed) { /* the GPU merge dequantizes a 4-bit base itself: its dequantization step fails here */
		lq_status injected = lq_test_injected(ctx, LQ_TEST_STEP_DEQUANTIZE);
		if (injected != LQ_OK)
			return injected;
	}
#ifdef LQ_HAVE_CUDA
	const float *x[16], *y[16];
	if (job->nloras > 16)
		return LQ_ERR_UNSUPPORTED;
	for (size_t l = 0; l < job->nloras; l++) {
		bool transposed = job->loras[l].layout == LQ_LORA_TRANSPOSED;
		x[l] = transposed ? job->bt[l] : job->a[l];
		y[l] = transposed ? job->a[l] : job->b[l];
	}
	/* one GPU: the rows of a chunk are few enough that splitting them would cost more than it saves */
	lq_cuda_merge m = {.key = key, .rows = job->rows, .cols = job->cols, .row0 = job->row0, .nrows = nrows,
			   .wtype = job->dtype, .in = in, .in_dtype = in_dtype, .packed = packed, .absmax = absmax,
			   .qtype = qtype, .blocksize = blocksize, .nloras = job->nloras, .loras = job->loras, .x = x,
			   .y = y, .magnitude = (const float *const *)job->magnitude,
			   .col_factor = (const float *const *)job->col_factor, .row_plan = job->row_plan ? *job->row_plan : (lq_torch_norm_plan){0},
			   .keep_last_unrounded = job->keep_last_unrounded, .out = out, .out_dtype = out_dtype};
	char msg[256];
	lq_status st = lq_cuda_merge_rows(ctx->gpu[0], &m, bad_index, msg, sizeof msg);
	return st == LQ_OK || st == LQ_ERR_NONFINITE ? st : lq_fail(ctx, st, "%s", msg);
#else
	(void)key, (void)nrows, (void)in, (void)in_dtype, (void)packed, (void)absmax, (void)qtype, (void)blocksize;
	(void)out, (void)out_dtype;
	return LQ_ERR_UNSUPPORTED;
#endif
}

lq_status lq_backend_error_pieces(lq_ctx *ctx, const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype,
				  int64_t n, int64_t first, lq_error_sums *pieces)
{
	if (!ctx->ngpu)
		return LQ_ERR_UNSUPPORTED;
#ifdef LQ_HAVE_CUDA
	char msg[256];
	lq_status st = lq_cuda_error_pieces(ctx->gpu[0], x, x_dtype, ref, ref_dtype, n, first, pieces, msg, sizeof msg);
	return st == LQ_OK ? LQ_OK : lq_fail(ctx, st, "%s", msg);
#else
	(void)x, (void)x_dtype, (void)ref, (void)ref_dtype, (void)n, (void)first, (void)pieces;
	return LQ_ERR_UNSUPPORTED;
#endif
}
