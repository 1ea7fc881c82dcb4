"""Structure losses (SSIM, correlation SSIM): peers (MONAI, kornia), the frozen-weight gradient of the correlation
loss, windows larger than the image, ignored pixels inside windows, half precision and the BCE + SSIM + IoU hybrid."""

import numpy as np
import pytest
import torch

import oracle_structure as O
import seglosses as S


def _case(mode="multilabel", shape=(2, 3, 16, 17), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(*shape, generator=g, dtype=torch.float64) * 2).to(dtype)
    if mode == "multiclass":
        t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    else:
        t = (torch.rand(*shape, generator=g) > 0.6).to(dtype)
    return x, t


# ------------------------------------------------------------------------------------------------------ peers ---
@pytest.mark.parametrize("shape,window", [((2, 3, 16, 17), 11), ((2, 2, 9, 10, 11), 7), ((1, 2, 12, 13), 5)])
def test_ssim_equals_monai_ssim_loss(shape, window):
    # monai/losses/ssim_loss.py SSIMLoss -> monai/metrics/regression.py compute_ssim_and_cs: "valid" Gaussian
    # windows (no padding), C1 = (0.01 L)^2, C2 = (0.03 L)^2, loss = mean over images of 1 - mean SSIM map.
    monai = pytest.importorskip("monai.losses")
    x, t = _case("multilabel", shape)
    p = torch.sigmoid(x)
    ref = monai.SSIMLoss(spatial_dims=len(shape) - 2, data_range=1.0, win_size=window)(p, t)
    ours = S.ssim_loss(x, t, "multilabel", window_size=window, padding="valid")
    torch.testing.assert_close(ours, ref.to(ours.dtype), rtol=2e-6, atol=2e-7)  # MONAI computes in float32
    ours_p = S.ssim_loss(p, t, "multilabel", window_size=window, padding="valid", from_logits=False)
    torch.testing.assert_close(ours_p, ref.to(ours.dtype), rtol=2e-6, atol=2e-7)


def test_ssim_multiclass_equals_monai_on_softmax_and_one_hot():
    monai = pytest.importorskip("monai.losses")
    x, t = _case("multiclass", (2, 4, 15, 14))
    p = torch.softmax(x, 1)
    onehot = torch.nn.functional.one_hot(t, 4).movedim(-1, 1).double()
    ref = monai.SSIMLoss(spatial_dims=2, win_size=11)(p, onehot)
    torch.testing.assert_close(S.ssim_loss(x, t, "multiclass", padding="valid"), ref.double(), rtol=2e-6, atol=2e-7)


@pytest.mark.parametrize("window", [11, 5])
def test_ssim_is_twice_kornia_ssim_loss(window):
    # kornia/losses/ssim.py ssim_loss = clamp((1 - SSIM) / 2, 0, 1) over kornia/metrics/ssim.py ssim; its "valid"
    # padding is the map cropped by window // 2 (Wang's MATLAB code), eps=0 drops its denominator term.
    kornia = pytest.importorskip("kornia")
    x, t = _case("multilabel", (2, 3, 18, 16))
    p = torch.sigmoid(x)
    ref = kornia.losses.ssim_loss(p, t, window, max_val=1.0, eps=0.0, padding="valid")
    ours = S.ssim_loss(x, t, "multilabel", window_size=window, padding="valid")
    torch.testing.assert_close(ours, 2 * ref, rtol=1e-6, atol=1e-7)
    # "same": kornia reflects the image at the borders, we truncate the window: equal away from the borders
    r = window // 2
    ref_map = 1 - kornia.metrics.ssim(p, t, window, max_val=1.0, eps=0.0, padding="same")
    ours_map = S.ssim_loss(x, t, "multilabel", window_size=window, reduction="none")
    torch.testing.assert_close(ours_map[..., r:-r, r:-r], ref_map[..., r:-r, r:-r], rtol=1e-6, atol=1e-7)
    assert not torch.allclose(ours_map[..., :r, :], ref_map[..., :r, :])  # the borders do differ


# ------------------------------------------------------------------------------------------- small images ---
def test_one_pixel_image_has_the_pointwise_ssim():
    # A window truncated to one pixel: mu = the value, sigma = 0, SSIM = (2 p g + C1) / (p^2 + g^2 + C1).
    x = torch.tensor([[[0.3]], [[-1.2]]], dtype=torch.float64)  # (N=2, 1, 1): binary, one pixel
    t = torch.tensor([[[1.0]], [[0.0]]], dtype=torch.float64)
    p, g = torch.sigmoid(x), t
    c1 = 0.01 ** 2
    expected = 1 - (2 * p * g + c1) / (p * p + g * g + c1)
    got = S.ssim_loss(x, t, "binary", reduction="none")
    torch.testing.assert_close(got, expected.reshape(2, 1, 1), rtol=1e-12, atol=0)
    # "valid" with no window inside the image: no centre, an empty map and a loss of 0 with a gradient of 0
    xg = x.clone().requires_grad_(True)
    loss = S.ssim_loss(xg, t, "binary", padding="valid")
    loss.backward()
    assert loss.item() == 0.0 and S.ssim_loss(x, t, "binary", padding="valid", reduction="none").shape == (2, 1, 0)
    assert torch.equal(xg.grad, torch.zeros_like(x))


@pytest.mark.parametrize("name", ["ssim", "correlation_ssim"])
@pytest.mark.parametrize("spatial", [(1,), (2, 1), (3, 1, 2), (7,)])
def test_images_smaller_than_the_window_equal_the_oracle(name, spatial):
    x, t = _case("multiclass", (2, 3, *spatial), seed=3)
    ours = getattr(S, f"{name}_loss")(x, t, "multiclass", window_size=11, reduction="none")
    ref = getattr(O, name)(x.numpy(), t.numpy(), "multiclass", window_size=11, reduction="none")
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------ ignored pixels ---
@pytest.mark.parametrize("name", ["ssim_loss", "correlation_ssim_loss"])
def test_an_ignored_region_is_the_image_without_it(name):
    # Ignoring the right half of an image gives the loss of the left half alone (windows never reach it).
    x, t = _case("multiclass", (1, 3, 9, 14), seed=1)
    ti = t.clone()
    ti[..., 7:] = 255
    full = getattr(S, name)(x, ti, "multiclass", ignore_index=255, reduction="none")
    left = getattr(S, name)(x[..., :7], t[..., :7], "multiclass", reduction="none")
    if name == "ssim_loss":  # (correlation SSIM: e_max is the batch's, so the halves differ by their f)
        torch.testing.assert_close(full[..., :7], left, rtol=1e-12, atol=1e-12)
    assert torch.equal(full[..., 7:], torch.zeros_like(full[..., 7:]))
    xg = x.clone().requires_grad_(True)
    getattr(S, name)(xg, ti, "multiclass", ignore_index=255).backward()
    assert torch.equal(xg.grad[..., 7:], torch.zeros_like(xg.grad[..., 7:]))


# --------------------------------------------------------------------- correlation SSIM: the weights are held ---
def _reference_weighted_ce(z, t, mode, w, m):
    """sum(w CE(z)) / m with CE from plain torch (log_softmax / logsigmoid), w held fixed (0 at ignored pixels)."""
    if mode == "multiclass":
        g = torch.nn.functional.one_hot(t.clamp(0, z.shape[1] - 1), z.shape[1]).movedim(-1, 1).to(z.dtype)
        ce = -g * torch.log_softmax(z, 1)
    else:
        ce = -(t * torch.nn.functional.logsigmoid(z) + (1 - t) * torch.nn.functional.logsigmoid(-z))
    return (w * ce).sum() / m


def check_held_weight_gradient(x, t, mode, ignore_index=None):
    """The gradient of correlation_ssim_loss (mean) is that of sum(e f CE) / sum(f) with e f held at the float64
    oracle's values (tests/test_compile_grad.py's gradcheck calls this for the losses of _losses.HELD_WEIGHTS)."""
    ef, m = O.correlation_weights(x.detach().numpy(), t.numpy(), mode, ignore_index=ignore_index)
    w = torch.from_numpy(ef).reshape(x.shape if mode != "multiclass" else (x.shape[0], x.shape[1], *t.shape[1:]))
    xr = x.detach().clone().requires_grad_(True)
    _reference_weighted_ce(xr, t, mode, w, m).backward()
    xo = x.detach().clone().requires_grad_(True)
    S.correlation_ssim_loss(xo, t, mode, ignore_index=ignore_index).backward()
    assert xr.grad.abs().sum() > 0
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_correlation_ssim_gradient_is_the_weighted_cross_entropys(mode):
    # e and f are weights computed from detached probabilities (docs): the gradient is that of sum(e f CE) / sum(f)
    # with e f held at their values, taken here from the float64 oracle.
    x, t = _case(mode, (2, 1 if mode == "binary" else 3, 6, 7), seed=2)
    check_held_weight_gradient(x, t, mode)


def test_correlation_ssim_constants_are_the_papers():
    from seglosses.losses import structure

    assert structure.C4 == 0.01 and (structure.K1, structure.K2) == (0.01, 0.03)
    import inspect

    params = inspect.signature(S.correlation_ssim_loss).parameters
    assert params["beta"].default == 0.1 and params["window_size"].default == 3


# ---------------------------------------------------------------------------------------------- precision ---
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    x, t = _case("multilabel", (2, 2, 20, 21), seed=4)
    ref = S.ssim_loss(x.to(dtype).double(), t, "multilabel")
    got = S.ssim_loss(x.to(dtype), t.to(dtype), "multilabel")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-6)


def test_flat_saturated_maps_have_exact_zero_variance():
    # p = g = 1 everywhere (logit 1e4): every variance is 0, e = 0 and SSIM = 1 exactly in float32.
    x = torch.full((1, 2, 8, 8), 1e4)
    t = torch.ones(1, 2, 8, 8)
    assert S.ssim_loss(x, t, "multilabel").item() == 0.0
    assert S.correlation_ssim_loss(x, t, "multilabel").item() == 0.0


# ------------------------------------------------------------------------------------------- composition ---
def test_basnet_hybrid_is_a_sum_of_losses():
    # BASNet (Qin et al. 2019) / UNet3+ (Huang et al. 2020): BCE + SSIM + IoU, by composition.
    x, t = _case("binary", (2, 1, 12, 12), seed=5)
    hybrid = S.CrossEntropyLoss("binary") + S.SSIMLoss("binary") + S.JaccardLoss("binary")
    expected = S.cross_entropy_loss(x, t, "binary") + S.ssim_loss(x, t, "binary") + S.jaccard_loss(x, t, "binary")
    torch.testing.assert_close(hybrid(x, t), expected)
    again = S.from_config(hybrid.to_config())
    torch.testing.assert_close(again(x, t), expected)


def test_bad_options_raise():
    x, t = _case("multilabel", (1, 2, 5, 5))
    with pytest.raises(ValueError, match="window_size"):
        S.ssim_loss(x, t, "multilabel", window_size=4)
    with pytest.raises(ValueError, match="sigma"):
        S.ssim_loss(x, t, "multilabel", sigma=0.0)
    with pytest.raises(ValueError, match="padding"):
        S.ssim_loss(x, t, "multilabel", padding="reflect")
    with pytest.raises(ValueError, match="beta"):
        S.correlation_ssim_loss(x, t, "multilabel", beta=1.5)
    with pytest.raises(ValueError, match="spatial axes"):
        S.ssim_loss(x[:, :, 0, 0], t[:, :, 0, 0], "multilabel")
