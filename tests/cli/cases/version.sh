# --version and -V: one line on stdout naming the tool and the library, with the version of libquant.h.
. "$CLIDIR/lib.sh"
v=$(sed -n 's/^#define LQ_VERSION_STRING "\(.*\)"/\1/p' "$CLIDIR/../../libquant/include/libquant.h")
[ -n "$v" ] || die "no LQ_VERSION_STRING in libquant.h"
for o in --version -V; do
	out=$($NF4QUANT $o) || die "$o: exit status $?"
	[ "$out" = "nf4quant $v (libquant $v)" ] || die "$o printed '$out', expected 'nf4quant $v (libquant $v)'"
done
