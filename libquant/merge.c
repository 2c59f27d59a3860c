/*
 * merge.c: LoRA merges on the CPU (libquant.h, lq_lora): the delta rows, as PEFT computes them, and the
 * merge of a range of a weight's rows. The scalar loops are the reference; merge_avx2.c computes the same
 * fused multiply-adds eight columns at a time, in the same order, so the bytes are the same.
 */
#include <math.h>
#include <stdlib.h>

#include "lq_internal.h"

void lq_lora_delta_row(const lq_lora *lora, const float *a, const float *b, int64_t rows, int64_t cols, int64_t row,
		       float *out)
{
	const int64_t r = lora->rank;
	if (lora->layout == LQ_LORA_VECTOR) {
		for (int64_t j = 0; j < cols; j++)
			out[j] = a[j] * lora->scaling;
		return;
	}
	for (int64_t j = 0; j < cols; j++) {
		float acc = 0.0f;
		if (lora->layout == LQ_LORA_ROWS)
			for (int64_t k = 0; k < r; k++)
				acc = fmaf(b[row * r + k], a[k * cols + j], acc);
		else
			for (int64_t k = 0; k < r; k++)
				acc = fmaf(b[j * r + k], a[k * rows + row], acc);
		out[j] = acc * lora->scaling;
	}
}

/* d = W + D of lora l for rows g .. g + ng - 1 (ng <= LQ_MERGE_GROUP), W the rows in job->w. */
static void sum_group(const lq_merge_job *job, size_t l, int64_t g, int ng, float *d)
{
	const lq_lora *lora = &job->loras[l];
	const int64_t cols = job->cols;
	/* the deltas of the group's rows (they do not depend on W), then each row's sum */
	if (job->kernels && job->kernels->delta_rows && lora->layout != LQ_LORA_VECTOR)
		job->kernels->delta_rows(lora, job->a[l], job->b[l], job->bt[l], job->rows, cols, g, ng, d);
	else
		for (int t = 0; t < ng; t++)
			lq_lora_delta_row(lora, job->a[l], job->b[l], job->rows, cols, g + t, d + t * cols);
	for (int t = 0; t < ng; t++) {
		const float *w = job->w + (g + t - job->row0) * cols;
		float *di = d + t * cols;
		if (lora->round_delta)
			lq_round_to_n(job->dtype, di, cols, di);
		for (int64_t j = 0; j < cols; j++)
			di[j] = w[j] + di[j];
	}
}

void lq_merge_rows(const lq_merge_job *job, int64_t r0, int64_t r1, float *d)
{
	const int64_t cols = job->cols;
	float tv[LQ_TORCH_NORM_MAX_THREADS], gv[LQ_TORCH_NORM_MAX_THREADS];
	for (int64_t g = r0; g < r1; g += LQ_MERGE_GROUP) {
		const int ng = (int)(r1 - g < LQ_MERGE_GROUP ? r1 - g : LQ_MERGE_GROUP);
		for (size_t l = 0; l < job->nloras; l++) {
			sum_group(job, l, g, ng, d);
			for (int t = 0; t < ng; t++) {
				const int64_t i = g + t;
				float *w = job->w + (i - job->row0) * cols, *di = d + t * cols;
				if (job->magnitude && job->magnitude[l]) {
					/* DoRA on rows: magnitude / the row's norm (torch's order; V's row i starts
					 * i * cols floats into a 16-byte aligned tensor), times the row */
					const float norm = lq_torch_norm_row(job->row_plan, di, (int)((i * cols) % 4), tv, gv);
					const float factor = job->magnitude[l][i] / norm;
					for (int64_t j = 0; j < cols; j++)
						di[j] = factor * di[j];
				} else if (job->col_factor && job->col_factor[l]) {
					/* DoRA on columns: each column's magnitude / norm, found before the merge */
					const float *f = job->col_factor[l];
					for (int64_t j = 0; j < cols; j++)
						di[j] = f[j] * di[j];
				}
				/* W is rounded to its type after each adapter; the last float32 sum stays unrounded for
				 * a requantization, as PEFT's 4-bit merge quantizes it */
				if (l + 1 == job->nloras && job->keep_last_unrounded)
					memcpy(w, di, (size_t)cols * 4);
				else
					lq_round_to_n(job->dtype, di, cols, w);
			}
		}
	}
}

void lq_merge_sum_rows(const lq_merge_job *job, size_t l, int64_t r0, int64_t r1, float *d)
{
	const int64_t cols = job->cols;
	for (int64_t g = r0; g < r1; g += LQ_MERGE_GROUP) {
		const int ng = (int)(r1 - g < LQ_MERGE_GROUP ? r1 - g : LQ_MERGE_GROUP);
		sum_group(job, l, g, ng, d);
		memcpy(job->w + (g - job->row0) * cols, d, (size_t)ng * (size_t)cols * 4);
	}
}
