"""seglosses: exact, stable, one-hot-free segmentation losses for PyTorch and Keras 3.

Every PyTorch loss is a function ``loss(logits, target, mode, **options)`` and a Module ``Loss(mode, **options)``;
:mod:`seglosses.keras` holds the same losses for Keras 3 (TensorFlow, JAX or PyTorch backend).

The PyTorch names are imported on first use, so ``import seglosses.keras`` needs neither torch nor its import
time, and importing this package never imports Keras.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "focal_loss": "focal", "FocalLoss": "focal", "sigmoid_focal_loss": "focal",
    "dice_loss": "region", "DiceLoss": "region",
    "jaccard_loss": "region", "JaccardLoss": "region",
    "tversky_loss": "region", "TverskyLoss": "region",
    "focal_tversky_loss": "region", "FocalTverskyLoss": "region",
    "generalized_dice_loss": "region", "GeneralizedDiceLoss": "region",
    "lovasz_loss": "lovasz", "LovaszLoss": "lovasz",
    "cross_entropy_loss": "cross_entropy", "CrossEntropyLoss": "cross_entropy",
    "weighted_cross_entropy_loss": "cross_entropy", "WeightedCrossEntropyLoss": "cross_entropy",
    "balanced_cross_entropy_loss": "cross_entropy", "BalancedCrossEntropyLoss": "cross_entropy",
    "log_cosh_dice_loss": "region", "LogCoshDiceLoss": "region",
    "sensitivity_specificity_loss": "region", "SensitivitySpecificityLoss": "region",
    "exp_log_loss": "compound", "ExpLogLoss": "compound",
    "combo_loss": "compound", "ComboLoss": "compound",
    "unified_focal_loss": "compound", "UnifiedFocalLoss": "compound",
    "boundary_loss": "boundary", "BoundaryLoss": "boundary",
    "hausdorff_dt_loss": "boundary", "HausdorffDTLoss": "boundary",
    "edt": "distance", "signed_distance": "distance", "boundary_distance": "distance",
    "distance_maps": "distance",
    "validate": "_validate",
    "set_cpu_kernels": "_inductor", "get_cpu_kernels": "_inductor",
    "WeightedSum": "compose", "from_config": "compose",
}

__all__ = list(_EXPORTS) + ["loss_classes"]


def loss_classes() -> dict:
    """``{name: class}`` of every public loss Module (the names :func:`from_config` accepts)."""
    from ._module import LossModule

    out = {}
    for name in _EXPORTS:
        if name[0].isupper():
            value = __getattr__(name)
            if isinstance(value, type) and issubclass(value, LossModule):
                out[name] = value
    return out


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seglosses' has no attribute {name!r}")
    value = getattr(import_module(f"seglosses.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
