"""TopK and OHEM cross-entropy and Poly-1 in Keras: equal to the float64 oracle (tests/oracle_hard_pixel.py) and the
PyTorch front end on the shared cases, per-image values and sample weights, Poly-1's map, and the argument checks."""

import numpy as np
import pytest
import torch

import oracle_hard_pixel as O
import seglosses.keras as K
from _kutil import backend_share, keras_class, keras_function, to_numpy, torch_function, value_and_grad
from _kutil import channels_last as _channels_last, keras_inputs as _keras_inputs, keras_options as _keras_options
from cases import _SHAPES, CASES, IGNORE, KINDS, make_case, oracle_inputs

#: The losses swept here (tests/keras/test_parity.py checks every loss is in one sweep).
NAMES = list(O.ORACLE)


def _params():
    """Two thirds of the sweep of tests/test_oracle.py for these losses, shared out between the three backends."""
    i = 0
    for name in NAMES:
        for kind, mode, shape in CASES:
            rank = _SHAPES[mode].index(shape)
            for j, opts in enumerate(O.OPTIONS[name](mode, shape[1])):
                if (j + KINDS.index(kind) + rank) % 3:
                    i += 1
                    if backend_share(i):
                        yield pytest.param(name, kind, mode, shape, opts,
                                           id=f"{name}-{kind}-{mode}-{len(shape) - 2}d-o{j}")


@pytest.mark.parametrize("name,kind,mode,shape,opts", list(_params()))
def test_equals_oracle_and_torch(name, kind, mode, shape, opts):
    logits, target, opts = oracle_inputs(kind, mode, shape, opts)
    expected = O.ORACLE[name](logits, target, mode, reduction="mean", **opts)
    torch_value = float(torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode,
                                             **opts))
    y_true, y_pred = _keras_inputs(logits, target, mode)
    got = float(keras_class(name)(mode, **_keras_options(opts))(y_true, y_pred))
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-6, err_msg=f"oracle {name} {opts}")
    np.testing.assert_allclose(got, torch_value, rtol=2e-4, atol=2e-6, err_msg=f"torch {name} {opts}")


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_poly_map_equals_torch(mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("ignored", mode, (2, c, 4, 5), seed=3)
    y_true, y_pred = _keras_inputs(logits, target, mode)
    opts = {"epsilon": 2.0, "gamma": 1.5, "alpha": 0.25, "label_smoothing": 0.1}
    got = to_numpy(K.poly_loss(y_true, y_pred, mode, from_logits=True, ignore_class=IGNORE, **opts))
    ref = torch_function("poly")(torch.from_numpy(logits).float(), torch.from_numpy(target), mode,
                                 ignore_index=IGNORE, reduction="none", **opts).numpy()
    np.testing.assert_allclose(got, ref if mode == "multiclass" else _channels_last(ref), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name,opts", [("topk_cross_entropy", {"k": 20.0}),
                                       ("ohem_cross_entropy", {"min_kept": 4, "threshold": 0.5})])
@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
def test_per_image_values_average_to_the_loss_and_weigh_images(name, opts, mode):
    cls = keras_class(name)
    logits, target = make_case("ignored", mode, (3, 3, 4, 5), seed=5)
    if mode == "multiclass":
        target[1] = IGNORE  # an image without valid pixels: value 0, left out of the mean
    y_true, y_pred = _keras_inputs(logits, target, mode)
    loss = cls(mode, per_image=True, from_logits=True, ignore_class=IGNORE, **opts)
    values = to_numpy(loss.call(y_true, y_pred))
    assert values.shape == (3,)
    expected = O.ORACLE[name](logits, target, mode, per_image=True, ignore_index=IGNORE, **opts)
    np.testing.assert_allclose(float(loss(y_true, y_pred)), expected, rtol=2e-5)
    rows = O.ORACLE[name](logits, target, mode, per_image=True, ignore_index=IGNORE, reduction="none", **opts)
    np.testing.assert_allclose(values, rows, rtol=2e-5, atol=1e-7)
    summed = cls(mode, per_image=True, from_logits=True, ignore_class=IGNORE, reduction="sum")
    got = float(summed(y_true, y_pred, sample_weight=np.array([2.0, 0.0, 1.0])))
    ref = to_numpy(summed.call(y_true, y_pred))
    np.testing.assert_allclose(got, 2 * ref[0] + ref[2], rtol=2e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_is_finite_and_zero_at_ignored_nan_logits(name):
    logits, target = make_case("ignored", "multiclass", (2, 3, 4, 5), seed=7)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    y_pred = np.where((y_true == IGNORE)[..., None], np.nan, y_pred).astype(np.float32)
    opts = {"min_kept": 5} if name == "ohem_cross_entropy" else {}
    loss = keras_class(name)("multiclass", from_logits=True, ignore_class=IGNORE, **opts)
    value, grad = value_and_grad(lambda z: loss(y_true, z), y_pred)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert (grad[y_true == IGNORE] == 0).all()


@pytest.mark.parametrize("make,error,match", [
    (lambda: K.TopKCrossEntropyLoss("binary", k=0.0), ValueError, "`k`"),
    (lambda: K.TopKCrossEntropyLoss("binary", k=101.0), ValueError, "`k`"),
    (lambda: K.TopKCrossEntropyLoss("binary", per_image=1), TypeError, "per_image"),
    (lambda: K.OHEMCrossEntropyLoss("binary", threshold=1.5), ValueError, "threshold"),
    (lambda: K.OHEMCrossEntropyLoss("binary", min_kept=-1), ValueError, "min_kept"),
    (lambda: K.OHEMCrossEntropyLoss("binary", min_kept=2.5), TypeError, "min_kept"),
    (lambda: K.PolyLoss("binary", epsilon=-1.5), ValueError, "epsilon"),
    (lambda: K.PolyLoss("binary", alpha=1.5), ValueError, "alpha"),
])
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("name", NAMES)
def test_function_equals_class_call(name):
    logits, target = make_case("random", "multiclass", (2, 3, 4, 5), seed=2)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    got = to_numpy(keras_function(name)(y_true, y_pred, "multiclass", from_logits=True))
    np.testing.assert_array_equal(got, to_numpy(keras_class(name)("multiclass", from_logits=True).call(y_true, y_pred)))
