// rcp_approx_gen.cu: generates libquant's table of the GPU's approximate reciprocal.
//
// bitsandbytes is built with --use_fast_math, so 1.0f/absmax is rcp.approx.ftz.f32, which differs from the
// correctly rounded reciprocal by one unit in the last place for about 13% of inputs; where x/absmax sits
// on an FP4 threshold (or any float32 input does), that unit decides the code. The instruction's result for
// x = 2^e * 1.m is its result for 1.m scaled by 2^-e (flushed to zero when that is subnormal), so a table
// over the 2^23 mantissas reproduces it for every float. This program
//   1. computes rcp.approx.ftz.f32(1.m) for every m on the GPU,
//   2. checks that model against the instruction for EVERY positive float (exit 1 on any difference),
//   3. writes, for each m, the difference to the correctly rounded 1.0f/1.m (always -1, 0 or +1 unit) as
//      2-bit fields, value + 1, four per byte, low bits first: 2^21 bytes, header-less.
// libquant/data/rcp_approx_delta.bin.zst is that file compressed with `zstd -19`; `make rcp-table` runs this
// on a machine with a GPU and compares the result with the shipped table.
//
// Usage: rcp_approx_gen OUTPUT.bin
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
	fprintf(stderr, "rcp_approx_gen: %s: %s\n", #call, cudaGetErrorString(e_)); exit(1); } } while (0)

static const uint32_t kMantissas = 1u << 23;

__device__ __forceinline__ float rcp_approx(float x)
{
	float r;
	asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
	return r;
}

__global__ void mantissa_table(uint32_t *out)
{
	uint32_t m = blockIdx.x * blockDim.x + threadIdx.x;
	if (m < kMantissas)
		out[m] = __float_as_uint(rcp_approx(__uint_as_float(0x3f800000u | m)));
}

// The model libquant implements (libquant/rcp_approx.c), in terms of the table.
__device__ uint32_t model(uint32_t b, const uint32_t *tab)
{
	if (b < 0x00800000u)
		return 0x7f800000u; // zero or subnormal input: flushed, 1/0 = +inf
	if (b == 0x7f800000u)
		return 0;
	int e = (int)(b >> 23) - 127;
	uint32_t r1 = tab[b & 0x7fffffu];
	int re = (int)(r1 >> 23) - e;
	if (re <= 0)
		return 0; // subnormal result: flushed
	return ((uint32_t)re << 23) | (r1 & 0x7fffffu);
}

__global__ void check_all(const uint32_t *tab, unsigned long long *bad, uint32_t *first)
{
	uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
	for (uint64_t b = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; b <= 0x7f800000ull; b += stride) {
		uint32_t got = __float_as_uint(rcp_approx(__uint_as_float((uint32_t)b)));
		uint32_t want = model((uint32_t)b, tab);
		if (got != want) {
			unsigned long long k = atomicAdd(bad, 1ull);
			if (k < 8) {
				first[3 * k] = (uint32_t)b;
				first[3 * k + 1] = got;
				first[3 * k + 2] = want;
			}
		}
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: rcp_approx_gen OUTPUT.bin\n");
		return 2;
	}
	uint32_t *d_tab, *d_first;
	unsigned long long *d_bad;
	CHECK(cudaMalloc(&d_tab, kMantissas * sizeof(uint32_t)));
	CHECK(cudaMalloc(&d_bad, sizeof(unsigned long long)));
	CHECK(cudaMalloc(&d_first, 24 * sizeof(uint32_t)));
	CHECK(cudaMemset(d_bad, 0, sizeof(unsigned long long)));
	mantissa_table<<<kMantissas / 256, 256>>>(d_tab);
	CHECK(cudaGetLastError());
	check_all<<<132 * 16, 256>>>(d_tab, d_bad, d_first);
	CHECK(cudaGetLastError());
	CHECK(cudaDeviceSynchronize());

	std::vector<uint32_t> tab(kMantissas);
	unsigned long long bad = 0;
	uint32_t first[24];
	CHECK(cudaMemcpy(tab.data(), d_tab, kMantissas * sizeof(uint32_t), cudaMemcpyDeviceToHost));
	CHECK(cudaMemcpy(&bad, d_bad, sizeof bad, cudaMemcpyDeviceToHost));
	CHECK(cudaMemcpy(first, d_first, sizeof first, cudaMemcpyDeviceToHost));
	if (bad) {
		fprintf(stderr, "rcp_approx_gen: the mantissa model fails for %llu floats, e.g.:\n", bad);
		for (unsigned long long k = 0; k < bad && k < 8; k++)
			fprintf(stderr, "  x=%08x rcp=%08x model=%08x\n", first[3 * k], first[3 * k + 1], first[3 * k + 2]);
		return 1;
	}

	std::vector<uint8_t> packed(kMantissas / 4, 0);
	long count[3] = {0, 0, 0};
	for (uint32_t m = 0; m < kMantissas; m++) {
		uint32_t xb = 0x3f800000u | m;
		float x, ieee;
		memcpy(&x, &xb, 4);
		ieee = 1.0f / x; // host division: correctly rounded
		uint32_t ib;
		memcpy(&ib, &ieee, 4);
		long delta = (long)tab[m] - (long)ib;
		if (delta < -1 || delta > 1) {
			fprintf(stderr, "rcp_approx_gen: m=%06x differs by %ld units, the 2-bit format cannot hold it\n",
				m, delta);
			return 1;
		}
		count[delta + 1]++;
		packed[m >> 2] |= (uint8_t)((delta + 1) << ((m & 3) * 2));
	}
	FILE *f = fopen(argv[1], "wb");
	if (!f || fwrite(packed.data(), 1, packed.size(), f) != packed.size() || fclose(f) != 0) {
		perror(argv[1]);
		return 1;
	}
	printf("rcp.approx.ftz.f32: model exact for every positive float; vs 1.0f/x: %ld lower, %ld equal, %ld higher\n",
	       count[0], count[1], count[2]);
	return 0;
}
