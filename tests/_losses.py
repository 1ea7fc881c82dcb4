"""The public losses with the options they take, for tests that sweep every loss."""

import seglosses as S

LOSSES = {
    "focal": S.focal_loss,
    "dice": S.dice_loss,
    "jaccard": S.jaccard_loss,
    "tversky": S.tversky_loss,
    "focal_tversky": S.focal_tversky_loss,
    "generalized_dice": S.generalized_dice_loss,
    "lovasz": S.lovasz_loss,
    "cross_entropy": S.cross_entropy_loss,
    "weighted_cross_entropy": S.weighted_cross_entropy_loss,
    "balanced_cross_entropy": S.balanced_cross_entropy_loss,
    "sensitivity_specificity": S.sensitivity_specificity_loss,
    "log_cosh_dice": S.log_cosh_dice_loss,
    "exp_log": S.exp_log_loss,
    "combo": S.combo_loss,
    "unified_focal": S.unified_focal_loss,
    "boundary": S.boundary_loss,
    "hausdorff_dt": S.hausdorff_dt_loss,
}

MODULES = {
    "focal": S.FocalLoss,
    "dice": S.DiceLoss,
    "jaccard": S.JaccardLoss,
    "tversky": S.TverskyLoss,
    "focal_tversky": S.FocalTverskyLoss,
    "generalized_dice": S.GeneralizedDiceLoss,
    "lovasz": S.LovaszLoss,
    "cross_entropy": S.CrossEntropyLoss,
    "weighted_cross_entropy": S.WeightedCrossEntropyLoss,
    "balanced_cross_entropy": S.BalancedCrossEntropyLoss,
    "sensitivity_specificity": S.SensitivitySpecificityLoss,
    "log_cosh_dice": S.LogCoshDiceLoss,
    "exp_log": S.ExpLogLoss,
    "combo": S.ComboLoss,
    "unified_focal": S.UnifiedFocalLoss,
    "boundary": S.BoundaryLoss,
    "hausdorff_dt": S.HausdorffDTLoss,
}

MODES = ("binary", "multiclass", "multilabel")

#: Losses taking ``per_image`` (statistics per image).
PER_IMAGE = {"dice", "jaccard", "tversky", "focal_tversky", "generalized_dice", "lovasz", "sensitivity_specificity",
             "log_cosh_dice", "exp_log", "unified_focal"}
#: Losses taking ``classes`` (a selection of class indices).
CLASSES = {"dice", "jaccard", "tversky", "focal_tversky", "generalized_dice", "lovasz", "sensitivity_specificity",
           "log_cosh_dice", "boundary", "hausdorff_dt"}
#: Losses taking per-class ``weight``.
WEIGHTED = (CLASSES - {"boundary", "hausdorff_dt"}) | {"focal", "cross_entropy"}
#: Distance-based losses (1 to 3 spatial axes; SciPy or torch distance transforms).
DISTANCE = {"boundary", "hausdorff_dt"}
#: Compound losses: reduction "mean" or "sum" only.
COMPOUND = {"exp_log", "combo", "unified_focal"}
#: Losses with a focusing exponent ``gamma``.
GAMMA = {"focal", "focal_tversky", "unified_focal"}


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
