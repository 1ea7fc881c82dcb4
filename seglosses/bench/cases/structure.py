"""The structure family's cases: the SSIM loss against MONAI's SSIMLoss and kornia's ssim_loss."""

from __future__ import annotations

from .base import KORNIA_2D_ONLY, Builder, Case, module_fn, onehot_target, softmax1


def structure_cases(b: Builder) -> list[Case]:
    """The cases of a spatial setting (every class, softmax): ssim (window 11, sigma 1.5; 7 in 3-D, where the quick
    volumes are 8 wide and a window wider than the volume is an error in MONAI).

    Both peers take probabilities and a one-hot target, so the softmax is timed with them and the one-hot target is
    built outside the timed region; they use "valid" windows, so they are compared with ours at padding="valid"."""
    case = Case(b.setting, "ssim", [])
    spatial_dims = len(b.spatial_axes)
    win = 11 if spatial_dims == 2 else 7
    b.ours_impl(case, "ssim_loss", window_size=win)
    b.peer(
        case,
        "monai",
        "monai SSIMLoss",
        lambda: module_fn(lambda inp: (lambda crit: lambda x, t: crit(softmax1(x), t))(
            b.losses("monai").SSIMLoss(spatial_dims=spatial_dims, data_range=1.0, win_size=win, kernel_sigma=1.5)),
            onehot_target),
        ref={"padding": "valid"},
        note="softmax + one-hot target (built outside the timed region); monai's windows are 'valid' (no padding): "
        "ours with padding='valid' is the same loss",
    )
    if b.two_d:
        b.peer(
            case,
            "kornia",
            "kornia ssim_loss",
            lambda: module_fn(lambda inp: (lambda f: lambda x, t: 2 * f(softmax1(x), t, win, max_val=1.0, eps=0.0,
                                                                        padding="valid"))(
                b.losses("kornia").ssim_loss), onehot_target),
            ref={"padding": "valid"},
            note="kornia returns (1 - SSIM) / 2: timed x 2; padding='valid', eps=0 (ours has no eps term)",
        )
    else:
        case.skipped.append(KORNIA_2D_ONLY.format("ssim_loss"))
    return [case]
