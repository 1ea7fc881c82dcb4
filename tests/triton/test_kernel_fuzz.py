"""Property-based path equality: each Triton kernel's (loss, normaliser, gradient) or (P, M, G, gradient) equals the
blocked torch pass's on random cases near block boundaries (tests/triton/_paths.py has both sides).

Deterministic (``derandomize=True``) and small by default, for the interpreter; ``SEGLOSSES_FUZZ_EXAMPLES=k`` runs k
times as many examples (``SEGLOSSES_FUZZ_EXAMPLES=20 ... pytest tests/triton/test_kernel_fuzz.py`` for a longer run)."""

import os

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _paths import DEVICE, kernel_focal, kernel_region, reference_focal, reference_region

FACTOR = max(int(os.environ.get("SEGLOSSES_FUZZ_EXAMPLES", "1")), 1)


def _settings(examples):
    return settings(max_examples=examples * FACTOR, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


#: spatial sizes around the kernels' block of 1024 (and of 16, a typical vector width)
SIZES = (1, 15, 16, 17, 63, 65, 1023, 1024, 1025)
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
#: per-dtype tolerances: sums and loss maps are float32 in both paths (from the same rounded inputs); gradients are
#: rounded to the input's dtype, one ulp apart at most where the float32 values straddle a rounding boundary
LOSS_TOL = {"rtol": 5e-5, "atol": 1e-6}
GRAD_TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-6}, torch.float16: {"rtol": 2e-3, "atol": 1e-6},
            torch.bfloat16: {"rtol": 1.6e-2, "atol": 1e-6}}


def _close(got, want, grad_tol, atol=None):
    *vals, grad = got
    *wvals, wgrad = want
    for a, b in zip(vals, wvals):
        torch.testing.assert_close(a, b, **LOSS_TOL)
    tol = dict(grad_tol) if atol is None else dict(grad_tol, atol=atol)
    torch.testing.assert_close(grad, wgrad, **tol)


def _labels(draw, g, n, s, c):
    """Class indices (N, S) in a drawn integer dtype, with a drawn ignore_index (None, present, or covering every
    pixel) and, maybe, labels outside [0, C)."""
    dtype = draw(st.sampled_from([torch.int64, torch.int32, torch.uint8]))
    ignore = draw(st.sampled_from(["absent", "present", "all"]))
    ignore_index = None
    if ignore != "absent":
        choices = [255, draw(st.integers(0, c - 1))] + ([-100] if dtype != torch.uint8 else [])
        ignore_index = draw(st.sampled_from(choices))
    t = torch.randint(0, c, (n, s), generator=g)
    if draw(st.booleans()):  # out-of-range labels, a fifth of the pixels
        bad = [v for v in (c, c + 3, -1, -3, 254, 1000, 2**31 - 1, 2**32 + 1, -(2**40))
               if v != ignore_index and (v >= 0 and v < 255 if dtype == torch.uint8 else
                                         torch.iinfo(dtype).min <= v <= torch.iinfo(dtype).max) and not 0 <= v < c]
        pick = torch.rand((n, s), generator=g) < 0.2
        t[pick] = torch.tensor(bad)[torch.randint(0, len(bad), (int(pick.sum()),), generator=g)]
    if ignore == "present":
        t[torch.rand((n, s), generator=g) < 0.2] = ignore_index
    elif ignore == "all":
        t[:] = ignore_index
    return t.to(dtype), ignore_index


def _dense(draw, g, shape):
    """A dense target (hard or soft) with a drawn ignore_index (None, present, or covering every element)."""
    y = torch.rand(shape, generator=g)
    if draw(st.booleans()):
        y = (y > 0.5).float()
    ignore = draw(st.sampled_from(["absent", "present", "all"]))
    ignore_index = None if ignore == "absent" else draw(st.sampled_from([255, -1]))
    if ignore == "present":
        y[torch.rand(shape, generator=g) < 0.2] = ignore_index
    elif ignore == "all":
        y[:] = ignore_index
    return y, ignore_index


def _vector(g, c, high):
    return (torch.rand(c, generator=g) * high).to(DEVICE)


@st.composite
def focal_cases(draw):
    softmax = draw(st.booleans())
    n, c, s = draw(st.integers(1, 3)), draw(st.integers(1, 20)), draw(st.sampled_from(SIZES))
    dtype = draw(st.sampled_from(DTYPES))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = (torch.randn(n, c, s, generator=g) * draw(st.sampled_from([1.0, 4.0, 30.0]))).to(dtype)
    if softmax:
        t, ignore_index = _labels(draw, g, n, s, c)
    else:
        t, ignore_index = _dense(draw, g, (n, c, s))
    gamma = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]) | st.floats(0.0, 4.0, width=32))
    high = 2.0 if softmax else 1.0  # sigmoid alpha is a probability
    alpha = draw(st.sampled_from(["none", "float", "vector"]))
    alpha = None if alpha == "none" else _vector(g, c, high) if alpha == "vector" else draw(st.floats(0.0, high))
    weight = _vector(g, c, 3.0) if draw(st.booleans()) else None
    smoothing = 0.0 if softmax else draw(st.sampled_from([0.0, 0.1]) | st.floats(0.0, 1.0))
    reduce = draw(st.booleans())
    return x.to(DEVICE), t.to(DEVICE), (softmax, gamma, alpha, weight, ignore_index, smoothing, reduce)


@_settings(40)
@given(focal_cases())
def test_focal_kernel_equals_torch_pass(case):
    x, t, args = case
    _close(kernel_focal(x, t, *args), reference_focal(x, t, *args), GRAD_TOL[x.dtype])


@st.composite
def region_cases(draw):
    act, index = draw(st.sampled_from([("softmax", True), ("identity", True), ("sigmoid", False),
                                       ("identity", False)]))
    n, c, s = draw(st.integers(1, 3)), draw(st.integers(1, 20)), draw(st.sampled_from(SIZES))
    dtype = draw(st.sampled_from(DTYPES))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = torch.randn(n, c, s, generator=g) * draw(st.sampled_from([1.0, 4.0, 30.0]))
    if act == "identity":
        x = torch.softmax(x, 1) if index else torch.sigmoid(x)
    if index:
        t, ignore_index = _labels(draw, g, n, s, c)
    else:
        t, ignore_index = _dense(draw, g, (n, c, s))
    a, m = torch.randn(n, c, generator=g), torch.randn(n, c, generator=g)
    return x.to(dtype).to(DEVICE), t.to(DEVICE), (act, index, ignore_index, a.to(DEVICE), m.to(DEVICE))


@_settings(30)
@given(region_cases())
def test_region_kernels_equal_torch_pass(case):
    x, t, (act, index, ignore_index, a, m) = case
    # the softmax Jacobian's sum over up to 20 classes is added in another order: an absolute error of a few ulp of
    # the largest term
    _close(kernel_region(x, t, act, index, ignore_index, a, m), reference_region(x, t, act, index, ignore_index, a, m),
           GRAD_TOL[x.dtype], atol=1e-5)
