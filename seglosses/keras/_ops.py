"""What the Keras losses share, written with ``keras.ops`` only (one implementation for the TensorFlow, JAX and
PyTorch backends of Keras 3), with the definitions of docs/semantics.md (the PyTorch front end's numbers).

:func:`prepare` brings ``(y_true, y_pred)`` to the channels-last layout ``(B, S, C)`` every family works on; then the
valid masks of ``ignore_class``, the log-probabilities computed from logits (as ``seglosses.core.pixel``:
``log(1 - p)`` is ``log_sigmoid(-x)``, and for the softmax the other classes' logsumexp minus that of all classes for
the largest class, :func:`log1m_softmax`, so every term and gradient is finite at any finite logit), the soft region
statistics (tp, fp, fn) and the weighted mean over classes.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from seglosses.core.args import EPS
from seglosses.core.formulas import LOG_EPS, TINY


# ------------------------------------------------------------------------------------------------- inputs ---
def prepare(y_true, y_pred, mode, axis):
    """Channels-last ``(B, S, C)`` logits/probabilities and the target: int32 class indices ``(B, S)`` or dense
    ``(B, S, C)``; also whether the target holds indices and the spatial shape (for elementwise outputs)."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    pshape, tshape = tuple(y_pred.shape), tuple(y_true.shape)
    rank = len(pshape)
    if rank < 1:
        raise ValueError(f"`y_pred` must have a batch axis; got shape {pshape}")
    if axis == 1 and rank > 2:  # channels_first: move the class axis last
        y_pred = ops.moveaxis(y_pred, 1, -1)
        pshape = tuple(y_pred.shape)
        if len(tshape) == rank:
            y_true = ops.moveaxis(y_true, 1, -1)
            tshape = tuple(y_true.shape)
    if mode == "binary":
        if rank >= 2 and pshape[-1] == 1:
            spatial = pshape[1:-1]
        else:
            y_pred = ops.expand_dims(y_pred, -1)
            spatial = pshape[1:]
            pshape = tuple(y_pred.shape)
        if same_shape(tshape, pshape[:-1]):
            y_true = ops.expand_dims(y_true, -1)
        elif not same_shape(tshape, pshape):
            raise ValueError(f"`y_true` must have the shape of `y_pred` {pshape} (or without its channel axis) for "
                             f"mode='binary'; got {tshape}")
        index = False
    else:
        if rank < 2:
            raise ValueError(f"`y_pred` must have shape (N, *, C) for mode={mode!r}; got {pshape}")
        spatial = pshape[1:-1]
        if mode == "multilabel":
            if not same_shape(tshape, pshape):
                raise ValueError(f"`y_true` must have the shape of `y_pred` {pshape} for mode='multilabel'; "
                                 f"got {tshape}")
            index = False
        else:
            if pshape[-1] is not None and pshape[-1] < 2:
                raise ValueError(f"mode='multiclass' needs C >= 2 classes on the class axis of `y_pred` {pshape}; "
                                 "use mode='binary' for one channel")
            if same_shape(tshape, pshape[:-1]):
                index = True
            elif same_shape(tshape, pshape[:-1] + (1,)) and rank >= 2:
                y_true = ops.squeeze(y_true, -1)
                index = True
            elif same_shape(tshape, pshape):
                index = False
            else:
                raise ValueError(f"`y_true` must have shape {pshape[:-1]} or {pshape[:-1] + (1,)} (class indices) or "
                                 f"{pshape} (class probabilities) for mode='multiclass'; got {tshape}")
    c = int(y_pred.shape[-1])
    s = math.prod(int(d) for d in spatial) if all(d is not None for d in spatial) else -1
    x = ops.reshape(y_pred, (-1, s, c))
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):  # torch dtypes are not strings
        x = ops.cast(x, "float32")
    if index:
        target = ops.cast(ops.reshape(y_true, (-1, s)), "int32")
    else:
        target = ops.cast(ops.reshape(y_true, (-1, s, c)), x.dtype)
    return x, target, index, spatial


def same_shape(a, b):
    """Whether two static shapes agree (an unknown size, None, agrees with any)."""
    return len(a) == len(b) and all(u is None or v is None or u == v for u, v in zip(a, b))


def valid_mask(target, ignore, dtype):
    """(valid as ``dtype``, target with ignored entries set to 0), or (None, target) without ``ignore``."""
    if ignore is None:
        return None, target
    v = ops.not_equal(target, ops.cast(ignore, target.dtype))
    return ops.cast(v, dtype), ops.where(v, target, ops.zeros_like(target))


def split_target(target, index, ignore, dt):
    """``(valid, t, g)``: the valid mask (None: all valid), class indices (index targets) or the dense target, with
    ignored entries set to 0."""
    v, t = valid_mask(target, ignore, dt)
    return (v, t, None) if index else (v, None, t)


def select_valid(x, target, index, ignore):
    """``x`` (B, S, C) with 0 at the entries ``ignore`` marks (every class of an ignored pixel for class indices),
    selected, not multiplied by a 0/1 mask (NaN * 0 is NaN): a NaN or inf logit or probability there then adds
    nothing to the loss, and its gradient there is exactly 0."""
    if ignore is None:
        return x
    valid = ops.not_equal(target, ops.cast(ignore, target.dtype))
    return ops.where(ops.expand_dims(valid, -1) if index else valid, x, ops.zeros_like(x))


def keep(values, v):
    """``values`` where the valid mask ``v`` (0/1, or None: all valid) is 1, else 0, by selection."""
    return values if v is None else ops.where(ops.greater(v, 0), values, ops.zeros_like(values))


def masked(loss, v):
    """The loss map with 0 at invalid entries, and the weights of its mean (the valid mask)."""
    if v is None:
        return loss, ops.ones_like(loss)
    return ops.where(ops.greater(v, 0), loss, ops.zeros_like(loss)), v


# -------------------------------------------------------------------------------------- log-probabilities ---
def logits_of(x, softmax):
    """Logits whose sigmoid/softmax are the probabilities ``x`` clamped to [EPS, 1 - EPS] (``1 - x`` clamped on its
    own, as ``seglosses.core.checks.probs_to_logits``: 1 - 1e-7 is not a float32)."""
    lp = ops.log(ops.clip(x, EPS, 1 - EPS))
    return lp if softmax else lp - ops.log(ops.clip(1 - x, EPS, 1 - EPS))


def probabilities(x, mode, from_logits):
    """The probabilities of ``x``: its softmax ("multiclass") or sigmoid from logits, else ``x`` as given."""
    if not from_logits:
        return x
    return ops.softmax(x, axis=-1) if mode == "multiclass" else ops.sigmoid(x)


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
        z = x if from_logits else logits_of(x, True)
        logp = ops.log_softmax(z, axis=-1)
        return logp, log1m_softmax(z, logp)
    z = x if from_logits else logits_of(x, False)
    return log_sigmoid(z), log_sigmoid(-z)


def target_sum(f, t, g, smoothing=0.0):
    """``sum_c y_c f_c`` per pixel ``(B, S)`` for the (smoothed) multiclass target y, without a one-hot."""
    c = f.shape[-1]
    if t is not None:
        picked = ops.squeeze(ops.take_along_axis(f, ops.expand_dims(t, -1), axis=-1), -1)
        if smoothing:
            picked = picked * (1 - smoothing) + ops.sum(f, axis=-1) * (smoothing / c)
        return picked
    y = g if not smoothing else g * (1 - smoothing) + smoothing / c
    return ops.sum(y * f, axis=-1)


# ------------------------------------------------------------------------------------------------ classes ---
def class_sums(t, src, c):
    """``out[b, k] = sum_s src[b, s] [t[b, s] == k]``, ``(B, C)``, by one segment sum (no one-hot)."""
    b = ops.shape(t)[0]
    rows = ops.expand_dims(ops.arange(b, dtype="int32") * c, -1)
    ids = ops.reshape(t + rows, (-1,))
    return ops.reshape(ops.segment_sum(ops.reshape(src, (-1,)), ids, num_segments=b * c), (-1, c))


def class_counts(t, v, c, dt):
    """Per-class counts ``(C,)`` of class indices over the valid pixels."""
    ones = ops.ones(ops.shape(t), dtype=dt) if v is None else v
    return ops.segment_sum(ops.reshape(ones, (-1,)), ops.reshape(t, (-1,)), num_segments=c)


def class_mean(loss, weight, classes, counted=None):
    """Weighted mean over kept classes of (R, C) losses (``counted``: 0/1 per (row, class), default all)."""
    if classes is not None:
        loss = ops.take(loss, classes, axis=1)
        counted = None if counted is None else ops.take(counted, classes, axis=1)
        weight = None if weight is None else [weight[k] for k in classes]
    k = loss.shape[-1]
    w = ops.ones((k,), dtype=loss.dtype) if weight is None else ops.convert_to_tensor(weight, dtype=loss.dtype)
    cw = w if counted is None else counted * w
    den = ops.sum(cw * ops.ones_like(loss), axis=-1)
    return ops.sum(loss * cw, axis=-1) / ops.where(ops.greater(den, 0), den, ops.ones_like(den))


# ------------------------------------------------------------------------------------- region statistics ---
def at_target(pw, t):
    """The pixel weights ``(B, S, 1)`` or ``(B, S, C)`` at each pixel's target class ``t``: ``(B, S)``."""
    if pw.shape[-1] == 1:
        return pw[..., 0]
    return ops.squeeze(ops.take_along_axis(pw, ops.expand_dims(t, -1), axis=-1), -1)


def region_stats(x, target, index, mode, *, ignore, from_logits, per_image, pw=None):
    """``(tp, fp, fn, G)``, each ``(B, C)`` (``(1, C)`` summed over the batch unless ``per_image``), from the sums
    P, G and D = sum |p - g| (dense targets) or T = sum_{t = c} p_c (class indices), as the PyTorch front end.
    ``pw``: pixel weights ``(B, S, 1 | C)`` (0 at ignored entries), each entry's part of every sum times its
    weight (tp = sum w p g, fp = sum w p (1 - g), fn = sum w (1 - p) g, G = sum w g)."""
    dt = x.dtype
    p = probabilities(x, mode, from_logits)
    c = x.shape[2]
    if index:
        v, t = valid_mask(target, ignore, dt)
        if v is not None:
            p = keep(p, ops.expand_dims(v, -1))
        pt = ops.squeeze(ops.take_along_axis(p, ops.expand_dims(t, -1), axis=-1), -1)  # (B, S)
        if pw is None:
            psum = ops.sum(p, axis=1)
            tsum = class_sums(t, pt, c)
            gsum = class_sums(t, ops.ones_like(pt) if v is None else v, c)
        else:
            wt = at_target(pw, t)
            psum = ops.sum(p * pw, axis=1)
            tsum = class_sums(t, pt * wt, c)
            gsum = class_sums(t, wt, c)
        if not per_image:
            psum, tsum, gsum = (ops.sum(z, axis=0, keepdims=True) for z in (psum, tsum, gsum))
        return tsum, psum - tsum, gsum - tsum, gsum
    v, g = valid_mask(target, ignore, dt)
    p = keep(p, v)
    if pw is None:
        psum, gsum, dsum = ops.sum(p, axis=1), ops.sum(g, axis=1), ops.sum(ops.abs(p - g), axis=1)
    else:
        psum, gsum, dsum = ops.sum(pw * p, axis=1), ops.sum(pw * g, axis=1), ops.sum(pw * ops.abs(p - g), axis=1)
    if not per_image:
        psum, gsum, dsum = (ops.sum(z, axis=0, keepdims=True) for z in (psum, gsum, dsum))
    tp = (psum + gsum - dsum) * 0.5
    return tp, psum - tp, gsum - tp, gsum


def ratio_loss(err, num, log_loss):
    """A score num / (num + err) as a loss, as the PyTorch front end: 1 - score from err / den, -log(score) from
    num / den; 0 where den = 0 (a NaN den, from a NaN target, stays NaN)."""
    den = num + err
    ok = ops.logical_or(ops.greater(den, 0), ops.isnan(den))
    den = ops.where(ok, den, ops.ones_like(den))
    if log_loss:
        return ops.where(ok, -ops.log(ops.clip(num / den, LOG_EPS, 1.0)), ops.zeros_like(den))
    return ops.maximum(err / den, 0.0)


def floored_power(u, power):
    """``u ** power`` for u >= 0, u floored at the smallest normal float32 and 0 where u is 0 (also for power 0),
    with a finite gradient; a NaN ``u`` (from a NaN target) stays NaN (``where(u > 0, ...)`` would make it 0)."""
    zero = ops.equal(u, 0)
    safe = ops.where(ops.less(u, TINY), ops.full_like(u, TINY), u)  # NaN < TINY is False: NaN stays
    return ops.where(zero, ops.zeros_like(u), ops.exp(power * ops.log(safe)))
