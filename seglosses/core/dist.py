"""Statistics summed across ``torch.distributed`` ranks, with the gradient DDP needs (``dist_sync=True``).

Each rank computes the loss of the global statistics ``S = sum_r S_r``. The all-reduce's backward all-reduces the
incoming gradients too, so rank r receives ``sum_r' dL/dS = W dL/dS`` (every rank computes the same loss): its
logits gradient is W times the global loss's gradient of its slice, and DDP's averaging of parameter gradients
over the W ranks gives exactly the gradient of the global loss. The backward pass is therefore a collective: every
rank must run it (DDP training does). Without an initialized process group nothing is exchanged and the loss is
that of the local batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_active() -> bool:
    """True when a default process group exists (``torch.distributed`` available and initialized)."""
    return dist.is_available() and dist.is_initialized()


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        y = x.detach().clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM, group=group)
        return y

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def all_reduce_sum(x: torch.Tensor, group=None) -> torch.Tensor:
    """Sum of ``x`` over the ranks of ``group`` (default group), differentiable as described above; ``x`` itself
    when no process group is initialized."""
    if not is_active():
        return x
    return _AllReduceSum.apply(x, group)
