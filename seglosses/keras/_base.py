"""The base of the Keras losses: :class:`SegLoss` (Keras' reductions over the valid entries, the ``sample_weight``
rule, ``get_config``), the Keras-side argument checks, the input handling every loss shares, and :func:`fill_doc`.

Every loss is a function holding the math (``dice_loss(y_true, y_pred, mode, *, ...)``, unreduced values) and a
:class:`SegLoss` subclass wrapping it, as Keras' ``LossFunctionWrapper``: the class checks its options once, keeps
them for ``get_config`` and calls the function's private form, which also returns the weights of the values' mean.
"""

from __future__ import annotations

import inspect

import keras
from keras import ops

from seglosses.core.args import INTEGER_RANGES, check_classes, check_ignore_index_fits, check_length, check_mode
from seglosses.core.args import check_reduction, check_values
from seglosses.keras import _ops
from seglosses.keras._compose import Composable

#: Keras' reduction names (``keras.losses.Loss``).
KERAS_REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None)


def register(cls):
    """Registers a loss class under the package name "seglosses" (saved models load without ``custom_objects``),
    with its public module: ``seglosses.keras``, the "module" of its serialized form and of its pickles."""
    cls.__module__ = "seglosses.keras"
    return keras.saving.register_keras_serializable(package="seglosses")(cls)


def fill_doc(**parts):
    """Decorator: each ``{name}`` in the docstring replaced by ``parts[name]``, in the keywords' order (so a part may
    hold fields of later parts); by ``str.replace``, since the docstrings hold other braces."""
    def fill(obj):
        text = obj.__doc__
        for name, part in parts.items():
            text = text.replace("{" + name + "}", part)
        obj.__doc__ = text
        return obj
    return fill


# ------------------------------------------------------------------------------------------ argument checks ---
def check_axis(axis):
    if axis not in (-1, 1):
        raise ValueError(f"`axis` must be -1 (channels_last) or 1 (channels_first); got {axis!r}")
    return axis


def is_vector(value):
    """Whether an option holds per-class values: a list, a tuple, or an array with at least one axis."""
    return isinstance(value, (list, tuple)) or hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0


def per_class(name, value, *, low=0.0, high=None):
    """None, or a sequence of per-class numbers as a list of floats (its length is checked at call time)."""
    if value is None:
        return None
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    return check_values(name, value, low=low, high=high)


def class_list(classes):
    """None, or the class indices as a list of ints: type and uniqueness checked now, the range once C is known."""
    if classes is None:
        return None
    check_classes(classes, 1 << 30)
    return [int(k) for k in ([classes] if isinstance(classes, int) else classes)]


def _check_lengths(c, **vectors):
    for name, v in vectors.items():
        if isinstance(v, list):
            check_length(name, len(v), c)


def _check_ignore_fits(ignore_class, y_true):
    """:func:`seglosses.core.args.check_ignore_index_fits` for an integer or bool ``y_true``, in the Keras names."""
    if ignore_class is None:
        return
    dtype = keras.backend.standardize_dtype(y_true.dtype)
    try:
        check_ignore_index_fits(ignore_class, dtype)
    except ValueError:
        low, high = INTEGER_RANGES[dtype]
        raise ValueError(f"`ignore_class`={ignore_class} (the ignore_index) cannot occur in a `y_true` of dtype "
                         f"{dtype} (values {low}..{high}), so it would ignore nothing; use an ignore_class the dtype "
                         "holds, or cast y_true (for example to int32)") from None


# ------------------------------------------------------------------------------------------------- inputs ---
def inputs(y_true, y_pred, mode, ignore_class, axis, **vectors):
    """:func:`._ops.prepare`, the per-class vectors' lengths, the ``ignore_class`` rules (refused with soft targets
    in "multiclass", a value an integer ``y_true`` can hold), and ``y_pred`` set to 0 at ignored entries
    (:func:`._ops.select_valid`: NaN or inf there add nothing to the loss nor to its gradient).

    Returns ``(x, target, index, spatial)``: ``x`` ``(B, S, C)``, the target (class indices ``(B, S)`` when
    ``index``, else ``(B, S, C)``) and the spatial shape."""
    y_true = ops.convert_to_tensor(y_true)
    _check_ignore_fits(ignore_class, y_true)
    x, target, index, spatial = _ops.prepare(y_true, y_pred, mode, axis)
    _check_lengths(x.shape[-1], **vectors)
    if mode == "multiclass" and not index and ignore_class is not None:
        raise ValueError("`ignore_class` needs class-index targets in mode='multiclass'; got class probabilities")
    return _ops.select_valid(x, target, index, ignore_class), target, index, spatial


def layout(values, spatial, axis, channels):
    """Elementwise values (B, S[, C]) back to the input's layout."""
    shape = (-1,) + tuple(spatial) + ((channels,) if channels else ())
    out = ops.reshape(values, shape)
    if channels and axis == 1 and len(shape) > 2:
        out = ops.moveaxis(out, -1, 1)
    return out


def pixel_map(y_pred, values, norm, mode, spatial, axis):
    """An elementwise map (B, S[, C]) and the weights of its mean, back in the input's layout."""
    binary_flat = mode == "binary" and tuple(ops.shape(y_pred))[-1:] != (1,)
    keep_c = values.shape[-1] if mode != "multiclass" and not binary_flat else None
    return layout(values, spatial, axis, keep_c), layout(norm, spatial, axis, keep_c)


def rows(values, per_image):
    """Per-row values of a region loss: one per image (``per_image``), else the batch's one; weights all 1."""
    values = values if per_image else values[0]
    return values, ops.ones_like(values)


# ------------------------------------------------------------------------------------------------ reduction ---
def _sample_weight(sample_weight, values):
    """``sample_weight`` cast to the values' dtype and brought to their rank by Keras' rule
    (``keras.src.losses.loss.squeeze_or_expand_to_same_rank``): trailing size-1 axes beyond the values' rank are
    squeezed, so ``(N, 1)`` weighs the ``N`` per-image values as ``(N,)`` does (not an ``N x N`` outer product), and
    missing trailing axes are added, so ``(N,)`` weighs the images of an elementwise map ``(N, *spatial[, C])`` and
    ``(N, *spatial)`` its pixels. Keras applies each step for one axis; here it repeats (``(N, 1, 1)`` too)."""
    if len(values.shape) == 0:
        raise ValueError("`sample_weight` needs per-image values: this loss pools its statistics over the batch "
                         "(per_image=False); use per_image=True to weigh images")
    sw = ops.cast(ops.convert_to_tensor(sample_weight), values.dtype)
    rank = len(values.shape)
    while len(sw.shape) > rank and sw.shape[-1] == 1:
        sw = ops.squeeze(sw, -1)
    if len(sw.shape) > rank:
        raise ValueError(f"`sample_weight` of shape {tuple(sw.shape)} has more axes than the loss values "
                         f"{tuple(values.shape)}, and its extra trailing axes are not of size 1")
    while len(sw.shape) < rank:
        sw = ops.expand_dims(sw, -1)
    return sw


def reduce(values, norm, sample_weight, reduction):
    """Keras' reductions over ``values`` with ``norm`` the weights of the mean (0 at ignored entries)."""
    if sample_weight is not None:
        sw = _sample_weight(sample_weight, values)
        values, weighted = values * sw, norm * sw
    else:
        weighted = norm
    if reduction in ("none", None):
        return values
    total = ops.sum(values)
    if reduction == "sum":
        return total
    den = ops.sum(weighted if reduction == "mean_with_sample_weight" else norm * ops.ones_like(values))
    return total / ops.where(ops.greater(den, 0), den, ops.ones_like(den))


class SegLoss(Composable, keras.losses.Loss):
    """Base of the seglosses Keras losses: ``__call__`` reduces the values with the weights of their mean (valid,
    not ignored, entries), so that "sum_over_batch_size" is the mean over valid entries as in the PyTorch front end.
    Losses compose into a :class:`WeightedSum` with ``+``, ``-``, ``*`` and ``/`` by a number.

    ``sample_weight`` is brought to the values' rank by Keras' rule (trailing size-1 axes squeezed, missing trailing
    axes added: see :mod:`seglosses.keras`); "mean_with_sample_weight" divides by the sum of the weights over the valid
    entries, "sum_over_batch_size" by the count of valid entries.

    ``dtype``: as in Keras, ``y_pred`` is converted to it on entry. float16 and bfloat16 inputs are then computed in
    float32, and the loss comes out in float32 on every backend (TensorFlow, JAX and torch alike; checked in
    tests/keras), for ``dtype="bfloat16"`` or ``"float16"`` as under a ``mixed_*`` policy. Keras' own losses return
    their ``dtype`` instead (bfloat16 for ``dtype="bfloat16"``).

    A subclass passes its checked options to ``__init__`` (they are its ``get_config``) and defines
    ``_values(y_true, y_pred)``: the unreduced values and the weights of their mean, from its function's private
    form with ``self.mode`` and ``self.options``."""

    def __init__(self, mode, *, reduction="sum_over_batch_size", name=None, dtype=None, **options):
        check_reduction(reduction, KERAS_REDUCTIONS)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.mode = check_mode(mode)
        self.options = options

    def _values(self, y_true, y_pred):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        return self._values(y_true, y_pred)[0]

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            values, norm = self._values(ops.convert_to_tensor(y_true), y_pred)
            return reduce(values, norm, sample_weight, self.reduction)

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, **self.options)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        """The class, the mode and the settings that differ from their defaults: ``FocalLoss('binary', gamma=1.0)``."""
        defaults = {k: p.default for k, p in inspect.signature(type(self).__init__).parameters.items()}
        parts = [repr(self.mode)]
        for key, value in list(self.options.items()) + [("reduction", self.reduction)]:
            if key not in defaults or value != defaults[key]:
                parts.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"
