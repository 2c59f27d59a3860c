# A 4-bit base whose double-quantization offset is beyond float32 (1e39: torch.tensor() makes it +inf, and
# with it every scale of the tensor): refused when the quant_state is read, naming the file and tensor
# (the merge had been written full of infinities and NaNs with exit status 0).
. "$CLIDIR/lib.sh"
TOOL=loramerge
mkdir -p ../nf4
cp "$FIXTURES/models/tiny-llama-nf4/"* ../nf4/
chmod u+w ../nf4/model.safetensors
# the first quant_state's nested_offset becomes 1e39, padded with spaces (JSON whitespace) to its length
set -- $(grep -abo '"nested_offset": [-0-9.e+]*' ../nf4/model.safetensors | head -1 | tr ':' ' ')
at=$(($1 + 17))
num=$(printf '%s' "$3" | wc -c)
printf '%-*s' "$num" 1e39 | dd of=../nf4/model.safetensors bs=1 seek="$at" conv=notrunc 2>/dev/null
grep -aq '"nested_offset": 1e39 ' ../nf4/model.safetensors || die "the offset was not patched"
fails_cleanly ../nf4 "$FIXTURES/peft/adapters/plain_r8" -o out
