#!/bin/sh
# run_python_overhead.sh: the overhead of cser.torch.Optimizer in a PyTorch training
# step (bench/python_overhead.py: torch.optim.SGD vs cser sgd vs CSER at R_C 256, one
# worker, interleaved in one process); min and median over repetitions; writes
# docs/bench/python_overhead.md.
# Usage: bench/run_python_overhead.sh BUILD_DIR [REPS] [STEPS]
set -eu
BUILD=${1:-build}
REPS=${2:-15}
STEPS=${3:-20}
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
OUT=docs/bench/python_overhead.md
mkdir -p docs/bench
LIB=$BUILD/libcser.so
[ -e "$LIB" ] || { echo "run_python_overhead.sh: $LIB not built (make)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1 CSER_LIBRARY="$PWD/$LIB"
# the same OpenBLAS kernel override as run_nn.sh (OpenBLAS 0.3.21 misdetects some
# virtual CPUs); it applies to every side alike
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    if grep -q avx512_bf16 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Cooperlake
    elif grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -q avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell
    fi
fi
TMP=$(mktemp)
trap 'rm -f "$TMP"' EXIT
"$PY" bench/python_overhead.py "$REPS" "$STEPS" > "$TMP"
TORCH=$("$PY" -c 'import torch; print(torch.__version__)')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

"$PY" - "$TMP" > "$OUT.tmp" <<PYEOF
import re, statistics, sys
rows = [re.match(r"side=(\S+) rep=(\d+) step_ms=([0-9.]+) opt_us=([0-9.]+)", l).groups()
        for l in open(sys.argv[1]) if l.startswith("side=")]
t, u = {}, {}
for s, r, v, w in rows:
    t.setdefault(s, {})[int(r)] = float(v)
    u.setdefault(s, []).append(float(w))
base = t["torch"]
print("## Python: cser.torch.Optimizer overhead (bench/run_python_overhead.sh)")
print()
print("One training step (zero_grad + forward + backward + optimizer step) of the torch")
print("\`cnn\` (bench/nn_torch.py, the architecture of src/nn/models.c), batch 32, one thread,")
print("a fixed random batch, ONE worker; momentum 0.9, Nesterov, weight decay 1e-4. The three")
print("optimizers run interleaved in one process: each of $REPS repetitions runs $STEPS steps")
print("of every side, in a rotating order. ratio = side / torch.optim.SGD: the median of")
print("the per-repetition ratios, and the ratio of the best (minimum) step times.")
print()
print("| optimizer | best ms/step | median ms/step | ratio (median) | ratio (best) | target |")
print("|---|---|---|---|---|---|")
def ratio(s, ref):
    rs = [t[s][r] / ref[r] for r in t[s] if r in ref]
    return statistics.median(rs), min(t[s].values()) / min(ref.values())
names = {"torch": "torch.optim.SGD", "cser-sgd": "cser.torch.Optimizer(method=\"sgd\")",
         "cser-256": "cser.torch.Optimizer(method=\"cser\", rc=256)"}
targets = {"torch": None, "cser-sgd": 1.05, "cser-256": 1.10}
for s in ("torch", "cser-sgd", "cser-256"):
    v = list(t[s].values())
    med, best = ratio(s, base)
    tg = targets[s]
    ok = "" if tg is None else ("<= %.2f: %s" % (tg, "met" if med <= tg else "NOT met"))
    print("| %s | %.2f | %.2f | %.3f | %.3f | %s |"
          % (names[s], min(v), statistics.median(v), med, best, ok))
med, best = ratio("cser-256", t["cser-sgd"])
print()
print("CSER at R_C 256 over cser sgd (the cost of the compression itself, one worker):")
print("%.3f (median of per-repetition ratios), %.3f (best)." % (med, best))
print()
print("The optimizer's step() alone (the same sides, a separate model with fixed")
print("gradients, $STEPS calls per repetition), microseconds per call, and its share of the")
print("median torch.optim.SGD training step:")
print()
print("| optimizer | best us | median us | median / median training step |")
print("|---|---|---|---|")
tm = statistics.median(base.values()) * 1e3
for s in ("torch", "cser-sgd", "cser-256"):
    print("| %s | %.0f | %.0f | %.2f%% |" % (names[s], min(u[s]), statistics.median(u[s]),
                                            100 * statistics.median(u[s]) / tm))
print()
print("With one worker no bytes move; what is measured is the binding (parameter views")
print("into the C model buffer, one flat gradient buffer copied once into the step's")
print("scratch) and the method's local work (CSER: GRBS block selection and packing).")
print()
print("Machine: $CPU, PyTorch $TORCH, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}. The")
print("machine is shared with other jobs; its load during the run was: $LOAD.")
PYEOF
mv "$OUT.tmp" "$OUT"
cat "$OUT"
