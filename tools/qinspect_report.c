/*
 * qinspect_report.c: what qinspect's report and its writers share: the names of the gates (the options,
 * the messages and every writer), the figures of an error from its sums, the summary (totals, worst list,
 * gates), and how the plain-text writers show a name from an untrusted file.
 */
#include "qinspect_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const gate_options[QI_NGATES] = {"max-rel-err", "max-rmse", "max-abs-err", "min-snr", "min-cosine"};
static const char *const gate_keys[QI_NGATES] = {"max_rel_err", "max_rmse", "max_abs_err", "min_snr_db", "min_cosine"};

const char *qi_gate_option(qi_gate_kind g)
{
	return g < QI_NGATES ? gate_options[g] : "?";
}

const char *qi_gate_key(qi_gate_kind g)
{
	return g < QI_NGATES ? gate_keys[g] : "?";
}

/* ----------------------------------------------------------------------------------- the figures */

void qi_error_finish(qi_error *e)
{
	if (e->nonfinite) {
		/* the sums hold only the finite elements: figures from them would look good because the worst
		 * elements were left out */
		e->rmse = INFINITY;
		e->max_abs_err = INFINITY;
		e->rel_err = INFINITY;
		e->snr_db = -INFINITY;
		e->cosine = NAN;
		return;
	}
	e->rmse = e->elements ? sqrt(e->sum_err2 / (double)e->elements) : 0;
	e->rel_err = e->sum_ref2 > 0 ? sqrt(e->sum_err2 / e->sum_ref2) : (e->sum_err2 > 0 ? INFINITY : 0);
	e->snr_db = e->sum_err2 > 0 ? 10 * log10(e->sum_ref2 / e->sum_err2) : INFINITY;
	e->cosine = e->sum_x2 > 0 && e->sum_ref2 > 0 ? e->dot / sqrt(e->sum_x2 * e->sum_ref2) : NAN;
}

bool qi_gate_fails(qi_gate_kind g, double limit, const qi_error *e)
{
	if (e->nonfinite)
		return true;
	switch (g) {
	case QI_GATE_MAX_REL_ERR:
		return !(e->rel_err <= limit);
	case QI_GATE_MAX_RMSE:
		return !(e->rmse <= limit);
	case QI_GATE_MAX_ABS_ERR:
		return !(e->max_abs_err <= limit);
	case QI_GATE_MIN_SNR:
		return !(e->snr_db >= limit);
	case QI_GATE_MIN_COSINE:
		/* an all-zero tensor has no direction: it passes only when it equals its reference */
		return isnan(e->cosine) ? e->sum_err2 > 0 : !(e->cosine >= limit);
	default:
		return false;
	}
}

double qi_gate_value(const qi_error *e, qi_gate_kind g)
{
	switch (g) {
	case QI_GATE_MAX_REL_ERR: return e->rel_err;
	case QI_GATE_MAX_RMSE: return e->rmse;
	case QI_GATE_MAX_ABS_ERR: return e->max_abs_err;
	case QI_GATE_MIN_SNR: return e->snr_db;
	case QI_GATE_MIN_COSINE: return e->cosine;
	default: return NAN;
	}
}

/* ------------------------------------------------------------------------------ a tensor's figures */

void qi_tensor_bits(qi_tensor *t)
{
	t->bytes_total = t->bytes.codes + t->bytes.absmax + t->bytes.nested + t->bytes.tables;
	t->bits_per_param = t->params ? 8.0 * (double)t->bytes_total / (double)t->params : 0;
	t->bits_per_param_blocks = t->quantized && t->params
					   ? 8.0 * (double)(t->bytes.codes + t->bytes.absmax + t->bytes.nested) / (double)t->params
					   : 0;
}

double qi_code_entropy(const uint64_t histogram[16], uint64_t params)
{
	double h = 0;
	for (int c = 0; c < 16; c++)
		if (histogram[c]) {
			double p = (double)histogram[c] / (double)params;
			h -= p * log2(p);
		}
	return h;
}

void qi_tensor_codes(qi_tensor *t, const unsigned char *codes, size_t ncodes)
{
	for (size_t i = 0; i < ncodes; i++) {
		t->code_histogram[codes[i] >> 4]++;
		/* the last byte of an odd count holds one code, in its high nibble */
		if (i + 1 < ncodes || t->params % 2 == 0)
			t->code_histogram[codes[i] & 15]++;
	}
	t->code_entropy = qi_code_entropy(t->code_histogram, t->params);
}

int qi_absmax_bin(double v)
{
	int b = v > 0 ? (int)floor((log10(v) + 6.0) / 0.2) : 0;
	return b < 0 ? 0 : b >= QI_ABSMAX_BINS ? QI_ABSMAX_BINS - 1 : b;
}

void qi_tensor_absmax(qi_tensor *t, const float *absmax, uint64_t nblocks)
{
	t->nblocks = nblocks;
	double sum = 0;
	t->absmax_min = INFINITY;
	t->absmax_max = -INFINITY;
	for (uint64_t b = 0; b < t->nblocks; b++) {
		double v = absmax[b];
		if (!isfinite(v)) { /* every element of the block dequantizes to NaN or infinity */
			t->absmax_nonfinite++;
			continue;
		}
		sum += v;
		t->absmax_min = v < t->absmax_min ? v : t->absmax_min;
		t->absmax_max = v > t->absmax_max ? v : t->absmax_max;
		t->absmax_hist[qi_absmax_bin(v)]++;
	}
	t->absmax_mean = t->nblocks ? sum / (double)t->nblocks : 0;
	if (!t->nblocks)
		t->absmax_min = t->absmax_max = 0;
	if (t->absmax_nonfinite) /* figures of the other blocks would hide the broken ones */
		t->absmax_min = t->absmax_mean = t->absmax_max = NAN;
}

void qi_error_take_sums(qi_error *e, const lq_error_sums *s, uint64_t nonfinite_checkpoint,
			uint64_t nonfinite_reference, int64_t first_nonfinite)
{
	e->present = true;
	e->elements = s->elements;
	e->nonfinite = s->nonfinite;
	e->nonfinite_checkpoint = nonfinite_checkpoint;
	e->nonfinite_reference = nonfinite_reference;
	e->differ = s->differ;
	e->sum_err2 = s->sum_err2;
	e->sum_ref2 = s->sum_ref2;
	e->sum_x2 = s->sum_x2;
	e->dot = s->dot;
	e->max_abs_err = s->max_abs_err;
	/* an element that is not finite is the largest error there is: the first of them */
	e->max_abs_err_index = s->nonfinite ? first_nonfinite : s->max_abs_err_index;
	qi_error_finish(e);
}

/* ----------------------------------------------------------------------------------- the summary */

/* Adds tensor i's error to a total: its sums through libquant's merge (the order, and so the bits, of
 * every total are the tensors'), the largest error's index as the tensor's. */
static void add_error(lq_error_sums *sums, qi_error *total, const qi_error *e, size_t i)
{
	lq_error_sums s = {.elements = e->elements, .nonfinite = e->nonfinite, .differ = e->differ,
			   .sum_err2 = e->sum_err2, .sum_ref2 = e->sum_ref2, .sum_x2 = e->sum_x2, .dot = e->dot,
			   .max_abs_err = e->max_abs_err, .max_abs_err_index = e->max_abs_err_index >= 0 ? (int64_t)i : -1};
	lq_error_sums_merge(sums, &s);
	total->nonfinite_checkpoint += e->nonfinite_checkpoint;
	total->nonfinite_reference += e->nonfinite_reference;
}

static void take_total(qi_error *e, const lq_error_sums *s)
{
	e->present = true;
	e->elements = s->elements;
	e->nonfinite = s->nonfinite;
	e->differ = s->differ;
	e->sum_err2 = s->sum_err2;
	e->sum_ref2 = s->sum_ref2;
	e->sum_x2 = s->sum_x2;
	e->dot = s->dot;
	e->max_abs_err = s->max_abs_err;
	e->max_abs_err_index = s->max_abs_err_index;
	qi_error_finish(e);
}

static const qi_tensor *sort_base;

static int by_rel_err_desc(const void *a, const void *b)
{
	double x = sort_base[*(const size_t *)a].err.rel_err, y = sort_base[*(const size_t *)b].err.rel_err;
	if (x != y)
		return x > y ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

lq_status qi_summarize(qi_report *r, size_t top)
{
	lq_error_sums all, quantized;
	lq_error_sums_init(&all);
	lq_error_sums_init(&quantized);
	r->worst = malloc((r->ntensors + 1) * sizeof *r->worst);
	if (!r->worst)
		return LQ_ERR_NOMEM;
	size_t nworst = 0;
	for (size_t i = 0; i < r->ntensors; i++) {
		qi_tensor *t = &r->tensors[i];
		r->params += t->params;
		r->bytes_total += t->bytes_total;
		r->bytes.codes += t->bytes.codes;
		r->bytes.absmax += t->bytes.absmax;
		r->bytes.nested += t->bytes.nested;
		r->bytes.tables += t->bytes.tables;
		if (t->quantized) {
			r->quantized_tensors++;
			r->quantized_params += t->params;
			r->quantized_bytes += t->bytes_total;
			r->quantized_bits_per_param_blocks += 8.0 * (double)(t->bytes.codes + t->bytes.absmax + t->bytes.nested);
			for (int c = 0; c < 16; c++)
				r->code_histogram[c] += t->code_histogram[c];
			for (int b = 0; b < QI_ABSMAX_BINS; b++)
				r->absmax_hist[b] += t->absmax_hist[b];
			r->absmax_nonfinite += t->absmax_nonfinite;
		}
		if (!t->err.present)
			continue;
		r->compared_tensors++;
		add_error(&all, &r->total, &t->err, i);
		if (t->quantized) {
			r->quantized_compared++;
			add_error(&quantized, &r->quantized_total, &t->err, i);
		}
		r->nonfinite_tensors += t->err.nonfinite > 0;
		/* a tensor equal to its reference has nothing to rank */
		if (t->err.rel_err > 0 || t->err.nonfinite)
			r->worst[nworst++] = i;
	}
	r->bits_per_param = r->params ? 8.0 * (double)r->bytes_total / (double)r->params : 0;
	if (r->quantized_params) {
		r->quantized_bits_per_param = 8.0 * (double)r->quantized_bytes / (double)r->quantized_params;
		r->quantized_bits_per_param_blocks /= (double)r->quantized_params;
	}
	if (r->reference) {
		take_total(&r->total, &all);
		if (r->quantized_compared)
			take_total(&r->quantized_total, &quantized);
	}
	sort_base = r->tensors;
	qsort(r->worst, nworst, sizeof *r->worst, by_rel_err_desc);
	r->nworst = nworst < top ? nworst : top;
	r->passed = true;
	for (int g = 0; g < QI_NGATES; g++) {
		qi_gate *gate = &r->gates[g];
		if (!gate->set)
			continue;
		gate->failed = malloc((r->ntensors + 1) * sizeof *gate->failed);
		if (!gate->failed)
			return LQ_ERR_NOMEM;
		for (size_t i = 0; i < r->ntensors; i++)
			if (r->tensors[i].err.present && qi_gate_fails((qi_gate_kind)g, gate->limit, &r->tensors[i].err)) {
				gate->failed[gate->nfailed++] = i;
				r->tensors[i].gate_failed = true;
			}
		r->passed &= gate->nfailed == 0;
	}
	return LQ_OK;
}

void qi_summary_free(qi_report *r)
{
	free(r->worst);
	r->worst = NULL;
	r->nworst = 0;
	for (int g = 0; g < QI_NGATES; g++) {
		free(r->gates[g].failed);
		r->gates[g].failed = NULL;
		r->gates[g].nfailed = 0;
	}
}

/* ------------------------------------------------------------------------------------ names as text */

int qi_utf8_decode(const unsigned char *p, uint32_t *cp)
{
	unsigned char c = p[0];
	int n;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, v = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, v = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	/* the terminating NUL is not a continuation byte: nothing is read past it */
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

bool qi_hidden_char(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

char *qi_plain_text(const char *s, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	while (*p) {
		uint32_t cp;
		int n = qi_utf8_decode(p, &cp);
		if (n == 0 || qi_hidden_char(cp)) {
			out[o++] = '?';
			p += n ? n : 1;
			continue;
		}
		memcpy(out + o, p, (size_t)n);
		o += (size_t)n;
		p += n;
	}
	out[o] = '\0';
	return out;
}
