"""The Triton kernels (focal, region statistics) equal the torch path.

Run on the CPU through Triton's interpreter (TRITON_INTERPRET=1, by tests/test_triton_interpreter.py), or compiled on
a GPU with ``SEGLOSSES_TRITON_DEVICE=cuda python -m pytest tests/triton`` (benchmarks/gpu_run.sh does)."""

import importlib
import os

import pytest
import torch

DEVICE = os.environ.get("SEGLOSSES_TRITON_DEVICE", "cpu")
if os.environ.get("TRITON_INTERPRET") != "1" and DEVICE != "cuda":
    raise RuntimeError("tests/triton runs under tests/test_triton_interpreter.py, with TRITON_INTERPRET=1 set before "
                       "triton is imported, or on a GPU with SEGLOSSES_TRITON_DEVICE=cuda")
if DEVICE == "cuda" and not torch.cuda.is_available():
    raise RuntimeError("SEGLOSSES_TRITON_DEVICE=cuda but CUDA is not available")

import seglosses as S  # noqa: E402
from seglosses.kernels import dispatch, ops  # noqa: E402

SELECT = ops.select  # (the real one, whatever a test patched)

MODES = ("binary", "multilabel", "multiclass")


@pytest.fixture
def kernels():
    return importlib.import_module("seglosses.kernels.triton")


def _case(mode, dtype=torch.float32, n=2, c=3, hw=(5, 7), seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    c = 1 if mode == "binary" else c
    x = (torch.randn(n, c, *hw, generator=g) * scale).to(dtype)
    if mode == "multiclass":
        t = torch.randint(0, c, (n, *hw), generator=g)
        t[torch.rand(t.shape, generator=g) < 0.2] = 255
    else:
        t = (torch.rand(n, c, *hw, generator=g) > 0.5).float()
        t[torch.rand(t.shape, generator=g) < 0.2] = 255
    return x.to(DEVICE), t.to(DEVICE)


def _both(fn, x, t, monkeypatch, **kw):
    """(value, gradient) by the Triton kernel and by the torch path."""
    out = []
    for use in (True, False):
        # the torch path: every pass on the blocked backend
        monkeypatch.setattr(ops, "select", SELECT if use else (lambda *a: dispatch.BLOCKED))
        xx = x.detach().clone().requires_grad_(True)
        loss = fn(xx, t, **kw)
        (g,) = torch.autograd.grad(loss.sum(), xx)
        out.append((loss.detach(), g))
    return out


OPTIONS = [{}, {"gamma": 0.5}, {"gamma": 0.0}, {"alpha": 0.25}, {"weight": [0.5, 1.0, 2.0]},
           {"alpha": [0.2, 0.5, 0.8], "gamma": 1.5}, {"ignore_index": 255}, {"reduction": "sum"},
           {"reduction": "none", "ignore_index": 255}]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_kernel_equals_torch_path(mode, opts, monkeypatch, kernels):
    opts = dict(opts)
    if mode == "binary" and isinstance(opts.get("weight"), list):
        opts["weight"] = [2.0]
    if mode == "binary" and isinstance(opts.get("alpha"), list):
        opts["alpha"] = [0.3]
    x, t = _case(mode)
    if "ignore_index" not in opts:
        t = torch.where(t == 255, torch.zeros_like(t), t)
    calls = []
    real = kernels.focal_pass
    monkeypatch.setattr(kernels, "focal_pass", lambda *a, **k: calls.append(1) or real(*a, **k))
    (kv, kg), (tv, tg) = _both(lambda a, b, **kw: S.focal_loss(a, b, mode, **kw), x, t, monkeypatch, **opts)
    assert calls, "the Triton kernel did not run"
    torch.testing.assert_close(kv, tv, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kg, tg, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_kernel_finite_at_saturated_logits_and_half(mode, monkeypatch, kernels):
    x, t = _case(mode)
    x = torch.where(x > 0, 1e4, -1e4)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for gamma in (2.0, 0.5):
            xx = x.to(dtype).requires_grad_(True)
            loss = S.focal_loss(xx, t, mode, gamma=gamma, ignore_index=255)
            (g,) = torch.autograd.grad(loss, xx)
            assert torch.isfinite(loss) and torch.isfinite(g).all()
            assert g.dtype == dtype


def test_sigmoid_focal_loss_drop_in_through_kernel(monkeypatch, kernels):
    x, t = _case("multilabel")
    t = torch.where(t == 255, torch.zeros_like(t), t)
    (kv, kg), (tv, tg) = _both(lambda a, b, **kw: S.sigmoid_focal_loss(a, b, **kw), x, t, monkeypatch,
                               reduction="mean")
    torch.testing.assert_close(kv, tv, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kg, tg, rtol=1e-5, atol=1e-7)


REGION = {"dice": S.dice_loss, "jaccard": S.jaccard_loss, "tversky": S.tversky_loss,
          "focal_tversky": S.focal_tversky_loss, "generalized_dice": S.generalized_dice_loss}
REGION_OPTIONS = [{}, {"per_image": True}, {"ignore_index": 255}, {"from_logits": False},
                  {"weight": [0.5, 1.0, 2.0], "log_loss": True}]


def _region_both(fn, x, t, monkeypatch, **kw):
    calls = []
    real = ops._KernelSums.forward
    monkeypatch.setattr(ops._KernelSums, "forward", staticmethod(lambda *a: calls.append(1) or real(*a)))
    out = []
    for use in (True, False):
        monkeypatch.setattr(ops, "select", SELECT if use else (lambda *a: dispatch.BLOCKED))
        xx = x.detach().clone().requires_grad_(True)
        loss = fn(xx, t, **kw)
        (g,) = torch.autograd.grad(loss.sum(), xx)
        out.append((loss.detach(), g))
    return out, calls


@pytest.mark.parametrize("name", sorted(REGION))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("opts", REGION_OPTIONS, ids=lambda o: ",".join(o) or "default")
def test_region_kernels_equal_torch_path(name, mode, opts, monkeypatch):
    opts = dict(opts)
    if mode == "binary" and "weight" in opts:
        opts["weight"] = [2.0]
    x, t = _case(mode)
    if "ignore_index" not in opts:
        t = torch.where(t == 255, torch.zeros_like(t), t)
    if not opts.get("from_logits", True):
        x = torch.softmax(x, 1) if mode == "multiclass" else torch.sigmoid(x)
    ((kv, kg), (tv, tg)), calls = _region_both(lambda a, b, **kw: REGION[name](a, b, mode, **kw), x, t, monkeypatch,
                                               **opts)
    assert calls, "the Triton kernels did not run"
    torch.testing.assert_close(kv, tv, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kg, tg, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_kernels_over_several_blocks(mode, dtype, monkeypatch, kernels):
    # S = 2400 pixels per image: three programs per row, the last one partly out of bounds; half-precision inputs
    x, t = _case(mode, dtype=dtype, n=3, c=4, hw=(40, 60), seed=1)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 1e-4}
    (kv, kg), (tv, tg) = _both(lambda a, b, **kw: S.focal_loss(a, b, mode, **kw), x, t, monkeypatch,
                               ignore_index=255, gamma=1.5)
    torch.testing.assert_close(kv, tv, **tol)
    torch.testing.assert_close(kg.float(), tg.float(), **tol)
    ((kv, kg), (tv, tg)), calls = _region_both(lambda a, b, **kw: S.dice_loss(a, b, mode, **kw), x, t, monkeypatch,
                                               ignore_index=255)
    assert calls, "the Triton kernels did not run"
    torch.testing.assert_close(kv, tv, **tol)
    torch.testing.assert_close(kg.float(), tg.float(), **tol)
