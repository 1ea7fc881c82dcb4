"""Shared by tests/triton: the device, and each Triton kernel beside its independent eager reference.

The references are the blocked torch passes (``kernels.focal.focal_pass``, ``kernels.region.RegionSums``) on targets where every
invalid label (outside [0, C), or ``ignore_index``) is replaced by one ``ignore_index``: the contract is that the
kernels treat out-of-range labels exactly like ignored pixels (on the CPU the public functions raise an IndexError
for them before any kernel runs, so the kernels are called directly here)."""

import os

import torch

DEVICE = os.environ.get("SEGLOSSES_TRITON_DEVICE", "cpu")
if os.environ.get("TRITON_INTERPRET") != "1" and DEVICE != "cuda":
    raise RuntimeError("tests/triton runs under tests/test_triton_interpreter.py, with TRITON_INTERPRET=1 set before "
                       "triton is imported, or on a GPU with SEGLOSSES_TRITON_DEVICE=cuda")

from seglosses.kernels import dispatch  # noqa: E402
from seglosses.kernels import focal, region  # noqa: E402
from seglosses.kernels.dispatch import FocalSpec, RegionSpec  # noqa: E402

#: The reference's ignore_index where the call under test has none: no label of these tests takes this value.
SENTINEL = -12345


def invalid(t, c, ignore_index):
    """Where class indices ``t`` are invalid: outside [0, C) or ``ignore_index``."""
    t = t.long()
    bad = (t < 0) | (t >= c)
    return bad if ignore_index is None else bad | (t == ignore_index)


def reference_labels(t, c, ignore_index):
    """int64 labels for the reference pass, every invalid one set to its ignore_index, and that ignore_index."""
    ref_ignore = SENTINEL if ignore_index is None else ignore_index
    return torch.where(invalid(t, c, ignore_index), ref_ignore, t.long()), ref_ignore


def kernel_focal(x, t, softmax, gamma, alpha, weight, ignore_index, smoothing, reduce):
    """(loss map or sum, normaliser, gradient in x's dtype) by the Triton kernel, which the library selects here."""
    spec = FocalSpec(softmax, softmax, gamma, alpha, weight, ignore_index, smoothing, reduce)
    assert dispatch.select("focal", x, t, spec, True) is dispatch.TRITON, "the Triton kernel would not run"
    return dispatch.TRITON.focal_pass(x, t, spec, True)


def reference_focal(x, t, softmax, gamma, alpha, weight, ignore_index, smoothing, reduce):
    """The same triple by the blocked torch pass, class-index labels made valid-or-ignored first."""
    if softmax:
        t, ignore_index = reference_labels(t, x.shape[1], ignore_index)
    return focal.focal_pass(x, t, FocalSpec(softmax, softmax, gamma, alpha, weight, ignore_index, smoothing, reduce),
                            True)


def kernel_region(x, t, act, index, ignore_index, a, m):
    """(P, M, G) and dL/dx for L = sum a P + sum m M, by the Triton kernels (gradient in x's dtype)."""
    spec = RegionSpec(act, index, ignore_index)
    assert dispatch.select("region", x, t, spec) is dispatch.TRITON, "the Triton kernels would not run"
    p, msum, g = dispatch.TRITON.region_sums(x, t, spec)
    grad = dispatch.TRITON.region_grad(x, t, spec, a, m)
    return p, msum, g, grad.to(x.dtype)  # as ops._KernelSums hands it on


def reference_region(x, t, act, index, ignore_index, a, m):
    """The same by ``kernels.region.RegionSums`` and autograd."""
    if index:
        t, ignore_index = reference_labels(t, x.shape[1], ignore_index)
    xx = x.detach().clone().requires_grad_(True)
    p, msum, g = region.RegionSums.apply(xx, t, act, index, ignore_index, True)
    (grad,) = torch.autograd.grad((p * a).sum() + (msum * m).sum(), xx)
    return p.detach(), msum.detach(), g, grad
