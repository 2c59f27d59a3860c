/*
 * dora.c: the factors of DoRA on columns, which a merge needs before its first row.
 *
 * PEFT's DoraEmbeddingVariant (and DoraLinearVariant on a GPT-2 Conv1D, fan_in_fan_out) norms the
 * transposed weight: its factor magnitude[j] / ||V[:, j]|| scales column j of V = W + D, and every row
 * of V enters every factor. So the whole weight goes through once first: group by group of rows, W as
 * the loras before this one leave it, plus this lora's delta, folded into the float32 accumulators of
 * torch's column reduction (torch_norm.h, outer plan), which then give the norms. The merge proper
 * scales by the factors as it goes (lq_merge_rows, job->col_factor).
 *
 * Deterministic whatever the thread count: rows are merged in parallel, but each column's accumulators
 * take the rows in increasing order, one pool item per range of columns.
 */
#include <stdlib.h>

#include "lq_internal.h"
#include "torch_mean.h"

typedef struct fold_job {
	const lq_torch_norm_plan *plan;
	const float *v; /* rows [r0, r1) of V */
	int64_t r0, r1, cols, cols_per_item;
	int64_t rows;
	float *slots;   /* [lq_torch_norm_outer_slots][cols]; or, for an inner plan, V's columns [cols][rows] */
	const float *magnitude;
	float *factors;
} fold_job;

typedef struct rows_job {
	lq_merge_job job; /* nloras = the lora's index: the loras before it */
	size_t l;
	int64_t r0, r1, rows_per_item;
	bool failed;
} rows_job;

static void rows_item(void *arg, int64_t item)
{
	rows_job *m = arg;
	const int64_t a = m->r0 + item * m->rows_per_item;
	const int64_t b = a + m->rows_per_item < m->r1 ? a + m->rows_per_item : m->r1;
	float *d = malloc((size_t)m->job.cols * 4 * LQ_MERGE_GROUP + 4);
	if (!d) {
		m->failed = true;
		return;
	}
	lq_merge_rows(&m->job, a, b, d);
	lq_merge_sum_rows(&m->job, m->l, a, b, d);
	free(d);
}

static void fold_item(void *arg, int64_t item)
{
	const fold_job *f = arg;
	const int64_t j0 = item * f->cols_per_item, j1 = j0 + f->cols_per_item < f->cols ? j0 + f->cols_per_item : f->cols;
	if (f->plan->inner) { /* a single row or column: the columns gathered as they are */
		for (int64_t i = f->r0; i < f->r1; i++)
			for (int64_t j = j0; j < j1; j++)
				f->slots[j * f->rows + i] = f->v[(i - f->r0) * f->cols + j];
		return;
	}
	for (int64_t i = f->r0; i < f->r1; i++) {
		float *s = f->slots + lq_torch_norm_outer_slot(f->plan, i) * f->cols;
		const float *v = f->v + (i - f->r0) * f->cols;
		for (int64_t j = j0; j < j1; j++)
			s[j] = lq_tn_reduce(f->plan, s[j], v[j]);
	}
}

static void factor_item(void *arg, int64_t item)
{
	const fold_job *f = arg;
	const int64_t j0 = item * f->cols_per_item, j1 = j0 + f->cols_per_item < f->cols ? j0 + f->cols_per_item : f->cols;
	float tv[LQ_TORCH_NORM_MAX_THREADS], g[LQ_TORCH_NORM_MAX_THREADS];
	for (int64_t j = j0; j < j1; j++)
		f->factors[j] = f->magnitude[j] / (f->plan->inner ? lq_torch_norm_row(f->plan, f->slots + j * f->rows, 0, tv, g)
								   : lq_torch_norm_column(f->plan, f->slots, f->cols, j, tv, g));
}

lq_status lq_dora_column_factors(lq_ctx *ctx, const lq_merge_job *job, size_t l, const float *magnitude,
				 lq_rows_fn base_rows, void *base_arg, int64_t group_rows, float *v, float *factors)
{
	const int64_t rows = job->rows, cols = job->cols;
	lq_torch_norm_plan plan;
	if (lq_torch_norm_plan_make(&plan, rows, cols, 0, LQ_TORCH_REF_SM_COUNT, LQ_TORCH_REF_MAX_THREADS_PER_SM, 0) != 0)
		return lq_fail(ctx, LQ_ERR_ARG, "invalid DoRA shape [%lld, %lld]", (long long)rows, (long long)cols);
	const int64_t nslots = plan.inner ? rows : lq_torch_norm_outer_slots(&plan);
	float *slots = calloc((size_t)(nslots * cols), sizeof *slots);
	if (!slots)
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory for DoRA's column norms");
	const int64_t threads = lq_ctx_threads(ctx) * 4;
	fold_job f = {.plan = &plan, .v = v, .rows = rows, .cols = cols, .slots = slots, .magnitude = magnitude,
		      .factors = factors};
	f.cols_per_item = (cols + threads - 1) / threads;
	f.cols_per_item = f.cols_per_item < 64 ? 64 : (f.cols_per_item + 15) / 16 * 16;
	const int64_t col_items = (cols + f.cols_per_item - 1) / f.cols_per_item;
	lq_status st = LQ_OK;
	for (int64_t r0 = 0; r0 < rows && st == LQ_OK; r0 += group_rows) {
		const int64_t r1 = r0 + group_rows < rows ? r0 + group_rows : rows;
		st = base_rows(base_arg, r0, r1, v);
		if (st != LQ_OK)
			break;
		rows_job m = {.job = *job, .l = l, .r0 = r0, .r1 = r1};
		m.job.w = v;
		m.job.row0 = r0;
		m.job.nloras = l;
		m.job.keep_last_unrounded = false;
		m.rows_per_item = (r1 - r0 + threads - 1) / threads;
		lq_pool_run(ctx->pool, (r1 - r0 + m.rows_per_item - 1) / m.rows_per_item, rows_item, &m);
		if (m.failed) {
			st = lq_fail(ctx, LQ_ERR_NOMEM, "out of memory for DoRA's column norms");
			break;
		}
		f.r0 = r0;
		f.r1 = r1;
		lq_pool_run(ctx->pool, col_items, fold_item, &f);
	}
	if (st == LQ_OK)
		lq_pool_run(ctx->pool, col_items, factor_item, &f);
	free(slots);
	return st;
}
