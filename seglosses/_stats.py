"""Per-class statistics (tp, fp, fn) of the region losses: one fused pass, one-hot-free, soft-label (L1) form.

For each image n and class c, over the valid elements only:

* class-index targets t: ``tp = sum p_c [t == c]``, ``P = sum p_c``, ``G = sum [t == c]``;
* dense targets g (binary, multilabel, multiclass probabilities), the L1 form of Wang & Blaschko (2023):
  ``tp = (P + G - sum |p - g|) / 2`` with ``P = sum p``, ``G = sum g``; it equals ``sum p g`` on hard labels;

then ``fp = P - tp`` and ``fn = G - tp``. The forward pass keeps no activation; the backward pass recomputes the
probabilities block by block and applies the chain rule through the sigmoid or softmax Jacobian in one go, so the
extra memory is the gradient buffer plus a few blocks.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ._checks import compute_dtype
from ._chunk import blocks


def index_block(t: torch.Tensor, ignore_index):
    """int64 class indices of a block (ignored pixels mapped to 0) and the valid mask (None: all valid)."""
    if ignore_index is None:
        return t.long(), None
    v = t != ignore_index
    return torch.where(v, t, torch.zeros_like(t)).long(), v


def dense_block(g: torch.Tensor, ignore_index, dtype):
    """Dense target of a block in ``dtype`` (ignored elements set to 0) and the valid mask (None: all valid)."""
    if ignore_index is None:
        return g.to(dtype), None
    v = g != ignore_index
    return torch.where(v, g.to(dtype), torch.zeros((), dtype=dtype, device=g.device)), v


def activate(x: torch.Tensor, act: str) -> torch.Tensor:
    if act == "sigmoid":
        return torch.sigmoid(x)
    if act == "softmax":
        return torch.softmax(x, dim=1)
    return x


class _RegionStats(torch.autograd.Function):
    """``(tp, P, G)`` of shape (N, C) from logits/probabilities (N, C, S) and a target; see the module doc."""

    @staticmethod
    def forward(ctx, x, target, act, index, ignore_index):
        n, c, _ = x.shape
        dt = compute_dtype(x)
        tp = torch.zeros((n, c), dtype=dt, device=x.device)
        sp = torch.zeros_like(tp)
        sg = torch.zeros_like(tp)
        for n0, n1, s0, s1 in blocks(x):
            p = activate(x[n0:n1, :, s0:s1].to(dt), act)
            if index:
                t, v = index_block(target[n0:n1, s0:s1], ignore_index)
                pt = p.gather(1, t.unsqueeze(1)).squeeze(1)
                if v is None:
                    sp[n0:n1] += p.sum(-1)
                    ones = torch.ones_like(pt)
                else:
                    ones = v.to(dt)
                    sp[n0:n1] += torch.bmm(p, ones.unsqueeze(-1)).squeeze(-1)
                    pt = pt * ones
                tp[n0:n1].scatter_add_(1, t, pt)
                sg[n0:n1].scatter_add_(1, t, ones)
            else:
                g, v = dense_block(target[n0:n1, :, s0:s1], ignore_index, dt)
                if v is not None:
                    p = p * v
                p_sum, g_sum = p.sum(-1), g.sum(-1)
                sp[n0:n1] += p_sum
                sg[n0:n1] += g_sum
                tp[n0:n1] += (p_sum + g_sum - (p - g).abs_().sum(-1)) / 2
        ctx.save_for_backward(x, target)
        ctx.act, ctx.index, ctx.ignore_index = act, index, ignore_index
        ctx.mark_non_differentiable(sg)
        return tp, sp, sg

    @staticmethod
    @once_differentiable
    def backward(ctx, g_tp, g_sp, _g_sg):
        x, target = ctx.saved_tensors
        act, index, ignore_index = ctx.act, ctx.index, ctx.ignore_index
        dt = compute_dtype(x)
        n, c, _ = x.shape
        g_tp = torch.zeros((n, c), dtype=dt, device=x.device) if g_tp is None else g_tp.to(dt)
        g_sp = torch.zeros((n, c), dtype=dt, device=x.device) if g_sp is None else g_sp.to(dt)
        grad = None
        for n0, n1, s0, s1 in blocks(x):
            p = activate(x[n0:n1, :, s0:s1].to(dt), act)
            a, b = g_sp[n0:n1].unsqueeze(-1), g_tp[n0:n1].unsqueeze(-1)
            # dL/dp_c = v * (dL/dP_c + dL/dtp_c * dtp/dp_c)
            if index:
                t, v = index_block(target[n0:n1, s0:s1], ignore_index)
                gp = a.expand_as(p).clone()
                gp.scatter_add_(1, t.unsqueeze(1), b.squeeze(-1).gather(1, t).unsqueeze(1))
            else:
                g, v = dense_block(target[n0:n1, :, s0:s1], ignore_index, dt)
                gp = a + b * (1 - torch.sign(p - g)) / 2
            if v is not None:
                gp = gp * v.unsqueeze(1) if index else gp * v
            if act == "sigmoid":
                gx = gp * p * (1 - p)
            elif act == "softmax":
                gx = p * (gp - (p * gp).sum(1, keepdim=True))
            else:
                gx = gp
            if grad is None and (n0, n1, s0, s1) == (0, n, 0, x.shape[2]):
                grad = gx.to(x.dtype)
                break
            if grad is None:
                grad = torch.empty_like(x)
            grad[n0:n1, :, s0:s1] = gx
        if grad is None:
            grad = torch.zeros_like(x)
        return grad, None, None, None, None


def region_stats(x: torch.Tensor, target: torch.Tensor, *, act: str, index: bool, ignore_index=None):
    """Return ``(tp, fp, fn, G)`` of shape (N, C) (float32, or float64 for float64 input).

    Args:
        x: logits (``act`` "sigmoid"/"softmax") or probabilities (``act`` "identity") of shape (N, C, S).
        target: class indices (N, S) when ``index`` else a dense target (N, C, S) in [0, 1].
        ignore_index: target value whose elements are left out of every sum.
    """
    tp, sp, sg = _RegionStats.apply(x, target, act, index, ignore_index)
    return tp, sp - tp, sg - tp, sg
