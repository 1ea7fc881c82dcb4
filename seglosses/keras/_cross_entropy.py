"""The cross-entropy family of Jadon's survey in Keras: cross-entropy (the focal loss at gamma = 0), weighted and
balanced cross-entropy. Elementwise like the focal loss: the map's mean over the valid entries is the loss."""

from __future__ import annotations

from keras import ops

from seglosses.core.args import beta_high, check_beta, check_bool, check_ignore_index, check_mode, check_scalar
from seglosses.keras._base import SegLoss, check_axis, fill_doc, is_vector, per_class, pixel_map, register
from seglosses.keras._base import weighted_inputs
from seglosses.keras._focal import focal_map
from seglosses.keras._ops import class_counts, keep, log_probs, masked, split_target, target_sum


def posneg_values(x, target, index, mode, *, beta, balanced, ignore, smoothing, from_logits, pw=None):
    """``-(beta y log p + b (1 - y) log(1 - p))`` per class channel, b = 1 (weighted) or 1 - beta (balanced);
    summed over classes per pixel for "multiclass". Returns the map (``(B, S, C)`` or ``(B, S)``) and its weights.
    ``pw``: the pixel weights (``(B, S, 1)``; ``(B, S, C)`` but for "multiclass"; 0 at ignored entries) multiply
    each entry's term, its weight in the mean and its count in ``beta="auto"``."""
    dt = x.dtype
    c = x.shape[-1]
    logp, log1mp = log_probs(x, mode, from_logits)
    v, t, g = split_target(target, index, ignore, dt)
    if mode == "multiclass" and pw is not None:
        pw = pw[..., 0]
    if beta == "auto":  # HED: beta_c = share of valid negatives of class c in the batch (a constant)
        if pw is not None:  # counts weighted: a weight k counts a pixel k times
            ones = pw * ops.ones_like(logp[..., 0] if mode == "multiclass" else logp)
            pos = (class_counts(t, ones, c, dt) if index else ops.sum(g * ops.expand_dims(ones, -1), axis=(0, 1))) \
                if mode == "multiclass" else ops.sum(g * ones, axis=(0, 1))
            total = ops.sum(ones) if mode == "multiclass" else ops.sum(ones, axis=(0, 1))
        elif mode == "multiclass":
            pos = class_counts(t, v, c, dt) if index else ops.sum(g, axis=(0, 1))
            total = ops.sum(v) if v is not None else ops.cast(ops.shape(x)[0] * ops.shape(x)[1], dt)
        else:
            pos = ops.sum(g, axis=(0, 1))
            total = ops.sum(v, axis=(0, 1)) if v is not None else ops.cast(ops.shape(x)[0] * ops.shape(x)[1], dt)
        ok = ops.greater(total, 0)
        bvec = ops.stop_gradient(ops.where(ok, 1 - pos / ops.where(ok, total, ops.ones_like(total)), 0.5))
    elif isinstance(beta, list):
        bvec = ops.convert_to_tensor(beta, dtype=dt)
    else:
        bvec = beta
    neg = (1 - bvec) if balanced else 1.0
    if mode == "multiclass":
        # sum_c [beta_c y_c log p_c + b_c (1 - y_c) log(1 - p_c)]
        #   = T[beta log p - b log(1 - p)] + sum_c b_c log(1 - p_c),  T[f] = sum_c y_c f_c
        negterm = neg * log1mp
        loss = -(target_sum(bvec * logp - negterm, t, g, smoothing) + ops.sum(negterm, axis=-1))
    else:
        y = g if not smoothing else g * (1 - smoothing) + smoothing / 2
        loss = -(bvec * y * logp + neg * (1 - y) * log1mp)
    if pw is None:
        return masked(loss, v)
    return masked(loss * pw, v)[0], keep(pw * ops.ones_like(loss), v)


def check_keras_beta(beta, balanced):
    """:func:`seglosses.core.args.check_beta`, per-class values as a list of floats."""
    if is_vector(beta):
        return per_class("beta", beta, high=beta_high(balanced))
    return check_beta(beta, balanced=balanced)


def _options(*, ignore_class, label_smoothing, from_logits, axis):
    return dict(ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                label_smoothing=check_scalar("label_smoothing", label_smoothing, low=0.0, high=1.0),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def _cross_entropy(y_true, y_pred, mode, *, weight, **options):
    return focal_map(y_true, y_pred, mode, alpha=None, gamma=0.0, weight=weight, **options)


def _posneg(y_true, y_pred, mode, *, balanced, beta, ignore_class, label_smoothing, from_logits, axis,
            pixel_weight=None):
    x, target, index, spatial, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                                    per_class=False, beta=beta)
    values, norm = posneg_values(x, target, index, mode, beta=beta, balanced=balanced, ignore=ignore_class,
                                 smoothing=label_smoothing, from_logits=from_logits, pw=pw)
    return pixel_map(y_pred, values, norm, mode, spatial, axis)


def cross_entropy_loss(y_true, y_pred, mode, *, weight=None, ignore_class=None, label_smoothing=0.0,
                       from_logits=False, axis=-1, pixel_weight=None):
    """Cross-entropy, unreduced: the elementwise map of :class:`CrossEntropyLoss` (same options)."""
    return _cross_entropy(y_true, y_pred, check_mode(mode), weight=per_class("weight", weight),
                          pixel_weight=pixel_weight, **_options(
        ignore_class=ignore_class, label_smoothing=label_smoothing, from_logits=from_logits, axis=axis))[0]


def weighted_cross_entropy_loss(y_true, y_pred, mode, *, beta=1.0, ignore_class=None, label_smoothing=0.0,
                                from_logits=False, axis=-1, pixel_weight=None):
    """Weighted cross-entropy, unreduced: the elementwise map of :class:`WeightedCrossEntropyLoss` (same options)."""
    return _posneg(y_true, y_pred, check_mode(mode), balanced=False, beta=check_keras_beta(beta, False),
                   pixel_weight=pixel_weight, **_options(
        ignore_class=ignore_class, label_smoothing=label_smoothing, from_logits=from_logits, axis=axis))[0]


def balanced_cross_entropy_loss(y_true, y_pred, mode, *, beta=0.5, ignore_class=None, label_smoothing=0.0,
                                from_logits=False, axis=-1, pixel_weight=None):
    """Balanced cross-entropy, unreduced: the elementwise map of :class:`BalancedCrossEntropyLoss` (same options)."""
    return _posneg(y_true, y_pred, check_mode(mode), balanced=True, beta=check_keras_beta(beta, True),
                   pixel_weight=pixel_weight, **_options(
        ignore_class=ignore_class, label_smoothing=label_smoothing, from_logits=from_logits, axis=axis))[0]


_ARGS = """Args:
        mode: "binary", "multiclass" or "multilabel".
        {beta}
        ignore_class: target value left out (class index, or e.g. 255 / -1 in a binary target).
        label_smoothing: e in [0, 1]: the target becomes ``y (1 - e) + e / 2`` (``+ e / C`` for "multiclass").
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, clamped to [1e-7, 1 - 1e-7] (and
            renormalised over the classes for "multiclass").
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss. "sum_over_batch_size" is the mean over valid entries (elements;
            pixels for "multiclass")."""


@register
@fill_doc(args=_ARGS, beta='weight: per-class weights (C values); "multiclass" class-index targets: the weighted mean, '
          "as ``F.cross_entropy``.")
class CrossEntropyLoss(SegLoss):
    """Cross-entropy: sigmoid binary cross-entropy per element ("binary", "multilabel") or softmax cross-entropy per
    pixel ("multiclass"), as ``seglosses.cross_entropy_loss``: the focal loss at gamma = 0.

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import CrossEntropyLoss
        >>> round(float(CrossEntropyLoss("multiclass")(np.array([[0, 1, 1]]), np.full((1, 3, 2), 0.5))), 6)  # ln 2
        0.693147
    """

    def __init__(self, mode, *, weight=None, ignore_class=None, label_smoothing=0.0, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="cross_entropy_loss", dtype=None):
        options = _options(ignore_class=ignore_class, label_smoothing=label_smoothing, from_logits=from_logits,
                           axis=axis)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, weight=per_class("weight", weight),
                         **options)

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _cross_entropy(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_ARGS, beta="beta: weight of the positive term (>= 0): a number or one per class.")
class WeightedCrossEntropyLoss(SegLoss):
    """Weighted cross-entropy (Jadon 2020): ``-(beta y log p + (1 - y) log(1 - p))`` per class channel, as
    ``seglosses.weighted_cross_entropy_loss``; "multiclass" takes it one-vs-rest over the softmax probabilities and
    sums over classes per pixel, with ``log(1 - p)`` from the logits (finite at any logit).

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import WeightedCrossEntropyLoss
        >>> loss = WeightedCrossEntropyLoss("binary", beta=3.0)
        >>> round(float(loss(np.array([1.0, 0.0]), np.array([0.5, 0.5]))), 6)  # (3 + 1) ln 2 / 2
        1.386294
    """

    def __init__(self, mode, *, beta=1.0, ignore_class=None, label_smoothing=0.0, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="weighted_cross_entropy_loss", dtype=None):
        options = _options(ignore_class=ignore_class, label_smoothing=label_smoothing, from_logits=from_logits,
                           axis=axis)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, beta=check_keras_beta(beta, False),
                         **options)

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _posneg(y_true, y_pred, self.mode, balanced=False, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_ARGS, beta='beta: in [0, 1]: a number, one per class, or "auto".')
class BalancedCrossEntropyLoss(SegLoss):
    """Balanced cross-entropy (Jadon 2020; Xie & Tu 2015): ``-(beta y log p + (1 - beta)(1 - y) log(1 - p))`` per
    class channel, as ``seglosses.balanced_cross_entropy_loss`` ("multiclass": one-vs-rest, summed over classes per
    pixel). ``beta="auto"``: per class, the share of valid negatives in the batch's target (HED), a constant for the
    gradient.

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import BalancedCrossEntropyLoss
        >>> loss = BalancedCrossEntropyLoss("binary", beta=0.75)
        >>> round(float(loss(np.array([1.0, 0.0]), np.array([0.5, 0.5]))), 6)  # ln 2 / 2
        0.346574
    """

    def __init__(self, mode, *, beta=0.5, ignore_class=None, label_smoothing=0.0, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="balanced_cross_entropy_loss", dtype=None):
        options = _options(ignore_class=ignore_class, label_smoothing=label_smoothing, from_logits=from_logits,
                           axis=axis)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, beta=check_keras_beta(beta, True),
                         **options)

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _posneg(y_true, y_pred, self.mode, balanced=True, pixel_weight=pixel_weight, **self.options)
