# --combine writes an adapter directory (config, weights, MANIFEST) as one transaction: refused when it
# exists (without -f), the same bytes with any thread count, DARE's the same for the same --seed and not
# for another; --dry-run writes nothing.
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
$LORAMERGE -q --combine cat "$A/plain_r8:0.7" "$A/rslora_r16:-1.3" -o c1
for f in adapter_config.json adapter_model.safetensors MANIFEST; do [ -f c1/$f ] || die "c1/$f missing"; done
[ "$(ls -A c1 | wc -l)" = 3 ] || die "c1 holds more than its three files"
fails --combine cat "$A/plain_r8" -o c1
$LORAMERGE -q -T 2 -f --combine cat "$A/plain_r8:0.7" "$A/rslora_r16:-1.3" -o c1
$LORAMERGE -q -T 1 --combine cat "$A/plain_r8:0.7" "$A/rslora_r16:-1.3" -o c2
cmp c1/adapter_model.safetensors c2/adapter_model.safetensors || die "-T 1 and -T 2 differ"
$LORAMERGE -q --combine dare_ties --density 0.5 --seed 7 "$A/plain_r8" "$A/bf16_stored" -o d1
$LORAMERGE -q --combine dare_ties --density 0.5 --seed 7 "$A/plain_r8" "$A/bf16_stored" -o d2
$LORAMERGE -q --combine dare_ties --density 0.5 --seed 8 "$A/plain_r8" "$A/bf16_stored" -o d3
cmp d1/adapter_model.safetensors d2/adapter_model.safetensors || die "the same --seed gave other bytes"
! cmp -s d1/adapter_model.safetensors d3/adapter_model.safetensors || die "another --seed gave the same bytes"
$QINSPECT --verify d1 >/dev/null || die "qinspect --verify refuses the MANIFEST"
$LORAMERGE -n --combine svd "$A/plain_r8" "$A/rslora_r16" -o d4 | grep -q '^combine svd: 2 adapters, 14 modules, rank 16$' ||
	die "--dry-run: no plan line"
[ ! -e d4 ] || die "--dry-run wrote d4"
