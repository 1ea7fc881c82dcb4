"""Losses over the whole confusion matrix: the Matthews correlation coefficient (tp, fp, fn and tn per class) and the
generalized Wasserstein Dice (errors weighed by a distance between classes).

Data flow: input checks (:func:`seglosses.core.checks.prepare`) -> per-class sums in plain torch, no one-hot: the soft
tp, fp, fn and tn of MCC, each its own sum of non-negative terms with 1 - p from log space (the fused region pass
gives fp and fn as differences of sums, whose rounding residue MCC's ratios amplify at an empty margin), or the
transport sums of the Wasserstein Dice -> one all-reduce with ``dist_sync`` ->
score (:func:`seglosses.core.formulas.mcc_loss`, :func:`seglosses.core.score.ratio_loss`) -> reduction. See
``docs/semantics.md`` for the contract.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from seglosses.core.args import Mode, Reduction, check_bool, check_classes, check_one_of, check_reduction
from seglosses.core.args import check_scalar
from seglosses.core.checks import (
    class_vector,
    compute_dtype,
    pixel_weights,
    prepare,
    reduce_classes,
    take,
    to_compute,
    to_device,
    values_at_hand,
)
from seglosses.core.dist import all_reduce_sum, is_active
from seglosses.core.formulas import check_distance_matrix, mcc_loss as mcc_formula
from seglosses.core.docs import PIXEL_WEIGHT
from seglosses.core.module import LossModule
from seglosses.core.score import ratio_loss, reduce_class_losses, reduce_rows
from seglosses.core.targets import dense_block, index_block
from seglosses.kernels.blocked import class_sums

#: The weightings of the generalized Wasserstein Dice (MONAI's ``weighting_mode``).
WEIGHTINGS = ("default", "GDL")

_COMMON = """
        smooth: s >= 0 (default 1e-5).
        per_image: compute the statistics per image instead of over the whole batch.
        ignore_index: target value whose pixels (elements, for binary/multilabel) are left out of every sum.
{pixel_weight}
        from_logits: the input holds logits (sigmoid/softmax applied here); False: probabilities used as given.
        dist_sync: with ``torch.distributed`` initialized, all-reduce the statistics over the ranks of
            ``process_group`` before the score (``per_image``: the mean or sum runs over every rank's images), so
            every rank computes the loss of the global batch; the backward pass is then a collective. Without a
            process group: the local loss.
        process_group: the group for ``dist_sync`` (default: the default group)."""


def _valid_input(x, valid, from_logits):
    """The input with a finite value at ignored elements (selected: a NaN there reaches nothing)."""
    return x if valid is None else torch.where(valid, x, 0.0 if from_logits else 0.5)


def _softmax_and_complement(x):
    """``(p, 1 - p)`` of the softmax over dim 1, each accurate to its own rounding: 1 - p_c is ``-expm1(log p_c)``
    where p_c <= 1/2 and, for a class whose logit is the unique largest, the sum of the other classes' p (the
    complement of a p near 1, which ``1 - p`` and ``-expm1`` lose below the rounding of p). Cheaper than
    :func:`seglosses.core.pixel.log1m_softmax` (no argmax, no second logsumexp), the same values."""
    logp = torch.log_softmax(x, 1)
    p = logp.exp()
    top = x == x.amax(1, keepdim=True)
    top = top & (top.sum(1, keepdim=True) == 1)  # (tied largest logits: each p <= 1/2, -expm1 is accurate)
    others = torch.where(top, 0.0, p).sum(1, keepdim=True)
    return p, torch.where(top, others, -torch.expm1(logp))


def _selected(pw, valid):
    """Pixel weights ``(N, 1 | C, S)`` (or None) with 0 at ignored entries ``valid`` (selected: a NaN weight there
    reaches nothing)."""
    return pw if pw is None or valid is None else torch.where(valid, pw, 0.0)


def _per_class(t, z, c):
    """``out[n, k] = sum_s z[n, s] [t[n, s] == k]`` ``(N, C)`` by scatter-adds (no one-hot); an empty input gives
    zeros that keep the graph."""
    out = torch.zeros(t.shape[0], c, dtype=z.dtype, device=z.device)
    if z.numel() == 0:
        return out + z.sum(-1, keepdim=True)
    class_sums(out, t, z)
    return out


def _confusion_sums(inp, mode, ignore_index, from_logits, pw=None):
    """Per-image soft ``tp, fp, fn, tn`` ``(N, C)``, each its own sum of non-negative terms over the valid elements:
    class indices: ``sum_{t = c} p_c``, ``sum_{t != c} p_c``, ``sum_{t = c} (1 - p_c)``, ``sum_{t != c} (1 - p_c)``;
    dense targets (the L1 form of the region losses): ``sum min(p, g)``, ``sum max(p - g, 0)``,
    ``sum max(g - p, 0)``, ``sum min(1 - p, 1 - g)``, so tp + fp + fn + tn is the valid count. 1 - p comes from log
    space (the sigmoid of -x; for the softmax the other classes' logsumexp), and no statistic is a difference of two
    sums (V - tp - fp - fn, or the region pass's P - T): a statistic that is 0 is exactly 0, which the ratios of MCC
    need where a margin is 0 (fp / (tn + fp) with tn = 0 turns a rounding residue into 1). No one-hot: the target
    class is picked by gathers and scatter-adds, and zeroed by one scatter. With pixel weights ``pw``
    ``(N, 1 | C, S)``, every term is multiplied by its element's weight."""
    dt = compute_dtype(inp.x)
    n, c, _ = inp.x.shape
    if inp.index:
        t, valid = index_block(inp.target, ignore_index, c)
        v = None if valid is None else valid.unsqueeze(1)
    else:
        g, v = dense_block(inp.target, ignore_index, dt)
    x = _valid_input(inp.x, v, from_logits)
    if not from_logits:
        p = to_compute(x)  # probabilities as given, as the region losses read them
        q = 1 - p
    elif mode == "multiclass":
        p, q = _softmax_and_complement(to_compute(x))
    else:
        x = to_compute(x)
        p, q = torch.sigmoid(x), torch.sigmoid(-x)  # each computed directly: 1 - p never formed (3x faster than
        # logsigmoid().exp(), the same values)
    pw = _selected(pw, v)
    if inp.index:
        ti = t.unsqueeze(1)
        wt = None if pw is None else (pw.gather(1, ti) if pw.shape[1] > 1 else pw).squeeze(1)  # the target's
        pos = []
        for z in (p, q):
            zt = z.gather(1, ti).squeeze(1)
            zt = zt if wt is None else zt * wt
            pos.append(_per_class(t, zt if valid is None else torch.where(valid, zt, 0.0), c))
        neg = [z.scatter(1, ti, 0.0) for z in (p, q)]  # the target class is no negative of its own
        if pw is not None:
            neg = [z * pw for z in neg]
        if v is not None:
            neg = [torch.where(v, z, 0.0) for z in neg]
        return pos[0], neg[0].sum(-1), pos[1], neg[1].sum(-1)
    h = 1 - g
    terms = (torch.minimum(p, g), (p - g).clamp_min(0.0), (q - h).clamp_min(0.0), torch.minimum(q, h))
    if pw is not None:
        terms = tuple(z * pw for z in terms)
    if v is not None:  # (g - p as (1 - p) - (1 - g): exact where g = 1, p near 1)
        terms = tuple(torch.where(v, z, 0.0) for z in terms)
    return tuple(z.sum(-1) for z in terms)


def mcc_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, smooth: float = 1e-5, per_image: bool = False,
             weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
             ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
             reduction: Reduction = "mean",
             dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Matthews correlation coefficient loss (Abhishek & Hamarneh 2021), one minus the soft MCC per class.

    .. math::
        \mathrm{MCC}_c = \frac{(tp_c + s)(tn_c + s) - fp_c\, fn_c}
        {\sqrt{(tp_c + fp_c + s)(tp_c + fn_c + s)(tn_c + fp_c + s)(tn_c + fn_c + s)}}, \qquad
        L_c = 1 - \mathrm{MCC}_c \in [0, 2]

    with tp, fp, fn the soft statistics of :func:`~seglosses.dice_loss` and tn the soft true negatives, each a sum
    over the valid elements of class c (hard targets: :math:`tp = \sum p g`, :math:`fp = \sum p (1 - g)`,
    :math:`fn = \sum (1 - p) g`, :math:`tn = \sum (1 - p)(1 - g)`; soft targets: the L1 form, tn =
    :math:`\sum \min(1 - p, 1 - g)`), and s = ``smooth``. At s = 0 it is the paper's MCC; s keeps it defined where a
    margin is 0: a class absent from target and prediction scores 1 (loss 0), as in the region losses; a class that
    fills every valid element (no negatives) loses the tn factors and scores :math:`\sqrt{(tp + s)/(tp + fn + s)}`
    times ~0, so only its exact prediction scores 1. The loss is computed as a sum of non-negative terms
    (:func:`seglosses.core.formulas.mcc_loss`), exact near MCC = 1, with a finite gradient everywhere for s > 0.
    With ``pixel_weight`` w every element's share of all four sums, tn included, is multiplied by w.

    Args:
        logits: ``(N, C, *)`` logits (or probabilities with ``from_logits=False``); ``(N, *)`` or ``(N, 1, *)`` for
            mode "binary".
        target: mode "binary"/"multilabel": the logits' shape, values in [0, 1] (hard or soft); "multiclass":
            integer class indices ``(N, *)`` or class probabilities ``(N, C, *)``.
        mode: "binary", "multiclass" or "multilabel".
        weight: per-class weights ``(C,)``; "mean" is the weighted mean ``sum_c w_c L_c / sum_c w_c``.
        classes: class indices to keep (for example all but background); None keeps all.
        reduction: "mean", "sum" or "none".{common}

    Returns:
        A scalar for "mean"/"sum"; for "none" the weighted per-class losses ``(K,)``, or ``(N, K)`` with
        ``per_image``, K being the number of kept classes. float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> x = torch.tensor([[[9.0, -9.0, 9.0, -9.0]]])         # (N=1, C=1, S=4), p = sigmoid(+-9)
        >>> t = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
        >>> round(seglosses.mcc_loss(x, t, "binary").item(), 4)  # 1 - MCC = 2 sigmoid(-9)
        0.0002

    References:
        Abhishek, Hamarneh. Matthews Correlation Coefficient Loss for Deep Convolutional Networks: Application to
        Skin Lesion Segmentation. IEEE ISBI 2021. arXiv 2010.13454.
        Matthews. Comparison of the predicted and observed secondary structure of T4 phage lysozyme. BBA 1975.
    """
    reduction = check_reduction(reduction)
    smooth = check_scalar("smooth", smooth, low=0.0)
    inp = prepare(logits, target, mode, ignore_index)  # (checks ignore_index)
    check_bool("per_image", per_image)
    check_bool("from_logits", from_logits)
    sync = check_bool("dist_sync", dist_sync)
    classes = check_classes(classes, inp.c)
    w = class_vector("weight", weight, inp.c, logits.device)
    pw = pixel_weights(pixel_weight, logits, mode, inp)
    tp, fp, fn, tn = _confusion_sums(inp, mode, ignore_index, from_logits, pw)
    if not per_image:
        tp, fp, fn, tn = (z.sum(0, keepdim=True) for z in (tp, fp, fn, tn))
    if sync and not per_image:  # one all-reduce of 4 x C numbers
        tp, fp, fn, tn = all_reduce_sum(torch.stack([tp, fp, fn, tn]), process_group).unbind(0)
    if classes is not None:
        tp, fp, fn, tn = (take(z, classes) for z in (tp, fp, fn, tn))
        w = None if w is None else take(w, classes, 0)
    loss = mcc_formula(tp, fp, fn, tn, smooth, torch)
    w = None if w is None else w.to(loss.dtype)
    return reduce_class_losses(loss, w, per_image=per_image, reduction=reduction, sync=sync and is_active(),
                               group=process_group)


mcc_loss.__doc__ = (mcc_loss.__doc__ or "").replace("{common}", _COMMON).replace(
    "{pixel_weight}", textwrap.indent(PIXEL_WEIGHT.strip("\n"), "    "))


# ------------------------------------------------------------------------------- generalized Wasserstein Dice ---
def distance_matrix_tensor(value: Any, k: int | None, device=None) -> torch.Tensor | None:
    """The checked ``(k, k)`` distance matrix (:func:`~seglosses.core.formulas.check_distance_matrix`) as a floating
    tensor on ``device`` (None stays None). A tensor's values are checked where they are at hand (CPU, outside
    torch.compile); a GPU tensor's only for shape (reading its values would sync)."""
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        return to_device(torch.tensor(check_distance_matrix(value, k), dtype=torch.float64), device or "cpu")
    if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"`distance_matrix` must hold real numbers; got dtype {value.dtype}")
    if value.dim() == 2 and values_at_hand(value):
        check_distance_matrix(value.tolist(), k)
    elif value.dim() != 2 or value.shape[0] != value.shape[1] or (k is not None and value.shape[0] != k):
        kk = k if k is not None else "C"
        raise ValueError(f"`distance_matrix` must have shape ({kk}, {kk}); got {tuple(value.shape)}")
    m = value if value.is_floating_point() else value.double()
    return m if device is None else to_device(m, device)


def _two_state_sums(inp, ignore_index, from_logits, m, pw=None):
    """Binary/multilabel: each element is a two-state problem (absent, present), prediction (1 - p, p), target
    (1 - g, g). Per-image sums ``(N, C, 2)`` by target state k: A (mass kept or moved into k, times 1 - M[k, .]),
    B (mass moved into k, times M[k, .]) and the volume V = sum (1 - g), sum g."""
    dt = compute_dtype(inp.x)
    g, v = dense_block(inp.target, ignore_index, dt)
    x = _valid_input(inp.x, v, from_logits)
    if from_logits:
        x = to_compute(x)
        p, q = torch.sigmoid(x), torch.sigmoid(-x)  # each computed directly: 1 - p never formed (3x faster than
        # logsigmoid().exp(), the same values)
    else:
        p = to_compute(x)
        q = 1 - p
    h = 1 - g
    # the optimal transport plan of (q, p) onto (h, g): keep min at each state, move the excess across; each moved
    # mass written from the side where it is accurate (p where g = 0, q = 1 - p where g = 1)
    keep0, keep1 = torch.minimum(q, h), torch.minimum(p, g)
    move01, move10 = (p - g).clamp_min(0.0), (q - h).clamp_min(0.0)  # predicted present -> absent, and back
    if m is None:
        a0, a1, b0, b1 = keep0, keep1, move01, move10
    else:
        m01, m10 = m[0, 1].to(dt), m[1, 0].to(dt)
        a0, a1 = keep0 + (1 - m01) * move01, keep1 + (1 - m10) * move10
        b0, b1 = m01 * move01, m10 * move10
    sums = (a0, a1, b0, b1, h, g)
    pw = _selected(pw, v)
    if pw is not None:
        sums = tuple(z * pw for z in sums)
    sums = [torch.where(v, z, 0.0) if v is not None else z for z in sums]
    a0, a1, b0, b1, h, g = (z.sum(-1) for z in sums)
    return torch.stack([a0, a1], -1), torch.stack([b0, b1], -1), torch.stack([h, g], -1)


def _multiclass_sums(inp, ignore_index, from_logits, m, pw=None):
    """Multiclass: per-image sums ``(N, C)`` by target class t of A = sum (1 - M[t, .]) . p, B = sum M[t, .] . p
    (the Wasserstein distance W of Fidon et al.'s eq. 6) and the class volume V; class probabilities as targets:
    the 0-1 distance only (the plan keeps min(p_c, g_c) in place)."""
    dt = compute_dtype(inp.x)
    n, c, s = inp.x.shape
    if not inp.index:
        if m is not None:
            raise ValueError("`distance_matrix` needs class-index targets (N, *) in mode='multiclass': between two "
                             "class distributions the Wasserstein distance of a general matrix has no closed form; "
                             "with class probabilities as targets use distance_matrix=None (the 0-1 distance)")
        g, v = dense_block(inp.target, ignore_index, dt)
        x = _valid_input(inp.x, v, from_logits)
        if from_logits:
            p, q = _softmax_and_complement(to_compute(x))
        else:
            p = to_compute(x)
            q = 1 - p
        a, b = torch.minimum(p, g), (q - (1 - g)).clamp_min(0.0)  # kept; moved into c (accurate where g = 1)
        sums = (a, b, g) if pw is None else (a * pw, b * pw, g * pw)  # (no ignore_index with probabilities)
        sums = [z if v is None else torch.where(v, z, 0.0) for z in sums]
        return tuple(z.sum(-1) for z in sums)
    t, valid = index_block(inp.target, ignore_index, c)
    x = _valid_input(inp.x, None if valid is None else valid.unsqueeze(1), from_logits)
    ti = t.unsqueeze(1)
    if m is None:  # W = 1 - p_t, from log p_t where it is accurate
        if from_logits:
            logpt = torch.log_softmax(to_compute(x), 1).gather(1, ti).squeeze(1)
            a, b = logpt.exp(), -torch.expm1(logpt)
        else:  # probabilities as given: W = the other classes' mass (every class read: a NaN there is not hidden)
            p = to_compute(x)
            a, b = p.gather(1, ti).squeeze(1), p.scatter(1, ti, 0.0).sum(1)
    else:
        p = torch.softmax(to_compute(x), 1) if from_logits else to_compute(x)
        mm = m.to(dt)
        b = (mm[t].transpose(1, 2) * p).sum(1)        # W = sum_c M[t, c] p_c, rows gathered: no C x C x S tensor
        a = ((1 - mm)[t].transpose(1, 2) * p).sum(1)  # 1 - W, as its own sum
    ones = torch.ones_like(a)
    pw = _selected(None if pw is None else pw[:, 0], valid)  # (one weight per pixel)
    if pw is not None:
        a, b, ones = a * pw, b * pw, pw
    if valid is not None:
        a, b, ones = (torch.where(valid, z, 0.0) for z in (a, b, ones))
    return tuple(_per_class(t, z, c) for z in (a, b, ones))


def generalized_wasserstein_dice_loss(
        logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
        distance_matrix: Sequence[Sequence[float]] | torch.Tensor | None = None,
        weighting_mode: Literal["default", "GDL"] = "default", smooth: float = 1e-5, per_image: bool = False,
        ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
        reduction: Reduction = "mean", dist_sync: bool = False,
        process_group: torch.distributed.ProcessGroup | None = None) -> torch.Tensor:
    r"""Generalized Wasserstein Dice loss (Fidon et al. 2017): a Dice whose errors are weighed by a distance between
    classes, so that confusing two close classes costs less than confusing far ones.

    .. math::
        W_i = \sum_c M_{t_i c}\, p_{ic}, \qquad TP = \sum_i \alpha_{t_i} (1 - W_i), \qquad
        L = 1 - \frac{2\,TP + s}{2\,TP + \sum_i \beta_{t_i} W_i + s}

    over the valid pixels i, with :math:`t_i` the target class, p the softmax, M the ``distance_matrix`` divided by
    its largest entry, and the weights ("default", the paper's) :math:`\alpha_0 = 0` for the background (class 0),
    :math:`\alpha_c = 1` otherwise, :math:`\beta = 1`; or ("GDL", Tilborghs et al. 2020)
    :math:`\alpha_c = \beta_c = 1 / (V_c + 1)`, :math:`V_c` the volume of class c (per image with ``per_image``,
    else over the batch). This is MONAI's ``GeneralizedWassersteinDiceLoss`` (with ``smooth_nr = smooth_dr = s`` and
    ``per_image=True``, its only setting). The loss is computed as ``err / den`` (:func:`~seglosses.core.score.
    ratio_loss`), exact near 0.

    ``distance_matrix=None`` is the 0-1 distance (M = 1 - I): W = 1 - p_t, the total variation. With class
    probabilities as targets (0-1 distance only), W is the total variation between prediction and target and TP
    sums :math:`\alpha_c \min(p_c, g_c)`, the mass the optimal plan keeps in place.

    Modes "binary" and "multilabel": each element is a two-state problem, absent (0, background) or present (1),
    prediction (1 - p, p) against target (1 - g, g), and ``distance_matrix`` is the (2, 2) matrix between the states
    (the labels of "multilabel" are not exclusive, so no mass moves between labels: there is no distance between
    them); the sums run over every element (of every label), one score. With the 0-1 distance and "default"
    weighting this is the Dice loss of the foreground pooled over the elements; soft targets are transported exactly
    (two states: keep min, move the excess).

    With ``pixel_weight`` w each pixel's (element's) share of every sum (A, B and the volumes V of "GDL") is
    multiplied by w. Mode "multiclass" takes one weight per pixel (``(N, *spatial)``): W is a distance over all
    classes of the pixel.

    Args:
        logits: ``(N, C, *)`` logits (or probabilities with ``from_logits=False``); ``(N, *)`` or ``(N, 1, *)`` for
            mode "binary".
        target: "multiclass": class indices ``(N, *)`` (any ``distance_matrix``) or class probabilities
            ``(N, C, *)`` (``distance_matrix=None``); "binary"/"multilabel": the logits' shape, values in [0, 1].
        mode: "binary", "multiclass" or "multilabel".
        distance_matrix: the ``(C, C)`` distances between classes ("multiclass"; ``(2, 2)`` between absent and
            present otherwise): finite, >= 0, 0 on the diagonal; normalised by its largest entry. None: 0-1.
        weighting_mode: "default" (the paper: background 0, other classes 1) or "GDL" (1 / (volume + 1)).
        reduction: "mean", "sum" or "none".{common}

    Returns:
        A scalar for "mean"/"sum"; for "none" a 0-d tensor, or ``(N,)`` with ``per_image``. float32 for
        half-precision input.

    Example:
        >>> import torch, seglosses
        >>> m = [[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1.0, 0.5, 0.0]]
        >>> x = torch.tensor([[[0.0], [9.0], [9.0]]])             # (N=1, C=3, S=1): p = (~0, 1/2, 1/2)
        >>> round(seglosses.generalized_wasserstein_dice_loss(x, torch.tensor([[1]]), "multiclass",
        ...       distance_matrix=m).item(), 4)                      # W = 1/4, TP = 3/4: 1 - 1.5 / 1.75
        0.1429

    References:
        Fidon, Li, Garcia-Peraza-Herrera, Ekanayake, Kitchen, Ourselin, Vercauteren. Generalised Wasserstein Dice
        Score for Imbalanced Multi-class Segmentation using Holistic Convolutional Networks. BrainLes 2017.
        arXiv 1707.00478.
        Tilborghs et al. Comparative study of deep learning methods for the automatic segmentation of lung, lesion
        and lesion type in CT scans of COVID-19 patients. arXiv 2007.15546 (the "GDL" weighting).
    """
    reduction = check_reduction(reduction)
    check_one_of("weighting_mode", weighting_mode, WEIGHTINGS)
    smooth = check_scalar("smooth", smooth, low=0.0)
    inp = prepare(logits, target, mode, ignore_index)  # (checks ignore_index)
    check_bool("per_image", per_image)
    check_bool("from_logits", from_logits)
    sync = check_bool("dist_sync", dist_sync)
    two_state = mode != "multiclass"
    m = distance_matrix_tensor(distance_matrix, 2 if two_state else inp.c, logits.device)
    if m is not None:
        m = m / m.max()  # MONAI's normalisation (a no-op for a matrix whose largest entry is 1)
    pw = pixel_weights(pixel_weight, logits, mode, inp, per_class=two_state)
    if two_state:
        a, b, vol = _two_state_sums(inp, ignore_index, from_logits, m, pw)
    else:
        a, b, vol = _multiclass_sums(inp, ignore_index, from_logits, m, pw)
    if not per_image:
        a, b, vol = (z.sum(0, keepdim=True) for z in (a, b, vol))
    if sync and not per_image:  # one all-reduce: the weights need the global volumes
        a, b, vol = all_reduce_sum(torch.stack([a, b, vol]), process_group).unbind(0)
    if weighting_mode == "GDL":
        alpha = beta = 1 / (vol + 1)
        err = (beta * b).flatten(1).sum(-1)
    else:
        # the background (class 0, or the absent state) has no true positives
        alpha = torch.cat([torch.zeros_like(vol[..., :1]), torch.ones_like(vol[..., 1:])], -1)
        err = b.flatten(1).sum(-1)
    tp = (alpha * a).flatten(1).sum(-1)
    loss = ratio_loss(err.clamp_min(0.0), 2 * tp.clamp_min(0.0) + smooth, False)
    if not per_image:
        return reduce_classes(loss[0], None, reduction)
    if reduction == "none":
        return loss
    return reduce_rows(loss.unsqueeze(-1), None, reduction, sync and is_active(), process_group)


generalized_wasserstein_dice_loss.__doc__ = (generalized_wasserstein_dice_loss.__doc__ or "").replace(
    "{common}", _COMMON).replace("{pixel_weight}", textwrap.indent(PIXEL_WEIGHT.strip("\n"), "    "))


class MCCLoss(LossModule):
    """Module form of :func:`mcc_loss`; takes the same keyword arguments."""

    _fn = staticmethod(mcc_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, smooth: float = 1e-5, per_image: bool = False,
                     weight: Sequence[float] | torch.Tensor | None = None, classes: Sequence[int] | None = None,
                     ignore_index: int | None = None, from_logits: bool = True, reduction: Reduction = "mean",
                     dist_sync: bool = False, process_group: torch.distributed.ProcessGroup | None = None) -> None: ...


class GeneralizedWassersteinDiceLoss(LossModule):
    """Module form of :func:`generalized_wasserstein_dice_loss`; takes the same keyword arguments. The
    ``distance_matrix`` is checked here and kept as a buffer (it follows ``.to()``)."""

    _fn = staticmethod(generalized_wasserstein_dice_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, distance_matrix: Sequence[Sequence[float]] | torch.Tensor | None = None,
                     weighting_mode: Literal["default", "GDL"] = "default", smooth: float = 1e-5,
                     per_image: bool = False, ignore_index: int | None = None, from_logits: bool = True,
                     reduction: Reduction = "mean", dist_sync: bool = False,
                     process_group: torch.distributed.ProcessGroup | None = None) -> None: ...
    else:
        def __init__(self, mode: Mode | None = None, **options: Any) -> None:
            matrix = options.pop("distance_matrix", None)
            super().__init__(mode, **options)
            if matrix is not None:  # checked now (its size against C at the call); a buffer: it follows .to()
                t = distance_matrix_tensor(matrix, None)
                self.register_buffer("distance_matrix", t.clone() if t is matrix else t)

        def extra_repr(self) -> str:
            b = self._buffers.get("distance_matrix")
            return super().extra_repr() + ("" if b is None else f", distance_matrix=<buffer {tuple(b.shape)}>")
