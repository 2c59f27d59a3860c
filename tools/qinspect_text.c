/*
 * qinspect_text.c: qinspect's plain-text writers: the table for people (fitted to the terminal's width,
 * numbers aligned) and CSV for spreadsheets (RFC 4180, one line per tensor).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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
 * and the start is the same for most of them ("model.layers."); cut where a character begins. */
static void fit_name(const char *name, int width, char *buf, size_t size)
{
	int n = (int)strlen(name);
	if (n <= width || width < 8) {
		snprintf(buf, size, "%s", name);
		return;
	}
	const char *tail = name + n - (width - 3);
	while ((*tail & 0xc0) == 0x80)
		tail++;
	snprintf(buf, size, "...%s", tail);
}

/* Names and paths come from untrusted files and the command line: each is shown through qi_plain_text,
 * into a buffer that holds the longest of them. */
typedef struct plain {
	char *buf;
	size_t cap;
} plain;

static void plain_room(plain *p, const char *s)
{
	size_t n = s ? strlen(s) + 1 : 1;
	p->cap = n > p->cap ? n : p->cap;
}

static const char *plain_text(plain *p, const char *s)
{
	return qi_plain_text(s ? s : "", p->buf);
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

/* "error of all 20 compared tensors, 377k elements: rel_err ..., max |error| ... (in NAME)"; of the 4-bit
 * tensors, "error of the 14 4-bit tensors, ...". */
static void print_total(FILE *f, const qi_report *r, bool quantized, size_t tensors, const qi_error *e, plain *p)
{
	char n[32], label[128];
	count_text(e->elements + e->nonfinite, n, sizeof n);
	snprintf(label, sizeof label, "error of %s%zu %s tensor%s, %s elements:", tensors == 1 ? "" : quantized ? "the " : "all ",
		 tensors, quantized ? "4-bit" : "compared", tensors == 1 ? "" : "s", n);
	print_error_line(f, label, e);
	if (e->max_abs_err_index >= 0 && (size_t)e->max_abs_err_index < r->ntensors)
		fprintf(f, " (in %s)", plain_text(p, r->tensors[e->max_abs_err_index].name));
	fprintf(f, "\n");
}

bool qi_write_table(const qi_report *r, FILE *f, int width)
{
	const bool cmp = r->reference != NULL;
	plain p = {0};
	plain_room(&p, r->checkpoint);
	plain_room(&p, r->reference);
	for (size_t i = 0; i < r->ntensors; i++)
		plain_room(&p, r->tensors[i].name);
	for (size_t k = 0; k < r->n_only_checkpoint; k++)
		plain_room(&p, r->only_in_checkpoint[k]);
	for (size_t k = 0; k < r->n_only_reference; k++)
		plain_room(&p, r->only_in_reference[k]);
	if (!(p.buf = malloc(p.cap)))
		return false;
	/* fixed columns: shape 14, storage 18, params 8, bits 6, then the error columns or the 4-bit ones */
	const int fixed = 15 + 19 + 9 + 7 + (cmp ? 10 + 9 + 10 + 10 : 9 + 10);
	int name_w = 20;
	for (size_t i = 0; i < r->ntensors; i++) {
		int n = (int)strlen(plain_text(&p, r->tensors[i].name));
		name_w = n > name_w ? n : name_w;
	}
	if (width > 0 && name_w > width - fixed - 1) /* width 0: no limit */
		name_w = width - fixed - 1 > 20 ? width - fixed - 1 : 20;
	fprintf(f, "%s", plain_text(&p, r->checkpoint));
	if (cmp)
		fprintf(f, " against %s", plain_text(&p, r->reference));
	fprintf(f, "\n");
	fprintf(f, "%-*s %14s %-18s %8s %6s", name_w, "tensor", "shape", "storage", "params", "bits");
	if (cmp)
		fprintf(f, " %9s %8s %9s %9s\n", "rel_err", "SNR dB", "cosine", "max|err|");
	else
		fprintf(f, " %8s %9s\n", "entropy", "absmax");
	size_t absmax_tensors = 0;
	for (size_t i = 0; i < r->ntensors; i++) {
		const qi_tensor *t = &r->tensors[i];
		char name[1024], shape[64], params[32], x[32], y[32], z[32], w[32];
		fit_name(plain_text(&p, t->name), name_w, name, sizeof name);
		shape_text(t, shape, sizeof shape);
		count_text(t->params, params, sizeof params);
		fprintf(f, "%-*s %14s %-18s %8s %6.3f", name_w, name, shape, t->storage, params, t->bits_per_param);
		if (cmp && t->err.present) {
			num_text(t->err.rel_err, x, sizeof x);
			num_text(t->err.snr_db, y, sizeof y);
			num_text(t->err.cosine, z, sizeof z);
			num_text(t->err.max_abs_err, w, sizeof w);
			fprintf(f, " %9s %8s %9s %9s%s", x, y, z, w, t->gate_failed ? "  FAIL" : "");
			if (t->err.nonfinite)
				fprintf(f, "  %llu not finite", (unsigned long long)t->err.nonfinite);
			fprintf(f, "\n");
		} else if (cmp) {
			fprintf(f, " %9s %8s %9s %9s\n", "-", "-", "-", "-");
		} else if (t->quantized) {
			num_text(t->absmax_mean, x, sizeof x);
			fprintf(f, " %8.3f %9s", t->code_entropy, x);
			if (t->absmax_nonfinite)
				fprintf(f, "  %llu absmax not finite", (unsigned long long)t->absmax_nonfinite);
			fprintf(f, "\n");
		} else {
			fprintf(f, " %8s %9s\n", "-", "-");
		}
		absmax_tensors += t->absmax_nonfinite > 0;
	}
	/* the summary */
	char q[32], b[32];
	count_text(r->params, q, sizeof q);
	fprintf(f, "\n%zu tensors, %s parameters, %s, %.3f bits per parameter\n", r->ntensors, q,
		cli_human_bytes(r->bytes_total, b, sizeof b), r->bits_per_param);
	if (r->quantized_tensors) {
		count_text(r->quantized_params, q, sizeof q);
		fprintf(f, "4-bit: %zu tensors, %s parameters, %.3f bits per parameter (%.3f in codes and block constants)\n",
			r->quantized_tensors, q, r->quantized_bits_per_param, r->quantized_bits_per_param_blocks);
	}
	if (r->absmax_nonfinite)
		fprintf(f, "absmax not finite (NaN or infinite): %llu block%s in %zu tensor%s\n",
			(unsigned long long)r->absmax_nonfinite, r->absmax_nonfinite == 1 ? "" : "s", absmax_tensors,
			absmax_tensors == 1 ? "" : "s");
	if (cmp && r->total.present) {
		/* the 4-bit tensors apart: the tensors copied as they are would make them look better */
		if (r->quantized_total.present)
			print_total(f, r, true, r->quantized_compared, &r->quantized_total, &p);
		print_total(f, r, false, r->compared_tensors, &r->total, &p);
		const qi_error *e = &r->total;
		if (e->nonfinite)
			fprintf(f, "not finite (NaN or infinite): %llu element%s in %zu tensor%s, %llu in the checkpoint and %llu in "
				   "the reference\n",
				(unsigned long long)e->nonfinite, e->nonfinite == 1 ? "" : "s", r->nonfinite_tensors,
				r->nonfinite_tensors == 1 ? "" : "s", (unsigned long long)e->nonfinite_checkpoint,
				(unsigned long long)e->nonfinite_reference);
	}
	if (r->nworst) {
		fprintf(f, "worst by rel_err:");
		for (size_t k = 0; k < r->nworst; k++) {
			char v[32];
			num_text(r->tensors[r->worst[k]].err.rel_err, v, sizeof v);
			fprintf(f, "%s %s (%s)", k ? "," : "", plain_text(&p, r->tensors[r->worst[k]].name), v);
		}
		fprintf(f, "\n");
	}
	for (size_t k = 0; k < r->n_only_checkpoint; k++) {
		fprintf(f, "only in %s: ", plain_text(&p, r->checkpoint));
		fprintf(f, "%s\n", plain_text(&p, r->only_in_checkpoint[k]));
	}
	for (size_t k = 0; k < r->n_only_reference; k++) {
		fprintf(f, "only in %s: ", plain_text(&p, r->reference));
		fprintf(f, "%s\n", plain_text(&p, r->only_in_reference[k]));
	}
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
	free(p.buf);
	return !ferror(f);
}

/* ------------------------------------------------------------------------------------- CSV */

/* A text field. What a spreadsheet would act on is defused: control characters (C0, DEL, C1), the
 * bidirectional overrides and isolates, and bytes that are not UTF-8 become '?', as in the table (so no
 * field spans lines); a field that begins with = + - or @, which a spreadsheet reads as a formula, gets
 * an apostrophe before it (OWASP's advice) and quotes. The JSON report has every name exactly. */
bool qi_csv_string(FILE *f, const char *s)
{
	char *t = malloc(strlen(s) + 1);
	if (!t)
		return false;
	qi_plain_text(s, t);
	bool formula = strchr("=+-@", t[0]) && t[0];
	if (!formula && !strpbrk(t, ",\"")) {
		fputs(t, f);
		free(t);
		return true;
	}
	fputs(formula ? "\"'" : "\"", f);
	for (const char *c = t; *c; c++) {
		if (*c == '"')
			fputc('"', f);
		fputc(*c, f);
	}
	fputc('"', f);
	free(t);
	return true;
}

/* A number as C's %.9g (enough to tell any double's neighbourhood), "inf", or empty for none. */
void qi_csv_number(FILE *f, double v)
{
	if (isnan(v))
		return;
	if (isinf(v))
		fputs(v > 0 ? "inf" : "-inf", f);
	else
		fprintf(f, "%.9g", v);
}

/* The error columns of a tensor or a total: elements,differ,nonfinite,rmse,max_abs_err,max_abs_err_index,
 * rel_err,snr_db,cosine (index: -1 to leave it empty, a total's being a tensor's) */
static void csv_error(FILE *f, const qi_error *e, bool with_index)
{
	if (!e->present) {
		fputs(",,,,,,,,", f);
		return;
	}
	fprintf(f, "%llu,%llu,%llu,", (unsigned long long)e->elements, (unsigned long long)e->differ,
		(unsigned long long)e->nonfinite);
	qi_csv_number(f, e->rmse);
	fputc(',', f);
	qi_csv_number(f, e->max_abs_err);
	fputc(',', f);
	if (with_index)
		fprintf(f, "%lld", (long long)e->max_abs_err_index);
	fputc(',', f);
	qi_csv_number(f, e->rel_err);
	fputc(',', f);
	qi_csv_number(f, e->snr_db);
	fputc(',', f);
	qi_csv_number(f, e->cosine);
}

/* The columns added after gate_failed: nonfinite_checkpoint,nonfinite_reference,absmax_nonfinite,row */
static void csv_tail(FILE *f, const qi_error *e, bool quantized, uint64_t absmax_nonfinite, const char *row)
{
	fputc(',', f);
	if (e->present)
		fprintf(f, "%llu,%llu", (unsigned long long)e->nonfinite_checkpoint, (unsigned long long)e->nonfinite_reference);
	else
		fputc(',', f);
	fputc(',', f);
	if (quantized)
		fprintf(f, "%llu", (unsigned long long)absmax_nonfinite);
	fprintf(f, ",%s\r\n", row);
}

/* A total's line: no name and no storage; its sizes, and its error when there is a reference. */
static void csv_total(FILE *f, const qi_report *r, bool quantized)
{
	const uint64_t params = quantized ? r->quantized_params : r->params;
	const uint64_t bytes = quantized ? r->quantized_bytes : r->bytes_total;
	bool failed = false;
	for (size_t i = 0; i < r->ntensors; i++)
		failed |= r->tensors[i].gate_failed && (!quantized || r->tensors[i].quantized);
	fprintf(f, ",,,,%s,,,,%llu,%llu,", quantized ? "true" : "", (unsigned long long)params, (unsigned long long)bytes);
	qi_csv_number(f, quantized ? r->quantized_bits_per_param : r->bits_per_param);
	fputc(',', f);
	if (quantized)
		qi_csv_number(f, r->quantized_bits_per_param_blocks);
	fputs(",,,,,", f);
	csv_error(f, quantized ? &r->quantized_total : &r->total, false);
	fprintf(f, ",%s", failed ? "true" : "false");
	csv_tail(f, quantized ? &r->quantized_total : &r->total, quantized, r->absmax_nonfinite,
		 quantized ? "total_quantized" : "total_all");
}

bool qi_write_csv(const qi_report *r, FILE *f)
{
	fputs("name,shape,storage,dtype,quantized,quant_type,blocksize,double_quant,params,bytes,bits_per_param,"
	      "bits_per_param_blocks,code_entropy,absmax_min,absmax_mean,absmax_max,elements,differ,nonfinite,rmse,"
	      "max_abs_err,max_abs_err_index,rel_err,snr_db,cosine,gate_failed,nonfinite_checkpoint,nonfinite_reference,"
	      "absmax_nonfinite,row\r\n",
	      f);
	for (size_t i = 0; i < r->ntensors; i++) {
		const qi_tensor *t = &r->tensors[i];
		char shape[256];
		shape_text(t, shape, sizeof shape);
		if (!qi_csv_string(f, t->name))
			return false;
		fprintf(f, ",%s,", shape);
		qi_csv_string(f, t->storage);
		fprintf(f, ",%s,%s,%s,", t->dtype, t->quantized ? "true" : "false", t->quantized ? lq_qtype_name(t->qtype) : "");
		if (t->quantized)
			fprintf(f, "%d,%s", (int)t->blocksize, t->double_quant ? "true" : "false");
		else
			fputs(",", f);
		fprintf(f, ",%llu,%llu,", (unsigned long long)t->params, (unsigned long long)t->bytes_total);
		qi_csv_number(f, t->bits_per_param);
		fputc(',', f);
		if (t->quantized) {
			qi_csv_number(f, t->bits_per_param_blocks);
			fputc(',', f);
			qi_csv_number(f, t->code_entropy);
			fputc(',', f);
			qi_csv_number(f, t->absmax_min);
			fputc(',', f);
			qi_csv_number(f, t->absmax_mean);
			fputc(',', f);
			qi_csv_number(f, t->absmax_max);
		} else {
			fputs(",,,,", f);
		}
		fputc(',', f);
		csv_error(f, &t->err, true);
		fprintf(f, ",%s", t->gate_failed ? "true" : "false");
		csv_tail(f, &t->err, t->quantized, t->absmax_nonfinite, "tensor");
	}
	/* the totals last, marked in the row column: a spreadsheet filters them out, or keeps only them */
	csv_total(f, r, true);
	csv_total(f, r, false);
	return !ferror(f);
}
