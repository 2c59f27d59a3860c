/*
 * quant4.c: the public quantization calls: argument checks, sizes, and the split of a tensor's blocks over
 * the thread pool. The per-block work is done by the fastest kernels this CPU has (cpu_kernels.c); any
 * split gives the same bytes because blocks are independent.
 */
#include <stdlib.h>

#include "lq_internal.h"
#include "torch_mean.h"

/* Work items of about this many elements keep every thread busy without making items so small that
 * handing them out costs more than the work. */
#define ITEM_ELEMENTS (1 << 16)

bool lq_blocksize_valid(int64_t blocksize)
{
	return blocksize >= LQ_BLOCKSIZE_MIN && blocksize <= LQ_BLOCKSIZE_MAX && (blocksize & (blocksize - 1)) == 0;
}

int64_t lq_quant_nblocks(int64_t n, int32_t blocksize)
{
	return blocksize > 0 && n > 0 ? (n - 1) / blocksize + 1 : 0;
}

int64_t lq_quant_packed_bytes(int64_t n)
{
	return n > 0 ? (n - 1) / 2 + 1 : 0;
}

int64_t lq_quant_nested_blocks(int64_t nblocks)
{
	return nblocks > 0 ? (nblocks - 1) / LQ_NESTED_BLOCKSIZE + 1 : 0;
}

double lq_quant_bits_per_param(const lq_quant_params *params)
{
	double bs = params->blocksize;
	if (params->double_quant)
		return 4.0 + 8.0 / bs + 32.0 / (bs * LQ_NESTED_BLOCKSIZE);
	return 4.0 + 32.0 / bs;
}

static bool float_dtype(lq_dtype dtype)
{
	return dtype == LQ_DTYPE_F32 || dtype == LQ_DTYPE_F16 || dtype == LQ_DTYPE_BF16;
}

/* ---------------------------------------------------------------------------------- quantize */

typedef struct {
	const lq_cpu_kernels *k;
	const void *src;
	lq_dtype dtype;
	int64_t n;
	lq_qtype qtype;
	int32_t blocksize;
	int64_t nblocks;
	int64_t blocks_per_item;
	uint8_t *packed;
	float *absmax;
	int64_t *first_bad; /* per item */
} quantize_job;

static void quantize_item(void *arg, int64_t item)
{
	quantize_job *job = arg;
	int64_t b0 = item * job->blocks_per_item;
	int64_t b1 = b0 + job->blocks_per_item < job->nblocks ? b0 + job->blocks_per_item : job->nblocks;
	job->first_bad[item] = job->k->quantize_range(job->src, job->dtype, job->n, job->qtype, job->blocksize, b0, b1,
						      job->packed, job->absmax);
}

static int64_t blocks_per_item(int32_t blocksize)
{
	return ITEM_ELEMENTS / blocksize > 0 ? ITEM_ELEMENTS / blocksize : 1;
}

lq_status lq_quantize_blocks(lq_ctx *ctx, const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
			     int32_t blocksize, uint8_t *packed, float *absmax, int64_t *bad_index)
{
	lq_clear_error(ctx);
	if (bad_index)
		*bad_index = -1;
	if (!float_dtype(dtype))
		return lq_fail(ctx, LQ_ERR_ARG, "cannot quantize elements of type %s", lq_dtype_torch_name(dtype));
	if (!lq_blocksize_valid(blocksize))
		return lq_fail(ctx, LQ_ERR_ARG, "invalid blocksize %d", (int)blocksize);
	if (!lq_qtype_info(qtype))
		return lq_fail(ctx, LQ_ERR_ARG, "invalid quantization type %d", (int)qtype);
	if (n <= 0)
		return LQ_OK;
	lq_status injected = lq_test_injected(ctx, LQ_TEST_STEP_QUANTIZE);
	if (injected != LQ_OK)
		return injected;
	if (lq_backend_gpu(ctx)) {
		int64_t bad = -1;
		lq_status st = lq_backend_quantize(ctx, src, dtype, n, qtype, blocksize, packed, absmax, &bad);
		if (st == LQ_ERR_NONFINITE) {
			if (bad_index)
				*bad_index = bad;
			float v = lq_load_f32(src, dtype, bad);
			return lq_fail(ctx, LQ_ERR_NONFINITE, "element %lld is %s", (long long)bad,
				       v != v ? "NaN" : (v > 0 ? "+inf" : "-inf"));
		}
		return st;
	}
	quantize_job job = {
		.k = ctx->cpu, .src = src, .dtype = dtype, .n = n, .qtype = qtype, .blocksize = blocksize,
		.nblocks = lq_quant_nblocks(n, blocksize), .blocks_per_item = blocks_per_item(blocksize),
		.packed = packed, .absmax = absmax,
	};
	int64_t nitems = (job.nblocks - 1) / job.blocks_per_item + 1;
	job.first_bad = malloc((size_t)nitems * sizeof *job.first_bad);
	if (!job.first_bad)
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	lq_pool_run(ctx->pool, nitems, quantize_item, &job);
	int64_t bad = -1;
	for (int64_t i = 0; i < nitems && bad < 0; i++)
		bad = job.first_bad[i]; /* items are in element order: the first one found is the smallest */
	free(job.first_bad);
	if (bad >= 0) {
		if (bad_index)
			*bad_index = bad;
		float v = lq_load_f32(src, dtype, bad);
		return lq_fail(ctx, LQ_ERR_NONFINITE, "element %lld is %s", (long long)bad,
			       v != v ? "NaN" : (v > 0 ? "+inf" : "-inf"));
	}
	return LQ_OK;
}

/* ------------------------------------------------------------------------- double quantization */

typedef struct {
	const float *absmax;
	int64_t nblocks;
	float offset;
	uint8_t *absmax_q;
	float *nested_absmax;
} dq_job;

static void dq_item(void *arg, int64_t k)
{
	dq_job *job = arg;
	lq_double_quant_block(job->absmax, job->nblocks, job->offset, k, job->absmax_q, job->nested_absmax);
}

lq_status lq_double_quant(lq_ctx *ctx, const float *absmax, int64_t nblocks, uint8_t *absmax_q,
			  float *nested_absmax, float *offset)
{
	lq_clear_error(ctx);
	if (nblocks <= 0)
		return lq_fail(ctx, LQ_ERR_ARG, "double quantization of an empty tensor");
	lq_status injected = lq_test_injected(ctx, LQ_TEST_STEP_DOUBLE_QUANT);
	if (injected != LQ_OK)
		return injected;
	/* The offset is torch.mean on the GPU: its reduction order, replayed here, whichever backend computes
	 * the codes. */
	dq_job job = {
		.absmax = absmax, .nblocks = nblocks, .absmax_q = absmax_q, .nested_absmax = nested_absmax,
		.offset = lq_torch_mean_f32(absmax, nblocks, LQ_TORCH_REF_SM_COUNT, LQ_TORCH_REF_MAX_THREADS_PER_SM),
	};
	if (lq_backend_gpu(ctx)) {
		*offset = job.offset;
		return lq_backend_double_quant_codes(ctx, absmax, nblocks, job.offset, absmax_q, nested_absmax);
	}
	lq_pool_run(ctx->pool, lq_quant_nested_blocks(nblocks), dq_item, &job);
	*offset = job.offset;
	return LQ_OK;
}

lq_status lq_dequantize_absmax(lq_ctx *ctx, const uint8_t *absmax_q, const float *nested_absmax, float offset,
			       int64_t nblocks, float *absmax)
{
	lq_clear_error(ctx);
	lq_dequantize_absmax_ref(absmax_q, nested_absmax, offset, nblocks, absmax);
	return LQ_OK;
}

/* -------------------------------------------------------------------------------- dequantize */

typedef struct {
	const lq_cpu_kernels *k;
	const uint8_t *packed;
	const float *absmax;
	int64_t n;
	lq_qtype qtype;
	int32_t blocksize;
	int64_t nblocks;
	int64_t blocks_per_item;
	lq_dtype dtype;
	void *out;
} dequantize_job;

static void dequantize_item(void *arg, int64_t item)
{
	dequantize_job *job = arg;
	int64_t b0 = item * job->blocks_per_item;
	int64_t b1 = b0 + job->blocks_per_item < job->nblocks ? b0 + job->blocks_per_item : job->nblocks;
	job->k->dequantize_range(job->packed, job->absmax, job->n, job->qtype, job->blocksize, b0, b1, job->dtype,
				 job->out);
}

lq_status lq_dequantize_blocks(lq_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n,
			       lq_qtype qtype, int32_t blocksize, lq_dtype dtype, void *out)
{
	lq_clear_error(ctx);
	if (!float_dtype(dtype))
		return lq_fail(ctx, LQ_ERR_ARG, "cannot dequantize to elements of type %s", lq_dtype_torch_name(dtype));
	if (!lq_blocksize_valid(blocksize))
		return lq_fail(ctx, LQ_ERR_ARG, "invalid blocksize %d", (int)blocksize);
	if (!lq_qtype_info(qtype))
		return lq_fail(ctx, LQ_ERR_ARG, "invalid quantization type %d", (int)qtype);
	if (n <= 0)
		return LQ_OK;
	lq_status injected = lq_test_injected(ctx, LQ_TEST_STEP_DEQUANTIZE);
	if (injected != LQ_OK)
		return injected;
	if (lq_backend_gpu(ctx))
		return lq_backend_dequantize(ctx, packed, absmax, n, qtype, blocksize, dtype, out);
	dequantize_job job = {
		.k = ctx->cpu, .packed = packed, .absmax = absmax, .n = n, .qtype = qtype, .blocksize = blocksize,
		.nblocks = lq_quant_nblocks(n, blocksize), .blocks_per_item = blocks_per_item(blocksize),
		.dtype = dtype, .out = out,
	};
	lq_pool_run(ctx->pool, (job.nblocks - 1) / job.blocks_per_item + 1, dequantize_item, &job);
	return LQ_OK;
}
