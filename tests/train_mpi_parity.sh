#!/bin/sh
# train_mpi_parity.sh: `mpirun -np 4 cser train --backend mpi` and `cser train
# --workers 4` (threads) with the same seed must write the same metrics.csv, apart from
# the columns that measure time (compute_s, comm_s, modeled_total_s, wall_s), and end
# with the same model hash. Usage: train_mpi_parity.sh CSER MPIEXEC
set -eu
CSER=$1
MPIRUN=$2
D=$(mktemp -d /tmp/cser_mpi_parity_XXXXXX)
trap 'rm -rf "$D"' EXIT
ARGS="--dataset synthetic --model mlp --batch 16 --train-subset 512 --test-subset 128
      --steps 12 --eval-every 4 --seed 7 --warmup 0"
fail=0
for m in "sgd" "ef-sgd:c=topk:16" "qsparse --rc 16" "cser --rc 16" "cser-fused --rc 16" \
         "csea --rc 16" "diloco --rc 4" "streaming-diloco --rc 4" \
         "diloco:h=4,overlap=3" "streaming-diloco:c=fragment:4,frags=2,overlap=1"; do
    rm -rf "$D/t" "$D/m"
    # shellcheck disable=SC2086
    "$CSER" train $ARGS --method $m --workers 4 --out "$D/t" >"$D/t.out" 2>&1 ||
        { echo "threads run failed: $m"; cat "$D/t.out"; exit 1; }
    # shellcheck disable=SC2086
    "$MPIRUN" --allow-run-as-root --oversubscribe -np 4 \
        "$CSER" train $ARGS --method $m --backend mpi --out "$D/m" >"$D/m.out" 2>&1 ||
        { echo "mpi run failed: $m"; cat "$D/m.out"; exit 1; }
    cut -d, -f1-10,13 "$D/t/metrics.csv" >"$D/t.cols"
    cut -d, -f1-10,13 "$D/m/metrics.csv" >"$D/m.cols"
    ht=$(grep "model hash" "$D/t.out" || true)
    hm=$(grep "model hash" "$D/m.out" || true)
    if ! cmp -s "$D/t.cols" "$D/m.cols" || [ "$ht" != "$hm" ] || [ -z "$ht" ]; then
        echo "MISMATCH for --method $m (threads | mpi):"
        paste -d'|' "$D/t.cols" "$D/m.cols"
        echo "threads: $ht"
        echo "mpi:     $hm"
        fail=1
    else
        echo "ok: --method $m: $(wc -l <"$D/t.cols") identical rows, $ht"
    fi
done
exit $fail
