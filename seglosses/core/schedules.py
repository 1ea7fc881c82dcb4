"""Schedules of a term's coefficient in a weighted sum of losses (no torch, no Keras import: both front ends use them).

A schedule is an immutable value ``s`` with ``s(t) -> float``, ``t >= 0`` the position in training (an epoch or a
step: the caller's choice, the same unit as the schedule's ``steps`` and ``boundaries``). It multiplies a loss like a
number, ``linear(0.01, 1.0, 10) * BoundaryLoss(...) + DiceLoss(...)``; the weighted sum then holds it, and its
``step(t)`` sets the position of every schedule in it. Numbers combine with a schedule (``1 - s``, ``k * s``, ``s / k``,
``s + b``, ``-s``), so Kervadec et al.'s rebalancing reads ``r * region + (1 - r) * boundary`` with
``r = rebalance()``. Each schedule writes itself to a JSON-safe dict (:meth:`Schedule.to_config`) and reads back
(:meth:`Schedule.from_config`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}")
    return value


def _positive(name: str, value) -> int | float:
    """A finite number > 0, kept an int when given one (``steps=10`` reads back as 10)."""
    out = _real(name, value)
    if out <= 0:
        raise ValueError(f"`{name}` must be > 0; got {value}")
    return int(value) if isinstance(value, numbers.Integral) else out


def check_position(t) -> float:
    """The position ``t`` of a schedule: a finite number >= 0, as a float."""
    t = _real("t", t)
    if t < 0:
        raise ValueError(f"`t` (the position: an epoch or a step) must be >= 0; got {t}")
    return t


def _num(x) -> str:
    return repr(x)


class Schedule:
    """The base of the schedules: an immutable value, called with the position ``t`` (a number >= 0).

    Subclasses set ``kind`` (the config name) and ``_params`` (the constructor's arguments, in order) and define
    ``_value(t)``. Two schedules are equal when their configs are.
    """

    __array_ufunc__ = None  # ``np.float32(0.5) * s``: NumPy defers to __rmul__
    kind: str = ""
    _params: dict[str, Any]

    def __init__(self, **params: Any) -> None:
        self._set(**params)

    def __setattr__(self, name, value):
        raise AttributeError(f"a {type(self).__name__} schedule is immutable")

    def _set(self, **params) -> None:
        object.__setattr__(self, "_params", params)

    def _value(self, t: float) -> float:
        raise NotImplementedError

    def __call__(self, t) -> float:
        """The coefficient at position ``t`` (an epoch or a step, >= 0)."""
        return float(self._value(check_position(t)))

    def to_config(self) -> dict[str, Any]:
        """``{"schedule": kind, **arguments}``, JSON-safe."""
        out: dict[str, Any] = {"schedule": self.kind}
        for k, v in self._params.items():
            out[k] = v.to_config() if isinstance(v, Schedule) else (list(v) if isinstance(v, tuple) else v)
        return out

    @staticmethod
    def from_config(config: Mapping[str, Any]) -> Schedule:
        """The schedule that ``config`` (as written by :meth:`to_config`) describes.

        Example:
            >>> Schedule.from_config({"schedule": "linear", "start": 0.01, "end": 1.0, "steps": 10})
            linear(0.01, 1.0, 10)
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"a schedule's config must be a dict; got {type(config).__name__}")
        kind = config.get("schedule")
        if kind not in _KINDS:
            raise ValueError(f"`config['schedule']` must be one of {sorted(_KINDS)}; got {kind!r}")
        args = {k: v for k, v in config.items() if k != "schedule"}
        if kind == "affine" and "of" in args:
            args["of"] = Schedule.from_config(args["of"])
        try:
            return _KINDS[kind](**args)
        except TypeError as e:
            raise ValueError(f"config of a {kind!r} schedule: {e}; got {dict(config)!r}") from None

    def __eq__(self, other):
        return isinstance(other, Schedule) and self.to_config() == other.to_config()

    def __hash__(self):
        return hash(repr(self))

    def __reduce__(self):  # pickle and deepcopy through the config
        return (Schedule.from_config, (self.to_config(),))

    # -- arithmetic with numbers: an affine map a * s + b of the schedule ---------------------------------------
    def _affine(self, scale: float, offset: float) -> Schedule:
        return _Affine(self, scale, offset)

    def __mul__(self, other):
        if isinstance(other, bool) or not isinstance(other, numbers.Real):
            return NotImplemented  # a loss: ``s * DiceLoss(...)`` goes to the loss's __rmul__
        return self._affine(_real("the factor of a schedule", other), 0.0)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, bool) or not isinstance(other, numbers.Real):
            return NotImplemented
        k = _real("the divisor of a schedule", other)
        if k == 0:
            raise ZeroDivisionError("a schedule cannot be divided by 0")
        return self._affine(1.0 / k, 0.0)

    def __add__(self, other):
        if isinstance(other, bool) or not isinstance(other, numbers.Real):
            return NotImplemented
        return self._affine(1.0, _real("the number added to a schedule", other))

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, bool) or not isinstance(other, numbers.Real):
            return NotImplemented
        return self._affine(1.0, -_real("the number taken from a schedule", other))

    def __rsub__(self, other):
        if isinstance(other, bool) or not isinstance(other, numbers.Real):
            return NotImplemented
        return self._affine(-1.0, _real("the number a schedule is taken from", other))

    def __neg__(self):
        return self._affine(-1.0, 0.0)


class _Constant(Schedule):
    kind = "constant"

    def __init__(self, value) -> None:
        self._set(value=_real("value", value))

    def _value(self, t):
        return self._params["value"]

    def _affine(self, scale, offset):
        return _Constant(scale * self._params["value"] + offset)

    def __repr__(self):
        return f"constant({_num(self._params['value'])})"


def _progress(t: float, begin: float, steps: float) -> float:
    return min(max((t - begin) / steps, 0.0), 1.0)


class _Ramp(Schedule):
    def __init__(self, start, end, steps, *, begin=0) -> None:
        begin_ = _real("begin", begin)
        if begin_ < 0:
            raise ValueError(f"`begin` must be >= 0; got {begin}")
        self._set(start=_real("start", start), end=_real("end", end), steps=_positive("steps", steps),
                  begin=int(begin) if isinstance(begin, numbers.Integral) else begin_)

    def __repr__(self):
        p = self._params
        tail = f", begin={_num(p['begin'])}" if p["begin"] else ""
        return f"{self.kind}({_num(p['start'])}, {_num(p['end'])}, {_num(p['steps'])}{tail})"


class _Linear(_Ramp):
    kind = "linear"

    def _value(self, t):
        p = self._params
        return p["start"] + (p["end"] - p["start"]) * _progress(t, p["begin"], p["steps"])


class _Cosine(_Ramp):
    kind = "cosine"

    def _value(self, t):
        p = self._params
        return p["end"] + (p["start"] - p["end"]) * 0.5 * (1.0 + math.cos(math.pi * _progress(t, p["begin"],
                                                                                                p["steps"])))


class _Piecewise(Schedule):
    kind = "piecewise"

    def __init__(self, values, boundaries) -> None:
        for name, seq in (("values", values), ("boundaries", boundaries)):
            if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence):
                raise TypeError(f"`{name}` must be a list of numbers; got {type(seq).__name__}")
        vals = tuple(_real(f"values[{i}]", v) for i, v in enumerate(values))
        bounds = tuple(_real(f"boundaries[{i}]", b) for i, b in enumerate(boundaries))
        if len(vals) != len(bounds) + 1:
            raise ValueError(f"`values` must hold one more number than `boundaries`; got {len(vals)} values and "
                             f"{len(bounds)} boundaries")
        if any(b <= a for a, b in zip(bounds, bounds[1:])) or (bounds and bounds[0] < 0):
            raise ValueError(f"`boundaries` must be >= 0 and strictly increasing; got {list(boundaries)}")
        self._set(values=vals, boundaries=bounds)

    def _value(self, t):
        i = sum(1 for b in self._params["boundaries"] if t >= b)
        return self._params["values"][i]

    def __repr__(self):
        p = self._params
        return f"piecewise({list(p['values'])}, {list(p['boundaries'])})"


class _Rebalance(Schedule):
    kind = "rebalance"

    def __init__(self, start=1.0, step=0.01, floor=0.01) -> None:
        start_, step_, floor_ = _real("start", start), _real("step", step), _real("floor", floor)
        if step_ <= 0:
            raise ValueError(f"`step` (the decrease per unit of t) must be > 0; got {step}")
        if floor_ > start_:
            raise ValueError(f"`floor` must be <= `start` = {start_}; got {floor}")
        self._set(start=start_, step=step_, floor=floor_)

    def _value(self, t):
        p = self._params
        return max(p["start"] - p["step"] * t, p["floor"])

    def __repr__(self):
        defaults = {"start": 1.0, "step": 0.01, "floor": 0.01}
        args = ", ".join(f"{k}={_num(v)}" for k, v in self._params.items() if v != defaults[k])
        return f"rebalance({args})"


class _Affine(Schedule):
    """``scale * of(t) + offset`` (what ``k * s``, ``1 - s``, ``s / k`` build)."""

    kind = "affine"

    def __new__(cls, of, scale=1.0, offset=0.0):
        if not isinstance(of, Schedule):
            raise TypeError(f"`of` must be a schedule; got {type(of).__name__}")
        scale, offset = _real("scale", scale), _real("offset", offset)
        if isinstance(of, _Affine):  # a * (c * s + d) + b = (a c) * s + (a d + b)
            of, scale, offset = of._params["of"], scale * of._params["scale"], scale * of._params["offset"] + offset
        if scale == 1.0 and offset == 0.0:
            return of
        self = object.__new__(cls)
        self._set(of=of, scale=scale, offset=offset)
        return self

    def __init__(self, of, scale=1.0, offset=0.0) -> None:
        pass  # (set in __new__)

    def _value(self, t):
        p = self._params
        return p["scale"] * p["of"]._value(t) + p["offset"]

    def __repr__(self):
        p = self._params
        a, b, s = p["scale"], p["offset"], repr(p["of"])
        head = s if a == 1.0 else (f"-{s}" if a == -1.0 else f"{_num(a)} * {s}")
        if b == 0.0:
            return f"({head})"
        if a == -1.0:
            return f"({_num(b)} - {s})"
        return f"({head} + {_num(b)})" if b > 0 else f"({head} - {_num(-b)})"


_KINDS: dict[str, type] = {c.kind: c for c in (_Constant, _Linear, _Cosine, _Piecewise, _Rebalance, _Affine)}


def constant(value: float) -> Schedule:
    """The coefficient ``value`` at every position.

    Example:
        >>> constant(0.5)(7)
        0.5
    """
    return _Constant(value)


def linear(start: float, end: float, steps: float, *, begin: float = 0) -> Schedule:
    r"""A linear ramp: ``start`` until ``begin``, then linearly to ``end`` over ``steps`` units, then ``end``.

    .. math:: s(t) = \text{start} + (\text{end} - \text{start}) \, \min(\max((t - \text{begin}) / \text{steps}, 0), 1)

    Args:
        start: the value up to ``t = begin``.
        end: the value from ``t = begin + steps`` on.
        steps: the ramp's length (> 0), in the unit of ``t`` (epochs or steps).
        begin: where the ramp starts (>= 0).

    Example:
        >>> s = linear(0.01, 1.0, 10)
        >>> s(0), round(s(5), 3), s(10), s(99)
        (0.01, 0.505, 1.0, 1.0)
    """
    return _Linear(start, end, steps, begin=begin)


def cosine(start: float, end: float, steps: float, *, begin: float = 0) -> Schedule:
    r"""A half-cosine from ``start`` to ``end`` over ``steps`` units after ``begin`` (Loshchilov & Hutter's
    annealing shape, without restarts), constant outside.

    .. math:: s(t) = \text{end} + (\text{start} - \text{end}) \, \tfrac12 (1 + \cos(\pi p)),\quad
        p = \min(\max((t - \text{begin}) / \text{steps}, 0), 1)

    Example:
        >>> s = cosine(1.0, 0.0, 10)
        >>> s(0), round(s(5), 12), s(10)
        (1.0, 0.5, 0.0)

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017, arXiv:1608.03983.
    """
    return _Cosine(start, end, steps, begin=begin)


def piecewise(values: Sequence[float], boundaries: Sequence[float]) -> Schedule:
    """Piecewise constant: ``values[0]`` before ``boundaries[0]``, ``values[i]`` from ``boundaries[i - 1]`` on
    (``t >= b`` switches, as PyTorch's ``MultiStepLR``), ``values[-1]`` from the last boundary on.

    Args:
        values: ``len(boundaries) + 1`` numbers.
        boundaries: strictly increasing positions >= 0.

    Example:
        >>> s = piecewise([0.0, 0.5, 1.0], [5, 10])   # Dice alone for 5 epochs, then the boundary term phased in
        >>> s(4.9), s(5), s(10)
        (0.0, 0.5, 1.0)
    """
    return _Piecewise(values, boundaries)


def rebalance(start: float = 1.0, step: float = 0.01, floor: float = 0.01) -> Schedule:
    r"""Kervadec et al.'s "rebalance" weight :math:`\alpha(t) = \max(\text{start} - \text{step}\cdot t,
    \text{floor})`: the region term gets :math:`\alpha`, the boundary term :math:`1 - \alpha`.

    The paper starts at :math:`\alpha = 1` and decreases it by 0.01 after each epoch down to 0.01:
    ``r = rebalance(); loss = r * GeneralizedDiceLoss(...) + (1 - r) * BoundaryLoss(...)``, ``loss.step(epoch)``.

    Args:
        start: :math:`\alpha(0)`.
        step: the decrease per unit of ``t`` (> 0).
        floor: the lowest value (<= start).

    Example:
        >>> r = rebalance()
        >>> r(0), round(r(10), 12), r(500), round((1 - r)(10), 12)
        (1.0, 0.9, 0.01, 0.1)

    References:
        Kervadec et al., "Boundary loss for highly unbalanced segmentation", MIDL 2019, arXiv:1812.07032.
    """
    return _Rebalance(start, step, floor)
