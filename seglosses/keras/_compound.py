"""The compound losses of Jadon's survey in Keras: exponential-logarithmic (Wong et al. 2018), Combo (Taghanaki et
al. 2019) and Unified Focal (Yeung et al. 2022), each a pixel part plus a region part.

They give one value for the batch, the PyTorch front end's ``reduction="mean"`` (the pixel part averaged over the
valid entries of the batch, the region part over classes), or with ``per_image=True`` one value per image whose mean
is that loss (:func:`compound`); the Keras reduction reduces over images only.
"""

from __future__ import annotations

from keras import ops

from seglosses.core.args import check_bool, check_ignore_index, check_mode, check_scalar
from seglosses.core.formulas import dice_score, tversky_score
from seglosses.keras._base import SegLoss, check_axis, fill_doc, per_class, register, split_sample_weight
from seglosses.keras._base import weighted_inputs
from seglosses.keras._cross_entropy import check_keras_beta, posneg_values
from seglosses.keras._ops import class_counts, class_mean, floored_power, keep, log_probs, masked, ratio_loss
from seglosses.keras._ops import region_stats, split_target, target_sum
from seglosses.keras._region import region_values


def compound(region, w_region, pixel, valid, w_pixel, per_image):
    """``w_region * region + w_pixel * pixel part``: one value for the batch (the pixel map's mean over its valid
    entries), or with ``per_image`` one per image, image i's pixel part being its sum over the batch's mean valid
    count per image (its own mean when nothing is ignored), so that their mean is the batch's loss."""
    count = ops.sum(valid)
    count = ops.where(ops.greater(count, 0), count, ops.ones_like(count))
    if not per_image:
        return w_region * region[0] + w_pixel * (ops.sum(pixel) / count)
    axes = tuple(range(1, len(pixel.shape)))
    images = ops.cast(ops.shape(pixel)[0], pixel.dtype)
    return w_region * region + w_pixel * (ops.sum(pixel, axis=axes) * images / count)


def _label_weights(freq):
    """``w_k = (sum_j f_j / f_k)^0.5``, 0 for a label without pixels; ``freq`` ``(..., K)``."""
    total = ops.sum(freq, axis=-1, keepdims=True)
    ok = ops.greater(freq, 0)
    return ops.where(ok, ops.sqrt(total / ops.where(ok, freq, ops.ones_like(freq))), ops.zeros_like(freq))


def _pixel_part(values, v, pw):
    """A pixel part's map and the weights of its mean: 0 at ignored entries, each times its pixel weight."""
    if pw is None:
        return masked(values, v)
    pw = pw[..., 0] if len(values.shape) == 2 else pw
    return masked(values * pw, v)[0], keep(pw * ops.ones_like(values), v)


def exp_log_values(x, target, index, mode, *, w_dice, w_cross, gamma_dice, gamma_cross, smooth, class_frequency,
                   per_image, ignore, from_logits, pw=None):
    """Wong et al.'s exponential-logarithmic loss: one value, or one per image (:func:`compound`); ``pw``: pixel
    weights (0 at ignored entries) in the Dice statistics, the cross part and the batch's label counts."""
    dt = x.dtype
    c = x.shape[-1]
    tp, fp, fn, _ = region_stats(x, target, index, mode, ignore=ignore, from_logits=from_logits, per_image=per_image,
                                 pw=pw)
    dice = region_values(tp, fp, fn, dice_score, smooth=smooth, log_loss=True, power=gamma_dice, weight=None,
                         classes=None)
    logp, log1mp = log_probs(x, mode, from_logits)
    v, t, g = split_target(target, index, ignore, dt)
    freq = None if class_frequency is None else ops.convert_to_tensor(class_frequency, dtype=dt)
    if mode == "multiclass":
        if freq is None and pw is not None:
            freq = ops.stop_gradient(class_counts(t, pw[..., 0], c, dt) if index else ops.sum(g * pw, axis=(0, 1)))
        elif freq is None:
            freq = ops.stop_gradient(class_counts(t, v, c, dt) if index else ops.sum(g, axis=(0, 1)))
        cross = target_sum(_label_weights(freq) * floored_power(-logp, gamma_cross), t, g)
    else:
        if freq is None and pw is not None:
            pos, neg = ops.sum(g * pw, axis=(0, 1)), ops.sum((1 - g) * pw, axis=(0, 1))
        elif freq is None:
            pos = ops.sum(g, axis=(0, 1))
            neg = ops.sum((1 - g) if v is None else (1 - g) * v, axis=(0, 1))
        else:
            pos, neg = freq, 1 - freq
        w = ops.stop_gradient(_label_weights(ops.stack([neg, pos], axis=-1)))  # (C, 2): labels 0 and 1
        cross = (g * w[:, 1] * floored_power(-logp, gamma_cross)
                 + (1 - g) * w[:, 0] * floored_power(-log1mp, gamma_cross))
    cross, valid = _pixel_part(cross, v, pw)
    return compound(dice, w_dice, cross, valid, w_cross, per_image)


def unified_focal_values(x, target, index, mode, *, lam, delta, gamma, asymmetric, background, smooth, per_image,
                         ignore, from_logits, pw=None):
    """Yeung et al.'s Unified Focal loss: one value, or one per image (:func:`compound`); ``pw``: pixel weights (0
    at ignored entries) in the focal part and the Tversky statistics."""
    dt = x.dtype
    c = x.shape[-1]
    logp, log1mp = log_probs(x, mode, from_logits)
    v, t, g = split_target(target, index, ignore, dt)
    g_fg = 0.0 if asymmetric else gamma
    if mode == "multiclass":
        is_bg = [k == background for k in range(c)]
        a = ops.convert_to_tensor([1 - delta if bg else delta for bg in is_bg], dtype=dt)
        gk = ops.convert_to_tensor([gamma if bg else g_fg for bg in is_bg], dtype=dt)
        focal = target_sum(a * ops.exp(gk * log1mp) * -logp, t, g)
    else:
        focal = ((1 - g) * (1 - delta) * ops.exp(gamma * logp) * -log1mp
                 + g * delta * ops.exp(g_fg * log1mp) * -logp)
    focal, valid = _pixel_part(focal, v, pw)

    tp, fp, fn, _ = region_stats(x, target, index, mode, ignore=ignore, from_logits=from_logits, per_image=per_image,
                                 pw=pw)
    e_fg = 1 - gamma
    e_bg = 1.0 if asymmetric else e_fg
    if mode == "multiclass":
        power = [e_bg if k == background else e_fg for k in range(c)]
    else:  # the background of every channel: probability 1 - p, target 1 - g
        count = ops.sum(ops.ones_like(g) if v is None else v, axis=1) if pw is None else \
            ops.sum(pw * ops.ones_like(g), axis=1)
        if not per_image:
            count = ops.sum(count, axis=0, keepdims=True)
        tp_bg = ops.maximum(ops.stop_gradient(count) - tp - fp - fn, 0.0)
        tp, fp, fn = (ops.concatenate([tp_bg, tp], axis=-1), ops.concatenate([fn, fp], axis=-1),
                      ops.concatenate([fp, fn], axis=-1))
        power = [e_bg] * c + [e_fg] * c
    loss = ratio_loss(*tversky_score(1 - delta, delta)(tp, fp, fn, smooth), False)
    power = ops.convert_to_tensor(power, dtype=loss.dtype)
    loss = floored_power(loss, power)
    ft = class_mean(loss, None, None)
    return compound(ft, lam, focal, valid, 1 - lam, per_image)


# --------------------------------------------------------------------------------------- options and values ---
def _common(*, ignore_class, from_logits, axis):
    return dict(ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def _exp_log_options(mode, *, w_dice, w_cross, gamma_dice, gamma_cross, smooth, class_frequency, per_image,
                     ignore_class, from_logits, axis):
    return dict(w_dice=check_scalar("w_dice", w_dice, low=0.0), w_cross=check_scalar("w_cross", w_cross, low=0.0),
                gamma_dice=check_scalar("gamma_dice", gamma_dice, low=0.0),
                gamma_cross=check_scalar("gamma_cross", gamma_cross, low=0.0),
                smooth=check_scalar("smooth", smooth, low=0.0),
                class_frequency=per_class("class_frequency", class_frequency,
                                          high=None if mode == "multiclass" else 1.0),
                per_image=check_bool("per_image", per_image),
                **_common(ignore_class=ignore_class, from_logits=from_logits, axis=axis))


def _combo_options(*, alpha, beta, smooth, ignore_class, from_logits, axis):
    return dict(alpha=check_scalar("alpha", alpha, low=0.0, high=1.0), beta=check_keras_beta(beta, True),
                smooth=check_scalar("smooth", smooth, low=0.0),
                **_common(ignore_class=ignore_class, from_logits=from_logits, axis=axis))


def _unified_focal_options(*, lam, delta, gamma, asymmetric, background, smooth, per_image, ignore_class,
                           from_logits, axis):
    if isinstance(background, bool) or not isinstance(background, int) or background < 0:
        raise ValueError(f"`background` must be a class index (an int >= 0); got {background!r}")
    return dict(lam=check_scalar("lam", lam, low=0.0, high=1.0), delta=check_scalar("delta", delta, low=0.0, high=1.0),
                gamma=check_scalar("gamma", gamma, low=0.0, high=1.0),
                asymmetric=check_bool("asymmetric", asymmetric), background=background,
                smooth=check_scalar("smooth", smooth, low=0.0), per_image=check_bool("per_image", per_image),
                **_common(ignore_class=ignore_class, from_logits=from_logits, axis=axis))


def _exp_log(y_true, y_pred, mode, *, ignore_class, axis, pixel_weight=None, **options):
    x, target, index, _, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                              per_class=False, class_frequency=options["class_frequency"])
    values = exp_log_values(x, target, index, mode, ignore=ignore_class, pw=pw, **options)
    return values, ops.ones_like(values)


def _combo(y_true, y_pred, mode, *, alpha, beta, smooth, ignore_class, from_logits, axis, pixel_weight=None):
    x, target, index, _, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                              per_class=False, beta=beta)
    ce, valid = posneg_values(x, target, index, mode, beta=beta, balanced=True, ignore=ignore_class, smoothing=0.0,
                              from_logits=from_logits, pw=pw)
    tp, fp, fn, _ = region_stats(x, target, index, mode, ignore=ignore_class, from_logits=from_logits,
                                 per_image=False, pw=pw)
    dice = region_values(tp, fp, fn, dice_score, smooth=smooth, log_loss=False, power=None, weight=None,
                         classes=None)
    values = compound(dice, 1 - alpha, ce, valid, alpha, per_image=False)
    return values, ops.ones_like(values)


def _unified_focal(y_true, y_pred, mode, *, ignore_class, axis, pixel_weight=None, **options):
    x, target, index, _, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                              per_class=False)
    c = x.shape[-1]
    if mode == "multiclass" and options["background"] >= c:
        raise ValueError(f"`background` must be a class index in [0, {c}); got {options['background']}")
    values = unified_focal_values(x, target, index, mode, ignore=ignore_class, pw=pw, **options)
    return values, ops.ones_like(values)


# ----------------------------------------------------------------------------------------------- functions ---
def exp_log_loss(y_true, y_pred, mode, *, w_dice=0.8, w_cross=0.2, gamma_dice=0.3, gamma_cross=0.3, smooth=1.0,
                 class_frequency=None, per_image=False, ignore_class=None, from_logits=False, axis=-1,
                 pixel_weight=None):
    """Exponential-logarithmic loss, unreduced: the values of :class:`ExpLogLoss` (same options)."""
    mode = check_mode(mode)
    return _exp_log(y_true, y_pred, mode, pixel_weight=pixel_weight, **_exp_log_options(
        mode, w_dice=w_dice, w_cross=w_cross, gamma_dice=gamma_dice, gamma_cross=gamma_cross, smooth=smooth,
        class_frequency=class_frequency, per_image=per_image, ignore_class=ignore_class, from_logits=from_logits,
        axis=axis))[0]


def combo_loss(y_true, y_pred, mode, *, alpha=0.5, beta=0.5, smooth=1.0, ignore_class=None, from_logits=False,
               axis=-1, pixel_weight=None):
    """Combo loss, unreduced: the value of :class:`ComboLoss` (same options)."""
    return _combo(y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight, **_combo_options(
        alpha=alpha, beta=beta, smooth=smooth, ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def unified_focal_loss(y_true, y_pred, mode, *, lam=0.5, delta=0.6, gamma=0.5, asymmetric=True, background=0,
                       smooth=1e-7, per_image=False, ignore_class=None, from_logits=False, axis=-1, pixel_weight=None):
    """Unified Focal loss, unreduced: the values of :class:`UnifiedFocalLoss` (same options)."""
    return _unified_focal(y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight, **_unified_focal_options(
        lam=lam, delta=delta, gamma=gamma, asymmetric=asymmetric, background=background, smooth=smooth,
        per_image=per_image, ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


# ------------------------------------------------------------------------------------------------- classes ---
_VALUES = """Values: one for the batch, the PyTorch front end's ``reduction="mean"`` (the pixel part's mean over the
    valid entries of the batch, the region part's mean over classes); with ``per_image=True`` one per image whose
    mean is that loss (image i's pixel part is its sum over the batch's mean valid count per image, its own mean when
    nothing is ignored), so ``sample_weight`` weighs images; without it ``sample_weight`` is refused. The Keras
    reduction reduces over images only."""


@register
@fill_doc(values=_VALUES)
class ExpLogLoss(SegLoss):
    """Exponential-logarithmic loss (Wong et al. 2018, arXiv 1809.00076), as ``seglosses.exp_log_loss``:
    ``w_dice mean_c (-ln Dice_c)^gamma_dice + w_cross mean_x w_l (-ln p_l(x))^gamma_cross`` with label weights
    ``w_k = (sum_j f_j / f_k)^0.5``; "binary"/"multilabel": each channel is a two-label problem (p and 1 - p).

    Args:
        mode: "binary", "multiclass" or "multilabel".
        w_dice, w_cross: weights of the two parts (>= 0).
        gamma_dice, gamma_cross: exponents (>= 0).
        smooth: added to the Dice numerator and denominator (1, as the paper).
        class_frequency: label frequencies from the training set: C counts or shares ("multiclass"), the share of
            positives of each channel in [0, 1] ("binary"/"multilabel"); None: the label counts of the batch.
        per_image: Dice statistics and values per image.
        ignore_class, from_logits, axis: as :class:`DiceLoss` (the cross part clamps probabilities before the log).
        reduction, name, dtype: as every Keras loss.

    {values}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import ExpLogLoss
        >>> loss = ExpLogLoss("binary", smooth=0.0, gamma_dice=1.0, gamma_cross=1.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 6)  # 0.8 ln 2 + 0.2 sqrt(2) ln 2
        0.750569
    """

    def __init__(self, mode, *, w_dice=0.8, w_cross=0.2, gamma_dice=0.3, gamma_cross=0.3, smooth=1.0,
                 class_frequency=None, per_image=False, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="exp_log_loss", dtype=None):
        mode = check_mode(mode)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_exp_log_options(
            mode, w_dice=w_dice, w_cross=w_cross, gamma_dice=gamma_dice, gamma_cross=gamma_cross, smooth=smooth,
            class_frequency=class_frequency, per_image=per_image, ignore_class=ignore_class,
            from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _exp_log(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
class ComboLoss(SegLoss):
    r"""Combo loss (Taghanaki et al. 2019, arXiv 1805.02798), as ``seglosses.combo_loss``:
    ``alpha BalancedCE(beta) + (1 - alpha)(1 - Dice)``, the mean of :class:`BalancedCrossEntropyLoss` over the valid
    entries plus the batch Dice loss of :class:`DiceLoss` (mean over classes).

    Args:
        mode: "binary", "multiclass" or "multilabel".
        alpha: weight of the cross-entropy part in [0, 1].
        beta: weight of the positive term of the cross-entropy in [0, 1], one per class, or "auto".
        smooth: added to the Dice numerator and denominator (default 1).
        ignore_class, from_logits, axis: as :class:`DiceLoss`.
        reduction, name, dtype: as every Keras loss.

    Values: one for the batch, the PyTorch front end's ``reduction="mean"``; a per-image ``sample_weight`` is refused
    (the Dice part pools the statistics over the batch); a per-pixel one is the ``pixel_weight``.

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import ComboLoss
        >>> loss = ComboLoss("binary", smooth=0.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 6)  # 0.5 ln 2 / 2 + 0.5 / 2
        0.423287
    """

    def __init__(self, mode, *, alpha=0.5, beta=0.5, smooth=1.0, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="combo_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_combo_options(
            alpha=alpha, beta=beta, smooth=smooth, ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def __call__(self, y_true, y_pred, sample_weight=None, pixel_weight=None):
        if sample_weight is not None and split_sample_weight(sample_weight, None)[0] is not None:
            raise ValueError("`sample_weight` is refused by ComboLoss: its Dice part pools the statistics over the "
                             "batch, so a per-image weight has no meaning (a per-pixel one is its `pixel_weight`)")
        return super().__call__(y_true, y_pred, sample_weight, pixel_weight)

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _combo(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(values=_VALUES)
class UnifiedFocalLoss(SegLoss):
    """Unified Focal loss (Yeung et al. 2022, arXiv 2102.04525), as ``seglosses.unified_focal_loss``:
    ``lam L_FT + (1 - lam) L_F``, a focal part and a focal-Tversky part sharing delta and gamma; the background is
    suppressed and, in the asymmetric form (default), the foreground left unmodulated. "multiclass": class
    ``background`` is the background, every other class foreground; "binary"/"multilabel": each channel is a
    background (1 - p) / foreground (p) pair.

    Args:
        mode: "binary", "multiclass" or "multilabel".
        lam: weight of the focal-Tversky part in [0, 1].
        delta: weight of the foreground (focal part) and of false negatives (Tversky part), in [0, 1].
        gamma: in [0, 1]: the focal exponent, and 1 - gamma the focal-Tversky exponent.
        asymmetric: the asymmetric form (the paper's recommendation); False: the symmetric form.
        background: the background class index for "multiclass".
        smooth: s of the Tversky index (1e-7, the reference code's epsilon).
        per_image: Tversky statistics and values per image (as the reference code).
        ignore_class, from_logits, axis: as :class:`DiceLoss` (the focal part clamps probabilities before the log).
        reduction, name, dtype: as every Keras loss.

    {values}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import UnifiedFocalLoss
        >>> loss = UnifiedFocalLoss("binary", gamma=0.0, smooth=0.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 6)  # 0.5 ln 2 / 2 + 0.5 / 2
        0.423287
    """

    def __init__(self, mode, *, lam=0.5, delta=0.6, gamma=0.5, asymmetric=True, background=0, smooth=1e-7,
                 per_image=False, ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="unified_focal_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_unified_focal_options(
            lam=lam, delta=delta, gamma=gamma, asymmetric=asymmetric, background=background, smooth=smooth,
            per_image=per_image, ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _unified_focal(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
