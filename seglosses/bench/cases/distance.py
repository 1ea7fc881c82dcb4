"""The distance-based family's cases: the Hausdorff distance-transform loss and the boundary loss against monai."""

from __future__ import annotations

from .base import Builder, Case, module_fn, monai_target


def distance_cases(b: Builder) -> list[Case]:
    """The cases of a distance setting (every class, softmax): hausdorff_dt, then boundary."""
    mode, act = b.mode, b.act
    cases: list[Case] = []
    case = Case(b.setting, "hausdorff_dt", [])
    b.ours_impl(case, "hausdorff_dt_loss")  # backend "auto": SciPy on the CPU, torch on CUDA
    b.ours_impl(case, "hausdorff_dt_loss", primary=False,
                call=lambda func, inp: (lambda t: lambda x: func(x, t, mode, backend="torch"))(inp.target))
    case.impls[-1].name = "ours hausdorff_dt_loss(backend='torch')"
    b.peer(
        case,
        "monai",
        "monai HausdorffDTLoss",
        lambda: module_fn(lambda inp: b.losses("monai").HausdorffDTLoss(alpha=2.0, include_background=True, **act),
                          monai_target),
        note="include_background=True, softmax + to_onehot_y: every class, as ours' default; monai computes "
        "SciPy transforms per (image, class) on the host",
    )
    cases.append(case)
    case = Case(b.setting, "boundary", [])
    b.ours_impl(case, "boundary_loss")
    b.ours_impl(case, "boundary_loss", primary=False,
                call=lambda func, inp: (lambda t: lambda x: func(x, t, mode, backend="torch"))(inp.target))
    case.impls[-1].name = "ours boundary_loss(backend='torch')"
    b.peer(
        case,
        "monai",
        "monai BoundaryLoss",
        lambda: module_fn(lambda inp: b.losses("monai").BoundaryLoss(include_background=True, **act), monai_target),
        note="include_background=True, softmax + to_onehot_y: every class, as ours' default",
    )
    cases.append(case)
    return cases
