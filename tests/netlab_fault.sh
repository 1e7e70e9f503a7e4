#!/bin/bash
# netlab_fault.sh: faults on a lab link (docs/reliability.md, "Faults on the link"),
# run by ctest (label netlab); skips (77) where the lab cannot be built.
#
#   ratedrop  `cser train --backend mpi` (SGD, 2 ranks) on 1 Gbit/s links; 0.5 s in,
#             both directions of rank 1's link drop to 200 Mbit/s (tc qdisc change on
#             both veth ends). The run must complete, slower, with the model hash of
#             the same training on the threads backend (same bits as a clean run).
#   linkdown  the same on 1 Gbit/s with --timeout 3 and a checkpoint every 10 steps;
#             once a checkpoint exists, rank 1's data link goes down at the switch (ip
#             link set p1 down in the switch: a pulled cable, silent to TCP, which would
#             retransmit for minutes; the control network stays up, as a management
#             network would). Every
#             rank must end within the watchdog time + 10 s with exit status 1 and a
#             message naming rank 1 as not answering; then --resume from the checkpoint
#             on a new lab must end with the clean run's model hash (bitwise).
#
# usage: tests/netlab_fault.sh CSER_BINARY ratedrop|linkdown
set -u
CSER=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
WHAT=${2:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)
LAB="$HERE/scripts/netlab.sh"
fail() { echo "netlab_fault: FAIL: $*" >&2; exit 1; }

out=$("$LAB" --check 2>&1)
case $? in
    0) ;;
    77) echo "netlab_fault: SKIP: $out" >&2; exit 77 ;;
    *) fail "netlab.sh --check: $out" ;;
esac
command -v mpirun >/dev/null || { echo "netlab_fault: SKIP: mpirun not found" >&2; exit 77; }
[ -x "$CSER" ] || fail "$CSER is not an executable"

T=$(mktemp -d /tmp/netlab-fault.XXXXXX)
LABPID=""
cleanup() {
    [ -n "$LABPID" ] && kill -TERM "$LABPID" 2>/dev/null && wait "$LABPID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
export OPENBLAS_NUM_THREADS=1
OPTS=(train --dataset synthetic --model mlp --batch 8 --train-subset 512 --test-subset 64
      --method sgd --eval-every 0 --warmup 0 --quiet)

hash_of() { grep -o 'model hash *[0-9a-f]*' "$1" | awk '{ print $3 }'; }

# The reference: the same training on 2 threads (threads and MPI give the same bits).
reference() {
    "$CSER" "${OPTS[@]}" --workers 2 --steps "$1" >"$T/ref.out" 2>&1 ||
        { cat "$T/ref.out" >&2; fail "the threads reference run failed"; }
    hash_of "$T/ref.out"
}

# Starts a 2-rank lab on 1 Gbit/s running cser with ARGS in the background.
start_lab() {
    rm -f "$T/id"
    "$LAB" --ranks 2 --bandwidth 1G --quiet --time-limit 120 --id-file "$T/id" -- \
        "$CSER" "${OPTS[@]}" "$@" >"$T/lab.out" 2>"$T/lab.err" &
    LABPID=$!
    for _ in $(seq 1 200); do
        [ -s "$T/id" ] && break
        kill -0 "$LABPID" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$T/id" ] || { cat "$T/lab.err" >&2; fail "the lab did not come up"; }
    ID=$(cat "$T/id")
}

# Waits for the lab job; sets RC and SECONDS_TAKEN.
wait_lab() {
    wait "$LABPID"
    RC=$?
    LABPID=""
}

check_ratedrop() {
    local steps=60 want
    want=$(reference $steps)
    start_lab --backend mpi --steps $steps
    sleep 0.5
    local dev ns
    for dev in "$ID-r1 lab0" "$ID-sw p1"; do
        set -- $dev
        ip netns exec "$1" tc qdisc change dev "$2" root tbf rate 200mbit burst 65536 \
            limit 262144 || fail "tc qdisc change on $2 in $1 failed"
    done
    ip netns exec "$ID-sw" tc -s qdisc show dev p1 | head -1 >&2
    wait_lab
    [ "$RC" = 0 ] || { cat "$T/lab.err" "$T/lab.out" >&2; fail "the run failed after the rate drop (exit $RC)"; }
    local got
    got=$(hash_of "$T/lab.out")
    grep -o 'measured [0-9.]* s' "$T/lab.out" | head -1 >&2
    [ -n "$got" ] && [ "$got" = "$want" ] || fail "model hash $got after the rate drop, clean run $want"
    echo "netlab_fault: ratedrop OK: completed at 200 Mbit/s, model hash $got = clean run" >&2
}

check_linkdown() {
    local steps=200 want timeout=3
    want=$(reference $steps)
    mkdir -p "$T/run"
    start_lab --backend mpi --steps $steps --timeout $timeout --checkpoint-every 10 \
        --out "$T/run"
    for _ in $(seq 1 300); do
        [ -s "$T/run/checkpoint.bin" ] && break
        kill -0 "$LABPID" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$T/run/checkpoint.bin" ] || { cat "$T/lab.err" >&2; fail "no checkpoint appeared"; }
    ip -n "$ID-sw" link set p1 down || fail "ip link set p1 down failed"
    local t0=$SECONDS
    wait_lab
    local took=$((SECONDS - t0))
    grep -h 'watchdog\|did not answer\|aborts' "$T/lab.err" "$T/lab.out" | head -3 >&2
    [ "$RC" = 1 ] || { cat "$T/lab.err" >&2; fail "exit status $RC after the link went down, expected 1"; }
    [ "$took" -le $((timeout + 10)) ] || fail "the job took $took s to end (watchdog $timeout s)"
    grep -q 'rank 1 did not answer' "$T/lab.err" "$T/lab.out" ||
        { cat "$T/lab.err" >&2; fail "no message names rank 1 as not answering"; }
    echo "netlab_fault: linkdown: every rank ended $took s after the link went down, exit 1, rank 1 named" >&2
    start_lab --backend mpi --steps $steps --timeout $timeout --checkpoint-every 10 \
        --resume "$T/run"
    wait_lab
    [ "$RC" = 0 ] || { cat "$T/lab.err" "$T/lab.out" >&2; fail "--resume failed (exit $RC)"; }
    local got
    got=$(hash_of "$T/lab.out")
    [ -n "$got" ] && [ "$got" = "$want" ] || fail "resumed model hash $got, clean run $want"
    echo "netlab_fault: linkdown OK: resumed from the checkpoint to model hash $got = clean run" >&2
}

case $WHAT in
    ratedrop) check_ratedrop ;;
    linkdown) check_linkdown ;;
    *) echo "usage: $0 CSER_BINARY ratedrop|linkdown" >&2; exit 2 ;;
esac
