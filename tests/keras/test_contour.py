"""The contour losses in Keras (distance-penalised CE, shape-aware, Boundary DoU): equal to the float64 oracle
(tests/oracle_contour.py) and the PyTorch front end, maps, precomputed maps, gradients, compiled functions, saving
and argument checks."""


import keras
import numpy as np
import pytest
import torch

import seglosses as S
import seglosses.keras as K
from _kutil import check_config_round_trip
from _kutil import keras_class, keras_function, oracle_function, to_numpy, torch_function
from cases import IGNORE, make_case, oracle_inputs
from seglosses._registry import LOSSES
from _kutil import keras_inputs as _keras_inputs, keras_options as _keras_options, run as _run
from _kutil import value_and_grad_fn as _value_and_grad_fn
from test_boundary import _compiled

#: The losses swept here: the contour family of seglosses._registry (oracle: tests/oracle_contour.py).
NAMES = [loss.name for loss in LOSSES if loss.family == "contour"]
CE_NAMES = ["distance_penalized_cross_entropy", "shape_aware"]
SP2, SP3 = (2.0, 0.5), (1.5, 1.0, 0.7)

#: (kind, mode, logits shape, options of the CE losses, options of Boundary DoU, axis): every mode, 1-D to 3-D,
#: ignore, spacing, soft targets, probabilities, saturated logits, per_image and classes.
CASES = [
    ("ignored", "binary", (2, 1, 3, 4, 5), {"spacing": SP3}, {"per_image": True}, 1),
    ("soft", "binary", (2, 1, 5, 6), {"from_logits": False}, {"from_logits": False}, -1),
    ("random", "binary", (3, 1, 9), {}, {}, -1),
    ("random", "multiclass", (2, 3, 5, 6), {}, {"classes": [2, 0]}, -1),
    ("ignored", "multiclass", (2, 3, 5, 6), {"spacing": SP2}, {"per_image": True}, 1),
    ("ignored", "multiclass", (2, 3, 3, 4, 5), {"from_logits": False}, {"from_logits": False}, -1),
    ("soft", "multiclass", (2, 3, 5, 6), {}, {}, -1),
    ("full", "multiclass", (2, 3, 3, 4, 5), {"spacing": SP3}, {}, 1),
    ("ignored", "multilabel", (2, 3, 5, 6), {"from_logits": False}, {"classes": [1], "from_logits": False}, 1),
    ("saturated", "multilabel", (2, 3, 3, 4, 5), {}, {"per_image": True}, -1),
]


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{c[0]}-{c[1]}-{len(c[2]) - 2}d-axis{c[5]}" for c in CASES])
def test_equals_oracle_and_torch(i):
    kind, mode, shape, ce_opts, dou_opts, axis = CASES[i]
    runs = [(name, ce_opts) for name in CE_NAMES] + [("boundary_dou", dou_opts)]
    inputs = [oracle_inputs(kind, mode, shape, opts) for _, opts in runs]
    losses = [keras_class(name)(mode, axis=axis, **_keras_options(opts)) for (name, _), (_, _, opts)
              in zip(runs, inputs)]
    keras_inputs = [_keras_inputs(logits, target, mode, axis) for logits, target, _ in inputs]
    flat = [a for pair in keras_inputs for a in pair]
    got = _run(lambda *a: tuple(loss(a[2 * j], a[2 * j + 1]) for j, loss in enumerate(losses)), *flat)
    for (name, _), (logits, target, opts), value in zip(runs, inputs, got):
        expected = oracle_function(name)(logits, target, mode, reduction="mean", **opts)
        torch_value = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode, **opts)
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-5, err_msg=f"oracle {name} {opts}")
        np.testing.assert_allclose(value, float(torch_value), rtol=1e-4, atol=1e-5, err_msg=f"torch {name} {opts}")


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_maps_values_and_sample_weight_equal_torch(mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("ignored", mode, (2, c, 5, 6), seed=3)
    y_true, y_pred = _keras_inputs(logits, target, mode)
    opts = dict(ignore_class=IGNORE, from_logits=True, spacing=[1.0, 2.0])
    weights = np.array([2.0, 0.0])
    calls = [(keras_function(name), keras_class(name)(mode, reduction="sum", **opts)) for name in CE_NAMES]
    dou = K.BoundaryDoULoss(mode, per_image=True, ignore_class=IGNORE, from_logits=True, reduction="none")
    got, per_image = _run(lambda t, x: ([(f(t, x, mode, **opts), s(t, x), s(t, x, sample_weight=weights))
                                         for f, s in calls], dou(t, x)), y_true, y_pred)
    for (values, total, weighted), name in zip(got, CE_NAMES):
        ref = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode,
                                   ignore_index=IGNORE, spacing=(1.0, 2.0), reduction="none").numpy()
        ref = np.moveaxis(ref, 1, -1) if mode == "binary" else ref
        np.testing.assert_allclose(values, ref, rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(total, ref.sum(), rtol=1e-4, err_msg=name)
        np.testing.assert_allclose(weighted, 2 * ref[0].sum(), rtol=1e-4, atol=1e-5, err_msg=name)
    ref = S.boundary_dou_loss(torch.from_numpy(logits).float(), torch.from_numpy(target), mode, per_image=True,
                              ignore_index=IGNORE, reduction="none").mean(-1)
    np.testing.assert_allclose(per_image, ref.numpy(), rtol=1e-5, atol=1e-6)


def test_precomputed_maps_equal_computed_ones():
    # channels_first: the maps move with y_pred's class axis
    logits, target = make_case("random", "multiclass", (2, 3, 5, 6), seed=4)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass", axis=1)
    t = torch.from_numpy(target)
    penalty = S.contour_maps(t, "multiclass", num_classes=3, kind="penalty").numpy()
    contour = S.contour_maps(t, "multiclass", num_classes=3, kind="contour").numpy()
    runs = (K.distance_penalized_cross_entropy_loss, K.shape_aware_loss)
    got = _run(lambda t, x, m0, m1: [f(t, x, "multiclass", from_logits=True, axis=1, **kw)
                                     for f, m in zip(runs, (m0, m1)) for kw in ({}, {"dist_maps": m})],
               y_true, y_pred, penalty, contour)
    np.testing.assert_allclose(got[1], got[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[3], got[2], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"`dist_maps` must have the shape of `y_pred`"):
        K.shape_aware_loss(y_true, y_pred, "multiclass", axis=1, dist_maps=penalty[..., :4])


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_finite_gradients_zero_on_ignored_pixels(mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("ignored", mode, (2, c, 5, 6), seed=6)
    y_true, _ = _keras_inputs(logits, target, mode)
    sign = np.where(np.random.default_rng(0).random((2, 5, 6, c)) < 0.5, -1.0, 1.0).astype(np.float32)
    losses = [keras_class(name)(mode, from_logits=True, ignore_class=IGNORE) for name in NAMES]
    fn = _value_and_grad_fn(lambda z: sum(loss(y_true, z) for loss in losses))
    for scale in (1e4, 1.0):
        value, grad = fn(sign * scale)
        assert np.isfinite(value).all() and np.isfinite(grad).all(), scale
    ignored = y_true == IGNORE
    assert np.all(grad[ignored] == 0) and np.abs(grad[~ignored]).sum() > 0


def test_weights_carry_no_gradient():
    # the penalised cross-entropy's gradient is (1 + phi) (p - y): phi is held constant
    logits, target = make_case("random", "binary", (1, 1, 8, 8), seed=7)
    y_true, x = _keras_inputs(logits, target, "binary")
    loss = K.DistancePenalizedCrossEntropyLoss("binary", from_logits=True, reduction="sum")
    _, grad = _value_and_grad_fn(lambda z: loss(y_true, z))(x)
    phi = np.moveaxis(S.contour_maps(torch.from_numpy(target), "binary").numpy(), 1, -1)
    p = 1 / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(grad, (1 + phi) * (p - y_true), rtol=1e-4, atol=1e-6)


def test_inside_jit_equals_torch():
    logits, target = make_case("ignored", "multiclass", (2, 3, 3, 4, 5), seed=8)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    loss = 0.5 * K.ShapeAwareLoss("multiclass", from_logits=True, ignore_class=IGNORE, spacing=SP3) + \
        K.DistancePenalizedCrossEntropyLoss("multiclass", from_logits=True, ignore_class=IGNORE) + \
        K.BoundaryDoULoss("multiclass", from_logits=True, ignore_class=IGNORE, classes=[1, 2])
    x, t = torch.from_numpy(logits).float(), torch.from_numpy(target)
    expected = 0.5 * S.shape_aware_loss(x, t, "multiclass", ignore_index=IGNORE, spacing=SP3) + \
        S.distance_penalized_cross_entropy_loss(x, t, "multiclass", ignore_index=IGNORE) + \
        S.boundary_dou_loss(x, t, "multiclass", ignore_index=IGNORE, classes=[1, 2])
    got = to_numpy(_compiled(lambda t, x: loss(t, x))(y_true, y_pred))
    np.testing.assert_allclose(got, float(expected), rtol=1e-4)


def test_fit_and_saved_model_loads(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, 2)).astype(np.float32)
    y = (x[..., :1] > 0.3).astype(np.float32)
    inp = keras.Input((8, 8, 2))
    model = keras.Model(inp, keras.layers.Conv2D(1, 3, padding="same")(inp))
    loss = K.BoundaryDoULoss("binary", from_logits=True) + K.DistancePenalizedCrossEntropyLoss(
        "binary", from_logits=True) + 0.5 * K.ShapeAwareLoss("binary", from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [type(t) for t in loaded.loss.terms] == [K.BoundaryDoULoss, K.DistancePenalizedCrossEntropyLoss,
                                                    K.ShapeAwareLoss]
    assert repr(loaded.loss) == repr(loss)


def test_mixed_float16_is_finite_float32_and_empty_batch_is_zero():
    losses = [keras_class(name)("multiclass", from_logits=True, ignore_class=IGNORE) for name in NAMES]
    keras.mixed_precision.set_global_policy("mixed_float16")
    logits, target = make_case("ignored", "multiclass", (2, 3, 5, 6), seed=9)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    values = _run(lambda t, x: [loss(t, keras.ops.cast(x, "float16")) for loss in losses], y_true, y_pred)
    assert all(v.dtype == np.float32 and np.isfinite(v) for v in values)
    keras.mixed_precision.set_global_policy("float32")
    y_true, y_pred = np.zeros((0, 5, 6), np.int32), np.zeros((0, 5, 6, 3), np.float32)
    assert _run(lambda t, x: [loss(t, x) for loss in losses], y_true, y_pred) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("name,opts", [("distance_penalized_cross_entropy", {"spacing": [2.0, 0.5]}),
                                       ("shape_aware", {"spacing": 1.5}),
                                       ("boundary_dou", {"per_image": True, "classes": [1, 2]})])
def test_config_round_trip_and_pickle(name, opts):
    check_config_round_trip(keras_class(name), dict(from_logits=True, ignore_class=IGNORE, reduction="sum", **opts))


@pytest.mark.parametrize("make,error,match", [
    (lambda: K.ShapeAwareLoss("binary", spacing=0.0), ValueError, r"`spacing` must be > 0"),
    (lambda: K.DistancePenalizedCrossEntropyLoss("binary", spacing=[1.0] * 4), ValueError, "one value per"),
    (lambda: K.BoundaryDoULoss("binary", per_image=1), TypeError, "per_image"),
    (lambda: K.BoundaryDoULoss("multiclass", classes=[1, 1]), ValueError, "repeat"),
    (lambda: K.ShapeAwareLoss("binary", axis=2), ValueError, "axis"),
])
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()
