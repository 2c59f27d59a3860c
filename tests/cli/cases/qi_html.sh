# --html writes one self-contained page (no external resources, no scripts) beside the table; an existing
# file is refused without -f; the page is checked in a real browser by tests/html (make check).
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$QINSPECT -q --html report.html "$M/tiny-llama-nf4" "$M/tiny-llama"
[ -s report.html ] || die "no report.html"
grep -q '<svg' report.html || die "no inline SVG"
grep -qiE '<script|<link|src="http|href="http' report.html && die "the page loads something or runs a script"
TOOL=qinspect
fails -q --html report.html "$M/tiny-llama-nf4" "$M/tiny-llama"
case $msg in *"report.html"*"exists"*) ;; *) die "message: $msg" ;; esac
$QINSPECT -q -f --html report.html "$M/tiny-llama-nf4" "$M/tiny-llama"
[ "$(ls)" = "report.html" ] || die "left behind: $(ls)"
