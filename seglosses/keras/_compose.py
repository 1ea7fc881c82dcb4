"""Composition of the Keras losses: ``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")``.

The Keras twin of :mod:`seglosses.core.compose`: the operators, flattening and messages are the framework-free ones of
:mod:`seglosses.core.composable`. Every seglosses Keras loss supports ``+``, ``-``, ``*`` and ``/`` by a number, unary
``-`` and ``sum([...])``, and the result is a :class:`WeightedSum`, a ``keras.losses.Loss`` that saves with a
model and loads back without ``custom_objects``.
"""

from __future__ import annotations

import keras

from seglosses.core.composable import ComposableBase, check_pairs, sum_repr


class Composable(ComposableBase):
    """Arithmetic on losses (:mod:`seglosses.core.composable`). Mixed into every seglosses Keras loss and into
    :class:`WeightedSum`."""

    @staticmethod
    def _weighted_sum(pairs):
        return WeightedSum(pairs)


Composable._family = Composable


@keras.saving.register_keras_serializable(package="seglosses")
class WeightedSum(Composable, keras.losses.Loss):
    r"""The weighted sum of seglosses Keras losses, :math:`L = \sum_i c_i L_i(y_{true}, y_{pred})`.

    Built by the operators (``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")``, nested sums flattened) or
    from ``(coef, loss)`` pairs. Every term receives the same ``(y_true, y_pred, sample_weight, pixel_weight)`` and
    reduces with its own ``reduction`` and ``sample_weight`` rules (a per-pixel ``sample_weight`` is each term's
    ``pixel_weight``; a term that pools the batch refuses a per-image one); the sum adds the reduced values, so it
    has no reduction of its own. ``get_config`` nests each term's serialized
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
        pairs = check_pairs(terms, Composable, WeightedSum, "seglosses Keras loss")
        super().__init__(name=name)
        self.coefs = tuple(c for c, _ in pairs)
        self.terms = tuple(t for _, t in pairs)

    def _pairs(self):
        return list(zip(self.coefs, self.terms))

    def __call__(self, y_true, y_pred, sample_weight=None, pixel_weight=None):
        with keras.name_scope(self.name):
            total = None
            for k, term in zip(self.coefs, self.terms):
                part = term(y_true, y_pred, sample_weight=sample_weight, pixel_weight=pixel_weight) * k
                total = part if total is None else total + part
            return total

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def __repr__(self):
        return sum_repr(self.coefs, self.terms)

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
