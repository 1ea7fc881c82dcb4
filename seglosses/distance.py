"""Exact Euclidean distance transforms of masks, batched, in 1-D, 2-D and 3-D, and the distance maps of boundary losses.

:func:`edt` is the exact Euclidean distance transform with the convention of
``scipy.ndimage.distance_transform_edt``: every True element gets its distance to the nearest False element of its
batch slice, False elements get 0. Torch tensors are transformed with torch ops on their own device (no host sync, no
Python loop over batch items), by the separable exact squared transform of Felzenszwalb & Huttenlocher (2012), in
its brute-force form: one pass per spatial axis of a min-plus convolution with a parabola, which vectorises over all
lines of all batch items at once. NumPy arrays (and CPU tensors, when SciPy is installed) go to SciPy slice by slice.
With unit spacing the torch transform works in integers and its float64 result is bitwise equal to SciPy's.

:func:`signed_distance` is the map of the boundary loss (Kervadec et al. 2019), :func:`boundary_distance` the
unsigned field of the Hausdorff-distance losses (Karimi & Salcudean 2019), and :func:`distance_maps` builds either
per class from a segmentation target, in a ``DataLoader`` worker or a dataset transform.

None of these functions is differentiable: their inputs are masks.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from typing import Literal, TypeVar

import numpy as np
import torch
from numpy.typing import DTypeLike

from seglosses.core.args import Mode, check_bool, check_ignore_index, check_mode, check_one_of, check_spacing
from seglosses.core.docs import fill_doc

__all__ = ["boundary_distance", "distance_maps", "edt", "signed_distance"]

BACKENDS = ("auto", "torch", "scipy")
KINDS = ("signed", "unsigned")

#: A mask or target and the maps made of it: a ``torch.Tensor`` or an ``np.ndarray``, the same in and out.
_Array = TypeVar("_Array", torch.Tensor, np.ndarray)

#: Largest number of elements of the ``(lines, n, n)`` temporary of one min-plus block: cache-sized on CPU,
#: larger on accelerators (fewer kernel launches).
_BLOCK_CPU = 2**19
_BLOCK_DEVICE = 2**24
#: Unit spacing runs in int32 while every squared distance stays below this (the int32 sentinel), else in int64.
_INT32_BOUND = 2**30


# ---------------------------------------------------------------------------------------------------------------
# argument checks (static facts only: types, shapes, Python scalars)
# ---------------------------------------------------------------------------------------------------------------


def _is_array(x) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray))


def _check_mask(mask, name: str = "mask"):
    """A bool view of a bool or integer mask (torch.Tensor or np.ndarray): nonzero is True."""
    if not _is_array(mask):
        raise TypeError(f"`{name}` must be a torch.Tensor or np.ndarray; got {type(mask).__name__}")
    if isinstance(mask, torch.Tensor):
        if mask.dtype == torch.bool:
            return mask
        if mask.is_floating_point() or mask.is_complex():
            raise TypeError(f"`{name}` must be a bool or integer mask; got dtype {mask.dtype} "
                            f"(threshold it first, for example `{name} > 0.5`)")
        return mask != 0
    if mask.dtype == np.bool_:
        return mask
    if mask.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must be a bool or integer mask; got dtype {mask.dtype} "
                        f"(threshold it first, for example `{name} > 0.5`)")
    return mask != 0


def _check_ndim(ndim, rank: int, name: str = "mask") -> int:
    """The number of trailing spatial axes: given (1..3, at most the rank) or inferred from the rank."""
    if ndim is None:
        if rank < 1:
            raise ValueError(f"`{name}` must have at least one axis; got a 0-d array")
        ndim = rank if rank <= 3 else rank - 2
        if ndim > 3:
            raise ValueError(f"`ndim` could not be inferred for `{name}` of rank {rank} (rank - 2 = {ndim} spatial "
                             f"axes, at most 3 are supported); pass `ndim` explicitly")
        return ndim
    if isinstance(ndim, bool) or not isinstance(ndim, int):
        raise TypeError(f"`ndim` must be an int (1, 2 or 3) or None; got {type(ndim).__name__}")
    if not 1 <= ndim <= 3:
        raise ValueError(f"`ndim` must be 1, 2 or 3; got {ndim}")
    if ndim > rank:
        raise ValueError(f"`ndim` must be at most the rank of `{name}` ({rank}); got {ndim}")
    return ndim


def _check_spacing(spacing, ndim: int) -> tuple[float, ...] | None:
    """None, or ``ndim`` positive finite floats (one float is repeated over the axes): the rule of
    :func:`seglosses.core.args.check_spacing`, with this module's wording of the count error."""
    return check_spacing(spacing, ndim, message="`spacing` must hold one value per spatial axis ({ndim}); got {count} "
                                                "values")


def _scipy_available() -> bool:
    return importlib.util.find_spec("scipy") is not None


#: "auto" on the CPU: torch while every spatial axis is at most this long (its O(n) work per element is then cheaper
#: than SciPy's slice loop; measured in docs/benchmarks.md, "Design measurements quoted from the code"), SciPy's
#: linear-time transform beyond.
AUTO_TORCH_MAX_SIDE = 256


def check_backend(backend) -> str:
    """One of :data:`BACKENDS` (also the distance-based losses' rule)."""
    return check_one_of("backend", backend, BACKENDS)


def _check_backend(backend, x, ndim) -> str:
    """The backend that will run: "torch" or "scipy". "auto": torch on devices and for short axes (at most
    ``AUTO_TORCH_MAX_SIDE``), SciPy on the CPU for longer ones (when installed)."""
    if check_backend(backend) != "auto":
        return backend
    cpu = isinstance(x, np.ndarray) or x.device.type == "cpu"
    long_axes = max(x.shape[x.ndim - ndim:], default=0) > AUTO_TORCH_MAX_SIDE
    return "scipy" if cpu and long_axes and _scipy_available() else "torch"


def _check_dtype(dtype, x):
    """The output dtype: given (a floating dtype of the input's framework) or float64, float32 on accelerators."""
    if isinstance(x, np.ndarray):
        if dtype is None:
            return np.dtype(np.float64)
        try:
            out = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"`dtype` must be a NumPy floating dtype for a NumPy `mask`; got {dtype!r}") from None
        if out.kind != "f":
            raise TypeError(f"`dtype` must be a NumPy floating dtype for a NumPy `mask`; got {out}")
        return out
    if dtype is None:
        return torch.float64 if x.device.type == "cpu" else torch.float32
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"`dtype` must be a floating torch.dtype for a torch.Tensor `mask`; got {dtype!r}")
    return dtype


def _scipy_ndimage():
    try:
        from scipy import ndimage
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("backend='scipy' needs SciPy, which is not installed: pip install seglosses[distance] "
                          "(or use backend='torch')") from e
    return ndimage


# ---------------------------------------------------------------------------------------------------------------
# the torch transform
# ---------------------------------------------------------------------------------------------------------------


def _sqrt_rn(d: torch.Tensor) -> torch.Tensor:
    """Correctly rounded float64 square root of ``d >= 0`` (as NumPy's and SciPy's ``sqrt``).

    ``torch.sqrt`` on CPU may be one ulp off (vectorised approximation); one Newton step with the exact residual
    ``d - s^2`` (Dekker's product, no FMA needed) rounds it correctly. Checked against ``np.sqrt`` on every integer
    below 2**30 (all squared distances of the int32 path); on accelerators, whose sqrt is exact, it changes nothing.
    """
    s = d.sqrt()
    c = s * 134217729.0  # 2**27 + 1: Veltkamp's split of s into 26-bit halves hi + lo
    t = c - s
    hi = c.sub_(t)
    lo = torch.sub(s, hi, out=t)
    p = s * s
    e = (hi * hi).sub_(p).addcmul_(hi, lo, value=2).addcmul_(lo, lo)  # s^2 = p + e exactly (the products are exact)
    r = torch.sub(d, p, out=p).sub_(e)  # d - s^2
    # s + r / (2 s); NaN (from s = 0 or inf, where s is already exact) -> no correction
    return r.div_(s).mul_(0.5).nan_to_num_(nan=0.0).add_(s)


def _first_pass(m: torch.Tensor, scale: float | None, big, cdt) -> torch.Tensor:
    """Squared distance along the last axis to the nearest False of the line, in O(n) by cummax/cummin.

    ``big`` (the sentinel) where the line has no False element.
    """
    n = m.shape[-1]
    pos = torch.arange(n, device=m.device, dtype=torch.int32)
    free = ~m
    left = torch.where(free, pos, -n).cummax(-1).values  # last False at or before x (-n: none)
    right = torch.where(free, pos, 2 * n).flip(-1).cummin(-1).values.flip(-1)  # first False at or after x (2n: none)
    gap = torch.minimum(pos - left, right - pos)  # >= n: no False on the line
    g = gap.to(cdt) if scale is None else gap.to(cdt) * scale
    return torch.where(gap >= n, torch.full((), big, dtype=cdt, device=m.device), g * g)


def _min_plus(d: torch.Tensor, p: torch.Tensor, block: int) -> torch.Tensor:
    """``out[a, x, b] = min_y d[a, y, b] + p[x, y]`` for ``d`` of shape ``(A, n, B)``, in blocks of <= ``block``."""
    pre, n, post = d.shape
    out = torch.empty_like(d)
    if n * n * post <= block:  # whole (x, y, b) blocks, several of them at once
        cp, cq, cx = max(1, block // (n * n * post)), post, n
    else:  # split the output positions x first, keeping the contiguous inner positions b together
        cq = post if n * post <= block else max(1, block // n)
        cp, cx = 1, max(1, block // (n * cq))
    for a in range(0, pre, cp):
        for b in range(0, post, cq):
            blk = d[a:a + cp, None, :, b:b + cq]  # (cp, 1, n, cq)
            for x in range(0, n, cx):
                out[a:a + cp, x:x + cx, b:b + cq] = torch.amin(blk + p[x:x + cx, :, None], dim=2)
    return out


@torch.no_grad()
def _edt_torch(m: torch.Tensor, ndim: int, spacing: tuple[float, ...] | None, out_dtype: torch.dtype) -> torch.Tensor:
    """EDT of a bool tensor ``(*batch, *spatial)`` over its last ``ndim`` axes, with torch ops on its device."""
    shape = m.shape
    spatial = tuple(shape[m.dim() - ndim:])
    if m.numel() == 0:
        return torch.zeros(shape, dtype=out_dtype, device=m.device)
    m = m.reshape(-1, *spatial)
    if spacing is None:
        # exact integer arithmetic: every true squared distance is < the sentinel, and sentinel + (n - 1)^2 fits
        bound = sum((n - 1) ** 2 for n in spatial)
        cdt, big = (torch.int32, _INT32_BOUND) if bound < _INT32_BOUND else (torch.int64, 2**62)
    else:
        cdt, big = (torch.float64 if out_dtype == torch.float64 else torch.float32), math.inf
    block = _BLOCK_CPU if m.device.type == "cpu" else _BLOCK_DEVICE
    # the contiguous last axis by cummax/cummin, then the others by min-plus (reducing over a strided axis, the
    # inner positions vectorised)
    d = _first_pass(m, None if spacing is None else spacing[-1], big, cdt)
    for k in range(ndim - 1):
        n = spatial[k]
        pre = m.shape[0] * math.prod(spatial[:k])
        post = math.prod(spatial[k + 1:])
        r = torch.arange(n, device=m.device, dtype=cdt)
        diff = r[:, None] - r[None, :]
        if spacing is not None:
            diff = diff * spacing[k]
        # a line with no False anywhere stays at exactly `big` (its minimum is big + 0 at y = x)
        d = _min_plus(d.reshape(pre, n, post), diff * diff, block).view(d.shape)
    if out_dtype == torch.float64:
        dist = _sqrt_rn(d.to(torch.float64))
    else:
        wide = torch.float32 if out_dtype.itemsize < 4 else out_dtype
        dist = d.to(wide).sqrt_()
    if spacing is None:
        dist.masked_fill_(d >= big, math.inf)
    return dist.to(out_dtype).reshape(shape)


# ---------------------------------------------------------------------------------------------------------------
# the SciPy transform
# ---------------------------------------------------------------------------------------------------------------


def _edt_scipy(m: np.ndarray, ndim: int, spacing: tuple[float, ...] | None) -> np.ndarray:
    """EDT of a bool array ``(*batch, *spatial)`` by SciPy, slice by slice, float64; inf on all-True slices."""
    ndimage = _scipy_ndimage()
    if m.size == 0:
        return np.zeros(m.shape, dtype=np.float64)
    spatial = m.shape[m.ndim - ndim:]
    flat = m.reshape(-1, *spatial)
    out = np.empty(flat.shape, dtype=np.float64)
    for i, s in enumerate(flat):
        if s.all():  # no False element: SciPy would measure to a point outside the grid
            out[i] = np.inf
        else:
            out[i] = ndimage.distance_transform_edt(s, sampling=spacing)
    return out.reshape(m.shape)


def _edt(m, ndim: int, spacing, backend: str, out_dtype):
    """EDT of a bool mask in its own container (NumPy array or tensor on its device), in ``out_dtype``."""
    if isinstance(m, np.ndarray):
        if backend == "scipy":
            return _edt_scipy(m, ndim, spacing).astype(out_dtype, copy=False)
        tdtype = torch.from_numpy(np.empty(0, dtype=out_dtype)).dtype
        m = m if m.flags.writeable and m.flags.c_contiguous else np.array(m)  # torch.from_numpy needs both
        return _edt_torch(torch.from_numpy(m), ndim, spacing, tdtype).numpy()
    if backend == "torch":
        return _edt_torch(m, ndim, spacing, out_dtype)
    out = _edt_scipy(m.detach().cpu().numpy(), ndim, spacing)
    return torch.from_numpy(out).to(device=m.device, dtype=out_dtype)


def _prepare(mask, ndim, spacing, backend, dtype, name="mask"):
    m = _check_mask(mask, name)
    nd = _check_ndim(ndim, m.ndim, name)
    return m, nd, _check_spacing(spacing, nd), _check_backend(backend, m, nd), _check_dtype(dtype, m)


_SHARED_ARGS = """
ndim: the number of trailing spatial axes, 1, 2 or 3. Default: every axis of a mask of rank
    <= 3 (a ``(D, H, W)`` mask is one volume: pass ``ndim=2`` for a batch of images ``(N, H, W)``), else
    rank - 2 (``(N, C, H, W)`` -> 2, ``(N, C, D, H, W)`` -> 3).
spacing: the element size along each spatial axis (SciPy's ``sampling``): None (unit), one positive float,
    or ``ndim`` of them.
backend: "auto" (torch, except SciPy for NumPy arrays and CPU tensors with an axis longer than 256 when
    SciPy is installed), "torch"
    (torch ops on the tensor's device; NumPy input runs on CPU and comes back as NumPy) or "scipy"
    (``scipy.ndimage.distance_transform_edt`` per slice; tensors go through host memory).
"""

#: The Args entries ``ndim``, ``spacing`` and ``backend`` of the transforms.
_shared_doc = fill_doc(shared=_SHARED_ARGS)


@_shared_doc
def edt(mask: _Array, *, ndim: int | None = None, spacing: float | Sequence[float] | None = None,
        backend: Literal["auto", "torch", "scipy"] = "auto", dtype: torch.dtype | DTypeLike | None = None) -> _Array:
    r"""Exact Euclidean distance transform of a batch of masks: for each True element, the distance to the nearest
    False element of the same slice.

    .. math::

        \operatorname{edt}(m)(x) = \min_{y \,:\, m(y) = 0} \Big(\sum_{k=1}^{d} s_k^2 (x_k - y_k)^2\Big)^{1/2}

    for x in the slice (0 where m(x) = 0), with d = ``ndim`` spatial axes and s_k the spacing along axis k; the
    convention of ``scipy.ndimage.distance_transform_edt``. A slice with no False element gets +inf everywhere
    (SciPy returns distances to a point outside the grid there, which mean nothing).

    The torch backend runs the separable exact squared transform: starting from D = 0 at False elements and a
    sentinel at True ones, it replaces D, one spatial axis after the other, by its min-plus convolution with a
    parabola,

    .. math::

        D'(x) = \min_y \big(D(y) + s_k^2 (x - y)^2\big) \quad \text{along axis } k,

    which is exact (Felzenszwalb & Huttenlocher compute the same minimum in linear time; the brute-force form here
    costs O(n^2) per line of length n but runs as a few batched tensor ops, in blocks of bounded memory); the first
    axis is done in O(n) with cumulative max/min. No host sync, no loop over batch items. With unit spacing the
    arithmetic is in integers and the float64 result is bitwise equal to SciPy's; with ``spacing`` it is float64
    (relative error a few 1e-16, tested to 1e-12; float32 for a float32 output, about 1e-6).

    Args:
        mask: bool or integer (nonzero is True) ``torch.Tensor`` or ``np.ndarray`` of shape ``(*batch, *spatial)``.
        {shared}
        dtype: output dtype (floating, of the input's framework). Default: float64, except float32 for tensors on
            accelerators (CUDA, MPS, ...).

    Returns:
        The distances, of the mask's shape and container (a tensor on the mask's device, or a NumPy array): 0 at
        False elements, +inf on slices without any False element. Not differentiable (computed under ``no_grad``).

    Example:
        >>> import numpy as np, torch
        >>> edt(np.array([[0, 1, 1, 1, 0]], dtype=bool))
        array([[0., 1., 2., 1., 0.]])
        >>> edt(torch.tensor([[1, 1], [1, 0]]), backend="torch", spacing=(2.0, 1.0))
        tensor([[2.2361, 2.0000],
                [1.0000, 0.0000]], dtype=torch.float64)
        >>> edt(np.ones((2, 3), dtype=bool)).max()  # no False element: inf
        np.float64(inf)

    References:
        P. F. Felzenszwalb and D. P. Huttenlocher, "Distance Transforms of Sampled Functions", Theory of Computing
        8 (2012), 415-428.
    """
    m, nd, sp, be, out_dtype = _prepare(mask, ndim, spacing, backend, dtype)
    return _edt(m, nd, sp, be, out_dtype)


def _both(m, nd, sp, be, out_dtype):
    """edt(m) and edt(~m) in one batched call."""
    if isinstance(m, np.ndarray):
        e = _edt(np.stack([m, ~m]), nd, sp, be, out_dtype)
    else:
        e = _edt(torch.stack([m, ~m]), nd, sp, be, out_dtype)
    return e[0], e[1]


def _finite_or_zero(x):
    """Slices without a boundary come out as +-inf at every element: 0 there."""
    if isinstance(x, np.ndarray):
        return np.where(np.isfinite(x), x, 0).astype(x.dtype, copy=False)
    return torch.where(torch.isfinite(x), x, torch.zeros((), dtype=x.dtype, device=x.device))


@_shared_doc
def signed_distance(mask: _Array, *, ndim: int | None = None, spacing: float | Sequence[float] | None = None,
                    backend: Literal["auto", "torch", "scipy"] = "auto",
                    dtype: torch.dtype | DTypeLike | None = None) -> _Array:
    r"""Signed distance map of the boundary loss (Kervadec et al. 2019), per slice.

    .. math::

        \phi(x) = \begin{cases} \operatorname{edt}(\lnot m)(x) & m(x) = 0 \\
                                -\big(\operatorname{edt}(m)(x) - 1\big) & m(x) = 1 \end{cases}

    Outside the mask, the distance to the nearest mask element; inside, minus the distance to the nearest outside
    element, plus one, so the inner boundary is 0. This is ``one_hot2dist`` of the reference code,
    ``distance(negmask) * negmask - (distance(posmask) - 1) * posmask`` with ``sampling=spacing`` (the "- 1" is kept
    with a spacing too, as there). A slice whose mask is empty or full (no boundary) gets 0 everywhere: the
    reference gives 0 for an empty mask, and for a full one numbers with no meaning (SciPy's distances to a point
    outside the grid).

    Args:
        mask: bool or integer (nonzero is True) ``torch.Tensor`` or ``np.ndarray`` of shape ``(*batch, *spatial)``.
        {shared}
        dtype: output dtype, as in :func:`edt`.

    Returns:
        phi, of the mask's shape and container; float64 by default (float32 for tensors on accelerators).

    Example:
        >>> import numpy as np
        >>> signed_distance(np.array([0, 1, 1, 1, 0], dtype=bool))
        array([ 1.,  0., -1.,  0.,  1.])

    References:
        H. Kervadec, J. Bouchtiba, C. Desrosiers, E. Granger, J. Dolz, I. Ben Ayed, "Boundary loss for highly
        unbalanced segmentation", MIDL 2019, arXiv:1812.07032.
    """
    m, nd, sp, be, out_dtype = _prepare(mask, ndim, spacing, backend, dtype)
    inside, outside = _both(m, nd, sp, be, out_dtype)
    where = np.where if isinstance(m, np.ndarray) else torch.where
    return _finite_or_zero(where(m, 1 - inside, outside))


@_shared_doc
def boundary_distance(mask: _Array, *, ndim: int | None = None, spacing: float | Sequence[float] | None = None,
                      backend: Literal["auto", "torch", "scipy"] = "auto",
                      dtype: torch.dtype | DTypeLike | None = None) -> _Array:
    r"""Unsigned distance to the mask boundary, per slice: the field of the Hausdorff-distance losses.

    .. math::

        d(x) = \operatorname{edt}(m)(x) + \operatorname{edt}(\lnot m)(x)

    Inside the mask, the distance to the nearest outside element; outside, the distance to the nearest mask
    element (one of the two terms is always 0). A slice whose mask is empty or full gets 0 everywhere, as in
    MONAI's ``HausdorffDTLoss`` (which applies that guard per sample over all channels; here it is per slice).

    Args:
        mask: bool or integer (nonzero is True) ``torch.Tensor`` or ``np.ndarray`` of shape ``(*batch, *spatial)``.
        {shared}
        dtype: output dtype, as in :func:`edt`.

    Returns:
        d, of the mask's shape and container; float64 by default (float32 for tensors on accelerators).

    Example:
        >>> import numpy as np
        >>> boundary_distance(np.array([0, 1, 1, 1, 0], dtype=bool))
        array([1., 1., 2., 1., 1.])

    References:
        D. Karimi and S. E. Salcudean, "Reducing the Hausdorff Distance in Medical Image Segmentation with
        Convolutional Neural Networks", IEEE TMI 39(2), 2020, arXiv:1904.10030.
    """
    m, nd, sp, be, out_dtype = _prepare(mask, ndim, spacing, backend, dtype)
    inside, outside = _both(m, nd, sp, be, out_dtype)
    return _finite_or_zero(inside + outside)


# ---------------------------------------------------------------------------------------------------------------
# per-class maps from a segmentation target
# ---------------------------------------------------------------------------------------------------------------


def _shape_error(mode: str, batched: bool, expected: str, got) -> ValueError:
    return ValueError(f"`target` must have shape {expected} for mode={mode!r} with batched={batched}; "
                      f"got {tuple(got)}")


def class_masks(target: _Array, mode: Mode, *, num_classes: int | None, batched: bool, ndim: int | None,
                ignore_index: int | None) -> tuple[_Array, int, bool]:
    """The per-class masks of :func:`distance_maps` (and :func:`seglosses.skeleton_maps`), checked as documented
    there: ``(mask (C, *spatial) or (N, C, *spatial) bool, the number of spatial axes, whether NumPy)``."""
    check_mode(mode)
    check_bool("batched", batched)
    ignore_index = check_ignore_index(ignore_index)
    if not _is_array(target):
        raise TypeError(f"`target` must be a torch.Tensor or np.ndarray; got {type(target).__name__}")
    is_np = isinstance(target, np.ndarray)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)):
        raise TypeError(f"`num_classes` must be an int; got {type(num_classes).__name__}")
    if num_classes is not None and num_classes < 1:
        raise ValueError(f"`num_classes` must be >= 1; got {num_classes}")
    if ndim is not None:
        _check_ndim(ndim, 3)
    kind_np = target.dtype.kind if is_np else None
    if (kind_np == "c") if is_np else target.is_complex():
        raise TypeError(f"`target` must be real; got dtype {target.dtype}")
    shape = tuple(target.shape)
    rest = shape[1:] if batched else shape
    if batched and len(shape) < 2:
        raise _shape_error(mode, batched, "(N, *spatial) with at least one spatial axis", shape)

    if mode == "multiclass":
        if num_classes is None:
            raise ValueError("`num_classes` is required for mode='multiclass'")
        integer = kind_np in ("i", "u") if is_np else not (target.is_floating_point() or target.dtype == torch.bool)
        if not integer:
            raise TypeError(f"`target` must hold integer class indices for mode='multiclass'; got dtype "
                            f"{target.dtype}")
        nd = len(rest) if ndim is None else ndim
        if len(rest) != nd or not 1 <= nd <= 3:
            raise _shape_error(mode, batched, "(N, *spatial)" if batched else "(*spatial)", shape)
        ch = 1 if batched else 0
        view = [1] * (len(shape) + 1)
        view[ch] = num_classes
        if is_np:
            classes = np.arange(num_classes).reshape(view)
            t = np.expand_dims(target, ch)
        else:
            classes = torch.arange(num_classes, device=target.device).view(view)
            t = target.unsqueeze(ch)
        mask = t == classes
        if ignore_index is not None:
            mask = mask & (t != ignore_index)
    else:
        if mode == "multilabel":
            nd = len(rest) - 1 if ndim is None else ndim
            if len(rest) != nd + 1 or not 1 <= nd <= 3:
                raise _shape_error(mode, batched, "(N, C, *spatial)" if batched else "(C, *spatial)", shape)
            channel = True
        else:
            if ndim is None:
                channel = len(rest) >= 3 and rest[0] == 1 or len(rest) == 4
                nd = len(rest) - channel
            else:
                nd = ndim
                channel = len(rest) == nd + 1
            if not 1 <= nd <= 3 or len(rest) != nd + channel or channel and rest[0] != 1:
                raise _shape_error(mode, batched, "(N, *spatial) or (N, 1, *spatial)" if batched
                                   else "(*spatial) or (1, *spatial)", shape)
        if num_classes is not None and num_classes != (rest[0] if mode == "multilabel" else 1):
            raise ValueError(f"`num_classes` must be the number of channels of `target` for mode={mode!r} "
                             f"({rest[0] if mode == 'multilabel' else 1}); got {num_classes}")
        t = target
        if not channel:
            t = np.expand_dims(t, 1 if batched else 0) if is_np else t.unsqueeze(1 if batched else 0)
        mask = t > 0.5 if (t.dtype != np.bool_ if is_np else t.dtype != torch.bool) else t
        if ignore_index is not None:
            mask = mask & (t != ignore_index)

    return mask, nd, is_np


def distance_maps(target: _Array, mode: Mode, *, num_classes: int | None = None,
                  kind: Literal["signed", "unsigned"] = "signed", batched: bool = False, ndim: int | None = None,
                  spacing: float | Sequence[float] | None = None, ignore_index: int | None = None,
                  backend: Literal["auto", "torch", "scipy"] = "auto") -> _Array:
    r"""Per-class distance maps of a segmentation target, for a ``DataLoader`` worker or a dataset transform.

    For each class c with mask :math:`m_c`, :func:`signed_distance` (``kind="signed"``, the boundary loss's
    :math:`\phi`) or :func:`boundary_distance` (``kind="unsigned"``) of :math:`m_c`, per sample. The masks are

    - "binary": :math:`m = (t > 0.5)` (hard or soft targets), one channel;
    - "multilabel": :math:`m_c = (t_c > 0.5)`, one channel per target channel;
    - "multiclass": :math:`m_c = (t = c)` for c in [0, ``num_classes``), from integer class indices.

    Elements equal to ``ignore_index`` belong to no class (they are outside every mask); so do class indices
    outside [0, ``num_classes``) (they are not checked: reading values is left to :func:`seglosses.validate`).

    Args:
        target: ``torch.Tensor`` or ``np.ndarray``. With ``batched=False`` (one sample): "binary" ``(*spatial)`` or
            ``(1, *spatial)``; "multilabel" ``(C, *spatial)``; "multiclass" ``(*spatial)`` integer class indices.
            With ``batched=True`` the same with a leading batch axis N: ``(N, *spatial)`` or ``(N, 1, *spatial)``,
            ``(N, C, *spatial)``, ``(N, *spatial)``.
        mode: "binary", "multiclass" or "multilabel".
        num_classes: C, required for "multiclass"; for the other modes, if given, it must be the channel count.
        kind: "signed" (:func:`signed_distance`) or "unsigned" (:func:`boundary_distance`).
        batched: whether ``target`` has a leading batch axis.
        ndim: the number of spatial axes, 1, 2 or 3. Default: every axis left once the batch axis and (multilabel)
            the channel axis are set aside; for "binary" a leading axis is taken for the channel axis when it has
            size 1 and 3 axes follow it, or size 1 and 2 axes follow it (``(1, H, W)``); pass ``ndim`` to read
            ``(1, H, W)`` as a volume of depth 1.
        spacing: element size along each spatial axis, as in :func:`edt`.
        ignore_index: target value that belongs to no class.
        backend: as in :func:`edt` ("auto": SciPy for NumPy arrays and CPU tensors when installed).

    Returns:
        float32 maps in the target's container (a tensor on the target's device, or a NumPy array):
        ``(C, *spatial)``, or ``(N, C, *spatial)`` with ``batched=True``; C = 1 for "binary". A class absent from a
        sample, or covering all of it, gets 0 there.

    Example:
        >>> import numpy as np
        >>> t = np.array([[0, 0, 1, 1, 2]])  # one 1x5 image, 3 classes
        >>> distance_maps(t, "multiclass", num_classes=3)[:, 0].tolist()
        [[-1.0, 0.0, 1.0, 2.0, 3.0], [2.0, 1.0, 0.0, 0.0, 1.0], [4.0, 3.0, 2.0, 1.0, 0.0]]
        >>> distance_maps(t, "multiclass", num_classes=3, kind="unsigned")[1].tolist()
        [[2.0, 1.0, 1.0, 1.0, 1.0]]

    References:
        H. Kervadec et al., "Boundary loss for highly unbalanced segmentation", MIDL 2019, arXiv:1812.07032 (maps
        precomputed per class in the data loader). D. Karimi and S. E. Salcudean, IEEE TMI 2020, arXiv:1904.10030.
    """
    check_mode(mode)
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}; got {kind!r}")
    mask, nd, is_np = class_masks(target, mode, num_classes=num_classes, batched=batched, ndim=ndim,
                                  ignore_index=ignore_index)
    fn = signed_distance if kind == "signed" else boundary_distance
    out = fn(mask, ndim=nd, spacing=spacing, backend=backend)
    return out.astype(np.float32, copy=False) if is_np else out.to(torch.float32)
