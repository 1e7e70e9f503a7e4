#!/bin/sh
# run.sh: ctest entry of the Python suite (tests/CMakeLists.txt): runs pytest over the
# package in python/ with the libcser.so of this build.
# Usage: python/tests/run.sh LIBCSER_SO [pytest args...]
# Exits 77 (ctest SKIP_RETURN_CODE) with a line saying what is missing when python3,
# pytest, numpy or torch is absent (scripts/install-deps.sh installs them).
set -eu
LIB=$1
shift
case $LIB in /*) ;; *) LIB=$(pwd)/$LIB ;; esac   # run.sh cds below
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${CSER_PYTHON:-/usr/bin/python3}
if [ ! -x "$PY" ]; then
    echo "SKIP: $PY not found (install python3: scripts/install-deps.sh)"; exit 77
fi
for mod in pytest numpy torch; do
    if ! "$PY" -c "import $mod" >/dev/null 2>&1; then
        echo "SKIP: $PY cannot import $mod (install python3-$mod: scripts/install-deps.sh)"
        exit 77
    fi
done
export CSER_LIBRARY="$LIB" PYTHONPATH="$HERE/.." PYTHONDONTWRITEBYTECODE=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
cd "$HERE"
exec "$PY" -m pytest -q -p no:cacheprovider -o faulthandler_timeout=120 "$@"
