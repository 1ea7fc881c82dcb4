"""Deep supervision for the Keras losses: the twin of :mod:`seglosses.core.supervision`, with ``keras.ops`` only.

The weights and the index arithmetic are the framework-free ones of :mod:`seglosses.core.levels`; the target is
downsampled by index gathers (nearest-exact) and window means (area), so the numbers equal the PyTorch front end's.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from seglosses.core.levels import area_windows, check_level_weights, level_weights, nearest_indices, shared_option


def _spatial_axes(ndim, rank, channels_first):
    """The positions of the ``rank`` spatial axes in a tensor of ``ndim`` axes: right after the batch axis
    (channels-last, or no channel axis), else the last ``rank``."""
    return list(range(ndim - rank, ndim)) if channels_first and ndim > rank + 1 else list(range(1, rank + 1))


def nearest_resize(target, axes, size):
    """``target`` resampled to ``size`` on ``axes`` by nearest-exact index gathers: values copied, never computed."""
    out = target
    for ax, n_out in zip(axes, size):
        n_in = out.shape[ax]
        if n_in != n_out:
            out = ops.take(out, np.asarray(nearest_indices(n_in, n_out), dtype="int32"), axis=ax)
    return out


def _window_mean(x, ax, n_out, valid=None):
    """The window sums of ``x`` along ``ax`` (area windows to ``n_out``) and their entry counts (of ``valid``
    entries, when given), as gathers of each window offset selected by ``where``: an entry outside a window is
    never multiplied, so a NaN stays in its own window."""
    n_in = x.shape[ax]
    windows = area_windows(n_in, n_out)
    longest = max(e - s for s, e in windows)
    total = count = None
    for k in range(longest):
        index = np.asarray([min(s + k, n_in - 1) for s, _ in windows], dtype="int32")
        inside = np.asarray([s + k < e for s, e in windows])
        shape = [1] * len(x.shape)
        shape[ax] = n_out
        inside = ops.reshape(ops.convert_to_tensor(inside), shape)
        xk = ops.take(x, index, axis=ax)
        keep = inside if valid is None else ops.logical_and(inside, ops.take(valid, index, axis=ax))
        part = ops.where(keep, xk, ops.zeros_like(xk))
        ones = ops.cast(keep, x.dtype) * ops.ones_like(xk)
        total = part if total is None else total + part
        count = ones if count is None else count + ones
    return total, count


def area_resize(values, axes, size, ignore=None):
    """``values`` averaged to ``size`` on ``axes`` by area (adaptive average) pooling in float32 at least; with
    ``ignore``, over the entries that are not ``ignore``, an output with no valid entry set to ``ignore``. An axis of
    size 1 stays 1."""
    dtype = keras.backend.standardize_dtype(values.dtype)
    x = values if dtype in ("float32", "float64") else ops.cast(values, "float32")
    valid = None if ignore is None else ops.not_equal(x, ignore)
    total, count = x, None
    # separable: the mean over a box is the mean over each axis in turn, sums and counts both
    for ax, n_out in zip(axes, size):
        n_in = total.shape[ax]
        if n_in in (1, n_out):
            continue
        if count is None:
            total, count = _window_mean(total, ax, n_out, valid)
        else:
            total, _ = _window_mean(total, ax, n_out)
            count, _ = _window_mean(count, ax, n_out)
    if count is None:
        return values
    some = ops.greater(count, 0)
    out = total / ops.where(some, count, ops.ones_like(count))
    if ignore is not None:
        out = ops.where(some, out, ops.full_like(out, float(ignore)))
    return ops.cast(out, dtype)


@keras.saving.register_keras_serializable(package="seglosses")
class DeepSupervision(keras.losses.Loss):
    r"""Deep supervision: ``loss`` applied to each of a model's outputs, ``y_true`` downsampled to each output.

    :math:`L = \sum_i w_i \, \mathrm{loss}(\downarrow_i y_{true}, y_{pred,i})`, the Keras twin of
    :class:`seglosses.DeepSupervision` with the same weights and downsampling rules (docs/semantics.md, "Deep
    supervision"): integer or bool ``y_true`` by nearest-exact (index gathers: ignore labels stay exact),
    floating-point ``y_true`` by area pooling, over the entries that are not the loss's ``ignore_class`` (a coarse
    entry with none is set to it). Levels of weight 0 are not computed.

    Each level's loss reduces by its own ``reduction``; the weighted sum has none of its own (as a
    :class:`~seglosses.keras.WeightedSum`). A per-pixel ``sample_weight`` (the target's spatial axes) is area-pooled
    to each level; a per-image one goes to every level as given.

    Use: ``model.compile(loss=...)`` pairs one loss with each output, so it cannot give one ``y_true`` to a list of
    outputs; call it in the model's ``compute_loss`` (works on every backend; see docs/semantics.md)::

        class Net(keras.Model):
            def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
                return deep(y, y_pred, sample_weight=sample_weight)

    Args:
        loss: a Keras loss (a seglosses loss or :class:`~seglosses.keras.WeightedSum`; any ``keras.losses.Loss``).
        weights: ``"nnunet"`` (default), ``"monai-exp"``, ``"uniform"`` or one number per output (finite, >= 0, not
            all 0), as in :class:`seglosses.DeepSupervision`.
        name: the loss's name.

    Call arguments:
        y_true: the full-resolution target, in the loss's layout (``(N, *spatial)``, ``(N, *spatial, C)``; axis=1:
            ``(N, C, *spatial)``).
        y_pred: a list or tuple of outputs, highest resolution first, ``(N, *spatial_i, C)`` (axis=1:
            ``(N, C, *spatial_i)``) with 1 to 3 spatial axes, ``y_pred[0]`` at the target's resolution; a single
            tensor is one level.
        sample_weight: None, per image, or per pixel (pooled).

    Example:
        >>> import numpy as np
        >>> from seglosses.keras import DeepSupervision, DiceLoss
        >>> deep = DeepSupervision(DiceLoss("multiclass", from_logits=True), weights="uniform")
        >>> y_true = np.zeros((1, 4, 4), dtype="int32")
        >>> y_pred = [np.zeros((1, 4, 4, 2)), np.zeros((1, 2, 2, 2))]
        >>> round(float(deep(y_true, y_pred)), 4)  # p = 0.5: Dice of class 0 is 2/3, of class 1 is 0; mean 2/3
        0.6667
    """

    def __init__(self, loss, weights="nnunet", name="deep_supervision"):
        if not isinstance(loss, keras.losses.Loss) or isinstance(loss, DeepSupervision):
            raise TypeError(f"`loss` must be a Keras loss (not a DeepSupervision); got {type(loss).__name__}")
        super().__init__(name=name)
        self.loss = loss
        self.weights = check_level_weights(weights)
        self.ignore_class = shared_option(loss, ("ignore_class",), "downsamples one target with one ignore value")
        self.channels_first = shared_option(loss, ("axis",), "reads one layout") == 1

    def level_weights(self, levels):
        """The weight of each of ``levels`` outputs (:func:`seglosses.core.levels.level_weights`)."""
        return level_weights(self.weights, levels)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            single = not isinstance(y_pred, (list, tuple))
            outputs = [ops.convert_to_tensor(p) for p in ([y_pred] if single else y_pred)]
            y_true = ops.convert_to_tensor(y_true)
            sizes, axes = self._check(outputs, y_true)
            full = sizes[0]
            sw = None if sample_weight is None else ops.convert_to_tensor(sample_weight)
            sw_axes = None if sw is None else self._weight_axes(sw, len(full), full)
            total = None
            for w, out, size in zip(self.level_weights(len(outputs)), outputs, sizes):
                if w == 0:
                    continue
                target = y_true
                if size != full:
                    target = (area_resize(y_true, axes, size, self.ignore_class)
                              if "float" in keras.backend.standardize_dtype(y_true.dtype)
                              else nearest_resize(y_true, axes, size))
                level_sw = sw if sw_axes is None or size == full else area_resize(
                    ops.cast(sw, "float32") if "float" not in keras.backend.standardize_dtype(sw.dtype) else sw,
                    sw_axes, size)
                part = self.loss(target, out, sample_weight=level_sw) * w
                total = part if total is None else total + part
            return total

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def _check(self, outputs, y_true):
        """The spatial size of each output and the spatial axes of ``y_true``; ValueErrors as in PyTorch."""
        if not outputs:
            raise TypeError("`y_pred` must be a non-empty list or tuple of outputs, highest resolution first")
        first = outputs[0]
        ndim = len(first.shape)
        if not 3 <= ndim <= 5:
            raise ValueError(f"`y_pred[0]` must have a batch axis, a class axis and 1 to 3 spatial axes; got shape "
                             f"{tuple(first.shape)}")
        rank = ndim - 2
        pred_axes = list(range(2, ndim)) if self.channels_first else list(range(1, ndim - 1))
        c_axis = 1 if self.channels_first else -1
        full = tuple(first.shape[a] for a in pred_axes)
        if None in full:
            raise ValueError(f"`y_pred[0]` must have a static spatial shape; got {tuple(first.shape)}")
        axes = _spatial_axes(len(y_true.shape), rank, self.channels_first)
        if len(y_true.shape) < rank + 1 or tuple(y_true.shape[a] for a in axes) != full:
            raise ValueError(f"`y_true` must be at the resolution of `y_pred[0]`, spatial shape {full}; got shape "
                             f"{tuple(y_true.shape)} (outputs go highest resolution first)")
        sizes = [full]
        for i, out in enumerate(outputs[1:], 1):
            shape = tuple(out.shape)
            if len(shape) != ndim or shape[c_axis] != first.shape[c_axis] or (
                    None not in (shape[0], first.shape[0]) and shape[0] != first.shape[0]):
                raise ValueError(f"`y_pred[{i}]` must have the batch size, classes and rank of `y_pred[0]` "
                                 f"{tuple(first.shape)}; got {shape}")
            size = tuple(shape[a] for a in pred_axes)
            if None in size:
                raise ValueError(f"`y_pred[{i}]` must have a static spatial shape; got {shape}")
            if any(a > b for a, b in zip(size, full)):
                raise ValueError(f"`y_pred[{i}]` has spatial shape {size}, larger than the target's {full} on some "
                                 "axis; the target is only downsampled")
            sizes.append(size)
        return sizes, axes

    def _weight_axes(self, sw, rank, full):
        """The spatial axes of a per-pixel ``sample_weight`` (pooled at each level), or None (per image: as given)."""
        shape = tuple(sw.shape)
        if len(shape) < rank + 1:
            return None
        axes = _spatial_axes(len(shape), rank, self.channels_first)
        dims = tuple(shape[a] for a in axes)
        if all(d == 1 for d in dims):
            return None
        if any(d not in (1, f) for d, f in zip(dims, full)):
            raise ValueError(f"`sample_weight` must be per image or have the target's spatial shape {full} (or 1 on "
                             f"an axis); got shape {shape}")
        return axes

    def __repr__(self):
        weights = self.weights if isinstance(self.weights, str) else list(self.weights)
        return f"DeepSupervision({self.loss!r}, weights={weights!r})"

    def get_config(self):
        """``{"name": ..., "loss": <serialized loss>, "weights": ...}``, JSON-safe."""
        return {"name": self.name, "loss": keras.saving.serialize_keras_object(self.loss),
                "weights": self.weights if isinstance(self.weights, str) else list(self.weights)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        loss = config.pop("loss", None)
        if loss is None:
            raise ValueError("`config['loss']` is required: the serialized loss of each level")
        if not isinstance(loss, keras.losses.Loss):
            loss = keras.saving.deserialize_keras_object(loss)
        return cls(loss, **config)
