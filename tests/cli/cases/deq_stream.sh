# nf4quant -d with standard input and output: a 4-bit stream in (copied whole to TMPDIR first, since a
# group's shape is in its quant_state, after its codes; nothing left there), a float stream out, each the
# bytes of the file runs; a truncated stream, and one with bytes after it, fail with a message.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
f="$M/tiny-llama-nf4/model.safetensors"
mkdir tmp
$NF4QUANT -q -d "$f" -o file.safetensors
TMPDIR=$PWD/tmp $NF4QUANT -q -d - -o s.safetensors <"$f"
cmp s.safetensors file.safetensors || die "standard input differs from the file"
cat "$f" | TMPDIR=$PWD/tmp $NF4QUANT -q -d -T 1 - -o - | cat >s2.safetensors
$STCMP s2.safetensors file.safetensors || die "the output stream's tensors differ"
$NF4QUANT -q -d "$f" -o - >s3.safetensors
cmp s2.safetensors s3.safetensors || die "a file to standard output differs from a stream"
[ -z "$(ls -A tmp)" ] || die "left in TMPDIR: $(ls -A tmp)"
head -c 200000 "$f" | { rc=0; TMPDIR=$PWD/tmp $NF4QUANT -q -d - -o t.safetensors 2>e || rc=$?; [ $rc = 1 ]; } ||
	die "a truncated stream did not fail"
grep -q "standard input" e || die "no message naming standard input: $(cat e)"
{ cat "$f"; echo junk; } | { rc=0; $NF4QUANT -q -d - -o t.safetensors 2>e || rc=$?; [ $rc = 1 ]; } || die "trailing bytes accepted"
grep -q "bytes follow the last tensor" e || die "trailing bytes: $(cat e)"
[ ! -e t.safetensors ] || die "a failed run left its output"
[ -z "$(ls -A tmp)" ] || die "left in TMPDIR: $(ls -A tmp)"
