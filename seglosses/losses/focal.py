"""Focal losses (Lin et al. 2017): sigmoid (binary, multilabel), softmax (multiclass) and a torchvision drop-in.

Forward and gradient are computed together, block by block in float32, from logits in log space; the forward
pass keeps only the gradient buffer (as apex's fused focal loss does), so the backward pass is one multiply.
The modulating factor is built from ``sigmoid(-x)`` / ``-expm1(log p)`` (never ``1 - p``) and its derivative from
the bounded ratio ``p (1 - p) / (1 - p_t)``, so loss and gradient are finite for any logit and any gamma >= 0
(torchvision's gradient is NaN for gamma < 1 at saturated logits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch

from seglosses.core.args import Mode, Reduction, check_bool, check_ignore_index, check_reduction, check_scalar
from seglosses.core.checks import Inputs, class_vector, pixel_weights, prepare, probs_to_logits, to_compute
from seglosses.core.docs import PIXEL_WEIGHT, fill_doc
from seglosses.core.module import LossModule
from seglosses.core.pixel import pixels, smoothed, target_sum
from seglosses.core.targets import index_block
from seglosses.kernels.ops import FocalSpec, focal_terms


def _reduce(out, norm, reduction, shape):
    if reduction == "none":
        return out.reshape(shape)
    if reduction == "sum":
        return out
    return out / torch.where(norm > 0, norm, torch.ones_like(norm))


@fill_doc(pixel_weight=PIXEL_WEIGHT)
def focal_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
               alpha: float | Sequence[float] | torch.Tensor | None = None, gamma: float = 2.0,
               weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
               pixel_weight: torch.Tensor | None = None, label_smoothing: float = 0.0, from_logits: bool = True,
               reduction: Reduction = "mean") -> torch.Tensor:
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
        {pixel_weight}
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
    f = focal_parts(logits, target, mode, alpha=alpha, gamma=gamma, weight=weight, ignore_index=ignore_index,
                    label_smoothing=label_smoothing, from_logits=from_logits, reduction=reduction,
                    pixel_weight=pixel_weight)
    return _reduce(f.out, f.norm, f.reduction, f.inp.out_shape)


class FocalParts(NamedTuple):
    """The checked inputs and options of a focal loss and its fused pass's output (the map, or its sum, and the
    normaliser of the mean), shared by the losses built on it (Poly-1, the hard-pixel losses)."""

    inp: Inputs
    out: torch.Tensor
    norm: torch.Tensor
    alpha: float | torch.Tensor | None
    weight: torch.Tensor | None
    gamma: float
    smoothing: float
    reduction: str
    pixel_weight: torch.Tensor | None = None  # (N, 1, S) / (N, C, S) (pixel_weights), as the pass took it


def focal_parts(logits, target, mode, *, alpha, gamma, weight, ignore_index, label_smoothing, from_logits,
                reduction, reduce=None, pixel_weight=None) -> FocalParts:
    """Check the inputs and options of :func:`focal_loss` and run its fused pass: the sum (``reduce``; default:
    unless ``reduction`` is "none") or the map; weighted by ``pixel_weight`` (one weight per pixel for the
    softmax)."""
    inp = prepare(logits, target, mode, ignore_index)
    reduction = check_reduction(reduction)
    reduce = reduction != "none" if reduce is None else reduce
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
    pw = pixel_weights(pixel_weight, logits, mode, inp, per_class=not softmax)
    spec = FocalSpec(softmax, inp.index, gamma, a, w, ignore_index, smoothing, reduce)
    out, norm = focal_terms(x, inp.target, spec) if pw is None else focal_terms(x, inp.target, spec, weight=pw)
    return FocalParts(inp, out, norm, a, w, gamma, smoothing, reduction, pw)


def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2,
                       reduction: Reduction = "none") -> torch.Tensor:
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

    It takes no ``pixel_weight``: its signature is torchvision's; weigh its ``"none"`` map, or call
    :func:`focal_loss` (mode "binary"), which takes one.

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
    spec = FocalSpec(False, False, gamma, alpha if alpha >= 0 else None, None, None, 0.0, reduction != "none")
    out, norm = focal_terms(x, y, spec)
    return _reduce(out, norm, reduction, inputs.shape)


def _poly_index_term(f: FocalParts, ignore_index, from_logits) -> torch.Tensor:
    """``w_t a_t (1 - p_t)^(gamma + 1)`` per pixel ``(N, S)`` for class indices without label smoothing: a
    log-softmax and a gather, no per-class power; 0 at ignored pixels (whose logits are replaced first, so a NaN
    there reaches nothing)."""
    inp = f.inp
    t, valid = index_block(inp.target, ignore_index, inp.c)
    x = inp.x
    if valid is not None:
        x = torch.where(valid.unsqueeze(1), x, 0.0 if from_logits else 0.5)
    x = to_compute(x) if from_logits else probs_to_logits(x, True)
    logpt = torch.log_softmax(x, 1).gather(1, t.unsqueeze(1)).squeeze(1)
    term = (-torch.expm1(logpt)).pow(f.gamma + 1)
    if f.pixel_weight is not None:
        term = term * f.pixel_weight.squeeze(1)  # (selected away below where ignored: a NaN weight reaches nothing)
    for vec in (f.weight, f.alpha):
        if isinstance(vec, torch.Tensor):
            term = term * vec.to(term.dtype)[t]
        elif vec is not None:
            term = term * vec
    return term if valid is None else torch.where(valid, term, 0.0)


def poly_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, epsilon: float = 1.0,
              alpha: float | Sequence[float] | torch.Tensor | None = None, gamma: float = 0.0,
              weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
              pixel_weight: torch.Tensor | None = None, label_smoothing: float = 0.0, from_logits: bool = True,
              reduction: Reduction = "mean") -> torch.Tensor:
    r"""Poly-1 loss (Leng et al. 2022, arXiv 2204.12511): the focal loss (cross-entropy at gamma = 0) plus epsilon
    times the leading term of its polynomial expansion in :math:`(1 - p_t)`.

    Sigmoid form (modes "binary", "multilabel"), per element, with the notation of :func:`focal_loss`:

    .. math::
        \mathrm{Poly}_1 = FL + \epsilon\, w_c\, \alpha_t\, (1 - p_t)^{\gamma + 1}, \quad
        1 - p_t = p\,(1 - y) + (1 - p)\,y

    Softmax form (mode "multiclass"), per pixel:

    .. math::
        \mathrm{Poly}_1 = \sum_c y_c\, w_c\, \alpha_c \left[(1 - p_c)^{\gamma} (-\log p_c)
            + \epsilon\, (1 - p_c)^{\gamma + 1}\right]

    For a one-hot target the sum is the paper's :math:`FL + \epsilon (1 - p_t)^{\gamma + 1}`; at gamma = 0 and for
    any (soft, label-smoothed) target it is the paper's :math:`CE + \epsilon (1 - p_t)` with
    :math:`p_t = \sum_c y_c p_c` (its reference code's ``pt``). For soft targets and gamma > 0 the power is taken per
    class, as the focal term is. ``alpha`` and ``weight`` weigh the polynomial term as they weigh the focal term (the
    Taylor expansion of :math:`\alpha_t FL`; the authors' focal snippet leaves alpha off the polynomial term).
    :math:`1 - p` is computed from the logits (``sigmoid(-x)``, ``-expm1(log p)``), never as ``1 - p`` of a rounded p.
    The mean's normaliser, the ignored pixels and the output are those of :func:`focal_loss`, so
    ``poly_loss(..., epsilon=0) == focal_loss(...)``.

    Args:
        logits, target, mode, alpha, weight, ignore_index, pixel_weight, label_smoothing, from_logits, reduction: as
            :func:`focal_loss` (``pixel_weight`` multiplies the whole term of each pixel, polynomial included).
        epsilon: the coefficient of the polynomial term (>= -1, where the loss stays >= 0); the paper's best
            values are 1 (ImageNet, CE), -1 (COCO detection, focal), 2 (segmentation of the paper's appendix).
        gamma: focusing parameter (>= 0); 0 (default) is Poly-1 of the cross-entropy.

    Returns:
        As :func:`focal_loss`: a scalar, or for "none" the loss map, 0 where ignored.

    Example:
        >>> import torch, seglosses
        >>> x, t = torch.zeros(1, 2, 3), torch.tensor([[0, 1, 1]])
        >>> round(seglosses.poly_loss(x, t, "multiclass", epsilon=1.0).item(), 6)  # ln 2 + 1/2
        1.193147

    References:
        Leng, Xu, Tan, Yu, Ma, Wei, Anguelov, Tan. PolyLoss: A Polynomial Expansion Perspective of Classification
        Loss Functions. ICLR 2022. arXiv 2204.12511.
    """
    f = focal_parts(logits, target, mode, alpha=alpha, gamma=gamma, weight=weight, ignore_index=ignore_index,
                    label_smoothing=label_smoothing, from_logits=from_logits, reduction=reduction,
                    pixel_weight=pixel_weight)
    epsilon = check_scalar("epsilon", epsilon, low=-1.0)
    if mode == "multiclass" and f.inp.index and not f.smoothing:
        term = _poly_index_term(f, ignore_index, from_logits)
        if f.reduction == "none":
            return f.out.reshape(f.inp.out_shape) + epsilon * term.reshape(f.inp.out_shape)
        return _reduce(f.out + epsilon * term.sum(), f.norm, f.reduction, f.inp.out_shape)
    px = pixels(logits, target, mode, ignore_index=ignore_index, from_logits=from_logits,
                label_smoothing=f.smoothing, complement=mode != "multiclass", pixel_weight=pixel_weight)
    dt, c = px.logp.dtype, px.inp.c
    coef = None
    if f.weight is not None:
        coef = f.weight.to(dt).view(1, c, 1)
    if f.alpha is not None:
        a = f.alpha.to(dt).view(1, c, 1) if isinstance(f.alpha, torch.Tensor) else f.alpha
        if not px.softmax:
            y = smoothed(px)
            a = a * y + (1 - a) * (1 - y)
        coef = a if coef is None else coef * a
    if px.softmax:
        term = (-torch.expm1(px.logp)).pow(f.gamma + 1)  # (1 - p_c)^(gamma + 1)
        term = target_sum(px, term if coef is None else term * coef)
    else:
        y = smoothed(px)
        term = (px.logp.exp() * (1 - y) + px.log1mp.exp() * y).pow(f.gamma + 1)  # (1 - p_t)^(gamma + 1)
        term = term if coef is None else term * coef
    if px.weight is not None:
        term = term * px.weight  # (0 at ignored entries)
    if px.valid is not None:
        term = torch.where(px.valid, term, 0.0)
    if f.reduction == "none":
        return f.out.reshape(f.inp.out_shape) + epsilon * term.reshape(f.inp.out_shape)
    return _reduce(f.out + epsilon * term.sum(), f.norm, f.reduction, f.inp.out_shape)


class FocalLoss(LossModule):
    """Module form of :func:`focal_loss`: ``FocalLoss(mode, **options)(logits, target)``."""

    _fn = staticmethod(focal_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, alpha: float | Sequence[float] | torch.Tensor | None = None,
                     gamma: float = 2.0, weight: Sequence[float] | torch.Tensor | None = None,
                     ignore_index: int | None = None, label_smoothing: float = 0.0, from_logits: bool = True,
                     reduction: Reduction = "mean") -> None: ...

    def _high(self, key):
        return 1.0 if key == "alpha" and self.mode != "multiclass" else None


class PolyLoss(LossModule):
    """Module form of :func:`poly_loss`: ``PolyLoss(mode, **options)(logits, target)``."""

    _fn = staticmethod(poly_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, epsilon: float = 1.0,
                     alpha: float | Sequence[float] | torch.Tensor | None = None, gamma: float = 0.0,
                     weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
                     label_smoothing: float = 0.0, from_logits: bool = True,
                     reduction: Reduction = "mean") -> None: ...

    def _high(self, key):
        return 1.0 if key == "alpha" and self.mode != "multiclass" else None
