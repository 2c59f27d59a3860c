/*
 * backend_cpu.c: the CPU backend (lq_internal.h, lq_backend): every op, split over the context's thread
 * pool and done by the fastest kernels this CPU has (cpu_kernels.c). Any split gives the same bytes:
 * blocks, rows and pieces are independent, and the pieces' sums are added in order by the caller.
 */
#include <stdlib.h>

#include "lq_internal.h"

/* Work items of about this many elements keep every thread busy without making items so small that
 * handing them out costs more than the work. */
#define ITEM_ELEMENTS (1 << 16)

static int64_t blocks_per_item(int32_t blocksize)
{
	return ITEM_ELEMENTS / blocksize > 0 ? ITEM_ELEMENTS / blocksize : 1;
}

/* ---------------------------------------------------------------------------------- quantize */

typedef struct quantize_job {
	const lq_cpu_kernels *k;
	const void *src;
	lq_dtype dtype;
	int64_t n;
	lq_qtype qtype;
	int32_t blocksize;
	int64_t nblocks;
	int64_t blocks_per_item;
	uint8_t *packed;
	float *absmax;
	int64_t *first_bad; /* per item */
} quantize_job;

static void quantize_item(void *arg, int64_t item)
{
	quantize_job *job = arg;
	int64_t b0 = item * job->blocks_per_item;
	int64_t b1 = b0 + job->blocks_per_item < job->nblocks ? b0 + job->blocks_per_item : job->nblocks;
	job->first_bad[item] = job->k->quantize_range(job->src, job->dtype, job->n, job->qtype, job->blocksize, b0, b1,
						      job->packed, job->absmax);
}

static lq_status cpu_quantize(lq_ctx *ctx, const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
			      int32_t blocksize, uint8_t *packed, float *absmax, int64_t *bad_index)
{
	quantize_job job = {
		.k = ctx->cpu, .src = src, .dtype = dtype, .n = n, .qtype = qtype, .blocksize = blocksize,
		.nblocks = lq_quant_nblocks(n, blocksize), .blocks_per_item = blocks_per_item(blocksize),
		.packed = packed, .absmax = absmax,
	};
	int64_t nitems = (job.nblocks - 1) / job.blocks_per_item + 1;
	job.first_bad = malloc((size_t)nitems * sizeof *job.first_bad);
	if (!job.first_bad)
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	lq_pool_run(ctx->pool, nitems, quantize_item, &job);
	int64_t bad = -1;
	for (int64_t i = 0; i < nitems && bad < 0; i++)
		bad = job.first_bad[i]; /* items are in element order: the first one found is the smallest */
	free(job.first_bad);
	*bad_index = bad;
	return bad >= 0 ? LQ_ERR_NONFINITE : LQ_OK;
}

/* -------------------------------------------------------------------------------- dequantize */

typedef struct dequantize_job {
	const lq_cpu_kernels *k;
	const uint8_t *packed;
	const float *absmax;
	int64_t n;
	lq_qtype qtype;
	int32_t blocksize;
	int64_t nblocks;
	int64_t blocks_per_item;
	lq_dtype dtype;
	void *out;
} dequantize_job;

static void dequantize_item(void *arg, int64_t item)
{
	dequantize_job *job = arg;
	int64_t b0 = item * job->blocks_per_item;
	int64_t b1 = b0 + job->blocks_per_item < job->nblocks ? b0 + job->blocks_per_item : job->nblocks;
	job->k->dequantize_range(job->packed, job->absmax, job->n, job->qtype, job->blocksize, b0, b1, job->dtype,
				 job->out);
}

static lq_status cpu_dequantize(lq_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
				int32_t blocksize, lq_dtype dtype, void *out)
{
	dequantize_job job = {
		.k = ctx->cpu, .packed = packed, .absmax = absmax, .n = n, .qtype = qtype, .blocksize = blocksize,
		.nblocks = lq_quant_nblocks(n, blocksize), .blocks_per_item = blocks_per_item(blocksize),
		.dtype = dtype, .out = out,
	};
	lq_pool_run(ctx->pool, (job.nblocks - 1) / job.blocks_per_item + 1, dequantize_item, &job);
	return LQ_OK;
}

/* ------------------------------------------------------------------------- double quantization */

typedef struct dq_job {
	const lq_cpu_kernels *k;
	const float *absmax;
	int64_t nblocks;
	float offset;
	uint8_t *absmax_q;
	float *nested_absmax;
} dq_job;

static void dq_item(void *arg, int64_t k)
{
	dq_job *job = arg;
	(job->k->double_quant_block ? job->k->double_quant_block : lq_double_quant_block)(
		job->absmax, job->nblocks, job->offset, k, job->absmax_q, job->nested_absmax);
}

static lq_status cpu_double_quant_codes(lq_ctx *ctx, const float *absmax, int64_t nblocks, float offset,
					uint8_t *absmax_q, float *nested_absmax)
{
	dq_job job = {.k = ctx->cpu, .absmax = absmax, .nblocks = nblocks, .offset = offset, .absmax_q = absmax_q,
		      .nested_absmax = nested_absmax};
	lq_pool_run(ctx->pool, lq_quant_nested_blocks(nblocks), dq_item, &job);
	return LQ_OK;
}

/* ------------------------------------------------------------------------------------ merge */

typedef struct merge_job {
	const lq_merge_job *job;
	const void *in;    /* the rows (in_dtype), NULL when w already holds them as float32 (a 4-bit base) */
	lq_dtype in_dtype;
	void *out;         /* the merged rows as out_dtype, NULL: they stay float32 in w */
	lq_dtype out_dtype;
	int64_t rows_per_item;
	int64_t nrows;
	int64_t *bad;      /* per item: its first merged element that is not finite, or -1 */
	bool failed;
} merge_job;

static void merge_item(void *arg, int64_t item)
{
	merge_job *mj = arg;
	const lq_merge_job *job = mj->job;
	const int64_t cols = job->cols;
	int64_t r0 = item * mj->rows_per_item, r1 = r0 + mj->rows_per_item < mj->nrows ? r0 + mj->rows_per_item : mj->nrows;
	float *d = malloc((size_t)cols * 4 * LQ_MERGE_GROUP + 4);
	if (!d) {
		mj->failed = true;
		return;
	}
	float *w = job->w;
	if (mj->in)
		lq_load_f32_n(mj->in, mj->in_dtype, r0 * cols, (r1 - r0) * cols, w + r0 * cols);
	else
		lq_round_to_n(job->dtype, w + r0 * cols, (r1 - r0) * cols, w + r0 * cols);
	if (job->replace_of)
		for (int64_t r = r0; r < r1; r++) {
			int32_t k = job->replace_of[job->row0 + r];
			if (k >= 0)
				memcpy(w + r * cols, job->replace + (int64_t)k * cols, (size_t)cols * 4);
		}
	lq_merge_rows(job, job->row0 + r0, job->row0 + r1, d);
	/* the rows as they are written (out_dtype, or the float32 sums a requantization quantizes) */
	int64_t bad;
	if (mj->out) {
		lq_store_f32_n(mj->out, mj->out_dtype, r0 * cols, (r1 - r0) * cols, w + r0 * cols);
		bad = lq_first_nonfinite(mj->out, mj->out_dtype, r0 * cols, (r1 - r0) * cols);
	} else {
		bad = lq_first_nonfinite(w, LQ_DTYPE_F32, r0 * cols, (r1 - r0) * cols);
	}
	mj->bad[item] = bad < 0 ? -1 : r0 * cols + bad;
	if (job->rows_merged)
		job->rows_merged(job->rows_merged_arg, r0 * cols, r1 * cols);
	free(d);
}

static bool cpu_merge_suits(const lq_ctx *ctx, const lq_merge_job *job)
{
	(void)ctx, (void)job;
	return true;
}

/* The rows as float32 in job->w (a 4-bit base dequantized first; each item rounds its rows to the base's
 * type, which is what dequantizing to that type gives), every adapter in order, then the rows out. */
static lq_status cpu_merge_rows(lq_ctx *ctx, const lq_merge_job *job, uint64_t key, int64_t nrows, const void *in,
				lq_dtype in_dtype, const uint8_t *packed, const float *absmax, lq_qtype qtype,
				int32_t blocksize, void *out, lq_dtype out_dtype, int64_t *bad_index)
{
	(void)key;
	*bad_index = -1;
	if (packed) {
		lq_status st = cpu_dequantize(ctx, packed, absmax, nrows * job->cols, qtype, blocksize, LQ_DTYPE_F32, job->w);
		if (st != LQ_OK)
			return st;
	}
	merge_job mj = {.job = job, .in = packed ? NULL : in, .in_dtype = in_dtype,
			.out = job->keep_last_unrounded ? NULL : out, .out_dtype = out_dtype, .nrows = nrows};
	int64_t items = lq_ctx_threads(ctx) * 4;
	mj.rows_per_item = (nrows + items - 1) / (items ? items : 1);
	if (mj.rows_per_item < 1)
		mj.rows_per_item = 1;
	/* the rows of an item a multiple of rows_align, unless that leaves a thread without an item */
	const int64_t align = job->rows_align > 1 ? job->rows_align : 1,
		      aligned = (mj.rows_per_item + align - 1) / align * align;
	if ((nrows + aligned - 1) / aligned >= lq_ctx_threads(ctx))
		mj.rows_per_item = aligned;
	const int64_t nitems = (nrows + mj.rows_per_item - 1) / mj.rows_per_item;
	if (!(mj.bad = malloc((size_t)nitems * sizeof *mj.bad)))
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	lq_pool_run(ctx->pool, nitems, merge_item, &mj);
	int64_t bad = -1;
	for (int64_t i = 0; i < nitems && bad < 0; i++)
		bad = mj.bad[i]; /* items are in element order: the first one found is the smallest */
	free(mj.bad);
	if (mj.failed)
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	*bad_index = bad;
	return bad >= 0 ? LQ_ERR_NONFINITE : LQ_OK;
}

/* ----------------------------------------------------------------------------- error sums */

typedef struct piece_job {
	const void *x, *ref;
	lq_dtype x_dtype, ref_dtype;
	int64_t n, first;
	lq_error_sums *pieces;
} piece_job;

static void piece_item(void *arg, int64_t p)
{
	const piece_job *j = arg;
	int64_t i0 = p * LQ_STATS_PIECE, len = j->n - i0 < LQ_STATS_PIECE ? j->n - i0 : LQ_STATS_PIECE;
	lq_error_piece(j->x, j->x_dtype, j->ref, j->ref_dtype, i0, len, j->first, &j->pieces[p]);
}

static lq_status cpu_error_pieces(lq_ctx *ctx, const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype,
				  int64_t n, int64_t first, lq_error_sums *pieces)
{
	piece_job j = {x, ref, x_dtype, ref_dtype, n, first, pieces};
	lq_pool_run(ctx->pool, (n + LQ_STATS_PIECE - 1) / LQ_STATS_PIECE, piece_item, &j);
	return LQ_OK;
}

/* ---------------------------------------------------------------------------------- memory */

static void *cpu_host_alloc(const lq_ctx *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

static void cpu_host_free(const lq_ctx *ctx, void *p)
{
	(void)ctx;
	free(p);
}

const lq_backend lq_backend_cpu = {
	.name = "cpu",
	.quantize = cpu_quantize,
	.dequantize = cpu_dequantize,
	.double_quant_codes = cpu_double_quant_codes,
	.merge_suits = cpu_merge_suits,
	.merge_rows = cpu_merge_rows,
	.error_pieces = cpu_error_pieces,
	.host_alloc = cpu_host_alloc,
	.host_free = cpu_host_free,
};
