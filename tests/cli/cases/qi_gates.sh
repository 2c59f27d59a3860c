# Every gate both ways on tiny-llama-nf4 against tiny-llama, whose worst 4-bit tensors have rel_err
# 0.0946, RMSE 0.00636, max |error| 0.0361, SNR 20.49 dB and cosine 0.99553: a limit just past the worst
# passes (exit 0), one just short fails (exit 1) and stderr names the tensors that failed it.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
gate() { # gate OPTION PASSING FAILING WORST_TENSOR
	$QINSPECT -q "$M/tiny-llama-nf4" "$M/tiny-llama" --$1 $2 2>err || die "--$1 $2 failed: $(cat err)"
	[ ! -s err ] || die "--$1 $2 passed but printed: $(cat err)"
	rc=0
	$QINSPECT -q "$M/tiny-llama-nf4" "$M/tiny-llama" --$1 $3 >out 2>err || rc=$?
	[ "$rc" = 1 ] || die "--$1 $3: exit status $rc, expected 1"
	grep -q "gate --$1 $3 failed by" err || die "--$1 $3: no failure message: $(cat err)"
	grep -q "$4" err || die "--$1 $3: $4 not named: $(cat err)"
	[ ! -s out ] || die "-q printed a table"
}
gate max-rel-err 0.095 0.094 model.layers.0.self_attn.v_proj.weight
gate max-rmse 0.0064 0.0063 model.layers.
gate max-abs-err 0.037 0.036 model.layers.0.mlp.down_proj.weight
gate min-snr 20.4 20.5 model.layers.0.self_attn.v_proj.weight
gate min-cosine 0.9955 0.99553 model.layers.0.self_attn.v_proj.weight
# several gates at once: one failing is enough, and the JSON says which
rc=0
$QINSPECT --json "$M/tiny-llama-nf4" "$M/tiny-llama" --max-rel-err 0.5 --min-snr 30 >report.json 2>/dev/null || rc=$?
[ "$rc" = 1 ] || die "two gates, one failing: exit status $rc"
grep -q '"passed":[[:space:]]*false' report.json || die "JSON passed is not false"
grep -q '"gate":[[:space:]]*"min_snr_db"' report.json || die "JSON lacks the failed gate"
# --tensor restricts what the gates see: the embeddings (identical) pass any gate
$QINSPECT -q "$M/tiny-llama-nf4" "$M/tiny-llama" --tensor '*embed*' --max-rel-err 0 --min-snr 1000 ||
	die "an identical tensor failed a gate"
