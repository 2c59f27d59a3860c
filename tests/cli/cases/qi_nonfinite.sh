# Elements that are not finite (NaN or infinite) fail every gate, on whichever side they are, and are
# counted per tensor and overall in the table, the JSON and the CSV; no figure leaves them out and looks
# good. nan_model holds one NaN in up_proj, nan_norm_model one in model.norm (the reference side here);
# a tensor wholly NaN is written here.
. "$CLIDIR/lib.sh"
D="$CLIDIR/data"
# st_f32 FILE DATA: a safetensors file of one F32 tensor 'w' [4] (DATA: 16 bytes, as printf writes them)
st_f32() {
	h='{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
	printf "\\$(printf %03o ${#h})\\000\\000\\000\\000\\000\\000\\000%s$2" "$h" >"$1"
}
for gate in "--max-rel-err 1e30" "--max-rmse 1e30" "--max-abs-err 1e30" "--min-snr -1e30" "--min-cosine -2"; do
	rc=0
	$QINSPECT -q "$D/nan_model" "$D/nan_norm_model" $gate >out 2>err || rc=$?
	[ "$rc" = 1 ] || die "$gate: exit status $rc, expected 1: $(cat err)"
	grep -q "gate ${gate% *} .* failed by 2 tensors:" err || die "$gate: $(cat err)"
	grep -q "^qinspect:   model.layers.0.mlp.up_proj.weight: 1 element not finite (NaN or infinite)$" err ||
		die "$gate: up_proj (NaN in the checkpoint) not named: $(cat err)"
	grep -q "^qinspect:   model.norm.weight: 1 element not finite" err ||
		die "$gate: model.norm (NaN in the reference) not named: $(cat err)"
	grep -q embed_tokens err && die "$gate: the identical embeddings failed: $(cat err)"
done
# the table: the rows, and the count overall with each side's share
$QINSPECT "$D/nan_model" "$D/nan_norm_model" >t.txt
grep -q '^model.layers.0.mlp.up_proj.weight .* inf .* -inf .*  1 not finite$' t.txt || die "table row: $(cat t.txt)"
grep -q '^not finite (NaN or infinite): 2 elements in 2 tensors, 1 in the checkpoint and 1 in the reference$' t.txt ||
	die "table count: $(cat t.txt)"
grep -q '^error of all 4 compared tensors, 272 elements: rel_err inf, SNR -inf dB, cosine -, RMSE inf, max |error| inf (in model.layers.0.mlp.up_proj.weight)$' t.txt ||
	die "table total: $(cat t.txt)"
# the JSON: every figure of those tensors and of the total null, the counts there
$QINSPECT --json "$D/nan_model" "$D/nan_norm_model" >r.json
grep -q '"schema":[[:space:]]*3,' r.json || die "not schema 3"
[ "$(grep -c '"rmse":[[:space:]]*null' r.json)" = 3 ] || die "JSON rmse null: $(grep rmse r.json)"
[ "$(grep -c '"nonfinite_reference":[[:space:]]*1' r.json)" = 2 ] || die "JSON reference count: $(cat r.json)"
# the CSV
$QINSPECT --csv "$D/nan_model" "$D/nan_norm_model" | tr -d '\r' >c.csv
grep -q '^model.norm.weight,16,bf16,bfloat16,false,,,,16,32,16,,,,,,15,1,1,inf,inf,9,inf,-inf,,false,0,1,,tensor$' c.csv ||
	die "CSV: $(grep norm c.csv)"
grep -q '^,,,,,,,,272,.*,270,.*,2,inf,inf,,inf,-inf,,false,1,1,,total_all$' c.csv || die "CSV total: $(tail -1 c.csv)"
# a tensor wholly NaN against ones: no element left to compare, and no figure that looks good
st_f32 nan.safetensors '\000\000\300\177\000\000\300\177\000\000\300\177\000\000\300\177'
st_f32 one.safetensors '\000\000\200\077\000\000\200\077\000\000\200\077\000\000\200\077'
rc=0
$QINSPECT --json nan.safetensors one.safetensors --max-abs-err 1e30 >all.json 2>err || rc=$?
[ "$rc" = 1 ] || die "a tensor wholly NaN passed: $(cat all.json)"
grep -q '"elements":[[:space:]]*0,' all.json && grep -q '"nonfinite":[[:space:]]*4,' all.json ||
	die "wholly NaN counts: $(cat all.json)"
grep -q '"rel_err":[[:space:]]*0' all.json && die "wholly NaN: rel_err 0"
grep -q '"max_abs_err_index":[[:space:]]*0,' all.json || die "the first NaN is not where the error is"
# infinity in the checkpoint, NaN in the reference
rc=0
$QINSPECT -q "$D/inf_model" "$D/nan_model" --max-rel-err 1 2>err || rc=$?
[ "$rc" = 1 ] || die "inf against NaN passed"
grep -q "up_proj.weight: 2 elements not finite" err || die "inf against NaN: $(cat err)"
