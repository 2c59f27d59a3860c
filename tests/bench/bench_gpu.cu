// bench_gpu: throughput of the CUDA kernels on the shapes of one Llama-7B layer (q, k, v, o: 4096 x 4096;
// gate, up: 11008 x 4096; down: 4096 x 11008; 202 M parameters, bf16), data already on the device,
// against a device-to-device copy of the same bytes (the copy bandwidth of this GPU).
//
//   bench_gpu [BLOCKSIZE]   the table (quantize with the bf16 NF4 kernel, candidate_launch, and with the general one)
//   bench_gpu --verify      the code tables on every float, and the two quantize kernels' bytes
//   bench_gpu --verify-tables   the NF4 cell table on every float, and the bf16 NF4 kernel's arithmetic
//                           against the reference, on the CPU (no GPU needed)
//
// Effective bytes (DESIGN.md): quantize reads 2 bytes per parameter and writes 0.5 of codes plus the
// constants (1 byte per block with double quantization, 4 without); dequantize the reverse. Times are
// CUDA-event medians of 20 runs after 3 warm-ups; the layer's 404 MB are far larger than the 60 MB L2.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "dequantize.cuh"
#include "double_quant.cuh"
#include "libquant.h"
#include "quantize.cuh"
#include "quantize_nf4_bf16.cuh"

// libquant's constants (libquant/codebook.c), as its backend hands them to the kernels
extern "C" const float lq_nf4_thresholds[15];
extern "C" const float lq_fp4_thresholds_sorted[7];
extern "C" const uint8_t lq_fp4_code_by_rank[8];
// libquant's internals (lq_internal.h, a C header): the GPU's rcp.approx on the CPU, and the reference
extern "C" float lq_rcp_approx(float x);
extern "C" lq_status lq_rcp_approx_init(void);
extern "C" lq_status lq_quantize_blocks_ref(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype, int32_t blocksize,
					    uint8_t *packed, float *absmax, int64_t *bad_index);

// Every float32 y the kernels can meet (|y| <= 1 + 2^-7 > 1 + 2^-22, and every NaN): the table lookups of
// the 4-bit codes against the binary search.
__global__ void verify_codes(lq::tables tab, unsigned long long *mismatches)
{
	__shared__ uint32_t lut_nf4[33], lut_fp4[17];
	__shared__ float t_nf4[16], t_fp4[8];
	__shared__ uint2 rows[LQ_NF4_ZCELLS * 16];
	lq::fill_cell_rows(rows, tab.nf4_cell);
	const uint32_t lane8 = threadIdx.x % 16 * 8;
	if (threadIdx.x < 33)
		lut_nf4[threadIdx.x] = tab.nf4_lut[threadIdx.x];
	if (threadIdx.x < 17)
		lut_fp4[threadIdx.x] = tab.fp4_lut[threadIdx.x];
	if (threadIdx.x < 16)
		t_nf4[threadIdx.x] = tab.nf4_thresholds[threadIdx.x];
	if (threadIdx.x < 8)
		t_fp4[threadIdx.x] = tab.fp4_thresholds[threadIdx.x];
	__syncthreads();
	unsigned long long bad = 0;
	for (uint64_t b = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; b < (1ull << 32);
	     b += (uint64_t)gridDim.x * blockDim.x) {
		float y = __uint_as_float((uint32_t)b);
		if (!(fabsf(y) <= 1.0078125f) && y == y)
			continue;
		bad += lq::nf4_code_lut(y, reinterpret_cast<const uint8_t *>(lut_nf4), t_nf4) != lq::nf4_code(y, t_nf4);
		bad += lq::fp4_code_lut(y, reinterpret_cast<const uint8_t *>(lut_fp4), t_fp4, tab.fp4_by_rank) !=
		       lq::fp4_code(y, t_fp4, tab.fp4_by_rank);
		if (y == y) // the cell table (quantize_nf4_bf16.cu) never sees a NaN
			bad += lq::nf4_code_cell(y, rows, lane8) >> 28 != lq::nf4_code(y, t_nf4);
	}
	if (bad)
		atomicAdd(mismatches, bad);
}

// The same for nf4_code_cell on the CPU (the host computes it with the same operations): every float of
// magnitude up to 1 + 2^-7, in two threads. Needs no GPU.
// The bf16 NF4 kernel where it suits (quantize_nf4_bf16.cu), else the general one: what quantize_launch will
// take once this program's checks have passed on a GPU (kernels/quantize.cu).
static cudaError_t candidate_launch(const void *x, lq_dtype dtype, int64_t count, lq_qtype qtype, int blocksize,
				    uint8_t *packed, float *absmax, unsigned long long *bad, const lq::tables *t,
				    cudaStream_t stream)
{
	if (dtype == LQ_DTYPE_BF16 && qtype == LQ_QTYPE_NF4 && lq::quantize_nf4_bf16_suits(x, count, blocksize, packed))
		return lq::quantize_nf4_bf16_launch(x, count, blocksize, packed, absmax, bad, t, stream);
	return lq::quantize_launch_general(x, dtype, count, qtype, blocksize, packed, absmax, bad, t, stream);
}

static unsigned long long verify_cells_host(const lq::tables &tab)
{
	unsigned long long bad[2] = {0, 0};
	auto part = [&](int h) {
		for (uint32_t u = 0; u <= 0x3f810000u; u++) {
			float y;
			const uint32_t b = u | (uint32_t)h << 31;
			memcpy(&y, &b, sizeof y);
			bad[h] += lq::nf4_code_cell_host(y, tab.nf4_cell) >> 28 != lq::nf4_code(y, tab.nf4_thresholds);
		}
	};
	std::thread other(part, 1);
	part(0);
	other.join();
	return bad[0] + bad[1];
}

// The kernel's arithmetic of one thread (quantize_nf4_bf16.cuh: the maximum of 32 bf16, nf4_pack8 with the
// cell table or the binary search), run on the CPU over a tensor as the kernel's threads would, against the
// reference's bytes (libquant/quant4_ref.c). Returns the number of differing (size, block size) cases.
static int emulate_kernel(const lq::tables &tab, int64_t n, uint64_t seed)
{
	std::vector<uint16_t> x((size_t)n);
	uint64_t r = seed;
	for (int64_t i = 0; i < n; i++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		uint16_t v = (uint16_t)(r >> 40);
		const int kind = (int)((i / 64) % 6);
		if ((v & 0x7f80) == 0x7f80)
			v &= 0xbfff; // finite (the reference stops at a non-finite value)
		if (kind == 0) // weights: |x| about 0.02, some on the NF4 thresholds times a scale
			v = r % 7 == 0 ? lq_f32_to_bf16(lq_nf4_thresholds[(r >> 8) % 15] * 0.03f)
				       : (uint16_t)((v & 0x807f) | 0x3c00);
		else if (kind == 1)
			v = 0;
		else if (kind == 2)
			v &= 0x807f; // subnormal or zero
		else if (kind == 3)
			v = (uint16_t)((v & 0x807f) | 0x0080);
		x[(size_t)i] = v;
	}
	int differ = 0;
	for (int bs = 32; bs <= 4096; bs *= 2) {
		const int64_t nb = (n + bs - 1) / bs, np = (n + 1) / 2;
		std::vector<uint8_t> p_ref((size_t)np), p((size_t)np);
		std::vector<float> a_ref((size_t)nb), a((size_t)nb);
		if (lq_quantize_blocks_ref(x.data(), LQ_DTYPE_BF16, n, LQ_QTYPE_NF4, bs, p_ref.data(), a_ref.data(), nullptr) !=
		    LQ_OK)
			return 1;
		const int group = bs / 32;
		const int64_t threads = (n + 31) / 32;
		std::vector<uint32_t> m((size_t)threads);
		std::vector<std::array<uint32_t, 16>> w((size_t)threads);
		for (int64_t t = 0; t < threads; t++) {
			for (int i = 0; i < 16; i++) {
				const int64_t e = 32 * t + 2 * i;
				w[(size_t)t][(size_t)i] = (e < n ? x[(size_t)e] : 0u) | (e + 1 < n ? x[(size_t)e + 1] : 0u) << 16;
			}
			m[(size_t)t] = lq::bf16x32_max_abs_bits(w[(size_t)t].data());
		}
		for (int64_t t = 0; t < threads; t++) {
			uint32_t bm = 0;
			for (int64_t u = t / group * group; u < t / group * group + group && u < threads; u++)
				bm = std::max(bm, m[(size_t)u]);
			float amax = 0.0f;
			if (bm >= 0x00800000u)
				memcpy(&amax, &bm, sizeof amax);
			if (t % group == 0)
				a[(size_t)(32 * t / bs)] = amax;
			const float rr = lq_rcp_approx(amax);
			const bool cells = bm - 0x00800000u < 0x7f000000u;
			for (int o = 0; o < 4; o++) {
				const uint32_t word =
					cells ? lq::nf4_pack8(&w[(size_t)t][(size_t)(4 * o)], rr,
							      [&](float y) { return lq::nf4_code_cell_host(y, tab.nf4_cell); })
					      : lq::nf4_pack8(&w[(size_t)t][(size_t)(4 * o)], rr,
							      [&](float y) { return lq::nf4_code(y, tab.nf4_thresholds) << 28; });
				for (int j = 0; j < 4; j++) {
					const int64_t b = 16 * t + 4 * o + j;
					if (b < np)
						p[(size_t)b] = (uint8_t)(word >> (8 * j));
				}
			}
		}
		if (p != p_ref || memcmp(a.data(), a_ref.data(), (size_t)nb * 4) != 0) {
			fprintf(stderr, "bench_gpu: the kernel's arithmetic on the CPU differs from the reference: %lld elements, blocksize %d\n",
				(long long)n, bs);
			differ++;
		}
	}
	return differ;
}

#define CK(call)                                                                                           \
	do {                                                                                               \
		cudaError_t e_ = (call);                                                                   \
		if (e_ != cudaSuccess) {                                                                   \
			fprintf(stderr, "bench_gpu: %s: %s\n", #call, cudaGetErrorString(e_));             \
			exit(1);                                                                           \
		}                                                                                          \
	} while (0)

struct shape {
	const char *name;
	int64_t rows, cols;
};

static const shape layer[] = {
	{"q_proj", 4096, 4096},     {"k_proj", 4096, 4096},   {"v_proj", 4096, 4096},
	{"o_proj", 4096, 4096},     {"gate_proj", 11008, 4096}, {"up_proj", 11008, 4096},
	{"down_proj", 4096, 11008},
};

template <typename F>
static float median_ms(F f)
{
	cudaEvent_t a, b;
	CK(cudaEventCreate(&a));
	CK(cudaEventCreate(&b));
	std::vector<float> t;
	for (int i = 0; i < 23; i++) {
		CK(cudaEventRecord(a));
		f();
		CK(cudaEventRecord(b));
		CK(cudaEventSynchronize(b));
		float ms;
		CK(cudaEventElapsedTime(&ms, a, b));
		if (i >= 3)
			t.push_back(ms);
	}
	std::sort(t.begin(), t.end());
	CK(cudaEventDestroy(a));
	CK(cudaEventDestroy(b));
	return t[t.size() / 2];
}

// Quantizes n random bf16 elements (with zero, subnormal, tiny and huge blocks and, when `nonfinite`, a NaN
// and an infinity) at every block size with the general kernel and with candidate_launch's, and compares
// all they write. Returns the number of differing launches.
static int compare_kernels(const lq::tables &tab, int64_t n, bool nonfinite, uint64_t seed)
{
	std::vector<uint16_t> h((size_t)n);
	uint64_t r = seed;
	for (int64_t i = 0; i < n; i++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		h[(size_t)i] = (uint16_t)(r >> 40);
		if ((h[(size_t)i] & 0x7f80) == 0x7f80) // a random NaN or infinity would fail every block it is in
			h[(size_t)i] &= 0xbfff;
	}
	// block-shaped regions of 64 (every block size's blocks begin at multiples of 32): all zero, all
	// subnormal or zero, tiny, one huge value, negative zeros
	for (int64_t b = 0; b + 64 <= n; b += 64) {
		const int kind = (int)((b / 64) % 9);
		for (int64_t i = b; i < b + 64; i++) {
			uint16_t &v = h[(size_t)i];
			if (kind == 1)
				v = 0;
			else if (kind == 2)
				v &= 0x807f; // subnormal or zero
			else if (kind == 3)
				v = (uint16_t)((v & 0x807f) | 0x0080); // the smallest normal binade
			else if (kind == 4 && i == b + 17)
				v = 0x7f7f; // the largest finite
			else if (kind == 5)
				v = 0x8000;
		}
	}
	if (nonfinite && n > 100) {
		h[(size_t)(n / 3)] = 0x7fc0;
		h[(size_t)(n / 2)] = 0xff80;
	}
	uint16_t *x;
	uint8_t *p[2];
	float *a[2];
	unsigned long long *bad[2];
	const size_t nb = (size_t)(n + 1) / 2, na = (size_t)(n / 32 + 1);
	CK(cudaMalloc(&x, (size_t)n * 2));
	CK(cudaMemcpy(x, h.data(), (size_t)n * 2, cudaMemcpyHostToDevice));
	for (int k = 0; k < 2; k++) {
		CK(cudaMalloc(&p[k], nb));
		CK(cudaMalloc(&a[k], na * 4));
		CK(cudaMalloc(&bad[k], 8));
	}
	int differ = 0;
	for (int bs = 32; bs <= 4096; bs *= 2) {
		std::vector<uint8_t> hp[2], ha[2];
		unsigned long long hb[2];
		for (int k = 0; k < 2; k++) {
			CK(cudaMemset(p[k], 0xa5, nb));
			CK(cudaMemset(a[k], 0xa5, na * 4));
			CK(cudaMemset(bad[k], 0xff, 8));
			CK((k == 0 ? lq::quantize_launch_general : candidate_launch)(x, LQ_DTYPE_BF16, n, LQ_QTYPE_NF4, bs, p[k],
											 a[k], bad[k], &tab, 0));
			hp[k].resize(nb);
			ha[k].resize(na * 4);
			CK(cudaMemcpy(hp[k].data(), p[k], nb, cudaMemcpyDeviceToHost));
			CK(cudaMemcpy(ha[k].data(), a[k], na * 4, cudaMemcpyDeviceToHost));
			CK(cudaMemcpy(&hb[k], bad[k], 8, cudaMemcpyDeviceToHost));
		}
		if (hp[0] != hp[1] || ha[0] != ha[1] || hb[0] != hb[1]) {
			fprintf(stderr, "bench_gpu: the kernels differ: %lld elements, blocksize %d%s\n", (long long)n, bs,
				nonfinite ? ", with a NaN and an infinity" : "");
			differ++;
		}
	}
	CK(cudaFree(x));
	for (int k = 0; k < 2; k++) {
		CK(cudaFree(p[k]));
		CK(cudaFree(a[k]));
		CK(cudaFree(bad[k]));
	}
	return differ;
}

int main(int argc, char **argv)
{
	const bool verify = argc > 1 && strcmp(argv[1], "--verify") == 0;
	const bool verify_tables = argc > 1 && strcmp(argv[1], "--verify-tables") == 0;
	const int bs = argc > 1 && !verify && !verify_tables ? atoi(argv[1]) : 64;
	lq::tables tab;
	const lq_cuda_tables in = {lq_nf4_thresholds, lq_fp4_thresholds_sorted, lq_fp4_code_by_rank,
				   {lq_code_table(LQ_QTYPE_NF4), lq_code_table(LQ_QTYPE_FP4)}, lq_dynamic_map()};
	if (!lq::make_tables(&in, &tab)) {
		fprintf(stderr, "bench_gpu: cannot build the code tables\n");
		return 1;
	}
	if (verify_tables) {
		unsigned long long bad = verify_cells_host(tab);
		printf("bench_gpu --verify-tables: the NF4 cell table vs binary search, on the CPU, for every float of magnitude up to 1 + 2^-7: "
		       "%llu differences\n", bad);
		if (lq_rcp_approx_init() != LQ_OK)
			return 1;
		int differ = 0;
		const int64_t sizes[] = {1, 31, 32, 33, 64, 65, 4095, 8193, 100001, 1 << 18};
		for (int64_t n : sizes)
			differ += emulate_kernel(tab, n, 0x2545f4914f6cdd1dull ^ (uint64_t)n);
		printf("bench_gpu --verify-tables: the bf16 NF4 kernel's arithmetic on the CPU vs the reference, %d sizes x 8 block sizes: "
		       "%d differing\n", (int)(sizeof sizes / sizeof sizes[0]), differ);
		return bad || differ ? 1 : 0;
	}
	if (verify) {
		unsigned long long *d_bad, h_bad = 0;
		CK(cudaMalloc(&d_bad, 8));
		CK(cudaMemset(d_bad, 0, 8));
		verify_codes<<<132 * 8, 256>>>(tab, d_bad);
		CK(cudaGetLastError());
		CK(cudaMemcpy(&h_bad, d_bad, 8, cudaMemcpyDeviceToHost));
		printf("bench_gpu --verify: table lookups vs binary search of the NF4 and FP4 codes for every float of magnitude up to 1 + 2^-7 and every NaN: "
		       "%llu differences\n", h_bad);
		int differ = 0;
		const int64_t sizes[] = {1, 31, 32, 33, 63, 64, 65, 4095, 8191, 8192, 8193, 100000, 1 << 20, (1 << 20) + 7};
		for (int64_t n : sizes)
			for (int nonfinite = 0; nonfinite < 2; nonfinite++)
				differ += compare_kernels(tab, n, nonfinite, 0x9e3779b97f4a7c15ull ^ (uint64_t)n);
		printf("bench_gpu --verify: bf16 to NF4, the bf16 NF4 kernel vs the general one, %d sizes x 8 block sizes, "
		       "with and without non-finite values: %d differing launches\n", (int)(sizeof sizes / sizeof sizes[0]), differ);
		return h_bad || differ ? 1 : 0;
	}
	float *d_map;
	CK(cudaMalloc(&d_map, 1024));
	CK(cudaMemcpy(d_map, lq_dynamic_map(), 1024, cudaMemcpyHostToDevice));

	int64_t total = 0;
	for (const shape &s : layer)
		total += s.rows * s.cols;
	// random bf16 weights (never zeros: they run faster than real data)
	std::vector<uint16_t> host((size_t)total);
	uint64_t r = 0x9e3779b97f4a7c15ull;
	for (auto &h : host) {
		float v = 0;
		for (int k = 0; k < 4; k++) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			v += (float)(r >> 40) / (float)(1 << 24);
		}
		h = lq_f32_to_bf16((v - 2.0f) * 0.035f);
	}
	__nv_bfloat16 *x, *y;
	uint8_t *packed, *q8, *packed_g, *q8_b;
	float *absmax, *nested, *absmax_g, *nested_b;
	unsigned long long *bad;
	CK(cudaMalloc(&x, (size_t)total * 2));
	CK(cudaMalloc(&y, (size_t)total * 2));
	CK(cudaMalloc(&packed, (size_t)total / 2));
	CK(cudaMalloc(&packed_g, (size_t)total / 2));
	CK(cudaMalloc(&absmax, (size_t)total / bs * 4 + 64));
	CK(cudaMalloc(&absmax_g, (size_t)total / bs * 4 + 64));
	CK(cudaMalloc(&q8, (size_t)total / bs + 64));
	CK(cudaMalloc(&q8_b, (size_t)total / bs + 64));
	CK(cudaMalloc(&nested, (size_t)total / bs / 256 * 4 + 64));
	CK(cudaMalloc(&nested_b, (size_t)total / bs / 256 * 4 + 64));
	CK(cudaMalloc(&bad, 8));
	CK(cudaMemcpy(x, host.data(), (size_t)total * 2, cudaMemcpyHostToDevice));
	CK(cudaMemset(bad, 0xff, 8));

	// quantize every matrix of the layer: candidate_launch's kernel (for bf16 to NF4, quantize_nf4_bf16.cu) or
	// the general one, the double quantization as one launch for the layer, one per tensor, or none
	enum { DQ_NONE, DQ_PER_TENSOR, DQ_LAYER };
	auto quantize = [&](bool general, int dq, uint8_t *p, float *a, uint8_t *q, float *nst) {
		int64_t off = 0;
		lq::double_quant_job jobs[sizeof layer / sizeof layer[0]];
		int njobs = 0;
		for (const shape &s : layer) {
			int64_t n = s.rows * s.cols;
			CK((general ? lq::quantize_launch_general : candidate_launch)(x + off, LQ_DTYPE_BF16, n, LQ_QTYPE_NF4, bs,
											     p + off / 2, a + off / bs, bad, &tab, 0));
			if (dq == DQ_PER_TENSOR)
				CK(lq::double_quant_launch(a + off / bs, n / bs, 0.05f, q + off / bs, nst + off / bs / 256, d_map, 0));
			jobs[njobs++] = {a + off / bs, n / bs, 0.05f, q + off / bs, nst + off / bs / 256};
			off += n;
		}
		if (dq == DQ_LAYER)
			CK(lq::double_quant_batch_launch(jobs, njobs, d_map, 0));
	};
	auto dequantize = [&]() {
		int64_t off = 0;
		for (const shape &s : layer) {
			int64_t n = s.rows * s.cols;
			CK(lq::dequantize_launch(packed + off / 2, absmax + off / bs, n, LQ_QTYPE_NF4, bs, LQ_DTYPE_BF16, y + off, &tab, 0));
			off += n;
		}
	};
	// the same bytes: the two kernels (codes, constants), the two ways of double quantization
	quantize(true, DQ_PER_TENSOR, packed_g, absmax_g, q8, nested);
	quantize(false, DQ_LAYER, packed, absmax, q8_b, nested_b);
	CK(cudaDeviceSynchronize());
	auto same = [](const void *d1, const void *d2, size_t size) {
		std::vector<uint8_t> h1(size), h2(size);
		CK(cudaMemcpy(h1.data(), d1, size, cudaMemcpyDeviceToHost));
		CK(cudaMemcpy(h2.data(), d2, size, cudaMemcpyDeviceToHost));
		return h1 == h2;
	};
	const bool same_q = same(packed, packed_g, (size_t)total / 2) && same(absmax, absmax_g, (size_t)total / bs * 4);
	const bool same_dq = same(q8, q8_b, (size_t)total / bs) && same(nested, nested_b, (size_t)total / bs / 256 * 4);

	float t_q_dq = median_ms([&] { quantize(false, DQ_LAYER, packed, absmax, q8, nested); });
	float t_q_dq_t = median_ms([&] { quantize(false, DQ_PER_TENSOR, packed, absmax, q8, nested); });
	float t_q = median_ms([&] { quantize(false, DQ_NONE, packed, absmax, q8, nested); });
	float t_g_dq = median_ms([&] { quantize(true, DQ_PER_TENSOR, packed_g, absmax_g, q8, nested); });
	float t_g = median_ms([&] { quantize(true, DQ_NONE, packed_g, absmax_g, q8, nested); });
	float t_dq = median_ms(dequantize);
	float t_copy = median_ms([&] { CK(cudaMemcpyAsync(y, x, (size_t)total * 2, cudaMemcpyDeviceToDevice, 0)); });

	cudaDeviceProp prop;
	CK(cudaGetDeviceProperties(&prop, 0));
	const double p = (double)total;
	const double q_bytes_dq = p * 2 + p / 2 + p / bs, q_bytes = p * 2 + p / 2 + 4 * p / bs;
	const double copy_tbs = 2.0 * p * 2 / (t_copy * 1e-3) / 1e12;
	printf("bench_gpu: %s, one Llama-7B layer (%.0f M parameters, bf16), blocksize %d\n", prop.name, p / 1e6, bs);
	printf("| operation | ms | Gparam/s | effective TB/s | of copy bandwidth |\n|---|---|---|---|---|\n");
	printf("| device-to-device copy (read + write) | %.3f | | %.2f | 100%% |\n", t_copy, copy_tbs);
	auto row = [&](const char *what, float ms, double bytes) {
		const double tbs = bytes / (ms * 1e-3) / 1e12;
		printf("| %s | %.3f | %.0f | %.2f | %.0f%% |\n", what, ms, p / (ms * 1e-3) / 1e9, tbs, 100 * tbs / copy_tbs);
	};
	row("quantize NF4 + double quant", t_q_dq, q_bytes_dq);
	row("quantize NF4", t_q, q_bytes);
	row("quantize NF4, double quant launched per tensor", t_q_dq_t, q_bytes_dq);
	row("general kernel: quantize NF4, double quant launched per tensor", t_g_dq, q_bytes_dq);
	row("general kernel: quantize NF4", t_g, q_bytes);
	row("dequantize NF4 to bf16", t_dq, q_bytes);
	printf("\nquantize NF4 + double quant: the bf16 NF4 kernel and one double-quantization launch for the layer's 7 "
	       "tensors; the general kernel (quantize.cu) in the rows that say so.\n");
	printf("same bytes: codes and constants of the two kernels %s; double quantization per layer and per tensor %s\n",
	       same_q ? "identical" : "DIFFER", same_dq ? "identical" : "DIFFER");
	return same_q && same_dq ? 0 : 1;
}
