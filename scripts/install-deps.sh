#!/bin/sh
# Installs the Debian packages cser needs to build, test and run, when missing.
# Idempotent: does nothing (and needs no network) when everything is present.
# Usage: scripts/install-deps.sh [extra-package ...]
set -eu
PKGS="build-essential cmake pkg-config libopenblas-dev libopenmpi-dev openmpi-bin \
zlib1g-dev libcmocka-dev dataset-fashion-mnist gnuplot-nox \
python3 python3-pytest python3-numpy python3-torch $*"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-deps: need root to install:$missing" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || $SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
