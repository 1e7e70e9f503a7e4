#!/bin/bash
# mpi-kill-check.sh: no hang in MPI (issue 7, item 4). Starts `cser train --backend mpi`
# with 4 ranks and makes one rank fail, three ways:
#   kill  - kill -9 of rank 2's process: Open MPI's mpirun notices the death and ends
#           the job ("mpirun noticed that process rank 2 ... exited on signal 9");
#   hang  - SIGSTOP of rank 2 (alive but silent): the trainer's --timeout watchdog fires
#           in the other ranks' collective waits, and they abort the job naming rank 2
#           ("watchdog: rank 2 did not answer within 5 s");
#   error - rank 0 alone cannot create --out (a regular file is in the way): it aborts
#           the job ("cser: rank 0 aborts the MPI job: ...").
# Each must end within 30 s of the failure with a non-zero status and a message naming
# the failed rank.
#
# usage: scripts/mpi-kill-check.sh [CSER_BINARY] [MPIEXEC] [SCENARIO...]
#   defaults: build/cser, mpirun, "kill hang error". Exit 0 on success, 1 on failure.
set -u
BIN=${1:-build/cser}
MPIEXEC=${2:-mpirun}
shift 2 2>/dev/null || shift $#
SCENARIOS=${*:-kill hang error}
LIMIT=30
T=$(mktemp -d /tmp/cser-mpi-kill.XXXXXX)
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}
export OMPI_MCA_btl_vader_single_copy_mechanism=none
OPTS=(train --backend mpi --dataset synthetic --model mlp --batch 8 --train-subset 512
      --test-subset 64 --steps 1000000 --eval-every 0 --warmup 0 --quiet --timeout 5)
victim=""
cleanup() {
    [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "mpi-kill-check: FAIL: $*" >&2; exit 1; }

# The PID of rank R among the children of the launcher PID L.
rank_pid() {
    local p
    for p in $(pgrep -P "$2"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null |
            grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
    done
}

# Starts the job, waits until rank 2 trains, applies the failure, times the end.
run_case() {
    local what=$1 extra=() want
    case $what in
        kill) want='rank 2' ;;
        hang) want='rank 2 did not answer' ;;
        error)
            : >"$T/file"
            extra=(--out "$T/file/run")
            want='rank 0 aborts the MPI job' ;;
        *) fail "unknown scenario '$what'" ;;
    esac
    "$MPIEXEC" --allow-run-as-root --oversubscribe -np 4 "$BIN" "${OPTS[@]}" \
        "${extra[@]}" >"$T/$what.out" 2>"$T/$what.err" &
    local mp=$! t0 t1 rc
    victim=""
    if [ "$what" != error ]; then
        for _ in $(seq 1 200); do
            victim=$(rank_pid 2 "$mp")
            [ -n "$victim" ] && break
            sleep 0.05
        done
        [ -n "$victim" ] || fail "$what: rank 2 did not start"
        sleep 2 # training is under way
        kill -0 "$mp" 2>/dev/null ||
            fail "$what: the job ended early: $(cat "$T/$what.err")"
        [ "$what" = kill ] && kill -9 "$victim"
        [ "$what" = hang ] && kill -STOP "$victim"
    fi
    t0=$(date +%s.%N)
    for _ in $(seq 1 $((LIMIT * 10 + 50))); do
        kill -0 "$mp" 2>/dev/null || break
        sleep 0.1
    done
    t1=$(date +%s.%N)
    if kill -0 "$mp" 2>/dev/null; then
        kill -9 "$mp"
        fail "$what: the job still runs $LIMIT s after the failure"
    fi
    wait "$mp"
    rc=$?
    local dt
    dt=$(echo "$t1 - $t0" | bc)
    [ "$rc" -ne 0 ] || fail "$what: exit status 0"
    grep -q "$want" "$T/$what.err" ||
        fail "$what: no message naming the failed rank ('$want'): $(cat "$T/$what.err")"
    (($(echo "$dt < $LIMIT" | bc))) || fail "$what: took $dt s"
    echo "$what: the job ended $(printf %.1f "$dt") s after the failure, exit $rc:" \
         "$(grep -m1 "$want" "$T/$what.err" | sed 's/^ *//')"
    [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null
    victim=""
}

for s in $SCENARIOS; do
    run_case "$s"
done
echo "mpi-kill-check: OK"
