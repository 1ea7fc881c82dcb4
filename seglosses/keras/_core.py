"""The seglosses losses written with ``keras.ops`` only: one implementation for the TensorFlow, JAX and PyTorch
backends of Keras 3, with the definitions of docs/semantics.md (the PyTorch front end's numbers).

Every function takes ``(y_true, y_pred)`` channels-last after :func:`prepare` (``(B, S, C)``) and returns the values
and the weights of their mean: :class:`seglosses.keras.SegLoss` reduces them the Keras way.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from seglosses.core.args import EPS
from seglosses.core.formulas import dice_score, tversky_score  # noqa: F401 (re-exported for the Loss classes)

#: Smallest normal float32: floor of a loss before a power < 1, as in the PyTorch front end.
TINY = 1.1754944e-38
LOG_EPS = 1e-7


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
        if _same(tshape, pshape[:-1]):
            y_true = ops.expand_dims(y_true, -1)
        elif not _same(tshape, pshape):
            raise ValueError(f"`y_true` must have the shape of `y_pred` {pshape} (or without its channel axis) for "
                             f"mode='binary'; got {tshape}")
        index = False
    else:
        if rank < 2:
            raise ValueError(f"`y_pred` must have shape (N, *, C) for mode={mode!r}; got {pshape}")
        spatial = pshape[1:-1]
        if mode == "multilabel":
            if not _same(tshape, pshape):
                raise ValueError(f"`y_true` must have the shape of `y_pred` {pshape} for mode='multilabel'; "
                                 f"got {tshape}")
            index = False
        else:
            if pshape[-1] is not None and pshape[-1] < 2:
                raise ValueError(f"mode='multiclass' needs C >= 2 classes on the class axis of `y_pred` {pshape}; "
                                 "use mode='binary' for one channel")
            if _same(tshape, pshape[:-1]):
                index = True
            elif _same(tshape, pshape[:-1] + (1,)) and rank >= 2:
                y_true = ops.squeeze(y_true, -1)
                index = True
            elif _same(tshape, pshape):
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


def _same(a, b):
    return len(a) == len(b) and all(u is None or v is None or u == v for u, v in zip(a, b))


def valid_mask(target, ignore, dtype):
    """(valid as ``dtype``, target with ignored entries set to 0), or (None, target) without ``ignore``."""
    if ignore is None:
        return None, target
    v = ops.not_equal(target, ops.cast(ignore, target.dtype))
    return ops.cast(v, dtype), ops.where(v, target, ops.zeros_like(target))


def select_valid(x, target, index, ignore):
    """``x`` (B, S, C) with 0 at the entries ``ignore`` marks (every class of an ignored pixel for class indices),
    selected, not multiplied by a 0/1 mask (NaN * 0 is NaN): a NaN or inf logit or probability there then adds
    nothing to the loss, and its gradient there is exactly 0."""
    if ignore is None:
        return x
    valid = ops.not_equal(target, ops.cast(ignore, target.dtype))
    return ops.where(ops.expand_dims(valid, -1) if index else valid, x, ops.zeros_like(x))


def _keep(values, v):
    """``values`` where the valid mask ``v`` (0/1, or None: all valid) is 1, else 0, by selection."""
    return values if v is None else ops.where(ops.greater(v, 0), values, ops.zeros_like(values))


def logits_of(x, softmax):
    """Logits whose sigmoid/softmax are the probabilities ``x`` clamped to [EPS, 1 - EPS] (``1 - x`` clamped on its
    own, as ``seglosses.core.checks.probs_to_logits``: 1 - 1e-7 is not a float32)."""
    lp = ops.log(ops.clip(x, EPS, 1 - EPS))
    return lp if softmax else lp - ops.log(ops.clip(1 - x, EPS, 1 - EPS))


def _power(u, gamma):
    """``u ** gamma`` for u >= 0 with a finite gradient at u = 0 (any gamma > 0)."""
    if gamma == 0:
        return ops.ones_like(u)
    pos = ops.greater(u, 0)
    safe = ops.where(pos, u, ops.ones_like(u))
    return ops.where(pos, ops.exp(gamma * ops.log(safe)), ops.zeros_like(u))


# ---------------------------------------------------------------------------------------------------- focal ----
def focal_values(x, target, index, mode, *, alpha, gamma, weight, ignore, smoothing, from_logits):
    """Elementwise focal loss and the weights of its mean: sigmoid ``(B, S, C)``, softmax ``(B, S)``."""
    dt = x.dtype
    if mode != "multiclass":
        x = x if from_logits else logits_of(x, False)
        v, y = valid_mask(target, ignore, dt)
        if smoothing:
            y = y * (1 - smoothing) + smoothing / 2
        bce = ops.relu(x) - x * y + ops.log1p(ops.exp(-ops.abs(x)))
        q = ops.sigmoid(x) * (1 - y) + ops.sigmoid(-x) * y  # 1 - p_t, exact at y in {0, 1}
        loss = _power(q, gamma) * bce
        coef = None
        if alpha is not None:
            a = ops.convert_to_tensor(alpha, dtype=dt)
            coef = y * (2 * a - 1) + (1 - a)
        if weight is not None:
            w = ops.convert_to_tensor(weight, dtype=dt)
            coef = w if coef is None else coef * w
        if coef is not None:
            loss = loss * coef
        norm = ops.ones_like(loss) if v is None else v
        return _keep(loss, v), norm
    logp = ops.log_softmax(x if from_logits else logits_of(x, True), axis=-1)
    c = x.shape[-1]
    f = _power(-ops.expm1(logp), gamma) * (-logp)  # (1 - p_c)^gamma (-log p_c), per class
    cvec = None
    if alpha is not None:
        cvec = ops.convert_to_tensor(alpha, dtype=dt) * ops.ones((c,), dtype=dt)
    wvec = None if weight is None else ops.convert_to_tensor(weight, dtype=dt)
    if wvec is not None:
        cvec = wvec if cvec is None else cvec * wvec
    if index:
        v, t = valid_mask(target, ignore, dt)
        ti = ops.expand_dims(t, -1)
        coef_vec = ops.ones((c,), dtype=dt) if cvec is None else cvec
        if smoothing:
            loss = (1 - smoothing) * ops.squeeze(ops.take_along_axis(f * coef_vec, ti, axis=-1), -1) \
                + smoothing / c * ops.sum(f * coef_vec, axis=-1)
        else:
            loss = ops.squeeze(ops.take_along_axis(f, ti, axis=-1), -1)
            if cvec is not None:
                loss = loss * ops.take(cvec, t)
        norm = ops.ones_like(loss) if wvec is None else ops.take(wvec, t)
        return _keep(loss, v), _keep(norm, v)
    y = target * (1 - smoothing) + smoothing / c
    coef = y if cvec is None else y * cvec
    loss = ops.sum(coef * f, axis=-1)
    return loss, ops.ones_like(loss)


# ---------------------------------------------------------------------------------------------------- region ---
def region_stats(x, target, index, mode, *, ignore, from_logits, per_image):
    """``(tp, fp, fn, G)``, each ``(B, C)`` (``(1, C)`` summed over the batch unless ``per_image``), from the sums
    P, G and D = sum |p - g| (dense targets) or T = sum_{t = c} p_c (class indices), as the PyTorch front end."""
    dt = x.dtype
    if from_logits:
        p = ops.softmax(x, axis=-1) if mode == "multiclass" else ops.sigmoid(x)
    else:
        p = x
    b, c = ops.shape(p)[0], x.shape[2]
    if index:
        v, t = valid_mask(target, ignore, dt)
        if v is not None:
            p = _keep(p, ops.expand_dims(v, -1))
        psum = ops.sum(p, axis=1)
        pt = ops.squeeze(ops.take_along_axis(p, ops.expand_dims(t, -1), axis=-1), -1)  # (B, S)
        rows = ops.expand_dims(ops.arange(b, dtype="int32") * c, -1)
        ids = ops.reshape(t + rows, (-1,))
        n_seg = b * c
        tsum = ops.reshape(ops.segment_sum(ops.reshape(pt, (-1,)), ids, num_segments=n_seg), (-1, c))
        ones = ops.ones_like(pt) if v is None else v
        gsum = ops.reshape(ops.segment_sum(ops.reshape(ones, (-1,)), ids, num_segments=n_seg), (-1, c))
        if not per_image:
            psum, tsum, gsum = (ops.sum(z, axis=0, keepdims=True) for z in (psum, tsum, gsum))
        return tsum, psum - tsum, gsum - tsum, gsum
    v, g = valid_mask(target, ignore, dt)
    p = _keep(p, v)
    psum, gsum, dsum = ops.sum(p, axis=1), ops.sum(g, axis=1), ops.sum(ops.abs(p - g), axis=1)
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


def region_values(tp, fp, fn, score, *, smooth, log_loss, power, weight, classes):
    """Per-row losses: the weighted mean over the kept classes of each row ``(R,)``."""
    err, num = score(tp, fp, fn, smooth)
    loss = ratio_loss(err, num, log_loss)
    if power is not None:
        loss = floored_power(loss, power)
    return _class_mean(loss, weight, classes)


def floored_power(u, power):
    """``u ** power`` for u >= 0, u floored at the smallest normal float32 and 0 where u is 0, with a finite
    gradient; a NaN ``u`` (from a NaN target) stays NaN (``where(u > 0, ...)`` would make it 0)."""
    zero = ops.equal(u, 0)
    safe = ops.where(ops.less(u, TINY), ops.full_like(u, TINY), u)  # NaN < TINY is False: NaN stays
    return ops.where(zero, ops.zeros_like(u), ops.exp(power * ops.log(safe)))


def _class_mean(loss, weight, classes, counted=None):
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


def gdl_values(tp, fp, fn, g, *, weight_type, smooth, log_loss, weight, classes):
    """Generalized Dice per row ``(R,)``: Sudre's weights from all C volumes, then the kept classes."""
    if weight_type == "uniform":
        r = ops.ones_like(g)
    else:
        vol = g if weight_type == "simple" else g * g
        present = ops.greater(vol, 0)
        inv = 1 / ops.where(present, vol, ops.ones_like(vol))
        largest = ops.max(ops.where(present, inv, ops.zeros_like(inv)), axis=-1, keepdims=True)
        fill = ops.where(ops.greater(largest, 0), largest, ops.ones_like(largest))
        r = ops.where(present, inv, fill * ops.ones_like(inv))
    if weight is not None:
        r = r * ops.convert_to_tensor(weight, dtype=r.dtype)
    if classes is not None:
        r, tp, fp, fn = (ops.take(z, classes, axis=1) for z in (r, tp, fp, fn))
    err = ops.sum(r * (fp + fn), axis=-1)
    return ratio_loss(err, ops.sum(r * 2 * tp, axis=-1) + smooth, log_loss)


# ---------------------------------------------------------------------------------------------------- lovasz ---
def _lovasz_grad(fg):
    m = fg.shape[-1]
    c = ops.cumsum(fg, axis=-1)
    union = c[..., -1:] - c
    idx = ops.arange(1, m + 1, dtype=fg.dtype)
    jac = idx / (union + idx)
    return ops.concatenate([jac[..., :1], jac[..., 1:] - jac[..., :-1]], axis=-1)


def lovasz_values(x, target, index, mode, *, classes, per_image, ignore, weight, from_logits):
    """Lovasz hinge (binary, multilabel) or Lovasz-softmax (multiclass) per row ``(R,)``, as the PyTorch
    front end: rows are the batch (one row) or each image; classes "present" counts only present classes."""
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
    # rows: (R, C, M): each image (per_image) or the whole batch
    err, fg = ops.transpose(err, (0, 2, 1)), ops.transpose(fg, (0, 2, 1))
    if not per_image:
        err = ops.reshape(ops.transpose(err, (1, 0, 2)), (1, c, -1))
        fg = ops.reshape(ops.transpose(fg, (1, 0, 2)), (1, c, -1))
    order = ops.argsort(-err, axis=-1)
    e_sorted = ops.take_along_axis(err, order, axis=-1)
    fg_sorted = ops.stop_gradient(ops.take_along_axis(fg, order, axis=-1))
    losses = ops.sum(ops.relu(e_sorted) * ops.stop_gradient(_lovasz_grad(fg_sorted)), axis=-1)  # (R, C)
    counted = None
    if mode == "multiclass" and classes == "present":
        counted = ops.cast(ops.greater(ops.sum(fg_sorted, axis=-1), 0), dt)
    return _class_mean(losses, weight, None if isinstance(classes, str) else classes, counted)
