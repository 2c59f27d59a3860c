# The summary line counts what happened to the tensors and says which merge was done (man loramerge,
# "Which base the adapter is added to"); -v and --json count the same. dora_r8 changes 6 of tiny-llama's 14
# linear weights; --base-as and --requantize used to count all 14 as "merged".
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
A="$FIXTURES/peft/adapters/dora_r8"
summary() { # summary WANT ARG...: the summary line of a merge into out, after "loramerge: out: "
	_want=$1
	shift
	_line=$($LORAMERGE "$@" -o out 2>&1 >/dev/null | grep -v -e warning -e base_shift) || die "$*: failed"
	rm -rf out
	case $_line in "loramerge: out: $_want; "*" -> "*", "*" s") ;; *) die "$*: $_line" ;; esac
}
summary "6 tensors merged into the float weights, 14 copied" "$M/tiny-llama" $A
summary "6 tensors merged into the nf4 quantize-dequantize of the float weights (--base-as nf4), 8 quantize-dequantized, 6 copied" \
	--base-as nf4 "$M/tiny-llama" $A
summary "6 tensors merged into the fp4 quantize-dequantize of the float weights, requantized to fp4 (--requantize), 8 quantized, 6 copied" \
	--requantize --quant-type fp4 "$M/tiny-llama" $A
summary "6 tensors merged into the dequantized 4-bit weights, 8 dequantized, 6 copied" "$M/tiny-llama-nf4" $A
summary "6 tensors merged into the dequantized 4-bit weights, requantized in the base's 4-bit format (--requantize), 14 copied" \
	--requantize "$M/tiny-llama-nf4" $A
summary "6 tensors merged into the float weights, 14 converted" --dtype fp32 "$M/tiny-llama" $A
# -v: one line per tensor with what became of it, the same counts
$LORAMERGE -v --requantize "$M/tiny-llama" $A -o out 2>err >/dev/null
for c in "merge 6" "quantize 8" "copy 6"; do
	[ "$(grep -cE "^loramerge: ${c% *} +model" err)" = "${c#* }" ] || die "-v --requantize: not ${c#* } '${c% *}' lines: $(cat err)"
done
grep -q '^loramerge: 6 tensors merged into the nf4 quantize-dequantize of the float weights, requantized to nf4 (--requantize), 8 quantized, 6 copied (20 tensors): ' err ||
	die "-v --requantize: no totals: $(cat err)"
rm -rf out
# --json: the same counts
$LORAMERGE -q --json --base-as nf4 "$M/tiny-llama" $A -o out >s.json
python3 - s.json <<'PY' || die "--json: $(cat s.json)"
import json, sys
s = json.load(open(sys.argv[1]))
t = s["totals"]
want = {"tensors": 20, "merged": 6, "replaced": 0, "dequantized": 8, "quantized": 0, "converted": 0, "copied": 6}
assert {k: t[k] for k in want} == want, t
assert s["requantize"] is False and s["base_kind"].startswith("float, merged as 4-bit"), s
assert sorted(x["action"] for x in s["tensors"]).count("dequantize") == 8
PY
