"""No loss copies host data to the device in a way that blocks, nor reads a device value, checked on the CPU.

On CUDA a copy from pageable host memory (``torch.tensor(v, device=...)``, ``t[:, [0, 2]]`` with a Python list,
``t.to("cuda")``) synchronizes the stream, and ``.item()`` / ``bool(t)`` wait for the GPU: a loss that does either
stalls every training step and cannot be captured in a CUDA graph. Here every loss runs forward and backward on
"meta" tensors (shapes only) under a dispatch mode that flags any operator receiving a host tensor of one or more
elements next to device tensors, and any copy from the host that is not the deliberate non-blocking one of
:func:`seglosses.core.checks.to_device` (pinned memory on CUDA); value reads raise on meta tensors by themselves.
benchmarks/gpu_check.py checks the same on a GPU with ``torch.cuda.set_sync_debug_mode("error")``.
"""

import numbers

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from _losses import LOSSES, MODES, MODULES, sweep_options


def _on_device(t):
    return isinstance(t, torch.Tensor) and t.device.type != "cpu"


def _host_index(index):
    """An index holding host data that indexing must copy to the device: a list/tuple of ints, a host tensor."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, list) or (isinstance(i, torch.Tensor) and i.device.type == "cpu" and i.dim() > 0)
               for i in items)


class HostCopies(TorchFunctionMode):
    """Records the calls that copy host data to a device tensor (or read a device value) on a device."""

    def __init__(self, found=None):
        super().__init__()
        self.found = [] if found is None else found

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        device = kwargs.get("device")
        if name in ("tensor", "as_tensor") and device is not None and torch.device(device).type != "cpu":
            self.found.append(f"torch.{name}(host data, device={device})")
        elif name == "new_tensor" and _on_device(args[0]):
            self.found.append("Tensor.new_tensor(host data) on a device")
        elif name in ("__getitem__", "__setitem__") and _on_device(args[0]) and _host_index(args[1]):
            self.found.append(f"{name} with host indices {args[1]!r}")
        elif name == "__setitem__" and _on_device(args[0]) and isinstance(args[2], numbers.Number):
            self.found.append(f"__setitem__ of a Python number {args[2]!r} into a device tensor")
        elif name in ("to", "cuda", "copy_") and not kwargs.get("non_blocking", False):
            src = args[1] if name == "copy_" else args[0]
            dst = args[0] if name == "copy_" else None
            targets = [a.device if isinstance(a, torch.Tensor) else a for a in tree_leaves((args[1:], kwargs))
                       if isinstance(a, (str, torch.device, torch.Tensor))]
            to_device = (_on_device(dst) if name == "copy_" else
                         name == "cuda" or any(torch.device(a).type != "cpu" for a in targets))
            if isinstance(src, torch.Tensor) and src.device.type == "cpu" and to_device:
                self.found.append(f"Tensor.{name} of a host tensor {tuple(src.shape)} to a device, blocking")
        elif name in ("item", "tolist", "__bool__", "__float__", "__int__") and _on_device(args[0]):
            self.found.append(f"Tensor.{name} (a device value read on the host)")
        return func(*args, **kwargs)


def _functions(cls=torch.autograd.Function):
    """seglosses' autograd Functions (their backward runs in the autograd engine, outside the caller's mode)."""
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("seglosses"):
            yield sub
        yield from _functions(sub)


def _check(call, monkeypatch):
    """What ``call()`` (a forward + backward) does that would block on a GPU, backward passes included."""
    d = HostCopies()
    for fn in set(_functions()):
        def backward(ctx, *grads, _orig=fn.backward):
            with HostCopies(d.found):
                return _orig(ctx, *grads)
        monkeypatch.setattr(fn, "backward", staticmethod(backward))
    with d:
        call()
    return d.found


def _inputs(mode):
    c = 1 if mode == "binary" else 4
    x = torch.randn(2, c, 6, 7, device="meta", requires_grad=True)
    t = (torch.empty(2, 6, 7, dtype=torch.long, device="meta") if mode == "multiclass"
         else torch.empty(2, c, 6, 7, device="meta"))
    return x, t, c


def test_detector_flags_the_patterns_that_sync():
    x = torch.randn(2, 4, 5, device="meta")
    bad = [lambda: x[:, [0, 2]], lambda: torch.tensor([1.0, 2.0], device="meta"),
           lambda: torch.as_tensor([3], device=x.device), lambda: torch.ones(3).to("meta"),
           lambda: torch.ones(3).to(x.device, torch.float64), lambda: x.clone().__setitem__(0, 1.0),
           lambda: x.clone().__setitem__((slice(None), [1]), x[:, :1]), lambda: x.new_zeros(3).copy_(torch.ones(3))]
    for k, call in enumerate(bad):
        with HostCopies() as d:
            call()
        assert d.found, f"the detector missed pattern {k}"
    with HostCopies() as d:  # the sync-free equivalents
        x[:, 1:3] * 2.0 + torch.full((5,), 1.0, device="meta")
        x.index_select(1, torch.ones(2, dtype=torch.long).to("meta", non_blocking=True))
        x.clone()[:, :1] = x[:, 1:2]
        x.to(torch.float64)
    assert not d.found, d.found
    with pytest.raises(RuntimeError):
        x.sum().item()


def _loss_run(name, mode, form, ignore=True):
    x, t, c = _inputs(mode)
    kw = sweep_options(name, mode, c, ignore=ignore)
    loss = (lambda z, y: LOSSES[name](z, y, mode, **kw)) if form == "function" else MODULES[name](mode, **kw).to("meta")

    def call():
        out = loss(x, t)
        assert out.device.type == "meta"
        out.backward()
    return call


def test_detector_sees_backward_passes(monkeypatch):
    """A blocking copy inside an autograd Function's backward (run by the engine, outside the caller's mode) is
    flagged: here Lovasz's former scatter of a class subset's gradient, ``gq[:, list(cols)] = gk``."""
    from seglosses.kernels import ops

    def blocking(unit, g_losses, q_shape, cols):
        gk = unit * g_losses.unsqueeze(-1)
        gq = torch.zeros(q_shape, dtype=gk.dtype, device=gk.device)
        gq[:, list(cols)] = gk
        return gq

    monkeypatch.setattr(ops, "grad_q", blocking)
    found = _check(_loss_run("lovasz", "multiclass", "function"), monkeypatch)
    assert any("host indices" in f for f in found), found


@pytest.mark.parametrize("ignore", [True, False], ids=["ignore_index", "no_ignore"])
@pytest.mark.parametrize("form", ["function", "module"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_no_blocking_host_copy_nor_value_read(name, mode, form, ignore, monkeypatch):
    found = _check(_loss_run(name, mode, form, ignore), monkeypatch)
    assert not found, found[:3]
