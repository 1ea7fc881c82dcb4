"""Per-class sums behind the region losses: blocked, one-hot-free, soft-label (L1) form, few passes.

For each image n and class c, over the valid elements only, one forward pass computes

* class-index targets t: ``P = sum p_c``, ``T = sum p_c [t == c]`` and ``G = sum [t == c]``; then
  ``tp = T``, ``fp = P - T``, ``fn = G - T``;
* dense targets g (binary, multilabel, multiclass probabilities): ``P = sum p``, ``G = sum g`` and
  ``D = sum |p - g|``; then the L1 form of Wang & Blaschko (2023) ``tp = (P + G - D) / 2``, ``fp = (P - G + D) / 2``,
  ``fn = (G - P + D) / 2`` (``sum p g``, ``sum p (1 - g)``, ``sum (1 - p) g`` on hard labels).

With a pixel weight w (``weight`` (N, 1, S) or (N, C, S)), every term of every sum is multiplied by its w:
``P = sum w p``, ``T = sum w_c p_c [t == c]``, ``G = sum w_c [t == c]``, ``D = sum w |p - g|``; the gradient is
multiplied by w too. w is selected to 0 at invalid elements (a NaN weight there has no effect).

Every loss is then written as ``err / den`` with ``err = fp + fn`` (= D) or ``alpha fp + beta fn``, so the error of
a loss is a few float32 roundings of its terms, never a difference of two near-equal scores.

The probabilities of the forward pass are kept for the backward pass when they cost no more than the input (float32
and float64 input; half-precision input recomputes them block by block), and the backward pass applies
``dL/dp`` (one value per class on each side of the target) through the sigmoid or softmax Jacobian in three or four
elementwise passes. Extra memory: the probabilities, the gradient and one block of temporaries.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from seglosses.core.checks import compute_dtype, saturating_cast
from seglosses.core.targets import activate, dense_block, index_block
from seglosses.kernels.blocked import blocks, class_sums


def _activate(x: torch.Tensor, act: str, out: torch.Tensor | None) -> torch.Tensor:
    """:func:`activate`, written into ``out`` when given (probabilities kept for the backward pass)."""
    if out is None:
        return activate(x, act)
    if act == "sigmoid":
        return torch.sigmoid(x, out=out)
    if out.is_contiguous():
        return torch.ops.aten._softmax.out(x, 1, False, out=out)
    return out.copy_(torch.softmax(x, dim=1))  # (softmax's out= variant mishandles strided outputs)


def _block_scale(c: int, index: bool) -> float:
    """Block size factor of the region passes: class-index targets have per-pixel temporaries (blocks C times
    larger); dense targets run a chain of elementwise passes (sigmoid, p - g, |.|, sign) over each block, faster
    when a block and its temporaries stay in a core's L2 cache (a quarter block: 1 MiB of float32 each; figures:
    docs/benchmarks.md, "Design measurements")."""
    return max(c, 1) if index else 0.25


def _part(buf, n0, n1, s0, s1, whole):
    """The block of ``buf`` (None stays None), or ``buf`` itself when the block is the whole tensor."""
    return buf if buf is None or whole else buf[n0:n1, :, s0:s1]


def valid_weight(weight, n0, n1, s0, s1, vb, whole=False):
    """The block of the pixel weight (None stays None), selected to 0 where ``vb`` (the valid mask, broadcast) is
    False: a NaN or inf weight at an ignored element has no effect."""
    if weight is None:
        return None
    wb = weight if whole else weight[n0:n1, :, s0:s1]
    return wb if vb is None else torch.where(vb, wb, 0.0)


def region_outputs(ctx, psum, msum, gsum, act, index, ignore_index, per_image):
    """Record the settings on ``ctx`` and return the sums, over the batch unless ``per_image`` (G takes no grad)."""
    ctx.act, ctx.index, ctx.ignore_index = act, index, ignore_index
    if not per_image:
        psum, msum, gsum = psum.sum(0, keepdim=True), msum.sum(0, keepdim=True), gsum.sum(0, keepdim=True)
    ctx.mark_non_differentiable(gsum)
    return psum, msum, gsum


class RegionSums(torch.autograd.Function):
    """``(P, M, G)`` of shape (N, C) with ``M = T`` (index targets) or ``D`` (dense), weighted by ``weight`` (None,
    or (N, 1, S) / (N, C, S) in the compute dtype); see the module doc."""

    @staticmethod
    def forward(ctx, x, target, act, index, ignore_index, per_image, weight=None):
        n, c, s = x.shape
        dt = compute_dtype(x)
        dev = x.device
        keep = act != "identity" and x.dtype == dt  # probabilities kept for the backward pass
        psum, msum, gsum = torch.zeros((3, n, c), dtype=dt, device=dev).unbind(0)
        pbuf = torch.empty(x.shape, dtype=dt, device=dev) if keep else None
        # dense targets: sign(p - g), kept in the input's dtype (exact for -1, 0, 1); the backward pass turns it
        # into the gradient in place
        sbuf = None if index else torch.empty(x.shape, dtype=x.dtype, device=dev)
        # index targets: p at the target class, (N, S), kept for the backward pass; their temporaries are per pixel,
        # so their blocks hold C times more
        ptbuf = torch.empty((n, s), dtype=dt, device=dev) if index and keep else None
        for n0, n1, s0, s1 in blocks(x, _block_scale(c, index)):
            whole = (n0, n1, s0, s1) == (0, n, 0, s)
            if index:
                t, v = index_block(target[n0:n1, s0:s1], ignore_index, c)
                vb = None if v is None else v.unsqueeze(1)
            else:
                g, vb = dense_block(target[n0:n1, :, s0:s1], ignore_index, dt)
            pb = _part(pbuf, n0, n1, s0, s1, whole)
            p = _activate(x[n0:n1, :, s0:s1].to(dt), act, pb)
            if vb is not None:  # invalid elements: p = 0 (and g = 0) adds nothing below; selected, so that a NaN or
                p = p.masked_fill_(~vb, 0.0) if pb is not None else torch.where(vb, p, 0.0)  # inf logit adds nothing
            wb = valid_weight(weight, n0, n1, s0, s1, vb, whole)
            psum[n0:n1] += p.sum(-1) if wb is None else (p * wb).sum(-1)
            if index:
                pt = p.gather(1, t.unsqueeze(1)).squeeze(1)
                if ptbuf is not None:
                    ptbuf[n0:n1, s0:s1] = pt
                if wb is None:
                    class_sums(msum[n0:n1], t, pt)
                    class_sums(gsum[n0:n1], t, torch.ones(t.shape, dtype=dt, device=dev) if v is None else v.to(dt))
                else:  # the weight of each pixel's target class
                    wt = (wb if wb.shape[1] == 1 else wb.gather(1, t.unsqueeze(1))).squeeze(1).expand(t.shape)
                    class_sums(msum[n0:n1], t, pt * wt)
                    class_sums(gsum[n0:n1], t, wt.contiguous())
                continue
            gsum[n0:n1] += g.sum(-1) if wb is None else (g * wb).sum(-1)
            sb = _part(sbuf, n0, n1, s0, s1, whole)
            # |p - g| is summed by the kernel that sums p and g: where g = 0 (or p = 0) in a row, D equals P (or G)
            # bit for bit, so fn (or tp and fp) come out exactly 0 there, as they must when a class is absent
            if sb.dtype == dt:
                d = torch.sub(p, g, out=sb)
                msum[n0:n1] += d.abs().sum(-1) if wb is None else (d.abs() * wb).sum(-1)
                sb.sign_()
            else:
                d = p - g
                msum[n0:n1] += d.abs().sum(-1) if wb is None else (d.abs() * wb).sum(-1)
                sb.copy_(d.sign_())
        ctx.save_for_backward(x, target, pbuf, ptbuf, weight)
        # sign(p - g) is turned into the gradient in place by the first backward pass (kept off the saved tensors,
        # whose version checks would object); a second one (retain_graph) recomputes it.
        # Not under torch.compile: a ctx attribute is not tracked by AOTAutograd (the focal pass, traced that way,
        # gave a zero gradient under Inductor on CUDA).
        ctx.sbuf = None if torch.compiler.is_compiling() else sbuf
        return region_outputs(ctx, psum, msum, gsum, act, index, ignore_index, per_image)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_p, g_m, _g_g):
        x, target, pbuf, ptbuf, weight = ctx.saved_tensors
        sbuf, ctx.sbuf = ctx.sbuf, None
        act, index, ignore_index = ctx.act, ctx.index, ctx.ignore_index
        dt = compute_dtype(x)
        n, c, s = x.shape
        zero = torch.zeros((n, c, 1), dtype=dt, device=x.device)
        # (1, C) gradients of batch sums apply to every image
        a, m = ((zero if g is None else g.to(dt).expand(n, c).unsqueeze(-1)) for g in (g_p, g_m))
        # dL/dp = a, plus m on the target class (index targets) or m sign(p - g) (dense targets; 0 where p == g)
        # contiguous, whatever x's strides (channels_last logits): an out= of other strides fails under torch.compile
        grad = sbuf if sbuf is not None else torch.empty(x.shape, dtype=x.dtype, device=x.device)
        for n0, n1, s0, s1 in blocks(x, _block_scale(c, index)):
            whole = (n0, n1, s0, s1) == (0, n, 0, s)
            ab, mb = a[n0:n1], m[n0:n1]
            if index:
                t, v = index_block(target[n0:n1, s0:s1], ignore_index, c)
                vb = None if v is None else v.unsqueeze(1)
            elif sbuf is None or ignore_index is not None:  # (the valid mask selects the gradient below)
                g, vb = dense_block(target[n0:n1, :, s0:s1], ignore_index, dt)
            else:  # every element valid and sign(p - g) kept: the target is not needed
                vb = None
            p = _part(pbuf, n0, n1, s0, s1, whole)
            if p is None:
                p = activate(x[n0:n1, :, s0:s1].to(dt), act)
                if vb is not None:
                    p = torch.where(vb, p, 0.0)
            out = _part(grad, n0, n1, s0, s1, whole)
            wb = valid_weight(weight, n0, n1, s0, s1, vb, whole)
            if index:
                ti = t.unsqueeze(1)
                pt = p.gather(1, ti) if ptbuf is None else ptbuf[n0:n1, s0:s1].unsqueeze(1)
                mt = pt * mb.squeeze(-1).gather(1, t).unsqueeze(1)  # p_t m_t
                if act == "softmax" and wb is not None and wb.shape[1] > 1:
                    # per-class weights: dL/dp_c = w_c a_c + [t == c] w_t m_t through the softmax Jacobian
                    aw = ab * wb
                    mt = mt * wb.gather(1, ti)
                    w = (aw * p).sum(1, keepdim=True).add_(mt)
                    gx = aw.sub_(w).mul_(p)
                    gx.scatter_add_(1, ti, mt)
                    wb = None  # applied
                elif act == "softmax":  # dL/dx = p (a - sum_k p_k a_k - p_t m_t) + [t == c] p_t m_t
                    w = torch.bmm(ab.transpose(1, 2), p).add_(mt)
                    gx = torch.sub(ab, w, out=out if out.dtype == dt else None).mul_(p)
                    gx.scatter_add_(1, ti, mt)
                else:  # identity: dL/dx = a + [t == c] m
                    gx = (out if out.dtype == dt else torch.empty_like(p)).copy_(ab.expand_as(p))
                    gx.scatter_add_(1, ti, mb.squeeze(-1).gather(1, t).unsqueeze(1).expand_as(ti).to(dt))
            else:
                if sbuf is None:
                    sb = torch.sub(p, g, out=out if out.dtype == dt else None).sign_()
                else:
                    sb = out if out.dtype == dt else out.to(dt)
                gp = sb.mul_(mb).add_(ab)
                if wb is not None:  # dL/dp = w (a + m sign(p - g))
                    gp = gp.mul_(wb)
                    wb = None  # applied
                if act == "sigmoid":  # p (1 - p) is 0 where p was zeroed: invalid elements get 0
                    gx = torch.ops.aten.sigmoid_backward.grad_input(gp, p, grad_input=gp)
                elif act == "softmax":
                    gx = gp.sub_((gp * p).sum(1, keepdim=True)).mul_(p)
                else:
                    gx = gp
            if wb is not None:  # a weight per pixel (or act identity): a factor of the whole gradient
                gx = gx.mul_(wb)
            if vb is not None:  # selected: a NaN upstream gradient (a NaN elsewhere) must not reach ignored pixels
                gx = gx.masked_fill_(~vb, 0.0)
            if gx is not out:
                out.copy_(saturating_cast(gx, out.dtype))
        return grad, None, None, None, None, None, None


def _targets_whole(x, target, index, ignore_index, dt):
    """For the unblocked passes: ``[t == c]`` (N, C, S), never stored by Inductor (index targets) or the dense target
    with 0 at ignored elements, and the valid mask broadcast over the classes (None: all valid)."""
    if index:
        t, v = index_block(target, ignore_index, x.shape[1])
        hit = t.unsqueeze(1) == torch.arange(x.shape[1], device=x.device).view(1, -1, 1)
        return hit, None if v is None else v.unsqueeze(1)
    return dense_block(target, ignore_index, dt)


def sums_whole(x, target, act, index, ignore_index, weight=None):
    """``(P, M, G)`` of `RegionSums` in one unblocked pass (written for Inductor, which fuses it into one
    loop)."""
    dt = compute_dtype(x)
    tg, vb = _targets_whole(x, target, index, ignore_index, dt)
    wb = valid_weight(weight, 0, 0, 0, 0, vb, True)

    def prob():
        p = activate(x.to(dt), act)
        return p if vb is None else torch.where(vb, p, 0.0)

    def wsum(v):
        return v.sum(-1) if wb is None else (v * wb).sum(-1)

    p = prob()
    if index:
        hit = tg if vb is None else tg & vb
        if wb is None:
            return p.sum(-1), torch.where(hit, p, 0).sum(-1), hit.sum(-1, dtype=dt)
        return wsum(p), wsum(torch.where(hit, p, 0)), torch.where(hit, wb, 0).sum(-1)
    # sigmoid: recomputed for the second sum, so that Inductor fuses each sum with its own sigmoid instead of storing
    # p (faster: docs/benchmarks.md, "Design measurements"); a softmax is better computed once
    return wsum(p), wsum(((prob() if act == "sigmoid" else p) - tg).abs()), wsum(tg)


def grad_whole(x, target, act, index, ignore_index, a, m, weight=None):
    """The gradient of `RegionSums`'s backward pass in one unblocked pass (for Inductor), recomputing p."""
    dt = compute_dtype(x)
    a, m = a.to(dt).unsqueeze(-1), m.to(dt).unsqueeze(-1)
    tg, vb = _targets_whole(x, target, index, ignore_index, dt)
    p = activate(x.to(dt), act)
    if vb is not None:  # p = 0 where invalid (selected: NaN logits there too): the Jacobians below give 0 there
        p = torch.where(vb, p, 0.0)
    # dL/dp = a, plus m on the target class (index targets) or m sign(p - g) (dense targets); times the weight
    gp = a + (torch.where(tg, m, 0) if index else m * torch.sign(p - tg))
    if weight is not None:
        gp = gp * valid_weight(weight, 0, 0, 0, 0, vb, True)
    if act == "sigmoid":
        gx = gp * p * (1 - p)
    elif act == "softmax":
        gx = (gp - (gp * p).sum(1, keepdim=True)) * p
    else:
        gx = gp
    if vb is not None:  # selected: a NaN upstream gradient must not reach ignored pixels
        gx = torch.where(vb, gx, 0.0)
    return saturating_cast(gx, x.dtype)
