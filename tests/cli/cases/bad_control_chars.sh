# Control characters in a name are shown as '?' in the message: still one line, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$(printf 'no\nsuch\033[2Jmodel')" -o out
