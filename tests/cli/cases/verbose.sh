# -v: one line per tensor (what becomes of it), then the summary; without it, one summary line only;
# -v -q and -q -v cancel out.
. "$CLIDIR/lib.sh"
names=$(header "$FIXTURES/models/tiny-llama/model.safetensors" | grep -o '"model[^"]*"' | tr -d '"')
[ "$(printf '%s\n' "$names" | wc -l)" = 20 ] || die "fixture changed"
err=$($NF4QUANT -v "$FIXTURES/models/tiny-llama" -o out 2>&1 >/dev/null)
for n in $names; do
	[ "$(printf '%s\n' "$err" | grep -cE "^nf4quant: (quantize|copy) +$n ")" = 1 ] || die "not one line for $n"
done
[ "$(printf '%s\n' "$err" | grep -cE '^nf4quant: quantize ')" = 14 ] || die "not 14 quantize lines"
[ "$(printf '%s\n' "$err" | grep -cE '^nf4quant: copy ')" = 6 ] || die "not 6 copy lines"
for v in '' '-v -q' '-q -v'; do
	err=$($NF4QUANT $v "$FIXTURES/models/tiny-llama" -o o2 2>&1 >/dev/null)
	[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || die "'$v': more than one line: $err"
	case $err in "nf4quant: o2: 14 of 20 tensors quantized"*) ;; *) die "'$v': no summary: $err" ;; esac
	rm -r o2
done
