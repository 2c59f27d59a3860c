# An adapter saved as a pickle (adapter_model.bin) is refused, never read.
. "$CLIDIR/lib.sh"
TOOL=loramerge
mkdir -p ../pickled
cp "$FIXTURES/peft/adapters/plain_r8/adapter_config.json" ../pickled/
printf 'PK\003\004 not read' >../pickled/adapter_model.bin
fails_cleanly "$FIXTURES/models/tiny-llama" ../pickled -o out
