"""The Lovasz family's cases: the Lovasz hinge (binary) and Lovasz-softmax (multiclass) against smp and kornia."""

from __future__ import annotations

from .base import Builder, Case, module_fn, plain_target, target_squeezed


def lovasz_cases(b: Builder) -> list[Case]:
    """The Lovasz case of the binary and multiclass settings (none in the other settings)."""
    mode, binary = b.mode, b.binary
    if b.setting not in ("binary", "multiclass"):
        return []
    case = Case(b.setting, "lovasz", [])
    b.ours_impl(case, "lovasz_loss")
    b.peer(
        case,
        "smp",
        "smp LovaszLoss",
        lambda: module_fn(lambda inp: b.losses("smp").LovaszLoss(mode), plain_target),
    )
    if binary:
        b.peer(
            case,
            "kornia",
            "kornia lovasz_hinge_loss",
            lambda: module_fn(lambda inp: b.losses("kornia").lovasz_hinge_loss, target_squeezed),
            ref={"per_image": True},
            note="kornia's hinge is per image: checked against ours(per_image=True); target (N, H, W)",
        )
    else:
        b.peer(
            case,
            "kornia",
            "kornia lovasz_softmax_loss",
            lambda: module_fn(lambda inp: b.losses("kornia").lovasz_softmax_loss, plain_target),
            ref={"per_image": True, "classes": "all"},
            note="kornia's Lovasz-softmax is per image over all classes: checked against "
            "ours(per_image=True, classes='all')",
        )
    return [case]
