"""The rows of the Lovasz losses (Berman et al. 2018) as torch code: every (image, class) error vector sorted at once.

Batched: every row is sorted in one ``torch.sort`` call (or by :func:`_sort_keys_cpu` on the CPU); no Python loop
over images or classes, no host sync, no boolean-mask indexing. Ignored pixels get the error -inf, so they sort last
and add 0; the valid prefix of each sorted row is exactly the authors' filtered vector, hence the same value.

:func:`lovasz_rows` is the reference of the pass; the C kernels (:mod:`seglosses.kernels.native`) serve
Lovasz-softmax with class indices on the CPU where :func:`seglosses.kernels.dispatch.select` picks them.
"""

from __future__ import annotations

import torch

from seglosses.core.checks import class_index, take


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


def _jaccard_prefix_weighted(fg_sorted: torch.Tensor, w_sorted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_jaccard_prefix` of the weighted Jaccard index: with W_i = sum_{k <= i} w_k, C_i = sum_{k <= i} w_k g_k
    and G = C_L, the weighted intersection of the first i errors' complement is G - C_i, the union G - C_i + W_i, so
    J_i = W_i / (G - C_i + W_i) (0 where the union is 0: only weights 0 so far). w = 1 is :func:`_jaccard_prefix`.
    Returns J (in ``fg_sorted``'s buffer) and each row's weighted target sum G."""
    c = torch.cumsum(fg_sorted.mul_(w_sorted), -1, out=fg_sorted)
    g_sum = c[..., -1].clone() if fg_sorted.shape[-1] else c.sum(-1)
    cw = torch.cumsum(w_sorted, -1)
    union = torch.sub(g_sum.unsqueeze(-1), c, out=c).add_(cw)
    return torch.where(union == 0, 0.0, cw / union), g_sum  # (a NaN weight stays NaN)


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
    sort_u64_rows(keys)
    for a in range(0, length, step):
        bits[:, a:a + step] = _flip(words[:, a:a + step, hi])
    return rows, keys.bitwise_and_(0xFFFFFFFF).view(r_shape)


def sort_u64_rows(keys: torch.Tensor) -> None:
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


def _sorted_rows(rows, lab, cls, dtype, wrows=None):
    """Lovasz losses (R, K), foreground sums (R, K) and the loss's derivative in each error (R, K, L), of rows of
    errors (R, K, L) with their labels: class indices (R, 1, L) compared with ``cls`` (1, K, 1), or a dense target
    (R, K, L) when ``cls`` is None; ``wrows``: the elements' weights (R, K, L) or None. ``rows`` may be
    overwritten."""
    e_sorted, perm = _sort_descending(rows)
    if cls is not None:
        fg = (lab.expand(-1, rows.shape[1], -1).gather(-1, perm) == cls).to(dtype)
    else:
        fg = lab.gather(-1, perm)
    if wrows is None:
        jac, fg_sum = _jaccard_prefix(fg)  # in fg's buffer
    else:
        jac, fg_sum = _jaccard_prefix_weighted(fg, wrows.gather(-1, perm))
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


def lovasz_rows(q, label, valid, softmax, index, cols, per_image, weight=None):
    """Per-row Lovasz losses ``(R, K)``, each row's foreground sum ``(R, K)`` and the loss's derivative in ``q`` for a
    unit upstream gradient, ``(N, K, S)``, from ``q``: the probabilities (Lovasz-softmax) or the hinge's score,
    (N, C, S).

    ``weight`` (None, or (N, 1, S) / (N, C, S) in q's dtype): the Lovasz extension of the weighted Jaccard loss
    (:func:`_jaccard_prefix_weighted`; the errors themselves unweighted), and the foreground sums weighted
    (``sum w g``); an integer weight k is the element repeated k times. Selected to 0 at invalid elements.

    All rows are sorted in one call; the Lovasz gradient is turned back to the unsorted order, times the errors'
    derivative in q, so that only that one buffer is kept: no permutation, no sorted copy.
    """
    n, c, s = q.shape
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
    wrows = None
    if weight is not None:  # (R, K, L), 0 at invalid elements
        wk = weight.expand(n, c, s) if weight.shape[1] == 1 else weight
        wk = take(wk, sel)
        if valid is not None:
            wk = torch.where(valid.unsqueeze(1) if valid.dim() == 2 else take(valid, sel), wk, 0.0)
        wrows = wk if per_image else wk.transpose(0, 1).reshape(1, k, n * s)
    cls_k = cls if softmax and index else None
    if cls_k is not None:
        lab = label if per_image else label.transpose(0, 1).reshape(1, 1, n * s)  # (R, 1, L)
    else:
        lab = gk if per_image else gk.transpose(0, 1).reshape(1, k, n * s)  # (R, K, L)
    r = rows.shape[0]
    per = _rows_per_chunk(rows)
    if per >= k * r:  # all rows in one sort
        losses, fg_sum, unit = _sorted_rows(rows, lab, cls_k, q.dtype, wrows)
    else:  # sorted a few rows at a time: the sort's temporaries stay small (CUDA: about 30 bytes an element)
        unit = torch.empty_like(rows)
        losses, fg_sum = rows.new_empty((2, r, k)).unbind(0)
        # whole images' rows (per // k images) per chunk, or classes of one image (per classes)
        spans = ([(r0, min(r0 + per // k, r), 0, k) for r0 in range(0, r, per // k)] if per >= k else
                 [(r0, r0 + 1, k0, min(k0 + per, k)) for r0 in range(r) for k0 in range(0, k, per)])
        for r0, r1, k0, k1 in spans:
            part = _sorted_rows(rows[r0:r1, k0:k1], lab[r0:r1] if cls_k is not None else lab[r0:r1, k0:k1],
                                None if cls_k is None else cls_k[:, k0:k1], q.dtype,
                                None if wrows is None else wrows[r0:r1, k0:k1])
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


def grad_q(unit, g_losses, q_shape, cols):
    """dL/dq (N, C, S) from the unit derivative (N, K, S) and the rows' upstream gradient (R, K)."""
    gk = unit * g_losses.unsqueeze(-1)  # R = N (per image) or 1, broadcast over the images
    if tuple(cols) == tuple(range(q_shape[1])):
        return gk
    return gk.new_zeros(q_shape).index_copy_(1, class_index(cols, gk.device), gk)
