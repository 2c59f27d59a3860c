# DoRA on an embedding and a Linear layer (fixtures/peft/adapters/dora_embed_r4: embed_tokens, whose magnitude
# scales the embedding's columns, and layers.0.self_attn.k_proj, whose magnitude scales rows), and on GPT-2's
# Conv1D layers (dora_gpt2_r4: stored [in, out], their columns scaled), against PEFT 0.21.2's
# merge_and_unload() on the CPU (tests/interop/make_dora_refs.py).
# bf16 base: the project's rule, one unit in the last place with 99.9 % of the elements identical (2 of
# 53248 differ; 1 of 65536 for GPT-2). fp32 base (tiny-llama upcast exactly): loramerge adds the norms in the order of torch's
# CUDA reduction, PEFT's references' (tests/gpu/torch_norm_check.py); torch on the CPU adds them in another
# order, so against this CPU reference the bound of man/loramerge.1 (DoRA): at most 7 ulp, at least 36 %
# identical (measured: 19464 of 53248, 7 ulp in the embedding, 3 in k_proj).
# Every other tensor must be the base's, byte for byte; the scalar and vector code give the same bytes.
. "$CLIDIR/lib.sh"
a="$FIXTURES/peft/adapters/dora_embed_r4"
$LORAMERGE -q "$FIXTURES/models/tiny-llama" "$a" -o bf16
$STCMP --subset --ulps 1 bf16 "$FIXTURES/peft/merged/dora_embed_r4__bf16base.safetensors" >bf16.cmp ||
	{ cat bf16.cmp >&2; die "bf16 differs from PEFT's merge"; }
grep -q '^model.embed_tokens.weight: ' bf16.cmp || die "the embedding was not compared"
$STCMP bf16 "$FIXTURES/models/tiny-llama" | grep -E ': (only in |[0-9]+ of [0-9]+ bytes differ)' | cut -d: -f1 |
	sort >changed || true
printf '%s\n' model.embed_tokens.weight model.layers.0.self_attn.k_proj.weight | cmp -s - changed ||
	{ cat changed >&2; die "other tensors changed than PEFT's"; }
LQ_CPU=scalar $LORAMERGE -q "$FIXTURES/models/tiny-llama" "$a" -o bf16-scalar
cmp bf16/model.safetensors bf16-scalar/model.safetensors || die "scalar and vector code differ"
# the fp32 base: every tensor upcast (bf16_stored merges into o_proj and up_proj only, which DoRA leaves)
$LORAMERGE -q --dtype fp32 "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/bf16_stored" -o base32
$LORAMERGE -q base32 "$a" -o fp32
$STCMP --subset --ulps 7 --min-identical 36 fp32 "$FIXTURES/peft/merged/dora_embed_r4__fp32base.safetensors" \
	>fp32.cmp || { cat fp32.cmp >&2; die "fp32 is beyond the stated bound of PEFT's merge on the CPU"; }
LQ_CPU=scalar $LORAMERGE -q base32 "$a" -o fp32-scalar
cmp fp32/model.safetensors fp32-scalar/model.safetensors || die "fp32: scalar and vector code differ"
# GPT-2's Conv1D: the magnitude [out] scales the columns of W [in, out]
$LORAMERGE -q "$FIXTURES/models/tiny-gpt2" "$FIXTURES/peft/adapters/dora_gpt2_r4" -o gpt2
$STCMP --subset --ulps 1 gpt2 "$FIXTURES/peft/merged/dora_gpt2_r4__bf16base.safetensors" >gpt2.cmp ||
	{ cat gpt2.cmp >&2; die "gpt2 differs from PEFT's merge"; }
grep -q '^transformer.h.0.attn.c_attn.weight: ' gpt2.cmp || die "c_attn was not compared"
