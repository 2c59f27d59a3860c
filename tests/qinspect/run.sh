#!/bin/sh
# run.sh BUILD_DIR: qinspect's figures against values computed independently in double precision
# (check_figures.py), its JSON reports against their schema (check_schema.py), and its HTML report
# rendered by a real browser (tests/html/check_report.sh; headless Chromium, installed by ./setup), and
# the --adapter report's page (tests/html/check_adapter_page.py).
set -eu
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
python3 "$top/tests/qinspect/check_figures.py" "$build/qinspect"
python3 "$top/tests/qinspect/check_schema.py" "$build/qinspect"
work=$(mktemp -d "${TMPDIR:-/tmp}/lq-qinspect-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
m="$top/fixtures/models"
# the page of a comparison with a failing gate; the counts the browser must find come from the JSON report
"$build/qinspect" -q --html "$work/report.html" --json "$m/tiny-llama-nf4" "$m/tiny-llama" --max-rel-err 0.0925 \
	>"$work/report.json" 2>"$work/gate.txt" || [ $? = 1 ]
grep -q "gate --max-rel-err 0.0925 failed by 3 tensors" "$work/gate.txt" || { cat "$work/gate.txt" >&2; exit 1; }
eval "$(python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["tensors"]
print("export QI_EXPECT_TENSORS=%d QI_EXPECT_COMPARED=%d QI_EXPECT_QUANTIZED=%d QI_EXPECT_FAILED=%d" % (
    len(t), sum(1 for x in t if x["error"]), sum(1 for x in t if x["storage"]["quantized"]),
    sum(1 for x in t if x["gate_failed"])))' "$work/report.json")"
[ "$QI_EXPECT_FAILED" -gt 0 ] || { echo "qinspect: the gate should have failed some tensors" >&2; exit 1; }
sh "$top/tests/html/check_report.sh" "$work/report.html" "$work/report.png"
# and a description (no reference, no error plot)
unset QI_EXPECT_TENSORS QI_EXPECT_COMPARED QI_EXPECT_QUANTIZED QI_EXPECT_FAILED
"$build/qinspect" -q --html "$work/describe.html" "$m/tiny-llama-fp4"
# (the output of a page that passes is its last line; all of it when one fails)
page() {
	sh "$top/tests/html/check_report.sh" "$1" "$2" >"$work/check.txt" 2>&1 || { cat "$work/check.txt"; return 1; }
	tail -1 "$work/check.txt"
}
page "$work/describe.html" "$work/describe.png"
# pages qinspect's fixtures do not make: a long name and a tensor with elements that are not finite (the
# default), 726 tensors (a 70B model's count), hostile names (every byte, malformed UTF-8, markup), made up
# by build/sample_report, which prints the counts to expect
for kind in "" "--stress 80" "--edge"; do
	eval "$("$build/sample_report" $kind "$work/sample.html" | sed -n 's/^tensors=\([0-9]*\) compared=\([0-9]*\) quantized=\([0-9]*\) failed=\([0-9]*\)$/export QI_EXPECT_TENSORS=\1 QI_EXPECT_COMPARED=\2 QI_EXPECT_QUANTIZED=\3 QI_EXPECT_FAILED=\4/p')"
	[ -n "${QI_EXPECT_TENSORS:-}" ] || { echo "sample_report $kind: no counts" >&2; exit 1; }
	page "$work/sample.html" "$work/sample.png"
	unset QI_EXPECT_TENSORS QI_EXPECT_COMPARED QI_EXPECT_QUANTIZED QI_EXPECT_FAILED
done
# the --adapter page: a float base, the adapter at a weight where some modules are erased and some not
"$build/qinspect" -q --json --html "$work/adapter.html" --adapter "$top/fixtures/peft/adapters/plain_r8:0.05" \
	"$m/tiny-llama" >"$work/adapter.json"
python3 "$top/tests/html/check_adapter_page.py" "$work/adapter.html" "$work/adapter.json"
echo "qinspect: figures, schema and HTML report checked"
