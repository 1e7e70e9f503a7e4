#!/usr/bin/python3
# Runs the CSER studies (A: accuracy vs R_C, D: non-iid) through the `cser` CLI, resumably.
"""Usage: experiments/run_study.py [--phase P ...] [--deadline HH:MM] [--dry-run]

Each run writes experiments/runs/<study>/<name>/ (config.json, metrics.csv, exit.txt).
A run whose metrics.csv ends with a `final` or `diverged` row is skipped, so the
script can be stopped (kill) and started again; an unfinished run is redone from
scratch. No new run starts after --deadline (UTC). Runs go in priority order.
"""
import os
import subprocess
import sys
import time

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
LRS = ["0.05", "0.025"]   # 0.1 dropped: EF-SGD/QSparse diverge already at 0.05
DEFAULT_LR = "0.05"
METHODS = ["ef-sgd", "qsparse", "csea", "cser-pl", "cser"]


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
    elif phase == "seeds":  # seeds 2, 3 at the lr chosen on seed 1
        for seed in (2, 3):
            out.append(("A", "sgd", 1, chosen_lr("sgd", 1), seed, "iid"))
            for rc in (256, 1024, 32, 16):
                for m in METHODS:
                    out.append(("A", m, rc, chosen_lr(m, rc), seed, "iid"))
    elif phase == "d":      # study D: non-iid at R_C 256
        for seed in (1, 2, 3):
            out.append(("D", "sgd", 1, chosen_lr("sgd", 1), seed, "dirichlet:0.5"))
            for m in METHODS:
                out.append(("D", m, 256, chosen_lr(m, 256), seed, "dirichlet:0.5"))
    else:
        sys.exit("run_study.py: unknown phase '%s' (expected a1, lr, seeds, d)" % phase)
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
    """The lr of the grid with the best seed-1 final accuracy (default if none ran)."""
    best, best_lr = None, DEFAULT_LR
    for lr in LRS:
        acc = final_acc("A", method, rc, lr, 1, "iid")
        if acc is not None and (best is None or acc > best):
            best, best_lr = acc, lr
    return best_lr


def command(method, rc, lr, seed, split, out):
    cmd = [CSER, "train", "--method", method, "--lr", lr, "--seed", str(seed),
           "--split", split, "--out", out] + COMMON
    if method != "sgd":
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
    cmd = command(method, rc, lr, seed, split, out)
    print(time.strftime("%H:%M:%S"), " ".join(cmd[1:]), flush=True)
    if dry:
        return
    for f in ("metrics.csv", "metrics.jsonl"):
        if os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    with open(os.path.join(out, "exit.txt"), "w") as f:
        f.write("exit %d wall %.1f s\n%s" % (p.returncode, time.time() - t0,
                                            p.stdout[-3000:]))
    for junk in ("checkpoint.bin", "checkpoint.bin.tmp"):
        if os.path.exists(os.path.join(out, junk)):
            os.remove(os.path.join(out, junk))
    print("   exit %d, %.0f s" % (p.returncode, time.time() - t0), flush=True)


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
    for phase in phases or ["a1", "lr", "seeds", "d"]:
        for spec in planned(phase):
            if past(deadline):
                print("deadline %s UTC reached; stopping (resume: same command)" % deadline)
                return
            run_one(*spec, dry=dry)


if __name__ == "__main__":
    main(sys.argv[1:])
