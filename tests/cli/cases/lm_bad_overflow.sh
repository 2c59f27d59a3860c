# An adapter whose delta (3.40006e38, finite in float32) makes the bf16 weight +inf: refused, naming the
# tensor and the element, nothing written (it had been written with exit status 0). The same through
# --requantize, whose float32 sum stays finite here but is quantized from the same refusal.
. "$CLIDIR/lib.sh"
TOOL=loramerge
fails "$FIXTURES/models/tiny-llama" "$CLIDIR/data/nonfinite/overflow_adapter" -o out
[ "$rc" = 1 ] || die "exit status $rc"
case $msg in
*"tensor 'model.layers.0.self_attn.q_proj.weight': merged element [0, 0] (flat index 0) is +inf; refusing"*) ;;
*) die "message: $msg" ;;
esac
fails_cleanly --dtype fp32 "$FIXTURES/models/tiny-llama" "$CLIDIR/data/nonfinite/overflow_adapter" -o out
