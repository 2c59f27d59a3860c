/*
 * select_cases.c: hand-derived cases for formats/hf_select.c (see select_cases.h). Each names the fact of
 * transformers 5.17 it checks (F1-F6 at the top of hf_select.c); the truth files confirm them.
 */
#include "select_cases.h"

#define LLAMA "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"],\"tie_word_embeddings\":false}"
#define LLAMA_SEQ "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForSequenceClassification\"]}"
#define LLAMA_TOK "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForTokenClassification\"]}"
#define LLAMA_SKIP                                                                               \
	"{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"],\"quantization_config\":" \
	"{\"llm_int8_skip_modules\":[\"down_proj\",\"model.layers.1.self_attn\"]}}"
#define LLAMA_SKIP_PREFIX \
	"{\"model_type\":\"llama\",\"quantization_config\":{\"llm_int8_skip_modules\":[\"model.layers.1\"]}}"
#define LLAMA_SKIP_EMPTY "{\"model_type\":\"llama\",\"quantization_config\":{\"llm_int8_skip_modules\":[]}}"
#define LLAMA_SKIP_NULL "{\"model_type\":\"llama\",\"quantization_config\":{\"llm_int8_skip_modules\":null}}"
#define LLAMA_SKIP_TOP "{\"model_type\":\"llama\",\"llm_int8_skip_modules\":[\"q_proj\"]}"
#define LLAMA_SKIP_REGEX \
	"{\"model_type\":\"llama\",\"llm_int8_skip_modules\":[\"model.layers.\\\\d+.mlp.(gate|up)_proj\"]}"
#define LLAMA_SKIP_GROUP "{\"model_type\":\"llama\",\"llm_int8_skip_modules\":[\"model.layers.(?:0|1).mlp\"]}"
#define LLAMA_SKIP_SUFFIX "{\"model_type\":\"llama\",\"llm_int8_skip_modules\":[\"proj\"]}"
/* Python's json keeps the last of duplicate keys, and transformers sees that one */
#define LLAMA_SKIP_DUPLICATE \
	"{\"model_type\":\"llama\",\"llm_int8_skip_modules\":[\"q_proj\"],\"llm_int8_skip_modules\":[\"k_proj\"]}"
#define LLAMA_SKIP_TRAILING_DOT "{\"model_type\":\"llama\",\"llm_int8_skip_modules\":[\"model.layers.1.\"]}"
#define LLAMA_SKIP_ANCHORED "{\"model_type\":\"llama\",\"llm_int8_skip_modules\":[\"model.layers.1$\"]}"
#define OLMO_HUGE "{\"model_type\":\"olmo\",\"architectures\":[\"OlmoModel\"],\"num_hidden_layers\":1e300}"
#define MIXTRAL "{\"model_type\":\"mixtral\",\"architectures\":[\"MixtralForCausalLM\"]}"
#define QWEN2_MOE "{\"model_type\":\"qwen2_moe\",\"architectures\":[\"Qwen2MoeForCausalLM\"]}"
#define GPT_OSS "{\"model_type\":\"gpt_oss\",\"architectures\":[\"GptOssForCausalLM\"]}"
#define GPT2 "{\"model_type\":\"gpt2\",\"architectures\":[\"GPT2LMHeadModel\"],\"tie_word_embeddings\":false}"
#define GPT_BIGCODE "{\"model_type\":\"gpt_bigcode\",\"architectures\":[\"GPTBigCodeForCausalLM\"]}"
#define GPT_NEOX "{\"model_type\":\"gpt_neox\",\"architectures\":[\"GPTNeoXForCausalLM\"]}"
#define FALCON "{\"model_type\":\"falcon\",\"architectures\":[\"FalconForCausalLM\"]}"
#define FALCON_SKIP "{\"model_type\":\"falcon\",\"quantization_config\":{\"llm_int8_skip_modules\":[\"x\"]}}"
#define T5 "{\"model_type\":\"t5\",\"architectures\":[\"T5ForConditionalGeneration\"]}"
#define T5_SKIP "{\"model_type\":\"t5\",\"quantization_config\":{\"llm_int8_skip_modules\":[\"lm_head\"]}}"
#define BERT_SEQ "{\"model_type\":\"bert\",\"architectures\":[\"BertForSequenceClassification\"]}"
#define BERT_MLM "{\"model_type\":\"bert\",\"architectures\":[\"BertForMaskedLM\"]}"
#define ROBERTA_MLM "{\"model_type\":\"roberta\",\"architectures\":[\"RobertaForMaskedLM\"]}"
#define WHISPER "{\"model_type\":\"whisper\",\"architectures\":[\"WhisperForConditionalGeneration\"]}"
#define LLAVA                                                                                       \
	"{\"model_type\":\"llava\",\"architectures\":[\"LlavaForConditionalGeneration\"],\"text_config\":" \
	"{\"model_type\":\"llama\"},\"vision_config\":{\"model_type\":\"clip_vision_model\"}}"
#define LLAVA_SKIP_LEGACY                                                                        \
	"{\"model_type\":\"llava\",\"text_config\":{\"model_type\":\"llama\"},\"vision_config\":{}," \
	"\"quantization_config\":{\"llm_int8_skip_modules\":[\"vision_tower\",\"multi_modal_projector\"]}}"
#define LLAVA_SKIP_RUNTIME                                                                       \
	"{\"model_type\":\"llava\",\"text_config\":{\"model_type\":\"llama\"},\"vision_config\":{}," \
	"\"quantization_config\":{\"llm_int8_skip_modules\":[\"model.vision_tower\"]}}"
#define QWEN2_VL_SKIP                                                                            \
	"{\"model_type\":\"qwen2_vl\",\"text_config\":{\"model_type\":\"qwen2_vl_text\"},\"vision_config\":{}," \
	"\"quantization_config\":{\"llm_int8_skip_modules\":[\"visual\",\"model.language_model.layers.0\"]}}"
#define GEMMA3                                                                                    \
	"{\"model_type\":\"gemma3\",\"architectures\":[\"Gemma3ForConditionalGeneration\"],\"text_config\":" \
	"{\"model_type\":\"gemma3_text\"},\"vision_config\":{\"model_type\":\"siglip_vision_model\"}}"
#define OLMO_TIED                                                                                \
	"{\"model_type\":\"olmo\",\"architectures\":[\"OlmoForCausalLM\"],\"tie_word_embeddings\":true," \
	"\"num_hidden_layers\":16}"
#define OLMO_BASE "{\"model_type\":\"olmo\",\"architectures\":[\"OlmoModel\"],\"num_hidden_layers\":16}"
#define OLMO "{\"model_type\":\"olmo\",\"architectures\":[\"OlmoForCausalLM\"],\"num_hidden_layers\":16}"
#define GRANITEMOE "{\"model_type\":\"granitemoe\",\"architectures\":[\"GraniteMoeForCausalLM\"]}"
#define JETMOE "{\"model_type\":\"jetmoe\",\"architectures\":[\"JetMoeForCausalLM\"]}"
#define AFMOE "{\"model_type\":\"afmoe\",\"architectures\":[\"AfmoeForCausalLM\"]}"
#define IBERT "{\"model_type\":\"ibert\",\"architectures\":[\"IBertForMaskedLM\"]}"

#define M(r, c) 2, {r, c, 0}
#define V(n) 1, {n, 0, 0}

const select_case select_cases[] = {
	/* F1: nn.Linear weights only; 1-D norms, biases, non-float and 3-D tensors are not */
	{LLAMA, "model.layers.0.self_attn.q_proj.weight", M(64, 64), true, true, false, "linear"},
	{LLAMA, "model.layers.0.mlp.down_proj.weight", M(64, 128), true, true, false, "linear"},
	{LLAMA, "model.layers.0.self_attn.q_proj.bias", V(64), true, false, false, "not a weight"},
	{LLAMA, "model.layers.0.input_layernorm.weight", V(64), true, false, false, "not 2-D"},
	{LLAMA, "model.layers.0.self_attn.q_proj.weight", M(64, 64), false, false, false, "not a floating type"},
	{LLAMA, "model.embed_tokens.weight", M(128, 64), true, false, false, "embedding"},
	/* F3: output embedding, and the last module of a *ForSequenceClassification (score, no bias) */
	{LLAMA, "lm_head.weight", M(128, 64), true, false, false, "output embedding (lm_head)"},
	{LLAMA_SEQ, "score.weight", M(3, 64), true, false, false, "last module"},
	{LLAMA_TOK, "score.weight", M(3, 64), true, true, false, "linear"}, /* score.bias is last */
	{NULL, "model.layers.0.self_attn.q_proj.weight", M(64, 64), true, true, false, "linear"},
	{NULL, "lm_head.weight", M(128, 64), true, false, false, "lm_head"},
	/* F3: a skip list (even empty) replaces the defaults; F2: prefix regex or suffix */
	{LLAMA_SKIP, "lm_head.weight", M(128, 64), true, true, false, "linear"},
	{LLAMA_SKIP, "model.layers.0.mlp.down_proj.weight", M(64, 128), true, false, false,
	 "llm_int8_skip_modules"},
	{LLAMA_SKIP, "model.layers.1.self_attn.q_proj.weight", M(64, 64), true, false, false,
	 "llm_int8_skip_modules"},
	{LLAMA_SKIP, "model.layers.10.self_attn.q_proj.weight", M(64, 64), true, true, false, "linear"},
	{LLAMA_SKIP, "model.layers.1.mlp.up_proj.weight", M(128, 64), true, true, false, "linear"},
	/* 5.25 matches up to a module boundary (5.17 had "model.layers.1" catch "model.layers.10") */
	{LLAMA_SKIP_PREFIX, "model.layers.10.mlp.up_proj.weight", M(128, 64), true, true, false, "linear"},
	{LLAMA_SKIP_PREFIX, "model.layers.1.mlp.up_proj.weight", M(128, 64), true, false, false, "llm_int8_skip_modules"},
	{LLAMA_SKIP_PREFIX, "model.layers.2.mlp.up_proj.weight", M(128, 64), true, true, false, "linear"},
	{LLAMA_SKIP_EMPTY, "lm_head.weight", M(128, 64), true, true, false, "linear"},
	{LLAMA_SKIP_NULL, "lm_head.weight", M(128, 64), true, false, false, "output embedding"},
	{LLAMA_SKIP_TOP, "model.layers.0.self_attn.q_proj.weight", M(64, 64), true, false, false, "llm_int8_skip_modules"},
	{LLAMA_SKIP_TOP, "model.layers.0.self_attn.k_proj.weight", M(64, 64), true, true, false, "linear"},
	{LLAMA_SKIP_REGEX, "model.layers.3.mlp.gate_proj.weight", M(128, 64), true, false, false, "llm_int8_skip_modules"},
	{LLAMA_SKIP_REGEX, "model.layers.3.mlp.down_proj.weight", M(64, 128), true, true, false, "linear"},
	{LLAMA_SKIP_GROUP, "model.layers.1.mlp.up_proj.weight", M(128, 64), true, false, false, "llm_int8_skip_modules"},
	{LLAMA_SKIP_GROUP, "model.layers.2.mlp.up_proj.weight", M(128, 64), true, true, false, "linear"},
	{LLAMA_SKIP_SUFFIX, "model.layers.0.self_attn.o_proj.weight", M(64, 64), true, false, false, "llm_int8_skip_modules"},
	{LLAMA_SKIP_DUPLICATE, "model.layers.0.self_attn.q_proj.weight", M(64, 64), true, true, false, "linear"},
	{LLAMA_SKIP_DUPLICATE, "model.layers.0.self_attn.k_proj.weight", M(64, 64), true, false, false,
	 "llm_int8_skip_modules"},
	{LLAMA_SKIP_TRAILING_DOT, "model.layers.1.mlp.up_proj.weight", M(128, 64), true, false, false,
	 "llm_int8_skip_modules"},
	/* '.' is any character: "model.layers.1." catches "model.layers.10" too, as in Python */
	{LLAMA_SKIP_TRAILING_DOT, "model.layers.10.mlp.up_proj.weight", M(128, 64), true, false, false,
	 "llm_int8_skip_modules"},
	{LLAMA_SKIP_TRAILING_DOT, "model.layers.2.mlp.up_proj.weight", M(128, 64), true, true, false, "linear"},
	/* `$` is the end of the whole path, not of the part matched up to a boundary */
	{LLAMA_SKIP_ANCHORED, "model.layers.1.mlp.up_proj.weight", M(128, 64), true, true, false, "linear"},
	{OLMO_HUGE, "layers.0.mlp.down_proj.weight", M(64, 128), true, true, false, "linear"},
	/* F5: fused MoE experts are saved per expert and never converted; routers hold a bare Parameter */
	{MIXTRAL, "model.layers.0.block_sparse_moe.experts.3.w1.weight", M(128, 64), true, false, false, "expert"},
	{MIXTRAL, "model.layers.0.block_sparse_moe.gate.weight", M(8, 64), true, false, false, "router"},
	{MIXTRAL, "model.layers.0.self_attn.k_proj.weight", M(32, 64), true, true, false, "linear"},
	{QWEN2_MOE, "model.layers.0.mlp.experts.0.gate_proj.weight", M(32, 64), true, false, false, "expert"},
	{QWEN2_MOE, "model.layers.0.mlp.shared_expert_gate.weight", M(1, 64), true, true, false, "linear"},
	{QWEN2_MOE, "model.layers.0.mlp.shared_expert.up_proj.weight", M(64, 64), true, true, false, "linear"},
	{QWEN2_MOE, "model.layers.0.mlp.experts.gate_up_proj", 3, {4, 64, 64}, true, false, false, "not a weight"},
	{GPT_OSS, "model.layers.0.mlp.router.weight", M(4, 64), true, false, false, "router"},
	{GRANITEMOE, "model.layers.0.block_sparse_moe.router.layer.weight", M(4, 64), true, false, false, "router"},
	{JETMOE, "model.layers.0.mlp.router.layer.weight", M(4, 64), true, true, false, "linear"},
	{AFMOE, "model.layers.0.mlp.router.gate.weight", M(4, 64), true, true, false, "linear"},
	/* F4: Conv1D (gpt2) is transposed; gpt_bigcode's c_attn is an nn.Linear */
	{GPT2, "transformer.h.0.attn.c_attn.weight", M(64, 192), true, true, true, "Conv1D"},
	{GPT2, "transformer.h.0.mlp.c_fc.weight", M(64, 256), true, true, true, "Conv1D"},
	{GPT2, "transformer.h.0.mlp.c_proj.weight", M(256, 64), true, true, true, "Conv1D"},
	{GPT2, "transformer.wte.weight", M(128, 64), true, false, false, "embedding"},
	{GPT2, "transformer.wpe.weight", M(64, 64), true, false, false, "embedding"},
	{GPT2, "lm_head.weight", M(128, 64), true, false, false, "lm_head"},
	{GPT_BIGCODE, "transformer.h.0.attn.c_attn.weight", M(96, 64), true, true, false, "linear"},
	/* F3: get_output_embeddings of other types */
	{GPT_NEOX, "embed_out.weight", M(128, 64), true, false, false, "output embedding (embed_out)"},
	{GPT_NEOX, "gpt_neox.embed_in.weight", M(128, 64), true, false, false, "embedding"},
	{GPT_NEOX, "gpt_neox.layers.0.attention.query_key_value.weight", M(192, 64), true, true, false, "linear"},
	{WHISPER, "proj_out.weight", M(128, 64), true, false, false, "proj_out"},
	{WHISPER, "model.encoder.conv1.weight", 3, {64, 80, 3}, true, false, false, "not 2-D"},
	{WHISPER, "model.decoder.embed_positions.weight", M(448, 64), true, false, false, "embedding"},
	{ROBERTA_MLM, "lm_head.dense.weight", M(64, 64), true, true, false, "linear"},
	{ROBERTA_MLM, "lm_head.decoder.weight", M(128, 64), true, false, false, "output embedding"},
	{BERT_MLM, "cls.predictions.decoder.weight", M(128, 64), true, false, false, "output embedding"},
	{BERT_MLM, "cls.predictions.transform.dense.weight", M(64, 64), true, true, false, "linear"},
	{BERT_SEQ, "classifier.weight", M(3, 64), true, true, false, "linear"}, /* classifier.bias is last */
	{BERT_SEQ, "bert.pooler.dense.weight", M(64, 64), true, true, false, "linear"},
	{BERT_SEQ, "bert.embeddings.token_type_embeddings.weight", M(2, 64), true, false, false, "embedding"},
	/* F1: Linear subclasses are not converted */
	{FALCON, "transformer.h.0.self_attention.query_key_value.weight", M(96, 64), true, false, false, "FalconLinear"},
	{FALCON, "transformer.h.0.mlp.dense_4h_to_h.weight", M(64, 256), true, false, false, "FalconLinear"},
	{FALCON, "lm_head.weight", M(128, 64), true, false, false, "lm_head"},
	{FALCON_SKIP, "lm_head.weight", M(128, 64), true, true, false, "linear"},
	{IBERT, "ibert.encoder.layer.0.attention.self.query.weight", M(64, 64), true, false, false, "QuantLinear"},
	{GEMMA3, "vision_tower.vision_model.head.attention.out_proj.weight", M(64, 64), true, false, false,
	 "MultiheadAttention"},
	{GEMMA3, "multi_modal_projector.mm_input_projection_weight", M(64, 64), true, false, false, "not a weight"},
	{GEMMA3, "language_model.model.layers.0.mlp.gate_proj.weight", M(128, 64), true, true, false, "linear"},
	/* F3: _keep_in_fp32_modules, with or without a skip list; T5's relative_attention_bias is an Embedding */
	{T5, "encoder.block.0.layer.1.DenseReluDense.wo.weight", M(64, 128), true, false, false, "kept in float32 by t5"},
	{T5, "encoder.block.0.layer.1.DenseReluDense.wi.weight", M(128, 64), true, true, false, "linear"},
	{T5, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", M(32, 4), true, false, false,
	 "embedding"},
	{T5, "shared.weight", M(128, 64), true, false, false, "embedding"},
	{T5, "lm_head.weight", M(128, 64), true, false, false, "lm_head"},
	{T5_SKIP, "decoder.block.1.layer.2.DenseReluDense.wo.weight", M(64, 128), true, false, false, "float32"},
	/* F6: legacy VLM layouts; patterns see the renamed (run-time) paths */
	{LLAVA, "language_model.lm_head.weight", M(128, 64), true, false, false, "lm_head"},
	{LLAVA, "language_model.model.layers.0.mlp.down_proj.weight", M(64, 128), true, true, false, "linear"},
	{LLAVA, "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight", M(32, 32), true, true, false,
	 "linear"},
	{LLAVA, "multi_modal_projector.linear_1.weight", M(64, 32), true, true, false, "linear"},
	{LLAVA_SKIP_LEGACY, "vision_tower.encoder.layers.0.mlp.fc1.weight", M(64, 32), true, true, false, "linear"},
	{LLAVA_SKIP_LEGACY, "multi_modal_projector.linear_1.weight", M(64, 32), true, true, false, "linear"},
	{LLAVA_SKIP_LEGACY, "language_model.lm_head.weight", M(128, 64), true, true, false, "linear"},
	{LLAVA_SKIP_RUNTIME, "vision_tower.encoder.layers.0.mlp.fc1.weight", M(64, 32), true, false, false,
	 "llm_int8_skip_modules"},
	{LLAVA_SKIP_RUNTIME, "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", M(64, 32), true, false,
	 false, "llm_int8_skip_modules"},
	{QWEN2_VL_SKIP, "visual.blocks.0.attn.qkv.weight", M(96, 32), true, true, false, "linear"},
	{QWEN2_VL_SKIP, "model.layers.0.mlp.up_proj.weight", M(128, 64), true, false, false,
	 "llm_int8_skip_modules"},
	/* F3: OLMo's norms have no weight, so OlmoModel's last parameter is the last down_proj; the causal LM
	 * registers lm_head last even when tied (tying happens after the modules are swapped) */
	{OLMO_BASE, "layers.15.mlp.down_proj.weight", M(64, 128), true, false, false, "last module"},
	{OLMO_BASE, "layers.14.mlp.down_proj.weight", M(64, 128), true, true, false, "linear"},
	{OLMO_TIED, "model.layers.15.mlp.down_proj.weight", M(64, 128), true, true, false, "linear"},
	{OLMO, "model.layers.15.mlp.down_proj.weight", M(64, 128), true, true, false, "linear"},
	{OLMO, "lm_head.weight", M(128, 64), true, false, false, "lm_head"},
};

const size_t select_ncases = sizeof(select_cases) / sizeof(select_cases[0]);
