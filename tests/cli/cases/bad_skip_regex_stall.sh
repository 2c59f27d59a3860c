# An llm_int8_skip_modules entry that held regcomp for 44 s, ignoring SIGTERM (issue 12: twenty-five
# "(a*)*", 126 bytes): refused at once, exit 1, config.json and the entry named, nothing written.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/"* in/
p='(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*b'
[ ${#p} = 126 ] || die "the pattern is ${#p} bytes"
sed "1s/{/{\"llm_int8_skip_modules\": [\"$p\"],/" "$FIXTURES/models/tiny-llama/config.json" >in/config.json
# within a second (longer under a CLI_PREFIX such as valgrind)
NF4QUANT="timeout -s KILL ${CLI_PREFIX:+30}${CLI_PREFIX:-1} $NF4QUANT"
fails --dry-run in -o out
fails in -o out
exit "$rc"
