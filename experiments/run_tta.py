#!/usr/bin/python3
# Runs the time-to-accuracy study (issue 12) through the `cser` CLI, resumably.
"""Usage: experiments/run_tta.py [--phase P ...] [--deadline HH:MM] [--dry-run]

Study W: Fashion-MNIST, model cnn-wide (10.8M parameters), 8 in-process workers,
batch 32 per worker, 1 epoch, --warmup auto for every method, modeled network 1 Gbit/s
(100 Mbit/s derived from the same rows by experiments/report_tta.py).
Study F: Fashion-MNIST cnn at a budget where SGD has flattened (item 4 of the issue).

Phases (default order: w1 wseeds wrest fixw fbudget fseeds):
  w1      seed 1: the lr walk of SGD, then CSER at R_C 256, 1024 and 16
  wseeds  seeds 2 and 3 of SGD and CSER at 256 and 1024, at the chosen lr
  wrest   seed 1: the lr walk of local SGD, EF-SGD, QSparse, CSEA, CSER-PL at 256,
          1024 and 16
  fixw    CSER at 256 and 1024 at the chosen lr with the fixed 0.1-epoch warm-up
          (evidence for --warmup auto)
  fbudget study F: SGD on cnn for 8, 16, 32 epochs until its last two evaluations
          differ by < 0.2 points (the flat budget)
  fseeds  study F at the flat budget: SGD and CSER at R_C 16, 32, 256, 1024, 3 seeds
  flr     study F at the flat budget: CSER at R_C 16 and 32, seed 1, one grid step
          above and below study A's lr (is the gap to SGD the lr?)

lr walk: the grid 0.4 ... 0.003125 (halving); a configuration starts at its start lr
(SGD 0.1; the others one grid step below SGD's chosen lr, or 0.025 before SGD has
one), then runs the neighbour above the best lr, then the one below, until the best
has both neighbours tried (or sits at the edge of the grid); a run that diverges or
collapses (final accuracy < 20%) is not a candidate, and when every run failed the
walk goes below the lowest lr tried. The chosen lr is the best seed-1 final accuracy
(ties: the larger lr). History: SGD's walk and CSER's first run at R_C 256 (lr
0.00625) were made with an earlier order (start two grid steps below SGD, the lower
neighbour first); the walk's stopping rule is the same, so the recorded runs stand.

Study P and the lab (item 3b; the lab phases need root, scripts/netlab.sh):
  p1        study P: 2 in-process workers x batch 32, cnn-wide, 1 epoch: the lr walk of
            SGD, then CSER at R_C 256 and 1024
  lab1g     P's chosen SGD and CSER runs on the lab, 2 ranks, 1 Gbit/s (LAB1G/)
  labref1g  PyTorch DDP and DDP + PowerSGD rank 4 on the same links (experiments/
            ddp_tta.py through experiments/run_ddp_lab.sh), at P's SGD lr
  lab100m   the lab1g runs on 100 Mbit/s (LAB100M/); SGD stops at its target
  labref100m  the PyTorch runs on 100 Mbit/s, stopping at SGD's final - 1
  labpsgd100m  only DDP + PowerSGD of labref100m (dense DDP there takes ~50 minutes)
  pseeds    study P: seeds 2 and 3 of SGD and CSER at R_C 256 and 1024 at the chosen lr
  prest     study P, seed 1: local SGD, EF-SGD, QSparse, CSEA, CSER-PL at R_C 256, 1024
            and 16, and CSER at 16, each at the lr rule (SGD's chosen lr / n with
            --warmup auto, docs/methods.md) instead of a walk: modeled times only
  p2        study P2: study P's chosen SGD and CSER (R_C 256, 1024) runs for 2 epochs
            (in process, modeled times: does CSER reach SGD's final - 1 given longer?)
Run them with CPU priority (nice -n -20): docs/netlab.md.

Each run writes experiments/runs/<study>/<method>_rc<R>_lr<lr>_s<seed>_iid/
(config.json, metrics.csv, exit.txt). A run whose metrics.csv ends with a `final` or
`diverged` row is skipped, so the script can be stopped (kill) and started again; an
unfinished run is redone from scratch. No new run starts after --deadline (UTC), and a
run that would still be going at the deadline is not started if its expected length
(from the recorded runs of the same study) does not fit.
"""
import csv
import os
import sys
import time

import runlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSER = os.path.join(ROOT, "build", "cser")
RUNS = os.path.join(ROOT, "experiments", "runs")

GRID = ["0.4", "0.2", "0.1", "0.05", "0.025", "0.0125", "0.00625", "0.003125"]
START = {"sgd": "0.1"}
START_LOCAL = "0.025"
RCS = (256, 1024, 16)
OTHERS = ["local-sgd", "ef-sgd", "qsparse", "csea", "cser-pl"]

STUDIES = {
    # study W: the communication-bound workload
    "W": ["--model", "cnn-wide", "--dataset", "fashion-mnist", "--workers", "8",
          "--batch", "32", "--epochs", "1", "--eval-every", "30", "--warmup", "auto",
          "--lr-schedule", "cosine", "--net-bandwidth", "1G", "--net-framing", "0",
          "--quiet"],   # framing 0: the model its first runs were recorded with
    # study F: cnn, study A's protocol (batch 16, 0.1-epoch warm-up), longer budgets
    "F": ["--model", "cnn", "--dataset", "fashion-mnist", "--workers", "8",
          "--batch", "16", "--eval-every", "469", "--warmup", "0.1",
          "--lr-schedule", "cosine", "--net-bandwidth", "1G", "--quiet"],
}
# Study P and the lab studies (item 3b). This 2-core machine hosts 2 ranks honestly
# (docs/netlab.md), so the lab runs 2 ranks; the per-rank batch is 32 so that a step is
# communication-bound the way the paper's cluster was (cnn-wide at batch 32: ~0.08 s of
# compute against ~0.36 s for the dense allreduce at 1 Gbit/s; at batch 128 the
# allreduce is only ~1.1x the compute and no method could be more than ~2x faster).
# Study P walks the lr grid with 2 in-process workers (threads: the same bits as the
# 2-rank MPI run, so the walk carries over exactly), and the lab runs repeat P's chosen
# configurations over shaped links, recording the measured wall clock (wall_s) and the
# modeled time (modeled_total_s, the lab's rate and measured latency) side by side.
STUDIES["P"] = ["--model", "cnn-wide", "--dataset", "fashion-mnist", "--workers", "2",
                "--batch", "32", "--epochs", "1", "--eval-every", "94", "--warmup", "auto",
                "--lr-schedule", "cosine", "--net-bandwidth", "1G", "--quiet"]
# Study P2: P's configurations at P's chosen lrs for 2 epochs (does CSER reach SGD's
# final - 1 with a longer budget? modeled times only)
STUDIES["P2"] = STUDIES["P"][:]
STUDIES["P2"][STUDIES["P2"].index("--epochs") + 1] = "2"
LAB = {"LAB1G": "1G", "LAB100M": "100M"}
LAB_RANKS = 2
LAB_ARGS = ["--model", "cnn-wide", "--dataset", "fashion-mnist", "--batch", "32",
            "--epochs", "1", "--eval-every", "94", "--warmup", "auto",
            "--lr-schedule", "cosine", "--backend", "mpi", "--quiet"]
LAB_CONFIGS = [("sgd", 1), ("cser", 256), ("cser", 1024)]
DDP_LAB = os.path.join(ROOT, "experiments", "run_ddp_lab.sh")
DDP_ARGS = ["--model", "cnn-wide", "--batch", "32", "--epochs", "1", "--warmup", "0.1",
            "--lr-schedule", "cosine", "--eval-every", "94"]
NETLAB = os.path.join(ROOT, "scripts", "netlab.sh")
F_BUDGETS = ("8", "16", "32")       # epochs tried for the flat budget, in order
F_LR = {("sgd", 1): "0.1", ("cser", 16): "0.025", ("cser", 32): "0.025",
        ("cser", 256): "0.0125", ("cser", 1024): "0.0125"}   # study A's picks (RESULTS.md)


def run_name(method, rc, lr, seed, extra=""):
    return "%s_rc%d_lr%s_s%d_iid%s" % (method, rc, lr, seed, extra)


def run_dir(study, method, rc, lr, seed, extra=""):
    return os.path.join(RUNS, study, run_name(method, rc, lr, seed, extra))


def last_row(path):
    try:
        with open(os.path.join(path, "metrics.csv")) as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    return rows[-1] if rows else None


def rows_of(path):
    try:
        with open(os.path.join(path, "metrics.csv")) as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def finished(path):
    """A run ended with its final (or diverged) row, or a run stopped on purpose at a
    target (--stop-after) that exited 0."""
    row = last_row(path)
    if row is not None and row["event"] in ("final", "diverged"):
        return True
    try:
        with open(os.path.join(path, "exit.txt")) as f:
            return row is not None and f.readline().startswith("exit 0 ")
    except OSError:
        return False


def final_acc(path):
    """Final test accuracy (%), -1 for a diverged run, None if not finished."""
    row = last_row(path)
    if row is None or row["event"] not in ("final", "diverged"):
        return None
    return -1.0 if row["event"] == "diverged" else 100.0 * float(row["test_acc"])


def tried(study, method, rc):
    out = {}
    for lr in GRID:
        a = final_acc(run_dir(study, method, rc, lr, 1))
        if a is not None:
            out[lr] = a
    return out


def chosen_lr(study, method, rc):
    t = tried(study, method, rc)
    ok = {lr: a for lr, a in t.items() if a >= COLLAPSED}
    if not ok:
        return None
    return max(ok, key=lambda lr: (ok[lr], float(lr)))


COLLAPSED = 20.0   # a final accuracy below this (10 classes) counts as a failed run


def next_in_walk(study, method, rc):
    """The next lr of the walk, or None when the walk is done."""
    t = tried(study, method, rc)
    if not t:
        if method in START:
            return START[method]
        sgd = chosen_lr(study, "sgd", 1)    # one grid step below SGD's lr (SGD / 2)
        return GRID[GRID.index(sgd) + 1] if sgd and GRID.index(sgd) + 1 < len(GRID) \
            else START_LOCAL
    good = {lr: a for lr, a in t.items() if a >= COLLAPSED}
    if not good:    # every run diverged or collapsed: go below the lowest tried
        lowest = max(GRID.index(lr) for lr in t)
        return GRID[lowest + 1] if lowest + 1 < len(GRID) else None
    best = max(good, key=lambda lr: (good[lr], float(lr)))
    i = GRID.index(best)
    for j in (i - 1, i + 1):    # the higher neighbour first, then the lower
        if 0 <= j < len(GRID) and GRID[j] not in t:
            return GRID[j]
    return None


def command(study, method, rc, lr, seed, out, epochs=None, warmup=None):
    cmd = [CSER, "train", "--method", method, "--lr", lr, "--seed", str(seed),
           "--out", out] + STUDIES[study]
    if method != "sgd":
        cmd += ["--rc", str(rc)]
    if epochs is not None:
        cmd += ["--epochs", epochs]
    if warmup is not None:
        cmd[cmd.index("--warmup") + 1] = warmup
    return cmd


def lab_command(study, method, rc, lr, seed, out, stop_after=None):
    """`cser train` inside the network lab; the latency the model charges is the lab's
    measured one (netlab.sh exports it)."""
    bw = LAB[study]
    train = [CSER, "train", "--method", method, "--lr", lr, "--seed", str(seed),
             "--out", out, "--net-bandwidth", bw] + LAB_ARGS
    if method != "sgd":
        train += ["--rc", str(rc)]
    if stop_after:
        train += ["--stop-after", str(stop_after)]
    return [NETLAB, "--ranks", str(LAB_RANKS), "--bandwidth", bw, "--quiet",
            "--time-limit", "5400", "--", "sh", "-c",
            'exec "$@" --net-latency "$NETLAB_LATENCY_S"', "cser-lab"] + train


def expected_seconds(study):
    """Median wall time of the finished runs of a study (for the deadline check)."""
    walls = []
    base = os.path.join(RUNS, study)
    for d in os.listdir(base) if os.path.isdir(base) else []:
        try:
            with open(os.path.join(base, d, "exit.txt")) as f:
                walls.append(float(f.readline().split()[3]))
        except (OSError, ValueError, IndexError):
            pass
    walls.sort()
    return walls[len(walls) // 2] if walls else 0.0


class Deadline(Exception):
    pass


class Runner:
    def __init__(self, deadline, dry):
        self.deadline, self.dry = deadline, dry

    def minutes_left(self):
        if not self.deadline:
            return 1e9
        hh, mm = (int(x) for x in self.deadline.split(":"))
        now = time.gmtime()
        return hh * 60 + mm - (now.tm_hour * 60 + now.tm_min + now.tm_sec / 60.0)

    def run(self, study, method, rc, lr, seed, extra="", epochs=None, warmup=None,
            stop_after=None):
        out = run_dir(study, method, rc, lr, seed, extra)
        if finished(out):
            return
        left = self.minutes_left()
        need = expected_seconds(study) / 60.0 if epochs is None else 0.0
        if left <= 0 or need > left:
            raise Deadline()
        cmd = (lab_command(study, method, rc, lr, seed, out, stop_after) if study in LAB
               else command(study, method, rc, lr, seed, out, epochs, warmup))
        print(time.strftime("%H:%M:%S"), " ".join(cmd[1:]), flush=True)
        if self.dry:
            return
        runlib.execute(cmd, out)

    def run_ddp(self, study, method, lr, extra, opts):
        out = run_dir(study, method, 1, lr, 1, extra)
        if finished(out):
            return
        if self.minutes_left() <= 0:
            raise Deadline()
        cmd = [DDP_LAB, str(LAB_RANKS), LAB[study], out, "--"] + opts
        print(time.strftime("%H:%M:%S"), " ".join(cmd), flush=True)
        if not self.dry:
            runlib.execute(cmd, out)

    def walk(self, study, method, rc):
        while True:
            lr = next_in_walk(study, method, rc)
            if lr is None:
                return
            self.run(study, method, rc, lr, 1)
            if self.dry or final_acc(run_dir(study, method, rc, lr, 1)) is None:
                return


def flat_budget():
    """The first study-F SGD budget whose last two evaluations differ by < 0.2
    points, or None."""
    for e in F_BUDGETS:
        rows = [r for r in rows_of(run_dir("F", "sgd", 1, F_LR[("sgd", 1)], 1, "_e" + e))
                if r["event"] in ("eval", "final")]
        if len(rows) >= 2 and rows[-1]["event"] == "final":
            if abs(float(rows[-1]["test_acc"]) - float(rows[-2]["test_acc"])) * 100 < 0.2:
                return e
    return None


def phase(r, name):
    W = "W"
    if name == "w1":
        r.walk(W, "sgd", 1)
        for rc in RCS:
            r.walk(W, "cser", rc)
    elif name == "wseeds":
        for seed in (2, 3):
            for m, rc in [("sgd", 1)] + [("cser", rc) for rc in (256, 1024)]:
                lr = chosen_lr(W, m, rc)
                if lr is not None:
                    r.run(W, m, rc, lr, seed)
    elif name == "wrest":
        for rc in RCS:
            for m in ("csea", "cser-pl", "qsparse", "ef-sgd", "local-sgd"):
                r.walk(W, m, rc)
    elif name == "fixw":
        for rc in (256, 1024):
            lr = chosen_lr(W, "cser", rc)
            if lr is not None:
                r.run(W, "cser", rc, lr, 1, "_warm0.1", warmup="0.1")
    elif name == "fbudget":
        for e in F_BUDGETS:
            if flat_budget() is not None:
                return
            r.run("F", "sgd", 1, F_LR[("sgd", 1)], 1, "_e" + e, epochs=e)
    elif name == "fseeds":
        e = flat_budget()
        if e is None:
            print("fseeds: no flat budget yet (phase fbudget first)")
            return
        for seed in (1, 2, 3):
            for (m, rc), lr in sorted(F_LR.items(), key=lambda kv: kv[0][1]):
                r.run("F", m, rc, lr, seed, "_e" + e, epochs=e)
    elif name == "flr":
        # is the end-of-training gap at R_C 16/32 the lr? one grid step up and down
        # from study A's pick, seed 1, at the flat budget
        e = flat_budget()
        if e is None:
            print("flr: no flat budget yet (phase fbudget first)")
            return
        for rc in (16, 32):
            i = GRID.index(F_LR[("cser", rc)])
            for lr in (GRID[i - 1], GRID[i + 1]):
                r.run("F", "cser", rc, lr, 1, "_e" + e, epochs=e)
    elif name == "p1":
        r.walk("P", "sgd", 1)
        for rc in (256, 1024):
            r.walk("P", "cser", rc)
    elif name == "pseeds":
        for seed in (2, 3):
            for m, rc in LAB_CONFIGS:
                lr = chosen_lr("P", m, rc)
                if lr is not None:
                    r.run("P", m, rc, lr, seed)
    elif name == "prest":
        sgd_lr = chosen_lr("P", "sgd", 1)
        if sgd_lr is None:
            print("prest: study P's SGD walk is not finished (phase p1 first)")
            return
        lr = "%g" % (float(sgd_lr) / 2)    # the lr rule: SGD's lr / n, n = 2 workers
        for rc in RCS:
            for m in (["cser"] if rc == 16 else []) + ["cser-pl", "csea", "qsparse",
                                                       "local-sgd", "ef-sgd"]:
                r.run("P", m, rc, lr, 1, "_rule")
    elif name == "p2":
        for m, rc in LAB_CONFIGS:
            lr = chosen_lr("P", m, rc)
            if lr is not None:
                r.run("P2", m, rc, lr, 1)
    elif name == "lab1g":
        for m, rc in LAB_CONFIGS:
            lr = chosen_lr("P", m, rc)
            if lr is not None:
                r.run("LAB1G", m, rc, lr, 1)
    elif name == "lab100m":
        # The same runs (the same bits: only the link differs) on 100 Mbit/s. SGD's
        # run there stops at the first evaluation that reached SGD's final - 1 in its
        # 1 Gbit/s run: its time to the targets is all that is measured, and the rest
        # of its epoch would take the best part of an hour on this link.
        for m, rc in LAB_CONFIGS[1:] + LAB_CONFIGS[:1]:   # SGD, the long one, last
            lr = chosen_lr("P", m, rc)
            if lr is None:
                continue
            stop = None
            if m == "sgd":
                rows = rows_of(run_dir("LAB1G", m, rc, lr, 1))
                if not rows or rows[-1]["event"] != "final":
                    continue
                target = 100.0 * float(rows[-1]["test_acc"]) - 1.0
                stop = next(int(x["step"]) for x in rows
                            if 100.0 * float(x["test_acc"]) >= target)
                if stop >= int(rows[-1]["step"]):
                    stop = None
            r.run("LAB100M", m, rc, lr, 1, stop_after=stop)
    elif name in ("labref", "labref1g", "labref100m", "labpsgd100m"):
        # PyTorch DDP (gloo) and DDP + PowerSGD rank 4 over the same links, at SGD's lr
        # of study P with SGD's fixed 0.1-epoch warm-up (experiments/ddp_tta.py). On
        # 100 Mbit/s they stop at SGD's final - 1 (study P), dense DDP within 50 min.
        lr = chosen_lr("P", "sgd", 1)
        rows = rows_of(run_dir("P", "sgd", 1, lr, 1)) if lr else []
        if not rows or rows[-1]["event"] != "final":
            print("labref: study P's SGD run is not finished")
            return
        target = 100.0 * float(rows[-1]["test_acc"]) - 1.0
        studies = {"labref": ("LAB1G", "LAB100M"), "labref1g": ("LAB1G",),
                   "labref100m": ("LAB100M",), "labpsgd100m": ("LAB100M",)}[name]
        modes = (("powersgd:4", "ddp-psgd", "_r4"), ("sgd", "ddp", ""))
        if name == "labpsgd100m":
            modes = modes[:1]
        for study in studies:
            for mode, method, extra in modes:
                opts = ["--mode", mode] + DDP_ARGS + ["--lr", lr, "--seed", "1"]
                if study == "LAB100M":
                    opts += ["--stop-at", "%.2f" % target]
                    if mode == "sgd":
                        opts += ["--time-limit", "3000"]
                r.run_ddp(study, method, lr, extra, opts)
    else:
        sys.exit("run_tta.py: unknown phase '%s' (expected w1, wseeds, wrest, fixw, "
                 "fbudget, fseeds, flr, p1, pseeds, prest, p2, lab1g, lab100m, labref, "
                 "labref1g, labref100m, labpsgd100m)" % name)


def main(argv):
    phases, deadline, dry = [], None, False
    i = 0
    while i < len(argv):
        if argv[i] == "--phase" and i + 1 < len(argv):
            phases.append(argv[i + 1]); i += 2
        elif argv[i] == "--deadline" and i + 1 < len(argv):
            deadline = argv[i + 1]; i += 2
            try:
                hh, mm = (int(x) for x in deadline.split(":"))
                if not (0 <= hh < 24 and 0 <= mm < 60):
                    raise ValueError
            except ValueError:
                sys.exit("run_tta.py: --deadline: expected HH:MM (UTC), got '%s'" % deadline)
        elif argv[i] == "--dry-run":
            dry = True; i += 1
        else:
            sys.exit("run_tta.py: unknown argument '%s' (see the usage at the top)" % argv[i])
    if not os.access(CSER, os.X_OK):
        sys.exit("run_tta.py: %s is missing: build first (make build)" % CSER)
    r = Runner(deadline, dry)
    try:
        for name in phases or ["w1", "wseeds", "wrest", "fixw", "fbudget", "fseeds"]:
            phase(r, name)
    except Deadline:
        print("deadline %s UTC: stopping before the next run (resume: the same command)"
              % deadline, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
