# -n prints the plan on standard output (it went to standard error before), nothing on standard error,
# and writes nothing; --json prints one JSON object on stdout with the totals, and with -n only that
# (the human plan on standard error with -v).
. "$CLIDIR/lib.sh"
A="$FIXTURES/peft/adapters/embed_mts"
$LORAMERGE -n "$FIXTURES/models/tiny-llama" $A -o out 2>err.txt >plan.txt
[ ! -e out ] || die "dry run wrote out"
grep -v 'warning: the adapter gives the tied output head' err.txt && die "dry run printed on stderr: $(cat err.txt)"
grep -q '^replace+merge *model.embed_tokens.weight' plan.txt || die "plan lacks the embedding: $(cat plan.txt)"
grep -q '^replace *lm_head.weight' plan.txt || die "plan lacks the head: $(cat plan.txt)"
grep -q '^3 tensors merged into the float weights.* (21 tensors): ' plan.txt || die "plan lacks the totals: $(cat plan.txt)"
$LORAMERGE -q --json "$FIXTURES/models/tiny-llama" $A -o out >summary.json
grep -q '"merged":[[:space:]]*3' summary.json || die "json: $(cat summary.json)"
grep -q '"replaced":[[:space:]]*2' summary.json || die "json: $(cat summary.json)"
for v in '' -v; do
	$LORAMERGE -n --json $v "$FIXTURES/models/tiny-llama" $A -o out2 >plan.json 2>err.txt
	python3 -c 'import json; json.load(open("plan.json"))' || die "-n --json $v: not JSON alone: $(cat plan.json)"
	grep -q '"dry_run":[[:space:]]*true' plan.json || die "-n --json $v: $(cat plan.json)"
	n=$(grep -c '^loramerge: replace' err.txt) || true
	[ "$n" = "$([ -n "$v" ] && echo 2 || echo 0)" ] || die "-n --json $v: $n plan lines on stderr: $(cat err.txt)"
done
[ ! -e out2 ] || die "dry run wrote out2"
