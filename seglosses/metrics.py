r"""Segmentation metrics with the losses' definitions: per-class Dice, IoU, sensitivity, specificity and precision from
a streaming confusion matrix, the percentile Hausdorff distance (HD95) and the normalised surface Dice (NSD) from the
package's exact distance transform.

The rules are those of the losses (docs/semantics.md, "Metrics"): the same modes and ``ignore_index`` (ignored
pixels are in no count), statistics over the whole stream (``per_image=False``, the losses' batch statistics) or one
score per image averaged over images (``per_image=True``), and a ratio 0/0 scored ``zero_division`` = 1 by default:
the limit s -> 0 of the losses' smoothed ratios (x + s) / (y + s), so a class absent from both target and prediction
has Dice 1, as the Dice loss gives it the loss 0. ``zero_division=math.nan`` marks such values undefined instead;
NaN values are left out of every mean (over images and over classes).

:class:`ConfusionMetrics` and :class:`SurfaceMetrics` are accumulators (``update`` per batch, ``compute``,
``reset``), ``nn.Module`` s whose state is int64/float64 buffers (``.to(device)`` moves it). ``update`` counts on the
inputs' device without any host sync; ``compute`` sums the state over the ranks of ``torch.distributed`` when a
process group is initialised (a collective: every rank calls it), so every rank gets the metrics of the whole
dataset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from seglosses.core.args import (
    Mode,
    check_bool,
    check_ignore_index,
    check_mode,
    check_scalar,
    check_spacing,
)
from seglosses.core.dist import is_active
from seglosses.distance import edt

__all__ = ["ConfusionMetrics", "SurfaceMetrics", "confusion_matrix", "confusion_scores", "hausdorff_distance",
           "surface_dice"]

#: The per-class scores of :class:`ConfusionMetrics`, in the order of the demo's tables.
METRICS = ("dice", "iou", "sensitivity", "specificity", "precision")
#: The devices whose counts use torch.bincount; elsewhere index_add_ (no host sync).
_BINCOUNT_DEVICES = ("cpu",)


def _check_fill(name: str, value, high: float | None = None) -> float:
    """A number >= 0 (<= ``high``) or NaN: the value of an undefined score."""
    if isinstance(value, float) and math.isnan(value):
        return value
    return check_scalar(name, value, low=0.0, high=high)


def _check_classes(num_classes, mode: str) -> int:
    if mode == "binary":
        if num_classes not in (None, 1) or isinstance(num_classes, bool):
            raise ValueError(f"`num_classes` must be None or 1 for mode='binary'; got {num_classes!r}")
        return 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"`num_classes` must be an int for mode={mode!r}; got {type(num_classes).__name__}")
    if num_classes < (2 if mode == "multiclass" else 1):
        raise ValueError(f"`num_classes` must be >= {2 if mode == 'multiclass' else 1} for mode={mode!r}; "
                         f"got {num_classes}")
    return num_classes


def _tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor or np.ndarray; got {type(x).__name__}")
    return x


def _integer(x: torch.Tensor) -> bool:
    return not (x.is_floating_point() or x.is_complex())


def _hard(pred, target, mode: str, num_classes: int, from_logits: bool, threshold: float):
    """Hard predictions and the target, checked: multiclass ``(N, *)`` int64 class maps (prediction from the argmax
    of ``(N, C, *)`` scores, or given as integers); binary/multilabel ``(N, K, *)`` bool predictions (scores above
    ``threshold`` after the sigmoid when ``from_logits``, or given as bool/integers: nonzero) and the target as
    given, ``(N, K, *)``."""
    pred, target = _tensor(pred, "input"), _tensor(target, "target")
    if target.is_complex() or pred.is_complex():
        raise TypeError("`input` and `target` must be real")
    if mode == "multiclass":
        if not _integer(pred):
            if pred.dim() < 2 or pred.shape[1] != num_classes:
                raise ValueError(f"`input` scores must have shape (N, C, *) with C = num_classes = {num_classes} "
                                 f"for mode='multiclass'; got {tuple(pred.shape)}")
            pred = pred.argmax(1)
        if not _integer(target):
            raise TypeError(f"`target` must hold integer class indices for mode='multiclass'; got {target.dtype}")
        if pred.shape != target.shape or pred.dim() < 1:
            raise ValueError(f"`target` must have shape (N, *) = {tuple(pred.shape)} for mode='multiclass'; "
                             f"got {tuple(target.shape)}")
        return pred.long(), target
    if mode == "binary" and pred.dim() >= 2 and pred.shape[1] == 1 and target.dim() == pred.dim() - 1:
        target = target.unsqueeze(1)
    if mode == "binary" and (pred.dim() < 2 or pred.shape[1] != 1):
        pred, target = pred.unsqueeze(1), target.unsqueeze(1)
    if pred.shape != target.shape or pred.dim() < 2 or pred.shape[1] != num_classes:
        expected = "(N, *) or (N, 1, *)" if mode == "binary" else f"(N, C, *) with C = num_classes = {num_classes}"
        raise ValueError(f"`input` and `target` must have one shape {expected} for mode={mode!r}; got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if _integer(pred):
        return pred != 0, target
    return (torch.sigmoid(pred.float()) if from_logits else pred) > threshold, target


def _two_state(pred: torch.Tensor, target: torch.Tensor, ignore_index: int | None):
    """Binary/multilabel target masks and the valid elements."""
    valid = torch.ones_like(pred) if ignore_index is None else target != ignore_index
    truth = target if target.dtype == torch.bool else target > 0.5
    return truth & valid, valid


def _counts(idx: torch.Tensor, valid: torch.Tensor, size: int) -> torch.Tensor:
    """``bincount(idx[valid], minlength=size)`` without selecting (no host sync on accelerators)."""
    idx = torch.where(valid, idx, size).reshape(-1)
    if idx.device.type in _BINCOUNT_DEVICES:  # (bincount reads the largest index on accelerators: a host sync)
        return torch.bincount(idx, minlength=size + 1)[:size]
    out = torch.zeros(size + 1, dtype=torch.int64, device=idx.device)
    return out.index_add_(0, idx, torch.ones_like(idx))[:size]


def _class_check(t: torch.Tensor, num_classes: int, ignore_index: int | None) -> torch.Tensor:
    """The valid pixels of an index target; on CPU tensors a label outside [0, C) that is not ``ignore_index`` is a
    ValueError (elsewhere such pixels are left out: reading them would be a host sync)."""
    inside = (t >= 0) & (t < num_classes)
    valid = inside if ignore_index is None else inside & (t != ignore_index)
    if t.device.type == "cpu":
        bad = ~inside if ignore_index is None else ~inside & (t != ignore_index)
        if bool(bad.any()):
            value = t[bad][0].item()
            raise ValueError(f"`target` holds the label {value}, outside [0, {num_classes}) and not ignore_index "
                             f"({ignore_index})")
    return valid


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, *,
                     ignore_index: int | None = None) -> torch.Tensor:
    """The ``(C, C)`` confusion matrix of two integer class maps of one shape: entry ``[t, p]`` counts the pixels of
    target class t predicted as p.

    Pixels whose target is ``ignore_index`` are left out. A target label outside [0, C) that is not
    ``ignore_index`` is a ValueError on CPU tensors and left out elsewhere (no host sync); predictions outside
    [0, C) are left out.

    Args:
        pred: integer class indices, any shape.
        target: integer class indices, the shape of ``pred``.
        num_classes: C.
        ignore_index: the target label of pixels to leave out.

    Returns:
        int64 tensor ``(C, C)`` on the inputs' device.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 255]), 2, ignore_index=255)
        tensor([[1, 1],
                [0, 1]])
    """
    c = _check_classes(num_classes, "multiclass")
    pred, target = _tensor(pred, "pred"), _tensor(target, "target")
    if not (_integer(pred) and _integer(target)):
        raise TypeError(f"`pred` and `target` must hold integer class indices; got {pred.dtype} and {target.dtype}")
    if pred.shape != target.shape:
        raise ValueError(f"`target` must have the shape of `pred` {tuple(pred.shape)}; got {tuple(target.shape)}")
    t, p = target.long(), pred.long()
    valid = _class_check(t, c, check_ignore_index(ignore_index)) & (p >= 0) & (p < c)
    return _counts(t * c + p, valid, c * c).view(c, c)


def _stats(matrix: torch.Tensor, two_state: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """tp, fp, fn, tn (float64) of each class, from ``(..., C, C)`` matrices or ``(..., K, 2, 2)`` two-state ones."""
    m = matrix.double()
    if two_state:
        return m[..., 1, 1], m[..., 0, 1], m[..., 1, 0], m[..., 0, 0]
    tp = m.diagonal(dim1=-2, dim2=-1)
    fn = m.sum(-1) - tp
    fp = m.sum(-2) - tp
    tn = m.sum((-2, -1)).unsqueeze(-1) - tp - fn - fp
    return tp, fp, fn, tn


def _ratio(num: torch.Tensor, den: torch.Tensor, fill: float) -> torch.Tensor:
    return torch.where(den > 0, num / den, torch.full((), fill, dtype=num.dtype, device=num.device))


def _scores(tp, fp, fn, tn, zero_division: float) -> dict[str, torch.Tensor]:
    z = zero_division
    return {"dice": _ratio(2 * tp, 2 * tp + fp + fn, z), "iou": _ratio(tp, tp + fp + fn, z),
            "sensitivity": _ratio(tp, tp + fn, z), "specificity": _ratio(tn, tn + fp, z),
            "precision": _ratio(tp, tp + fp, z)}


def confusion_scores(matrix: torch.Tensor, *, zero_division: float = 1.0) -> dict[str, torch.Tensor]:
    r"""Per-class scores of a ``(C, C)`` confusion matrix (rows: target, columns: prediction), class c against the
    rest:

    .. math::

        \text{Dice} = \frac{2tp}{2tp + fp + fn}, \quad \text{IoU} = \frac{tp}{tp + fp + fn}, \quad
        \text{sensitivity} = \frac{tp}{tp + fn}, \quad \text{specificity} = \frac{tn}{tn + fp}, \quad
        \text{precision} = \frac{tp}{tp + fp}

    A ratio 0/0 is ``zero_division``: 1 by default (the losses' convention), ``math.nan`` to mark it undefined.

    Args:
        matrix: integer tensor ``(C, C)`` (or ``(..., C, C)``), as :func:`confusion_matrix` gives.
        zero_division: the value of a ratio 0/0, in [0, 1] or NaN.

    Returns:
        ``{name: float64 tensor (C,)}`` for the names of :data:`METRICS`.

    Example:
        >>> s = confusion_scores(torch.tensor([[5, 1], [2, 2]]))
        >>> s["dice"], s["precision"]
        (tensor([0.7692, 0.5714], dtype=torch.float64), tensor([0.7143, 0.6667], dtype=torch.float64))
    """
    matrix = _tensor(matrix, "matrix")
    if matrix.dim() < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(f"`matrix` must be square, (C, C); got {tuple(matrix.shape)}")
    return _scores(*_stats(matrix, False), _check_fill("zero_division", zero_division, 1.0))


def _nanmean(x: torch.Tensor) -> torch.Tensor:
    """Mean of the non-NaN values along the last axis (NaN if none)."""
    keep = ~torch.isnan(x)
    n = keep.sum(-1)
    s = torch.where(keep, x, 0).sum(-1)
    return torch.where(n > 0, s / n.clamp(min=1), torch.full((), math.nan, dtype=x.dtype, device=x.device))


def _all_reduce(tensors: list[torch.Tensor], group) -> list[torch.Tensor]:
    if not is_active():
        return tensors
    import torch.distributed as dist

    out = []
    for t in tensors:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
        out.append(t)
    return out


class _Accumulator(torch.nn.Module):
    """Shared options and the per-image mean of the accumulators."""

    def __init__(self, num_classes, mode, ignore_index, from_logits, threshold, include_background):
        super().__init__()
        self.mode = check_mode(mode)
        self.num_classes = _check_classes(num_classes, self.mode)
        self.ignore_index = check_ignore_index(ignore_index)
        self.from_logits = check_bool("from_logits", from_logits)
        self.threshold = check_scalar("threshold", threshold, low=0.0, high=None if from_logits else 1.0)
        if from_logits and threshold >= 1.0:
            raise ValueError(f"`threshold` must be < 1 (a probability) with from_logits=True; got {threshold}")
        self.include_background = check_bool("include_background", include_background)

    def reset(self) -> None:
        """Forget every update."""
        for b in self.buffers():
            b.zero_()

    def _state(self, sync, group) -> list[torch.Tensor]:
        """The buffers, summed over the ranks of ``group`` when ``sync`` and torch.distributed is initialised."""
        state = list(self.buffers())
        return _all_reduce(state, group) if check_bool("sync", sync) else state

    def _follow(self, x: torch.Tensor) -> None:
        """The state moves to the inputs' device on the first update that needs it."""
        first = next(iter(self.buffers()))
        if first.device != x.device:
            self.to(x.device)

    def _classes(self, values: torch.Tensor) -> torch.Tensor:
        """The classes the means are over: all, or all but class 0 (multiclass, include_background=False)."""
        return values if self.include_background or self.mode != "multiclass" else values[..., 1:]

    def _masks(self, pred, target):
        """Per-class bool masks ``(N, K, *)`` of the prediction and the target; ignored pixels are in neither."""
        p, t = _hard(pred, target, self.mode, self.num_classes, self.from_logits, self.threshold)
        self._follow(p)
        if self.mode != "multiclass":
            truth, valid = _two_state(p, t, self.ignore_index)
            return p & valid, truth
        t = t.long()
        valid = _class_check(t, self.num_classes, self.ignore_index)
        classes = torch.arange(self.num_classes, device=t.device).view(1, -1, *([1] * (t.dim() - 1)))
        return (p.unsqueeze(1) == classes) & valid.unsqueeze(1), (t.unsqueeze(1) == classes) & valid.unsqueeze(1)


class ConfusionMetrics(_Accumulator):
    """Streaming per-class Dice, IoU, sensitivity, specificity and precision (:func:`confusion_scores`).

    ``update(input, target)`` adds a batch's counts: multiclass a ``(C, C)`` matrix :attr:`confusion` (prediction =
    the argmax of ``(N, C, *)`` scores, or integer class maps ``(N, *)``), binary/multilabel a ``(K, 2, 2)`` matrix
    per class (``[target, prediction]``, prediction = sigmoid(logits) > ``threshold``, or probabilities with
    ``from_logits=False``, or bool/integer masks). ``compute()`` returns the per-class scores of the counts summed
    over the whole stream (``per_image=False``), or the mean over images of each image's scores
    (``per_image=True``; an image's 0/0 is ``zero_division``, NaN values are left out of the mean), and the mean
    over classes of each (``mean_dice``, ...: NaN left out; class 0 left out with ``include_background=False``).

    Args:
        num_classes: C (multiclass, multilabel); None or 1 for binary.
        mode: "multiclass", "binary" or "multilabel", as the losses.
        ignore_index: the target label of pixels (multiclass) or elements (binary, multilabel) to leave out.
        from_logits: whether float inputs of binary/multilabel are logits (else probabilities).
        threshold: a probability: a pixel is predicted where p > threshold (binary, multilabel).
        per_image: average per-image scores instead of scoring the summed counts.
        zero_division: the value of a ratio 0/0: 1 (default; the losses' convention) or ``math.nan`` (undefined).
        include_background: whether class 0 counts in the means (multiclass).

    Example:
        >>> m = ConfusionMetrics(3)
        >>> m.update(torch.tensor([[0, 1, 1, 2]]), torch.tensor([[0, 1, 2, 2]]))  # integer predictions
        >>> out = m.compute()
        >>> out["dice"], out["mean_dice"]
        (tensor([1.0000, 0.6667, 0.6667], dtype=torch.float64), tensor(0.7778, dtype=torch.float64))
    """

    confusion: torch.Tensor
    image_sum: torch.Tensor
    image_count: torch.Tensor

    def __init__(self, num_classes: int | None, mode: Mode = "multiclass", *, ignore_index: int | None = None,
                 from_logits: bool = True, threshold: float = 0.5, per_image: bool = False,
                 zero_division: float = 1.0, include_background: bool = True) -> None:
        super().__init__(num_classes, mode, ignore_index, from_logits, threshold, include_background)
        self.per_image = check_bool("per_image", per_image)
        self.zero_division = _check_fill("zero_division", zero_division, 1.0)
        k = self.num_classes
        shape = (k, k) if self.mode == "multiclass" else (k, 2, 2)
        self.register_buffer("confusion", torch.zeros(shape, dtype=torch.int64))
        self.register_buffer("image_sum", torch.zeros(len(METRICS), k, dtype=torch.float64))
        self.register_buffer("image_count", torch.zeros(len(METRICS), k, dtype=torch.int64))

    @torch.no_grad()
    def update(self, input: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``input`` scores or hard predictions, ``target`` as for the losses of this mode."""
        p, t = _hard(input, target, self.mode, self.num_classes, self.from_logits, self.threshold)
        self._follow(p)
        k, n = self.num_classes, p.shape[0]
        if self.mode == "multiclass":
            t = t.long()
            valid = _class_check(t, k, self.ignore_index)
            idx, size = t * k + p, k * k
        else:
            truth, valid = _two_state(p, t, self.ignore_index)
            channel = torch.arange(k, device=p.device).view(1, k, *([1] * (p.dim() - 2)))
            idx, size = channel * 4 + truth.long() * 2 + p.long(), k * 4
        if not self.per_image:
            self.confusion += _counts(idx, valid, size).view(self.confusion.shape)
            return
        image = torch.arange(n, device=p.device).view(n, *([1] * (idx.dim() - 1)))
        per_image = _counts(idx + image * size, valid, n * size).view(n, *self.confusion.shape)
        self.confusion += per_image.sum(0)
        scores = _scores(*_stats(per_image, self.mode != "multiclass"), self.zero_division)
        values = torch.stack([scores[name] for name in METRICS], 1)  # (N, M, K)
        defined = ~torch.isnan(values)
        self.image_sum += torch.where(defined, values, 0).sum(0)
        self.image_count += defined.sum(0)

    @torch.no_grad()
    def compute(self, *, sync: bool = True, group=None) -> dict[str, torch.Tensor]:
        """The scores of everything added since the last reset.

        Args:
            sync: sum the state over the ranks of ``group`` (default: the default group) first, when
                ``torch.distributed`` is initialised (every rank must call ``compute`` then); the module's own
                state is left unchanged.
            group: the process group.

        Returns:
            ``{name: float64 (K,)}`` for the names of :data:`METRICS` and ``{"mean_" + name: float64 ()}``; K = C
            (multiclass, multilabel) or 1 (binary).
        """
        confusion, image_sum, image_count = self._state(sync, group)
        if self.per_image:
            mean = _ratio(image_sum, image_count.double(), math.nan)
            out = {name: mean[i] for i, name in enumerate(METRICS)}
        else:
            out = _scores(*_stats(confusion, self.mode != "multiclass"), self.zero_division)
        out.update({f"mean_{name}": _nanmean(self._classes(out[name])) for name in METRICS})
        return out


def _border(m: torch.Tensor, nd: int) -> torch.Tensor:
    """The elements of the mask with a face neighbour outside it (or outside the image): MONAI's edges,
    ``binary_erosion(m) ^ m`` with SciPy's cross and a False border."""
    inner = m.clone()
    for axis in range(m.dim() - nd, m.dim()):
        n = m.shape[axis]
        if n < 2:
            return m.clone()
        zero = torch.zeros_like(m.narrow(axis, 0, 1))
        inner &= torch.cat([zero, m.narrow(axis, 0, n - 1)], axis) & torch.cat([m.narrow(axis, 1, n - 1), zero], axis)
    return m & ~inner


def _surface(pred, target, ndim, spacing):
    """(distances pred border -> target border, at pred border elements, +inf elsewhere; the same target -> pred;
    the pred and target border sizes), each flattened to ``(B, S)`` over the batch axes."""
    p = _tensor(pred, "pred")
    t = _tensor(target, "target")
    for name, x in (("pred", p), ("target", t)):
        if x.is_floating_point() or x.is_complex():
            raise TypeError(f"`{name}` must be a bool or integer mask; got dtype {x.dtype} (threshold it first)")
    if p.shape != t.shape:
        raise ValueError(f"`target` must have the shape of `pred` {tuple(p.shape)}; got {tuple(t.shape)}")
    p, t = p != 0, t != 0
    rank = p.dim()
    if ndim is None:
        ndim = rank if rank <= 3 else rank - 2
    if isinstance(ndim, bool) or not isinstance(ndim, int) or not 1 <= ndim <= min(3, rank):
        raise ValueError(f"`ndim` must be 1, 2 or 3 and at most the masks' rank ({rank}); got {ndim!r}")
    sp = check_spacing(spacing, ndim)
    spatial = tuple(p.shape[rank - ndim:])
    batch = tuple(p.shape[:rank - ndim])
    bp, bt = _border(p.reshape(-1, *spatial), ndim), _border(t.reshape(-1, *spatial), ndim)
    # edt(~border) is the distance to the nearest border element (+inf where there is none)
    d = edt(torch.stack([~bt, ~bp]), ndim=ndim, spacing=sp)
    inf = torch.full((), math.inf, dtype=d.dtype, device=d.device)
    to_t = torch.where(bp, d[0], inf).flatten(1)
    to_p = torch.where(bt, d[1], inf).flatten(1)
    return to_t, to_p, bp.flatten(1).sum(1), bt.flatten(1).sum(1), batch


def _percentile(d: torch.Tensor, k: torch.Tensor, q: float) -> torch.Tensor:
    """The q-quantile (linear interpolation, as ``torch.quantile``) of the first ``k`` sorted values of each row."""
    v = d.sort(-1).values
    pos = q * (k - 1).clamp(min=0).to(v.dtype)
    lo = pos.floor()
    frac = pos - lo
    a = v.gather(1, lo.long().unsqueeze(1)).squeeze(1)
    b = v.gather(1, pos.ceil().long().unsqueeze(1)).squeeze(1)
    return torch.where(frac > 0, a + frac * (b - a), a)


def _fill(value: float, like: torch.Tensor) -> torch.Tensor:
    return torch.full((), value, dtype=like.dtype, device=like.device)


@torch.no_grad()
def hausdorff_distance(pred: torch.Tensor, target: torch.Tensor, *, percentile: float | None = 95.0,
                       spacing: float | Sequence[float] | None = None, ndim: int | None = None,
                       empty: float = 0.0) -> torch.Tensor:
    r"""The (percentile) Hausdorff distance between the borders of two masks, per slice, in physical units.

    .. math::

        \mathrm{HD}_q = \max\big(P_q\{d(x, \partial T) : x \in \partial P\},\ P_q\{d(y, \partial P) : y \in
        \partial T\}\big)

    with :math:`\partial M` the border of mask M (its elements with a face neighbour outside M or outside the
    image, MONAI's edges), d the Euclidean distance scaled by ``spacing``, computed with the exact transform
    :func:`seglosses.edt`, and :math:`P_q` the q-th percentile with linear interpolation (``torch.quantile``); q =
    100 (``percentile=None``) is the Hausdorff distance. This is MONAI's ``compute_hausdorff_distance`` (the maximum
    of the two directed percentiles) with its default Euclidean metric.

    Empty masks: both empty gives ``empty`` (0 by default: the prediction is right, as the losses score an absent
    class; MONAI gives NaN, ``empty=math.nan``); one empty gives +inf (as MONAI).

    Args:
        pred: bool or integer (nonzero is True) mask ``(*batch, *spatial)``.
        target: the same shape.
        percentile: q in [0, 100], or None for the maximum (the Hausdorff distance).
        spacing: the element size along each spatial axis (one float, or one per axis); None is 1.
        ndim: the number of trailing spatial axes (1 to 3); default: all axes of a mask of rank <= 3, else rank - 2
            (``(N, C, H, W)`` -> 2), as :func:`seglosses.edt`.
        empty: the value where both masks are empty (>= 0 or NaN).

    Returns:
        ``(*batch)`` tensor, float64 (float32 for tensors on accelerators), on the masks' device.

    Example:
        >>> p = torch.zeros(1, 7, dtype=torch.bool); t = p.clone()
        >>> p[0, 1:3] = True; t[0, 2:6] = True  # borders {1, 2} and {2, 5}
        >>> hausdorff_distance(p, t, percentile=None, spacing=0.5, ndim=1)  # max(1 * 0.5, 3 * 0.5)
        tensor([1.5000], dtype=torch.float64)

    References:
        D. P. Huttenlocher, G. A. Klanderman, W. J. Rucklidge, "Comparing images using the Hausdorff distance",
        IEEE TPAMI 15(9), 1993. MONAI, ``monai.metrics.compute_hausdorff_distance``.
    """
    q = 1.0 if percentile is None else check_scalar("percentile", percentile, low=0.0, high=100.0) / 100
    empty = _check_fill("empty", empty)
    to_t, to_p, kp, kt, batch = _surface(pred, target, ndim, spacing)
    hd = torch.maximum(_percentile(to_t, kp, q), _percentile(to_p, kt, q))
    none_p, none_t = kp == 0, kt == 0
    hd = torch.where(none_p | none_t, _fill(math.inf, hd), hd)
    return torch.where(none_p & none_t, _fill(empty, hd), hd).reshape(batch)


@torch.no_grad()
def surface_dice(pred: torch.Tensor, target: torch.Tensor, tolerance: float, *,
                 spacing: float | Sequence[float] | None = None, ndim: int | None = None,
                 empty: float = 1.0) -> torch.Tensor:
    r"""The normalised surface Dice (Nikolov et al. 2021) of two masks at a tolerance, per slice.

    .. math::

        \mathrm{NSD}_\tau = \frac{|\{x \in \partial P : d(x, \partial T) \le \tau\}| + |\{y \in \partial T :
        d(y, \partial P) \le \tau\}|}{|\partial P| + |\partial T|}

    with the borders and distances of :func:`hausdorff_distance`: the size of a border is its number of elements,
    MONAI's ``compute_surface_dice(..., use_subvoxels=False)`` (Nikolov et al. measure surface areas instead, MONAI's
    ``use_subvoxels=True``; the two agree as the resolution grows).

    Empty masks: both empty gives ``empty`` (1 by default, the losses' convention; MONAI gives NaN,
    ``empty=math.nan``); one empty gives 0 (as MONAI).

    Args:
        pred: bool or integer (nonzero is True) mask ``(*batch, *spatial)``.
        target: the same shape.
        tolerance: tau, in the units of ``spacing`` (>= 0).
        spacing: the element size along each spatial axis; None is 1.
        ndim: the number of trailing spatial axes, as in :func:`hausdorff_distance`.
        empty: the value where both masks are empty (in [0, 1] or NaN).

    Returns:
        ``(*batch)`` float64 tensor on the masks' device.

    Example:
        >>> p = torch.zeros(1, 7, dtype=torch.bool); t = p.clone()
        >>> p[0, 1:3] = True; t[0, 2:6] = True  # borders {1, 2} and {2, 5}: distances (1, 0) and (0, 3)
        >>> surface_dice(p, t, 1.0, ndim=1)
        tensor([0.7500], dtype=torch.float64)

    References:
        S. Nikolov et al., "Clinically Applicable Segmentation of Head and Neck Anatomy for Radiotherapy: Deep
        Learning Algorithm Development and Validation Study", JMIR 23(7), 2021, arXiv:1809.04430.
    """
    tau = check_scalar("tolerance", tolerance, low=0.0)
    empty = _check_fill("empty", empty, 1.0)
    to_t, to_p, kp, kt, batch = _surface(pred, target, ndim, spacing)
    good = (to_t <= tau).sum(1) + (to_p <= tau).sum(1)
    nsd = good.double() / (kp + kt).clamp(min=1).double()
    return torch.where((kp + kt) == 0, _fill(empty, nsd), nsd).reshape(batch)


class SurfaceMetrics(_Accumulator):
    """Streaming HD95 and normalised surface Dice per class: each image's :func:`hausdorff_distance` and
    :func:`surface_dice` per class, averaged over images (NaN values left out; an inf HD, one mask empty, makes the
    mean inf).

    Inputs as :class:`ConfusionMetrics`: the per-class masks are those of the hard prediction and of the target;
    ignored pixels are in neither mask (set to background in both, MONAI's ``ignore_index`` rule), so their edge
    is a border.

    Args:
        num_classes: C (multiclass, multilabel); None or 1 for binary.
        mode: "multiclass", "binary" or "multilabel".
        tolerance: the NSD's tolerance, in the units of ``spacing``.
        percentile: the Hausdorff percentile (None: the maximum).
        spacing: the element size along each spatial axis (1 to 3 spatial axes after ``(N, C)``).
        ignore_index, from_logits, threshold, include_background: as in :class:`ConfusionMetrics`.
        empty_hd, empty_nsd: the values where both masks of a class are empty (defaults 0 and 1; NaN leaves the
            pair out).

    Example:
        >>> m = SurfaceMetrics(None, "binary", tolerance=1.0, percentile=None)
        >>> p = torch.zeros(1, 1, 7); t = torch.zeros(1, 1, 7)
        >>> p[..., 1:3] = 5.0; t[..., 2:6] = 1.0  # logits and target
        >>> m.update(p, t)
        >>> m.compute()["hausdorff"], m.compute()["surface_dice"]
        (tensor([3.], dtype=torch.float64), tensor([0.7500], dtype=torch.float64))
    """

    sums: torch.Tensor
    counts: torch.Tensor

    def __init__(self, num_classes: int | None, mode: Mode = "multiclass", *, tolerance: float,
                 percentile: float | None = 95.0, spacing: float | Sequence[float] | None = None,
                 ignore_index: int | None = None, from_logits: bool = True, threshold: float = 0.5,
                 include_background: bool = True, empty_hd: float = 0.0, empty_nsd: float = 1.0) -> None:
        super().__init__(num_classes, mode, ignore_index, from_logits, threshold, include_background)
        self.tolerance = check_scalar("tolerance", tolerance, low=0.0)
        self.percentile = None if percentile is None else check_scalar("percentile", percentile, low=0.0, high=100.0)
        self.spacing = check_spacing(spacing)
        self.empty_hd = _check_fill("empty_hd", empty_hd)
        self.empty_nsd = _check_fill("empty_nsd", empty_nsd, 1.0)
        self.register_buffer("sums", torch.zeros(2, self.num_classes, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(2, self.num_classes, dtype=torch.int64))

    @torch.no_grad()
    def update(self, input: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch (``(N, C, *spatial)`` scores or hard predictions, 1 to 3 spatial axes)."""
        pm, tm = self._masks(input, target)
        nd = pm.dim() - 2
        if not 1 <= nd <= 3:
            raise ValueError(f"`input` must have 1 to 3 spatial axes; got shape {tuple(input.shape)}")
        spacing = self.spacing
        hd = hausdorff_distance(pm, tm, percentile=self.percentile, spacing=spacing, ndim=nd, empty=self.empty_hd)
        nsd = surface_dice(pm, tm, self.tolerance, spacing=spacing, ndim=nd, empty=self.empty_nsd)
        values = torch.stack([hd.double(), nsd], 1)  # (N, 2, K)
        defined = ~torch.isnan(values)
        self.sums += torch.where(defined, values, 0).sum(0)
        self.counts += defined.sum(0)

    @torch.no_grad()
    def compute(self, *, sync: bool = True, group=None) -> dict[str, torch.Tensor]:
        """``{"hausdorff", "surface_dice": float64 (K,), "mean_hausdorff", "mean_surface_dice": ()}``: per-class
        means over images (NaN where no image has a value) and their means over classes (NaN left out). ``sync``
        and ``group`` as in :meth:`ConfusionMetrics.compute`."""
        sums, counts = self._state(sync, group)
        mean = _ratio(sums, counts.double(), math.nan)
        out = {"hausdorff": mean[0], "surface_dice": mean[1]}
        out.update({f"mean_{k}": _nanmean(self._classes(v)) for k, v in list(out.items())})
        return out

