"""seglosses for Keras 3: the PyTorch front end's losses, with the same numbers, on any Keras backend.

Written with ``keras.ops`` only, so one implementation runs on TensorFlow, JAX and PyTorch. Importing this module
needs Keras, not torch. Keras conventions: ``loss(y_true, y_pred)``, ``from_logits=False`` by default, channels-last
(``axis=-1``; ``axis=1`` for channels_first), ``ignore_class``, Keras reduction names, ``sample_weight``.

Every loss is a ``keras.losses.Loss`` subclass (registered under the package name "seglosses", so saved models load
without ``custom_objects``) and a lowercase function returning the unreduced values:

* focal: the elementwise map, ``y_pred``'s shape (sigmoid: binary, multilabel) or ``y_pred`` without its class axis
  (softmax: multiclass); the mean is over valid (not ignored) entries;
* region losses and Lovasz: one value per image with ``per_image=True`` (the weighted mean over classes, so
  ``sample_weight`` weighs images), else one value for the whole batch (``sample_weight`` is then refused: the
  statistics are pooled over the batch before the score, so a per-sample weight has no meaning).

Definitions: docs/semantics.md. ``mode`` is "binary", "multiclass" or "multilabel" as in the PyTorch front end.
"""

from __future__ import annotations

import keras
from keras import ops

from .._args import check_bool, check_classes, check_ignore_index, check_length, check_mode, check_scalar
from .._args import check_values
from .._formulas import check_alpha_beta
from . import _core

__all__ = [
    "SegLoss",
    "FocalLoss", "focal_loss",
    "DiceLoss", "dice_loss",
    "JaccardLoss", "jaccard_loss",
    "TverskyLoss", "tversky_loss",
    "FocalTverskyLoss", "focal_tversky_loss",
    "GeneralizedDiceLoss", "generalized_dice_loss",
    "LovaszLoss", "lovasz_loss",
]

_REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None)
_WEIGHT_TYPES = ("square", "simple", "uniform")


# ------------------------------------------------------------------------------------------ argument checks ---
def _axis(axis):
    if axis not in (-1, 1):
        raise ValueError(f"`axis` must be -1 (channels_last) or 1 (channels_first); got {axis!r}")
    return axis


def _per_class(name, value, *, low=0.0, high=None):
    """None, or a sequence of per-class numbers as a list of floats (its length is checked at call time)."""
    if value is None:
        return None
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    return check_values(name, value, low=low, high=high)


def _alpha(alpha, mode):
    if alpha is None:
        return None
    high = None if mode == "multiclass" else 1.0
    if isinstance(alpha, (list, tuple)) or hasattr(alpha, "tolist") and getattr(alpha, "ndim", 0) > 0:
        return _per_class("alpha", alpha, high=high)
    return check_scalar("alpha", alpha, low=0.0, high=high)


def _check_lengths(c, **vectors):
    for name, v in vectors.items():
        if isinstance(v, list):
            check_length(name, len(v), c)


# ------------------------------------------------------------------------------------------------ reduction ---
def _reduce(values, norm, sample_weight, reduction):
    """Keras' reductions over ``values`` with ``norm`` the weights of the mean (0 at ignored entries)."""
    if sample_weight is not None:
        if len(values.shape) == 0:
            raise ValueError("`sample_weight` needs per-image values: this loss pools its statistics over the batch "
                             "(per_image=False); use per_image=True to weigh images")
        sw = ops.cast(ops.convert_to_tensor(sample_weight), values.dtype)
        while len(sw.shape) < len(values.shape):
            sw = ops.expand_dims(sw, -1)
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


class SegLoss(keras.losses.Loss):
    """Base of the seglosses Keras losses: ``__call__`` reduces the values with the weights of their mean (valid,
    not ignored, entries), so that "sum_over_batch_size" is the mean over valid entries as in the PyTorch front end."""

    def __init__(self, mode, *, reduction="sum_over_batch_size", name=None, dtype=None, **options):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"`reduction` must be one of {_REDUCTIONS}; got {reduction!r}")
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
            return _reduce(values, norm, sample_weight, self.reduction)

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, **self.options)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _layout(values, spatial, axis, channels):
    """Elementwise values (B, S[, C]) back to the input's layout."""
    shape = (-1,) + tuple(spatial) + ((channels,) if channels else ())
    out = ops.reshape(values, shape)
    if channels and axis == 1 and len(shape) > 2:
        out = ops.moveaxis(out, -1, 1)
    return out


# ---------------------------------------------------------------------------------------------------- focal ----
def _focal(y_true, y_pred, mode, alpha, gamma, weight, ignore_class, label_smoothing, from_logits, axis):
    x, target, index, spatial = _core.prepare(y_true, y_pred, mode, axis)
    c = x.shape[-1]
    _check_lengths(c, alpha=alpha, weight=weight)
    if mode == "multiclass" and not index and ignore_class is not None:
        raise ValueError("`ignore_class` needs class-index targets in mode='multiclass'; got class probabilities")
    values, norm = _core.focal_values(x, target, index, mode, alpha=alpha, gamma=gamma, weight=weight,
                                      ignore=ignore_class, smoothing=label_smoothing, from_logits=from_logits)
    sigmoid = mode != "multiclass"
    binary_flat = mode == "binary" and tuple(ops.shape(y_pred))[-1:] != (1,)
    keep_c = c if sigmoid and not binary_flat else None
    return _layout(values, spatial, axis, keep_c), _layout(norm, spatial, axis, keep_c)


def focal_loss(y_true, y_pred, mode, *, alpha=None, gamma=2.0, weight=None, ignore_class=None, label_smoothing=0.0,
               from_logits=False, axis=-1):
    r"""Focal loss (Lin et al. 2017), unreduced: see :class:`FocalLoss`."""
    a = _focal_args(mode, alpha, gamma, weight, ignore_class, label_smoothing, from_logits, axis)
    return _focal(y_true, y_pred, **a)[0]


def _focal_args(mode, alpha, gamma, weight, ignore_class, label_smoothing, from_logits, axis):
    mode = check_mode(mode)
    return dict(mode=mode, alpha=_alpha(alpha, mode), gamma=check_scalar("gamma", gamma, low=0.0),
                weight=_per_class("weight", weight), ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                label_smoothing=check_scalar("label_smoothing", label_smoothing, low=0.0, high=1.0),
                from_logits=check_bool("from_logits", from_logits), axis=_axis(axis))


@keras.saving.register_keras_serializable(package="seglosses")
class FocalLoss(SegLoss):
    r"""Focal loss (Lin et al. 2017, arXiv 1708.02002): sigmoid form for "binary"/"multilabel", softmax form for
    "multiclass", exactly as ``seglosses.focal_loss`` (docs/semantics.md), from logits in log space or from clamped
    probabilities.

    Args:
        mode: "binary", "multiclass" or "multilabel".
        alpha: None (no weighting), a float (sigmoid: alpha_t = alpha y + (1 - alpha)(1 - y), always applied;
            softmax: multiplies every class) or one value per class.
        gamma: focusing exponent >= 0.
        weight: per-class weights (C values).
        ignore_class: target value left out (class index, or e.g. 255 / -1 in a binary target).
        label_smoothing: in [0, 1].
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, clamped to [1e-7, 1 - 1e-7].
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss. "sum_over_batch_size" is the mean over valid entries.

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import FocalLoss
        >>> loss = FocalLoss("binary", alpha=0.25, gamma=2.0, reduction="sum")
        >>> round(float(loss(np.array([1.0, 0.0, 1.0]), np.array([0.6, 0.3, 0.7]))), 7)
        0.0525338
    """

    def __init__(self, mode, alpha=None, gamma=2.0, weight=None, ignore_class=None, label_smoothing=0.0,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="focal_loss", dtype=None):
        a = _focal_args(mode, alpha, gamma, weight, ignore_class, label_smoothing, from_logits, axis)
        mode = a.pop("mode")
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype, **a)

    def _values(self, y_true, y_pred):
        return _focal(y_true, y_pred, self.mode, **self.options)


# ---------------------------------------------------------------------------------------------------- region ---
def _region_args(mode, smooth, per_image, log_loss, weight, classes, ignore_class, from_logits, axis):
    if classes is not None:
        check_classes(classes, 1 << 30)  # type and uniqueness now; the range once C is known
        classes = [int(k) for k in ([classes] if isinstance(classes, int) else classes)]
    return dict(mode=check_mode(mode), smooth=check_scalar("smooth", smooth, low=0.0),
                per_image=check_bool("per_image", per_image), log_loss=check_bool("log_loss", log_loss),
                weight=_per_class("weight", weight), classes=classes,
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=_axis(axis))


def _stats(y_true, y_pred, mode, per_image, weight, classes, ignore_class, from_logits, axis):
    x, target, index, _ = _core.prepare(y_true, y_pred, mode, axis)
    c = x.shape[-1]
    _check_lengths(c, weight=weight)
    classes = check_classes(classes, c)
    if mode == "multiclass" and not index and ignore_class is not None:
        raise ValueError("`ignore_class` needs class-index targets in mode='multiclass'; got class probabilities")
    stats = _core.region_stats(x, target, index, mode, ignore=ignore_class, from_logits=from_logits,
                               per_image=per_image)
    return stats, classes


def _overlap(y_true, y_pred, score, power, mode, smooth, per_image, log_loss, weight, classes, ignore_class,
             from_logits, axis):
    (tp, fp, fn, _), classes = _stats(y_true, y_pred, mode, per_image, weight, classes, ignore_class, from_logits,
                                      axis)
    values = _core.region_values(tp, fp, fn, score, smooth=smooth, log_loss=log_loss, power=power, weight=weight,
                                 classes=classes)
    values = values if per_image else values[0]
    return values, ops.ones_like(values)


_REGION_DOC = """
    Args:
        mode: "binary", "multiclass" or "multilabel".
        smooth: s >= 0, added to numerator and denominator.
        per_image: one value per image (then ``sample_weight`` weighs images); False: statistics pooled over the
            batch, one value (``sample_weight`` refused).
        log_loss: ``-log(max(score, 1e-7))`` instead of ``1 - score``.
        weight: per-class weights (C values): the weighted mean over classes.
        classes: class indices to keep (e.g. all but background); None keeps all.
        ignore_class: target value left out of every statistic.
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, used as given.
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss.
"""


class _Overlap(SegLoss):
    _score = None
    _power_option = None

    def _values(self, y_true, y_pred):
        o = dict(self.options)
        if "alpha" in o:
            score = _core.tversky_score(o.pop("alpha"), o.pop("beta"))
        else:
            score = self._score
        power = o.pop("gamma", None)
        return _overlap(y_true, y_pred, score, power, self.mode, **o)


@keras.saving.register_keras_serializable(package="seglosses")
class DiceLoss(_Overlap):
    __doc__ = ("Dice loss (Milletari et al. 2016): 1 - (2 tp + s) / (2 tp + fp + fn + s) per class, with the soft "
               "statistics of ``seglosses.dice_loss`` (L1 form on soft targets).\n" + _REGION_DOC)
    _score = staticmethod(_core.dice_score)

    def __init__(self, mode, smooth=1e-5, per_image=False, log_loss=False, weight=None, classes=None,
                 ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size", name="dice_loss",
                 dtype=None):
        a = _region_args(mode, smooth, per_image, log_loss, weight, classes, ignore_class, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, **a)


@keras.saving.register_keras_serializable(package="seglosses")
class JaccardLoss(_Overlap):
    __doc__ = "Jaccard (soft IoU) loss: 1 - (tp + s) / (tp + fp + fn + s) per class.\n" + _REGION_DOC
    _score = staticmethod(_core.tversky_score(1.0, 1.0))

    def __init__(self, mode, smooth=1e-5, per_image=False, log_loss=False, weight=None, classes=None,
                 ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="jaccard_loss", dtype=None):
        a = _region_args(mode, smooth, per_image, log_loss, weight, classes, ignore_class, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, **a)


@keras.saving.register_keras_serializable(package="seglosses")
class TverskyLoss(_Overlap):
    __doc__ = ("Tversky loss (Salehi et al. 2017): 1 - (tp + s) / (tp + alpha fp + beta fn + s); ``alpha`` weighs "
               "false positives, ``beta`` false negatives.\n" + _REGION_DOC)

    def __init__(self, mode, alpha=0.3, beta=0.7, smooth=1e-5, per_image=False, log_loss=False, weight=None,
                 classes=None, ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="tversky_loss", dtype=None):
        alpha, beta = check_alpha_beta(alpha, beta)
        a = _region_args(mode, smooth, per_image, log_loss, weight, classes, ignore_class, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, alpha=alpha, beta=beta, **a)


@keras.saving.register_keras_serializable(package="seglosses")
class FocalTverskyLoss(_Overlap):
    __doc__ = ("Focal-Tversky loss (Abraham & Khan 2019): the Tversky loss of each class raised to ``gamma`` "
               "(default 0.75).\n" + _REGION_DOC)

    def __init__(self, mode, alpha=0.3, beta=0.7, gamma=0.75, smooth=1e-5, per_image=False, log_loss=False,
                 weight=None, classes=None, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="focal_tversky_loss", dtype=None):
        alpha, beta = check_alpha_beta(alpha, beta)
        gamma = check_scalar("gamma", gamma, low=0.0)
        a = _region_args(mode, smooth, per_image, log_loss, weight, classes, ignore_class, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, alpha=alpha, beta=beta,
                         gamma=gamma, **a)


@keras.saving.register_keras_serializable(package="seglosses")
class GeneralizedDiceLoss(SegLoss):
    __doc__ = ("Generalized Dice loss (Sudre et al. 2017): one Dice over all classes, class c weighted by 1/G_c^2 "
               "(\"square\"), 1/G_c (\"simple\") or 1 (\"uniform\"); absent classes get the largest finite "
               "weight.\n" + _REGION_DOC)

    def __init__(self, mode, weight_type="square", smooth=1e-5, per_image=False, log_loss=False, weight=None,
                 classes=None, ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="generalized_dice_loss", dtype=None):
        if weight_type not in _WEIGHT_TYPES:
            raise ValueError(f"`weight_type` must be one of {_WEIGHT_TYPES}; got {weight_type!r}")
        a = _region_args(mode, smooth, per_image, log_loss, weight, classes, ignore_class, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, weight_type=weight_type, **a)

    def _values(self, y_true, y_pred):
        o = dict(self.options)
        (tp, fp, fn, g), classes = _stats(y_true, y_pred, self.mode, o["per_image"], o["weight"], o["classes"],
                                          o["ignore_class"], o["from_logits"], o["axis"])
        values = _core.gdl_values(tp, fp, fn, g, weight_type=o["weight_type"], smooth=o["smooth"],
                                  log_loss=o["log_loss"], weight=o["weight"], classes=classes)
        values = values if o["per_image"] else values[0]
        return values, ops.ones_like(values)


@keras.saving.register_keras_serializable(package="seglosses")
class LovaszLoss(SegLoss):
    r"""Lovasz loss (Berman et al. 2018): Lovasz hinge for "binary" (per class for "multilabel"), Lovasz-softmax for
    "multiclass", as ``seglosses.lovasz_loss``.

    Args:
        mode: "binary", "multiclass" or "multilabel".
        classes: "present" (default: classes absent from a row's target do not count, multiclass only), "all", or
            a list of class indices.
        per_image: one value per image (mean over its counted classes); False: one value for the batch.
        ignore_class: target value left out.
        weight: per-class weights (C values).
        from_logits: False (Keras' default): probabilities (hinge modes use their clamped log-odds).
        axis, reduction, name, dtype: as the other losses.
    """

    def __init__(self, mode, classes="present", per_image=False, ignore_class=None, weight=None, from_logits=False,
                 axis=-1, reduction="sum_over_batch_size", name="lovasz_loss", dtype=None):
        if isinstance(classes, str):
            check_classes(classes, 1, allow=("present", "all"))
        elif classes is not None:
            check_classes(classes, 1 << 30)
            classes = [int(k) for k in ([classes] if isinstance(classes, int) else classes)]
        super().__init__(check_mode(mode), reduction=reduction, name=name, dtype=dtype,
                         classes="all" if classes is None else classes,
                         per_image=check_bool("per_image", per_image),
                         ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                         weight=_per_class("weight", weight), from_logits=check_bool("from_logits", from_logits),
                         axis=_axis(axis))

    def _values(self, y_true, y_pred):
        o = self.options
        x, target, index, _ = _core.prepare(y_true, y_pred, self.mode, o["axis"])
        c = x.shape[-1]
        _check_lengths(c, weight=o["weight"])
        classes = o["classes"] if isinstance(o["classes"], str) else check_classes(o["classes"], c)
        if self.mode == "multiclass" and not index and o["ignore_class"] is not None:
            raise ValueError("`ignore_class` needs class-index targets in mode='multiclass'; got class probabilities")
        values = _core.lovasz_values(x, target, index, self.mode, classes=classes, per_image=o["per_image"],
                                     ignore=o["ignore_class"], weight=o["weight"], from_logits=o["from_logits"])
        values = values if o["per_image"] else values[0]
        return values, ops.ones_like(values)


# ------------------------------------------------------------------------------------------------ functions ---
def _function(cls, doc):
    def loss(y_true, y_pred, mode, **options):
        return cls(mode, **options).call(y_true, y_pred)
    loss.__name__ = loss.__qualname__ = cls.__name__[0].lower() + "".join(
        "_" + ch.lower() if ch.isupper() else ch for ch in cls.__name__[1:])
    loss.__doc__ = f"{doc} Unreduced values of :class:`{cls.__name__}`; same options (keywords)."
    return loss


dice_loss = _function(DiceLoss, "Dice loss.")
jaccard_loss = _function(JaccardLoss, "Jaccard loss.")
tversky_loss = _function(TverskyLoss, "Tversky loss.")
focal_tversky_loss = _function(FocalTverskyLoss, "Focal-Tversky loss.")
generalized_dice_loss = _function(GeneralizedDiceLoss, "Generalized Dice loss.")
lovasz_loss = _function(LovaszLoss, "Lovasz loss.")
