"""The framework-free rules of deep supervision, shared by the PyTorch and Keras front ends (no torch, no Keras).

The weight of each level (:func:`level_weights`) and the index arithmetic of the target's downsampling: the source
pixel of nearest-exact resampling (:func:`nearest_indices`) and the window of area (adaptive average) pooling
(:func:`area_windows`). Definitions: docs/semantics.md, "Deep supervision".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

#: The named weight rules of :func:`level_weights`.
WEIGHT_RULES = ("nnunet", "monai-exp", "uniform")


def check_level_weights(weights) -> str | tuple[float, ...]:
    """``weights`` as a rule name of :data:`WEIGHT_RULES` or a tuple of floats (finite, >= 0, not all 0)."""
    if isinstance(weights, str):
        if weights not in WEIGHT_RULES:
            raise ValueError(f"`weights` must be one of {WEIGHT_RULES} or a sequence of numbers; got {weights!r}")
        return weights
    if hasattr(weights, "tolist") and not isinstance(weights, Sequence):  # a NumPy array or a tensor
        weights = weights.tolist()
    if not isinstance(weights, Sequence) or isinstance(weights, bytes):
        raise TypeError(f"`weights` must be one of {WEIGHT_RULES} or a sequence of numbers; "
                        f"got {type(weights).__name__}")
    out = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise TypeError(f"`weights` must hold numbers; got {w!r} of type {type(w).__name__}")
        w = float(w)
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"`weights` must hold finite numbers >= 0; got {list(weights)!r}")
        out.append(w)
    if not out or not any(out):
        raise ValueError(f"`weights` must hold at least one number > 0; got {list(weights)!r}")
    return tuple(out)


def level_weights(weights: str | Sequence[float], levels: int) -> tuple[float, ...]:
    """The weight of each of ``levels`` outputs, highest resolution first.

    * ``"nnunet"``: ``1 / 2^i``, the lowest-resolution output's weight set to 0 when there are 3 levels or more,
      normalised to sum 1 (nnU-Net's ``DeepSupervisionWrapper`` zeroes the last level always, which gives NaN for one
      level and drops a level of two: here every level of one or two is kept).
    * ``"monai-exp"``: ``max(0.5^i, 0.0625)``, not normalised (MONAI's ``DeepSupervisionLoss(weight_mode="exp")``).
    * ``"uniform"``: ``1 / levels`` each.
    * a sequence: used as given; its length must be ``levels``.

    Example:
        >>> level_weights("nnunet", 4)
        (0.5714285714285714, 0.2857142857142857, 0.14285714285714285, 0.0)
        >>> level_weights("monai-exp", 6)
        (1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625)
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"the number of outputs must be an integer >= 1; got {levels!r}")
    checked = check_level_weights(weights)
    if not isinstance(checked, str):
        if len(checked) != levels:
            raise ValueError(f"`weights` has {len(checked)} values but the network gave {levels} outputs; "
                             "give one weight per output")
        return checked
    if checked == "monai-exp":
        return tuple(max(0.5 ** i, 0.0625) for i in range(levels))
    if checked == "uniform":
        return (1.0 / levels,) * levels
    raw = [0.5 ** i for i in range(levels)]  # "nnunet"
    if levels >= 3:
        raw[-1] = 0.0
    total = sum(raw)
    return tuple(w / total for w in raw)


def shared_option(loss, names: tuple[str, ...], what: str):
    """The value of the option ``names[0]`` (or a later alias) of ``loss``, read by duck typing so that it serves
    either front end: ``loss.options`` (a mapping) holds it, and a sum lists its losses in ``loss.terms`` (the one
    value its terms share; terms without the option, or with None, do not count). None when no loss sets it.
    Terms that set different values raise a ValueError: deep supervision downsamples one target for all of them."""
    values = _option_values(loss, names)
    if len(values) > 1:
        raise ValueError(f"the terms of the loss set different values of `{names[0]}` {sorted(values)}; deep "
                         f"supervision {what} for all of them, so they must agree")
    return next(iter(values)) if values else None


def _option_values(loss, names) -> set:
    terms = getattr(loss, "terms", None)
    if terms is not None and not isinstance(terms, (str, bytes)):
        return set().union(*(_option_values(t, names) for t in terms))
    options = getattr(loss, "options", None)
    if not isinstance(options, Mapping):
        return set()
    for name in names:
        value = options.get(name)
        if value is not None:
            return {value}
    return set()


def nearest_indices(size_in: int, size_out: int) -> list[int]:
    """The source index of each output index of nearest-exact resampling from ``size_in`` to ``size_out`` pixels:
    ``floor((j + 1/2) * size_in / size_out)``, computed in integers (``((2j + 1) * size_in) // (2 * size_out)``), the
    rule of ``torch.nn.functional.interpolate(mode="nearest-exact")``: the pixel whose centre is nearest the output
    pixel's centre (for a factor of 2, the second pixel of each pair).

    Example:
        >>> nearest_indices(8, 4), nearest_indices(5, 2)
        ([1, 3, 5, 7], [1, 3])
    """
    return [((2 * j + 1) * size_in) // (2 * size_out) for j in range(size_out)]


def area_windows(size_in: int, size_out: int) -> list[tuple[int, int]]:
    """The source window ``[start, end)`` of each output index of area (adaptive average) pooling from ``size_in`` to
    ``size_out`` pixels: ``start = floor(j * size_in / size_out)``, ``end = ceil((j + 1) * size_in / size_out)``, the
    windows of ``torch.nn.functional.adaptive_avg_pool*d``: blocks of ``size_in / size_out`` pixels when it divides,
    else windows that overlap by one pixel.

    Example:
        >>> area_windows(4, 2), area_windows(5, 2)
        ([(0, 2), (2, 4)], [(0, 3), (2, 5)])
    """
    return [((j * size_in) // size_out, -((-(j + 1) * size_in) // size_out)) for j in range(size_out)]
