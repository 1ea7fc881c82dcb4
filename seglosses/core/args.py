"""Framework-free argument checks shared by the PyTorch and Keras front ends (no torch, no Keras import).

Every check looks at Python values, never at tensor data, and raises ValueError/TypeError naming the argument,
what was expected and what came.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MODES = ("binary", "multiclass", "multilabel")

#: Probabilities are clamped to [EPS, 1 - EPS] before a log is taken of them (``from_logits=False``).
EPS = 1e-7


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}; got {mode!r}")
    return mode


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool; got {type(value).__name__}")
    return value


def check_scalar(name: str, value, *, low=None, high=None, low_open=False) -> float:
    """A real scalar (Python, NumPy or a one-element tensor of any framework) within [low, high]."""
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (int, float)):
        if math.prod(tuple(shape)) != 1:
            raise TypeError(f"`{name}` must be a number; got an array of shape {tuple(shape)}")
        value = value.item() if hasattr(value, "item") else float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise TypeError(f"`{name}` must be a number; got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number; got {value}")
    if low is not None and (value <= low if low_open else value < low):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"`{name}` must be {bound}; got {value}")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be <= {high}; got {value}")
    return value


def check_ignore_index(ignore_index, name: str = "ignore_index") -> int | None:
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"`{name}` must be an int or None; got {type(ignore_index).__name__}")
    return ignore_index


#: The values an integer (or bool) target dtype can hold, by the dtype's name (shared by both front ends).
INTEGER_RANGES = {
    "bool": (0, 1),
    **{f"uint{b}": (0, 2 ** b - 1) for b in (8, 16, 32, 64)},
    **{f"int{b}": (-2 ** (b - 1), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)},
}


def check_ignore_index_fits(ignore_index, dtype_name: str) -> None:
    """The ``ignore_index`` rule for integer and bool targets: it must be a value the target's dtype can hold.

    Torch compares ``uint8_target == -1`` after wrapping -1 to 255, other kernels compare in int64 or float, so a
    value the dtype cannot hold would mean different pixels on different paths; it is refused instead (floating-point
    targets compare as floats and take any int). ``dtype_name``: "uint8", "int64", "bool", ... (other names: no check).
    """
    if ignore_index is None:
        return
    bounds = INTEGER_RANGES.get(dtype_name)
    if bounds is not None and not bounds[0] <= ignore_index <= bounds[1]:
        raise ValueError(f"`ignore_index`={ignore_index} cannot occur in a `target` of dtype {dtype_name} (values "
                         f"{bounds[0]}..{bounds[1]}), so it would ignore nothing; use an ignore_index the dtype holds, "
                         "or convert the target (for example target.long())")


def check_values(name: str, values, *, low=0.0, high=None) -> list[float]:
    """A Python sequence of numbers, each in [low, high], as a list of floats."""
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise TypeError(f"`{name}` must be a sequence of numbers; got {type(values).__name__}")
    return [check_scalar(f"{name}[{i}]", v, low=low, high=high) for i, v in enumerate(values)]


def check_length(name: str, length: int, num_classes: int) -> None:
    if length != num_classes:
        raise ValueError(f"`{name}` must have shape ({num_classes},), one value per class; got ({length},)")


def check_classes(classes, num_classes: int, *, allow=()) -> list[int] | str | None:
    """None, one of the strings in ``allow``, or a non-empty list of distinct class indices in [0, C)."""
    if classes is None:
        return None
    if isinstance(classes, str):
        if classes in allow:
            return classes
        raise ValueError(f"`classes` must be None, {' or '.join(map(repr, allow)) + ', ' if allow else ''}"
                         f"or a list of class indices; got {classes!r}")
    if hasattr(classes, "tolist") and not isinstance(classes, Sequence):
        classes = classes.tolist()
    if isinstance(classes, int) and not isinstance(classes, bool):
        classes = [classes]
    if not isinstance(classes, Sequence) or len(classes) == 0:
        raise ValueError(f"`classes` must be a non-empty list of class indices; got {classes!r}")
    out = []
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, int):
            raise TypeError(f"`classes` must hold ints; got {c!r} ({type(c).__name__})")
        if not 0 <= c < num_classes:
            raise ValueError(f"`classes` must hold indices in [0, {num_classes}); got {c}")
        out.append(c)
    if len(set(out)) != len(out):
        raise ValueError(f"`classes` must not repeat an index; got {out}")
    return out
