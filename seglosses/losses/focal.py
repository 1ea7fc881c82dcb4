"""Focal losses (Lin et al. 2017): sigmoid (binary, multilabel), softmax (multiclass) and a torchvision drop-in.

Forward and gradient are computed together, block by block in float32, from logits in log space; the forward
pass keeps only the gradient buffer (as apex's fused focal loss does), so the backward pass is one multiply.
The modulating factor is built from ``sigmoid(-x)`` / ``-expm1(log p)`` (never ``1 - p``) and its derivative from
the bounded ratio ``p (1 - p) / (1 - p_t)``, so loss and gradient are finite for any logit and any gamma >= 0
(torchvision's gradient is NaN for gamma < 1 at saturated logits).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from seglosses.core.args import check_bool
from seglosses.core.checks import (
    check_ignore_index,
    check_reduction,
    check_scalar,
    class_vector,
    compute_dtype,
    prepare,
    saturating_cast,
    probs_to_logits,
)
from seglosses.kernels import inductor as _inductor
from seglosses.kernels.blocked import blocks, triton_kernels
from seglosses.core.module import LossModule
from seglosses.kernels.region import dense_block, index_block


def _sigmoid_terms(x, y, gamma, need_grad):
    """Elementwise focal term ``(1 - p_t)^gamma BCE`` and its derivative in x, for soft targets y."""
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    if gamma == 0:
        return bce, torch.sigmoid(x).sub_(y) if need_grad else None
    s = torch.sigmoid(x)
    # 1 - p_t = s (1 - y) + sigmoid(-x) y; lerp returns its end points exactly, so at y in {0, 1} this is
    # sigmoid(+-x), never a rounded 1 - p
    q = torch.lerp(s, torch.sigmoid(-x), y)
    m = q.pow(gamma)
    if not need_grad:
        return bce.mul_(m), None
    e = s - y
    # d/dx = m (p - y + gamma (1 - 2y) BCE r) with r = p (1 - p) / (1 - p_t) in [0, 1]
    r = s.mul_(torch.sigmoid(-x)).div_(q.clamp_min_(torch.finfo(q.dtype).tiny))
    g = r.mul_(bce).mul_(y * (-2 * gamma) + gamma).add_(e).mul_(m)
    return bce.mul_(m), g


def _softmax_terms(logp, gamma):
    """Per-class ``f = (1 - p)^gamma (-log p)`` and ``h = p df/dp``, from log-probabilities."""
    nlp = -logp
    if gamma == 0:
        return nlp, torch.full_like(logp, -1.0)
    u = -torch.expm1(logp)  # 1 - p, accurate near p = 1
    m = u.pow(gamma)
    r = torch.where(u > 0, torch.exp(logp) * nlp / torch.where(u > 0, u, torch.ones_like(u)), torch.ones_like(u))
    return m * nlp, -m * (1 + gamma * r)


def _focal_pass(x, target, softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce, need_grad):
    """One blocked pass: the loss map (or its sum), the normaliser of the mean, and the gradient (or None)."""
    # x: (N, C, S); alpha: float, (C,) or None; base: per-class weight (C,) or None.
    # softmax=False: sigmoid focal, dense target (N, C, S). softmax=True: target (N, S) class indices or
    # (N, C, S) probabilities; the class coefficient is weight * alpha, the mean's normaliser uses weight only.
    n, c, s = x.shape
    dt = compute_dtype(x)
    if softmax:
        cvec = None if alpha is None else (alpha.to(dt) if isinstance(alpha, torch.Tensor) else
                                           torch.full((c,), float(alpha), dtype=dt, device=x.device))
        if base is not None:
            cvec = base.to(dt) if cvec is None else cvec * base.to(dt)
    grad = torch.empty(x.shape, dtype=x.dtype, device=x.device) if need_grad else None  # contiguous
    out_shape = (n, c, s) if not softmax else (n, s)
    out = torch.zeros((), dtype=dt, device=x.device) if reduce else torch.empty(out_shape, dtype=dt,
                                                                                device=x.device)
    norm = torch.zeros((), dtype=dt, device=x.device)
    fast = softmax and index and not smoothing  # per-pixel temporaries only: blocks C times larger
    # softmax with class indices: the temporaries are per pixel (about eight of them), so blocks C / 4 times larger
    # keep them under the size of the logits; sigmoid: a long chain of elementwise passes, in cache-sized blocks
    for n0, n1, s0, s1 in blocks(x, max(c // 4, 1) if fast else (1 / 16 if not softmax else 1)):
        xb = x[n0:n1, :, s0:s1].to(dt)
        whole = (n0, n1, s0, s1) == (0, n, 0, s)
        if index:
            t, v = index_block(target[n0:n1, s0:s1], ignore_index, c)
        elif not softmax:
            y, v = dense_block(target[n0:n1, :, s0:s1], ignore_index, dt)
        else:
            v = None
        if v is not None:  # ignored elements: finite logits (NaN, inf there must not reach the loss or gradient)
            xb = torch.where(v.unsqueeze(1) if index else v, xb, 0.0)
        # the block of the gradient buffer, written in place where the dtypes agree
        gb = (grad if whole else grad[n0:n1, :, s0:s1]) if need_grad and grad.dtype == dt else None
        g = None
        if not softmax:
            if smoothing:
                y = y * (1 - smoothing) + smoothing / 2
            loss, g = _sigmoid_terms(xb, y, gamma, need_grad)
            coef = None
            if alpha is not None:
                a = alpha if not isinstance(alpha, torch.Tensor) else alpha.to(dt).view(1, c, 1)
                coef = y * (2 * a - 1) + (1 - a)  # alpha y + (1 - alpha)(1 - y)
            if base is not None:
                coef = base.to(dt).view(1, c, 1) if coef is None else coef * base.to(dt).view(1, c, 1)
            if v is not None:
                coef = v.to(dt) if coef is None else coef * v
                norm += v.sum()
            else:
                norm += loss.numel()
            if coef is not None:
                loss = loss * coef
                g = None if g is None else g * coef
        else:
            if fast and gb is not None and gb.is_contiguous():  # log p is built in the gradient buffer
                logp = torch.ops.aten._log_softmax.out(xb, 1, False, out=gb)
            else:
                logp = torch.log_softmax(xb, dim=1)
            if fast:
                f, h = _softmax_terms(logp.gather(1, t.unsqueeze(1)).squeeze(1), gamma)
                coef = None if cvec is None else cvec[t]
                nw = None if base is None else base.to(dt)[t]
                if v is not None:
                    coef = v.to(dt) if coef is None else coef * v
                    nw = v.to(dt) if nw is None else nw * v
                norm += nw.sum() if nw is not None else t.numel()
                if coef is not None:
                    f, h = f * coef, h * coef
                loss = f
                if need_grad:  # d/dx_j = h_t ([j == t] - p_j)
                    g = logp.exp_() if logp is gb else torch.exp(logp, out=gb)
                    g.mul_(-h.unsqueeze(1))
                    g.scatter_add_(1, t.unsqueeze(1), h.unsqueeze(1))
            else:
                bvec = torch.ones(c, dtype=dt, device=x.device) if cvec is None else cvec
                if index:
                    vf = torch.ones(t.shape, dtype=dt, device=x.device) if v is None else v.to(dt)
                    coef = bvec.view(1, c, 1) * (smoothing / c * vf).unsqueeze(1)
                    coef.scatter_add_(1, t.unsqueeze(1), ((1 - smoothing) * bvec[t] * vf).unsqueeze(1))
                    norm += vf.sum() if base is None else (base.to(dt)[t] * vf).sum()
                else:
                    y = target[n0:n1, :, s0:s1].to(dt)
                    coef = (y * (1 - smoothing) + smoothing / c) * bvec.view(1, c, 1)
                    norm += y.shape[0] * y.shape[2]
                f, h = _softmax_terms(logp, gamma)
                loss = (coef * f).sum(1)
                if need_grad:
                    h = h * coef
                    g = h - torch.exp(logp) * h.sum(1, keepdim=True)
        if reduce:
            out += loss.sum()
        else:
            out[n0:n1, ..., s0:s1] = loss
        if need_grad and g is not gb:
            grad[n0:n1, :, s0:s1] = saturating_cast(g, grad.dtype)
    return out, norm, grad


def _triton_applies(x, softmax, index, smoothing) -> bool:
    """The Triton kernels run for sigmoid focal, or softmax focal with class indices and no label smoothing, where
    :func:`seglosses.kernels.blocked.triton_kernels` allows; everything else takes the torch path."""
    return not (softmax and (not index or smoothing)) and triton_kernels(x) is not None


def _any_pass(x, target, softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce, need_grad):
    """:func:`_focal_pass`, or its Triton kernel where that applies (same results, one pass over the logits), or on
    the CPU the pass compiled by Inductor where :mod:`seglosses.kernels.inductor`'s policy says so."""
    if _triton_applies(x, softmax, index, smoothing):
        from seglosses.kernels import triton as _triton

        out, norm, grad = _triton.focal_pass(x, target, softmax, gamma, alpha, base, ignore_index, smoothing, reduce,
                                             need_grad)
        out = out if reduce else out.view(x.shape if not softmax else (x.shape[0], x.shape[2]))
        return out, norm, None if grad is None else saturating_cast(grad, x.dtype)
    args = (x, target, softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce, need_grad)
    if _inductor.wants("focal", *args):  # CPU, a repeated call: the same pass as one fused loop
        return _inductor.call("focal", _focal_pass, *args)
    return _focal_pass(*args)


class _Focal(torch.autograd.Function):
    """Focal loss map (or its sum) and the normaliser of its mean.

    The forward pass computes the gradient too and keeps that one buffer (apex's design); the first backward
    scales it in place and hands it over, so loss + gradient cost one buffer the size of the logits. A second
    backward through the same graph (``retain_graph=True``) recomputes it from the saved inputs.
    """

    @staticmethod
    def forward(ctx, x, target, softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce):
        args = (softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce)
        # eager only: under torch.compile focal_terms calls the registered operator below instead
        out, norm, grad = _any_pass(x, target, *args, need_grad=ctx.needs_input_grad[0])
        ctx.save_for_backward(x, target)
        ctx.args, ctx.grad = args, grad
        ctx.mark_non_differentiable(norm)
        return out, norm

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, _g_norm):
        grad, ctx.grad = ctx.grad, None
        if grad is None:
            x, target = ctx.saved_tensors
            grad = _any_pass(x, target, *ctx.args, need_grad=True)[2]
        softmax, reduce = ctx.args[0], ctx.args[-1]
        if not reduce and softmax:
            g_out = g_out.unsqueeze(1)
        return grad.mul_(g_out), None, None, None, None, None, None, None, None, None


# Under torch.compile the pass is one opaque operator (torch.library): its kernels (the Triton kernel on CUDA, the
# blocked torch pass elsewhere) run as in eager mode. Traced through instead, the autograd Function above gave a zero
# gradient under Inductor on CUDA (torch 2.11, H100; correct on the CPU): benchmarks/gpu_check.py checks it.
@torch.library.custom_op("seglosses::focal_pass", mutates_args=())
def _focal_pass_op(x: torch.Tensor, target: torch.Tensor, softmax: bool, index: bool, gamma: float,
                   alpha_scalar: Optional[float], alpha_vec: Optional[torch.Tensor], base: Optional[torch.Tensor],
                   ignore_index: Optional[int], smoothing: float, reduce: bool,
                   need_grad: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    alpha = alpha_vec if alpha_vec is not None else alpha_scalar
    out, norm, grad = _any_pass(x, target, softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce,
                                need_grad)
    # contiguous: the strides register_fake promises
    return out, norm, grad.contiguous() if grad is not None else x.new_empty(0)


@_focal_pass_op.register_fake
def _(x, target, softmax, index, gamma, alpha_scalar, alpha_vec, base, ignore_index, smoothing, reduce, need_grad):
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
    return (grad * g_out,) + (None,) * 11


_focal_pass_op.register_autograd(_focal_op_backward, setup_context=_focal_op_setup)


def _use_operator() -> bool:
    """Whether the registered operator runs instead of the autograd Function: when compiling (a hook for tests)."""
    return torch.compiler.is_compiling()


def focal_terms(x, target, softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce):
    """(loss map or sum, normaliser of the mean) with the analytic gradient: the autograd Function in eager mode,
    the registered operator when compiling."""
    if _use_operator():
        need_grad = x.requires_grad and torch.is_grad_enabled()
        avec = alpha if isinstance(alpha, torch.Tensor) else None
        out, norm, _ = _focal_pass_op(x, target, softmax, index, float(gamma),
                                      None if alpha is None or avec is not None else float(alpha), avec, base,
                                      ignore_index, float(smoothing), reduce, need_grad)
        return out, norm.detach()
    return _Focal.apply(x, target, softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce)


def _reduce(out, norm, reduction, shape):
    if reduction == "none":
        return out.reshape(shape)
    if reduction == "sum":
        return out
    return out / torch.where(norm > 0, norm, torch.ones_like(norm))


def focal_loss(logits, target, mode, *, alpha=None, gamma=2.0, weight=None, ignore_index=None, label_smoothing=0.0,
               from_logits=True, reduction="mean"):
    r"""Focal loss (Lin et al. 2017, arXiv 1708.02002): cross-entropy scaled down on well-classified pixels.

    Sigmoid form (modes "binary", "multilabel"), per element, with :math:`p = \sigma(x)`:

    .. math::
        FL = -w_c\, \alpha_t\, (1 - p_t)^{\gamma} \left[y \log p + (1 - y) \log (1 - p)\right], \quad
        p_t = p\,y + (1 - p)(1 - y), \quad \alpha_t = \alpha\, y + (1 - \alpha)(1 - y)

    where y is the (possibly soft, label-smoothed ``y (1 - ls) + ls / 2``) target, :math:`w_c` = ``weight[c]``
    and ``alpha=None`` means :math:`\alpha_t = 1`.

    Softmax form (mode "multiclass"), per pixel, with :math:`p = \mathrm{softmax}(x)` over classes:

    .. math::
        FL = -\sum_c y_c\, w_c\, \alpha_c\, (1 - p_c)^{\gamma} \log p_c

    with :math:`y_c = (1 - ls)[c = t] + ls / C` for class indices t, or :math:`(1 - ls) g_c + ls / C` for class
    probabilities g; :math:`\alpha_c` is ``alpha`` (a float applies to every class, a sequence gives one per class).

    With gamma = 0 and no alpha this is exactly ``F.binary_cross_entropy_with_logits`` / ``F.cross_entropy``
    (weight, ignore_index and label_smoothing included).

    Args:
        logits: ``(N, C, *)`` logits, or probabilities with ``from_logits=False``; ``(N, *)`` or ``(N, 1, *)`` for
            "binary".
        target: "binary"/"multilabel": the logits' shape, values in [0, 1]; "multiclass": integer class indices
            ``(N, *)`` (any integer dtype) or class probabilities ``(N, C, *)``.
        mode: "binary", "multiclass" or "multilabel".
        alpha: balance factor: float in [0, 1] (sigmoid), or a sequence of C values; None disables it.
        gamma: focusing parameter (>= 0).
        weight: per-class weights ``(C,)``. As in PyTorch's losses, "mean" divides by the sum of the target
            classes' weights over valid pixels for multiclass class indices, and by the element count otherwise.
        ignore_index: target value (class index, or a value such as 255 in a binary/multilabel target) whose
            pixels contribute nothing and get zero gradient.
        label_smoothing: in [0, 1].
        from_logits: False: the input holds probabilities, clamped to [1e-7, 1 - 1e-7] (and renormalised over the
            classes for "multiclass", as Keras does) before the log.
        reduction: "mean" (over valid elements; pixels for "multiclass"), "sum" or "none".

    Returns:
        A scalar, or for "none" the loss map: the logits' shape (sigmoid) or ``(N, *)`` (multiclass), 0 where
        ignored. float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> probs, target = torch.tensor([0.6, 0.3, 0.7]), torch.tensor([1.0, 0.0, 1.0])
        >>> loss = seglosses.focal_loss(probs, target, "binary", alpha=0.25, gamma=2.0, from_logits=False,
        ...                             reduction="sum")
        >>> round(loss.item(), 7)
        0.0525338

    References:
        Lin, Goyal, Girshick, He, Dollar. Focal Loss for Dense Object Detection. ICCV 2017. arXiv 1708.02002.
    """
    inp = prepare(logits, target, mode, ignore_index)
    reduction = check_reduction(reduction)
    gamma = check_scalar("gamma", gamma, low=0.0)
    smoothing = check_scalar("label_smoothing", label_smoothing, low=0.0, high=1.0)
    ignore_index = check_ignore_index(ignore_index)
    check_bool("from_logits", from_logits)
    softmax = mode == "multiclass"
    w = class_vector("weight", weight, inp.c, logits.device)
    if alpha is None or isinstance(alpha, (torch.Tensor, list, tuple)):
        a = class_vector("alpha", alpha, inp.c, logits.device, high=None if softmax else 1.0)
    else:
        a = check_scalar("alpha", alpha, low=0.0, high=None if softmax else 1.0)
    x = inp.x if from_logits else probs_to_logits(inp.x, softmax)
    out, norm = focal_terms(x, inp.target, softmax, inp.index, gamma, a, w, ignore_index, smoothing,
                            reduction != "none")
    return _reduce(out, norm, reduction, inp.out_shape)


def sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2, reduction: str = "none"):
    r"""Drop-in for ``torchvision.ops.sigmoid_focal_loss``: same signature and numbers, finite gradients.

    .. math::
        FL = \alpha_t (1 - p_t)^{\gamma}\, \mathrm{BCE}(x, y), \quad p_t = p\,y + (1 - p)(1 - y), \quad
        \alpha_t = \alpha\, y + (1 - \alpha)(1 - y)

    Args:
        inputs: logits of any shape.
        targets: same shape, in [0, 1] (soft targets allowed).
        alpha: weight of the positives in (0, 1); a negative value disables the weighting (torchvision's rule).
        gamma: focusing exponent (>= 0).
        reduction: "none" (a map of ``inputs``' shape), "mean" (over all elements) or "sum".

    Returns:
        The loss, float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x, y = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0])
        >>> seglosses.sigmoid_focal_loss(x, y, reduction="sum").round(decimals=5)
        tensor(0.0174)

    References:
        Lin et al. 2017, arXiv 1708.02002; torchvision.ops.sigmoid_focal_loss.
    """
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(f"`inputs` and `targets` must be tensors; got {type(inputs).__name__} and "
                        f"{type(targets).__name__}")
    if inputs.shape != targets.shape:
        raise ValueError(f"`targets` must have the shape of `inputs` {tuple(inputs.shape)}; got "
                         f"{tuple(targets.shape)}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"Invalid Value for arg 'reduction': '{reduction} \n Supported reduction modes: 'none', "
                         "'mean', 'sum'")
    alpha = check_scalar("alpha", alpha, high=1.0)
    gamma = check_scalar("gamma", gamma, low=0.0)
    if not inputs.is_floating_point():
        raise TypeError(f"`inputs` must be a floating-point tensor; got dtype {inputs.dtype}")
    x, y = inputs.reshape(1, 1, -1), targets.reshape(1, 1, -1)
    out, norm = focal_terms(x, y, False, False, gamma, alpha if alpha >= 0 else None, None, None, 0.0,
                            reduction != "none")
    return _reduce(out, norm, reduction, inputs.shape)


class FocalLoss(LossModule):
    """Module form of :func:`focal_loss`: ``FocalLoss(mode, **options)(logits, target)``."""

    _fn = staticmethod(focal_loss)

    def _high(self, key):
        return 1.0 if key == "alpha" and self.mode != "multiclass" else None
