"""Exact Euclidean distance transforms written with ``keras.ops`` only: the Keras twin of :mod:`seglosses.distance`
(same separable transform, same numbers), for the distance-based losses on the TensorFlow, JAX and PyTorch backends,
eagerly or inside ``jit`` / ``tf.function``.

Felzenszwalb & Huttenlocher's separable squared transform: start from D = 0 at the points measured to and a large
sentinel elsewhere, then along each spatial axis k in turn replace D by its min-plus convolution with a parabola,

.. math::

    D'(x) = \\min_y \\big(D(y) + s_k^2 (x - y)^2\\big),

which gives the exact squared Euclidean distance to the nearest point of the slice. Here in its brute-force form,
vectorised: O(n^2) work per line of length n (O(n^(d+1)) per d-dimensional image of side n), through a temporary of
``lines x chunk x n`` elements, the output positions taken in chunks so that the temporary stays below
:data:`BLOCK` elements per image (16 MiB of float32; the batch axis multiplies it), or one image's own size when
that is larger (a chunk of one position). Meant for the image sizes of
training (up to ~128 per axis in 3-D, ~512 in 2-D); larger volumes are better served by precomputed maps.

Arithmetic is float32. With unit spacing every squared distance is an integer, exact while below 2**24 (images up to
~2900 pixels a side in 2-D, ~2300 in 3-D), so the result is SciPy's ``distance_transform_edt`` rounded to float32;
with a spacing the parabola is rounded once from float64 (relative error ~1e-7). Nothing here is differentiable:
the inputs are masks and every output goes through ``stop_gradient``.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

#: D of an element whose slice has no point yet (float32; absorbs every s^2 (x - y)^2 added to it).
SENTINEL = 1e30
#: A squared distance at least this large means "no point in the slice".
NO_POINT = 1e29
#: Largest number of elements per image of the (lines, chunk, n) temporary of one min-plus step (chunks of one
#: output position, whose temporary is the image's size, when the image alone is larger).
BLOCK = 2**22


def _min_plus(d, axis, step, block):
    """``out[..., x, ...] = min_y d[..., y, ...] + (step (x - y))^2`` along ``axis`` (static length), the output
    positions x in chunks that keep the temporary below ``block`` elements per image (axis 0)."""
    n = int(d.shape[axis])
    if n == 1 or 0 in d.shape:  # an empty batch (a static size): nothing to transform, and Keras' min refuses it
        return d
    per_image = math.prod(int(k) for k in d.shape[1:])
    chunk = max(1, min(n, block // max(1, per_image)))
    r = np.arange(n, dtype=np.float64)
    parabola = np.square(step * (r[:, None] - r[None, :])).astype(np.float32)  # (x, y), rounded once
    tail = (1,) * (len(d.shape) - axis - 1)
    rows = ops.expand_dims(d, axis)  # (..., 1, y, ...)
    parts = []
    for x0 in range(0, n, chunk):
        p = ops.convert_to_tensor(parabola[x0:x0 + chunk].reshape(parabola[x0:x0 + chunk].shape + tail))
        parts.append(ops.min(rows + p, axis=axis + 1))  # (..., chunk, ...)
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=axis)


def squared_distance_to(points, axes, spacing=None, block=None):
    """Squared Euclidean distance of every element to the nearest True element of ``points`` in its slice.

    Args:
        points: bool tensor; axis 0 is a batch axis (its size may be unknown), the others have static sizes.
        axes: the spatial axes (positive ints > 0); every other axis indexes slices.
        spacing: None (unit) or one element size per entry of ``axes``.
        block: the target size of the temporary per image, in elements (default :data:`BLOCK`).

    Returns:
        float32, ``points``' shape: 0 at True elements, >= :data:`NO_POINT` on slices without a True element.
    """
    spacing = (1.0,) * len(axes) if spacing is None else tuple(spacing)
    block = BLOCK if block is None else int(block)
    d = ops.where(points, ops.zeros((), "float32"), ops.full((), SENTINEL, "float32"))
    for axis, step in zip(axes, spacing):
        d = _min_plus(d, axis, float(step), block)
    return ops.stop_gradient(d)


def edt(mask, axes, spacing=None, block=None):
    """SciPy's convention: the distance of every True element of ``mask`` to the nearest False element of its slice
    (0 at False elements), float32; +inf on slices without a False element. ``axes``, ``spacing``, ``block``: as
    :func:`squared_distance_to`."""
    sq = squared_distance_to(ops.logical_not(mask), axes, spacing, block)
    return ops.where(ops.greater_equal(sq, NO_POINT), ops.full((), math.inf, "float32"), ops.sqrt(sq))


def two_sided(inside, outside, axes, spacing):
    """For masks ``(B, *spatial, C)`` of the valid pixels inside and outside each class: the distance of every
    element to the nearest ``inside`` element and to the nearest ``outside`` element (one transform for both), and
    whether the slice (image, class) has a boundary, i.e. both sets non-empty ``(B, 1.., C)``."""
    c = int(inside.shape[-1])
    sq = squared_distance_to(ops.concatenate([inside, outside], axis=-1), axes, spacing)
    has = ops.logical_and(ops.any(inside, axis=axes, keepdims=True), ops.any(outside, axis=axes, keepdims=True))
    # sqrt of the sentinel is finite (1e15): those slices have no boundary and are zeroed by `has`
    return ops.sqrt(sq[..., :c]), ops.sqrt(sq[..., c:]), has
