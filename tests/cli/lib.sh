# lib.sh: helpers for the command-line cases, which source it with `. "$CLIDIR/lib.sh"`.
# POSIX sh and POSIX utilities (find, grep, sed, od) with coreutils; no python.

DATA="$CLIDIR/data"
TRY="Try 'nf4quant --help' for more information."

# die MESSAGE: fails the case with status 99, a status no nf4quant run gives.
die() {
	printf 'FAILED: %s\n' "$*" >&2
	exit 99
}

# Everything under the working directory, one path a line, hidden entries included.
listing() {
	find . | sort
}

# fails ARG...: runs nf4quant, which must fail: a non-zero exit status, exactly one message line on
# stderr that begins with "nf4quant: " (besides the "Try 'nf4quant --help'" line of a usage error),
# nothing on stdout, and nothing created or removed under the working directory (no OUTPUT, no hidden
# .OUTPUT.tmp-*). Sets $rc and $msg; copies the message to the case's stderr for NAME.sh.stderr.
fails() {
	_before=$(listing)
	_err=$(mktemp "${TMPDIR:-/tmp}/nf4quant-err-XXXXXX")
	rc=0
	_out=$($NF4QUANT "$@" 2>"$_err") || rc=$?
	msg=$(cat "$_err")
	rm -f "$_err"
	printf '%s\n' "$msg" >&2
	[ "$rc" != 0 ] || die "nf4quant $* succeeded"
	_after=$(listing)
	[ "$_before" = "$_after" ] ||
		die "nf4quant $* changed the working directory: $(printf '%s\n' "$_after" | grep -vxF -e "$_before" | tr '\n' ' ')"
	_n=$(printf '%s\n' "$msg" | grep -cvxF -e "$TRY") || true
	[ "$_n" = 1 ] || die "nf4quant $*: $_n message lines on stderr, expected one"
	case $msg in
	"nf4quant: "*) ;;
	*) die "nf4quant $*: the message does not begin with 'nf4quant: '" ;;
	esac
	[ -z "$_out" ] || die "nf4quant $*: printed on stdout: $_out"
}

# fails_cleanly ARG...: as fails, then ends the case with nf4quant's exit status (NAME.sh.exit checks it).
fails_cleanly() {
	fails "$@"
	exit "$rc"
}

# usage_error ARG...: as fails, with exit status 2 and the "Try 'nf4quant --help'" line.
usage_error() {
	fails "$@"
	[ "$rc" = 2 ] || die "nf4quant $*: exit status $rc, expected 2"
	printf '%s\n' "$msg" | grep -qxF -e "$TRY" || die "nf4quant $*: no \"$TRY\" line"
}

# header FILE: the JSON header of a safetensors file, whose length is the little-endian number in its
# first 8 bytes (the low four are enough for the files here).
header() {
	_f=$1
	set -- $(od -An -tu1 -N4 "$_f")
	tail -c +9 "$_f" | head -c $(($1 + 256 * $2 + 65536 * $3 + 16777216 * $4))
}
