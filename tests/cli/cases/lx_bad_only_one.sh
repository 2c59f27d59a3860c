# A tensor in only one of the models, either way round: exit 1, the tensor named, nothing written.
. "$CLIDIR/lib.sh"
TOOL=loraextract
D=$DATA/extract
fails --rank 2 $D/base.safetensors $D/extra.safetensors -o out
printf '%s\n' "$msg" | grep -q "extra.safetensors: tensor 'model.layers.0.mlp.down_proj.weight' is not in" || die "extra: $msg"
fails_cleanly --rank 2 $D/base.safetensors $D/missing.safetensors -o out
