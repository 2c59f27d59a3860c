#!/bin/sh
# check_report.sh HTML_FILE PNG_OUT: renders qinspect's HTML report in headless Chromium and checks what
# rendered (tests/html/check_report.py says what, in detail):
#   - the page as written: self-contained (no script, nothing fetched, a Content-Security-Policy), valid
#     UTF-8, no "nan"/"inf" in a figure or an SVG coordinate;
#   - the page as laid out: the four plots (svg#plot-rel-err, #plot-codes, #plot-absmax, #plot-bits) with
#     a real size, a point per compared tensor, 16 code bars, QI_ABSMAX_BINS absmax bars, a bar per group
#     of tensors; a table row per tensor, the gate failures marked; no SVG text cut off or overlapping
#     another, no horizontal scrolling at 1280 pixels;
#   - the screenshot (PNG_OUT, 1280x2400): not blank: enough pixels not white, several distinct colours.
# The counts come from the page's own data-* attributes, or from the environment when the caller knows
# them independently: QI_EXPECT_TENSORS, QI_EXPECT_COMPARED, QI_EXPECT_QUANTIZED, QI_EXPECT_FAILED.
# QI_CHROMIUM names the browser to use (default: the first of chromium-headless-shell, chromium,
# chromium-browser on PATH; both Debian packages pass).
# Exit status 0 when every check passed, 1 when one failed, 2 on a usage error; "SKIP: ..." and 0 when
# Chromium is not installed (Debian: apt-get install chromium-headless-shell, or chromium).
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 HTML_FILE PNG_OUT" >&2
	exit 2
fi
html=$1
png=$2
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$html" ] || { echo "check_report: no such file: $html" >&2; exit 2; }

# Debian's chromium-headless-shell is the smaller package (the old headless mode without the GUI
# libraries); the full chromium package takes the same flags.
browser=
for b in ${QI_CHROMIUM:-chromium-headless-shell chromium chromium-browser}; do
	if command -v "$b" >/dev/null 2>&1; then
		browser=$(command -v "$b")
		break
	fi
done
if [ -z "$browser" ]; then
	echo "SKIP: chromium is not installed (apt-get install chromium-headless-shell)"
	exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "check_report: python3 is needed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
# A fresh profile each run: nothing cached between runs, nothing written to $HOME. --no-sandbox: test
# machines run as root in containers, where the sandbox cannot start.
flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=$tmp/profile --window-size=1280,2400"
run() {
	if command -v timeout >/dev/null 2>&1; then timeout 120 "$@"; else "$@"; fi
}

echo "check_report: $("$browser" --version 2>/dev/null || echo "$browser")"
# 1. The page exactly as written, as a reader sees it.
rm -f "$png"
# shellcheck disable=SC2086
if ! run "$browser" $flags --screenshot="$png" "file://$abs" >"$tmp/shot.log" 2>&1 || [ ! -s "$png" ]; then
	echo "FAIL: chromium made no screenshot; its output:" >&2
	tail -20 "$tmp/shot.log" >&2
	exit 1
fi
# 2. A copy with a probe script that measures the laid-out page into the DOM (the page itself has no
# script, and its policy forbids one: the copy drops that policy), read back with --dump-dom.
python3 "$here/check_report.py" probe "$html" "$tmp/probe.html"
# shellcheck disable=SC2086
if ! run "$browser" $flags --dump-dom "file://$tmp/probe.html" >"$tmp/dom.html" 2>"$tmp/dom.log"; then
	echo "FAIL: chromium could not dump the DOM; its output:" >&2
	tail -20 "$tmp/dom.log" >&2
	exit 1
fi
python3 "$here/check_report.py" check "$html" "$tmp/dom.html" "$png"
