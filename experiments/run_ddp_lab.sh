#!/bin/bash
# run_ddp_lab.sh: one PyTorch DDP / DDP + PowerSGD run (experiments/ddp_tta.py) inside
# the network lab (scripts/netlab.sh): RANKS namespaces, links of BANDWIDTH each way,
# one rank per namespace, gloo over the shaped lab0 links. Records the run like
# experiments/runlib.py does: OUTDIR/exit.txt = "exit RC wall W s" and the tail of the
# output (the lab's lines and rank 0's progress).
#
# usage: experiments/run_ddp_lab.sh [--lab-time-limit S] RANKS BANDWIDTH OUTDIR -- \
#            [ddp_tta.py options]
#
#   RANKS        ranks = namespaces (2..64)
#   BANDWIDTH    per-direction link rate, scripts/netlab.sh's forms: 100M, 1G
#   OUTDIR       the run directory (ddp_tta.py --out; do not give --out yourself)
#   --lab-time-limit S   netlab's hard limit (exit 124); default: ddp_tta.py's
#                --time-limit + 600 s when given (set-up and evaluations are not in
#                that clock), else 3600
#
# e.g. experiments/run_ddp_lab.sh 4 1G experiments/runs/LAB1G/ddp_sgd_lr0.1_s1 -- \
#          --mode sgd --model cnn-wide --batch 64 --epochs 1 --lr 0.1 --eval-every 30
# Exit status: the run's (netlab's: 124 time limit, 77 no lab here, 2 bad usage).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
die() { echo "run_ddp_lab.sh: $1" >&2; exit 2; }
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

LABLIMIT=""
case ${1:-} in
    -h|--help) usage ;;
    --lab-time-limit) LABLIMIT=${2:-}; shift 2 || usage ;;
esac
[ $# -ge 4 ] && [ "$4" = "--" ] ||
    die "expected RANKS BANDWIDTH OUTDIR -- [ddp_tta.py options] (see --help)"
RANKS=$1 BW=$2 OUT=$3
shift 4
[[ $RANKS =~ ^[0-9]+$ ]] && [ "$RANKS" -ge 2 ] && [ "$RANKS" -le 64 ] ||
    die "RANKS: expected a number of ranks 2..64, got '$RANKS'"
[ -n "$OUT" ] || die "OUTDIR: empty"
TL=""
for ((i = 1; i <= $#; i++)); do
    case ${!i} in
        --out|--out=*) die "give the run directory as OUTDIR, not --out" ;;
        --spawn|--spawn=*) die "--spawn: not in the lab (one rank per namespace)" ;;
        --time-limit) j=$((i + 1)); TL=${!j:-} ;;
        --time-limit=*) TL=${!i#--time-limit=} ;;
    esac
done
if [ -z "$LABLIMIT" ]; then
    LABLIMIT=3600
    [[ $TL =~ ^[0-9]+(\.[0-9]+)?$ ]] && LABLIMIT=$(awk -v t="$TL" 'BEGIN { printf "%d", t + 600 }')
fi
[[ $LABLIMIT =~ ^[0-9]+$ ]] && [ "$LABLIMIT" -ge 1 ] ||
    die "--lab-time-limit: expected whole seconds >= 1, got '$LABLIMIT'"

# the options, checked before a lab is built (as rank 0 of RANKS would see them)
OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=$RANKS /usr/bin/python3 "$HERE/ddp_tta.py" \
    "$@" --out "$OUT" --check-options || exit 2
mkdir -p "$OUT" || die "OUTDIR: cannot create '$OUT'"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/metrics.csv" "$OUT/metrics.jsonl" "$OUT/config.json" "$OUT/exit.txt"
LOG=$(mktemp "/tmp/run_ddp_lab.XXXXXX") || die "mktemp failed"
trap 'rm -f "$LOG"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s.%N)
"$ROOT/scripts/netlab.sh" --ranks "$RANKS" --bandwidth "$BW" \
    --time-limit "$LABLIMIT" -- /usr/bin/python3 "$HERE/ddp_tta.py" "$@" --out "$OUT" \
    >"$LOG" 2>&1
rc=$?
t1=$(date +%s.%N)
{
    awk -v a="$t0" -v b="$t1" -v r="$rc" 'BEGIN { printf "exit %d wall %.1f s\n", r, b - a }'
    tail -c 3000 "$LOG"
} >"$OUT/exit.txt"
tail -n 3 "$LOG"
echo "run_ddp_lab.sh: exit $rc; $OUT/exit.txt" >&2
exit $rc
