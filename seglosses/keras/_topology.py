"""The topology losses in Keras: soft clDice (Shit et al. 2021) and Skeleton Recall (Kirchhoff et al. 2024), with the
definitions and numbers of :mod:`seglosses.losses.topology`.

The pools run in ``keras.ops`` on channels-last maps ``(B, *spatial, C)``: a 3-long window along one axis is the
element and its two neighbours (shifted slices, the edge element repeated), which for a max or a min is the
same as ignoring the image's outside (the authors' ``F.max_pool`` padding). Like the region losses, each gives one
value per image with ``per_image=True`` (the weighted mean over the kept classes), else one for the batch.
"""

from __future__ import annotations

from keras import ops

from seglosses.core.args import check_bool, check_classes, check_ignore_index, check_mode, check_scalar
from seglosses.core.formulas import dice_score
from seglosses.keras._base import SegLoss, check_axis, class_list, fill_doc, per_class, register, rows
from seglosses.keras._base import weighted_inputs
from seglosses.keras._ops import class_mean, keep, probabilities, ratio_loss, region_stats, same_shape, split_target

#: Skeleton Recall's tube: the skeleton dilated this many times by the cross (as seglosses.skeleton.TUBE).
_TUBE = 2


# ------------------------------------------------------------------------------------------------ skeletons ---
def _window(x, axis, fn):
    """``fn`` (ops.maximum / ops.minimum) over the 3-long window along ``axis`` (the outside ignored: the edge
    element stands in for its missing neighbour)."""
    n = int(x.shape[axis])
    if n == 1:
        return x

    def part(start, stop):
        return x[(slice(None),) * axis + (slice(start, stop),)]

    prev = ops.concatenate([part(0, 1), part(0, n - 1)], axis=axis)
    nxt = ops.concatenate([part(1, n), part(n - 1, n)], axis=axis)
    return fn(x, fn(prev, nxt))


def _erode(x, axes):
    out = _window(x, axes[0], ops.minimum)
    for a in axes[1:]:
        out = ops.minimum(out, _window(x, a, ops.minimum))
    return out


def _dilate(x, axes):
    for a in axes:
        x = _window(x, a, ops.maximum)
    return x


def _cross_dilate(x, axes):
    out = _window(x, axes[0], ops.maximum)
    for a in axes[1:]:
        out = ops.maximum(out, _window(x, a, ops.maximum))
    return out


def soft_skeleton(x, iterations, axes, valid=None):
    """The soft skeleton of clDice (Algorithm 1, the authors' soft_skel) of ``x`` over the spatial ``axes``; with
    ``valid`` (bool, the shape of ``x``) the other elements are outside the image: neutral in the pools, 0 in it."""
    inf = ops.cast(float("inf"), x.dtype)

    def erode(v):
        return _erode(v if valid is None else ops.where(valid, v, inf), axes)

    def delta(v, e):
        d = ops.relu(v - _dilate(e if valid is None else ops.where(valid, e, -inf), axes))
        return d if valid is None else ops.where(valid, d, ops.zeros_like(d))

    e = erode(x)
    skel = delta(x, e)
    for _ in range(iterations):
        x = e
        e = erode(x)
        d = delta(x, e)
        skel = skel + ops.relu(d - skel * d)
    return skel


def _hard_skeleton(mask, axes):
    """The morphological skeleton of a 0/1 map ``(B, *spatial, C)``, the outside as background (as
    seglosses.skeleton.hard_skeleton)."""
    spatial = [int(mask.shape[a]) for a in axes]
    pad = [[0, 0]] + [[1, 1]] * len(axes) + [[0, 0]]
    skel = soft_skeleton(ops.pad(mask, pad), max((min(spatial) - 1) // 2, 0), axes)
    crop = (slice(None),) + tuple(slice(1, 1 + n) for n in spatial) + (slice(None),)
    return ops.greater(skel[crop], 0.5)


def _tube(mask, axes):
    """Skeleton Recall's S of a 0/1 map: the skeleton dilated twice by the cross, inside the mask (0/1)."""
    s = ops.cast(_hard_skeleton(mask, axes), mask.dtype)
    for _ in range(_TUBE):
        s = _cross_dilate(s, axes)
    return ops.where(ops.greater(mask, 0.5), s, ops.zeros_like(s))


# ------------------------------------------------------------------------------------------------ formulas ---
def _parts(x, target, index, mode, spatial, ignore, from_logits):
    """p, 1 - p, g ``(B, S, C)`` (0 at ignored entries), the valid entries (bool, or None: all) and the grid
    ``(B, *spatial, C)``."""
    dt = x.dtype
    c = int(x.shape[-1])
    v, t, g = split_target(target, index, ignore, dt)
    p = probabilities(x, mode, from_logits)
    q = ops.sigmoid(-x) if from_logits and mode != "multiclass" else 1 - p
    if index:
        g = ops.cast(ops.equal(ops.expand_dims(t, -1), ops.arange(c, dtype=t.dtype)), dt)
        v = None if v is None else ops.expand_dims(v, -1) * ops.ones_like(g)
    valid = None if v is None else ops.greater(v, 0)
    p, q, g = keep(p, v), keep(q, v), keep(g, v)
    return p, q, g, valid, (-1,) + tuple(spatial) + (c,)


def _harmonic_loss(a, b, c, d, smooth):
    """``1 - 2 P R / (P + R)`` as seglosses.losses.topology._harmonic_loss."""
    def ratio(num, err):
        den = num + err + smooth
        ok = ops.logical_or(ops.greater(den, 0), ops.isnan(den))
        den = ops.where(ok, den, ops.ones_like(den))
        return ops.where(ok, (num + smooth) / den, ops.ones_like(den)), ops.where(ok, err / den, ops.zeros_like(den))

    prec, prec_err = ratio(a, b)
    sens, sens_err = ratio(c, d)
    den = prec + sens
    ok = ops.logical_or(ops.greater(den, 0), ops.isnan(den))
    loss = (prec * sens_err + sens * prec_err) / ops.where(ok, den, ops.ones_like(den))
    return ops.maximum(ops.where(ok, loss, ops.ones_like(loss)), 0.0)


def _sums(terms, per_image):
    out = [ops.sum(t, axis=1) for t in terms]
    return out if per_image else [ops.sum(z, axis=0, keepdims=True) for z in out]


def cldice_values(x, target, index, mode, spatial, *, alpha, iterations, smooth, ignore, from_logits, per_image,
                  weight, classes, pw=None):
    """clDice mixed with Dice per row ``(R,)``: the weighted mean over the kept classes. ``pw``: pixel weights (0 at
    ignored entries) on each pixel's part of the four skeleton sums and of the Dice statistics (the skeletons
    themselves are computed without them)."""
    p, q, g, valid, grid = _parts(x, target, index, mode, spatial, ignore, from_logits)
    axes = tuple(range(1, len(spatial) + 1))
    loss = 0.0
    if alpha > 0:
        vgrid = None if valid is None else ops.reshape(valid, grid)
        sp = ops.reshape(soft_skeleton(ops.reshape(p, grid), iterations, axes, vgrid), ops.shape(p))
        sg = ops.stop_gradient(ops.reshape(soft_skeleton(ops.reshape(g, grid), iterations, axes, vgrid),
                                           ops.shape(g)))
        terms = [sp * g, sp * (1 - g), sg * p, sg * q]
        a, b, c, d = _sums(terms if pw is None else [z * pw for z in terms], per_image)
        loss = alpha * _harmonic_loss(a, b, c, d, smooth)
    if alpha < 1:
        tp, fp, fn, _ = region_stats(x, target, index, mode, ignore=ignore, from_logits=from_logits,
                                     per_image=per_image, pw=pw)
        loss = loss + (1 - alpha) * ratio_loss(*dice_score(tp, fp, fn, smooth), False)
    return class_mean(loss, weight, classes)


def skeleton_recall_values(x, target, index, mode, spatial, *, smooth, ignore, from_logits, per_image, weight,
                           classes, skeletons=None, pw=None):
    """Skeleton Recall per row ``(R,)``; ``skeletons`` ``(B, S, C)`` replaces the computed S; ``pw``: pixel weights
    (0 at ignored entries) on each pixel's part of both sums."""
    p, q, g, valid, grid = _parts(x, target, index, mode, spatial, ignore, from_logits)
    if skeletons is None:
        mask = ops.cast(ops.greater(g, 0.5), g.dtype)
        s = ops.reshape(_tube(ops.reshape(mask, grid), tuple(range(1, len(spatial) + 1))), ops.shape(g))
    else:
        s = ops.cast(skeletons, g.dtype)
        s = s if valid is None else ops.where(valid, s, ops.zeros_like(s))
    s = ops.stop_gradient(s)
    if not index:  # a NaN in a valid target element reaches the loss
        s = ops.where(ops.isnan(g), g, s)
    err, total = _sums([s * q, s] if pw is None else [s * q * pw, s * pw], per_image)
    den = total + smooth
    ok = ops.logical_or(ops.greater(den, 0), ops.isnan(den))
    loss = ops.where(ok, err / ops.where(ok, den, ops.ones_like(den)), err * 0)
    return class_mean(ops.maximum(loss, 0.0), weight, classes)


# ------------------------------------------------------------------------------------ options and values ---
def _options(*, smooth, per_image, weight, classes, ignore_class, from_logits, axis):
    return dict(smooth=check_scalar("smooth", smooth, low=0.0), per_image=check_bool("per_image", per_image),
                weight=per_class("weight", weight), classes=class_list(classes),
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def _check_iterations(iterations):
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise TypeError(f"`iterations` must be an int; got {type(iterations).__name__}")
    if iterations < 0:
        raise ValueError(f"`iterations` must be >= 0; got {iterations}")
    return iterations


def _values(fn, y_true, y_pred, mode, *, per_image, weight, classes, ignore_class, axis, skeletons=None,
            pixel_weight=None, **options):
    y_pred = ops.convert_to_tensor(y_pred)
    pshape = tuple(y_pred.shape)
    x, target, index, spatial, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                                    weight=weight)
    if not 1 <= len(spatial) <= 3:
        raise ValueError(f"`y_pred` must have 1 to 3 spatial axes between the batch and class axes for a "
                         f"skeleton-based loss; got shape {pshape} for mode={mode!r}")
    if any(d is None for d in spatial):
        raise ValueError(f"skeleton-based losses need static spatial sizes; got `y_pred` of shape {pshape}")
    classes = check_classes(classes, x.shape[-1])
    if skeletons is not None:
        skeletons = ops.convert_to_tensor(skeletons)
        if not same_shape(tuple(skeletons.shape), pshape):
            raise ValueError(f"`skeletons` must have the shape of `y_pred` {pshape} (its layout, one map per "
                             f"class); got {tuple(skeletons.shape)}")
        if axis == 1 and len(pshape) > 2:
            skeletons = ops.moveaxis(skeletons, 1, -1)
        options["skeletons"] = ops.reshape(skeletons, ops.shape(x))
    values = fn(x, target, index, mode, spatial, ignore=ignore_class, per_image=per_image, weight=weight,
                classes=classes, pw=pw, **options)
    return rows(values, per_image)


# ----------------------------------------------------------------------------------------------- functions ---
def cldice_loss(y_true, y_pred, mode, *, alpha=0.5, iterations=10, smooth=1.0, per_image=False, weight=None,
                classes=None, ignore_class=None, from_logits=False, axis=-1, pixel_weight=None):
    """Soft clDice mixed with Dice, unreduced: the values of :class:`ClDiceLoss` (same options)."""
    alpha = check_scalar("alpha", alpha, low=0.0, high=1.0)
    return _values(cldice_values, y_true, y_pred, check_mode(mode), alpha=alpha,
                   iterations=_check_iterations(iterations), pixel_weight=pixel_weight, **_options(
                       smooth=smooth, per_image=per_image, weight=weight, classes=classes,
                       ignore_class=ignore_class, from_logits=from_logits, axis=axis))[0]


def skeleton_recall_loss(y_true, y_pred, mode, *, smooth=1e-5, per_image=False, weight=None, classes=None,
                         ignore_class=None, from_logits=False, axis=-1, skeletons=None, pixel_weight=None):
    """Skeleton Recall, unreduced: the values of :class:`SkeletonRecallLoss` (same options). ``skeletons``:
    precomputed maps S in ``y_pred``'s layout and shape, used instead of the ones computed here."""
    return _values(skeleton_recall_values, y_true, y_pred, check_mode(mode), skeletons=skeletons,
                   pixel_weight=pixel_weight, **_options(
        smooth=smooth, per_image=per_image, weight=weight, classes=classes, ignore_class=ignore_class,
        from_logits=from_logits, axis=axis))[0]


# ------------------------------------------------------------------------------------------------- classes ---
_ARGS = """Args:
        mode: "binary", "multiclass" or "multilabel".{option}
        per_image: one value per image (then ``sample_weight`` weighs images); False: statistics pooled over the
            batch, one value (``sample_weight`` refused).
        weight: per-class weights (C values): the weighted mean over classes.
        classes: class indices to keep (e.g. all but background); None keeps all.
        ignore_class: target value left out of every sum ({ignored}).
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, used as given.
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss.

    Inputs: ``y_pred`` ``(N, *spatial, C)`` with 1 to 3 spatial axes of static size (``(N, C, *spatial)`` with
    ``axis=1``; "binary" channels-last also ``(N, *spatial)``); ``y_true`` as for :class:`DiceLoss`."""


@register
@fill_doc(args=_ARGS, ignored="outside the image for the soft skeletons", option="""
        alpha: weight of clDice against Dice, in [0, 1] (the paper's 0.5; 1: clDice alone).
        iterations: erosions of the soft skeleton, >= 0 (the authors' code runs 10).
        smooth: s >= 0, in Dice, T_prec and T_sens (the authors' 1).""")
class ClDiceLoss(SegLoss):
    """Soft clDice (Shit et al. 2021, arXiv 2003.07311) mixed with soft Dice, as ``seglosses.cldice_loss``:
    per class ``(1 - alpha) (1 - Dice) + alpha (1 - 2 T_prec T_sens / (T_prec + T_sens))``, T_prec =
    (sum S_P g + s) / (sum S_P + s), T_sens = (sum S_G p + s) / (sum S_G + s), S_P and S_G the soft skeletons
    of the probabilities (with gradient) and of the target (without).

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import ClDiceLoss
        >>> y_true = np.zeros((1, 5, 5, 1), dtype="float32")
        >>> y_true[:, 2] = 1                                   # a line: its own skeleton
        >>> round(float(ClDiceLoss("binary", alpha=1.0)(y_true, y_true)), 6)
        0.0

    References:
        Shit, Paetzold, Sekuboyina, et al. clDice - a Novel Topology-Preserving Loss Function for Tubular Structure
        Segmentation. CVPR 2021. arXiv 2003.07311.
    """

    def __init__(self, mode, *, alpha=0.5, iterations=10, smooth=1.0, per_image=False, weight=None, classes=None,
                 ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size", name="cldice_loss",
                 dtype=None):
        alpha = check_scalar("alpha", alpha, low=0.0, high=1.0)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, alpha=alpha,
                         iterations=_check_iterations(iterations), **_options(
                             smooth=smooth, per_image=per_image, weight=weight, classes=classes,
                             ignore_class=ignore_class, from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _values(cldice_values, y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_ARGS, ignored="background for the skeleton", option="""
        smooth: s >= 0 (the authors' nnU-Net trainer: 1e-5).""")
class SkeletonRecallLoss(SegLoss):
    """Skeleton Recall (Kirchhoff et al. 2024, arXiv 2404.03010), as ``seglosses.skeleton_recall_loss``: per class
    ``sum S (1 - p) / (sum S + s)``, S the target's morphological skeleton dilated twice by the cross inside the
    class mask, computed at every call (no gradient). A ``keras.losses.Loss`` is called with ``(y_true, y_pred,
    sample_weight)`` only, so the class takes no precomputed maps; the function does (``skeletons=``, in
    ``y_pred``'s layout, e.g. ``np.moveaxis(seglosses.skeleton_maps(t, mode, num_classes=C, batched=True), 1, -1)``).

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import SkeletonRecallLoss
        >>> y_true = np.zeros((1, 5, 5, 1), dtype="float32")
        >>> y_true[:, 2] = 1                                   # a line: S is the line
        >>> round(float(SkeletonRecallLoss("binary", smooth=0.0)(y_true, np.full((1, 5, 5, 1), 0.5))), 6)
        0.5

    References:
        Kirchhoff, Rokuss, Roy, et al. Skeleton Recall Loss for Connectivity Conserving and Resource Efficient
        Segmentation of Thin Tubular Structures. ECCV 2024. arXiv 2404.03010.
    """

    def __init__(self, mode, *, smooth=1e-5, per_image=False, weight=None, classes=None, ignore_class=None,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="skeleton_recall_loss",
                 dtype=None):
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **_options(
            smooth=smooth, per_image=per_image, weight=weight, classes=classes, ignore_class=ignore_class,
            from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _values(skeleton_recall_values, y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
