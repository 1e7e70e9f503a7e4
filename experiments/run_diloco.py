#!/usr/bin/python3
# Issue 15, item 5: DiLoCo and Streaming DiLoCo against CSER, CSER-PL and EF-SGD at
# equal total bytes, through the `cser` CLI, resumably.
"""Usage: experiments/run_diloco.py [--phase P ...] [--deadline HH:MM] [--dry-run]

Phases (in priority order): s1 (seed 1), lr (the other inner learning rate, for every
configuration whose first seed-1 run is finished), seeds (seeds 2 and 3 at the chosen
learning rate: the better of the two seed-1 runs). Protocol: the cnn on Fashion-MNIST,
8 workers, batch 16, EPOCHS epochs, cosine schedule (the time-to-accuracy workload of
its own issue is to replace it once it lands); methods diloco, streaming-diloco, cser,
cser-pl, ef-sgd and streaming-diloco-q4 (its 4-bit payload, fragments synced 8x as
often) at R_C 256 and 1024 (`--rc`: the same total bytes for every method at a ratio),
each with inner SGD and inner AdamW. DiLoCo's H = R_C; Streaming DiLoCo's fragment
period H = R_C.

Each run writes experiments/runs/diloco/<name>/ (config.json, metrics.csv, exit.txt as
runlib.execute writes it; runs recorded before 2026-11-30 have the exit status alone).
A run whose metrics.csv ends with a `final` or `diverged` row is skipped, so the script
can be stopped (kill) and started again; an unfinished run is redone from scratch. No
new run starts after --deadline (UTC). The tables (final accuracy, time to target,
peak bytes per step) are written by experiments/report_diloco.py, which also reads study
L's CSER and CSER-PL runs (inner SGD, this protocol, walked lr, 3 seeds): the phases lr
and seeds skip those configurations.
"""
import os
import shutil
import sys
import time

import runlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSER = os.path.join(ROOT, "build", "cser")
RUNS = os.path.join(ROOT, "experiments", "runs", "diloco")

EPOCHS = "4"
COMMON = ["--model", "cnn", "--dataset", "fashion-mnist", "--workers", "8",
          "--batch", "16", "--epochs", EPOCHS, "--eval-every", "117",
          "--warmup", "0.1", "--lr-schedule", "cosine", "--quiet"]
METHODS = ["diloco", "streaming-diloco", "cser", "cser-pl", "ef-sgd", "streaming-diloco-q4"]
# streaming-diloco-q4: Streaming DiLoCo with its 4-bit payload at the same total bytes,
# so its fragments sync 8x as often: H = R_C * 4 / 32 (docs/methods.md: R_C = 32 H / B)
RCS = (256, 1024)
# inner optimizer -> (first lr, second lr tried in phase lr)
LRS = {"sgd": ("0.05", "0.025"), "adamw": ("0.001", "0.0003")}
SEEDS = (1, 2, 3)


def spec(method, inner, rc):
    """The --method value (and the --rc option, empty where the spec names its ratio):
    the presets default to AdamW, the others to SGD."""
    if method == "streaming-diloco-q4":
        sp = "streaming-diloco:c=fragment:%d,frags=8,q=4" % (rc * 4 // 32)
        return (sp + ",inner=sgd" if inner == "sgd" else sp), []
    return spec_name(method, inner), ["--rc", str(rc)]


def spec_name(method, inner):
    preset = method in ("diloco", "streaming-diloco")
    if inner == "adamw" and not preset:
        return method + ":inner=adamw"
    if inner == "sgd" and preset:
        return method + ":inner=sgd"
    return method


def name(method, inner, rc, lr, seed):
    return "%s-%s-rc%d-lr%s-s%d" % (method, inner, rc, lr, seed)


def status(run_dir):
    """'final', 'diverged', or None (not run or unfinished), and the last accuracy."""
    run = runlib.read_run(run_dir)
    if run is None:
        return None, None
    last = run["rows"][-1]
    return last["event"], float(last["test_acc"]) if last["test_acc"] else None


def run(method, inner, rc, lr, seed, dry):
    d = os.path.join(RUNS, name(method, inner, rc, lr, seed))
    st, acc = status(d)
    if st:
        return st, acc
    if dry:
        print("would run", d)
        return None, None
    shutil.rmtree(d, ignore_errors=True)   # an unfinished run is redone from scratch
    sp, rc_opt = spec(method, inner, rc)
    cmd = ([CSER, "train", "--method", sp] + rc_opt +
           ["--lr", lr, "--seed", str(seed), "--out", d] + COMMON)
    print(" ".join(cmd), flush=True)
    runlib.execute(cmd, d)
    return status(d)


def chosen_lr(method, inner, rc, dry):
    """The better of the two learning rates at seed 1 (the first if the second was not
    run): accuracy, a diverged run loses."""
    best, best_acc = LRS[inner][0], -1.0
    for lr in LRS[inner]:
        st, acc = status(os.path.join(RUNS, name(method, inner, rc, lr, 1)))
        if st == "final" and acc is not None and acc > best_acc:
            best, best_acc = lr, acc
    return best


def main(argv):
    phases, deadline, dry = [], None, False
    i = 0
    while i < len(argv):
        if argv[i] == "--phase":
            phases.append(argv[i + 1])
            i += 2
        elif argv[i] == "--deadline":
            deadline = argv[i + 1]
            i += 2
        elif argv[i] == "--dry-run":
            dry = True
            i += 1
        else:
            sys.exit("run_diloco.py: unknown argument '%s'\n%s" % (argv[i], __doc__))
    phases = phases or ["s1", "lr", "seeds"]
    for p in phases:
        if p not in ("s1", "lr", "seeds"):
            sys.exit("run_diloco.py: unknown phase '%s' (expected s1, lr, seeds)" % p)

    def late():
        if not deadline:
            return False
        hh, mm = (int(x) for x in deadline.split(":"))
        now = time.gmtime()
        return now.tm_hour * 60 + now.tm_min >= hh * 60 + mm

    grid = [(m, inner, rc) for rc in RCS for inner in ("sgd", "adamw") for m in METHODS]
    # study L ran these on this very protocol with its lr walk and 3 seeds
    # (report_diloco.py reads them): no second lr or seeds here
    in_l = {("cser", "sgd", 256), ("cser-pl", "sgd", 256), ("cser-pl", "sgd", 1024)}
    for p in phases:
        for m, inner, rc in grid:
            if late():
                print("deadline reached: stopping before new runs")
                return
            if p == "s1":
                run(m, inner, rc, LRS[inner][0], 1, dry)
            elif (m, inner, rc) in in_l:
                continue
            elif p == "lr":
                st, acc = status(os.path.join(RUNS, name(m, inner, rc, LRS[inner][0], 1)))
                if st is not None:
                    run(m, inner, rc, LRS[inner][1], 1, dry)
            else:
                lr = chosen_lr(m, inner, rc, dry)
                for seed in SEEDS[1:]:
                    run(m, inner, rc, lr, seed, dry)


if __name__ == "__main__":
    main(sys.argv[1:])
