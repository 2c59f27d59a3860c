# Weights beside an index that it does not name and that are not of its series of shards (Mistral's
# consolidated.safetensors, a stale model.safetensors, a pickled copy): not read and not carried, which is
# said at the default verbosity, one line each; the conversion is the index's.
. "$CLIDIR/lib.sh"
cp -R "$FIXTURES/models/tiny-llama-sharded" in
cp "$FIXTURES/models/tiny-llama/model.safetensors" in/consolidated.safetensors
cp "$FIXTURES/models/tiny-llama/model.safetensors" in/model.safetensors
printf 'PK not really a pickle\n' >in/pytorch_model.bin
$NF4QUANT in -o out 2>err
for f in consolidated.safetensors model.safetensors; do
	grep -qxF "nf4quant: not carried: $f: weights in another file (the index does not name it; not read)" err ||
		die "no note on $f: $(cat err)"
done
grep -qxF "nf4quant: not carried: pytorch_model.bin: weights in another file" err || die "$(cat err)"
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
! test -e out/consolidated.safetensors || die "consolidated.safetensors was carried"
