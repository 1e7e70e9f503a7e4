"""runlib.py: what the study runners and report scripts share: running one `cser train`
command into its run directory and recording how it ended (run_study.py, run_tta.py),
reading a finished run back, and the helpers of the reports (report*.py)."""
import csv
import json
import math
import os
import subprocess
import time

# Left behind by a finished run and not kept in git: the checkpoint (the metrics hold
# the results) and the CLI's per-run plot (the report scripts draw the study plots).
JUNK = ("checkpoint.bin", "checkpoint.bin.tmp", "curves.png")


def execute(cmd, out):
    """Runs cmd (which writes into out) from a clean start: stale metrics of an
    unfinished run are removed first; exit.txt records the exit status, the wall time,
    the load average at its start and end (the machine is shared) and the tail of
    the output; the junk files are removed afterwards."""
    for f in ("metrics.csv", "metrics.jsonl"):
        if os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))
    os.makedirs(out, exist_ok=True)
    load0 = os.getloadavg()[0]
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    with open(os.path.join(out, "exit.txt"), "w") as f:
        f.write("exit %d wall %.1f s\nload average %.2f at the start, %.2f at the end "
                "(2 cores)\n%s" % (p.returncode, time.time() - t0, load0,
                                   os.getloadavg()[0], p.stdout[-3000:]))
    for junk in JUNK:
        if os.path.exists(os.path.join(out, junk)):
            os.remove(os.path.join(out, junk))
    print("   exit %d, %.0f s" % (p.returncode, time.time() - t0), flush=True)
    return p.returncode


def read_run(d, stopped_ok=False):
    """A finished run directory: {"dir", "cfg" (config.json), "rows" (metrics.csv, one
    dict per row), "exit" (exit.txt's text, "" if none)}, or None when it is unreadable
    or unfinished. Finished: its last row is `final` or `diverged`, or (stopped_ok) its
    exit.txt records exit 0 (a run stopped on purpose by --stop-after or --stop-at)."""
    try:
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(d, "metrics.csv")) as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError):
        return None
    try:
        with open(os.path.join(d, "exit.txt")) as f:
            text = f.read()
    except OSError:
        text = ""
    if not rows or (rows[-1]["event"] not in ("final", "diverged") and
                    not (stopped_ok and text.startswith("exit 0 "))):
        return None
    return {"dir": d, "cfg": cfg, "rows": rows, "exit": text}


def mean_std(xs):
    """Mean and sample standard deviation (0 for one value)."""
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, s


def splice(path, begin, end, lines):
    """Replaces what lies between the markers begin and end in the file at path by
    lines (atomically; nothing happens when the file or a marker is missing)."""
    try:
        with open(path) as f:
            doc = f.read()
    except OSError:
        return
    i, j = doc.find(begin), doc.find(end)
    if i < 0 or j < i:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(doc[:i + len(begin)] + "\n" + "\n".join(lines).strip() + "\n" + doc[j:])
    os.replace(tmp, path)
