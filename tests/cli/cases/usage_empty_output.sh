# -o '' (an empty OUTPUT, as "$UNSET_VARIABLE" gives): a usage error at once, before any reading, for
# nf4quant and loramerge; nothing written.
. "$CLIDIR/lib.sh"
usage_error "$FIXTURES/models/tiny-llama" -o ''
case $msg in *"empty OUTPUT"*) ;; *) die "nf4quant: $msg" ;; esac
# with an input that is never read: the refusal comes first
mkfifo never-read
usage_error never-read -o ''
TOOL=loramerge
usage_error "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8" -o ''
case $msg in *"empty OUTPUT"*) ;; *) die "loramerge: $msg" ;; esac
exit "$rc"
