"""Per-class scores as losses, and their reductions: the last two steps of every overlap (region) loss.

A score is a pair ``(err, num)`` per class, score = num / (num + err) (:mod:`seglosses.core.formulas`), computed from
the per-class statistics (tp, fp, fn). :func:`score_loss` turns the scores into per-class losses (:func:`ratio_loss`,
then an optional transform and power) and reduces them over classes and images (:func:`reduce_class_losses`), across
ranks with ``dist_sync``.
"""

from __future__ import annotations

import torch

from seglosses.core.checks import reduce_classes
from seglosses.core.dist import all_reduce_sum
from seglosses.core.formulas import LOG_EPS, TINY


def ratio_loss(err, num, log_loss):
    """A score ``num / (num + err)`` as a loss: ``1 - score`` computed as ``err / den`` and ``-log(max(score, 1e-7))``
    from ``num / den``, so that nothing cancels near a perfect score nor near a score of 0; 0 where ``den`` is 0
    (score 1)."""
    den = num + err
    ok = ~(den <= 0)  # (a NaN denominator is "ok": the NaN reaches the loss)
    den = torch.where(ok, den, 1.0)
    if log_loss:
        return torch.where(ok, -torch.log((num / den).clamp(LOG_EPS, 1.0)), 0.0)
    return (err / den).clamp_min(0.0)  # -ulp statistics could make a loss -ulp


def score_loss(err_num, w, *, per_image, log_loss, reduction, power=None, transform=None, sync=False, group=None):
    """Per-class scores ``(err, num)`` ``(R, K)`` as losses (:func:`ratio_loss`), through ``transform`` and raised to
    ``power`` when given, weighted by ``w`` and reduced (:func:`reduce_class_losses`)."""
    loss = ratio_loss(*err_num, log_loss)
    if transform is not None:
        loss = transform(loss)
    if power is not None:
        # 0 stays 0 (its power's slope is infinite for power < 1); a NaN (a NaN target or logit) stays NaN
        powered = torch.where(loss != 0, loss.clamp_min(TINY) ** power, torch.zeros_like(loss))
        loss = torch.where(torch.isnan(loss), loss, powered)  # (NaN ** 0 is 1)
    return reduce_class_losses(loss, w, per_image=per_image, reduction=reduction, sync=sync, group=group)


def reduce_class_losses(loss, w, *, per_image, reduction, sync=False, group=None):
    """Per-class losses ``(R, K)`` (R = 1, or N with ``per_image``) weighted by ``w`` and reduced."""
    if w is not None:
        loss = loss * w
    if not per_image:
        return reduce_classes(loss[0], w, reduction)
    return reduce_rows(loss, w, reduction, sync, group)


def reduce_rows(loss, w, reduction, sync, group):
    """Reduce per-image losses ``(N, ...)``; with ``sync`` (dist_sync, per_image) "mean" and "sum" run over the
    images of every rank: the sum and the image count are all-reduced ("none" stays local)."""
    if not sync or reduction == "none":
        return reduce_classes(loss, w, reduction)
    k = loss.shape[-1] if loss.dim() > 1 else 1
    per_row = w.sum() if w is not None else torch.tensor(float(k), dtype=loss.dtype, device=loss.device)
    total, count = all_reduce_sum(torch.stack([loss.sum(), per_row.to(loss.dtype) * loss.shape[0]]), group).unbind(0)
    if reduction == "sum":
        return total
    return total / torch.where(count > 0, count, 1.0)
