"""The table of losses: one row per loss, read by every consumer.

The public exports of :mod:`seglosses` and :mod:`seglosses.keras`, :func:`seglosses.loss_classes` (the names
:func:`seglosses.from_config` accepts), the demo's ``--losses`` names and the tests' sweeps over every loss all come
from :data:`LOSSES`. What a loss accepts (``ignore_index``, ``per_image``, ``classes``, ``weight``, ``gamma``, ...) is
read from its function's signature (:func:`options`), not listed here. Adding a loss: docs/architecture.md.

This module imports nothing heavier than the standard library, so ``seglosses.keras`` can read it without torch.
"""

from __future__ import annotations

from typing import NamedTuple

#: The modes every loss takes.
MODES = ("binary", "multiclass", "multilabel")
#: The reductions of most losses; the compound ones give "mean" or "sum" only.
REDUCTIONS = ("none", "mean", "sum")


class Loss(NamedTuple):
    """One loss: ``seglosses.<name>_loss`` and ``seglosses.<cls>``, defined in ``seglosses.losses.<family>``
    (PyTorch) and exported by :mod:`seglosses.keras` under the same two names."""

    name: str
    cls: str
    family: str
    reductions: tuple[str, ...] = REDUCTIONS

    @property
    def function(self) -> str:
        """The function's public name, ``<name>_loss``."""
        return f"{self.name}_loss"

    @property
    def module(self) -> str:
        """The PyTorch module that defines the function and its Module class."""
        return f"seglosses.losses.{self.family}"

    @property
    def spatial(self) -> bool:
        """Whether the loss needs 1 to 3 spatial axes (it reads the image's structure, not pixels one by one)."""
        return self.family in SPATIAL_FAMILIES


_COMPOUND = ("mean", "sum")

#: The families whose losses read the image's structure (distances, skeletons, windows, contours): their inputs need
#: 1 to 3 spatial axes, where every other loss takes 0 to 3.
SPATIAL_FAMILIES = ("boundary", "topology", "structure", "contour")

#: Every loss, in the order of the docs (the family order of docs/semantics.md).
LOSSES: tuple[Loss, ...] = (
    Loss("focal", "FocalLoss", "focal"),
    Loss("dice", "DiceLoss", "region"),
    Loss("jaccard", "JaccardLoss", "region"),
    Loss("tversky", "TverskyLoss", "region"),
    Loss("focal_tversky", "FocalTverskyLoss", "region"),
    Loss("generalized_dice", "GeneralizedDiceLoss", "region"),
    Loss("lovasz", "LovaszLoss", "lovasz"),
    Loss("cross_entropy", "CrossEntropyLoss", "cross_entropy"),
    Loss("weighted_cross_entropy", "WeightedCrossEntropyLoss", "cross_entropy"),
    Loss("balanced_cross_entropy", "BalancedCrossEntropyLoss", "cross_entropy"),
    Loss("sensitivity_specificity", "SensitivitySpecificityLoss", "region"),
    Loss("log_cosh_dice", "LogCoshDiceLoss", "region"),
    Loss("exp_log", "ExpLogLoss", "compound", _COMPOUND),
    Loss("combo", "ComboLoss", "compound", _COMPOUND),
    Loss("unified_focal", "UnifiedFocalLoss", "compound", _COMPOUND),
    Loss("boundary", "BoundaryLoss", "boundary"),
    Loss("hausdorff_dt", "HausdorffDTLoss", "boundary"),
    Loss("mcc", "MCCLoss", "confusion"),
    Loss("generalized_wasserstein_dice", "GeneralizedWassersteinDiceLoss", "confusion"),
    Loss("distance_penalized_cross_entropy", "DistancePenalizedCrossEntropyLoss", "contour"),
    Loss("shape_aware", "ShapeAwareLoss", "contour"),
    Loss("boundary_dou", "BoundaryDoULoss", "contour"),
    Loss("topk_cross_entropy", "TopKCrossEntropyLoss", "hard_pixel"),
    Loss("ohem_cross_entropy", "OHEMCrossEntropyLoss", "hard_pixel"),
    Loss("poly", "PolyLoss", "focal"),
    Loss("ssim", "SSIMLoss", "structure"),
    Loss("correlation_ssim", "CorrelationSSIMLoss", "structure"),
    Loss("cldice", "ClDiceLoss", "topology"),
    Loss("skeleton_recall", "SkeletonRecallLoss", "topology"),
)

BY_NAME: dict[str, Loss] = {loss.name: loss for loss in LOSSES}

#: The public PyTorch names that are not a loss's function or Module: ``{name: defining module}``.
TOOLS: dict[str, str] = {
    "sigmoid_focal_loss": "seglosses.losses.focal",
    "edt": "seglosses.distance",
    "signed_distance": "seglosses.distance",
    "boundary_distance": "seglosses.distance",
    "distance_maps": "seglosses.distance",
    "contour_maps": "seglosses.losses.contour",
    "soft_skeleton": "seglosses.skeleton",
    "skeleton_maps": "seglosses.skeleton",
    "validate": "seglosses.core.validate",
    "set_cpu_kernels": "seglosses.kernels.policy",
    "get_cpu_kernels": "seglosses.kernels.policy",
    "WeightedSum": "seglosses.core.compose",
    "from_config": "seglosses.core.compose",
    "class_counts": "seglosses.weighting",
    "class_weights": "seglosses.weighting",
    "ConfusionMetrics": "seglosses.metrics",
    "SurfaceMetrics": "seglosses.metrics",
    "confusion_matrix": "seglosses.metrics",
    "confusion_scores": "seglosses.metrics",
    "hausdorff_distance": "seglosses.metrics",
    "surface_dice": "seglosses.metrics",
    "Schedule": "seglosses.core.schedules",
    "constant": "seglosses.core.schedules",
    "linear": "seglosses.core.schedules",
    "cosine": "seglosses.core.schedules",
    "piecewise": "seglosses.core.schedules",
    "rebalance": "seglosses.core.schedules",
    "DeepSupervision": "seglosses.core.supervision",
}


def exports() -> dict[str, str]:
    """``{public name: defining module}`` of :mod:`seglosses` (each loss's function and Module, then the tools)."""
    out = {}
    for loss in LOSSES:
        out[loss.function] = out[loss.cls] = loss.module
    out.update(TOOLS)
    return out


def options(loss: Loss | str) -> frozenset[str]:
    """The keyword options of a loss's PyTorch function (imports torch): ``"ignore_index" in options("dice")``."""
    import importlib
    import inspect

    loss = BY_NAME[loss] if isinstance(loss, str) else loss
    fn = getattr(importlib.import_module(loss.module), loss.function)
    return frozenset(p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY)
