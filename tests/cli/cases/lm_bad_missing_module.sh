# An adapter that changes a module the base does not have (an adapter for another model): refused.
. "$CLIDIR/lib.sh"
TOOL=loramerge
fails_cleanly --key-map 'q_proj$=qkv_proj' "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/rslora_r16" -o out
