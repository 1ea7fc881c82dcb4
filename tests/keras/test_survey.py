"""The survey losses in Keras: equal to the float64 oracle (tests/oracle_survey.py) and the PyTorch front end on the
shared cases, their elementwise maps, per-image values and sample weights, and their argument checks."""

import numpy as np
import pytest
import torch

import oracle_survey as O
import seglosses.keras as K
from _kutil import backend_share, keras_class, keras_function, oracle_function, to_numpy, torch_function
from _kutil import channels_last as _channels_last, keras_inputs as _keras_inputs, keras_options as _keras_options
from cases import _SHAPES, CASES, IGNORE, KINDS, make_case, oracle_inputs
from seglosses._registry import LOSSES
from test_survey_oracle import _options

#: The losses swept here: the survey losses but the distance-based ones (test_boundary.py), whose oracle is in
#: tests/oracle_survey.py (options from tests/test_survey_oracle.py).
NAMES = [loss.name for loss in LOSSES if hasattr(O, loss.name) and loss.family != "boundary"]

def _params():
    """A third of the sweep of tests/test_survey_oracle.py (every option set on every kind x mode, on one of the
    three shapes in turn), shared out between the three backends: each case runs on one of them."""
    i = 0
    for name in NAMES:
        for kind, mode, shape in CASES:
            rank = _SHAPES[mode].index(shape)
            for j, opts in enumerate(_options(name, mode, shape[1])):
                if (j + KINDS.index(kind) + rank) % 3 == 0:
                    i += 1
                    if backend_share(i):
                        yield pytest.param(name, kind, mode, shape, opts,
                                           id=f"{name}-{kind}-{mode}-{len(shape) - 2}d-o{j}")


@pytest.mark.parametrize("name,kind,mode,shape,opts", list(_params()))
def test_equals_oracle_and_torch(name, kind, mode, shape, opts):
    logits, target, opts = oracle_inputs(kind, mode, shape, opts)
    expected = oracle_function(name)(logits, target, mode, reduction="mean", **opts)
    # the PyTorch front end's float32 sensitivity-specificity on class indices takes sum_{t != c} p_c^2 as a
    # difference of sums, whose rounding residue (~1e-6) is divided by `smooth` where class c covers every pixel;
    # this port takes that sum as 0 there: compare with its float64 values
    dtype = torch.float64 if name == "sensitivity_specificity" and mode == "multiclass" else torch.float32
    torch_value = float(torch_function(name)(torch.from_numpy(logits).to(dtype), torch.from_numpy(target), mode,
                                             **opts))
    y_true, y_pred = _keras_inputs(logits, target, mode)
    got = float(keras_class(name)(mode, **_keras_options(opts))(y_true, y_pred))
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-6, err_msg=f"oracle {name} {opts}")
    np.testing.assert_allclose(got, torch_value, rtol=2e-4, atol=2e-6, err_msg=f"torch {name} {opts}")


@pytest.mark.parametrize("name,opts", [("cross_entropy", {"label_smoothing": 0.1}),
                                       ("weighted_cross_entropy", {"beta": 3.0}),
                                       ("balanced_cross_entropy", {"beta": "auto", "label_smoothing": 0.1})])
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_pixel_map_equals_torch(name, opts, mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("ignored", mode, (2, c, 4, 5), seed=3)
    y_true, y_pred = _keras_inputs(logits, target, mode)
    got = to_numpy(keras_function(name)(y_true, y_pred, mode, from_logits=True, ignore_class=IGNORE, **opts))
    ref = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode, ignore_index=IGNORE,
                      reduction="none", **opts).numpy()
    np.testing.assert_allclose(got, ref if mode == "multiclass" else _channels_last(ref), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name,opts", [("exp_log", {}), ("unified_focal", {}), ("sensitivity_specificity", {}),
                                       ("log_cosh_dice", {})])
def test_per_image_values_average_to_the_loss_and_weigh_images(name, opts):
    cls = keras_class(name)
    logits, target = make_case("ignored", "multiclass", (3, 3, 4, 5), seed=5)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    loss = cls("multiclass", per_image=True, from_logits=True, ignore_class=IGNORE, **opts)
    values = to_numpy(loss.call(y_true, y_pred))
    assert values.shape == (3,)
    expected = oracle_function(name)(logits, target, "multiclass", per_image=True, ignore_index=IGNORE, **opts)
    np.testing.assert_allclose(float(loss(y_true, y_pred)), expected, rtol=2e-5)
    np.testing.assert_allclose(values.mean(), expected, rtol=2e-5)
    summed = cls("multiclass", per_image=True, from_logits=True, ignore_class=IGNORE, reduction="sum")
    got = float(summed(y_true, y_pred, sample_weight=np.array([2.0, 0.0, 1.0])))
    np.testing.assert_allclose(got, 2 * values[0] + values[2], rtol=2e-5)


@pytest.mark.parametrize("cls", [K.ExpLogLoss, K.UnifiedFocalLoss, K.ComboLoss, K.SensitivitySpecificityLoss])
def test_sample_weight_refused_on_batch_values(cls):
    logits, target = make_case("random", "multiclass", (2, 3, 4, 5), seed=1)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    with pytest.raises(ValueError, match="per_image" if cls is not K.ComboLoss else "refused by ComboLoss"):
        cls("multiclass", from_logits=True)(y_true, y_pred, sample_weight=np.array([1.0, 1.0]))


def test_log1m_softmax_is_finite_and_exact_at_saturation():
    from seglosses.keras._ops import log1m_softmax

    x = np.array([[[1e4, -1e4, 0.0]], [[50.0, 50.0, -3.0]]], dtype=np.float32)  # (B, S, C)
    logp = torch.log_softmax(torch.from_numpy(x), -1).numpy()
    got = to_numpy(log1m_softmax(x, logp))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0, 0], [-1e4, 0.0, 0.0], rtol=1e-6, atol=1e-6)
    ref = np.log1p(-torch.softmax(torch.from_numpy(x[1:]).double(), -1).numpy())
    np.testing.assert_allclose(got[1:], ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make,error,match", [
    (lambda: K.WeightedCrossEntropyLoss("binary", beta=-1.0), ValueError, "beta"),
    (lambda: K.WeightedCrossEntropyLoss("binary", beta="auto"), ValueError, "beta"),
    (lambda: K.BalancedCrossEntropyLoss("binary", beta=1.5), ValueError, "beta"),
    (lambda: K.BalancedCrossEntropyLoss("binary", beta="half"), ValueError, "'auto'"),
    (lambda: K.BalancedCrossEntropyLoss("multiclass", beta=[0.2, 1.2]), ValueError, r"beta\[1\]"),
    (lambda: K.CrossEntropyLoss("binary", label_smoothing=-0.1), ValueError, "label_smoothing"),
    (lambda: K.SensitivitySpecificityLoss("binary", r=2.0), ValueError, "`r`"),
    (lambda: K.LogCoshDiceLoss("binary", log_loss=True), TypeError, "log_loss"),
    (lambda: K.ExpLogLoss("binary", gamma_cross=-1.0), ValueError, "gamma_cross"),
    (lambda: K.ExpLogLoss("binary", class_frequency=[1.5]), ValueError, "class_frequency"),
    (lambda: K.ComboLoss("binary", alpha=1.5), ValueError, "alpha"),
    (lambda: K.UnifiedFocalLoss("binary", gamma=1.5), ValueError, "gamma"),
    (lambda: K.UnifiedFocalLoss("binary", lam=-0.5), ValueError, "lam"),
    (lambda: K.UnifiedFocalLoss("multiclass", background=-1), ValueError, "background"),
    (lambda: K.UnifiedFocalLoss("binary", asymmetric=1), TypeError, "asymmetric"),
])
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("loss,match", [
    (K.BalancedCrossEntropyLoss("multiclass", beta=[0.2, 0.3]), "beta"),
    (K.ExpLogLoss("multiclass", class_frequency=[1.0, 2.0]), "class_frequency"),
    (K.UnifiedFocalLoss("multiclass", background=3), "background"),
    (K.SensitivitySpecificityLoss("multiclass", classes=[0, 5]), "classes"),
    (K.WeightedCrossEntropyLoss("multiclass", ignore_class=255), "ignore_class"),
])
def test_bad_inputs_raise(loss, match):
    logits, target = make_case("soft" if "ignore" in match else "random", "multiclass", (2, 3, 4), seed=0)
    y_true, y_pred = _keras_inputs(logits, target, "multiclass")
    with pytest.raises(ValueError, match=match):
        loss(y_true, y_pred)
