"""Every loss x mode x option x reduction equals the float64 NumPy oracle (tests/oracle.py) to 1e-6 (rel), 1e-7 (abs).

The losses of tests/oracle.py are checked here, those of tests/oracle_survey.py in tests/test_survey_oracle.py; every
row of the registry (seglosses/_registry.py) must have an oracle in one of the two (test_every_loss_has_an_oracle).
"""

import numpy as np
import pytest
import torch

import oracle
import oracle_confusion
import oracle_hard_pixel
import oracle_structure
import oracle_topology
import seglosses as S
import test_survey_oracle
from cases import CASES, oracle_inputs, make_case
from seglosses import _registry
from _losses import SPATIAL
from oracle_hard_pixel import OPTIONS as HARD_PIXEL_OPTIONS

REDUCTIONS = ("mean", "sum", "none")


def _options(name, mode, c):
    w = [0.5 + 0.5 * i for i in range(c)]
    per_class = [0.2 + 0.6 * i / max(c - 1, 1) for i in range(c)]
    if name == "focal":
        opts = [{}, {"alpha": 0.25}, {"gamma": 0.5}, {"gamma": 0.0}, {"alpha": per_class, "gamma": 1.5},
                {"label_smoothing": 0.1}, {"weight": w}, {"from_logits": False},
                {"weight": w, "label_smoothing": 0.2, "alpha": 0.4, "from_logits": False}]
        return opts
    if name == "mcc":
        return [{}, {"per_image": True}, {"smooth": 0.0}, {"smooth": 1.0, "per_image": True},
                {"classes": [c - 1, 0] if c > 1 else [0]}, {"weight": w}, {"from_logits": False},
                {"per_image": True, "weight": w, "smooth": 0.0, "from_logits": False}]
    if name == "generalized_wasserstein_dice":  # (C, C) matrices: tests/test_confusion.py (index targets only)
        two = [[0.0, 1.0], [0.25, 0.0]] if mode != "multiclass" else None
        return [{}, {"per_image": True}, {"weighting_mode": "GDL"}, {"smooth": 0.0, "per_image": True},
                {"from_logits": False, "weighting_mode": "GDL", "per_image": True},
                {"distance_matrix": two, "weighting_mode": "GDL"}, {"distance_matrix": two, "smooth": 0.0}]
    if name in HARD_PIXEL_OPTIONS:
        return HARD_PIXEL_OPTIONS[name](mode, c)
    if name in ("ssim", "correlation_ssim"):
        return oracle_structure.options(name, mode, c)
    if name == "lovasz":
        return [{}, {"per_image": True}, {"classes": "all"}, {"classes": [c - 1, 0]} if c > 1 else {"classes": [0]},
                {"weight": w}, {"from_logits": False}, {"per_image": True, "weight": w, "from_logits": False}]
    if name == "cldice":
        return [{}, {"per_image": True}, {"alpha": 1.0}, {"alpha": 0.0, "smooth": 1e-5}, {"iterations": 0},
                {"iterations": 3, "smooth": 0.0, "alpha": 1.0}, {"classes": [c - 1, 0] if c > 1 else [0]},
                {"weight": w}, {"from_logits": False},
                {"per_image": True, "weight": w, "from_logits": False, "alpha": 0.3, "smooth": 1e-5}]
    if name == "skeleton_recall":
        return [{}, {"per_image": True}, {"smooth": 0.0}, {"smooth": 1.0, "per_image": True},
                {"classes": [c - 1, 0] if c > 1 else [0]}, {"weight": w}, {"from_logits": False},
                {"per_image": True, "weight": w, "from_logits": False, "smooth": 0.0}]
    opts = [{}, {"per_image": True}, {"log_loss": True}, {"smooth": 0.0}, {"smooth": 1.0, "per_image": True},
            {"classes": [c - 1, 0] if c > 1 else [0]}, {"weight": w}, {"from_logits": False},
            {"per_image": True, "weight": w, "log_loss": True, "from_logits": False}]
    if name in ("tversky", "focal_tversky"):
        opts += [{"alpha": 0.7, "beta": 0.3}, {"alpha": 0.0, "beta": 2.0}]
    if name == "focal_tversky":
        opts += [{"gamma": 2.0}, {"gamma": 0.3, "per_image": True}]
    if name == "generalized_dice":
        opts += [{"weight_type": "simple"}, {"weight_type": "uniform", "per_image": True},
                 {"weight_type": "square", "classes": [c - 1] if c > 1 else [0], "per_image": True}]
    return opts


#: ``{registry name: float64 oracle}``, written by hand: the oracle is the independent source.
_ORACLE = {"focal": oracle.focal, "dice": oracle.dice, "jaccard": oracle.jaccard, "tversky": oracle.tversky,
           "focal_tversky": oracle.focal_tversky, "generalized_dice": oracle.generalized_dice,
           "lovasz": oracle.lovasz, "mcc": oracle_confusion.mcc,
           "generalized_wasserstein_dice": oracle_confusion.generalized_wasserstein_dice,
           "ssim": oracle_structure.ssim, "correlation_ssim": oracle_structure.correlation_ssim,
           "cldice": oracle_topology.cldice, "skeleton_recall": oracle_topology.skeleton_recall,
           **oracle_hard_pixel.ORACLE}
#: The losses checked here, in the registry's order.
NAMES = [row.name for row in _registry.LOSSES if row.name in _ORACLE]


def _ours(name):
    return getattr(S, _registry.BY_NAME[name].function)


def _params():
    for name in NAMES:
        for kind, mode, shape in CASES:
            if name in SPATIAL and len(shape) == 2:
                continue  # no spatial axis: no image structure (an error, tested apart)
            for j, opts in enumerate(_options(name, mode, shape[1])):
                yield pytest.param(name, kind, mode, shape, opts, id=f"{name}-{kind}-{mode}-{len(shape) - 2}d-o{j}")


@pytest.mark.parametrize("name,kind,mode,shape,opts", list(_params()))
def test_equals_oracle(name, kind, mode, shape, opts):
    logits, target, opts = oracle_inputs(kind, mode, shape, opts)
    for reduction in REDUCTIONS:
        expected = _ORACLE[name](logits, target, mode, reduction=reduction, **opts)
        got = _ours(name)(torch.from_numpy(logits), torch.from_numpy(target), mode, reduction=reduction, **opts)
        assert got.dtype == torch.float64
        # atol: the statistics are sums of the rounded probabilities (docs/semantics.md, "Precision"); at saturated
        # logits a gamma < 1 focal-Tversky amplifies that rounding to ~3e-8 on losses of ~1e-4.
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name} {reduction} {opts}")


def test_oracle_sweep_is_not_trivial():
    # Guard: the sweep must cover every kind and mode with non-zero losses somewhere.
    kinds = {k for k, _, _ in CASES}
    assert kinds == {"random", "saturated", "empty", "full", "ignored", "soft"}
    logits, target = make_case("random", "multiclass", (2, 3, 5, 6), seed=0)
    assert oracle.dice(logits, target, "multiclass") > 0.1


@pytest.mark.parametrize("name", [row.name for row in _registry.LOSSES])
def test_every_loss_has_an_oracle(name):
    # A loss of the registry without an oracle would be swept by neither file: add its float64 NumPy oracle to
    # tests/oracle.py (and _ORACLE here) or tests/oracle_survey.py (and _ORACLE of tests/test_survey_oracle.py).
    here, survey = name in _ORACLE, name in test_survey_oracle._ORACLE
    assert here or survey, (f"loss {name!r} ({_registry.BY_NAME[name].function}) has no float64 oracle: add one to "
                            "_ORACLE of tests/test_oracle.py or of tests/test_survey_oracle.py")
    assert not (here and survey), f"loss {name!r} has an oracle in both tests/test_oracle.py and test_survey_oracle.py"


def test_every_oracle_is_a_loss_of_the_registry():
    stale = (set(_ORACLE) | set(test_survey_oracle._ORACLE)) - set(_registry.BY_NAME)
    assert not stale, f"oracle entries for names that are not in seglosses/_registry.py: {sorted(stale)}"
