"""``pixel_weight=`` on the losses of the focal, cross-entropy, region, Lovasz, compound, hard-pixel and confusion
families (docs/semantics.md, "Pixel weights"): against the float64 oracles (tests/oracle*.py, written from the
formulas with a ``pixel_weight`` argument), and the identities that need no oracle: weight 1 is no weight, weight 0 is
an ignored pixel with zero gradient, an integer weight is the pixel repeated, a NaN weight at an ignored pixel
changes nothing. Plus half precision, errors, Module == function, WeightedSum, torch.compile and no host sync.

The oracle sweep samples (loss, mode, weight layout, reduction, ignore_index, option set) with a fixed seed instead of
the full product, to stay within seconds.
"""

import random

import numpy as np
import pytest
import torch

import seglosses as S
import test_oracle
import test_survey_oracle
from _losses import COMPOUND, LOSSES, MODULES, sweep_options
from cases import make_case, oracle_inputs
from seglosses import _registry

#: The families of this file (the spatial ones: their own tests).
FAMILIES = ("focal", "cross_entropy", "region", "lovasz", "compound", "hard_pixel", "confusion")
NAMES = [row.name for row in _registry.LOSSES if row.family in FAMILIES]
#: Losses with one value per softmax pixel in mode "multiclass" (a per-class map is refused there), and GWDL (W is a
#: distance over all classes of a pixel).
PER_PIXEL = {"focal", "poly", "cross_entropy", "weighted_cross_entropy", "balanced_cross_entropy",
             "topk_cross_entropy", "ohem_cross_entropy", "exp_log", "combo", "unified_focal",
             "generalized_wasserstein_dice"}
ORACLE = {**test_oracle._ORACLE, **test_survey_oracle._ORACLE}
SHAPES = {"binary": (2, 1, 3, 4), "multiclass": (2, 3, 3, 4), "multilabel": (2, 3, 3, 4)}


def _options(name, mode, c, shape):
    if name in test_survey_oracle._ORACLE:
        return test_survey_oracle._options(name, mode, c, shape)
    return test_oracle._options(name, mode, c)


def _weight(layout, mode, shape, rng):
    """A weight map of ``layout``: "pixel" (N, *spatial), "class" (the logits' shape), "broadcast" (axes of size
    1); values in [0, 2], some exactly 0."""
    n, c, *spatial = shape
    if layout == "pixel":
        wshape = (n, *spatial)
    elif layout == "class":
        wshape = shape
    else:
        wshape = (1, *spatial[:-1], 1) if mode == "multiclass" or rng.random() < 0.5 else (n, 1, *spatial[:-1], 1)
    w = rng.uniform(0.0, 2.0, size=wshape)
    w[rng.random(size=wshape) < 0.2] = 0.0
    return w


def _layouts(name, mode):
    return ("pixel", "broadcast") if mode == "multiclass" and name in PER_PIXEL else ("pixel", "class", "broadcast")


def _sweep():
    rng = random.Random(18)
    for name in NAMES:
        for mode in ("binary", "multiclass", "multilabel"):
            shape = SHAPES[mode]
            opts = _options(name, mode, shape[1], shape)
            for layout in _layouts(name, mode):
                kind = rng.choice(("ignored", "random", "ignored", "soft"))
                if kind == "soft" and mode == "multiclass" and name in ("generalized_wasserstein_dice",):
                    kind = "random"
                o = rng.choice(opts)
                if kind == "soft" and o.get("distance_matrix") is not None and mode == "multiclass":
                    o = {}
                yield pytest.param(name, mode, layout, kind, o, id=f"{name}-{mode}-{layout}-{kind}")


def _ours(name):
    return LOSSES[name]


@pytest.mark.parametrize("name,mode,layout,kind,opts", list(_sweep()))
def test_equals_the_oracle(name, mode, layout, kind, opts):
    shape = SHAPES[mode]
    logits, target, opts = oracle_inputs(kind, mode, shape, opts)
    w = _weight(layout, mode, shape, np.random.default_rng(hash((name, mode, layout)) % 2 ** 32))
    reductions = ("mean", "sum") if name in COMPOUND else ("mean", "sum", "none")
    for reduction in reductions:
        expected = ORACLE[name](logits, target, mode, reduction=reduction, pixel_weight=w, **opts)
        got = _ours(name)(torch.from_numpy(logits), torch.from_numpy(target), mode, reduction=reduction,
                          pixel_weight=torch.from_numpy(w), **opts)
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name} {reduction} {opts}")


def test_the_sweep_covers_every_loss_mode_and_layout():
    seen = {(p.values[0], p.values[1], p.values[2]) for p in _sweep()}
    for name in NAMES:
        for mode in ("binary", "multiclass", "multilabel"):
            assert {(name, mode, lay) for lay in _layouts(name, mode)} <= seen


def test_the_oracle_weights_are_not_trivial():
    # Guard: weights change the oracle's value (else the sweep would compare unweighted losses).
    logits, target = make_case("random", "multiclass", (2, 3, 3, 4), seed=1)
    w = _weight("pixel", "multiclass", (2, 3, 3, 4), np.random.default_rng(0))
    for name in ("dice", "focal", "lovasz", "topk_cross_entropy", "mcc"):
        a, b = ORACLE[name](logits, target, "multiclass"), ORACLE[name](logits, target, "multiclass", pixel_weight=w)
        assert abs(float(a) - float(b)) > 1e-4, name


# ------------------------------------------------------------------------------------------------------- identities
def _case(mode, *, n=2, hw=(3, 5), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    c = 1 if mode == "binary" else 3
    x = (torch.randn(n, c, *hw, generator=g, dtype=torch.float64) * 2).to(dtype)
    if mode == "multiclass":
        t = torch.randint(0, c, (n, *hw), generator=g)
    else:
        t = (torch.rand(n, c, *hw, generator=g) > 0.5).double()
    return x, t


def _kw(name, mode):
    """Options that exercise the paths (a per-class weight, per_image, a class subset) without ignore_index."""
    kw = sweep_options(name, mode, 1 if mode == "binary" else 3, ignore=False)
    if "classes" in kw:
        kw["classes"] = [2, 0]  # (C = 3: a non-consecutive selection)
    if name == "topk_cross_entropy":
        kw["k"] = 30.0
    if name == "ohem_cross_entropy":
        kw.update(min_kept=4, threshold=0.6)
    if name == "balanced_cross_entropy":
        kw["beta"] = "auto"
    return kw


def _ignored(t, mode, pixels):
    """``t`` with the pixels ``pixels`` (a bool (N, *spatial) mask) set to 255 (every class of them)."""
    t = t.clone()
    if mode == "multiclass":
        t[pixels] = 255
    else:
        t[pixels.unsqueeze(1).expand_as(t)] = 255
    return t


CASES = [(name, mode) for name in NAMES for mode in ("binary", "multiclass", "multilabel")]


@pytest.mark.parametrize("name,mode", CASES)
def test_weight_one_is_no_weight(name, mode):
    x, t = _case(mode)
    kw = _kw(name, mode)
    one = torch.ones(x.shape[0], *x.shape[2:], dtype=torch.float64)
    torch.testing.assert_close(LOSSES[name](x, t, mode, pixel_weight=one, **kw), LOSSES[name](x, t, mode, **kw),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,mode", CASES)
def test_weight_zero_is_an_ignored_pixel_with_zero_gradient(name, mode):
    x, t = _case(mode, seed=1)
    kw = _kw(name, mode)
    g = torch.Generator().manual_seed(3)
    zero = torch.rand(x.shape[0], *x.shape[2:], generator=g) < 0.3
    w = torch.where(zero, 0.0, 1.0).double()
    xw = x.clone().requires_grad_(True)
    got = LOSSES[name](xw, t, mode, pixel_weight=w, **kw)
    expected = LOSSES[name](x, _ignored(t, mode, zero), mode, ignore_index=255, **kw)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    got.sum().backward()
    dead = zero.unsqueeze(1).expand_as(xw)
    assert torch.all(xw.grad[dead] == 0), f"gradient at weight-0 pixels: {xw.grad[dead].abs().max()}"


@pytest.mark.parametrize("name,mode", CASES)
def test_an_integer_weight_is_the_pixel_repeated(name, mode):
    x, t = _case(mode, seed=2)
    kw = _kw(name, mode)
    reps = torch.tensor([1, 3, 0, 2, 1])
    w = reps.double().expand(x.shape[0], x.shape[2], 5)
    kw_none = {k: v for k, v in kw.items() if not (k == "reduction" and v == "none")}
    if "reduction" in _registry.options(name) and name not in COMPOUND:
        kw_none.setdefault("reduction", "mean")
    got = LOSSES[name](x, t, mode, pixel_weight=w, **kw_none)
    expected = LOSSES[name](x.repeat_interleave(reps, -1), t.repeat_interleave(reps, -1), mode, **kw_none)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,mode", CASES)
def test_a_nan_weight_at_an_ignored_pixel_changes_nothing(name, mode):
    x, t = _case(mode, seed=4)
    kw = _kw(name, mode)
    g = torch.Generator().manual_seed(5)
    ign = torch.rand(x.shape[0], *x.shape[2:], generator=g) < 0.3
    t = _ignored(t, mode, ign)
    w = torch.rand(x.shape[0], *x.shape[2:], generator=g, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    a = LOSSES[name](x1, t, mode, ignore_index=255, pixel_weight=torch.where(ign, float("nan"), w), **kw)
    b = LOSSES[name](x2, t, mode, ignore_index=255, pixel_weight=torch.where(ign, 0.0, w), **kw)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    a.sum().backward()
    b.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_is_finite(name, dtype):
    for mode in ("binary", "multiclass"):
        x, t = _case(mode, dtype=dtype)
        x.requires_grad_(True)
        w = torch.rand(x.shape[0], *x.shape[2:]).to(dtype) * 3
        out = LOSSES[name](x, t.to(dtype) if mode != "multiclass" else t, mode, pixel_weight=w, **_kw(name, mode))
        assert out.dtype == torch.float32
        out.sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(x.grad.float()).all(), (name, mode)


# ------------------------------------------------------------------------------------------------------ errors, API
@pytest.mark.parametrize("name", NAMES)
def test_bad_weights_raise_naming_pixel_weight(name):
    fn = LOSSES[name]
    x, t = _case("multiclass")
    with pytest.raises(ValueError, match="`pixel_weight` must have shape"):
        fn(x, t, "multiclass", pixel_weight=torch.ones(2, 3, 4))
    with pytest.raises(TypeError, match="`pixel_weight` must be a torch.Tensor"):
        fn(x, t, "multiclass", pixel_weight=[[1.0]])
    with pytest.raises(TypeError, match="`pixel_weight` must be real"):
        fn(x, t, "multiclass", pixel_weight=torch.ones(2, 3, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match="`pixel_weight` must be on the device"):
        fn(x, t, "multiclass", pixel_weight=torch.ones(2, 3, 5, device="meta"))
    per_class = torch.ones(2, 3, 3, 5)
    if name in PER_PIXEL:
        with pytest.raises(ValueError, match="`pixel_weight` of this loss takes one weight per pixel"):
            fn(x, t, "multiclass", pixel_weight=per_class)
    else:
        fn(x, t, "multiclass", pixel_weight=per_class)


@pytest.mark.parametrize("name", NAMES)
def test_module_takes_the_weight_in_forward(name):
    x, t = _case("multilabel")
    w = torch.rand(2, 3, 5, dtype=torch.float64)
    kw = _kw(name, "multilabel")
    module = MODULES[name]("multilabel", **kw)
    assert "pixel_weight" in type(module)._inputs
    torch.testing.assert_close(module(x, t, pixel_weight=w), LOSSES[name](x, t, "multilabel", pixel_weight=w, **kw))


def test_weighted_sum_passes_the_weight_to_every_term():
    x, t = _case("multiclass")
    w = torch.rand(2, 3, 5, dtype=torch.float64)
    loss = 0.5 * S.DiceLoss("multiclass") + S.FocalLoss("multiclass") + S.LovaszLoss("multiclass")
    expected = (0.5 * S.dice_loss(x, t, "multiclass", pixel_weight=w) + S.focal_loss(x, t, "multiclass", pixel_weight=w)
                + S.lovasz_loss(x, t, "multiclass", pixel_weight=w))
    torch.testing.assert_close(loss(x, t, pixel_weight=w), expected)


@pytest.mark.parametrize("name,backend", [("dice", "eager"), ("focal", "eager"), ("topk_cross_entropy", "eager"),
                                          ("lovasz", "eager"), ("focal", "inductor"),
                                          pytest.param("dice", "inductor", marks=pytest.mark.slow)])
def test_compiles_with_a_weight(name, backend):
    # fullgraph: no graph break ("eager" traces the graph without Inductor's code generation, which is slow)
    torch._dynamo.reset()
    x, t = _case("multiclass", dtype=torch.float32)
    w = torch.rand(2, 3, 5)
    fn = LOSSES[name]
    compiled = torch.compile(lambda a, b, c: fn(a, b, "multiclass", pixel_weight=c, ignore_index=255), fullgraph=True,
                             backend=backend)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    got = compiled(x1, t, w)
    expected = fn(x2, t, "multiclass", pixel_weight=w, ignore_index=255)
    torch.testing.assert_close(got, expected)
    got.backward()
    expected.backward()
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("name", NAMES)
def test_no_host_sync_with_a_weight(name, mode, monkeypatch):
    from test_no_sync import _check, _inputs

    x, t, c = _inputs(mode)
    w = torch.empty(x.shape[0], *x.shape[2:], device="meta")
    kw = sweep_options(name, mode, c)

    def call():
        out = LOSSES[name](x, t, mode, pixel_weight=w, **kw)
        assert out.device.type == "meta"
        out.sum().backward()

    found = _check(call, monkeypatch)
    assert not found, found[:3]
