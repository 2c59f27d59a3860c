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
#include "device_work.h"
#include "fidelity.h"
#include "hf_json.h"
#include "hf_model.h"
#include "hf_select.h"
#include "hf_tensors.h"
#include "libquant.h"
#include "lora_combine.h"
#include "merge_plan.h"
#include "out_model.h"
#include "peft.h"
#include "report_file.h"
#include "run.h"
#include "st_exec.h"

typedef struct options {
	const char *base, *output;
	merge_request rq;        /* the adapters and their weights, --requantize, --base-as's type, --dtype */
	peft_key_map *maps;
	char **map_regexes; /* what maps[i].regex points to, owned */
	size_t nmaps;
	bool base_as, no_double_quant, blocksize_set, qtype_set;
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
	*o = (options){.rq.quant = {LQ_QTYPE_NF4, 64, true}, .limits = FIDELITY_LIMITS_DEFAULT, .out = CLI_OUTPUT_DEFAULTS,
		       .common = {.device = cli_default_device()}};
	long v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:T:fnqvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case OPT_BASE_AS:
			if (!cli_parse_qtype(optarg, &o->rq.quant.qtype))
				cli_usage_error("invalid --base-as '%s' (nf4 or fp4)", optarg);
			o->base_as = o->qtype_set = true;
			break;
		case OPT_REQUANT:
			o->rq.requantize = true;
			break;
		case OPT_QTYPE:
			if (!cli_parse_qtype(optarg, &o->rq.quant.qtype))
				cli_usage_error("invalid --quant-type '%s' (nf4 or fp4)", optarg);
			o->qtype_set = true;
			break;
		case OPT_BLOCKSIZE:
			if (!cli_parse_int(optarg, LQ_BLOCKSIZE_MIN, LQ_BLOCKSIZE_MAX, &v) || !lq_blocksize_valid(v))
				cli_usage_error("invalid --blocksize '%s' (a power of two from 32 to 4096)", optarg);
			o->rq.quant.blocksize = (int32_t)v;
			o->blocksize_set = true;
			break;
		case OPT_NO_DQ:
			o->rq.quant.double_quant = false;
			o->no_double_quant = true;
			break;
		case OPT_DTYPE:
			if (!cli_parse_float_dtype(optarg, &o->rq.dtype))
				cli_usage_error("invalid --dtype '%s' (bf16, fp16 or fp32)", optarg);
			o->rq.dtype_set = true;
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
			o->min_survival = fidelity_parse_threshold("--min-survival", optarg);
			o->min_survival_set = true;
			break;
		case OPT_ERASED_SURVIVAL:
			o->limits.min_survival = fidelity_parse_threshold("--erased-survival", optarg);
			break;
		case OPT_ERASED_RESIDUAL:
			o->limits.max_residual = fidelity_parse_threshold("--erased-residual", optarg);
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
		merge_request_add_adapter(&o->rq, argv[optind]);
	if (!o->output)
		cli_usage_error("no OUTPUT given (-o)");
	if (!*o->output)
		cli_usage_error("empty OUTPUT (-o '')");
	if ((o->keep_auto || o->nkeep) && !o->rq.requantize)
		cli_usage_error("--keep-float chooses what --requantize leaves in float: without it the output is float");
	if ((o->fidelity || o->min_survival_set) && o->out.finish)
		cli_usage_error("--fidelity and --min-survival measure merges: --finish merges nothing");
	if (o->fidelity && strcmp(o->fidelity, o->output) == 0)
		cli_usage_error("--fidelity REPORT and OUTPUT are the same path '%s'", o->output);
	if (strcmp(o->output, "-") == 0 || strcmp(o->base, "-") == 0)
		cli_usage_error("standard input and output ('-') are for nf4quant: a merge reads the base by tensor "
				"name, not in one pass");
}

/* -------------------------------------------------------------- the inputs, the output's layout */

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

static lq_status declare_outputs(const options *o, const hf_model *m, merge_plan *p, char *err)
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
		merge_item *it = &p->items[i];
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
static lq_status set_origin(const options *o, merge_plan *p)
{
	static const char *const keys[] = {"adapter_weights", "key_map", "base_as", "requantize", "quant_type",
					   "blocksize", "double_quant", "dtype", "max_shard_size"};
	cJSON *w = cJSON_CreateArray(), *km = cJSON_CreateArray();
	for (size_t a = 0; w && a < o->rq.nadapters; a++)
		cJSON_AddItemToArray(w, cJSON_CreateNumber(o->rq.weights[a]));
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
	snprintf(num, sizeof num, "%d", (int)o->rq.quant.blocksize);
	p->origin_text[2] = strdup(num);
	snprintf(num, sizeof num, "%" PRIu64, o->out.max_shard_size); /* 0: the base's layout */
	p->origin_text[3] = strdup(num);
	if (!p->origin_text[0] || !p->origin_text[1] || !p->origin_text[2] || !p->origin_text[3])
		return LQ_ERR_NOMEM;
	const char *dtype = !o->rq.dtype_set ? "base" : o->rq.dtype == LQ_DTYPE_BF16 ? "bf16" : o->rq.dtype == LQ_DTYPE_F16 ? "fp16"
			    : "fp32";
	const char *values[] = {p->origin_text[0], p->origin_text[1], o->base_as ? lq_qtype_name(o->rq.quant.qtype) : "no",
				o->rq.requantize ? "true" : "false", lq_qtype_name(o->rq.quant.qtype), p->origin_text[2],
				o->rq.quant.double_quant ? "true" : "false", dtype, p->origin_text[3]};
	memcpy(p->origin_values, values, sizeof values);
	om_set_origin(&p->om, "loramerge", keys, p->origin_values, sizeof keys / sizeof *keys);
	p->om.zstd_level = o->out.zstd_level;
	return LQ_OK;
}

/* ---------------------------------------------------------------------------------- reporting */

static const char *act_name(const merge_item *it)
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
static const char *merge_kind(const options *o, const merge_plan *p, char *buf, size_t size)
{
	const char *q = lq_qtype_name(o->rq.quant.qtype);
	if (p->base_quantized)
		snprintf(buf, size, "into the dequantized 4-bit weights%s",
			 o->rq.requantize ? ", requantized in the base's 4-bit format (--requantize)" : "");
	else if (o->rq.requantize)
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
static const char *counts_text(const options *o, const merge_plan *p, char *buf, size_t size)
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
static void print_plan(const options *o, const merge_plan *p, uint64_t memory)
{
	bool out = o->common.dry_run && !o->common.json;
	char a[32], b[32], c[32], counts[512];
	for (size_t i = 0; i < p->n; i++) {
		const merge_item *it = &p->items[i];
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
static void count_kept(const merge_plan *p, size_t *kept, double *bits, double *bits_all_4bit)
{
	uint64_t params = 0, bytes = 0, bytes_4bit = 0;
	*kept = 0;
	for (size_t i = 0; i < p->n; i++) {
		const merge_item *it = &p->items[i];
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

static void print_json(const options *o, const merge_plan *p, double seconds, bool written)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "tool", "loramerge");
	cJSON_AddStringToObject(root, "version", LQ_VERSION_STRING);
	cJSON_AddStringToObject(root, "base", o->base);
	cJSON *ads = cJSON_AddArrayToObject(root, "adapters");
	for (size_t a = 0; a < o->rq.nadapters; a++) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "path", o->rq.adapters[a]);
		cJSON_AddNumberToObject(x, "weight", o->rq.weights[a]);
		cJSON_AddItemToArray(ads, x);
	}
	cJSON_AddStringToObject(root, "output", o->output);
	cJSON_AddBoolToObject(root, "dry_run", !written);
	cJSON_AddStringToObject(root, "base_kind", p->base_quantized ? "bitsandbytes-4bit" : (o->base_as ? "float, merged as 4-bit quantize-dequantize" : "float"));
	cJSON_AddBoolToObject(root, "requantize", o->rq.requantize);
	cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
	for (size_t i = 0; i < p->n; i++) {
		const merge_item *it = &p->items[i];
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
	if (o->rq.requantize) {
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

static char *output_config(const options *o, const hf_model *m, const merge_plan *p, size_t *len, char *err)
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
	if (o->rq.requantize && (!p->base_quantized || p->nkept)) {
		lq_dtype compute = p->n ? p->items[0].dtype : LQ_DTYPE_BF16;
		for (size_t i = 0; i < p->n; i++)
			if (p->items[i].dtype != LQ_DTYPE_U8) {
				compute = p->items[i].dtype;
				break;
			}
		/* a 4-bit base keeps its own type; --keep-float writes its skip list */
		lq_quant_params q = o->rq.quant;
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
	} else if (p->base_quantized && !o->rq.requantize) {
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
	if (o->rq.dtype_set && !o->rq.requantize) {
		char member[64];
		snprintf(member, sizeof member, "\"dtype\": \"%s\"", lq_dtype_torch_name(o->rq.dtype));
		next = hf_config_edit(text, *len, "dtype", member, len, err);
		free(text);
		text = next;
	}
	return text;
}

/* ------------------------------------------------------------------------------------- running */

/* --requantize of a float base writes a 4-bit checkpoint: its llm_int8_skip_modules, as nf4quant's, lists
 * the modules left in float so that transformers 4.x and 5.x both load it (hf_select.h
 * hf_select_skip_list). */
static lq_status plan_skip_list(const options *o, const hf_model *m, const hf_select *sel, merge_plan *p, char *err)
{
	if (!o->rq.requantize || !m->is_model_dir || (p->base_quantized && !p->nkept))
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

/* The --fidelity report: what was merged, and the fidelity object (man/loramerge.1, FIDELITY). */
typedef struct report_args {
	const options *o;
	const merge_plan *p;
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
	for (size_t i = 0; i < a->o->rq.nadapters; i++) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "path", a->o->rq.adapters[i]);
		cJSON_AddNumberToObject(x, "weight", a->o->rq.weights[i]);
		cJSON_AddItemToArray(ads, x);
	}
	cJSON_AddStringToObject(root, "output", a->o->output);
	cJSON_AddStringToObject(root, "base_kind", a->p->base_quantized ? "bitsandbytes-4bit" : a->o->base_as ? "float, merged as 4-bit quantize-dequantize" : "float");
	cJSON_AddBoolToObject(root, "requantize", a->o->rq.requantize);
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
static void say_which_base(const merge_plan *p)
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
	for (size_t a = 0; ok && a < o->rq.nadapters; a++)
		ok = out_inputs_add_adapter(in, o->rq.adapters[a]);
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
static bool survival_gate(const options *o, const merge_plan *p)
{
	size_t failed = 0;
	for (size_t i = 0; i < p->fid.n; i++) {
		const fidelity_figures f = fidelity_figures_of(&p->fid.v[i].sums, p->fid.limits);
		if (fidelity_below(&f, o->min_survival)) {
			if (f.unbounded)
				cli_error("'%s': its figures are not finite, which fails --min-survival %g", p->fid.v[i].name,
					  o->min_survival);
			else
				cli_error("'%s': survival %.3g is below --min-survival %g (residual %.3g)", p->fid.v[i].name, f.survival,
					  o->min_survival, f.residual);
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
static bool keep_named(const options *o, const merge_item *it)
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
static lq_status keep_erased(const options *o, merge_plan *p, lq_ctx *ctx, char *err)
{
	fidelity_report first = {.limits = o->limits};
	lq_status st = merge_plan_measure(p, ctx, &(merge_measure){.what = "measuring"}, &first, err);
	size_t kept = 0;
	for (size_t k = 0; st == LQ_OK && k < first.n; k++) {
		if (!fidelity_figures_of(&first.v[k].sums, first.limits).erased)
			continue;
		merge_item *it = merge_plan_find(p, first.v[k].name);
		if (it && !it->keep_float) {
			it->keep_float = true;
			kept++;
		}
	}
	if (st == LQ_OK)
		cli_info(1, "--keep-float auto: a 4-bit merge erases %zu of %zu modules", kept, first.n);
	fidelity_free(&first);
	return st;
}

/* Runs the tasks and writes everything under the temporary name; the caller commits. */
static lq_status merge(const options *o, const hf_model *m, merge_plan *p, lq_ctx *ctx, char *err)
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
	peft_adapter **ad = calloc(o.rq.nadapters, sizeof *ad);
	hf_select *sel = NULL;
	merge_plan p = {0};
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
	for (size_t a = 0; a < o.rq.nadapters; a++) {
		ad[a] = peft_adapter_create();
		if (!ad[a] || peft_adapter_open(ad[a], o.rq.adapters[a], o.maps, o.nmaps) != LQ_OK) {
			if (ad[a] && is_model_dir(o.rq.adapters[a]))
				cli_usage_error("'%s' is a model, not a PEFT adapter: the base model comes first: loramerge BASE "
						"ADAPTER... -o OUTPUT", o.rq.adapters[a]);
			cli_error("%s", ad[a] ? peft_adapter_error(ad[a]) : "out of memory");
			goto finish;
		}
	}
	if (om_place_check(m, (const char *const *)o.rq.adapters, o.rq.nadapters, o.output, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	if (hf_tensors_list(m, &base, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	sel = hf_select_create(m->is_model_dir ? m->config : NULL);
	if (!sel || merge_plan_base(&base, &p, err) != LQ_OK || merge_plan_adapters(&o.rq, ad, sel, &p, err) != LQ_OK) {
		cli_error("%s", err[0] ? err : "out of memory");
		goto finish;
	}
	if (o.base_as && p.base_quantized) {
		cli_error("--base-as: the base '%s' is already 4-bit", o.base);
		goto finish;
	}
	/* PEFT's 4-bit merge of a float base loads it in 4 bits first: the adapter is added to the dequantized
	 * weights, not to the originals */
	if (o.rq.requantize && !p.base_quantized)
		o.base_as = true;
	if (o.base_as && !p.base_quantized && !merge_plan_check_refused(m, sel, o.rq.requantize ? "--requantize" : "--base-as"))
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
	const lq_work work = device_work_merge(&p, !om_is_stream(o.output));
	lq_ctx_set_work(ctx, &work);
	if (!o.common.dry_run && lq_ctx_use_device(ctx, o.common.device) != LQ_OK) {
		cli_error("--device %s: %s", o.common.device, lq_ctx_error_string(ctx));
		goto finish;
	}
	double t_device = cli_now();
	cli_device_why(ctx);
	cli_info(1, "compute: %s; %s kernels, %d thread%s", lq_ctx_device_note(ctx), lq_ctx_backend_name(ctx),
		 lq_ctx_threads(ctx), lq_ctx_threads(ctx) == 1 ? "" : "s");
	cli_info(1, "base: %s; %s", p.base_quantized ? "bitsandbytes 4-bit, dequantized exactly" :
				    o.base_as && o.rq.requantize ? "float, quantized to 4 bits first, as PEFT's 4-bit merge loads it" :
				    o.base_as ? "float, merged into its 4-bit quantize-dequantize (--base-as)" : "float, merged as is",
		 o.rq.requantize ? "the result quantized again to 4 bits (--requantize)" : "the result in float");
	if (o.base_as && merge_plan_base_as(&o.rq, &p, sel, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	/* --keep-float: the modules named, and those a first 4-bit merge erases */
	for (size_t i = 0; o.nkeep && i < p.n; i++)
		p.items[i].keep_float = p.items[i].nloras && keep_named(&o, &p.items[i]);
	if (o.keep_auto && !o.common.dry_run &&
	    (merge_plan_outputs(&o.rq, sel, &p, err) != LQ_OK || keep_erased(&o, &p, ctx, err) != LQ_OK)) {
		cli_error("%s", err);
		goto finish;
	}
	for (size_t i = 0; i < p.n; i++)
		p.nkept += p.items[i].keep_float;
	if (merge_plan_outputs(&o.rq, sel, &p, err) != LQ_OK || plan_skip_list(&o, m, sel, &p, err) != LQ_OK ||
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
	p.measure_quant = o.rq.quant;
	p.fid.limits = o.limits;
	if (merge_plan_tasks(&p, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	p.run.on_result = merge_plan_on_result;
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
		for (size_t a = 0; ok && a < o.rq.nadapters; a++)
			ok = out_inputs_add_adapter(in, o.rq.adapters[a]);
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
	merge_plan_free(&p);
	hf_tensors_free(&base);
	hf_select_free(sel);
	lq_ctx_free(ctx);
	for (size_t a = 0; a < o.rq.nadapters; a++) {
		peft_adapter_free(ad[a]);
		free(o.rq.adapters[a]);
	}
	free(ad);
	free(o.rq.adapters);
	free(o.rq.weights);
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
