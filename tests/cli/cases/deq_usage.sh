# The options that only quantizing takes are refused with -d, each named; --dtype without -d, and an
# unknown --dtype, are usage errors.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models/tiny-llama-nf4"
for opt in "--quant-type fp4" "--blocksize 128" "--no-double-quant" "--compute-dtype fp32" "--include *" "--exclude *"; do
	set -f
	usage_error -d $opt "$M" -o out
	set +f
	printf '%s\n' "$msg" | grep -qF "nf4quant: ${opt%% *} is for quantizing: -d takes each tensor's quantization from its quant_state" ||
		die "$opt: $msg"
done
usage_error --dtype fp32 "$FIXTURES/models/tiny-llama" -o out
printf '%s\n' "$msg" | grep -qF -- "--dtype is for -d" || die "$msg"
usage_error -d --dtype int8 "$M" -o out
printf '%s\n' "$msg" | grep -qF "invalid --dtype 'int8' (bf16, fp16 or fp32)" || die "$msg"
$NF4QUANT --help | grep -q -- '-d, --dequantize' || die "--help lacks -d"
