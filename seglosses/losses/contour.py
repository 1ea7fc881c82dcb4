"""Contour losses: the distance-map penalised cross-entropy (Caliva et al. 2019), the shape-aware loss (Jadon 2020)
and the Boundary Difference over Union loss (Sun et al. 2023), 1-D to 3-D, every mode.

The two cross-entropy losses weight the cross-entropy of :mod:`seglosses.core.pixel` by a detached factor read
from the target's geometry: ``1 + phi`` with phi the inverted, normalised exact distance transform of each class mask
(:func:`contour_maps` with ``kind="penalty"``), or ``1 + E`` with E the mean distance from the predicted contour to
the target contour (``kind="contour"``: the distance to the target contour). Those maps come from
:func:`seglosses.edt` (exact; torch or SciPy) under ``no_grad``, or precomputed (``dist_maps``) so that no distance
transform runs in the training step. Boundary DoU needs no distance: its boundary is the target's contour pixels.

The contour of a mask (:func:`_contour`) is the set of mask pixels with a face neighbour (4-connectivity in 2-D,
6 in 3-D) outside the mask, where pixels beyond the image border and ignored pixels count as outside: the boundary of
Boundary DoU's official code (a cross-shaped 3 x 3 convolution with zero padding, a pixel kept when its sum is below
5), generalised to 1-3 axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F

from seglosses.core.args import (Mode, Reduction, check_bool, check_classes, check_one_of, check_reduction,
                                 check_spacing)
from seglosses.core.checks import pixel_weights, prepare, spatial_axes, take
from seglosses.core.dist import all_reduce_sum, is_active
from seglosses.core.module import LossModule
from seglosses.core.pixel import pixels, reduce_pixels, target_sum
from seglosses.core.score import reduce_class_losses
from seglosses.core.targets import dense_block, index_block
from seglosses.distance import check_backend, edt
from seglosses.losses.boundary import _given_maps, _two_sided

#: The smoothing term of Boundary DoU's official code (numerator and denominator, and the ratio C / S of alpha).
DOU_SMOOTH = 1e-5
#: The cap on Boundary DoU's alpha recommended (and applied) by the official code.
DOU_ALPHA_MAX = 0.8

_KINDS = ("penalty", "contour")


def _backend(backend):
    if check_backend(backend) == "auto" and torch.compiler.is_compiling():
        return "torch"  # SciPy would break the graph
    return backend


def _masks(t, g, valid, n, c, s):
    """The target masks ``(N, C, S)`` bool (ignored pixels in no mask) and the valid elements ``(N, C, S)``."""
    if t is not None:
        cls = torch.arange(c, device=t.device).view(1, -1, 1)
        v = torch.ones((n, 1, s), dtype=torch.bool, device=t.device) if valid is None else valid.unsqueeze(1)
        return (t.unsqueeze(1) == cls) & v, v.expand(n, c, s)
    v = torch.ones((n, c, s), dtype=torch.bool, device=g.device) if valid is None else valid.expand(n, c, s)
    return (g > 0.5) & v, v


def _contour(mask, spatial):
    """Mask elements ``(B, S)`` with a face neighbour outside the mask (or beyond the border): the inner contour."""
    nd = len(spatial)
    if mask.numel() == 0:
        return mask
    m = mask.reshape(-1, *spatial)
    padded = F.pad(m.to(torch.uint8), (1, 1) * nd)  # zeros beyond the border: outside
    inner = m
    for a in range(nd):
        for lo in (0, 2):
            idx = [slice(None)] + [slice(1, 1 + k) for k in spatial]
            idx[1 + a] = slice(lo, lo + spatial[a])
            inner = inner & padded[tuple(idx)].bool()
    return (m & ~inner).reshape(mask.shape)


def _penalty(mask, valid, spatial, spacing, backend, dt):
    """phi ``(N, C, S)``: on each side of each class boundary, ``(max d - d) / (max d - min d)`` with d the distance
    to the nearest valid element on the other side (the inverted map, min-max normalised: 1 next to the boundary, 0
    at the farthest elements; 1 where every element of the side is equally near); 0 where a slice has no boundary."""
    d_out, d_in, inside, outside, has = _two_sided(mask, valid, spatial, spacing, backend, dt)

    def inverted(d, side):
        side = side & has
        if d.shape[-1] == 0:
            return torch.zeros_like(d)
        hi = torch.where(side, d, 0.0).amax(-1, keepdim=True)
        lo = torch.where(side, d, hi).amin(-1, keepdim=True)
        span = hi - lo
        phi = torch.where(span > 0, (hi - torch.where(side, d, hi)) / torch.where(span > 0, span, 1.0), 1.0)
        return torch.where(side, phi, 0.0)

    return inverted(d_out, outside) + inverted(d_in, inside)


def _contour_distance(mask, spatial, spacing, backend, dt):
    """The distance of every element to the nearest element of the target's contour ``(N, C, S)``; 0 where a
    slice has no contour (an empty mask)."""
    n, c, s = mask.shape
    if mask.numel() == 0:
        return torch.zeros(mask.shape, dtype=dt, device=mask.device)
    gc = _contour(mask, spatial)
    d = edt((~gc).reshape(n, c, *spatial), ndim=len(spatial), spacing=spacing, backend=backend, dtype=dt)
    return torch.where(gc.any(-1, keepdim=True), d.reshape(n, c, s), 0.0)


def contour_maps(target: torch.Tensor, mode: Mode, *, num_classes: int | None = None,
                 kind: Literal["penalty", "contour"] = "penalty", spacing: float | Sequence[float] | None = None,
                 ignore_index: int | None = None, backend: Literal["auto", "torch", "scipy"] = "auto") -> torch.Tensor:
    r"""The target maps of the contour losses, ``(N, C, *spatial)`` float32, to pass as their ``dist_maps``.

    - ``kind="penalty"``: phi of :func:`distance_penalized_cross_entropy_loss`, per class c with mask M_c,
      :math:`\phi_c(x) = (\max d - d(x)) / (\max d - \min d)` where d is the distance to the nearest valid element
      on the other side of the boundary of M_c and the max and min run over the elements on x's side (in [0, 1]:
      1 next to the boundary, 0 at the farthest elements; 1 on a side whose elements are all equally near); 0 on a
      slice whose valid elements are all inside or all outside M_c.
    - ``kind="contour"``: the distance of every element to the nearest contour element of M_c (:mod:`module docs
      <seglosses.losses.contour>`), for :func:`shape_aware_loss`; 0 on a slice where M_c is empty.

    Args:
        target: a batch of targets as the losses take them: "multiclass" ``(N, *spatial)`` class indices (or
            ``(N, C, *spatial)`` probabilities); "binary" ``(N, *spatial)`` or ``(N, 1, *spatial)``; "multilabel"
            ``(N, C, *spatial)``. Masks: ``t == c``, or ``g > 0.5`` for dense targets.
        mode: "binary", "multiclass" or "multilabel".
        num_classes: C, required for "multiclass" class indices.
        kind: "penalty" or "contour".
        spacing, ignore_index, backend: as in the losses.

    Returns:
        float32 maps ``(N, C, *spatial)`` on the target's device (C = 1 for "binary").

    Example:
        >>> import torch, seglosses
        >>> t = torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.0, 0.0]])        # inside d = [1, 2, 1], outside [1, 1, 2]
        >>> seglosses.contour_maps(t, "binary")[0, 0].tolist()
        [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    """
    kind = check_one_of("kind", kind, _KINDS)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"`target` must be a torch.Tensor; got {type(target).__name__}")
    if mode == "multiclass" and not (target.is_floating_point() or target.dtype == torch.bool):
        if num_classes is None or isinstance(num_classes, bool) or not isinstance(num_classes, int):
            raise TypeError(f"`num_classes` must be an int for mode='multiclass' with class indices; got "
                            f"{num_classes!r}")
        if num_classes < 1:
            raise ValueError(f"`num_classes` must be >= 1; got {num_classes}")
        shape = (target.shape[0], num_classes, *target.shape[1:])
    else:
        shape = tuple(target.shape)
    stand_in = torch.zeros((), device=target.device).expand(shape)  # logits' shape, no memory
    inp = prepare(stand_in, target, mode, ignore_index)
    spatial = spatial_axes(shape, mode, "a contour loss")
    spacing = check_spacing(spacing, len(spatial))
    backend = _backend(backend)
    dt = torch.float32 if target.device.type != "cpu" else torch.float64
    with torch.no_grad():
        if inp.index:
            t, valid = index_block(inp.target, ignore_index, inp.c)
            mask, valid = _masks(t, None, valid, inp.n, inp.c, inp.s)
        else:
            g, valid = dense_block(inp.target, ignore_index, dt)
            mask, valid = _masks(None, g, valid, inp.n, inp.c, inp.s)
        if kind == "penalty":
            out = _penalty(mask, valid, spatial, spacing, backend, dt)
        else:
            out = _contour_distance(mask, spatial, spacing, backend, dt)
    return out.to(torch.float32).reshape(inp.n, inp.c, *spatial)


def _setup(logits, target, mode, ignore_index, from_logits, spacing, backend, complement, what):
    px = pixels(logits, target, mode, ignore_index=ignore_index, from_logits=from_logits, complement=complement)
    spatial = spatial_axes(logits.shape, mode, what)
    spacing = check_spacing(spacing, len(spatial))
    backend = _backend(backend)
    inp = px.inp
    with torch.no_grad():
        mask, valid = _masks(px.t, px.g, px.valid, inp.n, inp.c, inp.s)
    return px, spatial, spacing, backend, mask, valid


def _weighted_ce(px, w):
    """``-(w y log p + w (1 - y) log(1 - p))`` per element (sigmoid) or ``-sum_c w_c y_c log p_c`` per pixel."""
    if px.softmax:
        return -target_sum(px, w * px.logp)
    return -w * (px.g * px.logp + (1 - px.g) * px.log1mp)


def _pixel_weight(pixel_weight, logits, mode, px):
    """The pixel weights of the loss map: ``(N, S)`` for the softmax (one value per pixel: no per-class map),
    ``(N, 1 | C, S)`` otherwise; 0 at ignored entries (a NaN there reaches nothing); None without a map."""
    w = pixel_weights(pixel_weight, logits, mode, px.inp, per_class=not px.softmax)
    if w is None:
        return None
    if px.softmax:
        w = w.squeeze(1)
    return w if px.valid is None else torch.where(px.valid, w, 0.0)


def _reduce(loss, px, w, reduction):
    """:func:`~seglosses.core.pixel.reduce_pixels` of the map times the pixel weights ``w``: "mean" divides by the
    sum of the weights of the valid entries (0 when it is 0)."""
    if w is None:
        return reduce_pixels(loss, px, reduction)
    out = reduce_pixels(loss * w, px, "sum" if reduction == "mean" else reduction)
    if reduction != "mean":
        return out
    norm = w.expand(loss.shape).sum()
    return out / torch.where(norm > 0, norm, 1.0)


def distance_penalized_cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
                                          spacing: float | Sequence[float] | None = None,
                                          dist_maps: torch.Tensor | None = None, ignore_index: int | None = None,
                                          pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                                          reduction: Reduction = "mean",
                                          backend: Literal["auto", "torch", "scipy"] = "auto") -> torch.Tensor:
    r"""Distance-map penalised cross-entropy (Caliva et al. 2019, arXiv 1908.03679): cross-entropy weighted by
    one plus an inverted distance map of the target, so that the pixels next to the boundaries weigh most.

    .. math::
        \ell(x) = -\sum_c \big(1 + \phi_c(x)\big)\, y_c(x) \log p_c(x) \;\;\text{(multiclass)}, \qquad
        \ell_c(x) = -\big(1 + \phi_c(x)\big)\big[y_c \log p_c + (1 - y_c) \log(1 - p_c)\big]

    with :math:`\phi_c(x) = (\max d_c - d_c(x)) / (\max d_c - \min d_c)` on each side of the boundary of the target
    mask :math:`M_c` (``t == c``, or ``g > 0.5``): d_c the Euclidean distance (in ``spacing`` units) to the nearest
    valid element on the other side, the max and min taken over the elements of x's side in the same image. So phi
    is in [0, 1]: 1 next to the boundary on both sides (the weight doubles there), 0 at the farthest elements, 1 on
    a side whose elements are all equally near the boundary (a one-pixel-thin structure; SegLoss divides 0 by 0
    there), and 0 everywhere on an image where the class has no boundary. The paper's text describes the map only
    as the target's distance transform, inverted so that the boundary weighs most; the exact map is SegLoss's
    (JunMa11/SegLoss, ``losses_pytorch/boundary_loss.py: compute_edts_forPenalizedLoss``: each side inverted as
    ``max - d`` and divided by its own max, which is ``max d - min d``), tested equal to it. The weight
    ``1 + phi`` is detached (computed from the target under ``no_grad``).

    Args:
        logits: ``(N, C, *spatial)`` logits (probabilities with ``from_logits=False``), 1 to 3 spatial axes;
            ``(N, *spatial)`` or ``(N, 1, *spatial)`` for "binary".
        target: as :func:`seglosses.cross_entropy_loss`.
        mode: "binary", "multiclass" or "multilabel".
        spacing: voxel size per spatial axis (a number or a sequence), for anisotropic volumes.
        dist_maps: precomputed phi ``(N, C, *spatial)`` of every class (:func:`seglosses.contour_maps`,
            ``kind="penalty"``); None computes it here.
        ignore_index: target value whose pixels count nowhere: no loss, zero gradient, never a nearest point.
        pixel_weight: a weight map, a per-call input of the Module; None: all 1. ``(N, *spatial)``, or for
            "binary"/"multilabel" also ``(N, C, *spatial)`` per element ("multiclass" has one value per pixel: a
            per-class map is refused), each axis the full size or 1. Each term (pixel, or element)
            is multiplied by its weight and "mean" divides by the sum of the weights of the valid terms. phi does
            not depend on it; a weight at an ignored pixel has no effect; no gradient flows to it.
        from_logits: False: the input holds probabilities.
        reduction: "mean" (over valid elements; pixels for "multiclass"), "sum" or "none" (the map, as
            :func:`seglosses.cross_entropy_loss`).
        backend: distance transform backend, as :func:`seglosses.boundary_loss`.

    Returns:
        A scalar, or the map for "none"; float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x = torch.zeros(1, 1, 6)                                  # p = 1/2: every term is ln 2
        >>> t = torch.tensor([[[0.0, 1.0, 1.0, 1.0, 0.0, 0.0]]])      # phi = [1, 1, 0, 1, 1, 0]
        >>> round(seglosses.distance_penalized_cross_entropy_loss(x, t, "binary").item(), 6)  # 10 ln 2 / 6
        1.155245

    References:
        Caliva, Iriondo, Martinez, Majumdar, Pedoia. Distance Map Loss Penalty Term for Semantic Segmentation.
        MIDL 2019 (extended abstract). arXiv 1908.03679.
        Jadon. A survey of loss functions for semantic segmentation. CIBCB 2020. arXiv 2006.14822.
    """
    reduction = check_reduction(reduction)
    px, spatial, spacing, backend, mask, valid = _setup(logits, target, mode, ignore_index, from_logits, spacing,
                                                        backend, not mode == "multiclass",
                                                        "the distance-penalised cross-entropy")
    inp, dt = px.inp, px.logp.dtype
    w = _pixel_weight(pixel_weight, logits, mode, px)
    with torch.no_grad():
        if dist_maps is not None:
            phi = _given_maps("dist_maps", dist_maps, inp.n, inp.c, spatial, dt, px.logp.device).detach()
        else:
            phi = _penalty(mask, valid, spatial, spacing, backend, dt).to(device=px.logp.device)
    return _reduce(_weighted_ce(px, 1 + phi), px, w, reduction)


def shape_aware_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
                     spacing: float | Sequence[float] | None = None, dist_maps: torch.Tensor | None = None,
                     ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None,
                     from_logits: bool = True, reduction: Reduction = "mean",
                     backend: Literal["auto", "torch", "scipy"] = "auto") -> torch.Tensor:
    r"""Shape-aware loss (Jadon 2020, eqs. 15-16): cross-entropy weighted by one plus the mean distance from the
    predicted contour to the target contour, per image and class.

    .. math::
        E_{n,c} = \frac{1}{|\hat C_{n,c}|} \sum_{x \in \hat C_{n,c}} d(x, C_{n,c}), \qquad
        \ell(x) = -\sum_c (1 + E_{n,c})\, y_c \log p_c \;\;\text{(multiclass)}, \qquad
        \ell_c(x) = (1 + E_{n,c})\, \mathrm{BCE}_c(x)

    :math:`C_{n,c}` is the contour of the target mask (``t == c``, or ``g > 0.5``) of image n,
    :math:`\hat C_{n,c}` the contour of the hard prediction (``argmax == c`` for "multiclass", ``p > 0.5``
    otherwise), both as in :mod:`seglosses.losses.contour`: mask pixels with a face neighbour outside the mask,
    beyond the border or ignored. d is the Euclidean distance (in ``spacing`` units). E is 0 when either contour is
    empty (no predicted contour, or no target contour to measure to): the loss is then the plain cross-entropy.
    The weight ``1 + E`` is detached: E follows the prediction's argmax, which has no gradient.

    Args:
        logits, target, mode, spacing, ignore_index, pixel_weight, from_logits, backend: as
            :func:`distance_penalized_cross_entropy_loss` (the weights multiply the terms; E does not depend on
            them).
        dist_maps: precomputed distances to the target contour ``(N, C, *spatial)`` (:func:`seglosses.contour_maps`,
            ``kind="contour"``); None computes them here.
        reduction: "mean" (over valid elements; pixels for "multiclass"), "sum" or "none" (the map).

    Returns:
        A scalar, or the map for "none"; float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x = torch.tensor([[[-1.0, -1.0, -1.0, 1.0, 1.0]]])        # prediction [0, 0, 0, 1, 1]: contour {3, 4}
        >>> t = torch.tensor([[[0.0, 1.0, 1.0, 1.0, 0.0]]])           # target contour {1, 3}: E = (0 + 1) / 2
        >>> ce = seglosses.cross_entropy_loss(x, t, "binary")
        >>> round((seglosses.shape_aware_loss(x, t, "binary") / ce).item(), 6)
        1.5

    References:
        Jadon. A survey of loss functions for semantic segmentation. CIBCB 2020. arXiv 2006.14822.
        Hayder, He, Salzmann. Boundary-aware Instance Segmentation. CVPR 2017 (the shape-aware term).
    """
    reduction = check_reduction(reduction)
    px, spatial, spacing, backend, mask, valid = _setup(logits, target, mode, ignore_index, from_logits, spacing,
                                                        backend, not mode == "multiclass", "the shape-aware loss")
    inp, dt = px.inp, px.logp.dtype
    w = _pixel_weight(pixel_weight, logits, mode, px)
    with torch.no_grad():
        if dist_maps is not None:
            d = _given_maps("dist_maps", dist_maps, inp.n, inp.c, spatial, dt, px.logp.device).detach()
        else:
            d = _contour_distance(mask, spatial, spacing, backend, dt).to(device=px.logp.device)
        if px.softmax:
            cls = torch.arange(inp.c, device=px.logp.device).view(1, -1, 1)
            pred = px.logp.argmax(1, keepdim=True) == cls
        else:
            pred = px.logp > px.log1mp
        pc = _contour(pred & valid.to(pred.device), spatial)
        count = pc.sum(-1, keepdim=True).to(dt)
        e = torch.where(pc, d, 0.0).sum(-1, keepdim=True) / torch.where(count > 0, count, 1.0)
    return _reduce(_weighted_ce(px, 1 + e), px, w, reduction)


def boundary_dou_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, per_image: bool = False,
                      classes: Sequence[int] | None = None, ignore_index: int | None = None,
                      pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                      reduction: Reduction = "mean", dist_sync: bool = False,
                      process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Boundary Difference over Union loss (Sun et al. 2023, arXiv 2308.00220), per class.

    .. math::
        L_c = \frac{|G \cup P| - |G \cap P|}{|G \cup P| - \alpha |G \cap P|}
            = \frac{\sum (p - g)^2 + s}{\sum (p - g)^2 + (1 - \alpha) \sum p g + s}, \qquad
        \alpha = \min\Big(1 - \frac{2 (C + s)}{S + s}, 0.8\Big)

    the official code's soft form (``|G u P| = sum p^2 + sum g^2 - sum p g``, ``|G n P| = sum p g``), written with
    the numerator :math:`\sum (p - g)^2` computed directly so that nothing cancels near a perfect prediction; the
    sums run over the valid pixels of the batch (of each image with ``per_image``), s = 1e-5. S is the number of
    target pixels of the class (``t == c``, or ``g > 0.5``) and C the number of them on the target's contour (a
    face neighbour outside the mask or beyond the border: the official cross-shaped kernel with zero padding,
    generalised to 1-3 axes; ignored pixels count as outside). alpha and the boundary come from the target only and
    carry no gradient. A class absent from the target (S = 0) has loss 1 and zero gradient, as in the official code;
    a row (the batch, or an image with ``per_image``) with no valid pixel has loss 0 (an empty input gives 0).

    Args:
        logits: ``(N, C, *spatial)`` logits (probabilities with ``from_logits=False``), 1 to 3 spatial axes;
            ``(N, *spatial)`` or ``(N, 1, *spatial)`` for "binary".
        target: as :func:`seglosses.dice_loss`.
        mode: "binary", "multiclass" or "multilabel".
        per_image: sums per image (one loss per image and class) instead of over the batch (the official code).
        classes: class indices to keep; None keeps all (the official code averages over every class, background
            included).
        ignore_index: target value whose pixels count nowhere: no statistic, zero gradient.
        pixel_weight: a weight map ``(N, *spatial)`` (every class of a pixel) or ``(N, C, *spatial)`` (per pixel
            and class), each axis the full size or 1, a per-call input of the Module; None: all 1. Each pixel's
            share of the soft counts ``sum (p - g)^2`` and ``sum p g`` is multiplied by its weight (as the
            overlap losses weigh tp, fp, fn); alpha and the boundary (S, C) stay the target's unweighted geometry. A
            row whose valid weights sum to 0 has loss 0, as one with no valid pixel. No gradient flows to it.
        from_logits: False: the input holds probabilities.
        reduction: "mean" over kept classes (and images), "sum", or "none": ``(K,)``, ``(N, K)`` with ``per_image``.
        dist_sync: with ``torch.distributed`` initialized, all-reduce the sums (and alpha's counts) over the ranks of
            ``process_group`` before the ratio (``per_image``: the mean or sum runs over every rank's images).
        process_group: the group for ``dist_sync`` (default: the default group).

    Returns:
        A scalar, or the per-class losses for "none"; float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x = torch.zeros(1, 1, 5)                                  # p = 1/2
        >>> t = torch.tensor([[[0.0, 1.0, 1.0, 1.0, 0.0]]])           # S = 3, C = 2: alpha = -1/3
        >>> round(seglosses.boundary_dou_loss(x, t, "binary").item(), 4)  # 1.25 / (1.25 + (4/3) 1.5)
        0.3846

    References:
        Sun, Luo, Li. Boundary Difference over Union Loss for Medical Image Segmentation. MICCAI 2023.
        arXiv 2308.00220. Official code: github.com/sunfan-bvb/BoundaryDoULoss.
    """
    reduction = check_reduction(reduction)
    check_bool("per_image", per_image)
    px, spatial, _, _, mask, valid = _setup(logits, target, mode, ignore_index, from_logits, None, "auto", False,
                                            "Boundary DoU")
    inp, dt = px.inp, px.logp.dtype
    classes = check_classes(classes, inp.c)
    w = pixel_weights(pixel_weight, logits, mode, inp)
    w = None if w is None else torch.where(valid, w, 0.0)  # (N, C, S), 0 at ignored pixels (NaN included)
    if from_logits:
        p, q = px.logp.exp(), -torch.expm1(px.logp)  # q = 1 - p, accurate near p = 1
    else:  # probabilities as given, as every region loss (0.5 at ignored elements: nothing NaN reaches the sums)
        p = torch.where(valid, inp.x.to(dt), 0.5)
        q = 1 - p
    g = mask.to(dt) if px.t is not None else px.g
    diff = torch.where(g > 0.5, q - (1 - g), p - g)
    dims = (-1,) if per_image else (0, -1)
    err, inter = torch.where(valid, diff * diff, 0.0), torch.where(valid, p * g, 0.0)
    if w is not None:
        err, inter = err * w, inter * w
    err, inter = err.sum(dims), inter.sum(dims)
    with torch.no_grad():
        edge = _contour(mask, spatial).sum(dims).to(dt)
        size = mask.sum(dims).to(dt)
        seen = valid.sum(dims).to(dt) if w is None else w.sum(dims)
    if check_bool("dist_sync", dist_sync) and not per_image:  # one all-reduce of 5 x C numbers
        err, inter, edge, size, seen = all_reduce_sum(torch.stack([err, inter, edge, size, seen]),
                                                      process_group).unbind(0)
    alpha = (1 - 2 * (edge + DOU_SMOOTH) / (size + DOU_SMOOTH)).clamp_max(DOU_ALPHA_MAX).detach()
    num = err + DOU_SMOOTH
    # no valid pixel (or weight): 0; NaN where a NaN at a valid pixel of weight 0 made a sum NaN (never hidden)
    loss = torch.where(seen > 0, num / (num + (1 - alpha) * inter), (err + inter) * 0)
    loss = take(loss.reshape(inp.n if per_image else 1, inp.c), classes)
    return reduce_class_losses(loss, None, per_image=per_image, reduction=reduction,
                               sync=dist_sync and is_active(), group=process_group)


class DistancePenalizedCrossEntropyLoss(LossModule):
    """Module form of :func:`distance_penalized_cross_entropy_loss`; ``forward(logits, target, dist_maps=None,
    pixel_weight=None)``."""

    _fn = staticmethod(distance_penalized_cross_entropy_loss)
    _inputs = ("dist_maps",)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, spacing: float | Sequence[float] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     backend: Literal["auto", "torch", "scipy"] = "auto") -> None: ...


class ShapeAwareLoss(LossModule):
    """Module form of :func:`shape_aware_loss`; ``forward(logits, target, dist_maps=None, pixel_weight=None)``."""

    _fn = staticmethod(shape_aware_loss)
    _inputs = ("dist_maps",)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, spacing: float | Sequence[float] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     backend: Literal["auto", "torch", "scipy"] = "auto") -> None: ...


class BoundaryDoULoss(LossModule):
    """Module form of :func:`boundary_dou_loss`; takes the same keyword arguments, ``pixel_weight`` in ``forward``."""

    _fn = staticmethod(boundary_dou_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, per_image: bool = False, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...
