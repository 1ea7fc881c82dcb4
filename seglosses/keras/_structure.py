"""The structure losses in Keras: the SSIM loss (Wang et al. 2004) and the correlation-maximized structural
similarity loss (Zhao et al. 2019), with the definitions and numbers of :mod:`seglosses.losses.structure`.

Both are elementwise maps ``(N, *spatial, K)`` of the kept classes (``spatial`` smaller by ``window_size - 1`` per
axis for SSIM's ``padding="valid"``). Local statistics come from a separable Gaussian window applied one spatial
axis at a time as a sum of shifted slices (no convolution op: the same arithmetic on every backend), normalised to
the valid pixels it covers: no pixel is invented at a border, an image smaller than the window gets the window
truncated to it, and ignored pixels are left out of every window.
"""

from __future__ import annotations

import itertools
import math

from keras import ops

from seglosses.core.args import check_bool, check_classes, check_ignore_index, check_mode, check_one_of
from seglosses.core.args import check_scalar, check_window
from seglosses.keras._base import SegLoss, check_axis, class_list, fill_doc, layout, per_class, register
from seglosses.keras._base import weighted_inputs
from seglosses.keras._ops import log_probs, probabilities

K1, K2, C4 = 0.01, 0.03, 0.01


# ------------------------------------------------------------------------------------------------ formulas ---
def _taps(window_size, sigma):
    k = [i - (window_size - 1) / 2 for i in range(window_size)]
    g = [math.exp(-(v * v) / (2.0 * sigma * sigma)) for v in k]
    s = math.fsum(g)
    return [v / s for v in g]


def _shift(t, axis, start, length):
    index = (slice(None),) * axis + (slice(start, start + length),)
    return t[index]


def _filter(t, taps, nd, valid):
    """``t`` ``(B, *spatial, F)`` filtered by the separable window along its spatial axes in turn: zero-padded to
    the same size, or only the centres whose window fits (``valid``)."""
    w, r = len(taps), len(taps) // 2
    for a in range(1, nd + 1):
        n = t.shape[a]
        if not valid:
            pad = [[0, 0]] * len(t.shape)
            pad[a] = [r, r]
            t = ops.pad(t, pad)
        out = n if not valid else n - w + 1
        acc = None
        for j, tap in enumerate(taps):
            term = _shift(t, a, j, out) * tap
            acc = term if acc is None else acc + term
        t = acc
    return t


def _stats(x, y, valid, spatial, window_size, sigma, padding_valid):
    """Local means, variances and covariance ``(B, *spatial', K)`` of x and y over the normalised windows, and the
    centres that count (bool, or None: all)."""
    k = x.shape[-1]
    nd = len(spatial)
    xc, yc = x - 0.5, y - 0.5
    parts = [ops.ones_like(x), xc, yc, xc * xc, yc * yc, xc * yc]
    if valid is not None:
        parts = [ops.where(valid, t, ops.zeros_like(t)) for t in parts]
    f = _filter(ops.concatenate(parts, axis=-1), _taps(window_size, sigma), nd, padding_valid)
    f = [f[..., i * k:(i + 1) * k] for i in range(6)]
    centre = valid
    if valid is not None and padding_valid:
        r = window_size // 2
        for a in range(1, nd + 1):
            centre = _shift(centre, a, r, spatial[a - 1] - 2 * r)
    wsum = f[0] if centre is None else ops.where(centre, f[0], ops.ones_like(f[0]))
    mx, my = f[1] / wsum, f[2] / wsum
    vx = ops.maximum(f[3] / wsum - mx * mx, 0.0)
    vy = ops.maximum(f[4] / wsum - my * my, 0.0)
    cxy = f[5] / wsum - mx * my
    return mx + 0.5, my + 0.5, vx, vy, cxy, centre, wsum


def _centred_variances(x, y, valid, mx, my, wsum, spatial, window_size, sigma):
    """The variances as window means of squared deviations from each centre's mean (two passes; "same")."""
    nd, r = len(spatial), window_size // 2
    taps = _taps(window_size, sigma)
    pad = [[0, 0]] + [[r, r]] * nd + [[0, 0]]
    xp, yp = ops.pad(x, pad), ops.pad(y, pad)
    vp = ops.pad(ops.ones_like(x, dtype="bool") if valid is None else valid, pad, constant_values=False)
    sx, sy = ops.zeros_like(mx), ops.zeros_like(my)
    for offset in itertools.product(range(2 * r + 1), repeat=nd):
        w = 1.0
        xs, ys, vs = xp, yp, vp
        for a, o in enumerate(offset):
            w *= taps[o]
            xs, ys, vs = (_shift(t, a + 1, o, spatial[a]) for t in (xs, ys, vs))
        zero = ops.zeros_like(sx)
        sx = sx + ops.where(vs, ops.square(xs - mx), zero) * w
        sy = sy + ops.where(vs, ops.square(ys - my), zero) * w
    return sx / wsum, sy / wsum


def _targets(x, target, index, ignore, dt):
    """g ``(B, S, C)`` (one-vs-rest for class indices; 0 at ignored entries) and the valid mask (None: all)."""
    c = x.shape[-1]
    if index:
        g = ops.cast(ops.equal(ops.expand_dims(target, -1), ops.arange(c, dtype=target.dtype)), dt)
        if ignore is None:
            return g, None
        valid = ops.not_equal(target, ops.cast(ignore, target.dtype))
        return g, ops.logical_and(ops.expand_dims(valid, -1), ops.ones_like(g, dtype="bool"))
    g = ops.cast(target, dt)
    if ignore is None:
        return g, None
    valid = ops.not_equal(g, ops.cast(ignore, dt))
    return ops.where(valid, g, ops.zeros_like(g)), valid


def _take(t, classes):
    return t if (t is None or classes is None) else ops.take(t, classes, axis=-1)


def _weights(weight, classes, dt):
    """The kept classes' weights as a ``(K,)`` tensor, or None."""
    if weight is None:
        return None
    w = ops.convert_to_tensor(weight, dtype=dt)
    return w if classes is None else ops.take(w, classes, axis=0)


def ssim_values(x, target, index, mode, spatial, *, window_size, sigma, padding, classes, weight, ignore,
                from_logits):
    """``1 - SSIM`` ``(B, *spatial', K)`` at the valid centres (0 elsewhere) and the centres that count (float)."""
    dt = x.dtype
    g, valid = _targets(x, target, index, ignore, dt)
    p = probabilities(x, mode, from_logits)
    if valid is not None:
        p = ops.where(valid, p, ops.zeros_like(p))
    p, g, valid = _take(p, classes), _take(g, classes), _take(valid, classes)
    grid = (-1,) + tuple(spatial) + (p.shape[-1],)
    p, g = ops.reshape(p, grid), ops.reshape(g, grid)
    valid = None if valid is None else ops.reshape(valid, grid)
    if padding == "valid" and any(d < window_size for d in spatial):
        # no centre fits: an empty map (B, *spatial', K) cut from p (a reshape with -1 cannot infer B from 0 values)
        empty = p[(slice(None),) + tuple(slice(0, max(d - window_size + 1, 0)) for d in spatial)]
        return empty, ops.zeros_like(empty)
    mx, my, vx, vy, cxy, centre, _ = _stats(p, g, valid, spatial, window_size, sigma, padding == "valid")
    c1, c2 = K1 * K1, K2 * K2
    num = (2 * mx * my + c1) * (2 * cxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    loss = (den - num) / den
    w = _weights(weight, classes, dt)
    norm = ops.ones_like(loss) if centre is None else ops.cast(centre, dt)
    if w is not None:
        loss, norm = loss * w, norm * w
    if centre is None:
        return loss, norm
    return ops.where(centre, loss, ops.zeros_like(loss)), norm


def correlation_ssim_values(x, target, index, mode, spatial, *, beta, window_size, sigma, classes, weight, ignore,
                            from_logits):
    """``e f CE`` ``(B, *spatial, K)`` and f (float): the loss is their sums' ratio."""
    dt = x.dtype
    g, valid = _targets(x, target, index, ignore, dt)
    logp, log1mp = log_probs(x, mode, from_logits)
    ce = -g * logp if mode == "multiclass" else -(g * logp + (1 - g) * log1mp)
    p = ops.stop_gradient(probabilities(x, mode, from_logits))
    if valid is not None:
        p = ops.where(valid, p, ops.zeros_like(p))
    p, g, ce, valid = _take(p, classes), _take(g, classes), _take(ce, classes), _take(valid, classes)
    grid = (-1,) + tuple(spatial) + (p.shape[-1],)
    p, g, ce = ops.reshape(p, grid), ops.reshape(g, grid), ops.reshape(ce, grid)
    valid = None if valid is None else ops.reshape(valid, grid)
    mx, my, _, _, _, _, wsum = _stats(p, g, valid, spatial, window_size, sigma, False)
    vx, vy = _centred_variances(p, g, valid, mx, my, wsum, spatial, window_size, sigma)
    e = ops.abs((g - my + C4) / (ops.sqrt(vy) + C4) - (p - mx + C4) / (ops.sqrt(vx) + C4))
    if valid is not None:
        e = ops.where(valid, e, ops.zeros_like(e))
    e = ops.stop_gradient(e)
    e_max = ops.max(e) if math.prod(e.shape[1:]) else ops.sum(e)
    f = ops.greater(e, beta * e_max)
    zero = ops.zeros_like(e)
    w = _weights(weight, classes, dt)
    norm = ops.cast(f, dt)
    if w is not None:
        ce, norm = ce * w, norm * w
    loss = ops.where(f, e * ce, zero)
    loss = ops.where(ops.isnan(e), e, loss)  # a NaN logit or target at a valid element reaches the loss
    return loss, norm


# ------------------------------------------------------------------------------------ options and values ---
def _options(*, window_size, sigma, classes, weight, ignore_class, from_logits, axis):
    window_size, sigma = check_window(window_size, sigma)
    return dict(window_size=window_size, sigma=sigma, classes=class_list(classes), weight=per_class("weight", weight),
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=check_axis(axis))


def _weigh_centres(values, norm, pw, spatial, classes):
    """The map at its centres ``(B, *spatial', K)`` and the weights of its mean, each centre times its pixel weight
    (``pw`` ``(B, S, 1 | C)``, 0 at ignored pixels; the windows themselves stay unweighted); "valid" padding: the
    weights of the centres, the map's spatial crop."""
    wg = ops.reshape(pw, (-1,) + tuple(spatial) + (pw.shape[-1],))
    if pw.shape[-1] != 1 and classes is not None:
        wg = ops.take(wg, classes, axis=-1)
    out = tuple(values.shape[1:-1])
    crop = tuple(slice((d - o) // 2, (d - o) // 2 + o) for d, o in zip(spatial, out))
    wg = wg[(slice(None),) + crop]
    return ops.where(ops.greater(norm, 0), values * wg, ops.zeros_like(values)), norm * wg


def _structure_map(y_true, y_pred, mode, *, fn, classes, weight, ignore_class, axis, pixel_weight=None, **options):
    y_pred = ops.convert_to_tensor(y_pred)
    pshape = tuple(y_pred.shape)
    first = axis == 1 and len(pshape) > 2
    if mode == "binary" and first and pshape[1] != 1:
        raise ValueError(f"`y_pred` must have shape (N, 1, *spatial) for mode='binary' with axis=1; got {pshape}")
    x, target, index, spatial, pw = weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight,
                                                    weight=weight)
    nd = len(spatial)
    if not 1 <= nd <= 3:
        raise ValueError(f"`y_pred` must have 1 to 3 spatial axes between the batch and class axes for a "
                         f"structure loss; got shape {pshape} for mode={mode!r}")
    if any(d is None for d in spatial):
        raise ValueError(f"structure losses need static spatial sizes; got `y_pred` of shape {pshape}")
    classes = check_classes(classes, x.shape[-1])
    values, norm = fn(x, target, index, mode, spatial, classes=classes, weight=weight, ignore=ignore_class,
                      **options)
    if pw is not None:
        values, norm = _weigh_centres(values, norm, pw, spatial, classes)
    out_spatial = tuple(values.shape[1:-1])
    k = None if mode == "binary" and not first and pshape[-1:] != (1,) else values.shape[-1]
    return layout(values, out_spatial, axis, k), layout(norm, out_spatial, axis, k)


def _ssim(y_true, y_pred, mode, **options):
    return _structure_map(y_true, y_pred, mode, fn=ssim_values, **options)


def _correlation_ssim(y_true, y_pred, mode, **options):
    return _structure_map(y_true, y_pred, mode, fn=correlation_ssim_values, **options)


# ----------------------------------------------------------------------------------------------- functions ---
def ssim_loss(y_true, y_pred, mode, *, window_size=11, sigma=1.5, padding="same", classes=None, weight=None,
              ignore_class=None, from_logits=False, axis=-1, pixel_weight=None):
    """SSIM loss, unreduced: the map of :class:`SSIMLoss` (same options)."""
    padding = check_one_of("padding", padding, ("same", "valid"))
    return _ssim(y_true, y_pred, check_mode(mode), padding=padding, pixel_weight=pixel_weight, **_options(
        window_size=window_size, sigma=sigma, classes=classes, weight=weight, ignore_class=ignore_class,
        from_logits=from_logits, axis=axis))[0]


def correlation_ssim_loss(y_true, y_pred, mode, *, beta=0.1, window_size=3, sigma=1.5, classes=None, weight=None,
                          ignore_class=None, from_logits=False, axis=-1, pixel_weight=None):
    """Correlation SSIM loss, unreduced: the map ``e f CE`` of :class:`CorrelationSSIMLoss` (same options); the
    loss is its sum over the sum of f."""
    beta = check_scalar("beta", beta, low=0.0, high=1.0)
    return _correlation_ssim(y_true, y_pred, check_mode(mode), beta=beta, pixel_weight=pixel_weight, **_options(
        window_size=window_size, sigma=sigma, classes=classes, weight=weight, ignore_class=ignore_class,
        from_logits=from_logits, axis=axis))[0]


# ------------------------------------------------------------------------------------------------- classes ---
_DOC = """Args:
        mode: "binary", "multiclass" or "multilabel".{extra}
        window_size: taps of the Gaussian window per spatial axis (odd), truncated to the image.
        sigma: the window's standard deviation in pixels.
        classes: class indices to keep; None keeps all.
        weight: per-class weights ``(C,)``: values and the weights of their mean multiplied by w_c; None: all 1.
        ignore_class: target value whose pixels count nowhere: left out of every window and of the mean, zero
            gradient.
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, used as given.
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss. "sum_over_batch_size" is the PyTorch front end's
            ``reduction="mean"``.

    Inputs: ``y_pred`` ``(N, *spatial, C)`` with 1 to 3 spatial axes of static size (``(N, C, *spatial)`` with
    ``axis=1``; "binary" channels-last also ``(N, *spatial)``); ``y_true`` as for :class:`DiceLoss`."""


@register
@fill_doc(args=_DOC, extra="""
        padding: "same" (a value at every valid pixel) or "valid" (the centres whose window lies in the image).""")
class SSIMLoss(SegLoss):
    """SSIM loss (Wang et al. 2004), as ``seglosses.ssim_loss``: the mean over the valid centres and kept classes of
    ``1 - SSIM(p_c, g_c)`` with a Gaussian window (11 taps, sigma 1.5), C1 = 0.01^2, C2 = 0.03^2 (data range 1),
    windows normalised to the valid pixels of the image. Values: the map ``(N, *spatial', K)``.

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import SSIMLoss
        >>> y_true = np.array([[0.0, 1.0, 1.0, 0.0]])
        >>> round(float(SSIMLoss("binary")(y_true, y_true)), 6)       # p = g: SSIM 1 everywhere
        0.0

    References:
        Wang, Bovik, Sheikh, Simoncelli. Image quality assessment: from error visibility to structural similarity.
        IEEE TIP 13(4), 2004.
    """

    def __init__(self, mode, *, window_size=11, sigma=1.5, padding="same", classes=None, weight=None,
                 ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size", name="ssim_loss",
                 dtype=None):
        padding = check_one_of("padding", padding, ("same", "valid"))
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, padding=padding, **_options(
            window_size=window_size, sigma=sigma, classes=classes, weight=weight, ignore_class=ignore_class,
            from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _ssim(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)


@register
@fill_doc(args=_DOC, extra="""
        beta: the hard-pixel threshold relative to e_max, in [0, 1].""")
class CorrelationSSIMLoss(SegLoss):
    """Correlation-maximized structural similarity loss (Zhao et al. 2019, arXiv 1910.08711), as
    ``seglosses.correlation_ssim_loss``: ``sum(e f CE) / sum(f)`` with
    ``e = |(g - mu_g + C4) / (sigma_g + C4) - (p - mu_p + C4) / (sigma_p + C4)|`` (C4 = 0.01, Gaussian window of
    3 taps, sigma 1.5), ``f = [e > beta e_max]`` and e, f held (no gradient). Values: the map ``e f CE``.

    {args}

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import CorrelationSSIMLoss
        >>> y_true = np.array([[0.0, 1.0, 1.0, 0.0]])
        >>> round(float(CorrelationSSIMLoss("binary")(y_true, y_true)), 6)   # p = g: e = 0, nothing selected
        0.0

    References:
        Zhao, Wu, Chu, Hu, Cai. Correlation Maximized Structural Similarity Loss for Semantic Segmentation.
        arXiv 1910.08711, 2019.
    """

    def __init__(self, mode, *, beta=0.1, window_size=3, sigma=1.5, classes=None, weight=None, ignore_class=None,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="correlation_ssim_loss",
                 dtype=None):
        beta = check_scalar("beta", beta, low=0.0, high=1.0)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, beta=beta, **_options(
            window_size=window_size, sigma=sigma, classes=classes, weight=weight, ignore_class=ignore_class,
            from_logits=from_logits, axis=axis))

    def _values(self, y_true, y_pred, pixel_weight=None):
        return _correlation_ssim(y_true, y_pred, self.mode, pixel_weight=pixel_weight, **self.options)
