"""Float64 NumPy oracles of the contour losses, written from the papers (mapped in tests/test_survey_oracle.py).

- distance_penalized_cross_entropy: Caliva et al., MIDL 2019 (arXiv 1908.03679): CE weighted by 1 + phi, phi the
  target's distance map inverted and normalised per side of the boundary (SegLoss ``compute_edts_forPenalizedLoss``:
  ``inv = max(d) - d``, then ``inv / max(inv)``, inside and outside).
- shape_aware: Jadon 2020, eqs. 15-16: CE weighted by 1 + E, E the mean over the predicted contour's points of the
  distance to the nearest target contour point (a brute-force search over the points here, no distance transform).
- boundary_dou: Sun et al., MICCAI 2023, official code ``_adaptive_size``: (z + y - 2 I + s) / (z + y - (1 + a) I
  + s), a = min(1 - 2 (C + s) / (S + s), 0.8), sums over the batch per class; the numerator z + y - 2 I is taken as
  sum (p - g)^2 (the same number; no cancellation at saturated logits).
"""

import itertools

import numpy as np
from scipy.ndimage import distance_transform_edt

import oracle
from oracle_pixel_weight import element_weights, pixel_weights
from oracle_survey import (_check_reduction, _class_list, _g_minus_p, _log_probs, _prep, _reduce_classes,
                           _reduce_pixel_map, _scalar, _targets)

_S = 1e-5


def _contour(m):
    """Mask elements with a face neighbour outside the mask; beyond the border is outside."""
    p = np.pad(m, 1, constant_values=False)
    inner = m.copy()
    nd = m.ndim
    for a in range(nd):
        for step in (-1, 1):
            idx = tuple(slice(1 + step, 1 + step + m.shape[k]) if k == a else slice(1, 1 + m.shape[k])
                        for k in range(nd))
            inner &= p[idx]
    return m & ~inner


def _penalty(m, v, spacing):
    inside, outside = m & v, ~m & v
    if not inside.any() or not outside.any():
        return np.zeros(m.shape)
    kw = {} if spacing is None else {"sampling": spacing}
    d_in = distance_transform_edt(~outside, **kw)   # inside: distance to the nearest valid outside element
    d_out = distance_transform_edt(~inside, **kw)   # outside: distance to the nearest valid inside element
    phi = np.zeros(m.shape)
    for side, d in ((inside, d_in), (outside, d_out)):
        inv = d[side].max() - d[side]  # inverted: largest next to the boundary
        phi[side] = inv / inv.max() if inv.max() > 0 else 1.0  # all equally near: all on the boundary
    return phi


def _mean_contour_distance(pred, gt, spacing):
    """Mean over the contour points of ``pred`` of the distance to the nearest contour point of ``gt``."""
    a, b = np.argwhere(_contour(pred)), np.argwhere(_contour(gt))
    if len(a) == 0 or len(b) == 0:
        return 0.0
    sp = np.ones(pred.ndim) if spacing is None else np.broadcast_to(np.asarray(spacing, dtype=np.float64),
                                                                      (pred.ndim,))
    d = np.sqrt((((a[:, None, :] - b[None, :, :]) * sp) ** 2).sum(-1))
    return float(d.min(1).mean())


def _weighted_ce(r, mode, w, from_logits):
    """(N, C, S) terms of the cross-entropy weighted by w (N, C, S) or (N, C, 1); 0 at invalid entries."""
    g, valid = _targets(r)
    logp, log1mp = _log_probs(r, from_logits)
    if mode == "multiclass":
        terms = -w * g * logp
    else:
        terms = -w * (g * logp + (1 - g) * log1mp)
    return np.where(valid, terms, 0.0)


def _reduce_weighted(r, loss, reduction, pixel_weight):
    """The pixel-loss rule with pixel weights: each term (a pixel's sum over classes for "multiclass", else an
    element) times its weight; "mean" = sum over the sum of the valid terms' weights (0 when that is 0)."""
    if pixel_weight is None:
        return _reduce_pixel_map(r, loss, reduction)
    if r.mode == "multiclass":
        w = pixel_weights(r, pixel_weight)  # (N, S), 0 at ignored pixels
        pix = w * loss.sum(axis=1)
        shape = (r.N,) + tuple(r.spatial)
    else:
        w = element_weights(r, pixel_weight)
        pix = w * loss
        shape = r.out_shape
    if reduction == "none":
        return pix.reshape(shape)
    if reduction == "sum":
        return _scalar(pix.sum())
    norm = w.sum()
    return _scalar(pix.sum() / norm if norm > 0 else 0.0)


def distance_penalized_cross_entropy(logits, target, mode, *, spacing=None, dist_maps=None, ignore_index=None,
                                     from_logits=True, reduction="mean", pixel_weight=None):
    _check_reduction(reduction)
    r = _prep(logits, target, mode, ignore_index)
    g, valid = _targets(r)
    masks = (g > 0.5) & valid
    if dist_maps is None:
        phi = np.zeros(g.shape)
        for n, c in itertools.product(range(r.N), range(r.C)):
            m, v = masks[n, c].reshape(r.spatial), valid[n, c].reshape(r.spatial)
            phi[n, c] = _penalty(m, v, spacing).reshape(-1)
    else:
        phi = np.asarray(dist_maps, dtype=np.float64).reshape(r.N, r.C, r.S)
    return _reduce_weighted(r, _weighted_ce(r, mode, 1 + phi, from_logits), reduction, pixel_weight)


def shape_aware(logits, target, mode, *, spacing=None, ignore_index=None, from_logits=True, reduction="mean",
                pixel_weight=None):
    _check_reduction(reduction)
    r = _prep(logits, target, mode, ignore_index)
    g, valid = _targets(r)
    masks = (g > 0.5) & valid
    if mode == "multiclass":
        pred = np.argmax(r.x, axis=1)[:, None, :] == np.arange(r.C)[None, :, None]
    else:
        pred = r.x > (0.0 if from_logits else 0.5)
    pred = pred & valid
    e = np.zeros((r.N, r.C, 1))
    for n, c in itertools.product(range(r.N), range(r.C)):
        e[n, c] = _mean_contour_distance(pred[n, c].reshape(r.spatial), masks[n, c].reshape(r.spatial), spacing)
    return _reduce_weighted(r, _weighted_ce(r, mode, 1 + e, from_logits), reduction, pixel_weight)


def boundary_dou(logits, target, mode, *, per_image=False, classes=None, ignore_index=None, from_logits=True,
                 reduction="mean", pixel_weight=None):
    """With ``pixel_weight``: each pixel's share of sum (p - g)^2 and of sum p g times its weight; alpha (S, C) from
    the unweighted target; a row whose valid weights sum to 0 has loss 0 (as a row with no valid pixel)."""
    _check_reduction(reduction)
    r = _prep(logits, target, mode, ignore_index)
    g, valid = _targets(r)
    masks = (g > 0.5) & valid
    p = oracle._region_probs(r, mode, from_logits)
    q = oracle._region_complement(r, mode, from_logits)
    w = element_weights(r, pixel_weight)
    rows = [list(range(r.N))] if not per_image else [[n] for n in range(r.N)]
    out = np.zeros((len(rows), r.C))
    for i, ns in enumerate(rows):
        for c in range(r.C):
            v = valid[ns, c]
            if not v.any() or not w[ns, c][v].sum() > 0:
                continue  # no valid pixel (or weight): no statistic, loss 0
            err = (w[ns, c] * _g_minus_p(g[ns, c], p[ns, c], q[ns, c]) ** 2)[v].sum()
            inter = (w[ns, c] * p[ns, c] * g[ns, c])[v].sum()
            size = masks[ns, c].sum()
            edge = sum(_contour(masks[n, c].reshape(r.spatial)).sum() for n in ns)
            alpha = min(1 - 2 * (edge + _S) / (size + _S), 0.8)
            out[i, c] = (err + _S) / (err + _S + (1 - alpha) * inter)
    return _reduce_classes(out, r, None, classes, per_image, reduction)


def _selfcheck():
    # hand-derived: 1-D binary [0, 1, 1, 1, 0, 0]: phi = [1, 1, 0, 1, 1, 0]; at p = 1/2 the loss is 10 ln 2 / 6
    t = np.array([[[0.0, 1.0, 1.0, 1.0, 0.0, 0.0]]])
    got = distance_penalized_cross_entropy(np.zeros((1, 1, 6)), t, "binary")
    assert abs(got - 10 * np.log(2) / 6) < 1e-12, got
    # contour distances: prediction [0, 0, 0, 1, 1] has contour {3, 4}, target [0, 1, 1, 1, 0] contour {1, 3}
    assert _mean_contour_distance(np.array([0, 0, 0, 1, 1], bool), np.array([0, 1, 1, 1, 0], bool), None) == 0.5
    # Boundary DoU at p = 1/2 on [0, 1, 1, 1, 0]: S = 3, C = 2, alpha ~ -1/3, err = 1.25, I = 1.5
    got = boundary_dou(np.zeros((1, 1, 5)), np.array([[[0.0, 1.0, 1.0, 1.0, 0.0]]]), "binary")
    a = 1 - 2 * (2 + _S) / (3 + _S)
    assert abs(got - (1.25 + _S) / (1.25 + _S + (1 - a) * 1.5)) < 1e-12, got
    return _scalar(0.0)


_selfcheck()
