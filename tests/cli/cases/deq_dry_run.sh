# nf4quant -d -n: the plan on standard output (a line per tensor, what is dequantized and how, the totals,
# the memory), nothing written; with --json the plan as JSON.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$NF4QUANT -d -n "$M/tiny-llama-fp4" -o out >plan
[ ! -e out ] || die "a dry run wrote its output"
grep -q '^dequantize model.layers.0.self_attn.q_proj.weight (fp4, blocksize 64, double quant, bfloat16) \[128, 128\] -> BF16' plan ||
	die "plan: $(cat plan)"
grep -q '^copy       model.norm.weight BF16 \[128\]' plan || die "plan: $(cat plan)"
grep -q '^14 of 20 tensors dequantized: ' plan || die "plan: $(cat plan)"
grep -q 'memory needed' plan
$NF4QUANT -d -n --json --dtype fp32 "$M/tiny-llama-fp4" -o out >plan.json
[ ! -e out ] || die "a dry run wrote its output"
python3 -c "
import json, sys
d = json.load(open('plan.json'))
t = {x['name']: x for x in d['tensors']}
q = t['model.layers.0.self_attn.q_proj.weight']
ok = d['mode'] == 'dequantize' and d['dry_run'] and d['dtype'] == 'fp32' and d['totals']['dequantized'] == 14
ok = ok and q['action'] == 'dequantize' and q['dtype'] == 'F32' and q['quant_type'] == 'fp4' and q['bytes_out'] == 128 * 128 * 4
ok = ok and t['model.norm.weight']['action'] == 'copy' and t['model.norm.weight']['dtype'] == 'BF16'
sys.exit(0 if ok else 1)" || die "json: $(cat plan.json)"
