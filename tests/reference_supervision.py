"""Float64 NumPy references of deep supervision's target downsampling (tests/test_supervision.py and
tests/keras/test_supervision.py): nearest-exact by index arithmetic, area pooling by explicit window loops and by
block means, written from the definitions in docs/semantics.md ("Deep supervision"), not from the code."""

import math

import numpy as np


def np_nearest(a, size):
    """Nearest-exact on the last len(size) axes: output j reads the input pixel whose centre is nearest
    j's centre, floor((j + 0.5) * n_in / n_out)."""
    rank = len(size)
    for k, n_out in enumerate(size):
        axis = a.ndim - rank + k
        n_in = a.shape[axis]
        src = np.floor((np.arange(n_out) + 0.5) * n_in / n_out).astype(int)
        a = np.take(a, src, axis=axis)
    return a


def np_area(a, size, ignore=None):
    """Area pooling of the last len(size) axes, window j = [floor(j n_in / n_out), ceil((j + 1) n_in / n_out)),
    the mean over the entries that are not ``ignore`` (``ignore`` where there is none), by explicit loops."""
    rank = len(size)
    spatial = a.shape[-rank:]
    lead = a.shape[:-rank]
    flat = a.reshape((-1,) + spatial).astype(np.float64)
    out = np.empty((flat.shape[0],) + tuple(size))
    windows = [[(math.floor(j * n / m), math.ceil((j + 1) * n / m)) for j in range(m)] for n, m in zip(spatial, size)]
    for idx in np.ndindex(*size):
        sl = tuple(slice(*windows[k][j]) for k, j in enumerate(idx))
        for r in range(flat.shape[0]):
            block = flat[(r,) + sl].ravel()
            if ignore is not None:
                block = block[block != ignore]
            out[(r,) + idx] = block.mean() if block.size else ignore
    return out.reshape(lead + tuple(size))


def np_blocks(a, factor):
    """Block means of the last two axes (sizes divisible by ``factor``), a second reference for the area rule."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // factor, factor, w // factor, factor).mean(axis=(-3, -1))
