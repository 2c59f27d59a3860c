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

/* The figures of a module (or of a layer's or the whole model's sums). A figure with nothing to divide by
 * (no change at all) is NaN and goes out as null. */
typedef struct fidelity_figures {
	double adapter_norm;     /* ||D|| */
	double quant_noise_norm; /* ||W16 - Wq||, NaN without a float base */
	double base_ratio;       /* quant_noise_norm / adapter_norm: base_shift */
	double survival;         /* <M - W, D> / ||D||^2 */
	double residual;         /* ||M - (W + D)|| / ||D|| */
	bool erased;
} fidelity_figures;

fidelity_figures fidelity_figures_of(const lq_fidelity_sums *s, fidelity_limits limits);

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

/* The report's "fidelity" object: thresholds, modules, layers, overall, the erased modules' names. */
cJSON *fidelity_json(const fidelity_report *r);

/* How many modules are erased; the median and the largest base_ratio over the modules that have one
 * (NaN when none has). */
size_t fidelity_erased(const fidelity_report *r);
void fidelity_base_ratio_spread(const fidelity_report *r, double *median, double *worst, const char **worst_name);

#endif /* TOOLS_FIDELITY_H */
