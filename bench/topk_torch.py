# topk_torch.py: PyTorch side of the top-k benchmark: torch.topk(x.abs(), k) on one
# thread over the same float32 vector bench_compress wrote (raw little-endian floats).
# One line per repetition:  torch_topk_ms X
# Usage: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/topk_torch.py FILE N K REPS
import sys
import time

import numpy as np
import torch


def main():
    path, n, k, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)
    x = torch.from_numpy(np.fromfile(path, dtype=np.float32, count=n))
    if x.numel() != n:
        sys.exit("topk_torch.py: %s holds %d floats, expected %d" % (path, x.numel(), n))
    torch.topk(x.abs(), k)  # warm-up
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.topk(x.abs(), k)
        print("torch_topk_ms %.3f" % ((time.perf_counter() - t0) * 1e3), flush=True)


if __name__ == "__main__":
    main()
