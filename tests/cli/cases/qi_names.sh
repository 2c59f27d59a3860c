# Tensor names from a file are shown safely: the table shows control characters (C1 U+0080-U+009F among
# them, which a terminal obeys as C0 ones: U+009B is CSI) and bidirectional overrides as '?'; CSV does too,
# and defuses a field a spreadsheet would run as a formula (= + - @: an apostrophe before it, quoted); the
# HTML page shows U+FFFD; messages '?'. (Should the reader refuse such names, that is safe too: said so.)
. "$CLIDIR/lib.sh"
# st FILE VALUE: a safetensors file of four F32 tensors [1], named with C1, a bidi override, a formula
# and a leading '-', each holding VALUE (4 bytes as printf writes them)
st() {
	f='{"a\302\233[31mb\302\205.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
	f=$f'"c\342\200\256\342\200\217d.weight":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},'
	f=$f'"=HYPERLINK(\\"http://x\\",\\"y\\")":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},'
	f=$f'"-e.weight":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}'
	h=$(printf "$f")
	n=$(printf '%s' "$h" | wc -c)
	{
		printf "\\$(printf %03o $((n % 256)))\\$(printf %03o $((n / 256)))\\000\\000\\000\\000\\000\\000"
		printf '%s' "$h"
		printf "$2$2$2$2"
	} >"$1"
}
st n.safetensors '\000\000\200\077'
st m.safetensors '\000\000\000\100'
# hex bytes of a file on one line: C1 is c2 80..9f, the overrides e2 80 aa..ae and e2 81 a6..a9
raw() { od -An -tx1 -v "$1" | tr -s ' \n' '  '; }
unsafe() { raw "$1" | grep -qE ' c2 [89][0-9a-f]| e2 80 a[a-e]| e2 81 a[6-9]| e2 80 8[ef]| d8 9c| 1b '; }
rc=0
$QINSPECT n.safetensors m.safetensors --max-abs-err 0 >t.txt 2>err || rc=$?
if [ "$rc" = 1 ] && grep -q "control character" err && [ ! -s t.txt ]; then
	echo "note: the reader refuses these names; nothing of them is shown"
	exit 0
fi
[ "$rc" = 1 ] || die "exit status $rc: $(cat err)"
unsafe t.txt && die "the table shows control characters or overrides: $(raw t.txt)"
unsafe err && die "the messages show control characters or overrides: $(raw err)"
grep -q '^a?\[31mb?\.weight ' t.txt && grep -q '^c??d\.weight ' t.txt || die "table: $(cat t.txt)"
$QINSPECT -n n.safetensors m.safetensors 2>plan.txt
unsafe plan.txt && die "-n shows control characters: $(raw plan.txt)"
$QINSPECT --csv n.safetensors m.safetensors >c.csv
unsafe c.csv && die "CSV shows control characters or overrides: $(raw c.csv)"
grep -q "^\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",1," c.csv || die "CSV formula: $(cat c.csv)"
grep -q "^\"'-e.weight\",1," c.csv || die "CSV leading '-': $(cat c.csv)"
grep -q '^a?\[31mb?\.weight,1,' c.csv || die "CSV C1: $(cat c.csv)"
$QINSPECT -q --html r.html n.safetensors m.safetensors 2>/dev/null || true
unsafe r.html && die "the page holds control characters or overrides"
grep -q "$(printf 'a\357\277\275\[31mb')" r.html || die "the page does not show U+FFFD"
exit 0
