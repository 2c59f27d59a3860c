# --help and the man pages say the same: every long option of one is in the other, for each tool;
# nf4quant's --help names '-' and bundles for INPUT and OUTPUT, and its man page no longer calls '-' a
# usage error; the block sizes each tool accepts are those its man page and --help list (loramerge's page
# said 64 to 4096 while it takes 32, as bitsandbytes and nf4quant do).
. "$CLIDIR/lib.sh"
MAN="$CLIDIR/../../man"
for t in nf4quant loramerge qinspect; do
	TOOL=$t
	help=$($(tool_cmd) --help) || die "$t --help"
	in_man=$(sed -n '/^\.Sh OPTIONS/,/^\.Sh [A-Z]/p' "$MAN/$t.1" | grep '^\.It ' | grep -o -- ' -[a-z][a-z0-9-]*' |
		sed 's/^ -/--/' | sort -u)
	in_help=$(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
	[ "$in_man" = "$in_help" ] ||
		die "$t: --help and man page differ: $(printf '%s\n' "$in_man" | tr '\n' ' ') / $(printf '%s\n' "$in_help" | tr '\n' ' ')"
	printf '%s\n' "$help" | grep -q 'Exit status: 0 success, 1 .*, 2 usage' || die "$t --help: no exit status"
done
help=$($NF4QUANT --help)
for w in '- (a safetensors stream on standard input)' '- (a safetensors stream on standard' '.tar.zst' 'bundle'; do
	printf '%s\n' "$help" | grep -qF -- "$w" || die "nf4quant --help lacks '$w'"
done
sed -n '/^\.Sh EXIT STATUS/,/^\.Sh /p' "$MAN/nf4quant.1" | grep -q 'not supported' &&
	die "man nf4quant: EXIT STATUS says '-' is not supported"
# the block sizes: accepted, in --help, in the man page
accepted() { # the sizes from 16 to 8192 that $TOOL takes
	for b in 16 32 64 128 256 512 1024 2048 4096 8192; do
		$(tool_cmd) -q -n --blocksize $b "$@" -o out >/dev/null 2>&1 && printf '%s ' $b
	done
}
TOOL=nf4quant
want="32 64 128 256 512 1024 2048 4096 "
[ "$(accepted "$FIXTURES/models/tiny-llama")" = "$want" ] || die "nf4quant takes $(accepted "$FIXTURES/models/tiny-llama")"
TOOL=loramerge
[ "$(accepted --base-as nf4 "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8")" = "$want" ] ||
	die "loramerge takes $(accepted --base-as nf4 "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8")"
for t in nf4quant loramerge; do
	sed -n '/^\.It Fl -blocksize/,/^\.It /p' "$MAN/$t.1" | grep -q '32, 64.*128, 256, 512, 1024, 2048 or 4096' ||
		die "man $t: --blocksize does not list 32 to 4096"
done
printf '%s\n' "$($NF4QUANT --help)" "$($LORAMERGE --help)" | grep -c -- '--blocksize N .*32, 64 (default), 128, \.\.\., 4096' |
	grep -qx 2 || die "--help: a --blocksize line without 32, 64 (default), 128, ..., 4096"
[ -z "$(ls -A)" ] || die "written: $(ls -A)"
