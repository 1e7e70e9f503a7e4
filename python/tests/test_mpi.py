# test_mpi.py: cser.Comm.mpi() under mpirun: the same bits as a threads group with the
# same number of workers (the deterministic allreduce of comm.h), the same traffic
# counters, and an uncaught exception on one rank ends the job instead of hanging it.
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import cser  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MPIRUN = shutil.which("mpirun")
ENV = dict(os.environ, OMPI_MCA_btl="self,vader",
           OMPI_MCA_btl_vader_single_copy_mechanism="none",
           OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")

pytestmark = pytest.mark.skipif(MPIRUN is None or not cser.Comm.mpi_available(),
                                reason="needs mpirun and a libcser built with MPI")


def mpirun(np_, args, timeout):
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", str(np_),
           sys.executable] + args
    return subprocess.run(cmd, env=ENV, timeout=timeout, capture_output=True, text=True)


def test_mpi_equals_threads(tmp_path):
    sys.path.insert(0, HERE)
    import mpi_worker
    out = str(tmp_path / "run")
    r = mpirun(2, [os.path.join(HERE, "mpi_worker.py"), out], 120)
    assert r.returncode == 0, r.stdout + r.stderr
    got = [np.load("%s.%d.npz" % (out, rank)) for rank in range(2)]
    for i, (method, rc) in enumerate(mpi_worker.CASES):
        models = [mpi_worker.small_model() for _ in range(2)]
        ref = cser.Comm.threads(2, timeout=60).run(
            lambda c: mpi_worker.train(c, method, rc, mpi_worker.STEPS, models[c.rank]))
        for rank in range(2):
            g = got[rank]
            assert int(g["size"]) == 2
            assert np.array_equal(g["x%d" % i], ref[rank][0]), method  # same bits
            assert np.array_equal(g["ev%d" % i], ref[rank][1]), method
            assert np.array_equal(g["counters%d" % i], ref[rank][2]), method  # bytes


def test_uncaught_exception_ends_the_job():
    script = ("import sys; sys.path.insert(0, %r); import cser, numpy as np\n"
              "c = cser.Comm.mpi()\n"
              "if c.rank == 1: raise RuntimeError('rank 1 fails')\n"
              "c.allreduce(np.zeros(4, np.float32))\n"
              % os.path.dirname(HERE))
    r = mpirun(2, ["-c", script], 120)             # a hang would hit the timeout
    assert r.returncode != 0
    assert "rank 1 fails" in r.stderr
