"""Skeletons of segmentation masks, 1-D to 3-D, in torch (any device, no host sync): the soft skeleton of clDice
(Shit et al. 2021) and the skeleton maps of Skeleton Recall (Kirchhoff et al. 2024).

- :func:`soft_skeleton`: the paper's iterated soft erosion / soft opening (Algorithm 1), exactly as the authors'
  ``cldice_loss/pytorch/soft_skeleton.py``: erosion is a min-pool over the cross (the minimum of the 3-long windows
  along each axis), dilation a max-pool over the full 3^d window, the image's outside is neutral (pools ignore it).
- :func:`skeleton_maps`: Skeleton Recall's target map S per class: the skeleton of the class mask, dilated twice by
  the cross (the authors' ``dilation(dilation(skel))``, a tube of radius 2) and kept inside the mask. The torch
  skeleton is the morphological (Lantuejoul) skeleton, the soft skeleton of the hard mask run to the end with the
  image's outside as background; ``backend="skimage"`` gives the authors' thinning (scikit-image's ``skeletonize``:
  Zhang-Suen in 2-D, Lee in 3-D). The two differ: the morphological skeleton is not always one pixel thin nor
  connected (a thick diagonal band gives scattered points), the thinning is; on thin structures (lines, 3-wide bands
  and tubes) they give the same center line up to its end pixels (tests/test_topology.py).
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from seglosses.core.args import Mode, check_one_of
from seglosses.distance import _Array, class_masks

#: The skeletonizations of :func:`skeleton_maps`.
BACKENDS = ("auto", "torch", "skimage")
#: How many times Skeleton Recall dilates the skeleton by the cross (the authors' SkeletonTransform, do_tube=True).
TUBE = 2

_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _max_along(x: torch.Tensor, axis: int, nd: int) -> torch.Tensor:
    """The max over the 3-long window along spatial ``axis`` (the outside ignored)."""
    k, p = [1] * nd, [0] * nd
    k[axis], p[axis] = 3, 1
    return _POOL[nd](x, tuple(k), 1, tuple(p))


def soft_erode(x: torch.Tensor, nd: int) -> torch.Tensor:
    """Min-pool over the cross: the minimum of the 3-long min-pools along each axis (the authors' soft_erode)."""
    out = -_max_along(-x, 0, nd)
    for axis in range(1, nd):
        out = torch.min(out, -_max_along(-x, axis, nd))
    return out


def soft_dilate(x: torch.Tensor, nd: int) -> torch.Tensor:
    """Max-pool over the 3^d window (the authors' soft_dilate)."""
    return _POOL[nd](x, 3, 1, 1)


def _cross_dilate(x: torch.Tensor, nd: int) -> torch.Tensor:
    """Max over the cross (scikit-image's default footprint, connectivity 1)."""
    out = _max_along(x, 0, nd)
    for axis in range(1, nd):
        out = torch.max(out, _max_along(x, axis, nd))
    return out


def _skeleton(x: torch.Tensor, iterations: int, nd: int, valid: torch.Tensor | None = None) -> torch.Tensor:
    """The authors' soft_skel; the erosion inside each opening is the next iteration's image, computed once. With
    ``valid`` (bool, the shape of ``x``), the other pixels are outside the image: neutral in every pool (+inf for
    the erosions, -inf for the dilations, selected, so their values reach nothing) and 0 in the skeleton."""
    def erode(v):
        return soft_erode(v if valid is None else torch.where(valid, v, torch.inf), nd)

    def delta(v, e):
        d = F.relu(v - soft_dilate(e if valid is None else torch.where(valid, e, -torch.inf), nd))
        return d if valid is None else torch.where(valid, d, 0.0)

    e = erode(x)
    skel = delta(x, e)
    for _ in range(iterations):
        x = e
        e = erode(x)
        d = delta(x, e)
        skel = skel + F.relu(d - skel * d)
    return skel


def _check_iterations(iterations) -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise TypeError(f"`iterations` must be an int; got {type(iterations).__name__}")
    if iterations < 0:
        raise ValueError(f"`iterations` must be >= 0; got {iterations}")
    return iterations


def soft_skeleton(x: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    r"""The soft skeleton of clDice (Shit et al. 2021, Algorithm 1), differentiable, for maps ``(N, C, *spatial)``
    with 1 to 3 spatial axes.

    .. math::
        S_0 = \mathrm{relu}(I - \mathrm{open}(I)), \quad
        S_{k+1} = S_k + \mathrm{relu}(\delta_k - S_k \delta_k), \quad
        \delta_k = \mathrm{relu}(E^{k+1}(I) - \mathrm{open}(E^{k+1}(I)))

    with E the soft erosion (min-pool over the cross: ``-maxpool(-x)`` along each axis with a 3-long window, the
    minimum over axes), :math:`\mathrm{open} = D \circ E`, D the soft dilation (max-pool over 3^d), k from 0 to
    ``iterations`` - 1. Pools ignore the image's outside (as the authors' ``F.max_pool`` padding does).

    Args:
        x: ``(N, C, *spatial)`` values in [0, 1] (probabilities or a mask), 1 to 3 spatial axes, floating point.
        iterations: k, the number of erosions after the first opening (>= 0); a structure thicker than about
            ``2 * iterations`` is skeletonized only partly. The authors' code runs 10.

    Returns:
        The soft skeleton, the shape and dtype of ``x`` (computed in float32 for half-precision input).

    Example:
        >>> import torch
        >>> band = torch.zeros(1, 1, 5, 7)
        >>> band[..., 1:4, :] = 1                  # a band 3 rows high
        >>> soft_skeleton(band)[0, 0].int().tolist()[2]  # its middle row: the skeleton
        [1, 1, 1, 1, 1, 1, 1]

    References:
        Shit, Paetzold, Sekuboyina, et al. clDice - a Novel Topology-Preserving Loss Function for Tubular Structure
        Segmentation. CVPR 2021. arXiv 2003.07311.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`x` must be a torch.Tensor; got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"`x` must be a floating-point tensor; got dtype {x.dtype}")
    nd = x.dim() - 2
    if not 1 <= nd <= 3:
        raise ValueError(f"`x` must have shape (N, C, *spatial) with 1 to 3 spatial axes; got {tuple(x.shape)}")
    iterations = _check_iterations(iterations)
    if x.numel() == 0:
        return x.clone()
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    return _skeleton(x.to(dt), iterations, nd).to(x.dtype)


def hard_skeleton(mask: torch.Tensor, nd: int) -> torch.Tensor:
    """The morphological skeleton of a bool mask ``(..., *spatial)`` (``nd`` spatial axes): the soft skeleton of the
    0/1 mask with the image's outside as background, run until the mask is eroded away (``(min side - 1) // 2``
    erosions suffice: a pixel left after k erosions by the cross has k mask pixels on both sides along every axis)."""
    if mask.numel() == 0:
        return mask.clone()
    lead = mask.shape[:-nd]
    spatial = mask.shape[-nd:]
    x = mask.reshape(-1, 1, *spatial).to(torch.float32)
    x = F.pad(x, (1, 1) * nd)  # the outside is background (erodes the mask), as in scikit-image
    iterations = max((min(spatial) - 1) // 2, 0)
    skel = _skeleton(x, iterations, nd)
    skel = skel[(slice(None), slice(None)) + (slice(1, -1),) * nd]
    return (skel > 0.5).reshape(*lead, *spatial)


def tube(skel: torch.Tensor, mask: torch.Tensor, nd: int) -> torch.Tensor:
    """Skeleton Recall's S: the skeleton dilated :data:`TUBE` times by the cross, inside ``mask`` (bool, same shape
    ``(..., *spatial)``)."""
    if skel.numel() == 0:
        return skel & mask
    spatial = skel.shape[-nd:]
    x = skel.reshape(-1, 1, *spatial).to(torch.float32)
    for _ in range(TUBE):
        x = _cross_dilate(x, nd)
    return (x > 0.5).reshape(skel.shape) & mask


def _skimage_maps(mask: np.ndarray, nd: int) -> np.ndarray:
    if importlib.util.find_spec("skimage") is None:
        raise ImportError("backend='skimage' needs scikit-image (pip install scikit-image)")
    from skimage.morphology import dilation, skeletonize

    if nd == 1:
        raise ValueError("backend='skimage' needs 2 or 3 spatial axes (scikit-image skeletonizes images and volumes)")
    out = np.zeros(mask.shape, dtype=bool)
    flat, res = mask.reshape(-1, *mask.shape[-nd:]), out.reshape(-1, *mask.shape[-nd:])
    for i, m in enumerate(flat):
        if m.any():
            s = skeletonize(m)
            for _ in range(TUBE):
                s = dilation(s)
            res[i] = s & m
    return out


def skeleton_maps(target: _Array, mode: Mode, *, num_classes: int | None = None, batched: bool = False,
                  ndim: int | None = None, ignore_index: int | None = None,
                  backend: Literal["auto", "torch", "skimage"] = "auto") -> _Array:
    r"""Skeleton Recall's per-class target maps S, for a ``DataLoader`` worker or a dataset transform (the
    ``skeletons=`` input of :func:`seglosses.skeleton_recall_loss`, which then skeletonizes nothing).

    For each class c with mask :math:`m_c` (the masks of :func:`seglosses.distance_maps`: "binary" ``t > 0.5``,
    "multilabel" ``t_c > 0.5``, "multiclass" ``t = c``; ``ignore_index`` in no mask), per sample:

    .. math::
        S_c = (\mathrm{skel}(m_c) \oplus K \oplus K) \cap m_c

    with K the cross (connectivity 1), as the authors' SkeletonTransform (``dilation(dilation(skeletonize(m)))``,
    masked by the segmentation). The authors skeletonize the union of the foreground classes and split the tube by
    label; here each class is skeletonized on its own (the same map where classes do not touch).

    Args:
        target: ``torch.Tensor`` or ``np.ndarray``, shaped as for :func:`seglosses.distance_maps`.
        mode: "binary", "multiclass" or "multilabel".
        num_classes: C, required for "multiclass"; for the other modes, if given, it must be the channel count.
        batched: whether ``target`` has a leading batch axis.
        ndim: the number of spatial axes, 1, 2 or 3 (default: as :func:`seglosses.distance_maps` infers it).
        ignore_index: target value that belongs to no class.
        backend: "torch" (the morphological skeleton, on the target's device; "auto" is "torch", the skeleton
            :func:`seglosses.skeleton_recall_loss` computes) or "skimage" (scikit-image's thinning on the host, the
            authors' map; 2-D and 3-D).

    Returns:
        float32 maps of 0 and 1 in the target's container: ``(C, *spatial)``, or ``(N, C, *spatial)`` with
        ``batched=True``; C = 1 for "binary".

    Example:
        >>> import numpy as np
        >>> t = np.zeros((5, 9), dtype=np.int64)
        >>> t[1:4, 1:8] = 1                        # a 3 x 7 rectangle of class 1
        >>> s = skeleton_maps(t, "multiclass", num_classes=2)
        >>> int(s[1].sum()), s[1, 2].astype(int).tolist()  # its middle row, and a tube around it
        (21, [0, 1, 1, 1, 1, 1, 1, 1, 0])

    References:
        Kirchhoff, Rokuss, Roy, et al. Skeleton Recall Loss for Connectivity Conserving and Resource Efficient
        Segmentation of Thin Tubular Structures. ECCV 2024. arXiv 2404.03010.
    """
    backend = check_one_of("backend", backend, BACKENDS)
    mask, nd, is_np = class_masks(target, mode, num_classes=num_classes, batched=batched, ndim=ndim,
                                  ignore_index=ignore_index)
    if backend == "skimage":
        m = mask if is_np else mask.cpu().numpy()
        out = _skimage_maps(np.asarray(m, dtype=bool), nd).astype(np.float32)
        return out if is_np else torch.from_numpy(out).to(target.device)
    m = torch.from_numpy(np.asarray(mask, dtype=bool)) if is_np else mask
    with torch.no_grad():
        s = tube(hard_skeleton(m, nd), m, nd).to(torch.float32)
    return s.numpy() if is_np else s
