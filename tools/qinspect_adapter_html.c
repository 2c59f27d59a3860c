/*
 * qinspect_adapter_html.c: qinspect --adapter's HTML page (qinspect_adapter.h): the summary, a scatter of
 * each module's adapter_norm against its requantization error ||M - (W + D)|| (= residual * adapter_norm,
 * log-log, the erased modules marked, the residual threshold as a line), the layers, and the modules'
 * table, sortable by survival, residual, adapter_norm, base_ratio or name. As the tensor report's page
 * (qinspect_html.c), one self-contained file that runs no script and fetches nothing (its
 * Content-Security-Policy forbids both): the sorting is one pre-sorted copy of the table per key, shown by
 * a radio button through CSS.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libquant.h"
#include "qinspect_adapter.h"
#include "qinspect_report.h"

/* Text as HTML: hidden characters as '?' (qi_plain_text), the five special ones escaped. */
static void put_text(FILE *f, const char *s)
{
	char *plain = malloc(strlen(s) + 1);
	for (const char *c = plain ? qi_plain_text(s, plain) : "?"; *c; c++)
		switch (*c) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*c, f);
		}
	free(plain);
}

/* A figure as %.4g, "&ndash;" for none. */
static void put_num(FILE *f, double v)
{
	if (isnan(v))
		fputs("<span class=\"na\">&ndash;</span>", f);
	else
		fprintf(f, "%.4g", v);
}

static const char css[] =
	":root{color-scheme:light}\n"
	"body{margin:0;background:#fff;color:#1d1d1d;font:14px/1.45 system-ui,\"DejaVu Sans\",sans-serif}\n"
	"main{max-width:1160px;margin:0 auto;padding:10px 16px 40px}\n"
	"h1{font-size:21px;margin:4px 0 6px}\n"
	"h2{font-size:16px;margin:20px 0 6px;padding-bottom:2px;border-bottom:1px solid #ddd}\n"
	".name{font-family:\"DejaVu Sans Mono\",ui-monospace,monospace;font-size:12.5px}\n"
	".kv{border-collapse:collapse}.kv th{text-align:left;font-weight:600;color:#555;padding:1px 14px 1px 0;"
	"vertical-align:top;white-space:nowrap}.kv td{overflow-wrap:anywhere}\n"
	"table.data{border-collapse:collapse;width:100%;font-size:12.5px}\n"
	"table.data th{background:#f1f1f1;text-align:right;padding:3px 4px}\n"
	"table.data td{padding:2px 4px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap;"
	"font-variant-numeric:tabular-nums}\n"
	"table.data .name{text-align:left;white-space:normal;overflow-wrap:anywhere}\n"
	"tr.erased td{background:#fdecea}.bad{color:#b71c1c;font-weight:700}.na{color:#bbb}\n"
	".note{color:#555;font-style:italic}\n"
	"svg.plot{display:block;max-width:100%;height:auto;font-family:system-ui,\"DejaVu Sans\",sans-serif;"
	"font-size:11px}\n"
	"svg .grid{stroke:#e4e4e4}svg .axis{stroke:#666}svg .yl{text-anchor:end;fill:#444}\n"
	"svg .xl{text-anchor:middle;fill:#444}svg .at{text-anchor:middle;fill:#222;font-size:12px}\n"
	"svg .limit{stroke:#d62728;stroke-dasharray:6 4;stroke-width:1.5}svg .kept{fill:#1f77b4;fill-opacity:.75}\n"
	"svg .erased{fill:#d62728}svg .ll{fill:#d62728;font-size:11px}\n"
	".sorts{margin:4px 0 8px;font-size:13px}.sorts label{margin-right:14px;cursor:pointer}\n"
	".sorted{display:none}\n"
	"#by-name:checked~#t-name,#by-survival:checked~#t-survival,#by-residual:checked~#t-residual,"
	"#by-adapter_norm:checked~#t-adapter_norm,#by-base_ratio:checked~#t-base_ratio{display:table}\n";

/* ------------------------------------------------------------------------------- the scatter */

typedef struct point {
	double x, y; /* adapter_norm, ||M - (W + D)|| */
	size_t module;
	bool erased;
} point;

/* The modules that changed, as points. */
static point *points_of(const fidelity_report *r, size_t *n)
{
	point *p = malloc((r->n + 1) * sizeof *p);
	*n = 0;
	for (size_t i = 0; p && i < r->n; i++) {
		const fidelity_figures g = fidelity_figures_of(&r->v[i].sums, r->limits);
		if (!(g.adapter_norm > 0) || !isfinite(g.adapter_norm) || !isfinite(g.residual))
			continue;
		p[(*n)++] = (point){g.adapter_norm, g.residual * g.adapter_norm, i, g.erased};
	}
	return p;
}

/* The whole decades that hold every positive value of v (lo, hi as powers of ten), and at least one. */
static void decades(const point *p, size_t n, bool y, int *lo, int *hi)
{
	double mn = INFINITY, mx = 0;
	for (size_t i = 0; i < n; i++) {
		const double v = y ? p[i].y : p[i].x;
		if (v > 0) {
			mn = v < mn ? v : mn;
			mx = v > mx ? v : mx;
		}
	}
	if (!(mx > 0)) {
		*lo = -3;
		*hi = 0;
		return;
	}
	*lo = (int)floor(log10(mn));
	*hi = (int)ceil(log10(mx));
	if (*hi <= *lo)
		*hi = *lo + 1;
}

enum { PW = 760, PH = 430, L = 70, R = 20, T = 16, B = 50 };

static double px(double v, int lo, int hi, double a, double b)
{
	return a + (log10(v) - lo) / (hi - lo) * (b - a);
}

/* The grid lines and labels of a log axis from 10^lo to 10^hi along [a, b] (the other axis [c, d]): at
 * every decade, and at 2 and 5 of each too when it spans two decades or fewer. */
static void axis_ticks(FILE *f, int lo, int hi, bool x_axis, double a, double b, double c, double d)
{
	static const double steps[] = {1, 2, 5};
	const int nsteps = hi - lo <= 2 ? 3 : 1;
	for (int e = lo; e <= hi; e++)
		for (int k = 0; k < nsteps && (e < hi || k == 0); k++) {
			const double v = steps[k] * pow(10, e), t = px(v, lo, hi, a, b);
			if (x_axis)
				fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
					"<text class=\"xl\" x=\"%.1f\" y=\"%.1f\">%g</text>\n", t, c, t, d, t, c + 16, v);
			else
				fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
					"<text class=\"yl\" x=\"%.1f\" y=\"%.1f\">%g</text>\n", c, t, d, t, c - 6, t + 4, v);
		}
}

static void plot(FILE *f, const qi_adapter_report *r)
{
	size_t n;
	point *p = points_of(&r->fid, &n);
	if (!p || !n) {
		fputs("<p class=\"note\">No module changed: nothing to plot.</p>\n", f);
		free(p);
		return;
	}
	/* one range for both axes would hide either; each its own decades */
	int xlo, xhi, ylo, yhi;
	decades(p, n, false, &xlo, &xhi);
	decades(p, n, true, &ylo, &yhi);
	if (ylo == -3 && yhi == 0 && xlo < ylo) { /* no error at all: the y axis spans the x axis */
		ylo = xlo;
		yhi = xhi;
	}
	const double x0 = L, x1 = PW - R, y0 = PH - B, y1 = T;
	fprintf(f, "<figure><svg class=\"plot\" id=\"scatter\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\">"
		"<title>adapter_norm against the requantization error, per module</title>\n", PW, PH, PW, PH);
	axis_ticks(f, xlo, xhi, true, x0, x1, y0, y1);
	axis_ticks(f, ylo, yhi, false, y0, y1, x0, x1);
	fprintf(f, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
		"<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", L, y0, PW - R, y0, L, y0, L, y1);
	fprintf(f, "<text class=\"at\" x=\"%.1f\" y=\"%d\">adapter_norm &#8214;D&#8214; (log)</text>"
		"<text class=\"at\" transform=\"translate(16 %.1f) rotate(-90)\">requantization error "
		"&#8214;M &#8722; (W + D)&#8214; (log)</text>\n", (x0 + x1) / 2, PH - 8, (y0 + y1) / 2);
	/* residual = max_residual: y = max_residual * x, drawn where it crosses the plot */
	const double k = r->fid.limits.max_residual;
	if (k > 0) {
		double a = fmax(pow(10, xlo), pow(10, ylo) / k), b = fmin(pow(10, xhi), pow(10, yhi) / k);
		if (a < b)
			fprintf(f, "<line class=\"limit\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
				"<text class=\"ll\" x=\"%.1f\" y=\"%.1f\">residual %g</text>\n", px(a, xlo, xhi, x0, x1),
				px(a * k, ylo, yhi, y0, y1), px(b, xlo, xhi, x0, x1), px(b * k, ylo, yhi, y0, y1),
				px(b, xlo, xhi, x0, x1) - 70, px(b * k, ylo, yhi, y0, y1) + 14, k);
	}
	for (size_t i = 0; i < n; i++) {
		const fidelity_module *m = &r->fid.v[p[i].module];
		const fidelity_figures g = fidelity_figures_of(&m->sums, r->fid.limits);
		const double y = p[i].y > 0 ? px(p[i].y, ylo, yhi, y0, y1) : y0;
		fprintf(f, "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\"><title>", p[i].erased ? "erased" : "kept",
			px(p[i].x, xlo, xhi, x0, x1), y, p[i].erased ? 5 : 4);
		put_text(f, m->name);
		fprintf(f, ": adapter_norm %.4g, survival %.4g, residual %.4g%s</title></circle>\n", g.adapter_norm,
			g.survival, g.residual, p[i].erased ? ", erased" : "");
	}
	fputs("</svg>\n<figcaption>Each module: the size of the adapters' change (x) against the error its 4-bit form "
	      "adds to it (y). Red: erased (survival below the threshold or residual above it); above the dashed "
	      "line the error is larger than the change.</figcaption></figure>\n", f);
	free(p);
}

/* ------------------------------------------------------------------------------- the tables */

typedef enum sort_key { BY_NAME, BY_SURVIVAL, BY_RESIDUAL, BY_ADAPTER_NORM, BY_BASE_RATIO, NKEYS } sort_key;

static const char *const key_name[NKEYS] = {"name", "survival", "residual", "adapter_norm", "base_ratio"};
static const char *const key_label[NKEYS] = {"name", "survival (lowest first)", "residual (highest first)",
					     "adapter_norm (largest first)", "base_ratio (largest first)"};

typedef struct sort_ctx {
	const fidelity_report *r;
	sort_key key;
} sort_ctx;

static double key_value(const fidelity_report *r, size_t i, sort_key key)
{
	const fidelity_figures g = fidelity_figures_of(&r->v[i].sums, r->limits);
	switch (key) {
	case BY_SURVIVAL: return g.survival;
	case BY_RESIDUAL: return -g.residual;
	case BY_ADAPTER_NORM: return -g.adapter_norm;
	case BY_BASE_RATIO: return -g.base_ratio;
	default: return 0;
	}
}

/* Ascending by the key's value (NaN last), then by name (the report's order). */
static int by_key(const void *x, const void *y, void *arg)
{
	const sort_ctx *c = arg;
	const size_t i = *(const size_t *)x, j = *(const size_t *)y;
	const double a = key_value(c->r, i, c->key), b = key_value(c->r, j, c->key);
	if (isnan(a) != isnan(b))
		return isnan(a) - isnan(b);
	if (a != b && !isnan(a))
		return (a > b) - (a < b);
	return (i > j) - (i < j);
}

static void figures_cells(FILE *f, const lq_fidelity_sums *s, fidelity_limits limits)
{
	const fidelity_figures g = fidelity_figures_of(s, limits);
	const double v[5] = {g.adapter_norm, g.quant_noise_norm, g.base_ratio, g.survival, g.residual};
	for (int k = 0; k < 5; k++) {
		fputs(k >= 3 && g.erased ? "<td class=\"bad\">" : "<td>", f);
		put_num(f, v[k]);
		fputs("</td>", f);
	}
	fputs(g.erased ? "<td class=\"bad\">erased</td>" : "<td></td>", f);
}

static const char figure_heads[] = "<th>adapter_norm</th><th>quant_noise_norm</th><th>base_ratio</th>"
				   "<th>survival</th><th>residual</th><th></th>";

static void module_table(FILE *f, const fidelity_report *r, sort_key key, size_t *order)
{
	sort_ctx c = {r, key};
	for (size_t i = 0; i < r->n; i++)
		order[i] = i;
	qsort_r(order, r->n, sizeof *order, by_key, &c);
	fprintf(f, "<table class=\"data sorted\" id=\"t-%s\"><thead><tr><th class=\"name\">module</th><th>layer</th>%s"
		"</tr></thead><tbody>\n", key_name[key], figure_heads);
	for (size_t k = 0; k < r->n; k++) {
		const fidelity_module *m = &r->v[order[k]];
		fputs(fidelity_figures_of(&m->sums, r->limits).erased ? "<tr class=\"erased\">" : "<tr>", f);
		fputs("<td class=\"name\">", f);
		put_text(f, m->name);
		if (m->layer >= 0)
			fprintf(f, "</td><td>%d</td>", m->layer);
		else
			fputs("</td><td></td>", f);
		figures_cells(f, &m->sums, r->limits);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
}

static void kv(FILE *f, const char *key, const char *value)
{
	fprintf(f, "<tr><th>%s</th><td>", key);
	put_text(f, value);
	fputs("</td></tr>\n", f);
}

bool qi_adapter_write_html(const qi_adapter_report *r, FILE *f)
{
	const qi_adapter_args *a = r->args;
	const fidelity_report *fid = &r->fid;
	size_t nlayers, *order = malloc((fid->n + 1) * sizeof *order);
	fidelity_layer *layers = fidelity_layers(fid, &nlayers);
	if (!order || !layers) {
		free(order);
		free(layers);
		errno = ENOMEM;
		return false;
	}
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      "<meta name=\"generator\" content=\"qinspect\">\n<title>qinspect --adapter: ", f);
	put_text(f, a->base);
	fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body><main>\n<h1>What the merge keeps of the adapters</h1>\n"
		"<table class=\"kv\" id=\"summary\">\n", css);
	kv(f, "base", a->base);
	for (size_t i = 0; i < a->rq.nadapters; i++) {
		char w[64];
		snprintf(w, sizeof w, " (weight %g)", a->rq.weights[i]);
		fputs("<tr><th>adapter</th><td>", f);
		put_text(f, a->rq.adapters[i]);
		fprintf(f, "%s</td></tr>\n", w);
	}
	kv(f, "W", qi_adapter_base_kind(r));
	kv(f, "M", a->merged ? a->merged : "the merge requantized here, as loramerge --requantize writes it");
	const lq_fidelity_sums all = fidelity_overall(fid);
	const fidelity_figures g = fidelity_figures_of(&all, fid->limits);
	fprintf(f, "<tr><th>modules</th><td>%zu, <span class=\"%s\">%zu erased</span> (survival below %g or residual "
		"above %g)</td></tr>\n", fid->n, fidelity_erased(fid) ? "bad" : "", fidelity_erased(fid),
		fid->limits.min_survival, fid->limits.max_residual);
	fputs("<tr><th>overall</th><td>survival ", f);
	put_num(f, g.survival);
	fputs(", residual ", f);
	put_num(f, g.residual);
	fputs(", base_ratio ", f);
	put_num(f, g.base_ratio);
	fputs("</td></tr>\n", f);
	kv(f, "computed on", r->device ? r->device : "");
	fputs("</table>\n<h2>Adapter change against requantization error</h2>\n", f);
	plot(f, r);
	fprintf(f, "<h2>Layers</h2>\n<table class=\"data\" id=\"layers\"><thead><tr><th class=\"name\">layer</th>"
		"<th>modules</th>%s</tr></thead><tbody>\n", figure_heads);
	for (size_t k = 0; k < nlayers; k++) {
		if (layers[k].layer >= 0)
			fprintf(f, "<tr><td class=\"name\">%d</td><td>%zu</td>", layers[k].layer, layers[k].modules);
		else
			fprintf(f, "<tr><td class=\"name\">no layer</td><td>%zu</td>", layers[k].modules);
		figures_cells(f, &layers[k].sums, fid->limits);
		fputs("</tr>\n", f);
	}
	fputs("<tr><td class=\"name\"><b>overall</b></td>", f);
	fprintf(f, "<td>%zu</td>", fid->n);
	figures_cells(f, &all, fid->limits);
	fputs("</tr>\n</tbody></table>\n<h2>Modules</h2>\n<div class=\"sorts\">sort by:</div>\n", f);
	/* the radio buttons before the tables they show (the ~ selector looks forward) */
	for (int k = 0; k < NKEYS; k++)
		fprintf(f, "<input type=\"radio\" name=\"sort\" id=\"by-%s\"%s><label for=\"by-%s\">%s</label>\n",
			key_name[k], k == BY_SURVIVAL ? " checked" : "", key_name[k], key_label[k]);
	for (int k = 0; k < NKEYS; k++)
		module_table(f, fid, (sort_key)k, order);
	fprintf(f, "<p class=\"note\">qinspect %s, %.2f s. The figures: man qinspect, ADAPTER REPORT.</p>\n"
		"</main></body>\n</html>\n", LQ_VERSION_STRING, r->seconds);
	free(order);
	free(layers);
	return !ferror(f);
}
