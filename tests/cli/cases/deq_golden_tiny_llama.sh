# nf4quant -d of the shipped tiny-llama-nf4 and -fp4 (what transformers + bitsandbytes saved on an H200):
# the 4-bit weights equal bitsandbytes' CUDA dequantize_4bit of them (tiny-llama-nf4-dequant, made by the
# reference's generator), every other tensor is the checkpoint's own, config.json is the float model's
# byte for byte (the quantization_config removed, nothing else), the other files are carried; qinspect
# finds the output identical to the 4-bit checkpoint's dequantization, tensor for tensor.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
T="python3 $CLIDIR/data/deq_tool.py"
$NF4QUANT -q -d "$M/tiny-llama-nf4" -o nf4
$STCMP --subset nf4 "$M/tiny-llama-nf4-dequant.safetensors" >&2 || die "not bitsandbytes' dequantize_4bit"
float="model.embed_tokens.weight model.norm.weight model.layers.0.input_layernorm.weight"
float="$float model.layers.0.post_attention_layernorm.weight model.layers.1.input_layernorm.weight"
float="$float model.layers.1.post_attention_layernorm.weight"
$T same nf4/model.safetensors "$M/tiny-llama-nf4/model.safetensors" $float || die "a float tensor changed"
for q in nf4 fp4; do
	[ $q = nf4 ] || $NF4QUANT -q -d "$M/tiny-llama-$q" -o $q
	cmp $q/config.json "$M/tiny-llama/config.json" || die "$q: config.json is not the float model's"
	cmp $q/generation_config.json "$M/tiny-llama/generation_config.json"
	test "$(ls $q | tr '\n' ' ')" = "MANIFEST config.json generation_config.json model.safetensors "
	# the float model's tensors, names, types and shapes
	$QINSPECT -q --verify $q
	$QINSPECT --json "$M/tiny-llama-$q" $q >$q.json
	python3 -c "
import json, sys
d = json.load(open('$q.json'))
e = d['summary']['error']
sys.exit(0 if e['identical'] and e['differ'] == 0 and e['tensors'] == 20 and not d['only_in_checkpoint'] and not d['only_in_reference'] else 1)" ||
		die "$q: qinspect does not find the output identical to the 4-bit checkpoint's dequantization"
done
