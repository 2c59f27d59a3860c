#!/bin/sh
# pack_bnb.sh [DIR]: bitsandbytes 0.50.2 for the GPU machine, which has torch and transformers but not
# bitsandbytes and no network (shared/device/README.md). Downloads the wheel here, unpacks it into DIR
# (default .bnb, git-ignored through .git/info/exclude) and keeps only the CUDA 13.0 library that the
# machine's torch (cu130) loads and the CPU one: the whole wheel unpacks to 124 MB, past the 64 MiB a
# device call may carry; this leaves about 10 MB. Then carry [".gpu", ".bnb"] and run with PYTHONPATH=.bnb
# (steps deq_check, bench_bnb, large_tensors, bnb_edge_cases need it).
set -eu
dir=${1:-.bnb}
py=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download -q bitsandbytes==0.50.2 --no-deps --only-binary=:all: --python-version 3.12 \
	--platform manylinux_2_24_x86_64 -d "$tmp"
rm -rf "$dir"
mkdir -p "$dir"
"$py" -m zipfile -e "$tmp"/bitsandbytes-0.50.2-*.whl "$dir"
for f in "$dir"/bitsandbytes/libbitsandbytes_*.so; do
	case $(basename "$f") in
	libbitsandbytes_cuda130.so | libbitsandbytes_cpu.so) ;;
	*) rm -f "$f" ;;
	esac
done
grep -qx '/.bnb/' .git/info/exclude 2>/dev/null || echo /.bnb/ >>.git/info/exclude
du -sh "$dir"
