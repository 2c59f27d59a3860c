/*
 * qinspect_text.c: qinspect's plain-text writers: the table for people (fitted to the terminal's width,
 * numbers aligned) and CSV for spreadsheets (RFC 4180, one line per tensor).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "qinspect_report.h"

static void shape_text(const qi_tensor *t, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int d = 0; d < t->ndim && n < size; d++)
		n += (size_t)snprintf(buf + n, size - n, "%s%lld", d ? "x" : "", (long long)t->shape[d]);
	if (t->ndim == 0)
		snprintf(buf, size, "scalar");
}

/* 1234567 -> "1.23M": parameters at a glance */
static void count_text(uint64_t v, char *buf, size_t size)
{
	static const char units[] = " kMGT";
	double x = (double)v;
	int u = 0;
	while (x >= 1000 && u < 4) {
		x /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu", (unsigned long long)v);
	else
		snprintf(buf, size, "%.3g%c", x, units[u]);
}

/* A number in `width` columns, or "-" when there is none; infinite SNR of identical tensors as "inf". */
static void num_text(double v, char *buf, size_t size)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else if (isinf(v))
		snprintf(buf, size, v > 0 ? "inf" : "-inf");
	else
		snprintf(buf, size, "%.4g", v);
}

/* The name fitted into width columns: its start elided, since the end (layer, module) tells tensors apart
 * and the start is the same for most of them ("model.layers."). */
static void fit_name(const char *name, int width, char *buf, size_t size)
{
	int n = (int)strlen(name);
	if (n <= width || width < 8)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "...%s", name + n - (width - 3));
}

static void print_error_line(FILE *f, const char *label, const qi_error *e)
{
	char a[32], b[32], c[32], d[32], m[32];
	num_text(e->rel_err, a, sizeof a);
	num_text(e->snr_db, b, sizeof b);
	num_text(e->cosine, c, sizeof c);
	num_text(e->rmse, d, sizeof d);
	num_text(e->max_abs_err, m, sizeof m);
	fprintf(f, "%s rel_err %s, SNR %s dB, cosine %s, RMSE %s, max |error| %s", label, a, b, c, d, m);
}

bool qi_write_table(const qi_report *r, FILE *f, int width)
{
	const bool cmp = r->reference != NULL;
	/* fixed columns: shape 14, storage 18, params 8, bits 6, then the error columns or the 4-bit ones */
	const int fixed = 15 + 19 + 9 + 7 + (cmp ? 10 + 9 + 10 + 10 : 9 + 10);
	int name_w = 20;
	for (size_t i = 0; i < r->ntensors; i++) {
		int n = (int)strlen(r->tensors[i].name);
		name_w = n > name_w ? n : name_w;
	}
	if (width > 0 && name_w > width - fixed - 1) /* width 0: no limit */
		name_w = width - fixed - 1 > 20 ? width - fixed - 1 : 20;
	fprintf(f, "%s%s%s\n", r->checkpoint, cmp ? " against " : "", cmp ? r->reference : "");
	fprintf(f, "%-*s %14s %-18s %8s %6s", name_w, "tensor", "shape", "storage", "params", "bits");
	if (cmp)
		fprintf(f, " %9s %8s %9s %9s\n", "rel_err", "SNR dB", "cosine", "max|err|");
	else
		fprintf(f, " %8s %9s\n", "entropy", "absmax");
	for (size_t i = 0; i < r->ntensors; i++) {
		const qi_tensor *t = &r->tensors[i];
		char name[1024], shape[64], params[32], x[32], y[32], z[32], w[32];
		fit_name(t->name, name_w, name, sizeof name);
		shape_text(t, shape, sizeof shape);
		count_text(t->params, params, sizeof params);
		fprintf(f, "%-*s %14s %-18s %8s %6.3f", name_w, name, shape, t->storage, params, t->bits_per_param);
		if (cmp && t->err.present) {
			num_text(t->err.rel_err, x, sizeof x);
			num_text(t->err.snr_db, y, sizeof y);
			num_text(t->err.cosine, z, sizeof z);
			num_text(t->err.max_abs_err, w, sizeof w);
			fprintf(f, " %9s %8s %9s %9s%s\n", x, y, z, w, t->gate_failed ? "  FAIL" : "");
		} else if (cmp) {
			fprintf(f, " %9s %8s %9s %9s\n", "-", "-", "-", "-");
		} else if (t->quantized) {
			num_text(t->absmax_mean, x, sizeof x);
			fprintf(f, " %8.3f %9s\n", t->code_entropy, x);
		} else {
			fprintf(f, " %8s %9s\n", "-", "-");
		}
	}
	/* the summary */
	char p[32], q[32], b[32];
	count_text(r->params, p, sizeof p);
	fprintf(f, "\n%zu tensors, %s parameters, %s, %.3f bits per parameter\n", r->ntensors, p,
		cli_human_bytes(r->bytes_total, b, sizeof b), r->bits_per_param);
	if (r->quantized_tensors) {
		count_text(r->quantized_params, q, sizeof q);
		fprintf(f, "4-bit: %zu tensors, %s parameters, %.3f bits per parameter (%.3f in codes and block constants)\n",
			r->quantized_tensors, q, r->quantized_bits_per_param, r->quantized_bits_per_param_blocks);
	}
	if (cmp && r->total.present) {
		count_text(r->total.elements, q, sizeof q);
		char label[64];
		snprintf(label, sizeof label, "over %s compared elements:", q);
		print_error_line(f, label, &r->total);
		if (r->total.max_abs_err_index >= 0)
			fprintf(f, " (in %s)", r->tensors[r->total.max_abs_err_index].name);
		fprintf(f, "\n");
		if (r->total.nonfinite)
			fprintf(f, "%llu elements left out: NaN or infinite\n", (unsigned long long)r->total.nonfinite);
	}
	if (r->nworst) {
		fprintf(f, "worst by rel_err:");
		for (size_t k = 0; k < r->nworst; k++) {
			char v[32];
			num_text(r->tensors[r->worst[k]].err.rel_err, v, sizeof v);
			fprintf(f, "%s %s (%s)", k ? "," : "", r->tensors[r->worst[k]].name, v);
		}
		fprintf(f, "\n");
	}
	for (size_t k = 0; k < r->n_only_checkpoint; k++)
		fprintf(f, "only in %s: %s\n", r->checkpoint, r->only_in_checkpoint[k]);
	for (size_t k = 0; k < r->n_only_reference; k++)
		fprintf(f, "only in %s: %s\n", r->reference, r->only_in_reference[k]);
	for (int g = 0; g < QI_NGATES; g++) {
		const qi_gate *gate = &r->gates[g];
		if (!gate->set)
			continue;
		fprintf(f, "gate --%s %g: ", qi_gate_option((qi_gate_kind)g), gate->limit);
		if (gate->nfailed)
			fprintf(f, "FAILED by %zu tensor%s\n", gate->nfailed, gate->nfailed == 1 ? "" : "s");
		else
			fprintf(f, "passed\n");
	}
	return !ferror(f);
}

/* ------------------------------------------------------------------------------------- CSV */

static void csv_string(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* A number as C's %.9g (enough to tell any double's neighbourhood), "inf", or empty for none. */
static void csv_number(FILE *f, double v)
{
	if (isnan(v))
		return;
	if (isinf(v))
		fputs(v > 0 ? "inf" : "-inf", f);
	else
		fprintf(f, "%.9g", v);
}

bool qi_write_csv(const qi_report *r, FILE *f)
{
	fputs("name,shape,storage,dtype,quantized,quant_type,blocksize,double_quant,params,bytes,bits_per_param,"
	      "bits_per_param_blocks,code_entropy,absmax_min,absmax_mean,absmax_max,elements,differ,nonfinite,rmse,"
	      "max_abs_err,max_abs_err_index,rel_err,snr_db,cosine,gate_failed\r\n",
	      f);
	for (size_t i = 0; i < r->ntensors; i++) {
		const qi_tensor *t = &r->tensors[i];
		char shape[256];
		shape_text(t, shape, sizeof shape);
		csv_string(f, t->name);
		fprintf(f, ",%s,", shape);
		csv_string(f, t->storage);
		fprintf(f, ",%s,%s,%s,", t->dtype, t->quantized ? "true" : "false", t->quantized ? lq_qtype_name(t->qtype) : "");
		if (t->quantized)
			fprintf(f, "%d,%s", (int)t->blocksize, t->double_quant ? "true" : "false");
		else
			fputs(",", f);
		fprintf(f, ",%llu,%llu,", (unsigned long long)t->params, (unsigned long long)t->bytes_total);
		csv_number(f, t->bits_per_param);
		fputc(',', f);
		if (t->quantized) {
			csv_number(f, t->bits_per_param_blocks);
			fputc(',', f);
			csv_number(f, t->code_entropy);
			fputc(',', f);
			csv_number(f, t->absmax_min);
			fputc(',', f);
			csv_number(f, t->absmax_mean);
			fputc(',', f);
			csv_number(f, t->absmax_max);
		} else {
			fputs(",,,,", f);
		}
		fputc(',', f);
		if (t->err.present) {
			fprintf(f, "%llu,%llu,%llu,", (unsigned long long)t->err.elements, (unsigned long long)t->err.differ,
				(unsigned long long)t->err.nonfinite);
			csv_number(f, t->err.rmse);
			fputc(',', f);
			csv_number(f, t->err.max_abs_err);
			fprintf(f, ",%lld,", (long long)t->err.max_abs_err_index);
			csv_number(f, t->err.rel_err);
			fputc(',', f);
			csv_number(f, t->err.snr_db);
			fputc(',', f);
			csv_number(f, t->err.cosine);
		} else {
			fputs(",,,,,,,,", f);
		}
		fprintf(f, ",%s\r\n", t->gate_failed ? "true" : "false");
	}
	return !ferror(f);
}
