"""A target's valid elements and an input's probabilities, as every pass and loss reads them.

Class indices become int64 with the ignored (and out-of-range) pixels mapped to 0 and a valid mask; dense targets
get 0 at ignored elements. Elements are selected (``torch.where``), never multiplied by a mask, so a NaN there
reaches nothing.
"""

from __future__ import annotations

import torch


def index_block(t: torch.Tensor, ignore_index, num_classes=None):
    """int64 class indices of a block (ignored pixels mapped to 0) and the valid mask (None: all valid).

    With ``num_classes`` given, indices outside [0, C) count as ignored, as in the Triton and C kernels: where the
    labels were not range-checked before the kernels (CUDA tensors, torch.compile: see
    :func:`seglosses.core.checks.values_at_hand`) that is the rule; elsewhere (they raised an IndexError before
    any kernel ran) it keeps a kernel called directly from reading out of bounds."""
    v = valid_indices(t, ignore_index, num_classes)
    if v is None:
        return t.long(), None
    return torch.where(v, t, torch.zeros_like(t)).long(), v


def valid_indices(t: torch.Tensor, ignore_index, num_classes=None):
    """The valid mask of class indices (None: all valid): not ``ignore_index``, and with ``num_classes`` given, in
    [0, C) (see :func:`index_block`)."""
    v = None if ignore_index is None else t != ignore_index
    if num_classes is not None:
        inside = (t >= 0) & (t < num_classes)
        v = inside if v is None else v & inside
    return v


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
