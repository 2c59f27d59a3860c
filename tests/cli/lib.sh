# lib.sh: helpers for the command-line cases, which source it with `. "$CLIDIR/lib.sh"`.
# POSIX sh and POSIX utilities (find, grep, sed, od) with coreutils; no python.

DATA="$CLIDIR/data"
# The program that fails/usage_error run: nf4quant, or loramerge, qinspect or loraextract when a case sets
# TOOL first.
TOOL=${TOOL:-nf4quant}

# The command line of $TOOL, and the last line of its usage errors.
tool_cmd() {
	case $TOOL in
	loramerge) printf '%s' "$LORAMERGE" ;;
	qinspect) printf '%s' "$QINSPECT" ;;
	loraextract) printf '%s' "$LORAEXTRACT" ;;
	*) printf '%s' "$NF4QUANT" ;;
	esac
}
try_line() {
	printf "Try '%s --help' for more information." "$TOOL"
}

# die MESSAGE: fails the case with status 99, a status no run of the tools gives.
die() {
	printf 'FAILED: %s\n' "$*" >&2
	exit 99
}

# Everything under the working directory, one path a line, hidden entries included.
listing() {
	find . | sort
}

# fails ARG...: runs $TOOL, which must fail: a non-zero exit status, exactly one message line on
# stderr that begins with "$TOOL: " (besides the "Try '$TOOL --help'" line of a usage error),
# nothing on stdout, and nothing created or removed under the working directory (no OUTPUT, no hidden
# .OUTPUT.tmp-*). Sets $rc and $msg; copies the message to the case's stderr for NAME.sh.stderr.
fails() {
	_before=$(listing)
	_err=$(mktemp "${TMPDIR:-/tmp}/$TOOL-err-XXXXXX")
	_try=$(try_line)
	rc=0
	_out=$($(tool_cmd) "$@" 2>"$_err") || rc=$?
	msg=$(cat "$_err")
	rm -f "$_err"
	printf '%s\n' "$msg" >&2
	[ "$rc" != 0 ] || die "$TOOL $* succeeded"
	_after=$(listing)
	[ "$_before" = "$_after" ] ||
		die "$TOOL $* changed the working directory: $(printf '%s\n' "$_after" | grep -vxF -e "$_before" | tr '\n' ' ')"
	_n=$(printf '%s\n' "$msg" | grep -cvxF -e "$_try") || true
	[ "$_n" = 1 ] || die "$TOOL $*: $_n message lines on stderr, expected one"
	case $msg in
	"$TOOL: "*) ;;
	*) die "$TOOL $*: the message does not begin with '$TOOL: '" ;;
	esac
	[ -z "$_out" ] || die "$TOOL $*: printed on stdout: $_out"
}

# fails_cleanly ARG...: as fails, then ends the case with $TOOL's exit status (NAME.sh.exit checks it).
fails_cleanly() {
	fails "$@"
	exit "$rc"
}

# usage_error ARG...: as fails, with exit status 2 and the "Try '$TOOL --help'" line.
usage_error() {
	fails "$@"
	[ "$rc" = 2 ] || die "$TOOL $*: exit status $rc, expected 2"
	printf '%s\n' "$msg" | grep -qxF -e "$(try_line)" || die "$TOOL $*: no \"$(try_line)\" line"
}

# header FILE: the JSON header of a safetensors file, whose length is the little-endian number in its
# first 8 bytes (the low four are enough for the files here).
header() {
	_f=$1
	set -- $(od -An -tu1 -N4 "$_f")
	tail -c +9 "$_f" | head -c $(($1 + 256 * $2 + 65536 * $3 + 16777216 * $4))
}

# await_stopped PID: until process PID has stopped itself (SIGSTOP: the tools do so at a step named by
# LQ_TEST_STOP_AT, cli.h), however slow the machine; fails the case when it has ended instead, or
# after 120 s (valgrind included).
await_stopped() {
	_i=0
	while :; do
		_state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || _state=
		[ "$_state" = T ] && return 0
		[ -n "$_state" ] && [ "$_state" != Z ] || die "process $1 ended before it stopped"
		[ $_i -lt 6000 ] || { kill -KILL "$1"; die "process $1 did not stop within 120 s"; }
		sleep 0.02
		_i=$((_i + 1))
	done
}

# nf4_config REF: config.json as transformers saved it for the shipped tiny-llama quantized (REF, whose
# llm_int8_skip_modules is null: each version's defaults), as nf4quant writes it: the same but for the
# explicit list that means the same in every transformers version (its tied output head, lm_head).
nf4_config() {
	sed 's/^    "llm_int8_skip_modules": null,$/    "llm_int8_skip_modules": [\n      "lm_head"\n    ],/' "$1"
}
