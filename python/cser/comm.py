"""comm.py: communicators (comm.h) for Python: cser.Comm.threads(n) (n workers as
Python threads of this process) and cser.Comm.mpi() (one worker per MPI rank).

Collectives are entered by every worker in the same order. What Python adds so that no
misuse hangs the interpreter:
  * a threads group's communicators have a watchdog (default DEFAULT_TIMEOUT seconds):
    a worker that waits longer than that for its peers fails with cser.Error (COMM)
    and so does every other worker of the group;
  * ThreadsGroup.run(fn) runs fn(comm) on n threads: when a worker raises, or returns
    while others may still wait for it, the group is aborted, so the others get
    cser.Error instead of waiting; Ctrl-C in the main thread aborts it too;
  * one communicator is used by one thread at a time: a second thread calling into a
    communicator that is busy gets ValueError instead of a data race, and a closed
    communicator raises ValueError;
  * MPI: an uncaught exception on one rank calls MPI_Abort (the whole job ends, as
    `python -m mpi4py` does) instead of leaving the peers in a collective; at exit the
    communicator is freed, which finalizes MPI when cser initialized it.
"""
import atexit
import ctypes
import sys
import threading
import traceback
from collections.abc import Sequence

from . import _buffers, _lib
from ._lib import lib

DEFAULT_TIMEOUT = 300.0
_OPS = {"sum": 0, "avg": 1}


class _GroupHandle:
    """Owns a cser_comm_group_t and frees it after its own finalizer AND every member
    communicator's have run, in whatever order the garbage collector calls them
    (objects of one unreachable cycle are finalized in no particular order)."""

    def __init__(self, n):
        h = ctypes.c_void_p()
        _lib.check(lib.cser_comm_group_create(n, ctypes.byref(h)),
                   "cser.Comm.threads(%d)" % n)
        self.h = h.value
        self.members = 0
        self.dead = False
        self._free = lib.cser_comm_group_free

    def member_freed(self):
        self.members -= 1
        self._maybe_free()

    def _maybe_free(self):
        if self.dead and self.members == 0 and self.h is not None:
            self._free(self.h)
            self.h = None

    def __del__(self):
        self.dead = True
        self._maybe_free()


class Comm:
    """One worker's communicator. Create with Comm.threads(n) (a ThreadsGroup of n) or
    Comm.mpi(); Comm.single() is a group of one (what an optimizer uses by default)."""

    def __init__(self, handle, keep=None):
        self._h = handle
        self._keep = keep  # the group handle (threads), freed after this comm
        self._lock = threading.Lock()
        self._users = 0  # optimizers using this communicator
        self._closed = False
        self._free = lib.cser_comm_free
        self.rank = lib.cser_comm_rank(handle)
        self.size = lib.cser_comm_size(handle)
        self.backend = lib.cser_comm_backend(handle).decode()

    # ---- constructors ----
    @staticmethod
    def threads(n, timeout=DEFAULT_TIMEOUT):
        """A group of n workers as threads of this process (see ThreadsGroup)."""
        return ThreadsGroup(n, timeout)

    @staticmethod
    def single():
        """A communicator of one worker (no traffic)."""
        return ThreadsGroup(1, 0)[0]

    @staticmethod
    def mpi(timeout=0):
        """This process's MPI communicator over MPI_COMM_WORLD (one per process; MPI is
        initialized on first use if nobody did). timeout: watchdog seconds (0 = off)."""
        return _mpi_comm(timeout)

    @staticmethod
    def mpi_available():
        """True if libcser was built with the MPI backend."""
        return bool(lib.cser_comm_mpi_available())

    # ---- use ----
    def _enter(self, what):
        """Takes the communicator for one call into the library; returns its handle."""
        if self._closed:
            raise ValueError("%s: the communicator is closed" % what)
        if not self._lock.acquire(blocking=False):
            raise ValueError("%s: the communicator (rank %d) is in use by another thread; "
                             "each worker thread needs its own communicator" % (what, self.rank))
        if self._closed:
            self._lock.release()
            raise ValueError("%s: the communicator is closed" % what)
        return self._h

    def _leave(self):
        self._lock.release()

    def _call(self, what, fn, *args):
        h = self._enter(what)
        try:
            return fn(h, *args)
        finally:
            self._leave()

    def allreduce(self, buf, op="avg"):
        """In place over every worker: the sum or average of buf (float32, same length
        on every worker), bitwise identical on every worker. Returns buf."""
        if op not in _OPS:
            raise ValueError("allreduce: op must be 'sum' or 'avg', got %r" % (op,))
        b = _buffers.floats(buf, "allreduce buf", writable=True)
        _lib.check(self._call("allreduce", lib.cser_comm_allreduce, b.ptr, b.n, _OPS[op]),
                   "allreduce")
        return buf

    def bcast(self, buf, root=0):
        """In place: every worker receives root's buf (float32, same length). Returns buf."""
        b = _buffers.floats(buf, "bcast buf", writable=True)
        if not isinstance(root, int) or not 0 <= root < self.size:
            raise ValueError("bcast: root must be an int in 0..%d, got %r"
                             % (self.size - 1, root))
        _lib.check(self._call("bcast", lib.cser_comm_bcast, b.ptr, 4 * b.n, root), "bcast")
        return buf

    def barrier(self):
        _lib.check(self._call("barrier", lib.cser_comm_barrier), "barrier")

    def stats(self):
        """This worker's counted traffic: bytes_sent, bytes_recv, messages, collectives,
        comm_s (measured), modeled_s (modeled network), wait_s (measured seconds waiting
        for peers before each collective; 0 unless set_sync(True), which then leaves
        the transfer alone in comm_s), cpu_s (this thread's CPU seconds inside them)."""
        s = _lib.CommStats()
        self._call("stats", lib.cser_comm_get_stats, ctypes.byref(s))
        return {k: getattr(s, k) for k, _ in s._fields_}

    def reset_stats(self):
        self._call("reset_stats", lib.cser_comm_reset_stats)

    def set_timeout(self, seconds):
        """Watchdog: a collective waiting longer than this fails (0 = wait forever)."""
        if not isinstance(seconds, (int, float)) or seconds < 0 or seconds != seconds:
            raise ValueError("set_timeout: seconds must be a number >= 0, got %r" % (seconds,))
        self._call("set_timeout", lib.cser_comm_set_timeout, float(seconds))

    def set_sync(self, on=True):
        """Sync mode (cser_comm_set_sync): each counted collective first waits in an
        uncounted barrier for every rank; that wait goes to stats()["wait_s"] and
        comm_s measures the transfer alone. Every worker should set the same mode.
        Returns the previous setting."""
        return bool(self._call("set_sync", lib.cser_comm_set_sync, 1 if on else 0))

    def set_netmodel(self, bandwidth_bps=None, latency_s=None, tcp_framing=None):
        """The modeled network of the stats' modeled_s (cser_netmodel): bandwidth in
        bits per second, latency per message, and whether the wire bytes include
        TCP/IP, Ethernet and MPI framing; None keeps the library's default
        (cser_netmodel_default: 10e9, 50e-6, framing on)."""
        m = lib.cser_netmodel_default()
        for name, v in (("bandwidth_bps", bandwidth_bps), ("latency_s", latency_s)):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 \
                    or v == float("inf"):
                raise ValueError("set_netmodel: %s must be a finite number >= 0, got %r"
                                 % (name, v))
            setattr(m, name, float(v))
        if m.bandwidth_bps <= 0:
            raise ValueError("set_netmodel: bandwidth_bps must be > 0, got %r"
                             % (bandwidth_bps,))
        if tcp_framing is not None:
            m.tcp_framing = 1 if tcp_framing else 0
        self._call("set_netmodel", lib.cser_comm_set_netmodel, ctypes.byref(m))

    def abort(self, why="aborted from Python"):
        """Fails the group (threads: every waiting and later collective raises) or ends
        the job (mpi: MPI_Abort). Safe to call from any thread."""
        h = self._h
        if h is not None:
            lib.cser_comm_abort(h, _lib.encode(str(why).replace("\0", " "), "why"))

    def close(self):
        """Closes the communicator: later calls raise ValueError. Refused while an
        optimizer or another thread uses it. A threads communicator's memory is freed
        with its group (abort() stays safe from any thread); MPI's is freed now, which
        finalizes MPI when cser initialized it."""
        if self._closed:
            return
        if self._users > 0:
            raise ValueError("close: the communicator is used by %d optimizer(s); close "
                             "them first" % self._users)
        if not self._lock.acquire(blocking=False):
            raise ValueError("close: the communicator is in use by another thread")
        try:
            self._closed = True
            if self._keep is None:  # mpi: free (and finalize) now
                h, self._h = self._h, None
                self._free(h)
        finally:
            self._lock.release()

    @property
    def closed(self):
        return self._closed

    def __del__(self):
        if getattr(self, "_h", None) is not None and getattr(self, "_free", None):
            self._free(self._h)
            self._h = None
            if self._keep is not None:
                self._keep.member_freed()

    def __repr__(self):
        state = "closed" if self._closed else "rank %d of %d" % (self.rank, self.size)
        return "<cser.Comm %s %s>" % (self.backend, state)


class ThreadsGroup(Sequence):
    """n communicators of one threads group: group[r] is rank r's. Give each worker
    thread its own, or let run() start the threads."""

    def __init__(self, n, timeout=DEFAULT_TIMEOUT):
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError("cser.Comm.threads: n must be an int, got %r" % (n,))
        if n < 1:
            raise ValueError("cser.Comm.threads: n must be >= 1 workers, got %d" % n)
        g = _GroupHandle(n)
        self._comms = []
        for r in range(n):
            h = ctypes.c_void_p()
            _lib.check(lib.cser_comm_threads_create(g.h, r, ctypes.byref(h)),
                       "cser.Comm.threads(%d)" % n)
            c = Comm(h.value, keep=g)
            g.members += 1
            self._comms.append(c)
            if timeout:
                c.set_timeout(timeout)

    def __len__(self):
        return len(self._comms)

    def __getitem__(self, r):
        return self._comms[r]

    def abort(self, why):
        """Fails the whole group: every waiting and later collective raises."""
        self._comms[0].abort(why)

    def run(self, fn, *args, **kwargs):
        """Runs fn(comm, *args, **kwargs) on one thread per worker and returns the
        results in rank order. If a worker raises, the group is aborted (the others'
        collectives raise cser.Error) and the first exception is re-raised here (by
        rank, preferring an original error over the COMM errors it caused). A worker
        that returns aborts the group too, so peers still waiting for it fail instead
        of hanging: the group serves one run()."""
        n = len(self._comms)
        results, errors = [None] * n, [None] * n

        def worker(r):
            try:
                results[r] = fn(self._comms[r], *args, **kwargs)
            except BaseException as e:  # noqa: B902 (re-raised in the caller)
                errors[r] = e
                self.abort("rank %d raised %s: %s" % (r, type(e).__name__, e))
                return
            self.abort("rank %d returned from its worker function (it makes no more "
                       "collectives)" % r)

        threads = [threading.Thread(target=worker, args=(r,), daemon=True,
                                    name="cser-worker-%d" % r) for r in range(n)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.1)
        except BaseException:
            self.abort("the main thread was interrupted")
            for t in threads:
                t.join(30)
            raise
        first = None
        for e in errors:
            if e is None:
                continue
            comm_err = isinstance(e, _lib.Error) and e.status == _lib.Status.COMM
            if first is None or (not comm_err and isinstance(first, _lib.Error)
                                 and first.status == _lib.Status.COMM):
                first = e
        if first is not None:
            raise first
        return results


# ---- MPI: one communicator per process ----
_mpi = None
_mpi_lock = threading.Lock()


def _mpi_excepthook(etype, value, tb):
    """Uncaught exception on an MPI rank: print it, then end the whole job."""
    traceback.print_exception(etype, value, tb)
    sys.stderr.flush()
    c = _mpi
    if c is not None and c._h is not None:
        lib.cser_comm_abort(c._h, _lib.encode("rank %d: uncaught %s: %s"
                                              % (c.rank, etype.__name__, value)))


def _mpi_atexit():
    global _mpi
    c = _mpi
    if c is not None and c._h is not None:
        c._users = 0
        c._closed = True
        h, c._h = c._h, None
        c._free(h)  # finalizes MPI if cser initialized it
    _mpi = None


def _mpi_comm(timeout):
    global _mpi
    with _mpi_lock:
        if _mpi is not None and not _mpi._closed:
            if timeout:
                _mpi.set_timeout(timeout)
            return _mpi
        if not lib.cser_comm_mpi_available():
            raise _lib.Error(_lib.Status.INVALID,
                             "cser.Comm.mpi(): this libcser was built without MPI "
                             "(configure with -DCSER_WITH_MPI=ON)")
        h = ctypes.c_void_p()
        _lib.check(lib.cser_comm_mpi_create(ctypes.byref(h)), "cser.Comm.mpi()")
        _mpi = Comm(h.value)
        if timeout:
            _mpi.set_timeout(timeout)
        if _mpi.size > 1:
            sys.excepthook = _mpi_excepthook
        atexit.register(_mpi_atexit)
        return _mpi
