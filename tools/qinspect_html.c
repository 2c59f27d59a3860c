/*
 * qinspect_html.c: the HTML report (qi_write_html). One self-contained page that a browser shows from
 * disk with nothing else: inline CSS, SVG plots drawn here, no script, no font, image or style fetched.
 * A Content-Security-Policy says so too, so that even a mistake in the escaping below could not make the
 * page run or fetch anything.
 *
 * Everything comes from the report: a writer only reads it (qinspect_report.h). Tensor names come from
 * untrusted files, so every string goes through put_text. Numbers that are not finite (the SNR of an
 * identical tensor, the cosine of an all-zero one) are written as "∞" and "—" and never reach an SVG
 * coordinate, which always goes through scale_px. The output depends on the report alone (no clock, no
 * addresses, no hash order), so the same report gives the same bytes.
 */
#include "qinspect_report.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ------------------------------------------------------------------------------- text and numbers */

/* s as HTML text or attribute value (always quoted with "): & < > " ' as references, what qi_hidden_char
 * names (controls, bidirectional overrides: a name that would display as another) and bytes that are not
 * UTF-8 as U+FFFD. With breaks, a <wbr> after each '.': a long tensor name wraps between its components,
 * not inside one, and copies as it is (a <wbr> is no character). NULL is written as nothing. */
static void put_text_breaks(FILE *f, const char *s, bool breaks)
{
	const unsigned char *p = (const unsigned char *)s;
	if (!p)
		return;
	while (*p) {
		uint32_t cp;
		int n = qi_utf8_decode(p, &cp);
		if (n == 0 || qi_hidden_char(cp)) {
			fputs("\xef\xbf\xbd", f); /* U+FFFD */
			p += n ? n : 1;
			continue;
		}
		switch (cp) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		case '.': fputs(breaks && p[1] ? ".<wbr>" : ".", f); break;
		default: fwrite(p, 1, (size_t)n, f);
		}
		p += n;
	}
}

static void put_text(FILE *f, const char *s)
{
	put_text_breaks(f, s, false);
}

/* A tensor name in the page's text (not in an attribute or a tooltip): breakable at its dots. */
static void put_name(FILE *f, const char *s)
{
	put_text_breaks(f, s, true);
}

/* put_text of the first len bytes of s (a module kind inside a name). */
static void put_text_n(FILE *f, const char *s, size_t len)
{
	char buf[128];
	if (len >= sizeof buf)
		len = sizeof buf - 1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	put_text(f, buf);
}

/* A formatted number, returned by value so that several fit in one printf: num_g(a, 4).s lives until the
 * end of the full expression (C11 6.2.4). */
typedef struct numstr {
	char s[48];
} numstr;

/* %.*g, but "∞", "−∞" and "—" (NaN) for what is not finite: no "inf" or "nan" on the page. */
static numstr num_g(double v, int digits)
{
	numstr n;
	if (isnan(v))
		snprintf(n.s, sizeof n.s, "%s", "\xe2\x80\x94"); /* — */
	else if (isinf(v))
		snprintf(n.s, sizeof n.s, "%s", v > 0 ? "\xe2\x88\x9e" : "\xe2\x88\x92\xe2\x88\x9e"); /* ∞ −∞ */
	else
		snprintf(n.s, sizeof n.s, "%.*g", digits, v);
	return n;
}

/* %.*f with the same treatment of what is not finite. */
static numstr num_f(double v, int decimals)
{
	numstr n;
	if (!isfinite(v))
		return num_g(v, 1);
	snprintf(n.s, sizeof n.s, "%.*f", decimals, v);
	return n;
}

/* 1234567 as "1,234,567": parameter and element counts run to tens of billions. */
static numstr num_count(uint64_t v)
{
	numstr n;
	char digits[24];
	int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v), o = 0;
	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			n.s[o++] = ',';
		n.s[o++] = digits[i];
	}
	n.s[o] = '\0';
	return n;
}

/* "2.14 GB" as the other tools write sizes. */
static numstr num_bytes(uint64_t v)
{
	numstr n;
	cli_human_bytes(v, n.s, sizeof n.s);
	return n;
}

/* 100 a / b, 0 when b is 0. */
static double percent(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0;
}

/* "10⁻³": an axis label for a power of ten, in Unicode superscripts (nothing to position by hand). */
static void put_pow10(FILE *f, int e)
{
	static const char *const sup[10] = {"\xe2\x81\xb0", "\xc2\xb9", "\xc2\xb2", "\xc2\xb3", "\xe2\x81\xb4",
					    "\xe2\x81\xb5", "\xe2\x81\xb6", "\xe2\x81\xb7", "\xe2\x81\xb8",
					    "\xe2\x81\xb9"};
	char digits[16];
	int n = snprintf(digits, sizeof digits, "%d", e < 0 ? -e : e);
	fputs("10", f);
	if (e < 0)
		fputs("\xe2\x81\xbb", f); /* superscript minus */
	for (int i = 0; i < n; i++)
		fputs(sup[digits[i] - '0'], f);
}

/* ------------------------------------------------------------------------------------ report facts */

/* Whether a gate bounds from below (SNR, cosine) rather than from above. */
static bool gate_is_min(qi_gate_kind g)
{
	return g == QI_GATE_MIN_SNR || g == QI_GATE_MIN_COSINE;
}

/* For each tensor, a bit per gate it failed (bit g), from the gates' lists: the table highlights the
 * very figure that failed, not just the row. NULL (errno ENOMEM) when out of memory. */
static unsigned char *gate_failures(const qi_report *r)
{
	unsigned char *m = calloc(r->ntensors + 1, 1);
	if (!m)
		return NULL;
	for (int g = 0; g < QI_NGATES; g++) {
		const qi_gate *gate = &r->gates[g];
		if (!gate->set)
			continue;
		for (size_t i = 0; i < gate->nfailed; i++)
			if (gate->failed[i] < r->ntensors)
				m[gate->failed[i]] |= (unsigned char)(1u << g);
	}
	return m;
}

/* The module kind of a tensor, for the colours of plot 1: the last component of its name before
 * ".weight" (or ".bias"), "q_proj" of "model.layers.0.self_attn.q_proj.weight"; the whole name when it
 * has no dot. As a span of name (no copy). */
static void module_kind(const char *name, const char **start, size_t *len)
{
	static const char *const suffix[] = {".weight", ".bias"};
	size_t n = name ? strlen(name) : 0;
	if (!name)
		name = "";
	for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
		size_t k = strlen(suffix[i]);
		if (n > k && memcmp(name + n - k, suffix[i], k) == 0) {
			n -= k;
			break;
		}
	}
	size_t s = n;
	while (s > 0 && name[s - 1] != '.')
		s--;
	*start = name + s;
	*len = n - s;
}

/* The tensors' bytes and parameters, quantized or not: the report sums them only over everything. */
typedef struct group_sum {
	size_t tensors;
	uint64_t params;
	qi_bytes bytes;
} group_sum;

static group_sum sum_group(const qi_report *r, bool quantized)
{
	group_sum s = {0};
	for (size_t i = 0; i < r->ntensors; i++) {
		const qi_tensor *t = &r->tensors[i];
		if (t->quantized != quantized)
			continue;
		s.tensors++;
		s.params += t->params;
		s.bytes.codes += t->bytes.codes;
		s.bytes.absmax += t->bytes.absmax;
		s.bytes.nested += t->bytes.nested;
		s.bytes.tables += t->bytes.tables;
	}
	return s;
}

static size_t count_compared(const qi_report *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->ntensors; i++)
		n += r->tensors[i].err.present;
	return n;
}

/* -------------------------------------------------------------------------------------- SVG pieces */

/* The plot area inside an SVG, in pixels (y grows downwards). */
typedef struct box {
	double x0, y0, x1, y1;
} box;

/* A data range mapped onto pixels, linear or log10. */
typedef struct scale {
	double lo, hi; /* the range shown; lo > 0 on a log scale */
	double p0, p1; /* the pixels lo and hi map to */
	bool log;
} scale;

/* The pixel of v. Whatever v is (zero or negative on a log scale, NaN, infinite) the result is a finite
 * pixel inside [p0, p1]: out-of-range values sit on the edge rather than leave the plot. */
static double scale_px(const scale *s, double v)
{
	double t;
	if (s->log)
		t = (log10(v) - log10(s->lo)) / (log10(s->hi) - log10(s->lo));
	else
		t = (v - s->lo) / (s->hi - s->lo);
	if (isnan(t))
		t = 0;
	t = t < 0 ? 0 : t > 1 ? 1 : t;
	return s->p0 + t * (s->p1 - s->p0);
}

/* A linear axis from 0 that holds max: a round step (1, 2 or 5 times a power of ten) for about five
 * ticks, the top rounded up to a whole step. */
static void linear_range(double max, double *hi, double *step)
{
	if (!(max > 0) || !isfinite(max))
		max = 1;
	double raw = max / 5, p = pow(10, floor(log10(raw))), m = raw / p;
	*step = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
	*hi = ceil(max / *step - 1e-9) * *step;
}

/* <svg> with a fixed pixel size (CSS shrinks it on narrow windows) and a title for tooltips and screen
 * readers. */
static void svg_open(FILE *f, const char *id, int w, int h, const char *title)
{
	fprintf(f, "<svg id=\"%s\" class=\"plot\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">"
		   "<title>",
		id, w, h, w, h);
	put_text(f, title);
	fputs("</title>\n", f);
}

/* The y axis: at each tick a grid line across the box and a label left of it; the title turned along
 * the left edge. Linear axes tick every step from lo, with unit after the number ("%"); log axes tick
 * at powers of ten, every k-th when there are more than eight decades. */
static void svg_y_axis(FILE *f, const box *b, const scale *y, double step, const char *unit, const char *title)
{
	if (y->log) {
		int e0 = (int)lround(log10(y->lo)), e1 = (int)lround(log10(y->hi));
		int k = (e1 - e0 + 7) / 8;
		for (int e = e0; e <= e1; e += k > 0 ? k : 1) {
			double py = scale_px(y, pow(10, e));
			fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", b->x0, py,
				b->x1, py);
			fprintf(f, "<text class=\"yl\" x=\"%.1f\" y=\"%.1f\">", b->x0 - 6, py + 4);
			put_pow10(f, e);
			fputs("</text>\n", f);
		}
	} else {
		int n = (int)lround((y->hi - y->lo) / step);
		for (int i = 0; i <= n && i <= 50; i++) {
			double v = y->lo + i * step, py = scale_px(y, v);
			fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", b->x0, py,
				b->x1, py);
			fprintf(f, "<text class=\"yl\" x=\"%.1f\" y=\"%.1f\">%s%s</text>\n", b->x0 - 6, py + 4,
				num_g(v, 6).s, unit);
		}
	}
	fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", b->x0, b->y0, b->x0,
		b->y1);
	fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", b->x0, b->y1, b->x1,
		b->y1);
	double cy = (b->y0 + b->y1) / 2;
	fprintf(f, "<text class=\"at\" transform=\"translate(14 %.1f) rotate(-90)\">", cy);
	put_text(f, title);
	fputs("</text>\n", f);
}

/* The x axis title, centred under the box at the bottom of an SVG of height h. */
static void svg_x_title(FILE *f, const box *b, int h, const char *title)
{
	fprintf(f, "<text class=\"at\" x=\"%.1f\" y=\"%d\">", (b->x0 + b->x1) / 2, h - 6);
	put_text(f, title);
	fputs("</text>\n", f);
}

/* A bar's tooltip, written by the plot that knows what bar i stands for. */
typedef void (*bar_tip_fn)(FILE *f, size_t i, const void *ctx);

/* Vertical bars of v[0..n) against y, evenly across the box (a fifth of each slot left as a gap); each
 * bar gets its tooltip. A zero value still gets its (flat) bar, so a chart always has n bars. */
static void svg_vbars(FILE *f, const box *b, const scale *y, size_t n, const double *v, const char *fill,
		      bar_tip_fn tip, const void *ctx)
{
	double slot = (b->x1 - b->x0) / (double)n, base = scale_px(y, y->lo);
	for (size_t i = 0; i < n; i++) {
		double top = scale_px(y, v[i]);
		fprintf(f, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
			   "<title>",
			b->x0 + slot * ((double)i + 0.1), top, slot * 0.8, base - top, fill);
		tip(f, i, ctx);
		fputs("</title></rect>\n", f);
	}
}

static void note(FILE *f, const char *id, const char *text)
{
	fprintf(f, "<p class=\"note\" id=\"%s\">", id);
	put_text(f, text);
	fputs("</p>\n", f);
}

/* ------------------------------------------------------------------- plot 1: relative error by layer */

/* Tableau's colours without red (kept for gate failures) and grey (kept for the kinds beyond these). */
static const char *const kind_palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
					   "#17becf", "#bcbd22", "#393b79", "#6b6ecf", "#b5cf6b", "#8c6d31"};
#define NPALETTE (sizeof kind_palette / sizeof *kind_palette)
#define OTHER_KIND_COLOUR "#9a9a9a"
#define FAIL_COLOUR "#d62728"

/* A point of plot 1: a compared tensor, and where it goes. */
typedef struct rel_point {
	size_t tensor;
	int layer_key; /* the layer; tensors outside any layer last (INT_MAX) */
	size_t kind;   /* index into the kinds */
} rel_point;

/* Layer order: by layer, then as in the checkpoint. A total order, so qsort is deterministic. */
static int cmp_rel_point(const void *a, const void *b)
{
	const rel_point *p = a, *q = b;
	if (p->layer_key != q->layer_key)
		return p->layer_key < q->layer_key ? -1 : 1;
	return p->tensor < q->tensor ? -1 : p->tensor > q->tensor;
}

typedef struct kind {
	const char *name; /* a span of a tensor name */
	size_t len, count;
	size_t first;     /* its first point in layer order */
	size_t run;       /* its place in name order, before the kinds are ranked */
	const char *colour;
} kind;

/* Most frequent kinds first (ties: first seen in layer order), so the palette goes to the projections
 * that recur in every layer rather than to one-off tensors. */
static int cmp_kind(const void *a, const void *b)
{
	const kind *p = a, *q = b;
	if (p->count != q->count)
		return p->count > q->count ? -1 : 1;
	return p->first < q->first ? -1 : p->first > q->first;
}

/* A point's kind as a span of its name, to sort the points by kind. */
typedef struct kind_span {
	const char *s;
	size_t len;
	size_t point; /* index into the points */
} kind_span;

/* By name, then by point: each kind's first entry is its first point in layer order. */
static int cmp_kind_span(const void *a, const void *b)
{
	const kind_span *p = a, *q = b;
	int c = memcmp(p->s, q->s, p->len < q->len ? p->len : q->len);
	if (c != 0 || p->len != q->len)
		return c != 0 ? c : p->len < q->len ? -1 : 1;
	return p->point < q->point ? -1 : p->point > q->point;
}

/* The distinct kinds of the points, coloured, each point's kind set to its index; their number in
 * *nkinds. Sorting rather than searching a list keeps this O(n log n) however many distinct names an
 * untrusted checkpoint holds. NULL when out of memory. */
static kind *collect_kinds(const qi_report *r, rel_point *pts, size_t n, size_t *nkinds)
{
	kind_span *spans = calloc(n + 1, sizeof *spans);
	kind *k = calloc(n + 1, sizeof *k);
	size_t *rank = calloc(n + 1, sizeof *rank), nk = 0;
	if (!spans || !k || !rank) {
		free(spans);
		free(k);
		free(rank);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		module_kind(r->tensors[pts[i].tensor].name, &spans[i].s, &spans[i].len);
		spans[i].point = i;
	}
	qsort(spans, n, sizeof *spans, cmp_kind_span);
	/* runs of equal names are the kinds; pts[].kind holds the run's number for now */
	for (size_t i = 0; i < n; i++) {
		const kind_span *p = &spans[i], *q = &spans[i ? i - 1 : 0];
		if (i == 0 || p->len != q->len || memcmp(p->s, q->s, p->len) != 0) {
			k[nk] = (kind){.name = p->s, .len = p->len, .first = p->point, .run = nk};
			nk++;
		}
		k[nk - 1].count++;
		pts[p->point].kind = nk - 1;
	}
	/* most frequent first, and each point from its run to its kind's rank */
	qsort(k, nk, sizeof *k, cmp_kind);
	for (size_t j = 0; j < nk; j++) {
		rank[k[j].run] = j;
		k[j].colour = j < NPALETTE ? kind_palette[j] : OTHER_KIND_COLOUR;
	}
	for (size_t i = 0; i < n; i++)
		pts[i].kind = rank[pts[i].kind];
	free(spans);
	free(rank);
	*nkinds = nk;
	return k;
}

/* The y scale of plot 1: log when the positive finite values (and the gate's limit) span more than a
 * decade, from 0 otherwise. Zeros and values that are not finite do not count: scale_px puts them on an
 * edge, and the plot marks them as such. */
static scale rel_err_scale(const qi_report *r, const rel_point *pts, size_t n, const box *b, double *step)
{
	double lo = INFINITY, hi = 0;
	for (size_t i = 0; i < n; i++) {
		double v = r->tensors[pts[i].tensor].err.rel_err;
		if (isfinite(v) && v > 0) {
			lo = fmin(lo, v);
			hi = fmax(hi, v);
		}
	}
	const qi_gate *g = &r->gates[QI_GATE_MAX_REL_ERR];
	if (g->set && isfinite(g->limit) && g->limit > 0) {
		lo = fmin(lo, g->limit);
		hi = fmax(hi, g->limit);
	}
	scale s = {.p0 = b->y1, .p1 = b->y0};
	if (hi > 0 && hi / lo > 10) {
		s.log = true;
		s.lo = pow(10, floor(log10(lo)));
		s.hi = pow(10, ceil(log10(hi)));
		*step = 0;
	} else {
		s.lo = 0;
		linear_range(hi * 1.05, &s.hi, step);
	}
	return s;
}

/* A group of plot 1: the points of one layer (or of no layer, last), [start, end) in layer order. */
typedef struct layer_group {
	size_t start, end;
	double x0, x1; /* the pixels its points span */
	int layer;     /* -1: the tensors outside the layers */
} layer_group;

/* The groups of the sorted points; *ngroups of them (at most n). slot: the pixels a tensor takes; groups
 * are separated by one empty slot. NULL when out of memory. */
static layer_group *layer_groups(const qi_report *r, const rel_point *pts, size_t n, const box *b, double slot,
				 size_t *ngroups)
{
	layer_group *g = calloc(n + 1, sizeof *g);
	size_t ng = 0;
	if (!g)
		return NULL;
	for (size_t start = 0; start < n; ng++) {
		size_t end = start;
		while (end < n && pts[end].layer_key == pts[start].layer_key)
			end++;
		g[ng].start = start;
		g[ng].end = end;
		g[ng].x0 = b->x0 + slot * (double)(start + ng);
		g[ng].x1 = g[ng].x0 + slot * (double)(end - start);
		g[ng].layer = pts[start].layer_key == INT_MAX ? -1 : r->tensors[pts[start].tensor].layer;
		start = end;
	}
	*ngroups = ng;
	return g;
}

/* Shading every other layer, so the layers read as columns; left out when layers are too narrow for
 * stripes to tell anything (hundreds of layers). */
static void rel_err_bands(FILE *f, const layer_group *g, size_t ng, const box *b, double slot)
{
	if ((b->x1 - b->x0) / (double)ng < 8)
		return;
	for (size_t i = 0; i < ng; i += 2) {
		/* halfway into the empty slots around the group, and no further than the box */
		double x0 = fmax(g[i].x0 - slot / 2, b->x0), x1 = fmin(g[i].x1 + slot / 2, b->x1);
		fprintf(f, "<rect class=\"band\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", x0,
			b->y0, x1 - x0, b->y1 - b->y0);
	}
}

/* Half the width of an x label of len characters (11px sans: about 7px a character), with a margin. */
static double label_half(size_t len)
{
	return 3.5 * (double)len + 5;
}

/* The layer numbers under the axis: every layer when they fit, otherwise the multiples of a round step
 * (2, 5, 10, 20, 50...) wide enough that labels cannot overlap; "other" for the tensors outside the
 * layers always, a number that would touch it left out. */
static void rel_err_layer_labels(FILE *f, const layer_group *g, size_t ng, const box *b)
{
	static const int steps[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
	int maxlayer = 0;
	for (size_t i = 0; i < ng; i++)
		maxlayer = g[i].layer > maxlayer ? g[i].layer : maxlayer;
	char digits[16];
	double widest = 2 * label_half((size_t)snprintf(digits, sizeof digits, "%d", maxlayer));
	double pitch = (b->x1 - b->x0) / (double)ng; /* the pixels a layer takes, on average */
	int step = steps[sizeof steps / sizeof *steps - 1];
	for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
		if (pitch * steps[i] >= widest) {
			step = steps[i];
			break;
		}
	bool other = ng > 0 && g[ng - 1].layer < 0;
	double other_left = other ? (g[ng - 1].x0 + g[ng - 1].x1) / 2 - label_half(5) : INFINITY;
	double last_end = -INFINITY;
	for (size_t i = 0; i < ng; i++) {
		char label[16];
		if (g[i].layer < 0)
			snprintf(label, sizeof label, "other");
		else if (g[i].layer % step == 0)
			snprintf(label, sizeof label, "%d", g[i].layer);
		else
			continue;
		double cx = (g[i].x0 + g[i].x1) / 2, half = label_half(strlen(label));
		if (g[i].layer >= 0 && (cx - half < last_end || cx + half > other_left))
			continue;
		fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
			   "<text class=\"xl\" x=\"%.1f\" y=\"%.1f\">%s</text>\n",
			cx, b->y1, cx, b->y1 + 4, cx, b->y1 + 16, label);
		last_end = cx + half;
	}
}

/* The points: a disc per compared tensor in its kind's colour, ringed in red when it failed a gate;
 * a triangle on the bottom edge for an error of exactly 0 on a log scale, and on the top edge for one
 * that is not finite. Each with a tooltip (its name and figures). */
static void rel_err_point(FILE *f, const qi_tensor *t, const char *fill, double cx, const box *b, const scale *y,
			  double radius, bool tooltip)
{
	double v = t->err.rel_err;
	const char *ring = t->gate_failed ? " stroke=\"" FAIL_COLOUR "\" stroke-width=\"2\"" : "";
	bool disc = isfinite(v) && !(y->log && v <= 0);
	if (disc)
		fprintf(f, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"%s>", cx, scale_px(y, v),
			t->gate_failed ? radius + 1 : radius, fill, ring);
	else if (!isfinite(v))
		fprintf(f, "<path class=\"pt inf\" d=\"M%.1f %.1fl4 7h-8z\" fill=\"%s\"%s>", cx, b->y0, fill, ring);
	else
		fprintf(f, "<path class=\"pt zero\" d=\"M%.1f %.1fl4 -7h-8z\" fill=\"%s\"%s>", cx, b->y1, fill, ring);
	if (tooltip) {
		fputs("<title>", f);
		put_text(f, t->name);
		fprintf(f, "\nrel_err %s, SNR %s dB, cosine %s", num_g(v, 4).s, num_g(t->err.snr_db, 4).s,
			num_g(t->err.cosine, 6).s);
		if (t->err.nonfinite)
			fprintf(f, "\n%s elements not finite", num_count(t->err.nonfinite).s);
		fprintf(f, "%s</title>", t->gate_failed ? "\nfailed a gate" : "");
	}
	fprintf(f, "</%s>\n", disc ? "circle" : "path");
}

/* Above this many points they stand less than a third of a pixel apart: no one can hover one, and
 * their tooltips would make most of the page's bytes (the table below has every figure). */
#define TOOLTIP_MAX_POINTS 4000

static void rel_err_points(FILE *f, const qi_report *r, const rel_point *pts, const layer_group *g, size_t ng,
			   const kind *kinds, const box *b, const scale *y, double slot)
{
	double radius = slot >= 8 ? 3.5 : slot >= 3 ? 2.5 : 2;
	for (size_t gi = 0; gi < ng; gi++) {
		for (size_t i = g[gi].start; i < g[gi].end; i++) {
			double cx = g[gi].x0 + slot * ((double)(i - g[gi].start) + 0.5);
			rel_err_point(f, &r->tensors[pts[i].tensor], kinds[pts[i].kind].colour, cx, b, y, radius,
				      g[ng - 1].end <= TOOLTIP_MAX_POINTS);
		}
	}
}

/* The gate's limit as a dashed red line across the plot. Its label goes in the legend: inside the plot it
 * would sit among the points that crowd around the limit. */
static void rel_err_gate_line(FILE *f, const qi_report *r, const box *b, const scale *y)
{
	const qi_gate *g = &r->gates[QI_GATE_MAX_REL_ERR];
	if (!g->set || !isfinite(g->limit))
		return;
	double py = scale_px(y, g->limit);
	fprintf(f, "<line class=\"limit\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", b->x0, py, b->x1,
		py);
}

/* The legend, in HTML under the plot, where it can wrap: the kinds with their counts, then the marks. */
static void rel_err_legend(FILE *f, const kind *kinds, size_t nk, const qi_report *r, const scale *y, size_t n,
			   const rel_point *pts)
{
	bool any_zero = false, any_inf = false, any_fail = false;
	for (size_t i = 0; i < n; i++) {
		const qi_tensor *t = &r->tensors[pts[i].tensor];
		any_zero |= y->log && isfinite(t->err.rel_err) && t->err.rel_err <= 0;
		any_inf |= !isfinite(t->err.rel_err);
		any_fail |= t->gate_failed;
	}
	fputs("<ul class=\"legend\" id=\"legend-rel-err\">", f);
	size_t others = 0, other_kinds = 0;
	for (size_t j = 0; j < nk; j++) {
		if (j >= NPALETTE) {
			others += kinds[j].count;
			other_kinds++;
			continue;
		}
		fprintf(f, "<li><span class=\"sw\" style=\"background:%s\"></span>", kinds[j].colour);
		put_text_n(f, kinds[j].name, kinds[j].len);
		fprintf(f, " <span class=\"dim\">%s</span></li>", num_count(kinds[j].count).s);
	}
	if (other_kinds)
		fprintf(f, "<li><span class=\"sw\" style=\"background:" OTHER_KIND_COLOUR "\"></span>%s other kind%s "
			   "<span class=\"dim\">%s</span></li>",
			num_count(other_kinds).s, other_kinds == 1 ? "" : "s", num_count(others).s);
	if (any_fail)
		fputs("<li><span class=\"sw ring\"></span>failed a gate</li>", f);
	if (r->gates[QI_GATE_MAX_REL_ERR].set)
		fprintf(f, "<li><span class=\"dash\"></span>--%s %s</li>", qi_gate_option(QI_GATE_MAX_REL_ERR),
			num_g(r->gates[QI_GATE_MAX_REL_ERR].limit, 6).s);
	if (any_zero)
		fputs("<li>\xe2\x96\xbc on the bottom edge: identical (error 0)</li>", f);
	if (any_inf)
		fputs("<li>\xe2\x96\xb2 on the top edge: error not finite</li>", f);
	fputs("</ul>\n", f);
}

#define REL_W 1160
#define REL_H 400

static bool plot_rel_err(FILE *f, const qi_report *r)
{
	fputs("<h2 id=\"rel-err\">Relative error by layer</h2>\n", f);
	size_t n = count_compared(r), nk = 0;
	if (n == 0) {
		note(f, "plot-rel-err-none",
		     r->reference ? "No tensor was compared with the reference: nothing to plot."
				  : "No reference was given (a description only): there is no error to plot.");
		return true;
	}
	rel_point *pts = calloc(n, sizeof *pts);
	if (!pts)
		return false;
	for (size_t i = 0, j = 0; i < r->ntensors; i++)
		if (r->tensors[i].err.present)
			pts[j++] = (rel_point){.tensor = i,
					       .layer_key = r->tensors[i].layer >= 0 ? r->tensors[i].layer : INT_MAX};
	qsort(pts, n, sizeof *pts, cmp_rel_point);
	kind *kinds = collect_kinds(r, pts, n, &nk);
	if (!kinds) {
		free(pts);
		return false;
	}
	size_t ngroups = 1;
	for (size_t i = 1; i < n; i++)
		ngroups += pts[i].layer_key != pts[i - 1].layer_key;
	box b = {72, 14, REL_W - 16, REL_H - 44};
	double step, slot = (b.x1 - b.x0) / (double)(n + ngroups - 1);
	layer_group *groups = layer_groups(r, pts, n, &b, slot, &ngroups);
	if (!groups) {
		free(kinds);
		free(pts);
		return false;
	}
	scale y = rel_err_scale(r, pts, n, &b, &step);
	fputs("<figure>\n", f);
	svg_open(f, "plot-rel-err", REL_W, REL_H, "Relative error of each compared tensor, by layer");
	rel_err_bands(f, groups, ngroups, &b, slot);
	svg_y_axis(f, &b, &y, step, "", y.log ? "relative error (log scale)" : "relative error");
	rel_err_layer_labels(f, groups, ngroups, &b);
	rel_err_gate_line(f, r, &b, &y);
	rel_err_points(f, r, pts, groups, ngroups, kinds, &b, &y, slot);
	svg_x_title(f, &b, REL_H, "layer (tensors in layer order)");
	fputs("</svg>\n", f);
	rel_err_legend(f, kinds, nk, r, &y, n, pts);
	fprintf(f, "<figcaption>|x \xe2\x88\x92 ref| / |ref| of the %s compared tensors, grouped by layer "
		   "(tensors outside the layers at the right), coloured by module kind.%s</figcaption>\n</figure>\n",
		num_count(n).s, n > TOOLTIP_MAX_POINTS ? " Too many points to name each on hover: the table below "
							 "has them all." : " Hover a point for its tensor.");
	free(groups);
	free(kinds);
	free(pts);
	return true;
}

/* ----------------------------------------------------------------------- plot 2: the code histogram */

typedef struct codes_ctx {
	const uint64_t *count;
	const double *pct;
	const float *value; /* what each code dequantizes to, NULL when the quantized tensors mix types */
} codes_ctx;

static void codes_tip(FILE *f, size_t i, const void *ctx)
{
	const codes_ctx *c = ctx;
	fprintf(f, "code %zu", i);
	if (c->value)
		fprintf(f, " (%s)", num_g(c->value[i], 4).s);
	fprintf(f, ": %s elements, %s%%", num_count(c->count[i]).s, num_f(c->pct[i], 2).s);
}

/* The one 4-bit type of all quantized tensors, for labelling codes with their values; -1 when mixed. */
static int common_qtype(const qi_report *r)
{
	int q = -1;
	for (size_t i = 0; i < r->ntensors; i++) {
		const qi_tensor *t = &r->tensors[i];
		if (!t->quantized)
			continue;
		if (t->qtype != LQ_QTYPE_NF4 && t->qtype != LQ_QTYPE_FP4)
			return -1;
		if (q >= 0 && q != (int)t->qtype)
			return -1;
		q = (int)t->qtype;
	}
	return q;
}

#define BAR_W 1160
#define BAR_H 300

static void plot_codes(FILE *f, const qi_report *r)
{
	fputs("<h2 id=\"codes\">4-bit codes</h2>\n", f);
	uint64_t total = 0;
	for (int i = 0; i < 16; i++)
		total += r->code_histogram[i];
	if (total == 0) {
		note(f, "plot-codes-none", "No quantized tensor: no codes to count.");
		return;
	}
	double pct[16], max = 0, entropy = 0, step;
	for (int i = 0; i < 16; i++) {
		pct[i] = percent(r->code_histogram[i], total);
		max = fmax(max, pct[i]);
		if (r->code_histogram[i])
			entropy -= pct[i] / 100 * log2(pct[i] / 100);
	}
	int qtype = common_qtype(r);
	codes_ctx ctx = {r->code_histogram, pct, qtype >= 0 ? lq_code_table((lq_qtype)qtype) : NULL};
	box b = {72, 22, BAR_W - 16, BAR_H - (ctx.value ? 58 : 44)};
	scale y = {.p0 = b.y1, .p1 = b.y0};
	linear_range(max * 1.08, &y.hi, &step);

	fputs("<figure>\n", f);
	svg_open(f, "plot-codes", BAR_W, BAR_H, "How often each 4-bit code occurs, over the quantized tensors");
	svg_y_axis(f, &b, &y, step, "%", "share of elements");
	svg_vbars(f, &b, &y, 16, pct, "#4e79a7", codes_tip, &ctx);
	double slot = (b.x1 - b.x0) / 16;
	for (int i = 0; i < 16; i++) {
		double cx = b.x0 + slot * (i + 0.5);
		fprintf(f, "<text class=\"xl\" x=\"%.1f\" y=\"%.1f\">%d</text>", cx, b.y1 + 15, i);
		if (ctx.value)
			fprintf(f, "<text class=\"xl dim\" x=\"%.1f\" y=\"%.1f\">%s</text>", cx, b.y1 + 29,
				num_f(ctx.value[i], 3).s);
		fprintf(f, "<text class=\"vl\" x=\"%.1f\" y=\"%.1f\">%s%%</text>\n", cx, scale_px(&y, pct[i]) - 4,
			num_f(pct[i], 1).s);
	}
	svg_x_title(f, &b, BAR_H,
		    ctx.value ? (qtype == LQ_QTYPE_NF4 ? "code (the NF4 value it stands for)"
						       : "code (the FP4 value it stands for)")
			      : "code");
	fputs("</svg>\n", f);
	fprintf(f, "<figcaption>The codes of the %s quantized tensors (%s elements). Entropy %s bits a code "
		   "(4 at most: the codes would all be equally used).</figcaption>\n</figure>\n",
		num_count(r->quantized_tensors).s, num_count(total).s, num_f(entropy, 3).s);
}

/* --------------------------------------------------------------------- plot 3: absmax distribution */

typedef struct absmax_ctx {
	const uint64_t *count;
	const double *pct;
} absmax_ctx;

/* Bin i holds log10(absmax) in [-6 + 0.2 i, -6 + 0.2 (i + 1)); the first and last also what is beyond. */
static void absmax_tip(FILE *f, size_t i, const void *ctx)
{
	const absmax_ctx *c = ctx;
	double lo = pow(10, -6 + 0.2 * (double)i), hi = pow(10, -6 + 0.2 * (double)(i + 1));
	if (i == 0)
		fprintf(f, "below %s", num_g(hi, 3).s);
	else if (i == QI_ABSMAX_BINS - 1)
		fprintf(f, "%s and above", num_g(lo, 3).s);
	else
		fprintf(f, "%s to %s", num_g(lo, 3).s, num_g(hi, 3).s);
	fprintf(f, ": %s blocks, %s%%", num_count(c->count[i]).s, num_f(c->pct[i], 2).s);
}

static void plot_absmax(FILE *f, const qi_report *r)
{
	fputs("<h2 id=\"absmax\">Block absmax</h2>\n", f);
	uint64_t total = 0, blocks = 0;
	double lo = INFINITY, hi = -INFINITY, sum = 0;
	for (int i = 0; i < QI_ABSMAX_BINS; i++)
		total += r->absmax_hist[i];
	for (size_t i = 0; i < r->ntensors; i++) {
		const qi_tensor *t = &r->tensors[i];
		if (!t->quantized || !t->nblocks || t->absmax_nonfinite) /* those have no figures (NaN) */
			continue;
		blocks += t->nblocks;
		sum += t->absmax_mean * (double)t->nblocks;
		lo = fmin(lo, t->absmax_min);
		hi = fmax(hi, t->absmax_max);
	}
	if (total == 0) {
		note(f, "plot-absmax-none", r->absmax_nonfinite ? "No block absmax is finite: nothing to show."
								: "No quantized tensor: no block absmax to show.");
		return;
	}
	double pct[QI_ABSMAX_BINS], max = 0, step;
	for (int i = 0; i < QI_ABSMAX_BINS; i++) {
		pct[i] = percent(r->absmax_hist[i], total);
		max = fmax(max, pct[i]);
	}
	absmax_ctx ctx = {r->absmax_hist, pct};
	box b = {72, 22, BAR_W - 16, BAR_H - 44};
	scale y = {.p0 = b.y1, .p1 = b.y0};
	linear_range(max * 1.05, &y.hi, &step);

	fputs("<figure>\n", f);
	svg_open(f, "plot-absmax", BAR_W, BAR_H, "Distribution of the per-block absmax, over the quantized tensors");
	svg_y_axis(f, &b, &y, step, "%", "share of blocks");
	svg_vbars(f, &b, &y, QI_ABSMAX_BINS, pct, "#f28e2b", absmax_tip, &ctx);
	/* Bin edges fall on powers of ten every 5 bins (bins are 0.2 wide in log10). */
	double slot = (b.x1 - b.x0) / QI_ABSMAX_BINS;
	for (int i = 0; i <= QI_ABSMAX_BINS; i += 5) {
		double x = b.x0 + slot * i;
		fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, b.y1, x, b.y1 + 4);
		fprintf(f, "<text class=\"xl\" x=\"%.1f\" y=\"%.1f\">", x, b.y1 + 17);
		put_pow10(f, -6 + i / 5);
		fputs("</text>\n", f);
	}
	svg_x_title(f, &b, BAR_H, "absmax of a block (log scale; the end bars also hold what is beyond)");
	fputs("</svg>\n", f);
	fprintf(f, "<figcaption>The dequantized absmax of %s blocks. Smallest %s, mean %s, largest %s", num_count(total).s,
		num_g(lo, 4).s, num_g(blocks ? sum / (double)blocks : NAN, 4).s, num_g(hi, 4).s);
	if (r->absmax_nonfinite)
		fprintf(f, " (of the tensors whose every absmax is finite). <span class=\"nf\" id=\"absmax-nonfinite\">%s "
			   "block%s with an absmax that is not finite (NaN or infinite), not in the plot.</span>",
			num_count(r->absmax_nonfinite).s, r->absmax_nonfinite == 1 ? "" : "s");
	else
		fputs(".", f);
	fputs("</figcaption>\n</figure>\n", f);
}

/* ------------------------------------------------------------------ plot 4: bits-per-parameter bars */

static const char *const part_name[4] = {"codes / data", "absmax", "nested absmax", "tables + quant_state"};
static const char *const part_colour[4] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1"};

typedef struct bits_row {
	const char *label;
	size_t tensors;
	uint64_t params;
	double bits[4]; /* per parameter: codes, absmax, nested, tables */
	double total;
} bits_row;

static bits_row make_bits_row(const char *label, size_t tensors, uint64_t params, const qi_bytes *b)
{
	bits_row row = {.label = label, .tensors = tensors, .params = params};
	uint64_t part[4] = {b->codes, b->absmax, b->nested, b->tables};
	for (int i = 0; i < 4; i++) {
		row.bits[i] = params ? 8.0 * (double)part[i] / (double)params : 0;
		row.total += row.bits[i];
	}
	return row;
}

/* One stacked horizontal bar: its label left, its parts, and its total right. */
static void svg_stacked_row(FILE *f, const bits_row *row, const box *b, const scale *x, double y, double h)
{
	fprintf(f, "<g class=\"bar-row\"><text class=\"rl\" x=\"%.1f\" y=\"%.1f\">%s</text>"
		   "<text class=\"rl dim\" x=\"%.1f\" y=\"%.1f\">%s tensors</text>\n",
		b->x0 - 8, y + h / 2 - 1, row->label, b->x0 - 8, y + h / 2 + 12, num_count(row->tensors).s);
	double acc = 0, left = scale_px(x, 0);
	for (int i = 0; i < 4; i++) {
		if (!(row->bits[i] > 0))
			continue;
		acc += row->bits[i];
		double right = scale_px(x, acc);
		fprintf(f, "<rect class=\"seg\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
			   "<title>%s: %s bits a parameter</title></rect>",
			left, y, right - left, h, part_colour[i], part_name[i], num_g(row->bits[i], 4).s);
		if (right - left >= 44) /* room for the number inside */
			fprintf(f, "<text class=\"sl\" x=\"%.1f\" y=\"%.1f\">%s</text>", (left + right) / 2,
				y + h / 2 + 4, num_g(row->bits[i], 3).s);
		fputs("\n", f);
		left = right;
	}
	fprintf(f, "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\">%s bits/param</text></g>\n", left + 6,
		y + h / 2 + 4, num_f(row->total, 3).s);
}

#define BITS_W 1160

static void plot_bits(FILE *f, const qi_report *r)
{
	fputs("<h2 id=\"bits\">Where the bytes go</h2>\n", f);
	group_sum q = sum_group(r, true), u = sum_group(r, false);
	bits_row rows[3];
	int n = 0;
	if (q.params)
		rows[n++] = make_bits_row("quantized", q.tensors, q.params, &q.bytes);
	if (u.params)
		rows[n++] = make_bits_row("not quantized", u.tensors, u.params, &u.bytes);
	if (r->params)
		rows[n++] = make_bits_row("all", r->ntensors, r->params, &r->bytes);
	if (n == 0) {
		note(f, "plot-bits-none", "No parameters: nothing to break down.");
		return;
	}
	double max = 0, step;
	for (int i = 0; i < n; i++)
		max = fmax(max, rows[i].total);
	const double row_h = 30, gap = 16;
	int h = (int)(22 + n * (row_h + gap) + 40);
	box b = {150, 16, BITS_W - 130, h - 44};
	scale x = {.p0 = b.x0, .p1 = b.x1};
	linear_range(max, &x.hi, &step);

	fputs("<figure>\n", f);
	svg_open(f, "plot-bits", BITS_W, h, "Bits per parameter, by where the bytes go");
	int nt = (int)lround(x.hi / step);
	for (int i = 0; i <= nt && i <= 50; i++) {
		double px = scale_px(&x, i * step);
		fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
			   "<text class=\"xl\" x=\"%.1f\" y=\"%.1f\">%s</text>\n",
			px, b.y0, px, b.y1, px, b.y1 + 16, num_g(i * step, 6).s);
	}
	fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", b.x0, b.y1, b.x1, b.y1);
	for (int i = 0; i < n; i++)
		svg_stacked_row(f, &rows[i], &b, &x, b.y0 + gap / 2 + i * (row_h + gap), row_h);
	svg_x_title(f, &b, h, "bits per parameter");
	fputs("</svg>\n<ul class=\"legend\" id=\"legend-bits\">", f);
	for (int i = 0; i < 4; i++)
		fprintf(f, "<li><span class=\"sw sq\" style=\"background:%s\"></span>%s</li>", part_colour[i],
			part_name[i]);
	fputs("</ul>\n", f);
	/* the thin parts carry no number inside their bars: spelled out here */
	fputs("<figcaption>8 \xc3\x97 bytes on disk / parameters, as codes or data + absmax + nested absmax + "
	      "tables:",
	      f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s %s %s + %s + %s + %s = %s", i ? ";" : "", rows[i].label, num_g(rows[i].bits[0], 4).s,
			num_g(rows[i].bits[1], 3).s, num_g(rows[i].bits[2], 3).s, num_g(rows[i].bits[3], 3).s,
			num_f(rows[i].total, 3).s);
	fputs(" bits/param.</figcaption>\n</figure>\n", f);
}

/* --------------------------------------------------------------------------------- the page's text */

/* The style sheet: plain CSS, no web fonts (a page that fetches nothing). Sizes in the SVGs are fixed;
 * "max-width: 100%" only shrinks them on narrow windows. */
static const char css[] =
	":root{color-scheme:light}\n"
	"body{margin:0;background:#fff;color:#1d1d1d;font:14px/1.45 system-ui,\"DejaVu Sans\",sans-serif}\n"
	"main{max-width:1160px;margin:0 auto;padding:10px 16px 40px}\n"
	"h1{font-size:21px;margin:4px 0 6px}\n"
	"h2{font-size:16px;margin:20px 0 6px;padding-bottom:2px;border-bottom:1px solid #ddd}\n"
	"nav{font-size:13px}nav a{color:#1f5fa0;margin-right:12px}\n"
	"code,.name{font-family:\"DejaVu Sans Mono\",ui-monospace,monospace;font-size:12.5px}\n"
	".badge{font-size:14px;font-weight:700;padding:2px 10px;border-radius:4px;color:#fff;vertical-align:2px}\n"
	".badge.pass{background:#2e7d32}.badge.fail{background:#c62828}.badge.none{background:#757575}\n"
	".cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:4px 32px;"
	"align-items:start}\n"
	".kv{border-collapse:collapse}\n"
	".kv th{text-align:left;font-weight:600;color:#555;padding:1px 14px 1px 0;vertical-align:top;"
	"white-space:nowrap}\n"
	".kv td{padding:1px 0;overflow-wrap:anywhere}#error-totals td{padding-right:14px}\n"
	"table.data{border-collapse:collapse;width:100%;font-size:12.5px}\n"
	"table.data th{background:#f1f1f1;position:sticky;top:0;text-align:right;padding:3px 4px;"
	"vertical-align:bottom}\n"
	"table.data td{padding:2px 4px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap;"
	"font-variant-numeric:tabular-nums}\n"
	"table.data .name,table.data .text{text-align:left;white-space:normal;overflow-wrap:anywhere}\n"
	"table.data .lbl{text-align:left}\n"
	"#gate-table td{vertical-align:top}\n"
	"tr.fail td{background:#fdecea}\n"
	".bad,.nf{color:#b71c1c;font-weight:700}.ok{color:#2e7d32;font-weight:700}\n"
	".na{color:#bbb}.dim{color:#777}.note{color:#555;font-style:italic}\n"
	"figure{margin:4px 0 0}figcaption{font-size:13px;color:#555}\n"
	"svg.plot{display:block;max-width:100%;height:auto;font-family:system-ui,\"DejaVu Sans\",sans-serif;"
	"font-size:11px}\n"
	"svg .grid{stroke:#e4e4e4}svg .axis{stroke:#666}svg .band{fill:#f3f5f9}\n"
	"svg .yl{text-anchor:end;fill:#444}svg .xl{text-anchor:middle;fill:#444}\n"
	"svg .xl.dim{fill:#888;font-size:10px}svg .at{text-anchor:middle;fill:#222;font-size:12px}\n"
	"svg .vl{text-anchor:middle;fill:#333;font-size:10px}\n"
	"svg .limit{stroke:#d62728;stroke-dasharray:6 4;stroke-width:1.5}\n"
	"svg .rl{text-anchor:end;fill:#222;font-size:12px}svg .rl.dim{fill:#777;font-size:10.5px}\n"
	"svg .sl{text-anchor:middle;fill:#fff;font-weight:600}svg .tl{fill:#222;font-size:12px}\n"
	".legend{list-style:none;display:flex;flex-wrap:wrap;gap:2px 18px;padding:0;margin:2px 0 2px 72px;"
	"font-size:13px}\n"
	".sw{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px;vertical-align:-1px}\n"
	".sw.sq{border-radius:2px}.sw.ring{box-sizing:border-box;border:2px solid #d62728;background:#fff}\n"
	".dash{display:inline-block;width:18px;border-top:2px dashed #d62728;margin-right:5px;vertical-align:3px}\n";

/* Up to this many names in a list in the header (tensors that failed a gate: fewer, they come with a
 * figure); the table below has them all. LIST_MAX is also the length of the worst list. */
#define LIST_MAX 20
#define GATE_LIST_MAX 10

static void write_head(FILE *f, const qi_report *r)
{
	/* The policy forbids every fetch and every script; inline style stays allowed. */
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      "<meta name=\"generator\" content=\"qinspect\">\n<title>qinspect: ",
	      f);
	put_text(f, r->checkpoint);
	fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n", css);
}

static bool any_gate(const qi_report *r)
{
	for (int g = 0; g < QI_NGATES; g++)
		if (r->gates[g].set)
			return true;
	return false;
}

static void kv_text(FILE *f, const char *key, const char *value)
{
	fprintf(f, "<tr><th>%s</th><td><code>", key);
	put_text(f, value);
	fputs("</code></td></tr>\n", f);
}

static void write_summary(FILE *f, const qi_report *r)
{
	bool gates = any_gate(r);
	fprintf(f, "<header>\n<h1>qinspect report <span class=\"badge %s\" id=\"verdict\">%s</span></h1>\n",
		!gates ? "none" : r->passed ? "pass" : "fail", !gates ? "no gates" : r->passed ? "PASS" : "FAIL");
	fputs("<table class=\"kv\" id=\"summary\">\n", f);
	kv_text(f, "checkpoint", r->checkpoint);
	if (r->reference)
		kv_text(f, "reference", r->reference);
	else
		fputs("<tr><th>reference</th><td>none: a description only (no error figures)</td></tr>\n", f);
	kv_text(f, "device", r->device);
	fprintf(f, "<tr><th>time</th><td>%s s</td></tr>\n</table>\n", num_f(r->seconds, 2).s);
	fputs("<nav><a href=\"#gates\">gates</a><a href=\"#rel-err\">error by layer</a><a href=\"#codes\">codes</a>"
	      "<a href=\"#absmax\">absmax</a><a href=\"#bits\">bits</a><a href=\"#worst-tensors\">worst</a>"
	      "<a href=\"#every-tensor\">every tensor</a></nav>\n</header>\n",
	      f);
}

/* One gate: its limit, the verdict, and the tensors that failed it with the figure that failed. */
static void write_gate_row(FILE *f, const qi_report *r, qi_gate_kind g)
{
	const qi_gate *gate = &r->gates[g];
	fprintf(f, "<tr><td class=\"lbl\"><code>--%s</code></td><td>%s %s</td>", qi_gate_option(g),
		gate_is_min(g) ? "\xe2\x89\xa5" : "\xe2\x89\xa4", num_g(gate->limit, 6).s); /* ≥ ≤ */
	if (gate->nfailed == 0) {
		fputs("<td class=\"lbl\"><span class=\"ok\">passed</span></td><td class=\"text\"></td></tr>\n", f);
		return;
	}
	fprintf(f, "<td class=\"lbl\"><span class=\"bad\">failed by %s</span></td><td class=\"text\">",
		num_count(gate->nfailed).s);
	/* inline and capped: the header must leave the plots in view */
	for (size_t i = 0; i < gate->nfailed && i < GATE_LIST_MAX; i++) {
		if (gate->failed[i] >= r->ntensors)
			continue;
		const qi_tensor *t = &r->tensors[gate->failed[i]];
		fputs(i ? ", <span class=\"name\">" : "<span class=\"name\">", f);
		put_name(f, t->name);
		fprintf(f, "</span>\xc2\xa0<span class=\"dim\">%s</span>", num_g(qi_gate_value(&t->err, g), 4).s);
	}
	if (gate->nfailed > GATE_LIST_MAX)
		fprintf(f, ", \xe2\x80\xa6 and %s more (marked in the table below)",
			num_count(gate->nfailed - GATE_LIST_MAX).s);
	fputs("</td></tr>\n", f);
}

static void write_gates(FILE *f, const qi_report *r)
{
	fputs("<h2 id=\"gates\">Gates</h2>\n", f);
	if (!any_gate(r)) {
		fputs("<p class=\"note\">No gate was set (", f);
		for (int g = 0; g < QI_NGATES; g++)
			fprintf(f, "%s--%s", g ? ", " : "", qi_gate_option((qi_gate_kind)g));
		fputs("): nothing to pass or fail.</p>\n", f);
		return;
	}
	fputs("<table class=\"data\" id=\"gate-table\"><thead><tr><th class=\"lbl\">gate</th><th>limit</th>"
	      "<th class=\"lbl\">result</th><th class=\"text\">tensors that failed it</th></tr></thead><tbody>\n",
	      f);
	for (int g = 0; g < QI_NGATES; g++)
		if (r->gates[g].set)
			write_gate_row(f, r, (qi_gate_kind)g);
	fputs("</tbody></table>\n", f);
}

/* Names the checkpoint or the reference lacks, up to LIST_MAX of them. */
static void write_name_list(FILE *f, const char *what, const char *const *names, size_t n)
{
	if (n == 0)
		return;
	fprintf(f, "<p><b>%s tensors only in the %s:</b> ", num_count(n).s, what);
	for (size_t i = 0; i < n && i < LIST_MAX; i++) {
		fputs(i ? ", <span class=\"name\">" : "<span class=\"name\">", f);
		put_name(f, names[i]);
		fputs("</span>", f);
	}
	if (n > LIST_MAX)
		fprintf(f, ", \xe2\x80\xa6 and %s more", num_count(n - LIST_MAX).s);
	fputs("</p>\n", f);
}

static void write_totals(FILE *f, const qi_report *r, size_t ncompared)
{
	fputs("<h2 id=\"totals\">Totals</h2>\n<div class=\"cols\">\n<table class=\"kv\" id=\"size-totals\">\n", f);
	fprintf(f, "<tr><th>tensors</th><td>%s (%s quantized, %s compared)</td></tr>\n", num_count(r->ntensors).s,
		num_count(r->quantized_tensors).s, num_count(ncompared).s);
	fprintf(f, "<tr><th>parameters</th><td>%s (%s quantized)</td></tr>\n", num_count(r->params).s,
		num_count(r->quantized_params).s);
	fprintf(f, "<tr><th>bytes on disk</th><td>%s (%s bytes)</td></tr>\n", num_bytes(r->bytes_total).s,
		num_count(r->bytes_total).s);
	fprintf(f, "<tr><th>bits per parameter</th><td>%s overall</td></tr>\n", num_f(r->bits_per_param, 3).s);
	if (r->quantized_tensors)
		fprintf(f, "<tr><th>quantized tensors</th><td>%s bits/param in codes and block constants, %s with "
			   "the per-tensor tables; %s</td></tr>\n",
			num_f(r->quantized_bits_per_param_blocks, 3).s, num_f(r->quantized_bits_per_param, 3).s,
			num_bytes(r->quantized_bytes).s);
	fputs("</table>\n", f);
	if (r->reference && r->total.present) {
		/* the 4-bit tensors apart: the tensors copied as they are (often identical) would make the
		 * quantization look better than it is */
		const qi_error *e[2] = {&r->quantized_total, &r->total};
		const size_t tensors[2] = {r->quantized_compared, r->compared_tensors};
		const int first = r->quantized_total.present ? 0 : 1;
		fputs("<table class=\"kv\" id=\"error-totals\">\n<tr><th>error</th>", f);
		if (first == 0)
			fputs("<th class=\"col\">4-bit tensors</th>", f);
		fputs("<th class=\"col\">all compared</th></tr>\n<tr><th>tensors</th>", f);
		for (int k = first; k < 2; k++)
			fprintf(f, "<td>%s</td>", num_count(tensors[k]).s);
		fputs("</tr>\n<tr><th>elements</th>", f);
		for (int k = first; k < 2; k++)
			fprintf(f, "<td>%s</td>", num_count(e[k]->elements + e[k]->nonfinite).s);
		fputs("</tr>\n<tr><th>not finite</th>", f);
		for (int k = first; k < 2; k++) {
			if (e[k]->nonfinite)
				fprintf(f, "<td class=\"nf\">%s (%s in the checkpoint, %s in the reference)</td>",
					num_count(e[k]->nonfinite).s, num_count(e[k]->nonfinite_checkpoint).s,
					num_count(e[k]->nonfinite_reference).s);
			else
				fputs("<td>0</td>", f);
		}
		fputs("</tr>\n<tr><th>differing</th>", f);
		for (int k = first; k < 2; k++)
			fprintf(f, "<td>%s (%s%%)</td>", num_count(e[k]->differ).s,
				num_f(percent(e[k]->differ, e[k]->elements + e[k]->nonfinite), 2).s);
		fputs("</tr>\n<tr><th>relative error</th>", f);
		for (int k = first; k < 2; k++)
			fprintf(f, "<td>%s</td>", num_g(e[k]->rel_err, 4).s);
		fputs("</tr>\n<tr><th>RMSE</th>", f);
		for (int k = first; k < 2; k++)
			fprintf(f, "<td>%s</td>", num_g(e[k]->rmse, 4).s);
		fputs("</tr>\n<tr><th>SNR</th>", f);
		for (int k = first; k < 2; k++)
			fprintf(f, "<td>%s dB</td>", num_g(e[k]->snr_db, 4).s);
		fputs("</tr>\n<tr><th>cosine</th>", f);
		for (int k = first; k < 2; k++)
			fprintf(f, "<td>%s</td>", num_g(e[k]->cosine, 6).s);
		fputs("</tr>\n<tr><th>max abs error</th>", f);
		for (int k = first; k < 2; k++) {
			fprintf(f, "<td>%s", num_g(e[k]->max_abs_err, 4).s);
			/* a total's index names the tensor that holds it (qinspect_report.h) */
			if (e[k]->max_abs_err_index >= 0 && (uint64_t)e[k]->max_abs_err_index < r->ntensors) {
				fputs(" in <span class=\"name\">", f);
				put_name(f, r->tensors[e[k]->max_abs_err_index].name);
				fputs("</span>", f);
			}
			fputs("</td>", f);
		}
		fputs("</tr>\n</table>\n", f);
	} else if (r->reference) {
		fputs("<p class=\"note\">No element was compared with the reference.</p>\n", f);
	}
	fputs("</div>\n", f);
	write_name_list(f, "checkpoint", r->only_in_checkpoint, r->n_only_checkpoint);
	write_name_list(f, "reference", r->only_in_reference, r->n_only_reference);
}

/* ---------------------------------------------------------------------------------------- tables */

/* "4096×11008"; "scalar" for no dimensions. */
static void put_shape(FILE *f, const qi_tensor *t)
{
	int nd = t->ndim < 0 ? 0 : t->ndim > QI_MAX_DIMS ? QI_MAX_DIMS : t->ndim;
	if (nd == 0)
		fputs("scalar", f);
	for (int d = 0; d < nd; d++)
		fprintf(f, "%s%lld", d ? "\xc3\x97" : "", (long long)t->shape[d]);
}

/* A table cell holding a figure, in red when the tensor failed the gate on it. */
static void figure_cell(FILE *f, const char *text, bool failed)
{
	fprintf(f, failed ? "<td class=\"bad\">%s</td>" : "<td>%s</td>", text);
}

/* Below this many characters a component of a tensor name (between dots) is not broken: the name column
 * is at least as wide as the longest component up to this ("post_feedforward_layernorm" is 26; a longer
 * one, from a hostile file, may break anywhere rather than widen the page). */
#define NAME_COMPONENT_MAX 28

/* The heading of a table's name column, n tensors (those of index, or the first n), with the width that
 * keeps their components whole: without it the table's other columns squeeze the names until they
 * wrap in the middle of a word ("embed_toke ns"). */
static void put_name_heading(FILE *f, const qi_report *r, size_t n, const size_t *index)
{
	size_t longest = 6; /* "tensor" */
	for (size_t i = 0; i < n; i++) {
		size_t k = index ? index[i] : i;
		const unsigned char *p = k < r->ntensors && r->tensors[k].name ? (const unsigned char *)r->tensors[k].name
									       : (const unsigned char *)"";
		size_t run = 0;
		for (; *p && longest < NAME_COMPONENT_MAX; p++) {
			run = *p == '.' ? 0 : run + ((*p & 0xc0) != 0x80); /* characters, not bytes */
			longest = run > longest ? run : longest;
		}
	}
	if (longest > NAME_COMPONENT_MAX)
		longest = NAME_COMPONENT_MAX;
	/* no wider than a fifth of the window: on a narrow one the names wrap rather than the page scroll */
	fprintf(f, "<th class=\"name\" style=\"min-width:min(%zuch,20vw)\">tensor</th>", longest);
}

/* The headings of the error columns that error_cells fills; "not finite" only when a tensor has such
 * elements (nonfinite_col). */
static void error_headings(FILE *f, bool nonfinite_col)
{
	fputs("<th>rel_err</th><th>RMSE</th><th>SNR dB</th><th>cosine</th><th>max abs err</th><th>differing</th>", f);
	if (nonfinite_col)
		fputs("<th>not finite</th>", f);
}

/* The error figures of a tensor (rel_err, RMSE, SNR, cosine, max abs error, differing, and not finite),
 * blank when it was not compared. */
static void error_cells(FILE *f, const qi_tensor *t, unsigned fails, bool nonfinite_col)
{
	const qi_error *e = &t->err;
	if (!e->present) {
		for (int i = 0; i < 6 + nonfinite_col; i++)
			fputs("<td class=\"na\">\xc2\xb7</td>", f);
		return;
	}
	figure_cell(f, num_g(e->rel_err, 4).s, fails & 1u << QI_GATE_MAX_REL_ERR);
	figure_cell(f, num_g(e->rmse, 4).s, fails & 1u << QI_GATE_MAX_RMSE);
	figure_cell(f, num_f(e->snr_db, 2).s, fails & 1u << QI_GATE_MIN_SNR);
	figure_cell(f, num_g(e->cosine, 6).s, fails & 1u << QI_GATE_MIN_COSINE);
	figure_cell(f, num_g(e->max_abs_err, 4).s, fails & 1u << QI_GATE_MAX_ABS_ERR);
	fprintf(f, "<td>%s <span class=\"dim\">%s%%</span></td>", num_count(e->differ).s,
		num_f(percent(e->differ, e->elements + e->nonfinite), 1).s);
	if (nonfinite_col)
		fprintf(f, e->nonfinite ? "<td class=\"nf\">%s</td>" : "<td>%s</td>", num_count(e->nonfinite).s);
}

static void write_worst(FILE *f, const qi_report *r, const unsigned char *fails, size_t ncompared)
{
	fputs("<h2 id=\"worst-tensors\">Worst tensors</h2>\n", f);
	if (r->nworst == 0) {
		note(f, "worst-none", !r->reference ? "No reference (a description only): no ranking by error."
				      : ncompared ? "Every compared tensor equals its reference: no error to rank."
						  : "No tensor was compared: no ranking by error.");
		return;
	}
	size_t n = r->nworst < LIST_MAX ? r->nworst : LIST_MAX;
	/* nworst is qinspect's --top, not the number compared; tensors without error are not ranked */
	fprintf(f, "<p class=\"dim\">The %s largest relative errors, of %s compared tensors (those equal to their "
		   "reference are not ranked).</p>\n",
		num_count(n).s, num_count(ncompared).s);
	fputs("<table class=\"data\" id=\"worst\"><thead><tr><th>rank</th>", f);
	put_name_heading(f, r, n, r->worst);
	fputs("<th class=\"lbl\">storage</th>", f);
	error_headings(f, r->total.nonfinite > 0);
	fputs("</tr></thead><tbody>\n", f);
	for (size_t i = 0; i < n; i++) {
		size_t k = r->worst[i];
		if (k >= r->ntensors)
			continue;
		const qi_tensor *t = &r->tensors[k];
		fprintf(f, "<tr%s><td>%zu</td><td class=\"name\">", t->gate_failed ? " class=\"fail\"" : "", i + 1);
		put_name(f, t->name);
		fputs("</td><td class=\"lbl\">", f);
		put_text(f, t->storage);
		fputs("</td>", f);
		error_cells(f, t, fails[k], r->total.nonfinite > 0);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
}

/* Every tensor in the checkpoint's order; the error columns only when something was compared (a
 * description only would have six empty columns). */
static void write_tensors(FILE *f, const qi_report *r, const unsigned char *fails, size_t ncompared)
{
	fputs("<h2 id=\"every-tensor\">Every tensor</h2>\n", f);
	if (r->ntensors == 0) {
		note(f, "tensors-none", "The selection holds no tensor.");
		return;
	}
	fputs(any_gate(r) ? "<p class=\"dim\">In the checkpoint&#39;s order. Rows in red failed a gate; the figure "
			    "that failed is in bold red.</p>\n"
			  : "<p class=\"dim\">In the checkpoint&#39;s order.</p>\n",
	      f);
	/* a quantized tensor's blocks whose absmax is not finite: with a reference, its elements say it */
	const bool absmax_col = r->absmax_nonfinite && !ncompared;
	fputs("<table class=\"data\" id=\"tensors\"><thead><tr><th>#</th>", f);
	put_name_heading(f, r, r->ntensors, NULL);
	fputs("<th>shape</th><th class=\"lbl\">storage</th><th>params</th><th>bits/param</th>", f);
	if (absmax_col)
		fputs("<th>absmax not finite</th>", f);
	if (ncompared)
		error_headings(f, r->total.nonfinite > 0);
	fputs("</tr></thead><tbody>\n", f);
	for (size_t i = 0; i < r->ntensors; i++) {
		const qi_tensor *t = &r->tensors[i];
		fprintf(f, "<tr%s><td>%zu</td><td class=\"name\">", t->gate_failed ? " class=\"fail\"" : "", i);
		put_name(f, t->name);
		fputs("</td><td>", f);
		put_shape(f, t);
		fputs("</td><td class=\"lbl\">", f);
		put_text(f, t->storage);
		fprintf(f, "</td><td>%s</td><td>%s</td>", num_count(t->params).s, num_f(t->bits_per_param, 3).s);
		if (absmax_col && !t->quantized)
			fputs("<td class=\"na\">\xc2\xb7</td>", f);
		else if (absmax_col)
			fprintf(f, t->absmax_nonfinite ? "<td class=\"nf\">%s</td>" : "<td>%s</td>",
				num_count(t->absmax_nonfinite).s);
		if (ncompared)
			error_cells(f, t, fails[i], r->total.nonfinite > 0);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
}

/* ---------------------------------------------------------------------------------------- the page */

static size_t count_failed(const qi_report *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->ntensors; i++)
		n += r->tensors[i].gate_failed;
	return n;
}

bool qi_write_html(const qi_report *r, FILE *f)
{
	unsigned char *fails = gate_failures(r);
	if (!fails) {
		errno = ENOMEM;
		return false;
	}
	size_t ncompared = count_compared(r);
	write_head(f, r);
	/* The counts a test checks the rendered page against. */
	fprintf(f, "<body>\n<main id=\"report\" data-tensors=\"%zu\" data-compared=\"%zu\" data-quantized=\"%zu\" "
		   "data-failed=\"%zu\">\n",
		r->ntensors, ncompared, r->quantized_tensors, count_failed(r));
	write_summary(f, r);
	write_gates(f, r);
	write_totals(f, r, ncompared);
	bool ok = plot_rel_err(f, r);
	plot_codes(f, r);
	plot_absmax(f, r);
	plot_bits(f, r);
	write_worst(f, r, fails, ncompared);
	write_tensors(f, r, fails, ncompared);
	fputs("</main>\n</body>\n</html>\n", f);
	free(fails);
	if (!ok) {
		errno = ENOMEM;
		return false;
	}
	return fflush(f) == 0 && !ferror(f);
}
