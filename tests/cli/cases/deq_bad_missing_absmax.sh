# A 4-bit group without its absmax: the message names the file and the tensor, exit 1, nothing written.
. "$CLIDIR/lib.sh"
python3 "$CLIDIR/data/deq_tool.py" drop "$FIXTURES/models/tiny-llama-nf4/model.safetensors" ../in.safetensors \
	model.layers.1.mlp.up_proj.weight.absmax
fails_cleanly -d ../in.safetensors -o out.safetensors
