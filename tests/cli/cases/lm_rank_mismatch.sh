# A config whose r disagrees with the saved matrices: a warning, and the tensors' rank is used (for the
# scaling too), so the result is the one of the true configuration.
. "$CLIDIR/lib.sh"
mkdir -p ../r4
cp "$FIXTURES/peft/adapters/plain_r8/adapter_model.safetensors" ../r4/
sed 's/"r": 8,/"r": 4,/' "$FIXTURES/peft/adapters/plain_r8/adapter_config.json" >../r4/adapter_config.json
grep -q '"r": 4,' ../r4/adapter_config.json || die "could not write the config"
$LORAMERGE "$FIXTURES/models/tiny-llama" ../r4 -o out 2>err.txt
grep -q 'warning:.*rank' err.txt || die "no warning about the rank: $(cat err.txt)"
$LORAMERGE -q "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8" -o want
cmp out/model.safetensors want/model.safetensors || die "the config's rank was used"
