"""compressor.py: cser.Compressor, the compressors of compressor.h on numpy arrays and
CPU torch tensors (float32, contiguous), passed by pointer without copies.

    c = cser.Compressor("grbs:64")
    msg = c.encode(v, step=3)            # v: an array/tensor of 1..4 dims
    msg.nbytes                           # exact wire bytes of the message
    cv = c.decode(msg)                   # C(v), dense, shape of v
    r = c.residual(v, step=3)            # v - C(v)

A vector holding several tensors is compressed per tensor, as the optimizer does: pass
shapes=[...] with a flat v of sum(numel) elements. The draw (seed, step, salt, rank)
chooses the randomness; the same draw gives the same support on every worker for the
allreduce-compatible compressors (identity, zero, grbs, randk, fragment).
"""
import ctypes
import threading

import numpy as np

from . import _buffers, _lib
from ._layout import Layout
from ._lib import lib


class Message:
    """One encoded message: .data (bytes, exactly .nbytes long), plus what decoding
    needs: the layout, the support of the draw (allreduce-compatible compressors), the
    draw and the input's shape."""

    def __init__(self, data, layout, support, draw, shape, runs):
        self.data = data
        self.layout = layout
        self.draw = draw
        self.shape = shape
        self.runs = runs  # numpy int64 [nruns, 2] (offset, length), or None
        self._support = support

    @property
    def nbytes(self):
        return len(self.data)

    def __bytes__(self):
        return bytes(self.data)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return "<cser.Message %d bytes>" % len(self.data)


class _Support:
    """An owned cser_support (freed with this object)."""

    def __init__(self):
        self.s = _lib.Support()
        self._free = lib.cser_support_free
        lib.cser_support_init(ctypes.byref(self.s))

    @property
    def ref(self):
        return ctypes.byref(self.s)

    def runs(self):
        n = self.s.nruns
        out = np.zeros((n, 2), dtype=np.int64)
        for i in range(n):
            out[i, 0] = self.s.runs[i].off
            out[i, 1] = self.s.runs[i].len
        return out

    def __del__(self):
        if getattr(self, "_free", None) is not None:
            self._free(ctypes.byref(self.s))
            self._free = None


def _draw(seed, step, salt, rank):
    for name, v in (("seed", seed), ("step", step), ("salt", salt), ("rank", rank)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError("draw: %s must be an int, got %r" % (name, v))
        if v < 0:
            raise ValueError("draw: %s must be >= 0, got %d" % (name, v))
    if seed >= 2 ** 64 or step >= 2 ** 64 or salt >= 2 ** 32 or rank >= 2 ** 31:
        raise ValueError("draw: seed/step must fit 64 bits, salt 32 bits, rank 31 bits")
    return _lib.Draw(int(seed), int(step), int(salt), int(rank))


def kinds():
    """The compressors of this build as `cser info` lists them: [(name, example spec,
    summary)], in kind order."""
    out, k = [], 0
    while True:
        name = lib.cser_compressor_kind_name(k)
        if lib.cser_compressor_kind_from_name(name) != k:
            return out
        out.append((name.decode(), lib.cser_compressor_kind_example(k).decode(),
                    lib.cser_compressor_kind_summary(k).decode()))
        k += 1


class Compressor:
    """A compressor from a text spec (compressor.h): identity, zero, grbs:R,
    grbs:r0=A,r1=B,p=P, grbs:R,flat, randk:R, topk:R, sign, qsgd:S[,bucket=B],
    fragment:H,frags=P (Streaming DiLoCo's fragments of layers; P at most the number
    of layers: tensors named "a.weight", "a.bias" form one layer).
    Not thread-safe: use one per thread."""

    def __init__(self, spec):
        self._h = None
        self._free = lib.cser_compressor_free
        h = ctypes.c_void_p()
        _lib.check(lib.cser_compressor_create_spec(_lib.encode(spec, "compressor spec"),
                                                   ctypes.byref(h)),
                   "cser.Compressor(%r)" % spec)
        self._h = h.value
        self._layouts = {}
        self._lock = threading.Lock()

    # ---- properties ----
    def _handle(self):
        if self._h is None:
            raise ValueError("cser.Compressor: this compressor is closed")
        return self._h

    def _call(self, what, fn, *args):
        """One call into the library with the compressor's scratch: refused (ValueError)
        while another thread is inside one, instead of a data race."""
        if not self._lock.acquire(blocking=False):
            raise ValueError("%s: the compressor is in use by another thread (a "
                             "compressor holds scratch space: use one per thread)" % what)
        try:
            if self._h is None:
                raise ValueError("cser.Compressor: this compressor is closed")
            return fn(self._h, *args)
        finally:
            self._lock.release()

    @property
    def spec(self):
        """The canonical spec (cser_compressor_format)."""
        buf = ctypes.create_string_buffer(256)
        lib.cser_compressor_format(lib.cser_compressor_get_params(self._handle()), buf, 256)
        return buf.value.decode()

    @property
    def kind(self):
        p = lib.cser_compressor_get_params(self._handle()).contents
        return lib.cser_compressor_kind_name(p.kind).decode()

    @property
    def allreduce_compatible(self):
        """True if every worker's support is the same for a draw."""
        return bool(lib.cser_compressor_allreduce_compatible(self._handle()))

    def __repr__(self):
        if self._h is None:
            return "<cser.Compressor closed>"
        return "<cser.Compressor %s>" % self.spec

    # ---- layouts ----
    def _layout(self, shapes):
        key = tuple(tuple(s) for s in shapes)
        lay = self._layouts.get(key)
        if lay is None:
            lay = Layout(list(key))
            if len(self._layouts) > 64:
                self._layouts.clear()
            self._layouts[key] = lay
        return lay

    def _input(self, v, shapes, what="v"):
        b = _buffers.floats(v, what)
        if shapes is None:
            if b.n == 0:
                raise ValueError("%s: empty input (0 elements)" % what)
            lay = self._layout([b.shape if len(b.shape) else (1,)])
        else:
            if isinstance(shapes, (int, np.integer)) or not hasattr(shapes, "__iter__"):
                raise TypeError("shapes: expected a list of tensor shapes")
            lay = self._layout(list(shapes))
            if b.n != lay.d:
                raise ValueError("%s: %d elements, the shapes %s hold %d"
                                 % (what, b.n, lay.shapes, lay.d))
        return b, lay

    def nominal_ratio(self, shapes):
        """Dense bytes / expected wire bytes of one message for these tensor shapes."""
        return lib.cser_compressor_nominal_ratio(self._handle(), self._layout(shapes).ref)

    def max_bytes(self, shapes):
        """An upper bound of the message bytes of any draw for these shapes."""
        return lib.cser_compressor_max_bytes(self._handle(), self._layout(shapes).ref)

    def select(self, shapes, seed=1, step=0, salt=0, rank=0):
        """The shared support of a draw (allreduce-compatible compressors only), as an
        int64 array of (offset, length) runs over the flat vector."""
        return self._select(self._layout(shapes), _draw(seed, step, salt, rank)).runs()

    def _select(self, lay, draw):
        if not self.allreduce_compatible:
            raise ValueError("select: %s is not allreduce-compatible (its support "
                             "depends on the data)" % self.spec)
        sup = _Support()
        _lib.check(self._call("select", lib.cser_compressor_select, lay.ref,
                              ctypes.byref(draw), sup.ref), "select")
        return sup

    # ---- encode / decode / residual ----
    def encode(self, v, seed=1, step=0, salt=0, rank=0, shapes=None, residual=None):
        """C(v) as a Message (exact wire bytes). residual: optional float32 output of
        v's size receiving v - C(v) in the same pass (may be v itself)."""
        h = self._handle()
        b, lay = self._input(v, shapes)
        draw = _draw(seed, step, salt, rank)
        sup = self._select(lay, draw) if self.allreduce_compatible else None
        cap = max(1, lib.cser_compressor_max_bytes(h, lay.ref))
        msg = ctypes.create_string_buffer(cap)
        nbytes = ctypes.c_size_t(0)
        supref = sup.ref if sup is not None else None
        if residual is None:
            _lib.check(self._call("encode", lib.cser_compressor_encode, lay.ref,
                                  ctypes.byref(draw), supref, b.ptr, msg,
                                  ctypes.byref(nbytes)), "encode")
        else:
            r = _buffers.floats(residual, "residual", writable=True, n=b.n)
            _lib.check(self._call("encode", lib.cser_compressor_encode_resid, lay.ref,
                                  ctypes.byref(draw), supref, b.ptr, msg,
                                  ctypes.byref(nbytes), r.ptr), "encode")
        data = msg.raw[:nbytes.value]
        return Message(data, lay, sup, (seed, step, salt, rank), b.shape,
                       sup.runs() if sup is not None else None)

    def decode(self, msg, out=None, alpha=1.0, shapes=None, seed=1, step=0, salt=0,
               rank=0):
        """out += alpha * C(v) from a message; with out=None returns C(v) as a new
        float32 numpy array of the input's shape.
        msg: a Message from encode, or raw bytes with shapes= and the draw of the
        encoder (the support of allreduce-compatible compressors is re-selected)."""
        self._handle()  # closed: ValueError before any work
        if isinstance(msg, Message):
            lay, sup, shape = msg.layout, msg._support, msg.shape
            data = msg.data
        else:
            if shapes is None:
                raise ValueError("decode: raw bytes need shapes= (and the encoder's draw)")
            lay = self._layout(list(shapes))
            shape = (lay.d,)
            sup = (self._select(lay, _draw(seed, step, salt, rank))
                   if self.allreduce_compatible else None)
            data = msg
        ptr, nbytes, keep = _buffers.byte_buffer(data, "msg")
        if out is None:
            out = np.zeros(shape, dtype=np.float32)
        o = _buffers.floats(out, "out", writable=True, n=lay.d)
        if not isinstance(alpha, (int, float, np.floating, np.integer)):
            raise TypeError("decode: alpha must be a number, got %r" % (alpha,))
        _lib.check(self._call("decode", lib.cser_compressor_decode_add, lay.ref,
                              sup.ref if sup else None, ptr, nbytes, float(alpha), o.ptr),
                   "decode")
        del keep
        return out

    def residual(self, v, seed=1, step=0, salt=0, rank=0, shapes=None, out=None):
        """v - C(v) (out may be v itself: in place)."""
        b, lay = self._input(v, shapes)
        if out is None:
            out = (v.detach().clone() if _buffers.is_tensor(v) else np.array(v))
        self.encode(v, seed, step, salt, rank, shapes, residual=out)
        return out

    def compress(self, v, seed=1, step=0, salt=0, rank=0, shapes=None):
        """C(v) as a dense array of v's shape (numpy), and the message."""
        msg = self.encode(v, seed, step, salt, rank, shapes)
        return self.decode(msg), msg

    def close(self):
        """Frees the compressor now (it is also freed when garbage collected)."""
        if self._h is None:
            return
        if not self._lock.acquire(blocking=False):
            raise ValueError("close: the compressor is in use by another thread")
        try:
            h, self._h = self._h, None
            self._free(h)
        finally:
            self._lock.release()

    def __del__(self):
        if getattr(self, "_h", None) is not None and self._free is not None:
            self._free(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
