"""float64 gradcheck for every loss and mode; torch.compile(fullgraph=True) without graph breaks."""

import pytest
import torch

import seglosses as S
from _losses import COMPOUND, HELD_WEIGHTS, LOSSES, MODES, PER_IMAGE, torch_case


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
    if name in HELD_WEIGHTS:  # the gradient with the loss's detached weights held (see HELD_WEIGHTS)
        from test_structure import check_held_weight_gradient

        return check_held_weight_gradient(x, t, mode, ignore_index=255)
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


def test_take_classes_without_index_copies():
    from seglosses.core.checks import take

    t = torch.arange(24.0).view(2, 4, 3)
    got = take(t, [1, 2])
    assert got.data_ptr() == t[:, 1].data_ptr() and got._base is not None  # a slice: a view, no index tensor
    torch.testing.assert_close(got, t[:, [1, 2]])
    torch.testing.assert_close(take(t, [3, 0, 2]), t[:, [3, 0, 2]])
    torch.testing.assert_close(take(t[0], [2, 0], 0), t[0][[2, 0]])
    assert take(t, None) is t and take(t, []).shape == (2, 0, 3)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kw", [{}, {"per_image": True, "classes": [0, 2]}, {"ignore_index": 255}], ids=str)
def test_lovasz_rows_operator_opcheck(mode, kw, monkeypatch):
    """The registered operator (what torch.compile calls) passes torch.library.opcheck: schema, fake tensors and
    autograd registration agree with the real kernel."""
    from seglosses.kernels import ops

    x, t = _case(mode, dtype=torch.float32)
    if mode == "binary":
        kw = {k: v for k, v in kw.items() if k != "classes"}
    if mode == "multiclass" and "ignore_index" not in kw:  # 255 is no class: the eager call below would raise
        t = torch.where(t == 255, 0, t)
    calls = []
    real = ops._lovasz_rows_op

    def spy(*args):
        calls.append(args)
        return real(*args)

    torch._dynamo.reset()
    try:
        ops._lovasz_rows_op = spy
        torch.compile(lambda z, y: S.lovasz_loss(z, y, mode, **kw), fullgraph=True, backend="eager")(x, t)
    finally:
        ops._lovasz_rows_op = real
    assert calls, "torch.compile did not go through the registered operator"
    # real tensors for opcheck: the eager call, told that it is compiling
    calls.clear()
    try:
        ops._lovasz_rows_op = spy
        monkeypatch.setattr(ops, "use_operator", lambda: True)
        S.lovasz_loss(x.clone().requires_grad_(True), t, mode, **kw).backward()
    finally:
        ops._lovasz_rows_op = real
    q, label, valid, *rest = calls[0]
    assert not isinstance(q, torch._subclasses.FakeTensor)
    torch.library.opcheck(real, (q.detach().requires_grad_(True), label, valid, *rest))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kw", [{}, {"ignore_index": 255, "gamma": 0.5}, {"reduction": "none", "alpha": 0.25}],
                         ids=str)
def test_focal_pass_operator_opcheck(mode, kw, monkeypatch):
    """Under torch.compile the focal pass is the registered operator seglosses::focal_pass; it passes opcheck."""
    from seglosses.kernels import ops

    x, t = _case(mode, dtype=torch.float32)
    if "ignore_index" not in kw:
        t = torch.where(t == 255, torch.zeros_like(t), t)
    calls = []
    real = ops._focal_pass_op

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(ops, "_focal_pass_op", spy)
    torch._dynamo.reset()
    torch.compile(lambda z, y: S.focal_loss(z, y, mode, **kw), fullgraph=True, backend="eager")(x, t)
    assert calls, "torch.compile did not go through the registered operator"
    calls.clear()
    monkeypatch.setattr(ops, "use_operator", lambda: True)
    S.focal_loss(x.clone().requires_grad_(True), t, mode, **kw).sum().backward()
    x0, *rest = calls[0]
    assert not isinstance(x0, torch._subclasses.FakeTensor)
    torch.library.opcheck(real, (x0.detach().requires_grad_(True), *rest))


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_focal_operator_channels_last(mode, monkeypatch):
    """channels_last logits: the operator's gradient has the contiguous strides its fake promises (opcheck; Inductor
    asserted on the strides before, see test_focal_inductor_channels_last)."""
    from seglosses.kernels import ops

    x, t = _case(mode, dtype=torch.float32, hw=(4, 5))
    x = x.contiguous(memory_format=torch.channels_last)
    t = torch.where(t == 255, torch.zeros_like(t), t)
    calls = []
    real = ops._focal_pass_op
    monkeypatch.setattr(ops, "_focal_pass_op", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(ops, "use_operator", lambda: True)
    S.focal_loss(x.clone().requires_grad_(True), t, mode).backward()
    monkeypatch.undo()
    x0, *rest = calls[0]
    torch.library.opcheck(real, (x0.detach().requires_grad_(True), *rest))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_focal_inductor_channels_last(mode):
    x, t = _case(mode, dtype=torch.float32, hw=(4, 5))
    x = x.contiguous(memory_format=torch.channels_last)
    t = torch.where(t == 255, torch.zeros_like(t), t)
    torch._dynamo.reset()
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    S.focal_loss(a, t, mode).backward()
    torch.compile(lambda z, y: S.focal_loss(z, y, mode), fullgraph=True)(b, t).backward()
    torch.testing.assert_close(b.grad, a.grad)
