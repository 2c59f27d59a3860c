# --blocksize that is not a power of two from 32 to 4096, or not a number: a usage error naming it.
. "$CLIDIR/lib.sh"
for v in 48 16 8192 abc '' 64k 0x40 -64 4097 0; do
	usage_error --blocksize "$v" "$FIXTURES/models/tiny-llama" -o out
done
