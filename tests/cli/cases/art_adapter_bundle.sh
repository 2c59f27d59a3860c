# An adapter may come as a bundle too (.tar.zst or .tar of its directory, read in place): the merge is
# the one from the directory, for several adapters in order and a DoRA one; a bundle that is no adapter,
# or holds only a pickle, is refused with the archive named.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models/tiny-llama"
AD="$FIXTURES/peft/adapters"
mkdir src && cp -r "$AD/plain_r8" "$AD/dora_r8" src/
tar -C src -cf - plain_r8 | zstd -q >plain.tar.zst      # with its top directory, as users make them
(cd src/dora_r8 && tar -cf ../../dora.tar *)            # plain entries, uncompressed
$LORAMERGE -q --device cpu "$M" "$AD/plain_r8" "$AD/dora_r8:0.5" -o from-dirs
$LORAMERGE -q --device cpu "$M" plain.tar.zst dora.tar:0.5 -o from-bundles
diff -r from-dirs from-bundles || die "the merge of bundled adapters differs from the directories'"
# the base in a bundle as well
tar -C "$FIXTURES/models" -cf - tiny-llama | zstd -q >base.tar.zst
$LORAMERGE -q --device cpu base.tar.zst plain.tar.zst dora.tar:0.5 -o from-all-bundles
diff -r from-dirs from-all-bundles || die "base and adapters from bundles differ"
# not an adapter: the archive is named
(cd "$M" && tar -cf - config.json) >model.tar
rc=0; $LORAMERGE -q "$M" model.tar -o out 2>e || rc=$?
[ $rc = 1 ] && grep -q "model.tar' holds no adapter_config.json" e || die "a bundle without an adapter: exit $rc, $(cat e)"
# only a pickle
mkdir pk && cp "$AD/plain_r8/adapter_config.json" pk/ && printf 'x' >pk/adapter_model.bin
(cd pk && tar -cf ../pk.tar *)
rc=0; $LORAMERGE -q "$M" pk.tar -o out 2>e || rc=$?
[ $rc = 1 ] && grep -q "'pk.tar' holds only adapter_model.bin, a pickle" e || die "a bundled pickle: exit $rc, $(cat e)"
# a hostile archive is refused by the bundle reader's rules
ln -s /etc/passwd src/plain_r8/link
tar -C src -cf - plain_r8 >link.tar
rc=0; $LORAMERGE -q "$M" link.tar -o out 2>e || rc=$?
[ $rc = 1 ] && grep -q "link.tar: entry 'plain_r8/link' is a symbolic link" e ||
	die "an adapter bundle with a link: exit $rc, $(cat e)"
[ ! -e out ] || die "a refused adapter left output"
exit 0
