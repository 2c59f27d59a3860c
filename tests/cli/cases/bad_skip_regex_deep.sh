# An llm_int8_skip_modules entry of 30000 nested groups overflowed regcomp's stack (issue 12): nf4quant
# crashed. Refused, exit 1, nothing written; loramerge merges as ever (it does not need the list) and
# refuses --requantize and --base-as, which do.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/"* in/
open=$(awk 'BEGIN { for (i = 0; i < 30000; i++) printf "(" }')
close=$(awk 'BEGIN { for (i = 0; i < 30000; i++) printf ")" }')
printf '{"llm_int8_skip_modules": ["%sx%s"],\n' "$open" "$close" >in/config.json
tail -n +2 "$FIXTURES/models/tiny-llama/config.json" >>in/config.json
fails -n in -o out
case $msg in *"more than 64 nested groups"*) ;; *) die "no reason given: $msg" ;; esac
TOOL=loramerge
$LORAMERGE -q in "$FIXTURES/peft/adapters/plain_r8" -o merged || die "loramerge failed on a plain merge"
rm -rf merged
fails --requantize in "$FIXTURES/peft/adapters/plain_r8" -o out
case $msg in "loramerge: in/config.json: llm_int8_skip_modules entry '((("*"so which weights --requantize quantizes cannot be told") ;;
*) die "loramerge --requantize: $msg" ;; esac
fails --base-as nf4 in "$FIXTURES/peft/adapters/plain_r8" -o out
exit "$rc"
