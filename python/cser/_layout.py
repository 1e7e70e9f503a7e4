"""_layout.py: a cser_params table (names, shapes, offsets; no data) built from a list
of tensor shapes, owned by Python and freed with it."""
import ctypes

from . import _lib
from ._lib import lib


def normalize_shape(shape, what="shape"):
    """A tuple of 1..4 positive ints (a 0-d shape () becomes (1,))."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError("%s: expected a sequence of ints, got %r" % (what, shape)) from None
    if len(shape) == 0:
        shape = (1,)
    if len(shape) > _lib.CSER_MAX_DIMS:
        raise ValueError("%s: %d dimensions %s, the library takes 1 to %d (flatten the "
                         "trailing dims)" % (what, len(shape), shape, _lib.CSER_MAX_DIMS))
    if any(s <= 0 for s in shape):
        raise ValueError("%s: every dimension must be >= 1, got %s" % (what, shape))
    return shape


class Layout:
    """The layout of a flat vector: tensors of the given shapes back to back."""

    def __init__(self, shapes, names=None):
        shapes = [normalize_shape(s, "shape of tensor %d" % i) for i, s in enumerate(shapes)]
        if not shapes:
            raise ValueError("layout: at least one tensor is needed")
        self.shapes = shapes
        self.p = _lib.Params()
        self._free = lib.cser_params_free
        lib.cser_params_init(ctypes.byref(self.p))
        self.offsets = []
        for i, s in enumerate(shapes):
            name = names[i] if names else "t%d" % i
            dims = (ctypes.c_size_t * _lib.CSER_MAX_DIMS)(*(list(s) + [1] * (4 - len(s))))
            self.offsets.append(self.p.d)
            _lib.check(lib.cser_params_add(ctypes.byref(self.p), _lib.encode(name), len(s),
                                           dims), "layout")
        self.d = self.p.d

    @property
    def ref(self):
        return ctypes.byref(self.p)

    def fingerprint(self):
        return lib.cser_params_fingerprint(self.ref)

    def __del__(self):
        p = getattr(self, "p", None)
        if p is not None and self._free is not None:
            self._free(ctypes.byref(p))
            self._free = None
