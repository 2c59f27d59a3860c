# --version and -V: one line on stdout naming the tool and the library, with the version of libquant.h.
. "$CLIDIR/lib.sh"
h="$CLIDIR/../../libquant/include/libquant.h"
part() { sed -n "s/^#define LQ_VERSION_$1 \([0-9]*\)$/\1/p" "$h"; }
v=$(part MAJOR).$(part MINOR).$(part PATCH)
case $v in [0-9]*.[0-9]*.[0-9]*) ;; *) die "no LQ_VERSION_MAJOR/MINOR/PATCH in libquant.h" ;; esac
for o in --version -V; do
	out=$($NF4QUANT $o) || die "$o: exit status $?"
	[ "$out" = "nf4quant $v (libquant $v)" ] || die "$o printed '$out', expected 'nf4quant $v (libquant $v)'"
done
