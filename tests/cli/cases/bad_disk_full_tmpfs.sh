# A really full filesystem: a small tmpfs in a private mount namespace (needs root and unshare -m;
# skipped, said on stdout, where they are missing). The output does not fit, then only a carried file
# (a large README.md) does not: each time exit 1, "cannot write" (the second time from the free-space check
# made before any work, which counts the carried files), nothing left on the filesystem.
# A skip prints "SKIP: why" on stdout and exits 0; the runner reports it.
. "$CLIDIR/lib.sh"
if [ -z "${NF4QUANT_IN_NS:-}" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: bad_disk_full_tmpfs needs root to mount a tmpfs (bad_disk_full covers it with ulimit -f)"
		exit 0
	fi
	if ! unshare -m true 2>/dev/null; then
		echo "SKIP: bad_disk_full_tmpfs: unshare -m does not work here (bad_disk_full covers it with ulimit -f)"
		exit 0
	fi
	exec env NF4QUANT_IN_NS=1 unshare -m sh -eu "$0"
fi
mkdir in small
cp "$FIXTURES/models/tiny-llama/"* in/
head -c 300000 /dev/zero | tr '\0' 'x' >in/README.md
if ! mount -t tmpfs -o size=200k tmpfs small 2>/dev/null; then
	echo "SKIP: bad_disk_full_tmpfs: cannot mount a tmpfs here (bad_disk_full covers it with ulimit -f)"
	exit 0
fi
cd small
fails "$FIXTURES/models/tiny-llama" -o out
case $msg in *"cannot write '"*) ;; *) die "not a write error: $msg" ;; esac
cd ..
umount small
mount -t tmpfs -o size=480k tmpfs small
cd small
fails ../in -o out
# the free space is checked before any work: the carried README.md is counted in
case $msg in *"cannot write 'out': "*" bytes needed, "*" free on its file system"*) ;; *) die "not the space check: $msg" ;; esac
[ "$rc" = 1 ] || die "exit status $rc, expected 1"
