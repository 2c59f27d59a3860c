/*
 * qinspect: what a quantization cost. Describes a checkpoint (storage, parameters, bytes and bits per
 * parameter of every tensor; for 4-bit tensors the code histogram and the absmax), or compares it with a
 * reference tensor by tensor (a 4-bit tensor dequantized exactly first): RMSE, maximum error, relative
 * error, SNR, cosine, differing elements; gates for CI that fail with exit status 1.
 *
 * The composition of DESIGN.md: open both checkpoints (headers only), list their logical tensors
 * (formats/hf_tensors.c), stream each tensor in chunks (dequantized by libquant, on the GPU when there is
 * one), add the error sums through libquant's backend, then hand the report (qinspect_report.h) to the
 * writers: a table on stdout, or --json/--csv, and --html.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hf_tensors.h"
#include "libquant.h"
#include "qinspect_output.h"
#include "qinspect_report.h"
#include "qinspect_verify.h"

/* Elements read and compared at a time: a multiple of every block size and of LQ_STATS_PIECE, so that
 * the sums (and their bits) do not depend on anything but the tensor. */
#define CHUNK_ELEMENTS ((int64_t)4 << 20)

typedef struct options {
	const char *checkpoint, *reference;
	bool verify;                /* --verify: checkpoint is the PATH to check */
	const char *html;
	bool csv;
	const char **tensor_globs;
	size_t ntensor_globs;
	double gate[QI_NGATES];
	bool gate_set[QI_NGATES];
	int top;
	cli_common common;
} options;

static void usage(void)
{
	printf("Usage: %s [OPTION]... CHECKPOINT [REFERENCE]\n"
	       "  or:  %s [--json] --verify PATH\n"
	       "Describe a checkpoint, or compare it with a reference tensor by tensor: what a quantization cost.\n"
	       "\n"
	       "CHECKPOINT and REFERENCE are model directories, index.json or .safetensors files or bundles\n"
	       "(.tar.zst, .tar), float or bitsandbytes 4-bit (dequantized exactly before they are compared):\n"
	       "the quantized checkpoint first, then the original it came from.\n"
	       "--verify checks a directory or bundle against its MANIFEST and names every mismatch.\n"
	       "\n"
	       "  -o, --html FILE          also write a self-contained HTML report with plots\n"
	       "      --json               the report as JSON on standard output (schema 2, man qinspect)\n"
	       "      --csv                one CSV line per tensor, then the totals, on standard output\n"
	       "      --tensor GLOB        only the tensors whose names match (repeatable)\n"
	       "      --top N              how many worst tensors the summary lists (default 10)\n"
	       "      --verify             check PATH's files and tensors against its MANIFEST\n"
	       "Gates (with a REFERENCE; a tensor that fails one makes the exit status 1; one with an element\n"
	       "that is NaN or infinite, on either side, fails every gate):\n"
	       "      --max-rel-err X      relative error |W'-W|/|W| at most X\n"
	       "      --max-rmse X         root mean square error at most X\n"
	       "      --max-abs-err X      largest absolute error at most X\n"
	       "      --min-snr DB         signal-to-noise ratio at least DB decibels\n"
	       "      --min-cosine X       cosine similarity at least X\n"
	       "\n"
	       "      --device DEV         cpu, cuda, cuda:N, all or auto (default); the figures are the same\n"
	       "  -T, --threads N          compute threads (0 = one per core, the default)\n"
	       "  -f, --force              replace the --html file if it exists\n"
	       "  -n, --dry-run            list the tensors that would be compared; read no data\n"
	       "  -q, --quiet              no table; only errors and failed gates\n"
	       "  -v, --verbose            progress per tensor\n"
	       "  -h, --help               this help\n"
	       "  -V, --version            version\n"
	       "\n"
	       "Exit status: 0 success, 1 a gate failed or an error, 2 usage.\n",
	       cli_progname(), cli_progname());
}

static double parse_number(const char *opt, const char *arg)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v))
		cli_usage_error("invalid --%s '%s' (a number)", opt, arg);
	return v;
}

/* The value of an option that names a file: one that begins with '-' is an option given by mistake
 * (`--html --json`), which getopt would take as the value; a file of such a name is reached as ./NAME. */
static const char *file_value(const char *opt, const char *arg)
{
	if (strcmp(arg, "-") == 0)
		cli_usage_error("standard input and output are not supported as files");
	if (arg[0] == '-')
		cli_usage_error("%s needs a FILE, not '%s' (write ./%s for a file of that name)", opt, arg, arg);
	if (!*arg)
		cli_usage_error("%s needs a FILE, not ''", opt);
	return arg;
}

static void parse_args(int argc, char **argv, options *o)
{
	enum { OPT_JSON_UNUSED = 256, OPT_CSV, OPT_TENSOR, OPT_TOP, OPT_VERIFY, OPT_GATE0 };
	static const struct option longopts[] = {
		{"html", required_argument, NULL, 'o'},
		{"csv", no_argument, NULL, OPT_CSV},
		{"tensor", required_argument, NULL, OPT_TENSOR},
		{"top", required_argument, NULL, OPT_TOP},
		/* a mode, not an option with a value: PATH is the operand, so that --verify --json PATH and
		 * --json --verify PATH and --verify PATH --json are the same */
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"max-rel-err", required_argument, NULL, OPT_GATE0 + QI_GATE_MAX_REL_ERR},
		{"max-rmse", required_argument, NULL, OPT_GATE0 + QI_GATE_MAX_RMSE},
		{"max-abs-err", required_argument, NULL, OPT_GATE0 + QI_GATE_MAX_ABS_ERR},
		{"min-snr", required_argument, NULL, OPT_GATE0 + QI_GATE_MIN_SNR},
		{"min-cosine", required_argument, NULL, OPT_GATE0 + QI_GATE_MIN_COSINE},
		CLI_COMMON_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	*o = (options){.top = 10, .common = {.device = "auto"}};
	long v;
	int c;
	bool top_set = false;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:T:fnqvhV", longopts, NULL)) != -1) {
		if (c >= OPT_GATE0 && c < OPT_GATE0 + QI_NGATES) {
			qi_gate_kind g = (qi_gate_kind)(c - OPT_GATE0);
			o->gate[g] = parse_number(qi_gate_option(g), optarg);
			o->gate_set[g] = true;
			continue;
		}
		switch (c) {
		case 'o':
			o->html = file_value("--html", optarg);
			break;
		case OPT_CSV:
			o->csv = true;
			break;
		case OPT_VERIFY:
			o->verify = true;
			break;
		case OPT_TENSOR:
			cli_list_add(&o->tensor_globs, &o->ntensor_globs, optarg);
			break;
		case OPT_TOP:
			if (!cli_parse_int(optarg, 0, 1000000, &v))
				cli_usage_error("invalid --top '%s' (0 or more)", optarg);
			o->top = (int)v;
			top_set = true;
			break;
		default:
			cli_common_option(c, argv, &o->common, usage);
		}
	}
	if (o->verify) {
		/* what only a report uses would be ignored without a word */
		const char *report_only = o->html ? "--html" : o->csv ? "--csv" : o->ntensor_globs ? "--tensor" : top_set ? "--top" : NULL;
		for (int g = 0; g < QI_NGATES && !report_only; g++)
			if (o->gate_set[g])
				report_only = qi_gate_option((qi_gate_kind)g);
		if (report_only)
			cli_usage_error("--verify does not take %s%s", report_only[0] == '-' ? "" : "--", report_only);
		if (optind >= argc)
			cli_usage_error("--verify needs a PATH");
		o->checkpoint = argv[optind++];
		if (optind < argc)
			cli_usage_error("--verify takes one PATH, not '%s' too", argv[optind]);
		return;
	}
	if (optind >= argc)
		cli_usage_error("no CHECKPOINT given");
	o->checkpoint = argv[optind++];
	if (optind < argc)
		o->reference = argv[optind++];
	if (optind < argc)
		cli_usage_error("at most CHECKPOINT and REFERENCE, got '%s' too", argv[optind]);
	if (o->csv && o->common.json)
		cli_usage_error("--json and --csv both write to standard output: choose one");
	for (int g = 0; g < QI_NGATES; g++)
		if (o->gate_set[g] && !o->reference)
			cli_usage_error("--%s needs a REFERENCE to compare with", qi_gate_option((qi_gate_kind)g));
	if (strcmp(o->checkpoint, "-") == 0 || (o->reference && strcmp(o->reference, "-") == 0))
		cli_usage_error("standard input and output are not supported as files");
}

/* A tensor name for a message: as the table shows it (controls, C1 ones too, and bidirectional overrides
 * as '?'), cut to fit buf. */
static const char *shown(const char *name, char *buf, size_t size)
{
	char *plain = malloc(strlen(name) + 1);
	fmt_quote(plain ? qi_plain_text(name, plain) : name, buf, size);
	free(plain);
	return buf;
}

/* ----------------------------------------------------------------------------- describing */

static const char *dtype_short(lq_dtype d)
{
	return d == LQ_DTYPE_BF16 ? "bf16" : d == LQ_DTYPE_F16 ? "fp16" : "fp32";
}

/* A 4-bit tensor in memory: its codes, and its absmax dequantized (nblocks floats). Its parts are read
 * once each, in the order of their bytes in the files: a bundle's entry is decompressed forward, and a
 * .safetensors file keeps a group's parts apart (by dtype, then name), the absmax often after the codes.
 * The codes of the largest 4-bit tensor are what this holds at most: a quarter of its bf16 bytes. */
typedef struct group {
	unsigned char *codes;
	size_t ncodes;
	float *absmax;
	size_t codes_cap, absmax_cap; /* the buffers are kept from tensor to tensor: touched once, not each time */
} group;

static void group_free(group *g)
{
	free(g->codes);
	free(g->absmax);
	*g = (group){0};
}

/* *buf with room for n bytes, grown only. */
static bool room(void **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return true;
	void *p = realloc(*buf, n);
	if (!p)
		return false;
	*buf = p;
	*cap = n;
	return true;
}

/* Whether part a of a group lies after part b in the files. */
static bool after(const hf_ref *a, const hf_ref *b)
{
	int c = strcmp(a->f->path, b->f->path);
	return c ? c > 0 : a->t->begin > b->t->begin;
}

static lq_status load_group(lq_ctx *ctx, const hf_tensor *t, group *g, char *err)
{
	const int64_t nb = lq_quant_nblocks((int64_t)t->nelem, t->state.blocksize);
	/* the codes, the absmax and the nested absmax, read in the order of their bytes */
	const hf_ref *part[3] = {&t->parts[BNB_PART_WEIGHT], &t->parts[BNB_PART_ABSMAX], &t->parts[BNB_PART_NESTED_ABSMAX]};
	int nparts = t->state.double_quant ? 3 : 2, order[3] = {0, 1, 2};
	for (int i = 1; i < nparts; i++) /* insertion sort of at most three */
		for (int j = i; j > 0 && after(part[order[j - 1]], part[order[j]]); j--) {
			int x = order[j];
			order[j] = order[j - 1];
			order[j - 1] = x;
		}
	g->ncodes = (size_t)(part[0]->t->end - part[0]->t->begin);
	if (!room((void **)&g->codes, &g->codes_cap, g->ncodes + 1) ||
	    !room((void **)&g->absmax, &g->absmax_cap, (size_t)nb * 4 + 4))
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	void *bytes[3] = {NULL, NULL, NULL}; /* the absmax and the nested absmax */
	size_t len[3] = {0, 0, 0};
	lq_status st = LQ_OK;
	for (int k = 0; k < nparts && st == LQ_OK; k++) {
		const hf_ref *r = part[order[k]];
		if (order[k] > 0)
			st = hf_ref_read(r, &bytes[order[k]], &len[order[k]], err);
		else if ((st = st_file_read(r->f, r->t, 0, g->codes, g->ncodes)) != LQ_OK)
			fmt_fail(err, st, "%s", st_file_error(r->f));
	}
	if (st == LQ_OK && t->state.double_quant) {
		float *nf = malloc(len[2] + 4);
		if (!nf)
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		else {
			lq_to_f32(bytes[2], LQ_DTYPE_F32, (int64_t)(len[2] / 4), nf);
			st = lq_dequantize_absmax(ctx, bytes[1], nf, t->state.nested_offset, nb, g->absmax);
			if (st != LQ_OK)
				fmt_fail(err, st, "%s", lq_ctx_error_string(ctx));
			free(nf);
		}
	} else if (st == LQ_OK) {
		lq_to_f32(bytes[1], LQ_DTYPE_F32, nb, g->absmax);
	}
	free(bytes[1]);
	free(bytes[2]);
	return st;
}

/* Everything about a tensor that its storage tells, without a reference. */
static lq_status describe(const hf_tensor *h, const group *g, qi_tensor *t)
{
	t->name = h->name;
	t->ndim = h->ndim < QI_MAX_DIMS ? h->ndim : QI_MAX_DIMS;
	memcpy(t->shape, h->shape, sizeof t->shape[0] * (size_t)t->ndim);
	t->params = h->nelem;
	t->layer = qi_layer_of(h->name);
	t->err.max_abs_err_index = -1;
	if (!h->quantized) {
		t->dtype = h->dtype == LQ_DTYPE_U8 ? st_dtype_name(h->data.t->dtype) : lq_dtype_torch_name(h->dtype);
		snprintf(t->storage, sizeof t->storage, "%s",
			 h->dtype == LQ_DTYPE_U8 ? st_dtype_name(h->data.t->dtype) : dtype_short(h->dtype));
		t->bytes.codes = h->bytes;
		qi_tensor_bits(t);
		return LQ_OK;
	}
	const bnb_state *s = &h->state;
	t->quantized = true;
	t->qtype = s->qtype;
	t->blocksize = s->blocksize;
	t->double_quant = s->double_quant;
	t->dtype = lq_dtype_torch_name(s->dtype);
	snprintf(t->storage, sizeof t->storage, "%s/%d%s (%s)", lq_qtype_name(s->qtype), (int)s->blocksize,
		 s->double_quant ? " dq" : "", dtype_short(s->dtype));
	for (int k = 0; k < BNB_NPARTS; k++) {
		if (!h->parts[k].t)
			continue;
		uint64_t b = h->parts[k].t->end - h->parts[k].t->begin;
		*(k == BNB_PART_WEIGHT ? &t->bytes.codes : k == BNB_PART_ABSMAX ? &t->bytes.absmax
						: k == BNB_PART_NESTED_ABSMAX ? &t->bytes.nested : &t->bytes.tables) += b;
	}
	qi_tensor_bits(t);
	qi_tensor_codes(t, g->codes, g->ncodes);
	qi_tensor_absmax(t, g->absmax, (uint64_t)lq_quant_nblocks((int64_t)t->params, s->blocksize));
	return LQ_OK;
}

/* ----------------------------------------------------------------------------- comparing */

/* A tensor's elements [e0, e0 + n) in its own float type (*dtype): read, or for a 4-bit one (g, loaded)
 * dequantized (to the type the tensor had, the values transformers computes with). out: room for n
 * elements of 4 bytes. */
static lq_status read_typed(lq_ctx *ctx, const hf_tensor *h, const group *g, int64_t e0, int64_t n, void *out,
			    lq_dtype *dtype, char *err)
{
	lq_status st;
	if (!h->quantized) {
		size_t es = lq_dtype_size(h->dtype);
		st = st_file_read(h->data.f, h->data.t, (uint64_t)e0 * es, out, (size_t)n * es);
		if (st != LQ_OK)
			return fmt_fail(err, st, "%s", st_file_error(h->data.f));
		*dtype = h->dtype;
		return LQ_OK;
	}
	const bnb_state *s = &h->state;
	st = lq_dequantize_blocks(ctx, g->codes + e0 / 2, g->absmax + e0 / s->blocksize, n, s->qtype, s->blocksize,
				  s->dtype, out);
	if (st != LQ_OK)
		return fmt_fail(err, st, "%s", lq_ctx_error_string(ctx));
	*dtype = s->dtype;
	return LQ_OK;
}

/* Where the elements that are not finite are: how many on each side, and the first of them. */
typedef struct nonfinite_at {
	uint64_t checkpoint, reference;
	int64_t first; /* -1: none */
} nonfinite_at;

/* Counts the elements of a chunk (x and ref, n elements of their types, the first at element `first`)
 * that are not finite, on each side. Only for a chunk whose sums found some: a broken tensor's. */
static void find_nonfinite(const void *x, lq_dtype tx, const void *ref, lq_dtype tr, int64_t n, int64_t first,
			   nonfinite_at *nf)
{
	enum { PIECE = 1024 };
	float xs[PIECE], rs[PIECE];
	const size_t ex = lq_dtype_size(tx), er = lq_dtype_size(tr);
	for (int64_t i0 = 0; i0 < n; i0 += PIECE) {
		const int64_t m = n - i0 < PIECE ? n - i0 : PIECE;
		lq_to_f32((const char *)x + (size_t)i0 * ex, tx, m, xs);
		lq_to_f32((const char *)ref + (size_t)i0 * er, tr, m, rs);
		for (int64_t k = 0; k < m; k++) {
			const bool bx = !isfinite(xs[k]), br = !isfinite(rs[k]);
			nf->checkpoint += bx;
			nf->reference += br;
			if ((bx || br) && nf->first < 0)
				nf->first = first + i0 + k;
		}
	}
}

/* The error sums of x against its reference, a chunk at a time; gx, gr: their groups when 4-bit. */
static lq_status compare(lq_ctx *ctx, const hf_tensor *x, const group *gx, const hf_tensor *ref, const group *gr,
			 lq_error_sums *sums, nonfinite_at *nf, char *err)
{
	const int64_t n = (int64_t)x->nelem;
	const int64_t chunk = n < CHUNK_ELEMENTS ? n : CHUNK_ELEMENTS;
	void *a = malloc((size_t)chunk * 4 + 4), *b = malloc((size_t)chunk * 4 + 4);
	lq_status st = a && b ? LQ_OK : fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	lq_error_sums_init(sums);
	*nf = (nonfinite_at){.first = -1};
	for (int64_t e0 = 0; e0 < n && st == LQ_OK; e0 += chunk) {
		const int64_t len = n - e0 < chunk ? n - e0 : chunk;
		const uint64_t nonfinite = sums->nonfinite;
		lq_dtype ta, tb;
		st = read_typed(ctx, x, gx, e0, len, a, &ta, err);
		if (st == LQ_OK)
			st = read_typed(ctx, ref, gr, e0, len, b, &tb, err);
		if (st == LQ_OK && (st = lq_error_sums_add(ctx, a, ta, b, tb, len, e0, sums)) != LQ_OK)
			fmt_fail(err, st, "%s", lq_ctx_error_string(ctx));
		if (st == LQ_OK && sums->nonfinite > nonfinite)
			find_nonfinite(a, ta, b, tb, len, e0, nf);
		if (cli_interrupted())
			st = fmt_fail(err, LQ_ERR_CANCELLED, "interrupted");
	}
	free(a);
	free(b);
	return st;
}

static bool same_shape(const hf_tensor *a, const hf_tensor *b)
{
	return a->ndim == b->ndim && a->nelem == b->nelem &&
	       memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)(a->ndim < BNB_MAX_DIMS ? a->ndim : BNB_MAX_DIMS)) == 0;
}

static const char *shape_text(const hf_tensor *h, char *buf, size_t size)
{
	return fmt_shape(buf, size, h->ndim < BNB_MAX_DIMS ? h->ndim : BNB_MAX_DIMS, h->shape);
}

/* A tensor to describe (and compare), and where its report goes. Tensors are read in the order of the
 * bytes of whichever side is a bundle, the reference's first: a bundle is decompressed forward, and going
 * back costs a fresh start (formats/bundle.h); a directory reads anywhere. The report keeps the
 * checkpoint's order whatever the reading order. */
typedef struct work_item {
	const hf_tensor *h, *ref;
	size_t slot;                /* in the report */
	size_t shard;               /* the position of its bytes on the side read in order */
	uint64_t offset;
} work_item;

/* The position of w's bytes on `side` (the reference or the checkpoint, whichever is a bundle; NULL:
 * neither, the listing's order). A tensor the reference lacks goes after every one it has. */
static void set_position(work_item *w, const hf_tensor *side, bool by_side)
{
	w->shard = !by_side ? 0 : side ? side->shard : SIZE_MAX;
	w->offset = by_side && side ? side->data.t->begin : w->slot;
}

static int by_position(const void *a, const void *b)
{
	const work_item *x = a, *y = b;
	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* The checkpoint is the quantized side and the reference the original: the errors are relative to the
 * reference. The other way round the run goes on (two float checkpoints are compared either way), but
 * one warning line says so when the checkpoint has no 4-bit tensor and the reference has (among the
 * tensors --tensor selects). */
static void warn_if_reversed(const options *o, const hf_tensors *tc, const hf_tensors *tr)
{
	size_t qc = 0, qr = 0;
	for (size_t i = 0; i < tc->n; i++)
		qc += tc->v[i].quantized && (!o->ntensor_globs || cli_glob_any(tc->v[i].name, o->tensor_globs, o->ntensor_globs));
	for (size_t i = 0; i < tr->n; i++)
		qr += tr->v[i].quantized && (!o->ntensor_globs || cli_glob_any(tr->v[i].name, o->tensor_globs, o->ntensor_globs));
	if (qc == 0 && qr > 0)
		cli_warn("CHECKPOINT '%s' has no 4-bit tensor and REFERENCE '%s' has %zu: the order is QUANTIZED ORIGINAL "
			 "(as given, the errors are relative to the quantized one)", o->checkpoint, o->reference, qr);
}

/* ----------------------------------------------------------------------------- the summary */

static lq_status summarize(const options *o, qi_report *r)
{
	for (int g = 0; g < QI_NGATES; g++)
		r->gates[g] = (qi_gate){.set = o->gate_set[g], .limit = o->gate[g]};
	return qi_summarize(r, (size_t)o->top);
}

/* Tells on stderr which gates failed and by which tensors (also with -q: that is what CI logs show). */
static void report_gates(const qi_report *r)
{
	for (int g = 0; g < QI_NGATES; g++) {
		const qi_gate *gate = &r->gates[g];
		if (!gate->set || !gate->nfailed)
			continue;
		cli_error("gate --%s %g failed by %zu tensor%s:", qi_gate_option((qi_gate_kind)g), gate->limit, gate->nfailed,
			  gate->nfailed == 1 ? "" : "s");
		for (size_t k = 0; k < gate->nfailed; k++) {
			const qi_tensor *t = &r->tensors[gate->failed[k]];
			char q[512];
			if (t->err.nonfinite)
				cli_error("  %s: %llu element%s not finite (NaN or infinite)", shown(t->name, q, sizeof q),
					  (unsigned long long)t->err.nonfinite, t->err.nonfinite == 1 ? "" : "s");
			else
				cli_error("  %s: %s %.6g", shown(t->name, q, sizeof q), qi_gate_key((qi_gate_kind)g) + 4,
					  qi_gate_value(&t->err, (qi_gate_kind)g));
		}
	}
}

static void free_report(qi_report *r)
{
	free(r->tensors);
	free((void *)r->only_in_checkpoint);
	free((void *)r->only_in_reference);
	qi_summary_free(r);
}

/* The terminal's columns when standard output is one (or $COLUMNS); 0 otherwise: a pipe or a log gets
 * whole names, which grep finds. */
static int terminal_width(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	long v;
	return c && cli_parse_int(c, 40, 10000, &v) ? (int)v : 0;
}

int main(int argc, char **argv)
{
	cli_init(argv[0]);
	options o;
	parse_args(argc, argv, &o);
	/* what is read, so that no output lands on it, in it or around it */
	qi_inputs *inputs = qi_inputs_create();
	if (!inputs || !qi_inputs_add_path(inputs, o.checkpoint) || (o.reference && !qi_inputs_add_path(inputs, o.reference))) {
		cli_error("out of memory");
		qi_inputs_free(inputs);
		return CLI_EXIT_FAILURE;
	}
	if (o.verify) {
		int v = qi_stdout_ok(inputs) ? qi_verify(o.checkpoint, o.common.json) : CLI_EXIT_FAILURE;
		if (fflush(stdout) != 0) {
			cli_error("cannot write to standard output: %s", strerror(errno));
			v = CLI_EXIT_FAILURE;
		}
		qi_inputs_free(inputs);
		return v;
	}
	cli_install_signals();
	double t0 = cli_now();
	int status = CLI_EXIT_FAILURE;
	char err[FMT_ERRBUF] = "";
	hf_model *mc = hf_model_create(), *mr = o.reference ? hf_model_create() : NULL;
	hf_tensors tc = {0}, tr = {0};
	qi_report r = {.checkpoint = o.checkpoint, .reference = o.reference};
	work_item *work = NULL;
	group gx = {0}, gr = {0}; /* the 4-bit tensor being read, and its reference's */
	lq_ctx *ctx = NULL;
	if (!mc || (o.reference && !mr)) {
		cli_error("out of memory");
		goto finish;
	}
	/* refused before anything is read (`--json X > X` has emptied X already: say so, not that X is
	 * short), and again with every file the inputs lead to */
	if (!qi_stdout_ok(inputs) || (o.html && !qi_output_ok(inputs, o.html, o.common.force)))
		goto finish;
	if (hf_model_open(mc, o.checkpoint) != LQ_OK) {
		cli_error("%s", mc->err);
		goto finish;
	}
	if (mr && hf_model_open(mr, o.reference) != LQ_OK) {
		cli_error("%s", mr->err);
		goto finish;
	}
	if (!qi_inputs_add_model(inputs, mc) || (mr && !qi_inputs_add_model(inputs, mr))) {
		cli_error("out of memory");
		goto finish;
	}
	if (!qi_stdout_ok(inputs) || (o.html && !qi_output_ok(inputs, o.html, o.common.force)))
		goto finish;
	if (hf_tensors_list(mc, &tc, err) != LQ_OK || (mr && hf_tensors_list(mr, &tr, err) != LQ_OK)) {
		cli_error("%s", err);
		goto finish;
	}
	lq_ctx_options copts = cli_ctx_options(&o.common);
	ctx = lq_ctx_create(&copts);
	if (!ctx) {
		cli_error("cannot start: out of memory or threads");
		goto finish;
	}
	if (!o.common.dry_run && lq_ctx_use_device(ctx, o.common.device) != LQ_OK) {
		cli_error("--device %s: %s", o.common.device, lq_ctx_error_string(ctx));
		goto finish;
	}
	r.device = lq_ctx_device_note(ctx);
	r.tensors = calloc(tc.n + 1, sizeof *r.tensors);
	r.only_in_checkpoint = calloc(tc.n + 1, sizeof *r.only_in_checkpoint);
	r.only_in_reference = calloc(tr.n + 1, sizeof *r.only_in_reference);
	if (!r.tensors || !r.only_in_checkpoint || !r.only_in_reference) {
		cli_error("out of memory");
		goto finish;
	}
	/* first what the listing tells, in the checkpoint's order (the report's) */
	work = calloc(tc.n + 1, sizeof *work);
	if (!work) {
		cli_error("out of memory");
		goto finish;
	}
	size_t nwork = 0;
	for (size_t i = 0; i < tc.n; i++) {
		const hf_tensor *h = &tc.v[i];
		if (o.ntensor_globs && !cli_glob_any(h->name, o.tensor_globs, o.ntensor_globs))
			continue;
		const hf_tensor *ref = mr ? hf_tensors_find(&tr, h->name) : NULL;
		if (mr && !ref) {
			r.only_in_checkpoint[r.n_only_checkpoint++] = h->name;
		} else if (ref && !same_shape(h, ref)) {
			char a[128], b[128], q[512];
			shape_text(h, a, sizeof a);
			shape_text(ref, b, sizeof b);
			cli_error("tensor '%s' is %s in '%s' and %s in '%s'", shown(h->name, q, sizeof q), a, o.checkpoint,
				  b, o.reference);
			goto finish;
		}
		char q[512];
		if (o.common.dry_run)
			cli_info(0, "%s %s", ref && h->dtype != LQ_DTYPE_U8 ? "compare " : "describe", shown(h->name, q, sizeof q));
		work[nwork] = (work_item){.h = h, .ref = ref, .slot = r.ntensors++};
		if (mr && mr->bundle)
			set_position(&work[nwork++], ref, true);
		else
			set_position(&work[nwork++], h, mc->bundle != NULL);
	}
	if (mr)
		warn_if_reversed(&o, &tc, &tr);
	if (o.common.dry_run) {
		status = CLI_EXIT_OK;
		goto finish;
	}
	/* then the reading, in the order of the bytes of the side that is a bundle */
	qsort(work, nwork, sizeof *work, by_position);
	for (size_t w = 0; w < nwork; w++) {
		const hf_tensor *h = work[w].h, *ref = work[w].ref;
		qi_tensor *t = &r.tensors[work[w].slot];
		bool compared = ref && h->dtype != LQ_DTYPE_U8 && ref->dtype != LQ_DTYPE_U8;
		char q[512];
		cli_info(1, "%s", shown(h->name, q, sizeof q));
		lq_status st = h->quantized ? load_group(ctx, h, &gx, err) : LQ_OK;
		if (st == LQ_OK && compared && ref->quantized)
			st = load_group(ctx, ref, &gr, err);
		if (st == LQ_OK)
			st = describe(h, &gx, t);
		lq_error_sums sums;
		nonfinite_at nf;
		if (st == LQ_OK && compared && (st = compare(ctx, h, &gx, ref, &gr, &sums, &nf, err)) == LQ_OK)
			qi_error_take_sums(&t->err, &sums, nf.checkpoint, nf.reference, nf.first);
		if (st != LQ_OK) {
			cli_error("%s", err);
			goto finish;
		}
	}
	for (size_t i = 0; mr && i < tr.n; i++)
		if ((!o.ntensor_globs || cli_glob_any(tr.v[i].name, o.tensor_globs, o.ntensor_globs)) &&
		    !hf_tensors_find(&tc, tr.v[i].name))
			r.only_in_reference[r.n_only_reference++] = tr.v[i].name;
	if (summarize(&o, &r) != LQ_OK) {
		cli_error("out of memory");
		goto finish;
	}
	r.seconds = cli_now() - t0;
	bool written = o.common.json ? qi_write_json(&r, stdout) : o.csv ? qi_write_csv(&r, stdout)
				     : cli_verbosity < 0 || qi_write_table(&r, stdout, terminal_width());
	if (!written || fflush(stdout) != 0) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		goto finish;
	}
	if (o.html && !qi_write_output(o.html, o.common.force, inputs, qi_write_html, &r))
		goto finish;
	report_gates(&r);
	status = r.passed ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
finish:
	group_free(&gx);
	group_free(&gr);
	free(work);
	free_report(&r);
	hf_tensors_free(&tc);
	hf_tensors_free(&tr);
	lq_ctx_free(ctx);
	hf_model_free(mc);
	hf_model_free(mr);
	qi_inputs_free(inputs);
	free(o.tensor_globs);
	return status;
}
