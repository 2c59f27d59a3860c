# --max-shard-size: zero, not a size, an unknown unit, a size that overflows 64 bits, and any size with
# a .safetensors OUTPUT (one file cannot be split) are usage errors.
. "$CLIDIR/lib.sh"
for v in 0 0MB abc '' 5XB -1 1.5GB 99999999999999999999 20000000TB; do
	usage_error --max-shard-size "$v" "$FIXTURES/models/tiny-llama" -o out
done
usage_error --max-shard-size 1GB "$FIXTURES/models/tiny-llama" -o out.safetensors
