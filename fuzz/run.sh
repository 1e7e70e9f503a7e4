#!/bin/sh
# fuzz/run.sh: builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) and runs
# each in turn, one process at a time, for FUZZ_SECONDS seconds (or FUZZ_RUNS inputs).
#
# Usage: fuzz/run.sh [target ...]        (default: every fuzz_*.c; names without fuzz_)
# Environment: FUZZ_BUILD (build-fuzz), FUZZ_SECONDS (60), FUZZ_RUNS (-1: no limit),
#              FUZZ_ARGS (extra libFuzzer flags), CC (clang), FUZZ_NO_BUILD=1 (run the
#              fuzzers already built, e.g. while a library file is mid-edit).
# Seeds come from fuzz/corpus/<target>/ (never written to); new inputs collect in
# $FUZZ_BUILD/corpus/<target>/, crashes in $FUZZ_BUILD/artifacts/<target>/, logs in
# $FUZZ_BUILD/logs/<target>.log. Prints one summary line per target and exits 1 if any
# target found a crash, leak, timeout or sanitizer report.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
RUNS=${FUZZ_RUNS:--1}
CC=${CC:-clang}
case "$CC" in *clang*) ;; *) CC=clang ;; esac

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    cmake -S "$ROOT/fuzz" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" >/dev/null
    cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
fi

# Per-target input size caps: the readers write every input to a file, so keep them
# small (a CIFAR record is 3073/3074 bytes: 8192 holds two).
max_len() {
    case "$1" in
    idx | checkpoint) echo 4096 ;;
    cifar) echo 8192 ;;
    decode | train_args) echo 1024 ;;
    *) echo 256 ;;
    esac
}

if [ $# -gt 0 ]; then
    TARGETS="$*"
else
    TARGETS=$(cd "$ROOT/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OPENBLAS_NUM_THREADS=1
failed=0
printf '%-16s %10s %8s %8s %7s %7s  %s\n' target execs seconds exec/s cov ft findings
for t in $TARGETS; do
    corpus="$BUILD/corpus/$t"
    art="$BUILD/artifacts/$t"
    log="$BUILD/logs/$t.log"
    mkdir -p "$corpus" "$art" "$BUILD/logs"
    dict=""
    case "$t" in
    spec_*) dict="-dict=$ROOT/fuzz/dict/spec.dict" ;;
    train_args) dict="-dict=$ROOT/fuzz/dict/train_args.dict" ;;
    esac
    start=$(date +%s)
    rc=0
    # shellcheck disable=SC2086
    "$BUILD/fuzz_$t" "$corpus" "$ROOT/fuzz/corpus/$t" -max_total_time="$SECONDS_EACH" \
        -runs="$RUNS" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$art/" $dict ${FUZZ_ARGS:-} \
        >"$log" 2>&1 || rc=$?
    secs=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    found=$(ls "$art" | wc -l)
    note="none"
    if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
        note="FOUND $found (exit $rc): see $log and $art/"
        failed=1
    fi
    printf '%-16s %10s %8s %8s %7s %7s  %s\n' "$t" "${execs:-?}" "$secs" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$note"
done
exit $failed
