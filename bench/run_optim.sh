#!/bin/sh
# Optimizer step time per method (bench_optim), written to docs/bench/optim.md.
# Usage: bench/run_optim.sh BUILD_DIR [REPS [RC]]
set -eu
BUILD=${1:-build}
REPS=${2:-5}
RC=${3:-256}
cd "$(dirname "$0")/.."
BIN="$BUILD/bench/bench_optim"
[ -x "$BIN" ] || { echo "run_optim.sh: $BIN not found: build the bench_optim target" >&2; exit 1; }
mkdir -p docs/bench
TABLE=$(OPENBLAS_NUM_THREADS=1 "$BIN" "$REPS" "$RC")
{
    echo "## Optimizer step time"
    echo
    echo "Time of one optimizer step (momentum, compression, bookkeeping; no backprop),"
    echo "one worker on the threads backend, so the collectives move nothing and no network"
    echo "time is included. Every method at the target ratio R_C = $RC from"
    echo "\`cser_optim_config_for_ratio\` (SGD at R_C = 1), plus general CSER with top-k."
    echo "Methods are interleaved in each repetition; a sample is the mean of 16 consecutive"
    echo "steps (periodic syncs and resets included in their proportion). Ratios are to SGD"
    echo "with Nesterov momentum measured in the same run. The machine is shared: read the"
    echo "minimum column first."
    echo
    echo "$TABLE"
    echo
    echo "Command: \`bench/run_optim.sh $BUILD $REPS $RC\` ($BIN $REPS $RC), $(date -u '+%Y-%m-%d %H:%M UTC'),"
    echo "$(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown CPU)."
} > docs/bench/optim.md.tmp
mv docs/bench/optim.md.tmp docs/bench/optim.md
echo "wrote docs/bench/optim.md" >&2
