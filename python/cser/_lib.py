"""_lib.py: loads libcser.so with ctypes, declares the C signatures used by the
package, and turns a failing cser_status into a cser.Error carrying the library's
message.

Where the library is looked for, first hit wins:
  1. $CSER_LIBRARY (a path to libcser.so), if set: nothing else is tried;
  2. next to this package (cser/libcser.so*, for a copied or bundled library);
  3. a checkout: <repo>/build/libcser.so when this package is <repo>/python/cser
     (`make` then `PYTHONPATH=python`);
  4. the installed library (`make install` puts this package in
     <prefix>/lib/python3.X/dist-packages/cser, three levels below <prefix>/lib):
     lib/libcser.so.0 relative to this file, then <prefix>/lib*/libcser.so.0 for
     the Python prefix and /usr/local, then the system loader's search path.

At import the ctypes mirrors of the public structs (MIRRORS) are checked against the
library's own sizeof/offsetof (check_abi): a header changed without its mirror raises
ImportError naming the struct and both sizes instead of corrupting memory.

Every ctypes call through CDLL releases the GIL, so threads workers (Comm.threads)
run the library's collectives concurrently. cser_last_error() is per thread and read on
the thread of the failing call.
"""
import ctypes
import ctypes.util
import enum
import os
import sys

c_size_t = ctypes.c_size_t
c_int = ctypes.c_int
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_double = ctypes.c_double
c_float = ctypes.c_float
c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
P = ctypes.POINTER

CSER_MAX_DIMS = 4
CSER_NAME_MAX = 48
CSER_SPEC_MAX = 96
PHASES = ("update", "reset", "average")


class Status(enum.IntEnum):
    """cser_status (include/cser/status.h)."""
    OK = 0
    INVALID = 1
    IO = 2
    FORMAT = 3
    NOMEM = 4
    COMM = 5
    MISMATCH = 6
    DIVERGED = 7
    INTERNAL = 8


class Error(RuntimeError):
    """A failing library call: .status (cser.Status), the library's message, and
    .where, the call sites the error passed through in the library
    (cser_error_where: "optim/optim.c:64 <- ...", "" if none)."""

    def __init__(self, status, message, where=""):
        try:
            status = Status(status)
        except ValueError:
            pass
        self.status = status
        self.message = message
        self.where = where
        name = status.name if isinstance(status, Status) else str(status)
        super().__init__("%s [%s]" % (message, name))


# ---- structs mirroring the public headers ----

class Tensor(ctypes.Structure):  # cser_tensor
    _cname_ = "cser_tensor"
    _fields_ = [("name", ctypes.c_char * CSER_NAME_MAX), ("ndim", c_int),
                ("shape", c_size_t * CSER_MAX_DIMS), ("offset", c_size_t),
                ("numel", c_size_t)]


class Params(ctypes.Structure):  # cser_params
    _cname_ = "cser_params"
    _fields_ = [("tensors", P(Tensor)), ("ntensors", c_size_t), ("cap", c_size_t),
                ("d", c_size_t), ("data", P(c_float))]


class CompressorParams(ctypes.Structure):  # cser_compressor_params
    _cname_ = "cser_compressor_params"
    _fields_ = [("kind", c_int), ("ratio", c_double), ("r0", c_double),
                ("r1", c_double), ("p", c_double), ("flat", c_int),
                ("levels", c_int), ("bucket", c_size_t), ("frags", c_int),
                ("qbits", c_int)]


class Draw(ctypes.Structure):  # cser_draw
    _cname_ = "cser_draw"
    _fields_ = [("seed", c_uint64), ("step", c_uint64), ("salt", c_uint32),
                ("rank", c_int)]


class Run(ctypes.Structure):  # cser_run
    _cname_ = "cser_run"
    _fields_ = [("off", c_size_t), ("len", c_size_t)]


class Support(ctypes.Structure):  # cser_support
    _cname_ = "cser_support"
    _fields_ = [("runs", P(Run)), ("nruns", c_size_t), ("cap", c_size_t),
                ("count", c_size_t)]


class OptimConfig(ctypes.Structure):  # cser_optim_config
    _cname_ = "cser_optim_config"
    _fields_ = [("kind", c_int), ("c1", ctypes.c_char * CSER_SPEC_MAX),
                ("c2", ctypes.c_char * CSER_SPEC_MAX), ("h", c_int),
                ("momentum", c_double), ("nesterov", c_int),
                ("weight_decay", c_double), ("seed", c_uint64),
                ("inner", c_int), ("beta1", c_double), ("beta2", c_double),
                ("eps", c_double), ("outer", c_int), ("olr", c_double),
                ("omom", c_double), ("overlap", c_int)]


class OptimStats(ctypes.Structure):  # cser_optim_stats
    _cname_ = "cser_optim_stats"
    _fields_ = [("steps", c_uint64), ("bytes_sent", c_uint64 * 3),
                ("bytes_recv", c_uint64 * 3), ("messages", c_uint64 * 3),
                ("comm_s", c_double * 3), ("modeled_s", c_double * 3),
                ("peak_bytes_step", c_uint64)]


class CommStats(ctypes.Structure):  # cser_comm_stats
    _cname_ = "cser_comm_stats"
    _fields_ = [("bytes_sent", c_uint64), ("bytes_recv", c_uint64),
                ("messages", c_uint64), ("collectives", c_uint64),
                ("comm_s", c_double), ("modeled_s", c_double), ("wait_s", c_double),
                ("cpu_s", c_double)]


class NetModel(ctypes.Structure):  # cser_netmodel
    _cname_ = "cser_netmodel"
    _fields_ = [("bandwidth_bps", c_double), ("latency_s", c_double),
                ("tcp_framing", c_int)]


# ---- finding and loading the library ----

def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    out = [os.path.join(here, n) for n in ("libcser.so", "libcser.so.0")]
    repo = os.path.dirname(os.path.dirname(here))
    out.append(os.path.join(repo, "build", "libcser.so"))
    libdir = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    out.append(os.path.join(libdir, "libcser.so.0"))
    for prefix in dict.fromkeys((sys.prefix, "/usr/local", "/usr")):
        for libdir in ("lib", "lib64", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"):
            out.append(os.path.join(prefix, libdir, "libcser.so.0"))
    return out


def _load():
    mode = ctypes.RTLD_GLOBAL  # OpenMPI's plugins resolve symbols of libmpi globally
    env = os.environ.get("CSER_LIBRARY")
    if env:
        if not os.path.exists(env):
            raise ImportError("cser: CSER_LIBRARY=%s: no such file (expected the path "
                              "of libcser.so, e.g. build/libcser.so)" % env)
        try:
            return ctypes.CDLL(env, mode=mode), env
        except OSError as e:
            raise ImportError("cser: CSER_LIBRARY=%s cannot be loaded: %s" % (env, e))
    tried = []
    for path in _candidates():
        if os.path.exists(path):
            try:
                return ctypes.CDLL(path, mode=mode), path
            except OSError as e:
                tried.append("%s (%s)" % (path, e))
    name = ctypes.util.find_library("cser")
    for n in ([name] if name else []) + ["libcser.so.0", "libcser.so"]:
        try:
            return ctypes.CDLL(n, mode=mode), n
        except OSError:
            tried.append(n)
    raise ImportError(
        "cser: libcser.so not found; build it (`make`, then PYTHONPATH=python from the "
        "repository root), install it (`make install`), or set CSER_LIBRARY to its "
        "path. Tried: " + ", ".join(tried))


lib, path = _load()

MIRRORS = (Tensor, Params, CompressorParams, Draw, Run, Support, OptimConfig, OptimStats,
           CommStats, NetModel)


def check_abi(mirrors=MIRRORS):
    """Compares each ctypes mirror with the library's struct (cser_abi_sizeof,
    cser_abi_offsetof, cser_abi_fieldsize of train.h): the size of the struct and the
    offset and size of every field. Raises ImportError naming the struct, the field and
    both numbers on the first difference: a header changed without its mirror here
    (or a library of another version), which would otherwise corrupt memory."""
    abi = []
    for name in ("cser_abi_sizeof", "cser_abi_offsetof", "cser_abi_fieldsize"):
        f = getattr(lib, name, None)
        if f is None:
            raise ImportError("cser: %s has no %s: the library is older than this "
                              "package (rebuild it: make)" % (path, name))
        f.restype = c_size_t
        f.argtypes = [c_char_p] + [c_char_p] * (name != "cser_abi_sizeof")
        abi.append(f)
    c_sizeof, c_offsetof, c_fieldsize = abi
    where = "(the ctypes mirror in python/cser/_lib.py and the library %s disagree: " \
        "update the mirror to the header, or use a library of this package's " \
        "version)" % path
    for m in mirrors:
        cname = m._cname_.encode()
        lsize = c_sizeof(cname)
        if lsize == 0:
            raise ImportError("cser: %s: the library does not know the struct %s %s"
                              % (m.__name__, m._cname_, where))
        if lsize != ctypes.sizeof(m):
            raise ImportError("cser: sizeof(%s) is %d bytes in the library, %d in the "
                              "mirror %s %s" % (m._cname_, lsize, ctypes.sizeof(m),
                                                m.__name__, where))
        for fname, _ in m._fields_:
            d = getattr(m, fname)
            off = c_offsetof(cname, fname.encode())
            if off == ctypes.c_size_t(-1).value:
                raise ImportError("cser: %s.%s: no such field in the library %s"
                                  % (m._cname_, fname, where))
            size = c_fieldsize(cname, fname.encode())
            if (off, size) != (d.offset, d.size):
                raise ImportError("cser: %s.%s is at offset %d with %d bytes in the "
                                  "library, at offset %d with %d bytes in the mirror %s %s"
                                  % (m._cname_, fname, off, size, d.offset, d.size,
                                     m.__name__, where))


check_abi()

_SIGS = {
    # status.h, cser.h
    "cser_status_str": (c_char_p, [c_int]),
    "cser_last_error": (c_char_p, []),
    "cser_error_clear": (None, []),
    "cser_error_where": (c_char_p, []),
    "cser_version": (c_char_p, []),
    # params.h
    "cser_params_init": (None, [P(Params)]),
    "cser_params_add": (c_int, [P(Params), c_char_p, c_int, P(c_size_t)]),
    "cser_params_free": (None, [P(Params)]),
    "cser_params_fingerprint": (c_uint64, [P(Params)]),
    # compressor.h
    "cser_support_init": (None, [P(Support)]),
    "cser_support_free": (None, [P(Support)]),
    "cser_compressor_parse": (c_int, [c_char_p, P(CompressorParams)]),
    "cser_compressor_format": (c_int, [P(CompressorParams), c_char_p, c_size_t]),
    "cser_compressor_create_spec": (c_int, [c_char_p, P(c_void_p)]),
    "cser_compressor_free": (None, [c_void_p]),
    "cser_compressor_get_params": (P(CompressorParams), [c_void_p]),
    "cser_compressor_kind_name": (c_char_p, [c_int]),
    "cser_compressor_kind_from_name": (c_int, [c_char_p]),
    "cser_compressor_kind_example": (c_char_p, [c_int]),
    "cser_compressor_kind_summary": (c_char_p, [c_int]),
    "cser_compressor_allreduce_compatible": (c_int, [c_void_p]),
    "cser_compressor_nominal_ratio": (c_double, [c_void_p, P(Params)]),
    "cser_compressor_max_bytes": (c_size_t, [c_void_p, P(Params)]),
    "cser_compressor_select": (c_int, [c_void_p, P(Params), P(Draw), P(Support)]),
    "cser_compressor_encode": (c_int, [c_void_p, P(Params), P(Draw), P(Support),
                                       c_void_p, c_void_p, P(c_size_t)]),
    "cser_compressor_encode_resid": (c_int, [c_void_p, P(Params), P(Draw), P(Support),
                                             c_void_p, c_void_p, P(c_size_t),
                                             c_void_p]),
    "cser_compressor_decode_add": (c_int, [c_void_p, P(Params), P(Support), c_void_p,
                                           c_size_t, c_float, c_void_p]),
    # comm.h
    "cser_comm_group_create": (c_int, [c_int, P(c_void_p)]),
    "cser_comm_group_free": (None, [c_void_p]),
    "cser_comm_threads_create": (c_int, [c_void_p, c_int, P(c_void_p)]),
    "cser_comm_mpi_available": (c_int, []),
    "cser_comm_mpi_create": (c_int, [P(c_void_p)]),
    "cser_comm_free": (None, [c_void_p]),
    "cser_comm_rank": (c_int, [c_void_p]),
    "cser_comm_size": (c_int, [c_void_p]),
    "cser_comm_backend": (c_char_p, [c_void_p]),
    "cser_comm_allreduce": (c_int, [c_void_p, c_void_p, c_size_t, c_int]),
    "cser_comm_bcast": (c_int, [c_void_p, c_void_p, c_size_t, c_int]),
    "cser_comm_barrier": (c_int, [c_void_p]),
    "cser_comm_get_stats": (None, [c_void_p, P(CommStats)]),
    "cser_comm_reset_stats": (None, [c_void_p]),
    "cser_comm_set_netmodel": (None, [c_void_p, P(NetModel)]),
    "cser_comm_set_timeout": (None, [c_void_p, c_double]),
    "cser_comm_set_sync": (c_int, [c_void_p, c_int]),
    "cser_netmodel_default": (NetModel, []),
    "cser_comm_abort": (None, [c_void_p, c_char_p]),
    # optim.h
    "cser_method_count": (c_int, []),
    "cser_method_name": (c_char_p, [c_int]),
    "cser_method_summary": (c_char_p, [c_int]),
    "cser_method_list": (c_int, [c_char_p, c_size_t]),
    "cser_method_from_name": (c_int, [c_char_p]),
    "cser_optim_parse": (c_int, [c_char_p, P(OptimConfig)]),
    "cser_optim_format": (c_int, [P(OptimConfig), c_char_p, c_size_t]),
    "cser_optim_config_for_ratio": (c_int, [c_char_p, c_double, P(OptimConfig)]),
    "cser_optim_resolve": (c_int, [c_char_p, c_double, P(OptimConfig)]),
    "cser_optim_nominal_ratio": (c_double, [P(OptimConfig), P(Params)]),
    "cser_optim_create": (c_int, [P(OptimConfig), c_void_p, P(Params), c_void_p,
                                  P(c_void_p)]),
    "cser_optim_free": (None, [c_void_p]),
    "cser_optim_model": (c_void_p, [c_void_p]),
    "cser_optim_step": (c_int, [c_void_p, c_void_p, c_float]),
    "cser_optim_is_local": (c_int, [c_void_p]),
    "cser_optim_eval_model": (c_int, [c_void_p, c_void_p]),
    "cser_optim_get_vector": (c_int, [c_void_p, c_int, c_void_p]),
    "cser_optim_state_size": (c_size_t, [c_void_p]),
    "cser_optim_save": (c_int, [c_void_p, c_void_p, c_size_t, P(c_size_t)]),
    "cser_optim_load": (c_int, [c_void_p, c_void_p, c_size_t]),
    "cser_optim_get_stats": (None, [c_void_p, P(OptimStats)]),
}

for _name, (_res, _args) in _SIGS.items():
    _f = getattr(lib, _name, None)
    if _f is None:
        raise ImportError("cser: %s has no %s: the library is older than this package "
                          "(rebuild it: make)" % (path, _name))
    _f.restype = _res
    _f.argtypes = _args



def last_error():
    """The calling thread's last library message."""
    return lib.cser_last_error().decode("utf-8", "replace")


def check(status, what=None):
    """Raises cser.Error for a failing status, with the library's message."""
    if status != 0:
        msg = last_error() or lib.cser_status_str(status).decode()
        if what:
            msg = "%s: %s" % (what, msg)
        raise Error(status, msg, (lib.cser_error_where() or b"").decode("utf-8", "replace"))


def encode(s, what="spec"):
    """A str argument as bytes for the library (no NUL, ASCII)."""
    if not isinstance(s, str):
        raise TypeError("%s must be a str, got %s" % (what, type(s).__name__))
    if "\0" in s:
        raise ValueError("%s must not contain NUL characters" % what)
    return s.encode("utf-8")


def version():
    return lib.cser_version().decode()
