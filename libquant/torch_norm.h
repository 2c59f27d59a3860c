#ifndef LQ_BUILDING
#error "internal header of libquant"
#endif

/*
 * torch_norm.h: torch.linalg.norm(V, dim=1) of a float32 CUDA tensor, replayed on the CPU (and by the GPU
 * merge, one thread per output) in the same order of float32 operations, so that the norms are the same
 * bits. PEFT's DoRA merge divides the magnitude vector by these norms (get_weight_norm), and the
 * project's references are PEFT on CUDA.
 *
 * What torch runs (torch 2.11, CUDA build; names are ATen's): linalg_vector_norm -> norm_stub ->
 * ReduceNormKernel.cu norm_kernel_cuda_impl<float> with p = 2 -> gpu_reduce_kernel with NormTwoOps<float,
 * float, float>: reduce(acc, x) = acc + x * x, which nvcc contracts into one fused multiply-add (torch is
 * built with the default --fmad=true), combine(a, b) = a + b, project(a) = sqrt(a) (correctly rounded).
 * The order of the additions is ReduceConfig's (Reduce.cuh setReduceConfig<float, float, vt0 = 4,
 * input_vec_size = 4>), which depends on the shape and on two properties of the device. Two layouts occur:
 *
 *   inner  V [R, C] contiguous, norms of its rows (PEFT's DoraLinearVariant on a Linear weight [out, in]):
 *          the reduced dimension is the fastest, each row's elements are split over the lanes of a warp
 *          (float4 loads from 128 elements on), maybe over several warps and blocks;
 *   outer  V [R, C] contiguous, norms of its columns (DoraEmbeddingVariant, and GPT-2's Conv1D: PEFT
 *          norms W^T + D^T by row, a transposed view): lanes take different columns (output_vec_size up
 *          to 4), the rows of a column are split over warps and blocks, each thread summing every
 *          step-th row into four accumulators in turn.
 *
 * Everything below names the function of Reduce.cuh it reproduces. A plan is the part of ReduceConfig
 * that decides the order; the replay then needs only the data.
 */
#ifndef LQ_TORCH_NORM_H
#define LQ_TORCH_NORM_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define LQ_TN_HD __host__ __device__
#else
#define LQ_TN_HD
#endif
#if defined(__CUDA_ARCH__)
#define LQ_TN_FMA(a, b, c) __fmaf_rn(a, b, c)
#define LQ_TN_MUL(a, b) __fmul_rn(a, b)
#define LQ_TN_ADD(a, b) __fadd_rn(a, b)
#define LQ_TN_SQRT(a) __fsqrt_rn(a)
#else
#define LQ_TN_FMA(a, b, c) fmaf(a, b, c)
#define LQ_TN_MUL(a, b) ((a) * (b))
#define LQ_TN_ADD(a, b) ((a) + (b))
#define LQ_TN_SQRT(a) sqrtf(a)
#endif

/* For verification only (tests/gpu/torch_norm_check.py): variants of the device code, to tell which one a
 * GPU runs if the default ever disagrees. 0 is what torch 2.11 runs. */
#define LQ_TORCH_NORM_SHFL_ASCENDING 1u /* warp shuffle offsets 1, 2, .., 16 (Reduce.cuh before pytorch PR 164790) */
#define LQ_TORCH_NORM_VEC_ABOVE_128 2u  /* float4 loads only for more than 128 elements (older Reduce.cuh) */
#define LQ_TORCH_NORM_NO_FMA 4u         /* reduce as acc + round(x * x), two roundings (--fmad=false) */

#define LQ_TORCH_NORM_MAX_THREADS 512 /* mnt_wrapper<float>::MAX_NUM_THREADS */

typedef struct lq_torch_norm_plan {
	int64_t n;         /* inputs per output: C (inner) or R (outer) */
	int inner;         /* 1: row norms (or columns gathered, see below); 0: column norms */
	int vectorize;     /* inner: config.vectorize_input (input_vectorized_thread_reduce_impl) */
	int vec_out;       /* outer: config.output_vec_size (does not change a column's order, only the grid) */
	int bw, bh;        /* block_width, block_height */
	int split_y;       /* input_mult[BLOCK_Y] != 0: the input split across the warps (block_y_reduce) */
	int ctas;          /* ctas_per_output (global_reduce when > 1) */
	int64_t mult_y;    /* input_mult[BLOCK_Y], input_mult[CTA]: a thread's first load is */
	int64_t mult_cta;  /* tx * (inner) + ty * mult_y + cta * mult_cta */
	int64_t step;      /* step_input: between a thread's successive loads (float4 loads when vectorized) */
	unsigned flags;
} lq_torch_norm_plan;

/* The plan of torch.linalg.norm(V, dim=1) for V [rows, cols] float32 contiguous (inner: norms of the rows)
 * or of its transposed view (outer: norms of the columns), on a GPU with `sm_count` multiprocessors of
 * `max_threads_per_sm` threads (libquant/torch_mean.h names the reference device's). V's storage starts
 * 16-byte aligned (a fresh CUDA allocation). Returns 0, or -1 when an argument is out of range. Exact
 * while rows * cols < 2^29 (above, torch splits the tensor for 32-bit indexing first, which is not
 * replayed: the norms are then still deterministic but not torch's). */
int lq_torch_norm_plan_make(lq_torch_norm_plan *p, int64_t rows, int64_t cols, int inner, int sm_count,
			    int max_threads_per_sm, unsigned flags);

/* NormTwoOps::reduce. */
LQ_TN_HD static inline float lq_tn_reduce(const lq_torch_norm_plan *p, float acc, float x)
{
	if (p->flags & LQ_TORCH_NORM_NO_FMA)
		return LQ_TN_ADD(acc, LQ_TN_MUL(x, x));
	return LQ_TN_FMA(x, x, acc);
}

/* ReduceOp::block_x_reduce over v[0..bw): the value lane 0 ends with; v is overwritten. More than a warp:
 * shared memory, the upper half folded onto the lower half down to a warp. Then __shfl_down_sync: offsets
 * dim_x / 2 down to 1 since pytorch PR 164790, where lane l < offset adds lane l + offset (only those feed
 * lane 0); before, offsets 1 up to 16, every lane reading its partner's value of the round before. */
LQ_TN_HD static inline float lq_tn_block_x(const lq_torch_norm_plan *p, float *v, int bw)
{
	int dim_x = bw;
	if (dim_x > 32) {
		for (int offset = dim_x / 2; offset >= 32; offset >>= 1)
			for (int t = 0; t < offset; t++)
				v[t] = LQ_TN_ADD(v[t], v[t + offset]);
		dim_x = 32;
	}
	if (!(p->flags & LQ_TORCH_NORM_SHFL_ASCENDING)) {
		for (int offset = dim_x / 2; offset > 0; offset >>= 1)
			for (int l = 0; l < offset; l++)
				v[l] = LQ_TN_ADD(v[l], v[l + offset]);
	} else {
		for (int offset = 1; offset < dim_x; offset <<= 1)
			for (int l = 0; l + offset < dim_x; l++)
				v[l] = LQ_TN_ADD(v[l], v[l + offset]);
	}
	return v[0];
}

/* ReduceOp::block_y_reduce for each of the bw lanes: v[ty * bw + tx], ty < bh; the result in row 0. Thread
 * ty < offset reads the latest value of ty + offset, which no thread writes in the same round. */
LQ_TN_HD static inline void lq_tn_block_y(float *v, int bw, int bh)
{
	for (int offset = bh / 2; offset > 0; offset >>= 1)
		for (int ty = 0; ty < offset; ty++)
			for (int tx = 0; tx < bw; tx++)
				v[ty * bw + tx] = LQ_TN_ADD(v[ty * bw + tx], v[(ty + offset) * bw + tx]);
}

/* The value thread (tx, ty) of block cta reduces from a row x[0..n) that starts `shift` floats past a
 * 16-byte boundary: input_vectorized_thread_reduce_impl, or thread_reduce_impl (contiguous) below 128
 * elements, each ending with "combine accumulators". */
LQ_TN_HD static inline float lq_tn_inner_thread(const lq_torch_norm_plan *p, const float *x, int shift, int tx, int ty,
						int cta)
{
	const int64_t n = p->n;
	const int tail = (!p->split_y || ty == 0) && (p->ctas == 1 || cta == 0); /* config.should_reduce_tail() */
	int64_t idx = tx + ty * p->mult_y + cta * p->mult_cta;                    /* config.input_idx() */
	float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                 /* ident */
	if (!p->vectorize) {
		while (idx + 3 * p->step < n) {
			for (int i = 0; i < 4; i++)
				acc[i] = lq_tn_reduce(p, acc[i], x[idx + i * p->step]);
			idx += 4 * p->step;
		}
		for (int i = 0; i < 4 && idx < n; i++, idx += p->step)
			acc[i] = lq_tn_reduce(p, acc[i], x[idx]);
	} else {
		/* "Handle the head of input slice where data is not aligned": from the boundary before x, lanes
		 * shift..3 take one element each; the aligned part starts at the next boundary */
		const float *data = x;
		int64_t end = n;
		if (shift > 0) {
			data = x - shift;
			end = n + shift;
			if (tx >= shift && tx < 4 && tail)
				acc[0] = lq_tn_reduce(p, acc[0], data[tx]);
			end -= 4;
			data += 4;
		}
		/* "Do the vectorized reduction": float4 number idx into accumulators 0..3 */
		for (; idx * 4 + 3 < end; idx += p->step)
			for (int i = 0; i < 4; i++)
				acc[i] = lq_tn_reduce(p, acc[i], data[idx * 4 + i]);
		/* "tail": the last end % 4 elements, one per lane from lane 0 */
		const int64_t t = end - end % 4 + tx;
		if (tail && t < end)
			acc[0] = lq_tn_reduce(p, acc[0], data[t]);
	}
	return LQ_TN_ADD(LQ_TN_ADD(LQ_TN_ADD(acc[0], acc[1]), acc[2]), acc[3]);
}

/* The norm of one row x[0..n) (inner plan) that starts `shift` floats past a 16-byte boundary: every block
 * of the output (cta), every thread, block_x_reduce (each warp row), block_y_reduce; then global_reduce
 * across the blocks: the last block's thread t adds the blocks' values t, t + threads, ... (ascending:
 * the buffer's order, whichever block finishes last), then block_y_reduce and block_x_reduce (in that
 * order there); then project. A single element is linalg_vector_norm's path for a reduction over size-1
 * dimensions: its absolute value. tv and g are scratch of LQ_TORCH_NORM_MAX_THREADS floats each. */
LQ_TN_HD static inline float lq_torch_norm_row(const lq_torch_norm_plan *p, const float *x, int shift, float *tv,
					       float *g)
{
	if (p->n == 1)
		return fabsf(x[0]);
	const int bw = p->bw, by = p->split_y ? p->bh : 1, nt = bw * by;
	float total = 0.0f;
	for (int t = 0; t < nt; t++)
		g[t] = 0.0f; /* ident */
	for (int cta = 0; cta < p->ctas; cta++) {
		for (int ty = 0; ty < by; ty++)
			for (int tx = 0; tx < bw; tx++)
				tv[ty * bw + tx] = lq_tn_inner_thread(p, x, shift, tx, ty, cta);
		for (int ty = 0; ty < by; ty++)
			lq_tn_block_x(p, tv + ty * bw, bw); /* lane 0 of each row */
		if (p->split_y)
			lq_tn_block_y(tv, bw, by);
		const float v = tv[0];
		if (p->ctas == 1)
			total = v;
		else
			g[cta % nt] = LQ_TN_ADD(g[cta % nt], v);
	}
	if (p->ctas > 1) {
		lq_tn_block_y(g, bw, by);
		total = lq_tn_block_x(p, g, bw);
	}
	return LQ_TN_SQRT(total);
}

/* Column norms (outer plan) are replayed row by row: row i goes into accumulator `slot` of the thread that
 * loads it, in increasing i, which is the order each thread adds its rows in. Except when V has a single
 * row or column: torch then sees one contiguous vector per output, and the plan is an inner one
 * (p->inner set, n = rows) to replay on each column gathered (lq_torch_norm_row, shift 0). */
static inline int64_t lq_torch_norm_outer_slots(const lq_torch_norm_plan *p)
{
	return 4 * p->step; /* step threads (warps x blocks) of four accumulators each */
}

static inline int64_t lq_torch_norm_outer_slot(const lq_torch_norm_plan *p, int64_t row)
{
	/* thread t = row % step (t = ty + cta * bh) loads rows t, t + step, ...; its m-th load goes into
	 * accumulator m % 4, in the unrolled loop and in the tail alike */
	return (row % p->step) * 4 + (row / p->step) % 4;
}

/* The norm of column j from its slots (slot s at slots[s * stride + j], every slot started at 0 and each
 * row of the column reduced into its slot): combine accumulators, block_y_reduce, global_reduce (thread ty
 * of the last block adds the blocks' values ty, ty + bh, ... from ident), block_y_reduce, project. tv
 * and g are scratch of LQ_TORCH_NORM_MAX_THREADS floats each. */
float lq_torch_norm_column(const lq_torch_norm_plan *p, const float *slots, int64_t stride, int64_t j, float *tv,
			   float *g);

#endif /* LQ_TORCH_NORM_H */
