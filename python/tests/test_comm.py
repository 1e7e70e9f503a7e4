# test_comm.py: cser.Comm on threads: the deterministic allreduce, and that no misuse
# from Python hangs: a raising worker, a worker that returns early, a worker that never
# arrives (watchdog), two threads on one communicator, closed communicators.
import threading
import time

import numpy as np
import pytest

import cser


def test_allreduce_is_rank_order_sum():
    n, d = 4, 1003
    rng = np.random.default_rng(3)
    data = [rng.standard_normal(d).astype(np.float32) for _ in range(n)]
    ref = ((data[0] + data[1]) + data[2]) + data[3]

    def work(comm):
        buf = data[comm.rank].copy()
        comm.allreduce(buf, op="sum")
        avg = data[comm.rank].copy()
        comm.allreduce(avg)
        return buf, avg, comm.stats()

    out = cser.Comm.threads(n).run(work)
    for buf, avg, st in out:
        assert np.array_equal(buf, ref)
        assert np.array_equal(avg, ref / np.float32(n))
        assert st["collectives"] == 2 and st["bytes_sent"] > 0


def test_sync_mode_counts_the_wait_for_a_late_peer():
    """set_sync: rank 0 waits for rank 1 (late by 0.3 s) in the barrier before the
    collective; that goes to wait_s, not comm_s. Without it the wait is in comm_s."""
    def work(comm, sync):
        assert comm.set_sync(sync) is False                   # the default is off
        buf = np.ones(64, np.float32)
        if comm.rank == 1:
            time.sleep(0.3)
        comm.allreduce(buf)
        return comm.stats()

    on = cser.Comm.threads(2).run(work, True)
    assert on[0]["wait_s"] >= 0.2 and on[0]["comm_s"] < 0.2, on[0]
    off = cser.Comm.threads(2).run(work, False)
    assert off[0]["wait_s"] == 0 and off[0]["comm_s"] >= 0.2, off[0]


def test_netmodel_framing_and_bad_values():
    """The modeled seconds of one allreduce: TCP/IP framing (the default) adds wire
    bytes; a slower link models more time."""
    def work(comm, **net):
        if net:
            comm.set_netmodel(**net)
        comm.allreduce(np.ones(100000, np.float32))
        return comm.stats()["modeled_s"]

    def modeled(**net):
        return cser.Comm.threads(2).run(work, **net)[0]
    framed, plain = modeled(), modeled(tcp_framing=False)
    assert modeled(tcp_framing=True) == framed
    assert 1.0 < framed / plain < 1.1                  # 4.6% on bulk data (comm.h)
    assert modeled(bandwidth_bps=1e9, latency_s=50e-6) > 5 * framed
    c = cser.Comm.single()
    for bad in ({"bandwidth_bps": 0}, {"bandwidth_bps": -1.0}, {"latency_s": float("nan")},
                {"bandwidth_bps": "10G"}):
        with pytest.raises(ValueError, match="set_netmodel"):
            c.set_netmodel(**bad)


def test_raising_worker_fails_the_others_fast():
    def work(comm):
        if comm.rank == 2:
            raise KeyError("boom")
        comm.barrier()
        comm.barrier()

    t0 = time.time()
    with pytest.raises(KeyError, match="boom"):
        cser.Comm.threads(3).run(work)
    assert time.time() - t0 < 10


def test_worker_that_returns_early_does_not_hang_the_others():
    def work(comm):
        if comm.rank == 0:
            return "done"        # never enters the collective the others wait in
        comm.barrier()

    t0 = time.time()
    with pytest.raises(cser.Error) as e:
        cser.Comm.threads(3).run(work)
    assert e.value.status == cser.Status.COMM
    assert "rank 0 returned" in str(e.value)
    assert time.time() - t0 < 10


def test_watchdog_on_manual_threads():
    group = cser.Comm.threads(2, timeout=0.5)
    errs = []

    def waiter():
        try:
            group[1].barrier()    # rank 0 never calls
        except cser.Error as e:
            errs.append(e)

    t = threading.Thread(target=waiter)
    t0 = time.time()
    t.start()
    t.join(20)
    assert not t.is_alive() and time.time() - t0 < 10
    assert errs and errs[0].status == cser.Status.COMM and "watchdog" in str(errs[0])
    with pytest.raises(cser.Error, match="failed"):          # the group stays failed
        group[0].barrier()


def test_one_communicator_two_threads_and_closed():
    group = cser.Comm.threads(2, timeout=5)
    c = group[0]
    started = threading.Event()

    def hold():
        started.set()
        try:
            c.barrier()
        except cser.Error:
            pass

    t = threading.Thread(target=hold)
    t.start()
    started.wait()
    time.sleep(0.2)
    with pytest.raises(ValueError, match="in use by another thread"):
        c.allreduce(np.zeros(4, np.float32))
    group[1].barrier()
    t.join(10)
    c.close()
    with pytest.raises(ValueError, match="closed"):
        c.barrier()
    with pytest.raises(ValueError, match="op"):
        group[1].allreduce(np.zeros(4, np.float32), op="max")
    with pytest.raises(TypeError, match="float32"):
        group[1].allreduce(np.zeros(4, np.int32))
    with pytest.raises(ValueError):
        cser.Comm.threads(0)


def test_garbage_collected_cycles_free_in_any_order():
    """A group, its communicators and an optimizer caught in a reference cycle are
    finalized in no particular order; freeing must not depend on it (it once hung)."""
    import os
    import subprocess
    import sys
    code = ("import gc, sys; sys.path.insert(0, %r); import cser\n"
            "for i in range(200):\n"
            "    g = cser.Comm.threads(3); g.me = g; c = g[1]; c.me = (c, g)\n"
            "    del g, c\n"
            "    gc.collect()\n"
            "print('ok')\n" % os.path.join(os.path.dirname(__file__), ".."))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
