"""Lovasz losses (Berman et al. 2018): Lovasz hinge (binary, multilabel) and Lovasz-softmax (multiclass).

Batched: every (image, class) error vector is sorted in one ``torch.sort`` call; no Python loop over images or
classes, no host sync, no boolean-mask indexing. Ignored pixels get the error -inf, so they sort last and add 0;
the valid prefix of each sorted row is exactly the authors' filtered vector, hence the same value.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ._args import check_bool
from ._checks import (
    check_classes,
    check_ignore_index,
    check_reduction,
    class_vector,
    compute_dtype,
    prepare,
)
from ._module import LossModule
from .focal import probs_to_logits


def _lovasz_grad(fg_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss along sorted rows (last axis).

    With G the row's target sum and c_i = sum_{k <= i} g_k, the Jaccard index of the first i elements is
    J_i = 1 - (G - c_i) / (G - c_i + i) = i / (G - c_i + i) (the union is >= i >= 1); the result is J_i - J_{i-1},
    J_0 = 0.
    """
    m = fg_sorted.shape[-1]
    c = fg_sorted.cumsum(-1)
    union = torch.sub(c[..., -1:].clone(), c, out=c)  # G - c_i, in place
    idx = torch.arange(1, m + 1, dtype=union.dtype, device=union.device)
    jac = idx / union.add_(idx)
    return torch.diff(jac, dim=-1, prepend=torch.zeros_like(jac[..., :1]))


class _LovaszRows(torch.autograd.Function):
    """Per-row Lovasz losses ``(R, K)`` (and each row's foreground sum) from ``q``: the probabilities (Lovasz-softmax)
    or the hinge's score, (N, C, S).

    The forward pass sorts all rows in one call and turns the Lovasz gradient back to the unsorted order, times the
    errors' derivative in q; only that one buffer (N, K, S) is kept: no permutation, no sorted copy.
    """

    @staticmethod
    def forward(ctx, q, label, valid, softmax, index, cols, per_image):
        n, c, s = q.shape
        k = len(cols)
        all_cols = cols == tuple(range(c))
        qk = q if all_cols else q[:, list(cols)]
        cls = torch.tensor(cols, dtype=label.dtype, device=q.device).view(1, k, 1) if softmax and index else None
        gk = None if softmax and index else (label if all_cols else label[:, list(cols)])
        if softmax and index:
            err = torch.where(label == cls, 1 - qk, qk)  # |[t == c] - p_c|
        elif softmax:
            err = (gk - qk).abs()
        else:
            err = 1 - qk * (2 * gk - 1)
        if valid is not None:  # ignored pixels sort last and add nothing
            vk = valid.unsqueeze(1) if valid.dim() == 2 else (valid if all_cols else valid[:, list(cols)])
            err = torch.where(vk, err, float("-inf"))
        rows = err if per_image else err.transpose(0, 1).reshape(1, k, n * s)
        del err
        e_sorted, perm = torch.sort(rows, dim=-1, descending=True)
        del rows
        if softmax and index:
            lab = label if per_image else label.transpose(0, 1).reshape(1, 1, n * s)
            fg = (lab.expand(-1, k, -1).gather(-1, perm) == cls).to(q.dtype)
        else:
            lab = gk if per_image else gk.transpose(0, 1).reshape(1, k, n * s)
            fg = lab.gather(-1, perm)
        lg = _lovasz_grad(fg)
        fg_sum = fg.sum(-1)
        del fg
        losses = (torch.relu(e_sorted) * lg).sum(-1)  # (R, K)
        lg.mul_(e_sorted > 0)  # d loss / d error, sorted
        del e_sorted
        unit = torch.empty_like(lg).scatter_(-1, perm, lg)
        del perm, lg
        if not per_image:
            unit = unit.reshape(k, n, s).transpose(0, 1)
        # times the errors' derivative in q: -1 / +1 on / off the target (softmax, class indices), sign(q - g)
        # (softmax, probabilities), -(2 g - 1) (hinge)
        if softmax and index:
            unit = torch.where(label == cls, -unit, unit)
        elif softmax:
            unit = unit * torch.sign(qk - gk)
        else:
            unit = unit * (1 - 2 * gk)
        ctx.save_for_backward(unit)
        ctx.q_shape, ctx.cols, ctx.per_image, ctx.all_cols = q.shape, cols, per_image, all_cols
        ctx.mark_non_differentiable(fg_sum)
        return losses, fg_sum

    @staticmethod
    @once_differentiable
    def backward(ctx, g_losses, _g_fg):
        (unit,) = ctx.saved_tensors
        g = g_losses.unsqueeze(-1)  # (R, K, 1): R = N (per image) or 1, broadcast over the images
        gk = unit * g
        if ctx.all_cols:
            return gk, None, None, None, None, None, None
        gq = torch.zeros(ctx.q_shape, dtype=gk.dtype, device=gk.device)
        gq[:, list(ctx.cols)] = gk
        return gq, None, None, None, None, None, None


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
    inp = prepare(logits, target, mode)
    reduction = check_reduction(reduction)
    ignore_index = check_ignore_index(ignore_index)
    check_bool("per_image", per_image)
    check_bool("from_logits", from_logits)
    classes = check_classes(classes, inp.c, allow=("present", "all"))
    if classes is None:
        classes = "all"
    softmax = mode == "multiclass"
    if softmax and not inp.index and ignore_index is not None:
        raise ValueError("`ignore_index` needs class-index targets (N, *) in mode='multiclass'; got class "
                         f"probabilities of shape {tuple(target.shape)}")
    w = class_vector("weight", weight, inp.c, logits.device)
    dt = compute_dtype(inp.x)
    x = inp.x.to(dt)
    n, c, s = x.shape
    cols = list(range(c)) if isinstance(classes, str) else classes

    if softmax:
        q = torch.softmax(x, dim=1) if from_logits else x  # the probabilities: autograd takes them from here
        if inp.index:
            t = inp.target
            v = None if ignore_index is None else t != ignore_index
            # (N, 1, S) labels in a narrow dtype, -1 at ignored pixels (never a class)
            lab = t.to(torch.int16 if c < 2 ** 15 else torch.int64)
            label = (lab if v is None else torch.where(v, lab, -1)).unsqueeze(1)
        else:
            label, v = inp.target.to(dt), None
    else:
        q = x if from_logits else probs_to_logits(x, False)  # the hinge's score
        g = inp.target.to(dt) if ignore_index is None else inp.target
        v = None if ignore_index is None else g != ignore_index
        if v is not None:
            g = torch.where(v, g.to(dt), torch.zeros((), dtype=dt, device=x.device))
        label = g
    losses, fg_sum = _LovaszRows.apply(q, label, v, softmax, inp.index, tuple(cols), per_image)

    if softmax and classes == "present":
        counted = (fg_sum > 0).to(dt)
    else:
        counted = torch.ones_like(losses)
    cw = counted if w is None else counted * w[cols].to(dt)
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
