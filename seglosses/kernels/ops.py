"""The fused passes as the losses call them: :func:`focal_terms`, :func:`region_stats`, :func:`lovasz_rows`.

Each runs the backend that :func:`seglosses.kernels.dispatch.select` picks, with its analytic gradient: as an
autograd Function in eager mode, and under ``torch.compile`` (:func:`use_operator`) the focal pass and the Lovasz rows
as registered operators, ``seglosses::focal_pass`` and ``seglosses::lovasz_rows`` (torch.library), whose
implementation runs eagerly, as outside the compiler (traced through instead, Inductor miscompiled both on CUDA:
docs/benchmarks.md, "Design measurements"). The region statistics are traced by the caller's compiler.

Each takes an optional pixel weight ``weight``: None, or the (N, 1, S) / (N, C, S) map of
:func:`seglosses.core.checks.pixel_weights` (detached, in the compute dtype); every backend that covers a weighted call
gives the same weighted result (:func:`seglosses.kernels.dispatch.select` sends a weighted call only to those).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from seglosses.core.checks import compute_dtype, saturating_cast
from seglosses.kernels.dispatch import BLOCKED, FocalSpec, LovaszSpec, RegionSpec, select

__all__ = ["FocalSpec", "LovaszSpec", "focal_terms", "lovasz_rows", "region_stats", "use_operator"]
from seglosses.kernels.lovasz import grad_q
from seglosses.kernels.region import RegionSums, region_outputs


def check_weight(weight: Optional[torch.Tensor], x: torch.Tensor, per_class: bool = True) -> Optional[torch.Tensor]:
    """The pixel weight of a pass on x (N, C, S): None, or (N, 1, S) / (N, C, S) (``per_class``), detached, in x's
    compute dtype; a ValueError/TypeError otherwise (the losses pass :func:`~seglosses.core.checks.pixel_weights`'s
    output, which always fits)."""
    if weight is None:
        return None
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"`weight` must be a torch.Tensor or None; got {type(weight).__name__}")
    n, c, s = x.shape
    allowed = [(n, 1, s)] + ([(n, c, s)] if per_class and c != 1 else [])
    if tuple(weight.shape) not in allowed:
        raise ValueError(f"`weight` must have shape {' or '.join(str(a) for a in allowed)}; got {tuple(weight.shape)}")
    if weight.device != x.device:
        raise ValueError(f"`weight` must be on the device of the logits ({x.device}); got {weight.device}")
    return weight.detach().to(compute_dtype(x))


def use_operator() -> bool:
    """Whether a pass runs as its registered operator instead of its autograd Function: when compiling (a hook for
    tests)."""
    return torch.compiler.is_compiling()


# ------------------------------------------------------------------------------------------------- focal pass ---
def focal_pass(x: torch.Tensor, target: torch.Tensor, spec: FocalSpec, need_grad: bool,
               weight: Optional[torch.Tensor] = None):
    """(loss map or sum, normaliser of the mean, gradient for a unit upstream gradient or None) by the selected
    backend; no autograd."""
    return select("focal", x, target, spec, need_grad, weight).focal_pass(x, target, spec, need_grad, weight)


class _Focal(torch.autograd.Function):
    """Focal loss map (or its sum) and the normaliser of its mean.

    The forward pass computes the gradient too and keeps that one buffer (apex's design); the first backward
    scales it in place and hands it over, so loss + gradient cost one buffer the size of the logits. A second
    backward through the same graph (``retain_graph=True``) recomputes it from the saved inputs.
    """

    @staticmethod
    def forward(ctx, x, target, spec, weight):
        out, norm, grad = focal_pass(x, target, spec, ctx.needs_input_grad[0], weight)
        ctx.save_for_backward(x, target, weight)
        ctx.spec, ctx.grad = spec, grad
        ctx.mark_non_differentiable(norm)
        return out, norm

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, _g_norm):
        grad, ctx.grad = ctx.grad, None
        if grad is None:
            x, target, weight = ctx.saved_tensors
            grad = focal_pass(x, target, ctx.spec, True, weight)[2]
        if not ctx.spec.reduce and ctx.spec.softmax:
            g_out = g_out.unsqueeze(1)
        return grad.mul_(g_out), None, None, None


@torch.library.custom_op("seglosses::focal_pass", mutates_args=())
def _focal_pass_op(x: torch.Tensor, target: torch.Tensor, softmax: bool, index: bool, gamma: float,
                   alpha_scalar: Optional[float], alpha_vec: Optional[torch.Tensor], base: Optional[torch.Tensor],
                   ignore_index: Optional[int], smoothing: float, reduce: bool, need_grad: bool,
                   weight: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    alpha = alpha_vec if alpha_vec is not None else alpha_scalar
    spec = FocalSpec(softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce)
    out, norm, grad = focal_pass(x, target, spec, need_grad, weight)
    # contiguous: the strides register_fake promises
    return out, norm, grad.contiguous() if grad is not None else x.new_empty(0)


@_focal_pass_op.register_fake
def _(x, target, softmax, index, gamma, alpha_scalar, alpha_vec, base, ignore_index, smoothing, reduce, need_grad,
      weight):
    n, c, s = x.shape
    dt = compute_dtype(x)
    out = x.new_empty((), dtype=dt) if reduce else x.new_empty((n, s) if softmax else (n, c, s), dtype=dt)
    return out, x.new_empty((), dtype=dt), x.new_empty(x.shape if need_grad else (0,))


def _focal_op_setup(ctx, inputs, output):
    ctx.save_for_backward(output[2])
    ctx.unsqueeze = inputs[2] and not inputs[10]  # softmax loss map (N, S): broadcast over the classes


def _focal_op_backward(ctx, g_out, _g_norm, _g_grad):
    (grad,) = ctx.saved_tensors
    if ctx.unsqueeze:
        g_out = g_out.unsqueeze(1)
    return (grad * g_out,) + (None,) * 12


_focal_pass_op.register_autograd(_focal_op_backward, setup_context=_focal_op_setup)


def focal_terms(x: torch.Tensor, target: torch.Tensor, spec: FocalSpec,
                weight: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss map or sum, normaliser of the mean) of the focal pass on x (N, C, S), with the analytic gradient.

    ``weight``: None, or a pixel weight (N, 1, S) (sigmoid: also (N, C, S), one per element) that multiplies each
    element's (sigmoid) or pixel's (softmax) term, its gradient and its share of the normaliser (the sum of the
    weights of the valid elements; softmax with class weights ``base``: of ``w base[t]``); no effect where ignored.
    """
    weight = check_weight(weight, x, per_class=not spec.softmax)
    if use_operator():
        need_grad = x.requires_grad and torch.is_grad_enabled()
        alpha = spec.alpha
        avec = alpha if isinstance(alpha, torch.Tensor) else None
        out, norm, _ = _focal_pass_op(x, target, spec.softmax, spec.index, float(spec.gamma),
                                      None if alpha is None or avec is not None else float(alpha), avec, spec.base,
                                      spec.ignore_index, float(spec.smoothing), spec.reduce, need_grad, weight)
        return out, norm.detach()
    return _Focal.apply(x, target, spec, weight)


# ---------------------------------------------------------------------------------------------- region pass ---
class _KernelSums(torch.autograd.Function):
    """:class:`~seglosses.kernels.region.RegionSums` by another backend (Triton, the C kernels, Inductor): the
    forward pass keeps only the logits and the target, the backward pass recomputes the probabilities in its one
    pass."""

    @staticmethod
    def forward(ctx, x, target, spec, per_image, backend, weight):
        psum, msum, gsum = backend.region_sums(x, target, spec, weight)
        ctx.save_for_backward(x, target, weight)
        ctx.spec, ctx.backend = spec, backend
        return region_outputs(ctx, psum, msum, gsum, *spec, per_image)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_p, g_m, _g_g):
        x, target, weight = ctx.saved_tensors
        n, c, _ = x.shape
        dt = compute_dtype(x)
        a, m = ((torch.zeros((n, c), dtype=dt, device=x.device) if g is None else g.expand(n, c)) for g in (g_p, g_m))
        grad = ctx.backend.region_grad(x, target, ctx.spec, a, m, weight)
        return saturating_cast(grad, x.dtype), None, None, None, None, None


def region_stats(x: torch.Tensor, target: torch.Tensor, *, act: str, index: bool, ignore_index: Optional[int] = None,
                 per_image: bool = True, weight: Optional[torch.Tensor] = None):
    """Return ``(tp, fp, fn, G)``, float32 (float64 for float64 input); G is the target volume.

    Args:
        x: logits (``act`` "sigmoid"/"softmax") or probabilities (``act`` "identity") of shape (N, C, S).
        target: class indices (N, S) when ``index`` else a dense target (N, C, S) in [0, 1].
        ignore_index: target value whose elements are left out of every sum.
        per_image: statistics of shape (N, C); False: summed over the batch, (1, C).
        weight: None, or a pixel weight (N, 1, S) / (N, C, S) multiplying every element's share of every
            statistic (``tp = sum w p g``, ``G = sum w g``, ...) and of the gradient; no effect where ignored.

    A statistic that is 0 may come out as -ulp (the L1 form's differences); the losses clamp at the end.
    """
    weight = check_weight(weight, x)
    spec = RegionSpec(act, index, ignore_index)
    backend = select("region", x, target, spec, weight)
    if backend is BLOCKED:
        psum, msum, gsum = RegionSums.apply(x, target, act, index, ignore_index, per_image, weight)
    else:
        psum, msum, gsum = _KernelSums.apply(x, target, spec, per_image, backend, weight)
    if index:
        return msum, psum - msum, gsum - msum, gsum
    tp = (psum + gsum - msum) * 0.5
    return tp, psum - tp, gsum - tp, gsum


# ---------------------------------------------------------------------------------------------- Lovasz rows ---
def rows(q: torch.Tensor, label: torch.Tensor, valid: Optional[torch.Tensor], spec: LovaszSpec,
         weight: Optional[torch.Tensor] = None):
    """(losses (R, K), foreground sums (R, K), derivative in q for a unit upstream gradient (N, K, S)) by the
    selected backend; no autograd. See :func:`seglosses.kernels.lovasz.lovasz_rows`."""
    return select("lovasz", q, label, spec, weight).lovasz_rows(q, label, valid, spec, weight)


class _LovaszRows(torch.autograd.Function):
    """:func:`rows` in eager mode: the forward pass keeps only the unit derivative (N, K, S)."""

    @staticmethod
    def forward(ctx, q, label, valid, spec, weight):
        losses, fg_sum, unit = rows(q, label, valid, spec, weight)
        ctx.save_for_backward(unit)
        ctx.q_shape, ctx.cols = q.shape, spec.cols
        ctx.mark_non_differentiable(fg_sum)
        return losses, fg_sum

    @staticmethod
    @once_differentiable
    def backward(ctx, g_losses, _g_fg):
        (unit,) = ctx.saved_tensors
        return grad_q(unit, g_losses, ctx.q_shape, ctx.cols), None, None, None, None


@torch.library.custom_op("seglosses::lovasz_rows", mutates_args=())
def _lovasz_rows_op(q: torch.Tensor, label: torch.Tensor, valid: Optional[torch.Tensor], softmax: bool, index: bool,
                    cols: list[int], per_image: bool,
                    weight: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    losses, fg_sum, unit = rows(q, label, valid, LovaszSpec(softmax, index, tuple(cols), per_image), weight)
    return losses, fg_sum, unit.contiguous()  # the strides register_fake promises


@_lovasz_rows_op.register_fake
def _(q, label, valid, softmax, index, cols, per_image, weight):
    n, _, s = q.shape
    r, k = (n if per_image else 1), len(cols)
    return q.new_empty((r, k)), q.new_empty((r, k)), q.new_empty((n, k, s))


def _lovasz_op_setup(ctx, inputs, output):
    q, _, _, _, _, cols, _, _ = inputs
    ctx.save_for_backward(output[2])
    ctx.q_shape, ctx.cols = q.shape, tuple(cols)


def _lovasz_op_backward(ctx, g_losses, _g_fg, _g_unit):
    (unit,) = ctx.saved_tensors
    return grad_q(unit, g_losses, ctx.q_shape, ctx.cols), None, None, None, None, None, None, None


_lovasz_rows_op.register_autograd(_lovasz_op_backward, setup_context=_lovasz_op_setup)


def lovasz_rows(q: torch.Tensor, label: torch.Tensor, valid: Optional[torch.Tensor], spec: LovaszSpec,
                weight: Optional[torch.Tensor] = None):
    """(losses (R, K), foreground sums (R, K)) of the Lovasz rows, with the analytic gradient in ``q``.

    ``weight``: None, or a pixel weight (N, 1, S) / (N, C, S): the rows are the Lovasz extension of the weighted
    Jaccard loss (the errors unweighted) and the foreground sums ``sum w g``; see
    :func:`seglosses.kernels.lovasz.lovasz_rows`.
    """
    weight = check_weight(weight, q)
    if use_operator():
        losses, fg_sum, _ = _lovasz_rows_op(q, label, valid, spec.softmax, spec.index, list(spec.cols),
                                            spec.per_image, weight)
        return losses, fg_sum.detach()
    return _LovaszRows.apply(q, label, valid, spec, weight)
