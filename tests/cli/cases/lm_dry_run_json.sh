# -n prints the plan and writes nothing; --json prints one JSON object on stdout with the totals.
. "$CLIDIR/lib.sh"
A="$FIXTURES/peft/adapters/embed_mts"
$LORAMERGE -n "$FIXTURES/models/tiny-llama" $A -o out 2>plan.txt >stdout.txt
[ ! -e out ] || die "dry run wrote out"
[ -s stdout.txt ] && die "dry run printed on stdout"
grep -q 'replace+merge *model.embed_tokens.weight' plan.txt || die "plan lacks the embedding: $(cat plan.txt)"
grep -q 'replace *lm_head.weight' plan.txt || die "plan lacks the head: $(cat plan.txt)"
$LORAMERGE -q --json "$FIXTURES/models/tiny-llama" $A -o out >summary.json
grep -q '"merged":[[:space:]]*3' summary.json || die "json: $(cat summary.json)"
grep -q '"replaced":[[:space:]]*2' summary.json || die "json: $(cat summary.json)"
