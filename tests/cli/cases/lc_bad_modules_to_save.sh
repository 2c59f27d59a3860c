# modules_to_save (and trainable tokens, saved embeddings): PEFT's combined adapter gets the base model's.
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
fails_cleanly --combine svd "$A/embed_mts" "$A/plain_r8" -o out
