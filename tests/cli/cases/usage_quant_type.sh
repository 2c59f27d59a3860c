# --quant-type other than nf4 or fp4 (case matters, no blanks): a usage error naming the value.
. "$CLIDIR/lib.sh"
for v in int4 NF4 'nf4 ' ''; do
	usage_error --quant-type "$v" "$FIXTURES/models/tiny-llama" -o out
done
