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

The distance-based losses (boundary, Hausdorff distance-transform) are elementwise like the focal loss: the map
``(N, *spatial, K)`` of the kept classes, whose mean over the valid (pixel, class) pairs is the loss; their exact
distance transforms run in ``keras.ops`` at every call (no precomputed maps in a ``Loss``; the functions take them).

The survey losses (docs/survey_losses.md) follow the same rules: the cross-entropy family is elementwise like the
focal loss; sensitivity-specificity and log-cosh Dice are region losses; the compound losses (exponential-
logarithmic, Combo, Unified Focal) give one value for the batch, which is the PyTorch front end's
``reduction="mean"`` (each part averaged: the pixel part over the valid entries of the batch, the region part over
classes), or with ``per_image=True`` one value per image whose mean is that loss (``sample_weight`` then weighs
images; Combo pools its Dice over the batch and refuses it). The Keras reduction reduces over images only.

``sample_weight`` follows Keras' shape rule (``squeeze_or_expand_to_same_rank``): trailing size-1 axes beyond the
rank of the values are squeezed, so ``(N,)``, ``(N, 1)`` and ``(N, 1, 1)`` all weigh the N images, and missing
trailing axes are added, so ``(N,)`` weighs the images of an elementwise map and ``(N, *spatial)`` its pixels.

Targets: class indices ``(N, *)`` (or ``(N, *, 1)``), or class probabilities ``(N, *, C)`` in "multiclass", which
may be an integer or bool one-hot (uint8, int32, int64, bool: read as 0/1 probabilities, the float one-hot's
value). ``ignore_class`` must be a value an integer or bool ``y_true`` can hold (-1 with uint8 is refused, as
``ignore_index`` in the PyTorch front end); ``y_pred`` at ignored entries is selected out before any arithmetic, so a
NaN or inf logit there changes neither the loss nor the gradient (0 there). A NaN in a valid target element is not
hidden: the loss is NaN. Every numeric option must be finite (inf is refused with a ValueError naming it).

Losses compose: ``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")`` (also ``-``, ``/`` by a number, unary
``-``, ``sum([...])``) is a :class:`WeightedSum`, itself a serializable Keras loss.

Definitions: docs/semantics.md. ``mode`` is "binary", "multiclass" or "multilabel" as in the PyTorch front end.
"""

from __future__ import annotations

import inspect
import math

import keras
from keras import ops

from seglosses.core.args import INTEGER_RANGES, check_bool, check_classes, check_ignore_index, check_ignore_index_fits
from seglosses.core.args import check_length, check_mode, check_scalar, check_values
from seglosses.core.formulas import check_alpha_beta
from seglosses.keras import _boundary
from seglosses.keras import _core
from seglosses.keras import _survey
from seglosses.keras._compose import Composable, WeightedSum

__all__ = [
    "SegLoss",
    "FocalLoss", "focal_loss",
    "DiceLoss", "dice_loss",
    "JaccardLoss", "jaccard_loss",
    "TverskyLoss", "tversky_loss",
    "FocalTverskyLoss", "focal_tversky_loss",
    "GeneralizedDiceLoss", "generalized_dice_loss",
    "LovaszLoss", "lovasz_loss",
    "CrossEntropyLoss", "cross_entropy_loss",
    "WeightedCrossEntropyLoss", "weighted_cross_entropy_loss",
    "BalancedCrossEntropyLoss", "balanced_cross_entropy_loss",
    "SensitivitySpecificityLoss", "sensitivity_specificity_loss",
    "LogCoshDiceLoss", "log_cosh_dice_loss",
    "ExpLogLoss", "exp_log_loss",
    "ComboLoss", "combo_loss",
    "UnifiedFocalLoss", "unified_focal_loss",
    "BoundaryLoss", "boundary_loss",
    "HausdorffDTLoss", "hausdorff_dt_loss",
    "WeightedSum",
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


def _reduce(values, norm, sample_weight, reduction):
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
    axes added: see the module docstring); "mean_with_sample_weight" divides by the sum of the weights over the valid
    entries, "sum_over_batch_size" by the count of valid entries.

    ``dtype``: as in Keras, ``y_pred`` is converted to it on entry. float16 and bfloat16 inputs are then computed in
    float32, and the loss comes out in float32 on every backend (TensorFlow, JAX and torch alike; checked in
    tests/keras), for ``dtype="bfloat16"`` or ``"float16"`` as under a ``mixed_*`` policy. Keras' own losses return
    their ``dtype`` instead (bfloat16 for ``dtype="bfloat16"``)."""

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

    def __repr__(self):
        """The class, the mode and the settings that differ from their defaults: ``FocalLoss('binary', gamma=1.0)``."""
        defaults = {k: p.default for k, p in inspect.signature(type(self).__init__).parameters.items()}
        parts = [repr(self.mode)]
        for key, value in list(self.options.items()) + [("reduction", self.reduction)]:
            if key not in defaults or value != defaults[key]:
                parts.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _layout(values, spatial, axis, channels):
    """Elementwise values (B, S[, C]) back to the input's layout."""
    shape = (-1,) + tuple(spatial) + ((channels,) if channels else ())
    out = ops.reshape(values, shape)
    if channels and axis == 1 and len(shape) > 2:
        out = ops.moveaxis(out, -1, 1)
    return out


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


def _inputs(y_true, y_pred, mode, ignore_class, axis, **vectors):
    """:func:`_core.prepare`, the per-class vectors' lengths, the ``ignore_class`` rules (refused with soft targets
    in "multiclass", a value an integer ``y_true`` can hold), and ``y_pred`` set to 0 at ignored entries
    (:func:`_core.select_valid`: NaN or inf there add nothing to the loss nor to its gradient)."""
    y_true = ops.convert_to_tensor(y_true)
    _check_ignore_fits(ignore_class, y_true)
    x, target, index, spatial = _core.prepare(y_true, y_pred, mode, axis)
    _check_lengths(x.shape[-1], **vectors)
    if mode == "multiclass" and not index and ignore_class is not None:
        raise ValueError("`ignore_class` needs class-index targets in mode='multiclass'; got class probabilities")
    return _core.select_valid(x, target, index, ignore_class), target, index, spatial


def _pixel_map(y_pred, values, norm, mode, spatial, axis):
    """An elementwise map (B, S[, C]) and the weights of its mean, back in the input's layout."""
    binary_flat = mode == "binary" and tuple(ops.shape(y_pred))[-1:] != (1,)
    keep_c = values.shape[-1] if mode != "multiclass" and not binary_flat else None
    return _layout(values, spatial, axis, keep_c), _layout(norm, spatial, axis, keep_c)


# ---------------------------------------------------------------------------------------------------- focal ----
def _focal(y_true, y_pred, mode, alpha, gamma, weight, ignore_class, label_smoothing, from_logits, axis):
    x, target, index, spatial = _inputs(y_true, y_pred, mode, ignore_class, axis, alpha=alpha, weight=weight)
    values, norm = _core.focal_values(x, target, index, mode, alpha=alpha, gamma=gamma, weight=weight,
                                      ignore=ignore_class, smoothing=label_smoothing, from_logits=from_logits)
    return _pixel_map(y_pred, values, norm, mode, spatial, axis)


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
    x, target, index, _ = _inputs(y_true, y_pred, mode, ignore_class, axis, weight=weight)
    classes = check_classes(classes, x.shape[-1])
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


_KERAS_TVERSKY = """
    Against ``keras.losses.Tversky(alpha=a, beta=b)`` (one pooled score, no smoothing in the numerator: compare
    with "binary" and ``smooth=0``): every Keras release that has it, 3.3.0 up to and including 3.15.1, weighs false
    negatives with ``alpha`` and false positives with ``beta`` (its code swaps ``y_true`` and ``y_pred``, against its
    own docstring), so there it equals ``TverskyLoss(alpha=b, beta=a)``: swap the two. Keras fixed this on its
    master branch (keras-team/keras#23333, merged 2026-07-28), which 3.15.1 (a patch release from the r3.15 branch)
    does not contain; the fix ships in the release after 3.15.1 (3.16.0 on the master branch). From that release
    on, ``alpha`` and ``beta`` mean the same in both: do not swap them. Check ``keras.version()``.
"""


@keras.saving.register_keras_serializable(package="seglosses")
class TverskyLoss(_Overlap):
    __doc__ = ("Tversky loss (Salehi et al. 2017): 1 - (tp + s) / (tp + alpha fp + beta fn + s); ``alpha`` weighs "
               "false positives, ``beta`` false negatives.\n" + _REGION_DOC + _KERAS_TVERSKY)

    def __init__(self, mode, alpha=0.3, beta=0.7, smooth=1e-5, per_image=False, log_loss=False, weight=None,
                 classes=None, ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="tversky_loss", dtype=None):
        alpha, beta = check_alpha_beta(alpha, beta)
        a = _region_args(mode, smooth, per_image, log_loss, weight, classes, ignore_class, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, alpha=alpha, beta=beta, **a)


@keras.saving.register_keras_serializable(package="seglosses")
class FocalTverskyLoss(_Overlap):
    __doc__ = ("Focal-Tversky loss (Abraham & Khan 2019): the Tversky loss of each class raised to ``gamma`` "
               "(default 0.75); ``alpha`` and ``beta`` as in :class:`TverskyLoss` (and the same remark on Keras' "
               "``Tversky``). A NaN target gives a NaN loss (not 0).\n" + _REGION_DOC)

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
        x, target, index, _ = _inputs(y_true, y_pred, self.mode, o["ignore_class"], o["axis"], weight=o["weight"])
        classes = o["classes"] if isinstance(o["classes"], str) else check_classes(o["classes"], x.shape[-1])
        values = _core.lovasz_values(x, target, index, self.mode, classes=classes, per_image=o["per_image"],
                                     ignore=o["ignore_class"], weight=o["weight"], from_logits=o["from_logits"])
        values = values if o["per_image"] else values[0]
        return values, ops.ones_like(values)


# ------------------------------------------------------------------------------------- cross-entropy family ---
def _beta(beta, balanced):
    if isinstance(beta, str):
        if balanced and beta == "auto":
            return beta
        allowed = ", a sequence of numbers (one per class) or 'auto'" if balanced else \
            " or a sequence of numbers (one per class)"
        raise ValueError(f"`beta` must be a number{allowed}; got {beta!r}")
    high = 1.0 if balanced else None
    if isinstance(beta, (list, tuple)) or hasattr(beta, "tolist") and getattr(beta, "ndim", 0) > 0:
        return _per_class("beta", beta, high=high)
    return check_scalar("beta", beta, low=0.0, high=high)


def _pixel_args(mode, ignore_class, label_smoothing, from_logits, axis):
    return dict(mode=check_mode(mode), ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                label_smoothing=check_scalar("label_smoothing", label_smoothing, low=0.0, high=1.0),
                from_logits=check_bool("from_logits", from_logits), axis=_axis(axis))


_PIXEL_DOC = """
    Args:
        mode: "binary", "multiclass" or "multilabel".
        {beta}
        ignore_class: target value left out (class index, or e.g. 255 / -1 in a binary target).
        label_smoothing: e in [0, 1]: the target becomes ``y (1 - e) + e / 2`` (``+ e / C`` for "multiclass").
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, clamped to [1e-7, 1 - 1e-7] (and
            renormalised over the classes for "multiclass").
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss. "sum_over_batch_size" is the mean over valid entries (elements;
            pixels for "multiclass").
"""


@keras.saving.register_keras_serializable(package="seglosses")
class CrossEntropyLoss(SegLoss):
    __doc__ = ("""Cross-entropy: sigmoid binary cross-entropy per element ("binary", "multilabel") or softmax
    cross-entropy per pixel ("multiclass"), as ``seglosses.cross_entropy_loss``: the focal loss at gamma = 0.
""" + _PIXEL_DOC.replace("{beta}", "weight: per-class weights (C values); \"multiclass\" class-index targets: the "
                         "weighted mean, as ``F.cross_entropy``.") + """
    Example:
        >>> import numpy as np
        >>> from seglosses.keras import CrossEntropyLoss
        >>> round(float(CrossEntropyLoss("multiclass")(np.array([[0, 1, 1]]), np.full((1, 3, 2), 0.5))), 6)  # ln 2
        0.693147
""")

    def __init__(self, mode, weight=None, ignore_class=None, label_smoothing=0.0, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="cross_entropy_loss", dtype=None):
        a = _pixel_args(mode, ignore_class, label_smoothing, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype,
                         weight=_per_class("weight", weight), **a)

    def _values(self, y_true, y_pred):
        return _focal(y_true, y_pred, self.mode, alpha=None, gamma=0.0, **self.options)


class _PosNeg(SegLoss):
    _balanced = None

    def _values(self, y_true, y_pred):
        o = self.options
        x, target, index, spatial = _inputs(y_true, y_pred, self.mode, o["ignore_class"], o["axis"], beta=o["beta"])
        values, norm = _survey.posneg_values(x, target, index, self.mode, beta=o["beta"], balanced=self._balanced,
                                             ignore=o["ignore_class"], smoothing=o["label_smoothing"],
                                             from_logits=o["from_logits"])
        return _pixel_map(y_pred, values, norm, self.mode, spatial, o["axis"])


@keras.saving.register_keras_serializable(package="seglosses")
class WeightedCrossEntropyLoss(_PosNeg):
    __doc__ = ("""Weighted cross-entropy (Jadon 2020): ``-(beta y log p + (1 - y) log(1 - p))`` per class channel, as
    ``seglosses.weighted_cross_entropy_loss``; "multiclass" takes it one-vs-rest over the softmax probabilities and
    sums over classes per pixel, with ``log(1 - p)`` from the logits (finite at any logit).
""" + _PIXEL_DOC.replace("{beta}", "beta: weight of the positive term (>= 0): a number or one per class.") + """
    Example:
        >>> import numpy as np
        >>> from seglosses.keras import WeightedCrossEntropyLoss
        >>> loss = WeightedCrossEntropyLoss("binary", beta=3.0)
        >>> round(float(loss(np.array([1.0, 0.0]), np.array([0.5, 0.5]))), 6)  # (3 + 1) ln 2 / 2
        1.386294
""")
    _balanced = False

    def __init__(self, mode, beta=1.0, ignore_class=None, label_smoothing=0.0, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="weighted_cross_entropy_loss", dtype=None):
        a = _pixel_args(mode, ignore_class, label_smoothing, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, beta=_beta(beta, False), **a)


@keras.saving.register_keras_serializable(package="seglosses")
class BalancedCrossEntropyLoss(_PosNeg):
    __doc__ = ("""Balanced cross-entropy (Jadon 2020; Xie & Tu 2015):
    ``-(beta y log p + (1 - beta)(1 - y) log(1 - p))`` per class channel, as ``seglosses.balanced_cross_entropy_loss``
    ("multiclass": one-vs-rest, summed over classes per pixel). ``beta="auto"``: per class, the share of valid
    negatives in the batch's target (HED), a constant for the gradient.
""" + _PIXEL_DOC.replace("{beta}", 'beta: in [0, 1]: a number, one per class, or "auto".') + """
    Example:
        >>> import numpy as np
        >>> from seglosses.keras import BalancedCrossEntropyLoss
        >>> loss = BalancedCrossEntropyLoss("binary", beta=0.75)
        >>> round(float(loss(np.array([1.0, 0.0]), np.array([0.5, 0.5]))), 6)  # ln 2 / 2
        0.346574
""")
    _balanced = True

    def __init__(self, mode, beta=0.5, ignore_class=None, label_smoothing=0.0, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="balanced_cross_entropy_loss", dtype=None):
        a = _pixel_args(mode, ignore_class, label_smoothing, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, beta=_beta(beta, True), **a)


# ------------------------------------------------------------------------------------ survey region losses ---
def _region_rows(values, per_image):
    values = values if per_image else values[0]
    return values, ops.ones_like(values)


_SURVEY_REGION_DOC = _REGION_DOC.replace("        log_loss: ``-log(max(score, 1e-7))`` instead of ``1 - score``.\n",
                                         "")


@keras.saving.register_keras_serializable(package="seglosses")
class SensitivitySpecificityLoss(SegLoss):
    __doc__ = ("""Sensitivity-specificity loss (Brosch et al. 2015), as ``seglosses.sensitivity_specificity_loss``:
    per class ``r sum (g - p)^2 g / (sum g + s) + (1 - r) sum (g - p)^2 (1 - g) / (sum (1 - g) + s)`` (0/0 = 0).
""" + _SURVEY_REGION_DOC.replace("        smooth:", "        r: weight of the sensitivity term in [0, 1] (Brosch's "
                                 "\"sensitivity ratio\", default 0.05).\n        smooth:") + """
    Example:
        >>> import numpy as np
        >>> from seglosses.keras import SensitivitySpecificityLoss
        >>> loss = SensitivitySpecificityLoss("binary", smooth=0.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 6)  # 0.05 / 4 + 0.95 / 4
        0.25
""")

    def __init__(self, mode, r=0.05, smooth=1e-5, per_image=False, weight=None, classes=None, ignore_class=None,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="sensitivity_specificity_loss",
                 dtype=None):
        r = check_scalar("r", r, low=0.0, high=1.0)
        a = _region_args(mode, smooth, per_image, False, weight, classes, ignore_class, from_logits, axis)
        del a["log_loss"]
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, r=r, **a)

    def _values(self, y_true, y_pred):
        o = self.options
        x, target, index, _ = _inputs(y_true, y_pred, self.mode, o["ignore_class"], o["axis"], weight=o["weight"])
        classes = check_classes(o["classes"], x.shape[-1])
        values = _survey.sensitivity_specificity_values(
            x, target, index, self.mode, r=o["r"], smooth=o["smooth"], ignore=o["ignore_class"],
            from_logits=o["from_logits"], per_image=o["per_image"], weight=o["weight"], classes=classes)
        return _region_rows(values, o["per_image"])


@keras.saving.register_keras_serializable(package="seglosses")
class LogCoshDiceLoss(SegLoss):
    __doc__ = ("""Log-cosh Dice loss (Jadon 2020): ``log(cosh(1 - Dice_c))`` per class, Dice_c the soft Dice of
    :class:`DiceLoss`, as ``seglosses.log_cosh_dice_loss``.
""" + _SURVEY_REGION_DOC + """
    Example:
        >>> import numpy as np
        >>> from seglosses.keras import LogCoshDiceLoss
        >>> loss = LogCoshDiceLoss("binary", smooth=0.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 5)  # log cosh(0.5) = 0.1201145
        0.12011
""")

    def __init__(self, mode, smooth=1e-5, per_image=False, weight=None, classes=None, ignore_class=None,
                 from_logits=False, axis=-1, reduction="sum_over_batch_size", name="log_cosh_dice_loss", dtype=None):
        a = _region_args(mode, smooth, per_image, False, weight, classes, ignore_class, from_logits, axis)
        del a["log_loss"]
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, **a)

    def _values(self, y_true, y_pred):
        o = self.options
        (tp, fp, fn, _), classes = _stats(y_true, y_pred, self.mode, o["per_image"], o["weight"], o["classes"],
                                          o["ignore_class"], o["from_logits"], o["axis"])
        values = _survey.log_cosh_dice_values(tp, fp, fn, smooth=o["smooth"], weight=o["weight"], classes=classes)
        return _region_rows(values, o["per_image"])


# ---------------------------------------------------------------------------------------- compound losses ---
_COMPOUND_VALUES = """
    Values: one for the batch, the PyTorch front end's ``reduction="mean"`` (the pixel part's mean over the valid
    entries of the batch, the region part's mean over classes); with ``per_image=True`` one per image whose mean is
    that loss (image i's pixel part is its sum over the batch's mean valid count per image, its own mean when
    nothing is ignored), so ``sample_weight`` weighs images; without it ``sample_weight`` is refused. The Keras
    reduction reduces over images only.
"""


@keras.saving.register_keras_serializable(package="seglosses")
class ExpLogLoss(SegLoss):
    __doc__ = ("""Exponential-logarithmic loss (Wong et al. 2018, arXiv 1809.00076), as ``seglosses.exp_log_loss``:
    ``w_dice mean_c (-ln Dice_c)^gamma_dice + w_cross mean_x w_l (-ln p_l(x))^gamma_cross`` with label weights
    ``w_k = (sum_j f_j / f_k)^0.5``; "binary"/"multilabel": each channel is a two-label problem (p and 1 - p).

    Args:
        mode: "binary", "multiclass" or "multilabel".
        w_dice, w_cross: weights of the two parts (>= 0).
        gamma_dice, gamma_cross: exponents (>= 0).
        smooth: added to the Dice numerator and denominator (1, as the paper).
        class_frequency: label frequencies from the training set: C counts or shares ("multiclass"), the share of
            positives of each channel in [0, 1] ("binary"/"multilabel"); None: the label counts of the batch.
        per_image: Dice statistics and values per image.
        ignore_class, from_logits, axis: as :class:`DiceLoss` (the cross part clamps probabilities before the log).
        reduction, name, dtype: as every Keras loss.
""" + _COMPOUND_VALUES + """
    Example:
        >>> import numpy as np
        >>> from seglosses.keras import ExpLogLoss
        >>> loss = ExpLogLoss("binary", smooth=0.0, gamma_dice=1.0, gamma_cross=1.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 6)  # 0.8 ln 2 + 0.2 sqrt(2) ln 2
        0.750569
""")

    def __init__(self, mode, w_dice=0.8, w_cross=0.2, gamma_dice=0.3, gamma_cross=0.3, smooth=1.0,
                 class_frequency=None, per_image=False, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="exp_log_loss", dtype=None):
        mode = check_mode(mode)
        super().__init__(mode, reduction=reduction, name=name, dtype=dtype,
                         w_dice=check_scalar("w_dice", w_dice, low=0.0),
                         w_cross=check_scalar("w_cross", w_cross, low=0.0),
                         gamma_dice=check_scalar("gamma_dice", gamma_dice, low=0.0),
                         gamma_cross=check_scalar("gamma_cross", gamma_cross, low=0.0),
                         smooth=check_scalar("smooth", smooth, low=0.0),
                         class_frequency=_per_class("class_frequency", class_frequency,
                                                    high=None if mode == "multiclass" else 1.0),
                         per_image=check_bool("per_image", per_image),
                         ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                         from_logits=check_bool("from_logits", from_logits), axis=_axis(axis))

    def _values(self, y_true, y_pred):
        o = dict(self.options)
        ignore = o.pop("ignore_class")
        x, target, index, _ = _inputs(y_true, y_pred, self.mode, ignore, o.pop("axis"),
                                      class_frequency=o["class_frequency"])
        values = _survey.exp_log_values(x, target, index, self.mode, ignore=ignore, **o)
        return values, ops.ones_like(values)


@keras.saving.register_keras_serializable(package="seglosses")
class ComboLoss(SegLoss):
    r"""Combo loss (Taghanaki et al. 2019, arXiv 1805.02798), as ``seglosses.combo_loss``:
    ``alpha BalancedCE(beta) + (1 - alpha)(1 - Dice)``, the mean of :class:`BalancedCrossEntropyLoss` over the valid
    entries plus the batch Dice loss of :class:`DiceLoss` (mean over classes).

    Args:
        mode: "binary", "multiclass" or "multilabel".
        alpha: weight of the cross-entropy part in [0, 1].
        beta: weight of the positive term of the cross-entropy in [0, 1], one per class, or "auto".
        smooth: added to the Dice numerator and denominator (default 1).
        ignore_class, from_logits, axis: as :class:`DiceLoss`.
        reduction, name, dtype: as every Keras loss.

    Values: one for the batch, the PyTorch front end's ``reduction="mean"``; ``sample_weight`` is refused (the Dice
    part pools the statistics over the batch).

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import ComboLoss
        >>> loss = ComboLoss("binary", smooth=0.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 6)  # 0.5 ln 2 / 2 + 0.5 / 2
        0.423287
    """

    def __init__(self, mode, alpha=0.5, beta=0.5, smooth=1.0, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="combo_loss", dtype=None):
        super().__init__(check_mode(mode), reduction=reduction, name=name, dtype=dtype,
                         alpha=check_scalar("alpha", alpha, low=0.0, high=1.0), beta=_beta(beta, True),
                         smooth=check_scalar("smooth", smooth, low=0.0),
                         ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                         from_logits=check_bool("from_logits", from_logits), axis=_axis(axis))

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("`sample_weight` is refused by ComboLoss: its Dice part pools the statistics over the "
                             "batch, so a per-image weight has no meaning")
        return super().__call__(y_true, y_pred)

    def _values(self, y_true, y_pred):
        o = self.options
        x, target, index, _ = _inputs(y_true, y_pred, self.mode, o["ignore_class"], o["axis"], beta=o["beta"])
        ce, valid = _survey.posneg_values(x, target, index, self.mode, beta=o["beta"], balanced=True,
                                          ignore=o["ignore_class"], smoothing=0.0, from_logits=o["from_logits"])
        tp, fp, fn, _ = _core.region_stats(x, target, index, self.mode, ignore=o["ignore_class"],
                                           from_logits=o["from_logits"], per_image=False)
        dice = _core.region_values(tp, fp, fn, _core.dice_score, smooth=o["smooth"], log_loss=False, power=None,
                                   weight=None, classes=None)
        values = _survey.compound(dice, 1 - o["alpha"], ce, valid, o["alpha"], per_image=False)
        return values, ops.ones_like(values)


@keras.saving.register_keras_serializable(package="seglosses")
class UnifiedFocalLoss(SegLoss):
    __doc__ = ("""Unified Focal loss (Yeung et al. 2022, arXiv 2102.04525), as ``seglosses.unified_focal_loss``:
    ``lam L_FT + (1 - lam) L_F``, a focal part and a focal-Tversky part sharing delta and gamma; the background is
    suppressed and, in the asymmetric form (default), the foreground left unmodulated. "multiclass": class
    ``background`` is the background, every other class foreground; "binary"/"multilabel": each channel is a
    background (1 - p) / foreground (p) pair.

    Args:
        mode: "binary", "multiclass" or "multilabel".
        lam: weight of the focal-Tversky part in [0, 1].
        delta: weight of the foreground (focal part) and of false negatives (Tversky part), in [0, 1].
        gamma: in [0, 1]: the focal exponent, and 1 - gamma the focal-Tversky exponent.
        asymmetric: the asymmetric form (the paper's recommendation); False: the symmetric form.
        background: the background class index for "multiclass".
        smooth: s of the Tversky index (1e-7, the reference code's epsilon).
        per_image: Tversky statistics and values per image (as the reference code).
        ignore_class, from_logits, axis: as :class:`DiceLoss` (the focal part clamps probabilities before the log).
        reduction, name, dtype: as every Keras loss.
""" + _COMPOUND_VALUES + """
    Example:
        >>> import numpy as np
        >>> from seglosses.keras import UnifiedFocalLoss
        >>> loss = UnifiedFocalLoss("binary", gamma=0.0, smooth=0.0)
        >>> round(float(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))), 6)  # 0.5 ln 2 / 2 + 0.5 / 2
        0.423287
""")

    def __init__(self, mode, lam=0.5, delta=0.6, gamma=0.5, asymmetric=True, background=0, smooth=1e-7,
                 per_image=False, ignore_class=None, from_logits=False, axis=-1, reduction="sum_over_batch_size",
                 name="unified_focal_loss", dtype=None):
        if isinstance(background, bool) or not isinstance(background, int) or background < 0:
            raise ValueError(f"`background` must be a class index (an int >= 0); got {background!r}")
        super().__init__(check_mode(mode), reduction=reduction, name=name, dtype=dtype,
                         lam=check_scalar("lam", lam, low=0.0, high=1.0),
                         delta=check_scalar("delta", delta, low=0.0, high=1.0),
                         gamma=check_scalar("gamma", gamma, low=0.0, high=1.0),
                         asymmetric=check_bool("asymmetric", asymmetric), background=background,
                         smooth=check_scalar("smooth", smooth, low=0.0), per_image=check_bool("per_image", per_image),
                         ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                         from_logits=check_bool("from_logits", from_logits), axis=_axis(axis))

    def _values(self, y_true, y_pred):
        o = dict(self.options)
        ignore = o.pop("ignore_class")
        x, target, index, _ = _inputs(y_true, y_pred, self.mode, ignore, o.pop("axis"))
        c = x.shape[-1]
        if self.mode == "multiclass" and o["background"] >= c:
            raise ValueError(f"`background` must be a class index in [0, {c}); got {o['background']}")
        values = _survey.unified_focal_values(x, target, index, self.mode, ignore=ignore, **o)
        return values, ops.ones_like(values)


# ------------------------------------------------------------------------------------- distance-based losses ---
def _spacing(spacing):
    """None, one positive number, or 1 to 3 of them (one per spatial axis: the count is checked at call time)."""
    if spacing is None:
        return None
    if isinstance(spacing, (list, tuple)) or hasattr(spacing, "tolist") and getattr(spacing, "ndim", 0) > 0:
        values = list(spacing.tolist() if hasattr(spacing, "tolist") else spacing)
        if not 1 <= len(values) <= 3:
            raise ValueError(f"`spacing` must be a number or one value per spatial axis (1 to 3); got {spacing!r}")
        values = [check_scalar(f"spacing[{i}]", v, low=0.0, low_open=True) for i, v in enumerate(values)]
    else:
        values = check_scalar("spacing", spacing, low=0.0, low_open=True)  # finite: check_scalar refuses inf
    return values


def _distance_args(mode, classes, spacing, ignore_class, from_logits, axis):
    if classes is not None:
        check_classes(classes, 1 << 30)  # type and uniqueness now; the range once C is known
        classes = [int(k) for k in ([classes] if isinstance(classes, int) else classes)]
    return dict(mode=check_mode(mode), classes=classes, spacing=_spacing(spacing),
                ignore_class=check_ignore_index(ignore_class, "ignore_class"),
                from_logits=check_bool("from_logits", from_logits), axis=_axis(axis))


class _Distance(SegLoss):
    """Shared call of the distance-based losses: ``_values(y_true, y_pred, maps=None)``."""

    _fn = None
    _maps_name = None

    def _values(self, y_true, y_pred, maps=None):
        o = dict(self.options)
        ignore, axis, spacing, classes = o.pop("ignore_class"), o.pop("axis"), o.pop("spacing"), o.pop("classes")
        y_pred = ops.convert_to_tensor(y_pred)
        pshape = tuple(y_pred.shape)
        first = axis == 1 and len(pshape) > 2
        if self.mode == "binary" and first and pshape[1] != 1:
            raise ValueError(f"`y_pred` must have shape (N, 1, *spatial) for mode='binary' with axis=1; got {pshape}")
        x, target, index, spatial = _inputs(y_true, y_pred, self.mode, ignore, axis)
        nd = len(spatial)
        if not 1 <= nd <= 3:
            raise ValueError(f"`y_pred` must have 1 to 3 spatial axes between the batch and class axes for a "
                             f"distance-based loss; got shape {pshape} for mode={self.mode!r}")
        if any(d is None for d in spatial):
            raise ValueError(f"distance-based losses need static spatial sizes; got `y_pred` of shape {pshape}")
        if isinstance(spacing, list) and len(spacing) != nd:
            raise ValueError(f"`spacing` must be a number or one value per spatial axis ({nd}); got {spacing!r}")
        spacing = None if spacing is None else (spacing if isinstance(spacing, list) else [spacing] * nd)
        c = x.shape[-1]
        classes = check_classes(classes, c)
        if maps is not None:
            maps = ops.convert_to_tensor(maps)
            if not _core._same(tuple(maps.shape), pshape):
                raise ValueError(f"`{self._maps_name}` must have the shape of `y_pred` {pshape} (its layout, one map "
                                 f"per class); got {tuple(maps.shape)}")
            if first:
                maps = ops.moveaxis(maps, 1, -1)
            maps = ops.reshape(maps, (-1, math.prod(spatial), c))
            o[self._maps_name] = maps
        values, norm = type(self)._fn(x, target, index, self.mode, spatial, classes=classes, spacing=spacing,
                                      ignore=ignore, **o)
        k = None if self.mode == "binary" and not first and pshape[-1:] != (1,) else values.shape[-1]
        return _layout(values, spatial, axis, k), _layout(norm, spatial, axis, k)


_DISTANCE_DOC = """
    Args:
        mode: "binary", "multiclass" or "multilabel".{alpha}
        classes: class indices to keep (Kervadec: the foreground classes); None keeps all.
        spacing: element size along each spatial axis (a number, or one per axis in the order of ``y_pred``'s
            spatial axes), for anisotropic volumes; None: unit.
        ignore_class: target value whose pixels count nowhere: no loss, zero gradient, never a nearest point.
        from_logits: False (Keras' default): ``y_pred`` holds probabilities, used as given.
        axis: class axis, -1 (channels_last) or 1 (channels_first).
        reduction, name, dtype: as every Keras loss. "sum_over_batch_size" is the mean over the valid (pixel, kept
            class) pairs, the PyTorch front end's ``reduction="mean"``.

    Inputs: ``y_pred`` ``(N, *spatial, C)`` with 1 to 3 spatial axes of static size (``(N, C, *spatial)`` with
    ``axis=1``; "binary" channels-last also ``(N, *spatial)``); ``y_true`` as for :class:`DiceLoss`.

    Values: the elementwise map ``(N, *spatial, K)`` of the kept classes (``y_pred``'s layout; ``(N, *spatial)``
    for a "binary" ``y_pred`` without channel axis), 0 at ignored pixels; the mean is over the valid pairs, so
    ``sample_weight`` weighs images (shape ``(N,)`` or ``(N, 1)``) or pixels, as for :class:`FocalLoss`. A NaN in a
    valid target element gives a NaN loss (the mask ``g > 0.5`` alone would count it as outside).

    Distance maps: computed in the loss at every call, exactly (SciPy's ``distance_transform_edt`` in float32), by
    the separable transform of ``seglosses.keras._distance`` in ``keras.ops`` (any backend, inside ``jit`` /
    ``tf.function``, no gradient). Its brute-force form costs O(n) per pixel and spatial axis of length n (a 64^3
    volume: ~64x a pass over it), with a temporary of at most 2^22 elements per image, or the image's size times
    2C (4C for the Hausdorff loss) when that is larger. A ``keras.losses.Loss`` is called with ``(y_true, y_pred,
    sample_weight)`` only, so the class (in ``compile``) takes no precomputed maps; the function form does:
    :func:`{function}` ``(..., {maps}=maps)``, maps in ``y_pred``'s layout and shape, e.g. for channels-last
    inputs ``np.moveaxis(seglosses.distance_maps(t, mode, num_classes=C, batched=True, kind="{kind}"), 1, -1)``
    (the PyTorch package's builder, which takes NumPy arrays; it counts ignored pixels as outside every mask, where
    the loss's own maps leave them out).
"""


@keras.saving.register_keras_serializable(package="seglosses")
class BoundaryLoss(_Distance):
    __doc__ = (r"""Boundary loss (Kervadec et al. 2019, arXiv 1812.07032), as ``seglosses.boundary_loss``: the
    probabilities integrated against the signed distance map of the target,
    ``L = mean over valid pixels x and kept classes c of phi_c(x) p_c(x)``, phi_c(x) the distance to the nearest
    valid pixel of the mask M_c = (g_c > 0.5) outside it and -(distance to the nearest valid pixel outside - 1)
    inside it (0 on the inner boundary), in ``spacing`` units; 0 for a slice (image, class) whose valid pixels are
    all inside or all outside M_c. Negative for a good prediction: add it to a region loss
    (``DiceLoss(...) + alpha * BoundaryLoss(...)``, alpha raised during training).
""" + _DISTANCE_DOC.format(alpha="", function="boundary_loss", maps="dist_maps", kind="signed") + """
    Example:
        >>> import numpy as np
        >>> from seglosses.keras import BoundaryLoss
        >>> y_true = np.array([[0.0, 1.0, 1.0, 1.0, 0.0]])      # phi = [1, 0, -1, 0, 1]
        >>> round(float(BoundaryLoss("binary")(y_true, np.full((1, 5), 0.5))), 6)  # (1 + 0 - 1 + 0 + 1) / 2 / 5
        0.1

    References:
        Kervadec, Bouchtiba, Desrosiers, Granger, Dolz, Ben Ayed. Boundary loss for highly unbalanced
        segmentation. MIDL 2019. arXiv 1812.07032.
""")
    _fn = staticmethod(_boundary.boundary_values)
    _maps_name = "dist_maps"

    def __init__(self, mode, classes=None, spacing=None, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="boundary_loss", dtype=None):
        a = _distance_args(mode, classes, spacing, ignore_class, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, **a)


@keras.saving.register_keras_serializable(package="seglosses")
class HausdorffDTLoss(_Distance):
    __doc__ = (r"""Hausdorff distance-transform loss (Karimi & Salcudean 2019, arXiv 1904.10030), as
    ``seglosses.hausdorff_dt_loss``: squared errors weighted by the distances to the target's and the prediction's
    boundaries, ``L = mean over valid pixels x and kept classes c of (p_c - g_c)^2 (d_G^alpha + d_P^alpha)``.
    d_G is the unsigned distance to the boundary of the target mask g_c > 0.5 (inside: to the nearest valid outside
    pixel; outside: to the nearest valid inside pixel), d_P the same for the predicted mask p_c > 0.5 (valid pixels
    only), computed from the detached probabilities at every call: no gradient flows through either. A mask with
    no boundary (empty or full) has d = 0.
""" + _DISTANCE_DOC.format(alpha="\n        alpha: the exponent (2 in the paper), >= 0.", function="hausdorff_dt_loss",
                           maps="target_dist", kind="unsigned") + """
    Example:
        >>> import numpy as np
        >>> from seglosses.keras import HausdorffDTLoss
        >>> y_true = np.array([[0.0, 1.0, 1.0, 1.0, 0.0]])      # d_G = [1, 1, 2, 1, 1]; p = 1/2: d_P = 0
        >>> round(float(HausdorffDTLoss("binary")(y_true, np.full((1, 5), 0.5))), 6)  # 0.25 (1 + 1 + 4 + 1 + 1) / 5
        0.4

    References:
        Karimi, Salcudean. Reducing the Hausdorff Distance in Medical Image Segmentation with Convolutional Neural
        Networks. IEEE TMI 2019. arXiv 1904.10030.
""")
    _fn = staticmethod(_boundary.hausdorff_values)
    _maps_name = "target_dist"

    def __init__(self, mode, alpha=2.0, classes=None, spacing=None, ignore_class=None, from_logits=False, axis=-1,
                 reduction="sum_over_batch_size", name="hausdorff_dt_loss", dtype=None):
        alpha = check_scalar("alpha", alpha, low=0.0)
        a = _distance_args(mode, classes, spacing, ignore_class, from_logits, axis)
        super().__init__(a.pop("mode"), reduction=reduction, name=name, dtype=dtype, alpha=alpha, **a)


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
cross_entropy_loss = _function(CrossEntropyLoss, "Cross-entropy.")
weighted_cross_entropy_loss = _function(WeightedCrossEntropyLoss, "Weighted cross-entropy.")
balanced_cross_entropy_loss = _function(BalancedCrossEntropyLoss, "Balanced cross-entropy.")
sensitivity_specificity_loss = _function(SensitivitySpecificityLoss, "Sensitivity-specificity loss.")
log_cosh_dice_loss = _function(LogCoshDiceLoss, "Log-cosh Dice loss.")
exp_log_loss = _function(ExpLogLoss, "Exponential-logarithmic loss.")
combo_loss = _function(ComboLoss, "Combo loss.")
unified_focal_loss = _function(UnifiedFocalLoss, "Unified Focal loss.")


def boundary_loss(y_true, y_pred, mode, *, dist_maps=None, **options):
    """Boundary loss, unreduced: the map of :class:`BoundaryLoss` (same options, keywords). ``dist_maps``:
    precomputed signed maps in ``y_pred``'s layout and shape, used instead of the ones computed here."""
    return BoundaryLoss(mode, **options)._values(y_true, y_pred, dist_maps)[0]


def hausdorff_dt_loss(y_true, y_pred, mode, *, target_dist=None, **options):
    """Hausdorff distance-transform loss, unreduced: the map of :class:`HausdorffDTLoss` (same options, keywords).
    ``target_dist``: the precomputed d_G in ``y_pred``'s layout and shape (d_P is always computed here)."""
    return HausdorffDTLoss(mode, **options)._values(y_true, y_pred, target_dist)[0]
