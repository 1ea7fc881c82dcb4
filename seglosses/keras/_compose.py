"""Composition of the Keras losses: ``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")``.

The Keras twin of :mod:`seglosses.core.compose`: the operators, flattening and messages are the framework-free ones of
:mod:`seglosses.core.composable`. Every seglosses Keras loss supports ``+``, ``-``, ``*`` and ``/`` by a number, unary
``-`` and ``sum([...])``, and the result is a :class:`WeightedSum`, a ``keras.losses.Loss`` that saves with a
model and loads back without ``custom_objects``.

A coefficient may be a schedule (:mod:`seglosses.core.schedules`); each scheduled coefficient is a non-trainable
``keras.Variable`` that ``step(t)`` assigns, and :class:`ScheduleCallback` calls ``step`` during ``model.fit``.
"""

from __future__ import annotations

import keras

from seglosses.core.composable import ComposableBase, check_pairs, coef_config, coef_from_config, sum_repr
from seglosses.core.schedules import Schedule, check_position


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

    A coefficient may be a schedule (``linear(0.01, 1.0, 10) * BoundaryLoss(...)``, ``r * GDL + (1 - r) * BL`` with
    ``r = rebalance()``): it is held in a non-trainable float32 ``keras.Variable`` that :meth:`step` assigns, so a
    jitted train step (TensorFlow graph, JAX) reads the new value without retracing. In ``model.fit``, let
    :class:`ScheduleCallback` call :meth:`step` (on JAX the callback also hands the variables to the trainer's state,
    which a plain ``step`` outside it cannot do). The config keeps the position (``"position": t``).

    Args:
        terms: a sequence of ``(coef, loss)`` pairs, ``coef`` a finite number or a schedule, ``loss`` a seglosses
            Keras loss.
        name: the loss's name.
        position: the schedules' starting position (what the config restores).

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

    def __init__(self, terms, name="weighted_sum", position=0.0):
        pairs = check_pairs(terms, Composable, WeightedSum, "seglosses Keras loss")
        super().__init__(name=name)
        self.coefs = tuple(c for c, _ in pairs)
        self.terms = tuple(t for _, t in pairs)
        self.position = check_position(position)
        #: per term, its coefficient's variable (a schedule) or None (a number)
        self.coef_variables = tuple(
            keras.Variable(c(self.position), dtype="float32", trainable=False, name=f"coef_{i}")
            if isinstance(c, Schedule) else None for i, c in enumerate(self.coefs))

    def step(self, t):
        """Set every schedule of the sum to position ``t`` (an epoch or a step, >= 0). A sum without schedules
        ignores it."""
        t = check_position(t)
        for c, v in zip(self.coefs, self.coef_variables):
            if v is not None:
                v.assign(c(t))
        self.position = t

    def coefficients(self):
        """``{name: coefficient}`` at the current position (names: the terms' ``name``), computed on the host."""
        out, seen = {}, {}
        for c, t in zip(self.coefs, self.terms):
            seen[t.name] = seen.get(t.name, 0) + 1
            name = t.name if seen[t.name] == 1 else f"{t.name}_{seen[t.name]}"
            out[name] = c(self.position) if isinstance(c, Schedule) else c
        return out

    def _pairs(self):
        return list(zip(self.coefs, self.terms))

    def __call__(self, y_true, y_pred, sample_weight=None, pixel_weight=None):
        with keras.name_scope(self.name):
            total = None
            for k, v, term in zip(self.coefs, self.coef_variables, self.terms):
                part = term(y_true, y_pred, sample_weight=sample_weight, pixel_weight=pixel_weight)
                part = part * (k if v is None else keras.ops.cast(v, part.dtype))
                total = part if total is None else total + part
            return total

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def __repr__(self):
        return sum_repr(self.coefs, self.terms)

    def get_config(self):
        """``{"name": ..., "terms": [{"coef": c, "loss": <serialized loss>}, ...]}``, JSON-safe; a scheduled
        coefficient is its schedule's dict, and ``"position": t`` is written when the sum has a schedule."""
        config = {"name": self.name,
                  "terms": [{"coef": coef_config(c), "loss": keras.saving.serialize_keras_object(t)}
                            for c, t in zip(self.coefs, self.terms)]}
        if any(v is not None for v in self.coef_variables):
            config["position"] = self.position
        return config

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
            pairs.append((coef_from_config(term["coef"]), loss if isinstance(loss, keras.losses.Loss)
                          else keras.saving.deserialize_keras_object(loss)))
        return cls(pairs, **config)


class _State:
    """What a Keras layer's ``_seed_generators`` list holds for JAX: an object whose ``state`` is a variable."""

    def __init__(self, variable):
        self.state = variable


class ScheduleCallback(keras.callbacks.Callback):
    """Calls ``loss.step(t)`` during ``model.fit``: ``t`` the epoch at ``on_epoch_begin`` (``unit="epoch"``) or the
    global batch index at ``on_train_batch_begin`` (``unit="batch"``: ``epoch * steps_per_epoch + batch``, or a
    running count when the epoch's length is unknown). ``fit(initial_epoch=k)`` resumes the schedule at epoch k.

    The coefficients are non-trainable ``keras.Variable``\ s: TensorFlow's graphs and the PyTorch backend read them
    as they run. JAX's jitted train step reads only the state the trainer passes it, so on JAX the callback adds the
    loss's coefficient variables to the model's non-saved state (its ``_seed_generators`` list, which
    ``model.variables`` reads and ``model.save`` does not write) when it is attached to the model, and with
    ``unit="batch"`` syncs the trainer's state before assigning (``model.jax_state_sync()``).

    Args:
        loss: the :class:`WeightedSum` to step; None: the model's compiled loss.
        unit: "epoch" or "batch".

    Example:
        >>> from seglosses.keras import DiceLoss, FocalLoss, ScheduleCallback, linear
        >>> loss = DiceLoss("multiclass") + linear(0.0, 1.0, 10) * FocalLoss("multiclass")
        >>> callback = ScheduleCallback(loss)  # model.fit(..., callbacks=[callback])
        >>> callback.on_epoch_begin(4)
        >>> loss.coefficients()
        {'dice_loss': 1.0, 'focal_loss': 0.4}
    """

    def __init__(self, loss=None, unit="epoch"):
        super().__init__()
        if unit not in ("epoch", "batch"):
            raise ValueError(f'`unit` must be "epoch" or "batch"; got {unit!r}')
        if loss is not None and not isinstance(loss, WeightedSum):
            raise TypeError(f"`loss` must be a seglosses.keras.WeightedSum (or None: the model's loss); got "
                            f"{type(loss).__name__}")
        self.loss, self.unit = loss, unit
        self._epoch, self._seen = 0, 0

    def _loss(self):
        if self.loss is not None:
            return self.loss
        loss = getattr(self.model, "loss", None) if self.model is not None else None
        if not isinstance(loss, WeightedSum):
            raise TypeError(f"ScheduleCallback(loss=None) steps the model's loss, which must be a "
                            f"seglosses.keras.WeightedSum; got {type(loss).__name__}")
        return loss

    def set_model(self, model):
        super().set_model(model)
        if keras.backend.backend() == "jax":
            held = getattr(model, "_seed_generators", None)
            if held is None:
                raise RuntimeError("ScheduleCallback on JAX needs a Keras model (a layer with _seed_generators)")
            present = {id(s.state) for s in held}
            held.extend(_State(v) for v in self._loss().coef_variables if v is not None and id(v) not in present)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.unit == "epoch":
            self._loss().step(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.unit != "batch":
            return
        steps = (self.params or {}).get("steps")
        t = self._epoch * steps + batch if steps else self._seen
        self._seen += 1
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()  # (JAX: carried state back into the variables, then read again at the next step)
        self._loss().step(t)
