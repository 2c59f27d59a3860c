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

void lq_merge_rows(const lq_merge_job *job, int64_t r0, int64_t r1, float *d)
{
	const int64_t cols = job->cols;
	for (int64_t i = r0; i < r1; i++) {
		float *w = job->w + (i - job->row0) * cols;
		for (size_t l = 0; l < job->nloras; l++) {
			const lq_lora *lora = &job->loras[l];
			if (job->kernels && job->kernels->delta_row)
				job->kernels->delta_row(lora, job->a[l], job->b[l], job->bt[l], job->rows, cols, i, d);
			else
				lq_lora_delta_row(lora, job->a[l], job->b[l], job->rows, cols, i, d);
			if (lora->round_delta)
				for (int64_t j = 0; j < cols; j++)
					d[j] = lq_round_to(job->dtype, d[j]);
			for (int64_t j = 0; j < cols; j++)
				d[j] = w[j] + d[j];
			if (job->magnitude[l]) {
				/* DoRA: the row's norm, then magnitude / norm times the merged row */
				double sum = 0;
				for (int64_t j = 0; j < cols; j++)
					sum += (double)d[j] * d[j];
				float factor = job->magnitude[l][i] / (float)sqrt(sum);
				for (int64_t j = 0; j < cols; j++)
					d[j] = factor * d[j];
			}
			/* W is rounded to its type after each adapter; the last float32 sum stays unrounded for a
			 * requantization, as PEFT's 4-bit merge quantizes it */
			bool last = l + 1 == job->nloras;
			for (int64_t j = 0; j < cols; j++)
				w[j] = last && job->keep_last_unrounded ? d[j] : lq_round_to(job->dtype, d[j]);
		}
	}
}
