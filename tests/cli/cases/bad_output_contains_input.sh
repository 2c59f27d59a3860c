# OUTPUT a directory that holds the INPUT, with -f: replacing it would delete the input. Exit 1, said,
# the input untouched.
. "$CLIDIR/lib.sh"
mkdir w
cp -R "$FIXTURES/models/tiny-llama" w/in
fails -f w/in -o w
for f in "$FIXTURES/models/tiny-llama/"*; do cmp "$f" "w/in/$(basename "$f")" || die "input damaged"; done
fails -f w/in -o .
for f in "$FIXTURES/models/tiny-llama/"*; do cmp "$f" "w/in/$(basename "$f")" || die "input damaged"; done
exit "$rc"
