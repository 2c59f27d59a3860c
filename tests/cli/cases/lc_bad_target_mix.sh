# target_modules as a regex in one adapter and a list in another: PEFT raises, and so does --combine.
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
mkdir -p ../regex
cp "$A/plain_r8/adapter_model.safetensors" ../regex/
sed 's/"target_modules": \[/"target_modules": ".*proj", "unused": [/' "$A/plain_r8/adapter_config.json" >../regex/adapter_config.json
grep -q '"target_modules": ".\*proj"' ../regex/adapter_config.json || die "could not write the config"
fails_cleanly --combine cat "$A/plain_r8" ../regex -o out
