"""The public losses with the modes they take, for tests that sweep every loss."""

import seglosses as S

LOSSES = {
    "focal": S.focal_loss,
    "dice": S.dice_loss,
    "jaccard": S.jaccard_loss,
    "tversky": S.tversky_loss,
    "focal_tversky": S.focal_tversky_loss,
    "generalized_dice": S.generalized_dice_loss,
    "lovasz": S.lovasz_loss,
}

MODULES = {
    "focal": S.FocalLoss,
    "dice": S.DiceLoss,
    "jaccard": S.JaccardLoss,
    "tversky": S.TverskyLoss,
    "focal_tversky": S.FocalTverskyLoss,
    "generalized_dice": S.GeneralizedDiceLoss,
    "lovasz": S.LovaszLoss,
}

MODES = ("binary", "multiclass", "multilabel")
