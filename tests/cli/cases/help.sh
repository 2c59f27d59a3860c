# --help and -h: the usage on stdout, every option named, nothing on stderr, exit 0, nothing written.
. "$CLIDIR/lib.sh"
for h in --help -h; do
	out=$($NF4QUANT $h) || die "$h: exit status $?"
	printf '%s\n' "$out" | grep -q '^Usage: nf4quant \[OPTION\]\.\.\. INPUT -o OUTPUT$' || die "$h: no usage line"
	for opt in --output --quant-type --blocksize --no-double-quant --compute-dtype --include --exclude \
		--max-shard-size --threads --force --dry-run --json --quiet --verbose --help --version; do
		printf '%s\n' "$out" | grep -q -e "$opt" || die "$h: $opt not described"
	done
	[ -z "$($NF4QUANT $h 2>&1 >/dev/null)" ] || die "$h: something on stderr"
done
[ -z "$(ls -A)" ] || die "files written: $(ls -A)"
