/*
 * qinspect_adapter_write.c: qinspect --adapter's table, CSV and JSON (qinspect_adapter.h). Every figure
 * comes from fidelity.h (fidelity_figures_of over a module's, a layer's or the model's sums), so the three
 * and the HTML page never disagree; the JSON is the document loramerge --fidelity writes, schema 3, with
 * "tool": "qinspect" and "merged" where loramerge has "output".
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "libquant.h"
#include "qinspect_adapter.h"
#include "qinspect_report.h"

/* ----------------------------------------------------------------------------------- table */

/* A figure in a column of width w: %.3g, "-" for none. */
static void put_figure(FILE *f, double v, int w)
{
	if (isnan(v))
		fprintf(f, " %*s", w, "-");
	else
		fprintf(f, " %*.3g", w, v);
}

static void put_row(FILE *f, const char *label, int name_w, const lq_fidelity_sums *s, fidelity_limits limits)
{
	const fidelity_figures g = fidelity_figures_of(s, limits);
	fprintf(f, "%-*s", name_w, label);
	put_figure(f, g.adapter_norm, 12);
	put_figure(f, g.quant_noise_norm, 11);
	put_figure(f, g.base_ratio, 10);
	put_figure(f, g.survival, 9);
	put_figure(f, g.residual, 9);
	fputs(g.erased ? "  erased\n" : "\n", f);
}

static void put_header(FILE *f, const char *first, int name_w)
{
	fprintf(f, "%-*s %12s %11s %10s %9s %9s\n", name_w, first, "adapter_norm", "quant_noise", "base_ratio", "survival",
		"residual");
}

static int by_survival(const void *x, const void *y, void *arg)
{
	const fidelity_report *r = *(const fidelity_report *const *)arg;
	const double a = fidelity_figures_of(&r->v[*(const size_t *)x].sums, r->limits).survival;
	const double b = fidelity_figures_of(&r->v[*(const size_t *)y].sums, r->limits).survival;
	if (isnan(a) || isnan(b))
		return isnan(a) - isnan(b);
	return (a > b) - (a < b);
}

/* The modules by survival, lowest first (those without a change last). */
static size_t *lowest_survival(const fidelity_report *r)
{
	size_t *order = malloc((r->n + 1) * sizeof *order);
	for (size_t i = 0; order && i < r->n; i++)
		order[i] = i;
	if (order)
		qsort_r(order, r->n, sizeof *order, by_survival, &r);
	return order;
}

bool qi_adapter_write_table(const qi_adapter_report *r, FILE *f)
{
	const qi_adapter_args *a = r->args;
	const fidelity_report *fid = &r->fid;
	char *plain = NULL;
	int name_w = 6;
	for (size_t i = 0; i < fid->n; i++)
		name_w = strlen(fid->v[i].name) > (size_t)name_w ? (int)strlen(fid->v[i].name) : name_w;
	if (!(plain = malloc((size_t)name_w + 1)))
		return false;
	fprintf(f, "base: %s\n", a->base);
	for (size_t i = 0; i < a->rq.nadapters; i++)
		fprintf(f, "adapter: %s (weight %g)\n", a->rq.adapters[i], a->rq.weights[i]);
	fprintf(f, "%s\nM: %s\n\n", qi_adapter_base_kind(r), a->merged ? a->merged : "the merge requantized here, as "
			"loramerge --requantize writes it");
	put_header(f, "module", name_w);
	for (size_t i = 0; i < fid->n; i++)
		put_row(f, qi_plain_text(fid->v[i].name, plain), name_w, &fid->v[i].sums, fid->limits);
	size_t nlayers;
	fidelity_layer *layers = fidelity_layers(fid, &nlayers);
	if (!layers) {
		free(plain);
		errno = ENOMEM;
		return false;
	}
	fputc('\n', f);
	put_header(f, "layer", name_w);
	for (size_t k = 0; k < nlayers; k++) {
		char label[64];
		const size_t n = layers[k].modules;
		if (layers[k].layer >= 0)
			snprintf(label, sizeof label, "%d (%zu module%s)", layers[k].layer, n, n == 1 ? "" : "s");
		else
			snprintf(label, sizeof label, "no layer (%zu module%s)", n, n == 1 ? "" : "s");
		put_row(f, label, name_w, &layers[k].sums, fid->limits);
	}
	free(layers);
	const lq_fidelity_sums all = fidelity_overall(fid);
	put_row(f, "overall", name_w, &all, fid->limits);
	const size_t erased = fidelity_erased(fid);
	fprintf(f, "\n%zu module%s, %zu erased (survival below %g or residual above %g)\n", fid->n,
		fid->n == 1 ? "" : "s", erased, fid->limits.min_survival, fid->limits.max_residual);
	size_t *order = lowest_survival(fid);
	const size_t top = order ? ((size_t)a->top < fid->n ? (size_t)a->top : fid->n) : 0;
	if (top)
		fprintf(f, "lowest survival:\n");
	for (size_t k = 0; k < top; k++) {
		const fidelity_figures g = fidelity_figures_of(&fid->v[order[k]].sums, fid->limits);
		fprintf(f, "  %-*s survival %.3g, residual %.3g%s\n", name_w, qi_plain_text(fid->v[order[k]].name, plain),
			g.survival, g.residual, g.erased ? "  erased" : "");
	}
	free(order);
	double median, worst;
	const char *worst_name;
	fidelity_base_ratio_spread(fid, &median, &worst, &worst_name);
	if (worst_name)
		fprintf(f, "base_shift (the 4-bit error of the float base against the adapters' change): median %.3g, "
			"at most %.3g in '%s'\n", median, worst, qi_plain_text(worst_name, plain));
	free(plain);
	return !ferror(f);
}

/* ------------------------------------------------------------------------------------- CSV */

static void csv_figures(FILE *f, const lq_fidelity_sums *s, fidelity_limits limits)
{
	const fidelity_figures g = fidelity_figures_of(s, limits);
	fprintf(f, ",%llu,", (unsigned long long)s->elements);
	qi_csv_number(f, g.adapter_norm);
	fputc(',', f);
	qi_csv_number(f, g.quant_noise_norm);
	fputc(',', f);
	qi_csv_number(f, g.base_ratio);
	fputc(',', f);
	qi_csv_number(f, g.survival);
	fputc(',', f);
	qi_csv_number(f, g.residual);
	fputs(g.erased ? ",true\n" : ",false\n", f);
}

bool qi_adapter_write_csv(const qi_adapter_report *r, FILE *f)
{
	const fidelity_report *fid = &r->fid;
	fputs("row,name,layer,modules,elements,adapter_norm,quant_noise_norm,base_ratio,survival,residual,erased\n", f);
	for (size_t i = 0; i < fid->n; i++) {
		fputs("module,", f);
		if (!qi_csv_string(f, fid->v[i].name)) {
			errno = ENOMEM;
			return false;
		}
		if (fid->v[i].layer >= 0)
			fprintf(f, ",%d,1", fid->v[i].layer);
		else
			fputs(",,1", f);
		csv_figures(f, &fid->v[i].sums, fid->limits);
	}
	size_t nlayers;
	fidelity_layer *layers = fidelity_layers(fid, &nlayers);
	if (!layers) {
		errno = ENOMEM;
		return false;
	}
	for (size_t k = 0; k < nlayers; k++) {
		if (layers[k].layer >= 0)
			fprintf(f, "layer,,%d,%zu", layers[k].layer, layers[k].modules);
		else
			fprintf(f, "layer,,,%zu", layers[k].modules);
		csv_figures(f, &layers[k].sums, fid->limits);
	}
	free(layers);
	const lq_fidelity_sums all = fidelity_overall(fid);
	fprintf(f, "overall,,,%zu", fid->n);
	csv_figures(f, &all, fid->limits);
	return !ferror(f);
}

/* ------------------------------------------------------------------------------------ JSON */

bool qi_adapter_write_json(const qi_adapter_report *r, FILE *f)
{
	const qi_adapter_args *a = r->args;
	cJSON *root = cJSON_CreateObject();
	cJSON_AddNumberToObject(root, "schema", 3);
	cJSON_AddStringToObject(root, "tool", "qinspect");
	cJSON_AddStringToObject(root, "version", LQ_VERSION_STRING);
	cJSON_AddStringToObject(root, "base", a->base);
	cJSON *ads = cJSON_AddArrayToObject(root, "adapters");
	for (size_t i = 0; i < a->rq.nadapters; i++) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "path", a->rq.adapters[i]);
		cJSON_AddNumberToObject(x, "weight", a->rq.weights[i]);
		cJSON_AddItemToArray(ads, x);
	}
	if (a->merged)
		cJSON_AddStringToObject(root, "merged", a->merged);
	else
		cJSON_AddNullToObject(root, "merged");
	cJSON_AddStringToObject(root, "base_kind", r->base_quantized ? "bitsandbytes-4bit"
							     : "float, merged as 4-bit quantize-dequantize");
	cJSON_AddBoolToObject(root, "requantize", !a->merged);
	cJSON_AddStringToObject(root, "device", r->device);
	cJSON_AddNumberToObject(root, "seconds", r->seconds);
	cJSON *fid = fidelity_json(&r->fid);
	if (!fid || !cJSON_AddItemToObject(root, "fidelity", fid)) {
		cJSON_Delete(root);
		errno = ENOMEM;
		return false;
	}
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	if (!text) {
		errno = ENOMEM;
		return false;
	}
	bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
	free(text);
	return ok && !ferror(f);
}
