"""Hard-pixel mining losses: the cross-entropy over the hardest pixels only, TopK (nnU-Net) and OHEM (mmseg).

Both take the per-pixel cross-entropy map of :func:`seglosses.cross_entropy_loss` (its fused pass: ``weight`` and
``label_smoothing`` apply to each pixel's loss before the selection) and average it over a selection of the valid
pixels, made without a host sync: the selection's size is data-dependent (a share of the valid pixels, the pixels
under a probability), so a static-size ``topk`` / ``kthvalue`` over the map, with the ignored pixels sorted last, is
cut by a tensor comparison. In modes "binary" and "multilabel" the "pixels" are the elements (each class channel's
sigmoid binary cross-entropy); in mode "multiclass" the pixels, with the softmax cross-entropy.

The selection is made per image (``per_image=True``) or over the batch; each row's loss is the mean of its selected
pixels (0 when it has no valid pixel). Reduction "none" gives these values (``()``, or ``(N,)`` per image), "mean"
their mean over the rows that have valid pixels, "sum" their sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from seglosses.core.checks import pixel_weights, values_at_hand
from seglosses.core.args import Mode, Reduction, check_bool, check_count, check_scalar, top_share
from seglosses.core.docs import PIXEL_WEIGHT, fill_doc
from seglosses.core.module import LossModule
from seglosses.core.targets import valid_indices
from seglosses.losses.focal import FocalParts, focal_parts

_ARGS = """
    Args:
        logits: ``(N, C, *)`` logits (or probabilities with ``from_logits=False``); ``(N, *)`` or ``(N, 1, *)`` for
            mode "binary".
        target: "binary"/"multilabel": the logits' shape, values in [0, 1]; "multiclass": integer class indices
            ``(N, *)`` (any integer dtype) or class probabilities ``(N, C, *)``.
        mode: "binary", "multiclass" or "multilabel".
        {option}
        weight: per-class weights ``(C,)``: each pixel's cross-entropy is multiplied by its class's weight (as
            ``F.cross_entropy(..., reduction="none")``) before the selection; the mean over the selected pixels is
            a plain mean.
        ignore_index: target value whose pixels (elements in "binary"/"multilabel") are never selected nor counted,
            and get zero gradient.
        {pixel_weight}
            Here a pixel's weight is its multiplicity: it counts w times in the selection's size and in the mean
            (docs/semantics.md, "Pixel weights"); the pixels are ranked by their unweighted loss.
        label_smoothing: e in [0, 1], applied to each pixel's cross-entropy as in :func:`seglosses.cross_entropy_loss`.
        per_image: select the hardest pixels of each image, and average the images' losses; False: over the batch.
        from_logits: False: the input holds probabilities, clamped to [1e-7, 1 - 1e-7] before the log.
        reduction: "mean" (over the rows, images or the batch, that have valid pixels), "sum" (over the rows) or
            "none" (the rows' losses: ``()``, or ``(N,)`` with ``per_image``).

    Returns:
        A scalar, or for "none" ``()`` / ``(N,)``. float32 for half-precision input.
"""


def _ce_map(logits, target, mode, weight, ignore_index, label_smoothing, from_logits, reduction) -> FocalParts:
    """The per-pixel cross-entropy map (the focal pass at gamma = 0): ``(N, S)`` (multiclass) or ``(N, C, S)``."""
    return focal_parts(logits, target, mode, alpha=None, gamma=0.0, weight=weight, ignore_index=ignore_index,
                       label_smoothing=label_smoothing, from_logits=from_logits, reduction=reduction, reduce=False)


def _valid(f: FocalParts, ignore_index):
    """The valid mask of the map (None: all valid): the class indices' rule of the fused pass (ignored or outside
    [0, C)), or the dense target's ``!= ignore_index``."""
    if f.inp.index:
        if ignore_index is None and values_at_hand(f.inp.target):  # the labels were checked in [0, C)
            return None
        return valid_indices(f.inp.target, ignore_index, f.inp.c)
    return None if ignore_index is None else f.inp.target != ignore_index


def _rows(t: torch.Tensor, per_image: bool) -> torch.Tensor:
    """``(N, ...)`` as rows: ``(N, size of an image)`` with ``per_image``, else ``(1, size of the batch)``."""
    return t.reshape(t.shape[0], math.prod(t.shape[1:])) if per_image else t.reshape(1, t.numel())


def _reduce_rows(loss, count, reduction, per_image):
    """Rows' losses ``(R,)`` and their valid counts: "none" ``(N,)`` (or ``()``), "sum", or "mean" over the rows
    that have valid pixels (0 if none has)."""
    if reduction == "none":
        return loss if per_image else loss[0]
    if reduction == "sum":
        return loss.sum()
    rows = (count > 0).sum().to(loss.dtype)
    return loss.sum() / torch.where(rows > 0, rows, 1.0)


def _check_common(per_image):
    check_bool("per_image", per_image)


def _weights(f: FocalParts, logits, mode, pixel_weight, valid, per_image):
    """The pixel weights as rows like the map (:func:`_rows`), 0 at ignored entries (selected: a NaN there reaches
    nothing); None without ``pixel_weight``. ``valid``: the rows' valid mask (None: all valid)."""
    pw = pixel_weights(pixel_weight, logits, mode, f.inp, per_class=mode != "multiclass")
    if pw is None:
        return None
    w = _rows(pw.squeeze(1) if mode == "multiclass" else pw.expand(f.inp.n, f.inp.c, f.inp.s), per_image)
    return w if valid is None else torch.where(valid, w, 0.0)


@fill_doc(args=_ARGS, pixel_weight=PIXEL_WEIGHT,
          option="k: the share of the valid pixels kept, in percent, in (0, 100].")
def topk_cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, k: float = 10.0,
                            weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
                            pixel_weight: torch.Tensor | None = None, label_smoothing: float = 0.0,
                            per_image: bool = False, from_logits: bool = True,
                            reduction: Reduction = "mean") -> torch.Tensor:
    r"""TopK cross-entropy (nnU-Net's ``TopKLoss``): the mean cross-entropy of the k% valid pixels with the largest.

    .. math::
        \ell = \frac{1}{m} \sum_{j < m} \mathrm{CE}_{(j)}, \qquad m = \lceil k\, n / 100 \rceil

    with :math:`\mathrm{CE}_{(0)} \ge \mathrm{CE}_{(1)} \ge \dots` the cross-entropies of the n valid pixels of the
    row (an image with ``per_image``, else the batch) sorted down. Ignored pixels count neither in n nor in the mean
    (nnU-Net's ``TopKLoss`` takes k% of every voxel, ignored ones included with a zero loss, which dilutes the mean
    under sparse labels); m rounds up (nnU-Net's ``int()`` rounds down, the same where k% of the count is whole), so
    a row with a valid pixel keeps at least one. Ties do not change the value. m is a tensor: the sum runs over a
    static ``topk`` of ``ceil(k / 100 * size)`` values, cut at rank m, without a host sync.

    With ``pixel_weight`` w each pixel counts w times (an integer weight is the pixel repeated): n is the row's
    weight sum, :math:`m = \lceil k\, n / 100 \rceil`, the pixels sorted down by their (unweighted) CE fill the
    weight m, the last one with the part of its weight that fits, and the loss is the weighted mean of what was
    filled (over :math:`\min(m, n)`). A full sort of each row (the weights decide how many pixels fill m).

    {args}

    Example:
        >>> import torch, seglosses
        >>> x = torch.tensor([[[4.0, 0.0, -4.0, 0.0]]])  # binary, one image of 4 pixels
        >>> t = torch.tensor([[[1.0, 1.0, 1.0, 255.0]]])  # the last one ignored
        >>> loss = seglosses.topk_cross_entropy_loss(x, t, "binary", k=50.0, ignore_index=255)
        >>> round(loss.item(), 6)  # the 2 hardest of 3 valid: (softplus(4) + ln 2) / 2
        2.355649

    References:
        Isensee, Jaeger, Kohl, Petersen, Maier-Hein. nnU-Net. Nature Methods 2021 (TopKLoss, DC_and_topk_loss of
        nnunetv2/training/loss). Wu, Shen, van den Hengel. Bridging category-level and instance-level semantic image
        segmentation. arXiv 1605.06885 (bootstrapped cross-entropy).
    """
    f = _ce_map(logits, target, mode, weight, ignore_index, label_smoothing, from_logits, reduction)
    k = check_scalar("k", k, low=0.0, high=100.0, low_open=True)
    _check_common(per_image)
    loss, valid = _rows(f.out, per_image), _valid(f, ignore_index)
    w = _weights(f, logits, mode, pixel_weight, None if valid is None else _rows(valid, per_image), per_image)
    if w is not None:
        rows, weight_sum = _weighted_top(loss, w, k)
        return _reduce_rows(rows, weight_sum, f.reduction, per_image)
    size = loss.shape[1]
    if valid is None:
        count = torch.full((loss.shape[0],), size, dtype=torch.int64, device=loss.device)
    else:
        valid = _rows(valid, per_image)
        count = valid.sum(1)
        loss = torch.where(valid, loss, float("-inf"))  # ignored pixels sort last
    top = top_share(k, size)  # static: at least m of every row
    m = torch.ceil(count.to(torch.float64) * k / 100).to(torch.int64)  # the same operations as top_share
    if valid is None:  # every entry valid: m == top, the sum of the top values in any order
        total = loss.topk(top, dim=1, sorted=False).values.sum(1)
    else:
        vals = loss.topk(top, dim=1).values  # sorted: ranks >= m cut off
        rank = torch.arange(top, device=loss.device)
        total = torch.where(rank < m.unsqueeze(1), vals, 0.0).sum(1)
    rows = total / torch.where(m > 0, m, 1).to(total.dtype)
    return _reduce_rows(rows, count, f.reduction, per_image)


def _weighted_top(loss, w, k):
    """TopK's rows with pixel weights ``w`` (0 at ignored entries): the weighted mean of the largest losses filling
    the weight ``m = ceil(k% of the row's weight)``; (rows' losses, rows' weights)."""
    total_w = w.sum(1)
    m = torch.ceil(total_w.to(torch.float64) * k / 100).to(w.dtype)  # as the unweighted m: the same at weight 1
    vals, order = loss.sort(dim=1, descending=True)
    ws = w.gather(1, order)
    before = ws.cumsum(1) - ws  # the weight of the larger losses
    part = torch.minimum(ws, (m.unsqueeze(1) - before).clamp_min(0.0))  # how much of each pixel's weight fits
    den = torch.minimum(m, total_w)
    return (vals * part).sum(1) / torch.where(den > 0, den, 1.0), total_w


def _log_pt(f: FocalParts, logits, target, mode, ignore_index, from_logits) -> torch.Tensor:
    """``log p_t = -CE`` of every entry, the cross-entropy without ``weight`` nor label smoothing: the map already
    computed when neither is given, else a second fused pass. Detached; arbitrary at ignored entries."""
    if f.weight is None and not f.smoothing:
        return -f.out.detach()
    plain = _ce_map(logits, target, mode, None, ignore_index, 0.0, from_logits, f.reduction)
    return -plain.out.detach()


@fill_doc(args=_ARGS, pixel_weight=PIXEL_WEIGHT,
          option="threshold: in [0, 1]: pixels whose target probability is below it are kept.\n"
          "        min_kept: the least number of pixels kept per image (>= 0): the hardest ones, by target "
          "probability.")
def ohem_cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, threshold: float = 0.7,
                            min_kept: int = 100000, weight: Sequence[float] | torch.Tensor | None = None,
                            ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None,
                            label_smoothing: float = 0.0, per_image: bool = False, from_logits: bool = True,
                            reduction: Reduction = "mean") -> torch.Tensor:
    r"""OHEM cross-entropy (mmseg's ``OHEMPixelSampler`` with ``thresh``): the mean cross-entropy of the valid pixels
    whose target probability is below a threshold, and at least the ``min_kept`` hardest.

    .. math::
        K = \{i \text{ valid} : p_{t,i} < \tau \ \text{ or } \ p_{t,i} \le p_{t,(q)}\}, \qquad
        \ell = \frac{1}{|K|} \sum_{i \in K} \mathrm{CE}_i

    with :math:`p_{t,(q)}` the q-th smallest target probability of the row's valid pixels, q = ``min_kept`` per
    image (times N over the batch, as mmseg's ``batch_kept``; every valid pixel if fewer), and
    :math:`p_t = \exp(-\mathrm{CE})` from the cross-entropy without ``weight`` nor label smoothing: for hard targets
    the softmax probability of the target class (mmseg's ``seg_prob``), or per element the sigmoid probability of
    the target value; for soft targets :math:`\prod_c p_c^{g_c}` (sigmoid: :math:`p^y (1 - p)^{1 - y}`). It is
    compared in log space. Where the probabilities are distinct and q is below the valid count this is mmseg's
    selection (``p_t < max(p_(q), thresh)``, 0-based ``p_(q)``); with q at or above it mmseg drops the easiest
    pixel(s) (those at the largest ``p_t``) unless it is below the threshold, where this keeps every valid pixel ("at
    least min_kept"). The selection is a constant for the gradient. mmseg averages the kept losses over every pixel
    (``avg_non_ignore=False``; over the valid ones with True), this loss over the kept ones (as PaddleSeg's
    ``OhemCrossEntropyLoss``): mmseg's value is this one's times the kept share. ``kthvalue`` of a static rank
    ``min(q, size)``: no host sync.

    With ``pixel_weight`` w each pixel counts w times (an integer weight is the pixel repeated): :math:`p_{t,(q)}`
    is the smallest :math:`p_t` at which the weight of the pixels sorted up by :math:`p_t` reaches q (every valid
    pixel is kept if the row's weight is below q; a sort of each row), and the loss is the weighted mean
    :math:`\sum_K w\, \mathrm{CE} / \sum_K w`.

    {args}

    Example:
        >>> import torch, seglosses
        >>> x = torch.tensor([[[4.0, 0.0, -4.0, 3.0]]])  # binary: p_t = 0.982, 0.5, 0.018, 0.953
        >>> t = torch.ones(1, 1, 4)
        >>> loss = seglosses.ohem_cross_entropy_loss(x, t, "binary", threshold=0.7, min_kept=3)
        >>> round(loss.item(), 6)  # 2 below 0.7, then the 3rd hardest: (ln 2 + softplus(4) + softplus(-3)) / 3
        1.586628

    References:
        Shrivastava, Gupta, Girshick. Training Region-based Object Detectors with Online Hard Example Mining. CVPR
        2016. arXiv 1604.03540. mmsegmentation, mmseg/models/sampler/ohem_pixel_sampler.py (OHEMPixelSampler).
    """
    f = _ce_map(logits, target, mode, weight, ignore_index, label_smoothing, from_logits, reduction)
    threshold = check_scalar("threshold", threshold, low=0.0, high=1.0)
    min_kept = check_count("min_kept", min_kept)
    _check_common(per_image)
    loss, valid = _rows(f.out, per_image), _valid(f, ignore_index)
    size = loss.shape[1]
    if valid is not None:
        valid = _rows(valid, per_image)
    w = _weights(f, logits, mode, pixel_weight, valid, per_image)
    with torch.no_grad():
        lpt = _rows(_log_pt(f, logits, target, mode, ignore_index, from_logits), per_image)
        if valid is not None:
            lpt = torch.where(valid, lpt, float("inf"))  # ignored pixels sort last
        # negated comparisons: a NaN p_t (a NaN target or logit at a valid pixel) is kept, so the loss is NaN
        keep = ~(lpt >= (math.log(threshold) if threshold > 0 else float("-inf")))
        q = min(min_kept * (1 if per_image else f.inp.n), size)
        if q and w is not None:
            keep = keep | ~(lpt > _weighted_kth(lpt, w, min_kept * (1 if per_image else f.inp.n)))
        elif q:
            keep = keep | ~(lpt > lpt.kthvalue(q, dim=1, keepdim=True).values)
        if valid is not None:
            keep = keep & valid
        if w is not None:
            kept, count = torch.where(keep, w, 0.0).sum(1), w.sum(1)
        else:
            kept = keep.sum(1)
            count = torch.full_like(kept, size) if valid is None else valid.sum(1)
    if w is not None:
        loss = loss * w
    total = torch.where(keep, loss, 0.0).sum(1)
    rows = total / torch.where(kept > 0, kept, 1).to(total.dtype)
    return _reduce_rows(rows, count, f.reduction, per_image)


def _weighted_kth(lpt, w, q):
    """``(R, 1)``: per row, the smallest value of ``lpt`` at which the weights ``w`` of the values sorted up reach
    ``q`` (+inf where the row's weight stays below q): the q-th smallest of the values each repeated w times."""
    vals, order = lpt.sort(dim=1)
    reached = w.gather(1, order).cumsum(1) >= q
    first = (~reached).sum(1, keepdim=True)  # the index of the first entry that reaches q (size: none)
    kth = vals.gather(1, first.clamp_max(vals.shape[1] - 1))
    return torch.where(first < vals.shape[1], kth, float("inf"))


class TopKCrossEntropyLoss(LossModule):
    """Module form of :func:`topk_cross_entropy_loss`; takes the same keyword arguments."""

    _fn = staticmethod(topk_cross_entropy_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, k: float = 10.0, weight: Sequence[float] | torch.Tensor | None = None,
                     ignore_index: int | None = None, label_smoothing: float = 0.0, per_image: bool = False,
                     from_logits: bool = True, reduction: Reduction = "mean") -> None: ...


class OHEMCrossEntropyLoss(LossModule):
    """Module form of :func:`ohem_cross_entropy_loss`; takes the same keyword arguments."""

    _fn = staticmethod(ohem_cross_entropy_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, threshold: float = 0.7, min_kept: int = 100000,
                     weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
                     label_smoothing: float = 0.0, per_image: bool = False, from_logits: bool = True,
                     reduction: Reduction = "mean") -> None: ...
