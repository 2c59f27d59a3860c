/*
 * torch_norm.c: the launch configuration of torch.linalg.norm(V, dim=1) on a CUDA tensor (setReduceConfig)
 * and the last steps of a column norm; the per-thread replay is in torch_norm.h, shared with the GPU merge.
 *
 * Floating point: every + and * is one float32 IEEE operation and the products of the squares are fused
 * multiply-adds written as fmaf(); contraction, x87 excess precision and fast-math would change the
 * results and are refused at compile time.
 */
#include "torch_norm.h"

#include <float.h>
#include <stddef.h>

#if defined(__FAST_MATH__)
#error "torch_norm.c needs IEEE float semantics: do not compile it with -ffast-math"
#endif
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "torch_norm.c needs float32 arithmetic evaluated in float32 (SSE, not x87)"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static int64_t div_up(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Reduce.cuh last_pow2: the largest power of two <= v, at least 1. */
static int64_t last_pow2(int64_t v)
{
	int64_t p = 1;
	while (p <= v / 2)
		p *= 2;
	return p;
}

int lq_torch_norm_plan_make(lq_torch_norm_plan *p, int64_t rows, int64_t cols, int inner, int sm_count,
			    int max_threads_per_sm, unsigned flags)
{
	if (rows < 1 || cols < 1 || sm_count < 1 || max_threads_per_sm < 1 || rows > INT32_MAX || cols > INT32_MAX)
		return -1;
	/* the columns of a single row or column: TensorIterator drops the dimension of size 1, and what is left
	 * is one contiguous vector per output (cols == 1), or outputs of one element each (rows == 1) */
	if (!inner && (rows == 1 || cols == 1))
		return lq_torch_norm_plan_make(p, 1, rows, 1, sm_count, max_threads_per_sm, flags);
	/* TensorIterator puts the reduced dimension first: inner, its stride (4 bytes) is below the output's
	 * (cols * 4), reduction_on_fastest_striding_dimension; outer, the output's (4) is below it */
	const int64_t num_outputs = inner ? rows : cols, n = inner ? cols : rows;
	int64_t dim0 = inner ? n : num_outputs, dim1 = inner ? num_outputs : n;
	*p = (lq_torch_norm_plan){.n = n, .inner = inner, .vec_out = 1, .flags = flags};
	if (inner) {
		/* "Case 1: vectorize along input": dim0 >= 128 (Reduce.cuh of torch 2.11; earlier dim0 > 128),
		 * one reduced dimension, vt0 >= input_vec_size */
		p->vectorize = (flags & LQ_TORCH_NORM_VEC_ABOVE_128) ? dim0 > 128 : dim0 >= 128;
		if (p->vectorize)
			dim0 /= 4;
	} else {
		/* "Case 2: vectorize along output", get_output_vec_size: the largest of 4, 2, 1 dividing the
		 * base address in elements (0: aligned), the output extent and the reduced dimension's stride
		 * in elements (cols) */
		p->vec_out = cols % 4 == 0 ? 4 : cols % 2 == 0 ? 2 : 1;
		dim0 /= p->vec_out;
	}
	/* ReduceConfig::set_block_dimension<float> */
	const int64_t max_threads = LQ_TORCH_NORM_MAX_THREADS / p->vec_out;
	const int64_t dim0_pow2 = dim0 < max_threads ? last_pow2(dim0) : max_threads;
	const int64_t dim1_pow2 = dim1 < max_threads ? last_pow2(dim1) : max_threads;
	int64_t bw = min64(dim0_pow2, 32);
	const int64_t bh = min64(dim1_pow2, max_threads / bw);
	bw = min64(dim0_pow2, max_threads / bh);
	const int64_t num_threads = bw * bh;
	p->bw = (int)bw;
	p->bh = (int)bh;

	/* split_input / split_output: input_mult[X] (inner) or output_mult[X] (outer) */
	int64_t step_input = 1, step_output = 1;
	if (inner)
		step_input *= bw;
	else
		step_output *= bw;
	/* values_per_thread() counts elements against step_input, in float4 loads or not */
	const int64_t warp_split_threshold = min64(bh * 16, 256);
	p->split_y = div_up(n, step_input) >= warp_split_threshold;
	if (p->split_y) {
		p->mult_y = step_input;
		step_input *= bh;
	} else {
		step_output *= bh;
	}
	/* blocks per output: global_reduce */
	p->ctas = 1;
	const int64_t blocks_per_sm = max_threads_per_sm / num_threads;
	const int64_t target_grid_size = (int64_t)sm_count * blocks_per_sm;
	const int64_t grid = div_up(num_outputs / p->vec_out, step_output);
	const int64_t vpt = div_up(n, step_input);
	if (p->split_y && vpt >= 256 && grid <= target_grid_size) {
		const int64_t c1 = div_up(target_grid_size, grid), c2 = div_up(vpt, 16), c3 = div_up(vpt, 256);
		const int64_t ctas = max64(min64(c1, c2), c3);
		if (ctas > 1) {
			p->ctas = (int)ctas;
			p->mult_cta = step_input;
			step_input *= ctas;
		}
	}
	p->step = step_input;
	return 0;
}

float lq_torch_norm_column(const lq_torch_norm_plan *p, const float *slots, int64_t stride, int64_t j, float *tv,
			   float *g)
{
	const int by = p->split_y ? p->bh : 1;
	float total = 0.0f;
	for (int t = 0; t < by; t++)
		g[t] = 0.0f; /* ident */
	for (int cta = 0; cta < p->ctas; cta++) {
		for (int ty = 0; ty < by; ty++) {
			const float *s = slots + (int64_t)(ty + cta * by) * 4 * stride + j;
			/* thread_reduce_impl's "combine accumulators" */
			tv[ty] = ((s[0] + s[stride]) + s[2 * stride]) + s[3 * stride];
		}
		if (p->split_y)
			lq_tn_block_y(tv, 1, by);
		if (p->ctas == 1)
			total = tv[0];
		else
			g[cta % by] = g[cta % by] + tv[0];
	}
	if (p->ctas > 1) {
		lq_tn_block_y(g, 1, by);
		total = g[0];
	}
	return sqrtf(total);
}
