/*
 * nf4quant: Hugging Face checkpoint → bitsandbytes 4-bit checkpoint (NF4 or FP4, double-quantized
 * constants), bit-identical to what bitsandbytes' CUDA quantize_4bit gives and transformers saves.
 *
 * The composition of DESIGN.md: open the model (headers only), plan every output tensor, file and offset,
 * then stream the tensors through libquant's executor from a safetensors source to a safetensors sink,
 * then write index, config.json and the carried files, and rename the result into place.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bnb.h"
#include "cli.h"
#include "hf_json.h"
#include "hf_model.h"
#include "hf_select.h"
#include "libquant.h"
#include "nf4quant_deq.h"
#include "out_model.h"
#include "run.h"
#include "st_exec.h"

typedef struct options {
	const char *input, *output;
	lq_quant_params quant;
	bool compute_dtype_set;
	lq_dtype compute_dtype;
	cli_output out;          /* --max-shard-size, --shard, --finish, --zstd-level */
	cli_common common;      /* -T, --device, -f, -n, --json */
	const char **include, **exclude;
	size_t ninclude, nexclude;
	bool dequantize;         /* -d: the other way (nf4quant_deq.h) */
	bool dtype_set;          /* --dtype, -d only */
	lq_dtype dtype;
	const char *quant_option; /* the first option given that only quantizing takes, for -d's refusal */
} options;

/* One input tensor and what becomes of it. */
typedef struct item {
	size_t shard;
	const st_tensor *t;
	bool quantize, transpose;
	bool by_user;             /* --include or --exclude names it */
	bool linear;              /* transformers may convert this weight's module (hf_select.h) */
	const char *reason;
	lq_dtype dtype;
	bnb_state state;          /* quantized: the group's state */
	uint64_t bytes_in, bytes_out;
	size_t out_shard;
	int32_t wid[BNB_NPARTS];  /* writer ids of the outputs (wid[0] only for a copy) */
	int32_t sid[BNB_NPARTS];  /* sink ids */
} item;

typedef struct plan {
	item *items;
	size_t n;
	out_model om;             /* the output: shards, writers, index */
	run_tasks run;            /* what fills it */
	uint64_t params_in, params_quantized, bytes_in, bytes_out, quantized_bytes_out;
	size_t nquantized;
	hf_select *sel;           /* transformers' rules for the model */
	char **skip;              /* llm_int8_skip_modules to write (NULL for a file output: no config) */
	size_t nskip;
	/* the options that shape the bytes, for the MANIFEST */
	char blocksize[16], max_shard_size[32];
	char *include, *exclude;
	const char *origin_values[7];
} plan;

static void usage(void)
{
	printf("Usage: %s [OPTION]... INPUT -o OUTPUT\n"
	       "  or:  %s -d [OPTION]... INPUT -o OUTPUT\n"
	       "Quantize a Hugging Face safetensors checkpoint to a bitsandbytes 4-bit checkpoint, or with -d\n"
	       "dequantize a bitsandbytes 4-bit checkpoint (NF4 or FP4) back to float.\n"
	       "\n"
	       "INPUT is a model directory, a model.safetensors.index.json, a .safetensors file, a bundle of a\n"
	       "model directory (.tar.zst or .tar, read in place) or - (a safetensors stream on standard input).\n"
	       "OUTPUT is a directory (a model transformers loads as is), a .safetensors file, a bundle (.tar.zst\n"
	       "or .tar: one reproducible archive of the directory) or - (a safetensors stream on standard\n"
	       "output, never a terminal).\n"
	       "\n"
	       "  -o, --output PATH        where to write (required)\n"
	       "  -d, --dequantize         the other way: every 4-bit tensor to float, as bitsandbytes'\n"
	       "                           dequantize_4bit gives it; other tensors copied; config.json without\n"
	       "                           its quantization_config\n"
	       "      --dtype T            with -d: bf16, fp16 or fp32, the dequantized weights' type\n"
	       "                           (default: each one's own, from its quant_state)\n"
	       "      --quant-type TYPE    nf4 (default) or fp4\n"
	       "      --blocksize N        elements per block: 32, 64 (default), 128, ..., 4096\n"
	       "      --no-double-quant    keep the block constants in float32\n"
	       "      --compute-dtype T    bf16, fp16 or fp32, recorded in quantization_config\n"
	       "                           (default: the dtype of the quantized weights)\n"
	       "      --include GLOB       also quantize tensors whose name matches (repeatable)\n"
	       "      --exclude GLOB       never quantize tensors whose name matches (repeatable)\n"
	       "      --max-shard-size SIZE  split the output into shards of at most SIZE (5GB, 500MB, 2GiB);\n"
	       "                           default: the input's layout\n"
	       "      --shard I/N          write only part I of N of the output shards (balanced by bytes)\n"
	       "                           into the OUTPUT directory, for N jobs on N machines\n"
	       "      --finish             complete an OUTPUT directory of parts: index, config, MANIFEST\n"
	       "      --zstd-level N       compression level of a .tar.zst OUTPUT (1..19, default 3)\n"
	       "      --device DEV         cpu, cuda, cuda:N, all (every GPU) or auto (the default: the GPU\n"
	       "                           when one works, else the CPU); the output is the same on all\n"
	       "  -T, --threads N          compute threads (0 = one per core, the default)\n"
	       "  -f, --force              replace OUTPUT if it exists\n"
	       "  -n, --dry-run            print the plan on standard output (what would be done, sizes,\n"
	       "                           memory); write nothing\n"
	       "      --json               a machine-readable summary (with -n: the plan) on standard output,\n"
	       "                           and nothing else there (so not with -o -)\n"
	       "  -q, --quiet              only errors\n"
	       "  -v, --verbose            one line per tensor (what is done and why), device, skip list;\n"
	       "                           -vv: where the time went\n"
	       "  -h, --help               this help\n"
	       "  -V, --version            version\n"
	       "\n"
	       "By default the tensors transformers converts to 4 bits are quantized: weights of linear layers,\n"
	       "not embeddings, norms, biases or the output head.\n"
	       "--quant-type, --blocksize, --no-double-quant, --compute-dtype, --include and --exclude are for\n"
	       "quantizing: -d takes each tensor's from its quant_state.\n"
	       "Exit status: 0 success, 1 failure, 2 usage error.\n",
	       cli_progname(), cli_progname());
}

static void parse_args(int argc, char **argv, options *o)
{
	enum { OPT_QTYPE = 256, OPT_BLOCKSIZE, OPT_NO_DQ, OPT_COMPUTE, OPT_INCLUDE, OPT_EXCLUDE, OPT_DTYPE };
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"dequantize", no_argument, NULL, 'd'},
		{"dtype", required_argument, NULL, OPT_DTYPE},
		{"quant-type", required_argument, NULL, OPT_QTYPE},
		{"blocksize", required_argument, NULL, OPT_BLOCKSIZE},
		{"no-double-quant", no_argument, NULL, OPT_NO_DQ},
		{"compute-dtype", required_argument, NULL, OPT_COMPUTE},
		{"include", required_argument, NULL, OPT_INCLUDE},
		{"exclude", required_argument, NULL, OPT_EXCLUDE},
		CLI_OUTPUT_LONGOPTS,
		CLI_COMMON_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	*o = (options){.quant = {LQ_QTYPE_NF4, 64, true}, .out = CLI_OUTPUT_DEFAULTS, .common = {.device = cli_default_device()}};
	long v;
	int c;
	opterr = 0; /* our own messages, in our style */
	while ((c = getopt_long(argc, argv, ":o:dT:fnqvhV", longopts, NULL)) != -1) {
		static const struct {
			int opt;
			const char *name;
		} quant_only[] = {{OPT_QTYPE, "--quant-type"}, {OPT_BLOCKSIZE, "--blocksize"}, {OPT_NO_DQ, "--no-double-quant"},
				  {OPT_COMPUTE, "--compute-dtype"}, {OPT_INCLUDE, "--include"}, {OPT_EXCLUDE, "--exclude"}};
		for (size_t k = 0; k < sizeof quant_only / sizeof quant_only[0] && !o->quant_option; k++)
			if (c == quant_only[k].opt)
				o->quant_option = quant_only[k].name;
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case 'd':
			o->dequantize = true;
			break;
		case OPT_DTYPE:
			if (!cli_parse_float_dtype(optarg, &o->dtype))
				cli_usage_error("invalid --dtype '%s' (bf16, fp16 or fp32)", optarg);
			o->dtype_set = true;
			break;
		case OPT_QTYPE:
			if (strcmp(optarg, "nf4") == 0)
				o->quant.qtype = LQ_QTYPE_NF4;
			else if (strcmp(optarg, "fp4") == 0)
				o->quant.qtype = LQ_QTYPE_FP4;
			else
				cli_usage_error("invalid --quant-type '%s' (nf4 or fp4)", optarg);
			break;
		case OPT_BLOCKSIZE:
			if (!cli_parse_int(optarg, LQ_BLOCKSIZE_MIN, LQ_BLOCKSIZE_MAX, &v) || !lq_blocksize_valid(v))
				cli_usage_error("invalid --blocksize '%s' (a power of two from 32 to 4096)", optarg);
			o->quant.blocksize = (int32_t)v;
			break;
		case OPT_NO_DQ:
			o->quant.double_quant = false;
			break;
		case OPT_COMPUTE:
			if (!cli_parse_float_dtype(optarg, &o->compute_dtype))
				cli_usage_error("invalid --compute-dtype '%s' (bf16, fp16 or fp32)", optarg);
			o->compute_dtype_set = true;
			break;
		case OPT_INCLUDE:
			cli_list_add(&o->include, &o->ninclude, optarg);
			break;
		case OPT_EXCLUDE:
			cli_list_add(&o->exclude, &o->nexclude, optarg);
			break;
		default:
			if (!cli_output_option(c, &o->out))
				cli_common_option(c, argv, &o->common, usage);
		}
	}
	if (optind >= argc)
		cli_usage_error("no INPUT given");
	if (optind + 1 < argc)
		cli_usage_error("one INPUT expected, got '%s' too", argv[optind + 1]);
	o->input = argv[optind];
	if (!o->output)
		cli_usage_error("no OUTPUT given (-o)");
	if (!*o->output)
		cli_usage_error("empty OUTPUT (-o '')");
	if (o->dequantize && o->quant_option)
		cli_usage_error("%s is for quantizing: -d takes each tensor's quantization from its quant_state",
				o->quant_option);
	if (o->dtype_set && !o->dequantize)
		cli_usage_error("--dtype is for -d (quantizing records the weights' type: --compute-dtype)");
}

/* ----------------------------------------------------------------------------------- planning */

static lq_status plan_items(const options *o, const hf_model *m, plan *p)
{
	size_t total = 0;
	for (size_t s = 0; s < m->nshards; s++)
		total += m->shards[s].st->ntensors;
	p->items = calloc(total ? total : 1, sizeof *p->items);
	if (!p->items)
		return LQ_ERR_NOMEM;
	hf_select *sel = p->sel = hf_select_create(m->is_model_dir ? m->config : NULL);
	if (!sel)
		return LQ_ERR_NOMEM;
	for (size_t s = 0; s < m->nshards; s++) {
		const st_file *f = m->shards[s].st;
		for (size_t i = 0; i < f->ntensors; i++) {
			item *it = &p->items[p->n++];
			const st_tensor *t = &f->tensors[i];
			it->shard = s;
			it->t = t;
			it->bytes_in = t->end - t->begin;
			lq_dtype dt;
			bool is_float = st_dtype_to_lq(t->dtype, &dt) && dt != LQ_DTYPE_U8;
			it->quantize = hf_select_quantize(sel, t->name, t->ndim, t->shape, is_float, &it->transpose, &it->reason);
			char module[4096];
			it->linear = hf_select_linear_module(sel, t->name, t->ndim, is_float, NULL, module, sizeof module);
			it->by_user = cli_glob_any(t->name, o->include, o->ninclude) || cli_glob_any(t->name, o->exclude, o->nexclude);
			if (!it->quantize && cli_glob_any(t->name, o->include, o->ninclude)) {
				it->quantize = is_float && t->nelem > 0;
				it->transpose = false;
				it->reason = it->quantize ? "--include" : "--include, but not a floating-point tensor";
			}
			if (it->quantize && cli_glob_any(t->name, o->exclude, o->nexclude)) {
				it->quantize = false;
				it->reason = "--exclude";
			}
			if (it->quantize && (t->nelem == 0 || t->ndim > BNB_MAX_DIMS)) {
				it->quantize = false;
				it->reason = t->nelem == 0 ? "empty" : "too many dimensions";
			}
			p->params_in += t->nelem;
			p->bytes_in += it->bytes_in;
			if (!it->quantize) {
				it->bytes_out = it->bytes_in;
				continue;
			}
			it->dtype = dt;
			bnb_state *bs = &it->state;
			*bs = (bnb_state){.qtype = o->quant.qtype, .blocksize = o->quant.blocksize, .dtype = dt,
					  .ndim = t->ndim, .double_quant = o->quant.double_quant,
					  .nested_blocksize = LQ_NESTED_BLOCKSIZE};
			for (int d = 0; d < t->ndim; d++)
				bs->shape[d] = t->shape[d];
			if (it->transpose) {
				bs->shape[0] = t->shape[1];
				bs->shape[1] = t->shape[0];
			}
			it->bytes_out = bnb_group_bytes(bs, (int64_t)t->nelem);
			p->nquantized++;
			p->params_quantized += t->nelem;
			p->quantized_bytes_out += it->bytes_out;
		}
	}
	return LQ_OK;
}

/* The model's config.json, for messages: DIR/config.json, or INPUT:config.json for a bundle. */
static void config_name(const hf_model *m, char *buf, size_t size)
{
	if (m->dir)
		snprintf(buf, size, "%s%sconfig.json", m->dir, fmt_ends_with(m->dir, "/") ? "" : "/");
	else
		snprintf(buf, size, "%s:config.json", m->input);
}

/*
 * A skip-list entry of the input's config.json that cannot be matched as transformers matches it
 * (hf_select.h hf_select_refused) leaves unknown which modules it keeps out, and a wrong guess writes a
 * checkpoint transformers cannot load: refused, unless --include/--exclude decide every module it could
 * reach (then a warning). False: refused, said.
 */
static bool check_refused(const hf_model *m, const plan *p)
{
	const char *entry;
	const char *why = hf_select_refused(p->sel, &entry);
	if (!why)
		return true;
	bool decided = true;
	for (size_t i = 0; i < p->n && decided; i++)
		decided = !p->items[i].linear || p->items[i].by_user;
	char cfg[4096], q[192];
	config_name(m, cfg, sizeof cfg);
	fmt_quote(entry, q, sizeof q);
	if (!decided) {
		cli_error("%s: llm_int8_skip_modules entry '%s' is %s, so which modules it keeps out cannot be told "
			  "(rewrite it, or choose those modules with --include/--exclude)", cfg, q, why);
		return false;
	}
	cli_warn("%s: llm_int8_skip_modules entry '%s' is %s; ignored: --include/--exclude choose every module it "
		 "could keep out", cfg, q, why);
	return true;
}

/*
 * transformers converts every Linear of the model unless it is kept out, and a pre-quantized checkpoint
 * must hold quantized exactly those. The checkpoint of a model directory always says which modules to keep
 * out, in llm_int8_skip_modules: null would leave it to each transformers version's defaults, which differ
 * (skiplist.h S1: 4.x keeps BERT's pooler in float, 5.x does not). The list names every module left in
 * float that a version could convert, and a tied output head, absent from the file but present in the
 * model, each spelled to mean the same under the rules of 4.x and 5.x (hf_select.h hf_select_skip_list).
 */
static lq_status plan_skip_list(const hf_model *m, plan *p)
{
	if (!m->is_model_dir)
		return LQ_OK;
	hf_select_tensor *t = calloc(p->n ? p->n : 1, sizeof *t);
	if (!t)
		return LQ_ERR_NOMEM;
	for (size_t i = 0; i < p->n; i++) {
		const item *it = &p->items[i];
		lq_dtype dt;
		t[i] = (hf_select_tensor){.name = it->t->name, .ndim = it->t->ndim, .quantized = it->quantize,
					  .is_float = st_dtype_to_lq(it->t->dtype, &dt) && dt != LQ_DTYPE_U8};
	}
	hf_skip_list l;
	lq_status st = hf_select_skip_list(p->sel, t, p->n, &l);
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
	return st;
}

/* Output shards: one file, the input's layout, or a split by size that keeps each quantized group in one
 * shard. */
static lq_status plan_shards(const options *o, const hf_model *m, plan *p, char *err)
{
	uint64_t *bytes = calloc(p->n + 1, sizeof *bytes);
	size_t *in_shard = calloc(p->n + 1, sizeof *in_shard), *out_shard = calloc(p->n + 1, sizeof *out_shard);
	lq_status st = LQ_OK;
	if (!bytes || !in_shard || !out_shard) {
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < p->n; i++) {
			bytes[i] = p->items[i].bytes_out;
			in_shard[i] = p->items[i].shard;
		}
		size_t n = om_assign_shards(o->output, o->out.max_shard_size, bytes, in_shard, p->n, m->nshards, out_shard);
		for (size_t i = 0; i < p->n; i++)
			p->items[i].out_shard = out_shard[i];
		st = om_init(&p->om, o->output, n, err);
	}
	free(bytes);
	free(in_shard);
	free(out_shard);
	return st;
}

static lq_status declare_outputs(plan *p, char *err)
{
	for (size_t i = 0; i < p->n; i++) {
		item *it = &p->items[i];
		for (int k = 0; k < BNB_NPARTS; k++)
			it->wid[k] = it->sid[k] = -1;
		if (!it->quantize) {
			it->wid[0] = om_add(&p->om, it->out_shard, it->t->name, it->t->dtype, it->t->ndim, it->t->shape, err);
			if (it->wid[0] < 0)
				return LQ_ERR_ARG;
			continue;
		}
		lq_status st = om_add_group(&p->om, it->out_shard, it->t->name, &it->state, (int64_t)it->t->nelem, NULL,
					    it->wid, err);
		if (st != LQ_OK)
			return st;
	}
	lq_status st = om_layout(&p->om, err);
	p->bytes_out = p->om.bytes;
	return st;
}

/* A list of globs as a JSON array, for the MANIFEST. */
static char *globs_json(const char **globs, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(globs[i]));
	char *s = a ? cJSON_PrintUnformatted(a) : NULL;
	cJSON_Delete(a);
	return s;
}

/* What the MANIFEST records of the options: those that change the output's bytes, never paths, threads,
 * device or --shard, so that every run of the same conversion writes the same manifest. */
static void set_origin(const options *o, plan *p)
{
	static const char *const keys[] = {"quant_type", "blocksize", "double_quant", "compute_dtype", "max_shard_size",
					   "include", "exclude"};
	snprintf(p->blocksize, sizeof p->blocksize, "%d", (int)o->quant.blocksize);
	snprintf(p->max_shard_size, sizeof p->max_shard_size, "%" PRIu64, o->out.max_shard_size);
	p->include = globs_json(o->include, o->ninclude);
	p->exclude = globs_json(o->exclude, o->nexclude);
	const char *compute = !o->compute_dtype_set ? "input" : o->compute_dtype == LQ_DTYPE_BF16 ? "bf16"
			      : o->compute_dtype == LQ_DTYPE_F16 ? "fp16" : "fp32";
	const char *values[] = {lq_qtype_name(o->quant.qtype), p->blocksize, o->quant.double_quant ? "true" : "false",
				compute, p->max_shard_size, p->include ? p->include : "[]", p->exclude ? p->exclude : "[]"};
	memcpy(p->origin_values, values, sizeof values);
	om_set_origin(&p->om, "nf4quant", keys, p->origin_values, sizeof keys / sizeof *keys);
	p->om.zstd_level = o->out.zstd_level;
}

static void plan_free(plan *p)
{
	free(p->include);
	free(p->exclude);
	for (size_t i = 0; i < p->nskip; i++)
		free(p->skip[i]);
	free(p->skip);
	hf_select_free(p->sel);
	run_tasks_free(&p->run);
	om_free(&p->om); /* unfinished files and an uncommitted output are removed */
	free(p->items);
}

/* ---------------------------------------------------------------------------------- reporting */

static double bits_per_param(uint64_t bytes, uint64_t params)
{
	return params ? 8.0 * (double)bytes / (double)params : 0.0;
}

/* The plan: on standard output for --dry-run (what it asked for), else on standard error with -v (with
 * -n --json too: standard output is the JSON's alone). */
static void print_plan(const options *o, const hf_model *m, const plan *p, uint64_t memory)
{
	bool out = o->common.dry_run && !o->common.json;
	char a[32], b[32], c[32];
	for (size_t i = 0; i < p->n; i++) {
		const item *it = &p->items[i];
		char shape[128];
		fmt_shape(shape, sizeof shape, it->t->ndim, it->t->shape);
		cli_plan(out, "%-9s %s %s %s -> %s (%s)%s", it->quantize ? "quantize" : "copy", it->t->name,
			 st_dtype_name(it->t->dtype), shape, cli_human_bytes(it->bytes_out, a, sizeof a), it->reason,
			 it->transpose ? ", transposed (Conv1D)" : "");
	}
	cli_plan(out, "%zu of %zu tensors quantized (%s, blocksize %d%s): %s -> %s, %.3f bits per parameter in "
		 "quantized tensors, %.3f overall", p->nquantized, p->n, lq_qtype_name(o->quant.qtype),
		 (int)o->quant.blocksize, o->quant.double_quant ? ", double quant" : "", cli_human_bytes(p->bytes_in, a, sizeof a),
		 cli_human_bytes(p->bytes_out, b, sizeof b), bits_per_param(p->quantized_bytes_out, p->params_quantized),
		 bits_per_param(p->bytes_out, p->params_in));
	cli_plan(out, "output: %s (%zu shard%s%s), memory needed: about %s", o->output, p->om.nshards, p->om.nshards == 1 ? "" : "s",
		 m->is_model_dir ? ", config.json, carried files" : "", cli_human_bytes(memory, c, sizeof c));
}

static void print_json(const options *o, const plan *p, double seconds, bool written)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "tool", "nf4quant");
	cJSON_AddStringToObject(root, "version", LQ_VERSION_STRING);
	cJSON_AddStringToObject(root, "input", o->input);
	cJSON_AddStringToObject(root, "output", o->output);
	cJSON_AddBoolToObject(root, "dry_run", !written);
	cJSON *q = cJSON_AddObjectToObject(root, "quantization");
	cJSON_AddStringToObject(q, "quant_type", lq_qtype_name(o->quant.qtype));
	cJSON_AddNumberToObject(q, "blocksize", o->quant.blocksize);
	cJSON_AddBoolToObject(q, "double_quant", o->quant.double_quant);
	cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
	for (size_t i = 0; i < p->n; i++) {
		const item *it = &p->items[i];
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "name", it->t->name);
		cJSON_AddStringToObject(t, "action", it->quantize ? "quantize" : "copy");
		cJSON_AddStringToObject(t, "reason", it->reason);
		cJSON_AddStringToObject(t, "dtype", st_dtype_name(it->t->dtype));
		cJSON *shape = cJSON_AddArrayToObject(t, "shape");
		for (int d = 0; d < it->t->ndim; d++)
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)it->t->shape[d]));
		cJSON_AddNumberToObject(t, "bytes_in", (double)it->bytes_in);
		cJSON_AddNumberToObject(t, "bytes_out", (double)it->bytes_out);
		cJSON_AddStringToObject(t, "shard", p->om.files[it->out_shard]);
		cJSON_AddItemToArray(arr, t);
	}
	cJSON *tot = cJSON_AddObjectToObject(root, "totals");
	cJSON_AddNumberToObject(tot, "tensors", (double)p->n);
	cJSON_AddNumberToObject(tot, "quantized", (double)p->nquantized);
	cJSON_AddNumberToObject(tot, "parameters", (double)p->params_in);
	cJSON_AddNumberToObject(tot, "quantized_parameters", (double)p->params_quantized);
	cJSON_AddNumberToObject(tot, "bytes_in", (double)p->bytes_in);
	cJSON_AddNumberToObject(tot, "bytes_out", (double)p->bytes_out);
	cJSON_AddNumberToObject(tot, "bits_per_param", bits_per_param(p->bytes_out, p->params_in));
	cJSON_AddNumberToObject(tot, "quantized_bits_per_param", bits_per_param(p->quantized_bytes_out, p->params_quantized));
	cJSON_AddNumberToObject(tot, "shards", (double)p->om.nshards);
	cJSON_AddNumberToObject(root, "seconds", seconds);
	char *s = cJSON_Print(root);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	cJSON_Delete(root);
}

/* ------------------------------------------------------------------------------------- output */

/* config.json with the quantization_config, or NULL (no config in the input); *len its length. */
static char *output_config(const options *o, const hf_model *m, const plan *p, size_t *len, char *err)
{
	if (!m->is_model_dir || !m->config_text)
		return NULL;
	lq_dtype compute = o->compute_dtype;
	if (!o->compute_dtype_set) {
		compute = LQ_DTYPE_BF16;
		for (size_t i = 0; i < p->n; i++)
			if (p->items[i].quantize) {
				compute = p->items[i].dtype;
				break;
			}
	}
	char *member = hf_quantization_config(o->quant.qtype, o->quant.double_quant, compute, p->skip, p->nskip);
	char *cfg = member ? hf_config_edit(m->config_text, m->config_len, "quantization_config", member, len, err) : NULL;
	free(member);
	if (!member)
		fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	return cfg;
}

/* The task of every tensor of the shards this run writes (another part's are left to it), before anything
 * is opened: copies, and 4-bit groups quantized from their tensor. */
static lq_status plan_tasks(const options *o, const hf_model *m, plan *p, char *err)
{
	lq_status st = run_tasks_init(&p->run, p->n, err);
	for (size_t i = 0; i < p->n && st == LQ_OK; i++) {
		item *it = &p->items[i];
		if (!om_shard_todo(&p->om, it->out_shard))
			continue;
		const out_writer *w = om_writer(&p->om, it->out_shard);
		lq_task *t = run_tasks_add(&p->run, it->out_shard);
		t->name = it->t->name;
		t->origin = m->shards[it->shard].path;
		t->input = st_source_add(p->run.src, m->shards[it->shard].st, it->t, it->transpose);
		t->nbytes = it->bytes_in;
		t->out_data = -1;
		for (int k = 0; k < BNB_NPARTS; k++)
			if (it->wid[k] >= 0 && (it->sid[k] = st_sink_add(p->run.sink, w, it->wid[k])) < 0)
				t->input = -1;
		if (t->input < 0)
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		t->out_data = it->sid[BNB_PART_WEIGHT];
		if (!it->quantize) {
			t->op = LQ_OP_COPY;
			continue;
		}
		t->op = LQ_OP_QUANTIZE4;
		t->ndim = it->state.ndim;
		memcpy(t->shape, it->state.shape, sizeof it->state.shape);
		t->quantize4 = (lq_quantize4_args){.dtype = it->dtype, .out = {.quant = o->quant,
			.out_absmax = it->sid[BNB_PART_ABSMAX], .out_nested_absmax = it->sid[BNB_PART_NESTED_ABSMAX]}};
		if ((st = st_sink_add_group(p->run.sink, t->out_data, &it->state, it->sid[BNB_PART_QUANT_MAP],
					    it->sid[BNB_PART_NESTED_QUANT_MAP], it->sid[BNB_PART_QUANT_STATE])) != LQ_OK)
			fmt_fail(err, st, "out of memory");
	}
	return st;
}

/* Runs the tasks and writes everything under the temporary name; the caller commits. */
static lq_status convert(const options *o, hf_model *m, plan *p, lq_ctx *ctx, char *err)
{
	lq_status st = run_tasks_execute(ctx, &p->om, m, &p->run, "quantizing", err);
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

typedef struct device_start {
	pthread_t thread;
	lq_ctx *ctx;
	const char *device;
	lq_status status;
} device_start;

static void *start_device(void *arg)
{
	device_start *d = arg;
	d->status = lq_ctx_use_device(d->ctx, d->device);
	return NULL;
}

int main(int argc, char **argv)
{
	cli_init(argv[0]);
	options o;
	parse_args(argc, argv, &o);
	bool out_is_file = fmt_ends_with(o.output, ".safetensors") || om_is_stream(o.output);
	if (o.out.max_shard_size && out_is_file)
		cli_usage_error("--max-shard-size needs a directory OUTPUT, not %s", om_is_stream(o.output) ?
				"standard output" : "a .safetensors file");
	if ((o.out.nparts || o.out.finish) && (out_is_file || om_is_bundle(o.output)))
		cli_usage_error("--%s needs a directory OUTPUT", o.out.finish ? "finish" : "shard");
	if (o.out.nparts && o.out.finish)
		cli_usage_error("--shard and --finish are separate steps: the parts first, then --finish");
	if (om_is_stream(o.output) && o.common.json)
		cli_usage_error("--json prints on standard output, which -o - takes for the tensors");
	if (om_is_stream(o.output) && !o.common.dry_run && isatty(STDOUT_FILENO)) {
		cli_error("refusing to write binary data to a terminal (redirect standard output, or -o FILE)");
		return CLI_EXIT_FAILURE;
	}
	cli_install_signals();
	if (o.common.json)
		cli_ignore_sigpipe();
	if (o.dequantize) {
		deq_options d = {.input = o.input, .output = o.output, .dtype_set = o.dtype_set, .dtype = o.dtype,
				 .out = o.out, .common = o.common};
		return deq_main(&d);
	}
	double t0 = cli_now();

	int status = CLI_EXIT_FAILURE;
	char err[FMT_ERRBUF] = "";
	hf_model *m = hf_model_create();
	plan p = {0};
	lq_ctx *ctx = NULL;
	device_start dev = {0};
	bool dev_started = false;
	if (!m) {
		cli_error("out of memory");
		return CLI_EXIT_FAILURE;
	}
	lq_ctx_options copts = cli_ctx_options(&o.common);
	ctx = lq_ctx_create(&copts);
	if (!ctx) {
		cli_error("cannot start: out of memory or threads");
		goto finish;
	}
	/* Opening a GPU takes a quarter of a second: it happens while the headers are read and the output
	 * planned, unless "auto" must see the plan to choose (then after it) */
	const bool automatic = strcmp(o.common.device, "auto") == 0;
	dev = (device_start){.ctx = ctx, .device = o.common.device};
	dev_started = !o.common.dry_run && !automatic && pthread_create(&dev.thread, NULL, start_device, &dev) == 0;
	if (!o.common.dry_run && !automatic && !dev_started)
		start_device(&dev);
	if (hf_model_open(m, o.input) != LQ_OK) {
		cli_error("%s", m->err);
		goto finish;
	}
	if (m->unindexed)
		cli_warn("%zu tensors in the shards are missing from the index; they are converted too", m->unindexed);
	if (m->config && cJSON_GetObjectItemCaseSensitive(m->config, "quantization_config")) {
		cli_error("%s: the model is already quantized (config.json has a quantization_config; -d dequantizes it)",
			  o.input);
		goto finish;
	}
	if (om_place_check(m, NULL, 0, o.output, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	if (plan_items(&o, m, &p) != LQ_OK) {
		cli_error("out of memory");
		goto finish;
	}
	if (!check_refused(m, &p))
		goto finish;
	if (p.nquantized == 0)
		cli_warn("no tensor matches the rules for quantization: the output is a copy");
	if (plan_skip_list(m, &p) != LQ_OK) {
		cli_error("out of memory");
		goto finish;
	}
	if (p.skip)
		cli_info(1, "llm_int8_skip_modules: %zu entr%s, the modules left in float", p.nskip, p.nskip == 1 ? "y" : "ies");
	if (plan_shards(&o, m, &p, err) != LQ_OK || declare_outputs(&p, err) != LQ_OK ||
	    (o.out.nparts && om_set_part(&p.om, (size_t)o.out.part, (size_t)o.out.nparts, err) != LQ_OK)) {
		cli_error("%s", err);
		goto finish;
	}
	if (o.out.finish)
		om_set_finish(&p.om);
	set_origin(&o, &p);
	if (plan_tasks(&o, m, &p, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	const uint64_t memory = run_tasks_memory(ctx, &p.run);
	double t_plan = cli_now();
	if (automatic && !o.common.dry_run) {
		const lq_work work = {.bytes_in = p.bytes_in, .bytes_out = p.bytes_out, .out_synced = !om_is_stream(o.output),
				      .quantized = (int64_t)p.params_quantized};
		lq_ctx_set_work(ctx, &work);
		start_device(&dev);
	}
	if (dev_started) {
		pthread_join(dev.thread, NULL);
		dev_started = false;
	}
	if (!o.common.dry_run && dev.status != LQ_OK) {
		cli_error("--device %s: %s", o.common.device, lq_ctx_error_string(ctx));
		goto finish;
	}
	double t_device = cli_now();
	if (!o.out.nparts && om_carries_files(m, o.output))
		for (size_t i = 0; i < m->nskipped; i++)
			cli_info(0, "not carried: %s", m->skipped[i]);
	if (o.common.dry_run || cli_verbosity > 0)
		print_plan(&o, m, &p, memory);
	if (o.common.dry_run) {
		if (o.common.json)
			print_json(&o, &p, cli_now() - t0, false);
		status = CLI_EXIT_OK;
		goto finish;
	}
	p.om.zstd_threads = lq_ctx_threads(ctx);
	if (om_begin(&p.om, o.common.force, om_carried_bytes(m), err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	cli_device_why(ctx);
	cli_info(1, "compute: %s; %s kernels, %d thread%s", lq_ctx_device_note(ctx), lq_ctx_backend_name(ctx),
		 lq_ctx_threads(ctx), lq_ctx_threads(ctx) == 1 ? "" : "s");
	double t_start = cli_now();
	if (convert(&o, m, &p, ctx, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	double t_converted = cli_now();
	/* the summary before the rename: when it cannot be written the run fails and leaves nothing */
	if (o.common.json) {
		print_json(&o, &p, t_converted - t0, true);
		if (!cli_flush_stdout())
			goto finish;
	}
	if (om_commit(&p.om, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	double t_committed = cli_now();
	double secs = cli_now() - t0;
	cli_info(2, "time: %.3f s reading headers and planning, %.3f s more opening the compute device, %.3f s "
		 "converting (reading, computing, writing, syncing), %.3f s renaming into place", t_plan - t0,
		 t_device - t_plan, t_converted - t_start, t_committed - t_converted);
	size_t written = 0;
	for (size_t s = 0; s < p.om.nshards; s++)
		written += om_shard_todo(&p.om, s);
	if (o.common.json) {
		/* written above */
	} else if (o.out.nparts) {
		cli_info(0, "%s: part %ld of %ld: %zu of its %zu shards written, %.2f s; the directory is complete once "
			 "every part is there and --finish has run", o.output, o.out.part + 1, o.out.nparts, written, p.om.nshards,
			 secs);
	} else if (p.om.finish) {
		cli_info(0, "%s: completed from its %zu parts' shards (index, config.json, carried files, MANIFEST), "
			 "%.2f s", o.output, p.om.nshards, secs);
	} else {
		char a[32], b[32];
		cli_info(0, "%s: %zu of %zu tensors quantized to %s, %s -> %s (%.3f bits per parameter), %.2f s", o.output,
			 p.nquantized, p.n, lq_qtype_name(o.quant.qtype), cli_human_bytes(p.bytes_in, a, sizeof a),
			 cli_human_bytes(p.bytes_out, b, sizeof b), bits_per_param(p.bytes_out, p.params_in), secs);
	}
	status = CLI_EXIT_OK;
finish:
	if (dev_started)
		pthread_join(dev.thread, NULL);
	plan_free(&p); /* unfinished files and an uncommitted output are removed */
	lq_ctx_free(ctx);
	hf_model_free(m);
	free(o.include);
	free(o.exclude);
	if (status == CLI_EXIT_OK && fflush(stdout) != 0) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		status = CLI_EXIT_FAILURE;
	}
	return status;
}
