# DoRA on a row of W + D whose norm is zero: magnitude / 0 * 0 is NaN. Refused with the tensor and the
# element (it had been written with exit status 0), as is the same merge through --requantize (whose
# message named its scratch file, out.safetensors.base-as-XXXXXX, instead of the base).
. "$CLIDIR/lib.sh"
TOOL=loramerge
d="$CLIDIR/data/nonfinite"
fails --requantize "$d/zero_row.safetensors" "$d/dora_zero_row" -o out.safetensors
[ "$rc" = 1 ] || die "--requantize: exit status $rc"
case $msg in
*"/zero_row.safetensors: tensor 'model.layers.0.self_attn.q_proj.weight': merged element [2, 0] (flat index 16) is NaN"*) ;;
*) die "--requantize: message: $msg" ;;
esac
fails_cleanly "$d/zero_row.safetensors" "$d/dora_zero_row" -o out.safetensors
