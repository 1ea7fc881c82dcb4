"""Lovasz losses (Berman et al. 2018): Lovasz hinge (binary, multilabel) and Lovasz-softmax (multiclass).

Batched: every (image, class) error vector is sorted in one ``torch.sort`` call; no Python loop over images or
classes, no host sync, no boolean-mask indexing. Ignored pixels get the error -inf, so they sort last and add 0;
the valid prefix of each sorted row is exactly the authors' filtered vector, hence the same value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch

from seglosses.core.args import Mode, Reduction, check_bool, check_classes, check_ignore_index, check_reduction
from seglosses.core.checks import class_vector, compute_dtype, pixel_weights, prepare, probs_to_logits, take
from seglosses.core.checks import to_compute
from seglosses.core.docs import PIXEL_WEIGHT, fill_doc
from seglosses.core.module import LossModule
from seglosses.core.targets import dense_block, valid_indices
from seglosses.kernels.ops import LovaszSpec, lovasz_rows


@fill_doc(pixel_weight=PIXEL_WEIGHT)
def lovasz_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *,
                classes: Literal["present", "all"] | Sequence[int] = "present", per_image: bool = False,
                ignore_index: int | None = None, pixel_weight: torch.Tensor | None = None, weight: Sequence[float] | torch.Tensor | None = None,
                from_logits: bool = True, reduction: Reduction = "mean", dist_sync: bool = False) -> torch.Tensor:
    r"""Lovasz loss (Berman et al. 2018, arXiv 1705.08790): a tractable convex surrogate of the Jaccard loss.

    For each row r (a class over the batch, or an (image, class) pair with ``per_image``) with errors
    :math:`e_i` sorted decreasingly and target :math:`g` sorted along:

    .. math::
        L_r = \sum_i \max(e_{(i)}, 0)\, \big(J_i - J_{i-1}\big), \qquad
        J_i = 1 - \frac{G - \sum_{k \le i} g_{(k)}}{G + \sum_{k \le i} (1 - g_{(k)})}

    with G the row's target sum and :math:`J_0 = 0`. Lovasz-softmax (mode "multiclass"):
    :math:`e = |[t = c] - p_c|` with p the softmax; Lovasz hinge ("binary", and per class for "multilabel"):
    :math:`e = 1 - x (2 g - 1)` with x the logits.

    With ``pixel_weight`` w it is the Lovasz extension of the weighted Jaccard loss: the errors (and their order)
    stay unweighted, G and the sums in :math:`J_i` become weighted, :math:`G = \sum w g`,
    :math:`J_i = 1 - (G - \sum_{k \le i} w_{(k)} g_{(k)}) / (G + \sum_{k \le i} w_{(k)} (1 - g_{(k)}))`, still
    the extension of a submodular set function for w >= 0 (an integer weight is the pixel repeated; a pixel of weight
    0 adds nothing); with ``classes="present"`` a class counts where its weighted target sum is > 0.

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
        {pixel_weight}
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
    pw = pixel_weights(pixel_weight, logits, mode, inp)
    spec = LovaszSpec(softmax, inp.index, tuple(cols), per_image)
    if pw is None:
        losses, fg_sum = lovasz_rows(q, label, v, spec)
    else:  # (0 at ignored entries, selected: a NaN weight there reaches nothing)
        pw = pw if v is None else torch.where(v.unsqueeze(1) if softmax and inp.index else v, pw, 0.0)
        losses, fg_sum = lovasz_rows(q, label, v, spec, weight=pw)

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

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, classes: Literal["present", "all"] | Sequence[int] = "present",
                     per_image: bool = False, ignore_index: int | None = None,
                     weight: Sequence[float] | torch.Tensor | None = None, from_logits: bool = True,
                     reduction: Reduction = "mean", dist_sync: bool = False) -> None: ...
