// quant4_device.cuh: the arithmetic every kernel shares, written instruction by instruction so that the
// result does not depend on compiler flags: bitsandbytes is built with --use_fast_math, so its kernels
// flush subnormals (.ftz) and take 1/absmax with rcp.approx; torch's own operations (the offset
// subtraction and addition of double quantization) are IEEE. The CPU reference is libquant/quant4_ref.c.
#pragma once

#include <cstdint>

#include "lq_cuda.h"

namespace lq {

__device__ __forceinline__ float rcp_approx_ftz(float x)
{
	float r;
	asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
	return r;
}

__device__ __forceinline__ float mul_ftz(float a, float b)
{
	float r;
	asm("mul.rn.ftz.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
	return r;
}

__device__ __forceinline__ float max_ftz(float a, float b)
{
	float r;
	asm("max.ftz.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
	return r;
}

__device__ __forceinline__ float abs_ftz(float a)
{
	float r;
	asm("abs.ftz.f32 %0, %1;" : "=f"(r) : "f"(a));
	return r;
}

__device__ __forceinline__ float sub_ieee(float a, float b)
{
	float r;
	asm("sub.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
	return r;
}

__device__ __forceinline__ float add_ieee(float a, float b)
{
	float r;
	asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
	return r;
}

__device__ __forceinline__ bool nonfinite(float x)
{
	return (__float_as_uint(x) & 0x7f800000u) == 0x7f800000u;
}

// The constants, copied from libquant/codebook.c at start-up, and the lookup tables built from them
// (build_code_luts, in backend_cuda.cu).
struct tables {
	float nf4_thresholds[16]; // 15, padded with +inf
	float fp4_thresholds[8];  // 7, padded with +inf
	uint32_t fp4_by_rank;     // 8 nibbles: code by rank
	float code[2][16];
	float dynamic_map[256];
	uint32_t nf4_lut[33];     // 129 cells of [-1, 1]: the number of thresholds below the cell, one byte each
	uint32_t fp4_lut[17];     // 65 cells of [0, 1]: the same for the FP4 magnitude thresholds
};

// Fills `out` from libquant's constants and builds the cell tables; false if a cell would hold two
// thresholds (then the tables cannot be exact). Host code, in backend_cuda.cu.
bool make_tables(const lq_cuda_tables *in, tables *out);

// The cell of y for the lookup tables: trunc(y * 64 + offset) as an unsigned integer (negative values
// and NaN give 0). y * 64 is exact, so the device's single-rounding fma equals the host's multiply-then-add;
// each rounding is monotone, so the map from y to cells is monotone. The kernels call it for products
// x * (1/absmax), whose magnitude is at most 1 + 2^-22: cells 0..128 (NF4: offset 64) or 0..64 (FP4
// magnitudes: offset 0), which the tables cover, so no clamp is needed.
__host__ __device__ __forceinline__ uint32_t cell_of(float y, float offset)
{
#ifdef __CUDA_ARCH__
	return __float2uint_rz(__fmaf_rn(y, 64.0f, offset));
#else
	float v = y * 64.0f;
	v = v + offset;
	return v != v || v <= 0.0f ? 0u : (v >= 4294967296.0f ? 0xffffffffu : (uint32_t)v);
#endif
}

#define LQ_NF4_CELLS 129
#define LQ_FP4_CELLS 65

// NF4 code of y (|y| <= 1 + 2^-22, or NaN) by table: every cell holds at most one threshold (checked when
// the tables are built), so the code is the count below the cell plus one comparison with the next
// threshold. lut is the byte table in shared memory, t the 16 thresholds. Equal to nf4_code() for every
// such float (bench_gpu --verify checks all of them).
__device__ __forceinline__ uint32_t nf4_code_lut(float y, const uint8_t *lut, const float *t)
{
	uint32_t g = lut[cell_of(y, 64.0f)];
	return g + (y > t[g] ? 1u : 0u);
}

__device__ __forceinline__ uint32_t fp4_code_lut(float y, const uint8_t *lut, const float *t, uint32_t by_rank)
{
	float a = fabsf(y);
	uint32_t g = lut[cell_of(a, 0.0f)];
	uint32_t r = g + (a > t[g] ? 1u : 0u);
	return (y < 0.0f ? 8u : 0u) | ((by_rank >> (4 * r)) & 7u);
}

// NF4 code of y by binary search over the 15 thresholds in t (NaN: 0): the definition the tables are
// checked against.
__device__ __forceinline__ uint32_t nf4_code(float y, const float *t)
{
	uint32_t c = y > t[7] ? 8u : 0u;
	c += y > t[c + 3] ? 4u : 0u;
	c += y > t[c + 1] ? 2u : 0u;
	c += y > t[c] ? 1u : 0u;
	return c;
}

// FP4 code of y: sign bit 8 when y < 0 (-0.0 is positive), the magnitude code by the rank of |y| among
// the 7 sorted thresholds (NaN: rank 0), by binary search.
__device__ __forceinline__ uint32_t fp4_code(float y, const float *t, uint32_t by_rank)
{
	float a = fabsf(y);
	uint32_t r = a > t[3] ? 4u : 0u;
	r += a > t[r + 1] ? 2u : 0u;
	r += a > t[r] ? 1u : 0u;
	return (y < 0.0f ? 8u : 0u) | ((by_rank >> (4 * r)) & 7u);
}

// bitsandbytes' dQuantize<0>: binary search from 127, then the midpoint to the neighbour on v's side.
__device__ __forceinline__ uint32_t dynamic_code(float v, const float *map)
{
	int p = 127;
#pragma unroll
	for (int step = 64; step > 0; step >>= 1)
		p += v > map[p] ? step : -step;
	if (v > map[p]) {
		float mid = (map[p + 1] + map[p]) * 0.5f;
		return (uint32_t)(v > mid ? p + 1 : p);
	}
	int lower = p > 0 ? p - 1 : 0;
	float mid = (map[lower] + map[p]) * 0.5f;
	return (uint32_t)(v < mid ? lower : p);
}

} // namespace lq
