#!/bin/bash
# kill-resume-check.sh: crash-safe resume (issue 7, item 3). Trains a small synthetic
# run once uninterrupted, then the same run under kill -9 at KILLS seeded random
# moments, every second kill landing inside a checkpoint write (CSER_TEST_SLOW_CKPT
# holds the complete temporary file for a while before its rename; the script waits for
# checkpoint.bin.tmp to appear and kills inside that window). After every kill the
# latest checkpoint must be readable (magic and crc32 verified here, then by --resume),
# and the run continues with --resume (or starts again if no checkpoint exists yet).
# At the end the model hash must equal the uninterrupted run's, and metrics.csv must
# hold the same rows in every column that does not measure time.
#
# usage: scripts/kill-resume-check.sh [CSER_BINARY] [SEED] [KILLS]
#   defaults: build/cser, 1, 10. Exit 0 on success, 1 on a failed check.
set -u
BIN=${1:-build/cser}
SEED=${2:-1}
KILLS=${3:-10}
RANDOM=$SEED
T=$(mktemp -d /tmp/cser-kill-resume.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1
OPTS=(train --dataset synthetic --model mlp --workers 4 --batch 8 --train-subset 512
      --test-subset 64 --steps 300 --eval-every 50 --checkpoint-every 10 --warmup 0
      --quiet)

fail() { echo "kill-resume-check: FAIL: $*" >&2; exit 1; }
hash_of() { sed -n 's/^  model hash *\([0-9a-f]*\).*/\1/p' "$1"; }
# metrics.csv without the timing columns (11..15: compute_s .. wall_s)
rows_of() { cut -d, -f1-10 "$1/metrics.csv"; }

# The latest checkpoint, if any, must be whole: magic and the trailing crc32.
check_ckpt() {
    local f=$1/checkpoint.bin
    [ -e "$f" ] || return 0
    python3 - "$f" <<'EOF' || fail "kill $k left an unreadable $f"
import sys, zlib, struct
d = open(sys.argv[1], 'rb').read()
ok = len(d) > 36 and d[:8] == b'CSERCKPT' and \
    zlib.crc32(d[:-4]) & 0xffffffff == struct.unpack('<I', d[-4:])[0]
sys.exit(0 if ok else 1)
EOF
}

"$BIN" "${OPTS[@]}" --out "$T/ref" >"$T/ref.out" 2>"$T/ref.err" ||
    fail "the uninterrupted run failed: $(cat "$T/ref.err")"
REF=$(hash_of "$T/ref.out")
[ -n "$REF" ] || fail "no model hash in the uninterrupted run's output"

RUN=$T/run
start=$(date +%s.%N)
in_write=0
killed=0
for k in $(seq 1 "$KILLS"); do
    args=(--out "$RUN")
    [ -e "$RUN/checkpoint.bin" ] && args=(--resume "$RUN")
    CSER_TEST_SLOW_CKPT=60 "$BIN" "${OPTS[@]}" "${args[@]}" >"$T/k$k.out" 2>"$T/k$k.err" &
    pid=$!
    if ((k % 2 == 0)); then
        # inside a checkpoint write: after 0.1 .. 0.5 s wait for the temporary file,
        # then a random moment of the 60 ms window (the file is complete and fsynced,
        # not yet renamed)
        sleep "0.$((RANDOM % 5 + 1))"
        for _ in $(seq 1 2000); do
            [ -e "$RUN/checkpoint.bin.tmp" ] && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.005
        done
        sleep "0.0$((RANDOM % 5))"
    else
        # anywhere: 0.2 .. 1.0 s after the start
        sleep "0.$((RANDOM % 8 + 2))$((RANDOM % 10))"
    fi
    tmp_seen=0
    [ -e "$RUN/checkpoint.bin.tmp" ] && tmp_seen=1
    if kill -9 "$pid" 2>/dev/null; then
        killed=$((killed + 1))
        in_write=$((in_write + tmp_seen))
    fi
    { wait "$pid"; } 2>/dev/null
    rc=$?
    # a run that ended before the kill must have succeeded
    [ $rc -eq 137 ] || [ $rc -eq 0 ] || fail "run $k exited $rc: $(cat "$T/k$k.err")"
    step=$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(); \
t=struct.unpack_from('<Q',d,32)[0]; print(struct.unpack_from('<Q',d,40+t)[0])" \
        "$RUN/checkpoint.bin" 2>/dev/null || echo none)
    echo "kill $k: exit $rc, temporary checkpoint present: $tmp_seen, latest checkpoint" \
         "at step $step"
    check_ckpt "$RUN"
done

# finish the run
args=(--out "$RUN")
[ -e "$RUN/checkpoint.bin" ] && args=(--resume "$RUN")
"$BIN" "${OPTS[@]}" "${args[@]}" >"$T/final.out" 2>"$T/final.err" ||
    fail "the final resume failed: $(cat "$T/final.err")"
GOT=$(hash_of "$T/final.out")
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "uninterrupted model hash $REF; after $killed kills ($in_write inside a checkpoint" \
     "write) and resumes: $GOT; ${elapsed%.*} s"
[ "$GOT" = "$REF" ] || fail "model hash $GOT differs from the uninterrupted run's $REF"
diff <(rows_of "$T/ref") <(rows_of "$RUN") >"$T/rows.diff" ||
    fail "metrics.csv rows differ from the uninterrupted run's: $(cat "$T/rows.diff")"
((killed >= KILLS / 2)) || fail "only $killed of $KILLS runs were killed (too fast?)"
((in_write >= 1)) || fail "no kill landed inside a checkpoint write"
echo "kill-resume-check: OK"
