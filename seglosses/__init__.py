"""seglosses: exact, stable, one-hot-free segmentation losses for PyTorch.

Every loss is a function ``loss(logits, target, mode, **options)`` and a Module ``Loss(mode, **options)``.
Importing this package never imports Keras.
"""

from .focal import FocalLoss, focal_loss, sigmoid_focal_loss
from .lovasz import LovaszLoss, lovasz_loss
from .region import (DiceLoss, FocalTverskyLoss, GeneralizedDiceLoss, JaccardLoss, TverskyLoss, dice_loss,
                     focal_tversky_loss, generalized_dice_loss, jaccard_loss, tversky_loss)
from ._validate import validate

__version__ = "0.1.0"

__all__ = [
    "focal_loss", "FocalLoss", "sigmoid_focal_loss",
    "dice_loss", "DiceLoss",
    "jaccard_loss", "JaccardLoss",
    "tversky_loss", "TverskyLoss",
    "focal_tversky_loss", "FocalTverskyLoss",
    "generalized_dice_loss", "GeneralizedDiceLoss",
    "lovasz_loss", "LovaszLoss",
    "validate",
]
