#!/bin/sh
# run.sh BUILD_DIR [CASE...]: the command-line tests.
#
# Each case is cases/NAME.sh, a shell script run in a fresh empty directory ($WORK) with:
#   NF4QUANT  the programs under test, prefixed by $CLI_PREFIX (e.g. CLI_PREFIX="valgrind -q --error-exitcode=99")
#   LORAMERGE
#   QINSPECT
#   LORAEXTRACT
#   STCMP     the tensor-by-tensor comparison tool
#   FIXTURES  the fixtures directory
#   CLIDIR    tests/cli: the helpers (. "$CLIDIR/lib.sh") and the small inputs of data/ (make_data.py;
#             data/nonfinite/: make_nonfinite.py)
# Next to it, cases/NAME.sh.exit holds the exit status the script must end with (0 when absent), and
# cases/NAME.sh.stderr, if present, lines (grep -F patterns) that its standard error must contain.
# The script itself checks whatever else matters (files present or absent, bytes equal) and fails with a
# message on stderr. A case that cannot run here prints "SKIP: why" on stdout and exits 0; the runner
# reports it as skipped, never as passed.
set -u
build=${1:?usage: run.sh BUILD_DIR [CASE...]}
shift
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$build" && pwd)
export NF4QUANT="${CLI_PREFIX:-} $build/nf4quant"
export LORAMERGE="${CLI_PREFIX:-} $build/loramerge"
export QINSPECT="${CLI_PREFIX:-} $build/qinspect"
export LORAEXTRACT="${CLI_PREFIX:-} $build/loraextract"
export STCMP="$build/stcmp"
export FIXTURES="$top/fixtures"
export CLIDIR="$top/tests/cli"
export LC_ALL=C
base=$(mktemp -d "${TMPDIR:-/tmp}/lq-cli-XXXXXX")
trap 'rm -rf "$base"' EXIT INT TERM
pass=0
fail=0
skip=0
failed=""
cd "$top/tests/cli/cases" || exit 1
if [ $# -gt 0 ]; then
	cases=$(for c in "$@"; do echo "$c.sh"; done)
else
	cases=$(ls *.sh)
fi
for c in $cases; do
	name=${c%.sh}
	export WORK="$base/$name"
	mkdir -p "$WORK"
	want=0
	[ -f "$c.exit" ] && want=$(cat "$c.exit")
	(cd "$WORK" && sh -eu "$top/tests/cli/cases/$c") >"$WORK.out" 2>"$WORK.err"
	got=$?
	ok=1
	why=""
	if [ "$got" != "$want" ]; then
		ok=0
		why="exit status $got, expected $want"
	elif [ -f "$c.stderr" ]; then
		while IFS= read -r pat; do
			[ -z "$pat" ] && continue
			if ! grep -qF -- "$pat" "$WORK.err"; then
				ok=0
				why="stderr lacks: $pat"
				break
			fi
		done <"$c.stderr"
	fi
	if [ $ok = 1 ] && grep -q '^SKIP:' "$WORK.out"; then
		skip=$((skip + 1))
		echo "skip cli/$name: $(grep -m1 '^SKIP:' "$WORK.out" | sed 's/^SKIP: *//')"
	elif [ $ok = 1 ]; then
		pass=$((pass + 1))
		echo "ok   cli/$name"
	else
		fail=$((fail + 1))
		failed="$failed $name"
		echo "FAIL cli/$name: $why"
		sed 's/^/    stdout: /' "$WORK.out" | head -20
		sed 's/^/    stderr: /' "$WORK.err" | head -20
	fi
done
echo "$pass command-line tests passed, $skip skipped, $fail failed${failed:+:$failed}"
[ $fail = 0 ]
