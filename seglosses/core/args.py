"""Framework-free argument checks shared by the PyTorch and Keras front ends (no torch, no Keras import).

Every check looks at Python values, never at tensor data, and raises ValueError/TypeError naming the argument,
what was expected and what came.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypeAlias

from seglosses._registry import MODES, REDUCTIONS  # noqa: F401 (the modes; the PyTorch front end's reductions)

#: The class weights of the generalized Dice loss: 1/G^2, 1/G or 1, G the target volume of the class.
WEIGHT_TYPES = ("square", "simple", "uniform")

#: Probabilities are clamped to [EPS, 1 - EPS] before a log is taken of them (``from_logits=False``).
EPS = 1e-7


def check_one_of(name: str, value, allowed: tuple):
    """``value`` if it is one of ``allowed``, else a ValueError naming the allowed values and the one received."""
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}; got {value!r}")
    return value


def check_mode(mode: str) -> str:
    return check_one_of("mode", mode, MODES)


def check_reduction(reduction: str, allowed: tuple = REDUCTIONS) -> str:
    """The reduction name: one of ``allowed`` (:data:`REDUCTIONS`, or the Keras front end's names)."""
    return check_one_of("reduction", reduction, allowed)


def check_weight_type(weight_type: str) -> str:
    """The class weights of the generalized Dice loss: one of :data:`WEIGHT_TYPES`."""
    return check_one_of("weight_type", weight_type, WEIGHT_TYPES)


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


def beta_high(balanced: bool) -> float | None:
    """The upper bound of ``beta`` (and of each per-class value): 1 for the balanced cross-entropy, whose negative
    term is weighted by 1 - beta; none for the weighted one."""
    return 1.0 if balanced else None


def check_beta(beta, *, balanced: bool, num_classes: int | None = None):
    """``beta`` of the weighted (a number >= 0) or balanced (a number in [0, 1], or "auto") cross-entropy, given as a
    number or a string; per-class values are each front end's tensors, checked there in [0, :func:`beta_high`].

    ``num_classes``: the count named in the message when it is known. Returns the float, or "auto".
    """
    if isinstance(beta, str):
        if balanced and beta == "auto":
            return beta
        vector = "a sequence of numbers (one per class)" if num_classes is None else \
            f"a sequence of {num_classes} numbers"
        allowed = f", {vector} or 'auto'" if balanced else f" or {vector}"
        raise ValueError(f"`beta` must be a number{allowed}; got {beta!r}")
    return check_scalar("beta", beta, low=0.0, high=beta_high(balanced))


def check_spacing(spacing, ndim: int | None = None, *, message: str | None = None):
    """The element size along each spatial axis (SciPy's ``sampling``) of the distance transforms and the losses
    built on them: None (unit), one number > 0, or one per spatial axis (a sequence, or an array or a host tensor),
    each finite.

    ``ndim``: the number of spatial axes; None where it is not known yet (a Keras loss's constructor): then 1 to 3
    values, and a number stays one float. ``message``: the wording of the error on the count of values, a format
    string with the fields ``ndim``, ``count`` and ``spacing`` (default: the losses' wording).

    Returns None, a tuple of ``ndim`` floats, or (``ndim`` None) a float or a tuple of 1 to 3 floats.
    """
    if spacing is None:
        return None
    if hasattr(spacing, "tolist") and not isinstance(spacing, (int, float)):
        spacing = spacing.tolist()
    if isinstance(spacing, Sequence) and not isinstance(spacing, str):
        if not (1 <= len(spacing) <= 3 if ndim is None else len(spacing) == ndim):
            message = message or "`spacing` must be a number or one value per spatial axis ({ndim}); got {spacing!r}"
            raise ValueError(message.format(ndim="1 to 3" if ndim is None else ndim, count=len(spacing),
                                            spacing=spacing))
        return tuple(check_scalar(f"spacing[{i}]", v, low=0.0, low_open=True) for i, v in enumerate(spacing))
    value = check_scalar("spacing", spacing, low=0.0, low_open=True)  # finite: check_scalar refuses inf
    return value if ndim is None else (value,) * ndim


def check_window(window_size, sigma) -> tuple[int, float]:
    """A Gaussian window's taps per axis (an odd int >= 1, centred on each pixel) and standard deviation (> 0)."""
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"`window_size` must be an odd int >= 1 (the window is centred on each pixel); got "
                         f"{window_size!r}")
    return window_size, check_scalar("sigma", sigma, low=0.0, low_open=True)

#: The ``mode`` argument of every loss, for type checkers: the values of :data:`MODES`.
Mode: TypeAlias = Literal["binary", "multiclass", "multilabel"]
#: The ``reduction`` argument of the PyTorch losses, for type checkers: the values of :data:`REDUCTIONS`.
Reduction: TypeAlias = Literal["none", "mean", "sum"]


def check_count(name: str, value) -> int:
    """A non-negative Python (or NumPy) integer, such as the hard-pixel losses' ``min_kept``."""
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise TypeError(f"`{name}` must be an int; got {type(value).__name__}")
    value = int(value.__index__())
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0; got {value}")
    return value


def top_share(k: float, n: int) -> int:
    """``ceil(k / 100 * n)``, the number of elements in the top k percent of n, computed as ``ceil(n * k / 100)`` in
    float64 (the tensor count of the hard-pixel losses takes the same operations, so both agree)."""
    return math.ceil(float(n) * k / 100)
