"""The confusion family in Keras: the MCC loss (tp, fp, fn and tn per class, each its own sum) and the generalized
Wasserstein Dice loss (a distance matrix between classes), with the definitions of ``seglosses.mcc_loss`` and
``seglosses.generalized_wasserstein_dice_loss`` (the MCC score is the shared framework-free
:func:`seglosses.core.formulas.mcc_loss`).

Both give one value per image with ``per_image=True`` (``sample_weight`` weighs images), else one value for the
batch (``sample_weight`` refused: the statistics are pooled before the score).
"""

from __future__ import annotations

from keras import ops

from seglosses.core.args import check_bool, check_classes, check_ignore_index, check_mode, check_one_of, check_scalar
from seglosses.core.formulas import check_distance_matrix, mcc_loss as mcc_formula
from seglosses.keras._base import SegLoss, check_axis, class_list, fill_doc, per_class, register, rows
from seglosses.keras._base import weighted_inputs
from seglosses.keras._ops import at_target, class_mean, class_sums, keep, log1m_softmax, log_sigmoid, ratio_loss
from seglosses.keras._ops import valid_mask

WEIGHTINGS = ("default", "GDL")


# ------------------------------------------------------------------------------------------------ formulas ---
def _probs(x, mode, from_logits):
    """``(p, 1 - p)``, each ``(B, S, C)``; 1 - p from log space (as the PyTorch front end), probabilities as given."""
    if not from_logits:
        return x, 1 - x
    if mode == "multiclass":
        logp = ops.log_softmax(x, axis=-1)
        return ops.exp(logp), ops.exp(log1m_softmax(x, logp))
    return ops.exp(log_sigmoid(x)), ops.exp(log_sigmoid(-x))


def _sum(z, v, pw=None):
    """Sum over the pixels (axis 1) of the valid entries, each times its pixel weight ``pw`` (None: 1)."""
    return ops.sum(keep(z if pw is None else z * pw, v), axis=1)


def confusion_sums(x, target, index, mode, *, ignore, from_logits, pw=None):
    """Per-image ``tp, fp, fn, tn`` ``(B, C)``, each its own sum of non-negative terms (no difference of sums);
    ``pw``: pixel weights ``(B, S, 1 | C)`` (0 at ignored entries), each pixel's terms times its weight."""
    dt = x.dtype
    c = x.shape[-1]
    p, q = _probs(x, mode, from_logits)
    v, t = valid_mask(target, ignore, dt)
    if index:
        ti = ops.expand_dims(t, -1)
        pt, qt = (ops.squeeze(ops.take_along_axis(z, ti, axis=-1), -1) for z in (p, q))
        if pw is not None:
            wt = at_target(pw, t)
            pt, qt = keep(pt, v) * wt, keep(qt, v) * wt
        is_t = ops.equal(ti, ops.arange(c, dtype=t.dtype))  # (the target class is no negative of its own)
        vc = None if v is None else ops.expand_dims(v, -1)
        neg_p, neg_q = (ops.where(is_t, ops.zeros_like(z), z) for z in (p, q))
        return (class_sums(t, keep(pt, v), c), _sum(neg_p, vc, pw), class_sums(t, keep(qt, v), c),
                _sum(neg_q, vc, pw))
    g, h = t, 1 - t
    return (_sum(ops.minimum(p, g), v, pw), _sum(ops.relu(p - g), v, pw), _sum(ops.relu(q - h), v, pw),
            _sum(ops.minimum(q, h), v, pw))


def mcc_values(x, target, index, mode, *, smooth, per_image, weight, classes, ignore, from_logits, pw=None):
    """1 - MCC per row ``(R,)``: the weighted mean over the kept classes."""
    stats = confusion_sums(x, target, index, mode, ignore=ignore, from_logits=from_logits, pw=pw)
    if not per_image:
        stats = tuple(ops.sum(z, axis=0, keepdims=True) for z in stats)
    return class_mean(mcc_formula(*stats, smooth, ops), weight, classes)


def _transport_sums(x, target, index, mode, m, *, ignore, from_logits, pw=None):
    """Per-image (kept + moved mass times 1 - M, moved mass times M, volume) by target class (``(B, C)``) or, for
    the two-state modes, by label and state (``(B, C, 2)``), as the PyTorch front end; ``pw``: pixel weights
    (``(B, S, 1)``, or ``(B, S, C)`` in the two-state modes; 0 at ignored entries) on every pixel's terms."""
    dt = x.dtype
    c = x.shape[-1]
    v, t = valid_mask(target, ignore, dt)
    if mode != "multiclass":
        p, q = _probs(x, mode, from_logits)
        g, h = t, 1 - t
        to_absent, to_present = ops.relu(p - g), ops.relu(q - h)
        m01, m10 = (1.0, 1.0) if m is None else (m[0][1], m[1][0])
        a0 = ops.minimum(q, h) + (1 - m01) * to_absent
        a1 = ops.minimum(p, g) + (1 - m10) * to_present
        sums = [_sum(z, v, pw) for z in (a0, a1, m01 * to_absent, m10 * to_present, h, g)]
        return tuple(ops.stack(pair, axis=-1) for pair in (sums[0:2], sums[2:4], sums[4:6]))
    if not index:
        if m is not None:
            raise ValueError("`distance_matrix` needs class-index targets (N, *) in mode='multiclass': between two "
                             "class distributions the Wasserstein distance of a general matrix has no closed form; "
                             "with class probabilities as targets use distance_matrix=None (the 0-1 distance)")
        p, q = _probs(x, mode, from_logits)
        return _sum(ops.minimum(p, t), v, pw), _sum(ops.relu(q - (1 - t)), v, pw), _sum(t, v, pw)
    ti = ops.expand_dims(t, -1)
    if m is None:
        if from_logits:
            logpt = ops.squeeze(ops.take_along_axis(ops.log_softmax(x, axis=-1), ti, axis=-1), -1)
            a, b = ops.exp(logpt), -ops.expm1(logpt)
        else:
            is_t = ops.equal(ti, ops.arange(c, dtype=t.dtype))
            a = ops.squeeze(ops.take_along_axis(x, ti, axis=-1), -1)
            b = ops.sum(ops.where(is_t, ops.zeros_like(x), x), axis=-1)
    else:
        p = _probs(x, mode, from_logits)[0]
        mm = ops.convert_to_tensor(m, dtype=dt)
        b = ops.sum(ops.take(mm, t, axis=0) * p, axis=-1)        # W = sum_c M[t, c] p_c
        a = ops.sum(ops.take(1 - mm, t, axis=0) * p, axis=-1)    # 1 - W, its own sum
    ones = ops.ones_like(a) if v is None else v
    if pw is not None:
        a, b, ones = keep(a, v) * pw[..., 0], keep(b, v) * pw[..., 0], pw[..., 0]
    return class_sums(t, keep(a, v), c), class_sums(t, keep(b, v), c), class_sums(t, ones, c)


def gwdl_values(x, target, index, mode, *, distance_matrix, weighting_mode, smooth, per_image, ignore, from_logits,
                pw=None):
    """The generalized Wasserstein Dice loss per row ``(R,)``."""
    k = 2 if mode != "multiclass" else x.shape[-1]
    m = None
    if distance_matrix is not None:
        rows_ = check_distance_matrix(distance_matrix, k)
        top = max(v for r in rows_ for v in r)
        m = [[v / top for v in r] for r in rows_]  # MONAI's normalisation by the largest entry
    a, b, vol = _transport_sums(x, target, index, mode, m, ignore=ignore, from_logits=from_logits, pw=pw)
    if not per_image:
        a, b, vol = (ops.sum(z, axis=0, keepdims=True) for z in (a, b, vol))
    if weighting_mode == "GDL":
        alpha = beta = 1 / (vol + 1)
    else:  # the background (class 0, the absent state) has no true positives
        first = ops.equal(ops.arange(vol.shape[-1]), 0)
        alpha, beta = ops.where(first, ops.zeros_like(vol), ops.ones_like(vol)), ops.ones_like(vol)
    r = ops.shape(a)[0]
    tp = ops.sum(ops.reshape(alpha * a, (r, -1)), axis=-1)
    err = ops.sum(ops.reshape(beta * b, (r, -1)), axis=-1)
    return ratio_loss(ops.maximum(err, 0.0), 2 * ops.maximum(tp, 0.0) + smooth, False)


# ------------------------------------------------------------------------------------ options and values ---
def _mcc_options(*, smooth, per_image, weight, classes, ignore_class, from_logits, axis):
    return dict(smooth=check_scalar("smooth", smooth, low=0.0), per_image=check_bool("per_image", per_image),
                weight=per_class("weight", weight), classes=class_list(classes),
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def _gwdl_options(*, distance_matrix, weighting_mode, smooth, per_image, ignore_class, from_logits, axis):
    return dict(distance_matrix=None if distance_matrix is None else check_distance_matrix(distance_matrix),
                weighting_mode=check_one_of("weighting_mode", weighting_mode, WEIGHTINGS),
                smooth=check_scalar("smooth", smooth, low=0.0), per_image=check_bool("per_image", per_image),
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def _mcc(y_true, y_pred, mode, *, smooth, per_image, weight, classes, ignore_class, from_logits, axis,
         pixel_weight=None):
    x, target, index, _, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight, weight=weight)
    values = mcc_values(x, target, index, mode, smooth=smooth, per_image=per_image, weight=weight,
                        classes=check_classes(classes, x.shape[-1]), ignore=ignore_class, from_logits=from_logits,
                        pw=pw)
    return rows(values, per_image)


def _gwdl(y_true, y_pred, mode, *, distance_matrix, weighting_mode, smooth, per_image, ignore_class, from_logits,
          axis, pixel_weight=None):
    x, target, index, _, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                              per_class=False)
    values = gwdl_values(x, target, index, mode, distance_matrix=distance_matrix, weighting_mode=weighting_mode,
                         smooth=smooth, per_image=per_image, ignore=ignore_class, from_logits=from_logits, pw=pw)
    return rows(values, per_image)


# ----------------------------------------------------------------------------------------------- functions ---
def mcc_loss(y_true, y_pred, mode, *, smooth=1e-5, per_image=False, weight=None, classes=None, ignore_class=None,
             from_logits=False, axis=-1, pixel_weight=None):
    """MCC loss, unreduced: the values of :class:`MCCLoss` (same options)."""
    return _mcc(y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight, **_mcc_options(
        smooth=smooth, per_image=per_image, weight=weight, classes=classes, ignore_class=ignore_class,
        from_logits=from_logits, axis=axis))[0]


def generalized_wasserstein_dice_loss(y_true, y_pred, mode, *, distance_matrix=None, weighting_mode="default",
                                      smooth=1e-5, per_image=False, ignore_class=None, from_logits=False, axis=-1,
                                      pixel_weight=None):
    """Generalized Wasserstein Dice loss, unreduced: the values of :class:`GeneralizedWassersteinDiceLoss`."""
    return _gwdl(y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight, **_gwdl_options(
        distance_matrix=distance_matrix, weighting_mode=weighting_mode, smooth=smooth, per_image=per_image,
        ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


# ------------------------------------------------------------------------------------------------- classes ---
_COMMON = """smooth: s >= 0 (default 1e-5).
        per_image: one value per image (then ``sample_weight`` weighs images); False: statistics pooled over the
            batch, one value (``sample_weight`` refused).
        ignore_class: target value left out of every statistic.
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, used as given.
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss."""


@register
@fill_doc(common=_COMMON)
class MCCLoss(SegLoss):
    """Matthews correlation coefficient loss (Abhishek & Hamarneh 2021): per class
    ``1 - ((tp + s)(tn + s) - fp fn) / sqrt((tp + fp + s)(tp + fn + s)(tn + fp + s)(tn + fn + s))``, as
    ``seglosses.mcc_loss`` (tn its own sum; the score a sum of non-negative terms).

    Args:
        mode: "binary", "multiclass" or "multilabel".
        weight: per-class weights (C values): the weighted mean over classes.
        classes: class indices to keep; None keeps all.
        {common}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import MCCLoss
        >>> y = np.array([[1.0, 0.0, 1.0, 0.0]])
        >>> round(float(MCCLoss("binary", smooth=0.0)(y, y)), 6)  # a perfect prediction
        0.0
    """

    def __init__(self, mode, *, smooth=1e-5, per_image=False, weight=None, classes=None, ignore_class=None,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="mcc_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_mcc_options(
            smooth=smooth, per_image=per_image, weight=weight, classes=classes, ignore_class=ignore_class,
            from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _mcc(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(common=_COMMON)
class GeneralizedWassersteinDiceLoss(SegLoss):
    """Generalized Wasserstein Dice loss (Fidon et al. 2017), as ``seglosses.generalized_wasserstein_dice_loss``
    (MONAI's ``GeneralizedWassersteinDiceLoss`` at ``per_image=True``): errors are the Wasserstein distance
    ``W = sum_c M[t, c] p_c`` under the class distance matrix M (normalised by its largest entry).

    Args:
        mode: "binary", "multiclass" or "multilabel" (binary/multilabel: two states per element, absent and
            present, and a (2, 2) matrix between them).
        distance_matrix: the (C, C) distances (nested lists; 0 on the diagonal, >= 0); None: the 0-1 distance.
        weighting_mode: "default" (background, class 0, has weight 0) or "GDL" (1 / (volume + 1)).
        {common}
    """

    def __init__(self, mode, *, distance_matrix=None, weighting_mode="default", smooth=1e-5, per_image=False,
                 ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="generalized_wasserstein_dice_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_gwdl_options(
            distance_matrix=distance_matrix, weighting_mode=weighting_mode, smooth=smooth, per_image=per_image,
            ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _gwdl(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
