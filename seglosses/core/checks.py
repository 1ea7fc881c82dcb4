"""Argument and shape validation, the reduction helper and the input normalisation shared by every loss.

Everything here checks static facts only (types, ranks, shapes, Python scalars): no tensor value is read, so
nothing here syncs a GPU or breaks ``torch.compile``. Value checks live in :func:`seglosses.validate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from seglosses.core.args import EPS, check_ignore_index, check_ignore_index_fits, check_mode, check_values


def class_vector(name: str, value, num_classes: int, device, *, low=0.0, high=None) -> torch.Tensor | None:
    """A per-class vector ``(C,)`` as a floating tensor on ``device`` (None stays None); cast where it is used.

    Python sequences are range-checked here, CPU tensors too (outside torch.compile); other tensors only for shape
    (reading their values would sync a GPU).
    """
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        t = value
        real = t.is_floating_point() or t.dtype in (torch.int32, torch.int64)
        if t.dim() == 1 and real and values_at_hand(t):
            check_values(name, t.tolist(), low=low, high=high)  # CPU: the values are at hand (no sync)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        t = torch.tensor(check_values(name, value, low=low, high=high), dtype=torch.float64)
    else:
        raise TypeError(f"`{name}` must be a sequence or tensor of {num_classes} values; got {type(value).__name__}")
    if t.dim() != 1 or t.shape[0] != num_classes:
        raise ValueError(f"`{name}` must have shape ({num_classes},), one value per class; got {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"`{name}` must hold real numbers; got dtype {t.dtype}")
    return to_device(t.to(dtype=t.dtype if t.is_floating_point() else torch.float64), device)


def to_device(t: torch.Tensor, device) -> torch.Tensor:
    """``t`` (made on the host from Python values) on ``device`` without a host sync: a plain ``.to(cuda)`` of
    pageable memory synchronizes the stream (the CPU waits for the GPU's queue to drain); from pinned memory the copy
    is asynchronous (PyTorch's caching host allocator keeps the buffer alive until it is done)."""
    device = torch.device(device)
    if (t.device == device or t.device.type != "cpu" or device.type not in ("cuda", "meta")
            or torch.compiler.is_compiling()):
        return t.to(device)
    # ("meta": no data; non-blocking there marks the copy as this deliberate one for tests/test_no_sync.py)
    return (t.pin_memory() if device.type == "cuda" else t).to(device, non_blocking=True)


class Inputs(NamedTuple):
    """Logits and target normalised to the ``(N, C, S)`` layout every loss works on (views, no copies)."""

    x: torch.Tensor          # (N, C, S) logits or probabilities, caller's dtype
    target: torch.Tensor     # (N, S) integer class indices, or (N, C, S) dense target
    index: bool              # True for integer class-index targets (multiclass)
    out_shape: tuple         # shape of an elementwise "none" map
    n: int
    c: int
    s: int


def _consecutive(classes) -> bool:
    k = len(classes)
    return k > 0 and list(classes) == list(range(classes[0], classes[0] + k))


def class_index(classes, device, dtype=torch.int64) -> torch.Tensor:
    """The class indices ``classes`` (a list of ints) as a tensor on ``device`` without a host sync: a range where
    they are consecutive, else copied from pinned memory (:func:`to_device`)."""
    if _consecutive(classes):
        return torch.arange(classes[0], classes[0] + len(classes), dtype=dtype, device=device)
    return to_device(torch.tensor(list(classes), dtype=dtype), device)


def take(t: torch.Tensor, classes, dim: int = 1) -> torch.Tensor:
    """``t``'s entries at the class indices ``classes`` (a list of ints, or None: all) along ``dim``, without a host
    sync (``t[:, [0, 2]]`` copies the index list from pageable memory): a slice where the indices are consecutive,
    else ``index_select`` with :func:`class_index`."""
    if classes is None:
        return t
    if _consecutive(classes):
        return t.narrow(dim, classes[0], len(classes))
    return t.index_select(dim, class_index(classes, t.device))


def _flat(t: torch.Tensor, n: int, c: int | None, s: int) -> torch.Tensor:
    return t.reshape(n, s) if c is None else t.reshape(n, c, s)


_UNCHECKED = object()


def prepare(logits, target, mode: str, ignore_index=_UNCHECKED, *, check_labels: bool = True) -> Inputs:
    """Check types and shapes for ``mode`` and view both tensors as (N, C, S).

    With ``ignore_index`` given (None included), the rules every loss shares are applied here, once: it must be an
    int the target's dtype can hold (:func:`~seglosses.core.args.check_ignore_index_fits`), multiclass class
    probabilities take none, and class indices outside [0, C) that are not ``ignore_index`` raise an IndexError
    (:func:`check_labels`; CPU tensors outside torch.compile, see there).
    """
    check_mode(mode)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"`logits` must be a torch.Tensor; got {type(logits).__name__}")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"`target` must be a torch.Tensor; got {type(target).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"`logits` must be a floating-point tensor; got dtype {logits.dtype}")
    if target.is_complex():
        raise TypeError(f"`target` must be real; got dtype {target.dtype}")
    if logits.device != target.device:
        raise ValueError(f"`logits` and `target` must be on the same device; got {logits.device} and {target.device}")
    inp = _inputs(logits, target, mode)
    if ignore_index is not _UNCHECKED:
        ignore_index = check_ignore_index(ignore_index)
        if ignore_index is not None:
            if mode == "multiclass" and not inp.index:
                raise ValueError("`ignore_index` needs class-index targets (N, *) in mode='multiclass'; got class "
                                 f"probabilities of shape {tuple(target.shape)}")
            if not target.is_floating_point():
                check_ignore_index_fits(ignore_index, str(target.dtype).removeprefix("torch."))
        if inp.index and check_labels:
            check_labels_in_range(inp.target, inp.c, ignore_index)
    return inp


def values_at_hand(t: torch.Tensor) -> bool:
    """Whether ``t``'s values may be read to check them: CPU tensors outside torch.compile (reading a GPU tensor's
    values would be a host sync, and a graph break under compile). Class indices are range-checked there before the
    kernels run; every kernel also treats an index outside [0, C) as an ignored pixel
    (:func:`seglosses.kernels.region.index_block`, the Triton and C kernels), which is the rule where they are not."""
    return t.device.type == "cpu" and not torch.compiler.is_compiling()


def check_labels_in_range(t: torch.Tensor, c: int, ignore_index) -> None:
    """Raise IndexError naming ``target``, a bad value and C if class indices ``t`` hold a value outside [0, C) that
    is not ``ignore_index``: on the CPU outside torch.compile (:func:`values_at_hand`), before any kernel runs,
    so the blocked passes, Inductor's kernels and the C kernels all fail the same way."""
    if not values_at_hand(t) or t.numel() == 0:
        return
    lo, hi = torch.aminmax(t) if t.dtype != torch.bool else (t.min(), t.max())
    if 0 <= int(lo) and int(hi) < c:
        return
    bad = (t < 0) | (t >= c)
    if ignore_index is not None:
        bad &= t != ignore_index
    count = int(bad.sum())
    if count:
        value = int(t[bad][0])
        raise IndexError(f"`target` holds class index {value} outside [0, {c}) in {count} of {t.numel()} pixels "
                         f"(ignore_index={ignore_index}); class indices must be in [0, C) = [0, {c}) or ignore_index "
                         "(seglosses.validate reports such values)")


def _inputs(logits, target, mode: str) -> Inputs:
    shape, tshape = tuple(logits.shape), tuple(target.shape)
    if mode == "binary":
        if logits.dim() < 1:
            raise ValueError(f"`logits` must have shape (N, 1, *) or (N, *) for mode='binary'; got {shape}")
        if tshape != shape and not (logits.dim() >= 2 and shape[1] == 1 and tshape == shape[:1] + shape[2:]):
            raise ValueError(f"`target` must have the shape of `logits` {shape}"
                             f"{' or ' + str(shape[:1] + shape[2:]) if logits.dim() >= 2 and shape[1] == 1 else ''}"
                             f" for mode='binary'; got {tshape}")
        n = shape[0]
        s = math.prod(shape[1:])
        return Inputs(logits.reshape(n, 1, s), target.reshape(n, 1, s), False, shape, n, 1, s)
    if logits.dim() < 2:
        raise ValueError(f"`logits` must have shape (N, C, *) for mode={mode!r}; got {shape}")
    n, c = shape[0], shape[1]
    s = math.prod(shape[2:])
    if mode == "multilabel":
        if tshape != shape:
            raise ValueError(f"`target` must have shape (N, C, *) = {shape} for mode='multilabel'; got {tshape}")
        return Inputs(_flat(logits, n, c, s), _flat(target, n, c, s), False, shape, n, c, s)
    # multiclass
    if c < 2:
        raise ValueError(f"mode='multiclass' needs C >= 2 classes in `logits` (N, C, *); got C = {c} in {shape}; "
                         "use mode='binary' for one channel")
    if tshape == shape[:1] + shape[2:]:
        if target.is_floating_point() or target.dtype == torch.bool:
            raise TypeError(f"`target` of shape (N, *) = {tshape} must hold integer class indices for "
                            f"mode='multiclass'; got dtype {target.dtype}")
        return Inputs(_flat(logits, n, c, s), _flat(target, n, None, s), True, shape[:1] + shape[2:], n, c, s)
    if tshape == shape:
        # class probabilities: floating point, or an integer/bool one-hot (read as 0/1 probabilities block by block,
        # as a float target is cast: no copy of the input's size)
        return Inputs(_flat(logits, n, c, s), _flat(target, n, c, s), False, shape[:1] + shape[2:], n, c, s)
    raise ValueError(f"`target` must have shape (N, *) = {shape[:1] + shape[2:]} (class indices) or (N, C, *) = "
                     f"{shape} (probabilities) for mode='multiclass'; got {tshape}")


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 stays float64; everything else (fp16, bf16, fp32) is computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def activation(mode: str, from_logits: bool) -> str:
    """What turns the input into probabilities: "sigmoid", "softmax" (mode "multiclass") or "identity"
    (``from_logits=False``: the input holds probabilities)."""
    return "identity" if not from_logits else ("softmax" if mode == "multiclass" else "sigmoid")


def reduce_classes(losses: torch.Tensor, weight: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """Reduce per-class losses ``(..., K)`` (already multiplied by ``weight``) as the region losses define it."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if weight is None:
        return losses.mean() if losses.numel() else losses.sum()
    rows = losses.numel() // max(losses.shape[-1], 1)
    denom = (weight.sum() * rows).to(losses.dtype)
    return losses.sum() / torch.where(denom > 0, denom, torch.ones_like(denom))


def saturating_cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t.to(dtype)``, clamped to the largest finite values of a half-precision ``dtype`` first: a float32 gradient
    beyond float16's 65504 (1 / p near a probability clamp, 1 / smooth for an absent class) becomes +-65504, not
    +-inf (NaN stays NaN)."""
    if dtype in (torch.float16, torch.bfloat16) and t.dtype != dtype:
        big = torch.finfo(dtype).max
        t = t.clamp(-big, big)
    return t.to(dtype)


class _SaturatingCast(torch.autograd.Function):
    """``p.to(float32)`` for half-precision probabilities whose backward pass saturates at the half dtype's largest
    finite value: the gradient of ``log p`` is ``1 / p``, up to 1e7 at the clamp (p = 1e-7), beyond float16's 65504,
    so a plain cast would hand back -inf; the true value is not representable either way, a finite one is safe."""

    @staticmethod
    def forward(ctx, p, dtype):
        ctx.dtype = p.dtype
        return p.to(dtype)

    @staticmethod
    def backward(ctx, g):
        return saturating_cast(g, ctx.dtype), None


def to_compute(p: torch.Tensor) -> torch.Tensor:
    """``p`` in its compute dtype (:func:`compute_dtype`), by a cast whose gradient saturates for half input."""
    dt = compute_dtype(p)
    return _SaturatingCast.apply(p, dt) if p.dtype != dt and p.requires_grad else p.to(dt)


def probs_to_logits(p: torch.Tensor, softmax: bool) -> torch.Tensor:
    """Logits whose sigmoid (or softmax) is the clamped (and, for softmax, renormalised) probabilities.

    ``1 - p`` is clamped on its own (to [EPS, 1 - EPS], the same set): in float32, 1 - 1e-7 is not representable
    and clamping p there would make log(1 - p) = log(1.19e-7) instead of log(1e-7).
    """
    p = to_compute(p)
    lp = torch.log(p.clamp(EPS, 1 - EPS))
    return lp if softmax else lp - torch.log((1 - p).clamp(EPS, 1 - EPS))


def spatial_axes(shape, mode: str, what: str) -> tuple[int, ...]:
    """The spatial shape of logits of ``shape`` (binary logits may come as ``(N, *)``), checked to have 1 to 3 axes:
    the rule of every loss that reads the image's structure (distances, skeletons, windows, contours); ``what``
    names the loss in the error."""
    shape = tuple(shape)
    spatial = shape[1:] if mode == "binary" and not (len(shape) >= 2 and shape[1] == 1) else shape[2:]
    if not 1 <= len(spatial) <= 3:
        raise ValueError(f"`logits` must have 1 to 3 spatial axes after (N, C) for {what}; got shape {shape} for "
                         f"mode={mode!r}")
    return spatial


def pixel_weights(pixel_weight, logits: torch.Tensor, mode: str, inp: Inputs, *,
                  per_class: bool = True) -> torch.Tensor | None:
    """A per-pixel weight map checked and viewed in the ``(N, C, S)`` layout of ``inp``: ``(N, 1, S)`` for a map of
    the target's spatial shape, ``(N, C, S)`` for a per-class map; in the compute dtype, detached; None stays None.

    Accepted shapes (each axis of the map the full size or 1, which broadcasts):

    * ``(N, *spatial)``: one weight per pixel (every class of the pixel);
    * ``(N, C, *spatial)``: one weight per pixel and class, the rank of ``logits`` (mode "binary" with logits
      ``(N, *)``: the same shape, one weight per element). ``per_class=False`` (softmax losses with one value per
      pixel) refuses a C axis larger than 1.

    Only static facts are checked (type, dtype, device, shape); the values are used as given (a NaN weight at a
    valid pixel gives a NaN loss; at an ignored pixel it has no effect); :func:`seglosses.validate` reports bad
    values. No gradient flows to the map.
    """
    if pixel_weight is None:
        return None
    if not isinstance(pixel_weight, torch.Tensor):
        raise TypeError(f"`pixel_weight` must be a torch.Tensor or None; got {type(pixel_weight).__name__}")
    if pixel_weight.is_complex():
        raise TypeError(f"`pixel_weight` must be real; got dtype {pixel_weight.dtype}")
    if pixel_weight.device != logits.device:
        raise ValueError(f"`pixel_weight` must be on the device of `logits` ({logits.device}); "
                         f"got {pixel_weight.device}")
    shape, wshape = tuple(logits.shape), tuple(pixel_weight.shape)
    # the map's full shapes: the logits' shape (per class; binary: per element) and, where the logits have a class
    # axis, the target's spatial shape without it
    forms = [shape]
    if mode != "binary" or (len(shape) >= 2 and shape[1] == 1):
        forms.append(shape[:1] + shape[2:])
    full = next((f for f in forms if len(f) == len(wshape)), None)
    if full is None or any(w not in (1, f) for w, f in zip(wshape, full)):
        allowed = " or ".join(f"{f}" for f in reversed(forms))
        raise ValueError(f"`pixel_weight` must have shape {allowed} (the target's spatial shape, or the logits' "
                         f"shape for per-class weights), each axis the full size or 1; got {wshape}")
    with_class = len(full) == len(shape)
    if mode == "multiclass" and with_class and not per_class and wshape[1] != 1:
        raise ValueError(f"`pixel_weight` of this loss takes one weight per pixel, shape {forms[1]}: it has one "
                         f"value per pixel (per-class weights: `weight=`); got {wshape}")
    w = pixel_weight.detach()
    if w.dtype != compute_dtype(logits):
        w = w.to(compute_dtype(logits))
    if mode == "binary":
        return w.expand(full).reshape(inp.n, 1, inp.s)
    if not with_class:
        w = w.unsqueeze(1)
    cw = 1 if w.shape[1] == 1 else inp.c
    return w.expand((inp.n, cw) + shape[2:]).reshape(inp.n, cw, inp.s)
