#!/bin/sh
# The main job of `make demo` (see README.md).
set -eu
BUILD=${1:-build}
"$BUILD/cser" info
"$BUILD/cser" psync-demo --workers 8
