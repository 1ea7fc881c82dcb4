"""Triton kernels of the focal losses: loss and analytic gradient in one pass over the logits.

Chosen by :func:`seglosses.kernels.dispatch.select` for CUDA tensors when Triton is installed; elsewhere the blocked
torch passes (:mod:`seglosses.kernels.focal`, :mod:`seglosses.kernels.region`) run. The kernels follow that path's formulas exactly (float32 arithmetic, the bounded
ratio ``p (1 - p) / (1 - p_t)`` in the gradient, ``1 - p`` from ``sigmoid(-x)`` / a series of ``-expm1(log p)``), and
are tested on the CPU through Triton's interpreter (``TRITON_INTERPRET=1``) against it.

Each kernel writes the gradient for a unit upstream gradient into one buffer (apex's design: the backward pass is one
multiply) and either the loss map or per-program partial sums of the loss and of the mean's normaliser.

Invalid elements contribute nothing anywhere (loss, normaliser, region sums) and get a gradient of exactly 0: those
whose target is ``ignore_index`` and, for class indices, labels outside [0, C) (checked on the host only for CPU
tensors: here a check would be a host sync, so they count as ignored, as in :func:`seglosses.kernels.blocked.index_block`).
Labels are range-checked as int64, before any narrowing or use, so nothing is ever read at an out-of-range index;
invalid elements are removed by selection (``tl.where``, masked loads), never by multiplying with a 0/1 mask, so
non-finite logits there (NaN * 0 = NaN) reach neither the loss nor the gradient.

A pixel weight (``HAS_PW``; ``pw_ptr``: float32 contiguous (N, 1, S), or (N, C, S) with ``PW_CS`` = S, the stride of
its class axis) multiplies each element's share of every sum and of the gradient; it is loaded masked by the valid
mask (0 where invalid: a NaN weight there has no effect).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _sigmoid_focal_kernel(x_ptr, y_ptr, a_ptr, w_ptr, pw_ptr, grad_ptr, loss_ptr, part_ptr, numel, S, C, gamma,
                          smoothing, ignore, alpha_scalar, PW_NS, PW_CS, HAS_ALPHA: tl.constexpr,
                          ALPHA_VEC: tl.constexpr, HAS_W: tl.constexpr, HAS_PW: tl.constexpr,
                          HAS_IGNORE: tl.constexpr, REDUCE: tl.constexpr, NEED_GRAD: tl.constexpr,
                          BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    inb = offs < numel
    y = tl.load(y_ptr + offs, mask=inb, other=0.0).to(tl.float32)
    ok = inb
    if HAS_IGNORE:
        ok = ok & (y != ignore)
        y = tl.where(ok, y, 0.0)
    valid = ok.to(tl.float32)
    x = tl.load(x_ptr + offs, mask=ok, other=0.0).to(tl.float32)  # 0 where invalid, whatever the logit there
    y = y * (1.0 - smoothing) + smoothing * 0.5
    cls = (offs // S) % C
    bce = tl.maximum(x, 0.0) - x * y + tl.log(1.0 + tl.exp(-tl.abs(x)))
    s = tl.sigmoid(x)
    sn = tl.sigmoid(-x)
    q = s * (1.0 - y) + sn * y  # 1 - p_t, exact at y in {0, 1}
    # (1 - p_t) ** gamma, 0 ** gamma = 0 for gamma > 0 and 1 for gamma = 0
    m = tl.where(q > 0, tl.exp(gamma * tl.log(tl.where(q > 0, q, 1.0))), tl.where(gamma == 0.0, 1.0, 0.0))
    coef = valid
    if HAS_ALPHA:
        if ALPHA_VEC:
            a = tl.load(a_ptr + cls, mask=ok, other=0.0)
        else:
            a = alpha_scalar
        coef = coef * (y * (2.0 * a - 1.0) + (1.0 - a))
    if HAS_W:
        coef = coef * tl.load(w_ptr + cls, mask=ok, other=0.0)
    if HAS_PW:  # the element's weight: n * WC * S + c * PW_CS + s
        pw = tl.load(pw_ptr + (offs // (S * C)) * PW_NS + cls * PW_CS + offs % S, mask=ok, other=0.0)
        coef = coef * pw
        valid = pw
    loss = tl.where(ok, coef * m * bce, 0.0)
    if NEED_GRAD:
        r = s * sn / tl.maximum(q, 1.1754944e-38)  # p (1 - p) / (1 - p_t), in [0, 1]
        g = tl.where(ok, coef * m * ((s - y) + gamma * (1.0 - 2.0 * y) * bce * r), 0.0)
        tl.store(grad_ptr + offs, g, mask=inb)
    tl.store(part_ptr + 2 * pid + 1, tl.sum(valid, axis=0))  # the normaliser, with or without REDUCE
    if REDUCE:
        tl.store(part_ptr + 2 * pid, tl.sum(loss, axis=0))
    else:
        tl.store(loss_ptr + offs, loss, mask=inb)


@triton.jit
def _softmax_focal_kernel(x_ptr, t_ptr, c_ptr, w_ptr, pw_ptr, grad_ptr, loss_ptr, part_ptr, npix, S, C, gamma, ignore,
                          HAS_C: tl.constexpr, HAS_W: tl.constexpr, HAS_PW: tl.constexpr, HAS_IGNORE: tl.constexpr,
                          REDUCE: tl.constexpr, NEED_GRAD: tl.constexpr, BLOCK: tl.constexpr):
    # one program: BLOCK pixels of the (N, S) grid; the logits are (N, C, S), class stride S
    pid = tl.program_id(0)
    pix = pid * BLOCK + tl.arange(0, BLOCK)
    inb = pix < npix
    n = pix // S
    sp = pix % S
    base = n * C * S + sp
    # valid: in bounds, a class index in [0, C) (compared as int64, before narrowing to int32) and not
    # ignore_index; invalid pixels get label 0 and logits 0 (masked loads), and their loss and gradient are selected
    # away below
    t = tl.load(t_ptr + pix, mask=inb, other=0).to(tl.int64)
    ok = inb & (t >= 0) & (t < C)
    if HAS_IGNORE:
        ok = ok & (t != ignore)
    valid = ok.to(tl.float32)
    t = tl.where(ok, t, 0).to(tl.int32)
    mx = tl.full([BLOCK], float("-inf"), tl.float32)
    for c in range(0, C):
        mx = tl.maximum(mx, tl.load(x_ptr + base + c * S, mask=ok, other=0.0).to(tl.float32))
    z = tl.zeros([BLOCK], tl.float32)
    xt = tl.zeros([BLOCK], tl.float32)
    for c in range(0, C):
        xc = tl.load(x_ptr + base + c * S, mask=ok, other=0.0).to(tl.float32)
        z += tl.exp(xc - mx)
        xt = tl.where(t == c, xc, xt)
    lz = tl.log(z)
    logp = xt - mx - lz
    # 1 - p_t without cancellation: -expm1(log p), by its series near 0
    u = tl.where(logp > -1e-3, -logp * (1.0 + logp * (0.5 + logp / 6.0)), 1.0 - tl.exp(logp))
    m = tl.where(u > 0, tl.exp(gamma * tl.log(tl.where(u > 0, u, 1.0))), tl.where(gamma == 0.0, 1.0, 0.0))
    f = m * (-logp)
    pt = tl.exp(logp)
    r = tl.where(u > 0, pt * (-logp) / tl.where(u > 0, u, 1.0), 1.0)
    h = -m * (1.0 + gamma * r)
    coef = valid
    if HAS_C:
        coef = coef * tl.load(c_ptr + t, mask=ok, other=0.0)
    nw = valid
    if HAS_W:
        nw = nw * tl.load(w_ptr + t, mask=ok, other=0.0)
    if HAS_PW:  # one weight per pixel, (N, 1, S)
        pw = tl.load(pw_ptr + pix, mask=ok, other=0.0)
        coef = coef * pw
        nw = nw * pw
    loss = tl.where(ok, coef * f, 0.0)
    if NEED_GRAD:
        hc = coef * h
        for c in range(0, C):
            xc = tl.load(x_ptr + base + c * S, mask=ok, other=0.0).to(tl.float32)
            pc = tl.exp(xc - mx - lz)
            g = tl.where(ok, hc * (tl.where(t == c, 1.0, 0.0) - pc), 0.0)
            tl.store(grad_ptr + base + c * S, g, mask=inb)
    tl.store(part_ptr + 2 * pid + 1, tl.sum(nw, axis=0))  # the normaliser, with or without REDUCE
    if REDUCE:
        tl.store(part_ptr + 2 * pid, tl.sum(loss, axis=0))
    else:
        tl.store(loss_ptr + pix, loss, mask=inb)


def _vec(v, dtype, device, c=1):
    """A per-class vector on the device: a tensor cast (it is on the device already), a number filled (no host
    copy, which would synchronize the stream)."""
    if v is None:
        return None
    if isinstance(v, torch.Tensor):
        return v.to(device=device, dtype=dtype).reshape(-1).expand(c if v.numel() == 1 else v.numel()).contiguous()
    return torch.full((c,), float(v), dtype=dtype, device=device)


def _pixel_weight(weight, dummy):
    """(tensor, image stride, class stride) of a pixel weight (N, 1 or C, S) for the kernels: float32, contiguous;
    ``dummy`` (an unused pointer) without one."""
    if weight is None:
        return dummy, 0, 0
    w = weight.to(torch.float32).contiguous()
    return w, w.shape[1] * w.shape[2], (w.shape[2] if w.shape[1] > 1 else 0)


def focal_pass(x, target, spec, need_grad, weight=None):
    """The Triton counterpart of :func:`seglosses.kernels.focal.focal_pass` for x (N, C, S) and a
    :class:`~seglosses.kernels.focal.FocalSpec`: sigmoid with a dense target, or softmax with class indices and no
    label smoothing; ``weight``: None or a pixel weight (N, 1, S) (sigmoid: or (N, C, S)). Returns (loss map or sum,
    normaliser, gradient or None; flat loss map, float32 gradient)."""
    softmax, _, gamma, alpha, base, ignore_index, smoothing, reduce = spec
    n, c, s = x.shape
    x = x.contiguous()
    target = target.contiguous()
    dev = x.device
    f32 = torch.float32
    grad = torch.empty(x.shape, dtype=f32, device=dev) if need_grad else x.new_empty(1, dtype=f32)
    if not softmax:
        numel = x.numel()
        grid = (triton.cdiv(numel, BLOCK),)
        part = torch.empty(2 * grid[0], dtype=f32, device=dev)
        loss = x.new_empty(1, dtype=f32) if reduce else torch.empty(x.shape, dtype=f32, device=dev)
        avec = alpha if isinstance(alpha, torch.Tensor) else None
        pw, pw_ns, pw_cs = _pixel_weight(weight, part)
        _sigmoid_focal_kernel[grid](
            x, target, _vec(avec, f32, dev) if avec is not None else part, _vec(base, f32, dev) if base is not None
            else part, pw, grad, loss, part, numel, s, c, float(gamma), float(smoothing),
            float(ignore_index) if ignore_index is not None else 0.0,
            float(alpha) if alpha is not None and avec is None else 0.0, pw_ns, pw_cs,
            HAS_ALPHA=alpha is not None, ALPHA_VEC=avec is not None, HAS_W=base is not None,
            HAS_PW=weight is not None, HAS_IGNORE=ignore_index is not None, REDUCE=bool(reduce),
            NEED_GRAD=bool(need_grad), BLOCK=BLOCK)
    else:
        npix = n * s
        grid = (triton.cdiv(npix, BLOCK),)
        part = torch.empty(2 * grid[0], dtype=f32, device=dev)
        loss = x.new_empty(1, dtype=f32) if reduce else torch.empty((n, s), dtype=f32, device=dev)
        cvec = _vec(alpha, f32, dev, c)
        wvec = _vec(base, f32, dev)
        if wvec is not None:
            cvec = wvec if cvec is None else cvec * wvec
        _softmax_focal_kernel[grid](
            x, target, cvec if cvec is not None else part, wvec if wvec is not None else part,
            _pixel_weight(weight, part)[0], grad, loss, part, npix, s, c, float(gamma),
            int(ignore_index) if ignore_index is not None else -1,
            HAS_C=cvec is not None, HAS_W=wvec is not None, HAS_PW=weight is not None,
            HAS_IGNORE=ignore_index is not None, REDUCE=bool(reduce), NEED_GRAD=bool(need_grad), BLOCK=BLOCK)
    norm = part.view(-1, 2)[:, 1].sum()
    if not softmax and ignore_index is None and weight is None:
        norm = torch.full((), float(x.numel()), dtype=f32, device=dev)
    out = part.view(-1, 2)[:, 0].sum() if reduce else loss
    return out, norm, (grad if need_grad else None)


# ------------------------------------------------------------------------------------------- region statistics ---
@triton.jit
def _dense_block(x_ptr, g_ptr, S, ignore, SIGMOID: tl.constexpr, HAS_IGNORE: tl.constexpr, BLOCK: tl.constexpr):
    # one (row, block of S) of a dense problem: offsets, in-bounds mask, logits (0 where invalid), p (0 where
    # invalid), g (0 where invalid), validity mask
    row = tl.program_id(0)
    offs = row * S + tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inb = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK) < S
    g = tl.load(g_ptr + offs, mask=inb, other=0.0).to(tl.float32)
    ok = inb
    if HAS_IGNORE:
        ok = ok & (g != ignore)
        g = tl.where(ok, g, 0.0)
    x = tl.load(x_ptr + offs, mask=ok, other=0.0).to(tl.float32)
    if SIGMOID:
        p = tl.where(ok, tl.sigmoid(x), 0.0)
    else:
        p = tl.where(ok, x, 0.0)
    return offs, inb, x, p, g, ok


@triton.jit
def _dense_weight(pw_ptr, C, S, PW_NS, PW_CS, ok, BLOCK: tl.constexpr):
    # the pixel weight of one (row = n * C + c, block of S), 0 where invalid
    row = tl.program_id(0)
    sp = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    return tl.load(pw_ptr + (row // C) * PW_NS + (row % C) * PW_CS + sp, mask=ok, other=0.0)


@triton.jit
def _dense_sums_kernel(x_ptr, g_ptr, pw_ptr, part_ptr, C, S, nblk, ignore, PW_NS, PW_CS, SIGMOID: tl.constexpr,
                       HAS_PW: tl.constexpr, HAS_IGNORE: tl.constexpr, BLOCK: tl.constexpr):
    # grid (rows = N * C, blocks of S): partial P, D = |p - g| and G of one row's block (each term times its weight)
    _, _, _, p, g, ok = _dense_block(x_ptr, g_ptr, S, ignore, SIGMOID, HAS_IGNORE, BLOCK)
    d = tl.abs(p - g)
    if HAS_PW:
        pw = _dense_weight(pw_ptr, C, S, PW_NS, PW_CS, ok, BLOCK)
        p, d, g = p * pw, d * pw, g * pw
    row = tl.program_id(0)
    blk = tl.program_id(1)
    base = (row * nblk + blk) * 3
    tl.store(part_ptr + base, tl.sum(p, axis=0))
    tl.store(part_ptr + base + 1, tl.sum(d, axis=0))
    tl.store(part_ptr + base + 2, tl.sum(g, axis=0))


@triton.jit
def _dense_grad_kernel(x_ptr, g_ptr, pw_ptr, a_ptr, m_ptr, grad_ptr, C, S, ignore, PW_NS, PW_CS,
                       SIGMOID: tl.constexpr, HAS_PW: tl.constexpr, HAS_IGNORE: tl.constexpr, BLOCK: tl.constexpr):
    # dL/dx = (a + m sign(p - g)) p (1 - p) (sigmoid) or a + m sign(p - g) (probabilities), times the weight; 0 where
    # ignored
    offs, inb, x, p, g, ok = _dense_block(x_ptr, g_ptr, S, ignore, SIGMOID, HAS_IGNORE, BLOCK)
    row = tl.program_id(0)
    a = tl.load(a_ptr + row)
    m = tl.load(m_ptr + row)
    d = p - g
    sgn = tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0))
    gp = a + m * sgn
    if HAS_PW:
        gp = gp * _dense_weight(pw_ptr, C, S, PW_NS, PW_CS, ok, BLOCK)
    if SIGMOID:
        gx = tl.where(ok, gp * p * tl.sigmoid(-x), 0.0)
    else:
        gx = tl.where(ok, gp, 0.0)
    tl.store(grad_ptr + offs, gx, mask=inb)


@triton.jit
def _index_block(x_ptr, t_ptr, C, S, ignore, SOFTMAX: tl.constexpr, HAS_IGNORE: tl.constexpr, BLOCK: tl.constexpr):
    # one (image, block of S) of a class-index problem: logit offsets of class 0, in-bounds mask, validity mask
    # (in bounds, a label in [0, C) compared as int64, not ignore_index), labels (-1 where invalid), and the
    # softmax's max and log-normaliser (0 without softmax; logits are loaded as 0 where invalid)
    n = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inb = offs < S
    base = n * C * S + offs
    t = tl.load(t_ptr + n * S + offs, mask=inb, other=0).to(tl.int64)
    ok = inb & (t >= 0) & (t < C)
    if HAS_IGNORE:
        ok = ok & (t != ignore)
    t = tl.where(ok, t, -1).to(tl.int32)
    mx = tl.full([BLOCK], float("-inf"), tl.float32)
    lz = tl.zeros([BLOCK], tl.float32)
    if SOFTMAX:
        for c in range(0, C):
            mx = tl.maximum(mx, tl.load(x_ptr + base + c * S, mask=ok, other=0.0).to(tl.float32))
        z = tl.zeros([BLOCK], tl.float32)
        for c in range(0, C):
            z += tl.exp(tl.load(x_ptr + base + c * S, mask=ok, other=0.0).to(tl.float32) - mx)
        lz = tl.log(z)
    return base, inb, ok, t, mx, lz


@triton.jit
def _index_sums_kernel(x_ptr, t_ptr, pw_ptr, part_ptr, C, S, nblk, ignore, PW_NS, PW_CS, SOFTMAX: tl.constexpr,
                       HAS_PW: tl.constexpr, HAS_IGNORE: tl.constexpr, BLOCK: tl.constexpr):
    # grid (N, blocks of S): partial P_c, T_c = sum p_c [t == c] and G_c = sum [t == c] of one image's block (each
    # term times its weight)
    base, inb, ok, t, mx, lz = _index_block(x_ptr, t_ptr, C, S, ignore, SOFTMAX, HAS_IGNORE, BLOCK)
    n = tl.program_id(0)
    blk = tl.program_id(1)
    sp = blk * BLOCK + tl.arange(0, BLOCK)
    for c in range(0, C):
        xc = tl.load(x_ptr + base + c * S, mask=ok, other=0.0).to(tl.float32)
        if SOFTMAX:
            pc = tl.where(ok, tl.exp(xc - mx - lz), 0.0)
        else:
            pc = tl.where(ok, xc, 0.0)
        on = (t == c).to(tl.float32)
        if HAS_PW:  # w p_c and w [t == c]: T = sum w p_c [t == c]
            pw = tl.load(pw_ptr + n * PW_NS + c * PW_CS + sp, mask=ok, other=0.0)
            pc = pc * pw
            tc = pc * on
            on = on * pw
        else:
            tc = pc * on
        out = ((n * C + c) * nblk + blk) * 3
        tl.store(part_ptr + out, tl.sum(pc, axis=0))
        tl.store(part_ptr + out + 1, tl.sum(tc, axis=0))
        tl.store(part_ptr + out + 2, tl.sum(on, axis=0))


@triton.jit
def _index_grad_kernel(x_ptr, t_ptr, pw_ptr, a_ptr, m_ptr, grad_ptr, C, S, ignore, PW_NS, PW_CS,
                       SOFTMAX: tl.constexpr, HAS_PW: tl.constexpr, HAS_IGNORE: tl.constexpr, BLOCK: tl.constexpr):
    # dL/dp_c = w_c (a_c + [t == c] m_c); softmax: dL/dx_c = p_c (dL/dp_c - sum_k p_k dL/dp_k); 0 where invalid
    base, inb, ok, t, mx, lz = _index_block(x_ptr, t_ptr, C, S, ignore, SOFTMAX, HAS_IGNORE, BLOCK)
    n = tl.program_id(0)
    sp = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    w = tl.zeros([BLOCK], tl.float32)
    if SOFTMAX:
        for c in range(0, C):
            pc = tl.exp(tl.load(x_ptr + base + c * S, mask=ok, other=0.0).to(tl.float32) - mx - lz)
            gpc = tl.load(a_ptr + n * C + c) + tl.where(t == c, tl.load(m_ptr + n * C + c), 0.0)
            if HAS_PW:
                gpc = gpc * tl.load(pw_ptr + n * PW_NS + c * PW_CS + sp, mask=ok, other=0.0)
            w += pc * gpc
    for c in range(0, C):
        gpc = tl.load(a_ptr + n * C + c) + tl.where(t == c, tl.load(m_ptr + n * C + c), 0.0)
        if HAS_PW:
            gpc = gpc * tl.load(pw_ptr + n * PW_NS + c * PW_CS + sp, mask=ok, other=0.0)
        if SOFTMAX:
            pc = tl.exp(tl.load(x_ptr + base + c * S, mask=ok, other=0.0).to(tl.float32) - mx - lz)
            gx = tl.where(ok, pc * (gpc - w), 0.0)
        else:
            gx = tl.where(ok, gpc, 0.0)
        tl.store(grad_ptr + base + c * S, gx, mask=inb)


def region_sums(x, target, act, index, ignore_index, weight=None):
    """(P, M, G) of shape (N, C), float32: the Triton counterpart of ``seglosses.kernels.region.RegionSums.forward``
    (M = D = sum |p - g| for dense targets, T = sum_{t = c} p_c for class indices), weighted by ``weight`` (None or
    (N, 1 or C, S)). Deterministic: per-block partial sums, added in torch."""
    n, c, s = x.shape
    x, target = x.contiguous(), target.contiguous()
    nblk = triton.cdiv(s, BLOCK)
    part = torch.empty((n * c, nblk, 3), dtype=torch.float32, device=x.device)
    pw, pw_ns, pw_cs = _pixel_weight(weight, part)
    if index:
        _index_sums_kernel[(n, nblk)](x, target, pw, part, c, s, nblk,
                                      int(ignore_index) if ignore_index is not None else -1, pw_ns, pw_cs,
                                      SOFTMAX=act == "softmax", HAS_PW=weight is not None,
                                      HAS_IGNORE=ignore_index is not None, BLOCK=BLOCK)
    else:
        _dense_sums_kernel[(n * c, nblk)](x, target, pw, part, c, s, nblk,
                                          float(ignore_index) if ignore_index is not None else 0.0, pw_ns, pw_cs,
                                          SIGMOID=act == "sigmoid", HAS_PW=weight is not None,
                                          HAS_IGNORE=ignore_index is not None, BLOCK=BLOCK)
    sums = part.sum(1).view(n, c, 3)
    return sums[..., 0], sums[..., 1], sums[..., 2]


def region_grad(x, target, act, index, ignore_index, a, m, weight=None):
    """dL/dx from the (N, C) gradients ``a`` = dL/dP and ``m`` = dL/dM, as ``RegionSums.backward``."""
    n, c, s = x.shape
    x, target = x.contiguous(), target.contiguous()
    a = a.to(torch.float32).contiguous()
    m = m.to(torch.float32).contiguous()
    grad = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    nblk = triton.cdiv(s, BLOCK)
    pw, pw_ns, pw_cs = _pixel_weight(weight, grad)
    if index:
        _index_grad_kernel[(n, nblk)](x, target, pw, a, m, grad, c, s,
                                      int(ignore_index) if ignore_index is not None else -1, pw_ns, pw_cs,
                                      SOFTMAX=act == "softmax", HAS_PW=weight is not None,
                                      HAS_IGNORE=ignore_index is not None, BLOCK=BLOCK)
    else:
        _dense_grad_kernel[(n * c, nblk)](x, target, pw, a, m, grad, c, s,
                                          float(ignore_index) if ignore_index is not None else 0.0, pw_ns, pw_cs,
                                          SIGMOID=act == "sigmoid", HAS_PW=weight is not None,
                                          HAS_IGNORE=ignore_index is not None, BLOCK=BLOCK)
    return grad
