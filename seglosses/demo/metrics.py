"""Evaluation metrics of the demo: per-class Dice, IoU, sensitivity, specificity and precision from one confusion
matrix accumulated over the whole held-out set (so a class that is rare per image is still measured on all its
pixels), by the public :mod:`seglosses.metrics`; a ratio 0/0 is NaN here (undefined, left out of the means)."""

from __future__ import annotations

import math

import torch

from seglosses.metrics import METRICS, confusion_matrix, confusion_scores

__all__ = ["METRICS", "confusion", "mean", "scores"]


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = 255):
    """The ``(C, C)`` confusion matrix (rows: target class, columns: predicted class) of integer maps of one shape;
    pixels whose target is ``ignore_index`` are left out (:func:`seglosses.metrics.confusion_matrix`).

    Example:
        >>> confusion(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 255]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    return confusion_matrix(pred, target, num_classes, ignore_index=ignore_index)


def scores(matrix: torch.Tensor) -> dict[str, list[float]]:
    """Per-class metrics from a confusion matrix (:func:`seglosses.metrics.confusion_scores`) as lists of floats,
    NaN where the denominator is 0 (for example the precision of a class never predicted).

    Example:
        >>> s = scores(torch.tensor([[5, 1], [2, 2]]))
        >>> [round(v, 4) for v in s["dice"]], [round(v, 4) for v in s["precision"]]
        ([0.7692, 0.5714], [0.7143, 0.6667])
    """
    return {k: v.tolist() for k, v in confusion_scores(matrix, zero_division=math.nan).items()}


def mean(values, skip: int | None = None) -> float:
    """The mean of the finite values (NaN classes left out), ``skip`` a class index to leave out (background)."""
    vals = [v for i, v in enumerate(values) if i != skip and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan
