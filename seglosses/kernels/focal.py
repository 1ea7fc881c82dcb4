"""The focal pass (Lin et al. 2017) as blocked torch code: loss and analytic gradient in one pass over the logits.

Forward and gradient are computed together, block by block in float32, from logits in log space; the forward pass
keeps only the gradient buffer (as apex's fused focal loss does), so the backward pass is one multiply. The
modulating factor is built from ``sigmoid(-x)`` / ``-expm1(log p)`` (never ``1 - p``) and its derivative from the
bounded ratio ``p (1 - p) / (1 - p_t)``, so loss and gradient are finite for any logit and any gamma >= 0.

:func:`focal_pass` is the reference every other backend of the pass follows (the Triton kernels, Inductor's
compilation of this same function); :func:`seglosses.kernels.ops.focal_terms` runs the one
:func:`seglosses.kernels.dispatch.select` picks.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F

from seglosses.core.checks import compute_dtype, saturating_cast
from seglosses.core.targets import dense_block, index_block
from seglosses.kernels.blocked import blocks


class FocalSpec(NamedTuple):
    """What a focal pass computes, besides its inputs.

    softmax: False: sigmoid focal with a dense target (N, C, S); True: softmax focal with class indices (N, S) or
    class probabilities (N, C, S). index: the target holds class indices. gamma: the focusing exponent. alpha: the
    balance factor, a float, a (C,) tensor or None. base: per-class weights (C,) or None (softmax: the class
    coefficient is base * alpha, the mean's normaliser uses base only). ignore_index: the target value left out, or
    None. smoothing: label smoothing in [0, 1]. reduce: the sum instead of the loss map.
    """

    softmax: bool
    index: bool
    gamma: float
    alpha: Union[float, torch.Tensor, None]
    base: Optional[torch.Tensor]
    ignore_index: Optional[int]
    smoothing: float
    reduce: bool


def _sigmoid_terms(x, y, gamma, need_grad):
    """Elementwise focal term ``(1 - p_t)^gamma BCE`` and its derivative in x, for soft targets y."""
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    if gamma == 0:
        return bce, torch.sigmoid(x).sub_(y) if need_grad else None
    s = torch.sigmoid(x)
    # 1 - p_t = s (1 - y) + sigmoid(-x) y; lerp returns its end points exactly, so at y in {0, 1} this is
    # sigmoid(+-x), never a rounded 1 - p
    q = torch.lerp(s, torch.sigmoid(-x), y)
    m = q.pow(gamma)
    if not need_grad:
        return bce.mul_(m), None
    e = s - y
    # d/dx = m (p - y + gamma (1 - 2y) BCE r) with r = p (1 - p) / (1 - p_t) in [0, 1]
    r = s.mul_(torch.sigmoid(-x)).div_(q.clamp_min_(torch.finfo(q.dtype).tiny))
    g = r.mul_(bce).mul_(y * (-2 * gamma) + gamma).add_(e).mul_(m)
    return bce.mul_(m), g


def _softmax_terms(logp, gamma):
    """Per-class ``f = (1 - p)^gamma (-log p)`` and ``h = p df/dp``, from log-probabilities."""
    nlp = -logp
    if gamma == 0:
        return nlp, torch.full_like(logp, -1.0)
    u = -torch.expm1(logp)  # 1 - p, accurate near p = 1
    m = u.pow(gamma)
    r = torch.where(u > 0, torch.exp(logp) * nlp / torch.where(u > 0, u, torch.ones_like(u)), torch.ones_like(u))
    return m * nlp, -m * (1 + gamma * r)


def focal_pass(x: torch.Tensor, target: torch.Tensor, spec: FocalSpec, need_grad: bool,
               weight: Optional[torch.Tensor] = None):
    """One blocked pass over x (N, C, S): the loss map (or its sum), the normaliser of the mean, and the gradient
    for a unit upstream gradient (or None).

    ``weight``: None, or a pixel weight in the compute dtype, (N, 1, S) or (sigmoid only) (N, C, S): each element's
    (sigmoid) or pixel's (softmax) term and its gradient are multiplied by its weight, and so is its share of the
    normaliser (sigmoid: the sum of the weights of the valid elements; softmax: of ``w base[t]`` with class
    indices, of w with class probabilities). Selected to 0 at ignored elements (a NaN weight there has no effect).
    """
    softmax, index, gamma, alpha, base, ignore_index, smoothing, reduce = spec
    n, c, s = x.shape
    dt = compute_dtype(x)
    if softmax:
        cvec = None if alpha is None else (alpha.to(dt) if isinstance(alpha, torch.Tensor) else
                                           torch.full((c,), float(alpha), dtype=dt, device=x.device))
        if base is not None:
            cvec = base.to(dt) if cvec is None else cvec * base.to(dt)
    grad = torch.empty(x.shape, dtype=x.dtype, device=x.device) if need_grad else None  # contiguous
    out_shape = (n, c, s) if not softmax else (n, s)
    out = torch.zeros((), dtype=dt, device=x.device) if reduce else torch.empty(out_shape, dtype=dt,
                                                                                device=x.device)
    norm = torch.zeros((), dtype=dt, device=x.device)
    fast = softmax and index and not smoothing  # per-pixel temporaries only: blocks C times larger
    # softmax with class indices: the temporaries are per pixel (about eight of them), so blocks C / 4 times larger
    # keep them under the size of the logits; sigmoid: a long chain of elementwise passes, in cache-sized blocks
    for n0, n1, s0, s1 in blocks(x, max(c // 4, 1) if fast else (1 / 16 if not softmax else 1)):
        xb = x[n0:n1, :, s0:s1].to(dt)
        whole = (n0, n1, s0, s1) == (0, n, 0, s)
        if index:
            t, v = index_block(target[n0:n1, s0:s1], ignore_index, c)
        elif not softmax:
            y, v = dense_block(target[n0:n1, :, s0:s1], ignore_index, dt)
        else:
            v = None
        if v is not None:  # ignored elements: finite logits (NaN, inf there must not reach the loss or gradient)
            xb = torch.where(v.unsqueeze(1) if index else v, xb, 0.0)
        wb = None
        if weight is not None:  # the block's weight, 0 where ignored: (n, C or 1, S) (sigmoid), (n, S) (softmax)
            wb = weight[n0:n1, :, s0:s1] if not softmax else weight[n0:n1, 0, s0:s1]
            if v is not None:
                wb = torch.where(v, wb, 0.0)
        # the block of the gradient buffer, written in place where the dtypes agree
        gb = (grad if whole else grad[n0:n1, :, s0:s1]) if need_grad and grad.dtype == dt else None
        g = None
        if not softmax:
            if smoothing:
                y = y * (1 - smoothing) + smoothing / 2
            loss, g = _sigmoid_terms(xb, y, gamma, need_grad)
            coef = None
            if alpha is not None:
                a = alpha if not isinstance(alpha, torch.Tensor) else alpha.to(dt).view(1, c, 1)
                coef = y * (2 * a - 1) + (1 - a)  # alpha y + (1 - alpha)(1 - y)
            if base is not None:
                coef = base.to(dt).view(1, c, 1) if coef is None else coef * base.to(dt).view(1, c, 1)
            if wb is not None:
                coef = wb if coef is None else coef * wb
                norm += wb.sum() * (c // wb.shape[1])
            elif v is not None:
                coef = v.to(dt) if coef is None else coef * v
                norm += v.sum()
            else:
                norm += loss.numel()
            if coef is not None:
                loss = loss * coef
                g = None if g is None else g * coef
        else:
            if fast and gb is not None and gb.is_contiguous():  # log p is built in the gradient buffer
                logp = torch.ops.aten._log_softmax.out(xb, 1, False, out=gb)
            else:
                logp = torch.log_softmax(xb, dim=1)
            if fast:
                f, h = _softmax_terms(logp.gather(1, t.unsqueeze(1)).squeeze(1), gamma)
                coef = None if cvec is None else cvec[t]
                nw = None if base is None else base.to(dt)[t]
                if wb is not None:
                    coef = wb if coef is None else coef * wb
                    nw = wb if nw is None else nw * wb
                elif v is not None:
                    coef = v.to(dt) if coef is None else coef * v
                    nw = v.to(dt) if nw is None else nw * v
                norm += nw.sum() if nw is not None else t.numel()
                if coef is not None:
                    f, h = f * coef, h * coef
                loss = f
                if need_grad:  # d/dx_j = h_t ([j == t] - p_j)
                    g = logp.exp_() if logp is gb else torch.exp(logp, out=gb)
                    g.mul_(-h.unsqueeze(1))
                    g.scatter_add_(1, t.unsqueeze(1), h.unsqueeze(1))
            else:
                bvec = torch.ones(c, dtype=dt, device=x.device) if cvec is None else cvec
                if index:
                    if wb is not None:
                        vf = wb
                    else:
                        vf = torch.ones(t.shape, dtype=dt, device=x.device) if v is None else v.to(dt)
                    coef = bvec.view(1, c, 1) * (smoothing / c * vf).unsqueeze(1)
                    coef.scatter_add_(1, t.unsqueeze(1), ((1 - smoothing) * bvec[t] * vf).unsqueeze(1))
                    norm += vf.sum() if base is None else (base.to(dt)[t] * vf).sum()
                else:
                    y = target[n0:n1, :, s0:s1].to(dt)
                    coef = (y * (1 - smoothing) + smoothing / c) * bvec.view(1, c, 1)
                    if wb is not None:
                        coef = coef * wb.unsqueeze(1)
                        norm += wb.sum()
                    else:
                        norm += y.shape[0] * y.shape[2]
                f, h = _softmax_terms(logp, gamma)
                loss = (coef * f).sum(1)
                if need_grad:
                    h = h * coef
                    g = h - torch.exp(logp) * h.sum(1, keepdim=True)
        if reduce:
            out += loss.sum()
        else:
            out[n0:n1, ..., s0:s1] = loss
        if need_grad and g is not gb:
            grad[n0:n1, :, s0:s1] = saturating_cast(g, grad.dtype)
    return out, norm, grad
