/*
 * test_merge.c: the executor's MERGE operation against a plain implementation of the arithmetic of
 * shared/specs/lora-merge.md written here from the spec (delta = fused multiply-adds over k in order,
 * times scaling; the sum in float32 rounded once to W's type; embeddings' delta rounded first; DoRA's
 * factor magnitude / norm of V = W + D, per row for the row layout and per column, over every row, for the
 * transposed one, the norms in torch's CUDA order (torch_norm.h, checked against torch on a GPU by
 * tests/gpu/torch_norm_check.py); W rounded after each adapter; the last sum unrounded before a
 * requantization), each adapter over the whole weight at once. Every
 * layout, DoRA, several adapters, a weight over several chunks, a 4-bit base, requantization, a bias
 * vector and replaced rows. With LQ_TEST_DEVICE=cuda the same cases check the GPU merge (the golden
 * comparisons with PEFT itself are the command-line cases lm_golden_*).
 * Each case runs again with its fidelity measured (lq_merge_args.fidelity; a float base's 4-bit form too):
 * the output's bytes must not change, and the sums must equal the definitions of libquant.h computed here
 * in double over the whole weight, element by element in order, from the spec's merge: to 1e-10 of the
 * sum of the terms' magnitudes (the library sums pieces of 4096 and then the pieces, the same terms in
 * another order).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"
#include "test.h"
#include "util.h"

#define MAX_IN 16

/* An in-memory source and sink: inputs and outputs are plain arrays. */
typedef struct mem {
	void *in[MAX_IN];
	uint64_t in_len[MAX_IN];
	int nin;
	void *out[4];
	uint64_t out_len[4];
	float offset;
	lq_fidelity_sums fidelity;
} mem;

static lq_status mem_read(void *self, int32_t input, uint64_t offset, void *dst, size_t len)
{
	mem *m = self;
	if (input < 0 || input >= m->nin || offset + len > m->in_len[input])
		return LQ_ERR_ARG;
	memcpy(dst, (char *)m->in[input] + offset, len);
	return LQ_OK;
}

static lq_status mem_write(void *self, int32_t output, uint64_t offset, const void *src, size_t len)
{
	mem *m = self;
	if (output < 0 || output >= 4 || offset + len > m->out_len[output])
		return LQ_ERR_ARG;
	memcpy((char *)m->out[output] + offset, src, len);
	return LQ_OK;
}

static lq_status mem_done(void *self, const lq_task *task, const lq_task_result *result)
{
	if (task->op == LQ_OP_MERGE && task->merge.requantize)
		((mem *)self)->offset = result->nested_offset;
	if (task->op == LQ_OP_MERGE)
		((mem *)self)->fidelity = result->fidelity;
	return LQ_OK;
}

static const char *mem_error(void *self)
{
	(void)self;
	return "memory";
}

static int32_t add_input(mem *m, void *data, uint64_t len)
{
	m->in[m->nin] = data;
	m->in_len[m->nin] = len;
	return m->nin++;
}

static float *random_floats(util_rng *r, int64_t n, float scale)
{
	float *p = malloc((size_t)n * 4 + 4);
	for (int64_t i = 0; i < n; i++)
		p[i] = util_normal(r, scale);
	return p;
}

/* The values as `dtype` bytes (what a safetensors file holds). */
static void *as_dtype(const float *v, int64_t n, lq_dtype dtype)
{
	void *p = malloc((size_t)n * lq_dtype_size(dtype) + 4);
	for (int64_t i = 0; i < n; i++)
		lq_store_f32(p, dtype, i, v[i]);
	return p;
}

/* One adapter of a case, with its float32 matrices (read back from ab_dtype, as the merge reads them). */
typedef struct ref_lora {
	lq_lora l;
	float *a, *b, *magnitude;
} ref_lora;

/* The spec's arithmetic, adapter by adapter over the whole of w [rows, cols], in place. */
static void ref_merge(float *w, int64_t rows, int64_t cols, lq_dtype dtype, const ref_lora *loras, size_t n,
		      bool keep_last_unrounded)
{
	float *v = malloc((size_t)(rows * cols) * 4);
	float tv[LQ_TORCH_NORM_MAX_THREADS], g[LQ_TORCH_NORM_MAX_THREADS];
	lq_torch_norm_plan row_plan, col_plan;
	CHECK(lq_torch_norm_plan_make(&row_plan, rows, cols, 1, 132, 2048, 0) == 0);
	CHECK(lq_torch_norm_plan_make(&col_plan, rows, cols, 0, 132, 2048, 0) == 0);
	for (size_t l = 0; l < n; l++) {
		const ref_lora *L = &loras[l];
		const int64_t r = L->l.rank;
		for (int64_t i = 0; i < rows; i++)
			for (int64_t j = 0; j < cols; j++) {
				float acc = 0.0f;
				if (L->l.layout == LQ_LORA_VECTOR)
					acc = L->a[j];
				else if (L->l.layout == LQ_LORA_ROWS) /* B [rows, r] @ A [r, cols] */
					for (int64_t k = 0; k < r; k++)
						acc = fmaf(L->b[i * r + k], L->a[k * cols + j], acc);
				else /* (B [cols, r] @ A [r, rows])^T */
					for (int64_t k = 0; k < r; k++)
						acc = fmaf(L->b[j * r + k], L->a[k * rows + i], acc);
				float d = acc * L->l.scaling;
				if (L->l.round_delta)
					d = lq_round_to(dtype, d);
				v[i * cols + j] = w[i * cols + j] + d;
			}
		if (L->magnitude && L->l.layout == LQ_LORA_ROWS) {
			for (int64_t i = 0; i < rows; i++) {
				float factor = L->magnitude[i] / lq_torch_norm_row(&row_plan, v + i * cols, (int)((i * cols) % 4), tv, g);
				for (int64_t j = 0; j < cols; j++)
					v[i * cols + j] = factor * v[i * cols + j];
			}
		} else if (L->magnitude) {
			float *slots = calloc((size_t)(lq_torch_norm_outer_slots(&col_plan) * cols), 4);
			float *factor = malloc((size_t)cols * 4), *col = malloc((size_t)rows * 4);
			for (int64_t i = 0; i < rows; i++)
				for (int64_t j = 0; j < cols && !col_plan.inner; j++) {
					float *sl = slots + lq_torch_norm_outer_slot(&col_plan, i) * cols + j;
					*sl = fmaf(v[i * cols + j], v[i * cols + j], *sl);
				}
			for (int64_t j = 0; j < cols; j++) {
				for (int64_t i = 0; i < rows; i++)
					col[i] = v[i * cols + j];
				const float norm = col_plan.inner ? lq_torch_norm_row(&col_plan, col, 0, tv, g)
								  : lq_torch_norm_column(&col_plan, slots, cols, j, tv, g);
				factor[j] = L->magnitude[j] / norm;
			}
			free(col);
			for (int64_t i = 0; i < rows; i++)
				for (int64_t j = 0; j < cols; j++)
					v[i * cols + j] = factor[j] * v[i * cols + j];
			free(slots);
			free(factor);
		}
		bool keep = keep_last_unrounded && l + 1 == n;
		for (int64_t i = 0; i < rows * cols; i++)
			w[i] = keep ? v[i] : lq_round_to(dtype, v[i]);
	}
	free(v);
}

typedef struct lora_spec {
	lq_lora_layout layout;
	int rank;
	float scaling;
	bool round_delta, dora;
	lq_dtype ab_dtype;
} lora_spec;

typedef struct merge_case {
	const char *name;
	int64_t rows, cols;
	lq_dtype dtype, out_dtype;
	bool quantized_base, requantize;
	lora_spec loras[3];
	size_t nloras;
	size_t nreplace; /* rows replaced (float32 source rows) */
} merge_case;

/* 4-bit NF4 (blocksize 64, double quantization) quantize-dequantize of n float32 values, rounded to dtype,
 * as bitsandbytes gives it; *out_codes (when not NULL) gets the codes. */
static float *nf4_roundtrip(lq_ctx *ctx, const float *v, int64_t n, lq_dtype dtype)
{
	const int64_t nb = lq_quant_nblocks(n, 64);
	float *absmax = malloc((size_t)nb * 4), *back = malloc((size_t)nb * 4), *out = malloc((size_t)n * 4 + 4);
	uint8_t *packed = malloc((size_t)lq_quant_packed_bytes(n)), *q = malloc((size_t)nb);
	float *nested = malloc((size_t)lq_quant_nested_blocks(nb) * 4), offset;
	int64_t bad;
	CHECK(lq_quantize_blocks(ctx, v, LQ_DTYPE_F32, n, LQ_QTYPE_NF4, 64, packed, absmax, &bad) == LQ_OK);
	CHECK(lq_double_quant(ctx, absmax, nb, q, nested, &offset) == LQ_OK);
	CHECK(lq_dequantize_absmax(ctx, q, nested, offset, nb, back) == LQ_OK);
	CHECK(lq_dequantize_blocks(ctx, packed, back, n, LQ_QTYPE_NF4, 64, LQ_DTYPE_F32, out) == LQ_OK);
	for (int64_t i = 0; i < n; i++)
		out[i] = lq_round_to(dtype, out[i]);
	free(absmax), free(back), free(packed), free(q), free(nested);
	return out;
}

/* |got - want| within 1e-10 of the sum of the terms' magnitudes. */
static void check_sum(const char *name, const char *what, double got, double want, double magnitude)
{
	if (!(fabs(got - want) <= 1e-10 * magnitude))
		test_fail(__FILE__, __LINE__, "%s: fidelity %s %.17g, want %.17g", name, what, got, want);
}

/* The fidelity sums by their definitions: base the base as merged, w16 and wq a float base and its 4-bit
 * form (NULL: none), y the float32 result, m what the output holds. */
static void check_fidelity(const merge_case *c, const lq_fidelity_sums *got, const float *base, const float *w16,
			   const float *wq, const float *y, const float *m, int64_t n)
{
	double delta2 = 0, dot = 0, dot_mag = 0, residual2 = 0, noise2 = 0;
	for (int64_t i = 0; i < n; i++) {
		const double d = (double)y[i] - base[i], e = (double)m[i] - y[i], moved = (double)m[i] - base[i];
		delta2 += d * d;
		dot += moved * d;
		dot_mag += fabs(moved * d);
		residual2 += e * e;
		if (w16)
			noise2 += ((double)w16[i] - wq[i]) * ((double)w16[i] - wq[i]);
	}
	if (got->elements != (uint64_t)n || got->has_noise != (w16 != NULL))
		test_fail(__FILE__, __LINE__, "%s: fidelity of %llu elements (noise %d), want %lld (%d)", c->name,
			  (unsigned long long)got->elements, got->has_noise, (long long)n, w16 != NULL);
	check_sum(c->name, "delta2", got->delta2, delta2, delta2);
	check_sum(c->name, "dot", got->dot, dot, dot_mag);
	check_sum(c->name, "residual2", got->residual2, residual2, residual2);
	check_sum(c->name, "noise2", got->noise2, noise2, noise2);
}

/* The merge of task t (just run with its fidelity measured, its output in m) run again with that output
 * given as M (lq_merge_args.measure_given: qinspect --adapter BASE MERGED) and written nowhere, on one
 * thread (the merge's items cut otherwise: other pieces measured as their rows are merged, others after):
 * the same sums, bit for bit. */
static void measure_given(const merge_case *c, const lq_task *t, mem *m)
{
	lq_ctx *ctx = util_ctx(1);
	if (!ctx)
		return;
	const int64_t n = c->rows * c->cols, nb = lq_quant_nblocks(n, 64);
	lq_task g = *t;
	mem again = *m;
	g.out_data = -1;
	g.merge.requantize = false;
	g.merge.requant = (lq_group_out){.out_absmax = -1, .out_nested_absmax = -1};
	g.merge.out_dtype = c->dtype;
	g.merge.measure_given = true;
	g.merge.measured_input = add_input(&again, m->out[0], m->out_len[0]);
	if (c->requantize)
		g.merge.measured = (lq_tensor_in){.dtype = c->dtype, .quantized = true, .quant = {LQ_QTYPE_NF4, 64, true},
						  .offset = m->offset, .absmax_input = add_input(&again, m->out[1], (uint64_t)nb),
						  .nested_input = add_input(&again, m->out[2], m->out_len[2])};
	else
		g.merge.measured = (lq_tensor_in){.dtype = c->out_dtype};
	again.fidelity = (lq_fidelity_sums){0};
	lq_source src = {.self = &again, .read = mem_read, .error_string = mem_error};
	lq_sink sink = {.self = &again, .write = mem_write, .task_done = mem_done, .error_string = mem_error};
	if (lq_execute(ctx, &g, 1, &src, &sink, NULL, NULL) != LQ_OK)
		test_fail(__FILE__, __LINE__, "%s: M given: %s", c->name, lq_ctx_error_string(ctx));
	else if (again.fidelity.elements != m->fidelity.elements || again.fidelity.delta2 != m->fidelity.delta2 ||
		 again.fidelity.dot != m->fidelity.dot || again.fidelity.residual2 != m->fidelity.residual2 ||
		 again.fidelity.has_noise != m->fidelity.has_noise || again.fidelity.noise2 != m->fidelity.noise2)
		test_fail(__FILE__, __LINE__, "%s: M given: dot %.17g residual2 %.17g, the merge's own %.17g %.17g", c->name,
			  again.fidelity.dot, again.fidelity.residual2, m->fidelity.dot, m->fidelity.residual2);
	lq_ctx_free(ctx);
}

static void run_case(const merge_case *c, util_rng *rng, bool fidelity)
{
	lq_ctx *ctx = util_ctx(4);
	if (!ctx)
		return;
	mem m = {0};
	const int64_t n = c->rows * c->cols;
	lq_task t = {.op = LQ_OP_MERGE, .name = c->name, .ndim = 2, .shape = {c->rows, c->cols}, .out_data = 0,
		     .merge = {.rows = c->rows, .cols = c->cols, .base = {.dtype = c->dtype}, .out_dtype = c->out_dtype,
			       .requantize = c->requantize, .requant = {.out_absmax = -1, .out_nested_absmax = -1},
			       .replace_input = -1, .fidelity = fidelity}};
	/* the base W, and its float32 values as the merge starts from them */
	float *w = random_floats(rng, n, 0.05f);
	void *packed = NULL, *absmax_q = NULL, *nested = NULL, *win = NULL;
	if (c->quantized_base) {
		const int64_t nb = lq_quant_nblocks(n, 64);
		float *absmax = malloc((size_t)nb * 4), *back = malloc((size_t)nb * 4);
		packed = malloc((size_t)lq_quant_packed_bytes(n));
		absmax_q = malloc((size_t)nb);
		nested = malloc((size_t)lq_quant_nested_blocks(nb) * 4);
		int64_t bad;
		CHECK(lq_quantize_blocks(ctx, w, LQ_DTYPE_F32, n, LQ_QTYPE_NF4, 64, packed, absmax, &bad) == LQ_OK);
		CHECK(lq_double_quant(ctx, absmax, nb, absmax_q, nested, &t.merge.base.offset) == LQ_OK);
		CHECK(lq_dequantize_absmax(ctx, absmax_q, nested, t.merge.base.offset, nb, back) == LQ_OK);
		CHECK(lq_dequantize_blocks(ctx, packed, back, n, LQ_QTYPE_NF4, 64, LQ_DTYPE_F32, w) == LQ_OK);
		for (int64_t i = 0; i < n; i++)
			w[i] = lq_round_to(c->dtype, w[i]);
		t.merge.base.quantized = true;
		t.merge.base.quant = (lq_quant_params){LQ_QTYPE_NF4, 64, true};
		t.input = add_input(&m, packed, (uint64_t)lq_quant_packed_bytes(n));
		t.nbytes = (uint64_t)lq_quant_packed_bytes(n);
		t.merge.base.absmax_input = add_input(&m, absmax_q, (uint64_t)nb);
		t.merge.base.nested_input = add_input(&m, nested, (uint64_t)lq_quant_nested_blocks(nb) * 4);
		free(absmax);
		free(back);
	} else {
		win = as_dtype(w, n, c->dtype);
		for (int64_t i = 0; i < n; i++)
			w[i] = lq_load_f32(win, c->dtype, i);
		t.input = add_input(&m, win, (uint64_t)n * lq_dtype_size(c->dtype));
		t.nbytes = (uint64_t)n * lq_dtype_size(c->dtype);
		/* measured: what its 4-bit form would lose too */
		t.merge.measure_4bit = fidelity;
		t.merge.base.quant = (lq_quant_params){LQ_QTYPE_NF4, 64, true};
	}
	float *base = malloc((size_t)n * 4 + 4); /* W as the merge starts from it, before any row is replaced */
	memcpy(base, w, (size_t)n * 4);
	/* rows replaced: the last of a repeated row wins, cast to W's type */
	int64_t rows_to_replace[4] = {3, c->rows - 1, 0, 3};
	float *repl = NULL;
	void *repl_in = NULL;
	if (c->nreplace) {
		repl = random_floats(rng, (int64_t)c->nreplace * c->cols, 0.5f);
		repl_in = as_dtype(repl, (int64_t)c->nreplace * c->cols, LQ_DTYPE_F32);
		t.merge.replace_rows = rows_to_replace;
		t.merge.nreplace = c->nreplace;
		t.merge.replace_input = add_input(&m, repl_in, (uint64_t)c->nreplace * (uint64_t)c->cols * 4);
		t.merge.replace_dtype = LQ_DTYPE_F32;
		for (size_t k = 0; k < c->nreplace; k++)
			for (int64_t j = 0; j < c->cols; j++)
				w[rows_to_replace[k] * c->cols + j] = lq_round_to(c->dtype, repl[(int64_t)k * c->cols + j]);
	}
	/* the adapters */
	lq_lora loras[3];
	ref_lora ref[3];
	void *raw[3][3] = {{0}};
	for (size_t l = 0; l < c->nloras; l++) {
		const lora_spec *sp = &c->loras[l];
		const int64_t r = sp->rank;
		int64_t na = sp->layout == LQ_LORA_VECTOR ? c->cols : r * (sp->layout == LQ_LORA_ROWS ? c->cols : c->rows);
		int64_t nb = sp->layout == LQ_LORA_VECTOR ? 0 : r * (sp->layout == LQ_LORA_ROWS ? c->rows : c->cols);
		float *a = random_floats(rng, na, 0.2f), *b = random_floats(rng, nb ? nb : 1, 0.2f);
		loras[l] = (lq_lora){.layout = sp->layout, .rank = sp->rank, .scaling = sp->scaling,
				     .round_delta = sp->round_delta, .ab_dtype = sp->ab_dtype, .b_input = -1,
				     .magnitude_input = -1};
		raw[l][0] = as_dtype(a, na, sp->ab_dtype);
		loras[l].a_input = add_input(&m, raw[l][0], (uint64_t)na * lq_dtype_size(sp->ab_dtype));
		for (int64_t i = 0; i < na; i++)
			a[i] = lq_load_f32(raw[l][0], sp->ab_dtype, i);
		if (nb) {
			raw[l][1] = as_dtype(b, nb, sp->ab_dtype);
			loras[l].b_input = add_input(&m, raw[l][1], (uint64_t)nb * lq_dtype_size(sp->ab_dtype));
			for (int64_t i = 0; i < nb; i++)
				b[i] = lq_load_f32(raw[l][1], sp->ab_dtype, i);
		}
		float *mag = NULL;
		if (sp->dora) { /* one magnitude per row, or per column (the transposed layout) */
			const int64_t nm = sp->layout == LQ_LORA_TRANSPOSED ? c->cols : c->rows;
			mag = random_floats(rng, nm, 1.0f);
			for (int64_t i = 0; i < nm; i++)
				mag[i] = fabsf(mag[i]) + 0.5f;
			raw[l][2] = mag;
			loras[l].magnitude_input = add_input(&m, mag, (uint64_t)nm * 4);
		}
		ref[l] = (ref_lora){loras[l], a, b, mag};
	}
	t.merge.loras = loras;
	t.merge.nloras = c->nloras;
	/* the outputs */
	const int64_t nb_out = lq_quant_nblocks(n, 64);
	if (c->requantize) {
		t.merge.requant = (lq_group_out){{LQ_QTYPE_NF4, 64, true}, 1, 2};
		m.out_len[0] = (uint64_t)lq_quant_packed_bytes(n);
		m.out_len[1] = (uint64_t)nb_out;
		m.out_len[2] = (uint64_t)lq_quant_nested_blocks(nb_out) * 4;
	} else {
		m.out_len[0] = (uint64_t)n * lq_dtype_size(c->out_dtype);
	}
	for (int k = 0; k < 3; k++)
		m.out[k] = calloc(1, m.out_len[k] + 1);
	lq_source src = {.self = &m, .read = mem_read, .error_string = mem_error};
	lq_sink sink = {.self = &m, .write = mem_write, .task_done = mem_done, .error_string = mem_error};
	lq_status st = lq_execute(ctx, &t, 1, &src, &sink, NULL, NULL);
	if (st != LQ_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", c->name, lq_ctx_error_string(ctx));
	/* the expected bytes, and the float32 result before it is rounded or quantized */
	float *y = malloc((size_t)n * 4 + 4);
	memcpy(y, w, (size_t)n * 4);
	ref_merge(y, c->rows, c->cols, c->dtype, ref, c->nloras, true);
	ref_merge(w, c->rows, c->cols, c->dtype, ref, c->nloras, c->requantize);
	if (st == LQ_OK && fidelity && c->nloras) {
		float *held = c->requantize ? nf4_roundtrip(ctx, w, n, c->dtype) : malloc((size_t)n * 4 + 4);
		if (!c->requantize) /* the output's values, rounded to W's type first */
			for (int64_t i = 0; i < n; i++)
				held[i] = lq_round_to(c->out_dtype, lq_round_to(c->dtype, y[i]));
		float *wq = c->quantized_base ? NULL : nf4_roundtrip(ctx, base, n, c->dtype);
		check_fidelity(c, &m.fidelity, base, wq ? base : NULL, wq, y, held, n);
		free(held), free(wq);
		measure_given(c, &t, &m);
	}
	free(base), free(y);
	if (st == LQ_OK && c->requantize) {
		uint8_t *p = malloc((size_t)m.out_len[0]), *q = malloc((size_t)nb_out);
		float *amax = malloc((size_t)nb_out * 4), *nest = malloc((size_t)m.out_len[2]), off;
		int64_t bad;
		CHECK(lq_quantize_blocks(ctx, w, LQ_DTYPE_F32, n, LQ_QTYPE_NF4, 64, p, amax, &bad) == LQ_OK);
		CHECK(lq_double_quant(ctx, amax, nb_out, q, nest, &off) == LQ_OK);
		if (memcmp(p, m.out[0], m.out_len[0]) != 0)
			test_fail(__FILE__, __LINE__, "%s: codes differ", c->name);
		if (memcmp(q, m.out[1], m.out_len[1]) != 0)
			test_fail(__FILE__, __LINE__, "%s: absmax codes differ", c->name);
		if (memcmp(nest, m.out[2], m.out_len[2]) != 0 || off != m.offset)
			test_fail(__FILE__, __LINE__, "%s: nested constants differ", c->name);
		free(p), free(q), free(amax), free(nest);
	} else if (st == LQ_OK) {
		void *want = as_dtype(w, n, c->out_dtype);
		int64_t first = -1, ndiff = 0;
		const size_t es = lq_dtype_size(c->out_dtype);
		for (int64_t i = 0; i < n; i++)
			if (memcmp((char *)want + i * (int64_t)es, (char *)m.out[0] + i * (int64_t)es, es) != 0 && ndiff++ == 0)
				first = i;
		if (ndiff)
			test_fail(__FILE__, __LINE__, "%s: %lld of %lld elements differ, first [%lld, %lld]", c->name,
				  (long long)ndiff, (long long)n, (long long)(first / c->cols), (long long)(first % c->cols));
		free(want);
	}
	for (size_t l = 0; l < c->nloras; l++) {
		free(ref[l].a);
		free(ref[l].b);
		for (int k = 0; k < 3; k++)
			free(raw[l][k]);
	}
	for (int k = 0; k < 3; k++)
		free(m.out[k]);
	free(w), free(win), free(packed), free(absmax_q), free(nested), free(repl), free(repl_in);
	lq_ctx_free(ctx);
}

static const merge_case cases[] = {
	{"bf16_rows_r8", 300, 520, LQ_DTYPE_BF16, LQ_DTYPE_BF16, false, false,
	 {{LQ_LORA_ROWS, 8, 2.0f, false, false, LQ_DTYPE_F32}}, 1, 0},
	{"f16_bf16adapter", 129, 77, LQ_DTYPE_F16, LQ_DTYPE_F16, false, false,
	 {{LQ_LORA_ROWS, 5, 0.7071068f, false, false, LQ_DTYPE_BF16}}, 1, 0},
	/* 5.3M elements: two chunks, the second starting at a row other than 0 */
	{"two_chunks_two_adapters_dora", 2600, 2048, LQ_DTYPE_BF16, LQ_DTYPE_BF16, false, false,
	 {{LQ_LORA_ROWS, 16, 2.0f, false, false, LQ_DTYPE_F32}, {LQ_LORA_TRANSPOSED, 4, 0.5f, false, true, LQ_DTYPE_F32}},
	 2, 0},
	{"embedding_rounded_delta_to_fp32", 384, 128, LQ_DTYPE_BF16, LQ_DTYPE_F32, false, false,
	 {{LQ_LORA_TRANSPOSED, 4, 2.0f, true, false, LQ_DTYPE_F32}}, 1, 0},
	{"f32_dora_three", 70, 300, LQ_DTYPE_F32, LQ_DTYPE_BF16, false, false,
	 {{LQ_LORA_ROWS, 3, 1.5f, false, true, LQ_DTYPE_F32},
	  {LQ_LORA_ROWS, 1, -1.0f, false, false, LQ_DTYPE_F16},
	  {LQ_LORA_TRANSPOSED, 2, 4.0f, false, true, LQ_DTYPE_F32}},
	 3, 0},
	{"nf4_base", 256, 320, LQ_DTYPE_BF16, LQ_DTYPE_BF16, true, false,
	 {{LQ_LORA_ROWS, 8, 2.0f, false, false, LQ_DTYPE_F32}}, 1, 0},
	/* DoRA on an embedding: per column, the delta not rounded first; 3 chunks, one DoRA on rows before; two chunks */
	{"f32_embedding_dora_columns", 12000, 384, LQ_DTYPE_F32, LQ_DTYPE_F32, false, false,
	 {{LQ_LORA_ROWS, 2, 1.0f, false, true, LQ_DTYPE_F32}, {LQ_LORA_TRANSPOSED, 8, 2.0f, false, true, LQ_DTYPE_F32}},
	 2, 0},
	{"nf4_base_dora_columns_requantize", 33000, 130, LQ_DTYPE_BF16, LQ_DTYPE_BF16, true, true,
	 {{LQ_LORA_TRANSPOSED, 4, 2.0f, false, true, LQ_DTYPE_F32}}, 1, 0},
	{"dora_columns_odd", 129, 7, LQ_DTYPE_F16, LQ_DTYPE_BF16, false, false,
	 {{LQ_LORA_TRANSPOSED, 3, 0.5f, false, true, LQ_DTYPE_BF16}, {LQ_LORA_ROWS, 1, 1.0f, false, false, LQ_DTYPE_F32}},
	 2, 0},
	{"nf4_base_requantize_dora", 2100, 2048, LQ_DTYPE_BF16, LQ_DTYPE_BF16, true, true,
	 {{LQ_LORA_ROWS, 8, 2.0f, false, true, LQ_DTYPE_F32}}, 1, 0},
	{"float_base_requantize", 96, 200, LQ_DTYPE_BF16, LQ_DTYPE_BF16, false, true,
	 {{LQ_LORA_ROWS, 4, 2.0f, false, false, LQ_DTYPE_F32}}, 1, 0},
	{"bias_vector", 1, 777, LQ_DTYPE_BF16, LQ_DTYPE_BF16, false, false,
	 {{LQ_LORA_VECTOR, 1, 2.0f, false, false, LQ_DTYPE_F32}}, 1, 0},
	{"rows_replaced", 50, 64, LQ_DTYPE_BF16, LQ_DTYPE_BF16, false, false, {{0}}, 0, 4},
};

TEST(merge_matches_the_spec_arithmetic)
{
	util_rng rng = {util_seed()};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		run_case(&cases[i], &rng, false);
		run_case(&cases[i], &rng, true);
	}
	test_note("%zu cases (%s)", sizeof cases / sizeof cases[0], getenv("LQ_TEST_DEVICE") ? getenv("LQ_TEST_DEVICE") : "cpu");
}
