#ifndef LQ_BUILDING
#error "internal header of libquant"
#endif

/*
 * torch_mean.h: torch.mean() of a float32 CUDA tensor, reproduced bit for bit on the CPU.
 *
 * bitsandbytes' double quantization takes its offset as absmax.mean(), computed by PyTorch on the GPU
 * in float32. A float32 sum depends on the order of its additions, and that order is ATen's generic
 * CUDA reduction (aten/src/ATen/native/cuda/Reduce.cuh), whose launch configuration depends on the
 * number of elements and on two properties of the device. torch_mean.c replays that order.
 */
#ifndef LQ_TORCH_MEAN_H
#define LQ_TORCH_MEAN_H

#include <stdint.h>

/* The target device, NVIDIA H200 (H100 SXM has the same numbers): cudaDeviceProp.multiProcessorCount and
 * .maxThreadsPerMultiProcessor. They matter from n = 130561 on, where the sum is split across blocks. */
#define LQ_TORCH_REF_SM_COUNT 132
#define LQ_TORCH_REF_MAX_THREADS_PER_SM 2048

/* float32 mean of x[0..n) computed in exactly the order and precision of torch.mean() of a contiguous
 * float32 CUDA tensor (torch 2.11), on a GPU with `sm_count` multiprocessors and `max_threads_per_sm`
 * threads per multiprocessor. n >= 1.
 *
 * x must be the whole tensor and the tensor's storage must start 16-byte aligned on the device (true of
 * every fresh CUDA allocation, which is 512-byte aligned), since the vectorized loads depend on it.
 * Returns NaN when x is NULL, n < 1, or a device number is < 1. Runs in O(n) time and O(1) space
 * (about 12 KiB of stack), allocates nothing, and is reentrant. The host must compute float32 in IEEE
 * single precision with gradual underflow (SSE on x86-64 with the default MXCSR; no fast-math, no FTZ). */
float lq_torch_mean_f32(const float *x, int64_t n, int sm_count, int max_threads_per_sm);

/* For verification only (tests/gpu/torch_mean_check.py): the same computation with earlier variants of
 * Reduce.cuh switched in, to tell which one a GPU really runs if lq_torch_mean_f32 ever disagrees.
 * flags == 0 is exactly lq_torch_mean_f32. */
#define LQ_TORCH_MEAN_SHFL_ASCENDING 1u /* warp shuffle offsets 1, 2, .., 16: Reduce.cuh before pytorch
                                          * PR 164790 (October 2025) */
#define LQ_TORCH_MEAN_VEC_ABOVE_128 2u  /* vectorized loads only for n > 128, not n >= 128: older
                                          * Reduce.cuh */
float lq_torch_mean_f32_ex(const float *x, int64_t n, int sm_count, int max_threads_per_sm,
                           unsigned flags);

#endif /* LQ_TORCH_MEAN_H */
