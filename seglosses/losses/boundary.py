"""Distance-based losses: the boundary loss (Kervadec et al. 2019) and the Hausdorff distance-transform loss
(Karimi & Salcudean 2019), 1-D to 3-D, every mode, with the exact distance transforms of :mod:`seglosses.distance`.

The target's distance maps are computed in the loss (exact Euclidean, batched over images and classes: torch on the
tensor's device; SciPy for CPU tensors with an axis longer than 256) or passed in precomputed (``dist_maps``,
``target_dist``), as Kervadec's reference computes them in the data loader (:func:`seglosses.distance_maps`).

Ignored pixels are never the nearest point of a mask nor of its outside: distances are measured to valid pixels
only, so ignoring a region gives the loss of the image without it. A class whose valid pixels are all inside or all
outside its mask has no boundary and a zero map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch

from seglosses.core.args import Mode, Reduction, check_bool, check_classes, check_reduction, check_scalar, check_spacing
from seglosses.core.checks import (
    activation, compute_dtype, pixel_weights, prepare, spatial_axes, take, to_compute, values_at_hand,
)
from seglosses.core.module import LossModule
from seglosses.core.targets import activate, valid_indices
from seglosses.distance import check_backend, edt


def _two_sided(mask, valid, spatial, spacing, backend, dtype):
    """Per (image, class): the distance of every pixel outside the mask to the nearest valid mask pixel, of every
    pixel inside to the nearest valid outside pixel, and whether the slice has a boundary at all."""
    n, c = mask.shape[:2]
    inside, outside = mask & valid, ~mask & valid
    shape = (n, c, *spatial)
    if mask.numel() == 0:
        z = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        return z, z, inside, outside, torch.zeros((n, c, 1), dtype=torch.bool, device=mask.device)
    # edt(m): distance of every True element to the nearest False one. False = the points measured to.
    d_out = edt((~inside).reshape(shape), ndim=len(spatial), spacing=spacing, backend=backend, dtype=dtype)
    d_in = edt((~outside).reshape(shape), ndim=len(spatial), spacing=spacing, backend=backend, dtype=dtype)
    s = math.prod(spatial)
    d_out, d_in = d_out.reshape(n, c, s), d_in.reshape(n, c, s)
    has = inside.any(-1, keepdim=True) & outside.any(-1, keepdim=True)
    return d_out, d_in, inside, outside, has


def _setup(logits, target, mode, classes, spacing, ignore_index, from_logits, backend):
    inp = prepare(logits, target, mode, ignore_index)  # (checks ignore_index)
    check_bool("from_logits", from_logits)
    if check_backend(backend) == "auto" and torch.compiler.is_compiling():
        backend = "torch"  # SciPy would break the graph
    spatial = spatial_axes(logits.shape, mode, "a distance-based loss")
    spacing = check_spacing(spacing, len(spatial))
    classes = check_classes(classes, inp.c)
    dt = compute_dtype(inp.x)
    with torch.no_grad():
        if inp.index:
            t = inp.target
            # not ignore_index, and in [0, C) where the labels were not range-checked (CUDA, torch.compile)
            valid = valid_indices(t, ignore_index, inp.c)
            valid = torch.ones_like(t, dtype=torch.bool) if valid is None else valid
            cls = torch.arange(inp.c, device=t.device).view(1, -1, 1)
            mask = t.unsqueeze(1) == cls                     # (N, C, S) bool: the distance maps are this size
            valid = valid.unsqueeze(1).expand_as(mask)
        else:
            g = inp.target
            valid = (g != ignore_index) if ignore_index is not None else torch.ones_like(g, dtype=torch.bool)
            mask = (g > 0.5) & valid
    every = ignore_index is None and not (inp.index and not values_at_hand(inp.target))
    # (ignored elements: a finite input, so that a NaN there reaches nothing)
    x = inp.x if every else torch.where(valid, inp.x, 0.0 if from_logits else 0.5)
    p = activate(to_compute(x), activation(mode, from_logits))
    if inp.index:
        g = mask.to(dt)
    else:
        g = torch.where(valid, inp.target.to(dt), 0.0)
    return inp, p, g, mask, valid, spatial, spacing, classes, dt, backend


def _weights(pixel_weight, logits, mode, inp, valid):
    """The pixel weights ``(N, C, S)`` (:func:`~seglosses.core.checks.pixel_weights`), 0 at ignored elements (a NaN
    there reaches nothing); None without a map."""
    w = pixel_weights(pixel_weight, logits, mode, inp)
    return None if w is None else torch.where(valid, w, 0.0)


def _pair_mean(loss, valid, classes, reduction, out_shape, w=None):
    """The (pixel, class) terms reduced: each times its pixel weight ``w`` (None: 1); "mean" over the sum of the
    weights of the valid pairs of the kept classes (their number without weights)."""
    if w is not None:
        loss = loss * w
    if classes is not None:
        loss, valid = take(loss, classes), take(valid, classes)
        w = None if w is None else take(w, classes)
    loss = torch.where(valid, loss, 0.0)
    if reduction == "none":
        return loss.reshape(out_shape(loss.shape[1]))
    total = loss.sum()
    if reduction == "sum":
        return total
    count = valid.sum().to(loss.dtype) if w is None else w.sum()
    return total / torch.where(count > 0, count, 1.0)


def _map_shape(inp, spatial):
    return lambda k: (inp.n, k, *spatial)


def _given_maps(name, maps, n, c, spatial, dt, device):
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of shape {(n, c, *spatial)}; got {type(maps).__name__}")
    if tuple(maps.shape) != (n, c, *spatial):
        raise ValueError(f"`{name}` must have shape (N, C, *spatial) = {(n, c, *spatial)}; got {tuple(maps.shape)}")
    return maps.to(device=device, dtype=dt).reshape(n, c, math.prod(spatial))


def boundary_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, classes: Sequence[int] | None = None,
                  spacing: float | Sequence[float] | None = None, dist_maps: torch.Tensor | None = None,
                  ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None,
                  from_logits: bool = True, reduction: Reduction = "mean",
                  backend: Literal["auto", "torch", "scipy"] = "auto") -> torch.Tensor:
    r"""Boundary loss (Kervadec et al. 2019, arXiv 1812.07032): the probabilities integrated against the signed
    distance map of the target.

    .. math::
        L = \frac{1}{|V| K} \sum_{c} \sum_{x \in V} \phi_c(x)\, p_c(x), \qquad
        \phi_c(x) = \begin{cases} d(x, M_c) & x \notin M_c \\ -(d(x, \bar M_c) - 1) & x \in M_c \end{cases}

    M_c is the target mask of class c (g_c > 0.5), d the Euclidean distance (in ``spacing`` units) to the nearest
    valid pixel of a set, so pixels far outside the object push their probability down and pixels deep inside pull
    it up (the "- 1" of the reference code makes the inner boundary 0). The loss is negative when the prediction
    is good: it is meant to be added to a region loss (``dice + alpha * boundary``, alpha raised during training).

    Args:
        logits: ``(N, C, *spatial)`` logits (probabilities with ``from_logits=False``), 1 to 3 spatial axes;
            ``(N, *spatial)`` or ``(N, 1, *spatial)`` for "binary".
        target: as :func:`seglosses.dice_loss`.
        mode: "binary", "multiclass" or "multilabel".
        classes: class indices to keep (Kervadec: the foreground classes); None keeps all.
        spacing: voxel size per spatial axis (a number or a sequence), for anisotropic volumes.
        dist_maps: precomputed signed maps ``(N, C, *spatial)`` of every class
            (:func:`seglosses.distance_maps` with ``kind="signed"``); None computes them here.
        ignore_index: target value whose pixels count nowhere: no loss, zero gradient, never a nearest point.
        pixel_weight: a weight map ``(N, *spatial)`` (every class of a pixel) or ``(N, C, *spatial)`` (per pixel
            and class), each axis the full size or 1, a per-call input of the Module; None: all 1. Each term
            ``phi p`` is multiplied by its weight and "mean" divides by the sum of the weights of the valid (pixel,
            kept class) pairs: the weighted mean. The distance maps do not depend on it; a weight at an ignored
            pixel has no effect; no gradient flows to it.
        from_logits: False: the input holds probabilities.
        reduction: "mean" (over valid pixels and kept classes), "sum" or "none" (the map ``(N, K, *spatial)``).
        backend: distance transform backend: "auto" (torch; SciPy for CPU tensors with an axis longer than 256
            when installed; always torch under ``torch.compile``), "torch" or "scipy".

    Returns:
        A scalar, or the map for "none"; float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x = torch.zeros(1, 1, 5)                              # p = 1/2 everywhere
        >>> t = torch.tensor([[[0.0, 1.0, 1.0, 1.0, 0.0]]])       # phi = [1, 0, -1, 0, 1]
        >>> round(seglosses.boundary_loss(x, t, "binary").item(), 6)  # (1 + 0 - 1 + 0 + 1) / 2 / 5
        0.1
        >>> w = torch.tensor([[3.0, 1.0, 1.0, 1.0, 1.0]])          # the first pixel weighs 3
        >>> round(seglosses.boundary_loss(x, t, "binary", pixel_weight=w).item(), 6)  # (3 - 1 + 1) / 2 / 7
        0.214286

    References:
        Kervadec, Bouchtiba, Desrosiers, Granger, Dolz, Ben Ayed. Boundary loss for highly unbalanced
        segmentation. MIDL 2019. arXiv 1812.07032.
    """
    reduction = check_reduction(reduction)
    inp, p, g, mask, valid, spatial, spacing, classes, dt, backend = _setup(logits, target, mode, classes, spacing,
                                                                   ignore_index, from_logits, backend)
    if dist_maps is not None:
        phi = _given_maps("dist_maps", dist_maps, inp.n, inp.c, spatial, dt, p.device)
    else:
        with torch.no_grad():
            d_out, d_in, inside, outside, has = _two_sided(mask, valid, spatial, spacing, backend, dt)
            phi = torch.where(outside, d_out, torch.where(inside, 1 - d_in, 0.0))
            phi = torch.where(has, phi, 0.0).to(device=p.device, dtype=dt)
    if not inp.index:  # a NaN in a valid target element reaches the loss (the mask g > 0.5 alone would hide it)
        phi = torch.where(torch.isnan(g), g, phi)
    w = _weights(pixel_weight, logits, mode, inp, valid)
    return _pair_mean(phi * p, valid, classes, reduction, _map_shape(inp, spatial), w)


def hausdorff_dt_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, alpha: float = 2.0,
                      classes: Sequence[int] | None = None, spacing: float | Sequence[float] | None = None,
                      target_dist: torch.Tensor | None = None, ignore_index: int | None = None,
                      pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                      reduction: Reduction = "mean",
                      backend: Literal["auto", "torch", "scipy"] = "auto") -> torch.Tensor:
    r"""Hausdorff distance-transform loss (Karimi & Salcudean 2019, arXiv 1904.10030): squared errors weighted by
    the distance to the target's and to the prediction's boundaries.

    .. math::
        L = \frac{1}{|V| K} \sum_c \sum_{x \in V} (p_c(x) - g_c(x))^2 \left(d_{G_c}(x)^\alpha + d_{P_c}(x)^\alpha\right)

    d_G is the unsigned distance of each pixel to the boundary of the target mask g_c > 0.5 (inside: to the nearest
    outside pixel; outside: to the nearest inside pixel), d_P the same for the predicted mask p_c > 0.5, computed
    from the detached probabilities at every call (no gradient flows through it). A mask with no boundary (empty
    or full) has d = 0; MONAI's HausdorffDTLoss returns meaningless distances for a full one.

    Args:
        logits, target, mode, classes, spacing, ignore_index, from_logits, backend: as :func:`boundary_loss`.
        pixel_weight: as :func:`boundary_loss`: each pixel's term ``(p - g)^2 (d_G^alpha + d_P^alpha)`` times its
            weight, "mean" the weighted mean; d_G and d_P do not depend on it.
        alpha: the exponent (2 in the paper), >= 0.
        target_dist: precomputed ``d_G`` ``(N, C, *spatial)`` of every class (:func:`seglosses.distance_maps` with
            ``kind="unsigned"``); None computes it here.
        reduction: "mean" (over valid pixels and kept classes), "sum" or "none" (the map ``(N, K, *spatial)``).

    Returns:
        A scalar, or the map for "none"; float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x = torch.zeros(1, 1, 5)                              # p = 1/2: no pixel predicted, d_P = 0
        >>> t = torch.tensor([[[0.0, 1.0, 1.0, 1.0, 0.0]]])       # d_G = [1, 1, 2, 1, 1]
        >>> round(seglosses.hausdorff_dt_loss(x, t, "binary").item(), 6)  # 0.25 (1 + 1 + 4 + 1 + 1) / 5
        0.4

    References:
        Karimi, Salcudean. Reducing the Hausdorff Distance in Medical Image Segmentation with Convolutional Neural
        Networks. IEEE TMI 2019. arXiv 1904.10030.
    """
    reduction = check_reduction(reduction)
    alpha = check_scalar("alpha", alpha, low=0.0)
    inp, p, g, mask, valid, spatial, spacing, classes, dt, backend = _setup(logits, target, mode, classes, spacing,
                                                                   ignore_index, from_logits, backend)

    def field(m):
        d_out, d_in, inside, outside, has = _two_sided(m, valid, spatial, spacing, backend, dt)
        d = torch.where(outside, d_out, torch.where(inside, d_in, 0.0))
        return torch.where(has, d, 0.0).to(device=p.device, dtype=dt)

    def powered(d):  # d^alpha, 0 where there is no distance (no boundary, ignored pixels)
        return torch.where(d > 0, d.pow(alpha), 0.0)

    with torch.no_grad():
        if target_dist is not None:
            d_g = _given_maps("target_dist", target_dist, inp.n, inp.c, spatial, dt, p.device)
        else:
            d_g = field(mask)
        weight = powered(d_g) + powered(field((p.detach() > 0.5) & valid))
    w = _weights(pixel_weight, logits, mode, inp, valid)
    return _pair_mean((p - g) ** 2 * weight, valid, classes, reduction, _map_shape(inp, spatial), w)


class BoundaryLoss(LossModule):
    """Module form of :func:`boundary_loss`; ``forward(logits, target, dist_maps=None, pixel_weight=None)``."""

    _fn = staticmethod(boundary_loss)
    _inputs = ("dist_maps",)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, classes: Sequence[int] | None = None,
                     spacing: float | Sequence[float] | None = None, ignore_index: int | None = None,
                     from_logits: bool = True, reduction: Reduction = "mean",
                     backend: Literal["auto", "torch", "scipy"] = "auto") -> None: ...


class HausdorffDTLoss(LossModule):
    """Module form of :func:`hausdorff_dt_loss`; ``forward(logits, target, target_dist=None, pixel_weight=None)``."""

    _fn = staticmethod(hausdorff_dt_loss)
    _inputs = ("target_dist",)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, alpha: float = 2.0, classes: Sequence[int] | None = None,
                     spacing: float | Sequence[float] | None = None, ignore_index: int | None = None,
                     from_logits: bool = True, reduction: Reduction = "mean",
                     backend: Literal["auto", "torch", "scipy"] = "auto") -> None: ...

