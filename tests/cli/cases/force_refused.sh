# What -f does not replace: a directory of files these tools did not write, an earlier output to which
# something was added (in a subdirectory, or a link where its subdirectory was), a MANIFEST that is not
# theirs, a FIFO, and an output that contains the input, also through a link (to a directory above the
# input, to /). Each: exit 1, one message, nothing created or removed, every canary file intact.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models/tiny-llama"
mkdir canaries
echo canary >canaries/keep
# a directory of someone's files, one of them in a subdirectory
mkdir -p user/sub
echo canary >user/sub/notes.txt
fails -f "$M" -o user
# an earlier output, then a file added to it
$NF4QUANT -q "$M" -o out
echo canary >out/notes.txt
fails -f "$M" -o out
rm out/notes.txt
# its subdirectory (listed by its MANIFEST) replaced by a link to the canaries
awk '{ print } /"files": \[/ { print "    {\"path\": \"sub/a.json\", \"size\": 3, \"xxh3_128\": \"00\"}," }' \
	out/MANIFEST >m && mv m out/MANIFEST
ln -s ../canaries out/sub
fails -f "$M" -o out
rm out/sub
# a MANIFEST that is not one of theirs
cp out/MANIFEST saved
echo '{"files": [{"path": "../canaries/keep"}]}' >out/MANIFEST
fails -f "$M" -o out
printf '{"manifest": 1, "files": [{"path": "/x"}]}' >out/MANIFEST
fails -f "$M" -o out
mv saved out/MANIFEST
# a FIFO
mkfifo fifo
fails -f "$M" -o fifo
# a link to a directory that holds the input: replacing it would not delete the input, but it is where
# the input is; refused
mkdir -p w/in
cp "$M"/* w/in/
ln -s w w-link
fails -f w/in -o w-link
for f in "$M"/*; do cmp "$f" "w/in/$(basename "$f")" || die "the input was damaged"; done
# a link to /, which contains every input (checked without -f: the check on the place comes first, and
# nothing could be lost to a tool that got it wrong)
ln -s / root
fails w/in -o root
case $msg in *"contains the input 'w/in'"*) ;; *) die "the link to / was not taken for what contains the input" ;; esac
test -L root || die "the link to / is gone"
[ "$(cat canaries/keep user/sub/notes.txt)" = "canary
canary" ] || die "a canary was touched"
exit 0
