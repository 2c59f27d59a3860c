# loramerge --fidelity, --min-survival (man loramerge, "What the merge keeps"): measuring a merge changes
# none of its bytes; a full-strength adapter survives a 4-bit merge, the same adapter at 1/1000 of its
# weight is erased by it; the gate fails with nothing written but the report; a float base merged as it is
# says its base_shift when measured; the report's place is checked before anything is merged. (The figures themselves
# are checked against their definitions in test_merge and, with bitsandbytes and PEFT, in
# tests/fidelity/.)
. "$CLIDIR/lib.sh"
TOOL=loramerge
M="$FIXTURES/models"
A="$FIXTURES/peft/adapters/plain_r8"
# the same bytes with and without the measurement: a 4-bit merge, a merge into a 4-bit base, a float one
for args in "--requantize $M/tiny-llama" "$M/tiny-llama-nf4" "--requantize --no-double-quant $M/tiny-llama" "$M/tiny-llama"; do
	$LORAMERGE -q $args $A -o plain || die "$args: failed"
	$LORAMERGE -q --fidelity r.json $args $A -o measured || die "$args --fidelity: failed"
	cmp plain/model.safetensors measured/model.safetensors || die "$args: --fidelity changed the output"
	python3 - r.json "$args" <<'PY' || die "$args: report: $(cat r.json)"
import json, math, sys
r = json.load(open(sys.argv[1]))
assert r["schema"] == 3 and r["tool"] == "loramerge", r
f = r["fidelity"]
assert f["thresholds"] == {"min_survival": 0.5, "max_residual": 1}, f["thresholds"]
assert len(f["modules"]) == 14 and f["overall"]["modules"] == 14, f["overall"]
assert [l["layer"] for l in f["layers"]] == [0, 1] and sum(l["modules"] for l in f["layers"]) == 14
names = [m["name"] for m in f["modules"]]
assert names == sorted(names) and names[0] == "model.layers.0.mlp.down_proj.weight", names
# a float base knows its 4-bit form's error; a 4-bit base does not
float_base = "nf4" not in sys.argv[2]
for m in f["modules"] + [f["overall"]]:
    assert m["adapter_norm"] > 0 and (m["quant_noise_norm"] is not None) == float_base, m
    assert 0.9 < m["survival"] <= 1.01 and m["erased"] is False, m
    # a float output rounds only to bf16: almost nothing is lost
    assert m["residual"] < (0.3 if "requantize" in sys.argv[2] else 0.01), m
# the overall figures are those of the summed modules
d2 = sum(m["adapter_norm"] ** 2 for m in f["modules"])
assert math.isclose(math.sqrt(d2), f["overall"]["adapter_norm"], rel_tol=1e-12)
assert f["erased"] == [] and f["overall"]["erased_modules"] == 0
PY
	rm -rf plain measured r.json
done
# the adapter at 1/1000 of its weight: below the 4-bit step, erased everywhere; the gate fails, nothing
# but the report is written
$LORAMERGE --requantize --fidelity r.json --min-survival 0.5 "$M/tiny-llama" "$A:0.001" -o out 2>err && die "the gate passed"
[ ! -e out ] || die "the output was written though the gate failed"
[ "$(grep -c "is below --min-survival 0.5" err)" = 14 ] || die "not 14 modules named: $(cat err)"
grep -q "^loramerge: 14 of 14 merged modules keep less than 0.5 of their change: nothing written but the --fidelity report$" err ||
	die "no total: $(cat err)"
python3 - r.json <<'PY' || die "erased report: $(cat r.json)"
import json, sys
f = json.load(open(sys.argv[1]))["fidelity"]
assert f["overall"]["erased_modules"] == 14 and len(f["erased"]) == 14, f["overall"]
assert all(m["survival"] < 0.1 and m["residual"] > 1 and m["base_ratio"] > 10 for m in f["modules"]), f["modules"]
PY
rm -f r.json err
# thresholds are options: nothing counts as erased when the limits say so
$LORAMERGE -q --requantize --fidelity r.json --erased-survival -10 --erased-residual 100 "$M/tiny-llama" "$A:0.001" -o out ||
	die "--erased-*: failed"
grep -q '"erased_modules":	0' r.json || die "--erased-*: $(cat r.json)"
rm -rf out r.json
# a float base merged as it is, measured: its base_shift said, and a warning where the base's 4-bit error
# is larger; unmeasured, nothing said
$LORAMERGE "$M/tiny-llama" "$A:0.001" -o out 2>err || die "float merge failed"
! grep -q base_shift err || die "base_shift measured unasked: $(cat err)"
rm -rf out
$LORAMERGE --fidelity r.json "$M/tiny-llama" "$A:0.001" -o out 2>err || die "float merge failed"
grep -q "^loramerge: base_shift (the base's 4-bit error against the adapters' change): median [0-9.e+]*, at most [0-9.e+]* in 'model\.layers\." err ||
	die "no base_shift line: $(cat err)"
grep -q "^loramerge: warning: in 14 of 14 merged modules the float base's 4-bit error is larger than the adapters' change:.*--base-as nf4" err ||
	die "no which-base warning: $(cat err)"
rm -rf out err r.json
$LORAMERGE --fidelity r.json "$M/tiny-llama" "$A" -o out 2>err || die "float merge failed"
! grep -q warning err || die "a warning for an adapter larger than the 4-bit error: $(cat err)"
rm -rf out err r.json
# --keep-float auto: the modules a 4-bit merge erases are left in float, in the skip list, and said
$LORAMERGE --requantize --keep-float auto "$M/tiny-llama" "$A:0.001" -o out 2>err || die "--keep-float auto: $(cat err)"
grep -q "; 14 modules kept in float (--keep-float): 16.000 bits per parameter, 4.559 all 4-bit; " err ||
	die "--keep-float auto: summary: $(cat err)"
h=$(header out/model.safetensors)
case $h in *'"model.layers.0.self_attn.q_proj.weight":{"dtype":"BF16"'*) ;; *) die "--keep-float auto: q_proj not bf16: $h" ;; esac
case $h in *'q_proj.weight.absmax'*) die "--keep-float auto: q_proj still 4-bit" ;; esac
grep -q '"model.layers.1.mlp.down_proj"' out/config.json || die "--keep-float auto: not in the skip list: $(cat out/config.json)"
rm -rf out err
# the full-strength adapter is kept nowhere by auto; a glob keeps what it names
$LORAMERGE --requantize --keep-float auto "$M/tiny-llama" "$A" -o out 2>err || die "--keep-float auto: $(cat err)"
! grep -q "kept in float" err || die "--keep-float auto kept a surviving adapter: $(cat err)"
rm -rf out err
$LORAMERGE --requantize --keep-float 'model.layers.0.*' "$M/tiny-llama-nf4" "$A" -o out 2>err || die "--keep-float GLOB: $(cat err)"
grep -q "; 7 modules kept in float (--keep-float): " err || die "--keep-float GLOB: $(cat err)"
python3 - out/config.json <<'PY' || die "--keep-float of a 4-bit base: config: $(cat out/config.json)"
import json, sys
q = json.load(open(sys.argv[1]))["quantization_config"]
skip = q["llm_int8_skip_modules"]
assert q["bnb_4bit_quant_type"] == "nf4" and "model.layers.0.self_attn.q_proj" in skip and "model.layers.1.self_attn.q_proj" not in skip, q
PY
rm -rf out err
usage_error --keep-float auto "$M/tiny-llama" $A -o out
# the report's place: not an input, not inside the output; not over a file without -f; not with --finish
fails -f --fidelity "$M/tiny-llama/config.json" "$M/tiny-llama" $A -o out
case $msg in *"--fidelity report '$M/tiny-llama/config.json' is"*"input"*"$M/tiny-llama"*) ;; *) die "report onto an input: $msg" ;; esac
$LORAMERGE -q "$M/tiny-llama" $A -o prev || die "merge failed"
fails -f --fidelity prev/r.json "$M/tiny-llama" $A -o prev
case $msg in *"--fidelity report 'prev/r.json' is inside the output 'prev', which the run replaces") ;; *) die "report inside the output: $msg" ;; esac
rm -r prev
touch r.json
fails --fidelity r.json "$M/tiny-llama" $A -o out
case $msg in *"'r.json' exists (use -f to replace it)"*) ;; *) die "report exists: $msg" ;; esac
rm r.json
usage_error --finish --fidelity r.json "$M/tiny-llama" $A -o out
usage_error --min-survival x "$M/tiny-llama" $A -o out
exit 0
