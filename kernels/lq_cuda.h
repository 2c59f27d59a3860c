/*
 * lq_cuda.h: the CUDA backend as libquant sees it: plain C, no CUDA types, so that the CPU core compiles
 * without CUDA headers. Only libquant/backend.c includes this, and only when built with LQ_HAVE_CUDA.
 *
 * Every operation takes host memory and returns when its results are in host memory: the staging of
 * inputs and outputs on the device is the backend's business. Results are byte-identical to the CPU
 * reference (libquant/quant4_ref.c). Failures come back as a status with cudaGetErrorString() in msg;
 * nothing aborts.
 */
#ifndef LQ_CUDA_H
#define LQ_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "libquant.h"
#include "torch_norm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lq_cuda lq_cuda;

/* Number of CUDA devices, 0 when there is no usable driver or device (msg says why). */
int lq_cuda_device_count(char *msg, size_t msg_size);

/* The constants the kernels decide with, handed over from libquant/codebook.c (their one source). */
typedef struct lq_cuda_tables {
	const float *nf4_thresholds;      /* 15, ascending */
	const float *fp4_thresholds;      /* 7, ascending */
	const uint8_t *fp4_code_by_rank;  /* 8 */
	const float *code[2];             /* the 16 values of NF4 and FP4 codes (dequantization) */
	const float *dynamic_map;         /* 256 */
} lq_cuda_tables;

/* Opens device `index`: a stream and lazily grown staging buffers. */
lq_status lq_cuda_open(int index, const lq_cuda_tables *tables, lq_cuda **out, char *msg, size_t msg_size);
void lq_cuda_close(lq_cuda *g); /* NULL is a no-op */

/* "NVIDIA H200" */
const char *lq_cuda_name(const lq_cuda *g);
/* The CUDA device index g was opened with. */
int lq_cuda_index(const lq_cuda *g);

/* For the tests (LQ_TEST_FAIL_DEVICE): every kernel launch on g from now on fails as a failed launch does
 * (cudaErrorLaunchFailure), so that a GPU lost mid-run can be simulated on a machine whose GPUs work. */
void lq_cuda_test_fail_launches(lq_cuda *g);

/* Pinned host memory (fast transfers), and its release. NULL on failure. */
void *lq_cuda_host_alloc(size_t size);
void lq_cuda_host_free(void *p);

/* Quantizes blocks [b0, b1) of a tensor of n elements at src (host; the whole tensor's start), writing
 * packed bytes and absmax of those blocks at their places in the host arrays. *bad_index gets the
 * smallest index of a non-finite element in the range, or -1. */
lq_status lq_cuda_quantize_blocks(lq_cuda *g, const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
				  int32_t blocksize, int64_t b0, int64_t b1, uint8_t *packed, float *absmax,
				  int64_t *bad_index, char *msg, size_t msg_size);

/* The 8-bit codes and nested absmax of absmax[0..nblocks) with the given offset (double quantization). */
lq_status lq_cuda_double_quant(lq_cuda *g, const float *absmax, int64_t nblocks, float offset, uint8_t *absmax_q,
			       float *nested_absmax, char *msg, size_t msg_size);

/* Dequantizes blocks [b0, b1) into out (the whole tensor's start, dtype F32/F16/BF16). */
lq_status lq_cuda_dequantize_blocks(lq_cuda *g, const uint8_t *packed, const float *absmax, int64_t n,
				    lq_qtype qtype, int32_t blocksize, int64_t b0, int64_t b1, lq_dtype dtype,
				    void *out, char *msg, size_t msg_size);

/* A LoRA merge of rows [row0, row0 + nrows) of W [rows, cols], as libquant/merge.c computes it. */
typedef struct lq_cuda_merge {
	uint64_t key;            /* the task: its side inputs (x, y, magnitudes) are uploaded once per key */
	int64_t rows, cols, row0, nrows;
	lq_dtype wtype;          /* W's type: W is rounded to it after each adapter */
	const void *in;          /* the rows as in_dtype (host), or NULL and: */
	lq_dtype in_dtype;
	const uint8_t *packed;   /* the rows' 4-bit codes (starting at a block boundary) and their blocks' */
	const float *absmax;     /* absmax, dequantized and rounded to wtype first */
	lq_qtype qtype;
	int32_t blocksize;
	size_t nloras;
	const lq_lora *loras;    /* LQ_LORA_ROWS or LQ_LORA_TRANSPOSED, rank <= 1024 */
	const float *const *x;   /* per lora, host, whole: A [rank, cols] (ROWS) or B transposed [rank, cols] */
	const float *const *y;   /* B [rows, rank] (ROWS) or A [rank, rows] (TRANSPOSED) */
	const float *const *magnitude; /* [rows] or NULL (DoRA on rows) */
	const float *const *col_factor; /* [cols] or NULL (DoRA on columns: the factors, found on the CPU) */
	lq_torch_norm_plan row_plan;   /* the order of the row norms */
	int keep_last_unrounded; /* the last sum stays float32 (out_dtype must then be F32) */
	void *out;               /* host, nrows * cols elements of out_dtype */
	lq_dtype out_dtype;
} lq_cuda_merge;

/* LQ_ERR_NONFINITE (no message) when an element of out is NaN or infinite: the smallest such index (of the
 * chunk) in *bad_index, which is -1 otherwise. */
lq_status lq_cuda_merge_rows(lq_cuda *g, const lq_cuda_merge *m, int64_t *bad_index, char *msg, size_t msg_size);

/* The sums of each LQ_STATS_PIECE-element piece of x against ref (host arrays of n elements of their
 * types; first is the tensor index of element 0), as libquant/stats.c's lq_error_piece computes them. */
lq_status lq_cuda_error_pieces(lq_cuda *g, const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype,
			       int64_t n, int64_t first, lq_error_sums *pieces, char *msg, size_t msg_size);

/* The rank-`rank` factors of the SVD of m (rows x cols float32, row-major) in double precision by
 * cuSOLVER (kernels/truncated_svd.cu): b[rows x rank] = U S, a[rank x cols] = Vh, s[rank] = S (s may be
 * NULL), each rounded once to float32, as libquant/svd.c rounds LAPACK's; no clamp, the signs cuSOLVER's.
 * LQ_ERR_UNSUPPORTED when cuSOLVER's library cannot be loaded or its SVD does not converge (msg says
 * which: the CPU's LAPACK can then do it), LQ_ERR_DEVICE, LQ_ERR_NOMEM. */
lq_status lq_cuda_svd(lq_cuda *g, const float *m, int64_t rows, int64_t cols, int64_t rank, float *b, float *a,
		      float *s, char *msg, size_t msg_size);

/* The whole thin SVD of m (rows x cols, row-major, double precision; only read: copied to the GPU) by
 * cuSOLVER in double precision (kernels/thin_svd.cu): s[k], u[rows x keep], vt[keep x cols] row-major (the
 * keep leading singular vectors, 1 <= keep <= k), k = min(rows, cols), as libquant/svd.c's lq_svd_thin by
 * LAPACK; the signs cuSOLVER's. LQ_ERR_UNSUPPORTED when cuSOLVER's
 * library cannot be loaded or its SVD does not converge (msg says which), LQ_ERR_DEVICE, LQ_ERR_ARG (an
 * invalid LQ_SVD_GPU), LQ_ERR_NOMEM. */
lq_status lq_cuda_svd_thin(lq_cuda *g, double *m, int64_t rows, int64_t cols, int64_t keep, double *s, double *u,
			   double *vt, char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif

#endif /* LQ_CUDA_H */
