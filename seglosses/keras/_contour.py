"""The contour losses in Keras: the distance-map penalised cross-entropy (Caliva et al. 2019), the shape-aware loss
(Jadon 2020) and Boundary DoU (Sun et al. 2023), with the definitions and numbers of :mod:`seglosses.losses.contour`.

The two cross-entropy losses are elementwise like the cross-entropy (the map's mean over the valid entries is the
loss), weighted by ``1 + phi`` or ``1 + E`` computed from the target (and the hard prediction) under
``stop_gradient``, with the exact distance transforms of :mod:`._distance`; their functions also take precomputed
maps. Boundary DoU is a region loss: one value for the batch, or one per image with ``per_image=True``.

The contour of a mask: its elements with a face neighbour (4-connectivity in 2-D, 6 in 3-D) outside the mask, where
beyond the border and ignored pixels count as outside (Boundary DoU's official cross kernel with zero padding).
"""

from __future__ import annotations

import math

from keras import ops

from seglosses.core.args import check_bool, check_classes, check_ignore_index, check_mode, check_spacing
from seglosses.keras._base import SegLoss, check_axis, class_list, fill_doc, pixel_map, register, rows
from seglosses.keras._base import weighted_inputs
from seglosses.keras._boundary import _masks, weigh_map
from seglosses.keras._distance import squared_distance_to, two_sided
from seglosses.keras._ops import class_mean, log_probs, masked, same_shape, split_target, target_sum

#: Boundary DoU's smoothing term and alpha cap (the official code's).
DOU_SMOOTH = 1e-5
DOU_ALPHA_MAX = 0.8


# ------------------------------------------------------------------------------------------------ formulas ---
def _contour(mask, nd):
    """Elements of ``mask`` ``(B, *spatial, C)`` (bool) with a face neighbour outside it or beyond the border."""
    padded = ops.pad(ops.cast(mask, "int32"), [(0, 0)] + [(1, 1)] * nd + [(0, 0)])
    shape = tuple(mask.shape)
    inner = mask
    for a in range(nd):
        for lo in (0, 2):
            idx = [slice(None)] + [slice(1, 1 + int(k)) for k in shape[1:1 + nd]] + [slice(None)]
            idx[1 + a] = slice(lo, lo + int(shape[1 + a]))
            inner = ops.logical_and(inner, ops.greater(padded[tuple(idx)], 0))
    return ops.logical_and(mask, ops.logical_not(inner))


def _grid(t, spatial):
    return ops.reshape(t, (-1,) + tuple(spatial) + (int(t.shape[-1]),))


def _flat(t, spatial):
    return ops.reshape(t, (-1, math.prod(spatial), int(t.shape[-1])))


def _penalty(mask, valid, spatial, spacing):
    """phi ``(B, S, C)``: ``(max d - d) / (max d - min d)`` on each side of each boundary, 0 without a boundary."""
    axes = tuple(range(1, len(spatial) + 1))
    m, ok = _grid(mask, spatial), _grid(valid, spatial)
    inside, outside = ops.logical_and(m, ok), ops.logical_and(ops.logical_not(m), ok)
    d_out, d_in, has = two_sided(inside, outside, axes, spacing)

    def inverted(d, side):
        side = ops.logical_and(side, has)
        zero = ops.zeros_like(d)
        if 0 in tuple(d.shape):  # an empty batch (a static size): Keras' max refuses it
            return zero
        hi = ops.max(ops.where(side, d, zero), axis=axes, keepdims=True)
        lo = ops.min(ops.where(side, d, hi * ops.ones_like(d)), axis=axes, keepdims=True)
        span = hi - lo
        ok_span = ops.greater(span, 0)
        phi = ops.where(ok_span, (hi - ops.where(side, d, hi * ops.ones_like(d))) /
                        ops.where(ok_span, span, ops.ones_like(span)), ops.ones_like(d))
        return ops.where(side, phi, zero)

    return ops.stop_gradient(_flat(inverted(d_out, outside) + inverted(d_in, inside), spatial))


def _contour_distance(mask, spatial, spacing):
    """The distance of every element to the nearest contour element of the target mask ``(B, S, C)``; 0 on slices
    whose mask is empty."""
    axes = tuple(range(1, len(spatial) + 1))
    gc = _contour(_grid(mask, spatial), len(spatial))
    d = ops.sqrt(squared_distance_to(gc, axes, spacing))
    has = ops.any(gc, axis=axes, keepdims=True)
    return ops.stop_gradient(_flat(ops.where(has, d, ops.zeros_like(d)), spatial))


def _weighted_ce(x, target, index, mode, w, ignore, from_logits):
    logp, log1mp = log_probs(x, mode, from_logits)
    v, t, g = split_target(target, index, ignore, x.dtype)
    if mode == "multiclass":
        loss = -target_sum(w * logp, t, g)
    else:
        loss = -w * (g * logp + (1 - g) * log1mp)
    return masked(loss, v)


def penalty_values(x, target, index, mode, spatial, *, spacing, ignore, from_logits, dist_maps=None):
    """The distance-penalised cross-entropy map and the weights of its mean."""
    dt = x.dtype
    mask, valid, _ = _masks(target, index, x.shape[-1], ignore, dt)
    phi = _penalty(mask, valid, spatial, spacing) if dist_maps is None else ops.stop_gradient(dist_maps)
    return _weighted_ce(x, target, index, mode, 1 + ops.cast(phi, dt), ignore, from_logits)


def shape_aware_values(x, target, index, mode, spatial, *, spacing, ignore, from_logits, dist_maps=None):
    """The shape-aware map (cross-entropy times ``1 + E`` per image and class) and the weights of its mean."""
    dt = x.dtype
    c = x.shape[-1]
    mask, valid, _ = _masks(target, index, c, ignore, dt)
    d = _contour_distance(mask, spatial, spacing) if dist_maps is None else ops.stop_gradient(dist_maps)
    xs = ops.stop_gradient(x)
    if mode == "multiclass":
        pred = ops.equal(ops.expand_dims(ops.argmax(xs, axis=-1), -1), ops.arange(c, dtype="int32"))
    else:
        pred = ops.greater(xs, 0.0 if from_logits else 0.5)
    pc = _flat(_contour(_grid(ops.logical_and(pred, valid), spatial), len(spatial)), spatial)
    count = ops.sum(ops.cast(pc, dt), axis=1, keepdims=True)
    total = ops.sum(ops.where(pc, ops.cast(d, dt), ops.zeros_like(x)), axis=1, keepdims=True)
    e = ops.stop_gradient(total / ops.where(ops.greater(count, 0), count, ops.ones_like(count)))
    return _weighted_ce(x, target, index, mode, 1 + e, ignore, from_logits)


def boundary_dou_values(x, target, index, mode, spatial, *, ignore, from_logits, per_image, classes, pw=None):
    """Boundary DoU per row ``(R,)`` (R = 1, or the images with ``per_image``): the mean over the kept classes.
    ``pw``: pixel weights (0 at ignored entries) on each pixel's part of the error and intersection sums (the
    boundary's and mask's sizes that set alpha stay unweighted: shapes are not computed from weights); a row whose
    weights sum to 0 is 0, as a row without valid pixels."""
    dt = x.dtype
    mask, valid, g = _masks(target, index, x.shape[-1], ignore, dt)
    if from_logits:
        logp, log1mp = log_probs(x, mode, True)
        p, q = ops.exp(logp), ops.exp(log1mp)
    else:
        p = x
        q = 1 - p
    diff = ops.where(ops.greater(g, 0.5), q - (1 - g), p - g)
    zero = ops.zeros_like(p)
    w = 1.0 if pw is None else pw
    err = ops.sum(ops.where(valid, diff * diff * w, zero), axis=1)
    inter = ops.sum(ops.where(valid, p * g * w, zero), axis=1)
    edge = ops.sum(ops.cast(_flat(_contour(_grid(mask, spatial), len(spatial)), spatial), dt), axis=1)
    size = ops.sum(ops.cast(mask, dt), axis=1)
    # the valid pixels' count, or their weight: a row whose weights sum to 0 is a row without valid pixels
    seen = ops.sum(ops.cast(valid, dt) if pw is None else ops.where(valid, w, zero), axis=1)
    if not per_image:
        err, inter, edge, size, seen = (ops.sum(z, axis=0, keepdims=True) for z in (err, inter, edge, size, seen))
    alpha = ops.stop_gradient(ops.minimum(1 - 2 * (edge + DOU_SMOOTH) / (size + DOU_SMOOTH), DOU_ALPHA_MAX))
    num = err + DOU_SMOOTH
    # no valid pixel (or weight): 0; NaN where a NaN at a valid pixel of weight 0 made a sum NaN (never hidden)
    loss = ops.where(ops.greater(seen, 0), num / (num + (1 - alpha) * inter), (err + inter) * 0)
    return class_mean(loss, None, classes)


# ------------------------------------------------------------------------------------ options and values ---
def _spatial_of(y_pred, mode, x_spatial, axis, what):
    pshape = tuple(y_pred.shape)
    nd = len(x_spatial)
    if not 1 <= nd <= 3:
        raise ValueError(f"`y_pred` must have 1 to 3 spatial axes between the batch and class axes for {what}; "
                         f"got shape {pshape} for mode={mode!r}")
    if any(d is None for d in x_spatial):
        raise ValueError(f"{what} needs static spatial sizes; got `y_pred` of shape {pshape}")


def _binary_first(y_pred, mode, axis):
    pshape = tuple(y_pred.shape)
    first = axis == 1 and len(pshape) > 2
    if mode == "binary" and first and pshape[1] != 1:
        raise ValueError(f"`y_pred` must have shape (N, 1, *spatial) for mode='binary' with axis=1; got {pshape}")
    return first


def _ce_map(y_true, y_pred, mode, *, fn, what, dist_maps, spacing, ignore_class, from_logits, axis,
            pixel_weight=None):
    y_pred = ops.convert_to_tensor(y_pred)
    first = _binary_first(y_pred, mode, axis)
    x, target, index, spatial, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                                    per_class=False)
    _spatial_of(y_pred, mode, spatial, axis, what)
    spacing = check_spacing(spacing, len(spatial))
    maps = None
    if dist_maps is not None:
        pshape = tuple(y_pred.shape)
        maps = ops.convert_to_tensor(dist_maps)
        if not same_shape(tuple(maps.shape), pshape):
            raise ValueError(f"`dist_maps` must have the shape of `y_pred` {pshape} (its layout, one map per "
                             f"class); got {tuple(maps.shape)}")
        if first:
            maps = ops.moveaxis(maps, 1, -1)
        maps = ops.reshape(maps, (-1, math.prod(spatial), x.shape[-1]))
    values, norm = fn(x, target, index, mode, spatial, spacing=spacing, ignore=ignore_class, from_logits=from_logits,
                      dist_maps=maps)
    values, norm = weigh_map(values, norm, pw[..., 0] if pw is not None and mode == "multiclass" else pw, None)
    return pixel_map(y_pred, values, norm, mode, spatial, axis)


def _distance_penalized_cross_entropy(y_true, y_pred, mode, dist_maps=None, **options):
    return _ce_map(y_true, y_pred, mode, fn=penalty_values, what="the distance-penalised cross-entropy",
                   dist_maps=dist_maps, **options)


def _shape_aware(y_true, y_pred, mode, dist_maps=None, **options):
    return _ce_map(y_true, y_pred, mode, fn=shape_aware_values, what="the shape-aware loss", dist_maps=dist_maps,
                   **options)


def _boundary_dou(y_true, y_pred, mode, *, per_image, classes, ignore_class, from_logits, axis, pixel_weight=None):
    y_pred = ops.convert_to_tensor(y_pred)
    _binary_first(y_pred, mode, axis)
    x, target, index, spatial, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight)
    _spatial_of(y_pred, mode, spatial, axis, "Boundary DoU")
    values = boundary_dou_values(x, target, index, mode, spatial, ignore=ignore_class, from_logits=from_logits,
                                 per_image=per_image, classes=check_classes(classes, x.shape[-1]), pw=pw)
    return rows(values, per_image)


def _ce_options(*, spacing, ignore_class, from_logits, axis):
    spacing = check_spacing(spacing)  # a number, or 1 to 3 of them: their count is checked at call time
    return dict(spacing=list(spacing) if isinstance(spacing, tuple) else spacing,
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def _dou_options(*, per_image, classes, ignore_class, from_logits, axis):
    return dict(per_image=check_bool("per_image", per_image), classes=class_list(classes),
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


# ----------------------------------------------------------------------------------------------- functions ---
def distance_penalized_cross_entropy_loss(y_true, y_pred, mode, *, spacing=None, ignore_class=None,
                                          from_logits=False, axis=-1, dist_maps=None, pixel_weight=None):
    """Distance-penalised cross-entropy, unreduced: the map of :class:`DistancePenalizedCrossEntropyLoss` (same
    options). ``dist_maps``: precomputed phi in ``y_pred``'s layout and shape, used instead of the computed one."""
    return _distance_penalized_cross_entropy(y_true, y_pred, check_mode(mode), dist_maps, pixel_weight=pixel_weight,
                                             **_ce_options(
        spacing=spacing, ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def shape_aware_loss(y_true, y_pred, mode, *, spacing=None, ignore_class=None, from_logits=False, axis=-1,
                     dist_maps=None, pixel_weight=None):
    """Shape-aware loss, unreduced: the map of :class:`ShapeAwareLoss` (same options). ``dist_maps``: the
    precomputed distances to the target's contour in ``y_pred``'s layout and shape."""
    return _shape_aware(y_true, y_pred, check_mode(mode), dist_maps, pixel_weight=pixel_weight, **_ce_options(
        spacing=spacing, ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def boundary_dou_loss(y_true, y_pred, mode, *, per_image=False, classes=None, ignore_class=None, from_logits=False,
                      axis=-1, pixel_weight=None):
    """Boundary DoU, unreduced: the values of :class:`BoundaryDoULoss` (same options): one per image with
    ``per_image``, else one for the batch."""
    return _boundary_dou(y_true, y_pred, check_mode(mode), pixel_weight=pixel_weight, **_dou_options(
        per_image=per_image, classes=classes, ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


# ------------------------------------------------------------------------------------------------- classes ---
_CE_DOC = """Args:
        mode: "binary", "multiclass" or "multilabel".
        spacing: element size along each spatial axis (a number, or one per axis in the order of ``y_pred``'s
            spatial axes), for anisotropic volumes; None: unit.
        ignore_class: target value whose pixels count nowhere: no loss, zero gradient, never a nearest point.
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, clamped to [1e-7, 1 - 1e-7] (and
            renormalised over the classes for "multiclass").
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss. "sum_over_batch_size" is the mean over valid entries (elements;
            pixels for "multiclass"), the PyTorch front end's ``reduction="mean"``.

    Inputs: ``y_pred`` ``(N, *spatial, C)`` with 1 to 3 spatial axes of static size (``(N, C, *spatial)`` with
    ``axis=1``; "binary" channels-last also ``(N, *spatial)``); ``y_true`` as for :class:`CrossEntropyLoss`.

    Maps: computed in the loss at every call with the exact transform of ``seglosses.keras._distance`` (no
    gradient). A ``keras.losses.Loss`` takes no per-batch maps; the function form does: :func:`{function}`
    ``(..., dist_maps=maps)``, maps in ``y_pred``'s layout and shape, e.g. channels-last
    ``np.moveaxis(seglosses.contour_maps(t, mode, num_classes=C, kind="{kind}").numpy(), 1, -1)`` (the PyTorch
    package's builder)."""


@register
@fill_doc(args=_CE_DOC, function="distance_penalized_cross_entropy_loss", kind="penalty")
class DistancePenalizedCrossEntropyLoss(SegLoss):
    """Distance-map penalised cross-entropy (Caliva et al. 2019, arXiv 1908.03679), as
    ``seglosses.distance_penalized_cross_entropy_loss``: the cross-entropy weighted by ``1 + phi_c(x)``, phi_c the
    target's distance map of class c inverted and min-max normalised on each side of the boundary,
    ``(max d - d) / (max d - min d)`` (1 next to the boundary, 0 farthest; 0 where the class has no boundary), d the
    distance to the nearest valid element on the other side. The weight carries no gradient.

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import DistancePenalizedCrossEntropyLoss
        >>> y_true = np.array([[0.0, 1.0, 1.0, 1.0, 0.0, 0.0]])      # phi = [1, 1, 0, 1, 1, 0]
        >>> loss = DistancePenalizedCrossEntropyLoss("binary")
        >>> round(float(loss(y_true, np.full((1, 6), 0.5))), 6)  # 10 ln 2 / 6
        1.155245

    References:
        Caliva, Iriondo, Martinez, Majumdar, Pedoia. Distance Map Loss Penalty Term for Semantic Segmentation.
        MIDL 2019. arXiv 1908.03679.
    """

    def __init__(self, mode, *, spacing=None, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="distance_penalized_cross_entropy_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_ce_options(
            spacing=spacing, ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _distance_penalized_cross_entropy(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_CE_DOC, function="shape_aware_loss", kind="contour")
class ShapeAwareLoss(SegLoss):
    """Shape-aware loss (Jadon 2020, eqs. 15-16), as ``seglosses.shape_aware_loss``: the cross-entropy weighted by
    ``1 + E`` per image and class, E the mean distance from the contour of the hard prediction (argmax, or
    p > 0.5) to the target's contour; E = 0 when either contour is empty. The weight carries no gradient.

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import ShapeAwareLoss, CrossEntropyLoss
        >>> y_true = np.array([[0.0, 1.0, 1.0, 1.0, 0.0]])           # target contour {1, 3}
        >>> y_pred = np.array([[0.3, 0.3, 0.3, 0.7, 0.7]])           # predicted contour {3, 4}: E = 1/2
        >>> ratio = ShapeAwareLoss("binary")(y_true, y_pred) / CrossEntropyLoss("binary")(y_true, y_pred)
        >>> round(float(ratio), 5)
        1.5

    References:
        Jadon. A survey of loss functions for semantic segmentation. CIBCB 2020. arXiv 2006.14822.
    """

    def __init__(self, mode, *, spacing=None, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="shape_aware_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_ce_options(
            spacing=spacing, ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _shape_aware(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
class BoundaryDoULoss(SegLoss):
    """Boundary Difference over Union loss (Sun et al. 2023, arXiv 2308.00220), as ``seglosses.boundary_dou_loss``:
    per class ``(sum (p - g)^2 + s) / (sum (p - g)^2 + (1 - alpha) sum p g + s)``, alpha = min(1 - 2 (C + s) / (S + s),
    0.8), S the target's pixel count of the class and C its contour pixels, s = 1e-5; sums over the valid pixels of
    the batch (of each image with ``per_image``); the mean over the kept classes.

    Args:
        mode: "binary", "multiclass" or "multilabel".
        per_image: one value per image (then ``sample_weight`` weighs images); False: sums over the batch.
        classes: class indices to keep; None keeps all.
        ignore_class: target value whose pixels count nowhere.
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, used as given.
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss.

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import BoundaryDoULoss
        >>> y_true = np.array([[0.0, 1.0, 1.0, 1.0, 0.0]])           # S = 3, C = 2: alpha = -1/3
        >>> round(float(BoundaryDoULoss("binary")(y_true, np.full((1, 5), 0.5))), 4)  # 1.25 / (1.25 + (4/3) 1.5)
        0.3846

    References:
        Sun, Luo, Li. Boundary Difference over Union Loss for Medical Image Segmentation. MICCAI 2023.
        arXiv 2308.00220.
    """

    def __init__(self, mode, *, per_image=False, classes=None, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="boundary_dou_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_dou_options(
            per_image=per_image, classes=classes, ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _boundary_dou(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
