/*
 * op_merge.c: LQ_OP_MERGE: a weight plus LoRA deltas, as PEFT's merge_and_unload() computes it (merge.c
 * holds the arithmetic, dora.c DoRA's column factors, kernels/merge.cu the GPU's), into a float tensor or,
 * requantized, a 4-bit group. Chunks are whole rows (and whole blocks of a 4-bit base or output); the
 * adapters, DoRA's magnitudes, the rows trainable tokens replace and a 4-bit base's scales are side
 * inputs, read whole before the first chunk and kept as float32 to the last. A float base read as its
 * 4-bit quantize-dequantize (as_4bit: loramerge --base-as) is read whole and quantized first, its codes
 * kept in the state (half a byte a parameter) and dequantized chunk by chunk as a 4-bit base's are.
 * With fidelity, the float32 result of each chunk is measured against the base (fidelity.c): a float
 * merge's piece by piece as the pool rounds it to the output's type; a requantization's on the executor's
 * measure thread while the next chunks are merged (the result left in the slot's aux buffer), or, when the
 * output's scales are known only after the last chunk (double quantization), over the results and codes
 * kept until then, on the pool.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "op.h"
#include "torch_mean.h"
#include "torch_norm.h"

/* The side inputs as read (raw bytes of their types). */
typedef struct merge_side {
	void **a, **b, **magnitude;
	size_t nloras;
	lq_group_side base;
	void *replace;
	void *measured;               /* measure_given: M's codes or values */
	lq_group_side measured_consts; /* and a 4-bit M's constants */
} merge_side;

/* What a merge keeps from its first chunk to its last write. */
typedef struct merge_state {
	/* float32 A, B (and B transposed), DoRA magnitudes of rows or factors of columns, per lora */
	float **a, **b, **bt, **magnitude, **col_factor;
	size_t nloras;
	lq_torch_norm_plan row_plan; /* the order of the row norms */
	float *base_absmax;          /* a 4-bit base's scales */
	unsigned char *base_codes;   /* a base quantized first: its codes (from the reuse pool) */
	size_t base_codes_bytes;     /* their buffer's capacity */
	lq_group_state base_group;   /* as_4bit: its scales as quantized */
	uint64_t key;                /* unique to the task in this process: the GPU keeps its adapters by it */
	float *replace;              /* the replacement rows as float32, already rounded to W's type */
	int32_t *replace_of;         /* per row of W: which replacement row, or -1 */
	lq_group_state requant;      /* requantize: the output's scales */
	/* fidelity of a requantization with double quantization, measured after the last chunk: */
	float *kept_y;               /* every chunk's float32 result */
	unsigned char *kept_out;     /* the output's codes */
	unsigned char *kept_base;    /* the base as read, codes or values, where it was not read whole */
	size_t kept_bytes[3];        /* of kept_y, kept_out, kept_base */
	lq_reuse *reuse;             /* where the kept buffers and the base's codes come from and go back to */
	lq_held *kept_whole;         /* the base as read, where it was read whole (a reference) */
	unsigned char *measured;     /* measure_given: M's codes or values, taken from the side */
	float *measured_absmax;      /* and a 4-bit M's scales */
	lq_task_result result;
} merge_state;

/* Whether lora l is DoRA on columns (magnitudes [cols]), which needs every row first. */
static bool column_dora(const lq_merge_args *m, size_t l)
{
	return m->loras[l].layout == LQ_LORA_TRANSPOSED && m->loras[l].magnitude_input >= 0;
}

static bool any_column_dora(const lq_merge_args *m)
{
	for (size_t l = 0; l < m->nloras; l++)
		if (column_dora(m, l))
			return true;
	return false;
}

/* Whether the base's codes, and so its chunks, are whole blocks of 4-bit elements. */
static bool base_4bit(const lq_merge_args *m)
{
	return m->base.quantized || m->base.as_4bit;
}

/* Whether the base is quantized from its float form first: to be merged so (as_4bit), or only measured
 * (measure_4bit). Its chunks are then whole blocks too. */
static bool base_quantized_first(const lq_merge_args *m)
{
	return m->base.as_4bit || (m->fidelity && m->measure_4bit && !m->base.quantized);
}

/* The base quantized from its float form, read whole before the first chunk, as DoRA on columns needs
 * too. */
static bool base_whole(const lq_merge_args *m)
{
	return any_column_dora(m) || base_quantized_first(m);
}

/* Whether the merge leaves its float32 result in the scratch buffer (to be quantized again, or measured
 * and then rounded to the output's type here), rather than writing the output's type itself. */
static bool result_unrounded(const lq_merge_args *m)
{
	return m->requantize || (m->fidelity && m->nloras);
}

/* Whether the fidelity of the output is measured after the last chunk: the output's scales are known
 * only once they are double-quantized. */
static bool fidelity_at_end(const lq_merge_args *m)
{
	return m->fidelity && m->nloras && m->requantize && m->requant.quant.double_quant && !m->measure_given;
}

/* Whether a requantization's fidelity is measured chunk by chunk, on the executor's measure thread
 * (op->measure) while the next chunks are merged. Measured after the last chunk, it is summed on the pool
 * by the compute stage: alone on the measure thread, a whole weight's terms took longer than the few
 * chunks the slots let the compute stage run ahead. A float merge's is summed piece by piece as its result
 * is rounded to the output's type, in cache (rounding_job). */
static bool merge_measures(const lq_task *t)
{
	return t->merge.fidelity && t->merge.nloras && t->merge.requantize && !fidelity_at_end(&t->merge);
}

/* The bytes of a given M of n elements: codes or values. */
static uint64_t measured_bytes(const lq_merge_args *m, int64_t n)
{
	return m->measured.quantized ? (uint64_t)lq_quant_packed_bytes(n) : (uint64_t)n * lq_dtype_size(m->measured.dtype);
}

static lq_status merge_check(lq_ctx *ctx, const lq_task *t)
{
	const lq_merge_args *m = &t->merge;
	if (m->rows < 1 || m->cols < 1 || m->base.dtype == LQ_DTYPE_U8 || lq_dtype_size(m->base.dtype) == 0 ||
	    (!m->requantize && (m->out_dtype == LQ_DTYPE_U8 || lq_dtype_size(m->out_dtype) == 0)) ||
	    ((base_4bit(m) || base_quantized_first(m)) &&
	     (!lq_blocksize_valid(m->base.quant.blocksize) || !lq_qtype_info(m->base.quant.qtype))) ||
	    (m->base.quantized && m->base.as_4bit) ||
	    (m->requantize && (!lq_blocksize_valid(m->requant.quant.blocksize) || !lq_qtype_info(m->requant.quant.qtype))) ||
	    (uint64_t)m->cols * 4 > LQ_CHUNK_BYTES ||
	    (m->measure_given && (!m->fidelity || m->requantize || m->measured.as_4bit || m->measured.dtype == LQ_DTYPE_U8 ||
				  lq_dtype_size(m->measured.dtype) == 0 ||
				  (m->measured.quantized && (!lq_blocksize_valid(m->measured.quant.blocksize) ||
							     !lq_qtype_info(m->measured.quant.qtype))))))
		return lq_fail_tensor(ctx, LQ_ERR_ARG, t->origin, t->name, "invalid merge");
	for (size_t l = 0; l < m->nloras; l++)
		if (m->loras[l].rank < 1 || lq_dtype_size(m->loras[l].ab_dtype) == 0 || m->loras[l].ab_dtype == LQ_DTYPE_U8 ||
		    (m->loras[l].layout == LQ_LORA_VECTOR && (m->loras[l].rank != 1 || m->loras[l].magnitude_input >= 0)))
			return lq_fail_tensor(ctx, LQ_ERR_ARG, t->origin, t->name, "invalid adapter");
	if (m->nreplace && (m->replace_dtype == LQ_DTYPE_U8 || lq_dtype_size(m->replace_dtype) == 0))
		return lq_fail_tensor(ctx, LQ_ERR_ARG, t->origin, t->name, "invalid row replacement");
	for (size_t k = 0; k < m->nreplace; k++)
		if (m->replace_rows[k] < 0 || m->replace_rows[k] >= m->rows)
			return lq_fail_tensor(ctx, LQ_ERR_ARG, t->origin, t->name, "row %lld to replace is out of range",
				       (long long)m->replace_rows[k]);
	return LQ_OK;
}

static uint64_t merge_units(const lq_task *t)
{
	return (uint64_t)t->merge.rows * (uint64_t)t->merge.cols;
}

/* Whole rows; for a 4-bit base or output, whole blocks too; at most a quarter of LQ_CHUNK_BYTES elements,
 * so that their float32 copy fits the scratch buffer. */
static uint64_t merge_chunk_units(const lq_task *t)
{
	const lq_merge_args *m = &t->merge;
	uint64_t cols = (uint64_t)m->cols, rows_step = 1;
	if (base_4bit(m) || base_quantized_first(m)) { /* rows * cols a multiple of the block size */
		uint64_t bs = (uint64_t)m->base.quant.blocksize;
		rows_step = bs / lq_gcd_u64(cols, bs);
	}
	/* whole blocks of a 4-bit output, or of a given 4-bit M, too */
	const lq_quant_params *out = m->requantize ? &m->requant.quant
				     : m->measure_given && m->measured.quantized ? &m->measured.quant : NULL;
	if (out) {
		uint64_t bs = (uint64_t)out->blocksize, need = bs / lq_gcd_u64(cols, bs);
		rows_step = rows_step / lq_gcd_u64(rows_step, need) * need;
	}
	uint64_t rows = LQ_CHUNK_BYTES / 4 / (cols ? cols : 1) / rows_step * rows_step;
	return (rows ? rows : rows_step) * cols;
}

static uint64_t merge_input_bytes(const lq_task *t, uint64_t u0, uint64_t u1)
{
	if (t->merge.base.quantized) /* codes are half a byte, the last byte maybe padded */
		return (u1 + 1) / 2 - u0 / 2;
	return (u1 - u0) * lq_dtype_size(t->merge.base.dtype);
}

/* ----------------------------------------------------------------------------- side inputs */

static void merge_side_free(void *p)
{
	merge_side *x = p;
	if (!x)
		return;
	for (size_t l = 0; l < x->nloras; l++) {
		free(x->a[l]);
		free(x->b[l]);
		free(x->magnitude[l]);
	}
	free(x->a);
	free(x->b);
	free(x->magnitude);
	lq_group_side_free(&x->base);
	free(x->replace);
	free(x->measured);
	lq_group_side_free(&x->measured_consts);
	free(x);
}

/* A, B and the magnitudes of every lora, the rows to replace, a 4-bit base's constants; the base itself,
 * whole, for DoRA on columns. */
static lq_status merge_read_side(const lq_source *source, lq_reuse *reuse, const lq_task *t, void **side,
			       lq_held **whole)
{
	const lq_merge_args *m = &t->merge;
	merge_side *x = calloc(1, sizeof *x);
	if (!x)
		return LQ_ERR_NOMEM;
	x->nloras = m->nloras;
	x->a = calloc(m->nloras + 1, sizeof *x->a);
	x->b = calloc(m->nloras + 1, sizeof *x->b);
	x->magnitude = calloc(m->nloras + 1, sizeof *x->magnitude);
	lq_status st = x->a && x->b && x->magnitude ? LQ_OK : LQ_ERR_NOMEM;
	for (size_t l = 0; l < m->nloras && st == LQ_OK; l++) {
		const lq_lora *lora = &m->loras[l];
		uint64_t es = lq_dtype_size(lora->ab_dtype), r = (uint64_t)lora->rank;
		uint64_t in = lora->layout == LQ_LORA_TRANSPOSED ? (uint64_t)m->rows : (uint64_t)m->cols;
		uint64_t out = lora->layout == LQ_LORA_TRANSPOSED ? (uint64_t)m->cols : (uint64_t)m->rows;
		st = lq_read_whole(source, lora->a_input, r * in * es, &x->a[l]);
		if (st == LQ_OK && lora->layout != LQ_LORA_VECTOR)
			st = lq_read_whole(source, lora->b_input, out * r * es, &x->b[l]);
		if (st == LQ_OK && lora->magnitude_input >= 0)
			st = lq_read_whole(source, lora->magnitude_input,
					   (column_dora(m, l) ? (uint64_t)m->cols : (uint64_t)m->rows) * 4, &x->magnitude[l]);
	}
	if (st == LQ_OK && base_whole(m)) {
		st = lq_held_read(source, reuse, t->input, t->nbytes, whole);
	}
	if (st == LQ_OK && m->nreplace)
		st = lq_read_whole(source, m->replace_input,
				   (uint64_t)m->nreplace * (uint64_t)m->cols * lq_dtype_size(m->replace_dtype), &x->replace);
	if (st == LQ_OK && m->base.quantized) /* the codes first where the source reads them faster so */
		st = lq_group_side_read(source, &m->base, m->rows * m->cols, &x->base, t->input, t->nbytes, reuse, whole);
	if (st == LQ_OK && m->measure_given)
		st = lq_read_whole(source, m->measured_input, measured_bytes(m, m->rows * m->cols), &x->measured);
	if (st == LQ_OK && m->measure_given && m->measured.quantized)
		st = lq_group_side_read(source, &m->measured, m->rows * m->cols, &x->measured_consts, -1, 0, NULL, NULL);
	if (st != LQ_OK) {
		merge_side_free(x);
		lq_held_release(*whole);
		*whole = NULL;
		return st;
	}
	*side = x;
	return LQ_OK;
}

/* ---------------------------------------------------------------------------------- state */

/* The kept results, codes and base back to the context's reuse.c, once measured: before the next weight's
 * merge_begin takes its own (the state itself goes only after the writer is done with the last chunk). */
static void kept_release(merge_state *ts)
{
	if (ts->reuse) {
		lq_reuse_give(ts->reuse, ts->kept_y, ts->kept_bytes[0]);
		lq_reuse_give(ts->reuse, ts->kept_out, ts->kept_bytes[1]);
		lq_reuse_give(ts->reuse, ts->kept_base, ts->kept_bytes[2]);
	}
	ts->kept_y = NULL;
	ts->kept_out = ts->kept_base = NULL;
	lq_held_release(ts->kept_whole);
	ts->kept_whole = NULL;
}

static void merge_free(void *p)
{
	merge_state *ts = p;
	if (!ts)
		return;
	for (size_t l = 0; l < ts->nloras; l++) {
		free(ts->a[l]);
		free(ts->b[l]);
		free(ts->bt[l]);
		free(ts->magnitude[l]);
		free(ts->col_factor[l]);
	}
	free(ts->a);
	free(ts->b);
	free(ts->bt);
	free(ts->magnitude);
	free(ts->col_factor);
	free(ts->base_absmax);
	if (ts->reuse)
		lq_reuse_give(ts->reuse, ts->base_codes, ts->base_codes_bytes);
	lq_group_out_free(&ts->base_group);
	kept_release(ts);
	free(ts->measured);
	free(ts->measured_absmax);
	free(ts->replace);
	free(ts->replace_of);
	lq_group_out_free(&ts->requant);
	free(ts);
}

typedef struct base_rows_arg {
	lq_ctx *ctx;
	const lq_merge_args *m;
	const merge_state *ts;
	const unsigned char *whole; /* the task's input, whole, or the codes of a base quantized first */
} base_rows_arg;

/* lq_rows_fn: rows [r0, r1) of the base as the merge starts from them (merge_item): float32 rounded to W's
 * type, or the 4-bit codes dequantized and rounded; replaced rows in place. */
static lq_status base_rows(void *arg, int64_t r0, int64_t r1, float *v)
{
	const base_rows_arg *b = arg;
	const lq_merge_args *m = b->m;
	const int64_t cols = m->cols, e0 = r0 * cols, n = (r1 - r0) * cols;
	if (base_4bit(m)) {
		/* e0 is a whole number of blocks: the groups are the executor's chunks */
		lq_status st = lq_dequantize_blocks(b->ctx, b->whole + e0 / 2, b->ts->base_absmax + e0 / m->base.quant.blocksize,
						    n, m->base.quant.qtype, m->base.quant.blocksize, LQ_DTYPE_F32, v);
		if (st != LQ_OK)
			return st;
		lq_round_to_n(m->base.dtype, v, n, v);
	} else {
		lq_load_f32_n(b->whole + (size_t)e0 * lq_dtype_size(m->base.dtype), m->base.dtype, 0, n, v);
	}
	for (int64_t r = r0; b->ts->replace_of && r < r1; r++) {
		int32_t k = b->ts->replace_of[r];
		if (k >= 0)
			memcpy(v + (r - r0) * cols, b->ts->replace + (int64_t)k * cols, (size_t)cols * 4);
	}
	return LQ_OK;
}

/* DoRA on columns, lora l: its factors over the whole base (read whole by the reader), before the merge
 * writes a row; the groups of rows are the chunks, in the scratch buffer, which is free until the first
 * chunk is merged. */
static lq_status column_factors(lq_run *run, const lq_task *t, merge_state *ts, const merge_side *x,
				const lq_held *whole, size_t l)
{
	const lq_merge_args *m = &t->merge;
	lq_ctx *ctx = run->ctx;
	float *mag = malloc((size_t)m->cols * 4);
	ts->col_factor[l] = malloc((size_t)m->cols * 4);
	if (!mag || !ts->col_factor[l]) {
		free(mag);
		return LQ_ERR_NOMEM;
	}
	lq_load_f32_n(x->magnitude[l], LQ_DTYPE_F32, 0, m->cols, mag);
	const lq_merge_job job = {.kernels = ctx->cpu, .w = run->scratch, .rows = m->rows, .cols = m->cols,
				  .dtype = m->base.dtype, .loras = m->loras, .nloras = m->nloras, .a = ts->a, .b = ts->b,
				  .bt = ts->bt, .magnitude = ts->magnitude, .col_factor = ts->col_factor,
				  .row_plan = &ts->row_plan};
	base_rows_arg arg = {ctx, m, ts, m->base.as_4bit ? ts->base_codes : whole->data};
	lq_status st = lq_dora_column_factors(ctx, &job, l, mag, base_rows, &arg,
					      (int64_t)(merge_chunk_units(t) / (uint64_t)m->cols), run->scratch,
					      ts->col_factor[l]);
	free(mag);
	return st == LQ_OK ? LQ_OK : lq_fail_task(ctx, st, t->origin, t->name);
}

/* as_4bit: the base, read whole, quantized as nf4quant quantizes it (the codes kept, the scales double-
 * quantized and dequantized back), so that it is merged as loading it in 4 bits gives it. */
static lq_status quantize_base(lq_run *run, const lq_task *t, merge_state *ts, const lq_held *whole)
{
	const lq_merge_args *m = &t->merge;
	lq_ctx *ctx = run->ctx;
	const int64_t n = m->rows * m->cols;
	const lq_group_out form = {.quant = m->base.quant, .out_absmax = -1, .out_nested_absmax = -1};
	/* from the pool: fresh pages for every weight cost more to fault in than the quantization writing them */
	ts->base_codes = lq_reuse_take(ts->reuse, (size_t)lq_quant_packed_bytes(n), &ts->base_codes_bytes);
	lq_chunk all = {.nelem = n, .first = true, .last = true, .out = ts->base_codes};
	if (!ts->base_codes || lq_group_out_begin(&form, n, &ts->base_group) != LQ_OK)
		return LQ_ERR_NOMEM;
	int64_t bad = -1;
	lq_status st = lq_group_out_quantize(ctx, &form, &ts->base_group, whole->data, m->base.dtype, &all, &bad);
	if (st == LQ_ERR_NONFINITE)
		return lq_fail_unquantizable(ctx, t, whole->data, m->base.dtype, 0, bad);
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	/* the scales as a loader dequantizes them */
	if ((st = lq_group_out_finish(ctx, t, &form, &ts->base_group)) != LQ_OK)
		return st;
	ts->base_absmax = ts->base_group.absmax;
	ts->base_group.absmax = NULL;
	return LQ_OK;
}

/* The float32 forms of the side inputs. */
static lq_status merge_prepare(lq_run *run, const lq_task *t, merge_state *ts, const merge_side *x,
			       const lq_held *whole)
{
	static atomic_uint_fast64_t next_key;
	const lq_merge_args *m = &t->merge;
	lq_ctx *ctx = run->ctx;
	ts->key = atomic_fetch_add(&next_key, 1) + 1;
	ts->a = calloc(m->nloras + 1, sizeof *ts->a);
	ts->b = calloc(m->nloras + 1, sizeof *ts->b);
	ts->bt = calloc(m->nloras + 1, sizeof *ts->bt);
	ts->magnitude = calloc(m->nloras + 1, sizeof *ts->magnitude);
	ts->col_factor = calloc(m->nloras + 1, sizeof *ts->col_factor);
	if (!ts->a || !ts->b || !ts->bt || !ts->magnitude || !ts->col_factor)
		return LQ_ERR_NOMEM;
	ts->nloras = m->nloras; /* merge_free walks the arrays from here on */
	bool row_dora = false;
	for (size_t l = 0; l < m->nloras; l++)
		row_dora |= m->loras[l].magnitude_input >= 0 && !column_dora(m, l);
	if (lq_torch_norm_plan_make(&ts->row_plan, m->rows, m->cols, 1, LQ_TORCH_REF_SM_COUNT,
				    LQ_TORCH_REF_MAX_THREADS_PER_SM, 0) != 0 && row_dora)
		return lq_fail_tensor(ctx, LQ_ERR_UNSUPPORTED, t->origin, t->name, "too large for DoRA's norms (%" PRId64
				      " rows)", m->rows);
	for (size_t l = 0; l < m->nloras; l++) {
		const lq_lora *lora = &m->loras[l];
		int64_t r = lora->rank;
		int64_t in = lora->layout == LQ_LORA_TRANSPOSED ? m->rows : m->cols;
		int64_t out = lora->layout == LQ_LORA_TRANSPOSED ? m->cols : m->rows;
		ts->a[l] = malloc((size_t)(r * in) * 4 + 4);
		ts->b[l] = malloc((size_t)(out * r) * 4 + 4);
		if (!ts->a[l] || !ts->b[l])
			return LQ_ERR_NOMEM;
		lq_load_f32_n(x->a[l], lora->ab_dtype, 0, r * in, ts->a[l]);
		if (x->b[l])
			lq_load_f32_n(x->b[l], lora->ab_dtype, 0, out * r, ts->b[l]);
		if (lora->layout == LQ_LORA_TRANSPOSED) { /* B [cols, r] as [r, cols] for the vector kernel */
			ts->bt[l] = malloc((size_t)(out * r) * 4 + 4);
			if (!ts->bt[l])
				return LQ_ERR_NOMEM;
			for (int64_t j = 0; j < out; j++)
				for (int64_t k = 0; k < r; k++)
					ts->bt[l][k * out + j] = ts->b[l][j * r + k];
		}
		if (x->magnitude[l] && !column_dora(m, l)) {
			ts->magnitude[l] = malloc((size_t)m->rows * 4);
			if (!ts->magnitude[l])
				return LQ_ERR_NOMEM;
			lq_load_f32_n(x->magnitude[l], LQ_DTYPE_F32, 0, m->rows, ts->magnitude[l]);
		}
	}
	if (m->nreplace) {
		/* PEFT casts the rows to W's type (delta.to(weight.dtype)) and copies them in */
		ts->replace = malloc((size_t)m->nreplace * (size_t)m->cols * 4);
		ts->replace_of = malloc((size_t)m->rows * sizeof *ts->replace_of);
		if (!ts->replace || !ts->replace_of)
			return LQ_ERR_NOMEM;
		for (int64_t i = 0; i < (int64_t)m->nreplace * m->cols; i++)
			ts->replace[i] = lq_round_to(m->base.dtype, lq_load_f32(x->replace, m->replace_dtype, i));
		for (int64_t i = 0; i < m->rows; i++)
			ts->replace_of[i] = -1;
		for (size_t i = 0; i < m->nreplace; i++)
			ts->replace_of[m->replace_rows[i]] = (int32_t)i;
	}
	if (base_quantized_first(m)) {
		lq_status st = quantize_base(run, t, ts, whole);
		if (st != LQ_OK)
			return st;
	}
	if (m->base.quantized) {
		lq_status st = lq_group_scales(ctx, &m->base, m->rows * m->cols, &x->base, &ts->base_absmax);
		if (st == LQ_ERR_NOMEM)
			return st;
		if (st != LQ_OK)
			return lq_fail_task(ctx, st, t->origin, t->name);
		/* a scale that is not finite (stored so, or a double-quantization offset that overflows it) would
		 * make every weight of its block infinite or NaN */
		int64_t nb = lq_quant_nblocks(m->rows * m->cols, m->base.quant.blocksize);
		int64_t bad = lq_first_nonfinite(ts->base_absmax, LQ_DTYPE_F32, 0, nb);
		if (bad >= 0)
			return lq_fail_tensor(ctx, LQ_ERR_CORRUPT, t->origin, t->name, "the 4-bit base's scale of block %" PRId64
					      " is %s%s", bad, lq_nonfinite_name(ts->base_absmax[bad]),
					      m->base.quant.double_quant ? " once dequantized (its double quantization overflows)" : "");
	}
	if (m->measure_given && m->measured.quantized) {
		lq_status st = lq_group_scales(ctx, &m->measured, m->rows * m->cols, &x->measured_consts, &ts->measured_absmax);
		if (st != LQ_OK)
			return st == LQ_ERR_NOMEM ? st : lq_fail_task(ctx, st, t->origin, t->name);
	}
	for (size_t l = 0; l < m->nloras; l++)
		if (column_dora(m, l)) {
			lq_status st = column_factors(run, t, ts, x, whole, l);
			if (st != LQ_OK)
				return st;
		}
	return LQ_OK;
}

static lq_status merge_begin(lq_run *run, const lq_task *t, void *side, lq_held *whole, void **state)
{
	merge_state *ts = calloc(1, sizeof *ts);
	if (!ts)
		return LQ_ERR_NOMEM;
	*state = ts;
	const lq_merge_args *m = &t->merge;
	const int64_t n = (int64_t)merge_units(t);
	if (m->requantize && lq_group_out_begin(&m->requant, n, &ts->requant) != LQ_OK)
		return LQ_ERR_NOMEM;
	if (fidelity_at_end(m) && whole) { /* the base's bytes are kept already: no copy of each chunk */
		ts->kept_whole = whole;
		lq_held_retain(whole);
	}
	if (m->measure_given) { /* M's bytes change hands: the side is freed after this */
		merge_side *x = side;
		ts->measured = x->measured;
		x->measured = NULL;
	}
	ts->reuse = &run->ctx->reuse;
	if (fidelity_at_end(m)) {
		if (!(ts->kept_y = lq_reuse_take(ts->reuse, (size_t)n * 4, &ts->kept_bytes[0])) ||
		    !(ts->kept_out = lq_reuse_take(ts->reuse, (size_t)lq_quant_packed_bytes(n), &ts->kept_bytes[1])) ||
		    (!whole && !(ts->kept_base = lq_reuse_take(ts->reuse, (size_t)t->nbytes + 1, &ts->kept_bytes[2]))))
			return LQ_ERR_NOMEM;
	}
	return merge_prepare(run, t, ts, side, whole);
}

/* -------------------------------------------------------------------------------- compute */

/* Where a chunk's float32 result is: in the scratch buffer; where it is measured, in the slot's aux buffer
 * (the measure thread reads it there while the next chunk is merged), or, when its fidelity is measured
 * after the last chunk, in its place among the kept results (the merge writes it there, no copy). */
static float *result_of(lq_run *run, const lq_task *t, const merge_state *ts, const lq_chunk *c)
{
	if (fidelity_at_end(&t->merge))
		return ts->kept_y + c->elem0;
	return merge_measures(t) ? (float *)c->aux : run->scratch;
}

/* A merged element (element `i` of chunk c) that is not finite: refused, never written. An adapter that
 * overflows the weight's type, a DoRA row whose norm is zero, a conversion to a narrower type that
 * overflows it all end here, on the CPU and the GPU alike. */
static lq_status fail_nonfinite_merge(lq_run *run, const lq_task *t, const lq_chunk *c, int64_t i, const float *y)
{
	const lq_merge_args *m = &t->merge;
	char where[256];
	float v = y ? y[i] : lq_load_f32(c->out, m->out_dtype, i);
	int64_t k = c->elem0 + i;
	lq_format_index(where, sizeof where, t->shape, t->ndim, k);
	/* a MERGE without adapters converts a weight's type or dequantizes it */
	const char *what = m->nloras ? "merged" : base_4bit(m) ? "dequantized" : "converted";
	return lq_fail_tensor(run->ctx, LQ_ERR_NONFINITE, t->origin, t->name, "%s element %s (flat index %" PRId64 ") is "
			      "%s; refusing to write it", what, where, k, lq_nonfinite_name(v));
}

/* ---------------------------------------------------------------------------------- fidelity */

/* A 4-bit side of elements from e0 on: codes packed from e0, the scales of its blocks. */
static lq_fidelity_side codes_side(const unsigned char *codes, const float *absmax, const lq_quant_params *q,
				   lq_dtype dtype, int64_t e0)
{
	return (lq_fidelity_side){.codes = codes, .absmax = absmax + e0 / q->blocksize, .qtype = q->qtype,
				  .blocksize = q->blocksize, .dtype = dtype};
}

/* The base of chunk c as the merge read it (W), and with a base quantized first, the float base (W16)
 * and its 4-bit form (Wq). */
static void fidelity_base(const lq_merge_args *m, const merge_state *ts, const lq_chunk *c, lq_fidelity_range *r)
{
	if (m->base.quantized)
		r->w = codes_side(c->in, ts->base_absmax, &m->base.quant, m->base.dtype, c->elem0);
	else if (m->base.as_4bit)
		r->w = codes_side(ts->base_codes + c->elem0 / 2, ts->base_absmax, &m->base.quant, m->base.dtype, c->elem0);
	else
		r->w = (lq_fidelity_side){.values = c->in, .dtype = m->base.dtype};
	if (base_quantized_first(m)) {
		r->noise = true;
		r->w16 = (lq_fidelity_side){.values = c->in, .dtype = m->base.dtype};
		r->wq = codes_side(ts->base_codes + c->elem0 / 2, ts->base_absmax, &m->base.quant, m->base.dtype, c->elem0);
	}
}

/* Compute stage: when the output's scales come only with the last chunk, the chunk's codes and base kept
 * for then (its result is kept where the merge wrote it). */
static void keep_for_end(const lq_chunk *c, merge_state *ts)
{
	memcpy(ts->kept_out + c->elem0 / 2, c->out, c->out_len);
	if (!ts->kept_whole)
		memcpy(ts->kept_base + c->offset, c->in, c->len);
}

/* What chunk c's fidelity terms read: its result y and its output in c->out, or the M given. */
static void chunk_range(const lq_task *t, const lq_chunk *c, const merge_state *ts, const float *y,
			lq_fidelity_range *out)
{
	const lq_merge_args *m = &t->merge;
	lq_fidelity_range r = {.y = y, .delta = true, .match = true};
	fidelity_base(m, ts, c, &r);
	if (m->measure_given && m->measured.quantized)
		r.m = codes_side(ts->measured + c->elem0 / 2, ts->measured_absmax, &m->measured.quant, m->base.dtype, c->elem0);
	else if (m->measure_given)
		r.m = (lq_fidelity_side){.values = ts->measured + (size_t)c->elem0 * lq_dtype_size(m->measured.dtype),
					 .dtype = m->measured.dtype};
	else if (m->requantize)
		r.m = codes_side(c->out, ts->requant.absmax, &m->requant.quant, m->base.dtype, c->elem0);
	else
		r.m = (lq_fidelity_side){.values = c->out, .dtype = m->out_dtype};
	*out = r;
}

/* After the last chunk of a requantization with double quantization: every term, over the kept chunks
 * (the base as the chunks gave it), in the chunks' order. */
static lq_status fidelity_end(lq_ctx *ctx, const lq_task *t, merge_state *ts)
{
	const lq_merge_args *m = &t->merge;
	const int64_t n = (int64_t)merge_units(t), step = (int64_t)merge_chunk_units(t);
	const size_t es = lq_dtype_size(m->base.dtype);
	for (int64_t e0 = 0; e0 < n; e0 += step) {
		/* the chunk's input as the reader gave it: kept, or read whole */
		const unsigned char *in = ts->kept_whole ? ts->kept_whole->data : ts->kept_base;
		const lq_chunk c = {.elem0 = e0, .in = in + (m->base.quantized ? (size_t)e0 / 2 : (size_t)e0 * es)};
		lq_fidelity_range r = {.y = ts->kept_y + e0, .delta = true, .match = true,
				       .m = codes_side(ts->kept_out + e0 / 2, ts->requant.absmax, &m->requant.quant,
						       m->base.dtype, e0)};
		fidelity_base(m, ts, &c, &r);
		lq_status st = lq_fidelity_add(ctx, &r, n - e0 < step ? n - e0 : step, &ts->result.fidelity);
		if (st != LQ_OK)
			return st;
	}
	return LQ_OK;
}

/* Measure thread, every chunk of a requantization measured chunk by chunk: its terms, its result y in the
 * aux buffer. */
static lq_status merge_measure(lq_ctx *ctx, const lq_task *t, const lq_chunk *c, void *state)
{
	merge_state *ts = state;
	lq_fidelity_range r;
	chunk_range(t, c, ts, (const float *)c->aux, &r);
	lq_fidelity_add_here(ctx, &r, c->nelem, &ts->result.fidelity);
	return LQ_OK;
}

/* The slot's aux buffer of a merge measured chunk by chunk: the float32 result of its largest chunk. */
static size_t merge_aux_bytes(const lq_task *t)
{
	return merge_measures(t) ? (size_t)merge_chunk_units(t) * 4 : 0;
}

/* The float32 result of a chunk (scratch) as the output's type, rounded to W's type first, as the merge
 * itself writes it (merge.c), for a merge whose fidelity is measured: piece by piece, each piece's
 * fidelity terms taken while it is in cache (the pieces of lq_fidelity_add: the same bits). On the CPU the
 * merge hands over each item's rows as soon as they are merged (rows_merged): the pieces within them are
 * done there, the rest (those across two items, or all, after a GPU) on the pool after the merge. */
typedef struct rounding_job {
	const float *y;
	lq_dtype dtype, out_dtype;
	void *out;
	int64_t n, npieces;
	const lq_ctx *ctx;
	lq_fidelity_range range;
	int64_t *bad;              /* per piece: its first element the output's type cannot hold, or -1 */
	lq_fidelity_sums *pieces;  /* per piece: its terms */
	unsigned char *done;       /* per piece: rounded and measured already */
	int64_t *left;             /* the pieces not done by the merge */
} rounding_job;

static void rounding_piece(rounding_job *j, int64_t p)
{
	const int64_t i = p * LQ_STATS_PIECE, k = j->n - i < LQ_STATS_PIECE ? j->n - i : LQ_STATS_PIECE;
	if (j->dtype == j->out_dtype) { /* storing rounds once, as rounding first would */
		lq_store_f32_n(j->out, j->out_dtype, i, k, j->y + i);
	} else {
		float tmp[LQ_STATS_PIECE];
		lq_round_to_n(j->dtype, j->y + i, k, tmp);
		lq_store_f32_n(j->out, j->out_dtype, i, k, tmp);
	}
	/* a finite sum that the output's type cannot hold, found while the piece is in cache */
	const int64_t bad = lq_first_nonfinite(j->out, j->out_dtype, i, k);
	j->bad[p] = bad < 0 ? -1 : i + bad;
	lq_fidelity_piece(j->ctx, &j->range, j->n, p, &j->pieces[p]);
	j->done[p] = 1;
}

/* The merge's hook: the pieces wholly within elements [e0, e1) (the last one, short, where e1 ends the
 * chunk). */
static void rounding_rows_merged(void *arg, int64_t e0, int64_t e1)
{
	rounding_job *j = arg;
	for (int64_t p = (e0 + LQ_STATS_PIECE - 1) / LQ_STATS_PIECE; p < j->npieces; p++) {
		const int64_t end = (p + 1) * LQ_STATS_PIECE < j->n ? (p + 1) * LQ_STATS_PIECE : j->n;
		if (end > e1)
			break;
		rounding_piece(j, p);
	}
}

static void rounding_item(void *arg, int64_t k)
{
	rounding_job *j = arg;
	rounding_piece(j, j->left[k]);
}

static void rounding_free(rounding_job *j)
{
	free(j->bad);
	free(j->pieces);
	free(j->done);
	free(j->left);
}

static lq_status rounding_begin(lq_run *run, const lq_task *t, const lq_chunk *c, merge_state *ts, rounding_job *j)
{
	const lq_merge_args *m = &t->merge;
	const int64_t npieces = (c->nelem + LQ_STATS_PIECE - 1) / LQ_STATS_PIECE;
	*j = (rounding_job){.y = result_of(run, t, ts, c), .dtype = m->base.dtype, .out_dtype = m->out_dtype,
			    .out = c->out, .n = c->nelem, .npieces = npieces, .ctx = run->ctx,
			    .bad = malloc((size_t)npieces * sizeof *j->bad + 1),
			    .pieces = malloc((size_t)npieces * sizeof *j->pieces + 1), .done = calloc((size_t)npieces + 1, 1),
			    .left = malloc((size_t)npieces * sizeof *j->left + 1)};
	chunk_range(t, c, ts, j->y, &j->range);
	if (!j->bad || !j->pieces || !j->done || !j->left) {
		rounding_free(j);
		return lq_fail(run->ctx, LQ_ERR_NOMEM, "out of memory");
	}
	return LQ_OK;
}

/* After the merge: the pieces it did not do, then the first element the output cannot hold, or the
 * pieces' terms added in order. */
static lq_status rounding_end(lq_run *run, const lq_task *t, lq_chunk *c, merge_state *ts, rounding_job *j)
{
	int64_t nleft = 0;
	for (int64_t p = 0; p < j->npieces; p++)
		if (!j->done[p])
			j->left[nleft++] = p;
	lq_pool_run(run->ctx->pool, nleft, rounding_item, j);
	int64_t bad = -1;
	for (int64_t p = 0; p < j->npieces && bad < 0; p++)
		bad = j->bad[p]; /* the pieces in element order: the first found is the smallest */
	lq_status st = LQ_OK;
	if (bad >= 0) {
		st = fail_nonfinite_merge(run, t, c, bad, NULL);
	} else {
		for (int64_t p = 0; p < j->npieces; p++)
			lq_fidelity_sums_add(&ts->result.fidelity, &j->pieces[p]);
		ts->result.fidelity.has_noise |= j->range.noise;
	}
	rounding_free(j);
	return st;
}

/* The rows an item of the merge covers, a multiple of this, make whole pieces: LQ_STATS_PIECE / gcd. */
static int64_t piece_rows(int64_t cols)
{
	int64_t a = LQ_STATS_PIECE, b = cols > 0 ? cols : 1;
	while (b) {
		const int64_t r = a % b;
		a = b;
		b = r;
	}
	return LQ_STATS_PIECE / a;
}

/* After the rows of a chunk are merged (in c->out, or as float32 in the scratch buffer for a
 * requantization or a measured merge) and found finite: the output's length, or the requantization; the
 * fidelity terms. */
static lq_status merge_finish(lq_run *run, const lq_task *t, lq_chunk *c, merge_state *ts, rounding_job *rounding)
{
	const lq_merge_args *m = &t->merge;
	lq_ctx *ctx = run->ctx;
	const bool measured = m->fidelity && m->nloras;
	if (!m->requantize) {
		c->out_len = (size_t)c->nelem * lq_dtype_size(m->out_dtype);
		return rounding ? rounding_end(run, t, c, ts, rounding) : LQ_OK;
	}
	/* PEFT's 4-bit merge: the float32 sum quantized again, as QUANTIZE4 does */
	int64_t bad = -1;
	float *y = result_of(run, t, ts, c);
	lq_status st = lq_group_out_quantize(ctx, &m->requant, &ts->requant, y, LQ_DTYPE_F32, c, &bad);
	if (st == LQ_ERR_NONFINITE)
		return fail_nonfinite_merge(run, t, c, bad, y);
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	if (measured && fidelity_at_end(m))
		keep_for_end(c, ts);
	if (!c->last)
		return LQ_OK; /* a chunk measured by itself is, on the measure thread */
	st = lq_group_out_finish(ctx, t, &m->requant, &ts->requant);
	ts->result.nested_offset = ts->requant.offset;
	if (st == LQ_OK && measured && fidelity_at_end(m)) {
		st = fidelity_end(ctx, t, ts);
		kept_release(ts);
	}
	return st;
}

/* Merges the rows of one chunk on the context's backend (a GPU that takes the job, or the CPU): the base
 * rows as float32 (a 4-bit base dequantized first), every adapter in order, then the rows out as
 * out_dtype, or quantized again. */
static lq_status merge_compute(lq_run *run, const lq_task *t, lq_chunk *c, void *state)
{
	merge_state *ts = state;
	const lq_merge_args *m = &t->merge;
	lq_ctx *ctx = run->ctx;
	const int64_t cols = m->cols, nrows = c->nelem / (cols ? cols : 1), row0 = c->elem0 / (cols ? cols : 1);
	float *scratch = result_of(run, t, ts, c);
	/* the merge, and the dequantization of a 4-bit base within it, made to fail by the unit tests */
	lq_status st = lq_test_injected(ctx, LQ_TEST_STEP_MERGE);
	if (st == LQ_OK && base_4bit(m))
		st = lq_test_injected(ctx, LQ_TEST_STEP_DEQUANTIZE);
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	/* a measured float merge rounds and measures its rows as the CPU merges them */
	rounding_job rounding, *rj = NULL;
	if (!m->requantize && m->fidelity && m->nloras) {
		if ((st = rounding_begin(run, t, c, ts, &rounding)) != LQ_OK)
			return st;
		rj = &rounding;
	}
	const lq_merge_job job = {.kernels = ctx->cpu, .w = scratch, .row0 = row0, .rows = m->rows, .cols = cols,
				  .dtype = m->base.dtype, .loras = m->loras, .nloras = m->nloras, .a = ts->a, .b = ts->b,
				  .bt = ts->bt, .magnitude = ts->magnitude, .col_factor = ts->col_factor,
				  .row_plan = &ts->row_plan, .keep_last_unrounded = result_unrounded(m),
				  .replace_of = ts->replace_of, .replace = ts->replace,
				  .rows_merged = rj ? rounding_rows_merged : NULL, .rows_merged_arg = rj,
				  .rows_align = rj ? piece_rows(cols) : 1};
	const lq_backend *be = LQ_BACKEND(ctx, merge_rows);
	if (!be->merge_suits(ctx, &job))
		be = &lq_backend_cpu;
	/* a GPU copies its result into the run's scratch buffer (pinned host memory, the fast copy); a result
	 * kept for the end is then copied to its place */
	float *y = be != &lq_backend_cpu && result_unrounded(m) ? run->scratch : scratch;
	int64_t bad = -1;
	const unsigned char *codes = m->base.as_4bit ? ts->base_codes + c->elem0 / 2 : m->base.quantized ? c->in : NULL;
	st = be->merge_rows(ctx, &job, ts->key, nrows, codes ? NULL : c->in, m->base.dtype, codes,
			    codes ? ts->base_absmax + c->elem0 / m->base.quant.blocksize : NULL,
			    m->base.quant.qtype, m->base.quant.blocksize, result_unrounded(m) ? (void *)y : (void *)c->out,
			    result_unrounded(m) ? LQ_DTYPE_F32 : m->out_dtype, &bad);
	if (st != LQ_OK && rj)
		rounding_free(rj);
	if (st == LQ_ERR_NONFINITE)
		return fail_nonfinite_merge(run, t, c, bad, result_unrounded(m) ? y : NULL);
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	if (y != scratch && result_unrounded(m))
		memcpy(scratch, y, (size_t)c->nelem * 4);
	return merge_finish(run, t, c, ts, rj);
}

static lq_status merge_write(const lq_sink *sink, const lq_task *t, const lq_chunk *c, void *state)
{
	const lq_merge_args *m = &t->merge;
	if (!m->requantize)
		return lq_sink_put(sink, t->out_data, (uint64_t)c->elem0 * lq_dtype_size(m->out_dtype), c->out, c->out_len);
	lq_status st = lq_sink_put(sink, t->out_data, (uint64_t)c->elem0 / 2, c->out, c->out_len);
	if (st == LQ_OK && state)
		st = lq_group_out_write(sink, &m->requant, &((merge_state *)state)->requant);
	return st;
}

static const lq_task_result *merge_result(const void *state)
{
	return &((const merge_state *)state)->result;
}

/* A, B and their float32 forms, magnitudes, the rows replaced, a 4-bit base's scales, the whole base (DoRA
 * on columns, a base quantized first) with DoRA's norm accumulators or the base's codes, a requantization's
 * scales. */
static uint64_t merge_state_bytes(const lq_task *t)
{
	const lq_merge_args *m = &t->merge;
	uint64_t side = 0;
	for (size_t l = 0; l < m->nloras; l++)
		side += 12 * (uint64_t)m->loras[l].rank * (uint64_t)(m->rows + m->cols) + 8 * (uint64_t)m->rows;
	if (m->base.quantized) /* its scales, and its codes when they are read whole first (lq_group_side_read) */
		side += lq_group_side_bytes(&m->base, m->rows * m->cols) + t->nbytes;
	side += (uint64_t)m->nreplace * (uint64_t)m->cols * 8 + (m->nreplace ? 4 * (uint64_t)m->rows : 0);
	if (base_whole(m))
		side += t->nbytes;
	if (base_quantized_first(m))
		side += (uint64_t)lq_quant_packed_bytes(m->rows * m->cols) +
			lq_group_out_bytes(&(lq_group_out){.quant = m->base.quant}, m->rows * m->cols);
	if (any_column_dora(m)) {
		lq_torch_norm_plan plan;
		side += 8 * (uint64_t)m->cols * m->nloras;
		if (lq_torch_norm_plan_make(&plan, m->rows, m->cols, 0, LQ_TORCH_REF_SM_COUNT,
					    LQ_TORCH_REF_MAX_THREADS_PER_SM, 0) == 0)
			side += 4 * (uint64_t)lq_torch_norm_outer_slots(&plan) * (uint64_t)m->cols;
	}
	if (m->requantize)
		side += lq_group_out_bytes(&m->requant, (int64_t)merge_units(t));
	if (m->measure_given)
		side += measured_bytes(m, m->rows * m->cols) +
			(m->measured.quantized ? lq_group_side_bytes(&m->measured, m->rows * m->cols) : 0);
	if (fidelity_at_end(m)) /* every chunk's float32 result and codes, and the base as read (unless whole) */
		side += merge_units(t) * 4 + (uint64_t)lq_quant_packed_bytes((int64_t)merge_units(t)) +
			(base_whole(m) ? 0 : t->nbytes);
	return side;
}

const lq_op_impl lq_op_merge = {
	.name = "merge",
	.check = merge_check,
	.units = merge_units,
	.chunk_units = merge_chunk_units,
	.input_bytes = merge_input_bytes,
	.read_side = merge_read_side,
	.free_side = merge_side_free,
	.begin = merge_begin,
	.compute = merge_compute,
	.measures = merge_measures,
	.measure = merge_measure,
	.aux_bytes = merge_aux_bytes,
	.write = merge_write,
	.result = merge_result,
	.free_state = merge_free,
	.state_bytes = merge_state_bytes,
	.out_bytes = LQ_CHUNK_BYTES,     /* rows of float32 at most */
	.scratch_bytes = LQ_CHUNK_BYTES, /* a chunk's rows as float32 */
};
