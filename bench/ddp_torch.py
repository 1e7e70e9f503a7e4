# ddp_torch.py: PyTorch DDP (gloo) side of the race against `cser train`: the same cnn,
# Fashion-MNIST, batch per worker, SGD (Nesterov 0.9, wd 1e-4), optional PowerSGD hook.
# Prints one line:  ddp mode=MODE world=N batch=B steps=S imgs_per_s=X
# Usage: OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Cooperlake /usr/bin/python3 \
#          bench/ddp_torch.py MODE WORLD BATCH WARMUP STEPS [MODEL]
#        MODE: sgd | powersgd:RANK; MODEL: cnn (default) | cnn-wide (fc 4096 - fc 1024,
#        10.8M parameters, as `cser train --model cnn-wide`); MASTER_ADDR/MASTER_PORT
#        from the environment if set.
import gzip
import os
import struct
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

DATA = "/usr/share/datasets/fashion-mnist"


def load_images():
    with gzip.open(os.path.join(DATA, "train-images-idx3-ubyte.gz")) as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
    with gzip.open(os.path.join(DATA, "train-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        y = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
    x = x.view(n, 1, h, w).float().div_(255.0)
    return x, y.long()


def cnn(name="cnn"):
    convs = [nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
             nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    if name == "cnn-wide":
        return nn.Sequential(*convs, nn.Linear(64 * 5 * 5, 4096), nn.ReLU(),
                             nn.Linear(4096, 1024), nn.ReLU(), nn.Linear(1024, 10))
    if name != "cnn":
        raise ValueError("ddp_torch.py: MODEL: expected cnn or cnn-wide, got '%s'" % name)
    return nn.Sequential(*convs, nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))


def worker(rank, world, mode, batch, warmup, steps, result, model_name):
    torch.set_num_threads(1)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(1)
    x, y = load_images()
    x, y = x[rank::world], y[rank::world]          # iid shard per worker
    net = cnn(model_name)
    ddp_opts = {}
    if mode.startswith("powersgd"):
        # one bucket for the whole model: the hook chains its P and Q allreduces in
        # future callbacks, and with two or more buckets (DDP's default 1 MiB first
        # bucket; cnn-wide even at 25 MiB) they interleave differently on different
        # ranks and gloo aborts (gloo/transport/tcp/pair.cc: op.preamble.length <=
        # op.nbytes); for cnn this is the single bucket it had before
        one = 4 * sum(p.numel() for p in net.parameters()) + 2 ** 20
        torch.distributed._DEFAULT_FIRST_BUCKET_BYTES = one
        ddp_opts["bucket_cap_mb"] = one / 2 ** 20
    model = nn.parallel.DistributedDataParallel(net, **ddp_opts)
    if mode.startswith("powersgd"):
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as ps
        state = ps.PowerSGDState(process_group=None,
                                 matrix_approximation_rank=int(mode.split(":")[1]),
                                 start_powerSGD_iter=2, use_error_feedback=True,
                                 warm_start=True)
        model.register_comm_hook(state, ps.powerSGD_hook)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                          weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(rank + 1)
    perm = torch.randperm(x.shape[0], generator=g)
    t0 = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            dist.barrier()
            t0 = time.perf_counter()
        i = perm[(step * batch) % (x.shape[0] - batch):][:batch]
        opt.zero_grad()
        loss = loss_fn(model(x[i]), y[i])
        loss.backward()
        opt.step()
    dist.barrier()
    if rank == 0:
        result.put(time.perf_counter() - t0)
    dist.destroy_process_group()


def main():
    mode, world, batch, warmup, steps = sys.argv[1], *map(int, sys.argv[2:6])
    model_name = sys.argv[6] if len(sys.argv) > 6 else "cnn"
    cnn(model_name)     # a bad name fails here, before any process starts
    ctx = mp.get_context("spawn")
    result = ctx.SimpleQueue()
    mp.spawn(worker, args=(world, mode, batch, warmup, steps, result, model_name),
             nprocs=world)
    dt = result.get()
    print("ddp mode=%s world=%d batch=%d steps=%d imgs_per_s=%.1f"
          % (mode, world, batch, steps, world * batch * steps / dt))


if __name__ == "__main__":
    main()
