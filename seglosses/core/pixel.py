"""Log-probabilities, the one-vs-rest target and its sums, shared by the per-pixel terms of the survey losses.

Everything is computed from logits in log space: ``log p`` and ``log(1 - p)`` are both finite for any finite logit
(for the softmax, ``log(1 - p_c)`` of the largest class is ``logsumexp`` of the other logits minus ``logsumexp`` of
all, never ``log(1 - p)`` of a rounded p), so powers ``(1 - p)^gamma = exp(gamma log(1 - p))`` and their gradients
stay bounded. Class-index targets are never expanded to one-hot: sums over classes weighted by the target are
gathers (:func:`target_sum`), per-class sums over pixels are scatter-adds.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from seglosses.core.args import check_bool, check_scalar
from seglosses.core.checks import Inputs, compute_dtype, pixel_weights, prepare, probs_to_logits, to_compute
from seglosses.core.targets import dense_block, index_block


class Pixels(NamedTuple):
    inp: Inputs
    logp: torch.Tensor          # (N, C, S) log p, compute dtype
    log1mp: torch.Tensor | None  # (N, C, S) log(1 - p); None when not asked for
    t: torch.Tensor | None      # (N, S) int64 class indices (0 at ignored pixels), index targets only
    g: torch.Tensor | None      # (N, C, S) dense target in the compute dtype (0 at ignored elements)
    valid: torch.Tensor | None  # (N, S) or (N, C, S) bool (None: every element valid)
    smoothing: float
    softmax: bool               # mode "multiclass": p = softmax(x), one loss value per pixel
    weight: torch.Tensor | None = None  # pixel weights: (N, S) softmax, else (N, 1 | C, S); 0 at ignored entries


def log1m_softmax(x: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """``log(1 - softmax(x))`` over dim 1, finite for finite x: the largest class from the other logits' logsumexp,
    the others (p <= 1/2) as ``log1p(-p)``."""
    lse = torch.logsumexp(x, 1, keepdim=True)
    top = x.argmax(1, keepdim=True)
    is_top = torch.zeros_like(x, dtype=torch.bool).scatter_(1, top, True)
    others = torch.logsumexp(x.masked_fill(is_top, float("-inf")), 1, keepdim=True) - lse
    safe = torch.where(is_top, torch.full_like(logp, -1.0), logp)  # no -inf in the branch where() drops
    return torch.where(is_top, others, torch.log1p(-torch.exp(safe)))


def pixels(logits, target, mode, *, ignore_index, from_logits, label_smoothing=0.0, complement=True,
           pixel_weight=None, per_class_weight=None) -> Pixels:
    """Check the inputs and compute ``log p``, ``log(1 - p)`` (None with ``complement=False``: for the softmax it
    costs an argmax and a logsumexp pass) and the target in the ``(N, C, S)`` layout.

    ``pixel_weight`` (:func:`seglosses.core.checks.pixel_weights`; per class unless the loss has one value per
    softmax pixel, or ``per_class_weight`` says otherwise) becomes ``Pixels.weight``, selected to 0 at ignored
    entries (a NaN weight there reaches nothing)."""
    inp = prepare(logits, target, mode, ignore_index)  # (checks ignore_index)
    check_bool("from_logits", from_logits)
    smoothing = check_scalar("label_smoothing", label_smoothing, low=0.0, high=1.0)
    softmax = mode == "multiclass"
    dt = compute_dtype(inp.x)
    if inp.index:
        t, valid = index_block(inp.target, ignore_index, inp.c)
        g = None
    else:
        g, valid = dense_block(inp.target, ignore_index, dt)
        t = None
    x = inp.x
    if valid is not None:  # ignored elements: a finite input (a NaN or inf there must not reach loss or gradient)
        x = torch.where(valid.unsqueeze(1) if inp.index else valid, x, 0.0 if from_logits else 0.5)
    w = pixel_weights(pixel_weight, logits, mode, inp,
                      per_class=not softmax if per_class_weight is None else per_class_weight)
    if w is not None and valid is not None:
        w = torch.where(valid.unsqueeze(1) if inp.index else valid, w, 0.0)
    if w is not None and softmax and w.shape[1] == 1:
        w = w.squeeze(1)
    x = to_compute(x) if from_logits else probs_to_logits(x, softmax)
    if softmax:
        logp = torch.log_softmax(x, dim=1)
        log1mp = log1m_softmax(x, logp) if complement else None
    else:
        logp = torch.nn.functional.logsigmoid(x)
        log1mp = torch.nn.functional.logsigmoid(-x)
    return Pixels(inp, logp, log1mp, t, g, valid, smoothing, softmax, w)


def smoothed(px: Pixels) -> torch.Tensor:
    """The dense target after label smoothing: ``g (1 - e) + e / 2`` (sigmoid) or ``+ e / C`` (softmax)."""
    e = px.smoothing
    return px.g if not e else px.g * (1 - e) + e / (px.inp.c if px.softmax else 2)


def target_sum(px: Pixels, f: torch.Tensor) -> torch.Tensor:
    """``sum_c y_c f_c`` per pixel ``(N, S)`` for the (smoothed) multiclass target y, without a one-hot."""
    if px.t is not None:
        picked = f.gather(1, px.t.unsqueeze(1)).squeeze(1)
        if px.smoothing:
            picked = picked * (1 - px.smoothing) + f.sum(1) * (px.smoothing / px.inp.c)
        return picked
    y = px.g if not px.smoothing else px.g * (1 - px.smoothing) + px.smoothing / px.inp.c
    return (y * f).sum(1)


def valid_count(px: Pixels) -> torch.Tensor:
    """The number of valid entries of the loss map (elements; pixels for multiclass), as a 0-d tensor; with pixel
    weights, their sum over the valid entries."""
    if px.weight is not None:
        shape = (px.inp.n, px.inp.s) if px.softmax else (px.inp.n, px.inp.c, px.inp.s)
        return px.weight.expand(shape).sum()
    if px.valid is None:
        n = px.inp.n * px.inp.s * (1 if px.softmax else px.inp.c)
        return torch.full((), float(n), dtype=px.logp.dtype, device=px.logp.device)  # a fill: no host copy
    return px.valid.sum().to(px.logp.dtype)


def entry_weights(px: Pixels) -> torch.Tensor:
    """The weight of each entry of the loss map, ``(N, S)`` (softmax) or ``(N, C, S)``: the pixel weight (1 without
    one), 0 at ignored entries; for counts (class frequencies, the share of negatives) that pixel weights scale."""
    shape = (px.inp.n, px.inp.s) if px.softmax else (px.inp.n, px.inp.c, px.inp.s)
    if px.weight is not None:
        return px.weight.expand(shape)
    if px.valid is not None:
        return px.valid.to(px.logp.dtype).expand(shape)
    return torch.ones(shape, dtype=px.logp.dtype, device=px.logp.device)


def target_counts(px: Pixels, valid: torch.Tensor) -> torch.Tensor:
    """Per-class pixel counts ``(C,)`` of class-index targets over the valid pixels (a scatter-add, no one-hot)."""
    out = torch.zeros(px.inp.c, dtype=valid.dtype, device=valid.device)
    return out.scatter_add_(0, px.t.reshape(-1), valid.reshape(-1))


def reduce_pixels(loss: torch.Tensor, px: Pixels, reduction: str) -> torch.Tensor:
    """A loss map ``(N, S)`` or ``(N, C, S)``, 0 at ignored entries, reduced: "none" the map in the input's layout,
    "sum", or "mean" over the valid entries (:func:`valid_count`; 0 when there are none). With pixel weights, each
    entry is multiplied by its weight, and the mean divides by the weights' sum."""
    if px.weight is not None:
        loss = loss * px.weight  # (0 at ignored entries: the weight was selected there, the term is finite)
    if px.valid is not None:
        loss = torch.where(px.valid, loss, 0.0)
    if reduction == "none":
        return loss.reshape(px.inp.out_shape)
    total = loss.sum()
    if reduction == "sum":
        return total
    count = valid_count(px)
    return total / torch.where(count > 0, count, 1.0)
