"""Overlap (region) losses: Dice, Jaccard, Tversky, focal-Tversky and generalized Dice, all over one statistics core.

Data flow: :func:`class_statistics` (input checks, probabilities, the soft per-class tp, fp, fn of the fused region
pass, over the batch or per image; never a one-hot tensor) -> a score per class (:mod:`seglosses.core.formulas`) ->
loss and reduction (:mod:`seglosses.core.score`). See ``docs/semantics.md`` for the full contract.

Empty-class policy: a class with no target and no predicted mass scores 1 (loss 0); a class absent from the target
but predicted is penalised (its loss tends to 1), so false positives on absent classes count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch

from seglosses.core.args import (
    Mode,
    Reduction,
    check_bool,
    check_classes,
    check_reduction,
    check_scalar,
    check_weight_type,
)
from seglosses.core.checks import activation, class_vector, pixel_weights, prepare, reduce_classes, take
from seglosses.core.dist import all_reduce_sum, is_active
from seglosses.core.docs import PIXEL_WEIGHT, fill_doc
from seglosses.core.formulas import check_alpha_beta, dice_score, tversky_score
from seglosses.core.module import LossModule
from seglosses.core.pixel import pixels
from seglosses.core.score import ratio_loss, reduce_class_losses, reduce_rows, score_loss
from seglosses.kernels.ops import region_stats

_ARGS = """
    Args:
        logits: ``(N, C, *)`` logits (or probabilities with ``from_logits=False``); ``(N, *)`` or ``(N, 1, *)`` for
            mode "binary".
        target: mode "binary"/"multilabel": the logits' shape, values in [0, 1] (hard or soft); "multiclass":
            integer class indices ``(N, *)`` (any integer dtype) or class probabilities ``(N, C, *)``.
        mode: "binary", "multiclass" or "multilabel".
        weight_type: the class weights r_c: "square" (1 / G_c^2), "simple" (1 / G_c) or "uniform" (1).
        smooth: s, added to numerator and denominator (>= 0).
        r: weight of the sensitivity term in [0, 1].
        per_image: compute the statistics per image instead of over the whole batch.
        log_loss: use ``-log(max(score, 1e-7))`` instead of ``1 - score``.
        weight: per-class weights ``(C,)``; "mean" is the weighted mean ``sum_c w_c L_c / sum_c w_c``.
        classes: class indices to keep (for example all but background); None keeps all.
        ignore_index: target value whose pixels (elements, for binary/multilabel) are left out of every sum.
        {pixel_weight}
        from_logits: the input holds logits (sigmoid/softmax applied here); False: probabilities used as given.
        reduction: "mean", "sum" or "none".
        dist_sync: with ``torch.distributed`` initialized, all-reduce the statistics over the ranks of
            ``process_group`` before the score (``per_image``: the mean or sum runs over every rank's images), so
            every rank computes the loss of the global batch and DDP's gradient averaging gives its exact gradient;
            the backward pass is then a collective. Without a process group: the local loss.
        process_group: the group for ``dist_sync`` (default: the default group).
"""

_RETURNS = """
    Returns:
        A scalar for "mean"/"sum"; for "none" the weighted per-class losses ``(K,)``, or ``(N, K)`` with
        ``per_image``, K being the number of kept classes. float32 for half-precision input.
"""

_GDL_RETURNS = """
    Returns:
        A scalar for "mean"/"sum"; for "none" a 0-d tensor, or ``(N,)`` with ``per_image``. float32 for
        half-precision input.
"""

#: Args and Returns of the losses with one value per class.
_doc = fill_doc(args=_ARGS, returns=_RETURNS, pixel_weight=PIXEL_WEIGHT)


def class_statistics(logits, target, mode, *, per_image, classes, weight, ignore_index, from_logits, dist_sync=False,
                     process_group=None, volume_weights=None, pixel_weight=None):
    """Soft per-class statistics ``tp, fp, fn, g`` ``(R, K)`` (R = N with ``per_image``, else 1; K kept classes)
    and the class weights ``w`` ``(K,)`` (None without ``weight``), in the statistics' dtype; with ``pixel_weight``,
    each pixel's share of every sum multiplied by its weight (the fused region pass's ``weight``).

    ``g`` is the target volume of each class, or ``volume_weights(g)`` when given (generalized Dice: weights from all
    C volumes, computed after the all-reduce and before the selection of ``classes``)."""
    inp = prepare(logits, target, mode, ignore_index)  # (checks ignore_index)
    check_bool("per_image", per_image)
    check_bool("from_logits", from_logits)
    classes = check_classes(classes, inp.c)
    w = class_vector("weight", weight, inp.c, logits.device)
    pw = pixel_weights(pixel_weight, logits, mode, inp)
    extra = {} if pw is None else {"weight": pw}  # (None: the unweighted pass, exactly)
    tp, fp, fn, g = region_stats(inp.x, inp.target, act=activation(mode, from_logits), index=inp.index,
                                 ignore_index=ignore_index, per_image=per_image, **extra)
    if check_bool("dist_sync", dist_sync) and not per_image:  # one all-reduce of 4 x C numbers
        tp, fp, fn, g = all_reduce_sum(torch.stack([tp, fp, fn, g]), process_group).unbind(0)
    if volume_weights is not None:
        g = volume_weights(g)
    if classes is not None:
        tp, fp, fn, g = (take(t, classes) for t in (tp, fp, fn, g))
        w = None if w is None else take(w, classes, 0)
    if w is not None:
        w = w.to(tp.dtype)
    return tp, fp, fn, g, w


def overlap_loss(logits, target, mode, score, *, smooth, per_image, log_loss, weight, classes, ignore_index,
                 from_logits, reduction, dist_sync, process_group, power=None, transform=None, pixel_weight=None):
    """The loss of the score ``score(tp, fp, fn, smooth) -> (err, num)``: checks, :func:`class_statistics`,
    :func:`score_loss`."""
    reduction = check_reduction(reduction)
    smooth = check_scalar("smooth", smooth, low=0.0)
    check_bool("log_loss", log_loss)
    tp, fp, fn, _, w = class_statistics(logits, target, mode, per_image=per_image, classes=classes, weight=weight,
                                        ignore_index=ignore_index, from_logits=from_logits, dist_sync=dist_sync,
                                        process_group=process_group, pixel_weight=pixel_weight)
    return score_loss(score(tp, fp, fn, smooth), w, per_image=per_image, log_loss=log_loss, reduction=reduction,
                      power=power, transform=transform, sync=dist_sync and is_active(), group=process_group)


@_doc
def dice_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, smooth: float = 1e-5, per_image: bool = False,
              log_loss: bool = False, weight: Sequence[float] | torch.Tensor | None = None,
              classes: Sequence[int] | None = None, ignore_index: int | None = None,
              pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
              reduction: Reduction = "mean", dist_sync: bool = False,
              process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Dice loss (Milletari et al. 2016, arXiv 1606.04797), one minus the soft Dice score per class.

    .. math::
        \mathrm{Dice}_c = \frac{2\,tp_c + s}{2\,tp_c + fp_c + fn_c + s}, \qquad L_c = 1 - \mathrm{Dice}_c

    with tp, fp, fn the soft per-class statistics (sums of probabilities p against the target g over the valid
    pixels, L1 form for soft targets) and s = ``smooth``.

    {args}

    {returns}

    Example:
        >>> import torch, seglosses
        >>> logits = torch.tensor([[[4.0, -4.0], [-4.0, 4.0]]])       # (N=1, C=2, S=2)
        >>> target = torch.tensor([[0, 1]])
        >>> round(seglosses.dice_loss(logits, target, "multiclass").item(), 4)  # 2 sigmoid(-8) / 2 per class
        0.0003

    References:
        Milletari, Navab, Ahmadi. V-Net. 3DV 2016. arXiv 1606.04797.
        Wang, Blaschko. Jaccard Metric Losses. JMLR 2023 (L1 form of the soft statistics).
    """
    return overlap_loss(logits, target, mode, dice_score, smooth=smooth, per_image=per_image,
                        log_loss=log_loss, weight=weight, classes=classes, ignore_index=ignore_index,
                        from_logits=from_logits, reduction=reduction, dist_sync=dist_sync,
                        process_group=process_group, pixel_weight=pixel_weight)


@_doc
def jaccard_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, smooth: float = 1e-5,
                 per_image: bool = False, log_loss: bool = False, weight: Sequence[float] | torch.Tensor | None = None,
                 classes: Sequence[int] | None = None, ignore_index: int | None = None,
                 pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                 reduction: Reduction = "mean", dist_sync: bool = False,
                 process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Jaccard (soft IoU) loss (Rahman & Wang 2016), one minus the soft IoU per class.

    .. math::
        \mathrm{J}_c = \frac{tp_c + s}{tp_c + fp_c + fn_c + s}, \qquad L_c = 1 - \mathrm{J}_c

    {args}

    {returns}

    Example:
        >>> import torch, seglosses
        >>> logits = torch.tensor([[[4.0, -4.0], [-4.0, 4.0]]])
        >>> round(seglosses.jaccard_loss(logits, torch.tensor([[0, 1]]), "multiclass").item(), 4)
        0.0007

    References:
        Rahman, Wang. Optimizing Intersection-over-Union in Deep Neural Networks for Image Segmentation. ISVC 2016.
    """
    return overlap_loss(logits, target, mode, tversky_score(1.0, 1.0), smooth=smooth, per_image=per_image,
                        log_loss=log_loss, weight=weight, classes=classes, ignore_index=ignore_index,
                        from_logits=from_logits, reduction=reduction, dist_sync=dist_sync,
                        process_group=process_group, pixel_weight=pixel_weight)


@_doc
def tversky_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, alpha: float = 0.3, beta: float = 0.7,
                 smooth: float = 1e-5, per_image: bool = False, log_loss: bool = False,
                 weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                 ignore_index: int | None = None,
                 pixel_weight: torch.Tensor | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                 dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Tversky loss (Salehi et al. 2017, arXiv 1706.05721): Dice with separate weights on errors.

    .. math::
        T_c = \frac{tp_c + s}{tp_c + \alpha\, fp_c + \beta\, fn_c + s}, \qquad L_c = 1 - T_c

    ``alpha`` weighs false positives and ``beta`` false negatives; alpha = beta = 0.5 is Dice, alpha = beta = 1 is
    Jaccard. The default (0.3, 0.7) favours recall.

    {args}

    {returns}

    Example:
        >>> import torch, seglosses
        >>> logits = torch.tensor([[[4.0, -4.0], [-4.0, 4.0]]])
        >>> round(seglosses.tversky_loss(logits, torch.tensor([[0, 1]]), "multiclass").item(), 4)
        0.0003

    References:
        Salehi, Erdogmus, Gholipour. Tversky loss function for image segmentation using 3D fully convolutional
        deep networks. MLMI 2017. arXiv 1706.05721.
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    return overlap_loss(logits, target, mode, tversky_score(alpha, beta), smooth=smooth, per_image=per_image,
                        log_loss=log_loss, weight=weight, classes=classes, ignore_index=ignore_index,
                        from_logits=from_logits, reduction=reduction, dist_sync=dist_sync,
                        process_group=process_group, pixel_weight=pixel_weight)


@_doc
def focal_tversky_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, alpha: float = 0.3, beta: float = 0.7,
                       gamma: float = 0.75, smooth: float = 1e-5, per_image: bool = False, log_loss: bool = False,
                       weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                       ignore_index: int | None = None,
                       pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                       reduction: Reduction = "mean",
                       dist_sync: bool = False,
                       process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Focal Tversky loss (Abraham & Khan 2019, arXiv 1810.07842): the Tversky loss per class raised to gamma.

    .. math::
        L_c = (1 - T_c)^{\gamma}

    with :math:`T_c` the Tversky index of :func:`tversky_loss`. gamma < 1 (default 0.75) raises the loss of
    classes that are already well segmented less than of those that are not. The base loss is floored at the
    smallest normal float32 before the power, so the gradient stays finite where a class is perfect.

    {args}

    {returns}

    Example:
        >>> import torch, seglosses
        >>> logits = torch.tensor([[[4.0, -4.0], [-4.0, 4.0]]])
        >>> round(seglosses.focal_tversky_loss(logits, torch.tensor([[0, 1]]), "multiclass").item(), 4)
        0.0025

    References:
        Abraham, Khan. A Novel Focal Tversky loss function with improved Attention U-Net for lesion segmentation.
        ISBI 2019. arXiv 1810.07842.
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    gamma = check_scalar("gamma", gamma, low=0.0)
    return overlap_loss(logits, target, mode, tversky_score(alpha, beta), smooth=smooth, per_image=per_image,
                        log_loss=log_loss, weight=weight, classes=classes, ignore_index=ignore_index,
                        from_logits=from_logits, reduction=reduction, power=gamma, dist_sync=dist_sync,
                        process_group=process_group, pixel_weight=pixel_weight)


def _gdl_weights(g, weight_type):
    """Sudre's class weights from target volumes ``g`` (R, C); absent classes get the row's largest weight."""
    if weight_type == "uniform":
        return torch.ones_like(g)
    vol = g if weight_type == "simple" else g * g
    present = vol > 0
    r = 1 / torch.where(present, vol, torch.ones_like(vol))
    if r.shape[-1] == 0:  # no class (C = 0): no weight; the loss is 0 as every loss's is there
        return r
    largest = torch.where(present, r, torch.zeros_like(r)).amax(-1, keepdim=True)
    fill = torch.where(largest > 0, largest, torch.ones_like(largest))
    return torch.where(present, r, fill.expand_as(r))


@fill_doc(args=_ARGS, returns=_GDL_RETURNS, pixel_weight=PIXEL_WEIGHT)
def generalized_dice_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
                          weight_type: Literal["square", "simple", "uniform"] = "square", smooth: float = 1e-5,
                          per_image: bool = False, log_loss: bool = False,
                          weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                          ignore_index: int | None = None,
                          pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                          reduction: Reduction = "mean",
                          dist_sync: bool = False,
                          process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Generalized Dice loss (Sudre et al. 2017, arXiv 1707.03237): one Dice over all classes, each class weighted.

    .. math::
        L = 1 - \frac{2 \sum_c r_c\, tp_c + s}{\sum_c r_c (2\, tp_c + fp_c + fn_c) + s}, \qquad
        r_c = \frac{1}{G_c^2}\ (\text{"square"}),\ \frac{1}{G_c}\ (\text{"simple"}),\ 1\ (\text{"uniform"})

    where :math:`G_c` is the target volume of class c. Infinite weights of classes absent from the target are
    replaced by the largest finite weight (by 1 if no class is present), so false positives on absent classes
    still count. ``weight`` multiplies :math:`r_c`.

    {args}

    {returns}

    Example:
        >>> import torch, seglosses
        >>> logits = torch.tensor([[[4.0, -4.0], [-4.0, 4.0]]])
        >>> round(seglosses.generalized_dice_loss(logits, torch.tensor([[0, 1]]), "multiclass").item(), 4)
        0.0003

    References:
        Sudre, Li, Vercauteren, Ourselin, Cardoso. Generalised Dice overlap as a deep learning loss function for
        highly unbalanced segmentations. DLMIA 2017. arXiv 1707.03237.
    """
    reduction = check_reduction(reduction)
    check_weight_type(weight_type)
    smooth = check_scalar("smooth", smooth, low=0.0)
    check_bool("log_loss", log_loss)
    tp, fp, fn, r, w = class_statistics(logits, target, mode, per_image=per_image, classes=classes, weight=weight,
                                        ignore_index=ignore_index, from_logits=from_logits, dist_sync=dist_sync,
                                        process_group=process_group, pixel_weight=pixel_weight,
                                        volume_weights=lambda g: _gdl_weights(g, weight_type))
    if w is not None:
        r = r * w
    err = (r * (fp + fn)).sum(-1)
    loss = ratio_loss(err, (r * (2 * tp)).sum(-1) + smooth, log_loss)
    if not per_image:
        return reduce_classes(loss[0], None, reduction)
    if reduction == "none":
        return loss
    # one value per image: the mean / sum over images (of every rank with dist_sync)
    return reduce_rows(loss.unsqueeze(-1), None, reduction, dist_sync and is_active(), process_group)


def _log_cosh(x):
    """log(cosh(x)) = log1p(2 sinh(x / 2)^2): no cancellation near 0; its derivative is tanh(x)."""
    return torch.log1p(2 * torch.sinh(x / 2) ** 2)


@_doc
def log_cosh_dice_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, smooth: float = 1e-5,
                       per_image: bool = False, weight: Sequence[float] | torch.Tensor | None = None,
                       classes: Sequence[int] | None = None, ignore_index: int | None = None,
                       pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                       reduction: Reduction = "mean", dist_sync: bool = False,
                       process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Log-cosh Dice loss (Jadon 2020, arXiv 2006.14822): the Dice loss of each class through log(cosh(.)).

    .. math::
        L_c = \log\cosh\left(1 - \mathrm{Dice}_c\right)

    with :math:`\mathrm{Dice}_c` the soft Dice of :func:`dice_loss`. log cosh is x^2 / 2 near 0 and |x| - log 2
    far from it, a smoothed Dice loss whose gradient tanh is bounded. Jadon's code applies it to the Dice loss of
    the whole batch; for one class (mode "binary") that is the same. Computed as log1p(2 sinh(x / 2)^2), exact
    near 0. Options as :func:`dice_loss` without ``log_loss``.

    {args}

    {returns}

    Example:
        >>> import torch, seglosses
        >>> x, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, 0.0]]])
        >>> round(seglosses.log_cosh_dice_loss(x, t, "binary", smooth=0.0).item(), 6)  # log cosh(0.5)
        0.120115

    References:
        Jadon. A survey of loss functions for semantic segmentation. CIBCB 2020. arXiv 2006.14822.
    """
    return overlap_loss(logits, target, mode, dice_score, smooth=smooth, per_image=per_image, log_loss=False,
                        weight=weight, classes=classes, ignore_index=ignore_index, from_logits=from_logits,
                        reduction=reduction, dist_sync=dist_sync, process_group=process_group, transform=_log_cosh,
                        pixel_weight=pixel_weight)


def _squared_error_sums(logits, target, mode, *, per_image, ignore_index, from_logits, pixel_weight=None):
    """Per-class ``sum (g - p)^2 g``, ``sum (g - p)^2 (1 - g)``, ``sum g``, ``sum (1 - g)`` over the valid elements,
    per image ``(N, C)`` or over the batch ``(1, C)``; class-index targets through scatter-adds, no one-hot. With
    ``pixel_weight``, every term of every sum multiplied by its pixel's weight."""
    from seglosses.kernels.blocked import class_sums

    px = pixels(logits, target, mode, ignore_index=ignore_index, from_logits=from_logits, complement=False,
                pixel_weight=pixel_weight, per_class_weight=True)
    wt = px.weight  # (N, 1 | C, S), 0 at ignored elements; None: no weights
    if wt is not None and wt.dim() == 2:
        wt = wt.unsqueeze(1)
    # probabilities as given with from_logits=False (as every region loss), no clamping
    if from_logits:
        p = px.logp.exp()
    else:  # (ignored elements: 0, selected, as pixels() does for the logits)
        p = px.inp.x.to(px.logp.dtype)
        if px.valid is not None:
            p = torch.where(px.valid.unsqueeze(1) if px.t is not None else px.valid, p, 0.0)
    n, c, _ = p.shape
    if px.t is not None:
        v = None if px.valid is None else px.valid.to(p.dtype)
        pm = p if v is None else p * v.unsqueeze(1)
        pt = pm.gather(1, px.t.unsqueeze(1)).squeeze(1)       # p of the target class (0 where ignored)
        if from_logits:  # 1 - p_t, accurate near p_t = 1
            miss = -torch.expm1(px.logp.gather(1, px.t.unsqueeze(1)).squeeze(1))
        else:
            miss = 1 - p.gather(1, px.t.unsqueeze(1)).squeeze(1)
        if wt is None:
            ones = torch.ones_like(pt) if v is None else v
        else:  # the weight of the target class's entry (0 where ignored)
            ones = wt.gather(1, px.t.unsqueeze(1)).squeeze(1) if wt.shape[1] > 1 else wt[:, 0]
        a, b, g = (torch.zeros(n, c, dtype=p.dtype, device=p.device) for _ in range(3))
        class_sums(a, px.t, miss * miss * ones)
        class_sums(b, px.t, pt * pt * (1 if wt is None else ones))
        class_sums(g, px.t, ones)
        sq = pm * pm if wt is None else pm * pm * wt
        b = sq.sum(-1) - b                                     # sum over the other classes' pixels of p_c^2
        total = ones.sum(-1, keepdim=True) if wt is None else wt.sum(-1)
        neg = total - g
    else:
        g_ = px.g
        v = None if px.valid is None else px.valid.to(p.dtype)
        if wt is not None:
            v = wt  # (0 at ignored elements)
        err = (g_ - p) ** 2 if v is None else (g_ - p) ** 2 * v
        a = (err * g_).sum(-1)
        b = (err * (1 - g_)).sum(-1)
        g = g_.sum(-1) if wt is None else (g_ * wt).sum(-1)
        neg = ((1 - g_) if v is None else (1 - g_) * v).sum(-1)
    if not per_image:
        a, b, g, neg = (t.sum(0, keepdim=True) for t in (a, b, g, neg))
    if px.t is not None:  # b was a difference of two sums: exactly 0 without negatives, never below 0
        b = torch.where(neg > 0, b.clamp_min(0.0), 0.0)
    return a, b, g, neg


@_doc
def sensitivity_specificity_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, r: float = 0.05,
                                 smooth: float = 1e-5, per_image: bool = False,
                                 weight: Sequence[float] | torch.Tensor | None = None,
                                 classes: Sequence[int] | None = None, ignore_index: int | None = None,
                                 pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                                 reduction: Reduction = "mean", dist_sync: bool = False,
                                 process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Sensitivity-specificity loss (Brosch et al. 2015): squared errors on the positives and on the negatives of
    each class, each normalised by its own count.

    .. math::
        L_c = r\,\frac{\sum (g - p)^2\, g}{\sum g + s} + (1 - r)\,\frac{\sum (g - p)^2 (1 - g)}{\sum (1 - g) + s}

    over the valid elements of class c (g its one-vs-rest target, p its probability), 0/0 taken as 0. ``r`` is
    Brosch's "sensitivity ratio", the weight of the sensitivity term (0.05 in the paper: the negatives of a small
    structure are so many that each of their errors weighs little). With ``pixel_weight`` w every sum is weighted
    (:math:`\sum w (g - p)^2 g / (\sum w g + s)`, ...): each term a weighted mean of squared errors.

    {args}

    {returns}

    Example:
        >>> import torch, seglosses
        >>> x, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, 0.0]]])   # p = 0.5, one positive, one negative
        >>> round(seglosses.sensitivity_specificity_loss(x, t, "binary", smooth=0.0).item(), 6)  # 0.05/4 + 0.95/4
        0.25

    References:
        Brosch, Yoo, Tang, Li, Traboulsee, Tam. Deep Convolutional Encoder Networks for Multiple Sclerosis Lesion
        Segmentation. MICCAI 2015.
    """
    reduction = check_reduction(reduction)
    r = check_scalar("r", r, low=0.0, high=1.0)
    smooth = check_scalar("smooth", smooth, low=0.0)
    check_bool("per_image", per_image)
    a, b, g, neg = _squared_error_sums(logits, target, mode, per_image=per_image, ignore_index=ignore_index,
                                       from_logits=from_logits, pixel_weight=pixel_weight)
    c = a.shape[1]
    if check_bool("dist_sync", dist_sync) and not per_image:
        a, b, g, neg = all_reduce_sum(torch.stack([a, b, g, neg]), process_group).unbind(0)
    classes = check_classes(classes, c)
    w = class_vector("weight", weight, c, logits.device)

    def ratio(num, den):  # 0/0 = 0; a NaN (a NaN target) stays NaN
        den = den + smooth
        return torch.where(den != 0, num / torch.where(den != 0, den, 1.0), 0.0)

    loss = r * ratio(a, g) + (1 - r) * ratio(b, neg)
    if classes is not None:
        loss = take(loss, classes)
        w = None if w is None else take(w, classes, 0)
    w = None if w is None else w.to(loss.dtype)
    return reduce_class_losses(loss, w, per_image=per_image, reduction=reduction,
                               sync=dist_sync and is_active(), group=process_group)


class DiceLoss(LossModule):
    """Module form of :func:`dice_loss`; takes the same keyword arguments."""

    _fn = staticmethod(dice_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, smooth: float = 1e-5, per_image: bool = False, log_loss: bool = False,
                     weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...


class JaccardLoss(LossModule):
    """Module form of :func:`jaccard_loss`; takes the same keyword arguments."""

    _fn = staticmethod(jaccard_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, smooth: float = 1e-5, per_image: bool = False, log_loss: bool = False,
                     weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...


class TverskyLoss(LossModule):
    """Module form of :func:`tversky_loss`; takes the same keyword arguments."""

    _fn = staticmethod(tversky_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, alpha: float = 0.3, beta: float = 0.7, smooth: float = 1e-5,
                     per_image: bool = False, log_loss: bool = False,
                     weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...


class FocalTverskyLoss(LossModule):
    """Module form of :func:`focal_tversky_loss`; takes the same keyword arguments."""

    _fn = staticmethod(focal_tversky_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, alpha: float = 0.3, beta: float = 0.7, gamma: float = 0.75,
                     smooth: float = 1e-5, per_image: bool = False, log_loss: bool = False,
                     weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...


class GeneralizedDiceLoss(LossModule):
    """Module form of :func:`generalized_dice_loss`; takes the same keyword arguments."""

    _fn = staticmethod(generalized_dice_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, weight_type: Literal["square", "simple", "uniform"] = "square",
                     smooth: float = 1e-5, per_image: bool = False, log_loss: bool = False,
                     weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...


class LogCoshDiceLoss(LossModule):
    """Module form of :func:`log_cosh_dice_loss`; takes the same keyword arguments."""

    _fn = staticmethod(log_cosh_dice_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, smooth: float = 1e-5, per_image: bool = False,
                     weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...


class SensitivitySpecificityLoss(LossModule):
    """Module form of :func:`sensitivity_specificity_loss`; takes the same keyword arguments."""

    _fn = staticmethod(sensitivity_specificity_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, r: float = 0.05, smooth: float = 1e-5, per_image: bool = False,
                     weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...
