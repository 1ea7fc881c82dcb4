"""pixel_weight on the spatial losses (boundary, contour, topology and structure families) against the float64
oracles (tests/oracle_survey.py, oracle_contour.py, oracle_topology.py, oracle_structure.py, each taking
``pixel_weight`` written from docs/semantics.md, not from seglosses' code), and the identities that hold for them.

What a weight means per loss (docs/semantics.md, the family sections): boundary / Hausdorff-DT / SSIM / correlation
SSIM: a weighted mean of the per-(pixel, class) map; distance-penalised CE / shape-aware: the pixel-loss rule;
Boundary DoU / clDice / Skeleton Recall: the weight multiplies each pixel's share of the soft sums. Distance maps,
contours, skeletons, windows and correlation SSIM's selection are computed without the weights.

Zero weight and gradient (spatial losses couple pixels): a pixel whose weight is 0 in every class gets exactly zero
gradient where the loss's terms at a pixel depend on that pixel's logits only (the factors computed from the target
or from detached probabilities): boundary, hausdorff_dt, distance_penalized_cross_entropy, shape_aware,
boundary_dou, skeleton_recall, correlation_ssim, and clDice with alpha = 0. SSIM and clDice with alpha > 0 read a
pixel through its neighbours' windows / soft skeletons: its own term is removed, its gradient is not zero.
"""

import numpy as np
import pytest
import torch

import oracle_contour
import oracle_structure
import oracle_survey
import oracle_topology
import seglosses as S
from cases import IGNORE, make_case
from seglosses import _registry

ORACLE = {
    "boundary": oracle_survey.boundary,
    "hausdorff_dt": oracle_survey.hausdorff_dt,
    "distance_penalized_cross_entropy": oracle_contour.distance_penalized_cross_entropy,
    "shape_aware": oracle_contour.shape_aware,
    "boundary_dou": oracle_contour.boundary_dou,
    "cldice": oracle_topology.cldice,
    "skeleton_recall": oracle_topology.skeleton_recall,
    "ssim": oracle_structure.ssim,
    "correlation_ssim": oracle_structure.correlation_ssim,
}
NAMES = list(ORACLE)
FN = {name: getattr(S, _registry.BY_NAME[name].function) for name in NAMES}
MODULE = {name: getattr(S, _registry.BY_NAME[name].cls) for name in NAMES}
#: One value per softmax pixel in "multiclass": a per-class map is refused there.
PER_PIXEL = {"distance_penalized_cross_entropy", "shape_aware"}
#: Exactly zero gradient at a pixel of weight 0 (every class); see the module docstring.
LOCAL = {"boundary", "hausdorff_dt", "distance_penalized_cross_entropy", "shape_aware", "boundary_dou",
         "skeleton_recall", "correlation_ssim"}
MODES = ("binary", "multiclass", "multilabel")
LAYOUTS = ("pixel", "element", "bcast_pixel", "bcast_class")


def _options(name, mode, c):
    """Option sets of each loss (rotated through by the sweep): class selections, per-image statistics, class
    weights, windows, probabilities as input."""
    keep = {"classes": [c - 1, 0]} if mode != "binary" else {}
    w = [0.5 + 0.5 * i for i in range(c)]
    return {
        "boundary": [{}, keep, {"from_logits": False}],
        "hausdorff_dt": [{}, dict(keep, alpha=1.0)],
        "distance_penalized_cross_entropy": [{}, {"from_logits": False}],
        "shape_aware": [{}],
        "boundary_dou": [{}, dict(keep, per_image=True)],
        "cldice": [{"iterations": 3}, {"alpha": 0.0, "per_image": True},
                   dict(keep, alpha=1.0, iterations=2, weight=w, per_image=True)],
        "skeleton_recall": [{}, dict(keep, per_image=True, weight=w)],
        "ssim": [{"window_size": 3}, dict(keep, window_size=3, padding="valid", weight=w), {"window_size": 5}],
        "correlation_ssim": [{}, dict(keep, weight=w, beta=0.2)],
    }[name]


def _shape(mode, spatial=(5, 6)):
    return (2, 1 if mode == "binary" else 3, *spatial)


def _weights(layout, shape, seed, *, zeros=True):
    """A weight map of ``layout`` for logits of ``shape``: values in [0, 2), about 20% exactly 0."""
    rng = np.random.default_rng(seed)
    n, c, spatial = shape[0], shape[1], shape[2:]
    wshape = {"pixel": (n, *spatial), "element": shape, "bcast_pixel": (1, spatial[0]) + (1,) * (len(spatial) - 1),
              "bcast_class": (1, c) + (1,) * len(spatial)}[layout]
    w = rng.uniform(0.0, 2.0, wshape)
    if zeros:
        w[rng.random(wshape) < 0.2] = 0.0
    return w


def _sweep():
    i = 0
    for name in NAMES:
        for mode in MODES:
            for layout in LAYOUTS:
                if name in PER_PIXEL and mode == "multiclass" and layout in ("element", "bcast_class"):
                    continue  # refused: tested in test_per_class_map_refused
                kind = ("random", "ignored", "soft")[i % 3]
                if kind == "soft" and name == "shape_aware":
                    kind = "ignored"
                opts = _options(name, mode, _shape(mode)[1])
                yield pytest.param(name, mode, layout, kind, opts[i % len(opts)],
                                   id=f"{name}-{mode}-{layout}-{kind}-o{i % len(opts)}")
                i += 1


def _case(mode, kind, shape, opts, seed=0):
    logits, target = make_case(kind, mode, shape, seed=seed)
    opts = dict(opts)
    if kind == "ignored":
        opts["ignore_index"] = IGNORE
    if not opts.get("from_logits", True):
        logits = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True) if mode == "multiclass"
                  else 1.0 / (1.0 + np.exp(-logits)))
    return logits, target, opts


@pytest.mark.parametrize("name,mode,layout,kind,opts", list(_sweep()))
def test_equals_oracle(name, mode, layout, kind, opts):
    shape = _shape(mode)
    logits, target, opts = _case(mode, kind, shape, opts, seed=len(name))
    w = _weights(layout, shape, seed=len(name) + 1)
    for reduction in _registry.BY_NAME[name].reductions:
        expected = ORACLE[name](logits, target, mode, reduction=reduction, pixel_weight=w, **opts)
        got = FN[name](torch.from_numpy(logits), torch.from_numpy(target), mode, reduction=reduction,
                       pixel_weight=torch.from_numpy(w), **opts)
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-8, err_msg=f"{reduction}")


@pytest.mark.parametrize("name", NAMES)
def test_weights_change_the_loss(name):
    # guard: the sweep above would pass for a loss that ignored its weights if the weights happened not to matter
    shape = _shape("multiclass")
    logits, target, opts = _case("multiclass", "random", shape, _options(name, "multiclass", 3)[0])
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    w = torch.from_numpy(_weights("pixel", shape, seed=3))
    plain, weighted = FN[name](x, t, "multiclass", **opts), FN[name](x, t, "multiclass", pixel_weight=w, **opts)
    assert abs(float(plain) - float(weighted)) > 1e-4


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", MODES)
def test_weight_one_is_no_weight(name, mode):
    shape = _shape(mode)
    logits, target, opts = _case(mode, "ignored", shape, _options(name, mode, shape[1])[0])
    x, t = torch.from_numpy(logits).float(), torch.from_numpy(target)
    one = torch.ones(shape[:1] + shape[2:])
    for reduction in _registry.BY_NAME[name].reductions:
        plain = FN[name](x, t, mode, reduction=reduction, **opts)
        torch.testing.assert_close(FN[name](x, t, mode, reduction=reduction, pixel_weight=one, **opts), plain,
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_zero_weight_gradient(name, mode):
    shape = _shape(mode)
    opts = {"alpha": 0.0} if name == "cldice" else {}
    logits, target, _ = _case(mode, "random", shape, {})
    x = torch.from_numpy(logits).requires_grad_(True)
    w = torch.ones(shape[:1] + shape[2:], dtype=torch.float64)
    w[0, 1:3, 2:4] = 0.0  # pixels weighted 0 in every class
    FN[name](x, torch.from_numpy(target), mode, pixel_weight=w, **opts).backward()
    at_zero = x.grad[0, :, 1:3, 2:4]
    assert torch.isfinite(x.grad).all()
    if name in LOCAL or name == "cldice":
        assert torch.equal(at_zero, torch.zeros_like(at_zero))
    assert x.grad[1].abs().sum() > 0


@pytest.mark.parametrize("name", ["ssim", "cldice"])
def test_zero_weight_keeps_the_pixel_in_its_neighbours_terms(name):
    # SSIM's windows and clDice's soft skeletons read a pixel in its neighbours' terms: a weight of 0 removes the
    # pixel's own term (the loss equals the oracle with that pixel's weight 0, test_equals_oracle) but its
    # gradient stays (the windows and skeletons are not weighted)
    shape = _shape("binary", (7, 7))
    logits, target, _ = _case("binary", "random", shape, {})
    x = torch.from_numpy(logits).requires_grad_(True)
    w = torch.ones(shape[:1] + shape[2:], dtype=torch.float64)
    w[:, 3, 3] = 0.0
    opts = {"window_size": 3} if name == "ssim" else {"alpha": 1.0, "iterations": 3}
    FN[name](x, torch.from_numpy(target), "binary", pixel_weight=w, **opts).backward()
    assert x.grad[:, 0, 3, 3].abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_nan_weight_at_ignored_pixels_is_harmless(name):
    for mode in MODES:
        shape = _shape(mode)
        logits, target, opts = _case(mode, "ignored", shape, {})
        x = torch.from_numpy(logits).requires_grad_(True)
        t = torch.from_numpy(target)
        ignored = t == IGNORE  # (N, *) multiclass, the logits' shape otherwise: a map of the same shape
        w = torch.from_numpy(_weights("pixel" if mode == "multiclass" else "element", shape, 5, zeros=False))
        clean = FN[name](x, t, mode, pixel_weight=w, **opts)
        (g_clean,) = torch.autograd.grad(clean, x)
        nan = FN[name](x, t, mode, pixel_weight=torch.where(ignored, float("nan"), w), **opts)
        (g_nan,) = torch.autograd.grad(nan, x)
        torch.testing.assert_close(nan, clean, rtol=0, atol=0)
        torch.testing.assert_close(g_nan, g_clean, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_nan_logit_at_a_zero_weight_pixel_shows(name):
    # docs/semantics.md, "Bad input": a NaN at a valid element is never hidden, its weight 0 included (a weight
    # multiplies; it does not select)
    x, t = torch.randn(1, 3, 5, 6, dtype=torch.float64), torch.randint(0, 3, (1, 5, 6))
    x[0, :, 2, 3] = float("nan")
    w = torch.ones(1, 5, 6, dtype=torch.float64)
    w[0, 2, 3] = 0.0
    assert torch.isnan(FN[name](x, t, "multiclass", pixel_weight=w))
    assert torch.isnan(FN[name](x, t, "multiclass", pixel_weight=torch.zeros_like(w)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_finite(name, dtype):
    shape = _shape("multiclass")
    logits, target, opts = _case("multiclass", "ignored", shape, {})
    x = torch.from_numpy(logits).to(dtype).requires_grad_(True)
    w = torch.from_numpy(_weights("pixel", shape, 7)).to(dtype)
    loss = FN[name](x, torch.from_numpy(target), "multiclass", pixel_weight=w, **opts)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()
    ref = FN[name](x.detach().float(), torch.from_numpy(target), "multiclass", pixel_weight=w.float(), **opts)
    torch.testing.assert_close(loss.detach(), ref, rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("name", NAMES)
def test_bad_weights_raise_naming_pixel_weight(name):
    x, t = torch.randn(2, 3, 5, 6), torch.randint(0, 3, (2, 5, 6))
    with pytest.raises(ValueError, match="`pixel_weight`"):
        FN[name](x, t, "multiclass", pixel_weight=torch.ones(2, 5, 7))
    with pytest.raises(ValueError, match="`pixel_weight`"):
        FN[name](x, t, "multiclass", pixel_weight=torch.ones(2, 3, 4, 5, 6))
    with pytest.raises(TypeError, match="`pixel_weight`"):
        FN[name](x, t, "multiclass", pixel_weight=np.ones((2, 5, 6)))
    with pytest.raises(TypeError, match="`pixel_weight`"):
        FN[name](x, t, "multiclass", pixel_weight=torch.ones(2, 5, 6, dtype=torch.complex64))
    with pytest.raises(ValueError, match="`pixel_weight`"):
        FN[name](x, t, "multiclass", pixel_weight=torch.ones(2, 5, 6, device="meta"))


@pytest.mark.parametrize("name", sorted(PER_PIXEL))
def test_per_class_map_refused(name):
    # one value per softmax pixel: a per-class map has no meaning there (binary/multilabel take it, per element)
    x, t = torch.randn(2, 3, 5, 6), torch.randint(0, 3, (2, 5, 6))
    with pytest.raises(ValueError, match="`pixel_weight`.*one weight per pixel"):
        FN[name](x, t, "multiclass", pixel_weight=torch.ones(2, 3, 5, 6))
    FN[name](x, t, "multiclass", pixel_weight=torch.ones(2, 1, 5, 6))  # a class axis of 1 is a per-pixel map


def _maps(name, mode, t, c):
    """The precomputed per-call maps of the losses that take them (keyword, tensor), computed by the package."""
    if name == "boundary":
        return {"dist_maps": S.distance_maps(t, mode, num_classes=c, kind="signed", batched=True)}
    if name == "hausdorff_dt":
        return {"target_dist": S.distance_maps(t, mode, num_classes=c, kind="unsigned", batched=True)}
    if name == "distance_penalized_cross_entropy":
        return {"dist_maps": S.contour_maps(t, mode, num_classes=c, kind="penalty")}
    if name == "shape_aware":
        return {"dist_maps": S.contour_maps(t, mode, num_classes=c, kind="contour")}
    if name == "skeleton_recall":
        return {"skeletons": S.skeleton_maps(t, mode, num_classes=c, batched=True)}
    return {}


@pytest.mark.parametrize("name", NAMES)
def test_module_equals_function(name):
    shape = _shape("multiclass")
    logits, target, _ = _case("multiclass", "random", shape, {})
    x, t = torch.from_numpy(logits).float(), torch.from_numpy(target)
    w = torch.from_numpy(_weights("pixel", shape, 11)).float()
    maps = _maps(name, "multiclass", t, shape[1])
    module = MODULE[name]("multiclass", reduction="sum")
    expected = FN[name](x, t, "multiclass", reduction="sum", pixel_weight=w, **maps)
    torch.testing.assert_close(module(x, t, pixel_weight=w, **maps), expected, rtol=0, atol=0)
    if maps:  # the maps are the ones the loss computes itself: the same loss either way
        torch.testing.assert_close(expected, FN[name](x, t, "multiclass", reduction="sum", pixel_weight=w),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_no_host_sync_with_weights(mode, monkeypatch):
    # tests/test_no_sync.py's detector on meta tensors, now with a weight map
    from _losses import sweep_options
    from test_no_sync import _check, _inputs

    x, t, c = _inputs(mode)
    w = torch.rand(2, 6, 7, device="meta")

    def call():
        for name in NAMES:
            out = FN[name](x, t, mode, pixel_weight=w, **sweep_options(name, mode, c))
            assert out.device.type == "meta"
            out.backward()
    assert not _check(call, monkeypatch)


def test_compile_fullgraph():
    torch._dynamo.reset()
    x, t = torch.randn(2, 3, 6, 6, requires_grad=True), torch.randint(0, 3, (2, 6, 6))
    w = torch.rand(2, 6, 6)
    fn = torch.compile(S.boundary_dou_loss, fullgraph=True, backend="aot_eager")
    got = fn(x, t, "multiclass", pixel_weight=w)
    torch.testing.assert_close(got, S.boundary_dou_loss(x, t, "multiclass", pixel_weight=w))
    got.backward()
    assert torch.isfinite(x.grad).all()
