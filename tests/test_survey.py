"""Identities between the survey losses and the core ones, and the Unified Focal loss against its reference code."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import seglosses as S
from _losses import torch_case


def _case(mode, **kw):
    return torch_case(mode, ignore=False, **kw)


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_cross_entropy_family_limits(mode):
    x, t = _case(mode)
    bce = F.binary_cross_entropy_with_logits(x, t)
    torch.testing.assert_close(S.cross_entropy_loss(x, t, mode), bce)
    torch.testing.assert_close(S.weighted_cross_entropy_loss(x, t, mode, beta=1.0), bce)
    torch.testing.assert_close(S.balanced_cross_entropy_loss(x, t, mode, beta=0.5), bce / 2)
    pos = F.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor(3.0, dtype=x.dtype))
    torch.testing.assert_close(S.weighted_cross_entropy_loss(x, t, mode, beta=3.0), pos)


def test_cross_entropy_equals_torch_multiclass():
    x, t = torch_case("multiclass", ignore=True)
    w = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    ref = F.cross_entropy(x, t, weight=w, ignore_index=255, label_smoothing=0.1)
    torch.testing.assert_close(S.cross_entropy_loss(x, t, "multiclass", weight=w, ignore_index=255,
                                                    label_smoothing=0.1), ref)


def test_multiclass_one_vs_rest_equals_sigmoid_form_on_two_classes():
    # Two classes with logits (0, z): softmax p_1 = sigmoid(z), so the one-vs-rest sum over both classes equals the
    # binary loss of class 1 plus that of class 0 (whose target is 1 - y and probability 1 - p).
    x, t = _case("binary")
    two = torch.cat([torch.zeros_like(x), x], 1)
    idx = t[:, 0].long()
    got = S.balanced_cross_entropy_loss(two, idx, "multiclass", beta=0.7, reduction="sum")
    y = t
    ref = (S.balanced_cross_entropy_loss(x, y, "binary", beta=0.7, reduction="sum")
           + S.balanced_cross_entropy_loss(-x, 1 - y, "binary", beta=0.7, reduction="sum"))
    torch.testing.assert_close(got, ref)


def test_combo_endpoints_and_exp_log_limit():
    x, t = _case("multiclass")
    torch.testing.assert_close(S.combo_loss(x, t, "multiclass", alpha=1.0, beta=0.3),
                               S.balanced_cross_entropy_loss(x, t, "multiclass", beta=0.3))
    torch.testing.assert_close(S.combo_loss(x, t, "multiclass", alpha=0.0, smooth=0.5),
                               S.dice_loss(x, t, "multiclass", smooth=0.5))
    # gamma_dice = 1, no cross part: the Dice part is -ln Dice, the core's log_loss
    torch.testing.assert_close(S.exp_log_loss(x, t, "multiclass", w_dice=1.0, w_cross=0.0, gamma_dice=1.0),
                               S.dice_loss(x, t, "multiclass", smooth=1.0, log_loss=True))


def test_log_cosh_dice_is_between_half_square_and_the_dice_loss():
    x, t = _case("multiclass")
    d = S.dice_loss(x, t, "multiclass", reduction="none")
    lc = S.log_cosh_dice_loss(x, t, "multiclass", reduction="none")
    torch.testing.assert_close(lc, torch.log(torch.cosh(d)))
    assert (lc <= d * d / 2 + 1e-12).all() and (lc >= d * d / 2 - d ** 4 / 12 - 1e-12).all()


@pytest.mark.parametrize("asymmetric", [True, False])
def test_unified_focal_binary_equals_two_class_multiclass(asymmetric):
    x, t = _case("binary")
    two = torch.cat([torch.zeros_like(x), x], 1)
    opts = {"asymmetric": asymmetric, "delta": 0.7, "gamma": 0.4, "per_image": True}
    torch.testing.assert_close(S.unified_focal_loss(x, t, "binary", **opts),
                               S.unified_focal_loss(two, t[:, 0].long(), "multiclass", **opts))


def _reference_unified(y_true, y_pred, weight, delta, gamma, asymmetric, epsilon=1e-7):
    """A NumPy port of mlyg/unified-focal-loss (loss_functions.py, 2-D, channels-last, background = channel 0)."""
    y_pred = np.clip(y_pred, epsilon, 1.0 - epsilon)
    ce = -y_true * np.log(y_pred)
    back = (1 - delta) * np.power(1 - y_pred[..., 0], gamma) * ce[..., 0]
    fore = delta * (ce[..., 1] if asymmetric else np.power(1 - y_pred[..., 1], gamma) * ce[..., 1])
    focal = np.mean(back + fore)
    tp = np.sum(y_true * y_pred, axis=(1, 2))
    fn = np.sum(y_true * (1 - y_pred), axis=(1, 2))
    fp = np.sum((1 - y_true) * y_pred, axis=(1, 2))
    ti = (tp + epsilon) / (tp + delta * fn + (1 - delta) * fp + epsilon)
    back_t = (1 - ti[:, 0]) if asymmetric else (1 - ti[:, 0]) * np.power(1 - ti[:, 0], -gamma)
    fore_t = (1 - ti[:, 1]) * np.power(1 - ti[:, 1], -gamma)
    ftl = np.mean(np.stack([back_t, fore_t], -1))
    return weight * ftl + (1 - weight) * focal


@pytest.mark.parametrize("asymmetric", [True, False])
def test_unified_focal_equals_reference_code(asymmetric):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 2, 6, 7, generator=g, dtype=torch.float64)
    t = torch.randint(0, 2, (2, 6, 7), generator=g)
    probs = torch.softmax(x, 1).permute(0, 2, 3, 1).numpy()
    onehot = F.one_hot(t, 2).double().numpy()
    ref = _reference_unified(onehot, probs, 0.5, 0.6, 0.5, asymmetric)
    got = S.unified_focal_loss(x, t, "multiclass", asymmetric=asymmetric, per_image=True)
    np.testing.assert_allclose(got.item(), ref, rtol=1e-6)


def test_log_one_minus_softmax_is_finite_and_exact_at_saturation():
    from seglosses.core.pixel import log1m_softmax

    x = torch.tensor([[[1e4], [-1e4], [0.0]], [[50.0], [50.0], [-3.0]]], dtype=torch.float32)
    got = log1m_softmax(x, torch.log_softmax(x, 1))
    assert torch.isfinite(got).all()
    # class 0 of the first pixel: 1 - p = (e^-2e4 + e^-1e4) / (1 + ...) -> log = -1e4; ties: log(1/2) exactly
    torch.testing.assert_close(got[0, :, 0], torch.tensor([-1e4, 0.0, 0.0]))
    ref = torch.log1p(-torch.softmax(x[1:].double(), 1)).float()
    torch.testing.assert_close(got[1:], ref)


@pytest.mark.parametrize("per_image", [False, True])
def test_sensitivity_specificity_float32_when_one_class_covers_every_pixel(per_image):
    # The negatives' squared errors of class-index targets are a difference of two sums; where a class covers every
    # valid pixel it must be exactly 0 (not a float32 residue divided by smooth).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 9, generator=g, dtype=torch.float64) * 3
    t = torch.zeros(2, 7, 9, dtype=torch.long)
    ref = S.sensitivity_specificity_loss(x, t, "multiclass", per_image=per_image, reduction="none")
    got = S.sensitivity_specificity_loss(x.float(), t, "multiclass", per_image=per_image, reduction="none")
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-6)


def test_survey_argument_errors():
    x, t = _case("multiclass")
    xb, tb = _case("binary")
    cases = [
        (lambda: S.weighted_cross_entropy_loss(x, t, "multiclass", beta=-1.0), ValueError, r"`beta` must be >= 0.0"),
        (lambda: S.balanced_cross_entropy_loss(xb, tb, "binary", beta=1.5), ValueError, r"`beta` must be <= 1.0"),
        (lambda: S.balanced_cross_entropy_loss(x, t, "multiclass", beta="half"), ValueError,
         r"`beta` must be a number, a sequence of 3 numbers or 'auto'; got 'half'"),
        (lambda: S.weighted_cross_entropy_loss(x, t, "multiclass", beta="auto"), ValueError,
         r"`beta` must be a number or a sequence of 3 numbers"),
        (lambda: S.balanced_cross_entropy_loss(x, t, "multiclass", beta=[0.5, 0.5]), ValueError,
         r"`beta` must have shape \(3,\)"),
        (lambda: S.sensitivity_specificity_loss(x, t, "multiclass", r=2.0), ValueError, r"`r` must be <= 1.0"),
        (lambda: S.exp_log_loss(x, t, "multiclass", gamma_cross=-0.1), ValueError, r"`gamma_cross` must be >= 0.0"),
        (lambda: S.exp_log_loss(x, t, "multiclass", class_frequency=[1.0]), ValueError,
         r"`class_frequency` must have shape \(3,\)"),
        (lambda: S.combo_loss(x, t, "multiclass", alpha=1.5), ValueError, r"`alpha` must be <= 1.0"),
        (lambda: S.unified_focal_loss(x, t, "multiclass", gamma=1.5), ValueError, r"`gamma` must be <= 1.0"),
        (lambda: S.unified_focal_loss(x, t, "multiclass", delta=-0.5), ValueError, r"`delta` must be >= 0.0"),
        (lambda: S.unified_focal_loss(x, t, "multiclass", lam=2), ValueError, r"`lam` must be <= 1.0"),
        (lambda: S.unified_focal_loss(x, t, "multiclass", background=3), ValueError,
         r"`background` must be a class index in \[0, 3\); got 3"),
        (lambda: S.unified_focal_loss(x, t, "multiclass", asymmetric="yes"), TypeError, r"`asymmetric` must be a bool"),
        (lambda: S.exp_log_loss(x, t, "multiclass", reduction="none"), ValueError, r"'mean' or 'sum' for a compound"),
    ]
    for fn, error, match in cases:
        with pytest.raises(error, match=match):
            fn()
