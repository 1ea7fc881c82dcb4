"""DeepSupervision (seglosses/core/supervision.py): the level weights against hand values, the downsampled targets
against NumPy references (nearest: index arithmetic; area: block means and window means, ignore labels kept), the
value against the hand-weighted sum of the wrapped loss, gradients, composition, config round trip, errors, compile."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import seglosses as S
from reference_supervision import np_area, np_blocks, np_nearest
from seglosses.core.supervision import downsample_target

# ---------------------------------------------------------------------------------------------------- weights ---
@pytest.mark.parametrize("levels,expected", [
    (1, [1.0]),
    (2, [2 / 3, 1 / 3]),                       # nnU-Net itself gives [1, 0] here (issue #1417: a level dropped)
    (3, [2 / 3, 1 / 3, 0.0]),                  # [1, 1/2, 0] / 1.5
    (4, [4 / 7, 2 / 7, 1 / 7, 0.0]),           # [1, 1/2, 1/4, 0] / 1.75
    (5, [8 / 15, 4 / 15, 2 / 15, 1 / 15, 0.0]),  # [1, 1/2, 1/4, 1/8, 0] / 1.875
])
def test_nnunet_weights(levels, expected):
    got = S.DeepSupervision(S.DiceLoss("multiclass")).level_weights(levels)
    np.testing.assert_allclose(got, expected, rtol=1e-15)


@pytest.mark.parametrize("levels,expected", [
    (1, [1.0]), (2, [1.0, 0.5]), (3, [1.0, 0.5, 0.25]), (4, [1.0, 0.5, 0.25, 0.125]),
    (5, [1.0, 0.5, 0.25, 0.125, 0.0625]), (6, [1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625]),
])
def test_monai_exp_weights(levels, expected):
    np.testing.assert_allclose(S.DeepSupervision(S.DiceLoss("multiclass"), "monai-exp").level_weights(levels),
                               expected, rtol=1e-15)


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 5])
def test_uniform_and_given_weights(levels):
    np.testing.assert_allclose(S.DeepSupervision(S.DiceLoss("binary"), "uniform").level_weights(levels),
                               [1 / levels] * levels, rtol=1e-15)
    given = [0.0, 2.0, 0.5, 1.0, 3.0][:levels] if levels > 1 else [2.0]
    assert S.DeepSupervision(S.DiceLoss("binary"), given).level_weights(levels) == tuple(given)


# --------------------------------------------------------------------------------------------- downsampling ---
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64])
@pytest.mark.parametrize("shape,size", [((2, 8, 8), (4, 4)), ((2, 13, 11), (6, 5)), ((2, 9, 7), (4, 3)),
                                        ((1, 6, 5, 4), (3, 2, 2)), ((2, 10), (3,)), ((2, 3, 7, 7), (2, 7))])
def test_integer_targets_are_resampled_by_nearest(dtype, shape, size):
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 4, shape, generator=g)
    t[torch.rand(shape, generator=g) < 0.2] = 255  # ignore labels: copied, never mixed
    t = t.to(dtype)
    got = downsample_target(t, size, ignore=255)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.numpy(), np_nearest(t.numpy(), size))


def test_nearest_is_interpolate_nearest_exact():
    t = torch.randint(0, 5, (2, 13, 11))
    for size in [(6, 5), (4, 3), (13, 2), (1, 1)]:
        ref = torch.nn.functional.interpolate(t[:, None].double(), size=size, mode="nearest-exact")[:, 0].long()
        assert torch.equal(downsample_target(t, size), ref)


def test_bool_targets_are_resampled_by_nearest():
    t = torch.rand(2, 8, 6) > 0.5
    np.testing.assert_array_equal(downsample_target(t, (4, 3)).numpy(), np_nearest(t.numpy(), (4, 3)))


@pytest.mark.parametrize("shape,size", [((2, 8, 8), (4, 4)), ((2, 3, 13, 11), (6, 5)), ((1, 2, 6, 5, 4), (3, 2, 2)),
                                        ((2, 1, 10), (3,))])
def test_float_targets_are_area_pooled(shape, size):
    t = torch.rand(shape, dtype=torch.float64)
    got = downsample_target(t, size)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), np_area(t.numpy(), size), rtol=1e-12)


def test_area_is_block_means_and_keeps_probabilities():
    p = torch.softmax(torch.randn(2, 3, 8, 12, dtype=torch.float64), dim=1)
    got = downsample_target(p, (4, 6))
    np.testing.assert_allclose(got.numpy(), np_blocks(p.numpy(), 2), rtol=1e-12)
    np.testing.assert_allclose(got.sum(1).numpy(), 1.0, rtol=1e-12)  # still probabilities


def test_float_target_with_ignore_value_averages_the_valid_pixels():
    g = torch.Generator().manual_seed(1)
    t = (torch.rand(2, 1, 9, 8, generator=g) > 0.5).float()
    t[torch.rand(t.shape, generator=g) < 0.4] = 255.0
    t[0, 0, :3, :4] = 255.0  # a whole coarse pixel ignored at 3x2 and 4x4 (windows inside this corner)
    for size in [(3, 2), (4, 4), (2, 3)]:
        got = downsample_target(t, size, ignore=255)
        np.testing.assert_allclose(got.numpy(), np_area(t.numpy(), size, ignore=255), rtol=1e-6)
    assert downsample_target(t, (3, 2), ignore=255)[0, 0, 0, 0] == 255.0
    valid = downsample_target(t, (4, 4), ignore=255)
    assert ((valid == 255) | ((valid >= 0) & (valid <= 1))).all()


def test_float16_target_pooled_in_float32():
    t = torch.rand(1, 1, 8, 8)
    got = downsample_target(t.half(), (4, 4))
    assert got.dtype == torch.float16
    np.testing.assert_allclose(got.float().numpy(), np_blocks(t.half().double().numpy(), 2), rtol=1e-3)


# ------------------------------------------------------------------------------------------------------ value ---
def _outputs(sizes, n=2, c=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, *s, generator=g, dtype=dtype).requires_grad_(True) for s in sizes]


SIZES = [(16, 16), (8, 8), (4, 4), (2, 2)]


@pytest.mark.parametrize("weights", ["nnunet", "monai-exp", "uniform", [0.5, 0.0, 2.0, 1.0]])
def test_value_is_the_hand_weighted_sum_of_the_wrapped_loss(weights):
    outs = _outputs(SIZES)
    t = torch.randint(0, 3, (2, 16, 16))
    t[:, :3, :5] = 255
    ds = S.DeepSupervision(S.DiceLoss("multiclass", ignore_index=255), weights)
    hand = {"nnunet": [4 / 7, 2 / 7, 1 / 7, 0], "monai-exp": [1, 0.5, 0.25, 0.125], "uniform": [0.25] * 4}
    w = hand[weights] if isinstance(weights, str) else weights
    expected = sum(wi * S.dice_loss(o, torch.from_numpy(np_nearest(t.numpy(), o.shape[2:])), "multiclass",
                                    ignore_index=255) for wi, o in zip(w, outs) if wi)
    got = ds(outs, t)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    assert list(ds.last) == [f"level{i}" for i, wi in enumerate(w) if wi]
    for i, wi in enumerate(w):
        if wi:
            level = S.dice_loss(outs[i], torch.from_numpy(np_nearest(t.numpy(), outs[i].shape[2:])), "multiclass",
                                ignore_index=255)
            torch.testing.assert_close(ds.last[f"level{i}"], level.detach())
            assert not ds.last[f"level{i}"].requires_grad


def test_binary_float_masks_with_ignore_through_a_weighted_sum():
    outs = _outputs([(8, 6), (4, 3)], c=1)
    t = (torch.rand(2, 1, 8, 6, dtype=torch.float64) > 0.5).double()
    t[:, :, :2, :2] = 255.0  # one coarse pixel all ignored
    loss = S.DiceLoss("binary", ignore_index=255) + 0.5 * S.FocalLoss("binary", ignore_index=255)
    got = S.DeepSupervision(loss, "uniform")(outs, t)
    t1 = torch.from_numpy(np_area(t.numpy(), (4, 3), ignore=255))
    expected = 0.5 * loss(outs[0], t) + 0.5 * loss(outs[1], t1)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def test_gradient_reaches_every_weighted_output_and_no_weight_zero_output():
    outs = _outputs(SIZES)
    t = torch.randint(0, 3, (2, 16, 16))
    loss = S.DiceLoss("multiclass") + S.FocalLoss("multiclass")
    grads = torch.autograd.grad(S.DeepSupervision(loss)(outs, t), outs, allow_unused=True)
    for g in grads[:3]:
        assert g is not None and g.abs().sum() > 0 and torch.isfinite(g).all()
    assert grads[3] is None  # the nnunet rule weighs the lowest output 0 with 4 levels: never computed


def test_single_tensor_is_one_level():
    (x,), t = _outputs([(8, 8)]), torch.randint(0, 3, (2, 8, 8))
    ds = S.DeepSupervision(S.FocalLoss("multiclass"))
    torch.testing.assert_close(ds(x, t), S.focal_loss(x, t, "multiclass"), rtol=1e-12, atol=0)
    torch.testing.assert_close(ds([x], t), S.focal_loss(x, t, "multiclass"), rtol=1e-12, atol=0)


class _Recorder(nn.Module):
    """A loss of one's own: records what each level receives, returns the mean logit."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, logits, target, **inputs):
        self.calls.append((target, inputs))
        return logits.mean()


def test_pixel_weight_is_area_pooled_and_other_inputs_go_per_level():
    outs = _outputs([(8, 8), (4, 4), (2, 2)])
    t = torch.randint(0, 3, (2, 8, 8))
    pw = torch.rand(2, 8, 8, dtype=torch.float64)
    maps = [torch.full((2, 3) + o.shape[2:], float(i)) for i, o in enumerate(outs)]
    rec = _Recorder()
    S.DeepSupervision(rec, "uniform")(outs, t, pixel_weight=pw, dist_maps=maps, skeletons=None)
    assert len(rec.calls) == 3
    for i, (target, inputs) in enumerate(rec.calls):
        size = outs[i].shape[2:]
        np.testing.assert_array_equal(target.numpy(), np_nearest(t.numpy(), size))
        np.testing.assert_allclose(inputs["pixel_weight"].numpy(), np_area(pw.numpy(), size), rtol=1e-12)
        assert inputs["dist_maps"] is maps[i] and inputs["skeletons"] is None
    rec.calls.clear()  # (N, 1, *spatial) broadcast over classes, and an axis of 1 broadcast over pixels
    S.DeepSupervision(rec, "uniform")(outs, t, pixel_weight=torch.rand(2, 1, 8, 1))
    assert [tuple(inputs["pixel_weight"].shape) for _, inputs in rec.calls] == [(2, 1, 8, 1), (2, 1, 4, 1),
                                                                                  (2, 1, 2, 1)]


def test_per_level_dist_maps_reach_the_boundary_loss():
    outs = _outputs([(8, 8), (4, 4)], c=2)
    t = torch.randint(0, 2, (2, 8, 8))
    t1 = torch.from_numpy(np_nearest(t.numpy(), (4, 4)))
    maps = [S.distance_maps(u, "multiclass", num_classes=2, batched=True) for u in (t, t1)]
    ds = S.DeepSupervision(S.BoundaryLoss("multiclass"), [1.0, 0.5])
    expected = S.boundary_loss(outs[0], t, "multiclass") + 0.5 * S.boundary_loss(outs[1], t1, "multiclass")
    torch.testing.assert_close(ds(outs, t, dist_maps=maps), expected, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(ds(outs, t), expected, rtol=1e-6, atol=1e-9)  # maps computed per level


# ------------------------------------------------------------------------------------------ config and repr ---
@pytest.mark.parametrize("weights", ["nnunet", "monai-exp", "uniform", [1.0, 0.5, 0.25]])
def test_config_round_trip(weights):
    ds = S.DeepSupervision(0.5 * S.DiceLoss("multiclass", ignore_index=255, weight=[1.0, 2.0, 0.5])
                           + S.FocalLoss("multiclass", ignore_index=255, gamma=1.0), weights)
    config = json.loads(json.dumps(ds.to_config()))
    assert config["class"] == "DeepSupervision" and config["weights"] == weights
    again = S.from_config(config)
    assert isinstance(again, S.DeepSupervision) and repr(again) == repr(ds)
    outs, t = _outputs([(8, 8), (4, 4), (2, 2)]), torch.randint(0, 3, (2, 8, 8))
    torch.testing.assert_close(again(outs, t), ds(outs, t), rtol=1e-12, atol=0)


def test_repr_and_module_behaviour():
    ds = S.DeepSupervision(S.DiceLoss("binary"), [1, 0.5])
    assert repr(ds) == "DeepSupervision(DiceLoss('binary'), weights=[1.0, 0.5])"
    ds = S.DeepSupervision(S.DiceLoss("multiclass", weight=[1.0, 2.0])).to(torch.float32)
    assert ds.loss.weight.dtype == torch.float32  # the wrapped loss's buffers follow .to()
    assert "loss.weight" in ds.state_dict()


# --------------------------------------------------------------------------------------------------- errors ---
@pytest.mark.parametrize("weights,error,match", [
    ("nnUNet", ValueError, "`weights` must be one of"),
    ([1.0, -0.5], ValueError, "`weights` must hold finite numbers >= 0"),
    ([1.0, float("nan")], ValueError, "finite"),
    ([0.0, 0.0], ValueError, "at least one number > 0"),
    ([], ValueError, "at least one number > 0"),
    ([1.0, "a"], TypeError, "`weights` must hold numbers"),
    (3, TypeError, "`weights` must be one of"),
])
def test_bad_weights(weights, error, match):
    with pytest.raises(error, match=match):
        S.DeepSupervision(S.DiceLoss("binary"), weights)


def test_bad_loss_and_disagreeing_ignore_values():
    with pytest.raises(TypeError, match="`loss` must be a loss Module"):
        S.DeepSupervision(S.dice_loss)
    with pytest.raises(TypeError, match="`loss` must be a loss Module"):
        S.DeepSupervision(S.DeepSupervision(S.DiceLoss("binary")))
    with pytest.raises(ValueError, match=r"set different values of `ignore_index` \[-1, 255\]"):
        S.DeepSupervision(S.DiceLoss("binary", ignore_index=255) + S.FocalLoss("binary", ignore_index=-1))
    ds = S.DeepSupervision(S.DiceLoss("binary", ignore_index=255) + S.FocalLoss("binary"))  # one value: taken
    assert ds.ignore_index == 255
    with pytest.raises(TypeError, match="has no to_config"):
        S.DeepSupervision(_Recorder()).to_config()


@pytest.mark.parametrize("case,error,match", [
    ("length", ValueError, "`weights` has 2 values but the network gave 3 outputs"),
    ("n", ValueError, r"`outputs\[1\]` must have the batch size, classes and rank"),
    ("c", ValueError, r"`outputs\[1\]` must have the batch size, classes and rank"),
    ("rank", ValueError, r"`outputs\[1\]` must have the batch size, classes and rank"),
    ("larger", ValueError, r"`outputs\[2\]` has spatial shape \(16, 2\), larger than the target's"),
    ("target", ValueError, "`target` must be at the resolution of `outputs\\[0\\]`"),
    ("reversed", ValueError, "highest resolution first"),
    ("empty", TypeError, "non-empty list or tuple"),
    ("not tensor", TypeError, r"`outputs\[1\]` must be a tensor"),
    ("flat", ValueError, r"`outputs\[0\]` must have shape \(N, C, \*spatial\)"),
    ("dist_maps", TypeError, "`dist_maps` must be a list or tuple with one tensor per output.*cannot be downsampled"),
    ("maps length", ValueError, r"`dist_maps` must hold one entry per output \(3\); got 2"),
    ("pixel_weight shape", ValueError, "`pixel_weight` must have shape"),
])
def test_bad_calls(case, error, match):
    outs, t = _outputs([(8, 8), (4, 4), (2, 2)]), torch.randint(0, 3, (2, 8, 8))
    weights, kw = "uniform", {}
    if case == "length":
        weights = [1.0, 0.5]
    elif case == "n":
        outs[1] = torch.zeros(3, 3, 4, 4)
    elif case == "c":
        outs[1] = torch.zeros(2, 4, 4, 4)
    elif case == "rank":
        outs[1] = torch.zeros(2, 3, 4)
    elif case == "larger":
        outs[2] = torch.zeros(2, 3, 16, 2)
    elif case == "target":
        t = t[:, :4]
    elif case == "reversed":
        outs = outs[::-1]
    elif case == "empty":
        outs = []
    elif case == "not tensor":
        outs[1] = np.zeros((2, 3, 4, 4))
    elif case == "flat":
        outs, t = [torch.zeros(2, 3)], torch.zeros(2, dtype=torch.long)
    elif case == "dist_maps":
        kw = {"dist_maps": torch.zeros(2, 3, 8, 8)}
    elif case == "maps length":
        kw = {"dist_maps": [torch.zeros(2, 3, 8, 8)] * 2}
    elif case == "pixel_weight shape":
        kw = {"pixel_weight": torch.zeros(2, 7, 8)}
    with pytest.raises(error, match=match):
        S.DeepSupervision(_Recorder(), weights)(outs, t, **kw)


def test_config_errors():
    with pytest.raises(ValueError, match="'loss' required"):
        S.from_config({"class": "DeepSupervision", "weights": "nnunet"})
    with pytest.raises(ValueError, match="takes the keys"):
        S.from_config({"class": "DeepSupervision", "loss": {"class": "DiceLoss", "mode": "binary"}, "levels": 3})
    with pytest.raises(ValueError, match="`weights` must be one of"):
        S.from_config({"class": "DeepSupervision", "loss": {"class": "DiceLoss", "mode": "binary"}, "weights": "x"})


# -------------------------------------------------------------------------------------------------- compile ---
def test_compile_fullgraph():
    torch._dynamo.reset()
    outs = [o.detach().float().requires_grad_(True) for o in _outputs([(8, 8), (4, 4), (2, 2)])]
    t = torch.randint(0, 3, (2, 8, 8)).to(torch.uint8)
    t[:, :2, :3] = 255
    pw = torch.rand(2, 8, 8)
    ds = S.DeepSupervision(0.5 * S.DiceLoss("multiclass", ignore_index=255)
                           + S.FocalLoss("multiclass", ignore_index=255), "monai-exp")
    ref = ds(outs, t)
    got = torch.compile(ds, fullgraph=True, backend="eager")(outs, t)
    torch.testing.assert_close(got, ref)
    assert sorted(ds.last) == ["level0", "level1", "level2"]
    rec = torch.compile(S.DeepSupervision(_Recorder()), fullgraph=True, backend="eager")
    rec([o.detach() for o in outs], t, pixel_weight=pw)  # the pooling of a weight map compiles too


def test_no_host_copies_on_a_device(monkeypatch):
    """Forward and backward on meta tensors copy no host data to the device and read no device value (the checks of
    tests/test_no_sync.py), with the nearest gather, the ignore-aware area pooling and a pooled weight map."""
    from test_no_sync import _check

    outs = [torch.randn(2, 1, *s, device="meta", requires_grad=True) for s in [(8, 8), (4, 4), (2, 2)]]
    ds_binary = S.DeepSupervision(S.DiceLoss("binary", ignore_index=255) + S.FocalLoss("binary", ignore_index=255))
    rec = S.DeepSupervision(_Recorder(), "uniform")
    t_float, t_index = torch.empty(2, 1, 8, 8, device="meta"), torch.empty(2, 8, 8, dtype=torch.uint8, device="meta")
    assert not _check(lambda: ds_binary(outs, t_float).backward(), monkeypatch)
    assert not _check(lambda: rec(outs, t_index, pixel_weight=torch.empty(2, 8, 8, device="meta")), monkeypatch)


# ------------------------------------------------------------------------------------------------------ peers ---
def test_monai_exp_equals_monai_deep_supervision_loss():
    """MONAI's DeepSupervisionLoss (weight_mode="exp", nearest-exact on a float (N, 1, *spatial) target) gives the
    same value as "monai-exp" here with integer class indices."""
    monai_ds = pytest.importorskip("monai.losses").DeepSupervisionLoss

    class Squeezed(nn.Module):  # MONAI hands the loss a float (N, 1, *spatial) target
        def forward(self, x, t):
            return S.focal_loss(x, t[:, 0].long(), "multiclass", gamma=1.0)

    outs = [o.detach().float() for o in _outputs([(16, 12), (8, 6), (5, 3), (2, 2), (1, 1), (1, 1)])]
    t = torch.randint(0, 3, (2, 16, 12))
    expected = monai_ds(Squeezed(), weight_mode="exp")(outs, t[:, None].float())
    got = S.DeepSupervision(S.FocalLoss("multiclass", gamma=1.0), "monai-exp")(outs, t)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
