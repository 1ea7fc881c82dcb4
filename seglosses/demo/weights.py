"""Per-pixel weight maps for the demo's ``weighted(...)`` losses: border weights computed from the masks, or maps read
from ``DIR/weights/*.png``."""

from __future__ import annotations

import os

import torch

import seglosses


def boundary_weights(masks: torch.Tensor, *, w0: float = 5.0, sigma: float = 2.0,
                     ignore_index: int | None = 255) -> torch.Tensor:
    r"""Weights that stress the pixels near a class border (the border term of U-Net's weight map):

    .. math:: w(x) = 1 + w_0 \exp\left(-\frac{d(x)^2}{2 \sigma^2}\right)

    with d(x) the Euclidean distance (pixels) from x to the nearest border pixel, a pixel with a 4-neighbour of
    another label (ignored pixels take part in no border). Ronneberger et al.'s map also separates touching objects
    of one class with the distances to the two nearest objects; semantic masks have no objects, so only the border
    term is kept here. Pixels of ``ignore_index`` get weight 0 (the losses ignore them anyway).

    Args:
        masks: ``(N, H, W)`` integer class maps.
        w0: the weight added on a border.
        sigma: the border term's width in pixels.
        ignore_index: the label of ignored pixels, or None.

    Returns:
        ``(N, H, W)`` float32 weights, 1 + w0 on the borders, near 1 far from them.

    Example:
        >>> m = torch.tensor([[[0, 0, 0, 1, 1]]])  # borders at 2 and 3: d = 2, 1, 0, 0, 1
        >>> [round(v, 3) for v in boundary_weights(m)[0, 0].tolist()]  # 1 + 5 exp(-d^2 / 8)
        [4.033, 5.412, 6.0, 6.0, 5.412]

    References:
        Ronneberger, Fischer, Brox. U-Net: Convolutional Networks for Biomedical Image Segmentation. MICCAI 2015,
        eq. 2. arXiv 1505.04597.
    """
    if not isinstance(masks, torch.Tensor) or masks.dim() != 3 or masks.is_floating_point():
        raise ValueError(f"`masks` must be an integer tensor (N, H, W); got "
                         f"{tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__}")
    if not (w0 >= 0 and sigma > 0):
        raise ValueError(f"`w0` must be >= 0 and `sigma` > 0; got w0={w0}, sigma={sigma}")
    valid = torch.ones_like(masks, dtype=torch.bool) if ignore_index is None else masks != ignore_index
    border = torch.zeros_like(valid)
    for dim in (1, 2):
        a, b = masks.narrow(dim, 0, masks.shape[dim] - 1), masks.narrow(dim, 1, masks.shape[dim] - 1)
        both = valid.narrow(dim, 0, masks.shape[dim] - 1) & valid.narrow(dim, 1, masks.shape[dim] - 1)
        change = (a != b) & both
        border.narrow(dim, 0, masks.shape[dim] - 1).logical_or_(change)
        border.narrow(dim, 1, masks.shape[dim] - 1).logical_or_(change)
    d = seglosses.edt(~border, ndim=2).to(torch.float32)  # +inf in an image with no border: weight 1
    w = 1 + w0 * torch.exp(-(d * d) / (2 * sigma * sigma))
    return torch.where(valid, w, 0.0)


def load_weight_folder(path) -> torch.Tensor:
    """The weight maps ``path/weights/<stem>.png`` of every mask ``path/masks/<stem>.png``, in the stem order of
    :func:`seglosses.demo.data.load_folder`: each pixel's integer value (8- or 16-bit PNG) is its weight.

    Raises:
        ValueError: no ``weights/`` folder, a mask without a weight map (or the reverse), a map whose size differs
            from its mask's, or a map that is not single-channel. The message names the file.
    """
    import numpy as np
    from PIL import Image

    from seglosses.demo import data

    folder = os.path.join(os.fspath(path), "weights")
    if not os.path.isdir(folder):
        raise ValueError(f"{path} has no weights/ subfolder; weighted(...) losses with --weight-map folder read "
                         f"DIR/weights/<stem>.png, one per mask")
    masks = data._list(os.path.join(os.fspath(path), "masks"), (".png",))
    maps = data._list(folder, (".png",))
    if set(masks) != set(maps):
        odd = sorted(set(masks) ^ set(maps))
        raise ValueError(f"{folder} must hold one weight map per mask, by stem; these stems differ: "
                         f"{data._stems(odd)}")

    def read(im, file):
        if im.mode not in ("L", "I", "I;16", "I;16L", "I;16B", "F"):
            raise ValueError(f"weight map {file} has mode {im.mode!r}; expected a single-channel image")
        return np.asarray(im, dtype=np.float32)

    out = []
    for stem in sorted(masks):
        w = data._read(Image, os.path.join(folder, maps[stem]), read)
        m = data._read(Image, os.path.join(os.fspath(path), "masks", masks[stem]), data._mask_array)
        if w.shape != m.shape:
            raise ValueError(f"weight map {os.path.join(folder, maps[stem])} has size {w.shape}; its mask has "
                             f"{m.shape}")
        out.append(w)
    return torch.from_numpy(np.stack(out))
