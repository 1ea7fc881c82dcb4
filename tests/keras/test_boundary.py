"""The distance-based losses in Keras (boundary, Hausdorff DT): equal to the float64 oracle (tests/oracle_survey.py)
and the PyTorch front end on the shared cases, their exact distance transform against SciPy, maps, precomputed
maps, sample weights, gradients, compiled functions, saving and argument checks."""


import keras
import numpy as np
import pytest
import torch
from scipy.ndimage import distance_transform_edt

import seglosses as S
import seglosses.keras as K
from _kutil import FAST_COMPILE as _FAST_COMPILE  # noqa: F401
from _kutil import channels_last as _channels_last, jax_compiled as _jax_compiled  # noqa: F401
from _kutil import check_config_round_trip, keras_class, keras_function, oracle_function, to_numpy, torch_function
from _kutil import keras_inputs as _keras_inputs, keras_options as _keras_options, run as _run
from _kutil import value_and_grad_fn as _value_and_grad_fn
from cases import IGNORE, make_case, oracle_inputs
from seglosses._registry import LOSSES
from seglosses.keras import _distance

#: The losses swept here: the distance-based family of seglosses._registry (oracle: tests/oracle_survey.py).
NAMES = [loss.name for loss in LOSSES if loss.family == "boundary"]
CLASSES = [keras_class(name) for name in NAMES]
SP2, SP3 = (2.0, 0.5), (1.5, 1.0, 0.7)

#: (kind, mode, logits shape (N, C, *spatial), options): 2-D and 3-D, every mode, ignore, spacing, classes, soft
#: targets, probabilities, saturated logits, masks without a boundary ("full": the other classes are empty). Each
#: case is one compilation on JAX (about 0.3 s), so the list is short; tests/test_survey_oracle.py sweeps the
#: PyTorch front end against the oracle on every case.
CASES = [
    ("ignored", "binary", (2, 1, 3, 4, 5), {"spacing": SP3}, 1),
    ("soft", "binary", (2, 1, 5, 6), {"from_logits": False}, -1),
    ("random", "multiclass", (2, 3, 5, 6), {"classes": [2, 0]}, -1),
    ("ignored", "multiclass", (2, 3, 5, 6), {"spacing": SP2}, 1),
    ("ignored", "multiclass", (2, 3, 3, 4, 5), {"from_logits": False}, -1),
    ("soft", "multiclass", (2, 3, 5, 6), {}, -1),
    ("full", "multiclass", (2, 3, 3, 4, 5), {"spacing": SP3}, 1),
    ("ignored", "multilabel", (2, 3, 5, 6), {"from_logits": False, "classes": [1]}, 1),
    ("saturated", "multilabel", (2, 3, 3, 4, 5), {}, -1),
]
HD_OPTIONS = [{}, {"alpha": 1.0}, {"alpha": 0.5}]


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{k}-{m}-{len(s) - 2}d-{'-'.join(o) or 'default'}-axis{a}"
                                                      for k, m, s, o, a in CASES])
def test_equals_oracle_and_torch(i):
    kind, mode, shape, opts, axis = CASES[i]
    logits, target, opts = oracle_inputs(kind, mode, shape, opts)
    runs = [("boundary", {})] + [("hausdorff_dt", extra) for extra in (HD_OPTIONS if i % 3 == 0 else [{}])]
    losses = [keras_class(name)(mode, axis=axis, **_keras_options(opts), **extra) for name, extra in runs]
    y_true, y_pred = _keras_inputs(logits, target, mode, axis)
    got = _run(lambda t, x: tuple(loss(t, x) for loss in losses), y_true, y_pred)  # one compilation
    for (name, extra), value in zip(runs, got):
        expected = oracle_function(name)(logits, target, mode, reduction="mean", **opts, **extra)
        torch_value = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode, **opts,
                                           **extra)
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-5, err_msg=f"oracle {name} {opts} {extra}")
        np.testing.assert_allclose(value, float(torch_value), rtol=1e-4, atol=1e-5,
                                   err_msg=f"torch {name} {opts} {extra}")


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_map_sum_and_sample_weight_equal_torch(mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("ignored", mode, (2, c, 5, 6), seed=3)
    y_true, y_pred = _keras_inputs(logits, target, mode)
    opts = dict(ignore_class=IGNORE, from_logits=True, spacing=[1.0, 2.0])
    weights = np.array([2.0, 0.0])
    calls = [(keras_function(name), keras_class(name)(mode, reduction="sum", **opts)) for name in sorted(NAMES)]
    t_first, x_first = _keras_inputs(logits, target, mode, axis=1)

    def run(t, x, t_cf, x_cf):
        out = [(f(t, x, mode, **opts), s(t, x), s(t, x, sample_weight=weights)) for f, s in calls]
        if mode == "binary":  # the same maps without the channel axis, and channels-first
            out += [(f(t[..., 0], x[..., 0], mode, **opts), f(t_cf, x_cf, mode, axis=1, **opts)) for f, _ in calls]
        return out

    got = _run(run, y_true, y_pred, t_first, x_first)
    for i, name in enumerate(sorted(NAMES)):
        values, total, weighted = got[i]
        ref = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode,
                                   ignore_index=IGNORE, spacing=(1.0, 2.0), reduction="none").numpy()
        np.testing.assert_allclose(values, _channels_last(ref), rtol=1e-4, atol=1e-5, err_msg=name)
        if mode == "binary":
            flat, first = got[len(calls) + i]
            assert flat.shape == (2, 5, 6) and first.shape == (2, 1, 5, 6)
            np.testing.assert_array_equal(flat, values[..., 0])
            np.testing.assert_array_equal(first[:, 0], values[..., 0])
        np.testing.assert_allclose(total, ref.sum(), rtol=1e-4, err_msg=name)
        np.testing.assert_allclose(weighted, 2 * ref[0].sum(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_precomputed_maps_equal_computed_ones():
    # channels_first: the maps move with y_pred's class axis
    logits, target = make_case("random", "multiclass", (2, 3, 5, 6), seed=4)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass", axis=1)
    signed = S.distance_maps(target, "multiclass", kind="signed", batched=True, num_classes=3)
    unsigned = S.distance_maps(target, "multiclass", kind="unsigned", batched=True, num_classes=3)
    runs = ((K.boundary_loss, "dist_maps"), (K.hausdorff_dt_loss, "target_dist"))
    got = _run(lambda t, x, m0, m1: [f(t, x, "multiclass", from_logits=True, axis=1, **kw)
                                     for (f, key), m in zip(runs, (m0, m1)) for kw in ({}, {key: m})],
               y_true, y_pred, signed, unsigned)
    np.testing.assert_allclose(got[1], got[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[3], got[2], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"`dist_maps` must have the shape of `y_pred`"):
        K.boundary_loss(y_true, y_pred, "multiclass", axis=1, dist_maps=signed[..., :4])


def test_ignored_region_is_never_a_nearest_point():
    logits, target = make_case("random", "multiclass", (1, 3, 8, 12), seed=2)
    t_ign = target.copy()
    t_ign[..., 6:] = IGNORE
    losses = [cls("multiclass", from_logits=True, ignore_class=IGNORE) for cls in CLASSES]
    whole = _run(lambda t, x: [loss(t, x) for loss in losses], *_keras_inputs(logits, t_ign, "multiclass"))
    half = _run(lambda t, x: [loss(t, x) for loss in losses], *_keras_inputs(logits[..., :6], target[..., :6],
                                                                             "multiclass"))
    np.testing.assert_allclose(whole, half, rtol=1e-6)


# --------------------------------------------------------------------------------------- distance transform ---
@pytest.mark.parametrize("spatial", [(17,), (9, 13), (5, 6, 7)], ids=["1d", "2d", "3d"])
def test_edt_equals_scipy(spatial):
    rng = np.random.default_rng(len(spatial))
    mask = rng.random((3,) + spatial) < np.array([0.3, 0.9, 1.0]).reshape((3,) + (1,) * len(spatial))
    mask[1].flat[0] = False  # slice 1: a single far point
    mask[1].flat[1:] = True
    axes = tuple(range(1, len(spatial) + 1))
    spacing = (0.7, 1.3, 2.0)[:len(spatial)]
    channels_last = np.moveaxis(mask, 0, -1)[None]  # (1, *spatial, 3): the slices are channels
    sq, got, chunked, spaced, last = _run(lambda m, ml: (
        _distance.squared_distance_to(keras.ops.logical_not(m), axes), _distance.edt(m, axes),
        _distance.edt(m, axes, block=40),  # several output chunks per axis
        _distance.edt(m, axes, spacing), _distance.edt(ml, axes)), mask, channels_last)
    for i in range(2):
        ref = distance_transform_edt(mask[i])
        np.testing.assert_array_equal(sq[i], np.round(ref ** 2))  # unit spacing: exact integers
        np.testing.assert_allclose(got[i], ref, rtol=1e-7)
        np.testing.assert_allclose(spaced[i], distance_transform_edt(mask[i], sampling=spacing), rtol=1e-6)
    assert np.isinf(got[2]).all() and (sq[2] >= _distance.NO_POINT).all()  # no False element: no point
    np.testing.assert_array_equal(chunked, got)
    np.testing.assert_array_equal(np.moveaxis(last[0], -1, 0), got)


# ------------------------------------------------------------------------------- gradients and compilation ---
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_finite_gradients_zero_on_ignored_pixels(mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("ignored", mode, (2, c, 5, 6), seed=6)
    y_true, _ = _keras_inputs(logits, target, mode)
    sign = np.where(np.random.default_rng(0).random((2, 5, 6, c)) < 0.5, -1.0, 1.0).astype(np.float32)
    boundary = K.BoundaryLoss(mode, from_logits=True, ignore_class=IGNORE)
    hausdorff = K.HausdorffDTLoss(mode, from_logits=True, ignore_class=IGNORE)
    fn = _value_and_grad_fn(lambda z: boundary(y_true, z) + hausdorff(y_true, z))
    for scale in (1e4, 1.0):
        value, grad = fn(sign * scale)
        assert np.isfinite(value).all() and np.isfinite(grad).all(), scale
    ignored = y_true == IGNORE  # (N, H, W) for class indices: every class of the pixel
    assert np.all(grad[ignored] == 0) and np.abs(grad[~ignored]).sum() > 0


def test_hausdorff_gradient_does_not_flow_through_the_fields():
    # with the distance weights frozen, sum w (p - g)^2 has the gradient 2 w (p - g) p (1 - p) in the logits
    logits, target = make_case("random", "binary", (1, 1, 8, 8), seed=7)
    y_true, x = _keras_inputs(logits, target, "binary")
    loss = K.HausdorffDTLoss("binary", from_logits=True, reduction="sum")
    _, grad = _value_and_grad_fn(lambda z: loss(y_true, z))(x)
    p = 1 / (1 + np.exp(-x.astype(np.float64)))
    ref = S.hausdorff_dt_loss(torch.from_numpy(logits), torch.from_numpy(target), "binary", reduction="none")
    w = _channels_last(ref.numpy()) / (p - y_true) ** 2  # the frozen weights (the maps are equal: see above)
    np.testing.assert_allclose(grad, 2 * w * (p - y_true) * p * (1 - p), rtol=1e-4, atol=1e-6)


def _compiled(fn):
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_compiled(fn)  # jax.jit (with fast XLA options)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    return fn  # torch: eager (torch.compile is tested by the PyTorch front end)


def test_inside_jit_equals_torch():
    logits, target = make_case("ignored", "multiclass", (2, 3, 3, 4, 5), seed=8)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    loss = 0.5 * K.HausdorffDTLoss("multiclass", from_logits=True, ignore_class=IGNORE, spacing=SP3) + \
        K.BoundaryLoss("multiclass", from_logits=True, ignore_class=IGNORE, classes=[1, 2])
    x, t = torch.from_numpy(logits).float(), torch.from_numpy(target)
    expected = 0.5 * S.hausdorff_dt_loss(x, t, "multiclass", ignore_index=IGNORE, spacing=SP3) + \
        S.boundary_loss(x, t, "multiclass", ignore_index=IGNORE, classes=[1, 2])
    got = to_numpy(_compiled(lambda t, x: loss(t, x))(y_true, y_pred))
    np.testing.assert_allclose(got, float(expected), rtol=1e-4)


def test_fit_with_unknown_batch_size_and_saved_model_loads(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, 2)).astype(np.float32)
    y = (x[..., :1] > 0.3).astype(np.float32)
    inp = keras.Input((8, 8, 2))
    model = keras.Model(inp, keras.layers.Conv2D(1, 3, padding="same")(inp))
    loss = K.DiceLoss("binary", from_logits=True) + 0.1 * K.BoundaryLoss("binary", from_logits=True) + \
        0.01 * K.HausdorffDTLoss("binary", from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: the losses are registered under "seglosses"
    assert [type(t) for t in loaded.loss.terms] == [K.DiceLoss, K.BoundaryLoss, K.HausdorffDTLoss]
    assert repr(loaded.loss) == repr(loss)


def test_mixed_float16_is_finite_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    logits, target = make_case("ignored", "multiclass", (2, 3, 5, 6), seed=9)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    losses = [cls("multiclass", from_logits=True, ignore_class=IGNORE) for cls in CLASSES]
    values = _run(lambda t, x: [loss(t, keras.ops.cast(x, "float16")) for loss in losses], y_true, y_pred)
    assert all(v.dtype == np.float32 and np.isfinite(v) for v in values)


def test_empty_batch_is_zero():
    losses = [cls("multiclass", from_logits=True, ignore_class=IGNORE) for cls in CLASSES]
    y_true, y_pred = np.zeros((0, 5, 6), np.int32), np.zeros((0, 5, 6, 3), np.float32)
    assert _run(lambda t, x: [loss(t, x) for loss in losses], y_true, y_pred) == [0.0, 0.0]


# ------------------------------------------------------------------------------------- config and arguments ---
@pytest.mark.parametrize("cls,opts", [(K.BoundaryLoss, {"classes": [1, 2], "spacing": [2.0, 0.5]}),
                                      (K.HausdorffDTLoss, {"alpha": 1.0, "spacing": 1.5})])
def test_config_round_trip_and_pickle(cls, opts):
    check_config_round_trip(cls, dict(from_logits=True, ignore_class=IGNORE, reduction="sum", **opts))


@pytest.mark.parametrize("make,error,match", [
    (lambda: K.BoundaryLoss("binary", spacing=0.0), ValueError, r"`spacing` must be > 0"),
    (lambda: K.BoundaryLoss("binary", spacing=[1.0, -2.0]), ValueError, r"`spacing\[1\]` must be > 0"),
    (lambda: K.BoundaryLoss("binary", spacing=[1.0] * 4), ValueError, r"one value per spatial axis \(1 to 3\)"),
    (lambda: K.BoundaryLoss("binary", spacing=float("inf")), ValueError, "finite"),
    (lambda: K.HausdorffDTLoss("binary", alpha=-1.0), ValueError, r"`alpha` must be >= 0.0"),
    (lambda: K.HausdorffDTLoss("binary", axis=2), ValueError, "axis"),
    (lambda: K.BoundaryLoss("binary", from_logits=1), TypeError, "from_logits"),
    (lambda: K.BoundaryLoss("multiclass", classes=[1, 1]), ValueError, "repeat"),
])
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()
