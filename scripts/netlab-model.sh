#!/bin/bash
# netlab-model.sh: "is the model right?" (docs/netlab.md): trains on the network lab
# (scripts/netlab.sh) with --net-bandwidth set to the lab's rate and --net-latency to
# the lab's measured natural latency, and prints one markdown row per run comparing
# the measured transfer time in collectives (comm_s with --measure-wait 1: the time
# waiting for peers is apart) with modeled_comm_s, in total, per step and per phase.
#
# usage: scripts/netlab-model.sh [CSER] [STEPS] [RANKS...]   (root; default build/cser 40
#        "2 4"); env BANDWIDTHS (default "100M 1G"), METHODS (default
#        "sgd|cser --rc 256|ef-sgd"), EXTRA (more cser train options)
set -u
CSER=${1:-build/cser}
STEPS=${2:-40}
shift 2 2>/dev/null || shift $#
RANKS=${*:-2 4}
BANDWIDTHS=${BANDWIDTHS:-100M 1G}
METHODS=${METHODS:-sgd|cser --rc 256|ef-sgd}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/netlab-model.XXXXXX)
trap 'rm -rf "$T"' EXIT

echo "| ranks | link | method | load avg | latency | transfer measured (s) | modeled (s) | measured / modeled | per step measured / modeled (ms) | update phase (s) | reset phase (s) | waiting for peers (s) | wall (s) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
IFS='|' read -r -a MLIST <<<"$METHODS"
for np in $RANKS; do
    for bw in $BANDWIDTHS; do
        for m in "${MLIST[@]}"; do
            load=$(cut -d' ' -f1 /proc/loadavg)
            "$HERE/netlab.sh" --ranks "$np" --bandwidth "$bw" --quiet -- sh -c \
                "exec $CSER train --backend mpi --model cnn --batch 16 --steps $STEPS \
                 --eval-every 0 --method $m --net-bandwidth $bw \
                 --net-latency \${NETLAB_LATENCY_S} --measure-wait 1 --quiet ${EXTRA:-}" \
                >"$T/out" 2>"$T/err" || {
                    keep=$(mktemp /tmp/netlab-model-failed.XXXXXX)
                    cat "$T/out" "$T/err" >"$keep"
                    echo "| $np | $bw | $m | run failed (output kept in $keep): $(grep -m1 -i 'error\|fail\|abort' "$T/err") |"
                    continue
                }
            lat=$(grep -o 'natural latency[^:]*: [0-9]*us' "$T/err" | grep -o '[0-9]*us$')
            line=$(grep 'collectives     transfer' "$T/out")
            wall=$(grep -o 'measured [0-9.]* s' "$T/out" | head -1 | grep -o '[0-9.]*')
            echo "$line" | awk -v np="$np" -v bw="$bw" -v m="$m" -v load="$load" -v lat="$lat" \
                -v steps="$STEPS" -v wall="$wall" '{
                gsub(/[(),;]/, " ");
                for (i = 1; i <= NF; i++) {
                    if ($i == "transfer") meas = $(i + 1);
                    if ($i == "modeled") mod = $(i + 1);
                    if ($i == "update") upd = $(i + 1);
                    if ($i == "reset") rst = $(i + 1);
                    if ($i == "peers") wait = $(i + 1);
                }
                printf "| %s | %s | %s | %s | %s | %.3f | %.3f | %.2f | %.1f / %.1f | %s | %s | %s | %s |\n",
                       np, bw, m, load, lat, meas, mod, (mod > 0 ? meas / mod : 0),
                       1e3 * meas / steps, 1e3 * mod / steps, upd, rst, wait, wall }'
        done
    done
done
