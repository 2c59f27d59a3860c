/*
 * qinspect: what a quantization cost. Describes a checkpoint (storage, parameters, bytes and bits per
 * parameter of every tensor; for 4-bit tensors the code histogram and the absmax), or compares it with a
 * reference tensor by tensor (a 4-bit tensor dequantized exactly first): RMSE, maximum error, relative
 * error, SNR, cosine, differing elements; gates for CI that fail with exit status 1.
 *
 * The composition of DESIGN.md: open both checkpoints (headers only), list their logical tensors
 * (formats/hf_tensors.c), then one LQ_OP_COMPARE task per tensor that needs its data (a 4-bit tensor's
 * codes and scales; with a reference, the error sums, a 4-bit side dequantized exactly), streamed by
 * libquant's executor (reading, computing on the CPU or the GPU, overlapped), the figures arriving in the
 * sink's task_done; then the report (qinspect_report.h) goes to the writers: a table on stdout, or
 * --json/--csv, and --html.
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
#include "device_work.h"
#include "hf_tensors.h"
#include "libquant.h"
#include "report_file.h"
#include "qinspect_adapter.h"
#include "qinspect_report.h"
#include "qinspect_verify.h"
#include "st_exec.h"

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
	qi_adapter_args adapter;    /* --adapter: the merge fidelity report instead */
	bool qtype_set, blocksize_set, no_double_quant, thresholds_set;
	cli_common common;
} options;

static void usage(void)
{
	printf("Usage: %s [OPTION]... CHECKPOINT [REFERENCE]\n"
	       "  or:  %s [OPTION]... --adapter ADAPTER[:WEIGHT]... BASE [MERGED]\n"
	       "  or:  %s [--json] --verify PATH\n"
	       "Describe a checkpoint, or compare it with a reference tensor by tensor: what a quantization cost.\n"
	       "\n"
	       "CHECKPOINT and REFERENCE are model directories, index.json or .safetensors files or bundles\n"
	       "(.tar.zst, .tar), float or bitsandbytes 4-bit (dequantized exactly before they are compared):\n"
	       "the quantized checkpoint first, then the original it came from.\n"
	       "--verify checks a directory or bundle against its MANIFEST and names every mismatch.\n"
	       "--adapter reports what a merge of the adapters into BASE keeps of them, per module, layer and\n"
	       "overall: MERGED's weights, or without MERGED the merge requantized to 4 bits here.\n"
	       "\n"
	       "  -o, --html FILE          also write a self-contained HTML report with plots\n"
	       "      --json               the report as JSON on standard output (schema 2, man qinspect)\n"
	       "      --csv                one CSV line per tensor, then the totals, on standard output\n"
	       "      --tensor GLOB        only the tensors whose names match (repeatable)\n"
	       "      --top N              how many worst tensors the summary lists (default 10)\n"
	       "      --verify             check PATH's files and tensors against its MANIFEST\n"
	       "Merge fidelity (man qinspect, ADAPTER REPORT):\n"
	       "      --adapter ADAPTER[:WEIGHT]  a PEFT adapter merged into BASE (repeatable, in order)\n"
	       "      --quant-type nf4|fp4 a float BASE's 4-bit form, as QLoRA trained on it (default nf4)\n"
	       "      --blocksize N        its elements per block (default 64)\n"
	       "      --no-double-quant    its scales not double-quantized\n"
	       "      --erased-survival X  a module is erased below this survival (default 0.5)\n"
	       "      --erased-residual X  or above this residual (default 1)\n"
	       "      --min-survival X     exit status 1 when a module keeps less than X of its change\n"
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
	       cli_progname(), cli_progname(), cli_progname());
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
	enum { OPT_JSON_UNUSED = 256, OPT_CSV, OPT_TENSOR, OPT_TOP, OPT_VERIFY, OPT_ADAPTER, OPT_QTYPE, OPT_BLOCKSIZE,
	       OPT_NO_DQ, OPT_ERASED_SURVIVAL, OPT_ERASED_RESIDUAL, OPT_MIN_SURVIVAL, OPT_GATE0 };
	static const struct option longopts[] = {
		{"html", required_argument, NULL, 'o'},
		{"csv", no_argument, NULL, OPT_CSV},
		{"tensor", required_argument, NULL, OPT_TENSOR},
		{"top", required_argument, NULL, OPT_TOP},
		/* a mode, not an option with a value: PATH is the operand, so that --verify --json PATH and
		 * --json --verify PATH and --verify PATH --json are the same */
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"adapter", required_argument, NULL, OPT_ADAPTER},
		{"quant-type", required_argument, NULL, OPT_QTYPE},
		{"blocksize", required_argument, NULL, OPT_BLOCKSIZE},
		{"no-double-quant", no_argument, NULL, OPT_NO_DQ},
		{"erased-survival", required_argument, NULL, OPT_ERASED_SURVIVAL},
		{"erased-residual", required_argument, NULL, OPT_ERASED_RESIDUAL},
		{"min-survival", required_argument, NULL, OPT_MIN_SURVIVAL},
		{"max-rel-err", required_argument, NULL, OPT_GATE0 + QI_GATE_MAX_REL_ERR},
		{"max-rmse", required_argument, NULL, OPT_GATE0 + QI_GATE_MAX_RMSE},
		{"max-abs-err", required_argument, NULL, OPT_GATE0 + QI_GATE_MAX_ABS_ERR},
		{"min-snr", required_argument, NULL, OPT_GATE0 + QI_GATE_MIN_SNR},
		{"min-cosine", required_argument, NULL, OPT_GATE0 + QI_GATE_MIN_COSINE},
		CLI_COMMON_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	*o = (options){.top = 10, .adapter = {.rq.quant = {LQ_QTYPE_NF4, 64, true}, .limits = FIDELITY_LIMITS_DEFAULT},
		       .common = {.device = cli_default_device()}};
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
		case OPT_ADAPTER:
			merge_request_add_adapter(&o->adapter.rq, optarg);
			break;
		case OPT_QTYPE:
			if (!cli_parse_qtype(optarg, &o->adapter.rq.quant.qtype))
				cli_usage_error("invalid --quant-type '%s' (nf4 or fp4)", optarg);
			o->qtype_set = true;
			break;
		case OPT_BLOCKSIZE:
			if (!cli_parse_int(optarg, LQ_BLOCKSIZE_MIN, LQ_BLOCKSIZE_MAX, &v) || !lq_blocksize_valid(v))
				cli_usage_error("invalid --blocksize '%s' (a power of two from 32 to 4096)", optarg);
			o->adapter.rq.quant.blocksize = (int32_t)v;
			o->blocksize_set = true;
			break;
		case OPT_NO_DQ:
			o->adapter.rq.quant.double_quant = false;
			o->no_double_quant = true;
			break;
		case OPT_ERASED_SURVIVAL:
			o->adapter.limits.min_survival = fidelity_parse_threshold("--erased-survival", optarg);
			o->thresholds_set = true;
			break;
		case OPT_ERASED_RESIDUAL:
			o->adapter.limits.max_residual = fidelity_parse_threshold("--erased-residual", optarg);
			o->thresholds_set = true;
			break;
		case OPT_MIN_SURVIVAL:
			o->adapter.min_survival = fidelity_parse_threshold("--min-survival", optarg);
			o->adapter.min_survival_set = o->thresholds_set = true;
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
	if (!o->adapter.rq.nadapters) {
		/* what only --adapter uses would be ignored without a word */
		const char *adapter_only = o->qtype_set ? "--quant-type" : o->blocksize_set ? "--blocksize" : o->no_double_quant
					   ? "--no-double-quant" : o->thresholds_set ? "--erased-survival, --erased-residual and --min-survival"
					   : NULL;
		if (adapter_only)
			cli_usage_error("%s %s only with --adapter", adapter_only, strchr(adapter_only, ',') ? "apply" : "applies");
	} else {
		if (o->verify)
			cli_usage_error("--verify does not take --adapter");
		for (int g = 0; g < QI_NGATES; g++)
			if (o->gate_set[g])
				cli_usage_error("--%s does not apply to --adapter (its gate is --min-survival)",
						qi_gate_option((qi_gate_kind)g));
		if (optind >= argc)
			cli_usage_error("no BASE given (qinspect --adapter ADAPTER BASE [MERGED])");
		o->adapter.base = argv[optind++];
		if (optind < argc)
			o->adapter.merged = argv[optind++];
		if (optind < argc)
			cli_usage_error("at most BASE and MERGED, got '%s' too", argv[optind]);
		if (o->csv && o->common.json)
			cli_usage_error("--json and --csv both write to standard output: choose one");
		if (strcmp(o->adapter.base, "-") == 0 || (o->adapter.merged && strcmp(o->adapter.merged, "-") == 0))
			cli_usage_error("standard input and output are not supported as files");
		o->adapter.html = o->html;
		o->adapter.csv = o->csv;
		o->adapter.top = o->top;
		o->adapter.globs = o->tensor_globs;
		o->adapter.nglobs = o->ntensor_globs;
		o->adapter.common = &o->common;
		return;
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

/* Everything about a tensor that its listing tells (a 4-bit tensor's codes and scales come with its task's
 * result). */
static void describe(const hf_tensor *h, qi_tensor *t)
{
	t->name = h->name;
	t->ndim = h->ndim < QI_MAX_DIMS ? h->ndim : QI_MAX_DIMS;
	memcpy(t->shape, h->shape, sizeof t->shape[0] * (size_t)t->ndim);
	t->params = h->nelem;
	t->layer = hf_layer_of(h->name);
	t->err.max_abs_err_index = -1;
	if (!h->quantized) {
		t->dtype = h->dtype == LQ_DTYPE_U8 ? st_dtype_name(h->data.t->dtype) : lq_dtype_torch_name(h->dtype);
		snprintf(t->storage, sizeof t->storage, "%s",
			 h->dtype == LQ_DTYPE_U8 ? st_dtype_name(h->data.t->dtype) : dtype_short(h->dtype));
		t->bytes.codes = h->bytes;
		qi_tensor_bits(t);
		return;
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
}

/* ----------------------------------------------------------------------------- comparing */

/* How the executor reads tensor h: its input (the float data, or a 4-bit group's codes, with its constants
 * as side inputs). False when memory runs out. */
static bool read_as(const hf_tensor *h, st_source *src, int32_t *input, uint64_t *bytes, lq_tensor_in *in)
{
	if (!h->quantized) {
		*input = st_source_add(src, h->data.f, h->data.t, false);
		*bytes = h->data.t->end - h->data.t->begin;
		*in = (lq_tensor_in){.dtype = h->dtype};
		return *input >= 0;
	}
	const bnb_state *s = &h->state;
	const hf_ref *codes = &h->parts[BNB_PART_WEIGHT], *absmax = &h->parts[BNB_PART_ABSMAX];
	const hf_ref *nested = &h->parts[BNB_PART_NESTED_ABSMAX];
	*input = st_source_add(src, codes->f, codes->t, false);
	*bytes = codes->t->end - codes->t->begin;
	*in = (lq_tensor_in){.dtype = s->dtype, .quantized = true, .quant = {s->qtype, s->blocksize, s->double_quant},
			     .offset = s->nested_offset, .absmax_input = st_source_add(src, absmax->f, absmax->t, false),
			     .nested_input = s->double_quant ? st_source_add(src, nested->f, nested->t, false) : -1};
	return *input >= 0 && in->absmax_input >= 0 && (!s->double_quant || in->nested_input >= 0);
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

/* The report as the tasks complete: the executor's sink (COMPARE tasks write nothing; their results come
 * to task_done, in task order). -v names each tensor once the tensors before it in the reading order are
 * done. */
typedef struct report_sink {
	qi_report *r;
	const work_item *work;
	size_t nwork;
	const lq_task *tasks;
	const size_t *item_of; /* per task: its work item */
	size_t shown;          /* the work items named so far */
} report_sink;

static void show_until(report_sink *k, size_t item)
{
	for (; k->shown < item && k->shown < k->nwork; k->shown++) {
		char q[512];
		cli_info(1, "%s", shown(k->work[k->shown].h->name, q, sizeof q));
	}
}

static lq_status report_write(void *self, int32_t output, uint64_t offset, const void *src, size_t len)
{
	(void)self, (void)output, (void)offset, (void)src, (void)len;
	return LQ_ERR_ARG; /* nothing is written */
}

static lq_status report_task_done(void *self, const lq_task *task, const lq_task_result *res)
{
	report_sink *k = self;
	const size_t item = k->item_of[task - k->tasks];
	const work_item *w = &k->work[item];
	qi_tensor *t = &k->r->tensors[w->slot];
	show_until(k, item + 1);
	if (w->h->quantized) {
		memcpy(t->code_histogram, res->code_histogram, sizeof t->code_histogram);
		t->code_entropy = qi_code_entropy(t->code_histogram, t->params);
		qi_tensor_absmax(t, res->x_absmax, (uint64_t)res->x_nblocks);
	}
	if (task->compare.ref_input >= 0)
		qi_error_take_sums(&t->err, &res->sums, res->nonfinite_x, res->nonfinite_ref, res->first_nonfinite);
	return LQ_OK;
}

static const char *report_error(void *self)
{
	(void)self;
	return "";
}

static bool on_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	cli_progress("comparing", done, total);
	return !cli_interrupted();
}

/* Reads what the report needs of the work items, in their order: a task for each that has a reference to
 * be compared with or is 4-bit (a float tensor described alone needs nothing but its listing). */
static lq_status inspect(lq_ctx *ctx, qi_report *r, const work_item *work, size_t nwork, char *err)
{
	st_source *src = st_source_create();
	lq_task *tasks = calloc(nwork + 1, sizeof *tasks);
	size_t *item_of = calloc(nwork + 1, sizeof *item_of);
	lq_status st = src && tasks && item_of ? LQ_OK : fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	size_t n = 0;
	for (size_t i = 0; i < nwork && st == LQ_OK; i++) {
		const hf_tensor *h = work[i].h, *ref = work[i].ref;
		const bool compared = ref && h->dtype != LQ_DTYPE_U8 && ref->dtype != LQ_DTYPE_U8;
		if (!compared && !h->quantized)
			continue;
		lq_task *t = &tasks[n];
		*t = (lq_task){.op = LQ_OP_COMPARE, .name = h->name, .out_data = -1,
			       .ndim = h->ndim < LQ_MAX_DIMS ? h->ndim : LQ_MAX_DIMS,
			       .compare = {.n = (int64_t)h->nelem, .ref_input = -1}};
		memcpy(t->shape, h->shape, sizeof t->shape[0] * (size_t)t->ndim);
		uint64_t ref_bytes;
		if (!read_as(h, src, &t->input, &t->nbytes, &t->compare.x) ||
		    (compared && !read_as(ref, src, &t->compare.ref_input, &ref_bytes, &t->compare.ref)))
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		t->origin = h->quantized ? h->parts[BNB_PART_WEIGHT].f->path : h->data.f->path;
		item_of[n++] = i;
	}
	report_sink k = {.r = r, .work = work, .nwork = nwork, .tasks = tasks, .item_of = item_of};
	if (st == LQ_OK) {
		lq_source source = st_source_iface(src);
		lq_sink sink = {.self = &k, .write = report_write, .task_done = report_task_done, .error_string = report_error};
		st = lq_execute(ctx, tasks, n, &source, &sink, on_progress, NULL);
		cli_progress_end();
		if (st != LQ_OK)
			fmt_fail(err, st, "%s", st == LQ_ERR_CANCELLED ? "interrupted" : lq_ctx_error_string(ctx));
		else
			show_until(&k, nwork);
	}
	free(item_of);
	free(tasks);
	st_source_free(src);
	return st;
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

/* report_file_write's writer of the HTML page. */
static bool write_html(const void *report, FILE *f)
{
	return qi_write_html(report, f);
}

int main(int argc, char **argv)
{
	cli_init(argv[0]);
	options o;
	parse_args(argc, argv, &o);
	/* what is read, so that no output lands on it, in it or around it */
	report_inputs *inputs = report_inputs_create();
	if (o.adapter.rq.nadapters) {
		cli_install_signals();
		int status = inputs ? qi_adapter_main(&o.adapter, inputs) : CLI_EXIT_FAILURE;
		if (!inputs)
			cli_error("out of memory");
		if (status == CLI_EXIT_OK && fflush(stdout) != 0) {
			cli_error("cannot write to standard output: %s", strerror(errno));
			status = CLI_EXIT_FAILURE;
		}
		report_inputs_free(inputs);
		for (size_t i = 0; i < o.adapter.rq.nadapters; i++)
			free(o.adapter.rq.adapters[i]);
		free(o.adapter.rq.adapters);
		free(o.adapter.rq.weights);
		free(o.tensor_globs);
		return status;
	}
	if (!inputs || !report_inputs_add_path(inputs, o.checkpoint) || (o.reference && !report_inputs_add_path(inputs, o.reference))) {
		cli_error("out of memory");
		report_inputs_free(inputs);
		return CLI_EXIT_FAILURE;
	}
	if (o.verify) {
		int v = report_stdout_ok(inputs) ? qi_verify(o.checkpoint, o.common.json) : CLI_EXIT_FAILURE;
		if (fflush(stdout) != 0) {
			cli_error("cannot write to standard output: %s", strerror(errno));
			v = CLI_EXIT_FAILURE;
		}
		report_inputs_free(inputs);
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
	lq_ctx *ctx = NULL;
	if (!mc || (o.reference && !mr)) {
		cli_error("out of memory");
		goto finish;
	}
	/* refused before anything is read (`--json X > X` has emptied X already: say so, not that X is
	 * short), and again with every file the inputs lead to */
	if (!report_stdout_ok(inputs) || (o.html && !report_file_ok(inputs, "--html file", o.html, o.common.force)))
		goto finish;
	if (hf_model_open(mc, o.checkpoint) != LQ_OK) {
		cli_error("%s", mc->err);
		goto finish;
	}
	if (mr && hf_model_open(mr, o.reference) != LQ_OK) {
		cli_error("%s", mr->err);
		goto finish;
	}
	if (!report_inputs_add_model(inputs, mc) || (mr && !report_inputs_add_model(inputs, mr))) {
		cli_error("out of memory");
		goto finish;
	}
	if (!report_stdout_ok(inputs) || (o.html && !report_file_ok(inputs, "--html file", o.html, o.common.force)))
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
	const lq_work dwork = device_work_inspect(&tc, mr ? &tr : NULL);
	lq_ctx_set_work(ctx, &dwork);
	if (!o.common.dry_run && lq_ctx_use_device(ctx, o.common.device) != LQ_OK) {
		cli_error("--device %s: %s", o.common.device, lq_ctx_error_string(ctx));
		goto finish;
	}
	r.device = lq_ctx_device_note(ctx);
	cli_device_why(ctx);
	cli_info(1, "compute: %s; %s kernels, %d thread%s", r.device, lq_ctx_backend_name(ctx), lq_ctx_threads(ctx),
		 lq_ctx_threads(ctx) == 1 ? "" : "s");
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
	for (size_t w = 0; w < nwork; w++)
		describe(work[w].h, &r.tensors[work[w].slot]);
	if (inspect(ctx, &r, work, nwork, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
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
	if (o.html && !report_file_write(o.html, "--html file", o.common.force, inputs, write_html, &r))
		goto finish;
	report_gates(&r);
	status = r.passed ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
finish:
	free(work);
	free_report(&r);
	hf_tensors_free(&tc);
	hf_tensors_free(&tr);
	lq_ctx_free(ctx);
	hf_model_free(mc);
	hf_model_free(mr);
	report_inputs_free(inputs);
	free(o.tensor_globs);
	return status;
}
