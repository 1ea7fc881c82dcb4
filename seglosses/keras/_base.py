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


def weighted_inputs(y_true, y_pred, mode, ignore_class, axis, pixel_weight, *, per_class=True, **vectors):
    """:func:`inputs` and the per-pixel weight map :func:`pixel_weights` (None without one): ``(x, target, index,
    spatial, w)``."""
    y_pred = ops.convert_to_tensor(y_pred)
    x, target, index, spatial = inputs(y_true, y_pred, mode, ignore_class, axis, **vectors)
    w = pixel_weights(pixel_weight, y_pred, mode, axis, x, target, index, ignore_class, per_class=per_class)
    return x, target, index, spatial, w


def pixel_weights(pixel_weight, y_pred, mode, axis, x, target, index, ignore_class, *, per_class=True):
    """A per-pixel weight map checked and brought to the ``(B, S, 1)`` / ``(B, S, C)`` layout of ``x`` (from
    :func:`inputs`): the Keras twin of ``seglosses.core.checks.pixel_weights`` in Keras' layout, with the same
    messages; None stays None.

    Accepted shapes, each axis the full size or 1 (which broadcasts): ``y_pred`` without its class axis
    ``(N, *spatial)`` (one weight per pixel, every class), or ``y_pred``'s shape (one weight per pixel and class;
    "binary" without a class axis: one per element). ``per_class=False`` (losses with one value per pixel of a
    softmax) refuses a class axis larger than 1. The map comes out in ``x``'s dtype (float32 for float16/bfloat16
    inputs), without gradient, and 0 at ignored entries, selected (a NaN or inf weight there has no effect). Only
    static facts are checked: the values are used as given."""
    if pixel_weight is None:
        return None
    if not (hasattr(pixel_weight, "shape") and hasattr(pixel_weight, "dtype")):
        raise TypeError(f"`pixel_weight` must be a tensor or an array or None; got {type(pixel_weight).__name__}")
    dtype = keras.backend.standardize_dtype(pixel_weight.dtype)
    if not (dtype.startswith(("float", "int", "uint", "bfloat")) or dtype == "bool"):
        raise TypeError(f"`pixel_weight` must be real; got dtype {dtype}")
    shape, wshape = tuple(y_pred.shape), tuple(pixel_weight.shape)
    first = axis == 1 and len(shape) > 2
    cls = 1 if first else len(shape) - 1  # y_pred's class axis
    channel = len(shape) >= 2 and (mode != "binary" or shape[cls] == 1)
    forms = [shape] + ([shape[:cls] + shape[cls + 1:]] if channel else [])
    full = next((f for f in forms if len(f) == len(wshape)), None)
    if full is None or any(w not in (1, f) and f is not None for w, f in zip(wshape, full)):
        allowed = " or ".join(f"{f}" for f in reversed(forms))
        raise ValueError(f"`pixel_weight` must have shape {allowed} (the target's spatial shape, or the logits' "
                         f"shape for per-class weights), each axis the full size or 1; got {wshape}")
    with_class = channel and len(full) == len(shape)
    if mode == "multiclass" and with_class and not per_class and wshape[cls] != 1:
        raise ValueError(f"`pixel_weight` of this loss takes one weight per pixel, shape {forms[1]}: it has one "
                         f"value per pixel (per-class weights: `weight=`); got {wshape}")
    w = ops.stop_gradient(ops.cast(ops.convert_to_tensor(pixel_weight), x.dtype))
    dims = list(ops.shape(y_pred))
    if first:  # channels-first: the class axis last, as prepare() does ("binary" without one: the same move)
        dims.append(dims.pop(1))
        if len(wshape) == len(shape):
            w = ops.moveaxis(w, 1, -1)
    if not with_class:  # (N, *spatial): a class axis of 1; "binary" without a class axis: one too
        w = ops.expand_dims(w, -1)
        if not channel:
            dims.append(1)
    cw = x.shape[-1] if with_class and mode != "binary" and wshape[cls] != 1 else 1
    dims[-1] = cw
    w = ops.broadcast_to(w, tuple(dims))
    s = x.shape[1]
    w = ops.reshape(w, (-1, s, cw) if s is not None else (ops.shape(x)[0], -1, cw))
    if ignore_class is None:
        return w
    valid = ops.not_equal(target, ops.cast(ignore_class, target.dtype))
    return ops.where(ops.expand_dims(valid, -1) if index else valid, w, ops.zeros_like(w))


def layout(values, spatial, axis, channels):
    """Elementwise values (B, S[, C]) back to the input's layout."""
    shape = (-1,) + tuple(spatial) + ((channels,) if channels else ())
    if 0 in shape:  # an empty map (SSIM's "valid" padding, window larger than the image): -1 cannot be inferred
        shape = (ops.shape(values)[0],) + shape[1:]
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


def split_sample_weight(sample_weight, pixel_weight):
    """``(sample_weight, pixel_weight, from_sample)``: a ``sample_weight`` with more than one axis once its trailing
    size-1 axes are dropped (``(N, *spatial)``, ``(N, *spatial, 1)``, ``(N, *spatial, C)``) is a per-pixel weight
    map and becomes the ``pixel_weight`` (the loss's own weighting, inside its statistics); one of shape ``()``,
    ``(N,)`` or ``(N, 1, ...)`` keeps Keras' meaning, a weight per image's value (:func:`reduce`)."""
    if sample_weight is None:
        return None, pixel_weight, False
    if not hasattr(sample_weight, "shape"):
        sample_weight = ops.convert_to_tensor(sample_weight)
    shape = tuple(sample_weight.shape)
    while len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) < 2:
        return sample_weight, pixel_weight, False
    if pixel_weight is not None:
        raise ValueError(f"`sample_weight` of per-pixel shape {tuple(sample_weight.shape)} is a pixel weight map: "
                         "pass it or `pixel_weight`, not both (multiply them first)")
    return None, sample_weight, True


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

    ``pixel_weight`` (per call): a per-pixel weight map, weighed inside the loss (docs/semantics.md, "Keras: pixel
    weights and sample_weight"). A ``sample_weight`` of per-pixel shape (more than one axis once its trailing size-1
    axes are dropped) is that map; a per-image one, ``(N,)`` or ``(N, 1)``, is brought to the values' rank by Keras'
    rule (trailing size-1 axes squeezed, missing trailing axes added: see :mod:`seglosses.keras`);
    "mean_with_sample_weight" divides by the sum of the weights over the valid entries, "sum_over_batch_size" by the
    count of valid entries.

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

    def _values(self, y_true, y_pred, pixel_weight=None):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        return self._values(y_true, y_pred)[0]

    def __call__(self, y_true, y_pred, sample_weight=None, pixel_weight=None):
        """The reduced loss. ``pixel_weight``: a per-pixel weight map (see :mod:`seglosses.keras`); a
        ``sample_weight`` of per-pixel shape is taken as the pixel weight map (:func:`split_sample_weight`)."""
        with keras.name_scope(self.name):
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            sample_weight, pixel_weight, from_sample = split_sample_weight(sample_weight, pixel_weight)
            try:
                values, norm = self._values(ops.convert_to_tensor(y_true), y_pred, pixel_weight)
            except ValueError as error:
                if from_sample and "`pixel_weight`" in str(error):
                    raise ValueError(f"`sample_weight` of shape {tuple(pixel_weight.shape)} has per-pixel shape and "
                                     f"is taken as the loss's `pixel_weight`: {error}") from None
                raise
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
