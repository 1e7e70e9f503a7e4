# conftest.py: the package under test is ../cser (PYTHONPATH=python also works); torch
# runs on one thread so that several worker threads do not oversubscribe the cores.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the torch tests skip themselves (pytest.importorskip)
    pass
