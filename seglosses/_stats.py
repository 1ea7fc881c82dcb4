"""Per-class statistics (tp, fp, fn) of the region losses: one fused pass, one-hot-free, soft-label (L1) form.

For each image n and class c, over the valid elements only:

* class-index targets t: ``tp = sum p_c [t == c]``, ``fp = sum p_c [t != c]``, ``fn = sum (1 - p_c) [t == c]``;
* dense targets g (binary, multilabel, multiclass probabilities), the L1 form of Wang & Blaschko (2023),
  ``tp = (P + G - sum |p - g|) / 2``, ``fp = P - tp``, ``fn = G - tp``, summed in its direct form
  ``fp = sum max(p - g, 0)``, ``fn = sum max((1 - p) - (1 - g), 0)``, ``tp = P - fp``; on hard labels these
  are ``sum p (1 - g)``, ``sum (1 - p) g`` and ``sum p g``.

fp and fn are summed directly (tp only enters a loss's denominator), with ``1 - p`` taken as ``sigmoid(-x)`` or
the other classes' summed softmax mass, so near-perfect predictions keep full relative precision in fp and fn (``P - tp`` would cancel). The forward pass
keeps no activation; the backward pass recomputes the probabilities block by block and applies the chain rule
through the sigmoid or softmax Jacobian in one go, so the extra memory is the gradient buffer plus a few blocks.
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


def complement(x: torch.Tensor, p: torch.Tensor, act: str) -> torch.Tensor:
    """``1 - p`` without cancellation near p = 1."""
    if act == "sigmoid":
        return torch.sigmoid(-x)
    if act == "softmax":  # 1 - p_c is exact unless p_c > 1/2 (one class at most): there, sum the other classes
        big = p > 0.5
        rest = torch.where(big, torch.zeros_like(p), p).sum(1, keepdim=True)
        return torch.where(big, rest, 1 - p)
    return 1 - p


class _RegionStats(torch.autograd.Function):
    """``(tp, fp, fn, G)`` of shape (N, C) from logits/probabilities (N, C, S) and a target; see the module doc."""

    @staticmethod
    def forward(ctx, x, target, act, index, ignore_index):
        n, c, _ = x.shape
        dt = compute_dtype(x)
        tp, fp, fn, sg = (torch.zeros((n, c), dtype=dt, device=x.device) for _ in range(4))
        for n0, n1, s0, s1 in blocks(x):
            xb = x[n0:n1, :, s0:s1].to(dt)
            p = activate(xb, act)
            if index:
                t, v = index_block(target[n0:n1, s0:s1], ignore_index)
                ti = t.unsqueeze(1)
                ones = torch.ones(t.shape, dtype=dt, device=x.device) if v is None else v.to(dt)
                off = p.scatter(1, ti, 0.0)  # p where t != c
                tp[n0:n1].scatter_add_(1, t, p.gather(1, ti).squeeze(1) * ones)
                # 1 - p_t summed as the other classes' mass (softmax) or taken from sigmoid(-x): no cancellation
                miss = off.sum(1) if act == "softmax" else complement(xb, p, act).gather(1, ti).squeeze(1)
                fn[n0:n1].scatter_add_(1, t, miss * ones)
                sg[n0:n1].scatter_add_(1, t, ones)
                fp[n0:n1] += (off.sum(-1) if v is None else torch.bmm(off, ones.unsqueeze(-1)).squeeze(-1))
            else:
                g, v = dense_block(target[n0:n1, :, s0:s1], ignore_index, dt)
                if v is not None:
                    p = p * v  # ignored elements: p = g = 0 adds nothing to any sum below
                over = (p - g).clamp_min_(0)
                # tp = P - fp: an error of eps * P there only moves the denominator, never err = fp + fn
                under = (complement(xb, p, act) - (1 - g)).clamp_min_(0)  # g - p without cancellation near 1
                if v is not None:
                    under = under * v
                p_sum, f_pos = p.sum(-1), over.sum(-1)
                tp[n0:n1] += p_sum - f_pos
                fp[n0:n1] += f_pos
                fn[n0:n1] += under.sum(-1)
                sg[n0:n1] += g.sum(-1)
        ctx.save_for_backward(x, target)
        ctx.act, ctx.index, ctx.ignore_index = act, index, ignore_index
        ctx.mark_non_differentiable(sg)
        return tp, fp, fn, sg

    @staticmethod
    @once_differentiable
    def backward(ctx, g_tp, g_fp, g_fn, _g_sg):
        x, target = ctx.saved_tensors
        act, index, ignore_index = ctx.act, ctx.index, ctx.ignore_index
        dt = compute_dtype(x)
        n, c, s = x.shape
        zero = torch.zeros((n, c), dtype=dt, device=x.device)
        g_tp, g_fp, g_fn = (zero if g is None else g.to(dt) for g in (g_tp, g_fp, g_fn))
        # dL/dp = g_fp off the target and g_tp - g_fn on it (index); with dense targets the split follows the
        # sign of p - g (half each where equal, the subgradient of the L1 form).
        g_on = (g_tp - g_fn).unsqueeze(-1)
        g_off = g_fp.unsqueeze(-1)
        grad = None
        for n0, n1, s0, s1 in blocks(x):
            xb = x[n0:n1, :, s0:s1].to(dt)
            p = activate(xb, act)
            a, b = g_off[n0:n1], g_on[n0:n1]
            if index:
                t, v = index_block(target[n0:n1, s0:s1], ignore_index)
                ti = t.unsqueeze(1)
                gp = a.expand_as(p).scatter(1, ti, b.squeeze(-1).gather(1, t).unsqueeze(1))
                if v is not None:
                    gp = gp * v.unsqueeze(1)
            else:
                g, v = dense_block(target[n0:n1, :, s0:s1], ignore_index, dt)
                up = (1 + torch.sign(p - g)) / 2
                gp = a * up + b * (1 - up)
                if v is not None:
                    gp = gp * v
            if act == "sigmoid":
                gx = gp * p * complement(xb, p, act)
            elif act == "softmax":
                gx = p * (gp - (p * gp).sum(1, keepdim=True))
            else:
                gx = gp
            if (n0, n1, s0, s1) == (0, n, 0, s):
                return gx.to(x.dtype), None, None, None, None
            if grad is None:
                grad = torch.empty_like(x)
            grad[n0:n1, :, s0:s1] = gx
        if grad is None:
            grad = torch.zeros_like(x)
        return grad, None, None, None, None


def region_stats(x: torch.Tensor, target: torch.Tensor, *, act: str, index: bool, ignore_index=None):
    """Return ``(tp, fp, fn, G)``, each (N, C), float32 (float64 for float64 input); G is the target volume.

    Args:
        x: logits (``act`` "sigmoid"/"softmax") or probabilities (``act`` "identity") of shape (N, C, S).
        target: class indices (N, S) when ``index`` else a dense target (N, C, S) in [0, 1].
        ignore_index: target value whose elements are left out of every sum.
    """
    return _RegionStats.apply(x, target, act, index, ignore_index)
