#!/bin/sh
# ef_sgd_probe.sh: why EF-SGD with GRBS diverges (docs/RESULTS.md, "EF-SGD").
# Short runs (300 steps, cnn, Fashion-MNIST, 8 workers, batch 16, accuracy on the first
# 2000 test images) that vary one thing at a time: lr, momentum, Nesterov, warm-up,
# clipping, block shape, and the compressor (GRBS, random-k, top-k).
# Output: one line per probe (experiments/results/ef_sgd_probe.txt).
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
probe() {
    out=$(build/cser train --batch 16 --steps 300 --test-subset 2000 --eval-every 0 \
        --quiet --out "$tmp/run" "$@" 2>&1)
    rc=$?
    res=$(printf '%s\n' "$out" | sed -n 's/^  test accuracy *\([0-9.]*%\).*/\1/p')
    [ $rc -eq 3 ] && res=$(printf '%s\n' "$out" | sed -n 's/.*\(diverged after [0-9]* steps\).*/\1/p')
    printf '%-60s exit %d  %s\n' "$*" "$rc" "$res"
    rm -rf "$tmp/run"
}
probe --method ef-sgd:c=grbs:16 --lr 0.025
probe --method ef-sgd:c=grbs:16 --lr 0.0125
probe --method ef-sgd:c=grbs:16 --lr 0.00625
probe --method ef-sgd:c=grbs:16 --lr 0.025 --nesterov 0
probe --method ef-sgd:c=grbs:16 --lr 0.025 --warmup 0.5
probe --method ef-sgd:c=grbs:16 --lr 0.025 --momentum 0.5
probe --method ef-sgd:c=grbs:16 --lr 0.025 --momentum 0
probe --method ef-sgd:c=grbs:r0=0.0625,r1=1 --lr 0.025
probe --method ef-sgd:c=randk:16 --lr 0.025
probe --method ef-sgd:c=topk:16 --lr 0.025
probe --method ef-sgd:c=grbs:256 --lr 0.025 --momentum 0
probe --method ef-sgd:c=grbs:256 --lr 0.025 --clip-norm 1
probe --method ef-sgd:c=randk:256 --lr 0.025
probe --method ef-sgd:c=topk:256 --lr 0.025
probe --method sgd --lr 0.025
