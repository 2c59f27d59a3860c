# --correct needs a 4-bit Q and the float BASE of the same model: refusals, exit 1, nothing written.
. "$CLIDIR/lib.sh"
TOOL=loraextract
M=$FIXTURES/models
fails --correct --rank 2 $M/tiny-llama $M/tiny-llama -o out
printf '%s\n' "$msg" | grep -q "no 4-bit weight: --correct takes a bitsandbytes 4-bit checkpoint as Q" || die "float Q: $msg"
fails --correct --rank 2 $M/tiny-llama-nf4 $M/tiny-llama-fp4 -o out
printf '%s\n' "$msg" | grep -q "is 4-bit: BASE holds the float weights" || die "4-bit BASE: $msg"
fails_cleanly --correct --rank 2 $M/tiny-llama-nf4 $M/tiny-qwen2 -o out
