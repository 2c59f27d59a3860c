# A 4-bit group whose quant_state is not JSON, and one whose shape does not match its codes: the message
# names the file and the tensor, exit 1, nothing written.
. "$CLIDIR/lib.sh"
T="python3 $CLIDIR/data/deq_tool.py"
n=model.layers.0.mlp.gate_proj.weight.quant_state.bitsandbytes__nf4
$T replace "$FIXTURES/models/tiny-llama-nf4/model.safetensors" ../in.safetensors $n '{"quant_type": "nf4", '
fails -d ../in.safetensors -o out
printf '%s\n' "$msg" | grep -qF "in.safetensors: tensor $n: quant_state is not a JSON object" || die "message: $msg"
[ $rc = 1 ] || die "exit status $rc"
state='{"quant_type": "nf4", "absmax": [], "blocksize": 64, "quant_map": [], "dtype": "bfloat16", "shape": [320, 129], "nested_blocksize": 256, "nested_dtype": "float32", "nested_absmax": [], "nested_offset": 0.01, "nested_quant_map": []}'
$T replace "$FIXTURES/models/tiny-llama-nf4/model.safetensors" ../in2.safetensors $n "$state"
fails_cleanly -d ../in2.safetensors -o out
