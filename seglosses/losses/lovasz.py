"""Lovasz losses (Berman et al. 2018): Lovasz hinge (binary, multilabel) and Lovasz-softmax (multiclass).

Batched: every (image, class) error vector is sorted in one ``torch.sort`` call; no Python loop over images or
classes, no host sync, no boolean-mask indexing. Ignored pixels get the error -inf, so they sort last and add 0;
the valid prefix of each sorted row is exactly the authors' filtered vector, hence the same value.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from seglosses.kernels import native as _native
from seglosses.core.args import check_bool
from seglosses.core.checks import (
    check_classes,
    check_ignore_index,
    check_reduction,
    class_vector,
    compute_dtype,
    class_index,
    prepare,
    take,
    to_compute,
)
from seglosses.core.module import LossModule
from seglosses.kernels.region import dense_block, valid_indices
from seglosses.core.checks import probs_to_logits


def _jaccard_prefix(fg_sorted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Jaccard index of each prefix of sorted rows (last axis), in ``fg_sorted``'s buffer, and each row's target
    sum G.

    With c_i = sum_{k <= i} g_k, the Jaccard index of the first i elements is
    J_i = 1 - (G - c_i) / (G - c_i + i) = i / (G - c_i + i) (the union is >= i >= 1); the Lovasz gradient along the
    sorted row is J_i - J_{i-1}, J_0 = 0.
    """
    m = fg_sorted.shape[-1]
    c = torch.cumsum(fg_sorted, -1, out=fg_sorted)  # in place: the target is not needed again
    g_sum = c[..., -1].clone() if m else c.sum(-1)
    union = torch.sub(g_sum.unsqueeze(-1), c, out=c)  # G - c_i, in place
    idx = torch.arange(1, m + 1, dtype=union.dtype, device=union.device)
    return torch.div(idx, union.add_(idx), out=union), g_sum  # J_i, in place


def _lovasz_dot(pos: torch.Tensor, jac: torch.Tensor, block: int = 1 << 18) -> torch.Tensor:
    """sum_i pos_i (J_i - J_{i-1}) along the last axis (J_0 = 0): the rows' Lovasz losses, with temporaries of
    about ``block`` elements (a matmul would avoid them, but runs in TF32 where the user allows that)."""
    length = pos.shape[-1]
    if length == 0:
        return pos.sum(-1)
    step = max(block // max(pos[..., 0].numel(), 1), 1)
    out = pos[..., 0] * jac[..., 0]
    for a in range(1, length, step):
        b = min(a + step, length)
        out = out + (pos[..., a:b] * (jac[..., a:b] - jac[..., a - 1:b - 1])).sum(-1)
    return out


#: Fewest elements for which the CPU rows are sorted by :func:`_sort_keys_cpu` (below, torch.sort's overhead is less).
KEY_SORT_MIN = 1 << 15


def _sort_keys_cpu(rows: torch.Tensor, block: int = 1 << 18) -> tuple[torch.Tensor, torch.Tensor]:
    """Descending sort of float32 rows (R, K, L) on the CPU: values in ``rows``' own buffer, and the int64 permutation.

    Each element becomes one uint64, ``key << 32 | position``, with a 32-bit key whose unsigned order is the floats'
    descending order (-0.0 after +0.0); NumPy sorts those integers in place (vectorized sort, several times faster
    than torch.sort's comparison sort on float rows), rows shared out over torch's threads (NumPy lets go of the GIL
    while sorting).
    The keys hold the values exactly, so the sorted values are decoded into ``rows``' buffer and the positions become
    the permutation in the keys' buffer: no other row-sized buffer. Ties keep their original order (stable; the
    Lovasz loss and its gradient do not depend on the order of equal errors' positions beyond that).
    """
    import sys

    r_shape, length = rows.shape, rows.shape[-1]
    flat = rows.reshape(-1, length)  # a view: rows is contiguous
    bits = flat.view(torch.int32)
    # key = bits ^ 0x7FFFFFFF for x >= 0 (larger x, smaller key), bits for x < 0 (sign bit set: after every x >= 0,
    # more negative later); the same map turns a key back into the float's bits. Written as 32-bit words: the key
    # in the high word of each uint64, the position in the low one (which word is high depends on the byte order).
    keys = torch.empty(flat.shape, dtype=torch.int64)
    words = keys.view(torch.int32).view(*flat.shape, 2)
    step = max(block // flat.shape[0], 1)  # columns per block: temporaries of about `block` elements
    hi = 1 if sys.byteorder == "little" else 0
    for a in range(0, length, step):
        b = bits[:, a:a + step]
        # every NaN (those of x86 arithmetic have the sign bit set) as +NaN, which sorts first, as in torch.sort
        b = torch.where((b & 0x7FFFFFFF) > 0x7F800000, 0x7FC00000, b)
        words[:, a:a + step, hi] = _flip(b)
        words[:, a:a + step, 1 - hi] = torch.arange(a, a + b.shape[1], dtype=torch.int32)
    _sort_u64_rows(keys)
    for a in range(0, length, step):
        bits[:, a:a + step] = _flip(words[:, a:a + step, hi])
    return rows, keys.bitwise_and_(0xFFFFFFFF).view(r_shape)


def _sort_u64_rows(keys: torch.Tensor) -> None:
    """Sort the rows of an int64 tensor (rows, L) in place as unsigned integers: NumPy's vectorized sort, rows
    shared out over torch's threads (NumPy lets go of the GIL while sorting)."""
    import numpy as np

    arr = keys.numpy().view(np.uint64)
    workers = min(torch.get_num_threads(), arr.shape[0], max(arr.size >> 17, 1))
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(lambda part: part.sort(axis=-1), np.array_split(arr, workers)))
    else:
        arr.sort(axis=-1)


def _flip(b: torch.Tensor) -> torch.Tensor:
    """``b ^ 0x7FFFFFFF`` where ``b >= 0``, ``b`` elsewhere (int32): float bits to descending-order keys and back."""
    m = (b >> 31).bitwise_not_().bitwise_and_(0x7FFFFFFF)
    return m.bitwise_xor_(b)


def _sort_descending(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.sort(rows, -1, descending=True)``, by :func:`_sort_keys_cpu` for float32 rows on the CPU (CUDA's
    segmented radix sort is fast already and needs separate input and output buffers)."""
    if (rows.device.type == "cpu" and rows.dtype == torch.float32 and rows.is_contiguous()
            and rows.numel() >= KEY_SORT_MIN and rows.shape[-1] < 2 ** 31):
        return _sort_keys_cpu(rows)
    if rows.device.type == "cpu":  # sorted in place: the values take the errors' buffer (one buffer less)
        perm = torch.empty(rows.shape, dtype=torch.int64)
        return torch.sort(rows, dim=-1, descending=True, stable=True, out=(rows, perm))
    return torch.sort(rows, dim=-1, descending=True, stable=True)


#: CUDA: rows are sorted in up to SORT_PARTS chunks of whole rows, each of SORT_CHUNK elements at least (a sort's
#: temporaries, about 30 bytes an element there, then stay near twice the logits; each chunk costs a dozen launches).
#: The CPU sorts all rows at once (its sorts work in place) unless CHUNK_ON_CPU (tests).
SORT_CHUNK = 1 << 18
SORT_PARTS = 4
CHUNK_ON_CPU = False


def _rows_per_chunk(rows: torch.Tensor) -> int:
    if rows.device.type == "cpu" and not CHUNK_ON_CPU:
        return rows.shape[0] * rows.shape[1]
    chunk = max(SORT_CHUNK, -(-rows.numel() // SORT_PARTS))
    return max(chunk // max(rows.shape[-1], 1), 1)


def _sorted_rows(rows, lab, cls, dtype):
    """Lovasz losses (R, K), foreground sums (R, K) and the loss's derivative in each error (R, K, L), of rows of
    errors (R, K, L) with their labels: class indices (R, 1, L) compared with ``cls`` (1, K, 1), or a dense target
    (R, K, L) when ``cls`` is None. ``rows`` may be overwritten."""
    e_sorted, perm = _sort_descending(rows)
    if cls is not None:
        fg = (lab.expand(-1, rows.shape[1], -1).gather(-1, perm) == cls).to(dtype)
    else:
        fg = lab.gather(-1, perm)
    jac, fg_sum = _jaccard_prefix(fg)  # in fg's buffer
    del fg
    pos = e_sorted.clamp_min_(0)  # max(e, 0), in place
    losses = _lovasz_dot(pos, jac)  # (R, K)
    flat = pos <= 0  # where the loss has no slope (a suffix of each sorted row)
    # d loss / d error along the sorted rows, J_i - J_{i-1} where the error is positive, in the sorted errors' buffer
    lg = pos
    lg[..., :1] = jac[..., :1]
    torch.sub(jac[..., 1:], jac[..., :-1], out=lg[..., 1:])
    lg.masked_fill_(flat, 0.0)  # (a multiply by the mask would cast it to a float copy)
    del flat
    # back to the unsorted order, in the Jaccard buffer (perm is a permutation: every element is written)
    return losses, fg_sum, jac.scatter_(-1, perm, lg)


def _rows(q, label, valid, softmax, index, cols, per_image):
    """Per-row Lovasz losses ``(R, K)``, each row's foreground sum ``(R, K)`` and the loss's derivative in ``q`` for a
    unit upstream gradient, ``(N, K, S)``, from ``q``: the probabilities (Lovasz-softmax) or the hinge's score,
    (N, C, S).

    All rows are sorted in one call; the Lovasz gradient is turned back to the unsorted order, times the errors'
    derivative in q, so that only that one buffer is kept: no permutation, no sorted copy.
    """
    n, c, s = q.shape
    if softmax and index and _native.lovasz_applies(q, label) and _native.wanted(
            "lovasz", q, label, valid, tuple(cols), per_image):
        # the C kernels: errors to keys in one pass, NumPy's sort, then the losses and the derivative in one pass
        # over the sorted keys
        return _native.lovasz_index_rows(q, label.squeeze(1), valid, cols, per_image, _sort_u64_rows)
    k = len(cols)
    all_cols = tuple(cols) == tuple(range(c))
    sel = None if all_cols else cols
    qk = take(q, sel)
    if softmax and index:
        cls = class_index(cols, q.device, label.dtype).view(1, k, 1)
    gk = None if softmax and index else take(label, sel)
    if softmax and index:
        err = torch.neg(qk).add_(1)
        err = torch.where(label == cls, err, qk, out=err)  # |[t == c] - p_c|, in err's buffer
    elif softmax:
        err = (gk - qk).abs()
    else:
        err = 1 - qk * (2 * gk - 1)
    if valid is not None:  # ignored pixels sort last and add nothing
        vk = valid.unsqueeze(1) if valid.dim() == 2 else take(valid, sel)
        err = torch.where(vk, err, float("-inf"))
    rows = err if per_image else err.transpose(0, 1).reshape(1, k, n * s)
    del err
    cls_k = cls if softmax and index else None
    if cls_k is not None:
        lab = label if per_image else label.transpose(0, 1).reshape(1, 1, n * s)  # (R, 1, L)
    else:
        lab = gk if per_image else gk.transpose(0, 1).reshape(1, k, n * s)  # (R, K, L)
    r = rows.shape[0]
    per = _rows_per_chunk(rows)
    if per >= k * r:  # all rows in one sort
        losses, fg_sum, unit = _sorted_rows(rows, lab, cls_k, q.dtype)
    else:  # sorted a few rows at a time: the sort's temporaries stay small (CUDA: about 30 bytes an element)
        unit = torch.empty_like(rows)
        losses, fg_sum = rows.new_empty((2, r, k)).unbind(0)
        # whole images' rows (per // k images) per chunk, or classes of one image (per classes)
        spans = ([(r0, min(r0 + per // k, r), 0, k) for r0 in range(0, r, per // k)] if per >= k else
                 [(r0, r0 + 1, k0, min(k0 + per, k)) for r0 in range(r) for k0 in range(0, k, per)])
        for r0, r1, k0, k1 in spans:
            part = _sorted_rows(rows[r0:r1, k0:k1], lab[r0:r1] if cls_k is not None else lab[r0:r1, k0:k1],
                                None if cls_k is None else cls_k[:, k0:k1], q.dtype)
            losses[r0:r1, k0:k1], fg_sum[r0:r1, k0:k1], unit[r0:r1, k0:k1] = part
            del part
    del rows
    if not per_image:
        unit = unit.reshape(k, n, s).transpose(0, 1)
    # times the errors' derivative in q: -1 / +1 on / off the target (softmax, class indices), sign(q - g)
    # (softmax, probabilities), -(2 g - 1) (hinge); in place
    if softmax and index:
        unit.mul_(torch.where(label == cls, -1.0, 1.0))
    elif softmax:
        unit.mul_(torch.sign(qk - gk))
    else:
        unit.addcmul_(unit, gk, value=-2.0)  # unit (1 - 2 g)
    return losses, fg_sum, unit


def _grad_q(unit, g_losses, q_shape, cols):
    """dL/dq (N, C, S) from the unit derivative (N, K, S) and the rows' upstream gradient (R, K)."""
    gk = unit * g_losses.unsqueeze(-1)  # R = N (per image) or 1, broadcast over the images
    if tuple(cols) == tuple(range(q_shape[1])):
        return gk
    return gk.new_zeros(q_shape).index_copy_(1, class_index(cols, gk.device), gk)


class _LovaszRows(torch.autograd.Function):
    """:func:`_rows` in eager mode: the forward pass keeps only the unit derivative (N, K, S)."""

    @staticmethod
    def forward(ctx, q, label, valid, softmax, index, cols, per_image):
        losses, fg_sum, unit = _rows(q, label, valid, softmax, index, cols, per_image)
        ctx.save_for_backward(unit)
        ctx.q_shape, ctx.cols = q.shape, cols
        ctx.mark_non_differentiable(fg_sum)
        return losses, fg_sum

    @staticmethod
    @once_differentiable
    def backward(ctx, g_losses, _g_fg):
        (unit,) = ctx.saved_tensors
        return _grad_q(unit, g_losses, ctx.q_shape, ctx.cols), None, None, None, None, None, None


# Under torch.compile the rows are one opaque operator (torch.library): its sort, gather, cumsum and scatter run as
# the ATen kernels, and Inductor does not generate code for them (Inductor's split scan miscompiled this cumsum on
# CUDA in torch 2.11: "InductorError: list indices must be integers or slices, not NoneType").
@torch.library.custom_op("seglosses::lovasz_rows", mutates_args=())
def _lovasz_rows_op(q: torch.Tensor, label: torch.Tensor, valid: Optional[torch.Tensor], softmax: bool, index: bool,
                    cols: list[int], per_image: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    losses, fg_sum, unit = _rows(q, label, valid, softmax, index, tuple(cols), per_image)
    return losses, fg_sum, unit.contiguous()  # the strides register_fake promises


@_lovasz_rows_op.register_fake
def _(q, label, valid, softmax, index, cols, per_image):
    n, _, s = q.shape
    r, k = (n if per_image else 1), len(cols)
    return q.new_empty((r, k)), q.new_empty((r, k)), q.new_empty((n, k, s))


def _op_setup(ctx, inputs, output):
    q, _, _, _, _, cols, _ = inputs
    ctx.save_for_backward(output[2])
    ctx.q_shape, ctx.cols = q.shape, tuple(cols)


def _op_backward(ctx, g_losses, _g_fg, _g_unit):
    (unit,) = ctx.saved_tensors
    return _grad_q(unit, g_losses, ctx.q_shape, ctx.cols), None, None, None, None, None, None


_lovasz_rows_op.register_autograd(_op_backward, setup_context=_op_setup)


def _use_operator() -> bool:
    """Whether the registered operator runs instead of the autograd Function: when compiling (a hook for tests)."""
    return torch.compiler.is_compiling()


def lovasz_rows(q, label, valid, softmax, index, cols, per_image):
    """(losses, fg_sum) of the rows: the autograd Function in eager mode, the registered operator when compiling."""
    if _use_operator():
        losses, fg_sum, _ = _lovasz_rows_op(q, label, valid, softmax, index, list(cols), per_image)
        return losses, fg_sum.detach()
    return _LovaszRows.apply(q, label, valid, softmax, index, tuple(cols), per_image)


def lovasz_loss(logits, target, mode, *, classes="present", per_image=False, ignore_index=None, weight=None,
                from_logits=True, reduction="mean", dist_sync=False):
    r"""Lovasz loss (Berman et al. 2018, arXiv 1705.08790): a tractable convex surrogate of the Jaccard loss.

    For each row r (a class over the batch, or an (image, class) pair with ``per_image``) with errors
    :math:`e_i` sorted decreasingly and target :math:`g` sorted along:

    .. math::
        L_r = \sum_i \max(e_{(i)}, 0)\, \big(J_i - J_{i-1}\big), \qquad
        J_i = 1 - \frac{G - \sum_{k \le i} g_{(k)}}{G + \sum_{k \le i} (1 - g_{(k)})}

    with G the row's target sum and :math:`J_0 = 0`. Lovasz-softmax (mode "multiclass"):
    :math:`e = |[t = c] - p_c|` with p the softmax; Lovasz hinge ("binary", and per class for "multilabel"):
    :math:`e = 1 - x (2 g - 1)` with x the logits.

    Args:
        logits: ``(N, C, *)`` logits (or probabilities with ``from_logits=False``; hinge modes then use their
            log-odds, clamped at 1e-7); ``(N, *)`` or ``(N, 1, *)`` for "binary".
        target: "binary"/"multilabel": the logits' shape with values in {0, 1}; "multiclass": class indices
            ``(N, *)`` or class probabilities ``(N, C, *)``.
        mode: "binary", "multiclass" or "multilabel".
        classes: "present" (default, as in the paper: only classes present in the row's valid target count),
            "all", or a list of class indices. Hinge modes count every row ("present" acts as "all").
        per_image: one row per image and class, then the mean over images (the authors' ``per_image``).
        ignore_index: target value whose pixels are left out.
        weight: per-class weights ``(C,)``: "mean" is the weighted mean over counted classes.
        from_logits: see ``logits``.
        reduction: "mean" (over counted classes; with ``per_image`` the mean over images of that), "sum" or "none".
        dist_sync: not supported (True raises ValueError): the Lovasz extension sorts each row's errors, so the
            loss of a batch split over ranks is no function of per-rank sums; gather the logits instead.

    Returns:
        A scalar, or for "none" the weighted per-class losses ``(C,)`` (``(N, C)`` with ``per_image``; K columns for
        a class list), 0 for classes that do not count.

    Example:
        >>> import torch, seglosses
        >>> logits = torch.tensor([[[3.0, -1.0], [-2.0, 2.0]]])     # (N=1, C=2, S=2)
        >>> round(seglosses.lovasz_loss(logits, torch.tensor([[0, 1]]), "multiclass").item(), 4)
        0.0372

    References:
        Berman, Rannen Triki, Blaschko. The Lovasz-Softmax loss: A tractable surrogate for the optimization of the
        intersection-over-union measure in neural networks. CVPR 2018. arXiv 1705.08790.
    """
    if check_bool("dist_sync", dist_sync):
        raise ValueError("lovasz_loss does not support `dist_sync=True`: its value sorts every row's errors, so it is "
                         "no function of per-rank sums (all-gather the logits and targets to compute it globally)")
    inp = prepare(logits, target, mode, ignore_index)
    reduction = check_reduction(reduction)
    ignore_index = check_ignore_index(ignore_index)
    check_bool("per_image", per_image)
    check_bool("from_logits", from_logits)
    classes = check_classes(classes, inp.c, allow=("present", "all"))
    if classes is None:
        classes = "all"
    softmax = mode == "multiclass"
    w = class_vector("weight", weight, inp.c, logits.device)
    dt = compute_dtype(inp.x)
    x = to_compute(inp.x)  # (half input: a gradient beyond its range saturates)
    n, c, s = x.shape
    cols = list(range(c)) if isinstance(classes, str) else classes

    if softmax:
        if inp.index:
            v = valid_indices(inp.target, ignore_index, c)
            # (N, 1, S) labels in a narrow dtype, -1 at ignored pixels (never a class); selected before the cast, so
            # that no label wraps into a class
            lab = inp.target if v is None else torch.where(v, inp.target, -1)
            label = lab.to(torch.int16 if c < 2 ** 15 else torch.int64).unsqueeze(1)
        else:
            label, v = inp.target.to(dt), None
        if v is not None:  # ignored pixels: finite logits (a NaN there must not reach the loss or the gradient)
            x = torch.where(v.unsqueeze(1), x, 0.0)
        q = torch.softmax(x, dim=1) if from_logits else x  # the probabilities: autograd takes them from here
    else:
        g, v = dense_block(inp.target, ignore_index, dt)
        if v is not None:
            x = torch.where(v, x, 0.0 if from_logits else 0.5)
        q = x if from_logits else probs_to_logits(x, False)  # the hinge's score
        label = g
    losses, fg_sum = lovasz_rows(q, label, v, softmax, inp.index, tuple(cols), per_image)

    if softmax and classes == "present":
        counted = (fg_sum > 0).to(dt)
    else:
        counted = torch.ones_like(losses)
    if w is not None and tuple(cols) != tuple(range(c)):
        w = take(w, cols, 0)
    cw = counted if w is None else counted * w.to(dt)
    losses = losses * cw
    if reduction == "none":
        return losses if per_image else losses[0]
    if reduction == "sum":
        return losses.sum()
    den = cw.sum(-1)
    per_row = losses.sum(-1) / torch.where(den > 0, den, torch.ones_like(den))
    return per_row.mean() if per_row.numel() else per_row.sum()


class LovaszLoss(LossModule):
    """Module form of :func:`lovasz_loss`; takes the same keyword arguments."""

    _fn = staticmethod(lovasz_loss)
