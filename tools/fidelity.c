/*
 * fidelity.c: see fidelity.h. A layer's and the whole model's figures come from their modules' sums added
 * in name order (never averaged ratios): a layer where one big module lost its change and small ones kept
 * theirs reads as the big one weighs.
 */
#include "fidelity.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hf_tensors.h"

/* A finite number for a fidelity threshold (survival may be negative: a change reversed). */
double fidelity_parse_threshold(const char *option, const char *arg)
{
	char *end = NULL;
	double v = strtod(arg, &end);
	if (!*arg || isspace((unsigned char)*arg) || !end || *end || !isfinite(v))
		cli_usage_error("invalid %s '%s' (a number, e.g. 0.5)", option, arg);
	return v;
}

fidelity_figures fidelity_figures_of(const lq_fidelity_sums *s, fidelity_limits limits)
{
	fidelity_figures f = {.adapter_norm = sqrt(s->delta2), .quant_noise_norm = NAN, .base_ratio = NAN,
			      .survival = NAN, .residual = NAN};
	if (s->has_noise) {
		f.quant_noise_norm = sqrt(s->noise2);
		if (s->delta2 > 0)
			f.base_ratio = f.quant_noise_norm / f.adapter_norm;
	}
	if (s->delta2 > 0) {
		f.changed = true;
		f.survival = s->dot / s->delta2;
		f.residual = sqrt(s->residual2) / f.adapter_norm;
		f.unbounded = !isfinite(s->delta2) || !isfinite(s->dot) || !isfinite(s->residual2);
		/* written so that a NaN counts as erased */
		f.erased = f.unbounded || !(f.survival >= limits.min_survival) || !(f.residual <= limits.max_residual);
	}
	return f;
}

bool fidelity_below(const fidelity_figures *f, double min)
{
	return f->changed && (f->unbounded || !(f->survival >= min));
}

lq_status fidelity_add(fidelity_report *r, const char *name, const lq_fidelity_sums *s)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		fidelity_module *v = realloc(r->v, cap * sizeof *v);
		if (!v)
			return LQ_ERR_NOMEM;
		r->v = v;
		r->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return LQ_ERR_NOMEM;
	r->v[r->n++] = (fidelity_module){copy, hf_layer_of(name), *s};
	return LQ_OK;
}

void fidelity_free(fidelity_report *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const fidelity_module *)a)->name, ((const fidelity_module *)b)->name);
}

void fidelity_sort(fidelity_report *r)
{
	if (r->n)
		qsort(r->v, r->n, sizeof *r->v, by_name);
}

/* The figures of sums s into o. */
static void add_figures(cJSON *o, const lq_fidelity_sums *s, fidelity_limits limits)
{
	const fidelity_figures f = fidelity_figures_of(s, limits);
	cJSON_AddNumberToObject(o, "elements", (double)s->elements);
	cJSON_AddItemToObject(o, "adapter_norm", cli_json_number(f.adapter_norm));
	cJSON_AddItemToObject(o, "quant_noise_norm", cli_json_number(f.quant_noise_norm));
	cJSON_AddItemToObject(o, "base_ratio", cli_json_number(f.base_ratio));
	cJSON_AddItemToObject(o, "survival", cli_json_number(f.survival));
	cJSON_AddItemToObject(o, "residual", cli_json_number(f.residual));
	cJSON_AddBoolToObject(o, "erased", f.erased);
}

fidelity_layer *fidelity_layers(const fidelity_report *r, size_t *n)
{
	*n = 0;
	int top = -1;
	for (size_t i = 0; i < r->n; i++)
		top = r->v[i].layer > top ? r->v[i].layer : top;
	fidelity_layer *v = calloc(r->n + 1, sizeof *v);
	for (int layer = -1; v && layer <= top; layer++) {
		fidelity_layer l = {.layer = layer};
		for (size_t i = 0; i < r->n; i++)
			if (r->v[i].layer == layer) {
				lq_fidelity_sums_add(&l.sums, &r->v[i].sums);
				l.modules++;
			}
		if (l.modules)
			v[(*n)++] = l;
	}
	return v;
}

lq_fidelity_sums fidelity_overall(const fidelity_report *r)
{
	lq_fidelity_sums all = {0};
	for (size_t i = 0; i < r->n; i++)
		lq_fidelity_sums_add(&all, &r->v[i].sums);
	return all;
}

cJSON *fidelity_json(const fidelity_report *r)
{
	size_t nlayers;
	fidelity_layer *layer = fidelity_layers(r, &nlayers);
	if (!layer)
		return NULL;
	cJSON *root = cJSON_CreateObject(), *limits = cJSON_AddObjectToObject(root, "thresholds");
	cJSON_AddItemToObject(limits, "min_survival", cli_json_number(r->limits.min_survival));
	cJSON_AddItemToObject(limits, "max_residual", cli_json_number(r->limits.max_residual));
	cJSON *modules = cJSON_AddArrayToObject(root, "modules"), *layers = cJSON_AddArrayToObject(root, "layers");
	cJSON *erased = cJSON_AddArrayToObject(root, "erased");
	for (size_t k = 0; k < nlayers; k++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "layer", layer[k].layer);
		cJSON_AddNumberToObject(o, "modules", (double)layer[k].modules);
		add_figures(o, &layer[k].sums, r->limits);
		cJSON_AddItemToArray(layers, o);
	}
	free(layer);
	for (size_t i = 0; i < r->n; i++) {
		const fidelity_module *m = &r->v[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", m->name);
		cJSON_AddNumberToObject(o, "layer", m->layer);
		add_figures(o, &m->sums, r->limits);
		cJSON_AddItemToArray(modules, o);
		if (fidelity_figures_of(&m->sums, r->limits).erased)
			cJSON_AddItemToArray(erased, cJSON_CreateString(m->name));
	}
	const lq_fidelity_sums all = fidelity_overall(r);
	cJSON *overall = cJSON_AddObjectToObject(root, "overall");
	cJSON_AddNumberToObject(overall, "modules", (double)r->n);
	cJSON_AddNumberToObject(overall, "erased_modules", (double)fidelity_erased(r));
	add_figures(overall, &all, r->limits);
	return root;
}

size_t fidelity_erased(const fidelity_report *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += fidelity_figures_of(&r->v[i].sums, r->limits).erased;
	return n;
}

static int by_value(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void fidelity_base_ratio_spread(const fidelity_report *r, double *median, double *worst, const char **worst_name)
{
	*median = *worst = NAN;
	*worst_name = NULL;
	double *v = malloc((r->n + 1) * sizeof *v);
	size_t n = 0;
	for (size_t i = 0; v && i < r->n; i++) {
		const double x = fidelity_figures_of(&r->v[i].sums, r->limits).base_ratio;
		if (isnan(x))
			continue;
		v[n++] = x;
		if (!*worst_name || x > *worst) {
			*worst = x;
			*worst_name = r->v[i].name;
		}
	}
	if (n) {
		qsort(v, n, sizeof *v, by_value);
		*median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	}
	free(v);
}
