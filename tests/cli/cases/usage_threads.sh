# -T/--threads: negative, not a number, empty or absurdly large is a usage error naming the value.
. "$CLIDIR/lib.sh"
for v in -1 abc '' 2x 4097; do
	usage_error -T "$v" "$FIXTURES/models/tiny-llama" -o out
done
usage_error --threads=-1 "$FIXTURES/models/tiny-llama" -o out
