/*
 * fidelity.h: what a merge keeps of its adapters, per module, per layer and overall (man/loramerge.1,
 * FIDELITY): the figures of libquant's lq_fidelity_sums, the `erased` verdict, the report's JSON (the
 * same object in loramerge --fidelity's report and qinspect --adapter's) and the lines a run prints.
 */
#ifndef TOOLS_FIDELITY_H
#define TOOLS_FIDELITY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "libquant.h"

/* A module is erased when its survival is below min_survival or its residual above max_residual. */
typedef struct fidelity_limits {
	double min_survival, max_residual;
} fidelity_limits;

#define FIDELITY_LIMITS_DEFAULT ((fidelity_limits){0.5, 1.0})

/* The value of a threshold option (--min-survival, --erased-survival, --erased-residual): a finite number,
 * negative too (a change reversed); a usage error exits. */
double fidelity_parse_threshold(const char *option, const char *arg);

/* The figures of a module (or of a layer's or the whole model's sums). A figure with nothing to divide by
 * (no change at all) is NaN and goes out as null. */
typedef struct fidelity_figures {
	double adapter_norm;     /* ||D|| */
	double quant_noise_norm; /* ||W16 - Wq||, NaN without a float base */
	double base_ratio;       /* quant_noise_norm / adapter_norm: base_shift */
	double survival;         /* <M - W, D> / ||D||^2 */
	double residual;         /* ||M - (W + D)|| / ||D|| */
	bool changed;            /* the adapters changed the weight (||D|| > 0): survival and residual are known */
	bool unbounded;          /* changed, and a sum is not finite (M holds a NaN or an infinity): erased */
	bool erased;
} fidelity_figures;

fidelity_figures fidelity_figures_of(const lq_fidelity_sums *s, fidelity_limits limits);

/* Whether a module fails a --min-survival gate at min: it changed and kept less than min of it, or its
 * figures are unbounded (a NaN fails, never passes). */
bool fidelity_below(const fidelity_figures *f, double min);

typedef struct fidelity_module {
	char *name;
	int layer; /* hf_layer_of, -1 for none */
	lq_fidelity_sums sums;
} fidelity_module;

typedef struct fidelity_report {
	fidelity_module *v;
	size_t n, cap;
	fidelity_limits limits;
} fidelity_report;

/* Adds a module's sums (its name copied); LQ_ERR_NOMEM. */
lq_status fidelity_add(fidelity_report *r, const char *name, const lq_fidelity_sums *s);
void fidelity_free(fidelity_report *r);
/* The modules in name order (reports do not depend on the order tasks finished in). */
void fidelity_sort(fidelity_report *r);

/* A layer's modules summed (in name order). */
typedef struct fidelity_layer {
	int layer; /* -1: the modules outside any layer */
	size_t modules;
	lq_fidelity_sums sums;
} fidelity_layer;

/* The layers that have modules, in number order (-1 first); malloc'd, *n of them; NULL when out of
 * memory. */
fidelity_layer *fidelity_layers(const fidelity_report *r, size_t *n);
/* Every module's sums, added in name order. */
lq_fidelity_sums fidelity_overall(const fidelity_report *r);

/* The report's "fidelity" object (NULL when out of memory): thresholds, modules, layers, overall, the erased modules' names. */
cJSON *fidelity_json(const fidelity_report *r);

/* How many modules are erased; the median and the largest base_ratio over the modules that have one
 * (NaN when none has). */
size_t fidelity_erased(const fidelity_report *r);
void fidelity_base_ratio_spread(const fidelity_report *r, double *median, double *worst, const char **worst_name);

#endif /* TOOLS_FIDELITY_H */
