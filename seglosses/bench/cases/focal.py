"""The focal family's cases: the sigmoid focal loss (binary) and the softmax focal loss (multiclass) against smp,
torchvision, kornia, monai and Keras."""

from __future__ import annotations

from ..settings import BIN_ALPHA, GAMMA
from .base import Builder, Case, keras_fn, module_fn, monai_target, num_classes, onehot_target, plain_target


def focal_cases(b: Builder) -> list[Case]:
    """The focal case of a (non-distance) setting."""
    binary = b.binary
    case = Case(b.setting, "focal", [])
    if binary:
        b.ours_impl(case, "focal_loss", alpha=BIN_ALPHA, gamma=GAMMA)
        b.ours_impl(
            case,
            "sigmoid_focal_loss",
            primary=False,
            call=lambda func, inp: (lambda t: lambda x: func(x, t, alpha=BIN_ALPHA, gamma=GAMMA, reduction="mean"))(
                inp.target
            ),
        )
        b.peer(
            case,
            "smp",
            "smp FocalLoss",
            lambda: module_fn(lambda inp: b.losses("smp").FocalLoss("binary", alpha=BIN_ALPHA, gamma=GAMMA),
                              plain_target),
        )
        b.peer(
            case,
            "torchvision",
            "torchvision sigmoid_focal_loss",
            lambda: module_fn(
                lambda inp: (
                    lambda f: lambda x, t: f(x, t, alpha=BIN_ALPHA, gamma=GAMMA, reduction="mean")
                )(b.peers.get("torchvision").ops.sigmoid_focal_loss),
                plain_target,
            ),
        )
        b.peer(
            case,
            "kornia",
            "kornia BinaryFocalLossWithLogits",
            lambda: module_fn(
                lambda inp: b.losses("kornia").BinaryFocalLossWithLogits(
                    alpha=BIN_ALPHA, gamma=GAMMA, reduction="mean", ignore_index=None
                ),
                plain_target,
            ),
            note="ignore_index=None (kornia's default -100 adds a mask pass; ours has no ignore_index here)",
        )
        b.peer(
            case,
            "monai",
            "monai FocalLoss",
            lambda: module_fn(
                lambda inp: b.losses("monai").FocalLoss(alpha=BIN_ALPHA, gamma=GAMMA, use_softmax=False,
                                                        reduction="mean"),
                monai_target,
            ),
        )
        b.peer(
            case,
            "keras",
            "keras BinaryFocalCrossentropy",
            lambda: module_fn(lambda inp: keras_fn(b.losses("keras").BinaryFocalCrossentropy(
                apply_class_balancing=True, alpha=BIN_ALPHA, gamma=GAMMA, from_logits=True)), plain_target),
            note="apply_class_balancing=True (Keras ignores alpha without it); torch backend",
        )
    else:
        b.ours_impl(case, "focal_loss", gamma=GAMMA)
        b.peer(
            case,
            "smp",
            "smp FocalLoss",
            lambda: module_fn(lambda inp: b.losses("smp").FocalLoss("multiclass", gamma=GAMMA), plain_target),
            known_diff="smp's multiclass FocalLoss is a one-vs-rest sigmoid focal loss averaged over classes, "
            "not a softmax focal loss",
        )
        b.peer(
            case,
            "kornia",
            "kornia FocalLoss",
            lambda: module_fn(
                lambda inp: b.losses("kornia").FocalLoss(alpha=None, gamma=GAMMA, reduction="mean", ignore_index=None),
                plain_target,
                scale=num_classes,
            ),
            note="kornia's 'mean' divides by C x pixels: its value is multiplied by C; alpha=None (kornia's scalar "
            "alpha weights class 0 by 1-alpha, the others by alpha); ignore_index=None",
        )
        b.peer(
            case,
            "monai",
            "monai FocalLoss",
            lambda: module_fn(
                lambda inp: b.losses("monai").FocalLoss(
                    gamma=GAMMA, alpha=None, use_softmax=True, to_onehot_y=True, reduction="mean"
                ),
                monai_target,
                scale=num_classes,
            ),
            note="monai's 'mean' averages the (N, C, *) map, i.e. divides by C x pixels: its value is multiplied by C; "
            "alpha=None (monai's scalar alpha is background 1-alpha / others alpha); target (N, 1, *)",
        )
        b.peer(
            case,
            "keras",
            "keras CategoricalFocalCrossentropy",
            lambda: module_fn(lambda inp: keras_fn(b.losses("keras").CategoricalFocalCrossentropy(
                alpha=1.0, gamma=GAMMA, from_logits=True, axis=1)), onehot_target),
            note="alpha=1.0 (Keras' default 0.25 scales every class), axis=1, one-hot target; torch backend",
        )
    return [case]
