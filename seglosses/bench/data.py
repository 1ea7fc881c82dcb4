"""The benchmark's inputs: seeded logits and targets, the same on every device and in every process."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .settings import POS_FRACTION, SEED, SETTING_MODE, SIGNAL


@dataclass
class Inputs:
    setting: str
    mode: str
    logits: torch.Tensor  # float32 (N, C, *)
    target: torch.Tensor  # binary: float (N, 1, *); multiclass: int64 (N, *)

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    @property
    def target_n1(self) -> torch.Tensor:
        """The target as (N, 1, *) (monai's layout): a view."""
        return self.target if self.mode == "binary" else self.target.unsqueeze(1)

    @property
    def target_squeezed(self) -> torch.Tensor:
        """A binary target as (N, *) (kornia's hinge layout): a view."""
        return self.target[:, 0] if self.mode == "binary" else self.target


def make_inputs(setting: str, shape: tuple[int, ...], device: torch.device, seed: int = SEED) -> Inputs:
    """Seeded inputs, generated on the CPU so that every device and process gets the same values.

    The data are deliberately not symmetric, so that definitions that differ (per-image vs batch statistics, mean of
    powers vs power of the mean, ...) also give different values: multiclass labels have class frequencies
    proportional to 1 / (c + 1) and the logits lean towards the target, the more so the more frequent the class
    (randn + 2 SIGNAL (1 - c / (C - 1)) at the target class c); binary: randn + SIGNAL (2 t - 1), with POS_FRACTION
    positives.

    Example::

        >>> inp = make_inputs("multiclass", (2, 4, 8, 8), torch.device("cpu"))
        >>> inp.mode, tuple(inp.logits.shape), tuple(inp.target.shape), inp.target.dtype, inp.num_classes
        ('multiclass', (2, 4, 8, 8), (2, 8, 8), torch.int64, 4)
        >>> torch.equal(inp.logits, make_inputs("multiclass", (2, 4, 8, 8), torch.device("cpu")).logits)
        True
    """
    mode = SETTING_MODE[setting]
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(shape, generator=gen)
    if mode == "binary":
        target = (torch.rand(shape, generator=gen) < POS_FRACTION).float()
        logits = noise.add_(target * (2 * SIGNAL) - SIGNAL)
    else:
        n, c = shape[0], shape[1]
        spatial = shape[2:]
        freq = 1.0 / torch.arange(1, c + 1, dtype=torch.float64)
        count = n * math.prod(spatial)
        target = torch.multinomial(freq, count, replacement=True, generator=gen).view(n, *spatial)
        # frequent classes are easy, rare ones hard: the lean is 2 * SIGNAL for class 0, down to 0 for class C - 1
        lean = 2 * SIGNAL * (1 - torch.arange(c, dtype=torch.float32) / max(c - 1, 1))
        logits = noise.scatter_add_(1, target.unsqueeze(1), lean[target].unsqueeze(1))
    return Inputs(setting, mode, logits.contiguous().to(device), target.contiguous().to(device))
