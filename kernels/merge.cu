// merge.cu: the kernels of merge.cuh. Every operation is an explicit IEEE intrinsic (no contraction into
// fused multiply-adds that the CPU code does not make) and the conversions are those of libquant/dtype.c,
// bit for bit.
#include "merge.cuh"

namespace lq {

namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = 8; // rows of a tile: each thread keeps one column's sums for them

__device__ __forceinline__ float bits_float(uint32_t u)
{
	return __uint_as_float(u);
}

// libquant/dtype.c, lq_f32_to_bf16: round to nearest even; NaN stays a quiet NaN
__device__ __forceinline__ uint16_t to_bf16(float f)
{
	uint32_t u = __float_as_uint(f);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40);
	return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float from_bf16(uint16_t h)
{
	return bits_float((uint32_t)h << 16);
}

// libquant/dtype.c, lq_f32_to_f16
__device__ __forceinline__ uint16_t to_f16(float f)
{
	uint32_t u = __float_as_uint(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
	uint32_t abs = u & 0x7fffffffu;
	if (abs > 0x7f800000u)
		return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
	if (abs >= 0x477ff000u)
		return (uint16_t)(sign | 0x7c00u);
	if (abs < 0x38800000u) {
		float scaled = __fmul_rn(bits_float(abs), 0x1p24f);
		uint32_t whole = __float2uint_rz(scaled);
		float frac = __fsub_rn(scaled, __uint2float_rn(whole));
		if (frac > 0.5f || (frac == 0.5f && (whole & 1u)))
			whole++;
		return (uint16_t)(sign | whole);
	}
	uint32_t r = abs - 0x38000000u;
	r += 0xfffu + ((r >> 13) & 1u);
	return (uint16_t)(sign | (r >> 13));
}

// libquant/dtype.c, lq_f16_to_f32
__device__ __forceinline__ float from_f16(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;
	if (exp == 0x1f)
		return bits_float(sign | 0x7f800000u | (man << 13));
	if (exp == 0) {
		float v = __fmul_rn(__uint2float_rn(man), 0x1p-24f);
		return sign ? -v : v;
	}
	return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

// lq_round_to: float16 and bfloat16 rounded, float32 unchanged
__device__ __forceinline__ float round_to(lq_dtype dtype, float v)
{
	if (dtype == LQ_DTYPE_BF16)
		return from_bf16(to_bf16(v));
	if (dtype == LQ_DTYPE_F16)
		return from_f16(to_f16(v));
	return v;
}

__global__ void load_kernel(const void *in, lq_dtype in_dtype, int round_input, lq_dtype wtype, int64_t n, float *w)
{
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
		float v = in_dtype == LQ_DTYPE_F32 ? static_cast<const float *>(in)[i]
			  : in_dtype == LQ_DTYPE_F16 ? from_f16(static_cast<const uint16_t *>(in)[i])
					  : from_bf16(static_cast<const uint16_t *>(in)[i]);
		w[i] = round_input ? round_to(wtype, v) : v;
	}
}

__global__ void store_kernel(const float *w, int64_t n, lq_dtype out_dtype, void *out, unsigned long long *bad)
{
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
		bool finite;
		if (out_dtype == LQ_DTYPE_F32) {
			static_cast<float *>(out)[i] = w[i];
			finite = (__float_as_uint(w[i]) & 0x7f800000u) != 0x7f800000u;
		} else {
			const uint16_t h = out_dtype == LQ_DTYPE_F16 ? to_f16(w[i]) : to_bf16(w[i]);
			const uint16_t e = out_dtype == LQ_DTYPE_F16 ? 0x7c00u : 0x7f80u;
			static_cast<uint16_t *>(out)[i] = h;
			finite = (h & e) != e;
		}
		if (!finite)
			atomicMin(bad, (unsigned long long)i);
	}
}

// A tile of kRowsPerBlock rows by kThreads columns: the rows' y values in shared memory, each thread one
// column, the sums over k in order (merge.c's loops, one fused multiply-add per k).
__global__ void delta_kernel(float *w, float *v, merge_lora l, int64_t rows, int64_t cols, int64_t row0,
			     int64_t nrows, lq_dtype wtype, int write_w, int keep_unrounded)
{
	extern __shared__ float ys[]; // [kRowsPerBlock][rank]
	const int r = l.rank;
	const int64_t i0 = (int64_t)blockIdx.y * kRowsPerBlock;
	const int tr = nrows - i0 < kRowsPerBlock ? (int)(nrows - i0) : kRowsPerBlock;
	for (int e = threadIdx.x; e < kRowsPerBlock * r; e += blockDim.x) {
		int t = e / r, k = e % r;
		float y = 0.0f;
		if (t < tr) {
			int64_t i = row0 + i0 + t;
			y = l.transposed ? l.y[(int64_t)k * rows + i] : l.y[i * r + k];
		}
		ys[e] = y;
	}
	__syncthreads();
	const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (j >= cols)
		return;
	float acc[kRowsPerBlock];
#pragma unroll
	for (int t = 0; t < kRowsPerBlock; t++)
		acc[t] = 0.0f;
	for (int k = 0; k < r; k++) {
		const float x = l.x[(int64_t)k * cols + j];
#pragma unroll
		for (int t = 0; t < kRowsPerBlock; t++)
			acc[t] = __fmaf_rn(ys[t * r + k], x, acc[t]);
	}
	const float cf = l.col_factor ? l.col_factor[j] : 1.0f;
	for (int t = 0; t < tr; t++) {
		const int64_t idx = (i0 + t) * cols + j;
		float d = __fmul_rn(acc[t], l.scaling);
		if (l.round_delta)
			d = round_to(wtype, d);
		float s = __fadd_rn(w[idx], d);
		if (l.col_factor) // DoRA on columns
			s = __fmul_rn(cf, s);
		if (write_w)
			w[idx] = keep_unrounded ? s : round_to(wtype, s);
		else
			v[idx] = s;
	}
}

// DoRA on rows: factor = magnitude / norm of the row, the norm replayed in torch's order (torch_norm.h, as
// merge.c calls it; V's row i starts (row0 + i) * cols floats into a 16-byte aligned tensor)
__global__ void norm_kernel(const float *v, const float *magnitude, int64_t cols, int64_t row0, int64_t nrows,
			    lq_torch_norm_plan plan, float *factor)
{
	const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
	if (i >= nrows)
		return;
	float tv[LQ_TORCH_NORM_MAX_THREADS], g[LQ_TORCH_NORM_MAX_THREADS];
	const int64_t row = row0 + i;
	const float norm = lq_torch_norm_row(&plan, v + i * cols, (int)((row * cols) % 4), tv, g);
	factor[i] = __fdiv_rn(magnitude[row], norm);
}

__global__ void scale_kernel(float *w, const float *v, const float *factor, int64_t cols, int64_t n, lq_dtype wtype,
			     int keep_unrounded)
{
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
		const float s = __fmul_rn(factor[i / cols], v[i]);
		w[i] = keep_unrounded ? s : round_to(wtype, s);
	}
}

unsigned grid_for(int64_t n)
{
	int64_t g = (n + kThreads - 1) / kThreads;
	return (unsigned)(g < 65536 ? (g > 0 ? g : 1) : 65536);
}

} // namespace

cudaError_t merge_load(const void *in, lq_dtype in_dtype, int round_input, lq_dtype wtype, int64_t n, float *w,
		       cudaStream_t stream)
{
	load_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, in_dtype, round_input, wtype, n, w);
	return cudaGetLastError();
}

cudaError_t merge_apply(float *w, float *v, float *factor, const merge_lora &l, int64_t rows, int64_t cols,
			int64_t row0, int64_t nrows, lq_dtype wtype, int keep_unrounded, const lq_torch_norm_plan &plan,
			cudaStream_t stream)
{
	const bool dora = l.magnitude != nullptr;
	dim3 grid((unsigned)((cols + kThreads - 1) / kThreads), (unsigned)((nrows + kRowsPerBlock - 1) / kRowsPerBlock));
	size_t shared = (size_t)kRowsPerBlock * (size_t)l.rank * sizeof(float);
	delta_kernel<<<grid, kThreads, shared, stream>>>(w, v, l, rows, cols, row0, nrows, wtype, !dora, keep_unrounded);
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess || !dora)
		return e;
	norm_kernel<<<(unsigned)((nrows + 127) / 128), 128, 0, stream>>>(v, l.magnitude, cols, row0, nrows, plan, factor);
	if ((e = cudaGetLastError()) != cudaSuccess)
		return e;
	scale_kernel<<<grid_for(nrows * cols), kThreads, 0, stream>>>(w, v, factor, cols, nrows * cols, wtype,
								    keep_unrounded);
	return cudaGetLastError();
}

cudaError_t merge_store(const float *w, int64_t n, lq_dtype out_dtype, void *out, unsigned long long *bad,
			cudaStream_t stream)
{
	store_kernel<<<grid_for(n), kThreads, 0, stream>>>(w, n, out_dtype, out, bad);
	return cudaGetLastError();
}

} // namespace lq
