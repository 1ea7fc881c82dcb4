"""The survey losses equal their float64 NumPy oracle (tests/oracle_survey.py) on every case kind, mode and option."""

import numpy as np
import pytest
import torch

import oracle_contour
import oracle_survey as O
import seglosses as S
from _losses import DISTANCE, SPATIAL
from cases import CASES, oracle_inputs
from seglosses import _registry

#: ``{registry name: float64 oracle}``, written by hand: the oracle is the independent source (every loss of the
#: registry has one here or in tests/test_oracle.py, which checks that).
_ORACLE = {
    "cross_entropy": O.cross_entropy,
    "weighted_cross_entropy": O.weighted_cross_entropy,
    "balanced_cross_entropy": O.balanced_cross_entropy,
    "sensitivity_specificity": O.sensitivity_specificity,
    "log_cosh_dice": O.log_cosh_dice,
    "exp_log": O.exp_log,
    "combo": O.combo,
    "unified_focal": O.unified_focal,
    "boundary": O.boundary,
    "hausdorff_dt": O.hausdorff_dt,
    "distance_penalized_cross_entropy": oracle_contour.distance_penalized_cross_entropy,
    "shape_aware": oracle_contour.shape_aware,
    "boundary_dou": oracle_contour.boundary_dou,
}
#: The losses checked here, in the registry's order.
NAMES = [row.name for row in _registry.LOSSES if row.name in _ORACLE]


def _options(name, mode, c, shape=()):
    w = [0.5 + 0.5 * i for i in range(c)]
    per_class = [0.2 + 0.6 * i / max(c - 1, 1) for i in range(c)]
    common = [{}, {"from_logits": False}]
    if name == "cross_entropy":
        return common + [{"weight": w}, {"label_smoothing": 0.1}]
    if name == "weighted_cross_entropy":
        return common + [{"beta": 3.0}, {"beta": per_class, "label_smoothing": 0.2},
                         {"beta": 0.0, "from_logits": False}]
    if name == "balanced_cross_entropy":
        return common + [{"beta": 0.8}, {"beta": "auto"}, {"beta": per_class, "label_smoothing": 0.1},
                         {"beta": "auto", "from_logits": False}]
    if name in ("sensitivity_specificity", "log_cosh_dice"):
        opts = common + [{"per_image": True}, {"smooth": 0.0}, {"weight": w, "per_image": True},
                         {"classes": [c - 1, 0] if c > 1 else [0]}]
        if name == "sensitivity_specificity":
            opts += [{"r": 0.5}, {"r": 1.0, "smooth": 1.0}]
        return opts
    if name == "exp_log":
        freq = [1.0 + 2 * i for i in range(c)] if mode == "multiclass" else [0.1 + 0.3 * i / max(c - 1, 1)
                                                                             for i in range(c)]
        return common + [{"per_image": True}, {"gamma_dice": 1.0, "gamma_cross": 2.0, "smooth": 0.0},
                         {"class_frequency": freq}, {"w_dice": 0.3, "w_cross": 0.7, "gamma_cross": 0.0}]
    if name == "combo":
        return common + [{"alpha": 0.2, "beta": 0.7}, {"beta": "auto", "smooth": 0.0}, {"alpha": 1.0}]
    if name == "unified_focal":
        opts = common + [{"asymmetric": False}, {"per_image": True}, {"gamma": 0.0, "delta": 0.3},
                         {"gamma": 1.0, "lam": 0.2}, {"gamma": 0.2, "smooth": 1.0, "asymmetric": False}]
        if mode == "multiclass":
            opts.append({"background": c - 1})
        return opts
    if name == "boundary_dou":
        return common + [{"per_image": True}, {"classes": [c - 1, 0] if c > 1 else [0]},
                         {"per_image": True, "from_logits": False}]
    if name in DISTANCE:
        spacing = {2: (2.0, 0.5), 3: (1.5, 1.0, 0.7)}
        opts = common + [{"backend": "torch"}]
        if "classes" in _registry.options(name):
            opts.append({"classes": [c - 1, 0] if c > 1 else [0]})
        if len(shape) > 2:
            opts.append({"spacing": spacing[len(shape) - 2], "backend": "torch"})
            opts.append({"spacing": spacing[len(shape) - 2]})
        if name == "hausdorff_dt":
            opts += [{"alpha": 1.0}, {"alpha": 0.5, "from_logits": False}]
        return opts
    raise KeyError(name)


def _params():
    for name in NAMES:
        for kind, mode, shape in CASES:
            if name in SPATIAL and len(shape) == 2:
                continue  # no spatial axis: no distance nor contour (an error, tested apart)
            for j, opts in enumerate(_options(name, mode, shape[1], shape)):
                yield pytest.param(name, kind, mode, shape, opts, id=f"{name}-{kind}-{mode}-{len(shape) - 2}d-o{j}")


@pytest.mark.parametrize("name,kind,mode,shape,opts", list(_params()))
def test_equals_oracle(name, kind, mode, shape, opts):
    row = _registry.BY_NAME[name]
    ours, theirs = getattr(S, row.function), _ORACLE[name]
    logits, target, opts = oracle_inputs(kind, mode, shape, opts)
    for reduction in [r for r in ("mean", "sum", "none") if r in row.reductions]:
        expected = theirs(logits, target, mode, reduction=reduction,
                          **{k: v for k, v in opts.items() if k != "backend"})
        got = ours(torch.from_numpy(logits), torch.from_numpy(target), mode, reduction=reduction, **opts)
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name} {reduction} {opts}")


def test_sweep_is_not_trivial():
    logits, target, _ = oracle_inputs("random", "multiclass", (2, 3, 5, 6), {})
    for name, theirs in _ORACLE.items():
        assert theirs(logits, target, "multiclass") > 0.05, name
