# The summary gives the 4-bit tensors' error apart from every compared tensor's (tiny-llama's identical
# embeddings and norms took 0.0922 down to 0.0617), in the table, the JSON and the CSV; the worst list
# ranks only the tensors with an error.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$QINSPECT "$M/tiny-llama-nf4" "$M/tiny-llama" >t.txt
grep -q '^error of the 14 4-bit tensors, 328k elements: rel_err 0.09221, SNR 20.7 dB, cosine 0.9957, RMSE 0.004426, max |error| 0.03613 (in model.layers.0.mlp.down_proj.weight)$' t.txt ||
	die "4-bit line: $(cat t.txt)"
grep -q '^error of all 20 compared tensors, 377k elements: rel_err 0.0617, ' t.txt || die "all line: $(cat t.txt)"
$QINSPECT --top 100 "$M/tiny-llama-nf4" "$M/tiny-llama" >t100.txt
worst=$(grep '^worst by rel_err:' t100.txt)
case $worst in *embed* | *norm* | *"(0)"*) die "identical tensors ranked: $worst" ;; esac
[ "$(printf '%s\n' "$worst" | tr ',' '\n' | wc -l)" = 14 ] || die "not the 14 4-bit tensors: $worst"
# JSON: summary.quantized.error and summary.error, each with its tensors
$QINSPECT --json --top 100 "$M/tiny-llama-nf4" "$M/tiny-llama" >r.json
sed -n '/"quantized":/,/"worst":/p' r.json >q.json
grep -q '"tensors":[[:space:]]*14,' q.json && grep -q '"rel_err":[[:space:]]*0.0922062' q.json || die "JSON quantized: $(cat q.json)"
grep -q '"tensors":[[:space:]]*20,' q.json && grep -q '"rel_err":[[:space:]]*0.061697' q.json || die "JSON all: $(cat q.json)"
[ "$(sed -n '/"worst":/,/"gates":/p' r.json | grep -c '"name"')" = 14 ] || die "JSON worst"
# CSV: a line per tensor, then the two totals, told apart by the row column
$QINSPECT --csv "$M/tiny-llama-nf4" "$M/tiny-llama" | tr -d '\r' >c.csv
[ "$(grep -c ',tensor$' c.csv)" = 20 ] || die "CSV tensor lines"
grep -q '^,,,,true,,,,327680,186666,.*,0.092206299,20.7047882,0.995749257,false,0,0,0,total_quantized$' c.csv ||
	die "CSV total_quantized: $(grep total_ c.csv)"
grep -q '^,,,,,,,,377472,286250,.*,0.061697217,.*,total_all$' c.csv || die "CSV total_all: $(grep total_ c.csv)"
# two float checkpoints: no 4-bit line, the JSON's null
$QINSPECT "$M/tiny-llama-sharded" "$M/tiny-llama" >f.txt
grep -q '4-bit tensors' f.txt && die "a 4-bit line without 4-bit tensors: $(cat f.txt)"
grep -q '^worst by rel_err' f.txt && die "identical checkpoints ranked: $(cat f.txt)"
$QINSPECT --json "$M/tiny-llama-sharded" "$M/tiny-llama" | sed -n '/"quantized":/,/"worst":/p' |
	grep -q '"error":[[:space:]]*null' || die "JSON: no null for the 4-bit error"
