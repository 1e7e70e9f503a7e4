#!/usr/bin/python3
# Runs the CSER studies (A: accuracy vs R_C, D: non-iid) through the `cser` CLI, resumably.
"""Usage: experiments/run_study.py [--phase P ...] [--deadline HH:MM] [--dry-run]

Phases: a1 (seed 1, lr 0.05, and 0.025 where 0.05 diverged), lr (lr 0.025 everywhere),
tuned (CSER at the `cser tune` pick, experiments/run_tune.sh), lr2 (extends the lr grid
0.1 / 0.05 / 0.025 / 0.0125 / 0.00625 past an edge: a lower lr while the best seed-1
run sits at the lowest lr tried or every lr diverged, 0.1 where 0.05 beats 0.025),
topk (a control: EF-SGD with exact top-k at lr 0.05 and 0.025; later phases then
include it), seeds (seeds 2 and 3 at the chosen lr), d (study D, non-iid), l1 and
lseeds (study L: the same protocol for 4 epochs at the lr chosen in study A, seed 1
then seeds 2 and 3).

Each run writes experiments/runs/<study>/<name>/ (config.json, metrics.csv, exit.txt).
A run whose metrics.csv ends with a `final` or `diverged` row is skipped, so the
script can be stopped (kill) and started again; an unfinished run is redone from
scratch. No new run starts after --deadline (UTC). Runs go in priority order.
"""
import csv
import os
import sys
import time

import runlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSER = os.path.join(ROOT, "build", "cser")
RUNS = os.path.join(ROOT, "experiments", "runs")

# The common protocol of every study-A/D run (see docs/RESULTS.md for the budget).
EPOCHS = "1"
BATCH = "16"
EVAL_EVERY = "117"          # 4 evaluations per epoch (469 steps of 8 x 16)
COMMON = ["--model", "cnn", "--dataset", "fashion-mnist", "--workers", "8",
          "--batch", BATCH, "--epochs", EPOCHS, "--eval-every", EVAL_EVERY,
          "--warmup", "0.1", "--lr-schedule", "cosine", "--quiet"]
LRS = ["0.1", "0.05", "0.025", "0.0125", "0.00625"]   # descending; see phase lr2
DEFAULT_LR = "0.05"
METHODS = ["ef-sgd", "qsparse", "csea", "cser-pl", "cser"]
TUNED_RCS = (256, 1024)     # "cser-tuned": CSER at the pick of `cser tune` (run_tune.sh)
L_EPOCHS = "4"              # study L: the longer budget


def tuned_spec(rc):
    """The best-ranked configuration of `cser tune` at this ratio that uses both
    compressors (C2 != 0; the C2 = 0 candidates are CSER-PL, which has its own row),
    or None before experiments/run_tune.sh ran."""
    try:
        with open(os.path.join(RUNS, "tune", "rc%d" % rc, "tune.csv")) as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    ok = [r for r in rows if r["diverged"] == "0" and float(r["r_c2"]) > 0]
    return min(ok, key=lambda r: int(r["rank"]))["method"] if ok else None


def configs(rcs=(256, 1024, 32, 16), extra=True):
    """(method, rc) of study A in priority order, SGD first. extra: also the
    "ef-sgd-topk" control (EF-SGD with exact top-k, phase topk)."""
    out = [("sgd", 1)]
    for rc in rcs:
        for m in METHODS:
            out.append((m, rc))
        if rc in TUNED_RCS:
            out.append(("cser-tuned", rc))
        if extra and final_acc("A", "ef-sgd-topk", rc, DEFAULT_LR, 1, "iid") is not None:
            out.append(("ef-sgd-topk", rc))
    return out


def run_name(method, rc, lr, seed, split):
    tag = "iid" if split == "iid" else split.replace(":", "")
    return "%s_rc%d_lr%s_s%d_%s" % (method, rc, lr, seed, tag)


def planned(phase):
    """The list of (study, method, rc, lr, seed, split) of one phase."""
    out = []
    if phase == "a1":       # seed 1, default lr, the key ratios first
        for rc in (256, 1024, 32, 16):
            if rc == 256:
                out.append(("A", "sgd", 1, DEFAULT_LR, 1, "iid"))
            for m in ("cser", "ef-sgd", "qsparse", "csea", "cser-pl"):
                out.append(("A", m, rc, DEFAULT_LR, 1, "iid"))
                out.append(("A", m, rc, "0.025", 1, "iid", "if-diverged"))
    elif phase == "lr":     # the rest of the lr grid on seed 1
        out.append(("A", "sgd", 1, "0.025", 1, "iid"))
        for rc in (256, 1024, 32, 16):
            for m in METHODS:
                out.append(("A", m, rc, "0.025", 1, "iid"))
    elif phase == "tuned":  # the `cser tune` pick, at the two lower lrs of the grid
        for rc in TUNED_RCS:
            for lr in ("0.025", "0.0125"):
                out.append(("A", "cser-tuned", rc, lr, 1, "iid"))
    elif phase == "topk":   # control: EF-SGD with top-k (values + 32-bit indices)
        for rc in (256, 1024, 32, 16):
            for lr in (DEFAULT_LR, "0.025"):
                out.append(("A", "ef-sgd-topk", rc, lr, 1, "iid"))
    elif phase == "seeds":  # seeds 2, 3 at the lr chosen on seed 1
        for seed in (2, 3):
            for m, rc in configs():
                out.append(("A", m, rc, chosen_lr(m, rc), seed, "iid"))
    elif phase == "d":      # study D: non-iid at R_C 256
        for seed in (1, 2, 3):
            for m, rc in configs(rcs=(256,), extra=False):
                out.append(("D", m, rc, chosen_lr(m, rc), seed, "dirichlet:0.5"))
    elif phase in ("l1", "lseeds"):  # study L: 4 epochs at the lr chosen in study A
        order = [("sgd", 1)] + [(best_cser(rc), rc) for rc in (256, 1024, 32, 16)]
        order += [(m, rc) for m in ("ef-sgd", "qsparse", "csea", "cser-pl")
                  for rc in (256, 1024, 32, 16)]
        order += [("ef-sgd-topk", 1024)]   # the control (actual R_C ~245), last
        for seed in ((1,) if phase == "l1" else (2, 3)):
            for m, rc in order:
                out.append(("L", m, rc, chosen_lr(m, rc), seed, "iid"))
    else:
        sys.exit("run_study.py: unknown phase '%s' (expected a1, lr, tuned, topk, lr2, "
                 "seeds, d, l1, lseeds)" % phase)
    return out


def last_row(path):
    try:
        with open(os.path.join(path, "metrics.csv")) as f:
            rows = [r for r in f.read().splitlines() if r]
    except OSError:
        return None
    return rows[-1].split(",") if len(rows) > 1 else None


def finished(path):
    row = last_row(path)
    return row is not None and row[0] in ("final", "diverged")


def final_acc(study, method, rc, lr, seed, split):
    path = os.path.join(RUNS, study, run_name(method, rc, lr, seed, split))
    row = last_row(path)
    if row is None or not finished(path):
        return None
    return -1.0 if row[0] == "diverged" else float(row[6])


def chosen_lr(method, rc):
    """The lr of the grid with the best seed-1 final accuracy in study A (default if
    none ran; ties go to the larger lr)."""
    best, best_lr = None, DEFAULT_LR
    for lr in LRS:
        acc = final_acc("A", method, rc, lr, 1, "iid")
        if acc is not None and (best is None or acc > best):
            best, best_lr = acc, lr
    return best_lr


def best_cser(rc):
    """cser or cser-tuned, whichever has the better seed-1 study-A accuracy at rc."""
    if rc not in TUNED_RCS:
        return "cser"
    a = final_acc("A", "cser", rc, chosen_lr("cser", rc), 1, "iid")
    b = final_acc("A", "cser-tuned", rc, chosen_lr("cser-tuned", rc), 1, "iid")
    return "cser-tuned" if b is not None and (a is None or b > a) else "cser"


def extend_lr_grid(method, rc, dry):
    """Phase lr2: walks the lr grid past its edge for one configuration on seed 1."""
    while True:
        tried = [lr for lr in LRS if final_acc("A", method, rc, lr, 1, "iid") is not None]
        if not tried:
            return
        accs = {lr: final_acc("A", method, rc, lr, 1, "iid") for lr in tried}
        best = max(tried, key=lambda lr: (accs[lr], float(lr)))
        lo, hi = LRS.index(tried[-1]), LRS.index(tried[0])
        if accs[best] == -1.0 or best == tried[-1]:
            if lo + 1 >= len(LRS) or len(tried) < 2 and accs[best] != -1.0:
                return
            nxt = LRS[lo + 1]
        elif best == tried[0] and hi > 0:
            nxt = LRS[hi - 1]
        else:
            return
        run_one("A", method, rc, nxt, 1, "iid", dry=dry)
        if dry or final_acc("A", method, rc, nxt, 1, "iid") is None:
            return


def command(study, method, rc, lr, seed, split, out):
    spec = tuned_spec(rc) if method == "cser-tuned" else method
    if method == "ef-sgd-topk":     # top-k sends k values + k indices: k = d / (2 R_C)
        spec = "ef-sgd:c=topk:%d" % (2 * rc)
    if spec is None:
        sys.exit("run_study.py: cser-tuned at R_C %d needs experiments/run_tune.sh first" % rc)
    cmd = [CSER, "train", "--method", spec, "--lr", lr, "--seed", str(seed),
           "--split", split, "--out", out] + COMMON
    if study == "L":
        cmd[cmd.index("--epochs") + 1] = L_EPOCHS
    if method not in ("sgd", "cser-tuned", "ef-sgd-topk"):
        cmd += ["--rc", str(rc)]
    return cmd


def run_one(study, method, rc, lr, seed, split, cond=None, dry=False):
    """Runs one configuration unless done; cond "if-diverged": only when the default-lr
    run of the same configuration diverged (the lower lr of the grid is tried first)."""
    out = os.path.join(RUNS, study, run_name(method, rc, lr, seed, split))
    if finished(out):
        return
    if cond == "if-diverged" and final_acc(study, method, rc, DEFAULT_LR, seed, split) != -1.0:
        return
    cmd = command(study, method, rc, lr, seed, split, out)
    print(time.strftime("%H:%M:%S"), " ".join(cmd[1:]), flush=True)
    if dry:
        return
    runlib.execute(cmd, out)


def past(deadline):
    if not deadline:
        return False
    hh, mm = (int(x) for x in deadline.split(":"))
    now = time.gmtime()
    return now.tm_hour * 60 + now.tm_min >= hh * 60 + mm


def main(argv):
    phases, deadline, dry = [], None, False
    i = 0
    while i < len(argv):
        if argv[i] == "--phase":
            phases.append(argv[i + 1]); i += 2
        elif argv[i] == "--deadline":
            deadline = argv[i + 1]; i += 2
        elif argv[i] == "--dry-run":
            dry = True; i += 1
        else:
            sys.exit("run_study.py: unknown argument '%s'" % argv[i])
    for phase in phases or ["a1", "lr", "tuned", "topk", "lr2", "seeds", "d", "l1",
                            "lseeds"]:
        if phase == "lr2":
            for m, rc in configs():
                if past(deadline):
                    print("deadline %s UTC reached; stopping (resume: same command)" % deadline)
                    return
                extend_lr_grid(m, rc, dry)
            continue
        for spec in planned(phase):
            if past(deadline):
                print("deadline %s UTC reached; stopping (resume: same command)" % deadline)
                return
            run_one(*spec, dry=dry)


if __name__ == "__main__":
    main(sys.argv[1:])
