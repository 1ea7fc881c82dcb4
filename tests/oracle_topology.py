"""Float64 NumPy oracles of the topology losses, written from the papers (not from seglosses' code).

- clDice: Shit et al., CVPR 2021 (arXiv 2003.07311), Algorithm 1 (soft-skeleton) and Eq. (1)-(3): T_prec, T_sens,
  their harmonic mean, and the total loss (1 - alpha) L_Dice + alpha L_clDice; soft erosion = min-pool over the
  cross, soft dilation = max-pool over the 3^d window, as the authors' code (pools ignore the image's outside).
- Skeleton Recall: Kirchhoff et al., ECCV 2024 (arXiv 2404.03010), Eq. (1): 1 - (sum S p + s) / (sum S + s), S the
  skeleton dilated twice by the cross (the authors' SkeletonTransform) inside the class mask; the skeleton here is
  Lantuejoul's morphological skeleton  S = U_k E^k(X) minus open(E^k(X)), eroded until nothing is left.

Ignored pixels (the documented choice of seglosses): p = g = 0 there, out of every sum; outside the image for the
soft skeletons (neutral in the pools), background for the hard skeleton (as the image's outside is).
"""

import numpy as np

import oracle as O
from oracle_pixel_weight import element_weights


def _shifted(a, axis, step, fill):
    """``a`` moved by ``step`` (+-1) along ``axis``, ``fill`` entering at the edge."""
    out = np.full_like(a, fill)
    src = [slice(None)] * a.ndim
    dst = [slice(None)] * a.ndim
    n = a.shape[axis]
    if step > 0:
        src[axis], dst[axis] = slice(0, n - 1), slice(1, n)
    else:
        src[axis], dst[axis] = slice(1, n), slice(0, n - 1)
    out[tuple(dst)] = a[tuple(src)]
    return out


def _erode(x, axes, fill=np.inf):
    """Min over the cross: min over each axis's 3-window, then over axes (``fill``: the outside's value)."""
    per_axis = [np.minimum(x, np.minimum(_shifted(x, a, 1, fill), _shifted(x, a, -1, fill))) for a in axes]
    return np.minimum.reduce(per_axis)


def _dilate_square(x, axes, fill=-np.inf):
    """Max over the 3^d window (separable)."""
    for a in axes:
        x = np.maximum(x, np.maximum(_shifted(x, a, 1, fill), _shifted(x, a, -1, fill)))
    return x


def _dilate_cross(x, axes):
    per_axis = [np.maximum(x, np.maximum(_shifted(x, a, 1, 0.0), _shifted(x, a, -1, 0.0))) for a in axes]
    return np.maximum.reduce(per_axis)


def soft_skel(img, iterations, axes, valid):
    """Algorithm 1 of the paper: I' = maxpool(minpool(I)); S = ReLU(I - I'); k times: I = minpool(I),
    I' = maxpool(minpool(I)), S = S + (1 - S) ReLU(I - I'). Pixels not ``valid`` are outside the image: +inf in
    the min-pools, -inf in the max-pools, 0 in S."""
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    minpool = lambda v: _erode(np.where(valid, v, np.inf), axes)  # noqa: E731
    maxpool = lambda v: _dilate_square(np.where(valid, v, -np.inf), axes)  # noqa: E731
    with np.errstate(invalid="ignore"):
        skel = np.where(valid, relu(img - maxpool(minpool(img))), 0.0)
        for _ in range(iterations):
            img = minpool(img)
            skel = skel + (1 - skel) * np.where(valid, relu(img - maxpool(minpool(img))), 0.0)
    return skel


def hard_skel(mask, axes):
    """Lantuejoul's skeleton U_k (E^k X minus open(E^k X)), outside = background, until E^k X is empty."""
    x = mask.astype(np.float64)
    skel = np.zeros_like(x, dtype=bool)
    while x.any():
        e = _erode(x, axes, fill=0.0)
        skel |= (x > 0) & ~(_dilate_square(e, axes, fill=0.0) > 0)
        x = e
    return skel


def recall_maps(mask, axes):
    """The tube S: the skeleton dilated twice by the cross, inside the mask."""
    s = hard_skel(mask, axes).astype(np.float64)
    s = _dilate_cross(_dilate_cross(s, axes), axes)
    return (s > 0) & mask


def _inputs(logits, target, mode, ignore_index, from_logits):
    """p, 1 - p, g (N, C, *spatial), 0 at ignored elements, the valid mask and the spatial axes."""
    r = O._prepare(logits, target, mode, ignore_index)
    p = O._region_probs(r, mode, from_logits)
    q = O._region_complement(r, mode, from_logits)
    if r.kind == "index":
        valid = np.broadcast_to(r.valid[:, None, :], p.shape)
        g = O._one_hot(r.t, r.C)
    else:
        valid, g = r.valid, r.g
    g = np.where(valid, g, 0.0)
    p, q = np.where(valid, p, 0.0), np.where(valid, q, 0.0)
    shape = (r.N, r.C) + tuple(r.spatial)
    axes = tuple(range(2, 2 + len(r.spatial)))
    return r, p.reshape(shape), q.reshape(shape), g.reshape(shape), valid.reshape(shape), axes


def _reduce(l, c, weight, classes, per_image, reduction):
    """Per-class losses (R, C) weighted, selected and reduced as the region losses define it."""
    cls = O._class_list(classes, c)
    w = np.ones(c) if weight is None else O._class_vector(weight, c, "weight")
    out = l[:, cls] * w[cls][None, :]
    if reduction == "none":
        return out if per_image else out[0]
    if reduction == "sum":
        return O._scalar(out.sum())
    return O._scalar(out.sum() / (out.shape[0] * w[cls].sum()))


def _sum(a, axes, per_image):
    s = a.sum(axis=axes)
    return s if per_image else s.sum(axis=0, keepdims=True)


def _ratio(num, den):
    """num / den, 1 where den = 0 (nothing to miss)."""
    return np.where(den != 0, num / np.where(den != 0, den, 1.0), 1.0)


def _weights(r, pixel_weight, shape):
    """The pixel weights (N, C, *spatial), 0 at ignored elements (tests/oracle_pixel_weight.py); all 1 if None."""
    return element_weights(r, pixel_weight).reshape(shape)


def _weighted_dice(p, q, g, w, axes, smooth, per_image):
    """Per-class Dice losses (R, C) from the weighted statistics tp = sum w min(p, g), fp = sum w max(p - g, 0),
    fn = sum w max(g - p, 0) (the L1 form; sum w p g, sum w p (1 - g), sum w (1 - p) g on hard targets)."""
    tp = _sum(w * np.minimum(p, g), axes, per_image)
    fp = _sum(w * np.maximum(p - g, 0.0), axes, per_image)
    fn = _sum(w * np.maximum(q - (1.0 - g), 0.0), axes, per_image)
    den = 2 * tp + fp + fn + smooth
    return np.where(den != 0, (fp + fn) / np.where(den != 0, den, 1.0), 0.0)


def cldice(logits, target, mode, *, alpha=0.5, iterations=10, smooth=1.0, per_image=False, weight=None, classes=None,
           ignore_index=None, from_logits=True, reduction="mean", pixel_weight=None):
    """With ``pixel_weight`` w: T_prec = (sum w S_P g + s) / (sum w S_P + s), T_sens = (sum w S_G p + s) /
    (sum w S_G + s), Dice from the weighted tp, fp, fn; the skeletons from p and g alone."""
    r, p, q, g, valid, axes = _inputs(logits, target, mode, ignore_index, from_logits)
    w = _weights(r, pixel_weight, p.shape)
    s = float(smooth)
    sp, sg = soft_skel(p, iterations, axes, valid), soft_skel(g, iterations, axes, valid)
    sp, sg = np.where(valid, sp, 0.0), np.where(valid, sg, 0.0)
    t_prec = _ratio(_sum(w * sp * g, axes, per_image) + s, _sum(w * sp, axes, per_image) + s)
    t_sens = _ratio(_sum(w * sg * p, axes, per_image) + s, _sum(w * sg, axes, per_image) + s)
    hm = 2 * t_prec * t_sens / np.where(t_prec + t_sens > 0, t_prec + t_sens, 1.0)
    cl = _reduce(1 - hm, r.C, weight, classes, per_image, reduction)
    if alpha == 1:
        return alpha * cl
    if pixel_weight is None:
        dice = O.dice(logits, target, mode, smooth=smooth, per_image=per_image, weight=weight, classes=classes,
                      ignore_index=ignore_index, from_logits=from_logits, reduction=reduction)
    else:
        dice = _reduce(_weighted_dice(p, q, g, w, axes, s, per_image), r.C, weight, classes, per_image, reduction)
    return (1 - alpha) * dice + alpha * cl


def skeleton_recall(logits, target, mode, *, smooth=1e-5, per_image=False, weight=None, classes=None,
                    ignore_index=None, from_logits=True, reduction="mean", skeletons=None, pixel_weight=None):
    """With ``pixel_weight`` w: 1 - (sum w S p + s) / (sum w S + s); the skeleton from the target alone."""
    r, p, q, g, valid, axes = _inputs(logits, target, mode, ignore_index, from_logits)
    w = _weights(r, pixel_weight, p.shape)
    s = float(smooth)
    if skeletons is None:
        mask = (g > 0.5) & valid
        sk = np.zeros(mask.shape)
        for i in np.ndindex(*mask.shape[:2]):  # each image and class on its own
            sk[i] = recall_maps(mask[i], tuple(a - 2 for a in axes))
    else:
        sk = np.where(valid, np.asarray(skeletons, dtype=np.float64).reshape(valid.shape), 0.0)
    num, den = _sum(w * sk * p, axes, per_image) + s, _sum(w * sk, axes, per_image) + s
    rec = _ratio(num, den)
    return _reduce(1 - rec, r.C, weight, classes, per_image, reduction)
