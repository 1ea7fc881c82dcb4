"""Composition of the Keras losses: operators, the weighted sum's value and gradient, sample weights, repr, config
round trip, saving a compiled model, errors."""

import json
import os
import pickle

import keras
import numpy as np
import pytest

import seglosses.keras as K
from _kutil import to_numpy, value_and_grad
from test_behaviour import _data, _model, _toy


def test_value_and_gradient_equal_weighted_sum_of_parts():
    x, t = _data("multiclass")
    dice = K.DiceLoss("multiclass", from_logits=True, ignore_class=255)
    focal = K.FocalLoss("multiclass", from_logits=True, ignore_class=255, gamma=1.0)
    loss = 0.5 * dice + focal
    assert isinstance(loss, K.WeightedSum) and isinstance(loss, keras.losses.Loss)
    got, got_grad = value_and_grad(lambda z: loss(t, z), x)
    expected, expected_grad = value_and_grad(lambda z: 0.5 * dice(t, z) + focal(t, z), x)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got_grad, expected_grad, rtol=1e-5, atol=1e-9)


def test_operators_build_flat_sums_with_the_right_coefficients():
    a, b, c = (K.DiceLoss("binary", from_logits=True), K.FocalLoss("binary", from_logits=True),
               K.JaccardLoss("binary", from_logits=True))
    cases = {
        "a + b": (a + b, (1.0, 1.0)),
        "a - b": (a - b, (1.0, -1.0)),
        "2 * a": (2 * a, (2.0,)),
        "a * 2": (a * 2, (2.0,)),
        "a / 4": (a / 4, (0.25,)),
        "-a": (-a, (-1.0,)),
        "sum": (sum([a, b, c]), (1.0, 1.0, 1.0)),
        "numpy": (np.float32(0.5) * a + b * np.int64(3), (0.5, 3.0)),
        "nested": (0.5 * (a + 2 * b) - c / 2, (0.5, 1.0, -0.5)),
    }
    for label, (loss, coefs) in cases.items():
        assert isinstance(loss, K.WeightedSum), label
        assert loss.coefs == coefs, label
        assert all(not isinstance(term, K.WeightedSum) for term in loss.terms), label
    x, t = _data("binary", ignore=False)
    expected = 0.5 * to_numpy(a(t, x)) + to_numpy(b(t, x)) - 0.5 * to_numpy(c(t, x))
    np.testing.assert_allclose(to_numpy(cases["nested"][0](t, x)), expected, rtol=1e-6)


def test_sample_weight_goes_to_every_term():
    x, t = _data("multiclass", ignore=False)
    dice = K.DiceLoss("multiclass", per_image=True, from_logits=True, reduction="sum")
    focal = K.FocalLoss("multiclass", from_logits=True)
    w = np.array([2.0, 0.5])
    expected = 0.3 * to_numpy(dice(t, x, sample_weight=w)) + to_numpy(focal(t, x, sample_weight=w))
    np.testing.assert_allclose(to_numpy((0.3 * dice + focal)(t, x, sample_weight=w)), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="per_image"):  # a term pooled over the batch refuses it, as alone
        (dice + K.DiceLoss("multiclass", from_logits=True))(t, x, sample_weight=w)


def test_repr_reads_like_the_expression():
    loss = 0.5 * K.DiceLoss("multiclass") + K.FocalLoss("multiclass")
    assert repr(loss) == "0.5 * DiceLoss('multiclass') + 1.0 * FocalLoss('multiclass')"
    loss = 0.5 * K.DiceLoss("multiclass", per_image=True) - K.FocalLoss("multiclass", gamma=1.0, reduction="sum")
    assert repr(loss) == ("0.5 * DiceLoss('multiclass', per_image=True) - "
                          "1.0 * FocalLoss('multiclass', gamma=1.0, reduction='sum')")


def test_config_round_trip_is_json_safe_and_reproduces_the_loss():
    x, t = _data("multiclass")
    loss = (0.3 * K.DiceLoss("multiclass", weight=[1.0, 2.0, 0.5], ignore_class=255, per_image=True, from_logits=True)
            + 0.7 * K.UnifiedFocalLoss("multiclass", ignore_class=255, from_logits=True, background=2)
            - 0.1 * K.TverskyLoss("multiclass", alpha=0.7, beta=0.3, classes=[1, 2], ignore_class=255,
                                  from_logits=True))
    config = json.loads(json.dumps(loss.get_config()))
    again = K.WeightedSum.from_config(config)
    assert repr(again) == repr(loss)
    value = to_numpy(loss(t, x))
    np.testing.assert_allclose(to_numpy(again(t, x)), value, rtol=1e-6)
    restored = keras.losses.deserialize(json.loads(json.dumps(keras.losses.serialize(loss))))
    assert type(restored) is K.WeightedSum and repr(restored) == repr(loss)
    np.testing.assert_allclose(to_numpy(restored(t, x)), value, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(pickle.loads(pickle.dumps(loss))(t, x)), value, rtol=1e-6)


def test_compiled_model_with_a_sum_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    x, y = _toy()
    model = _model(3)
    loss = 0.5 * K.DiceLoss("multiclass", from_logits=True) + K.FocalLoss("multiclass", from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=loss)
    before = model.evaluate(x, y, batch_size=8, verbose=0)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    after = model.evaluate(x, y, batch_size=8, verbose=0)
    assert after < before
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: WeightedSum and its terms are registered
    assert type(loaded.loss) is K.WeightedSum
    assert repr(loaded.loss) == repr(loss)
    assert loaded.evaluate(x, y, batch_size=8, verbose=0) == pytest.approx(after, rel=1e-5)


def test_other_frameworks_losses_do_not_mix():
    import seglosses

    with pytest.raises(TypeError, match="unsupported operand"):
        K.DiceLoss("binary") + keras.losses.MeanSquaredError()
    with pytest.raises(TypeError, match="unsupported operand"):
        K.DiceLoss("binary") + seglosses.DiceLoss("binary")


@pytest.mark.parametrize("expr,error,match", [
    (lambda a: a + 1, TypeError, "unsupported operand"),
    (lambda a: a * "2", TypeError, "can't multiply|unsupported operand"),
    (lambda a: a * True, TypeError, "unsupported operand"),
    (lambda a: a * float("inf"), ValueError, "finite number"),
    (lambda a: a / 0, ZeroDivisionError, "divided by 0"),
    (lambda a: K.WeightedSum([]), ValueError, "at least one"),
    (lambda a: K.WeightedSum([(1.0, keras.losses.MeanSquaredError())]), TypeError, "seglosses Keras loss"),
    (lambda a: K.WeightedSum([a]), TypeError, r"\(coef, loss\) pair"),
    (lambda a: K.WeightedSum([("0.5", a)]), TypeError, "coefficient must be a real number"),
    (lambda a: K.WeightedSum.from_config({"terms": [{"coef": 1.0}]}), ValueError, "'coef' and 'loss'"),
    (lambda a: K.WeightedSum.from_config({"name": "x"}), ValueError, "must be a list"),
])
def test_errors(expr, error, match):
    with pytest.raises(error, match=match):
        expr(K.DiceLoss("binary"))
