#!/usr/bin/env python3
# torch_fashion_mnist.py: a PyTorch training script that uses cser: the `cnn` of the C
# engine (src/nn/models.c) written in torch, Fashion-MNIST from Debian
# (/usr/share/datasets/fashion-mnist, package dataset-fashion-mnist), and
# cser.torch.Optimizer in place of torch.optim.SGD: CSER at R_C 256 by default, one
# worker per MPI rank. It follows `cser train`'s recipe (docs/train.md): batch 32 per
# worker, lr 0.05 with a 0.1-epoch linear warm-up then cosine, Nesterov momentum 0.9,
# weight decay 1e-4, iid shards, He-normal init, evaluation of the average of the local
# models, and prints the same summary (accuracy, bytes per worker, R_C).
#
#   make && mpirun --allow-run-as-root -np 4 env PYTHONPATH=python \
#       /usr/bin/python3 examples/torch_fashion_mnist.py --epochs 1
#   PYTHONPATH=python /usr/bin/python3 examples/torch_fashion_mnist.py \
#       --backend threads --workers 4 --epochs 1          # no MPI: 4 Python threads
import argparse
import gzip
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import cser  # noqa: E402
import cser.torch  # noqa: E402

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set statistics (docs/data.md)


def cnn(seed):
    """conv1 32 3x3 - relu - maxpool 2 - conv2 64 3x3 - relu - maxpool 2 - fc1 128 -
    relu - fc2 10; He-normal weights (std sqrt(2 / fan_in)), zero biases, as
    src/nn/init.c. Every worker builds it from the same seed (the optimizer checks
    that the initial models agree)."""
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * math.sqrt(2.0 / fan_in))
            else:
                p.zero_()
    return model


def load_idx(path, images):
    with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
        data = bytearray(f.read())  # writable: torch.from_numpy wants it
    if images:
        magic, n, h, w = struct.unpack(">IIII", data[:16])
        if magic != 0x803:
            raise SystemExit("%s: expected IDX image magic 0x00000803, found 0x%08x"
                             % (path, magic))
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, h, w)
    magic, n = struct.unpack(">II", data[:8])
    if magic != 0x801:
        raise SystemExit("%s: expected IDX label magic 0x00000801, found 0x%08x"
                         % (path, magic))
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


def load(data_dir, split):
    out = []
    for kind, images in (("images-idx3", True), ("labels-idx1", False)):
        base = os.path.join(data_dir, "%s-%s-ubyte" % (split, kind))
        path = base + ".gz" if os.path.exists(base + ".gz") else base
        if not os.path.exists(path):
            raise SystemExit("%s(.gz): not found (install dataset-fashion-mnist or give "
                             "--data-dir)" % base)
        out.append(load_idx(path, images))
    return torch.from_numpy(out[0]), torch.from_numpy(out[1])


class Shard:
    """This worker's batches: every epoch a shuffle of all N examples shared by the
    workers (seed, epoch), worker r taking the r-th contiguous E = N // n of them;
    batches run across epoch ends (the C loader's iid split)."""

    def __init__(self, x, y, rank, n, batch, seed):
        self.x, self.y, self.rank, self.n, self.batch, self.seed = x, y, rank, n, batch, seed
        self.E = x.shape[0] // n
        self.epoch, self.pos = 0, 0
        self.lut = ((torch.arange(256, dtype=torch.float64) / 255 - MEAN) / STD).float()
        self._perm()

    def _perm(self):
        g = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
        self.idx = torch.randperm(self.x.shape[0], generator=g)[
            self.rank * self.E:(self.rank + 1) * self.E]

    def next(self):
        take = []
        need = self.batch
        while need > 0:
            k = min(need, self.E - self.pos)
            take.append(self.idx[self.pos:self.pos + k])
            self.pos += k
            need -= k
            if self.pos == self.E:
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm()
        i = torch.cat(take)
        return self.lut[self.x[i].long()], self.y[i]


def lr_at(t, total, steps_per_epoch, base, warmup_epochs):
    """Linear warm-up then cosine, as src/train/schedule.c."""
    warm = int(round(warmup_epochs * steps_per_epoch))
    if warm > 0 and t < warm:
        return base * (t + 1) / warm
    span = total - max(warm, 0)
    if span <= 0:
        return base
    return base * 0.5 * (1 + math.cos(math.pi * (t - max(warm, 0)) / span))


def evaluate(model, opt, comm, xt, yt, lut):
    """Accuracy and loss of the evaluated model (the average of the local models for
    local-model methods) over the test set; each worker takes a slice, sums are
    summed over the workers."""
    lo = comm.rank * xt.shape[0] // comm.size
    hi = (comm.rank + 1) * xt.shape[0] // comm.size
    sums = torch.zeros(3)
    with opt.averaged(), torch.no_grad():
        for i in range(lo, hi, 500):
            xb, yb = lut[xt[i:min(hi, i + 500)].long()], yt[i:min(hi, i + 500)]
            out = model(xb)
            sums[0] += nn.functional.cross_entropy(out, yb, reduction="sum")
            sums[1] += (out.argmax(1) == yb).sum()
            sums[2] += yb.numel()
    comm.allreduce(sums, op="sum")
    return float(sums[1] / sums[2]), float(sums[0] / sums[2])


def worker(comm, a, data, log):
    torch.set_num_threads(1)
    (x, y), (xt, yt) = data
    model = cnn(a.seed)
    opt = cser.torch.Optimizer(model.named_parameters(), method=a.method, rc=a.rc, lr=a.lr,
                               momentum=0.9, nesterov=True, weight_decay=a.wd,
                               seed=a.seed, comm=comm)
    shard = Shard(x, y, comm.rank, comm.size, a.batch, a.seed)
    spe = shard.E / a.batch
    total = a.steps if a.steps else int(round(a.epochs * spe))
    loss_sum, loss_n, compute = 0.0, 0, 0.0
    t_start = time.time()
    for t in range(total):
        xb, yb = shard.next()
        c0 = time.thread_time()
        for g in opt.param_groups:
            g["lr"] = lr_at(t, total, spe, a.lr, a.warmup)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        compute += time.thread_time() - c0
        opt.step()
        loss_sum += float(loss)
        loss_n += 1
        if (t + 1) % a.eval_every == 0 or t + 1 == total:
            acc, tl = evaluate(model, opt, comm, xt, yt, shard.lut)
            tr = torch.tensor([loss_sum / loss_n])
            comm.allreduce(tr)
            log("step %d (%.2f epochs): test accuracy %.2f%%, test loss %.4f, train loss "
                "%.4f, %.1f s" % (t + 1, (t + 1) / spe, 100 * acc, tl, float(tr),
                                  time.time() - t_start))
            loss_sum, loss_n = 0.0, 0
    st = opt.stats()
    return dict(steps=total, epochs=total / spe, acc=acc, test_loss=tl, train_loss=float(tr),
                stats=st, method=opt.method, d=opt.d, local=opt.is_local,
                wall=time.time() - t_start, compute=compute)


def summary(r, n):
    st = r["stats"]
    print("\ntorch_fashion_mnist: done after %d steps (%.2f epochs), %d workers, d = %d"
          % (r["steps"], r["epochs"], n, r["d"]))
    print("  method          %s" % r["method"])
    print("  test accuracy   %.2f%%  (test loss %.4f; evaluated model: %s)"
          % (100 * r["acc"], r["test_loss"],
             "average of the %d local models" % n if r["local"] else "the replicated model"))
    print("  train loss      %.4f  (mean over workers, last evaluation interval)"
          % r["train_loss"])
    print("  bytes/worker    %.3f MB up, %.3f MB down, %d messages"
          % (st["bytes_up"] / 1e6, st["bytes_down"] / 1e6, st["messages"]))
    if st["actual_rc"] > 0:
        print("  R_C             actual %.1f, nominal %.1f  (SGD's dense allreduce bytes "
              "over bytes moved per step)" % (st["actual_rc"], st["nominal_rc"]))
    else:
        print("  R_C             actual n/a (nothing moved), nominal %.1f" % st["nominal_rc"])
    print("  time            measured %.1f s (compute %.1f s, in collectives %.1f s)"
          % (r["wall"], r["compute"], st["comm_s"]))
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser(description="Fashion-MNIST cnn in torch with "
                                "cser.torch.Optimizer (CSER at R_C 256 by default)")
    p.add_argument("--method", default="cser", help="method name or spec [cser]")
    p.add_argument("--rc", type=float, default=None,
                   help="target R_C for a method name (default 256; sgd: none)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=0, help="run length in steps (overrides "
                   "--epochs)")
    p.add_argument("--batch", type=int, default=32, help="batch per worker [32]")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=0.1, help="warm-up epochs [0.1]")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--backend", choices=("mpi", "threads"), default="mpi")
    p.add_argument("--workers", type=int, default=4, help="threads backend: workers [4]")
    a = p.parse_args()
    if a.batch < 1 or a.epochs <= 0 or a.steps < 0 or a.eval_every < 1:
        p.error("--batch and --eval-every must be >= 1, --epochs > 0, --steps >= 0")
    data = (load(a.data_dir, "train"), load(a.data_dir, "t10k"))
    if a.backend == "mpi":
        comm = cser.Comm.mpi()
        log = print if comm.rank == 0 else (lambda *_: None)
        log("torch_fashion_mnist: %d MPI ranks, method %s, rc %s"
            % (comm.size, a.method, "default" if a.rc is None else a.rc))
        r = worker(comm, a, data, log)
        if comm.rank == 0:
            summary(r, comm.size)
    else:
        group = cser.Comm.threads(a.workers)
        print("torch_fashion_mnist: %d threads, method %s, rc %s"
              % (a.workers, a.method, "default" if a.rc is None else a.rc))
        res = group.run(lambda c: worker(c, a, data, print if c.rank == 0
                                         else (lambda *_: None)))
        summary(res[0], a.workers)


if __name__ == "__main__":
    main()
