"""The topology family's cases: soft clDice and Skeleton Recall against monai's soft clDice."""

from __future__ import annotations

from .base import Builder, Case, module_fn, monai_target

#: Soft-skeleton iterations of every clDice row (ours' default, the authors' effective value; monai's default is 3).
ITERATIONS = 10


def topology_cases(b: Builder) -> list[Case]:
    """The cases of a topology setting (every class, softmax): cldice, then skeleton_recall."""
    mode, act = b.mode, b.act
    cases: list[Case] = []
    case = Case(b.setting, "cldice", [])
    b.ours_impl(case, "cldice_loss", alpha=1.0, iterations=ITERATIONS)
    b.peer(
        case,
        "monai",
        "monai SoftclDiceLoss",
        lambda: module_fn(lambda inp: b.losses("monai").SoftclDiceLoss(iter_=ITERATIONS, **act), monai_target),
        note=f"iter_={ITERATIONS}, softmax + to_onehot_y, smooth_nr = smooth_dr = 1 (ours' smooth=1)",
        known_diff="monai sums every channel of an image into one clDice (and adds 1e-4 to the harmonic mean's "
        "denominator); ours is per class (the same for one channel)",
    )
    b.peer(
        case,
        "monai",
        "monai SoftDiceclDiceLoss(alpha=0.5)",
        lambda: module_fn(lambda inp: b.losses("monai").SoftDiceclDiceLoss(iter_=ITERATIONS, alpha=0.5, **act),
                          monai_target),
        ref={"alpha": 0.5},
        note="the paper's total loss; compared with ours at alpha=0.5 (timed too)",
        known_diff="monai's clDice sums the channels (see above)",
    )
    cases.append(case)

    case = Case(b.setting, "skeleton_recall", [])
    b.ours_impl(case, "skeleton_recall_loss")  # the skeleton computed in the step (torch, on the tensor's device)

    def precomputed(func, inp):
        maps = b.ours.skeleton_maps(inp.target, mode, num_classes=inp.num_classes, batched=True)  # (not timed)
        t = inp.target
        return lambda x: func(x, t, mode, skeletons=maps)

    b.ours_impl(case, "skeleton_recall_loss", primary=False, call=precomputed)
    case.impls[-1].name = "ours skeleton_recall_loss(skeletons=<precomputed>)"
    b.peer(
        case,
        "monai",
        "monai SoftclDiceLoss (cost reference)",
        lambda: module_fn(lambda inp: b.losses("monai").SoftclDiceLoss(iter_=ITERATIONS, **act), monai_target),
        note="no peer has Skeleton Recall (the authors' nnU-Net fork precomputes S with scikit-image in the data "
        "loader): monai's clDice, the loss it replaces, for its cost",
        known_diff="a different loss (clDice), timed for its cost only",
    )
    cases.append(case)
    return cases
