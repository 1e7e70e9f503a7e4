#!/bin/bash
# netlab_check.sh: checks of scripts/netlab.sh (docs/netlab.md), run by ctest (label
# netlab). Each skips with exit 77 and a message where network namespaces cannot be
# created (no root / CAP_NET_ADMIN, a container that forbids them).
#
#   rate     "is the lab right?": 2 ranks on 100 Mbit/s links; ranks 0 and 1 send
#            BYTES (4 MB) to each other at the same time; each direction's goodput must
#            be within 15% of the shaped rate's TCP goodput, B * 1448/1514 (MSS 1448
#            with timestamps in a 1514-byte Ethernet frame; the lab charges layer-2
#            bytes), i.e. full duplex at B each way.
#            Emulated latency needs netem, which the lab refuses where absent: then the
#            round-trip check is skipped with a message.
#   cleanup  the lab leaves nothing behind: no namespace, link, qdisc, process or file,
#            after a command that succeeds, one that fails, an interrupted run (SIGINT,
#            SIGTERM) and a refused option; the host's links and its loopback qdisc are
#            unchanged; without CAP_NET_ADMIN it refuses (77) with a reason.
#
# usage: tests/netlab_check.sh rate|cleanup
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
LAB="$HERE/scripts/netlab.sh"
PROBE="$HERE/scripts/netlab_probe.py"
fail() { echo "netlab_check: FAIL: $*" >&2; exit 1; }

out=$("$LAB" --check 2>&1)
case $? in
    0) ;;
    77) echo "netlab_check: SKIP: $out" >&2; exit 77 ;;
    *) fail "netlab.sh --check: $out" ;;
esac
command -v mpirun >/dev/null || { echo "netlab_check: SKIP: mpirun not found" >&2; exit 77; }
[ -x /usr/bin/python3 ] || { echo "netlab_check: SKIP: /usr/bin/python3 not found" >&2; exit 77; }

T=$(mktemp -d /tmp/netlab-check.XXXXXX)
trap 'rm -rf "$T"' EXIT

check_rate() {
    local bps=100000000 bytes=4000000
    "$LAB" --ranks 2 --bandwidth 100M --time-limit 60 -- /usr/bin/python3 "$PROBE" \
        exchange "$bytes" 30 >"$T/out" 2>"$T/err" || { cat "$T/err" >&2; fail "the lab run failed"; }
    grep -o 'natural latency[^;]*' "$T/err" >&2
    local lines
    lines=$(grep -o 'rank=[0-9]* sent_bytes=[0-9]* send_s=[0-9.]* recv_bytes=[0-9]* recv_s=[0-9.]*' "$T/out")
    [ "$(echo "$lines" | grep -c rank=)" = 2 ] || { cat "$T/out" "$T/err" >&2; fail "expected 2 probe lines"; }
    echo "$lines" | awk -v b="$bps" '
        { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
          want = b * 1448 / 1514
          got = v["recv_bytes"] * 8 / v["recv_s"]
          printf "rank %s received %d bytes in %.3f s: %.1f Mbit/s goodput (expected %.1f, ratio %.3f)\n",
                 v["rank"], v["recv_bytes"], v["recv_s"], got / 1e6, want / 1e6, got / want
          if (got < 0.85 * want || got > 1.15 * want) bad = 1 }
        END { exit bad }' >&2 || fail "goodput not within 15% of the shaped 100 Mbit/s link"
    out=$("$LAB" --ranks 2 --bandwidth 100M --latency 1ms -- true 2>&1)
    case $? in
        0) fail "netem round-trip check not written: this kernel has netem (extend check_rate)" ;;
        77) echo "netlab_check: latency emulation not checked: $out" >&2 ;;
        *) fail "--latency: unexpected failure: $out" ;;
    esac
    echo "netlab_check: rate OK" >&2
}

# What the host has that a lab could leave behind.
snapshot() {
    { ip netns list; ip -o link show | awk -F': ' '{ print $2 }'; tc qdisc show dev lo
      ls /tmp | grep '^netlab-nl'; pgrep -f netlab_probe.py; } 2>/dev/null | sort
}

# Runs the lab with ARGS, sends SIG after DELAY seconds if SIG is set, checks the exit
# status against the pattern WANT and that nothing remains. (ctest runs the netlab
# tests alone (RUN_SERIAL): a lab running beside this one would show in the diff.)
run_case() {
    local name=$1 want=$2 sig=$3 delay=$4 rc
    shift 4
    snapshot >"$T/before"
    local t0=$SECONDS
    # a background job of a script starts with SIGINT ignored (and bash cannot trap a
    # signal ignored at entry): restore the default as a terminal's Ctrl-C would find it
    /usr/bin/python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$LAB" --ranks 2 --bandwidth 100M --quiet \
        --time-limit 60 "$@" 2>"$T/err" >/dev/null &
    local pid=$!
    if [ -n "$sig" ]; then
        # wait until the job runs (mpirun in the lab), then interrupt the lab
        for _ in $(seq 1 300); do
            pgrep -f "^sleep 4321" >/dev/null && break
            sleep 0.1
        done
        sleep "$delay"
        kill "-$sig" "$pid"
    fi
    wait "$pid"
    rc=$?
    [[ $rc =~ ^($want)$ ]] || { cat "$T/err" >&2; fail "$name: exit status $rc, expected $want"; }
    snapshot >"$T/after"
    diff "$T/before" "$T/after" >&2 || fail "$name: the lab left something behind (diff above)"
    echo "netlab_check: cleanup after $name: exit $rc, nothing left ($((SECONDS - t0)) s)" >&2
}

check_cleanup() {
    run_case success 0 "" 0 -- true
    run_case failure 1 "" 0 -- false
    run_case SIGINT 130 INT 0.5 -- sleep 4321
    run_case SIGTERM 143 TERM 0.5 -- sleep 4321
    run_case refused-netem "77|0" "" 0 --loss 1 -- true
    run_case bad-usage 2 "" 0 --bandwidth 1X -- true
    if command -v setpriv >/dev/null; then # the same host, without CAP_NET_ADMIN
        snapshot >"$T/before"
        out=$(setpriv --bounding-set=-net_admin,-sys_admin bash "$LAB" --ranks 2 \
            --bandwidth 1G -- true 2>&1)
        rc=$?
        [ "$rc" = 77 ] && [[ $out == *"not permitted"* ]] ||
            fail "without CAP_NET_ADMIN: exit $rc, expected 77 and a reason: $out"
        snapshot >"$T/after"
        diff "$T/before" "$T/after" >&2 || fail "without CAP_NET_ADMIN: something left behind"
        echo "netlab_check: refused without CAP_NET_ADMIN: exit 77, nothing left" >&2
    fi
    echo "netlab_check: cleanup OK" >&2
}

case ${1:-} in
    rate) check_rate ;;
    cleanup) check_cleanup ;;
    *) echo "usage: $0 rate|cleanup" >&2; exit 2 ;;
esac
