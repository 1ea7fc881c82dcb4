"""The confusion family in Keras (MCC, generalized Wasserstein Dice): equal to the float64 oracle
(tests/oracle_confusion.py) and the PyTorch front end on the shared cases (options of tests/test_oracle.py), with
(C, C) distance matrices, gradients at saturated logits, sample weights and saving."""

import keras
import numpy as np
import pytest
import torch

import oracle_confusion as O
import seglosses.keras as K
from _kutil import backend_share, keras_class, oracle_function, to_numpy, torch_function, value_and_grad
from _kutil import keras_inputs as _keras_inputs
from cases import _SHAPES, CASES, KINDS, make_case, oracle_inputs
from seglosses._registry import LOSSES
from test_oracle import _options

#: The losses swept here: the confusion family of seglosses._registry.
NAMES = [loss.name for loss in LOSSES if loss.family == "confusion"]
M3 = [[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1.0, 0.5, 0.0]]


def _params():
    """Half of the sweep of tests/test_oracle.py (every option set on every kind x mode, on one of the shapes in
    turn), shared out between the three backends."""
    i = 0
    for name in NAMES:
        for kind, mode, shape in CASES:
            rank = _SHAPES[mode].index(shape)
            for j, opts in enumerate(_options(name, mode, shape[1])):
                if (j + KINDS.index(kind) + rank) % 2 == 0:
                    i += 1
                    if backend_share(i):
                        yield pytest.param(name, kind, mode, shape, opts,
                                           id=f"{name}-{kind}-{mode}-{len(shape) - 2}d-o{j}")


def _check(name, kind, mode, shape, opts):
    """Keras (float32) equals the float64 oracle and the PyTorch front end (float32)."""
    logits, target, opts = oracle_inputs(kind, mode, shape, opts)
    expected = oracle_function(name)(logits, target, mode, reduction="mean", **opts)
    torch_value = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode, **opts)
    kopts = {("ignore_class" if k == "ignore_index" else k): v for k, v in opts.items()}
    kopts["from_logits"] = opts.get("from_logits", True)
    got = float(keras_class(name)(mode, **kopts)(*_keras_inputs(logits, target, mode)))
    # MCC at s = 0 is discontinuous where a margin is 0 (0/0, its limit): on the saturated, empty and full kinds a
    # float32 probability that rounds to 0 or 1 empties a margin the float64 oracle sees as ~1e-13, so there the
    # float32 value is compared with the PyTorch front end's float32 value only
    if not (name == "mcc" and opts.get("smooth", 1e-5) == 0 and kind in ("saturated", "empty", "full")):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-6, err_msg=f"oracle {name} {kopts}")
    np.testing.assert_allclose(got, float(torch_value), rtol=2e-4, atol=2e-6, err_msg=f"torch {name} {kopts}")


@pytest.mark.parametrize("name,kind,mode,shape,opts", list(_params()))
def test_equals_oracle_and_torch(name, kind, mode, shape, opts):
    _check(name, kind, mode, shape, opts)


@pytest.mark.parametrize("kind", ["random", "ignored", "saturated", "full"])
@pytest.mark.parametrize("opts", [{}, {"weighting_mode": "GDL", "per_image": True}, {"from_logits": False}])
def test_gwdl_distance_matrix_equals_oracle_and_torch(kind, opts):
    m = [[0.0, 2.0, 1.0], [2.0, 0.0, 0.5], [3.0, 0.5, 0.0]]
    _check("generalized_wasserstein_dice", kind, "multiclass", (2, 3, 5, 6), {"distance_matrix": m, **opts})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_gradient_is_finite_at_saturated_logits(name, mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("saturated", mode, (2, c, 4, 5), seed=4)
    y_true, y_pred = _keras_inputs(logits, target, mode)
    loss = keras_class(name)(mode, from_logits=True, smooth=0.0)
    value, grad = value_and_grad(lambda x: loss(y_true, x), y_pred * np.float32(1e4 / 30))
    assert np.isfinite(value) and np.isfinite(grad).all()
    t_value = torch_function(name)(torch.from_numpy(logits).float() * (1e4 / 30), torch.from_numpy(target), mode,
                                   smooth=0.0)
    np.testing.assert_allclose(float(value), float(t_value), rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize("name", NAMES)
def test_per_image_values_and_sample_weight(name):
    logits, target = make_case("random", "multiclass", (3, 3, 4, 5), seed=5)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    loss = keras_class(name)("multiclass", from_logits=True, per_image=True, reduction="none")
    values = to_numpy(loss(y_true, y_pred))
    want = torch_function(name)(torch.from_numpy(logits), torch.from_numpy(target), "multiclass", per_image=True,
                                reduction="none")
    want = want.mean(-1) if want.dim() == 2 else want  # MCC: one value per class, the mean per image
    np.testing.assert_allclose(values, want.numpy(), rtol=2e-4, atol=2e-6)
    sw = np.array([1.0, 0.0, 2.0], dtype=np.float32)
    summed = float(keras_class(name)("multiclass", from_logits=True, per_image=True, reduction="sum")(
        y_true, y_pred, sample_weight=sw))
    np.testing.assert_allclose(summed, float((values * sw).sum()), rtol=1e-5)
    with pytest.raises(ValueError, match="sample_weight"):
        keras_class(name)("multiclass", from_logits=True)(y_true, y_pred, sample_weight=sw)


def test_gwdl_errors_and_config(tmp_path):
    with pytest.raises(ValueError, match="`distance_matrix` must be 0 on its diagonal"):
        K.GeneralizedWassersteinDiceLoss("multiclass", distance_matrix=[[1.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="`weighting_mode` must be one of"):
        K.GeneralizedWassersteinDiceLoss("multiclass", weighting_mode="gdl")
    logits, target = make_case("random", "multiclass", (2, 3, 4, 5), seed=6)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    with pytest.raises(ValueError, match=r"`distance_matrix` must have shape \(3, 3\)"):
        K.GeneralizedWassersteinDiceLoss("multiclass", distance_matrix=[[0.0, 1.0], [1.0, 0.0]])(y_true, y_pred)
    loss = K.GeneralizedWassersteinDiceLoss("multiclass", distance_matrix=np.array(M3), weighting_mode="GDL",
                                            from_logits=True)
    again = K.GeneralizedWassersteinDiceLoss.from_config(loss.get_config())
    np.testing.assert_allclose(float(again(y_true, y_pred)), float(loss(y_true, y_pred)), rtol=1e-6)


def test_model_trains_saves_and_loads(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 6, 2)).astype("float32")
    y = (x[..., :1] > 0).astype("int32")[..., 0]
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 1)])
    loss = K.MCCLoss("multiclass", from_logits=True) + K.GeneralizedWassersteinDiceLoss(
        "multiclass", distance_matrix=M3, from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: the losses are registered under "seglosses"
    assert [type(t) for t in loaded.loss.terms] == [K.MCCLoss, K.GeneralizedWassersteinDiceLoss]
    assert repr(loaded.loss) == repr(loss)


def test_mcc_equals_torch_on_the_largest_class_of_a_saturated_softmax():
    # log(1 - p) of the largest class from the other logits' logsumexp: tn and fn exact where p rounds to 1
    logits = np.zeros((1, 3, 4), dtype=np.float64)
    logits[0, 0] = [40.0, 40.0, -40.0, 5.0]
    target = np.array([[0, 0, 1, 2]])
    got = float(K.MCCLoss("multiclass", from_logits=True, smooth=0.0)(*_keras_inputs(logits, target, "multiclass")))
    want = O.mcc(logits, target, "multiclass", smooth=0.0)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
