"""seglosses: exact, stable, one-hot-free segmentation losses for PyTorch and Keras 3.

Every PyTorch loss is a function ``loss(logits, target, mode, **options)`` and a Module ``Loss(mode, **options)``;
:mod:`seglosses.keras` holds the same losses for Keras 3 (TensorFlow, JAX or PyTorch backend).

The PyTorch names are imported on first use, so ``import seglosses.keras`` needs neither torch nor its import
time, and importing this package never imports Keras.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from seglosses import _registry

if TYPE_CHECKING:  # the lazy names, as type checkers read them (tests/test_typing.py keeps them equal to __all__)
    from seglosses.core.module import LossModule
    from seglosses.losses.focal import (
        focal_loss as focal_loss, FocalLoss as FocalLoss, sigmoid_focal_loss as sigmoid_focal_loss,
    )
    from seglosses.losses.region import (
        dice_loss as dice_loss, DiceLoss as DiceLoss, jaccard_loss as jaccard_loss, JaccardLoss as JaccardLoss,
        tversky_loss as tversky_loss, TverskyLoss as TverskyLoss, focal_tversky_loss as focal_tversky_loss,
        FocalTverskyLoss as FocalTverskyLoss, generalized_dice_loss as generalized_dice_loss,
        GeneralizedDiceLoss as GeneralizedDiceLoss, sensitivity_specificity_loss as sensitivity_specificity_loss,
        SensitivitySpecificityLoss as SensitivitySpecificityLoss, log_cosh_dice_loss as log_cosh_dice_loss,
        LogCoshDiceLoss as LogCoshDiceLoss,
    )
    from seglosses.losses.lovasz import lovasz_loss as lovasz_loss, LovaszLoss as LovaszLoss
    from seglosses.losses.cross_entropy import (
        cross_entropy_loss as cross_entropy_loss, CrossEntropyLoss as CrossEntropyLoss,
        weighted_cross_entropy_loss as weighted_cross_entropy_loss,
        WeightedCrossEntropyLoss as WeightedCrossEntropyLoss,
        balanced_cross_entropy_loss as balanced_cross_entropy_loss,
        BalancedCrossEntropyLoss as BalancedCrossEntropyLoss,
    )
    from seglosses.losses.compound import (
        exp_log_loss as exp_log_loss, ExpLogLoss as ExpLogLoss, combo_loss as combo_loss, ComboLoss as ComboLoss,
        unified_focal_loss as unified_focal_loss, UnifiedFocalLoss as UnifiedFocalLoss,
    )
    from seglosses.losses.boundary import (
        boundary_loss as boundary_loss, BoundaryLoss as BoundaryLoss, hausdorff_dt_loss as hausdorff_dt_loss,
        HausdorffDTLoss as HausdorffDTLoss,
    )
    from seglosses.losses.confusion import (
        mcc_loss as mcc_loss, MCCLoss as MCCLoss,
        generalized_wasserstein_dice_loss as generalized_wasserstein_dice_loss,
        GeneralizedWassersteinDiceLoss as GeneralizedWassersteinDiceLoss,
    )
    from seglosses.losses.contour import (
        distance_penalized_cross_entropy_loss as distance_penalized_cross_entropy_loss,
        DistancePenalizedCrossEntropyLoss as DistancePenalizedCrossEntropyLoss,
        shape_aware_loss as shape_aware_loss, ShapeAwareLoss as ShapeAwareLoss,
        boundary_dou_loss as boundary_dou_loss, BoundaryDoULoss as BoundaryDoULoss, contour_maps as contour_maps,
    )
    from seglosses.losses.structure import (
        ssim_loss as ssim_loss, SSIMLoss as SSIMLoss, correlation_ssim_loss as correlation_ssim_loss,
        CorrelationSSIMLoss as CorrelationSSIMLoss,
    )
    from seglosses.distance import (
        edt as edt, signed_distance as signed_distance, boundary_distance as boundary_distance,
        distance_maps as distance_maps,
    )
    from seglosses.losses.topology import (
        cldice_loss as cldice_loss, ClDiceLoss as ClDiceLoss, skeleton_recall_loss as skeleton_recall_loss,
        SkeletonRecallLoss as SkeletonRecallLoss,
    )
    from seglosses.skeleton import soft_skeleton as soft_skeleton, skeleton_maps as skeleton_maps
    from seglosses.core.validate import validate as validate
    from seglosses.kernels.policy import set_cpu_kernels as set_cpu_kernels, get_cpu_kernels as get_cpu_kernels
    from seglosses.core.compose import WeightedSum as WeightedSum, from_config as from_config
    from seglosses.core.schedules import (
        Schedule as Schedule, constant as constant, linear as linear, cosine as cosine, piecewise as piecewise,
        rebalance as rebalance,
    )
    from seglosses.core.supervision import DeepSupervision as DeepSupervision
    from seglosses.losses.hard_pixel import (
        topk_cross_entropy_loss as topk_cross_entropy_loss, TopKCrossEntropyLoss as TopKCrossEntropyLoss,
        ohem_cross_entropy_loss as ohem_cross_entropy_loss, OHEMCrossEntropyLoss as OHEMCrossEntropyLoss,
    )
    from seglosses.losses.focal import poly_loss as poly_loss, PolyLoss as PolyLoss
    from seglosses.weighting import class_counts as class_counts, class_weights as class_weights
    from seglosses.metrics import (
        ConfusionMetrics as ConfusionMetrics, SurfaceMetrics as SurfaceMetrics, confusion_matrix as confusion_matrix,
        confusion_scores as confusion_scores, hausdorff_distance as hausdorff_distance, surface_dice as surface_dice,
    )

__version__ = "0.1.0"

_EXPORTS = _registry.exports()

__all__ = list(_EXPORTS) + ["loss_classes"]


def loss_classes() -> dict[str, type[LossModule]]:
    """``{name: class}`` of every public loss Module (the names :func:`from_config` accepts)."""
    from seglosses.core.module import LossModule

    out = {}
    for loss in _registry.LOSSES:
        value = __getattr__(loss.cls)
        if not (isinstance(value, type) and issubclass(value, LossModule)):  # (a defect of the table)
            raise TypeError(f"seglosses._registry: {loss.cls} is not a LossModule")
        out[loss.cls] = value
    return out


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seglosses' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
