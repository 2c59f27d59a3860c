# --dry-run (-n) writes nothing, not even a temporary, and prints the plan, the output it asks for, on
# standard output without the program's name: one line per tensor, then the sizes in and out, bits per
# parameter and the memory it needs; nothing on standard error. -q leaves it out. (The plan went to
# standard error before; see json_dry_run for -n --json.)
. "$CLIDIR/lib.sh"
for o in out out.safetensors; do
	plan=$($NF4QUANT --dry-run "$FIXTURES/models/tiny-llama" -o $o 2>&1 >/dev/null)
	[ -z "$plan" ] || die "stderr: $plan"
	plan=$($NF4QUANT --dry-run "$FIXTURES/models/tiny-llama" -o $o)
	for l in 'quantize  model.layers.1.self_attn.v_proj.weight BF16 [32, 128]' \
		'copy      model.embed_tokens.weight BF16 [384, 128]' \
		'14 of 20 tensors quantized (nf4, blocksize 64, double quant): 755 kB -> 286 kB' 'bits per parameter' \
		"output: $o (1 shard" 'memory needed: about '; do
		printf '%s\n' "$plan" | grep -qF -- "$l" || die "-o $o: the plan lacks '$l': $plan"
	done
	[ "$(printf '%s\n' "$plan" | wc -l)" = 22 ] || die "-o $o: not 20 tensor lines and 2 of totals: $plan"
	printf '%s\n' "$plan" | grep -q 'nf4quant:' && die "-o $o: the program's name in the plan: $plan"
	out=$($NF4QUANT -n "$FIXTURES/models/tiny-llama-sharded" -o $o)
	[ "$(printf '%s\n' "$out" | grep -c '^quantize ')" = 14 ] || die "sharded: $out"
	[ -z "$($NF4QUANT -n -q "$FIXTURES/models/tiny-llama" -o $o 2>&1)" ] || die "-q: something printed"
	[ -z "$(ls -A)" ] || die "written: $(ls -A)"
done
