"""cser: communication-efficient distributed SGD with error reset (CSER) and its
baselines, over libcser (ctypes; no compiler needed at install time).

    import cser
    c = cser.Compressor("grbs:64")            # compressors on numpy / torch buffers
    comm = cser.Comm.mpi()                    # or cser.Comm.threads(n)[rank]
    import cser.torch                         # the torch.optim optimizer
    opt = cser.torch.Optimizer(model.parameters(), method="cser", rc=256, lr=0.05,
                               comm=comm)

Library errors raise cser.Error (with .status, a cser.Status, and the library's
message); bad Python arguments raise TypeError / ValueError naming the argument; a
closed object raises ValueError. See docs/python.md.
"""
import importlib

from ._lib import Error, Status, last_error, version
from ._lib import path as library_path
from .comm import Comm, ThreadsGroup
from .compressor import Compressor, Message

__all__ = ["Error", "Status", "Comm", "ThreadsGroup", "Compressor", "Message",
           "version", "library_path", "last_error"]
__version__ = version()


def __getattr__(name):
    if name == "torch":  # cser.torch without importing torch for numpy-only users
        return importlib.import_module(".torch", __name__)
    raise AttributeError("module 'cser' has no attribute %r" % name)
