"""The one place that decides which backend runs a fused pass: :func:`select`.

Three passes have several implementations: the focal pass (loss and gradient of the focal and cross-entropy
losses, :class:`~seglosses.kernels.focal.FocalSpec`), the region pass (the per-class sums behind every region loss
and their gradient, :class:`RegionSpec`) and the Lovasz rows (:class:`LovaszSpec`). :func:`select` tries the
backends in this order and returns the first that covers the call:

=========  ===========================================================================================================
triton     CUDA tensors (any tensor under ``TRITON_INTERPRET=1``) in float32/float16/bfloat16, outside torch.compile,
           Triton installed, whatever the CPU policy: the focal pass (sigmoid; softmax with class indices and no label
           smoothing) and the region pass (sigmoid/identity with dense targets; softmax/identity with class indices).
native     The C kernels (:mod:`seglosses.kernels.native`), CPU, policy ``"auto"`` or ``"inductor"``, outside
           torch.compile, where they build: the region pass of a softmax with class indices (contiguous float32
           logits, contiguous integer targets) and the Lovasz-softmax rows with class indices.
inductor   Policy ``"inductor"``, CPU, outside torch.compile, the compiler working and the call within the recompile
           limit: the focal pass and the region pass, compiled from the blocked code (but a softmax over fewer than
           8 classes with class indices, which the blocked passes serve faster: docs/benchmarks.md).
blocked    Everything else: the blocked torch passes, the reference the others are tested against.
=========  ===========================================================================================================

A pixel weight (the last of a call's further arguments, ``rest``) goes to the backends that cover it: the blocked
passes (all three), Inductor (focal and region passes), the C region kernel (a contiguous (N, 1, S) float32 weight),
the Triton focal and region kernels; weighted Lovasz rows run the torch rows.

Every backend gives the same value, gradient and error for the same call, bad input included (tests/test_native.py,
tests/test_cpu_kernels.py, tests/triton/, tests/test_fuzz.py). The policy is :mod:`seglosses.kernels.policy`; the
autograd glue that runs the selected backend is :mod:`seglosses.kernels.ops`.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional, Protocol

import torch

from seglosses.core.checks import saturating_cast
from seglosses.kernels import focal as _focal
from seglosses.kernels import inductor as _inductor
from seglosses.kernels import lovasz as _lovasz
from seglosses.kernels import native as _native
from seglosses.kernels import policy
from seglosses.kernels import region as _region
from seglosses.kernels.focal import FocalSpec

__all__ = ["Backend", "FocalSpec", "LovaszSpec", "RegionSpec", "select", "BACKENDS"]


class RegionSpec(NamedTuple):
    """What a region pass computes: ``act`` "sigmoid", "softmax" or "identity" (probabilities); ``index``: the target
    holds class indices (N, S), else a dense target (N, C, S); ``ignore_index``: the target value left out, or None."""

    act: str
    index: bool
    ignore_index: Optional[int]


class LovaszSpec(NamedTuple):
    """What the Lovasz rows compute: ``softmax`` (Lovasz-softmax; else the hinge), ``index`` (class-index labels),
    ``cols`` (the classes kept, a tuple), ``per_image`` (rows per image; else one row per class over the batch)."""

    softmax: bool
    index: bool
    cols: tuple
    per_image: bool


class Backend(Protocol):
    """A backend of the fused passes. ``covers`` says whether it takes a call; the pass methods it covers return
    exactly what the blocked passes return."""

    name: str

    def covers(self, op: str, x: torch.Tensor, target: torch.Tensor, spec: tuple, *rest) -> bool: ...

    def focal_pass(self, x: torch.Tensor, target: torch.Tensor, spec: FocalSpec, need_grad: bool,
                   weight: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        ...

    def region_sums(self, x: torch.Tensor, target: torch.Tensor, spec: RegionSpec,
                    weight: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def region_grad(self, x: torch.Tensor, target: torch.Tensor, spec: RegionSpec, a: torch.Tensor,
                    m: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor: ...

    def lovasz_rows(self, q: torch.Tensor, label: torch.Tensor, valid: Optional[torch.Tensor], spec: LovaszSpec,
                    weight: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


def _triton_module(x: torch.Tensor):
    """:mod:`seglosses.kernels.triton` where its kernels may run on ``x``, else None. Triton is imported only then:
    CPU work never loads it."""
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16) or torch.compiler.is_compiling():
        return None
    if not (x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"):
        return None
    try:
        from seglosses.kernels import triton
    except ImportError:  # Triton not installed
        return None
    return triton


def _weight(rest) -> Optional[torch.Tensor]:
    """The pixel weight of a call: the last of its further arguments (None: unweighted)."""
    return rest[-1] if rest and isinstance(rest[-1], torch.Tensor) else None


def _cpu_eligible(x: torch.Tensor) -> bool:
    """A CPU tensor outside torch.compile under a policy that allows compiled CPU kernels."""
    return x.device.type == "cpu" and not torch.compiler.is_compiling() and policy.get_cpu_kernels() != "eager"


class _Triton:
    name = "triton"

    def covers(self, op, x, target, spec, *rest):
        if _weight(rest) is not None:
            return False
        if op == "focal":
            fits = not (spec.softmax and (not spec.index or spec.smoothing))
        elif op == "region":
            fits = spec.act != "softmax" or spec.index
        else:
            fits = False
        return fits and _triton_module(x) is not None

    def focal_pass(self, x, target, spec, need_grad, weight=None):
        out, norm, grad = _triton_module(x).focal_pass(x, target, spec, need_grad)
        out = out if spec.reduce else out.view(x.shape if not spec.softmax else (x.shape[0], x.shape[2]))
        return out, norm, None if grad is None else saturating_cast(grad, x.dtype)

    def region_sums(self, x, target, spec, weight=None):
        return _triton_module(x).region_sums(x, target, *spec)

    def region_grad(self, x, target, spec, a, m, weight=None):
        return _triton_module(x).region_grad(x, target, *spec, a, m)


class _Native:
    name = "native"

    def covers(self, op, x, target, spec, *rest):
        if _weight(rest) is not None:
            return False
        if op == "region":
            fits = (spec.act == "softmax" and spec.index and x.dtype == torch.float32
                    and target.dtype in _native.TARGET_TYPES)
        elif op == "lovasz":  # x: the probabilities q (N, C, S); target: int16 labels (N, 1, S)
            fits = (spec.softmax and spec.index and x.dtype == torch.float32 and target.dtype == torch.int16
                    and x.shape[0] * x.shape[2] < 2 ** 32)
        else:
            fits = False
        return (fits and _cpu_eligible(x) and target.device.type == "cpu" and x.is_contiguous()
                and target.is_contiguous() and _native._state["error"] is None and _native.library() is not None)

    def region_sums(self, x, target, spec, weight=None):
        return _native.softmax_index_sums(x, target, spec.ignore_index)

    def region_grad(self, x, target, spec, a, m, weight=None):
        return _native.softmax_index_grad(x, target, spec.ignore_index, a, m)

    def lovasz_rows(self, q, label, valid, spec, weight=None):
        # errors to keys in one pass, NumPy's sort, then the losses and the derivative in one pass over the keys
        return _native.lovasz_index_rows(q, label.squeeze(1), valid, spec.cols, spec.per_image,
                                         _lovasz.sort_u64_rows)


class _Inductor:
    name = "inductor"

    def covers(self, op, x, target, spec, *rest):
        if _weight(rest) is not None:
            return False
        if op == "lovasz" or policy.get_cpu_kernels() != "inductor" or not _cpu_eligible(x):
            return False
        if op == "region" and spec.act == "softmax" and spec.index and x.shape[1] < 8:
            return False  # few classes: the blocked passes, which keep the probabilities, are faster
        return _inductor.usable(op, x, target, *self._args(op, spec, rest))

    @staticmethod
    def _args(op, spec, rest):
        """The arguments after (x, target) that :func:`seglosses.kernels.inductor.call` receives (its cache key)."""
        return (spec, *rest) if op == "focal" else (*spec, *rest)

    def focal_pass(self, x, target, spec, need_grad, weight=None):
        return _inductor.call("focal", _focal.focal_pass, x, target, spec, need_grad, weight)

    def region_sums(self, x, target, spec, weight=None):
        return _inductor.call("region", _region.sums_whole, x, target, *spec, weight)

    def region_grad(self, x, target, spec, a, m, weight=None):
        return _inductor.call("region_grad", _region.grad_whole, x, target, *spec, a, m, weight)


class _Blocked:
    """The blocked torch passes. Its region pass is :class:`seglosses.kernels.region.RegionSums`, an autograd
    Function of its own (it keeps the probabilities between the passes; the other backends recompute them)."""

    name = "blocked"

    def covers(self, op, x, target, spec, *rest):
        return True

    def focal_pass(self, x, target, spec, need_grad, weight=None):
        return _focal.focal_pass(x, target, spec, need_grad, weight)

    def lovasz_rows(self, q, label, valid, spec, weight=None):
        return _lovasz.lovasz_rows(q, label, valid, *spec, weight)


TRITON, NATIVE, INDUCTOR, BLOCKED = _Triton(), _Native(), _Inductor(), _Blocked()
#: The backends in the order :func:`select` tries them.
BACKENDS: tuple[Backend, ...] = (TRITON, NATIVE, INDUCTOR, BLOCKED)


def select(op: str, x: torch.Tensor, target: torch.Tensor, spec: tuple, *rest) -> Backend:
    """The backend that runs the pass ``op`` ("focal", "region" or "lovasz") on ``x`` (the logits; the
    probabilities q for "lovasz"), ``target`` and ``spec``; ``rest``: the pass's further arguments (the focal
    pass's ``need_grad``; last, the pixel weight or None)."""
    for backend in BACKENDS[:-1]:
        if backend.covers(op, x, target, spec, *rest):
            return backend
    return BLOCKED
