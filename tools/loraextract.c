/*
 * loraextract.c: loraextract BASE FINETUNED -o ADAPTER, and loraextract --correct Q BASE -o ADAPTER
 * (man/loraextract.1): a PEFT LoRA adapter from the change of every weight, dW = W_to - W_from, by its
 * truncated SVD in double precision (lq_svd_thin).
 *
 * The convention is PEFT 0.21's own conversion (peft/tuners/lora/conversion.py, _convert_module_to_lora):
 * U, S, V = svd(dW); lora_B = U[:, :r] * S[:r], lora_A = V[:r]; for a Conv1D (whose weight is stored
 * [in, out]) lora_A = (U S)^T and lora_B = V^T of the stored matrix; r and lora_alpha equal so the scale
 * is 1; rank by a number, or by an energy threshold (_find_cutoff_index: the smallest r whose sum of
 * sigma^2 reaches threshold * total); every module that gets another rank in rank_pattern and
 * alpha_pattern. --split sqrt gives mergekit's extract_lora convention instead: sqrt(S) on both sides.
 * An embedding's lora_embedding_A [r, num] and _B [dim, r] hold the factors of its [num, dim] weight
 * transposed (PEFT adds (B A)^T), S on A's side as for Conv1D.
 *
 * One weight pair is in memory at a time, as float32 (every float and 4-bit value is one exactly), with
 * dW in double precision, the SVD's factors and workspace; the factors kept, in the written type, until
 * the adapter is written at the end (their sizes are known only then: --energy). The host's memory, for
 * an m x n weight, k = min(m, n), keep = the rank's bound (--rank, --max-rank; k for --energy alone), at
 * 4096 x 11008, rank 64 (man loraextract, Memory; tests/gpu/extract_gpu.sh checks the GPU's peak against
 * it):
 *   vf, vt        the pair as float32                      8 m n        344 MiB
 *   raw           one tensor's stored bytes while read     2-4 m n       86 MiB (bf16; freed before d)
 *   d             dW in double precision                   8 m n        344 MiB
 *   s, u, v       the singular values, keep vectors        8 keep (m+n)  7.4 MiB
 *   LAPACK (CPU)  its whole factors (keep < k), workspace  8 k (m+n)     472 MiB
 *                                                          + 8 (4k^2+4k+max(m,n))  512 MiB
 *   cuSOLVER (GPU) nothing but its host workspace (LQ_SVD_TRACE prints it); the matrices on the device
 *   lf, rf        the factors rounded, float32             4 r (m+n)     3.7 MiB
 *   m->a, m->b    every module's factors, until the end    2-4 r (m+n) each (28 modules: 54 MiB in bf16)
 *   lx_error      a band of residual rows                  128 n a thread (22 MiB on 16 threads)
 * so about 730 MiB on a GPU and 1.7 GiB on the CPU, plus the runtime libraries (CUDA's and cuSOLVER's
 * resident pages, 350 to 450 MiB). An unchanged weight and the tensors only compared are read a chunk at a
 * time (equal_stream): the unchanged lm_head (32000 x 4096) of the 1.07B benchmark model, read whole as a
 * pair with its change in double precision, was that model's peak on the GPU, 2 GiB of its 2376 MiB.
 * Freed buffers go back to the system: glibc maps every block above its mmap threshold (at most 32 MiB) on
 * its own and unmaps it when freed, and those below are reused from one pair to the next.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fmt.h"
#include "hf_model.h"
#include "hf_select.h"
#include "hf_tensors.h"
#include "libquant.h"
#include "loraextract.h"
#include "out_model.h"

static void usage(void)
{
	printf("Usage: %s [OPTION]... BASE FINETUNED -o ADAPTER\n"
	       "  or:  %s --correct [OPTION]... Q BASE -o ADAPTER\n"
	       "Extract a PEFT LoRA adapter from the difference of two models by truncated SVD: FINETUNED - BASE,\n"
	       "or with --correct BASE - dequantize(Q) for each 4-bit weight of Q (loaded on Q, it corrects the\n"
	       "quantization error). Models: directories, .safetensors files, index files or bundles.\n"
	       "\n"
	       "  -o, --output DIR       the adapter's directory (or a .tar.zst/.tar bundle) (required)\n"
	       "  -r, --rank R           the rank of every module (at most its smaller dimension)\n"
	       "      --energy F         per module the smallest rank keeping the share F (0 < F <= 1) of |dW|^2\n"
	       "      --max-rank N       with --energy, at most this rank\n"
	       "      --embed            extract the embeddings' changes too (lora_embedding_A/B)\n"
	       "      --keep-other       save the changed tensors that are not factored (norms, biases) whole, in\n"
	       "                         modules_to_save; without it they are listed and left out\n"
	       "      --dtype TYPE       the factors' type: bf16, fp16 or fp32 (default: the base weight's)\n"
	       "      --split peft|sqrt  B = U S, A = V^T (PEFT's conversion, the default), or sqrt(S) on both\n"
	       "                         (mergekit's extract_lora)\n"
	       "      --correct          Q BASE: the adapter that brings the 4-bit model Q to BASE\n"
	       "      --json             a summary (per module: rank, kept energy, error) on standard output\n"
	       "      --device DEV       where the SVDs run: cpu (LAPACK), cuda, cuda:N (cuSOLVER), or auto\n"
	       "                         (the default: a GPU when the SVDs are large and one works)\n"
	       "  -T, --threads N        threads (0: one per core)\n"
	       "  -f, --force            replace an existing output\n"
	       "  -n, --dry-run          say what would be extracted, write nothing\n"
	       "  -q, --quiet            errors only\n"
	       "  -v, --verbose          a table of the modules: rank, kept energy, relative error\n"
	       "  -h, --help             this help\n"
	       "  -V, --version          the version\n"
	       "\n"
	       "Exit status: 0 success, 1 failure, 2 usage error. See loraextract(1).\n",
	       cli_progname(), cli_progname());
}

static double parse_fraction(const char *arg)
{
	char *end = NULL;
	const double v = (*arg >= '0' && *arg <= '9') || *arg == '.' ? strtod(arg, &end) : NAN;
	if (!end || *end || !(v > 0 && v <= 1))
		cli_usage_error("invalid --energy '%s' (a number above 0, at most 1)", arg);
	return v;
}

static void parse_args(int argc, char **argv, xopts *o)
{
	enum { OPT_ENERGY = 256, OPT_MAX_RANK, OPT_EMBED, OPT_KEEP_OTHER, OPT_DTYPE, OPT_SPLIT, OPT_CORRECT };
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"rank", required_argument, NULL, 'r'},
		{"energy", required_argument, NULL, OPT_ENERGY},
		{"max-rank", required_argument, NULL, OPT_MAX_RANK},
		{"embed", no_argument, NULL, OPT_EMBED},
		{"keep-other", no_argument, NULL, OPT_KEEP_OTHER},
		{"dtype", required_argument, NULL, OPT_DTYPE},
		{"split", required_argument, NULL, OPT_SPLIT},
		{"correct", no_argument, NULL, OPT_CORRECT},
		CLI_COMMON_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	*o = (xopts){.common = {.device = cli_default_device()}};
	long v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:r:T:fnqvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case 'r':
			if (!cli_parse_int(optarg, 1, INT32_MAX, &v))
				cli_usage_error("invalid --rank '%s' (a positive integer)", optarg);
			o->rank = v;
			break;
		case OPT_ENERGY:
			o->energy = parse_fraction(optarg);
			break;
		case OPT_MAX_RANK:
			if (!cli_parse_int(optarg, 1, INT32_MAX, &v))
				cli_usage_error("invalid --max-rank '%s' (a positive integer)", optarg);
			o->max_rank = v;
			break;
		case OPT_EMBED:
			o->embed = true;
			break;
		case OPT_KEEP_OTHER:
			o->keep_other = true;
			break;
		case OPT_DTYPE:
			if (!cli_parse_float_dtype(optarg, &o->dtype))
				cli_usage_error("invalid --dtype '%s' (bf16, fp16 or fp32)", optarg);
			o->dtype_set = true;
			break;
		case OPT_SPLIT:
			if (strcmp(optarg, "peft") != 0 && strcmp(optarg, "sqrt") != 0)
				cli_usage_error("invalid --split '%s' (peft or sqrt)", optarg);
			o->split_sqrt = strcmp(optarg, "sqrt") == 0;
			break;
		case OPT_CORRECT:
			o->correct = true;
			break;
		default:
			cli_common_option(c, argv, &o->common, usage);
		}
	}
	if (o->rank && o->energy > 0)
		cli_usage_error("--rank and --energy both given: one rank rule");
	if (!o->rank && !(o->energy > 0))
		cli_usage_error("no rank given: --rank R, or --energy F (with --max-rank N)");
	if (o->max_rank && !(o->energy > 0))
		cli_usage_error("--max-rank is for --energy (--rank R is the rank)");
	if (o->correct && (o->embed || o->keep_other))
		cli_usage_error("--%s is not for --correct: it corrects the 4-bit weights only",
				o->embed ? "embed" : "keep-other");
	const char *what = o->correct ? "Q and BASE" : "BASE and FINETUNED";
	if (argc - optind < 2)
		cli_usage_error("%s", argc - optind == 0 ? (o->correct ? "no Q given" : "no BASE given")
							 : (o->correct ? "no BASE given" : "no FINETUNED given"));
	if (argc - optind > 2)
		cli_usage_error("too many inputs: %s only (the output goes after -o)", what);
	o->from_path = argv[optind];
	o->to_path = argv[optind + 1];
	if (!o->output)
		cli_usage_error("no ADAPTER given (-o)");
	if (!*o->output)
		cli_usage_error("empty ADAPTER (-o '')");
	if (strcmp(o->output, "-") == 0 || fmt_ends_with(o->output, ".safetensors"))
		cli_usage_error("ADAPTER is an adapter directory (or a bundle of one), not '%s'", o->output);
	if (strcmp(o->from_path, "-") == 0 || strcmp(o->to_path, "-") == 0)
		cli_usage_error("the models are read twice, not from standard input ('-')");
}

/* ------------------------------------------------------------------------------------- the plan */

/* A weight pair to factor. */
typedef struct xpair {
	const hf_tensor *from, *to;
	xkind kind;
	bool transpose_to; /* --correct of a Conv1D: BASE [in, out] against Q's [out, in] */
} xpair;

typedef struct xplan {
	xpair *pairs;
	size_t npairs;
	const hf_tensor **other; /* candidates for xother: to's tensors that are not factored */
	size_t nother;
} xplan;

/* The module of a weight: its name without ".weight" (malloc'd). */
static char *module_of(const char *name)
{
	const char *dot = strrchr(name, '.');
	const size_t n = dot ? (size_t)(dot - name) : strlen(name);
	char *m = malloc(n + 1);
	if (m) {
		memcpy(m, name, n);
		m[n] = '\0';
	}
	return m;
}

/* Pairs the tensors of the two models; every refusal of their names and shapes, before any data is read. */
static bool make_plan(const xopts *o, const cJSON *config, const hf_tensors *from, const hf_tensors *to, xplan *p)
{
	char q[2][FMT_ERRBUF / 4];
	hf_select *sel = hf_select_create(config);
	p->pairs = calloc(to->n + 1, sizeof *p->pairs);
	p->other = calloc(to->n + 1, sizeof *p->other);
	if (!sel || !p->pairs || !p->other) {
		hf_select_free(sel);
		cli_error("out of memory");
		return false;
	}
	bool ok = false;
	if (!o->correct) {
		for (size_t i = 0; i < from->n; i++)
			if (!hf_tensors_find(to, from->v[i].name)) {
				cli_error("%s: tensor '%s' is not in %s", o->from_path, fmt_quote(from->v[i].name, q[0], sizeof q[0]),
					  o->to_path);
				goto done;
			}
	}
	for (size_t i = 0; i < to->n; i++) {
		const hf_tensor *t = &to->v[i];
		const hf_tensor *f = hf_tensors_find(from, t->name);
		const char *name = fmt_quote(t->name, q[0], sizeof q[0]);
		if (o->correct) {
			/* every 4-bit weight of Q against BASE's */
			continue;
		}
		if (!f) {
			cli_error("%s: tensor '%s' is not in %s", o->to_path, name, o->from_path);
			goto done;
		}
		bool same_shape = f->ndim == t->ndim;
		for (int d = 0; same_shape && d < t->ndim && d < BNB_MAX_DIMS; d++)
			same_shape = f->shape[d] == t->shape[d];
		if (!same_shape) {
			char s1[96] = "", s2[96] = "";
			for (int d = 0; d < f->ndim && d < BNB_MAX_DIMS; d++)
				snprintf(s1 + strlen(s1), sizeof s1 - strlen(s1), "%s%" PRId64, d ? ", " : "", f->shape[d]);
			for (int d = 0; d < t->ndim && d < BNB_MAX_DIMS; d++)
				snprintf(s2 + strlen(s2), sizeof s2 - strlen(s2), "%s%" PRId64, d ? ", " : "", t->shape[d]);
			cli_error("%s: tensor '%s' is [%s] there, [%s] in %s: not the same model", o->to_path, name, s2, s1,
				  o->from_path);
			goto done;
		}
		const bool is_float = t->dtype != LQ_DTYPE_U8 && f->dtype != LQ_DTYPE_U8;
		bool transpose = false;
		const char *why = "";
		if (t->ndim == 2 && is_float && fmt_ends_with(t->name, ".weight")) {
			hf_select_quantize(sel, t->name, 2, t->shape, true, &transpose, &why);
			const bool embedding = strcmp(why, "embedding") == 0;
			if (strncmp(why, "MoE", 3) != 0 && (!embedding || o->embed)) {
				p->pairs[p->npairs++] = (xpair){.from = f, .to = t,
								.kind = embedding ? XK_EMBED : transpose ? XK_CONV1D : XK_LINEAR};
				continue;
			}
		}
		p->other[p->nother++] = t;
	}
	if (o->correct) {
		for (size_t i = 0; i < from->n; i++) {
			const hf_tensor *f = &from->v[i];
			if (!f->quantized)
				continue;
			const hf_tensor *t = hf_tensors_find(to, f->name);
			const char *name = fmt_quote(f->name, q[0], sizeof q[0]);
			if (!t) {
				cli_error("%s: the 4-bit weight '%s' is not in %s", o->from_path, name, o->to_path);
				goto done;
			}
			if (t->quantized || t->dtype == LQ_DTYPE_U8) {
				cli_error("%s: tensor '%s' is %s: BASE holds the float weights", o->to_path, name,
					  t->quantized ? "4-bit" : "not a float tensor");
				goto done;
			}
			const bool straight = t->ndim == 2 && f->ndim == 2 && t->shape[0] == f->shape[0] && t->shape[1] == f->shape[1];
			const bool crossed = t->ndim == 2 && f->ndim == 2 && t->shape[0] == f->shape[1] && t->shape[1] == f->shape[0];
			bool transpose = false;
			if (crossed && !straight)
				hf_select_quantize(sel, t->name, 2, t->shape, true, &transpose, NULL);
			if (f->ndim != 2 || !(straight || (crossed && transpose))) {
				cli_error("%s: the 4-bit weight '%s' is [%" PRId64 ", %" PRId64 "], [%" PRId64 ", %" PRId64 "] in %s: "
					  "not the same model", o->from_path, name, f->shape[0], f->ndim > 1 ? f->shape[1] : 0,
					  t->shape[0], t->ndim > 1 ? t->shape[1] : 0, fmt_quote(o->to_path, q[1], sizeof q[1]));
				goto done;
			}
			p->pairs[p->npairs++] = (xpair){.from = f, .to = t, .kind = XK_LINEAR, .transpose_to = !straight};
		}
		if (!p->npairs) {
			cli_error("%s: no 4-bit weight: --correct takes a bitsandbytes 4-bit checkpoint as Q", o->from_path);
			goto done;
		}
	}
	ok = true;
done:
	hf_select_free(sel);
	return ok;
}

/* ------------------------------------------------------------------------------------- reading */

/* A tensor's values as float32 (malloc'd): a float tensor converted, a 4-bit group dequantized as
 * bitsandbytes does (into its quant_state's type), exactly. */
static float *read_values(lq_ctx *ctx, const hf_tensor *t, const char *path)
{
	char err[FMT_ERRBUF], q[FMT_ERRBUF / 4];
	const int64_t n = (int64_t)t->nelem;
	float *out = malloc((size_t)(n ? n : 1) * sizeof *out);
	void *data = NULL, *am = NULL, *nested = NULL, *deq = NULL;
	float *absmax = NULL;
	size_t len, alen, nlen;
	if (!out) {
		cli_error("out of memory");
		return NULL;
	}
	if (hf_ref_read(&t->data, &data, &len, err) != LQ_OK) {
		cli_error("%s", err);
		goto fail;
	}
	if (!t->quantized) {
		lq_to_f32(data, t->dtype, n, out);
		free(data);
		return out;
	}
	const bnb_state *s = &t->state;
	const int64_t nblocks = lq_quant_nblocks(n, s->blocksize);
	if (hf_ref_read(&t->parts[BNB_PART_ABSMAX], &am, &alen, err) != LQ_OK ||
	    (s->double_quant && hf_ref_read(&t->parts[BNB_PART_NESTED_ABSMAX], &nested, &nlen, err) != LQ_OK)) {
		cli_error("%s", err);
		goto fail;
	}
	absmax = malloc((size_t)(nblocks ? nblocks : 1) * sizeof *absmax);
	deq = malloc((size_t)(n ? n : 1) * lq_dtype_size(s->dtype));
	if (!absmax || !deq) {
		cli_error("out of memory");
		goto fail;
	}
	lq_status st = LQ_OK;
	if (s->double_quant) {
		float *nab = malloc(nlen ? nlen : 1);
		if (!nab) {
			cli_error("out of memory");
			goto fail;
		}
		lq_to_f32(nested, LQ_DTYPE_F32, (int64_t)(nlen / 4), nab);
		st = lq_dequantize_absmax(ctx, am, nab, s->nested_offset, nblocks, absmax);
		free(nab);
	} else {
		lq_to_f32(am, LQ_DTYPE_F32, nblocks, absmax);
	}
	if (st == LQ_OK)
		st = lq_dequantize_blocks(ctx, data, absmax, n, s->qtype, s->blocksize, s->dtype, deq);
	if (st != LQ_OK) {
		cli_error("%s: tensor '%s': %s", path, fmt_quote(t->name, q, sizeof q), lq_ctx_error_string(ctx));
		goto fail;
	}
	lq_to_f32(deq, s->dtype, n, out);
	free(data);
	free(am);
	free(nested);
	free(absmax);
	free(deq);
	return out;
fail:
	free(out);
	free(data);
	free(am);
	free(nested);
	free(absmax);
	free(deq);
	return NULL;
}

/* The first NaN or infinity of v, said; false when there is one. */
static bool check_finite(const float *v, const hf_tensor *t, const char *path)
{
	for (uint64_t i = 0; i < t->nelem; i++)
		if (!isfinite(v[i])) {
			char q[FMT_ERRBUF / 4];
			const int64_t cols = t->ndim >= 2 ? t->shape[t->ndim - 1] : 1;
			cli_error("%s: tensor '%s': element [%" PRIu64 ", %" PRIu64 "] is %s: no change to extract from it", path,
				  fmt_quote(t->name, q, sizeof q), i / (uint64_t)cols, i % (uint64_t)cols,
				  isnan(v[i]) ? "NaN" : "infinite");
			return false;
		}
	return true;
}

/* Elements compared a chunk at a time by equal_stream: 2 x 4 bytes a float, and their stored bytes. */
#define COMPARE_CHUNK ((size_t)1 << 18)

/* Whether the float tensors f and t (same number of elements) hold equal values, read a chunk at a time
 * (COMPARE_CHUNK elements of each), so that an unchanged weight costs no more memory than a small one: an
 * unchanged lm_head or embedding (32000 x 4096, 500 MiB a side as float32) was read whole, and as a pair
 * its change in double precision besides (2 GiB), more than the largest weight's SVD needs. 1: equal, every
 * element finite; 0: they differ, every element finite (stop_at_difference: at the first difference,
 * whatever follows); -1: not known here (a 4-bit tensor, a value that is not finite, a read that failed, no
 * memory), for the caller to read them whole, with its messages. */
static int equal_stream(const hf_tensor *f, const hf_tensor *t, bool stop_at_difference)
{
	if (f->quantized || t->quantized || f->dtype == LQ_DTYPE_U8 || t->dtype == LQ_DTYPE_U8 || f->nelem != t->nelem)
		return -1;
	const size_t fs = lq_dtype_size(f->dtype), ts = lq_dtype_size(t->dtype);
	if (!fs || !ts || (uint64_t)(f->data.t->end - f->data.t->begin) != f->nelem * fs ||
	    (uint64_t)(t->data.t->end - t->data.t->begin) != t->nelem * ts)
		return -1;
	unsigned char *raw = malloc(COMPARE_CHUNK * (fs > ts ? fs : ts));
	float *a = malloc(COMPARE_CHUNK * sizeof *a), *b = malloc(COMPARE_CHUNK * sizeof *b);
	int res = raw && a && b ? 1 : -1;
	for (uint64_t at = 0; res >= 0 && at < t->nelem; at += COMPARE_CHUNK) {
		const size_t n = t->nelem - at < COMPARE_CHUNK ? (size_t)(t->nelem - at) : COMPARE_CHUNK;
		if (st_file_read(f->data.f, f->data.t, at * fs, raw, n * fs) != LQ_OK) {
			res = -1;
			break;
		}
		lq_to_f32(raw, f->dtype, (int64_t)n, a);
		if (st_file_read(t->data.f, t->data.t, at * ts, raw, n * ts) != LQ_OK) {
			res = -1;
			break;
		}
		lq_to_f32(raw, t->dtype, (int64_t)n, b);
		for (size_t i = 0; i < n && res >= 0; i++) {
			if (!isfinite(a[i]) || !isfinite(b[i]))
				res = -1;
			else if (a[i] != b[i])
				res = 0;
		}
		if (res == 0 && stop_at_difference)
			break;
	}
	free(raw);
	free(a);
	free(b);
	return res;
}

/* ------------------------------------------------------------------------------------- the factors */

static float round_to(float x, lq_dtype dt)
{
	switch (dt) {
	case LQ_DTYPE_BF16:
		return lq_bf16_to_f32(lq_f32_to_bf16(x));
	case LQ_DTYPE_F16:
		return lq_f16_to_f32(lq_f32_to_f16(x));
	default:
		return x;
	}
}

static void store(void *dst, int64_t i, float x, lq_dtype dt)
{
	switch (dt) {
	case LQ_DTYPE_BF16:
		((uint16_t *)dst)[i] = lq_f32_to_bf16(x);
		break;
	case LQ_DTYPE_F16:
		((uint16_t *)dst)[i] = lq_f32_to_f16(x);
		break;
	default:
		((float *)dst)[i] = x;
	}
}

/* The rank of a module from its singular values (descending, k of them): --rank, or PEFT's
 * _find_cutoff_index for --energy (the smallest r with sum_{i<r} s_i^2 >= F * total), within --max-rank. */
static int64_t choose_rank(const xopts *o, const double *s, int64_t k, double total)
{
	int64_t r = k;
	if (o->rank)
		r = o->rank < k ? o->rank : k;
	else {
		double cum = 0;
		for (int64_t i = 0; i < k; i++) {
			cum += s[i] * s[i];
			if (cum >= o->energy * total) {
				r = i + 1;
				break;
			}
		}
		if (o->max_rank && r > o->max_rank)
			r = o->max_rank;
	}
	return r;
}

/* Factors one pair into m (its name and kind set): false when it fails (said). *same: the weights are
 * equal, nothing to factor. */
static bool factor_pair(lq_ctx *ctx, const xopts *o, const xpair *pr, xmodule *m, bool *same)
{
	const hf_tensor *tt = pr->to;
	const int64_t rows = pr->transpose_to ? tt->shape[1] : tt->shape[0];
	const int64_t cols = pr->transpose_to ? tt->shape[0] : tt->shape[1];
	const int64_t k = rows < cols ? rows : cols;
	const size_t nel = (size_t)rows * (size_t)cols;
	*same = false;
	/* an unchanged weight (an untrained lm_head) is found so a chunk at a time, not read whole */
	if (!pr->transpose_to && equal_stream(pr->from, tt, true) == 1) {
		*same = true;
		return true;
	}
	float *vf = read_values(ctx, pr->from, o->from_path), *vt = vf ? read_values(ctx, tt, o->to_path) : NULL;
	double *d = NULL, *s = NULL, *u = NULL, *v = NULL;
	float *lf = NULL, *rf = NULL;
	bool ok = false;
	if (!vf || !vt || !check_finite(vf, pr->from, o->from_path) || !check_finite(vt, tt, o->to_path))
		goto done;
	if (pr->transpose_to) {
		float *x = malloc(nel * sizeof *x);
		if (!x) {
			cli_error("out of memory");
			goto done;
		}
		for (int64_t i = 0; i < rows; i++)
			for (int64_t j = 0; j < cols; j++)
				x[i * cols + j] = vt[j * rows + i];
		free(vt);
		vt = x;
	}
	/* the singular vectors the rank can take (--rank R, --max-rank N; --energy alone: all k), the only
	 * ones a GPU copies back to the host */
	const int64_t keep = o->rank ? (o->rank < k ? o->rank : k) : o->max_rank && o->max_rank < k ? o->max_rank : k;
	d = malloc(nel * sizeof *d);
	s = malloc((size_t)k * sizeof *s);
	u = malloc((size_t)rows * (size_t)keep * sizeof *u);
	v = malloc((size_t)keep * (size_t)cols * sizeof *v);
	if (!d || !s || !u || !v) {
		cli_error("out of memory");
		goto done;
	}
	double total = 0;
	for (size_t i = 0; i < nel; i++) {
		d[i] = (double)vt[i] - (double)vf[i];
		total += d[i] * d[i];
	}
	if (total == 0) {
		*same = true;
		ok = true;
		goto done;
	}
	if (lq_svd_thin(ctx, d, rows, cols, keep, s, u, v) != LQ_OK) {
		char q[FMT_ERRBUF / 4];
		cli_error("%s: tensor '%s': %s", o->to_path, fmt_quote(tt->name, q, sizeof q), lq_ctx_error_string(ctx));
		goto done;
	}
	free(d);
	d = NULL;
	const int64_t r = choose_rank(o, s, k, total);
	double kept = 0, lost = 0;
	for (int64_t i = 0; i < k; i++)
		*(i < r ? &kept : &lost) += s[i] * s[i];
	/* L = U_r diag(sl), R = diag(sr) V_r, rounded to the written type */
	lf = malloc((size_t)rows * (size_t)r * sizeof *lf);
	rf = malloc((size_t)r * (size_t)cols * sizeof *rf);
	const size_t esz = lq_dtype_size(m->dtype);
	m->a = malloc((size_t)r * (size_t)(m->kind == XK_LINEAR ? cols : rows) * esz);
	m->b = malloc((size_t)r * (size_t)(m->kind == XK_LINEAR ? rows : cols) * esz);
	if (!lf || !rf || !m->a || !m->b) {
		cli_error("out of memory");
		goto done;
	}
	for (int64_t c = 0; c < r; c++) {
		const double sl = o->split_sqrt ? sqrt(s[c]) : s[c], sr = o->split_sqrt ? sqrt(s[c]) : 1.0;
		for (int64_t i = 0; i < rows; i++)
			lf[i * r + c] = round_to((float)(u[i * keep + c] * sl), m->dtype);
		for (int64_t j = 0; j < cols; j++)
			rf[c * cols + j] = round_to((float)(v[c * cols + j] * sr), m->dtype);
	}
	if (m->kind == XK_LINEAR) {
		for (int64_t i = 0; i < rows * r; i++)
			store(m->b, i, lf[i], m->dtype);
		for (int64_t i = 0; i < r * cols; i++)
			store(m->a, i, rf[i], m->dtype);
	} else {
		for (int64_t i = 0; i < rows; i++)
			for (int64_t c = 0; c < r; c++)
				store(m->a, c * rows + i, lf[i * r + c], m->dtype);
		for (int64_t c = 0; c < r; c++)
			for (int64_t j = 0; j < cols; j++)
				store(m->b, j * r + c, rf[c * cols + j], m->dtype);
	}
	/* the error of what is written: || dW - L R || over || dW || */
	double err = 0;
	if (!lx_squared_error(vf, vt, lf, rf, rows, cols, r, lq_ctx_threads(ctx), &err)) {
		cli_error("out of memory");
		goto done;
	}
	m->rows = rows;
	m->cols = cols;
	m->rank = r;
	m->norm = sqrt(total);
	m->kept = kept / (kept + lost);
	m->err = sqrt(err / total);
	m->err_opt = sqrt(lost / (kept + lost));
	ok = true;
done:
	free(vf);
	free(vt);
	free(d);
	free(s);
	free(u);
	free(v);
	free(lf);
	free(rf);
	return ok;
}

/* Whether the float tensors t (of `to`) and its namesake of `from` hold equal values; -1 on a failure
 * (said). */
static int differs(lq_ctx *ctx, const xopts *o, const hf_tensor *f, const hf_tensor *t)
{
	int res = 0;
	if (f->dtype == LQ_DTYPE_U8 || t->dtype == LQ_DTYPE_U8) {
		char err[FMT_ERRBUF];
		void *a = NULL, *b = NULL;
		size_t la = 0, lb = 0;
		if (hf_ref_read(&f->data, &a, &la, err) != LQ_OK || hf_ref_read(&t->data, &b, &lb, err) != LQ_OK) {
			cli_error("%s", err);
			res = -1;
		} else {
			res = la != lb || f->data.t->dtype != t->data.t->dtype || memcmp(a, b, la) != 0;
		}
		free(a);
		free(b);
		return res;
	}
	/* a chunk at a time (equal_stream), else both whole (a 4-bit tensor; a value that is not finite or a
	 * read that failed, said as before) */
	const int eq = equal_stream(f, t, false);
	if (eq >= 0)
		return !eq;
	float *a = read_values(ctx, f, o->from_path), *b = a ? read_values(ctx, t, o->to_path) : NULL;
	if (!a || !b || !check_finite(a, f, o->from_path) || !check_finite(b, t, o->to_path))
		res = -1;
	for (uint64_t i = 0; res == 0 && i < t->nelem; i++)
		res = a[i] != b[i];
	free(a);
	free(b);
	return res;
}

/* ------------------------------------------------------------------------------------- modules_to_save */

/* Whether `name` is a tensor of the module `module` (len bytes) itself: module + "." + a name without '.'. */
static bool own_tensor(const char *name, const char *module, size_t len)
{
	return strncmp(name, module, len) == 0 && name[len] == '.' && !strchr(name + len + 1, '.');
}

/* PEFT's modules_to_save replaces a whole module with a copy and loads every one of its tensors from the
 * adapter (a missing one is a KeyError): a kept module's other tensors, unchanged (a LayerNorm's bias
 * beside its changed weight, a linear layer's weight beside its changed bias), are saved with it from the
 * fine-tune (with_module). A module with a tensor that is not float (4-bit) cannot be saved whole: its
 * kept tensors are left out instead, said. r->others has room for every tensor of `to` besides. False
 * when out of memory (said). */
static bool complete_saved_modules(xresult *r, const hf_tensors *to)
{
	static const char not_float[] = "a tensor of a module with 4-bit tensors (PEFT cannot save it whole)";
	const size_t n = r->nothers;
	for (size_t i = 0; i < n; i++) {
		xother *x = &r->others[i];
		if (!x->kept)
			continue;
		const size_t len = strlen(x->module);
		bool whole = true;
		for (size_t k = 0; k < to->n; k++)
			if (own_tensor(to->v[k].name, x->module, len) && (to->v[k].quantized || to->v[k].dtype == LQ_DTYPE_U8))
				whole = false;
		for (size_t k = 0; k < to->n && whole; k++) {
			const hf_tensor *t = &to->v[k];
			bool listed = false;
			for (size_t j = 0; j < r->nothers && !listed; j++)
				listed = strcmp(r->others[j].name, t->name) == 0;
			if (listed || !own_tensor(t->name, x->module, len))
				continue;
			xother *y = &r->others[r->nothers++];
			*y = (xother){.name = strdup(t->name), .module = strdup(x->module), .kept = true, .with_module = true,
				      .t = t};
			if (!y->name || !y->module) {
				cli_error("out of memory");
				return false;
			}
		}
		for (size_t j = 0; j < n && !whole; j++)
			if (r->others[j].kept && strcmp(r->others[j].module, x->module) == 0) {
				r->others[j].kept = false;
				r->others[j].why = not_float;
			}
	}
	return true;
}

/* ------------------------------------------------------------------------------------- the device */

/* LAPACK's dgesdd with the thin factors takes about this many seconds per rows * cols * min(rows, cols) on
 * one core (Debian's reference LAPACK, single-threaded: 3.0e-9 to 3.2e-9 measured on 512 to 1024 wide
 * matrices, on the 2-core development machine; 4096 x 11008 then takes about 9 minutes). */
#define LAPACK_S_PER_MNK 3.1e-9
/* --device auto takes a GPU when LAPACK's SVDs of the plan are estimated to take longer than this: a GPU's
 * start and cuSOLVER's load (about a second) then cost little against what they save. */
#define AUTO_GPU_MIN_S 10.0

/* Where the SVDs run (--device): LAPACK on the CPU, or cuSOLVER on a GPU (lq_svd_thin). A GPU asked for
 * by name must work, cuSOLVER's library included: said before any work, not at the first weight. "auto"
 * takes one only for large SVDs, and falls back to the CPU when none works or cuSOLVER cannot be loaded
 * (-v says why). False when a GPU asked for cannot be used (said). */
static bool use_device(lq_ctx *ctx, const xopts *o, const xplan *p)
{
	const char *dev = o->common.device;
	const bool automatic = strcmp(dev, "auto") == 0;
	if (automatic) {
		double est = 0;
		for (size_t i = 0; i < p->npairs; i++) {
			const double r = (double)p->pairs[i].to->shape[0], c = (double)p->pairs[i].to->shape[1];
			est += r * c * (r < c ? r : c) * LAPACK_S_PER_MNK;
		}
		if (est < AUTO_GPU_MIN_S) {
			cli_info(1, "compute: CPU (--device auto: LAPACK's SVDs estimated at %.2g s, less than a GPU's start "
				 "would save)", est);
			return true;
		}
	}
	if (lq_ctx_use_device(ctx, dev) != LQ_OK) {
		cli_error("--device %s: %s", dev, lq_ctx_error_string(ctx));
		return false;
	}
	const char *note = lq_ctx_device_note(ctx);
	if (strncmp(note, "CPU", 3) != 0) {
		/* cuSOLVER is loaded by the first SVD: a 1 x 1 one says now whether it can be */
		double one = 1, s1, u1, v1;
		if (lq_svd_thin(ctx, &one, 1, 1, 1, &s1, &u1, &v1) != LQ_OK) {
			if (!automatic) {
				cli_error("--device %s: %s (the SVDs on a GPU need CUDA's cuSOLVER library; --device cpu "
					  "computes them with LAPACK)", dev, lq_ctx_error_string(ctx));
				return false;
			}
			cli_info(1, "compute: CPU (--device auto: %s)", lq_ctx_error_string(ctx));
			lq_ctx_use_device(ctx, "cpu");
			return true;
		}
	}
	cli_info(1, "compute: %s", lq_ctx_device_note(ctx));
	return true;
}

/* ------------------------------------------------------------------------------------- the report */

static const char *kind_name(xkind k)
{
	return k == XK_EMBED ? "embedding" : k == XK_CONV1D ? "conv1d" : "linear";
}

static void print_table(const xresult *r)
{
	if (cli_verbosity < 1)
		return;
	cli_info(1, "%-48s %-9s %13s %6s %10s %11s %11s", "module", "kind", "shape", "rank", "kept", "rel_error",
		 "optimum");
	for (size_t i = 0; i < r->nmods; i++) {
		const xmodule *m = &r->mods[i];
		char shape[48], q[FMT_ERRBUF / 4];
		snprintf(shape, sizeof shape, "%" PRId64 "x%" PRId64, m->rows, m->cols);
		cli_info(1, "%-48s %-9s %13s %6" PRId64 " %10.6f %11.4e %11.4e", fmt_quote(m->name, q, sizeof q),
			 kind_name(m->kind), shape, m->rank, m->kept, m->err, m->err_opt);
	}
	for (size_t i = 0; i < r->nothers; i++) {
		char q[FMT_ERRBUF / 4];
		const xother *x = &r->others[i];
		const char *what = x->with_module ? "unchanged, saved with its module (modules_to_save)"
				   : x->kept	  ? "kept whole (modules_to_save)"
						  : x->why;
		cli_info(1, "%s: %s", fmt_quote(x->name, q, sizeof q), what);
	}
}

static void print_json(const xopts *o, const xresult *r, bool written)
{
	cJSON *root = cJSON_CreateObject();
	if (!root)
		return;
	cJSON_AddStringToObject(root, "tool", "loraextract");
	cJSON_AddStringToObject(root, "version", LQ_VERSION_STRING);
	cJSON_AddStringToObject(root, o->correct ? "q" : "base", o->from_path);
	cJSON_AddStringToObject(root, o->correct ? "base" : "finetuned", o->to_path);
	cJSON_AddStringToObject(root, "output", o->output);
	cJSON_AddBoolToObject(root, "dry_run", !written);
	cJSON_AddBoolToObject(root, "correct", o->correct);
	cJSON_AddStringToObject(root, "split", o->split_sqrt ? "sqrt" : "peft");
	cJSON *mods = cJSON_AddArrayToObject(root, "modules");
	double worst = 0;
	for (size_t i = 0; i < r->nmods; i++) {
		const xmodule *m = &r->mods[i];
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "module", m->name);
		cJSON_AddStringToObject(x, "kind", kind_name(m->kind));
		cJSON *shape = cJSON_AddArrayToObject(x, "shape");
		cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)m->rows));
		cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)m->cols));
		cJSON_AddNumberToObject(x, "rank", (double)m->rank);
		cJSON_AddStringToObject(x, "dtype", lq_dtype_torch_name(m->dtype));
		if (written) {
			cJSON_AddItemToObject(x, "delta_norm", cli_json_number(m->norm));
			cJSON_AddItemToObject(x, "kept_energy", cli_json_number(m->kept));
			cJSON_AddItemToObject(x, "rel_error", cli_json_number(m->err));
			cJSON_AddItemToObject(x, "rel_error_optimal", cli_json_number(m->err_opt));
		}
		worst = fmax(worst, m->err);
		cJSON_AddItemToArray(mods, x);
	}
	cJSON *others = cJSON_AddArrayToObject(root, "others");
	for (size_t i = 0; i < r->nothers; i++) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "tensor", r->others[i].name);
		cJSON_AddStringToObject(x, "action", r->others[i].kept ? "modules_to_save" : "left out");
		if (!r->others[i].kept)
			cJSON_AddStringToObject(x, "why", r->others[i].why);
		if (r->others[i].with_module)
			cJSON_AddTrueToObject(x, "unchanged");
		cJSON_AddItemToArray(others, x);
	}
	cJSON *tot = cJSON_AddObjectToObject(root, "totals");
	cJSON_AddNumberToObject(tot, "modules", (double)r->nmods);
	cJSON_AddNumberToObject(tot, "unchanged", (double)r->nsame);
	size_t nwith = 0;
	for (size_t i = 0; i < r->nothers; i++)
		nwith += r->others[i].with_module;
	cJSON_AddNumberToObject(tot, "others", (double)(r->nothers - nwith));
	if (written)
		cJSON_AddItemToObject(tot, "max_rel_error", cli_json_number(worst));
	char *text = cJSON_Print(root);
	if (text)
		printf("%s\n", text);
	free(text);
	cJSON_Delete(root);
}

/* ------------------------------------------------------------------------------------- main */

static void result_free(xresult *r)
{
	for (size_t i = 0; i < r->nmods; i++) {
		free(r->mods[i].name);
		free(r->mods[i].a);
		free(r->mods[i].b);
	}
	for (size_t i = 0; i < r->nothers; i++) {
		free(r->others[i].name);
		free(r->others[i].module);
	}
	free(r->mods);
	free(r->others);
}

static bool open_model(hf_model *m, hf_tensors *ts, const char *path)
{
	char err[FMT_ERRBUF];
	if (hf_model_open(m, path) != LQ_OK) {
		cli_error("%s", m->err);
		return false;
	}
	if (hf_tensors_list(m, ts, err) != LQ_OK) {
		cli_error("%s", err);
		return false;
	}
	return true;
}

/* base_model_name_or_path: the model the adapter is loaded on, as its config names it, else as given. */
static const char *base_name(const hf_model *m, const char *given)
{
	const cJSON *n = m->config ? cJSON_GetObjectItemCaseSensitive(m->config, "_name_or_path") : NULL;
	return cJSON_IsString(n) && *n->valuestring ? n->valuestring : given;
}

/* Whether the model ties its output head to its input embedding (the config's word, else no lm_head). */
static bool ties_head(const hf_model *m, const hf_tensors *ts)
{
	const cJSON *t = m->config ? cJSON_GetObjectItemCaseSensitive(m->config, "tie_word_embeddings") : NULL;
	if (cJSON_IsBool(t))
		return cJSON_IsTrue(t);
	return !hf_tensors_find(ts, "lm_head.weight");
}

int main(int argc, char **argv)
{
	cli_init(argv[0]);
	xopts o;
	parse_args(argc, argv, &o);
	cli_install_signals();
	if (o.common.json)
		cli_ignore_sigpipe();
	const double t0 = cli_now();
	int status = CLI_EXIT_FAILURE;
	char err[FMT_ERRBUF] = "", q[FMT_ERRBUF / 4];
	hf_model *mf = hf_model_create(), *mt = hf_model_create();
	hf_tensors from = {0}, to = {0};
	xplan p = {0};
	xresult r = {0};
	lq_ctx *ctx = NULL;
	if (!mf || !mt) {
		cli_error("out of memory");
		goto finish;
	}
	if (!open_model(mf, &from, o.from_path) || !open_model(mt, &to, o.to_path))
		goto finish;
	if (o.correct && !from.any_quantized) {
		cli_error("%s: no 4-bit weight: --correct takes a bitsandbytes 4-bit checkpoint as Q", o.from_path);
		goto finish;
	}
	if (om_place_check(mf, NULL, 0, o.output, err) != LQ_OK || om_place_check(mt, NULL, 0, o.output, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	struct stat sb;
	if (!o.common.force && !o.common.dry_run && lstat(o.output, &sb) == 0) {
		/* said before the work, not after it (hf_out_begin checks again, atomically) */
		cli_error("'%s' exists (use -f to replace it)", fmt_quote(o.output, q, sizeof q));
		goto finish;
	}
	if (!make_plan(&o, (o.correct ? mt : mf)->config, &from, &to, &p))
		goto finish;
	r.base_name = base_name(mf, o.from_path);
	r.mods = calloc(p.npairs + 1, sizeof *r.mods);
	r.others = calloc(p.nother + to.n + 1, sizeof *r.others); /* and the tensors kept with their module */
	const lq_ctx_options copt = cli_ctx_options(&o.common);
	if (!r.mods || !r.others || !(ctx = lq_ctx_create(&copt))) {
		cli_error("out of memory");
		goto finish;
	}
	if (o.common.dry_run) {
		cli_plan(!o.common.json, "%s: %zu weight%s to factor, %zu other tensor%s to compare", o.output, p.npairs,
			 p.npairs == 1 ? "" : "s", p.nother, p.nother == 1 ? "" : "s");
		for (size_t i = 0; i < p.npairs; i++)
			cli_plan(!o.common.json, "  %s: %s %" PRId64 " x %" PRId64, fmt_quote(p.pairs[i].to->name, q, sizeof q),
				 kind_name(p.pairs[i].kind), p.pairs[i].to->shape[0], p.pairs[i].to->shape[1]);
	}
	if (!o.common.dry_run && p.npairs && !use_device(ctx, &o, &p))
		goto finish;
	/* the factors, one pair at a time */
	for (size_t i = 0; i < p.npairs && !o.common.dry_run; i++) {
		const xpair *pr = &p.pairs[i];
		if (cli_interrupted()) {
			cli_error("interrupted");
			goto finish;
		}
		cli_progress("extracting", i, p.npairs);
		xmodule *m = &r.mods[r.nmods];
		*m = (xmodule){.kind = pr->kind, .name = module_of(pr->to->name),
			       .dtype = o.dtype_set ? o.dtype : pr->to->dtype == LQ_DTYPE_U8 ? LQ_DTYPE_F32 : pr->to->dtype};
		if (!o.correct && !o.dtype_set)
			m->dtype = pr->from->dtype;
		if (!m->name) {
			cli_error("out of memory");
			goto finish;
		}
		bool same;
		if (!factor_pair(ctx, &o, pr, m, &same)) {
			r.nmods++;
			goto finish;
		}
		if (same) {
			free(m->name);
			*m = (xmodule){0};
			r.nsame++;
			continue;
		}
		r.conv1d |= m->kind == XK_CONV1D;
		r.tie |= m->kind == XK_EMBED && ties_head(mt, &to);
		r.nmods++;
	}
	cli_progress_end();
	/* the tensors that are not factored: equal, kept whole or left out */
	for (size_t i = 0; i < p.nother && !o.common.dry_run; i++) {
		const hf_tensor *t = p.other[i];
		const hf_tensor *f = hf_tensors_find(&from, t->name);
		const int d = differs(ctx, &o, f, t);
		if (d < 0)
			goto finish;
		if (d == 0) {
			r.nsame++;
			continue;
		}
		xother *x = &r.others[r.nothers++];
		*x = (xother){.name = strdup(t->name), .t = t};
		if (!x->name) {
			cli_error("out of memory");
			goto finish;
		}
		const bool embedding = t->ndim == 2 && !o.embed && fmt_ends_with(t->name, ".weight");
		x->why = t->dtype == LQ_DTYPE_U8 ? "not a float tensor" : embedding ? "an embedding (--embed factors it)"
										   : "not a matrix of a linear layer (--keep-other keeps it)";
		if (!o.keep_other || t->dtype == LQ_DTYPE_U8)
			continue;
		if (!(x->module = module_of(t->name))) {
			cli_error("out of memory");
			goto finish;
		}
		for (size_t k = 0; k < r.nmods; k++)
			if (strcmp(r.mods[k].name, x->module) == 0)
				x->why = "a tensor of a module the adapter factors (PEFT cannot also save it whole)";
		x->kept = strcmp(x->why, "a tensor of a module the adapter factors (PEFT cannot also save it whole)") != 0;
	}
	if (!o.common.dry_run && !complete_saved_modules(&r, &to))
		goto finish;
	if (o.common.dry_run) {
		if (o.common.json)
			print_json(&o, &r, false);
		status = CLI_EXIT_OK;
		goto finish;
	}
	if (!r.nmods) {
		cli_error("%s and %s have no weight that differs: no adapter to extract", o.from_path, o.to_path);
		goto finish;
	}
	print_table(&r);
	for (size_t i = 0; i < r.nothers; i++)
		if (!r.others[i].kept)
			cli_warn("'%s' differs and is left out: %s", fmt_quote(r.others[i].name, q, sizeof q), r.others[i].why);
	if (o.common.json)
		print_json(&o, &r, true);
	if (!lx_write_adapter(&o, &r))
		goto finish;
	double worst = 0;
	int64_t rmin = INT64_MAX, rmax = 0;
	for (size_t i = 0; i < r.nmods; i++) {
		worst = fmax(worst, r.mods[i].err);
		rmin = r.mods[i].rank < rmin ? r.mods[i].rank : rmin;
		rmax = r.mods[i].rank > rmax ? r.mods[i].rank : rmax;
	}
	size_t nkept = 0, nwith = 0;
	for (size_t i = 0; i < r.nothers; i++) {
		nkept += r.others[i].kept && !r.others[i].with_module;
		nwith += r.others[i].with_module;
	}
	char ranks[64];
	snprintf(ranks, sizeof ranks, rmin == rmax ? "rank %" PRId64 : "ranks %" PRId64 " to %" PRId64, rmin, rmax);
	cli_info(0, "%s: %zu module%s (%s), relative error at most %.3g; %zu unchanged, %zu kept whole, %zu left out; "
		 "%.2f s", o.output, r.nmods, r.nmods == 1 ? "" : "s", ranks, worst, r.nsame, nkept, r.nothers - nwith - nkept,
		 cli_now() - t0);
	status = CLI_EXIT_OK;
finish:
	cli_progress_end();
	lq_ctx_free(ctx);
	result_free(&r);
	free(p.pairs);
	free(p.other);
	hf_tensors_free(&from);
	hf_tensors_free(&to);
	hf_model_free(mf);
	hf_model_free(mt);
	return status;
}
