# --blocksize 32, 128 and 4096: every quant_state (JSON text inside the file) records the blocksize,
# absmax holds one code per block, and --json says so.
. "$CLIDIR/lib.sh"
for b in 32 128 4096; do
	$NF4QUANT -q --blocksize $b "$FIXTURES/models/tiny-llama" -o out$b
	n=$(grep -ao "\"blocksize\": $b," out$b/model.safetensors | wc -l)
	[ "$n" = 14 ] || die "blocksize $b: $n quant_states record it, expected 14"
	[ "$(grep -ao '"blocksize": [0-9]*,' out$b/model.safetensors | wc -l)" = 14 ] || die "blocksize $b: other blocksizes"
	# q_proj is [128, 128]: 16384 elements in 16384/b blocks
	header out$b/model.safetensors | grep -qF \
		"\"model.layers.0.self_attn.q_proj.weight.absmax\":{\"dtype\":\"U8\",\"shape\":[$((16384 / b))]," ||
		die "blocksize $b: q_proj absmax is not $((16384 / b)) bytes"
	$NF4QUANT --json --dry-run --blocksize $b "$FIXTURES/models/tiny-llama" -o x | grep -q "\"blocksize\":[[:space:]]*$b,\$" ||
		die "blocksize $b: not in --json"
done
