"""The hard-pixel family's cases (TopK and OHEM cross-entropy) and Poly-1, beside our cross-entropy (the floor,
F.cross_entropy / F.binary_cross_entropy_with_logits, is timed with every case). The peers' formulas are re-derived in
plain torch (nnU-Net's TopKLoss, mmseg's OHEM sampler + cross-entropy, the Poly-1 authors' code): none of those
packages is a dependency."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import Inputs
from .base import Builder, Case, Impl, LossFn

TOPK = 10.0  # nnU-Net's default k
THRESH, MIN_KEPT = 0.7, 100000  # mmseg's Cityscapes OHEM settings (per image)
EPSILON = 1.0  # Poly-1's ImageNet epsilon


def _ce_none(binary: bool, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(x, t, reduction="none") if binary else \
        F.cross_entropy(x, t, reduction="none")


def _ours_ce(b: Builder, case: Case, what: str) -> None:
    func = getattr(b.ours, "cross_entropy_loss", None) if b.ours is not None else None
    if func is None:
        return
    mode = b.mode

    def make(inp: Inputs, func=func) -> LossFn:
        t = inp.target
        return lambda x: func(x, t, mode)

    case.impls.append(Impl("ours cross_entropy_loss", "ours", make,
                           known_diff=f"the mean cross-entropy of every pixel: the cost baseline of {what}"))


def _nnunet_topk(binary: bool):
    def make(inp: Inputs) -> LossFn:
        t = inp.target

        def loss(x):  # nnunetv2/training/loss/robust_ce_loss.py: TopKLoss.forward
            res = _ce_none(binary, x, t)
            res, _ = torch.topk(res.view((-1,)), int(res.numel() * TOPK / 100), sorted=False)
            return res.mean()
        return loss
    return make


def _mmseg_ohem(binary: bool):
    def make(inp: Inputs) -> LossFn:
        t = inp.target

        def loss(x):  # mmseg/models/sampler/ohem_pixel_sampler.py (thresh) + cross_entropy_loss.py (mean)
            with torch.no_grad():
                if binary:
                    p = torch.sigmoid(x)
                    prob = (p * t + (1 - p) * (1 - t)).flatten()
                else:
                    prob = F.softmax(x, dim=1).gather(1, t.unsqueeze(1)).flatten()
                sort_prob, _ = prob.sort()
                kept = MIN_KEPT * x.shape[0]
                threshold = max(sort_prob[min(kept, sort_prob.numel() - 1)], THRESH)
                weight = (prob < threshold).to(x.dtype).view_as(t)
            return (_ce_none(binary, x, t) * weight).mean()
        return loss
    return make


def _poly_reference(binary: bool):
    def make(inp: Inputs) -> LossFn:
        t = inp.target

        def loss(x):  # Leng et al. 2022's poly1_cross_entropy, in torch
            if binary:
                p = torch.sigmoid(x)
                pt = p * t + (1 - p) * (1 - t)
            else:
                pt = F.softmax(x, dim=1).gather(1, t.unsqueeze(1)).squeeze(1)
            return (_ce_none(binary, x, t) + EPSILON * (1 - pt)).mean()
        return loss
    return make


def hard_pixel_cases(b: Builder) -> list[Case]:
    """TopK, OHEM and Poly-1 cases of the binary, multiclass and multiclass3d settings."""
    if b.setting not in ("binary", "multiclass", "multiclass3d"):
        return []
    binary = b.binary
    topk = Case(b.setting, "topk_cross_entropy", [])
    b.ours_impl(topk, "topk_cross_entropy_loss", k=TOPK)
    _ours_ce(b, topk, "TopK")
    topk.impls.append(Impl("nnU-Net TopKLoss (formula)", "peer", _nnunet_topk(binary),
                           note="nnU-Net's TopKLoss re-derived in torch (nnU-Net is not a dependency)",
                           known_diff="nnU-Net keeps int(k% of the pixels), ours ceil(): one pixel apart where k% "
                           "of the count is not whole"))
    ohem = Case(b.setting, "ohem_cross_entropy", [])
    b.ours_impl(ohem, "ohem_cross_entropy_loss", threshold=THRESH, min_kept=MIN_KEPT)
    _ours_ce(b, ohem, "OHEM")
    ohem.impls.append(Impl("mmseg OHEM sampler + CE (formula)", "peer", _mmseg_ohem(binary),
                           note="mmseg's OHEMPixelSampler(thresh=0.7, min_kept=100000) and CrossEntropyLoss re-derived "
                           "in torch (mmseg is not a dependency)",
                           known_diff="mmseg divides the kept pixels' sum by every pixel, ours by the kept ones"))
    poly = Case(b.setting, "poly", [])
    b.ours_impl(poly, "poly_loss", epsilon=EPSILON)
    _ours_ce(b, poly, "Poly-1")
    poly.impls.append(Impl("Poly-1 authors' code (formula)", "peer", _poly_reference(binary),
                           note="the authors' poly1_cross_entropy re-derived in torch"))
    return [topk, ohem, poly]
