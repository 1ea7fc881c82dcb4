"""The confusion family's cases: the MCC loss against MONAI (and smp, binary) and the generalized Wasserstein Dice
loss against MONAI."""

from __future__ import annotations

import torch

from .base import Builder, Case, module_fn, monai_target, plain_target

#: The settings of each case: MCC wherever a region loss runs; the Wasserstein Dice (multiclass only, one distance
#: per pair of classes) where MONAI's (N, C, C, S) expansion of the matrix fits (not 150 classes).
MCC_SETTINGS = ("binary", "multiclass", "manyclass", "multiclass3d")
GWDL_SETTINGS = ("multiclass", "multiclass3d")


def zero_one(c: int) -> list[list[float]]:
    """The 0-1 distance between C classes, 1 - I."""
    return [[float(i != j) for j in range(c)] for i in range(c)]


def confusion_cases(b: Builder) -> list[Case]:
    """The MCC and generalized Wasserstein Dice cases of a (non-distance) setting."""
    mode, binary, act = b.mode, b.binary, b.act
    cases: list[Case] = []
    if b.setting in MCC_SETTINGS:
        case = Case(b.setting, "mcc", [])
        b.ours_impl(case, "mcc_loss")
        b.peer(
            case,
            "monai",
            "monai MCCLoss",
            lambda: module_fn(lambda inp: b.losses("monai").MCCLoss(batch=True, **act), monai_target),
            note="batch=True (statistics summed over the batch, as ours with per_image=False); smooth_nr=0, "
            "smooth_dr=1e-5 under the square root",
        )
        if binary:
            b.peer(
                case,
                "smp",
                "smp MCCLoss",
                lambda: module_fn(lambda inp: (lambda f: lambda x, t: f(torch.sigmoid(x), t))(
                    b.losses("smp").MCCLoss()), plain_target),
                note="smp takes probabilities: the sigmoid runs in the timed call; eps=1e-5 added to each statistic",
            )
        else:
            case.skipped.append("smp MCCLoss: binary only")
        case.skipped.append("kornia, Keras: no MCC loss")
        cases.append(case)
    if b.setting in GWDL_SETTINGS:
        case = Case(b.setting, "generalized_wasserstein_dice", [])

        def ours(func, inp):  # the 0-1 matrix of the input's C given explicitly: the general-matrix path is timed
            t, m = inp.target, zero_one(inp.num_classes)  # (the reference: distance_matrix=None, the same values)
            return lambda x: func(x, t, mode, distance_matrix=m, per_image=True)

        b.ours_impl(case, "generalized_wasserstein_dice_loss", call=ours, per_image=True)
        b.peer(
            case,
            "monai",
            "monai GeneralizedWassersteinDiceLoss",
            lambda: module_fn(lambda inp: b.losses("monai").GeneralizedWassersteinDiceLoss(
                torch.tensor(zero_one(inp.num_classes))), plain_target),
            note="one value per image (ours with per_image=True); the 0-1 distance as an explicit (C, C) matrix in "
            "both (ours then runs its general-matrix path); smooth_nr=smooth_dr=1e-5",
        )
        case.skipped.append("smp, kornia, Keras: no Wasserstein Dice")
        cases.append(case)
    return cases
