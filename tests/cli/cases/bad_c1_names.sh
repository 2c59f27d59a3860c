# Characters that steer a terminal, in a tensor name, are shown as '?' in the -n plan, the -v lines and the
# messages, as control characters are: C1 controls (U+0085, U+009B: CSI), the line separator U+2028, the
# bidirectional override U+202E and isolate U+2066 (C0 controls are refused in names); in a path, a byte
# that is not UTF-8 and ESC too. (C1 controls and the others were printed raw.)
. "$CLIDIR/lib.sh"
le64() { # the little-endian 8 bytes of a number
	_n=$1
	for _i in 1 2 3 4 5 6 7 8; do
		printf "\\$(printf '%03o' $((_n % 256)))"
		_n=$((_n / 256))
	done
}
# one F32 [1, 64] tensor whose first element is NaN
name='bad\302\205\302\233\342\200\250\342\200\256\342\201\246end.weight'
printf "{\"$name\":{\"dtype\":\"F32\",\"shape\":[1,64],\"data_offsets\":[0,256]}}" >h
{ le64 "$(wc -c <h)"; cat h; printf '\000\000\300\177'; head -c 252 /dev/zero; } >w.safetensors
rm h
shown='bad?????end.weight'
ascii_only() { # ascii_only WHAT FILE: nothing but printable ASCII and newlines
	[ "$(tr -d '\040-\176\n' <"$2" | wc -c)" = 0 ] || die "$1: other bytes: $(od -c "$2" | head -5)"
}
$NF4QUANT -n --include '*' w.safetensors -o q.safetensors >plan 2>&1
ascii_only "-n" plan
grep -qF "quantize  $shown F32 [1, 64]" plan || die "-n: $(cat plan)"
$NF4QUANT -n -v --json --include '*' w.safetensors -o q.safetensors >/dev/null 2>err
ascii_only "-n -v --json" err
grep -qF "nf4quant: quantize  $shown F32 [1, 64]" err || die "-v: $(cat err)"
rm plan err
fails --include '*' w.safetensors -o q.safetensors
printf '%s\n' "$msg" >msg
ascii_only "the message" msg
case $msg in *"tensor '$shown'"*"NaN"*) ;; *) die "message: $msg" ;; esac
fails "$(printf 'no\233such\302\205file\342\200\256\033[2J')" -o out
[ "$msg" = "nf4quant: cannot open 'no?such?file??[2J': No such file or directory" ] || die "path: $msg"
