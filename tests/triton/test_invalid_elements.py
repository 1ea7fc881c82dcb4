"""Invalid elements in the Triton kernels: class indices outside [0, C) count as ignored pixels (a CUDA check would be
a host sync), and non-finite logits at invalid elements reach neither the loss nor the gradient.

Each kernel is compared with the blocked torch pass on the same call with every invalid label replaced by
``ignore_index`` (tests/triton/_paths.py); the gradient at invalid elements must be exactly 0."""

import math

import pytest
import torch

from _paths import DEVICE, invalid, kernel_focal, kernel_region, reference_focal, reference_region

C = 4
BAD = (C, C + 1, -1, -3, 1000, 2**32 + 1, -(2**40))  # 2**32 + 1 is 1 after a narrowing to int32
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _labels(n, s, ignore_index, seed=0, bad=BAD):
    """Class indices (N, S), int64, about a third of them out of range (each of ``bad`` at least once) and, with
    ``ignore_index``, a tenth ignored."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, C, (n, s), generator=g)
    pick = torch.rand((n, s), generator=g) < 0.3
    t[pick] = torch.tensor(bad)[torch.randint(0, len(bad), (int(pick.sum()),), generator=g)]
    t.view(-1)[: len(bad)] = torch.tensor(bad)
    if ignore_index is not None:
        t[torch.rand((n, s), generator=g) < 0.1] = ignore_index
    return t


def _logits(shape, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 3).to(dtype)


def _close(got, want, tol=TOL):
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **tol)


def _on(*ts):
    return [t.to(DEVICE) if isinstance(t, torch.Tensor) else t for t in ts]


# ---------------------------------------------------------------------------- class indices outside [0, C) -------
@pytest.mark.parametrize("ignore_index", [None, 255, -100])
@pytest.mark.parametrize("reduce", [True, False])
@pytest.mark.parametrize("opts", [{"alpha": [0.2, 0.5, 0.8, 1.5], "weight": [0.5, 1.0, 2.0, 3.0]},
                                  {"alpha": 0.25}, {"weight": [0.5, 1.0, 2.0, 3.0]}, {}],
                         ids=lambda o: ",".join(o) or "plain")
def test_softmax_focal_out_of_range_labels_count_as_ignored(ignore_index, reduce, opts):
    # 2 images of 1100 pixels: two programs per image, the second partly out of bounds
    x, t = _on(_logits((2, C, 1100)), _labels(2, 1100, ignore_index))
    alpha = torch.tensor(opts["alpha"], device=DEVICE) if isinstance(opts.get("alpha"), list) else opts.get("alpha")
    weight = torch.tensor(opts["weight"], device=DEVICE) if "weight" in opts else None
    args = (True, 2.0, alpha, weight, ignore_index, 0.0, reduce)
    got = kernel_focal(x, t, *args)
    want = reference_focal(x, t, *args)
    _close(got, want)
    bad = invalid(t, C, ignore_index)
    assert bad.any() and (~bad).any()
    assert (got[2].transpose(0, 1)[:, bad] == 0).all(), "nonzero gradient at an invalid pixel"
    if not reduce:
        assert (got[0][bad] == 0).all()


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8])
def test_softmax_focal_out_of_range_labels_narrow_dtypes(dtype):
    bad = (C, 17, 200) if dtype == torch.uint8 else (C, -1, -7, 1000, 2**31 - 1, -(2**31))
    x, t = _on(_logits((1, C, 300)), _labels(1, 300, None, bad=bad).to(dtype))
    args = (True, 1.5, torch.tensor([0.2, 0.5, 0.8, 1.5], device=DEVICE), None, None, 0.0, True)
    _close(kernel_focal(x, t, *args), reference_focal(x, t, *args))


@pytest.mark.parametrize("act", ["softmax", "identity"])
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_region_kernels_out_of_range_labels_count_as_ignored(act, ignore_index):
    # 2 images of 1100 pixels: two programs per image
    x, t = _logits((2, C, 1100)), _labels(2, 1100, ignore_index, seed=2)
    if act == "identity":
        x = torch.softmax(x, 1)
    g = torch.Generator().manual_seed(3)
    a, m = torch.randn(2, C, generator=g), torch.randn(2, C, generator=g)
    x, t, a, m = _on(x, t, a, m)
    got = kernel_region(x, t, act, True, ignore_index, a, m)
    want = reference_region(x, t, act, True, ignore_index, a, m)
    _close(got[:3], want[:3])
    torch.testing.assert_close(got[3], want[3], rtol=1e-4, atol=1e-6)
    bad = invalid(t, C, ignore_index)
    assert (got[3].transpose(0, 1)[:, bad] == 0).all(), "nonzero gradient at an invalid pixel"


# ------------------------------------------------------------------------- non-finite logits where invalid -------
POISON = [math.nan, math.inf, -math.inf]


def _poison(x, where, value, seed=4):
    """``x`` with ``value`` at a random nonempty subset of ``where`` (a mask of x's shape)."""
    g = torch.Generator().manual_seed(seed)
    hit = where & (torch.rand(x.shape, generator=g) < 0.6)
    hit.view(-1)[where.reshape(-1).nonzero()[0]] = True
    return torch.where(hit, torch.tensor(value, dtype=x.dtype), x)


def _check_poisoned(run_poisoned, run_clean, want, tol, invalid_grad):
    """Same results as with finite logits, exactly (the kernels never read them); close to the reference; finite;
    gradient exactly 0 at the invalid elements."""
    got, clean = run_poisoned(), run_clean()
    for a, b in zip(got, clean):
        assert torch.equal(a, b)
    for a, b in zip(got, want):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, **tol)
    assert (invalid_grad(got[-1]) == 0).all(), "nonzero gradient at an invalid element"


@pytest.mark.parametrize("value", POISON, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("reduce", [True, False])
def test_sigmoid_focal_non_finite_logits_where_ignored(value, dtype, reduce):
    g = torch.Generator().manual_seed(5)
    x = _logits((2, 3, 700), dtype=dtype)
    y = (torch.rand(x.shape, generator=g) > 0.5).float()
    y[torch.rand(x.shape, generator=g) < 0.2] = 255
    xp = _poison(x, y == 255, value)
    x, xp, y, a, w = _on(x, xp, y, torch.tensor([0.2, 0.5, 0.9]), torch.tensor([0.5, 1.0, 2.0]))
    args = (y, False, 1.5, a, w, 255, 0.1, reduce)
    tol = TOL if dtype == torch.float32 else {"rtol": 2e-3, "atol": 1e-6}
    _check_poisoned(lambda: kernel_focal(xp, *args), lambda: kernel_focal(x, *args), reference_focal(x, *args), tol,
                    lambda gr: gr[y == 255])


@pytest.mark.parametrize("value", POISON, ids=str)
@pytest.mark.parametrize("ignore_index", [None, 255])
@pytest.mark.parametrize("reduce", [True, False])
def test_softmax_focal_non_finite_logits_where_invalid(value, ignore_index, reduce):
    t = _labels(2, 1100, ignore_index, seed=6)
    bad = invalid(t, C, ignore_index)
    x = _logits((2, C, 1100))
    xp = _poison(x, bad.unsqueeze(1).expand_as(x), value)
    x, xp, t, a = _on(x, xp, t, torch.tensor([0.2, 0.5, 0.8, 1.5]))
    args = (t, True, 2.0, a, None, ignore_index, 0.0, reduce)
    _check_poisoned(lambda: kernel_focal(xp, *args), lambda: kernel_focal(x, *args), reference_focal(x, *args), TOL,
                    lambda gr: gr.transpose(0, 1)[:, bad])


@pytest.mark.parametrize("value", POISON, ids=str)
@pytest.mark.parametrize("act,index", [("softmax", True), ("identity", True), ("sigmoid", False),
                                       ("identity", False)])
def test_region_kernels_non_finite_logits_where_invalid(value, act, index):
    g = torch.Generator().manual_seed(7)
    x = _logits((2, C, 1100), seed=8)
    if act == "identity":
        x = torch.softmax(x, 1) if index else torch.sigmoid(x)
    if index:
        t = _labels(2, 1100, 255, seed=9)
        bad = invalid(t, C, 255).unsqueeze(1).expand_as(x)
    else:
        t = (torch.rand(x.shape, generator=g) > 0.5).float()
        t[torch.rand(x.shape, generator=g) < 0.2] = 255
        bad = t == 255
    xp = _poison(x, bad, value)
    a, m = torch.randn(2, C, generator=g), torch.randn(2, C, generator=g)
    x, xp, t, a, m = _on(x, xp, t, a, m)
    args = (t, act, index, 255, a, m)
    _check_poisoned(lambda: kernel_region(xp, *args), lambda: kernel_region(x, *args), reference_region(x, *args),
                    {"rtol": 1e-4, "atol": 1e-6}, lambda gr: gr[bad])
