"""Composition of losses: operators, the weighted sum's value and gradient, logging, config round trip, errors."""

import io
import json
import pickle

import pytest
import torch

import seglosses as S
from _losses import torch_case


def _case(mode="multiclass", ignore=True):
    x, t = torch_case(mode, ignore=ignore)
    return x.requires_grad_(True), t


def _grad(value, x):
    (g,) = torch.autograd.grad(value, x)
    return g


def test_value_and_gradient_equal_weighted_sum_of_parts():
    x, t = _case()
    dice, focal = S.DiceLoss("multiclass", ignore_index=255), S.FocalLoss("multiclass", ignore_index=255, gamma=1.0)
    loss = 0.5 * dice + focal
    expected = 0.5 * S.dice_loss(x, t, "multiclass", ignore_index=255) + S.focal_loss(
        x, t, "multiclass", ignore_index=255, gamma=1.0)
    got = loss(x, t)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(_grad(got, x), _grad(expected, x), rtol=1e-12, atol=0)


def test_operators_build_flat_sums_with_the_right_coefficients():
    a, b, c = S.DiceLoss("binary"), S.FocalLoss("binary"), S.JaccardLoss("binary")
    cases = {
        "a + b": (a + b, (1.0, 1.0)),
        "a - b": (a - b, (1.0, -1.0)),
        "2 * a": (2 * a, (2.0,)),
        "a * 2": (a * 2, (2.0,)),
        "a / 4": (a / 4, (0.25,)),
        "-a": (-a, (-1.0,)),
        "sum": (sum([a, b, c]), (1.0, 1.0, 1.0)),
        "nested": (0.5 * (a + 2 * b) - c / 2, (0.5, 1.0, -0.5)),
    }
    for label, (loss, coefs) in cases.items():
        assert isinstance(loss, S.WeightedSum), label
        assert loss.coefs == coefs, label
    x, t = _case("binary", ignore=False)
    nested = cases["nested"][0]
    expected = 0.5 * a(x, t) + b(x, t) - 0.5 * c(x, t)
    torch.testing.assert_close(nested(x, t), expected, rtol=1e-12, atol=0)


def test_last_values_are_unweighted_detached_terms():
    x, t = _case(ignore=False)
    loss = 3.0 * S.DiceLoss("multiclass") + S.DiceLoss("multiclass", smooth=1.0) + S.FocalLoss("multiclass")
    total = loss(x, t)
    assert list(loss.last) == ["DiceLoss", "DiceLoss_2", "FocalLoss"]
    assert all(not v.requires_grad for v in loss.last.values())
    torch.testing.assert_close(loss.last["DiceLoss"], S.dice_loss(x, t, "multiclass").detach())
    torch.testing.assert_close(loss.last["DiceLoss_2"], S.dice_loss(x, t, "multiclass", smooth=1.0).detach())
    torch.testing.assert_close(total.detach(), 3 * loss.last["DiceLoss"] + loss.last["DiceLoss_2"] +
                               loss.last["FocalLoss"])


def test_repr_reads_like_the_expression():
    loss = 0.5 * S.DiceLoss("multiclass") - S.FocalLoss("multiclass", gamma=1.0)
    assert repr(loss) == "0.5 * DiceLoss('multiclass') - 1.0 * FocalLoss('multiclass', gamma=1.0)"


def test_to_moves_every_term():
    loss = S.DiceLoss("multiclass", weight=[1.0, 2.0, 3.0]) + S.FocalLoss("multiclass", weight=[1.0, 1.0, 2.0])
    loss = loss.to(torch.float32)
    assert {b.dtype for b in loss.buffers()} == {torch.float32}
    loss.to("meta")
    assert {b.device.type for b in loss.buffers()} == {"meta"}


def test_config_round_trip_is_json_safe_and_reproduces_the_loss():
    x, t = _case()
    loss = (0.3 * S.DiceLoss("multiclass", weight=[1.0, 2.0, 0.5], ignore_index=255, per_image=True)
            + 0.7 * S.FocalLoss("multiclass", alpha=[0.2, 0.3, 0.5], gamma=1.5, ignore_index=255)
            - 0.1 * S.TverskyLoss("multiclass", alpha=0.7, beta=0.3, classes=[1, 2], ignore_index=255))
    text = json.dumps(loss.to_config())
    again = S.from_config(json.loads(text))
    assert repr(again) == repr(loss)
    torch.testing.assert_close(again(x, t), loss(x, t), rtol=0, atol=0)
    single = S.from_config(json.loads(json.dumps(S.LovaszLoss("multiclass", per_image=True,
                                                              ignore_index=255).to_config())))
    assert isinstance(single, S.LovaszLoss)
    torch.testing.assert_close(single(x, t), S.lovasz_loss(x, t, "multiclass", per_image=True, ignore_index=255))


def test_config_format_is_stable():
    # the written format, key order included: settings as given, then per-class vectors (buffers) as lists
    loss = (0.3 * S.TverskyLoss("binary", alpha=0.7, beta=0.3)
            - S.FocalLoss("multiclass", alpha=[0.2, 0.3, 0.5], gamma=1.5, weight=torch.tensor([1.0, 2.0, 3.0]),
                          ignore_index=255))
    assert json.dumps(loss.to_config()) == json.dumps({"class": "WeightedSum", "terms": [
        {"coef": 0.3, "loss": {"class": "TverskyLoss", "mode": "binary", "options": {"alpha": 0.7, "beta": 0.3}}},
        {"coef": -1.0, "loss": {"class": "FocalLoss", "mode": "multiclass", "options": {
            "gamma": 1.5, "ignore_index": 255, "alpha": [0.2, 0.3, 0.5], "weight": [1.0, 2.0, 3.0]}}}]})
    focal = loss.terms[1]
    assert list(focal.options) == ["gamma", "ignore_index", "alpha", "weight"]
    assert focal.options["weight"] is focal.weight  # the buffer itself: moves with .to()


def test_pickle_and_state_dict():
    x, t = _case(ignore=False)
    loss = S.DiceLoss("multiclass", weight=[1.0, 2.0, 3.0]) + 2 * S.FocalLoss("multiclass")
    torch.testing.assert_close(pickle.loads(pickle.dumps(loss))(x, t), loss(x, t))
    buf = io.BytesIO()
    torch.save(loss.state_dict(), buf)
    fresh = S.DiceLoss("multiclass", weight=[0.0, 0.0, 1.0]) + 2 * S.FocalLoss("multiclass")
    fresh.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    torch.testing.assert_close(fresh(x, t), loss(x, t))


def test_compile_fullgraph():
    torch._dynamo.reset()
    x, t = _case()
    loss = 0.5 * S.DiceLoss("multiclass", ignore_index=255) + S.FocalLoss("multiclass", ignore_index=255)
    ref = loss(x, t)
    got = torch.compile(loss, fullgraph=True, backend="eager")(x, t)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(loss.last["FocalLoss"], S.focal_loss(x, t, "multiclass", ignore_index=255).detach())


@pytest.mark.parametrize("expr,error,match", [
    (lambda a: a + 1, TypeError, "unsupported operand"),
    (lambda a: a * "2", TypeError, "can't multiply|unsupported operand"),
    (lambda a: a * True, TypeError, "unsupported operand"),
    (lambda a: a * float("inf"), ValueError, "finite number"),
    (lambda a: a / 0, ZeroDivisionError, "divided by 0"),
    (lambda a: S.WeightedSum([]), ValueError, "at least one"),
    (lambda a: S.WeightedSum([(1.0, torch.nn.MSELoss())]), TypeError, "seglosses loss Module"),
    (lambda a: S.WeightedSum([a]), TypeError, r"\(coef, loss\) pair"),
    (lambda a: S.from_config({"class": "NoSuchLoss"}), ValueError, "must be one of"),
    (lambda a: S.from_config({"class": "DiceLoss", "mode": "binary", "smooth": 1.0}), ValueError, "takes the keys"),
    (lambda a: S.from_config({"class": "WeightedSum", "terms": [{"coef": 1.0}]}), ValueError, "'coef' and 'loss'"),
    (lambda a: S.from_config("DiceLoss"), TypeError, "must be a dict"),
    (lambda a: S.DiceLoss("multiclass", process_group=object()).to_config(), TypeError, "process_group"),
])
def test_errors(expr, error, match):
    with pytest.raises(error, match=match):
        expr(S.DiceLoss("binary"))
