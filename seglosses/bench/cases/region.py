"""The region (overlap) family's cases: Dice, Jaccard, Tversky, focal-Tversky and generalized Dice against smp,
monai, kornia and Keras."""

from __future__ import annotations

import torch

from ..settings import FT_GAMMA, SMOOTH, TV_ALPHA, TV_BETA
from .base import (KORNIA_2D_ONLY, Builder, Case, keras_fn, module_fn, monai_target, onehot_target, plain_target,
                   softmax1)


def region_cases(b: Builder) -> list[Case]:
    """The region cases of a (non-distance) setting: dice, jaccard, tversky, focal_tversky, generalized_dice."""
    mode, binary, two_d, act, spatial_axes = b.mode, b.binary, b.two_d, b.act, b.spatial_axes
    cases: list[Case] = []
    # ---- dice --------------------------------------------------------------------------------------------------
    case = Case(b.setting, "dice", [])
    b.ours_impl(case, "dice_loss")
    b.peer(
        case,
        "smp",
        "smp DiceLoss",
        lambda: module_fn(lambda inp: b.losses("smp").DiceLoss(mode, smooth=SMOOTH / 2), plain_target),
        note=f"smooth={SMOOTH / 2:g}: smp adds smooth to I and to (|X|+|Y|)/2, so (2I+{SMOOTH:g})/(|X|+|Y|+{SMOOTH:g})",
    )
    b.peer(
        case,
        "monai",
        "monai DiceLoss",
        lambda: module_fn(lambda inp: b.losses("monai").DiceLoss(batch=True, **act), monai_target),
        note="batch=True (statistics summed over the batch, as ours with per_image=False); smooth_nr=smooth_dr=1e-5",
    )
    b.peer(
        case,
        "keras",
        "keras Dice",
        lambda: module_fn(lambda inp: keras_fn(b.losses("keras").Dice(axis=(0,) + spatial_axes),
                                               torch.sigmoid if binary else softmax1),
                          plain_target if binary else onehot_target),
        note="axis=(0, *spatial): one score per class over the batch (ours' per_image=False); Keras has no "
        "smoothing and no logits option (activation applied in the timed call)",
    )
    if binary:
        case.skipped.append("kornia dice_loss: softmax-only (a 1-channel binary input gives a constant loss)")
    elif two_d:
        b.peer(
            case,
            "kornia",
            "kornia dice_loss",
            lambda: module_fn(
                lambda inp: (lambda f: lambda x, t: f(x, t, average="macro", eps=SMOOTH, ignore_index=None))(
                    b.losses("kornia").dice_loss
                ),
                plain_target,
            ),
            ref={"per_image": True},
            note="kornia's Dice is per image: average='macro' checked against ours(per_image=True); kornia adds eps "
            "to the denominator only",
        )
    else:
        case.skipped.append(KORNIA_2D_ONLY.format("dice_loss"))
    cases.append(case)

    # ---- jaccard -----------------------------------------------------------------------------------------------
    case = Case(b.setting, "jaccard", [])
    b.ours_impl(case, "jaccard_loss")
    b.peer(
        case,
        "smp",
        "smp JaccardLoss",
        lambda: module_fn(lambda inp: b.losses("smp").JaccardLoss(mode, smooth=SMOOTH), plain_target),
    )
    b.peer(
        case,
        "monai",
        "monai DiceLoss(jaccard=True)",
        lambda: module_fn(
            lambda inp: b.losses("monai").DiceLoss(
                jaccard=True, batch=True, smooth_nr=2 * SMOOTH, smooth_dr=2 * SMOOTH, **act
            ),
            monai_target,
        ),
        note=f"smooth_nr=smooth_dr={2 * SMOOTH:g}: monai's Jaccard is (2I+s)/(2U+s); batch=True",
    )
    case.skipped.append("kornia: no Jaccard loss")
    cases.append(case)

    # ---- tversky -----------------------------------------------------------------------------------------------
    case = Case(b.setting, "tversky", [])
    b.ours_impl(case, "tversky_loss", alpha=TV_ALPHA, beta=TV_BETA)
    b.peer(
        case,
        "smp",
        "smp TverskyLoss",
        lambda: module_fn(
            lambda inp: b.losses("smp").TverskyLoss(mode, smooth=SMOOTH, alpha=TV_ALPHA, beta=TV_BETA), plain_target
        ),
    )
    b.peer(
        case,
        "monai",
        "monai TverskyLoss",
        lambda: module_fn(
            lambda inp: b.losses("monai").TverskyLoss(alpha=TV_ALPHA, beta=TV_BETA, batch=True, **act), monai_target
        ),
        note="batch=True; smooth_nr=smooth_dr=1e-5",
    )
    b.peer(
        case,
        "keras",
        "keras Tversky",
        lambda: module_fn(lambda inp: keras_fn(b.losses("keras").Tversky(alpha=TV_BETA, beta=TV_ALPHA,
                                                                       axis=(0,) + spatial_axes),
                                               torch.sigmoid if binary else softmax1),
                          plain_target if binary else onehot_target),
        note=f"alpha={TV_BETA:g}, beta={TV_ALPHA:g}: Keras' alpha weighs false negatives (Salehi's and ours, false "
        "positives; checked on keras 3.15.1); axis=(0, *spatial); no smoothing; activation in the timed call",
    )
    if binary:
        case.skipped.append("kornia tversky_loss: softmax-only")
    elif two_d:
        b.peer(
            case,
            "kornia",
            "kornia tversky_loss",
            lambda: module_fn(
                lambda inp: (
                    lambda f: lambda x, t: f(x, t, alpha=TV_ALPHA, beta=TV_BETA, eps=SMOOTH, ignore_index=None)
                )(b.losses("kornia").tversky_loss),
                plain_target,
            ),
            ref={"per_image": True},
            note="kornia's Tversky is per image: checked against ours(per_image=True); eps in the denominator only",
        )
    else:
        case.skipped.append(KORNIA_2D_ONLY.format("tversky_loss"))
    cases.append(case)

    # ---- focal tversky -----------------------------------------------------------------------------------------
    case = Case(b.setting, "focal_tversky", [])
    b.ours_impl(case, "focal_tversky_loss", alpha=TV_ALPHA, beta=TV_BETA, gamma=FT_GAMMA)
    b.peer(
        case,
        "smp",
        "smp TverskyLoss(gamma)",
        lambda: module_fn(
            lambda inp: b.losses("smp").TverskyLoss(mode, smooth=SMOOTH, alpha=TV_ALPHA, beta=TV_BETA, gamma=FT_GAMMA),
            plain_target,
        ),
        known_diff=None if binary else "smp raises the class mean to gamma, (mean_c l_c)^gamma; ours averages "
        "l_c^gamma (same for one class)",
    )
    case.skipped.append("monai: no focal-Tversky (AsymmetricFocalTverskyLoss is a different loss)")
    case.skipped.append("kornia: no focal-Tversky")
    cases.append(case)

    # ---- generalized dice --------------------------------------------------------------------------------------
    case = Case(b.setting, "generalized_dice", [])
    b.ours_impl(case, "generalized_dice_loss", weight_type="square")
    b.peer(
        case,
        "monai",
        "monai GeneralizedDiceLoss",
        lambda: module_fn(
            lambda inp: b.losses("monai").GeneralizedDiceLoss(w_type="square", batch=True, **act), monai_target
        ),
        note="batch=True (one score over the batch, as ours with per_image=False); smooth_nr=smooth_dr=1e-5",
    )
    case.skipped.append("smp, kornia: no generalized Dice")
    cases.append(case)
    return cases
