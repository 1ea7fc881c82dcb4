"""The demo's ``--losses`` grammar for scheduled coefficients (seglosses/demo/losses.py) and the training loop's
``loss.step(epoch)``."""

import json

import pytest

import seglosses as S
from seglosses.demo import losses
from test_demo import TINY, _run


def test_split_keeps_commas_inside_parentheses():
    assert losses.split_specs("ce, dice+ramp(0.01,1,8)*boundary ,,0.5*dice+ce") == (
        "ce", "dice+ramp(0.01,1,8)*boundary", "0.5*dice+ce")


@pytest.mark.parametrize("spec,coefs", [
    ("dice+ramp(0.01,1,epochs)*boundary", (1.0, S.linear(0.01, 1.0, 6))),
    ("linear(0.01, 1, 10, 2) * boundary", (S.linear(0.01, 1.0, 10, begin=2),)),
    ("cosine(1,0,epochs)*ce+dice", (S.cosine(1.0, 0.0, 6), 1.0)),
    ("rebalance()*gdl+1-rebalance()*boundary", (S.rebalance(), 1 - S.rebalance())),
    ("rebalance(1,0.05,0.1)*dice+ce", (S.rebalance(1.0, 0.05, 0.1), 1.0)),
    ("piecewise(0,3,0.5,5,1)*boundary+dice", (S.piecewise([0.0, 0.5, 1.0], [3, 5]), 1.0)),
    ("0.5*ramp(0,1,4)*dice", (0.5 * S.linear(0.0, 1.0, 4),)),
    ("constant(0.3)*dice+0.5*ce", (S.constant(0.3), 0.5)),
])
def test_schedules_in_specs(spec, coefs):
    loss = losses.build(spec, epochs=6)
    assert isinstance(loss, S.WeightedSum) and loss.coefs == coefs


def test_rebalance_spec_follows_kervadec():
    loss = losses.build("rebalance()*gdl+1-rebalance()*boundary")
    assert [type(t).__name__ for t in loss.terms] == ["GeneralizedDiceLoss", "BoundaryLoss"]
    loss.step(20)
    assert loss.coefficients() == pytest.approx({"GeneralizedDiceLoss": 0.8, "BoundaryLoss": 0.2})


@pytest.mark.parametrize("spec,match", [
    ("ramp(1)*dice", r"ramp\(\) takes 3 or 4 numbers; got 1"),
    ("foo(1)*dice", "unknown schedule 'foo'"),
    ("ramp(0,1,epochs)*dice", "argument 'epochs'"),  # (no epochs given to build)
    ("ramp(0,1,x)*dice", "argument 'x'"),
    ("linear(0,1,0)*dice", "`steps` must be > 0"),
    ("piecewise(0,1)*dice", "odd number"),
    ("piecewise(1,5,0,3,1)*dice", "strictly increasing"),
    ("ramp(0,1,3)*ramp(0,1,3)*dice", "one schedule times a number"),
    ("2x*dice", "cannot read the coefficient '2x'"),
    ("ramp(0,1,3)*dicee", "unknown loss 'dicee'"),
])
def test_bad_schedules_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        losses.build(spec)


def test_cli_refuses_a_bad_schedule():
    r = _run([*TINY, "--losses", "ce,ramp(0,1)*dice"])
    assert r.returncode == 2 and "ramp() takes 3 or 4 numbers" in r.stderr


def test_training_steps_the_schedule_each_epoch(tmp_path):
    # piecewise(0,1,1): the CE term weighs 0 in epoch 0 (its gradient is exactly 0: epoch 0 trains as Dice alone),
    # then 1; with the same seed and data order, the first epoch matches Dice's and the second does not
    spec = "piecewise(0,1,1)*ce+dice"
    r = _run([*TINY, "--epochs", "2", "--losses", f"dice,{spec}", "--out", str(tmp_path)])
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())["losses"]
    plain, scheduled = (m[k]["per_seed"][0]["history"] for k in ("dice", spec))
    assert scheduled[0] == plain[0]
    assert scheduled[1]["train_loss"] != plain[1]["train_loss"]
    assert "piecewise([0.0, 1.0], [1.0])" in m[spec]["per_seed"][0]["module"]
