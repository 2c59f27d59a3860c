# --compute-dtype fp16/fp32/bf16 is recorded in quantization_config (default: the weights' bf16) and
# changes nothing else: the tensors are those of the default conversion.
. "$CLIDIR/lib.sh"
ref="$FIXTURES/models/tiny-llama-nf4"
grep -q '"bnb_4bit_compute_dtype": "bfloat16"' "$ref/config.json" || die "reference config.json changed"
nf4_config "$ref/config.json" >config.json.want
for p in fp16:float16 fp32:float32 bf16:bfloat16; do
	$NF4QUANT -q --compute-dtype ${p%%:*} "$FIXTURES/models/tiny-llama" -o ${p%%:*}
	grep -q "^    \"bnb_4bit_compute_dtype\": \"${p#*:}\",\$" ${p%%:*}/config.json || die "${p%%:*}: not in config.json"
	sed "s/\"bnb_4bit_compute_dtype\": \"${p#*:}\"/\"bnb_4bit_compute_dtype\": \"bfloat16\"/" ${p%%:*}/config.json |
		cmp - config.json.want || die "${p%%:*}: config.json differs elsewhere"
	$STCMP ${p%%:*} "$ref"
done
