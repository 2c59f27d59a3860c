/*
 * hf_select.c: which checkpoint tensors transformers' bitsandbytes 4-bit loader quantizes (hf_select.h).
 *
 * Facts, from the transformers 5.17.0 source (the PyPI wheel), that the rules below stand on:
 *
 * F1 quantizers/quantizer_bnb_4bit.py _process_model_before_weight_loading: modules_to_not_convert =
 *    get_modules_to_not_convert(model, llm_int8_skip_modules, model._keep_in_fp32_modules), then
 *    integrations/bitsandbytes.py replace_with_bnb_linear walks model.named_modules() and swaps a module
 *    for Linear4bit when `isinstance(module, Conv1D) or type(module) is nn.Linear`: subclasses of
 *    nn.Linear (FalconLinear, nn.MultiheadAttention's NonDynamicallyQuantizableLinear, Llama4Router,
 *    I-BERT's QuantLinear) are NOT converted, nor is any module holding a bare nn.Parameter (MoE routers,
 *    fused experts). param_needs_quantization: only the `weight` of a Linear4bit, never its bias.
 * F2 quantizers/quantizers_utils.py should_convert_module(name, patterns): a module is kept out when, for
 *    some pattern p, re.match(rf"(?:{p})(?:(?<=\.)|(?=\.|$))", name) or name.endswith(p) (5.25; 5.17 had
 *    re.match(p + r"\.", name) or re.match(p, name), without the boundary: skiplist.h S3). So p is a
 *    Python regex matched from the start of the module path up to a module boundary ("model.layers.1"
 *    matches "model.layers.1.mlp", not "model.layers.10.mlp"), or a plain suffix ("fc1" matches "...fc1",
 *    and also "...xfc1"). A kept-out module's children are still visited, so they are converted unless
 *    they match a pattern themselves. The names matched are the model's module paths, after transformers
 *    renamed the checkpoint keys.
 * F3 quantizers/base.py get_modules_to_not_convert: when llm_int8_skip_modules is None the defaults
 *    get_keys_to_not_convert(model) are used: both ends of every tied pair (only when
 *    config.tie_word_embeddings), the module of the model's LAST parameter in named_parameters() order
 *    (a ".bias" last parameter names no module, so nothing is skipped), and the module returned by
 *    get_output_embeddings() (modeling_utils.py: `lm_head` when the model has one, else what the class
 *    overrides it with). When llm_int8_skip_modules is a list, even empty, NONE of those defaults is
 *    added: lm_head is then quantized unless listed. _keep_in_fp32_modules is added in both cases
 *    (regardless of dtype; _keep_in_fp32_modules_strict is not used here).
 * F4 bitsandbytes.py Bnb4bitQuantize.convert: a Conv1D weight (stored [in, out]) is transposed before
 *    quantizing; pytorch_utils.Conv1D is used by gpt2, openai-gpt, imagegpt, decision_transformer (c_attn,
 *    q_attn, c_proj, c_fc) and clvp (c_fc, c_proj); gpt_bigcode uses nn.Linear under the same names.
 * F5 modeling_utils.py save_pretrained / core_model_loading.py revert_weight_conversion: checkpoints are
 *    written in the "original" layout. In transformers 5 every MoE listed in conversion_mapping.py keeps
 *    its experts as fused 3-D nn.Parameters at run time (e.g. MixtralExperts.gate_up_proj [E, 2I, H]) but
 *    saves them per expert (`...experts.3.w1.weight`, `...experts.3.gate_proj.weight`): none of them is
 *    converted, and neither is the router (`gate`, a TopKRouter holding an nn.Parameter).
 * F6 Legacy composite layouts are renamed on load (conversion_mapping.py "llava", "llava_next", "mllama",
 *    "fuyu", Qwen2VLForConditionalGeneration, CLIPVisionModel PrefixChange): `language_model.lm_head` ->
 *    `lm_head`, `language_model.model.` -> `model.language_model.`, `vision_tower.` ->
 *    `model.vision_tower.`, `multi_modal_projector.` -> `model.multi_modal_projector.`; Qwen2-VL
 *    `visual.` -> `model.visual.`, `model.` -> `model.language_model.`. Patterns (F2) see the new names.
 *
 * The rules, in order (the first that applies decides; "R" marks a heuristic):
 *  1. Only a `.weight` (F1), of a floating type, with 2 dimensions (nn.Linear and Conv1D weights are
 *     2-D; norms are 1-D, convolutions 3-D/4-D, fused experts 3-D).
 *  R2. Not an nn.Linear by its name: the last path segment is a known embedding name (nn.Embedding and
 *     its subclasses in 5.17: embed_tokens, wte, shared, position_embedding, ...); a per-expert MoE
 *     weight (`experts.<n>.`, F5); an MoE router `gate` (F5; `router.gate` and `gateway.gate` are
 *     nn.Linear in afmoe and d_fine); the out_proj of an nn.MultiheadAttention (`head.attention`,
 *     `multihead_attn`: SigLIP's pooling head, Aria's projector); a Linear subclass or a router Parameter
 *     listed for the model type (falcon, ibert, gpt_oss, llama4, granitemoe, ...).
 *  3. Kept out by a pattern, matched as in F2 against the renamed path (F6; R: only the layouts above;
 *     the Python regex runs as a bounded POSIX ERE, pyregex.h, and an entry it cannot translate is
 *     reported by hf_select_refused): llm_int8_skip_modules from the config; else the defaults of F3, written
 *     here per model type and architecture since the checkpoint does not carry them (R): the output
 *     embedding (`lm_head`, or the type's own: gpt_neox `embed_out`, whisper `proj_out`, RoBERTa-style
 *     `lm_head.decoder`, BERT-style `cls.predictions.decoder`, ...), and the last module where it is a
 *     bias-free Linear: `score` of *ForSequenceClassification, CLIP-style `text_projection`, the last
 *     layer's MLP output of OlmoModel (norms without weight; a *ForCausalLM registers lm_head last and
 *     ties weights only after the swap), matched as exact paths; plus the type's _keep_in_fp32_modules
 *     (t5/mt5/umt5 `wo`, blip-2 `qformer`, ...).
 *  4. Otherwise it is converted; Conv1D names of the types in F4 are transposed.
 * Tied weights need no rule: save_pretrained drops the tied copy, and the other end is an embedding.
 *
 * Checked (tests/gpu/select_truth.py, tests/unit/select_truth_test.c): real 4-bit loads and saves of 37
 * tiny models of the common families (bitsandbytes 0.50.2's CPU backend), 0 disagreements; every (model type, class) of transformers 5.17's causal-LM,
 * seq2seq, image-text-to-text, speech, classification, masked-LM, QA and base-model maps that builds with
 * its default config (1090) on the meta device through the real replace_with_bnb_linear and save-time
 * key reversal: 38 tensors disagree, in 25 rare classes (base models whose last parameter is a Linear,
 * nn.MultiheadAttention under other names, keys renamed to `in_proj_weight` on save, speech heads); with a
 * skip list, 11 of 222 classes disagree, all with layouts renamed by rules not in F6 (ernie4_5_vl_moe,
 * kimi_k25, paddleocr_vl, minimax_m3_vl, cosmos3, step3p7, shieldgemma2, ...).
 * What can be wrong: a model type newer than these tables or with a custom module (a Linear subclass,
 * a Linear named like an embedding, an embedding named like neither, a head other than the ones above);
 * a skip-list prefix matched against a layout renamed otherwise than F6; remote-code models.
 */
#include "hf_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiplist.h"

#define MAX_TYPES 16
#define NAME_MAX_LEN 1024

/* A pattern of modules_to_not_convert, matched as in F2 (skiplist.h), with the reason given for it. */
typedef struct skip_pattern {
	hf_skip_entry e;
	const char *reason; /* static */
	bool exact; /* a head of this file's tables: the module path itself, not F2 */
} skip_pattern;

/* Bounds on a config's skip list, beyond those of one regex (pyregex.h): the entries, and the atoms of
 * those that are regexes (not literal paths), all together. A real list names a few modules, or one per
 * module of the model; matching costs entries x tensors. */
#define SKIP_MAX_ENTRIES 65536
#define SKIP_MAX_ATOMS PYRE_MAX_SIZE

struct hf_select {
	char *types[MAX_TYPES]; /* model_type of the config and of every nested config */
	int ntypes;
	char *arch; /* architectures[0], "" when absent */
	skip_pattern *pat;
	int npat, cap;
	uint64_t atoms;          /* of the config's regex entries */
	const char *refused;     /* why a config entry cannot be followed (static), or NULL */
	char *refused_entry;     /* that entry ("" for one that is not a string) */
	const char *heads[3];    /* the output embeddings F3 would keep out (static), NULL-terminated */
	bool conv1d;
	bool legacy_vlm; /* a type with the llava-style renaming of F6 */
	bool qwen2_vl;
};

/* nn.Embedding (and subclasses) names seen in transformers 5.17, last path segment, exact. */
static const char *const embedding_names[] = {
	"embed_tokens", "embed_positions", "embed_in", "embed_tokens_per_layer", "embedding", "embeddings",
	"word_embeddings", "word_embedding", "position_embeddings", "position_embedding", "token_type_embeddings",
	"token_embedding", "tok_embeddings", "tokens_embed", "positions_embed", "wte", "wpe", "shared",
	"relative_attention_bias", "pos_embed", "rel_pos_emb", "rel_embeddings", "segment_embedding", "segment_emb",
	"shape_embed", "pronunciation_embed", "ngram_embeddings", "language_embedding",
	"speaker_embedding", "unit_embedding", "entity_embeddings", "codebook", "tile_embedding",
	"position_embedding_table", "embed_audio_tokens", "embed_text_tokens", "codec_embed", "embed_char",
	"embed_global", "embed_timestep", "distance_embedding", "level_embed", "query_embed", "label_embed",
	"cls_embed", "denoising_class_embed", "point_embed", "no_mask_embed", "not_a_point_embed", "iou_token",
	"mask_tokens", "obj_score_token", "hq_token", "presence_token", "reference_points", "query_feat",
	"queries_features", "queries_embedder", "reference_point_embed", "rel_attn_embed", "freq_emb",
	"generation_embeddings", "visual_embeddings_table", "input_embeds_layer", "position_embeds_layer",
	"encoder_hash_tok_embedding", "audio_bos_eos_token", "bias_values", "pe_k", "column_embedder",
	"row_embedder", "column_embeddings", "row_embeddings", "text_token_embedding", "text_position_embedding",
	"embed", "refpoint_embed", "input_embeds_layers", "xpath_subs_sub_embeddings", "xpath_tag_sub_embeddings",
	"HashBucketCodepointEmbedder",
};

/* Modules that are not plain nn.Linear in one model type (R2), matched on whole trailing path segments. */
typedef struct type_rule {
	const char *type;
	const char *pattern;
	const char *reason;
} type_rule;

static const type_rule not_linear[] = {
	{"falcon", "query_key_value", "FalconLinear, a Linear subclass"},
	{"falcon", "dense", "FalconLinear, a Linear subclass"},
	{"falcon", "dense_h_to_4h", "FalconLinear, a Linear subclass"},
	{"falcon", "dense_4h_to_h", "FalconLinear, a Linear subclass"},
	{"ibert", "attention.self.query", "QuantLinear, not nn.Linear"},
	{"ibert", "attention.self.key", "QuantLinear, not nn.Linear"},
	{"ibert", "attention.self.value", "QuantLinear, not nn.Linear"},
	{"ibert", "output.dense", "QuantLinear, not nn.Linear"},
	{"ibert", "intermediate.dense", "QuantLinear, not nn.Linear"},
	{"gpt_oss", "router", "MoE router (nn.Parameter)"},
	{"openai_privacy_filter", "router", "MoE router (nn.Parameter)"},
	{"granitemoe_swa", "router", "MoE router (nn.Parameter)"},
	{"llama4", "router", "Llama4Router, a Linear subclass"},
	{"llama4_text", "router", "Llama4Router, a Linear subclass"},
	{"granitemoe", "router.layer", "MoE router (ParallelExperts)"},
	{"granitemoehybrid", "router.layer", "MoE router (ParallelExperts)"},
	{"granitemoeshared", "router.layer", "MoE router (ParallelExperts)"},
	{"hy_v3", "router.gate", "MoE router (nn.Parameter)"},
	{"idefics", "lm_head", "IdeficsDecoupledLinear, a Linear subclass"},
	{"ctrl", "w", "embedding"},
	{"cpmant", "input_embedding", "embedding"},
	{"deepseek_v4", "compressor.wgate", "not nn.Linear in transformers 5.17"},
	{"deepseek_v4", "compressor.wkv", "not nn.Linear in transformers 5.17"},
	{"deepseek_v4", "wo_a", "not nn.Linear in transformers 5.17"},
};

/* _keep_in_fp32_modules of the model classes, by model type (F3), as transformers 5.17 lists them. */
static const type_rule keep_fp32[] = {
	{"t5", "wo", "kept in float32 by t5"},
	{"mt5", "wo", "kept in float32 by mt5"},
	{"umt5", "wo", "kept in float32 by umt5"},
	{"pop2piano", "wo", "kept in float32 by pop2piano"},
	{"udop", "wo", "kept in float32 by udop"},
	{"blip-2", "query_tokens", "kept in float32 by blip-2"},
	{"blip-2", "qformer", "kept in float32 by blip-2"},
	{"instructblip", "query_tokens", "kept in float32 by instructblip"},
	{"instructblipvideo", "query_tokens", "kept in float32 by instructblipvideo"},
	{"gpt_oss", "post_attention_layernorm", "kept in float32 by gpt_oss"},
	{"gpt_oss", "input_layernorm", "kept in float32 by gpt_oss"},
	{"gpt_oss", "norm", "kept in float32 by gpt_oss"},
	{"afmoe", "input_layernorm", "kept in float32 by afmoe"},
	{"afmoe", "post_attention_layernorm", "kept in float32 by afmoe"},
	{"afmoe", "pre_mlp_layernorm", "kept in float32 by afmoe"},
	{"afmoe", "post_mlp_layernorm", "kept in float32 by afmoe"},
	{"afmoe", "q_norm", "kept in float32 by afmoe"},
	{"afmoe", "k_norm", "kept in float32 by afmoe"},
	{"afmoe", "norm", "kept in float32 by afmoe"},
	{"afmoe", "expert_bias", "kept in float32 by afmoe"},
	{"axk2", "indexer.weights_proj", "kept in float32 by axk2"},
	{"deepseek_v32", "indexer.weights_proj", "kept in float32 by deepseek_v32"},
	{"glm_moe_dsa", "indexer.weights_proj", "kept in float32 by glm_moe_dsa"},
	{"deepseek_v4", "self_attn.compressor.kv_proj", "kept in float32 by deepseek_v4"},
	{"deepseek_v4", "self_attn.compressor.gate_proj", "kept in float32 by deepseek_v4"},
	{"deepseek_v4", "self_attn.compressor.indexer.kv_proj", "kept in float32 by deepseek_v4"},
	{"deepseek_v4", "self_attn.compressor.indexer.gate_proj", "kept in float32 by deepseek_v4"},
	{"deepseek_v4", "self_attn.compressor.indexer.scorer.weights_proj", "kept in float32 by deepseek_v4"},
	{"longcat_flash", "classifier.weight", "kept in float32 by longcat_flash"},
	{"rwkv", "time_decay", "kept in float32 by rwkv"},
	{"rwkv", "time_first", "kept in float32 by rwkv"},
};

/* get_output_embeddings() where it is not `lm_head` (F3), by the top config's model type; NULL: none (the
 * lm_heads of these models' sub-models are converted). */
static const type_rule output_embedding[] = {
	{"fsmt", "output_projection", "output embedding (output_projection)"},
	{"deepseek_v4", "head", "output embedding (head)"},
	{"mobilebert", "cls.predictions.dense", "output embedding (cls.predictions.dense)"},
	{"qwen2_5_omni", NULL, NULL},
	{"bark", NULL, NULL},
	{"clvp", NULL, NULL},
	{"gpt_neox", "embed_out", "output embedding (embed_out)"},
	{"gpt_neox_japanese", "embed_out", "output embedding (embed_out)"},
	{"whisper", "proj_out", "output embedding (proj_out)"},
	{"moonshine", "proj_out", "output embedding (proj_out)"},
	{"canary", "proj_out", "output embedding (proj_out)"},
	{"cohere_asr", "proj_out", "output embedding (proj_out)"},
	{"rwkv", "head", "output embedding (head)"},
	{"git", "output", "output embedding (output)"},
	{"biogpt", "output_projection", "output embedding (output_projection)"},
	{"trocr", "output_projection", "output embedding (output_projection)"},
	{"convbert", "generator_lm_head", "output embedding (generator_lm_head)"},
	{"electra", "generator_lm_head", "output embedding (generator_lm_head)"},
	{"xlnet", "lm_loss", "output embedding (lm_loss)"},
	{"distilbert", "vocab_projector", "output embedding (vocab_projector)"},
	{"modernbert", "decoder", "output embedding (decoder)"},
	{"modernbert-decoder", "decoder", "output embedding (decoder)"},
	{"dia", "logits_dense", "output embedding (logits_dense)"},
	{"camembert", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"data2vec-text", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"esm", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"esmc", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"ibert", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"jina_embeddings_v3", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"longformer", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"luke", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"mpnet", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"reformer", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"roberta", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"roberta-prelayernorm", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"xlm-roberta", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"xlm-roberta-xl", "lm_head.decoder", "output embedding (lm_head.decoder)"},
	{"xmod", "lm_head.decoder", "output embedding (lm_head.decoder)"},
};

/* Heads that are the model's last parameter (F3), by architecture suffix (type NULL: any type). */
typedef struct head_rule {
	const char *type;
	const char *arch_suffix;
	const char *pattern;
	const char *reason;
} head_rule;

static const head_rule last_module[] = {
	{NULL, "ForSequenceClassification", "score", "last module of the model (score)"},
	{"ctrl", "ForSequenceClassification", "classifier", "last module of the model (classifier)"},
	{"modernbert-decoder", "ForSequenceClassification", "classifier", "last module of the model (classifier)"},
	{"splinter", "ForQuestionAnswering", "splinter_qass.end_classifier", "last module of the model (end_classifier)"},
	{"aimv2", "Model", "text_projection", "last module of the model (text_projection)"},
	{"altclip", "Model", "text_projection", "last module of the model (text_projection)"},
	{"blip", "Model", "text_projection", "last module of the model (text_projection)"},
	{"chinese_clip", "Model", "text_projection", "last module of the model (text_projection)"},
	{"clip", "Model", "text_projection", "last module of the model (text_projection)"},
	{"clipseg", "Model", "text_projection", "last module of the model (text_projection)"},
	{"metaclip_2", "Model", "text_projection", "last module of the model (text_projection)"},
	{"owlv2", "Model", "text_projection", "last module of the model (text_projection)"},
	{"owlvit", "Model", "text_projection", "last module of the model (text_projection)"},
};

/* Types whose checkpoints may use the legacy llava layout (conversion_mapping.py "llava" and the types and
 * classes mapped to it, "llava_next", "fuyu", "mllama"). */
static const char *const legacy_vlm_types[] = {
	"llava", "llava_next", "llava_next_video", "llava_onevision", "aria", "paligemma", "aya_vision", "got_ocr2",
	"gemma3", "internvl", "vipllava", "mistral3", "pp_chart2table", "fuyu", "mllama", "video_llava",
};

static const char *const conv1d_types[] = {"gpt2", "openai-gpt", "imagegpt", "decision_transformer", "clvp"};
static const char *const conv1d_names[] = {"c_attn", "q_attn", "c_proj", "c_fc"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool has_type(const hf_select *s, const char *type)
{
	for (int i = 0; i < s->ntypes; i++)
		if (strcmp(s->types[i], type) == 0)
			return true;
	return false;
}

/* The last dotted segment of path. */
static const char *last_segment(const char *path)
{
	const char *dot = strrchr(path, '.');
	return dot ? dot + 1 : path;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Whether path ends with pattern on a segment boundary ("a.b.c" ends with "b.c", not with "x.c"). */
static bool suffix_match(const char *path, const char *pattern)
{
	const size_t n = strlen(path), m = strlen(pattern);
	return n >= m && memcmp(path + n - m, pattern, m) == 0 && (n == m || path[n - m - 1] == '.');
}

/* The last segment without a trailing "_<digits>" (canine's HashBucketCodepointEmbedder_3, ...). */
static bool is_embedding_name(const char *seg)
{
	size_t n = strlen(seg);
	const char *us = strrchr(seg, '_');
	if (us && all_digits(us + 1, strlen(us + 1)))
		n = (size_t)(us - seg);
	for (size_t i = 0; i < COUNT(embedding_names); i++)
		if (strlen(embedding_names[i]) == n && memcmp(embedding_names[i], seg, n) == 0)
			return true;
	static const char *const suffixes[] = {"_position_embeddings", "_type_embeddings"}; /* x_, row_, visual_... */
	for (size_t i = 0; i < COUNT(suffixes); i++) {
		const size_t m = strlen(suffixes[i]);
		if (n >= m && memcmp(seg + n - m, suffixes[i], m) == 0)
			return true;
	}
	return false;
}

/* R2: the reason module (a checkpoint module path) is not an nn.Linear/Conv1D, or NULL. */
static const char *not_linear_reason(const hf_select *s, const char *module)
{
	const char *seg = last_segment(module);
	if (is_embedding_name(seg))
		return "embedding";
	if (all_digits(seg, strlen(seg)) && seg - module >= 2) { /* an nn.ModuleList of embeddings */
		char parent[NAME_MAX_LEN];
		const size_t n = (size_t)(seg - 1 - module);
		memcpy(parent, module, n);
		parent[n] = '\0';
		if (is_embedding_name(last_segment(parent)))
			return "embedding";
	}
	/* ".experts.<n>." anywhere: a per-expert weight of a fused MoE (F5) */
	for (const char *p = module; (p = strstr(p, "experts.")) != NULL; p++) {
		if (p != module && p[-1] != '.')
			continue;
		const char *d = p + strlen("experts."), *e = d;
		while (*e >= '0' && *e <= '9')
			e++;
		if (e > d && *e == '.')
			return "MoE expert (fused 3-D parameter in transformers 5)";
	}
	if (strcmp(seg, "gate") == 0 && !suffix_match(module, "router.gate") && !suffix_match(module, "gateway.gate"))
		return "MoE router (nn.Parameter)";
	if (suffix_match(module, "head.attention.out_proj") || suffix_match(module, "multihead_attn.out_proj"))
		return "nn.MultiheadAttention out_proj, a Linear subclass";
	for (size_t i = 0; i < COUNT(not_linear); i++)
		if (has_type(s, not_linear[i].type) && suffix_match(module, not_linear[i].pattern))
			return not_linear[i].reason;
	return NULL;
}

/* The module path transformers uses at run time for a checkpoint module path (F6), into buf. */
static const char *runtime_path(const hf_select *s, const char *module, char *buf, size_t size)
{
	static const struct {
		const char *from, *to;
	} legacy[] = {
		{"language_model.lm_head", "lm_head"},
		{"language_model.model.", "model.language_model."},
		{"language_model.", "model.language_model."},
		{"vision_tower.vision_model.", "model.vision_tower."},
		{"vision_tower.", "model.vision_tower."},
		{"multi_modal_projector.", "model.multi_modal_projector."},
		{"vision_model.", "model.vision_model."}, /* mllama */
		{"vision_embed_tokens.", "model.vision_embed_tokens."}, /* fuyu */
	};
	const char *from = NULL, *to = NULL;
	if (s->legacy_vlm) {
		for (size_t i = 0; i < COUNT(legacy) && !from; i++) {
			const size_t n = strlen(legacy[i].from);
			if (strncmp(module, legacy[i].from, n) == 0 &&
			    (legacy[i].from[n - 1] == '.' || module[n] == '\0' || module[n] == '.')) {
				from = legacy[i].from;
				to = legacy[i].to;
			}
		}
	}
	if (!from && s->qwen2_vl) {
		if (fmt_starts_with(module, "visual.")) {
			from = "visual.";
			to = "model.visual.";
		} else if (fmt_starts_with(module, "model.") && !fmt_starts_with(module, "model.language_model.") &&
			   !fmt_starts_with(module, "model.visual.")) {
			from = "model.";
			to = "model.language_model.";
		}
	}
	if (!from)
		return module;
	const int n = snprintf(buf, size, "%s%s", to, module + strlen(from));
	return n > 0 && (size_t)n < size ? buf : module;
}

static bool pattern_matches(const skip_pattern *p, const char *path)
{
	if (p->exact)
		return strcmp(path, p->e.text) == 0;
	return hf_skip_entry_matches(&p->e, path, HF_SKIP_V5);
}

/* Adds a pattern with its (static) reason. False: out of memory. A pattern of the config that cannot be
 * followed (see hf_select_refused) is recorded as the refusal, once, and left out. */
static bool add_pattern(hf_select *s, const char *text, const char *reason)
{
	for (int i = 0; i < s->npat; i++)
		if (strcmp(s->pat[i].e.text, text) == 0)
			return true;
	if (s->npat == s->cap) {
		const int cap = s->cap ? 2 * s->cap : 8;
		skip_pattern *pat = realloc(s->pat, (size_t)cap * sizeof(*pat));
		if (!pat)
			return false;
		s->pat = pat;
		s->cap = cap;
	}
	skip_pattern *p = &s->pat[s->npat];
	p->reason = reason;
	p->exact = false;
	uint64_t atoms = 0;
	const pyre_status st = hf_skip_entry_init(&p->e, text, &atoms);
	if (st == PYRE_OK && (s->atoms += atoms) <= SKIP_MAX_ATOMS) {
		s->npat++;
		return true;
	}
	hf_skip_entry_free(&p->e);
	if (st == PYRE_NOMEM)
		return false;
	if (!s->refused) {
		s->refused = st == PYRE_REFUSED ? "a Python regex this tool cannot match as transformers does (lookaround, "
						  "backreferences, inline flags, possessive quantifiers, a repetition of what "
						  "can match the empty string, more than 64 nested groups or 4096 atoms)"
						: "a regex beyond the 4096 atoms the list's regexes may hold together";
		free(s->refused_entry);
		if (!(s->refused_entry = strdup(text)))
			return false;
	}
	return true;
}

/* A head found by this file's tables (R3): matched as the exact module path, since a head that is a
 * container (T5Gemma's score.out_proj) carries a bias last and is not kept out. */
static bool add_head(hf_select *s, const char *path, const char *reason)
{
	const int before = s->npat;
	if (!add_pattern(s, path, reason))
		return false;
	if (s->npat > before)
		s->pat[s->npat - 1].exact = true;
	return true;
}

static bool add_type(hf_select *s, const char *type)
{
	if (has_type(s, type) || s->ntypes == MAX_TYPES)
		return true;
	s->types[s->ntypes] = strdup(type);
	if (!s->types[s->ntypes])
		return false;
	s->ntypes++;
	return true;
}

/* The model_type of config and of every nested config object (text_config, vision_config, encoder, ...). */
static bool collect_types(hf_select *s, const cJSON *obj, int depth)
{
	if (!cJSON_IsObject(obj) || depth > 4)
		return true;
	const cJSON *mt = fmt_json_member(obj, "model_type");
	if (cJSON_IsString(mt) && mt->valuestring[0] && !add_type(s, mt->valuestring))
		return false;
	for (const cJSON *c = obj->child; c; c = c->next)
		if (cJSON_IsObject(c) && strcmp(c->string, "quantization_config") != 0 && fmt_json_member(obj, c->string) == c &&
		    !collect_types(s, c, depth + 1))
			return false;
	return true;
}

static const cJSON *skip_list(const cJSON *config)
{
	const cJSON *l = fmt_json_member(fmt_json_member(config, "quantization_config"), "llm_int8_skip_modules");
	if (!cJSON_IsArray(l))
		l = fmt_json_member(config, "llm_int8_skip_modules");
	return cJSON_IsArray(l) ? l : NULL;
}

static int64_t int_item(const cJSON *obj, const char *key, int64_t dflt)
{
	const cJSON *v = fmt_json_member(obj, key);
	/* a number JSON allows but int64_t cannot hold (1e300, NaN from an overflow) is no count */
	return cJSON_IsNumber(v) && v->valuedouble > -9.2e18 && v->valuedouble < 9.2e18 ? (int64_t)v->valuedouble : dflt;
}

/* The output embeddings of the type (F3): its own, or lm_head; and BERT-style cls.predictions.decoder. */
static void set_heads(hf_select *s, const char *top_type)
{
	size_t n = 0;
	bool own_output = false;
	for (size_t i = 0; i < COUNT(output_embedding); i++)
		if (strcmp(top_type, output_embedding[i].type) == 0) {
			own_output = true;
			if (output_embedding[i].pattern)
				s->heads[n++] = output_embedding[i].pattern;
		}
	if (!own_output)
		s->heads[n++] = "lm_head";
	s->heads[n++] = "cls.predictions.decoder";
}

/* The defaults of F3 that can reach a Linear, for the model described by config. */
static bool add_default_patterns(hf_select *s, const cJSON *config, const char *top_type)
{
	bool own_output = false;
	for (size_t i = 0; i < COUNT(output_embedding); i++)
		if (strcmp(top_type, output_embedding[i].type) == 0) {
			own_output = true;
			if (output_embedding[i].pattern &&
			    !add_pattern(s, output_embedding[i].pattern, output_embedding[i].reason))
				return false;
		}
	if (!own_output && !add_pattern(s, "lm_head", "output embedding (lm_head)"))
		return false;
	if (!add_pattern(s, "cls.predictions.decoder", "output embedding (cls.predictions.decoder)"))
		return false;
	for (size_t i = 0; i < COUNT(last_module); i++)
		if ((!last_module[i].type || strcmp(top_type, last_module[i].type) == 0) &&
		    fmt_ends_with(s->arch, last_module[i].arch_suffix) &&
		    !add_head(s, last_module[i].pattern, last_module[i].reason))
			return false;
	/* Models whose norms hold no weight: in the base model (no head) the last parameter is the last
	 * layer's MLP output. (A *ForCausalLM registers lm_head last, tied or not: weights are tied only
	 * after the swap.) */
	static const type_rule weightless_norms[] = {{"olmo", "mlp.down_proj", NULL}, {"nanochat", "mlp.fc2", NULL}};
	for (size_t i = 0; i < COUNT(weightless_norms); i++) {
		const int64_t layers = int_item(config, "num_hidden_layers", 0);
		if (strcmp(top_type, weightless_norms[i].type) != 0 || !fmt_ends_with(s->arch, "Model") || layers <= 0)
			continue;
		char buf[96];
		snprintf(buf, sizeof(buf), "layers.%lld.%s", (long long)(layers - 1), weightless_norms[i].pattern);
		if (!add_head(s, buf, "last module of the model (its norms hold no weight)"))
			return false;
	}
	return true;
}

hf_select *hf_select_create(const cJSON *config)
{
	hf_select *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->arch = strdup("");
	if (!s->arch)
		goto oom;
	if (!cJSON_IsObject(config)) {
		set_heads(s, "");
		if (!add_default_patterns(s, NULL, ""))
			goto oom;
		return s;
	}
	if (!collect_types(s, config, 0))
		goto oom;
	const cJSON *archs = fmt_json_member(config, "architectures");
	const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
	if (cJSON_IsString(a0)) {
		free(s->arch);
		if (!(s->arch = strdup(a0->valuestring)))
			goto oom;
	}
	const cJSON *mt = fmt_json_member(config, "model_type");
	const char *top_type = cJSON_IsString(mt) ? mt->valuestring : "";
	set_heads(s, top_type);
	for (size_t i = 0; i < COUNT(conv1d_types); i++)
		s->conv1d = s->conv1d || has_type(s, conv1d_types[i]);
	for (size_t i = 0; i < COUNT(legacy_vlm_types); i++)
		s->legacy_vlm = s->legacy_vlm || strcmp(top_type, legacy_vlm_types[i]) == 0;
	s->qwen2_vl = strcmp(top_type, "qwen2_vl") == 0 || strcmp(top_type, "qwen2_5_vl") == 0;

	const cJSON *skip = skip_list(config);
	if (skip) {
		int n = 0;
		for (const cJSON *c = skip->child; c; c = c->next, n++) {
			if (!cJSON_IsString(c) || n == SKIP_MAX_ENTRIES) {
				if (!s->refused) {
					s->refused = n == SKIP_MAX_ENTRIES ? "one more than the 65536 entries a list may hold"
									   : "not a string (transformers fails on it)";
					if (!(s->refused_entry = strdup(cJSON_IsString(c) ? c->valuestring : "")))
						goto oom;
				}
				if (n == SKIP_MAX_ENTRIES)
					break;
			} else if (!add_pattern(s, c->valuestring, "in llm_int8_skip_modules")) {
				goto oom;
			}
		}
	} else if (!add_default_patterns(s, config, top_type)) {
		goto oom;
	}
	for (size_t i = 0; i < COUNT(keep_fp32); i++) {
		if (has_type(s, keep_fp32[i].type) && !add_pattern(s, keep_fp32[i].pattern, keep_fp32[i].reason))
			goto oom;
	}
	return s;
oom:
	hf_select_free(s);
	return NULL;
}

void hf_select_free(hf_select *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->ntypes; i++)
		free(s->types[i]);
	for (int i = 0; i < s->npat; i++)
		hf_skip_entry_free(&s->pat[i].e);
	free(s->pat);
	free(s->refused_entry);
	free(s->arch);
	free(s);
}

bool hf_select_quantize(const hf_select *s, const char *name, int ndim, const int64_t *shape, bool is_float,
			bool *transpose, const char **reason)
{
	const char *why_dummy;
	bool transpose_dummy;
	if (!reason)
		reason = &why_dummy;
	if (!transpose)
		transpose = &transpose_dummy;
	*transpose = false;
	(void)shape; /* any 2-D shape: transformers quantizes even 1-row and 1-column Linears */

	if (!fmt_ends_with(name, ".weight")) {
		*reason = "not a weight";
		return false;
	}
	if (!is_float) {
		*reason = "not a floating type";
		return false;
	}
	if (ndim != 2) {
		*reason = "not 2-D";
		return false;
	}
	char module[NAME_MAX_LEN];
	const size_t n = strlen(name) - strlen(".weight");
	if (n == 0 || n >= sizeof(module)) {
		*reason = n == 0 ? "not a weight" : "name too long";
		return false;
	}
	memcpy(module, name, n);
	module[n] = '\0';

	const char *why = not_linear_reason(s, module);
	if (why) {
		*reason = why;
		return false;
	}
	char buf[NAME_MAX_LEN + 64];
	const char *path = runtime_path(s, module, buf, sizeof(buf));
	for (int i = 0; i < s->npat; i++)
		if (pattern_matches(&s->pat[i], path)) {
			*reason = s->pat[i].reason;
			return false;
		}
	if (s->conv1d) {
		const char *seg = last_segment(module);
		for (size_t i = 0; i < COUNT(conv1d_names); i++)
			if (strcmp(seg, conv1d_names[i]) == 0) {
				*transpose = true;
				*reason = "linear (Conv1D, transposed)";
				return true;
			}
	}
	*reason = "linear";
	return true;
}

const char *hf_select_linear_module(const hf_select *s, const char *name, int ndim, bool is_float, bool *linear5,
				    char *buf, size_t size)
{
	bool dummy;
	if (!linear5)
		linear5 = &dummy;
	*linear5 = false;
	if (!fmt_ends_with(name, ".weight") || !is_float || ndim != 2)
		return NULL;
	char module[NAME_MAX_LEN];
	const size_t n = strlen(name) - strlen(".weight");
	if (n == 0 || n >= sizeof(module))
		return NULL;
	memcpy(module, name, n);
	module[n] = '\0';
	const char *why = not_linear_reason(s, module);
	if (why && strcmp(why, "embedding") == 0)
		return NULL;
	const char *path = runtime_path(s, module, buf, size);
	if (path == module) {
		const int k = snprintf(buf, size, "%s", module);
		if (k <= 0 || (size_t)k >= size)
			return NULL;
		path = buf;
	}
	*linear5 = !why;
	return path;
}

const char *hf_select_output_head(const hf_select *s, size_t i)
{
	return i < COUNT(s->heads) ? s->heads[i] : NULL;
}

const char *hf_select_refused(const hf_select *s, const char **entry)
{
	if (entry)
		*entry = s->refused_entry;
	return s->refused;
}

lq_status hf_select_skip_list(const hf_select *s, const hf_select_tensor *t, size_t n, hf_skip_list *l)
{
	hf_skip_module *mods = calloc(n + COUNT(s->heads), sizeof *mods);
	char **paths = calloc(n ? n : 1, sizeof *paths);
	lq_status st = LQ_ERR_NOMEM;
	memset(l, 0, sizeof *l);
	if (!mods || !paths)
		goto done;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char buf[NAME_MAX_LEN + 64];
		bool linear5;
		const char *path = hf_select_linear_module(s, t[i].name, t[i].ndim, t[i].is_float, &linear5, buf, sizeof buf);
		if (!path)
			continue;
		if (!(paths[i] = strdup(path)))
			goto done;
		mods[k++] = (hf_skip_module){.path = paths[i], .quantized = t[i].quantized, .linear4 = true,
					     .linear5 = linear5};
	}
	const size_t nlinear = k;
	/* an output head of the type's is in the model when it is top-level or its parent module is there;
	 * absent from the checkpoint, it is tied */
	for (size_t h = 0; h < COUNT(s->heads) && s->heads[h]; h++) {
		const char *head = s->heads[h], *dot = strrchr(head, '.');
		const size_t parent = dot ? (size_t)(dot - head) + 1 : 0;
		bool present = false, related = parent == 0;
		for (size_t i = 0; i < nlinear; i++) {
			present |= strcmp(mods[i].path, head) == 0;
			related |= strncmp(mods[i].path, head, parent) == 0;
		}
		if (!present && related)
			mods[k++] = (hf_skip_module){.path = head, .linear4 = true, .linear5 = true, .absent = true};
	}
	st = hf_skip_list_make(mods, k, l);
done:
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	free(mods);
	return st;
}
