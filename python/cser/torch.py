"""torch.py: cser.torch.Optimizer, the methods of optim.h as a torch.optim optimizer.

    opt = cser.torch.Optimizer(model.parameters(), method="cser", rc=256, lr=0.05,
                               momentum=0.9, nesterov=True, weight_decay=1e-4,
                               comm=cser.Comm.mpi())
    for x, y in loader:
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

How it is wired (no copy of the model per step):
  * the parameters become views into the C optimizer's flat model buffer x_i
    (cser_optim_model): param.data is a slice of one torch tensor made with
    torch.frombuffer over that memory. The memory stays alive while the optimizer or
    any such view is alive; step() updates the model in place;
  * param.grad are views into one flat gradient tensor, so backward() accumulates
    straight into it; step() copies it once into a scratch buffer (the C step uses
    its gradient argument as scratch, the user's .grad stay intact) and calls
    cser_optim_step. A .grad replaced by other code is copied in and re-attached;
  * every worker creates its optimizer with the same model, in the same order
    (creation is collective and checks that layouts, configurations and initial models
    agree) and calls step() in lockstep.
"""
import contextlib
import ctypes
import math

import torch
from torch.optim.optimizer import required as _required

from . import _buffers, _lib
from ._layout import Layout
from ._lib import lib
from .comm import Comm

_VECTORS = {"model": 0, "momentum": 1, "error": 2, "synced": 3}
_HYPER = ("momentum", "nesterov", "weight_decay")


def method_names():
    """The methods of this build (the library's method table), as `cser info`
    lists them."""
    return [lib.cser_method_name(k).decode() for k in range(lib.cser_method_count())]


def resolve_method(method, rc=None, momentum=0.9, nesterov=True, weight_decay=0.0,
                   seed=1):
    """The optimizer configuration the trainer (`cser train --method M --rc R`) would
    use, by cser_optim_resolve: rc (None = the trainer's 0) applies to a method name or
    a spec that leaves a compressor's ratio open ("cser:c2=topk,h=8"); without rc such
    a spec gets its method's default target (256; sgd stays plain SGD); a spec that
    fixes every compressor's ratio, or the period of a method without compressors
    ("local-sgd:h=4", "diloco:h=100"), is parsed as written, and rc with the former is
    ambiguous (cser.Error). Every key of the spec is kept (inner=adamw, beta1=, outer=nesterov,
    olr=, ...) except momentum/nesterov/wd/seed, which these arguments override as
    the trainer's options do."""
    spec = _lib.encode(method, "method")
    name = method.split(":", 1)[0]
    if lib.cser_method_from_name(_lib.encode(name)) < 0:
        raise _lib.Error(_lib.Status.INVALID,
                         "method: unknown method '%s' (expected %s)"
                         % (name, ", ".join(method_names())))
    if rc is not None and (isinstance(rc, bool) or not isinstance(rc, (int, float))):
        raise TypeError("rc: expected a number or None, got %r" % (rc,))
    if rc is not None and not (math.isfinite(rc) and rc > 0):
        raise ValueError("rc: expected a finite number > 0 or None, got %r" % (rc,))
    cfg = _lib.OptimConfig()
    _lib.check(lib.cser_optim_resolve(spec, float(rc or 0), ctypes.byref(cfg)),
               "method '%s'%s" % (method, "" if rc is None else " with rc=%g" % rc))
    for k, v in (("momentum", momentum), ("weight_decay", weight_decay)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError("%s: expected a finite number, got %r" % (k, v))
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 64:
        raise ValueError("seed: expected an int in [0, 2^64), got %r" % (seed,))
    cfg.momentum = float(momentum)
    cfg.nesterov = 1 if nesterov else 0
    cfg.weight_decay = float(weight_decay)
    cfg.seed = seed
    return cfg


def _split_names(params):
    """params as torch.optim takes them, with (name, tensor) pairs
    (model.named_parameters()) replaced by the tensors; also {id(tensor): name}."""
    if isinstance(params, torch.Tensor):
        return params, {}
    params, names = list(params), {}

    def strip(seq):
        out = []
        for x in seq:
            if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str):
                names[id(x[1])] = x[0]
                x = x[1]
            out.append(x)
        return out
    if params and all(isinstance(g, dict) for g in params):
        params = [dict(g, params=strip([g["params"]] if isinstance(g["params"],
                                                                   torch.Tensor)
                                       else g["params"])) for g in params]
    else:
        params = strip(params)
    return params, names


def layout_names(names):
    """The tensor names of the C layout for parameters named `names` (None: unnamed).
    The fragments of streaming-diloco deal out layers, which the library forms from
    consecutive tensors whose names agree up to the last '.' (compressor.h): a name of
    named_parameters() ("3.weight", "3.bias") is kept, so a module's tensors form one
    layer as in the C engine; an unnamed parameter i is "param<i>", a layer of its own;
    a name too long for the library (CSER_NAME_MAX) or not ASCII becomes
    "param<j>.<i>", j the first parameter of its module."""
    out, prev, start = [], None, 0
    for i, n in enumerate(names):
        prefix = None if n is None else n.rsplit(".", 1)[0]
        if prefix is None or prefix != prev:
            start = i                              # the first tensor of this module
        prev = prefix
        if n is None:
            out.append("param%d" % i)
        elif n.isascii() and "\0" not in n and len(n) < _lib.CSER_NAME_MAX:
            out.append(n)
        else:
            out.append("param%d.%d" % (start, i))
    return out


def format_config(cfg):
    buf = ctypes.create_string_buffer(1024)
    lib.cser_optim_format(ctypes.byref(cfg), buf, len(buf))
    return buf.value.decode()


class _Handle:
    """Owns the cser_optim_t: freed when the optimizer and every parameter view of its
    model buffer are gone (the views keep this object alive)."""

    def __init__(self, h, comm):
        self.h = h
        self.comm = comm
        self._free = lib.cser_optim_free
        comm._users += 1
        self.released = False

    def release_comm(self):
        if not self.released:
            self.released = True
            self.comm._users -= 1

    def __del__(self):
        if getattr(self, "h", None) is not None:
            self.release_comm()
            self._free(self.h)
            self.h = None


class Optimizer(torch.optim.Optimizer):
    """One worker's optimizer (optim.h) over its model's float32 CPU parameters.

    params: model.parameters(), model.named_parameters() (the names make a module's
      tensors one layer for the fragments of streaming-diloco: layout_names), or
      param groups of either;

    method: a method name (sgd, local-sgd, ef-sgd, qsparse, cser, cser-fused, csea,
      cser-pl, diloco, streaming-diloco: cser.torch.method_names()) or a spec such as
      "cser:c1=grbs:32,c2=grbs:512,h=16" or "local-sgd:h=8,inner=adamw,outer=nesterov,
      olr=0.7,omom=0.9" (every key of optim.h: inner=sgd|adamw, beta1=, beta2=, eps=,
      outer=none|nesterov, olr=, omom=);
    rc: the target overall compression ratio R_C, as `cser train --rc` (resolved by
      cser_optim_resolve: a method name or a spec leaving a compressor's ratio open
      gets rc, default 256; "sgd" without rc is plain SGD; rc with a spec that fixes
      every compressor's ratio raises cser.Error);
    lr, momentum, nesterov, weight_decay: as torch.optim.SGD (Nesterov by default),
      overriding the spec's momentum=, nesterov=, wd= as the trainer's options do
      (with inner=adamw, weight_decay is AdamW's decoupled weight decay);
      param_groups[*]["lr"] may be changed between steps (LR schedulers work); every
      group must have the same lr at a step (the C step takes one), and momentum,
      nesterov and weight_decay are fixed at creation;
    seed: the shared randomness of the compressors (GRBS blocks, random-k);
    comm: cser.Comm (default: a single worker).
    """

    def __init__(self, params, method="cser", rc=None, lr=_required,
                 momentum=0.9, nesterov=True, weight_decay=0.0, seed=1, comm=None):
        if lr is _required:
            raise TypeError("cser.torch.Optimizer: lr is required")
        _check_lr(lr, "lr")
        self._ready = False
        defaults = dict(lr=lr, momentum=momentum, nesterov=bool(nesterov),
                        weight_decay=weight_decay)
        params, names = _split_names(params)
        super().__init__(params, defaults)
        self._cfg = resolve_method(method, rc, momentum, nesterov, weight_decay, seed)
        self.method = format_config(self._cfg)
        if comm is None:
            comm = Comm.single()
        if not isinstance(comm, Comm):
            raise TypeError("comm: expected a cser.Comm (cser.Comm.threads(n)[r], "
                            "cser.Comm.mpi()), got %s" % type(comm).__name__)
        self.comm = comm
        self._params = [p for g in self.param_groups for p in g["params"]]
        self._check_params()
        self.tensor_names = layout_names([names.get(id(p)) for p in self._params])
        self._layout = Layout([tuple(p.shape) for p in self._params], self.tensor_names)
        self.d = self._layout.d
        self._create()
        self._ready = True

    # ---- creation ----
    def _check_params(self):
        seen = set()
        for i, p in enumerate(self._params):
            what = "parameter %d (shape %s)" % (i, tuple(p.shape))
            if p.dtype != torch.float32:
                raise TypeError("%s: expected float32, got %s (cser works on float32 "
                                "parameters: model.float())" % (what, p.dtype))
            if p.device.type != "cpu":
                raise ValueError("%s: expected a CPU tensor, got device %s" % (what, p.device))
            if p.layout != torch.strided or p.is_sparse:
                raise TypeError("%s: expected a dense tensor, got layout %s" % (what, p.layout))
            if not p.is_leaf:
                raise ValueError("%s: not a leaf tensor (optimizers take the model's "
                                 "parameters)" % what)
            if p.numel() == 0:
                raise ValueError("%s: empty parameter" % what)
            if p.dim() > 4:
                raise ValueError("%s: %d dimensions, the library takes at most 4"
                                 % (what, p.dim()))
            if id(p) in seen:
                raise ValueError("%s appears twice in the parameter list" % what)
            seen.add(id(p))

    def _create(self):
        with torch.no_grad():
            x0 = torch.cat([p.detach().reshape(-1) for p in self._params]).contiguous()
        h = ctypes.c_void_p()
        ch = self.comm._enter("cser.torch.Optimizer")
        try:
            _lib.check(lib.cser_optim_create(ctypes.byref(self._cfg), ch, self._layout.ref,
                                             x0.data_ptr(), ctypes.byref(h)),
                       "cser.torch.Optimizer")
        finally:
            self.comm._leave()
        self._h = _Handle(h.value, self.comm)
        # 1. the model: views into the C-owned x_i, keeping the handle alive
        arr = (ctypes.c_float * self.d).from_address(lib.cser_optim_model(h.value))
        arr._owner = self._h
        self._model = torch.frombuffer(arr, dtype=torch.float32)
        # 2. one flat gradient buffer with per-parameter views, and the step's scratch
        self._grads = torch.zeros(self.d, dtype=torch.float32)
        self._scratch = torch.empty(self.d, dtype=torch.float32)
        self._mviews, self._gviews = [], []
        for p, off in zip(self._params, self._layout.offsets):
            n = p.numel()
            self._mviews.append(self._model[off:off + n].view(p.shape))
            self._gviews.append(self._grads[off:off + n].view(p.shape))
        self._attach(grads_from_params=True)

    def _attach(self, grads_from_params=False):
        """Points every parameter at its model view and its gradient view."""
        with torch.no_grad():
            for p, mv, gv in zip(self._params, self._mviews, self._gviews):
                if p.data_ptr() != mv.data_ptr():
                    p.data = mv
                if grads_from_params and p.grad is not None:
                    gv.copy_(p.grad)
                p.grad = gv

    def add_param_group(self, param_group):
        if getattr(self, "_ready", False):
            raise ValueError("cser.torch.Optimizer: the parameters are fixed at creation "
                             "(one flat layout shared by every worker); create the "
                             "optimizer with every group")
        super().add_param_group(param_group)

    # ---- stepping ----
    def _handle(self, what):
        """The _Handle (callers keep it in a local during a call, so that close() on
        another thread cannot free the C object under them)."""
        ho = self._h
        if ho is None:
            raise ValueError("%s: the optimizer is closed" % what)
        return ho

    def _lr(self):
        lrs = {g["lr"] for g in self.param_groups}
        if len(lrs) != 1:
            raise ValueError("step: every param group must have the same lr (the C step "
                             "takes one learning rate), got %s" % sorted(lrs))
        lr = lrs.pop()
        _check_lr(lr, "param_groups lr")
        for g in self.param_groups:
            for k in _HYPER:
                if g[k] != self.defaults[k]:
                    raise ValueError("step: param_groups %s changed from %r to %r; it is "
                                     "fixed at creation (part of the method's "
                                     "configuration)" % (k, self.defaults[k], g[k]))
        return lr

    def _gather(self):
        """Makes sure the flat gradient buffer holds every parameter's gradient (a
        .grad replaced or set to None by other code is copied in / zeroed)."""
        for i, (p, mv, gv) in enumerate(zip(self._params, self._mviews, self._gviews)):
            if p.data_ptr() != mv.data_ptr():
                raise ValueError("step: parameter %d (shape %s) no longer views the "
                                 "optimizer's model (was .data reassigned?); load weights "
                                 "in place (param.copy_) or before creating the optimizer"
                                 % (i, tuple(p.shape)))
            g = p.grad
            if g is None:
                gv.zero_()
            elif g.data_ptr() != gv.data_ptr():
                if g.shape != gv.shape or g.is_sparse:
                    raise ValueError("step: parameter %d: gradient of shape %s, expected "
                                     "%s" % (i, tuple(g.shape), tuple(gv.shape)))
                gv.copy_(g)
            else:
                continue
            p.grad = gv

    @torch.no_grad()
    def step(self, closure=None):
        """One step of the method (collective: every worker calls it in lockstep)."""
        ho = self._handle("step")
        h = ho.h
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        lr = self._lr()
        self._gather()
        self._scratch.copy_(self._grads)
        self.comm._enter("step")
        try:
            s = lib.cser_optim_step(h, self._scratch.data_ptr(), float(lr))
        finally:
            self.comm._leave()
        _lib.check(s, "step")
        return loss

    def zero_grad(self, set_to_none=False):
        """Zeroes the flat gradient buffer in place (one pass). The .grad stay views
        into it (never None), whatever set_to_none says: that is what spares a gather."""
        self._handle("zero_grad")
        self._grads.zero_()
        for p, gv in zip(self._params, self._gviews):
            if p.grad is None or p.grad.data_ptr() != gv.data_ptr():
                p.grad = gv

    # ---- models and vectors ----
    @property
    def is_local(self):
        """True if workers keep local models between synchronizations."""
        return bool(lib.cser_optim_is_local(self._handle("is_local").h))

    @property
    def rank(self):
        return self.comm.rank

    @property
    def world_size(self):
        return self.comm.size

    def flat_model(self):
        """x_i, this worker's flat model (a view, d floats; do not write it)."""
        self._handle("flat_model")
        return self._model

    def eval_model(self):
        """The model to evaluate as a new flat tensor of d floats: the average of the
        workers' models for local-model methods (a collective, not counted as
        training traffic; every worker must call it), this worker's model otherwise."""
        ho = self._handle("eval_model")
        h = ho.h
        out = torch.empty(self.d, dtype=torch.float32)
        self.comm._enter("eval_model")
        try:
            s = lib.cser_optim_eval_model(h, out.data_ptr())
        finally:
            self.comm._leave()
        _lib.check(s, "eval_model")
        return out

    @contextlib.contextmanager
    def averaged(self):
        """with opt.averaged(): evaluate(model) -- the parameters show eval_model()
        inside the block (collective) and this worker's model again after it."""
        flat = self.eval_model()
        views = [flat[o:o + p.numel()].view(p.shape)
                 for p, o in zip(self._params, self._layout.offsets)]
        with torch.no_grad():
            for p, v in zip(self._params, views):
                p.data = v
        try:
            yield self
        finally:
            with torch.no_grad():
                for p, mv in zip(self._params, self._mviews):
                    p.data = mv

    def get_vector(self, which):
        """A copy of one state vector: "model" (x_i), "momentum" (m_i), "error" (e_i)
        or "synced" (x_i - e_i, bitwise the same on every worker for CSER)."""
        ho = self._handle("get_vector")
        h = ho.h
        if which not in _VECTORS:
            raise ValueError("get_vector: expected one of %s, got %r"
                             % (", ".join(_VECTORS), which))
        out = torch.empty(self.d, dtype=torch.float32)
        _lib.check(lib.cser_optim_get_vector(h, _VECTORS[which], out.data_ptr()),
                   "get_vector")
        return out

    # ---- statistics ----
    def stats(self):
        """Traffic of this worker: steps, bytes_up/bytes_down/messages (total and per
        phase update/reset/average), comm_s, modeled_s, peak_bytes_step (the most
        bytes it sent in one step), and R_C as `cser train` reports it: actual (SGD's
        dense allreduce bytes per step over the bytes this worker moved per step) and
        nominal."""
        ho = self._handle("stats")
        h = ho.h
        s = _lib.OptimStats()
        lib.cser_optim_get_stats(h, ctypes.byref(s))
        phases = {name: {"bytes_up": s.bytes_sent[i], "bytes_down": s.bytes_recv[i],
                         "messages": s.messages[i], "comm_s": s.comm_s[i],
                         "modeled_s": s.modeled_s[i]}
                  for i, name in enumerate(_lib.PHASES)}
        up, down = sum(s.bytes_sent), sum(s.bytes_recv)
        n = self.comm.size
        dense = 2.0 * 2.0 * (n - 1) / n * 4.0 * self.d
        moved = (up + down) / s.steps if s.steps else 0.0
        return {"steps": s.steps, "bytes_up": up, "bytes_down": down,
                "messages": sum(s.messages), "comm_s": sum(s.comm_s),
                "modeled_s": sum(s.modeled_s), "phases": phases,
                "peak_bytes_step": s.peak_bytes_step,
                "actual_rc": dense / moved if moved > 0 else 0.0,
                "nominal_rc": lib.cser_optim_nominal_ratio(ctypes.byref(self._cfg),
                                                           self._layout.ref)}

    # ---- state ----
    def state_dict(self):
        """This worker's complete state: the library's state blob (model, momentum,
        errors, step counter; cser_optim_save) and the param groups' hyperparameters.
        load_state_dict on an optimizer of the same configuration continues bitwise."""
        ho = self._handle("state_dict")
        h = ho.h
        size = lib.cser_optim_state_size(h)
        blob = torch.empty(size, dtype=torch.uint8)
        written = ctypes.c_size_t(0)
        _lib.check(lib.cser_optim_save(h, blob.data_ptr(), size, ctypes.byref(written)),
                   "state_dict")
        index = {id(p): i for i, p in enumerate(self._params)}
        groups = [dict({k: v for k, v in g.items() if k != "params"},
                       params=[index[id(p)] for p in g["params"]])
                  for g in self.param_groups]
        return {"state": {}, "param_groups": groups,
                "cser": {"blob": blob, "method": self.method, "d": self.d,
                         "rank": self.comm.rank, "world_size": self.comm.size,
                         "version": _lib.version()}}

    def load_state_dict(self, state_dict):
        """Restores a state_dict() of an optimizer with the same method, configuration
        and parameter shapes (any mismatch raises and changes nothing)."""
        ho = self._handle("load_state_dict")
        h = ho.h
        if not isinstance(state_dict, dict) or not isinstance(state_dict.get("cser"), dict):
            raise ValueError("load_state_dict: not a cser.torch.Optimizer state_dict (no "
                             "'cser' entry; a torch.optim state cannot be loaded here)")
        groups = state_dict.get("param_groups")
        if not isinstance(groups, list) or len(groups) != len(self.param_groups) or any(
                not isinstance(g, dict) or len(g.get("params", ())) != len(mine["params"])
                for g, mine in zip(groups, self.param_groups)):
            raise ValueError("load_state_dict: the saved param_groups do not match this "
                             "optimizer's (%d groups of %s parameters)"
                             % (len(self.param_groups),
                                [len(g["params"]) for g in self.param_groups]))
        for g in groups:
            for k in _HYPER:
                if k in g and g[k] != self.defaults[k]:
                    raise ValueError("load_state_dict: saved %s %r, this optimizer has %r"
                                     % (k, g[k], self.defaults[k]))
            if "lr" in g:
                _check_lr(g["lr"], "load_state_dict: saved lr")
        ptr, nbytes, keep = _buffers.byte_buffer(state_dict["cser"].get("blob", None)
                                                 if state_dict["cser"].get("blob") is not None
                                                 else b"", "state_dict['cser']['blob']")
        _lib.check(lib.cser_optim_load(h, ptr, nbytes), "load_state_dict")
        del keep
        for g, mine in zip(groups, self.param_groups):
            for k, v in g.items():
                if k != "params":
                    mine[k] = v

    def __getstate__(self):
        raise TypeError("cser.torch.Optimizer cannot be pickled or copied (it owns C "
                        "state and a communicator); save state_dict() instead")

    # ---- lifetime ----
    def close(self):
        """Gives the parameters their own memory again (copies of the current model and
        gradients) and releases the C optimizer and the communicator; later calls
        raise ValueError. Also happens when the optimizer is garbage collected (then the
        parameters keep viewing the C buffer, which stays alive with them)."""
        if self._h is None:
            return
        with torch.no_grad():
            for p in self._params:
                p.data = p.data.clone()
                if p.grad is not None:
                    p.grad = p.grad.clone()
        self._h.release_comm()
        self._h = None
        self._model = self._mviews = None

    def __repr__(self):
        state = "closed" if self._h is None else "rank %d of %d" % (self.comm.rank,
                                                                     self.comm.size)
        return "cser.torch.Optimizer(%s, d=%d, lr=%s, %s)" % (
            self.method, self.d, self.param_groups[0]["lr"], state)


def _check_lr(lr, what):
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) \
            or lr < 0:
        raise ValueError("%s: expected a finite number >= 0, got %r" % (what, lr))
