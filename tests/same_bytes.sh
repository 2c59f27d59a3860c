#!/bin/sh
# same_bytes.sh OLD_BUILD NEW_BUILD [CASE...]: do two builds give the same bytes? Each BUILD is a build
# directory with nf4quant, loramerge, qinspect and stcmp (`make all build/stcmp`); gen_model is taken from
# either (`make build/gen_model`). Written for issue 13 (a refactor whose every output must stay the same):
#
#   git worktree add --detach /tmp/old BASE && make -C /tmp/old -j2 all build/stcmp build/gen_model
#   make all build/stcmp && tests/same_bytes.sh /tmp/old/build build
#
# What runs, once with each build:
#  - every command-line case, tests/cli/cases/NAME.sh, exactly as tests/cli/run.sh runs it (a fresh empty
#    $WORK, the same variables, CLI_PREFIX honoured), the golden cases among them;
#  - extra/texts: what the cases only capture into variables: --help and --version of every tool, the
#    dry-run plans (plain and --json) and -v summaries on the shipped models, qinspect's table, CSV, JSON
#    and HTML;
#  - extra/large_model: commands on a generated model larger than the fixtures (tests/bench/gen_model.c,
#    2 layers of widths 2048/5632, vocabulary 4096: 239 MB of bf16 in 3 shards, MLP weights of 11.5 M
#    elements, cut into several chunks by the executor; rank-16 LoRA and rank-8 DoRA adapters from
#    tests/bench/gen_adapter.py): nf4quant (NF4, and FP4 blocksize 128 into a bundle), loramerge (bf16,
#    DoRA into the NF4 base, --requantize, --base-as nf4), each with --json, the dry runs, qinspect with
#    --json, --csv and --html, and --verify. The model and adapters are generated once, for both runs.
# What a case only captures into a variable and tests is compared through what the case does with it
# (its exit status and messages); extra/texts prints the texts that matter.
# Both runs of a case use the same paths: the case's $WORK is ROOT/run/NAME, and the programs are
# ROOT/bin/PROGRAM, ROOT/bin a link to the build being run; after its run, a case's directory is moved
# aside (ROOT/old, ROOT/new). So neither the temporary directory nor the build directory appears in
# what is compared.
#
# What is compared, per case: the exit status; every entry under $WORK (type, mode, link target) and
# every regular file byte for byte (outputs, bundles, MANIFESTs, reports, HTML pages, captured stderr);
# the case's standard output and standard error. Where bytes differ in text (no NUL byte: streams,
# captured messages, JSON, CSV, HTML), both sides are compared again after normalising, and only this:
#   wall-clock times   "0.02 s" (a decimal number, then " s")      -> "T s"
#   rates              "1.2 GB/s", "850 MB/s"                      -> "R GB/s", "R MB/s"
#   --json times       "seconds": 0.0123                           -> "seconds": T
#   temporary names    .NAME.tmp-XXXXXX (also .archive-, .old-, .base-as-) and .qinspect-XXXXXX,
#                      the tools' names beside an output: the six random characters -> XXXXXX
#   process ids        the shell's job lines, "sh: 1: 12345 Killed"  -> "PID Killed"
# (the paths of the build and of the temporary directories need none: they are the same, see above).
# Counts, sizes, memory estimates and every other figure are compared as they are: a change to one is
# shown. Binary files (a NUL byte) are never normalised. The line of a case says which of its streams
# and files were equal only once normalised.
#
# What is the same between two runs of one build must be the same between the builds; EXEMPT below lists
# the little that is not (found by running OLD = NEW = one build many times), each with its reason: an
# input the case makes with the clock in it, a stream that depends on a race in the case, or a whole case
# compared on its exit status only (none needs that today).
#
# Prints one line per case: "same", "status" (exempt but for its exit status, which is equal), "skip"
# (the case skipped itself in both runs: SKIP on stdout) or "DIFFERS" with, below it, each differing
# stream or file and its first differing line (or byte); then a summary. A note follows a case that
# fails as a test in both runs (its exit status is not NAME.sh.exit's): the same, but it compared less
# than it should. Exit status: 0 when everything is the same, 1 when anything differs, 2 on a usage error.
# The unit and golden tests of build/test_unit compare with fixtures, not between builds: the new build's
# `make check` covers them.
#
# The cases, fixtures and generators are this tree's: run it from the tree whose tests should judge
# (CASE... names the cases to run, e.g. only those an older tree has; "extra/texts" and
# "extra/large_model" name the extra ones). SAME_BYTES_KEEP=1 keeps the runs (the directory is named).
# About 3 minutes on 2 cores; CLI_PREFIX (valgrind) as for run.sh.
set -u
usage() {
	echo "usage: same_bytes.sh OLD_BUILD NEW_BUILD [CASE...]" >&2
	exit 2
}
[ $# -ge 2 ] || usage
top=$(cd "$(dirname "$0")/.." && pwd)
old=$(cd "$1" 2>/dev/null && pwd) || { echo "same_bytes.sh: no directory '$1'" >&2; usage; }
new=$(cd "$2" 2>/dev/null && pwd) || { echo "same_bytes.sh: no directory '$2'" >&2; usage; }
shift 2
for b in "$old" "$new"; do
	for p in nf4quant loramerge qinspect stcmp; do
		[ -x "$b/$p" ] || { echo "same_bytes.sh: no $b/$p (make all $(basename "$b")/stcmp)" >&2; exit 2; }
	done
done
export LC_ALL=C

# What differs between two runs of one build (found by running OLD = NEW = one build, many times), and
# is therefore not compared: "NAME: status: why" compares the exit status only; "NAME: epipe: why" drops
# the lines "PROGRAM: cannot write to standard output: Broken pipe" from its standard error; "NAME:
# FILE...: why" compares all but the contents of these files under $WORK.
EXEMPT="
art_adapter_bundle: plain.tar.zst dora.tar pk.tar link.tar: inputs the case archives with tar from files it copied or wrote: their mtimes are inside
art_bundle_hostile: traversal.tar.zst absolute.tar.zst symlink.tar.zst hardlink.tar.zst nested.tar.zst folder.tar.zst fifo.tar.zst duplicate.tar.zst truncated.tar.zst: inputs the case archives (Python's tarfile, tar) from files it copied: their mtimes are inside
art_bundle_read_back: in.tar.zst: an input the case archives with tar from files it copied: their mtimes are inside
bad_module_weights: in.tar: an input the case archives with tar from files it wrote: their mtimes are inside
blocksize: epipe: nf4quant --json --dry-run (4971 bytes, two writes) | grep -q: grep may exit before the second write, or not
no_double_quant: epipe: nf4quant --json --dry-run (4973 bytes, two writes) | grep -q: grep may exit before the second write, or not
"
# exempt NAME: "WHAT: why" for case NAME, nothing when all of it is compared
exempt() {
	printf '%s\n' "$EXEMPT" | sed -n "s|^$1: ||p"
}

root=$(mktemp -d "${TMPDIR:-/tmp}/lq-same-XXXXXX") || exit 2
if [ "${SAME_BYTES_KEEP:-0}" = 1 ]; then
	trap 'echo "runs kept in $root"' EXIT
else
	trap 'rm -rf "$root"' EXIT
fi
trap 'exit 130' INT TERM HUP
mkdir "$root/run" "$root/old" "$root/new" "$root/cmp" "$root/input"
export NF4QUANT="${CLI_PREFIX:-} $root/bin/nf4quant"
export LORAMERGE="${CLI_PREFIX:-} $root/bin/loramerge"
export QINSPECT="${CLI_PREFIX:-} $root/bin/qinspect"
export STCMP="$root/bin/stcmp"
export FIXTURES="$top/fixtures"
export CLIDIR="$top/tests/cli"

# ------------------------------------------------------------------------------------- the extra cases
# Written into ROOT and run as cases are; INPUT (the generated model and adapters) is outside $WORK.
export INPUT="$root/input"
cat >"$root/texts.sh" <<'EOF'
M="$FIXTURES/models"
A="$FIXTURES/peft/adapters"
for t in "$NF4QUANT" "$LORAMERGE" "$QINSPECT"; do
	$t --help
	$t --version
done
$NF4QUANT -n "$M/tiny-llama" -o out
$NF4QUANT -n --json --quant-type fp4 --blocksize 128 "$M/tiny-llama-sharded" -o out.tar.zst
$NF4QUANT -n --no-double-quant --compute-dtype float32 --max-shard-size 100K "$M/tiny-llama" -o out
$LORAMERGE -n "$M/tiny-llama" "$A/plain_r8" "$A/dora_r8:0.5" -o out
$LORAMERGE -n --json "$M/tiny-llama-nf4" "$A/plain_r8" -o out
$LORAMERGE -n --json --base-as nf4 "$M/tiny-llama" "$A/rslora_r16" -o out
$LORAMERGE -n --json --requantize "$M/tiny-llama-nf4" "$A/plain_r8" -o out
$NF4QUANT -v -T 2 "$M/tiny-llama" -o nf4 2>nf4.err
$NF4QUANT -v --quant-type fp4 "$M/tiny-llama-sharded" -o fp4.tar.zst 2>fp4.err
$LORAMERGE -v "$M/tiny-llama" "$A/dora_r8" -o merged 2>merged.err
$LORAMERGE -v --base-as nf4 "$M/tiny-llama" "$A/plain_r8" -o merged-as-nf4 2>merged-as-nf4.err
$LORAMERGE -v --requantize nf4 "$A/plain_r8" -o merged-nf4 2>merged-nf4.err
$QINSPECT "$M/tiny-llama-nf4"
$QINSPECT nf4 "$M/tiny-llama"
$QINSPECT -v --csv fp4.tar.zst "$M/tiny-llama-sharded"
$QINSPECT --json merged-nf4 merged
$QINSPECT --html report.html nf4 "$M/tiny-llama"
$QINSPECT --verify fp4.tar.zst
EOF
cat >"$root/large_model.sh" <<'EOF'
M="$INPUT/model"
$NF4QUANT -n "$M" -o m-nf4
$NF4QUANT -n --json "$M" -o m-nf4
$NF4QUANT --json "$M" -o m-nf4
$NF4QUANT --json --quant-type fp4 --blocksize 128 -T 2 "$M" -o m-fp4.tar.zst
$LORAMERGE -n "$M" "$INPUT/lora" -o merged
$LORAMERGE -n --json "$M" "$INPUT/lora" -o merged
$LORAMERGE -n --base-as nf4 "$M" "$INPUT/dora" -o merged
$LORAMERGE --json "$M" "$INPUT/lora" -o merged
$LORAMERGE --json m-nf4 "$INPUT/dora" -o merged-dora
$LORAMERGE --json --requantize m-nf4 "$INPUT/lora" -o merged-nf4
$LORAMERGE --json --base-as nf4 --max-shard-size 80MB "$M" "$INPUT/lora" -o merged-as-nf4
$QINSPECT --json m-nf4 "$M" >m-nf4.json
$QINSPECT --csv m-fp4.tar.zst "$M" >m-fp4.csv
$QINSPECT --html m-nf4.html m-nf4 "$M"
$QINSPECT merged-nf4 merged
$QINSPECT --verify m-fp4.tar.zst
EOF

# ------------------------------------------------------------------------------------------ running
# run SIDE NAME SCRIPT: the case as tests/cli/run.sh runs it, with SIDE's build, into ROOT/SIDE/NAME
# (the tree), NAME.out, NAME.err, NAME.rc.
run() {
	_b=$old
	[ "$1" = new ] && _b=$new
	rm -f "$root/bin"
	ln -s "$_b" "$root/bin"
	export WORK="$root/run/$2"
	mkdir -p "$WORK"
	(cd "$WORK" && sh -eu "$3") >"$WORK.out" 2>"$WORK.err"
	echo $? >"$WORK.rc"
	mkdir -p "$(dirname "$root/$1/$2")"
	for _x in "" .out .err .rc; do
		mv "$WORK$_x" "$root/$1/$2$_x"
	done
}

# ---------------------------------------------------------------------------------------- comparing
# norm FILE: FILE with what legitimately differs between two runs replaced (see the top).
norm() {
	sed -E \
		-e 's/("seconds":[[:space:]]*)-?[0-9][0-9.eE+-]*/\1T/g' \
		-e 's/(^|[^[:alnum:]_.])[0-9]+\.[0-9]+ s($|[^[:alnum:]_])/\1T s\2/g' \
		-e 's/(^|[^[:alnum:]_.])[0-9]+(\.[0-9]+)? ([kKMGTP]i?B|B)\/s($|[^[:alnum:]_])/\1R \3\/s\4/g' \
		-e 's/(\.(tmp|archive|old|base-as)-)[[:alnum:]]{6}/\1XXXXXX/g' \
		-e 's/(\.qinspect-)[[:alnum:]]{6}/\1XXXXXX/g' \
		-e 's/^([^ ]*: [0-9]+: )[0-9]+ (Killed|Terminated|Hangup|Interrupt|Aborted|Done)/\1PID \2/' \
		"$1"
}
# text FILE: no NUL byte in it
text() {
	[ "$(tr -d '\000' <"$1" | wc -c)" = "$(wc -c <"$1")" ]
}
# first A B: where A and B (which differ) first differ: the line of each, or for binary files the byte
first() {
	_c=$(cmp "$1" "$2" 2>&1)
	_at=$(printf '%s' "$_c" | sed -n 's/.* \([0-9][0-9]*\), line \([0-9][0-9]*\)$/\1 \2/p')
	case $_c in
	*empty*) _at="0 0" ;;
	*EOF*) _at=$(printf '%s' "$_c" | sed -n 's/.* after [a-z]* \([0-9][0-9]*\), line \([0-9][0-9]*\)$/\1 \2/p') ;;
	esac
	set -- "$1" "$2" ${_at:-0 0}
	if text "$1" && text "$2"; then
		case $_c in *EOF*) set -- "$1" "$2" "$3" $(($4 + 1)) ;; esac
		echo "line $4: old: $(sed -n "${4}p" "$1" | cut -c1-200)"
		echo "        new: $(sed -n "${4}p" "$2" | cut -c1-200)"
	else
		case $_c in
		*EOF*) _at="one ends after byte $3" ;;
		*) _at="first difference at byte $3" ;;
		esac
		echo "old $(wc -c <"$1") bytes, new $(wc -c <"$2") bytes, $_at"
	fi
}
# same_bytes A B WHAT: A and B are the same, byte for byte or, both text, once normalised (then WHAT
# is added to ROOT/cmp/normalised)
same_bytes() {
	cmp -s "$1" "$2" && return 0
	text "$1" && text "$2" || return 1
	norm "$1" >"$root/cmp/a"
	norm "$2" >"$root/cmp/b"
	cmp -s "$root/cmp/a" "$root/cmp/b" || return 1
	printf '%s\n' "$3" >>"$root/cmp/normalised"
}
# detail WHAT A B: the line saying how A and B differ
detail() {
	if text "$1" && text "$2"; then
		norm "$1" >"$root/cmp/a"
		norm "$2" >"$root/cmp/b"
		printf '    %s: %s\n' "$3" "$(first "$root/cmp/a" "$root/cmp/b")"
	else
		printf '    %s: %s\n' "$3" "$(first "$1" "$2")"
	fi
}
# listing DIR: every entry under DIR with its type, mode and (a link) target, names quoted
listing() {
	(cd "$1" && find . -exec stat -c '%F %a %N' {} + | sort)
}
# compare NAME: prints what differs between ROOT/old/NAME* and ROOT/new/NAME*, nothing when the same
compare() {
	_o="$root/old/$1" _n="$root/new/$1"
	[ "$(cat "$_o.rc")" = "$(cat "$_n.rc")" ] || echo "    exit status: old $(cat "$_o.rc"), new $(cat "$_n.rc")"
	_x=$(exempt "$1")
	_x=${_x%%: *}
	[ "$_x" = status ] && return
	same_bytes "$_o.out" "$_n.out" stdout || detail "$_o.out" "$_n.out" stdout
	if [ "$_x" = epipe ]; then
		_e='/^[a-z0-9]*: cannot write to standard output: Broken pipe$/d'
		sed "$_e" "$_o.err" >"$root/cmp/eo"
		sed "$_e" "$_n.err" >"$root/cmp/en"
		same_bytes "$root/cmp/eo" "$root/cmp/en" stderr || detail "$root/cmp/eo" "$root/cmp/en" stderr
	else
		same_bytes "$_o.err" "$_n.err" stderr || detail "$_o.err" "$_n.err" stderr
	fi
	listing "$_o" >"$root/cmp/lo"
	listing "$_n" >"$root/cmp/ln"
	cmp -s "$root/cmp/lo" "$root/cmp/ln" || {
		norm "$root/cmp/lo" >"$root/cmp/lo.n"
		norm "$root/cmp/ln" >"$root/cmp/ln.n"
		if cmp -s "$root/cmp/lo.n" "$root/cmp/ln.n"; then
			echo "entries" >>"$root/cmp/normalised"
		else
			echo "    entries: $(diff "$root/cmp/lo.n" "$root/cmp/ln.n" | grep '^[<>]' | head -3 |
				sed 's/^</old:/;s/^>/new:/' | sed '$!s/$/;/' | tr '\n' ' ')"
		fi
	}
	# every regular file of the old tree that the new one has as a regular file too
	(cd "$_o" && N="$_n" find . -type f -exec sh -c '
		for f do
			[ -f "$N/$f" ] && [ ! -L "$N/$f" ] && printf "%s\n" "$f"
		done' sh {} + | sort) >"$root/cmp/files"
	while IFS= read -r _f; do
		case " $_x " in *" ${_f#./} "*) continue ;; esac
		same_bytes "$_o/$_f" "$_n/$_f" "${_f#./}" || detail "$_o/$_f" "$_n/$_f" "${_f#./}"
	done <"$root/cmp/files"
}

# ------------------------------------------------------------------------------------------- cases
if [ $# -gt 0 ]; then
	cases=$(for c in "$@"; do echo "$c"; done)
else
	cases=$(cd "$top/tests/cli/cases" && ls *.sh | sed 's/\.sh$//')
	cases="$cases
extra/texts
extra/large_model"
fi
case $cases in
*extra/large_model*)
	gen=$new/gen_model
	[ -x "$gen" ] || gen=$old/gen_model
	[ -x "$gen" ] || { echo "same_bytes.sh: no gen_model in either build (make build/gen_model)" >&2; exit 2; }
	t0=$(date +%s)
	{
		"$gen" "$INPUT/model" 2 2048 5632 4096 100000000 &&
			python3 "$top/tests/bench/gen_adapter.py" "$INPUT/lora" 2 2048 5632 16 &&
			python3 "$top/tests/bench/gen_adapter.py" "$INPUT/dora" 2 2048 5632 8 dora
	} >"$root/input.log" 2>&1 || { cat "$root/input.log" >&2; echo "same_bytes.sh: cannot make the large model" >&2; exit 2; }
	echo "input of extra/large_model: $(du -sh "$INPUT/model" | cut -f1) model, adapters, $(($(date +%s) - t0)) s"
	;;
esac

echo "old: $old"
echo "new: $new"
same=0
differs=0
status=0
skip=0
failing=""
differing=""
start=$(date +%s)
for name in $cases; do
	name=${name#cli/}
	case $name in
	extra/*) script="$root/${name#extra/}.sh" want=0 label=$name ;;
	*)
		script="$top/tests/cli/cases/$name.sh" label="cli/$name"
		[ -f "$script" ] || { echo "same_bytes.sh: no case $name" >&2; exit 2; }
		want=0
		[ -f "$script.exit" ] && want=$(cat "$script.exit")
		;;
	esac
	t0=$(date +%s)
	: >"$root/cmp/normalised"
	run old "$name" "$script"
	run new "$name" "$script"
	compare "$name" >"$root/cmp/result"
	secs=$(($(date +%s) - t0))
	note=""
	rc_old=$(cat "$root/old/$name.rc")
	[ "$rc_old" = "$want" ] || [ "$rc_old" != "$(cat "$root/new/$name.rc")" ] || {
		note=" (fails as a test in both: exit $rc_old, expected $want)"
		failing="$failing $label"
	}
	reason=$(exempt "$name")
	case ${reason%%: *} in
	status) ;;
	epipe) reason="stderr's 'Broken pipe' lines: ${reason#*: }" ;;
	?*)
		_k=$(printf '%s\n' "${reason%%: *}" | wc -w | tr -d ' ')
		[ "$_k" = 1 ] && reason="${reason%%: *}: ${reason#*: }" || reason="$_k files: ${reason#*: }"
		;;
	esac
	normalised=$(sort -u "$root/cmp/normalised" | cut -c1-60 | tr '\n' ' ' | sed 's/ $//')
	[ -z "$normalised" ] || normalised="; same once normalised: $normalised"
	if [ -s "$root/cmp/result" ]; then
		differs=$((differs + 1))
		differing="$differing $label"
		echo "DIFFERS $label, ${secs} s$note"
		# the first 10 differences (a difference: a line, and a second for a text's new line)
		awk '/^    [^ ]/ { n++ } n <= 10 { print } END { if (n > 10) printf "    ... and %d more\n", n - 10 }' \
			"$root/cmp/result"
	elif [ "${reason%%: *}" = status ]; then
		status=$((status + 1))
		echo "status  $label: exit status $rc_old in both; nothing else compared: ${reason#*: }$note"
	elif grep -q '^SKIP:' "$root/old/$name.out" && grep -q '^SKIP:' "$root/new/$name.out"; then
		skip=$((skip + 1))
		echo "skip    $label: $(grep -m1 '^SKIP:' "$root/new/$name.out" | sed 's/^SKIP: *//')$note"
	else
		same=$((same + 1))
		echo "same    $label, ${secs} s$normalised${reason:+; not compared: $reason}$note"
	fi
	[ "${SAME_BYTES_KEEP:-0}" = 1 ] ||
		rm -rf "$root/old/$name" "$root/new/$name" "$root/old/$name".* "$root/new/$name".*
done
echo "same_bytes: $same same, $status compared on exit status only, $skip skipped in both, $differs differ${differing:+:$differing}; $(($(date +%s) - start)) s"
[ -z "$failing" ] || echo "same_bytes: fail as tests in both builds:$failing"
[ $differs = 0 ]
