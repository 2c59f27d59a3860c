# The arguments swapped (loramerge ADAPTER BASE): a usage error that says the base model comes first,
# whether the adapter is a directory, its adapter_config.json or a bundle, and when an ADAPTER argument is
# a model directory. It was "'ADAPTER' holds no model.safetensors" with nothing about the order.
. "$CLIDIR/lib.sh"
TOOL=loramerge
B="$FIXTURES/models/tiny-llama"
A="$FIXTURES/peft/adapters/plain_r8"
hint='the base model comes first: loramerge BASE ADAPTER... -o OUTPUT'
usage_error "$A" "$B" -o out
[ "$(printf '%s\n' "$msg" | head -1)" = "loramerge: '$A' is a PEFT adapter, not a model: $hint" ] || die "$msg"
usage_error "$A/adapter_config.json" "$B" -o out
case $msg in *"is a PEFT adapter, not a model: $hint"*) ;; *) die "adapter_config.json: $msg" ;; esac
(cd "$A" && tar -cf - *) >adapter.tar
usage_error adapter.tar "$B" -o out
case $msg in *"'adapter.tar' is a PEFT adapter, not a model: $hint"*) ;; *) die "bundle: $msg" ;; esac
# the adapter's weights file given as BASE opens as a safetensors file; the model given as ADAPTER is named
usage_error "$A/adapter_model.safetensors" "$B" -o out
[ "$(printf '%s\n' "$msg" | head -1)" = "loramerge: '$B' is a model, not a PEFT adapter: $hint" ] || die "$msg"
usage_error "$B" "$A" "$FIXTURES/models/tiny-llama-sharded" -o out
case $msg in *"tiny-llama-sharded' is a model, not a PEFT adapter: $hint"*) ;; *) die "second adapter: $msg" ;; esac
# what is neither keeps its own message
fails "$B/config.json" "$B" -o out
[ "$rc" = 1 ] || die "a file that is neither: exit $rc"
fails nowhere "$A" -o out
[ "$msg" = "loramerge: cannot open 'nowhere': No such file or directory" ] || die "$msg"
