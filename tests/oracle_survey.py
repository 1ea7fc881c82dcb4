"""Independent float64 NumPy oracle for the survey losses (docs/survey_losses.md).

Written from the definitions (and the papers / reference code they cite), without importing or reading the
seglosses package. It reuses the input handling and the core region statistics of the core oracle
(tests/oracle.py), which is itself independent of the package. Plain NumPy, float64, no torch.

Every public function takes numpy arrays and returns a numpy float64 array (0-d for reduction "mean"/"sum").

Choices where the definitions leave room (see also the notes at each function):
- from_logits=False: pixel losses (the ones taking a log) clamp P to [1e-7, 1 - 1e-7] and, in multiclass,
  renormalise over the class axis as the core focal does (_MC_RENORMALISE). Region parts
  (Dice, sensitivity-specificity, Tversky) and the boundary / Hausdorff losses use P unclamped, like the core.
- multiclass log(1 - p_c) is computed exactly as logsumexp_{k != c} log p_k (finite for finite logits), not as
  log(-expm1(log p_c)), which is -inf once log p_c rounds to 0 (logit gaps of ~40 and more).
- "auto" beta and the exp-log label frequencies are taken from the raw target (before label smoothing), per class
  channel over its valid elements.
"""

import numpy as np
import oracle
from oracle import (
    _check_reduction,
    _pixel_weight,
    _class_list,
    _class_vector,
    _prepare,
    _ratio_loss,
    _region_stats,
    _scalar,
)
from scipy.ndimage import distance_transform_edt

__all__ = [
    "balanced_cross_entropy",
    "boundary",
    "combo",
    "cross_entropy",
    "exp_log",
    "hausdorff_dt",
    "log_cosh_dice",
    "sensitivity_specificity",
    "unified_focal",
    "weighted_cross_entropy",
]

_EPS = 1e-7  # probability clamp before a log (from_logits=False)
_MC_RENORMALISE = True  # multiclass from_logits=False: renormalise the clamped probabilities over C?
_PRED_MASK_EXCLUDES_IGNORED = True  # Hausdorff: ignored pixels are outside the prediction mask p_c > 0.5 too


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _targets(r):
    """One-vs-rest targets g (N, C, S) float64 and validity (N, C, S) bool (multiclass: the pixel's, on every c)."""
    if r.kind == "index":
        g = oracle._one_hot(r.t, r.C)
        valid = np.broadcast_to(r.valid[:, None, :], g.shape).copy()
        return g, valid
    return r.g, r.valid


def _prep(logits, target, mode, ignore_index):
    r = _prepare(logits, target, mode, ignore_index)
    r.mode = mode
    return r


def _log_others(logp):
    """log(1 - p_c) = logsumexp over k != c of log p_k, along axis 1 (exact, finite for finite logits)."""
    out = np.empty_like(logp)
    c = logp.shape[1]
    for ci in range(c):
        others = logp[:, [k for k in range(c) if k != ci]]
        m = np.max(others, axis=1)
        out[:, ci] = m + np.log(np.sum(np.exp(others - m[:, None]), axis=1))
    return out


def _log_probs(r, from_logits):
    """log p and log(1 - p), each (N, C, S), for the pixel losses (those taking a log)."""
    if from_logits:
        if r.mode == "multiclass":
            logp = oracle._log_softmax(r.x, axis=1)
            return logp, _log_others(logp)
        return oracle._log_sigmoid(r.x), oracle._log_sigmoid(-r.x)
    p = np.clip(r.x, _EPS, 1.0 - _EPS)
    if r.mode == "multiclass" and _MC_RENORMALISE:
        tot = p.sum(axis=1, keepdims=True)
        return np.log(p) - np.log(tot), np.log(oracle._others_sum(p)) - np.log(tot)
    return np.log(p), np.log1p(-p)


def _wmul(w, v):
    """w * v with 0 * inf = 0 (a zero weight removes the term, never NaN)."""
    w, v = np.broadcast_arrays(np.asarray(w, dtype=np.float64), np.asarray(v, dtype=np.float64))
    out = np.zeros(w.shape)
    nz = w != 0
    out[nz] = w[nz] * v[nz]
    return out


def _pow0(a, e):
    """a ** e for a >= 0, with 0 ** e = 0 (also for e <= 0): a loss that is exactly 0 stays 0."""
    a = np.asarray(a, dtype=np.float64)
    out = np.zeros(a.shape)
    pos = a > 0
    out[pos] = a[pos] ** float(e)
    return out


def _div0(a, b):
    """a / b with 0 / 0 = 0."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    out = np.zeros(a.shape)
    nz = b != 0
    out[nz] = a[nz] / b[nz]
    return out


def _g_minus_p(g, p, q):
    """g - p, taken as (1 - p) - (1 - g) where g > 0.5 so that nothing cancels near p = 1 (q = 1 - p)."""
    return np.where(g > 0.5, q - (1.0 - g), g - p)


def _reduce_pixel_map(r, loss, reduction, pw=None):
    """loss: (N, C, S) terms, 0 at invalid entries. binary/multilabel: map of the logits' shape, mean over valid
    elements; multiclass: summed over classes per pixel, map (N, *), mean over valid pixels. With pixel weights
    ``pw`` (N, C, S) (:func:`oracle._pixel_weight`, 0 at ignored elements; one per pixel for multiclass) each entry
    of the map is multiplied by its weight and the mean divides by the weights' sum."""
    if r.mode == "multiclass":
        pix = loss.sum(axis=1)
        count = int(r.valid.sum()) if r.kind == "index" else r.N * r.S
        shape = (r.N,) + tuple(r.spatial)
        if pw is not None:
            pix, count = pix * pw[:, 0, :], float(pw[:, 0, :].sum())
    else:
        pix = loss
        count = int(r.valid.sum())
        shape = r.out_shape
        if pw is not None:
            pix, count = pix * pw, float(pw.sum())
    if reduction == "none":
        return pix.reshape(shape)
    total = pix.sum()
    if reduction == "sum":
        return _scalar(total)
    return _scalar(total / count if count > 0 else 0.0)


def _reduce_classes(l, r, weight, classes, per_image, reduction):
    """Per-class losses l (R, C) reduced like the core's Dice (weight, classes, per_image, reduction)."""
    cls = _class_list(classes, r.C)
    w = np.ones(r.C) if weight is None else _class_vector(weight, r.C, "weight")
    wk = w[cls]
    out = l[:, cls] * wk[None, :]
    if reduction == "none":
        return out if per_image else out[0]
    if reduction == "sum":
        return _scalar(out.sum())
    return _scalar(out.sum() / (out.shape[0] * wk.sum()))


def _check_compound_reduction(reduction):
    if reduction not in ("mean", "sum"):
        raise ValueError(f"compound losses take reduction 'mean' or 'sum', got {reduction!r}")


def _mean_or_sum(values, reduction):
    values = np.asarray(values, dtype=np.float64)
    if reduction == "sum":
        return values.sum()
    return values.sum() / values.size if values.size else 0.0


def _dice_losses(r, smooth, per_image, from_logits, pw=None):
    """1 - Dice_c of the core (L1 statistics), (R, C); weighted statistics with element weights ``pw``."""
    tp, fp, fn, _ = _region_stats(r, r.mode, from_logits, per_image, pw)
    return _ratio_loss(fp + fn, 2 * tp + fp + fn + float(smooth), False)


# --------------------------------------------------------------------------
# cross-entropy family (Jadon 2020)
# --------------------------------------------------------------------------


def cross_entropy(logits, target, mode, *, weight=None, ignore_index=None, label_smoothing=0.0, from_logits=True,
                  reduction="mean", pixel_weight=None):
    """The core focal loss with gamma = 0 (sigmoid BCE / softmax CE)."""
    return oracle.focal(logits, target, mode, alpha=None, gamma=0.0, weight=weight, ignore_index=ignore_index,
                        label_smoothing=label_smoothing, from_logits=from_logits, reduction=reduction,
                        pixel_weight=pixel_weight)


def _bce_family(logits, target, mode, beta, balanced, ignore_index, label_smoothing, from_logits, reduction,
                pixel_weight=None):
    _check_reduction(reduction)
    r = _prep(logits, target, mode, ignore_index)
    g, valid = _targets(r)
    pw = _pixel_weight(r, pixel_weight)  # 0 at ignored elements
    c = r.C
    if isinstance(beta, str):
        if beta != "auto":
            raise ValueError(f"beta must be a number, a sequence or 'auto', got {beta!r}")
        # HED: beta_c = fraction of valid negatives of class c over the batch (raw target, before smoothing);
        # with pixel weights the weighted fraction (each pixel counted w times).
        beta_c = np.empty(c)
        for ci in range(c):
            m = valid[:, ci, :]
            wm = pw[:, ci, :][m]
            count = float(wm.sum())
            beta_c[ci] = np.sum(wm * (1.0 - g[:, ci, :][m])) / count if count > 0 else 0.5
    elif np.ndim(beta) == 0:
        beta_c = np.full(c, float(beta))
    else:
        beta_c = _class_vector(beta, c, "beta")
    b_c = 1.0 - beta_c if balanced else np.ones(c)

    e = float(label_smoothing)
    y = g * (1.0 - e) + (e / c if mode == "multiclass" else e / 2.0)
    logp, log1mp = _log_probs(r, from_logits)
    pos = _wmul(beta_c[None, :, None] * y, logp)
    neg = _wmul(b_c[None, :, None] * (1.0 - y), log1mp)
    loss = np.where(valid, -(pos + neg), 0.0)
    return _reduce_pixel_map(r, loss, reduction, None if pixel_weight is None else pw)


def weighted_cross_entropy(logits, target, mode, *, beta=1.0, ignore_index=None, label_smoothing=0.0,
                           from_logits=True, reduction="mean", pixel_weight=None):
    """l = -(beta g log p + (1 - g) log(1 - p)); multiclass: one-vs-rest, summed over classes per pixel."""
    return _bce_family(logits, target, mode, beta, False, ignore_index, label_smoothing, from_logits, reduction,
                       pixel_weight)


def balanced_cross_entropy(logits, target, mode, *, beta=0.5, ignore_index=None, label_smoothing=0.0,
                           from_logits=True, reduction="mean", pixel_weight=None):
    """l = -(beta g log p + (1 - beta)(1 - g) log(1 - p)); beta scalar, per class (C,) or "auto" (HED)."""
    return _bce_family(logits, target, mode, beta, True, ignore_index, label_smoothing, from_logits, reduction,
                       pixel_weight)


# --------------------------------------------------------------------------
# region losses
# --------------------------------------------------------------------------


def sensitivity_specificity(logits, target, mode, *, r=0.05, smooth=1e-5, per_image=False, weight=None,
                            classes=None, ignore_index=None, from_logits=True, reduction="mean", pixel_weight=None):
    """Brosch et al. 2015: L_c = r sum (g-p)^2 g / (sum g + s) + (1-r) sum (g-p)^2 (1-g) / (sum (1-g) + s); with
    pixel weights w every sum weighted (sum w (g-p)^2 g / (sum w g + s), ...)."""
    _check_reduction(reduction)
    rp = _prep(logits, target, mode, ignore_index)
    g, valid = _targets(rp)
    pw = _pixel_weight(rp, pixel_weight)
    p = oracle._region_probs(rp, mode, from_logits)  # unclamped with from_logits=False, like the core
    q = oracle._region_complement(rp, mode, from_logits)
    sq = np.where(valid, pw * _g_minus_p(g, p, q) ** 2, 0.0)
    gv = np.where(valid, g, 0.0)
    nv = np.where(valid, 1.0 - g, 0.0)
    sens_den = np.sum(pw * gv, axis=2)
    spec_den = np.sum(pw * nv, axis=2)
    sens_num = np.sum(sq * gv, axis=2)  # (N, C)
    spec_num = np.sum(sq * nv, axis=2)
    if not per_image:
        sens_num, sens_den, spec_num, spec_den = (a.sum(axis=0, keepdims=True)
                                                  for a in (sens_num, sens_den, spec_num, spec_den))
    s = float(smooth)
    sens = _div0(sens_num, sens_den + s)
    spec = _div0(spec_num, spec_den + s)
    l = float(r) * sens + (1.0 - float(r)) * spec
    return _reduce_classes(l, rp, weight, classes, per_image, reduction)


def log_cosh_dice(logits, target, mode, *, smooth=1e-5, per_image=False, weight=None, classes=None,
                  ignore_index=None, from_logits=True, reduction="mean", pixel_weight=None):
    """L_c = log(cosh(1 - Dice_c)) per class, reduced as the core's Dice."""
    _check_reduction(reduction)
    r = _prep(logits, target, mode, ignore_index)
    l = _dice_losses(r, smooth, per_image, from_logits, _pixel_weight(r, pixel_weight))
    # log(cosh(l)) = log1p(cosh(l) - 1) = log1p(2 sinh(l / 2)^2): keeps its relative accuracy for tiny l.
    lc = np.log1p(2.0 * np.sinh(l / 2.0) ** 2)
    return _reduce_classes(lc, r, weight, classes, per_image, reduction)


# --------------------------------------------------------------------------
# compound losses
# --------------------------------------------------------------------------


def _freq_weights(f):
    """w_k = (sum_j f_j / f_k) ^ 0.5, 0 where f_k = 0."""
    f = np.asarray(f, dtype=np.float64)
    return np.sqrt(_div0(np.full(f.shape, f.sum()), f))


def exp_log(logits, target, mode, *, w_dice=0.8, w_cross=0.2, gamma_dice=0.3, gamma_cross=0.3, smooth=1.0,
            class_frequency=None, per_image=False, ignore_index=None, from_logits=True, reduction="mean",
            pixel_weight=None):
    """Wong et al. 2018: w_dice mean_c (-ln Dice_c)^gamma_dice + w_cross mean_x w_l (-ln p_l(x))^gamma_cross; pixel
    weights weigh the Dice statistics, the cross terms, their mean and the batch's label counts."""
    _check_compound_reduction(reduction)
    r = _prep(logits, target, mode, ignore_index)
    pw = _pixel_weight(r, pixel_weight)

    # Dice part: Dice_c = 1 - l_c, -ln Dice_c floored like the core's log_loss: -ln max(Dice_c, 1e-7).
    l = _dice_losses(r, smooth, per_image, from_logits, pw)
    neglog_dice = -np.log(np.maximum(1.0 - l, 1e-7))
    l_dice = _mean_or_sum(_pow0(neglog_dice, gamma_dice), reduction)

    # Cross part.
    g, valid = _targets(r)
    logp, log1mp = _log_probs(r, from_logits)
    gc = float(gamma_cross)
    if mode == "multiclass":
        if class_frequency is None:
            f = np.array([np.sum((pw * g)[:, ci, :][valid[:, ci, :]]) for ci in range(r.C)])  # label counts
        else:
            f = _class_vector(class_frequency, r.C, "class_frequency")
        w = _freq_weights(f)
        terms = _wmul(g * w[None, :, None], _pow0(-logp, gc))
    else:
        w1 = np.empty(r.C)
        w0 = np.empty(r.C)
        for ci in range(r.C):
            if class_frequency is None:
                m = valid[:, ci, :]
                f1 = np.sum((pw * g)[:, ci, :][m])
                f0 = np.sum((pw * (1.0 - g))[:, ci, :][m])
            else:
                f1 = float(_class_vector(class_frequency, r.C, "class_frequency")[ci])
                f0 = 1.0 - f1
            w0[ci], w1[ci] = _freq_weights([f0, f1])
        terms = (_wmul(g * w1[None, :, None], _pow0(-logp, gc))
                 + _wmul((1.0 - g) * w0[None, :, None], _pow0(-log1mp, gc)))
    terms = np.where(valid, terms, 0.0)
    l_cross = _reduce_pixel_map(r, terms, reduction, None if pixel_weight is None else pw)
    return _scalar(float(w_dice) * l_dice + float(w_cross) * float(l_cross))


def combo(logits, target, mode, *, alpha=0.5, beta=0.5, smooth=1.0, ignore_index=None, from_logits=True,
          reduction="mean", pixel_weight=None):
    """Taghanaki et al. 2019: alpha * BalancedCE(beta) + (1 - alpha) * (1 - Dice)."""
    _check_compound_reduction(reduction)
    ce = balanced_cross_entropy(logits, target, mode, beta=beta, ignore_index=ignore_index, from_logits=from_logits,
                                reduction=reduction, pixel_weight=pixel_weight)
    d = oracle.dice(logits, target, mode, smooth=smooth, ignore_index=ignore_index, from_logits=from_logits,
                    reduction=reduction, pixel_weight=pixel_weight)
    return _scalar(float(alpha) * float(ce) + (1.0 - float(alpha)) * float(d))


def unified_focal(logits, target, mode, *, lam=0.5, delta=0.6, gamma=0.5, asymmetric=True, background=0,
                  smooth=1e-7, per_image=False, ignore_index=None, from_logits=True, reduction="mean",
                  pixel_weight=None):
    """Yeung et al. 2022: lam * focal-Tversky part + (1 - lam) * focal part (asymmetric by default); pixel weights
    weigh the focal terms (and their mean) and every Tversky statistic, the background's too."""
    _check_compound_reduction(reduction)
    r = _prep(logits, target, mode, ignore_index)
    g, valid = _targets(r)
    pw = _pixel_weight(r, pixel_weight)
    delta, gamma, s = float(delta), float(gamma), float(smooth)
    gamma_fg = 0.0 if asymmetric else gamma

    # Focal part (the modulating factor (1 - p)^0 is 1, also at p = 1).
    logp, log1mp = _log_probs(r, from_logits)
    p, q = np.exp(logp), np.exp(log1mp)  # p and 1 - p (each exact in its own right)
    if mode == "multiclass":
        if not 0 <= int(background) < r.C:
            raise ValueError(f"background {background} out of range for C={r.C}")
        is_bg = (np.arange(r.C) == int(background))[None, :, None]
        a = np.where(is_bg, 1.0 - delta, delta)
        gam = np.where(is_bg, gamma, gamma_fg)
        terms = _wmul(g * a * q ** gam, -logp)
    else:
        fg = _wmul(g * delta * q ** gamma_fg, -logp)
        bg = _wmul((1.0 - g) * (1.0 - delta) * p ** gamma, -log1mp)
        terms = fg + bg
    terms = np.where(valid, terms, 0.0)
    l_focal = float(_reduce_pixel_map(r, terms, reduction, None if pixel_weight is None else pw))

    # Focal-Tversky part: 1 - TI = (delta fn + (1 - delta) fp) / (tp + delta fn + (1 - delta) fp + s).
    tp, fp, fn, _ = _region_stats(r, mode, from_logits, per_image, pw)  # (R, C), L1 form, unclamped p
    err = delta * fn + (1.0 - delta) * fp
    one_minus_ti = _ratio_loss(err, tp + err + s, False)
    if mode == "multiclass":
        bg_col = np.arange(r.C) == int(background)
        ft = np.where(bg_col[None, :] & asymmetric, one_minus_ti, _pow0(one_minus_ti, 1.0 - gamma))
    else:
        # Background of each channel: probability 1 - p, target 1 - g; fp_bg = fn_fg, fn_bg = fp_fg,
        # tp_bg = sum min(1 - p, 1 - g) (= sum (1 - p)(1 - g) on hard labels).
        qr = oracle._region_complement(r, mode, from_logits)
        tp_bg = np.zeros((r.N, r.C))
        for ni in range(r.N):
            for ci in range(r.C):
                m = valid[ni, ci]
                tp_bg[ni, ci] = np.sum(pw[ni, ci][m] * np.minimum(qr[ni, ci][m], 1.0 - g[ni, ci][m]))
        if not per_image:
            tp_bg = tp_bg.sum(axis=0, keepdims=True)
        err_bg = delta * fp + (1.0 - delta) * fn
        one_minus_ti_bg = _ratio_loss(err_bg, tp_bg + err_bg + s, False)
        ft_bg = one_minus_ti_bg if asymmetric else _pow0(one_minus_ti_bg, 1.0 - gamma)
        ft = np.concatenate([ft_bg, _pow0(one_minus_ti, 1.0 - gamma)], axis=1)  # (R, 2C)
    l_ft = _mean_or_sum(ft, reduction)
    return _scalar(float(lam) * l_ft + (1.0 - float(lam)) * l_focal)


# --------------------------------------------------------------------------
# distance-map losses
# --------------------------------------------------------------------------


def _edt(mask, spacing):
    if spacing is None:
        return distance_transform_edt(mask)
    return distance_transform_edt(mask, sampling=spacing)


def _two_sided(mask, valid, spacing):
    """Distances to the nearest valid pixel inside the mask and to the nearest valid pixel outside it (ignored
    pixels are never a nearest point); None when the valid pixels are all inside or all outside (no boundary)."""
    inside, outside = mask & valid, ~mask & valid
    if not inside.any() or not outside.any():
        return None
    return _edt(~inside, spacing), _edt(~outside, spacing), inside, outside


def _signed_distance(mask, valid, spacing):
    """Kervadec: d(x, inside) outside the mask, -(d(x, outside) - 1) inside; 0 without a boundary."""
    parts = _two_sided(mask, valid, spacing)
    if parts is None:
        return np.zeros(mask.shape)
    d_out, d_in, inside, outside = parts
    return d_out * outside - (d_in - 1.0) * inside


def _boundary_distance(mask, valid, spacing):
    """Unsigned distance to the mask's boundary (MONAI's edt(pos) + edt(neg)); 0 without a boundary."""
    parts = _two_sided(mask, valid, spacing)
    if parts is None:
        return np.zeros(mask.shape)
    d_out, d_in, inside, outside = parts
    return d_out * outside + d_in * inside


def _per_slice(masks, valid, r, fn, spacing):
    """Apply fn to each (image, class) mask, in the spatial shape; masks (N, C, S) -> maps (N, C, S)."""
    out = np.zeros(masks.shape)
    spatial = tuple(r.spatial)
    for ni in range(r.N):
        for ci in range(r.C):
            m, v = masks[ni, ci].reshape(spatial), valid[ni, ci].reshape(spatial)
            out[ni, ci] = np.asarray(fn(m, v, spacing), dtype=np.float64).reshape(-1)
    return out


def _reduce_pairs(r, loss, valid, cls, reduction, pixel_weight=None):
    """loss, valid (N, C, S): keep classes cls; "none": (N, K, *); "mean": over valid (pixel, kept class) pairs.
    With ``pixel_weight``, each pair's term times its weight, and "mean" is the weighted mean (the sum over the sum of
    the weights of the valid pairs)."""
    from oracle_pixel_weight import element_weights

    w = element_weights(r, pixel_weight)  # (N, C, S), 0 at ignored elements
    lk = np.where(valid[:, cls], w[:, cls] * loss[:, cls], 0.0)
    if reduction == "none":
        return lk.reshape((r.N, len(cls)) + tuple(r.spatial))
    total = lk.sum()
    if reduction == "sum":
        return _scalar(total)
    count = w[:, cls][valid[:, cls]].sum()
    return _scalar(total / count if count > 0 else 0.0)


def boundary(logits, target, mode, *, classes=None, spacing=None, dist_maps=None, ignore_index=None,
             from_logits=True, reduction="mean", pixel_weight=None):
    """Kervadec et al. 2019: mean over valid pixels and kept classes of phi_c(x) p_c(x) (weighted by
    ``pixel_weight``; phi does not depend on it)."""
    _check_reduction(reduction)
    r = _prep(logits, target, mode, ignore_index)
    g, valid = _targets(r)
    cls = _class_list(classes, r.C)
    p = oracle._region_probs(r, mode, from_logits)
    if dist_maps is None:
        masks = (g > 0.5) & valid  # ignored pixels belong to no class and are never a nearest point
        phi = _per_slice(masks, valid, r, _signed_distance, spacing)
    else:
        phi = np.asarray(dist_maps, dtype=np.float64).reshape(r.N, r.C, r.S)
    return _reduce_pairs(r, phi * p, valid, cls, reduction, pixel_weight)


def hausdorff_dt(logits, target, mode, *, alpha=2.0, classes=None, spacing=None, ignore_index=None,
                 from_logits=True, reduction="mean", pixel_weight=None):
    """Karimi & Salcudean 2019: mean over valid pixels and kept classes of (p - g)^2 (d_G^alpha + d_P^alpha)
    (weighted by ``pixel_weight``; d_G, d_P do not depend on it)."""
    _check_reduction(reduction)
    r = _prep(logits, target, mode, ignore_index)
    g, valid = _targets(r)
    cls = _class_list(classes, r.C)
    p = oracle._region_probs(r, mode, from_logits)
    q = oracle._region_complement(r, mode, from_logits)
    mask_g = (g > 0.5) & valid
    mask_p = p > 0.5
    if _PRED_MASK_EXCLUDES_IGNORED:
        mask_p = mask_p & valid
    d_g = _per_slice(mask_g, valid, r, _boundary_distance, spacing)
    d_p = _per_slice(mask_p, valid, r, _boundary_distance, spacing)
    a = float(alpha)

    def powered(d):  # d^alpha, 0 where d = 0 (no boundary, ignored pixels)
        return np.where(d > 0, np.power(d, a, where=d > 0, out=np.zeros_like(d)), 0.0)

    loss = _g_minus_p(g, p, q) ** 2 * (powered(d_g) + powered(d_p))
    return _reduce_pairs(r, loss, valid, cls, reduction, pixel_weight)


# --------------------------------------------------------------------------
# self-check with hand-derived numbers
# --------------------------------------------------------------------------


def _selfcheck():
    ln = np.log
    # Two binary pixels, logits x = [ln 3, 0] -> p = [3/4, 1/2], target g = [1, 0].
    x = np.array([[ln(3.0), 0.0]])
    g = np.array([[1.0, 0.0]])

    # 1. Balanced CE, beta="auto": beta = (valid negatives) / |V| = 1/2.
    #    l_1 = -(1/2) ln(3/4), l_2 = -(1 - 1/2) ln(1 - 1/2); mean = (ln(4/3) + ln 2) / 4 = ln(8/3) / 4.
    got = balanced_cross_entropy(x, g, "binary", beta="auto")
    assert np.isclose(got, ln(8.0 / 3.0) / 4.0, rtol=1e-14, atol=0), got
    #    Weighted CE, beta = 2 on one pixel x = 0, g = 1: 2 ln 2.
    got = weighted_cross_entropy(np.array([[0.0]]), np.array([[1.0]]), "binary", beta=2.0)
    assert np.isclose(got, 2.0 * ln(2.0), rtol=1e-14, atol=0), got

    # 2. Sensitivity-specificity, s = 0, r = 0.05: sens = (1 - 3/4)^2 / 1 = 1/16, spec = (1/2)^2 / 1 = 1/4;
    #    L = 0.05 / 16 + 0.95 / 4 = 0.240625.
    got = sensitivity_specificity(x, g, "binary", smooth=0.0)
    assert np.isclose(got, 0.240625, rtol=1e-14, atol=0), got

    # 3. Unified focal (asymmetric, delta = 0.6, gamma = 0.5, lam = 0.5), s = 0.
    #    Focal: pixel 1 (fg): 0.6 (1/4)^0 (-ln 3/4) = 0.6 ln(4/3); pixel 2 (bg): 0.4 (1/2)^0.5 (-ln 1/2);
    #      mean over the 2 pixels.
    #    FT: fg tp = 3/4, fn = 1/4, fp = 1/2: TI = 0.75 / (0.75 + 0.15 + 0.2) = 15/22, loss (7/22)^0.5;
    #        bg tp = 1/2, fn_bg = fp_fg = 1/2, fp_bg = fn_fg = 1/4: TI = 0.5 / (0.5 + 0.3 + 0.1) = 5/9, loss 4/9.
    l_f = (0.6 * ln(4.0 / 3.0) + 0.4 * np.sqrt(0.5) * ln(2.0)) / 2.0
    l_ft = (np.sqrt(7.0 / 22.0) + 4.0 / 9.0) / 2.0
    got = unified_focal(x, g, "binary", smooth=0.0)
    assert np.isclose(got, 0.5 * l_ft + 0.5 * l_f, rtol=1e-14, atol=0), got
    #    Same problem as a 2-class softmax with class 1 foreground: logits [0, ln 3] and [0, 0] give the same p.
    xm = np.array([[[0.0, 0.0], [ln(3.0), 0.0]]])  # (N=1, C=2, S=2)
    tm = np.array([[1, 0]])
    got = unified_focal(xm, tm, "multiclass", smooth=0.0)
    assert np.isclose(got, 0.5 * l_ft + 0.5 * l_f, rtol=1e-14, atol=0), got

    # 4. Boundary and Hausdorff on a 1-D image, target [0, 1, 1, 0, 0], logits 0 (p = 1/2 everywhere).
    #    Signed map: outside = distance to the mask [1, ., ., 1, 2], inside -(1 - 1) = 0: phi = [1, 0, 0, 1, 2];
    #    boundary = mean(phi / 2) = 4 / 2 / 5 = 0.4.
    #    Hausdorff: d_G = edt(pos) + edt(neg) = [1, 1, 1, 1, 2]; prediction p > 1/2 empty -> d_P = 0;
    #    (p - g)^2 = 1/4 everywhere; mean(1/4 * [1, 1, 1, 1, 4]) = 2 / 5 = 0.4.
    xb = np.zeros((1, 1, 5))
    gb = np.array([[[0.0, 1.0, 1.0, 0.0, 0.0]]])
    got = boundary(xb, gb, "binary", reduction="none")
    assert np.allclose(got, 0.5 * np.array([[[1.0, 0.0, 0.0, 1.0, 2.0]]]), rtol=0, atol=1e-15), got
    assert np.isclose(boundary(xb, gb, "binary"), 0.4, rtol=1e-14, atol=0)
    assert np.isclose(hausdorff_dt(xb, gb, "binary"), 0.4, rtol=1e-14, atol=0)
    #    Ignoring pixel 4 (target 255): phi = [1, 0, 0, 1, .] over 4 valid pixels -> 2 / 2 / 4 = 0.25.
    gi = np.array([[[0.0, 1.0, 1.0, 0.0, 255.0]]])
    assert np.isclose(boundary(xb, gi, "binary", ignore_index=255), 0.25, rtol=1e-14, atol=0)

    # Saturated logits stay finite and 0 * (-inf) never appears: softmax [1e4, -1e4], target class 1.
    xs = np.array([[[1e4], [-1e4]]])
    ts = np.array([[1]])
    #    log p_1 = log(1 - p_0) = -2e4 (up to ln(1 + e^-2e4)); weighted (beta 1) counts it twice, balanced 1/2 + 1/2.
    for fn, want in ((weighted_cross_entropy, 4e4), (balanced_cross_entropy, 2e4), (cross_entropy, 2e4)):
        v = fn(xs, ts, "multiclass")
        assert np.isfinite(v) and np.isclose(v, want, rtol=1e-12), (fn.__name__, v)
    print("oracle_survey self-check passed")


if __name__ == "__main__":
    _selfcheck()
