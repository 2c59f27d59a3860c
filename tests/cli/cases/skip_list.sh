# The output's llm_int8_skip_modules is always an explicit list (null would leave the choice to each
# transformers version's defaults, which differ): the tied head of tiny-llama and tiny-gpt2, the untied
# head of tiny-qwen2, [] when the head is quantized too, and the modules --exclude leaves in float, by path.
. "$CLIDIR/lib.sh"
skip_list() {
	sed -n '/"llm_int8_skip_modules"/,/\]/p' "$1/config.json" | tr -d ' \n'
}
$NF4QUANT -q "$FIXTURES/models/tiny-llama" -o llama
[ "$(skip_list llama)" = '"llm_int8_skip_modules":["lm_head"],' ] || die "tiny-llama: $(skip_list llama)"
$NF4QUANT -q "$FIXTURES/models/tiny-gpt2" -o gpt2
[ "$(skip_list gpt2)" = '"llm_int8_skip_modules":["lm_head"],' ] || die "tiny-gpt2: $(skip_list gpt2)"
$NF4QUANT -q "$FIXTURES/models/tiny-qwen2" -o qwen2
[ "$(skip_list qwen2)" = '"llm_int8_skip_modules":["lm_head"],' ] || die "tiny-qwen2: $(skip_list qwen2)"
$NF4QUANT -q --include lm_head.weight "$FIXTURES/models/tiny-qwen2" -o qwen2-head
grep -q '^    "llm_int8_skip_modules": \[\],$' qwen2-head/config.json || die "tiny-qwen2 with its head: $(skip_list qwen2-head)"
$NF4QUANT -q --exclude '*.q_proj.weight' --exclude 'model.layers.1.mlp.*' "$FIXTURES/models/tiny-llama" -o excluded
want='"llm_int8_skip_modules":["lm_head","model.layers.0.self_attn.q_proj","model.layers.1.mlp.down_proj",'
want=$want'"model.layers.1.mlp.gate_proj","model.layers.1.mlp.up_proj","model.layers.1.self_attn.q_proj"],'
[ "$(skip_list excluded)" = "$want" ] || die "--exclude: $(skip_list excluded)"
# a bare safetensors file has no config.json to carry one
$NF4QUANT -q "$FIXTURES/models/tiny-llama/model.safetensors" -o file.safetensors
! test -e config.json || die "config.json written beside a file output"
