# mpi_worker.py: run under mpirun by test_mpi.py: one worker per rank trains the small
# model of the tests on fixed per-rank gradients with cser.Comm.mpi() and saves its
# final model, evaluated model and traffic counters for each (method, rc) in CASES
# (rank r writes OUT.r.npz).
# Usage: mpirun -np N /usr/bin/python3 mpi_worker.py OUT
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import cser  # noqa: E402
import cser.torch  # noqa: E402
from test_optim import grads_for, lr_at, small_model  # noqa: E402


def train(comm, method, rc, steps, model=None):
    """model: built here unless given (threads: build models in the main thread, the
    global torch RNG is not thread-local)."""
    model = small_model() if model is None else model
    opt = cser.torch.Optimizer(model.parameters(), method=method, rc=rc, lr=lr_at(0),
                               weight_decay=1e-4, seed=5, comm=comm)
    for t in range(steps):
        opt.zero_grad()
        for p, g in zip(model.parameters(), grads_for(model, t, comm.rank)):
            p.grad.copy_(g)
        opt.param_groups[0]["lr"] = lr_at(t)
        opt.step()
    st = opt.stats()
    return (opt.get_vector("model").numpy(), opt.eval_model().numpy(),
            np.array([st["bytes_up"], st["bytes_down"], st["messages"]], dtype=np.int64))


CASES = [("cser", 256.0), ("ef-sgd:c=topk:8", None),  # allreduce and allgather paths
         ("streaming-diloco:c=fragment:4,frags=3", None)]  # AdamW, outer Nesterov
STEPS = 12


def main():
    out = sys.argv[1]
    torch.set_num_threads(1)
    comm = cser.Comm.mpi(timeout=60)
    res = {}
    for i, (method, rc) in enumerate(CASES):
        res["x%d" % i], res["ev%d" % i], res["counters%d" % i] = train(comm, method, rc,
                                                                       STEPS)
    np.savez("%s.%d.npz" % (out, comm.rank), size=comm.size, **res)


if __name__ == "__main__":
    main()
