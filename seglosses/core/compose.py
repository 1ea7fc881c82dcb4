"""Composition of losses: ``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")`` and plain config dicts.

Every loss Module supports ``+``, ``-``, ``*`` and ``/`` by a number, unary ``-`` and ``sum([...])``; the result is
a :class:`WeightedSum`, one Module that computes the weighted sum, keeps each term's last value for logging, moves
with ``.to()`` and round-trips through :meth:`WeightedSum.to_config` / :func:`from_config` (JSON-safe dicts, so a
training config can name its loss). One class serves every combination: there is no DiceCE/DiceFocal class per pair.

A coefficient may be a schedule (:mod:`seglosses.core.schedules`): ``linear(0.01, 1, 10) * BoundaryLoss(...)``.
``loss.step(t)`` sets its position; each scheduled coefficient is a 0-d buffer updated in place, so a compiled loss
reads the new value without a recompile and forward never syncs with the host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from seglosses.core.composable import ComposableBase, check_pairs, coef_config, coef_from_config, sum_repr
from seglosses.core.schedules import Schedule, check_position


class Composable(ComposableBase):
    """Arithmetic on losses (:mod:`seglosses.core.composable`). Mixed into every loss Module and into
    :class:`WeightedSum`."""

    @staticmethod
    def _weighted_sum(pairs):
        return WeightedSum(pairs)


Composable._family = Composable


class WeightedSum(Composable, nn.Module):
    r"""The weighted sum of losses, :math:`L = \sum_i c_i L_i(\text{logits}, \text{target})`.

    Built by the operators (``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")``) or directly from
    ``(coef, loss)`` pairs. Every term receives the same ``(logits, target)``.

    A coefficient may be a schedule (:func:`seglosses.linear`, :func:`~seglosses.cosine`,
    :func:`~seglosses.piecewise`, :func:`~seglosses.rebalance`, :func:`~seglosses.constant`, and numbers times
    them): :meth:`step` sets the position ``t`` (an epoch or a step, your choice) of every schedule in the sum; call it
    once per epoch (or step) before the forward passes, a resumed run included. Each scheduled coefficient lives in a
    0-d float32 buffer (not in ``state_dict``: it is a function of ``t``) that :meth:`step` overwrites in place, so
    ``torch.compile`` does not recompile and CUDA graphs see the new value. Do not call :meth:`step` between a
    forward and its backward (the buffer is saved for the gradient).

    Args:
        terms: a sequence of ``(coef, loss)`` pairs, ``coef`` a finite number or a schedule, ``loss`` a seglosses
            loss Module.

    Attributes:
        last: after each call, ``{name: value}`` with each term's unweighted value, detached (no host sync: the
            values stay tensors on the device until you read them). Names are the terms' class names, numbered
            from the second occurrence on (``"DiceLoss"``, ``"DiceLoss_2"``).

    Example:
        >>> import torch, seglosses
        >>> loss = 0.5 * seglosses.DiceLoss("multiclass") + seglosses.FocalLoss("multiclass")
        >>> loss
        0.5 * DiceLoss('multiclass') + 1.0 * FocalLoss('multiclass')
        >>> x, t = torch.zeros(1, 2, 4), torch.tensor([[0, 1, 1, 0]])
        >>> round(loss(x, t).item(), 4)  # p = 0.5 everywhere: 0.5 * (1 - 0.5) + (1 - 0.5)^2 ln 2
        0.4233
        >>> sorted(loss.last)
        ['DiceLoss', 'FocalLoss']
        >>> seglosses.from_config(loss.to_config())
        0.5 * DiceLoss('multiclass') + 1.0 * FocalLoss('multiclass')

        A scheduled term (Kervadec et al.'s rebalancing: the region term's weight falls by 0.01 per epoch):

        >>> r = seglosses.rebalance()
        >>> loss = r * seglosses.DiceLoss("multiclass") + (1 - r) * seglosses.FocalLoss("multiclass")
        >>> loss.step(30)  # at the start of epoch 30
        >>> {k: round(v, 6) for k, v in loss.coefficients().items()}
        {'DiceLoss': 0.7, 'FocalLoss': 0.3}
        >>> round(loss(x, t).item(), 4)  # 0.7 * (1 - 0.5) + 0.3 * (1 - 0.5)^2 ln 2
        0.402
    """

    def __init__(self, terms: Iterable[tuple[float, Composable]]) -> None:
        super().__init__()
        pairs = check_pairs(terms, Composable, WeightedSum, "seglosses loss Module")
        self.coefs = tuple(c for c, _ in pairs)
        self.terms = nn.ModuleList(t for _, t in pairs)
        names, seen = [], {}
        for t in self.terms:
            base = type(t).__name__
            seen[base] = seen.get(base, 0) + 1
            names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
        self.names = tuple(names)
        self.last: dict[str, torch.Tensor] = {}
        self.position = 0.0
        #: per term, the name of its coefficient's buffer (a schedule) or None (a number)
        self._buffers_of = tuple(f"coef_{i}" if isinstance(c, Schedule) else None for i, c in enumerate(self.coefs))
        for c, buf in zip(self.coefs, self._buffers_of):
            if buf is not None:
                self.register_buffer(buf, torch.tensor(c(0.0), dtype=torch.float32), persistent=False)

    def step(self, t: float) -> None:
        """Set every schedule of the sum to position ``t`` (an epoch or a step, >= 0): call it at the start of each
        epoch (or step). A sum without schedules ignores it."""
        t = check_position(t)
        with torch.no_grad():
            for c, buf in zip(self.coefs, self._buffers_of):
                if buf is not None:
                    getattr(self, buf).fill_(c(t))  # in place: no recompile, no new tensor for CUDA graphs
        self.position = t

    def coefficients(self) -> dict[str, float]:
        """``{name: coefficient}`` at the current position (names as in :attr:`last`), computed on the host."""
        return {n: c(self.position) if isinstance(c, Schedule) else c for n, c in zip(self.names, self.coefs)}

    def _pairs(self):
        return list(zip(self.coefs, self.terms))

    def forward(self, logits: torch.Tensor, target: torch.Tensor, **inputs: torch.Tensor | None) -> torch.Tensor:
        """The weighted sum; each keyword input (``dist_maps=...``) goes to the terms whose function takes it."""
        total = None
        last = {}
        unused = set(inputs)
        for name, k, buf, term in zip(self.names, self.coefs, self._buffers_of, self.terms):
            accepted = term.keywords()
            mine = {k: v for k, v in inputs.items() if k in accepted}
            unused -= set(mine)
            value = term(logits, target, **mine)
            last[name] = value.detach()
            part = value * (k if buf is None else getattr(self, buf).to(value.dtype))
            total = part if total is None else total + part
        if unused:
            raise TypeError(f"no term of {self!r} takes the input(s) {sorted(unused)}")
        self.last = last
        return total

    def __repr__(self) -> str:
        return sum_repr(self.coefs, self.terms)

    def to_config(self) -> dict[str, Any]:
        """``{"class": "WeightedSum", "terms": [{"coef": c, "loss": <config>}, ...]}``, JSON-safe; a scheduled
        coefficient is its schedule's dict (``{"schedule": "linear", "start": 0.01, ...}``) and the sum's position
        is kept as ``"position": t`` (written only when the sum has a schedule)."""
        config: dict[str, Any] = {"class": "WeightedSum", "terms": [
            {"coef": coef_config(c), "loss": t.to_config()} for c, t in zip(self.coefs, self.terms)]}
        if any(b is not None for b in self._buffers_of):
            config["position"] = self.position
        return config


def _json_value(name: str, value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_value(name, v) for v in value]
    raise TypeError(f"option `{name}` of type {type(value).__name__} cannot be written to a config "
                    "(only numbers, strings, bools, None, lists and tensors can)")


def module_config(module) -> dict[str, Any]:
    """``{"class": name, "mode": mode, "options": {...}}`` of a loss Module, JSON-safe."""
    opts = {k: _json_value(k, v) for k, v in module.options.items()}
    return {"class": type(module).__name__, "mode": module.mode, "options": opts}


def from_config(config: Mapping[str, Any]) -> nn.Module:
    """The loss Module described by ``config`` (as written by ``to_config()``).

    Args:
        config: ``{"class": "DiceLoss", "mode": "multiclass", "options": {...}}`` for one loss (``mode`` and
            ``options`` optional), ``{"class": "WeightedSum", "terms": [{"coef": 0.5, "loss": {...}}, ...]}``, or
            ``{"class": "DeepSupervision", "loss": {...}, "weights": "nnunet"}``.

    Returns:
        A fresh loss Module (:class:`WeightedSum` for a sum, :class:`~seglosses.DeepSupervision` for deep
        supervision).

    Example:
        >>> import seglosses
        >>> seglosses.from_config({"class": "TverskyLoss", "mode": "binary", "options": {"alpha": 0.7, "beta": 0.3}})
        TverskyLoss('binary', alpha=0.7, beta=0.3)
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"`config` must be a dict; got {type(config).__name__}")
    name = config.get("class")
    if name == "WeightedSum":
        unknown = set(config) - {"class", "terms", "position"}
        if unknown:
            raise ValueError(f"`config` of a WeightedSum takes the keys 'class', 'terms' and 'position'; got "
                             f"{sorted(unknown)}")
        terms = config.get("terms")
        if not isinstance(terms, (list, tuple)):
            raise ValueError(f"`config['terms']` must be a list of {{'coef': ..., 'loss': ...}}; got {terms!r}")
        pairs = []
        for i, term in enumerate(terms):
            if not isinstance(term, Mapping) or set(term) != {"coef", "loss"}:
                raise ValueError(f"`config['terms'][{i}]` must be a dict with the keys 'coef' and 'loss'; got {term!r}")
            pairs.append((coef_from_config(term["coef"]), from_config(term["loss"])))
        loss = WeightedSum(pairs)
        loss.step(config.get("position", 0.0))
        return loss
    if name == "DeepSupervision":
        from seglosses.core.supervision import DeepSupervision

        if "loss" not in config or set(config) - {"class", "loss", "weights"}:
            raise ValueError("`config` of a DeepSupervision takes the keys 'class', 'loss' and 'weights' ('loss' "
                             f"required); got {sorted(config)}")
        return DeepSupervision(from_config(config["loss"]), weights=config.get("weights", "nnunet"))
    import seglosses

    classes = seglosses.loss_classes()
    if name not in classes:
        allowed = sorted(classes) + ["DeepSupervision", "WeightedSum"]
        raise ValueError(f"`config['class']` must be one of {allowed}; got {name!r}")
    unknown = set(config) - {"class", "mode", "options"}
    if unknown:
        raise ValueError(f"`config` of a loss takes the keys 'class', 'mode' and 'options'; got {sorted(unknown)}")
    options = config.get("options") or {}
    if not isinstance(options, Mapping):
        raise TypeError(f"`config['options']` must be a dict; got {type(options).__name__}")
    mode = config.get("mode")
    return classes[name](mode, **options) if mode is not None else classes[name](**options)
