#!/bin/sh
# run_race.sh: images/s of `cser train` (4 MPI ranks; 4 threads) against PyTorch DDP
# (gloo, 4 processes), full SGD and compressed (CSER vs the PowerSGD hook), interleaved.
# Usage: bench/run_race.sh [REPS] [STEPS]   (run on an otherwise idle machine)
# Rates are steps WARM..STEPS (after WARM warm-up steps) x 4 workers x batch 16.
set -eu
REPS=${1:-3}
STEPS=${2:-300}
WARM=50
B=16
CSER=${CSER:-build/cser}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Cooperlake OMP_NUM_THREADS=1

# images/s between the eval row at step WARM and the final row (tiny test subset).
rate() {
    awk -F, -v w="$WARM" -v n=4 -v b="$B" '
        $1 == "eval" && $2 == w { s0 = $2; t0 = $15 }
        $1 == "final" { s1 = $2; t1 = $15 }
        END { printf "%.1f\n", n * b * (s1 - s0) / (t1 - t0) }' "$1/metrics.csv"
}

ours() { # NAME METHOD_ARGS...
    name=$1; shift
    case $name in
        mpi*) mpirun --allow-run-as-root --oversubscribe -np 4 "$CSER" train \
                  --backend mpi --threads 1 "$@" >/dev/null 2>&1 ;;
        *) "$CSER" train --workers 4 --threads 1 "$@" >/dev/null 2>&1 ;;
    esac
}

COMMON="--model cnn --batch $B --steps $STEPS --eval-every $WARM --test-subset 64 --quiet"
for r in $(seq 1 "$REPS"); do
    rm -rf "$TMP"/*
    ours mpi --method sgd $COMMON --out "$TMP/m"
    echo "rep $r ours_mpi_sgd $(rate "$TMP/m")"
    ours thr --method sgd $COMMON --out "$TMP/t"
    echo "rep $r ours_threads_sgd $(rate "$TMP/t")"
    echo "rep $r torch_ddp_sgd $(/usr/bin/python3 bench/ddp_torch.py sgd 4 $B $WARM \
        $((STEPS - WARM)) | sed 's/.*imgs_per_s=//')"
    ours mpi --method cser --rc "${RACE_RC:-64}" $COMMON --out "$TMP/c"
    echo "rep $r ours_mpi_cser_rc${RACE_RC:-64} $(rate "$TMP/c")"
    echo "rep $r torch_ddp_powersgd_rank${PSGD_RANK:-1} $(/usr/bin/python3 bench/ddp_torch.py \
        powersgd:${PSGD_RANK:-1} 4 $B $WARM $((STEPS - WARM)) | sed 's/.*imgs_per_s=//')"
done
