"""The region losses in Keras: Dice, Jaccard, Tversky, focal-Tversky and generalized Dice over the soft statistics
(tp, fp, fn) of :func:`._ops.region_stats`, and the survey's sensitivity-specificity and log-cosh Dice losses.

Each gives one value per image with ``per_image=True`` (the weighted mean over classes, so ``sample_weight`` weighs
images), else one value for the whole batch (``sample_weight`` is then refused: the statistics are pooled over the
batch before the score, so a per-sample weight has no meaning).
"""

from __future__ import annotations

from keras import ops

from seglosses.core.args import check_bool, check_classes, check_ignore_index, check_mode, check_scalar
from seglosses.core.args import check_weight_type
from seglosses.core.formulas import check_alpha_beta, dice_score, tversky_score
from seglosses.keras._base import SegLoss, check_axis, class_list, fill_doc, per_class, register, rows
from seglosses.keras._base import weighted_inputs
from seglosses.keras._ops import at_target, class_mean, class_sums, floored_power, keep, probabilities, ratio_loss
from seglosses.keras._ops import region_stats, split_target


# ------------------------------------------------------------------------------------------------ formulas ---
def region_values(tp, fp, fn, score, *, smooth, log_loss, power, weight, classes):
    """Per-row losses: the weighted mean over the kept classes of each row ``(R,)``."""
    err, num = score(tp, fp, fn, smooth)
    loss = ratio_loss(err, num, log_loss)
    if power is not None:
        loss = floored_power(loss, power)
    return class_mean(loss, weight, classes)


def gdl_values(tp, fp, fn, g, *, weight_type, smooth, log_loss, weight, classes):
    """Generalized Dice per row ``(R,)``: Sudre's weights from all C volumes, then the kept classes."""
    if weight_type == "uniform":
        r = ops.ones_like(g)
    else:
        vol = g if weight_type == "simple" else g * g
        present = ops.greater(vol, 0)
        inv = 1 / ops.where(present, vol, ops.ones_like(vol))
        largest = ops.max(ops.where(present, inv, ops.zeros_like(inv)), axis=-1, keepdims=True)
        fill = ops.where(ops.greater(largest, 0), largest, ops.ones_like(largest))
        r = ops.where(present, inv, fill * ops.ones_like(inv))
    if weight is not None:
        r = r * ops.convert_to_tensor(weight, dtype=r.dtype)
    if classes is not None:
        r, tp, fp, fn = (ops.take(z, classes, axis=1) for z in (r, tp, fp, fn))
    err = ops.sum(r * (fp + fn), axis=-1)
    return ratio_loss(err, ops.sum(r * 2 * tp, axis=-1) + smooth, log_loss)


def sensitivity_specificity_values(x, target, index, mode, *, r, smooth, ignore, from_logits, per_image, weight,
                                   classes, pw=None):
    """Brosch's ``r sens_c + (1 - r) spec_c`` per row ``(R,)``: the weighted mean over the kept classes; ``pw``
    (pixel weights, 0 at ignored entries) multiplies each pixel's part of every sum."""
    dt = x.dtype
    c = x.shape[-1]
    p = probabilities(x, mode, from_logits)  # probabilities as given, as every region loss
    v, t, g = split_target(target, index, ignore, dt)
    if index:
        ti = ops.expand_dims(t, -1)
        pm = p if v is None else keep(p, ops.expand_dims(v, -1))
        pt = ops.squeeze(ops.take_along_axis(pm, ti, axis=-1), -1)  # p of the target class (0 where ignored)
        if from_logits:  # 1 - p_t, accurate near p_t = 1
            miss = -ops.expm1(ops.squeeze(ops.take_along_axis(ops.log_softmax(x, axis=-1), ti, axis=-1), -1))
        else:
            miss = 1 - ops.squeeze(ops.take_along_axis(p, ti, axis=-1), -1)
        ones = ops.ones_like(pt) if v is None else v
        wc = ops.ones_like(pm) if pw is None else pw * ops.ones_like(pm)  # (B, S, C)
        if pw is not None:
            ones = at_target(pw, t)
        a = class_sums(t, miss * miss * ones, c)
        b = ops.sum(pm * pm * wc, axis=1) - class_sums(t, pt * pt * ones, c)  # the other classes' pixels' p_c^2
        gsum = class_sums(t, ones, c)
        neg = ops.sum(wc if v is None else keep(wc, ops.expand_dims(v, -1)), axis=1) - gsum
    else:
        err = keep(ops.square(g - p), v)
        if pw is not None:
            err, g_w, neg_w = err * pw, g * pw, (1 - g) * pw
        else:
            g_w, neg_w = g, (1 - g) if v is None else (1 - g) * v
        a, b = ops.sum(err * g, axis=1), ops.sum(err * (1 - g), axis=1)
        gsum = ops.sum(g_w, axis=1)
        neg = ops.sum(neg_w, axis=1)
    if not per_image:
        a, b, gsum, neg = (ops.sum(z, axis=0, keepdims=True) for z in (a, b, gsum, neg))
    if index:  # b is a difference of sums: exactly 0 without negatives, not a rounding residue over smooth
        b = ops.where(ops.greater(neg, 0), ops.maximum(b, 0.0), ops.zeros_like(b))

    def ratio(num, den):
        den = den + smooth
        ok = ops.logical_or(ops.greater(den, 0), ops.isnan(den))  # a NaN target's NaN stays
        return ops.where(ok, num / ops.where(ok, den, ops.ones_like(den)), ops.zeros_like(num))

    loss = r * ratio(a, gsum) + (1 - r) * ratio(b, neg)
    return class_mean(loss, weight, classes)


def log_cosh_dice_values(tp, fp, fn, *, smooth, weight, classes):
    """``log(cosh(1 - Dice_c))`` per row ``(R,)``, as ``log1p(2 sinh(l / 2)^2)`` (exact near 0)."""
    loss = ratio_loss(*dice_score(tp, fp, fn, smooth), False)
    return class_mean(ops.log1p(2 * ops.square(ops.sinh(loss / 2))), weight, classes)


# ------------------------------------------------------------------------------------ options and values ---
def _options(*, smooth, per_image, weight, classes, ignore_class, from_logits, axis, **log_loss):
    """The checked options every region loss has, and ``log_loss`` passed by the losses that have it."""
    return dict(smooth=check_scalar("smooth", smooth, low=0.0), per_image=check_bool("per_image", per_image),
                **{name: check_bool(name, value) for name, value in log_loss.items()},
                weight=per_class("weight", weight), classes=class_list(classes),
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def _stats(y_true, y_pred, mode, *, per_image, weight, classes, ignore_class, from_logits, axis, pixel_weight=None):
    x, target, index, _, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight, weight=weight)
    classes = check_classes(classes, x.shape[-1])
    stats = region_stats(x, target, index, mode, ignore=ignore_class, from_logits=from_logits, per_image=per_image,
                         pw=pw)
    return stats, classes


def _overlap(y_true, y_pred, mode, *, score, power=None, smooth, log_loss, **options):
    """The values of a Tversky-family loss (``score``: :func:`dice_score` or a :func:`tversky_score`)."""
    (tp, fp, fn, _), classes = _stats(y_true, y_pred, mode, **options)
    values = region_values(tp, fp, fn, score, smooth=smooth, log_loss=log_loss, power=power,
                           weight=options["weight"], classes=classes)
    return rows(values, options["per_image"])


def _dice(y_true, y_pred, mode, **options):
    return _overlap(y_true, y_pred, mode, score=dice_score, **options)


def _jaccard(y_true, y_pred, mode, **options):
    return _overlap(y_true, y_pred, mode, score=tversky_score(1.0, 1.0), **options)


def _tversky(y_true, y_pred, mode, *, alpha, beta, gamma=None, **options):
    return _overlap(y_true, y_pred, mode, score=tversky_score(alpha, beta), power=gamma, **options)


def _generalized_dice(y_true, y_pred, mode, *, weight_type, smooth, log_loss, **options):
    (tp, fp, fn, g), classes = _stats(y_true, y_pred, mode, **options)
    values = gdl_values(tp, fp, fn, g, weight_type=weight_type, smooth=smooth, log_loss=log_loss,
                        weight=options["weight"], classes=classes)
    return rows(values, options["per_image"])


def _sensitivity_specificity(y_true, y_pred, mode, *, r, smooth, per_image, weight, classes, ignore_class,
                             from_logits, axis, pixel_weight=None):
    x, target, index, _, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight, weight=weight)
    values = sensitivity_specificity_values(x, target, index, mode, r=r, smooth=smooth, ignore=ignore_class,
                                            from_logits=from_logits, per_image=per_image, weight=weight,
                                            classes=check_classes(classes, x.shape[-1]), pw=pw)
    return rows(values, per_image)


def _log_cosh_dice(y_true, y_pred, mode, *, smooth, **options):
    (tp, fp, fn, _), classes = _stats(y_true, y_pred, mode, **options)
    values = log_cosh_dice_values(tp, fp, fn, smooth=smooth, weight=options["weight"], classes=classes)
    return rows(values, options["per_image"])


# ----------------------------------------------------------------------------------------------- functions ---
def dice_loss(y_true, y_pred, mode, *, smooth=1e-5, per_image=False, log_loss=False, weight=None, classes=None,
              ignore_class=None, from_logits=False, axis=-1, pixel_weight=None):
    """Dice loss, unreduced: the values of :class:`DiceLoss` (same options)."""
    return _dice(y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight, **_options(
        smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight, classes=classes,
        ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def jaccard_loss(y_true, y_pred, mode, *, smooth=1e-5, per_image=False, log_loss=False, weight=None, classes=None,
                 ignore_class=None, from_logits=False, axis=-1, pixel_weight=None):
    """Jaccard loss, unreduced: the values of :class:`JaccardLoss` (same options)."""
    return _jaccard(y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight, **_options(
        smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight, classes=classes,
        ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def tversky_loss(y_true, y_pred, mode, *, alpha=0.3, beta=0.7, smooth=1e-5, per_image=False, log_loss=False,
                 weight=None, classes=None, ignore_class=None, from_logits=False, axis=-1, pixel_weight=None):
    """Tversky loss, unreduced: the values of :class:`TverskyLoss` (same options)."""
    mode = check_mode(mode)
    alpha, beta = check_alpha_beta(alpha, beta)
    return _tversky(y_true, y_pred, mode, alpha=alpha, beta=beta, pixel_weight=pixel_weight, **_options(
        smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight, classes=classes,
        ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def focal_tversky_loss(y_true, y_pred, mode, *, alpha=0.3, beta=0.7, gamma=0.75, smooth=1e-5, per_image=False,
                       log_loss=False, weight=None, classes=None, ignore_class=None, from_logits=False, axis=-1,
                       pixel_weight=None):
    """Focal-Tversky loss, unreduced: the values of :class:`FocalTverskyLoss` (same options)."""
    mode = check_mode(mode)
    alpha, beta = check_alpha_beta(alpha, beta)
    return _tversky(y_true, y_pred, mode, alpha=alpha, beta=beta, gamma=check_scalar("gamma", gamma, low=0.0),
                    pixel_weight=pixel_weight, **_options(
                        smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight, classes=classes,
                        ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def generalized_dice_loss(y_true, y_pred, mode, *, weight_type="square", smooth=1e-5, per_image=False, log_loss=False,
                          weight=None, classes=None, ignore_class=None, from_logits=False, axis=-1,
                          pixel_weight=None):
    """Generalized Dice loss, unreduced: the values of :class:`GeneralizedDiceLoss` (same options)."""
    mode = check_mode(mode)
    return _generalized_dice(y_true, y_pred, mode, weight_type=check_weight_type(weight_type),
                             pixel_weight=pixel_weight, **_options(
        smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight, classes=classes,
        ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def sensitivity_specificity_loss(y_true, y_pred, mode, *, r=0.05, smooth=1e-5, per_image=False, weight=None,
                                 classes=None, ignore_class=None, from_logits=False, axis=-1, pixel_weight=None):
    """Sensitivity-specificity loss, unreduced: the values of :class:`SensitivitySpecificityLoss` (same options)."""
    mode = check_mode(mode)
    return _sensitivity_specificity(y_true, y_pred, mode, r=check_scalar("r", r, low=0.0, high=1.0),
                                    pixel_weight=pixel_weight, **_options(
        smooth=smooth, per_image=per_image, weight=weight, classes=classes, ignore_class=ignore_class,
        from_logits=from_logits, axis=axis))[0]


def log_cosh_dice_loss(y_true, y_pred, mode, *, smooth=1e-5, per_image=False, weight=None, classes=None,
                       ignore_class=None, from_logits=False, axis=-1, pixel_weight=None):
    """Log-cosh Dice loss, unreduced: the values of :class:`LogCoshDiceLoss` (same options)."""
    return _log_cosh_dice(y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight, **_options(
        smooth=smooth, per_image=per_image, weight=weight, classes=classes, ignore_class=ignore_class,
        from_logits=from_logits, axis=axis))[0]


# ------------------------------------------------------------------------------------------------- classes ---
_ARGS = """Args:
        mode: "binary", "multiclass" or "multilabel".{option}
        smooth: s >= 0, added to numerator and denominator.
        per_image: one value per image (then ``sample_weight`` weighs images); False: statistics pooled over the
            batch, one value (``sample_weight`` refused).{log_loss}
        weight: per-class weights (C values): the weighted mean over classes.
        classes: class indices to keep (e.g. all but background); None keeps all.
        ignore_class: target value left out of every statistic.
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, used as given.
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss."""
_LOG_LOSS = """
        log_loss: ``-log(max(score, 1e-7))`` instead of ``1 - score``."""


@register
@fill_doc(args=_ARGS, option="", log_loss=_LOG_LOSS)
class DiceLoss(SegLoss):
    """Dice loss (Milletari et al. 2016): 1 - (2 tp + s) / (2 tp + fp + fn + s) per class, with the soft statistics
    of ``seglosses.dice_loss`` (L1 form on soft targets).

    {args}
    """

    def __init__(self, mode, *, smooth=1e-5, per_image=False, log_loss=False, weight=None, classes=None,
                 ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size", name="dice_loss",
                 dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_options(
            smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight, classes=classes,
            ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _dice(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_ARGS, option="", log_loss=_LOG_LOSS)
class JaccardLoss(SegLoss):
    """Jaccard (soft IoU) loss: 1 - (tp + s) / (tp + fp + fn + s) per class.

    {args}
    """

    def __init__(self, mode, *, smooth=1e-5, per_image=False, log_loss=False, weight=None, classes=None,
                 ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size", name="jaccard_loss",
                 dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_options(
            smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight, classes=classes,
            ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _jaccard(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


_ALPHA_BETA = """
        alpha, beta: the weights of false positives and false negatives (each >= 0, not both 0)."""


@register
@fill_doc(args=_ARGS, option=_ALPHA_BETA, log_loss=_LOG_LOSS)
class TverskyLoss(SegLoss):
    """Tversky loss (Salehi et al. 2017): 1 - (tp + s) / (tp + alpha fp + beta fn + s); ``alpha`` weighs false
    positives, ``beta`` false negatives.

    {args}

    Against ``keras.losses.Tversky(alpha=a, beta=b)`` (one pooled score, no smoothing in the numerator: compare
    with "binary" and ``smooth=0``): every Keras release that has it, 3.3.0 up to and including 3.15.1, weighs false
    negatives with ``alpha`` and false positives with ``beta`` (its code swaps ``y_true`` and ``y_pred``, against its
    own docstring), so there it equals ``TverskyLoss(alpha=b, beta=a)``: swap the two. Keras fixed this on its
    master branch (keras-team/keras#23333, merged 2026-07-28), which 3.15.1 (a patch release from the r3.15 branch)
    does not contain; the fix ships in the release after 3.15.1 (3.16.0 on the master branch). From that release
    on, ``alpha`` and ``beta`` mean the same in both: do not swap them. Check ``keras.version()``.
    """

    def __init__(self, mode, *, alpha=0.3, beta=0.7, smooth=1e-5, per_image=False, log_loss=False, weight=None,
                 classes=None, ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="tversky_loss", dtype=None):
        alpha, beta = check_alpha_beta(alpha, beta)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, alpha=alpha, beta=beta, **_options(
            smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight, classes=classes,
            ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _tversky(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_ARGS, option=_ALPHA_BETA + """
        gamma: the exponent of each class's Tversky loss (>= 0).""", log_loss=_LOG_LOSS)
class FocalTverskyLoss(SegLoss):
    """Focal-Tversky loss (Abraham & Khan 2019): the Tversky loss of each class raised to ``gamma`` (default 0.75);
    ``alpha`` and ``beta`` as in :class:`TverskyLoss` (and the same remark on Keras' ``Tversky``). A NaN target gives
    a NaN loss (not 0).

    {args}
    """

    def __init__(self, mode, *, alpha=0.3, beta=0.7, gamma=0.75, smooth=1e-5, per_image=False, log_loss=False,
                 weight=None, classes=None, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="focal_tversky_loss", dtype=None):
        alpha, beta = check_alpha_beta(alpha, beta)
        gamma = check_scalar("gamma", gamma, low=0.0)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, alpha=alpha, beta=beta, gamma=gamma,
                         **_options(smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight,
                                    classes=classes, ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _tversky(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_ARGS, option="""
        weight_type: the class weights r_c: "square" (1/G_c^2), "simple" (1/G_c) or "uniform" (1).""",
          log_loss=_LOG_LOSS)
class GeneralizedDiceLoss(SegLoss):
    """Generalized Dice loss (Sudre et al. 2017): one Dice over all classes, class c weighted by 1/G_c^2
    ("square"), 1/G_c ("simple") or 1 ("uniform"); absent classes get the largest finite weight.

    {args}
    """

    def __init__(self, mode, *, weight_type="square", smooth=1e-5, per_image=False, log_loss=False, weight=None,
                 classes=None, ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="generalized_dice_loss", dtype=None):
        weight_type = check_weight_type(weight_type)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, weight_type=weight_type,
                         **_options(smooth=smooth, per_image=per_image, log_loss=log_loss, weight=weight,
                                    classes=classes, ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _generalized_dice(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_ARGS, option="""
        r: weight of the sensitivity term in [0, 1] (Brosch's "sensitivity ratio", default 0.05).""", log_loss="")
class SensitivitySpecificityLoss(SegLoss):
    """Sensitivity-specificity loss (Brosch et al. 2015), as ``seglosses.sensitivity_specificity_loss``:
    per class ``r sum (g - p)^2 g / (sum g + s) + (1 - r) sum (g - p)^2 (1 - g) / (sum (1 - g) + s)`` (0/0 = 0).

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import SensitivitySpecificityLoss
        >>> loss = SensitivitySpecificityLoss("binary", smooth=0.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 6)  # 0.05 / 4 + 0.95 / 4
        0.25
    """

    def __init__(self, mode, *, r=0.05, smooth=1e-5, per_image=False, weight=None, classes=None, ignore_class=None,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="sensitivity_specificity_loss",
                 dtype=None):
        r = check_scalar("r", r, low=0.0, high=1.0)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, r=r, **_options(
            smooth=smooth, per_image=per_image, weight=weight, classes=classes, ignore_class=ignore_class,
            from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _sensitivity_specificity(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_ARGS, option="", log_loss="")
class LogCoshDiceLoss(SegLoss):
    """Log-cosh Dice loss (Jadon 2020): ``log(cosh(1 - Dice_c))`` per class, Dice_c the soft Dice of
    :class:`DiceLoss`, as ``seglosses.log_cosh_dice_loss``.

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import LogCoshDiceLoss
        >>> loss = LogCoshDiceLoss("binary", smooth=0.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 5)  # log cosh(0.5) = 0.1201145
        0.12011
    """

    def __init__(self, mode, *, smooth=1e-5, per_image=False, weight=None, classes=None, ignore_class=None,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="log_cosh_dice_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_options(
            smooth=smooth, per_image=per_image, weight=weight, classes=classes, ignore_class=ignore_class,
            from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _log_cosh_dice(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
