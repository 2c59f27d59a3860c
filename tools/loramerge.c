/*
 * loramerge: PEFT LoRA adapters merged into a base checkpoint, as PEFT's merge_and_unload() computes them.
 *
 * The base is a float checkpoint (merged as is), or a bitsandbytes 4-bit one (dequantized exactly, then
 * merged); --base-as nf4|fp4 merges into the 4-bit quantize-dequantize of a float base (what a QLoRA
 * adapter saw in training), each weight quantized by the merge itself first; --requantize writes a 4-bit
 * checkpoint again (PEFT's 4-bit merge). The composition of DESIGN.md: open the base and the adapters
 * (headers and configs only), plan every output tensor, stream through libquant's executor (LQ_OP_MERGE,
 * COPY, QUANTIZE4), write index, config.json and the carried files, rename into place.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bnb.h"
#include "cli.h"
#include "fidelity.h"
#include "hf_json.h"
#include "hf_model.h"
#include "hf_select.h"
#include "hf_tensors.h"
#include "libquant.h"
#include "lora_combine.h"
#include "out_model.h"
#include "peft.h"
#include "report_file.h"
#include "run.h"
#include "st_exec.h"

typedef struct options {
	const char *base, *output;
	char **adapters;
	double *weights;
	size_t nadapters;
	peft_key_map *maps;
	char **map_regexes; /* what maps[i].regex points to, owned */
	size_t nmaps;
	bool base_as, requantize, no_double_quant, blocksize_set, qtype_set;
	lq_quant_params quant; /* --base-as / --requantize: type, blocksize, double quantization */
	bool dtype_set;
	lq_dtype dtype;
	const char *fidelity;    /* --fidelity REPORT */
	bool min_survival_set;
	double min_survival;     /* --min-survival: the gate */
	fidelity_limits limits;  /* --erased-survival, --erased-residual */
	bool keep_auto;          /* --keep-float auto: the erased modules */
	const char **keep;       /* --keep-float GLOB...: the modules named */
	size_t nkeep;
	cli_output out;          /* --max-shard-size, --shard, --finish, --zstd-level */
	cli_common common;      /* -T, --device, -f, -n, --json */
} options;

typedef hf_ref ref; /* where a tensor's bytes are: a file of the base or of an adapter */

typedef enum action { ACT_COPY, ACT_MERGE, ACT_QUANTIZE, ACT_COPY_GROUP } action;

/* One tensor of the output model (a 4-bit group counts as one). */
typedef struct item {
	char *name;            /* e.g. "model.layers.0.self_attn.q_proj.weight" */
	size_t shard;          /* input shard, for the default layout */
	action act;
	ref data;              /* float tensor, or the codes of a 4-bit group */
	bool quantized_in;     /* data is a 4-bit group */
	bool base_as;          /* --base-as: a float weight read as its 4-bit form (in_state), quantized first */
	bnb_state in_state;    /* its state */
	ref absmax, nested, parts[BNB_NPARTS]; /* the group's parts, for copying it whole */
	lq_dtype dtype;        /* the float type of the tensor (a group: of its dequantized values) */
	int ndim;
	int64_t shape[BNB_MAX_DIMS];
	st_dtype st_dtype;     /* a copied tensor's own type */
	lq_lora loras[16];
	size_t nloras;
	const char *lora_src[16];
	int32_t lora_a[16], lora_b[16], lora_m[16]; /* source ids, filled when tasks are built */
	ref lora_refs[16][3];
	bool quantized_out;    /* written as a 4-bit group */
	bool keep_float;       /* --keep-float: left in float though --requantize would quantize it */
	bnb_state out_state;
	lq_dtype out_dtype;    /* a float output's type */
	uint64_t bytes_out;
	size_t out_shard;
	int32_t wid[BNB_NPARTS], sid[BNB_NPARTS];
	bool is_new;           /* not in the base (a tied head given its own weights) */
	bool replaced;         /* data is an adapter's tensor (modules_to_save, a saved base layer) */
	lq_dtype model_dtype;  /* a replaced tensor's type in the base: PEFT loads the replacement into it */
	const int64_t *replace_rows; /* trainable tokens: rows replaced by those of replace_data */
	size_t nreplace;
	ref replace_data;
} item;

typedef struct plan {
	item *items;
	size_t n, cap;
	out_model om;
	run_tasks run;         /* what fills it */
	uint64_t params_in, bytes_in;
	size_t nmerged;        /* tensors an adapter's LoRA changes */
	size_t nreplaced;      /* tensors an adapter's saved tensor replaces (merged into or not) */
	size_t nreplaced_merged; /* of those, merged into too */
	size_t ndequantized, nquantized, nconverted, ncopied; /* the others: what became of them */
	bool untie;            /* a tied output head gets its own weights */
	bool base_quantized;   /* the base is a bitsandbytes 4-bit checkpoint */
	char **skip;           /* --requantize of a float base: llm_int8_skip_modules to write */
	size_t nskip;
	bool measure;          /* the merges' fidelity is measured (fidelity.h) */
	size_t nkept;          /* modules --keep-float leaves in float */
	lq_quant_params measure_quant; /* a float base merged as it is: the 4-bit form measured against */
	fidelity_report fid;   /* what the merges kept, per module */
	char *origin_text[8];  /* the options that shape the bytes, for the MANIFEST */
	const char *origin_values[9];
} plan;

static void usage(void)
{
	printf("Usage: %s [OPTION]... BASE ADAPTER[:WEIGHT]... -o OUTPUT\n"
	       "Merge PEFT LoRA adapters into a base checkpoint, as PEFT's merge_and_unload() does.\n"
	       "\n"
	       "BASE, the model, comes first: a model directory, an index.json, a .safetensors file or a bundle\n"
	       "(.tar.zst, .tar), in bf16/fp16/fp32 or bitsandbytes 4-bit (dequantized exactly first).\n"
	       "ADAPTER is a PEFT adapter directory (or its adapter_config.json, or a bundle of it); WEIGHT, a\n"
	       "finite number after the last ':', scales it (default 1; an ADAPTER path that exists with its ':'\n"
	       "is a path). Several adapters merge one after another, in the order given.\n"
	       "\n"
	       "  -o, --output PATH        where to write: a model directory, a .safetensors file or a bundle\n"
	       "                           (.tar.zst or .tar: one reproducible archive) (required)\n"
	       "      --base-as TYPE       nf4 or fp4: merge into the 4-bit quantize-dequantize of a float base\n"
	       "                           (what an adapter trained with QLoRA saw)\n"
	       "      --requantize         write a bitsandbytes 4-bit checkpoint again (PEFT's 4-bit merge)\n"
	       "      --quant-type TYPE    nf4 (default) or fp4, for --requantize of a float base\n"
	       "      --blocksize N        elements per block: 32, 64 (default), 128, ..., 4096, with\n"
	       "                           --base-as or --requantize of a float base\n"
	       "      --no-double-quant    with --base-as or --requantize of a float base\n"
	       "      --dtype T            bf16, fp16 or fp32: the merged model's type (default: the base's)\n"
	       "      --fidelity REPORT    write what the merge kept of each adapter's change, per module, layer\n"
	       "                           and overall, as JSON (qinspect's fidelity object) to REPORT\n"
	       "      --min-survival X     fail (exit 1, nothing written but the report) when a module keeps less\n"
	       "                           than X of its change (survival)\n"
	       "      --erased-survival X  a module is erased below this survival (default 0.5)\n"
	       "      --erased-residual X  ... or above this residual (default 1)\n"
	       "      --keep-float auto|GLOB  with --requantize: leave the erased modules (auto: measured by a\n"
	       "                           first merge), or the modules GLOB names, in float; repeatable\n"
	       "      --key-map RE=REPL    rewrite adapter module paths (POSIX regex, \\1..\\9), repeatable\n"
	       "      --combine TYPE       no BASE: combine the ADAPTERs into one adapter, as PEFT's\n"
	       "                           add_weighted_adapter (--density, --majority-sign-method, --svd-rank,\n"
	       "                           --svd-clamp, --seed; see loramerge --combine TYPE --help)\n"
	       "      --max-shard-size SIZE  output shards of at most SIZE (default: the base's layout)\n"
	       "      --shard I/N          write only part I of N of the output shards into the OUTPUT directory\n"
	       "      --finish             complete an OUTPUT directory of parts: index, config, MANIFEST\n"
	       "      --zstd-level N       compression level of a .tar.zst OUTPUT (1..19, default 3)\n"
	       "      --device DEV         cpu, cuda, cuda:N, all or auto (default); the output is the same\n"
	       "  -T, --threads N          compute threads (0 = one per core, the default)\n"
	       "  -f, --force              replace OUTPUT if it exists\n"
	       "  -n, --dry-run            print the plan on standard output (what each tensor gets, sizes,\n"
	       "                           memory); write nothing\n"
	       "      --json               a machine-readable summary (with -n: the plan) on standard output,\n"
	       "                           and nothing else there\n"
	       "  -q, --quiet              only errors\n"
	       "  -v, --verbose            one line per tensor; -vv: where the time went\n"
	       "  -h, --help               this help\n"
	       "  -V, --version            version\n"
	       "\n"
	       "Standard input and output ('-') are not read or written: a merge reads the base by tensor name.\n"
	       "Exit status: 0 success, 1 failure, 2 usage error.\n",
	       cli_progname());
}

/* ADAPTER[:WEIGHT]. An argument that exists as a path is a path, ':' and all. Otherwise what follows its
 * last ':' is the weight, a finite number; anything else there is a usage error that says so (a path
 * that does not exist, or a weight that is not a number: either way the argument is wrong). */
static void add_adapter(options *o, const char *arg)
{
	char **a = realloc(o->adapters, (o->nadapters + 1) * sizeof *a);
	double *w = realloc(o->weights, (o->nadapters + 1) * sizeof *w);
	char *path = strdup(arg);
	if (!a || !w || !path) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAILURE);
	}
	o->adapters = a;
	o->weights = w;
	double weight = 1.0;
	const char *colon = strrchr(arg, ':');
	struct stat sb;
	if (colon && stat(arg, &sb) != 0) {
		const char *num = colon + 1;
		char *end = NULL;
		double v = 0;
		if (*num && !isspace((unsigned char)*num))
			v = strtod(num, &end);
		if (!end || end == num || *end)
			cli_usage_error("'%s' does not exist, and '%s' after its last ':' is not a weight (ADAPTER:WEIGHT takes "
					"a number)", arg, num);
		/* the scaling it multiplies is a float32 */
		if (!isfinite(v) || fabs(v) > FLT_MAX)
			cli_usage_error("invalid weight '%s' in '%s' (a finite number, within float32's range)", num, arg);
		path[colon - arg] = '\0';
		weight = v;
		if (weight == 0)
			cli_warn("'%s': weight 0: the adapter's low-rank updates add nothing", arg);
	}
	o->adapters[o->nadapters] = path;
	o->weights[o->nadapters++] = weight;
}

static void add_key_map(options *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		cli_usage_error("invalid --key-map '%s' (REGEX=REPLACEMENT)", arg);
	peft_key_map *m = realloc(o->maps, (o->nmaps + 1) * sizeof *m);
	char **owned = realloc(o->map_regexes, (o->nmaps + 1) * sizeof *owned);
	char *re = strndup(arg, (size_t)(eq - arg));
	if (!m || !owned || !re) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAILURE);
	}
	o->maps = m;
	o->map_regexes = owned;
	o->map_regexes[o->nmaps] = re;
	o->maps[o->nmaps++] = (peft_key_map){re, eq + 1};
}

/* A finite number for a fidelity threshold (survival may be negative: a change reversed). */
static double parse_fraction(const char *option, const char *arg)
{
	char *end = NULL;
	double v = strtod(arg, &end);
	if (!*arg || isspace((unsigned char)*arg) || !end || *end || !isfinite(v))
		cli_usage_error("invalid %s '%s' (a number, e.g. 0.5)", option, arg);
	return v;
}

static void parse_args(int argc, char **argv, options *o)
{
	enum { OPT_BASE_AS = 256, OPT_REQUANT, OPT_QTYPE, OPT_BLOCKSIZE, OPT_NO_DQ, OPT_DTYPE, OPT_KEYMAP, OPT_FIDELITY,
	       OPT_MIN_SURVIVAL, OPT_ERASED_SURVIVAL, OPT_ERASED_RESIDUAL, OPT_KEEP_FLOAT };
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"base-as", required_argument, NULL, OPT_BASE_AS},
		{"requantize", no_argument, NULL, OPT_REQUANT},
		{"quant-type", required_argument, NULL, OPT_QTYPE},
		{"blocksize", required_argument, NULL, OPT_BLOCKSIZE},
		{"no-double-quant", no_argument, NULL, OPT_NO_DQ},
		{"dtype", required_argument, NULL, OPT_DTYPE},
		{"key-map", required_argument, NULL, OPT_KEYMAP},
		{"fidelity", required_argument, NULL, OPT_FIDELITY},
		{"min-survival", required_argument, NULL, OPT_MIN_SURVIVAL},
		{"erased-survival", required_argument, NULL, OPT_ERASED_SURVIVAL},
		{"erased-residual", required_argument, NULL, OPT_ERASED_RESIDUAL},
		{"keep-float", required_argument, NULL, OPT_KEEP_FLOAT},
		CLI_OUTPUT_LONGOPTS,
		CLI_COMMON_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	*o = (options){.quant = {LQ_QTYPE_NF4, 64, true}, .limits = FIDELITY_LIMITS_DEFAULT, .out = CLI_OUTPUT_DEFAULTS,
		       .common = {.device = "auto"}};
	long v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:T:fnqvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case OPT_BASE_AS:
			if (!cli_parse_qtype(optarg, &o->quant.qtype))
				cli_usage_error("invalid --base-as '%s' (nf4 or fp4)", optarg);
			o->base_as = o->qtype_set = true;
			break;
		case OPT_REQUANT:
			o->requantize = true;
			break;
		case OPT_QTYPE:
			if (!cli_parse_qtype(optarg, &o->quant.qtype))
				cli_usage_error("invalid --quant-type '%s' (nf4 or fp4)", optarg);
			o->qtype_set = true;
			break;
		case OPT_BLOCKSIZE:
			if (!cli_parse_int(optarg, LQ_BLOCKSIZE_MIN, LQ_BLOCKSIZE_MAX, &v) || !lq_blocksize_valid(v))
				cli_usage_error("invalid --blocksize '%s' (a power of two from 32 to 4096)", optarg);
			o->quant.blocksize = (int32_t)v;
			o->blocksize_set = true;
			break;
		case OPT_NO_DQ:
			o->quant.double_quant = false;
			o->no_double_quant = true;
			break;
		case OPT_DTYPE:
			if (!cli_parse_float_dtype(optarg, &o->dtype))
				cli_usage_error("invalid --dtype '%s' (bf16, fp16 or fp32)", optarg);
			o->dtype_set = true;
			break;
		case OPT_KEYMAP:
			add_key_map(o, optarg);
			break;
		case OPT_FIDELITY:
			if (!*optarg)
				cli_usage_error("empty --fidelity REPORT");
			o->fidelity = optarg;
			break;
		case OPT_MIN_SURVIVAL:
			o->min_survival = parse_fraction("--min-survival", optarg);
			o->min_survival_set = true;
			break;
		case OPT_ERASED_SURVIVAL:
			o->limits.min_survival = parse_fraction("--erased-survival", optarg);
			break;
		case OPT_ERASED_RESIDUAL:
			o->limits.max_residual = parse_fraction("--erased-residual", optarg);
			break;
		case OPT_KEEP_FLOAT:
			if (strcmp(optarg, "auto") == 0) {
				o->keep_auto = true;
			} else if (!*optarg) {
				cli_usage_error("empty --keep-float (auto, or a glob of module names)");
			} else {
				const char **k = realloc(o->keep, (o->nkeep + 1) * sizeof *k);
				if (!k) {
					cli_error("out of memory");
					exit(CLI_EXIT_FAILURE);
				}
				o->keep = k;
				o->keep[o->nkeep++] = optarg;
			}
			break;
		default:
			if (!cli_output_option(c, &o->out))
				cli_common_option(c, argv, &o->common, usage);
		}
	}
	if (optind >= argc)
		cli_usage_error("no BASE given");
	if (optind + 1 >= argc)
		cli_usage_error("no ADAPTER given");
	o->base = argv[optind++];
	for (; optind < argc; optind++)
		add_adapter(o, argv[optind]);
	if (!o->output)
		cli_usage_error("no OUTPUT given (-o)");
	if (!*o->output)
		cli_usage_error("empty OUTPUT (-o '')");
	if ((o->keep_auto || o->nkeep) && !o->requantize)
		cli_usage_error("--keep-float chooses what --requantize leaves in float: without it the output is float");
	if ((o->fidelity || o->min_survival_set) && o->out.finish)
		cli_usage_error("--fidelity and --min-survival measure merges: --finish merges nothing");
	if (o->fidelity && strcmp(o->fidelity, o->output) == 0)
		cli_usage_error("--fidelity REPORT and OUTPUT are the same path '%s'", o->output);
	if (strcmp(o->output, "-") == 0 || strcmp(o->base, "-") == 0)
		cli_usage_error("standard input and output ('-') are for nf4quant: a merge reads the base by tensor "
				"name, not in one pass");
}

/* --------------------------------------------------------------------------------- the base */

/* The arguments swapped (loramerge ADAPTER BASE): whether the BASE that did not open as a model is a PEFT
 * adapter, and whether an ADAPTER that did not open as one is a model directory. For the hint only: this
 * runs after the failure, never on the way to a merge. */
static bool is_adapter(const char *path)
{
	char p[4200];
	struct stat sb;
	snprintf(p, sizeof p, "%s/adapter_config.json", path);
	if (stat(p, &sb) == 0 || fmt_ends_with(path, "adapter_config.json") || fmt_ends_with(path, "adapter_model.safetensors"))
		return true;
	peft_adapter *pa = peft_adapter_create();
	bool ok = pa && peft_adapter_open(pa, path, NULL, 0) == LQ_OK;
	peft_adapter_free(pa);
	return ok;
}

static bool is_model_dir(const char *path)
{
	hf_model *m = hf_model_create();
	bool ok = m && hf_model_open(m, path) == LQ_OK && m->is_model_dir;
	hf_model_free(m);
	return ok;
}

static item *new_item(plan *p)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 256;
		item *it = realloc(p->items, cap * sizeof *it);
		if (!it)
			return NULL;
		p->items = it;
		p->cap = cap;
	}
	item *it = &p->items[p->n++];
	memset(it, 0, sizeof *it);
	for (int k = 0; k < BNB_NPARTS; k++)
		it->wid[k] = it->sid[k] = -1;
	return it;
}

/* The base's tensors as items: plain tensors, and each 4-bit group as one item (its parts found by name,
 * in whatever shard they are). */
/* One item per logical tensor of the base (a 4-bit group is one, its parts found and checked by
 * formats/hf_tensors.c). */
static lq_status plan_base(const hf_tensors *ts, plan *p, char *err)
{
	p->base_quantized = ts->any_quantized;
	for (size_t i = 0; i < ts->n; i++) {
		const hf_tensor *h = &ts->v[i];
		item *it = new_item(p);
		if (!it || !(it->name = strdup(h->name)))
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		it->shard = h->shard;
		it->data = h->data;
		it->ndim = h->ndim;
		memcpy(it->shape, h->shape, sizeof it->shape);
		it->st_dtype = h->data.t->dtype;
		it->dtype = h->dtype;
		p->bytes_in += h->bytes;
		p->params_in += h->nelem;
		if (!h->quantized)
			continue;
		it->quantized_in = true;
		it->in_state = h->state;
		memcpy(it->parts, h->parts, sizeof it->parts);
		it->absmax = h->parts[BNB_PART_ABSMAX];
		it->nested = h->parts[BNB_PART_NESTED_ABSMAX];
	}
	return LQ_OK;
}

static item *find_item(plan *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->items[i].name, name) == 0)
			return &p->items[i];
	return NULL;
}

/* Checks an adapter tensor holds only finite values (a NaN would spread over a whole weight). */
static lq_status check_finite(const ref *r, const char *adapter, char *err)
{
	lq_dtype dt;
	if (!st_dtype_to_lq(r->t->dtype, &dt) || dt == LQ_DTYPE_U8)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, not a floating type", adapter, r->t->name,
				st_dtype_name(r->t->dtype));
	void *data;
	size_t len = 0;
	lq_status st = hf_ref_read(r, &data, &len, err);
	if (st != LQ_OK)
		return st;
	size_t n = len / lq_dtype_size(dt);
	for (size_t i = 0; i < n; i++) {
		float v;
		if (dt == LQ_DTYPE_F32)
			memcpy(&v, (char *)data + 4 * i, 4);
		else {
			uint16_t h;
			memcpy(&h, (char *)data + 2 * i, 2);
			v = dt == LQ_DTYPE_BF16 ? lq_bf16_to_f32(h) : lq_f16_to_f32(h);
		}
		if (!isfinite(v)) {
			free(data);
			return fmt_fail(err, LQ_ERR_NONFINITE, "%s: tensor '%s': element %zu is not finite", adapter, r->t->name, i);
		}
	}
	free(data);
	return LQ_OK;
}

/* LoRA's own bias (lora_bias): lora_B.bias times the scaling, added to the module's base bias. */
static lq_status plan_lora_bias(const char *adapter, const peft_adapter *pa, const peft_module *pm, double weight,
				plan *p, char *err)
{
	char name[4200];
	snprintf(name, sizeof name, "%s.bias", pm->module);
	item *it = find_item(p, name);
	if (pm->kind != PEFT_LINEAR)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s': a LoRA bias on an embedding is not supported", adapter,
				pm->module);
	if (!it)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s' has a LoRA bias, but the base has no '%s' to add it to",
				adapter, pm->module, name);
	uint64_t n = 1;
	for (int d = 0; d < it->ndim; d++)
		n *= (uint64_t)it->shape[d];
	lq_dtype bdt;
	if (it->dtype == LQ_DTYPE_U8 || it->quantized_in || n != pm->bias->nelem ||
	    !st_dtype_to_lq(pm->bias->dtype, &bdt) || bdt == LQ_DTYPE_U8)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: '%s': the LoRA bias (%" PRIu64 " elements) does not fit the base's "
				"'%s' (%" PRIu64 ")", adapter, pm->module, pm->bias->nelem, name, n);
	if (it->nloras == sizeof it->loras / sizeof *it->loras)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "'%s': more than 16 adapters change it", name);
	if (it->replaced && it->dtype != it->model_dtype)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s' is replaced by a %s tensor and then merged: not supported",
				adapter, name, lq_dtype_torch_name(it->dtype));
	it->lora_refs[it->nloras][0] = (ref){pa->st, pm->bias};
	it->lora_refs[it->nloras][1] = (ref){NULL, NULL};
	it->lora_refs[it->nloras][2] = (ref){NULL, NULL};
	lq_status st = check_finite(&it->lora_refs[it->nloras][0], adapter, err);
	if (st != LQ_OK)
		return st;
	it->loras[it->nloras] = (lq_lora){.layout = LQ_LORA_VECTOR, .rank = 1, .scaling = (float)(pm->scaling * weight),
					  .ab_dtype = bdt, .b_input = -1, .magnitude_input = -1};
	it->lora_src[it->nloras++] = adapter;
	it->act = ACT_MERGE;
	return LQ_OK;
}

/* Trainable tokens: rows of an embedding replaced by the adapter's (cast to the embedding's type). */
static lq_status plan_token_rows(const char *adapter, const peft_adapter *pa, const peft_replacement *r, plan *p,
				 char *err)
{
	item *it = find_item(p, r->target);
	if (!it)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter has trainable tokens for '%s', which the base does not "
				"have", adapter, r->target);
	lq_dtype rdt;
	if (it->dtype == LQ_DTYPE_U8 || it->quantized_in || it->ndim != 2 || r->t->ndim != 2 ||
	    r->t->shape[1] != it->shape[1] || (uint64_t)r->t->shape[0] != r->nrows || !st_dtype_to_lq(r->t->dtype, &rdt) ||
	    rdt == LQ_DTYPE_U8)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the trainable token rows of '%s' do not fit it", adapter, r->target);
	for (size_t i = 0; i < r->nrows; i++)
		if (r->rows[i] < 0 || r->rows[i] >= it->shape[0])
			return fmt_fail(err, LQ_ERR_CORRUPT, "%s: trainable token %" PRId64 " is outside '%s' (%" PRId64 " rows)",
					adapter, r->rows[i], r->target, it->shape[0]);
	if (it->nloras || it->nreplace || (it->replaced && it->dtype != it->model_dtype))
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: trainable token rows of '%s', which another adapter or a LoRA "
				"also changes: not supported", adapter, r->target);
	lq_status st = check_finite(&(ref){pa->st, r->t}, adapter, err);
	if (st != LQ_OK)
		return st;
	it->replace_rows = r->rows;
	it->nreplace = r->nrows;
	it->replace_data = (ref){pa->st, r->t};
	return LQ_OK;
}

/* Attaches every adapter's modules to the base's items, in adapter order. */
static lq_status plan_adapters(const options *o, peft_adapter **ad, const hf_select *sel, plan *p, char *err)
{
	for (size_t a = 0; a < o->nadapters; a++) {
		const peft_adapter *pa = ad[a];
		for (size_t w = 0; w < pa->nwarnings; w++)
			cli_warn("%s: %s", o->adapters[a], pa->warnings[w]);
		/* PEFT loads the adapter's whole tensors first (over whatever earlier adapters made of them), then
		 * merges its modules */
		for (size_t k = 0; k < pa->nreplacements; k++) {
			const peft_replacement *r = &pa->replacements[k];
			if (r->rows) {
				lq_status st = plan_token_rows(o->adapters[a], pa, r, p, err);
				if (st != LQ_OK)
					return st;
				continue;
			}
			lq_dtype rdt;
			bool rfloat = st_dtype_to_lq(r->t->dtype, &rdt) && rdt != LQ_DTYPE_U8;
			item *it = find_item(p, r->target);
			if (!it) {
				/* PEFT's tied output head with its own weights (modules_to_save = ["lm_head"]) */
				if (strcmp(r->target, "lm_head.weight") != 0)
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter replaces '%s', which the base does not have",
							o->adapters[a], r->target);
				if (!rfloat)
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: '%s' is %s, not a floating type", o->adapters[a],
							r->target, st_dtype_name(r->t->dtype));
				it = new_item(p);
				if (!it || !(it->name = strdup(r->target)))
					return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
				it->is_new = true;
				it->model_dtype = rdt;
				it->ndim = r->t->ndim;
				memcpy(it->shape, r->t->shape, sizeof it->shape[0] * (size_t)r->t->ndim);
				p->untie = true;
			} else {
				if (it->quantized_in)
					return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: the adapter replaces '%s', which is 4-bit in the base: "
							"not supported", o->adapters[a], r->target);
				if (r->t->ndim != it->ndim ||
				    memcmp(r->t->shape, it->shape, sizeof it->shape[0] * (size_t)it->ndim) != 0)
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter's '%s' has another shape than the base's "
							"(%dD, first dimension %" PRId64 " vs %" PRId64 "; a resized vocabulary?)",
							o->adapters[a], r->target, r->t->ndim, r->t->ndim ? r->t->shape[0] : 0,
							it->ndim ? it->shape[0] : 0);
				bool base_float = it->replaced || it->dtype != LQ_DTYPE_U8;
				if (base_float != rfloat || (!rfloat && r->t->dtype != it->st_dtype))
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter's '%s' is %s, the base's %s", o->adapters[a],
							r->target, st_dtype_name(r->t->dtype), st_dtype_name(it->st_dtype));
				if (!it->replaced)
					it->model_dtype = it->dtype;
			}
			it->replaced = true;
			it->nloras = 0;
			it->nreplace = 0;
			it->act = ACT_COPY;
			it->data = (ref){pa->st, r->t};
			it->dtype = rfloat ? rdt : LQ_DTYPE_U8;
			it->st_dtype = r->t->dtype;
		}
		for (size_t k = 0; k < pa->nmodules; k++) {
			const peft_module *pm = &pa->modules[k];
			item *it = find_item(p, pm->weight);
			if (!it)
				return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter changes '%s', which the base does not have "
						"(an adapter for another model? --key-map renames modules)", o->adapters[a], pm->weight);
			if (it->dtype == LQ_DTYPE_U8 || it->ndim != 2)
				return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter changes '%s', which is not a 2-D float weight",
						o->adapters[a], pm->weight);
			if (it->nreplace)
				return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s' has trainable token rows and a LoRA: not supported",
						o->adapters[a], pm->weight);
			if (it->replaced && it->dtype != it->model_dtype)
				return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s' is replaced by a %s tensor and then merged; PEFT "
						"rounds it to the model's %s first: not supported", o->adapters[a], pm->weight,
						lq_dtype_torch_name(it->dtype), lq_dtype_torch_name(it->model_dtype));
			if (it->nloras == sizeof it->loras / sizeof *it->loras)
				return fmt_fail(err, LQ_ERR_UNSUPPORTED, "'%s': more than 16 adapters change it", pm->weight);
			bool conv1d = false;
			const char *why;
			hf_select_quantize(sel, pm->weight, 2, it->shape, true, &conv1d, &why);
			lq_lora *l = &it->loras[it->nloras];
			/* an embedding's delta is rounded to W's type before the addition (W += D.to(W.dtype)), but
			 * not under DoRA (DoraEmbeddingVariant: magnitude / norm * (W + D), rounded once) */
			*l = (lq_lora){.layout = (pm->kind == PEFT_EMBEDDING || conv1d) ? LQ_LORA_TRANSPOSED : LQ_LORA_ROWS,
				       .rank = pm->rank, .scaling = (float)(pm->scaling * o->weights[a]),
				       .round_delta = pm->kind == PEFT_EMBEDDING && !pm->magnitude, .magnitude_input = -1};
			if (!st_dtype_to_lq(pm->a->dtype, &l->ab_dtype) || l->ab_dtype == LQ_DTYPE_U8 || pm->a->dtype != pm->b->dtype)
				return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s': lora_A and lora_B must share a float type",
						o->adapters[a], pm->module);
			/* shapes: A [r, in], B [out, r] against W [rows, cols] in the layout */
			int64_t in = l->layout == LQ_LORA_ROWS ? it->shape[1] : it->shape[0];
			int64_t out = l->layout == LQ_LORA_ROWS ? it->shape[0] : it->shape[1];
			if (pm->a->ndim != 2 || pm->b->ndim != 2 || pm->a->shape[1] != in || pm->b->shape[0] != out ||
			    pm->b->shape[1] != pm->rank || pm->a->shape[0] != pm->rank)
				return fmt_fail(err, LQ_ERR_CORRUPT, "%s: '%s': lora_A [%" PRId64 ", %" PRId64 "] and lora_B [%" PRId64
						", %" PRId64 "] do not fit the base's [%" PRId64 ", %" PRId64 "] (an adapter for "
						"another model?)", o->adapters[a], pm->module, pm->a->shape[0], pm->a->shape[1],
						pm->b->shape[0], pm->b->shape[1], it->shape[0], it->shape[1]);
			it->lora_refs[it->nloras][0] = (ref){pa->st, pm->a};
			it->lora_refs[it->nloras][1] = (ref){pa->st, pm->b};
			if (pm->magnitude) {
				/* one magnitude per output feature: per row of a Linear's W [out, in]; per column of an
				 * embedding's W [num, dim] or a Conv1D's [in, out] (PEFT norms their transpose) */
				const int by_column = l->layout == LQ_LORA_TRANSPOSED;
				if (pm->magnitude->nelem != (uint64_t)it->shape[by_column] || pm->magnitude->dtype != ST_F32)
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: '%s': the DoRA magnitude is %s [%" PRIu64 "], not "
							"float32 [%" PRId64 "] (one per %s of '%s' [%" PRId64 ", %" PRId64 "])",
							o->adapters[a], pm->module, st_dtype_name(pm->magnitude->dtype),
							pm->magnitude->nelem, it->shape[by_column], by_column ? "column" : "row",
							pm->weight, it->shape[0], it->shape[1]);
				it->lora_refs[it->nloras][2] = (ref){pa->st, pm->magnitude};
				l->magnitude_input = 0; /* set when tasks are built */
			}
			for (int r = 0; r < 3; r++)
				if (it->lora_refs[it->nloras][r].t) {
					lq_status st = check_finite(&it->lora_refs[it->nloras][r], o->adapters[a], err);
					if (st != LQ_OK)
						return st;
				}
			it->lora_src[it->nloras] = o->adapters[a];
			it->nloras++;
			it->act = ACT_MERGE;
			if (pm->bias) {
				lq_status st = plan_lora_bias(o->adapters[a], pa, pm, o->weights[a], p, err);
				if (st != LQ_OK)
					return st;
			}
		}
	}
	return LQ_OK;
}

/* What became of the tensors, for the summaries: those an adapter's LoRA changes (merged), those an
 * adapter's tensor replaces, and of the others those dequantized (a 4-bit base's, or --base-as: the
 * quantize-dequantize of a float one), quantized (--requantize of a float base), converted (--dtype) or
 * copied as they are. */
static void count_actions(plan *p)
{
	p->nmerged = p->nreplaced = p->nreplaced_merged = p->ndequantized = p->nquantized = p->nconverted = p->ncopied = 0;
	for (size_t i = 0; i < p->n; i++) {
		const item *it = &p->items[i];
		p->nreplaced += it->replaced || it->nreplace;
		p->nreplaced_merged += (it->replaced || it->nreplace) && it->nloras;
		if (it->nloras)
			p->nmerged++;
		else if (it->replaced || it->nreplace)
			continue;
		else if (it->act == ACT_QUANTIZE || (it->act == ACT_COPY_GROUP && it->base_as) ||
			 (it->act == ACT_MERGE && it->quantized_out))
			p->nquantized++;
		else if (it->act == ACT_MERGE)
			*(it->quantized_in ? &p->ndequantized : &p->nconverted) += 1;
		else
			p->ncopied++;
	}
}

/* What each item becomes, and its size in the output. */
static lq_status plan_outputs(const options *o, const hf_select *sel, plan *p, char *err)
{
	for (size_t i = 0; i < p->n; i++) {
		item *it = &p->items[i];
		uint64_t n = 1;
		for (int d = 0; d < it->ndim; d++)
			n *= (uint64_t)it->shape[d];
		/* is this weight 4-bit in the output? With --requantize: what was 4-bit, or what transformers
		 * converts (a float base) */
		bool conv1d;
		const char *why;
		bool linear = it->dtype != LQ_DTYPE_U8 &&
			      hf_select_quantize(sel, it->name, it->ndim, it->shape, true, &conv1d, &why);
		it->quantized_out = o->requantize && !it->keep_float && (it->quantized_in || (!p->base_quantized && linear));
		if (it->quantized_out) {
			if (it->quantized_in && it->act != ACT_MERGE) {
				it->act = ACT_COPY_GROUP; /* PEFT leaves it as it was */
				it->out_state = it->in_state;
			} else {
				/* PEFT's 4-bit merge quantizes the float32 sum, so its state records float32; a float base's
				 * untouched weights are quantized from their own type, as nf4quant does */
				lq_quant_params q = it->quantized_in
							    ? (lq_quant_params){it->in_state.qtype, it->in_state.blocksize,
										it->in_state.double_quant}
							    : o->quant;
				it->out_state = (bnb_state){.qtype = q.qtype, .blocksize = q.blocksize,
							    .dtype = it->act == ACT_MERGE ? LQ_DTYPE_F32 : it->dtype,
							    .ndim = it->ndim, .double_quant = q.double_quant,
							    .nested_blocksize = LQ_NESTED_BLOCKSIZE};
				memcpy(it->out_state.shape, it->shape, sizeof it->shape);
				if (it->act != ACT_MERGE)
					it->act = ACT_QUANTIZE;
			}
			it->bytes_out = bnb_group_bytes(&it->out_state, (int64_t)n);
			continue;
		}
		if (it->dtype == LQ_DTYPE_U8) { /* integers and other types: copied */
			it->bytes_out = it->data.t->end - it->data.t->begin;
			continue;
		}
		it->out_dtype = o->dtype_set ? o->dtype : it->replaced ? it->model_dtype : it->dtype;
		if (it->quantized_in && (!o->dtype_set || o->requantize))
			it->out_dtype = it->in_state.dtype; /* a module --keep-float leaves: the type it dequantizes to */
		if (it->act == ACT_COPY && (it->quantized_in || it->out_dtype != it->dtype || it->nreplace))
			it->act = ACT_MERGE; /* dequantize or convert: a merge with no adapter */
		it->bytes_out = n * lq_dtype_size(it->act == ACT_COPY ? it->dtype : it->out_dtype);
		if (it->act == ACT_MERGE && (uint64_t)it->shape[it->ndim > 1 ? 1 : 0] * 4 > ((uint64_t)16 << 20))
			return fmt_fail(err, LQ_ERR_UNSUPPORTED, "'%s': rows of more than 4M elements", it->name);
	}
	count_actions(p);
	return LQ_OK;
}

static lq_status declare_outputs(const options *o, const hf_model *m, plan *p, char *err)
{
	uint64_t *bytes = calloc(p->n + 1, sizeof *bytes);
	size_t *in_shard = calloc(p->n + 1, sizeof *in_shard), *out_shard = calloc(p->n + 1, sizeof *out_shard);
	lq_status st = LQ_OK;
	if (!bytes || !in_shard || !out_shard) {
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n; i++) {
		bytes[i] = p->items[i].bytes_out;
		in_shard[i] = p->items[i].shard;
	}
	size_t nshards = om_assign_shards(o->output, o->out.max_shard_size, bytes, in_shard, p->n, m->nshards, out_shard);
	if ((st = om_init(&p->om, o->output, nshards, err)) != LQ_OK)
		goto out;
	for (size_t i = 0; i < p->n && st == LQ_OK; i++) {
		item *it = &p->items[i];
		it->out_shard = out_shard[i];
		if (!it->quantized_out) {
			st_dtype dt = it->act == ACT_MERGE ? st_dtype_from_lq(it->out_dtype) : it->st_dtype;
			it->wid[0] = om_add(&p->om, it->out_shard, it->name, dt, it->ndim, it->shape, err);
			st = it->wid[0] < 0 ? LQ_ERR_ARG : LQ_OK;
			continue;
		}
		int64_t n = 1;
		for (int d = 0; d < it->ndim; d++)
			n *= it->shape[d];
		/* every part exactly as it was (a --base-as group's, not made yet, is laid out by its state) */
		const st_tensor *as_is[BNB_NPARTS] = {0};
		for (int k = 0; k < BNB_NPARTS && it->act == ACT_COPY_GROUP && !it->base_as; k++)
			as_is[k] = it->parts[k].t;
		st = om_add_group(&p->om, it->out_shard, it->name, &it->out_state, n, as_is, it->wid, err);
	}
	if (st == LQ_OK)
		st = om_layout(&p->om, err);
out:
	free(bytes);
	free(in_shard);
	free(out_shard);
	return st;
}

/* What the MANIFEST records of the options: those that change the output's bytes (the adapters by
 * their weights and order, not their paths), never threads, device or --shard. */
static lq_status set_origin(const options *o, plan *p)
{
	static const char *const keys[] = {"adapter_weights", "key_map", "base_as", "requantize", "quant_type",
					   "blocksize", "double_quant", "dtype", "max_shard_size"};
	cJSON *w = cJSON_CreateArray(), *km = cJSON_CreateArray();
	for (size_t a = 0; w && a < o->nadapters; a++)
		cJSON_AddItemToArray(w, cJSON_CreateNumber(o->weights[a]));
	for (size_t i = 0; km && i < o->nmaps; i++) {
		char *pair = malloc(strlen(o->maps[i].regex) + strlen(o->maps[i].replacement) + 2);
		if (pair) {
			sprintf(pair, "%s=%s", o->maps[i].regex, o->maps[i].replacement);
			cJSON_AddItemToArray(km, cJSON_CreateString(pair));
			free(pair);
		}
	}
	p->origin_text[0] = w ? cJSON_PrintUnformatted(w) : NULL;
	p->origin_text[1] = km ? cJSON_PrintUnformatted(km) : NULL;
	cJSON_Delete(w);
	cJSON_Delete(km);
	char num[32];
	snprintf(num, sizeof num, "%d", (int)o->quant.blocksize);
	p->origin_text[2] = strdup(num);
	snprintf(num, sizeof num, "%" PRIu64, o->out.max_shard_size); /* 0: the base's layout */
	p->origin_text[3] = strdup(num);
	if (!p->origin_text[0] || !p->origin_text[1] || !p->origin_text[2] || !p->origin_text[3])
		return LQ_ERR_NOMEM;
	const char *dtype = !o->dtype_set ? "base" : o->dtype == LQ_DTYPE_BF16 ? "bf16" : o->dtype == LQ_DTYPE_F16 ? "fp16"
			    : "fp32";
	const char *values[] = {p->origin_text[0], p->origin_text[1], o->base_as ? lq_qtype_name(o->quant.qtype) : "no",
				o->requantize ? "true" : "false", lq_qtype_name(o->quant.qtype), p->origin_text[2],
				o->quant.double_quant ? "true" : "false", dtype, p->origin_text[3]};
	memcpy(p->origin_values, values, sizeof values);
	om_set_origin(&p->om, "loramerge", keys, p->origin_values, sizeof keys / sizeof *keys);
	p->om.zstd_level = o->out.zstd_level;
	return LQ_OK;
}

static void plan_free(plan *p)
{
	fidelity_free(&p->fid);
	for (size_t k = 0; k < sizeof p->origin_text / sizeof *p->origin_text; k++)
		free(p->origin_text[k]);
	for (size_t i = 0; i < p->n; i++)
		free(p->items[i].name);
	free(p->items);
	for (size_t i = 0; i < p->nskip; i++)
		free(p->skip[i]);
	free(p->skip);
	run_tasks_free(&p->run);
	om_free(&p->om);
}

/* ---------------------------------------------------------------------------------- reporting */

static const char *act_name(const item *it)
{
	if (it->replaced)
		return it->nloras ? "replace+merge" : "replace";
	if (it->nreplace)
		return "replace-rows"; /* trainable tokens */
	switch (it->act) {
	case ACT_MERGE:
		return it->nloras ? "merge" : it->quantized_out ? "requantize" : it->quantized_in ? "dequantize" : "convert";
	case ACT_QUANTIZE:
		return "quantize";
	case ACT_COPY_GROUP:
		return it->base_as ? "quantize" : "copy"; /* --requantize: a float base's weight, quantized once */
	default:
		return "copy";
	}
}

/* Which merge was done, as the summaries say it. */
static const char *merge_kind(const options *o, const plan *p, char *buf, size_t size)
{
	const char *q = lq_qtype_name(o->quant.qtype);
	if (p->base_quantized)
		snprintf(buf, size, "into the dequantized 4-bit weights%s",
			 o->requantize ? ", requantized in the base's 4-bit format (--requantize)" : "");
	else if (o->requantize)
		snprintf(buf, size, "into the %s quantize-dequantize of the float weights, requantized to %s (--requantize)",
			 q, q);
	else if (o->base_as)
		snprintf(buf, size, "into the %s quantize-dequantize of the float weights (--base-as %s)", q, q);
	else
		snprintf(buf, size, "into the float weights");
	return buf;
}

/* "6 tensors merged into the float weights, 1 replaced, 14 copied": every count that is not 0, each tensor
 * counted once. */
static const char *counts_text(const options *o, const plan *p, char *buf, size_t size)
{
	char kind[200];
	const struct {
		size_t n;
		const char *what;
	} more[] = {{p->nreplaced - p->nreplaced_merged, "replaced"},
		    {p->ndequantized, o->base_as && !p->base_quantized ? "quantize-dequantized" : "dequantized"},
		    {p->nquantized, "quantized"},
		    {p->nconverted, "converted"},
		    {p->ncopied, "copied"}};
	size_t n = (size_t)snprintf(buf, size, "%zu tensor%s merged %s", p->nmerged, p->nmerged == 1 ? "" : "s",
				    merge_kind(o, p, kind, sizeof kind));
	if (p->nreplaced_merged && n < size)
		n += (size_t)snprintf(buf + n, size - n, " (%zu of them replaced by the adapter's first)", p->nreplaced_merged);
	for (size_t k = 0; k < sizeof more / sizeof *more; k++)
		if (more[k].n && n < size)
			n += (size_t)snprintf(buf + n, size - n, ", %zu %s", more[k].n, more[k].what);
	return buf;
}

/* The plan: on standard output for --dry-run (what it asked for), else on standard error with -v (with
 * -n --json too: standard output is the JSON's alone). */
static void print_plan(const options *o, const plan *p, uint64_t memory)
{
	bool out = o->common.dry_run && !o->common.json;
	char a[32], b[32], c[32], counts[512];
	for (size_t i = 0; i < p->n; i++) {
		const item *it = &p->items[i];
		char line[1024];
		size_t n = (size_t)snprintf(line, sizeof line, "%-10s %s -> %s", act_name(it), it->name,
					    cli_human_bytes(it->bytes_out, a, sizeof a));
		for (size_t l = 0; l < it->nloras && n < sizeof line; l++)
			n += (size_t)snprintf(line + n, sizeof line - n, "%s rank %d, scaling %g (%s)%s", l ? ";" : ":",
					      (int)it->loras[l].rank, (double)it->loras[l].scaling, it->lora_src[l],
					      it->loras[l].magnitude_input >= 0 ? ", DoRA" : "");
		if (it->nreplace && n < sizeof line)
			n += (size_t)snprintf(line + n, sizeof line - n, ": %zu rows", it->nreplace);
		if (it->act == ACT_MERGE || it->replaced || cli_verbosity > 0)
			cli_plan(out, "%s", line);
	}
	cli_plan(out, "%s (%zu tensors): %s -> %s; memory needed: about %s", counts_text(o, p, counts, sizeof counts), p->n,
		 cli_human_bytes(p->bytes_in, a, sizeof a), cli_human_bytes(p->om.bytes, b, sizeof b),
		 cli_human_bytes(memory, c, sizeof c));
}

/* The modules left in float, and the bits per parameter of the weights --requantize would quantize, as
 * written and as they would be all 4-bit. */
static void count_kept(const plan *p, size_t *kept, double *bits, double *bits_all_4bit)
{
	uint64_t params = 0, bytes = 0, bytes_4bit = 0;
	*kept = 0;
	for (size_t i = 0; i < p->n; i++) {
		const item *it = &p->items[i];
		if (!it->quantized_out && !it->keep_float)
			continue;
		int64_t n = 1;
		for (int d = 0; d < it->ndim; d++)
			n *= it->shape[d];
		params += (uint64_t)n;
		bytes += it->bytes_out;
		bnb_state s = it->keep_float ? it->in_state : it->out_state;
		bytes_4bit += it->keep_float ? bnb_group_bytes(&s, n) : it->bytes_out;
		*kept += it->keep_float;
	}
	*bits = params ? 8.0 * (double)bytes / (double)params : 0;
	*bits_all_4bit = params ? 8.0 * (double)bytes_4bit / (double)params : 0;
}

static void print_json(const options *o, const plan *p, double seconds, bool written)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "tool", "loramerge");
	cJSON_AddStringToObject(root, "version", LQ_VERSION_STRING);
	cJSON_AddStringToObject(root, "base", o->base);
	cJSON *ads = cJSON_AddArrayToObject(root, "adapters");
	for (size_t a = 0; a < o->nadapters; a++) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "path", o->adapters[a]);
		cJSON_AddNumberToObject(x, "weight", o->weights[a]);
		cJSON_AddItemToArray(ads, x);
	}
	cJSON_AddStringToObject(root, "output", o->output);
	cJSON_AddBoolToObject(root, "dry_run", !written);
	cJSON_AddStringToObject(root, "base_kind", p->base_quantized ? "bitsandbytes-4bit" : (o->base_as ? "float, merged as 4-bit quantize-dequantize" : "float"));
	cJSON_AddBoolToObject(root, "requantize", o->requantize);
	cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
	for (size_t i = 0; i < p->n; i++) {
		const item *it = &p->items[i];
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "name", it->name);
		cJSON_AddStringToObject(t, "action", act_name(it));
		cJSON *shape = cJSON_AddArrayToObject(t, "shape");
		for (int d = 0; d < it->ndim; d++)
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)it->shape[d]));
		cJSON_AddNumberToObject(t, "bytes_out", (double)it->bytes_out);
		if (it->nloras) {
			cJSON *ls = cJSON_AddArrayToObject(t, "adapters");
			for (size_t l = 0; l < it->nloras; l++) {
				cJSON *x = cJSON_CreateObject();
				cJSON_AddStringToObject(x, "adapter", it->lora_src[l]);
				cJSON_AddNumberToObject(x, "rank", it->loras[l].rank);
				cJSON_AddNumberToObject(x, "scaling", it->loras[l].scaling);
				cJSON_AddBoolToObject(x, "dora", it->loras[l].magnitude_input >= 0);
				cJSON_AddItemToArray(ls, x);
			}
		}
		cJSON_AddItemToArray(arr, t);
	}
	cJSON *tot = cJSON_AddObjectToObject(root, "totals");
	cJSON_AddNumberToObject(tot, "tensors", (double)p->n);
	cJSON_AddNumberToObject(tot, "merged", (double)p->nmerged);
	cJSON_AddNumberToObject(tot, "replaced", (double)p->nreplaced);
	cJSON_AddNumberToObject(tot, "dequantized", (double)p->ndequantized);
	cJSON_AddNumberToObject(tot, "quantized", (double)p->nquantized);
	cJSON_AddNumberToObject(tot, "converted", (double)p->nconverted);
	cJSON_AddNumberToObject(tot, "copied", (double)p->ncopied);
	cJSON_AddNumberToObject(tot, "bytes_in", (double)p->bytes_in);
	cJSON_AddNumberToObject(tot, "bytes_out", (double)p->om.bytes);
	if (o->requantize) {
		size_t kept;
		double bits, bits_4bit;
		count_kept(p, &kept, &bits, &bits_4bit);
		cJSON *k = cJSON_AddArrayToObject(root, "kept_float");
		for (size_t i = 0; i < p->n; i++)
			if (p->items[i].keep_float)
				cJSON_AddItemToArray(k, cJSON_CreateString(p->items[i].name));
		cJSON_AddItemToObject(tot, "bits_per_param_quantizable", cli_json_number(bits));
		cJSON_AddItemToObject(tot, "bits_per_param_all_4bit", cli_json_number(bits_4bit));
	}
	if (p->measure && written)
		cJSON_AddItemToObject(root, "fidelity", fidelity_json(&p->fid));
	cJSON_AddNumberToObject(root, "seconds", seconds);
	char *s = cJSON_Print(root);
	if (s) {
		puts(s);
		free(s);
	}
	cJSON_Delete(root);
}

/* ----------------------------------------------------------------------------------- config.json */

static char *output_config(const options *o, const hf_model *m, const plan *p, size_t *len, char *err)
{
	if (!m->is_model_dir || !m->config_text)
		return NULL;
	char *text = malloc(m->config_len + 1);
	if (!text) {
		fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		return NULL;
	}
	memcpy(text, m->config_text, m->config_len);
	*len = m->config_len;
	char *next;
	if (o->requantize && (!p->base_quantized || p->nkept)) {
		lq_dtype compute = p->n ? p->items[0].dtype : LQ_DTYPE_BF16;
		for (size_t i = 0; i < p->n; i++)
			if (p->items[i].dtype != LQ_DTYPE_U8) {
				compute = p->items[i].dtype;
				break;
			}
		/* a 4-bit base keeps its own type; --keep-float writes its skip list */
		lq_quant_params q = o->quant;
		for (size_t i = 0; p->base_quantized && i < p->n; i++)
			if (p->items[i].quantized_in) {
				q = (lq_quant_params){p->items[i].in_state.qtype, p->items[i].in_state.blocksize,
						      p->items[i].in_state.double_quant};
				break;
			}
		char *member = hf_quantization_config(q.qtype, q.double_quant, compute, p->skip, p->nskip);
		next = member ? hf_config_edit(text, *len, "quantization_config", member, len, err) : NULL;
		free(member);
		free(text);
		if (!(text = next))
			return NULL;
	} else if (p->base_quantized && !o->requantize) {
		next = hf_config_edit(text, *len, "quantization_config", NULL, len, err); /* now a float model */
		free(text);
		if (!(text = next))
			return NULL;
	}
	if (p->untie) {
		next = hf_config_edit(text, *len, "tie_word_embeddings", "\"tie_word_embeddings\": false", len, err);
		free(text);
		if (!(text = next))
			return NULL;
	}
	if (o->dtype_set && !o->requantize) {
		char member[64];
		snprintf(member, sizeof member, "\"dtype\": \"%s\"", lq_dtype_torch_name(o->dtype));
		next = hf_config_edit(text, *len, "dtype", member, len, err);
		free(text);
		text = next;
	}
	return text;
}

/* ------------------------------------------------------------------------------------- running */

/* Which weights --base-as and --requantize quantize in a float base comes from transformers' rules,
 * with the base's llm_int8_skip_modules: an entry that cannot be followed (hf_select.h hf_select_refused)
 * leaves it unknown. False: refused, said. */
static bool check_refused(const hf_model *m, const hf_select *sel, const options *o)
{
	const char *entry;
	const char *why = hf_select_refused(sel, &entry);
	if (!why)
		return true;
	char cfg[4096], q[192];
	if (m->dir)
		snprintf(cfg, sizeof cfg, "%s%sconfig.json", m->dir, m->dir[0] && m->dir[strlen(m->dir) - 1] == '/' ? "" : "/");
	else
		snprintf(cfg, sizeof cfg, "%s:config.json", m->input);
	cli_error("%s: llm_int8_skip_modules entry '%s' is %s, so which weights %s quantizes cannot be told", cfg,
		  fmt_quote(entry, q, sizeof q), why, o->requantize ? "--requantize" : "--base-as");
	return false;
}

/* --requantize of a float base writes a 4-bit checkpoint: its llm_int8_skip_modules, as nf4quant's, lists
 * the modules left in float so that transformers 4.x and 5.x both load it (hf_select.h
 * hf_select_skip_list). */
static lq_status plan_skip_list(const options *o, const hf_model *m, const hf_select *sel, plan *p, char *err)
{
	if (!o->requantize || !m->is_model_dir || (p->base_quantized && !p->nkept))
		return LQ_OK; /* a 4-bit base's own list stands, unless --keep-float adds to it */
	hf_select_tensor *t = calloc(p->n ? p->n : 1, sizeof *t);
	if (!t)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < p->n; i++)
		t[i] = (hf_select_tensor){.name = p->items[i].name, .ndim = p->items[i].ndim,
					  .is_float = p->items[i].dtype != LQ_DTYPE_U8, .quantized = p->items[i].quantized_out};
	hf_skip_list l;
	lq_status st = hf_select_skip_list(sel, t, p->n, &l);
	free(t);
	if (st == LQ_OK) {
		for (size_t i = 0; i < l.nwarnings; i++)
			cli_warn("%s", l.warnings[i]);
		p->skip = l.entries;
		p->nskip = l.n;
		l.entries = NULL;
		l.n = 0;
	}
	hf_skip_list_free(&l);
	return st == LQ_OK ? LQ_OK : fmt_fail(err, st, "out of memory");
}

/* --base-as, planning: the float base's 4-bit quantize-dequantize. The weights transformers would quantize
 * are planned as a 4-bit base's, with the state their quantization will have (its layout does not depend on
 * the values); the merge quantizes each first (lq_tensor_in's as_4bit), so that a --shard job quantizes only
 * the weights of its own shards and --finish none. */
static lq_status base_as_mark(const options *o, plan *p, const hf_select *sel, char *err)
{
	for (size_t i = 0; i < p->n; i++) {
		item *it = &p->items[i];
		bool conv1d;
		const char *why;
		if (it->quantized_in || it->dtype == LQ_DTYPE_U8 || it->replaced ||
		    !hf_select_quantize(sel, it->name, it->ndim, it->shape, true, &conv1d, &why))
			continue;
		if (conv1d)
			return fmt_fail(err, LQ_ERR_UNSUPPORTED, "--base-as with Conv1D weights ('%s') is not supported", it->name);
		it->base_as = true;
		it->quantized_in = true;
		it->in_state = (bnb_state){.qtype = o->quant.qtype, .blocksize = o->quant.blocksize, .dtype = it->dtype,
					   .ndim = it->ndim, .double_quant = o->quant.double_quant,
					   .nested_blocksize = LQ_NESTED_BLOCKSIZE};
		memcpy(it->in_state.shape, it->shape, sizeof it->shape);
		/* one no adapter changes stays ACT_COPY: plan_outputs dequantizes it into a float output, or copies
		 * its 4-bit group as it was made (--requantize: as PEFT's 4-bit load left it) */
	}
	return LQ_OK;
}

/* The MERGE task of item it (t's common fields filled): its inputs added to src, a 4-bit output to out. */
static void merge_task(const plan *p, item *it, st_source *src, lq_group_out out, lq_task *t)
{
	t->op = LQ_OP_MERGE;
	lq_merge_args *ma = &t->merge;
	ma->rows = it->ndim >= 2 ? it->shape[0] : 1;
	int64_t n = 1;
	for (int d = 0; d < it->ndim; d++)
		n *= it->shape[d];
	ma->cols = ma->rows ? n / ma->rows : 0;
	ma->base.dtype = it->dtype;
	ma->out_dtype = it->out_dtype;
	ma->requantize = it->quantized_out;
	ma->requant = out;
	/* what the merge keeps of the adapters; a float base merged as it is, against its 4-bit form */
	ma->fidelity = p->measure && it->nloras;
	ma->measure_4bit = ma->fidelity && !it->base_as && !it->quantized_in;
	if (ma->measure_4bit)
		ma->base.quant = p->measure_quant;
	for (size_t l = 0; l < it->nloras; l++) {
		it->loras[l].a_input = st_source_add(src, it->lora_refs[l][0].f, it->lora_refs[l][0].t, false);
		if (it->lora_refs[l][1].t)
			it->loras[l].b_input = st_source_add(src, it->lora_refs[l][1].f, it->lora_refs[l][1].t, false);
		if (it->lora_refs[l][2].t)
			it->loras[l].magnitude_input = st_source_add(src, it->lora_refs[l][2].f, it->lora_refs[l][2].t, false);
	}
	ma->loras = it->loras;
	ma->nloras = it->nloras;
	if (it->nreplace) {
		ma->replace_rows = it->replace_rows;
		ma->nreplace = it->nreplace;
		ma->replace_input = st_source_add(src, it->replace_data.f, it->replace_data.t, false);
		st_dtype_to_lq(it->replace_data.t->dtype, &ma->replace_dtype);
	}
	if (it->base_as) { /* quantized by the merge itself, first */
		ma->base.as_4bit = true;
		ma->base.quant = (lq_quant_params){it->in_state.qtype, it->in_state.blocksize, it->in_state.double_quant};
	} else if (it->quantized_in) {
		ma->base.quantized = true;
		ma->base.quant = (lq_quant_params){it->in_state.qtype, it->in_state.blocksize, it->in_state.double_quant};
		ma->base.offset = it->in_state.nested_offset;
		ma->base.absmax_input = st_source_add(src, it->absmax.f, it->absmax.t, false);
		ma->base.nested_input = it->in_state.double_quant ? st_source_add(src, it->nested.f, it->nested.t, false) : -1;
	}
}

/* The task of every output tensor of the shards this run writes (another part's are left to it), before
 * anything is opened: copies, merges (a dequantization or a conversion is a merge without adapters),
 * quantizations. */
static lq_status plan_tasks(plan *p, char *err)
{
	size_t cap = 0;
	for (size_t i = 0; i < p->n; i++)
		cap += p->items[i].act == ACT_COPY_GROUP ? BNB_NPARTS : 1;
	lq_status st = run_tasks_init(&p->run, cap, err);
	st_source *src = p->run.src;
	st_sink *sink = p->run.sink;
	for (size_t i = 0; i < p->n && st == LQ_OK; i++) {
		item *it = &p->items[i];
		if (!om_shard_todo(&p->om, it->out_shard))
			continue; /* another part's, or a part already made */
		const out_writer *w = om_writer(&p->om, it->out_shard);
		for (int k = 0; k < BNB_NPARTS; k++)
			if (it->wid[k] >= 0 && (it->sid[k] = st_sink_add(sink, w, it->wid[k])) < 0)
				st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		if (st != LQ_OK)
			break;
		if (it->act == ACT_COPY_GROUP && !it->base_as) {
			for (int k = 0; k < BNB_NPARTS; k++)
				if (it->wid[k] >= 0)
					*run_tasks_add(&p->run, it->out_shard) = (lq_task){.op = LQ_OP_COPY, .name = it->name, .origin = it->parts[k].f->path,
								.input = st_source_add(src, it->parts[k].f, it->parts[k].t, false),
								.nbytes = it->parts[k].t->end - it->parts[k].t->begin,
								.out_data = it->sid[k]};
			continue;
		}
		lq_task *t = run_tasks_add(&p->run, it->out_shard);
		*t = (lq_task){.name = it->name, .origin = it->data.f->path,
			       .input = st_source_add(src, it->data.f, it->data.t, false),
			       .nbytes = it->data.t->end - it->data.t->begin, .ndim = it->ndim,
			       .out_data = it->sid[BNB_PART_WEIGHT]};
		memcpy(t->shape, it->shape, sizeof it->shape);
		if (it->act == ACT_COPY) {
			t->op = LQ_OP_COPY;
			continue;
		}
		lq_group_out out = {.out_absmax = -1, .out_nested_absmax = -1};
		if (it->quantized_out) {
			out = (lq_group_out){.quant = {it->out_state.qtype, it->out_state.blocksize, it->out_state.double_quant},
					     .out_absmax = it->sid[BNB_PART_ABSMAX],
					     .out_nested_absmax = it->sid[BNB_PART_NESTED_ABSMAX]};
			st = st_sink_add_group(sink, t->out_data, &it->out_state, it->sid[BNB_PART_QUANT_MAP],
					       it->sid[BNB_PART_NESTED_QUANT_MAP], it->sid[BNB_PART_QUANT_STATE]);
		}
		if (it->act == ACT_QUANTIZE || it->act == ACT_COPY_GROUP) {
			/* --requantize of a float base, and --base-as: a weight no adapter changes, quantized once from
			 * its own type, as loading the base in 4 bits gives it */
			t->op = LQ_OP_QUANTIZE4;
			t->quantize4 = (lq_quantize4_args){.dtype = it->dtype, .out = out};
			continue;
		}
		merge_task(p, it, src, out, t);
	}
	return st;
}

/* ---------------------------------------------------------------------------------- fidelity */

/* run_tasks' observer: each measured merge's sums, by module, into a fidelity_report. */
static lq_status on_result_into(void *arg, const lq_task *t, const lq_task_result *result)
{
	if (t->op != LQ_OP_MERGE || !t->merge.fidelity)
		return LQ_OK;
	return fidelity_add(arg, t->name, &result->fidelity);
}

/* The --fidelity report: what was merged, and the fidelity object (man/loramerge.1, FIDELITY). */
typedef struct report_args {
	const options *o;
	const plan *p;
	const char *device;
} report_args;

static bool write_report(const void *arg, FILE *f)
{
	const report_args *a = arg;
	cJSON *root = cJSON_CreateObject();
	cJSON_AddNumberToObject(root, "schema", 3);
	cJSON_AddStringToObject(root, "tool", "loramerge");
	cJSON_AddStringToObject(root, "version", LQ_VERSION_STRING);
	cJSON_AddStringToObject(root, "base", a->o->base);
	cJSON *ads = cJSON_AddArrayToObject(root, "adapters");
	for (size_t i = 0; i < a->o->nadapters; i++) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "path", a->o->adapters[i]);
		cJSON_AddNumberToObject(x, "weight", a->o->weights[i]);
		cJSON_AddItemToArray(ads, x);
	}
	cJSON_AddStringToObject(root, "output", a->o->output);
	cJSON_AddStringToObject(root, "base_kind", a->p->base_quantized ? "bitsandbytes-4bit" : a->o->base_as ? "float, merged as 4-bit quantize-dequantize" : "float");
	cJSON_AddBoolToObject(root, "requantize", a->o->requantize);
	cJSON_AddStringToObject(root, "device", a->device);
	cJSON_AddItemToObject(root, "fidelity", fidelity_json(&a->p->fid));
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	bool ok = text && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
	free(text);
	return ok;
}

/* A float base merged as it is: how far its 4-bit form lies from it, against the adapters' change (the
 * base_shift of a QLoRA adapter merged into the 16-bit weights), and a warning where that is larger. */
static void say_which_base(const plan *p)
{
	double median, worst;
	const char *worst_name;
	fidelity_base_ratio_spread(&p->fid, &median, &worst, &worst_name);
	if (!worst_name)
		return;
	size_t over = 0, n = 0;
	for (size_t i = 0; i < p->fid.n; i++) {
		const double r = fidelity_figures_of(&p->fid.v[i].sums, p->fid.limits).base_ratio;
		n += !isnan(r);
		over += r > 1;
	}
	cli_info(0, "base_shift (the base's 4-bit error against the adapters' change): median %.3g, at most %.3g in '%s'",
		 median, worst, worst_name);
	if (over)
		cli_warn("in %zu of %zu merged modules the float base's 4-bit error is larger than the adapters' change: if "
			 "they were trained with QLoRA (on the 4-bit weights), merging into the 16-bit weights moves the model "
			 "further than they do; --base-as nf4 merges into the weights they saw", over, n);
}

/* Whether the --fidelity report may go where it is asked to: clear of the inputs (report_file.h), and
 * not inside OUTPUT, which the run replaces. Prints the message when not. */
static bool fidelity_place_ok(const options *o, const hf_model *m)
{
	report_inputs *in = report_inputs_create(), *out = report_inputs_create();
	bool ok = in && out && report_inputs_add_model(in, m) && out_inputs_add(out, o->output, o->output);
	for (size_t a = 0; ok && a < o->nadapters; a++)
		ok = out_inputs_add_adapter(in, o->adapters[a]);
	char *place = ok ? out_place_of_name(o->fidelity) : NULL;
	out_hit hit;
	if (!ok)
		cli_error("out of memory");
	else if (place && out_inputs_find(out, place, NULL, OUT_CLASH_IS | OUT_CLASH_INSIDE, &hit)) {
		cli_error("--fidelity report '%s' is %sthe output '%s', which the run replaces", o->fidelity,
			  hit.clash == OUT_CLASH_IS ? "" : "inside ", o->output);
		ok = false;
	} else {
		ok = report_file_ok(in, "--fidelity report", o->fidelity, o->common.force);
	}
	free(place);
	report_inputs_free(in);
	report_inputs_free(out);
	return ok;
}

/* --min-survival: the modules that keep less of their change; false when any does. */
static bool survival_gate(const options *o, const plan *p)
{
	size_t failed = 0;
	for (size_t i = 0; i < p->fid.n; i++) {
		const fidelity_figures f = fidelity_figures_of(&p->fid.v[i].sums, p->fid.limits);
		if (!isnan(f.survival) && f.survival < o->min_survival) {
			cli_error("'%s': survival %.3g is below --min-survival %g (residual %.3g)", p->fid.v[i].name,
				  f.survival, o->min_survival, f.residual);
			failed++;
		}
	}
	if (failed)
		cli_error("%zu of %zu merged modules keep less than %g of their change: nothing written%s", failed,
			  p->fid.n, o->min_survival, o->fidelity ? " but the --fidelity report" : "");
	return failed == 0;
}

/* ----------------------------------------------------------------------------- --keep-float */

/* Whether a merged module is one --keep-float names: by its path ("model.layers.0.mlp.down_proj") or its
 * tensor's name. */
static bool keep_named(const options *o, const item *it)
{
	if (cli_glob_any(it->name, o->keep, o->nkeep))
		return true;
	char *module = fmt_ends_with(it->name, ".weight") ? strndup(it->name, strlen(it->name) - 7) : NULL;
	bool named = module && cli_glob_any(module, o->keep, o->nkeep);
	free(module);
	return named;
}

/* --keep-float auto: a first merge of the modules the output quantizes, measured and written nowhere; the
 * ones it erases (fidelity.h) are left in float. One more pass over the merged weights. */
static lq_status keep_erased(const options *o, plan *p, lq_ctx *ctx, char *err)
{
	run_tasks r = {0};
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->items[i].act == ACT_MERGE && p->items[i].quantized_out && p->items[i].nloras;
	lq_status st = run_tasks_init(&r, n, err);
	for (size_t i = 0; i < p->n && st == LQ_OK; i++) {
		item *it = &p->items[i];
		if (it->act != ACT_MERGE || !it->quantized_out || !it->nloras)
			continue;
		lq_task *t = run_tasks_add(&r, 0);
		*t = (lq_task){.name = it->name, .origin = it->data.f->path,
			       .input = st_source_add(r.src, it->data.f, it->data.t, false),
			       .nbytes = it->data.t->end - it->data.t->begin, .ndim = it->ndim, .out_data = -1};
		memcpy(t->shape, it->shape, sizeof it->shape);
		const lq_group_out out = {.quant = {it->out_state.qtype, it->out_state.blocksize, it->out_state.double_quant},
					  .out_absmax = -1, .out_nested_absmax = -1};
		merge_task(p, it, r.src, out, t);
		t->merge.fidelity = true;
	}
	fidelity_report first = {.limits = o->limits};
	r.on_result = on_result_into;
	r.on_result_arg = &first;
	if (st == LQ_OK)
		st = run_tasks_measure(ctx, &r, "measuring", err);
	size_t kept = 0;
	for (size_t k = 0; st == LQ_OK && k < first.n; k++) {
		if (!fidelity_figures_of(&first.v[k].sums, first.limits).erased)
			continue;
		for (size_t i = 0; i < p->n; i++)
			if (strcmp(p->items[i].name, first.v[k].name) == 0 && !p->items[i].keep_float) {
				p->items[i].keep_float = true;
				kept++;
			}
	}
	if (st == LQ_OK)
		cli_info(1, "--keep-float auto: a 4-bit merge erases %zu of %zu modules", kept, first.n);
	fidelity_free(&first);
	run_tasks_free(&r);
	return st;
}

/* Runs the tasks and writes everything under the temporary name; the caller commits. */
static lq_status merge(const options *o, const hf_model *m, plan *p, lq_ctx *ctx, char *err)
{
	lq_status st = run_tasks_execute(ctx, &p->om, m, &p->run, "merging", err);
	if (st != LQ_OK)
		return st;
	size_t cfg_len = 0;
	char *cfg = output_config(o, m, p, &cfg_len, err);
	if (!cfg && err[0])
		return LQ_ERR_CORRUPT;
	st = om_finish(&p->om, m, p->params_in, cfg, cfg_len, err);
	free(cfg);
	return st;
}

int main(int argc, char **argv)
{
	cli_init(argv[0]);
	if (lora_combine_wanted(argc, argv))
		return lora_combine_main(argc, argv);
	options o;
	parse_args(argc, argv, &o);
	if (o.out.max_shard_size && fmt_ends_with(o.output, ".safetensors"))
		cli_usage_error("--max-shard-size needs a directory OUTPUT, not a .safetensors file");
	if ((o.out.nparts || o.out.finish) && (fmt_ends_with(o.output, ".safetensors") || om_is_bundle(o.output)))
		cli_usage_error("--%s needs a directory OUTPUT", o.out.finish ? "finish" : "shard");
	if (o.out.nparts && o.out.finish)
		cli_usage_error("--shard and --finish are separate steps: the parts first, then --finish");
	cli_install_signals();
	if (o.common.json)
		cli_ignore_sigpipe();
	double t0 = cli_now();
	int status = CLI_EXIT_FAILURE;
	char err[FMT_ERRBUF] = "";
	hf_model *m = hf_model_create();
	peft_adapter **ad = calloc(o.nadapters, sizeof *ad);
	hf_select *sel = NULL;
	plan p = {0};
	lq_ctx *ctx = NULL;
	hf_tensors base = {0};
	if (!m || !ad) {
		cli_error("out of memory");
		return CLI_EXIT_FAILURE;
	}
	if (hf_model_open(m, o.base) != LQ_OK) {
		if (is_adapter(o.base))
			cli_usage_error("'%s' is a PEFT adapter, not a model: the base model comes first: loramerge BASE "
					"ADAPTER... -o OUTPUT", o.base);
		cli_error("%s", m->err);
		goto finish;
	}
	for (size_t a = 0; a < o.nadapters; a++) {
		ad[a] = peft_adapter_create();
		if (!ad[a] || peft_adapter_open(ad[a], o.adapters[a], o.maps, o.nmaps) != LQ_OK) {
			if (ad[a] && is_model_dir(o.adapters[a]))
				cli_usage_error("'%s' is a model, not a PEFT adapter: the base model comes first: loramerge BASE "
						"ADAPTER... -o OUTPUT", o.adapters[a]);
			cli_error("%s", ad[a] ? peft_adapter_error(ad[a]) : "out of memory");
			goto finish;
		}
	}
	if (om_place_check(m, (const char *const *)o.adapters, o.nadapters, o.output, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	if (hf_tensors_list(m, &base, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	sel = hf_select_create(m->is_model_dir ? m->config : NULL);
	if (!sel || plan_base(&base, &p, err) != LQ_OK || plan_adapters(&o, ad, sel, &p, err) != LQ_OK) {
		cli_error("%s", err[0] ? err : "out of memory");
		goto finish;
	}
	if (o.base_as && p.base_quantized) {
		cli_error("--base-as: the base '%s' is already 4-bit", o.base);
		goto finish;
	}
	/* PEFT's 4-bit merge of a float base loads it in 4 bits first: the adapter is added to the dequantized
	 * weights, not to the originals */
	if (o.requantize && !p.base_quantized)
		o.base_as = true;
	if (o.base_as && !p.base_quantized && !check_refused(m, sel, &o))
		goto finish;
	if (p.base_quantized && (o.qtype_set || o.blocksize_set || o.no_double_quant))
		cli_warn("the base is 4-bit: its own quantization is kept; --quant-type, --blocksize and --no-double-quant "
			 "do not apply");
	if (p.untie)
		cli_warn("the adapter gives the tied output head its own weights: the merged model unties them "
			 "(tie_word_embeddings false), as PEFT does");
	lq_ctx_options copts = cli_ctx_options(&o.common);
	ctx = lq_ctx_create(&copts);
	if (!ctx) {
		cli_error("cannot start: out of memory or threads");
		goto finish;
	}
	double t_plan = cli_now();
	if (!o.common.dry_run && lq_ctx_use_device(ctx, o.common.device) != LQ_OK) {
		cli_error("--device %s: %s", o.common.device, lq_ctx_error_string(ctx));
		goto finish;
	}
	double t_device = cli_now();
	cli_info(1, "compute: %s; %s kernels, %d thread%s", lq_ctx_device_note(ctx), lq_ctx_backend_name(ctx),
		 lq_ctx_threads(ctx), lq_ctx_threads(ctx) == 1 ? "" : "s");
	cli_info(1, "base: %s; %s", p.base_quantized ? "bitsandbytes 4-bit, dequantized exactly" :
				    o.base_as && o.requantize ? "float, quantized to 4 bits first, as PEFT's 4-bit merge loads it" :
				    o.base_as ? "float, merged into its 4-bit quantize-dequantize (--base-as)" : "float, merged as is",
		 o.requantize ? "the result quantized again to 4 bits (--requantize)" : "the result in float");
	if (o.base_as && base_as_mark(&o, &p, sel, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	/* --keep-float: the modules named, and those a first 4-bit merge erases */
	for (size_t i = 0; o.nkeep && i < p.n; i++)
		p.items[i].keep_float = p.items[i].nloras && keep_named(&o, &p.items[i]);
	if (o.keep_auto && !o.common.dry_run &&
	    (plan_outputs(&o, sel, &p, err) != LQ_OK || keep_erased(&o, &p, ctx, err) != LQ_OK)) {
		cli_error("%s", err);
		goto finish;
	}
	for (size_t i = 0; i < p.n; i++)
		p.nkept += p.items[i].keep_float;
	if (plan_outputs(&o, sel, &p, err) != LQ_OK || plan_skip_list(&o, m, sel, &p, err) != LQ_OK ||
	    declare_outputs(&o, m, &p, err) != LQ_OK ||
	    (o.out.nparts && om_set_part(&p.om, (size_t)o.out.part, (size_t)o.out.nparts, err) != LQ_OK)) {
		cli_error("%s", err);
		goto finish;
	}
	if (o.out.finish)
		om_set_finish(&p.om);
	if (set_origin(&o, &p) != LQ_OK) {
		cli_error("out of memory");
		goto finish;
	}
	p.om.zstd_threads = lq_ctx_threads(ctx);
	if (!o.out.nparts && om_carries_files(m, o.output))
		for (size_t i = 0; i < m->nskipped; i++)
			cli_info(0, "not carried: %s", m->skipped[i]);
	/* the fidelity, asked for (with a float base merged as it is, the which-base figures too: quantizing
	 * each weight once more costs a plain merge about a third more time on the CPU, so it is not done
	 * unasked) */
	p.measure = o.fidelity || o.min_survival_set;
	p.measure_quant = o.quant;
	p.fid.limits = o.limits;
	if (plan_tasks(&p, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	p.run.on_result = on_result_into;
	p.run.on_result_arg = &p.fid;
	if (o.fidelity && !o.common.dry_run && !fidelity_place_ok(&o, m))
		goto finish;
	if (o.common.dry_run || cli_verbosity > 0)
		print_plan(&o, &p, run_tasks_memory(ctx, &p.run));
	if (o.common.dry_run) {
		if (o.common.json)
			print_json(&o, &p, cli_now() - t0, false);
		status = CLI_EXIT_OK;
		goto finish;
	}
	double t_start = cli_now();
	if (om_begin(&p.om, o.common.force, om_carried_bytes(m), err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	if (o.base_as && om_has_work(&p.om)) {
		size_t nquantized = 0;
		for (size_t i = 0; i < p.n; i++)
			nquantized += p.items[i].base_as && om_shard_todo(&p.om, p.items[i].out_shard);
		cli_info(1, "--base-as: %zu weight%s of the shards this run writes quantized first", nquantized,
			 nquantized == 1 ? "" : "s");
	}
	if (merge(&o, m, &p, ctx, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	double t_merged = cli_now();
	fidelity_sort(&p.fid);
	if (p.measure && !p.base_quantized && !o.base_as)
		say_which_base(&p);
	bool gate_ok = !o.min_survival_set || survival_gate(&o, &p);
	if (o.fidelity) {
		report_args ra = {&o, &p, lq_ctx_device_note(ctx)};
		report_inputs *in = report_inputs_create();
		bool ok = in && report_inputs_add_model(in, m);
		for (size_t a = 0; ok && a < o.nadapters; a++)
			ok = out_inputs_add_adapter(in, o.adapters[a]);
		ok = ok && report_file_write(o.fidelity, "--fidelity report", o.common.force, in, write_report, &ra);
		report_inputs_free(in);
		if (!ok)
			goto finish;
	}
	if (!gate_ok)
		goto finish;
	/* the summary before the rename: when it cannot be written the run fails and leaves nothing */
	if (o.common.json) {
		print_json(&o, &p, t_merged - t0, true);
		if (!cli_flush_stdout())
			goto finish;
	}
	if (om_commit(&p.om, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	double t_committed = cli_now();
	cli_info(2, "time: %.3f s reading headers and planning, %.3f s opening the compute device, %.3f s planning the "
		 "output, %.3f s merging (reading, computing, writing, syncing), %.3f s renaming into place", t_plan - t0,
		 t_device - t_plan, t_start - t_device, t_merged - t_start, t_committed - t_merged);
	double secs = cli_now() - t0;
	if (o.common.json) {
		/* written above */
	} else if (o.out.nparts) {
		cli_info(0, "%s: part %ld of %ld written, %.2f s; the directory is complete once every part is there and "
			 "--finish has run", o.output, o.out.part + 1, o.out.nparts, secs);
	} else if (p.om.finish) {
		cli_info(0, "%s: completed from its %zu parts' shards, %.2f s", o.output, p.om.nshards, secs);
	} else {
		char a[32], b[32], counts[512], kept[160] = "";
		if (p.nkept) {
			size_t n;
			double bits, bits_4bit;
			count_kept(&p, &n, &bits, &bits_4bit);
			snprintf(kept, sizeof kept, "; %zu module%s kept in float (--keep-float): %.3f bits per parameter, "
				 "%.3f all 4-bit", n, n == 1 ? "" : "s", bits, bits_4bit);
		}
		cli_info(0, "%s: %s%s; %s -> %s, %.2f s", o.output, counts_text(&o, &p, counts, sizeof counts), kept,
			 cli_human_bytes(p.bytes_in, a, sizeof a), cli_human_bytes(p.om.bytes, b, sizeof b), secs);
	}
	status = CLI_EXIT_OK;
finish:
	plan_free(&p);
	hf_tensors_free(&base);
	hf_select_free(sel);
	lq_ctx_free(ctx);
	for (size_t a = 0; a < o.nadapters; a++) {
		peft_adapter_free(ad[a]);
		free(o.adapters[a]);
	}
	free(ad);
	free(o.adapters);
	free(o.weights);
	for (size_t i = 0; i < o.nmaps; i++)
		free(o.map_regexes[i]);
	free(o.map_regexes);
	free(o.maps);
	free(o.keep);
	hf_model_free(m);
	if (status == CLI_EXIT_OK && fflush(stdout) != 0) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		status = CLI_EXIT_FAILURE;
	}
	return status;
}
