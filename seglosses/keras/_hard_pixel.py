"""The hard-pixel mining losses in Keras: TopK (nnU-Net) and OHEM (mmseg) cross-entropy, the mean cross-entropy over
a selection of the hardest valid pixels, as ``seglosses.topk_cross_entropy_loss`` / ``ohem_cross_entropy_loss``.

The per-pixel cross-entropy is the focal map at gamma = 0 (:func:`._focal.focal_values`); the selection runs over rows
(each image with ``per_image=True``, else the batch) with a static ``top_k`` cut by tensor ranks, the ignored entries
sorted last. Values: one per image (``per_image=True``, so ``sample_weight`` weighs images) or one for the batch; the
weights of their mean are 1 for a row with valid entries, 0 for one without (so the Keras mean is the PyTorch "mean").
"""

from __future__ import annotations

import math

import keras
from keras import ops

from seglosses.core.args import check_bool, check_count, check_ignore_index, check_mode, check_scalar
from seglosses.keras._base import SegLoss, check_axis, per_class, register, weighted_inputs
from seglosses.keras._focal import focal_values


def _valid(target, ignore):
    """The valid entries (bool) of the target, or None."""
    return None if ignore is None else ops.not_equal(target, ops.cast(ignore, target.dtype))


def _rows(t, per_image):
    """``(B, ...)`` as rows: ``(B, size of an image)`` with ``per_image``, else ``(1, size of the batch)``."""
    return ops.reshape(t, (ops.shape(t)[0], -1) if per_image else (1, -1))


def _size(t):
    size = ops.shape(t)[1]
    return size if isinstance(size, int) else None


def _ce_rows(x, target, index, mode, *, weight, ignore, smoothing, from_logits, per_image, pw=None):
    """The rows of the per-entry cross-entropy (unweighted by the pixel weights), of the valid entries (None: all
    valid) and of the pixel weights (None without; 0 at ignored entries)."""
    values, _ = focal_values(x, target, index, mode, alpha=None, gamma=0.0, weight=weight, ignore=ignore,
                             smoothing=smoothing, from_logits=from_logits)
    valid = _valid(target, ignore)
    if pw is not None:
        pw = _rows(pw[..., 0] if len(values.shape) == 2 else pw * ops.ones_like(values), per_image)
    return _rows(values, per_image), None if valid is None else _rows(valid, per_image), pw


def _result(total, divisor, count):
    """Each row's mean ``total / divisor`` (0 for an empty selection) and the weight of its mean (1 where the row has
    valid entries)."""
    if keras.backend.standardize_dtype(divisor.dtype).startswith("int"):
        rows = total / ops.maximum(ops.cast(divisor, total.dtype), ops.ones_like(total))
    else:  # the sum of the kept pixel weights: 0 gives 0
        ok = ops.greater(divisor, 0)
        rows = ops.where(ok, total / ops.where(ok, divisor, ops.ones_like(divisor)), ops.zeros_like(total))
    return rows, ops.cast(ops.greater(count, 0), total.dtype)


def _weighted_top(loss, w, k):
    """TopK's rows with pixel weights ``w`` (0 at ignored entries), as the PyTorch front end: each entry counts w
    times; the entries sorted down by their loss fill the weight ``m = ceil(k% of the row's weight)``, the last one
    with the part of its weight that fits; the loss is the weighted mean of what was filled."""
    total_w = ops.sum(w, axis=1)
    m = ops.ceil(total_w * (k / 100))
    order = ops.argsort(-ops.where(ops.isnan(loss), ops.full_like(loss, float("inf")), loss), axis=1)  # NaN first
    vals, ws = ops.take_along_axis(loss, order, axis=1), ops.take_along_axis(w, order, axis=1)
    before = ops.cumsum(ws, axis=1) - ws  # the weight of the larger losses
    part = ops.minimum(ws, ops.maximum(ops.expand_dims(m, 1) - before, 0.0))
    total = ops.sum(ops.where(ops.greater(part, 0), vals * part, ops.zeros_like(vals)), axis=1)
    return _result(total, ops.minimum(m, total_w), total_w)


def topk_values(x, target, index, mode, *, k, weight, ignore, smoothing, from_logits, per_image, pw=None):
    """Per-row TopK losses and the weights of their mean (:func:`_weighted_top` with pixel weights ``pw``)."""
    loss, valid, pw = _ce_rows(x, target, index, mode, weight=weight, ignore=ignore, smoothing=smoothing,
                               from_logits=from_logits, per_image=per_image, pw=pw)
    if pw is not None:
        return _weighted_top(loss, pw, k)
    size = _size(loss)
    if valid is None:
        count = ops.full((ops.shape(loss)[0],), ops.shape(loss)[1], dtype="int32")
    else:
        count = ops.sum(ops.cast(valid, "int32"), axis=1)
        loss = ops.where(valid, loss, ops.full_like(loss, float("-inf")))  # ignored entries sort last
    m = _top_count(count, k)
    if size == 0:
        return _result(ops.zeros((ops.shape(loss)[0],), dtype=loss.dtype), m, count)
    top = math.ceil(float(size) * k / 100) if size is not None else \
        ops.cast(ops.ceil(ops.cast(ops.shape(loss)[1], "float32") * k / 100), "int32")
    # ranked with NaN first (a NaN target or logit at a valid entry reaches the loss; TensorFlow's top_k would sort
    # it last), the values read from the map
    _, idx = ops.top_k(ops.where(ops.isnan(loss), ops.full_like(loss, float("inf")), loss), top, sorted=True)
    vals = ops.take_along_axis(loss, idx, axis=1)
    rank = ops.expand_dims(ops.arange(ops.shape(vals)[1], dtype="int32"), 0)
    total = ops.sum(ops.where(ops.less(rank, ops.expand_dims(m, 1)), vals, ops.zeros_like(vals)), axis=1)
    return _result(total, m, count)


def _top_count(count, k):
    """``ceil(count * k / 100)`` (int32): exact integer arithmetic for a whole k, float32 otherwise (exact up to
    about 2^24 / k entries; the PyTorch front end computes it in float64)."""
    if float(k).is_integer():
        hundreds, rest = count // 100, count % 100
        return hundreds * int(k) + (rest * int(k) + 99) // 100
    return ops.cast(ops.ceil(ops.cast(count, "float32") * k / 100), "int32")


def _log_pt(x, target, index, mode, ignore, from_logits):
    """``log p_t = -CE`` per entry, the cross-entropy without weight nor label smoothing (as the PyTorch front end's
    OHEM); arbitrary at ignored entries."""
    values, _ = focal_values(x, target, index, mode, alpha=None, gamma=0.0, weight=None, ignore=ignore, smoothing=0.0,
                             from_logits=from_logits)
    return -values


def _weighted_kth(lpt, w, q):
    """``(R, 1)``: per row, the smallest ``lpt`` at which the weights ``w`` of the values sorted up reach ``q``
    (+inf where the row's weight stays below q): the q-th smallest of the values each repeated w times."""
    order = ops.argsort(lpt, axis=1)
    vals, ws = ops.take_along_axis(lpt, order, axis=1), ops.take_along_axis(w, order, axis=1)
    short = ops.less(ops.cumsum(ws, axis=1), q)
    first = ops.sum(ops.cast(short, "int32"), axis=1, keepdims=True)  # the first entry that reaches q
    size = ops.shape(vals)[1]
    kth = ops.take_along_axis(vals, ops.minimum(first, size - 1), axis=1)
    return ops.where(ops.less(first, size), kth, ops.full_like(kth, float("inf")))


def ohem_values(x, target, index, mode, *, threshold, min_kept, weight, ignore, smoothing, from_logits, per_image,
                pw=None):
    """Per-row OHEM losses and the weights of their mean. With pixel weights ``pw`` each entry counts w times, as
    the PyTorch front end: the q hardest are those below the weighted q-th smallest ``p_t``
    (:func:`_weighted_kth`), and the loss is the kept entries' mean ``sum w l / sum w`` (0 when that sum is 0)."""
    loss, valid, pw = _ce_rows(x, target, index, mode, weight=weight, ignore=ignore, smoothing=smoothing,
                               from_logits=from_logits, per_image=per_image, pw=pw)
    lpt = _rows(ops.stop_gradient(_log_pt(x, target, index, mode, ignore, from_logits)), per_image)
    if valid is not None:
        lpt = ops.where(valid, lpt, ops.full_like(lpt, float("inf")))  # ignored entries sort last
    log_thr = math.log(threshold) if threshold > 0 else float("-inf")
    keep = ops.logical_not(ops.greater_equal(lpt, log_thr))  # a NaN p_t is kept: the loss is NaN
    size = _size(lpt)
    n = ops.shape(x)[0]
    q = min_kept * (1 if per_image else n)
    q = min(q, size) if size is not None and isinstance(q, int) else ops.minimum(q, ops.shape(lpt)[1])
    if pw is not None and min_kept and size != 0:
        kth = _weighted_kth(lpt, pw, float(min_kept * (1 if per_image else n)))
        keep = ops.logical_or(keep, ops.logical_not(ops.greater(lpt, kth)))
    elif not isinstance(q, int) or q > 0:
        neg, _ = ops.top_k(-lpt, q, sorted=True)
        kth = -neg[:, -1:]
        keep = ops.logical_or(keep, ops.logical_not(ops.greater(lpt, kth)))
    if valid is not None:
        keep = ops.logical_and(keep, valid)
    kept = ops.sum(ops.cast(keep, "int32"), axis=1)
    count = ops.full_like(kept, ops.shape(lpt)[1]) if valid is None else ops.sum(ops.cast(valid, "int32"), axis=1)
    if pw is not None:
        loss = ops.where(keep, loss * pw, ops.zeros_like(loss))
        return _result(ops.sum(loss, axis=1), ops.sum(ops.where(keep, pw, ops.zeros_like(pw)), axis=1),
                       ops.sum(pw, axis=1))
    total = ops.sum(ops.where(keep, loss, ops.zeros_like(loss)), axis=1)
    return _result(total, kept, count)


def _options(*, weight, ignore_class, label_smoothing, per_image, from_logits, axis):
    return dict(weight=per_class("weight", weight), ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                label_smoothing=check_scalar("label_smoothing", label_smoothing, low=0.0, high=1.0),
                per_image=check_bool("per_image", per_image), from_logits=check_bool("from_logits", from_logits),
                axis=check_axis(axis))


def _values(fn, y_true, y_pred, mode, *, weight, ignore_class, label_smoothing, per_image, from_logits, axis,
            pixel_weight=None, **selection):
    x, target, index, _, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                              per_class=False, weight=weight)
    rows, norm = fn(x, target, index, mode, weight=weight, ignore=ignore_class, smoothing=label_smoothing,
                    from_logits=from_logits, per_image=per_image, pw=pw, **selection)
    return (rows, norm) if per_image else (rows[0], norm[0])


def _topk(k):
    return check_scalar("k", k, low=0.0, high=100.0, low_open=True)


def _ohem(threshold, min_kept):
    return dict(threshold=check_scalar("threshold", threshold, low=0.0, high=1.0),
                min_kept=check_count("min_kept", min_kept))


def topk_cross_entropy_loss(y_true, y_pred, mode, *, k=10.0, weight=None, ignore_class=None, label_smoothing=0.0,
                            per_image=False, from_logits=False, axis=-1, pixel_weight=None):
    """TopK cross-entropy, unreduced: the per-image (``per_image``) or batch value of :class:`TopKCrossEntropyLoss`."""
    return _values(topk_values, y_true, y_pred, check_mode(mode), k=_topk(k), pixel_weight=pixel_weight, **_options(
        weight=weight, ignore_class=ignore_class, label_smoothing=label_smoothing, per_image=per_image,
        from_logits=from_logits, axis=axis))[0]


def ohem_cross_entropy_loss(y_true, y_pred, mode, *, threshold=0.7, min_kept=100000, weight=None, ignore_class=None,
                            label_smoothing=0.0, per_image=False, from_logits=False, axis=-1, pixel_weight=None):
    """OHEM cross-entropy, unreduced: the per-image (``per_image``) or batch value of :class:`OHEMCrossEntropyLoss`."""
    return _values(ohem_values, y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight,
                   **_ohem(threshold, min_kept), **_options(
        weight=weight, ignore_class=ignore_class, label_smoothing=label_smoothing, per_image=per_image,
        from_logits=from_logits, axis=axis))[0]


@register
class TopKCrossEntropyLoss(SegLoss):
    r"""TopK cross-entropy (nnU-Net's TopKLoss), as ``seglosses.topk_cross_entropy_loss`` (docs/semantics.md): the
    mean cross-entropy of the ``ceil(k% of the valid pixels)`` with the largest, per image or over the batch.

    Args:
        mode: "binary", "multiclass" or "multilabel" ("binary"/"multilabel": the entries are the elements).
        k: the share kept, in percent, in (0, 100].
        weight: per-class weights (C values) on each pixel's cross-entropy, before the selection.
        ignore_class: target value never selected nor counted.
        label_smoothing: in [0, 1].
        per_image: one value per image (``sample_weight`` then weighs images); False: one for the batch.
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, clamped to [1e-7, 1 - 1e-7].
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss; "sum_over_batch_size" is the mean over the images with valid
            pixels.

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import TopKCrossEntropyLoss
        >>> loss = TopKCrossEntropyLoss("binary", k=50.0, ignore_class=255, from_logits=True)
        >>> round(float(loss(np.array([[1.0, 1.0, 1.0, 255.0]]), np.array([[4.0, 0.0, -4.0, 0.0]]))), 5)
        2.35565
    """

    def __init__(self, mode, *, k=10.0, weight=None, ignore_class=None, label_smoothing=0.0, per_image=False,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="topk_cross_entropy_loss",
                 dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, k=_topk(k), **_options(
            weight=weight, ignore_class=ignore_class, label_smoothing=label_smoothing, per_image=per_image,
            from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _values(topk_values, y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
class OHEMCrossEntropyLoss(SegLoss):
    r"""OHEM cross-entropy (mmseg's OHEMPixelSampler with ``thresh``), as ``seglosses.ohem_cross_entropy_loss``
    (docs/semantics.md): the mean cross-entropy of the valid pixels whose target probability is below ``threshold``,
    and at least the ``min_kept`` (per image) hardest.

    Args:
        mode: "binary", "multiclass" or "multilabel" ("binary"/"multilabel": the entries are the elements).
        threshold: in [0, 1].
        min_kept: the least number of entries kept per image (>= 0).
        weight, ignore_class, label_smoothing, per_image, from_logits, axis, reduction, name, dtype: as
            :class:`TopKCrossEntropyLoss`.

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import OHEMCrossEntropyLoss
        >>> loss = OHEMCrossEntropyLoss("binary", threshold=0.7, min_kept=3, from_logits=True)
        >>> round(float(loss(np.ones((1, 4)), np.array([[4.0, 0.0, -4.0, 3.0]]))), 5)
        1.58663
    """

    def __init__(self, mode, *, threshold=0.7, min_kept=100000, weight=None, ignore_class=None, label_smoothing=0.0,
                 per_image=False, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="ohem_cross_entropy_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_ohem(threshold, min_kept), **_options(
            weight=weight, ignore_class=ignore_class, label_smoothing=label_smoothing, per_image=per_image,
            from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _values(ohem_values, y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
