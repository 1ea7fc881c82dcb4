"""Topology-preserving losses for thin tubular structures: soft clDice (Shit et al. 2021) and Skeleton Recall
(Kirchhoff et al. 2024), 1-D to 3-D, every mode, with the skeletons of :mod:`seglosses.skeleton`.

Both read skeletons: clDice the soft skeletons of the prediction (with gradient) and of the target (without), Skeleton
Recall the target's hard skeleton dilated into a tube (computed in the loss on the tensor's device, or passed in
precomputed, ``skeletons=``, as the authors compute it in the data loader: :func:`seglosses.skeleton_maps`).

Ignored pixels: the probabilities and the target are set to 0 there (selected: no logit at an ignored pixel reaches
the loss, zero gradient, a NaN there reaches nothing) and they are left out of every sum. For clDice's soft skeletons
they are outside the image (neutral in every pool, as the authors' pools treat the image's border); for Skeleton
Recall's hard skeleton they are background, as the image's outside is there. Either way, ignoring a region gives the
loss of the image cropped to the rest. A class with no skeleton mass has recall 1 (loss 0 for Skeleton Recall).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from seglosses.core.args import Mode, Reduction, check_bool, check_classes, check_reduction, check_scalar
from seglosses.core.checks import (
    activation, class_vector, compute_dtype, pixel_weights, prepare, spatial_axes, take, to_compute, values_at_hand,
)
from seglosses.core.dist import all_reduce_sum, is_active
from seglosses.core.formulas import dice_score
from seglosses.core.module import LossModule
from seglosses.core.score import ratio_loss, reduce_class_losses
from seglosses.core.targets import activate, valid_indices
from seglosses.kernels.ops import region_stats
from seglosses.skeleton import _check_iterations, _skeleton, hard_skeleton, tube


def _setup(logits, target, mode, ignore_index, from_logits, per_image, classes, weight, pixel_weight):
    """Checks, then ``p`` and ``1 - p`` ``(N, C, S)`` (0 at ignored elements), the target ``g`` (0 there), its
    masks ``g > 0.5`` (bool, False there), the valid elements (None: all), the spatial shape, classes, weights and
    the pixel weights ``(N, 1 | C, S)`` (0 at ignored elements, a NaN there reaches nothing; None: all 1)."""
    inp = prepare(logits, target, mode, ignore_index)  # (checks ignore_index)
    check_bool("from_logits", from_logits)
    check_bool("per_image", per_image)
    spatial = spatial_axes(logits.shape, mode, "a skeleton-based loss")
    classes = check_classes(classes, inp.c)
    w = class_vector("weight", weight, inp.c, logits.device)
    pw = pixel_weights(pixel_weight, logits, mode, inp)
    dt = compute_dtype(inp.x)
    with torch.no_grad():
        if inp.index:
            t = inp.target
            # not ignore_index, and in [0, C) where the labels were not range-checked (CUDA, torch.compile)
            valid = valid_indices(t, ignore_index, inp.c)
            valid = torch.ones_like(t, dtype=torch.bool) if valid is None else valid
            mask = t.unsqueeze(1) == torch.arange(inp.c, device=t.device).view(1, -1, 1)
            valid = valid.unsqueeze(1).expand_as(mask)
            mask = mask & valid
        else:
            valid = (inp.target != ignore_index) if ignore_index is not None else None
            valid = torch.ones_like(inp.target, dtype=torch.bool) if valid is None else valid
            mask = (inp.target > 0.5) & valid
    every = ignore_index is None and not (inp.index and not values_at_hand(inp.target))
    x = inp.x if every else torch.where(valid, inp.x, 0.0 if from_logits else 0.5)
    x = to_compute(x)
    act = activation(mode, from_logits)
    p = activate(x, act)
    q = torch.sigmoid(-x) if act == "sigmoid" else 1 - p  # 1 - p without cancellation where it is cheap
    if not every:
        p, q = torch.where(valid, p, 0.0), torch.where(valid, q, 0.0)
    g = mask.to(dt) if inp.index else torch.where(valid, inp.target.to(dt), 0.0)
    if pw is not None and not every:
        pw = torch.where(valid, pw, 0.0)
    return inp, p, q, g, mask, (None if every else valid), spatial, classes, w, pw


def _sums(terms, per_image, pw=None):
    """Sums of ``(N, C, S)`` terms, each times the pixel weights ``pw`` (None: 1), over the pixels (and the
    batch): ``(T, R, C)``."""
    out = torch.stack([(t if pw is None else t * pw).sum(-1) for t in terms])
    return out if per_image else out.sum(1, keepdim=True)


def _finish(stats, w, classes, per_image, dist_sync, process_group):
    """All-reduce the statistics ``(T, R, C)`` (dist_sync, over the batch), keep ``classes``."""
    if check_bool("dist_sync", dist_sync) and not per_image:
        stats = all_reduce_sum(stats, process_group)
    if classes is not None:
        stats = take(stats, classes, 2)
        w = None if w is None else take(w, classes, 0)
    return stats, (None if w is None else w.to(stats.dtype))


def _soft_skel(x, shape, iterations, valid):
    if x.numel() == 0:
        return x.clone()
    valid = None if valid is None else valid.reshape(shape)
    return _skeleton(x.reshape(shape), iterations, len(shape) - 2, valid).reshape(x.shape)


def _harmonic_loss(a, b, c, d, smooth):
    """``1 - 2 P R / (P + R)`` with P = (a + s) / (a + b + s), R = (c + s) / (c + d + s), written as
    ``(P (1 - R) + R (1 - P)) / (P + R)`` with 1 - P = b / (a + b + s): nothing cancels. A ratio with a zero
    denominator is 1 (nothing to miss); P = R = 0 gives 1."""
    def ratio(num, err):
        den = num + err + smooth
        ok = ~(den <= 0)  # (a NaN denominator is "ok": the NaN reaches the loss)
        den = torch.where(ok, den, 1.0)
        return torch.where(ok, (num + smooth) / den, 1.0), torch.where(ok, err / den, 0.0)

    prec, prec_err = ratio(a, b)
    sens, sens_err = ratio(c, d)
    den = prec + sens
    ok = ~(den <= 0)
    loss = (prec * sens_err + sens * prec_err) / torch.where(ok, den, 1.0)
    return torch.where(ok, loss, 1.0).clamp_min(0.0)


def cldice_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, alpha: float = 0.5, iterations: int = 10,
                smooth: float = 1.0, per_image: bool = False, weight: Sequence[float] | torch.Tensor | None = None,
                classes: Sequence[int] | None = None, ignore_index: int | None = None,
                pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                reduction: Reduction = "mean", dist_sync: bool = False,
                process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Soft clDice loss (Shit et al. 2021, arXiv 2003.07311), mixed with soft Dice as the paper's total loss.

    .. math::
        T_{prec} = \frac{\sum S_P\, g + s}{\sum S_P + s}, \quad T_{sens} = \frac{\sum S_G\, p + s}{\sum S_G + s},
        \quad L_c = (1 - \alpha)\, (1 - \mathrm{Dice}_c) + \alpha \left(1 - \frac{2\, T_{prec} T_{sens}}
        {T_{prec} + T_{sens}}\right)

    per class c, with p the probabilities, g the target, S_P and S_G their soft skeletons
    (:func:`seglosses.soft_skeleton`, ``iterations`` erosions; S_G carries no gradient), the sums over the valid
    pixels (and the batch unless ``per_image``), s = ``smooth`` and Dice_c as :func:`seglosses.dice_loss` with the
    same ``smooth``. ``alpha = 1`` is clDice alone. Per class, where the authors' and MONAI's code sum every
    channel together: in "binary" mode (one channel) the definitions agree.

    Args:
        logits: ``(N, C, *spatial)`` logits (probabilities with ``from_logits=False``), 1 to 3 spatial axes;
            ``(N, *spatial)`` or ``(N, 1, *spatial)`` for "binary".
        target: as :func:`seglosses.dice_loss` (hard or soft).
        mode: "binary", "multiclass" or "multilabel".
        alpha: weight of clDice against Dice, in [0, 1] (the paper's 0.5).
        iterations: erosions of the soft skeleton (>= 0); the authors' code runs 10 (MONAI's default is 3).
        smooth: s, in Dice, T_prec and T_sens (>= 0; the authors' 1).
        per_image: the statistics per image instead of over the batch.
        weight: per-class weights ``(C,)``; "mean" is the weighted mean.
        classes: class indices to keep (for example all but background); None keeps all.
        ignore_index: target value whose pixels are background for the skeletons and count in no sum.
        pixel_weight: a weight map ``(N, *spatial)`` (every class of a pixel) or ``(N, C, *spatial)`` (per pixel
            and class), each axis the full size or 1, a per-call input of the Module; None: all 1. Each pixel's
            term in the four soft sums of T_prec and T_sens (``sum w S_P g``, ``sum w S_P``, ``sum w S_G p``,
            ``sum w S_G``) and in Dice's tp, fp, fn is multiplied by its weight; the soft skeletons are computed
            from p and g alone. A weight at an ignored pixel has no effect; no gradient flows to it.
        from_logits: False: the input holds probabilities.
        reduction: "mean", "sum" or "none" (the per-class losses ``(K,)``, ``(N, K)`` with ``per_image``).
        dist_sync: all-reduce the statistics over ``process_group`` (see :func:`seglosses.dice_loss`).
        process_group: the group for ``dist_sync``.

    Returns:
        A scalar for "mean"/"sum", the weighted per-class losses for "none"; float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> t = torch.zeros(1, 1, 5, 5)
        >>> t[..., 2, :] = 1                                     # a line: its own skeleton
        >>> x = (2 * t - 1) * 20                                 # a confident, right prediction
        >>> round(seglosses.cldice_loss(x, t, "binary", alpha=1.0).item(), 6)
        0.0

    References:
        Shit, Paetzold, Sekuboyina, et al. clDice - a Novel Topology-Preserving Loss Function for Tubular Structure
        Segmentation. CVPR 2021. arXiv 2003.07311.
    """
    reduction = check_reduction(reduction)
    alpha = check_scalar("alpha", alpha, low=0.0, high=1.0)
    iterations = _check_iterations(iterations)
    smooth = check_scalar("smooth", smooth, low=0.0)
    inp, p, q, g, _, valid, spatial, classes, w, pw = _setup(logits, target, mode, ignore_index, from_logits,
                                                             per_image, classes, weight, pixel_weight)
    shape = (inp.n, inp.c, *spatial)
    stats = []
    if alpha > 0:
        sp = _soft_skel(p, shape, iterations, valid)
        with torch.no_grad():
            sg = _soft_skel(g, shape, iterations, valid)
        stats += [sp * g, sp * (1 - g), sg * p, sg * q]  # (all 0 at ignored elements)
    stats = _sums(stats, per_image, pw) if stats else p.new_zeros((0, 1 if not per_image else inp.n, inp.c))
    if alpha < 1:
        extra = {} if pw is None else {"weight": pw}  # (None: the unweighted pass, exactly)
        tp, fp, fn, _ = region_stats(inp.x, inp.target, act=activation(mode, from_logits), index=inp.index,
                                     ignore_index=ignore_index, per_image=per_image, **extra)
        stats = torch.cat([stats, torch.stack([tp, fp, fn]).to(stats.dtype)])
    stats, w = _finish(stats, w, classes, per_image, dist_sync, process_group)
    loss = torch.zeros((), dtype=stats.dtype, device=stats.device)
    if alpha > 0:
        a, b, c, d = stats[:4].unbind(0)
        loss = alpha * _harmonic_loss(a, b, c, d, smooth)
    if alpha < 1:
        tp, fp, fn = stats[-3:].unbind(0)
        err, num = dice_score(tp, fp, fn, smooth)
        loss = loss + (1 - alpha) * ratio_loss(err, num, False)
    return reduce_class_losses(loss, w, per_image=per_image, reduction=reduction,
                               sync=dist_sync and is_active(), group=process_group)


def _given_skeletons(skeletons, n, c, spatial, dt, device):
    if not isinstance(skeletons, torch.Tensor):
        raise TypeError(f"`skeletons` must be a torch.Tensor of shape {(n, c, *spatial)}; got "
                        f"{type(skeletons).__name__}")
    if tuple(skeletons.shape) != (n, c, *spatial):
        raise ValueError(f"`skeletons` must have shape (N, C, *spatial) = {(n, c, *spatial)}; got "
                         f"{tuple(skeletons.shape)}")
    if skeletons.is_complex():
        raise TypeError(f"`skeletons` must be real; got dtype {skeletons.dtype}")
    return skeletons.to(device=device, dtype=dt).reshape(n, c, math.prod(spatial))


def skeleton_recall_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, smooth: float = 1e-5,
                         per_image: bool = False, weight: Sequence[float] | torch.Tensor | None = None,
                         classes: Sequence[int] | None = None, skeletons: torch.Tensor | None = None,
                         ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None,
                         from_logits: bool = True, reduction: Reduction = "mean", dist_sync: bool = False,
                         process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Skeleton Recall loss (Kirchhoff et al. 2024, arXiv 2404.03010): one minus the soft recall of the target's
    tubed skeleton, per class.

    .. math::
        L_c = 1 - \frac{\sum S_c\, p_c + s}{\sum S_c + s} = \frac{\sum S_c\, (1 - p_c)}{\sum S_c + s}

    S_c is the skeleton of the target mask of class c (g > 0.5) dilated twice by the cross and kept inside the mask
    (:func:`seglosses.skeleton_maps`), the sums run over the valid pixels (and the batch unless ``per_image``),
    s = ``smooth``. The skeleton is computed here on the tensor's device (the morphological skeleton, no host
    sync) unless ``skeletons`` are given: then the loss is a plain weighted recall and skeletonizes nothing. The
    authors drop the background class (``classes=range(1, C)`` for "multiclass") and add the loss to Dice + CE.

    Args:
        logits, target, mode, per_image, weight, classes, from_logits, dist_sync, process_group: as
            :func:`cldice_loss`.
        smooth: s (>= 0; the authors' nnU-Net trainer uses 1e-5).
        skeletons: precomputed maps S ``(N, C, *spatial)`` (nonnegative weights; :func:`seglosses.skeleton_maps`
            with ``batched=True``, ``backend="skimage"`` for the authors' thinning); None computes them here.
        ignore_index: target value whose pixels are background for the skeletons and count in no sum.
        pixel_weight: as :func:`cldice_loss`: each pixel's term in ``sum w S (1 - p)`` and ``sum w S`` times its
            weight (a weighted recall); the skeleton does not depend on it.
        reduction: "mean", "sum" or "none" (the per-class losses ``(K,)``, ``(N, K)`` with ``per_image``).

    Returns:
        A scalar for "mean"/"sum", the weighted per-class losses for "none"; float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> t = torch.zeros(1, 1, 5, 5)
        >>> t[..., 2, :] = 1                                     # a line: S is the line
        >>> x = torch.zeros(1, 1, 5, 5)                           # p = 1/2 everywhere
        >>> round(seglosses.skeleton_recall_loss(x, t, "binary", smooth=0.0).item(), 6)
        0.5

    References:
        Kirchhoff, Rokuss, Roy, et al. Skeleton Recall Loss for Connectivity Conserving and Resource Efficient
        Segmentation of Thin Tubular Structures. ECCV 2024. arXiv 2404.03010.
    """
    reduction = check_reduction(reduction)
    smooth = check_scalar("smooth", smooth, low=0.0)
    inp, p, q, g, mask, valid, spatial, classes, w, pw = _setup(logits, target, mode, ignore_index, from_logits,
                                                                per_image, classes, weight, pixel_weight)
    if skeletons is not None:
        s = _given_skeletons(skeletons, inp.n, inp.c, spatial, p.dtype, p.device)
        s = s if valid is None else torch.where(valid, s, 0.0)
    else:
        with torch.no_grad():
            m = mask.reshape(inp.n, inp.c, *spatial)
            s = tube(hard_skeleton(m, len(spatial)), m, len(spatial)).reshape(mask.shape).to(p.dtype)
    if not inp.index:  # a NaN in a valid target element reaches the loss (the mask g > 0.5 alone would hide it)
        s = torch.where(torch.isnan(g), g, s)
    stats, w = _finish(_sums([s * q, s], per_image, pw), w, classes, per_image, dist_sync, process_group)
    err, total = stats
    den = total + smooth
    ok = ~(den <= 0)
    # (no skeleton: 0, or NaN where a NaN logit made err NaN)
    loss = torch.where(ok, err / torch.where(ok, den, 1.0), err * 0).clamp_min(0.0)
    return reduce_class_losses(loss, w, per_image=per_image, reduction=reduction,
                               sync=dist_sync and is_active(), group=process_group)


class ClDiceLoss(LossModule):
    """Module form of :func:`cldice_loss`; ``forward(logits, target, pixel_weight=None)``."""

    _fn = staticmethod(cldice_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, alpha: float = 0.5, iterations: int = 10, smooth: float = 1.0,
                     per_image: bool = False, weight: Sequence[float] | torch.Tensor | None = None,
                     classes: Sequence[int] | None = None, ignore_index: int | None = None,
                     from_logits: bool = True, reduction: Reduction = "mean", dist_sync: bool = False,
                     process_group: torch.distributed.ProcessGroup | None = None) -> None: ...


class SkeletonRecallLoss(LossModule):
    """Module form of :func:`skeleton_recall_loss`; ``forward(logits, target, skeletons=None, pixel_weight=None)``."""

    _fn = staticmethod(skeleton_recall_loss)
    _inputs = ("skeletons",)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, smooth: float = 1e-5, per_image: bool = False,
                     weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...
