"""Keras front end, the rules on inputs and options: sample_weight shapes (Keras' squeeze/expand rule), finite
options, ignore_class against an integer y_true's dtype, integer one-hot targets, non-finite y_pred at ignored
entries, NaN targets, the output dtype under dtype="bfloat16", and the Tversky alpha/beta against Keras' own loss."""

import keras
import numpy as np
import pytest

import seglosses.keras as K
from _kutil import keras_class, keras_inputs, to_numpy, value_and_grad
from cases import make_case
from seglosses._registry import LOSSES
from test_behaviour import ALL, MODES, _data

DISTANCE = [keras_class(loss.name) for loss in LOSSES if loss.family == "boundary"]
#: Every loss class of seglosses._registry.
EVERY = ALL + DISTANCE
#: Losses with one value per image under per_image=True (sample_weight then weighs images).
PER_IMAGE = [K.DiceLoss, K.JaccardLoss, K.TverskyLoss, K.FocalTverskyLoss, K.GeneralizedDiceLoss, K.LovaszLoss,
             K.SensitivitySpecificityLoss, K.LogCoshDiceLoss, K.ExpLogLoss, K.UnifiedFocalLoss, K.BoundaryDoULoss,
             K.TopKCrossEntropyLoss, K.OHEMCrossEntropyLoss, K.MCCLoss, K.GeneralizedWassersteinDiceLoss,
             K.ClDiceLoss, K.SkeletonRecallLoss]
#: Losses with an elementwise map (sample_weight weighs images or pixels).
ELEMENTWISE = [K.FocalLoss, K.CrossEntropyLoss, K.WeightedCrossEntropyLoss, K.BalancedCrossEntropyLoss,
               K.PolyLoss] + DISTANCE + [K.DistancePenalizedCrossEntropyLoss, K.ShapeAwareLoss, K.SSIMLoss]
REDUCTIONS = ("sum_over_batch_size", "sum", "mean_with_sample_weight")


def _keras_rule(values, valid, weights, reduction):
    """The reduction by hand: ``weights`` already in the values' shape (broadcastable), ``valid`` the entries that
    count in the mean (seglosses' "sum_over_batch_size" is the mean over valid entries)."""
    weights = np.broadcast_to(weights, values.shape)
    total = (values * weights).sum()
    if reduction == "sum":
        return total
    return total / ((valid * weights).sum() if reduction == "mean_with_sample_weight" else valid.sum())


# ------------------------------------------------------------------------------------------- sample_weight ---
def test_every_loss_has_its_kind_of_values():
    """Each loss of the registry is in PER_IMAGE, in ELEMENTWISE, or gives one value per batch only (ComboLoss; the
    correlation SSIM loss, whose map e f CE is normalised by sum f, not by the valid entries)."""
    kinds = PER_IMAGE + ELEMENTWISE + [K.ComboLoss, K.CorrelationSSIMLoss]
    assert sorted(c.__name__ for c in kinds) == sorted(c.__name__ for c in EVERY)


def test_sample_weight_n_by_1_hand_numbers():
    """Two images, binary, smooth 0: Dice losses 1/2 (tp = fp = fn = 1/2) and 1/3 (tp = 1, fn = 1), weights 1 and 3
    given as (2, 1): Keras squeezes them to (2,); an outer product would give (1/2 + 1/3)(1 + 3) / 4 = 5/6."""
    y_true, y_pred = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.5, 0.5], [1.0, 0.0]])
    w = np.array([[1.0], [3.0]])
    for reduction, expected in (("sum_over_batch_size", 0.75), ("sum", 1.5), ("mean_with_sample_weight", 0.375)):
        loss = K.DiceLoss("binary", per_image=True, smooth=0.0, reduction=reduction)
        assert float(loss(y_true, y_pred, sample_weight=w)) == pytest.approx(expected, rel=1e-6), reduction
    none = to_numpy(K.DiceLoss("binary", per_image=True, smooth=0.0, reduction="none")(y_true, y_pred,
                                                                                     sample_weight=w))
    np.testing.assert_allclose(none, [0.5, 1.0], rtol=1e-6)  # the values' shape (N,), each weighted


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sample_weight_n_by_1_equals_keras_categorical_focal(reduction):
    """Keras' own CategoricalFocalCrossentropy (alpha=1: no class weighting) reduces a (N,) loss with weights
    (N, 1) by its squeeze/expand rule; the softmax focal loss on (N, C) predictions is the same per-sample loss."""
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1.5, (5, 4)).astype(np.float32)
    t = rng.integers(0, 4, 5)
    one_hot = np.eye(4, dtype=np.float32)[t]
    w = np.array([[1.0], [3.0], [0.5], [0.0], [2.0]], np.float32)
    ref = keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=2.0, from_logits=True, reduction=reduction)
    ours = K.FocalLoss("multiclass", gamma=2.0, from_logits=True, reduction=reduction)
    expected = float(ref(one_hot, x, sample_weight=w))
    for y_true in (t.astype(np.int32), one_hot):
        for sw in (w, w[:, 0]):
            assert float(ours(y_true, x, sample_weight=sw)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("cls", PER_IMAGE)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sample_weight_shapes_on_per_image_values(cls, reduction):
    x, t = _data("multiclass", shape=(3, 4, 5))
    values = to_numpy(cls("multiclass", per_image=True, from_logits=True, ignore_class=255, reduction="none")(t, x))
    assert values.shape == (3,)
    w = np.array([2.0, 0.5, 1.5], np.float32)
    expected = _keras_rule(values, np.ones(3), w, reduction)
    loss = cls("multiclass", per_image=True, from_logits=True, ignore_class=255, reduction=reduction)
    for sw in (w, w[:, None], w[:, None, None]):
        np.testing.assert_allclose(float(loss(t, x, sample_weight=sw)), expected, rtol=1e-5, err_msg=str(sw.shape))


@pytest.mark.parametrize("cls", ELEMENTWISE)
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_sample_weight_shapes_on_elementwise_maps(cls, mode):
    x, t = _data(mode, shape=(2, 6, 5))
    values = to_numpy(cls(mode, from_logits=True, ignore_class=255, reduction="none")(t, x))
    valid = t != 255
    valid = np.broadcast_to(valid if valid.ndim == values.ndim else valid[..., None], values.shape)
    image_w = np.array([2.0, 0.5], np.float32)
    pixel_w = np.random.default_rng(2).random((2, 6, 5)).astype(np.float32)
    for reduction in REDUCTIONS:
        loss = cls(mode, from_logits=True, ignore_class=255, reduction=reduction)
        per_image = _keras_rule(values, valid, image_w.reshape((2,) + (1,) * (values.ndim - 1)), reduction)
        # a per-pixel sample_weight is the loss's pixel_weight: sum(w l) / sum(w over valid entries) for every mean
        per_pixel = _keras_rule(values, valid, pixel_w.reshape((2, 6, 5) + (1,) * (values.ndim - 3)),
                                "sum" if reduction == "sum" else "mean_with_sample_weight")
        for sw, expected in ((image_w, per_image), (image_w[:, None], per_image), (pixel_w, per_pixel),
                             (pixel_w[..., None], per_pixel)):
            np.testing.assert_allclose(float(loss(t, x, sample_weight=sw)), expected, rtol=1e-5,
                                       err_msg=f"{reduction} {sw.shape}")


def test_sample_weight_n_by_1_through_a_weighted_sum():
    x, t = _data("multiclass", ignore=False)
    loss = 0.5 * K.DiceLoss("multiclass", per_image=True, from_logits=True) + K.FocalLoss("multiclass",
                                                                                         from_logits=True)
    w = np.array([1.0, 3.0], np.float32)
    dice = to_numpy(K.dice_loss(t, x, "multiclass", per_image=True, from_logits=True))
    focal = to_numpy(K.focal_loss(t, x, "multiclass", from_logits=True))
    expected = 0.5 * (dice * w).mean() + (focal * w[:, None, None]).mean()
    np.testing.assert_allclose(float(loss(t, x, sample_weight=w[:, None])), expected, rtol=1e-5)


def test_sample_weight_with_extra_axes_raises():
    x, t = _data("multiclass", ignore=False)
    with pytest.raises(ValueError, match="sample_weight"):
        K.DiceLoss("multiclass", per_image=True, from_logits=True)(t, x, sample_weight=np.ones((2, 2)))


# ------------------------------------------------------------------------------------------ option rules ---
INF = float("inf")
INF_OPTIONS = [
    (K.FocalLoss, {"gamma": INF}, "gamma"), (K.FocalLoss, {"alpha": INF}, "alpha"),
    (K.FocalLoss, {"alpha": [1.0, INF, 1.0]}, "alpha"), (K.FocalLoss, {"weight": [1.0, INF, 1.0]}, "weight"),
    (K.DiceLoss, {"smooth": INF}, "smooth"), (K.JaccardLoss, {"smooth": INF}, "smooth"),
    (K.TverskyLoss, {"alpha": INF}, "alpha"), (K.TverskyLoss, {"beta": INF}, "beta"),
    (K.FocalTverskyLoss, {"gamma": INF}, "gamma"), (K.FocalTverskyLoss, {"beta": INF}, "beta"),
    (K.GeneralizedDiceLoss, {"smooth": INF}, "smooth"), (K.LovaszLoss, {"weight": [INF, 1.0, 1.0]}, "weight"),
    (K.CrossEntropyLoss, {"label_smoothing": INF}, "label_smoothing"),
    (K.WeightedCrossEntropyLoss, {"beta": INF}, "beta"), (K.WeightedCrossEntropyLoss, {"beta": [1.0, INF]}, "beta"),
    (K.BalancedCrossEntropyLoss, {"beta": INF}, "beta"),
    (K.SensitivitySpecificityLoss, {"r": INF}, "r"), (K.SensitivitySpecificityLoss, {"smooth": INF}, "smooth"),
    (K.LogCoshDiceLoss, {"smooth": INF}, "smooth"),
    (K.ExpLogLoss, {"w_dice": INF}, "w_dice"), (K.ExpLogLoss, {"w_cross": INF}, "w_cross"),
    (K.ExpLogLoss, {"gamma_dice": INF}, "gamma_dice"), (K.ExpLogLoss, {"gamma_cross": INF}, "gamma_cross"),
    (K.ExpLogLoss, {"smooth": INF}, "smooth"), (K.ExpLogLoss, {"class_frequency": [1.0, INF, 2.0]},
                                                 "class_frequency"),
    (K.ComboLoss, {"alpha": INF}, "alpha"), (K.ComboLoss, {"beta": INF}, "beta"),
    (K.ComboLoss, {"smooth": INF}, "smooth"),
    (K.UnifiedFocalLoss, {"lam": INF}, "lam"), (K.UnifiedFocalLoss, {"delta": INF}, "delta"),
    (K.UnifiedFocalLoss, {"gamma": INF}, "gamma"), (K.UnifiedFocalLoss, {"smooth": INF}, "smooth"),
    (K.BoundaryLoss, {"spacing": INF}, "spacing"), (K.BoundaryLoss, {"spacing": [1.0, INF]}, "spacing"),
    (K.HausdorffDTLoss, {"alpha": INF}, "alpha"), (K.HausdorffDTLoss, {"spacing": [INF, 1.0]}, "spacing"),
]


@pytest.mark.parametrize("cls,opts,name", INF_OPTIONS, ids=[f"{c.__name__}-{n}-{i}" for i, (c, _, n) in
                                                          enumerate(INF_OPTIONS)])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["inf", "-inf"])
def test_infinite_options_raise_naming_the_argument(cls, opts, name, sign):
    opts = {k: ([sign * u for u in v] if isinstance(v, list) else sign * v) for k, v in opts.items()}
    with pytest.raises(ValueError, match=f"`{name}"):
        cls("multiclass", **opts)
    if cls is K.FocalLoss:  # the function form checks its options the same way
        x, t = _data("multiclass", ignore=False)
        with pytest.raises(ValueError, match=f"`{name}"):
            K.focal_loss(t, x, "multiclass", **opts)


@pytest.mark.parametrize("cls", EVERY)
def test_ignore_class_the_target_dtype_cannot_hold_raises(cls):
    x, t = _data("binary", ignore=False)
    with pytest.raises(ValueError, match="ignore_class.*uint8"):
        cls("binary", from_logits=True, ignore_class=-1)(t.astype(np.uint8), x)
    xm, tm = _data("multiclass", ignore=False)
    for dtype, ignore in (("uint8", -1), ("int8", 255), ("bool", 255)):
        with pytest.raises(ValueError, match=f"ignore_class.*{dtype}"):
            cls("multiclass" if dtype != "bool" else "binary", from_logits=True, ignore_class=ignore)(
                (tm if dtype != "bool" else t).astype(dtype), xm if dtype != "bool" else x)
    # values the dtype holds are fine, and float targets take any int
    assert np.isfinite(to_numpy(cls("multiclass", from_logits=True, ignore_class=255)(tm.astype(np.uint8), xm)))
    assert np.isfinite(to_numpy(cls("binary", from_logits=True, ignore_class=-1)(t.astype(np.float32), x)))
    assert np.isfinite(to_numpy(cls("binary", from_logits=True, ignore_class=-1)(t.astype(np.int32), x)))


# ---------------------------------------------------------------------------------- integer one-hot targets ---
@pytest.mark.parametrize("cls", EVERY)
def test_integer_one_hot_targets_are_class_probabilities(cls):
    x, t = _data("multiclass", ignore=False)
    one_hot = np.eye(3)[t]
    loss = cls("multiclass", from_logits=True)
    expected = float(loss(one_hot.astype(np.float32), x))
    assert np.isfinite(expected)
    for dtype in ("uint8", "int32", "int64", "bool"):
        np.testing.assert_allclose(float(loss(one_hot.astype(dtype), x)), expected, rtol=1e-6, err_msg=dtype)
    first = cls("multiclass", from_logits=True, axis=1)(np.moveaxis(one_hot, -1, 1).astype(np.uint8),
                                                         np.moveaxis(x, -1, 1))
    np.testing.assert_allclose(float(first), expected, rtol=1e-5)


# ------------------------------------------------------------------------ non-finite y_pred where ignored ---
def _ignored(mode, t, shape):
    """The ignored entries of ``y_pred`` (every class of an ignored pixel for class indices)."""
    return np.broadcast_to((t == 255)[..., None], shape) if mode == "multiclass" else t == 255


@pytest.mark.parametrize("cls", EVERY)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_non_finite_y_pred_at_ignored_entries_changes_nothing(cls, mode, from_logits):
    x, t = _data(mode, shape=(2, 5, 4))
    if not from_logits:
        x = (np.exp(x) / np.exp(x).sum(-1, keepdims=True) if mode == "multiclass"
             else 1 / (1 + np.exp(-x))).astype(np.float32)
    ignored = _ignored(mode, t, x.shape)
    assert ignored.any() and not ignored.all()
    loss = cls(mode, from_logits=from_logits, ignore_class=255)
    expected, expected_grad = value_and_grad(lambda z: loss(t, z), x)
    assert np.isfinite(expected)
    for bad in (np.nan, np.inf, -np.inf) if from_logits else (np.nan, np.inf):  # p = -inf: as NaN
        value, grad = value_and_grad(lambda z: loss(t, z), np.where(ignored, np.float32(bad), x))
        np.testing.assert_allclose(value, expected, rtol=1e-6, err_msg=str(bad))
        assert np.isfinite(grad).all(), bad
        assert np.all(grad[ignored] == 0), bad
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-8, err_msg=str(bad))


# --------------------------------------------------------------------------------------------- NaN target ---
@pytest.mark.parametrize("cls", EVERY)
@pytest.mark.parametrize("mode", MODES)
def test_nan_in_a_valid_target_element_reaches_the_loss(cls, mode):
    x, t = _data(mode, shape=(2, 5, 4), ignore=False)
    if mode == "multiclass":
        t = np.eye(3, dtype=np.float32)[t]  # class probabilities: a float target that can hold NaN
    t = t.astype(np.float32)
    t[0, 1, 2, 0] = np.nan
    assert np.isnan(float(cls(mode, from_logits=True)(t, x))), (cls.__name__, mode)
    if mode != "multiclass":  # with ignore_class too: NaN is not the ignored value, so the element is valid
        assert np.isnan(float(cls(mode, from_logits=True, ignore_class=255)(t, x))), (cls.__name__, mode)


def test_focal_tversky_nan_target_hand_case():
    """One image, binary: target [NaN, 1], p = [1/2, 1/2]; every Tversky statistic is NaN, so the loss is NaN
    (``where(loss > 0, loss ** gamma, 0)`` used to turn it into 0)."""
    loss = K.FocalTverskyLoss("binary", smooth=0.0)
    assert np.isnan(float(loss(np.array([[np.nan, 1.0]]), np.array([[0.5, 0.5]]))))


# ------------------------------------------------------------------------------------------------- dtype ---
@pytest.mark.parametrize("cls", [K.FocalLoss, K.DiceLoss, K.LovaszLoss, K.ExpLogLoss, K.BoundaryLoss])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_dtype_loss_is_computed_and_returned_in_float32(cls, dtype):
    """As the SegLoss docstring says: y_pred converted to ``dtype`` (Keras' rule), then float32 on every backend."""
    x, t = _data("multiclass")
    loss = cls("multiclass", from_logits=True, ignore_class=255, dtype=dtype)
    value = loss(t, x)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    rounded = to_numpy(keras.ops.cast(keras.ops.cast(x, dtype), "float32"))
    expected = float(cls("multiclass", from_logits=True, ignore_class=255)(t, rounded))
    assert float(value) == pytest.approx(expected, rel=1e-6, abs=1e-7)


# -------------------------------------------------------------------------------- Keras' Tversky alpha/beta ---
def _keras_version():
    return tuple(int("".join(ch for ch in part if ch.isdigit()) or 0) for part in keras.version().split(".")[:3])


def test_tversky_alpha_beta_against_keras_tversky():
    """keras.losses.Tversky up to 3.15.1 weighs false negatives with alpha (documented in TverskyLoss); the fix
    (keras-team/keras#23333) is in the releases after 3.15.1."""
    rng = np.random.default_rng(7)
    y_true = (rng.random((2, 8, 8, 1)) < 0.3).astype(np.float32)
    y_pred = rng.random((2, 8, 8, 1)).astype(np.float32)
    a, b = 0.2, 0.8
    theirs = float(keras.losses.Tversky(alpha=a, beta=b)(y_true, y_pred))
    same = float(K.TverskyLoss("binary", alpha=a, beta=b, smooth=0.0)(y_true, y_pred))
    swapped = float(K.TverskyLoss("binary", alpha=b, beta=a, smooth=0.0)(y_true, y_pred))
    assert abs(same - swapped) > 1e-2  # the test can tell the two apart
    if _keras_version() <= (3, 15, 1):
        assert theirs == pytest.approx(swapped, rel=1e-5)
    else:
        assert theirs == pytest.approx(same, rel=1e-5)


# ------------------------------------------------------------------------------- losses that need spatial axes ---
SPATIAL = [loss for loss in LOSSES if loss.spatial]


@pytest.mark.parametrize("loss", SPATIAL, ids=[loss.name for loss in SPATIAL])
def test_spatial_losses_refuse_bad_axes_classes_and_spacing(loss):
    """The losses that read the image's structure (registry: Loss.spatial) need 1 to 3 spatial axes; their
    ``classes`` and ``spacing`` are checked against the input."""
    from seglosses._registry import options

    cls, opts = keras_class(loss.name), options(loss)
    logits, target = make_case("random", "multiclass", (2, 3, 5, 6), seed=0)
    y_true, y_pred = keras_inputs(logits, target, "multiclass")
    with pytest.raises(ValueError, match=r"`y_pred` must have 1 to 3 spatial axes"):
        cls("multiclass")(y_true[:, 0, 0], y_pred[:, 0, 0])  # (N, C): no spatial axis
    with pytest.raises(ValueError, match=r"`y_pred` must have 1 to 3 spatial axes"):
        cls("binary")(np.zeros((1, 2, 2, 2, 2, 1)), np.zeros((1, 2, 2, 2, 2, 1)))
    if "classes" in opts:
        with pytest.raises(ValueError, match=r"`classes` must hold indices in \[0, 3\)"):
            cls("multiclass", classes=[0, 5])(y_true, y_pred)
    if "spacing" in opts:
        with pytest.raises(ValueError, match=r"`spacing` must be a number or one value per spatial axis \(2\)"):
            cls("multiclass", spacing=[1.0, 2.0, 3.0])(y_true, y_pred)
