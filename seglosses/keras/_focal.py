"""The focal loss in Keras (Lin et al. 2017): the sigmoid form ("binary", "multilabel") and the softmax form
("multiclass"), an elementwise map whose mean over the valid entries is the loss."""

from __future__ import annotations

from keras import ops

from seglosses.core.args import check_bool, check_ignore_index, check_mode, check_scalar
from seglosses.keras._base import SegLoss, check_axis, is_vector, per_class, pixel_map, register, weighted_inputs
from seglosses.keras._ops import keep, logits_of, valid_mask


def _power(u, gamma):
    """``u ** gamma`` for u >= 0 with a finite gradient at u = 0 (any gamma > 0)."""
    if gamma == 0:
        return ops.ones_like(u)
    pos = ops.greater(u, 0)
    safe = ops.where(pos, u, ops.ones_like(u))
    return ops.where(pos, ops.exp(gamma * ops.log(safe)), ops.zeros_like(u))


def focal_values(x, target, index, mode, *, alpha, gamma, weight, ignore, smoothing, from_logits, epsilon=0.0,
                 pw=None):
    """Elementwise focal loss and the weights of its mean: sigmoid ``(B, S, C)``, softmax ``(B, S)``. With
    ``epsilon``, Poly-1: each class term ``(1 - p)^gamma (-log p)`` becomes ``(1 - p)^gamma (-log p + epsilon
    (1 - p))``, the same weights on both parts. ``pw``: the pixel weights (``(B, S, 1)``, or ``(B, S, C)`` in the
    sigmoid modes; 0 at ignored entries) multiply each entry's term and its weight in the mean."""
    dt = x.dtype
    if mode != "multiclass":
        x = x if from_logits else logits_of(x, False)
        v, y = valid_mask(target, ignore, dt)
        if smoothing:
            y = y * (1 - smoothing) + smoothing / 2
        bce = ops.relu(x) - x * y + ops.log1p(ops.exp(-ops.abs(x)))
        q = ops.sigmoid(x) * (1 - y) + ops.sigmoid(-x) * y  # 1 - p_t, exact at y in {0, 1}
        loss = _power(q, gamma) * (bce + epsilon * q if epsilon else bce)
        coef = None
        if alpha is not None:
            a = ops.convert_to_tensor(alpha, dtype=dt)
            coef = y * (2 * a - 1) + (1 - a)
        if weight is not None:
            w = ops.convert_to_tensor(weight, dtype=dt)
            coef = w if coef is None else coef * w
        if coef is not None:
            loss = loss * coef
        norm = ops.ones_like(loss) if v is None else v
        if pw is not None:
            loss, norm = loss * pw, norm * pw
        return keep(loss, v), keep(norm, v)
    logp = ops.log_softmax(x if from_logits else logits_of(x, True), axis=-1)
    c = x.shape[-1]
    pw = None if pw is None else pw[..., 0]
    q = -ops.expm1(logp)  # 1 - p_c
    f = _power(q, gamma) * (epsilon * q - logp if epsilon else -logp)  # (1 - p_c)^gamma (-log p_c), per class
    cvec = None
    if alpha is not None:
        cvec = ops.convert_to_tensor(alpha, dtype=dt) * ops.ones((c,), dtype=dt)
    wvec = None if weight is None else ops.convert_to_tensor(weight, dtype=dt)
    if wvec is not None:
        cvec = wvec if cvec is None else cvec * wvec
    if index:
        v, t = valid_mask(target, ignore, dt)
        ti = ops.expand_dims(t, -1)
        coef_vec = ops.ones((c,), dtype=dt) if cvec is None else cvec
        if smoothing:
            loss = (1 - smoothing) * ops.squeeze(ops.take_along_axis(f * coef_vec, ti, axis=-1), -1) \
                + smoothing / c * ops.sum(f * coef_vec, axis=-1)
        else:
            loss = ops.squeeze(ops.take_along_axis(f, ti, axis=-1), -1)
            if cvec is not None:
                loss = loss * ops.take(cvec, t)
        norm = ops.ones_like(loss) if wvec is None else ops.take(wvec, t)
        if pw is not None:
            loss, norm = loss * pw, norm * pw
        return keep(loss, v), keep(norm, v)
    y = target * (1 - smoothing) + smoothing / c
    coef = y if cvec is None else y * cvec
    loss = ops.sum(coef * f, axis=-1)
    return (loss, ops.ones_like(loss)) if pw is None else (loss * pw, pw)


def _options(mode, *, alpha, gamma, weight, ignore_class, label_smoothing, from_logits, axis):
    """The checked options of :func:`focal_loss` (``alpha`` in [0, 1] but for "multiclass")."""
    high = None if mode == "multiclass" else 1.0
    if alpha is not None:
        alpha = per_class("alpha", alpha, high=high) if is_vector(alpha) else \
            check_scalar("alpha", alpha, low=0.0, high=high)
    return dict(alpha=alpha, gamma=check_scalar("gamma", gamma, low=0.0), weight=per_class("weight", weight),
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                label_smoothing=check_scalar("label_smoothing", label_smoothing, low=0.0, high=1.0),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def focal_map(y_true, y_pred, mode, *, alpha, gamma, weight, ignore_class, label_smoothing, from_logits, axis,
              epsilon=0.0, pixel_weight=None):
    """The focal map in ``y_pred``'s layout and the weights of its mean, from checked options (also the
    cross-entropy's, at gamma = 0, and Poly-1's, with ``epsilon``)."""
    x, target, index, spatial, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                                    per_class=False, alpha=alpha, weight=weight)
    values, norm = focal_values(x, target, index, mode, alpha=alpha, gamma=gamma, weight=weight,
                                ignore=ignore_class, smoothing=label_smoothing, from_logits=from_logits,
                                epsilon=epsilon, pw=pw)
    return pixel_map(y_pred, values, norm, mode, spatial, axis)


def focal_loss(y_true, y_pred, mode, *, alpha=None, gamma=2.0, weight=None, ignore_class=None, label_smoothing=0.0,
               from_logits=False, axis=-1, pixel_weight=None):
    r"""Focal loss (Lin et al. 2017), unreduced: the elementwise map of :class:`FocalLoss` (same options), each
    entry's term times its ``pixel_weight``."""
    mode = check_mode(mode)
    options = _options(mode, alpha=alpha, gamma=gamma, weight=weight, ignore_class=ignore_class,
                       label_smoothing=label_smoothing, from_logits=from_logits, axis=axis)
    return focal_map(y_true, y_pred, mode, pixel_weight=pixel_weight, **options)[0]


@register
class FocalLoss(SegLoss):
    r"""Focal loss (Lin et al. 2017, arXiv 1708.02002): sigmoid form for "binary"/"multilabel", softmax form for
    "multiclass", exactly as ``seglosses.focal_loss`` (docs/semantics.md), from logits in log space or from clamped
    probabilities.

    Args:
        mode: "binary", "multiclass" or "multilabel".
        alpha: None (no weighting), a float (sigmoid: alpha_t = alpha y + (1 - alpha)(1 - y), always applied;
            softmax: multiplies every class) or one value per class.
        gamma: focusing exponent >= 0.
        weight: per-class weights (C values).
        ignore_class: target value left out (class index, or e.g. 255 / -1 in a binary target).
        label_smoothing: in [0, 1].
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, clamped to [1e-7, 1 - 1e-7].
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss. "sum_over_batch_size" is the mean over valid entries.

    Values (:func:`focal_loss`): the elementwise map, ``y_pred``'s shape (sigmoid: "binary", "multilabel") or
    ``y_pred`` without its class axis (softmax: "multiclass"), 0 at ignored entries.

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import FocalLoss
        >>> loss = FocalLoss("binary", alpha=0.25, gamma=2.0, reduction="sum")
        >>> round(float(loss(np.array([1.0, 0.0, 1.0]), np.array([0.6, 0.3, 0.7]))), 7)
        0.0525338
    """

    def __init__(self, mode, *, alpha=None, gamma=2.0, weight=None, ignore_class=None, label_smoothing=0.0,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="focal_loss", dtype=None):
        mode = check_mode(mode)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype,
                         **_options(mode, alpha=alpha, gamma=gamma, weight=weight, ignore_class=ignore_class,
                                    label_smoothing=label_smoothing, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return focal_map(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


def poly_loss(y_true, y_pred, mode, *, epsilon=1.0, alpha=None, gamma=0.0, weight=None, ignore_class=None,
              label_smoothing=0.0, from_logits=False, axis=-1, pixel_weight=None):
    r"""Poly-1 loss (Leng et al. 2022), unreduced: the elementwise map of :class:`PolyLoss` (same options)."""
    mode = check_mode(mode)
    options = _options(mode, alpha=alpha, gamma=gamma, weight=weight, ignore_class=ignore_class,
                       label_smoothing=label_smoothing, from_logits=from_logits, axis=axis)
    return focal_map(y_true, y_pred, mode, epsilon=check_scalar("epsilon", epsilon, low=-1.0),
                     pixel_weight=pixel_weight, **options)[0]


@register
class PolyLoss(SegLoss):
    r"""Poly-1 loss (Leng et al. 2022, arXiv 2204.12511): the focal loss plus ``epsilon (1 - p_t)^(gamma + 1)``
    (the cross-entropy plus ``epsilon (1 - p_t)`` at gamma = 0), exactly as ``seglosses.poly_loss``
    (docs/semantics.md): ``alpha`` and ``weight`` weigh both parts, the softmax form takes the power per class.

    Args:
        mode: "binary", "multiclass" or "multilabel".
        epsilon: the polynomial term's coefficient (>= -1).
        alpha, gamma, weight, ignore_class, label_smoothing, from_logits, axis: as :class:`FocalLoss` (gamma
            defaults to 0 here).
        reduction, name, dtype: as every Keras loss. "sum_over_batch_size" is the mean over valid entries.

    Values (:func:`poly_loss`): the elementwise map, as :class:`FocalLoss`'s.

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import PolyLoss
        >>> loss = PolyLoss("multiclass", epsilon=1.0, from_logits=True)
        >>> round(float(loss(np.array([[0, 1, 1]]), np.zeros((1, 3, 2)))), 5)  # ln 2 + 1/2
        1.19315
    """

    def __init__(self, mode, *, epsilon=1.0, alpha=None, gamma=0.0, weight=None, ignore_class=None,
                 label_smoothing=0.0, from_logits=False, axis=-1, reduction="sum_over_batch_size", name="poly_loss",
                 dtype=None):
        mode = check_mode(mode)
        options = _options(mode, alpha=alpha, gamma=gamma, weight=weight, ignore_class=ignore_class,
                           label_smoothing=label_smoothing, from_logits=from_logits, axis=axis)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype,
                         epsilon=check_scalar("epsilon", epsilon, low=-1.0), **options)

    def _values(self, y_true, y_pred, pixel_weight=None):
        return focal_map(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
