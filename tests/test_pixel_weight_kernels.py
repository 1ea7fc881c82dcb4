"""The pixel weight of the fused passes (seglosses.kernels.ops: region_stats, focal_terms, lovasz_rows).

Expected values come from plain float64 formulas written here from docs (PIXEL_WEIGHT spec: every element's share of
every sum multiplied by its weight; focal terms and their normaliser weighted; the Lovasz extension of the weighted
Jaccard loss) and their gradients from float64 autograd through those formulas; the identities (weight 1 == no
weight, integer weights == repeated pixels, weight 0 == zero gradient, NaN weight at ignored pixels == no effect)
need no oracle. Every backend that covers a weighted call must equal the blocked passes (value and gradient).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import reference_lovasz as ref
from seglosses.kernels import dispatch, policy
from seglosses.kernels import inductor as _inductor
from seglosses.kernels import native as _native
from seglosses.kernels.ops import FocalSpec, LovaszSpec, focal_terms, lovasz_rows, region_stats


@pytest.fixture(autouse=True)
def _eager(monkeypatch):
    """The blocked passes unless a test picks another backend."""
    monkeypatch.setitem(policy._state, "mode", "eager")


def _weights(n, c, s, layout, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 1 if layout == "pixel" else c, s), generator=g, dtype=dtype) * 2


def _region_case(kind, n=2, c=4, s=37, ignore=False, seed=0):
    """(x, target, act, index) of a region pass; ``kind``: softmax-index, identity-index, sigmoid-dense,
    softmax-dense (class probabilities), identity-dense."""
    g = torch.Generator().manual_seed(seed)
    act, tkind = kind.split("-")
    index = tkind == "index"
    x = torch.randn((n, c, s), generator=g) * 2
    if act == "identity":
        x = torch.softmax(x, 1) if index else torch.rand((n, c, s), generator=g)
    if index:
        t = torch.randint(0, c, (n, s), generator=g)
        if ignore:
            t[:, ::5] = 255
    elif act == "softmax":
        t = torch.softmax(torch.randn((n, c, s), generator=g) * 3, 1)
    else:
        t = (torch.rand((n, c, s), generator=g) > 0.6).float()
        if ignore:  # single elements, and whole pixels
            t.view(-1)[::7] = 255
            t[..., ::5] = 255
    return x, t, act, index


def _region_oracle(x, t, act, index, w, ignore_index):
    """float64 (tp, fp, fn, G) (N, C) from the formulas: tp = sum w p g, fp = sum w p (1 - g), fn = sum w (1 - p) g,
    G = sum w g over valid elements (dense soft targets: the L1 form from P = sum w p, G = sum w g, D = sum w |p - g|).
    """
    x = x.double()
    p = torch.softmax(x, 1) if act == "softmax" else torch.sigmoid(x) if act == "sigmoid" else x
    c = x.shape[1]
    if index:
        valid = (t != ignore_index).unsqueeze(1) if ignore_index is not None else torch.ones_like(t, dtype=bool)[:, None]
        g = F.one_hot(torch.where(valid[:, 0], t, 0), c).permute(0, 2, 1).double()
    else:
        valid = t != ignore_index if ignore_index is not None else torch.ones_like(t, dtype=bool)
        g = torch.where(valid, t, 0).double()
    w = torch.ones(1, dtype=torch.float64) if w is None else w.double()
    w = torch.where(valid, w, 0.0)
    p = torch.where(valid, p, 0.0)
    big_p, big_g, d = (w * p).sum(-1), (w * g).sum(-1), (w * (p - g).abs()).sum(-1)
    tp = (w * p * g).sum(-1) if index else (big_p + big_g - d) / 2
    return tp, big_p - tp, big_g - tp, big_g


def _stats_and_grad(fn, x, coef):
    """The four statistics and the gradient of sum_k coef_k . stat_k (a fixed random functional) in x."""
    xx = x.detach().clone().requires_grad_(True)
    out = fn(xx)
    loss = sum((o * cf).sum() for o, cf in zip(out[:3], coef))
    (grad,) = torch.autograd.grad(loss, xx)
    return [o.detach() for o in out], grad


def _coef(shape, seed=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(3)]


REGION_KINDS = ["softmax-index", "identity-index", "sigmoid-dense", "softmax-dense", "identity-dense"]


@pytest.mark.parametrize("kind", REGION_KINDS)
@pytest.mark.parametrize("layout", ["pixel", "class"])
@pytest.mark.parametrize("ignore", [False, True], ids=["all-valid", "ignore"])
@pytest.mark.parametrize("per_image", [True, False], ids=["per-image", "batch"])
def test_region_stats_equal_the_weighted_formulas(kind, layout, ignore, per_image):
    x, t, act, index = _region_case(kind, ignore=ignore and not kind.endswith("softmax-dense"))
    ii = 255 if ignore and kind != "softmax-dense" else None
    n, c, s = x.shape
    w = _weights(n, c, s, layout)
    if ii is not None:  # a NaN or inf weight at an ignored element has no effect
        bad = (t == ii).unsqueeze(1) if index else (t == ii) if layout == "class" else (t == ii).all(1, True)
        w = torch.where(bad, float("nan"), w)
    coef = _coef((n if per_image else 1, c))
    got, grad = _stats_and_grad(lambda v: region_stats(v, t, act=act, index=index, ignore_index=ii,
                                                        per_image=per_image, weight=w), x, coef)

    def oracle(v):
        out = _region_oracle(v, t, act, index, w, ii)
        return out if per_image else [o.sum(0, keepdim=True) for o in out]

    want, want_grad = _stats_and_grad(oracle, x.double(), [cf.double() for cf in coef])
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.double(), want_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", REGION_KINDS)
def test_region_weight_one_is_no_weight_and_zero_gives_zero_gradient(kind):
    x, t, act, index = _region_case(kind)
    n, c, s = x.shape
    coef = _coef((n, c))

    def run(w):
        return _stats_and_grad(lambda v: region_stats(v, t, act=act, index=index, weight=w), x, coef)

    plain, plain_g = run(None)
    ones, ones_g = run(torch.ones(n, 1, s))
    for a, b in zip(plain, ones):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(plain_g, ones_g, rtol=1e-6, atol=1e-7)
    w = _weights(n, c, s, "class")
    w[:, :, :10] = 0
    w[0, 1, 20] = 0
    _, grad = run(w)
    assert torch.equal(grad[:, :, :10], torch.zeros_like(grad[:, :, :10]))
    if act != "softmax":  # an elementwise activation: the element's own weight
        assert grad[0, 1, 20] == 0


def _repeat(k, *tensors):
    """Each pixel (last axis) repeated k[s] times, in every tensor (N, ..., S)."""
    return [None if a is None else torch.repeat_interleave(a, k, dim=-1) for a in tensors]


@pytest.mark.parametrize("kind", REGION_KINDS)
def test_region_integer_weights_are_repeated_pixels(kind):
    x, t, act, index = _region_case(kind, n=1)
    s = x.shape[-1]
    k = torch.randint(0, 4, (s,), generator=torch.Generator().manual_seed(5))
    coef = _coef((1, x.shape[1]))
    got, grad = _stats_and_grad(lambda v: region_stats(v, t, act=act, index=index,
                                                        weight=k.float().view(1, 1, s)), x, coef)
    xr, tr = _repeat(k, x, t)
    want, want_rep = _stats_and_grad(lambda v: region_stats(v, tr, act=act, index=index), xr, coef)
    # each pixel's gradient is the sum of its copies' gradients
    want_grad = torch.zeros_like(x).index_add_(-1, torch.repeat_interleave(torch.arange(s), k), want_rep)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, want_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["softmax-index", "sigmoid-dense"])
def test_region_half_precision_inputs(kind, dtype):
    x, t, act, index = _region_case(kind, ignore=True)
    w = _weights(*x.shape, "pixel")
    coef = _coef(x.shape[:2])
    got, grad = _stats_and_grad(lambda v: region_stats(v, t, act=act, index=index, ignore_index=255, weight=w),
                                x.to(dtype), coef)
    want, want_grad = _stats_and_grad(lambda v: region_stats(v, t, act=act, index=index, ignore_index=255, weight=w),
                                      x.to(dtype).float(), coef)
    assert all(a.dtype == torch.float32 for a in got) and grad.dtype == dtype
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.float(), want_grad, rtol=1e-2, atol=1e-3)


# ------------------------------------------------------------------------------------------------- focal pass ---
def _focal_oracle(x, t, spec, w):
    """float64 (sum or map of w * term, normaliser) from the formulas (Lin et al.): sigmoid elementwise
    alpha_t (1 - p_t)^gamma BCE; softmax with class indices cw[t] (1 - p_t)^gamma (-log p_t), cw = alpha * base;
    normaliser: sum of w over valid elements (sigmoid), of w base[t] (softmax)."""
    x = x.double()
    ii, gamma = spec.ignore_index, spec.gamma
    if not spec.softmax:
        valid = t != ii if ii is not None else torch.ones_like(t, dtype=bool)
        y = torch.where(valid, t, 0).double()
        xs = torch.where(valid, x, 0.0)
        p = torch.sigmoid(xs)
        pt = p * y + (1 - p) * (1 - y)
        term = -torch.log(pt) * (1 - pt) ** gamma
        if spec.alpha is not None:
            term = term * (spec.alpha * y + (1 - spec.alpha) * (1 - y))
        ww = torch.where(valid, torch.ones_like(x) if w is None else w.double(), 0.0)
        norm = ww.sum()
    else:
        valid = t != ii if ii is not None else torch.ones_like(t, dtype=bool)
        tt = torch.where(valid, t, 0)
        logp = torch.log_softmax(torch.where(valid[:, None], x, 0.0), 1).gather(1, tt[:, None])[:, 0]
        base = torch.ones(x.shape[1], dtype=torch.float64) if spec.base is None else spec.base.double()
        cw = base if spec.alpha is None else base * spec.alpha.double()
        term = cw[tt] * (-logp) * (1 - logp.exp()) ** gamma
        ww = torch.where(valid, torch.ones_like(logp) if w is None else w[:, 0].double(), 0.0)
        norm = (ww * base[tt]).sum()
    out = torch.where(ww != 0, ww * term, 0.0)
    return (out.sum() if spec.reduce else out), norm


def _focal_case(softmax, n=2, c=4, s=29, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, c, s), generator=g) * 3
    t = torch.randint(0, c, (n, s), generator=g) if softmax else (torch.rand((n, c, s), generator=g) > 0.5).float()
    return x, t


def _focal_spec(softmax, reduce, ignore, c=4, gamma=2.0, base=False):
    alpha = (torch.linspace(0.5, 1.5, c) if softmax else 0.25)
    return FocalSpec(softmax, softmax, gamma, alpha, torch.linspace(1.0, 2.0, c) if base else None,
                     255 if ignore else None, 0.0, reduce)


def _focal_and_grad(x, t, spec, w, fn=focal_terms):
    xx = x.detach().clone().requires_grad_(True)
    out, norm = fn(xx, t, spec, w)
    up = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view(out.shape)
    (grad,) = torch.autograd.grad((out * up).sum(), xx)
    return out.detach(), norm, grad


@pytest.mark.parametrize("softmax", [False, True], ids=["sigmoid", "softmax"])
@pytest.mark.parametrize("layout", ["pixel", "class"])
@pytest.mark.parametrize("reduce", [True, False], ids=["sum", "map"])
@pytest.mark.parametrize("ignore", [False, True], ids=["all-valid", "ignore"])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_terms_equal_the_weighted_formulas(softmax, layout, reduce, ignore, gamma):
    if softmax and layout == "class":
        pytest.skip("one weight per pixel in a softmax focal pass (tested in test_focal_refuses_per_class_softmax)")
    x, t = _focal_case(softmax)
    if ignore:
        t.view(-1)[::4] = 255
        if not softmax:
            t[..., ::5] = 255  # whole pixels too
    spec = _focal_spec(softmax, reduce, ignore, gamma=gamma, base=softmax)
    w = _weights(*x.shape, layout)
    w.view(-1)[3::11] = 0
    if ignore:
        bad = (t == 255)[:, None] if softmax else (t == 255) if layout == "class" else (t == 255).all(1, True)
        w = torch.where(bad, float("nan"), w)
    out, norm, grad = _focal_and_grad(x, t, spec, w)
    want, want_norm, want_grad = _focal_and_grad(x.double(), t, spec, w, fn=_focal_oracle)
    torch.testing.assert_close(out.double(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(norm.double(), want_norm, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad.double(), want_grad, rtol=1e-5, atol=1e-6)
    zero = (w == 0).expand_as(grad) if softmax or layout == "class" else (w == 0).expand_as(grad)
    assert torch.equal(grad[zero], torch.zeros_like(grad[zero]))  # weight 0: exactly zero gradient


@pytest.mark.parametrize("softmax", [False, True], ids=["sigmoid", "softmax"])
def test_focal_integer_weights_are_repeated_pixels_and_one_is_no_weight(softmax):
    x, t = _focal_case(softmax, n=1)
    spec = _focal_spec(softmax, True, False, base=softmax)
    s = x.shape[-1]
    k = torch.randint(0, 4, (s,), generator=torch.Generator().manual_seed(5))
    out, norm, grad = _focal_and_grad(x, t, spec, k.float().view(1, 1, s))
    xr, tr = _repeat(k, x, t)
    want, want_norm, want_rep = _focal_and_grad(xr, tr, spec, None)
    want_grad = torch.zeros_like(x).index_add_(-1, torch.repeat_interleave(torch.arange(s), k), want_rep)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norm, want_norm)
    torch.testing.assert_close(grad, want_grad, rtol=1e-5, atol=1e-6)
    plain = _focal_and_grad(x, t, spec, None)
    ones = _focal_and_grad(x, t, spec, torch.ones(1, 1, s))
    for a, b in zip(plain, ones):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kw", [{"smoothing": 0.1}, {"index": False}], ids=["smoothing", "probabilities"])
def test_focal_softmax_other_forms_weight_each_pixel(kw):
    """Label smoothing and class-probability targets: each pixel's term (a sum over the classes) times its weight;
    the normaliser: sum of w (probabilities) or of w base[t] (indices)."""
    x, t = _focal_case(True)
    if not kw.get("index", True):
        t = torch.softmax(torch.randn(x.shape, generator=torch.Generator().manual_seed(2)), 1)
    spec = _focal_spec(True, False, False)._replace(**kw)
    w = _weights(*x.shape, "pixel")
    out, norm, grad = _focal_and_grad(x, t, spec, w)
    plain, plain_norm, _ = _focal_and_grad(x, t, spec, None)
    torch.testing.assert_close(out, plain * w[:, 0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(norm, w.sum(), rtol=1e-6, atol=1e-6)
    # the gradient of sum(w * term): by float64 autograd through the unweighted pass's own map times w
    xx = x.double().requires_grad_(True)
    up = torch.linspace(0.5, 1.5, out.numel(), dtype=torch.float64).view(out.shape)
    logp = torch.log_softmax(xx, 1)
    y = F.one_hot(t, x.shape[1]).permute(0, 2, 1).double() if spec.index else t.double()
    y = y * (1 - spec.smoothing) + spec.smoothing / x.shape[1]
    term = (y * spec.alpha.double().view(1, -1, 1) * -logp * (1 - logp.exp()) ** spec.gamma).sum(1)
    (want_grad,) = torch.autograd.grad((term * w[:, 0].double() * up).sum(), xx)
    torch.testing.assert_close(grad.double(), want_grad, rtol=1e-5, atol=1e-6)


def test_focal_refuses_per_class_softmax_and_bad_shapes():
    x, t = _focal_case(True)
    with pytest.raises(ValueError, match="`weight` must have shape"):
        focal_terms(x, t, _focal_spec(True, True, False), torch.ones(2, 4, 29))
    with pytest.raises(ValueError, match="`weight` must have shape"):
        region_stats(x, t, act="softmax", index=True, weight=torch.ones(2, 29))
    with pytest.raises(TypeError, match="`weight` must be a torch.Tensor"):
        region_stats(x, t, act="softmax", index=True, weight=1.0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("softmax", [False, True], ids=["sigmoid", "softmax"])
def test_focal_half_precision_inputs(softmax, dtype):
    x, t = _focal_case(softmax)
    spec = _focal_spec(softmax, False, False)
    w = _weights(*x.shape, "pixel")
    out, norm, grad = _focal_and_grad(x.to(dtype), t, spec, w)
    want, want_norm, want_grad = _focal_and_grad(x.to(dtype).float(), t, spec, w)
    assert out.dtype == torch.float32 and grad.dtype == dtype and torch.isfinite(grad).all()
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.float(), want_grad, rtol=1e-2, atol=1e-3)


# ---------------------------------------------------------------------------------------------- Lovasz rows ---
def _weighted_lovasz_row(err, fg, w):
    """float64 NumPy: the Lovasz extension of the weighted Jaccard loss along one row: sorted by decreasing error,
    intersection I_i = G_w - cumsum(w fg), union U_i = G_w + cumsum(w (1 - fg)), J_i = 1 - I_i / U_i (0 where
    U_i = 0); loss = sum relu(e_i) (J_i - J_{i-1})."""
    order = np.argsort(-err, kind="stable")
    e, g, ww = err[order], fg[order], w[order]
    gw = (ww * g).sum()
    inter, union = gw - np.cumsum(ww * g), gw + np.cumsum(ww * (1 - g))
    jac = np.where(union == 0, 0.0, 1 - inter / np.where(union == 0, 1, union))
    return float(np.maximum(e, 0) @ np.diff(jac, prepend=0.0))


def _lovasz_case(n=2, c=3, s=40, ignore=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.softmax(torch.randn((n, c, s), generator=g) * 2, 1)
    t = torch.randint(0, c, (n, s), generator=g)
    valid = None
    if ignore:
        t[:, ::7] = -1
        valid = t >= 0
    return q, t.to(torch.int16).unsqueeze(1), valid


def _rows_and_grad(q, label, valid, spec, w):
    qq = q.detach().clone().requires_grad_(True)
    losses, fg = lovasz_rows(qq, label, valid, spec, w)
    up = torch.linspace(0.5, 1.5, losses.numel()).view(losses.shape)
    (grad,) = torch.autograd.grad((losses * up).sum(), qq)
    return losses.detach(), fg, grad


@pytest.mark.parametrize("per_image", [True, False], ids=["per-image", "batch"])
@pytest.mark.parametrize("layout", ["pixel", "class"])
def test_lovasz_rows_equal_the_weighted_jaccard_extension(per_image, layout):
    q, label, valid = _lovasz_case()
    n, c, s = q.shape
    spec = LovaszSpec(True, True, (0, 2), per_image)
    w = _weights(n, c, s, layout)
    w = torch.where(valid[:, None], w, float("nan"))  # no effect where ignored
    losses, fg, _ = _rows_and_grad(q, label, valid, spec, w)
    wn, qn, tn, vn = w.expand(n, c, s).numpy(), q.double().numpy(), label[:, 0].numpy(), valid.numpy()
    rows = [[i] for i in range(n)] if per_image else [list(range(n))]
    for r, imgs in enumerate(rows):
        for k, cls in enumerate(spec.cols):
            keep = [(i, j) for i in imgs for j in range(s) if vn[i, j]]
            fgv = np.array([float(tn[i, j] == cls) for i, j in keep])
            err = np.abs(fgv - np.array([qn[i, cls, j] for i, j in keep]))
            wv = np.array([wn[i, cls, j] for i, j in keep])
            assert losses[r, k].item() == pytest.approx(_weighted_lovasz_row(err, fgv, wv), rel=1e-5, abs=1e-6)
            assert fg[r, k].item() == pytest.approx((wv * fgv).sum(), rel=1e-5)


def test_lovasz_weight_one_is_the_authors_formula_and_zero_is_ignored():
    q, label, valid = _lovasz_case(ignore=False)
    n, c, s = q.shape
    spec = LovaszSpec(True, True, tuple(range(c)), True)
    losses, _, grad = _rows_and_grad(q, label, None, spec, torch.ones(n, 1, s))
    for i in range(n):
        for cls in range(c):
            fg = (label[i, 0] == cls).float()
            err = (fg - q[i, cls]).abs()
            e, perm = torch.sort(err, descending=True)
            assert losses[i, cls].item() == pytest.approx(torch.dot(e, ref.lovasz_grad(fg[perm])).item(), abs=1e-6)
    plain = _rows_and_grad(q, label, None, spec, None)
    for a, b in zip(plain, (losses, _, grad)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # weight 0 at a pixel == that pixel ignored, and zero gradient there
    w = torch.ones(n, 1, s)
    w[:, :, ::3] = 0
    valid = torch.ones(n, s, dtype=bool)
    valid[:, ::3] = False
    weighted = _rows_and_grad(q, label, None, spec, w)
    ignored = _rows_and_grad(q, torch.where(valid[:, None], label, -1), valid, spec, None)
    torch.testing.assert_close(weighted[0], ignored[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(weighted[2], ignored[2], rtol=1e-6, atol=1e-7)
    assert torch.equal(weighted[2][:, :, ::3], torch.zeros_like(weighted[2][:, :, ::3]))


@pytest.mark.parametrize("softmax", [True, False], ids=["softmax", "hinge"])
def test_lovasz_integer_weights_are_repeated_pixels(softmax):
    q, label, valid = _lovasz_case(n=1, ignore=False)
    s = q.shape[-1]
    if softmax:
        spec = LovaszSpec(True, True, (0, 1, 2), True)
    else:  # the hinge: scores and a dense {0, 1} target (N, 1, S)
        q, label = q[:, :1] * 4 - 2, (label == 0).float()
        spec = LovaszSpec(False, False, (0,), True)
    k = torch.randint(0, 4, (s,), generator=torch.Generator().manual_seed(5))
    losses, fg, grad = _rows_and_grad(q, label, None, spec, k.float().view(1, 1, s))
    qr, lr = _repeat(k, q, label)
    want, want_fg, want_rep = _rows_and_grad(qr, lr, None, spec, None)
    want_grad = torch.zeros_like(q).index_add_(-1, torch.repeat_interleave(torch.arange(s), k), want_rep)
    torch.testing.assert_close(losses, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fg, want_fg)
    torch.testing.assert_close(grad, want_grad, rtol=1e-5, atol=1e-6)


def test_weighted_lovasz_runs_the_torch_rows_under_every_policy(monkeypatch):
    q, label, valid = _lovasz_case()
    spec = LovaszSpec(True, True, (0, 1, 2), True)
    w = _weights(*q.shape, "pixel")
    monkeypatch.setitem(policy._state, "mode", "auto")
    assert dispatch.select("lovasz", q, label, spec, w) is dispatch.BLOCKED
    if _native.library() is not None:
        assert dispatch.select("lovasz", q, label, spec, None) is dispatch.NATIVE


# ---------------------------------------------------------------------------------------------- torch.compile ---
def test_compile_fullgraph_through_the_ops_with_a_weight():
    torch._dynamo.reset()
    x, t = _focal_case(True)
    w = _weights(*x.shape, "pixel")
    fspec = _focal_spec(True, True, False)
    q, label, valid = _lovasz_case(c=4, s=29)
    lspec = LovaszSpec(True, True, (0, 1, 2, 3), True)

    def fn(v):
        out, norm = focal_terms(v, t, fspec, w)
        tp, fp, fn_, _ = region_stats(v, t, act="softmax", index=True, weight=w)
        losses, _ = lovasz_rows(torch.softmax(v, 1), label, valid, lspec, w)
        return out / norm + (fp + fn_).sum() / (2 * tp + fp + fn_).sum() + losses.sum()

    xe = x.clone().requires_grad_(True)
    want = fn(xe)
    want.backward()
    xc = x.clone().requires_grad_(True)
    got = torch.compile(fn, fullgraph=True, backend="aot_eager")(xc)
    got.backward()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(xc.grad, xe.grad, rtol=1e-5, atol=1e-6)
