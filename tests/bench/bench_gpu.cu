// bench_gpu: throughput of the CUDA kernels on the shapes of one Llama-7B layer (q, k, v, o: 4096 x 4096;
// gate, up: 11008 x 4096; down: 4096 x 11008; 202 M parameters, bf16), data already on the device,
// against a device-to-device copy of the same bytes (the copy bandwidth of this GPU).
//
//   bench_gpu [BLOCKSIZE]
//
// Effective bytes (DESIGN.md): quantize reads 2 bytes per parameter and writes 0.5 of codes plus the
// constants (1 byte per block with double quantization, 4 without); dequantize the reverse. Times are
// CUDA-event medians of 20 runs after 3 warm-ups; the layer's 404 MB are far larger than the 60 MB L2.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "dequantize.cuh"
#include "double_quant.cuh"
#include "libquant.h"
#include "quantize.cuh"

// libquant's constants (libquant/codebook.c), as its backend hands them to the kernels
extern "C" const float lq_nf4_thresholds[15];
extern "C" const float lq_fp4_thresholds_sorted[7];
extern "C" const uint8_t lq_fp4_code_by_rank[8];

// Every float32 y the kernels can meet (|y| <= 1 + 2^-7 > 1 + 2^-22, and every NaN): the table lookup of
// the 4-bit codes against the binary search.
__global__ void verify_codes(lq::tables tab, unsigned long long *mismatches)
{
	__shared__ uint32_t lut_nf4[33], lut_fp4[17];
	__shared__ float t_nf4[16], t_fp4[8];
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
	}
	if (bad)
		atomicAdd(mismatches, bad);
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

int main(int argc, char **argv)
{
	const bool verify = argc > 1 && strcmp(argv[1], "--verify") == 0;
	const int bs = argc > 1 && !verify ? atoi(argv[1]) : 64;
	lq::tables tab;
	const lq_cuda_tables in = {lq_nf4_thresholds, lq_fp4_thresholds_sorted, lq_fp4_code_by_rank,
				   {lq_code_table(LQ_QTYPE_NF4), lq_code_table(LQ_QTYPE_FP4)}, lq_dynamic_map()};
	if (!lq::make_tables(&in, &tab)) {
		fprintf(stderr, "bench_gpu: cannot build the code tables\n");
		return 1;
	}
	if (verify) {
		unsigned long long *d_bad, h_bad = 0;
		CK(cudaMalloc(&d_bad, 8));
		CK(cudaMemset(d_bad, 0, 8));
		verify_codes<<<132 * 8, 256>>>(tab, d_bad);
		CK(cudaGetLastError());
		CK(cudaMemcpy(&h_bad, d_bad, 8, cudaMemcpyDeviceToHost));
		printf("bench_gpu --verify: table lookup vs binary search of the NF4 and FP4 codes for every float of magnitude up to 1 + 2^-7 and every NaN: "
		       "%llu differences\n", h_bad);
		return h_bad ? 1 : 0;
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
	uint8_t *packed, *q8;
	float *absmax, *nested;
	unsigned long long *bad;
	CK(cudaMalloc(&x, (size_t)total * 2));
	CK(cudaMalloc(&y, (size_t)total * 2));
	CK(cudaMalloc(&packed, (size_t)total / 2));
	CK(cudaMalloc(&absmax, (size_t)total / bs * 4 + 64));
	CK(cudaMalloc(&q8, (size_t)total / bs + 64));
	CK(cudaMalloc(&nested, (size_t)total / bs / 256 * 4 + 64));
	CK(cudaMalloc(&bad, 8));
	CK(cudaMemcpy(x, host.data(), (size_t)total * 2, cudaMemcpyHostToDevice));
	CK(cudaMemset(bad, 0xff, 8));

	// quantize every matrix of the layer, with and without the double quantization kernel
	auto quantize = [&](bool dq) {
		int64_t off = 0;
		for (const shape &s : layer) {
			int64_t n = s.rows * s.cols;
			CK(lq::quantize_launch(x + off, LQ_DTYPE_BF16, n, LQ_QTYPE_NF4, bs, packed + off / 2, absmax + off / bs, bad, &tab, 0));
			if (dq)
				CK(lq::double_quant_launch(absmax + off / bs, n / bs, 0.05f, q8 + off / bs,
							   nested + off / bs / 256, d_map, 0));
			off += n;
		}
	};
	auto dequantize = [&]() {
		int64_t off = 0;
		for (const shape &s : layer) {
			int64_t n = s.rows * s.cols;
			CK(lq::dequantize_launch(packed + off / 2, absmax + off / bs, n, LQ_QTYPE_NF4, bs, LQ_DTYPE_BF16, y + off, &tab, 0));
			off += n;
		}
	};
	float t_q_dq = median_ms([&] { quantize(true); });
	float t_q = median_ms([&] { quantize(false); });
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
	const double e_q_dq = q_bytes_dq / (t_q_dq * 1e-3) / 1e12, e_q = q_bytes / (t_q * 1e-3) / 1e12;
	const double e_dq = q_bytes / (t_dq * 1e-3) / 1e12;
	printf("| quantize NF4 + double quant | %.3f | %.0f | %.2f | %.0f%% |\n", t_q_dq, p / (t_q_dq * 1e-3) / 1e9, e_q_dq,
	       100 * e_q_dq / copy_tbs);
	printf("| quantize NF4 | %.3f | %.0f | %.2f | %.0f%% |\n", t_q, p / (t_q * 1e-3) / 1e9, e_q, 100 * e_q / copy_tbs);
	printf("| dequantize NF4 to bf16 | %.3f | %.0f | %.2f | %.0f%% |\n", t_dq, p / (t_dq * 1e-3) / 1e9, e_dq,
	       100 * e_dq / copy_tbs);
	return 0;
}
