"""Focal losses (Lin et al. 2017): sigmoid (binary, multilabel), softmax (multiclass) and a torchvision drop-in.

Forward and gradient are computed together, block by block in float32, from logits in log space; the forward
pass keeps only the gradient buffer (as apex's fused focal loss does), so the backward pass is one multiply.
The modulating factor is built from ``sigmoid(-x)`` / ``-expm1(log p)`` (never ``1 - p``) and its derivative from
the bounded ratio ``p (1 - p) / (1 - p_t)``, so loss and gradient are finite for any logit and any gamma >= 0
(torchvision's gradient is NaN for gamma < 1 at saturated logits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from seglosses.core.args import Mode, Reduction, check_bool, check_ignore_index, check_reduction, check_scalar
from seglosses.core.checks import class_vector, prepare, probs_to_logits
from seglosses.core.module import LossModule
from seglosses.kernels.ops import FocalSpec, focal_terms


def _reduce(out, norm, reduction, shape):
    if reduction == "none":
        return out.reshape(shape)
    if reduction == "sum":
        return out
    return out / torch.where(norm > 0, norm, torch.ones_like(norm))


def focal_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
               alpha: float | Sequence[float] | torch.Tensor | None = None, gamma: float = 2.0,
               weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
               label_smoothing: float = 0.0, from_logits: bool = True, reduction: Reduction = "mean") -> torch.Tensor:
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
    spec = FocalSpec(softmax, inp.index, gamma, a, w, ignore_index, smoothing, reduction != "none")
    out, norm = focal_terms(x, inp.target, spec)
    return _reduce(out, norm, reduction, inp.out_shape)


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
