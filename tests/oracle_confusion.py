"""Float64 NumPy oracles of the confusion family, written from the papers (no seglosses import).

mcc: Matthews (1975) / Abhishek & Hamarneh (2021), in the product form of the coefficient,
    MCC = sqrt(PPV TPR TNR NPV) - sqrt(FDR FNR FPR FOR)
(a form independent of the one the library computes), each rate smoothed as (num + s) / (den + s) for the "good"
rates and err / (den + s) for the error rates, 0/0 read as its s -> 0+ limit (good rate 1, error rate 0).

generalized_wasserstein_dice: Fidon et al. (2017), eq. 6 (W = sum_c M[t, c] p_c) and the generalized Dice over it,
with the "default" (background 0) and "GDL" (1 / (volume + 1)) weights of MONAI / Tilborghs et al. (2020); the
two-state problems (binary, multilabel) and class-probability targets by their explicit optimal transport plan.
"""

import numpy as np

from oracle import _check_reduction, _class_list, _class_vector, _pixel_weight, _prepare, _region_complement
from oracle import _region_probs
from oracle import _region_stats, _scalar


def _true_negatives(r, mode, from_logits, per_image, pw):
    """tn (R, C): sum over valid elements of w min(1 - p, 1 - g) (hard: w (1 - p)(1 - g)); for class indices the sum
    of w (1 - p_c) over the valid pixels whose class is not c (w: the element weights, 1 without pixel weights)."""
    q = _region_complement(r, mode, from_logits)
    tn = np.zeros((r.N, r.C))
    for ni in range(r.N):
        for ci in range(r.C):
            if r.kind == "index":
                m = r.valid[ni] & (r.t[ni] != ci)
                tn[ni, ci] = np.sum(pw[ni, ci][m] * q[ni, ci][m])
            else:
                m = r.valid[ni, ci]
                tn[ni, ci] = np.sum(pw[ni, ci][m] * np.minimum(q[ni, ci][m], 1.0 - r.g[ni, ci][m]))
    return tn.sum(axis=0, keepdims=True) if not per_image else tn


def _rate(num, den, empty):
    return num / den if den > 0 else empty


def _mcc(tp, fp, fn, tn, s):
    good = [_rate(tp + s, tp + fp + s, 1.0), _rate(tp + s, tp + fn + s, 1.0),
            _rate(tn + s, tn + fp + s, 1.0), _rate(tn + s, tn + fn + s, 1.0)]
    bad = [_rate(fp, tp + fp + s, 0.0), _rate(fn, tp + fn + s, 0.0),
           _rate(fp, tn + fp + s, 0.0), _rate(fn, tn + fn + s, 0.0)]
    return np.sqrt(np.prod(good)) - np.sqrt(np.prod(bad))


def mcc(logits, target, mode, *, smooth=1e-5, per_image=False, weight=None, classes=None, ignore_index=None,
        from_logits=True, reduction="mean", pixel_weight=None):
    _check_reduction(reduction)
    r = _prepare(logits, target, mode, ignore_index)
    pw = _pixel_weight(r, pixel_weight)  # every element's share of tp, fp, fn and tn times its weight
    tp, fp, fn, _ = _region_stats(r, mode, from_logits, per_image, pw)
    tn = _true_negatives(r, mode, from_logits, per_image, pw)
    rows = tp.shape[0]
    loss = np.array([[1.0 - _mcc(tp[i, c], fp[i, c], fn[i, c], tn[i, c], float(smooth)) for c in range(r.C)]
                     for i in range(rows)])
    cls = _class_list(classes, r.C)
    w = np.ones(r.C) if weight is None else _class_vector(weight, r.C, "weight")
    out = loss[:, cls] * w[cls][None, :]
    if reduction == "none":
        return out if per_image else out[0]
    if reduction == "sum":
        return _scalar(out.sum())
    return _scalar(out.sum() / (out.shape[0] * w[cls].sum()))


def _plan_sums(r, mode, from_logits, m, pw):
    """Per image, per target state/class k: A (kept mass + moved mass times 1 - M), B (moved mass times M), V; each
    element's (pixel's) share times its weight ``pw`` (N, C, S) (one per pixel for multiclass)."""
    p = _region_probs(r, mode, from_logits)
    q = _region_complement(r, mode, from_logits)
    if mode != "multiclass":  # two states per element: (absent, present)
        m = np.array([[0.0, 1.0], [1.0, 0.0]]) if m is None else m
        a = np.zeros((r.N, r.C, 2))
        b = np.zeros((r.N, r.C, 2))
        v = np.zeros((r.N, r.C, 2))
        for ni in range(r.N):
            for ci in range(r.C):
                ok = r.valid[ni, ci]
                pv, qv, g, wv = p[ni, ci][ok], q[ni, ci][ok], r.g[ni, ci][ok], pw[ni, ci][ok]
                h = 1.0 - g
                to_absent = np.maximum(pv - g, 0.0)   # predicted present, target absent
                to_present = np.maximum(qv - h, 0.0)  # predicted absent, target present
                a[ni, ci, 0] = np.sum(wv * (np.minimum(qv, h) + (1 - m[0, 1]) * to_absent))
                a[ni, ci, 1] = np.sum(wv * (np.minimum(pv, g) + (1 - m[1, 0]) * to_present))
                b[ni, ci, 0] = np.sum(wv * m[0, 1] * to_absent)
                b[ni, ci, 1] = np.sum(wv * m[1, 0] * to_present)
                v[ni, ci] = np.sum(wv * h), np.sum(wv * g)
        return a, b, v
    c = r.C
    a, b, v = np.zeros((r.N, c)), np.zeros((r.N, c)), np.zeros((r.N, c))
    if r.kind == "dense":  # 0-1 distance: keep min(p_c, g_c), the rest moves at cost 1
        for ni in range(r.N):
            g, wv = r.g[ni], pw[ni, 0]
            a[ni] = (wv * np.minimum(p[ni], g)).sum(-1)
            b[ni] = (wv * np.maximum(q[ni] - (1 - g), 0.0)).sum(-1)
            v[ni] = (wv * g).sum(-1)
        return a, b, v
    m = 1.0 - np.eye(c) if m is None else m
    for ni in range(r.N):
        for si in range(r.S):
            if not r.valid[ni, si]:
                continue
            t, wv = r.t[ni, si], pw[ni, 0, si]
            w = np.sum(m[t] * p[ni, :, si])       # eq. 6
            a[ni, t] += wv * np.sum((1 - m[t]) * p[ni, :, si])
            b[ni, t] += wv * w
            v[ni, t] += wv
    return a, b, v


def generalized_wasserstein_dice(logits, target, mode, *, distance_matrix=None, weighting_mode="default",
                                 smooth=1e-5, per_image=False, ignore_index=None, from_logits=True,
                                 reduction="mean", pixel_weight=None):
    _check_reduction(reduction)
    r = _prepare(logits, target, mode, ignore_index)
    pw = _pixel_weight(r, pixel_weight)
    m = None if distance_matrix is None else np.asarray(distance_matrix, dtype=np.float64)
    m = None if m is None else m / m.max()
    a, b, v = _plan_sums(r, mode, from_logits, m, pw)
    if not per_image:
        a, b, v = a.sum(0, keepdims=True), b.sum(0, keepdims=True), v.sum(0, keepdims=True)
    if weighting_mode == "GDL":
        alpha = beta = 1.0 / (v + 1.0)
    else:
        alpha = np.ones_like(v)
        alpha[..., 0] = 0.0  # background: class 0 (multiclass), the absent state (binary, multilabel)
        beta = np.ones_like(v)
    rows = a.shape[0]
    losses = np.zeros(rows)
    for i in range(rows):
        tp = np.sum(alpha[i] * a[i])
        err = np.sum(beta[i] * b[i])
        den = 2 * tp + err + float(smooth)
        losses[i] = 1.0 - (2 * tp + float(smooth)) / den if den > 0 else 0.0
    if reduction == "none":
        return losses if per_image else _scalar(losses[0])
    if reduction == "sum":
        return _scalar(losses.sum())
    return _scalar(losses.mean())
