# --verify is a mode and PATH its operand: --verify --json PATH, --json --verify PATH and --verify PATH
# --json are the same (--verify took the next word as PATH: "--json"); what only a report uses is refused.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
TOOL=qinspect
$NF4QUANT -q --device cpu "$M/tiny-llama" -o out
for args in "--verify --json out" "--json --verify out" "--verify out --json"; do
	$QINSPECT $args >v.json 2>err || die "$args: $(cat err)"
	grep -q '"verified":[[:space:]]*true' v.json || die "$args: $(cat v.json)"
done
$QINSPECT --verify out >v.txt || die "--verify out"
grep -q "^out: OK" v.txt || die "--verify out: $(cat v.txt)"
usage_error --verify
usage_error --json --verify
usage_error --verify out out
usage_error --verify out --html r.html
usage_error --verify out --max-rel-err 0.1
usage_error --verify out --csv
# what the MANIFEST says (a bundle's author wrote it) and the names of files reach the terminal safely:
# its tool name with ESC, BEL, C1 CSI and a bidi override, a file named with an override
sed 's/"tool": "nf4quant"/"tool": "nf4\\u001b]0;x\\u0007\\u009b31m\\u202equant"/' out/MANIFEST >m && mv m out/MANIFEST
$QINSPECT --verify out >v.txt || die "--verify with an odd tool name: $(cat v.txt)"
grep -q '^out: OK: .* (made by nf4?\]0;x??31m?quant ' v.txt || die "tool name: $(od -c v.txt | head)"
printf 'x' >"out/$(printf 'a\342\200\256b')"
rc=0
$QINSPECT --verify out >v.txt 2>/dev/null || rc=$?
[ "$rc" = 1 ] && grep -q "^MISMATCH a?b: not in the manifest" v.txt || die "odd file name: $(od -c v.txt | head)"
