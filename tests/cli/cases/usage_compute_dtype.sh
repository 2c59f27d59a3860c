# --compute-dtype other than bf16, fp16 or fp32: a usage error naming the value.
. "$CLIDIR/lib.sh"
for v in fp8 int8 float ''; do
	usage_error --compute-dtype "$v" "$FIXTURES/models/tiny-llama" -o out
done
