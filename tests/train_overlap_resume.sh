#!/bin/sh
# train_overlap_resume.sh: `cser train` with overlap=T, checkpointed at a step with a
# sync in flight (--checkpoint-every 3 --stop-after 6: streaming-diloco's fragment
# sync of step 6 is applied at step 7) and resumed, ends with the uninterrupted run's
# model hash and metrics (bytes included), apart from the columns that measure time.
# docs/algorithms.md, "Overlapped synchronization". Usage: train_overlap_resume.sh CSER
set -eu
CSER=$1
D=$(mktemp -d /tmp/cser_overlap_resume_XXXXXX)
trap 'rm -rf "$D"' EXIT
ARGS="--dataset synthetic --model mlp --batch 16 --train-subset 512 --test-subset 128
      --steps 24 --eval-every 8 --seed 7 --warmup 0 --workers 3 --quiet"
fail=0
for m in "streaming-diloco:c=fragment:4,frags=2,overlap=1" "diloco:h=4,overlap=3"; do
    rm -rf "$D/a" "$D/b"
    # shellcheck disable=SC2086
    "$CSER" train $ARGS --method "$m" --out "$D/a" >"$D/a.out" 2>&1 ||
        { echo "run failed: $m"; cat "$D/a.out"; exit 1; }
    # shellcheck disable=SC2086
    "$CSER" train $ARGS --method "$m" --out "$D/b" --checkpoint-every 3 --stop-after 6 \
        >"$D/b1.out" 2>&1 || { echo "interrupted run failed: $m"; cat "$D/b1.out"; exit 1; }
    # shellcheck disable=SC2086
    "$CSER" train $ARGS --method "$m" --resume "$D/b" >"$D/b.out" 2>&1 ||
        { echo "resumed run failed: $m"; cat "$D/b.out"; exit 1; }
    ha=$(grep "model hash" "$D/a.out" || true)
    hb=$(grep "model hash" "$D/b.out" || true)
    cut -d, -f1-10 "$D/a/metrics.csv" >"$D/a.cols"
    cut -d, -f1-10 "$D/b/metrics.csv" >"$D/b.cols"
    if [ -z "$ha" ] || [ "$ha" != "$hb" ] || ! cmp -s "$D/a.cols" "$D/b.cols"; then
        echo "MISMATCH for $m: uninterrupted | resumed"
        paste -d'|' "$D/a.cols" "$D/b.cols"
        echo "$ha"
        echo "$hb"
        fail=1
    else
        echo "ok: $m resumed with a sync in flight: $ha"
    fi
done
exit $fail
