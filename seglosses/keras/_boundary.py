"""The distance-based losses in Keras: the boundary loss (Kervadec et al. 2019) and the Hausdorff distance-transform
loss (Karimi & Salcudean 2019), with the definitions and numbers of :mod:`seglosses.losses.boundary`.

Both are elementwise like the focal loss: the map ``(N, *spatial, K)`` of the kept classes, whose mean over the valid
(pixel, class) pairs is the loss. Their exact distance transforms (:mod:`._distance`) run in ``keras.ops`` at every
call; the functions also take precomputed maps. Ignored pixels are never the nearest point of a mask nor of its
outside (distances are measured to valid pixels only); a slice (image, class) whose valid pixels are all inside or
all outside its mask has no boundary and a zero map.
"""

from __future__ import annotations

import math

from keras import ops

from seglosses.core.args import check_bool, check_classes, check_ignore_index, check_mode, check_scalar
from seglosses.core.args import check_spacing
from seglosses.keras._base import SegLoss, check_axis, class_list, fill_doc, layout, register, weighted_inputs
from seglosses.keras._distance import two_sided
from seglosses.keras._ops import probabilities, same_shape


# ------------------------------------------------------------------------------------------------ formulas ---
def _masks(target, index, c, ignore, dt):
    """The target mask ``g > 0.5`` of every class (bool), the valid pixels (bool) and ``g`` (0 at ignored entries),
    each ``(B, S, C)``."""
    if index:
        t = target
        valid = ops.ones_like(t, dtype="bool") if ignore is None else ops.not_equal(t, ignore)
        mask = ops.equal(ops.expand_dims(t, -1), ops.arange(c, dtype=t.dtype))
        valid = ops.logical_and(ops.expand_dims(valid, -1), ops.ones_like(mask))
        return mask, valid, ops.cast(mask, dt)
    valid = ops.ones_like(target, dtype="bool") if ignore is None else ops.not_equal(target, ops.cast(ignore, dt))
    g = ops.where(valid, target, ops.zeros_like(target))
    return ops.logical_and(ops.greater(g, 0.5), valid), valid, g


def _fields(masks, valid, spatial, spacing, signed):
    """Per mask ``(B, S, C)`` (bool) in ``masks``: Kervadec's signed map (``signed``) or the unsigned distance to
    the boundary, ``(B, S, C)`` float32, 0 on slices without a boundary and at ignored pixels. All masks go through
    one transform."""
    c = int(masks[0].shape[-1])
    grid = (-1,) + tuple(spatial) + (len(masks) * c,)
    mask = ops.reshape(ops.concatenate(masks, axis=-1), grid)
    ok = ops.reshape(ops.concatenate([valid] * len(masks), axis=-1), grid)
    inside = ops.logical_and(mask, ok)
    outside = ops.logical_and(ops.logical_not(mask), ok)
    axes = tuple(range(1, len(spatial) + 1))
    d_out, d_in, has = two_sided(inside, outside, axes, spacing)
    zero = ops.zeros_like(d_out)
    inner = (1 - d_in) if signed else d_in
    field = ops.where(has, ops.where(outside, d_out, ops.where(inside, inner, zero)), zero)
    field = ops.stop_gradient(ops.reshape(field, (-1, math.prod(spatial), len(masks) * c)))
    return [field[..., i * c:(i + 1) * c] for i in range(len(masks))]


def _pairs(loss, valid, classes):
    """The map of the kept classes and its validity (float), 0 at ignored pairs."""
    if classes is not None:
        loss, valid = ops.take(loss, classes, axis=-1), ops.take(valid, classes, axis=-1)
    return ops.where(valid, loss, ops.zeros_like(loss)), ops.cast(valid, loss.dtype)


def _given(maps, dt):
    return ops.stop_gradient(ops.cast(maps, dt))


def boundary_values(x, target, index, mode, spatial, *, classes, spacing, ignore, from_logits, dist_maps=None):
    """``phi_c(x) p_c(x)`` ``(B, S, K)`` and its validity; ``dist_maps`` ``(B, S, C)`` replaces the computed phi.
    The target enters only through the mask ``g > 0.5``, which is False for a NaN: a NaN target element is set
    back into its value, so that it reaches the loss as NaN instead of counting as outside the mask."""
    dt = x.dtype
    p = probabilities(x, mode, from_logits)
    mask, valid, g = _masks(target, index, x.shape[-1], ignore, dt)
    if dist_maps is None:
        (phi,) = _fields([mask], valid, spatial, spacing, signed=True)
    else:
        phi = dist_maps
    loss = _given(phi, dt) * p
    if not index:
        loss = ops.where(ops.isnan(g), g, loss)
    return _pairs(loss, valid, classes)


def _powered(d, alpha):
    """``d^alpha``, 0 where d = 0 (no boundary, ignored pixels)."""
    pos = ops.greater(d, 0)
    return ops.where(pos, ops.power(ops.where(pos, d, ops.ones_like(d)), alpha), ops.zeros_like(d))


def hausdorff_values(x, target, index, mode, spatial, *, alpha, classes, spacing, ignore, from_logits,
                     target_dist=None):
    """``(p_c - g_c)^2 (d_G^alpha + d_P^alpha)`` ``(B, S, K)`` and its validity; d_P from the detached mask
    ``p > 0.5`` (valid pixels only); ``target_dist`` ``(B, S, C)`` replaces the computed d_G."""
    dt = x.dtype
    p = probabilities(x, mode, from_logits)
    mask, valid, g = _masks(target, index, x.shape[-1], ignore, dt)
    pred = ops.logical_and(ops.greater(ops.stop_gradient(p), 0.5), valid)
    if target_dist is None:
        d_g, d_p = _fields([mask, pred], valid, spatial, spacing, signed=False)
    else:
        (d_p,) = _fields([pred], valid, spatial, spacing, signed=False)
        d_g = target_dist
    weight = ops.stop_gradient(_powered(_given(d_g, dt), alpha) + _powered(ops.cast(d_p, dt), alpha))
    return _pairs(ops.square(p - g) * weight, valid, classes)


# ------------------------------------------------------------------------------------ options and values ---
def _options(*, classes, spacing, ignore_class, from_logits, axis):
    spacing = check_spacing(spacing)  # a number, or 1 to 3 of them: their count is checked at call time
    return dict(classes=class_list(classes), spacing=list(spacing) if isinstance(spacing, tuple) else spacing,
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def weigh_map(values, norm, pw, classes):
    """A loss map ``(B, S, K)`` of the kept classes and the weights of its mean, each entry times its pixel weight
    (``pw`` ``(B, S, 1 | C)``, 0 at ignored entries; None: unchanged): the map's mean becomes the weighted mean."""
    if pw is None:
        return values, norm
    if pw.shape[-1] != 1 and classes is not None:
        pw = ops.take(pw, classes, axis=-1)
    return ops.where(ops.greater(norm, 0), values * pw, ops.zeros_like(values)), norm * pw


def _distance_map(y_true, y_pred, mode, *, fn, maps_name, maps, classes, spacing, ignore_class, axis,
                  pixel_weight=None, **options):
    """The map of a distance-based loss (``fn``: :func:`boundary_values` or :func:`hausdorff_values`) in ``y_pred``'s
    layout and its validity; ``maps``: the precomputed maps (passed to ``fn`` as ``maps_name``), or None."""
    y_pred = ops.convert_to_tensor(y_pred)
    pshape = tuple(y_pred.shape)
    first = axis == 1 and len(pshape) > 2
    if mode == "binary" and first and pshape[1] != 1:
        raise ValueError(f"`y_pred` must have shape (N, 1, *spatial) for mode='binary' with axis=1; got {pshape}")
    x, target, index, spatial, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight)
    nd = len(spatial)
    if not 1 <= nd <= 3:
        raise ValueError(f"`y_pred` must have 1 to 3 spatial axes between the batch and class axes for a "
                         f"distance-based loss; got shape {pshape} for mode={mode!r}")
    if any(d is None for d in spatial):
        raise ValueError(f"distance-based losses need static spatial sizes; got `y_pred` of shape {pshape}")
    spacing = check_spacing(spacing, nd)
    c = x.shape[-1]
    classes = check_classes(classes, c)
    if maps is not None:
        maps = ops.convert_to_tensor(maps)
        if not same_shape(tuple(maps.shape), pshape):
            raise ValueError(f"`{maps_name}` must have the shape of `y_pred` {pshape} (its layout, one map "
                             f"per class); got {tuple(maps.shape)}")
        if first:
            maps = ops.moveaxis(maps, 1, -1)
        options[maps_name] = ops.reshape(maps, (-1, math.prod(spatial), c))
    values, norm = fn(x, target, index, mode, spatial, classes=classes, spacing=spacing, ignore=ignore_class,
                      **options)
    values, norm = weigh_map(values, norm, pw, classes)
    k = None if mode == "binary" and not first and pshape[-1:] != (1,) else values.shape[-1]
    return layout(values, spatial, axis, k), layout(norm, spatial, axis, k)


def _boundary(y_true, y_pred, mode, dist_maps=None, **options):
    return _distance_map(y_true, y_pred, mode, fn=boundary_values, maps_name="dist_maps", maps=dist_maps, **options)


def _hausdorff_dt(y_true, y_pred, mode, target_dist=None, **options):
    return _distance_map(y_true, y_pred, mode, fn=hausdorff_values, maps_name="target_dist", maps=target_dist,
                         **options)


# ----------------------------------------------------------------------------------------------- functions ---
def boundary_loss(y_true, y_pred, mode, *, classes=None, spacing=None, ignore_class=None, from_logits=False, axis=-1,
                  dist_maps=None, pixel_weight=None):
    """Boundary loss, unreduced: the map of :class:`BoundaryLoss` (same options). ``dist_maps``: precomputed signed
    maps in ``y_pred``'s layout and shape, used instead of the ones computed here."""
    return _boundary(y_true, y_pred, check_mode(mode), dist_maps, pixel_weight=pixel_weight, **_options(
        classes=classes, spacing=spacing, ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def hausdorff_dt_loss(y_true, y_pred, mode, *, alpha=2.0, classes=None, spacing=None, ignore_class=None,
                      from_logits=False, axis=-1, target_dist=None, pixel_weight=None):
    """Hausdorff distance-transform loss, unreduced: the map of :class:`HausdorffDTLoss` (same options).
    ``target_dist``: the precomputed d_G in ``y_pred``'s layout and shape (d_P is always computed here)."""
    alpha = check_scalar("alpha", alpha, low=0.0)
    return _hausdorff_dt(y_true, y_pred, check_mode(mode), target_dist, alpha=alpha, pixel_weight=pixel_weight,
                         **_options(
        classes=classes, spacing=spacing, ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


# ------------------------------------------------------------------------------------------------- classes ---
_DOC = """Args:
        mode: "binary", "multiclass" or "multilabel".{alpha}
        classes: class indices to keep (Kervadec: the foreground classes); None keeps all.
        spacing: element size along each spatial axis (a number, or one per axis in the order of ``y_pred``'s
            spatial axes), for anisotropic volumes; None: unit.
        ignore_class: target value whose pixels count nowhere: no loss, zero gradient, never a nearest point.
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, used as given.
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss. "sum_over_batch_size" is the mean over the valid (pixel, kept
            class) pairs, the PyTorch front end's ``reduction="mean"``.

    Inputs: ``y_pred`` ``(N, *spatial, C)`` with 1 to 3 spatial axes of static size (``(N, C, *spatial)`` with
    ``axis=1``; "binary" channels-last also ``(N, *spatial)``); ``y_true`` as for :class:`DiceLoss`.

    Values: the elementwise map ``(N, *spatial, K)`` of the kept classes (``y_pred``'s layout; ``(N, *spatial)``
    for a "binary" ``y_pred`` without channel axis), 0 at ignored pixels; the mean is over the valid pairs, so
    ``sample_weight`` weighs images (shape ``(N,)`` or ``(N, 1)``) or pixels, as for :class:`FocalLoss`. A NaN in a
    valid target element gives a NaN loss (the mask ``g > 0.5`` alone would count it as outside).

    Distance maps: computed in the loss at every call, exactly (SciPy's ``distance_transform_edt`` in float32), by
    the separable transform of ``seglosses.keras._distance`` in ``keras.ops`` (any backend, inside ``jit`` /
    ``tf.function``, no gradient). Its brute-force form costs O(n) per pixel and spatial axis of length n (a 64^3
    volume: ~64x a pass over it), with a temporary of at most 2^22 elements per image, or the image's size times
    2C (4C for the Hausdorff loss) when that is larger. A ``keras.losses.Loss`` is called with ``(y_true, y_pred,
    sample_weight)`` only, so the class (in ``compile``) takes no precomputed maps; the function form does:
    :func:`{function}` ``(..., {maps}=maps)``, maps in ``y_pred``'s layout and shape, e.g. for channels-last
    inputs ``np.moveaxis(seglosses.distance_maps(t, mode, num_classes=C, batched=True, kind="{kind}"), 1, -1)``
    (the PyTorch package's builder, which takes NumPy arrays; it counts ignored pixels as outside every mask, where
    the loss's own maps leave them out)."""


@register
@fill_doc(args=_DOC, alpha="", function="boundary_loss", maps="dist_maps", kind="signed")
class BoundaryLoss(SegLoss):
    """Boundary loss (Kervadec et al. 2019, arXiv 1812.07032), as ``seglosses.boundary_loss``: the probabilities
    integrated against the signed distance map of the target,
    ``L = mean over valid pixels x and kept classes c of phi_c(x) p_c(x)``, phi_c(x) the distance to the nearest
    valid pixel of the mask M_c = (g_c > 0.5) outside it and -(distance to the nearest valid pixel outside - 1)
    inside it (0 on the inner boundary), in ``spacing`` units; 0 for a slice (image, class) whose valid pixels are
    all inside or all outside M_c. Negative for a good prediction: add it to a region loss
    (``DiceLoss(...) + alpha * BoundaryLoss(...)``, alpha raised during training).

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import BoundaryLoss
        >>> y_true = np.array([[0.0, 1.0, 1.0, 1.0, 0.0]])      # phi = [1, 0, -1, 0, 1]
        >>> round(float(BoundaryLoss("binary")(y_true, np.full((1, 5), 0.5))), 6)  # (1 + 0 - 1 + 0 + 1) / 2 / 5
        0.1

    References:
        Kervadec, Bouchtiba, Desrosiers, Granger, Dolz, Ben Ayed. Boundary loss for highly unbalanced
        segmentation. MIDL 2019. arXiv 1812.07032.
    """

    def __init__(self, mode, *, classes=None, spacing=None, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="boundary_loss", dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_options(
            classes=classes, spacing=spacing, ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _boundary(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_DOC, alpha="""
        alpha: the exponent (2 in the paper), >= 0.""", function="hausdorff_dt_loss", maps="target_dist",
          kind="unsigned")
class HausdorffDTLoss(SegLoss):
    """Hausdorff distance-transform loss (Karimi & Salcudean 2019, arXiv 1904.10030), as
    ``seglosses.hausdorff_dt_loss``: squared errors weighted by the distances to the target's and the prediction's
    boundaries, ``L = mean over valid pixels x and kept classes c of (p_c - g_c)^2 (d_G^alpha + d_P^alpha)``.
    d_G is the unsigned distance to the boundary of the target mask g_c > 0.5 (inside: to the nearest valid outside
    pixel; outside: to the nearest valid inside pixel), d_P the same for the predicted mask p_c > 0.5 (valid pixels
    only), computed from the detached probabilities at every call: no gradient flows through either. A mask with
    no boundary (empty or full) has d = 0.

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import HausdorffDTLoss
        >>> y_true = np.array([[0.0, 1.0, 1.0, 1.0, 0.0]])      # d_G = [1, 1, 2, 1, 1]; p = 1/2: d_P = 0
        >>> round(float(HausdorffDTLoss("binary")(y_true, np.full((1, 5), 0.5))), 6)  # 0.25 (1 + 1 + 4 + 1 + 1) / 5
        0.4

    References:
        Karimi, Salcudean. Reducing the Hausdorff Distance in Medical Image Segmentation with Convolutional Neural
        Networks. IEEE TMI 2019. arXiv 1904.10030.
    """

    def __init__(self, mode, *, alpha=2.0, classes=None, spacing=None, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="hausdorff_dt_loss", dtype=None):
        alpha = check_scalar("alpha", alpha, low=0.0)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, alpha=alpha, **_options(
            classes=classes, spacing=spacing, ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _hausdorff_dt(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
