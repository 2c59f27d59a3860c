# Adapter variants whose merge is not W + s B A (here QALoRA) are refused with the reason.
. "$CLIDIR/lib.sh"
TOOL=loramerge
mkdir -p ../qalora
cp "$FIXTURES/peft/adapters/plain_r8/adapter_model.safetensors" ../qalora/
sed 's/"use_qalora": false/"use_qalora": true/' "$FIXTURES/peft/adapters/plain_r8/adapter_config.json" >../qalora/adapter_config.json
grep -q '"use_qalora": true' ../qalora/adapter_config.json || die "could not write the config"
fails_cleanly "$FIXTURES/models/tiny-llama" ../qalora -o out
