/*
 * sample_report.c: a made-up qinspect report written as HTML by qi_write_html, to look at and to test the
 * page in a browser (tests/html/check_report.sh) without a checkpoint.
 *
 *   sample_report [--stress [LAYERS]] [--no-reference] [--empty] [--edge] OUT.html
 *
 * The default is a tiny llama: 2 layers of 7 projections quantized NF4 (blocksize 64, double
 * quantization), embeddings, lm_head and norms kept in bf16, compared with a bf16 reference. The codes,
 * block absmax and errors are those of really quantizing Gaussian weights (a few with outliers, which
 * fail --max-rel-err) with the NF4 table. One tensor has an all-zero reference (NaN cosine), one a name
 * full of markup, control characters and bytes that are not UTF-8, one a long name that must wrap at its
 * dots, one quantized tensor with blocks whose absmax is not finite (its elements NaN or infinite).
 * --stress: LAYERS layers (default 400: 3,606 tensors), fp16 norms with tiny errors (a log scale), a
 * tensor with an infinite relative error, and many gate failures.
 * --no-reference: a description only (no errors, no gates). --empty: no tensors at all.
 * --edge: two tensors outside any layer, named with every byte from 1 to 255 and with malformed UTF-8
 * (overlong, surrogate, above U+10FFFF, cut short), one of them quantized and failing --max-abs-err 0.
 *
 * The figures are qinspect's own, computed by qinspect_report.c from the made-up bytes, codes and error
 * sums (bits per parameter, code entropy, absmax bins, layers, the error figures from the sums, the
 * summary and the gates), so that the page shows what qinspect would make of such a checkpoint.
 *
 * Prints on stdout what the page must show: "tensors=N compared=N quantized=N failed=N".
 *
 * Built by `make check` as build/sample_report; tests/qinspect/run.sh renders its stress and edge pages.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, qsort_r */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_tensors.h"
#include "qinspect_report.h"

/* ------------------------------------------------------------------------------- random weights */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t splitmix64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static double uniform(void)
{
	return ((double)(splitmix64() >> 11) + 0.5) / 9007199254740992.0;
}

static double gaussian(void)
{
	return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
}

/* ------------------------------------------------------------------------------------- tensors */

#define BLOCK 64

typedef struct model {
	qi_tensor *t;
	size_t n, cap;
	char **names; /* owned copies */
} model;

static qi_tensor *add_tensor(model *m, const char *name, int64_t rows, int64_t cols)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->t = realloc(m->t, m->cap * sizeof *m->t);
		m->names = realloc(m->names, m->cap * sizeof *m->names);
		if (!m->t || !m->names) {
			perror("sample_report");
			exit(1);
		}
	}
	qi_tensor *t = &m->t[m->n];
	memset(t, 0, sizeof *t);
	m->names[m->n] = strdup(name);
	t->name = m->names[m->n];
	t->ndim = cols ? 2 : 1;
	t->shape[0] = rows;
	t->shape[1] = cols;
	t->params = (uint64_t)rows * (uint64_t)(cols ? cols : 1);
	t->layer = hf_layer_of(name);
	t->dtype = "bfloat16";
	m->n++;
	return t;
}

/* The figures of e from the sums set in it, through what qinspect does with libquant's (qinspect_report.c). */
static void finish_error(qi_error *e)
{
	lq_error_sums s;
	lq_error_sums_init(&s);
	s.elements = e->elements;
	s.nonfinite = e->nonfinite;
	s.differ = e->differ;
	s.sum_err2 = e->sum_err2;
	s.sum_ref2 = e->sum_ref2;
	s.sum_x2 = e->sum_x2;
	s.dot = e->dot;
	s.max_abs_err = e->max_abs_err;
	s.max_abs_err_index = e->max_abs_err_index;
	qi_error_take_sums(e, &s, e->nonfinite_checkpoint, e->nonfinite_reference, e->max_abs_err_index);
}

/* A float tensor kept as it was (bf16): the reference's own values, or (rel > 0) values off by about rel
 * of themselves, as a conversion to fp16 leaves them. */
static void keep_float(qi_tensor *t, double sigma, double rel, bool compared)
{
	snprintf(t->storage, sizeof t->storage, "%s", rel > 0 ? "f16" : "bf16");
	t->dtype = rel > 0 ? "float16" : "bfloat16";
	t->bytes.codes = 2 * t->params;
	qi_tensor_bits(t);
	if (!compared)
		return;
	qi_error *e = &t->err;
	e->elements = t->params;
	e->sum_ref2 = (double)t->params * sigma * sigma;
	e->sum_err2 = e->sum_ref2 * rel * rel;
	e->sum_x2 = e->sum_ref2 + e->sum_err2;
	e->dot = e->sum_ref2;
	e->differ = rel > 0 ? t->params * 7 / 10 : 0;
	e->max_abs_err = rel > 0 ? 4 * sigma * rel : 0;
	e->max_abs_err_index = rel > 0 ? (int64_t)(t->params / 3) : -1;
	finish_error(e);
}

/* A tensor quantized NF4 (blocksize 64, double quantization) from Gaussian weights of deviation sigma, a
 * share `outliers` of them `scale` times larger. Simulates `sim` blocks (all when 0) and scales the counts
 * and sums up to the whole tensor. */
static void quantize_nf4(qi_tensor *t, double sigma, double outliers, double scale, uint64_t sim, bool compared)
{
	const float *nf4 = lq_code_table(LQ_QTYPE_NF4);
	t->quantized = true;
	t->qtype = LQ_QTYPE_NF4;
	t->blocksize = BLOCK;
	t->double_quant = true;
	snprintf(t->storage, sizeof t->storage, "nf4/%d dq (bf16)", BLOCK);
	t->nblocks = (t->params + BLOCK - 1) / BLOCK;
	if (sim == 0 || sim > t->nblocks)
		sim = t->nblocks;
	/* bitsandbytes' layout: 4-bit codes, an 8-bit absmax a block, a float32 absmax every 256 blocks */
	t->bytes.codes = (t->params + 1) / 2;
	t->bytes.absmax = t->nblocks;
	t->bytes.nested = 4 * ((t->nblocks + 255) / 256);
	t->bytes.tables = 16 * 4 + 256 * 4 + 236; /* quant_map, nested_quant_map, quant_state JSON */
	qi_tensor_bits(t);

	uint64_t codes[16] = {0}, bins[QI_ABSMAX_BINS] = {0};
	qi_error e = {.max_abs_err_index = -1};
	double amin = INFINITY, amax = 0, asum = 0;
	for (uint64_t b = 0; b < sim; b++) {
		double x[BLOCK], absmax = 0;
		for (int i = 0; i < BLOCK; i++) {
			x[i] = sigma * gaussian() * (uniform() < outliers ? scale : 1);
			absmax = fmax(absmax, fabs(x[i]));
		}
		/* double quantization leaves the absmax off by a fraction of a percent */
		double dq = absmax * (1 + 0.006 * (uniform() - 0.5));
		amin = fmin(amin, dq);
		amax = fmax(amax, dq);
		asum += dq;
		bins[qi_absmax_bin(dq)]++;
		for (int i = 0; i < BLOCK; i++) {
			int best = 0;
			for (int c = 1; c < 16; c++)
				if (fabs(x[i] / absmax - nf4[c]) < fabs(x[i] / absmax - nf4[best]))
					best = c;
			codes[best]++;
			double y = nf4[best] * dq, d = y - x[i];
			e.sum_err2 += d * d;
			e.sum_ref2 += x[i] * x[i];
			e.sum_x2 += y * y;
			e.dot += x[i] * y;
			e.differ += d != 0;
			if (fabs(d) > e.max_abs_err) {
				e.max_abs_err = fabs(d);
				e.max_abs_err_index = (int64_t)(b * BLOCK + (uint64_t)i);
			}
		}
	}
	/* from the simulated blocks to the whole tensor; the rounding left over goes to the largest count */
	double k = (double)t->nblocks / (double)sim;
	uint64_t total = 0, btotal = 0;
	int big = 0;
	for (int c = 0; c < 16; c++) {
		t->code_histogram[c] = (uint64_t)llround((double)codes[c] * k);
		total += t->code_histogram[c];
		big = codes[c] > codes[big] ? c : big;
	}
	t->code_histogram[big] += t->params - total;
	for (int i = 0; i < QI_ABSMAX_BINS; i++) {
		t->absmax_hist[i] = (uint64_t)llround((double)bins[i] * k);
		btotal += t->absmax_hist[i];
		big = bins[i] > bins[big] ? i : big;
	}
	t->absmax_hist[big] += t->nblocks - btotal;
	t->code_entropy = qi_code_entropy(t->code_histogram, t->params);
	t->absmax_min = amin;
	t->absmax_max = amax;
	t->absmax_mean = asum / (double)sim;
	if (!compared)
		return;
	e.elements = t->params;
	e.differ = (uint64_t)llround((double)e.differ * k);
	e.sum_err2 *= k, e.sum_ref2 *= k, e.sum_x2 *= k, e.dot *= k;
	t->err = e;
	finish_error(&t->err);
}

/* ------------------------------------------------------------------------------------ the model */

typedef struct proj {
	const char *name;
	int rows, cols; /* in units of the hidden size: 1 hidden, 0 intermediate */
	double sigma;
} proj;

#define HIDDEN 256
#define INTERMEDIATE 688
#define VOCAB 1024

/* HF's order in a safetensors file: sorted names. */
static const proj projs[] = {
	{"mlp.down_proj", 1, 0, 0.012}, {"mlp.gate_proj", 0, 1, 0.02},     {"mlp.up_proj", 0, 1, 0.02},
	{"self_attn.k_proj", 1, 1, 0.03}, {"self_attn.o_proj", 1, 1, 0.015}, {"self_attn.q_proj", 1, 1, 0.03},
	{"self_attn.v_proj", 1, 1, 0.02},
};

static void add_layer(model *m, int layer, bool stress, bool compared)
{
	char name[256];
	uint64_t sim = stress ? 8 : 0;
	double growth = 1 + 0.002 * layer; /* deeper layers: wider weights */
	snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", layer);
	keep_float(add_tensor(m, name, HIDDEN, 0), 1, stress ? 3e-4 : 0, compared);
	for (size_t p = 0; p < sizeof projs / sizeof *projs; p++) {
		if (p == 4) {
			snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", layer);
			keep_float(add_tensor(m, name, HIDDEN, 0), 1, stress ? 2e-4 : 0, compared);
		}
		snprintf(name, sizeof name, "model.layers.%d.%s.weight", layer, projs[p].name);
		qi_tensor *t = add_tensor(m, name, projs[p].rows ? HIDDEN : INTERMEDIATE,
					  projs[p].cols ? HIDDEN : INTERMEDIATE);
		/* a few projections with outliers: the ones the gate catches */
		bool outliers = stress ? (layer * 7 + (int)p) % 97 == 3
				       : (layer == 1 && p == 0) || (layer == 0 && p == 6);
		quantize_nf4(t, projs[p].sigma * growth, outliers ? 0.004 : 0, 14, sim, compared);
	}
}

static void add_odd_tensors(model *m, bool stress, bool compared)
{
	/* an all-zero bias, equal to its reference: no direction, so a NaN cosine */
	qi_tensor *t = add_tensor(m, "model.layers.1.self_attn.o_proj.bias", HIDDEN, 0);
	keep_float(t, 0, 0, compared);
	/* a name to escape: markup, quotes, an ANSI escape, a bidi override, bytes that are not UTF-8 */
	t = add_tensor(m, "model.layers.1.<script>alert(\"pwn\")</script>&amp;'\x1b[31m\xe2\x80\xae\xe2\x80\x8f\xff\xfe.weight",
		       HIDDEN, 0);
	keep_float(t, 0.5, 0, compared);
	/* a name longer than its column: it must wrap between its components, never inside one */
	t = add_tensor(m, "model.layers.1.block_sparse_moe.experts.63.shared_expert_gate_projection.lora_magnitude_vector"
			  ".weight_quantization_calibration_statistics",
		       HIDDEN, 0);
	keep_float(t, 0.5, 0, compared);
	if (compared) {
		/* a quantized tensor with two blocks whose absmax is not finite: their elements are NaN or
		 * infinite, 128 in the checkpoint */
		t = add_tensor(m, "model.layers.1.mlp.broken_proj.weight", HIDDEN, HIDDEN);
		quantize_nf4(t, 0.02, 0, 1, 0, true);
		t->absmax_nonfinite = 2;
		for (int b = 0, left = 2; b < QI_ABSMAX_BINS && left; b++) /* those blocks are in no bin */
			while (t->absmax_hist[b] && left) {
				t->absmax_hist[b]--;
				left--;
			}
		t->absmax_min = t->absmax_mean = t->absmax_max = NAN;
		t->err.nonfinite = t->err.nonfinite_checkpoint = 2 * BLOCK;
		t->err.elements -= 2 * BLOCK;
		t->err.max_abs_err_index = 5 * BLOCK;
		finish_error(&t->err);
	}
	if (stress && compared) {
		/* a bias the reference has as zeros: infinite relative error */
		t = add_tensor(m, "model.layers.7.self_attn.o_proj.bias", HIDDEN, 0);
		keep_float(t, 0, 0, true);
		t->err.sum_err2 = 1e-6;
		t->err.sum_x2 = 1e-6;
		t->err.differ = 12;
		t->err.max_abs_err = 3e-4;
		finish_error(&t->err);
	}
}

/* Two tensors with names no browser should see raw, and no layer: a plot of one group. */
static void add_edge_tensors(model *m, bool compared)
{
	char name[300];
	for (int i = 1; i < 256; i++)
		name[i - 1] = (char)i;
	snprintf(name + 255, sizeof name - 255, ".weight");
	quantize_nf4(add_tensor(m, name, HIDDEN, HIDDEN), 0.02, 0, 1, 0, compared);
	keep_float(add_tensor(m, "bad \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xf0\x9f\x98\x80 <\"'&> \xe2\x82", HIDDEN, 0),
		   1, 0, compared);
}

/* ---------------------------------------------------------------------------------- the report */

/* The report's totals, worst list and gates: qinspect's own summary (qinspect_report.c). */
static void summarize(qi_report *r, size_t top)
{
	if (qi_summarize(r, top) != LQ_OK) {
		perror("sample_report");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	bool stress = false, reference = true, empty = false, edge = false;
	int layers = 2;
	const char *out = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--stress") == 0) {
			stress = true;
			layers = 400;
			if (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9')
				layers = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--no-reference") == 0) {
			reference = false;
		} else if (strcmp(argv[i], "--empty") == 0) {
			empty = true;
		} else if (strcmp(argv[i], "--edge") == 0) {
			edge = true;
		} else if (!out && argv[i][0] != '-') {
			out = argv[i];
		} else {
			fprintf(stderr, "usage: sample_report [--stress [LAYERS]] [--no-reference] [--empty] [--edge] OUT.html\n");
			return 2;
		}
	}
	if (!out) {
		fprintf(stderr, "usage: sample_report [--stress [LAYERS]] [--no-reference] [--empty] [--edge] OUT.html\n");
		return 2;
	}

	model m = {0};
	if (edge) {
		add_edge_tensors(&m, reference);
	} else if (!empty) {
		keep_float(add_tensor(&m, "lm_head.weight", VOCAB, HIDDEN), 0.02, 0, reference);
		keep_float(add_tensor(&m, "model.embed_tokens.weight", VOCAB, HIDDEN), 0.02, 0, reference);
		for (int l = 0; l < layers; l++)
			add_layer(&m, l, stress, reference);
		add_odd_tensors(&m, stress, reference);
		keep_float(add_tensor(&m, "model.norm.weight", HIDDEN, 0), 1, stress ? 3e-4 : 0, reference);
	}

	static const char *only_ref[] = {"model.layers.0.self_attn.rotary_emb.inv_freq",
					 "model.layers.1.self_attn.rotary_emb.inv_freq"};
	qi_report r = {
		.checkpoint = stress ? "/models/llama-stress-bnb-4bit" : "/models/tiny-llama-bnb-4bit/model.safetensors",
		.reference = reference ? "/models/tiny-llama/model.safetensors" : NULL,
		.device = "cuda:0 (NVIDIA H200)",
		.tensors = m.t,
		.ntensors = m.n,
		.only_in_reference = reference ? only_ref : NULL,
		.n_only_reference = reference ? 2 : 0,
		.seconds = stress ? 41.73 : 0.84,
	};
	if (reference && edge) {
		r.gates[QI_GATE_MAX_ABS_ERR] = (qi_gate){.set = true, .limit = 0};
	} else if (reference) {
		r.gates[QI_GATE_MAX_REL_ERR] = (qi_gate){.set = true, .limit = 0.105};
		r.gates[QI_GATE_MIN_COSINE] = (qi_gate){.set = true, .limit = 0.99};
	}
	summarize(&r, 10);

	size_t compared = 0, failed = 0;
	for (size_t i = 0; i < r.ntensors; i++) {
		compared += r.tensors[i].err.present;
		failed += r.tensors[i].gate_failed;
	}
	FILE *f = fopen(out, "w");
	if (!f || !qi_write_html(&r, f) || fclose(f) != 0) {
		perror(out);
		return 1;
	}
	printf("tensors=%zu compared=%zu quantized=%zu failed=%zu\n", r.ntensors, compared, r.quantized_tensors, failed);

	qi_summary_free(&r);
	for (size_t i = 0; i < m.n; i++)
		free(m.names[i]);
	free(m.names);
	free(m.t);
	return 0;
}
