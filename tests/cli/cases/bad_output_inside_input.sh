# OUTPUT inside the INPUT directory (a later run would carry it over as part of the model), however
# spelled: exit 1, said, nothing written.
. "$CLIDIR/lib.sh"
cp -R "$FIXTURES/models/tiny-llama" in
ln -s in alias
fails in -o in/nf4
fails alias -o in/nf4.safetensors
fails_cleanly in -o alias/nf4
