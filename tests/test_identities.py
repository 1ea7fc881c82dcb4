"""Identities on values AND gradients, peer formulas, and numbers users derived by hand."""

import pytest
import torch
import torch.nn.functional as F

import seglosses as S


def _grad(fn, x):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    out.sum().backward()
    return out.detach(), x.grad


def _same(fa, fb, x, rtol=1e-10, atol=1e-12):
    va, ga = _grad(fa, x)
    vb, gb = _grad(fb, x)
    torch.testing.assert_close(va, vb, rtol=rtol, atol=atol)
    torch.testing.assert_close(ga, gb, rtol=rtol, atol=atol)


@pytest.fixture
def mc():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64) * 3
    t = torch.randint(0, 4, (3, 5, 6), generator=g)
    t[0, :2] = 255
    return x, t


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", [{}, {"weight": [0.5, 1.0, 2.0, 3.0]}, {"ignore_index": 255},
                                  {"label_smoothing": 0.2}, {"weight": [0.5, 1.0, 2.0, 3.0], "ignore_index": 255,
                                                             "label_smoothing": 0.1}])
def test_softmax_focal_gamma0_is_cross_entropy(mc, opts, reduction):
    x, t = mc
    if "ignore_index" not in opts:
        t = t.clamp(max=3)
    w = opts.get("weight")
    ref_opts = dict(opts, weight=None if w is None else torch.tensor(w, dtype=torch.float64))
    ref_opts.setdefault("ignore_index", -100)
    _same(lambda z: S.focal_loss(z, t, "multiclass", gamma=0.0, reduction=reduction, **opts),
          lambda z: F.cross_entropy(z, t, reduction=reduction, **ref_opts), x)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_focal_gamma0_probability_targets_is_cross_entropy(mc, reduction):
    x, _ = mc
    y = torch.softmax(torch.randn_like(x), 1)
    w = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    _same(lambda z: S.focal_loss(z, y, "multiclass", gamma=0.0, weight=w, label_smoothing=0.1, reduction=reduction),
          lambda z: F.cross_entropy(z, y, weight=w, label_smoothing=0.1, reduction=reduction), x)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("mode,shape", [("binary", (3, 1, 5, 6)), ("binary", (7,)), ("multilabel", (3, 4, 5))])
def test_sigmoid_focal_gamma0_is_bce(mode, shape, reduction):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 4
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    c = 1 if mode == "binary" else shape[1]
    w = torch.linspace(0.5, 2.0, c, dtype=torch.float64)
    wb = w.view(1, c, *([1] * (len(shape) - 2))) if len(shape) > 1 else w
    _same(lambda z: S.focal_loss(z, y, mode, gamma=0.0, weight=w, reduction=reduction),
          lambda z: F.binary_cross_entropy_with_logits(z, y, weight=wb.expand_as(z), reduction=reduction), x)


def test_focal_over_ce_ratio_is_alpha_t_times_modulating_factor():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 1, 8, generator=g, dtype=torch.float64) * 3
    y = (torch.rand(4, 1, 8, generator=g) > 0.5).double()
    fl = S.focal_loss(x, y, "binary", alpha=0.25, gamma=2.0, reduction="none")
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    one_minus_pt = torch.where(y > 0, torch.sigmoid(-x), torch.sigmoid(x))  # 1 - p_t without cancellation
    at = torch.where(y > 0, 0.25, 0.75)
    torch.testing.assert_close(fl / ce, at * one_minus_pt ** 2, rtol=1e-10, atol=0)
    t = torch.randint(0, 3, (4, 8), generator=g)
    xm = torch.randn(4, 3, 8, generator=g, dtype=torch.float64)
    fl = S.focal_loss(xm, t, "multiclass", alpha=[0.2, 0.5, 0.3], gamma=1.5, reduction="none")
    ce = F.cross_entropy(xm, t, reduction="none")
    one_minus_pt = -torch.expm1(torch.log_softmax(xm, 1).gather(1, t.unsqueeze(1)).squeeze(1))
    at = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)[t]
    torch.testing.assert_close(fl / ce, at * one_minus_pt ** 1.5, rtol=1e-10, atol=0)


def _torchvision_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction="none"):
    # torchvision/ops/focal_loss.py (BSD-3), the formula as published.
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2), (-1, 2), (0.6, 0.5), (0.25, 0)])
def test_sigmoid_focal_loss_matches_torchvision_formula(alpha, gamma, reduction):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 7, generator=g, dtype=torch.float64) * 3
    y = torch.rand(5, 7, generator=g, dtype=torch.float64)
    y[0] = (y[0] > 0.5).double()
    _same(lambda z: S.sigmoid_focal_loss(z, y, alpha, gamma, reduction),
          lambda z: _torchvision_sigmoid_focal_loss(z, y, alpha, gamma, reduction), x, rtol=1e-9, atol=1e-12)


def test_tversky_limits_are_dice_and_jaccard(mc):
    x, t = mc
    for mode, target, z in [("multiclass", t, x), ("multilabel", (torch.rand_like(x) > 0.5).double(), x),
                            ("multilabel", torch.rand_like(x), x)]:
        kw = {"ignore_index": 255} if target is t else {}
        for per_image in (False, True):
            # Dice's numerator 2 tp + s is Tversky's (tp + s/2) doubled: the identity holds with smooth s/2.
            _same(lambda a: S.tversky_loss(a, target, mode, alpha=0.5, beta=0.5, smooth=0.5, per_image=per_image,
                                           **kw),
                  lambda a: S.dice_loss(a, target, mode, smooth=1.0, per_image=per_image, **kw), z)
            _same(lambda a: S.tversky_loss(a, target, mode, alpha=0.5, beta=0.5, smooth=0.0, per_image=per_image,
                                           **kw),
                  lambda a: S.dice_loss(a, target, mode, smooth=0.0, per_image=per_image, **kw), z)
            _same(lambda a: S.tversky_loss(a, target, mode, alpha=1.0, beta=1.0, per_image=per_image, **kw),
                  lambda a: S.jaccard_loss(a, target, mode, per_image=per_image, **kw), z)
            _same(lambda a: S.focal_tversky_loss(a, target, mode, gamma=1.0, per_image=per_image, **kw),
                  lambda a: S.tversky_loss(a, target, mode, per_image=per_image, **kw), z)


@pytest.mark.parametrize("p,y,expected", [(0.97, 1, 0.0009), (0.3, 1, 0.49), (0.8, 0, 0.64), (0.1, 0, 0.01)])
def test_modulating_factor_hand_values(p, y, expected):
    # (1 - p_t)^2 = focal / CE with alpha=None: the numbers users compute by hand.
    probs, target = torch.tensor([p], dtype=torch.float64), torch.tensor([float(y)], dtype=torch.float64)
    fl = S.focal_loss(probs, target, "binary", gamma=2.0, from_logits=False, reduction="sum")
    ce = -torch.log(probs if y else 1 - probs).sum()
    assert (fl / ce).item() == pytest.approx(expected, rel=1e-9)


def test_users_keras_example():
    y_true, y_pred = torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.6, 0.3, 0.7])
    kw = dict(alpha=0.25, gamma=2.0, from_logits=False, reduction="sum")
    assert S.focal_loss(y_pred, y_true, "binary", **kw).item() == pytest.approx(0.0525338, abs=5e-8)
    two = S.focal_loss(y_pred.repeat(2), y_true.repeat(2), "binary", **kw)
    assert two.item() == pytest.approx(0.1050675, abs=5e-8)


def test_dice_hand_value():
    # Two pixels, class 0 then 1, probabilities p0 = [0.8, 0.3]: tp0 = 0.8, fp0 = 0.3, fn0 = 0.2 -> Dice0 = 1.6/2.1;
    # class 1: p1 = [0.2, 0.7], tp1 = 0.7, fp1 = 0.2, fn1 = 0.3 -> Dice1 = 1.4/1.9.
    probs = torch.tensor([[[0.8, 0.3], [0.2, 0.7]]], dtype=torch.float64)
    t = torch.tensor([[0, 1]])
    got = S.dice_loss(probs, t, "multiclass", smooth=0.0, from_logits=False, reduction="none")
    torch.testing.assert_close(got, torch.tensor([1 - 1.6 / 2.1, 1 - 1.4 / 1.9], dtype=torch.float64))


def test_empty_class_policy():
    # Class 2 absent from the target: no prediction -> loss 0; predicted mass -> loss near 1.
    t = torch.zeros(1, 16, dtype=torch.long)
    x = torch.full((1, 3, 16), -50.0, dtype=torch.float64)
    x[:, 0] = 50.0
    loss = S.dice_loss(x, t, "multiclass", reduction="none")
    assert loss[2].item() == pytest.approx(0.0, abs=1e-9)
    x[:, 2, :4] = 100.0
    loss = S.dice_loss(x, t, "multiclass", reduction="none")
    assert loss[2].item() > 0.99
    # smooth = 0, nothing predicted nor present (probabilities exactly 0): loss 0, not NaN; gradient finite.
    z = torch.zeros((1, 3, 16), dtype=torch.float64)
    z[:, 0] = 1.0
    z.requires_grad_(True)
    loss = S.dice_loss(z, t, "multiclass", smooth=0.0, from_logits=False, reduction="none")
    assert loss[2].item() == 0.0
    loss.sum().backward()
    assert torch.isfinite(z.grad).all()


# ------------------------------------------------------------------------------- Poly-1, TopK and OHEM limits ---
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", [{}, {"gamma": 2.0, "alpha": 0.25}, {"weight": [0.5, 1.0, 2.0]},
                                  {"label_smoothing": 0.1, "gamma": 0.5}])
def test_poly_at_epsilon_zero_is_focal(mode, reduction, opts):
    # Leng et al. 2022: Poly-1 with epsilon = 0 is the loss it perturbs (same normaliser, same ignored pixels)
    from _losses import torch_case

    opts = dict(opts)
    if mode == "binary":
        opts.pop("weight", None)
    opts.setdefault("gamma", 0.0)
    x, t = torch_case(mode, n=2, c=3)
    _same(lambda z: S.poly_loss(z, t, mode, epsilon=0.0, ignore_index=255, reduction=reduction, **opts),
          lambda z: S.focal_loss(z, t, mode, ignore_index=255, reduction=reduction, **opts), x)


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_poly_gamma0_is_cross_entropy_plus_epsilon_one_minus_pt(mode):
    # Leng et al. 2022, eq. 3: CE + eps (1 - p_t); p_t from F.softmax / torch.sigmoid, CE from torch
    from _losses import torch_case

    x, t = torch_case(mode, n=2, c=3, ignore=False)
    if mode == "multiclass":
        pt = F.softmax(x, 1).gather(1, t.unsqueeze(1)).squeeze(1)
        ce = F.cross_entropy(x, t, reduction="none")
    else:
        p = torch.sigmoid(x)
        pt = p * t + (1 - p) * (1 - t)
        ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    torch.testing.assert_close(S.poly_loss(x, t, mode, epsilon=2.5, reduction="none"), ce + 2.5 * (1 - pt))


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("per_image", [False, True])
def test_topk_at_100_percent_and_ohem_keeping_all_are_cross_entropy(mode, per_image):
    # k = 100 keeps every valid pixel, as does OHEM with threshold 1 and min_kept >= the pixel count: the mean
    # cross-entropy over the valid pixels (per image: the mean of the images' means)
    from _losses import torch_case

    x, t = torch_case(mode, n=3, c=3)
    if per_image:
        def ce(z):
            return torch.stack([S.cross_entropy_loss(z[i:i + 1], t[i:i + 1], mode, ignore_index=255)
                                for i in range(3)]).mean()
    else:
        def ce(z):
            return S.cross_entropy_loss(z, t, mode, ignore_index=255)
    _same(lambda z: S.topk_cross_entropy_loss(z, t, mode, k=100.0, ignore_index=255, per_image=per_image), ce, x)
    _same(lambda z: S.ohem_cross_entropy_loss(z, t, mode, threshold=1.0, min_kept=10 ** 6, ignore_index=255,
                                              per_image=per_image), ce, x)
