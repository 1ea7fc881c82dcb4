"""Composition of the Keras losses: ``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")``.

The Keras twin of :mod:`seglosses.compose` (same operators, flattening and messages; that module imports torch, so
this one repeats its few lines): every seglosses Keras loss supports ``+``, ``-``, ``*`` and ``/`` by a number,
unary ``-`` and ``sum([...])``, and the result is a :class:`WeightedSum`, a ``keras.losses.Loss`` that saves with a
model and loads back without ``custom_objects``.
"""

from __future__ import annotations

import math
import numbers

import keras


def _coef(value):
    """A finite real number as a float, or None (the operator then returns NotImplemented)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a loss can only be scaled by a finite number; got {value}")
    return value


def _terms(loss):
    return list(zip(loss.coefs, loss.terms)) if isinstance(loss, WeightedSum) else [(1.0, loss)]


class Composable:
    """Arithmetic on losses. Mixed into every seglosses Keras loss and into :class:`WeightedSum`."""

    __array_ufunc__ = None  # ``np.float32(0.5) * loss``: NumPy defers to __rmul__ instead of making an array

    def __add__(self, other):
        if isinstance(other, Composable):
            return WeightedSum(_terms(self) + _terms(other))
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, numbers.Real) and not isinstance(other, bool) and other == 0:  # sum([...]) starts at 0
            return WeightedSum(_terms(self))
        return NotImplemented

    def __sub__(self, other):
        if isinstance(other, Composable):
            return self + (-1.0) * other
        return NotImplemented

    def __mul__(self, other):
        k = _coef(other)
        if k is None:
            return NotImplemented
        return WeightedSum([(k * c, t) for c, t in _terms(self)])

    __rmul__ = __mul__

    def __truediv__(self, other):
        k = _coef(other)
        if k is None:
            return NotImplemented
        if k == 0:
            raise ZeroDivisionError("a loss cannot be divided by 0")
        return self * (1.0 / k)

    def __neg__(self):
        return (-1.0) * self


@keras.saving.register_keras_serializable(package="seglosses")
class WeightedSum(Composable, keras.losses.Loss):
    r"""The weighted sum of seglosses Keras losses, :math:`L = \sum_i c_i L_i(y_{true}, y_{pred})`.

    Built by the operators (``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")``, nested sums flattened) or
    from ``(coef, loss)`` pairs. Every term receives the same ``(y_true, y_pred, sample_weight)`` and reduces with
    its own ``reduction`` and ``sample_weight`` rules (a term that pools the batch refuses ``sample_weight``); the
    sum adds the reduced values, so it has no reduction of its own. ``get_config`` nests each term's serialized
    config, so a model compiled with a sum saves to ``.keras`` and loads back without ``custom_objects``.

    Args:
        terms: a sequence of ``(coef, loss)`` pairs, ``coef`` a finite number, ``loss`` a seglosses Keras loss.
        name: the loss's name.

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import DiceLoss, FocalLoss
        >>> loss = 0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")
        >>> loss
        0.5 * DiceLoss('multiclass') + 1.0 * FocalLoss('multiclass')
        >>> y_true, y_pred = np.array([[0, 1, 1, 0]]), np.full((1, 4, 2), 0.5)
        >>> round(float(loss(y_true, y_pred)), 4)  # 0.5 * (1 - 0.5) + (1 - 0.5)^2 ln 2
        0.4233
    """

    def __init__(self, terms, name="weighted_sum"):
        pairs = []
        for i, pair in enumerate(terms):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(f"`terms[{i}]` must be a (coef, loss) pair; got {type(pair).__name__}")
            coef, loss = pair
            k = _coef(coef)
            if k is None:
                raise TypeError(f"`terms[{i}]` coefficient must be a real number; got {type(coef).__name__}")
            if not isinstance(loss, Composable) or isinstance(loss, WeightedSum):
                raise TypeError(f"`terms[{i}]` loss must be a seglosses Keras loss; got {type(loss).__name__}")
            pairs.append((k, loss))
        if not pairs:
            raise ValueError("`terms` must hold at least one (coef, loss) pair")
        super().__init__(name=name)
        self.coefs = tuple(c for c, _ in pairs)
        self.terms = tuple(t for _, t in pairs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            total = None
            for coef, term in zip(self.coefs, self.terms):
                part = term(y_true, y_pred, sample_weight=sample_weight) * coef
                total = part if total is None else total + part
            return total

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def __repr__(self):
        out = ""
        for i, (c, t) in enumerate(zip(self.coefs, self.terms)):
            if i == 0:
                out = f"{c!r} * {t!r}"
            else:
                out += f" - {-c!r} * {t!r}" if c < 0 else f" + {c!r} * {t!r}"
        return out

    def get_config(self):
        """``{"name": ..., "terms": [{"coef": c, "loss": <serialized loss>}, ...]}``, JSON-safe."""
        return {"name": self.name,
                "terms": [{"coef": c, "loss": keras.saving.serialize_keras_object(t)}
                          for c, t in zip(self.coefs, self.terms)]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        terms = config.pop("terms", None)
        if not isinstance(terms, (list, tuple)):
            raise ValueError(f"`config['terms']` must be a list of {{'coef': ..., 'loss': ...}}; got {terms!r}")
        pairs = []
        for i, term in enumerate(terms):
            if not isinstance(term, dict) or set(term) != {"coef", "loss"}:
                raise ValueError(f"`config['terms'][{i}]` must be a dict with the keys 'coef' and 'loss'; got {term!r}")
            loss = term["loss"]
            pairs.append((term["coef"], loss if isinstance(loss, keras.losses.Loss)
                          else keras.saving.deserialize_keras_object(loss)))
        return cls(pairs, **config)
