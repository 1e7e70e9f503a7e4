# python_overhead.py: the cost of cser.torch.Optimizer in a PyTorch training step: the
# torch cnn of src/nn/models.c (bench/nn_torch.py), batch 32, one thread, a fixed random
# batch; one step = zero_grad + forward + backward + optimizer step. Sides, interleaved
# in one process (every repetition runs STEPS steps of each side, in a rotating order):
#   torch      torch.optim.SGD (momentum 0.9, Nesterov, weight decay 1e-4)
#   cser-sgd   cser.torch.Optimizer(method="sgd"), one worker, same hyperparameters
#   cser-256   cser.torch.Optimizer(method="cser", rc=256), one worker
# Prints one line per side and repetition:  side=S rep=R step_ms=X opt_us=Y
# where opt_us times the optimizer's step() alone (the part the binding changes), on a
# separate model whose gradients are filled once.
# Usage: OPENBLAS_NUM_THREADS=1 PYTHONPATH=python /usr/bin/python3 \
#          bench/python_overhead.py [REPS] [STEPS]
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cser.torch  # noqa: E402
from nn_torch import cnn  # noqa: E402


def make(side):
    torch.manual_seed(1)
    model = cnn(1, 28, 28, 10)
    kw = dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    if side == "torch":
        opt = torch.optim.SGD(model.parameters(), **kw)
    elif side == "cser-sgd":
        opt = cser.torch.Optimizer(model.parameters(), method="sgd", **kw)
    else:
        opt = cser.torch.Optimizer(model.parameters(), method="cser", rc=256, **kw)
    return model, opt


def steps(model, opt, x, y, n):
    loss_fn = torch.nn.functional.cross_entropy
    t0 = time.perf_counter()
    for _ in range(n):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return (time.perf_counter() - t0) / n


def opt_only(model, opt, x, y, n):
    t0 = time.perf_counter()
    for _ in range(n):
        opt.step()
    return (time.perf_counter() - t0) / n


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    nsteps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,), generator=g)
    sides = ["torch", "cser-sgd", "cser-256"]
    runs = {s: make(s) for s in sides}
    alone = {s: make(s) for s in sides}
    for s in sides:  # warm-up; gradients for the step-alone timing
        steps(*runs[s], x, y, 5)
        m, o = alone[s]
        o.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
    for r in range(reps):
        order = sides[r % 3:] + sides[:r % 3]
        for s in order:
            ms = 1e3 * steps(*runs[s], x, y, nsteps)
            us = 1e6 * opt_only(*alone[s], x, y, nsteps)
            print("side=%s rep=%d step_ms=%.4f opt_us=%.1f" % (s, r, ms, us), flush=True)


if __name__ == "__main__":
    main()
