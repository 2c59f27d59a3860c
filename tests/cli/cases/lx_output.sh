# loraextract writes an adapter directory (config, weights, MANIFEST) as one transaction: refused when it
# exists (without -f), the same bytes with any thread count, a bundle as well; --dry-run writes nothing;
# a changed norm is left out with a warning, or kept whole with --keep-other (modules_to_save); 4-bit
# inputs (--correct) give an adapter of every 4-bit weight.
. "$CLIDIR/lib.sh"
TOOL=loraextract
D=$DATA/extract
M=$FIXTURES/models
$LORAEXTRACT --rank 2 $D/base.safetensors $D/ok.safetensors -o a1 2>err
grep -q "warning: 'model.norm.weight' differs and is left out" err || die "no warning for the norm"
for f in adapter_config.json adapter_model.safetensors MANIFEST; do [ -f a1/$f ] || die "a1/$f missing"; done
[ "$(ls -A a1 | wc -l)" = 3 ] || die "a1 holds more than its three files"
grep -q '"r":	2' a1/adapter_config.json || die "r is not 2"
grep -q '"lora_alpha":	2' a1/adapter_config.json || die "lora_alpha is not 2"
grep -q '"target_modules":	\["model.layers.0.mlp.up_proj"\]' a1/adapter_config.json || die "target_modules"
header a1/adapter_model.safetensors | grep -q '"base_model.model.model.layers.0.mlp.up_proj.lora_A.weight":{"dtype":"BF16","shape":\[2,16\]' ||
	die "lora_A"
fails --rank 2 $D/base.safetensors $D/ok.safetensors -o a1
$LORAEXTRACT -q -T 2 -f --rank 2 $D/base.safetensors $D/ok.safetensors -o a1
$LORAEXTRACT -q -T 1 --rank 2 $D/base.safetensors $D/ok.safetensors -o a2
cmp a1/adapter_model.safetensors a2/adapter_model.safetensors || die "-T 1 and -T 2 differ"
$QINSPECT --verify a1 >/dev/null || die "qinspect --verify refuses the MANIFEST"
$LORAEXTRACT -q --keep-other --rank 1 $D/base.safetensors $D/ok.safetensors -o k.tar.zst
[ -f k.tar.zst ] || die "no bundle"
$LORAEXTRACT -q --keep-other --energy 0.5 $D/base.safetensors $D/ok.safetensors -o k
grep -q '"modules_to_save":	\["model.norm"\]' k/adapter_config.json || die "modules_to_save"
header k/adapter_model.safetensors | grep -q '"base_model.model.model.norm.weight":{"dtype":"BF16","shape":\[16\]' ||
	die "the norm kept whole"
$LORAEXTRACT -n --rank 2 $D/base.safetensors $D/ok.safetensors -o d | grep -q '^d: 1 weight to factor, 1 other tensor to compare$' ||
	die "--dry-run: no plan line"
[ ! -e d ] || die "--dry-run wrote d"
$LORAEXTRACT -q --json --correct --rank 4 $M/tiny-llama-nf4 $M/tiny-llama -o c >c.json
grep -c '"module":' c.json | grep -qx 14 || die "--correct: not the 14 4-bit weights"
grep -q '"q":	".*tiny-llama-nf4"' c.json || die "--json: no q"
