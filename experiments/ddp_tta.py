#!/usr/bin/python3
# PyTorch DDP (gloo) and DDP + PowerSGD trained to accuracy: the outside references of
# the time-to-accuracy study (issue 12, item 3b), writing a run directory like
# `cser train --out` does.
"""Usage:
  under mpirun (one process per rank; e.g. experiments/run_ddp_lab.sh on the lab):
    /usr/bin/python3 experiments/ddp_tta.py --out DIR [options]
  locally, without the lab:
    /usr/bin/python3 experiments/ddp_tta.py --spawn N --out DIR [options]

Options (defaults in brackets):
  --mode sgd | powersgd:RANK   DDP's dense allreduce (its built-in path, default
                               buckets), or torch's PowerSGD hook with matrix rank
                               RANK, error feedback and warm start on, the whole model
                               in one bucket (with more, gloo aborts: docs/netlab.md)
                               [sgd]
  --powersgd-start T           steps of dense allreduce before PowerSGD starts (>= 2,
                               torch's minimum with error feedback; its default 1000
                               is longer than the study's runs) [2]
  --model cnn | cnn-wide       the layers of `cser train --model` [cnn-wide]
  --batch B                    per rank [64]
  --epochs E | --steps T       run length (one of them) [--epochs 1]
  --lr ETA --momentum B --nesterov|--no-nesterov --wd L  [0.05 0.9 nesterov 1e-4]
  --lr-schedule cosine|const   after the warm-up [cosine]
  --warmup EPOCHS              linear warm-up, then the schedule [0.1]
  --seed S                     model init and data order [1]
  --eval-every T               evaluate every T steps, 0 = only at the end [30]
  --test-subset N              the first N test images, 0 = all 10,000 [0]
  --time-limit S               stop training once S s of training wall time have
                               passed (checked at evaluations and every 10 steps;
                               the run then ends with its final row) [0 = none]
  --stop-at ACC                 stop after the first evaluation whose test accuracy
                               is >= ACC percent (a time-to-target run: the rest of
                               the run is not needed; the last row is that eval) [0 = off]
  --out DIR                    run directory (rank 0 writes it) [required]
  --spawn N                    start N local ranks (torch.multiprocessing) instead of
                               one per mpirun rank
  --master-port P              the rendezvous port on rank 0 [29533; --spawn: a free one]
  --ifname IF                  GLOO_SOCKET_IFNAME [lab0 when NETLAB_ADDRS is set]
  --data-dir DIR               Fashion-MNIST [/usr/share/datasets/fashion-mnist]
  --threads N                  torch threads per rank [1]
  --malloc-reuse 0|1           glibc keeps freed large blocks for reuse (mallopt
                               M_MMAP_THRESHOLD and M_TRIM_THRESHOLD 1 GiB): torch
                               allocates model-sized tensors every step, and
                               faulting in fresh mappings is slow on this machine
                               (3-4x the step's compute time; docs/netlab.md) [1]
  --check-options              check the options, then exit 0 (2 if bad)

Rank and world come from OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE; the rendezvous
address is the first of NETLAB_ADDRS (scripts/netlab.sh), else MASTER_ADDR.

What it matches of `cser train` (src/train/, src/data/loader.c): steps per epoch
N / (world x batch) with N = 60,000; every epoch the 60,000 training images are
shuffled with a key shared by all ranks and rank r takes positions [r E, (r+1) E) of
that shuffle, E = floor(N / world), batches running across epoch ends; pixels
normalized with mean 0.2860, std 0.3530; He-normal weights (std sqrt(2 / fan_in)),
zero biases; the learning rate of src/train/schedule.c (linear warm-up over
llround(warmup x steps per epoch) steps, lr (t+1) / warm, then cosine to 0 over the
remaining steps); an evaluation at step 0, every --eval-every steps and a final one;
train_loss = mean over the ranks and the steps since the previous row. What differs:
the random streams (torch's generators, not cser's counter-based ones), so the
shuffles and the initial weights are other draws of the same distributions.

Output (rank 0, in --out): config.json; metrics.csv with cser's columns
event,step,epoch,lr,train_loss,test_loss,test_acc,bytes_up,bytes_down,messages,
compute_s,comm_s,modeled_comm_s,modeled_total_s,wall_s (events eval, final,
diverged); metrics.jsonl, the same rows plus lab0_tx_bytes (what rank 0's data NIC
sent while training, headers and ACKs included), tcp_out_segs and tcp_retrans_segs
(rank 0's namespace, while training; all three null off the lab) and allreduces.
Columns:
  wall_s          training wall time of rank 0 from a barrier after set-up (process
                  group, data, model broadcast), evaluations excluded
  compute_s       rank 0's main-thread CPU time in forward, backward (including the
                  comm hook's work on that thread) and the optimizer step
  bytes_up/down   rank 0's payload per its own accounting of the allreduces, as
                  `cser train` counts an allreduce of c floats over n ranks:
                  4 (c - c_r) + 4 (n - 1) c_r each way (c_r = rank 0's chunk), one
                  allreduce per DDP bucket (sgd) or, with PowerSGD, per bucket the
                  uncompressed tensors, then P, then Q (the hook's own split)
  messages        2 (n - 1) per allreduce (the bandwidth-optimal algorithm's
                  critical path, as `cser train` counts it; gloo's own segmenting
                  is not seen)
  modeled_comm_s  cser's network model of those allreduces at the lab's rate and
                  measured latency (NETLAB_BANDWIDTH_BPS, NETLAB_LATENCY_S); empty
                  off the lab; modeled_total_s = compute_s + modeled_comm_s
  comm_s          empty: DDP overlaps its allreduces with the backward pass in
                  gloo's threads, so no time inside collectives is measured
train_loss at step 0 and the test columns of a diverged row are nan, as in cser.
Exit status: 0 done (also when --time-limit stopped it), 2 bad options, 3 diverged,
1 other errors.
"""
import argparse
import ctypes
import datetime
import gzip
import json
import math
import os
import socket
import struct
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from ddp_torch import cnn  # noqa: E402  (the layers, shared with the throughput bench)

PROG = "ddp_tta.py"
COLUMNS = ["event", "step", "epoch", "lr", "train_loss", "test_loss", "test_acc",
           "bytes_up", "bytes_down", "messages", "compute_s", "comm_s",
           "modeled_comm_s", "modeled_total_s", "wall_s"]
MEAN, STD = 0.2860, 0.3530          # src/data/dataset.c, fashion-mnist
CHECK_EVERY = 10                    # --time-limit checks between evaluations
EVAL_CHUNK = 1000
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # <malloc.h>


class Failure(Exception):
    """An error with a message for the user (exit 1)."""


class Diverged(Exception):
    """The training loss became NaN or Inf (exit 3)."""


# ---------------------------------------------------------------- options

def mode_arg(v):
    if v == "sgd":
        return v
    if v.startswith("powersgd:"):
        r = v.split(":", 1)[1]
        if r.isdigit() and 1 <= int(r) <= 1024:
            return v
    raise argparse.ArgumentTypeError("expected sgd or powersgd:RANK with RANK in 1..1024, "
                                     "got '%s'" % v)


def ranged(kind, lo, hi=None, lo_open=False):
    def conv(v):
        try:
            x = kind(v)
        except ValueError:
            raise argparse.ArgumentTypeError("expected a%s number, got '%s'" %
                                             ("n integer" if kind is int else "", v))
        if not math.isfinite(x) or x < lo or (lo_open and x == lo) or \
                (hi is not None and x > hi):
            raise argparse.ArgumentTypeError(
                "expected a number %s %g%s, got '%s'" % (">" if lo_open else ">=", lo,
                                                          "" if hi is None else
                                                          " and <= %g" % hi, v))
        return x
    return conv


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, usage=argparse.SUPPRESS,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", type=mode_arg, default="sgd")
    p.add_argument("--powersgd-start", type=ranged(int, 2), default=2)
    p.add_argument("--model", choices=["cnn", "cnn-wide"], default="cnn-wide")
    p.add_argument("--batch", type=ranged(int, 1, 65536), default=64)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=ranged(float, 0, 1e6, lo_open=True))
    g.add_argument("--steps", type=ranged(int, 1, 1e12))
    p.add_argument("--lr", type=ranged(float, 0, 1e6), default=0.05)
    p.add_argument("--momentum", type=ranged(float, 0, 0.999999), default=0.9)
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--wd", type=ranged(float, 0, 1), default=1e-4)
    p.add_argument("--lr-schedule", choices=["cosine", "const"], default="cosine")
    p.add_argument("--warmup", type=ranged(float, 0, 1e6), default=0.1)
    p.add_argument("--seed", type=ranged(int, 0, 2 ** 62), default=1)
    p.add_argument("--eval-every", type=ranged(int, 0, 1e12), default=30)
    p.add_argument("--test-subset", type=ranged(int, 0, 1e12), default=0)
    p.add_argument("--time-limit", type=ranged(float, 0, 1e7), default=0.0)
    p.add_argument("--stop-at", type=ranged(float, 0, 100), default=0.0)
    p.add_argument("--out", required=True)
    p.add_argument("--spawn", type=ranged(int, 1, 64))
    p.add_argument("--master-port", type=ranged(int, 1, 65535))
    p.add_argument("--ifname")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--threads", type=ranged(int, 1, 256), default=1)
    p.add_argument("--malloc-reuse", type=int, choices=[0, 1], default=1)
    p.add_argument("--check-options", action="store_true",
                   help="check the options and exit (run_ddp_lab.sh, before the lab)")
    a = p.parse_args(argv)
    if a.epochs is None and a.steps is None:
        a.epochs = 1.0
    if a.nesterov and a.momentum == 0:
        p.error("--nesterov needs --momentum > 0 (torch.optim.SGD refuses it); give "
                "--no-nesterov or a momentum")
    if a.spawn is None and "OMPI_COMM_WORLD_RANK" not in os.environ:
        p.error("no ranks: give --spawn N for a local run, or start it under mpirun "
                "(OMPI_COMM_WORLD_RANK is not set), e.g. with experiments/run_ddp_lab.sh")
    if a.spawn is not None and "OMPI_COMM_WORLD_RANK" in os.environ:
        p.error("--spawn N: not under mpirun (OMPI_COMM_WORLD_RANK is set); one process "
                "per rank is started there")
    return a


# ---------------------------------------------------------------- data

def read_idx(path, magic_want, ndim):
    try:
        with gzip.open(path) as f:
            head = f.read(4 + 4 * ndim)
            if len(head) != 4 + 4 * ndim:
                raise Failure("%s: truncated IDX header" % path)
            magic, *dims = struct.unpack(">I" + "I" * ndim, head)
            if magic != magic_want:
                raise Failure("%s: IDX magic 0x%08x, expected 0x%08x" % (path, magic,
                                                                          magic_want))
            data = f.read()
    except OSError as e:
        raise Failure("%s: cannot read (%s); --data-dir names the Fashion-MNIST "
                      "directory" % (path, e))
    if len(data) != math.prod(dims):
        raise Failure("%s: %d data bytes, expected %d from the header" %
                      (path, len(data), math.prod(dims)))
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(*dims)


def load_split(data_dir, split):
    x = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte.gz" % split), 0x803, 3)
    y = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte.gz" % split), 0x801, 1)
    if x.shape[0] != y.shape[0]:
        raise Failure("%s: %d images but %d labels" % (data_dir, x.shape[0], y.shape[0]))
    if int(y.max()) > 9:
        raise Failure("%s: %s label %d, expected 0..9" % (data_dir, split, int(y.max())))
    return x.unsqueeze(1), y.long()


def normalize(x_u8):
    return (x_u8.float() / 255.0 - MEAN) / STD


class Shards:
    """cser's iid loader: per epoch a shared shuffle of all N examples; rank r takes
    positions [r E, (r+1) E), E = floor(N / world); batches run across epoch ends."""

    def __init__(self, n, world, rank, seed):
        self.n, self.world, self.rank, self.seed = n, world, rank, seed
        self.e_len = n // world
        self.perms = {}

    def perm(self, epoch):
        if epoch not in self.perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self.perms = {epoch: torch.randperm(self.n, generator=g)}
        return self.perms[epoch]

    def batch(self, step, b):
        out = []
        for j in range(step * b, (step + 1) * b):
            e, pos = divmod(j, self.e_len)
            out.append(int(self.perm(e)[self.rank * self.e_len + pos]))
        return torch.tensor(out, dtype=torch.long)


# ---------------------------------------------------------------- schedule

def lr_at(a, t, total, spe):
    """src/train/schedule.c, cser_schedule_lr without --warmup auto."""
    warm = math.floor(a.warmup * spe + 0.5)          # llround of a value >= 0
    if warm > 0 and t < warm:
        return a.lr * (t + 1) / warm
    if a.lr_schedule == "const":
        return a.lr
    span = total - warm
    if span <= 0:
        return a.lr
    return a.lr * 0.5 * (1.0 + math.cos(math.pi * (t - warm) / span))


# ---------------------------------------------------------------- accounting

class Account:
    """Rank's payload bytes, messages and modeled seconds of its allreduces, as
    `cser train` counts them (src/comm/comm.c): per allreduce of c floats over n ranks,
    4 (c - c_r) + 4 (n - 1) c_r bytes each way, 2 (n - 1) messages on the critical
    path, modeled 2 (n - 1) latency + wire(bytes) 8 / bandwidth with TCP/IP, Ethernet
    and a 32-byte message header per 1448-byte segment."""

    def __init__(self, world, rank, bps, latency):
        self.n, self.r, self.bps, self.lat = world, rank, bps, latency
        self.bytes = 0
        self.messages = 0
        self.modeled = 0.0
        self.calls = 0
        self.seen = []          # (PowerSGD iteration, bucket floats) of the first calls

    def allreduce(self, count):
        n, r = self.n, self.r
        self.calls += 1
        if n == 1:
            return
        cr = count * (r + 1) // n - count * r // n
        msgs = sum(1 for j in range(n) if j != r and
                   count * (j + 1) // n - count * j // n > 0) + (n - 1 if cr > 0 else 0)
        b = 4 * (count - cr) + 4 * (n - 1) * cr
        self.bytes += b
        self.messages += msgs
        if self.bps:
            self.modeled += 2 * (n - 1) * self.lat
            if b > 0:
                p = b + 32.0 * max(msgs, 1)
                self.modeled += (p + 66.0 * math.ceil(p / 1448.0)) * 8.0 / self.bps


def powersgd_hook_counted(acct, ps):
    """torch's powerSGD_hook, with the allreduces it makes put into acct: a dense
    allreduce of the bucket before start_powerSGD_iter; after it, the uncompressed
    tensors, P and Q, split as the hook splits them (its _should_compress)."""
    def hook(state, bucket):
        if len(acct.seen) < 16:
            acct.seen.append((state.iter, bucket.buffer().numel()))
        if state.iter < state.start_powerSGD_iter:
            acct.allreduce(bucket.buffer().numel())
            return ps.powerSGD_hook(state, bucket)
        unc = np_ = nq = 0
        for t in bucket.gradients():
            n, m = t.shape[0], t.numel() // max(t.shape[0], 1)
            r = min(n, m, state.matrix_approximation_rank)
            if ps._should_compress(n, m, r, state.min_compression_rate)[0]:
                np_ += n * r
                nq += m * r
            else:
                unc += t.numel()
        before = state.total_numel_after_compression
        fut = ps.powerSGD_hook(state, bucket)
        if state.total_numel_after_compression - before != unc + np_ + nq:
            raise Failure("PowerSGD accounting: the hook sent %d elements, this script "
                          "counted %d (torch's hook changed?)" %
                          (state.total_numel_after_compression - before, unc + np_ + nq))
        for c in (unc, np_, nq):
            acct.allreduce(c)
        return fut
    return hook


def ddp_buckets(model):
    """The floats of each allreduce DDP makes per step with its built-in path (torch
    1.13, find_unused_parameters off): step 0 one bucket of all parameters; from
    step 1 the buckets rebuilt in the order gradients become ready (here the reverse
    of the parameters' order), first bucket capped at _DEFAULT_FIRST_BUCKET_BYTES,
    the others at bucket_bytes_cap, by torch's own assignment function."""
    rev = list(reversed([p for p in model.parameters() if p.requires_grad]))
    idx, _ = dist._compute_bucket_assignment_by_size(
        rev, [dist._DEFAULT_FIRST_BUCKET_BYTES, model.bucket_bytes_cap],
        [False] * len(rev))
    return [sum(p.numel() for p in rev)], [sum(rev[i].numel() for i in b) for b in idx]


def nic_counters(ifname):
    """[bytes ifname sent, TCP segments sent, TCP segments retransmitted] in this
    network namespace (/proc/net/dev, /proc/net/snmp), or None without ifname. The
    byte counter of a veth counts each GSO packet's headers once, not each frame's;
    its rx counter is not used: on this kernel (6.18) it missed a 20 MB transfer on
    one of two lab ranks."""
    if not ifname:
        return None
    out = [None, None, None]
    try:
        with open("/proc/net/dev") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name.strip() == ifname:
                    out[0] = int(rest.split()[8])
        with open("/proc/net/snmp") as f:
            tcp = [line.split() for line in f if line.startswith("Tcp:")]
        if len(tcp) == 2:
            k = dict(zip(tcp[0][1:], tcp[1][1:]))
            out[1], out[2] = int(k["OutSegs"]), int(k["RetransSegs"])
    except (OSError, KeyError, ValueError):
        return None
    return out if None not in out else None


# ---------------------------------------------------------------- output

def fmt(x):
    if x is None:
        return ""
    if isinstance(x, int):
        return str(x)
    return "%.9g" % x if math.isfinite(x) else ("nan" if math.isnan(x) else
                                                 ("inf" if x > 0 else "-inf"))


class Metrics:
    def __init__(self, out):
        self.csv_path = os.path.join(out, "metrics.csv")
        self.csv = open(self.csv_path, "w")
        self.jsonl = open(os.path.join(out, "metrics.jsonl"), "w")
        self.csv.write(",".join(COLUMNS) + "\n")
        self.csv.flush()

    def row(self, vals, extra):
        self.csv.write(",".join(fmt(vals[c]) if c != "event" else vals[c]
                                for c in COLUMNS) + "\n")
        j = {c: (vals[c] if not isinstance(vals[c], float) or math.isfinite(vals[c])
                 else None) for c in COLUMNS}
        j.update(extra)
        self.jsonl.write(json.dumps(j) + "\n")
        self.csv.flush()
        self.jsonl.flush()

    def close(self):
        self.csv.close()
        self.jsonl.close()


def malloc_reuse():
    """glibc's malloc: blocks up to 1 GiB from the heap, freed memory kept, so that
    the tensors torch allocates every step reuse memory instead of faulting in fresh
    mappings. True if glibc took both settings."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and
                    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


def write_config(out, cfg):
    tmp = os.path.join(out, "config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(out, "config.json"))


def init_weights(model):
    """cser's initialization (src/nn/init.c): He normal weights, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
            nn.init.zeros_(m.bias)


def evaluate(model, tx, ty):
    model.eval()
    loss = 0.0
    correct = 0
    with torch.no_grad():
        for i in range(0, tx.shape[0], EVAL_CHUNK):
            out = model(normalize(tx[i:i + EVAL_CHUNK]))
            yy = ty[i:i + EVAL_CHUNK]
            loss += float(nn.functional.cross_entropy(out, yy, reduction="sum"))
            correct += int((out.argmax(1) == yy).sum())
    model.train()
    return loss / tx.shape[0], correct / tx.shape[0]


# ---------------------------------------------------------------- the run

def rendezvous(a, launch):
    """(master address, GLOO_SOCKET_IFNAME or None) of this launch."""
    if launch == "spawn":
        return "127.0.0.1", a.ifname
    addrs = os.environ.get("NETLAB_ADDRS", "").split()
    master = addrs[0] if addrs else os.environ.get("MASTER_ADDR")
    if not master:
        raise Failure("under mpirun: neither NETLAB_ADDRS (scripts/netlab.sh) nor "
                      "MASTER_ADDR names the rendezvous address")
    return master, a.ifname if a.ifname is not None else ("lab0" if addrs else None)


def build_model(a, d_net, acct):
    """DDP over the network, with the counted PowerSGD hook in powersgd mode; returns
    (model, PowerSGD state or None)."""
    if a.mode == "sgd":
        return nn.parallel.DistributedDataParallel(d_net), None
    from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as ps
    # One bucket for the whole model: the hook issues its P and Q allreduces from
    # future callbacks, and with two or more buckets these interleave in a different
    # order on different ranks; gloo then aborts the job ("enforce fail at
    # gloo/transport/tcp/pair.cc:510 op.preamble.length <= op.nbytes").
    one = 4 * sum(p.numel() for p in d_net.parameters()) + 2 ** 20
    dist._DEFAULT_FIRST_BUCKET_BYTES = one
    model = nn.parallel.DistributedDataParallel(d_net, bucket_cap_mb=one / 2 ** 20)
    state = ps.PowerSGDState(process_group=None,
                             matrix_approximation_rank=int(a.mode.split(":")[1]),
                             start_powerSGD_iter=a.powersgd_start,
                             use_error_feedback=True, warm_start=True)
    model.register_comm_hook(state, powersgd_hook_counted(acct, ps))
    return model, state


class Run:
    """One rank's training run: set-up, the loop, the sync points, the output."""

    def __init__(self, rank, world, a, launch):
        self.rank, self.world, self.a, self.launch = rank, world, a, launch
        self.lab_bps = float(os.environ.get("NETLAB_BANDWIDTH_BPS", 0) or 0)
        self.lab_lat = float(os.environ.get("NETLAB_LATENCY_S", 0) or 0)
        self.master, self.ifname = rendezvous(a, launch)
        self.port = a.master_port or 29533
        self.step = 0
        self.lr = 0.0
        self.wall = 0.0             # training wall time, evaluations excluded
        self.cpu = 0.0              # main-thread CPU time of the training steps
        self.loss_sum, self.loss_n, self.bad = 0.0, 0, 0.0
        self.last_train_loss = float("nan")
        self.last_acc = 0.0
        self.nic = [0, 0, 0]        # lab0 bytes, TCP segments, retransmitted segments
                                    # sent while training (nic_counters)
        self.nic0 = None
        self.t_seg = 0.0
        self.metrics = None
        self.cfg = None

    # ---- 1. set-up (not in the clock)

    def setup(self):
        a, rank, world = self.a, self.rank, self.world
        self.t_setup = time.perf_counter()
        self.malloc_reuse = malloc_reuse() if a.malloc_reuse else False
        torch.set_num_threads(a.threads)
        torch.manual_seed(a.seed)
        if self.ifname:
            os.environ["GLOO_SOCKET_IFNAME"] = self.ifname
        self.x, self.y = load_split(a.data_dir, "train")  # before the rendezvous: a bad
        self.tx_img = self.ty = None                       # directory fails every rank
        if rank == 0:
            self.tx_img, self.ty = load_split(a.data_dir, "t10k")
            if a.test_subset:
                self.tx_img = self.tx_img[:a.test_subset]
                self.ty = self.ty[:a.test_subset]
        dist.init_process_group("gloo", init_method="tcp://%s:%d" % (self.master, self.port),
                                rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=600))
        n_train = self.x.shape[0]
        if world > n_train:
            raise Failure("%d ranks but %d training images" % (world, n_train))
        self.spe = n_train / (world * a.batch)
        self.total = a.steps if a.steps else math.ceil(a.epochs * self.spe)
        self.shards = Shards(n_train, world, rank, a.seed)
        net = cnn(a.model)
        init_weights(net)
        self.d = sum(p.numel() for p in net.parameters())
        self.acct = Account(world, rank, self.lab_bps, self.lab_lat)
        self.model, self.psgd = build_model(a, net, self.acct)  # DDP broadcasts rank 0's x
        self.buckets0 = self.buckets = None   # PowerSGD: the hook counts what it sends
        if not self.psgd:
            self.buckets0, self.buckets = ddp_buckets(self.model)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=a.lr, momentum=a.momentum,
                                   nesterov=a.nesterov, weight_decay=a.wd)
        if rank == 0:
            self.cfg = self.config()
            write_config(a.out, self.cfg)
            self.metrics = Metrics(a.out)

    def config(self):
        a, psgd = self.a, self.psgd
        cfg = dict(vars(a))
        cfg.update({
            "command_line": " ".join([PROG] + sys.argv[1:]),
            "method": "ddp-" + a.mode.split(":")[0],
            "powersgd_rank": int(a.mode.split(":")[1]) if psgd else None,
            "powersgd": ({"start_powerSGD_iter": a.powersgd_start,
                          "use_error_feedback": True, "warm_start": True,
                          "min_compression_rate": psgd.min_compression_rate,
                          "orthogonalization_epsilon": psgd.orthogonalization_epsilon,
                          "first_bucket_bytes": dist._DEFAULT_FIRST_BUCKET_BYTES}
                         if psgd else None),
            "dataset": "fashion-mnist", "backend": "gloo", "workers": self.world,
            "world": self.world, "launch": self.launch, "torch_version": torch.__version__,
            "d": self.d, "train_examples": int(self.x.shape[0]),
            "test_examples": int(self.tx_img.shape[0]),
            "steps_per_epoch": self.spe, "total_steps": self.total,
            "warmup_steps": math.floor(a.warmup * self.spe + 0.5),
            "master_addr": self.master, "master_port": self.port,
            "gloo_socket_ifname": self.ifname,
            "net-bandwidth": self.lab_bps or None,
            "net-latency": self.lab_lat if self.lab_bps else None,
            "bucket_cap_bytes": self.model.bucket_bytes_cap,
            "buckets_step0": self.buckets0, "buckets": self.buckets,
            "malloc_reuse_applied": self.malloc_reuse,
            "setup_s": None,
        })
        return cfg

    # ---- 2. the loop

    def train_step(self):
        a, t = self.a, self.step
        self.lr = lr_at(a, t, self.total, self.spe)
        for grp in self.opt.param_groups:
            grp["lr"] = self.lr
        idx = self.shards.batch(t, a.batch)
        xb, yb = normalize(self.x[idx]), self.y[idx]
        c0 = time.thread_time()
        self.opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(self.model(xb), yb)
        loss.backward()
        self.opt.step()
        self.cpu += time.thread_time() - c0
        if not self.psgd:
            for c in (self.buckets0 if t == 0 else self.buckets):
                self.acct.allreduce(c)
        lv = float(loss)
        if math.isfinite(lv):
            self.loss_sum += lv
            self.loss_n += 1
        else:
            self.bad = 1.0
        self.step += 1

    def train(self):
        """Returns how it ended: None (done), 'stop' (time limit) or 'diverged'."""
        a = self.a
        dist.barrier()
        self.setup_s = time.perf_counter() - self.t_setup
        self.nic0 = nic_counters(self.ifname)
        self.t_seg = time.perf_counter()
        end = self.sync("eval") if a.eval_every > 0 else None  # the curves' start
        while end is None and self.step < self.total:
            self.train_step()
            s = self.step
            if s == self.total:
                break
            if a.eval_every > 0 and s % a.eval_every == 0:
                end = self.sync("eval")
            elif a.time_limit and s % CHECK_EVERY == 0:
                end = self.sync("check")
        return end if end is not None else self.sync("final")

    # ---- 3. sync points (not in the clock)

    def sync(self, kind):
        """Ends a training segment: the ranks agree on the training loss, divergence
        and the time limit (rank 0's clock); rank 0 evaluates and writes the row
        (eval, final, diverged) while the others wait at a barrier. Returns
        'stop', 'diverged' or None."""
        self.wall += time.perf_counter() - self.t_seg
        c = nic_counters(self.ifname)
        if c is not None and self.nic0 is not None:
            self.nic = [t + c1 - c0 for t, c1, c0 in zip(self.nic, c, self.nic0)]
        v = torch.tensor([self.loss_sum, float(self.loss_n), self.bad,
                          self.wall if self.rank == 0 else 0.0], dtype=torch.float64)
        dist.all_reduce(v)
        loss_sum, loss_n, bad, wall0 = v.tolist()
        ret = None
        if bad > 0:
            ret, kind = "diverged", "diverged"
        elif self.a.time_limit and wall0 >= self.a.time_limit and self.step < self.total:
            ret, kind = "stop", "final"
        if kind != "check":
            if loss_n > 0:
                self.last_train_loss = loss_sum / loss_n / self.world
            self.loss_sum, self.loss_n = 0.0, 0
            if self.rank == 0:
                self.row(kind, ret)
        if self.a.stop_at and kind == "eval" and ret is None:
            # --stop-at: rank 0 evaluated; every rank learns whether the target is met
            hit = torch.tensor([1.0 if self.rank == 0 and
                                100.0 * self.last_acc >= self.a.stop_at else 0.0])
            dist.all_reduce(hit)
            if hit.item() > 0:
                ret = "stop"
        dist.barrier()
        self.nic0 = nic_counters(self.ifname)
        self.t_seg = time.perf_counter()
        return ret

    def row(self, kind, ret):
        nan = float("nan")
        tl, ta = (evaluate(self.model.module, self.tx_img, self.ty) if kind != "diverged"
                  else (nan, nan))
        self.last_acc = ta
        acct = self.acct
        mod = acct.modeled if self.lab_bps else None
        vals = {"event": kind, "step": self.step, "epoch": self.step / self.spe,
                "lr": self.lr,
                "train_loss": nan if kind == "diverged" else self.last_train_loss,
                "test_loss": tl, "test_acc": ta, "bytes_up": acct.bytes,
                "bytes_down": acct.bytes, "messages": acct.messages,
                "compute_s": self.cpu, "comm_s": None, "modeled_comm_s": mod,
                "modeled_total_s": self.cpu + mod if mod is not None else None,
                "wall_s": self.wall}
        lab = self.nic0 is not None
        extra = {"lab0_tx_bytes": self.nic[0] if lab else None,
                 "tcp_out_segs": self.nic[1] if lab else None,
                 "tcp_retrans_segs": self.nic[2] if lab else None,
                 "allreduces": acct.calls}
        if ret == "stop":
            extra["stopped"] = "time-limit"
        self.metrics.row(vals, extra)
        if kind != "final" or ret == "stop":
            print("%s step %d  epoch %.3f  lr %.5g  train loss %.4f  test acc %.2f%%  "
                  "wall %.2f s  MB up %.2f%s" %
                  (kind, self.step, self.step / self.spe, self.lr, self.last_train_loss,
                   100 * ta, self.wall, acct.bytes / 1e6,
                   "  (time limit)" if ret == "stop" else ""), flush=True)

    # ---- 4. the end

    def finish(self, end):
        if self.rank == 0:
            self.metrics.close()
            self.cfg["setup_s"] = self.setup_s
            self.cfg["hook_buckets_seen"] = self.acct.seen if self.psgd else None
            write_config(self.a.out, self.cfg)
            self.summary(end)
        dist.destroy_process_group()
        if end == "diverged":
            raise Diverged("diverged: the training loss became NaN or Inf before step %d "
                           "(lr %g)" % (self.step, self.lr))

    def summary(self, end):
        w, acct = self.world, self.acct
        dense = 2 * (w - 1) / w * 4 * self.d * self.step     # a rank's bytes, one way
        lab = ""
        if self.nic0 is not None:
            lab = ("; lab0 sent %.1f MB while training (%.4f x the accounted bytes; "
                   "%d TCP segments, %d retransmitted)" %
                   (self.nic[0] / 1e6, self.nic[0] / acct.bytes if acct.bytes else 0.0,
                    self.nic[1], self.nic[2]))
        print("ddp_tta: %s after %d steps (%.3f epochs), %d ranks, d = %d: wall %.2f s "
              "(set-up %.1f s, not counted), compute %.2f s; %.1f MB up per rank "
              "(dense allreduce would be %.1f MB: ratio %.1f)%s" %
              ("diverged" if end == "diverged" else "done", self.step,
               self.step / self.spe, w, self.d, self.wall, self.setup_s, self.cpu,
               acct.bytes / 1e6, dense / 1e6, dense / acct.bytes if acct.bytes else 0.0,
               lab), flush=True)


def run(rank, world, a, launch):
    r = Run(rank, world, a, launch)
    r.setup()
    r.finish(r.train())


def entry(rank, world, a, launch):
    """One rank: exit 1 with the message on a Failure, 3 on divergence."""
    try:
        run(rank, world, a, launch)
    except Failure as e:
        print("%s: rank %d: %s" % (PROG, rank, e), file=sys.stderr, flush=True)
        sys.exit(1)
    except Diverged as e:
        print("%s: rank %d: %s" % (PROG, rank, e), file=sys.stderr, flush=True)
        sys.exit(3)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv):
    a = parse_args(argv)
    if a.check_options:
        return 0
    a.out = os.path.abspath(a.out)
    if a.spawn is not None:
        rank, world, launch = 0, a.spawn, "spawn"
    else:
        try:
            rank = int(os.environ["OMPI_COMM_WORLD_RANK"])
            world = int(os.environ["OMPI_COMM_WORLD_SIZE"])
        except (KeyError, ValueError):
            print("%s: under mpirun: OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE are not "
                  "integers" % PROG, file=sys.stderr)
            return 2
        launch = "mpirun"
    if rank == 0:
        try:
            os.makedirs(a.out, exist_ok=True)
            for f in ("metrics.csv", "metrics.jsonl", "config.json"):
                if os.path.exists(os.path.join(a.out, f)):
                    os.remove(os.path.join(a.out, f))
        except OSError as e:
            print("%s: --out %s: cannot create or clear it (%s)" % (PROG, a.out, e),
                  file=sys.stderr)
            return 1
    if launch == "mpirun":
        entry(rank, world, a, launch)
        return 0
    import torch.multiprocessing as mp
    if a.master_port is None:
        a.master_port = free_port()
    try:
        mp.spawn(entry, args=(world, a, launch), nprocs=world, join=True)
    except mp.ProcessExitedException as e:
        print("%s: a rank exited with status %s" % (PROG, e.exit_code), file=sys.stderr)
        return e.exit_code if isinstance(e.exit_code, int) and e.exit_code > 0 else 1
    except mp.ProcessRaisedException as e:
        print("%s: a rank failed:\n%s" % (PROG, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
