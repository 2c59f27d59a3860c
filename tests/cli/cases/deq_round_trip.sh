# nf4quant | nf4quant -d: the shipped float model quantized and dequantized through a pipe equals the
# dequantization qinspect and loramerge compute of the same 4-bit checkpoint (qinspect: identical to it;
# loramerge: the 4-bit base's modules an adapter leaves alone, dequantized, are the same bytes), and what
# -d gives of the 4-bit file and of its stream.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
T="python3 $CLIDIR/data/deq_tool.py"
$NF4QUANT -q "$M/tiny-llama" -o q
$NF4QUANT -q "$M/tiny-llama/model.safetensors" -o - | $NF4QUANT -q -d - -o rt.safetensors
$NF4QUANT -q -d q -o deq
cmp rt.safetensors deq/model.safetensors || die "the pipe differs from the file"
$QINSPECT --json q rt.safetensors >qi.json
python3 -c "
import json, sys
e = json.load(open('qi.json'))['summary']['error']
sys.exit(0 if e['identical'] and e['differ'] == 0 and e['tensors'] == 20 else 1)" || die "qinspect's dequantization differs"
# rslora_r16 adapts q_proj and v_proj only: loramerge dequantizes the other 4-bit weights as they are
$LORAMERGE -q q "$FIXTURES/peft/adapters/rslora_r16" -o merged
untouched=""
for l in 0 1; do
	for mod in self_attn.k_proj self_attn.o_proj mlp.gate_proj mlp.up_proj mlp.down_proj; do
		untouched="$untouched model.layers.$l.$mod.weight"
	done
done
$T same rt.safetensors merged/model.safetensors $untouched || die "loramerge's dequantization differs"
