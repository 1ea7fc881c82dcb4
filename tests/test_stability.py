"""Finite loss and gradient at any logit and precision; half precision close to float32."""

import pytest
import torch

from _losses import GAMMA, LOSSES, MODES


def _inputs(mode, scale, dtype=torch.float32, seed=0, n=2, c=3, hw=(6, 7)):
    g = torch.Generator().manual_seed(seed)
    if mode == "binary":
        c = 1
    x = torch.randn(n, c, *hw, generator=g) * scale
    if scale >= 100:  # saturated: every logit at +-scale
        x = torch.sign(x) * scale
    if mode == "multiclass":
        t = torch.randint(0, c, (n, *hw), generator=g)
    else:
        t = (torch.rand(n, c, *hw, generator=g) > 0.5).float()
    return x.to(dtype), t


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", [1e4, 1e2, 30.0])
@pytest.mark.parametrize("gamma", [0.25, 2.0])
def test_finite_at_saturated_logits(name, mode, scale, gamma):
    x, t = _inputs(mode, scale)
    x.requires_grad_(True)
    kw = {"gamma": min(gamma, 1.0) if name == "unified_focal" else gamma} if name in GAMMA else {}
    loss = LOSSES[name](x, t, mode, **kw)
    loss.backward()
    assert torch.isfinite(loss).all()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9])
def test_focal_gradient_finite_and_correct_for_gamma_below_one_at_saturation(gamma):
    # torchvision's gradient is NaN here: d/dx (1 - p_t)^gamma has (1 - p_t)^(gamma - 1) -> inf.
    x = torch.tensor([1e4, -1e4, 80.0, -80.0, 1e4, -1e4], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    from seglosses import focal_loss, sigmoid_focal_loss
    focal_loss(x, y, "binary", gamma=gamma, reduction="sum").backward()
    # well classified: gradient 0; badly classified at |x| = 1e4: gradient of BCE, -+1 (modulating factor 1)
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, -1.0]))
    x.grad = None
    sigmoid_focal_loss(x, y, alpha=-1, gamma=gamma, reduction="sum").backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_close_to_float32(name, mode, dtype):
    x, t = _inputs(mode, 3.0)
    xh = x.to(dtype)
    ref_x = xh.float().requires_grad_(True)
    ref = LOSSES[name](ref_x, t, mode)
    ref.backward()
    xh.requires_grad_(True)
    got = LOSSES[name](xh, t, mode)
    got.backward()
    assert got.dtype == torch.float32  # accumulated and returned in float32
    assert xh.grad.dtype == dtype
    torch.testing.assert_close(got, ref.detach(), rtol=1e-5, atol=1e-6)
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(xh.grad.float(), ref_x.grad, rtol=tol, atol=tol * ref_x.grad.abs().max().item())


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_autocast_bfloat16(name):
    x, t = _inputs("multiclass", 3.0)
    conv = torch.nn.Conv2d(3, 3, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = conv(x)
        assert logits.dtype == torch.bfloat16
        loss = LOSSES[name](logits, t, "multiclass")
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())
    ref = LOSSES[name](conv(x).float(), t, "multiclass")
    torch.testing.assert_close(loss, ref, rtol=3e-2, atol=3e-2)
