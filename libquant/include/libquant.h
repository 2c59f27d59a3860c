/*
 * libquant.h: blockwise 4-bit quantization exactly as bitsandbytes computes it on CUDA, and the streaming
 * executor that the toolchain's programs are built on.
 *
 * libquant knows nothing of files: callers hand it memory, or a source and a sink (small function tables)
 * that the executor pulls input bytes from and pushes output bytes to. Every fallible call returns an
 * lq_status; the detail (which tensor, which element) is kept in the lq_ctx and read with
 * lq_ctx_error_string(). The library never prints, exits or aborts on bad input.
 *
 * Thread safety: one lq_ctx is used by one thread at a time; separate contexts are independent.
 */
#ifndef LIBQUANT_H
#define LIBQUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lq_errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version, in one place: the Makefile reads it from here. */
#define LQ_VERSION_MAJOR 0
#define LQ_VERSION_MINOR 1
#define LQ_VERSION_PATCH 0
#define LQ_STRINGIFY_(x) #x
#define LQ_STRINGIFY(x) LQ_STRINGIFY_(x)
#define LQ_VERSION_STRING                                                                                  \
	LQ_STRINGIFY(LQ_VERSION_MAJOR) "." LQ_STRINGIFY(LQ_VERSION_MINOR) "." LQ_STRINGIFY(LQ_VERSION_PATCH)

/* "0.1.0", the version of the library actually linked. */
LQ_API const char *lq_version_string(void);

/* ------------------------------------------------------------------------------------------ dtypes */

/* The element types libquant computes on. Values frozen. */
typedef enum lq_dtype {
	LQ_DTYPE_F32 = 0,
	LQ_DTYPE_F16 = 1,
	LQ_DTYPE_BF16 = 2,
	LQ_DTYPE_U8 = 3,
} lq_dtype;

/* Bytes per element (4, 2, 2, 1); 0 for a value outside the enum. */
LQ_API size_t lq_dtype_size(lq_dtype dtype);

/* "float32", "float16", "bfloat16", "uint8": the torch names that bitsandbytes records. */
LQ_API const char *lq_dtype_torch_name(lq_dtype dtype);

/* IEEE binary16 and bfloat16 conversions. To-narrow conversions round to nearest even and keep NaN a
 * NaN; the widening ones are exact. */
LQ_API float lq_f16_to_f32(uint16_t h);
LQ_API float lq_bf16_to_f32(uint16_t b);
LQ_API uint16_t lq_f32_to_f16(float f);
LQ_API uint16_t lq_f32_to_bf16(float f);

/* ------------------------------------------------------------------------------------ quantization */

typedef enum lq_qtype {
	LQ_QTYPE_NF4 = 0,
	LQ_QTYPE_FP4 = 1,
} lq_qtype;

/* "nf4" or "fp4" ("?" for a value outside the enum). */
LQ_API const char *lq_qtype_name(lq_qtype qtype);

/* The type named "nf4" or "fp4" into *qtype; false for any other name. */
LQ_API bool lq_qtype_parse(const char *name, lq_qtype *qtype);

/* The 16 values the 4-bit codes dequantize to, index = code (FP4's code 8 is -0.0, as the CUDA kernel
 * computes it); NULL for a value outside the enum. */
LQ_API const float *lq_code_table(lq_qtype qtype);

/* The 16 values as bitsandbytes stores them in a checkpoint's `quant_map` (get_4bit_type): the same but
 * for FP4's index 8, stored as +0.0; NULL for a value outside the enum. */
LQ_API const float *lq_quant_map(lq_qtype qtype);

/* The 256 values of bitsandbytes' signed dynamic 8-bit map (`nested_quant_map`). */
LQ_API const float *lq_dynamic_map(void);

#define LQ_BLOCKSIZE_MIN 32
#define LQ_BLOCKSIZE_MAX 4096
#define LQ_NESTED_BLOCKSIZE 256

/* True for the block sizes bitsandbytes accepts: powers of two from 32 to 4096. */
LQ_API bool lq_blocksize_valid(int64_t blocksize);

typedef struct lq_quant_params {
	lq_qtype qtype;
	int32_t blocksize;
	bool double_quant; /* quantize the block absmax to 8 bits in blocks of 256 */
} lq_quant_params;

/* Sizes of the parts of a quantized tensor of n elements (n >= 0). */
LQ_API int64_t lq_quant_nblocks(int64_t n, int32_t blocksize);  /* ceil(n / blocksize) */
LQ_API int64_t lq_quant_packed_bytes(int64_t n);                /* ceil(n / 2) */
LQ_API int64_t lq_quant_nested_blocks(int64_t nblocks);         /* ceil(nblocks / 256) */

/* Bits per parameter of the codes and constants, without the per-tensor fixed part:
 * 4 + 32/blocksize, or 4 + 8/blocksize + 32/(256*blocksize) with double quantization. */
LQ_API double lq_quant_bits_per_param(const lq_quant_params *params);

/* ------------------------------------------------------------------------------------------ context */

typedef struct lq_ctx lq_ctx;

/* Which CPU kernels a context computes with: the fastest this CPU runs, the plain C reference
 * implementation (the oracle the others are tested against), or one instruction set's. Every path gives
 * the same bytes; they differ in speed only. */
typedef enum lq_cpu_path {
	LQ_CPU_BEST = 0,
	LQ_CPU_SCALAR = 1,
	LQ_CPU_AVX2 = 2,   /* AVX2 and F16C (the merge with FMA too, where the CPU has it) */
	LQ_CPU_AVX512 = 3, /* AVX-512 F, BW, VL and DQ */
} lq_cpu_path;

/* Whether this CPU runs the kernels of `path` (LQ_CPU_BEST and LQ_CPU_SCALAR: always; a value that names
 * no path: false). */
LQ_API bool lq_cpu_path_supported(lq_cpu_path path);

/* The path named `name`: "scalar", "avx2" or "avx512" (the names of LQ_CPU in the tools' environment).
 * Returns LQ_ERR_ARG for any other name, *path untouched. */
LQ_API lq_status lq_cpu_path_from_name(const char *name, lq_cpu_path *path);

typedef struct lq_ctx_options {
	int threads;     /* CPU threads for compute; 0 = one per online core */
	lq_cpu_path cpu; /* the CPU kernels (LQ_CPU_BEST by default) */
} lq_ctx_options;

/* A context with its own thread pool. options may be NULL (defaults). Returns NULL only when memory or
 * threads cannot be had, or when options->cpu names kernels this CPU does not run (never a silent
 * fallback: check lq_cpu_path_supported first to tell the two apart). */
LQ_API lq_ctx *lq_ctx_create(const lq_ctx_options *options);
LQ_API void lq_ctx_free(lq_ctx *ctx); /* NULL is a no-op */

/* The message of the last failure in this context ("tensor 'x': element [3, 7] is NaN"), or "" when
 * the last call succeeded. Owned by the context, valid until its next call. */
LQ_API const char *lq_ctx_error_string(const lq_ctx *ctx);

/* The number of compute threads the context uses. */
LQ_API int lq_ctx_threads(const lq_ctx *ctx);

/* What a run will do, told before it starts (lq_ctx_set_work), so that "auto" can weigh the CPU against a
 * GPU: the bytes it reads and writes, where the output goes, and the elements each operation touches. */
typedef struct lq_work {
	uint64_t bytes_in;       /* bytes the run reads */
	uint64_t bytes_out;      /* bytes it writes */
	bool out_synced;         /* the output goes to a disk and is synced; false: a pipe, or nothing written */
	int64_t quantized;       /* elements quantized to 4 bits */
	int64_t dequantized;     /* elements dequantized from 4 bits */
	int64_t compared;        /* elements compared (error sums) */
	int64_t merged;          /* elements a LoRA delta is added to */
	int64_t merge_rank_sum;  /* the sum over merged elements of their adapters' total rank (about 4 flops each) */
} lq_work;

/* The estimates behind a choice, in seconds: reading and writing alone, the run on the CPU's threads, and
 * on a GPU with its start. */
typedef struct lq_device_estimate {
	double io_s, cpu_s, gpu_s;
} lq_device_estimate;

/* The cost model of "auto" (libquant/device_auto.c): true when a GPU is estimated to finish `work` clearly
 * sooner than `threads` CPU threads. The estimates go to *est and a line that says why ("16 cores, 3.1 GB
 * of one-pass work: the GPU's start would cost more than it saves; ...") to why (both may be NULL). */
LQ_API bool lq_device_auto_prefers_gpu(const lq_work *work, int threads, lq_device_estimate *est, char *why,
				       size_t len);

/* Describes the run for "auto" (copied; NULL forgets it). Without a description "auto" takes a GPU when
 * one works. */
LQ_API void lq_ctx_set_work(lq_ctx *ctx, const lq_work *work);

/* Chooses where the context computes: "cpu"; "cuda" or "cuda:N" (one GPU); "all" (every GPU, tensors
 * split between them); "auto" or NULL: with a described run (lq_ctx_set_work), the device the cost model
 * estimates faster, else the first GPU that works; the CPU when no GPU works. A new context computes
 * on the CPU. The bytes computed are the same everywhere.
 * Returns LQ_ERR_DEVICE (with the CUDA error) when the GPU asked for cannot be used; "auto" never fails
 * for want of a GPU, and lq_ctx_device_note() says what it chose and why. LQ_ERR_ARG for an unknown name. */
LQ_API lq_status lq_ctx_use_device(lq_ctx *ctx, const char *device);

/* What the context computes on and, after "auto" fell back to the CPU, why ("cuda:0 (NVIDIA H200)",
 * "CPU: no usable GPU (no CUDA device: ...)"). */
LQ_API const char *lq_ctx_device_note(const lq_ctx *ctx);

/* After "auto": what it chose and why, as "cpu (16 cores, 3.1 GB of one-pass work: ...)" or
 * "cuda:0 (NVIDIA H200) (2 cores, ...)"; "" after any other choice. */
LQ_API const char *lq_ctx_device_why(const lq_ctx *ctx);

/* Name of the compute backend in use ("cpu-avx2", "cpu-scalar", "cuda:0 (NVIDIA H200)", ...). */
LQ_API const char *lq_ctx_backend_name(const lq_ctx *ctx);

/* --------------------------------------------------------------------- in-memory operations */

/*
 * Quantizes n elements of `src` (dtype F32, F16 or BF16) in blocks of `blocksize`: writes the packed codes
 * (element 2k in the high nibble of byte k, ceil(n/2) bytes) and the float32 absmax of each block
 * (ceil(n/blocksize) floats). Bit-identical to bitsandbytes' CUDA kQuantizeBlockwise, on any thread count.
 *
 * Returns LQ_ERR_NONFINITE when an element is NaN or infinite, with the smallest such index in
 * *bad_index (when bad_index is not NULL) and nothing useful in the outputs; LQ_ERR_ARG for a bad dtype or
 * blocksize.
 */
LQ_API lq_status lq_quantize_blocks(lq_ctx *ctx, const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
			     int32_t blocksize, uint8_t *packed, float *absmax, int64_t *bad_index);

/*
 * Double quantization of nblocks >= 1 absmax values: *offset is their mean as bitsandbytes computes it,
 * absmax_q the 8-bit codes of (absmax - offset) in blocks of 256 (nblocks bytes), nested_absmax the
 * float32 absmax of each block of 256 (ceil(nblocks/256) floats).
 */
LQ_API lq_status lq_double_quant(lq_ctx *ctx, const float *absmax, int64_t nblocks, uint8_t *absmax_q,
			  float *nested_absmax, float *offset);

/* The inverse of lq_double_quant: absmax[j] = float32(float32(map8[q[j]] * nested_absmax[j / 256]) + offset). */
LQ_API lq_status lq_dequantize_absmax(lq_ctx *ctx, const uint8_t *absmax_q, const float *nested_absmax,
			       float offset, int64_t nblocks, float *absmax);

/* out[i] = dtype(code[nibble i] * absmax[i / blocksize]) for i < n, dtype F32, F16 or BF16. */
LQ_API lq_status lq_dequantize_blocks(lq_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n,
			       lq_qtype qtype, int32_t blocksize, lq_dtype dtype, void *out);

/* ---------------------------------------------------------------------------- error statistics */

/*
 * How far x is from a reference, as sums in double precision over the elements that are finite in both.
 * They are added piece by piece: LQ_STATS_PIECE elements from the start of each call, each piece summed
 * in element order, the pieces' sums added in order, so that every backend and thread count gives the
 * same bits for the same calls.
 */
#define LQ_STATS_PIECE 4096

typedef struct lq_error_sums {
	uint64_t elements;         /* finite in both */
	uint64_t nonfinite;        /* NaN or infinite in either: not in the sums */
	uint64_t differ;           /* whose float32 bit patterns differ (non-finite ones included) */
	double sum_err2;           /* sum of (x - ref)^2 */
	double sum_ref2, sum_x2;   /* sums of ref^2 and x^2 */
	double dot;                /* sum of x * ref */
	double max_abs_err;        /* the largest |x - ref| */
	int64_t max_abs_err_index; /* its element index (the first of equals), -1 when there is none */
} lq_error_sums;

LQ_API void lq_error_sums_init(lq_error_sums *s);

/* Adds x[0..n) against ref[0..n) (each of type F32, F16 or BF16, read as their exact float32 values),
 * elements first..first+n-1 of the tensor (for max_abs_err_index). */
LQ_API lq_status lq_error_sums_add(lq_ctx *ctx, const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype,
			    int64_t n, int64_t first, lq_error_sums *s);

/* Adds b's sums to a's, as if b's elements came after a's. */
LQ_API void lq_error_sums_merge(lq_error_sums *a, const lq_error_sums *b);

/* ------------------------------------------------------------------------- the streaming executor */

/*
 * A conversion is a list of tasks. Each task reads one input tensor from the source and writes one or
 * more output tensors to the sink. Tasks run in list order, each input byte is read once and each output
 * byte written once, at most a few chunks of a few MiB are in memory at a time, and reads, compute and
 * writes overlap. Output is identical whatever the thread count.
 */

typedef enum lq_op {
	LQ_OP_COPY = 0,      /* input bytes to out_data unchanged */
	LQ_OP_QUANTIZE4 = 1, /* a float tensor to a 4-bit group (lq_quantize4_args) */
	LQ_OP_MERGE = 2,     /* a weight plus LoRA deltas: a float tensor, or a 4-bit group (lq_merge_args) */
	LQ_OP_COMPARE = 3,   /* error sums of a tensor against a reference, into the result (lq_compare_args) */
} lq_op;

#define LQ_MAX_DIMS 8

/*
 * One LoRA update of a 2-D weight W [rows, cols], as PEFT's merge computes it: A and B upcast to float32,
 * delta[i][j] = sum over k in order of B * A, accumulated with fused multiply-adds, times scaling; then
 * W = dtype(float(W) + delta). With LQ_LORA_ROWS, delta = B @ A (A [rank, cols], B [rows, rank]); with
 * LQ_LORA_TRANSPOSED, delta = (B @ A)^T (A [rank, rows], B [cols, rank]): GPT-2 Conv1D weights and
 * embeddings.
 */
typedef enum lq_lora_layout {
	LQ_LORA_ROWS = 0,
	LQ_LORA_TRANSPOSED = 1,
	/* LoRA's own bias (lora_bias: lora_B.bias) added to the base's bias [cols]: delta[j] = A[j] * scaling,
	 * with A the vector [cols] (rank 1; B unused, b_input -1) */
	LQ_LORA_VECTOR = 2,
} lq_lora_layout;

typedef struct lq_lora {
	lq_lora_layout layout;
	int32_t rank;
	float scaling;
	bool round_delta;        /* embeddings: delta rounded to W's type before the addition (W += D.to(W.dtype)) */
	lq_dtype ab_dtype;       /* type of A and B */
	int32_t a_input;         /* the source's ids of A, B, and DoRA's magnitude [rows] (float32, or -1) */
	int32_t b_input;
	int32_t magnitude_input;
} lq_lora;

/* The dot products of one delta row, exactly as every backend computes them: out[j] = fma-accumulated
 * sum over k of b_row[k] * a_col(j)[k] times scaling (for tests and for tools that merge in memory).
 * a and b are float32 in the layout of the lora; row is the weight's row. */
LQ_API void lq_lora_delta_row(const lq_lora *lora, const float *a, const float *b, int64_t rows, int64_t cols, int64_t row,
		       float *out);

/*
 * How an op reads a tensor: elements of `dtype`; or a bitsandbytes 4-bit group whose packed codes are the
 * input and whose constants are side inputs, dequantized exactly to `dtype` (what transformers computes
 * with); or, as_4bit, elements of `dtype` read as their 4-bit quantize-dequantize with `quant` (what
 * loading them in 4 bits gives).
 */
typedef struct lq_tensor_in {
	lq_dtype dtype;         /* F32, F16 or BF16: the elements', or those a 4-bit group dequantizes to */
	bool quantized;         /* a 4-bit group: */
	bool as_4bit;           /* (or elements quantized first, MERGE only) */
	lq_quant_params quant;
	float offset;           /* with double quantization: the offset of the absmax (nested_offset) */
	int32_t absmax_input;   /* the source's id of the absmax: float32 [nblocks], or uint8 codes with double
				 * quantization */
	int32_t nested_input;   /* with double quantization, the float32 absmax of the codes [nested blocks] */
} lq_tensor_in;

/* Where an op writes a 4-bit group: the packed codes to the task's out_data, the constants to these (the
 * sink's ids; out_nested_absmax -1 without double quantization). */
typedef struct lq_group_out {
	lq_quant_params quant;
	int32_t out_absmax;        /* float32 absmax, or uint8 codes with double quantization */
	int32_t out_nested_absmax; /* float32 absmax of the codes, with double quantization */
} lq_group_out;

/* QUANTIZE4: the input's elements (of `dtype`, F32, F16 or BF16) quantized in blocks, as bitsandbytes'
 * quantize_4bit; the double-quantization offset comes back in the result. */
typedef struct lq_quantize4_args {
	lq_dtype dtype;
	lq_group_out out;
} lq_quantize4_args;

/* MERGE: the input is W [rows, cols] as `base` reads it. The loras apply in order, W rounded to base.dtype
 * after each; the result goes to out_data as out_dtype or, with requantize, as a 4-bit group (requant) of
 * the last float32 sum, unrounded, as PEFT's 4-bit merge does. */
typedef struct lq_merge_args {
	int64_t rows, cols;
	lq_tensor_in base;
	const lq_lora *loras;
	size_t nloras;
	/* rows of W replaced before the loras apply (PEFT's trainable tokens: index_copy of the delta rows
	 * cast to W's type): row replace_rows[i] becomes row i of input replace_input, [nreplace, cols] of
	 * replace_dtype. A row listed twice takes its last. */
	const int64_t *replace_rows;
	size_t nreplace;
	int32_t replace_input;
	lq_dtype replace_dtype;
	bool requantize;
	lq_group_out requant;
	lq_dtype out_dtype;
	/* The merge's fidelity figures into the result (lq_fidelity_sums); with measure_4bit, a float base
	 * merged as it is is also quantized (base.quant) to measure what its 4-bit form would lose (read whole,
	 * as as_4bit reads it). Neither changes a byte of the output. */
	bool fidelity;
	bool measure_4bit;
	/* With fidelity: M is this tensor (a merge already made, read whole: input measured_input, as `measured`
	 * reads it, a 4-bit group dequantized to base.dtype), not the merge's own output, which should then go
	 * nowhere (out_data -1, requantize false). */
	bool measure_given;
	int32_t measured_input;
	lq_tensor_in measured;
} lq_merge_args;

/* COMPARE: the input (x, n elements as `x` reads them) against the reference (input ref_input, n elements
 * as `ref` reads them), streamed together; no output. The sums come back in the result. With ref_input
 * -1, only what x itself tells (a 4-bit x's codes and scales). */
typedef struct lq_compare_args {
	int64_t n;
	lq_tensor_in x;
	int32_t ref_input;
	lq_tensor_in ref;
} lq_compare_args;

typedef struct lq_task {
	lq_op op;
	const char *name;    /* the tensor's name, for messages */
	const char *origin;  /* the file it comes from, for messages; may be NULL */
	int32_t input;       /* the source's id for the input tensor */
	uint64_t nbytes;     /* input size in bytes */
	int ndim;            /* shape, for messages that say where an element is */
	int64_t shape[LQ_MAX_DIMS];
	int32_t out_data;    /* the sink's id of the output tensor, -1 for none */
	void *user;          /* the caller's, untouched: the sink's task_done finds its own record by it */
	union {              /* the op's own arguments */
		lq_quantize4_args quantize4;
		lq_merge_args merge;
		lq_compare_args compare;
	};
} lq_task;

/*
 * What a merge keeps of its adapters (lq_merge_args.fidelity), as sums in double precision over the weight's
 * elements, added piece by piece (LQ_STATS_PIECE elements from the start of each chunk, each in eight lanes
 * of every eighth element, the chunks in order)
 * so that every backend and thread count gives the same bits. With W the base as the merge reads it (a
 * 4-bit base dequantized to its type, or a float base's 4-bit quantize-dequantize with as_4bit: Wq; else the
 * float base), Y the merge's float32 result before it is rounded or quantized again, D = Y - W (the change
 * the merge made: s.B.A up to the float32 rounding of the sum; DoRA's whole change), M the weight as the
 * output holds it (dequantized to the base's type when requantized), W16 the float base when there is one:
 */
typedef struct lq_fidelity_sums {
	uint64_t elements;
	double delta2;     /* sum of D^2 */
	double dot;        /* sum of (M - W) * D */
	double residual2;  /* sum of (M - Y)^2 */
	bool has_noise;    /* W16 and its 4-bit form Wq are both known (as_4bit, measure_4bit): */
	double noise2;     /* sum of (W16 - Wq)^2 */
} lq_fidelity_sums;

/* Adds b's sums to a's (a range's after the ranges before it, a module's into its layer's): plain
 * additions, so the order of the calls is the order of the sums. */
LQ_API void lq_fidelity_sums_add(lq_fidelity_sums *a, const lq_fidelity_sums *b);

/* What a task computed beyond its outputs' bytes, handed to the sink's task_done. */
typedef struct lq_task_result {
	float nested_offset;       /* a 4-bit output with double quantization (QUANTIZE4, MERGE requantized) */
	lq_fidelity_sums fidelity; /* MERGE with fidelity */
	/* COMPARE: */
	lq_error_sums sums;        /* the error sums of x against the reference (lq_error_sums_add, in order) */
	uint64_t nonfinite_x;      /* elements that are NaN or infinite in x, and in the reference */
	uint64_t nonfinite_ref;
	int64_t first_nonfinite;   /* the first element that is in either, -1 for none */
	uint64_t code_histogram[16]; /* a 4-bit x: how many elements have each code, */
	const float *x_absmax;     /* its scales as float32 (valid during task_done) */
	int64_t x_nblocks;
} lq_task_result;

/* Sources and sinks are the parties that know files: the bytes that cross them are in the host's byte
 * order, and a source or sink of little-endian files swaps elements on a big-endian host. */
typedef struct lq_source {
	void *self;
	/* Reads len bytes of input tensor `input`, from byte `offset` of that tensor, into dst. Called from one
	 * thread at a time, in task order, with consecutive offsets for each input. The callee sets its own
	 * message. */
	lq_status (*read)(void *self, int32_t input, uint64_t offset, void *dst, size_t len);
	/* A message for the last failed read; may be NULL. */
	const char *(*error_string)(void *self);
	/* Which of inputs a and b the source reads faster first: negative for a, positive for b, 0 when it does
	 * not matter (a compressed archive is read forward: a part of a 4-bit group that lies before another
	 * of the same file is best read first). May be NULL. */
	int (*order)(void *self, int32_t a, int32_t b);
} lq_source;

typedef struct lq_sink {
	void *self;
	/* Writes len bytes to output tensor `output` at byte `offset` of that tensor. Called from one thread
	 * at a time, offsets in any order. */
	lq_status (*write)(void *self, int32_t output, uint64_t offset, const void *src, size_t len);
	/* Called once per task after all its bytes were written; may be NULL. */
	lq_status (*task_done)(void *self, const lq_task *task, const lq_task_result *result);
	const char *(*error_string)(void *self);
} lq_sink;

/* Called after each chunk with the bytes of input consumed so far; returning false cancels the run
 * (LQ_ERR_CANCELLED). May be NULL. */
typedef bool (*lq_progress_fn)(void *arg, uint64_t done_bytes, uint64_t total_bytes);

/* Runs the tasks. On failure, returns the first error; the context's message names the task's tensor. */
LQ_API lq_status lq_execute(lq_ctx *ctx, const lq_task *tasks, size_t ntasks, const lq_source *source,
		     const lq_sink *sink, lq_progress_fn progress, void *progress_arg);

/* The memory lq_execute uses at most for staging, in bytes, for the given tasks (for --dry-run). */
LQ_API uint64_t lq_execute_memory_bound(const lq_ctx *ctx, const lq_task *tasks, size_t ntasks);

/* dst[i] = the value of src[i] (n elements of dtype F32, F16 or BF16) as float32. */
LQ_API void lq_to_f32(const void *src, lq_dtype dtype, int64_t n, float *dst);

/* ----------------------------------------------------------------------- combining LoRA adapters */

/*
 * PEFT 0.21's add_weighted_adapter (peft/tuners/lora/model.py) and the merges of peft/utils/merge_utils.py:
 * one adapter from several. A combination type is one entry of a table (lq_combine_type_find): how the
 * adapters' factors become the new ones (its form), how each task tensor is pruned first, and whether
 * signs are elected (TIES). The task tensors are combined in float32 in PEFT's order (lq_combine_tasks).
 */
typedef enum lq_combine_form {
	LQ_COMBINE_FACTORS, /* the A's and the B's combined separately, weighted sqrt(|weight * scaling|) (the
			     * sign on A): every adapter of the same rank, kept (linear, ties, dare_*, magnitude_prune) */
	LQ_COMBINE_CONCAT,  /* A's stacked by rows, each times weight then scaling, B's by columns (cat) */
	LQ_COMBINE_SVD,     /* the deltas weight * scaling * B @ A combined, then a truncated SVD (*_svd) */
} lq_combine_form;

typedef enum lq_combine_prune {
	LQ_COMBINE_PRUNE_NONE,
	LQ_COMBINE_PRUNE_MAGNITUDE, /* keep the int(density * n) largest |x| of each task tensor */
	LQ_COMBINE_PRUNE_RANDOM,    /* DARE: keep each element with probability density, then divide by it */
} lq_combine_prune;

typedef struct lq_combine_type {
	const char *name;       /* PEFT's combination_type */
	lq_combine_form form;
	lq_combine_prune prune;
	bool ties;              /* elect the majority sign, average the agreeing values (disjoint merge) */
} lq_combine_type;

/* The entry of PEFT's combination_type `name`, or NULL when PEFT has none of that name. */
LQ_API const lq_combine_type *lq_combine_type_find(const char *name);
/* The whole table, *n entries, in PEFT's documentation order. */
LQ_API const lq_combine_type *lq_combine_types(size_t *n);

typedef struct lq_combine_params {
	const lq_combine_type *type;
	double density;          /* the fraction pruning keeps, >= 0; >= 1 prunes nothing (PEFT's prune) */
	bool majority_frequency; /* TIES: the majority sign by count ("frequency"), not by sum ("total") */
	uint64_t seed;           /* random pruning's seed */
} lq_combine_params;

/*
 * merge_utils' combination of n task tensors tasks[i] (count float32 elements each) with float32 weights:
 * each pruned (p->type->prune; random pruning draws element j of task i from a counter-based generator
 * keyed by p->seed, `stream` and i, so the bytes depend on nothing else: not on threads, not on order),
 * then, TIES, the signs elected (by the pruned unweighted tensors) and the weighted agreeing values summed
 * and divided by their count, else the weighted values summed; every sum from +0 in the order of the
 * tasks, each product rounded to float32, as torch computes them on the CPU. Writes out[count].
 * Magnitude pruning keeps, among values equal to the k-th largest magnitude, those of lowest index
 * (torch.topk leaves that choice open). LQ_ERR_ARG for n == 0, a negative or NaN density, or random
 * pruning with density 0 (PEFT divides by it); LQ_ERR_NOMEM.
 */
LQ_API lq_status lq_combine_tasks(lq_ctx *ctx, const lq_combine_params *p, const float *const *tasks,
				  const float *weights, size_t n, int64_t count, uint64_t stream, float *out);

/*
 * The rank-`rank` truncation of the SVD of m (rows x cols float32, row-major; overwritten), as PEFT's
 * add_weighted_adapter takes it from torch.linalg.svd: b[rows x rank] = U[:, :rank] @ diag(S[:rank]),
 * a[rank x cols] = Vh[:rank, :], s[rank] the singular values (s may be NULL). clamp in [0, 1] (< 0:
 * none): b and a clamped to +-torch.quantile(cat(b, a), clamp). Computed by LAPACK's dgesdd (the driver
 * torch uses on the CPU), so the singular vectors' signs are LAPACK's. LQ_ERR_ARG for rank < 1,
 * rank > min(rows, cols), a clamp above 1, or a matrix beyond LAPACK's 32-bit sizes; LQ_ERR_NONFINITE
 * for NaN or infinity in m; LQ_ERR_UNSUPPORTED when LAPACK does not converge; LQ_ERR_NOMEM.
 */
LQ_API lq_status lq_svd_truncate(lq_ctx *ctx, float *m, int64_t rows, int64_t cols, int64_t rank, double clamp,
				 float *b, float *a, float *s);

/*
 * The thin SVD of m (rows x cols, row-major, double precision; overwritten), m = U diag(s) Vt, for
 * loraextract: s[k] the k = min(rows, cols) singular values in descending order, and the `keep` leading
 * singular vectors (1 <= keep <= k): u[rows x keep] and vt[keep x cols] row-major, orthonormal columns and
 * rows (the first keep columns of U and rows of Vt: keep = k is the whole thin SVD). On a GPU only those
 * come back to the host, a rank-64 adapter's 8 * 64 * (rows + cols) bytes instead of 8 k (rows + cols)
 * (472 MiB at 4096 x 11008); LAPACK computes all k into buffers of its own, freed before the return. LAPACK's dgesdd, on m as it lies in memory (the
 * column-major transpose: the factors come out row-major without a copy), or, when the context computes
 * on a GPU (lq_ctx_use_device), cuSOLVER's in double precision (its buffers on the device; on the host
 * none besides the outputs). The singular vectors' signs are the library's. LQ_ERR_ARG for an empty
 * matrix or one beyond LAPACK's 32-bit sizes, or a keep out of [1, k]; LQ_ERR_NONFINITE for NaN or infinity in m;
 * LQ_ERR_UNSUPPORTED when the SVD does not converge, or on a GPU when cuSOLVER's library cannot be loaded
 * (the message says so; no fall-back to LAPACK: use the CPU); LQ_ERR_DEVICE for a GPU's failure;
 * LQ_ERR_NOMEM (LAPACK's workspace, about 4 k^2 + 4 k + max(rows, cols) doubles besides the outputs, and
 * its whole factors, k (rows + cols) doubles, when keep < k).
 */
LQ_API lq_status lq_svd_thin(lq_ctx *ctx, double *m, int64_t rows, int64_t cols, int64_t keep, double *s, double *u,
			     double *vt);

#ifdef __cplusplus
}
#endif

#endif /* LIBQUANT_H */
