#!/bin/sh
# run_tune.sh: the brief `cser tune` search of CSER's (R_C1, R_C2, H) at R_C 256 and 1024
# (study A protocol: cnn, Fashion-MNIST, 8 workers, batch 16). Resumable: a ratio whose
# tune.txt exists is skipped. Results: experiments/runs/tune/rc*/tune.txt.
set -eu
cd "$(dirname "$0")/.."
for rc in 256 1024; do
    out=experiments/runs/tune/rc$rc
    [ -s "$out/tune.txt" ] && continue
    mkdir -p "$out"
    build/cser tune --method cser --rc "$rc" --batch 16 --budget-steps 300 \
        --lr-grid 0.0125,0.025,0.05 --quiet --out "$out" > "$out/tune.txt.tmp" 2>&1
    mv "$out/tune.txt.tmp" "$out/tune.txt"
    rm -f "$out/checkpoint.bin"
done
