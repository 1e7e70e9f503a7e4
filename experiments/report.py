#!/usr/bin/python3
# Regenerates the study tables and plots from experiments/runs/**/metrics.csv + config.json.
"""Usage: experiments/report.py

Reads only the recorded runs; writes experiments/results/*.md (tables), *.dat and
*.png (gnuplot). Safe to run while a study is in progress: unfinished runs are listed
as such and left out of the means.
"""
import glob
import os
import re
import subprocess

import runlib
from runlib import mean_std

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "experiments", "runs")
OUT = os.path.join(ROOT, "experiments", "results")
METHODS = ["sgd", "ef-sgd", "ef-sgd-topk", "qsparse", "csea", "cser-pl", "cser", "cser-tuned"]
RCS = [1, 16, 32, 256, 1024]
LRS = ["0.1", "0.05", "0.025", "0.0125", "0.00625"]
TARGETS = [0.88, 0.85]      # time-to-accuracy targets (test accuracy)


def load(study):
    runs = []
    for d in sorted(glob.glob(os.path.join(RUNS, study, "*"))):
        run = runlib.read_run(d)
        if run is None:
            continue
        cfg, rows = run["cfg"], run["rows"]
        # <method>_rc<R>_lr<lr>_s<seed>_<split>: "cser-tuned" runs pass a spec, no --rc
        name = os.path.basename(d)
        label, rest = name.split("_rc", 1)
        rc = int(rest.split("_", 1)[0])
        runs.append({"dir": d, "cfg": cfg, "rows": rows, "method": label,
                     "rc": rc, "lr": "%g" % cfg["lr"], "seed": int(cfg["seed"]),
                     "diverged": rows[-1]["event"] == "diverged",
                     "acc": float(rows[-1]["test_acc"]) * 100.0})
    return runs


def chosen_lr(runs, method, rc):
    seed1 = [r for r in runs if r["method"] == method and r["rc"] == rc and r["seed"] == 1]
    ok = [r for r in seed1 if not r["diverged"]]
    if not ok:
        return None
    return max(ok, key=lambda r: (r["acc"], float(r["lr"])))["lr"]   # ties: larger lr


def cell(runs, method, rc, ref=None):
    """(text, mean or None, std, n, lr) for one table cell at the lr chosen on seed 1 of
    the study `ref` (study A; default: these runs)."""
    lr = chosen_lr(ref if ref is not None else runs, method, rc)
    sel = [r for r in runs if r["method"] == method and r["rc"] == rc and r["lr"] == lr]
    if lr is None or not sel:
        div = [r for r in runs if r["method"] == method and r["rc"] == rc]
        if div and all(r["diverged"] for r in div):
            return "diverge (lr %s)" % ", ".join(sorted({r["lr"] for r in div})), \
                None, 0.0, 0, lr
        return "-", None, 0.0, 0, lr
    div = sum(r["diverged"] for r in sel)
    accs = [r["acc"] for r in sel if not r["diverged"]]
    if not accs:
        return "diverge (lr %s, %d of %d)" % (lr, div, len(sel)), None, 0.0, 0, lr
    m, s = mean_std(accs)
    text = "%.2f +- %.2f (n=%d, lr %s)" % (m, s, len(accs), lr)
    if method == "ef-sgd-topk":   # its column is the upload ratio; say what it moved
        act = next((actual_rc(r) for r in sel if actual_rc(r)), None)
        text += " [actual R_C %s]" % act if act else ""
    if div:
        text += ", %d diverge" % div
    return text, m, s, len(accs), lr


def accuracy_table(runs, title, rcs, ref=None):
    lines = ["### " + title, "",
             "| method | " + " | ".join("R_C %d" % rc for rc in rcs) + " |",
             "|---|" + "---|" * len(rcs)]
    for m in METHODS:
        if not any(r["method"] == m for r in runs):
            continue
        cells = []
        for rc in rcs:
            if (m == "sgd") != (rc == 1):
                cells.append("")
            else:
                cells.append(cell(runs, m, rc, ref)[0])
        lines.append("| %s | %s |" % (m, " | ".join(cells)))
    return lines


def gap_table(runs, title, ref=None):
    """CSER's distance to SGD and its margin over EF-SGD / QSparse (the issue's aims)."""
    sgd = cell(runs, "sgd", 1, ref)
    if sgd[1] is None:
        return []
    aims = {16: 1.0, 32: 1.0, 256: 3.0, 1024: 6.0}
    lines = ["### " + title, "", "| R_C | CSER variant | CSER | SGD - CSER (aim) | met | "
             "margin over EF-SGD | margin over QSparse | CSER std | above by > spread |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rc in (16, 32, 256, 1024):
        best = None
        for m in ("cser", "cser-tuned"):
            c = cell(runs, m, rc, ref)
            if c[1] is not None and (best is None or c[1] > best[1][1]):
                best = (m, c)
        if best is None:
            continue
        m, c = best
        gap = sgd[1] - c[1]
        margins, spread_ok = [], True
        for other in ("ef-sgd", "qsparse"):
            o = cell(runs, other, rc, ref)
            if o[1] is None:
                margins.append("%.2f (it diverges)" % c[1] if o[0].startswith("diverge")
                               else "-")
                continue
            margins.append("%.2f" % (c[1] - o[1]))
            spread_ok = spread_ok and c[1] - o[1] > max(c[2], o[2])
        lines.append("| %d | %s | %.2f | %.2f (<= %.0f) | %s | %s | %s | %.2f | %s |" % (
            rc, m, c[1], gap, aims[rc], "yes" if gap <= aims[rc] else "no",
            margins[0], margins[1], c[2],
            "" if rc < 256 else ("yes" if spread_ok else "no")))
    return lines


def actual_rc(run):
    """The actual R_C `cser train` printed (SGD's dense allreduce bytes per step over
    the bytes this run moved per step, both directions counted), or None."""
    try:
        with open(os.path.join(run["dir"], "exit.txt")) as f:
            m = re.search(r"R_C\s+actual ([0-9.]+)", f.read())
    except OSError:
        return None
    return m.group(1) if m else None


def lr_table(runs):
    lrs = [lr for lr in LRS if any(r["lr"] == lr and r["seed"] == 1 for r in runs)]
    lines = ["### Seed-1 lr grid (final test accuracy %; chosen lr in bold)", "",
             "| method | R_C | " + " | ".join("lr " + lr for lr in lrs) +
             " | actual R_C | resolved method |", "|---|---|" + "---|" * (len(lrs) + 2)]
    keys = sorted({(r["method"], r["rc"]) for r in runs if r["seed"] == 1},
                  key=lambda k: (RCS.index(k[1]) if k[1] in RCS else 99, METHODS.index(k[0])))
    for m, rc in keys:
        got = {r["lr"]: r for r in runs if r["method"] == m and r["rc"] == rc and r["seed"] == 1}
        best = chosen_lr(runs, m, rc)
        txt = ["diverge" if lr in got and got[lr]["diverged"] else
               (("**%.2f**" if lr == best else "%.2f") % got[lr]["acc"] if lr in got else "-")
               for lr in lrs]
        spec = next(iter(got.values()))["cfg"]["resolved_method"]
        act = next((actual_rc(r) for r in got.values() if actual_rc(r)), "-")
        lines.append("| %s | %d | %s | %s | `%s` |" % (m, rc, " | ".join(txt), act, spec))
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


def seed1_run(runs, method, rc, ref):
    lr = chosen_lr(ref, method, rc)
    sel = [r for r in runs if r["method"] == method and r["rc"] == rc and r["seed"] == 1
           and r["lr"] == lr]
    return sel[0] if sel else None


TTA_ROWS = (("sgd", 1), ("cser", 256), ("cser-tuned", 256), ("cser", 1024),
            ("cser-tuned", 1024), ("ef-sgd", 256), ("qsparse", 256), ("ef-sgd", 1024),
            ("qsparse", 1024))


def time_to_accuracy(runs, ref, study):
    sgd = seed1_run(runs, "sgd", 1, ref)
    if sgd is None or sgd["diverged"]:
        return ["(no SGD run yet in study %s)" % study]
    fin = sgd["rows"][-1]
    bound = modeled_1g(fin, sgd["cfg"]) / float(fin["compute_s"])
    lines = ["Bound: SGD spends %.0f%% of its modeled 1 Gbit/s time computing "
             "(compute %.1f s of %.1f s per run), so a method that computes the same "
             "number of steps cannot be more than %.2fx faster on 1 Gbit/s, whatever it "
             "sends." % (100.0 * float(fin["compute_s"]) / modeled_1g(fin, sgd["cfg"]),
                         float(fin["compute_s"]), modeled_1g(fin, sgd["cfg"]), bound), ""]
    for target in TARGETS:
        lines += ["### Study %s: time to %.1f%% test accuracy (seed-1 runs at the chosen lr)"
                  % (study, target * 100), "",
                  "| method | R_C | step reached | modeled 1 Gbit/s (s) | speedup | "
                  "modeled 10 Gbit/s (s) | speedup | measured wall here (s) | speedup |",
                  "|---|---|---|---|---|---|---|---|---|"]
        base = {w: time_to(sgd, target, w) for w in ("1G", "10G", "wall")}
        for m, rc in TTA_ROWS:
            run = seed1_run(runs, m, rc, ref)
            if run is None:
                continue
            step = next((row["step"] for row in run["rows"] if row["event"] != "diverged"
                         and float(row["test_acc"]) >= target), None)
            cells = [step or ("diverged" if run["diverged"] else "not reached")]
            for w in ("1G", "10G", "wall"):
                t = time_to(run, target, w)
                cells += ["-", "-"] if t is None else \
                         ["%.1f" % t, "%.2fx" % (base[w] / t) if base[w] else "-"]
            lines.append("| %s | %d | %s |" % (m, rc, " | ".join(cells)))
        lines.append("")
    return lines


def write_dat_and_plots(runs, ref, study):
    tag = "" if study == "A" else "_" + study
    have = []
    for m in METHODS:
        pts = []
        for rc in RCS:
            t, mean, std, n, _ = cell(runs, m, rc, ref)
            if mean is not None and ((m == "sgd") == (rc == 1)):
                x = float(rc)
                if m == "ef-sgd-topk":   # plotted at the ratio it actually moved
                    x = float(next((actual_rc(r) for r in runs if r["method"] == m
                                    and r["rc"] == rc and actual_rc(r)), rc))
                pts.append("%g %.4f %.4f\n" % (x, mean, std))
        if pts:
            with open(os.path.join(OUT, "acc_vs_rc%s_%s.dat" % (tag, m)), "w") as f:
                f.write("".join(pts))
            have.append(m)
    curves = []
    for m, rc in TTA_ROWS:
        run = seed1_run(runs, m, rc, ref)
        if run is not None and not run["diverged"]:
            name = "%s_%s_rc%d" % (study, m, rc)
            with open(os.path.join(OUT, "curve_%s.dat" % name), "w") as f:
                for row in run["rows"]:
                    f.write("%.4f %.4f %.3f\n" % (modeled_1g(row, run["cfg"]),
                            float(row["modeled_total_s"]), float(row["test_acc"]) * 100))
            curves.append(name)
    gp = ["set terminal png noenhanced size 900,600", "set grid", "set key bottom left",
          "set output '%s/acc_vs_rc%s.png'" % (OUT, tag), "set logscale x 2",
          "set title 'study %s'" % study,
          "set xlabel 'R_C (overall compression ratio)'", "set ylabel 'test accuracy (%)'",
          "set xrange [0.7:1500]",
          "plot " + ", ".join("'%s/acc_vs_rc%s_%s.dat' using 1:2:3 with yerrorlines "
                              "title '%s'" % (OUT, tag, m, m + (" (at actual R_C)" if m == "ef-sgd-topk"
                                                   else "")) for m in have)]
    if curves:
        gp += ["set output '%s/acc_vs_time_1g%s.png'" % (OUT, tag), "unset logscale x",
               "set logscale x 10", "set autoscale x", "set yrange [60:92]",
               "set xlabel 'modeled time on 1 Gbit/s, 8 workers (s)'",
               "plot " + ", ".join("'%s/curve_%s.dat' using 1:3 with linespoints title '%s'"
                                   % (OUT, c, c) for c in curves)]
    p = subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", universal_newlines=True,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        print("report.py: gnuplot failed: " + p.stderr)


def splice_into_results(lines):
    """Replaces the generated part of docs/RESULTS.md (between its two markers)."""
    runlib.splice(os.path.join(ROOT, "docs", "RESULTS.md"),
                  "<!-- tables:begin (experiments/report.py) -->", "<!-- tables:end -->",
                  lines[2:])


def main():
    os.makedirs(OUT, exist_ok=True)
    # its own plot data only (report_tta.py's tta_*.dat live in the same folder)
    for old in glob.glob(os.path.join(OUT, "acc_vs_rc*.dat")) + \
            glob.glob(os.path.join(OUT, "curve_*.dat")):
        os.remove(old)
    a, d, l = load("A"), load("D"), load("L")
    lines = ["# Generated by experiments/report.py from experiments/runs; do not edit.", "",
             "Final test accuracy (%%), mean +- std over seeds; runs recorded: A %d, D %d, "
             "L %d. Studies D and L use the lr chosen on seed 1 of study A." %
             (len(a), len(d), len(l)), ""]
    lines += accuracy_table(a, "Study A: Fashion-MNIST, cnn, 8 workers, iid, 1 epoch", RCS)
    lines += [""] + gap_table(a, "Study A: CSER against the aims", a) + [""]
    if l:
        lines += accuracy_table(l, "Study L: the same, 4 epochs", RCS, a) + [""]
        lines += gap_table(l, "Study L: CSER against the aims", a) + [""]
    lines += lr_table(a) + [""]
    lines += time_to_accuracy(l if l else a, a, "L" if l else "A")
    lines += accuracy_table(d, "Study D: dirichlet:0.5 split, 1 epoch", [1, 256], a) + [""]
    with open(os.path.join(OUT, "tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    splice_into_results(lines)
    write_dat_and_plots(a, a, "A")
    if l:
        write_dat_and_plots(l, a, "L")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
