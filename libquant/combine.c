/*
 * combine.c: PEFT's combination types (add_weighted_adapter) as a table, and merge_utils' combination of
 * task tensors (libquant.h, lq_combine_tasks): pruning, sign election, the weighted sums, in float32 and
 * in the order torch computes them on the CPU.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"

/* One entry per combination_type of PEFT 0.21, in the order its documentation lists them. */
static const lq_combine_type types[] = {
	{"svd", LQ_COMBINE_SVD, LQ_COMBINE_PRUNE_NONE, false},
	{"linear", LQ_COMBINE_FACTORS, LQ_COMBINE_PRUNE_NONE, false},
	{"cat", LQ_COMBINE_CONCAT, LQ_COMBINE_PRUNE_NONE, false},
	{"ties", LQ_COMBINE_FACTORS, LQ_COMBINE_PRUNE_MAGNITUDE, true},
	{"ties_svd", LQ_COMBINE_SVD, LQ_COMBINE_PRUNE_MAGNITUDE, true},
	{"dare_ties", LQ_COMBINE_FACTORS, LQ_COMBINE_PRUNE_RANDOM, true},
	{"dare_linear", LQ_COMBINE_FACTORS, LQ_COMBINE_PRUNE_RANDOM, false},
	{"dare_ties_svd", LQ_COMBINE_SVD, LQ_COMBINE_PRUNE_RANDOM, true},
	{"dare_linear_svd", LQ_COMBINE_SVD, LQ_COMBINE_PRUNE_RANDOM, false},
	{"magnitude_prune", LQ_COMBINE_FACTORS, LQ_COMBINE_PRUNE_MAGNITUDE, false},
	{"magnitude_prune_svd", LQ_COMBINE_SVD, LQ_COMBINE_PRUNE_MAGNITUDE, false},
};

LQ_API const lq_combine_type *lq_combine_type_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof types / sizeof types[0]; i++)
		if (strcmp(types[i].name, name) == 0)
			return &types[i];
	return NULL;
}

LQ_API const lq_combine_type *lq_combine_types(size_t *n)
{
	*n = sizeof types / sizeof types[0];
	return types;
}

/* SplitMix64's finalizer: the random draws are a counter (task, element) through it, keyed by the seed. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* A uniform double in [0, 1) for element j of the task keyed `key`. */
static double uniform(uint64_t key, int64_t j)
{
	return (double)(mix64(key + UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)j) >> 11) * 0x1p-53;
}

/* The k-th largest (k >= 1) of v[0..n) by quickselect (v is reordered). */
static float kth_largest(float *v, int64_t n, int64_t k)
{
	int64_t lo = 0, hi = n - 1;
	const int64_t want = k - 1; /* the position in descending order */
	while (lo < hi) {
		const float pivot = v[lo + (hi - lo) / 2];
		int64_t i = lo, j = hi;
		while (i <= j) {
			while (v[i] > pivot)
				i++;
			while (v[j] < pivot)
				j--;
			if (i <= j) {
				const float t = v[i];
				v[i++] = v[j];
				v[j--] = t;
			}
		}
		if (want <= j)
			hi = j;
		else if (want >= i)
			lo = i;
		else
			return v[want];
	}
	return v[want];
}

/* What magnitude pruning keeps of one task: |x| > thr, and the first `equal` values with |x| == thr. */
typedef struct prune_state {
	float thr;
	int64_t equal;
	bool all, none;
	uint64_t key; /* random pruning */
} prune_state;

static void magnitude_threshold(const float *x, int64_t count, int64_t k, float *scratch, prune_state *ps)
{
	if (k <= 0) {
		ps->none = true;
		return;
	}
	if (k >= count) {
		ps->all = true;
		return;
	}
	for (int64_t j = 0; j < count; j++)
		scratch[j] = fabsf(x[j]);
	ps->thr = kth_largest(scratch, count, k);
	int64_t above = 0;
	for (int64_t j = 0; j < count; j++)
		above += fabsf(x[j]) > ps->thr;
	ps->equal = k - above;
}

static float sign_of(float x)
{
	return x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f;
}

LQ_API lq_status lq_combine_tasks(lq_ctx *ctx, const lq_combine_params *p, const float *const *tasks,
				  const float *weights, size_t n, int64_t count, uint64_t stream, float *out)
{
	lq_clear_error(ctx);
	if (!p || !p->type || n == 0 || count < 0)
		return lq_fail(ctx, LQ_ERR_ARG, "combine: no task tensors");
	const lq_combine_prune method = p->density >= 1 ? LQ_COMBINE_PRUNE_NONE : p->type->prune;
	if (method != LQ_COMBINE_PRUNE_NONE && !(p->density >= 0))
		return lq_fail(ctx, LQ_ERR_ARG, "combine: density %g is not in [0, 1]", p->density);
	if (method == LQ_COMBINE_PRUNE_RANDOM && p->density == 0)
		return lq_fail(ctx, LQ_ERR_ARG, "combine: %s with density 0 divides by zero (PEFT's rescaling)",
			       p->type->name);
	for (size_t i = 0; i < n; i++)
		for (int64_t j = 0; j < count; j++)
			if (!isfinite(tasks[i][j]))
				return lq_fail(ctx, LQ_ERR_NONFINITE, "combine: element %lld of task %zu is %s",
					       (long long)j, i, isnan(tasks[i][j]) ? "NaN" : "infinite");
	prune_state *ps = calloc(n, sizeof *ps);
	float *scratch = method == LQ_COMBINE_PRUNE_MAGNITUDE ? malloc((size_t)(count ? count : 1) * sizeof *scratch) : NULL;
	if (!ps || (method == LQ_COMBINE_PRUNE_MAGNITUDE && !scratch)) {
		free(ps);
		free(scratch);
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	}
	/* k = int(density * numel), Python's float product truncated */
	const int64_t k = method == LQ_COMBINE_PRUNE_MAGNITUDE ? (int64_t)(p->density * (double)count) : 0;
	const uint64_t key = mix64(p->seed ^ mix64(stream));
	for (size_t i = 0; i < n; i++) {
		if (method == LQ_COMBINE_PRUNE_MAGNITUDE)
			magnitude_threshold(tasks[i], count, k, scratch, &ps[i]);
		ps[i].key = mix64(key + i);
	}
	free(scratch);
	const float density = (float)p->density; /* torch divides by the Python float as a float32 */
	float pruned[16], *big = n > 16 ? malloc(n * sizeof *big) : NULL;
	if (n > 16 && !big) {
		free(ps);
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	}
	float *t = big ? big : pruned;
	for (int64_t j = 0; j < count; j++) {
		for (size_t i = 0; i < n; i++) {
			const float x = tasks[i][j];
			float keep = 1.0f;
			if (method == LQ_COMBINE_PRUNE_MAGNITUDE) {
				const float ax = fabsf(x);
				keep = ps[i].all || (!ps[i].none && (ax > ps[i].thr || (ax == ps[i].thr && ps[i].equal-- > 0)))
					       ? 1.0f : 0.0f;
				t[i] = x * keep;
			} else if (method == LQ_COMBINE_PRUNE_RANDOM) {
				keep = uniform(ps[i].key, j) < p->density ? 1.0f : 0.0f;
				t[i] = x * keep / density;
			} else {
				t[i] = x;
			}
		}
		if (p->type->ties) {
			/* calculate_majority_sign_mask and disjoint_merge */
			float sm = 0.0f;
			for (size_t i = 0; i < n; i++)
				sm += p->majority_frequency ? sign_of(t[i]) : t[i];
			const float major = sm >= 0 ? 1.0f : -1.0f;
			float mixed = 0.0f;
			int64_t kept = 0;
			for (size_t i = 0; i < n; i++) {
				const bool agree = sign_of(t[i]) == major;
				mixed += t[i] * weights[i] * (agree ? 1.0f : 0.0f);
				kept += agree;
			}
			out[j] = mixed / (float)(kept < 1 ? 1 : kept);
		} else {
			float sum = 0.0f;
			for (size_t i = 0; i < n; i++)
				sum += t[i] * weights[i];
			out[j] = sum;
		}
	}
	free(big);
	free(ps);
	return LQ_OK;
}
