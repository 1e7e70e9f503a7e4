#!/bin/sh
# The main job of `make demo` (see README.md): `cser train` with no options trains the
# cnn on Fashion-MNIST with 8 in-process workers, CSER at R_C = 256, for about three
# minutes on 2 cores, and prints the final summary (test accuracy of the evaluated
# model, bytes per worker each way, actual vs nominal R_C, measured time and the time
# modeled on a 10 Gbit/s, 50 us network). Add --out DIR for config.json, metrics and
# curves.png (docs/train.md).
set -eu
BUILD=${1:-build}
exec "$BUILD/cser" train
