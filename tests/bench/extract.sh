#!/bin/sh
# extract.sh BUILD_DIR MODEL_DIR WORK_DIR: loraextract's rows of `make bench` (tests/bench/run.sh): a
# rank-64 adapter from MODEL and a copy with a random full-rank change on every linear weight
# (gen_changed.py), against `cat` of both inputs, with peak memory. Prints Markdown.
set -eu
build=$1 model=$2 dir=$3
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/tools/calc.sh"
changed="$dir/$(basename "$model")-changed"
[ -f "$changed/model.safetensors" ] || python3 "$top/tests/bench/gen_changed.py" "$model" "$changed" >&2
out="$dir/extract-r64"
cat "$model/model.safetensors" "$changed/model.safetensors" >/dev/null
s=$(date +%s.%N); cat "$model/model.safetensors" "$changed/model.safetensors" >/dev/null; e=$(date +%s.%N)
t_cat=$(calc "$e - $s")
rm -rf "$out" "$dir/extract.json" "$dir/extract.rss"
s=$(date +%s.%N)
/usr/bin/time -o "$dir/extract.rss" -f %M "$build/loraextract" -q --json --rank 64 "$model" "$changed" -o "$out" >"$dir/extract.json"
e=$(date +%s.%N)
t=$(calc "$e - $s")
rss_kb=$(tail -1 "$dir/extract.rss")
n=$(grep -c '"module":' "$dir/extract.json")
echo "Inputs: $model and a copy with a random change on its $n linear weights (gen_changed.py), the modules extracted;"
echo "\`cat\` of both: $(printf %.3f "$t_cat") s. LAPACK: $(readlink -f /usr/lib/x86_64-linux-gnu/liblapack.so.3 2>/dev/null || echo '?')."
echo
echo "| command | seconds | vs cat | per module | peak RSS (MiB) |"
echo "|---|---|---|---|---|"
echo "| loraextract --rank 64 (exact SVD, double precision) | $(printf %.2f "$t") | $(calc "$t / $t_cat" | xargs printf %.0f)x | $(calc "$t / $n" | xargs printf %.2f) s | $((rss_kb / 1024)) |"
rm -rf "$out" "$dir/extract.json" "$dir/extract.rss"
