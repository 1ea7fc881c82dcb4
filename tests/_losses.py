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
