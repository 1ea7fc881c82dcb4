"""The distance-based losses written with ``keras.ops`` only: the boundary loss (Kervadec et al. 2019) and the
Hausdorff distance-transform loss (Karimi & Salcudean 2019), with the definitions and numbers of
:mod:`seglosses.losses.boundary`.

Inputs are ``(B, S, C)`` after :func:`._core.prepare`, with the static spatial shape. Both losses are means over the
valid (pixel, kept class) pairs: they return the map ``(B, S, K)`` and its validity, which
:class:`seglosses.keras.SegLoss` reduces. Ignored pixels are never the nearest point of a mask nor of its outside
(distances are measured to valid pixels only); a slice (image, class) whose valid pixels are all inside or all
outside its mask has no boundary and a zero map.
"""

from __future__ import annotations

import math

from keras import ops

from seglosses.keras._distance import two_sided


def _probs(x, mode, from_logits):
    if not from_logits:
        return x
    return ops.softmax(x, axis=-1) if mode == "multiclass" else ops.sigmoid(x)


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
    p = _probs(x, mode, from_logits)
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
    p = _probs(x, mode, from_logits)
    mask, valid, g = _masks(target, index, x.shape[-1], ignore, dt)
    pred = ops.logical_and(ops.greater(ops.stop_gradient(p), 0.5), valid)
    if target_dist is None:
        d_g, d_p = _fields([mask, pred], valid, spatial, spacing, signed=False)
    else:
        (d_p,) = _fields([pred], valid, spatial, spacing, signed=False)
        d_g = target_dist
    weight = ops.stop_gradient(_powered(_given(d_g, dt), alpha) + _powered(ops.cast(d_p, dt), alpha))
    return _pairs(ops.square(p - g) * weight, valid, classes)
