"""Compound losses from the literature, each one function: exponential-logarithmic, Combo and Unified Focal.

Each is a weighted sum of a per-pixel part (cross-entropy-like) and a per-class region part (Dice- or
Tversky-like), as its paper defines it. For sums of your own choosing, compose Modules instead
(``0.5 * DiceLoss(mode) + FocalLoss(mode)``, :mod:`seglosses.core.compose`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch

from seglosses.core.args import Mode, check_bool, check_reduction, check_scalar
from seglosses.core.checks import class_vector
from seglosses.core.formulas import dice_score, tversky_score
from seglosses.core.module import LossModule
from seglosses.core.docs import PIXEL_WEIGHT, fill_doc
from seglosses.core.pixel import entry_weights, pixels, reduce_pixels, target_counts, target_sum
from seglosses.core.score import score_loss
from seglosses.losses.cross_entropy import balanced_cross_entropy_loss
from seglosses.losses.region import class_statistics, dice_loss, overlap_loss


def _reduction(reduction):
    reduction = check_reduction(reduction)
    if reduction == "none":
        raise ValueError("`reduction` must be 'mean' or 'sum' for a compound loss (its parts, per pixel and per "
                         "class, have different shapes); got 'none'")
    return reduction


def _label_weights(freq):
    """``w_k = (sum_j f_j / f_k)^0.5``, 0 for a label without pixels."""
    total = freq.sum(-1, keepdim=True)
    ok = freq > 0
    return torch.where(ok, (total / torch.where(ok, freq, 1.0)).sqrt(), 0.0)


@fill_doc(pixel_weight=PIXEL_WEIGHT)
def exp_log_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, w_dice: float = 0.8, w_cross: float = 0.2,
                 gamma_dice: float = 0.3, gamma_cross: float = 0.3, smooth: float = 1.0,
                 class_frequency: Sequence[float] | torch.Tensor | None = None, per_image: bool = False,
                 ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                 reduction: Literal["mean", "sum"] = "mean") -> torch.Tensor:
    r"""Exponential-logarithmic loss (Wong et al. 2018, arXiv 1809.00076): powers of -log Dice and of -log p.

    .. math::
        L = w_{dice}\, \mathbb{E}_c\!\left[(-\ln \mathrm{Dice}_c)^{\gamma_{dice}}\right]
          + w_{cross}\, \mathbb{E}_x\!\left[w_l\, (-\ln p_l(x))^{\gamma_{cross}}\right], \qquad
        w_k = \left(\frac{\sum_j f_j}{f_k}\right)^{0.5}

    with Dice_c the soft Dice of :func:`seglosses.dice_loss` (``smooth`` = 1 as in the paper), l the label of pixel
    x and f_k the frequency of label k. In modes "binary"/"multilabel" every channel is a two-label problem (p and
    1 - p). Powers below 1 flatten the loss of classes and pixels that are nearly right.

    Args:
        logits: ``(N, C, *)`` logits (probabilities with ``from_logits=False``); ``(N, *)`` or ``(N, 1, *)`` for
            "binary".
        target: as :func:`seglosses.dice_loss` (soft targets weigh each label's term by its probability).
        mode: "binary", "multiclass" or "multilabel".
        w_dice, w_cross: weights of the two parts (>= 0).
        gamma_dice, gamma_cross: exponents (>= 0).
        smooth: added to the Dice numerator and denominator.
        class_frequency: label frequencies f from the training set, as the paper: ``(C,)`` counts or shares for
            "multiclass", the share of positives of each channel ``(C,)`` in [0, 1] for "binary"/"multilabel".
            None: the label counts of the valid pixels of the batch (weighted by ``pixel_weight``).
        per_image: Dice statistics per image.
        ignore_index: target value whose pixels count nowhere and get zero gradient.
        {pixel_weight}
            Both parts take it (the Dice statistics and the cross part's terms, its mean and the batch's label
            counts); a per-class map only outside "multiclass" (the cross part has one value per softmax pixel).
        from_logits: False: the input holds probabilities.
        reduction: "mean" (each part's mean) or "sum" (each part's sum).

    Returns:
        A scalar, float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, 0.0]]])  # p = 1/2: Dice 1/2 (smooth 0), -ln p = ln 2
        >>> loss = seglosses.exp_log_loss(x, t, "binary", smooth=0.0, gamma_dice=1.0, gamma_cross=1.0)
        >>> round(loss.item(), 6)  # 0.8 ln 2 + 0.2 sqrt(2) ln 2 (both labels have f = 1, so w = sqrt(2))
        0.750569

    References:
        Wong, Moradi, Tang, Syeda-Mahmood. 3D Segmentation with Exponential Logarithmic Loss for Highly Unbalanced
        Object Sizes. MICCAI 2018. arXiv 1809.00076.
    """
    reduction = _reduction(reduction)
    w_dice = check_scalar("w_dice", w_dice, low=0.0)
    w_cross = check_scalar("w_cross", w_cross, low=0.0)
    gamma_dice = check_scalar("gamma_dice", gamma_dice, low=0.0)
    gamma_cross = check_scalar("gamma_cross", gamma_cross, low=0.0)
    dice = overlap_loss(logits, target, mode, dice_score, smooth=smooth, per_image=per_image, log_loss=True,
                        weight=None, classes=None, ignore_index=ignore_index, from_logits=from_logits,
                        reduction=reduction, dist_sync=False, process_group=None, power=gamma_dice,
                        pixel_weight=pixel_weight)
    px = pixels(logits, target, mode, ignore_index=ignore_index, from_logits=from_logits,
                complement=mode != "multiclass", pixel_weight=pixel_weight)  # the softmax cross part: log p only
    dt, c = px.logp.dtype, px.inp.c
    tiny = torch.finfo(dt).tiny

    def powered(nlp):  # (-ln p)^gamma, 0 where -ln p is 0; its gradient bounded: -ln p floored at the smallest normal
        return torch.where(nlp != 0, nlp.clamp_min(tiny).pow(gamma_cross), 0.0)  # (a NaN stays NaN)

    freq = class_vector("class_frequency", class_frequency, c, logits.device, high=None if px.softmax else 1.0)
    if px.softmax:
        if freq is None:
            with torch.no_grad():
                counts = entry_weights(px)  # (N, S): 1 (or the pixel weight) at valid pixels, 0 at ignored ones
                freq = target_counts(px, counts) if px.t is not None else (px.g * counts.unsqueeze(1)).sum((0, 2))
        w = _label_weights(freq.to(dt)).view(1, c, 1)
        cross = target_sum(px, w * powered(-px.logp))
    else:
        y = px.g
        if freq is None:
            with torch.no_grad():
                counts = entry_weights(px)  # (N, C, S): 1 (or the pixel weight) at valid elements, 0 at ignored
                pos, neg = (y * counts).sum((0, 2)), ((1 - y) * counts).sum((0, 2))
        else:
            pos, neg = freq.to(dt), 1 - freq.to(dt)
        w = _label_weights(torch.stack([neg, pos], -1))  # (C, 2): weights of label 0 and label 1
        w0, w1 = w[:, 0].view(1, c, 1), w[:, 1].view(1, c, 1)
        cross = y * w1 * powered(-px.logp) + (1 - y) * w0 * powered(-px.log1mp)
    return w_dice * dice + w_cross * reduce_pixels(cross, px, reduction)


@fill_doc(pixel_weight=PIXEL_WEIGHT)
def combo_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, alpha: float = 0.5,
               beta: float | Sequence[float] | torch.Tensor | Literal["auto"] = 0.5, smooth: float = 1.0,
               ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
               reduction: Literal["mean", "sum"] = "mean") -> torch.Tensor:
    r"""Combo loss (Taghanaki et al. 2019, arXiv 1805.02798): balanced cross-entropy plus the Dice loss.

    .. math::
        L = \alpha\, \mathrm{BCE}_\beta + (1 - \alpha)(1 - \mathrm{Dice})

    with :math:`\mathrm{BCE}_\beta` :func:`seglosses.balanced_cross_entropy_loss` (beta > 0.5 penalises false
    negatives more) and Dice the soft Dice of :func:`seglosses.dice_loss` (mean over classes, ``smooth``). The paper
    subtracts the Dice score instead of adding 1 - Dice: the same gradient, a constant apart; this one is >= 0.

    Args:
        logits, target, mode: as :func:`seglosses.dice_loss`.
        alpha: weight of the cross-entropy part in [0, 1].
        beta: weight of the positive term of the cross-entropy in [0, 1], one per class ``(C,)``, or "auto".
        smooth: added to the Dice numerator and denominator.
        ignore_index, from_logits: as :func:`seglosses.dice_loss`.
        {pixel_weight}
            Both parts take it; a per-class map only outside "multiclass" (the cross-entropy has one value per
            softmax pixel).
        reduction: "mean" or "sum" (of each part).

    Returns:
        A scalar, float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, 0.0]]])  # p = 1/2: BCE_0.5 = ln2 / 2, Dice = 1/2
        >>> round(seglosses.combo_loss(x, t, "binary", smooth=0.0).item(), 6)  # 0.5 ln 2 / 2 + 0.5 / 2
        0.423287

    References:
        Taghanaki, Zheng, Zhou, Georgescu, Sharma, Xu, Comaniciu, Hamarneh. Combo loss: Handling input and output
        imbalance in multi-organ segmentation. CMIG 2019. arXiv 1805.02798.
    """
    reduction = _reduction(reduction)
    alpha = check_scalar("alpha", alpha, low=0.0, high=1.0)
    ce = balanced_cross_entropy_loss(logits, target, mode, beta=beta, ignore_index=ignore_index,
                                     pixel_weight=pixel_weight, from_logits=from_logits, reduction=reduction)
    dice = dice_loss(logits, target, mode, smooth=smooth, ignore_index=ignore_index, pixel_weight=pixel_weight,
                     from_logits=from_logits, reduction=reduction)
    return alpha * ce + (1 - alpha) * dice


@fill_doc(pixel_weight=PIXEL_WEIGHT)
def unified_focal_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, lam: float = 0.5, delta: float = 0.6,
                       gamma: float = 0.5, asymmetric: bool = True, background: int = 0, smooth: float = 1e-7,
                       per_image: bool = False, ignore_index: int | None = None,
                       pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                       reduction: Literal["mean", "sum"] = "mean") -> torch.Tensor:
    r"""Unified Focal loss (Yeung et al. 2022, arXiv 2102.04525): a focal and a focal-Tversky part sharing
    delta and gamma, with the background suppressed and, in the asymmetric form, the foreground left unmodulated.

    .. math::
        L = \lambda\, L_{FT} + (1 - \lambda)\, L_{F}

        L_F = \mathbb{E}_x \sum_k y_k\, a_k (1 - p_k)^{\gamma_k} (-\ln p_k), \qquad
        L_{FT} = \mathbb{E}_k\, (1 - TI_k)^{e_k}, \qquad
        TI_k = \frac{tp_k + s}{tp_k + \delta\, fn_k + (1 - \delta)\, fp_k + s}

    a_k = 1 - delta for the background and delta for foreground classes; gamma_k = gamma for the background and
    (symmetric) the foreground, 0 for the foreground when asymmetric; e_k = 1 - gamma, except 1 for the background
    when asymmetric. Mode "multiclass": class ``background`` is the background and every other class foreground;
    "binary"/"multilabel": each channel is a background (1 - p) / foreground (p) pair, as the reference code's
    two-channel softmax. The statistics are over the batch (``per_image=False``, as the rest of this library) or per
    image (the reference code). Every power is taken in log space, so loss and gradient are finite at any logit.

    Args:
        logits, target, mode: as :func:`seglosses.dice_loss`.
        lam: weight lambda of the focal-Tversky part in [0, 1].
        delta: weight of the foreground (focal part) and of false negatives (Tversky part), in [0, 1].
        gamma: in [0, 1]: the focal exponent, and 1 - gamma the focal-Tversky exponent.
        asymmetric: the asymmetric form (the paper's recommendation); False: the symmetric form.
        background: the background class index for "multiclass".
        smooth: s of the Tversky index (1e-7, the reference's epsilon).
        per_image: Tversky statistics per image.
        ignore_index, from_logits: as :func:`seglosses.dice_loss`.
        {pixel_weight}
            Both parts take it (the focal terms and their mean, the Tversky statistics); a per-class map only
            outside "multiclass" (the focal part has one value per softmax pixel).
        reduction: "mean" or "sum" (of each part).

    Returns:
        A scalar, float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, 0.0]]])  # p = 1/2
        >>> round(seglosses.unified_focal_loss(x, t, "binary", gamma=0.0, smooth=0.0).item(), 6)  # below
        0.423287

        With gamma 0 and p = 1/2 everywhere: the focal part is ((1 - delta) ln 2 + delta ln 2) / 2 = ln 2 / 2; the
        Tversky index of each of the two classes is 0.5 / (0.5 + 0.6 * 0.5 + 0.4 * 0.5) = 1/2, so L_FT = 1/2.

    References:
        Yeung, Sala, Schönlieb, Rundo. Unified Focal loss: Generalising Dice and cross entropy-based losses to
        handle class imbalanced medical image segmentation. CMIG 2022. arXiv 2102.04525.
    """
    reduction = _reduction(reduction)
    lam = check_scalar("lam", lam, low=0.0, high=1.0)
    delta = check_scalar("delta", delta, low=0.0, high=1.0)
    gamma = check_scalar("gamma", gamma, low=0.0, high=1.0)
    check_bool("asymmetric", asymmetric)
    smooth = check_scalar("smooth", smooth, low=0.0)
    px = pixels(logits, target, mode, ignore_index=ignore_index, from_logits=from_logits, pixel_weight=pixel_weight)
    c, dt = px.inp.c, px.logp.dtype
    g_fg = 0.0 if asymmetric else gamma
    if px.softmax:
        if isinstance(background, bool) or not isinstance(background, int) or not 0 <= background < c:
            raise ValueError(f"`background` must be a class index in [0, {c}); got {background!r}")
        is_bg = torch.arange(c, device=logits.device) == background  # no host copy (is_bg[k] = True would sync)
        a = torch.where(is_bg, 1 - delta, delta).to(dt).view(1, c, 1)
        gk = torch.where(is_bg, gamma, g_fg).to(dt).view(1, c, 1)
        focal = target_sum(px, a * torch.exp(gk * px.log1mp) * -px.logp)
    else:
        y = px.g
        focal = ((1 - y) * (1 - delta) * torch.exp(gamma * px.logp) * -px.log1mp
                 + y * delta * torch.exp(g_fg * px.log1mp) * -px.logp)
    focal = reduce_pixels(focal, px, reduction)

    tp, fp, fn, _, _ = class_statistics(logits, target, mode, per_image=per_image, classes=None, weight=None,
                                        ignore_index=ignore_index, from_logits=from_logits, pixel_weight=pixel_weight)
    e_fg = 1 - gamma
    e_bg = 1.0 if asymmetric else e_fg
    if px.softmax:
        power = tp.new_full((c,), e_fg).masked_fill_(torch.arange(c, device=tp.device) == background, e_bg)  # no sync
    else:
        with torch.no_grad():  # the valid elements' count (weight) of each channel: tp + fp + fn + tn
            valid = entry_weights(px)
            count = valid.sum(-1) if per_image else valid.sum((0, 2)).unsqueeze(0)
        tp_bg = (count.to(tp.dtype) - tp - fp - fn).clamp_min(0.0)
        tp, fp, fn = torch.cat([tp_bg, tp], -1), torch.cat([fn, fp], -1), torch.cat([fp, fn], -1)
        power = torch.cat([tp.new_full((c,), e_bg), tp.new_full((c,), e_fg)])  # fills: no host copy
    ft = score_loss(tversky_score(1 - delta, delta)(tp, fp, fn, smooth), None, per_image=per_image, log_loss=False,
                    reduction=reduction, power=power)
    return lam * ft + (1 - lam) * focal


class ExpLogLoss(LossModule):
    """Module form of :func:`exp_log_loss`; takes the same keyword arguments."""

    _fn = staticmethod(exp_log_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, w_dice: float = 0.8, w_cross: float = 0.2, gamma_dice: float = 0.3,
                     gamma_cross: float = 0.3, smooth: float = 1.0,
                     class_frequency: Sequence[float] | torch.Tensor | None = None, per_image: bool = False,
                     ignore_index: int | None = None, from_logits: bool = True,
                     reduction: Literal["mean", "sum"] = "mean") -> None: ...

    def _high(self, key):  # shares of positives in [0, 1] for binary/multilabel; counts allowed for multiclass
        return 1.0 if key == "class_frequency" and self.mode != "multiclass" else None


class ComboLoss(LossModule):
    """Module form of :func:`combo_loss`; takes the same keyword arguments."""

    _fn = staticmethod(combo_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, alpha: float = 0.5,
                     beta: float | Sequence[float] | torch.Tensor | Literal["auto"] = 0.5, smooth: float = 1.0,
                     ignore_index: int | None = None, from_logits: bool = True,
                     reduction: Literal["mean", "sum"] = "mean") -> None: ...


class UnifiedFocalLoss(LossModule):
    """Module form of :func:`unified_focal_loss`; takes the same keyword arguments."""

    _fn = staticmethod(unified_focal_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, lam: float = 0.5, delta: float = 0.6, gamma: float = 0.5,
                     asymmetric: bool = True, background: int = 0, smooth: float = 1e-7, per_image: bool = False,
                     ignore_index: int | None = None, from_logits: bool = True,
                     reduction: Literal["mean", "sum"] = "mean") -> None: ...
