// quant4_device.cuh: the arithmetic every kernel shares, written instruction by instruction so that the
// result does not depend on compiler flags: bitsandbytes is built with --use_fast_math, so its kernels
// flush subnormals (.ftz) and take 1/absmax with rcp.approx; torch's own operations (the offset
// subtraction and addition of double quantization) are IEEE. The CPU reference is libquant/quant4_ref.c.
#pragma once

#include <cstdint>
#include <cstring>

#include "lq_cuda.h"

namespace lq {

__device__ __forceinline__ float rcp_approx_ftz(float x)
{
	float r;
	asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
	return r;
}

// (on the host, for the tests that run a kernel's arithmetic on the CPU: the same operation, flushing
// subnormal operands and result to zeros of their sign)
__host__ __device__ __forceinline__ float mul_ftz(float a, float b)
{
#ifdef __CUDA_ARCH__
	float r;
	asm("mul.rn.ftz.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
	return r;
#else
	auto ftz = [](float x) {
		uint32_t u;
		memcpy(&u, &x, sizeof u);
		if ((u & 0x7f800000u) == 0)
			u &= 0x80000000u;
		memcpy(&x, &u, sizeof u);
		return x;
	};
	return ftz(ftz(a) * ftz(b));
#endif
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

#define LQ_NF4_ZCELLS 64

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
	uint32_t nf4_cell[LQ_NF4_ZCELLS][2]; // nf4_code_cell's cells: {m, a} (see there)
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

// The cell of y for nf4_code_cell, times 128 (the byte offset of its row in the shared table, below):
// z = y * 2048 + (2^23 + 4160) rounded once (y * 2048 is exact, so the device's fma equals the host's
// multiply-then-add) is an integer of [2^23, 2^23 + 8192) for -2 < y < 1.96, where a float's bits are
// 0x4b000000 + z - 2^23: the low 13 bits are 4160 + round(y * 2048). A cell is 128 consecutive integers
// (y-width 1/16; 0's cell is [-0.0315, 0.031]): offset = those bits & ~127, monotone in y on [-1.96, 1.96].
// No NaN is allowed here.
__host__ __device__ __forceinline__ uint32_t zcell_offset(float y)
{
#ifdef __CUDA_ARCH__
	return __float_as_uint(__fmaf_rn(y, 2048.0f, 8392768.0f)) & 0x1f80u;
#else
	float z = y * 2048.0f;
	z = z + 8392768.0f;
	uint32_t u;
	memcpy(&u, &z, sizeof u);
	return u & 0x1f80u;
#endif
}

// The NF4 code of y (|y| <= 1.96, not NaN) by the cell table (tables.nf4_cell), in the top 4 bits of the
// result (the bits below are not zero). Each cell holds at most one threshold (make_tables checks). Its
// entry {m, a} makes Y * m + a (Y the bits of y, mod 2^32) = (code << 28) + something below 2^28:
//   no threshold:   m = 0,  a = g << 28, g the number of thresholds in earlier cells (all below y);
//   threshold t > 0 (y > 0 too, since t's cell is not 0's): m = 1, a = (g << 28) + 2^28 - 1 - T, so that
//     Y * m + a = (g << 28) + 2^28 - 1 + (Y - T) reaches (g + 1) << 28 exactly when Y > T, that is y > t;
//   threshold t < 0: m = -1, a = (g << 28) + 2^28 - 1 + T: +1 exactly when T > Y, that is |y| < |t|;
// which needs |Y - T| < 2^28 over the cell (make_tables checks 2^26 at the cell's ends).
//
// On the device the table is in shared memory, a row of 16 copies of each cell's entry (128 bytes, the 32
// banks), and lane l of a half-warp reads copy l: the 16 lanes of a 64-bit load never share a bank, so it
// takes the two passes of any 64-bit load whatever the cells (a single copy: 3.7 on average for normal
// weights, by simulation, the cells colliding in banks). `lane8` is 8 * (lane % 16). Four instructions
// after the product: fma, and-or (the address), the load, the multiply-add; a funnel shift then packs the
// nibble (pack_nibble). nf4_code_cell_host computes the same from the cells; bench_gpu --verify checks it
// against nf4_code() for every float of magnitude up to 1 + 2^-7 on the GPU, --verify-tables on the CPU.
__device__ __forceinline__ uint32_t nf4_code_cell(float y, const uint2 *rows, uint32_t lane8)
{
	const uint32_t off = zcell_offset(y) | lane8;
	const uint2 c = *reinterpret_cast<const uint2 *>(reinterpret_cast<const char *>(rows) + off);
	return __float_as_uint(y) * c.x + c.y;
}

// Fills `rows` (LQ_NF4_ZCELLS * 16 entries, shared memory) from the cells; every thread of the block calls
// it, a __syncthreads() must follow.
__device__ __forceinline__ void fill_cell_rows(uint2 *rows, const uint32_t (*cells)[2])
{
	for (uint32_t i = threadIdx.x; i < LQ_NF4_ZCELLS * 8; i += blockDim.x) {
		const uint32_t c = i / 8, m = cells[c][0], a = cells[c][1];
		reinterpret_cast<uint4 *>(rows)[i] = make_uint4(m, a, m, a);
	}
}

// nf4_code_cell on the host, from the cells themselves
static inline uint32_t nf4_code_cell_host(float y, const uint32_t (*cells)[2])
{
	const uint32_t *c = cells[zcell_offset(y) / 128];
	uint32_t u;
	memcpy(&u, &y, sizeof u);
	return u * c[0] + c[1];
}

// (acc << 4) | (the top 4 bits of code): nf4_code_cell's nibble appended, in one instruction (shf.l)
__host__ __device__ __forceinline__ uint32_t pack_nibble(uint32_t acc, uint32_t code)
{
#ifdef __CUDA_ARCH__
	return __funnelshift_l(code, acc, 4);
#else
	return acc << 4 | code >> 28;
#endif
}

// NF4 code of y by binary search over the 15 thresholds in t (NaN: 0): the definition the tables are
// checked against.
__host__ __device__ __forceinline__ uint32_t nf4_code(float y, const float *t)
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
