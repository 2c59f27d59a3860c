# A 4-bit group whose absmax is one element short of what its quant_state says: the message names the file
# and the tensor, exit 1, nothing written (nothing read past the end of a part).
. "$CLIDIR/lib.sh"
python3 "$CLIDIR/data/deq_tool.py" shrink "$FIXTURES/models/tiny-llama-nf4/model.safetensors" ../in.safetensors \
	model.layers.0.self_attn.q_proj.weight.absmax
fails_cleanly -d ../in.safetensors -o out
