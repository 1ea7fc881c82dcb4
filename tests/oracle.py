"""Independent float64 NumPy oracle for the seglosses losses.

Written straight from docs/semantics.md (the contract), without looking at or
importing the seglosses package. Plain NumPy, float64 throughout, loops where
they make the formulas easier to read. No torch.

All public functions take numpy arrays and return a numpy float64 array
(0-d for reduction "mean"/"sum").
"""

import numpy as np

__all__ = [
    "focal",
    "sigmoid_focal_tv",
    "dice",
    "jaccard",
    "tversky",
    "focal_tversky",
    "generalized_dice",
    "lovasz",
]

_MODES = ("binary", "multiclass", "multilabel")
_REDUCTIONS = ("none", "mean", "sum")
_TINY_F32 = 1.1754944e-38  # smallest normal float32, used by focal-Tversky


# --------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------


class _Prepared:
    """Inputs viewed as (N, C, S).

    x: float64 (N, C, S) logits (or probabilities when from_logits=False)
    kind: "dense" (target g (N, C, S), float64, 0 at ignored elements)
          or "index" (target t (N, S), int64, 0 at ignored pixels)
    valid: bool (N, C, S) for dense, (N, S) for index
    out_shape: logits' shape;  spatial: logits' spatial dims (for (N, *) maps)
    """


def _prepare(logits, target, mode, ignore_index):
    if mode not in _MODES:
        raise ValueError(f"unknown mode {mode!r}")
    x = np.asarray(logits).astype(np.float64)
    g = np.asarray(target)
    if x.ndim < 1:
        raise ValueError("logits need a batch dimension")
    n = x.shape[0]
    r = _Prepared()
    r.out_shape = x.shape
    if mode == "binary":
        if g.shape == x.shape:
            pass
        elif x.ndim >= 2 and x.shape[1] == 1 and g.shape == (n,) + x.shape[2:]:
            pass
        else:
            raise ValueError(f"binary: target shape {g.shape} vs logits {x.shape}")
        s = int(np.prod(x.shape[1:], dtype=np.int64))
        x3 = x.reshape(n, 1, s)
        g3 = g.reshape(n, 1, s)
        r.spatial = x.shape[2:] if (x.ndim >= 2 and x.shape[1] == 1) else x.shape[1:]
        r.kind = "dense"
    elif mode == "multilabel":
        if x.ndim < 2 or g.shape != x.shape:
            raise ValueError(f"multilabel: target shape {g.shape} vs logits {x.shape}")
        c = x.shape[1]
        s = int(np.prod(x.shape[2:], dtype=np.int64))
        x3 = x.reshape(n, c, s)
        g3 = g.reshape(n, c, s)
        r.spatial = x.shape[2:]
        r.kind = "dense"
    else:  # multiclass
        if x.ndim < 2 or x.shape[1] < 2:
            raise ValueError("multiclass needs logits (N, C, *) with C >= 2")
        c = x.shape[1]
        s = int(np.prod(x.shape[2:], dtype=np.int64))
        x3 = x.reshape(n, c, s)
        r.spatial = x.shape[2:]
        if g.shape == x.shape:
            if ignore_index is not None:
                raise ValueError("ignore_index is not supported with probability targets")
            r.kind = "dense"
            g3 = g.reshape(n, c, s)
        elif g.shape == (n,) + x.shape[2:]:
            r.kind = "index"
            t = g.reshape(n, s).astype(np.int64)
            if ignore_index is None:
                valid = np.ones((n, s), dtype=bool)
            else:
                valid = t != ignore_index
            if np.any((t[valid] < 0) | (t[valid] >= c)):
                raise ValueError("class index out of range")
            r.x = x3
            r.t = np.where(valid, t, 0)
            r.valid = valid
            r.N, r.C, r.S = n, c, s
            return r
        else:
            raise ValueError(f"multiclass: target shape {g.shape} vs logits {x.shape}")

    # dense target
    gf = g3.astype(np.float64)
    if ignore_index is None:
        valid = np.ones(gf.shape, dtype=bool)
    else:
        valid = gf != ignore_index
    r.x = x3
    r.g = np.where(valid, gf, 0.0)
    r.valid = valid
    r.N, r.C, r.S = x3.shape
    return r


def _pixel_weight(r, pixel_weight):
    """The pixel weight of every element ``(N, C, S)`` float64 (docs/semantics.md, "Pixel weights"): a map of the
    logits' shape (per element) or of the target's spatial shape ``(N, *spatial)`` (every class of the pixel),
    broadcast from axes of size 1; 0 at ignored elements (a NaN there is dropped, not multiplied). None: all 1."""
    if pixel_weight is None:
        w = np.ones((r.N, r.C, r.S))
    else:
        w = np.asarray(pixel_weight, dtype=np.float64)
        if w.ndim == len(r.out_shape):
            w = np.broadcast_to(w, r.out_shape).reshape(r.N, r.C, r.S)
        else:
            w = np.broadcast_to(w, (r.N,) + tuple(r.spatial)).reshape(r.N, 1, r.S)
            w = np.broadcast_to(w, (r.N, r.C, r.S))
    valid = r.valid[:, None, :] if r.kind == "index" else r.valid
    return np.where(np.broadcast_to(valid, w.shape), w, 0.0)


def _one_hot(t, c):
    """(N, S) int -> (N, C, S) float64."""
    return (t[:, None, :] == np.arange(c)[None, :, None]).astype(np.float64)


def _log_sigmoid(x):
    """log(sigmoid(x)), stable for |x| large."""
    return -np.logaddexp(0.0, -x)


def _sigmoid(x):
    return np.exp(_log_sigmoid(x))


def _log_softmax(x, axis=1):
    m = np.max(x, axis=axis, keepdims=True)
    z = x - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def _softmax(x, axis=1):
    return np.exp(_log_softmax(x, axis=axis))


def _others_sum(p):
    """q[:, c] = sum_{k != c} p[:, k] (1 - p_c without cancellation)."""
    q = np.zeros_like(p)
    c = p.shape[1]
    for k in range(c):
        others = [j for j in range(c) if j != k]
        q[:, k] = np.sum(p[:, others], axis=1)
    return q


def _class_vector(value, c, name):
    a = np.asarray(value, dtype=np.float64).reshape(-1)
    if a.size != c:
        raise ValueError(f"{name} needs {c} values, got {a.size}")
    return a


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}")


def _scalar(v):
    return np.asarray(v, dtype=np.float64)


# --------------------------------------------------------------------------
# focal
# --------------------------------------------------------------------------


def focal(
    logits,
    target,
    mode,
    *,
    alpha=None,
    gamma=2.0,
    weight=None,
    ignore_index=None,
    label_smoothing=0.0,
    from_logits=True,
    reduction="mean",
    eps=1e-7,
    pixel_weight=None,
):
    _check_reduction(reduction)
    r = _prepare(logits, target, mode, ignore_index)
    n, c, s = r.N, r.C, r.S
    pw = _pixel_weight(r, pixel_weight)  # each term times its weight; the mean's normaliser too
    ls = float(label_smoothing)
    gamma = float(gamma)
    w = np.ones(c) if weight is None else _class_vector(weight, c, "weight")

    if mode in ("binary", "multilabel"):
        x, valid = r.x, r.valid
        y = r.g * (1.0 - ls) + ls / 2.0
        if from_logits:
            logp = _log_sigmoid(x)  # log p
            log1mp = _log_sigmoid(-x)  # log(1 - p)
            p = np.exp(logp)
            q = np.exp(log1mp)  # 1 - p computed as sigmoid(-x)
        else:
            p = np.clip(x, eps, 1.0 - eps)
            q = 1.0 - p
            logp = np.log(p)
            log1mp = np.log1p(-p)
        one_minus_pt = p * (1.0 - y) + q * y  # = 1 - (p y + (1 - p)(1 - y))
        bce = -(y * logp + (1.0 - y) * log1mp)
        if alpha is None:
            alpha_t = np.ones_like(y)
        else:
            if np.ndim(alpha) == 0:
                a = np.full((1, c, 1), float(alpha))
            else:
                a = _class_vector(alpha, c, "alpha").reshape(1, c, 1)
            alpha_t = a * y + (1.0 - a) * (1.0 - y)
        loss = np.zeros((n, c, s))
        for ni in range(n):
            for ci in range(c):
                for si in range(s):
                    if not valid[ni, ci, si]:
                        continue
                    loss[ni, ci, si] = (
                        pw[ni, ci, si]
                        * w[ci]
                        * alpha_t[ni, ci, si]
                        * one_minus_pt[ni, ci, si] ** gamma
                        * bce[ni, ci, si]
                    )
        if reduction == "none":
            return loss.reshape(r.out_shape)
        total = loss.sum()
        if reduction == "sum":
            return _scalar(total)
        count = float(np.sum(pw[valid]))
        return _scalar(total / count if count > 0 else 0.0)

    # multiclass (softmax)
    x = r.x
    if from_logits:
        logp = _log_softmax(x, axis=1)
        p = np.exp(logp)
        q = _others_sum(p)
    else:
        pc = np.clip(x, eps, 1.0 - eps)
        tot = pc.sum(axis=1, keepdims=True)
        logp = np.log(pc) - np.log(tot)
        q = _others_sum(pc) / tot
    if alpha is None:
        a = np.ones(c)
    elif np.ndim(alpha) == 0:
        a = np.full(c, float(alpha))
    else:
        a = _class_vector(alpha, c, "alpha")
    base = w * a

    if r.kind == "index":
        y = (1.0 - ls) * _one_hot(r.t, c) + ls / c
        pix_valid = r.valid
    else:
        y = (1.0 - ls) * r.g + ls / c
        pix_valid = np.ones((n, s), dtype=bool)

    loss = np.zeros((n, s))
    for ni in range(n):
        for si in range(s):
            if not pix_valid[ni, si]:
                continue
            acc = 0.0
            for ci in range(c):
                acc += (
                    y[ni, ci, si]
                    * base[ci]
                    * q[ni, ci, si] ** gamma
                    * (-logp[ni, ci, si])
                )
            loss[ni, si] = pw[ni, 0, si] * acc  # one weight per pixel
    if reduction == "none":
        return loss.reshape((n,) + tuple(r.spatial))
    total = loss.sum()
    if reduction == "sum":
        return _scalar(total)
    if r.kind == "index":
        denom = 0.0
        for ni in range(n):
            for si in range(s):
                if pix_valid[ni, si]:
                    denom += pw[ni, 0, si] * w[r.t[ni, si]]
    else:
        denom = float(pw[:, 0, :].sum())
    return _scalar(total / denom if denom != 0 else 0.0)


def sigmoid_focal_tv(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss, in float64."""
    _check_reduction(reduction)
    x = np.asarray(inputs).astype(np.float64)
    y = np.asarray(targets).astype(np.float64)
    logp = _log_sigmoid(x)
    log1mp = _log_sigmoid(-x)
    p = np.exp(logp)
    q = np.exp(log1mp)
    ce = -(y * logp + (1.0 - y) * log1mp)
    one_minus_pt = p * (1.0 - y) + q * y
    loss = ce * one_minus_pt ** float(gamma)
    if alpha >= 0:
        loss = loss * (alpha * y + (1.0 - alpha) * (1.0 - y))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _scalar(loss.sum())
    return _scalar(loss.mean())


# --------------------------------------------------------------------------
# region losses
# --------------------------------------------------------------------------


def _region_probs(r, mode, from_logits):
    if not from_logits:
        return r.x
    if mode == "multiclass":
        return _softmax(r.x, axis=1)
    return _sigmoid(r.x)


def _region_complement(r, mode, from_logits):
    """1 - p, computed without cancellation (sigmoid(-x), or the sum of the other classes' probabilities)."""
    if not from_logits:
        return 1.0 - r.x
    if mode == "multiclass":
        return _others_sum(_softmax(r.x, axis=1))
    return _sigmoid(-r.x)


def _region_stats(r, mode, from_logits, per_image, pw=None):
    """Return tp, fp, fn, G, each (R, C) with R = 1 or N; with element weights ``pw`` (N, C, S) (from
    :func:`_pixel_weight`) each element's term times its weight.

    Written in the direct form tp = sum min(p, g), fp = sum max(p - g, 0), fn = sum max(g - p, 0), which is the
    L1 form (P + G - sum|p - g|) / 2 etc. rearranged (and sum p g, sum p (1 - g), sum (1 - p) g on hard labels);
    g - p is taken as (1 - p) - (1 - g) so that nothing cancels near p = 1.
    """
    p = _region_probs(r, mode, from_logits)
    q = _region_complement(r, mode, from_logits)
    n, c = r.N, r.C
    pw = np.ones((n, c, r.S)) if pw is None else pw
    tp = np.zeros((n, c))
    fp = np.zeros((n, c))
    fn = np.zeros((n, c))
    G = np.zeros((n, c))
    for ni in range(n):
        for ci in range(c):
            if r.kind == "index":
                m = r.valid[ni]
                fg = (r.t[ni] == ci) & m
                bg = (r.t[ni] != ci) & m
                wv = pw[ni, ci]
                tp[ni, ci] = np.sum(wv[fg] * p[ni, ci][fg])
                fp[ni, ci] = np.sum(wv[bg] * p[ni, ci][bg])
                fn[ni, ci] = np.sum(wv[fg] * q[ni, ci][fg])
                G[ni, ci] = float(np.sum(wv[fg]))
            else:
                m = r.valid[ni, ci]
                pv, qv, gv, wv = p[ni, ci][m], q[ni, ci][m], r.g[ni, ci][m], pw[ni, ci][m]
                tp[ni, ci] = np.sum(wv * np.minimum(pv, gv))
                fp[ni, ci] = np.sum(wv * np.maximum(pv - gv, 0.0))
                fn[ni, ci] = np.sum(wv * np.maximum(qv - (1.0 - gv), 0.0))
                G[ni, ci] = np.sum(wv * gv)
    if not per_image:
        tp, fp, fn, G = (a.sum(axis=0, keepdims=True) for a in (tp, fp, fn, G))
    return tp, fp, fn, G


def _ratio_loss(err, den, log_loss):
    """1 - score written as err / den (err = den - num, so nothing cancels); -log(max(score, 1e-7)) with log_loss."""
    err = np.asarray(err, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    l = np.zeros(np.broadcast(err, den).shape)
    nz = den != 0
    l[nz] = np.broadcast_to(err, l.shape)[nz] / np.broadcast_to(den, l.shape)[nz]
    if log_loss:
        return -np.log1p(-np.minimum(l, 1.0 - 1e-7))
    return l


def _class_list(classes, c):
    if classes is None:
        return list(range(c))
    cls = [int(k) for k in classes]
    for k in cls:
        if not 0 <= k < c:
            raise ValueError(f"class {k} out of range for C={c}")
    return cls


def _region(
    logits,
    target,
    mode,
    score_name,
    *,
    smooth,
    per_image,
    log_loss,
    weight,
    classes,
    ignore_index,
    from_logits,
    reduction,
    alpha=None,
    beta=None,
    gamma=None,
    pixel_weight=None,
):
    _check_reduction(reduction)
    r = _prepare(logits, target, mode, ignore_index)
    tp, fp, fn, _ = _region_stats(r, mode, from_logits, per_image, _pixel_weight(r, pixel_weight))
    s = float(smooth)
    if score_name == "dice":
        l = _ratio_loss(fp + fn, 2 * tp + fp + fn + s, log_loss)
    elif score_name == "jaccard":
        l = _ratio_loss(fp + fn, tp + fp + fn + s, log_loss)
    elif score_name in ("tversky", "focal_tversky"):
        l = _ratio_loss(alpha * fp + beta * fn, tp + alpha * fp + beta * fn + s, log_loss)
    else:
        raise AssertionError(score_name)
    if score_name == "focal_tversky":
        l = np.where(l > 0, np.maximum(l, _TINY_F32) ** float(gamma), 0.0)
    cls = _class_list(classes, r.C)
    w = np.ones(r.C) if weight is None else _class_vector(weight, r.C, "weight")
    wk = w[cls]
    out = l[:, cls] * wk[None, :]  # (R, K)
    if reduction == "none":
        return out if per_image else out[0]
    if reduction == "sum":
        return _scalar(out.sum())
    return _scalar(out.sum() / (out.shape[0] * wk.sum()))


def dice(
    logits,
    target,
    mode,
    *,
    smooth=1e-5,
    per_image=False,
    log_loss=False,
    weight=None,
    classes=None,
    ignore_index=None,
    from_logits=True,
    reduction="mean",
    pixel_weight=None,
):
    return _region(
        logits, target, mode, "dice", smooth=smooth, per_image=per_image,
        log_loss=log_loss, weight=weight, classes=classes,
        ignore_index=ignore_index, from_logits=from_logits, reduction=reduction,
        pixel_weight=pixel_weight,
    )


def jaccard(
    logits,
    target,
    mode,
    *,
    smooth=1e-5,
    per_image=False,
    log_loss=False,
    weight=None,
    classes=None,
    ignore_index=None,
    from_logits=True,
    reduction="mean",
    pixel_weight=None,
):
    return _region(
        logits, target, mode, "jaccard", smooth=smooth, per_image=per_image,
        log_loss=log_loss, weight=weight, classes=classes,
        ignore_index=ignore_index, from_logits=from_logits, reduction=reduction,
        pixel_weight=pixel_weight,
    )


def tversky(
    logits,
    target,
    mode,
    *,
    alpha=0.3,
    beta=0.7,
    smooth=1e-5,
    per_image=False,
    log_loss=False,
    weight=None,
    classes=None,
    ignore_index=None,
    from_logits=True,
    reduction="mean",
    pixel_weight=None,
):
    return _region(
        logits, target, mode, "tversky", smooth=smooth, per_image=per_image,
        log_loss=log_loss, weight=weight, classes=classes,
        ignore_index=ignore_index, from_logits=from_logits, reduction=reduction,
        alpha=float(alpha), beta=float(beta), pixel_weight=pixel_weight,
    )


def focal_tversky(
    logits,
    target,
    mode,
    *,
    alpha=0.3,
    beta=0.7,
    gamma=0.75,
    smooth=1e-5,
    per_image=False,
    log_loss=False,
    weight=None,
    classes=None,
    ignore_index=None,
    from_logits=True,
    reduction="mean",
    pixel_weight=None,
):
    return _region(
        logits, target, mode, "focal_tversky", smooth=smooth,
        per_image=per_image, log_loss=log_loss, weight=weight, classes=classes,
        ignore_index=ignore_index, from_logits=from_logits, reduction=reduction,
        alpha=float(alpha), beta=float(beta), gamma=float(gamma), pixel_weight=pixel_weight,
    )


def generalized_dice(
    logits,
    target,
    mode,
    *,
    weight_type="square",
    smooth=1e-5,
    per_image=False,
    log_loss=False,
    weight=None,
    classes=None,
    ignore_index=None,
    from_logits=True,
    reduction="mean",
    pixel_weight=None,
):
    _check_reduction(reduction)
    r = _prepare(logits, target, mode, ignore_index)
    # G: the weighted target volume, so the class weights r_c come from the weighted volumes
    tp, fp, fn, G = _region_stats(r, mode, from_logits, per_image, _pixel_weight(r, pixel_weight))
    rows, c = tp.shape
    # Class weights r_c per row, over all C classes of the row (the contract
    # computes them before selecting the kept classes).
    rc = np.ones((rows, c))
    for ri in range(rows):
        for ci in range(c):
            g = G[ri, ci]
            if weight_type == "square":
                rc[ri, ci] = 1.0 / (g * g) if g * g != 0 else np.inf
            elif weight_type == "simple":
                rc[ri, ci] = 1.0 / g if g != 0 else np.inf
            elif weight_type == "uniform":
                rc[ri, ci] = 1.0
            else:
                raise ValueError(f"unknown weight_type {weight_type!r}")
        finite = np.isfinite(rc[ri])
        fill = np.max(rc[ri][finite]) if finite.any() else 1.0
        rc[ri][~finite] = fill
    if weight is not None:
        rc = rc * _class_vector(weight, c, "weight")[None, :]
    cls = _class_list(classes, c)
    s = float(smooth)
    losses = np.zeros(rows)
    for ri in range(rows):
        err = 0.0
        den = 0.0
        for ci in cls:
            err += rc[ri, ci] * (fp[ri, ci] + fn[ri, ci])
            den += rc[ri, ci] * (2 * tp[ri, ci] + fp[ri, ci] + fn[ri, ci])
        losses[ri] = _ratio_loss(err, den + s, log_loss)
    if reduction == "none":
        return losses if per_image else _scalar(losses[0])
    if reduction == "sum":
        return _scalar(losses.sum())
    return _scalar(losses.mean())


# --------------------------------------------------------------------------
# Lovasz
# --------------------------------------------------------------------------


def _lovasz_grad(gs, ws=None):
    """Increments of the Jaccard loss along the sorted errors; with weights ``ws`` the weighted Jaccard loss
    (intersection G_w - cumsum(w g), union G_w + cumsum(w (1 - g)), G_w = sum w g); J = 0 where the union is 0
    (nothing of positive weight yet)."""
    ws = np.ones_like(gs) if ws is None else ws
    gts = np.sum(ws * gs)
    inter = gts - np.cumsum(ws * gs)
    union = gts + np.cumsum(ws * (1.0 - gs))
    j = np.zeros_like(union)
    nz = union != 0
    j[nz] = 1.0 - inter[nz] / union[nz]
    grad = j.copy()
    grad[1:] = j[1:] - j[:-1]
    return grad


def _lovasz_hinge_row(x, g, w=None):
    """x: logits (P,), g: labels (P,), w: pixel weights (P,) or None; valid elements only."""
    if x.size == 0:
        return 0.0
    signs = 2.0 * g - 1.0
    e = 1.0 - x * signs
    order = np.argsort(-e, kind="stable")
    e_sorted = e[order]
    g_sorted = g[order]
    return float(np.dot(np.maximum(e_sorted, 0.0), _lovasz_grad(g_sorted, None if w is None else w[order])))


def _lovasz_softmax_row(p, fg, w=None):
    """p: probabilities of one class (P,), fg: foreground (P,), w: pixel weights (P,) or None; valid only."""
    if p.size == 0:
        return 0.0
    e = np.abs(fg - p)
    order = np.argsort(-e, kind="stable")
    return float(np.dot(e[order], _lovasz_grad(fg[order], None if w is None else w[order])))


def lovasz(
    logits,
    target,
    mode,
    *,
    classes="present",
    per_image=False,
    ignore_index=None,
    weight=None,
    from_logits=True,
    reduction="mean",
    eps=1e-7,
    pixel_weight=None,
):
    _check_reduction(reduction)
    r = _prepare(logits, target, mode, ignore_index)
    n, c = r.N, r.C
    pw = _pixel_weight(r, pixel_weight)
    if isinstance(classes, str):
        if classes not in ("present", "all"):
            raise ValueError(f"unknown classes {classes!r}")
        cls = list(range(c))
    else:
        cls = _class_list(classes, c)
    k = len(cls)
    w = np.ones(c) if weight is None else _class_vector(weight, c, "weight")
    wk = w[cls]

    img_sets = [list(range(n))] if not per_image else [[ni] for ni in range(n)]
    rows = len(img_sets)
    L = np.zeros((rows, k))
    M = np.zeros((rows, k))

    if mode in ("binary", "multilabel"):
        if from_logits:
            score = r.x
        else:
            pc = np.clip(r.x, eps, 1.0 - eps)
            score = np.log(pc) - np.log1p(-pc)
        for ri, imgs in enumerate(img_sets):
            for kj, ci in enumerate(cls):
                xs = []
                gs = []
                ws = []
                for ni in imgs:
                    m = r.valid[ni, ci]
                    xs.append(score[ni, ci][m])
                    gs.append(r.g[ni, ci][m])
                    ws.append(pw[ni, ci][m])
                xv = np.concatenate(xs)
                gv = np.concatenate(gs)
                L[ri, kj] = _lovasz_hinge_row(xv, gv, np.concatenate(ws))
                M[ri, kj] = 1.0  # every row counts for the hinge
    else:
        p = _softmax(r.x, axis=1) if from_logits else r.x
        for ri, imgs in enumerate(img_sets):
            for kj, ci in enumerate(cls):
                ps = []
                fgs = []
                ws = []
                for ni in imgs:
                    if r.kind == "index":
                        m = r.valid[ni]
                        ps.append(p[ni, ci][m])
                        fgs.append((r.t[ni][m] == ci).astype(np.float64))
                        ws.append(pw[ni, ci][m])
                    else:
                        ps.append(p[ni, ci])
                        fgs.append(r.g[ni, ci])
                        ws.append(pw[ni, ci])
                pv = np.concatenate(ps)
                fv = np.concatenate(fgs)
                wv = np.concatenate(ws)
                L[ri, kj] = _lovasz_softmax_row(pv, fv, wv)
                if isinstance(classes, str) and classes == "present":  # (weighted: a class of weight 0 is absent)
                    M[ri, kj] = 1.0 if np.sum(wv * fv) > 0 else 0.0
                else:
                    M[ri, kj] = 1.0

    out = wk[None, :] * M * L  # (rows, K)
    if reduction == "none":
        return out if per_image else out[0]
    if reduction == "sum":
        return _scalar(out.sum())
    per_row = np.zeros(rows)
    for ri in range(rows):
        den = float(np.sum(wk * M[ri]))
        per_row[ri] = float(np.sum(out[ri])) / den if den != 0 else 0.0
    return _scalar(per_row.mean())
