# nf4quant - -o -: a safetensors stream in, one out, read and written in one pass each; the tensors are
# those of -o FILE (in the stream's order), bit for bit, whatever the thread count.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
f="$M/tiny-llama/model.safetensors"
$NF4QUANT -q --device cpu "$f" -o file.safetensors
cat "$f" | $NF4QUANT -q --device cpu -T 1 - -o - | cat >s1.safetensors
cat "$f" | $NF4QUANT -q --device cpu -T 2 - -o - >s2.safetensors
cmp s1.safetensors s2.safetensors || die "the stream depends on the thread count"
$STCMP s1.safetensors file.safetensors || die "the stream's tensors differ from the file's"
python3 -c "
import struct,sys
b=open('s1.safetensors','rb').read(); n=struct.unpack('<Q',b[:8])[0]
import json; h=json.loads(b[8:8+n]); h.pop('__metadata__')
end=max(v['data_offsets'][1] for v in h.values())
sys.exit(0 if len(b)==8+n+end else 1)" || die "the stream is not a whole safetensors file"
# a stream from a pipe into a file and into a bundle work too
cat "$f" | $NF4QUANT -q --device cpu - -o f2.safetensors
cmp f2.safetensors file.safetensors || die "stdin to a file differs from the file input"
# a truncated stream, and one with bytes after it, fail
head -c 100000 "$f" | { rc=0; $NF4QUANT -q - -o - >t.safetensors 2>e || rc=$?; [ $rc = 1 ]; } || die "a truncated stream did not fail"
grep -q "standard input" e || die "no message naming standard input: $(cat e)"
{ cat "$f"; echo junk; } | { rc=0; $NF4QUANT -q - -o - >t.safetensors 2>e || rc=$?; [ $rc = 1 ]; } || die "trailing bytes accepted"
grep -q "bytes follow the last tensor" e || die "trailing bytes: $(cat e)"
