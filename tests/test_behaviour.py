"""ignore_index, empty inputs, shapes and dtypes of targets, Module == function, pickling, state_dict."""

import io
import pickle

import pytest
import torch

import seglosses as S
from _losses import LOSSES, MODES, MODULES, PER_IMAGE, per_class_option, torch_case


def _case(mode, seed=0, n=2, c=3, hw=(5, 6), ignore=True):
    return torch_case(mode, n=n, c=c, hw=hw, seed=seed, ignore=ignore)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("per_image", [False, True])
def test_ignored_pixels_have_zero_gradient_and_do_not_count(name, mode, per_image):
    x, t = _case(mode)
    kw = {"per_image": per_image} if name in PER_IMAGE else {}
    x.requires_grad_(True)
    loss = LOSSES[name](x, t, mode, ignore_index=255, **kw)
    loss.backward()
    ignored = (t == 255) if mode != "multiclass" else (t == 255).unsqueeze(1).expand_as(x)
    assert ignored.any() and (x.grad[ignored] == 0).all()
    assert (x.grad[~ignored] != 0).any()
    # Changing the logits of ignored pixels changes nothing.
    x2 = torch.where(ignored, torch.randn_like(x) * 100, x.detach())
    torch.testing.assert_close(LOSSES[name](x2, t, mode, ignore_index=255, **kw), loss.detach(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("mode", MODES)
def test_ignore_equals_loss_of_valid_subset(name, mode):
    # One image whose second half is ignored == the loss of the first half alone.
    x, t = _case(mode, n=1, hw=(8,), ignore=False)
    t_ign = t.clone()
    t_ign[..., 4:] = 255
    full = LOSSES[name](x, t_ign, mode, ignore_index=255)
    sub = LOSSES[name](x[..., :4].contiguous(), t[..., :4].contiguous(), mode)
    torch.testing.assert_close(full, sub, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 0), (2, 3, 0, 5)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_empty_input_gives_zero_with_graph(name, mode, shape, reduction):
    shape = (shape[0], 1, *shape[2:]) if mode == "binary" else shape
    x = torch.zeros(shape, requires_grad=True)
    t = torch.zeros((shape[0], *shape[2:]), dtype=torch.long) if mode == "multiclass" else torch.zeros(shape)
    loss = LOSSES[name](x, t, mode, reduction=reduction)
    assert loss.shape == () and loss.item() == 0.0
    loss.backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_binary_shapes_and_target_dtypes(name):
    x, t = _case("binary", ignore=False)
    ref = LOSSES[name](x, t, "binary")
    torch.testing.assert_close(LOSSES[name](x.squeeze(1), t.squeeze(1), "binary"), ref)  # (N, *)
    torch.testing.assert_close(LOSSES[name](x, t.squeeze(1), "binary"), ref)             # (N, *) target
    torch.testing.assert_close(LOSSES[name](x, t.to(torch.uint8), "binary"), ref)
    torch.testing.assert_close(LOSSES[name](x, t.bool(), "binary"), ref)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32, torch.int64])
def test_multiclass_integer_target_dtypes(name, dtype):
    x, t = _case("multiclass", ignore=True)
    ref = LOSSES[name](x, t, "multiclass", ignore_index=255)
    torch.testing.assert_close(LOSSES[name](x, t.to(dtype), "multiclass", ignore_index=255), ref)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("mode", MODES)
def test_blocked_path_equals_single_block(name, mode, monkeypatch):
    # Large inputs are processed in blocks; the result must not depend on the blocking.
    from seglosses.kernels import blocked as _chunk
    x, t = _case(mode, n=3, hw=(9, 11))
    x.requires_grad_(True)
    ref = LOSSES[name](x, t, mode, ignore_index=255)
    (g_ref,) = torch.autograd.grad(ref, x)
    for size in (7, 40, 200):  # per pixel, several images, several pixels of one image per block
        monkeypatch.setattr(_chunk, "BLOCK", size)
        got = LOSSES[name](x, t, mode, ignore_index=255)
        (g,) = torch.autograd.grad(got, x)
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("mode", MODES)
def test_module_equals_function(name, mode):
    x, t = _case(mode)
    c = x.shape[1]
    vector = per_class_option(name, c)
    opts = {"ignore_index": 255, "reduction": "sum", **vector}
    if name == "focal":
        opts["alpha"] = [0.3] * c if mode != "binary" else 0.3
    module = MODULES[name](mode, **opts)
    torch.testing.assert_close(module(x, t), LOSSES[name](x, t, mode, **opts))
    assert set(vector) <= set(dict(module.named_buffers()))
    # pickles, and state_dict round-trips into a fresh module
    clone = pickle.loads(pickle.dumps(module))
    torch.testing.assert_close(clone(x, t), module(x, t))
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    fresh = MODULES[name](mode, **dict(opts, **{k: [0.5] * c for k in vector}))
    fresh.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    torch.testing.assert_close(fresh(x, t), module(x, t))
    assert name.split("_")[0] in repr(module).lower() or "Loss" in repr(module)


def test_module_buffers_follow_to():
    m = S.DiceLoss("multiclass", weight=torch.tensor([1.0, 2.0, 3.0]))
    m = m.to(torch.float64)
    assert m.weight.dtype == torch.float64
    m.to("meta")
    assert m.weight.device.type == "meta"


def test_none_reduction_shapes():
    x, t = _case("multiclass", ignore=False)
    assert S.focal_loss(x, t, "multiclass", reduction="none").shape == t.shape
    xb, tb = _case("binary", ignore=False)
    assert S.focal_loss(xb, tb, "binary", reduction="none").shape == xb.shape
    assert S.dice_loss(x, t, "multiclass", reduction="none").shape == (3,)
    assert S.dice_loss(x, t, "multiclass", reduction="none", per_image=True).shape == (2, 3)
    assert S.dice_loss(x, t, "multiclass", reduction="none", classes=[2, 1]).shape == (2,)
    assert S.generalized_dice_loss(x, t, "multiclass", reduction="none").shape == ()
    assert S.generalized_dice_loss(x, t, "multiclass", reduction="none", per_image=True).shape == (2,)
    assert S.lovasz_loss(x, t, "multiclass", reduction="none", per_image=True).shape == (2, 3)


def test_classes_selects_and_weights_average():
    x, t = _case("multiclass", ignore=False)
    per_class = S.dice_loss(x, t, "multiclass", reduction="none")
    torch.testing.assert_close(S.dice_loss(x, t, "multiclass", classes=[1, 2]), per_class[1:].mean())
    w = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(S.dice_loss(x, t, "multiclass", weight=w), (per_class * w).sum() / w.sum())


@pytest.mark.parametrize("mode", MODES)
def test_focal_backward_twice_with_retain_graph(mode):
    # The first backward hands over the forward's gradient buffer; a second one must recompute, not reuse it.
    x, t = _case(mode)
    x.requires_grad_(True)
    loss = S.focal_loss(x, t, mode, ignore_index=255)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first)
