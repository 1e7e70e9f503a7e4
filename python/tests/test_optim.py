# test_optim.py: cser.torch.Optimizer against the C optimizer (the same bits from the
# same gradients, called through the C API directly), the invariants of the methods on
# a threads group, torch.optim conventions, state_dict resume, and bad inputs.
import ctypes
import copy
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

import cser  # noqa: E402
import cser.torch  # noqa: E402
from cser import _lib  # noqa: E402
from cser._layout import Layout  # noqa: E402

METHODS = [("sgd", None), ("cser:h=8", 128), ("local-sgd", 4), ("ef-sgd", 16), ("qsparse", 16),
           ("cser", 256), ("cser-fused", 64), ("csea", 16), ("cser-pl", 16),
           ("cser:c1=topk:8,c2=sign,h=3", None), ("ef-sgd:c=qsgd:8,bucket=32", None),
           ("cser:c1=randk:4,c2=grbs:r0=0.5,r1=0.5,h=2", None),
           # inner AdamW and the outer Nesterov optimizer (every key of optim.h), and
           # the DiLoCo presets, one with its fragments due inside the 12 steps
           ("diloco:h=4", None), ("streaming-diloco", 4),
           ("streaming-diloco:c=fragment:6,frags=3,beta1=0.8,olr=0.5", None),
           ("local-sgd:h=3,inner=adamw,beta1=0.85,beta2=0.99,eps=1e-6,outer=nesterov,"
            "olr=0.6,omom=0.8", None),
           ("cser:h=4,inner=adamw,beta2=0.995", 64),
           ("qsparse:c=topk:8,h=3,outer=nesterov,omom=0.5", None)]
LOCAL = ("local-sgd", "cser-fused", "diloco", "streaming-diloco")  # no shared x - e


def small_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10), nn.ReLU(), nn.Linear(10, 3))


def grads_for(model, step, rank):
    g = torch.Generator().manual_seed(1000 * step + rank)
    return [torch.randn(p.shape, generator=g) for p in model.parameters()]


class RawC:
    """The C optimizer driven through the C API directly (no cser.torch code)."""

    def __init__(self, opt, comm):
        shapes = [tuple(p.shape) for p in opt._params]
        self.lay = Layout(shapes, opt.tensor_names)
        self.cfg = _lib.OptimConfig()
        ctypes.memmove(ctypes.byref(self.cfg), ctypes.byref(opt._cfg),
                       ctypes.sizeof(self.cfg))
        x0 = np.concatenate([p.detach().numpy().ravel() for p in opt._params])
        h = ctypes.c_void_p()
        ch = comm._enter("raw")
        try:
            _lib.check(_lib.lib.cser_optim_create(ctypes.byref(self.cfg), ch, self.lay.ref,
                                                  x0.ctypes.data, ctypes.byref(h)))
        finally:
            comm._leave()
        self.h, self.comm, self.d = h.value, comm, x0.size

    def step(self, grads, lr):
        g = np.concatenate([t.numpy().ravel() for t in grads]).astype(np.float32)
        self.comm._enter("raw")
        try:
            _lib.check(_lib.lib.cser_optim_step(self.h, g.ctypes.data, lr))
        finally:
            self.comm._leave()

    def vector(self, which):
        out = np.zeros(self.d, np.float32)
        _lib.check(_lib.lib.cser_optim_get_vector(self.h, which, out.ctypes.data))
        return out

    def free(self):
        _lib.lib.cser_optim_free(self.h)


def lr_at(t):
    return 0.1 * (1 + math.cos(math.pi * t / 12)) / 2 + 1e-3


@pytest.mark.parametrize("method,rc", METHODS)
def test_same_bits_as_the_c_optimizer(method, rc):
    """2 workers: the torch optimizer (gradients through .grad views, lr through
    param_groups) and the C optimizer given the same gradients agree bitwise on x_i
    at every step; x_i - e_i is the same on both workers."""
    n, steps = 2, 12
    base = small_model()
    ga, gb = cser.Comm.threads(n, timeout=60), cser.Comm.threads(n, timeout=60)

    def work(comm):
        model = copy.deepcopy(base)
        opt = cser.torch.Optimizer(model.parameters(), method=method, rc=rc, lr=lr_at(0),
                                   weight_decay=1e-4, seed=5, comm=comm)
        raw = RawC(opt, gb[comm.rank])
        out = []
        for t in range(steps):
            grads = grads_for(model, t, comm.rank)
            opt.zero_grad()
            for p, g in zip(model.parameters(), grads):
                p.grad += g                      # as backward() accumulates
            for grp in opt.param_groups:
                grp["lr"] = lr_at(t)
            opt.step()
            raw.step(grads, lr_at(t))
            mine = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
            assert np.array_equal(mine.numpy(), raw.vector(0)), "step %d" % t
            for p, g in zip(model.parameters(), grads):   # .grad left intact by step
                assert torch.equal(p.grad, g)
        out = opt.get_vector("synced"), opt.get_vector("error"), opt.stats()
        raw.free()
        return out

    res = ga.run(work)
    if not method.startswith(LOCAL):  # these keep no shared z
        assert torch.equal(res[0][0], res[1][0])        # x_i - e_i everywhere the same
    assert res[0][2]["steps"] == steps
    st = res[0][2]  # the peak of one step: at most the total, > 0 once bytes moved
    assert st["peak_bytes_step"] <= st["bytes_up"]
    assert (st["peak_bytes_step"] > 0) == (st["bytes_up"] > 0)


def test_every_method_and_compressor_of_the_build():
    """Every method `cser info` lists, by name, with its example spec (what `cser train
    --method NAME` resolves to), and with rc=16; every compressor's example spec inside
    ef-sgd: 2 workers take 3 steps through cser.torch.Optimizer, and the resolved spec
    is the library's (cser_optim_resolve + the overriding options)."""
    base = small_model(5)
    methods = cser.torch.method_names()
    assert methods[:10] == ["sgd", "local-sgd", "ef-sgd", "qsparse", "cser", "cser-fused",
                            "csea", "cser-pl", "diloco", "streaming-diloco"]

    def example(name):
        cfg = _lib.OptimConfig()
        _lib.check(_lib.lib.cser_optim_resolve(name.encode(), 0.0, ctypes.byref(cfg)))
        return cser.torch.format_config(cfg)

    def run(method, rc=None):
        def work(comm):
            model = copy.deepcopy(base)
            opt = cser.torch.Optimizer(model.named_parameters(), method=method, rc=rc,
                                       lr=0.01, momentum=0.9, weight_decay=0.0, seed=1,
                                       comm=comm)
            train_steps(opt, model, 0, 3, comm.rank)
            x = opt.get_vector("model")
            assert torch.isfinite(x).all() and opt.stats()["steps"] == 3
            return opt.method
        return cser.Comm.threads(2, timeout=60).run(work)[0]

    for name in methods:
        ex = example(name)
        assert run(name) == ex
        assert run(ex) == ex
        if name != "sgd":                                  # sgd has R_C = 1 only
            run(name, 16)
    for kind, spec, _ in cser.compressor.kinds():
        assert run("ef-sgd:c=" + spec).startswith("ef-sgd:c=" + kind), spec


def test_named_parameters_make_the_fragments_layers():
    """streaming-diloco deals out layers: with named_parameters() a module's weight and
    bias are synchronized at the same step (the C engine's layers), with parameters()
    every tensor is a layer of its own."""
    base = small_model(6)

    def work(comm, named):
        model = copy.deepcopy(base)
        params = model.named_parameters() if named else model.parameters()
        # inner SGD: AdamW's first steps are +-lr whatever the gradient's size, which
        # can leave an unsynchronized bias bitwise equal on both workers
        opt = cser.torch.Optimizer(params, lr=0.01, comm=comm,
                                   method="streaming-diloco:c=fragment:3,frags=3,inner=sgd")
        out = []
        for t in range(3):
            train_steps(opt, model, t, t + 1, comm.rank)
            out.append([p.detach().clone() for p in model.parameters()])
        return opt.tensor_names, out

    for named in (True, False):
        (names, a), (_, b) = cser.Comm.threads(2, timeout=60).run(work, named)
        synced = [[torch.equal(x, y) for x, y in zip(a[t], b[t])] for t in range(3)]
        pairs = [[s[i] == s[i + 1] for i in (0, 2, 4)] for s in synced]
        if named:
            assert names == ["0.weight", "0.bias", "3.weight", "3.bias", "5.weight",
                             "5.bias"]
            assert all(all(p) for p in pairs), synced           # weight with its bias
            assert sorted(sum(s) for s in synced) == [2, 2, 2]  # one module per step
        else:
            assert names == ["param%d" % i for i in range(6)]
            assert not all(all(p) for p in pairs), synced
    assert cser.torch.layout_names(["x" * 60 + ".weight", "x" * 60 + ".bias", None,
                                    "fc.weight"]) == ["param0.0", "param0.1", "param2",
                                                      "fc.weight"]


def test_cser_with_identity_c2_is_sgd():
    """C2 = identity: e stays 0 and x_i equals SGD's x (bitwise with one worker;
    3 workers: local vs averaged momentum, equal up to rounding)."""
    base = small_model(1)
    for n in (1, 3):
        def work(comm, method):
            model = copy.deepcopy(base)
            opt = cser.torch.Optimizer(model.parameters(), method=method, lr=0.05,
                                       comm=comm)
            for t in range(15):
                opt.zero_grad()
                for p, g in zip(model.parameters(), grads_for(model, t, comm.rank)):
                    p.grad.copy_(g)
                opt.step()
            return opt.get_vector("model"), opt.get_vector("error")
        a = cser.Comm.threads(n).run(work, "cser:c1=grbs:4,c2=identity,h=4")
        b = cser.Comm.threads(n).run(work, "sgd")
        for (xa, ea), (xb, _) in zip(a, b):
            assert torch.count_nonzero(ea) == 0
            if n == 1:
                assert torch.equal(xa, xb)
            else:
                rel = float((xa - xb).abs().max() / xb.abs().max())
                assert rel < 1e-6, rel


def train_steps(opt, model, t0, t1, rank=0):
    for t in range(t0, t1):
        opt.zero_grad()
        x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(t * 7 + rank))
        y = torch.arange(8) % 3
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("method,rc", [("cser", 16),
                                       ("streaming-diloco:c=fragment:4,frags=3", None)])
def test_state_dict_resume_is_bitwise(tmp_path, method, rc):
    """The state blob holds every vector: CSER's errors, and AdamW's moments, the outer
    momentum and the snapshot of streaming-diloco."""
    base = small_model(2)

    def work(comm):
        m1 = copy.deepcopy(base)
        o1 = cser.torch.Optimizer(m1.parameters(), method=method, rc=rc, lr=0.05,
                                  comm=comm)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(o1, T_max=20)
        for t in range(8):
            train_steps(o1, m1, t, t + 1, comm.rank)
            sched.step()
        path = tmp_path / ("ckpt%d.pt" % comm.rank)
        torch.save({"opt": o1.state_dict(), "sched": sched.state_dict()}, path)
        for t in range(8, 14):
            train_steps(o1, m1, t, t + 1, comm.rank)
            sched.step()
        # a fresh model and optimizer (different initial weights) resume from the file
        m2 = small_model(9)
        with torch.no_grad():
            for p, q in zip(m2.parameters(), base.parameters()):
                p.copy_(q)                    # every worker must start from the same x0
        o2 = cser.torch.Optimizer(m2.parameters(), method=method, rc=rc, lr=0.05,
                                  comm=cser_group2[comm.rank])
        s2 = torch.optim.lr_scheduler.CosineAnnealingLR(o2, T_max=20)
        ck = torch.load(path)
        o2.load_state_dict(ck["opt"])
        s2.load_state_dict(ck["sched"])
        assert o2.param_groups[0]["lr"] == ck["opt"]["param_groups"][0]["lr"] != 0.05
        for t in range(8, 14):
            train_steps(o2, m2, t, t + 1, comm.rank)
            s2.step()
        return (o1.get_vector("model"), o2.get_vector("model"),
                o1.get_vector("synced"), o2.get_vector("synced"))

    cser_group2 = cser.Comm.threads(2, timeout=60)
    for a1, a2, s1, s2 in cser.Comm.threads(2, timeout=60).run(work):
        assert torch.equal(a1, a2) and torch.equal(s1, s2)


def test_torch_conventions():
    model = small_model(3)
    opt = cser.torch.Optimizer(model.parameters(), method="sgd", lr=0.1)
    assert isinstance(opt, torch.optim.Optimizer)
    # parameters are views into the C model buffer: no copy per step
    flat = opt.flat_model()
    ptrs = [p.data_ptr() for p in model.parameters()]
    train_steps(opt, model, 0, 3)
    assert [p.data_ptr() for p in model.parameters()] == ptrs
    assert ptrs[0] == flat.data_ptr()
    # closure, schedulers, zero_grad
    loss = opt.step(lambda: nn.functional.cross_entropy(
        model(torch.zeros(2, 1, 8, 8)), torch.tensor([0, 1])).backward() or 1.5)
    assert loss == 1.5
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    train_steps(opt, model, 3, 4)
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.05
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    # a .grad replaced by other code is copied in, and eval_model / averaged work
    before = opt.get_vector("model")
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    assert not torch.equal(before, opt.get_vector("model"))
    assert torch.equal(opt.eval_model(), opt.get_vector("model"))
    with opt.averaged():
        pass
    assert [p.data_ptr() for p in model.parameters()] == ptrs
    st = opt.stats()
    assert st["steps"] == 6 and st["bytes_up"] == 0     # one worker moves nothing
    assert st["peak_bytes_step"] == 0


def test_averaged_model_of_local_methods():
    base = small_model(4)

    def work(comm):
        model = copy.deepcopy(base)
        opt = cser.torch.Optimizer(model.parameters(), method="local-sgd:h=4", lr=0.05,
                                   comm=comm)
        train_steps(opt, model, 0, 3, comm.rank)
        x = opt.get_vector("model")
        with opt.averaged():
            inside = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        return x, inside, opt.eval_model()

    res = cser.Comm.threads(3).run(work)
    xs = [r[0] for r in res]
    assert not torch.equal(xs[0], xs[1])                  # local models differ
    avg = ((xs[0] + xs[1]) + xs[2]) / 3
    for x, inside, ev in res:
        assert torch.equal(inside, avg) and torch.equal(ev, avg)


def test_bad_inputs():
    m = small_model()
    P = lambda: small_model().parameters()  # noqa: E731
    with pytest.raises(TypeError, match="lr is required"):
        cser.torch.Optimizer(P())
    with pytest.raises(cser.Error, match="unknown method 'cserr'"):
        cser.torch.Optimizer(P(), method="cserr", lr=0.1)
    with pytest.raises(cser.Error) as e:
        cser.torch.Optimizer(P(), method="cser:c1=grbs:8,c2=bogus:3,h=2", lr=0.1)
    assert e.value.status == cser.Status.INVALID and "bogus" in str(e.value)
    with pytest.raises(cser.Error, match="ambiguous") as e:
        cser.torch.Optimizer(P(), method="cser:c1=grbs:8,c2=grbs:8", rc=64, lr=0.1)
    assert e.value.status == cser.Status.INVALID
    with pytest.raises(ValueError, match="rc"):
        cser.torch.Optimizer(P(), method="cser", rc=0, lr=0.1)
    with pytest.raises(TypeError, match="rc"):
        cser.torch.Optimizer(P(), method="cser", rc="256", lr=0.1)
    with pytest.raises(cser.Error, match="rc|ratio|R_C"):
        cser.torch.Optimizer(P(), method="cser", rc=0.5, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        cser.torch.Optimizer(P(), lr=float("nan"))
    with pytest.raises(cser.Error, match="momentum"):
        cser.torch.Optimizer(P(), lr=0.1, momentum=1.5)
    with pytest.raises(TypeError, match="float32"):
        cser.torch.Optimizer(small_model().double().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="at most 4"):
        cser.torch.Optimizer([nn.Parameter(torch.zeros(1, 1, 1, 1, 2))], lr=0.1)
    with pytest.raises(ValueError, match="twice"), warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # torch's own duplicate warning
        p = nn.Parameter(torch.zeros(3))
        cser.torch.Optimizer([p, p], lr=0.1)
    with pytest.raises(TypeError, match="cser.Comm"):
        cser.torch.Optimizer(P(), lr=0.1, comm="mpi")
    opt = cser.torch.Optimizer(m.parameters(), method="sgd", lr=0.1)
    with pytest.raises(ValueError, match="fixed at creation"):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))]})
    opt.param_groups[0]["momentum"] = 0.5
    with pytest.raises(ValueError, match="momentum"):
        opt.step()
    opt.param_groups[0]["momentum"] = 0.9
    with pytest.raises(ValueError, match="get_vector"):
        opt.get_vector("nope")
    # state dicts of other optimizers / configurations / shapes
    with pytest.raises(ValueError, match="not a cser"):
        opt.load_state_dict(torch.optim.SGD(small_model().parameters(), lr=1).state_dict())
    other = cser.torch.Optimizer(small_model().parameters(), method="cser", lr=0.1)
    with pytest.raises(cser.Error) as e:
        opt.load_state_dict(other.state_dict())
    assert e.value.status == cser.Status.MISMATCH
    assert ".c:" in e.value.where                       # the library's call sites
    sd = opt.state_dict()
    sd["cser"]["blob"] = sd["cser"]["blob"][:100]
    with pytest.raises(cser.Error) as e:
        opt.load_state_dict(sd)
    assert e.value.status == cser.Status.FORMAT
    sd = opt.state_dict()
    sd["cser"]["blob"] = "not bytes"
    with pytest.raises(TypeError):
        opt.load_state_dict(sd)
    # a reassigned .data is reported, not silently ignored
    first = next(m.parameters())
    saved = first.data
    first.data = first.data.clone()
    with pytest.raises(ValueError, match="no longer views"):
        opt.step()
    first.data = saved
    opt.step()
    # a closed optimizer; its parameters keep working on their own memory
    comm = opt.comm
    opt.close()
    with pytest.raises(ValueError, match="closed"):
        opt.step()
    with pytest.raises(ValueError, match="closed"):
        opt.state_dict()
    assert first.data_ptr() != saved.data_ptr()
    comm.close()                                    # no optimizer holds it any more
    with pytest.raises(ValueError, match="closed"):
        cser.torch.Optimizer(P(), lr=0.1, comm=comm)
    with pytest.raises(TypeError, match="pickled"):
        copy.deepcopy(other)


def test_comm_in_use_cannot_close_and_views_outlive_optimizer():
    m = small_model()
    comm = cser.Comm.single()
    opt = cser.torch.Optimizer(m.parameters(), method="sgd", lr=0.1, comm=comm)
    with pytest.raises(ValueError, match="used by 1 optimizer"):
        comm.close()
    train_steps(opt, m, 0, 2)
    x = opt.get_vector("model")
    del opt                                          # the views keep the C buffer alive
    import gc
    gc.collect()
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in m.parameters()]), x)
    m(torch.zeros(1, 1, 8, 8)).sum().backward()       # still usable
