"""The confusion family (MCC, generalized Wasserstein Dice): peers (MONAI, smp re-derived), the float64 oracle with
distance matrices, identities, accuracy in float32 at saturated logits, degenerate margins, the Module's matrix."""

import numpy as np
import pytest
import torch

import oracle_confusion
import seglosses as S
from cases import CASES, oracle_inputs

monai_losses = pytest.importorskip("monai.losses")

M3 = [[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1.0, 0.5, 0.0]]


def _case(n=2, c=3, hw=(6, 7), seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *hw, generator=g, dtype=torch.float64) * scale
    t = torch.randint(0, c, (n, *hw), generator=g)
    return x, t


# ------------------------------------------------------------------------------------------------ GWDL vs MONAI ---
@pytest.mark.parametrize("weighting", ["default", "GDL"])
@pytest.mark.parametrize("matrix", [M3, None, [[0.0, 2.0, 4.0], [2.0, 0.0, 1.0], [4.0, 3.0, 0.0]]],
                         ids=["brats-like", "0-1", "unnormalised-asymmetric"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gwdl_equals_monai(weighting, matrix, reduction):
    # MONAI's GeneralizedWassersteinDiceLoss (monai/losses/dice.py): one value per image, smooth_nr = smooth_dr = 1e-5
    x, t = _case(hw=(5, 4, 3))
    m = np.array(matrix if matrix is not None else 1 - np.eye(3))
    ref = monai_losses.GeneralizedWassersteinDiceLoss(m, weighting_mode=weighting, reduction=reduction)(x, t)
    got = S.generalized_wasserstein_dice_loss(x, t, "multiclass", distance_matrix=matrix, weighting_mode=weighting,
                                              per_image=True, reduction=reduction)
    # (MONAI makes its GDL weights 1 / (volume + 1) in float32, whatever the input's dtype: 1e-6 there)
    torch.testing.assert_close(got, ref.to(got.dtype), rtol=1e-6 if weighting == "GDL" else 1e-10, atol=1e-12)


def test_gwdl_monai_docstring_example_is_zero():
    x = torch.tensor([[[1000.0, 0, 0], [0, 1000.0, 0], [0, 0, 1000.0]]]).permute(0, 2, 1)  # (1, C=3, S=3)
    got = S.generalized_wasserstein_dice_loss(x, torch.tensor([[0, 1, 2]]), "multiclass", distance_matrix=M3)
    assert got.item() == 0.0


@pytest.mark.parametrize("weighting", ["default", "GDL"])
def test_gwdl_gradient_equals_monai(weighting):
    x, t = _case(seed=3)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    monai_losses.GeneralizedWassersteinDiceLoss(np.array(M3), weighting_mode=weighting)(xa, t).backward()
    S.generalized_wasserstein_dice_loss(xb, t, "multiclass", distance_matrix=M3, weighting_mode=weighting,
                                        per_image=True).backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-6 if weighting == "GDL" else 1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------- GWDL: the oracle ---
def _matrix_params():
    for kind, mode, shape in CASES:
        if mode == "multiclass" and kind != "soft":
            for j, opts in enumerate([{}, {"per_image": True, "weighting_mode": "GDL"}, {"smooth": 0.0},
                                      {"from_logits": False, "per_image": True}]):
                yield pytest.param(kind, shape, opts, id=f"{kind}-{len(shape) - 2}d-o{j}")


@pytest.mark.parametrize("kind,shape,opts", list(_matrix_params()))
def test_gwdl_with_a_distance_matrix_equals_the_oracle(kind, shape, opts):
    # (tests/test_oracle.py sweeps the 0-1 distance and the two-state matrices; here: (C, C) matrices)
    c = shape[1]
    m = [[0.0 if i == j else 0.25 + abs(i - j) * 0.5 for j in range(c)] for i in range(c)]
    m[0][c - 1] = 3.0  # asymmetric, largest entry != 1
    logits, target, opts = oracle_inputs(kind, "multiclass", shape, opts)
    for reduction in ("none", "mean", "sum"):
        expected = oracle_confusion.generalized_wasserstein_dice(logits, target, "multiclass", distance_matrix=m,
                                                                 reduction=reduction, **opts)
        got = S.generalized_wasserstein_dice_loss(torch.from_numpy(logits), torch.from_numpy(target), "multiclass",
                                                  distance_matrix=m, reduction=reduction, **opts)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7, err_msg=f"{reduction} {opts}")


# ------------------------------------------------------------------------------------ GWDL: identities ---
def test_gwdl_binary_with_the_0_1_distance_is_the_dice_loss():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 1, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(3, 1, 5, 6, generator=g) > 0.6).double()
    t[0, 0, :2] = 0.3  # a soft target: the plan keeps min(p, g), the L1 form of the Dice statistics
    for per_image in (False, True):
        a = S.generalized_wasserstein_dice_loss(x, t, "binary", per_image=per_image)
        b = S.dice_loss(x, t, "binary", per_image=per_image)
        ga, = torch.autograd.grad(a, x)
        gb, = torch.autograd.grad(b, x)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(ga, gb)


def test_gwdl_multilabel_pools_every_element_as_binary():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    t = (torch.rand(2, 3, 4, 5, generator=g) > 0.5).double()
    two = [[0.0, 0.5], [1.0, 0.0]]
    a = S.generalized_wasserstein_dice_loss(x, t, "multilabel", distance_matrix=two, per_image=True)
    b = S.generalized_wasserstein_dice_loss(x.reshape(2, 1, -1), t.reshape(2, 1, -1), "binary",
                                            distance_matrix=two, per_image=True)
    torch.testing.assert_close(a, b)


def test_gwdl_is_invariant_to_the_matrix_scale():
    x, t = _case(seed=4)
    a = S.generalized_wasserstein_dice_loss(x, t, "multiclass", distance_matrix=M3)
    b = S.generalized_wasserstein_dice_loss(x, t, "multiclass", distance_matrix=(3 * torch.tensor(M3)).tolist())
    torch.testing.assert_close(a, b)


def test_gwdl_ignored_pixels_get_no_gradient_and_hide_nan():
    x, t = _case(seed=5)
    t[:, :2] = 255
    x[:, :, :2] = float("nan")
    x.requires_grad_(True)
    loss = S.generalized_wasserstein_dice_loss(x, t, "multiclass", distance_matrix=M3, weighting_mode="GDL",
                                               ignore_index=255)
    loss.backward()
    assert torch.isfinite(loss)
    assert (x.grad[:, :, :2] == 0).all() and torch.isfinite(x.grad).all()
    ref = S.generalized_wasserstein_dice_loss(x.detach()[:, :, 2:], t[:, 2:], "multiclass", distance_matrix=M3,
                                              weighting_mode="GDL")
    torch.testing.assert_close(loss, ref)


def test_gwdl_module_keeps_the_matrix_as_a_buffer_and_round_trips():
    x, t = _case(seed=6)
    mod = S.GeneralizedWassersteinDiceLoss("multiclass", distance_matrix=torch.tensor(M3), weighting_mode="GDL")
    assert "distance_matrix" in dict(mod.named_buffers())
    same = S.from_config(mod.to_config())
    want = S.generalized_wasserstein_dice_loss(x, t, "multiclass", distance_matrix=M3, weighting_mode="GDL")
    torch.testing.assert_close(mod(x, t), want)
    torch.testing.assert_close(same(x, t), want)
    with pytest.raises(ValueError, match="diagonal"):
        S.GeneralizedWassersteinDiceLoss("multiclass", distance_matrix=[[1.0, 1.0], [1.0, 0.0]])


# ------------------------------------------------------------------------------------------------ MCC: peers ---
@pytest.mark.parametrize("per_image", [False, True])
def test_mcc_equals_monai(per_image):
    # MONAI's MCCLoss (monai/losses/mcc_loss.py) at smooth_nr = smooth_dr = 0 on non-degenerate inputs; its `batch`
    # is our per_image=False
    x, t = _case(hw=(6, 5))
    onehot = torch.nn.functional.one_hot(t, 3).permute(0, 3, 1, 2).double()
    ref = monai_losses.MCCLoss(softmax=True, smooth_dr=0.0, batch=not per_image, reduction="none")(x, onehot)
    got = S.mcc_loss(x, t, "multiclass", smooth=0.0, per_image=per_image, reduction="none")
    torch.testing.assert_close(got, ref.reshape(got.shape), rtol=1e-10, atol=1e-12)
    ref = monai_losses.MCCLoss(sigmoid=True, smooth_dr=0.0, batch=not per_image, reduction="none")(x, onehot)
    got = S.mcc_loss(x, onehot, "multilabel", smooth=0.0, per_image=per_image, reduction="none")
    torch.testing.assert_close(got, ref.reshape(got.shape), rtol=1e-10, atol=1e-12)


def _smp_mcc(y_pred, y_true, eps):
    """segmentation_models_pytorch/losses/mcc.py, MCCLoss.forward (qubvel-org/segmentation_models.pytorch),
    re-derived: probabilities in, the four sums over the whole batch each plus eps, 1 - MCC."""
    tp = (y_pred * y_true).sum() + eps
    tn = ((1 - y_pred) * (1 - y_true)).sum() + eps
    fp = (y_pred * (1 - y_true)).sum() + eps
    fn = ((1 - y_pred) * y_true).sum() + eps
    return 1.0 - (tp * tn - fp * fn) / torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))


def test_mcc_equals_smp_on_sigmoid_probabilities():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 1, 32, 32, generator=g, dtype=torch.float64)
    t = (torch.rand(2, 1, 32, 32, generator=g) > 0.7).double()
    ours = S.mcc_loss(x, t, "binary", smooth=0.0)
    torch.testing.assert_close(ours, _smp_mcc(torch.sigmoid(x), t, 0.0), rtol=1e-12, atol=1e-12)
    # smp's default eps adds 1e-5 to each statistic (ours adds s to tp, tn and the margins): equal to ~1e-8 here
    torch.testing.assert_close(S.mcc_loss(x, t, "binary"), _smp_mcc(torch.sigmoid(x), t, 1e-5), rtol=0, atol=1e-7)
    # probabilities in (smp's input): from_logits=False
    torch.testing.assert_close(S.mcc_loss(torch.sigmoid(x), t, "binary", smooth=0.0, from_logits=False), ours)


# ---------------------------------------------------------------------------------- MCC: numerics, limits ---
def test_mcc_float32_at_saturated_logits_matches_the_float64_oracle():
    # a large background (99.9% of 65536 pixels), confident logits: tn of the small classes ~ V, tn of the
    # background ~ 65 pixels; tn is its own sum, so float32 keeps the float64 oracle's value per class
    g = torch.Generator().manual_seed(8)
    n, c, h, w = 1, 3, 256, 256
    t = torch.zeros(n, h, w, dtype=torch.long)
    t.view(-1)[torch.randperm(h * w, generator=g)[:66]] = torch.randint(1, c, (66,), generator=g)
    x = torch.nn.functional.one_hot(t, c).permute(0, 3, 1, 2).double() * 30.0 - 15.0
    x += torch.randn(x.shape, generator=g, dtype=torch.float64)
    flip = torch.rand(n, h, w, generator=g) < 2e-4  # a few confident mistakes
    x[:, 0][flip] = -x[:, 0][flip]
    want = oracle_confusion.mcc(x.numpy(), t.numpy(), "multiclass", reduction="none")
    got = S.mcc_loss(x.float(), t, "multiclass", reduction="none")
    np.testing.assert_allclose(got.double().numpy(), want, rtol=2e-5, atol=1e-7)
    assert (want > 1e-4).all()  # not trivially small: the mistakes are there


def test_mcc_is_symmetric_under_swapping_classes():
    # MCC of a class equals MCC of its complement (tp <-> tn, fp <-> fn): binary (x, g) and (-x, 1 - g)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 1, 7, 8, generator=g, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(2, 1, 7, 8, generator=g) > 0.8).double()
    for per_image in (False, True):
        a = S.mcc_loss(x, t, "binary", per_image=per_image)
        b = S.mcc_loss(-x, 1 - t, "binary", per_image=per_image)
        ga, = torch.autograd.grad(a, x)
        gb, = torch.autograd.grad(b, x)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(ga, gb)


def test_mcc_perfect_and_absent_classes_score_zero_at_smooth_zero():
    p = torch.tensor([[[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])  # class 1: absent and not predicted
    t = torch.tensor([[[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    got = S.mcc_loss(p, t, "multilabel", smooth=0.0, from_logits=False, reduction="none")
    assert got.tolist() == [0.0, 0.0]
    full = torch.ones(1, 1, 4)  # the class fills every element: no negatives, predicted exactly
    assert S.mcc_loss(full, full, "binary", smooth=0.0, from_logits=False).item() == 0.0


@pytest.mark.parametrize("smooth", [0.0, 1e-5])
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("pattern", ["empty", "full", "random"])
def test_mcc_gradient_is_finite_at_saturated_logits_and_empty_margins(smooth, mode, pattern):
    g = torch.Generator().manual_seed(10)
    c = 1 if mode == "binary" else 3
    x = (torch.randint(0, 2, (2, c, 4, 4), generator=g).float() * 2 - 1) * 1e4
    x.requires_grad_(True)
    if mode == "multiclass":
        t = {"empty": torch.zeros(2, 4, 4, dtype=torch.long), "full": torch.full((2, 4, 4), 2),
             "random": torch.randint(0, 3, (2, 4, 4), generator=g)}[pattern]
    else:
        t = {"empty": torch.zeros(2, c, 4, 4), "full": torch.ones(2, c, 4, 4),
             "random": (torch.rand(2, c, 4, 4, generator=g) > 0.5).float()}[pattern]
    for per_image in (False, True):
        loss = S.mcc_loss(x, t, mode, smooth=smooth, per_image=per_image)
        gx, = torch.autograd.grad(loss, x)
        assert torch.isfinite(loss) and 0 <= loss.item() <= 2
        assert torch.isfinite(gx).all()


def test_gwdl_with_a_matrix_compiles_without_graph_breaks():
    # (tests/test_compile_grad.py compiles every loss at its defaults; here the (C, C) matrix path, list and tensor)
    x, t = _case(seed=11)
    t[0, 0] = 255
    for m in (M3, torch.tensor(M3)):
        def fn(z, y, m=m):
            return S.generalized_wasserstein_dice_loss(z, y, "multiclass", distance_matrix=m, weighting_mode="GDL",
                                                       ignore_index=255)
        z = x.clone().requires_grad_(True)
        got = torch.compile(fn, fullgraph=True, backend="eager")(z, t)
        want = fn(x, t)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(torch.autograd.grad(got, z)[0],
                                   torch.autograd.grad(fn(z, t), z)[0])
