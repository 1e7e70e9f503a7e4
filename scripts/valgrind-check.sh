#!/bin/bash
# valgrind-check.sh: a 20-step training run under valgrind memcheck (issue 7, item 5):
# no memory errors and no definitely lost blocks. A tiny run (synthetic data, mlp,
# 2 workers on threads, batch 8, eval and a checkpoint, then a resume) because memcheck
# is ~50x slower. Reachable blocks at exit (OpenBLAS's thread pool and buffers, glibc)
# are reported by valgrind but are not leaks of ours.
#
# usage: scripts/valgrind-check.sh [CSER_BINARY]   (default build/cser; a Release or
#   Debug build without sanitizers). Exit 0 when clean, 1 otherwise.
set -u
BIN=${1:-build/cser}
if ! command -v valgrind >/dev/null; then
    echo "valgrind-check: valgrind not installed" >&2
    exit 1
fi
T=$(mktemp -d /tmp/cser-valgrind.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 CSER_NO_BLAS_TUNE=1
OPTS=(train --dataset synthetic --model mlp --workers 2 --batch 8 --train-subset 128
      --test-subset 32 --steps 20 --eval-every 10 --warmup 0 --quiet)
VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite --errors-for-leak-kinds=definite --track-origins=yes)

status=0
check() { # NAME RC ARGS...: runs one cser invocation under memcheck, expecting RC
    local name=$1 want=$2
    shift 2
    "${VG[@]}" --log-file="$T/$name.vg" "$BIN" "$@" >"$T/$name.out" 2>&1
    local rc=$?
    local errs defl
    errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$T/$name.vg" | tail -1)
    defl=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$T/$name.vg" | tail -1)
    echo "$name: exit $rc, memcheck errors ${errs:-?}, definitely lost ${defl:-0} bytes"
    if [ "$rc" -ne "$want" ] || [ "${errs:-1}" != 0 ] || [ "${defl:-0}" != 0 ]; then
        cat "$T/$name.vg" "$T/$name.out" >&2
        status=1
    fi
}

# 20 steps in two invocations: 10 steps and a checkpoint, then a resume to step 20
check first10 0 "${OPTS[@]}" --stop-after 10 --checkpoint-every 10 --out "$T/run"
check resume10 0 "${OPTS[@]}" --resume "$T/run"
check badinput 2 "${OPTS[@]}" --resume "$T/nosuch" # an error path
exit $status
