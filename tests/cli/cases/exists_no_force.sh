# An OUTPUT that exists, directory or file, without -f: exit 1, said, and the old output untouched.
. "$CLIDIR/lib.sh"
echo old >out.safetensors
fails "$FIXTURES/models/tiny-llama" -o out.safetensors
[ "$(cat out.safetensors)" = old ] || die "out.safetensors changed"
mkdir out
echo old >out/marker
fails "$FIXTURES/models/tiny-llama" -o out
[ "$(cat out/marker)" = old ] || die "out/marker changed"
exit "$rc"
