"""The structure losses in Keras (SSIM, correlation SSIM): equal to the float64 oracle (tests/oracle_structure.py)
and the PyTorch front end on the shared cases, maps and sample weights, zero gradient at ignored pixels, saving."""

import os

import keras
import numpy as np
import pytest
import torch

import oracle_structure as O
import seglosses.keras as K
from _kutil import keras_class, keras_function, torch_function, value_and_grad
from cases import IGNORE, make_case, oracle_inputs
from seglosses._registry import LOSSES
from _kutil import channels_last as _channels_last, keras_inputs as _keras_inputs
from _kutil import keras_options as _keras_options, run as _run

#: The losses swept here: the structure family of seglosses._registry (oracle: tests/oracle_structure.py).
NAMES = [loss.name for loss in LOSSES if loss.family == "structure"]

#: (kind, mode, logits shape, SSIM options, correlation options, axis): 1-D to 3-D, every mode, ignore, classes,
#: probabilities, saturated logits, padding "valid", windows larger than the image.
CASES = [
    ("ignored", "binary", (2, 1, 3, 4, 5), {}, {}, 1),
    ("soft", "binary", (2, 1, 5, 6), {"from_logits": False, "window_size": 3}, {"from_logits": False}, -1),
    ("random", "multiclass", (2, 3, 5, 6), {"classes": [2, 0], "window_size": 5, "weight": [0.5, 1.0, 2.0]},
     {"classes": [2, 0], "weight": [1.0, 0.5, 3.0]}, -1),
    ("ignored", "multiclass", (2, 3, 7, 8), {"window_size": 3, "padding": "valid"}, {"beta": 0.3}, 1),
    ("ignored", "multiclass", (2, 3, 3, 4, 5), {"from_logits": False, "window_size": 3},
     {"from_logits": False, "window_size": 5}, -1),
    ("soft", "multiclass", (2, 3, 5, 6), {"sigma": 0.8}, {"sigma": 1.0}, -1),
    ("ignored", "multilabel", (2, 3, 9), {"window_size": 5, "padding": "valid", "weight": [1.0, 2.0, 0.5]},
     {"window_size": 7, "weight": [2.0, 1.0, 1.0]}, 1),
    ("saturated", "multilabel", (2, 3, 3, 4, 5), {}, {}, -1),
]


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{c[0]}-{c[1]}-{len(c[2]) - 2}d" for c in CASES])
def test_equals_oracle_and_torch(i):
    kind, mode, shape, s_opts, c_opts, axis = CASES[i]
    runs = [("ssim", s_opts), ("correlation_ssim", c_opts)]
    values = []
    for name, opts in runs:
        logits, target, full = oracle_inputs(kind, mode, shape, opts)
        values.append((name, full, logits, target))
    losses = [keras_class(name)(mode, axis=axis, **_keras_options(full)) for name, full, _, _ in values]
    inputs = [_keras_inputs(logits, target, mode, axis) for _, _, logits, target in values]
    got = _run(lambda t0, x0, t1, x1: (losses[0](t0, x0), losses[1](t1, x1)), *inputs[0], *inputs[1])
    for (name, full, logits, target), value in zip(values, got):
        expected = getattr(O, name)(logits, target, mode, reduction="mean", **full)
        torch_value = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode, **full)
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-5, err_msg=f"oracle {name} {full}")
        np.testing.assert_allclose(value, float(torch_value), rtol=1e-4, atol=1e-5, err_msg=f"torch {name} {full}")


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_map_sum_and_sample_weight_equal_torch(mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("ignored", mode, (2, c, 6, 7), seed=3)
    y_true, y_pred = _keras_inputs(logits, target, mode)
    opts = dict(ignore_class=IGNORE, from_logits=True, window_size=5)
    weights = np.array([2.0, 0.0])
    calls = [(keras_function(name), keras_class(name)(mode, reduction="sum", **opts)) for name in NAMES]
    got = _run(lambda t, x: [(f(t, x, mode, **opts), s(t, x), s(t, x, sample_weight=weights)) for f, s in calls],
               y_true, y_pred)
    for (values, total, weighted), name in zip(got, NAMES):
        ref = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode,
                                   ignore_index=IGNORE, window_size=5, reduction="none").numpy()
        np.testing.assert_allclose(values, _channels_last(ref), rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(total, ref.sum(), rtol=1e-4, err_msg=name)
        np.testing.assert_allclose(weighted, 2 * ref[0].sum(), rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", ["ssim", "correlation_ssim"])
def test_ignored_pixels_get_zero_gradient_and_nan_there_reaches_nothing(name):
    logits, target = make_case("ignored", "multiclass", (1, 3, 6, 7), seed=5)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    y_pred = y_pred.copy()
    ignored = y_true == IGNORE
    y_pred[ignored] = np.nan
    loss = keras_class(name)("multiclass", from_logits=True, ignore_class=IGNORE)
    value, grad = value_and_grad(lambda x: loss(y_true, x), y_pred)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert (grad[ignored] == 0).all() and np.abs(grad).sum() > 0


@pytest.mark.parametrize("cls", [K.SSIMLoss, K.CorrelationSSIMLoss])
def test_saved_model_loads(cls, tmp_path):
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 2))
    model = keras.Model(inp, keras.layers.Conv2D(2, 3, padding="same")(inp))
    model.compile(optimizer="sgd", loss=cls("multilabel", from_logits=True, window_size=3))
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 2)).astype("float32")
    y = (x > 0).astype("float32")
    before = model.evaluate(x, y, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.loss) is cls and loaded.loss.get_config() == model.loss.get_config()
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(before, rel=1e-6)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="`window_size` must be an odd int"):
        K.SSIMLoss("binary", window_size=2)
    with pytest.raises(ValueError, match="`padding` must be one of"):
        K.SSIMLoss("binary", padding="reflect")
    with pytest.raises(ValueError, match="`beta` must be <= 1.0"):
        K.CorrelationSSIMLoss("binary", beta=2.0)
    with pytest.raises(ValueError, match="1 to 3 spatial axes"):
        K.SSIMLoss("multilabel")(np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32"))
