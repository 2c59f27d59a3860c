/*
 * lora_combine.c: loramerge --combine (lora_combine.h): PEFT 0.21's add_weighted_adapter without the model.
 *
 * What PEFT does (peft/tuners/lora/model.py), and so what is done here:
 * - _check_add_weighted_adapter: one adapter makes any TYPE "linear"; the new rank is the adapters' common
 *   rank (the FACTORS types, which refuse different ranks), their sum (cat), or --svd-rank else their
 *   largest (the SVD types), an adapter's rank being max(r, rank_pattern's values); target_modules the
 *   union of the lists, or the regexes joined "(a)|(b)", never a mix.
 * - the config is the first adapter's with r and lora_alpha the new rank, target_modules the union, and
 *   rank_pattern and alpha_pattern emptied (so every module gets that rank, scaling 1, or sqrt(r) when the
 *   first adapter had use_rslora);
 * - per module, the adapters that have it: cat stacks A_i * weight_i * scaling_i and B_i (padded with zeros
 *   to the new rank); the FACTORS types combine the A's with weights sqrt(|w s|) carrying the sign and the
 *   B's with sqrt(|w s|); the SVD types combine the deltas scaling_i * B_i @ A_i with the weights and keep
 *   the truncated SVD (libquant.h: lq_combine_tasks, lq_svd_truncate).
 * What PEFT takes from the base model (DoRA magnitudes, modules_to_save, trainable tokens, saved
 * embeddings) cannot be made without it: such adapters are refused, and so are the cases where PEFT fails
 * or writes an adapter it cannot load again.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adapter_out.h"
#include "bundle.h"
#include "cli.h"
#include "fmt.h"
#include "hf_out.h"
#include "libquant.h"
#include "lora_combine.h"
#include "manifest.h"
#include "out_model.h"
#include "peft.h"
#include "safetensors.h"

#define WEIGHTS_NAME ADAPTER_WEIGHTS_NAME
#define CONFIG_NAME ADAPTER_CONFIG_NAME
#define KEY_PREFIX ADAPTER_KEY_PREFIX

typedef struct copts {
	const lq_combine_type *type;
	char **paths;
	double *weights;
	size_t n;
	const char *output;
	double density;
	bool density_set, majority_set, majority_frequency, seed_set;
	long svd_rank;    /* 0: the largest of the adapters' ranks */
	double svd_clamp; /* < 0: none */
	uint64_t seed;
	cli_common common;
} copts;

bool lora_combine_wanted(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--combine") == 0 || strncmp(argv[i], "--combine=", 10) == 0)
			return true;
	}
	return false;
}

static void usage(void)
{
	size_t n;
	const lq_combine_type *t = lq_combine_types(&n);
	printf("Usage: %s --combine TYPE [OPTION]... ADAPTER[:WEIGHT]... -o ADAPTER_OUT\n"
	       "Combine PEFT LoRA adapters into one adapter, as PEFT's add_weighted_adapter() does.\n"
	       "\n"
	       "TYPE is PEFT's combination_type:", cli_progname());
	for (size_t i = 0; i < n; i++)
		printf("%s %s", i ? "," : "", t[i].name);
	printf(".\n"
	       "WEIGHT, a finite number after the last ':', scales an adapter (default 1).\n"
	       "\n"
	       "  -o, --output DIR         the combined adapter's directory (or a .tar.zst/.tar bundle) (required)\n"
	       "      --density X          the fraction of each tensor pruning keeps (ties, dare_*, magnitude_prune*)\n"
	       "      --majority-sign-method total|frequency  the sign election of ties* and dare_ties* (total)\n"
	       "      --svd-rank N         the rank of the *svd types' adapter (default: the largest rank)\n"
	       "      --svd-clamp Q        clamp the *svd factors to the Q quantile of their values (0..1)\n"
	       "      --seed N             the random pruning of dare_* (required there)\n"
	       "  -f, --force              replace an existing output\n"
	       "  -n, --dry-run            say what would be done, write nothing\n"
	       "  -q, --quiet              errors only\n"
	       "  -v, --verbose            more detail\n"
	       "  -h, --help               this help\n"
	       "  -V, --version            the version\n"
	       "\n"
	       "Exit status: 0 success, 1 failure, 2 usage error. See loramerge(1).\n");
}

static double parse_number(const char *opt, const char *arg, double min, double max)
{
	char *end = NULL;
	const double v = *arg && !isspace((unsigned char)*arg) ? strtod(arg, &end) : NAN;
	if (!end || *end || !(v >= min && v <= max))
		cli_usage_error("invalid %s '%s' (a number from %g to %g)", opt, arg, min, max);
	return v;
}

static void add_adapter(copts *o, const char *arg)
{
	char **p = realloc(o->paths, (o->n + 1) * sizeof *p);
	if (p)
		o->paths = p;
	double *w = realloc(o->weights, (o->n + 1) * sizeof *w);
	if (w)
		o->weights = w;
	if (!p || !w) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAILURE);
	}
	cli_adapter_arg(arg, &o->paths[o->n], &o->weights[o->n]);
	o->n++;
}

static void parse_args(int argc, char **argv, copts *o)
{
	enum { OPT_COMBINE = 256, OPT_DENSITY, OPT_MAJORITY, OPT_SVD_RANK, OPT_SVD_CLAMP, OPT_SEED };
	static const struct option longopts[] = {
		{"combine", required_argument, NULL, OPT_COMBINE},
		{"output", required_argument, NULL, 'o'},
		{"density", required_argument, NULL, OPT_DENSITY},
		{"majority-sign-method", required_argument, NULL, OPT_MAJORITY},
		{"svd-rank", required_argument, NULL, OPT_SVD_RANK},
		{"svd-clamp", required_argument, NULL, OPT_SVD_CLAMP},
		{"seed", required_argument, NULL, OPT_SEED},
		CLI_COMMON_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	*o = (copts){.svd_clamp = -1, .common = {.device = cli_default_device()}};
	const char *type = NULL;
	long v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:T:fnqvhV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_COMBINE:
			type = optarg;
			break;
		case 'o':
			o->output = optarg;
			break;
		case OPT_DENSITY:
			o->density = parse_number("--density", optarg, 0, 1);
			o->density_set = true;
			break;
		case OPT_MAJORITY:
			if (strcmp(optarg, "total") != 0 && strcmp(optarg, "frequency") != 0)
				cli_usage_error("invalid --majority-sign-method '%s' (total or frequency)", optarg);
			o->majority_frequency = strcmp(optarg, "frequency") == 0;
			o->majority_set = true;
			break;
		case OPT_SVD_RANK:
			if (!cli_parse_int(optarg, 1, INT32_MAX, &v))
				cli_usage_error("invalid --svd-rank '%s' (a positive integer)", optarg);
			o->svd_rank = v;
			break;
		case OPT_SVD_CLAMP:
			o->svd_clamp = parse_number("--svd-clamp", optarg, 0, 1);
			break;
		case OPT_SEED: {
			char *end = NULL;
			errno = 0;
			const unsigned long long s = isdigit((unsigned char)*optarg) ? strtoull(optarg, &end, 10) : 0;
			if (!end || *end || errno)
				cli_usage_error("invalid --seed '%s' (an integer from 0 to 2^64 - 1)", optarg);
			o->seed = s;
			o->seed_set = true;
			break;
		}
		default:
			cli_common_option(c, argv, &o->common, usage);
		}
	}
	if (!type)
		cli_usage_error("no --combine TYPE given");
	if (!(o->type = lq_combine_type_find(type))) {
		size_t n;
		const lq_combine_type *t = lq_combine_types(&n);
		char names[256] = "";
		for (size_t i = 0; i < n; i++)
			snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", t[i].name);
		cli_usage_error("unknown --combine TYPE '%s': PEFT's combination types are %s", type, names);
	}
	const char *name = o->type->name;
	if (o->type->prune != LQ_COMBINE_PRUNE_NONE && !o->density_set)
		cli_usage_error("--combine %s prunes: it needs --density", name);
	if (o->type->prune == LQ_COMBINE_PRUNE_NONE && o->density_set)
		cli_usage_error("--density is for the types that prune: --combine %s does not", name);
	if (o->majority_set && !o->type->ties)
		cli_usage_error("--majority-sign-method is for the TIES types: --combine %s elects no sign", name);
	if ((o->svd_rank || o->svd_clamp >= 0) && o->type->form != LQ_COMBINE_SVD)
		cli_usage_error("--svd-rank and --svd-clamp are for the *svd types: --combine %s takes no SVD", name);
	if (o->type->prune == LQ_COMBINE_PRUNE_RANDOM && !o->seed_set)
		cli_usage_error("--combine %s prunes at random: it needs --seed (PEFT's masks come from torch's generator, "
				"which is not reproduced)", name);
	if (o->seed_set && o->type->prune != LQ_COMBINE_PRUNE_RANDOM)
		cli_usage_error("--seed is for the random types (dare_*): --combine %s draws nothing", name);
	if (o->common.json)
		cli_usage_error("--json is not available with --combine");
	if (optind >= argc)
		cli_usage_error("no ADAPTER given");
	for (; optind < argc; optind++)
		add_adapter(o, argv[optind]);
	if (!o->output)
		cli_usage_error("no ADAPTER_OUT given (-o)");
	if (!*o->output)
		cli_usage_error("empty ADAPTER_OUT (-o '')");
	if (strcmp(o->output, "-") == 0 || fmt_ends_with(o->output, ".safetensors"))
		cli_usage_error("ADAPTER_OUT is an adapter directory (or a bundle of one), not '%s'", o->output);
}

/* ------------------------------------------------------------------------------------- the plan */

/* A module of the combined adapter, and the adapters that have it. */
typedef struct cmodule {
	const char *name;
	peft_kind kind;
	int64_t in, out;        /* A [r, in], B [out, r] */
	const peft_module **of; /* per adapter, NULL where it lacks the module */
	int32_t id_a, id_b;     /* their writer ids */
} cmodule;

typedef struct plan {
	const lq_combine_type *type; /* PEFT's: "linear" for one adapter */
	int64_t rank;
	cmodule *mods;
	size_t nmods;
	cJSON *config;
} plan;


static void plan_free(plan *p)
{
	for (size_t i = 0; i < p->nmods; i++)
		free(p->mods[i].of);
	free(p->mods);
	cJSON_Delete(p->config);
}

/* The rank PEFT gives an adapter in _check_add_weighted_adapter: r, or the largest of r and rank_pattern's
 * values. */
static int64_t peft_rank(const peft_adapter *a)
{
	int64_t r = a->r;
	const cJSON *rp = fmt_json_member(a->config, "rank_pattern");
	for (const cJSON *e = cJSON_IsObject(rp) ? rp->child : NULL; e; e = e->next)
		if (cJSON_IsNumber(e) && e->valuedouble > (double)r && e->valuedouble <= INT32_MAX)
			r = (int64_t)e->valuedouble;
	return r;
}

/* A config member, JSON null and absent alike. */
static const cJSON *member(const peft_adapter *a, const char *key)
{
	const cJSON *m = fmt_json_member(a->config, key);
	return cJSON_IsNull(m) ? NULL : m;
}

static bool same_member(const peft_adapter *a, const peft_adapter *b, const char *key)
{
	const cJSON *x = member(a, key), *y = member(b, key);
	return (!x && !y) || (x && y && cJSON_Compare(x, y, true));
}

/* What PEFT would take from the base model, or refuses, or would write and not load again: refused. */
static bool check_adapters(const copts *o, peft_adapter *const *ad)
{
	char q[2][FMT_ERRBUF / 4];
	for (size_t i = 0; i < o->n; i++) {
		const char *path = fmt_quote(o->paths[i], q[0], sizeof q[0]);
		if (ad[i]->use_dora) {
			cli_error("'%s': a DoRA adapter: add_weighted_adapter gives the combined adapter magnitudes from the "
				  "base model's weights, which --combine does not read", path);
			return false;
		}
		if (ad[i]->nreplacements) {
			cli_error("'%s': holds whole tensors of the model (modules_to_save, trainable tokens, biases or saved "
				  "embeddings, e.g. '%s'): add_weighted_adapter gives the combined adapter the base model's, "
				  "which --combine does not read", path, fmt_quote(ad[i]->replacements[0].target, q[1], sizeof q[1]));
			return false;
		}
		if (ad[i]->lora_bias) {
			cli_error("'%s': lora_bias: add_weighted_adapter leaves the combined adapter's lora_B biases zero, "
				  "dropping the adapter's", path);
			return false;
		}
		const cJSON *tm = member(ad[i], "target_modules");
		if (!tm) {
			cli_error("'%s': no target_modules: add_weighted_adapter combines adapters by their target_modules",
				  path);
			return false;
		}
		if (i == 0)
			continue;
		const char *first = fmt_quote(o->paths[0], q[1], sizeof q[1]);
		const cJSON *b0 = member(ad[0], "base_model_name_or_path"), *bi = member(ad[i], "base_model_name_or_path");
		if (cJSON_IsString(b0) && cJSON_IsString(bi) && strcmp(b0->valuestring, bi->valuestring) != 0) {
			char m0[FMT_ERRBUF / 4], mi[FMT_ERRBUF / 4];
			cli_error("adapters of different base models: '%s' is for '%s', '%s' for '%s'", first,
				  fmt_quote(b0->valuestring, m0, sizeof m0), path, fmt_quote(bi->valuestring, mi, sizeof mi));
			return false;
		}
		if (cJSON_IsString(tm) != cJSON_IsString(member(ad[0], "target_modules"))) {
			cli_error("'%s' and '%s' name their target_modules one by a regex, one by a list: add_weighted_adapter "
				  "does not combine those", first, path);
			return false;
		}
		static const char *const kept[] = {"layers_to_transform", "layers_pattern", "exclude_modules"};
		for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++)
			if (!same_member(ad[0], ad[i], kept[k])) {
				cli_error("'%s' and '%s' differ in %s: add_weighted_adapter keeps the first adapter's, which "
					  "would leave modules of the others out", first, path, kept[k]);
				return false;
			}
	}
	return true;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* target_modules of the combined adapter: the lists' union (sorted), or the regexes joined "(a)|(b)". */
static cJSON *combined_targets(peft_adapter *const *ad, size_t n)
{
	if (cJSON_IsString(member(ad[0], "target_modules"))) {
		fmt_buf b = {0};
		for (size_t i = 0; i < n; i++)
			fmt_buf_printf(&b, "%s(%s)", i ? "|" : "", member(ad[i], "target_modules")->valuestring);
		cJSON *s = b.oom ? NULL : cJSON_CreateString(b.p ? b.p : "");
		free(b.p);
		return s;
	}
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += (size_t)cJSON_GetArraySize(member(ad[i], "target_modules"));
	const char **names = malloc((total ? total : 1) * sizeof *names);
	cJSON *list = cJSON_CreateArray();
	if (!names || !list) {
		free(names);
		cJSON_Delete(list);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (const cJSON *e = member(ad[i], "target_modules")->child; e; e = e->next)
			if (cJSON_IsString(e))
				names[k++] = e->valuestring;
	qsort(names, k, sizeof *names, cmp_str);
	for (size_t i = 0; i < k; i++)
		if ((i == 0 || strcmp(names[i], names[i - 1]) != 0) && !cJSON_AddItemToArray(list, cJSON_CreateString(names[i]))) {
			cJSON_Delete(list);
			list = NULL;
			break;
		}
	free(names);
	return list;
}

/* Replaces every member `key` of obj (duplicates included) by item. */
static bool set_member(cJSON *obj, const char *key, cJSON *item)
{
	if (!item)
		return false;
	while (cJSON_GetObjectItemCaseSensitive(obj, key))
		cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	return cJSON_AddItemToObject(obj, key, item);
}

/* The first adapter's config with r, lora_alpha, target_modules, rank_pattern and alpha_pattern as
 * add_weighted_adapter replaces them (and inference_mode, as save_pretrained writes it). */
static cJSON *combined_config(peft_adapter *const *ad, size_t n, int64_t rank)
{
	cJSON *c = cJSON_Duplicate(ad[0]->config, true);
	if (!c || !set_member(c, "r", cJSON_CreateNumber((double)rank)) ||
	    !set_member(c, "lora_alpha", cJSON_CreateNumber((double)rank)) ||
	    !set_member(c, "target_modules", combined_targets(ad, n)) ||
	    !set_member(c, "rank_pattern", cJSON_CreateObject()) || !set_member(c, "alpha_pattern", cJSON_CreateObject()) ||
	    !set_member(c, "inference_mode", cJSON_CreateTrue())) {
		cJSON_Delete(c);
		return NULL;
	}
	return c;
}

static cmodule *find_module(plan *p, const char *name)
{
	for (size_t i = 0; i < p->nmods; i++)
		if (strcmp(p->mods[i].name, name) == 0)
			return &p->mods[i];
	return NULL;
}

/* The modules (the union of the adapters'), the new rank, and every check PEFT makes or should. */
static bool make_plan(const copts *o, peft_adapter *const *ad, plan *p)
{
	char q[3][FMT_ERRBUF / 4];
	/* _check_add_weighted_adapter: one adapter is a linear combination */
	p->type = o->n == 1 ? lq_combine_type_find("linear") : o->type;
	const lq_combine_form form = p->type->form;
	int64_t rank = 0;
	for (size_t i = 0; i < o->n; i++) {
		const int64_t r = peft_rank(ad[i]);
		if (form == LQ_COMBINE_FACTORS && i && r != rank) {
			cli_error("--combine %s adds the A's and the B's of adapters of one rank: '%s' has r %" PRId64 ", '%s' "
				  "%" PRId64 " (cat and the svd types combine different ranks)", p->type->name,
				  fmt_quote(o->paths[0], q[0], sizeof q[0]), rank, fmt_quote(o->paths[i], q[1], sizeof q[1]), r);
			return false;
		}
		rank = form == LQ_COMBINE_CONCAT ? rank + r : r > rank ? r : rank;
	}
	if (form == LQ_COMBINE_SVD && o->svd_rank)
		rank = o->svd_rank;
	p->rank = rank;
	size_t cap = 0;
	for (size_t i = 0; i < o->n; i++)
		cap += ad[i]->nmodules;
	p->mods = calloc(cap ? cap : 1, sizeof *p->mods);
	if (!p->mods)
		goto oom;
	for (size_t i = 0; i < o->n; i++) {
		for (size_t k = 0; k < ad[i]->nmodules; k++) {
			const peft_module *m = &ad[i]->modules[k];
			cmodule *c = find_module(p, m->module);
			if (!c) {
				c = &p->mods[p->nmods++];
				*c = (cmodule){.name = m->module, .kind = m->kind, .in = m->a->shape[1], .out = m->b->shape[0],
					       .of = calloc(o->n, sizeof *c->of)};
				if (!c->of)
					goto oom;
			} else if (c->kind != m->kind || c->in != m->a->shape[1] || c->out != m->b->shape[0]) {
				cli_error("module '%s' is not the same layer in '%s' (%s, %" PRId64 " x %" PRId64 ") as in '%s' (%s, "
					  "%" PRId64 " x %" PRId64 "): not adapters of one base model", fmt_quote(m->module, q[0], sizeof q[0]),
					  fmt_quote(o->paths[i], q[1], sizeof q[1]), m->kind == PEFT_LINEAR ? "linear" : "embedding",
					  m->b->shape[0], m->a->shape[1], fmt_quote(o->paths[0], q[2], sizeof q[2]),
					  c->kind == PEFT_LINEAR ? "linear" : "embedding", c->out, c->in);
				return false;
			}
			c->of[i] = m;
		}
	}
	for (size_t k = 0; k < p->nmods; k++) {
		const cmodule *c = &p->mods[k];
		int64_t sum = 0;
		for (size_t i = 0; i < o->n; i++) {
			if (!c->of[i])
				continue;
			sum += c->of[i]->rank;
			if (form == LQ_COMBINE_FACTORS && c->of[i]->rank != rank) {
				cli_error("'%s': module '%s' has rank %d, not the combined adapter's %" PRId64 ": add_weighted_adapter "
					  "drops rank_pattern, so its adapter could not hold the module", fmt_quote(o->paths[i], q[0], sizeof q[0]),
					  fmt_quote(c->name, q[1], sizeof q[1]), c->of[i]->rank, rank);
				return false;
			}
		}
		if (form == LQ_COMBINE_CONCAT && sum > rank) {
			cli_error("module '%s': its ranks add up to %" PRId64 ", more than the adapters' r (%" PRId64 ")",
				  fmt_quote(c->name, q[0], sizeof q[0]), sum, rank);
			return false;
		}
		if (form == LQ_COMBINE_SVD && (rank > c->in || rank > c->out)) {
			cli_error("module '%s' (%" PRId64 " x %" PRId64 ") has no rank %" PRId64 " SVD: add_weighted_adapter would "
				  "write an adapter PEFT cannot load%s", fmt_quote(c->name, q[0], sizeof q[0]), c->out, c->in, rank,
				  o->svd_rank ? " (a smaller --svd-rank)" : "");
			return false;
		}
	}
	if (!(p->config = combined_config(ad, o->n, rank)))
		goto oom;
	return true;
oom:
	cli_error("out of memory");
	return false;
}

/* ------------------------------------------------------------------------------------- the arithmetic */

/* A tensor of an adapter as float32 (malloc'd). */
static float *read_f32(peft_adapter *a, const st_tensor *t, int64_t count)
{
	lq_dtype dt;
	const size_t raw = (size_t)(t->end - t->begin);
	float *out = malloc((size_t)(count ? count : 1) * sizeof *out);
	void *buf = malloc(raw ? raw : 1);
	if (!out || !buf || !st_dtype_to_lq(t->dtype, &dt)) {
		cli_error(out && buf ? "%s: tensor '%s': not a float tensor" : "out of memory", a->dir, t->name);
		goto fail;
	}
	if (st_file_read(a->st, t, 0, buf, raw) != LQ_OK) {
		cli_error("%s", st_file_error(a->st));
		goto fail;
	}
	lq_to_f32(buf, dt, count, out);
	free(buf);
	return out;
fail:
	free(out);
	free(buf);
	return NULL;
}

/* The scaling PEFT multiplies by (target.scaling[adapter], a Python float). */
static double scaling_of(const peft_adapter *a, const peft_module *m)
{
	return a->use_rslora ? m->alpha / sqrt((double)m->rank) : m->alpha / (double)m->rank;
}

/* The random streams of a module's tensors: FNV-1a of its name and the role. */
static uint64_t stream_of(const char *name, unsigned role)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (const unsigned char *s = (const unsigned char *)name; *s; s++)
		h = (h ^ *s) * UINT64_C(0x100000001b3);
	return h ^ role;
}

/* The combined A [rank, in] and B [out, rank] of module c. */
static bool combine_module(lq_ctx *ctx, const copts *o, peft_adapter *const *ad, const plan *p, const cmodule *c,
			   float *a_out, float *b_out)
{
	const int64_t R = p->rank, in = c->in, out = c->out;
	const size_t n = o->n;
	float **A = calloc(n, sizeof *A), **B = calloc(n, sizeof *B), **D = calloc(n, sizeof *D);
	const float **tasks = calloc(n, sizeof *tasks);
	float *w = calloc(n, sizeof *w), *w2 = calloc(n, sizeof *w2);
	bool ok = A && B && D && tasks && w && w2;
	size_t nt = 0;
	if (!ok)
		cli_error("out of memory");
	for (size_t i = 0; i < n && ok; i++) {
		const peft_module *m = c->of[i];
		if (!m)
			continue;
		ok = (A[i] = read_f32(ad[i], m->a, (int64_t)m->rank * in)) && (B[i] = read_f32(ad[i], m->b, out * m->rank));
	}
	lq_combine_params cp = {.type = p->type, .density = o->density, .majority_frequency = o->majority_frequency,
				.seed = o->seed};
	lq_status st = LQ_OK;
	if (ok && p->type->form == LQ_COMBINE_CONCAT) {
		memset(a_out, 0, (size_t)(R * in) * sizeof *a_out);
		memset(b_out, 0, (size_t)(out * R) * sizeof *b_out);
		int64_t r0 = 0;
		for (size_t i = 0; i < n; i++) {
			const peft_module *m = c->of[i];
			if (!m)
				continue;
			/* lora_A * weight * scaling: torch multiplies by each Python float as a float32, in turn */
			const float fw = (float)o->weights[i], fs = (float)scaling_of(ad[i], m);
			const int64_t r = m->rank;
			for (int64_t k = 0; k < r * in; k++)
				a_out[r0 * in + k] = A[i][k] * fw * fs;
			for (int64_t row = 0; row < out; row++)
				for (int64_t k = 0; k < r; k++)
					b_out[row * R + r0 + k] = B[i][row * r + k];
			r0 += r;
		}
	} else if (ok && p->type->form == LQ_COMBINE_FACTORS) {
		for (size_t i = 0; i < n; i++) {
			if (!c->of[i])
				continue;
			/* sqrt(|weight * scaling|), the sign on A's side only, as Python floats made float32 */
			const double ws = o->weights[i] * scaling_of(ad[i], c->of[i]);
			w[nt] = (float)(sqrt(fabs(ws)) * (ws >= 0 ? 1 : -1));
			w2[nt] = (float)sqrt(fabs(ws));
			tasks[nt++] = A[i];
		}
		st = lq_combine_tasks(ctx, &cp, tasks, w, nt, R * in, stream_of(c->name, 1), a_out);
		nt = 0;
		for (size_t i = 0; i < n; i++)
			if (c->of[i])
				tasks[nt++] = B[i];
		if (st == LQ_OK)
			st = lq_combine_tasks(ctx, &cp, tasks, w2, nt, out * R, stream_of(c->name, 2), b_out);
	} else if (ok) {
		/* get_delta_weight: (B @ A) * scaling in float32, then the weighted combination */
		for (size_t i = 0; i < n && ok; i++) {
			const peft_module *m = c->of[i];
			if (!m)
				continue;
			if (!(D[i] = malloc((size_t)(out * in) * sizeof *D[i]))) {
				cli_error("out of memory");
				ok = false;
				break;
			}
			const float fs = (float)scaling_of(ad[i], m);
			const int64_t r = m->rank;
			for (int64_t row = 0; row < out; row++)
				for (int64_t j = 0; j < in; j++) {
					double acc = 0;
					for (int64_t k = 0; k < r; k++)
						acc += (double)B[i][row * r + k] * (double)A[i][k * in + j];
					D[i][row * in + j] = (float)acc * fs;
				}
			w[nt] = (float)o->weights[i];
			tasks[nt++] = D[i];
			free(A[i]);
			free(B[i]);
			A[i] = B[i] = NULL;
		}
		float *delta = ok ? malloc((size_t)(out * in) * sizeof *delta) : NULL;
		if (ok && !delta) {
			cli_error("out of memory");
			ok = false;
		}
		if (ok)
			st = lq_combine_tasks(ctx, &cp, tasks, w, nt, out * in, stream_of(c->name, 3), delta);
		for (size_t i = 0; i < n; i++) {
			free(D[i]);
			D[i] = NULL;
		}
		if (ok && st == LQ_OK)
			st = lq_svd_truncate(ctx, delta, out, in, R, o->svd_clamp, b_out, a_out, NULL);
		free(delta);
	}
	if (ok && st != LQ_OK) {
		char q[FMT_ERRBUF / 4];
		cli_error("module '%s': %s", fmt_quote(c->name, q, sizeof q), lq_ctx_error_string(ctx));
		ok = false;
	}
	for (size_t i = 0; i < n; i++) {
		if (A)
			free(A[i]);
		if (B)
			free(B[i]);
		if (D)
			free(D[i]);
	}
	free(A);
	free(B);
	free(D);
	free(tasks);
	free(w);
	free(w2);
	return ok;
}

/* ------------------------------------------------------------------------------------- the output */

static char *tensor_name(const cmodule *c, bool b)
{
	const char *suffix = c->kind == PEFT_EMBEDDING ? (b ? ".lora_embedding_B" : ".lora_embedding_A")
						       : (b ? ".lora_B.weight" : ".lora_A.weight");
	char *s = malloc(strlen(KEY_PREFIX) + strlen(c->name) + strlen(suffix) + 1);
	if (s)
		sprintf(s, "%s%s%s", KEY_PREFIX, c->name, suffix);
	return s;
}

static bool declare(st_writer *w, plan *p)
{
	for (size_t k = 0; k < p->nmods; k++) {
		cmodule *c = &p->mods[k];
		char *na = tensor_name(c, false), *nb = tensor_name(c, true);
		const int64_t sa[2] = {p->rank, c->in}, sb[2] = {c->out, p->rank};
		c->id_a = na ? st_writer_add(w, na, ST_F32, 2, sa) : -1;
		c->id_b = nb ? st_writer_add(w, nb, ST_F32, 2, sb) : -1;
		free(na);
		free(nb);
		if (c->id_a < 0 || c->id_b < 0) {
			cli_error("%s", na && nb ? st_writer_error(w) : "out of memory");
			return false;
		}
	}
	if (st_writer_set_meta(w, "format", "pt") != LQ_OK || st_writer_layout(w) != LQ_OK) {
		cli_error("%s", st_writer_error(w));
		return false;
	}
	return true;
}

/* The MANIFEST of the adapter's two files (what -f checks before it replaces an earlier output). */
static bool write_manifest(hf_out *out, const copts *o)
{
	char dens[32], rank[32], clamp[32], seed[32];
	snprintf(dens, sizeof dens, "%.17g", o->density);
	snprintf(rank, sizeof rank, "%ld", o->svd_rank);
	snprintf(clamp, sizeof clamp, "%.17g", o->svd_clamp);
	snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
	const char *keys[6] = {"combine"}, *values[6] = {o->type->name};
	size_t nopt = 1;
#define OPTION(cond, k, v) \
	if (cond) { \
		keys[nopt] = k; \
		values[nopt++] = v; \
	}
	OPTION(o->density_set, "density", dens);
	OPTION(o->type->ties, "majority_sign_method", o->majority_frequency ? "frequency" : "total");
	OPTION(o->svd_rank, "svd_rank", rank);
	OPTION(o->svd_clamp >= 0, "svd_clamp", clamp);
	OPTION(o->seed_set, "seed", seed);
#undef OPTION
	return adapter_out_manifest(out, "loramerge", keys, values, nopt);
}

/* Computes every module and writes the adapter: weights, config, MANIFEST; renamed into place at the end. */
static bool write_adapter(lq_ctx *ctx, const copts *o, peft_adapter *const *ad, plan *p)
{
	bool ok = false;
	hf_out *out = hf_out_create();
	st_writer *w = st_writer_create();
	float *a = NULL, *b = NULL;
	char *config = NULL;
	if (!out || !w) {
		cli_error("out of memory");
		goto done;
	}
	if (om_is_bundle(o->output))
		hf_out_set_bundle(out, BUNDLE_DEFAULT_LEVEL, 1);
	if (!declare(w, p))
		goto done;
	if (hf_out_begin(out, o->output, true, o->common.force) != LQ_OK ||
	    hf_out_check_space(out, st_writer_file_size(w) + 65536) != LQ_OK) {
		cli_error("%s", hf_out_error(out));
		goto done;
	}
	if (st_writer_open(w, hf_out_path(out, WEIGHTS_NAME)) != LQ_OK ||
	    st_writer_set_display_name(w, o->output) != LQ_OK) {
		cli_error("%s", st_writer_error(w));
		goto done;
	}
	for (size_t k = 0; k < p->nmods; k++) {
		const cmodule *c = &p->mods[k];
		if (cli_interrupted()) {
			cli_error("interrupted");
			goto done;
		}
		cli_progress("combining", k, p->nmods);
		free(a);
		free(b);
		a = malloc((size_t)(p->rank * c->in) * sizeof *a);
		b = malloc((size_t)(c->out * p->rank) * sizeof *b);
		if (!a || !b) {
			cli_error("out of memory");
			goto done;
		}
		if (!combine_module(ctx, o, ad, p, c, a, b))
			goto done;
		if (st_writer_write(w, c->id_a, 0, a, (size_t)(p->rank * c->in) * sizeof *a) != LQ_OK ||
		    st_writer_write(w, c->id_b, 0, b, (size_t)(c->out * p->rank) * sizeof *b) != LQ_OK) {
			cli_error("%s", st_writer_error(w));
			goto done;
		}
	}
	cli_progress_end();
	if (st_writer_finish(w) != LQ_OK) {
		cli_error("%s", st_writer_error(w));
		goto done;
	}
	if (!(config = cJSON_Print(p->config))) {
		cli_error("out of memory");
		goto done;
	}
	if (hf_out_write_file(out, CONFIG_NAME, config, strlen(config)) != LQ_OK) {
		cli_error("%s", hf_out_error(out));
		goto done;
	}
	if (!write_manifest(out, o))
		goto done;
	if (hf_out_commit(out) != LQ_OK) {
		cli_error("%s", hf_out_error(out));
		goto done;
	}
	ok = true;
done:
	cli_progress_end();
	free(a);
	free(b);
	free(config);
	st_writer_free(w);
	hf_out_free(out);
	return ok;
}

int lora_combine_main(int argc, char **argv)
{
	copts o;
	parse_args(argc, argv, &o);
	cli_install_signals();
	int status = CLI_EXIT_FAILURE;
	char err[FMT_ERRBUF] = "";
	peft_adapter **ad = calloc(o.n, sizeof *ad);
	plan p = {0};
	lq_ctx *ctx = NULL;
	if (!ad) {
		cli_error("out of memory");
		goto finish;
	}
	for (size_t i = 0; i < o.n; i++) {
		ad[i] = peft_adapter_create();
		if (!ad[i] || peft_adapter_open(ad[i], o.paths[i], NULL, 0) != LQ_OK) {
			cli_error("%s", ad[i] ? peft_adapter_error(ad[i]) : "out of memory");
			goto finish;
		}
		for (size_t k = 0; k < ad[i]->nwarnings; k++)
			cli_warn("%s", ad[i]->warnings[k]);
	}
	if (!check_adapters(&o, ad) || !make_plan(&o, ad, &p))
		goto finish;
	if (om_place_check(NULL, (const char *const *)o.paths, o.n, o.output, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	cli_plan(o.common.dry_run, "combine %s: %zu adapter%s, %zu module%s, rank %" PRId64 "%s", p.type->name, o.n,
		 o.n == 1 ? "" : "s", p.nmods, p.nmods == 1 ? "" : "s", p.rank,
		 p.type != o.type ? " (one adapter: linear, as PEFT)" : "");
	for (size_t k = 0; k < p.nmods; k++) {
		char q[FMT_ERRBUF / 4];
		size_t have = 0;
		for (size_t i = 0; i < o.n; i++)
			have += p.mods[k].of[i] != NULL;
		cli_plan(o.common.dry_run, "  %s: %" PRId64 " x %" PRId64 ", from %zu of %zu adapter%s",
			 fmt_quote(p.mods[k].name, q, sizeof q), p.mods[k].out, p.mods[k].in, have, o.n, o.n == 1 ? "" : "s");
	}
	if (o.common.dry_run) {
		status = CLI_EXIT_OK;
		goto finish;
	}
	const lq_ctx_options copt = cli_ctx_options(&o.common);
	if (!(ctx = lq_ctx_create(&copt))) {
		cli_error("out of memory");
		goto finish;
	}
	/* the GPU computes the SVD types' decompositions (cuSOLVER), nothing else: opened for them, or when
	 * --device names one */
	if ((p.type->form == LQ_COMBINE_SVD || strcmp(o.common.device, "auto") != 0) &&
	    lq_ctx_use_device(ctx, o.common.device) != LQ_OK) {
		cli_error("--device %s: %s", o.common.device, lq_ctx_error_string(ctx));
		goto finish;
	}
	cli_info(1, "compute: %s", lq_ctx_device_note(ctx));
	if (write_adapter(ctx, &o, ad, &p))
		status = CLI_EXIT_OK;
finish:
	lq_ctx_free(ctx);
	plan_free(&p);
	for (size_t i = 0; ad && i < o.n; i++)
		peft_adapter_free(ad[i]);
	free(ad);
	for (size_t i = 0; i < o.n; i++)
		free(o.paths[i]);
	free(o.paths);
	free(o.weights);
	return status;
}
