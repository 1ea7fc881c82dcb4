"""The Lovasz loss in Keras (Berman et al. 2018): the Lovasz hinge ("binary", per class for "multilabel") and the
Lovasz-softmax ("multiclass"), one value per image with ``per_image=True``, else one for the batch."""

from __future__ import annotations

from keras import ops

from seglosses.core.args import check_bool, check_classes, check_ignore_index, check_mode
from seglosses.keras._base import SegLoss, check_axis, class_list, per_class, register, rows, weighted_inputs
from seglosses.keras._ops import class_mean, logits_of, valid_mask


def _lovasz_grad(fg):
    m = fg.shape[-1]
    c = ops.cumsum(fg, axis=-1)
    union = c[..., -1:] - c
    idx = ops.arange(1, m + 1, dtype=fg.dtype)
    jac = idx / (union + idx)
    return ops.concatenate([jac[..., :1], jac[..., 1:] - jac[..., :-1]], axis=-1)


def _weighted_lovasz_grad(fg, w):
    """The gradient of the Lovasz extension of the weighted Jaccard loss along the sorted errors: with
    ``G = sum w fg``, the prefix's intersection ``G - cumsum(w fg)`` and union ``G + cumsum(w (1 - fg))``,
    ``J_i = 1 - intersection / union`` (0 where the union is 0), and the differences of J."""
    wf = w * fg
    cf = ops.cumsum(wf, axis=-1)
    gw = ops.sum(wf, axis=-1, keepdims=True)
    union = gw + ops.cumsum(w - wf, axis=-1)
    ok = ops.greater(union, 0)
    jac = ops.where(ok, 1 - (gw - cf) / ops.where(ok, union, ops.ones_like(union)), ops.zeros_like(union))
    return ops.concatenate([jac[..., :1], jac[..., 1:] - jac[..., :-1]], axis=-1)


def lovasz_values(x, target, index, mode, *, classes, per_image, ignore, weight, from_logits, pw=None):
    """Lovasz hinge (binary, multilabel) or Lovasz-softmax (multiclass) per row ``(R,)``, as the PyTorch
    front end: rows are the batch (one row) or each image; classes "present" counts only present classes. ``pw``:
    pixel weights ``(B, S, 1 | C)`` (0 at ignored entries): the Lovasz extension of the weighted Jaccard loss (the
    errors themselves unweighted; a class is present where its weighted volume is positive)."""
    dt = x.dtype
    c = x.shape[-1]
    neg_inf = ops.convert_to_tensor(float("-inf"), dtype=dt)
    if mode == "multiclass":
        p = ops.softmax(x, axis=-1) if from_logits else x
        if index:
            v, t = valid_mask(target, ignore, dt)
            fg = ops.cast(ops.equal(ops.expand_dims(t, -1), ops.arange(c, dtype=t.dtype)), dt)
            if v is not None:
                fg = fg * ops.expand_dims(v, -1)
                v = ops.expand_dims(v, -1) * ops.ones_like(p)
        else:
            fg, v = target, None
        err = ops.abs(fg - p)
    else:
        score = x if from_logits else logits_of(x, False)
        v, fg = valid_mask(target, ignore, dt)
        err = 1 - score * (2 * fg - 1)
    if v is not None:
        err = ops.where(ops.greater(v, 0), err, neg_inf)

    def as_rows(z):  # (R, C, M): each image (per_image) or the whole batch
        z = ops.transpose(z, (0, 2, 1))
        return z if per_image else ops.reshape(ops.transpose(z, (1, 0, 2)), (1, c, -1))

    err, fg = as_rows(err), as_rows(fg)
    order = ops.argsort(-err, axis=-1)
    e_sorted = ops.take_along_axis(err, order, axis=-1)
    fg_sorted = ops.stop_gradient(ops.take_along_axis(fg, order, axis=-1))
    if pw is None:
        grad = _lovasz_grad(fg_sorted)
    else:
        w_sorted = ops.take_along_axis(as_rows(pw * ops.ones_like(x)), order, axis=-1)
        grad = _weighted_lovasz_grad(fg_sorted, w_sorted)
        fg_sorted = fg_sorted * w_sorted
    losses = ops.sum(ops.relu(e_sorted) * ops.stop_gradient(grad), axis=-1)  # (R, C)
    counted = None
    if mode == "multiclass" and classes == "present":
        counted = ops.cast(ops.greater(ops.sum(fg_sorted, axis=-1), 0), dt)
    return class_mean(losses, weight, None if isinstance(classes, str) else classes, counted)


def _options(*, classes, per_image, ignore_class, weight, from_logits, axis):
    if isinstance(classes, str):
        check_classes(classes, 1, allow=("present", "all"))
    else:
        classes = "all" if classes is None else class_list(classes)
    return dict(classes=classes, per_image=check_bool("per_image", per_image),
                ignore_class=check_ignore_index(ignore_class, "ignore_class"), weight=per_class("weight", weight),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def _lovasz(y_true, y_pred, mode, *, classes, per_image, ignore_class, weight, from_logits, axis, pixel_weight=None):
    x, target, index, _, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight, weight=weight)
    classes = classes if isinstance(classes, str) else check_classes(classes, x.shape[-1])
    values = lovasz_values(x, target, index, mode, classes=classes, per_image=per_image, ignore=ignore_class,
                           weight=weight, from_logits=from_logits, pw=pw)
    return rows(values, per_image)


def lovasz_loss(y_true, y_pred, mode, *, classes="present", per_image=False, ignore_class=None, weight=None,
                from_logits=False, axis=-1, pixel_weight=None):
    """Lovasz loss, unreduced: the values of :class:`LovaszLoss` (same options)."""
    return _lovasz(y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight, **_options(
        classes=classes, per_image=per_image, ignore_class=ignore_class, weight=weight, from_logits=from_logits,
        axis=axis))[0]


@register
class LovaszLoss(SegLoss):
    r"""Lovasz loss (Berman et al. 2018): Lovasz hinge for "binary" (per class for "multilabel"), Lovasz-softmax for
    "multiclass", as ``seglosses.lovasz_loss``.

    Args:
        mode: "binary", "multiclass" or "multilabel".
        classes: "present" (default: classes absent from a row's target do not count, multiclass only), "all", or
            a list of class indices.
        per_image: one value per image (mean over its counted classes); False: one value for the batch.
        ignore_class: target value left out.
        weight: per-class weights (C values).
        from_logits: False (Keras' default): probabilities (hinge modes use their clamped log-odds).
        axis, reduction, name, dtype: as the other losses.
    """

    def __init__(self, mode, *, classes="present", per_image=False, ignore_class=None, weight=None, from_logits=False,
                 axis=-1, reduction="sum_over_batch_size", name="lovasz_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_options(
            classes=classes, per_image=per_image, ignore_class=ignore_class, weight=weight, from_logits=from_logits,
            axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _lovasz(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
