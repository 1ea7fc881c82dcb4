"""The survey losses (docs/survey_losses.md) written with ``keras.ops`` only, on the layout of :mod:`._core`.

Inputs are ``(B, S, C)`` after :func:`._core.prepare`. As in the PyTorch front end (``seglosses.core.pixel``), every
log-probability is computed from logits: ``log(1 - p)`` is ``log_sigmoid(-x)`` for the sigmoid and, for the softmax,
the other classes' logsumexp minus that of all classes for the largest class (:func:`log1m_softmax`), so every term
and every gradient is finite at any finite logit. Pixel terms come back as ``(map, valid)``; region terms as one
value per row (the batch, or each image), the weighted mean over classes.
"""

from __future__ import annotations

from keras import ops

from seglosses.keras import _core
from seglosses.keras._core import dice_score, ratio_loss, region_stats, tversky_score, valid_mask


# ---------------------------------------------------------------------------------------- log-probabilities ---
def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, finite for any finite x."""
    return -(ops.relu(-x) + ops.log1p(ops.exp(-ops.abs(x))))


def log1m_softmax(x, logp):
    """``log(1 - softmax(x))`` over the last axis, finite for finite x: the largest class from the other logits'
    logsumexp, the others (p <= 1/2) as ``log1p(-p)``."""
    c = x.shape[-1]
    lse = ops.logsumexp(x, axis=-1, keepdims=True)
    top = ops.expand_dims(ops.cast(ops.argmax(x, axis=-1), "int32"), -1)
    is_top = ops.equal(top, ops.arange(c, dtype="int32"))
    neg_inf = ops.full_like(x, float("-inf"))
    others = ops.logsumexp(ops.where(is_top, neg_inf, x), axis=-1, keepdims=True) - lse
    safe = ops.where(is_top, -ops.ones_like(logp), logp)  # no -inf in the branch where() drops
    return ops.where(is_top, others, ops.log1p(-ops.exp(safe)))


def log_probs(x, mode, from_logits):
    """``(log p, log(1 - p))``, each ``(B, S, C)``; probabilities are clamped (and renormalised, softmax) first."""
    if mode == "multiclass":
        z = x if from_logits else _core.logits_of(x, True)
        logp = ops.log_softmax(z, axis=-1)
        return logp, log1m_softmax(z, logp)
    z = x if from_logits else _core.logits_of(x, False)
    return log_sigmoid(z), log_sigmoid(-z)


def _target(target, index, ignore, dt):
    """``(valid, t, g)``: the valid mask (None: all valid), class indices (index targets) or the dense target, with
    ignored entries set to 0."""
    v, t = valid_mask(target, ignore, dt)
    return (v, t, None) if index else (v, None, t)


def _target_sum(f, t, g, smoothing=0.0):
    """``sum_c y_c f_c`` per pixel ``(B, S)`` for the (smoothed) multiclass target y, without a one-hot."""
    c = f.shape[-1]
    if t is not None:
        picked = ops.squeeze(ops.take_along_axis(f, ops.expand_dims(t, -1), axis=-1), -1)
        if smoothing:
            picked = picked * (1 - smoothing) + ops.sum(f, axis=-1) * (smoothing / c)
        return picked
    y = g if not smoothing else g * (1 - smoothing) + smoothing / c
    return ops.sum(y * f, axis=-1)


def _masked(loss, v):
    """The loss map with 0 at invalid entries, and the weights of its mean (the valid mask)."""
    if v is None:
        return loss, ops.ones_like(loss)
    return ops.where(ops.greater(v, 0), loss, ops.zeros_like(loss)), v


def _class_sums(t, src, c):
    """``out[b, k] = sum_s src[b, s] [t[b, s] == k]``, ``(B, C)``, by one segment sum (no one-hot)."""
    b = ops.shape(t)[0]
    rows = ops.expand_dims(ops.arange(b, dtype="int32") * c, -1)
    ids = ops.reshape(t + rows, (-1,))
    return ops.reshape(ops.segment_sum(ops.reshape(src, (-1,)), ids, num_segments=b * c), (-1, c))


def _class_counts(t, v, c, dt):
    """Per-class counts ``(C,)`` of class indices over the valid pixels."""
    ones = ops.ones(ops.shape(t), dtype=dt) if v is None else v
    return ops.segment_sum(ops.reshape(ones, (-1,)), ops.reshape(t, (-1,)), num_segments=c)


def _powered(u, gamma):
    """``u ** gamma`` for u >= 0, 0 where u is 0 (also for gamma 0), u floored at the smallest normal float32; NaN
    stays NaN (:func:`._core.floored_power`)."""
    return _core.floored_power(u, gamma)


# ------------------------------------------------------------------------------------ cross-entropy family ---
def posneg_values(x, target, index, mode, *, beta, balanced, ignore, smoothing, from_logits):
    """``-(beta y log p + b (1 - y) log(1 - p))`` per class channel, b = 1 (weighted) or 1 - beta (balanced);
    summed over classes per pixel for "multiclass". Returns the map (``(B, S, C)`` or ``(B, S)``) and its weights."""
    dt = x.dtype
    c = x.shape[-1]
    logp, log1mp = log_probs(x, mode, from_logits)
    v, t, g = _target(target, index, ignore, dt)
    if beta == "auto":  # HED: beta_c = share of valid negatives of class c in the batch (a constant)
        if mode == "multiclass":
            pos = _class_counts(t, v, c, dt) if index else ops.sum(g, axis=(0, 1))
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
        loss = -(_target_sum(bvec * logp - negterm, t, g, smoothing) + ops.sum(negterm, axis=-1))
    else:
        y = g if not smoothing else g * (1 - smoothing) + smoothing / 2
        loss = -(bvec * y * logp + neg * (1 - y) * log1mp)
    return _masked(loss, v)


# ----------------------------------------------------------------------------------------- region losses ---
def sensitivity_specificity_values(x, target, index, mode, *, r, smooth, ignore, from_logits, per_image, weight,
                                   classes):
    """Brosch's ``r sens_c + (1 - r) spec_c`` per row ``(R,)``: the weighted mean over the kept classes."""
    dt = x.dtype
    c = x.shape[-1]
    if from_logits:
        p = ops.softmax(x, axis=-1) if mode == "multiclass" else ops.sigmoid(x)
    else:
        p = x  # probabilities as given, as every region loss
    v, t, g = _target(target, index, ignore, dt)
    if index:
        ti = ops.expand_dims(t, -1)
        pm = p if v is None else _core._keep(p, ops.expand_dims(v, -1))
        pt = ops.squeeze(ops.take_along_axis(pm, ti, axis=-1), -1)  # p of the target class (0 where ignored)
        if from_logits:  # 1 - p_t, accurate near p_t = 1
            miss = -ops.expm1(ops.squeeze(ops.take_along_axis(ops.log_softmax(x, axis=-1), ti, axis=-1), -1))
        else:
            miss = 1 - ops.squeeze(ops.take_along_axis(p, ti, axis=-1), -1)
        ones = ops.ones_like(pt) if v is None else v
        a = _class_sums(t, miss * miss * ones, c)
        b = ops.sum(pm * pm, axis=1) - _class_sums(t, pt * pt, c)  # sum over the other classes' pixels of p_c^2
        gsum = _class_sums(t, ones, c)
        neg = ops.sum(ones, axis=-1, keepdims=True) - gsum
    else:
        err = _core._keep(ops.square(g - p), v)
        a, b = ops.sum(err * g, axis=1), ops.sum(err * (1 - g), axis=1)
        gsum = ops.sum(g, axis=1)
        neg = ops.sum((1 - g) if v is None else (1 - g) * v, axis=1)
    if not per_image:
        a, b, gsum, neg = (ops.sum(z, axis=0, keepdims=True) for z in (a, b, gsum, neg))
    if index:  # b is a difference of sums: exactly 0 without negatives, not a rounding residue over smooth
        b = ops.where(ops.greater(neg, 0), ops.maximum(b, 0.0), ops.zeros_like(b))

    def ratio(num, den):
        den = den + smooth
        ok = ops.logical_or(ops.greater(den, 0), ops.isnan(den))  # a NaN target's NaN stays
        return ops.where(ok, num / ops.where(ok, den, ops.ones_like(den)), ops.zeros_like(num))

    loss = r * ratio(a, gsum) + (1 - r) * ratio(b, neg)
    return _core._class_mean(loss, weight, classes)


def log_cosh_dice_values(tp, fp, fn, *, smooth, weight, classes):
    """``log(cosh(1 - Dice_c))`` per row ``(R,)``, as ``log1p(2 sinh(l / 2)^2)`` (exact near 0)."""
    loss = ratio_loss(*dice_score(tp, fp, fn, smooth), False)
    return _core._class_mean(ops.log1p(2 * ops.square(ops.sinh(loss / 2))), weight, classes)


# --------------------------------------------------------------------------------------- compound losses ---
def compound(region, w_region, pixel, valid, w_pixel, per_image):
    """``w_region * region + w_pixel * pixel part``: one value for the batch (the pixel map's mean over its valid
    entries), or with ``per_image`` one per image, image i's pixel part being its sum over the batch's mean valid
    count per image (its own mean when nothing is ignored), so that their mean is the batch's loss."""
    count = ops.sum(valid)
    count = ops.where(ops.greater(count, 0), count, ops.ones_like(count))
    if not per_image:
        return w_region * region[0] + w_pixel * (ops.sum(pixel) / count)
    axes = tuple(range(1, len(pixel.shape)))
    images = ops.cast(ops.shape(pixel)[0], pixel.dtype)
    return w_region * region + w_pixel * (ops.sum(pixel, axis=axes) * images / count)


def _label_weights(freq):
    """``w_k = (sum_j f_j / f_k)^0.5``, 0 for a label without pixels; ``freq`` ``(..., K)``."""
    total = ops.sum(freq, axis=-1, keepdims=True)
    ok = ops.greater(freq, 0)
    return ops.where(ok, ops.sqrt(total / ops.where(ok, freq, ops.ones_like(freq))), ops.zeros_like(freq))


def exp_log_values(x, target, index, mode, *, w_dice, w_cross, gamma_dice, gamma_cross, smooth, class_frequency,
                   per_image, ignore, from_logits):
    """Wong et al.'s exponential-logarithmic loss: one value, or one per image (:func:`compound`)."""
    dt = x.dtype
    c = x.shape[-1]
    tp, fp, fn, _ = region_stats(x, target, index, mode, ignore=ignore, from_logits=from_logits, per_image=per_image)
    dice = _core.region_values(tp, fp, fn, dice_score, smooth=smooth, log_loss=True, power=gamma_dice, weight=None,
                               classes=None)
    logp, log1mp = log_probs(x, mode, from_logits)
    v, t, g = _target(target, index, ignore, dt)
    freq = None if class_frequency is None else ops.convert_to_tensor(class_frequency, dtype=dt)
    if mode == "multiclass":
        if freq is None:
            freq = ops.stop_gradient(_class_counts(t, v, c, dt) if index else ops.sum(g, axis=(0, 1)))
        cross = _target_sum(_label_weights(freq) * _powered(-logp, gamma_cross), t, g)
    else:
        if freq is None:
            pos = ops.sum(g, axis=(0, 1))
            neg = ops.sum((1 - g) if v is None else (1 - g) * v, axis=(0, 1))
        else:
            pos, neg = freq, 1 - freq
        w = ops.stop_gradient(_label_weights(ops.stack([neg, pos], axis=-1)))  # (C, 2): labels 0 and 1
        cross = g * w[:, 1] * _powered(-logp, gamma_cross) + (1 - g) * w[:, 0] * _powered(-log1mp, gamma_cross)
    cross, valid = _masked(cross, v)
    return compound(dice, w_dice, cross, valid, w_cross, per_image)


def unified_focal_values(x, target, index, mode, *, lam, delta, gamma, asymmetric, background, smooth, per_image,
                         ignore, from_logits):
    """Yeung et al.'s Unified Focal loss: one value, or one per image (:func:`compound`)."""
    dt = x.dtype
    c = x.shape[-1]
    logp, log1mp = log_probs(x, mode, from_logits)
    v, t, g = _target(target, index, ignore, dt)
    g_fg = 0.0 if asymmetric else gamma
    if mode == "multiclass":
        is_bg = [k == background for k in range(c)]
        a = ops.convert_to_tensor([1 - delta if bg else delta for bg in is_bg], dtype=dt)
        gk = ops.convert_to_tensor([gamma if bg else g_fg for bg in is_bg], dtype=dt)
        focal = _target_sum(a * ops.exp(gk * log1mp) * -logp, t, g)
    else:
        focal = ((1 - g) * (1 - delta) * ops.exp(gamma * logp) * -log1mp
                 + g * delta * ops.exp(g_fg * log1mp) * -logp)
    focal, valid = _masked(focal, v)

    tp, fp, fn, _ = region_stats(x, target, index, mode, ignore=ignore, from_logits=from_logits, per_image=per_image)
    e_fg = 1 - gamma
    e_bg = 1.0 if asymmetric else e_fg
    if mode == "multiclass":
        power = [e_bg if k == background else e_fg for k in range(c)]
    else:  # the background of every channel: probability 1 - p, target 1 - g
        count = ops.sum(ops.ones_like(g) if v is None else v, axis=1)
        if not per_image:
            count = ops.sum(count, axis=0, keepdims=True)
        tp_bg = ops.maximum(ops.stop_gradient(count) - tp - fp - fn, 0.0)
        tp, fp, fn = (ops.concatenate([tp_bg, tp], axis=-1), ops.concatenate([fn, fp], axis=-1),
                      ops.concatenate([fp, fn], axis=-1))
        power = [e_bg] * c + [e_fg] * c
    loss = ratio_loss(*tversky_score(1 - delta, delta)(tp, fp, fn, smooth), False)
    power = ops.convert_to_tensor(power, dtype=loss.dtype)
    loss = _powered(loss, power)
    ft = _core._class_mean(loss, None, None)
    return compound(ft, lam, focal, valid, 1 - lam, per_image)
