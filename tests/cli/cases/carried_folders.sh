# What a model directory's folders and links carry, and what they do not, each entry left out said at the
# default verbosity (one line, its name and why), by nf4quant and by loramerge:
# - files in folders are carried with their paths, down to 8 folders deep; deeper ones are not;
# - weights in a folder that modules.json does not name (onnx/model.onnx, another copy of the model) are
#   not; hidden entries (.git/, .cache/) are not, nor a FIFO (which is never opened);
# - a link that stays in the model directory is followed (the copy is a regular file); a link that
#   leads out of it (../secret.txt, /etc/hostname) is not followed, so nothing from outside the model
#   ends up in the output; a link to a folder is not followed, a dangling one is said.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/"* in/
mkdir -p in/extra/sub in/onnx in/.git in/a/b/c/d/e/f/g/h/i in/a/b/c/d/e/f/g/h2
printf 'notes\n' >in/extra/notes.txt
printf 'deeper\n' >in/extra/sub/deep.txt
printf 'onnx\n' >in/onnx/model.onnx
printf '{"opset": 17}\n' >in/onnx/config.json
printf 'ref: refs/heads/main\n' >in/.git/HEAD
printf 'too deep\n' >in/a/b/c/d/e/f/g/h/i/x.txt
printf 'deep enough\n' >in/a/b/c/d/e/f/g/h2/y.txt
printf 'secret\n' >secret.txt
ln -s ../secret.txt in/secret.txt
ln -s ../../secret.txt in/extra/secret2.txt
ln -s extra/notes.txt in/notes_link.txt
ln -s extra in/extra_link
ln -s missing.txt in/dangling.txt
mkfifo in/extra/fifo
$NF4QUANT in -o out 2>err
for line in \
	'nf4quant: not carried: .git/: hidden' \
	'nf4quant: not carried: a/b/c/d/e/f/g/h/i/: deeper than 8 folders' \
	'nf4quant: not carried: dangling.txt: a symbolic link that leads nowhere (No such file or directory)' \
	'nf4quant: not carried: extra/fifo: not a regular file' \
	'nf4quant: not carried: extra/secret2.txt: a symbolic link that leads outside the model directory' \
	'nf4quant: not carried: extra_link: a symbolic link to a folder (not followed)' \
	'nf4quant: not carried: onnx/model.onnx: weights in another file' \
	'nf4quant: not carried: secret.txt: a symbolic link that leads outside the model directory'; do
	grep -qF -- "$line" err || die "stderr lacks '$line': $(cat err)"
done
[ "$(grep -c 'not carried' err)" = 8 ] || die "not 8 notes: $(cat err)"
got=$(cd out && find . | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ')
want=". MANIFEST a a/b a/b/c a/b/c/d a/b/c/d/e a/b/c/d/e/f a/b/c/d/e/f/g a/b/c/d/e/f/g/h2 a/b/c/d/e/f/g/h2/y.txt config.json extra extra/notes.txt extra/sub extra/sub/deep.txt generation_config.json model.safetensors notes_link.txt onnx onnx/config.json "
[ "$got" = "$want" ] || die "out holds: $got"
test -f out/notes_link.txt && ! test -L out/notes_link.txt || die "notes_link.txt is not a regular file"
cmp out/notes_link.txt in/extra/notes.txt
! grep -rq secret out || die "a file from outside the model directory was carried"
$QINSPECT --verify out >/dev/null
# loramerge says the same; -q says nothing
$LORAMERGE in "$FIXTURES/peft/adapters/plain_r8" -o merged 2>err
[ "$(grep -c '^loramerge: not carried: ' err)" = 8 ] || die "loramerge: $(cat err)"
$NF4QUANT -q in -o quiet 2>err
[ ! -s err ] || die "-q printed: $(cat err)"
# a .safetensors output carries nothing, and says nothing about it
$NF4QUANT in/model.safetensors -o one.safetensors 2>err
! grep -q 'not carried' err || die "$(cat err)"
