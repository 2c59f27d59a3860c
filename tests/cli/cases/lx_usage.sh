# loraextract's usage errors: exit 2, one message and the --help hint, nothing written.
. "$CLIDIR/lib.sh"
TOOL=loraextract
D=$DATA/extract
usage_error $D/base.safetensors $D/ok.safetensors -o out
printf '%s\n' "$msg" | grep -q 'no rank given: --rank R, or --energy F' || die "no rank: $msg"
usage_error --rank 2 --energy 0.9 $D/base.safetensors $D/ok.safetensors -o out
usage_error --energy 0 $D/base.safetensors $D/ok.safetensors -o out
usage_error --energy 1.5 $D/base.safetensors $D/ok.safetensors -o out
usage_error --energy nan $D/base.safetensors $D/ok.safetensors -o out
usage_error --rank 0 $D/base.safetensors $D/ok.safetensors -o out
usage_error --rank 2 --max-rank 4 $D/base.safetensors $D/ok.safetensors -o out
usage_error --rank 2 $D/base.safetensors -o out
usage_error --rank 2 $D/base.safetensors $D/ok.safetensors $D/same.safetensors -o out
usage_error --rank 2 $D/base.safetensors $D/ok.safetensors
usage_error --rank 2 $D/base.safetensors $D/ok.safetensors -o ''
usage_error --rank 2 $D/base.safetensors $D/ok.safetensors -o out.safetensors
usage_error --rank 2 $D/base.safetensors $D/ok.safetensors -o -
usage_error --rank 2 - $D/ok.safetensors -o out
usage_error --rank 2 --dtype int8 $D/base.safetensors $D/ok.safetensors -o out
usage_error --rank 2 --split half $D/base.safetensors $D/ok.safetensors -o out
usage_error --correct --embed --rank 2 $D/base.safetensors $D/ok.safetensors -o out
usage_error --bogus --rank 2 $D/base.safetensors $D/ok.safetensors -o out
$LORAEXTRACT --help | grep -q '^Usage: loraextract' || die "--help"
