"""float64 gradcheck for every loss and mode; torch.compile(fullgraph=True) without graph breaks."""

import pytest
import torch

import seglosses as S
from _losses import COMPOUND, LOSSES, MODES, PER_IMAGE, torch_case


def _case(mode, dtype=torch.float64, seed=0, hw=(3, 4)):
    return torch_case(mode, hw=hw, seed=seed, dtype=dtype, scale=1.0)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("per_image", [False, True])
def test_gradcheck(name, mode, per_image):
    x, t = _case(mode)
    kw = {"ignore_index": 255, "reduction": "mean" if name in COMPOUND else "none"}
    if name in PER_IMAGE:
        kw["per_image"] = per_image
    elif name == "focal":
        kw.update(gamma=0.5 if per_image else 2.0, label_smoothing=0.1 if per_image else 0.0)
    elif name in ("cross_entropy", "weighted_cross_entropy", "balanced_cross_entropy"):
        kw.update(label_smoothing=0.1 if per_image else 0.0)
    assert torch.autograd.gradcheck(lambda z: LOSSES[name](z, t, mode, **kw), (x.requires_grad_(True),))


@pytest.mark.parametrize("name", ["focal", "dice", "lovasz"])
def test_gradcheck_soft_and_probability_inputs(name):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    soft = torch.softmax(torch.randn(2, 3, 4, generator=g, dtype=torch.float64), 1)
    assert torch.autograd.gradcheck(lambda z: LOSSES[name](z, soft, "multiclass"), (x.requires_grad_(True),))
    probs = torch.sigmoid(torch.randn(2, 3, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    ml = (torch.rand(2, 3, 4, generator=g) > 0.5).double()
    assert torch.autograd.gradcheck(lambda z: LOSSES[name](z, ml, "multilabel", from_logits=False), (probs,))


def test_sigmoid_focal_loss_gradcheck():
    x, t = _case("multilabel")
    t = t.clamp(max=1)
    assert torch.autograd.gradcheck(lambda z: S.sigmoid_focal_loss(z, t, 0.3, 0.7, "none"), (x.requires_grad_(True),))


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("mode", MODES)
def test_compile_fullgraph_eager(name, mode):
    torch._dynamo.reset()
    x, t = _case(mode, dtype=torch.float32)
    fn = torch.compile(lambda z, y: LOSSES[name](z, y, mode, ignore_index=255), fullgraph=True, backend="eager")
    ref_x = x.clone().requires_grad_(True)
    ref = LOSSES[name](ref_x, t, mode, ignore_index=255)
    ref.backward()
    x.requires_grad_(True)
    got = fn(x, t)
    got.backward()
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(x.grad, ref_x.grad)


def test_compile_module_fullgraph_eager():
    torch._dynamo.reset()
    x, t = _case("multiclass", dtype=torch.float32)
    m = S.FocalLoss("multiclass", weight=[1.0, 2.0, 3.0], ignore_index=255)
    got = torch.compile(m, fullgraph=True, backend="eager")(x, t)
    torch.testing.assert_close(got, m(x, t))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["focal", "dice", "lovasz"])
def test_compile_inductor(name):
    torch._dynamo.reset()
    x, t = _case("multiclass", dtype=torch.float32, hw=(8, 8))
    fn = torch.compile(lambda z, y: LOSSES[name](z, y, "multiclass", ignore_index=255), fullgraph=True)
    ref_x = x.clone().requires_grad_(True)
    ref = LOSSES[name](ref_x, t, "multiclass", ignore_index=255)
    ref.backward()
    x.requires_grad_(True)
    got = fn(x, t)
    got.backward()
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad, ref_x.grad, rtol=1e-5, atol=1e-6)
