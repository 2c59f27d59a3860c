/*
 * lq_internal.h: what the files of libquant share and nobody else sees.
 */
#ifndef LQ_BUILDING
#error "lq_internal.h is internal to libquant"
#endif
#ifndef LQ_INTERNAL_H
#define LQ_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include "libquant.h"
#include "torch_norm.h"

#if defined(__GNUC__)
#define LQ_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LQ_PRINTF(f, a)
#endif

/* ----------------------------------------------------------------- float bits and flush-to-zero */

static inline uint32_t lq_f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static inline float lq_f32_from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* bitsandbytes is built with --use_fast_math, so its kernels flush subnormal operands and results to a
 * zero of the same sign (the .ftz instruction variants). These helpers reproduce that on the CPU. */
static inline float lq_ftz(float x)
{
	uint32_t u = lq_f32_bits(x);
	return (u & 0x7f800000u) == 0 ? lq_f32_from_bits(u & 0x80000000u) : x;
}

static inline float lq_mul_ftz(float a, float b)
{
	return lq_ftz(lq_ftz(a) * lq_ftz(b));
}

/* |x| with subnormals flushed, as fabsf() under fast math feeds the block maximum. */
static inline float lq_abs_ftz(float x)
{
	uint32_t u = lq_f32_bits(x) & 0x7fffffffu;
	return (u & 0x7f800000u) == 0 ? 0.0f : lq_f32_from_bits(u);
}

static inline bool lq_is_finite_bits(uint32_t u)
{
	return (u & 0x7f800000u) != 0x7f800000u;
}

/* ---------------------------------------------------------------------------- codebooks */

/* The GPU's rcp.approx.ftz.f32 for x >= 0, reproduced from a table generated on the GPU
 * (kernels/rcp_approx_gen.cu, libquant/data/). */
float lq_rcp_approx(float x);

/* Prepares the reciprocal table; lq_ctx_create calls it so that lq_rcp_approx never fails. */
lq_status lq_rcp_approx_init(void);

/* lq_rcp_approx's table once lq_rcp_approx_init has loaded it (NULL before or if it failed), for vector
 * kernels: the difference from 1.0f / (1 + m * 2^-23) plus one, for each 23-bit mantissa m, in bits
 * 2 (m % 4) .. 2 (m % 4) + 1 of byte m / 4; 2^21 bytes. */
const uint8_t *lq_rcp_approx_deltas(void);

/* NF4 decision thresholds (15, ascending) and the FP4 magnitude thresholds (7, ascending). */
extern const float lq_nf4_thresholds[15];
extern const float lq_fp4_thresholds_sorted[7];
/* FP4 magnitude code by the number of thresholds below |y| (0..7). */
extern const uint8_t lq_fp4_code_by_rank[8];

/* A 4-bit type: what quantizing to it and dequantizing from it needs. A new type is an entry of the table
 * in codebook.c (and its codes in the SIMD and CUDA kernels, which fall back to the reference). */
typedef struct lq_qtype_traits {
	const char *name;          /* "nf4": what bitsandbytes calls it (quant_type) */
	const float *code;         /* the 16 values, by code (lq_code_table) */
	const float *stored_map;   /* the 16 values as a checkpoint's quant_map stores them (lq_quant_map) */
	const float *thresholds;   /* the decision thresholds, ascending (NF4: of y; FP4: of |y|) */
	int nthresholds;
	uint8_t (*code_of)(float y); /* the code of y = x * (1/absmax), the reference's decision */
} lq_qtype_traits;

/* The traits of qtype; NULL for a value that names no type. */
const lq_qtype_traits *lq_qtype_info(lq_qtype qtype);

/* The 4-bit code of y = x * (1/absmax), exactly as bitsandbytes' dQuantizeNF4 / dQuantizeFP4. */
static inline uint8_t lq_nf4_code(float y)
{
	uint8_t c = 0;
	for (int i = 0; i < 15; i++)
		c += y > lq_nf4_thresholds[i];
	return c;
}

static inline uint8_t lq_fp4_code(float y)
{
	uint8_t sign = y < 0.0f ? 8 : 0;
	float a = y < 0.0f ? -y : y;
	uint8_t rank = 0;
	for (int i = 0; i < 7; i++)
		rank += a > lq_fp4_thresholds_sorted[i];
	return (uint8_t)(sign | lq_fp4_code_by_rank[rank]);
}

/* The 8-bit code of v in the dynamic map, as bitsandbytes' dQuantize<0>: a binary search from 127 and a
 * comparison with the midpoint to the neighbour on the side v lies. */
uint8_t lq_dynamic_code(float v);

/* The NF4 code and the dynamic map's code as lookup tables (step_cells.c): for y in [-1.0625, 1.03125]
 * (and NaN: cell 0, code 0), lq_nf4_code(y) == base[c] + (y >= first[c]) with c = lq_nf4_cell(y); for any
 * v but NaN, lq_dynamic_code(v) == base[c] + (v >= first[c]) with c = lq_dynamic_cell(v). first[c] is NaN
 * where the code does not change within cell c. The vector kernels compute the same cells. */
#define LQ_NF4_CELLS 32
#define LQ_DYNAMIC_CELLS 2818
typedef struct lq_step_table {
	int32_t base[LQ_DYNAMIC_CELLS];
	float first[LQ_DYNAMIC_CELLS];
	/* The dynamic table only, for one gather: base << 18 | s, where s is where the step lies among the
	 * cell's 2^17 floats (which share sign, exponent and six mantissa bits), counted from the end nearer
	 * zero for v >= 0 and from the far end for v < 0, 2^17 for none: the code is base + (t >= s) with t
	 * the low 17 bits of v's bits, inverted for v < 0. */
	uint32_t word[LQ_DYNAMIC_CELLS];
} lq_step_table;
uint32_t lq_nf4_cell(float y);
uint32_t lq_dynamic_cell(float v);
/* The tables, built on first use; NULL only if a cell would hold two steps (never, for these codes: the
 * unit tests check it), and then the callers use the reference. */
const lq_step_table *lq_nf4_steps(void);
const lq_step_table *lq_dynamic_steps(void);

/* ----------------------------------------------------------------------- reference kernels */

/* The plain C reference implementations: the oracle that the SIMD and CUDA versions are tested against.
 * Same contracts as the public calls, single-threaded, no context. */
lq_status lq_quantize_blocks_ref(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
				 int32_t blocksize, uint8_t *packed, float *absmax, int64_t *bad_index);
void lq_double_quant_ref(const float *absmax, int64_t nblocks, uint8_t *absmax_q, float *nested_absmax,
			 float *offset);
/* Double-quantizes nested block k (256 absmax values) once the offset is known. */
void lq_double_quant_block(const float *absmax, int64_t nblocks, float offset, int64_t k, uint8_t *absmax_q,
			   float *nested_absmax);
/* What the SIMD kernels of lq_double_quant_block share around their loops, given the bits of the largest
 * |absmax - offset| of whole nested block k: a NaN or infinity, a maximum of zero (flushed) or no step
 * table, and the reference codes the block here (NULL returned); else the block's nested absmax is stored,
 * *rcp set to its reciprocal (lq_rcp_approx) and the step table returned for the kernel's loop. */
const lq_step_table *lq_double_quant_block_begin(const float *absmax, int64_t nblocks, float offset, int64_t k,
						 uint32_t max_bits, uint8_t *absmax_q, float *nested_absmax, float *rcp);
void lq_dequantize_absmax_ref(const uint8_t *absmax_q, const float *nested_absmax, float offset,
			      int64_t nblocks, float *absmax);
void lq_dequantize_blocks_ref(const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
			      int32_t blocksize, lq_dtype dtype, void *out);

/* Loads element i of src as float32. */
/* bfloat16 <-> float32 inline, for the loops over every element (the public lq_bf16_to_f32 and
 * lq_f32_to_bf16 are these): round to nearest even; a NaN stays a quiet NaN, as torch converts it. */
static inline float lq_bf16_decode(uint16_t b)
{
	return lq_f32_from_bits((uint32_t)b << 16);
}

/* On a function of element-wise loops whose results do not depend on the instruction set (bit operations,
 * or float operations in the source's order, which -ffp-contract=off keeps): compiled for AVX-512 and AVX2
 * too, the processor's best chosen when the library loads. Only where the loops are the hot path of a
 * measured run (fidelity.c's sums, dtype.c's widening and rounding). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define LQ_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LQ_CLONES
#endif

static inline uint16_t lq_bf16_encode(float f)
{
	uint32_t u = lq_f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40);
	return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float lq_load_f32(const void *src, lq_dtype dtype, int64_t i)
{
	switch (dtype) {
	case LQ_DTYPE_F32: {
		float f;
		memcpy(&f, (const char *)src + 4 * i, 4);
		return f;
	}
	case LQ_DTYPE_F16: {
		uint16_t h;
		memcpy(&h, (const char *)src + 2 * i, 2);
		return lq_f16_to_f32(h);
	}
	case LQ_DTYPE_BF16: {
		uint16_t b;
		memcpy(&b, (const char *)src + 2 * i, 2);
		return lq_bf16_decode(b);
	}
	default:
		return 0.0f;
	}
}

/* Stores v as element i of dst (float32 → dtype, round to nearest even). */
static inline void lq_store_f32(void *dst, lq_dtype dtype, int64_t i, float v)
{
	uint16_t h;
	switch (dtype) {
	case LQ_DTYPE_F32:
		memcpy((char *)dst + 4 * i, &v, 4);
		break;
	case LQ_DTYPE_F16:
		h = lq_f32_to_f16(v);
		memcpy((char *)dst + 2 * i, &h, 2);
		break;
	case LQ_DTYPE_BF16:
		h = lq_bf16_encode(v);
		memcpy((char *)dst + 2 * i, &h, 2);
		break;
	default:
		break;
	}
}

/* float32 of v rounded to dtype: the value a tensor of that type would hold. */
static inline float lq_round_to(lq_dtype dtype, float v)
{
	switch (dtype) {
	case LQ_DTYPE_BF16:
		return lq_bf16_decode(lq_bf16_encode(v));
	case LQ_DTYPE_F16:
		return lq_f16_to_f32(lq_f32_to_f16(v));
	default:
		return v;
	}
}

/* The same for n consecutive elements, the type chosen once outside the loop so that it vectorizes. */
void lq_load_f32_n(const void *src, lq_dtype dtype, int64_t i0, int64_t n, float *dst);
void lq_store_f32_n(void *dst, lq_dtype dtype, int64_t i0, int64_t n, const float *src);
void lq_round_to_n(lq_dtype dtype, const float *src, int64_t n, float *dst); /* dst may be src */
/* The first of elements i0 .. i0 + n - 1 of src (F32, F16 or BF16) that is NaN or infinite, counted from
 * i0, or -1 when all are finite. */
int64_t lq_first_nonfinite(const void *src, lq_dtype dtype, int64_t i0, int64_t n);

/* ---------------------------------------------------------------------------- SIMD kernels */

/* A block range kernel: quantizes blocks [b0, b1) of a tensor of n elements (b0 * blocksize < n). Writes
 * packed bytes from b0 * blocksize / 2 and absmax from b0. Returns the first non-finite index or -1. */
typedef int64_t (*lq_quantize_range_fn)(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
					int32_t blocksize, int64_t b0, int64_t b1, uint8_t *packed, float *absmax);
typedef void (*lq_dequantize_range_fn)(const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
				       int32_t blocksize, int64_t b0, int64_t b1, lq_dtype dtype, void *out);

int64_t lq_quantize_range_scalar(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
				 int32_t blocksize, int64_t b0, int64_t b1, uint8_t *packed, float *absmax);
void lq_dequantize_range_scalar(const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
				int32_t blocksize, int64_t b0, int64_t b1, lq_dtype dtype, void *out);
#if defined(__x86_64__)
int64_t lq_quantize_range_avx2(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
			       int32_t blocksize, int64_t b0, int64_t b1, uint8_t *packed, float *absmax);
void lq_dequantize_range_avx2(const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
			      int32_t blocksize, int64_t b0, int64_t b1, lq_dtype dtype, void *out);
int64_t lq_quantize_range_avx512(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
				 int32_t blocksize, int64_t b0, int64_t b1, uint8_t *packed, float *absmax);
void lq_dequantize_range_avx512(const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
				int32_t blocksize, int64_t b0, int64_t b1, lq_dtype dtype, void *out);
/* lq_rcp_approx of x[0 .. n - 1] (each >= 0 and finite), as the AVX-512 quantize kernel computes it
 * sixteen at a time; for the tests. */
void lq_rcp_approx_avx512(const float *x, int64_t n, float *r);
void lq_double_quant_block_avx512(const float *absmax, int64_t nblocks, float offset, int64_t k, uint8_t *absmax_q,
				  float *nested_absmax);
void lq_double_quant_block_avx2(const float *absmax, int64_t nblocks, float offset, int64_t k, uint8_t *absmax_q,
				float *nested_absmax);
#endif

/* The delta rows row .. row + nrows - 1 (nrows <= LQ_MERGE_GROUP) of a LoRA, each by lq_lora_delta_row's
 * contract, into out[nrows][cols]; bt is B transposed ([rank, cols]), used by the transposed layout. Rows
 * go together so that each column of A (or of B transposed) is read from memory once for all of them
 * (the kernels tile them in registers, eight or four rows at a time). Results do not depend on it. */
#define LQ_MERGE_GROUP 16
typedef void (*lq_delta_rows_fn)(const lq_lora *lora, const float *a, const float *b, const float *bt, int64_t rows,
				 int64_t cols, int64_t row, int nrows, float *out);
#if defined(__x86_64__)
void lq_delta_rows_avx2(const lq_lora *lora, const float *a, const float *b, const float *bt, int64_t rows,
			int64_t cols, int64_t row, int nrows, float *out);
void lq_delta_rows_avx512(const lq_lora *lora, const float *a, const float *b, const float *bt, int64_t rows,
			  int64_t cols, int64_t row, int nrows, float *out);
#endif

/* ---------------------------------------------------------------------------- merge fidelity */

/* One side of the fidelity sums over a range of elements: values of dtype, or 4-bit codes (packed from
 * the range's first element, which starts a block) with their blocks' float32 scales, dequantized and
 * rounded to dtype as a merge reads them. */
typedef struct lq_fidelity_side {
	const void *values;
	const uint8_t *codes;
	const float *absmax;
	lq_qtype qtype;
	int32_t blocksize;
	lq_dtype dtype;
} lq_fidelity_side;

/* A range of a merge (fidelity.c): W the base as merged, y the float32 result; m the weight as written,
 * w16 the float base and wq its 4-bit form. The terms added: delta (elements, delta2: W and y), match
 * (dot, residual2: W, y and m), noise (noise2: w16 and wq). */
typedef struct lq_fidelity_range {
	lq_fidelity_side w, m, w16, wq;
	const float *y;
	bool delta, match, noise;
} lq_fidelity_range;

/* Adds the terms of n elements of r to s, piece by piece (libquant.h, lq_fidelity_sums): on the context's
 * pool, or with _here on the calling thread alone (the executor's measure thread, beside the pool's work);
 * the same bits either way. */
lq_status lq_fidelity_add(lq_ctx *ctx, const lq_fidelity_range *r, int64_t n, lq_fidelity_sums *s);
void lq_fidelity_add_here(const lq_ctx *ctx, const lq_fidelity_range *r, int64_t n, lq_fidelity_sums *s);
/* The terms of piece p alone (elements [p * LQ_STATS_PIECE, ...) of the n), into *out; its caller adds the
 * pieces in order (lq_fidelity_sums_add) and sets has_noise, as lq_fidelity_add does. */
void lq_fidelity_piece(const lq_ctx *ctx, const lq_fidelity_range *r, int64_t n, int64_t p, lq_fidelity_sums *out);

/* The fastest kernels this CPU runs, found once. */
typedef struct lq_cpu_kernels {
	const char *name;
	lq_quantize_range_fn quantize_range;
	lq_dequantize_range_fn dequantize_range;
	lq_delta_rows_fn delta_rows; /* NULL: the reference, lq_lora_delta_row for each row */
	/* lq_double_quant_block's work; NULL: that reference */
	void (*double_quant_block)(const float *absmax, int64_t nblocks, float offset, int64_t k, uint8_t *absmax_q,
				   float *nested_absmax);
} lq_cpu_kernels;

/* A merge of rows [row0, row0 + n) of a weight [rows, cols] held as float32 in w (merge.c). DoRA scales
 * V = W + D as PEFT does: by magnitude / norm per row for LQ_LORA_ROWS (DoraLinearVariant: the norms of
 * V's rows, each found as the row is merged), per column for LQ_LORA_TRANSPOSED (DoraEmbeddingVariant,
 * and a Conv1D's DoraLinearVariant with fan_in_fan_out: PEFT norms the transposed weight, so the
 * columns of V; found over every row before the merge, lq_merge_sum_rows). The norms are float32 sums
 * in the order of torch.linalg.norm on CUDA (torch_norm.h). */
typedef struct lq_merge_job {
	const lq_cpu_kernels *kernels;
	float *w;
	int64_t row0, rows, cols;
	lq_dtype dtype;          /* W's type: W is rounded to it after each adapter */
	const lq_lora *loras;
	size_t nloras;
	float *const *a, *const *b, *const *bt; /* per lora, float32 */
	float *const *magnitude;                /* per lora: DoRA's magnitudes of the rows [rows], or NULL */
	float *const *col_factor;               /* per lora: DoRA's factors of the columns [cols], or NULL */
	const lq_torch_norm_plan *row_plan;     /* the order of the row norms (inner, [rows, cols]) */
	bool keep_last_unrounded;               /* the last sum stays float32 (a requantization follows) */
	const int32_t *replace_of;              /* per row of W: the replacement row taking its place, or -1 */
	const float *replace;                   /* the replacement rows, float32 already rounded to W's type */
	/* CPU only, optional: called on a pool thread as soon as the rows of elements [e0, e1) of this job are
	 * merged (and, with keep_last_unrounded, still float32 in w), while they are in cache; the rows each
	 * call covers a multiple of rows_align where that leaves every thread work */
	void (*rows_merged)(void *arg, int64_t e0, int64_t e1);
	void *rows_merged_arg;
	int64_t rows_align;
} lq_merge_job;

/* Merges rows [r0, r1) in place; d is scratch for LQ_MERGE_GROUP rows (LQ_MERGE_GROUP * cols floats). */
void lq_merge_rows(const lq_merge_job *job, int64_t r0, int64_t r1, float *d);

/* For the norms of DoRA's columns: rows [r0, r1) of w become V = W + D of lora l (D rounded first when
 * the lora says so), W being what the loras before l made of them (lq_merge_rows with nloras = l). d as
 * for lq_merge_rows. */
void lq_merge_sum_rows(const lq_merge_job *job, size_t l, int64_t r0, int64_t r1, float *d);

/* Rows [r0, r1) of a merge's base into v, as float32 rounded to W's type (replaced rows in place). */
typedef lq_status (*lq_rows_fn)(void *arg, int64_t r0, int64_t r1, float *v);

/* DoRA on columns (dora.c): factors[j] = magnitude[j] / the norm of column j of V = W + D of lora l (job's
 * LQ_LORA_TRANSPOSED lora with magnitudes [cols]) over every row, in the order of torch.linalg.norm on
 * CUDA, W being what job's loras before l make of the rows base_rows gives; group_rows rows at a time in
 * v (group_rows * cols floats). job->col_factor of the loras before l must be known. The context's pool
 * does the work; the result does not depend on the thread count. */
lq_status lq_dora_column_factors(lq_ctx *ctx, const lq_merge_job *job, size_t l, const float *magnitude,
				 lq_rows_fn base_rows, void *base_arg, int64_t group_rows, float *v, float *factors);
/* The kernels of `path`: the fastest this CPU runs for LQ_CPU_BEST, the reference for LQ_CPU_SCALAR, an
 * instruction set's; NULL when this CPU does not run them (lq_cpu_path_supported). */
const lq_cpu_kernels *lq_cpu_kernels_for(lq_cpu_path path);

/* ------------------------------------------------------------------------------- thread pool */

typedef struct lq_pool lq_pool;

/* A pool of `threads` - 1 workers; the caller of lq_pool_run is the last one. */
lq_pool *lq_pool_create(int threads);
void lq_pool_free(lq_pool *pool);
int lq_pool_threads(const lq_pool *pool);

/* Runs fn(arg, i) for every i in [0, nitems), spread over the pool, and returns when all are done. Work
 * items must be independent; which thread runs which item varies, so results must not depend on it. */
void lq_pool_run(lq_pool *pool, int64_t nitems, void (*fn)(void *arg, int64_t i), void *arg);

/* ------------------------------------------------------------------------------------ context */

#define LQ_ERRBUF 1024
#define LQ_MAX_GPUS 16

/* The compute steps a unit test can make fail (lq_test_fail_step), as a GPU failure would: block
 * quantization (also a requantization's), double quantization, the GPU merge, the dequantization of a
 * 4-bit base. */
typedef enum lq_test_step {
	LQ_TEST_STEP_NONE = 0,
	LQ_TEST_STEP_QUANTIZE,
	LQ_TEST_STEP_DOUBLE_QUANT,
	LQ_TEST_STEP_MERGE,
	LQ_TEST_STEP_DEQUANTIZE,
} lq_test_step;

/* ------------------------------------------------------------------------------ backends */

/*
 * A compute backend: what the tensor-sized steps run on. The CPU backend (backend_cpu.c) has every op; a
 * GPU backend, registered in backend.c (the one place that knows which backends a build has), has those it
 * has, NULL for the others, whose CPU versions then run. Every backend gives the CPU's bytes. The ops take
 * the context, whose backend_self is the backend's own state (its devices).
 */
typedef struct lq_backend {
	const char *name;
	/* Opens device `index`, or every device (all), into *self; the note names it ("cuda:0 (NVIDIA H200)").
	 * A failure's message (msg) says why, starting "no GPU" when there is none at all. */
	lq_status (*open)(int index, bool all, void **self, char *note, size_t note_size, char *msg, size_t msg_size);
	void (*close)(void *self);
	/* lq_quantize_blocks's work: LQ_ERR_NONFINITE, with no message, and the smallest such index in
	 * *bad_index, for an element that is not finite */
	lq_status (*quantize)(lq_ctx *ctx, const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype, int32_t blocksize,
			      uint8_t *packed, float *absmax, int64_t *bad_index);
	lq_status (*dequantize)(lq_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
				int32_t blocksize, lq_dtype dtype, void *out);
	/* the 8-bit codes and nested absmax of a double quantization whose offset is known */
	lq_status (*double_quant_codes)(lq_ctx *ctx, const float *absmax, int64_t nblocks, float offset, uint8_t *absmax_q,
					float *nested_absmax);
	/* Whether merge_rows takes job (a GPU takes neither bias vectors nor replaced rows, ranks up to 1024,
	 * 16 adapters); and the merge of job's rows [job->row0, job->row0 + nrows) from `in` (rows of
	 * in_dtype) or from 4-bit codes (packed, with the rows' blocks' float32 absmax), into out as out_dtype
	 * (float32 when job->keep_last_unrounded); job->w is scratch for the rows as float32. `key` names the
	 * task: a GPU uploads its adapters once. LQ_ERR_NONFINITE, with no message, when an element of out is
	 * NaN or infinite: the smallest such index (of the rows') in *bad_index. */
	bool (*merge_suits)(const lq_ctx *ctx, const struct lq_merge_job *job);
	lq_status (*merge_rows)(lq_ctx *ctx, const struct lq_merge_job *job, uint64_t key, int64_t nrows, const void *in,
				lq_dtype in_dtype, const uint8_t *packed, const float *absmax, lq_qtype qtype,
				int32_t blocksize, void *out, lq_dtype out_dtype, int64_t *bad_index);
	/* the sums of each LQ_STATS_PIECE-element piece of x against ref (stats.c's lq_error_piece for each) */
	lq_status (*error_pieces)(lq_ctx *ctx, const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype,
				  int64_t n, int64_t first, lq_error_sums *pieces);
	/* lq_svd_truncate's factorization (svd.c checks the arguments, and normalizes the signs and clamps
	 * after): the rank-`rank` factors b = U S, a = Vh and s = S (s may be NULL) of m (rows x cols,
	 * row-major, finite, rows * cols <= INT_MAX), each rounded once to float32 from double precision.
	 * NULL in the CPU backend: svd.c's LAPACK. LQ_ERR_UNSUPPORTED, with a message, when the backend
	 * cannot do it (a GPU without cuSOLVER's library): svd.c's LAPACK then does it. */
	lq_status (*svd_truncate)(lq_ctx *ctx, const float *m, int64_t rows, int64_t cols, int64_t rank, float *b,
				  float *a, float *s);
	/* lq_svd_thin's factorization (svd.c checks the arguments): the whole thin SVD of m (rows x cols,
	 * row-major, double, finite; overwritten) into s (all k) and the keep leading columns of U and rows of
	 * Vt (u [rows x keep], vt [keep x cols]). NULL in the CPU backend: svd.c's LAPACK.
	 * LQ_ERR_UNSUPPORTED, with a message, when the backend cannot do it (a GPU without cuSOLVER's library):
	 * the caller chose this device, and is told so (svd.c does not fall back to LAPACK). */
	lq_status (*svd_thin)(lq_ctx *ctx, double *m, int64_t rows, int64_t cols, int64_t keep, double *s, double *u,
			      double *vt);
	/* staging memory for the executor (pinned on a GPU: transfers at full speed) */
	void *(*host_alloc)(const lq_ctx *ctx, size_t size);
	void (*host_free)(const lq_ctx *ctx, void *p);
} lq_backend;

extern const lq_backend lq_backend_cpu;
extern const lq_backend lq_backend_cuda; /* backend_cuda.c, in builds with CUDA only (backend.c's table) */

/* The backend that runs `op` for ctx: its own, or the CPU's where it lacks it. */
#define LQ_BACKEND(ctx, op) ((ctx)->backend->op ? (ctx)->backend : &lq_backend_cpu)

/* Whether the context computes on a GPU backend. */
static inline bool lq_backend_gpu(const lq_ctx *ctx);

/* Closes the context's GPU backend, if any: it computes on the CPU from then on. */
void lq_backend_close(lq_ctx *ctx);

/* The sums of one piece, elements [i0, i0 + n) of x and ref, in element order (stats.c). */
void lq_error_piece(const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype, int64_t i0, int64_t n,
		    int64_t first, lq_error_sums *s);

/* Large buffers kept from one task for the next (reuse.c): take one of at least `bytes` (the smallest kept
 * one that holds them, or a fresh one), its size in
 * *capacity; give it back with that capacity when done (kept if it is among the LQ_REUSE_SLOTS largest,
 * else freed). Thread-safe. Five: a measured requantization holds four of a weight's (its results, codes,
 * the base read whole and the base's codes) while the reader takes the next weight's whole. */
#define LQ_REUSE_SLOTS 5
typedef struct lq_reuse {
	pthread_mutex_t lock;
	void *buf[LQ_REUSE_SLOTS];
	size_t size[LQ_REUSE_SLOTS];
} lq_reuse;

void *lq_reuse_take(lq_reuse *r, size_t bytes, size_t *capacity);
void lq_reuse_give(lq_reuse *r, void *p, size_t bytes);
void lq_reuse_init(lq_reuse *r);
void lq_reuse_free(lq_reuse *r);

struct lq_ctx {
	lq_pool *pool;
	const lq_cpu_kernels *cpu;
	const lq_backend *backend; /* &lq_backend_cpu, or a GPU backend (backend.c) */
	void *backend_self;        /* the GPU backend's own state */
	char device_note[256];
	lq_work work;              /* lq_ctx_set_work: the run, for "auto" */
	bool work_set;
	char device_why[512];      /* lq_ctx_device_why */
	char err[LQ_ERRBUF];
	lq_reuse reuse;          /* buffers of whole weights, from one task to the next */
	lq_test_step test_step;  /* tests only: the step that fails, with this status and message */
	lq_status test_status;
	char test_message[256];
};

static inline bool lq_backend_gpu(const lq_ctx *ctx)
{
	return ctx->backend != &lq_backend_cpu;
}

/* Sets the context's message (printf-style) and returns `status`, for `return lq_fail(ctx, ...)`. The
 * context's current message may be one of the arguments. */
lq_status lq_fail(lq_ctx *ctx, lq_status status, const char *fmt, ...) LQ_PRINTF(3, 4);
void lq_clear_error(lq_ctx *ctx);

/* The one prefixer of a tensor's messages: "origin: tensor 'name': detail" (origin may be NULL), the detail
 * printf-style. Returns status. */
lq_status lq_fail_tensor(lq_ctx *ctx, lq_status status, const char *origin, const char *name, const char *fmt, ...)
	LQ_PRINTF(5, 6);

/* Prefixes the context's message (the detail a failed call left, or the status's text when there is
 * none) with where it happened: "origin: tensor 'name': detail" (origin may be NULL). Returns status. */
lq_status lq_fail_task(lq_ctx *ctx, lq_status status, const char *origin, const char *name);

/* For the unit tests only, never called by the library or the tools: from now on every call of `step` in
 * this context fails with `status` and `message` as its own message (LQ_TEST_STEP_NONE: none fails). */
void lq_test_fail_step(lq_ctx *ctx, lq_test_step step, lq_status status, const char *message);
/* Called by each step first: the injected failure (message set), or LQ_OK. */
lq_status lq_test_injected(lq_ctx *ctx, lq_test_step step);

/* Formats element index i of a tensor of the given shape as "[3, 7]" into buf. */
void lq_format_index(char *buf, size_t size, const int64_t *shape, int ndim, int64_t i);

#endif /* LQ_INTERNAL_H */
