# -o - with standard output appended to the input itself, or written to a file in the input directory: refused
# before anything is read or written, the input intact.
. "$CLIDIR/lib.sh"
cp "$FIXTURES/models/tiny-llama/model.safetensors" in.safetensors
rc=0
$NF4QUANT in.safetensors -o - >>in.safetensors 2>err || rc=$?
[ $rc = 1 ] || die "exit status $rc, expected 1"
grep -q "standard output is the input 'in.safetensors'" err || die "message: $(cat err)"
cmp in.safetensors "$FIXTURES/models/tiny-llama/model.safetensors" || die "the input was written to"
mkdir m && cp "$FIXTURES/models/tiny-llama/"* m/
rc=0
$NF4QUANT m -o - >m/out.safetensors 2>err || rc=$?
[ $rc = 1 ] || die "inside the input directory: exit status $rc, expected 1"
grep -q "standard output is part of the input 'm'" err || die "message: $(cat err)"
