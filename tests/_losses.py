"""Every loss of the registry (seglosses/_registry.py) with the options it takes, for tests that sweep every loss.

The names, functions and Modules come from the registry's rows; the capability sets below are read from each
function's signature (:func:`seglosses._registry.options`) or the row, so a new loss joins every sweep by its row alone.
What stays here is test data no signature holds (:func:`per_class_option`, :func:`sweep_options`).
"""

import seglosses as S
from seglosses import _registry

#: ``{name: function}`` of every loss, in the registry's order.
LOSSES = {row.name: getattr(S, row.function) for row in _registry.LOSSES}
#: ``{name: Module class}`` of every loss.
MODULES = {row.name: getattr(S, row.cls) for row in _registry.LOSSES}

MODES = _registry.MODES


def _taking(option):
    return {row.name for row in _registry.LOSSES if option in _registry.options(row)}


#: Losses taking ``per_image`` (statistics per image).
PER_IMAGE = _taking("per_image")
#: Losses taking ``classes`` (a selection of class indices).
CLASSES = _taking("classes")
#: Losses taking per-class ``weight``.
WEIGHTED = _taking("weight")
#: Distance-based losses (1 to 3 spatial axes; SciPy or torch distance transforms): those taking ``spacing`` and
#: ``backend`` (the boundary family, and the contour losses that measure distances).
DISTANCE = {row.name for row in _registry.LOSSES if {"spacing", "backend"} <= _registry.options(row)}
#: Losses that need 1 to 3 spatial axes (distances, skeletons, windows, contours): no 0-D case.
SPATIAL = {row.name for row in _registry.LOSSES if row.spatial}
#: Losses whose weights are computed from detached probabilities (correlation SSIM's e and f): their gradient is that
#: of the loss with the weights held, which a finite-difference gradcheck cannot see (tests/test_structure.py checks
#: it against the oracle's weights instead).
HELD_WEIGHTS = {"correlation_ssim"}
#: Per-call tensor inputs (precomputed maps): ``{loss: keyword}``.
MAPS = {"boundary": "dist_maps", "hausdorff_dt": "target_dist", "skeleton_recall": "skeletons",
        "distance_penalized_cross_entropy": "dist_maps", "shape_aware": "dist_maps"}
#: Compound losses: reduction "mean" or "sum" only.
COMPOUND = {row.name for row in _registry.LOSSES if "none" not in row.reductions}
#: Losses with a focusing exponent ``gamma``.
GAMMA = _taking("gamma")


def per_class_option(name, c):
    """A per-class vector option of the loss (kept as a Module buffer), or {} if it has none."""
    if name in WEIGHTED:
        return {"weight": [1.0 + i for i in range(c)]}
    if name in ("weighted_cross_entropy", "balanced_cross_entropy"):
        return {"beta": [0.2 + 0.3 * i / max(c - 1, 1) for i in range(c)]}
    if name == "exp_log":
        return {"class_frequency": [0.1 + 0.2 * i / max(c - 1, 1) for i in range(c)]}
    return {}


def sweep_options(name, mode, c, *, ignore=True, per_class=True):
    """Options that exercise a loss's selection paths: ignore_index 255, per-class vectors as Python lists, a
    non-consecutive class selection (indexed, not sliced), a focal alpha; compound losses reduce by "mean"."""
    kw = {"ignore_index": 255} if ignore else {}
    if per_class:
        kw.update(per_class_option(name, c))
    if name in COMPOUND:
        kw["reduction"] = "mean"
    if name in CLASSES and mode != "binary":
        kw["classes"] = [0, 2, 3]
    if name == "focal" and per_class:
        kw["alpha"] = 0.25 if mode != "multiclass" else [0.2 + 0.1 * i for i in range(c)]
    return kw


def torch_case(mode, *, n=2, c=3, hw=(5, 6), seed=0, dtype=None, scale=2.0, ignore=True):
    """Logits and a hard target for ``mode`` (C = 1 for binary), about 30% of the target set to 255 if ``ignore``."""
    import torch

    dtype = torch.float64 if dtype is None else dtype
    g = torch.Generator().manual_seed(seed)
    c = 1 if mode == "binary" else c
    x = torch.randn(n, c, *hw, generator=g, dtype=torch.float64).mul(scale).to(dtype)
    if mode == "multiclass":
        t = torch.randint(0, c, (n, *hw), generator=g)
    else:
        t = (torch.rand(n, c, *hw, generator=g) > 0.5).to(dtype)
    if ignore:
        t[torch.rand(t.shape, generator=g) < 0.3] = 255
    return x, t
