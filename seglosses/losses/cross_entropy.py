"""The cross-entropy family of Jadon's survey: cross-entropy, weighted and balanced cross-entropy.

Plain cross-entropy is the focal loss at gamma = 0 and runs on its fused pass. The weighted and balanced forms put
separate weights on the positive and the negative term of every class channel; in mode "multiclass" they are taken
one-vs-rest over the softmax probabilities, with ``log(1 - p_c)`` computed from the logits
(:mod:`seglosses.core.pixel`), so they stay finite at any logit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch

from seglosses.core.args import Mode, Reduction, beta_high, check_beta, check_reduction
from seglosses.core.checks import class_vector
from seglosses.core.docs import PIXEL_WEIGHT, fill_doc
from seglosses.core.module import LossModule
from seglosses.core.pixel import entry_weights, pixels, reduce_pixels, smoothed, target_counts, target_sum
from seglosses.losses.focal import focal_loss

_ARGS = """
    Args:
        logits: ``(N, C, *)`` logits (or probabilities with ``from_logits=False``); ``(N, *)`` or ``(N, 1, *)`` for
            mode "binary".
        target: "binary"/"multilabel": the logits' shape, values in [0, 1]; "multiclass": integer class indices
            ``(N, *)`` (any integer dtype) or class probabilities ``(N, C, *)``.
        mode: "binary", "multiclass" or "multilabel".
        {beta}
        ignore_index: target value whose elements (pixels, for "multiclass") contribute nothing and get zero gradient.
        {pixel_weight}
        label_smoothing: e in [0, 1]: the target becomes ``y (1 - e) + e / 2`` (``+ e / C`` for "multiclass").
        from_logits: False: the input holds probabilities, clamped to [1e-7, 1 - 1e-7] before the log.
        reduction: "mean" (over valid elements; pixels for "multiclass"), "sum" or "none".

    Returns:
        A scalar, or for "none" the loss map: the logits' shape (binary, multilabel) or ``(N, *)`` (multiclass),
        0 where ignored. float32 for half-precision input.
"""


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
                       weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
                       pixel_weight: torch.Tensor | None = None, label_smoothing: float = 0.0,
                       from_logits: bool = True, reduction: Reduction = "mean") -> torch.Tensor:
    r"""Cross-entropy: sigmoid binary cross-entropy per element, or softmax cross-entropy per pixel.

    .. math::
        \mathrm{BCE} = -w_c\left[y \log p + (1 - y) \log(1 - p)\right], \qquad
        \mathrm{CE} = -\sum_c w_c\, y_c \log p_c

    Exactly ``F.binary_cross_entropy_with_logits`` / ``F.cross_entropy`` (``weight``, ``ignore_index`` and
    ``label_smoothing`` included), as :func:`seglosses.focal_loss` with gamma = 0, whose fused pass it runs.
    Arguments as :func:`seglosses.focal_loss` without ``alpha`` and ``gamma`` (``pixel_weight`` included: "mean"
    divides by the sum of ``pixel_weight * weight[t]`` over the valid pixels for class indices, of the pixel weights
    otherwise).

    Example:
        >>> import torch, seglosses
        >>> x, t = torch.zeros(1, 2, 3), torch.tensor([[0, 1, 1]])
        >>> round(seglosses.cross_entropy_loss(x, t, "multiclass").item(), 6)  # ln 2
        0.693147

    References:
        Jadon. A survey of loss functions for semantic segmentation. CIBCB 2020. arXiv 2006.14822.
    """
    return focal_loss(logits, target, mode, gamma=0.0, weight=weight, ignore_index=ignore_index,
                      pixel_weight=pixel_weight, label_smoothing=label_smoothing, from_logits=from_logits,
                      reduction=reduction)


def _beta(beta, c, device, *, auto):
    if isinstance(beta, (torch.Tensor, list, tuple)):
        return class_vector("beta", beta, c, device, high=beta_high(auto))
    return check_beta(beta, balanced=auto, num_classes=c)


def _posneg(logits, target, mode, beta, balanced, ignore_index, pixel_weight, label_smoothing, from_logits,
            reduction):
    """``-(beta y log p + b (1 - y) log(1 - p))`` per class channel, b = 1 or 1 - beta; summed over classes for
    "multiclass"."""
    reduction = check_reduction(reduction)
    px = pixels(logits, target, mode, ignore_index=ignore_index, from_logits=from_logits,
                label_smoothing=label_smoothing, pixel_weight=pixel_weight)
    c, dt = px.inp.c, px.logp.dtype
    beta = _beta(beta, c, logits.device, auto=balanced)
    if isinstance(beta, str):  # HED: beta_c = share of valid negatives of class c in the batch (a constant)
        with torch.no_grad():  # (pixel weights: weighted shares)
            if px.softmax:
                valid = entry_weights(px)
                pos = (target_counts(px, valid) if px.t is not None else (px.g * valid.unsqueeze(1)).sum((0, 2)))
                total = valid.sum()
            elif px.weight is not None:
                valid = entry_weights(px)
                pos, total = (px.g * valid).sum((0, 2)), valid.sum((0, 2))
            else:
                pos = px.g.sum((0, 2))
                total = px.valid.to(dt).sum((0, 2)) if px.valid is not None else \
                    torch.full((), float(px.inp.n * px.inp.s), dtype=dt, device=logits.device)
            beta = torch.where(total > 0, 1 - pos / torch.where(total > 0, total, 1.0), 0.5)
    bvec = beta.to(dt).view(1, c, 1) if isinstance(beta, torch.Tensor) else beta
    neg = (1 - bvec) if balanced else 1.0
    if px.softmax:
        # sum_c [beta_c y_c log p_c + b_c (1 - y_c) log(1 - p_c)]
        #   = S[beta log p - b log(1 - p)] + sum_c b_c log(1 - p_c), S the target-weighted sum over classes
        negterm = neg * px.log1mp
        loss = -(target_sum(px, bvec * px.logp - negterm) + negterm.sum(1))
    else:
        y = smoothed(px)
        loss = -(bvec * y * px.logp + neg * (1 - y) * px.log1mp)
    return reduce_pixels(loss, px, reduction)


@fill_doc(args=_ARGS, pixel_weight=PIXEL_WEIGHT,
          beta="beta: weight of the positive term (>= 0): a number or one per class ``(C,)``.")
def weighted_cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
                                beta: float | Sequence[float] | torch.Tensor = 1.0, ignore_index: int | None = None,
                                pixel_weight: torch.Tensor | None = None, label_smoothing: float = 0.0,
                                from_logits: bool = True, reduction: Reduction = "mean") -> torch.Tensor:
    r"""Weighted cross-entropy (Jadon 2020, after Pihur et al. 2007): the positive term weighted by beta.

    .. math::
        \ell = -\left[\beta\, y \log p + (1 - y) \log (1 - p)\right]

    per class channel; beta > 1 lowers false negatives, beta < 1 false positives. In mode "multiclass" the terms
    are taken one-vs-rest over the softmax probabilities and summed over classes per pixel.

    {args}

    Example:
        >>> import torch, seglosses
        >>> x, y = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])
        >>> round(seglosses.weighted_cross_entropy_loss(x, y, "binary", beta=3.0).item(), 6)  # (3 + 1) ln 2 / 2
        1.386294

    References:
        Jadon. A survey of loss functions for semantic segmentation. CIBCB 2020. arXiv 2006.14822.
    """
    return _posneg(logits, target, mode, beta, False, ignore_index, pixel_weight, label_smoothing, from_logits,
                   reduction)


@fill_doc(args=_ARGS, pixel_weight=PIXEL_WEIGHT, beta='beta: in [0, 1]: a number, one per class ``(C,)``, or "auto".')
def balanced_cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
                                beta: float | Sequence[float] | torch.Tensor | Literal["auto"] = 0.5,
                                ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None,
                                label_smoothing: float = 0.0, from_logits: bool = True,
                                reduction: Reduction = "mean") -> torch.Tensor:
    r"""Balanced cross-entropy (Jadon 2020; Xie & Tu 2015): beta on the positive term, 1 - beta on the negative.

    .. math::
        \ell = -\left[\beta\, y \log p + (1 - \beta)(1 - y) \log (1 - p)\right]

    per class channel. ``beta="auto"`` sets, per class, beta to the share of (valid) negatives in the batch's
    target, as HED does (a constant for the gradient; with ``pixel_weight`` the weighted share). In mode
    "multiclass" the terms are taken one-vs-rest over the softmax probabilities and summed over classes per pixel.

    {args}

    Example:
        >>> import torch, seglosses
        >>> x, y = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])
        >>> round(seglosses.balanced_cross_entropy_loss(x, y, "binary", beta=0.75).item(), 6)  # ln 2 / 2
        0.346574

    References:
        Jadon. A survey of loss functions for semantic segmentation. CIBCB 2020. arXiv 2006.14822.
        Xie, Tu. Holistically-Nested Edge Detection. ICCV 2015. arXiv 1504.06375.
    """
    return _posneg(logits, target, mode, beta, True, ignore_index, pixel_weight, label_smoothing, from_logits,
                   reduction)


class CrossEntropyLoss(LossModule):
    """Module form of :func:`cross_entropy_loss`; takes the same keyword arguments."""

    _fn = staticmethod(cross_entropy_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, weight: Sequence[float] | torch.Tensor | None = None,
                     ignore_index: int | None = None, label_smoothing: float = 0.0, from_logits: bool = True,
                     reduction: Reduction = "mean") -> None: ...


class WeightedCrossEntropyLoss(LossModule):
    """Module form of :func:`weighted_cross_entropy_loss`; takes the same keyword arguments."""

    _fn = staticmethod(weighted_cross_entropy_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, beta: float | Sequence[float] | torch.Tensor = 1.0,
                     ignore_index: int | None = None, label_smoothing: float = 0.0, from_logits: bool = True,
                     reduction: Reduction = "mean") -> None: ...


class BalancedCrossEntropyLoss(LossModule):
    """Module form of :func:`balanced_cross_entropy_loss`; takes the same keyword arguments."""

    _fn = staticmethod(balanced_cross_entropy_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, beta: float | Sequence[float] | torch.Tensor | Literal["auto"] = 0.5,
                     ignore_index: int | None = None, label_smoothing: float = 0.0, from_logits: bool = True,
                     reduction: Reduction = "mean") -> None: ...

    def _high(self, key):
        return 1.0 if key == "beta" else None
