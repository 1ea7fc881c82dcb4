"""Deep supervision: one loss applied to a network's outputs at several resolutions, the target downsampled per level.

:class:`DeepSupervision` wraps any loss Module (a seglosses loss, a :class:`~seglosses.WeightedSum`, or a Module of
your own called as ``loss(logits, target, **inputs)``); the weights and the downsampling rules are framework-free
(:mod:`seglosses.core.levels`), shared with ``seglosses.keras.DeepSupervision``. Definitions: docs/semantics.md,
"Deep supervision".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from seglosses.core.levels import check_level_weights, level_weights, shared_option

#: The per-call input that is area-pooled to each level; every other input is given per level.
POOLED_INPUTS = ("pixel_weight",)

_POOLS = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


def nearest_resize(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``target`` resampled on its last ``len(size)`` axes to ``size`` by nearest-exact, as an index gather: every
    value is copied, never computed, so class indices and ignore labels (255) stay exact in any dtype (uint8, int64,
    bool). The source indices are those of ``interpolate(mode="nearest-exact")``
    (:func:`seglosses.core.levels.nearest_indices`), computed on the target's device."""
    rank = len(size)
    out = target
    for k, (n_in, n_out) in enumerate(zip(target.shape[-rank:], size)):
        if n_in != n_out:  # nearest_indices, computed on the device (no host copy)
            index = (2 * torch.arange(n_out, device=target.device) + 1) * n_in // (2 * n_out)
            out = out.index_select(target.ndim - rank + k, index)
    return out


def area_resize(values: torch.Tensor, size: Sequence[int], ignore: float | None = None) -> torch.Tensor:
    """``values`` (floating point) averaged on its last ``len(size)`` axes to ``size`` by area (adaptive average)
    pooling, in float32 at least, returned in ``values``' dtype. With ``ignore``, the mean is over the entries that
    are not ``ignore`` (selected, so a NaN there adds nothing), and an output entry none of whose entries is valid is
    ``ignore``. An axis of size 1 stays 1 (a weight map broadcast along it)."""
    rank = len(size)
    spatial = tuple(values.shape[-rank:])
    size = tuple(1 if n_in == 1 else n_out for n_in, n_out in zip(spatial, size))
    if size == spatial:
        return values
    lead = values.shape[:-rank]
    work = values if values.dtype in (torch.float32, torch.float64) else values.float()
    work = work.reshape(-1, *spatial)  # (C', *spatial): the pools' unbatched layout

    def pool(x):
        return _POOLS[rank](x, size)

    if ignore is None:
        out = pool(work)
    else:
        valid = work != ignore
        total = pool(torch.where(valid, work, torch.zeros_like(work)))
        count = pool(valid.to(work.dtype))
        some = count > 0
        out = torch.where(some, total / torch.where(some, count, torch.ones_like(count)),
                          torch.full_like(total, float(ignore)))
    return out.reshape(*lead, *size).to(values.dtype)


def downsample_target(target: torch.Tensor, size: Sequence[int], ignore: float | None = None) -> torch.Tensor:
    """The target of one level: integer and bool targets (class indices, integer masks) by
    :func:`nearest_resize`, floating-point targets (masks, probabilities) by :func:`area_resize` with the loss's
    ignore value. Never one-hot; the target's own layout is kept (``(N, *spatial)``, ``(N, C, *spatial)``)."""
    if tuple(target.shape[-len(size):]) == tuple(size):
        return target
    if target.is_floating_point():
        return area_resize(target, size, ignore)
    return nearest_resize(target, size)


class DeepSupervision(nn.Module):
    r"""Deep supervision: ``loss`` applied to each of a network's outputs, the target downsampled to each output.

    .. math::

        L = \sum_i w_i \, \mathrm{loss}(\text{outputs}_i, \downarrow_i \text{target})

    ``outputs[0]`` is at the target's resolution (it gets the target unchanged), the others at lower resolutions.
    Levels whose weight is 0 are not computed. The target is downsampled without one-hot:

    * integer or bool targets (class indices, integer masks; uint8 included): nearest-exact, by index gather, so an
      ignore label (255) is copied, never mixed, and stays ignored;
    * floating-point targets (binary/multilabel masks, class probabilities): area (adaptive average) pooling; when the
      loss has an ``ignore_index`` (a sum: the one its terms share), the mean is over the valid fine entries and a
      coarse entry with no valid fine entry is set to the ignore value.

    Args:
        loss: the loss Module, called as ``loss(logits, target, **inputs)``: a seglosses loss, a
            :class:`~seglosses.WeightedSum` or a Module of your own.
        weights: ``"nnunet"`` (default: ``1/2^i``, the lowest-resolution output weighted 0 when there are 3 outputs
            or more, normalised to sum 1), ``"monai-exp"`` (``max(0.5^i, 0.0625)``, not normalised), ``"uniform"``
            (``1/L`` each) or a sequence of numbers, one per output (finite, >= 0, not all 0; used as given). The
            rules read the number of outputs at each call.

    Shape:
        - outputs: a list or tuple of logits ``(N, C, *spatial_i)``, highest resolution first, with the same ``N``,
          ``C`` and 1 to 3 spatial axes, each axis at most the target's; a single tensor is one level.
        - target: the full-resolution target the loss takes (``(N, *spatial)`` or ``(N, C, *spatial)``), whose last
          axes are ``outputs[0]``'s spatial shape.
        - inputs: ``pixel_weight`` (``(N, *spatial)`` or ``(N, C, *spatial)``, axes of size 1 broadcast) is
          area-pooled to each level; any other input (``dist_maps``, ``skeletons``, ...) must be a list or tuple
          with one entry per output (distance maps and skeletons cannot be pooled: compute them at each level), or
          None. With a single tensor as ``outputs``, inputs go to the loss as given.

    Returns:
        The weighted sum (the wrapped loss's reduction, usually a scalar).

    Attributes:
        last: after each call, ``{"level0": value, "level1": ...}``, each computed level's unweighted value,
            detached (no host sync).

    Example:
        >>> import torch, seglosses
        >>> ds = seglosses.DeepSupervision(seglosses.DiceLoss("multiclass") + seglosses.FocalLoss("multiclass"))
        >>> ds
        DeepSupervision(1.0 * DiceLoss('multiclass') + 1.0 * FocalLoss('multiclass'), weights='nnunet')
        >>> outputs = [torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 2, 2)]
        >>> target = torch.randint(0, 3, (2, 8, 8))
        >>> value = ds(outputs, target)  # (2/3) L(out_0, target) + (1/3) L(out_1, target at 4x4); out_2 weighs 0
        >>> sorted(ds.last)
        ['level0', 'level1']
        >>> seglosses.from_config(ds.to_config())
        DeepSupervision(1.0 * DiceLoss('multiclass') + 1.0 * FocalLoss('multiclass'), weights='nnunet')

    References:
        Lee et al., "Deeply-Supervised Nets", AISTATS 2015, arXiv:1409.5185. Isensee et al., "nnU-Net", Nature
        Methods 2021 (the 1/2^i weights).
    """

    def __init__(self, loss: nn.Module, weights: str | Sequence[float] = "nnunet") -> None:
        super().__init__()
        if not isinstance(loss, nn.Module) or isinstance(loss, DeepSupervision):
            raise TypeError(f"`loss` must be a loss Module (not a DeepSupervision); got {type(loss).__name__}")
        self.loss = loss
        self.weights = check_level_weights(weights)
        self.ignore_index = shared_option(loss, ("ignore_index",), "downsamples one target with one ignore value")
        self.last: dict[str, torch.Tensor] = {}

    def level_weights(self, levels: int) -> tuple[float, ...]:
        """The weight of each of ``levels`` outputs (:func:`seglosses.core.levels.level_weights`)."""
        return level_weights(self.weights, levels)

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor,
                **inputs: Any) -> torch.Tensor:
        """The weighted sum over the levels (class docstring)."""
        single = isinstance(outputs, torch.Tensor)
        outputs = _check_outputs([outputs] if single else outputs, target)
        weights = self.level_weights(len(outputs))
        full = tuple(outputs[0].shape[2:])
        total = None
        last = {}
        for i, (w, out) in enumerate(zip(weights, outputs)):
            if w == 0:
                continue
            size = tuple(out.shape[2:])
            level_inputs = inputs if single else {k: _level_input(k, v, i, size, full, len(outputs))
                                                  for k, v in inputs.items()}
            value = self.loss(out, downsample_target(target, size, self.ignore_index), **level_inputs)
            last[f"level{i}"] = value.detach()
            part = value * w
            total = part if total is None else total + part
        self.last = last
        return cast(torch.Tensor, total)  # (a level at least has a weight > 0: check_level_weights)

    def step(self, t: float) -> None:
        """Step the wrapped loss's schedules to the position ``t`` (a :class:`~seglosses.WeightedSum` with scheduled
        coefficients; a no-op for a loss without schedules)."""
        step = getattr(self.loss, "step", None)
        if step is not None:
            step(t)

    def __repr__(self) -> str:
        return f"DeepSupervision({self.loss!r}, weights={_weights_value(self.weights)!r})"

    def to_config(self) -> dict[str, Any]:
        """``{"class": "DeepSupervision", "loss": <the loss's config>, "weights": ...}``, JSON-safe;
        :func:`seglosses.from_config` reads it."""
        to_config = getattr(self.loss, "to_config", None)
        if to_config is None:
            raise TypeError(f"the loss {type(self.loss).__name__} has no to_config(): only seglosses losses and "
                            "their sums can be written to a config")
        return {"class": "DeepSupervision", "loss": to_config(), "weights": _weights_value(self.weights)}


def _weights_value(weights):
    return weights if isinstance(weights, str) else list(weights)


def _check_outputs(outputs, target) -> list[torch.Tensor]:
    if not isinstance(outputs, (list, tuple)) or not outputs:
        raise TypeError("`outputs` must be a non-empty list or tuple of logits tensors, highest resolution first; "
                        f"got {type(outputs).__name__}" + (" (empty)" if isinstance(outputs, (list, tuple)) else ""))
    for i, out in enumerate(outputs):
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"`outputs[{i}]` must be a tensor; got {type(out).__name__}")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"`target` must be a tensor; got {type(target).__name__}")
    first = outputs[0]
    if not 3 <= first.ndim <= 5:
        raise ValueError(f"`outputs[0]` must have shape (N, C, *spatial) with 1 to 3 spatial axes; got "
                         f"{tuple(first.shape)}")
    rank = first.ndim - 2
    full = tuple(first.shape[2:])
    if target.ndim < rank + 1 or tuple(target.shape[-rank:]) != full:
        raise ValueError(f"`target` must be at the resolution of `outputs[0]`, its last {rank} axes {full}; got "
                         f"shape {tuple(target.shape)} (outputs go highest resolution first)")
    for i, out in enumerate(outputs[1:], 1):
        if out.ndim != first.ndim or out.shape[:2] != first.shape[:2]:
            raise ValueError(f"`outputs[{i}]` must have the batch size, classes and rank of `outputs[0]`, (N, C) = "
                             f"{tuple(first.shape[:2])} with {rank} spatial axes; got {tuple(out.shape)}")
        if any(a > b for a, b in zip(out.shape[2:], full)):
            raise ValueError(f"`outputs[{i}]` has spatial shape {tuple(out.shape[2:])}, larger than the target's "
                             f"{full} on some axis; the target is only downsampled")
    return list(outputs)


def _level_input(name: str, value, i: int, size: tuple[int, ...], full: tuple[int, ...], levels: int):
    """The value of the per-call input ``name`` at level ``i`` (spatial shape ``size``; the target's: ``full``)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if len(value) != levels:
            raise ValueError(f"`{name}` must hold one entry per output ({levels}); got {len(value)}")
        return value[i]
    if name in POOLED_INPUTS and isinstance(value, torch.Tensor):
        rank = len(size)
        if value.ndim < rank + 1 or any(n not in (1, f) for n, f in zip(value.shape[-rank:], full)):
            raise ValueError(f"`{name}` must have shape (N, *spatial) or (N, C, *spatial) with the target's spatial "
                             f"axes {full} (or 1 on an axis, broadcast); got {tuple(value.shape)}")
        return area_resize(value if value.is_floating_point() else value.float(), size)
    raise TypeError(f"`{name}` must be a list or tuple with one tensor per output ({levels}): only {POOLED_INPUTS} "
                    "are pooled to each level; distance maps, skeletons and other inputs derived from the target "
                    f"cannot be downsampled by pooling, so compute them at each output's resolution; got "
                    f"{type(value).__name__}")
