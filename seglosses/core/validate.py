"""Opt-in value checks: everything the losses themselves never look at, because reading values syncs a GPU."""

from __future__ import annotations

import torch

from seglosses.core.args import Mode
from seglosses.core.checks import pixel_weights, prepare


def validate(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, ignore_index: int | None = None,
             from_logits: bool = True, pixel_weight: torch.Tensor | None = None) -> None:
    """Check the values of a loss's inputs and raise ``ValueError`` with a clear message if any is wrong.

    The losses check only static facts (shapes, dtypes, arguments) so that they never synchronise with an
    accelerator; call this in a data-loading test or in the first iterations to check the values too:
    finite logits; probabilities in [0, 1] when ``from_logits=False``; class indices in [0, C) (or
    ``ignore_index``) for "multiclass"; binary/multilabel targets and class probabilities in [0, 1] (or
    ``ignore_index``); class probabilities that sum to 1 over the class axis; a ``pixel_weight`` map (its shape as
    the losses take it) finite and non-negative.

    Example:
        >>> import torch, seglosses
        >>> seglosses.validate(torch.zeros(2, 3, 4), torch.tensor([[0, 1, 2, 3], [0, 0, 0, 0]]), "multiclass")
        Traceback (most recent call last):
        ...
        ValueError: `target` holds class indices outside [0, 3) (ignore_index=None): 1 of 8 pixels, e.g. 3
    """
    inp = prepare(logits, target, mode, ignore_index, check_labels=False)
    x, t = inp.x, inp.target
    if pixel_weight is not None:
        w = pixel_weights(pixel_weight, logits, mode, inp)
        bad = ~torch.isfinite(w) | (w < 0) if w is not None else None
        if w is not None and bad is not None and bool(bad.any()):
            raise ValueError(f"`pixel_weight` must hold finite, non-negative values: {int(bad.sum())} of {w.numel()} "
                             f"are not, e.g. {w[bad][0].item()}")
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        raise ValueError(f"`logits` holds {int(bad.sum())} non-finite values (NaN or Inf) of {x.numel()}")
    if not from_logits:
        bad = (x < 0) | (x > 1)
        if bool(bad.any()):
            raise ValueError(f"`logits` must hold probabilities in [0, 1] with from_logits=False: "
                             f"{int(bad.sum())} of {x.numel()} values outside, e.g. {x[bad][0].item()}")
    keep = torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index
    if inp.index:
        bad = keep & ((t < 0) | (t >= inp.c))
        if bool(bad.any()):
            raise ValueError(f"`target` holds class indices outside [0, {inp.c}) (ignore_index={ignore_index}): "
                             f"{int(bad.sum())} of {t.numel()} pixels, e.g. {t[bad][0].item()}")
        return
    tf = t.to(torch.float64)
    bad = keep & ~((tf >= 0) & (tf <= 1))
    if bool(bad.any()):
        raise ValueError(f"`target` must hold values in [0, 1] (or ignore_index={ignore_index}) for mode={mode!r}: "
                         f"{int(bad.sum())} of {t.numel()} values outside, e.g. {tf[bad][0].item()}")
    if mode == "multiclass":
        dev = (tf.sum(1) - 1).abs()
        if bool((dev > 1e-3).any()):
            raise ValueError(f"`target` class probabilities must sum to 1 over the class axis: "
                             f"{int((dev > 1e-3).sum())} pixels do not (largest deviation {dev.max().item():.3g})")
