# An adapter whose matrices do not fit the base (here q_proj's [128, 128] LoRA renamed onto k_proj,
# [32, 128]): refused, naming the adapter and the module, nothing written.
. "$CLIDIR/lib.sh"
TOOL=loramerge
fails_cleanly --key-map 'q_proj$=k_proj' "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/rslora_r16" -o out
