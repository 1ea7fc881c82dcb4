"""Arithmetic on losses, shared by the PyTorch and Keras front ends (no torch, no Keras import).

``+``, ``-``, ``*`` and ``/`` by a number, unary ``-`` and ``sum([...])`` on losses of one front end give that front
end's weighted sum (a flat list of ``(coef, loss)`` pairs). Each front end subclasses :class:`ComposableBase`, sets
``_family`` to its subclass (losses of the two front ends do not mix) and implements ``_weighted_sum``.

A coefficient may also be a schedule (:mod:`seglosses.core.schedules`): ``linear(0.01, 1, 10) * BoundaryLoss(...)``;
a number times a scheduled term scales the schedule (``2 * (s * L)`` is ``(2 * s) * L``).
"""

from __future__ import annotations

import math
import numbers

from seglosses.core.schedules import Schedule


def coef(value):
    """A finite real number as a float, or None (the operator then returns NotImplemented)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a loss can only be scaled by a finite number; got {value}")
    return value


def factor(value):
    """A coefficient: a finite number as a float, a :class:`Schedule` as it is, else None."""
    return value if isinstance(value, Schedule) else coef(value)


def _times(k, c):
    """The product of two coefficients (numbers or schedules); at most one may be a schedule."""
    if isinstance(k, Schedule) and isinstance(c, Schedule):
        raise TypeError(f"a term's coefficient is a number or one schedule times a number; got {k!r} * {c!r}")
    if isinstance(k, Schedule):
        k, c = c, k
    return c * k  # a number times a number, or a schedule times a number (a schedule again; itself when k is 1)


class ComposableBase:
    """The operators. ``_pairs()`` lists a loss as ``(coef, loss)`` pairs (a sum overrides it)."""

    __array_ufunc__ = None  # ``np.float32(0.5) * loss``: NumPy defers to __rmul__ instead of making an array
    _family: type = None

    @staticmethod
    def _weighted_sum(pairs):
        raise NotImplementedError

    def _pairs(self):
        return [(1.0, self)]

    def __add__(self, other):
        if isinstance(other, self._family):
            return self._weighted_sum(self._pairs() + other._pairs())
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, numbers.Real) and not isinstance(other, bool) and other == 0:  # sum([...]) starts at 0
            return self._weighted_sum(self._pairs())
        return NotImplemented

    def __sub__(self, other):
        if isinstance(other, self._family):
            return self + (-1.0) * other
        return NotImplemented

    def __mul__(self, other):
        k = factor(other)
        if k is None:
            return NotImplemented
        return self._weighted_sum([(_times(k, c), t) for c, t in self._pairs()])

    __rmul__ = __mul__

    def __truediv__(self, other):
        k = coef(other)
        if k is None:
            return NotImplemented
        if k == 0:
            raise ZeroDivisionError("a loss cannot be divided by 0")
        return self * (1.0 / k)

    def __neg__(self):
        return (-1.0) * self


def check_pairs(terms, family: type, sum_type: type, what: str) -> list:
    """``terms`` as a non-empty list of ``(coef, loss)`` pairs (coef a float or a :class:`Schedule`), each loss of
    ``family`` and not a sum."""
    pairs = []
    for i, pair in enumerate(terms):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"`terms[{i}]` must be a (coef, loss) pair; got {type(pair).__name__}")
        c, loss = pair
        k = factor(c)
        if k is None:
            raise TypeError(f"`terms[{i}]` coefficient must be a real number or a schedule; got {type(c).__name__}")
        if not isinstance(loss, family) or isinstance(loss, sum_type):
            raise TypeError(f"`terms[{i}]` loss must be a {what}; got {type(loss).__name__}")
        pairs.append((k, loss))
    if not pairs:
        raise ValueError("`terms` must hold at least one (coef, loss) pair")
    return pairs


def sum_repr(coefs, terms) -> str:
    """``0.5 * DiceLoss('multiclass') - 1.0 * FocalLoss('multiclass') + linear(0.0, 1.0, 10) * ...``."""
    out = ""
    for i, (c, t) in enumerate(zip(coefs, terms)):
        if i == 0:
            out = f"{c!r} * {t!r}"
        else:
            negative = not isinstance(c, Schedule) and c < 0
            out += f" - {-c!r} * {t!r}" if negative else f" + {c!r} * {t!r}"
    return out


def coef_config(c):
    """A coefficient as written in a config: the number, or the schedule's dict."""
    return c.to_config() if isinstance(c, Schedule) else c


def coef_from_config(c):
    """A coefficient read from a config: a number, or a schedule from its dict."""
    return Schedule.from_config(c) if isinstance(c, dict) else c
