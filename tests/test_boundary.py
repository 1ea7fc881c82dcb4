"""Boundary and Hausdorff-DT losses: precomputed maps, backends, spacing, Module inputs, composition, errors."""

import pytest
import torch

import seglosses as S


def _case(mode="multiclass", shape=(2, 3, 9, 11), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * 2
    if mode == "multiclass":
        t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    else:
        t = (torch.rand(*shape, generator=g) > 0.6).double()
    return x.requires_grad_(True), t


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_precomputed_maps_equal_computed_ones(mode):
    x, t = _case(mode, (2, 1 if mode == "binary" else 3, 9, 11))
    kw = {"num_classes": 3} if mode == "multiclass" else {}
    signed = S.distance_maps(t, mode, kind="signed", batched=True, **kw)
    unsigned = S.distance_maps(t, mode, kind="unsigned", batched=True, **kw)
    torch.testing.assert_close(S.boundary_loss(x, t, mode, dist_maps=signed), S.boundary_loss(x, t, mode))
    torch.testing.assert_close(S.hausdorff_dt_loss(x, t, mode, target_dist=unsigned), S.hausdorff_dt_loss(x, t, mode))


@pytest.mark.parametrize("name", ["boundary_loss", "hausdorff_dt_loss"])
def test_torch_and_scipy_backends_agree_with_spacing_in_3d(name):
    x, t = _case("multiclass", (2, 3, 5, 6, 7))
    fn = getattr(S, name)
    ref = fn(x, t, "multiclass", spacing=(2.0, 1.0, 0.5), backend="scipy")
    (g_ref,) = torch.autograd.grad(ref, x)
    got = fn(x, t, "multiclass", spacing=(2.0, 1.0, 0.5), backend="torch")
    (g,) = torch.autograd.grad(got, x)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=0)


def test_hausdorff_gradient_does_not_flow_through_the_prediction_field():
    # With the distance weights frozen, the loss is sum w (p - g)^2 / n: its gradient is 2 w (p - g) dp/dx / n.
    x, t = _case("binary", (1, 1, 8, 8))
    loss = S.hausdorff_dt_loss(x, t, "binary", reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    p = torch.sigmoid(x.detach())
    w = S.hausdorff_dt_loss(x.detach(), t, "binary", reduction="none") / (p - t) ** 2
    torch.testing.assert_close(grad, 2 * w * (p - t) * p * (1 - p))


def test_module_and_weighted_sum_pass_maps_to_the_terms_that_take_them():
    x, t = _case()
    maps = S.distance_maps(t, "multiclass", num_classes=3, batched=True)
    loss = S.DiceLoss("multiclass") + 0.1 * S.BoundaryLoss("multiclass", classes=[1, 2])
    expected = S.dice_loss(x, t, "multiclass") + 0.1 * S.boundary_loss(x, t, "multiclass", classes=[1, 2])
    torch.testing.assert_close(loss(x, t, dist_maps=maps), expected)
    torch.testing.assert_close(S.BoundaryLoss("multiclass")(x, t, dist_maps=maps), S.boundary_loss(x, t, "multiclass"))
    with pytest.raises(TypeError, match=r"no term of .* takes the input\(s\) \['target_dist'\]"):
        loss(x, t, target_dist=maps)


def test_ignored_region_is_never_a_nearest_point():
    # Ignoring the right half gives the loss of the left half alone, distances included.
    x, t = _case("multiclass", (1, 3, 8, 12))
    t_ign = t.clone()
    t_ign[..., 6:] = 255
    for fn in (S.boundary_loss, S.hausdorff_dt_loss):
        torch.testing.assert_close(fn(x, t_ign, "multiclass", ignore_index=255),
                                   fn(x[..., :6], t[..., :6], "multiclass"))


def test_errors():
    x, t = _case()
    with pytest.raises(ValueError, match=r"`logits` must have 1 to 3 spatial axes"):
        S.boundary_loss(x[:, :, 0, 0], t[:, 0, 0], "multiclass")
    with pytest.raises(ValueError, match=r"`spacing` must be a number or one value per spatial axis \(2\)"):
        S.boundary_loss(x, t, "multiclass", spacing=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match=r"`spacing\[1\]` must be > 0.0; got 0.0"):
        S.hausdorff_dt_loss(x, t, "multiclass", spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"`dist_maps` must have shape \(N, C, \*spatial\) = \(2, 3, 9, 11\)"):
        S.boundary_loss(x, t, "multiclass", dist_maps=torch.zeros(2, 2, 9, 11))
    with pytest.raises(TypeError, match=r"`target_dist` must be a torch.Tensor"):
        S.hausdorff_dt_loss(x, t, "multiclass", target_dist=[0.0])
    with pytest.raises(ValueError, match=r"`backend` must be one of"):
        S.boundary_loss(x, t, "multiclass", backend="cuda")
    with pytest.raises(ValueError, match=r"`alpha` must be >= 0.0; got -1.0"):
        S.hausdorff_dt_loss(x, t, "multiclass", alpha=-1)
