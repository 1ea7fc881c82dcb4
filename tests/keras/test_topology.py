"""The topology losses in Keras (clDice, Skeleton Recall): equal to the float64 oracle (tests/oracle_topology.py)
and the PyTorch front end on the shared cases, precomputed skeletons, ignored pixels, gradients, compiled functions,
saving and argument checks."""


import keras
import numpy as np
import pytest
import torch

import seglosses as S
import seglosses.keras as K
from _kutil import check_config_round_trip
from _kutil import backend_share, keras_class, oracle_function, to_numpy, torch_function, value_and_grad
from cases import CASES as SHARED_CASES, IGNORE, make_case, oracle_inputs
from seglosses._registry import LOSSES
from _kutil import jax_compiled as _jax_compiled, keras_inputs as _keras_inputs
from _kutil import keras_options as _keras_options, run as _run

#: The losses swept here: the topology family of seglosses._registry (oracle: tests/oracle_topology.py).
NAMES = [loss.name for loss in LOSSES if loss.family == "topology"]
CLASSES = [keras_class(name) for name in NAMES]

#: Every shared case with spatial axes and these option sets, shared out between the three backends. clDice runs 1
#: to 3 erosions here (each is a few more ops for XLA to compile; 10, the default, runs in the doctests).
_OPTIONS = {"cldice": [{"iterations": 2}, {"alpha": 1.0, "iterations": 3},
                       {"per_image": True, "alpha": 0.3, "smooth": 1e-5, "iterations": 1},
                       {"from_logits": False, "classes": [0], "iterations": 2},
                       {"weight": "w", "smooth": 0.0, "alpha": 1.0, "iterations": 2}],
            "skeleton_recall": [{}, {"per_image": True}, {"smooth": 0.0, "from_logits": False},
                                {"classes": [0]}, {"weight": "w", "smooth": 1.0}]}


def _params():
    """Each loss x shared case with spatial axes once, the option sets and both class axes taken in turn, the cases
    shared out between the three backends (the PyTorch front end meets the oracle on every option set and case:
    tests/test_oracle.py)."""
    i = 0
    for name in NAMES:
        for kind, mode, shape in SHARED_CASES:
            if len(shape) == 2:
                continue
            i += 1
            j = i % len(_OPTIONS[name])
            c = shape[1]
            opts = {k: ([0.5 + 0.5 * q for q in range(c)] if v == "w" else v) for k, v in _OPTIONS[name][j].items()}
            if backend_share(i):
                yield pytest.param(name, kind, mode, shape, opts, 1 if i % 2 else -1,
                                   id=f"{name}-{kind}-{mode}-{len(shape) - 2}d-o{j}")


@pytest.mark.parametrize("name,kind,mode,shape,opts,axis", list(_params()))
def test_equals_oracle_and_torch(name, kind, mode, shape, opts, axis):
    logits, target, opts = oracle_inputs(kind, mode, shape, opts)
    loss = keras_class(name)(mode, axis=axis, **_keras_options(opts))
    got = float(_run(lambda t, x: loss(t, x), *_keras_inputs(logits, target, mode, axis)))
    expected = oracle_function(name)(logits, target, mode, reduction="mean", **opts)
    torch_value = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode, **opts)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=f"oracle {name} {opts}")
    np.testing.assert_allclose(got, float(torch_value), rtol=1e-4, atol=1e-5, err_msg=f"torch {name} {opts}")


def test_per_image_values_and_sample_weight_equal_torch():
    logits, target = make_case("ignored", "multiclass", (2, 3, 6, 7), seed=3)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    opts = dict(ignore_class=IGNORE, from_logits=True, per_image=True)
    calls = [(K.cldice_loss, K.ClDiceLoss("multiclass", reduction="sum", iterations=2, **opts), {"iterations": 2}),
             (K.skeleton_recall_loss, K.SkeletonRecallLoss("multiclass", reduction="sum", **opts), {})]
    weights = np.array([2.0, 0.0])
    got = _run(lambda t, x: [(f(t, x, "multiclass", **opts, **kw), s(t, x), s(t, x, sample_weight=weights))
                             for f, s, kw in calls], y_true, y_pred)
    for (values, total, weighted), (f, _, kw) in zip(got, calls):
        name = f.__name__
        ref = getattr(S, name)(torch.from_numpy(logits).float(), torch.from_numpy(target), "multiclass",
                               ignore_index=IGNORE, per_image=True, reduction="none", **kw).mean(1).numpy()
        np.testing.assert_allclose(values, ref, rtol=1e-4, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(total, ref.sum(), rtol=1e-4, err_msg=name)
        np.testing.assert_allclose(weighted, 2 * ref[0], rtol=1e-4, atol=1e-6, err_msg=name)


def test_precomputed_skeletons_equal_computed_ones():
    logits, target = make_case("random", "multiclass", (2, 3, 7, 8), seed=4)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass", axis=1)
    maps = S.skeleton_maps(target, "multiclass", batched=True, num_classes=3)
    got = _run(lambda t, x, m: [K.skeleton_recall_loss(t, x, "multiclass", from_logits=True, axis=1, **kw)
                                for kw in ({}, {"skeletons": m})], y_true, y_pred, maps)
    np.testing.assert_allclose(got[1], got[0], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"`skeletons` must have the shape of `y_pred`"):
        K.skeleton_recall_loss(y_true, y_pred, "multiclass", axis=1, skeletons=maps[..., :4])


def test_ignored_region_equals_the_cropped_image():
    logits, target = make_case("random", "multiclass", (1, 3, 8, 12), seed=2)
    t_ign = target.copy()
    t_ign[..., 6:] = IGNORE
    losses = [K.ClDiceLoss("multiclass", from_logits=True, ignore_class=IGNORE, iterations=3),
              K.SkeletonRecallLoss("multiclass", from_logits=True, ignore_class=IGNORE)]
    whole = _run(lambda t, x: [loss(t, x) for loss in losses], *_keras_inputs(logits, t_ign, "multiclass"))
    half = _run(lambda t, x: [loss(t, x) for loss in losses], *_keras_inputs(logits[..., :6], target[..., :6],
                                                                             "multiclass"))
    np.testing.assert_allclose(whole, half, rtol=1e-5)


def _value_and_grad_fn(fn):
    if keras.backend.backend() == "jax":
        import jax

        compiled = _jax_compiled(jax.value_and_grad(fn))
        return lambda x: tuple(np.asarray(o) for o in compiled(x))
    return lambda x: value_and_grad(fn, x)


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_finite_gradients_equal_torch_and_zero_on_ignored_pixels(mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("ignored", mode, (2, c, 5, 6), seed=6)
    y_true, y_pred = _keras_inputs(logits, target, mode)
    cl = K.ClDiceLoss(mode, from_logits=True, ignore_class=IGNORE, iterations=1)
    sr = K.SkeletonRecallLoss(mode, from_logits=True, ignore_class=IGNORE)
    fn = _value_and_grad_fn(lambda z: cl(y_true, z) + sr(y_true, z))
    value, grad = fn(y_pred)
    x = torch.from_numpy(logits).float().requires_grad_(True)
    t = torch.from_numpy(target)
    ref = S.cldice_loss(x, t, mode, ignore_index=IGNORE, iterations=1) + \
        S.skeleton_recall_loss(x, t, mode, ignore_index=IGNORE)
    ref.backward()
    np.testing.assert_allclose(value, float(ref), rtol=1e-4)
    np.testing.assert_allclose(grad, np.moveaxis(x.grad.numpy(), 1, -1), rtol=1e-3, atol=1e-6)
    ignored = y_true == IGNORE  # (N, H, W) for class indices: every class of the pixel
    assert np.all(grad[ignored] == 0) and np.abs(grad[~ignored]).sum() > 0
    sign = np.where(np.random.default_rng(0).random(y_pred.shape) < 0.5, -1e4, 1e4).astype(np.float32)
    value, grad = fn(sign)
    assert np.isfinite(value).all() and np.isfinite(grad).all()


def _compiled(fn):
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_compiled(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    return fn


def test_inside_jit_equals_torch():
    logits, target = make_case("ignored", "multiclass", (2, 3, 3, 4, 5), seed=8)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    loss = 0.5 * K.ClDiceLoss("multiclass", from_logits=True, ignore_class=IGNORE, iterations=2) + \
        K.SkeletonRecallLoss("multiclass", from_logits=True, ignore_class=IGNORE, classes=[1, 2])
    x, t = torch.from_numpy(logits).float(), torch.from_numpy(target)
    expected = 0.5 * S.cldice_loss(x, t, "multiclass", ignore_index=IGNORE, iterations=2) + \
        S.skeleton_recall_loss(x, t, "multiclass", ignore_index=IGNORE, classes=[1, 2])
    got = to_numpy(_compiled(lambda t, x: loss(t, x))(y_true, y_pred))
    np.testing.assert_allclose(got, float(expected), rtol=1e-4)


@pytest.mark.slow
def test_fit_and_saved_model_loads(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, 2)).astype(np.float32)
    y = (x[..., :1] > 0.3).astype(np.float32)
    inp = keras.Input((8, 8, 2))
    model = keras.Model(inp, keras.layers.Conv2D(1, 3, padding="same")(inp))
    loss = K.ClDiceLoss("binary", from_logits=True, iterations=1) + K.SkeletonRecallLoss("binary", from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [type(t) for t in loaded.loss.terms] == [K.ClDiceLoss, K.SkeletonRecallLoss]
    assert repr(loaded.loss) == repr(loss)


def test_mixed_float16_is_finite_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    logits, target = make_case("ignored", "multiclass", (2, 3, 5, 6), seed=9)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    losses = [K.ClDiceLoss("multiclass", from_logits=True, ignore_class=IGNORE, iterations=1),
              K.SkeletonRecallLoss("multiclass", from_logits=True, ignore_class=IGNORE)]
    values = _run(lambda t, x: [loss(t, keras.ops.cast(x, "float16")) for loss in losses], y_true, y_pred)
    assert all(v.dtype == np.float32 and np.isfinite(v) for v in values)


@pytest.mark.parametrize("cls,opts", [(K.ClDiceLoss, {"alpha": 0.3, "iterations": 4, "weight": [1.0, 2.0, 0.5]}),
                                      (K.SkeletonRecallLoss, {"classes": [1, 2], "smooth": 1.0})])
def test_config_round_trip_and_pickle(cls, opts):
    check_config_round_trip(cls, dict(from_logits=True, ignore_class=IGNORE, per_image=True, reduction="sum", **opts))


@pytest.mark.parametrize("make,error,match", [
    (lambda: K.ClDiceLoss("binary", alpha=1.5), ValueError, r"`alpha` must be <= 1.0"),
    (lambda: K.ClDiceLoss("binary", iterations=-1), ValueError, r"`iterations` must be >= 0"),
    (lambda: K.ClDiceLoss("binary", iterations=2.0), TypeError, r"`iterations` must be an int"),
    (lambda: K.SkeletonRecallLoss("binary", smooth=-1.0), ValueError, r"`smooth` must be >= 0.0"),
    (lambda: K.SkeletonRecallLoss("binary", axis=2), ValueError, "axis"),
    (lambda: K.SkeletonRecallLoss("multiclass", classes=[1, 1]), ValueError, "repeat"),
])
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()
