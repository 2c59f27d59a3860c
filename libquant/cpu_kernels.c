/* cpu_kernels.c: picks the fastest block kernels this CPU runs, once. */
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
};

static const lq_cpu_kernels avx2_fma_kernels = {
	.name = "cpu-avx2",
	.quantize_range = lq_quantize_range_avx2,
	.dequantize_range = lq_dequantize_range_avx2,
	.delta_rows = lq_delta_rows_avx2,
};
#endif

const lq_cpu_kernels *lq_cpu_kernels_for(lq_cpu_path path)
{
	if (path == LQ_CPU_SCALAR)
		return &scalar_kernels;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c"))
		return __builtin_cpu_supports("fma") ? &avx2_fma_kernels : &avx2_kernels;
#endif
	return &scalar_kernels;
}
