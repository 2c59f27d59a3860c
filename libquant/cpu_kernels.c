/* cpu_kernels.c: the kernels of each CPU path, and which of them this CPU runs, found once. */
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"

static const lq_cpu_kernels scalar_kernels = {
	.name = "cpu-scalar",
	.quantize_range = lq_quantize_range_scalar,
	.dequantize_range = lq_dequantize_range_scalar,
};

#if defined(__x86_64__)
static const lq_cpu_kernels avx2_kernels = {
	.name = "cpu-avx2",
	.quantize_range = lq_quantize_range_avx2,
	.dequantize_range = lq_dequantize_range_avx2,
	.double_quant_block = lq_double_quant_block_avx2,
};

static const lq_cpu_kernels avx2_fma_kernels = {
	.name = "cpu-avx2",
	.quantize_range = lq_quantize_range_avx2,
	.dequantize_range = lq_dequantize_range_avx2,
	.delta_rows = lq_delta_rows_avx2,
	.double_quant_block = lq_double_quant_block_avx2,
};

static const lq_cpu_kernels avx512_kernels = {
	.name = "cpu-avx512",
	.quantize_range = lq_quantize_range_avx512,
	.dequantize_range = lq_dequantize_range_avx512,
	.delta_rows = lq_delta_rows_avx512,
	.double_quant_block = lq_double_quant_block_avx512,
};

static bool has_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
}

/* What the AVX-512 kernels are compiled for (the Makefile's AVX512_FLAGS); the OS saves the registers, or
 * __builtin_cpu_supports would not report them. */
static bool has_avx512(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#endif

bool lq_cpu_path_supported(lq_cpu_path path)
{
	switch (path) {
	case LQ_CPU_BEST:
	case LQ_CPU_SCALAR:
		return true;
#if defined(__x86_64__)
	case LQ_CPU_AVX2:
		return has_avx2();
	case LQ_CPU_AVX512:
		return has_avx512();
#endif
	default:
		return false;
	}
}

lq_status lq_cpu_path_from_name(const char *name, lq_cpu_path *path)
{
	static const struct {
		const char *name;
		lq_cpu_path path;
	} names[] = {{"scalar", LQ_CPU_SCALAR}, {"avx2", LQ_CPU_AVX2}, {"avx512", LQ_CPU_AVX512}};
	for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
		if (strcmp(name, names[i].name) == 0) {
			*path = names[i].path;
			return LQ_OK;
		}
	return LQ_ERR_ARG;
}

const lq_cpu_kernels *lq_cpu_kernels_for(lq_cpu_path path)
{
	if (!lq_cpu_path_supported(path))
		return NULL;
	if (path == LQ_CPU_SCALAR)
		return &scalar_kernels;
#if defined(__x86_64__)
	if (path == LQ_CPU_AVX512 || (path == LQ_CPU_BEST && has_avx512()))
		return &avx512_kernels;
	if (path == LQ_CPU_AVX2 || (path == LQ_CPU_BEST && has_avx2()))
		return __builtin_cpu_supports("fma") ? &avx2_fma_kernels : &avx2_kernels;
#endif
	return &scalar_kernels;
}
