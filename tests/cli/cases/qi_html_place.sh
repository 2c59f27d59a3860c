# The --html file never lands on, in or around what qinspect reads, -f or not: not the checkpoint or the
# reference (`qinspect -f --html X X` overwrote X), not through a link to one, not inside an input's
# directory, not the file standard output goes to; nor standard output (`--json X >> X`). A directory is never replaced; a link is replaced
# itself, never followed; nothing but the named file is written (the temporary name is short, so a
# 255-byte name works), with the umask's permissions (it was 0600). Each refusal: one message, nothing
# changed, the inputs as they were.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
TOOL=qinspect
cp -R "$M/tiny-llama-nf4" ck
cp "$M/tiny-llama-nf4/model.safetensors" x.safetensors
cp "$M/tiny-llama/model.safetensors" ref.safetensors
cp -R "$M/tiny-llama-sharded" sh
ln -s x.safetensors link.html
ln -s ck ckl
mkdir d
ln -s nowhere dangling.html
sums() { cat ck/* x.safetensors ref.safetensors sh/* | cksum; }
before=$(sums)
refused() { # refused WHAT ARG...: fails, with WHAT in the message
	_what=$1
	shift
	fails "$@"
	case $msg in *"$_what"*) ;; *) die "$*: message: $msg" ;; esac
}
refused "is the input 'x.safetensors'" -q -f --html x.safetensors x.safetensors
refused "is the input 'ref.safetensors'" -q -f --html ref.safetensors x.safetensors ref.safetensors
refused "(a link to '$(pwd)/x.safetensors') is the input" -q -f --html link.html x.safetensors
refused "is inside the input directory 'ck'" -q -f --html ck/model.safetensors ck "$M/tiny-llama"
refused "is inside the input directory 'ck'" -q --html ck/report.html ck "$M/tiny-llama"
refused "is inside the input directory 'ck'" -q --html ckl/report.html ck "$M/tiny-llama"
refused "is inside the input directory" -q --html sh/report.html sh/model.safetensors.index.json
refused "'d' is a directory" -q -f --html d x.safetensors
refused "'dangling.html' exists (use -f to replace it)" -q --html dangling.html x.safetensors
refused "cannot write 'no/such/dir/r.html'" -q --html no/such/dir/r.html x.safetensors
# standard output onto an input, or into an input's directory
for pair in x.safetensors:x.safetensors ck:ck/model.safetensors ck:ck/report.json; do
	in=${pair%%:*}
	out=${pair#*:}
	rc=0
	$QINSPECT --json "$in" >>"$out" 2>err || rc=$?
	[ "$rc" = 1 ] || die "$in >> $out: exit status $rc"
	grep -q "^qinspect: standard output .*input" err || die "$in >> $out: $(cat err)"
	[ "$(wc -l <err)" = 1 ] || die "$in >> $out: $(cat err)"
done
rc=0
$QINSPECT --verify ck >>ck/v.txt 2>err || rc=$?
[ "$rc" = 1 ] && grep -q "^qinspect: standard output .*is inside the input directory 'ck'" err || die "--verify ck >> ck/v.txt: $(cat err)"
rm ck/v.txt
# the --html file the table goes to
rc=0
$QINSPECT -f --html so.html x.safetensors >so.html 2>err || rc=$?
[ "$rc" = 1 ] && grep -q "^qinspect: --html file 'so.html' is standard output$" err || die "--html so.html > so.html: $(cat err)"
rm so.html
[ ! -s ck/report.json ] || die "qinspect wrote into ck/report.json"
rm ck/report.json
[ "$(sums)" = "$before" ] || die "an input changed"
# a dangling link replaced with -f: the link itself, its target never created; a link to another file:
# the link replaced, the file untouched
$QINSPECT -q -f --html dangling.html x.safetensors
[ -f dangling.html ] && [ ! -L dangling.html ] && [ ! -e nowhere ] || die "the dangling link was followed"
echo canary >target.txt
ln -s target.txt l2.html
$QINSPECT -q -f --html l2.html x.safetensors
[ "$(cat target.txt)" = canary ] && [ ! -L l2.html ] || die "the link's target was written"
# the permissions of every other output
umask 022
$QINSPECT -q --html m644.html x.safetensors
umask 027
$QINSPECT -q --html m640.html x.safetensors
umask 022
[ "$(stat -c %a m644.html)" = 644 ] && [ "$(stat -c %a m640.html)" = 640 ] ||
	die "modes $(stat -c %a m644.html) and $(stat -c %a m640.html), expected 644 and 640"
# any legal name: 255 bytes
long=$(printf '%0251d' 0).htm
$QINSPECT -q --html "$long" x.safetensors || die "a 255-byte name"
[ -s "$long" ] || die "no $long"
ls -A | grep -q '^\.qinspect-' && die "a temporary file left behind: $(ls -A)"
[ "$(sums)" = "$before" ] || die "an input changed"
