# An OUTPUT whose name is as long as a name may be (255 bytes): every temporary name beside it (the
# temporary output, the archive of a bundle, the old output set aside by -f, loramerge's --base-as
# scratch file) is cut to fit, and nothing is left beside the output.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models/tiny-llama"
long=$(printf '%243s' '' | tr ' ' a)
dir=${long}dddddddddddd               # 255 bytes
file=${long}.safetensors              # 255 bytes
bundle=$(printf '%247s' '' | tr ' ' b).tar.zst # 255 bytes
[ ${#dir} = 255 ] && [ ${#file} = 255 ] && [ ${#bundle} = 255 ] || die "the names are not 255 bytes"
$NF4QUANT -q "$M" -o "$dir"
$STCMP "$dir" "$FIXTURES/models/tiny-llama-nf4"
$NF4QUANT -q -f "$M" -o "$dir"
$STCMP "$dir" "$FIXTURES/models/tiny-llama-nf4"
$NF4QUANT -q "$M" -o "$file"
$STCMP "$file" "$FIXTURES/models/tiny-llama-nf4/model.safetensors"
$NF4QUANT -q "$M" -o "$bundle"
$NF4QUANT -q -f "$M" -o "$bundle"
$LORAMERGE -q -f --base-as nf4 "$M" "$FIXTURES/peft/adapters/plain_r8" -o "$dir"
[ "$(ls -A | wc -l)" = 3 ] || die "left beside: $(ls -A)"
# one byte more is the file system's to refuse
fails "$M" -o "${dir}x"
