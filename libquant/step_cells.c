/*
 * step_cells.c: the NF4 code and the dynamic map's 8-bit code as tables that a vector kernel looks up in
 * one step instead of searching.
 *
 * Both codes are step functions of their argument that never go down as it grows (NF4: the number of
 * thresholds below y; the dynamic code: a binary search and a midpoint, checked for every float in
 * [-1.1, 1.1]). A cell index that never goes down either, cut fine enough that no cell holds two steps,
 * then gives the code as base[cell] + (v >= first[cell]): the code at the cell's smallest value, plus one
 * from the first value of the cell where the code goes up. The tables are found from the reference codes
 * themselves (lq_nf4_code, lq_dynamic_code) by bisection over the floats in order, so they are exact by
 * construction, and the build refuses a cell with two steps.
 */
#include <math.h>
#include <pthread.h>

#include "lq_internal.h"

uint32_t lq_nf4_cell(float y)
{
	/* round(15 y) + 16 in the low bits of a float whose unit is 1: 1 .. 31 for |y| <= 1 */
	return lq_f32_bits(fmaf(y, 15.0f, 0x1.8p23f + 16.0f)) & 31u;
}

uint32_t lq_dynamic_cell(float v)
{
	const uint32_t a = lq_f32_bits(v) & 0x7fffffffu;
	uint32_t p = ((a > 0x34800000u ? a : 0x34800000u) - 0x34800000u) >> 17; /* 64 a binade from 2^-22 */
	p = p < LQ_DYNAMIC_CELLS / 2 - 1 ? p : LQ_DYNAMIC_CELLS / 2 - 1;
	return (lq_f32_bits(v) >> 31) ? LQ_DYNAMIC_CELLS / 2 - 1 - p : LQ_DYNAMIC_CELLS / 2 + p;
}

/* Floats in the order of their values as integers: -0 just below +0, NaN never asked for. */
static int64_t key_of(float f)
{
	uint32_t b = lq_f32_bits(f);
	return (b >> 31) ? -(int64_t)(b & 0x7fffffffu) - 1 : (int64_t)b;
}

static float float_of(int64_t k)
{
	return lq_f32_from_bits(k >= 0 ? (uint32_t)k : (uint32_t)(-(k + 1)) | 0x80000000u);
}

typedef struct step_fn {
	uint32_t (*cell)(float);
	uint8_t (*code)(float);
} step_fn;

/* The smallest key in [a, b] whose cell (code: whose code) is at least t, b + 1 if none. */
static int64_t first_key(const step_fn *f, bool by_code, int64_t a, int64_t b, uint32_t t)
{
	int64_t lo = a, hi = b + 1;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;
		float v = float_of(mid);
		if ((by_code ? f->code(v) : f->cell(v)) >= t)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The tables of f over [lo, hi], where its cell never goes down; false if a cell holds two steps. Cells
 * with no value in [lo, hi] take the code of the nearer end and no step. */
static bool build(const step_fn *f, float lo, float hi, int32_t ncells, int32_t *base, float *first)
{
	const int64_t klo = key_of(lo), khi = key_of(hi);
	for (int32_t c = 0; c < ncells; c++) {
		const int64_t a = first_key(f, false, klo, khi, (uint32_t)c);
		const int64_t e = first_key(f, false, klo, khi, (uint32_t)c + 1) - 1;
		first[c] = NAN;
		if (a > e) {
			base[c] = f->code(a > khi ? hi : lo);
			continue;
		}
		base[c] = f->code(float_of(a));
		const int top = f->code(float_of(e));
		if (top == base[c] + 1)
			first[c] = float_of(first_key(f, true, a, e, (uint32_t)top));
		else if (top != base[c])
			return false;
	}
	return true;
}

static lq_step_table nf4_table, dynamic_table;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static bool tables_ok;

static uint8_t nf4_code(float y)
{
	return lq_nf4_code(y);
}

/* The dynamic table's words (lq_step_table.word); false if a step lies in one of the two cells that hold
 * more than 2^17 floats (|v| below 2^-22 (1 + 2^-6), or 1 and above). */
static bool pack_words(lq_step_table *t)
{
	for (int32_t c = 0; c < LQ_DYNAMIC_CELLS; c++) {
		uint32_t s = 1u << 17;
		if (t->first[c] == t->first[c]) {
			const uint32_t b = lq_f32_bits(t->first[c]), p = ((b & 0x7fffffffu) >> 17) - (0x34800000u >> 17);
			if ((b & 0x7fffffffu) < 0x34800000u || p == 0 || p >= LQ_DYNAMIC_CELLS / 2 - 1)
				return false;
			s = (b >> 31) ? 0x1ffffu - (b & 0x1ffffu) : b & 0x1ffffu;
		}
		t->word[c] = (uint32_t)t->base[c] << 18 | s;
	}
	return true;
}

static void tables_build(void)
{
	/* y = x * (1/absmax) and v = c * (1/max |c|) lie in [-1, 1] but for the reciprocal's last unit */
	const step_fn nf4 = {lq_nf4_cell, nf4_code}, dyn = {lq_dynamic_cell, lq_dynamic_code};
	tables_ok = build(&nf4, -0x1.1p0f, 0x1.08p0f, LQ_NF4_CELLS, nf4_table.base, nf4_table.first) &&
		    build(&dyn, -2.0f, 2.0f, LQ_DYNAMIC_CELLS, dynamic_table.base, dynamic_table.first) &&
		    pack_words(&dynamic_table);
}

const lq_step_table *lq_nf4_steps(void)
{
	pthread_once(&tables_once, tables_build);
	return tables_ok ? &nf4_table : NULL;
}

const lq_step_table *lq_dynamic_steps(void)
{
	pthread_once(&tables_once, tables_build);
	return tables_ok ? &dynamic_table : NULL;
}
