/*
 * quant4.c: the public quantization calls: argument checks and sizes; the work goes to the context's
 * backend (the CPU's thread pool and kernels, backend_cpu.c, or a GPU), which gives the same bytes.
 */
#include <stdlib.h>

#include "lq_internal.h"
#include "torch_mean.h"

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
	int64_t bad = -1;
	lq_status st = LQ_BACKEND(ctx, quantize)->quantize(ctx, src, dtype, n, qtype, blocksize, packed, absmax, &bad);
	if (st == LQ_ERR_NONFINITE) {
		if (bad_index)
			*bad_index = bad;
		float v = lq_load_f32(src, dtype, bad);
		return lq_fail(ctx, LQ_ERR_NONFINITE, "element %lld is %s", (long long)bad,
			       v != v ? "NaN" : (v > 0 ? "+inf" : "-inf"));
	}
	return st;
}

/* ------------------------------------------------------------------------- double quantization */

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
	*offset = lq_torch_mean_f32(absmax, nblocks, LQ_TORCH_REF_SM_COUNT, LQ_TORCH_REF_MAX_THREADS_PER_SM);
	return LQ_BACKEND(ctx, double_quant_codes)->double_quant_codes(ctx, absmax, nblocks, *offset, absmax_q,
								      nested_absmax);
}

lq_status lq_dequantize_absmax(lq_ctx *ctx, const uint8_t *absmax_q, const float *nested_absmax, float offset,
			       int64_t nblocks, float *absmax)
{
	lq_clear_error(ctx);
	lq_dequantize_absmax_ref(absmax_q, nested_absmax, offset, nblocks, absmax);
	return LQ_OK;
}

/* -------------------------------------------------------------------------------- dequantize */

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
	return LQ_BACKEND(ctx, dequantize)->dequantize(ctx, packed, absmax, n, qtype, blocksize, dtype, out);
}
