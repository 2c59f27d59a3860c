# Tensors in only one of the two are listed, in the table and the JSON; a shape that differs is an
# error naming both.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$QINSPECT "$M/tiny-llama-nf4" "$FIXTURES/peft/merged/plain_r8__bf16base.safetensors" >t.txt
grep -q "only in $M/tiny-llama-nf4: model.embed_tokens.weight" t.txt || die "no only-in line: $(tail -5 t.txt)"
$QINSPECT --json "$FIXTURES/peft/merged/embed_mts__bf16base.safetensors" "$M/tiny-llama" >r.json
grep -q '"only_in_checkpoint":[[:space:]]*\["lm_head.weight"\]' r.json || die "JSON only_in_checkpoint: $(grep -A2 only_in_checkpoint r.json)"
TOOL=qinspect
fails "$M/tiny-qwen2" "$M/tiny-llama"
case $msg in *"is [256, 64] in"*"and [384, 128] in"*) ;; *) die "shape message: $msg" ;; esac
