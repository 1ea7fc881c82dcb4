"""Schedules of a term's coefficient (seglosses/core/schedules.py) and the PyTorch weighted sum that holds them:
values against hand-computed numbers, arithmetic, errors, config round trip, the sum's value and gradient at several
positions, buffers (no recompile under torch.compile after step, nothing in state_dict)."""

import copy
import json
import math
import pickle

import numpy as np
import pytest
import torch

import seglosses as S
from _losses import torch_case
from seglosses.core.schedules import Schedule


# ------------------------------------------------------------------------------------------------- schedules ---
def test_linear_values():
    s = S.linear(0.01, 1.0, 10)
    # 0.01 + 0.99 * t / 10, clamped
    assert [s(t) for t in (0, 1, 5, 10, 11, 1000)] == pytest.approx([0.01, 0.109, 0.505, 1.0, 1.0, 1.0], abs=1e-15)
    late = S.linear(1.0, 0.0, 4, begin=2)  # 1 until t = 2, then down to 0 at t = 6
    assert [late(t) for t in (0, 2, 3, 4.5, 6, 9)] == pytest.approx([1.0, 1.0, 0.75, 0.375, 0.0, 0.0], abs=1e-15)


def test_cosine_values():
    s = S.cosine(1.0, 0.0, 8)
    # (1 + cos(pi t / 8)) / 2: t = 2 -> (1 + sqrt(2)/2) / 2, t = 4 -> 1/2, t = 6 -> (1 - sqrt(2)/2) / 2
    expected = [1.0, (1 + math.sqrt(0.5)) / 2, 0.5, (1 - math.sqrt(0.5)) / 2, 0.0, 0.0]
    assert [s(t) for t in (0, 2, 4, 6, 8, 20)] == pytest.approx(expected, abs=1e-15)
    up = S.cosine(0.1, 0.5, 2, begin=1)
    assert [up(t) for t in (0, 1, 2, 3)] == pytest.approx([0.1, 0.1, 0.3, 0.5], abs=1e-15)


def test_piecewise_constant_and_rebalance_values():
    s = S.piecewise([0.0, 0.5, 1.0], [3, 7])
    assert [s(t) for t in (0, 2.99, 3, 6, 7, 100)] == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    assert S.piecewise([2.0], [])(5) == 2.0
    assert S.constant(0.25)(0) == S.constant(0.25)(1e6) == 0.25
    r = S.rebalance()  # Kervadec et al.: 1 - 0.01 t, floored at 0.01
    assert [r(t) for t in (0, 1, 50, 98, 99, 100, 500)] == pytest.approx([1.0, 0.99, 0.5, 0.02, 0.01, 0.01, 0.01])
    r2 = S.rebalance(start=0.9, step=0.1, floor=0.2)
    assert [r2(t) for t in (0, 3, 7, 8)] == pytest.approx([0.9, 0.6, 0.2, 0.2])


def test_arithmetic_with_numbers():
    r, s = S.rebalance(), S.linear(0.0, 1.0, 10)
    assert (1 - r)(30) == pytest.approx(0.3)
    assert (3 * s)(5) == (s * 3)(5) == pytest.approx(1.5)
    assert (s / 4)(8) == pytest.approx(0.2)
    assert (-s)(5) == pytest.approx(-0.5)
    assert (s + 2)(5) == (2 + s)(5) == pytest.approx(2.5)
    assert (s - 2)(5) == pytest.approx(-1.5)
    assert (2 * (1 - r) + 1)(30) == pytest.approx(1.6)  # nested maps collapse into one a * s + b
    assert (np.float32(0.5) * s)(10) == pytest.approx(0.5)
    assert 1 * s is s and (2 * s) / 2 == s
    assert 0.5 * S.constant(2.0) == S.constant(1.0)
    assert repr(1 - r) == "(1.0 - rebalance())"
    assert repr(0.5 * s) == "(0.5 * linear(0.0, 1.0, 10))"
    assert repr(s - 1) == "(linear(0.0, 1.0, 10) - 1.0)"
    assert repr(S.piecewise([1, 0.5], [10])) == "piecewise([1.0, 0.5], [10.0])"
    assert repr(S.cosine(1, 0, 5, begin=2)) == "cosine(1.0, 0.0, 5, begin=2)"
    assert repr(S.rebalance(step=0.02)) == "rebalance(step=0.02)"
    with pytest.raises(AttributeError, match="immutable"):
        s.start = 3


def test_config_round_trip_and_pickle():
    cases = [S.constant(0.5), S.linear(0.01, 1, 10), S.cosine(1.0, 0.1, 7.5, begin=3),
             S.piecewise([1.0, 0.5, 0.25], [10, 20]), S.rebalance(), 1 - S.rebalance(0.9, 0.05, 0.1),
             2 * S.linear(0, 1, 4) + 1]
    for s in cases:
        config = json.loads(json.dumps(s.to_config()))
        again = Schedule.from_config(config)
        assert again == s and repr(again) == repr(s)
        assert [again(t) for t in (0, 3, 9, 30)] == [s(t) for t in (0, 3, 9, 30)]
        assert pickle.loads(pickle.dumps(s)) == s and copy.deepcopy(s) == s
    assert S.linear(0.01, 1, 10).to_config() == {"schedule": "linear", "start": 0.01, "end": 1.0, "steps": 10,
                                                 "begin": 0}
    assert (1 - S.rebalance()).to_config() == {"schedule": "affine", "of": {
        "schedule": "rebalance", "start": 1.0, "step": 0.01, "floor": 0.01}, "scale": -1.0, "offset": 1.0}


@pytest.mark.parametrize("make,error,match", [
    (lambda: S.linear(0, 1, 0), ValueError, "`steps` must be > 0"),
    (lambda: S.cosine(0, 1, -2), ValueError, "`steps` must be > 0"),
    (lambda: S.linear(float("nan"), 1, 3), ValueError, "`start` must be finite"),
    (lambda: S.linear(0, float("inf"), 3), ValueError, "`end` must be finite"),
    (lambda: S.linear(0, 1, 3, begin=-1), ValueError, "`begin` must be >= 0"),
    (lambda: S.linear("0", 1, 3), TypeError, "`start` must be a real number"),
    (lambda: S.constant(True), TypeError, "`value` must be a real number"),
    (lambda: S.piecewise([1, 2], [5, 6]), ValueError, "one more number than `boundaries`"),
    (lambda: S.piecewise([1, 2, 3], [5, 5]), ValueError, "strictly increasing"),
    (lambda: S.piecewise([1, 2], [-1]), ValueError, "`boundaries` must be >= 0"),
    (lambda: S.piecewise(1, []), TypeError, "`values` must be a list"),
    (lambda: S.piecewise([1, float("nan")], [2]), ValueError, r"`values\[1\]` must be finite"),
    (lambda: S.rebalance(step=0), ValueError, "`step`"),
    (lambda: S.rebalance(floor=2), ValueError, "`floor` must be <= `start`"),
    (lambda: S.linear(0, 1, 3)(-1), ValueError, "`t`"),
    (lambda: S.linear(0, 1, 3)(float("nan")), ValueError, "`t` must be finite"),
    (lambda: S.linear(0, 1, 3) * float("inf"), ValueError, "finite"),
    (lambda: S.linear(0, 1, 3) / 0, ZeroDivisionError, "divided by 0"),
    (lambda: S.linear(0, 1, 3) * S.linear(0, 1, 3), TypeError, "unsupported operand"),
    (lambda: Schedule.from_config({"schedule": "exp"}), ValueError, "must be one of"),
    (lambda: Schedule.from_config({"schedule": "linear", "start": 0, "end": 1}), ValueError, "steps"),
    (lambda: Schedule.from_config([1]), TypeError, "must be a dict"),
])
def test_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ------------------------------------------------------------------------------------- in a weighted sum ---
def _case():
    x, t = torch_case("multiclass", ignore=True)
    return x.requires_grad_(True), t


def _parts(x, t):
    return (S.dice_loss(x, t, "multiclass", ignore_index=255),
            S.focal_loss(x, t, "multiclass", ignore_index=255, gamma=1.0))


def test_operators_accept_schedules():
    dice, focal = S.DiceLoss("multiclass"), S.FocalLoss("multiclass")
    s, r = S.linear(0.0, 1.0, 10), S.rebalance()
    loss = s * dice + focal
    assert isinstance(loss, S.WeightedSum) and loss.coefs == (s, 1.0)
    assert (dice * s).coefs == (s,)
    assert (2 * (s * dice) - focal / 2).coefs == (2 * s, -0.5)
    assert (r * dice + (1 - r) * focal).coefs == (r, 1 - r)
    assert (-(s * dice)).coefs == (-s,)
    assert repr(r * dice + (1 - r) * focal) == ("rebalance() * DiceLoss('multiclass') + (1.0 - rebalance()) * "
                                                 "FocalLoss('multiclass')")
    with pytest.raises(TypeError, match="one schedule times a number"):
        s * (r * dice)
    with pytest.raises(TypeError, match="unsupported operand"):
        dice / s
    with pytest.raises(TypeError, match="real number or a schedule"):
        S.WeightedSum([("0.5", dice)])


def test_value_and_gradient_follow_the_schedule():
    x, t = _case()
    r = S.rebalance()
    ramp = S.linear(0.01, 1.0, 10)
    loss = (r * S.DiceLoss("multiclass", ignore_index=255)
            + 0.5 * ramp * S.FocalLoss("multiclass", ignore_index=255, gamma=1.0))
    dice, focal = _parts(x, t)
    # (position, rebalance, 0.5 * ramp), by hand
    for pos, a, b in ((0, 1.0, 0.005), (4, 0.96, 0.5 * 0.406), (10, 0.9, 0.5), (150, 0.01, 0.5)):
        loss.step(pos)
        assert loss.position == pos
        assert loss.coefficients() == pytest.approx({"DiceLoss": a, "FocalLoss": b}, abs=1e-15)
        got = loss(x, t)
        expected = a * dice + b * focal
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)  # (coefficients held in float32)
        (g,) = torch.autograd.grad(got, x)
        (g_dice,) = torch.autograd.grad(dice, x, retain_graph=True)
        (g_focal,) = torch.autograd.grad(focal, x, retain_graph=True)
        torch.testing.assert_close(g, a * g_dice + b * g_focal, rtol=1e-6, atol=1e-12)


def test_buffers_move_and_stay_out_of_the_state_dict():
    s = S.linear(0.0, 1.0, 4)
    loss = s * S.DiceLoss("multiclass", weight=[1.0, 2.0, 3.0]) + S.FocalLoss("multiclass")
    assert set(loss.state_dict()) == set((S.DiceLoss("multiclass", weight=[1.0, 2.0, 3.0])
                                          + S.FocalLoss("multiclass")).state_dict())
    loss.step(3)
    loss.to("meta")
    assert {b.device.type for b in loss.buffers()} == {"meta"}
    x, t = torch.zeros(2, 3, 4, 4, device="meta"), torch.zeros(2, 4, 4, dtype=torch.long, device="meta")
    assert loss(x, t).device.type == "meta"  # no host sync in forward: meta tensors hold no values
    loss.step(2)  # step works on any device (an in-place fill, no sync)


def test_config_round_trip_keeps_the_position():
    x, t = _case()
    r = S.rebalance()
    loss = r * S.DiceLoss("multiclass", ignore_index=255) + (1 - r) * S.FocalLoss("multiclass", ignore_index=255)
    loss.step(37)
    config = json.loads(json.dumps(loss.to_config()))
    assert config["position"] == 37
    assert config["terms"][0]["coef"] == {"schedule": "rebalance", "start": 1.0, "step": 0.01, "floor": 0.01}
    again = S.from_config(config)
    assert repr(again) == repr(loss) and again.position == 37
    assert again.coefficients() == loss.coefficients()
    torch.testing.assert_close(again(x, t), loss(x, t), rtol=0, atol=0)
    fresh = S.from_config({k: v for k, v in config.items() if k != "position"})
    assert fresh.position == 0 and fresh.coefficients()["DiceLoss"] == 1.0
    for other in (pickle.loads(pickle.dumps(loss)), copy.deepcopy(loss)):
        assert other.position == 37
        torch.testing.assert_close(other(x, t), loss(x, t), rtol=0, atol=0)
    with pytest.raises(ValueError, match="`t`"):
        loss.step(-1)


def test_step_does_not_recompile():
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    x, t = _case()
    ramp = S.linear(0.0, 1.0, 8)
    loss = ramp * S.DiceLoss("multiclass", ignore_index=255) + S.FocalLoss("multiclass", ignore_index=255)
    counter = CompileCounter()
    compiled = torch.compile(loss, backend=counter, fullgraph=True)
    dice, focal = _parts(x, t)
    focal = S.focal_loss(x, t, "multiclass", ignore_index=255)
    for pos in (0, 1, 2.5, 8):
        loss.step(pos)
        torch.testing.assert_close(compiled(x, t), pos / 8 * dice + focal, rtol=1e-6, atol=0)
    assert counter.frame_count == 1, f"stepping recompiled: {counter.frame_count} compiles"
