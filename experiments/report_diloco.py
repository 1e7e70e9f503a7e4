#!/usr/bin/python3
# Tables of issue 15's comparison (experiments/run_diloco.py), from the recorded runs.
"""Usage: experiments/report_diloco.py

Reads experiments/runs/diloco/<method>-<inner>-rc<R>-lr<lr>-s<seed>/ and writes
experiments/results/diloco_tables.md and the generated part of docs/RESULTS.md between
<!-- diloco:begin ... --> and <!-- diloco:end -->. Safe while the study runs: unfinished
runs are left out.

Per method x inner optimizer x R_C, at the chosen lr (the better seed-1 final accuracy
of the two tried; a diverged run loses): final test accuracy over the seeds, bytes sent
per worker, the peak bytes of one step (the metrics' `peak_bytes_step`: Streaming
DiLoCo's point), and the modeled time to 85% and 88% test accuracy (study L's levels)
on 1 Gbit/s: compute_s + latency x messages + (B / 1 Gbit/s) x (modeled_comm_s -
latency x messages), B the run's modeled bandwidth (10 Gbit/s), at the first
evaluation reaching the level (evaluations every 117 steps).
"""
import glob
import os
import re

import runlib
from runlib import mean_std

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "experiments", "runs", "diloco")
OUT = os.path.join(ROOT, "experiments", "results")
METHODS = ["diloco", "streaming-diloco", "streaming-diloco-q4", "cser", "cser-pl", "ef-sgd"]
RCS = [256, 1024]
INNERS = ["sgd", "adamw"]
LEVELS = (85.0, 88.0)
NAME = re.compile(r"^(?P<m>[a-z0-9-]+?)-(?P<inner>sgd|adamw)-rc(?P<rc>\d+)-lr(?P<lr>[0-9.e-]+)"
                  r"-s(?P<s>\d+)$")


def load():
    runs = []
    for d in sorted(glob.glob(os.path.join(RUNS, "*"))):
        mt = NAME.match(os.path.basename(d))
        if not mt:
            continue
        run = runlib.read_run(d)
        if run is None:
            continue
        cfg, rows = run["cfg"], run["rows"]
        runs.append({"cfg": cfg, "rows": rows, "method": mt.group("m"),
                     "inner": mt.group("inner"), "rc": int(mt.group("rc")),
                     "lr": mt.group("lr"), "seed": int(mt.group("s")),
                     "diverged": rows[-1]["event"] == "diverged",
                     "acc": 100.0 * float(rows[-1]["test_acc"] or "nan")})
    return runs


# Study L (experiments/run_study.py) ran CSER and CSER-PL with inner SGD on this very
# protocol, with its lr walk and 3 seeds: those runs are rows of this grid too.
L_RUNS = os.path.join(ROOT, "experiments", "runs", "L")
L_NAME = re.compile(r"^(?P<m>cser|cser-pl)_rc(?P<rc>256|1024)_lr(?P<lr>[0-9.e-]+)"
                    r"_s(?P<s>\d+)_iid$")
SAME = ("model", "dataset", "workers", "batch", "epochs", "steps", "warmup",
        "lr-schedule", "eval-every", "split", "momentum", "nesterov", "wd")


def load_l(runs):
    """Study L's CSER and CSER-PL runs whose configuration matches this grid's (inner
    SGD: every option of SAME equal to a grid run's)."""
    ref = next((r["cfg"] for r in runs if r["inner"] == "sgd"), None)
    if ref is None:
        return []
    out = []
    for d in sorted(glob.glob(os.path.join(L_RUNS, "*"))):
        mt = L_NAME.match(os.path.basename(d))
        run = runlib.read_run(d) if mt else None
        if run is None or any(run["cfg"].get(k) != ref.get(k) for k in SAME):
            continue
        rows = run["rows"]
        out.append({"cfg": run["cfg"], "rows": rows, "method": mt.group("m"),
                    "inner": "sgd", "rc": int(mt.group("rc")), "lr": mt.group("lr"),
                    "seed": int(mt.group("s")), "study": "L",
                    "diverged": rows[-1]["event"] == "diverged",
                    "acc": 100.0 * float(rows[-1]["test_acc"] or "nan")})
    return out


def sel(runs, m, inner, rc, lr=None, seed=None):
    return [r for r in runs if r["method"] == m and r["inner"] == inner and r["rc"] == rc
            and (lr is None or r["lr"] == lr) and (seed is None or r["seed"] == seed)]


def chosen(runs, m, inner, rc):
    ok = [r for r in sel(runs, m, inner, rc, seed=1) if not r["diverged"]]
    if not ok:
        return None
    return max(ok, key=lambda r: (r["acc"], float(r["lr"])))["lr"]


def modeled_1g(row, cfg):
    lat = float(cfg["net-latency"]) * float(row["messages"])
    scale = float(cfg["net-bandwidth"]) / 1e9
    return float(row["compute_s"]) + lat + scale * (float(row["modeled_comm_s"]) - lat)


def time_to(run, level):
    for row in run["rows"]:
        if row["event"] == "diverged":
            return None
        if 100.0 * float(row["test_acc"]) >= level:
            return modeled_1g(row, run["cfg"])
    return None


def tables(runs):
    nl = sum(1 for r in runs if r.get("study") == "L")
    lines = ["Runs recorded: %d in experiments/runs/diloco/, and %d of study L (CSER and "
             "CSER-PL with inner SGD on this same protocol: its lr walk and seeds; their "
             "lrs are marked L)." % (len(runs) - nl, nl), "",
             "| R_C | method | inner | lr (tried: final acc, seed 1) | seeds | final acc (%) "
             "| MB sent per worker | peak bytes in one step | to 85% on 1 Gbit/s (s) | "
             "to 88% (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for rc in RCS:
        for inner in INNERS:
            for m in METHODS:
                tried = sel(runs, m, inner, rc, seed=1)
                if not tried:
                    continue
                lrs = ", ".join("%s%s: %s" % (r["lr"], " (L)" if r.get("study") else "",
                                              "diverged" if r["diverged"] else
                                              "%.2f" % r["acc"])
                                for r in sorted(tried, key=lambda r: -float(r["lr"])))
                lr = chosen(runs, m, inner, rc)
                if lr is None:
                    lines.append("| %d | %s | %s | %s | - | diverged | - | - | - | - |" %
                                 (rc, m, inner, lrs))
                    continue
                rs = sel(runs, m, inner, rc, lr=lr)
                ok = [r for r in rs if not r["diverged"]]
                mu, sd = mean_std([r["acc"] for r in ok])
                last = ok[0]["rows"][-1]
                # the peak does not depend on the lr or the seed: any run that has it
                # (study L's runs predate the column)
                peak = next((r["rows"][-1].get("peak_bytes_step") for r in tried + rs
                             if r["rows"][-1].get("peak_bytes_step")), "-")
                cells = []
                for level in LEVELS:
                    t = [time_to(r, level) for r in ok]
                    cells.append("%.1f" % (sum(t) / len(t)) if all(x is not None for x in t)
                                 else "not reached (%d of %d)" %
                                 (sum(x is not None for x in t), len(t)))
                lines.append("| %d | %s | %s | %s | %d%s | %.2f +- %.2f | %.2f | %s | %s |" % (
                    rc, m, inner, lrs, len(ok),
                    " (+%d diverged)" % (len(rs) - len(ok)) if len(rs) > len(ok) else "",
                    mu, sd, float(last["bytes_up"]) / 1e6, peak, " | ".join(cells)))
    return lines + [""]


def splice(lines):
    runlib.splice(os.path.join(ROOT, "docs", "RESULTS.md"),
                  "<!-- diloco:begin (experiments/report_diloco.py) -->", "<!-- diloco:end -->", lines)


def main():
    os.makedirs(OUT, exist_ok=True)
    runs = load()
    lines = tables(runs + load_l(runs))
    with open(os.path.join(OUT, "diloco_tables.md"), "w") as f:
        f.write("# Generated by experiments/report_diloco.py; do not edit.\n\n" +
                "\n".join(lines) + "\n")
    splice(lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
