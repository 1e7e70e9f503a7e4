#!/bin/sh
# run_nn.sh: nn training throughput, C (bench_nn) vs PyTorch (nn_torch.py), one thread,
# side by side: every repetition launches both sides for both models, alternating
# which goes first; min and median over repetitions; writes docs/bench/nn.md.
# Usage: bench/run_nn.sh BUILD_DIR [REPS]
set -eu
BUILD=${1:-build}
REPS=${2:-5}
cd "$(dirname "$0")/.."
BENCH=$BUILD/bench/bench_nn
PY=/usr/bin/python3
OUT=docs/bench/nn.md
mkdir -p docs/bench
[ -x "$BENCH" ] || { echo "run_nn.sh: $BENCH not built (make bench)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1
DEFAULT_CORE=$("$BENCH" core)
# OpenBLAS 0.3.21 does not recognize some virtual CPUs and falls back to its generic
# Prescott kernels (3x slower). Both sides use OpenBLAS (PyTorch for its dense layers),
# so both get the same override, chosen from the CPU flags, unless one is set already.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    if grep -q avx512_bf16 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Cooperlake
    elif grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -q avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell
    fi
fi
CORE=$("$BENCH" core)
TMP=$(mktemp)
trap 'rm -f "$TMP"' EXIT

run() { # side model c h steps
    if [ "$1" = c ]; then
        "$BENCH" train "$2" "$3" "$4" "$4" 32 "$5"
    elif [ "$1" = c_im2col ]; then
        CSER_NN_DIRECT=0 "$BENCH" train "$2" "$3" "$4" "$4" 32 "$5"
    else
        "$PY" bench/nn_torch.py "$2" "$3" "$4" "$4" 32 "$5"
    fi | sed -n "s/.*imgs_per_s=\([0-9.]*\).*/$1 $2 \1/p" >> "$TMP"
}

for r in $(seq 1 "$REPS"); do
    echo "rep $r/$REPS" >&2
    if [ $((r % 2)) -eq 1 ]; then order="c torch"; else order="torch c"; fi
    for side in $order; do run "$side" cnn 1 28 100; done
    for side in $order c_im2col; do run "$side" resnet8 3 32 20; done
done

SGEMM=$(OPENBLAS_CORETYPE=$CORE "$BENCH" sgemm 20)
SGEMM_DEFAULT=$(env -u OPENBLAS_CORETYPE "$BENCH" sgemm 5 | head -1)
TORCH=$("$PY" -c 'import torch; print(torch.__version__)')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

"$PY" - "$TMP" "$REPS" > "$OUT.tmp" <<PYEOF
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def vals(side, model):
    return [float(v) for s, m, v in rows if s == side and m == model]
print("## Neural-network engine: training throughput (bench/run_nn.sh)")
print()
print("Images/s of one training step (forward + backward + plain SGD update), batch 32,")
print("ONE thread (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)), fixed random batch,")
print("the same architecture on both sides (bench/nn_torch.py mirrors src/nn/models.c).")
print("Each repetition launches C and PyTorch back to back, alternating which goes first;")
print("$REPS repetitions. best = highest images/s (the minimum step time), median = median")
print("images/s; ratio = C / PyTorch of the medians (and of the bests).")
print()
print("| model | input | C best | C median | PyTorch best | PyTorch median | ratio (median) | ratio (best) |")
print("|---|---|---|---|---|---|---|---|")
for model, inp in (("cnn", "1x28x28"), ("resnet8", "3x32x32")):
    c, t = vals("c", model), vals("torch", model)
    if not c or not t:
        print("| %s | %s | missing | | | | | |" % (model, inp)); continue
    cm, tm = statistics.median(c), statistics.median(t)
    print("| %s | %s | %.0f | %.0f | %.0f | %.0f | %.2fx | %.2fx |"
          % (model, inp, max(c), cm, max(t), tm, cm / tm, max(c) / max(t)))
c = vals("c_im2col", "resnet8")
if c and t:
    cm = statistics.median(c)
    print("| resnet8, CSER_NN_DIRECT=0 (im2col + sgemm only) | 3x32x32 | %.0f | %.0f | "
          "%.0f | %.0f | %.2fx | %.2fx |"
          % (max(c), cm, max(t), tm, cm / tm, max(c) / max(t)))
print()
print("The direct convolutions (src/nn/conv_direct.c, AVX-512) are on unless")
print("CSER_NN_DIRECT=0; the last row runs resnet8 without them in the same repetitions.")
print()
print("Machine: $CPU, PyTorch $TORCH. OpenBLAS kernel set: $CORE (OpenBLAS alone picks")
print("$DEFAULT_CORE here; OPENBLAS_CORETYPE=$CORE is set for both sides). The machine is")
print("shared with other jobs; its load during the run was: $LOAD.")
print()
print("sgemm on the cnn's GEMM shapes (batch 32, one thread, best of 20):")
print()
print("\`\`\`")
print("""$SGEMM""")
print("with OpenBLAS's own choice ($DEFAULT_CORE):")
print("""$SGEMM_DEFAULT""")
print("\`\`\`")
PYEOF
mv "$OUT.tmp" "$OUT"
cat "$OUT"
