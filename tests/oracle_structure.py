"""Independent float64 NumPy oracle for the structure losses: SSIM (Wang et al. 2004) and the correlation-maximized
structural similarity loss (Zhao et al. 2019, arXiv 1910.08711).

Written from the papers without reading the package: every window centre is visited in a loop, its neighbourhood
gathered explicitly with the n-D Gaussian weights exp(-|d|^2 / (2 sigma^2)) (|d_a| <= window_size // 2 on each
axis), restricted to the valid pixels inside the image and renormalised, and the weighted moments taken in two passes
(mean, then the centred second moments). No convolution, no separability, no E[x^2] - E[x]^2.

Definitions (docs/semantics.md, "Structure losses"):
- SSIM map (Wang eq. 13) with C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 1; loss 1 - SSIM at the valid centres: every
  valid pixel ("same") or those whose window lies inside the image ("valid"; none when an axis is shorter than the
  window). "mean" over valid centres and kept classes (0 when there is none).
- Zhao: e = |(g - mu_g + C4) / (sigma_g + C4) - (p - mu_p + C4) / (sigma_p + C4)|, C4 = 0.01 (their eq. 2),
  f = [e > beta e_max] (eq. 3), e_max over the valid elements of the batch and the kept classes, loss
  sum(e f CE) / sum(f) (eqs. 4-5). CE per class channel: -g log p (multiclass), the binary cross entropy otherwise;
  from_logits=False clamps p to [1e-7, 1 - 1e-7] inside the log (and renormalises over classes in multiclass), as
  the other pixel losses of the oracle do (tests/oracle_survey.py); the windows use p as given.
"""

import itertools

import numpy as np
import oracle
import oracle_survey as survey
from oracle_pixel_weight import element_weights

K1, K2, C4 = 0.01, 0.03, 0.01


_CACHE = {}


def _windows(spatial, window_size, sigma, valid_img, centres):
    """For each centre (tuple) of ``centres``: (indices of its valid neighbours as flat indices, their weights)."""
    key = (spatial, window_size, sigma, valid_img.tobytes(), tuple(centres))
    if key not in _CACHE:
        _CACHE[key] = _windows_uncached(spatial, window_size, sigma, valid_img, centres)
    return _CACHE[key]


def _windows_uncached(spatial, window_size, sigma, valid_img, centres):
    r = window_size // 2
    offsets = list(itertools.product(range(-r, r + 1), repeat=len(spatial)))
    out = []
    for c in centres:
        idx, wts = [], []
        for d in offsets:
            q = tuple(ci + di for ci, di in zip(c, d))
            if all(0 <= qi < n for qi, n in zip(q, spatial)) and valid_img[q]:
                idx.append(np.ravel_multi_index(q, spatial))
                wts.append(np.exp(-sum(di * di for di in d) / (2.0 * sigma * sigma)))
        w = np.asarray(wts)
        out.append((np.asarray(idx, dtype=np.int64), w / w.sum()))
    return out


def _moments(a, b, idx, w):
    ma, mb = np.sum(w * a[idx]), np.sum(w * b[idx])
    va = np.sum(w * (a[idx] - ma) ** 2)
    vb = np.sum(w * (b[idx] - mb) ** 2)
    cab = np.sum(w * (a[idx] - ma) * (b[idx] - mb))
    return ma, mb, va, vb, cab


def _inputs(logits, target, mode, ignore_index, from_logits):
    r = survey._prep(logits, target, mode, ignore_index)
    g, valid = survey._targets(r)
    p = oracle._region_probs(r, mode, from_logits)
    return r, p, g, valid


def ssim(logits, target, mode, *, window_size=11, sigma=1.5, padding="same", classes=None, weight=None,
         ignore_index=None, from_logits=True, reduction="mean", pixel_weight=None):
    """Mean over valid centres and kept classes of 1 - SSIM(p_c, g_c) (Wang et al. 2004). With ``pixel_weight``:
    each centre's value times the weight of the centre's pixel (and class), "mean" over the sum of those weights;
    the windows unweighted."""
    oracle._check_reduction(reduction)
    r, p, g, valid = _inputs(logits, target, mode, ignore_index, from_logits)
    pw = element_weights(r, pixel_weight)
    cls = oracle._class_list(classes, r.C)
    spatial = tuple(r.spatial)
    rad = window_size // 2
    if padding == "valid":
        ranges = [range(rad, n - rad) for n in spatial]
        out_spatial = tuple(max(n - 2 * rad, 0) for n in spatial)
    else:
        ranges = [range(n) for n in spatial]
        out_spatial = spatial
    centres = list(itertools.product(*ranges))
    c1, c2 = K1 ** 2, K2 ** 2
    loss = np.zeros((r.N, len(cls), len(centres)))
    counted = np.zeros(loss.shape)  # the weight of each counted centre (0: not counted)
    for n in range(r.N):
        for j, c in enumerate(cls):
            v = valid[n, c].reshape(spatial)
            wins = _windows(spatial, window_size, sigma, v, centres)
            for i, (centre, (idx, w)) in enumerate(zip(centres, wins)):
                if not v[centre]:
                    continue
                mp, mg, vp, vg, cpg = _moments(p[n, c], g[n, c], idx, w)
                s = (2 * mp * mg + c1) * (2 * cpg + c2) / ((mp ** 2 + mg ** 2 + c1) * (vp + vg + c2))
                wc = pw[n, c, np.ravel_multi_index(centre, spatial)]
                loss[n, j, i], counted[n, j, i] = wc * (1.0 - s), wc
    w = np.ones(r.C) if weight is None else np.asarray(weight, dtype=np.float64)
    wk = w[cls][None, :, None]
    loss = loss * wk
    if reduction == "none":
        return loss.reshape((r.N, len(cls)) + out_spatial)
    if reduction == "sum":
        return oracle._scalar(loss.sum())
    count = (counted * wk).sum()
    return oracle._scalar(loss.sum() / count if count else 0.0)


def _correlation(logits, target, mode, beta, window_size, sigma, classes, ignore_index, from_logits):
    r, p, g, valid = _inputs(logits, target, mode, ignore_index, from_logits)
    logp, log1mp = survey._log_probs(r, from_logits)
    ce = -g * logp if mode == "multiclass" else -(g * logp + (1 - g) * log1mp)
    cls = oracle._class_list(classes, r.C)
    spatial = tuple(r.spatial)
    centres = list(itertools.product(*[range(n) for n in spatial]))
    e = np.zeros((r.N, len(cls), r.S))
    for n in range(r.N):
        for j, c in enumerate(cls):
            v = valid[n, c].reshape(spatial)
            for i, (idx, w) in enumerate(_windows(spatial, window_size, sigma, v, centres)):
                if not v[centres[i]]:
                    continue
                mp, mg, vp, vg, _ = _moments(p[n, c], g[n, c], idx, w)
                zg = (g[n, c, i] - mg + C4) / (np.sqrt(vg) + C4)
                zp = (p[n, c, i] - mp + C4) / (np.sqrt(vp) + C4)
                e[n, j, i] = abs(zg - zp)
    ok = valid[:, cls]
    e_max = e[ok].max() if ok.any() else 0.0
    f = ok & (e > beta * e_max)
    return r, cls, e, f, ce[:, cls]


def correlation_weights(logits, target, mode, *, beta=0.1, window_size=3, sigma=1.5, ignore_index=None,
                        from_logits=True):
    """The weights e f ``(N, C, S)`` and their normaliser sum(f) of :func:`correlation_ssim` (all classes)."""
    _, _, e, f, _ = _correlation(logits, target, mode, beta, window_size, sigma, None, ignore_index, from_logits)
    return np.where(f, e, 0.0), f.sum()


def correlation_ssim(logits, target, mode, *, beta=0.1, window_size=3, sigma=1.5, classes=None, weight=None,
                     ignore_index=None, from_logits=True, reduction="mean", pixel_weight=None):
    """Zhao et al. 2019: sum(e f CE) / sum(f) over valid elements and kept classes. With ``pixel_weight`` v: each
    element's term times v, "mean" over sum(v f); e, f and e_max unweighted."""
    oracle._check_reduction(reduction)
    r, cls, e, f, ce = _correlation(logits, target, mode, beta, window_size, sigma, classes, ignore_index,
                                    from_logits)
    spatial = tuple(r.spatial)
    w = np.ones(r.C) if weight is None else np.asarray(weight, dtype=np.float64)
    wk = np.broadcast_to(w[cls][None, :, None], f.shape) * element_weights(r, pixel_weight)[:, cls]
    loss = np.where(f, e * ce * wk, 0.0)
    if reduction == "none":
        return loss.reshape((r.N, len(cls)) + spatial)
    if reduction == "sum":
        return oracle._scalar(loss.sum())
    m = np.where(f, wk, 0.0).sum()
    return oracle._scalar(loss.sum() / m if m else 0.0)


def options(name, mode, c):
    """The option sets the oracle sweep (tests/test_oracle.py) runs for each structure loss."""
    keep = {"classes": [c - 1, 0] if c > 1 else [0]}
    w = [0.5 + 0.5 * i for i in range(c)]
    if name == "ssim":
        return [{}, {"window_size": 3}, {"window_size": 3, "padding": "valid"}, {"window_size": 5, "sigma": 0.8},
                {"padding": "valid"}, dict(keep, window_size=5), {"from_logits": False, "window_size": 3},
                {"window_size": 1}, {"weight": w, "window_size": 3}, dict(keep, weight=w, padding="valid",
                                                                          window_size=3)]
    return [{}, {"beta": 0.05}, {"beta": 0.5, "window_size": 5}, {"window_size": 7, "sigma": 1.0}, keep,
            {"from_logits": False}, {"from_logits": False, "beta": 0.3, "window_size": 5}, {"weight": w},
            dict(keep, weight=w, beta=0.2)]


def _selfcheck():
    # Hand-derived: 1-D, window 3, p = g: SSIM 1, loss 0; a flat p = 1/2 against g = [0, 1, 0] at the centre with
    # window weights (a, 1, a)/(1 + 2a), a = exp(-1/(2 * 1.5^2)): mu_g = 1/(1+2a), var_p = 0, cov = 0.
    g = np.array([[[0.0, 1.0, 0.0]]])
    x = np.where(g > 0, 40.0, -40.0)
    assert np.allclose(ssim(x, g, "binary", window_size=3, reduction="none"), 0.0, atol=1e-12)
    a = np.exp(-1 / 4.5)
    mg = 1 / (1 + 2 * a)
    vg = mg - mg ** 2
    c1, c2 = K1 ** 2, K2 ** 2
    lum = (2 * 0.5 * mg + c1) / (0.25 + mg ** 2 + c1)
    expected = 1 - lum * c2 / (vg + c2)
    got = ssim(np.zeros((1, 1, 3)), g, "binary", window_size=3, reduction="none")[0, 0, 1]
    assert np.isclose(got, expected, rtol=1e-13), (got, expected)
