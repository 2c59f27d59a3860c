/*
 * torch_mean.c: torch.mean() of a contiguous float32 CUDA tensor, replayed on the CPU in the same order of
 * float32 operations, so that the result is the same bits.
 *
 * What torch runs (torch 2.11, CUDA build; file and function names are ATen's):
 *   - ReduceOps.cpp mean_out on a CUDA tensor calls mean_stub, i.e. ReduceMomentKernel.cu
 *     mean_kernel_cuda -> mean_kernel_impl<float, float, float>: the accumulator type is float (not
 *     double), and factor = float(num_output_elements) / numel, i.e. 1.0f / (float)n rounded once.
 *   - SharedReduceOps.h MeanOps: reduce and combine are a float add, ident is 0.0f, project multiplies
 *     by factor once at the very end.
 *   - Reduce.cuh gpu_reduce_kernel with the defaults vt0 = 4, input_vec_size = 4 (the 16-bit dtypes
 *     alone use 8). For a full reduction of a 1-D contiguous tensor TensorIterator has one dimension,
 *     one reduced dimension, num_outputs = 1 and num_inputs = n.
 * The order of the additions is fixed by the launch configuration (setReduceConfig) and by the device
 * code: input_vectorized_thread_reduce_impl or thread_reduce_impl per thread, block_x_reduce across the
 * threads of a block (shared memory, then warp shuffles), global_reduce across blocks. Every one of those
 * steps is below, under the name of the function it reproduces.
 *
 * block_height is always 1 here (block_width takes the whole budget of 512 threads because
 * dim1 = num_outputs = 1), so block_y_reduce is an empty loop and its place relative to block_x_reduce
 * does not matter. A warp of threads never spans two block rows.
 *
 * Floating point: every + and * below is a single float32 IEEE operation. Nothing multiplies and then
 * adds (the only product is the final projection), so FMA contraction cannot change anything; x87
 * excess precision and fast-math would, and are refused at compile time.
 */
#include "torch_mean.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__FAST_MATH__)
#error "torch_mean.c needs IEEE float semantics: do not compile it with -ffast-math"
#endif
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "torch_mean.c needs float32 arithmetic evaluated in float32 (SSE, not x87)"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

enum {
	WARP_SIZE = 32,           /* at::cuda::warp_size() on NVIDIA GPUs */
	MAX_NUM_THREADS = 512,    /* mnt_wrapper<float>::MAX_NUM_THREADS */
	VEC = 4,                  /* input_vec_size: float4 loads, 16 bytes */
	VT0 = 4,                  /* vt0: accumulators per thread in thread_reduce_impl */
	MIN_VALUES_PER_THREAD = 16,
	MAX_VALUES_PER_THREAD = 256,
};

/* The largest n that TensorIteratorBase::can_use_32bit_indexing() accepts for one float32 operand:
 * 1 + (n - 1) * 4 <= INT32_MAX. A longer tensor is cut in halves first (see sum_pieces). */
#define MAX_32BIT_ELEMS ((int64_t)536870912)

/* The part of ReduceConfig that decides the order of the additions for our case. */
typedef struct {
	int vectorize; /* config.vectorize_input: input_vectorized_thread_reduce_impl, else thread_reduce_impl */
	int bw;        /* block_width = blockDim.x (a power of two, <= 512); block_height is 1 */
	int ctas;      /* ctas_per_output = gridDim.y: blocks that share the one output */
	int64_t step;  /* config.step_input = bw * ctas: distance between one thread's successive loads, in
	                * loads (float4 vectors when vectorized, floats otherwise) */
} cfg_t;

static int64_t div_up(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

/* Reduce.cuh last_pow2: the largest power of two <= v, at least 1. */
static int64_t last_pow2(int64_t v)
{
	int64_t p = 1;
	while (p <= v / 2)
		p *= 2;
	return p;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* setReduceConfig<float, float, vt0 = 4, input_vec_size = 4> for a 1-D contiguous float32 input of m
 * elements reduced to one output (reduction_on_fastest_striding_dimension, num_reduce_dims == 1,
 * fastest_moving_stride == sizeof(float)). */
static cfg_t set_reduce_config(int64_t m, int sm_count, int max_threads_per_sm, unsigned flags)
{
	cfg_t c;
	int64_t dim0 = m; /* inputs_per_output */
	const int64_t dim1 = 1; /* num_outputs */

	/* "Case 1: vectorize along input". Older Reduce.cuh required dim0 > 128 (and vt0 >= input_vec_size,
	 * true for float); the current one dim0 >= 128. Either way dim0 becomes a count of float4 loads. */
	c.vectorize = (flags & LQ_TORCH_MEAN_VEC_ABOVE_128) ? (m > 128) : (m >= 128);
	if (c.vectorize)
		dim0 /= VEC;

	/* ReduceConfig::set_block_dimension: block_width first takes a warp, block_height what is left
	 * (1, since dim1 == 1), then block_width the rest of the 512 threads. */
	int64_t dim0_pow2 = dim0 < MAX_NUM_THREADS ? last_pow2(dim0) : MAX_NUM_THREADS;
	int64_t dim1_pow2 = dim1 < MAX_NUM_THREADS ? last_pow2(dim1) : MAX_NUM_THREADS;
	int64_t bw = min64(dim0_pow2, WARP_SIZE);
	int64_t bh = min64(dim1_pow2, MAX_NUM_THREADS / bw);
	bw = min64(dim0_pow2, MAX_NUM_THREADS / bh);
	const int64_t num_threads = bw * bh;

	/* input_mult[BLOCK_X] = split_input(block_width): lanes take consecutive loads. */
	int64_t step_input = bw;

	/* values_per_thread() counts num_inputs = m elements against step_input even when the loads are
	 * float4 vectors; torch does that, so the thresholds below see m, not m / 4. */
	const int64_t warp_split_threshold = min64(bh * 16, MAX_VALUES_PER_THREAD);
	const int split_across_warps = div_up(m, step_input) >= warp_split_threshold;
	if (split_across_warps)
		step_input *= bh; /* input_mult[BLOCK_Y] = split_input(block_height), a no-op for bh == 1 */

	/* Split the input across blocks (global_reduce) when each thread would still have at least
	 * max_values_per_thread values: blocks_per_sm and target_grid_size come from the device. */
	int64_t ctas = 1;
	const int64_t blocks_per_sm = (int64_t)max_threads_per_sm / num_threads;
	const int64_t target_grid_size = (int64_t)sm_count * blocks_per_sm;
	const int64_t grid_x = 1; /* div_up(num_outputs / output_vec_size, step_output) */
	const int64_t vpt = div_up(m, step_input);
	if (split_across_warps && vpt >= MAX_VALUES_PER_THREAD && grid_x <= target_grid_size) {
		const int64_t c1 = div_up(target_grid_size, grid_x);
		const int64_t c2 = div_up(vpt, MIN_VALUES_PER_THREAD);
		const int64_t c3 = div_up(vpt, MAX_VALUES_PER_THREAD);
		ctas = max64(min64(c1, c2), c3);
		if (ctas > 1)
			step_input *= ctas; /* input_mult[CTA] = split_input(ctas_per_output) */
		else
			ctas = 1;
	}

	c.bw = (int)bw;
	c.ctas = (int)ctas;
	c.step = step_input;
	return c;
}

/* ReduceOp::block_x_reduce over v[0..bw): the value that thread 0 ends with. Threads store to shared
 * memory and fold the upper half onto the lower half while more than a warp is left, then the last warp
 * folds with __shfl_down_sync. Since pytorch PR 164790 (October 2025) the shuffle offsets go down from
 * dim_x / 2 to 1 on CUDA; before, they went up from 1. v is overwritten. */
static float block_x_reduce(float *v, int bw, unsigned flags)
{
	int dim_x = bw;
	if (dim_x > WARP_SIZE) {
		/* Thread t < offset reads its partner's latest value from shared memory: the partner last
		 * wrote it in the previous round and does not write in this one. */
		for (int offset = dim_x / 2; offset >= WARP_SIZE; offset >>= 1)
			for (int t = 0; t < offset; t++)
				v[t] = v[t] + v[t + offset];
		dim_x = WARP_SIZE;
	}
	if (!(flags & LQ_TORCH_MEAN_SHFL_ASCENDING)) {
		/* Lane l < offset adds lane l + offset; only those lanes feed lane 0 later. */
		for (int offset = dim_x / 2; offset > 0; offset >>= 1)
			for (int l = 0; l < offset; l++)
				v[l] = v[l] + v[l + offset];
	} else {
		/* All lanes shuffle at once, so each reads its partner's value from before this round:
		 * ascending l keeps v[l + offset] unmodified until it is read. Lanes whose partner is past the
		 * end never feed lane 0. */
		for (int offset = 1; offset < dim_x; offset <<= 1)
			for (int l = 0; l + offset < dim_x; l++)
				v[l] = v[l] + v[l + offset];
	}
	return v[0];
}

/* ReduceOp::thread_reduce_impl (contiguous, output_vec_size 1) for thread t of block cta, then
 * block_x_reduce: the value block cta contributes. Used for m < 128, where bw <= 64, ctas == 1 and each
 * thread sees at most two elements, but written for any configuration. */
static float block_sum_scalar(const float *x, int64_t m, const cfg_t *c, int cta, float *tv, unsigned flags)
{
	for (int t = 0; t < c->bw; t++) {
		float acc[VT0];
		for (int i = 0; i < VT0; i++)
			acc[i] = 0.0f; /* ident */
		int64_t idx = t + (int64_t)cta * c->bw; /* config.input_idx() */
		/* Unrolled body: VT0 loads step apart, one per accumulator. */
		while (idx + (VT0 - 1) * c->step < m) {
			for (int i = 0; i < VT0; i++)
				acc[i] = acc[i] + x[idx + i * c->step];
			idx += VT0 * c->step;
		}
		/* Tail: up to VT0 - 1 more loads, into accumulators 0, 1, ... in turn. */
		for (int i = 0; i < VT0 && idx < m; i++) {
			acc[i] = acc[i] + x[idx];
			idx += c->step;
		}
		/* "combine accumulators": ((a0 + a1) + a2) + a3 */
		float s = acc[0];
		for (int i = 1; i < VT0; i++)
			s = s + acc[i];
		tv[t] = s;
	}
	return block_x_reduce(tv, c->bw, flags);
}

/* ReduceOp::input_vectorized_thread_reduce_impl for all threads of block cta, then block_x_reduce.
 *
 * x points at the first element of the slice, which starts `shift` floats past a 16-byte boundary.
 * Thread t of block cta reads float4 number t + cta * bw, then every step-th one after it, into four
 * accumulators, one per vector lane. acc[4 * t + j] is lane j of thread t, so the four accumulators of
 * the bw threads sit in the same order as the floats of the bw loads of one round, and a round is a
 * plain element-wise add of two contiguous arrays (which the compiler may vectorize: the same
 * float32 adds, the same results). */
static float block_sum_vectorized(const float *x, int64_t m, int shift, const cfg_t *c, int cta, float *acc,
                                  float *tv, unsigned flags)
{
	const int bw = c->bw;
	const float *data = x;
	int64_t end = m;

	for (int k = 0; k < VEC * bw; k++)
		acc[k] = 0.0f; /* value_list[] = ident */

	/* "Handle the head of input slice where data is not aligned": with the pointer moved back to the
	 * 16-byte boundary, threads shift..3 of block 0 (should_reduce_tail) start their first accumulator
	 * with ident + the element at their index; the aligned part begins 4 floats after the boundary. */
	if (shift > 0) {
		const float *aligned = x - shift;
		if (cta == 0)
			for (int t = shift; t < VEC; t++)
				acc[VEC * t] = 0.0f + aligned[t];
		data = aligned + VEC;
		end = m + shift - VEC;
	}

	/* "Do the vectorized reduction": while idx * 4 + 3 < end. */
	const int64_t nvec = end / VEC;
	for (int64_t row = (int64_t)cta * bw; row < nvec; row += c->step) {
		const int64_t nthr = min64(bw, nvec - row); /* threads of this block that still load */
		const float *src = data + row * VEC;
		for (int64_t k = 0; k < nthr * VEC; k++)
			acc[k] = acc[k] + src[k];
	}

	/* "tail": the last end % 4 floats go to threads 0.. of block 0, into their first accumulator. */
	if (cta == 0) {
		const int64_t tail_start = end - end % VEC;
		for (int64_t t = 0; tail_start + t < end; t++)
			acc[VEC * t] = acc[VEC * t] + data[tail_start + t];
	}

	/* "combine accumulators": ((lane0 + lane1) + lane2) + lane3 per thread. */
	for (int t = 0; t < bw; t++) {
		const float *a = acc + VEC * t;
		tv[t] = ((a[0] + a[1]) + a[2]) + a[3];
	}
	return block_x_reduce(tv, bw, flags);
}

/* One launch of gpu_reduce_kernel on a slice x[0..m) that starts `shift` floats past a 16-byte boundary:
 * the float32 sum before projection. */
static float reduce_slice(const float *x, int64_t m, int shift, int sm_count, int max_threads_per_sm,
                          unsigned flags)
{
	const cfg_t c = set_reduce_config(m, sm_count, max_threads_per_sm, flags);
	float acc[VEC * MAX_NUM_THREADS];
	float tv[MAX_NUM_THREADS];

	if (c.ctas == 1)
		return c.vectorize ? block_sum_vectorized(x, m, shift, &c, 0, acc, tv, flags)
		                   : block_sum_scalar(x, m, &c, 0, tv, flags);

	/* global_reduce: block cta stores its value at reduce_buffer[cta]; the last block to finish starts
	 * every thread t at ident, adds buffer entries t, t + bw, t + 2 * bw, ... in that order, and folds the
	 * threads with block_y_reduce (nothing, bh == 1) and block_x_reduce. Which block finishes last does
	 * not matter: the buffer order is fixed. The entries are consumed here as they are produced, in
	 * increasing cta, which is the order each thread adds them in. */
	float gacc[MAX_NUM_THREADS];
	for (int t = 0; t < c.bw; t++)
		gacc[t] = 0.0f;
	for (int cta = 0; cta < c.ctas; cta++) {
		const float p = c.vectorize ? block_sum_vectorized(x, m, shift, &c, cta, acc, tv, flags)
		                            : block_sum_scalar(x, m, &c, cta, tv, flags);
		gacc[cta % c.bw] = gacc[cta % c.bw] + p;
	}
	return block_x_reduce(gacc, c.bw, flags);
}

typedef struct {
	int started;  /* a slice has been reduced into out already (TensorIterator::should_accumulate) */
	float out;    /* the output element as the previous slice left it: a raw, unprojected sum */
} split_state;

/* gpu_reduce_kernel when !iter.can_use_32bit_indexing(): it walks iter.with_32bit_indexing(), which
 * splits the reduced dimension in two (TensorIteratorBase::split: the first copy_size = size / 2 elements,
 * then the rest) until each piece fits, depth first, left to right. Every piece but the first adds the
 * output to its own result (accumulate_in_output: *out + value); every piece but the last stores the raw
 * sum (final_output false), and only the last one projects. The pieces after the first start at byte
 * offsets that need not be 16-byte aligned, hence the shift. Not reached below 2^29 elements. */
static void sum_pieces(const float *x, int64_t off, int64_t len, int sm_count, int max_threads_per_sm,
                       unsigned flags, split_state *st)
{
	if (len > MAX_32BIT_ELEMS) {
		const int64_t first = len / 2;
		sum_pieces(x, off, first, sm_count, max_threads_per_sm, flags, st);
		sum_pieces(x, off + first, len - first, sm_count, max_threads_per_sm, flags, st);
		return;
	}
	/* The storage is 16-byte aligned (fresh CUDA allocations are 512-byte aligned), so a slice starting
	 * at element off is off % 4 floats past a boundary. */
	const float v = reduce_slice(x + off, len, (int)(off % VEC), sm_count, max_threads_per_sm, flags);
	st->out = st->started ? st->out + v : v;
	st->started = 1;
}

float lq_torch_mean_f32_ex(const float *x, int64_t n, int sm_count, int max_threads_per_sm, unsigned flags)
{
	if (x == NULL || n < 1 || sm_count < 1 || max_threads_per_sm < 1)
		return NAN;

	/* mean_kernel_impl: factor = static_cast<float>(1) / iter.numel(); the int64 numel converts to float
	 * (rounding above 2^24), then one float division, on the host. */
	const float factor = 1.0f / (float)n;

	split_state st = { 0, 0.0f };
	sum_pieces(x, 0, n, sm_count, max_threads_per_sm, flags, &st);

	/* MeanOps::project in set_results_to_output: one float multiplication. */
	return st.out * factor;
}

float lq_torch_mean_f32(const float *x, int64_t n, int sm_count, int max_threads_per_sm)
{
	return lq_torch_mean_f32_ex(x, n, sm_count, max_threads_per_sm, 0u);
}
