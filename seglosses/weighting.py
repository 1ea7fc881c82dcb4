r"""Class weights from a dataset: one streaming pass over the targets, exact pixel counts, a weight per class.

:func:`class_counts` counts the valid pixels of each class (int64, exact) and :func:`class_weights` turns the counts
into the ``weight=`` vector of any loss, by one of four rules (C classes, :math:`n_c` the pixels of class c,
:math:`N = \sum_c n_c` the valid pixels):

- ``"inverse"``: :math:`w_c = N / (C\,n_c)`, scikit-learn's ``class_weight="balanced"`` (1 for every class of a
  balanced dataset);
- ``"median"``: median-frequency balancing (Eigen & Fergus 2015): :math:`f_c = n_c / P_c` with :math:`P_c` the valid
  pixels of the images where c is present, :math:`w_c = \operatorname{median}_k f_k / f_c` (the median over the
  present classes; of an even count, the mean of the two middle values, as ``numpy.median``);
- ``"enet"``: :math:`w_c = 1 / \ln(c_0 + n_c / N)` with :math:`c_0` = ``c`` = 1.02 (Paszke et al. 2016, ENet);
- ``"effective"``: the inverse effective number of samples (Cui et al. 2019),
  :math:`w_c \propto (1 - \beta) / (1 - \beta^{n_c})`, normalised so that :math:`\sum_c w_c = C`.

What a pass reads. ``data`` is a ``torch.utils.data.Dataset`` (indexed ``data[0]``, ``data[1]``, ..., or iterated
for an ``IterableDataset``: each item is ONE sample, its target ``(*spatial)``) or any other iterable, a
``DataLoader`` for example (each item is a BATCH, its target ``(N, *spatial)``, one image per index of the first
axis). An item (sample or batch) is the target
itself, or a tuple/list whose LAST element is the target (``(image, target)``), or a dict with a key "target",
"mask" or "label" (the first of them found). Targets hold integer class indices (any integer dtype, uint8 included,
or bool) as tensors or NumPy arrays; ``ignore_index`` pixels are left out, and any other label outside [0, C) is a
``ValueError`` naming it. Each batch is counted with ``torch.bincount`` on its own device and only C numbers per batch
are kept (no tensor of the dataset's size).

A class with no pixel (:math:`n_c = 0`) gets the weight 0 under every rule, with a ``UserWarning`` naming it: there
is nothing of it to weigh in this data, and the formulas give inf (inverse, median, effective) or an arbitrary
maximum (ENet). Data without any valid pixel is a ``ValueError``.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import torch

from seglosses.core.args import check_ignore_index, check_one_of, check_scalar

__all__ = ["class_counts", "class_weights"]

METHODS = ("inverse", "median", "enet", "effective")
#: The dict keys a target is read from, in this order.
TARGET_KEYS = ("target", "mask", "label")
#: progress=None shows a bar when tqdm is installed, stderr is a terminal and the pass is longer than this.
AUTO_PROGRESS_MIN_ITEMS = 100


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"`num_classes` must be an int; got {type(num_classes).__name__}")
    if num_classes < 1:
        raise ValueError(f"`num_classes` must be >= 1; got {num_classes}")
    return num_classes


def _target_of(item) -> torch.Tensor:
    """The target tensor of one item of ``data`` (see the module's docstring)."""
    found = item
    if isinstance(item, (tuple, list)):
        if not item:
            raise ValueError("`data` yielded an empty tuple/list; expected (..., target)")
        found = item[-1]
    elif isinstance(item, dict):
        key = next((k for k in TARGET_KEYS if k in item), None)
        if key is None:
            raise ValueError(f"`data` yielded a dict without a target: expected one of the keys {TARGET_KEYS}; got "
                             f"{sorted(map(str, item))}")
        found = item[key]
    if isinstance(found, np.ndarray):
        found = torch.from_numpy(found)
    if not isinstance(found, torch.Tensor):
        raise TypeError(f"`data`: a target must be a torch.Tensor or np.ndarray (alone, last in a tuple, or under "
                        f"{TARGET_KEYS} in a dict); got {type(found).__name__}")
    if found.is_floating_point() or found.is_complex():
        raise TypeError(f"`data`: targets must hold integer class indices; got dtype {found.dtype}")
    return found


def _items(data):
    """(iterator over the items, whether each item is one sample, the number of items or None)."""
    if isinstance(data, torch.utils.data.IterableDataset):
        return iter(data), True, len(data) if hasattr(data, "__len__") else None
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        return (data[i] for i in range(len(data))), True, len(data)
    if isinstance(data, (torch.Tensor, np.ndarray)) or not isinstance(data, Iterable):
        raise TypeError(f"`data` must be a Dataset or an iterable of batches (a DataLoader); got "
                        f"{type(data).__name__} (a single target: pass [target])")
    return iter(data), False, len(data) if hasattr(data, "__len__") else None


def _progress(items, total, progress):
    if progress is False:
        return items
    if progress is not True and progress is not None:
        raise TypeError(f"`progress` must be a bool or None; got {type(progress).__name__}")
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            raise ImportError("progress=True needs tqdm: pip install tqdm") from None
        return items
    if progress is None and not (total is not None and total > AUTO_PROGRESS_MIN_ITEMS and sys.stderr.isatty()):
        return items
    return tqdm(items, total=total, desc="class counts", unit="batch")


def _count(data, num_classes: int, ignore_index: int | None, progress) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels of each class, valid pixels of the images where each class is present), int64 ``(C,)`` each."""
    c = _check_num_classes(num_classes)
    ignore_index = check_ignore_index(ignore_index)
    items, single, total = _items(data)
    counts = torch.zeros(c, dtype=torch.int64)
    image_pixels = torch.zeros(c, dtype=torch.int64)
    for item in _progress(items, total, progress):
        t = _target_of(item)
        if t.numel() == 0:
            continue
        t = t.reshape(1, -1) if single else t.reshape(t.shape[0] if t.dim() else 1, -1)
        t = t.to(torch.int64)
        n_img = t.shape[0]
        rows = torch.arange(t.shape[0], device=t.device).unsqueeze(1).expand_as(t)
        if ignore_index is not None:
            keep = t != ignore_index
            t, rows = t[keep], rows[keep]
        t, rows = t.reshape(-1), rows.reshape(-1)
        if t.numel():
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= c:
                bad = lo if lo < 0 else hi
                raise ValueError(f"`data`: target label {bad} is outside [0, {c}) (num_classes={c}) and is not "
                                 f"ignore_index ({ignore_index})")
        per_image = torch.bincount(rows * c + t, minlength=n_img * c)[: n_img * c].view(n_img, c)
        valid = per_image.sum(1, keepdim=True)
        counts += per_image.sum(0).cpu()
        image_pixels += torch.where(per_image > 0, valid, 0).sum(0).cpu()
    return counts, image_pixels


def class_counts(data: Iterable[Any] | torch.utils.data.Dataset, num_classes: int, *, ignore_index: int | None = None,
                 progress: bool | None = None) -> torch.Tensor:
    """The number of valid pixels of each class in a dataset, in one streaming pass.

    Args:
        data: a ``Dataset`` (each item one sample) or an iterable of batches such as a ``DataLoader``; each item is
            a target, a tuple/list ending with the target, or a dict with a key "target", "mask" or "label" (the
            module's docstring has the details). Targets: integer class indices (uint8 included), tensors or NumPy
            arrays.
        num_classes: C.
        ignore_index: the label of pixels to leave out. Any other label outside [0, C) is a ``ValueError``.
        progress: a tqdm progress bar: True (needs tqdm), False, or None (shown when tqdm is installed, stderr is a
            terminal and ``data`` has more than 100 items).

    Returns:
        int64 tensor ``(C,)``: the exact pixel counts, on the CPU.

    Example:
        >>> import torch
        >>> loader = [torch.tensor([[0, 0, 1], [2, 255, 0]], dtype=torch.uint8)]  # one batch of 2 images
        >>> class_counts(loader, 3, ignore_index=255)
        tensor([3, 1, 1])
    """
    return _count(data, num_classes, ignore_index, progress)[0]


def _median(values: torch.Tensor) -> torch.Tensor:
    v = values.sort().values
    k = v.numel()
    return (v[(k - 1) // 2] + v[k // 2]) / 2


def class_weights(data: Iterable[Any] | torch.utils.data.Dataset, num_classes: int, method: Literal["inverse", "median", "enet", "effective"] = "inverse", *,
                  ignore_index: int | None = None, beta: float = 0.9999, c: float = 1.02,
                  progress: bool | None = None) -> torch.Tensor:
    r"""Per-class weights from the pixel counts of a dataset, ready for the ``weight=`` option of any loss.

    .. math::

        \text{inverse: } w_c = \frac{N}{C\,n_c} \qquad
        \text{median: } w_c = \frac{\operatorname{median}_k f_k}{f_c},\ f_c = \frac{n_c}{P_c} \qquad
        \text{enet: } w_c = \frac{1}{\ln(c_0 + n_c / N)} \qquad
        \text{effective: } w_c = C\,\frac{(1 - \beta) / (1 - \beta^{n_c})}{\sum_k (1 - \beta) / (1 - \beta^{n_k})}

    with :math:`n_c` the valid pixels of class c, :math:`N = \sum_c n_c`, :math:`P_c` the valid pixels of the images
    where class c is present (images are the samples of a ``Dataset``, or the indices of a batch's first axis) and
    :math:`c_0` the argument ``c``. The median is over the present classes (an even count: the mean of the two middle
    values). The counts are exact (int64); the weights are computed in float64 (:math:`1 - \beta^{n}` as
    ``-expm1(n log beta)``) and returned in float32. A class with no pixel gets 0, with a warning.

    Args:
        data: as in :func:`class_counts`.
        num_classes: C.
        method: "inverse", "median", "enet" or "effective".
        ignore_index: the label of pixels to leave out.
        beta: the "effective" rule's beta, in [0, 1).
        c: the "enet" rule's constant, > 1 (weights at most 1 / ln(c)).
        progress: as in :func:`class_counts`.

    Returns:
        float32 tensor ``(C,)`` on the CPU.

    Example:
        >>> import torch
        >>> loader = [(None, torch.tensor([[0, 0, 0], [0, 1, 1]]))]  # (image, target) batches
        >>> class_weights(loader, 2)  # N = 6: 6 / (2 * 4), 6 / (2 * 2)
        tensor([0.7500, 1.5000])
        >>> class_weights(loader, 2, method="median")  # f = (4/6, 2/3): both 2/3
        tensor([1., 1.])

    References:
        D. Eigen and R. Fergus, "Predicting Depth, Surface Normals and Semantic Labels with a Common Multi-Scale
        Convolutional Architecture", ICCV 2015, arXiv:1411.4734. A. Paszke, A. Chaurasia, S. Kim, E. Culurciello,
        "ENet: A Deep Neural Network Architecture for Real-Time Semantic Segmentation", arXiv:1606.02147 (2016).
        Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie, "Class-Balanced Loss Based on Effective Number of Samples",
        CVPR 2019, arXiv:1901.05555.
    """
    method = check_one_of("method", method, METHODS)
    beta = check_scalar("beta", beta, low=0.0, high=1.0)
    if beta >= 1.0:
        raise ValueError(f"`beta` must be in [0, 1); got {beta}")
    c0 = check_scalar("c", c, low=1.0, low_open=True)
    counts, image_pixels = _count(data, num_classes, ignore_index, progress)
    present = counts > 0
    if not bool(present.any()):
        raise ValueError("`data` has no valid pixel (every target is empty or ignore_index): no weight can be derived")
    absent = (~present).nonzero().flatten().tolist()
    if absent:
        warnings.warn(f"class_weights: classes {absent} have no pixel in `data`; their weight is 0", stacklevel=2)
    n = counts.double()
    total = n.sum()
    k = n.numel()
    safe = torch.where(present, n, 1.0)
    if method == "inverse":
        w = total / (k * safe)
    elif method == "median":
        f = safe / torch.where(present, image_pixels.double(), 1.0)
        w = _median(f[present]) / f
    elif method == "enet":
        w = 1.0 / torch.log(c0 + n / total)
    else:
        w = (1.0 - beta) / -torch.expm1(safe * math.log(beta)) if beta > 0 else torch.ones_like(n)
        w = torch.where(present, w, 0.0)
        w = w * (k / w.sum())
    return torch.where(present, w, 0.0).to(torch.float32)
