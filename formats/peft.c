/*
 * peft.c: PEFT LoRA adapters (peft.h).
 *
 * Facts, from the PEFT 0.21.0 source (the PyPI wheel), that the rules below stand on:
 *
 * P1 tuners/lora/config.py LoraConfig: r (default 8), lora_alpha (default 8; a float in some JSON files),
 *    use_rslora, use_dora, lora_bias, fan_in_fan_out, bias ("none" | "all" | "lora_only"), rank_pattern and
 *    alpha_pattern (dicts), modules_to_save (list or null), trainable_token_indices (a list of ints, or a
 *    dict module -> list of ints), init_lora_weights (bool or "gaussian", "eva", "olora", "pissa",
 *    "pissa_niter_<n>", "corda", "loftq", "orthogonal", "mica", and "lora_ga" in layer.py), and the variant
 *    fields marked `is_lora_variant`: use_dora, velora_config, alora_invocation_tokens, monteclora_config,
 *    use_bdlora, arrow_config, kasa_config (plus init_lora_weights "mica"). use_qalora (GPTQ layers only),
 *    layer_replication, target_parameters. lora_bias is refused by PEFT together with DoRA.
 * P2 tuners/lora/layer.py update_layer: scaling = lora_alpha / r, or lora_alpha / math.sqrt(r) with
 *    use_rslora (Python floats); Linear: lora_A = nn.Linear(in, r, bias=False), lora_B = nn.Linear(r, out,
 *    bias=lora_bias); Embedding: lora_embedding_A [r, num], lora_embedding_B [dim, r] (nn.Parameter), and
 *    lora_bias is refused. Linear.lora_variants admits one variant at a time: DoRA, Arrow, BD-LoRA, aLoRA,
 *    VeLoRA, MonteCLoRA, MiCA, KaSA; Embedding: DoRA, MiCA; Conv: DoRA.
 * P3 tuners/lora/model.py _create_and_replace: r and alpha of a module come from
 *    utils/other.py get_pattern_key(keys, name): the first key k, in the dict's order, with
 *    re.match(rf"(.*\.)?({k})$", name); no match gives the name itself as the key (so an exact key still
 *    counts). The name is the module's path in the model PEFT wrapped, without "base_model.model.".
 * P4 Keys (utils/save_and_load.py get_peft_model_state_dict, tuners_utils.py _get_adapter_state_dict and
 *    _remove_adapter_name_from_state_dict_key, lora/model.py _get_adapter_state_dict): every parameter and
 *    buffer of a LoRA layer except its base_layer, the adapter name removed: `<m>.lora_A.weight`,
 *    `<m>.lora_B.weight`, `<m>.lora_B.bias`, `<m>.lora_embedding_A`, `<m>.lora_embedding_B`,
 *    `<m>.lora_magnitude_vector` (DoRA, ".weight" removed), and the variants' own tensors
 *    (`lora_velora_embed`, `lora_monteclora_sampler.*`, KaSA's `lora_diag`, ...). Learnable biases:
 *    bias="all" saves every `*.bias` of the model (`<m>.base_layer.bias` inside LoRA layers), "lora_only"
 *    the `<m>.base_layer.bias` of LoRA layers. modules_to_save (utils/other.py ModulesToSaveWrapper
 *    .adapter_state_dict): `<name>.<key of the module's state_dict>`, name any module whose path ends with
 *    an entry (_set_trainable: key.endswith(target_key), a plain suffix test). Trainable tokens
 *    (TrainableTokensWrapper): `<emb>.token_adapter.trainable_tokens_delta` [n_idx, dim]; a wrapper tied to
 *    the input embedding saves nothing. save_embedding_layers ("auto": when an embedding, "embed_tokens" or
 *    "lm_head", is in target_modules, or when the vocabulary was resized) adds the whole state_dict of the
 *    input and output embedding modules: `<emb>.base_layer.weight` for a LoRA'd embedding (a copy of the
 *    base layer's weight: equal to the base unless the vocabulary was resized), `<emb>.weight` otherwise.
 *    set_peft_model_state_dict loads all of these into the model, so a saved base-layer parameter takes
 *    the base's place.
 * P5 Merges: layer.py Linear/Embedding.merge add get_delta_weight (B @ A * scaling; transposed for
 *    embeddings and fan_in_fan_out); variants.py: DoRA rescales; VeLoRA (a backward pass that stores
 *    compressed activations) and MonteCLoRA (sampling noise on lora_A while training) merge exactly as
 *    plain LoRA (their merge_safe/merge_unsafe add get_delta_weight; forward in eval mode is plain LoRA);
 *    MiCA is plain LoRA with a frozen B; Arrow raises ("Cannot merge an active Arrow router adapter");
 *    aLoRA cannot be merged (its weights apply only after the invocation tokens); BD-LoRA merges
 *    block-diagonal factors (_get_bdlora_delta_weight); KaSA truncates the base weight by SVD and inserts
 *    lora_diag between B and A; QALoRA pools the input by groups. trainable_tokens/layer.py merge:
 *    index_copy of the delta rows into the weight (replacement, not addition).
 * P6 Initializations that change the base weights (layer.py pissa_init, olora_init, corda_init,
 *    lora_ga_init, loftq_init write get_base_layer().weight): the adapter fits the residual base, and PEFT
 *    runs the initialization again when it loads such an adapter. Converted adapters
 *    (save_pretrained(path_initial_model_for_weight_conversion=...)) and LoftQ adapters saved as in
 *    examples/loftq_finetuning are written with init_lora_weights = true.
 *
 * Rules here: a key is (after "base_model.model." is stripped) one of the LoRA tensors of P4, a trainable
 * tokens delta, a base layer's parameter `<m>.base_layer.<p>` (a replacement of `<m>.<p>`), a tensor of
 * a module under modules_to_save, a bias when bias="all", or a whole embedding saved by
 * save_embedding_layers (R: recognised by the module's last name, PEFT's EMBEDDING_LAYER_NAMES and the
 * usual input/output embedding names); VeLoRA's and MonteCLoRA's own tensors are ignored (P5). Anything
 * else is an error: an adapter not understood must not be half-merged.
 * Python regexes (patterns, P3) run as POSIX EREs after a translation that keeps whether a whole string
 * matches (\d \w \s and their negations, (?:...), (?P<name>...), lazy quantifiers, {,n}); a key using
 * what ERE lacks (lookaround, backreferences, inline flags, possessive quantifiers) is refused, and so is
 * one beyond the bounds that keep regcomp fast (pyregex.h, the translator hf_select.c uses too).
 */
#include "peft.h"

#include "bundle.h"
#include "pyregex.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_NAME "adapter_config.json"
#define WEIGHTS_NAME "adapter_model.safetensors"
#define PICKLE_NAME "adapter_model.bin"
#define PREFIX "base_model.model."
#define CONFIG_LIMIT (64u << 20)
#define MAX_WARNED_RANKS 10
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define Q 192 /* size of a quoted name in a message */

/* ------------------------------------------------------------------------------- small helpers */

static bool exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* Whether child c is the first of its key in obj (a dict keeps the place of the first). */
static bool first_of_key(const cJSON *obj, const cJSON *c)
{
	for (const cJSON *p = obj->child; p && p != c; p = p->next)
		if (p->string && c->string && strcmp(p->string, c->string) == 0)
			return false;
	return true;
}

static bool is_integer(const cJSON *v, double lo, double hi)
{
	return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
	       v->valuedouble <= hi;
}

static lq_status warn(peft_adapter *a, const char *fmt, ...) FMT_PRINTF(2, 3);
static lq_status warn(peft_adapter *a, const char *fmt, ...)
{
	char buf[FMT_ERRBUF];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	char **w = realloc(a->warnings, (a->nwarnings + 1) * sizeof *w);
	if (!w)
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	a->warnings = w;
	if (!(w[a->nwarnings] = strdup(buf)))
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	a->nwarnings++;
	return LQ_OK;
}

/* ------------------------------------------------------------------------------- patterns */

/* Compiles PEFT's (.*\.)?(key)$, anchored at the start as re.match is. False when the key cannot be
 * translated or compiled. */
static bool pattern_compile(const char *key, regex_t *re)
{
	return pyre_compile(re, "^(.*\\.)?(", key, ")$", 0, NULL) == PYRE_OK;
}

/* A pattern dict compiled once: its distinct keys in order, each with the value Python would see. */
typedef struct pattern_set {
	size_t n;
	const char **keys;
	double *values;
	regex_t *re;
	bool *ok;
} pattern_set;

static void pattern_set_free(pattern_set *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		if (ps->ok[i])
			regfree(&ps->re[i]);
	free(ps->keys);
	free(ps->values);
	free(ps->re);
	free(ps->ok);
	memset(ps, 0, sizeof *ps);
}

/* False only when memory runs out. Keys whose value is not a number are left out (checked elsewhere). */
static bool pattern_set_build(pattern_set *ps, const cJSON *obj)
{
	memset(ps, 0, sizeof *ps);
	if (!cJSON_IsObject(obj))
		return true;
	size_t n = 0;
	for (const cJSON *c = obj->child; c; c = c->next)
		n++;
	if (n == 0)
		return true;
	ps->keys = calloc(n, sizeof *ps->keys);
	ps->values = calloc(n, sizeof *ps->values);
	ps->re = calloc(n, sizeof *ps->re);
	ps->ok = calloc(n, sizeof *ps->ok);
	if (!ps->keys || !ps->values || !ps->re || !ps->ok) {
		pattern_set_free(ps);
		return false;
	}
	for (const cJSON *c = obj->child; c; c = c->next) {
		if (!c->string || !first_of_key(obj, c))
			continue;
		const cJSON *v = fmt_json_member(obj, c->string);
		if (!cJSON_IsNumber(v))
			continue;
		ps->keys[ps->n] = c->string;
		ps->values[ps->n] = v->valuedouble;
		ps->ok[ps->n] = pattern_compile(c->string, &ps->re[ps->n]);
		ps->n++;
	}
	return true;
}

static bool pattern_set_lookup(const pattern_set *ps, const char *module, double *value)
{
	for (size_t i = 0; i < ps->n; i++)
		if (ps->ok[i] && regexec(&ps->re[i], module, 0, NULL, 0) == 0) {
			*value = ps->values[i];
			return true;
		}
	/* get_pattern_key falls back to the name itself, looked up as a key */
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->keys[i], module) == 0) {
			*value = ps->values[i];
			return true;
		}
	return false;
}

bool peft_pattern_lookup(const cJSON *patterns, const char *module, double *value)
{
	pattern_set ps;
	if (!module || !value || !pattern_set_build(&ps, patterns))
		return false;
	const bool found = pattern_set_lookup(&ps, module, value);
	pattern_set_free(&ps);
	return found;
}

/* ----------------------------------------------------------------------------------- key maps */

typedef struct key_map {
	regex_t re;
	const char *replacement;
	bool compiled;
} key_map;

static void key_maps_free(key_map *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++)
		if (m[i].compiled)
			regfree(&m[i].re);
	free(m);
}

static lq_status key_maps_compile(const peft_key_map *maps, size_t nmaps, key_map **out, char *err)
{
	*out = NULL;
	if (nmaps == 0)
		return LQ_OK;
	key_map *m = calloc(nmaps, sizeof *m);
	if (!m)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < nmaps; i++) {
		char q[Q];
		if (!maps[i].regex || !maps[i].replacement) {
			key_maps_free(m, nmaps);
			return fmt_fail(err, LQ_ERR_ARG, "key map %zu: no regex or no replacement", i + 1);
		}
		/* trusted (a command line), but regcomp takes minutes on "(a*)*(a*)*..." and overflows its stack
		 * on deep nesting, ignoring signals: the bounds of pyregex.h */
		const pyre_status bounded = pyre_check_ere(maps[i].regex);
		if (bounded != PYRE_OK) {
			key_maps_free(m, nmaps);
			if (bounded == PYRE_NOMEM)
				return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
			return fmt_fail(err, LQ_ERR_ARG, "key map '%s': beyond the bounds of a regex here (more than %d nested "
					"groups, more than %d atoms with its repetitions counted out, or a repetition of "
					"what can match the empty string)", fmt_quote(maps[i].regex, q, sizeof q),
					PYRE_MAX_DEPTH, PYRE_MAX_SIZE);
		}
		const int rc = regcomp(&m[i].re, maps[i].regex, REG_EXTENDED);
		if (rc != 0) {
			char why[256];
			regerror(rc, &m[i].re, why, sizeof why);
			key_maps_free(m, nmaps);
			return fmt_fail(err, LQ_ERR_ARG, "key map '%s': %s", fmt_quote(maps[i].regex, q, sizeof q), why);
		}
		m[i].compiled = true;
		m[i].replacement = maps[i].replacement;
		for (const char *r = maps[i].replacement; *r; r++) {
			if (*r != '\\')
				continue;
			r++;
			const size_t groups = m[i].re.re_nsub;
			if (*r >= '1' && *r <= '9' && (size_t)(*r - '0') > groups) {
				key_maps_free(m, nmaps);
				return fmt_fail(err, LQ_ERR_ARG, "key map '%s': the replacement names group \\%c, the regex has %zu",
						fmt_quote(maps[i].regex, q, sizeof q), *r, groups);
			}
			if (*r != '\\' && !(*r >= '1' && *r <= '9')) {
				key_maps_free(m, nmaps);
				return fmt_fail(err, LQ_ERR_ARG, "key map '%s': a backslash in the replacement must be followed "
						"by 1..9 or another backslash", fmt_quote(maps[i].regex, q, sizeof q));
			}
		}
	}
	*out = m;
	return LQ_OK;
}

static void put_replacement(fmt_buf *b, const char *rep, const char *subject, const regmatch_t *pm)
{
	for (const char *r = rep; *r; r++) {
		if (*r == '\\' && r[1] >= '1' && r[1] <= '9') {
			const regmatch_t g = pm[r[1] - '0'];
			if (g.rm_so >= 0)
				fmt_buf_put(b, subject + g.rm_so, (size_t)(g.rm_eo - g.rm_so));
			r++;
		} else if (*r == '\\' && r[1] == '\\') {
			fmt_buf_put(b, "\\", 1);
			r++;
		} else {
			fmt_buf_put(b, r, 1);
		}
	}
}

/* Every match of map m in s replaced, as Python's re.sub does (an empty match is allowed right after a
 * non-empty one), malloc'd; NULL when memory runs out. */
static char *apply_map(const key_map *m, const char *s)
{
	fmt_buf b = {0};
	const size_t len = strlen(s);
	size_t pos = 0;
	regmatch_t pm[10];
	while (pos <= len && regexec(&m->re, s + pos, 10, pm, pos ? REG_NOTBOL : 0) == 0) {
		const char *sub = s + pos;
		const size_t so = (size_t)pm[0].rm_so, eo = (size_t)pm[0].rm_eo;
		fmt_buf_put(&b, sub, so);
		put_replacement(&b, m->replacement, sub, pm);
		if (eo > so) {
			pos += eo;
		} else if (pos + eo < len) {
			fmt_buf_put(&b, sub + eo, 1); /* an empty match: keep one character, look again after it */
			pos += eo + 1;
		} else {
			pos = len + 1;
		}
	}
	if (pos <= len)
		fmt_buf_puts(&b, s + pos);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p ? b.p : strdup("");
}

/* The module path in the base's naming: every key map in order. NULL when memory runs out. */
static char *map_path(const key_map *maps, size_t nmaps, const char *path)
{
	char *cur = strdup(path);
	for (size_t i = 0; cur && i < nmaps; i++) {
		char *next = apply_map(&maps[i], cur);
		free(cur);
		cur = next;
	}
	return cur;
}

/* --------------------------------------------------------------------------------- the config */

/* What the key classification needs from the config beyond the handle's fields. */
typedef struct config_view {
	const cJSON *rank_pattern, *alpha_pattern, *modules_to_save, *token_indices;
	bool bias_all;
	bool velora, monteclora;
} config_view;

/* Set as Python's bool() sees it after LoraConfig.__post_init__: not null, false or an empty list (an
 * object becomes a sub-config, which is true even when empty). */
static bool json_set(const cJSON *v)
{
	return v && !cJSON_IsNull(v) && !cJSON_IsFalse(v) && !(cJSON_IsArray(v) && !v->child);
}

/* A bool field: absent or null is false. */
static lq_status get_bool(peft_adapter *a, const char *cfg, const char *key, bool *out)
{
	const cJSON *v = fmt_json_member(a->config, key);
	*out = false;
	if (!v || cJSON_IsNull(v))
		return LQ_OK;
	if (!cJSON_IsBool(v))
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"%s\" is not true or false", cfg, key);
	*out = cJSON_IsTrue(v);
	return LQ_OK;
}

static lq_status check_pattern_dict(peft_adapter *a, const char *cfg, const char *name, bool rank,
				    const cJSON **out)
{
	const cJSON *obj = fmt_json_member(a->config, name);
	*out = NULL;
	if (!obj || cJSON_IsNull(obj))
		return LQ_OK;
	if (!cJSON_IsObject(obj))
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"%s\" is not an object", cfg, name);
	for (const cJSON *c = obj->child; c; c = c->next) {
		char q[Q];
		const cJSON *v = fmt_json_member(obj, c->string);
		if (rank ? !is_integer(v, 1, INT_MAX) : !(cJSON_IsNumber(v) && isfinite(v->valuedouble)))
			return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: %s '%s': the value is not %s", cfg, name,
					fmt_quote(c->string, q, sizeof q), rank ? "a positive integer" : "a number");
		regex_t re;
		if (!pattern_compile(c->string, &re))
			return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: %s key '%s' is a Python regex this tool cannot "
					"translate to POSIX (lookaround, backreferences, inline flags, possessive quantifiers, "
					"a repetition of what can match the empty string, more than %d nested groups or more "
					"than %d atoms with its repetitions counted out), so its modules cannot be told", cfg,
					name, fmt_quote(c->string, q, sizeof q), PYRE_MAX_DEPTH, PYRE_MAX_SIZE);
		regfree(&re);
	}
	*out = obj;
	return LQ_OK;
}

static lq_status check_indices(peft_adapter *a, const char *cfg, const cJSON *list, const char *what)
{
	if (!cJSON_IsArray(list))
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: trainable_token_indices%s is not a list of token ids", cfg, what);
	for (const cJSON *c = list->child; c; c = c->next)
		if (!is_integer(c, 0, 9007199254740992.0))
			return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: trainable_token_indices%s holds something other than a "
					"token id", cfg, what);
	return LQ_OK;
}

/* init_lora_weights values that leave the base alone (P1, P6). */
static bool init_keeps_base(const char *s)
{
	static const char *const ok[] = {"gaussian", "eva", "orthogonal", "mica"};
	for (size_t i = 0; i < COUNT(ok); i++)
		if (strcmp(s, ok[i]) == 0)
			return true;
	return false;
}

static lq_status parse_config(peft_adapter *a, const char *cfg, config_view *cv)
{
	char q[Q];
	const cJSON *c = a->config;
	const cJSON *pt = fmt_json_member(c, "peft_type");
	if (!pt)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: no \"peft_type\": not a PEFT adapter config", cfg);
	if (!cJSON_IsString(pt))
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"peft_type\" is not a string", cfg);
	if (strcmp(pt->valuestring, "LORA") != 0)
		return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: peft_type is '%s': only LoRA adapters (peft_type LORA) "
				"are merged here, as W + s * B @ A; other PEFT methods change the weights otherwise", cfg,
				fmt_quote(pt->valuestring, q, sizeof q));

	/* variants and initializations whose merge is not W + s * B @ A (P5, P6) */
	static const struct {
		const char *field, *why;
	} refused[] = {
		{"alora_invocation_tokens", "an Activated LoRA (aLoRA) applies its weights only to the tokens after its "
					    "invocation sequence, so no merged weight reproduces it"},
		{"use_qalora", "QALoRA's lora_A acts on the input pooled by groups, not on the input itself"},
		{"kasa_config", "KaSA truncates the base weight by SVD and puts a learned diagonal (lora_diag) between "
				"B and A"},
		{"use_bdlora", "BD-LoRA's factors are block-diagonal, merged by their own rule"},
		{"arrow_config", "Arrow routes each token to its top-k LoRA experts, which no single weight can hold"},
		{"layer_replication", "the adapter was trained on a model with repeated layers, which the base does "
				      "not have"},
		{"target_parameters", "LoRA on bare parameters (MoE experts) is merged per parameter, not as a "
				      "module's W + s * B @ A"},
	};
	for (size_t i = 0; i < COUNT(refused); i++) {
		const cJSON *v = fmt_json_member(c, refused[i].field);
		if (json_set(v))
			return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: %s is set: %s; it cannot be merged as W + s * B @ A",
					cfg, refused[i].field, refused[i].why);
	}
	const cJSON *init = fmt_json_member(c, "init_lora_weights");
	if (cJSON_IsString(init)) {
		const char *s = init->valuestring;
		if (fmt_starts_with(s, "pissa") || strcmp(s, "olora") == 0 || strcmp(s, "corda") == 0 ||
		    strcmp(s, "lora_ga") == 0 || strcmp(s, "loftq") == 0)
			return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: init_lora_weights is '%s': that initialization "
					"replaces the base weights by a residual the adapter was trained on (and PEFT computes "
					"it again when it loads the adapter), so it cannot be merged as W + s * B @ A into the "
					"original base; convert it to a plain LoRA adapter first (PEFT's save_pretrained with "
					"path_initial_model_for_weight_conversion)", cfg, fmt_quote(s, q, sizeof q));
		if (!init_keeps_base(s))
			return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: init_lora_weights '%s' is not one PEFT 0.21 knows; "
					"it may have changed the base weights", cfg, fmt_quote(s, q, sizeof q));
	} else if (init && !cJSON_IsBool(init) && !cJSON_IsNull(init)) {
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"init_lora_weights\" is neither a bool nor a string", cfg);
	}

	const cJSON *r = fmt_json_member(c, "r");
	if (r && !is_integer(r, 1, INT_MAX))
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"r\" is not a positive integer", cfg);
	a->r = r ? (int)r->valuedouble : 8;
	const cJSON *alpha = fmt_json_member(c, "lora_alpha");
	if (alpha && !(cJSON_IsNumber(alpha) && isfinite(alpha->valuedouble)))
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"lora_alpha\" is not a number", cfg);
	a->lora_alpha = alpha ? alpha->valuedouble : 8.0;

	lq_status st;
	if ((st = get_bool(a, cfg, "use_rslora", &a->use_rslora)) != LQ_OK ||
	    (st = get_bool(a, cfg, "use_dora", &a->use_dora)) != LQ_OK ||
	    (st = get_bool(a, cfg, "lora_bias", &a->lora_bias)) != LQ_OK ||
	    (st = get_bool(a, cfg, "fan_in_fan_out", &a->fan_in_fan_out)) != LQ_OK)
		return st;
	if (a->lora_bias && a->use_dora)
		return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: lora_bias with use_dora: PEFT refuses the combination", cfg);

	cv->velora = json_set(fmt_json_member(c, "velora_config"));
	cv->monteclora = json_set(fmt_json_member(c, "monteclora_config"));
	const bool mica = cJSON_IsString(init) && strcmp(init->valuestring, "mica") == 0;
	if ((int)a->use_dora + (int)cv->velora + (int)cv->monteclora + (int)mica > 1)
		return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: more than one LoRA variant (use_dora, velora_config, "
				"monteclora_config, init_lora_weights 'mica'): PEFT 0.21 has no such combination", cfg);
	if (cv->velora && (st = warn(a, "%s: velora_config: VeLoRA changes only the backward pass of training; "
				     "PEFT merges it as plain LoRA (its lora_velora_embed tensors are not used)", cfg)) != LQ_OK)
		return st;
	if (cv->monteclora && (st = warn(a, "%s: monteclora_config: MonteCLoRA samples noise only while "
					 "training; PEFT merges it as plain LoRA (its sampler tensors are not used)",
					 cfg)) != LQ_OK)
		return st;

	const cJSON *bias = fmt_json_member(c, "bias");
	if (bias && !cJSON_IsNull(bias)) {
		if (!cJSON_IsString(bias) || (strcmp(bias->valuestring, "none") != 0 && strcmp(bias->valuestring, "all") != 0 &&
					      strcmp(bias->valuestring, "lora_only") != 0))
			return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"bias\" is not \"none\", \"all\" or \"lora_only\"", cfg);
		cv->bias_all = strcmp(bias->valuestring, "all") == 0;
	}

	if ((st = check_pattern_dict(a, cfg, "rank_pattern", true, &cv->rank_pattern)) != LQ_OK ||
	    (st = check_pattern_dict(a, cfg, "alpha_pattern", false, &cv->alpha_pattern)) != LQ_OK)
		return st;

	const cJSON *mts = fmt_json_member(c, "modules_to_save");
	if (mts && !cJSON_IsNull(mts)) {
		if (!cJSON_IsArray(mts))
			return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"modules_to_save\" is not a list", cfg);
		for (const cJSON *e = mts->child; e; e = e->next)
			if (!cJSON_IsString(e) || !e->valuestring[0])
				return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"modules_to_save\" holds something other than a "
						"module name", cfg);
		cv->modules_to_save = mts;
	}
	const cJSON *tti = fmt_json_member(c, "trainable_token_indices");
	if (tti && !cJSON_IsNull(tti)) {
		if (cJSON_IsObject(tti)) {
			for (const cJSON *e = tti->child; e; e = e->next) {
				char what[Q + 8];
				snprintf(what, sizeof what, "['%s']", fmt_quote(e->string, q, sizeof q));
				if ((st = check_indices(a, cfg, fmt_json_member(tti, e->string), what)) != LQ_OK)
					return st;
			}
		} else if ((st = check_indices(a, cfg, tti, "")) != LQ_OK) {
			return st;
		}
		cv->token_indices = tti;
	}
	const cJSON *tm = fmt_json_member(c, "target_modules");
	if (tm && !cJSON_IsNull(tm) && !cJSON_IsString(tm) && !cJSON_IsArray(tm))
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: \"target_modules\" is neither a string nor a list", cfg);
	return LQ_OK;
}

/* ----------------------------------------------------------------------------------- the keys */

typedef enum role { ROLE_A, ROLE_B, ROLE_BIAS, ROLE_EMB_A, ROLE_EMB_B, ROLE_MAG, ROLE_COUNT } role;

static const struct {
	const char *suffix;
	role role;
} lora_suffixes[] = {
	{".lora_A.weight", ROLE_A},           {".lora_B.weight", ROLE_B},
	{".lora_B.bias", ROLE_BIAS},          {".lora_embedding_A", ROLE_EMB_A},
	{".lora_embedding_B", ROLE_EMB_B},    {".lora_magnitude_vector", ROLE_MAG},
};

static const char *const role_names[ROLE_COUNT] = {
	"lora_A.weight", "lora_B.weight", "lora_B.bias", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector",
};

/* Names of PEFT's own modules and parameters: a key holding one that is not understood is not a tensor
 * of the base model. */
static bool peft_segment(const char *seg, size_t n)
{
	static const char *const names[] = {"base_layer", "token_adapter", "modules_to_save", "original_module",
					    "trainable_tokens_delta", "trainable_tokens_original"};
	if (n >= 5 && strncmp(seg, "lora_", 5) == 0)
		return true;
	for (size_t i = 0; i < COUNT(names); i++)
		if (strlen(names[i]) == n && strncmp(seg, names[i], n) == 0)
			return true;
	return false;
}

static bool has_peft_segment(const char *path)
{
	for (const char *s = path; *s;) {
		const char *dot = strchr(s, '.');
		const size_t n = dot ? (size_t)(dot - s) : strlen(s);
		if (peft_segment(s, n))
			return true;
		s += n + (dot ? 1 : 0);
	}
	return false;
}

static bool has_segment(const char *path, const char *seg)
{
	const size_t k = strlen(seg);
	for (const char *s = path; (s = strstr(s, seg)); s += k)
		if ((s == path || s[-1] == '.') && (s[k] == '\0' || s[k] == '.'))
			return true;
	return false;
}

/* Input and output embedding names that save_embedding_layers may write whole (R, P4). */
static bool embedding_name(const char *module)
{
	static const char *const names[] = {"embed_tokens", "lm_head", "wte", "word_embeddings", "embed_in",
					    "embed_out", "tok_embeddings", "shared"};
	const char *dot = strrchr(module, '.');
	const char *last = dot ? dot + 1 : module;
	for (size_t i = 0; i < COUNT(names); i++)
		if (strcmp(last, names[i]) == 0)
			return true;
	return false;
}

/* The index of the first entry of modules_to_save that a prefix of path (ending at a '.') ends with (P4),
 * or -1. */
static int under_modules_to_save(const cJSON *mts, const char *path)
{
	if (!mts)
		return -1;
	for (const char *dot = strchr(path, '.'); dot; dot = strchr(dot + 1, '.')) {
		const size_t n = (size_t)(dot - path);
		int i = 0;
		for (const cJSON *e = mts->child; e; e = e->next, i++) {
			const size_t k = strlen(e->valuestring);
			if (k <= n && strncmp(path + n - k, e->valuestring, k) == 0)
				return i;
		}
	}
	return -1;
}

const char *peft_saved_module(const peft_adapter *a, const char *tensor)
{
	/* checked when the adapter was opened: null, or a list of non-empty names */
	const cJSON *mts = a->config ? fmt_json_member(a->config, "modules_to_save") : NULL;
	if (!mts || !cJSON_IsArray(mts))
		return NULL;
	const int i = under_modules_to_save(mts, tensor);
	return i >= 0 ? cJSON_GetArrayItem(mts, i)->valuestring : NULL;
}

typedef struct lora_entry {
	char *raw; /* module path after the prefix strip, before the key maps */
	role role;
	const st_tensor *t;
} lora_entry;

static int cmp_entry(const void *x, const void *y)
{
	const lora_entry *a = x, *b = y;
	const int c = strcmp(a->raw, b->raw);
	return c ? c : (int)a->role - (int)b->role;
}

static bool float_dtype(st_dtype d)
{
	return d == ST_F32 || d == ST_F16 || d == ST_BF16;
}

typedef struct build {
	peft_adapter *a;
	const config_view *cv;
	const key_map *maps;
	size_t nmaps;
	const char *wpath; /* adapter_model.safetensors, for messages */
	lora_entry *entries;
	size_t nentries;
	pattern_set rank_ps, alpha_ps;
	size_t rank_warnings;
	bool *mts_hit; /* per entry of modules_to_save: a tensor of it was found */
} build;

static lq_status add_replacement(build *b, const char *module_raw, const char *param, const st_tensor *t,
				 peft_source source, int64_t *rows, size_t nrows)
{
	peft_adapter *a = b->a;
	peft_replacement *r = realloc(a->replacements, (a->nreplacements + 1) * sizeof *r);
	if (!r) {
		free(rows);
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	}
	a->replacements = r;
	peft_replacement *p = &r[a->nreplacements];
	memset(p, 0, sizeof *p);
	char *mapped = map_path(b->maps, b->nmaps, module_raw);
	p->target = mapped ? fmt_join(mapped, ".", param) : NULL;
	free(mapped);
	p->t = t;
	p->rows = rows;
	p->nrows = nrows;
	p->source = source;
	a->nreplacements++;
	return p->target ? LQ_OK : fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
}

/* The trainable tokens delta of embedding `emb` (P4, P5). */
static lq_status add_tokens(build *b, const char *emb, const st_tensor *t)
{
	peft_adapter *a = b->a;
	char q[Q];
	const cJSON *tti = b->cv->token_indices, *list = NULL;
	if (cJSON_IsArray(tti)) {
		list = tti;
	} else if (cJSON_IsObject(tti)) {
		for (const cJSON *e = tti->child; e && !list; e = e->next)
			if (first_of_key(tti, e) && fmt_ends_with(emb, e->string))
				list = fmt_json_member(tti, e->string);
	}
	if (!list)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: tensor '%s.token_adapter.trainable_tokens_delta': "
				"trainable_token_indices in the config names no indices for that module", b->wpath,
				fmt_quote(emb, q, sizeof q));
	const size_t n = (size_t)cJSON_GetArraySize(list);
	if (t->ndim != 2 || (uint64_t)t->shape[0] != n || !float_dtype(t->dtype)) {
		char s[96];
		fmt_shape(s, sizeof s, t->ndim, t->shape);
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: tensor '%s.token_adapter.trainable_tokens_delta' is %s %s, "
				"not a floating [%zu, dim] for the %zu indices of the config", b->wpath,
				fmt_quote(emb, q, sizeof q), st_dtype_name(t->dtype), s, n, n);
	}
	int64_t *rows = malloc((n ? n : 1) * sizeof *rows);
	if (!rows)
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	size_t i = 0;
	bool dup = false;
	for (const cJSON *e = list->child; e; e = e->next, i++) {
		rows[i] = (int64_t)e->valuedouble;
		for (size_t k = 0; k < i && !dup; k++)
			dup = rows[k] == rows[i];
	}
	lq_status st = LQ_OK;
	if (dup)
		st = warn(a, "%s: trainable_token_indices for '%s' repeats a token id: the last of its rows is kept", b->wpath,
			  fmt_quote(emb, q, sizeof q));
	if (st != LQ_OK) {
		free(rows);
		return st;
	}
	return add_replacement(b, emb, "weight", t, PEFT_FROM_TRAINABLE_TOKENS, rows, n);
}

static lq_status add_entry(build *b, const char *raw, size_t n, role r, const st_tensor *t)
{
	lora_entry *e = realloc(b->entries, (b->nentries + 1) * sizeof *e);
	if (!e)
		return fmt_fail(b->a->err, LQ_ERR_NOMEM, "out of memory");
	b->entries = e;
	e[b->nentries].raw = fmt_dup_n(raw, n);
	e[b->nentries].role = r;
	e[b->nentries].t = t;
	if (!e[b->nentries].raw)
		return fmt_fail(b->a->err, LQ_ERR_NOMEM, "out of memory");
	b->nentries++;
	return LQ_OK;
}

/* Sorts one key into a LoRA entry, a replacement, an ignored tensor, or an error. */
static lq_status classify(build *b, const st_tensor *t)
{
	peft_adapter *a = b->a;
	const config_view *cv = b->cv;
	char q[Q];
	const char *key = t->name;
	const char *p = fmt_starts_with(key, PREFIX) ? key + strlen(PREFIX) : key;
	const size_t len = strlen(p);

	for (size_t i = 0; i < COUNT(lora_suffixes); i++)
		if (fmt_ends_with(p, lora_suffixes[i].suffix)) {
			const size_t n = len - strlen(lora_suffixes[i].suffix);
			if (n == 0)
				break;
			return add_entry(b, p, n, lora_suffixes[i].role, t);
		}
	static const char tokens_suffix[] = ".token_adapter.trainable_tokens_delta";
	if (fmt_ends_with(p, tokens_suffix) && len > strlen(tokens_suffix)) {
		char *emb = fmt_dup_n(p, len - strlen(tokens_suffix));
		if (!emb)
			return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
		lq_status st = has_peft_segment(emb) ? fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: tensor '%s' is not one this "
								"tool understands", b->wpath, fmt_quote(key, q, sizeof q))
						     : add_tokens(b, emb, t);
		free(emb);
		return st;
	}
	if (cv->velora && (fmt_ends_with(p, ".lora_velora_embed")))
		return LQ_OK;
	if (cv->monteclora && has_segment(p, "lora_monteclora_sampler"))
		return LQ_OK;

	const char *bl = strstr(p, ".base_layer.");
	if (bl && bl > p) {
		/* a base layer's own parameter, saved with the adapter (P4): it takes the base's place */
		char *module = fmt_dup_n(p, (size_t)(bl - p));
		const char *param = bl + strlen(".base_layer.");
		if (!module)
			return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
		lq_status st;
		if (!*param || has_peft_segment(module) || has_peft_segment(param))
			st = fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: tensor '%s' is not one this tool understands: "
				      "refusing to merge part of the adapter", b->wpath, fmt_quote(key, q, sizeof q));
		else
			st = add_replacement(b, module, param, t, PEFT_FROM_BASE_LAYER, NULL, 0);
		free(module);
		return st;
	}
	const char *dot = strrchr(p, '.');
	if (has_peft_segment(p) || !dot || dot == p)
		return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: tensor '%s' is not one this tool understands (a LoRA "
				"variant's own tensor, or another PEFT method's): refusing to merge part of the adapter",
				b->wpath, fmt_quote(key, q, sizeof q));

	/* a whole tensor of the model */
	char *module = fmt_dup_n(p, (size_t)(dot - p));
	if (!module)
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	peft_source src;
	bool known = true;
	const int mts = under_modules_to_save(cv->modules_to_save, p);
	if (mts >= 0) {
		src = PEFT_FROM_MODULES_TO_SAVE;
		b->mts_hit[mts] = true;
	}
	else if (cv->bias_all && strcmp(dot + 1, "bias") == 0)
		src = PEFT_FROM_BIAS;
	else if (embedding_name(module))
		src = PEFT_FROM_EMBEDDING_LAYER;
	else
		known = false;
	lq_status st;
	if (known)
		st = add_replacement(b, module, dot + 1, t, src, NULL, 0);
	else
		st = fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: tensor '%s' is neither a LoRA tensor nor under "
			      "modules_to_save: refusing to merge part of the adapter", b->wpath,
			      fmt_quote(key, q, sizeof q));
	free(module);
	return st;
}

/* One module from its sorted entries [i, j). */
static lq_status build_module(build *b, size_t i, size_t j)
{
	peft_adapter *a = b->a;
	const char *raw = b->entries[i].raw;
	char q[Q], s1[96], s2[96];
	const st_tensor *t[ROLE_COUNT] = {0};
	for (size_t k = i; k < j; k++) {
		const role r = b->entries[k].role;
		if (t[r])
			return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s' has two %s tensors ('%s' and '%s': with and "
					"without the \"" PREFIX "\" prefix?)", b->wpath, fmt_quote(raw, q, sizeof q),
					role_names[r], t[r]->name, b->entries[k].t->name);
		t[r] = b->entries[k].t;
	}
	const bool linear = t[ROLE_A] || t[ROLE_B];
	const bool emb = t[ROLE_EMB_A] || t[ROLE_EMB_B];
	if (linear && emb)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s' has both lora_A/lora_B and "
				"lora_embedding_A/lora_embedding_B", b->wpath, fmt_quote(raw, q, sizeof q));
	const st_tensor *A = linear ? t[ROLE_A] : t[ROLE_EMB_A];
	const st_tensor *B = linear ? t[ROLE_B] : t[ROLE_EMB_B];
	const char *an = linear ? "lora_A" : "lora_embedding_A", *bn = linear ? "lora_B" : "lora_embedding_B";
	if (!linear && !emb)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s' has a %s but no lora_A and lora_B", b->wpath,
				fmt_quote(raw, q, sizeof q), role_names[b->entries[i].role]);
	if (!A || !B)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s' has %s but no %s", b->wpath,
				fmt_quote(raw, q, sizeof q), A ? an : bn, A ? bn : an);
	if (A->ndim != 2 || B->ndim != 2) {
		const st_tensor *x = A->ndim != 2 ? A : B;
		fmt_shape(s1, sizeof s1, x->ndim, x->shape);
		return fmt_fail(a->err, x->ndim > 2 ? LQ_ERR_UNSUPPORTED : LQ_ERR_CORRUPT, "%s: module '%s': %s is %s%s",
				b->wpath, fmt_quote(raw, q, sizeof q), x == A ? an : bn, s1,
				x->ndim > 2 ? ": LoRA on a convolution; only Linear and Embedding layers are merged"
					    : ", not 2-D");
	}
	fmt_shape(s1, sizeof s1, A->ndim, A->shape);
	fmt_shape(s2, sizeof s2, B->ndim, B->shape);
	if (A->shape[0] != B->shape[1] || A->shape[0] <= 0 || A->shape[1] <= 0 || B->shape[0] <= 0)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s': %s is %s and %s is %s; they must be [r, %s] and "
				"[%s, r] with the same r > 0", b->wpath, fmt_quote(raw, q, sizeof q), an, s1, bn, s2,
				linear ? "in" : "num_embeddings", linear ? "out" : "embedding_dim");
	if (A->shape[0] > INT_MAX)
		return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: module '%s': rank %lld is too large", b->wpath,
				fmt_quote(raw, q, sizeof q), (long long)A->shape[0]);
	if (!float_dtype(A->dtype) || A->dtype != B->dtype)
		return fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "%s: module '%s': %s is %s and %s is %s: both must be F32, F16 "
				"or BF16, the same", b->wpath, fmt_quote(raw, q, sizeof q), an, st_dtype_name(A->dtype), bn,
				st_dtype_name(B->dtype));
	const st_tensor *mag = t[ROLE_MAG], *bias = t[ROLE_BIAS];
	if (mag && !a->use_dora)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s' has a lora_magnitude_vector but use_dora is not "
				"set in the config", b->wpath, fmt_quote(raw, q, sizeof q));
	if (a->use_dora && !mag)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s' has no lora_magnitude_vector, which a DoRA "
				"adapter (use_dora) needs", b->wpath, fmt_quote(raw, q, sizeof q));
	if (mag && (mag->ndim != 1 || mag->shape[0] != B->shape[0] || !float_dtype(mag->dtype))) {
		fmt_shape(s1, sizeof s1, mag->ndim, mag->shape);
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s': lora_magnitude_vector is %s %s, not a floating "
				"[%lld]", b->wpath, fmt_quote(raw, q, sizeof q), st_dtype_name(mag->dtype), s1,
				(long long)B->shape[0]);
	}
	if (bias && (!linear || !a->lora_bias))
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s' has a lora_B.bias but %s", b->wpath,
				fmt_quote(raw, q, sizeof q), linear ? "lora_bias is not set in the config"
								    : "is an embedding, which has no lora_bias");
	if (linear && a->lora_bias && !bias)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s' has no lora_B.bias, which lora_bias in the config "
				"calls for", b->wpath, fmt_quote(raw, q, sizeof q));
	if (bias && (bias->ndim != 1 || bias->shape[0] != B->shape[0] || !float_dtype(bias->dtype))) {
		fmt_shape(s1, sizeof s1, bias->ndim, bias->shape);
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s': lora_B.bias is %s %s, not a floating [%lld]",
				b->wpath, fmt_quote(raw, q, sizeof q), st_dtype_name(bias->dtype), s1, (long long)B->shape[0]);
	}

	peft_module *m = &a->modules[a->nmodules];
	memset(m, 0, sizeof *m);
	m->module = map_path(b->maps, b->nmaps, raw);
	m->weight = m->module ? fmt_join(m->module, ".", "weight") : NULL;
	a->nmodules++;
	if (!m->weight)
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	m->kind = linear ? PEFT_LINEAR : PEFT_EMBEDDING;
	m->a = A;
	m->b = B;
	m->magnitude = mag;
	m->bias = bias;
	m->dora = a->use_dora;
	m->rank = (int)A->shape[0];
	double v;
	m->config_rank = pattern_set_lookup(&b->rank_ps, raw, &v) ? (int)v : a->r;
	m->alpha = pattern_set_lookup(&b->alpha_ps, raw, &v) ? v : a->lora_alpha;
	const double r = (double)m->rank;
	m->scaling = (float)(a->use_rslora ? m->alpha / sqrt(r) : m->alpha / r);
	/* A finite alpha can still give a scaling beyond FLT_MAX (lora_alpha 1e39 over r 8): it would turn
	 * every merged weight into infinity or NaN. Found by tests/fuzz/fuzz_peft.c. */
	if (!isfinite(m->scaling))
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: module '%s': lora_alpha %g over rank %d gives a scaling that a "
				"float cannot hold", b->wpath, fmt_quote(raw, q, sizeof q), m->alpha, m->rank);
	if (m->config_rank != m->rank && b->rank_warnings++ < MAX_WARNED_RANKS) {
		lq_status st = warn(a, "%s: module '%s': rank in the config (%d) differs from the tensor's (%d): the "
				    "tensor's is used", b->wpath, fmt_quote(raw, q, sizeof q), m->config_rank, m->rank);
		if (st != LQ_OK)
			return st;
	}
	return LQ_OK;
}

static int cmp_str_ptr(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* No two modules, or two replacements, for one base tensor (after the key maps). */
static lq_status check_unique(peft_adapter *a, const char *wpath)
{
	const size_t n = a->nmodules > a->nreplacements ? a->nmodules : a->nreplacements;
	const char **names = malloc((n ? n : 1) * sizeof *names);
	if (!names)
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	lq_status st = LQ_OK;
	for (int pass = 0; pass < 2 && st == LQ_OK; pass++) {
		const size_t k = pass ? a->nreplacements : a->nmodules;
		for (size_t i = 0; i < k; i++)
			names[i] = pass ? a->replacements[i].target : a->modules[i].weight;
		qsort(names, k, sizeof *names, cmp_str_ptr);
		for (size_t i = 1; i < k; i++)
			if (strcmp(names[i], names[i - 1]) == 0) {
				char q[Q];
				st = fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: two %s of the adapter land on '%s'%s", wpath,
					      pass ? "replacement tensors" : "LoRA modules", fmt_quote(names[i], q, sizeof q),
					      " (after the key maps, if any)");
				break;
			}
	}
	free(names);
	return st;
}

static lq_status read_keys(peft_adapter *a, const config_view *cv, const key_map *maps, size_t nmaps,
			   const char *wpath)
{
	build b = {.a = a, .cv = cv, .maps = maps, .nmaps = nmaps, .wpath = wpath};
	lq_status st = LQ_OK;
	const int nmts = cv->modules_to_save ? cJSON_GetArraySize(cv->modules_to_save) : 0;
	b.mts_hit = calloc((size_t)nmts + 1, sizeof *b.mts_hit);
	if (!b.mts_hit || !pattern_set_build(&b.rank_ps, cv->rank_pattern) ||
	    !pattern_set_build(&b.alpha_ps, cv->alpha_pattern))
		st = fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < a->st->ntensors && st == LQ_OK; i++)
		st = classify(&b, a->st->by_name[i]);
	if (st == LQ_OK && b.nentries) {
		qsort(b.entries, b.nentries, sizeof *b.entries, cmp_entry);
		size_t groups = 0;
		for (size_t i = 0; i < b.nentries; i++)
			groups += i == 0 || strcmp(b.entries[i].raw, b.entries[i - 1].raw) != 0;
		a->modules = calloc(groups, sizeof *a->modules);
		if (!a->modules)
			st = fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
		for (size_t i = 0; i < b.nentries && st == LQ_OK;) {
			size_t j = i + 1;
			while (j < b.nentries && strcmp(b.entries[j].raw, b.entries[i].raw) == 0)
				j++;
			st = build_module(&b, i, j);
			i = j;
		}
	}
	if (st == LQ_OK && b.rank_warnings > MAX_WARNED_RANKS)
		st = warn(a, "%s: %zu more modules whose rank in the config differs from the tensor's", wpath,
			  b.rank_warnings - MAX_WARNED_RANKS);
	if (st == LQ_OK && a->nmodules == 0 && a->nreplacements == 0)
		st = fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: no LoRA tensor in the adapter", wpath);
	if (st == LQ_OK)
		st = check_unique(a, wpath);
	/* modules_to_save entries that saved nothing */
	if (st == LQ_OK && cv->modules_to_save) {
		int i = 0;
		for (const cJSON *e = cv->modules_to_save->child; e && st == LQ_OK; e = e->next, i++)
			if (!b.mts_hit[i]) {
				char q[Q];
				st = warn(a, "%s: modules_to_save '%s': no tensor of it in the adapter (the base must have no such module)", wpath,
					  fmt_quote(e->valuestring, q, sizeof q));
			}
	}
	free(b.mts_hit);
	for (size_t i = 0; i < b.nentries; i++)
		free(b.entries[i].raw);
	free(b.entries);
	pattern_set_free(&b.rank_ps);
	pattern_set_free(&b.alpha_ps);
	return st;
}

/* --------------------------------------------------------------------------------- the handle */

peft_adapter *peft_adapter_create(void)
{
	return calloc(1, sizeof(peft_adapter));
}

void peft_adapter_free(peft_adapter *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nmodules; i++) {
		free(a->modules[i].module);
		free(a->modules[i].weight);
	}
	free(a->modules);
	for (size_t i = 0; i < a->nreplacements; i++) {
		free(a->replacements[i].target);
		free(a->replacements[i].rows);
	}
	free(a->replacements);
	for (size_t i = 0; i < a->nwarnings; i++)
		free(a->warnings[i]);
	free(a->warnings);
	cJSON_Delete(a->config);
	st_file_free(a->st);
	free(a->ref);
	bundle_free(a->bundle);
	free(a->dir);
	free(a);
}

const char *peft_adapter_error(const peft_adapter *a)
{
	return a ? a->err : "no adapter";
}

/* Whether the adapter holds the file `name` (at `path` in its directory). */
static bool has_file(const peft_adapter *a, const char *name, const char *path)
{
	return a->bundle ? bundle_find(a->bundle, name) >= 0 : exists(path);
}

/* The config's text: from the directory, or the bundle's entry (held in memory by bundle_open). */
static lq_status read_config(peft_adapter *a, const char *cfg, char **text, size_t *len)
{
	if (!a->bundle)
		return fmt_read_small(cfg, CONFIG_LIMIT, text, len, a->err);
	const bundle_entry *e = bundle_entry_at(a->bundle, (size_t)bundle_find(a->bundle, CONFIG_NAME));
	if (e->size > CONFIG_LIMIT || e->head_len != e->size)
		return fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: %" PRIu64 " bytes, more than a config may have", cfg, e->size);
	if (!(*text = malloc(e->size ? e->size : 1)))
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	memcpy(*text, e->head, e->size);
	*len = e->size;
	return LQ_OK;
}

/* The weights' safetensors header: from the directory's file, or through the bundle. */
static lq_status open_weights(peft_adapter *a, const char *wpath)
{
	if (!(a->st = st_file_create()))
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
	lq_status st;
	if (a->bundle) {
		if (!(a->ref = malloc(sizeof *a->ref)))
			return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
		*a->ref = (bundle_entry_ref){a->bundle, (size_t)bundle_find(a->bundle, WEIGHTS_NAME)};
		st = st_file_open_reader(a->st, wpath, bundle_entry_at(a->bundle, a->ref->entry)->size, bundle_entry_read,
					 a->ref);
	} else {
		st = st_file_open(a->st, wpath);
	}
	return st == LQ_OK ? LQ_OK : fmt_fail(a->err, st, "%s", st_file_error(a->st));
}

lq_status peft_adapter_open(peft_adapter *a, const char *path, const peft_key_map *maps, size_t nmaps)
{
	if (!a || !path)
		return LQ_ERR_ARG;
	a->err[0] = '\0';
	if (a->config || a->st || a->dir)
		return fmt_fail(a->err, LQ_ERR_ARG, "the adapter handle is already open");
	struct stat sb;
	if (stat(path, &sb) != 0)
		return fmt_fail(a->err, LQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
	bool compressed;
	const char *sep = "/";
	if (S_ISDIR(sb.st_mode)) {
		a->dir = strdup(path);
	} else if (S_ISREG(sb.st_mode) && bundle_path_is_bundle(path, &compressed)) {
		/* a bundle of the adapter's directory, read in place; messages name "ARCHIVE:FILE" */
		a->dir = strdup(path);
		sep = ":";
		if (!a->dir || !(a->bundle = bundle_create()))
			return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
		lq_status st = bundle_open(a->bundle, path);
		if (st != LQ_OK)
			return fmt_fail(a->err, st, "%s", bundle_error(a->bundle));
	} else {
		const char *slash = strrchr(path, '/');
		const char *base = slash ? slash + 1 : path;
		if (strcmp(base, CONFIG_NAME) != 0 && strcmp(base, WEIGHTS_NAME) != 0)
			return fmt_fail(a->err, LQ_ERR_ARG, "'%s' is not a PEFT adapter: give its directory, its "
					CONFIG_NAME " or a .tar.zst or .tar bundle of it", path);
		a->dir = slash ? fmt_dup_n(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	}
	if (!a->dir)
		return fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");

	char *cfg = fmt_join(a->dir, sep, CONFIG_NAME), *wpath = fmt_join(a->dir, sep, WEIGHTS_NAME);
	char *pickle = fmt_join(a->dir, sep, PICKLE_NAME);
	key_map *km = NULL;
	config_view cv = {0};
	lq_status st = LQ_OK;
	if (!cfg || !wpath || !pickle) {
		st = fmt_fail(a->err, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	const bool has_weights = has_file(a, WEIGHTS_NAME, wpath);
	if (!has_weights && has_file(a, PICKLE_NAME, pickle)) {
		st = fmt_fail(a->err, LQ_ERR_UNSUPPORTED, "'%s' holds only " PICKLE_NAME ", a pickle, which is never "
			      "unpickled here (it can run code): save the adapter as " WEIGHTS_NAME " (PEFT's "
			      "save_pretrained does by default)", a->dir);
		goto done;
	}
	if (!has_file(a, CONFIG_NAME, cfg)) {
		st = fmt_fail(a->err, LQ_ERR_IO, "'%s' holds no " CONFIG_NAME "%s: without it the rank, alpha and "
			      "variant of the adapter are unknown", a->dir,
			      has_weights ? "" : " (nor " WEIGHTS_NAME "): not a PEFT adapter directory");
		goto done;
	}
	char *text = NULL;
	size_t len = 0;
	if ((st = read_config(a, cfg, &text, &len)) != LQ_OK)
		goto done;
	a->config = cJSON_ParseWithLength(text, len);
	free(text);
	if (!a->config || !cJSON_IsObject(a->config)) {
		st = fmt_fail(a->err, LQ_ERR_CORRUPT, "%s: not a JSON object", cfg);
		goto done;
	}
	if ((st = parse_config(a, cfg, &cv)) != LQ_OK)
		goto done;
	if ((st = key_maps_compile(maps, nmaps, &km, a->err)) != LQ_OK)
		goto done;
	if (!has_weights) {
		st = fmt_fail(a->err, LQ_ERR_IO, "'%s' holds no " WEIGHTS_NAME ": %s", a->dir, strerror(ENOENT));
		goto done;
	}
	if ((st = open_weights(a, wpath)) != LQ_OK)
		goto done;
	st = read_keys(a, &cv, km, nmaps, wpath);
done:
	key_maps_free(km, nmaps);
	free(cfg);
	free(wpath);
	free(pickle);
	return st;
}
