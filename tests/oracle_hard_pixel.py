"""Float64 NumPy oracle of the hard-pixel losses (TopK, OHEM cross-entropy) and of Poly-1, written from their
definitions (nnU-Net's TopKLoss, mmseg's OHEMPixelSampler, Leng et al. 2022) and docs/semantics.md, with plain
sorts and loops; no seglosses import. The per-pixel cross-entropy and the focal part come from tests/oracle.py."""

import math
from fractions import Fraction

import numpy as np

import oracle as O

__all__ = ["topk_cross_entropy", "ohem_cross_entropy", "poly"]


def _ce_map(logits, target, mode, weight, ignore_index, label_smoothing, from_logits, pixel_weight=None):
    """The per-pixel (per-element for the sigmoid) weighted cross-entropy ``(N, M)``, its valid mask and the pixel
    weights ``(N, M)`` (1 without ``pixel_weight``; 0 at ignored entries)."""
    r = O._prepare(logits, target, mode, ignore_index)
    ce = O.focal(logits, target, mode, gamma=0.0, weight=weight, ignore_index=ignore_index,
                 label_smoothing=label_smoothing, from_logits=from_logits, reduction="none")
    n = r.N
    pw = O._pixel_weight(r, pixel_weight)
    if mode == "multiclass":
        valid = r.valid if r.kind == "index" else np.ones((n, r.S), dtype=bool)
        pw = pw[:, 0, :]
    else:
        valid = r.valid
    return r, np.asarray(ce, dtype=np.float64).reshape(n, -1), valid.reshape(n, -1), pw.reshape(n, -1)


def _rows(a, per_image):
    return a if per_image else a.reshape(1, -1)


def _reduce(losses, counts, reduction, per_image):
    losses = np.asarray(losses, dtype=np.float64)
    if reduction == "none":
        return losses if per_image else O._scalar(losses[0])
    if reduction == "sum":
        return O._scalar(losses.sum())
    rows = int(np.sum(np.asarray(counts) > 0))
    return O._scalar(losses.sum() / rows if rows else 0.0)


def topk_cross_entropy(logits, target, mode, *, k=10.0, weight=None, ignore_index=None, label_smoothing=0.0,
                       per_image=False, from_logits=True, reduction="mean", pixel_weight=None):
    """Mean of the ceil(k% of n) largest cross-entropies of the n valid pixels of each row. With pixel weights each
    pixel counts w times: n = the row's weight, the largest losses fill the weight m = ceil(k% of n) (the last one
    with the part of its weight that fits), and the loss is their weighted mean over min(m, n)."""
    _, ce, valid, pw = _ce_map(logits, target, mode, weight, ignore_index, label_smoothing, from_logits,
                               pixel_weight)
    losses, counts = [], []
    for row_ce, row_valid, row_w in zip(_rows(ce, per_image), _rows(valid, per_image), _rows(pw, per_image)):
        if pixel_weight is None:
            vals = np.sort(row_ce[row_valid])[::-1]
            m = math.ceil(Fraction(k) * len(vals) / 100)  # exact
            losses.append(vals[:m].mean() if m else 0.0)
            counts.append(len(vals))
            continue
        order = np.argsort(-row_ce[row_valid], kind="stable")
        vals, ws = row_ce[row_valid][order], row_w[row_valid][order]
        n = float(ws.sum())
        m = math.ceil(Fraction(k) * Fraction(n) / 100)
        left, total = float(m), 0.0
        for v, wv in zip(vals, ws):  # fill the weight m, the largest losses first
            part = min(wv, max(left, 0.0))
            total += part * v
            left -= wv
        den = min(m, n)
        losses.append(total / den if den > 0 else 0.0)
        counts.append(n)
    return _reduce(losses, counts, reduction, per_image)


def log_target_probability(logits, target, mode, ignore_index=None, from_logits=True):
    """log p_t = -CE per pixel (element for the sigmoid) ``(N, M)``, the cross-entropy without weight nor label
    smoothing: the log-probability of the target class (hard targets), sum_c g_c log p_c (soft ones)."""
    _, ce, _, _ = _ce_map(logits, target, mode, None, ignore_index, 0.0, from_logits)
    return -ce


def ohem_cross_entropy(logits, target, mode, *, threshold=0.7, min_kept=100000, weight=None, ignore_index=None,
                       label_smoothing=0.0, per_image=False, from_logits=True, reduction="mean", pixel_weight=None):
    """Mean cross-entropy over the valid pixels with p_t < threshold or among the q hardest (q = min_kept per image,
    ties at the q-th included). With pixel weights each pixel counts w times: the q-th smallest p_t is the first
    (sorted up) at which the weights reach q (all pixels if they never do), and the mean is weighted."""
    r, ce, valid, pw = _ce_map(logits, target, mode, weight, ignore_index, label_smoothing, from_logits,
                               pixel_weight)
    lpt = log_target_probability(logits, target, mode, ignore_index, from_logits)
    q_row = min_kept if per_image else min_kept * r.N
    log_thr = math.log(threshold) if threshold > 0 else -math.inf
    losses, counts = [], []
    for row_ce, row_valid, row_lpt, row_w in zip(_rows(ce, per_image), _rows(valid, per_image),
                                                 _rows(lpt, per_image), _rows(pw, per_image)):
        vals, lp, ws = row_ce[row_valid], row_lpt[row_valid], row_w[row_valid]
        keep = lp < log_thr
        if pixel_weight is None:
            q = min(q_row, len(lp))
            if q:
                keep |= lp <= np.sort(lp)[q - 1]
            losses.append(vals[keep].mean() if keep.any() else 0.0)
            counts.append(len(vals))
            continue
        if q_row:
            order = np.argsort(lp, kind="stable")
            acc, kth = 0.0, math.inf
            for i in order:
                acc += ws[i]
                if acc >= q_row:
                    kth = lp[i]
                    break
            keep |= lp <= kth
        kept = float(ws[keep].sum())
        losses.append(float(np.sum(ws[keep] * vals[keep])) / kept if kept > 0 else 0.0)
        counts.append(float(ws.sum()))
    return _reduce(losses, counts, reduction, per_image)


def poly(logits, target, mode, *, epsilon=1.0, alpha=None, gamma=0.0, weight=None, ignore_index=None,
         label_smoothing=0.0, from_logits=True, reduction="mean", eps=1e-7, pixel_weight=None):
    """Poly-1 (Leng et al. 2022, eq. 3 and the focal form): FL + epsilon * coef * (1 - p_t)^(gamma + 1), with the
    focal loss's per-element weight (w_c alpha_t) on the polynomial term; per class for the softmax. Pixel weights
    multiply both terms (and the focal loss's normaliser)."""
    fl = O.focal(logits, target, mode, alpha=alpha, gamma=gamma, weight=weight, ignore_index=ignore_index,
                 label_smoothing=label_smoothing, from_logits=from_logits, reduction=reduction,
                 pixel_weight=pixel_weight)
    r = O._prepare(logits, target, mode, ignore_index)
    pw = O._pixel_weight(r, pixel_weight)
    n, c, s = r.N, r.C, r.S
    ls = float(label_smoothing)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    a = np.ones(c) if alpha is None else np.broadcast_to(np.asarray(alpha, dtype=np.float64), (c,))
    if mode == "multiclass":
        x = r.x
        if from_logits:
            q = O._others_sum(O._softmax(x, axis=1))  # 1 - p_c without cancellation
        else:
            pc = np.clip(x, eps, 1 - eps)
            q = O._others_sum(pc) / pc.sum(axis=1, keepdims=True)
        y = (1 - ls) * (O._one_hot(r.t, c) if r.kind == "index" else r.g) + ls / c
        valid = r.valid if r.kind == "index" else np.ones((n, s), dtype=bool)
        term = np.zeros((n, s))
        for ni in range(n):
            for si in range(s):
                if valid[ni, si]:
                    term[ni, si] = pw[ni, 0, si] * sum(y[ni, ci, si] * w[ci] * a[ci] * q[ni, ci, si] ** (gamma + 1)
                                                       for ci in range(c))
        out_shape = (n,) + tuple(r.spatial)
        denom = sum(pw[ni, 0, si] * w[r.t[ni, si]] for ni in range(n) for si in range(s) if valid[ni, si]) \
            if r.kind == "index" else float(pw[:, 0, :].sum())
    else:
        x = r.x
        if from_logits:
            p, qq = O._sigmoid(x), O._sigmoid(-x)
        else:
            p = np.clip(x, eps, 1 - eps)
            qq = 1 - p
        y = r.g * (1 - ls) + ls / 2
        one_minus_pt = p * (1 - y) + qq * y
        alpha_t = np.ones_like(y) if alpha is None else a[None, :, None] * y + (1 - a[None, :, None]) * (1 - y)
        term = np.where(r.valid, pw * w[None, :, None] * alpha_t * one_minus_pt ** (gamma + 1), 0.0)
        out_shape = r.out_shape
        denom = float(pw[r.valid].sum())
    if reduction == "none":
        return np.asarray(fl) + epsilon * term.reshape(out_shape)
    if reduction == "sum":
        return O._scalar(fl + epsilon * term.sum())
    return O._scalar(fl + (epsilon * term.sum() / denom if denom else 0.0))


#: ``{registry name: oracle}``, merged into ``_ORACLE`` of tests/test_oracle.py.
ORACLE = {"topk_cross_entropy": topk_cross_entropy, "ohem_cross_entropy": ohem_cross_entropy, "poly": poly}


def _topk_options(mode, c):
    w = [0.5 + 0.5 * i for i in range(c)]
    return [{}, {"k": 30.0}, {"k": 100.0}, {"k": 0.5}, {"k": 25.0, "per_image": True}, {"k": 40.0, "weight": w},
            {"k": 20.0, "label_smoothing": 0.1, "from_logits": False}, {"k": 50.0, "per_image": True,
                                                                        "from_logits": False, "weight": w}]


def _ohem_options(mode, c):
    w = [0.5 + 0.5 * i for i in range(c)]
    return [{}, {"min_kept": 3}, {"threshold": 0.9, "min_kept": 0}, {"threshold": 0.0, "min_kept": 5},
            {"min_kept": 4, "per_image": True}, {"threshold": 0.5, "min_kept": 2, "weight": w},
            {"min_kept": 6, "label_smoothing": 0.2, "from_logits": False},
            {"threshold": 0.99, "min_kept": 1, "per_image": True, "weight": w, "from_logits": False}]


def _poly_options(mode, c):
    w = [0.5 + 0.5 * i for i in range(c)]
    per_class = [0.2 + 0.6 * i / max(c - 1, 1) for i in range(c)]
    return [{}, {"epsilon": -1.0}, {"epsilon": 2.0, "gamma": 2.0}, {"epsilon": 0.5, "gamma": 0.5, "alpha": 0.25},
            {"epsilon": 1.0, "alpha": per_class, "gamma": 1.5}, {"label_smoothing": 0.1, "epsilon": 3.0},
            {"weight": w}, {"from_logits": False, "gamma": 1.0},
            {"weight": w, "label_smoothing": 0.2, "alpha": 0.4, "gamma": 2.0, "from_logits": False}]


#: ``{registry name: options(mode, C)}``: the option sets of the oracle sweep (tests/test_oracle.py: _options).
OPTIONS = {"topk_cross_entropy": _topk_options, "ohem_cross_entropy": _ohem_options, "poly": _poly_options}
