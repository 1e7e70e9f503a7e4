# test_compressor.py: cser.Compressor against the C API's contract (compressor.h) on
# numpy arrays and torch tensors, and every bad input of a compressor call.
import numpy as np
import pytest

import cser

SPECS = ["identity", "zero", "grbs:64", "grbs:r0=0.5,r1=0.25,p=1", "grbs:16,flat",
         "randk:32", "randk:0.1", "topk:16", "topk:0.05", "sign", "qsgd:16",
         "qsgd:4,bucket=64", "fragment:1,frags=1"]


def vec(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("spec", SPECS)
def test_encode_decode_residual(spec):
    c = cser.Compressor(spec)
    v = vec((48, 20, 3))
    msg = c.encode(v, seed=7, step=3, rank=1)
    assert isinstance(msg.data, bytes) and msg.nbytes == len(msg.data) > 0 or spec == "zero"
    assert msg.nbytes <= c.max_bytes([v.shape])
    cv = c.decode(msg)
    assert cv.shape == v.shape and cv.dtype == np.float32
    r = c.residual(v, seed=7, step=3, rank=1)
    # compressor.h: resid = v - C(v), bitwise equal to decode_add(alpha=-1) into v
    assert np.array_equal(r, v - cv)
    back = v.copy()
    c.decode(msg, out=back, alpha=-1.0)
    assert np.array_equal(back, r)
    # the same draw gives the same message; in place residual
    assert c.encode(v, seed=7, step=3, rank=1).data == msg.data
    w = v.copy()
    c.residual(w, seed=7, step=3, rank=1, out=w)
    assert np.array_equal(w, r)


def test_wire_bytes():
    v = vec((64, 32))
    assert cser.Compressor("identity").encode(v).nbytes == 4 * v.size
    assert cser.Compressor("zero").encode(v).nbytes == 0
    g = cser.Compressor("grbs:64")
    msg = g.encode(v, step=5)
    assert msg.nbytes == 4 * int(msg.runs[:, 1].sum())            # 4 bytes per kept float
    assert np.count_nonzero(g.decode(msg)) == int(msg.runs[:, 1].sum())
    # the support of an allreduce-compatible compressor depends on the draw only
    assert np.array_equal(g.select([v.shape], step=5), msg.runs)
    assert not np.array_equal(g.select([v.shape], step=6), msg.runs)
    # sign: 1 bit per value + one float scale per tensor
    assert cser.Compressor("sign").encode(v).nbytes == v.size // 8 + 4
    assert 60 < g.nominal_ratio([v.shape]) < 70


def test_several_tensors_and_raw_bytes():
    shapes = [(16, 8, 3, 3), (16,), (10, 144)]
    d = sum(int(np.prod(s)) for s in shapes)
    v = vec(d, 1)
    for spec in ("grbs:8", "topk:8", "qsgd:8"):
        c = cser.Compressor(spec)
        msg = c.encode(v, step=2, shapes=shapes)
        a = c.decode(msg)
        b = c.decode(bytes(msg), shapes=shapes, step=2)   # support re-selected
        assert np.array_equal(a, b)


def test_every_compressor_of_the_build_round_trips():
    """Every kind `cser info` lists (compressor.kinds()), with its example spec."""
    kinds = cser.compressor.kinds()
    assert [k[0] for k in kinds][:8] == ["identity", "zero", "grbs", "randk", "topk",
                                         "sign", "qsgd", "fragment"]
    shapes = [(16, 8, 3, 3), (16,), (10, 144)]
    v = vec(sum(int(np.prod(s)) for s in shapes), 3)
    for name, example, _ in kinds:
        c = cser.Compressor(example)
        assert c.kind == name
        msg = c.encode(v, step=4, shapes=shapes)
        back = v.copy()
        c.decode(msg, out=back, alpha=-1.0)
        assert np.array_equal(back, c.residual(v, step=4, shapes=shapes)), example


def test_fragment_selects_whole_layers_in_turn():
    """fragment:H,frags=P over layers named as named_parameters() names them: a layer's
    tensors travel together, fragment p at the steps t with t mod H == p H / P."""
    from cser._layout import Layout
    names = ["a.weight", "a.bias", "b.weight", "b.bias"]
    shapes = [(4, 3), (4,), (2, 4), (2,)]
    c = cser.Compressor("fragment:4,frags=2")
    lay = Layout(shapes, names)
    runs = [c._select(lay, cser.compressor._draw(1, t, 0, 0)).runs() for t in range(4)]
    assert runs[0].tolist() == [[0, 16]]          # layer a: both tensors, one run
    assert runs[2].tolist() == [[16, 10]]         # layer b
    assert len(runs[1]) == len(runs[3]) == 0      # nothing at the other steps
    assert c.nominal_ratio(shapes) == pytest.approx(4.0)


def test_torch_tensors_without_copy():
    torch = pytest.importorskip("torch")
    v = vec((32, 16), 2)
    t = torch.from_numpy(v.copy())
    c = cser.Compressor("topk:8")
    assert c.encode(t).data == c.encode(v).data
    ptr = t.data_ptr()
    c.residual(t, out=t)                           # in place on the tensor's memory
    assert t.data_ptr() == ptr
    assert np.array_equal(t.numpy(), c.residual(v))


def test_bad_inputs():
    c = cser.Compressor("grbs:8")
    with pytest.raises(cser.Error) as e:
        cser.Compressor("grbz:8")
    assert e.value.status == cser.Status.INVALID and "grbz" in str(e.value)
    with pytest.raises(cser.Error, match="ratio"):
        cser.Compressor("topk:0")
    with pytest.raises(TypeError, match="spec"):
        cser.Compressor(8)
    with pytest.raises(TypeError, match="float32"):
        c.encode(np.zeros((4, 4)))                                # float64
    with pytest.raises(ValueError, match="contiguous"):
        c.encode(vec((8, 8))[:, ::2])
    with pytest.raises(TypeError, match="numpy array or CPU torch tensor"):
        c.encode([1.0, 2.0])
    with pytest.raises(ValueError, match="dimensions"):
        c.encode(vec((2, 2, 2, 2, 2)))
    with pytest.raises(ValueError, match="empty"):
        c.encode(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="hold 40"):
        c.encode(vec(41), shapes=[(4, 10)])                      # wrong length
    msg = c.encode(vec((8, 8)))
    with pytest.raises(ValueError, match="expected 64 elements"):
        c.decode(msg, out=np.zeros(63, np.float32))
    with pytest.raises(ValueError, match="read-only"):
        ro = np.zeros(64, np.float32)
        ro.flags.writeable = False
        c.decode(msg, out=ro)
    t = cser.Compressor("topk:8")
    tm = t.encode(vec(64))
    with pytest.raises(cser.Error) as e:                          # truncated message
        t.decode(tm.data[:-3], shapes=[(64,)])
    assert e.value.status == cser.Status.FORMAT
    with pytest.raises(TypeError, match="draw"):
        c.encode(vec(8), step=-1.5)
    c._lock.acquire()               # as if another thread were inside an encode
    with pytest.raises(ValueError, match="in use by another thread"):
        c.encode(vec(8))
    c._lock.release()
    c.close()
    with pytest.raises(ValueError, match="closed"):
        c.encode(vec(8))
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="float32"):
        t.encode(torch.zeros(8, dtype=torch.float16))
    with pytest.raises(ValueError, match="contiguous"):
        t.encode(torch.zeros(8, 8).t())
