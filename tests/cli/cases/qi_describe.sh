# One argument: a description. Every tensor is listed with its storage and bits per parameter; the
# 4-bit summary says 4.13 bits in codes and block constants; no error columns; --csv has one line per
# tensor plus the header and the two totals; -n lists the tensors and reads no data.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$QINSPECT "$M/tiny-llama-nf4" >table.txt
[ "$(grep -c 'nf4/64 dq (bf16)' table.txt)" = 14 ] || die "not 14 NF4 tensors: $(cat table.txt)"
grep -q '^4-bit: 14 tensors' table.txt || die "no 4-bit summary: $(cat table.txt)"
grep -q 'rel_err' table.txt && die "error columns without a reference"
$QINSPECT --csv "$M/tiny-llama-fp4" >t.csv
[ "$(wc -l <t.csv)" = 23 ] || die "CSV: $(wc -l <t.csv) lines, expected 23 (header, 20 tensors, 2 totals)"
head -1 t.csv | grep -q '^name,shape,storage,' || die "CSV header: $(head -1 t.csv)"
grep -q '^model.layers.0.self_attn.q_proj.weight,128x128,fp4/64 dq (bf16),bfloat16,true,fp4,64,true,16384,' t.csv ||
	die "CSV q_proj line: $(grep q_proj t.csv | head -1)"
$QINSPECT -n "$M/tiny-llama-nf4" "$M/tiny-llama" 2>plan.txt >out.txt
[ "$(grep -c '^qinspect: compare' plan.txt)" = 20 ] || die "dry run: $(cat plan.txt)"
