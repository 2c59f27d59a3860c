/*
 * quant4_ref.c: the reference implementation of bitsandbytes' blockwise 4-bit quantization, double
 * quantization and dequantization, one element at a time, written to be read against
 * doc/specs/nf4-bnb.md. It is the oracle the SIMD and CUDA kernels are tested against, and the scalar
 * fallback reuses its per-block steps.
 */
#include <math.h>

#include "lq_internal.h"
#include "torch_mean.h"


int64_t lq_quantize_range_scalar(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
				 int32_t blocksize, int64_t b0, int64_t b1, uint8_t *packed, float *absmax)
{
	int64_t bad = -1;
	uint8_t (*const code_of)(float) = lq_qtype_info(qtype)->code_of;
	for (int64_t b = b0; b < b1; b++) {
		int64_t i0 = b * blocksize;
		int64_t i1 = i0 + blocksize < n ? i0 + blocksize : n;
		/* The block maximum of |x| (subnormals flushed, as fabsf under fast math). */
		float amax = 0.0f;
		for (int64_t i = i0; i < i1; i++) {
			float x = lq_load_f32(src, dtype, i);
			if (!lq_is_finite_bits(lq_f32_bits(x))) {
				if (bad < 0)
					bad = i;
				continue;
			}
			float a = lq_abs_ftz(x);
			amax = a > amax ? a : amax;
		}
		absmax[b] = amax;
		/* One reciprocal per block, then one float multiply per element: y = x * (1/absmax). A zero
		 * absmax gives +inf and 0 * inf = NaN, which takes code 0. */
		float r = lq_rcp_approx(amax);
		for (int64_t i = i0; i < i1; i += 2) {
			uint8_t hi = code_of(lq_mul_ftz(lq_load_f32(src, dtype, i), r));
			/* An odd n pads the last byte with the code of 0.0 in this block. */
			float x1 = i + 1 < i1 ? lq_load_f32(src, dtype, i + 1) : 0.0f;
			uint8_t lo = code_of(lq_mul_ftz(x1, r));
			packed[i / 2] = (uint8_t)(hi << 4 | lo);
		}
	}
	return bad;
}

lq_status lq_quantize_blocks_ref(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
				 int32_t blocksize, uint8_t *packed, float *absmax, int64_t *bad_index)
{
	if (!lq_blocksize_valid(blocksize) || lq_dtype_size(dtype) == 0 || dtype == LQ_DTYPE_U8 || n < 0)
		return LQ_ERR_ARG;
	if (lq_rcp_approx_init() != LQ_OK)
		return LQ_ERR_CORRUPT;
	int64_t bad = lq_quantize_range_scalar(src, dtype, n, qtype, blocksize, 0, lq_quant_nblocks(n, blocksize),
					       packed, absmax);
	if (bad_index)
		*bad_index = bad;
	return bad >= 0 ? LQ_ERR_NONFINITE : LQ_OK;
}

/* Quantizes nested block k (256 absmax values) once the offset is known. */
void lq_double_quant_block(const float *absmax, int64_t nblocks, float offset, int64_t k, uint8_t *absmax_q,
			   float *nested_absmax)
{
	int64_t j0 = k * LQ_NESTED_BLOCKSIZE;
	int64_t j1 = j0 + LQ_NESTED_BLOCKSIZE < nblocks ? j0 + LQ_NESTED_BLOCKSIZE : nblocks;
	/* c = absmax - offset is a torch subtraction: IEEE, no flushing. The 8-bit kernel that follows is
	 * bitsandbytes' own, with fast math. */
	float amax = 0.0f;
	for (int64_t j = j0; j < j1; j++) {
		float a = lq_abs_ftz(absmax[j] - offset);
		amax = a > amax ? a : amax;
	}
	nested_absmax[k] = amax;
	float r = lq_rcp_approx(amax);
	for (int64_t j = j0; j < j1; j++)
		absmax_q[j] = lq_dynamic_code(lq_mul_ftz(absmax[j] - offset, r));
}

const lq_step_table *lq_double_quant_block_begin(const float *absmax, int64_t nblocks, float offset, int64_t k,
						 uint32_t max_bits, uint8_t *absmax_q, float *nested_absmax, float *rcp)
{
	const float amax = lq_ftz(lq_f32_from_bits(max_bits));
	const lq_step_table *t = lq_dynamic_steps();
	/* a NaN or infinity; a maximum of zero (0 * (1/0): NaN) */
	if (max_bits >= 0x7f800000u || amax == 0.0f || !t) {
		lq_double_quant_block(absmax, nblocks, offset, k, absmax_q, nested_absmax);
		return NULL;
	}
	nested_absmax[k] = amax;
	*rcp = lq_rcp_approx(amax);
	return t;
}

void lq_double_quant_ref(const float *absmax, int64_t nblocks, uint8_t *absmax_q, float *nested_absmax,
			 float *offset)
{
	/* offset = torch.mean(absmax) on the GPU: float32, in torch's reduction order. */
	float off = lq_torch_mean_f32(absmax, nblocks, LQ_TORCH_REF_SM_COUNT, LQ_TORCH_REF_MAX_THREADS_PER_SM);
	for (int64_t k = 0; k < lq_quant_nested_blocks(nblocks); k++)
		lq_double_quant_block(absmax, nblocks, off, k, absmax_q, nested_absmax);
	*offset = off;
}

void lq_dequantize_absmax_ref(const uint8_t *absmax_q, const float *nested_absmax, float offset,
			      int64_t nblocks, float *absmax)
{
	const float *map = lq_dynamic_map();
	/* bitsandbytes' dequantize_blockwise (fast math: flushed product), then torch's += offset (IEEE). */
	for (int64_t j = 0; j < nblocks; j++)
		absmax[j] = lq_mul_ftz(map[absmax_q[j]], nested_absmax[j / LQ_NESTED_BLOCKSIZE]) + offset;
}

void lq_dequantize_range_scalar(const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
				int32_t blocksize, int64_t b0, int64_t b1, lq_dtype dtype, void *out)
{
	const float *table = lq_code_table(qtype);
	int64_t end = b1 * blocksize < n ? b1 * blocksize : n;
	for (int64_t i = b0 * blocksize; i < end; i++) {
		uint8_t byte = packed[i / 2];
		uint8_t code = (i & 1) ? (byte & 15) : (byte >> 4);
		lq_store_f32(out, dtype, i, lq_mul_ftz(table[code], absmax[i / blocksize]));
	}
}

void lq_dequantize_blocks_ref(const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
			      int32_t blocksize, lq_dtype dtype, void *out)
{
	lq_dequantize_range_scalar(packed, absmax, n, qtype, blocksize, 0, lq_quant_nblocks(n, blocksize), dtype,
				   out);
}
