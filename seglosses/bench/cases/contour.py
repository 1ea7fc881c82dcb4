"""The contour family's cases (distance settings): no peer library has these losses, so each case times ours with
the target maps computed in the loss and precomputed (``dist_maps``: the training step without a distance
transform), against ours' cross-entropy / Dice as the overhead baseline, and Boundary DoU against the official code's
formula re-implemented on the CPU (2-D only, as the official code)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import Inputs
from .base import Builder, Case, Impl, LossFn

_BASELINE = "another loss (the overhead baseline), so its value differs"


def _official_boundary_dou(x: torch.Tensor, t: torch.Tensor, n_classes: int) -> torch.Tensor:
    """sunfan-bvb/BoundaryDoULoss (TransUNet/utils.py, ``BoundaryDoULoss``) without ``.cuda()``: softmax, one-hot, per
    class over the batch a cross-shaped 3 x 3 convolution of the target with zero padding, C = its pixels whose sum
    is not 5, S = the target's pixels; the loop over images replaced by one batched convolution."""
    probs = torch.softmax(x, dim=1)
    kernel = torch.tensor([[0.0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=x.dtype, device=x.device)[None, None]
    loss = x.new_zeros(())
    for i in range(n_classes):
        score, target = probs[:, i], (t == i).to(x.dtype)
        y = F.conv2d(target[:, None], kernel, padding=1)[:, 0] * target
        y = torch.where(y == 5, torch.zeros_like(y), y)
        c, s, smooth = torch.count_nonzero(y), torch.count_nonzero(target), 1e-5
        alpha = torch.clamp_max(2 * (1 - (c + smooth) / (s + smooth)) - 1, 0.8)
        inter, y_sum, z_sum = (score * target).sum(), (target * target).sum(), (score * score).sum()
        loss = loss + (z_sum + y_sum - 2 * inter + smooth) / (z_sum + y_sum - (1 + alpha) * inter + smooth)
    return loss / n_classes


def _precomputed(b: Builder, case: Case, fname: str, kind: str) -> None:
    """Ours with the target maps built outside the timed region (as a data loader would)."""
    func, mode = getattr(b.ours, fname, None), b.mode
    if func is None:
        return

    def make(inp: Inputs) -> LossFn:
        t = inp.target
        maps = b.ours.contour_maps(t, mode, num_classes=inp.num_classes, kind=kind).to(inp.logits.device)
        return lambda x: func(x, t, mode, dist_maps=maps)

    case.impls.append(Impl(f"ours {fname}(dist_maps=precomputed)", "ours", make))


def _baseline(b: Builder, case: Case, fname: str) -> None:
    func, mode = getattr(b.ours, fname, None), b.mode
    if func is None:
        return

    def make(inp: Inputs) -> LossFn:
        t = inp.target
        return lambda x: func(x, t, mode)

    case.impls.append(Impl(f"ours {fname} (baseline)", "ours", make, known_diff=_BASELINE))


def contour_cases(b: Builder) -> list[Case]:
    """The cases of a distance setting: distance-penalised CE, shape-aware, Boundary DoU."""
    cases: list[Case] = []
    for name, kind in (("distance_penalized_cross_entropy", "penalty"), ("shape_aware", "contour")):
        case = Case(b.setting, name, [])
        b.ours_impl(case, f"{name}_loss")  # backend "auto": torch for these sizes on the CPU, torch on CUDA
        if case.ours_func is not None:
            _precomputed(b, case, f"{name}_loss", kind)
            _baseline(b, case, "cross_entropy_loss")
        cases.append(case)
    case = Case(b.setting, "boundary_dou", [])
    b.ours_impl(case, "boundary_dou_loss")
    if b.two_d:
        def make(inp: Inputs) -> LossFn:
            t, c = inp.target, inp.num_classes
            return lambda x: _official_boundary_dou(x, t, c)

        case.impls.append(Impl("official BoundaryDoULoss (re-implemented, CPU/any device)", "peer", make,
                               note="sunfan-bvb/BoundaryDoULoss's formula; the original is 2-D and CUDA-only"))
    else:
        case.skipped.append("official BoundaryDoULoss: 2-D only")
    if case.ours_func is not None:
        _baseline(b, case, "dice_loss")
    cases.append(case)
    return cases
