"""The Triton focal and region kernels with a pixel weight equal the blocked torch passes (value and gradient).

Run under tests/test_triton_interpreter.py (TRITON_INTERPRET=1, CPU) or on a GPU (SEGLOSSES_TRITON_DEVICE=cuda)."""

import os

import pytest
import torch

from _paths import DEVICE, kernel_focal, kernel_region, reference_focal, reference_region  # noqa: F401

from seglosses.kernels import dispatch, focal, region
from seglosses.kernels.dispatch import FocalSpec, RegionSpec

assert os.environ.get("TRITON_INTERPRET") == "1" or DEVICE == "cuda"


def _weights(n, wc, s, seed=1):
    w = torch.rand((n, wc, s), generator=torch.Generator().manual_seed(seed)) * 2
    w[..., ::7] = 0  # weight 0: zero gradient
    return w.to(DEVICE)


def _region_case(act, index, ignore, dtype, n=2, c=4, s=1100, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, c, s), generator=g) * 2
    if act == "identity":
        x = torch.softmax(x, 1) if index else torch.rand((n, c, s), generator=g)
    if index:
        t = torch.randint(0, c, (n, s), generator=g)
        if ignore:
            t[:, ::5] = 255
            t[:, 3::11] = -3  # out of range: as ignored
    else:
        t = (torch.rand((n, c, s), generator=g) > 0.6).float()
        if ignore:
            t.view(-1)[::5] = 255
    return x.to(DEVICE, dtype), t.to(DEVICE)


def _nan_where_ignored(w, t, index, c):
    bad = ((t < 0) | (t >= c))[:, None] if index else (t == 255)
    bad = bad if w.shape[1] == (1 if index else c) else bad.all(1, keepdim=True) if not index else bad
    return torch.where(bad, float("nan"), w)


@pytest.mark.parametrize("act,index", [("softmax", True), ("identity", True), ("sigmoid", False),
                                       ("identity", False)], ids=str)
@pytest.mark.parametrize("per_class", [False, True], ids=["pixel", "class"])
@pytest.mark.parametrize("ignore", [False, True], ids=["all-valid", "ignore"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_region_kernels_with_weight_equal_blocked(act, index, per_class, ignore, dtype):
    x, t = _region_case(act, index, ignore, dtype)
    n, c, s = x.shape
    ii = 255 if ignore else None
    w = _weights(n, c if per_class else 1, s)
    if ignore:
        w = _nan_where_ignored(w, t, index, c)
    g = torch.Generator().manual_seed(2)
    a, m = (torch.randn((n, c), generator=g).to(DEVICE) for _ in range(2))
    spec = RegionSpec(act, index, ii)
    assert dispatch.select("region", x, t, spec, w) is dispatch.TRITON
    p, msum, gs = dispatch.TRITON.region_sums(x, t, spec, w)
    grad = dispatch.TRITON.region_grad(x, t, spec, a, m, w).to(x.dtype)
    # the reference: the blocked pass, invalid labels as ignore_index
    tr, iir = t, ii
    if index:
        bad = (t < 0) | (t >= c) | (t == 255 if ignore else False)
        tr, iir = torch.where(bad, -12345, t.long()), -12345
    xx = x.detach().clone().requires_grad_(True)
    wp, wm, wg = region.RegionSums.apply(xx, tr, act, index, iir, True, w)
    (want,) = torch.autograd.grad((wp * a).sum() + (wm * m).sum(), xx)
    for u, v in ((p, wp), (msum, wm), (gs, wg)):
        torch.testing.assert_close(u, v.detach(), rtol=1e-5, atol=1e-4)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 1e-3}
    torch.testing.assert_close(grad, want, **tol)
    zero = (w == 0).expand(n, c, s)
    assert torch.equal(grad[zero].float(), torch.zeros_like(grad[zero].float()))


@pytest.mark.parametrize("softmax", [False, True], ids=["sigmoid", "softmax"])
@pytest.mark.parametrize("per_class", [False, True], ids=["pixel", "class"])
@pytest.mark.parametrize("reduce", [True, False], ids=["sum", "map"])
@pytest.mark.parametrize("ignore", [False, True], ids=["all-valid", "ignore"])
def test_focal_kernels_with_weight_equal_blocked(softmax, per_class, reduce, ignore):
    g = torch.Generator().manual_seed(0)
    n, c, s = 2, 4, 700
    x = (torch.randn((n, c, s), generator=g) * 3).to(DEVICE)
    if softmax:
        t = torch.randint(0, c, (n, s), generator=g)
        if ignore:
            t[:, ::5] = 255
    else:
        t = (torch.rand((n, c, s), generator=g) > 0.5).float()
        if ignore:
            t.view(-1)[::5] = 255
    t = t.to(DEVICE)
    w = _weights(n, c if per_class else 1, s)
    if ignore:
        w = _nan_where_ignored(w, t, softmax, c)
    alpha = torch.linspace(0.5, 1.5, c).to(DEVICE) if softmax else 0.25
    base = torch.linspace(1.0, 2.0, c).to(DEVICE)
    spec = FocalSpec(softmax, softmax, 2.0, alpha, base, 255 if ignore else None, 0.0, reduce)
    if softmax and per_class:  # one weight per pixel in a softmax focal pass: the blocked pass refuses the rest
        assert dispatch.select("focal", x, t, spec, True, w) is not dispatch.TRITON
        return
    assert dispatch.select("focal", x, t, spec, True, w) is dispatch.TRITON
    out, norm, grad = dispatch.TRITON.focal_pass(x, t, spec, True, w)
    want, want_norm, want_grad = focal.focal_pass(x, t, spec, True, w)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norm, want_norm, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(grad, want_grad, rtol=1e-5, atol=1e-6)
    zero = (w == 0).expand(n, c, s)
    assert torch.equal(grad[zero], torch.zeros_like(grad[zero]))


def test_weight_none_keeps_the_unweighted_kernels():
    x, t = _region_case("softmax", True, True, torch.float32)
    spec = RegionSpec("softmax", True, 255)
    a = dispatch.TRITON.region_sums(x, t, spec)
    b = dispatch.TRITON.region_sums(x, t, spec, torch.ones(x.shape[0], 1, x.shape[2], device=DEVICE))
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=1e-6, atol=1e-5)
