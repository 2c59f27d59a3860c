# The adapter features that shared/reference/lora lacks, against PEFT 0.21's merge_and_unload() on an H200
# saved with save_pretrained (fixtures/peft/merged/NAME/, made by tests/gpu/make_lora_refs.py): trainable
# token rows of tiny-llama's tied embedding (tokens_r4), LoRA biases added to tiny-qwen2's q/k/v biases
# (bias_r8), and GPT-2's Conv1D layers, stored [in, out] (gpt2_r4). Whole models compared, every tensor;
# tolerance as lm_golden_bf16 (one element of bias_r8 is one unit in the last place apart, the rest are
# identical).
. "$CLIDIR/lib.sh"
for spec in tokens_r4:tiny-llama bias_r8:tiny-qwen2 gpt2_r4:tiny-gpt2; do
	a=${spec%%:*}
	$LORAMERGE -q "$FIXTURES/models/${spec##*:}" "$FIXTURES/peft/adapters/$a" -o $a
	$STCMP --ulps 1 $a "$FIXTURES/peft/merged/$a" >$a.cmp || { cat $a.cmp >&2; die "$a differs from PEFT's merge"; }
	$STCMP $a "$FIXTURES/models/${spec##*:}" >/dev/null && die "$a: the merge changed nothing"
	LQ_CPU=scalar $LORAMERGE -q "$FIXTURES/models/${spec##*:}" "$FIXTURES/peft/adapters/$a" -o $a-scalar
	cmp $a/model.safetensors $a-scalar/model.safetensors || die "$a: scalar and vector code differ"
done
# trainable tokens changed the embedding itself (the head is tied to it)
$STCMP tokens_r4 "$FIXTURES/models/tiny-llama" | grep -q '^model.embed_tokens.weight: ' || die "embedding unchanged"
