"""Evaluation metrics of the demo: per-class Dice, IoU, sensitivity, specificity and precision from one confusion
matrix accumulated over the whole held-out set (so a class that is rare per image is still measured on all its
pixels)."""

from __future__ import annotations

import math

import torch

METRICS = ("dice", "iou", "sensitivity", "specificity", "precision")


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = 255):
    """The ``(C, C)`` confusion matrix (rows: target class, columns: predicted class) of integer maps of one shape;
    pixels whose target is ``ignore_index`` are left out.

    Example:
        >>> confusion(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 255]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    t, p = target.reshape(-1).long(), pred.reshape(-1).long()
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).view(num_classes, num_classes)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def scores(matrix: torch.Tensor) -> dict[str, list[float]]:
    """Per-class metrics from a confusion matrix, with tp, fp, fn, tn of class c one-vs-rest:

    Dice 2tp / (2tp + fp + fn), IoU tp / (tp + fp + fn), sensitivity (recall) tp / (tp + fn), specificity
    tn / (tn + fp), precision tp / (tp + fp); NaN where the denominator is 0 (for example the precision of a class
    never predicted).

    Example:
        >>> s = scores(torch.tensor([[5, 1], [2, 2]]))
        >>> [round(v, 4) for v in s["dice"]], [round(v, 4) for v in s["precision"]]
        ([0.7692, 0.5714], [0.7143, 0.6667])
    """
    m = matrix.double()
    total = m.sum().item()
    out = {k: [] for k in METRICS}
    for c in range(m.shape[0]):
        tp = m[c, c].item()
        fn = m[c].sum().item() - tp
        fp = m[:, c].sum().item() - tp
        tn = total - tp - fn - fp
        out["dice"].append(_ratio(2 * tp, 2 * tp + fp + fn))
        out["iou"].append(_ratio(tp, tp + fp + fn))
        out["sensitivity"].append(_ratio(tp, tp + fn))
        out["specificity"].append(_ratio(tn, tn + fp))
        out["precision"].append(_ratio(tp, tp + fp))
    return out


def mean(values, skip: int | None = None) -> float:
    """The mean of the finite values (NaN classes left out), ``skip`` a class index to leave out (background)."""
    vals = [v for i, v in enumerate(values) if i != skip and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan
