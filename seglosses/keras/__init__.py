"""seglosses for Keras 3: the PyTorch front end's losses, with the same numbers, on any Keras backend.

Written with ``keras.ops`` only, so one implementation runs on TensorFlow, JAX and PyTorch. Importing this module
needs Keras, not torch. Keras conventions: ``loss(y_true, y_pred)``, ``from_logits=False`` by default, channels-last
(``axis=-1``; ``axis=1`` for channels_first), ``ignore_class``, Keras reduction names, ``sample_weight``.

Every loss is a lowercase function holding the math and returning the unreduced values, ``dice_loss(y_true, y_pred,
mode, *, ...)``, and a ``keras.losses.Loss`` subclass wrapping it with the same options, keyword-only after ``mode``
(``DiceLoss("multiclass", smooth=1.0)``; registered under the package name "seglosses", so saved models load without
``custom_objects``). The values are:

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

The hard-pixel losses (TopK and OHEM cross-entropy) give one value per image with ``per_image=True`` (the mean over
the image's selected pixels), else one for the batch, as the region losses; an image without valid pixels weighs 0 in
the mean. Poly-1 is elementwise like the focal loss.

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
``-``, ``sum([...])``) is a :class:`WeightedSum`, itself a serializable Keras loss. A coefficient may be a schedule
(``linear``, ``cosine``, ``piecewise``, ``rebalance``, ``constant``), stepped by :class:`ScheduleCallback` in ``fit``.
:class:`DeepSupervision` applies a loss to a list of outputs at decreasing resolutions, the target downsampled to
each.

Definitions: docs/semantics.md. ``mode`` is "binary", "multiclass" or "multilabel" as in the PyTorch front end.

Layout (private modules, one per family of :mod:`seglosses.losses`): ``_focal``, ``_region``, ``_lovasz``,
``_cross_entropy``, ``_compound``, ``_boundary`` (with the distance transforms of ``_distance``), ``_hard_pixel``,
``_confusion``, ``_topology``, ``_structure``, ``_contour``; what they share:
``_base`` (:class:`SegLoss`, the reduction and ``sample_weight`` rule, input handling), ``_ops`` (the shared
``keras.ops`` math), ``_compose`` (:class:`WeightedSum`). The framework-free argument rules are those of the PyTorch
front end (:mod:`seglosses.core.args`, :mod:`seglosses.core.formulas`).
"""

# The public names: each registry row's class and function from its family module (seglosses._registry; a new loss
# needs no line here), the base class and the weighted sum. tests/keras/test_api.py checks that dir() shows these
# and nothing else.
from importlib import import_module as _import_module

from seglosses._registry import LOSSES as _LOSSES
from seglosses.keras._base import SegLoss
from seglosses.core.schedules import Schedule, constant, cosine, linear, piecewise, rebalance
from seglosses.keras._compose import ScheduleCallback, WeightedSum
from seglosses.keras._supervision import DeepSupervision

for _row in _LOSSES:
    _family = _import_module(f"seglosses.keras._{_row.family}")
    globals()[_row.cls], globals()[_row.function] = getattr(_family, _row.cls), getattr(_family, _row.function)
del _row, _family

#: The base class, each loss's class and function in the registry's order (seglosses._registry), the weighted sum,
#: deep supervision, the schedules of its coefficients (seglosses.core.schedules) and the callback that steps them.
__all__ = ["SegLoss", *[name for loss in _LOSSES for name in (loss.cls, loss.function)], "WeightedSum",
           "Schedule", "constant", "linear", "cosine", "piecewise", "rebalance", "ScheduleCallback",
           "DeepSupervision"]
