# --include '*' on a plain .safetensors file: every floating tensor is quantized, the 1-D one too; the
# integer and the empty tensors are copied. Without it nothing there is a Linear weight: a plain copy.
. "$CLIDIR/lib.sh"
$NF4QUANT -q --include '*' "$DATA/mixed.safetensors" -o out.safetensors
h=$(header out.safetensors)
for t in w2d:128 b1d:32 h2d:32; do
	n=${t%%:*}
	printf '%s' "$h" | grep -qF "\"$n\":{\"dtype\":\"U8\",\"shape\":[${t#*:},1]," || die "$n not packed to 4 bits"
	printf '%s' "$h" | grep -qF "\"$n.quant_state.bitsandbytes__nf4\":" || die "$n has no quant_state"
done
printf '%s' "$h" | grep -qF '"ids":{"dtype":"I64","shape":[4],' || die "ids not copied"
printf '%s' "$h" | grep -qF '"empty":{"dtype":"F32","shape":[0],' || die "empty not copied"
case $h in *ids.*|*empty.*) die "ids or empty quantized" ;; esac
$NF4QUANT -q "$DATA/mixed.safetensors" -o plain.safetensors
$STCMP plain.safetensors "$DATA/mixed.safetensors"
