#!/usr/bin/python3
# Regenerates the study tables and plots from experiments/runs/**/metrics.csv + config.json.
"""Usage: experiments/report.py

Reads only the recorded runs; writes experiments/results/*.md (tables), *.dat and
*.png (gnuplot). Safe to run while a study is in progress: unfinished runs are listed
as such and left out of the means.
"""
import csv
import glob
import json
import math
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "experiments", "runs")
OUT = os.path.join(ROOT, "experiments", "results")
METHODS = ["sgd", "ef-sgd", "qsparse", "csea", "cser-pl", "cser"]
RCS = [1, 16, 32, 256, 1024]
TARGETS = [0.85, 0.825, 0.80, 0.75]


def load(study):
    runs = []
    for d in sorted(glob.glob(os.path.join(RUNS, study, "*"))):
        try:
            with open(os.path.join(d, "config.json")) as f:
                cfg = json.load(f)
            with open(os.path.join(d, "metrics.csv")) as f:
                rows = list(csv.DictReader(f))
        except (OSError, ValueError):
            continue
        if not rows or rows[-1]["event"] not in ("final", "diverged"):
            continue
        rc = 1 if cfg["method"] == "sgd" else int(cfg["rc"])
        runs.append({"dir": d, "cfg": cfg, "rows": rows, "method": cfg["method"],
                     "rc": rc, "lr": "%g" % cfg["lr"], "seed": int(cfg["seed"]),
                     "diverged": rows[-1]["event"] == "diverged",
                     "acc": float(rows[-1]["test_acc"]) * 100.0})
    return runs


def mean_std(xs):
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, s


def chosen_lr(runs, method, rc):
    seed1 = [r for r in runs if r["method"] == method and r["rc"] == rc and r["seed"] == 1]
    ok = [r for r in seed1 if not r["diverged"]]
    if not ok:
        return None
    return max(ok, key=lambda r: r["acc"])["lr"]


def cell(runs, method, rc):
    """(text, mean or None, std, n) for one table cell at the lr chosen on seed 1."""
    lr = chosen_lr(runs, method, rc)
    sel = [r for r in runs if r["method"] == method and r["rc"] == rc and r["lr"] == lr]
    if lr is None:
        div = [r for r in runs if r["method"] == method and r["rc"] == rc]
        return ("diverge" if div else "-"), None, 0.0, 0, lr
    div = sum(r["diverged"] for r in sel)
    accs = [r["acc"] for r in sel if not r["diverged"]]
    m, s = mean_std(accs)
    text = "%.2f +- %.2f (n=%d, lr %s)" % (m, s, len(accs), lr)
    if div:
        text += ", %d diverge" % div
    return text, m, s, len(accs), lr


def accuracy_table(runs, title, rcs):
    lines = ["### " + title, "",
             "| method | " + " | ".join("R_C %d" % rc for rc in rcs) + " |",
             "|---|" + "---|" * len(rcs)]
    for m in METHODS:
        cells = []
        for rc in rcs:
            if (m == "sgd") != (rc == 1):
                cells.append("")
            else:
                cells.append(cell(runs, m, rc)[0])
        lines.append("| %s | %s |" % (m, " | ".join(cells)))
    return lines


def lr_table(runs):
    lines = ["### Seed-1 lr grid (final test accuracy %)", "",
             "| method | R_C | lr 0.05 | lr 0.025 | resolved method |", "|---|---|---|---|---|"]
    keys = sorted({(r["method"], r["rc"]) for r in runs if r["seed"] == 1},
                  key=lambda k: (RCS.index(k[1]) if k[1] in RCS else 99, METHODS.index(k[0])))
    for m, rc in keys:
        got = {r["lr"]: r for r in runs if r["method"] == m and r["rc"] == rc and r["seed"] == 1}
        txt = ["diverge" if lr in got and got[lr]["diverged"] else
               ("%.2f" % got[lr]["acc"] if lr in got else "-") for lr in ("0.05", "0.025")]
        spec = next(iter(got.values()))["cfg"]["resolved_method"]
        lines.append("| %s | %d | %s | %s | `%s` |" % (m, rc, txt[0], txt[1], spec))
    return lines


def modeled_1g(row, cfg):
    """Modeled time on 1 Gbit/s from a 10 Gbit/s row: latency term kept, bytes term x10."""
    lat = float(cfg["net-latency"]) * float(row["messages"])
    scale = float(cfg["net-bandwidth"]) / 1e9
    return float(row["compute_s"]) + lat + scale * (float(row["modeled_comm_s"]) - lat)


def time_to(run, target, which):
    for row in run["rows"]:
        if row["event"] == "diverged" or float(row["test_acc"]) < target:
            continue
        if which == "1G":
            return modeled_1g(row, run["cfg"])
        if which == "10G":
            return float(row["modeled_total_s"])
        return float(row["wall_s"])
    return None


def study_b(runs):
    sgd = [r for r in runs if r["method"] == "sgd" and r["rc"] == 1 and r["seed"] == 1
           and not r["diverged"]]
    if not sgd:
        return ["(no SGD run yet)"], None
    best_sgd = max(sgd, key=lambda r: r["acc"])
    target = next((t for t in TARGETS if best_sgd["acc"] >= t * 100), None)
    if target is None:
        return ["(SGD reaches none of the targets)"], None
    lines = ["### Time to %.1f%% test accuracy (seed-1 runs at the chosen lr)" % (target * 100),
             "", "| method | R_C | modeled 1 Gbit/s (s) | speedup | modeled 10 Gbit/s (s) "
             "| speedup | measured wall here (s) | speedup |", "|---|---|---|---|---|---|---|---|"]
    base = {w: time_to(best_sgd, target, w) for w in ("1G", "10G", "wall")}
    for m, rc in (("sgd", 1), ("cser", 256), ("cser", 1024), ("ef-sgd", 256),
                  ("qsparse", 256), ("ef-sgd", 1024), ("qsparse", 1024)):
        lr = chosen_lr(runs, m, rc)
        sel = [r for r in runs if r["method"] == m and r["rc"] == rc and r["seed"] == 1
               and r["lr"] == lr]
        if not sel:
            continue
        cells = []
        for w in ("1G", "10G", "wall"):
            t = time_to(sel[0], target, w)
            cells += ["not reached", "-"] if t is None else \
                     ["%.1f" % t, "%.2fx" % (base[w] / t) if base[w] else "-"]
        lines.append("| %s | %d | %s |" % (m, rc, " | ".join(cells)))
    return lines, target


def write_dat_and_plots(runs):
    have = []
    for m in METHODS:
        pts = []
        for rc in RCS:
            t, mean, std, n, _ = cell(runs, m, rc)
            if mean is not None and ((m == "sgd") == (rc == 1)):
                pts.append("%d %.4f %.4f\n" % (rc, mean, std))
        if pts:
            with open(os.path.join(OUT, "acc_vs_rc_%s.dat" % m), "w") as f:
                f.write("".join(pts))
            have.append(m)
    curves = []
    for m, rc in (("sgd", 1), ("cser", 256), ("cser", 1024), ("ef-sgd", 256), ("qsparse", 256)):
        lr = chosen_lr(runs, m, rc)
        sel = [r for r in runs if r["method"] == m and r["rc"] == rc and r["seed"] == 1
               and r["lr"] == lr and not r["diverged"]]
        if sel:
            name = "%s_rc%d" % (m, rc)
            with open(os.path.join(OUT, "curve_%s.dat" % name), "w") as f:
                for row in sel[0]["rows"]:
                    f.write("%.4f %.4f %.3f\n" % (modeled_1g(row, sel[0]["cfg"]),
                            float(row["modeled_total_s"]), float(row["test_acc"]) * 100))
            curves.append(name)
    gp = ["set terminal png noenhanced size 900,600", "set grid", "set key bottom left",
          "set output '%s/acc_vs_rc.png'" % OUT, "set logscale x 2",
          "set xlabel 'R_C (overall compression ratio)'", "set ylabel 'test accuracy (%)'",
          "set xrange [0.7:1500]",
          "plot " + ", ".join("'%s/acc_vs_rc_%s.dat' using 1:2:3 with yerrorlines "
                              "title '%s'" % (OUT, m, m) for m in have)]
    if curves:
        gp += ["set output '%s/acc_vs_time_1g.png'" % OUT, "unset logscale x",
               "set logscale x 10", "set autoscale x",
               "set xlabel 'modeled time on 1 Gbit/s, 8 workers (s)'",
               "plot " + ", ".join("'%s/curve_%s.dat' using 1:3 with linespoints title '%s'"
                                   % (OUT, c, c) for c in curves)]
    p = subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", universal_newlines=True,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        print("report.py: gnuplot failed: " + p.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    a, d = load("A"), load("D")
    lines = ["# Generated by experiments/report.py from experiments/runs; do not edit.", "",
             "Final test accuracy (%%), mean +- std over seeds; runs recorded: A %d, D %d." %
             (len(a), len(d)), ""]
    lines += accuracy_table(a, "Study A: Fashion-MNIST, cnn, 8 workers, iid", RCS) + [""]
    lines += lr_table(a) + [""]
    lines += study_b(a)[0] + [""]
    lines += accuracy_table(d, "Study D: dirichlet:0.5 split", [1, 256]) + [""]
    with open(os.path.join(OUT, "tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    write_dat_and_plots(a)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
