"""Scheduled coefficients in the Keras weighted sum: value and gradient at several positions, config and .keras round
trips (the position kept), and ScheduleCallback in model.fit on every backend (the logged loss follows the
schedule, without rebuilding the train step)."""

import json
import math
import os
import pickle

import keras
import numpy as np
import pytest

import seglosses.keras as K
from _kutil import to_numpy, value_and_grad
from test_behaviour import _data

LN2 = math.log(2.0)


def test_value_and_gradient_follow_the_schedule():
    x, t = _data("multiclass")
    dice = K.DiceLoss("multiclass", from_logits=True, ignore_class=255)
    focal = K.FocalLoss("multiclass", from_logits=True, ignore_class=255, gamma=1.0)
    r = K.rebalance()
    loss = r * dice + (1 - r) * focal
    assert loss.coefs == (r, 1 - r)
    for pos, a in ((0, 1.0), (25, 0.75), (200, 0.01)):  # alpha = max(1 - 0.01 t, 0.01), by hand
        loss.step(pos)
        assert loss.coefficients() == pytest.approx({"dice_loss": a, "focal_loss": 1 - a}, abs=1e-15)
        got, got_grad = value_and_grad(lambda z: loss(t, z), x)
        expected, expected_grad = value_and_grad(lambda z: a * dice(t, z) + (1 - a) * focal(t, z), x)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        np.testing.assert_allclose(got_grad, expected_grad, rtol=1e-5, atol=1e-9)


def test_config_round_trip_keeps_the_position():
    x, t = _data("multiclass", ignore=False)
    ramp = K.linear(0.01, 1.0, 10)
    loss = K.DiceLoss("multiclass", from_logits=True) + 0.5 * ramp * K.FocalLoss("multiclass", from_logits=True)
    assert repr(loss) == ("1.0 * DiceLoss('multiclass', from_logits=True) + (0.5 * linear(0.01, 1.0, 10)) * "
                          "FocalLoss('multiclass', from_logits=True)")
    loss.step(4)
    config = json.loads(json.dumps(loss.get_config()))
    assert config["position"] == 4
    assert config["terms"][1]["coef"] == {"schedule": "affine", "of": {
        "schedule": "linear", "start": 0.01, "end": 1.0, "steps": 10, "begin": 0}, "scale": 0.5, "offset": 0.0}
    value = to_numpy(loss(t, x))
    for again in (K.WeightedSum.from_config(config),
                  keras.losses.deserialize(json.loads(json.dumps(keras.losses.serialize(loss)))),
                  pickle.loads(pickle.dumps(loss))):
        assert type(again) is K.WeightedSum and repr(again) == repr(loss) and again.position == 4
        assert again.coefficients() == loss.coefficients()
        np.testing.assert_allclose(to_numpy(again(t, x)), value, rtol=1e-6)
    assert "position" not in (0.5 * K.DiceLoss("binary") + K.FocalLoss("binary")).get_config()


def _fit(loss, unit, epochs=3):
    """A 1x1 conv with zero weights (logits 0, p = 1/2) trained at learning rate 0: each term keeps its value, so
    the logged loss of an epoch is the schedule's coefficients applied to known numbers."""
    x = np.random.default_rng(0).normal(size=(8, 4, 4, 1)).astype("float32")
    y = (x[..., 0] > 0).astype("int32")
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, kernel_initializer="zeros")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    history = model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, shuffle=False,
                        callbacks=[K.ScheduleCallback(loss, unit=unit)])
    return model, history.history["loss"], (x, y)


def test_callback_steps_the_loss_per_epoch_in_fit(tmp_path):
    ce = K.CrossEntropyLoss("multiclass", from_logits=True)  # ln 2 at p = 1/2
    loss = K.linear(0.0, 1.0, 2) * ce + K.CrossEntropyLoss("multiclass", from_logits=True)
    model, logged, (x, y) = _fit(loss, "epoch")
    # epoch e: (e / 2 clamped to 1 + 1) ln 2
    np.testing.assert_allclose(logged, [LN2, 1.5 * LN2, 2 * LN2], rtol=1e-5)
    assert loss.position == 2
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.loss) is K.WeightedSum and loaded.loss.position == 2
    assert loaded.loss.coefficients() == loss.coefficients()
    assert len(loaded.weights) == len(model.weights)  # the coefficients are not saved as weights
    assert loaded.evaluate(x, y, batch_size=4, verbose=0) == pytest.approx(2 * LN2, rel=1e-5)


def test_callback_steps_the_loss_per_batch_in_fit():
    r = K.rebalance(start=1.0, step=0.25, floor=0.0)
    loss = r * K.CrossEntropyLoss("multiclass", from_logits=True)
    _, logged, _ = _fit(loss, "batch", epochs=2)
    # 2 batches per epoch: global steps 0, 1 | 2, 3 -> alpha 1, 0.75 | 0.5, 0.25; the epoch logs their mean
    np.testing.assert_allclose(logged, [0.875 * LN2, 0.375 * LN2], rtol=1e-5)
    assert loss.position == 3


def test_callback_errors():
    loss = K.linear(0, 1, 3) * K.DiceLoss("binary")
    with pytest.raises(ValueError, match='`unit` must be "epoch" or "batch"'):
        K.ScheduleCallback(loss, unit="step")
    with pytest.raises(TypeError, match="`loss` must be a seglosses.keras.WeightedSum"):
        K.ScheduleCallback(K.DiceLoss("binary"))
    with pytest.raises(ValueError, match="`t`"):
        loss.step(-1)
