"""Keras front end: users' numbers, stability, layouts, errors, mixed precision, saving and training."""

import os
import pickle

import keras
import numpy as np
import pytest

import seglosses.keras as K
from _kutil import keras_class, to_numpy, value_and_grad
from seglosses._registry import LOSSES

#: Every loss class of seglosses._registry but the distance-based ones (tests/keras/test_boundary.py, and with these
#: in tests/keras/test_input_rules.py).
ALL = [keras_class(loss.name) for loss in LOSSES if loss.family != "boundary"]
#: Options that take a loss near a power's or a log's edge, tried at saturated logits besides the defaults.
EDGE_OPTIONS = {K.FocalLoss: {"gamma": 0.5}, K.FocalTverskyLoss: {"gamma": 0.5},
                K.BalancedCrossEntropyLoss: {"beta": "auto", "label_smoothing": 0.1},
                K.ExpLogLoss: {"gamma_dice": 0.1, "gamma_cross": 0.1, "smooth": 0.0},
                K.UnifiedFocalLoss: {"gamma": 0.2, "asymmetric": False, "smooth": 0.0}}
#: Non-default settings for the config round trip (per-class vectors where the loss has one).
CONFIG_OPTIONS = {K.WeightedCrossEntropyLoss: {"beta": [1.0, 2.0, 0.5], "label_smoothing": 0.1},
                  K.BalancedCrossEntropyLoss: {"beta": "auto"}, K.SensitivitySpecificityLoss: {"r": 0.3},
                  K.ExpLogLoss: {"class_frequency": [3.0, 1.0, 2.0], "gamma_cross": 0.5, "per_image": True},
                  K.ComboLoss: {"beta": [0.2, 0.5, 0.7], "alpha": 0.3},
                  K.UnifiedFocalLoss: {"background": 2, "asymmetric": False, "per_image": True},
                  K.GeneralizedWassersteinDiceLoss: {"distance_matrix": [[0.0, 1.0, 2.0], [1.0, 0.0, 0.5],
                                                                         [2.0, 0.5, 0.0]], "weighting_mode": "GDL"},
                  K.DistancePenalizedCrossEntropyLoss: {"spacing": [1.0, 2.0]}, K.ShapeAwareLoss: {"spacing": 0.5},
                  K.BoundaryDoULoss: {"per_image": True, "classes": [2, 0]},
                  K.SSIMLoss: {"window_size": 3, "padding": "valid", "weight": [1.0, 2.0, 0.5]},
                  K.CorrelationSSIMLoss: {"beta": 0.2, "weight": [1.0, 2.0, 0.5]}}
#: Settings that take other paths through a compiled training step (batch statistics, per-image values).
FIT_OPTIONS = {K.BalancedCrossEntropyLoss: {"beta": "auto"}, K.SensitivitySpecificityLoss: {"per_image": True},
               K.ClDiceLoss: {"iterations": 2},  # 10 unrolled skeleton steps: XLA's compile alone took ~100 s
               K.ExpLogLoss: {"per_image": True}, K.UnifiedFocalLoss: {"per_image": True}}
MODES = ("binary", "multiclass", "multilabel")


def _data(mode, shape=(2, 6, 5), c=3, seed=0, scale=3.0, ignore=True):
    """Channels-last logits (N, *S, C) and a hard target; about 20% of the target set to 255 if ``ignore``."""
    rng = np.random.default_rng(seed)
    c = 1 if mode == "binary" else c
    x = (rng.normal(0, scale, size=shape + (c,))).astype(np.float32)
    if mode == "multiclass":
        t = rng.integers(0, c, size=shape).astype(np.int32)
        if ignore:
            t = np.where(rng.random(shape) < 0.2, 255, t).astype(np.int32)
    else:
        t = (rng.random(shape + (c,)) < 0.4).astype(np.float32)
        if ignore:
            t = np.where(rng.random(t.shape) < 0.2, 255.0, t).astype(np.float32)
    return x, t


def test_users_focal_numbers():
    loss = K.FocalLoss(mode="binary", alpha=0.25, gamma=2.0, reduction="sum")
    y_true, y_pred = np.array([1.0, 0.0, 1.0]), np.array([0.6, 0.3, 0.7])
    assert float(loss(y_true, y_pred)) == pytest.approx(0.0525338, abs=5e-7)
    assert float(loss(np.tile(y_true, (2, 1)), np.tile(y_pred, (2, 1)))) == pytest.approx(0.1050675, abs=5e-7)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("mode", MODES)
def test_finite_at_saturated_logits(cls, mode):
    x, t = _data(mode)
    x = np.where(np.random.default_rng(1).random(x.shape) < 0.5, -1e4, 1e4).astype(np.float32)
    for opts in ({}, {"ignore_class": 255}) + ((EDGE_OPTIONS[cls],) if cls in EDGE_OPTIONS else ()):
        loss = cls(mode, from_logits=True, **opts)
        y_true = t if "ignore_class" in opts else np.where(t == 255, 0, t).astype(t.dtype)
        value, grad = value_and_grad(lambda z: loss(y_true, z), x)
        assert np.isfinite(value).all() and np.isfinite(grad).all(), (cls.__name__, mode, opts)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spatial", [(6, 5), (3, 4, 5)], ids=["2d", "3d"])
def test_channels_first_equals_channels_last(cls, mode, spatial):
    x, t = _data(mode, shape=(2,) + spatial)
    last = cls(mode, from_logits=True, ignore_class=255)(t, x)
    x_first = np.moveaxis(x, -1, 1)
    t_first = t if mode == "multiclass" else np.moveaxis(t, -1, 1)
    first = cls(mode, from_logits=True, ignore_class=255, axis=1)(t_first, x_first)
    np.testing.assert_allclose(to_numpy(first), to_numpy(last), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", ALL)
def test_gradient_zero_on_ignored_pixels(cls):
    x, t = _data("multiclass")
    _, grad = value_and_grad(lambda z: cls("multiclass", from_logits=True, ignore_class=255)(t, z), x)
    assert np.all(grad[t == 255] == 0)
    assert np.abs(grad[t != 255]).sum() > 0


def test_sample_weight_weighs_images():
    x, t = _data("multiclass", ignore=False)
    loss = K.DiceLoss("multiclass", per_image=True, from_logits=True, reduction="sum")
    per_image = to_numpy(K.dice_loss(t, x, "multiclass", per_image=True, from_logits=True))
    assert float(loss(t, x, sample_weight=np.array([2.0, 0.0]))) == pytest.approx(2 * per_image[0], rel=1e-6)
    with pytest.raises(ValueError, match="per_image"):
        K.DiceLoss("multiclass", from_logits=True)(t, x, sample_weight=np.array([1.0, 1.0]))


def test_mean_is_over_valid_entries():
    x, t = _data("binary")
    loss = K.FocalLoss("binary", from_logits=True, ignore_class=255)
    values = to_numpy(K.focal_loss(t, x, "binary", from_logits=True, ignore_class=255))
    assert float(loss(t, x)) == pytest.approx(values.sum() / (t != 255).sum(), rel=1e-6)


@pytest.mark.parametrize("make,match", [
    (lambda: K.FocalLoss("softmax"), "mode"),
    (lambda: K.FocalLoss("binary", gamma=-1.0), "gamma"),
    (lambda: K.FocalLoss("binary", alpha=1.5), "alpha"),
    (lambda: K.DiceLoss("binary", smooth=-1.0), "smooth"),
    (lambda: K.TverskyLoss("binary", alpha=0.0, beta=0.0), "alpha"),
    (lambda: K.DiceLoss("binary", reduction="average"), "reduction"),
    (lambda: K.DiceLoss("binary", axis=2), "axis"),
    (lambda: K.GeneralizedDiceLoss("multiclass", weight_type="cube"), "weight_type"),
    (lambda: K.LovaszLoss("multiclass", classes="some"), "classes"),
    (lambda: K.FocalLoss("binary", label_smoothing=2.0), "label_smoothing"),
])
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("call,match", [
    (lambda x, t: K.DiceLoss("multiclass", weight=[1.0, 2.0])(t, x), "weight"),
    (lambda x, t: K.DiceLoss("multiclass", classes=[0, 7])(t, x), "classes"),
    (lambda x, t: K.DiceLoss("multilabel")(t[..., None], x), "y_true"),
    (lambda x, t: K.FocalLoss("multiclass")(t, x[..., :1]), "C >= 2"),
])
def test_bad_inputs_raise(call, match):
    x, t = _data("multiclass", ignore=False)
    with pytest.raises(ValueError, match=match):
        call(x, t)


def test_type_errors():
    with pytest.raises(TypeError, match="from_logits"):
        K.DiceLoss("binary", from_logits=1)
    with pytest.raises(TypeError, match="ignore_class"):
        K.FocalLoss("binary", ignore_class=2.5)


@pytest.mark.parametrize("cls", ALL)
def test_config_round_trip_and_pickle(cls):
    opts = CONFIG_OPTIONS.get(cls, {"weight": [1.0, 2.0, 0.5]})
    loss = cls("multiclass", from_logits=True, ignore_class=255, reduction="sum", **opts)
    config = loss.get_config()
    import json

    json.dumps(config)  # JSON-safe
    again = cls.from_config(config)
    x, t = _data("multiclass")
    np.testing.assert_allclose(to_numpy(again(t, x)), to_numpy(loss(t, x)), rtol=1e-6)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls and repr(restored) == repr(loss)
    np.testing.assert_allclose(to_numpy(restored(t, x)), to_numpy(loss(t, x)), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(pickle.loads(pickle.dumps(loss))(t, x)), to_numpy(loss(t, x)), rtol=1e-6)


@pytest.mark.parametrize("cls", [K.FocalLoss, K.DiceLoss, K.LovaszLoss, K.BalancedCrossEntropyLoss,
                                 K.UnifiedFocalLoss])
def test_mixed_float16_is_finite_float32(cls):
    keras.mixed_precision.set_global_policy("mixed_float16")
    x, t = _data("multiclass")
    loss = cls("multiclass", from_logits=True, ignore_class=255)
    value = loss(t, keras.ops.cast(x, "float16"))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert np.isfinite(to_numpy(value)).all()


def _toy(n=24, size=16, c=3, seed=0):
    """Images with a few small discs of classes 1..C-1 on background 0 (imbalanced); colour tells the class."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, size, size), np.int32)
    x = rng.normal(0, 0.1, size=(n, size, size, 3)).astype(np.float32)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        for k in range(1, c):
            cy, cx, r = rng.integers(3, size - 3), rng.integers(3, size - 3), rng.integers(1, 3)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            y[i][disc] = k
            x[i][disc, k % 3] += 1.0
    return x, y


def _model(c):
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    return keras.Model(inp, keras.layers.Conv2D(c, 1)(h))


@pytest.mark.parametrize("cls", ALL)
def test_fit_lowers_loss_and_saved_model_loads(cls, tmp_path):
    keras.utils.set_random_seed(0)
    x, y = _toy()
    model = _model(3)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=cls("multiclass", from_logits=True,
                                                                  **FIT_OPTIONS.get(cls, {})))
    before = model.evaluate(x, y, batch_size=8, verbose=0)
    model.fit(x, y, batch_size=8, epochs=6, verbose=0)
    after = model.evaluate(x, y, batch_size=8, verbose=0)
    assert after < before, (cls.__name__, before, after)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: the loss is registered under "seglosses"
    assert type(loaded.loss) is cls
    assert loaded.evaluate(x, y, batch_size=8, verbose=0) == pytest.approx(after, rel=1e-5)


def test_import_needs_no_torch():
    import subprocess
    import sys

    # the torch backend imports torch itself: check with a backend that does not
    backend = "jax" if keras.backend.backend() == "torch" else keras.backend.backend()
    code = "import sys, seglosses.keras; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, KERAS_BACKEND=backend))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
