# A skip-list entry nf4quant cannot follow does not matter when --include/--exclude choose every module
# it could keep out: a warning, and the output's list says what was done.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/"* in/
sed '1s/{/{"llm_int8_skip_modules": ["(?<=layers\\\\.1\\\\.)mlp"],/' "$FIXTURES/models/tiny-llama/config.json" >in/config.json
fails -n in -o out
$NF4QUANT --exclude 'model.layers.1.mlp.*' --include '*_proj.weight' in -o out 2>err
grep -qF "nf4quant: warning: in/config.json: llm_int8_skip_modules entry '(?<=layers\\.1\\.)mlp' is a Python regex" err ||
	die "no warning: $(cat err)"
grep -qF "; ignored: --include/--exclude choose every module it could keep out" err || die "no warning: $(cat err)"
for m in lm_head model.layers.1.mlp.down_proj model.layers.1.mlp.gate_proj model.layers.1.mlp.up_proj; do
	grep -q "^      \"$m\",*\$" out/config.json || die "$m not in the skip list: $(grep -A8 skip_modules out/config.json)"
done
[ "$(grep -c '^      "' out/config.json)" = 4 ] || die "skip list: $(grep -A8 skip_modules out/config.json)"
