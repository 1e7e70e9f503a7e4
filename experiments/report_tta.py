#!/usr/bin/python3
# Tables, plots and the time-to-accuracy CSV of the issue-12 studies (W, F), from the
# recorded runs alone.
"""Usage: experiments/report_tta.py

Reads experiments/runs/W and experiments/runs/F (experiments/run_tta.py); writes
experiments/results/time_to_accuracy.csv, experiments/results/tta_tables.md,
tta_*.dat / tta_*.png, and the generated part of docs/RESULTS.md between the markers
<!-- tta:begin ... --> and <!-- tta:end -->. Safe while the study runs: unfinished
runs are left out.

Modeled time of a metrics row (the runs model 1 Gbit/s, 50 us per message):
  compute_s + latency * messages + (1 Gbit/s / B) * (modeled_comm_s - latency * messages)
i.e. worker 0's compute time plus the modeled network time with the bytes term scaled
to bandwidth B (the latency term kept). Time to a target = that time at the first
evaluation whose test accuracy is >= the target (evaluations every 30 steps).
"""
import csv
import glob
import os
import re
import subprocess

import runlib
from run_tta import F_LR   # study F's learning rates (study A's picks)
from runlib import mean_std

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "experiments", "runs")
OUT = os.path.join(ROOT, "experiments", "results")
METHODS = ["sgd", "local-sgd", "ef-sgd", "qsparse", "csea", "cser-pl", "cser"]
RCS = [1, 16, 256, 1024]
GRID = ["0.4", "0.2", "0.1", "0.05", "0.025", "0.0125", "0.00625", "0.003125"]
NETWORKS = (("1G", 1e9), ("100M", 1e8))
EXTRA_TARGETS = (79.0, 75.0)   # where the 1-epoch local-model runs do get to
WORKLOAD = "fashion-mnist/cnn-wide/8x32"
NAME = re.compile(r"^(?P<m>[a-z-]+)_rc(?P<rc>\d+)_lr(?P<lr>[0-9.e-]+)_s(?P<s>\d+)_iid"
                  r"(?P<extra>.*)$")


def load(study):
    runs = []
    for d in sorted(glob.glob(os.path.join(RUNS, study, "*"))):
        mt = NAME.match(os.path.basename(d))
        if not mt:
            continue
        run = runlib.read_run(d, stopped_ok=True)
        if run is None:
            continue
        rows, text = run["rows"], run["exit"]
        wall = None
        try:
            wall = float(text.split()[3])
            act = re.search(r"R_C\s+actual ([0-9.]+)", text)
        except (OSError, ValueError, IndexError):
            act = None
        runs.append({"dir": d, "cfg": run["cfg"], "rows": rows, "exit": text,
                     "method": mt.group("m"),
                     "rc": int(mt.group("rc")), "lr": mt.group("lr"),
                     "seed": int(mt.group("s")), "extra": mt.group("extra"),
                     "diverged": rows[-1]["event"] == "diverged",
                     "acc": 100.0 * float(rows[-1]["test_acc"]),
                     "actual_rc": act.group(1) if act else None, "wall": wall})
    return runs


def sel(runs, method, rc, lr=None, seed=None, extra=""):
    return [r for r in runs if r["method"] == method and r["rc"] == rc and
            r["extra"] == extra and (lr is None or r["lr"] == lr) and
            (seed is None or r["seed"] == seed)]


def chosen_lr(runs, method, rc):
    ok = [r for r in sel(runs, method, rc, seed=1) if not r["diverged"] and r["acc"] >= 20]
    if not ok:
        return None
    return max(ok, key=lambda r: (r["acc"], float(r["lr"])))["lr"]


def modeled(row, cfg, bw):
    lat = float(cfg["net-latency"]) * float(row["messages"])
    scale = float(cfg["net-bandwidth"]) / bw
    return float(row["compute_s"]) + lat + scale * (float(row["modeled_comm_s"]) - lat)


def time_to(run, target, bw):
    for row in run["rows"]:
        if row["event"] == "diverged":
            return None
        if 100.0 * float(row["test_acc"]) >= target:
            return modeled(row, run["cfg"], bw)
    return None


def step_to(run, target):
    for row in run["rows"]:
        if row["event"] != "diverged" and 100.0 * float(row["test_acc"]) >= target:
            return int(row["step"])
    return None


def per_step(run):
    """(compute s, modeled comm s at 1 Gbit/s) per step, from the last row."""
    row = run["rows"][-1]
    steps = max(1, int(row["step"]))
    return (float(row["compute_s"]) / steps,
            (modeled(row, run["cfg"], 1e9) - float(row["compute_s"])) / steps)


def lr_table(runs, study="W"):
    lines = ["### Study %s: seed-1 lr walk (final test accuracy %%; chosen lr in bold)" % study,
             "",
             "| method | R_C | " + " | ".join("lr " + lr for lr in GRID) +
             " | actual R_C | resolved method |", "|---|---|" + "---|" * (len(GRID) + 2)]
    keys = sorted({(r["method"], r["rc"]) for r in runs if r["seed"] == 1 and not r["extra"]},
                  key=lambda k: (RCS.index(k[1]) if k[1] in RCS else 99,
                                 METHODS.index(k[0]) if k[0] in METHODS else 99))
    for m, rc in keys:
        got = {r["lr"]: r for r in sel(runs, m, rc, seed=1)}
        best = chosen_lr(runs, m, rc)
        cells = ["diverge" if lr in got and got[lr]["diverged"] else
                 (("**%.2f**" if lr == best else "%.2f") % got[lr]["acc"] if lr in got
                  else "-") for lr in GRID]
        any_run = next(iter(got.values()))
        act = next((r["actual_rc"] for r in got.values() if r["actual_rc"]), "-")
        lines.append("| %s | %d | %s | %s | `%s` |" % (m, rc, " | ".join(cells), act,
                                                      any_run["cfg"]["resolved_method"]))
    return lines


def accuracy_table(runs):
    lines = ["### Study W: final test accuracy (%) at the chosen lr, mean +- std over seeds",
             "", "| method | " + " | ".join("R_C %d" % rc for rc in RCS) + " |",
             "|---|" + "---|" * len(RCS)]
    for m in METHODS:
        cells = []
        for rc in RCS:
            if (m == "sgd") != (rc == 1):
                cells.append("")
                continue
            lr = chosen_lr(runs, m, rc)
            rs = sel(runs, m, rc, lr=lr) if lr else sel(runs, m, rc)
            if not rs:
                cells.append("-")
                continue
            accs = [r["acc"] for r in rs if not r["diverged"]]
            if not accs:
                cells.append("diverge (lr %s)" % ", ".join(sorted({r["lr"] for r in rs})))
                continue
            mu, sd = mean_std(accs)
            div = len(rs) - len(accs)
            cells.append("%.2f +- %.2f (n=%d, lr %s)%s" % (mu, sd, len(accs), lr,
                                                          ", %d diverge" % div if div else ""))
        if any(c not in ("", "-") for c in cells):
            lines.append("| %s | %s |" % (m, " | ".join(cells)))
    return lines


def tta(runs):
    """Rows of time_to_accuracy.csv and the markdown tables."""
    sgd_lr = chosen_lr(runs, "sgd", 1)
    if sgd_lr is None:
        return [], ["(study W: no finished SGD run yet)"]
    sgd_runs = [r for r in sel(runs, "sgd", 1, lr=sgd_lr) if not r["diverged"]]
    sgd_final = mean_std([r["acc"] for r in sgd_runs])[0]
    # the ratio over every finished SGD run of the study (any lr: same work per step)
    steps = sorted(per_step(r) for r in runs if r["method"] == "sgd")
    cs = [c for c, _ in steps]
    n = steps[0][1]
    c = cs[len(cs) // 2]
    lines = ["SGD (lr %s, %d seed%s): final test accuracy %.2f%%." %
             (sgd_lr, len(sgd_runs), "s" if len(sgd_runs) > 1 else "", sgd_final), "",
             "**Dense allreduce against compute** (every finished SGD run of study W, %d "
             "runs; worker 0's thread CPU time per step, which other jobs on the 2 shared "
             "cores inflate): compute per step min %.1f ms, median %.1f ms, max %.1f ms; "
             "modeled dense allreduce on 1 Gbit/s %.1f ms per step. **The allreduce costs "
             "%.1fx the compute at the median (%.1fx at the slowest step time, %.1fx at the "
             "fastest)**, %.0fx at 100 Mbit/s; so a method that computes the same steps can "
             "be at most %.1fx faster than SGD on 1 Gbit/s (%.0fx on 100 Mbit/s)." %
             (len(cs), 1e3 * cs[0], 1e3 * c, 1e3 * cs[-1], 1e3 * n, n / c, n / cs[-1],
              n / cs[0], 10 * n / c, (c + n) / c, (c + 10 * n) / c), ""]
    csv_rows, rows_all = [], []
    targets = [(sgd_final - d, "SGD's final - %g" % d, True) for d in (1.0, 3.0)]
    targets += [(t, "a fixed level below the targets, not in the CSV", False)
                for t in EXTRA_TARGETS]
    for target, label, in_csv in targets:
        csv_rows = rows_all if in_csv else []
        lines += ["### Study W: time to %.2f%% (%s), modeled" % (target, label),
                  "", "| method | R_C | lr | seeds reaching | step (seed 1) | 1 Gbit/s (s) | "
                  "speedup | 100 Mbit/s (s) | speedup |", "|---|---|---|---|---|---|---|---|---|"]
        base = {}
        for m in METHODS:
            for rc in RCS:
                if (m == "sgd") != (rc == 1):
                    continue
                lr = chosen_lr(runs, m, rc)
                rs = sel(runs, m, rc, lr=lr) if lr else []
                if not rs:
                    if sel(runs, m, rc):     # walked, all diverged
                        for net, _ in NETWORKS:
                            csv_rows.append([WORKLOAD, net, m, rc, "%.2f" % target, "", 0,
                                             "modeled"])
                        lines.append("| %s | %d | - | diverged | - | - | - | - | - |" % (m, rc))
                    continue
                cells = []
                reach = [r for r in rs if time_to(r, target, 1e9) is not None]
                s1 = next((r for r in rs if r["seed"] == 1), rs[0])
                st = step_to(s1, target)
                for net, bw in NETWORKS:
                    if len(reach) == len(rs):
                        secs = sum(time_to(r, target, bw) for r in rs) / len(rs)
                        if m == "sgd":
                            base[net] = secs
                        sp = base[net] / secs if base.get(net) else 0.0
                        csv_rows.append([WORKLOAD, net, m, rc, "%.2f" % target,
                                         "%.2f" % secs, "%.2f" % sp, "modeled"])
                        cells += ["%.1f" % secs, "%.2fx" % sp]
                    else:
                        csv_rows.append([WORKLOAD, net, m, rc, "%.2f" % target, "", 0,
                                         "modeled"])
                        cells += ["-", "-"]
                lines.append("| %s | %d | %s | %d of %d | %s | %s |" % (
                    m, rc, lr, len(reach), len(rs), st if st is not None else "not reached",
                    " | ".join(cells)))
        lines.append("")
    return rows_all, lines


def write_csv(rows):
    path = os.path.join(OUT, "time_to_accuracy.csv")
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "network", "method", "rc", "target", "seconds",
                    "speedup_vs_sgd", "source"])
        w.writerows(rows)
    os.replace(tmp, path)


def plots(runs, targets):
    curves = []
    for m in METHODS:
        for rc in RCS:
            if (m == "sgd") != (rc == 1):
                continue
            lr = chosen_lr(runs, m, rc)
            r = next(iter(sel(runs, m, rc, lr=lr, seed=1)), None) if lr else None
            if r is None or r["diverged"]:
                continue
            name = "%s_rc%d" % (m, rc)
            with open(os.path.join(OUT, "tta_W_%s.dat" % name), "w") as f:
                for row in r["rows"]:
                    f.write("%.4f %.4f %.3f\n" % (modeled(row, r["cfg"], 1e9),
                            modeled(row, r["cfg"], 1e8), 100 * float(row["test_acc"])))
            curves.append(name)
    if not curves:
        return
    gp = ["set terminal png noenhanced size 1000,650", "set grid", "set key bottom right",
          "set logscale x 10", "set yrange [60:95]", "set ylabel 'test accuracy (%)'"]
    for col, net in ((1, "1 Gbit/s"), (2, "100 Mbit/s")):
        tag = "1g" if col == 1 else "100m"
        gp += ["set output '%s/tta_acc_vs_time_%s.png'" % (OUT, tag),
               "set title 'study W: cnn-wide, 8 workers, seed 1 at the chosen lr'",
               "set xlabel 'modeled time on %s, 8 workers (s)'" % net,
               "plot " + ", ".join(["'%s/tta_W_%s.dat' using %d:3 with linespoints title '%s'"
                                    % (OUT, c, col, c) for c in curves] +
                                   ["%.2f with lines dashtype 2 title 'target %.2f'" % (t, t)
                                    for t in targets])]
    p = subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", universal_newlines=True,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        print("report_tta.py: gnuplot failed: " + p.stderr)


def warm_table(runs):
    lines = []
    for rc in (256, 1024):
        fx = [r for r in runs if r["method"] == "cser" and r["rc"] == rc and
              r["extra"] == "_warm0.1"]
        if not fx:
            continue
        if not lines:
            lines = ["### Study W: --warmup auto against the fixed 0.1-epoch warm-up "
                     "(CSER, seed 1, the lr chosen with auto)", "",
                     "| R_C | lr | auto: final acc | fixed 0.1: final acc |", "|---|---|---|---|"]
        r0 = fx[0]
        auto = sel(runs, "cser", rc, lr=r0["lr"], seed=1)
        lines.append("| %d | %s | %s | %s |" % (
            rc, r0["lr"], "%.2f" % auto[0]["acc"] if auto and not auto[0]["diverged"]
            else ("diverge" if auto else "-"),
            "diverge" if r0["diverged"] else "%.2f" % r0["acc"]))
    return lines + [""] if lines else []


def study_f(runs):
    if not runs:
        return []
    lines = ["### Study F: cnn, SGD budgets (flat when the last two evaluations, one per "
             "epoch, differ by < 0.2 points)", "",
             "| run | epochs | last two evaluations (%) | difference | flat |",
             "|---|---|---|---|---|"]
    for r in runs:
        if r["method"] != "sgd" or r["seed"] != 1:
            continue
        ev = [100 * float(x["test_acc"]) for x in r["rows"] if x["event"] in ("eval", "final")]
        if len(ev) < 2:
            continue
        d = abs(ev[-1] - ev[-2])
        lines.append("| %s | %s | %.2f, %.2f | %.2f | %s |" % (
            os.path.basename(r["dir"]), r["extra"].lstrip("_e"), ev[-2], ev[-1], d,
            "yes" if d < 0.2 else "no"))
    budgets = sorted({r["extra"] for r in runs if r["method"] == "cser"})
    for b in budgets:
        lines += ["", "### Study F: final test accuracy at %s epochs (mean +- std over seeds)"
                  % b.lstrip("_e"), "", "| method | R_C | n | accuracy | SGD - it |",
                  "|---|---|---|---|---|"]
        sg = [r["acc"] for r in runs if r["method"] == "sgd" and r["extra"] == b
              and not r["diverged"]]
        sgm = mean_std(sg)[0] if sg else None
        for m, rc in [("sgd", 1), ("cser", 16), ("cser", 32), ("cser", 256), ("cser", 1024)]:
            accs = [r["acc"] for r in runs if r["method"] == m and r["rc"] == rc and
                    r["extra"] == b and not r["diverged"] and r["lr"] == F_LR[(m, rc)]]
            if not accs:
                continue
            mu, sd = mean_std(accs)
            lines.append("| %s | %d | %d | %.2f +- %.2f | %s |" % (
                m, rc, len(accs), mu, sd, "%.2f" % (sgm - mu) if sgm is not None else "-"))
        other = [r for r in runs if r["extra"] == b and r["method"] != "sgd" and
                 r["lr"] != F_LR.get((r["method"], r["rc"]))]
        if other:
            lines += ["", "Other learning rates at %s epochs (phase `flr`; the table above "
                      "is at study A's picks):" % b.lstrip("_e"), "",
                      "| method | R_C | lr | seed | accuracy | at study A's lr, same seed |",
                      "|---|---|---|---|---|---|"]
            for r in sorted(other, key=lambda r: (r["rc"], float(r["lr"]), r["seed"])):
                ref = [x["acc"] for x in runs if x["method"] == r["method"] and
                       x["rc"] == r["rc"] and x["extra"] == b and x["seed"] == r["seed"] and
                       x["lr"] == F_LR.get((r["method"], r["rc"]))]
                lines.append("| %s | %d | %s | %d | %s | %s |" % (
                    r["method"], r["rc"], r["lr"], r["seed"],
                    "diverged" if r["diverged"] else "%.2f" % r["acc"],
                    "%.2f" % ref[0] if ref else "-"))
    return lines + [""]


LAB_NETS = (("LAB1G", "1G"), ("LAB100M", "100M"))
LAB_WORKLOAD = "fashion-mnist/cnn-wide/2x32-lab"
REFS = [("ddp", 1, "", "PyTorch DDP (gloo)"), ("ddp-psgd", 1, "_r4", "DDP + PowerSGD rank 4")]


def fmt1(v):
    return "%.1f" % float(v) if v not in (None, "") else "-"


def lab_time_to(run, target, col):
    """(step, seconds in column col) at the first evaluation reaching target."""
    for row in run["rows"]:
        if row["event"] == "diverged":
            return None
        if row.get("test_acc") and 100.0 * float(row["test_acc"]) >= target:
            return int(row["step"]), float(row[col])
    return None


def study_lab(p_runs, labs):
    """Study P (2 in-process workers, the lr walk) and its runs on the network lab:
    measured wall clock on the lab against the modeled time of the same configuration
    (study P's run: the same bits, its compute and the network model at the link's
    rate)."""
    lines, csv_rows = [], []
    sgd_lr = chosen_lr(p_runs, "sgd", 1)
    if sgd_lr is None:
        return ["(study P: no finished SGD run yet)", ""], []
    sgd = sel(p_runs, "sgd", 1, lr=sgd_lr, seed=1)[0]
    final = sgd["acc"]
    confs = [("sgd", 1), ("cser", 256), ("cser", 1024)]
    lines += ["### Study P and the lab: 2 ranks x batch 32, cnn-wide, 1 epoch (938 steps)", "",
              "SGD (lr %s): final test accuracy %.2f%% (study P, 2 in-process workers; the "
              "lab's MPI runs give the same bits). **Measured**: rank 0's training wall "
              "clock on the lab (`wall_s`: set-up and evaluations excluded) at the first "
              "evaluation (every 94 steps) reaching the target. **Modeled**: the same "
              "configuration's study-P run, worker 0's compute (thread CPU time) plus the "
              "network model at the link's rate (`--net-bandwidth 1G`, 50 us per message, "
              "TCP framing; 100 Mbit/s: the bytes term x10). PyTorch rows: measured only."
              % (sgd_lr, final), ""]
    for d in (1.0, 3.0):
        target = final - d
        lines += ["#### Time to %.2f%% (SGD's final - %g)" % (target, d), "",
                  "| method | R_C | lr | link | step | measured (s) | speedup measured | "
                  "modeled (s) | speedup modeled | measured / modeled speedup |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for study, net in LAB_NETS:
            bw = dict(NETWORKS)[net]
            base = {}
            items = [(m, rc, chosen_lr(p_runs, m, rc), "", m) for m, rc in confs]
            items += [(m, rc, None, ex, label) for m, rc, ex, label in REFS]
            for m, rc, lr, extra, label in items:
                cand = [r for r in labs[study] if r["method"] == m and r["rc"] == rc and
                        r["extra"] == extra and (lr is None or r["lr"] == lr)]
                pr = sel(p_runs, m, rc, lr=lr, seed=1) if m[:3] != "ddp" else []
                if not cand:
                    continue
                r = cand[0]
                meas = lab_time_to(r, target, "wall_s")
                mod = time_to(pr[0], target, bw) if pr else None
                if m == "sgd" and meas:
                    base = {"meas": meas[1], "mod": mod}
                sp_meas = base["meas"] / meas[1] if meas and base.get("meas") else 0.0
                sp_mod = base["mod"] / mod if mod and base.get("mod") else 0.0
                csv_rows.append([LAB_WORKLOAD, net, label if m[:3] == "ddp" else m, rc,
                                 "%.2f" % target, "%.2f" % meas[1] if meas else "",
                                 "%.2f" % sp_meas, "measured"])
                if pr:
                    csv_rows.append([LAB_WORKLOAD, net, m, rc, "%.2f" % target,
                                     "%.2f" % mod if mod else "", "%.2f" % sp_mod,
                                     "modeled"])
                stopped = r["rows"][-1]["event"] not in ("final", "diverged")
                lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    label, rc, r["lr"], net,
                    meas[0] if meas else ("not reached (stopped at step %s)" %
                                          r["rows"][-1]["step"] if stopped else "not reached"),
                    "%.1f" % meas[1] if meas else "-", "%.2fx" % sp_meas if meas else "-",
                    "%.1f" % mod if mod else "-", "%.2fx" % sp_mod if mod else "-",
                    "%.2f" % (sp_meas / sp_mod) if meas and mod and sp_mod and m != "sgd"
                    else "-"))
        lines.append("")
    lines += ["#### The lab runs", "",
              "Per run: the last row of metrics.csv (a 100 Mbit/s SGD or PyTorch run stops at "
              "its target: its last row is that evaluation). `modeled (lab run)` is the "
              "run's own `modeled_total_s`; these runs were recorded before compute_s "
              "stopped counting the CPU time inside collectives, and an MPI rank polls while "
              "it waits, so for SGD it counts most of the allreduce twice (the tables above "
              "use study P's modeled time instead).", "",
              "| link | method | R_C | lr | steps | acc (%) | wall (s) | modeled (lab run, s) | "
              "compute (s) | in collectives (s) | MB sent | load avg at start, end |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for study, net in LAB_NETS:
        for r in labs[study]:
            x = r["rows"][-1]
            mt = re.search(r"load average ([0-9.]+) at the start, ([0-9.]+)", r["exit"])
            load = "%s, %s" % mt.groups() if mt else "-"
            lines.append("| %s | %s%s | %d | %s | %s | %s | %.1f | %s | %s | %s | %s | %s |" % (
                net, r["method"], r["extra"], r["rc"], r["lr"], x["step"],
                "%.2f" % r["acc"] if x["event"] == "final" else "%.2f (stopped)" % r["acc"],
                float(x["wall_s"]), fmt1(x["modeled_total_s"]), fmt1(x["compute_s"]),
                fmt1(x["comm_s"]),
                "%.1f" % (float(x["bytes_up"]) / 1e6) if x["bytes_up"] else "-", load))
    return lines + [""] + lr_table(p_runs, "P") + [""], csv_rows


def study_p_seeds(p_runs):
    """Study P over its seeds: SGD and CSER at R_C 256/1024 at the walked lr."""
    sgd_lr = chosen_lr(p_runs, "sgd", 1)
    if sgd_lr is None:
        return []
    sgd = [r for r in sel(p_runs, "sgd", 1, lr=sgd_lr) if not r["diverged"]]
    if len(sgd) < 2:
        return []
    final = mean_std([r["acc"] for r in sgd])[0]
    lines = ["### Study P over seeds (in process, modeled)", "",
             "SGD and CSER at their walked lr, every recorded seed (phase `pseeds`). "
             "Targets: the mean of SGD's final accuracies (%.2f%%) - 1 and - 3; times: "
             "the mean over the seeds that reach it, modeled as above." % final, "",
             "| method | R_C | lr | seeds | final acc (%) | to final - 1: seeds reaching | "
             "1 Gbit/s (s) | 100 Mbit/s (s) | to final - 3: seeds reaching | 1 Gbit/s (s) "
             "| speedup | 100 Mbit/s (s) | speedup |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    base = {}
    for m, rc in (("sgd", 1), ("cser", 256), ("cser", 1024)):
        lr = chosen_lr(p_runs, m, rc)
        rs = [r for r in sel(p_runs, m, rc, lr=lr) if not r["diverged"]] if lr else []
        if not rs:
            continue
        mu, sd = mean_std([r["acc"] for r in rs])
        cells = []
        for d in (1.0, 3.0):
            reach = [r for r in rs if time_to(r, final - d, 1e9) is not None]
            cells.append("%d of %d" % (len(reach), len(rs)))
            for net, bw in NETWORKS:
                if not reach:
                    cells += ["-"] + (["-"] if d == 3.0 else [])
                    continue
                t = sum(time_to(r, final - d, bw) for r in reach) / len(reach)
                if m == "sgd":
                    base[(d, net)] = t
                cells.append("%.1f" % t)
                if d == 3.0:
                    b = base.get((d, net))
                    cells.append("%.2fx" % (b / t) if b and len(reach) == len(rs) else "-")
        lines.append("| %s | %d | %s | %d | %.2f +- %.2f | %s |" % (
            m, rc, lr, len(rs), mu, sd, " | ".join(cells)))
    return lines + [""]


def modeled_cells(r, sgd, target, csv_rows=None, workload=None):
    """The table cells of run r to target: seconds and speedup over the run sgd, modeled
    at 1 Gbit/s and at 100 Mbit/s; with csv_rows, its time_to_accuracy.csv rows too."""
    cells = []
    for net, bw in NETWORKS:
        t, t0 = time_to(r, target, bw), time_to(sgd, target, bw)
        sp = t0 / t if t and t0 else 0.0
        if csv_rows is not None:
            csv_rows.append([workload, net, r["method"], r["rc"], "%.2f" % target,
                             "%.2f" % t if t else "", "%.2f" % sp, "modeled"])
        cells += ["%.1f" % t if t else "-", "%.2fx" % sp if t else "-"]
    return " | ".join(cells)


def study_p_rest(p_runs):
    """Study P, every method (seed 1, modeled): SGD and CSER at R_C 256/1024 at their
    walked lr, the others at the lr rule (phase prest, run names ending in _rule)."""
    sgd_lr = chosen_lr(p_runs, "sgd", 1)
    rule = [r for r in p_runs if r["extra"] == "_rule" and r["seed"] == 1]
    if sgd_lr is None or not rule:
        return [], []
    sgd = sel(p_runs, "sgd", 1, lr=sgd_lr, seed=1)[0]
    walked = [sgd] + [x for rc in (256, 1024) for x in
                      sel(p_runs, "cser", rc, lr=chosen_lr(p_runs, "cser", rc), seed=1)]
    runs = walked + sorted(rule, key=lambda r: (RCS.index(r["rc"]) if r["rc"] in RCS
                                                else 99, METHODS.index(r["method"])
                                                if r["method"] in METHODS else 99))
    final = sgd["acc"]
    lines = ["### Study P: every method, modeled (seed 1)", "",
             "SGD and CSER at R_C 256 and 1024 at their walked lr (above); the other "
             "methods at the lr rule, SGD's lr / n = %g with `--warmup auto` (phase "
             "`prest`: one run each, no walk). Modeled time as above (worker 0's compute "
             "+ the network model at the link's rate)." % (float(sgd_lr) / 2), ""]
    csv_rows = []
    for target, label, in_csv in ((final - 1, "SGD's final - 1", True),
                                  (final - 3, "SGD's final - 3", True),
                                  (85.0, "a fixed level, not in the CSV", False)):
        lines += ["#### Time to %.2f%% (%s)" % (target, label), "",
                  "| method | R_C | lr | final acc (%) | step | 1 Gbit/s (s) | speedup | "
                  "100 Mbit/s (s) | speedup |", "|---|---|---|---|---|---|---|---|---|"]
        for r in runs:
            st = step_to(r, target)
            # the walked runs' CSV rows come from study_lab
            cells = modeled_cells(r, sgd, target, csv_rows if in_csv and r["extra"] else
                                  None, LAB_WORKLOAD)
            lines.append("| %s | %d | %s%s | %s | %s | %s |" % (
                r["method"], r["rc"], r["lr"], "" if r["extra"] else " (walked)",
                "diverged" if r["diverged"] else "%.2f" % r["acc"],
                st if st is not None else "not reached", cells))
        lines.append("")
    return lines, csv_rows


P2_WORKLOAD = "fashion-mnist/cnn-wide/2x32-2ep"


def study_p2(runs):
    """Study P2: study P's chosen configurations for 2 epochs, modeled times."""
    sgd = [r for r in runs if r["method"] == "sgd" and r["seed"] == 1]
    if not sgd or sgd[0]["diverged"]:
        return ["(study P2: no finished SGD run yet)", ""], []
    sgd = sgd[0]
    final = sgd["acc"]
    lines = ["### Study P2: study P for 2 epochs (1875 steps), modeled", "",
             "Study P's chosen configurations (SGD lr %s; CSER at its P lr) with twice the "
             "budget (the cosine schedule and `--warmup auto` stretch with it), 2 "
             "in-process workers, seed 1: does CSER reach SGD's final - 1 given longer? "
             "SGD's final test accuracy: %.2f%%." % (sgd["lr"], final), "",
             "| method | R_C | lr | final acc (%) | target | step | 1 Gbit/s (s) | speedup "
             "| 100 Mbit/s (s) | speedup |", "|---|---|---|---|---|---|---|---|---|---|"]
    csv_rows = []
    order = [r for r in runs if r["seed"] == 1]
    order.sort(key=lambda r: (r["method"] != "sgd", r["rc"]))
    # SGD's final - 1 and - 3 (in the CSV), and the highest level every run reaches
    # (the lowest final accuracy: how much sooner CSER gets to what it does reach)
    low = min(r["acc"] for r in order if not r["diverged"])
    for d, in_csv in ((1.0, True), (3.0, True), (final - low, False)):
        target = final - d
        for r in order:
            st = step_to(r, target)
            cells = modeled_cells(r, sgd, target, csv_rows if in_csv else None,
                                  P2_WORKLOAD)
            lines.append("| %s | %d | %s | %.2f | %.2f (%s) | %s | %s |" % (
                r["method"], r["rc"], r["lr"], r["acc"], target,
                "final - %g" % d if in_csv else "the lowest final, not in the CSV",
                st if st is not None else "not reached", cells))
    return lines + [""], csv_rows


def lab_plots(labs, p_runs, targets):
    gp = ["set terminal png noenhanced size 1000,650", "set grid", "set key bottom right",
          "set logscale x 10", "set yrange [60:95]", "set ylabel 'test accuracy (%)'"]
    made = False
    for study, net in LAB_NETS:
        curves = []
        for r in labs[study]:
            name = "%s_%s%s_rc%d" % (study, r["method"], r["extra"], r["rc"])
            # modeled: study P's run of the same configuration (the same bits and
            # evaluation steps) at this link's rate; the PyTorch runs have none
            pr = sel(p_runs, r["method"], r["rc"], lr=r["lr"], seed=1)
            mod = {row["step"]: modeled(row, pr[0]["cfg"], dict(NETWORKS)[net])
                   for row in pr[0]["rows"]} if pr else {}
            with open(os.path.join(OUT, "tta_%s.dat" % name), "w") as f:
                for row in r["rows"]:
                    if row["test_acc"] and float(row["wall_s"]) > 0:
                        m = mod.get(row["step"])
                        f.write("%.4f %s %.3f\n" % (float(row["wall_s"]),
                                "%.4f" % m if m else "nan", 100 * float(row["test_acc"])))
            curves.append(name)
        if not curves:
            continue
        made = True
        tl = ["%.2f with lines dashtype 2 title 'target %.2f'" % (t, t) for t in targets]
        for col, what in ((1, "measured wall clock on the lab"),
                          (2, "modeled time (the study-P run of the configuration)")):
            gp += ["set output '%s/tta_lab_%s_%s.png'" % (OUT, net.lower(),
                                                         "measured" if col == 1 else "modeled"),
                   "set title 'network lab %s: cnn-wide, 2 ranks x batch 32'" % net,
                   "set xlabel '%s, training only (s)'" % what,
                   "plot " + ", ".join(["'%s/tta_%s.dat' using %d:3 with linespoints title '%s'"
                                        % (OUT, c, col, c.split("_", 1)[1]) for c in curves]
                                       + tl)]
    if made:
        p = subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", universal_newlines=True,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            print("report_tta.py: gnuplot failed: " + p.stderr)


def splice(lines):
    runlib.splice(os.path.join(ROOT, "docs", "RESULTS.md"),
                  "<!-- tta:begin (experiments/report_tta.py) -->", "<!-- tta:end -->", lines)


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "tta_W_*.dat")) + \
            glob.glob(os.path.join(OUT, "tta_LAB*.dat")):
        os.remove(old)
    w, f, p = load("W"), load("F"), load("P")
    labs = {study: load(study) for study, _ in LAB_NETS}
    lines = ["Runs recorded: study W %d, study F %d, study P %d, lab %d." % (
        len(w), len(f), len(p), sum(len(v) for v in labs.values())), ""]
    rows, tlines = tta(w)
    lab_lines, lab_rows = study_lab(p, labs)
    rows += lab_rows
    pr_lines, pr_rows = study_p_rest(p)
    p2_lines, p2_rows = study_p2(load("P2"))
    rows += pr_rows + p2_rows
    lines += lab_lines + study_p_seeds(p) + pr_lines + p2_lines + tlines
    lines += accuracy_table(w) + [""] + lr_table(w) + [""] + warm_table(w) + study_f(f)
    write_csv(rows)
    with open(os.path.join(OUT, "tta_tables.md"), "w") as fh:
        fh.write("# Generated by experiments/report_tta.py; do not edit.\n\n" +
                 "\n".join(lines) + "\n")
    splice(lines)
    sgd_lr = chosen_lr(w, "sgd", 1)
    fin = [r["acc"] for r in sel(w, "sgd", 1, lr=sgd_lr) if not r["diverged"]] if sgd_lr else []
    plots(w, [mean_std(fin)[0] - d for d in (1.0, 3.0)] if fin else [])
    psgd = chosen_lr(p, "sgd", 1)
    pfin = [r["acc"] for r in sel(p, "sgd", 1, lr=psgd, seed=1)] if psgd else []
    lab_plots(labs, p, [pfin[0] - d for d in (1.0, 3.0)] if pfin else [])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
