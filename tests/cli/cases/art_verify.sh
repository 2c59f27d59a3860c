# qinspect --verify passes on good outputs (directory and bundle) and names every mismatch: a byte of a
# tensor, a missing file, an extra file, a changed config.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
TOOL=qinspect
$NF4QUANT -q --device cpu "$M/tiny-llama-sharded" -o out
$NF4QUANT -q --device cpu "$M/tiny-llama-sharded" -o out.tar.zst
$QINSPECT --verify out >v || die "verify failed on a good directory: $(cat v)"
grep -q "OK: .* files match its MANIFEST (made by nf4quant" v || die "no OK line: $(cat v)"
$QINSPECT --verify out.tar.zst >/dev/null || die "verify failed on a good bundle"
$QINSPECT --json --verify out | grep -q '"verified":[[:space:]]*true' || die "--json does not say verified"
$LORAMERGE -q --device cpu out "$FIXTURES/peft/adapters/plain_r8" -o merged
$QINSPECT --verify merged >/dev/null || die "verify failed on loramerge's output"
# the manifest records the options that shape the bytes, and only those
python3 -c "
import json, sys
o = json.load(open('merged/MANIFEST'))['options']
want = {'adapter_weights': '[1]', 'base_as': 'no', 'requantize': 'false', 'dtype': 'base', 'max_shard_size': '0'}
bad = {k: o.get(k) for k in want if o.get(k) != want[k]}
sys.exit('loramerge options: %s' % bad if bad else 0)" || die "loramerge's MANIFEST options"
cp -r out bad
# one byte of model.layers.0.self_attn.q_proj.weight's codes
f=bad/model-00001-of-00005.safetensors
off=$(python3 -c "
import json,struct,sys
b=open('$f','rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n])
t='model.layers.0.self_attn.q_proj.weight'; print(8+n+h[t]['data_offsets'][0]+3, t)")
set -- $off
printf '\377' | dd of=$f bs=1 seek=$1 conv=notrunc 2>/dev/null
rc=0; $QINSPECT --verify bad >v 2>e || rc=$?
[ $rc = 1 ] || die "a corrupted tensor: exit $rc"
grep -q "tensor '$2'" v || die "the corrupted tensor $2 is not named: $(cat v)"
rm bad/tokenizer_config.json 2>/dev/null || rm bad/generation_config.json
echo x >bad/extra.txt
rc=0; $QINSPECT --verify bad >v 2>e || rc=$?
[ $rc = 1 ] || die "missing and extra files: exit $rc"
grep -q "extra.txt" v || die "the extra file is not named: $(cat v)"
[ "$(grep -c MISMATCH v)" -ge 3 ] || die "fewer than three mismatches named: $(cat v)"
grep -q "mismatches with its MANIFEST" e || die "no summary on stderr: $(cat e)"
# no manifest at all
rm bad/MANIFEST
fails --verify bad
