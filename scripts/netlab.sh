#!/bin/bash
# netlab.sh: a small cluster on one Linux machine: one network namespace per MPI rank,
# each with one data NIC (lab0, a veth pair) into a switch (a bridge in a namespace of
# its own), both ends of every data link shaped with tbf so that each rank has a
# full-duplex link of B bits/s each way; then `mpirun -np N` runs CMD as one rank per
# namespace over the TCP transport on those links. mpirun and its daemons talk over a
# separate unshaped control network (ctl0), as on clusters with a management network:
# a data link can fail while the job can still be ended. See docs/netlab.md.
#
# usage: scripts/netlab.sh --ranks N --bandwidth B [options] -- CMD [ARGS...]
#        scripts/netlab.sh --check        (exit 0 if a lab can be built here, 77 if not)
#
#   --ranks N         ranks = nodes (1..64)
#   --bandwidth B     per-direction link rate: 100M, 1G, 10G, 2.5G, 500k or bits/s
#                     (the forms of `cser train --net-bandwidth`)
#   --latency L       one-way delay between any two ranks (50us, 1ms): needs netem
#   --loss P          random loss between any two ranks, percent (0.1): needs netem
#   --time-limit S    end the job after S seconds (default 3600; exit 124)
#   --mca KEY VALUE   passed to mpirun (repeatable, each KEY once). The lab sets
#                     mpi_yield_when_idle 1: all ranks and the kernel's network
#                     processing share this machine's cores, and a rank that
#                     busy-polls takes the CPU that moves its peers' packets
#                     (--mca mpi_yield_when_idle 0 to measure that), and
#                     rtc_hwloc_vmhole none: the daemons then do not share
#                     their hwloc topology through a mapping at a fixed address
#                     (that mapping made orted segfault in hwloc_shmem_topology_write
#                     in about half of the runs, inside the lab's namespaces), and
#                     hwloc_base_binding_policy none: every node is this machine,
#                     and Open MPI's default binding put every rank on core 0
#   --quiet           no progress lines on stderr (the latency line is still printed)
#   --id-file F       write the lab's id to F once it is up: its namespaces are ID-sw
#                     (switch: data ports p0.., control ports c0..), ID-hd (mpirun),
#                     ID-r0.. (ranks: lab0, ctl0), for fault injection from outside
#
# CMD runs with NETLAB_ADDRS (the ranks' addresses, rank order), NETLAB_LATENCY_S (the
# measured natural latency, RTT/2) and NETLAB_BANDWIDTH_BPS in its environment.
# Exit status: CMD's (mpirun's); 2 bad usage; 77 not permitted here (no root,
# CAP_NET_ADMIN/CAP_SYS_ADMIN or namespaces) or an option this kernel cannot honour
# (netem); 124 time limit. Everything it creates (namespaces, links, qdiscs, files) is
# removed on exit, on failure and on INT/TERM. The host's interfaces and qdiscs are
# never touched: every link, address and qdisc lives inside namespaces it creates.
set -uo pipefail

PROG=netlab
HERE=$(cd "$(dirname "$0")" && pwd)
PROBE="$HERE/netlab_probe.py"
PY=/usr/bin/python3
SUBNET=10.77.0   # data network (lab0)
CSUBNET=10.78.0  # control network (ctl0)

say() { [ "$QUIET" = 1 ] || echo "$PROG: $*" >&2; }
die() { echo "$PROG: $1" >&2; exit "${2:-2}"; }
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# ---- units (same forms as cser's --net-bandwidth / --net-latency) ----
parse_bw() { # -> integer bits/s
    local v=$1 num mul=1
    [[ $v =~ ^([0-9]+(\.[0-9]+)?([eE][0-9]+)?)([kKMGT]?)(bit|bps|b/s|bit/s)?$ ]] || return 1
    num=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[4]} in k|K) mul=1e3 ;; M) mul=1e6 ;; G) mul=1e9 ;; T) mul=1e12 ;; esac
    awk -v n="$num" -v m="$mul" 'BEGIN { x = n * m; if (x < 1000 || x > 1e12) exit 1;
                                          printf "%.0f\n", x }'
}
parse_lat() { # -> seconds
    local v=$1 num mul=1
    [[ $v =~ ^([0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)(ns|us|ms|s)?$ ]] || return 1
    num=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[4]} in ns) mul=1e-9 ;; us) mul=1e-6 ;; ms) mul=1e-3 ;; esac
    awk -v n="$num" -v m="$mul" 'BEGIN { x = n * m; if (x > 10) exit 1; printf "%.9f\n", x }'
}

# ---- arguments ----
RANKS="" BW="" LAT="" LOSS="" LIMIT=3600 QUIET=0 CHECK=0 IDFILE=""
MCA=()
while [ $# -gt 0 ]; do
    case $1 in
        --ranks) RANKS=${2:-}; shift 2 || usage ;;
        --bandwidth) BW=${2:-}; shift 2 || usage ;;
        --latency) LAT=${2:-}; shift 2 || usage ;;
        --loss) LOSS=${2:-}; shift 2 || usage ;;
        --time-limit) LIMIT=${2:-}; shift 2 || usage ;;
        --mca) [ $# -ge 3 ] || die "--mca: expected KEY VALUE"; MCA+=(--mca "$2" "$3"); shift 3 ;;
        --quiet) QUIET=1; shift ;;
        --id-file) IDFILE=${2:-}; shift 2 || usage ;;
        --check) CHECK=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        *) die "unknown option '$1' (see --help; the command to run follows --)" ;;
    esac
done

# ---- permission: root, or CAP_NET_ADMIN (12) and CAP_SYS_ADMIN (21, for ip netns) ----
cap_ok() {
    local eff
    eff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status 2>/dev/null) || return 1
    [ -n "$eff" ] || return 1
    (( (16#$eff >> 12) & 1 && (16#$eff >> 21) & 1 ))
}
command -v ip >/dev/null && command -v tc >/dev/null ||
    die "not permitted here: needs iproute2 (ip, tc)" 77
cap_ok || die "not permitted here: needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN, to create network namespaces (run it as root: sudo $0 ...)" 77

# ---- lab state and cleanup ----
ID="nl$(printf '%04x%04x' $(( $$ & 0xffff )) $(( RANDOM )))"
NSLIST=()     # namespaces created, in order
STATE=""      # temporary directory (hostfile, agent map)
cleanup() {
    local rc=$? ns p pids
    trap - EXIT INT TERM HUP
    for ns in "${NSLIST[@]}"; do # processes we started inside our namespaces
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill -TERM $pids 2>/dev/null
    done
    for ns in "${NSLIST[@]}"; do
        for p in 1 2 3 4 5 6 7 8 9 10; do
            [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
            sleep 0.1
        done
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    done
    for ns in "${NSLIST[@]}"; do # deleting a namespace deletes its links and qdiscs
        ip netns del "$ns" 2>/dev/null || echo "$PROG: could not delete namespace $ns" >&2
    done
    [ -n "$STATE" ] && rm -rf "$STATE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

mkns() {
    local err
    err=$(ip netns add "$1" 2>&1) || die "not permitted here: cannot create a network namespace ($err)" 77
    NSLIST+=("$1")
    ip -n "$1" link set lo up || die "cannot bring up lo in namespace $1" 1
}

if [ "$CHECK" = 1 ]; then
    mkns "$ID-check"
    echo "$PROG: network namespaces can be created here"
    exit 0
fi

[ $# -gt 0 ] || die "no command: give it after --, e.g. -- build/cser train --backend mpi"
[[ $RANKS =~ ^[0-9]+$ ]] && [ "$RANKS" -ge 1 ] && [ "$RANKS" -le 64 ] ||
    die "--ranks: expected a number of ranks 1..64, got '${RANKS}'"
[ -n "$BW" ] || die "--bandwidth: required (e.g. 100M, 1G, 10G)"
BPS=$(parse_bw "$BW") || die "--bandwidth: expected a rate of 1k to 1T bits/s such as 100M, 1G or 10G, got '$BW'"
[[ $LIMIT =~ ^[0-9]+$ ]] && [ "$LIMIT" -ge 1 ] || die "--time-limit: expected whole seconds >= 1, got '$LIMIT'"
if [ -n "$LAT" ]; then
    LAT_S=$(parse_lat "$LAT") || die "--latency: expected a delay such as 50us or 1ms (at most 10 s), got '$LAT'"
fi
if [ -n "$LOSS" ]; then
    awk -v p="$LOSS" 'BEGIN { exit !(p ~ /^[0-9]+(\.[0-9]+)?$/ && p >= 0 && p < 100) }' ||
        die "--loss: expected a percentage in [0, 100), got '$LOSS'"
fi
command -v mpirun >/dev/null || die "mpirun not found (scripts/install-deps.sh installs OpenMPI)" 1
[ -x "$PY" ] || die "$PY not found (the latency probe needs it)" 1

# ---- 1. namespaces: a switch, a head node for mpirun, one node per rank ----
SW="$ID-sw" HD="$ID-hd"
mkns "$SW"
ip -n "$SW" link add br0 type bridge || die "cannot create the bridge in $SW" 1
ip -n "$SW" link set br0 up
STATE=$(mktemp -d "/tmp/netlab-$ID.XXXXXX") || die "mktemp failed" 1

# ---- 2. netem, only if asked, probed inside the lab ----
NETEM=0
if [ -n "$LAT" ] || [ -n "$LOSS" ]; then
    if err=$(ip netns exec "$SW" tc qdisc add dev br0 root netem delay 1ms 2>&1); then
        NETEM=1
        ip netns exec "$SW" tc qdisc del dev br0 root
    else
        die "--latency/--loss need the netem qdisc, which this kernel does not have (tc said: ${err//$'\n'/ }; CONFIG_NET_SCH_NETEM is not set). Rates are real here, added delay and random loss are not: run without --latency/--loss, or on a kernel with sch_netem" 77
    fi
fi

# Shapes egress of DEV in NS at BPS bits/s of layer-2 frames (Ethernet header + IP +
# TCP + payload; a real NIC also spends 24 bytes a frame on preamble, FCS and gap,
# which the lab does not charge: tbf with a stab overhead undercharges the GSO
# super-packets of veth, and one frame per packet costs more CPU than 2 cores have):
# tbf (or htb + netem when delay/loss are
# asked; each packet crosses two shaped egresses, so each adds half the delay and the
# loss p with 1-(1-p)^2 = P). burst: 1 ms at the rate, at least two frames; queue:
# 20 ms at the rate, at least 256 KiB.
shape() {
    local ns=$1 dev=$2 burst limit
    burst=$(awk -v b="$BPS" 'BEGIN { x = b / 8 / 1000; if (x < 65536) x = 65536; printf "%d", x }')
    limit=$(awk -v b="$BPS" 'BEGIN { x = b / 8 * 0.020; if (x < 262144) x = 262144; printf "%d", x }')
    if [ "$NETEM" = 0 ]; then
        ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "${BPS}bit" \
            burst "$burst" limit "$limit" || return 1
    else
        local half loss=()
        half=$(awk -v l="${LAT_S:-0}" 'BEGIN { printf "%.0fus", l * 1e6 / 2 }')
        [ -n "$LOSS" ] && loss=(loss "$(awk -v p="$LOSS" 'BEGIN { printf "%.6f%%", 100 * (1 - sqrt(1 - p / 100)) }')")
        ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: htb default 1 &&
        ip netns exec "$ns" tc class add dev "$dev" parent 1: classid 1:1 htb rate "${BPS}bit" \
            ceil "${BPS}bit" burst "$burst" &&
        ip netns exec "$ns" tc qdisc add dev "$dev" parent 1:1 handle 10: netem delay "$half" \
            "${loss[@]}" limit 100000 || return 1
    fi
}

# A veth pair from switch port PORT to interface DEV (address ADDR/24) of namespace NS.
link() {
    local ns=$1 port=$2 dev=$3 addr=$4
    ip -n "$SW" link add "$port" type veth peer name "$dev" netns "$ns" ||
        die "cannot create the veth pair $port/$dev" 1
    ip -n "$SW" link set "$port" master br0 up
    ip -n "$ns" addr add "$addr/24" dev "$dev"
    ip -n "$ns" link set "$dev" up
}

# Rank K's node: a shaped data link lab0 and an unshaped control link ctl0.
rank_node() {
    local k=$1 ns="$ID-r$1"
    mkns "$ns"
    link "$ns" "p$k" lab0 "$SUBNET.$((k + 1))"
    shape "$ns" lab0 || die "tc: cannot shape lab0 in $ns" 1
    shape "$SW" "p$k" || die "tc: cannot shape p$k in $SW" 1
    link "$ns" "c$k" ctl0 "$CSUBNET.$((k + 1))"
}

mkns "$HD" # mpirun's node: control network only
link "$HD" chd ctl0 "$CSUBNET.254"
ADDRS=()
for ((k = 0; k < RANKS; k++)); do
    rank_node "$k"
    ADDRS+=("$SUBNET.$((k + 1))")
    echo "$CSUBNET.$((k + 1)) $ID-r$k" >>"$STATE/map"
    echo "$CSUBNET.$((k + 1)) slots=1" >>"$STATE/hostfile"
done
say "lab $ID: $RANKS rank namespaces ($ID-r0..r$((RANKS - 1)), ${ADDRS[0]}..) behind bridge $SW, links $BPS bit/s each way (tbf on both veth ends${LAT:+, +$LAT}${LOSS:+, loss $LOSS%})"

[ -n "$IDFILE" ] && echo "$ID" >"$IDFILE"

# ---- 3. the natural latency: median TCP round trip / 2 over the data links r0 <-> r1 ----
if [ "$RANKS" -ge 2 ]; then
    A="$ID-r0" B="$ID-r1" AADDR=${ADDRS[0]}
    ip netns exec "$A" timeout 25 "$PY" "$PROBE" echo-server "$AADDR" 5300 &
    out=$(ip netns exec "$B" timeout 25 "$PY" "$PROBE" rtt "$AADDR" 5300 200) ||
        die "the latency probe between $A and $B failed: the lab's links do not work" 1
    wait
    rtt=${out#rtt_median_s=}; rtt=${rtt%% *}
    LAT_MEAS=$(awk -v r="$rtt" 'BEGIN { printf "%.9f", r / 2 }')
    LAT_US=$(awk -v s="$LAT_MEAS" 'BEGIN { printf "%.0f", s * 1e6 }')
    echo "$PROG: natural latency (median TCP round trip / 2, 200 round trips $A <-> $B): ${LAT_US}us; use --net-latency ${LAT_US}us to compare with the model" >&2
else
    LAT_MEAS=0
    say "one rank: no data link between ranks, no latency to measure"
fi

# ---- 4. mpirun in the head namespace; the rsh agent starts each daemon in its node ----
cat >"$STATE/rsh" <<EOF
#!/bin/sh
# netlab rsh agent: "rsh HOST COMMAND..." runs COMMAND in the namespace of HOST.
host=\$1; shift
ns=\$(awk -v h="\$host" '\$1 == h { print \$2 }' "$STATE/map")
[ -n "\$ns" ] || { echo "netlab rsh: unknown host \$host" >&2; exit 1; }
# every node has the same host name (one kernel): a session directory of its own per
# daemon, or two daemons can race for the same /tmp/ompi.HOST.UID ("File exists")
mkdir -p "$STATE/tmp-\$ns" || exit 1
OMPI_MCA_orte_tmpdir_base="$STATE/tmp-\$ns"; export OMPI_MCA_orte_tmpdir_base
exec ip netns exec "\$ns" /bin/sh -c "\$*"
EOF
chmod +x "$STATE/rsh"
[[ " ${MCA[*]} " == *" mpi_yield_when_idle "* ]] || MCA+=(--mca mpi_yield_when_idle 1)
[[ " ${MCA[*]} " == *" rtc_hwloc_vmhole "* ]] || MCA+=(--mca rtc_hwloc_vmhole none)
# Every "node" of the lab is this machine: Open MPI's default binding (a rank to the
# first core of its node, for 2 ranks or fewer) would put every rank on core 0.
[[ " ${MCA[*]} " == *" hwloc_base_binding_policy "* ]] ||
    MCA+=(--mca hwloc_base_binding_policy none)
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
export NETLAB_ADDRS="${ADDRS[*]}" NETLAB_LATENCY_S="$LAT_MEAS" NETLAB_BANDWIDTH_BPS="$BPS"
say "mpirun -np $RANKS (btl self,tcp over lab0, control over ctl0; time limit ${LIMIT}s): $*"
ip netns exec "$HD" timeout -s TERM -k 10 "$LIMIT" \
    mpirun --allow-run-as-root -np "$RANKS" --hostfile "$STATE/hostfile" --map-by node \
    --mca plm_rsh_agent "$STATE/rsh" --mca btl self,tcp --mca btl_tcp_if_include lab0 \
    --mca oob_tcp_if_include ctl0 --mca pml ob1 "${MCA[@]}" \
    -x NETLAB_ADDRS -x NETLAB_LATENCY_S -x NETLAB_BANDWIDTH_BPS -x OPENBLAS_NUM_THREADS \
    -x PATH -x LD_LIBRARY_PATH "$@" &
JOB=$!
wait $JOB
rc=$?
[ $rc = 124 ] && echo "$PROG: the job exceeded --time-limit ${LIMIT}s and was ended" >&2
exit $rc
