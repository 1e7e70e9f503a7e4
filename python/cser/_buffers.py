"""_buffers.py: float32 buffers from numpy arrays and CPU torch tensors, passed to the
library by pointer without copies, after every check that keeps the library from
reading or writing memory it should not: the type, the dtype, the device, contiguity,
alignment, writability and the length.
"""
import sys

import numpy as np

_torch = None


def _torch_mod():
    """torch if it is already imported (numpy-only users never import it)."""
    global _torch
    if _torch is None:
        _torch = sys.modules.get("torch")
    return _torch


class Buf:
    """A checked view of a float32 buffer: .ptr (address), .n (elements), .shape and
    .obj (the caller's object, kept alive while this exists)."""
    __slots__ = ("obj", "ptr", "n", "shape")

    def __init__(self, obj, ptr, n, shape):
        self.obj, self.ptr, self.n, self.shape = obj, ptr, n, shape


def is_tensor(x):
    t = _torch_mod()
    return t is not None and isinstance(x, t.Tensor)


def floats(x, what, writable=False, n=None):
    """Checks that x is a C-contiguous float32 numpy array or CPU torch tensor (of n
    elements when n is given) and returns a Buf; raises TypeError / ValueError naming
    `what` otherwise."""
    if is_tensor(x):
        if x.dtype != _torch.float32:
            raise TypeError("%s: expected a float32 tensor, got dtype %s" % (what, x.dtype))
        if x.device.type != "cpu":
            raise ValueError("%s: expected a CPU tensor, got device %s (move it with "
                             ".cpu())" % (what, x.device))
        if x.layout != _torch.strided:
            raise TypeError("%s: expected a dense (strided) tensor, got layout %s"
                            % (what, x.layout))
        if not x.is_contiguous():
            raise ValueError("%s: expected a contiguous tensor (call .contiguous())"
                             % what)
        if writable and x.requires_grad and x.is_leaf:
            raise ValueError("%s: a leaf tensor that requires grad cannot be written in "
                             "place (use .detach() or torch.no_grad())" % what)
        ptr, count, shape = x.data_ptr(), x.numel(), tuple(x.shape)
    elif isinstance(x, np.ndarray):
        if x.dtype != np.float32:
            raise TypeError("%s: expected a float32 array, got dtype %s" % (what, x.dtype))
        if not x.flags.c_contiguous:
            raise ValueError("%s: expected a C-contiguous array (use "
                             "np.ascontiguousarray)" % what)
        if writable and not x.flags.writeable:
            raise ValueError("%s: the array is read-only" % what)
        ptr, count, shape = x.ctypes.data, x.size, x.shape
    else:
        raise TypeError("%s: expected a float32 numpy array or CPU torch tensor, got %s"
                        % (what, type(x).__name__))
    if count > 0 and ptr % 4 != 0:
        raise ValueError("%s: the data is not aligned to 4 bytes" % what)
    if n is not None and count != n:
        raise ValueError("%s: expected %d elements, got %d" % (what, n, count))
    return Buf(x, ptr if count > 0 else None, count, shape)


def byte_buffer(x, what):
    """(pointer, nbytes, keepalive) of a bytes-like object or a uint8 tensor/array."""
    if is_tensor(x):
        if x.dtype != _torch.uint8 or x.device.type != "cpu" or not x.is_contiguous():
            raise TypeError("%s: expected bytes or a contiguous CPU uint8 tensor, got "
                            "dtype %s on %s" % (what, x.dtype, x.device))
        return x.data_ptr(), x.numel(), x
    try:
        mv = memoryview(x)
    except TypeError:
        raise TypeError("%s: expected bytes (or a bytes-like object), got %s"
                        % (what, type(x).__name__)) from None
    if not mv.c_contiguous:
        raise ValueError("%s: expected a contiguous buffer" % what)
    a = np.frombuffer(mv, dtype=np.uint8) if mv.nbytes else np.zeros(0, np.uint8)
    return a.ctypes.data, a.size, a
