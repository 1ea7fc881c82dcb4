"""Lovasz losses (Berman et al. 2018): Lovasz hinge (binary, multilabel) and Lovasz-softmax (multiclass).

Batched: every (image, class) error vector is sorted in one ``torch.sort`` call; no Python loop over images or
classes, no host sync, no boolean-mask indexing. Ignored pixels get the error -inf, so they sort last and add 0;
the valid prefix of each sorted row is exactly the authors' filtered vector, hence the same value.
"""

from __future__ import annotations

import torch

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
    neg_inf = torch.tensor(float("-inf"), dtype=dt, device=x.device)

    if softmax:
        p = torch.softmax(x, dim=1) if from_logits else x
        if inp.index:
            t = inp.target
            v = None if ignore_index is None else t != ignore_index
            ti = (t if v is None else torch.where(v, t, torch.zeros_like(t))).long().unsqueeze(1)
            err = p.scatter(1, ti, 1 - p.gather(1, ti))  # |[t == c] - p_c| without a one-hot tensor
            # (N, 1, S) labels in a narrow dtype, -1 at ignored pixels (never a class): compared with the row's class
            # after sorting
            lab = t.to(torch.int16 if c < 2 ** 15 else torch.int64)
            label = (lab if v is None else torch.where(v, lab, -1)).unsqueeze(1)
        else:
            g = inp.target.to(dt)
            v = None
            err = (g - p).abs()
            label = g
    else:
        score = x if from_logits else probs_to_logits(x, False)
        g = inp.target.to(dt) if ignore_index is None else inp.target
        v = None if ignore_index is None else g != ignore_index
        if v is not None:
            g = torch.where(v, g.to(dt), torch.zeros((), dtype=dt, device=x.device))
        err = 1 - score * (2 * g - 1)
        label = g
    if cols != list(range(c)):
        err = err[:, cols]
        label = label if label.shape[1] == 1 else label[:, cols]
        v = v if v is None or v.dim() == 2 else v[:, cols]
    k = len(cols)
    if v is not None:
        err = torch.where(v if v.dim() == 3 else v.unsqueeze(1), err, neg_inf)

    # rows: (R, K, M) with R = N (per image) or 1 (whole batch, pixels of all images in one row)
    if per_image:
        err_rows, label_rows = err, label
    else:
        err_rows = err.transpose(0, 1).reshape(1, k, n * s)
        label_rows = label.transpose(0, 1).reshape(1, label.shape[1], n * s)
    e_sorted, perm = torch.sort(err_rows, dim=-1, descending=True)
    if softmax and inp.index:
        cls = torch.tensor(cols, dtype=label_rows.dtype, device=x.device).view(1, k, 1)
        fg = (label_rows.expand(-1, k, -1).gather(-1, perm) == cls).to(dt)
    else:
        fg = label_rows.expand(-1, k, -1).gather(-1, perm)
    losses = (torch.relu(e_sorted) * _lovasz_grad(fg)).sum(-1)  # (R, K)

    if softmax and classes == "present":
        counted = (fg.sum(-1) > 0).to(dt)
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
