#!/bin/sh
# compare_builds.sh OLD_BIN NEW_BIN: the end-to-end commands of `make bench`, timed with two builds side by
# side in one run (a refactor must not slow anything down: `make bench BENCH_BASELINE=OLD_BIN`). Each
# command runs RUNS times (default 3) per build, the builds alternating (old, new, old, new, ...) so that
# the page cache and the machine's load treat them alike; the median is kept. The outputs of the two
# builds are compared too (cmp of the files, --json reports less their times): a faster build that writes
# other bytes is no faster.
# MODEL (default make bench's, BUILD/bench/llama7b-widths-4l) and ADAPTER (its rank-64 adapter) are the
# inputs. Prints a Markdown table: command, old seconds, new seconds, new / old (wall), new / old (CPU time).
set -eu
old=$(cd "${1:?usage: compare_builds.sh OLD_BIN NEW_BIN}" && pwd)
new=$(cd "${2:?usage: compare_builds.sh OLD_BIN NEW_BIN}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
model=${MODEL:-$top/build/bench/llama7b-widths-4l}
adapter=${ADAPTER:-$top/build/bench/lora-r64-4l}
runs=${RUNS:-3}
[ -f "$model/model.safetensors" ] || { echo "compare_builds.sh: no model at $model (make bench makes one)" >&2; exit 1; }
[ -f "$adapter/adapter_model.safetensors" ] || { echo "compare_builds.sh: no adapter at $adapter" >&2; exit 1; }
w=$(mktemp -d "${TMPDIR:-/tmp}/compare-builds-XXXXXX")
trap 'rm -rf "$w"' EXIT INT TERM

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# the inputs both builds read: the model's NF4 form (made by the old build)
"$old/nf4quant" -q --device cpu "$model" -o "$w/nf4"
cat "$model/model.safetensors" "$w/nf4/model.safetensors" >/dev/null

# row LABEL OUTPUT COMMAND: COMMAND (a shell command line) may hold @BIN@ (the build's directory) and @OUT@
# (its output, removed before each run); each build's last output (or standard output) is kept for the
# comparison.
row() {
	label=$1 output=$2 template=$3
	: >"$w/t.old" && : >"$w/t.new"
	for i in $(seq "$runs"); do
		for b in old new; do
			eval "dir=\$$b"
			rm -rf "$w/$output.$b" "$w/$output.$b.sums"
			cmd=$(printf '%s' "$template" | sed -e "s|@BIN@|$dir|g" -e "s|@OUT@|$w/$output.$b|g")
			# wall seconds and the CPU seconds (user + system) of the command and its children: the CPU
			# time shows a change in the work done where the wall time of a run that writes and syncs
			# gigabytes swings with the disk
			python3 -c 'import resource, subprocess, sys, time
t = time.time()
with open(sys.argv[2], "w") as out:
    r = subprocess.call(sys.argv[1], shell=True, stdout=out)
e = time.time() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.6f %.6f" % (e, u.ru_utime + u.ru_stime))
sys.exit(r)' "$cmd" "$w/$output.$b.stdout" >>"$w/t.$b"
			# the output's checksums kept, the output removed: a run that finds another's gigabytes in
			# the page cache pays for evicting them (measured: whichever build ran second took twice the
			# system time), so each run starts from the same state
			if [ -e "$w/$output.$b" ]; then
				(cd "$w" && find "$output.$b" -type f | sort | xargs sha256sum | sed "s|$output.$b|OUT|") >"$w/$output.$b.sums"
				rm -rf "$w/$output.$b"
			fi
		done
	done
	to=$(cut -d' ' -f1 "$w/t.old" | median) tn=$(cut -d' ' -f1 "$w/t.new" | median)
	co=$(cut -d' ' -f2 "$w/t.old" | median) cn=$(cut -d' ' -f2 "$w/t.new" | median)
	same=same
	if [ -e "$w/$output.old.sums" ]; then
		cmp -s "$w/$output.old.sums" "$w/$output.new.sums" || same="OUTPUTS DIFFER"
	else
		grep -v -e '"seconds"' "$w/$output.old.stdout" >"$w/a" || true
		grep -v -e '"seconds"' "$w/$output.new.stdout" >"$w/b" || true
		cmp -s "$w/a" "$w/b" || same="REPORTS DIFFER"
	fi
	printf '| %s | %.3f | %.3f | %.2f | %.2f | %s |\n' "$label" "$to" "$tn" "$(awk "BEGIN { print $tn / $to }")" \
		"$(awk "BEGIN { print $cn / $co }")" "$same"
}

echo "| command | old build (s) | new build (s) | new / old | CPU time new / old | outputs |"
echo "|---|---|---|---|---|---|"
row "nf4quant, directory" out "@BIN@/nf4quant -q --device cpu $model -o @OUT@"
row "nf4quant, .tar.zst bundle" out.tar.zst "@BIN@/nf4quant -q --device cpu $model -o @OUT@"
row "loramerge, rank-64 adapter, bf16 base" out "@BIN@/loramerge -q --device cpu $model $adapter -o @OUT@"
row "loramerge --base-as nf4" out "@BIN@/loramerge -q --device cpu --base-as nf4 $model $adapter -o @OUT@"
row "loramerge --requantize" out "@BIN@/loramerge -q --device cpu --requantize $model $adapter -o @OUT@"
row "qinspect, NF4 against the model (--json)" report "@BIN@/qinspect --json --device cpu $w/nf4 $model"
row "qinspect, NF4 alone (--json)" report "@BIN@/qinspect --json --device cpu $w/nf4"
